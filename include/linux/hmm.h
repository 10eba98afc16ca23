/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Heterogeneous Memory Management: mirroring a process's page tables.
 *
 * A device that works in a process's virtual address space keeps its own
 * page table and fills it from the CPU's with hmm_range_fault(). The driver
 * describes the range in a struct hmm_range and passes one unsigned long per
 * page. On the way in, each word may hold request bits (HMM_PFN_REQ_*); on
 * the way out it holds a page frame number in its low bits and the state of
 * the CPU mapping (HMM_PFN_VALID, HMM_PFN_WRITE, HMM_PFN_ERROR, the map
 * order) in its top bits.
 *
 * The output is a snapshot: it is only as good as the mmu_interval_notifier
 * sequence number it was taken under. See Documentation/mm/hmm.rst for the
 * retry loop a driver runs around it.
 */
#ifndef LINUX_HMM_H
#define LINUX_HMM_H

#include <linux/mm.h>

struct migrate_vma;
struct mmu_interval_notifier;

/**
 * enum hmm_pfn_flags - the top bits of each hmm_pfns[] word
 * @HMM_PFN_VALID: output; the CPU maps this page, and the low bits hold its
 *	page frame number. Without it the rest of the word means nothing.
 * @HMM_PFN_WRITE: output; the CPU mapping is writable (only with
 *	HMM_PFN_VALID).
 * @HMM_PFN_ERROR: output; the page cannot be mirrored (no VMA there, a VMA
 *	without struct pages such as VM_PFNMAP or VM_IO, or a mapping the CPU
 *	itself cannot read) and the caller did not ask for it to be faulted.
 * @HMM_PFN_DMA_MAPPED: kept; hmm_dma_map_pfn() mapped this entry for the
 *	device, and hmm_dma_unmap_pfn() has not yet undone it.
 * @HMM_PFN_P2PDMA: kept; the entry's page is PCI peer-to-peer memory that
 *	the device reaches through the host bridge, mapped by the DMA API.
 * @HMM_PFN_P2PDMA_BUS: kept; the entry's page is PCI peer-to-peer memory
 *	behind the same switch as the device, addressed by its PCI bus
 *	address: no DMA API mapping to undo.
 * @HMM_PFN_MIGRATE: output, only with @HMM_PFN_REQ_MIGRATE asked for; the
 *	entry was collected for @hmm_range.migrate: its src[] word has
 *	MIGRATE_PFN_MIGRATE (a page locked and unmapped, or an empty slot the
 *	driver may fill: unpopulated, or the zero page). See
 *	migrate_hmm_range_setup(). Once migrate_vma_pages() has run, the
 *	order bits of such a word whose page did not move may be stale (a THP
 *	split on the way): map it as a single page.
 * @HMM_PFN_ORDER_SHIFT: output; bits [ORDER_SHIFT, ORDER_SHIFT + 5) hold
 *	the order of the CPU mapping that covers this page (0 for a PTE, 9 for
 *	a 2 MiB PMD on x86, ...); read it with hmm_pfn_to_map_order().
 * @HMM_PFN_REQ_FAULT: input; the caller needs this page mapped: fault it in
 *	if the CPU has no valid mapping for it.
 * @HMM_PFN_REQ_WRITE: input, only with @HMM_PFN_REQ_FAULT; the caller needs
 *	it mapped writable: fault for write if the CPU mapping is read-only.
 * @HMM_PFN_REQ_MIGRATE: input, in @hmm_range.default_flags only; the same
 *	walk also collects the range for the migration @hmm_range.migrate, as
 *	migrate_vma_setup() would, and marks what it collected
 *	@HMM_PFN_MIGRATE.
 * @HMM_PFN_FLAGS: every bit that is not part of the page frame number.
 *
 * The request bits share their positions with the output bits they ask for,
 * so a word read back from a previous call can be passed in again as is.
 * The "kept" bits belong to the DMA helpers of <linux/hmm-dma.h>, which use
 * the same array to remember how each entry is mapped: hmm_range_fault()
 * never sets or clears them, it carries them from each input word to the
 * output word it writes in its place.
 */
enum hmm_pfn_flags {
	/* What hmm_range_fault() reports */
	HMM_PFN_VALID = 1UL << (BITS_PER_LONG - 1),
	HMM_PFN_WRITE = 1UL << (BITS_PER_LONG - 2),
	HMM_PFN_ERROR = 1UL << (BITS_PER_LONG - 3),

