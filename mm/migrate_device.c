// SPDX-License-Identifier: GPL-2.0
/*
 * Migrating a process's memory to and from device memory.
 *
 * A device driver moves pages in three calls, and does the copy itself in
 * between with whatever engine it has:
 *
 *   migrate_vma_setup()     collect: walk the range's page table and choose
 *                           the pages to move; lock each one, take a
 *                           reference, and replace every mapping of it by a
 *                           migration entry, so that nobody can read or
 *                           write it until we are done. An address with no
 *                           page (a hole, the zero page) is an empty source
 *                           the driver may populate.
 *   (driver)                allocate and lock destinations, copy.
 *   migrate_vma_pages()     commit: move each source's identity (mapping,
 *                           index, flags, memcg) to its destination, or
 *                           install the destination where there was none.
 *   migrate_vma_finalize()  turn every migration entry into a mapping of the
 *                           page that won (the destination if the page
 *                           moved, the source otherwise), unlock both and
 *                           drop our references.
 *
 * The three calls talk through the src[] and dst[] arrays of migrate pfns
 * (include/linux/migrate.h): a page that drops out at any step loses
 * MIGRATE_PFN_MIGRATE and is put back exactly as it was found. Nothing here
 * waits for another holder of a page: a page we cannot lock, isolate, or
 * that holds references we cannot explain (a pin, a concurrent GUP) is
 * skipped. The one exception is the faulting page of a migrate_to_ram()
 * call: do_swap_page() locks it before taking its reference, and a fault
 * that finds it locked waits for the unlock without a reference (a patch
 * to the base mm/memory.c). So a CPU fault on a page another thread is
 * migrating sleeps rather than spins, and two threads faulting on one page
 * never fail each other's reference count check.
 *
 * migrate_device_range() and migrate_device_pages()/_finalize() run the
 * same steps on device page frames rather than on a virtual range, for a
 * driver evicting its memory without knowing where it is mapped.
 *
 * Costs. The walk takes each page-table lock once per PTE table; TLB
 * flushes for the PTEs it clears are batched (up to MDEV_BATCH pages per
 * flush) and the MMU notifier is called once per range and step, with the
 * event MMU_NOTIFY_MIGRATE and the migration's owner so that the driver
 * that started it can ignore its own invalidation. Pages mapped only in the
 * walked page table (the common case) need no rmap walk to unmap, and none
 * to map again: migrate_vma_finalize() puts their winners back with one
 * walk of the range's PTE tables, a lock per table, where an rmap walk per
 * page would take the anon_vma lock and walk down from the PGD each time.
 * Only a page that was mapped elsewhere too (after a fork, say) is marked
 * in its src[] word (MDEV_PFN_ELSEWHERE) and found through the rmap.
 *
 * The steps after collection share one view of the migration, struct
 * mdev_migration: the src[] and dst[] arrays, the range if there is one,
 * and the fault folio, which do_swap_page() locked and which is never ours
 * to unlock. Device-private entries are built and read by mm/hmm_entry.h,
 * the one definition mm/hmm.c shares.
 */
#include <linux/export.h>
#include <linux/memremap.h>
#include <linux/migrate.h>
#include <linux/mm_inline.h>
#include <linux/mmu_notifier.h>
#include <linux/oom.h>
#include <linux/page-flags.h>
#include <linux/pagewalk.h>
#include <linux/pgalloc.h>
#include <linux/rmap.h>
#include <linux/swapops.h>
#include <linux/userfaultfd_k.h>
#include <asm/tlbflush.h>
#include <trace/events/hmm.h>

#include "hmm_entry.h"
#include "hmm_migrate.h"
#include "internal.h"

/* Present PTEs cleared per TLB flush while collecting. */
#define MDEV_BATCH	16

/*
 * The order and the number of entries of a compound entry: a PMD's worth.
 * Without THP migration there are no compound entries (mdev_compound_ok()
 * and mdev_grab_pfn() never make one), and the HPAGE_PMD_* constants are
 * build errors; stand-ins keep the code that never runs compiling.
 */
#ifdef CONFIG_ARCH_ENABLE_THP_MIGRATION
#define MDEV_PMD_ORDER	HPAGE_PMD_ORDER
#else
#define MDEV_PMD_ORDER	(PMD_SHIFT - PAGE_SHIFT)
#endif
#define MDEV_PMD_NR	BIT(MDEV_PMD_ORDER)
#define MDEV_PMD_SIZE	(MDEV_PMD_NR << PAGE_SHIFT)

/*
 * A bit of a src[] word that no MIGRATE_PFN_* flag uses, the core's own:
 * setup sets it on a page that was also mapped outside the walked page
 * table (device-exclusive entries count: they keep the mapping's mapcount),
 * and finalize then finds that page's migration entries through the rmap.
 * Every other page is mapped again by one walk of the range.
 */
#define MDEV_PFN_ELSEWHERE	BIT(5)
static_assert(!(MDEV_PFN_ELSEWHERE >> MIGRATE_PFN_SHIFT) &&
	      !(MDEV_PFN_ELSEWHERE &
		(MIGRATE_PFN_VALID | MIGRATE_PFN_MIGRATE | MIGRATE_PFN_WRITE)));

/*
 * Another bit of the core's: the commit step could not move the page
 * (its references changed), and finalize counts it as such rather than
 * as a page the driver gave no destination.
 */
#define MDEV_PFN_BUSY		BIT(2)
static_assert(!(MDEV_PFN_BUSY &
		(MIGRATE_PFN_VALID | MIGRATE_PFN_MIGRATE | MIGRATE_PFN_WRITE |
		 MIGRATE_PFN_COMPOUND | MDEV_PFN_ELSEWHERE)));

/*
 * Events (/proc/vmstat, Documentation/mm/hmm.rst), in base pages. Every
 * page collected (locked and referenced for a migration) is counted once
 * more at the end: moved, or failed for one reason. An empty source is
 * collected when the commit step finds the driver gave it a page, and
 * counted moved when that page is mapped there.
 *
 * Tracepoints (include/trace/events/hmm.h): each outcome counted is also
 * traced, per entry (hmm_migrate_page, hmm_migrate_skip,
 * hmm_migrate_split), so that a trace adds up to the events: where it is
 * decided, or for finalize's outcomes in a pass of their own before any
 * page is released (mdev_trace_entries()). Each exported step ends with a
 * summary event, computed only while that event is enabled.
 */

/* The base pages the src word @mpfn stands for. */
static unsigned long mdev_nr_pages(unsigned long mpfn)
{
	return (mpfn & MIGRATE_PFN_COMPOUND) ? MDEV_PMD_NR : 1;
}

/*
 * The memory @folio is in, for the direction events and the tracepoints;
 * NULL is an empty source.
 */
static __always_inline enum hmm_trace_mem mdev_mem(struct folio *folio)
{
	if (!folio)
		return HMM_MEM_NONE;
	if (folio_is_device_private(folio))
		return HMM_MEM_PRIVATE;
	if (folio_is_device_coherent(folio))
		return HMM_MEM_COHERENT;
	return HMM_MEM_SYSTEM;
}

/*
 * The events of pages moved into and out of each kind of device memory, by
 * mdev_mem()'s answer; system memory and empty sources have none.
 */
static const enum vm_event_item mdev_into_event[] = {
	[HMM_MEM_PRIVATE]	= PGMIGRATE_TO_DEVICE_PRIVATE,
	[HMM_MEM_COHERENT]	= PGMIGRATE_TO_DEVICE_COHERENT,
};

static const enum vm_event_item mdev_out_of_event[] = {
	[HMM_MEM_PRIVATE]	= PGMIGRATE_FROM_DEVICE_PRIVATE,
	[HMM_MEM_COHERENT]	= PGMIGRATE_FROM_DEVICE_COHERENT,
};

/*
 * Count @nr pages (a folio, if more than one) moved from @src (NULL: an
 * empty source filled) into @dst. Each event goes straight to the per-CPU
 * counter, one instruction each on most architectures: a sum kept per
 * step on the stack, to be added up at its end, cost a CPU fault's one
 * page more than that.
 */
static __always_inline void mdev_count_moved(struct folio *src,
					     struct folio *dst,
					     unsigned long nr)
{
	enum hmm_trace_mem into = mdev_mem(dst), out_of = mdev_mem(src);

	count_vm_events(PGMIGRATE_DEVICE_SUCCESS, nr);
	if (nr > 1)
		count_vm_event(THP_MIGRATION_DEVICE);
	if (into >= HMM_MEM_PRIVATE)
		count_vm_events(mdev_into_event[into], nr);
	if (out_of >= HMM_MEM_PRIVATE)
		count_vm_events(mdev_out_of_event[out_of], nr);
}

/* The event of each reason an entry did not move. */
static const enum vm_event_item mdev_skip_event[] = {
	[HMM_SKIP_LOCKED]	= PGMIGRATE_DEVICE_FAIL_LOCKED,
	[HMM_SKIP_PINNED]	= PGMIGRATE_DEVICE_FAIL_PINNED,
	[HMM_SKIP_REFS]		= PGMIGRATE_DEVICE_FAIL_REFS,
	[HMM_SKIP_ALLOC]	= PGMIGRATE_DEVICE_FAIL_ALLOC,
	[HMM_SKIP_RACED]	= PGMIGRATE_DEVICE_FAIL_RACED,
};

/*
 * The helpers below fire tracepoints. They are cold and __noipa: out of
 * line, and opaque to the compiler's interprocedural passes, which would
 * otherwise shape their callers' code (which arguments are passed, which
 * registers survive the call) after what the tracepoints in them need. So
 * the hot paths that call them compile the same with HMM's tracepoints as
 * without (make bench INSNS=hmm compares the two).
 *
 * The entry at @addr (0 for device pages by frame number), @nr pages of
 * frame @pfn (0: an empty slot), does not move, for reason @why.
 */
static __noipa __cold void mdev_skip(unsigned long addr, unsigned long pfn,
				     unsigned long nr, enum hmm_trace_skip why)
{
	count_vm_events(mdev_skip_event[why], nr);
	trace_hmm_migrate_skip(addr, pfn, nr, why);
}

/*
 * The entry of @nr pages from @page at @addr is locked by someone else:
 * the page's frame is worked out here, so that the hot path calling this
 * keeps nothing extra live for the tracepoint.
 */
static __noipa __cold void mdev_skip_locked(unsigned long addr,
					    struct page *page, unsigned long nr)
{
	mdev_skip(addr, page_to_pfn(page), nr, HMM_SKIP_LOCKED);
}

/*
 * @nr pages of @folio at @addr, collected, are given up: pinned, or extra
 * references.
 */
static __noipa __cold void mdev_given_up(unsigned long addr,
					 struct folio *folio, unsigned long nr)
{
	mdev_skip(addr, folio_pfn(folio), nr,
		  folio_maybe_dma_pinned(folio) ? HMM_SKIP_PINNED :
						  HMM_SKIP_REFS);
}

/* A large folio of @nr pages, first frame @pfn, at @addr was split. */
static __noipa __cold void mdev_split_done(unsigned long addr,
					   unsigned long pfn, unsigned long nr)
{
	count_vm_event(THP_MIGRATION_DEVICE_SPLIT);
	trace_hmm_migrate_split(addr, pfn, nr);
}

/*
 * One migration after its pages were collected, as the unmap, commit and
 * finalize steps see it: a virtual range (migrate_vma_*()) or device pages
 * by frame number (migrate_device_*()).
 */
struct mdev_migration {
	unsigned long		*src;
	unsigned long		*dst;
	unsigned long		npages;
	/* The range; NULL for device pages by frame number. */
	struct migrate_vma	*args;
	/* The fault folio, locked by do_swap_page(): never ours to unlock. */
	struct folio		*fault_folio;
};

static __always_inline struct mdev_migration
mdev_migration_of(struct migrate_vma *args)
{
	return (struct mdev_migration) {
		.src		= args->src,
		.dst		= args->dst,
		.npages		= args->npages,
		.args		= args,
		.fault_folio	= args->fault_page ?
				  page_folio(args->fault_page) : NULL,
	};
}

static struct mdev_migration mdev_migration_of_pfns(unsigned long *src_pfns,
						    unsigned long *dst_pfns,
						    unsigned long npages)
{
	return (struct mdev_migration) {
		.src	= src_pfns,
		.dst	= dst_pfns,
		.npages	= npages,
	};
}

