/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Device memory with struct pages (ZONE_DEVICE).
 *
 * A driver that owns a range of physical addresses describes it with a
 * struct dev_pagemap and hands it to memremap_pages(). From then on every
 * page frame of the range has a struct page in ZONE_DEVICE whose ->pgmap
 * points back at the descriptor, so the rest of mm can hold, map and
 * migrate those pages. What mm may do with such a page depends on the
 * pagemap's type (enum memory_type); the callbacks a type needs are in
 * struct dev_pagemap_ops. The descriptor stays in use until
 * memunmap_pages() has waited for every page and every lookup to let go.
 */
#ifndef _LINUX_MEMREMAP_H_
#define _LINUX_MEMREMAP_H_

#include <linux/args.h>
#include <linux/ioport.h>
#include <linux/mmzone.h>
#include <linux/percpu-refcount.h>
#include <linux/range.h>

struct device;
struct resource;

/**
 * struct vmem_altmap - device pages that hold the range's own memmap
 * @base_pfn: first page frame of the pagemap's (only) range
 * @end_pfn: last page frame the memmap may be taken from
 * @reserve: page frames at @base_pfn the driver keeps for itself (a label
 *	or info block); neither memmap nor ordinary device pages
 * @free: page frames after @reserve set aside to store the memmap
 * @align: page frames skipped to align memmap blocks, counted by the
 *	memmap allocator
 * @alloc: page frames handed to the memmap so far; back to zero once the
 *	range is unmapped
 * @inaccessible: the frames cannot be written through the linear map
 *	before the memmap is set up (the allocator must not touch them)
 *
 * Only valid when the pagemap's flags carry %PGMAP_ALTMAP_VALID, and only
 * for a pagemap with a single range. The first vmem_altmap_offset() frames
 * of the range never become usable device pages.
 */
struct vmem_altmap {
	unsigned long base_pfn;
	const unsigned long end_pfn;
	const unsigned long reserve;
	unsigned long free;
	unsigned long align;
	unsigned long alloc;
	bool inaccessible;
};

/**
 * enum memory_type - what a ZONE_DEVICE pagemap's memory is, and the rules
 *	its pages follow
 * @MEMORY_DEVICE_PRIVATE: memory the CPU cannot address at all. Pages are
 *	mapped in a process only through device-private swap entries; a CPU
 *	access faults into ops->migrate_to_ram(), which must move the data to
 *	system memory. No linear mapping is created. Needs ops->folio_free()
 *	or ops->page_free(), ops->migrate_to_ram() and an owner. A folio is
 *	free at refcount 0 and handed out by the driver, at any order up to
 *	%MAX_FOLIO_ORDER, with zone_device_folio_init() or
 *	zone_device_page_init().
 * @MEMORY_DEVICE_COHERENT: memory the CPU addresses like system RAM
 *	(coherent buses such as CXL), mapped as ordinary anonymous pages. It
 *	must stay evictable, so a long-term pin migrates the page to system
 *	memory first. Needs ops->folio_free() or ops->page_free() and an
 *	owner; folios are handed out like private ones.
 * @MEMORY_DEVICE_FS_DAX: persistent memory mapped by a DAX file system.
 *	Pages may be pinned. An idle page has refcount 1; the drop to 1 wakes
 *	whoever waits on the refcount (truncate, hole punch waiting for DMA).
 * @MEMORY_DEVICE_GENERIC: memory used like RAM and pinnable, exposed by a
 *	driver of its own (device-dax character devices, Xen). Idle pages have
 *	refcount 1.
 * @MEMORY_DEVICE_PCI_P2PDMA: memory in a PCI BAR for peer-to-peer DMA,
 *	mapped uncached. Idle pages have refcount 1; ops->page_free() returns a
 *	page to the provider's allocator when the last user lets go.
 *
 * Zero is not a type, so that a pagemap whose type was never set is
 * refused by memremap_pages().
 */
enum memory_type {
	MEMORY_DEVICE_PRIVATE = 1,
	MEMORY_DEVICE_COHERENT,
	MEMORY_DEVICE_FS_DAX,
	MEMORY_DEVICE_GENERIC,
	MEMORY_DEVICE_PCI_P2PDMA,
};

