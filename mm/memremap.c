// SPDX-License-Identifier: GPL-2.0
/*
 * ZONE_DEVICE pagemaps: struct pages for memory a driver owns.
 *
 * The model. A pagemap is a descriptor (struct dev_pagemap) for one or more
 * physical ranges. Registering it does four things per range, undone in
 * the reverse order when it goes away:
 *
 *   claim    the range's page frames point at the pagemap in a registry
 *            (an xarray keyed by pfn), which is how get_dev_pagemap() and
 *            the memory hotplug code find the owner of a frame;
 *   map      the range gets a memmap; memory the CPU can address also gets
 *            a linear mapping (arch_add_memory()), device-private memory
 *            only the memmap (add_pages());
 *   zone     the pages move into the node's ZONE_DEVICE and are initialised
 *            with ->pgmap pointing at the descriptor;
 *   hold     for the types whose idle pages keep refcount 1 (fsdax, generic,
 *            p2pdma), the pagemap takes one reference per folio up front.
 *
 * The reference count. pgmap->ref counts the pagemap's users: lookups,
 * and pages in use. Private and coherent pages are free at refcount 0; the
 * driver hands out a folio of one or more of them with
 * zone_device_folio_init(), which takes a pagemap reference per page, and
 * free_zone_device_folio() drops them when the folio's last user lets go.
 * Counting pages rather than folios keeps the count right whatever
 * happens to a folio's size while it is in use. Pages of the other types
 * are never free in that sense, so the pagemap holds a reference for each
 * of them for its whole life.
 * memunmap_pages() kills the count (no new lookups succeed), drops what it
 * holds, and sleeps until the count drains: every page has come back and
 * every lookup has been put. Only then are the ranges taken down. Before
 * the kill, the registry's entries become "retiring" markers: lookups no
 * longer find the pagemap but the range stays claimed, and the grace
 * period the kill waits for anyway also covers the lookups that found it,
 * so taking the ranges down needs no grace period of its own.
 *
 * The rules of each type (which callbacks it needs, whether the CPU maps
 * it, its page protection, how its pages are counted) are one row of
 * memremap_kinds[]; registration checks a pagemap against its row and
 * refuses it with an error instead of failing later.
 *
 * Freeing. When a device folio's refcount drops to zero, the free path puts
 * it back in the state the driver expects and only then calls
 * ops->folio_free() (or ops->page_free() for a driver of order-0 pages):
 * from that call on the folio is the driver's, who may give it to a new
 * user at once, so the core reads nothing of it afterwards.
 *
 * Large folios. A free private or coherent page may still carry what the
 * folio it was part of left in its struct page: a link to an old head,
 * the order and counters an old head's neighbours kept. The driver need
 * not know: handing pages out re-makes each page of the new folio, so a
 * driver may free a 2 MiB folio and hand its pages out one by one, or the
 * other way round.
 */
#include <linux/device.h>
#include <linux/io.h>
#include <linux/kasan.h>
#include <linux/memory_hotplug.h>
#include <linux/memremap.h>
#include <linux/mm.h>
#include <linux/mmzone.h>
#include <linux/mutex.h>
#include <linux/swap.h>
#include <linux/types.h>
#include <linux/wait_bit.h>
#include <linux/xarray.h>
#include "internal.h"

/* Page protection of a type's linear mapping. */
enum memremap_prot {
	MEMREMAP_PROT_KERNEL,		/* PAGE_KERNEL as it is */
	MEMREMAP_PROT_DECRYPTED,	/* shared with the host, unencrypted */
	MEMREMAP_PROT_UNCACHED,		/* MMIO behind a BAR */
};

/* Callbacks and fields a type cannot do without. */
#define MEMREMAP_NEEDS_FREE	BIT(0)
#define MEMREMAP_NEEDS_MIGRATE_TO_RAM	BIT(1)
#define MEMREMAP_NEEDS_OWNER		BIT(2)

/**
 * struct memremap_kind - the rules of one memory type
 * @name: for messages
 * @supported: the kernel is configured for this type
 * @needs: MEMREMAP_NEEDS_* that a pagemap of this type must provide
 * @unaddressable: the CPU cannot access it: memmap only, no linear mapping
 * @free_at_zero: pages are free at refcount 0 and take a pagemap reference
 *	while in use; otherwise pages idle at refcount 1 and the pagemap holds
 *	a reference per folio for its whole life
 * @prot: the protection of the linear mapping
 */
