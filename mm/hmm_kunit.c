// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * KUnit tests of hmm_range_fault().
 *
 * Each case plays the part of a device driver mirroring its own address
 * space: kunit_vm_mmap() gives the test's kthread an mm and a mapping in it,
 * an mmu_interval_notifier watches that mapping, and the case calls
 * hmm_range_fault() the way a driver does (sequence count first, mmap lock
 * for read around the call). What the CPU has mapped is set up with ordinary
 * user accesses (a read maps the zero page, a write a private page), or,
 * for the special PTEs a DAX or raw-device driver installs, by inserting a
 * frame of the case's own device memory the way such a driver's fault
 * handler does; so every expectation is about a page-table state the test
 * created itself.
 *
 * Rules the cases follow: nothing that can abort a case (an assertion) runs
 * with the mmap lock held, and the notifier lives in KUnit-managed memory and
 * is removed by a deferred action, because the test's mm is torn down when
 * its kthread exits, after the case returns and before cleanup runs.
 */
#include <kunit/device.h>
#include <kunit/resource.h>
#include <kunit/test.h>
#include <linux/dma-direct.h>
#include <linux/hmm.h>
#include <linux/hmm-dma.h>
#include <linux/highmem.h>
#include <linux/huge_mm.h>
#include <linux/io.h>
#include <linux/ioport.h>
#include <linux/memremap.h>
#include <linux/migrate.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/mmu_notifier.h>
#include <linux/pfn_t.h>
#include <linux/uaccess.h>

/* One mirrored mapping: the notifier that watches it and what it saw. */
struct hmm_kunit_mirror {
	struct mmu_interval_notifier notifier;
	unsigned long start;
	unsigned long end;
	unsigned long *pfns;		/* one output word per page */
	unsigned int invalidations;
};

static bool hmm_kunit_invalidate(struct mmu_interval_notifier *mni,
				 const struct mmu_notifier_range *range,
				 unsigned long cur_seq)
{
	struct hmm_kunit_mirror *mirror =
		container_of(mni, struct hmm_kunit_mirror, notifier);

	/*
	 * A migration of the case's own (hmm_kunit_collect()) changes nothing
	 * the case mirrors, as a driver's own migration changes nothing its
	 * device maps. Otherwise there is no device page table to lock:
	 * bumping the sequence is the whole job.
	 */
	if (range->event == MMU_NOTIFY_MIGRATE && range->owner == mirror)
		return true;
	mmu_interval_set_seq(mni, cur_seq);
	WRITE_ONCE(mirror->invalidations, mirror->invalidations + 1);
	return true;
}

static const struct mmu_interval_notifier_ops hmm_kunit_notifier_ops = {
	.invalidate = hmm_kunit_invalidate,
};

static void hmm_kunit_remove_notifier(void *data)
{
	struct hmm_kunit_mirror *mirror = data;

	mmu_interval_notifier_remove(&mirror->notifier);
}

/*
 * Map @npages of anonymous memory at @addr (0: anywhere) with @prot and
 * @flags (MAP_PRIVATE or MAP_SHARED); fail the case if we can't.
 */
static unsigned long hmm_kunit_map_flags(struct kunit *test,
					 unsigned long addr,
					 unsigned long npages,
					 unsigned long prot,
					 unsigned long flags)
{
	unsigned long uaddr;

	flags |= MAP_ANONYMOUS;
	if (addr)
		flags |= MAP_FIXED;
	uaddr = kunit_vm_mmap(test, NULL, addr, npages << PAGE_SHIFT, prot,
			      flags, 0);
	KUNIT_ASSERT_FALSE_MSG(test, !uaddr || IS_ERR_VALUE(uaddr),
			       "vm_mmap of %lu pages failed: %ld", npages,
			       (long)uaddr);
	return uaddr;
}

/* A private anonymous mapping, as a process's heap is. */
static unsigned long hmm_kunit_map(struct kunit *test, unsigned long addr,
				   unsigned long npages, unsigned long prot)
{
	return hmm_kunit_map_flags(test, addr, npages, prot, MAP_PRIVATE);
}

/*
 * Set @flags on the VMA at @addr, as madvise() or a driver's mmap() would
 * without a user-space caller; fail the case if there is no VMA.
 */
static void hmm_kunit_set_vm_flags(struct kunit *test, unsigned long addr,
				   vm_flags_t flags)
{
	struct vm_area_struct *vma;

	mmap_write_lock(current->mm);
	vma = vma_lookup(current->mm, addr);
	if (vma)
		vm_flags_set(vma, flags);
	mmap_write_unlock(current->mm);
	KUNIT_ASSERT_NOT_NULL(test, vma);
}

/*
 * Watch [start, start + npages pages) with a notifier, as a driver would,
 * with an output array for the range.
 */
static struct hmm_kunit_mirror *hmm_kunit_mirror(struct kunit *test,
						 unsigned long start,
						 unsigned long npages)
{
	struct hmm_kunit_mirror *mirror;
	int ret;

	mirror = kunit_kzalloc(test, sizeof(*mirror), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, mirror);
	mirror->pfns = kunit_kcalloc(test, npages, sizeof(*mirror->pfns),
				     GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, mirror->pfns);
	mirror->start = start;
	mirror->end = start + (npages << PAGE_SHIFT);
	ret = mmu_interval_notifier_insert(&mirror->notifier, current->mm,
					   start, npages << PAGE_SHIFT,
					   &hmm_kunit_notifier_ops);
	KUNIT_ASSERT_EQ(test, ret, 0);
	ret = kunit_add_action_or_reset(test, hmm_kunit_remove_notifier, mirror);
	KUNIT_ASSERT_EQ(test, ret, 0);
	return mirror;
}

/* A fresh mapping of @npages with @prot, mirrored. */
static struct hmm_kunit_mirror *hmm_kunit_new(struct kunit *test,
					      unsigned long npages,
					      unsigned long prot)
{
	return hmm_kunit_mirror(test, hmm_kunit_map(test, 0, npages, prot),
				npages);
}

/*
 * One hmm_range_fault() call on [start, end) of @mirror, with the sequence
 * count taken just before: no retry, so the caller sees -EBUSY as it is.
 */
static int hmm_kunit_fault_once(struct hmm_kunit_mirror *mirror,
				unsigned long start, unsigned long end,
				unsigned long default_flags,
				unsigned long pfn_flags_mask)
{
	struct hmm_range range = {
		.notifier = &mirror->notifier,
		.start = start,
		.end = end,
		.hmm_pfns = mirror->pfns,
		.default_flags = default_flags,
		.pfn_flags_mask = pfn_flags_mask,
	};
	int ret;

	range.notifier_seq = mmu_interval_read_begin(&mirror->notifier);
	mmap_read_lock(current->mm);
	ret = hmm_range_fault(&range);
	mmap_read_unlock(current->mm);
	return ret;
}

/* The same over the whole mirror, retried on -EBUSY as a driver does. */
static int hmm_kunit_fault(struct hmm_kunit_mirror *mirror,
			   unsigned long default_flags,
			   unsigned long pfn_flags_mask)
{
	unsigned long timeout = jiffies + msecs_to_jiffies(HMM_RANGE_DEFAULT_TIMEOUT);
	int ret;

	do {
		ret = hmm_kunit_fault_once(mirror, mirror->start, mirror->end,
					   default_flags, pfn_flags_mask);
	} while (ret == -EBUSY && time_before(jiffies, timeout));
	return ret;
}

/* The byte the case stored at page @i, so that pages tell apart. */
static u8 hmm_kunit_pattern(unsigned long i)
{
	return 0x5a ^ (u8)(i * 37);
}

/* What the CPU maps before the call. */
enum hmm_kunit_state {
	HMM_KUNIT_UNTOUCHED,	/* no PTE */
	HMM_KUNIT_READ,		/* read once: the shared zero page */
	HMM_KUNIT_WRITTEN,	/* written once: a private page */
};

/* Put page @i of a mapping at @start into @state; 0 or -EFAULT. */
static int hmm_kunit_touch(unsigned long start, unsigned long i,
			   enum hmm_kunit_state state)
{
	u8 __user *p = (u8 __user *)(start + (i << PAGE_SHIFT));
	u8 byte;

	switch (state) {
	case HMM_KUNIT_READ:
		return copy_from_user(&byte, p, 1) ? -EFAULT : 0;
	case HMM_KUNIT_WRITTEN:
		return put_user(hmm_kunit_pattern(i), p);
	default:
		return 0;
	}
}

/*
 * Check that valid output word @hmm_pfn names the page the CPU reads at page
 * @i: the shared zero page if it is read-only, the case's pattern if the
 * case wrote the page, a fresh zeroed page otherwise.
 */
