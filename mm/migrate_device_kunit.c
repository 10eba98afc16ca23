// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests for device migration (mm/migrate_device.c).
 *
 * The suite plays a tiny device: one 8 MiB device-private pagemap whose
 * "device memory" is a vmalloc'ed buffer, one page of it per device page
 * frame. Each case maps memory in the test thread's own mm
 * (kunit_vm_mmap()), fills it through copy_to_user(), and drives
 * migrate_vma_setup()/_pages()/_finalize() itself, checking the src[] and
 * dst[] words each step reports, the pages that must be skipped, and the
 * data after the round trip. A CPU access to a migrated page (a
 * copy_from_user() here) goes through the pagemap's migrate_to_ram(), which
 * migrates the page back.
 *
 * Four cases pin down bugs upstream fixed after 6.12: a source folio that
 * migrated away must not be put back on the LRU by finalize; a private file
 * mapping is handled by page type (its anonymous copies move, its page
 * cache pages and holes do not); a CPU fault on a device page another
 * thread holds locked sleeps instead of spinning, so that the lock holder
 * can wait for work on the faulting CPU; and the pages of a THP mapped by
 * PTEs are collected (the folio split), not skipped.
 */
#include <kunit/test.h>
#include <linux/completion.h>
#include <linux/delay.h>
#include <linux/highmem.h>
#include <linux/hmm.h>
#include <linux/kthread.h>
#include <linux/memremap.h>
#include <linux/migrate.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/mmu_notifier.h>
#include <linux/rmap.h>
#include <linux/sched/coredump.h>
#include <linux/sched/mm.h>
#include <linux/shmem_fs.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>
#include <linux/workqueue.h>
#include <trace/events/hmm.h>

#define MDK_DEV_SIZE	SZ_8M
#define MDK_DEV_PAGES	(MDK_DEV_SIZE >> PAGE_SHIFT)
#define MDK_NPAGES	16

/* The suite's device: a device-private pagemap and its backing store. */
static struct mdk_device {
	struct dev_pagemap	pgmap;
	struct resource		*res;
	void			*store;
	unsigned long		base_pfn;
	spinlock_t		lock;		/* protects used, nr_used */
	DECLARE_BITMAP(used, MDK_DEV_PAGES);
	unsigned int		nr_used;
	/* migrate_to_ram() calls, and those that found the page unlocked */
	atomic_t		faults;
	atomic_t		fault_page_unlocked;
	/* folio_split() calls */
	atomic_t		splits;
	/* migrate_to_ram() pretends no THP can be allocated */
	bool			no_thp;
} mdk_dev;

/* An owner no pagemap of this suite has. */
static int mdk_other_owner;

static void *mdk_store(struct page *dpage)
{
	return mdk_dev.store +
		((page_to_pfn(dpage) - mdk_dev.base_pfn) << PAGE_SHIFT);
}

/* A free device page, referenced and locked, or NULL. */
static struct page *mdk_alloc_dpage(void)
{
	struct page *dpage;
	unsigned long idx;

	spin_lock(&mdk_dev.lock);
	idx = find_first_zero_bit(mdk_dev.used, MDK_DEV_PAGES);
	if (idx == MDK_DEV_PAGES) {
		spin_unlock(&mdk_dev.lock);
		return NULL;
	}
	__set_bit(idx, mdk_dev.used);
	mdk_dev.nr_used++;
	spin_unlock(&mdk_dev.lock);

	dpage = pfn_to_page(mdk_dev.base_pfn + idx);
	zone_device_page_init(dpage);
	return dpage;
}

/*
 * A free device folio of 2^@order pages, referenced and locked, or NULL.
 * (Single pages come from mdk_alloc_dpage(), the 6.12 way.)
 */
static struct folio *mdk_alloc_dfolio(unsigned int order)
{
	unsigned long idx, nr = 1UL << order;
	struct folio *folio;

	spin_lock(&mdk_dev.lock);
	idx = bitmap_find_next_zero_area(mdk_dev.used, MDK_DEV_PAGES, 0, nr,
					 nr - 1);
	if (idx >= MDK_DEV_PAGES) {
		spin_unlock(&mdk_dev.lock);
		return NULL;
	}
	bitmap_set(mdk_dev.used, idx, nr);
	mdk_dev.nr_used += nr;
	spin_unlock(&mdk_dev.lock);

	folio = pfn_folio(mdk_dev.base_pfn + idx);
	zone_device_folio_init(folio, &mdk_dev.pgmap, order);
	return folio;
}

static void mdk_folio_free(struct folio *folio)
{
	unsigned long idx = folio_pfn(folio) - mdk_dev.base_pfn;
	unsigned long nr = folio_nr_pages(folio);

	spin_lock(&mdk_dev.lock);
	bitmap_clear(mdk_dev.used, idx, nr);
	mdk_dev.nr_used -= nr;
	spin_unlock(&mdk_dev.lock);
}

/* A device folio was split: its pages are still the device's, in use. */
static void mdk_folio_split(struct folio *head, struct folio *tail)
{
	atomic_inc(&mdk_dev.splits);
}

static unsigned int mdk_nr_used(void)
{
	unsigned int n;

	spin_lock(&mdk_dev.lock);
	n = mdk_dev.nr_used;
	spin_unlock(&mdk_dev.lock);
	return n;
}

/* Give each collected device page of @m a system page with its data. */
static void mdk_fill_system(struct migrate_vma *m)
{
	unsigned long i;

	for (i = 0; i < m->npages; i++) {
		struct page *dpage = migrate_pfn_to_page(m->src[i]);
		struct page *page;

		if (!dpage || !(m->src[i] & MIGRATE_PFN_MIGRATE))
			continue;
		page = alloc_page(GFP_HIGHUSER_MOVABLE);
		if (!page)
			continue;
		lock_page(page);
		memcpy_to_page(page, 0, mdk_store(dpage), PAGE_SIZE);
		m->dst[i] = migrate_pfn(page_to_pfn(page));
	}
}

/*
 * Give the compound source src[0] (a PMD-sized device folio) HPAGE_PMD_NR
 * single system pages holding its data, as a driver does that has no THP.
 */
static void mdk_thp_fill_system_small(unsigned long *src, unsigned long *dst)
{
	struct page *dpage = migrate_pfn_to_page(src[0]);
	unsigned long j;

	for (j = 0; j < HPAGE_PMD_NR; j++) {
		struct page *page = alloc_page(GFP_HIGHUSER_MOVABLE);

		if (!page)
			continue;
		lock_page(page);
		memcpy_to_page(page, 0, mdk_store(nth_page(dpage, j)),
			       PAGE_SIZE);
		dst[j] = migrate_pfn(page_to_pfn(page));
	}
}

/*
 * Give the compound source src[0] (a PMD-sized device folio) a system THP
 * holding its data; false if no THP could be allocated.
 */
static bool mdk_thp_fill_system(unsigned long *src, unsigned long *dst)
{
	struct page *dpage = migrate_pfn_to_page(src[0]);
	struct folio *folio;
	unsigned long j;

	folio = folio_alloc(GFP_TRANSHUGE, HPAGE_PMD_ORDER);
	if (!folio)
		return false;
	folio_lock(folio);
	for (j = 0; j < HPAGE_PMD_NR; j++)
		memcpy_to_page(folio_page(folio, j), 0,
			       mdk_store(nth_page(dpage, j)), PAGE_SIZE);
	dst[0] = migrate_pfn(folio_pfn(folio)) | MIGRATE_PFN_COMPOUND;
	return true;
}

/*
 * migrate_to_ram() of a PMD-sized device folio: the 2 MiB around the fault,
 * as much of it as the VMA still covers. Mapped by its PMD, the folio
 * comes back as one compound entry, into a system THP; mapped by PTEs (a
 * part of it unmapped), it is split and its pages come back one by one.
 */
static vm_fault_t mdk_migrate_to_ram_thp(struct vm_fault *vmf)
{
	unsigned long start = ALIGN_DOWN(vmf->address, HPAGE_PMD_SIZE);
	struct migrate_vma m = {
		.vma		= vmf->vma,
		.start		= max(start, vmf->vma->vm_start),
		.end		= min(start + HPAGE_PMD_SIZE, vmf->vma->vm_end),
		.pgmap_owner	= &mdk_dev,
		.flags		= MIGRATE_VMA_SELECT_DEVICE_PRIVATE |
				  MIGRATE_VMA_SELECT_COMPOUND,
		.fault_page	= vmf->page,
	};
	vm_fault_t ret = 0;

	m.src = kcalloc(2 * HPAGE_PMD_NR, sizeof(*m.src), GFP_KERNEL);
	if (!m.src)
		return VM_FAULT_OOM;
	m.dst = m.src + HPAGE_PMD_NR;
	if (migrate_vma_setup(&m)) {
		kfree(m.src);
		return VM_FAULT_SIGBUS;
	}
	if (!(m.src[0] & MIGRATE_PFN_COMPOUND))
		mdk_fill_system(&m);
	else if (!(m.src[0] & MIGRATE_PFN_MIGRATE))
		;	/* busy: the fault is retried */
	else if (READ_ONCE(mdk_dev.no_thp) ||
		 !mdk_thp_fill_system(m.src, m.dst))
		mdk_thp_fill_system_small(m.src, m.dst);
	migrate_vma_pages(&m);
	migrate_vma_finalize(&m);
	kfree(m.src);
	return ret;
}

static vm_fault_t mdk_migrate_to_ram(struct vm_fault *vmf)
{
	unsigned long src = 0, dst = 0;
	struct migrate_vma m = {
		.vma		= vmf->vma,
		.start		= vmf->address & PAGE_MASK,
		.end		= (vmf->address & PAGE_MASK) + PAGE_SIZE,
		.src		= &src,
		.dst		= &dst,
		.pgmap_owner	= &mdk_dev,
		.flags		= MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
		.fault_page	= vmf->page,
	};

	/*
	 * do_swap_page() hands us the fault page locked, and the migration
	 * must leave it so: do_swap_page() unlocks it when we return.
	 */
	atomic_inc(&mdk_dev.faults);
	if (!folio_test_locked(page_folio(vmf->page)))
		atomic_inc(&mdk_dev.fault_page_unlocked);
	if (folio_order(page_folio(vmf->page)) == HPAGE_PMD_ORDER) {
		vm_fault_t ret = mdk_migrate_to_ram_thp(vmf);

		if (!folio_test_locked(page_folio(vmf->page)))
			atomic_inc(&mdk_dev.fault_page_unlocked);
		return ret;
	}
	if (migrate_vma_setup(&m))
		return VM_FAULT_SIGBUS;
	mdk_fill_system(&m);
	migrate_vma_pages(&m);
	migrate_vma_finalize(&m);
	if (!folio_test_locked(page_folio(vmf->page)))
		atomic_inc(&mdk_dev.fault_page_unlocked);
	return 0;
}

static const struct dev_pagemap_ops mdk_pgmap_ops = {
	.folio_free	= mdk_folio_free,
	.folio_split	= mdk_folio_split,
	.migrate_to_ram	= mdk_migrate_to_ram,
};

static int mdk_suite_init(struct kunit_suite *suite)
{
	void *vaddr;

	spin_lock_init(&mdk_dev.lock);
	mdk_dev.store = vzalloc(MDK_DEV_SIZE);
	if (!mdk_dev.store)
		return -ENOMEM;
	mdk_dev.res = request_free_mem_region(&iomem_resource, MDK_DEV_SIZE,
					      "migrate_device_kunit");
	if (IS_ERR(mdk_dev.res)) {
		vfree(mdk_dev.store);
		return PTR_ERR(mdk_dev.res);
	}
	mdk_dev.pgmap.type = MEMORY_DEVICE_PRIVATE;
	mdk_dev.pgmap.range.start = mdk_dev.res->start;
	mdk_dev.pgmap.range.end = mdk_dev.res->start + MDK_DEV_SIZE - 1;
	mdk_dev.pgmap.nr_range = 1;
	mdk_dev.pgmap.ops = &mdk_pgmap_ops;
	mdk_dev.pgmap.owner = &mdk_dev;
	vaddr = memremap_pages(&mdk_dev.pgmap, numa_node_id());
	if (IS_ERR(vaddr)) {
		release_mem_region(mdk_dev.res->start, MDK_DEV_SIZE);
		vfree(mdk_dev.store);
		return PTR_ERR(vaddr);
	}
	mdk_dev.base_pfn = PHYS_PFN(mdk_dev.res->start);
	return 0;
}

static void mdk_suite_exit(struct kunit_suite *suite)
{
	memunmap_pages(&mdk_dev.pgmap);
	release_mem_region(mdk_dev.res->start, MDK_DEV_SIZE);
	vfree(mdk_dev.store);
}

/* Per-case state: the mapping under test and the migration arrays. */
struct mdk_ctx {
	unsigned long		addr;
	unsigned long		src[MDK_NPAGES];
	unsigned long		dst[MDK_NPAGES];
	struct migrate_vma	m;
};

static unsigned long mdk_map(struct kunit *test, struct file *file,
			     unsigned long flags)
{
	unsigned long addr;

	addr = kunit_vm_mmap(test, file, 0, MDK_NPAGES * PAGE_SIZE,
			     PROT_READ | PROT_WRITE, flags, 0);
	KUNIT_ASSERT_FALSE_MSG(test, IS_ERR_VALUE(addr), "mmap: %ld",
			       (long)addr);
	return addr;
}

