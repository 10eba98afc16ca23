// SPDX-License-Identifier: GPL-2.0
/*
 * test_hmm: a pretend device that uses HMM, for the selftests. User space
 * drives it through /dev/hmm_dmirror0..3; the commands are documented in
 * test_hmm_uapi.h.
 *
 * The device has memory of its own, struct pages in ZONE_DEVICE. It is
 * added in chunks (one pagemap each) the first time a migration needs
 * room, and each chunk keeps a block per page, free or in use (a bit of
 * the chunk's "used" bitmap), with a tag naming the file that put data
 * there.
 * Devices 0 and 1 have device-private memory: the chunk is a free piece of
 * the physical address space that the CPU cannot touch, so the data of a
 * page in use sits in an ordinary page the device holds on the side (the
 * block's "store"), which is what a real device's RAM would be. Devices 2
 * and 3 have device-coherent memory: the chunk is real memory reserved at
 * boot (module parameters spm_addr_dev0/1), the CPU maps such pages like
 * any other and the data is in the page itself.
 *
 * An open file is one user of the device. It sees the address space of
 * the process that opened it through a page table of its own, "pt", an
 * xarray from virtual page number to struct page, tagged with the access
 * the device has (read, write, or atomic after make_device_exclusive).
 * Where the CPU maps a PMD whole, pt does too: one multi-index entry, a
 * "huge entry", for its first page.
 * pt holds no page references; it stays correct by one rule:
 *
 *   an entry is stored only under dmirror->lock, and only when
 *   mmu_interval_read_retry() says that no invalidation ran since the
 *   hmm_range_fault() (or make_device_exclusive()) that produced
 *   it; the interval notifier erases entries under the same lock.
 *
 * So while dmirror->lock is held an entry names a page the CPU still maps
 * at that address, and the page cannot be freed: freeing it needs an
 * invalidation first, which waits for the lock. The one invalidation the
 * notifier lets pass is the MMU_NOTIFY_EXCLUSIVE that our own
 * make_device_exclusive() raises, since it keeps the same page.
 *
 * Migrations do not write pt directly. Moving a page into the device
 * invalidates the range like any other change; then the device looks at
 * the range again (hmm_range_fault() without faulting, which reports a
 * device-private page of its owner as it is, and a device-coherent page
 * as an ordinary mapping) and maps, under the rule above, the pages that
 * are now its own. Pages go back to system memory four ways, all through
 * one copy routine: the CPU touching a device-private page (the pagemap's
 * migrate_to_ram), HMM_DMIRROR_MIGRATE_TO_SYS, the release of the file
 * that placed them (evicts its own pages), and HMM_DMIRROR_RELEASE or
 * module unload (evict every page, then unmap the chunks). Eviction uses
 * migrate_device_pfns() on the frames of the pages to go, which skips pages
 * it cannot lock, so it repeats until nothing is left.
 *
 * 2 MiB device pages: on the device-private device a migration window that
 * covers a whole PMD asks for compound entries, and a THP (or an empty
 * range, or the huge zero page) takes DMIRROR_PMD_NR aligned blocks as one
 * folio. A THP that finds no such run (or meets HMM_DMIRROR_FLAG_FAIL_ALLOC)
 * gets 512 single pages, each with its page's data, and the core splits
 * it; an empty range just gets single pages. Back to system memory, a
 * 2 MiB page goes into a THP when one can be had and page by page
 * otherwise (the core splits the device folio). The store of a 2 MiB
 * device page is one 2 MiB allocation; when the core splits the folio
 * (dmirror_folio_split()) the store is split with it, so that each page
 * can be handed out on its own again.
 *
 * A block keeps its store when it is freed, as a device keeps its RAM:
 * the next page placed there needs no allocation, and freeing a device
 * page frees no memory. The stores of free blocks are a cache the device
 * gives back under memory pressure (a shrinker), and when a chunk goes.
 *
 * For the tests, each device counts what the core tells it of its folios
 * (folio_free() of 4 KiB and of 2 MiB folios, folio_split() of 2 MiB
 * ones): /sys/kernel/debug/test_hmm/hmm_dmirrorN/counters, a line
 * "name value" each. Beside it, "mirror" shows what the device holds: a
 * line per chunk (pages used, stores cached), and a line per open file
 * (its mirror's entries, writable and exclusive ones, and the device
 * pages it placed, 2 MiB ones apart), with "name value" pairs.
 *
 * Locks, outermost first: mmap_lock, mdevice->grow_lock (adding and
 * removing chunks, eviction; a migration grows the device under
 * mmap_lock), dmirror->lock (pt; eviction's invalidations take it),
 * mdevice->lock (a spinlock over the chunk list, the used bitmaps and the
 * blocks). dmirror->lock is taken by the notifier, which reclaim can call,
 * so nothing under it may touch user memory or allocate memory that can
 * sleep. mdevice->files_lock guards the list of open files; only debugfs
 * "mirror" takes locks under it (dmirror->lock, then mdevice->lock).
 */
#include <linux/cdev.h>
#include <linux/debugfs.h>
#include <linux/delay.h>
#include <linux/device.h>
#include <linux/fs.h>
#include <linux/highmem.h>
#include <linux/hmm.h>
#include <linux/ioport.h>
#include <linux/memremap.h>
#include <linux/migrate.h>
#include <linux/mm.h>
#include <linux/mmu_notifier.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pagemap.h>
#include <linux/rmap.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/seq_file.h>
#include <linux/shrinker.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/uaccess.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>

#include "test_hmm_uapi.h"

#define DMIRROR_NR_DEVICES	4
/* Pages a command handles per step: one hmm_range_fault() or migration. */
#define DMIRROR_WINDOW		64UL
#define DMIRROR_CHUNK_SIZE	SZ_16M
#define DMIRROR_CHUNK_PAGES	(DMIRROR_CHUNK_SIZE >> PAGE_SHIFT)
/* At most 1 GiB of device-private memory per device. */
#define DMIRROR_PRIVATE_CHUNKS	64
/* The reserved memory each device-coherent device uses. */
#define DMIRROR_SPM_SIZE	SZ_256M
#define DMIRROR_SPM_CHUNKS	(DMIRROR_SPM_SIZE / DMIRROR_CHUNK_SIZE)
/* How long the release of a file keeps trying to evict its pages. */
#define DMIRROR_EVICT_TRIES	100

/*
 * A 2 MiB device page: a PMD's worth of blocks, aligned in its chunk. Used
 * when the kernel can migrate PMD-sized folios (THP migration); otherwise
 * every migration moves single pages, as in 6.12.
 */
#define DMIRROR_PMD_ORDER	(PMD_SHIFT - PAGE_SHIFT)
#define DMIRROR_PMD_NR		BIT(DMIRROR_PMD_ORDER)
#define DMIRROR_HUGE		IS_ENABLED(CONFIG_ARCH_ENABLE_THP_MIGRATION)

/*
 * Where the reserved memory of the device-coherent devices 2 and 3 starts;
 * 0 leaves the device out.
 */
static unsigned long dmirror_spm_base[2];
module_param_named(spm_addr_dev0, dmirror_spm_base[0], ulong, 0444);
MODULE_PARM_DESC(spm_addr_dev0,
		 "Physical address of 256 MiB of reserved memory (memmap=) that becomes the device-coherent memory of /dev/hmm_dmirror2; 0 (default): no such device");
module_param_named(spm_addr_dev1, dmirror_spm_base[1], ulong, 0444);
MODULE_PARM_DESC(spm_addr_dev1, "The same for /dev/hmm_dmirror3");

/*
 * The tag of a pt entry: what the device may do with the page. XArray
 * keeps tag 2 for its own nodes, so pointers carry 0, 1 or 3.
 */
enum dmirror_access {
	DMIRROR_MAP_READ	= 0,
	DMIRROR_MAP_WRITE	= 1,
	DMIRROR_MAP_ATOMIC	= 3,	/* exclusive: the CPU faults to get it back */
};

/*
 * What the device knows about one page of its memory in use; meaningless
 * while the page is free.
 */
struct dmirror_block {
	struct page		*store;	/* device-private: holds the data */
	const void		*owner;	/* file that placed it; a tag only */
	/*
	 * In the first block of a device folio: the order of the one page
	 * allocation that is the store of the whole folio, 0 when each
	 * block's store is a page of its own.
	 */
	u8			store_order;
};

struct dmirror_chunk {
	struct dev_pagemap	pgmap;
	struct dmirror_device	*mdevice;
	struct list_head	link;		/* in mdevice->chunks */
	struct resource		*res;		/* device-private: our claim */
	unsigned long		nr_used;	/* under mdevice->lock ... */
	unsigned long		nr_cached;	/* free blocks with a store */
	bool			retiring;
	DECLARE_BITMAP(used, DMIRROR_CHUNK_PAGES);	/* ... up to here */
	struct work_struct	unmap_work;	/* memunmap_pages(), see below */
	struct dmirror_block	blocks[];
};

struct dmirror_device {
	struct device		dev;
	struct cdev		cdev;
	int			memory_type;	/* HMM_DMIRROR_MEMORY_DEVICE_* */
	phys_addr_t		spm_base;	/* device-coherent only */
	struct mutex		grow_lock;
	unsigned int		nr_chunks;	/* under grow_lock */
	spinlock_t		lock;
	/* Changed under grow_lock and lock both; read under either. */
	struct list_head	chunks;
	struct shrinker		*shrinker;	/* device-private: the stores */
	/* What the core told us of our folios; debugfs "counters". */
	atomic_long_t		freed_small;	/* folio_free(), 4 KiB */
	atomic_long_t		freed_huge;	/* folio_free(), 2 MiB */
	atomic_long_t		splits;		/* folio_split() of a 2 MiB */
	struct dentry		*debugfs;
	/* The open files, for debugfs "mirror" (see the locks at the top). */
	struct mutex		files_lock;
	struct list_head	files;
	unsigned int		next_file_id;	/* under files_lock */
};

/* One open file: a user of the device and its view of the user's memory. */
struct dmirror {
	struct dmirror_device		*mdevice;
	struct mmu_interval_notifier	notifier;
	struct mutex			lock;	/* pt; see the top */
	struct xarray			pt;
	/*
	 * HMM_DMIRROR_MIGRATE_ON_FAULT_TO_DEV runs one window at a time
	 * (walk_mutex), in the task @walker. The invalidations its own
	 * migration raises empty pt there but leave the notifier's sequence
	 * alone, or the walk would never see its own result hold. Every
	 * other reader checks @walk_gen with the sequence instead: it is odd
	 * (under lock) from before the window's walk until its migration is
	 * finalized, and a reader maps nothing it read while it was odd or
	 * that saw it change.
	 */
	struct mutex			walk_mutex;
	struct task_struct		*walker;
	unsigned long			walk_gen;
	unsigned long			flags;	/* HMM_DMIRROR_FLAG_*, bitops */
	struct list_head		link;	/* in mdevice->files */
	unsigned int			id;	/* debugfs "mirror" names it */
};

static struct dmirror_device *dmirror_devices[DMIRROR_NR_DEVICES];
static dev_t dmirror_devt;
static struct dentry *dmirror_debugfs;	/* test_hmm/ */
static const struct dev_pagemap_ops dmirror_pgmap_ops;

/* ---- Device memory: chunks, blocks and pages ---- */

static struct dmirror_chunk *dmirror_page_chunk(struct page *page)
{
	return container_of(page_pgmap(page), struct dmirror_chunk, pgmap);
}

static unsigned long dmirror_chunk_pfn(struct dmirror_chunk *chunk)
{
	return PHYS_PFN(chunk->pgmap.range.start);
}

static struct dmirror_block *dmirror_page_block(struct page *page)
{
	struct dmirror_chunk *chunk = dmirror_page_chunk(page);

	return &chunk->blocks[page_to_pfn(page) - dmirror_chunk_pfn(chunk)];
}

/* The dmirror device whose memory @page is, or NULL for any other page. */
static struct dmirror_device *dmirror_page_device(struct page *page)
{
	if (!is_zone_device_page(page) ||
	    page_pgmap(page)->ops != &dmirror_pgmap_ops)
		return NULL;
	return page_pgmap(page)->owner;
}

/* The page that holds the data the device keeps in @page. */
static struct page *dmirror_data_page(struct page *page)
{
	if (is_device_private_page(page))
		return dmirror_page_block(page)->store;
	return page;
}

static bool dmirror_is_private(const struct dmirror_device *mdevice)
{
	return mdevice->memory_type == HMM_DMIRROR_MEMORY_DEVICE_PRIVATE;
}

/*
 * Take a free block of a chunk that is not retiring, with the store it
 * kept if it kept one. A block of a free 2 MiB run whose store is still
 * one allocation gets a page of its own: the store is split.
 */
static struct page *dmirror_take_block(struct dmirror_device *mdevice,
				       const void *owner)
{
	struct dmirror_block *blk, *head;
	struct dmirror_chunk *chunk;
	struct page *dpage = NULL;
	unsigned long i;

	spin_lock(&mdevice->lock);
	list_for_each_entry(chunk, &mdevice->chunks, link) {
		if (chunk->retiring || chunk->nr_used == DMIRROR_CHUNK_PAGES)
			continue;
		i = find_first_zero_bit(chunk->used, DMIRROR_CHUNK_PAGES);
		__set_bit(i, chunk->used);
		chunk->nr_used++;
		head = &chunk->blocks[ALIGN_DOWN(i, DMIRROR_PMD_NR)];
		if (head->store_order) {
			split_page(head->store, head->store_order);
			head->store_order = 0;
		}
		blk = &chunk->blocks[i];
		if (blk->store)
			chunk->nr_cached--;
		blk->owner = owner;
		dpage = pfn_to_page(dmirror_chunk_pfn(chunk) + i);
		break;
	}
	spin_unlock(&mdevice->lock);
	return dpage;
}