/* State of one collecting walk (walk->private). */
struct mdev_collect {
	/* The migration it collects for: m.args is the range. */
	struct mdev_migration	m;
	/* Some collected page is still mapped elsewhere (needs the rmap). */
	bool			mapped_elsewhere;
	/*
	 * A large folio the PTE table maps, referenced, that the walk stopped
	 * at to split; where the last split was tried (a large folio found
	 * there again is skipped, so every split makes progress); and the
	 * last folio that would not split (its other pages are skipped).
	 */
	struct folio		*to_split;
	unsigned long		split_addr;
	struct folio		*unsplittable;
	/* Present PTEs of the current PTE table cleared but not yet flushed. */
	unsigned int		nr_pending;
	struct {
		pte_t		orig;
		unsigned long	addr;
	} pending[MDEV_BATCH];
};

/*
 * Start @mc for migration @m. The pending[] array is left as it is: only
 * its first nr_pending entries are ever read. The callers declare @mc
 * __uninitialized, so that CONFIG_INIT_STACK_ALL_ZERO does not zero all
 * 42 words of it on every call either, a third of what migrate_vma_setup()
 * spends on a CPU fault's one page otherwise.
 */
static void mdev_collect_init(struct mdev_collect *mc, struct mdev_migration m)
{
	mc->m = m;
	mc->mapped_elsewhere = false;
	mc->to_split = NULL;
	mc->split_addr = -1UL;	/* no split tried: never a page's address */
	mc->unsplittable = NULL;
	mc->nr_pending = 0;
}

/* The entry of src[] and dst[] for @addr, and back. */
static unsigned long mdev_index(struct migrate_vma *args, unsigned long addr)
{
	return (addr - args->start) >> PAGE_SHIFT;
}

static unsigned long mdev_addr(struct migrate_vma *args, unsigned long i)
{
	return args->start + (i << PAGE_SHIFT);
}

/* The address of entry @i of @m; 0 for device pages by frame number. */
static unsigned long mdev_entry_addr(const struct mdev_migration *m,
				     unsigned long i)
{
	return m->args ? mdev_addr(m->args, i) : 0;
}

/*
 * Count entry @i of @m, of page @src, to @dst: moved, or why not. An empty
 * source was counted where it was filled or failed. Traced apart, by
 * mdev_trace_entries().
 */
static __always_inline void mdev_count_entry(const struct mdev_migration *m,
					     unsigned long i, struct folio *src,
					     struct folio *dst, bool moved)
{
	unsigned long mpfn = m->src[i], nr = mdev_nr_pages(mpfn);

	if (!src)
		return;
	if (moved)
		mdev_count_moved(src, dst, nr);
	else
		count_vm_events((mpfn & MDEV_PFN_BUSY) ?
				PGMIGRATE_DEVICE_FAIL_REFS :
				PGMIGRATE_DEVICE_FAIL_ALLOC, nr);
}

/*
 * One event per entry of @m, as finalize is about to settle it:
 * hmm_migrate_page if it moved (an empty source filled by the commit step
 * too), hmm_migrate_skip with the reason if a collected page did not (an
 * empty source that could not be filled was traced where it failed).
 * Called before finalize releases anything, so each page is still locked
 * and referenced, and only while one of the two events is on: the loops
 * that commit and finalize stay free of tracepoints.
 */
static __noipa __cold void mdev_trace_entries(const struct mdev_migration *m)
{
	unsigned long i;

	for (i = 0; i < m->npages; i++) {
		unsigned long mpfn = m->src[i], nr = mdev_nr_pages(mpfn);
		struct page *page = migrate_pfn_to_page(mpfn);
		struct page *newpage = migrate_pfn_to_page(m->dst[i]);
		unsigned long addr = mdev_entry_addr(m, i);
		struct folio *src, *dst;

		dst = newpage ? page_folio(newpage) : NULL;
		if (!page) {
			/*
			 * Filled by the commit step, which made the fresh
			 * destination anonymous; a driver that goes to
			 * finalize without committing filled nothing.
			 */
			if (dst && (mpfn & MIGRATE_PFN_MIGRATE) &&
			    folio_test_anon(dst))
				trace_hmm_migrate_page(addr, 0, folio_pfn(dst),
						       nr, HMM_MEM_NONE,
						       mdev_mem(dst));
			continue;
		}
		src = page_folio(page);
		if (dst && (mpfn & MIGRATE_PFN_MIGRATE))
			trace_hmm_migrate_page(addr, folio_pfn(src),
					       folio_pfn(dst), nr,
					       mdev_mem(src), mdev_mem(dst));
		else
			trace_hmm_migrate_skip(addr, folio_pfn(src), nr,
					       (mpfn & MDEV_PFN_BUSY) ?
					       HMM_SKIP_REFS : HMM_SKIP_ALLOC);
	}
}

/*
 * What the entries of @m add up to, in base pages, for the tracepoint at
 * the end of each step (only computed while it is enabled). Selected: with
 * MIGRATE_PFN_MIGRATE, a page or an empty slot. Moved: selected and with
 * a destination. Kept: a page collected that is not moving.
 */
struct mdev_summary {
	unsigned long npages;
	unsigned long pages, empty, thp;	/* selected */
	unsigned long moved, moved_thp, kept;
};

static struct mdev_summary mdev_summary_of(const struct mdev_migration *m)
{
	struct mdev_summary sum = { .npages = m->npages }, *s = &sum;
	unsigned long i;

	for (i = 0; i < m->npages; i++) {
		unsigned long mpfn = m->src[i], nr = mdev_nr_pages(mpfn);
		bool compound = mpfn & MIGRATE_PFN_COMPOUND;
		bool moved = false;

		if (mpfn & MIGRATE_PFN_MIGRATE) {
			if (mpfn & MIGRATE_PFN_VALID)
				s->pages += nr;
			else
				s->empty += nr;
			s->thp += compound;
			moved = m->dst && (m->dst[i] & MIGRATE_PFN_VALID);
		}
		if (moved) {
			s->moved += nr;
			s->moved_thp += compound;
		} else if (mpfn & MIGRATE_PFN_VALID) {
			s->kept += nr;
		}
	}
	return sum;
}

/*
 * Fire @event, one of the hmm_migrate_commit class (the end of a commit or
 * finalize step), with what the entries of migration @m add up to.
 */
#define mdev_trace_commit(event, m)					\
	do {								\
		if (trace_##event##_enabled()) {			\
			struct mdev_summary __s = mdev_summary_of(m);	\
									\
			trace_##event(__s.npages, __s.moved,		\
				      __s.moved_thp, __s.kept);		\
		}							\
	} while (0)

/*
 * May the PMD-sized range at @addr (its end no further than @end) be one
 * compound entry? Only if the driver asked for them, and only in anonymous
 * memory, the only kind a PMD-sized device folio ever stands for.
 */
static bool mdev_compound_ok(struct migrate_vma *args,
			     struct vm_area_struct *vma, unsigned long addr,
			     unsigned long end)
{
	return thp_migration_supported() &&
	       (args->flags & MIGRATE_VMA_SELECT_COMPOUND) &&
	       vma_is_anonymous(vma) && IS_ALIGNED(addr, MDEV_PMD_SIZE) &&
	       end - addr >= MDEV_PMD_SIZE;
}

/*
 * Unpopulated addresses can be filled with fresh pages only where a fresh
 * page is what the CPU would get on a fault: in anonymous memory. Each
 * whole PMD-sized piece is one compound entry if the driver asked for
 * them (the words after it stay 0).
 */
static int mdev_collect_hole(unsigned long start, unsigned long end,
			     __always_unused int depth, struct mm_walk *walk)
{
	struct mdev_collect *mc = walk->private;
	struct migrate_vma *args = mc->m.args;
	unsigned long addr = start;

	if (!vma_is_anonymous(walk->vma))
		return 0;	/* left alone: setup zeroed src[] */

	while (addr < end) {
		unsigned long i = mdev_index(args, addr);

		args->cpages++;
		if (mdev_compound_ok(args, walk->vma, addr, end)) {
			args->src[i] = MIGRATE_PFN_MIGRATE | MIGRATE_PFN_COMPOUND;
			addr += MDEV_PMD_SIZE;
		} else {
			args->src[i] = MIGRATE_PFN_MIGRATE;
			addr += PAGE_SIZE;
		}
	}
	return 0;
}

/* Is @page a device page of a type and owner this migration selected? */
static __always_inline bool
mdev_device_page_wanted(struct migrate_vma *args, struct page *page,
			unsigned long select)
{
	return (args->flags & select) &&
	       page_pgmap(page)->owner == args->pgmap_owner;
}

/*
 * What mdev_select_pte() returns for a page of a large anonymous folio
 * mapped by PTEs: split it first. Never a real entry (no pfn is all ones).
 */
#define MDEV_SPLIT_FIRST	(~0UL)

/*
 * The per-entry decision: what does the PTE @pte at @addr contribute?
 *
 * Returns the src[] word: 0 for "leave alone", MIGRATE_PFN_MIGRATE alone for
 * an empty source, or a migrate pfn with MIGRATE_PFN_MIGRATE for a page,
 * which is then stored in *@pagep for the caller to lock and unmap; or
 * MDEV_SPLIT_FIRST with the page in *@pagep when its folio is large. The
 * choice goes by what the page is, never by what the VMA is: a private file
 * mapping holds both page-cache pages (left alone) and anonymous copies
 * (migrated like any anonymous page).
 */
static unsigned long mdev_select_pte(struct migrate_vma *args,
				     struct vm_area_struct *vma,
				     unsigned long addr, pte_t pte,
				     struct page **pagep)
{
	unsigned long wflag = 0;
	struct page *page;

	*pagep = NULL;
	if (pte_none(pte))
		return vma_is_anonymous(vma) ? MIGRATE_PFN_MIGRATE : 0;

	if (!pte_present(pte)) {
		/* Of all non-present entries only device-private pages move. */
		struct hmm_devp devp = hmm_devp_from_pte(pte);

		page = devp.page;
		if (!page || !mdev_device_page_wanted(args, page,
						      MIGRATE_VMA_SELECT_DEVICE_PRIVATE))
			return 0;
		if (devp.writable)
			wflag = MIGRATE_PFN_WRITE;
	} else {
		if (is_zero_pfn(pte_pfn(pte)))
			return (args->flags & MIGRATE_VMA_SELECT_SYSTEM) &&
			       vma_is_anonymous(vma) ? MIGRATE_PFN_MIGRATE : 0;
		page = vm_normal_page(vma, addr, pte);
		if (!page)
			return 0;
		if (is_device_coherent_page(page)) {
			if (!mdev_device_page_wanted(args, page,
						     MIGRATE_VMA_SELECT_DEVICE_COHERENT))
				return 0;
		} else if (is_zone_device_page(page) ||
			   !(args->flags & MIGRATE_VMA_SELECT_SYSTEM)) {
			return 0;
		}
		if (pte_write(pte))
			wflag = MIGRATE_PFN_WRITE;
	}

	/* Anonymous pages only: no page cache or KSM. */
	if (!PageAnon(page) || PageKsm(page))
		return 0;

	/*
	 * A large folio mapped by PTEs (a THP or a PMD-sized device folio
	 * after an mprotect, munmap or mremap of part of it, or an mTHP): its
	 * pages move one by one once it is split.
	 */
	if (PageCompound(page)) {
		*pagep = page;
		return MDEV_SPLIT_FIRST;
	}
	*pagep = page;
	return migrate_pfn(page_to_pfn(page)) | MIGRATE_PFN_MIGRATE | wflag;
}

/* The migration entry that stands for @page while it is away. */
static pte_t mdev_migration_pte(struct page *page, pte_t orig, bool writable,
				bool exclusive)
{
	unsigned long pfn = page_to_pfn(page);
	bool present = pte_present(orig);
	bool soft_dirty, uffd_wp;
	swp_entry_t entry;
	pte_t swp_pte;

	/* The bits a migration entry keeps differ for present and swap PTEs. */
	soft_dirty = present ? pte_soft_dirty(orig) : pte_swp_soft_dirty(orig);
	uffd_wp = present ? pte_uffd_wp(orig) : pte_swp_uffd_wp(orig);

	if (writable)
		entry = make_writable_migration_entry(pfn);
	else if (exclusive)
		entry = make_readable_exclusive_migration_entry(pfn);
	else
		entry = make_readable_migration_entry(pfn);
	/* Only a present PTE has young and dirty bits to carry over. */
	if (present && pte_young(orig))
		entry = make_migration_entry_young(entry);
	if (present && pte_dirty(orig))
		entry = make_migration_entry_dirty(entry);

	swp_pte = swp_entry_to_pte(entry);
	if (soft_dirty)
		swp_pte = pte_swp_mksoft_dirty(swp_pte);
	if (uffd_wp)
		swp_pte = pte_swp_mkuffd_wp(swp_pte);
	return swp_pte;
}

