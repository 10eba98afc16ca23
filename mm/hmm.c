// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * hmm_range_fault(): copy a range of a process's CPU page tables into a
 * device driver's array, faulting in what the driver asks for.
 *
 * The model
 * ---------
 * The output is a read-only snapshot. Nothing here pins pages or blocks the
 * CPU side from changing the page tables: the walk holds the mmap lock for
 * read (so VMAs stay put) and takes page-table locks only where the kernel
 * requires them to read a huge entry. Whether the snapshot is still true is
 * the business of the caller's mmu_interval_notifier: every invalidation of
 * the range bumps its sequence count, the walk gives up with -EBUSY the
 * moment it sees the count moved, and the driver checks the count once more
 * under its own page-table lock before it uses a single word of the output.
 *
 * Per page the driver asks for one of three things, the "request": nothing
 * (report what is there), a valid mapping (HMM_PFN_REQ_FAULT) or a writable
 * one (HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE). The request of page i is
 * default_flags | (hmm_pfns[i] & pfn_flags_mask). Each page-table entry
 * "offers" a state: not valid, valid read-only, valid writable. Where the
 * offer meets the request the entry is reported. Where it does not, the walk
 * stops, faults the run of pages that fall short with handle_mm_fault(), and
 * starts again at the first of them, so every word of the output comes from
 * a reading of the page table made after the last fault.
 *
 * The walk
 * --------
 * walk_page_range() calls one function of ours per level: hmm_walk_pud() and
 * hmm_walk_pmd() report huge leaves whole and hand PTE tables to
 * hmm_walk_ptes(); hmm_walk_hugetlb() reports hugetlbfs entries;
 * hmm_walk_hole() covers what has no page table or no VMA;
 * hmm_walk_vma_check() turns away VMAs that cannot be mirrored. The decision
 * for one entry (report, fault, wait for a migration, or fail) is made in
 * hmm_pte_verdict() for PTEs and, for everything that offers one state for
 * many pages, by hmm_span_shortfall() against that state. A callback returns
 * -EBUSY to ask for a new pass, after a fault or a wait, from
 * hmm_walk.resume.
 *
 * Each call ends with the hmm_range_fault tracepoint: its passes and the
 * pages it faulted.
 *
 * Fast paths: a snapshot (no request bit anywhere) never evaluates a
 * request; with pfn_flags_mask == 0 the request is computed once per call,
 * not per page; spans that share a state are written by one tight loop.
 */
#include <linux/dma-map-ops.h>
#include <linux/hmm.h>
#include <linux/hmm-dma.h>
#include <linux/hugetlb.h>
#include <linux/memremap.h>
#include <linux/mm.h>
#include <linux/mmu_notifier.h>
#include <linux/pagewalk.h>
#include <linux/scatterlist.h>
#include <linux/swapops.h>
#include <linux/swiotlb.h>
#include <linux/userfaultfd_k.h>

#include <trace/events/hmm.h>

#include "hmm_entry.h"
#include "hmm_migrate.h"

/* State of one hmm_range_fault() call, shared by the walk callbacks. */
struct hmm_walk {
	struct hmm_range *range;
	unsigned long resume;		/* where the next pass starts */
	unsigned long common_req;	/* the request when it is per call */
	bool may_fault;			/* can any page request a fault? */
	bool per_page_req;		/* must each page's input be read? */
	unsigned long faults;		/* pages handed to handle_mm_fault() */
	unsigned int passes;		/* walks of the range so far */
	/* HMM_PFN_REQ_MIGRATE: the migration each reported span goes to. */
	struct migrate_vma *migrate;
	/* Empty addresses are the migration's empty sources: no fault. */
	bool empty_is_source;
	/* Something is collected (locked, unmapped) right now. */
	bool collected;
	/* Collect nothing until a pass ends without blocking. */
	bool defer_collect;
};

/* What a page needs before it can be reported. */
enum hmm_need {
	HMM_NEED_NOTHING,
	HMM_NEED_FAULT,		/* a valid mapping */
	HMM_NEED_WRITE_FAULT,	/* a writable mapping */
};

/* What hmm_pte_verdict() decided for one PTE. */
enum hmm_verdict {
	HMM_REPORTED,		/* the output word is written */
	HMM_FAULT,		/* the CPU must fault the page in first */
	HMM_WAIT_MIGRATION,	/* wait for the migration, then look again */
	HMM_CANNOT_MIRROR,	/* asked for, but nothing can make it valid */
};

#define HMM_REQ_BITS	(HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE)

/*
 * The bits of each word that record how the DMA helpers mapped the entry
 * (hmm_dma_map_pfn() below): the walk carries them from input to output.
 */
#define HMM_PFN_KEPT	(HMM_PFN_DMA_MAPPED | HMM_PFN_P2PDMA | HMM_PFN_P2PDMA_BUS)

/* Write the result @value to the output word @out, keeping its DMA state. */
static inline void hmm_set(unsigned long *out, unsigned long value)
{
	*out = (*out & HMM_PFN_KEPT) | value;
}

static unsigned long *hmm_out(struct hmm_walk *w, unsigned long addr)
{
	return &w->range->hmm_pfns[(addr - w->range->start) >> PAGE_SHIFT];
}

static unsigned long hmm_order_bits(unsigned int order)
{
	return (unsigned long)order << HMM_PFN_ORDER_SHIFT;
}

/* The request of the page whose input word is @in. */
static unsigned long hmm_request(const struct hmm_walk *w, unsigned long in)
{
	if (!w->per_page_req)
		return w->common_req;
	return ((in & w->range->pfn_flags_mask) | w->range->default_flags) &
	       HMM_REQ_BITS;
}

/* How far the state @offer (output flags) falls short of request @req. */
static enum hmm_need hmm_shortfall(unsigned long req, unsigned long offer)
{
	if (!(req & HMM_PFN_REQ_FAULT))
		return HMM_NEED_NOTHING;
	if ((req & HMM_PFN_REQ_WRITE) && !(offer & HMM_PFN_WRITE))
		return HMM_NEED_WRITE_FAULT;
	if (!(offer & HMM_PFN_VALID))
		return HMM_NEED_FAULT;
	return HMM_NEED_NOTHING;
}

/* The largest shortfall of the pages of [addr, end) against one @offer. */
static noinline enum hmm_need
hmm_span_shortfall_per_page(struct hmm_walk *w, unsigned long addr,
			    unsigned long end, unsigned long offer)
{
	unsigned long *in = hmm_out(w, addr);
	unsigned long i, npages = (end - addr) >> PAGE_SHIFT;
	enum hmm_need need = HMM_NEED_NOTHING;

	for (i = 0; i < npages && need != HMM_NEED_WRITE_FAULT; i++)
		need = max(need, hmm_shortfall(hmm_request(w, in[i]), offer));
	return need;
}

