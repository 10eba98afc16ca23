/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Page migration: moving the contents and the identity of a page to another
 * page while the mappings, the page cache and the LRU keep pointing at the
 * right one.
 *
 * Two families of callers share this header:
 *
 * - The kernel's own migration (compaction, NUMA balancing, memory hotplug,
 *   mbind(), long-term pinning) hands mm/migrate.c a list of isolated folios
 *   and a callback that allocates each destination; drivers that own
 *   non-LRU movable pages plug into it with struct movable_operations.
 *
 * - Device migration (mm/migrate_device.c) lets a driver move a range of a
 *   process's memory to or from memory it manages itself, copying with its
 *   own DMA engine. It goes in three steps around the copy: setup collects,
 *   locks and unmaps the source pages (leaving migration entries in the CPU
 *   page table), the driver allocates and fills destinations, pages commits
 *   each one, and finalize points the page table at whichever page won and
 *   drops every reference. Each page is described by one unsigned long
 *   (a "migrate pfn", see MIGRATE_PFN_VALID) in a source and a destination
 *   array; a page that cannot move is simply reported as not moving.
 */
#ifndef _LINUX_MIGRATE_H
#define _LINUX_MIGRATE_H

#include <linux/mm.h>
#include <linux/mempolicy.h>
#include <linux/migrate_mode.h>
#include <linux/hugetlb.h>

struct migration_target_control;

/* Allocates the destination of @folio for migrate_pages(). */
typedef struct folio *new_folio_t(struct folio *folio, unsigned long private);
/* Gives back a destination migrate_pages() did not use. */
typedef void free_folio_t(struct folio *folio, unsigned long private);

/*
 * What a ->migrate_folio() or movable_operations.migrate_page() method
 * returns when it moved the page; any other value is a negative errno.
 * MIGRATEPAGE_UNMAP is internal to mm/migrate.c.
 */
#define MIGRATEPAGE_SUCCESS		0
#define MIGRATEPAGE_UNMAP		1

/**
 * struct movable_operations - migration of pages a driver keeps off the LRU
 * @isolate_page: take the page out of the driver's own bookkeeping so that
 *	it can be moved. Called with the page locked (leave it locked). Return
 *	false if it cannot move now. On success mm owns page->lru until the
 *	page is migrated or put back.
 * @migrate_page: move @src into @dst (copy the data, transfer the driver's
 *	state). Both pages are locked and @src is isolated. On success clear
 *	the movable state with __ClearPageMovable(@src) and return
 *	MIGRATEPAGE_SUCCESS; return -EAGAIN for a transient failure mm may
 *	retry, any other errno for a permanent one. @dst->lru may be used,
 *	@src->lru must be left alone.
 * @putback_page: migration of an isolated page failed; take it back into
 *	the driver's bookkeeping.
 */
struct movable_operations {
	bool (*isolate_page)(struct page *page, isolate_mode_t mode);
	int (*migrate_page)(struct page *dst, struct page *src,
			    enum migrate_mode);
	void (*putback_page)(struct page *page);
};

/* The names of enum migrate_reason, for tracing; in mm/debug.c. */
extern const char *migrate_reason_names[MR_TYPES];

#ifdef CONFIG_MIGRATION
/* Migrating a list of isolated folios (compaction, NUMA, hotplug, ...) */
int migrate_pages(struct list_head *l, new_folio_t new, free_folio_t free,
		  unsigned long private, enum migrate_mode mode, int reason,
		  unsigned int *ret_succeeded);
struct folio *alloc_migration_target(struct folio *src, unsigned long private);
bool isolate_folio_to_list(struct folio *folio, struct list_head *list);
bool isolate_movable_page(struct page *page, isolate_mode_t mode);
void putback_movable_pages(struct list_head *l);

/* Building blocks for ->migrate_folio() methods */
int migrate_folio(struct address_space *mapping, struct folio *dst,
		  struct folio *src, enum migrate_mode mode);
int folio_migrate_mapping(struct address_space *mapping,
			  struct folio *newfolio, struct folio *folio,
			  int extra_count);
void folio_migrate_flags(struct folio *newfolio, struct folio *folio);
int migrate_huge_page_move_mapping(struct address_space *mapping,
				   struct folio *dst, struct folio *src);

/* Waiting for a migration entry's folio to be unlocked */
void migration_entry_wait_on_locked(swp_entry_t entry, spinlock_t *ptl)
		__releases(ptl);
#else /* !CONFIG_MIGRATION: nothing ever migrates */
static inline void putback_movable_pages(struct list_head *l)
{
}

static inline int migrate_pages(struct list_head *l, new_folio_t new,
		free_folio_t free, unsigned long private,
		enum migrate_mode mode, int reason, unsigned int *ret_succeeded)
	{ return -ENOSYS; }

static inline struct folio *alloc_migration_target(struct folio *src,
						   unsigned long private)
{
	return NULL;
}

static inline bool isolate_movable_page(struct page *page,
					isolate_mode_t mode)
{
	return false;
}

static inline bool isolate_folio_to_list(struct folio *folio,
					 struct list_head *list)
{
	return false;
}