/* Drop a page the walk had locked and referenced; its PTE is @orig again. */
static void mdev_collect_drop(struct mdev_collect *mc, unsigned long addr)
{
	struct migrate_vma *args = mc->m.args;
	unsigned long i = mdev_index(args, addr);
	struct folio *folio = page_folio(migrate_pfn_to_page(args->src[i]));

	count_vm_event(PGMIGRATE_DEVICE_COLLECTED);
	mdev_given_up(addr, folio, 1);
	args->src[i] = 0;
	if (folio != mc->m.fault_folio)	/* the caller's lock: not ours */
		folio_unlock(folio);
	folio_put(folio);
}

/*
 * Second half of unmapping the page at @addr, whose PTE (@orig) has been
 * cleared and, if it was present, flushed from the TLBs: share an exclusive
 * anonymous page (which fails if it may be pinned), then install the
 * migration entry and drop the mapping's rmap and reference. The page stays
 * locked and referenced by us.
 */
static void mdev_collect_commit(struct mdev_collect *mc, pte_t *ptep,
				unsigned long addr, pte_t orig)
{
	struct migrate_vma *args = mc->m.args;
	struct vm_area_struct *vma = args->vma;
	unsigned long i = mdev_index(args, addr);
	struct page *page = migrate_pfn_to_page(args->src[i]);
	struct folio *folio = page_folio(page);
	bool exclusive = PageAnonExclusive(page);

	if (exclusive && folio_try_share_anon_rmap_pte(folio, page)) {
		set_pte_at(vma->vm_mm, addr, ptep, orig);
		mdev_collect_drop(mc, addr);
		return;
	}
	if (pte_present(orig) && pte_dirty(orig))
		folio_mark_dirty(folio);
	set_pte_at(vma->vm_mm, addr, ptep,
		   mdev_migration_pte(page, orig,
				      args->src[i] & MIGRATE_PFN_WRITE,
				      exclusive));
	folio_remove_rmap_pte(folio, page, vma);
	folio_put(folio);
	if (folio_mapped(folio)) {
		args->src[i] |= MDEV_PFN_ELSEWHERE;
		mc->mapped_elsewhere = true;
	}
}

/*
 * Flush the cleared present PTEs of this table and finish each of them;
 * there is at least one.
 */
static void mdev_collect_flush(struct mdev_collect *mc, pte_t *table,
			       unsigned long table_addr)
{
	struct vm_area_struct *vma = mc->m.args->vma;
	unsigned long first, last;
	unsigned int n;

	first = mc->pending[0].addr;
	last = mc->pending[mc->nr_pending - 1].addr;
	flush_tlb_range(vma, first, last + PAGE_SIZE);
	for (n = 0; n < mc->nr_pending; n++) {
		unsigned long addr = mc->pending[n].addr;

		mdev_collect_commit(mc, table + ((addr - table_addr) >> PAGE_SHIFT),
				    addr, mc->pending[n].orig);
	}
	mc->nr_pending = 0;
}

/*
 * Lock and reference the page the decision chose, for an entry of @nr
 * pages at @addr; false to skip it. The PTE whose lock we hold keeps the
 * page alive until then.
 */
static __always_inline bool mdev_collect_grab(struct mdev_collect *mc,
					      unsigned long addr,
					      struct page *page,
					      unsigned long nr)
{
	struct folio *folio = page_folio(page);

	/* The fault folio is locked already, by do_swap_page(). */
	if (folio != mc->m.fault_folio && !folio_trylock(folio)) {
		mdev_skip_locked(addr, page, nr);
		return false;
	}
	folio_get(folio);
	return true;
}

/*
 * One PTE table: [start, end) lies inside it; called with its lock held.
 * Returns where it stopped: @end, or the address of a page of a large
 * folio to split first (mc->to_split, referenced).
 */
static unsigned long mdev_collect_pte_table(struct mdev_collect *mc,
					    pte_t *table, unsigned long start,
					    unsigned long end)
{
	struct migrate_vma *args = mc->m.args;
	struct vm_area_struct *vma = args->vma;
	unsigned long addr;
	pte_t *ptep = table;

	for (addr = start; addr < end; addr += PAGE_SIZE, ptep++) {
		unsigned long i = mdev_index(args, addr);
		pte_t pte = ptep_get(ptep);
		struct page *page;
		unsigned long mpfn;

		mpfn = mdev_select_pte(args, vma, addr, pte, &page);
		if (mpfn == MDEV_SPLIT_FIRST) {
			struct folio *folio = page_folio(page);

			if (addr != mc->split_addr && folio != mc->unsplittable) {
				mc->to_split = folio;
				mc->split_addr = addr;
				/* The fault path's reference is the split's. */
				if (folio != mc->m.fault_folio)
					folio_get(folio);
				break;
			}
			mpfn = 0;
			page = NULL;
		}
		if (page && !mdev_collect_grab(mc, addr, page, 1))
			mpfn = 0;
		args->src[i] = mpfn;
		if (!page || !mpfn) {
			args->cpages += !!mpfn;
			continue;
		}
		args->cpages++;

		if (!pte_present(pte)) {
			/* Not in any TLB: nothing to flush before sharing. */
			ptep_get_and_clear(vma->vm_mm, addr, ptep);
			mdev_collect_commit(mc, ptep, addr, pte);
			continue;
		}
		flush_cache_page(vma, addr, pte_pfn(pte));
		mc->pending[mc->nr_pending].orig =
			ptep_get_and_clear(vma->vm_mm, addr, ptep);
		mc->pending[mc->nr_pending].addr = addr;
		if (++mc->nr_pending == MDEV_BATCH)
			mdev_collect_flush(mc, table, start);
	}
	if (mc->nr_pending)
		mdev_collect_flush(mc, table, start);
	return addr;
}

/*
 * Split a large folio we hold a reference to (the caller's, now ours to
 * drop), without any page-table lock. False if it could not be split: it
 * is locked by someone else, or pinned, or mapped in a way that keeps it
 * whole.
 */
static bool mdev_split_folio(struct folio *folio, unsigned long addr)
{
	unsigned long pfn = folio_pfn(folio), nr = folio_nr_pages(folio);
	bool split_ok = folio_trylock(folio);

	if (split_ok) {
		split_ok = !split_folio(folio);
		folio_unlock(folio);
	}
	folio_put(folio);
	if (split_ok)
		mdev_split_done(addr, pfn, nr);
	return split_ok;
}

/*
 * Split mc->to_split, the large folio a PTE table walk stopped at. The
 * fault folio (a PMD-sized device folio mapped by PTEs since a partial
 * munmap or mprotect) is locked and referenced by the fault path already:
 * it is split around the fault page, which keeps that lock and reference,
 * and becomes the fault folio.
 */
static bool mdev_split_to_collect(struct mdev_collect *mc)
{
	struct page *fault_page = mc->m.args->fault_page;
	struct folio *folio = mc->to_split;
	unsigned long pfn = folio_pfn(folio), nr = folio_nr_pages(folio);
	bool split_ok;

	if (folio != mc->m.fault_folio)
		return mdev_split_folio(folio, mc->split_addr);
	split_ok = !split_huge_page(fault_page);
	mc->m.fault_folio = page_folio(fault_page);
	if (split_ok)
		mdev_split_done(mc->split_addr, pfn, nr);
	return split_ok;
}

/*
 * A huge PMD cannot be migrated as such: split it (the huge zero page by
 * splitting the mapping, a THP by splitting the folio) and let the caller
 * look again. Returns false if the range must be skipped, as it is whole
 * when the migration does not select what it maps (system memory, the
 * huge zero page, another owner's device memory): a split would gain
 * nothing.
 */
static bool mdev_collect_split_pmd(struct migrate_vma *args,
				   struct vm_area_struct *vma, pmd_t *pmdp,
				   unsigned long addr)
{
	bool system = args->flags & MIGRATE_VMA_SELECT_SYSTEM;
	struct folio *folio = NULL;
	spinlock_t *ptl;	/* the page-table lock */
	bool huge_zero = false;

	ptl = pmd_lock(vma->vm_mm, pmdp);
	if (pmd_trans_huge(*pmdp)) {
		folio = pmd_folio(*pmdp);
		huge_zero = is_huge_zero_folio(folio);
		if (folio_is_device_coherent(folio) ?
		    !mdev_device_page_wanted(args, &folio->page,
					     MIGRATE_VMA_SELECT_DEVICE_COHERENT) :
		    !system) {
			spin_unlock(ptl);
			return false;
		}
		if (!huge_zero)
			folio_get(folio);
	}
	spin_unlock(ptl);

	if (!folio)
		return true;	/* no longer huge: look again */
	if (huge_zero) {
		split_huge_pmd(vma, pmdp, addr);
		return true;
	}
	return mdev_split_folio(folio, addr);
}

/* What mdev_collect_compound() did with a PMD. */
enum mdev_pmd_result {
	MDEV_PMD_DONE,		/* one compound entry, or skipped whole */
	MDEV_PMD_NOT_HUGE,	/* no PMD-sized entry there: look closer */
};

/*
 * The PMD at @addr, whose whole range is in the migration, as one compound
 * entry (mdev_compound_ok() holds): the huge zero page (an empty source;
 * the insert step replaces it), a PMD-mapped anonymous THP or a PMD that
 * maps a large device-private folio. The folio is locked and referenced,
 * and its PMD becomes a migration entry (set_pmd_migration_entry(), the
 * PMD-sized sibling of mdev_collect_commit()); its mappings elsewhere are
 * found through the rmap later, as for a page.
 */
static enum mdev_pmd_result mdev_collect_compound(struct mdev_collect *mc,
						  pmd_t *pmdp,
						  unsigned long addr)
{
	struct migrate_vma *args = mc->m.args;
	struct vm_area_struct *vma = args->vma;
	struct page_vma_mapped_walk pvmw = {
		.vma = vma, .address = addr, .pmd = pmdp,
	};
	unsigned long i = mdev_index(args, addr);
	unsigned long wflag = 0;
	struct page *page;
	struct folio *folio;
	spinlock_t *ptl;	/* the page-table lock */
	pmd_t pmd;

	ptl = pmd_lock(vma->vm_mm, pmdp);
	pmd = *pmdp;
	if (is_huge_zero_pmd(pmd)) {
		if (args->flags & MIGRATE_VMA_SELECT_SYSTEM) {
			args->src[i] = MIGRATE_PFN_MIGRATE | MIGRATE_PFN_COMPOUND;
			args->cpages++;
		}
		goto done;
	}
	if (pmd_trans_huge(pmd)) {
		page = pmd_page(pmd);
		if (is_device_coherent_page(page)) {
			if (!mdev_device_page_wanted(args, page,
						     MIGRATE_VMA_SELECT_DEVICE_COHERENT))
				goto done;
		} else if (is_zone_device_page(page) ||
			   !(args->flags & MIGRATE_VMA_SELECT_SYSTEM)) {
			goto done;
		}
		if (pmd_write(pmd))
			wflag = MIGRATE_PFN_WRITE;
	} else if (is_pmd_device_private_entry(pmd)) {
		struct hmm_devp devp = hmm_devp_from_pmd(pmd);

		page = devp.page;
		if (!mdev_device_page_wanted(args, page,
					     MIGRATE_VMA_SELECT_DEVICE_PRIVATE))
			goto done;
		if (devp.writable)
			wflag = MIGRATE_PFN_WRITE;
	} else {
		spin_unlock(ptl);
		/* A PMD migration entry is busy: skip the whole range. */
		if (pmd_none(pmd) || pmd_present(pmd))
			return MDEV_PMD_NOT_HUGE;
		return MDEV_PMD_DONE;
	}

	folio = page_folio(page);
	if (!folio_test_anon(folio) || folio_test_ksm(folio) ||
	    folio_order(folio) != MDEV_PMD_ORDER ||
	    !mdev_collect_grab(mc, addr, page, MDEV_PMD_NR))
		goto done;
	if (set_pmd_migration_entry(&pvmw, page)) {
		/* Maybe pinned: it stays mapped. */
		count_vm_events(PGMIGRATE_DEVICE_COLLECTED, MDEV_PMD_NR);
		mdev_given_up(addr, folio, MDEV_PMD_NR);
		if (folio != mc->m.fault_folio)
			folio_unlock(folio);
		folio_put(folio);
		goto done;
	}
	args->src[i] = migrate_pfn(page_to_pfn(page)) | MIGRATE_PFN_MIGRATE |
		       MIGRATE_PFN_COMPOUND | wflag;
	args->cpages++;
	if (folio_mapped(folio)) {
		args->src[i] |= MDEV_PFN_ELSEWHERE;
		mc->mapped_elsewhere = true;
	}
done:
	spin_unlock(ptl);
	return MDEV_PMD_DONE;
}