/* Inline: a snapshot, or one request for all pages, needs no loop. */
static __always_inline enum hmm_need
hmm_span_shortfall(struct hmm_walk *w, unsigned long addr, unsigned long end,
		   unsigned long offer)
{
	if (!w->may_fault)
		return HMM_NEED_NOTHING;
	if (!w->per_page_req)
		return hmm_shortfall(w->common_req, offer);
	return hmm_span_shortfall_per_page(w, addr, end, offer);
}

/* Write @value to every output word of [addr, end). */
static void hmm_fill(struct hmm_walk *w, unsigned long addr, unsigned long end,
		     unsigned long value)
{
	unsigned long *out = hmm_out(w, addr);
	unsigned long i, npages = (end - addr) >> PAGE_SHIFT;

	for (i = 0; i < npages; i++)
		hmm_set(&out[i], value);
}

/*
 * Write consecutive pfns from @first, each with @flags, over [addr, end).
 * A huge leaf's 512 words are the bulk of a snapshot of THPs, and each is
 * a read-modify-write (hmm_set()): four to a turn of the loop, so the
 * loop's own cost is paid once per four words.
 */
static void hmm_fill_pfns(struct hmm_walk *w, unsigned long addr,
			  unsigned long end, unsigned long first,
			  unsigned long flags)
{
	unsigned long *out = hmm_out(w, addr);
	unsigned long i = 0, npages = (end - addr) >> PAGE_SHIFT;
	unsigned long word = first | flags;

	for (; i + 4 <= npages; i += 4, out += 4, word += 4) {
		hmm_set(&out[0], word);
		hmm_set(&out[1], word + 1);
		hmm_set(&out[2], word + 2);
		hmm_set(&out[3], word + 3);
	}
	for (; i < npages; i++)
		hmm_set(out++, word++);
}

/*
 * The walk is about to sleep on something it does not own: a fault, or a
 * page under migration. The pages it has collected are locked, and holding
 * them across that sleep could deadlock with another walker that holds
 * what we wait for and waits for what we hold (or keep a CPU thread that
 * touches one of them waiting through swap-in). So nothing collected is
 * held across a sleep: it is all put back, and the range is collected
 * whole by one more pass once a pass needs no fault (hmm_walk_range()).
 * The common case, a range present as asked, still takes one walk.
 */
static void hmm_release_collected(struct hmm_walk *w)
{
	if (!w->migrate)
		return;
	w->defer_collect = true;
	if (w->collected) {
		mdev_walk_abort(w->migrate, false);
		w->collected = false;
	}
}

/*
 * Fault in the pages of [addr, end) that fall short of their request, each
 * for write only if its own request asks for write, then ask for a new pass
 * from @addr. The mmap lock stays held: no FAULT_FLAG_ALLOW_RETRY.
 */
static int hmm_fault_span(struct hmm_walk *w, struct vm_area_struct *vma,
			  unsigned long addr, unsigned long end,
			  unsigned long offer)
{
	unsigned long *in = hmm_out(w, addr);
	enum hmm_need need = hmm_shortfall(w->common_req, offer);
	unsigned int flags = 0;

	hmm_release_collected(w);
	w->resume = addr;
	for (; addr < end; addr += PAGE_SIZE, in++) {
		/* With one request for all pages, need and flags are known. */
		if (w->per_page_req || !flags) {
			if (w->per_page_req)
				need = hmm_shortfall(hmm_request(w, *in), offer);
			if (need == HMM_NEED_NOTHING)
				continue;
			flags = FAULT_FLAG_REMOTE;
			if (need == HMM_NEED_WRITE_FAULT) {
				if (!(vma->vm_flags & VM_WRITE))
					return -EPERM;
				flags |= FAULT_FLAG_WRITE;
			}
		}
		w->faults++;
		if (handle_mm_fault(vma, addr, flags, NULL) & VM_FAULT_ERROR)
			return -EFAULT;
	}
	return -EBUSY;
}

/* Report [addr, end) in state @offer, from frame @pfn when it is valid. */
static void hmm_write_span(struct hmm_walk *w, unsigned long addr,
			   unsigned long end, unsigned long pfn,
			   unsigned long offer)
{
	if (offer & HMM_PFN_VALID)
		hmm_fill_pfns(w, addr, end, pfn, offer);
	else
		hmm_fill(w, addr, end, 0);
}

/*
 * The decision for a span that offers one state for all its pages (a hole,
 * a huge leaf): fault what falls short, otherwise report. Inline: every
 * huge leaf of a snapshot comes through here.
 */
static __always_inline int
hmm_report_span(struct hmm_walk *w, struct vm_area_struct *vma,
		unsigned long addr, unsigned long end, unsigned long pfn,
		unsigned long offer)
{
	if (hmm_span_shortfall(w, addr, end, offer) != HMM_NEED_NOTHING)
		return hmm_fault_span(w, vma, addr, end, offer);
	hmm_write_span(w, addr, end, pfn, offer);
	return 0;
}

/* A span that cannot be mirrored: HMM_PFN_ERROR, or -EFAULT if asked for. */
static int hmm_report_unusable(struct hmm_walk *w, unsigned long addr,
			       unsigned long end)
{
	if (hmm_span_shortfall(w, addr, end, 0) != HMM_NEED_NOTHING)
		return -EFAULT;
	hmm_fill(w, addr, end, HMM_PFN_ERROR);
	return 0;
}

static __always_inline unsigned long hmm_pte_offer(pte_t pte)
{
	if (!pte_present(pte) || pte_protnone(pte))
		return 0;
	return HMM_PFN_VALID | (pte_write(pte) ? HMM_PFN_WRITE : 0);
}

/* The decision for a non-present PTE that is not empty nor a marker. */
static enum hmm_verdict hmm_swap_verdict(struct hmm_walk *w, pte_t pte,
					 unsigned long req, unsigned long *out)
{
	swp_entry_t entry = pte_to_swp_entry(pte);
	struct hmm_devp devp = hmm_devp_from_swp(entry);

	/* The caller's own device memory: report it where it is. */
	if (devp.page &&
	    page_pgmap(devp.page)->owner == w->range->dev_private_owner) {
		hmm_set(out, page_to_pfn(devp.page) | HMM_PFN_VALID |
			(devp.writable ? HMM_PFN_WRITE : 0));
		return HMM_REPORTED;
	}
	if (hmm_shortfall(req, 0) == HMM_NEED_NOTHING) {
		hmm_set(out, 0);
		return HMM_REPORTED;
	}
	/*
	 * Swapped out, another owner's device memory, device-exclusive: a CPU
	 * fault brings each of them back to a normal mapping.
	 */
	if (!non_swap_entry(entry) || devp.page ||
	    is_device_exclusive_entry(entry))
		return HMM_FAULT;
	if (is_migration_entry(entry))
		return HMM_WAIT_MIGRATION;
	return HMM_CANNOT_MIRROR;	/* hwpoison, ... */
}