/**
 * struct dev_pagemap_ops - what the owner of a pagemap does for mm
 * @page_free: the last reference to a page is gone. Called from the put
 *	that dropped it, in any context a put_page() may happen in (it must
 *	not sleep). The core has already cleared the page's mapping and
 *	charge; for the types whose idle pages keep refcount 1 it has already
 *	set that refcount back. The page belongs to the driver from the call
 *	on: the core does not look at it again, so the callback may hand it
 *	out at once. Private and coherent memory need this or @folio_free;
 *	a driver with only this callback must hand out order-0 folios.
 * @folio_free: the same for a whole folio, of any order: called once,
 *	with the folio still of the order it was handed out at
 *	(folio_order() says how many pages came back). Used instead of
 *	@page_free when set. The driver may split the pages up again, or
 *	hand them out at another order, with zone_device_page_init().
 * @folio_split: a large folio of this pagemap was split into smaller ones
 *	(a partly unmapped PMD-sized device folio, when it migrates): called
 *	for each new folio @tail after the first, @head being the first,
 *	now of the new order too. Each new folio has the pagemap and starts
 *	with @head's zone_device_data; the driver splits its bookkeeping
 *	here. All of them are locked and unmapped; must not sleep. Optional.
 * @migrate_to_ram: a CPU fault hit a device-private entry of this pagemap.
 *	Called with the mmap_lock held for read (and the VMA lock as well
 *	when the fault came under it), the page locked and referenced; must
 *	migrate the data to system memory (or fail the fault) and return a
 *	VM_FAULT_* code. Required for, and only used with, private
 *	memory. hmm_range_fault() may run it, or sleep on a page another
 *	thread is migrating: a driver must not hold a lock this callback
 *	takes around hmm_range_fault().
 * @memory_failure: the hardware reported @nr_pages frames from @pfn lost.
 *	Tells the users of those frames and recovers what it can, with
 *	@mf_flags passed on to the recovery. Optional: without it, or when it
 *	returns -EOPNOTSUPP, memory_failure() kills the users itself.
 */
struct dev_pagemap_ops {
	void (*page_free)(struct page *page);
	void (*folio_free)(struct folio *folio);
	void (*folio_split)(struct folio *head, struct folio *tail);
	vm_fault_t (*migrate_to_ram)(struct vm_fault *vmf);
	int (*memory_failure)(struct dev_pagemap *pgmap, unsigned long pfn,
			      unsigned long nr_pages, int mf_flags);
};

/* pgmap->flags: @altmap is set up and the memmap goes into the range. */
#define PGMAP_ALTMAP_VALID	BIT(0)

/**
 * struct dev_pagemap - a driver's device memory, as ZONE_DEVICE pages
 * @altmap: where the memmap is stored when %PGMAP_ALTMAP_VALID is set
 * @ref: the pagemap's users: lookups by get_dev_pagemap(), and pages in
 *	use. memunmap_pages() kills it and waits for it to drain.
 * @done: completed once @ref has drained
 * @type: one of enum memory_type; decides the rules the pages follow
 * @flags: PGMAP_* flags
 * @vmemmap_shift: order of the compound pages the memmap is made of
 *	(0: base pages). Each range is split in folios of 2^@vmemmap_shift
 *	pages.
 * @ops: the owner's callbacks (see struct dev_pagemap_ops)
 * @owner: an opaque cookie naming the driver that manages this memory;
 *	migration and hmm_range_fault() only touch private pages of the owner
 *	they are told about. Required for private and coherent memory.
 * @nr_range: number of ranges, at least one
 * @range: the physical range when @nr_range is 1
 * @ranges: the physical ranges when @nr_range is larger
 *
 * The caller fills in @type, @ops, @owner, the ranges and optionally
 * @altmap, @flags and @vmemmap_shift; memremap_pages() sets up @ref and
 * @done.
 */
struct dev_pagemap {
	struct vmem_altmap altmap;
	struct percpu_ref ref;
	struct completion done;
	enum memory_type type;
	unsigned int flags;
	unsigned long vmemmap_shift;
	const struct dev_pagemap_ops *ops;
	void *owner;
	int nr_range;
	union {
		struct range range;
		DECLARE_FLEX_ARRAY(struct range, ranges);
	};
};