struct memremap_kind {
	const char *name;
	bool supported;
	unsigned int needs;
	bool unaddressable;
	bool free_at_zero;
	enum memremap_prot prot;
};

static const struct memremap_kind memremap_kinds[] = {
	[MEMORY_DEVICE_PRIVATE] = {
		.name = "device-private",
		.supported = IS_ENABLED(CONFIG_DEVICE_PRIVATE),
		.needs = MEMREMAP_NEEDS_FREE | MEMREMAP_NEEDS_MIGRATE_TO_RAM |
			 MEMREMAP_NEEDS_OWNER,
		.unaddressable = true,
		.free_at_zero = true,
	},
	[MEMORY_DEVICE_COHERENT] = {
		.name = "device-coherent",
		.supported = true,
		.needs = MEMREMAP_NEEDS_FREE | MEMREMAP_NEEDS_OWNER,
		.free_at_zero = true,
	},
	[MEMORY_DEVICE_FS_DAX] = {
		.name = "fsdax",
		.supported = !IS_ENABLED(CONFIG_FS_DAX_LIMITED),
		.prot = MEMREMAP_PROT_DECRYPTED,
	},
	[MEMORY_DEVICE_GENERIC] = {
		.name = "generic",
		.supported = true,
	},
	[MEMORY_DEVICE_PCI_P2PDMA] = {
		.name = "p2pdma",
		.supported = true,
		.prot = MEMREMAP_PROT_UNCACHED,
	},
};

/* The rules for @pgmap's type; only valid for a type that passed the check. */
static const struct memremap_kind *memremap_kind_of(struct dev_pagemap *pgmap)
{
	return &memremap_kinds[pgmap->type];
}

/* Which pagemap owns a page frame: pfn -> struct dev_pagemap. */
static DEFINE_XARRAY(memremap_registry);
/* Serialises claims so that two pagemaps never claim the same frame. */
static DEFINE_MUTEX(memremap_claim_lock);
/*
 * The registry's entry for the frames of a pagemap being taken down: a
 * claim (memremap_claim() refuses an overlapping range) without a pagemap
 * (get_dev_pagemap() finds nothing).
 */
#define MEMREMAP_RETIRING	xa_mk_value(0)

#ifdef CONFIG_FS_DAX
/* On while an fsdax pagemap exists: put_page() asks us about device folios. */
DEFINE_STATIC_KEY_FALSE(devmap_managed_key);
EXPORT_SYMBOL(devmap_managed_key);

static void memremap_watch_idle(struct dev_pagemap *pgmap, bool on)
{
	if (pgmap->type != MEMORY_DEVICE_FS_DAX)
		return;
	if (on)
		static_branch_inc(&devmap_managed_key);
	else
		static_branch_dec(&devmap_managed_key);
}

/**
 * __put_devmap_managed_folio_refs() - drop references on an fsdax folio
 * @folio: a ZONE_DEVICE folio
 * @refs: how many references to drop
 *
 * fsdax folios idle at refcount 1, not 0; the drop to 1 wakes whoever waits
 * for the folio to become idle (see dax_layout_busy_page()).
 *
 * Context: any context.
 * Return: true if @folio is fsdax and its references were dropped here,
 * false if the caller must drop them the usual way.
 */
bool __put_devmap_managed_folio_refs(struct folio *folio, int refs)
{
	bool fsdax = folio->pgmap->type == MEMORY_DEVICE_FS_DAX;

	/* Idle is 1: whoever waits for that wants to hear of it. */
	if (fsdax && folio_ref_sub_return(folio, refs) == 1)
		wake_up_var(&folio->_refcount);
	return fsdax;
}
EXPORT_SYMBOL(__put_devmap_managed_folio_refs);
#else
static void memremap_watch_idle(struct dev_pagemap *pgmap, bool on)
{
}
#endif /* CONFIG_FS_DAX */

/*
 * First pfn of range @i that is a usable device page: range 0 starts with
 * the frames the altmap keeps for the driver and for the memmap.
 */
static unsigned long memremap_first_pfn(struct dev_pagemap *pgmap, int i)
{
	unsigned long pfn = PHYS_PFN(pgmap->ranges[i].start);

	return i == 0 ? pfn + vmem_altmap_offset(pgmap_altmap(pgmap)) : pfn;
}

/* One past the last pfn of range @i. */
static unsigned long memremap_end_pfn(struct dev_pagemap *pgmap, int i)
{
	return PHYS_PFN(pgmap->ranges[i].end) + 1;
}