/* The decision for one PTE: the single place where a PTE is judged. */
static __always_inline enum hmm_verdict
hmm_pte_verdict(struct hmm_walk *w, struct vm_area_struct *vma,
		unsigned long addr, pte_t pte, unsigned long *out)
{
	unsigned long req = w->may_fault ? hmm_request(w, *out) : 0;
	unsigned long offer;

	/*
	 * Empty, or empty but for a marker (uffd-wp on a page that was never
	 * populated or was zapped): the fault path handles both.
	 */
	if (pte_none_mostly(pte)) {
		if (hmm_shortfall(req, 0) != HMM_NEED_NOTHING &&
		    !(w->empty_is_source && pte_none(pte)))
			return HMM_FAULT;
		hmm_set(out, 0);
		return HMM_REPORTED;
	}
	if (!pte_present(pte))
		return hmm_swap_verdict(w, pte, req, out);

	offer = hmm_pte_offer(pte);
	if (hmm_shortfall(req, offer) != HMM_NEED_NOTHING)
		return HMM_FAULT;
	/*
	 * A special PTE may still have a struct page a device can use: the
	 * zero page, and ZONE_DEVICE pages of DAX (fsdax, device-dax) mapped
	 * at 4 KiB, which are devmap and which vm_normal_page() does not
	 * resolve. Only a special PTE that is neither has none. Without
	 * pte_special() (some 32-bit architectures) vm_normal_page() has the
	 * last word on every PTE.
	 */
	if (unlikely(pte_special(pte) ||
		     !IS_ENABLED(CONFIG_ARCH_HAS_PTE_SPECIAL)) &&
	    !pte_devmap(pte) && !is_zero_pfn(pte_pfn(pte)) &&
	    !vm_normal_page(vma, addr, pte)) {
		if (req & HMM_PFN_REQ_FAULT)
			return HMM_CANNOT_MIRROR;
		hmm_set(out, HMM_PFN_ERROR);
		return HMM_REPORTED;
	}
	hmm_set(out, offer ? pte_pfn(pte) | offer : 0);
	return HMM_REPORTED;
}

/*
 * One PTE table. Entries are judged in order; at the first that needs a
 * fault, the run of entries that all need one is faulted together, so a
 * partly populated range costs one new pass per run rather than per page.
 */
static int hmm_walk_ptes(struct hmm_walk *w, struct mm_walk *walk,
			 pmd_t *pmdp, unsigned long start, unsigned long end)
{
	unsigned long *out = hmm_out(w, start);
	unsigned long addr = start, run_end;
	enum hmm_verdict verdict = HMM_REPORTED;
	pte_t *table, *ptep;

	table = pte_offset_map(pmdp, start);
	if (!table) {
		walk->action = ACTION_AGAIN;	/* the table went away */
		return 0;
	}
	for (ptep = table; addr < end; addr += PAGE_SIZE, ptep++, out++) {
		verdict = hmm_pte_verdict(w, walk->vma, addr, ptep_get(ptep),
					  out);
		if (verdict != HMM_REPORTED)
			break;
	}
	run_end = addr + PAGE_SIZE;
	if (verdict == HMM_FAULT) {
		for (ptep++, out++; run_end < end; run_end += PAGE_SIZE) {
			pte_t pte = ptep_get(ptep);
			unsigned long saved = *out;

			/*
			 * An empty entry needs the fault the first one did
			 * when all pages make the same request: the common
			 * case of a range never touched, judged without a
			 * call.
			 */
			if (!(pte_none(pte) && !w->per_page_req &&
			      !w->empty_is_source) &&
			    hmm_pte_verdict(w, walk->vma, run_end, pte,
					    out) != HMM_FAULT) {
				*out = saved;	/* judged again next pass */
				break;
			}
			ptep++;
			out++;
		}
	}
	pte_unmap(table);

	switch (verdict) {
	case HMM_REPORTED:
		return 0;
	case HMM_FAULT:
		/* Present but short entries are faulted as "not valid". */
		return hmm_fault_span(w, walk->vma, addr, run_end, 0);
	case HMM_WAIT_MIGRATION:
		hmm_release_collected(w);
		w->resume = addr;
		migration_entry_wait(walk->mm, pmdp, addr);
		return -EBUSY;
	case HMM_CANNOT_MIRROR:
	default:
		return -EFAULT;
	}
}

static int hmm_walk_hole(unsigned long addr, unsigned long end,
			 __always_unused int depth, struct mm_walk *walk)
{
	struct hmm_walk *w = walk->private;

	if (!walk->vma)
		return hmm_report_unusable(w, addr, end);
	if (w->empty_is_source) {
		hmm_fill(w, addr, end, 0);
		return 0;
	}
	return hmm_report_span(w, walk->vma, addr, end, 0, 0);
}

static unsigned long hmm_leaf_offer(bool writable, unsigned int order)
{
	return HMM_PFN_VALID | (writable ? HMM_PFN_WRITE : 0) |
	       hmm_order_bits(order);
}

/*
 * A PMD that is not present. One that maps a large device-private folio of
 * the caller's is reported where it is, as one entry of the folio's order
 * (as hmm_swap_verdict() reports a page); anyone else's comes back to
 * system memory by a CPU fault if asked for. A THP under migration is
 * waited for if any of its pages is asked for; anything else cannot be
 * mirrored.
 */
static int hmm_walk_pmd_nonpresent(struct hmm_walk *w, struct mm_walk *walk,
				   pmd_t *pmdp, pmd_t pmd, unsigned long start,
				   unsigned long end)
{
	struct hmm_devp devp = hmm_devp_from_pmd(pmd);

	if (devp.page) {
		unsigned long pfn = page_to_pfn(devp.page) +
				    ((start & ~PMD_MASK) >> PAGE_SHIFT);

		if (page_pgmap(devp.page)->owner != w->range->dev_private_owner)
			return hmm_report_span(w, walk->vma, start, end, 0, 0);
		hmm_write_span(w, start, end, pfn,
			       hmm_leaf_offer(devp.writable,
					      PMD_SHIFT - PAGE_SHIFT));
		return 0;
	}
	if (!thp_migration_supported() || !is_pmd_migration_entry(pmd))
		return hmm_report_unusable(w, start, end);
	if (hmm_span_shortfall(w, start, end, 0) == HMM_NEED_NOTHING) {
		hmm_fill(w, start, end, 0);
		return 0;
	}
	hmm_release_collected(w);
	w->resume = start;
	pmd_migration_entry_wait(walk->mm, pmdp);
	return -EBUSY;
}