/**
 * pgmap_has_memory_failure() - does the owner handle memory failures?
 * @pgmap: the pagemap
 *
 * Return: true if @pgmap's ops has a memory_failure callback.
 */
static inline bool pgmap_has_memory_failure(struct dev_pagemap *pgmap)
{
	const struct dev_pagemap_ops *ops = pgmap->ops;

	return ops && ops->memory_failure;
}

/**
 * pgmap_altmap() - the memmap store of a pagemap, if it has one
 * @pgmap: the pagemap
 *
 * Return: @pgmap's altmap when %PGMAP_ALTMAP_VALID is set, else NULL.
 */
static inline struct vmem_altmap *pgmap_altmap(struct dev_pagemap *pgmap)
{
	return (pgmap->flags & PGMAP_ALTMAP_VALID) ? &pgmap->altmap : NULL;
}

/**
 * pgmap_vmemmap_nr() - pages per folio of a pagemap
 * @pgmap: the pagemap
 *
 * Return: the number of base pages in each compound page of @pgmap
 * (1 when its memmap is made of base pages).
 */
static inline unsigned long pgmap_vmemmap_nr(struct dev_pagemap *pgmap)
{
	return 1UL << pgmap->vmemmap_shift;
}

/* True if @folio is a ZONE_DEVICE folio of a pagemap of type @type. */
static inline bool pgmap_folio_has_type(const struct folio *folio,
					enum memory_type type)
{
	if (!folio_is_zone_device(folio))
		return false;
	return folio->pgmap->type == type;
}

/*
 * The same for the folio of @page. Every page carries its zone, so most
 * pages, of system memory, are told apart without a look at their folio.
 */
static inline bool pgmap_page_has_type(const struct page *page,
				       enum memory_type type)
{
	if (!is_zone_device_page(page))
		return false;
	return page_pgmap(page)->type == type;
}

/**
 * is_device_private_page() - is this page CPU-unaddressable device memory?
 * @page: any page
 *
 * Return: true if @page belongs to a %MEMORY_DEVICE_PRIVATE pagemap.
 */
static inline bool is_device_private_page(const struct page *page)
{
	if (!IS_ENABLED(CONFIG_DEVICE_PRIVATE))
		return false;
	return pgmap_page_has_type(page, MEMORY_DEVICE_PRIVATE);
}

/**
 * folio_is_device_private() - is this folio CPU-unaddressable device memory?
 * @folio: any folio
 *
 * Return: true if @folio belongs to a %MEMORY_DEVICE_PRIVATE pagemap.
 */
static inline bool folio_is_device_private(const struct folio *folio)
{
	if (!IS_ENABLED(CONFIG_DEVICE_PRIVATE))
		return false;
	return pgmap_folio_has_type(folio, MEMORY_DEVICE_PRIVATE);
}

/**
 * folio_zone_device_data() - the driver's word of a device-private folio
 * @folio: a device-private folio
 *
 * The pointer a driver keeps with each folio it hands out (its own
 * bookkeeping: the backing copy, the owning chunk). Only the first page of
 * a large folio has one: in its second and third pages the same word holds
 * the folio's own counters, which page->zone_device_data must not touch.
 *
 * Context: any context.
 * Return: what folio_set_zone_device_data() last stored.
 */
static inline void *folio_zone_device_data(const struct folio *folio)
{
	VM_WARN_ON_ONCE_FOLIO(!folio_is_device_private(folio), folio);
	return folio->page.zone_device_data;
}

/**
 * folio_set_zone_device_data() - set the driver's word of a device-private folio
 * @folio: a device-private folio
 * @data: what folio_zone_device_data() is to return
 *
 * Context: any context; the driver serialises its own updates.
 */
static inline void folio_set_zone_device_data(struct folio *folio, void *data)
{
	VM_WARN_ON_ONCE_FOLIO(!folio_is_device_private(folio), folio);
	folio->page.zone_device_data = data;
}