/*
 * The PMD level: holes, huge entries, then the PTE table under its lock.
 * The table is walked again from where it stopped for each large folio
 * split on the way; a PMD that keeps changing under us is left alone.
 */
static int mdev_collect_pmd(pmd_t *pmdp, unsigned long start,
			    unsigned long end, struct mm_walk *walk)
{
	struct mdev_collect *mc = walk->private;
	struct vm_area_struct *vma = walk->vma;
	unsigned int changed = 0;
	spinlock_t *ptl;	/* the page-table lock */
	pte_t *table;

	while (start < end && changed < 4) {
		pmd_t pmd = pmdp_get_lockless(pmdp);

		if (pmd_none(pmd))
			return mdev_collect_hole(start, end, -1, walk);
		/*
		 * Only a PMD-sized entry can be a compound one: a PTE table
		 * goes on to the table walk without taking the PMD lock.
		 */
		if ((pmd_trans_huge(pmd) || !pmd_present(pmd)) &&
		    mdev_compound_ok(mc->m.args, vma, start, end) &&
		    mdev_collect_compound(mc, pmdp, start) == MDEV_PMD_DONE)
			return 0;
		/* Before pmd_devmap(), which may be set in a swap entry. */
		if (is_pmd_device_private_entry(pmd)) {
			struct hmm_devp devp = hmm_devp_from_pmd(pmd);

			/* Ours to move page by page: split its mapping. */
			if (!mdev_device_page_wanted(mc->m.args, devp.page,
						     MIGRATE_VMA_SELECT_DEVICE_PRIVATE))
				break;
			split_huge_pmd(vma, pmdp, start);
			changed++;
			continue;
		}
		if (!pmd_present(pmd))
			break;	/* a PMD migration entry: busy, skip */
		if (pmd_trans_huge(pmd) || pmd_devmap(pmd)) {
			if (!mdev_collect_split_pmd(mc->m.args, vma, pmdp, start))
				break;
			changed++;
			continue;
		}

		table = pte_offset_map_lock(vma->vm_mm, pmdp, start, &ptl);
		if (!table) {
			changed++;	/* the PMD changed under us */
			continue;
		}
		start = mdev_collect_pte_table(mc, table, start, end);
		pte_unmap_unlock(table, ptl);
		if (mc->to_split) {
			/* The pointer only ever compared: the reference goes. */
			if (!mdev_split_to_collect(mc))
				mc->unsplittable = mc->to_split;
			mc->to_split = NULL;
		}
	}
	return 0;	/* what is left of the range is busy: skip it */
}

static const struct mm_walk_ops mdev_collect_ops = {
	.pmd_entry	= mdev_collect_pmd,
	.pte_hole	= mdev_collect_hole,
	.walk_lock	= PGWALK_RDLOCK,
};

/*
 * The mm_walk the walker would hand mdev_collect_pmd() and
 * mdev_collect_hole(), for calling them without it.
 */
static struct mm_walk mdev_walk_of(struct mdev_collect *mc)
{
	return (struct mm_walk) {
		.mm		= mc->m.args->vma->vm_mm,
		.vma		= mc->m.args->vma,
		.private	= mc,
	};
}

/* Collect [start, end), inside the PMD at @pmdp, without the walker. */
static void mdev_collect_in_pmd(struct mdev_collect *mc, pmd_t *pmdp,
				unsigned long start, unsigned long end)
{
	struct mm_walk walk = mdev_walk_of(mc);

	mdev_collect_pmd(pmdp, start, end, &walk);
}

/*
 * The PMD entry that covers all of @args's range, or NULL: the range
 * crosses a PMD boundary, or a level above is empty. A CPU fault's
 * migration (a page, or a device THP) fits in one PMD, and for one page
 * the generic walker costs about as much as the walk. No level above can
 * be a leaf: mdev_args_valid() takes no hugetlb or DAX VMA.
 */
static pmd_t *mdev_one_pmd(struct migrate_vma *args)
{
	if (pmd_addr_end(args->start, args->end) != args->end)
		return NULL;
	return mm_find_pmd(args->vma->vm_mm, args->start);
}

/* Walk the whole range once, inside one MMU_NOTIFY_MIGRATE invalidation. */
static void mdev_collect(struct mdev_collect *mc)
{
	struct migrate_vma *args = mc->m.args;
	struct mmu_notifier_range range;
	pmd_t *pmdp;

	mmu_notifier_range_init_owner(&range, MMU_NOTIFY_MIGRATE, 0,
				      args->vma->vm_mm, args->start, args->end,
				      args->pgmap_owner);
	mmu_notifier_invalidate_range_start(&range);
	pmdp = mdev_one_pmd(args);
	if (pmdp)
		mdev_collect_in_pmd(mc, pmdp, args->start, args->end);
	else
		walk_page_range_vma(args->vma, args->start, args->end,
				    &mdev_collect_ops, mc);
	mmu_notifier_invalidate_range_end(&range);
}

/*
 * folio_mapping(), without its call in the common case: an anonymous folio
 * has a mapping (the swap cache's) only while in the swap cache.
 */
static __always_inline struct address_space *mdev_mapping(struct folio *folio)
{
	if (folio_test_anon(folio) && !folio_test_swapcache(folio))
		return NULL;
	return folio_mapping(folio);
}

/*
 * References a page may have beyond its mappings while it is one of ours
 * and still be migrated: ours (the walk's, or the LRU isolation's), the
 * fault path's on the faulting page, the page cache's and its private
 * data's, and slack of one for ZONE_DEVICE pages. A large folio moves only
 * as a compound entry (@mpfn, its src[] word, says).
 */
static __always_inline bool
mdev_page_unpinned(const struct mdev_migration *m, struct folio *folio,
		   unsigned long mpfn)
{
	int expected = 1;

	if (folio_test_large(folio) && !(mpfn & MIGRATE_PFN_COMPOUND))
		return false;
	if (folio == m->fault_folio)
		expected++;
	if (folio_is_zone_device(folio))
		expected++;
	if (mdev_mapping(folio))
		expected += 1 + folio_has_private(folio);
	return folio_ref_count(folio) - expected <= folio_mapcount(folio);
}

/*
 * Give up on entry @i: put its mappings back, unlock it (unless it is the
 * fault folio, which its caller locked) and drop our reference (returning
 * an isolated folio to the LRU).
 */
static void mdev_give_up(struct mdev_migration *m, unsigned long i,
			 bool isolated)
{
	struct folio *folio = page_folio(migrate_pfn_to_page(m->src[i]));

	mdev_given_up(mdev_entry_addr(m, i), folio, mdev_nr_pages(m->src[i]));
	m->src[i] = 0;
	remove_migration_ptes(folio, folio, 0);
	if (folio != m->fault_folio)
		folio_unlock(folio);
	if (isolated)
		folio_putback_lru(folio);
	else
		folio_put(folio);
}

/*
 * Pin the anon_vma of a locked anonymous folio for an rmap walk.
 * folio_get_anon_vma() will not do: it gives up on a folio with no
 * mapcount, and a folio whose every mapping is a migration entry has none.
 * Without a mapcount or an mmap lock nothing keeps the anon_vma alive: the
 * process owning the entries may be exiting, zapping them and then freeing
 * its anon_vmas while we walk. anon_vma is SLAB_TYPESAFE_BY_RCU, so under
 * rcu_read_lock() the object stays an anon_vma and a non-zero refcount
 * means it is live; if it was freed and reused since the folio pointed to
 * it, the walk finds none of the folio's entries, which is the truth.
 */
static struct anon_vma *mdev_get_anon_vma(struct folio *folio)
{
	unsigned long mapping = (unsigned long)READ_ONCE(folio->mapping);
	struct anon_vma *anon_vma;

	if ((mapping & PAGE_MAPPING_FLAGS) != PAGE_MAPPING_ANON)
		return NULL;
	anon_vma = (struct anon_vma *)(mapping - PAGE_MAPPING_ANON);
	rcu_read_lock();
	if (!atomic_inc_not_zero(&anon_vma->refcount))
		anon_vma = NULL;
	rcu_read_unlock();
	return anon_vma;
}

/*
 * Finish unmapping the locked, referenced pages of @m: replace the
 * mappings the walk did not see (other processes, other page tables,
 * device-exclusive entries) by migration entries, take system pages off
 * the LRU, and give up on any page still mapped or with references we
 * cannot explain.
 *
 * Every mapping is turned into a migration entry before lru_add_drain_all()
 * may be called: a CPU faulting on one of these pages then sleeps in
 * migration_entry_wait() instead of retrying the fault, which could starve
 * the drain's work item on its CPU. The local LRU batches are drained
 * first, once, when the first system page comes up: a migration of device
 * pages alone (every CPU fault back) has nothing there to wait for.
 *
 * @use_rmap is false when the caller knows no page is mapped any more.
 *
 * Return: the number of entries still marked MIGRATE_PFN_MIGRATE.
 */
static unsigned long mdev_unmap(struct mdev_migration *m, bool use_rmap)
{
	unsigned long *src_pfns = m->src;
	unsigned long i, cpages = 0, collected = 0;
	enum { NOT_DRAINED, DRAINED_HERE, DRAINED_ALL } drained = NOT_DRAINED;

	for (i = 0; use_rmap && i < m->npages; i++) {
		struct page *page = migrate_pfn_to_page(src_pfns[i]);

		if (!page)
			continue;
		if (folio_mapped(page_folio(page)))
			try_to_migrate(page_folio(page), 0);
	}

	for (i = 0; i < m->npages; i++) {
		struct page *page = migrate_pfn_to_page(src_pfns[i]);
		bool isolated = false;
		struct folio *folio;

		if (!page) {
			cpages += !!(src_pfns[i] & MIGRATE_PFN_MIGRATE);
			continue;
		}
		collected += mdev_nr_pages(src_pfns[i]);
		folio = page_folio(page);
		if (!folio_is_zone_device(folio)) {
			if (drained == NOT_DRAINED) {
				lru_add_drain();
				drained = DRAINED_HERE;
			}
			if (!folio_test_lru(folio) && drained != DRAINED_ALL) {
				lru_add_drain_all();
				drained = DRAINED_ALL;
			}
			isolated = folio_isolate_lru(folio);
			if (!isolated) {
				mdev_give_up(m, i, false);
				continue;
			}
			folio_put(folio);	/* the isolation holds one now */
		}
		if (folio_mapped(folio) ||
		    !mdev_page_unpinned(m, folio, src_pfns[i])) {
			mdev_give_up(m, i, isolated);
			continue;
		}
		cpages++;
	}
	count_vm_events(PGMIGRATE_DEVICE_COLLECTED, collected);
	return cpages;
}

/* What migrate_vma_setup() accepts. */
static __always_inline bool mdev_args_valid(struct migrate_vma *args)
{
	struct vm_area_struct *vma = args->vma;

	if (!vma || is_vm_hugetlb_page(vma) || (vma->vm_flags & VM_SPECIAL) ||
	    vma_is_dax(vma))
		return false;
	if (args->start >= args->end || args->start < vma->vm_start ||
	    args->end > vma->vm_end)
		return false;
	if (!args->src || !args->dst)
		return false;
	return !args->fault_page || is_device_private_page(args->fault_page);
}

/*
 * migrate_vma_setup() with MIGRATE_VMA_FAULT: the collection rides on the
 * mirror walk of mm/hmm.c, which faults in what the CPU does not map
 * readable before it hands each span over. dst[] serves as the walk's
 * output, which nobody reads; it is zeroed again for the driver.
 */
static int mdev_setup_faulting(struct migrate_vma *args)
{
	struct hmm_range range = {
		.start			= args->start,
		.end			= args->end,
		.hmm_pfns		= args->dst,
		.default_flags		= HMM_PFN_REQ_FAULT | HMM_PFN_REQ_MIGRATE,
		.dev_private_owner	= args->pgmap_owner,
		.migrate		= args,
	};
	int ret;

	/* The fault path holds the fault page's lock: no faults under it. */
	if (args->fault_page)
		return -EINVAL;
	ret = hmm_range_walk(&range, args->vma->vm_mm);
	memset(args->dst, 0, args->npages * sizeof(*args->dst));
	if (ret)
		return ret;
	migrate_hmm_range_setup(&range);
	return 0;
}