static inline int migrate_huge_page_move_mapping(struct address_space *mapping,
						 struct folio *dst, struct folio *src)
{
	return -ENOSYS;
}

/* Nothing is ever locked for a migration: only the PTL is to drop. */
static inline void migration_entry_wait_on_locked(swp_entry_t entry,
						  spinlock_t *ptl)
		__releases(ptl)
{
	spin_unlock(ptl);
}
#endif /* CONFIG_MIGRATION */

#ifdef CONFIG_COMPACTION
bool PageMovable(struct page *page);
void __SetPageMovable(struct page *page, const struct movable_operations *ops);
void __ClearPageMovable(struct page *page);
#else /* !CONFIG_COMPACTION: no driver page is ever movable */
static inline bool PageMovable(struct page *page) { return false; }
static inline void __SetPageMovable(struct page *page,
				    const struct movable_operations *ops) { }
static inline void __ClearPageMovable(struct page *page) { }
#endif

static inline bool folio_test_movable(struct folio *folio)
{
	return PageMovable(&folio->page);
}

/*
 * A movable driver page keeps its movable_operations in ->mapping, tagged
 * with PAGE_MAPPING_MOVABLE; strip the tag to get the table back.
 */
static inline const struct movable_operations *
page_movable_ops(struct page *page)
{
	unsigned long tagged = (unsigned long)page->mapping;

	VM_WARN_ON_ONCE(!__PageMovable(page));
	return (const struct movable_operations *)(tagged - PAGE_MAPPING_MOVABLE);
}

static inline const struct movable_operations *
folio_movable_ops(struct folio *folio)
{
	unsigned long tagged = (unsigned long)folio->mapping;

	VM_WARN_ON_ONCE(!__folio_test_movable(folio));
	return (const struct movable_operations *)(tagged - PAGE_MAPPING_MOVABLE);
}

#ifdef CONFIG_NUMA_BALANCING
int migrate_misplaced_folio_prepare(struct folio *folio,
				    struct vm_area_struct *vma, int node);
int migrate_misplaced_folio(struct folio *folio, struct vm_area_struct *vma,
			    int node);
#else /* !CONFIG_NUMA_BALANCING: never misplaced, retry later */
static inline int
migrate_misplaced_folio_prepare(struct folio *folio,
				struct vm_area_struct *vma, int node)
{
	return -EAGAIN;
}

static inline int migrate_misplaced_folio(struct folio *folio,
					  struct vm_area_struct *vma, int node)
{
	return -EAGAIN;
}
#endif

#ifdef CONFIG_MIGRATION

/*
 * Device migration: the migrate pfn.
 *
 * Each page of a device migration is one unsigned long in the driver's
 * src[] and dst[] arrays: a page frame number shifted up by
 * MIGRATE_PFN_SHIFT, with state in the bits below it. On a 32-bit kernel
 * with PAE that leaves fewer bits for the frame number than a physical
 * address needs in theory; the flags must stay below MIGRATE_PFN_SHIFT.
 *
 * MIGRATE_PFN_VALID	the word holds a page frame number (a zero word, or
 *			one with only MIGRATE_PFN_MIGRATE, has no page).
 * MIGRATE_PFN_MIGRATE	src[] only: this page (or this empty address, if
 *			there is no page) takes part in the migration. Set by
 *			setup, cleared by any step that gives up on the page;
 *			after migrate_vma_pages() it says the page moved.
 * MIGRATE_PFN_WRITE	src[]: the CPU mapped the page writable; dst[]: map
 *			the destination writable.
 * MIGRATE_PFN_COMPOUND	src[]: the entry stands for a PMD-sized folio (or
 *			an empty, PMD-aligned range) that moves whole; the
 *			HPAGE_PMD_NR - 1 words after it are 0. Only with
 *			MIGRATE_VMA_SELECT_COMPOUND. dst[]: the destination
 *			is a folio of the same order. A driver that cannot
 *			give one fills the HPAGE_PMD_NR words with order-0
 *			destinations instead (none at all: the source
 *			stays whole): an empty source is then filled page
 *			by page, and a folio is split and moves page by
 *			page, each page's data copied from its own page
 *			of the source.
 *
 * The bits below MIGRATE_PFN_SHIFT that no flag here names are the core's:
 * a driver never sets them, and may find them set in src[] between
 * migrate_vma_setup() and migrate_vma_finalize().
 */
#define MIGRATE_PFN_VALID	BIT(0)
#define MIGRATE_PFN_MIGRATE	BIT(1)
#define MIGRATE_PFN_WRITE	BIT(3)
#define MIGRATE_PFN_COMPOUND	BIT(4)
#define MIGRATE_PFN_SHIFT	6

/**
 * migrate_pfn_to_page() - the page a migrate pfn names
 * @mpfn: a src[] or dst[] word
 *
 * Context: any.
 * Return: the struct page, or NULL if @mpfn has no MIGRATE_PFN_VALID.
 */
static inline struct page *migrate_pfn_to_page(unsigned long mpfn)
{
	return (mpfn & MIGRATE_PFN_VALID) ?
		pfn_to_page(mpfn >> MIGRATE_PFN_SHIFT) : NULL;
}