static struct mdk_ctx *mdk_ctx_anon(struct kunit *test)
{
	struct mdk_ctx *ctx = kunit_kzalloc(test, sizeof(*ctx), GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, ctx);
	ctx->addr = mdk_map(test, NULL, MAP_PRIVATE | MAP_ANONYMOUS);
	return ctx;
}

/* Byte j of page i of the test pattern. */
static u8 mdk_pattern(unsigned long i, unsigned long j)
{
	return (u8)(i * 31 + j + 1);
}

static void mdk_write_pages(struct kunit *test, struct mdk_ctx *ctx,
			    unsigned long first, unsigned long n)
{
	u8 *buf = kunit_kmalloc(test, PAGE_SIZE, GFP_KERNEL);
	unsigned long i, j;

	KUNIT_ASSERT_NOT_NULL(test, buf);
	for (i = first; i < first + n; i++) {
		for (j = 0; j < PAGE_SIZE; j++)
			buf[j] = mdk_pattern(i, j);
		KUNIT_ASSERT_EQ(test, 0, copy_to_user((void __user *)
				(ctx->addr + i * PAGE_SIZE), buf, PAGE_SIZE));
	}
}

/* Read page @i through the CPU (migrating it back if it is away). */
static bool mdk_page_holds(struct kunit *test, struct mdk_ctx *ctx,
			   unsigned long i, bool zero)
{
	u8 *buf = kunit_kmalloc(test, PAGE_SIZE, GFP_KERNEL);
	unsigned long j;

	KUNIT_ASSERT_NOT_NULL(test, buf);
	if (copy_from_user(buf, (void __user *)(ctx->addr + i * PAGE_SIZE),
			   PAGE_SIZE))
		return false;
	for (j = 0; j < PAGE_SIZE; j++)
		if (buf[j] != (zero ? 0 : mdk_pattern(i, j)))
			return false;
	return true;
}

/*
 * Pages [0, @n) read back, through the CPU, as the pattern below page
 * @zero_from and as zeroes from there on.
 */
static void mdk_expect_data(struct kunit *test, struct mdk_ctx *ctx,
			    unsigned long n, unsigned long zero_from)
{
	unsigned long i;

	for (i = 0; i < n; i++)
		KUNIT_EXPECT_TRUE_MSG(test,
				      mdk_page_holds(test, ctx, i, i >= zero_from),
				      "page %lu", i);
}

/* Every vm event now (all_vm_events()), freed with the test. */
static unsigned long *mdk_events(struct kunit *test)
{
	unsigned long *v = kunit_kcalloc(test, NR_VM_EVENT_ITEMS, sizeof(*v),
					 GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, v);
	all_vm_events(v);
	return v;
}

/* How much vm event @item grew since @before (mdk_events()). */
static unsigned long mdk_event_delta(struct kunit *test,
				     const unsigned long *before,
				     enum vm_event_item item)
{
	return mdk_events(test)[item] - before[item];
}

/*
 * HMM's per-entry tracepoints as this test's task sees them: the pages
 * hmm_migrate_skip gave up per reason, to be checked against the vm
 * events, and the pages hmm_migrate_page moved from an empty source.
 * Without tracepoints in the kernel the probes cannot be attached; the
 * counts are then not checked (attached is false).
 */
struct mdk_traced {
	struct task_struct	*task;
	bool			attached;
	atomic_long_t		pages[HMM_SKIP_RACED + 1];
	atomic_long_t		filled;
};

static void mdk_skip_probe(void *data, unsigned long addr, unsigned long pfn,
			   unsigned long nr, enum hmm_trace_skip why)
{
	struct mdk_traced *t = data;

	if (current == t->task && why <= HMM_SKIP_RACED)
		atomic_long_add(nr, &t->pages[why]);
}

static void mdk_move_probe(void *data, unsigned long addr,
			   unsigned long src_pfn, unsigned long dst_pfn,
			   unsigned long nr, enum hmm_trace_mem from,
			   enum hmm_trace_mem to)
{
	struct mdk_traced *t = data;

	if (current == t->task && from == HMM_MEM_NONE)
		atomic_long_add(nr, &t->filled);
}

static void mdk_trace_detach(void *data)
{
	unregister_trace_hmm_migrate_page(mdk_move_probe, data);
	unregister_trace_hmm_migrate_skip(mdk_skip_probe, data);
	tracepoint_synchronize_unregister();
}

/* Count this task's per-entry events until the test ends. */
static struct mdk_traced *mdk_trace_attach(struct kunit *test)
{
	struct mdk_traced *t = kunit_kzalloc(test, sizeof(*t), GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, t);
	t->task = current;
	if (!IS_ENABLED(CONFIG_TRACEPOINTS))
		return t;
	KUNIT_ASSERT_EQ(test, 0,
			register_trace_hmm_migrate_skip(mdk_skip_probe, t));
	if (register_trace_hmm_migrate_page(mdk_move_probe, t)) {
		unregister_trace_hmm_migrate_skip(mdk_skip_probe, t);
		tracepoint_synchronize_unregister();
		KUNIT_FAIL_AND_ABORT(test, "hmm_migrate_page: no probe");
	}
	t->attached = true;
	KUNIT_ASSERT_EQ(test, 0, kunit_add_action_or_reset(test,
							   mdk_trace_detach,
							   t));
	return t;
}

/*
 * The traced pages of each reason equal the vm event of that reason since
 * @before: the tracepoint fires wherever the event is counted.
 */
static void mdk_expect_skips_traced(struct kunit *test, struct mdk_traced *s,
				    const unsigned long *before)
{
	static const enum vm_event_item event[] = {
		[HMM_SKIP_LOCKED]	= PGMIGRATE_DEVICE_FAIL_LOCKED,
		[HMM_SKIP_PINNED]	= PGMIGRATE_DEVICE_FAIL_PINNED,
		[HMM_SKIP_REFS]		= PGMIGRATE_DEVICE_FAIL_REFS,
		[HMM_SKIP_ALLOC]	= PGMIGRATE_DEVICE_FAIL_ALLOC,
		[HMM_SKIP_RACED]	= PGMIGRATE_DEVICE_FAIL_RACED,
	};
	int why;

	if (!s->attached)
		return;
	for (why = 0; why < ARRAY_SIZE(event); why++)
		KUNIT_EXPECT_EQ_MSG(test, (unsigned long)
				    atomic_long_read(&s->pages[why]),
				    mdk_event_delta(test, before, event[why]),
				    "skip reason %d", why);
}

/* migrate_vma_setup() on the whole mapping, under the mmap_lock (read). */
static int mdk_setup(struct kunit *test, struct mdk_ctx *ctx,
		     unsigned long flags, void *owner)
{
	struct mm_struct *mm = current->mm;
	int ret;

	memset(&ctx->m, 0, sizeof(ctx->m));
	ctx->m.start = ctx->addr;
	ctx->m.end = ctx->addr + MDK_NPAGES * PAGE_SIZE;
	ctx->m.src = ctx->src;
	ctx->m.dst = ctx->dst;
	ctx->m.flags = flags;
	ctx->m.pgmap_owner = owner;
	mmap_read_lock(mm);
	ctx->m.vma = vma_lookup(mm, ctx->addr);
	ret = migrate_vma_setup(&ctx->m);
	if (ret)
		mmap_read_unlock(mm);
	return ret;
}

/* Give every collected entry a device page holding its data. */
static void mdk_fill_device(struct mdk_ctx *ctx)
{
	unsigned long i;

	for (i = 0; i < ctx->m.npages; i++) {
		struct page *spage = migrate_pfn_to_page(ctx->src[i]);
		struct page *dpage;

		if (!(ctx->src[i] & MIGRATE_PFN_MIGRATE))
			continue;
		dpage = mdk_alloc_dpage();
		if (!dpage)
			continue;
		if (spage)
			memcpy_from_page(mdk_store(dpage), spage, 0, PAGE_SIZE);
		else
			memset(mdk_store(dpage), 0, PAGE_SIZE);
		ctx->dst[i] = migrate_pfn(page_to_pfn(dpage));
	}
}

static void mdk_commit(struct mdk_ctx *ctx)
{
	migrate_vma_pages(&ctx->m);
	migrate_vma_finalize(&ctx->m);
	mmap_read_unlock(current->mm);
}

/* Migrate the whole mapping to the device; returns how many pages moved. */
static unsigned long mdk_to_device(struct kunit *test, struct mdk_ctx *ctx)
{
	unsigned long i, moved = 0;

	KUNIT_ASSERT_EQ(test, 0, mdk_setup(test, ctx, MIGRATE_VMA_SELECT_SYSTEM,
					   &mdk_dev));
	mdk_fill_device(ctx);
	migrate_vma_pages(&ctx->m);
	for (i = 0; i < MDK_NPAGES; i++)
		moved += !!(ctx->src[i] & MIGRATE_PFN_MIGRATE);
	migrate_vma_finalize(&ctx->m);
	mmap_read_unlock(current->mm);
	return moved;
}

/* System pages go to the device and come back with their data. */
static void mdk_round_trip(struct kunit *test)
{
	struct mdk_ctx *ctx = mdk_ctx_anon(test);
	unsigned int used = mdk_nr_used();
	unsigned long i;

	mdk_write_pages(test, ctx, 0, MDK_NPAGES);
	KUNIT_ASSERT_EQ(test, 0, mdk_setup(test, ctx, MIGRATE_VMA_SELECT_SYSTEM,
					   &mdk_dev));
	KUNIT_EXPECT_EQ(test, ctx->m.npages, MDK_NPAGES);
	KUNIT_EXPECT_EQ(test, ctx->m.cpages, MDK_NPAGES);
	for (i = 0; i < MDK_NPAGES; i++) {
		struct page *page = migrate_pfn_to_page(ctx->src[i]);

		KUNIT_EXPECT_EQ(test, ctx->src[i] & (MIGRATE_PFN_VALID |
			MIGRATE_PFN_MIGRATE | MIGRATE_PFN_WRITE),
			MIGRATE_PFN_VALID | MIGRATE_PFN_MIGRATE |
			MIGRATE_PFN_WRITE);
		KUNIT_EXPECT_EQ(test, ctx->dst[i], 0UL);
		KUNIT_ASSERT_NOT_NULL(test, page);
		KUNIT_EXPECT_FALSE(test, is_zone_device_page(page));
		KUNIT_EXPECT_TRUE(test, PageLocked(page));
		KUNIT_EXPECT_FALSE(test, page_mapped(page));
	}
	mdk_fill_device(ctx);
	migrate_vma_pages(&ctx->m);
	for (i = 0; i < MDK_NPAGES; i++)
		KUNIT_EXPECT_TRUE(test, ctx->src[i] & MIGRATE_PFN_MIGRATE);
	migrate_vma_finalize(&ctx->m);
	mmap_read_unlock(current->mm);
	KUNIT_EXPECT_EQ(test, mdk_nr_used(), used + MDK_NPAGES);

	/* Back explicitly, selecting our device pages. */
	KUNIT_ASSERT_EQ(test, 0, mdk_setup(test, ctx,
					   MIGRATE_VMA_SELECT_DEVICE_PRIVATE, &mdk_dev));
	KUNIT_EXPECT_EQ(test, ctx->m.cpages, MDK_NPAGES);
	for (i = 0; i < MDK_NPAGES; i++) {
		struct page *dpage = migrate_pfn_to_page(ctx->src[i]);

		KUNIT_ASSERT_NOT_NULL(test, dpage);
		KUNIT_EXPECT_TRUE(test, is_device_private_page(dpage));
		KUNIT_EXPECT_TRUE(test, ctx->src[i] & MIGRATE_PFN_WRITE);
	}
	mdk_fill_system(&ctx->m);
	mdk_commit(ctx);
	KUNIT_EXPECT_EQ(test, mdk_nr_used(), used);
	mdk_expect_data(test, ctx, MDK_NPAGES, MDK_NPAGES);
}

/* A CPU access to a page on the device faults it back through the pagemap. */
static void mdk_cpu_fault_back(struct kunit *test)
{
	struct mdk_ctx *ctx = mdk_ctx_anon(test);
	unsigned int used = mdk_nr_used();
	int faults = atomic_read(&mdk_dev.faults);
	int unlocked = atomic_read(&mdk_dev.fault_page_unlocked);

	mdk_write_pages(test, ctx, 0, MDK_NPAGES);
	KUNIT_ASSERT_EQ(test, mdk_to_device(test, ctx), MDK_NPAGES);
	KUNIT_EXPECT_EQ(test, mdk_nr_used(), used + MDK_NPAGES);
	mdk_expect_data(test, ctx, MDK_NPAGES, MDK_NPAGES);
	KUNIT_EXPECT_EQ(test, mdk_nr_used(), used);
	/* One fault per page, each with the fault page locked throughout. */
	KUNIT_EXPECT_EQ(test, atomic_read(&mdk_dev.faults) - faults,
			MDK_NPAGES);
	KUNIT_EXPECT_EQ(test, atomic_read(&mdk_dev.fault_page_unlocked),
			unlocked);
}