/**
 * migrate_vma_setup() - collect, lock and unmap the pages of a range
 * @args: the migration: @vma, @start, @end, @src, @dst, @flags,
 *	@pgmap_owner and, from migrate_to_ram(), @fault_page are inputs
 *
 * Walks [@start, @end) of @vma and fills @src with one migrate pfn per page
 * (@dst is zeroed). Each page selected by @flags and @pgmap_owner that can
 * be locked without waiting is locked, referenced and unmapped: every CPU
 * mapping of it becomes a migration entry, so its content is stable until
 * migrate_vma_finalize(). Unpopulated addresses and the zero page of an
 * anonymous VMA are reported as empty sources (MIGRATE_PFN_MIGRATE without
 * MIGRATE_PFN_VALID) that the driver may fill. A huge PMD is split first
 * if it maps memory the migration selects, and left whole otherwise.
 * Pages that cannot move (locked by someone else, pinned, not anonymous,
 * large) get a src word of 0 and stay mapped. @cpages counts the entries
 * left with MIGRATE_PFN_MIGRATE. With MIGRATE_VMA_FAULT in @flags, what
 * the CPU does not map readable is faulted in first, in the same walk, so
 * that swapped-out pages and other owners' device memory are collected
 * too.
 *
 * Next the driver allocates a locked destination page for each entry it
 * wants to move, copies the data, stores migrate_pfn(pfn) in @dst, and
 * calls migrate_vma_pages() and migrate_vma_finalize() (the latter always,
 * also when it moves nothing). A driver migrating device-private memory
 * back to the CPU should move every such entry: a fault it cannot satisfy
 * ends in SIGBUS.
 *
 * Context: process context, may sleep. The caller holds the mmap_lock of
 * @vma's mm (read is enough) until migrate_vma_finalize(). @fault_page, if
 * set, is locked and referenced by the caller (do_swap_page() does both
 * before calling migrate_to_ram()) and stays locked until the caller
 * unlocks it, after migrate_vma_finalize().
 * Return: 0 on success (even if nothing could be collected); -EINVAL if the
 * range or @vma cannot be migrated or an array is missing, or for
 * MIGRATE_VMA_FAULT with @fault_page. With MIGRATE_VMA_FAULT also what a
 * fault fails with (see hmm_range_fault()), -EINTR for a fatal signal, and
 * -EOPNOTSUPP without CONFIG_HMM_MIRROR; then nothing is collected.
 */
int migrate_vma_setup(struct migrate_vma *args)
{
	struct mdev_collect mc __uninitialized;	/* see mdev_collect_init() */
	unsigned long npages;

	args->start &= PAGE_MASK;
	args->end &= PAGE_MASK;
	if (!mdev_args_valid(args))
		return -EINVAL;
	mmap_assert_locked(args->vma->vm_mm);

	npages = (args->end - args->start) >> PAGE_SHIFT;
	/* A CPU fault's one entry: two stores, not two calls. */
	if (npages == 1) {
		args->src[0] = 0;
		args->dst[0] = 0;
	} else {
		memset(args->src, 0, npages * sizeof(*args->src));
		memset(args->dst, 0, npages * sizeof(*args->dst));
	}
	args->npages = npages;
	args->cpages = 0;
	if (args->flags & MIGRATE_VMA_FAULT)
		return mdev_setup_faulting(args);

	mdev_collect_init(&mc, mdev_migration_of(args));
	if (mc.m.fault_folio)
		VM_WARN_ON_ONCE_FOLIO(!folio_test_locked(mc.m.fault_folio),
				      mc.m.fault_folio);

	mdev_collect(&mc);

	if (args->cpages)
		args->cpages = mdev_unmap(&mc.m, mc.mapped_elsewhere);
	if (trace_hmm_migrate_vma_setup_enabled()) {
		struct mdev_summary s = mdev_summary_of(&mc.m);

		trace_hmm_migrate_vma_setup(args->start, args->end,
					    args->flags, s.pages, s.empty,
					    s.thp);
	}
	return 0;
}
EXPORT_SYMBOL(migrate_vma_setup);

/*
 * Collecting in hmm_range_fault()'s walk (HMM_PFN_REQ_MIGRATE)
 * ------------------------------------------------------------
 * The mirror walk of mm/hmm.c hands each span it has reported to
 * mdev_walk_collect() before it moves on: a PTE table's worth, or less
 * where it stopped to fault, or a hole. The span is collected by the same
 * code as migrate_vma_setup()'s own walk (mdev_collect_pmd(),
 * mdev_collect_hole()) while the page table is still hot, each span in an
 * MMU_NOTIFY_MIGRATE invalidation of its own: the walk returns to the
 * caller in between, and an invalidation left open across that would
 * stall the caller's next mmu_interval_read_begin(). Nothing is unmapped
 * through the rmap yet: migrate_hmm_range_setup() does that once the walk
 * is over, as migrate_vma_setup() does after its own walk. A walk that
 * fails puts back whatever it collected (mdev_walk_abort()).
 */

#ifdef CONFIG_HMM_MIGRATE_WALK
/**
 * mdev_walk_begin() - check and reset a migration that a mirror walk fills
 * @args: the migration (hmm_range.migrate)
 * @range: the range being mirrored
 *
 * Context: the mmap_lock of @args->vma's mm held.
 * Return: 0, or -EINVAL if @args cannot be collected for @range.
 */
int mdev_walk_begin(struct migrate_vma *args, const struct hmm_range *range)
{
	unsigned long npages;

	if (!args || args->fault_page || args->src == range->hmm_pfns ||
	    args->start != range->start || args->end != range->end ||
	    !mdev_args_valid(args))
		return -EINVAL;
	npages = (args->end - args->start) >> PAGE_SHIFT;
	memset(args->src, 0, npages * sizeof(*args->src));
	memset(args->dst, 0, npages * sizeof(*args->dst));
	args->npages = npages;
	args->cpages = 0;
	return 0;
}

/*
 * Mark the mirror's words @hmm_pfns (indexed as src[]) of what was collected
 * in [first, last): a compound entry's src[] word stands for all its pages.
 */
static void mdev_walk_mark(const struct migrate_vma *args,
			   unsigned long *hmm_pfns, unsigned long first,
			   unsigned long last)
{
	unsigned long i, nr;

	for (i = first; i < last; i += nr) {
		nr = 1;
		if (!(args->src[i] & MIGRATE_PFN_MIGRATE))
			continue;
		nr = min(mdev_nr_pages(args->src[i]), last - i);
		for (; nr; nr--, i++)
			hmm_pfns[i] |= HMM_PFN_MIGRATE;
	}
}

/**
 * mdev_walk_collect() - collect a span the mirror walk has just reported
 * @args: the migration, after mdev_walk_begin()
 * @hmm_pfns: the mirror's output; HMM_PFN_MIGRATE is set in the words of
 *	what was collected
 * @pmdp: the PMD [@start, @end) lies under, or NULL for a hole with no
 *	page table
 * @start: first address
 * @end: end of the span, no further than the PMD's end when @pmdp is set
 *
 * Context: the mmap_lock held, no page-table lock.
 */
void mdev_walk_collect(struct migrate_vma *args, unsigned long *hmm_pfns,
		       pmd_t *pmdp, unsigned long start, unsigned long end)
{
	struct mdev_collect mc __uninitialized;	/* see mdev_collect_init() */
	struct mmu_notifier_range range;

	mdev_collect_init(&mc, mdev_migration_of(args));
	if (!pmdp) {
		struct mm_walk walk = mdev_walk_of(&mc);

		mdev_collect_hole(start, end, -1, &walk);
	} else {
		mmu_notifier_range_init_owner(&range, MMU_NOTIFY_MIGRATE, 0,
					      args->vma->vm_mm, start, end,
					      args->pgmap_owner);
		mmu_notifier_invalidate_range_start(&range);
		mdev_collect_in_pmd(&mc, pmdp, start, end);
		mmu_notifier_invalidate_range_end(&range);
	}
	mdev_walk_mark(args, hmm_pfns, mdev_index(args, start),
		       mdev_index(args, end));
}

/**
 * mdev_walk_abort() - put back everything a mirror walk has collected
 * @args: the migration
 * @failed: the walk failed (its pages count as collected and skipped,
 *	raced); otherwise it is only letting go before it sleeps, and will
 *	collect them again
 *
 * Each page collected is mapped again and released; src[] is left all 0.
 *
 * Context: the mmap_lock held.
 */
void mdev_walk_abort(struct migrate_vma *args, bool failed)
{
	struct mdev_migration m = mdev_migration_of(args);
	unsigned long i;

	for (i = 0; i < m.npages; i++) {
		struct page *page = migrate_pfn_to_page(m.src[i]);
		unsigned long nr = mdev_nr_pages(m.src[i]);
		struct folio *folio;

		m.src[i] = 0;
		if (!page)
			continue;
		folio = page_folio(page);
		if (failed) {
			count_vm_events(PGMIGRATE_DEVICE_COLLECTED, nr);
			mdev_skip(mdev_addr(args, i), page_to_pfn(page), nr,
				  HMM_SKIP_RACED);
		}
		remove_migration_ptes(folio, folio, 0);
		folio_unlock(folio);
		folio_put(folio);
	}
	args->cpages = 0;
}
#endif /* CONFIG_HMM_MIGRATE_WALK */

/* Clear HMM_PFN_MIGRATE where setup gave up on the entry after the walk. */
static void mdev_walk_unmark(struct hmm_range *range)
{
	struct migrate_vma *args = range->migrate;
	unsigned long i, nr;

	for (i = 0; i < args->npages; i += nr) {
		nr = mdev_nr_pages(args->src[i]);
		if (!(range->hmm_pfns[i] & HMM_PFN_MIGRATE) ||
		    (args->src[i] & MIGRATE_PFN_MIGRATE))
			continue;
		for (nr = 0; i + nr < args->npages &&
		     (range->hmm_pfns[i + nr] & HMM_PFN_MIGRATE) &&
		     (!nr || !args->src[i + nr]); nr++)
			range->hmm_pfns[i + nr] &= ~HMM_PFN_MIGRATE;
	}
}

/**
 * migrate_hmm_range_setup() - finish the collection of a mirror walk
 * @range: a range hmm_range_fault() walked with HMM_PFN_REQ_MIGRATE in
 *	its @default_flags, for the migration @range->migrate
 *
 * hmm_range_fault() has collected the pages of @range->migrate as
 * migrate_vma_setup() would: locked, referenced, their mappings in the
 * walked page table replaced by migration entries, and empty sources
 * marked. This finishes what migrate_vma_setup() does after its walk:
 * mappings elsewhere are unmapped through the rmap, system pages are
 * taken off the LRU, and pages with references that cannot be explained
 * are put back. Afterwards @range->migrate is exactly as migrate_vma_setup()
 * leaves it (@cpages counts what can move), and HMM_PFN_MIGRATE is set in
 * @range->hmm_pfns exactly for the entries still collected. The driver goes
 * on with migrate_vma_pages() and migrate_vma_finalize().
 *
 * Also safe, and a no-op, after hmm_range_fault() failed: a failed walk
 * collects nothing.
 *
 * Context: process context, may sleep; the mmap_lock held since
 * hmm_range_fault(), until migrate_vma_finalize().
 */
void migrate_hmm_range_setup(struct hmm_range *range)
{
	struct migrate_vma *args = range->migrate;
	struct mdev_migration m;
	bool elsewhere = false;
	unsigned long i;

	if (!args || !args->npages)
		return;
	mmap_assert_locked(args->vma->vm_mm);
	m = mdev_migration_of(args);
	args->cpages = 0;
	for (i = 0; i < m.npages; i++) {
		args->cpages += !!(m.src[i] & MIGRATE_PFN_MIGRATE);
		elsewhere |= m.src[i] & MDEV_PFN_ELSEWHERE;
	}
	if (args->cpages)
		args->cpages = mdev_unmap(&m, elsewhere);
	mdev_walk_unmark(range);
	if (trace_hmm_migrate_vma_setup_enabled()) {
		struct mdev_summary s = mdev_summary_of(&m);

		trace_hmm_migrate_vma_setup(args->start, args->end,
					    args->flags, s.pages, s.empty,
					    s.thp);
	}
}
EXPORT_SYMBOL(migrate_hmm_range_setup);

/* Is entry @i an empty source the driver gave a destination? */
static bool mdev_is_fill(struct migrate_vma *args, unsigned long i)
{
	return !(args->src[i] & MIGRATE_PFN_VALID) &&
	       (args->src[i] & MIGRATE_PFN_MIGRATE) &&
	       (args->dst[i] & MIGRATE_PFN_VALID);
}

/* Allocate the page-table levels down to the PMD covering @addr. */
static pmd_t *mdev_alloc_pmd(struct mm_struct *mm, unsigned long addr)
{
	p4d_t *p4dp = p4d_alloc(mm, pgd_offset(mm, addr), addr);
	pud_t *pudp = p4dp ? pud_alloc(mm, p4dp, addr) : NULL;

	return pudp ? pmd_alloc(mm, pudp, addr) : NULL;
}