static void hmm_kunit_expect_page(struct kunit *test, unsigned long hmm_pfn,
				  unsigned long i, bool written)
{
	struct page *page = hmm_pfn_to_page(hmm_pfn);
	u8 *kaddr;

	KUNIT_EXPECT_EQ(test, hmm_pfn_to_phys(hmm_pfn), page_to_phys(page));
	if (!(hmm_pfn & HMM_PFN_WRITE)) {
		KUNIT_EXPECT_TRUE_MSG(test, is_zero_pfn(page_to_pfn(page)),
				      "page %lu", i);
		return;
	}
	KUNIT_EXPECT_FALSE_MSG(test, is_zero_pfn(page_to_pfn(page)),
			       "page %lu", i);
	kaddr = kmap_local_page(page);
	KUNIT_EXPECT_EQ_MSG(test, kaddr[0], written ? hmm_kunit_pattern(i) : 0,
			    "page %lu", i);
	kunmap_local(kaddr);
}

/*
 * The request/state matrix: one VMA of a given protection, every page in
 * one state, one request for all; what comes back.
 */
struct hmm_kunit_case {
	const char *name;
	unsigned long prot;
	enum hmm_kunit_state state;
	unsigned long request;		/* default_flags */
	int ret;			/* expected return */
	unsigned long out;		/* expected flags of each word */
};

#define RW	(PROT_READ | PROT_WRITE)
#define FAULT	HMM_PFN_REQ_FAULT
#define WFAULT	(HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE)
#define VALID	HMM_PFN_VALID
#define VALID_W	(HMM_PFN_VALID | HMM_PFN_WRITE)

static const struct hmm_kunit_case hmm_kunit_matrix[] = {
	{ "rw_untouched_snapshot", RW, HMM_KUNIT_UNTOUCHED, 0, 0, 0 },
	{ "rw_untouched_fault", RW, HMM_KUNIT_UNTOUCHED, FAULT, 0, VALID },
	{ "rw_untouched_write", RW, HMM_KUNIT_UNTOUCHED, WFAULT, 0, VALID_W },
	{ "rw_read_snapshot", RW, HMM_KUNIT_READ, 0, 0, VALID },
	{ "rw_read_fault", RW, HMM_KUNIT_READ, FAULT, 0, VALID },
	{ "rw_read_write_breaks_cow", RW, HMM_KUNIT_READ, WFAULT, 0, VALID_W },
	{ "rw_written_snapshot", RW, HMM_KUNIT_WRITTEN, 0, 0, VALID_W },
	{ "rw_written_fault", RW, HMM_KUNIT_WRITTEN, FAULT, 0, VALID_W },
	{ "rw_written_write", RW, HMM_KUNIT_WRITTEN, WFAULT, 0, VALID_W },
	{ "ro_untouched_snapshot", PROT_READ, HMM_KUNIT_UNTOUCHED, 0, 0, 0 },
	{ "ro_untouched_fault", PROT_READ, HMM_KUNIT_UNTOUCHED, FAULT, 0, VALID },
	{ "ro_untouched_write_eperm", PROT_READ, HMM_KUNIT_UNTOUCHED, WFAULT,
	  -EPERM, 0 },
	{ "ro_read_snapshot", PROT_READ, HMM_KUNIT_READ, 0, 0, VALID },
	{ "ro_read_write_eperm", PROT_READ, HMM_KUNIT_READ, WFAULT, -EPERM, 0 },
	{ "none_snapshot_error", PROT_NONE, HMM_KUNIT_UNTOUCHED, 0, 0,
	  HMM_PFN_ERROR },
	{ "none_fault_efault", PROT_NONE, HMM_KUNIT_UNTOUCHED, FAULT, -EFAULT,
	  0 },
};