/* Unpopulated addresses and the zero page are empty sources to fill. */
static void mdk_empty_sources(struct kunit *test)
{
	struct mdk_ctx *ctx = mdk_ctx_anon(test);
	unsigned long i;

	/* Read-fault the first half: the zero page; the rest stays empty. */
	for (i = 0; i < MDK_NPAGES / 2; i++)
		KUNIT_ASSERT_TRUE(test, mdk_page_holds(test, ctx, i, true));
	KUNIT_ASSERT_EQ(test, 0, mdk_setup(test, ctx, MIGRATE_VMA_SELECT_SYSTEM,
					   &mdk_dev));
	KUNIT_EXPECT_EQ(test, ctx->m.cpages, MDK_NPAGES);
	for (i = 0; i < MDK_NPAGES; i++)
		KUNIT_EXPECT_EQ(test, ctx->src[i], MIGRATE_PFN_MIGRATE);
	mdk_fill_device(ctx);
	migrate_vma_pages(&ctx->m);
	for (i = 0; i < MDK_NPAGES; i++)
		KUNIT_EXPECT_EQ(test, ctx->src[i], MIGRATE_PFN_MIGRATE);
	mdk_commit(ctx);

	/* They are device pages now: the explicit way back finds them all. */
	KUNIT_ASSERT_EQ(test, 0, mdk_setup(test, ctx,
					   MIGRATE_VMA_SELECT_DEVICE_PRIVATE, &mdk_dev));
	KUNIT_EXPECT_EQ(test, ctx->m.cpages, MDK_NPAGES);
	for (i = 0; i < MDK_NPAGES; i++) {
		struct page *dpage = migrate_pfn_to_page(ctx->src[i]);

		KUNIT_EXPECT_TRUE(test, dpage && is_device_private_page(dpage));
	}
	mdk_fill_system(&ctx->m);
	mdk_commit(ctx);
	mdk_expect_data(test, ctx, MDK_NPAGES, 0);
}

/*
 * Empty sources given destinations but never committed (finalize right
 * after setup, as a driver's error path may do): nothing is filled, the
 * destinations go back to the device, and hmm_migrate_page reports no
 * fill; committed, each is filled and reported once.
 */
static void mdk_empty_sources_uncommitted(struct kunit *test)
{
	struct mdk_ctx *ctx = mdk_ctx_anon(test);
	struct mdk_traced *t = mdk_trace_attach(test);
	unsigned int used = mdk_nr_used();
	unsigned long i;

	KUNIT_ASSERT_EQ(test, 0, mdk_setup(test, ctx, MIGRATE_VMA_SELECT_SYSTEM,
					   &mdk_dev));
	KUNIT_EXPECT_EQ(test, ctx->m.cpages, MDK_NPAGES);
	mdk_fill_device(ctx);
	migrate_vma_finalize(&ctx->m);
	mmap_read_unlock(current->mm);
	KUNIT_EXPECT_EQ(test, mdk_nr_used(), used);
	if (t->attached)
		KUNIT_EXPECT_EQ(test, atomic_long_read(&t->filled), 0);
	/* Still empty: each reads as zeroes (the zero page, faulted in). */
	for (i = 0; i < MDK_NPAGES; i++)
		KUNIT_EXPECT_TRUE(test, mdk_page_holds(test, ctx, i, true));

	KUNIT_ASSERT_EQ(test, 0, mdk_setup(test, ctx, MIGRATE_VMA_SELECT_SYSTEM,
					   &mdk_dev));
	mdk_fill_device(ctx);
	mdk_commit(ctx);
	KUNIT_EXPECT_EQ(test, mdk_nr_used(), used + MDK_NPAGES);
	if (t->attached)
		KUNIT_EXPECT_EQ(test, atomic_long_read(&t->filled),
				MDK_NPAGES);
	mdk_expect_data(test, ctx, MDK_NPAGES, 0);
	KUNIT_EXPECT_EQ(test, mdk_nr_used(), used);
}

/* Pages of another owner, or not selected by the flags, are left alone. */
static void mdk_selection(struct kunit *test)
{
	struct mdk_ctx *ctx = mdk_ctx_anon(test);
	unsigned long i;

	mdk_write_pages(test, ctx, 0, MDK_NPAGES);
	/* System pages without MIGRATE_VMA_SELECT_SYSTEM. */
	KUNIT_ASSERT_EQ(test, 0, mdk_setup(test, ctx,
					   MIGRATE_VMA_SELECT_DEVICE_PRIVATE, &mdk_dev));
	KUNIT_EXPECT_EQ(test, ctx->m.cpages, 0UL);
	for (i = 0; i < MDK_NPAGES; i++)
		KUNIT_EXPECT_EQ(test, ctx->src[i], 0UL);
	mdk_commit(ctx);

	KUNIT_ASSERT_EQ(test, mdk_to_device(test, ctx), MDK_NPAGES);
	/* Our device pages, but asked for by another owner. */
	KUNIT_ASSERT_EQ(test, 0, mdk_setup(test, ctx,
					   MIGRATE_VMA_SELECT_DEVICE_PRIVATE, &mdk_other_owner));
	KUNIT_EXPECT_EQ(test, ctx->m.cpages, 0UL);
	for (i = 0; i < MDK_NPAGES; i++)
		KUNIT_EXPECT_EQ(test, ctx->src[i], 0UL);
	mdk_commit(ctx);
	/* Nor by the system selection. */
	KUNIT_ASSERT_EQ(test, 0, mdk_setup(test, ctx, MIGRATE_VMA_SELECT_SYSTEM,
					   &mdk_dev));
	KUNIT_EXPECT_EQ(test, ctx->m.cpages, 0UL);
	mdk_commit(ctx);
	mdk_expect_data(test, ctx, MDK_NPAGES, MDK_NPAGES);
}

/* A page locked by someone else, or pinned, is skipped and stays mapped. */
static void mdk_busy_pages(struct kunit *test)
{
	struct mdk_ctx *ctx = mdk_ctx_anon(test);
	struct page *locked, *pinned;
	struct mdk_traced *skips;
	unsigned long *before;
	unsigned long i;

	mdk_write_pages(test, ctx, 0, MDK_NPAGES);
	mmap_read_lock(current->mm);
	KUNIT_ASSERT_EQ(test, 1L, get_user_pages(ctx->addr + 2 * PAGE_SIZE, 1,
						 0, &locked));
	KUNIT_ASSERT_EQ(test, 1L, pin_user_pages(ctx->addr + 5 * PAGE_SIZE, 1,
						 FOLL_WRITE | FOLL_LONGTERM,
						 &pinned));
	mmap_read_unlock(current->mm);
	lock_page(locked);

	skips = mdk_trace_attach(test);
	before = mdk_events(test);
	KUNIT_ASSERT_EQ(test, 0, mdk_setup(test, ctx, MIGRATE_VMA_SELECT_SYSTEM,
					   &mdk_dev));
	KUNIT_EXPECT_EQ(test, ctx->m.cpages, MDK_NPAGES - 2);
	KUNIT_EXPECT_EQ(test, ctx->src[2], 0UL);
	KUNIT_EXPECT_EQ(test, ctx->src[5], 0UL);
	KUNIT_EXPECT_TRUE(test, page_mapped(locked));
	KUNIT_EXPECT_TRUE(test, page_mapped(pinned));
	for (i = 0; i < MDK_NPAGES; i++)
		if (i != 2 && i != 5)
			KUNIT_EXPECT_TRUE(test,
					  ctx->src[i] & MIGRATE_PFN_MIGRATE);
	mdk_fill_device(ctx);
	mdk_commit(ctx);
	/* The locked page is left out; the pinned one collected, given up. */
	KUNIT_EXPECT_EQ(test, mdk_event_delta(test, before,
					      PGMIGRATE_DEVICE_FAIL_LOCKED), 1UL);
	KUNIT_EXPECT_EQ(test, mdk_event_delta(test, before,
					      PGMIGRATE_DEVICE_FAIL_PINNED), 1UL);
	KUNIT_EXPECT_EQ(test, mdk_event_delta(test, before,
					      PGMIGRATE_DEVICE_COLLECTED),
			MDK_NPAGES - 1);
	KUNIT_EXPECT_EQ(test, mdk_event_delta(test, before,
					      PGMIGRATE_DEVICE_SUCCESS),
			MDK_NPAGES - 2);
	KUNIT_EXPECT_EQ(test, mdk_event_delta(test, before,
					      PGMIGRATE_TO_DEVICE_PRIVATE),
			MDK_NPAGES - 2);
	mdk_expect_skips_traced(test, skips, before);

	unlock_page(locked);
	put_page(locked);
	unpin_user_page(pinned);
	mdk_expect_data(test, ctx, MDK_NPAGES, MDK_NPAGES);
}

/* A driver that provides no destination leaves the page where it was. */
static void mdk_no_destination(struct kunit *test)
{
	struct mdk_ctx *ctx = mdk_ctx_anon(test);
	struct mdk_traced *skips = mdk_trace_attach(test);
	unsigned int used = mdk_nr_used();
	unsigned long *before;
	unsigned long i;

	mdk_write_pages(test, ctx, 0, MDK_NPAGES);
	before = mdk_events(test);
	KUNIT_ASSERT_EQ(test, 0, mdk_setup(test, ctx, MIGRATE_VMA_SELECT_SYSTEM,
					   &mdk_dev));
	mdk_fill_device(ctx);
	/* Take back the odd destinations before committing. */
	for (i = 1; i < MDK_NPAGES; i += 2) {
		struct page *dpage = migrate_pfn_to_page(ctx->dst[i]);

		ctx->dst[i] = 0;
		unlock_page(dpage);
		put_page(dpage);
	}
	migrate_vma_pages(&ctx->m);
	for (i = 0; i < MDK_NPAGES; i++)
		KUNIT_EXPECT_EQ(test, !!(ctx->src[i] & MIGRATE_PFN_MIGRATE),
				!(i & 1));
	migrate_vma_finalize(&ctx->m);
	mmap_read_unlock(current->mm);
	KUNIT_EXPECT_EQ(test, mdk_event_delta(test, before,
					      PGMIGRATE_DEVICE_COLLECTED),
			MDK_NPAGES);
	KUNIT_EXPECT_EQ(test, mdk_event_delta(test, before,
					      PGMIGRATE_DEVICE_SUCCESS),
			MDK_NPAGES / 2);
	KUNIT_EXPECT_EQ(test, mdk_event_delta(test, before,
					      PGMIGRATE_DEVICE_FAIL_ALLOC),
			MDK_NPAGES / 2);
	mdk_expect_skips_traced(test, skips, before);
	KUNIT_EXPECT_EQ(test, mdk_nr_used(), used + MDK_NPAGES / 2);
	mdk_expect_data(test, ctx, MDK_NPAGES, MDK_NPAGES);
	KUNIT_EXPECT_EQ(test, mdk_nr_used(), used);
}

/*
 * A destination larger than its single-page source is refused: that entry
 * does not move (the source keeps its data and mapping), the others do,
 * and the refused folio goes back to the driver whole.
 */
static void mdk_large_destination(struct kunit *test)
{
	struct mdk_ctx *ctx = mdk_ctx_anon(test);
	unsigned int used = mdk_nr_used();
	struct page *dpage;
	struct folio *big;
	unsigned long i;

	mdk_write_pages(test, ctx, 0, MDK_NPAGES);
	KUNIT_ASSERT_EQ(test, 0, mdk_setup(test, ctx, MIGRATE_VMA_SELECT_SYSTEM,
					   &mdk_dev));
	mdk_fill_device(ctx);
	big = mdk_alloc_dfolio(2);
	if (!big) {
		migrate_vma_finalize(&ctx->m);
		mmap_read_unlock(current->mm);
		KUNIT_FAIL_AND_ABORT(test, "no free order-2 device folio");
	}
	dpage = migrate_pfn_to_page(ctx->dst[3]);
	unlock_page(dpage);
	put_page(dpage);
	ctx->dst[3] = migrate_pfn(folio_pfn(big));

	migrate_vma_pages(&ctx->m);
	for (i = 0; i < MDK_NPAGES; i++)
		KUNIT_EXPECT_EQ(test, !!(ctx->src[i] & MIGRATE_PFN_MIGRATE),
				i != 3);
	migrate_vma_finalize(&ctx->m);
	mmap_read_unlock(current->mm);
	/* The big folio is back with the driver; 15 pages are on the device. */
	KUNIT_EXPECT_EQ(test, mdk_nr_used(), used + MDK_NPAGES - 1);
	mdk_expect_data(test, ctx, MDK_NPAGES, MDK_NPAGES);
	KUNIT_EXPECT_EQ(test, mdk_nr_used(), used);
}

/*
 * Regression: finalize must not put a folio that lost the migration (and
 * gave its memcg to the winner) back on the LRU. Holding our own reference
 * across finalize, the old system folio must come back off the LRU with
 * only that reference left.
 */
static void mdk_finalize_frees_source(struct kunit *test)
{
	struct mdk_ctx *ctx = mdk_ctx_anon(test);
	struct folio *old[MDK_NPAGES];
	unsigned long i;

	mdk_write_pages(test, ctx, 0, MDK_NPAGES);
	KUNIT_ASSERT_EQ(test, 0, mdk_setup(test, ctx, MIGRATE_VMA_SELECT_SYSTEM,
					   &mdk_dev));
	mdk_fill_device(ctx);
	migrate_vma_pages(&ctx->m);
	for (i = 0; i < MDK_NPAGES; i++) {
		KUNIT_ASSERT_TRUE(test, ctx->src[i] & MIGRATE_PFN_MIGRATE);
		old[i] = page_folio(migrate_pfn_to_page(ctx->src[i]));
		folio_get(old[i]);
	}
	migrate_vma_finalize(&ctx->m);
	mmap_read_unlock(current->mm);
	/* On the LRU, or in a per-CPU LRU batch (which holds a reference). */
	for (i = 0; i < MDK_NPAGES; i++) {
		KUNIT_EXPECT_FALSE(test, folio_test_lru(old[i]));
		KUNIT_EXPECT_FALSE(test, folio_test_locked(old[i]));
		KUNIT_EXPECT_EQ(test, folio_ref_count(old[i]), 1);
		KUNIT_EXPECT_FALSE(test, folio_mapped(old[i]));
		folio_put(old[i]);
	}
	mdk_expect_data(test, ctx, MDK_NPAGES, MDK_NPAGES);
}