/* Folios in the usable part of range @i. */
static unsigned long memremap_nr_folios(struct dev_pagemap *pgmap, int i)
{
	unsigned long pages = memremap_end_pfn(pgmap, i) -
			      memremap_first_pfn(pgmap, i);

	return pages >> pgmap->vmemmap_shift;
}

/**
 * pgmap_pfn_valid() - is a page frame a usable page of a pagemap?
 * @pgmap: the pagemap
 * @pfn: the page frame
 *
 * Frames the altmap keeps for the driver or the memmap are inside the
 * pagemap's range but are not device pages.
 *
 * Context: any context; @pgmap must be registered.
 * Return: true if @pfn is in one of @pgmap's ranges and not held back.
 */
bool pgmap_pfn_valid(struct dev_pagemap *pgmap, unsigned long pfn)
{
	int i;

	for (i = 0; i < pgmap->nr_range; i++) {
		if (pfn < PHYS_PFN(pgmap->ranges[i].start) ||
		    pfn >= memremap_end_pfn(pgmap, i))
			continue;
		return pfn >= memremap_first_pfn(pgmap, i);
	}
	return false;
}
EXPORT_SYMBOL_GPL(pgmap_pfn_valid);

/* Does any range of @pgmap cover @pfn (held back or not)? */
static bool memremap_covers(struct dev_pagemap *pgmap, unsigned long pfn)
{
	int i;

	for (i = 0; i < pgmap->nr_range; i++)
		if (pfn >= PHYS_PFN(pgmap->ranges[i].start) &&
		    pfn < memremap_end_pfn(pgmap, i))
			return true;
	return false;
}

/**
 * get_dev_pagemap() - take a reference on the pagemap of a page frame
 * @pfn: the page frame
 * @pgmap: a pagemap the caller holds a reference on (a cached result of an
 *	earlier call), or NULL
 *
 * If @pgmap covers @pfn, its reference is reused and it is returned as it
 * is. Otherwise that reference is dropped and the owner of @pfn is looked
 * up. A pagemap being taken down (memunmap_pages() has begun) is not
 * found.
 *
 * Context: any context that may enter an RCU read-side section.
 * Return: the pagemap of @pfn with a reference the caller puts with
 * put_dev_pagemap(), or NULL if no live pagemap covers @pfn.
 */
struct dev_pagemap *get_dev_pagemap(unsigned long pfn,
				    struct dev_pagemap *pgmap)
{
	struct dev_pagemap *found;

	if (pgmap && memremap_covers(pgmap, pfn))
		return pgmap;
	put_dev_pagemap(pgmap);

	rcu_read_lock();
	found = xa_load(&memremap_registry, pfn);
	if (xa_is_value(found) ||
	    (found && !percpu_ref_tryget_live_rcu(&found->ref)))
		found = NULL;
	rcu_read_unlock();
	return found;
}
EXPORT_SYMBOL_GPL(get_dev_pagemap);

/* Is every callback and field the type needs there? */
static int memremap_check_needs(struct dev_pagemap *pgmap,
				const struct memremap_kind *kind)
{
	const struct dev_pagemap_ops *ops = pgmap->ops;
	const char *missing = NULL;

	if ((kind->needs & MEMREMAP_NEEDS_FREE) &&
	    (!ops || (!ops->page_free && !ops->folio_free)))
		missing = "a folio_free or page_free callback";
	else if ((kind->needs & MEMREMAP_NEEDS_MIGRATE_TO_RAM) &&
		 (!ops || !ops->migrate_to_ram))
		missing = "a migrate_to_ram callback";
	else if ((kind->needs & MEMREMAP_NEEDS_OWNER) && !pgmap->owner)
		missing = "an owner";
	if (!missing)
		return 0;
	pr_err("memremap: %s pagemap without %s refused\n", kind->name, missing);
	return -EINVAL;
}