/* The PTE that maps a fresh destination @page in @vma. */
static pte_t mdev_fresh_pte(struct vm_area_struct *vma, struct page *page)
{
	bool writable = vma->vm_flags & VM_WRITE;
	pte_t pte;

	if (is_device_private_page(page))
		return hmm_devp_mkpte(page, writable, __pte(0));
	pte = mk_pte(page, vma->vm_page_prot);
	if (writable)
		pte = pte_mkwrite(pte_mkdirty(pte), vma);
	return pte;
}

/*
 * Can dst page @page be installed in an empty slot? Charges it to the mm's
 * memcg; may sleep.
 */
static bool mdev_fresh_page_ok(struct vm_area_struct *vma, struct page *page)
{
	struct folio *folio = page_folio(page);

	/* mdev_pages() refused a destination no mapping can hold. */
	if (mem_cgroup_charge(folio, vma->vm_mm, GFP_KERNEL))
		return false;
	/* Orders the copy into the page before the PTE that exposes it. */
	__folio_mark_uptodate(folio);
	return true;
}

/*
 * Install the destinations of the empty sources [first, last] of @args, all
 * in the PTE table of one PMD, under one page-table lock. An entry whose
 * slot is no longer empty (or the zero page) loses MIGRATE_PFN_MIGRATE.
 */
static void mdev_insert_run(struct migrate_vma *args, unsigned long first,
			    unsigned long last)
{
	struct vm_area_struct *vma = args->vma;
	struct mm_struct *mm = vma->vm_mm;
	unsigned long addr0 = mdev_addr(args, first);
	unsigned long i, nr_zero = 0;
	spinlock_t *ptl;	/* the page-table lock */
	pte_t *table;
	pmd_t *pmdp;

	if (!vma_is_anonymous(vma) || unlikely(anon_vma_prepare(vma)))
		goto fail_all;
	pmdp = mdev_alloc_pmd(mm, addr0);
	/* The huge zero page of an empty compound entry filled page by page. */
	if (pmdp && is_huge_zero_pmd(pmdp_get_lockless(pmdp)))
		split_huge_pmd(vma, pmdp, addr0);
	if (!pmdp || pmd_trans_huge(*pmdp) || pmd_devmap(*pmdp) ||
	    pte_alloc(mm, pmdp))
		goto fail_all;

	for (i = first; i <= last; i++) {
		if (mdev_is_fill(args, i) &&
		    !mdev_fresh_page_ok(vma, migrate_pfn_to_page(args->dst[i]))) {
			args->src[i] &= ~MIGRATE_PFN_MIGRATE;
			mdev_skip(mdev_addr(args, i), 0, 1, HMM_SKIP_ALLOC);
		}
	}

	table = pte_offset_map_lock(mm, pmdp, addr0, &ptl);
	if (!table)
		goto fail_all;
	if (check_stable_address_space(mm) || userfaultfd_missing(vma)) {
		pte_unmap_unlock(table, ptl);
		goto fail_all;
	}

	/* Take the zero pages out first, so that one flush covers them. */
	for (i = first; i <= last; i++) {
		pte_t *ptep = table + (i - first);
		pte_t pte = ptep_get(ptep);

		if (!mdev_is_fill(args, i))
			continue;
		if (pte_present(pte) && is_zero_pfn(pte_pfn(pte))) {
			flush_cache_page(vma, mdev_addr(args, i),
					 pte_pfn(pte));
			ptep_get_and_clear(mm, mdev_addr(args, i),
					   ptep);
			nr_zero++;
		} else if (!pte_none(pte)) {
			args->src[i] &= ~MIGRATE_PFN_MIGRATE;
			mdev_skip(mdev_addr(args, i), 0, 1, HMM_SKIP_RACED);
		}
	}
	if (nr_zero)
		flush_tlb_range(vma, addr0,
				mdev_addr(args, last + 1));

	for (i = first; i <= last; i++) {
		unsigned long addr = mdev_addr(args, i);
		struct page *page = migrate_pfn_to_page(args->dst[i]);
		struct folio *folio;

		if (!mdev_is_fill(args, i))
			continue;
		folio = page_folio(page);
		mdev_count_moved(NULL, folio, 1);
		inc_mm_counter(mm, MM_ANONPAGES);
		folio_add_new_anon_rmap(folio, vma, addr, RMAP_EXCLUSIVE);
		if (!folio_is_zone_device(folio))
			folio_add_lru_vma(folio, vma);
		folio_get(folio);	/* the mapping's reference */
		set_pte_at(mm, addr, table + (i - first),
			   mdev_fresh_pte(vma, page));
		update_mmu_cache(vma, addr, table + (i - first));
	}
	pte_unmap_unlock(table, ptl);
	return;

fail_all:
	for (i = first; i <= last; i++) {
		if (mdev_is_fill(args, i)) {
			args->src[i] &= ~MIGRATE_PFN_MIGRATE;
			mdev_skip(mdev_addr(args, i), 0, 1, HMM_SKIP_RACED);
		}
	}
}

/* The PMD that maps a fresh PMD-sized destination @page in @vma. */
static pmd_t mdev_fresh_pmd(struct vm_area_struct *vma, struct page *page)
{
	bool writable = vma->vm_flags & VM_WRITE;
	pmd_t pmd;

	if (is_device_private_page(page))
		return hmm_devp_mkpmd(page, writable, __pmd(0));
	pmd = mk_huge_pmd(page, vma->vm_page_prot);
	if (writable)
		pmd = pmd_mkwrite(pmd_mkdirty(pmd), vma);
	return pmd;
}

/*
 * Install the PMD-sized destination of the empty compound source @i: in
 * an empty PMD, with a page table deposited under it as under any
 * anonymous huge PMD, or in place of the huge zero page, whose deposited
 * table it keeps. Anything else there now: the entry loses
 * MIGRATE_PFN_MIGRATE.
 */
static void mdev_insert_pmd(struct migrate_vma *args, unsigned long i)
{
	struct vm_area_struct *vma = args->vma;
	struct mm_struct *mm = vma->vm_mm;
	unsigned long addr = mdev_addr(args, i);
	struct page *page = migrate_pfn_to_page(args->dst[i]);
	struct folio *folio = page_folio(page);
	pgtable_t pgtable;
	spinlock_t *ptl;	/* the page-table lock */
	pmd_t *pmdp;
	bool zero;

	if (!vma_is_anonymous(vma) || unlikely(anon_vma_prepare(vma)))
		goto fail;
	pmdp = mdev_alloc_pmd(mm, addr);
	if (pmdp && !mdev_fresh_page_ok(vma, page)) {
		args->src[i] &= ~MIGRATE_PFN_MIGRATE;
		mdev_skip(addr, 0, MDEV_PMD_NR, HMM_SKIP_ALLOC);
		return;
	}
	if (!pmdp)
		goto fail;
	pgtable = pte_alloc_one(mm);
	if (!pgtable)
		goto fail;

	ptl = pmd_lock(mm, pmdp);
	zero = is_huge_zero_pmd(*pmdp);
	if ((!zero && !pmd_none(*pmdp)) || check_stable_address_space(mm) ||
	    userfaultfd_missing(vma)) {
		spin_unlock(ptl);
		pte_free(mm, pgtable);
		goto fail;
	}
	if (zero) {
		pmdp_huge_clear_flush(vma, addr, pmdp);
	} else {
		pgtable_trans_huge_deposit(mm, pmdp, pgtable);
		mm_inc_nr_ptes(mm);
		pgtable = NULL;
	}
	mdev_count_moved(NULL, folio, MDEV_PMD_NR);
	add_mm_counter(mm, MM_ANONPAGES, MDEV_PMD_NR);
	folio_add_new_anon_rmap(folio, vma, addr, RMAP_EXCLUSIVE);
	if (!folio_is_zone_device(folio))
		folio_add_lru_vma(folio, vma);
	folio_get(folio);	/* the mapping's reference */
	set_pmd_at(mm, addr, pmdp, mdev_fresh_pmd(vma, page));
	if (!is_device_private_page(page))
		update_mmu_cache_pmd(vma, addr, pmdp);
	spin_unlock(ptl);
	if (pgtable)
		pte_free(mm, pgtable);
	return;

fail:
	args->src[i] &= ~MIGRATE_PFN_MIGRATE;
	mdev_skip(addr, 0, MDEV_PMD_NR, HMM_SKIP_RACED);
}

/*
 * Fill the empty sources of @args that have a destination: a compound one
 * by its PMD, the others a run of entries per PTE table at a time.
 */
static void mdev_insert_empty(struct migrate_vma *args)
{
	struct mmu_notifier_range range;
	unsigned long i = 0, first;
	bool notified = false;

	while (i < args->npages) {
		unsigned long table_end;

		if (!mdev_is_fill(args, i)) {
			i++;
			continue;
		}
		if (!notified) {
			mmu_notifier_range_init_owner(&range,
						      MMU_NOTIFY_MIGRATE, 0,
						      args->vma->vm_mm,
						      mdev_addr(args, i),
						      args->end,
						      args->pgmap_owner);
			mmu_notifier_invalidate_range_start(&range);
			notified = true;
		}
		if (args->src[i] & MIGRATE_PFN_COMPOUND) {
			mdev_insert_pmd(args, i);
			i += MDEV_PMD_NR;
			continue;
		}
		/* Extend the run to the end of this PTE table. */
		table_end = pmd_addr_end(mdev_addr(args, i), args->end);
		first = i;
		while (i + 1 < args->npages &&
		       mdev_addr(args, i + 1) < table_end)
			i++;
		mdev_insert_run(args, first, i);
		i++;
	}
	if (notified)
		mmu_notifier_invalidate_range_end(&range);
}

/*
 * Move the identity of one source page to its destination; false if it
 * must stay where it is.
 */
static bool mdev_move_page(const struct mdev_migration *m, struct page *page,
			   struct page *newpage)
{
	struct folio *folio = page_folio(page);
	struct folio *newfolio = page_folio(newpage);
	struct address_space *mapping = mdev_mapping(folio);

	if (folio_is_device_private(newfolio) ||
	    folio_is_device_coherent(newfolio)) {
		/* Device memory holds anonymous pages, never swap cache. */
		if (mapping) {
			if (!folio_test_anon(folio) || !folio_free_swap(folio))
				return false;
			mapping = folio_mapping(folio);
		}
	}

	WARN_ON_ONCE(folio_test_writeback(folio));
	if (folio_migrate_mapping(mapping, newfolio, folio,
				  folio == m->fault_folio) != MIGRATEPAGE_SUCCESS)
		return false;
	folio_migrate_flags(newfolio, folio);
	return true;
}

/*
 * Take page @page of a just split device folio into the migration as
 * entry @i: referenced (unless it is gone: unmapped, the split freed it),
 * locked and unmapped through the rmap. The page the split kept (@kept)
 * is locked and referenced already. A page freed by the split may be in
 * use again already, by someone else: it must still be the anonymous page
 * at @mapping and @index it was. Returns whether it is in.
 */
static bool mdev_regrab(struct mdev_migration *m, unsigned long i,
			struct page *page, struct page *kept,
			struct address_space *mapping, pgoff_t index,
			unsigned long wflag)
{
	struct folio *folio = page_folio(page);

	if (page != kept) {
		if (!folio_try_get(folio))
			goto raced;
		if (!folio_trylock(folio)) {
			folio_put(folio);
			goto raced;
		}
		if (folio->mapping != mapping || folio->index != index) {
			folio_unlock(folio);
			folio_put(folio);
			goto raced;
		}
	} else if (folio == m->fault_folio) {
		folio_get(folio);	/* ours, beside the fault path's */
	}
	m->src[i] = migrate_pfn(page_to_pfn(page)) | MIGRATE_PFN_MIGRATE |
		    MDEV_PFN_ELSEWHERE | wflag;
	try_to_migrate(folio, 0);
	if (folio_mapped(folio) || !mdev_page_unpinned(m, folio, m->src[i])) {
		mdev_give_up(m, i, false);
		return false;
	}
	return true;

raced:
	mdev_skip(mdev_entry_addr(m, i), page_to_pfn(page), 1, HMM_SKIP_RACED);
	return false;
}

/*
 * A device-private compound source @i the driver answered with single
 * pages: split it and take its pages into the migration one by one. The
 * folio is locked, so nobody can change its data while it is mapped again
 * for the split (a CPU access faults and waits for the lock; the device is
 * the driver's), and the copies the driver made stay good. Each page then
 * has an entry of its own, found through the rmap at finalize; a page that
 * cannot be taken back (another fault got it first) does not move.
 */