/*
 * Regression: a private file mapping is handled by page type. Its page
 * cache pages and holes are not migrated; the anonymous copies made by
 * writes are, both ways.
 */
static void mdk_private_file(struct kunit *test)
{
	struct mdk_ctx *ctx = kunit_kzalloc(test, sizeof(*ctx), GFP_KERNEL);
	struct file *file;
	unsigned long i;

	KUNIT_ASSERT_NOT_NULL(test, ctx);
	file = shmem_file_setup("mdk", MDK_NPAGES * PAGE_SIZE, 0);
	KUNIT_ASSERT_FALSE(test, IS_ERR(file));
	ctx->addr = mdk_map(test, file, MAP_PRIVATE);
	fput(file);	/* the mapping holds its own reference */

	/* Pages 0-3 written (anonymous copies), 4-7 read (page cache). */
	mdk_write_pages(test, ctx, 0, 4);
	for (i = 4; i < 8; i++)
		KUNIT_ASSERT_TRUE(test, mdk_page_holds(test, ctx, i, true));

	KUNIT_ASSERT_EQ(test, 0, mdk_setup(test, ctx, MIGRATE_VMA_SELECT_SYSTEM,
					   &mdk_dev));
	KUNIT_EXPECT_EQ(test, ctx->m.cpages, 4UL);
	for (i = 0; i < MDK_NPAGES; i++)
		KUNIT_EXPECT_EQ(test, !!(ctx->src[i] & MIGRATE_PFN_MIGRATE),
				i < 4);
	mdk_fill_device(ctx);
	mdk_commit(ctx);

	KUNIT_ASSERT_EQ(test, 0, mdk_setup(test, ctx,
					   MIGRATE_VMA_SELECT_DEVICE_PRIVATE, &mdk_dev));
	KUNIT_EXPECT_EQ(test, ctx->m.cpages, 4UL);
	for (i = 0; i < 4; i++) {
		struct page *dpage = migrate_pfn_to_page(ctx->src[i]);

		KUNIT_EXPECT_TRUE(test, dpage && is_device_private_page(dpage));
	}
	mdk_fill_system(&ctx->m);
	mdk_commit(ctx);
	mdk_expect_data(test, ctx, 8, 4);
}

/* The folio mapped at @addr in the test's mm, referenced; NULL if none. */
static struct folio *mdk_folio_at(unsigned long addr)
{
	struct page *page;

	if (get_user_pages_fast(addr, 1, 0, &page) != 1)
		return NULL;
	return page_folio(page);
}

/*
 * A 2 MiB-aligned address with a 2 MiB anonymous mapping (or more) from
 * there on, that the fault path fills with THPs.
 */
static unsigned long mdk_map_huge(struct kunit *test)
{
	struct vm_area_struct *vma;
	unsigned long map, addr;

	map = kunit_vm_mmap(test, NULL, 0, 2 * SZ_2M, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, 0);
	KUNIT_ASSERT_FALSE(test, IS_ERR_VALUE(map));
	addr = ALIGN(map, SZ_2M);
	/* What madvise(MADV_HUGEPAGE) does. */
	mmap_write_lock(current->mm);
	vma = vma_lookup(current->mm, addr);
	if (vma)
		vm_flags_set(vma, VM_HUGEPAGE);
	mmap_write_unlock(current->mm);
	KUNIT_ASSERT_NOT_NULL(test, vma);
	return addr;
}

/*
 * A THP at ctx->addr holding the pattern in its first MDK_NPAGES pages,
 * mapped by PTEs: its PMD split by unmapping its last page, the folio left
 * whole.
 */
static struct mdk_ctx *mdk_ctx_pte_mapped_thp(struct kunit *test)
{
	struct mdk_ctx *ctx = kunit_kzalloc(test, sizeof(*ctx), GFP_KERNEL);
	struct folio *folio;

	KUNIT_ASSERT_NOT_NULL(test, ctx);
	ctx->addr = mdk_map_huge(test);
	mdk_write_pages(test, ctx, 0, MDK_NPAGES);
	folio = mdk_folio_at(ctx->addr);
	KUNIT_ASSERT_NOT_NULL(test, folio);
	KUNIT_EXPECT_EQ(test, folio_order(folio), PMD_ORDER);
	folio_put(folio);
	KUNIT_ASSERT_EQ(test, vm_munmap(ctx->addr + SZ_2M - PAGE_SIZE,
					PAGE_SIZE), 0);
	folio = mdk_folio_at(ctx->addr);
	KUNIT_ASSERT_NOT_NULL(test, folio);
	KUNIT_ASSERT_EQ(test, folio_order(folio), PMD_ORDER);
	folio_put(folio);
	return ctx;
}

/*
 * Regression: a THP mapped by PTEs was skipped by the collection, as 6.12
 * does; its pages must be collected, the folio split on the way, and
 * move and come back with their data.
 */
static void mdk_pte_mapped_thp(struct kunit *test)
{
	struct mdk_ctx *ctx = mdk_ctx_pte_mapped_thp(test);
	struct folio *folio;

	KUNIT_EXPECT_EQ(test, mdk_to_device(test, ctx), MDK_NPAGES);
	/* The rest of the old THP stays, as small pages. */
	folio = mdk_folio_at(ctx->addr + MDK_NPAGES * PAGE_SIZE);
	KUNIT_ASSERT_NOT_NULL(test, folio);
	KUNIT_EXPECT_FALSE(test, folio_test_large(folio));
	folio_put(folio);
	mdk_expect_data(test, ctx, MDK_NPAGES, MDK_NPAGES);
}

/*
 * A PTE-mapped THP that cannot be split (a page of it pinned, as a DMA
 * would) is skipped whole, once: nothing moves, the folio stays whole and
 * mapped, and the data is where it was.
 */
static void mdk_pinned_pte_mapped_thp(struct kunit *test)
{
	struct mdk_ctx *ctx = mdk_ctx_pte_mapped_thp(test);
	unsigned int used = mdk_nr_used();
	struct folio *folio;
	struct page *pinned;

	KUNIT_ASSERT_EQ(test, pin_user_pages_fast(ctx->addr + 5 * PAGE_SIZE, 1,
						  0, &pinned), 1);
	KUNIT_EXPECT_EQ(test, mdk_to_device(test, ctx), 0UL);
	KUNIT_EXPECT_EQ(test, mdk_nr_used(), used);
	folio = mdk_folio_at(ctx->addr);
	KUNIT_ASSERT_NOT_NULL(test, folio);
	KUNIT_EXPECT_EQ(test, folio_order(folio), PMD_ORDER);
	KUNIT_EXPECT_PTR_EQ(test, page_folio(pinned), folio);
	folio_put(folio);
	unpin_user_page(pinned);
	mdk_expect_data(test, ctx, MDK_NPAGES, MDK_NPAGES);
}

/* ---- Compound entries: a PMD-sized folio moving whole ---- */

/* A PMD-sized range at a 2 MiB boundary and its migration arrays. */
struct mdk_thp {
	struct mdk_ctx		c;	/* c.addr: the range, for the data helpers */
	unsigned long		src[HPAGE_PMD_NR];
	unsigned long		dst[HPAGE_PMD_NR];
	struct migrate_vma	m;
};

/* What the PMD of an address holds. */
enum mdk_pmd_kind {
	MDK_PMD_NONE,		/* nothing, not even a page table */
	MDK_PMD_TABLE,		/* a PTE table */
	MDK_PMD_THP,		/* a PMD-mapped THP */
	MDK_PMD_DEVICE,		/* a PMD-sized device-private folio */
	MDK_PMD_OTHER,		/* a migration entry, ... */
};

/* The PMD of @addr in @mm, if the levels above it are there. */
static pmd_t *mdk_find_pmd(struct mm_struct *mm, unsigned long addr)
{
	pgd_t *pgd = pgd_offset(mm, addr);
	p4d_t *p4d;
	pud_t *pud;

	if (!pgd_present(*pgd))
		return NULL;
	p4d = p4d_offset(pgd, addr);
	if (!p4d_present(*p4d))
		return NULL;
	pud = pud_offset(p4d, addr);
	if (!pud_present(*pud) || pud_leaf(*pud))
		return NULL;
	return pmd_offset(pud, addr);
}

static enum mdk_pmd_kind mdk_pmd_kind(unsigned long addr)
{
	struct mm_struct *mm = current->mm;
	enum mdk_pmd_kind kind = MDK_PMD_NONE;
	pmd_t *pmdp, pmd;

	mmap_read_lock(mm);
	pmdp = mdk_find_pmd(mm, addr);
	if (pmdp) {
		pmd = pmdp_get_lockless(pmdp);
		if (pmd_none(pmd))
			kind = MDK_PMD_NONE;
		else if (pmd_trans_huge(pmd))
			kind = MDK_PMD_THP;
		else if (is_pmd_device_private_entry(pmd))
			kind = MDK_PMD_DEVICE;
		else if (pmd_present(pmd))
			kind = MDK_PMD_TABLE;
		else
			kind = MDK_PMD_OTHER;
	}
	mmap_read_unlock(mm);
	return kind;
}

/* A THP range, holding the pattern in a PMD-mapped THP if @populate. */
static struct mdk_thp *mdk_thp_new(struct kunit *test, bool populate)
{
	struct mdk_thp *t = kunit_kzalloc(test, sizeof(*t), GFP_KERNEL);
	struct folio *folio;

	KUNIT_ASSERT_NOT_NULL(test, t);
	t->c.addr = mdk_map_huge(test);
	if (!populate)
		return t;
	mdk_write_pages(test, &t->c, 0, HPAGE_PMD_NR);
	folio = mdk_folio_at(t->c.addr);
	KUNIT_ASSERT_NOT_NULL(test, folio);
	KUNIT_EXPECT_EQ(test, folio_order(folio), HPAGE_PMD_ORDER);
	folio_put(folio);
	KUNIT_ASSERT_EQ(test, mdk_pmd_kind(t->c.addr), MDK_PMD_THP);
	return t;
}

/* migrate_vma_setup() of the range with compound entries asked for. */
static int mdk_thp_setup(struct kunit *test, struct mdk_thp *t,
			 unsigned long flags)
{
	struct mm_struct *mm = current->mm;
	int ret;

	memset(&t->m, 0, sizeof(t->m));
	t->m.start = t->c.addr;
	t->m.end = t->c.addr + HPAGE_PMD_SIZE;
	t->m.src = t->src;
	t->m.dst = t->dst;
	t->m.flags = flags | MIGRATE_VMA_SELECT_COMPOUND;
	t->m.pgmap_owner = &mdk_dev;
	mmap_read_lock(mm);
	t->m.vma = vma_lookup(mm, t->c.addr);
	ret = migrate_vma_setup(&t->m);
	if (ret)
		mmap_read_unlock(mm);
	return ret;
}

/*
 * Give compound entry 0 a PMD-sized device folio holding its data (zeroes
 * for an empty source); false if the device has none free.
 */
static bool mdk_thp_fill_device(struct mdk_thp *t)
{
	struct page *spage = migrate_pfn_to_page(t->src[0]);
	struct folio *dfolio = mdk_alloc_dfolio(HPAGE_PMD_ORDER);
	unsigned long j;

	if (!dfolio)
		return false;
	for (j = 0; j < HPAGE_PMD_NR; j++) {
		void *to = mdk_store(folio_page(dfolio, j));

		if (spage)
			memcpy_from_page(to, nth_page(spage, j), 0, PAGE_SIZE);
		else
			memset(to, 0, PAGE_SIZE);
	}
	t->dst[0] = migrate_pfn(folio_pfn(dfolio)) | MIGRATE_PFN_COMPOUND;
	return true;
}

/*
 * Commit and end the migration of the range; check whether compound entry
 * 0 moved, and what the PMD holds afterwards.
 */
static void mdk_thp_commit(struct kunit *test, struct mdk_thp *t, bool moved,
			   enum mdk_pmd_kind kind)
{
	migrate_vma_pages(&t->m);
	KUNIT_EXPECT_EQ(test, !!(t->src[0] & MIGRATE_PFN_MIGRATE), moved);
	migrate_vma_finalize(&t->m);
	mmap_read_unlock(current->mm);
	KUNIT_EXPECT_EQ(test, mdk_pmd_kind(t->c.addr), kind);
}

/*
 * mdk_thp_fill_device() inside a migration mdk_thp_setup() began: without
 * a free 2 MiB device folio, end the migration and drop the mmap lock
 * before failing the test, so that the tests after it can still run.
 */
static void mdk_thp_fill_or_abort(struct kunit *test, struct mdk_thp *t)
{
	if (mdk_thp_fill_device(t))
		return;
	migrate_vma_finalize(&t->m);
	mmap_read_unlock(current->mm);
	KUNIT_FAIL_AND_ABORT(test, "no free 2 MiB device folio");
}