/**
 * migrate_pfn() - encode a page frame number as a migrate pfn
 * @pfn: the page frame number
 *
 * Context: any.
 * Return: @pfn with MIGRATE_PFN_VALID and no other flag; a driver ORs in
 * MIGRATE_PFN_WRITE if wanted.
 */
static inline unsigned long migrate_pfn(unsigned long pfn)
{
	return MIGRATE_PFN_VALID | (pfn << MIGRATE_PFN_SHIFT);
}

/**
 * enum migrate_vma_direction - which pages migrate_vma_setup() collects
 * @MIGRATE_VMA_SELECT_SYSTEM: ordinary system memory (anonymous pages, the
 *	zero page and unpopulated addresses); the direction "to the device".
 * @MIGRATE_VMA_SELECT_DEVICE_PRIVATE: device-private pages whose
 *	pgmap->owner is migrate_vma.pgmap_owner; "back from the device".
 * @MIGRATE_VMA_SELECT_DEVICE_COHERENT: device-coherent pages whose
 *	pgmap->owner is migrate_vma.pgmap_owner.
 * @MIGRATE_VMA_SELECT_COMPOUND: a PMD-sized folio mapped by a PMD that
 *	the range covers whole (an anonymous THP, a large device-private
 *	folio), or such an empty range, is one MIGRATE_PFN_COMPOUND entry
 *	instead of HPAGE_PMD_NR entries of a split folio.
 * @MIGRATE_VMA_FAULT: not a selection: migrate_vma_setup() first faults in
 *	what the CPU does not map readable (swapped out, another owner's
 *	device memory, device-exclusive), in the same page-table walk as the
 *	collection, so that it can be collected too; an address that is
 *	simply empty stays an empty source. Needs CONFIG_HMM_MIRROR.
 *
 * The flags combine; pages not selected are left alone (src[] word 0).
 */
enum migrate_vma_direction {
	MIGRATE_VMA_SELECT_SYSTEM = 1 << 0,
	MIGRATE_VMA_SELECT_DEVICE_PRIVATE = 1 << 1,
	MIGRATE_VMA_SELECT_DEVICE_COHERENT = 1 << 2,
	MIGRATE_VMA_SELECT_COMPOUND = 1 << 3,
	MIGRATE_VMA_FAULT = 1 << 4,
};

/**
 * struct migrate_vma - one device migration of a virtual address range
 * @vma: the VMA holding [@start, @end); the caller holds the mmap_lock
 *	(read is enough) of its mm across setup, pages and finalize.
 * @dst: destination migrate pfns, one per page, filled by the driver
 *	between setup and pages. Each destination is a page the driver
 *	holds a reference on and has locked (lock_page()); the driver must
 *	not change dst[] after migrate_vma_pages().
 * @src: source migrate pfns, one per page, written by setup and updated
 *	by pages; read-only for the driver once setup returns.
 * @cpages: output of setup: how many src[] entries have
 *	MIGRATE_PFN_MIGRATE (pages and empty addresses that can be migrated).
 * @npages: output of setup: how many entries src[] and dst[] hold.
 * @start: first address, page aligned, inside @vma.
 * @end: end of the range (exclusive); setup may lower it if it stopped
 *	early. Both arrays hold (@end - @start) >> PAGE_SHIFT words.
 * @pgmap_owner: the owner of the device pages to select (compared with
 *	pgmap->owner) and the owner passed with the MMU_NOTIFY_MIGRATE
 *	invalidation, so that the driver's notifier can recognise and skip
 *	its own migration.
 * @flags: MIGRATE_VMA_SELECT_* bits.
 * @fault_page: when called from dev_pagemap_ops.migrate_to_ram(), the
 *	faulting device page (vmf->page), which the fault path holds locked
 *	and with an extra reference (it unlocks it after migrate_to_ram()
 *	returns); NULL otherwise.
 */
struct migrate_vma {
	struct vm_area_struct	*vma;
	unsigned long		*dst;
	unsigned long		*src;
	unsigned long		cpages;
	unsigned long		npages;
	unsigned long		start;
	unsigned long		end;
	void			*pgmap_owner;
	unsigned long		flags;
	struct page		*fault_page;
};

struct hmm_range;

int migrate_vma_setup(struct migrate_vma *args);
void migrate_hmm_range_setup(struct hmm_range *range);
void migrate_vma_pages(struct migrate_vma *migrate);
void migrate_vma_finalize(struct migrate_vma *migrate);
int migrate_device_range(unsigned long *src_pfns, unsigned long start,
			 unsigned long npages);
int migrate_device_pfns(unsigned long *src_pfns, unsigned long npages);
void migrate_device_pages(unsigned long *src_pfns, unsigned long *dst_pfns,
			  unsigned long npages);
void migrate_device_finalize(unsigned long *src_pfns,
			     unsigned long *dst_pfns, unsigned long npages);

#endif /* CONFIG_MIGRATION */

#endif /* _LINUX_MIGRATE_H */