/* Does @pgmap follow the rules of its type and of memremap_pages()? */
static int memremap_check(struct dev_pagemap *pgmap)
{
	const struct memremap_kind *kind;

	if ((unsigned int)pgmap->type >= ARRAY_SIZE(memremap_kinds) ||
	    !memremap_kinds[pgmap->type].name) {
		pr_err("memremap: pagemap of unknown type %d refused\n",
		       pgmap->type);
		return -EINVAL;
	}
	kind = memremap_kind_of(pgmap);
	if (!kind->supported) {
		pr_err("memremap: %s pagemaps are not supported by this kernel\n",
		       kind->name);
		return -EINVAL;
	}
	if (pgmap->nr_range < 1) {
		pr_err("memremap: %s pagemap without a range refused\n",
		       kind->name);
		return -EINVAL;
	}
	if (pgmap_altmap(pgmap) && pgmap->nr_range > 1) {
		pr_err("memremap: %s pagemap with an altmap and %d ranges refused\n",
		       kind->name, pgmap->nr_range);
		return -EINVAL;
	}
	return memremap_check_needs(pgmap, kind);
}

static pgprot_t memremap_pgprot(const struct memremap_kind *kind)
{
	switch (kind->prot) {
	case MEMREMAP_PROT_DECRYPTED:
		return pgprot_decrypted(PAGE_KERNEL);
	case MEMREMAP_PROT_UNCACHED:
		return pgprot_noncached(PAGE_KERNEL);
	default:
		return PAGE_KERNEL;
	}
}

/* Forget the owner of @range's frames; no lookup sees @pgmap afterwards. */
static void memremap_unclaim(struct range *range)
{
	xa_store_range(&memremap_registry, PHYS_PFN(range->start),
		       PHYS_PFN(range->end), NULL, GFP_KERNEL);
	/* get_dev_pagemap() looks up under RCU: let those lookups finish. */
	synchronize_rcu();
}

/*
 * Keep @range claimed but hide its pagemap from lookups. Return: false if
 * the registry could not be changed (the pagemap is still found then).
 */
static bool memremap_retire(struct range *range)
{
	return !xa_is_err(xa_store_range(&memremap_registry,
					 PHYS_PFN(range->start),
					 PHYS_PFN(range->end),
					 MEMREMAP_RETIRING, GFP_KERNEL));
}

/* Record @pgmap as the owner of @range, unless something else is there. */
static int memremap_claim(struct dev_pagemap *pgmap, struct range *range)
{
	unsigned long first = PHYS_PFN(range->start);
	unsigned long last = PHYS_PFN(range->end);
	unsigned long index = first;
	int ret;

	if (region_intersects(range->start, range_len(range),
			      IORESOURCE_SYSTEM_RAM,
			      IORES_DESC_NONE) != REGION_DISJOINT) {
		pr_err("memremap: range %#llx-%#llx overlaps System RAM\n",
		       range->start, range->end);
		return -ENXIO;
	}

	mutex_lock(&memremap_claim_lock);
	if (xa_find(&memremap_registry, &index, last, XA_PRESENT)) {
		pr_err("memremap: range %#llx-%#llx overlaps another pagemap\n",
		       range->start, range->end);
		ret = -EBUSY;
	} else {
		ret = xa_err(xa_store_range(&memremap_registry, first, last,
					    pgmap, GFP_KERNEL));
	}
	mutex_unlock(&memremap_claim_lock);
	return ret;
}

/*
 * Memmap (and, for addressable memory, linear mapping) for @range, moved to
 * ZONE_DEVICE of @nid. Takes the hotplug lock.
 */
static int memremap_add_range(struct dev_pagemap *pgmap, struct range *range,
			      struct mhp_params *params, int nid)
{
	const struct memremap_kind *kind = memremap_kind_of(pgmap);
	unsigned long pfn = PHYS_PFN(range->start);
	unsigned long nr_pages = PHYS_PFN(range_len(range));
	struct zone *zone = &NODE_DATA(nid)->node_zones[ZONE_DEVICE];
	int ret;

	if (!mhp_range_allowed(range->start, range_len(range),
			       !kind->unaddressable))
		return -EINVAL;

	if (!kind->unaddressable) {
		ret = kasan_add_zero_shadow(__va(range->start), range_len(range));
		if (ret)
			return ret;
	}

	mem_hotplug_begin();
	if (kind->unaddressable)
		ret = add_pages(nid, pfn, nr_pages, params);
	else
		ret = arch_add_memory(nid, range->start, range_len(range), params);
	if (!ret)
		move_pfn_range_to_zone(zone, pfn, nr_pages, params->altmap,
				       MIGRATE_MOVABLE);
	mem_hotplug_done();

	if (ret && !kind->unaddressable)
		kasan_remove_zero_shadow(__va(range->start), range_len(range));
	return ret;
}