/* The whole range to the device as one compound entry. */
static void mdk_thp_to_device(struct kunit *test, struct mdk_thp *t)
{
	KUNIT_ASSERT_EQ(test, 0, mdk_thp_setup(test, t,
					       MIGRATE_VMA_SELECT_SYSTEM));
	KUNIT_ASSERT_TRUE(test, t->src[0] & MIGRATE_PFN_COMPOUND);
	mdk_thp_fill_or_abort(test, t);
	mdk_thp_commit(test, t, true, MDK_PMD_DEVICE);
}

/*
 * A PMD-mapped THP in a range migrated without 2 MiB entries: a migration
 * of device-private memory only leaves it whole (splitting it would move
 * nothing); one that selects system memory splits it, once, and collects
 * its 512 pages, which stay where they are when the driver gives none a
 * destination.
 */
static void mdk_thp_split_only_if_selected(struct kunit *test)
{
	static const unsigned long flags[] = {
		MIGRATE_VMA_SELECT_DEVICE_PRIVATE, MIGRATE_VMA_SELECT_SYSTEM,
	};
	struct mdk_thp *t = mdk_thp_new(test, true);
	struct mm_struct *mm = current->mm;
	int k;

	for (k = 0; k < ARRAY_SIZE(flags); k++) {
		unsigned long *before = mdk_events(test);
		bool system = flags[k] & MIGRATE_VMA_SELECT_SYSTEM;

		memset(&t->m, 0, sizeof(t->m));
		t->m.start = t->c.addr;
		t->m.end = t->c.addr + HPAGE_PMD_SIZE;
		t->m.src = t->src;
		t->m.dst = t->dst;
		t->m.flags = flags[k];
		t->m.pgmap_owner = &mdk_dev;
		mmap_read_lock(mm);
		t->m.vma = vma_lookup(mm, t->c.addr);
		KUNIT_EXPECT_EQ(test, migrate_vma_setup(&t->m), 0);
		KUNIT_EXPECT_EQ(test, t->m.cpages, system ? HPAGE_PMD_NR : 0);
		migrate_vma_pages(&t->m);
		migrate_vma_finalize(&t->m);
		mmap_read_unlock(mm);
		KUNIT_EXPECT_EQ(test, mdk_pmd_kind(t->c.addr),
				system ? MDK_PMD_TABLE : MDK_PMD_THP);
		KUNIT_EXPECT_EQ(test, mdk_event_delta(test, before,
						      THP_MIGRATION_DEVICE_SPLIT),
				system ? 1UL : 0UL);
		KUNIT_EXPECT_EQ(test, mdk_event_delta(test, before,
						      PGMIGRATE_DEVICE_COLLECTED),
				system ? HPAGE_PMD_NR : 0);
		KUNIT_EXPECT_EQ(test, mdk_event_delta(test, before,
						      PGMIGRATE_DEVICE_FAIL_ALLOC),
				system ? HPAGE_PMD_NR : 0);
	}
	mdk_expect_data(test, &t->c, HPAGE_PMD_NR, HPAGE_PMD_NR);
}

/*
 * A PMD-mapped THP is one compound entry; it moves to a 2 MiB device folio
 * mapped by one device-private PMD, and back into a THP, whole both ways.
 */
static void mdk_thp_round_trip(struct kunit *test)
{
	struct mdk_thp *t = mdk_thp_new(test, true);
	unsigned int used = mdk_nr_used();
	struct page *page;
	unsigned long j;

	KUNIT_ASSERT_EQ(test, 0, mdk_thp_setup(test, t,
					       MIGRATE_VMA_SELECT_SYSTEM));
	KUNIT_EXPECT_EQ(test, t->m.cpages, 1UL);
	KUNIT_EXPECT_EQ(test, t->src[0] & ~PAGE_MASK & ((1UL << MIGRATE_PFN_SHIFT) - 1),
			MIGRATE_PFN_VALID | MIGRATE_PFN_MIGRATE |
			MIGRATE_PFN_WRITE | MIGRATE_PFN_COMPOUND);
	for (j = 1; j < HPAGE_PMD_NR; j++)
		KUNIT_EXPECT_EQ_MSG(test, t->src[j], 0UL, "entry %lu", j);
	page = migrate_pfn_to_page(t->src[0]);
	KUNIT_ASSERT_NOT_NULL(test, page);
	KUNIT_EXPECT_EQ(test, folio_order(page_folio(page)), HPAGE_PMD_ORDER);
	KUNIT_EXPECT_TRUE(test, PageLocked(page));
	KUNIT_EXPECT_FALSE(test, folio_mapped(page_folio(page)));
	mdk_thp_fill_or_abort(test, t);
	mdk_thp_commit(test, t, true, MDK_PMD_DEVICE);
	KUNIT_EXPECT_EQ(test, mdk_nr_used(), used + HPAGE_PMD_NR);

	/* Back, explicitly: the device folio is one compound entry too. */
	KUNIT_ASSERT_EQ(test, 0, mdk_thp_setup(test, t,
					       MIGRATE_VMA_SELECT_DEVICE_PRIVATE));
	KUNIT_EXPECT_EQ(test, t->m.cpages, 1UL);
	page = migrate_pfn_to_page(t->src[0]);
	KUNIT_ASSERT_NOT_NULL(test, page);
	KUNIT_EXPECT_TRUE(test, is_device_private_page(page));
	KUNIT_EXPECT_TRUE(test, t->src[0] & MIGRATE_PFN_WRITE);
	KUNIT_EXPECT_TRUE(test, t->src[0] & MIGRATE_PFN_COMPOUND);
	KUNIT_ASSERT_TRUE(test, mdk_thp_fill_system(t->src, t->dst));
	mdk_thp_commit(test, t, true, MDK_PMD_THP);
	KUNIT_EXPECT_EQ(test, mdk_nr_used(), used);
	mdk_expect_data(test, &t->c, HPAGE_PMD_NR, HPAGE_PMD_NR);
}

/*
 * A CPU access anywhere in a device-private PMD faults the whole folio
 * back at once: one migrate_to_ram() call, with the folio locked.
 */
static void mdk_thp_cpu_fault(struct kunit *test)
{
	struct mdk_thp *t = mdk_thp_new(test, true);
	unsigned int used = mdk_nr_used();
	int faults = atomic_read(&mdk_dev.faults);
	int unlocked = atomic_read(&mdk_dev.fault_page_unlocked);

	mdk_thp_to_device(test, t);
	KUNIT_EXPECT_TRUE(test, mdk_page_holds(test, &t->c, 300, false));
	KUNIT_EXPECT_EQ(test, atomic_read(&mdk_dev.faults) - faults, 1);
	KUNIT_EXPECT_EQ(test, atomic_read(&mdk_dev.fault_page_unlocked),
			unlocked);
	KUNIT_EXPECT_EQ(test, mdk_pmd_kind(t->c.addr), MDK_PMD_THP);
	KUNIT_EXPECT_EQ(test, mdk_nr_used(), used);
	mdk_expect_data(test, &t->c, HPAGE_PMD_NR, HPAGE_PMD_NR);
	KUNIT_EXPECT_EQ(test, atomic_read(&mdk_dev.faults) - faults, 1);
}

/*
 * An empty PMD-sized range, and one mapping the huge zero page, are one
 * empty compound entry; a 2 MiB device folio fills it by a PMD.
 */
static void mdk_thp_empty_sources(struct kunit *test)
{
	unsigned int used = mdk_nr_used();
	int zero_page;

	for (zero_page = 0; zero_page < 2; zero_page++) {
		struct mdk_thp *t = mdk_thp_new(test, false);

		if (zero_page) {
			KUNIT_ASSERT_TRUE(test, mdk_page_holds(test, &t->c, 0,
							       true));
			if (mdk_pmd_kind(t->c.addr) != MDK_PMD_THP)
				kunit_info(test, "no huge zero page here");
		}
		KUNIT_ASSERT_EQ(test, 0, mdk_thp_setup(test, t,
						       MIGRATE_VMA_SELECT_SYSTEM));
		KUNIT_EXPECT_EQ(test, t->m.cpages, 1UL);
		KUNIT_EXPECT_EQ(test, t->src[0],
				MIGRATE_PFN_MIGRATE | MIGRATE_PFN_COMPOUND);
		mdk_thp_fill_or_abort(test, t);
		mdk_thp_commit(test, t, true, MDK_PMD_DEVICE);
		KUNIT_EXPECT_EQ(test, mdk_nr_used(), used + HPAGE_PMD_NR);
		/* Zeroes come back, whole. */
		mdk_expect_data(test, &t->c, HPAGE_PMD_NR, 0);
		KUNIT_EXPECT_EQ(test, mdk_pmd_kind(t->c.addr), MDK_PMD_THP);
		KUNIT_EXPECT_EQ(test, mdk_nr_used(), used);
	}
}

/*
 * A driver without a 2 MiB folio answers an empty compound entry (an empty
 * range, or the huge zero page) with order-0 pages: the range becomes
 * HPAGE_PMD_NR empty sources, each filled by its own page under a PTE
 * table.
 */
static void mdk_thp_empty_small_destinations(struct kunit *test)
{
	unsigned int used = mdk_nr_used();
	int zero_page;

	for (zero_page = 0; zero_page < 2; zero_page++) {
		struct mdk_thp *t = mdk_thp_new(test, false);
		unsigned long j;

		if (zero_page)
			KUNIT_ASSERT_TRUE(test, mdk_page_holds(test, &t->c, 0,
							       true));
		KUNIT_ASSERT_EQ(test, 0, mdk_thp_setup(test, t,
						       MIGRATE_VMA_SELECT_SYSTEM));
		KUNIT_ASSERT_EQ(test, t->src[0],
				MIGRATE_PFN_MIGRATE | MIGRATE_PFN_COMPOUND);
		for (j = 0; j < HPAGE_PMD_NR; j++) {
			struct page *dpage = mdk_alloc_dpage();

			if (!dpage)
				break;
			memset(mdk_store(dpage), 0, PAGE_SIZE);
			t->dst[j] = migrate_pfn(page_to_pfn(dpage));
		}
		KUNIT_EXPECT_EQ(test, j, HPAGE_PMD_NR);
		migrate_vma_pages(&t->m);
		for (j = 0; j < HPAGE_PMD_NR; j++)
			KUNIT_EXPECT_EQ_MSG(test, t->src[j], MIGRATE_PFN_MIGRATE,
					    "entry %lu (zero page: %d)", j,
					    zero_page);
		migrate_vma_finalize(&t->m);
		mmap_read_unlock(current->mm);
		KUNIT_EXPECT_EQ(test, mdk_pmd_kind(t->c.addr), MDK_PMD_TABLE);
		KUNIT_EXPECT_EQ(test, mdk_nr_used(), used + HPAGE_PMD_NR);
		mdk_expect_data(test, &t->c, HPAGE_PMD_NR, 0);
		KUNIT_EXPECT_EQ(test, mdk_nr_used(), used);
	}
}

/* Give each page of the compound source src[0] a device page with its data. */
static unsigned long mdk_thp_fill_device_small(struct mdk_thp *t)
{
	struct page *spage = migrate_pfn_to_page(t->src[0]);
	unsigned long j;

	for (j = 0; j < HPAGE_PMD_NR; j++) {
		struct page *dpage = mdk_alloc_dpage();

		if (!dpage)
			break;
		memcpy_from_page(mdk_store(dpage), nth_page(spage, j), 0,
				 PAGE_SIZE);
		t->dst[j] = migrate_pfn(page_to_pfn(dpage));
	}
	return j;
}

/* How many of the HPAGE_PMD_NR entries moved, each as a single page. */
static unsigned long mdk_thp_moved_small(struct mdk_thp *t)
{
	unsigned long j, moved = 0;

	for (j = 0; j < HPAGE_PMD_NR; j++)
		moved += (t->src[j] & (MIGRATE_PFN_MIGRATE |
				       MIGRATE_PFN_COMPOUND)) ==
			 MIGRATE_PFN_MIGRATE;
	return moved;
}

/*
 * Order-0 destinations for a populated THP: the core splits the THP where
 * it is, unmapped (folio_split_unmapped()), and each of its pages moves to
 * its own device page, mapped by a device-private PTE. The data comes back
 * page by page.
 */
static void mdk_thp_populated_small_destinations(struct kunit *test)
{
	struct mdk_thp *t = mdk_thp_new(test, true);
	unsigned int used = mdk_nr_used();

	KUNIT_ASSERT_EQ(test, 0, mdk_thp_setup(test, t,
					       MIGRATE_VMA_SELECT_SYSTEM));
	KUNIT_ASSERT_TRUE(test, t->src[0] & MIGRATE_PFN_COMPOUND);
	KUNIT_EXPECT_EQ(test, mdk_thp_fill_device_small(t), HPAGE_PMD_NR);
	migrate_vma_pages(&t->m);
	KUNIT_EXPECT_EQ(test, mdk_thp_moved_small(t), HPAGE_PMD_NR);
	migrate_vma_finalize(&t->m);
	mmap_read_unlock(current->mm);
	KUNIT_EXPECT_EQ(test, mdk_pmd_kind(t->c.addr), MDK_PMD_TABLE);
	KUNIT_EXPECT_EQ(test, mdk_nr_used(), used + HPAGE_PMD_NR);
	mdk_expect_data(test, &t->c, HPAGE_PMD_NR, HPAGE_PMD_NR);
	KUNIT_EXPECT_EQ(test, mdk_nr_used(), used);
}