/*
 * Free blocks [@first, @first + @nr) of @chunk again; their stores stay
 * with them, cached.
 */
static void dmirror_put_blocks(struct dmirror_chunk *chunk,
			       unsigned long first, unsigned long nr)
{
	unsigned long i;

	spin_lock(&chunk->mdevice->lock);
	for (i = first; i < first + nr; i++)
		chunk->nr_cached += !!chunk->blocks[i].store;
	if (nr == 1)
		__clear_bit(first, chunk->used);
	else
		bitmap_clear(chunk->used, first, nr);
	chunk->nr_used -= nr;
	spin_unlock(&chunk->mdevice->lock);
}

/* Free blocks in chunks that are not retiring. */
static unsigned long dmirror_free_blocks(struct dmirror_device *mdevice)
{
	struct dmirror_chunk *chunk;
	unsigned long free = 0;

	spin_lock(&mdevice->lock);
	list_for_each_entry(chunk, &mdevice->chunks, link)
		if (!chunk->retiring)
			free += DMIRROR_CHUNK_PAGES - chunk->nr_used;
	spin_unlock(&mdevice->lock);
	return free;
}

/* Choose the physical range of a new chunk and claim it. */
static int dmirror_claim_range(struct dmirror_device *mdevice,
			       struct dmirror_chunk *chunk)
{
	struct range *range = &chunk->pgmap.range;
	struct dmirror_chunk *other;
	unsigned int slot;

	lockdep_assert_held(&mdevice->grow_lock);
	if (dmirror_is_private(mdevice)) {
		if (mdevice->nr_chunks >= DMIRROR_PRIVATE_CHUNKS)
			return -ENOMEM;
		chunk->res = request_free_mem_region(&iomem_resource,
						     DMIRROR_CHUNK_SIZE,
						     dev_name(&mdevice->dev));
		if (IS_ERR(chunk->res))
			return PTR_ERR(chunk->res);
		range->start = chunk->res->start;
		range->end = chunk->res->end;
		chunk->pgmap.type = MEMORY_DEVICE_PRIVATE;
		return 0;
	}

	/* Device-coherent: the first slot of the reserved window not in use. */
	for (slot = 0; slot < DMIRROR_SPM_CHUNKS; slot++) {
		bool taken = false;

		range->start = mdevice->spm_base + slot * DMIRROR_CHUNK_SIZE;
		list_for_each_entry(other, &mdevice->chunks, link)
			taken |= other->pgmap.range.start == range->start;
		if (!taken)
			break;
	}
	if (slot == DMIRROR_SPM_CHUNKS)
		return -ENOMEM;
	range->end = range->start + DMIRROR_CHUNK_SIZE - 1;
	chunk->res = NULL;
	chunk->pgmap.type = MEMORY_DEVICE_COHERENT;
	return 0;
}

static void dmirror_unclaim_range(struct dmirror_chunk *chunk)
{
	if (chunk->res)
		release_mem_region(chunk->pgmap.range.start,
				   range_len(&chunk->pgmap.range));
}

/* Map one more chunk of device memory, every block of it free. */
static int dmirror_add_chunk(struct dmirror_device *mdevice)
{
	struct dmirror_chunk *chunk;
	void *vaddr;
	int ret;

	lockdep_assert_held(&mdevice->grow_lock);
	/* Zeroed: every block free. */
	chunk = kvzalloc(struct_size(chunk, blocks, DMIRROR_CHUNK_PAGES),
			 GFP_KERNEL);
	if (!chunk)
		return -ENOMEM;
	chunk->mdevice = mdevice;
	ret = dmirror_claim_range(mdevice, chunk);
	if (ret)
		goto free_chunk;

	chunk->pgmap.nr_range = 1;
	chunk->pgmap.ops = &dmirror_pgmap_ops;
	chunk->pgmap.owner = mdevice;
	vaddr = memremap_pages(&chunk->pgmap, numa_node_id());
	if (IS_ERR(vaddr)) {
		ret = PTR_ERR(vaddr);
		goto unclaim;
	}

	spin_lock(&mdevice->lock);
	list_add_tail(&chunk->link, &mdevice->chunks);
	spin_unlock(&mdevice->lock);
	mdevice->nr_chunks++;
	dev_dbg(&mdevice->dev, "chunk %u mapped at %pra\n", mdevice->nr_chunks,
		&chunk->pgmap.range);
	return 0;

unclaim:
	dmirror_unclaim_range(chunk);
free_chunk:
	kvfree(chunk);
	return ret;
}

/*
 * Grow the device until it has @n free blocks. Called before a migration
 * window takes any block: removal of a chunk holds grow_lock while it waits
 * for the chunk's pages, so a window that waited for grow_lock holding
 * locked device pages of its own could wait for itself.
 */
static int dmirror_reserve(struct dmirror_device *mdevice, unsigned long n)
{
	int ret = 0;

	mutex_lock(&mdevice->grow_lock);
	while (!ret && dmirror_free_blocks(mdevice) < n)
		ret = dmirror_add_chunk(mdevice);
	mutex_unlock(&mdevice->grow_lock);
	return ret;
}

/*
 * A page of device memory for data placed by @owner, locked and with one
 * reference, as migrate_vma_pages() wants its destination pages. Never
 * grows the device (see dmirror_reserve()): NULL when no block is free,
 * which after a reservation means a concurrent removal took the chunk.
 */
static struct page *dmirror_alloc_dpage(struct dmirror_device *mdevice,
					const void *owner)
{
	struct dmirror_chunk *chunk;
	struct dmirror_block *blk;
	struct page *dpage;

	dpage = dmirror_take_block(mdevice, owner);
	if (!dpage)
		return NULL;
	/* The block is ours now: its store may be set outside the lock. */
	blk = dmirror_page_block(dpage);
	if (dmirror_is_private(mdevice) && !blk->store) {
		blk->store = alloc_page(GFP_HIGHUSER);
		if (!blk->store) {
			chunk = dmirror_page_chunk(dpage);
			dmirror_put_blocks(chunk, blk - chunk->blocks, 1);
			return NULL;
		}
	}
	zone_device_page_init(dpage, page_pgmap(dpage), 0);
	return dpage;
}

/* The first block of a free, aligned run of DMIRROR_PMD_NR, or -1UL. */
static unsigned long dmirror_free_run(struct dmirror_chunk *chunk)
{
	unsigned long base;

	lockdep_assert_held(&chunk->mdevice->lock);
	if (chunk->retiring || DMIRROR_CHUNK_PAGES - chunk->nr_used < DMIRROR_PMD_NR)
		return -1UL;
	base = bitmap_find_next_zero_area(chunk->used, DMIRROR_CHUNK_PAGES, 0,
					  DMIRROR_PMD_NR, DMIRROR_PMD_NR - 1);
	return base <= DMIRROR_CHUNK_PAGES - DMIRROR_PMD_NR ? base : -1UL;
}

/* Is there room for a 2 MiB device page? */
static bool dmirror_has_free_run(struct dmirror_device *mdevice)
{
	struct dmirror_chunk *chunk;
	bool found = false;

	spin_lock(&mdevice->lock);
	list_for_each_entry(chunk, &mdevice->chunks, link)
		if (dmirror_free_run(chunk) != -1UL) {
			found = true;
			break;
		}
	spin_unlock(&mdevice->lock);
	return found;
}

/* Best effort: a chunk more if none has room for a 2 MiB device page. */
static void dmirror_reserve_huge(struct dmirror_device *mdevice)
{
	mutex_lock(&mdevice->grow_lock);
	if (!dmirror_has_free_run(mdevice))
		dmirror_add_chunk(mdevice);
	mutex_unlock(&mdevice->grow_lock);
}

/*
 * Give each block of the run @blk a store it lacks: one allocation of the
 * run's order if none has one (not a compound page: split_page() can cut
 * it up), pages of their own otherwise. Return: 0 or -ENOMEM.
 */
static int dmirror_fill_stores(struct dmirror_block *blk)
{
	unsigned long i, missing = 0;
	struct page *store;

	for (i = 0; i < DMIRROR_PMD_NR; i++)
		missing += !blk[i].store;
	if (missing == DMIRROR_PMD_NR) {
		store = alloc_pages(GFP_HIGHUSER | __GFP_NOWARN,
				    DMIRROR_PMD_ORDER);
		if (!store)
			return -ENOMEM;
		for (i = 0; i < DMIRROR_PMD_NR; i++)
			blk[i].store = nth_page(store, i);
		blk->store_order = DMIRROR_PMD_ORDER;
		return 0;
	}
	for (i = 0; missing && i < DMIRROR_PMD_NR; i++) {
		if (blk[i].store)
			continue;
		blk[i].store = alloc_page(GFP_HIGHUSER | __GFP_NOWARN);
		if (!blk[i].store)
			return -ENOMEM;
		missing--;
	}
	return 0;
}

/*
 * A 2 MiB device folio for data placed by @dmirror, locked and with one
 * reference, or NULL: no aligned run of free blocks (or no stores for
 * them), or the file asked for a failure (HMM_DMIRROR_FLAG_FAIL_ALLOC).
 */
static struct folio *dmirror_alloc_dfolio(struct dmirror *dmirror)
{
	struct dmirror_device *mdevice = dmirror->mdevice;
	unsigned long base = -1UL, i;
	struct dmirror_chunk *chunk;
	struct dmirror_block *blk;
	struct folio *folio;

	if (test_and_clear_bit(ilog2(HMM_DMIRROR_FLAG_FAIL_ALLOC),
			       &dmirror->flags))
		return NULL;

	spin_lock(&mdevice->lock);
	list_for_each_entry(chunk, &mdevice->chunks, link) {
		base = dmirror_free_run(chunk);
		if (base != -1UL)
			break;
	}
	if (base == -1UL) {
		spin_unlock(&mdevice->lock);
		return NULL;
	}
	bitmap_set(chunk->used, base, DMIRROR_PMD_NR);
	chunk->nr_used += DMIRROR_PMD_NR;
	blk = &chunk->blocks[base];
	for (i = 0; i < DMIRROR_PMD_NR; i++) {
		chunk->nr_cached -= !!blk[i].store;
		blk[i].owner = dmirror;
	}
	spin_unlock(&mdevice->lock);
	/* The run is ours now: its stores may be set outside the lock. */
	if (dmirror_is_private(mdevice) && dmirror_fill_stores(blk)) {
		dmirror_put_blocks(chunk, base, DMIRROR_PMD_NR);
		return NULL;
	}

	folio = pfn_folio(dmirror_chunk_pfn(chunk) + base);
	zone_device_folio_init(folio, &chunk->pgmap, DMIRROR_PMD_ORDER);
	return folio;
}

/*
 * dev_pagemap_ops.folio_free: the last reference to a device folio is
 * gone; its blocks are free again, their stores cached.
 */
static void dmirror_folio_free(struct folio *folio)
{
	struct dmirror_chunk *chunk = dmirror_page_chunk(&folio->page);

	atomic_long_inc(folio_test_large(folio) ? &chunk->mdevice->freed_huge :
			&chunk->mdevice->freed_small);
	dmirror_put_blocks(chunk, folio_pfn(folio) - dmirror_chunk_pfn(chunk),
			   folio_nr_pages(folio));
}

/*
 * dev_pagemap_ops.folio_split: the core split a 2 MiB device folio (to
 * move part of it, or to move it page by page). Its store is cut up with
 * it, on the first call, so that each page's store is a page of its own,
 * as the pages are freed and handed out again one by one.
 */
static void dmirror_folio_split(struct folio *head, struct folio *tail)
{
	struct dmirror_block *blk = dmirror_page_block(&head->page);

	/* Called for each new folio after the head: count the first. */
	if (folio_pfn(tail) == folio_pfn(head) + folio_nr_pages(head))
		atomic_long_inc(&dmirror_page_chunk(&head->page)->mdevice->splits);
	if (blk->store_order) {
		split_page(blk->store, blk->store_order);
		blk->store_order = 0;
	}
}

/* ---- Back to system memory ---- */

/*
 * A system THP for the 2 MiB device page @dpage, with its data, locked;
 * NULL if none can be allocated now (the caller gives single pages
 * instead, and the core splits the device page).
 */
static struct folio *dmirror_copy_home_huge(struct page *dpage,
					    struct vm_area_struct *vma,
					    unsigned long addr)
{
	struct folio *folio;
	unsigned long j;

	if (vma)
		folio = vma_alloc_folio(GFP_TRANSHUGE | __GFP_NOWARN,
					DMIRROR_PMD_ORDER, vma, addr, true);
	else
		folio = folio_alloc(GFP_TRANSHUGE | __GFP_NOWARN,
				    DMIRROR_PMD_ORDER);
	if (!folio)
		return NULL;
	folio_lock(folio);
	for (j = 0; j < DMIRROR_PMD_NR; j++)
		copy_highpage(folio_page(folio, j),
			      dmirror_data_page(nth_page(dpage, j)));
	return folio;
}

/*
 * Single system pages for @nr consecutive device pages from @dpage, each
 * with its data, in @dst. Returns -ENOMEM if some got none (it stays put).
 */