/* Undo memremap_add_range() for range @i; its pages are all back. */
static void memremap_remove_range(struct dev_pagemap *pgmap, int i)
{
	const struct memremap_kind *kind = memremap_kind_of(pgmap);
	struct range *range = &pgmap->ranges[i];
	unsigned long pfn = PHYS_PFN(range->start);
	unsigned long nr_pages = PHYS_PFN(range_len(range));
	/* The zone is read from a page whose memmap was initialised. */
	struct zone *zone = page_zone(pfn_to_page(memremap_first_pfn(pgmap, i)));

	mem_hotplug_begin();
	remove_pfn_range_from_zone(zone, pfn, nr_pages);
	if (kind->unaddressable) {
		__remove_pages(pfn, nr_pages, NULL, pgmap);
	} else {
		arch_remove_memory(range->start, range_len(range),
				   pgmap_altmap(pgmap), pgmap);
		kasan_remove_zero_shadow(__va(range->start), range_len(range));
	}
	mem_hotplug_done();
}

/* Claim, map and initialise range @i of @pgmap. */
static int memremap_range(struct dev_pagemap *pgmap, int i,
			  struct mhp_params *params, int nid)
{
	struct range *range = &pgmap->ranges[i];
	int ret;

	ret = memremap_claim(pgmap, range);
	if (ret)
		return ret;

	ret = track_pfn_remap(NULL, &params->pgprot, PHYS_PFN(range->start), 0,
			      range_len(range));
	if (ret)
		goto err_unclaim;

	ret = memremap_add_range(pgmap, range, params, nid);
	if (ret)
		goto err_untrack;

	/* Outside the hotplug lock: this can take a while for a big range. */
	memmap_init_zone_device(&NODE_DATA(nid)->node_zones[ZONE_DEVICE],
				PHYS_PFN(range->start),
				PHYS_PFN(range_len(range)), pgmap);
	if (!memremap_kind_of(pgmap)->free_at_zero)
		percpu_ref_get_many(&pgmap->ref, memremap_nr_folios(pgmap, i));
	return 0;

err_untrack:
	untrack_pfn(NULL, PHYS_PFN(range->start), range_len(range), true);
err_unclaim:
	memremap_unclaim(range);
	return ret;
}

/*
 * Undo memremap_range() for range @i. If @retired, no lookup can find the
 * pagemap any more and none that did is still running: drop the claim
 * without waiting.
 */
static void memunmap_range(struct dev_pagemap *pgmap, int i, bool retired)
{
	struct range *range = &pgmap->ranges[i];

	memremap_remove_range(pgmap, i);
	untrack_pfn(NULL, PHYS_PFN(range->start), range_len(range), true);
	if (retired)
		xa_store_range(&memremap_registry, PHYS_PFN(range->start),
			       PHYS_PFN(range->end), NULL, GFP_KERNEL);
	else
		memremap_unclaim(range);
}

static void memremap_ref_drained(struct percpu_ref *ref)
{
	struct dev_pagemap *pgmap = container_of(ref, struct dev_pagemap, ref);

	complete(&pgmap->done);
}

/*
 * Take down the first @nr_mapped ranges of @pgmap once every user is gone:
 * the end of memunmap_pages(), and the unwinding of memremap_pages().
 */
static void memremap_teardown(struct dev_pagemap *pgmap, int nr_mapped)
{
	bool retired = true;
	int i;

	/*
	 * Retire the ranges before the kill: the kill's switch to atomic
	 * mode (memremap_pages() starts the count in percpu mode) waits for
	 * a grace period that starts after this, so that when the count has
	 * drained no lookup still holds the pointer.
	 */
	for (i = 0; i < nr_mapped; i++)
		retired &= memremap_retire(&pgmap->ranges[i]);
	percpu_ref_kill(&pgmap->ref);
	if (!memremap_kind_of(pgmap)->free_at_zero)
		for (i = 0; i < nr_mapped; i++)
			percpu_ref_put_many(&pgmap->ref,
					    memremap_nr_folios(pgmap, i));
	wait_for_completion(&pgmap->done);

	for (i = nr_mapped - 1; i >= 0; i--)
		memunmap_range(pgmap, i, retired);
	percpu_ref_exit(&pgmap->ref);

	WARN_ONCE(pgmap->altmap.alloc, "memremap: %lu memmap pages not freed\n",
		  pgmap->altmap.alloc);
	memremap_watch_idle(pgmap, false);
}