/*
 * A huge PMD leaf, read without its lock. It may be in the middle of a
 * split: read it once more, and if it is no longer a leaf start a new pass
 * here (rare) rather than report a table as a leaf.
 */
static int hmm_walk_pmd_leaf(struct hmm_walk *w, struct mm_walk *walk,
			     pmd_t *pmdp, unsigned long start,
			     unsigned long end)
{
	pmd_t pmd = pmdp_get_lockless(pmdp);
	unsigned long pfn;

	if (!pmd_trans_huge(pmd) && !pmd_devmap(pmd)) {
		w->resume = start;
		return -EBUSY;
	}
	if (pmd_protnone(pmd))
		return hmm_report_span(w, walk->vma, start, end, 0, 0);
	pfn = pmd_pfn(pmd) + ((start & ~PMD_MASK) >> PAGE_SHIFT);
	return hmm_report_span(w, walk->vma, start, end, pfn,
			       hmm_leaf_offer(pmd_write(pmd),
					      PMD_SHIFT - PAGE_SHIFT));
}

static int hmm_mirror_pmd(pmd_t *pmdp, unsigned long start,
			  unsigned long end, struct mm_walk *walk)
{
	struct hmm_walk *w = walk->private;
	pmd_t pmd = pmdp_get_lockless(pmdp);

	if (pmd_none(pmd))
		return hmm_walk_hole(start, end, -1, walk);
	if (!pmd_present(pmd))
		return hmm_walk_pmd_nonpresent(w, walk, pmdp, pmd, start, end);
	if (pmd_trans_huge(pmd) || pmd_devmap(pmd))
		return hmm_walk_pmd_leaf(w, walk, pmdp, start, end);
	if (pmd_bad(pmd))
		return hmm_report_unusable(w, start, end);
	return hmm_walk_ptes(w, walk, pmdp, start, end);
}

/*
 * After the mirror of a span, collect it: only a span mirrored whole in a
 * pass that has not slept. A span that ended in a fault or a wait turned
 * collection off for the pass (hmm_release_collected()); one the walker
 * is about to call us for again (ACTION_AGAIN) is collected then. Each
 * address is reported by one callback per pass, so none is collected
 * twice.
 */
static void hmm_collect_span(struct hmm_walk *w, struct mm_walk *walk,
			     pmd_t *pmdp, unsigned long start,
			     unsigned long end, int ret)
{
	if (ret || w->defer_collect || walk->action == ACTION_AGAIN)
		return;
	mdev_walk_collect(w->migrate, w->range->hmm_pfns, pmdp, start, end);
	w->collected = true;
}

static int hmm_walk_pmd(pmd_t *pmdp, unsigned long start, unsigned long end,
			struct mm_walk *walk)
{
	struct hmm_walk *w = walk->private;
	int ret = hmm_mirror_pmd(pmdp, start, end, walk);

	if (w->migrate)
		hmm_collect_span(w, walk, pmdp, start, end, ret);
	return ret;
}

/* A hole above the PMD level: no page table at all. */
static int hmm_walk_upper_hole(unsigned long addr, unsigned long end,
			       int depth, struct mm_walk *walk)
{
	struct hmm_walk *w = walk->private;
	int ret = hmm_walk_hole(addr, end, depth, walk);

	if (w->migrate && walk->vma)
		hmm_collect_span(w, walk, NULL, addr, end, ret);
	return ret;
}

#ifdef CONFIG_HUGETLB_PAGE
static int hmm_walk_hugetlb(pte_t *ptep, unsigned long hmask,
			    unsigned long start, unsigned long end,
			    struct mm_walk *walk)
{
	struct hmm_walk *w = walk->private;
	struct vm_area_struct *vma = walk->vma;
	struct hstate *h = hstate_vma(vma);
	unsigned long pfn = 0, offer;
	spinlock_t *ptl;		/* the leaf's page-table lock */
	pte_t entry;
	int ret;

	ptl = huge_pte_lock(h, walk->mm, ptep);
	entry = huge_ptep_get(walk->mm, start, ptep);
	offer = hmm_pte_offer(entry);
	if (offer) {
		offer |= hmm_order_bits(huge_page_order(h));
		pfn = pte_pfn(entry) + ((start & ~hmask) >> PAGE_SHIFT);
	}
	if (hmm_span_shortfall(w, start, end, offer) == HMM_NEED_NOTHING) {
		hmm_write_span(w, start, end, pfn, offer);
		spin_unlock(ptl);
		return 0;
	}
	spin_unlock(ptl);

	/*
	 * The page walk holds the hugetlb VMA lock for read, and the fault
	 * path takes it too: let go of it around the fault.
	 */
	hugetlb_vma_unlock_read(vma);
	ret = hmm_fault_span(w, vma, start, end, offer);
	hugetlb_vma_lock_read(vma);
	return ret;
}
#else
#define hmm_walk_hugetlb	NULL
#endif

#if defined(CONFIG_ARCH_HAS_PTE_DEVMAP) && \
	defined(CONFIG_HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD)
static int hmm_walk_pud(pud_t *pudp, unsigned long start, unsigned long end,
			struct mm_walk *walk)
{
	struct hmm_walk *w = walk->private;
	unsigned long pfn, offer;
	spinlock_t *ptl;		/* the leaf's page-table lock */
	pud_t pud;

	/* Only a huge leaf is ours; anything else is walked level by level. */
	ptl = pud_trans_huge_lock(pudp, walk->vma);
	if (!ptl)
		return 0;
	pud = READ_ONCE(*pudp);
	if (!pud_present(pud)) {
		spin_unlock(ptl);
		return hmm_walk_hole(start, end, -1, walk);
	}
	if (!pud_leaf(pud) || !pud_devmap(pud)) {
		spin_unlock(ptl);
		return 0;
	}
	offer = hmm_leaf_offer(pud_write(pud), PUD_SHIFT - PAGE_SHIFT);
	pfn = pud_pfn(pud) + ((start & ~PUD_MASK) >> PAGE_SHIFT);
	if (hmm_span_shortfall(w, start, end, offer) != HMM_NEED_NOTHING) {
		spin_unlock(ptl);
		return hmm_fault_span(w, walk->vma, start, end, offer);
	}
	hmm_fill_pfns(w, start, end, pfn, offer);
	spin_unlock(ptl);
	walk->action = ACTION_CONTINUE;	/* reported whole: do not split */
	return 0;
}
#else
#define hmm_walk_pud	NULL
#endif

/*
 * Whole VMAs that cannot be mirrored: no struct pages behind them
 * (VM_PFNMAP, VM_IO) or not readable by the CPU itself.
 */
static int hmm_walk_vma_check(unsigned long start, unsigned long end,
			      struct mm_walk *walk)
{
	struct vm_area_struct *vma = walk->vma;
	int ret;