static void hmm_kunit_case_desc(const struct hmm_kunit_case *c, char *desc)
{
	strscpy(desc, c->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(hmm_kunit_matrix, hmm_kunit_matrix, hmm_kunit_case_desc);

#define HMM_KUNIT_NPAGES	8

/* Every state meets every request: the reported flags, pfns and data. */
static void hmm_kunit_request_matrix(struct kunit *test)
{
	const struct hmm_kunit_case *c = test->param_value;
	unsigned long npages = HMM_KUNIT_NPAGES, start, i;
	struct hmm_kunit_mirror *mirror;
	unsigned long *pfns;
	int ret;

	start = hmm_kunit_map(test, 0, npages, c->prot);
	for (i = 0; i < npages; i++)
		KUNIT_ASSERT_EQ(test, hmm_kunit_touch(start, i, c->state), 0);
	mirror = hmm_kunit_mirror(test, start, npages);
	pfns = mirror->pfns;

	ret = hmm_kunit_fault(mirror, c->request, 0);
	KUNIT_ASSERT_EQ(test, ret, c->ret);
	if (ret)
		return;
	for (i = 0; i < npages; i++) {
		KUNIT_EXPECT_EQ_MSG(test, pfns[i] & (VALID_W | HMM_PFN_ERROR),
				    c->out, "page %lu", i);
		if (!(pfns[i] & HMM_PFN_VALID))
			continue;
		KUNIT_EXPECT_EQ(test, hmm_pfn_to_map_order(pfns[i]), 0);
		hmm_kunit_expect_page(test, pfns[i], i,
				      c->state == HMM_KUNIT_WRITTEN);
	}
}

/* A snapshot overwrites every input word, whatever it held. */
static void hmm_kunit_snapshot_overwrites_input(struct kunit *test)
{
	unsigned long npages = HMM_KUNIT_NPAGES, start, i;
	struct hmm_kunit_mirror *mirror;
	unsigned long *pfns;

	start = hmm_kunit_map(test, 0, npages, RW);
	KUNIT_ASSERT_EQ(test, hmm_kunit_touch(start, 0, HMM_KUNIT_WRITTEN), 0);
	mirror = hmm_kunit_mirror(test, start, npages);
	pfns = mirror->pfns;
	for (i = 0; i < npages; i++)
		pfns[i] = WFAULT | 0x1234;

	/* pfn_flags_mask 0: the input words are not requests. */
	KUNIT_ASSERT_EQ(test, hmm_kunit_fault(mirror, 0, 0), 0);
	KUNIT_EXPECT_EQ(test, pfns[0] & VALID_W, VALID_W);
	for (i = 1; i < npages; i++)
		KUNIT_EXPECT_EQ_MSG(test, pfns[i], 0UL, "page %lu", i);
}

#define HMM_KUNIT_DMA_BITS \
	(HMM_PFN_DMA_MAPPED | HMM_PFN_P2PDMA | HMM_PFN_P2PDMA_BUS)

/*
 * The DMA helpers' bits of each input word come out again, whatever the
 * walk writes beside them (a page, nothing, an error) and whatever the
 * request; every other input bit is overwritten.
 */
static void hmm_kunit_dma_bits_are_carried(struct kunit *test)
{
	unsigned long npages = HMM_KUNIT_NPAGES, hole = 6, start, i;
	struct hmm_kunit_mirror *mirror;
	unsigned long *pfns;

	start = hmm_kunit_map(test, 0, npages, RW);
	for (i = 0; i < 4; i++)
		KUNIT_ASSERT_EQ(test, hmm_kunit_touch(start, i, HMM_KUNIT_WRITTEN),
				0);
	mirror = hmm_kunit_mirror(test, start, npages);
	KUNIT_ASSERT_EQ(test, vm_munmap(start + (hole << PAGE_SHIFT), PAGE_SIZE),
			0);
	pfns = mirror->pfns;
	/* Pages 0-3 written, 4, 5 and 7 untouched, 6 without a VMA. */
	for (i = 0; i < npages; i++)
		pfns[i] = (i & 1 ? HMM_KUNIT_DMA_BITS : HMM_PFN_DMA_MAPPED) |
			  0x4321;

	KUNIT_ASSERT_EQ(test, hmm_kunit_fault(mirror, 0, 0), 0);
	for (i = 0; i < npages; i++) {
		unsigned long kept = i & 1 ? HMM_KUNIT_DMA_BITS :
					     HMM_PFN_DMA_MAPPED;
		unsigned long rest = pfns[i] & ~HMM_KUNIT_DMA_BITS;

		KUNIT_EXPECT_EQ_MSG(test, pfns[i] & HMM_KUNIT_DMA_BITS, kept,
				    "page %lu", i);
		if (i < 4)
			KUNIT_EXPECT_EQ_MSG(test, rest & ~HMM_PFN_FLAGS,
					    page_to_pfn(hmm_pfn_to_page(pfns[i])),
					    "page %lu", i);
		else
			KUNIT_EXPECT_EQ_MSG(test, rest,
					    i == hole ? HMM_PFN_ERROR : 0UL,
					    "page %lu", i);
	}

	/* The same through the fault path, which writes after faulting. */
	for (i = 0; i < npages; i++)
		pfns[i] = (i == hole ? 0 : WFAULT) | HMM_PFN_P2PDMA_BUS;
	KUNIT_ASSERT_EQ(test, hmm_kunit_fault(mirror, 0, WFAULT), 0);
	for (i = 0; i < npages; i++)
		KUNIT_EXPECT_EQ_MSG(test, pfns[i] & (HMM_KUNIT_DMA_BITS | VALID_W),
				    HMM_PFN_P2PDMA_BUS |
				    (i == hole ? 0 : VALID_W),
				    "page %lu", i);
}

/* With a per-page mask, only the pages that ask are faulted in. */
static void hmm_kunit_fault_only_requested_pages(struct kunit *test)
{
	unsigned long npages = 64, i;
	struct hmm_kunit_mirror *mirror;
	unsigned long *pfns;

	mirror = hmm_kunit_new(test, npages, RW);
	pfns = mirror->pfns;
	for (i = 0; i < npages; i++)
		pfns[i] = i % 3 == 0 ? FAULT : 0;

	KUNIT_ASSERT_EQ(test, hmm_kunit_fault(mirror, 0, FAULT), 0);
	for (i = 0; i < npages; i++)
		KUNIT_EXPECT_EQ_MSG(test, pfns[i] & VALID_W,
				    i % 3 == 0 ? VALID : 0UL, "page %lu", i);

	/* And the CPU agrees: a second snapshot sees the same pages. */
	KUNIT_ASSERT_EQ(test, hmm_kunit_fault(mirror, 0, 0), 0);
	for (i = 0; i < npages; i++)
		KUNIT_EXPECT_EQ_MSG(test, !!(pfns[i] & VALID), i % 3 == 0,
				    "page %lu", i);
}

/* default_flags asks for every page, the mask adds write to some. */
static void hmm_kunit_default_plus_mask(struct kunit *test)
{
	unsigned long npages = 32, i;
	struct hmm_kunit_mirror *mirror;
	unsigned long *pfns;

	mirror = hmm_kunit_new(test, npages, RW);
	pfns = mirror->pfns;
	for (i = 0; i < npages; i++)
		pfns[i] = i & 1 ? HMM_PFN_REQ_WRITE : 0;

	KUNIT_ASSERT_EQ(test, hmm_kunit_fault(mirror, FAULT,
					      HMM_PFN_REQ_WRITE), 0);
	for (i = 0; i < npages; i++)
		KUNIT_EXPECT_EQ_MSG(test, pfns[i] & VALID_W,
				    i & 1 ? VALID_W : VALID, "page %lu", i);
}

/* Write asked of a range that crosses into a read-only VMA: -EPERM. */
static void hmm_kunit_write_across_readonly_vma(struct kunit *test)
{
	unsigned long npages = 16, start, i;
	struct hmm_kunit_mirror *mirror;
	unsigned long *pfns;

	start = hmm_kunit_map(test, 0, npages, RW);
	hmm_kunit_map(test, start + (npages / 2 << PAGE_SHIFT), npages / 2,
		      PROT_READ);
	mirror = hmm_kunit_mirror(test, start, npages);
	pfns = mirror->pfns;

	/* Reading the whole range is fine: the zero page on both sides. */
	KUNIT_ASSERT_EQ(test, hmm_kunit_fault(mirror, FAULT, 0), 0);
	for (i = 0; i < npages; i++)
		KUNIT_EXPECT_EQ_MSG(test, pfns[i] & VALID_W, VALID, "page %lu", i);

	/*
	 * Writing it is not. (The walk may have made the writable half
	 * writable before it met the read-only VMA; that is allowed.)
	 */
	KUNIT_EXPECT_EQ(test, hmm_kunit_fault(mirror, WFAULT, 0), -EPERM);

	/* Write to the writable half alone succeeds. */
	for (i = 0; i < npages; i++)
		pfns[i] = i < npages / 2 ? HMM_PFN_REQ_WRITE : 0;
	KUNIT_ASSERT_EQ(test, hmm_kunit_fault(mirror, FAULT,
					      HMM_PFN_REQ_WRITE), 0);
	for (i = 0; i < npages; i++)
		KUNIT_EXPECT_EQ_MSG(test, pfns[i] & VALID_W,
				    i < npages / 2 ? VALID_W : VALID,
				    "page %lu", i);
}

/* A hole (no VMA) in the middle: HMM_PFN_ERROR there, -EFAULT if asked. */
static void hmm_kunit_hole_without_vma(struct kunit *test)
{
	unsigned long npages = 16, hole = 5, start, i;
	struct hmm_kunit_mirror *mirror;
	unsigned long *pfns;

	start = hmm_kunit_map(test, 0, npages, RW);
	for (i = 0; i < npages; i++)
		KUNIT_ASSERT_EQ(test, hmm_kunit_touch(start, i, HMM_KUNIT_WRITTEN),
				0);
	mirror = hmm_kunit_mirror(test, start, npages);
	KUNIT_ASSERT_EQ(test, vm_munmap(start + (hole << PAGE_SHIFT), PAGE_SIZE),
			0);
	pfns = mirror->pfns;

	KUNIT_ASSERT_EQ(test, hmm_kunit_fault(mirror, 0, 0), 0);
	for (i = 0; i < npages; i++)
		KUNIT_EXPECT_EQ_MSG(test, pfns[i] & (VALID_W | HMM_PFN_ERROR),
				    i == hole ? HMM_PFN_ERROR : VALID_W,
				    "page %lu", i);

	KUNIT_EXPECT_EQ(test, hmm_kunit_fault(mirror, FAULT, 0), -EFAULT);

	/* Asking only for the pages around the hole is fine. */
	for (i = 0; i < npages; i++)
		pfns[i] = i == hole ? 0 : FAULT;
	KUNIT_EXPECT_EQ(test, hmm_kunit_fault(mirror, 0, FAULT), 0);
	KUNIT_EXPECT_EQ(test, pfns[hole], HMM_PFN_ERROR);
}

/* An invalidation between read_begin and the call: -EBUSY, then success. */
static void hmm_kunit_invalidation_gives_ebusy(struct kunit *test)
{
	unsigned long npages = 8, start, seq;
	struct hmm_kunit_mirror *mirror;
	struct hmm_range range = {};
	unsigned long *pfns;
	int ret;

	mirror = hmm_kunit_new(test, npages, RW);
	start = mirror->start;
	pfns = mirror->pfns;

	seq = mmu_interval_read_begin(&mirror->notifier);
	/* Unmapping the last page invalidates the range. */
	KUNIT_ASSERT_EQ(test, vm_munmap(mirror->end - PAGE_SIZE, PAGE_SIZE), 0);
	KUNIT_EXPECT_GE(test, READ_ONCE(mirror->invalidations), 1U);

	range.notifier = &mirror->notifier;
	range.notifier_seq = seq;
	range.start = start;
	range.end = mirror->end - PAGE_SIZE;
	range.hmm_pfns = pfns;
	range.default_flags = FAULT;
	mmap_read_lock(current->mm);
	ret = hmm_range_fault(&range);
	mmap_read_unlock(current->mm);
	KUNIT_EXPECT_EQ(test, ret, -EBUSY);
	KUNIT_EXPECT_TRUE(test, mmu_interval_read_retry(&mirror->notifier, seq));

	/* A fresh sequence count and the same call succeed. */
	ret = hmm_kunit_fault_once(mirror, start, mirror->end - PAGE_SIZE,
				   FAULT, 0);
	KUNIT_EXPECT_EQ(test, ret, 0);
}

/* Ranges hmm_range_fault() refuses before looking at the page tables. */
struct hmm_kunit_bad_range {
	const char *name;
	unsigned long start_off;	/* from the mapping's start */
	unsigned long end_off;
};

static const struct hmm_kunit_bad_range hmm_kunit_bad_ranges[] = {
	{ "unaligned_start", 1, 2 * PAGE_SIZE },
	{ "unaligned_end", 0, PAGE_SIZE + 8 },
	{ "empty", PAGE_SIZE, PAGE_SIZE },
	{ "end_before_start", 2 * PAGE_SIZE, PAGE_SIZE },
};

KUNIT_ARRAY_PARAM_DESC(hmm_kunit_bad_range, hmm_kunit_bad_ranges, name);

static void hmm_kunit_bad_range_einval(struct kunit *test)
{
	const struct hmm_kunit_bad_range *r = test->param_value;
	struct hmm_kunit_mirror *mirror;
	unsigned long start;

	mirror = hmm_kunit_new(test, 4, RW);
	start = mirror->start;
	KUNIT_EXPECT_EQ(test, hmm_kunit_fault_once(mirror, start + r->start_off,
						   start + r->end_off, FAULT, 0),
			-EINVAL);
}

/* Many PTE tables in one call: every page valid, distinct and right. */
static void hmm_kunit_fault_across_page_tables(struct kunit *test)
{
	unsigned long npages = 3 * PTRS_PER_PTE + 7, start, i;
	struct hmm_kunit_mirror *mirror;
	unsigned long *pfns;

	start = hmm_kunit_map(test, 0, npages, RW);
	/* Every other page written by the CPU, the rest left for the fault. */
	for (i = 0; i < npages; i += 2)
		KUNIT_ASSERT_EQ(test, hmm_kunit_touch(start, i, HMM_KUNIT_WRITTEN),
				0);
	mirror = hmm_kunit_mirror(test, start, npages);
	pfns = mirror->pfns;

	KUNIT_ASSERT_EQ(test, hmm_kunit_fault(mirror, WFAULT, 0), 0);
	for (i = 0; i < npages; i++) {
		KUNIT_EXPECT_EQ_MSG(test, pfns[i] & VALID_W, VALID_W, "page %lu", i);
		if (i)
			KUNIT_EXPECT_NE_MSG(test, pfns[i], pfns[i - 1], "page %lu", i);
		hmm_kunit_expect_page(test, pfns[i], i, i % 2 == 0);
	}
}

#ifdef CONFIG_TRANSPARENT_HUGEPAGE
/* A PMD-mapped THP is reported with its order and consecutive pfns. */
static void hmm_kunit_thp_reports_pmd_order(struct kunit *test)
{
	unsigned long npages = 2 * HPAGE_PMD_NR, map, start, i;
	struct hmm_kunit_mirror *mirror;
	unsigned long *pfns;

	map = hmm_kunit_map(test, 0, npages, RW);
	start = ALIGN(map, HPAGE_PMD_SIZE);
	KUNIT_ASSERT_LE(test, start + HPAGE_PMD_SIZE, map + (npages << PAGE_SHIFT));

	/* What madvise(MADV_HUGEPAGE) does. */
	hmm_kunit_set_vm_flags(test, start, VM_HUGEPAGE);

	for (i = 0; i < HPAGE_PMD_NR; i++)
		KUNIT_ASSERT_EQ(test, hmm_kunit_touch(start, i, HMM_KUNIT_WRITTEN),
				0);
	mirror = hmm_kunit_mirror(test, start, HPAGE_PMD_NR);
	pfns = mirror->pfns;

	KUNIT_ASSERT_EQ(test, hmm_kunit_fault(mirror, 0, 0), 0);
	for (i = 0; i < HPAGE_PMD_NR; i++) {
		KUNIT_EXPECT_EQ_MSG(test, pfns[i] & VALID_W, VALID_W, "page %lu", i);
		KUNIT_EXPECT_EQ_MSG(test, hmm_pfn_to_map_order(pfns[i]),
				    HPAGE_PMD_ORDER, "page %lu", i);
		KUNIT_EXPECT_EQ_MSG(test, page_to_pfn(hmm_pfn_to_page(pfns[i])),
				    page_to_pfn(hmm_pfn_to_page(pfns[0])) + i,
				    "page %lu", i);
		hmm_kunit_expect_page(test, pfns[i], i, true);
	}
}
#endif

/* ---- special PTEs: devmap pages and pages without a struct page ---- */

#if defined(CONFIG_ZONE_DEVICE) && defined(CONFIG_GET_FREE_REGION)

#define HMM_KUNIT_DEV_RANGE	(4UL << 20)	/* two subsections */

/*
 * Device memory of a DAX-like driver: a free range of physical address
 * space, its first half registered as a generic pagemap (struct pages, no
 * callbacks) and its second half left without struct pages. No case reads
 * or writes the memory itself: nothing backs it.
 */
struct hmm_kunit_devmem {
	struct dev_pagemap pgmap;
	struct resource *res;
};

static void hmm_kunit_devmem_release(void *data)
{
	struct hmm_kunit_devmem *dmem = data;

	/*
	 * KUnit runs this once the case's thread has released its mm, which
	 * may be before the mm's page tables are gone: each case unmaps its
	 * PTEs into this memory itself before it returns.
	 */
	memunmap_pages(&dmem->pgmap);
	release_mem_region(dmem->res->start, resource_size(dmem->res));
}

static struct hmm_kunit_devmem *hmm_kunit_devmem(struct kunit *test)
{
	struct hmm_kunit_devmem *dmem;
	void *addr;
	int ret;

	dmem = kunit_kzalloc(test, sizeof(*dmem), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, dmem);
	dmem->res = request_free_mem_region(&iomem_resource, HMM_KUNIT_DEV_RANGE,
					    "hmm_kunit");
	KUNIT_ASSERT_FALSE_MSG(test, IS_ERR(dmem->res), "no free range: %ld",
			       PTR_ERR(dmem->res));
	dmem->pgmap.type = MEMORY_DEVICE_GENERIC;
	dmem->pgmap.range.start = dmem->res->start;
	dmem->pgmap.range.end = dmem->res->start + HMM_KUNIT_DEV_RANGE / 2 - 1;
	dmem->pgmap.nr_range = 1;
	addr = memremap_pages(&dmem->pgmap, NUMA_NO_NODE);
	if (IS_ERR(addr)) {
		release_mem_region(dmem->res->start, resource_size(dmem->res));
		KUNIT_FAIL_AND_ABORT(test, "memremap_pages: %ld", PTR_ERR(addr));
	}
	ret = kunit_add_action_or_reset(test, hmm_kunit_devmem_release, dmem);
	KUNIT_ASSERT_EQ(test, ret, 0);
	return dmem;
}

/* Page @i of the device memory; past the pagemap there is no struct page. */
static unsigned long hmm_kunit_devmem_pfn(struct hmm_kunit_devmem *dmem,
					  unsigned long i)
{
	return PHYS_PFN(dmem->res->start) + i;
}

/*
 * Map frame @pfn at @addr the way a driver's fault handler does: a special
 * PTE, devmap too when @flags has PFN_DEV | PFN_MAP (what fsdax and
 * device-dax insert at 4 KiB), with the VMA's page protection: writable in
 * a writable shared mapping, read-only otherwise.
 */
static vm_fault_t hmm_kunit_insert_pfn(unsigned long addr, unsigned long pfn,
				       u64 flags)
{
	struct vm_area_struct *vma;
	vm_fault_t ret = VM_FAULT_SIGBUS;

	mmap_read_lock(current->mm);
	vma = vma_lookup(current->mm, addr);
	if (vma)
		ret = vmf_insert_mixed(vma, addr, __pfn_to_pfn_t(pfn, flags));
	mmap_read_unlock(current->mm);
	return ret;
}

/*
 * A devmap PTE (a DAX page mapped at 4 KiB) is special, and vm_normal_page()
 * does not resolve it, but its ZONE_DEVICE page is one a device can use:
 * it is reported with its pfn and the PTE's write permission, whatever the
 * request, and a request the PTE already meets faults nothing.
 */
/*
 * A devmap PTE (a DAX page mapped at 4 KiB) is special, and vm_normal_page()
 * does not resolve it, but its ZONE_DEVICE page is one a device can use:
 * it is reported with its pfn and the PTE's write permission, whatever the
 * request, and a request the PTE already meets faults nothing. Only
 * EXPECTs between inserting the PTEs and unmapping them: the pagemap must
 * not go while they exist.
 */
static void hmm_kunit_devmap_pte_is_reported(struct kunit *test)
{
	struct hmm_kunit_devmem *dmem;
	struct hmm_kunit_mirror *mirror;
	unsigned long pfn0, pfn1, start, *pfns;
	vm_fault_t ret0, ret1;
	unsigned int i;

	/* Where devmap PTEs are not special, DAX pages are normal ones. */
	if (!pte_special(pte_mkdevmap(pfn_pte(0, PAGE_READONLY))))
		kunit_skip(test, "devmap PTEs are not special here");
	dmem = hmm_kunit_devmem(test);
	pfn0 = hmm_kunit_devmem_pfn(dmem, 0);
	pfn1 = hmm_kunit_devmem_pfn(dmem, 1);

	/* Shared, as DAX is: page 0 read-only, pages 1 and 2 writable. */
	start = hmm_kunit_map_flags(test, 0, 3, RW, MAP_SHARED);
	hmm_kunit_map_flags(test, start, 1, PROT_READ, MAP_SHARED);
	mirror = hmm_kunit_mirror(test, start, 3);
	pfns = mirror->pfns;

	ret0 = hmm_kunit_insert_pfn(start, pfn0, PFN_DEV | PFN_MAP);
	ret1 = hmm_kunit_insert_pfn(start + PAGE_SIZE, pfn1, PFN_DEV | PFN_MAP);
	KUNIT_EXPECT_EQ(test, ret0, VM_FAULT_NOPAGE);
	KUNIT_EXPECT_EQ(test, ret1, VM_FAULT_NOPAGE);
	if (ret0 != VM_FAULT_NOPAGE || ret1 != VM_FAULT_NOPAGE)
		goto unmap;

	/* A snapshot: read-only, writable, and the page never mapped. */
	KUNIT_EXPECT_EQ(test, hmm_kunit_fault(mirror, 0, 0), 0);
	KUNIT_EXPECT_EQ(test, pfns[0], pfn0 | VALID);
	KUNIT_EXPECT_EQ(test, pfns[1], pfn1 | VALID_W);
	KUNIT_EXPECT_EQ(test, pfns[2], 0UL);
	if (pfns[0] == (pfn0 | VALID) && pfns[1] == (pfn1 | VALID_W)) {
		KUNIT_EXPECT_TRUE(test,
				  is_zone_device_page(hmm_pfn_to_page(pfns[0])));
		KUNIT_EXPECT_PTR_EQ(test, page_pgmap(hmm_pfn_to_page(pfns[1])),
				    &dmem->pgmap);
	}

	/* Asked to be valid, and writable where the PTE is: no fault taken. */
	pfns[0] = FAULT;
	pfns[1] = WFAULT;
	pfns[2] = 0;
	KUNIT_EXPECT_EQ(test, hmm_kunit_fault(mirror, 0, WFAULT), 0);
	KUNIT_EXPECT_EQ(test, pfns[0], pfn0 | VALID);
	KUNIT_EXPECT_EQ(test, pfns[1], pfn1 | VALID_W);
	KUNIT_EXPECT_EQ(test, pfns[2], 0UL);
	KUNIT_EXPECT_EQ(test, mirror->invalidations, 0U);
	for (i = 0; i < 2; i++)
		KUNIT_EXPECT_EQ_MSG(test, hmm_pfn_to_map_order(pfns[i]), 0U,
				    "page %u", i);
unmap:
	KUNIT_EXPECT_EQ(test, vm_munmap(start, 3 << PAGE_SHIFT), 0);
}

/*
 * A special PTE of a VM_MIXEDMAP mapping whose frame has no struct page
 * (device memory a driver maps raw) cannot be mirrored: HMM_PFN_ERROR in a
 * snapshot, -EFAULT when it is asked for.
 */
static void hmm_kunit_special_pte_without_page_is_error(struct kunit *test)
{
	struct hmm_kunit_devmem *dmem = hmm_kunit_devmem(test);
	unsigned long pfn = hmm_kunit_devmem_pfn(dmem,
						 (HMM_KUNIT_DEV_RANGE / 2) >>
						 PAGE_SHIFT);
	struct hmm_kunit_mirror *mirror;
	unsigned long start;
	vm_fault_t ret;

	KUNIT_ASSERT_FALSE(test, pfn_valid(pfn));
	start = hmm_kunit_map(test, 0, 1, RW);
	/* What a driver's mmap() of raw device memory sets. */
	hmm_kunit_set_vm_flags(test, start, VM_MIXEDMAP);
	mirror = hmm_kunit_mirror(test, start, 1);
	/* Only EXPECTs until the PTE is unmapped, as above. */
	ret = hmm_kunit_insert_pfn(start, pfn, PFN_DEV);
	KUNIT_EXPECT_EQ(test, ret, VM_FAULT_NOPAGE);
	if (ret == VM_FAULT_NOPAGE) {
		KUNIT_EXPECT_EQ(test, hmm_kunit_fault(mirror, 0, 0), 0);
		KUNIT_EXPECT_EQ(test, mirror->pfns[0], HMM_PFN_ERROR);
		KUNIT_EXPECT_EQ(test, hmm_kunit_fault(mirror, FAULT, 0),
				-EFAULT);
	}
	KUNIT_EXPECT_EQ(test, vm_munmap(start, PAGE_SIZE), 0);
}
#endif /* CONFIG_ZONE_DEVICE && CONFIG_GET_FREE_REGION */

#ifdef CONFIG_HMM_MIGRATE_WALK
/*
 * HMM_PFN_REQ_MIGRATE: one walk that mirrors and collects for migration.
 * The cases collect system memory for a migration that then gets no
 * destination, so that migrate_vma_pages() and migrate_vma_finalize() put
 * everything back: what they check is what the walk collected, and that
 * nothing is lost or left locked.
 */

/* What one collecting walk left, copied out before everything is put back. */
struct hmm_kunit_collected {
	int ret;
	unsigned long cpages;
	unsigned long *src;		/* src[] after migrate_hmm_range_setup() */
};

/*
 * hmm_range_fault() with @flags and HMM_PFN_REQ_MIGRATE over the whole
 * mirror, for a migration of its system memory, with the sequence count
 * @seq (0: a fresh one each time, retried on -EBUSY as a driver does),
 * then migrate_hmm_range_setup(), pages and finalize with no destination.
 * @alias makes src[] the output array, which the walk must refuse;
 * @no_migrate leaves hmm_range.migrate NULL.
 */
static struct hmm_kunit_collected
hmm_kunit_collect(struct kunit *test, struct hmm_kunit_mirror *mirror,
		  unsigned long flags, unsigned long seq, bool alias,
		  bool no_migrate)
{
	unsigned long npages = (mirror->end - mirror->start) >> PAGE_SHIFT;
	struct hmm_kunit_collected out = {};
	unsigned long timeout;
	struct migrate_vma args = {
		.start = mirror->start,
		.end = mirror->end,
		.pgmap_owner = mirror,
		.flags = MIGRATE_VMA_SELECT_SYSTEM,
	};
	struct hmm_range range = {
		.notifier = &mirror->notifier,
		.start = mirror->start,
		.end = mirror->end,
		.hmm_pfns = mirror->pfns,
		.default_flags = flags | HMM_PFN_REQ_MIGRATE,
		.migrate = no_migrate ? NULL : &args,
	};

	args.src = kunit_kcalloc(test, npages, sizeof(*args.src), GFP_KERNEL);
	args.dst = kunit_kcalloc(test, npages, sizeof(*args.dst), GFP_KERNEL);
	out.src = kunit_kcalloc(test, npages, sizeof(*out.src), GFP_KERNEL);
	KUNIT_ASSERT_TRUE(test, args.src && args.dst && out.src);
	timeout = jiffies + msecs_to_jiffies(HMM_RANGE_DEFAULT_TIMEOUT);
	if (alias)
		range.hmm_pfns = args.src;
	do {
		range.notifier_seq = seq ?:
				     mmu_interval_read_begin(&mirror->notifier);
		mmap_read_lock(current->mm);
		args.vma = vma_lookup(current->mm, mirror->start);
		out.ret = hmm_range_fault(&range);
		migrate_hmm_range_setup(&range);
		out.cpages = args.cpages;
		memcpy(out.src, args.src, npages * sizeof(*out.src));
		if (!out.ret) {
			migrate_vma_pages(&args);
			migrate_vma_finalize(&args);
		}
		mmap_read_unlock(current->mm);
	} while (!seq && out.ret == -EBUSY && time_before(jiffies, timeout));
	return out;
}

/*
 * The layout of the collecting cases: written pages, then pages that were
 * only read (the zero page), then pages never touched.
 */
enum { WZE_ZERO_FROM = 8, WZE_EMPTY_FROM = 16, WZE_PAGES = 24 };

static struct hmm_kunit_mirror *hmm_kunit_written_zero_empty(struct kunit *test)
{
	struct hmm_kunit_mirror *mirror = hmm_kunit_new(test, WZE_PAGES, RW);
	const unsigned long zero_from = WZE_ZERO_FROM;
	unsigned long i;

	for (i = 0; i < WZE_EMPTY_FROM; i++)
		KUNIT_ASSERT_EQ(test, hmm_kunit_touch(mirror->start, i,
						      i < zero_from ?
						      HMM_KUNIT_WRITTEN :
						      HMM_KUNIT_READ), 0);
	return mirror;
}

/*
 * Written pages are collected (locked, unmapped: a page in src[]), the zero
 * page and never-touched addresses are empty sources, and the latter are
 * not faulted in although the walk asks for every page: the driver fills
 * them. Afterwards all is as before.
 */
static void hmm_kunit_migrate_walk_collects(struct kunit *test)
{
	const unsigned long npages = WZE_PAGES, zero_from = WZE_ZERO_FROM;
	struct hmm_kunit_mirror *mirror = hmm_kunit_written_zero_empty(test);
	const unsigned long empty_from = WZE_EMPTY_FROM;
	struct hmm_kunit_collected c;
	unsigned long i;

	c = hmm_kunit_collect(test, mirror, FAULT, 0, false, false);
	KUNIT_ASSERT_EQ(test, c.ret, 0);
	KUNIT_EXPECT_EQ(test, c.cpages, npages);
	for (i = 0; i < npages; i++) {
		unsigned long word = mirror->pfns[i];

		KUNIT_EXPECT_TRUE_MSG(test, c.src[i] & MIGRATE_PFN_MIGRATE,
				      "page %lu", i);
		KUNIT_EXPECT_EQ_MSG(test, !!(c.src[i] & MIGRATE_PFN_VALID),
				    i < zero_from, "page %lu", i);
		KUNIT_EXPECT_TRUE_MSG(test, word & HMM_PFN_MIGRATE,
				      "page %lu", i);
		if (i < zero_from)
			KUNIT_EXPECT_PTR_EQ_MSG(test, hmm_pfn_to_page(word),
						migrate_pfn_to_page(c.src[i]),
						"page %lu", i);
		else if (i < empty_from)
			KUNIT_EXPECT_TRUE_MSG(test,
					      is_zero_pfn(page_to_pfn(hmm_pfn_to_page(word))),
					      "page %lu", i);
		else
			KUNIT_EXPECT_EQ_MSG(test, word, (unsigned long)HMM_PFN_MIGRATE,
					    "page %lu not left empty", i);
	}

	/* Put back: the data is there, the empty pages still are empty. */
	KUNIT_ASSERT_EQ(test, hmm_kunit_fault(mirror, 0, 0), 0);
	for (i = 0; i < npages; i++) {
		KUNIT_EXPECT_EQ_MSG(test, !!(mirror->pfns[i] & VALID),
				    i < empty_from, "page %lu", i);
		if (i < zero_from)
			hmm_kunit_expect_page(test, mirror->pfns[i], i, true);
	}
}

/*
 * A write request makes the walk fault the zero pages in writable. It
 * holds nothing collected across the fault: once nothing is left to
 * fault it collects the range whole, the faulted pages as the fresh
 * pages they now are; the empty ones still are not faulted.
 */
static void hmm_kunit_migrate_walk_faults_midway(struct kunit *test)
{
	const unsigned long npages = WZE_PAGES, zero_from = WZE_ZERO_FROM;
	struct hmm_kunit_mirror *mirror = hmm_kunit_written_zero_empty(test);
	const unsigned long empty_from = WZE_EMPTY_FROM;
	struct hmm_kunit_collected c;
	unsigned long i;

	c = hmm_kunit_collect(test, mirror, FAULT | HMM_PFN_REQ_WRITE, 0,
			      false, false);
	KUNIT_ASSERT_EQ(test, c.ret, 0);
	KUNIT_EXPECT_EQ(test, c.cpages, npages);
	for (i = 0; i < npages; i++) {
		KUNIT_EXPECT_EQ_MSG(test, !!(c.src[i] & MIGRATE_PFN_VALID),
				    i < empty_from, "page %lu", i);
		KUNIT_EXPECT_EQ_MSG(test, mirror->pfns[i],
				    i < empty_from ?
				    (page_to_pfn(migrate_pfn_to_page(c.src[i])) |
				     VALID_W | HMM_PFN_MIGRATE) :
				    (unsigned long)HMM_PFN_MIGRATE,
				    "page %lu", i);
	}

	KUNIT_ASSERT_EQ(test, hmm_kunit_fault(mirror, 0, 0), 0);
	for (i = 0; i < npages; i++) {
		KUNIT_EXPECT_EQ_MSG(test, mirror->pfns[i] & VALID_W,
				    i < empty_from ? VALID_W : 0UL, "page %lu", i);
		if (i < empty_from)
			hmm_kunit_expect_page(test, mirror->pfns[i], i,
					      i < zero_from);
	}
}

/* A walk that fails collects nothing: src[] all 0, every page unlocked. */
static void hmm_kunit_migrate_walk_ebusy_keeps_nothing(struct kunit *test)
{
	const unsigned long npages = 8;
	struct hmm_kunit_collected c;
	struct hmm_kunit_mirror *mirror;
	unsigned long i, seq;

	mirror = hmm_kunit_new(test, npages, RW);
	for (i = 0; i < npages; i++)
		KUNIT_ASSERT_EQ(test, hmm_kunit_touch(mirror->start, i,
						      HMM_KUNIT_WRITTEN), 0);
	seq = mmu_interval_read_begin(&mirror->notifier);
	/* An invalidation: the last page goes, the walk covers the rest. */
	KUNIT_ASSERT_EQ(test, vm_munmap(mirror->end - PAGE_SIZE, PAGE_SIZE), 0);
	mirror->end -= PAGE_SIZE;

	c = hmm_kunit_collect(test, mirror, FAULT, seq, false, false);
	KUNIT_EXPECT_EQ(test, c.ret, -EBUSY);
	KUNIT_EXPECT_EQ(test, c.cpages, 0UL);
	for (i = 0; i < npages - 1; i++)
		KUNIT_EXPECT_EQ_MSG(test, c.src[i], 0UL, "page %lu", i);

	/* Nothing was left locked: a second walk collects them all again. */
	c = hmm_kunit_collect(test, mirror, FAULT, 0, false, false);
	KUNIT_EXPECT_EQ(test, c.ret, 0);
	KUNIT_EXPECT_EQ(test, c.cpages, npages - 1);
	KUNIT_ASSERT_EQ(test, hmm_kunit_fault(mirror, 0, 0), 0);
	for (i = 0; i < npages - 1; i++)
		hmm_kunit_expect_page(test, mirror->pfns[i], i, true);
}

/* What the walk refuses before it collects a page: -EINVAL. */
static void hmm_kunit_migrate_walk_bad_input(struct kunit *test)
{
	struct hmm_kunit_mirror *mirror = hmm_kunit_new(test, 4, RW);
	struct hmm_kunit_collected c;

	c = hmm_kunit_collect(test, mirror, FAULT, 0, false, true);
	KUNIT_EXPECT_EQ_MSG(test, c.ret, -EINVAL, "no hmm_range.migrate");
	c = hmm_kunit_collect(test, mirror, FAULT, 0, true, false);
	KUNIT_EXPECT_EQ_MSG(test, c.ret, -EINVAL, "src[] is hmm_pfns[]");
	KUNIT_EXPECT_EQ(test, c.cpages, 0UL);
}
#endif /* CONFIG_HMM_MIGRATE_WALK */

static struct kunit_case hmm_kunit_cases[] = {
	KUNIT_CASE_PARAM(hmm_kunit_request_matrix, hmm_kunit_matrix_gen_params),
	KUNIT_CASE(hmm_kunit_snapshot_overwrites_input),
	KUNIT_CASE(hmm_kunit_dma_bits_are_carried),
	KUNIT_CASE(hmm_kunit_fault_only_requested_pages),
	KUNIT_CASE(hmm_kunit_default_plus_mask),
	KUNIT_CASE(hmm_kunit_write_across_readonly_vma),
	KUNIT_CASE(hmm_kunit_hole_without_vma),
	KUNIT_CASE(hmm_kunit_invalidation_gives_ebusy),
	KUNIT_CASE_PARAM(hmm_kunit_bad_range_einval,
			 hmm_kunit_bad_range_gen_params),
	KUNIT_CASE(hmm_kunit_fault_across_page_tables),
#if defined(CONFIG_ZONE_DEVICE) && defined(CONFIG_GET_FREE_REGION)
	KUNIT_CASE(hmm_kunit_devmap_pte_is_reported),
	KUNIT_CASE(hmm_kunit_special_pte_without_page_is_error),
#endif
#ifdef CONFIG_TRANSPARENT_HUGEPAGE
	KUNIT_CASE(hmm_kunit_thp_reports_pmd_order),
#endif
#ifdef CONFIG_HMM_MIGRATE_WALK
	KUNIT_CASE(hmm_kunit_migrate_walk_collects),
	KUNIT_CASE(hmm_kunit_migrate_walk_faults_midway),
	KUNIT_CASE(hmm_kunit_migrate_walk_ebusy_keeps_nothing),
	KUNIT_CASE(hmm_kunit_migrate_walk_bad_input),
#endif
	{}
};

static struct kunit_suite hmm_kunit_suite = {
	.name = "hmm_range_fault",
	.test_cases = hmm_kunit_cases,
};

kunit_test_suite(hmm_kunit_suite);

/*
 * The DMA helpers (include/linux/hmm-dma.h), on a device of KUnit's own bus.
 * No IOMMU translates for it, so its DMA addresses are the direct mapping of
 * the CPU's physical addresses (phys_to_dma()), which lets the cases check
 * every address the helpers return. Suite "dma" of harness/suites checks
 * them behind an IOMMU, with a device that really reads the memory.
 */

/*
 * A DMA-capable device for the case, with DMA mask @mask; coherent (x86).
 * @name tells the devices of one case apart.
 */
static struct device *hmm_kunit_dma_named(struct kunit *test,
					  const char *name, u64 mask)
{
	struct device *dev = kunit_device_register(test, name);

	KUNIT_ASSERT_FALSE(test, IS_ERR(dev));
	dev->dma_mask = &dev->coherent_dma_mask;
	KUNIT_ASSERT_EQ(test, dma_set_mask_and_coherent(dev, mask), 0);
	return dev;
}

static struct device *hmm_kunit_dma_device(struct kunit *test, u64 mask)
{
	return hmm_kunit_dma_named(test, "hmm-dma-kunit", mask);
}

struct hmm_kunit_dma_bad_alloc {
	const char *desc;
	size_t nr_entries;
	size_t dma_entry_size;
};

static const struct hmm_kunit_dma_bad_alloc hmm_kunit_dma_bad_allocs[] = {
	{ "no entries", 0, PAGE_SIZE },
	{ "entry size 0", 16, 0 },
	{ "entry smaller than a page", 16, PAGE_SIZE / 2 },
	{ "entry size not a power of two", 16, 3 * PAGE_SIZE },
	{ "entry larger than the region", 16, 32 * PAGE_SIZE },
};

KUNIT_ARRAY_PARAM_DESC(hmm_kunit_dma_bad_alloc, hmm_kunit_dma_bad_allocs,
		       desc);

/* A region or entry size that makes no sense: -EINVAL, nothing allocated. */
static void hmm_kunit_dma_alloc_einval(struct kunit *test)
{
	const struct hmm_kunit_dma_bad_alloc *b = test->param_value;
	struct device *dev = hmm_kunit_dma_device(test, DMA_BIT_MASK(64));
	struct hmm_dma_map map;

	memset(&map, 0xa5, sizeof(map));
	KUNIT_EXPECT_EQ(test, hmm_dma_map_alloc(dev, &map, b->nr_entries,
						b->dma_entry_size),
			-EINVAL);
	KUNIT_EXPECT_NULL(test, map.pfn_list);
	KUNIT_EXPECT_NULL(test, map.dma_list);
	hmm_dma_map_free(dev, &map);
}

/*
 * A device that could not reach every page without bouncing or cache
 * maintenance is refused: one with no DMA mask, one whose mask stops
 * short of the guest's memory (the guest has RAM above 4 GiB), and one
 * that needs DMA sync operations.
 */
static void hmm_kunit_dma_alloc_refuses_device(struct kunit *test)
{
	struct device *dev = kunit_device_register(test, "hmm-dma-nomask");
	struct hmm_dma_map map;

	KUNIT_ASSERT_FALSE(test, IS_ERR(dev));
	dev->dma_mask = NULL;		/* KUnit gives its devices one */
	KUNIT_EXPECT_EQ(test, hmm_dma_map_alloc(dev, &map, 16, PAGE_SIZE),
			-EOPNOTSUPP);
	KUNIT_EXPECT_NULL(test, map.pfn_list);

	dev = hmm_kunit_dma_named(test, "hmm-dma-32bit", DMA_BIT_MASK(32));
	KUNIT_ASSERT_GT_MSG(test, dma_get_required_mask(dev), DMA_BIT_MASK(32),
			    "the case needs RAM above 4 GiB");
	KUNIT_EXPECT_EQ(test, hmm_dma_map_alloc(dev, &map, 16, PAGE_SIZE),
			-EOPNOTSUPP);
	KUNIT_EXPECT_NULL(test, map.pfn_list);

#ifdef CONFIG_DMA_NEED_SYNC
	/*
	 * One that needs sync operations, as a device that is not cache
	 * coherent does (x86 has none), or one that swiotlb bounced for.
	 */
	dev = hmm_kunit_dma_named(test, "hmm-dma-sync", DMA_BIT_MASK(64));
	KUNIT_ASSERT_EQ(test, hmm_dma_map_alloc(dev, &map, 16, PAGE_SIZE), 0);
	hmm_dma_map_free(dev, &map);
	dev->dma_skip_sync = false;
	KUNIT_EXPECT_EQ(test, hmm_dma_map_alloc(dev, &map, 16, PAGE_SIZE),
			-EOPNOTSUPP);
	KUNIT_EXPECT_NULL(test, map.pfn_list);
#endif
}

/*
 * A map of @npages entries for @dev, and a fresh mapping of as many pages
 * mirrored straight into the map's pfn_list, as a driver with the DMA
 * helpers mirrors; nothing faulted yet.
 */
static struct hmm_kunit_mirror *hmm_kunit_dma_mirror(struct kunit *test,
						     struct device *dev,
						     struct hmm_dma_map *map,
						     unsigned long npages)
{
	struct hmm_kunit_mirror *mirror;

	KUNIT_ASSERT_EQ(test, hmm_dma_map_alloc(dev, map, npages, PAGE_SIZE),
			0);
	mirror = hmm_kunit_mirror(test, hmm_kunit_map(test, 0, npages, RW),
				  npages);
	mirror->pfns = map->pfn_list;
	return mirror;
}

/*
 * Mirror, map, mirror again, unmap: each entry's address is the page's,
 * mapping twice maps once, hmm_range_fault() keeps the mapped state, and
 * unmapping is undone exactly once per mapping.
 */
static void hmm_kunit_dma_map_unmap(struct kunit *test)
{
	unsigned long npages = HMM_KUNIT_NPAGES, i;
	struct device *dev = hmm_kunit_dma_device(test, DMA_BIT_MASK(64));
	struct hmm_kunit_mirror *mirror;
	struct hmm_dma_map map;
	dma_addr_t addr;

	mirror = hmm_kunit_dma_mirror(test, dev, &map, npages);
	KUNIT_EXPECT_FALSE(test, dma_use_iova(&map.state));
	KUNIT_EXPECT_EQ(test, map.dma_entry_size, PAGE_SIZE);
	for (i = 0; i < npages; i++)
		KUNIT_EXPECT_EQ(test, map.pfn_list[i], 0UL);
	KUNIT_ASSERT_EQ(test, hmm_kunit_fault(mirror, WFAULT, 0), 0);

	for (i = 0; i < npages; i++) {
		phys_addr_t phys = hmm_pfn_to_phys(map.pfn_list[i]);

		addr = hmm_dma_map_pfn(dev, &map, i, NULL);
		KUNIT_EXPECT_EQ_MSG(test, addr, phys_to_dma(dev, phys),
				    "page %lu", i);
		KUNIT_EXPECT_TRUE(test, map.pfn_list[i] & HMM_PFN_DMA_MAPPED);
		KUNIT_EXPECT_FALSE(test, map.pfn_list[i] &
				   (HMM_PFN_P2PDMA | HMM_PFN_P2PDMA_BUS));
		KUNIT_EXPECT_EQ(test, hmm_dma_map_pfn(dev, &map, i, NULL),
				addr);
	}

	/* The next mirror of the same pages leaves the mappings recorded. */
	KUNIT_ASSERT_EQ(test, hmm_kunit_fault(mirror, WFAULT, 0), 0);
	for (i = 0; i < npages; i++) {
		KUNIT_EXPECT_EQ_MSG(test, map.pfn_list[i] &
				    (HMM_PFN_DMA_MAPPED | VALID_W),
				    HMM_PFN_DMA_MAPPED | VALID_W,
				    "page %lu", i);
		KUNIT_EXPECT_TRUE(test, hmm_dma_unmap_pfn(dev, &map, i));
		KUNIT_EXPECT_EQ(test, map.pfn_list[i] & HMM_KUNIT_DMA_BITS,
				0UL);
		KUNIT_EXPECT_FALSE(test, hmm_dma_unmap_pfn(dev, &map, i));
	}
	hmm_dma_map_free(dev, &map);
	KUNIT_EXPECT_NULL(test, map.pfn_list);
	hmm_dma_map_free(dev, &map);
}

/*
 * An entry is mapped only if it is a valid page: not an empty entry, not an
 * error. A mapped entry whose page the CPU has since lost (the next
 * mirror reports a hole) is still unmapped, exactly once.
 */
static void hmm_kunit_dma_map_needs_valid_page(struct kunit *test)
{
	unsigned long npages = 4;
	struct device *dev = hmm_kunit_dma_device(test, DMA_BIT_MASK(64));
	struct hmm_kunit_mirror *mirror;
	struct hmm_dma_map map;

	mirror = hmm_kunit_dma_mirror(test, dev, &map, npages);
	KUNIT_ASSERT_EQ(test, hmm_kunit_touch(mirror->start, 0,
					      HMM_KUNIT_WRITTEN), 0);
	KUNIT_ASSERT_EQ(test, hmm_kunit_fault(mirror, 0, 0), 0);

	/* Page 1 is not mapped by the CPU; an error entry is never a page. */
	KUNIT_EXPECT_EQ(test, hmm_dma_map_pfn(dev, &map, 1, NULL),
			DMA_MAPPING_ERROR);
	KUNIT_EXPECT_EQ(test, map.pfn_list[1], 0UL);
	map.pfn_list[2] = HMM_PFN_ERROR | HMM_PFN_VALID;
	KUNIT_EXPECT_EQ(test, hmm_dma_map_pfn(dev, &map, 2, NULL),
			DMA_MAPPING_ERROR);
	KUNIT_EXPECT_FALSE(test, map.pfn_list[2] & HMM_PFN_DMA_MAPPED);
	KUNIT_EXPECT_FALSE(test, hmm_dma_unmap_pfn(dev, &map, 2));
	map.pfn_list[2] = 0;

	KUNIT_ASSERT_NE(test, hmm_dma_map_pfn(dev, &map, 0, NULL),
			DMA_MAPPING_ERROR);
	KUNIT_ASSERT_EQ(test, vm_munmap(mirror->start, PAGE_SIZE), 0);
	KUNIT_ASSERT_EQ(test, hmm_kunit_fault(mirror, 0, 0), 0);
	KUNIT_EXPECT_EQ(test, map.pfn_list[0],
			HMM_PFN_ERROR | HMM_PFN_DMA_MAPPED);
	KUNIT_EXPECT_TRUE(test, hmm_dma_unmap_pfn(dev, &map, 0));
	KUNIT_EXPECT_EQ(test, map.pfn_list[0], HMM_PFN_ERROR);
	KUNIT_EXPECT_FALSE(test, hmm_dma_unmap_pfn(dev, &map, 0));
	hmm_dma_map_free(dev, &map);
}

/*
 * hmm_range_fault() carries the DMA bits by reading and storing back each
 * word without the driver's lock, so a walk racing with an invalidation can
 * store HMM_PFN_DMA_MAPPED back into a word whose entry was just unmapped,
 * now naming another page. The helpers must not take that bit's word for
 * it: unmapping does nothing, and mapping maps the page the word names.
 */
static void hmm_kunit_dma_stale_bits_are_ignored(struct kunit *test)
{
	unsigned long npages = 2;
	struct device *dev = hmm_kunit_dma_device(test, DMA_BIT_MASK(64));
	struct hmm_kunit_mirror *mirror;
	unsigned long other, stale;
	struct hmm_dma_map map;
	dma_addr_t addr;

	mirror = hmm_kunit_dma_mirror(test, dev, &map, npages);
	KUNIT_ASSERT_EQ(test, hmm_kunit_fault(mirror, WFAULT, 0), 0);
	other = map.pfn_list[1];

	addr = hmm_dma_map_pfn(dev, &map, 0, NULL);
	KUNIT_ASSERT_NE(test, addr, DMA_MAPPING_ERROR);
	KUNIT_ASSERT_TRUE(test, hmm_dma_unmap_pfn(dev, &map, 0));

	/* What the racing walk leaves: page 1's frame, page 0's old bits. */
	stale = other | HMM_PFN_DMA_MAPPED | HMM_PFN_P2PDMA_BUS;
	map.pfn_list[0] = stale;
	KUNIT_EXPECT_FALSE(test, hmm_dma_unmap_pfn(dev, &map, 0));
	KUNIT_EXPECT_EQ(test, map.pfn_list[0], other);

	map.pfn_list[0] = stale;
	addr = hmm_dma_map_pfn(dev, &map, 0, NULL);
	KUNIT_EXPECT_EQ(test, addr,
			phys_to_dma(dev, hmm_pfn_to_phys(other)));
	KUNIT_EXPECT_EQ(test, map.pfn_list[0], other | HMM_PFN_DMA_MAPPED);
	KUNIT_EXPECT_TRUE(test, hmm_dma_unmap_pfn(dev, &map, 0));
	KUNIT_EXPECT_EQ(test, map.pfn_list[0], other);
	hmm_dma_map_free(dev, &map);
}

/*
 * Pages the process only read are all the zero page: the map maps it once,
 * for every such entry, and each entry still unmaps once.
 */
static void hmm_kunit_dma_zero_page_mapped_once(struct kunit *test)
{
	unsigned long npages = 12, i;
	struct device *dev = hmm_kunit_dma_device(test, DMA_BIT_MASK(64));
	struct hmm_kunit_mirror *mirror;
	struct hmm_dma_map map;
	dma_addr_t addr;

	mirror = hmm_kunit_dma_mirror(test, dev, &map, npages);
	KUNIT_ASSERT_EQ(test, hmm_kunit_fault(mirror, FAULT, 0), 0);
	for (i = 0; i < npages; i++) {
		unsigned long pfn = map.pfn_list[i] & ~HMM_PFN_FLAGS;

		KUNIT_ASSERT_TRUE(test, is_zero_pfn(pfn));
		addr = hmm_dma_map_pfn(dev, &map, i, NULL);
		KUNIT_EXPECT_EQ_MSG(test, addr,
				    phys_to_dma(dev, page_to_phys(ZERO_PAGE(0))),
				    "page %lu", i);
		KUNIT_EXPECT_TRUE(test, map.pfn_list[i] & HMM_PFN_DMA_MAPPED);
	}
	KUNIT_EXPECT_FALSE(test, dma_use_iova(&map.state));
	for (i = 0; i < npages; i++) {
		KUNIT_EXPECT_TRUE(test, hmm_dma_unmap_pfn(dev, &map, i));
		KUNIT_EXPECT_FALSE(test, hmm_dma_unmap_pfn(dev, &map, i));
	}
	hmm_dma_map_free(dev, &map);
	KUNIT_EXPECT_EQ(test, map.state.addr, 0);
}

/*
 * A map that is only a pfn_list, as RDMA's software devices keep (they do
 * no DMA, and never call hmm_dma_map_alloc()), still goes through
 * hmm_dma_unmap_pfn() with no device: nothing to undo, and no stale bit
 * left behind.
 */
static void hmm_kunit_dma_pfn_list_only(struct kunit *test)
{
	struct hmm_dma_map map = {};
	unsigned long i;

	map.pfn_list = kunit_kcalloc(test, 4, sizeof(*map.pfn_list),
				     GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, map.pfn_list);
	for (i = 0; i < 4; i++)
		map.pfn_list[i] = HMM_PFN_VALID | HMM_PFN_DMA_MAPPED | i;
	for (i = 0; i < 4; i++) {
		KUNIT_EXPECT_FALSE(test, hmm_dma_unmap_pfn(NULL, &map, i));
		KUNIT_EXPECT_EQ(test, map.pfn_list[i], HMM_PFN_VALID | i);
	}
}

#ifdef CONFIG_TRANSPARENT_HUGEPAGE
/*
 * A device that maps in 2 MiB units: one entry maps the whole THP behind
 * it, at the THP's address.
 */
/*
 * A PMD-aligned 2 MiB of written memory with VMA flags @vm_flags (THP or
 * not), mirrored into a fresh map of 2 MiB entries for @dev.
 */
static void hmm_kunit_dma_pmd_map(struct kunit *test, struct device *dev,
				  vm_flags_t vm_flags, struct hmm_dma_map *map)
{
	unsigned long area, start, i;
	struct hmm_kunit_mirror *mirror;

	area = hmm_kunit_map(test, 0, 2 * HPAGE_PMD_NR, RW);
	start = ALIGN(area, HPAGE_PMD_SIZE);
	hmm_kunit_set_vm_flags(test, start, vm_flags);
	for (i = 0; i < HPAGE_PMD_NR; i++)
		KUNIT_ASSERT_EQ(test, hmm_kunit_touch(start, i, HMM_KUNIT_WRITTEN),
				0);
	KUNIT_ASSERT_EQ(test, hmm_dma_map_alloc(dev, map, HPAGE_PMD_NR,
						HPAGE_PMD_SIZE), 0);
	mirror = hmm_kunit_mirror(test, start, HPAGE_PMD_NR);
	mirror->pfns = map->pfn_list;
	KUNIT_ASSERT_EQ(test, hmm_kunit_fault(mirror, 0, 0), 0);
}

static void hmm_kunit_dma_map_thp_entry(struct kunit *test)
{
	struct device *dev = hmm_kunit_dma_device(test, DMA_BIT_MASK(64));
	struct hmm_dma_map map;
	dma_addr_t addr;

	hmm_kunit_dma_pmd_map(test, dev, VM_HUGEPAGE, &map);
	KUNIT_ASSERT_EQ(test, hmm_pfn_to_map_order(map.pfn_list[0]),
			HPAGE_PMD_ORDER);

	addr = hmm_dma_map_pfn(dev, &map, 0, NULL);
	KUNIT_EXPECT_EQ(test, addr,
			phys_to_dma(dev, hmm_pfn_to_phys(map.pfn_list[0])));
	KUNIT_EXPECT_TRUE(test, IS_ALIGNED(addr, HPAGE_PMD_SIZE));
	KUNIT_EXPECT_TRUE(test, hmm_dma_unmap_pfn(dev, &map, 0));

	/* Not from the THP's first page: a 2 MiB entry must be aligned. */
	KUNIT_EXPECT_EQ(test, hmm_dma_map_pfn(dev, &map, 1, NULL),
			DMA_MAPPING_ERROR);
	hmm_dma_map_free(dev, &map);
}

/* A 2 MiB entry over pages the CPU maps one by one is refused. */
static void hmm_kunit_dma_large_entry_needs_large_mapping(struct kunit *test)
{
	struct device *dev = hmm_kunit_dma_device(test, DMA_BIT_MASK(64));
	struct hmm_dma_map map;

	hmm_kunit_dma_pmd_map(test, dev, VM_NOHUGEPAGE, &map);
	KUNIT_ASSERT_EQ(test, hmm_pfn_to_map_order(map.pfn_list[0]), 0);
	KUNIT_EXPECT_EQ(test, hmm_dma_map_pfn(dev, &map, 0, NULL),
			DMA_MAPPING_ERROR);
	KUNIT_EXPECT_FALSE(test, hmm_dma_unmap_pfn(dev, &map, 0));
	hmm_dma_map_free(dev, &map);
}
#endif

static struct kunit_case hmm_kunit_dma_cases[] = {
	KUNIT_CASE_PARAM(hmm_kunit_dma_alloc_einval,
			 hmm_kunit_dma_bad_alloc_gen_params),
	KUNIT_CASE(hmm_kunit_dma_alloc_refuses_device),
	KUNIT_CASE(hmm_kunit_dma_map_unmap),
	KUNIT_CASE(hmm_kunit_dma_map_needs_valid_page),
	KUNIT_CASE(hmm_kunit_dma_stale_bits_are_ignored),
	KUNIT_CASE(hmm_kunit_dma_zero_page_mapped_once),
	KUNIT_CASE(hmm_kunit_dma_pfn_list_only),
#ifdef CONFIG_TRANSPARENT_HUGEPAGE
	KUNIT_CASE(hmm_kunit_dma_map_thp_entry),
	KUNIT_CASE(hmm_kunit_dma_large_entry_needs_large_mapping),
#endif
	{}
};

static struct kunit_suite hmm_kunit_dma_suite = {
	.name = "hmm_dma",
	.test_cases = hmm_kunit_dma_cases,
};

kunit_test_suite(hmm_kunit_dma_suite);

MODULE_DESCRIPTION("KUnit tests of hmm_range_fault() and the HMM DMA helpers");
MODULE_LICENSE("GPL");