/**
 * memremap_pages() - give a driver's memory struct pages in ZONE_DEVICE
 * @pgmap: the pagemap: type, ops, owner and ranges filled in, optionally
 *	the altmap (with %PGMAP_ALTMAP_VALID) and vmemmap_shift
 * @nid: the NUMA node for the pages, or a negative number for the current
 *	CPU's memory node
 *
 * Checks @pgmap against the rules of its type, then gives each range a
 * memmap (and a linear mapping if the CPU can address it). Undone by
 * memunmap_pages(); a driver with a struct device should use
 * devm_memremap_pages() instead.
 *
 * Context: process context, may sleep; takes the memory hotplug lock.
 * Return: the kernel address of the first range on success (meaningless
 * for device-private memory, which has no linear mapping), an ERR_PTR() if
 * @pgmap breaks a rule (-EINVAL), a range overlaps RAM (-ENXIO) or another
 * pagemap (-EBUSY), or the memory could not be added.
 */
void *memremap_pages(struct dev_pagemap *pgmap, int nid)
{
	struct mhp_params params = {
		.altmap = pgmap_altmap(pgmap),
		.pgmap = pgmap,
	};
	int ret, i;

	might_sleep();
	ret = memremap_check(pgmap);
	if (ret)
		return ERR_PTR(ret);
	params.pgprot = memremap_pgprot(memremap_kind_of(pgmap));
	if (nid < 0)
		nid = numa_mem_id();

	init_completion(&pgmap->done);
	ret = percpu_ref_init(&pgmap->ref, memremap_ref_drained, 0, GFP_KERNEL);
	if (ret)
		return ERR_PTR(ret);
	memremap_watch_idle(pgmap, true);

	for (i = 0; i < pgmap->nr_range; i++) {
		ret = memremap_range(pgmap, i, &params, nid);
		if (ret) {
			memremap_teardown(pgmap, i);
			return ERR_PTR(ret);
		}
	}
	return __va(pgmap->ranges[0].start);
}
EXPORT_SYMBOL_GPL(memremap_pages);

/**
 * memunmap_pages() - take down what memremap_pages() set up
 * @pgmap: a pagemap registered by memremap_pages()
 *
 * Refuses new get_dev_pagemap() lookups, then waits until every page of
 * @pgmap has been freed back to the driver and every lookup reference has
 * been put, and only then removes the ranges. The driver must get its
 * pages back (e.g. by migrating device-private pages to RAM) for this to
 * return; it must not hand out pages once this has been called.
 *
 * Context: process context, may sleep for as long as pages are in use;
 * takes the memory hotplug lock.
 */
void memunmap_pages(struct dev_pagemap *pgmap)
{
	might_sleep();
	memremap_teardown(pgmap, pgmap->nr_range);
}
EXPORT_SYMBOL_GPL(memunmap_pages);

static void memremap_devm_release(void *pgmap)
{
	memunmap_pages(pgmap);
}

/**
 * devm_memremap_pages() - memremap_pages() undone when @dev is unbound
 * @dev: the device that owns the memory; its node is the pages' node
 * @pgmap: the pagemap, as for memremap_pages()
 *
 * Context: process context, may sleep.
 * Return: as memremap_pages(); on failure nothing is left registered.
 */
void *devm_memremap_pages(struct device *dev, struct dev_pagemap *pgmap)
{
	void *addr;
	int ret;

	addr = memremap_pages(pgmap, dev_to_node(dev));
	if (IS_ERR(addr))
		return addr;
	ret = devm_add_action_or_reset(dev, memremap_devm_release, pgmap);
	return ret ? ERR_PTR(ret) : addr;
}
EXPORT_SYMBOL_GPL(devm_memremap_pages);

/**
 * devm_memunmap_pages() - take down a devm_memremap_pages() mapping now
 * @dev: the device passed to devm_memremap_pages()
 * @pgmap: the pagemap passed to devm_memremap_pages()
 *
 * Context: process context, may sleep (see memunmap_pages()).
 */
void devm_memunmap_pages(struct device *dev, struct dev_pagemap *pgmap)
{
	devm_release_action(dev, memremap_devm_release, pgmap);
}
EXPORT_SYMBOL_GPL(devm_memunmap_pages);

/*
 * Make the struct page of a free private or coherent page a clean page of
 * @pgmap, whatever folio it was part of before: the word that linked a
 * tail to its head is the pagemap again, and the flags and mapping lose
 * what an old head or second page kept there (its order, the folio-wide
 * bits, the mapcount of its pages). zone_device_data stays: drivers set it
 * before they hand the page out.
 */