	if (!(vma->vm_flags & (VM_IO | VM_PFNMAP)) &&
	    (vma->vm_flags & VM_READ))
		return 0;
	ret = hmm_report_unusable(walk->private, start, end);
	return ret ? ret : 1;	/* 1: skip this VMA */
}

/* In the order the walk meets them: per VMA, then level by level. */
static const struct mm_walk_ops hmm_walk_ops = {
	.walk_lock	= PGWALK_RDLOCK,
	.test_walk	= hmm_walk_vma_check,
	.pud_entry	= hmm_walk_pud,
	.pmd_entry	= hmm_walk_pmd,
	.hugetlb_entry	= hmm_walk_hugetlb,
	.pte_hole	= hmm_walk_upper_hole,
};

/*
 * Work out once per call what the walk would otherwise ask of every page:
 * whether any page can request a fault at all, and whether requests differ
 * from page to page.
 */
static void hmm_walk_begin(struct hmm_walk *w, struct hmm_range *range)
{
	unsigned long may = range->default_flags | range->pfn_flags_mask;

	w->range = range;
	w->resume = range->start;
	w->common_req = range->default_flags & HMM_REQ_BITS;
	w->may_fault = may & HMM_PFN_REQ_FAULT;
	w->per_page_req = range->pfn_flags_mask & HMM_REQ_BITS;
	w->faults = 0;
	w->passes = 0;
	w->migrate = NULL;
	w->empty_is_source = false;
	w->collected = false;
	w->defer_collect = false;
}

/*
 * HMM_PFN_REQ_MIGRATE: check and reset the migration, and decide whether
 * empty addresses need a fault. Where the migration collects system memory
 * in an anonymous VMA, an empty address is an empty source the driver
 * fills with a fresh page: faulting it in first (a zero page, or a page to
 * be copied) would only be work thrown away. Not so under userfaultfd,
 * whose missing-page faults belong to its handler.
 */
static int hmm_walk_begin_migrate(struct hmm_walk *w, struct hmm_range *range,
				  struct mm_struct *mm)
{
	struct migrate_vma *args = range->migrate;
	int ret;

	/* A driver's dst[] is its own; only the internal walk borrows it. */
	if (!args || !args->vma || args->vma->vm_mm != mm ||
	    (range->notifier && args->dst == range->hmm_pfns))
		return -EINVAL;
	ret = mdev_walk_begin(args, range);
	if (ret)
		return ret;
	w->migrate = args;
	w->empty_is_source = (args->flags & MIGRATE_VMA_SELECT_SYSTEM) &&
			     vma_is_anonymous(args->vma) &&
			     !userfaultfd_armed(args->vma);
	return 0;
}

/*
 * The hmm_range_fault tracepoint, out of line, cold and __noipa (see
 * mdev_skip() in mm/migrate_device.c) and called last, so that
 * hmm_walk_range() keeps nothing live for it across the walk: its result
 * is passed through, for a tail call.
 */
static __noipa __cold int hmm_trace_range_fault(struct hmm_range *range,
						unsigned int passes,
						unsigned long faults, int ret)
{
	trace_hmm_range_fault(range, passes, faults, ret);
	return ret;
}

/*
 * hmm_range_fault() on @mm, where @range->notifier may be NULL: then the
 * walk never gives up on its own, but stops for a fatal signal (-EINTR).
 */
static int hmm_walk_range(struct hmm_range *range, struct mm_struct *mm)
{
	struct hmm_walk w;
	int ret;

	hmm_walk_begin(&w, range);

	mmap_assert_locked(mm);
	/* Whatever fails below, migrate_hmm_range_setup() finds nothing. */
	if ((range->default_flags & HMM_PFN_REQ_MIGRATE) && range->migrate) {
		range->migrate->npages = 0;
		range->migrate->cpages = 0;
	}
	if (!PAGE_ALIGNED(range->start) || !PAGE_ALIGNED(range->end) ||
	    range->start >= range->end) {
		ret = -EINVAL;
		goto out;
	}
	if (range->default_flags & HMM_PFN_REQ_MIGRATE) {
		ret = hmm_walk_begin_migrate(&w, range, mm);
		if (ret)
			goto out;
	}

	/*
	 * A pass that faulted or waited ends in -EBUSY with w.resume set;
	 * each new pass first makes sure the snapshot is still worth taking.
	 */
	ret = -EBUSY;
	while (ret == -EBUSY) {
		if (range->notifier ?
		    mmu_interval_check_retry(range->notifier,
					     range->notifier_seq) :
		    fatal_signal_pending(current)) {
			ret = range->notifier ? -EBUSY : -EINTR;
			break;
		}
		ret = walk_page_range(mm, w.resume, range->end, &hmm_walk_ops,
				      &w);
		w.passes++;
		/* Faulted with nothing held: now collect the whole range. */
		if (!ret && w.defer_collect) {
			w.defer_collect = false;
			w.resume = range->start;
			ret = -EBUSY;
		}
	}
	if (ret && w.migrate)
		mdev_walk_abort(w.migrate, true);
out:
	if (trace_hmm_range_fault_enabled())
		return hmm_trace_range_fault(range, w.passes, w.faults, ret);
	return ret;
}

/**
 * hmm_range_fault() - snapshot, and fault on request, a range of CPU mappings
 * @range: the range, its output array and the caller's requests
 *
 * Fills @range->hmm_pfns[] with the CPU's mapping of each page of
 * [@range->start, @range->end): the page frame number with HMM_PFN_VALID
 * (and HMM_PFN_WRITE if writable, and the order of a huge mapping), 0 for a
 * page the CPU does not map, or HMM_PFN_ERROR for a page that cannot be
 * mirrored. Pages whose request (@range->default_flags, plus the bits of
 * their input word selected by @range->pfn_flags_mask) asks for a valid or
 * writable mapping the CPU lacks are faulted in first. Device-private pages
 * owned by @range->dev_private_owner are reported as they are (writable or
 * not, whatever the request); those of other owners are faulted back to
 * system memory when requested. Entries under migration are waited for.
 * The DMA helpers' bits of each input word (HMM_PFN_DMA_MAPPED,
 * HMM_PFN_P2PDMA, HMM_PFN_P2PDMA_BUS) are carried into its output word.
 *
 * With HMM_PFN_REQ_MIGRATE in @range->default_flags the same walk also
 * collects the range for the migration @range->migrate, as
 * migrate_vma_setup() would: each span right after it is mirrored, so a
 * range present as asked is walked once for both. Collected pages are
 * locked, so none is held while the walk faults or waits: it puts them
 * back and collects the range in one more pass once nothing is left to
 * fault. The words of the entries collected get HMM_PFN_MIGRATE. An empty
 * address of an anonymous VMA is not faulted in when the migration
 * selects system memory: it is an empty source. On success the caller
 * goes on with migrate_hmm_range_setup(); on any error nothing is left
 * collected.
 *
 * The output may be stale as soon as it is written: the caller must check
 * mmu_interval_read_retry() on @range->notifier_seq under the lock that
 * guards its device page table before using it, and start over on -EBUSY.
 *
 * Context: process context, may sleep. The caller holds the mmap lock of
 * @range->notifier->mm for read or write; it is never dropped.
 * Return: 0 when every word is filled in; -EBUSY when the notifier sequence
 * moved (call mmu_interval_read_begin() and try again); -EFAULT when a page
 * asked for has no VMA, sits in a VMA that cannot be mirrored, or cannot be
 * faulted in; -EPERM when write is asked of a VMA without VM_WRITE;
 * -EINVAL when the range is empty or not page aligned, or when
 * HMM_PFN_REQ_MIGRATE comes without a @range->migrate that migrate_vma_setup()
 * would take for exactly this range of this mm, with @src and @dst arrays
 * of its own; -EOPNOTSUPP
 * for HMM_PFN_REQ_MIGRATE without CONFIG_HMM_MIGRATE_WALK; -ENOMEM and
 * others as the fault path returns them.
 */