/**
 * is_pci_p2pdma_page() - is this page in a PCI BAR for peer-to-peer DMA?
 * @page: any page
 *
 * Return: true if @page belongs to a %MEMORY_DEVICE_PCI_P2PDMA pagemap.
 */
static inline bool is_pci_p2pdma_page(const struct page *page)
{
	if (!IS_ENABLED(CONFIG_PCI_P2PDMA))
		return false;
	return pgmap_page_has_type(page, MEMORY_DEVICE_PCI_P2PDMA);
}

/**
 * is_device_coherent_page() - is this page CPU-coherent device memory?
 * @page: any page
 *
 * Return: true if @page belongs to a %MEMORY_DEVICE_COHERENT pagemap.
 */
static inline bool is_device_coherent_page(const struct page *page)
{
	return pgmap_page_has_type(page, MEMORY_DEVICE_COHERENT);
}

/**
 * folio_is_device_coherent() - is this folio CPU-coherent device memory?
 * @folio: any folio
 *
 * Return: true if @folio belongs to a %MEMORY_DEVICE_COHERENT pagemap.
 */
static inline bool folio_is_device_coherent(const struct folio *folio)
{
	return pgmap_folio_has_type(folio, MEMORY_DEVICE_COHERENT);
}

#ifdef CONFIG_ZONE_DEVICE
void *memremap_pages(struct dev_pagemap *pgmap, int nid);
void memunmap_pages(struct dev_pagemap *pgmap);
void *devm_memremap_pages(struct device *dev, struct dev_pagemap *pgmap);
void devm_memunmap_pages(struct device *dev, struct dev_pagemap *pgmap);
struct dev_pagemap *get_dev_pagemap(unsigned long pfn,
				    struct dev_pagemap *pgmap);
bool pgmap_pfn_valid(struct dev_pagemap *pgmap, unsigned long pfn);
void zone_device_page_init(struct page *page, struct dev_pagemap *pgmap,
			   unsigned int order);
void zone_device_folio_init(struct folio *folio, struct dev_pagemap *pgmap,
			    unsigned int order);
unsigned long memremap_compat_align(void);

/*
 * Drivers written for 6.12 hand out one page of the pagemap it points at
 * with zone_device_page_init(page); mainline's form names the pagemap and
 * an order. Both build: the call is routed by its number of arguments.
 */
static inline void __zone_device_page_init_1(struct page *page)
{
	zone_device_page_init(page, page_pgmap(page), 0);
}

#define __zone_device_page_init_3(page, pgmap, order)			\
	((zone_device_page_init)(page, pgmap, order))
#define zone_device_page_init(...)					\
	CONCATENATE(__zone_device_page_init_,				\
		    COUNT_ARGS(__VA_ARGS__))(__VA_ARGS__)
#else
/* Without ZONE_DEVICE no frame has a pagemap. */
static inline struct dev_pagemap *get_dev_pagemap(unsigned long pfn,
						  struct dev_pagemap *pgmap)
{
	return NULL;
}

static inline bool pgmap_pfn_valid(struct dev_pagemap *pgmap, unsigned long pfn)
{
	return false;
}

/* memremap() alone maps any page-aligned range. */
static inline unsigned long memremap_compat_align(void)
{
	return PAGE_SIZE;
}

/*
 * A driver asking for device pages is told there are none and must fall
 * back to a plain memremap() of its range.
 */
static inline void *devm_memremap_pages(struct device *dev,
					struct dev_pagemap *pgmap)
{
	WARN_ON_ONCE(1);
	return ERR_PTR(-ENXIO);
}

static inline void devm_memunmap_pages(struct device *dev,
				       struct dev_pagemap *pgmap)
{
}
#endif /* CONFIG_ZONE_DEVICE */

/**
 * put_dev_pagemap() - drop a reference taken by get_dev_pagemap()
 * @pgmap: the pagemap, or NULL (nothing to drop)
 *
 * Context: any context.
 */
static inline void put_dev_pagemap(struct dev_pagemap *pgmap)
{
	if (!pgmap)
		return;
	percpu_ref_put(&pgmap->ref);
}

#endif /* _LINUX_MEMREMAP_H_ */