static void memremap_page_clean(struct page *page, struct dev_pagemap *pgmap)
{
	page->flags &= ~PAGE_FLAGS_SECOND;
	page->pgmap = pgmap;
	page->mapping = NULL;
	page->index = 0;
	set_page_private(page, 0);
}

/*
 * Take @nr references on @pgmap for pages being handed out. A driver too
 * late (memunmap_pages() has begun) is told, and still takes them, so that
 * the count the free path puts back stays balanced.
 */
static __always_inline void memremap_get_live(struct dev_pagemap *pgmap,
					      unsigned long nr)
{
	if (WARN_ON_ONCE(!percpu_ref_tryget_live(&pgmap->ref)))
		percpu_ref_get(&pgmap->ref);
	if (nr > 1)
		percpu_ref_get_many(&pgmap->ref, nr - 1);
}

/*
 * zone_device_page_init() with every check, and of any order. Out of line
 * and called last, so that the 4 KiB path a driver takes per page needs no
 * stack frame.
 */
static noinline void memremap_init_pages(struct page *page,
					 struct dev_pagemap *pgmap,
					 unsigned int order)
{
	unsigned long i, nr = 1UL << order;

	VM_WARN_ON_ONCE_PAGE(!memremap_kind_of(pgmap)->free_at_zero, page);
	if (order) {
		VM_WARN_ON_ONCE_PAGE(order > MAX_FOLIO_ORDER, page);
		VM_WARN_ON_ONCE_PAGE(!IS_ALIGNED(page_to_pfn(page), nr), page);
		VM_WARN_ON_ONCE_PAGE(!pgmap_pfn_valid(pgmap, page_to_pfn(page)) ||
				     !pgmap_pfn_valid(pgmap, page_to_pfn(page) + nr - 1),
				     page);
		/* The free path could not give such a folio back: say so now. */
		WARN_ON_ONCE(!pgmap->ops->folio_free);
	}

	memremap_get_live(pgmap, nr);
	for (i = 0; i < nr; i++) {
		VM_WARN_ON_ONCE_PAGE(page_ref_count(page + i), page + i);
		memremap_page_clean(page + i, pgmap);
	}
	if (order)
		prep_compound_page(page, order);
	set_page_count(page, 1);
	lock_page(page);
}

/**
 * zone_device_page_init() - hand out free private or coherent pages as a folio
 * @page: the first of 2^@order free pages of @pgmap (refcount 0), aligned
 *	to their number
 * @pgmap: the %MEMORY_DEVICE_PRIVATE or %MEMORY_DEVICE_COHERENT pagemap
 *	they belong to
 * @order: the order of the folio to make, up to %MAX_FOLIO_ORDER; above
 *	0 the pagemap needs ops->folio_free()
 *
 * The pages become one folio with refcount 1, locked, ready to be a
 * migration destination; the pagemap gets one reference per page, which
 * free_zone_device_folio() drops. Whatever folio the pages were part of
 * before does not matter. A large folio made this way is not set up for
 * the anonymous rmap: migration destinations want zone_device_folio_init().
 * Drivers must not hand out pages once memunmap_pages() has begun.
 *
 * A driver written for 6.12 may still call zone_device_page_init(page):
 * one page of the pagemap it belongs to.
 *
 * Context: process context (the folio lock may sleep).
 */
void zone_device_page_init(struct page *page, struct dev_pagemap *pgmap,
			   unsigned int order)
{
	/*
	 * One page that passes the checks (made only with CONFIG_DEBUG_VM,
	 * which memremap_init_pages() then reports) takes the short way.
	 */
	if (unlikely(order || (IS_ENABLED(CONFIG_DEBUG_VM) &&
			       (page_ref_count(page) ||
				!memremap_kind_of(pgmap)->free_at_zero)))) {
		memremap_init_pages(page, pgmap, order);
		return;
	}
	memremap_get_live(pgmap, 1);
	memremap_page_clean(page, pgmap);
	set_page_count(page, 1);
	lock_page(page);
}
EXPORT_SYMBOL_GPL(zone_device_page_init);