int hmm_range_fault(struct hmm_range *range)
{
	return hmm_walk_range(range, range->notifier->mm);
}
EXPORT_SYMBOL(hmm_range_fault);

#ifdef CONFIG_HMM_MIGRATE_WALK
/**
 * hmm_range_walk() - hmm_range_fault() on @mm, with or without a notifier
 * @range: as for hmm_range_fault(); @range->notifier may be NULL (then the
 *	walk never gives up on its own, but stops for a fatal signal)
 * @mm: the address space to walk
 *
 * For mm/ only: migrate_vma_setup() runs MIGRATE_VMA_FAULT through it.
 *
 * Context: as hmm_range_fault(), with the mmap lock of @mm held.
 * Return: as hmm_range_fault(), and -EINTR for a fatal signal when there
 * is no notifier.
 */
int hmm_range_walk(struct hmm_range *range, struct mm_struct *mm)
{
	return hmm_walk_range(range, mm);
}
#endif

/*
 * DMA mappings of a mirror (include/linux/hmm-dma.h)
 * --------------------------------------------------
 * This kernel's DMA API has no call that reserves one IOVA range and links
 * pages into it, so every entry is a mapping of its own: dma_map_page() of
 * dma_entry_size bytes. PCI peer-to-peer pages go by the route the PCI core
 * gives for the pair of devices: through the host bridge, a normal mapping
 * (HMM_PFN_P2PDMA); behind one switch, the page's PCI bus address with no
 * mapping at all (HMM_PFN_P2PDMA_BUS).
 *
 * Where the truth is kept. The bits in each pfn_list word are what drivers
 * and hmm_range_fault() see, but they cannot be the record: the walk writes
 * a word by reading it and storing it back with its bits, without the
 * driver's lock, while an invalidation may be unmapping that very entry
 * under the lock. A store that lands after the unmap puts back bits of a
 * mapping that no longer exists. So each entry's record is its dma_list
 * slot, which only the helpers touch, under the caller's lock: the DMA
 * address (page aligned, as a mapping of a whole page is) with the state
 * in its low bits. The pfn_list bits are written from the slot on every
 * map and unmap, so a stale bit lives only until the next call on the
 * entry, and is never acted upon.
 *
 * The mapping is never bounced or synchronised: the device must see the
 * CPU's writes to the pages as they happen, because a mirror's pages are
 * written by the CPU at any time and no one tells the DMA API when. So the
 * map refuses any device whose DMA needs either, and a mapping that the
 * DMA API bounced anyway (an IOMMU bounces an untrusted device's partial
 * pages through swiotlb) is undone and refused. Every mapping is made and
 * undone with DMA_ATTR_SKIP_CPU_SYNC, which says so: one page may be mapped
 * by many entries at once (the zero page behind every page a process only
 * read, a page shared at two addresses), and the DMA API's debugging
 * reports overlapping mappings unless their caller syncs nothing.
 *
 * Peer-to-peer memory through the host bridge is MMIO, not RAM: it is
 * mapped as a resource (an IOMMU then maps it as MMIO, uncached), and only
 * for a device whose DMA ops can do peer-to-peer at all.
 *
 * The zero page is behind every page a process has only read, so a mirror
 * of such memory would map it once per entry: IOVA space and IOMMU page
 * table entries for nothing, and more overlapping mappings of one page
 * than the DMA API's debugging accepts (it takes many as a leak). Each map
 * maps it once, on first use, keeps that mapping in map->state.addr (this
 * kernel has no other use for the state; its size stays 0, so
 * dma_use_iova() is false) and undoes it in hmm_dma_map_free().
 *
 * A map may have no dma_list: mainline callers whose device does no real
 * DMA (RDMA's software devices) allocate only the pfn_list and still call
 * hmm_dma_unmap_pfn() on every entry, with no device.
 */
#define HMM_DMA_SLOT_MAPPED	BIT(0)	/* the slot holds a live address */
#define HMM_DMA_SLOT_P2P	BIT(1)	/* mapped through the host bridge */
#define HMM_DMA_SLOT_BUS	BIT(2)	/* a PCI bus address, no mapping */
#define HMM_DMA_SLOT_ZERO	BIT(3)	/* the map's one zero-page mapping */
#define HMM_DMA_SLOT_STATE	(HMM_DMA_SLOT_MAPPED | HMM_DMA_SLOT_P2P | \
				 HMM_DMA_SLOT_BUS | HMM_DMA_SLOT_ZERO)

/* The pfn_list bits that say what the slot @slot says. */
static unsigned long hmm_dma_slot_bits(dma_addr_t slot)
{
	if (!(slot & HMM_DMA_SLOT_MAPPED))
		return 0;
	return HMM_PFN_DMA_MAPPED |
	       (slot & HMM_DMA_SLOT_P2P ? HMM_PFN_P2PDMA : 0) |
	       (slot & HMM_DMA_SLOT_BUS ? HMM_PFN_P2PDMA_BUS : 0);
}

/*
 * Whether @dev's DMA needs sync operations: true from its first bounced
 * mapping on, as swiotlb clears dma_skip_sync then.
 */
static bool hmm_dma_bounced(struct device *dev)
{
#ifdef CONFIG_DMA_NEED_SYNC
	return !dev->dma_skip_sync;
#else
	return false;
#endif
}