/*
 * No destination at all for a populated THP: it is not split, and stays
 * mapped whole with its data.
 */
static void mdk_thp_populated_no_destination(struct kunit *test)
{
	struct mdk_thp *t = mdk_thp_new(test, true);

	KUNIT_ASSERT_EQ(test, 0, mdk_thp_setup(test, t,
					       MIGRATE_VMA_SELECT_SYSTEM));
	KUNIT_ASSERT_TRUE(test, t->src[0] & MIGRATE_PFN_COMPOUND);
	mdk_thp_commit(test, t, false, MDK_PMD_THP);
	mdk_expect_data(test, &t->c, HPAGE_PMD_NR, HPAGE_PMD_NR);
}

/*
 * A compound answer the core cannot use (a single page marked compound) is
 * no answer: the THP is not split for it and stays mapped whole.
 */
static void mdk_thp_bad_compound_destination(struct kunit *test)
{
	struct mdk_thp *t = mdk_thp_new(test, true);
	unsigned int used = mdk_nr_used();
	struct page *dpage;

	KUNIT_ASSERT_EQ(test, 0, mdk_thp_setup(test, t,
					       MIGRATE_VMA_SELECT_SYSTEM));
	KUNIT_ASSERT_TRUE(test, t->src[0] & MIGRATE_PFN_COMPOUND);
	dpage = mdk_alloc_dpage();
	if (dpage)
		t->dst[0] = migrate_pfn(page_to_pfn(dpage)) |
			    MIGRATE_PFN_COMPOUND;
	mdk_thp_commit(test, t, false, MDK_PMD_THP);
	KUNIT_EXPECT_NOT_NULL(test, dpage);
	KUNIT_EXPECT_EQ(test, mdk_nr_used(), used);
	mdk_expect_data(test, &t->c, HPAGE_PMD_NR, HPAGE_PMD_NR);
}

/*
 * Commit and end a migration of the range in which compound source 0 must
 * not move, as its split is refused while the test holds a reference on
 * @folio; check it is still whole, and drop that reference.
 */
static void mdk_thp_commit_refused(struct kunit *test, struct mdk_thp *t,
				   struct folio *folio)
{
	unsigned long j;

	migrate_vma_pages(&t->m);
	for (j = 0; j < HPAGE_PMD_NR; j++)
		KUNIT_EXPECT_FALSE_MSG(test, t->src[j] & MIGRATE_PFN_MIGRATE,
				       "entry %lu", j);
	migrate_vma_finalize(&t->m);
	mmap_read_unlock(current->mm);
	KUNIT_EXPECT_EQ(test, folio_order(folio), HPAGE_PMD_ORDER);
	folio_put(folio);
}

/*
 * A reference taken on the THP after setup (a speculative one, as a PFN
 * walker takes) makes the unmapped split fail: nothing moves, the device
 * pages go back, and the THP stays, still mapped by its PMD (the core
 * sees the reference before it splits any PMD entry), with its data.
 */
static void mdk_thp_split_refused(struct kunit *test)
{
	struct mdk_thp *t = mdk_thp_new(test, true);
	unsigned int used = mdk_nr_used();
	struct folio *folio;

	KUNIT_ASSERT_EQ(test, 0, mdk_thp_setup(test, t,
					       MIGRATE_VMA_SELECT_SYSTEM));
	KUNIT_ASSERT_TRUE(test, t->src[0] & MIGRATE_PFN_COMPOUND);
	folio = page_folio(migrate_pfn_to_page(t->src[0]));
	folio_get(folio);
	KUNIT_EXPECT_EQ(test, mdk_thp_fill_device_small(t), HPAGE_PMD_NR);
	mdk_thp_commit_refused(test, t, folio);
	KUNIT_EXPECT_EQ(test, mdk_nr_used(), used);
	KUNIT_EXPECT_EQ(test, mdk_pmd_kind(t->c.addr), MDK_PMD_THP);
	mdk_expect_data(test, &t->c, HPAGE_PMD_NR, HPAGE_PMD_NR);
}

/*
 * A driver without a THP answers a device-private compound entry with
 * single system pages: the core splits the device folio (still locked, so
 * the copies stay good) and its pages move one by one.
 */
static void mdk_thp_back_small_destinations(struct kunit *test)
{
	struct mdk_thp *t = mdk_thp_new(test, true);
	unsigned int used = mdk_nr_used();

	mdk_thp_to_device(test, t);
	KUNIT_ASSERT_EQ(test, 0, mdk_thp_setup(test, t,
					       MIGRATE_VMA_SELECT_DEVICE_PRIVATE));
	KUNIT_ASSERT_TRUE(test, t->src[0] & MIGRATE_PFN_COMPOUND);
	mdk_thp_fill_system_small(t->src, t->dst);
	migrate_vma_pages(&t->m);
	KUNIT_EXPECT_EQ(test, mdk_thp_moved_small(t), HPAGE_PMD_NR);
	migrate_vma_finalize(&t->m);
	mmap_read_unlock(current->mm);
	KUNIT_EXPECT_EQ(test, mdk_pmd_kind(t->c.addr), MDK_PMD_TABLE);
	KUNIT_EXPECT_EQ(test, mdk_nr_used(), used);
	mdk_expect_data(test, &t->c, HPAGE_PMD_NR, HPAGE_PMD_NR);
}

/*
 * The same from a CPU fault: with no THP to be had, the fault brings the
 * folio back as single pages, in one migrate_to_ram() call.
 */
static void mdk_thp_cpu_fault_small(struct kunit *test)
{
	struct mdk_thp *t = mdk_thp_new(test, true);
	unsigned int used = mdk_nr_used();
	int faults = atomic_read(&mdk_dev.faults);

	mdk_thp_to_device(test, t);
	WRITE_ONCE(mdk_dev.no_thp, true);
	KUNIT_EXPECT_TRUE(test, mdk_page_holds(test, &t->c, 100, false));
	WRITE_ONCE(mdk_dev.no_thp, false);
	KUNIT_EXPECT_EQ(test, atomic_read(&mdk_dev.faults) - faults, 1);
	KUNIT_EXPECT_EQ(test, mdk_pmd_kind(t->c.addr), MDK_PMD_TABLE);
	KUNIT_EXPECT_EQ(test, mdk_nr_used(), used);
	mdk_expect_data(test, &t->c, HPAGE_PMD_NR, HPAGE_PMD_NR);
	KUNIT_EXPECT_EQ(test, atomic_read(&mdk_dev.faults) - faults, 1);
}

/*
 * munmap() of a device-private PMD frees the folio whole; of half of it,
 * splits the PMD into device-private PTEs and keeps the folio until the
 * rest goes too.
 */
static void mdk_thp_munmap(struct kunit *test)
{
	unsigned int used = mdk_nr_used();
	struct mdk_thp *t;

	t = mdk_thp_new(test, true);
	mdk_thp_to_device(test, t);
	KUNIT_EXPECT_EQ(test, mdk_nr_used(), used + HPAGE_PMD_NR);
	KUNIT_EXPECT_EQ(test, vm_munmap(t->c.addr, HPAGE_PMD_SIZE), 0);
	KUNIT_EXPECT_EQ(test, mdk_nr_used(), used);

	t = mdk_thp_new(test, true);
	mdk_thp_to_device(test, t);
	KUNIT_EXPECT_EQ(test, vm_munmap(t->c.addr + HPAGE_PMD_SIZE / 2,
					HPAGE_PMD_SIZE / 2), 0);
	KUNIT_EXPECT_EQ(test, mdk_pmd_kind(t->c.addr), MDK_PMD_TABLE);
	KUNIT_EXPECT_EQ(test, mdk_nr_used(), used + HPAGE_PMD_NR);
	KUNIT_EXPECT_EQ(test, vm_munmap(t->c.addr, HPAGE_PMD_SIZE / 2), 0);
	KUNIT_EXPECT_EQ(test, mdk_nr_used(), used);
}

/*
 * A device-private PMD partly unmapped is mapped by PTEs of a folio still
 * whole. A CPU fault there splits the folio (the driver hears of each new
 * folio), its unmapped pages go back to the driver and the mapped ones
 * come back with their data.
 */
static void mdk_thp_partial_munmap_fault(struct kunit *test)
{
	struct mdk_thp *t = mdk_thp_new(test, true);
	unsigned int used = mdk_nr_used();
	int splits = atomic_read(&mdk_dev.splits);
	int faults = atomic_read(&mdk_dev.faults);

	mdk_thp_to_device(test, t);
	KUNIT_ASSERT_EQ(test, vm_munmap(t->c.addr + HPAGE_PMD_SIZE / 2,
					HPAGE_PMD_SIZE / 2), 0);
	KUNIT_EXPECT_EQ(test, mdk_pmd_kind(t->c.addr), MDK_PMD_TABLE);
	KUNIT_EXPECT_TRUE(test, mdk_page_holds(test, &t->c, 3, false));
	KUNIT_EXPECT_EQ(test, atomic_read(&mdk_dev.faults) - faults, 1);
	KUNIT_EXPECT_EQ(test, atomic_read(&mdk_dev.splits) - splits,
			HPAGE_PMD_NR - 1);
	KUNIT_EXPECT_EQ(test, mdk_nr_used(), used);
	mdk_expect_data(test, &t->c, HPAGE_PMD_NR / 2, HPAGE_PMD_NR / 2);
	KUNIT_EXPECT_EQ(test, atomic_read(&mdk_dev.faults) - faults, 1);
}

/*
 * A migration without compound entries over part of a device-private PMD
 * splits the PMD and the folio, and moves just the pages asked for; the
 * rest stays on the device, as single pages, until touched.
 */
static void mdk_thp_migrate_part(struct kunit *test)
{
	struct mdk_thp *t = mdk_thp_new(test, true);
	unsigned int used = mdk_nr_used();
	struct mdk_ctx *ctx = &t->c;
	unsigned long i;

	mdk_thp_to_device(test, t);
	KUNIT_ASSERT_EQ(test, 0, mdk_setup(test, ctx,
					   MIGRATE_VMA_SELECT_DEVICE_PRIVATE, &mdk_dev));
	KUNIT_EXPECT_EQ(test, ctx->m.cpages, MDK_NPAGES);
	for (i = 0; i < MDK_NPAGES; i++) {
		struct page *dpage = migrate_pfn_to_page(ctx->src[i]);

		KUNIT_ASSERT_NOT_NULL(test, dpage);
		KUNIT_EXPECT_TRUE(test, is_device_private_page(dpage));
		KUNIT_EXPECT_FALSE(test, PageCompound(dpage));
	}
	mdk_fill_system(&ctx->m);
	mdk_commit(ctx);
	KUNIT_EXPECT_EQ(test, mdk_pmd_kind(t->c.addr), MDK_PMD_TABLE);
	KUNIT_EXPECT_EQ(test, mdk_nr_used(), used + HPAGE_PMD_NR - MDK_NPAGES);
	mdk_expect_data(test, &t->c, HPAGE_PMD_NR, HPAGE_PMD_NR);
	KUNIT_EXPECT_EQ(test, mdk_nr_used(), used);
}

#if IS_ENABLED(CONFIG_HMM_MIRROR)
static bool mdk_mni_invalidate(struct mmu_interval_notifier *mni,
			       const struct mmu_notifier_range *range,
			       unsigned long cur_seq)
{
	mmu_interval_set_seq(mni, cur_seq);
	return true;
}

static const struct mmu_interval_notifier_ops mdk_mni_ops = {
	.invalidate = mdk_mni_invalidate,
};

/* hmm_range_fault() of the range for @owner, faulting every page in. */
static int mdk_thp_mirror(struct mdk_thp *t, struct mmu_interval_notifier *mni,
			  unsigned long *pfns, void *owner)
{
	struct hmm_range range = {
		.notifier		= mni,
		.start			= t->c.addr,
		.end			= t->c.addr + HPAGE_PMD_SIZE,
		.hmm_pfns		= pfns,
		.default_flags		= HMM_PFN_REQ_FAULT,
		.dev_private_owner	= owner,
	};
	int ret;

	do {
		range.notifier_seq = mmu_interval_read_begin(mni);
		mmap_read_lock(current->mm);
		ret = hmm_range_fault(&range);
		mmap_read_unlock(current->mm);
		if (!ret && mmu_interval_read_retry(mni, range.notifier_seq))
			ret = -EBUSY;
	} while (ret == -EBUSY);
	return ret;
}

/*
 * hmm_range_fault() reports a device-private PMD of the caller's as
 * HPAGE_PMD_NR entries of order HPAGE_PMD_ORDER naming the folio's pages;
 * for anyone else it faults the folio back, whole.
 */