/**
 * zone_device_folio_init() - hand out a private or coherent folio for anon use
 * @folio: the first of 2^@order free pages of @pgmap, as a folio
 * @pgmap: the pagemap they belong to
 * @order: the folio's order (see zone_device_page_init())
 *
 * zone_device_page_init(), and a large folio is also made ready for the
 * anonymous rmap (its pages counted when mapped by a PMD or by PTEs), as
 * migrate_vma_pages() needs of a destination of more than one page.
 *
 * Context: process context (the folio lock may sleep).
 */
void zone_device_folio_init(struct folio *folio, struct dev_pagemap *pgmap,
			    unsigned int order)
{
	zone_device_page_init(&folio->page, pgmap, order);
	if (order)
		folio_set_large_rmappable(folio);
}
EXPORT_SYMBOL_GPL(zone_device_folio_init);

/*
 * Clear what the folio's last user left behind, so the driver gets a clean
 * page: the memcg charge, the anon-exclusive bit and the (stale) mapping,
 * which could still mark it anonymous.
 */
static __always_inline void memremap_folio_reset(struct folio *folio,
						 unsigned int order)
{
	unsigned long i, nr = 1UL << order;

	/* The queue is the memcg's: leave it before the charge goes. */
	if (order)
		folio_unqueue_deferred_split(folio);
	mem_cgroup_uncharge(folio);
	if (folio_test_anon(folio)) {
		for (i = 0; i < nr; i++)
			__ClearPageAnonExclusive(folio_page(folio, i));
		/* Counted when it became anonymous, as the page allocator does. */
		mod_mthp_stat(order, MTHP_STAT_NR_ANON, -1);
	}
	folio->mapping = NULL;
}

/*
 * Hand @folio back to its driver, through folio_free(), or page_free() if
 * @page_free_ok. A driver with neither is a bug: the folio is then kept
 * from everyone.
 */
static __always_inline void memremap_folio_free(struct folio *folio,
						const struct dev_pagemap_ops *ops,
						bool page_free_ok)
{
	if (WARN_ON_ONCE(!ops || !(ops->folio_free ||
				   (page_free_ok && ops->page_free))))
		return;
	if (ops->folio_free)
		ops->folio_free(folio);
	else
		ops->page_free(&folio->page);
}

/*
 * free_zone_device_folio() of any folio: large, or of a type whose idle
 * pages hold a reference. Out of line, so that the common case needs no
 * more than one register kept across the driver's callback.
 */
static noinline void memremap_free_any(struct folio *folio,
				       struct dev_pagemap *pgmap,
				       bool free_at_zero)
{
	unsigned int order = folio_order(folio);

	memremap_folio_reset(folio, order);
	/* Types whose idle pages hold refcount 1 get it back before the driver. */
	if (!free_at_zero)
		folio_set_count(folio, 1);
	/* A large folio free at zero needs a driver of large folios. */
	memremap_folio_free(folio, pgmap->ops, !free_at_zero || !order);
	/*
	 * Only the pagemap now: the references zone_device_page_init() took,
	 * dropped also for a folio the driver could not take back, so that
	 * memunmap_pages() does not wait for it.
	 */
	if (free_at_zero)
		percpu_ref_put_many(&pgmap->ref, 1UL << order);
}

/*
 * The last reference to a ZONE_DEVICE folio is gone (from folio_put()).
 * Everything the core needs of the folio is read before the driver's
 * callback: after that the driver may already have handed its pages to
 * someone else, at another order.
 */
void free_zone_device_folio(struct folio *folio)
{
	struct dev_pagemap *pgmap = folio->pgmap;
	bool free_at_zero = memremap_kind_of(pgmap)->free_at_zero;

	if (unlikely(!free_at_zero || folio_test_large(folio))) {
		memremap_free_any(folio, pgmap, free_at_zero);
		return;
	}
	/* One private or coherent page: the same steps, each at order 0. */
	memremap_folio_reset(folio, 0);
	memremap_folio_free(folio, pgmap->ops, true);
	percpu_ref_put(&pgmap->ref);
}

#ifndef CONFIG_ARCH_HAS_MEMREMAP_COMPAT_ALIGN
/**
 * memremap_compat_align() - alignment a namespace needs to be remappable
 *
 * A persistent memory namespace may be switched between memremap() (any
 * page) and memremap_pages() (whole subsections). To stay switchable it
 * must be aligned for the stricter of the two.
 *
 * Context: any context.
 * Return: the smallest alignment, in bytes, memremap_pages() can map.
 */
unsigned long memremap_compat_align(void)
{
	return SUBSECTION_SIZE;
}
EXPORT_SYMBOL_GPL(memremap_compat_align);
#endif