/* Why @dev cannot use a mirror's DMA map, or NULL if it can. */
static const char *hmm_dma_unfit(struct device *dev)
{
	if (!dev->dma_mask)
		return "has no DMA mask";
	if (!dev_is_dma_coherent(dev))
		return "is not DMA coherent";
	if (hmm_dma_bounced(dev))
		return "needs DMA sync operations";
	if (is_swiotlb_force_bounce(dev))
		return "bounces all DMA through swiotlb";
	if (dma_addressing_limited(dev))
		return "cannot address all memory (it would bounce)";
	return NULL;
}

/**
 * hmm_dma_map_alloc() - allocate the DMA map of a mirrored region
 * @dev: the device that will access the region by DMA
 * @map: the map to set up; its previous contents are ignored
 * @nr_entries: pages in the region: the length of @map->pfn_list
 * @dma_entry_size: bytes each hmm_dma_map_pfn() maps, a power of two of
 *	at least PAGE_SIZE and at most the region's size
 *
 * Allocates @map->pfn_list (zeroed, ready for hmm_range_fault()) and the
 * record of each entry's DMA mapping. Entries are mapped one by one, when
 * the device needs them, with hmm_dma_map_pfn().
 *
 * Context: process context, may sleep (GFP_KERNEL).
 * Return: 0 on success; -EINVAL if @nr_entries or @dma_entry_size is not
 * as described; -EOPNOTSUPP if @dev has no DMA mask, is not DMA coherent,
 * needs DMA sync operations, bounces its DMA through swiotlb or cannot
 * address all of memory (the reason is logged): such a device would need
 * bounce buffers or cache maintenance that a mirror cannot give; -ENOMEM
 * if the lists cannot be allocated.
 */
int hmm_dma_map_alloc(struct device *dev, struct hmm_dma_map *map,
		      size_t nr_entries, size_t dma_entry_size)
{
	const char *unfit;

	memset(map, 0, sizeof(*map));
	if (!nr_entries || dma_entry_size < PAGE_SIZE ||
	    dma_entry_size > UINT_MAX || !is_power_of_2(dma_entry_size) ||
	    nr_entries < dma_entry_size >> PAGE_SHIFT)
		return -EINVAL;
	unfit = hmm_dma_unfit(dev);
	if (unfit) {
		dev_warn_ratelimited(dev, "HMM DMA map refused: the device %s\n",
				     unfit);
		return -EOPNOTSUPP;
	}

	map->pfn_list = kvcalloc(nr_entries, sizeof(*map->pfn_list),
				 GFP_KERNEL | __GFP_NOWARN);
	map->dma_list = kvcalloc(nr_entries, sizeof(*map->dma_list),
				 GFP_KERNEL | __GFP_NOWARN);
	if (!map->pfn_list || !map->dma_list) {
		hmm_dma_map_free(dev, map);
		return -ENOMEM;
	}
	map->dma_entry_size = dma_entry_size;
	return 0;
}
EXPORT_SYMBOL_GPL(hmm_dma_map_alloc);

/**
 * hmm_dma_map_free() - free the DMA map of a mirrored region
 * @dev: the device given to hmm_dma_map_alloc()
 * @map: the map
 *
 * Frees the lists, and the map's one mapping of the zero page. Every entry
 * must have been unmapped first (hmm_dma_unmap_pfn()): the map does not
 * know its own length. Freeing a map that was freed already, or whose
 * allocation failed, does nothing.
 *
 * Context: process context.
 * Return: nothing.
 */
void hmm_dma_map_free(struct device *dev, struct hmm_dma_map *map)
{
	if (map->state.addr & HMM_DMA_SLOT_MAPPED)
		dma_unmap_page_attrs(dev, map->state.addr &
				     ~(dma_addr_t)HMM_DMA_SLOT_STATE,
				     PAGE_SIZE, DMA_BIDIRECTIONAL,
				     DMA_ATTR_SKIP_CPU_SYNC);
	map->state.addr = 0;
	kvfree(map->pfn_list);
	kvfree(map->dma_list);
	map->pfn_list = NULL;
	map->dma_list = NULL;
}
EXPORT_SYMBOL_GPL(hmm_dma_map_free);

/*
 * The route from @dev to the peer-to-peer @page: fills *@bus with the bus
 * address when the devices talk through a switch.
 */
static enum pci_p2pdma_map_type
hmm_dma_p2p_route(struct device *dev, struct page *page, size_t size,
		  struct pci_p2pdma_map_state *state, dma_addr_t *bus)
{
	enum pci_p2pdma_map_type type;
	struct scatterlist sg;

	/* This kernel's PCI core answers the question per scatterlist entry. */
	sg_init_table(&sg, 1);
	sg_set_page(&sg, page, size, 0);
	type = pci_p2pdma_map_segment(state, dev, &sg);
	if (type == PCI_P2PDMA_MAP_BUS_ADDR)
		*bus = sg_dma_address(&sg);
	return type;
}

/* Undo the mapping at @addr of the kind @slot records, as it was made. */
static void hmm_dma_unmap_slot(struct device *dev, dma_addr_t slot,
			       dma_addr_t addr, size_t size)
{
	if (slot & HMM_DMA_SLOT_BUS)
		return;		/* a bus address was never a DMA mapping */
	if (slot & HMM_DMA_SLOT_ZERO)
		return;		/* the map's, until hmm_dma_map_free() */
	if (slot & HMM_DMA_SLOT_P2P)
		dma_unmap_resource(dev, addr, size, DMA_BIDIRECTIONAL,
				   DMA_ATTR_SKIP_CPU_SYNC);
	else
		dma_unmap_page_attrs(dev, addr, size, DMA_BIDIRECTIONAL,
				     DMA_ATTR_SKIP_CPU_SYNC);
}

/* The map's mapping of the zero page, made on first use. */
static dma_addr_t hmm_dma_zero(struct device *dev, struct hmm_dma_map *map)
{
	dma_addr_t addr;

	if (map->state.addr & HMM_DMA_SLOT_MAPPED)
		return map->state.addr & ~(dma_addr_t)HMM_DMA_SLOT_STATE;
	addr = dma_map_page_attrs(dev, ZERO_PAGE(0), 0, PAGE_SIZE,
				  DMA_BIDIRECTIONAL, DMA_ATTR_SKIP_CPU_SYNC);
	if (dma_mapping_error(dev, addr))
		return DMA_MAPPING_ERROR;
	if (WARN_ON_ONCE(addr & HMM_DMA_SLOT_STATE) || hmm_dma_bounced(dev)) {
		dma_unmap_page_attrs(dev, addr, PAGE_SIZE, DMA_BIDIRECTIONAL,
				     DMA_ATTR_SKIP_CPU_SYNC);
		return DMA_MAPPING_ERROR;
	}
	map->state.addr = addr | HMM_DMA_SLOT_MAPPED;
	return addr;
}