static int dmirror_copy_home_pages(struct page *dpage, unsigned long *dst,
				   unsigned long nr, struct vm_area_struct *vma,
				   unsigned long addr)
{
	unsigned long j;
	int ret = 0;

	for (j = 0; j < nr; j++, addr += PAGE_SIZE) {
		struct page *spage;

		if (vma)
			spage = alloc_page_vma(GFP_HIGHUSER_MOVABLE, vma, addr);
		else
			spage = alloc_page(GFP_HIGHUSER_MOVABLE | __GFP_NOFAIL);
		if (!spage) {
			ret = -ENOMEM;
			continue;
		}
		lock_page(spage);
		copy_highpage(spage, dmirror_data_page(nth_page(dpage, j)));
		dst[j] = migrate_pfn(page_to_pfn(spage));
	}
	return ret;
}

/*
 * Give every device page of @src that is being migrated a new system page
 * holding its data, in @dst: a THP for a compound entry if one can be
 * had, single pages otherwise (the core then splits the device page).
 * @vma and @addr say where the pages are mapped, for the memory policy;
 * eviction has no mapping to go by and passes NULL, and for it the
 * allocation of single pages cannot fail.
 * Return: 0, or -ENOMEM if some page got no system page (it stays put).
 */
static int dmirror_copy_home(const unsigned long *src, unsigned long *dst,
			     unsigned long npages, struct vm_area_struct *vma,
			     unsigned long addr)
{
	unsigned long i, nr;
	int ret = 0;

	memset(dst, 0, npages * sizeof(*dst));
	for (i = 0; i < npages; i += nr, addr += nr << PAGE_SHIFT) {
		struct page *dpage = migrate_pfn_to_page(src[i]);
		struct folio *folio = NULL;

		nr = src[i] & MIGRATE_PFN_COMPOUND ? DMIRROR_PMD_NR : 1;
		if (!dpage || !(src[i] & MIGRATE_PFN_MIGRATE))
			continue;
		if (nr > 1)
			folio = dmirror_copy_home_huge(dpage, vma, addr);
		if (folio)
			dst[i] = migrate_pfn(folio_pfn(folio)) |
				 MIGRATE_PFN_COMPOUND;
		else if (dmirror_copy_home_pages(dpage, &dst[i], nr, vma, addr))
			ret = -ENOMEM;
	}
	return ret;
}

/*
 * dev_pagemap_ops.migrate_to_ram: the CPU touched a device-private page.
 * A page of a 2 MiB device page brings back as much of it as the VMA
 * still covers: into a THP if its PMD maps it whole and one can be had,
 * page by page otherwise.
 */
static vm_fault_t dmirror_migrate_to_ram(struct vm_fault *vmf)
{
	struct folio *folio = page_folio(vmf->page);
	unsigned long size = folio_size(folio);
	unsigned long start = ALIGN_DOWN(vmf->address, size);
	unsigned long one_src, one_dst, *src = &one_src, *dst = &one_dst;
	struct migrate_vma args = {
		.vma		= vmf->vma,
		.start		= max(start, vmf->vma->vm_start),
		.end		= min(start + size, vmf->vma->vm_end),
		.pgmap_owner	= page_pgmap(vmf->page)->owner,
		.flags		= MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
		.fault_page	= vmf->page,
	};
	unsigned long npages = (args.end - args.start) >> PAGE_SHIFT;
	vm_fault_t ret = 0;

	if (folio_test_large(folio)) {
		src = kcalloc(2 * npages, sizeof(*src), GFP_KERNEL);
		if (!src)
			return VM_FAULT_OOM;
		dst = src + npages;
		args.flags |= MIGRATE_VMA_SELECT_COMPOUND;
	}
	args.src = src;
	args.dst = dst;
	if (migrate_vma_setup(&args)) {
		ret = VM_FAULT_SIGBUS;
	} else {
		if (dmirror_copy_home(src, dst, args.npages, vmf->vma,
				      args.start))
			ret = VM_FAULT_OOM;
		migrate_vma_pages(&args);
		migrate_vma_finalize(&args);
	}
	if (src != &one_src)
		kfree(src);
	return ret;
}

static const struct dev_pagemap_ops dmirror_pgmap_ops = {
	.folio_free	= dmirror_folio_free,
	.folio_split	= dmirror_folio_split,
	.migrate_to_ram	= dmirror_migrate_to_ram,
};

/* Is block @i of @chunk in use by @owner (by anyone when NULL)? */
static bool dmirror_block_matches(const struct dmirror_chunk *chunk,
				  unsigned long i, const void *owner)
{
	lockdep_assert_held(&chunk->mdevice->lock);
	return test_bit(i, chunk->used) &&
	       (!owner || chunk->blocks[i].owner == owner);
}

/*
 * From block *@first on, gather into @pfns the frames of the blocks in use
 * by @owner (by anyone when @owner is NULL), from the first such block up
 * to the next DMIRROR_PMD_NR boundary: at most DMIRROR_PMD_NR of them, and
 * a 2 MiB device page, aligned, always whole and in order. *@first moves
 * past the blocks looked at. The list may be stale by the time it is
 * used (a block freed and taken by another file meanwhile): such a page
 * is evicted too, which is always allowed, and what is left is counted
 * again under the lock.
 * Return: how many frames; 0 if no block from *@first on is in use.
 */
static unsigned long dmirror_gather(struct dmirror_chunk *chunk,
				    const void *owner, unsigned long *first,
				    unsigned long *pfns)
{
	unsigned long i = *first, end, n = 0;

	spin_lock(&chunk->mdevice->lock);
	while (i < DMIRROR_CHUNK_PAGES && !dmirror_block_matches(chunk, i, owner))
		i++;
	end = min_t(unsigned long, ALIGN(i + 1, DMIRROR_PMD_NR),
		    DMIRROR_CHUNK_PAGES);
	for (; i < end; i++)
		if (dmirror_block_matches(chunk, i, owner))
			pfns[n++] = dmirror_chunk_pfn(chunk) + i;
	spin_unlock(&chunk->mdevice->lock);
	*first = i;
	return n;
}

/*
 * Move the pages of @chunk placed by @owner (all pages when NULL) back to
 * system memory, wherever they are mapped: those of each 2 MiB of blocks
 * in one migrate_device_pfns() call, however scattered. Pages it cannot
 * lock right now are skipped.
 * Return: how many such pages are still in device memory.
 */
static unsigned long dmirror_evict_chunk(struct dmirror_chunk *chunk,
					 const void *owner)
{
	unsigned long first = 0, n, left = 0, i;
	unsigned long *src, *dst;

	lockdep_assert_held(&chunk->mdevice->grow_lock);
	src = kvmalloc_array(2 * DMIRROR_PMD_NR, sizeof(*src), GFP_KERNEL);
	if (!src)
		return DMIRROR_CHUNK_PAGES;	/* try again later */
	dst = src + DMIRROR_PMD_NR;
	while ((n = dmirror_gather(chunk, owner, &first, src))) {
		migrate_device_pfns(src, n);
		dmirror_copy_home(src, dst, n, NULL, 0);
		migrate_device_pages(src, dst, n);
		migrate_device_finalize(src, dst, n);
	}
	kvfree(src);

	spin_lock(&chunk->mdevice->lock);
	for (i = 0; i < DMIRROR_CHUNK_PAGES; i++)
		left += dmirror_block_matches(chunk, i, owner);
	spin_unlock(&chunk->mdevice->lock);
	return left;
}

/* Show the state of the first page of @chunk that will not leave. */
static void dmirror_dump_busy(struct dmirror_chunk *chunk)
{
	unsigned long i;

	spin_lock(&chunk->mdevice->lock);
	i = find_first_bit(chunk->used, DMIRROR_CHUNK_PAGES);
	spin_unlock(&chunk->mdevice->lock);
	if (i < DMIRROR_CHUNK_PAGES)
		dump_page(pfn_to_page(dmirror_chunk_pfn(chunk) + i),
			  "test_hmm: busy device page");
}

/*
 * Empty a chunk: mark it retiring, so that no new data goes there, and
 * evict until every page of it is back in system memory. With @killable,
 * a fatal signal ends the wait for busy pages: the chunk stays retiring
 * and a later removal finishes the job.
 * Return: 0, or -EINTR when it gave up.
 */
static int dmirror_empty_chunk(struct dmirror_chunk *chunk, bool killable)
{
	struct dmirror_device *mdevice = chunk->mdevice;
	unsigned long left, tries;

	lockdep_assert_held(&mdevice->grow_lock);
	spin_lock(&mdevice->lock);
	chunk->retiring = true;
	spin_unlock(&mdevice->lock);

	for (tries = 1; (left = dmirror_evict_chunk(chunk, NULL)); tries++) {
		if (killable && fatal_signal_pending(current))
			return -EINTR;
		if (tries % DMIRROR_EVICT_TRIES == 0) {
			dev_warn(&mdevice->dev, "%lu pages busy, still evicting\n",
				 left);
			if (tries == DMIRROR_EVICT_TRIES)
				dmirror_dump_busy(chunk);
		}
		msleep(20);
	}
	return 0;
}

/*
 * memunmap_pages() of an empty chunk waits for RCU grace periods (the kill
 * of its reference count, the memory hotplug lock). Run from a work item,
 * the unmaps of all chunks wait for the same grace periods instead of one
 * after the other: a device of 16 chunks comes down about as fast as one.
 */
static void dmirror_unmap_chunk_work(struct work_struct *work)
{
	struct dmirror_chunk *chunk = container_of(work, struct dmirror_chunk,
						   unmap_work);

	memunmap_pages(&chunk->pgmap);
}

/*
 * Free the stores cached in the free blocks of @chunk, at most @nr pages'
 * worth (a run's single allocation goes whole, or not at all).
 * Return: pages freed.
 */
static unsigned long dmirror_drop_stores(struct dmirror_chunk *chunk,
					 unsigned long nr)
{
	unsigned long i, freed = 0;
	struct dmirror_block *blk;

	lockdep_assert_held(&chunk->mdevice->lock);
	for_each_clear_bit(i, chunk->used, DMIRROR_CHUNK_PAGES) {
		if (freed >= nr)
			break;
		blk = &chunk->blocks[i];
		if (!blk->store)
			continue;
		if (blk->store_order) {
			/* A free run, cached whole: its first block. */
			VM_WARN_ON_ONCE(find_next_bit(chunk->used,
						      i + DMIRROR_PMD_NR, i) <
					i + DMIRROR_PMD_NR);
			__free_pages(blk->store, blk->store_order);
			blk->store_order = 0;
			for (; blk < &chunk->blocks[i + DMIRROR_PMD_NR]; blk++)
				blk->store = NULL;
			i += DMIRROR_PMD_NR - 1;
			freed += DMIRROR_PMD_NR;
			continue;
		}
		__free_page(blk->store);
		blk->store = NULL;
		freed++;
	}
	chunk->nr_cached -= freed;
	return freed;
}

/* Forget a chunk whose memory is unmapped, and free its stores. */
static void dmirror_free_chunk(struct dmirror_chunk *chunk)
{
	struct dmirror_device *mdevice = chunk->mdevice;

	lockdep_assert_held(&mdevice->grow_lock);
	dmirror_unclaim_range(chunk);
	spin_lock(&mdevice->lock);
	list_del(&chunk->link);
	dmirror_drop_stores(chunk, DMIRROR_CHUNK_PAGES);
	spin_unlock(&mdevice->lock);
	mdevice->nr_chunks--;
	kvfree(chunk);
}

/*
 * The shrinker of a device-private device: the stores cached in free
 * blocks, which the device can give back at once. Only mdevice->lock is
 * taken: reclaim may run under grow_lock (a chunk being added allocates).
 */
static unsigned long dmirror_count_stores(struct shrinker *shrinker,
					  struct shrink_control *sc)
{
	struct dmirror_device *mdevice = shrinker->private_data;
	struct dmirror_chunk *chunk;
	unsigned long n = 0;

	spin_lock(&mdevice->lock);
	list_for_each_entry(chunk, &mdevice->chunks, link)
		n += chunk->nr_cached;
	spin_unlock(&mdevice->lock);
	return n ?: SHRINK_EMPTY;
}

static unsigned long dmirror_scan_stores(struct shrinker *shrinker,
					 struct shrink_control *sc)
{
	struct dmirror_device *mdevice = shrinker->private_data;
	struct dmirror_chunk *chunk;
	unsigned long freed = 0;

	spin_lock(&mdevice->lock);
	list_for_each_entry(chunk, &mdevice->chunks, link) {
		if (freed >= sc->nr_to_scan)
			break;
		if (chunk->nr_cached)
			freed += dmirror_drop_stores(chunk,
						     sc->nr_to_scan - freed);
	}
	spin_unlock(&mdevice->lock);
	return freed ?: SHRINK_STOP;
}

/*
 * HMM_DMIRROR_RELEASE (@killable) and module unload: give back all device
 * memory. Each chunk is emptied in turn, and its unmap starts as soon as it
 * is empty, alongside the eviction of the next; all unmaps are waited for
 * before returning, also when a fatal signal stopped the eviction (the
 * chunks not yet empty then stay retiring, in the list).
 * Return: 0, or -EINTR from a killed RELEASE.
 */
static int dmirror_remove_chunks(struct dmirror_device *mdevice, bool killable)
{
	struct dmirror_chunk *chunk, *next, *stop = NULL;
	int ret = 0;

	mutex_lock(&mdevice->grow_lock);
	list_for_each_entry(chunk, &mdevice->chunks, link) {
		ret = dmirror_empty_chunk(chunk, killable);
		if (ret) {
			stop = chunk;
			break;
		}
		INIT_WORK(&chunk->unmap_work, dmirror_unmap_chunk_work);
		queue_work(system_unbound_wq, &chunk->unmap_work);
	}
	list_for_each_entry_safe(chunk, next, &mdevice->chunks, link) {
		if (chunk == stop)
			break;
		flush_work(&chunk->unmap_work);
		dmirror_free_chunk(chunk);
	}
	mutex_unlock(&mdevice->grow_lock);
	return ret;
}

