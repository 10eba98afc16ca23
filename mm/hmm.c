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
#include <linux/hmm.h>
#include <linux/hugetlb.h>
#include <linux/memremap.h>
#include <linux/mm.h>
#include <linux/mmu_notifier.h>
#include <linux/pagewalk.h>
#include <linux/swapops.h>

#include <trace/events/hmm.h>

#include "hmm_entry.h"

/* State of one hmm_range_fault() call, shared by the walk callbacks. */
struct hmm_walk {
	struct hmm_range *range;
	unsigned long resume;		/* where the next pass starts */
	unsigned long common_req;	/* the request when it is per call */
	bool may_fault;			/* can any page request a fault? */
	bool per_page_req;		/* must each page's input be read? */
	unsigned long faults;		/* pages handed to handle_mm_fault() */
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
static enum hmm_need hmm_span_shortfall(struct hmm_walk *w, unsigned long addr,
					unsigned long end, unsigned long offer)
{
	unsigned long *in = hmm_out(w, addr);
	unsigned long i, npages = (end - addr) >> PAGE_SHIFT;
	enum hmm_need need = HMM_NEED_NOTHING;

	if (!w->may_fault)
		return HMM_NEED_NOTHING;
	if (!w->per_page_req)
		return hmm_shortfall(w->common_req, offer);
	for (i = 0; i < npages && need != HMM_NEED_WRITE_FAULT; i++)
		need = max(need, hmm_shortfall(hmm_request(w, in[i]), offer));
	return need;
}

/* Write @value to every output word of [addr, end). */
static void hmm_fill(struct hmm_walk *w, unsigned long addr, unsigned long end,
		     unsigned long value)
{
	unsigned long *out = hmm_out(w, addr);
	unsigned long i, npages = (end - addr) >> PAGE_SHIFT;

	for (i = 0; i < npages; i++)
		out[i] = value;
}

/* Write consecutive pfns from @first, each with @flags, over [addr, end). */
static void hmm_fill_pfns(struct hmm_walk *w, unsigned long addr,
			  unsigned long end, unsigned long first,
			  unsigned long flags)
{
	unsigned long *out = hmm_out(w, addr);
	unsigned long i, npages = (end - addr) >> PAGE_SHIFT;
	unsigned long word = first | flags;

	for (i = 0; i < npages; i++)
		out[i] = word + i;
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
 * a huge leaf): fault what falls short, otherwise report.
 */
static int hmm_report_span(struct hmm_walk *w, struct vm_area_struct *vma,
			   unsigned long addr, unsigned long end,
			   unsigned long pfn, unsigned long offer)
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

static unsigned long hmm_pte_offer(pte_t pte)
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
		*out = page_to_pfn(devp.page) | HMM_PFN_VALID |
		       (devp.writable ? HMM_PFN_WRITE : 0);
		return HMM_REPORTED;
	}
	if (hmm_shortfall(req, 0) == HMM_NEED_NOTHING) {
		*out = 0;
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
		if (hmm_shortfall(req, 0) != HMM_NEED_NOTHING)
			return HMM_FAULT;
		*out = 0;
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
		*out = HMM_PFN_ERROR;
		return HMM_REPORTED;
	}
	*out = offer ? pte_pfn(pte) | offer : 0;
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
			if (!(pte_none(pte) && !w->per_page_req) &&
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

static int hmm_walk_pmd(pmd_t *pmdp, unsigned long start, unsigned long end,
			struct mm_walk *walk)
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
	.pte_hole	= hmm_walk_hole,
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
 * -EINVAL when the range is empty or not page aligned; -ENOMEM and others
 * as the fault path returns them.
 */
int hmm_range_fault(struct hmm_range *range)
{
	struct mm_struct *mm = range->notifier->mm;
	unsigned int passes = 0;
	struct hmm_walk w;
	int ret;

	hmm_walk_begin(&w, range);

	mmap_assert_locked(mm);
	if (!PAGE_ALIGNED(range->start) || !PAGE_ALIGNED(range->end) ||
	    range->start >= range->end) {
		ret = -EINVAL;
		goto out;
	}

	/*
	 * A pass that faulted or waited ends in -EBUSY with w.resume set;
	 * each new pass first makes sure the snapshot is still worth taking.
	 */
	ret = -EBUSY;
	while (ret == -EBUSY &&
	       !mmu_interval_check_retry(range->notifier, range->notifier_seq)) {
		ret = walk_page_range(mm, w.resume, range->end, &hmm_walk_ops,
				      &w);
		passes++;
	}
out:
	trace_hmm_range_fault(range, passes, w.faults, ret);
	return ret;
}
EXPORT_SYMBOL(hmm_range_fault);