static void mdev_split_compound(struct mdev_migration *m, unsigned long i)
{
	struct page *head = migrate_pfn_to_page(m->src[i]);
	unsigned long wflag = m->src[i] & MIGRATE_PFN_WRITE;
	struct folio *folio = page_folio(head);
	struct address_space *mapping = folio->mapping;
	pgoff_t index = folio->index;
	struct page *kept = head;
	unsigned long j;
	bool split_ok;

	remove_migration_ptes(folio, folio, 0);
	if (folio == m->fault_folio) {
		/* The fault path's reference and lock follow its page. */
		kept = m->args->fault_page;
		folio_put(folio);
	}
	split_ok = !split_huge_page(kept);
	if (folio == m->fault_folio)
		m->fault_folio = page_folio(kept);
	if (!split_ok) {
		/* Still whole and mapped again: it stays. */
		mdev_given_up(mdev_entry_addr(m, i), folio, MDEV_PMD_NR);
		m->src[i] = 0;
		if (folio != m->fault_folio) {
			folio_unlock(folio);
			folio_put(folio);
		}
		return;
	}
	mdev_split_done(mdev_entry_addr(m, i), page_to_pfn(head), MDEV_PMD_NR);
	for (j = 0; j < MDEV_PMD_NR; j++)
		if (!mdev_regrab(m, i + j, nth_page(head, j), kept, mapping,
				 index + j, wflag))
			m->src[i + j] = 0;
}

/*
 * rmap_one of mdev_split_system(): the PMD migration entry of @folio in
 * @vma, if it has one (a PMD-sized folio has one at most per VMA), becomes
 * MDEV_PMD_NR PTE migration entries, one per page, with the same bits. A
 * migration entry is not present: no TLB or secondary MMU holds it, so
 * there is nothing to invalidate.
 */
static bool mdev_split_pmd_entry_one(struct folio *folio,
				     struct vm_area_struct *vma,
				     unsigned long addr, void *arg)
{
	DEFINE_FOLIO_VMA_WALK(pvmw, folio, vma, addr, PVMW_MIGRATION);

	while (page_vma_mapped_walk(&pvmw)) {
		if (pvmw.pte)
			continue;
		split_huge_pmd_locked(vma, pvmw.address, pvmw.pmd, false, NULL);
		page_vma_mapped_walk_done(&pvmw);
		break;
	}
	return true;
}

/*
 * A system THP (compound source @i, locked, off the LRU, every mapping a
 * migration entry) the driver answered with single pages: split it where
 * it is, unmapped, so that the CPU never reaches it again before its pages
 * have moved, and take each page in as an entry of its own, locked and
 * referenced by the split. Each keeps the THP's migration entries, now
 * PTE ones, which finalize maps again (the walk's for the range, the
 * rmap's elsewhere). A folio with a reference beyond ours stays whole and
 * mapped by its PMDs; one that gains a reference while its PMD entries are
 * split stays where it was too, with its data, mapped by PTEs.
 */
static void mdev_split_system(struct mdev_migration *m, unsigned long i)
{
	struct rmap_walk_control rwc = {
		.rmap_one = mdev_split_pmd_entry_one,
	};
	unsigned long flags = m->src[i] & (MIGRATE_PFN_MIGRATE |
					   MIGRATE_PFN_WRITE |
					   MDEV_PFN_ELSEWHERE);
	unsigned long pfn = m->src[i] >> MIGRATE_PFN_SHIFT;
	struct folio *folio = pfn_folio(pfn);
	struct anon_vma *anon_vma;
	unsigned long j;

	/* Racy, but spares the PMD mappings of a folio that cannot split. */
	if (!can_split_folio(folio, 1, NULL))
		goto give_up;
	/* The mapped VMA keeps the anon_vma alive; the pin costs nothing. */
	anon_vma = mdev_get_anon_vma(folio);
	if (!anon_vma)
		goto give_up;
	rmap_walk(folio, &rwc);
	put_anon_vma(anon_vma);
	if (folio_split_unmapped(folio, 0))
		goto give_up;
	mdev_split_done(mdev_entry_addr(m, i), pfn, MDEV_PMD_NR);
	for (j = 0; j < MDEV_PMD_NR; j++)
		m->src[i + j] = migrate_pfn(pfn + j) | flags;
	return;

give_up:
	mdev_give_up(m, i, true);	/* isolated: back to the LRU */
}

/*
 * Does the driver answer compound source @i with single pages? Only then
 * is a split worth its cost: a source given nothing, or a compound
 * destination mdev_compound_answer() refused, would be split for nothing.
 */
static bool mdev_answered_small(struct mdev_migration *m, unsigned long i)
{
	unsigned long j;

	for (j = 0; j < MDEV_PMD_NR; j++) {
		struct page *newpage = migrate_pfn_to_page(m->dst[i + j]);

		if (newpage && !(m->dst[i + j] & MIGRATE_PFN_COMPOUND) &&
		    !PageCompound(newpage))
			return true;
	}
	return false;
}

/*
 * Does the driver's answer @dst to compound source @i name a folio of the
 * source's order? If not, an empty range becomes MDEV_PMD_NR empty sources
 * for whatever order-0 destinations the driver gave instead, and a folio
 * is split into its pages, a system THP unmapped (mdev_split_system()), a
 * device-private one locked (mdev_split_compound()). A source the driver
 * gave no single page for stays whole, and so does a device-coherent folio
 * (folio_split_unmapped() leaves device folios to split_huge_page()).
 */
static bool mdev_compound_answer(struct mdev_migration *m, unsigned long i)
{
	struct page *newpage = migrate_pfn_to_page(m->dst[i]);
	struct page *page = migrate_pfn_to_page(m->src[i]);
	unsigned long dst = m->dst[i], *src = &m->src[i];
	unsigned long j;

	/* Large-rmappable: a THP, or a device folio of zone_device_folio_init(). */
	if (newpage && (dst & MIGRATE_PFN_COMPOUND) &&
	    folio_order(page_folio(newpage)) == MDEV_PMD_ORDER &&
	    folio_test_large_rmappable(page_folio(newpage)) &&
	    newpage == folio_page(page_folio(newpage), 0))
		return true;
	if (!page) {
		for (j = 0; j < MDEV_PMD_NR; j++)
			src[j] = MIGRATE_PFN_MIGRATE;
	} else if (!mdev_answered_small(m, i) ||
		   is_device_coherent_page(page)) {
		*src &= ~MIGRATE_PFN_MIGRATE;
	} else if (is_device_private_page(page)) {
		mdev_split_compound(m, i);
	} else {
		mdev_split_system(m, i);
	}
	return false;
}

/* Can @page be a destination at all: system memory, or movable device memory? */
static bool mdev_usable_destination(struct page *page)
{
	return !is_zone_device_page(page) || is_device_private_page(page) ||
	       is_device_coherent_page(page);
}

/* The commit step of both interfaces. */
static void mdev_pages(struct mdev_migration *m)
{
	unsigned long *src_pfns = m->src, *dst_pfns = m->dst;
	bool has_empty = false;
	unsigned long i;

	for (i = 0; i < m->npages; i++) {
		struct page *newpage = migrate_pfn_to_page(dst_pfns[i]);
		struct page *page;

		if (!(src_pfns[i] & MIGRATE_PFN_MIGRATE))
			continue;
		/* A compound source left out, or become single pages? */
		if ((src_pfns[i] & MIGRATE_PFN_COMPOUND) &&
		    !mdev_compound_answer(m, i) &&
		    !(src_pfns[i] & MIGRATE_PFN_MIGRATE))
			continue;
		page = migrate_pfn_to_page(src_pfns[i]);
		/* An empty source is collected once the driver gave it a page. */
		if (!page && newpage)
			count_vm_events(PGMIGRATE_DEVICE_COLLECTED,
					mdev_nr_pages(src_pfns[i]));
		/* A page, or an empty source, wants a usable page of its size. */
		if (!newpage || (PageCompound(newpage) !=
				 !!(src_pfns[i] & MIGRATE_PFN_COMPOUND)) ||
		    !mdev_usable_destination(newpage)) {
			src_pfns[i] &= ~MIGRATE_PFN_MIGRATE;
			/* Finalize counts a page; an empty source is gone then. */
			if (!page && newpage)
				mdev_skip(mdev_entry_addr(m, i), 0,
					  mdev_nr_pages(src_pfns[i]),
					  HMM_SKIP_ALLOC);
			continue;
		}
		if (!page) {
			has_empty = true;
			continue;
		}
		if (!mdev_move_page(m, page, newpage))
			src_pfns[i] = (src_pfns[i] & ~MIGRATE_PFN_MIGRATE) |
				      MDEV_PFN_BUSY;
	}

	if (!has_empty)
		return;
	if (WARN_ON_ONCE(!m->args)) {
		/* Only a walk produces empty sources. */
		for (i = 0; i < m->npages; i++) {
			if (src_pfns[i] & MIGRATE_PFN_VALID)
				continue;
			/* Collected above if it had a page: not moving. */
			if ((src_pfns[i] & MIGRATE_PFN_MIGRATE) && dst_pfns[i])
				mdev_skip(0, 0, mdev_nr_pages(src_pfns[i]),
					  HMM_SKIP_ALLOC);
			src_pfns[i] &= ~MIGRATE_PFN_MIGRATE;
		}
		return;
	}
	mdev_insert_empty(m->args);
}

/*
 * Release a folio we hold locked and referenced. Only a folio that stays
 * in use goes back to the LRU: a loser (a source that moved, a destination
 * that was not used) has given its memcg away or never had one, and our
 * reference may be its last.
 */
static void mdev_release(struct folio *folio, bool in_use)
{
	folio_unlock(folio);
	if (in_use && !folio_is_zone_device(folio))
		folio_putback_lru(folio);
	else
		folio_put(folio);
}

/* The page that stays mapped at entry @i: the destination if it moved. */
static struct page *mdev_winner(unsigned long src, unsigned long dst)
{
	if ((src & MIGRATE_PFN_MIGRATE) && (dst & MIGRATE_PFN_VALID))
		return migrate_pfn_to_page(dst);
	return migrate_pfn_to_page(src);
}

/*
 * The mapping of @page that replaces the migration entry @old: a
 * device-private entry or a present PTE, with the write permission, the
 * accessed and dirty state and the soft-dirty and uffd-wp bits that the
 * migration entry kept.
 */
static pte_t mdev_winner_pte(struct vm_area_struct *vma, struct page *page,
			     pte_t old)
{
	swp_entry_t entry = pte_to_swp_entry(old);
	bool writable = is_writable_migration_entry(entry);
	pte_t pte;

	if (is_device_private_page(page))
		return hmm_devp_mkpte(page, writable, old);

	pte = mk_pte(page, READ_ONCE(vma->vm_page_prot));
	if (!is_migration_entry_young(entry))
		pte = pte_mkold(pte);
	if (is_migration_entry_dirty(entry) && folio_test_dirty(page_folio(page)))
		pte = pte_mkdirty(pte);
	pte = pte_swp_soft_dirty(old) ? pte_mksoft_dirty(pte) :
					pte_clear_soft_dirty(pte);
	if (writable)
		return pte_mkwrite(pte, vma);
	return pte_swp_uffd_wp(old) ? pte_mkuffd_wp(pte) : pte;
}

/*
 * Map the winners of the entries [first, last] of @args again, all in the
 * PTE table under @pmdp: each slot that still holds the migration entry of
 * its source (an madvise() may have zapped it meanwhile) gets a mapping of
 * the winner, which takes a reference and an rmap of its own.
 */
static void mdev_remap_table(struct migrate_vma *args, pmd_t *pmdp,
			     unsigned long first, unsigned long last)
{
	struct vm_area_struct *vma = args->vma;
	unsigned long addr = mdev_addr(args, first);
	spinlock_t *ptl;	/* the page-table lock */
	pte_t *table, *ptep;
	unsigned long i;

	table = pte_offset_map_lock(vma->vm_mm, pmdp, addr, &ptl);
	if (!table)
		return;		/* no PTE table: nothing left to map again */
	for (i = first, ptep = table; i <= last;
	     i++, ptep++, addr += PAGE_SIZE) {
		struct page *page = migrate_pfn_to_page(args->src[i]);
		pte_t old = ptep_get(ptep);
		struct folio *folio;
		swp_entry_t entry;

		/* A page mapped elsewhere too is finalize's rmap walk's. */
		if (!page || (args->src[i] & MDEV_PFN_ELSEWHERE) ||
		    !is_swap_pte(old))
			continue;
		entry = pte_to_swp_entry(old);
		if (!is_migration_entry(entry) ||
		    swp_offset_pfn(entry) != page_to_pfn(page))
			continue;
		page = mdev_winner(args->src[i], args->dst[i]);
		folio = page_folio(page);
		folio_get(folio);
		folio_add_anon_rmap_pte(folio, page, vma, addr,
					is_readable_migration_entry(entry) ?
					RMAP_NONE : RMAP_EXCLUSIVE);
		set_pte_at(vma->vm_mm, addr, ptep,
			   mdev_winner_pte(vma, page, old));
		update_mmu_cache(vma, addr, ptep);
	}
	pte_unmap_unlock(table, ptl);
}