/**
 * hmm_dma_map_pfn() - make one entry of a mirror addressable by the device
 * @dev: the device given to hmm_dma_map_alloc()
 * @map: the map
 * @idx: the entry: an index into @map->pfn_list
 * @p2pdma_state: the PCI peer-to-peer route last taken, which saves
 *	looking it up again for the next page of the same peer; zero it
 *	before the first call of a run. May be NULL.
 *
 * Maps @map->dma_entry_size bytes from the page of @map->pfn_list[@idx],
 * which hmm_range_fault() must have reported valid, and marks the entry
 * HMM_PFN_DMA_MAPPED (and HMM_PFN_P2PDMA or HMM_PFN_P2PDMA_BUS for PCI
 * peer-to-peer memory). An entry mapped already keeps its mapping: its
 * address is returned again. The caller must unmap the entry before the
 * page can change (in its invalidate callback), so that no address is ever
 * used for a page the CPU no longer maps there.
 *
 * Context: any context the DMA API allows for @dev; the caller serialises
 * calls on one map with each other and with its invalidate callback
 * (normally under the lock that guards its device page table).
 * Return: the address the device uses for the entry; DMA_MAPPING_ERROR if
 * the entry is not a valid page, is a device-private page (CPU memory it
 * is not), is smaller than @map->dma_entry_size (a larger entry must be
 * one CPU mapping of at least that size, and start aligned to it), is
 * peer-to-peer memory @dev cannot reach, or the DMA API cannot map it
 * without bouncing it. The entry is then left unmapped.
 */
dma_addr_t hmm_dma_map_pfn(struct device *dev, struct hmm_dma_map *map,
			   size_t idx,
			   struct pci_p2pdma_map_state *p2pdma_state)
{
	unsigned long *word = &map->pfn_list[idx];
	struct pci_p2pdma_map_state own_state = {};
	size_t size = map->dma_entry_size;
	unsigned long pfn;
	struct page *page;
	dma_addr_t slot;
	dma_addr_t addr;

	if (WARN_ON_ONCE(!map->dma_list))
		return DMA_MAPPING_ERROR;
	slot = map->dma_list[idx];
	if (slot & HMM_DMA_SLOT_MAPPED)
		goto mapped;
	*word &= ~HMM_PFN_KEPT;		/* nothing is mapped, whatever it said */
	if ((*word & (HMM_PFN_VALID | HMM_PFN_ERROR)) != HMM_PFN_VALID)
		return DMA_MAPPING_ERROR;
	/* An entry larger than a page must be one CPU mapping, aligned. */
	pfn = *word & ~HMM_PFN_FLAGS;
	if (size > PAGE_SIZE &&
	    (hmm_pfn_to_map_order(*word) + PAGE_SHIFT < ilog2(size) ||
	     !IS_ALIGNED(pfn, size >> PAGE_SHIFT)))
		return DMA_MAPPING_ERROR;
	page = pfn_to_page(pfn);
	if (is_device_private_page(page))
		return DMA_MAPPING_ERROR;

	slot = HMM_DMA_SLOT_MAPPED;
	if (size == PAGE_SIZE && is_zero_pfn(pfn)) {
		addr = hmm_dma_zero(dev, map);
		if (addr == DMA_MAPPING_ERROR)
			return DMA_MAPPING_ERROR;
		slot |= HMM_DMA_SLOT_ZERO | addr;
		goto record;
	}
	if (is_pci_p2pdma_page(page)) {
		switch (hmm_dma_p2p_route(dev, page, size,
					  p2pdma_state ?: &own_state, &addr)) {
		case PCI_P2PDMA_MAP_BUS_ADDR:
			slot |= HMM_DMA_SLOT_BUS;
			break;
		case PCI_P2PDMA_MAP_THRU_HOST_BRIDGE:
			if (!dma_pci_p2pdma_supported(dev))
				return DMA_MAPPING_ERROR;
			slot |= HMM_DMA_SLOT_P2P;
			addr = dma_map_resource(dev, page_to_phys(page), size,
						DMA_BIDIRECTIONAL,
						DMA_ATTR_SKIP_CPU_SYNC);
			break;
		default:
			return DMA_MAPPING_ERROR;
		}
	} else {
		addr = dma_map_page_attrs(dev, page, 0, size,
					  DMA_BIDIRECTIONAL,
					  DMA_ATTR_SKIP_CPU_SYNC);
	}
	if (dma_mapping_error(dev, addr))
		return DMA_MAPPING_ERROR;
	/*
	 * A mapping of whole pages starts on a page, so the state fits below
	 * the address; and it must not have been bounced.
	 */
	if (WARN_ON_ONCE(addr & HMM_DMA_SLOT_STATE) || hmm_dma_bounced(dev)) {
		hmm_dma_unmap_slot(dev, slot, addr, size);
		return DMA_MAPPING_ERROR;
	}
	slot |= addr;
record:
	map->dma_list[idx] = slot;
mapped:
	*word = (*word & ~HMM_PFN_KEPT) | hmm_dma_slot_bits(slot);
	return slot & ~(dma_addr_t)HMM_DMA_SLOT_STATE;
}
EXPORT_SYMBOL_GPL(hmm_dma_map_pfn);

/**
 * hmm_dma_unmap_pfn() - undo hmm_dma_map_pfn() on one entry
 * @dev: the device given to hmm_dma_map_alloc()
 * @map: the map
 * @idx: the entry: an index into @map->pfn_list
 *
 * Unmaps the entry if it is mapped and clears its DMA state. The map keeps
 * each mapping's address and kind apart from what hmm_range_fault() writes,
 * so this is exact whatever the last mirror reported for the page: an
 * entry that is no longer valid is unmapped too, and one that is not
 * mapped is left alone even if its word still shows HMM_PFN_DMA_MAPPED.
 *
 * A map allocated without hmm_dma_map_alloc() (a pfn_list only, NULL
 * dma_list) has nothing to undo, and @dev may then be NULL.
 *
 * Context: as hmm_dma_map_pfn().
 * Return: true if the entry was mapped, false if there was nothing to undo.
 */
bool hmm_dma_unmap_pfn(struct device *dev, struct hmm_dma_map *map, size_t idx)
{
	dma_addr_t slot;

	map->pfn_list[idx] &= ~HMM_PFN_KEPT;
	if (!map->dma_list)
		return false;		/* nothing was ever mapped */
	slot = map->dma_list[idx];
	if (!(slot & HMM_DMA_SLOT_MAPPED))
		return false;
	hmm_dma_unmap_slot(dev, slot, slot & ~(dma_addr_t)HMM_DMA_SLOT_STATE,
			   map->dma_entry_size);
	map->dma_list[idx] = 0;
	return true;
}
EXPORT_SYMBOL_GPL(hmm_dma_unmap_pfn);