	/* The DMA helpers' state, kept across hmm_range_fault() */
	HMM_PFN_DMA_MAPPED = 1UL << (BITS_PER_LONG - 4),
	HMM_PFN_P2PDMA = 1UL << (BITS_PER_LONG - 5),
	HMM_PFN_P2PDMA_BUS = 1UL << (BITS_PER_LONG - 6),

	/* Collected for migration in the same walk */
	HMM_PFN_MIGRATE = 1UL << (BITS_PER_LONG - 7),

	HMM_PFN_ORDER_SHIFT = (BITS_PER_LONG - 12),

	/* What the caller asks for */
	HMM_PFN_REQ_FAULT = HMM_PFN_VALID,
	HMM_PFN_REQ_WRITE = HMM_PFN_WRITE,
	HMM_PFN_REQ_MIGRATE = HMM_PFN_MIGRATE,

	HMM_PFN_FLAGS = ~((1UL << HMM_PFN_ORDER_SHIFT) - 1),
};

/**
 * struct hmm_range - one call of hmm_range_fault()
 * @notifier: the interval notifier that covers [@start, @end); its mm is the
 *	address space that is mirrored
 * @notifier_seq: the value mmu_interval_read_begin() returned before the
 *	call; the walk stops with -EBUSY as soon as the notifier has moved on
 * @start: first address, page aligned
 * @end: address after the last, page aligned, greater than @start
 * @hmm_pfns: one word per page of the range: request bits in, result out
 * @default_flags: request bits that apply to every page
 * @pfn_flags_mask: which bits of each input word count as that page's own
 *	request (0: only @default_flags count, and the input is not read)
 * @dev_private_owner: device-private pages whose pagemap has this owner are
 *	reported as they are instead of being faulted back to system memory
 * @migrate: with HMM_PFN_REQ_MIGRATE, the migration the walk collects for:
 *	its @vma, @start and @end must be the range's, its @src and @dst
 *	arrays distinct from @hmm_pfns (NULL otherwise)
 */
struct hmm_range {
	struct mmu_interval_notifier *notifier;
	unsigned long		notifier_seq;
	unsigned long		start;
	unsigned long		end;
	unsigned long		*hmm_pfns;
	unsigned long		default_flags;
	unsigned long		pfn_flags_mask;
	void			*dev_private_owner;
	struct migrate_vma	*migrate;
};

int hmm_range_fault(struct hmm_range *range);

/*
 * How long, in milliseconds, a driver should keep retrying hmm_range_fault()
 * on -EBUSY before it gives up on the range.
 */
#define HMM_RANGE_DEFAULT_TIMEOUT 1000

/**
 * hmm_pfn_to_page() - the struct page of a valid hmm_pfns[] word
 * @hmm_pfn: an output word with HMM_PFN_VALID set
 *
 * Context: any; the page is only guaranteed to stay there while the
 * notifier sequence the word was read under has not moved.
 * Return: the page the CPU maps at that address.
 */
static inline struct page *hmm_pfn_to_page(unsigned long hmm_pfn)
{
	return pfn_to_page(hmm_pfn & ~HMM_PFN_FLAGS);
}

/**
 * hmm_pfn_to_phys() - the physical address of a valid hmm_pfns[] word
 * @hmm_pfn: an output word with HMM_PFN_VALID set
 *
 * Context: any; same validity rule as hmm_pfn_to_page().
 * Return: the physical address of the start of the page.
 */
static inline phys_addr_t hmm_pfn_to_phys(unsigned long hmm_pfn)
{
	return PFN_PHYS(hmm_pfn & ~HMM_PFN_FLAGS);
}

/**
 * hmm_pfn_to_map_order() - the order of the CPU mapping behind a word
 * @hmm_pfn: an output word with HMM_PFN_VALID set
 *
 * A device may map the whole aligned block of 1 << order pages with one
 * entry of its own page table. The block may extend beyond the range that
 * was asked for; pages outside it were not part of the snapshot.
 *
 * Context: any.
 * Return: the order, 0 for a page mapped by a PTE.
 */
static inline unsigned int hmm_pfn_to_map_order(unsigned long hmm_pfn)
{
	return (hmm_pfn >> HMM_PFN_ORDER_SHIFT) & 0x1F;
}

#endif /* LINUX_HMM_H */