/*
 * Finalize's fast path for every page whose migration entries are all in
 * the walked range (no MDEV_PFN_ELSEWHERE): one pass over the range's PTE
 * tables maps their winners again. Only anonymous pages are collected, so
 * every winner is an anonymous folio.
 */
static void mdev_remap_range(struct migrate_vma *args)
{
	unsigned long i = 0, last;

	mmap_assert_locked(args->vma->vm_mm);
	while (i < args->npages) {
		unsigned long addr = mdev_addr(args, i);
		unsigned long table_end = pmd_addr_end(addr, args->end);
		pmd_t *pmdp;

		last = i + ((table_end - addr) >> PAGE_SHIFT) - 1;
		/* A compound entry's PMD is mapped again through the rmap. */
		if (args->src[i] & MIGRATE_PFN_COMPOUND) {
			i = last + 1;
			continue;
		}
		pmdp = mm_find_pmd(args->vma->vm_mm, addr);
		if (pmdp)
			mdev_remap_table(args, pmdp, i, last);
		i = last + 1;
	}
	if (READ_ONCE(args->vma->vm_flags) & VM_LOCKED)
		mlock_drain_local();
}

/*
 * The finalize step of both interfaces: map the winner of each entry,
 * unlock and release both pages. On a range, mdev_remap_range() has
 * mapped every page not marked MDEV_PFN_ELSEWHERE already.
 */
static void mdev_finalize(struct mdev_migration *m)
{
	bool remapped = m->args;
	unsigned long i;

	if (hmm_trace_entries_enabled())
		mdev_trace_entries(m);
	for (i = 0; i < m->npages; i++) {
		struct page *newpage = migrate_pfn_to_page(m->dst[i]);
		struct page *page = migrate_pfn_to_page(m->src[i]);
		struct folio *dst = newpage ? page_folio(newpage) : NULL;
		struct folio *src = page ? page_folio(page) : NULL;
		bool moved = dst && (m->src[i] & MIGRATE_PFN_MIGRATE);

		mdev_count_entry(m, i, src, dst, moved);
		if (!src) {
			/* An empty source: the mapping has its own ref. */
			if (dst)
				mdev_release(dst, false);
			continue;
		}
		if (!remapped ||
		    (m->src[i] & (MDEV_PFN_ELSEWHERE | MIGRATE_PFN_COMPOUND)))
			remove_migration_ptes(src, moved ? dst : src, 0);
		if (src == m->fault_folio)
			folio_put(src);	/* a device page; its caller unlocks it */
		else
			mdev_release(src, !moved);
		if (dst)
			mdev_release(dst, moved);
	}
}

/**
 * migrate_vma_pages() - commit the migration of each page
 * @migrate: the migration, as migrate_vma_setup() left it, with @dst filled
 *
 * For each entry of @src still marked MIGRATE_PFN_MIGRATE that has a
 * destination in @dst, moves the source's state (anonymous mapping, flags,
 * memcg) to the destination; for an empty source, maps the destination
 * in the empty slot. An entry that cannot be committed (no destination,
 * the slot is no longer empty, a reference appeared) loses
 * MIGRATE_PFN_MIGRATE. Afterwards MIGRATE_PFN_MIGRATE in @src says which
 * pages moved. Both pages stay locked until migrate_vma_finalize(), so the
 * driver may update its own page table in between.
 *
 * Context: process context, may sleep; the mmap_lock held since
 * migrate_vma_setup().
 */
void migrate_vma_pages(struct migrate_vma *migrate)
{
	struct mdev_migration m = mdev_migration_of(migrate);

	mmap_assert_locked(migrate->vma->vm_mm);
	mdev_pages(&m);
	mdev_trace_commit(hmm_migrate_vma_pages, &m);
}
EXPORT_SYMBOL(migrate_vma_pages);

/**
 * migrate_vma_finalize() - end a migration of a virtual range
 * @migrate: the migration after migrate_vma_pages()
 *
 * Points the CPU page table at the destination of every page that moved
 * and back at the source of every other one, unlocks all pages and drops
 * all references; see migrate_device_finalize().
 *
 * Context: process context, may sleep; the mmap_lock held since
 * migrate_vma_setup(), which the caller may release afterwards.
 */
void migrate_vma_finalize(struct migrate_vma *migrate)
{
	struct mdev_migration m = mdev_migration_of(migrate);

	mdev_remap_range(migrate);
	mdev_finalize(&m);
	mdev_trace_commit(hmm_migrate_vma_finalize, &m);
}
EXPORT_SYMBOL(migrate_vma_finalize);

/*
 * Reference and lock the page at @pfn if it is in use and not locked by
 * anyone else; its src word (0 if not). A PMD-sized folio is one compound
 * entry if its frames all fit in @room, the entries from this one on that
 * name its frames in order; a larger one, or one that does not fit, is
 * left alone (a large folio moves whole).
 */
static unsigned long mdev_grab_pfn(unsigned long pfn, unsigned long room)
{
	struct folio *folio = folio_get_nontail_page(pfn_to_page(pfn));
	unsigned long flags = MIGRATE_PFN_MIGRATE;

	if (!folio)
		return 0;
	if (folio_test_large(folio)) {
		if (!thp_migration_supported() ||
		    folio_order(folio) != MDEV_PMD_ORDER || room < MDEV_PMD_NR)
			goto skip;
		flags |= MIGRATE_PFN_COMPOUND;
	}
	if (folio_trylock(folio))
		return migrate_pfn(pfn) | flags;
	mdev_skip(0, pfn, mdev_nr_pages(flags), HMM_SKIP_LOCKED);
skip:
	folio_put(folio);
	return 0;
}

/**
 * migrate_device_range() - collect device pages by frame number
 * @src_pfns: output, one migrate pfn per page
 * @start: first page frame number, of device memory
 * @npages: number of page frames
 *
 * Like migrate_vma_setup(), but for device memory itself, wherever it is
 * mapped: each page frame in use that can be locked without waiting is
 * locked, referenced and unmapped, and gets MIGRATE_PFN_MIGRATE. Free
 * pages and pages that cannot move get 0; a driver that must empty its
 * memory calls this again for what is left. A PMD-sized folio is one
 * MIGRATE_PFN_COMPOUND entry at its first frame (its other frames get 0)
 * when all its frames are in the range, and is left alone otherwise.
 * Continue with migrate_device_pages() and migrate_device_finalize().
 *
 * Context: process context, may sleep; no mmap_lock needed.
 * Return: 0.
 */
int migrate_device_range(unsigned long *src_pfns, unsigned long start,
			 unsigned long npages)
{
	struct mdev_migration m = mdev_migration_of_pfns(src_pfns, NULL,
							 npages);
	unsigned long i;

	for (i = 0; i < npages; i++)
		src_pfns[i] = mdev_grab_pfn(start + i, npages - i);
	mdev_unmap(&m, true);
	if (trace_hmm_migrate_device_range_enabled()) {
		struct mdev_summary s = mdev_summary_of(&m);

		trace_hmm_migrate_device_range(start, npages, s.pages, s.thp);
	}
	return 0;
}
EXPORT_SYMBOL(migrate_device_range);

/*
 * How many entries of @pfns, from @i on, name the frames from pfns[@i] on
 * in order: the room a large folio at pfns[@i] has in the list. Only
 * looked at up to a PMD-sized folio's worth.
 */
static unsigned long mdev_pfn_run(const unsigned long *pfns, unsigned long i,
				  unsigned long npages)
{
	unsigned long n = 1;

	while (n < MDEV_PMD_NR && i + n < npages && pfns[i + n] == pfns[i] + n)
		n++;
	return n;
}

/**
 * migrate_device_pfns() - collect device pages by a list of frame numbers
 * @src_pfns: input, page frame numbers of device memory, in any order;
 *            output, one migrate pfn per entry
 * @npages: number of entries
 *
 * migrate_device_range() for pages that are not one range: a driver that
 * evicts the pages of one user, scattered through its memory, names them
 * all in one call. Each entry is collected as migrate_device_range() would
 * collect its frame. A PMD-sized folio is one MIGRATE_PFN_COMPOUND entry
 * where the list names its first frame followed by all its other frames
 * in order (those entries get 0); a large folio listed in any other way is
 * left alone, as is a frame listed twice the second time (it is locked
 * already). Continue with migrate_device_pages() and
 * migrate_device_finalize() on the same array.
 *
 * Context: process context, may sleep; no mmap_lock needed.
 * Return: 0.
 */
int migrate_device_pfns(unsigned long *src_pfns, unsigned long npages)
{
	struct mdev_migration m = mdev_migration_of_pfns(src_pfns, NULL,
							 npages);
	unsigned long first = npages ? src_pfns[0] : 0;
	unsigned long i;

	/*
	 * Each entry is read before it is written, and so is the run ahead of
	 * it, measured only for a frame that looks large (racy: a wrong guess
	 * costs a skip, or a wasted measure).
	 */
	for (i = 0; i < npages; i++) {
		unsigned long room = 1;

		if (PageCompound(pfn_to_page(src_pfns[i])))
			room = mdev_pfn_run(src_pfns, i, npages);
		src_pfns[i] = mdev_grab_pfn(src_pfns[i], room);
	}
	mdev_unmap(&m, true);
	if (trace_hmm_migrate_device_pfns_enabled()) {
		struct mdev_summary s = mdev_summary_of(&m);

		trace_hmm_migrate_device_pfns(first, npages, s.pages, s.thp);
	}
	return 0;
}
EXPORT_SYMBOL(migrate_device_pfns);

/**
 * migrate_device_pages() - commit the migration of device pages
 * @src_pfns: the array migrate_device_range() or migrate_device_pfns() filled
 * @dst_pfns: destinations, locked pages the caller holds a reference on
 * @npages: number of entries
 *
 * The counterpart of migrate_vma_pages() for migrate_device_range() and
 * migrate_device_pfns().
 *
 * Context: process context, may sleep.
 */
void migrate_device_pages(unsigned long *src_pfns, unsigned long *dst_pfns,
			  unsigned long npages)
{
	struct mdev_migration m = mdev_migration_of_pfns(src_pfns, dst_pfns,
							 npages);

	mdev_pages(&m);
	mdev_trace_commit(hmm_migrate_device_pages, &m);
}
EXPORT_SYMBOL(migrate_device_pages);

/**
 * migrate_device_finalize() - end a migration of device pages
 * @src_pfns: the source array after migrate_device_pages()
 * @dst_pfns: the destination array
 * @npages: number of entries
 *
 * Replaces each migration entry by a mapping of the destination if the
 * page moved and of the source otherwise, then unlocks every source and
 * destination and drops the references migration and the caller held on
 * them. The caller's copy must be complete and visible to the CPU.
 *
 * Context: process context, may sleep.
 */
void migrate_device_finalize(unsigned long *src_pfns,
			     unsigned long *dst_pfns, unsigned long npages)
{
	struct mdev_migration m = mdev_migration_of_pfns(src_pfns, dst_pfns,
							 npages);

	mdev_finalize(&m);
	mdev_trace_commit(hmm_migrate_device_finalize, &m);
}
EXPORT_SYMBOL(migrate_device_finalize);

/*
 * Move a device-coherent folio to system memory, for GUP's long-term pins.
 * Consumes the caller's reference on @folio. Returns 0 or -EBUSY.
 */
int migrate_device_coherent_folio(struct folio *folio)
{
	struct folio *copy = folio_alloc(GFP_USER | __GFP_NOWARN, 0);
	unsigned long src, dst;
	struct mdev_migration m = mdev_migration_of_pfns(&src, &dst, 1);
	int ret = -EBUSY;

	WARN_ON_ONCE(folio_test_large(folio));
	if (!copy) {
		folio_put(folio);
		return ret;
	}
	folio_lock(folio);
	src = migrate_pfn(folio_pfn(folio)) | MIGRATE_PFN_MIGRATE;
	if (!mdev_unmap(&m, true)) {
		/* Given up on: unlocked and released already. */
		folio_put(copy);
		return ret;
	}
	folio_lock(copy);
	dst = migrate_pfn(folio_pfn(copy));
	mdev_pages(&m);
	if (src & MIGRATE_PFN_MIGRATE) {
		folio_copy(copy, folio);
		ret = 0;
	}
	mdev_finalize(&m);
	return ret;
}