static void mdk_thp_hmm_range_fault(struct kunit *test)
{
	struct mdk_thp *t = mdk_thp_new(test, true);
	struct mmu_interval_notifier mni;
	unsigned long *pfns, dpfn, j, bad = 0;

	pfns = kunit_kcalloc(test, HPAGE_PMD_NR, sizeof(*pfns), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, pfns);
	mdk_thp_to_device(test, t);
	dpfn = t->dst[0] >> MIGRATE_PFN_SHIFT;
	KUNIT_ASSERT_EQ(test, 0,
			mmu_interval_notifier_insert(&mni, current->mm,
						     t->c.addr, HPAGE_PMD_SIZE,
						     &mdk_mni_ops));

	KUNIT_EXPECT_EQ(test, mdk_thp_mirror(t, &mni, pfns, &mdk_dev), 0);
	for (j = 0; j < HPAGE_PMD_NR; j++)
		bad += hmm_pfn_to_map_order(pfns[j]) != HPAGE_PMD_ORDER ||
		       !(pfns[j] & HMM_PFN_WRITE) ||
		       page_to_pfn(hmm_pfn_to_page(pfns[j])) != dpfn + j;
	KUNIT_EXPECT_EQ(test, bad, 0UL);
	KUNIT_EXPECT_EQ(test, mdk_pmd_kind(t->c.addr), MDK_PMD_DEVICE);

	KUNIT_EXPECT_EQ(test, mdk_thp_mirror(t, &mni, pfns, &mdk_other_owner), 0);
	for (j = 0, bad = 0; j < HPAGE_PMD_NR; j++)
		bad += hmm_pfn_to_map_order(pfns[j]) != HPAGE_PMD_ORDER ||
		       is_zone_device_page(hmm_pfn_to_page(pfns[j]));
	KUNIT_EXPECT_EQ(test, bad, 0UL);
	KUNIT_EXPECT_EQ(test, mdk_pmd_kind(t->c.addr), MDK_PMD_THP);
	mmu_interval_notifier_remove(&mni);
	mdk_expect_data(test, &t->c, HPAGE_PMD_NR, HPAGE_PMD_NR);
}
#endif

/*
 * Eviction: migrate_device_range() over a PMD-sized device folio collects
 * it as one compound entry (its tail frames as 0) and unmaps its PMD
 * through the rmap; the folio comes back into a THP, whole, or, given
 * single pages, split and page by page.
 */
static void mdk_thp_evict(struct kunit *test)
{
	unsigned int used = mdk_nr_used();
	int small;

	for (small = 0; small < 2; small++) {
		struct mdk_thp *t = mdk_thp_new(test, true);
		unsigned long pfn, j, moved = 0;

		mdk_thp_to_device(test, t);
		pfn = t->dst[0] >> MIGRATE_PFN_SHIFT;
		memset(t->dst, 0, sizeof(t->dst));
		KUNIT_ASSERT_EQ(test, migrate_device_range(t->src, pfn,
							   HPAGE_PMD_NR), 0);
		KUNIT_EXPECT_EQ(test, t->src[0],
				migrate_pfn(pfn) | MIGRATE_PFN_MIGRATE |
				MIGRATE_PFN_COMPOUND);
		for (j = 1; j < HPAGE_PMD_NR; j++)
			KUNIT_EXPECT_EQ_MSG(test, t->src[j], 0UL, "entry %lu",
					    j);
		KUNIT_EXPECT_EQ(test, mdk_pmd_kind(t->c.addr), MDK_PMD_OTHER);
		if (small)
			mdk_thp_fill_system_small(t->src, t->dst);
		else
			KUNIT_ASSERT_TRUE(test, mdk_thp_fill_system(t->src,
								    t->dst));
		migrate_device_pages(t->src, t->dst, HPAGE_PMD_NR);
		for (j = 0; j < HPAGE_PMD_NR; j++)
			moved += !!(t->src[j] & MIGRATE_PFN_MIGRATE);
		KUNIT_EXPECT_EQ(test, moved, small ? HPAGE_PMD_NR : 1UL);
		migrate_device_finalize(t->src, t->dst, HPAGE_PMD_NR);
		KUNIT_EXPECT_EQ(test, mdk_pmd_kind(t->c.addr),
				small ? MDK_PMD_TABLE : MDK_PMD_THP);
		KUNIT_EXPECT_EQ(test, mdk_nr_used(), used);
		mdk_expect_data(test, &t->c, HPAGE_PMD_NR, HPAGE_PMD_NR);
	}
}

/* The faulting side of mdk_fault_on_locked_page(). */
struct mdk_faulter {
	struct mm_struct	*mm;
	unsigned long		addr;
	bool			write;	/* write byte, else read it */
	u8			byte;
	int			ret;
	struct completion	done;
};

static int mdk_faulter_fn(void *data)
{
	struct mdk_faulter *f = data;

	kthread_use_mm(f->mm);
	if (f->write)
		f->ret = copy_to_user((void __user *)f->addr, &f->byte, 1);
	else
		f->ret = copy_from_user(&f->byte, (void __user *)f->addr, 1);
	f->ret = f->ret ? -EFAULT : 0;
	kthread_unuse_mm(f->mm);
	complete(&f->done);
	return 0;
}

/*
 * migrate_device_pfns() on a scattered list: every other page of a range,
 * last to first, the last frame named twice. The listed pages come back
 * with their data (the frame named twice once), without a CPU fault; the
 * others stay on the device until the CPU reads them.
 */
static void mdk_evict_pfns_scattered(struct kunit *test)
{
	struct mdk_ctx *ctx = mdk_ctx_anon(test);
	unsigned long pfns[MDK_NPAGES / 2 + 1], dst[MDK_NPAGES / 2 + 1] = {};
	struct migrate_vma m = { .src = pfns, .dst = dst };
	unsigned int used = mdk_nr_used();
	unsigned long i, n = 0, moved = 0;
	int faults;

	mdk_write_pages(test, ctx, 0, MDK_NPAGES);
	KUNIT_ASSERT_EQ(test, mdk_to_device(test, ctx), (unsigned long)MDK_NPAGES);
	for (i = MDK_NPAGES; i >= 2; i -= 2)
		pfns[n++] = ctx->dst[i - 2] >> MIGRATE_PFN_SHIFT;
	pfns[n] = pfns[n - 1];
	m.npages = ++n;
	KUNIT_ASSERT_EQ(test, migrate_device_pfns(pfns, n), 0);
	for (i = 0; i < n - 1; i++)
		KUNIT_EXPECT_EQ_MSG(test, pfns[i],
				    ctx->dst[MDK_NPAGES - 2 - 2 * i] |
				    MIGRATE_PFN_MIGRATE, "entry %lu", i);
	KUNIT_EXPECT_EQ(test, pfns[n - 1], 0UL);
	mdk_fill_system(&m);
	migrate_device_pages(pfns, dst, n);
	for (i = 0; i < n; i++)
		moved += !!(pfns[i] & MIGRATE_PFN_MIGRATE);
	KUNIT_EXPECT_EQ(test, moved, (unsigned long)MDK_NPAGES / 2);
	migrate_device_finalize(pfns, dst, n);
	KUNIT_EXPECT_EQ(test, mdk_nr_used(), used + MDK_NPAGES / 2);

	faults = atomic_read(&mdk_dev.faults);
	for (i = 0; i < MDK_NPAGES; i += 2)
		KUNIT_EXPECT_TRUE_MSG(test, mdk_page_holds(test, ctx, i, false),
				      "page %lu", i);
	KUNIT_EXPECT_EQ(test, atomic_read(&mdk_dev.faults), faults);
	mdk_expect_data(test, ctx, MDK_NPAGES, MDK_NPAGES);
	KUNIT_EXPECT_EQ(test, mdk_nr_used(), used);
}

/*
 * A 2 MiB device folio through migrate_device_pfns(): its frames listed
 * last to first, it is left alone; listed in order, it is one compound
 * entry and comes back into a THP.
 */
static void mdk_thp_evict_pfns(struct kunit *test)
{
	struct mdk_thp *t = mdk_thp_new(test, true);
	unsigned int used = mdk_nr_used();
	unsigned long pfn, j;

	mdk_thp_to_device(test, t);
	pfn = t->dst[0] >> MIGRATE_PFN_SHIFT;
	memset(t->dst, 0, sizeof(t->dst));
	for (j = 0; j < HPAGE_PMD_NR; j++)
		t->src[j] = pfn + HPAGE_PMD_NR - 1 - j;
	KUNIT_ASSERT_EQ(test, migrate_device_pfns(t->src, HPAGE_PMD_NR), 0);
	for (j = 0; j < HPAGE_PMD_NR; j++)
		KUNIT_EXPECT_EQ_MSG(test, t->src[j], 0UL, "entry %lu", j);
	migrate_device_pages(t->src, t->dst, HPAGE_PMD_NR);
	migrate_device_finalize(t->src, t->dst, HPAGE_PMD_NR);
	KUNIT_EXPECT_EQ(test, mdk_pmd_kind(t->c.addr), MDK_PMD_DEVICE);

	for (j = 0; j < HPAGE_PMD_NR; j++)
		t->src[j] = pfn + j;
	KUNIT_ASSERT_EQ(test, migrate_device_pfns(t->src, HPAGE_PMD_NR), 0);
	KUNIT_EXPECT_EQ(test, t->src[0], migrate_pfn(pfn) |
			MIGRATE_PFN_MIGRATE | MIGRATE_PFN_COMPOUND);
	KUNIT_ASSERT_TRUE(test, mdk_thp_fill_system(t->src, t->dst));
	migrate_device_pages(t->src, t->dst, HPAGE_PMD_NR);
	KUNIT_EXPECT_TRUE(test, t->src[0] & MIGRATE_PFN_MIGRATE);
	migrate_device_finalize(t->src, t->dst, HPAGE_PMD_NR);
	KUNIT_EXPECT_EQ(test, mdk_pmd_kind(t->c.addr), MDK_PMD_THP);
	KUNIT_EXPECT_EQ(test, mdk_nr_used(), used);
	mdk_expect_data(test, &t->c, HPAGE_PMD_NR, HPAGE_PMD_NR);
}

/*
 * Another thread writes into an empty compound source's range between
 * setup and commit, and its fault fills the PMD: the 2 MiB device page is
 * not inserted over it, the write stays, and the device page goes back.
 */
static void mdk_thp_insert_raced(struct kunit *test)
{
	struct mdk_thp *t = mdk_thp_new(test, false);
	struct mdk_faulter f = {
		.mm = current->mm, .write = true, .byte = 0x5a,
	};
	struct mdk_traced *skips = mdk_trace_attach(test);
	unsigned int used = mdk_nr_used();
	unsigned long *before = mdk_events(test);
	struct task_struct *task;
	u8 byte = 0;

	KUNIT_ASSERT_EQ(test, 0, mdk_thp_setup(test, t,
					       MIGRATE_VMA_SELECT_SYSTEM));
	KUNIT_ASSERT_EQ(test, t->src[0],
			MIGRATE_PFN_MIGRATE | MIGRATE_PFN_COMPOUND);
	mdk_thp_fill_or_abort(test, t);
	f.addr = t->c.addr + PAGE_SIZE;
	init_completion(&f.done);
	mmgrab(f.mm);
	task = kthread_run(mdk_faulter_fn, &f, "mdk_writer");
	if (!IS_ERR(task))
		wait_for_completion(&f.done);
	mmdrop(f.mm);
	migrate_vma_pages(&t->m);
	KUNIT_EXPECT_FALSE(test, t->src[0] & MIGRATE_PFN_MIGRATE);
	migrate_vma_finalize(&t->m);
	mmap_read_unlock(current->mm);
	/* The empty 2 MiB slot, collected at commit, was filled meanwhile. */
	KUNIT_EXPECT_EQ(test, mdk_event_delta(test, before,
					      PGMIGRATE_DEVICE_COLLECTED),
			HPAGE_PMD_NR);
	KUNIT_EXPECT_EQ(test, mdk_event_delta(test, before,
					      PGMIGRATE_DEVICE_FAIL_RACED),
			HPAGE_PMD_NR);
	KUNIT_EXPECT_EQ(test, mdk_event_delta(test, before,
					      PGMIGRATE_DEVICE_SUCCESS), 0UL);
	mdk_expect_skips_traced(test, skips, before);
	KUNIT_ASSERT_FALSE(test, IS_ERR(task));
	KUNIT_EXPECT_EQ(test, f.ret, 0);
	KUNIT_EXPECT_NE(test, mdk_pmd_kind(t->c.addr), MDK_PMD_DEVICE);
	KUNIT_EXPECT_EQ(test, mdk_nr_used(), used);
	KUNIT_EXPECT_EQ(test, 0, copy_from_user(&byte, (void __user *)f.addr,
						1));
	KUNIT_EXPECT_EQ(test, byte, 0x5a);
}

/*
 * A device folio answered with single system pages, whose split fails (a
 * reference appeared, as a PFN walker's would): nothing moves, the system
 * pages go back, and the folio stays on the device whole, mapped by its
 * PMD, with its data.
 */
static void mdk_thp_back_split_refused(struct kunit *test)
{
	struct mdk_thp *t = mdk_thp_new(test, true);
	unsigned int used = mdk_nr_used();
	struct folio *dfolio;

	mdk_thp_to_device(test, t);
	KUNIT_ASSERT_EQ(test, 0, mdk_thp_setup(test, t,
					       MIGRATE_VMA_SELECT_DEVICE_PRIVATE));
	KUNIT_ASSERT_TRUE(test, t->src[0] & MIGRATE_PFN_COMPOUND);
	dfolio = page_folio(migrate_pfn_to_page(t->src[0]));
	folio_get(dfolio);
	mdk_thp_fill_system_small(t->src, t->dst);
	mdk_thp_commit_refused(test, t, dfolio);
	KUNIT_EXPECT_EQ(test, mdk_pmd_kind(t->c.addr), MDK_PMD_DEVICE);
	KUNIT_EXPECT_EQ(test, mdk_nr_used(), used + HPAGE_PMD_NR);
	mdk_expect_data(test, &t->c, HPAGE_PMD_NR, HPAGE_PMD_NR);
	KUNIT_EXPECT_EQ(test, mdk_nr_used(), used);
}