/*
 * The release of a file: move the pages it placed in device memory back.
 * A page that stays busy for long (pinned) loses its owner tag instead and
 * goes back when the device memory is removed.
 */
static void dmirror_evict_owner(struct dmirror_device *mdevice,
				const void *owner)
{
	struct dmirror_chunk *chunk;
	unsigned long left = 0;
	unsigned int tries, i;

	mutex_lock(&mdevice->grow_lock);
	for (tries = 0; tries < DMIRROR_EVICT_TRIES; tries++) {
		left = 0;
		list_for_each_entry(chunk, &mdevice->chunks, link)
			left += dmirror_evict_chunk(chunk, owner);
		if (!left)
			break;
		msleep(20);
	}
	if (left) {
		dev_warn(&mdevice->dev, "%lu busy pages left in device memory\n",
			 left);
		spin_lock(&mdevice->lock);
		list_for_each_entry(chunk, &mdevice->chunks, link)
			for (i = 0; i < DMIRROR_CHUNK_PAGES; i++)
				if (dmirror_block_matches(chunk, i, owner))
					chunk->blocks[i].owner = NULL;
		spin_unlock(&mdevice->lock);
	}
	mutex_unlock(&mdevice->grow_lock);
}

/* ---- The device page table ---- */

/*
 * Forget what pt maps in [start, end) and publish @seq, so that every
 * reader that began before sees mmu_interval_read_retry() fail (@seq 0,
 * never a notifier's: the one-walk fault's own migration, which walk_gen
 * covers instead; see struct dmirror). A huge
 * entry that [start, end) only cuts goes whole: storing NULL at one index
 * of a multi-index entry empties all of it.
 */
static void dmirror_pt_invalidate(struct dmirror *dmirror, unsigned long start,
				  unsigned long end, unsigned long seq)
{
	XA_STATE(xas, &dmirror->pt, start >> PAGE_SHIFT);
	void *entry;

	lockdep_assert_held(&dmirror->lock);
	if (seq)
		mmu_interval_set_seq(&dmirror->notifier, seq);
	xas_lock(&xas);
	xas_for_each(&xas, entry, (end - 1) >> PAGE_SHIFT)
		xas_store(&xas, NULL);
	xas_unlock(&xas);
}

/*
 * Store a pt entry for @page at @addr that maps 2^@order pages from there
 * (@order > 0: a huge entry, one multi-index entry of the xarray, for a
 * range the CPU maps with one PMD; @addr and @page are its first). A
 * single page stored into a huge entry takes the huge entry out first,
 * since a store to one index of it would change them all. No sleeping
 * allocation under dmirror->lock.
 */
static int dmirror_pt_set(struct dmirror *dmirror, unsigned long addr,
			  struct page *page, unsigned int order,
			  enum dmirror_access access)
{
	XA_STATE_ORDER(xas, &dmirror->pt, addr >> PAGE_SHIFT, order);

	lockdep_assert_held(&dmirror->lock);
	do {
		xas_lock(&xas);
		if (!order && xas_load(&xas) && xas_get_order(&xas)) {
			xas_store(&xas, NULL);
			xas_set(&xas, addr >> PAGE_SHIFT);
		}
		xas_store(&xas, xa_tag_pointer(page, access));
		xas_unlock(&xas);
	} while (xas_nomem(&xas, GFP_NOWAIT | __GFP_NOWARN));
	return xas_error(&xas);
}

/*
 * Map page @i of @range, valid in it, with @access: a page the CPU maps
 * with a PMD (hmm_pfn_to_map_order()) by a huge entry for all of that PMD.
 * Return: how many pages of the range from @i on are mapped now, or a
 * negative error.
 */
static long dmirror_pt_map(struct dmirror *dmirror,
			   const struct hmm_range *range, unsigned long i,
			   enum dmirror_access access)
{
	unsigned long hpfn = range->hmm_pfns[i];
	/* Multi-index entries: ZONE_DEVICE selects XARRAY_MULTI. */
	unsigned int order = hmm_pfn_to_map_order(hpfn);
	unsigned long addr = range->start + i * PAGE_SIZE;
	unsigned long first = ALIGN_DOWN(addr, PAGE_SIZE << order);
	unsigned long last = first + (PAGE_SIZE << order);
	unsigned long pfn = page_to_pfn(hmm_pfn_to_page(hpfn));
	int ret;

	ret = dmirror_pt_set(dmirror, first,
			     pfn_to_page(pfn - ((addr - first) >> PAGE_SHIFT)),
			     order, access);
	if (ret)
		return ret;
	return (min(last, range->end) - addr) >> PAGE_SHIFT;
}

/*
 * The page pt maps at @addr, and through *@tag the access; NULL if none.
 * *@nr: how many pages from @addr on the same entry maps (all of a huge
 * entry's from there).
 */
static struct page *dmirror_pt_get(struct dmirror *dmirror, unsigned long addr,
				   enum dmirror_access *tag, unsigned long *nr)
{
	XA_STATE(xas, &dmirror->pt, addr >> PAGE_SHIFT);
	unsigned long index = addr >> PAGE_SHIFT, off;
	unsigned int order = 0;
	void *entry;

	lockdep_assert_held(&dmirror->lock);
	rcu_read_lock();
	entry = xas_load(&xas);
	if (entry)
		order = xas_get_order(&xas);
	rcu_read_unlock();
	if (!entry)
		return NULL;
	off = index & ((1UL << order) - 1);
	*tag = xa_pointer_tag(entry);
	*nr = (1UL << order) - off;
	return nth_page((struct page *)xa_untag_pointer(entry), off);
}

/*
 * Under dmirror->lock: may a reader that read walk_gen @gen before it
 * looked at the CPU page table map what it saw? Not if a one-walk window
 * was running then, or ran since.
 */
static bool dmirror_walk_gen_held(struct dmirror *dmirror, unsigned long gen)
{
	lockdep_assert_held(&dmirror->lock);
	return !(gen & 1) && dmirror->walk_gen == gen;
}

/* Take dmirror->lock the way an invalidation allows: sleep only if it may. */
static bool dmirror_lock_for(struct dmirror *dmirror,
			     const struct mmu_notifier_range *range)
{
	if (!mmu_notifier_range_blockable(range))
		return mutex_trylock(&dmirror->lock);
	mutex_lock(&dmirror->lock);
	return true;
}

/*
 * mmu_interval_notifier_ops.invalidate: the CPU page table is about to
 * change in @range. Our own exclusive request keeps the same pages mapped
 * and passes; see dmirror_exclusive_window().
 */
static bool dmirror_invalidate(struct mmu_interval_notifier *mni,
			       const struct mmu_notifier_range *range,
			       unsigned long cur_seq)
{
	struct dmirror *dmirror = container_of(mni, struct dmirror, notifier);
	bool locked;

	if (range->event == MMU_NOTIFY_EXCLUSIVE && range->owner == dmirror)
		return true;
	/* The one-walk fault's own migration: see struct dmirror. */
	if (range->event == MMU_NOTIFY_MIGRATE &&
	    range->owner == dmirror->mdevice &&
	    READ_ONCE(dmirror->walker) == current)
		cur_seq = 0;
	locked = dmirror_lock_for(dmirror, range);
	if (locked) {
		dmirror_pt_invalidate(dmirror, range->start, range->end,
				      cur_seq);
		mutex_unlock(&dmirror->lock);
	}
	return locked;
}

static const struct mmu_interval_notifier_ops dmirror_notifier_ops = {
	.invalidate = dmirror_invalidate,
};

/* What to do with a current view of the CPU page table, under the lock. */
typedef int (*dmirror_use_fn)(struct dmirror *dmirror,
			      const struct hmm_range *range, void *buf);

/*
 * Fill range->hmm_pfns with hmm_range_fault(), which faults in what
 * range->default_flags asks for, then run @use on the result under
 * dmirror->lock, where the result is known to be current.
 * Context: the caller holds a reference on the mm (mm_users); may sleep.
 * Return: what @use returns, or the error of hmm_range_fault(); -EBUSY if
 * the range kept changing for HMM_RANGE_DEFAULT_TIMEOUT ms.
 */
static int dmirror_with_cpu_view(struct dmirror *dmirror,
				 struct hmm_range *range, dmirror_use_fn use,
				 void *buf)
{
	struct mm_struct *mm = dmirror->notifier.mm;
	unsigned long deadline, gen;
	int ret;

	deadline = jiffies + msecs_to_jiffies(HMM_RANGE_DEFAULT_TIMEOUT);
	range->notifier = &dmirror->notifier;
	for (;;) {
		if (fatal_signal_pending(current))
			return -EINTR;
		if (time_after(jiffies, deadline))
			return -EBUSY;
		range->notifier_seq = mmu_interval_read_begin(range->notifier);
		gen = READ_ONCE(dmirror->walk_gen);
		if (mmap_read_lock_killable(mm))
			return -EINTR;
		ret = hmm_range_fault(range);
		mmap_read_unlock(mm);
		if (ret == -EBUSY)
			continue;
		if (ret)
			return ret;

		mutex_lock(&dmirror->lock);
		if (!mmu_interval_read_retry(range->notifier,
					     range->notifier_seq) &&
		    dmirror_walk_gen_held(dmirror, gen))
			break;
		mutex_unlock(&dmirror->lock);
	}
	ret = use(dmirror, range, buf);
	mutex_unlock(&dmirror->lock);
	return ret;
}

static unsigned long dmirror_range_pages(const struct hmm_range *range)
{
	return (range->end - range->start) >> PAGE_SHIFT;
}

/*
 * dmirror_use_fn: map what hmm_range_fault() found. A device write needs
 * a writable mapping; a device-private page of ours that is read-only
 * (shared copy-on-write after fork) has to go through the CPU first.
 */