struct mdk_cpu_work {
	struct work_struct	work;
	struct completion	ran;
};

static void mdk_cpu_work_fn(struct work_struct *work)
{
	complete(&container_of(work, struct mdk_cpu_work, work)->ran);
}

/*
 * Regression: a CPU fault on a device page another thread holds locked
 * must wait for the lock, not retry the fault in a loop. Here the lock
 * holder (the test) needs a work item to run on the faulting CPU before it
 * unlocks, as a migration does in lru_add_drain_all(); a spinning fault
 * on a kernel without preemption would starve it forever.
 */
static void mdk_fault_on_locked_page(struct kunit *test)
{
	struct mdk_ctx *ctx = mdk_ctx_anon(test);
	struct mdk_faulter f = { .mm = current->mm };
	struct mdk_cpu_work w;
	struct task_struct *task;
	struct page *dpage;
	unsigned int cpu;
	bool ran;

	mdk_write_pages(test, ctx, 0, 1);
	KUNIT_ASSERT_EQ(test, 0, mdk_setup(test, ctx, MIGRATE_VMA_SELECT_SYSTEM,
					   &mdk_dev));
	mdk_fill_device(ctx);
	dpage = migrate_pfn_to_page(ctx->dst[0]);
	KUNIT_ASSERT_NOT_NULL(test, dpage);
	get_page(dpage);
	mdk_commit(ctx);
	KUNIT_ASSERT_TRUE(test, ctx->src[0] & MIGRATE_PFN_MIGRATE);

	lock_page(dpage);
	cpu = cpumask_last(cpu_online_mask);
	f.addr = ctx->addr;
	init_completion(&f.done);
	mmgrab(f.mm);
	task = kthread_create(mdk_faulter_fn, &f, "mdk_faulter");
	KUNIT_ASSERT_FALSE(test, IS_ERR(task));
	kthread_bind(task, cpu);
	wake_up_process(task);
	msleep(100);	/* let it fault and find the page locked */

	INIT_WORK_ONSTACK(&w.work, mdk_cpu_work_fn);
	init_completion(&w.ran);
	queue_work_on(cpu, system_wq, &w.work);
	ran = wait_for_completion_timeout(&w.ran, 10 * HZ);
	KUNIT_EXPECT_TRUE_MSG(test, ran,
			      "the faulting CPU never ran the work item");
	put_page(dpage);	/* still mapped: not the last reference */
	unlock_page(dpage);

	wait_for_completion(&f.done);
	flush_work(&w.work);
	destroy_work_on_stack(&w.work);
	mmdrop(f.mm);
	KUNIT_EXPECT_EQ(test, f.ret, 0);
	KUNIT_EXPECT_EQ(test, f.byte, mdk_pattern(0, 0));
}

/* make_device_exclusive() of the page at @addr, with @test as the owner. */
static struct page *mdk_make_exclusive(struct kunit *test, unsigned long addr,
				       struct folio **foliop)
{
	struct page *page;

	mmap_read_lock(current->mm);
	page = make_device_exclusive(current->mm, addr, test, foliop);
	mmap_read_unlock(current->mm);
	return page;
}

/*
 * A device-exclusive entry keeps its mapping's mapcount: the page stays
 * mapped to the rmap while the device holds it, the CPU gets the same
 * page back at its first touch, and munmap() zaps the entry like a PTE.
 */
static void mdk_exclusive_keeps_mapping(struct kunit *test)
{
	struct mdk_ctx *ctx = mdk_ctx_anon(test);
	struct folio *folio, *back;
	struct page *page;

	mdk_write_pages(test, ctx, 0, 2);
	page = mdk_make_exclusive(test, ctx->addr, &folio);
	KUNIT_ASSERT_FALSE(test, IS_ERR(page));
	KUNIT_EXPECT_TRUE(test, folio_test_locked(folio));
	KUNIT_EXPECT_PTR_EQ(test, page_folio(page), folio);
	KUNIT_EXPECT_EQ(test, folio_mapcount(folio), 1);
	KUNIT_EXPECT_TRUE(test, folio_test_dirty(folio));
	folio_unlock(folio);

	/* The CPU's access faults the entry back: same page, same data. */
	KUNIT_EXPECT_TRUE(test, mdk_page_holds(test, ctx, 0, false));
	back = mdk_folio_at(ctx->addr);
	KUNIT_EXPECT_PTR_EQ(test, back, folio);
	if (back)
		folio_put(back);
	KUNIT_EXPECT_EQ(test, folio_mapcount(folio), 1);
	folio_put(folio);

	/* Zapped while exclusive: the mapping's mapcount goes with it. */
	page = mdk_make_exclusive(test, ctx->addr + PAGE_SIZE, &folio);
	KUNIT_ASSERT_FALSE(test, IS_ERR(page));
	folio_unlock(folio);
	KUNIT_ASSERT_EQ(test, 0, vm_munmap(ctx->addr + PAGE_SIZE, PAGE_SIZE));
	KUNIT_EXPECT_FALSE(test, folio_mapped(folio));
	folio_put(folio);
}

/*
 * A page of a THP is made exclusive without splitting the folio: the PMD
 * becomes PTEs, the folio keeps its 512 mappings, and the CPU gets the
 * page back in place.
 */
static void mdk_exclusive_thp_page(struct kunit *test)
{
	unsigned long addr = mdk_map_huge(test);
	struct folio *thp, *folio;
	struct page *page;
	u8 byte = 0x5a;

	KUNIT_ASSERT_EQ(test, 0, copy_to_user((void __user *)addr, &byte, 1));
	thp = mdk_folio_at(addr);
	KUNIT_ASSERT_NOT_NULL(test, thp);
	if (!folio_test_pmd_mappable(thp)) {
		folio_put(thp);
		KUNIT_FAIL_AND_ABORT(test, "no THP at the fault");
	}

	page = mdk_make_exclusive(test, addr + 5 * PAGE_SIZE, &folio);
	KUNIT_ASSERT_FALSE(test, IS_ERR(page));
	KUNIT_EXPECT_PTR_EQ(test, folio, thp);
	KUNIT_EXPECT_PTR_EQ(test, page, folio_page(thp, 5));
	KUNIT_EXPECT_EQ(test, folio_mapcount(thp), (int)HPAGE_PMD_NR);
	folio_unlock(folio);
	folio_put(folio);

	KUNIT_EXPECT_EQ(test, 0, copy_from_user(&byte, (void __user *)
						(addr + 5 * PAGE_SIZE), 1));
	KUNIT_EXPECT_EQ(test, byte, 0);
	KUNIT_EXPECT_TRUE(test, folio_test_large(thp));
	KUNIT_EXPECT_EQ(test, folio_mapcount(thp), (int)HPAGE_PMD_NR);
	folio_put(thp);
}

/* Shared (shmem) memory is refused with -EOPNOTSUPP and left mapped. */
static void mdk_exclusive_refuses_shared(struct kunit *test)
{
	struct mdk_ctx *ctx = kunit_kzalloc(test, sizeof(*ctx), GFP_KERNEL);
	struct folio *folio = NULL;
	struct file *file;
	struct page *page;

	KUNIT_ASSERT_NOT_NULL(test, ctx);
	file = shmem_file_setup("mdk", MDK_NPAGES * PAGE_SIZE, 0);
	KUNIT_ASSERT_FALSE(test, IS_ERR(file));
	ctx->addr = mdk_map(test, file, MAP_SHARED);
	fput(file);
	mdk_write_pages(test, ctx, 0, 1);

	page = mdk_make_exclusive(test, ctx->addr, &folio);
	KUNIT_EXPECT_EQ(test, PTR_ERR_OR_ZERO(page), -EOPNOTSUPP);
	KUNIT_EXPECT_NULL(test, folio);
	KUNIT_EXPECT_TRUE(test, mdk_page_holds(test, ctx, 0, false));
}

/*
 * "fix pgtable leak in migrate_vma_insert_huge_pmd_page" (CVE-2026-63953)
 * and the PMD lock left held when check_stable_address_space() failed
 * there (CVE-2026-64129): the insertion of a 2 MiB device page into an
 * empty range gives up under the PMD lock when the OOM reaper has marked
 * the address space unstable. Each time, the lock must be released, the
 * page table it allocated freed (none deposited, none leaked), and the
 * device page given back; once the mark is gone the insertion works.
 */
static void mdk_thp_insert_unstable_mm(struct kunit *test)
{
	struct mdk_thp *t = mdk_thp_new(test, false);	/* sets up our mm */
	struct mm_struct *mm = current->mm;
	unsigned int used = mdk_nr_used();
	unsigned long tables = 0, before = 0;
	int round;

	for (round = 0; round < 64; round++) {
		KUNIT_ASSERT_EQ(test, 0, mdk_thp_setup(test, t,
						       MIGRATE_VMA_SELECT_SYSTEM));
		mdk_thp_fill_or_abort(test, t);
		set_bit(MMF_UNSTABLE, &mm->flags);
		migrate_vma_pages(&t->m);
		clear_bit(MMF_UNSTABLE, &mm->flags);
		KUNIT_EXPECT_FALSE(test, t->src[0] & MIGRATE_PFN_MIGRATE);
		migrate_vma_finalize(&t->m);
		mmap_read_unlock(mm);
		if (test->status == KUNIT_FAILURE)
			break;
		/* The first round made the upper levels for the range. */
		if (!round) {
			tables = mm_pgtables_bytes(mm);
			before = global_node_page_state(NR_PAGETABLE);
		}
	}
	/* mdk_pmd_kind() takes the PMD's lock: it would wait for ever. */
	KUNIT_EXPECT_EQ(test, mdk_pmd_kind(t->c.addr), MDK_PMD_NONE);
	KUNIT_EXPECT_EQ(test, mdk_nr_used(), used);
	KUNIT_EXPECT_EQ(test, mm_pgtables_bytes(mm), tables);
	/* 64 leaked tables would show through the per-CPU batches. */
	KUNIT_EXPECT_LT(test, (long)(global_node_page_state(NR_PAGETABLE) -
				     before), 16L);

	KUNIT_ASSERT_EQ(test, 0, mdk_thp_setup(test, t,
					       MIGRATE_VMA_SELECT_SYSTEM));
	mdk_thp_fill_or_abort(test, t);
	mdk_thp_commit(test, t, true, MDK_PMD_DEVICE);
}

static struct kunit_case mdk_cases[] = {
	KUNIT_CASE(mdk_round_trip),
	KUNIT_CASE(mdk_cpu_fault_back),
	KUNIT_CASE(mdk_empty_sources),
	KUNIT_CASE(mdk_empty_sources_uncommitted),
	KUNIT_CASE(mdk_selection),
	KUNIT_CASE(mdk_busy_pages),
	KUNIT_CASE(mdk_no_destination),
	KUNIT_CASE(mdk_large_destination),
	KUNIT_CASE(mdk_finalize_frees_source),
	KUNIT_CASE(mdk_private_file),
	KUNIT_CASE(mdk_fault_on_locked_page),
	KUNIT_CASE(mdk_pte_mapped_thp),
	KUNIT_CASE(mdk_pinned_pte_mapped_thp),
	KUNIT_CASE(mdk_thp_split_only_if_selected),
	KUNIT_CASE(mdk_thp_round_trip),
	KUNIT_CASE(mdk_thp_cpu_fault),
	KUNIT_CASE(mdk_thp_empty_sources),
	KUNIT_CASE(mdk_thp_empty_small_destinations),
	KUNIT_CASE(mdk_thp_populated_small_destinations),
	KUNIT_CASE(mdk_thp_populated_no_destination),
	KUNIT_CASE(mdk_thp_bad_compound_destination),
	KUNIT_CASE(mdk_thp_split_refused),
	KUNIT_CASE(mdk_thp_back_small_destinations),
	KUNIT_CASE(mdk_thp_back_split_refused),
	KUNIT_CASE(mdk_thp_insert_raced),
	KUNIT_CASE(mdk_thp_insert_unstable_mm),
	KUNIT_CASE(mdk_thp_cpu_fault_small),
	KUNIT_CASE(mdk_thp_munmap),
	KUNIT_CASE(mdk_thp_evict),
	KUNIT_CASE(mdk_thp_evict_pfns),
	KUNIT_CASE(mdk_evict_pfns_scattered),
	KUNIT_CASE(mdk_thp_partial_munmap_fault),
	KUNIT_CASE(mdk_thp_migrate_part),
	KUNIT_CASE(mdk_exclusive_keeps_mapping),
	KUNIT_CASE(mdk_exclusive_thp_page),
	KUNIT_CASE(mdk_exclusive_refuses_shared),
#if IS_ENABLED(CONFIG_HMM_MIRROR)
	KUNIT_CASE(mdk_thp_hmm_range_fault),
#endif
	{}
};

static struct kunit_suite mdk_suite = {
	.name		= "migrate_device",
	.suite_init	= mdk_suite_init,
	.suite_exit	= mdk_suite_exit,
	.test_cases	= mdk_cases,
};

kunit_test_suite(mdk_suite);

MODULE_DESCRIPTION("KUnit tests for device memory migration");
MODULE_LICENSE("GPL");