static int dmirror_pt_fill(struct dmirror *dmirror,
			   const struct hmm_range *range, void *buf)
{
	bool write = range->default_flags & HMM_PFN_REQ_WRITE;
	unsigned long i, npages = dmirror_range_pages(range);
	long ret;

	for (i = 0; i < npages; i += ret) {
		unsigned long hpfn = range->hmm_pfns[i];

		ret = 1;
		if (!(hpfn & HMM_PFN_VALID))
			continue;
		if (write && !(hpfn & HMM_PFN_WRITE))
			return -EAGAIN;
		ret = dmirror_pt_map(dmirror, range, i,
				     hpfn & HMM_PFN_WRITE ? DMIRROR_MAP_WRITE :
							    DMIRROR_MAP_READ);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/*
 * A device fault: map [start, end) in pt, faulting pages in as a CPU read
 * (or write) would. @owner is the dev_private_owner for hmm_range_fault():
 * NULL makes even our own device-private pages come back to the CPU.
 */
static int dmirror_fault_in(struct dmirror *dmirror, unsigned long start,
			    unsigned long end, bool write, void *owner)
{
	unsigned long pfns[DMIRROR_WINDOW];
	struct hmm_range range = {
		.hmm_pfns		= pfns,
		.default_flags		= HMM_PFN_REQ_FAULT |
					  (write ? HMM_PFN_REQ_WRITE : 0),
		.dev_private_owner	= owner,
	};
	int ret;

	for (range.end = start; range.end < end;) {
		range.start = range.end;
		range.end = min(end, range.start + DMIRROR_WINDOW * PAGE_SIZE);
		ret = dmirror_with_cpu_view(dmirror, &range, dmirror_pt_fill,
					    NULL);
		if (ret == -EAGAIN && range.dev_private_owner) {
			range.dev_private_owner = NULL;
			ret = dmirror_with_cpu_view(dmirror, &range,
						    dmirror_pt_fill, NULL);
			range.dev_private_owner = owner;
		}
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * A window of the user's buffer cmd->ptr, pinned. The device copies page
 * data straight between its pages and the user's, under dmirror->lock
 * where nothing may fault: one copy, page by page, where a bounce buffer
 * would take two and a byte-wise copy_to_user().
 */
struct dmirror_uwin {
	struct page	*pages[DMIRROR_WINDOW + 1];
	unsigned int	nr;	/* pinned */
	unsigned int	off;	/* of the buffer in its first page */
	bool		written;	/* a page was copied to the user */
};

/*
 * Pin the user pages under @npages pages' worth of buffer at @uptr (in
 * the caller's address space), writable if the device copies @to_user.
 * Return: 0, -EINTR (a fatal signal), -ENOMEM, or -EFAULT.
 */
static int dmirror_uwin_pin(struct dmirror_uwin *uw, const char __user *uptr,
			    unsigned long npages, bool to_user)
{
	unsigned long start = (unsigned long)uptr;
	int nr, got;

	uw->off = offset_in_page(start);
	uw->written = false;
	nr = npages + !!uw->off;
	got = pin_user_pages_fast(start & PAGE_MASK, nr,
				  to_user ? FOLL_WRITE : 0, uw->pages);
	uw->nr = max(got, 0);
	if (got == nr)
		return 0;
	unpin_user_pages(uw->pages, uw->nr);
	uw->nr = 0;
	if (fatal_signal_pending(current))
		return -EINTR;
	return got == -ENOMEM ? -ENOMEM : -EFAULT;
}

/* Unpin the window, marking its pages dirty if the device wrote any. */
static void dmirror_uwin_unpin(struct dmirror_uwin *uw)
{
	unpin_user_pages_dirty_lock(uw->pages, uw->nr, uw->written);
	uw->nr = 0;
}

/*
 * memmove() from page to page: the source may be the destination, when
 * ptr overlaps the range of the command and a page of the range is in
 * system memory.
 */
static void dmirror_move_page(struct page *dst, unsigned int dst_off,
			      struct page *src, unsigned int src_off,
			      unsigned int len)
{
	char *to = kmap_local_page(dst);
	char *from = kmap_local_page(src);

	memmove(to + dst_off, from + src_off, len);
	kunmap_local(from);
	kunmap_local(to);
}

/*
 * Copy page @i of the window into @page, or, @to_user, from it. A page
 * off ptr's page boundaries takes two parts, of two user pages; when
 * @page is one of them, the part that reads what the other part writes
 * goes first.
 */
static void dmirror_uwin_copy(struct dmirror_uwin *uw, unsigned long i,
			      struct page *page, bool to_user)
{
	struct page *first = uw->pages[i], *second;
	unsigned int off = uw->off, head = PAGE_SIZE - off;

	if (!off) {
		if (to_user)
			copy_highpage(first, page);
		else
			copy_highpage(page, first);
	} else if (to_user) {
		second = uw->pages[i + 1];
		if (page == first)
			dmirror_move_page(second, 0, page, head, off);
		dmirror_move_page(first, off, page, 0, head);
		if (page != first)
			dmirror_move_page(second, 0, page, head, off);
	} else {
		second = uw->pages[i + 1];
		if (page == second)
			dmirror_move_page(page, head, second, 0, off);
		dmirror_move_page(page, 0, first, off, head);
		if (page != second)
			dmirror_move_page(page, head, second, 0, off);
	}
	if (to_user) {
		flush_dcache_page(first);
		if (off)
			flush_dcache_page(uw->pages[i + 1]);
		uw->written = true;
	}
}

/*
 * Copy between pt's pages and the user's window @uw, from @addr and page
 * @first of the window for at most @npages pages, stopping at the first
 * page the device does not map (for a write: does not map writable).
 * Return: pages copied.
 */
static unsigned long dmirror_pt_copy(struct dmirror *dmirror,
				     unsigned long addr, unsigned long npages,
				     struct dmirror_uwin *uw,
				     unsigned long first, bool write)
{
	enum dmirror_access tag;
	unsigned long i = 0, j, nr;
	struct page *page;

	while (i < npages) {
		page = dmirror_pt_get(dmirror, addr, &tag, &nr);
		if (!page || (write && tag == DMIRROR_MAP_READ))
			break;
		for (j = 0; j < nr && i < npages; j++, i++, addr += PAGE_SIZE)
			dmirror_uwin_copy(uw, first + i,
					  dmirror_data_page(nth_page(page, j)),
					  !write);
	}
	return i;
}

/* ---- Commands ---- */

static unsigned long dmirror_cmd_end(const struct hmm_dmirror_cmd *cmd)
{
	return cmd->addr + (cmd->npages << PAGE_SHIFT);
}

/*
 * HMM_DMIRROR_READ and _WRITE: the device copies window by window; where
 * pt has no (suitable) entry it faults in everything from there to the end
 * of the range, which counts as one fault.
 */
static int dmirror_access(struct dmirror *dmirror, struct hmm_dmirror_cmd *cmd,
			  bool write)
{
	char __user *uptr = u64_to_user_ptr(cmd->ptr);
	unsigned long end = dmirror_cmd_end(cmd);
	unsigned long addr, n, done, fault_end;
	struct dmirror_uwin *uw;
	int ret = 0;

	uw = kmalloc(sizeof(*uw), GFP_KERNEL);
	if (!uw)
		return -ENOMEM;
	for (addr = cmd->addr; addr < end; addr += n * PAGE_SIZE) {
		n = min(DMIRROR_WINDOW, (end - addr) >> PAGE_SHIFT);
		ret = dmirror_uwin_pin(uw, uptr, n, !write);
		if (ret)
			break;
		/*
		 * The first fault of a window maps the rest of the command
		 * too (one fault round for a whole range); a retry maps only
		 * the window, since a range larger than free memory could
		 * otherwise reclaim the window while faulting in the rest.
		 */
		fault_end = end;
		for (done = 0;;) {
			mutex_lock(&dmirror->lock);
			done += dmirror_pt_copy(dmirror, addr + done * PAGE_SIZE,
						n - done, uw, done, write);
			mutex_unlock(&dmirror->lock);
			if (done == n)
				break;
			ret = dmirror_fault_in(dmirror, addr + done * PAGE_SIZE,
					       fault_end, write,
					       dmirror->mdevice);
			if (ret)
				break;
			cmd->faults++;
			fault_end = addr + n * PAGE_SIZE;
		}
		dmirror_uwin_unpin(uw);
		if (ret)
			break;
		uptr += n * PAGE_SIZE;
		cmd->cpages += n;
	}
	kfree(uw);
	return ret;
}

static int dmirror_cmd_read(struct dmirror *dmirror,
			    struct hmm_dmirror_cmd *cmd)
{
	return dmirror_access(dmirror, cmd, false);
}

static int dmirror_cmd_write(struct dmirror *dmirror,
			     struct hmm_dmirror_cmd *cmd)
{
	return dmirror_access(dmirror, cmd, true);
}

/*
 * Look at the CPU page table without faulting anything, window by window:
 * @use turns each window into @unit bytes per page for cmd->ptr. A page's
 * worth (@unit PAGE_SIZE) goes straight into the user's pages, pinned: @use
 * gets a struct dmirror_uwin. Less goes through a buffer.
 */
static int dmirror_look(struct dmirror *dmirror, struct hmm_dmirror_cmd *cmd,
			dmirror_use_fn use, size_t unit)
{
	char __user *uptr = u64_to_user_ptr(cmd->ptr);
	unsigned long end = dmirror_cmd_end(cmd);
	unsigned long pfns[DMIRROR_WINDOW];
	struct hmm_range range = {
		.hmm_pfns		= pfns,
		.dev_private_owner	= dmirror->mdevice,
	};
	bool pinned = unit == PAGE_SIZE;
	struct dmirror_uwin *uw = NULL;
	unsigned long n;
	int ret = 0;
	void *buf;

	if (pinned) {
		uw = kmalloc(sizeof(*uw), GFP_KERNEL);
		buf = uw;
	} else {
		buf = kvmalloc(DMIRROR_WINDOW * unit, GFP_KERNEL);
	}
	if (!buf)
		return -ENOMEM;
	for (range.end = cmd->addr; range.end < end; uptr += n * unit) {
		range.start = range.end;
		range.end = min(end, range.start + DMIRROR_WINDOW * PAGE_SIZE);
		n = dmirror_range_pages(&range);
		if (pinned) {
			ret = dmirror_uwin_pin(uw, uptr, n, true);
			if (ret)
				break;
		}
		ret = dmirror_with_cpu_view(dmirror, &range, use, buf);
		if (pinned)
			dmirror_uwin_unpin(uw);
		else if (!ret && copy_to_user(uptr, buf, n * unit))
			ret = -EFAULT;
		if (ret)
			break;
		cmd->cpages += n;
	}
	kvfree(buf);
	return ret;
}

/* The snapshot byte for one hmm_range_fault() result. */
static u8 dmirror_snapshot_byte(struct dmirror_device *mdevice,
				unsigned long hpfn)
{
	struct dmirror_device *holder;
	unsigned int shift;
	struct page *page;
	u8 prot;

	if (hpfn & HMM_PFN_ERROR)
		return HMM_DMIRROR_PROT_ERROR;
	if (!(hpfn & HMM_PFN_VALID))
		return HMM_DMIRROR_PROT_NONE;

	page = hmm_pfn_to_page(hpfn);
	holder = dmirror_page_device(page);
	if (is_zero_pfn(page_to_pfn(page)))
		prot = HMM_DMIRROR_PROT_ZERO;
	else if (!holder)
		prot = HMM_DMIRROR_PROT_NONE;
	else if (is_device_private_page(page))
		prot = holder == mdevice ? HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL :
					   HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE;
	else
		prot = holder == mdevice ? HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL :
					   HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE;

	prot |= hpfn & HMM_PFN_WRITE ? HMM_DMIRROR_PROT_WRITE :
				       HMM_DMIRROR_PROT_READ;
	shift = hmm_pfn_to_map_order(hpfn) + PAGE_SHIFT;
	if (shift == PMD_SHIFT)
		prot |= HMM_DMIRROR_PROT_PMD;
	else if (shift == PUD_SHIFT)
		prot |= HMM_DMIRROR_PROT_PUD;
	return prot;
}

/*
 * dmirror_use_fn for HMM_DMIRROR_SNAPSHOT: a byte per page into @buf. The
 * pages of one huge mapping are reported alike, so its byte is worked out
 * once and repeated up to the mapping's end.
 */
static int dmirror_snapshot_window(struct dmirror *dmirror,
				   const struct hmm_range *range, void *buf)
{
	unsigned long i, nr, npages = dmirror_range_pages(range);
	u8 *perm = buf;

	for (i = 0; i < npages; i += nr) {
		unsigned long hpfn = range->hmm_pfns[i];
		unsigned long span = 1UL << hmm_pfn_to_map_order(hpfn);

		u8 byte = dmirror_snapshot_byte(dmirror->mdevice, hpfn);

		nr = 1;
		perm[i] = byte;
		if (!(hpfn & HMM_PFN_VALID) || span == 1)
			continue;
		nr = min(span - (((range->start >> PAGE_SHIFT) + i) &
				 (span - 1)), npages - i);
		memset(perm + i + 1, byte, nr - 1);
	}
	return 0;
}

static int dmirror_cmd_snapshot(struct dmirror *dmirror,
				struct hmm_dmirror_cmd *cmd)
{
	return dmirror_look(dmirror, cmd, dmirror_snapshot_window, 1);
}

/*
 * dmirror_use_fn after HMM_DMIRROR_MIGRATE_TO_DEV: each page must now be
 * in this device's memory; the device maps it, as a device that just
 * moved memory into itself would, and copies it to the caller's pinned
 * buffer, the struct dmirror_uwin @buf.
 */
static int dmirror_map_local(struct dmirror *dmirror,
			     const struct hmm_range *range, void *buf)
{
	unsigned long i, j, npages = dmirror_range_pages(range);
	struct dmirror_uwin *uw = buf;
	long nr;

	for (i = 0; i < npages; i += nr) {
		unsigned long hpfn = range->hmm_pfns[i];
		struct page *page;

		if (!(hpfn & HMM_PFN_VALID))
			return -ENOENT;
		page = hmm_pfn_to_page(hpfn);
		if (dmirror_page_device(page) != dmirror->mdevice)
			return -ENOENT;
		/* A huge entry: every page of it is of the same folio. */
		nr = dmirror_pt_map(dmirror, range, i,
				    hpfn & HMM_PFN_WRITE ? DMIRROR_MAP_WRITE :
							   DMIRROR_MAP_READ);
		if (nr < 0)
			return nr;
		for (j = 0; j < nr; j++)
			dmirror_uwin_copy(uw, i + j,
					  dmirror_data_page(nth_page(page, j)),
					  true);
	}
	return 0;
}

/* The ways a migration can go; see dmirror_migrate(). */
struct dmirror_direction {
	unsigned long	select;		/* MIGRATE_VMA_SELECT_* */
	int		(*copy)(struct dmirror *dmirror,
				struct migrate_vma *args);
	int		stuck_error;	/* a selected page did not move */
};

/* Copy @spage (NULL: zeroes) into device page @dpage. */
static void dmirror_fill_dpage(struct page *dpage, struct page *spage)
{
	if (spage)
		copy_highpage(dmirror_data_page(dpage), spage);
	else
		clear_highpage(dmirror_data_page(dpage));
}

/*
 * The compound entry @i of @args: a 2 MiB device page with its data, or,
 * when there is none to be had, 512 single pages, each with the data of
 * its page of the source (the core then splits a THP source).
 */
static int dmirror_copy_compound(struct dmirror *dmirror,
				 struct migrate_vma *args, unsigned long i)
{
	struct page *spage = migrate_pfn_to_page(args->src[i]);
	struct folio *dfolio = dmirror_alloc_dfolio(dmirror);
	unsigned long j;

	if (dfolio) {
		for (j = 0; j < DMIRROR_PMD_NR; j++)
			dmirror_fill_dpage(folio_page(dfolio, j),
					   spage ? nth_page(spage, j) : NULL);
		args->dst[i] = migrate_pfn(folio_pfn(dfolio)) |
			       MIGRATE_PFN_COMPOUND;
		return 0;
	}
	for (j = 0; j < DMIRROR_PMD_NR; j++) {
		struct page *dpage = dmirror_alloc_dpage(dmirror->mdevice,
							 dmirror);

		if (!dpage)
			return -ENOMEM;
		dmirror_fill_dpage(dpage, spage ? nth_page(spage, j) : NULL);
		args->dst[i + j] = migrate_pfn(page_to_pfn(dpage));
	}
	return 0;
}

/*
 * Fill args->dst with device pages holding the data of args->src.
 * Return: 0 or -ENOMEM.
 */
static int dmirror_copy_to_device(struct dmirror *dmirror,
				  struct migrate_vma *args)
{
	unsigned long i, wanted = 0;
	int ret;

	memset(args->dst, 0, args->npages * sizeof(*args->dst));
	for (i = 0; i < args->npages; i++) {
		if (!(args->src[i] & MIGRATE_PFN_MIGRATE))
			continue;
		if (args->src[i] & MIGRATE_PFN_COMPOUND) {
			wanted += DMIRROR_PMD_NR;
			dmirror_reserve_huge(dmirror->mdevice);
		} else {
			wanted++;
		}
	}
	ret = dmirror_reserve(dmirror->mdevice, wanted);
	if (ret)
		return ret;

	for (i = 0; i < args->npages; i++) {
		struct page *spage = migrate_pfn_to_page(args->src[i]);
		struct page *dpage;

		if (!(args->src[i] & MIGRATE_PFN_MIGRATE))
			continue;
		if (args->src[i] & MIGRATE_PFN_COMPOUND) {
			ret = dmirror_copy_compound(dmirror, args, i);
			if (ret)
				return ret;
			i += DMIRROR_PMD_NR - 1;
			continue;
		}
		/* SELECT_SYSTEM: spage is system memory, or none (zero/empty). */
		dpage = dmirror_alloc_dpage(dmirror->mdevice, dmirror);
		if (!dpage)
			return -ENOMEM;
		dmirror_fill_dpage(dpage, spage);
		args->dst[i] = migrate_pfn(page_to_pfn(dpage));
	}
	return 0;
}

static int dmirror_copy_to_system(struct dmirror *dmirror,
				  struct migrate_vma *args)
{
	return dmirror_copy_home(args->src, args->dst, args->npages,
				 args->vma, args->start);
}

static const struct dmirror_direction dmirror_to_device = {
	.select		= MIGRATE_VMA_SELECT_SYSTEM,
	.copy		= dmirror_copy_to_device,
	.stuck_error	= -ENOENT,
};

static const struct dmirror_direction dmirror_to_private_system = {
	.select		= MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
	.copy		= dmirror_copy_to_system,
	.stuck_error	= -EBUSY,
};

static const struct dmirror_direction dmirror_to_coherent_system = {
	.select		= MIGRATE_VMA_SELECT_DEVICE_COHERENT,
	.copy		= dmirror_copy_to_system,
	.stuck_error	= -EBUSY,
};

/* A VMA check: 0 if @vma (NULL: no VMA there) suits the command. */
typedef int (*dmirror_vma_check_fn)(const struct vm_area_struct *vma);

/* Run @check on every VMA of [start, end), holes included. */
static int dmirror_check_vmas(struct mm_struct *mm, unsigned long start,
			      unsigned long end, dmirror_vma_check_fn check)
{
	struct vm_area_struct *vma;
	unsigned long addr;
	int ret;

	mmap_assert_locked(mm);
	for (addr = start; addr < end; addr = vma->vm_end) {
		vma = vma_lookup(mm, addr);
		ret = check(vma);
		if (ret)
			return ret;
	}
	return 0;
}

/* What migrate_vma_setup() accepts, and readable. */
static int dmirror_vma_migratable(const struct vm_area_struct *vma)
{
	if (!vma || !(vma->vm_flags & VM_READ) ||
	    (vma->vm_flags & VM_SPECIAL) || is_vm_hugetlb_page(vma) ||
	    vma_is_dax(vma))
		return -EINVAL;
	return 0;
}

/*
 * What make_device_exclusive() can take: private memory (anonymous, or
 * the COW copies of a private file mapping). Shared and hugetlb memory get
 * the core's answer, -EOPNOTSUPP, before the window is faulted in
 * writable, which would dirty a shared file for nothing; the core refuses
 * them too.
 */
static int dmirror_vma_exclusive(const struct vm_area_struct *vma)
{
	if (!vma)
		return -EFAULT;
	if ((vma->vm_flags & VM_SHARED) || is_vm_hugetlb_page(vma))
		return -EOPNOTSUPP;
	if (vma->vm_flags & VM_SPECIAL)
		return -EINVAL;
	return 0;
}

/*
 * One window of a migration, inside one VMA, with compound entries if
 * @huge (then [start, end) is one PMD's range). @src and @dst have room
 * for its pages.
 * Return: 0, the error of the copy, or dir->stuck_error if a page that
 * was selected did not move. *@moved counts the pages that moved.
 */
static int dmirror_migrate_window(struct dmirror *dmirror,
				  const struct dmirror_direction *dir,
				  struct vm_area_struct *vma,
				  unsigned long start, unsigned long end,
				  bool huge, unsigned long *src,
				  unsigned long *dst, u64 *moved)
{
	struct migrate_vma args = {
		.vma		= vma,
		.start		= start,
		.end		= end,
		.src		= src,
		.dst		= dst,
		.pgmap_owner	= dmirror->mdevice,
		.flags		= dir->select |
				  (huge ? MIGRATE_VMA_SELECT_COMPOUND : 0),
	};
	unsigned long i;
	int ret, copy_err;

	mmap_assert_locked(vma->vm_mm);
	ret = migrate_vma_setup(&args);
	if (ret)
		return ret;
	copy_err = dir->copy(dmirror, &args);
	migrate_vma_pages(&args);
	for (i = 0; i < args.npages; i++) {
		/* A compound entry counts for the pages it stands for. */
		if (args.src[i] & MIGRATE_PFN_MIGRATE)
			*moved += args.src[i] & MIGRATE_PFN_COMPOUND ?
				  DMIRROR_PMD_NR : 1;
		else if (migrate_pfn_to_page(args.src[i]))
			ret = dir->stuck_error;
	}
	migrate_vma_finalize(&args);
	return copy_err ?: ret;
}

/*
 * Migrate [start, end) in the direction @dir, after checking that all of
 * it can be. Each whole PMD's range is one window with compound entries,
 * the rest windows of single pages; a THP that finds no 2 MiB device page
 * moves as 512 single pages in the same window. An error of the copy (out
 * of memory) ends
 * the migration; a page that did not move does not, and is reported at
 * the end.
 */
static int dmirror_migrate(struct dmirror *dmirror,
			   const struct dmirror_direction *dir,
			   unsigned long start, unsigned long end, u64 *moved)
{
	unsigned long nr = DMIRROR_HUGE ? DMIRROR_PMD_NR : DMIRROR_WINDOW;
	unsigned long addr, next, pmd_next, limit;
	struct mm_struct *mm = dmirror->notifier.mm;
	struct vm_area_struct *vma;
	unsigned long *pfns;
	int ret, stuck = 0;

	pfns = kvmalloc_array(2 * nr, sizeof(*pfns), GFP_KERNEL);
	if (!pfns)
		return -ENOMEM;
	if (mmap_read_lock_killable(mm)) {
		kvfree(pfns);
		return -EINTR;
	}
	ret = dmirror_check_vmas(mm, start, end, dmirror_vma_migratable);
	for (addr = start; !ret && addr < end; addr = next) {
		bool huge;

		vma = vma_lookup(mm, addr);
		limit = min(end, vma->vm_end);
		/* 2 MiB device pages: device-private memory only, for now. */
		huge = DMIRROR_HUGE && dmirror_is_private(dmirror->mdevice) &&
		       IS_ALIGNED(addr, PMD_SIZE) &&
		       limit - addr >= PMD_SIZE;
		if (huge) {
			next = addr + PMD_SIZE;
		} else {
			next = min(limit, addr + DMIRROR_WINDOW * PAGE_SIZE);
			/* Stop short of a whole PMD that can be one window. */
			pmd_next = ALIGN(addr + 1, PMD_SIZE);
			if (DMIRROR_HUGE && dmirror_is_private(dmirror->mdevice) &&
			    pmd_next < next && limit - pmd_next >= PMD_SIZE)
				next = pmd_next;
		}
		ret = dmirror_migrate_window(dmirror, dir, vma, addr, next,
					     huge, pfns, pfns + nr, moved);
		if (ret == dir->stuck_error) {
			stuck = ret;
			ret = 0;
		}
	}
	mmap_read_unlock(mm);
	kvfree(pfns);
	return ret ?: stuck;
}

static int dmirror_cmd_migrate_to_dev(struct dmirror *dmirror,
				      struct hmm_dmirror_cmd *cmd)
{
	u64 moved = 0;
	int ret;

	ret = dmirror_migrate(dmirror, &dmirror_to_device, cmd->addr,
			      dmirror_cmd_end(cmd), &moved);
	if (ret && ret != -ENOENT)
		return ret;
	/* Pages already here did not move; the look afterwards sees them all. */
	return dmirror_look(dmirror, cmd, dmirror_map_local, PAGE_SIZE);
}

static int dmirror_cmd_migrate_to_sys(struct dmirror *dmirror,
				      struct hmm_dmirror_cmd *cmd)
{
	const struct dmirror_direction *dir = &dmirror_to_coherent_system;

	if (dmirror_is_private(dmirror->mdevice))
		dir = &dmirror_to_private_system;
	return dmirror_migrate(dmirror, dir, cmd->addr, dmirror_cmd_end(cmd),
			       &cmd->cpages);
}

/* One step of walk_gen (see struct dmirror). */
static void dmirror_walk_gen_bump(struct dmirror *dmirror)
{
	mutex_lock(&dmirror->lock);
	dmirror->walk_gen++;
	mutex_unlock(&dmirror->lock);
}

/* After migrate_vma_pages(): the pages of @args that moved. */
static unsigned long dmirror_moved_pages(const struct migrate_vma *args)
{
	unsigned long i, moved = 0;

	for (i = 0; i < args->npages; i++)
		if ((args->src[i] & MIGRATE_PFN_MIGRATE) &&
		    migrate_pfn_to_page(args->dst[i]))
			moved += args->dst[i] & MIGRATE_PFN_COMPOUND ?
				 DMIRROR_PMD_NR : 1;
	return moved;
}

/*
 * After migrate_vma_pages() of a one-walk window: map every page of
 * @range where it is now, the moved ones from dst[] (their mirror word is
 * rewritten to say so), the rest as the walk mirrored them.
 */
static int dmirror_map_window(struct dmirror *dmirror, struct hmm_range *range)
{
	struct migrate_vma *args = range->migrate;
	bool vma_write = args->vma->vm_flags & VM_WRITE;
	unsigned long i, j, nr, npages = dmirror_range_pages(range);
	long ret;

	lockdep_assert_held(&dmirror->lock);
	for (i = 0; i < npages; i += nr) {
		unsigned long src = args->src[i];
		struct page *dpage = migrate_pfn_to_page(args->dst[i]);
		unsigned long hpfn = range->hmm_pfns[i];

		nr = 1;
		if ((src & MIGRATE_PFN_MIGRATE) && dpage) {
			bool write = migrate_pfn_to_page(src) ?
				     src & MIGRATE_PFN_WRITE : vma_write;
			unsigned int order = 0;

			if (args->dst[i] & MIGRATE_PFN_COMPOUND)
				order = DMIRROR_PMD_ORDER;
			for (j = 0; j < (1UL << order); j++)
				range->hmm_pfns[i + j] =
					(page_to_pfn(dpage) + j) | HMM_PFN_VALID |
					(write ? HMM_PFN_WRITE : 0) |
					((unsigned long)order << HMM_PFN_ORDER_SHIFT);
			hpfn = range->hmm_pfns[i];
		} else if (!(hpfn & HMM_PFN_VALID)) {
			continue;
		} else if (hpfn & HMM_PFN_MIGRATE) {
			/*
			 * Collected, not moved: a THP it was part of may have
			 * been split since the walk, without an invalidation
			 * (it was unmapped), so only its own page is known.
			 */
			hpfn &= ~(0x1FUL << HMM_PFN_ORDER_SHIFT);
			range->hmm_pfns[i] = hpfn;
		}
		ret = dmirror_pt_map(dmirror, range, i,
				     hpfn & HMM_PFN_WRITE ? DMIRROR_MAP_WRITE :
							    DMIRROR_MAP_READ);
		if (ret < 0)
			return ret;
		nr = ret;
	}
	return 0;
}

/*
 * One attempt at a window of HMM_DMIRROR_MIGRATE_ON_FAULT_TO_DEV: the device
 * fault as one walk. hmm_range_fault() faults in, mirrors and collects
 * (HMM_PFN_REQ_MIGRATE); the collected pages are copied into device pages
 * and committed; the window is mapped under dmirror->lock if the notifier
 * says the walk still holds. Return: 0, an error, or -EAGAIN when the
 * window changed meanwhile: it is finalized, what moved stays moved, and
 * the next attempt's walk reports it as this device's.
 */
static int dmirror_fault_migrate_once(struct dmirror *dmirror,
				      struct hmm_range *range, u64 *moved)
{
	struct mm_struct *mm = dmirror->notifier.mm;
	struct migrate_vma *args = range->migrate;
	int ret, copy_err;

	range->notifier_seq = mmu_interval_read_begin(range->notifier);
	if (mmap_read_lock_killable(mm))
		return -EINTR;
	args->vma = vma_lookup(mm, range->start);
	if (!args->vma || range->end > args->vma->vm_end ||
	    dmirror_vma_migratable(args->vma)) {
		mmap_read_unlock(mm);
		return -EINVAL;
	}
	dmirror_walk_gen_bump(dmirror);		/* odd: a window runs */
	ret = hmm_range_fault(range);
	if (ret) {
		dmirror_walk_gen_bump(dmirror);
		mmap_read_unlock(mm);
		return ret == -EBUSY ? -EAGAIN : ret;
	}
	migrate_hmm_range_setup(range);
	copy_err = dmirror_copy_to_device(dmirror, args);
	migrate_vma_pages(args);
	/* What moved stays moved, whatever becomes of this attempt. */
	*moved += dmirror_moved_pages(args);
	mutex_lock(&dmirror->lock);
	if (copy_err)
		ret = copy_err;
	else if (mmu_interval_read_retry(range->notifier, range->notifier_seq))
		ret = -EAGAIN;
	else
		ret = dmirror_map_window(dmirror, range);
	mutex_unlock(&dmirror->lock);
	migrate_vma_finalize(args);
	dmirror_walk_gen_bump(dmirror);		/* even: the pages are settled */
	mmap_read_unlock(mm);
	return ret;
}

/*
 * A window of HMM_DMIRROR_MIGRATE_ON_FAULT_TO_DEV, [start, end) inside one
 * VMA, with compound entries if @huge, tried until it holds (for at most
 * HMM_RANGE_DEFAULT_TIMEOUT ms), with this task as dmirror->walker.
 * @pfns has room for three arrays of the window's pages.
 */
static int dmirror_fault_migrate_window(struct dmirror *dmirror,
					unsigned long start, unsigned long end,
					bool huge, unsigned long *pfns,
					u64 *moved)
{
	unsigned long npages = (end - start) >> PAGE_SHIFT;
	struct migrate_vma args = {
		.start		= start,
		.end		= end,
		.src		= pfns + npages,
		.dst		= pfns + 2 * npages,
		.pgmap_owner	= dmirror->mdevice,
		.flags		= MIGRATE_VMA_SELECT_SYSTEM |
				  (huge ? MIGRATE_VMA_SELECT_COMPOUND : 0),
	};
	struct hmm_range range = {
		.notifier		= &dmirror->notifier,
		.start			= start,
		.end			= end,
		.hmm_pfns		= pfns,
		.default_flags		= HMM_PFN_REQ_FAULT | HMM_PFN_REQ_MIGRATE,
		.dev_private_owner	= dmirror->mdevice,
		.migrate		= &args,
	};
	unsigned long deadline;
	int ret;

	if (mutex_lock_killable(&dmirror->walk_mutex))
		return -EINTR;
	WRITE_ONCE(dmirror->walker, current);
	deadline = jiffies + msecs_to_jiffies(HMM_RANGE_DEFAULT_TIMEOUT);
	do {
		ret = dmirror_fault_migrate_once(dmirror, &range, moved);
	} while (ret == -EAGAIN && !fatal_signal_pending(current) &&
		 !time_after(jiffies, deadline));
	WRITE_ONCE(dmirror->walker, NULL);
	mutex_unlock(&dmirror->walk_mutex);
	if (ret == -EAGAIN)
		ret = fatal_signal_pending(current) ? -EINTR : -EBUSY;
	return ret;
}

/*
 * HMM_DMIRROR_MIGRATE_ON_FAULT_TO_DEV: windows as dmirror_migrate() cuts
 * them (a whole PMD's range with compound entries, else up to
 * DMIRROR_WINDOW pages), each handled in one walk; then the device reads
 * what it maps into ptr.
 */
static int dmirror_cmd_migrate_on_fault(struct dmirror *dmirror,
					struct hmm_dmirror_cmd *cmd)
{
	unsigned long end = dmirror_cmd_end(cmd), addr, next, limit;
	unsigned long nr = DMIRROR_HUGE ? DMIRROR_PMD_NR : DMIRROR_WINDOW;
	bool private = dmirror_is_private(dmirror->mdevice);
	struct mm_struct *mm = dmirror->notifier.mm;
	struct vm_area_struct *vma;
	unsigned long *pfns;
	u64 moved = 0;
	int ret = 0;

	pfns = kvmalloc_array(3 * nr, sizeof(*pfns), GFP_KERNEL);
	if (!pfns)
		return -ENOMEM;
	for (addr = cmd->addr; !ret && addr < end; addr = next) {
		bool huge;

		if (mmap_read_lock_killable(mm)) {
			ret = -EINTR;
			break;
		}
		vma = vma_lookup(mm, addr);
		limit = vma ? min(end, vma->vm_end) : end;
		mmap_read_unlock(mm);
		if (!vma) {
			ret = -EINVAL;
			break;
		}
		huge = DMIRROR_HUGE && private && IS_ALIGNED(addr, PMD_SIZE) &&
		       limit - addr >= PMD_SIZE;
		next = huge ? addr + PMD_SIZE :
			      min(limit, addr + DMIRROR_WINDOW * PAGE_SIZE);
		if (!huge && DMIRROR_HUGE && private &&
		    ALIGN(addr + 1, PMD_SIZE) < next &&
		    limit - ALIGN(addr + 1, PMD_SIZE) >= PMD_SIZE)
			next = ALIGN(addr + 1, PMD_SIZE);
		ret = dmirror_fault_migrate_window(dmirror, addr, next, huge,
						   pfns, &moved);
	}
	kvfree(pfns);
	if (ret)
		return ret;
	ret = dmirror_access(dmirror, cmd, false);
	cmd->cpages = moved;
	return ret;
}

/*
 * One window of HMM_DMIRROR_EXCLUSIVE, a page at a time: the core locks
 * the folio of the page it makes exclusive, and the pages of a THP share
 * one. Each page is mapped atomic inside the notifier's critical section
 * and its data copied into the user's window @uw. The notifier ignores the
 * invalidation make_device_exclusive() raises for us, so any other change
 * to the page shows up as a retry. The window is faulted in writable first
 * and a page again before its retry: a CPU fault is what undoes an
 * exclusive entry an earlier attempt left, which would otherwise count as
 * a change every time.
 */
static int dmirror_exclusive_window(struct dmirror *dmirror,
				    unsigned long start, unsigned long end,
				    struct dmirror_uwin *uw)
{
	struct mm_struct *mm = dmirror->notifier.mm;
	unsigned long deadline, seq, gen, addr = start;
	struct folio *folio;
	struct page *page;
	int ret;

	deadline = jiffies + msecs_to_jiffies(HMM_RANGE_DEFAULT_TIMEOUT);
	ret = dmirror_fault_in(dmirror, start, end, true, NULL);
	while (!ret && addr < end) {
		seq = mmu_interval_read_begin(&dmirror->notifier);
		gen = READ_ONCE(dmirror->walk_gen);
		if (mmap_read_lock_killable(mm))
			return -EINTR;
		page = make_device_exclusive(mm, addr, dmirror, &folio);
		mmap_read_unlock(mm);
		if (IS_ERR(page))
			return PTR_ERR(page);

		ret = -EAGAIN;
		mutex_lock(&dmirror->lock);
		if (!mmu_interval_read_retry(&dmirror->notifier, seq) &&
		    dmirror_walk_gen_held(dmirror, gen))
			ret = dmirror_pt_set(dmirror, addr, page, 0,
					     DMIRROR_MAP_ATOMIC);
		if (!ret)
			dmirror_uwin_copy(uw, (addr - start) >> PAGE_SHIFT,
					  page, true);
		mutex_unlock(&dmirror->lock);
		folio_unlock(folio);
		folio_put(folio);

		if (ret == -EAGAIN) {
			if (time_after(jiffies, deadline))
				return -EBUSY;
			ret = dmirror_fault_in(dmirror, addr, addr + PAGE_SIZE,
					       true, NULL);
		} else if (!ret) {
			addr += PAGE_SIZE;
		}
	}
	return ret;
}

static int dmirror_cmd_exclusive(struct dmirror *dmirror,
				 struct hmm_dmirror_cmd *cmd)
{
	char __user *uptr = u64_to_user_ptr(cmd->ptr);
	unsigned long end = dmirror_cmd_end(cmd);
	struct dmirror_uwin *uw;
	unsigned long addr, next;
	int ret = 0;

	uw = kmalloc(sizeof(*uw), GFP_KERNEL);
	if (!uw)
		return -ENOMEM;
	for (addr = cmd->addr; addr < end; addr = next) {
		next = min(end, addr + DMIRROR_WINDOW * PAGE_SIZE);
		ret = dmirror_uwin_pin(uw, uptr, (next - addr) >> PAGE_SHIFT,
				       true);
		if (ret)
			break;
		ret = dmirror_exclusive_window(dmirror, addr, next, uw);
		dmirror_uwin_unpin(uw);
		if (ret)
			break;
		uptr += next - addr;
		cmd->cpages += (next - addr) >> PAGE_SHIFT;
	}
	kfree(uw);
	return ret;
}

static int dmirror_cmd_check_exclusive(struct dmirror *dmirror,
				       struct hmm_dmirror_cmd *cmd)
{
	unsigned long index;
	void *entry;
	int ret = 0;

	mutex_lock(&dmirror->lock);
	xa_for_each_range(&dmirror->pt, index, entry, cmd->addr >> PAGE_SHIFT,
			  (dmirror_cmd_end(cmd) >> PAGE_SHIFT) - 1) {
		if (xa_pointer_tag(entry) == DMIRROR_MAP_ATOMIC) {
			ret = -EPERM;
			break;
		}
	}
	mutex_unlock(&dmirror->lock);
	return ret;
}

/*
 * The commands that work on a range: how many bytes of ptr they use per
 * page, whether they read ptr (else they write it), and what every VMA of
 * the range must be.
 */
static const struct dmirror_command {
	unsigned int		request;
	size_t			ptr_unit;	/* 0: ptr is not used */
	bool			ptr_in;
	dmirror_vma_check_fn	vma_check;	/* NULL: any, holes too */
	int			(*run)(struct dmirror *dmirror,
				       struct hmm_dmirror_cmd *cmd);
} dmirror_commands[] = {
	{ HMM_DMIRROR_READ, PAGE_SIZE, false, NULL, dmirror_cmd_read },
	{ HMM_DMIRROR_WRITE, PAGE_SIZE, true, NULL, dmirror_cmd_write },
	{ HMM_DMIRROR_MIGRATE_TO_DEV, PAGE_SIZE, false, dmirror_vma_migratable,
	  dmirror_cmd_migrate_to_dev },
	{ HMM_DMIRROR_MIGRATE_TO_SYS, 0, false, dmirror_vma_migratable,
	  dmirror_cmd_migrate_to_sys },
	{ HMM_DMIRROR_MIGRATE_ON_FAULT_TO_DEV, PAGE_SIZE, false,
	  dmirror_vma_migratable, dmirror_cmd_migrate_on_fault },
	{ HMM_DMIRROR_SNAPSHOT, 1, false, NULL, dmirror_cmd_snapshot },
	{ HMM_DMIRROR_EXCLUSIVE, PAGE_SIZE, false, dmirror_vma_exclusive,
	  dmirror_cmd_exclusive },
	{ HMM_DMIRROR_CHECK_EXCLUSIVE, 0, false, NULL,
	  dmirror_cmd_check_exclusive },
};

/* The fields of the command: a page-aligned range of user addresses. */
static int dmirror_check_fields(const struct hmm_dmirror_cmd *cmd,
				const struct dmirror_command *command,
				const struct mm_struct *mm)
{
	u64 limit = mm->task_size;

	if (!PAGE_ALIGNED(cmd->addr) || !cmd->npages)
		return -EINVAL;
	if (cmd->addr >= limit ||
	    cmd->npages > (limit - cmd->addr) >> PAGE_SHIFT)
		return -EINVAL;
	if (command->ptr_unit &&
	    !access_ok(u64_to_user_ptr(cmd->ptr),
		       cmd->npages * command->ptr_unit))
		return -EFAULT;
	return 0;
}

/* A VMA under ptr, which the device reads from. */
static int dmirror_vma_ptr_in(const struct vm_area_struct *vma)
{
	if (!vma || !(vma->vm_flags & VM_READ) ||
	    (vma->vm_flags & (VM_IO | VM_PFNMAP)))
		return -EFAULT;
	return 0;
}

/* A VMA under ptr, which the device writes to. */
static int dmirror_vma_ptr_out(const struct vm_area_struct *vma)
{
	if (!vma || !(vma->vm_flags & VM_WRITE) ||
	    (vma->vm_flags & (VM_IO | VM_PFNMAP)))
		return -EFAULT;
	return 0;
}

/*
 * The VMAs of [start, end) in @mm pass @check; @mm is locked here unless
 * @locked.
 */
static int dmirror_check_range(struct mm_struct *mm, unsigned long start,
			       unsigned long end, dmirror_vma_check_fn check,
			       bool locked)
{
	int ret;

	if (locked)
		return dmirror_check_vmas(mm, start, end, check);
	if (mmap_read_lock_killable(mm))
		return -EINTR;
	ret = dmirror_check_vmas(mm, start, end, check);
	mmap_read_unlock(mm);
	return ret;
}

/*
 * The memory of the command, before it does anything: the VMAs of the
 * range in @mm, the mirrored one, then those of ptr in the caller's (the
 * same, unless the file was passed on), which must let the device use it
 * the way the command will (its pages are pinned window by window later
 * on).
 * Context: the caller holds a reference on @mm (mm_users).
 */
static int dmirror_check_memory(const struct hmm_dmirror_cmd *cmd,
				const struct dmirror_command *command,
				struct mm_struct *mm)
{
	unsigned long ptr = cmd->ptr, len = cmd->npages * command->ptr_unit;
	dmirror_vma_check_fn ptr_check = command->ptr_in ? dmirror_vma_ptr_in :
							   dmirror_vma_ptr_out;
	bool same = current->mm == mm;
	int ret = 0;

	if (!command->vma_check && !len)
		return 0;
	if (mmap_read_lock_killable(mm))
		return -EINTR;
	if (command->vma_check)
		ret = dmirror_check_vmas(mm, cmd->addr, dmirror_cmd_end(cmd),
					 command->vma_check);
	if (!ret && len && same)
		ret = dmirror_check_range(mm, ptr, ptr + len, ptr_check, true);
	mmap_read_unlock(mm);
	if (!ret && len && !same)
		ret = dmirror_check_range(current->mm, ptr, ptr + len,
					  ptr_check, false);
	return ret;
}

static const struct dmirror_command *dmirror_find_command(unsigned int request)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(dmirror_commands); i++)
		if (dmirror_commands[i].request == request)
			return &dmirror_commands[i];
	return NULL;
}

static long dmirror_ioctl(struct file *file, unsigned int request,
			  unsigned long arg)
{
	struct dmirror *dmirror = file->private_data;
	struct mm_struct *mm = dmirror->notifier.mm;
	const struct dmirror_command *command;
	void __user *uarg = (void __user *)arg;
	struct hmm_dmirror_cmd cmd;
	int ret;

	command = dmirror_find_command(request);
	if (!command && request != HMM_DMIRROR_RELEASE &&
	    request != HMM_DMIRROR_FLAGS)
		return -ENOTTY;
	if (copy_from_user(&cmd, uarg, sizeof(cmd)))
		return -EFAULT;
	if (request == HMM_DMIRROR_FLAGS) {
		if (cmd.npages & ~HMM_DMIRROR_FLAG_FAIL_ALLOC)
			return -EINVAL;
		WRITE_ONCE(dmirror->flags, cmd.npages);
		return 0;
	}
	if (!command)
		return dmirror_remove_chunks(dmirror->mdevice, true);

	ret = dmirror_check_fields(&cmd, command, mm);
	if (ret)
		return ret;
	if (!mmget_not_zero(mm))
		return -ESRCH;
	ret = dmirror_check_memory(&cmd, command, mm);
	if (!ret) {
		cmd.cpages = 0;
		cmd.faults = 0;
		ret = command->run(dmirror, &cmd);
	}
	mmput(mm);
	if (ret)
		return ret;
	return copy_to_user(uarg, &cmd, sizeof(cmd)) ? -EFAULT : 0;
}

/* ---- The character device ---- */

static int dmirror_open(struct inode *inode, struct file *file)
{
	struct mm_struct *mm = current->mm;
	struct dmirror *dmirror;
	int ret;

	if (!mm)
		return -EINVAL;
	dmirror = kzalloc(sizeof(*dmirror), GFP_KERNEL);
	if (!dmirror)
		return -ENOMEM;
	dmirror->mdevice = container_of(inode->i_cdev, struct dmirror_device,
					cdev);
	mutex_init(&dmirror->lock);
	mutex_init(&dmirror->walk_mutex);
	xa_init(&dmirror->pt);

	ret = mmu_interval_notifier_insert(&dmirror->notifier, mm, 0,
					   mm->task_size,
					   &dmirror_notifier_ops);
	if (ret) {
		mutex_destroy(&dmirror->lock);
		kfree(dmirror);
		return ret;
	}
	mutex_lock(&dmirror->mdevice->files_lock);
	dmirror->id = dmirror->mdevice->next_file_id++;
	list_add_tail(&dmirror->link, &dmirror->mdevice->files);
	mutex_unlock(&dmirror->mdevice->files_lock);
	file->private_data = dmirror;
	return 0;
}

static int dmirror_release(struct inode *inode, struct file *file)
{
	struct dmirror *dmirror = file->private_data;

	mutex_lock(&dmirror->mdevice->files_lock);
	list_del(&dmirror->link);
	mutex_unlock(&dmirror->mdevice->files_lock);
	mmu_interval_notifier_remove(&dmirror->notifier);
	dmirror_evict_owner(dmirror->mdevice, dmirror);
	xa_destroy(&dmirror->pt);
	mutex_destroy(&dmirror->lock);
	kfree(dmirror);
	return 0;
}

/*
 * The device file can be mapped: zeroed pages the driver inserts itself,
 * a VM_MIXEDMAP mapping, for snapshots of such memory.
 */
static int dmirror_mmap(struct file *file, struct vm_area_struct *vma)
{
	unsigned long addr = vma->vm_start;
	int ret = 0;

	while (!ret && addr < vma->vm_end) {
		struct page *page = alloc_page(GFP_HIGHUSER | __GFP_ZERO);

		if (!page)
			return -ENOMEM;
		ret = vm_insert_page(vma, addr, page);
		/* On success the mapping holds a reference of its own. */
		put_page(page);
		addr += PAGE_SIZE;
	}
	return ret;
}

static const struct file_operations dmirror_fops = {
	.owner		= THIS_MODULE,
	.unlocked_ioctl	= dmirror_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.mmap		= dmirror_mmap,
	.open		= dmirror_open,
	.release	= dmirror_release,
};

static int dmirror_counters_show(struct seq_file *m, void *unused)
{
	struct dmirror_device *mdevice = m->private;

	seq_printf(m, "folio_free_small %ld\n",
		   atomic_long_read(&mdevice->freed_small));
	seq_printf(m, "folio_free_huge %ld\n",
		   atomic_long_read(&mdevice->freed_huge));
	seq_printf(m, "folio_split %ld\n", atomic_long_read(&mdevice->splits));
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(dmirror_counters);

/* What debugfs "mirror" says of one open file. */
struct dmirror_view {
	unsigned long	mirrored, writable, exclusive;	/* pages its pt maps */
	unsigned long	resident, huge;	/* device pages it placed; 2 MiB ones */
};

static void dmirror_view_pt(struct dmirror *dmirror, struct dmirror_view *v)
{
	unsigned long index;
	void *entry;

	mutex_lock(&dmirror->lock);
	xa_for_each(&dmirror->pt, index, entry) {
		/* A huge entry is one multi-index entry: count its pages. */
		unsigned long nr = 1UL << xa_get_order(&dmirror->pt, index);
		unsigned int tag = xa_pointer_tag(entry);

		v->mirrored += nr;
		if (tag & DMIRROR_MAP_WRITE)
			v->writable += nr;
		if (tag == DMIRROR_MAP_ATOMIC)
			v->exclusive += nr;
	}
	mutex_unlock(&dmirror->lock);
}

/* The blocks in use that @dmirror placed; those that head a 2 MiB page. */
static void dmirror_view_blocks(struct dmirror_device *mdevice,
				struct dmirror *dmirror, struct dmirror_view *v)
{
	struct dmirror_chunk *chunk;
	unsigned long idx;

	spin_lock(&mdevice->lock);
	list_for_each_entry(chunk, &mdevice->chunks, link) {
		for_each_set_bit(idx, chunk->used, DMIRROR_CHUNK_PAGES) {
			struct page *page;

			if (chunk->blocks[idx].owner != dmirror)
				continue;
			v->resident++;
			page = pfn_to_page(dmirror_chunk_pfn(chunk) + idx);
			v->huge += PageHead(page) &&
				   compound_order(page) == DMIRROR_PMD_ORDER;
		}
	}
	spin_unlock(&mdevice->lock);
}

/*
 * debugfs "mirror", for people and the tests: a line per chunk of device
 * memory, then a line per open file (by the number its open got): the
 * pages its mirror maps (writable, and exclusive for device atomics), and
 * the device pages it placed (resident), 2 MiB ones counted once each.
 */
static int dmirror_mirror_show(struct seq_file *m, void *unused)
{
	struct dmirror_device *mdevice = m->private;
	struct dmirror_chunk *chunk;
	struct dmirror *dmirror;
	unsigned int n = 0;

	mutex_lock(&mdevice->files_lock);
	spin_lock(&mdevice->lock);
	list_for_each_entry(chunk, &mdevice->chunks, link)
		seq_printf(m, "chunk %u pfn %#lx pages %lu used %lu cached %lu%s\n",
			   n++, dmirror_chunk_pfn(chunk),
			   (unsigned long)DMIRROR_CHUNK_PAGES,
			   chunk->nr_used, chunk->nr_cached,
			   chunk->retiring ? " retiring" : "");
	spin_unlock(&mdevice->lock);
	list_for_each_entry(dmirror, &mdevice->files, link) {
		struct dmirror_view v = {};

		dmirror_view_pt(dmirror, &v);
		dmirror_view_blocks(mdevice, dmirror, &v);
		seq_printf(m, "file %u mirrored %lu writable %lu exclusive %lu resident %lu huge %lu\n",
			   dmirror->id, v.mirrored, v.writable, v.exclusive,
			   v.resident, v.huge);
	}
	mutex_unlock(&mdevice->files_lock);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(dmirror_mirror);

static void dmirror_device_release(struct device *dev)
{
	kfree(container_of(dev, struct dmirror_device, dev));
}

static int dmirror_device_create(unsigned int id, int memory_type,
				 phys_addr_t spm_base)
{
	struct dmirror_device *mdevice;
	int ret;

	mdevice = kzalloc(sizeof(*mdevice), GFP_KERNEL);
	if (!mdevice)
		return -ENOMEM;
	mdevice->memory_type = memory_type;
	mdevice->spm_base = spm_base;
	mutex_init(&mdevice->grow_lock);
	spin_lock_init(&mdevice->lock);
	INIT_LIST_HEAD(&mdevice->chunks);
	mutex_init(&mdevice->files_lock);
	INIT_LIST_HEAD(&mdevice->files);
	if (memory_type == HMM_DMIRROR_MEMORY_DEVICE_PRIVATE) {
		mdevice->shrinker = shrinker_alloc(0, "hmm_dmirror%u", id);
		if (!mdevice->shrinker) {
			kfree(mdevice);
			return -ENOMEM;
		}
		mdevice->shrinker->count_objects = dmirror_count_stores;
		mdevice->shrinker->scan_objects = dmirror_scan_stores;
		mdevice->shrinker->private_data = mdevice;
	}

	device_initialize(&mdevice->dev);
	mdevice->dev.devt = MKDEV(MAJOR(dmirror_devt), id);
	mdevice->dev.release = dmirror_device_release;
	ret = dev_set_name(&mdevice->dev, "hmm_dmirror%u", id);
	if (ret)
		goto put;
	cdev_init(&mdevice->cdev, &dmirror_fops);
	mdevice->cdev.owner = THIS_MODULE;
	ret = cdev_device_add(&mdevice->cdev, &mdevice->dev);
	if (ret)
		goto put;
	if (mdevice->shrinker)
		shrinker_register(mdevice->shrinker);
	/* Without debugfs the tests that read it fail; the device works. */
	mdevice->debugfs = debugfs_create_dir(dev_name(&mdevice->dev),
					      dmirror_debugfs);
	debugfs_create_file("counters", 0444, mdevice->debugfs, mdevice,
			    &dmirror_counters_fops);
	debugfs_create_file("mirror", 0444, mdevice->debugfs, mdevice,
			    &dmirror_mirror_fops);
	dmirror_devices[id] = mdevice;
	return 0;

put:
	shrinker_free(mdevice->shrinker);
	put_device(&mdevice->dev);
	return ret;
}

static void dmirror_device_destroy(struct dmirror_device *mdevice)
{
	debugfs_remove(mdevice->debugfs);
	cdev_device_del(&mdevice->cdev, &mdevice->dev);
	shrinker_free(mdevice->shrinker);
	dmirror_remove_chunks(mdevice, false);
	put_device(&mdevice->dev);
}

/* Reserved memory for a device-coherent device: aligned, not System RAM. */
static int dmirror_check_spm(unsigned int i, unsigned long base)
{
	if (!IS_ALIGNED(base, DMIRROR_CHUNK_SIZE) ||
	    region_intersects(base, DMIRROR_SPM_SIZE, IORESOURCE_SYSTEM_RAM,
			      IORES_DESC_NONE) != REGION_DISJOINT) {
		pr_err("test_hmm: spm_addr_dev%u=%#lx is not %u MiB of reserved memory aligned to %u MiB\n",
		       i, base, DMIRROR_SPM_SIZE >> 20,
		       DMIRROR_CHUNK_SIZE >> 20);
		return -EINVAL;
	}
	return 0;
}

static void dmirror_destroy_all(void)
{
	unsigned int id;

	for (id = 0; id < DMIRROR_NR_DEVICES; id++) {
		if (dmirror_devices[id])
			dmirror_device_destroy(dmirror_devices[id]);
		dmirror_devices[id] = NULL;
	}
}

static int __init dmirror_init(void)
{
	const unsigned long *spm = dmirror_spm_base;
	unsigned int i;
	int ret;

	for (i = 0; i < ARRAY_SIZE(dmirror_spm_base); i++)
		if (spm[i] && dmirror_check_spm(i, spm[i]))
			return -EINVAL;
	if (spm[0] && spm[1] &&
	    max(spm[0], spm[1]) - min(spm[0], spm[1]) < DMIRROR_SPM_SIZE) {
		pr_err("test_hmm: the two reserved memory windows overlap\n");
		return -EINVAL;
	}

	ret = alloc_chrdev_region(&dmirror_devt, 0, DMIRROR_NR_DEVICES,
				  "HMM_DMIRROR");
	if (ret)
		return ret;
	dmirror_debugfs = debugfs_create_dir("test_hmm", NULL);
	/* Devices 0 and 1 are device-private, 2 and 3 device-coherent. */
	for (i = 0; !ret && i < DMIRROR_NR_DEVICES; i++) {
		int type = HMM_DMIRROR_MEMORY_DEVICE_PRIVATE;
		unsigned long base = 0;

		if (i >= 2) {
			type = HMM_DMIRROR_MEMORY_DEVICE_COHERENT;
			base = spm[i - 2];
			if (!base)
				continue;
		}
		ret = dmirror_device_create(i, type, base);
	}
	if (ret)
		goto destroy;
	pr_info("test_hmm: HMM test devices ready; for testing only\n");
	return 0;

destroy:
	dmirror_destroy_all();
	debugfs_remove(dmirror_debugfs);
	unregister_chrdev_region(dmirror_devt, DMIRROR_NR_DEVICES);
	return ret;
}

static void __exit dmirror_exit(void)
{
	dmirror_destroy_all();
	debugfs_remove(dmirror_debugfs);
	unregister_chrdev_region(dmirror_devt, DMIRROR_NR_DEVICES);
}

module_init(dmirror_init);
module_exit(dmirror_exit);
MODULE_DESCRIPTION("Pretend device that exercises HMM, for the HMM selftests");
MODULE_LICENSE("GPL");
