// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * KUnit tests of ZONE_DEVICE pagemaps (mm/memremap.c).
 *
 * Each case plays a driver that owns some device memory: it takes a free
 * range of physical address space nobody uses (request_free_mem_region(),
 * as device-private drivers do), describes it with a struct dev_pagemap and
 * registers it. No case ever reads or writes the memory itself, only the
 * struct pages, so the ranges need not be backed by anything.
 *
 * What the cases pin down: which pagemaps registration refuses (each type's
 * required callbacks and owner), lookups over several ranges, the
 * reference count that makes memunmap_pages() wait for the last page, and
 * the free path's promise that once ops->page_free() has returned a page
 * to its driver the core does not touch it again (upstream fixed a reset of
 * the refcount after page_free(), which undid a driver's immediate reuse),
 * and large device folios: handed out at an order, seen as one folio of
 * their pagemap from every page, freed whole through ops->folio_free() and
 * not touched after it (mainline's CVE-2026-46277), their pages handed out
 * again at other orders.
 */
#include <kunit/test.h>
#include <linux/completion.h>
#include <linux/delay.h>
#include <linux/ioport.h>
#include <linux/memremap.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/workqueue.h>

#define MEMREMAP_KUNIT_RANGE	(2UL << 20)	/* one subsection's worth */

/* A test driver's pagemap: up to two ranges and what its callbacks saw. */
struct memremap_kunit_dev {
	struct dev_pagemap *pgmap;	/* owner: this structure */
	struct resource *res[2];
	unsigned int nr_res;
	unsigned int frees;
	int refcount_at_free;	/* page_ref_count() inside page_free */
	int order_at_free;	/* folio_order() inside folio_free */
	bool reuse_on_free;	/* hand the page out again from page_free */
	int reuse_order;	/* ... at this order, from folio_free */
	struct work_struct unmap_work;
	struct completion unmapped;
};

static struct memremap_kunit_dev *memremap_kunit_of(struct page *page)
{
	return page_pgmap(page)->owner;
}

static void memremap_kunit_page_free(struct page *page)
{
	struct memremap_kunit_dev *mdev = memremap_kunit_of(page);

	mdev->frees++;
	mdev->refcount_at_free = page_ref_count(page);
	if (!mdev->reuse_on_free)
		return;
	mdev->reuse_on_free = false;
	/* The driver's allocator gives the page to its next user right away. */
	if (page_pgmap(page)->type == MEMORY_DEVICE_PRIVATE)
		zone_device_page_init(page);
	else
		get_page(page);
}

/* A driver of large folios: takes them back whole. */
static void memremap_kunit_folio_free(struct folio *folio)
{
	struct memremap_kunit_dev *mdev = memremap_kunit_of(&folio->page);

	mdev->frees++;
	mdev->refcount_at_free = folio_ref_count(folio);
	mdev->order_at_free = folio_order(folio);
	if (!mdev->reuse_on_free)
		return;
	mdev->reuse_on_free = false;
	/* The allocator hands the first page out again, at another order. */
	zone_device_page_init(&folio->page, mdev->pgmap, mdev->reuse_order);
}

static vm_fault_t memremap_kunit_migrate_to_ram(struct vm_fault *vmf)
{
	return VM_FAULT_SIGBUS;	/* never mapped in a process */
}

static const struct dev_pagemap_ops memremap_kunit_ops = {
	.page_free = memremap_kunit_page_free,
	.migrate_to_ram = memremap_kunit_migrate_to_ram,
};

static const struct dev_pagemap_ops memremap_kunit_folio_ops = {
	.folio_free = memremap_kunit_folio_free,
	.migrate_to_ram = memremap_kunit_migrate_to_ram,
};

static const struct dev_pagemap_ops memremap_kunit_no_migrate_ops = {
	.page_free = memremap_kunit_page_free,
};

static const struct dev_pagemap_ops memremap_kunit_no_free_ops = {
	.migrate_to_ram = memremap_kunit_migrate_to_ram,
};

/* Give back the regions; each is a whole section, whatever was mapped. */
static void memremap_kunit_release(struct memremap_kunit_dev *mdev)
{
	while (mdev->nr_res) {
		struct resource *res = mdev->res[--mdev->nr_res];

		release_mem_region(res->start, resource_size(res));
	}
}

/* A pagemap of @type over @nr_range free ranges, not registered yet. */
static struct memremap_kunit_dev *
memremap_kunit_dev(struct kunit *test, enum memory_type type, int nr_range)
{
	struct memremap_kunit_dev *mdev;
	int i;

	mdev = kunit_kzalloc(test, sizeof(*mdev), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, mdev);
	mdev->pgmap = kunit_kzalloc(test, struct_size(mdev->pgmap, ranges, 2),
				    GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, mdev->pgmap);
	for (i = 0; i < nr_range; i++) {
		struct resource *res;

		res = request_free_mem_region(&iomem_resource,
					      MEMREMAP_KUNIT_RANGE, "memremap_kunit");
		if (IS_ERR(res)) {
			memremap_kunit_release(mdev);
			KUNIT_FAIL_AND_ABORT(test, "no free range: %ld", PTR_ERR(res));
		}
		mdev->res[mdev->nr_res++] = res;
		mdev->pgmap->ranges[i] = (struct range) {
			.start = res->start,
			.end = res->start + MEMREMAP_KUNIT_RANGE - 1,
		};
	}
	mdev->pgmap->nr_range = nr_range;
	mdev->pgmap->type = type;
	mdev->pgmap->ops = &memremap_kunit_ops;
	mdev->pgmap->owner = mdev;
	init_completion(&mdev->unmapped);
	return mdev;
}

static unsigned long memremap_kunit_pfn(struct memremap_kunit_dev *mdev, int i)
{
	return PHYS_PFN(mdev->pgmap->ranges[i].start);
}

/* Register @mdev's pagemap; give the ranges back and abort if that fails. */
static void memremap_kunit_register(struct kunit *test,
				    struct memremap_kunit_dev *mdev)
{
	void *addr = memremap_pages(mdev->pgmap, NUMA_NO_NODE);

	if (IS_ERR(addr)) {
		memremap_kunit_release(mdev);
		KUNIT_FAIL_AND_ABORT(test, "memremap_pages: %ld", PTR_ERR(addr));
	}
}

/* ---- registration refuses what a type cannot work without ----------- */

struct memremap_kunit_refusal {
	const char *name;
	enum memory_type type;
	const struct dev_pagemap_ops *ops;
	bool no_owner;
	bool no_range;
};

static const struct memremap_kunit_refusal memremap_kunit_refusals[] = {
	{ "private without migrate_to_ram", MEMORY_DEVICE_PRIVATE,
	  &memremap_kunit_no_migrate_ops },
	{ "private without page_free", MEMORY_DEVICE_PRIVATE,
	  &memremap_kunit_no_free_ops },
	{ "private without ops", MEMORY_DEVICE_PRIVATE, NULL },
	{ "private without owner", MEMORY_DEVICE_PRIVATE, &memremap_kunit_ops,
	  .no_owner = true },
	{ "coherent without page_free", MEMORY_DEVICE_COHERENT,
	  &memremap_kunit_no_free_ops },
	{ "coherent without owner", MEMORY_DEVICE_COHERENT, &memremap_kunit_ops,
	  .no_owner = true },
	{ "type never set", 0, &memremap_kunit_ops },
	{ "type out of range", 99, &memremap_kunit_ops },
	{ "no range", MEMORY_DEVICE_PRIVATE, &memremap_kunit_ops,
	  .no_range = true },
};

KUNIT_ARRAY_PARAM_DESC(memremap_kunit_refusal, memremap_kunit_refusals, name);

static void memremap_refuses_incomplete_pagemap(struct kunit *test)
{
	const struct memremap_kunit_refusal *r = test->param_value;
	struct memremap_kunit_dev *mdev;
	void *addr;

	mdev = memremap_kunit_dev(test, MEMORY_DEVICE_PRIVATE, 1);
	mdev->pgmap->type = r->type;
	mdev->pgmap->ops = r->ops;
	if (r->no_owner)
		mdev->pgmap->owner = NULL;
	if (r->no_range)
		mdev->pgmap->nr_range = 0;

	addr = memremap_pages(mdev->pgmap, NUMA_NO_NODE);
	KUNIT_EXPECT_EQ(test, PTR_ERR_OR_ZERO(addr), -EINVAL);
	/* Nothing of it was registered. */
	KUNIT_EXPECT_NULL(test, get_dev_pagemap(memremap_kunit_pfn(mdev, 0), NULL));
	memremap_kunit_release(mdev);
}

/* ---- several ranges -------------------------------------------------- */

static void memremap_maps_every_range(struct kunit *test)
{
	struct memremap_kunit_dev *mdev;
	struct dev_pagemap *found;
	unsigned long first, last;
	void *addr;
	int i;

	mdev = memremap_kunit_dev(test, MEMORY_DEVICE_PRIVATE, 2);
	addr = memremap_pages(mdev->pgmap, NUMA_NO_NODE);
	if (IS_ERR(addr)) {
		memremap_kunit_release(mdev);
		KUNIT_FAIL_AND_ABORT(test, "memremap_pages: %ld", PTR_ERR(addr));
	}

	for (i = 0; i < 2; i++) {
		first = memremap_kunit_pfn(mdev, i);
		last = PHYS_PFN(mdev->pgmap->ranges[i].end);
		KUNIT_EXPECT_TRUE(test, pgmap_pfn_valid(mdev->pgmap, first));
		KUNIT_EXPECT_TRUE(test, pgmap_pfn_valid(mdev->pgmap, last));
		KUNIT_EXPECT_FALSE(test, pgmap_pfn_valid(mdev->pgmap, last + 1));
		KUNIT_EXPECT_PTR_EQ(test, pfn_to_page(last)->pgmap, mdev->pgmap);
		KUNIT_EXPECT_TRUE(test, is_device_private_page(pfn_to_page(first)));
		KUNIT_EXPECT_EQ(test, page_ref_count(pfn_to_page(first)), 0);

		found = get_dev_pagemap(last, NULL);
		KUNIT_EXPECT_PTR_EQ(test, found, mdev->pgmap);
		/* A cached pagemap that covers the pfn is handed back as is. */
		KUNIT_EXPECT_PTR_EQ(test, get_dev_pagemap(first, found), found);
		put_dev_pagemap(found);
	}

	memunmap_pages(mdev->pgmap);
	for (i = 0; i < 2; i++)
		KUNIT_EXPECT_NULL(test,
				  get_dev_pagemap(memremap_kunit_pfn(mdev, i), NULL));
	memremap_kunit_release(mdev);
}

/* ---- unmap waits for the last page ----------------------------------- */

static void memremap_kunit_unmap_work(struct work_struct *work)
{
	struct memremap_kunit_dev *mdev =
		container_of(work, struct memremap_kunit_dev, unmap_work);

	memunmap_pages(mdev->pgmap);
	complete(&mdev->unmapped);
}

/*
 * Take the pagemap down, which only returns once every reference a page
 * took is back: a reference too few or too many fails the case instead
 * of hanging it (the pagemap is then left registered).
 */
static void memremap_kunit_unmap_all_back(struct kunit *test,
					  struct memremap_kunit_dev *mdev)
{
	INIT_WORK(&mdev->unmap_work, memremap_kunit_unmap_work);
	schedule_work(&mdev->unmap_work);
	if (!wait_for_completion_timeout(&mdev->unmapped,
					 msecs_to_jiffies(10000)))
		KUNIT_FAIL_AND_ABORT(test, "memunmap_pages() still waits for pages");
	flush_work(&mdev->unmap_work);
	memremap_kunit_release(mdev);
}

static void memunmap_waits_for_pages_in_use(struct kunit *test)
{
	struct memremap_kunit_dev *mdev;
	struct page *page;
	void *addr;

	mdev = memremap_kunit_dev(test, MEMORY_DEVICE_PRIVATE, 1);
	addr = memremap_pages(mdev->pgmap, NUMA_NO_NODE);
	if (IS_ERR(addr)) {
		memremap_kunit_release(mdev);
		KUNIT_FAIL_AND_ABORT(test, "memremap_pages: %ld", PTR_ERR(addr));
	}

	page = pfn_to_page(memremap_kunit_pfn(mdev, 0) + 3);
	zone_device_page_init(page);
	KUNIT_EXPECT_EQ(test, page_ref_count(page), 1);
	KUNIT_EXPECT_TRUE(test, PageLocked(page));
	unlock_page(page);

	INIT_WORK(&mdev->unmap_work, memremap_kunit_unmap_work);
	schedule_work(&mdev->unmap_work);
	/* The page is still in use: the pagemap must stay. */
	KUNIT_EXPECT_EQ(test, wait_for_completion_timeout(&mdev->unmapped,
							  msecs_to_jiffies(200)), 0);
	KUNIT_EXPECT_EQ(test, mdev->frees, 0);
	/* Lookups fail as soon as the teardown has begun. */
	KUNIT_EXPECT_NULL(test, get_dev_pagemap(page_to_pfn(page), NULL));

	put_page(page);
	KUNIT_EXPECT_EQ(test, mdev->frees, 1);
	KUNIT_EXPECT_NE(test, wait_for_completion_timeout(&mdev->unmapped,
							  msecs_to_jiffies(10000)), 0);
	flush_work(&mdev->unmap_work);
	memremap_kunit_release(mdev);
}

/* ---- nothing touches a page after page_free() ------------------------ */

static const enum memory_type memremap_kunit_reuse_types[] = {
	MEMORY_DEVICE_PRIVATE,
	MEMORY_DEVICE_GENERIC,
};

static void memremap_kunit_type_desc(const enum memory_type *type, char *desc)
{
	strscpy(desc, *type == MEMORY_DEVICE_PRIVATE ? "private" : "generic",
		KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(memremap_kunit_type, memremap_kunit_reuse_types,
		  memremap_kunit_type_desc);

/*
 * The driver hands a page out again from inside page_free(), as an
 * allocator shared with another CPU may: the new user's state (its
 * refcount, the lock, the pagemap reference) must be what it left.
 */
static void free_path_leaves_reused_page_alone(struct kunit *test)
{
	const enum memory_type *type = test->param_value;
	bool private = *type == MEMORY_DEVICE_PRIVATE;
	struct memremap_kunit_dev *mdev;
	struct page *page;
	void *addr;

	mdev = memremap_kunit_dev(test, *type, 1);
	addr = memremap_pages(mdev->pgmap, NUMA_NO_NODE);
	if (IS_ERR(addr)) {
		memremap_kunit_release(mdev);
		KUNIT_FAIL_AND_ABORT(test, "memremap_pages: %ld", PTR_ERR(addr));
	}
	page = pfn_to_page(memremap_kunit_pfn(mdev, 0) + 7);

	/* In use: private pages are handed out, generic ones idle at 1. */
	if (private) {
		zone_device_page_init(page);
		unlock_page(page);
	}
	KUNIT_ASSERT_EQ(test, page_ref_count(page), 1);

	mdev->reuse_on_free = true;
	put_page(page);
	KUNIT_EXPECT_EQ(test, mdev->frees, 1);
	/* The driver got the page in its free state... */
	KUNIT_EXPECT_EQ(test, mdev->refcount_at_free, private ? 0 : 1);
	/* ...and its new user's reference survived the return of the free path. */
	if (private) {
		KUNIT_EXPECT_EQ(test, page_ref_count(page), 1);
		KUNIT_EXPECT_TRUE(test, PageLocked(page));
		unlock_page(page);
	} else {
		KUNIT_EXPECT_EQ(test, page_ref_count(page), 2);
	}

	/* The new user lets go; the pagemap then comes down without waiting. */
	put_page(page);
	KUNIT_EXPECT_EQ(test, mdev->frees, private ? 2 : 1);
	memunmap_pages(mdev->pgmap);
	memremap_kunit_release(mdev);
}

/* ---- large folios ------------------------------------------------------ */

static const enum memory_type memremap_kunit_folio_types[] = {
	MEMORY_DEVICE_PRIVATE,
	MEMORY_DEVICE_COHERENT,
};

static void memremap_kunit_folio_type_desc(const enum memory_type *type,
					   char *desc)
{
	strscpy(desc, *type == MEMORY_DEVICE_PRIVATE ? "private" : "coherent",
		KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(memremap_kunit_folio_type, memremap_kunit_folio_types,
		  memremap_kunit_folio_type_desc);

/* A registered pagemap of @type whose driver takes folios back whole. */
static struct memremap_kunit_dev *
memremap_kunit_folio_dev(struct kunit *test, enum memory_type type)
{
	struct memremap_kunit_dev *mdev = memremap_kunit_dev(test, type, 1);

	mdev->pgmap->ops = &memremap_kunit_folio_ops;
	memremap_kunit_register(test, mdev);
	return mdev;
}

/* Is @page a page of @folio that knows it, and knows the pagemap? */
static void memremap_kunit_expect_in_folio(struct kunit *test,
					   struct memremap_kunit_dev *mdev,
					   struct page *page, struct folio *folio)
{
	enum memory_type type = mdev->pgmap->type;

	KUNIT_EXPECT_PTR_EQ(test, page_folio(page), folio);
	KUNIT_EXPECT_PTR_EQ(test, page_pgmap(page), mdev->pgmap);
	KUNIT_EXPECT_EQ(test, is_device_private_page(page),
			type == MEMORY_DEVICE_PRIVATE);
	KUNIT_EXPECT_EQ(test, is_device_coherent_page(page),
			type == MEMORY_DEVICE_COHERENT);
	KUNIT_EXPECT_FALSE(test, is_pci_p2pdma_page(page));
}

/*
 * A 2 MiB folio handed out for anonymous use is one folio from each of its
 * pages, of its pagemap, with one reference; it comes back whole, once,
 * through folio_free(), and the pagemap then has every reference back.
 */
static void large_folio_is_handed_out_and_freed_whole(struct kunit *test)
{
	const enum memory_type *type = test->param_value;
	struct memremap_kunit_dev *mdev;
	struct folio *folio;
	unsigned long i;
	int cookie;

	mdev = memremap_kunit_folio_dev(test, *type);
	folio = pfn_folio(memremap_kunit_pfn(mdev, 0));
	zone_device_folio_init(folio, mdev->pgmap, PMD_ORDER);

	KUNIT_EXPECT_EQ(test, folio_order(folio), PMD_ORDER);
	KUNIT_EXPECT_TRUE(test, folio_test_large_rmappable(folio));
	KUNIT_EXPECT_EQ(test, folio_ref_count(folio), 1);
	KUNIT_EXPECT_TRUE(test, folio_test_locked(folio));
	KUNIT_EXPECT_EQ(test, folio_mapcount(folio), 0);
	for (i = 0; i < folio_nr_pages(folio); i++)
		memremap_kunit_expect_in_folio(test, mdev, folio_page(folio, i),
					       folio);
	/* Two of its pages are still the same pagemap's, for merging. */
	KUNIT_EXPECT_TRUE(test,
			  zone_device_pages_have_same_pgmap(folio_page(folio, 1),
							    folio_page(folio, 511)));
	if (*type == MEMORY_DEVICE_PRIVATE) {
		folio_set_zone_device_data(folio, &cookie);
		KUNIT_EXPECT_PTR_EQ(test, folio_zone_device_data(folio),
				    (void *)&cookie);
	}

	folio_unlock(folio);
	folio_put(folio);
	KUNIT_EXPECT_EQ(test, mdev->frees, 1);
	KUNIT_EXPECT_EQ(test, mdev->order_at_free, PMD_ORDER);
	KUNIT_EXPECT_EQ(test, mdev->refcount_at_free, 0);
	memremap_kunit_unmap_all_back(test, mdev);
}

/* Expect @page to be a clean order-0 folio, referenced and locked. */
static void memremap_kunit_expect_small(struct kunit *test,
					struct memremap_kunit_dev *mdev,
					struct page *page)
{
	struct folio *folio = page_folio(page);

	KUNIT_EXPECT_PTR_EQ(test, &folio->page, page);
	KUNIT_EXPECT_FALSE(test, folio_test_large(folio));
	KUNIT_EXPECT_PTR_EQ(test, page_pgmap(page), mdev->pgmap);
	KUNIT_EXPECT_NULL(test, folio->mapping);
	KUNIT_EXPECT_EQ(test, folio_ref_count(folio), 1);
	KUNIT_EXPECT_TRUE(test, folio_test_locked(folio));
	KUNIT_EXPECT_FALSE(test, folio_test_dirty(folio));
	KUNIT_EXPECT_FALSE(test, folio_test_uptodate(folio));
	KUNIT_EXPECT_EQ(test, folio_mapcount(folio), 0);
}

/* Hand @page out at @order, then let it go at once. */
static void memremap_kunit_cycle(struct memremap_kunit_dev *mdev,
				 struct page *page, unsigned int order)
{
	zone_device_page_init(page, mdev->pgmap, order);
	unlock_page(page);
	put_page(page);
}

/*
 * The pages of a freed 2 MiB folio go out again on their own and in other
 * sizes, and back into one 2 MiB folio: each time the new folio is clean,
 * whatever the old one left in its struct pages. Page 1 of the old folio
 * kept its order in its flags (it would look locked and dirty), page 2
 * the deferred-split list, every tail the link to the head.
 */
static void freed_large_folio_pages_go_out_at_any_order(struct kunit *test)
{
	const enum memory_type *type = test->param_value;
	struct memremap_kunit_dev *mdev;
	unsigned long pfn, i;
	struct folio *folio;
	struct page *head;

	mdev = memremap_kunit_folio_dev(test, *type);
	pfn = memremap_kunit_pfn(mdev, 0);
	head = pfn_to_page(pfn);
	memremap_kunit_cycle(mdev, head, PMD_ORDER);

	for (i = 0; i < 3; i++) {
		struct page *page = pfn_to_page(pfn + i);

		zone_device_page_init(page, mdev->pgmap, 0);
		memremap_kunit_expect_small(test, mdev, page);
	}
	for (i = 0; i < 3; i++) {
		struct page *page = pfn_to_page(pfn + i);

		unlock_page(page);
		put_page(page);
	}
	KUNIT_EXPECT_EQ(test, mdev->frees, 4);
	KUNIT_EXPECT_EQ(test, mdev->order_at_free, 0);

	/* A 64 KiB folio out of the middle of the old one. */
	folio = pfn_folio(pfn + 16);
	zone_device_folio_init(folio, mdev->pgmap, 4);
	KUNIT_EXPECT_EQ(test, folio_order(folio), 4);
	for (i = 0; i < 16; i++)
		memremap_kunit_expect_in_folio(test, mdev,
					       pfn_to_page(pfn + 16 + i), folio);
	folio_unlock(folio);
	folio_put(folio);
	KUNIT_EXPECT_EQ(test, mdev->order_at_free, 4);

	/* And the whole 2 MiB again, over pages freed at three orders. */
	folio = page_folio(head);
	zone_device_folio_init(folio, mdev->pgmap, PMD_ORDER);
	KUNIT_EXPECT_EQ(test, folio_order(folio), PMD_ORDER);
	for (i = 0; i < folio_nr_pages(folio); i++)
		memremap_kunit_expect_in_folio(test, mdev, folio_page(folio, i),
					       folio);
	folio_unlock(folio);
	folio_put(folio);
	KUNIT_EXPECT_EQ(test, mdev->frees, 6);
	KUNIT_EXPECT_EQ(test, mdev->order_at_free, PMD_ORDER);
	memremap_kunit_unmap_all_back(test, mdev);
}

/*
 * CVE-2026-46277 in mainline: the free path read the folio after
 * folio_free() had given it back to the driver. Here the driver hands the
 * first page out again from inside folio_free(), at order 0: the new
 * folio must be left as the driver made it, and the pagemap must get back
 * the 512 references of the old folio, not the 1 of the new one (or
 * memunmap_pages() would wait for ever).
 */
static void free_path_leaves_reused_folio_alone(struct kunit *test)
{
	const enum memory_type *type = test->param_value;
	struct memremap_kunit_dev *mdev;
	struct page *head;

	mdev = memremap_kunit_folio_dev(test, *type);
	head = pfn_to_page(memremap_kunit_pfn(mdev, 0));
	zone_device_folio_init(page_folio(head), mdev->pgmap, PMD_ORDER);
	unlock_page(head);

	mdev->reuse_on_free = true;
	mdev->reuse_order = 0;
	put_page(head);
	KUNIT_EXPECT_EQ(test, mdev->frees, 1);
	KUNIT_EXPECT_EQ(test, mdev->order_at_free, PMD_ORDER);
	memremap_kunit_expect_small(test, mdev, head);

	unlock_page(head);
	put_page(head);
	KUNIT_EXPECT_EQ(test, mdev->frees, 2);
	KUNIT_EXPECT_EQ(test, mdev->order_at_free, 0);
	memremap_kunit_unmap_all_back(test, mdev);
}

/*
 * The tail pages of a compound device-dax style pagemap (vmemmap_shift)
 * have had their pgmap word overwritten since before 6.12: the type tests
 * must read the pagemap through the folio and say "generic", not
 * dereference the link to the head.
 */
static void compound_pagemap_tails_know_their_pagemap(struct kunit *test)
{
	struct memremap_kunit_dev *mdev;
	struct page *head, *tail;

	mdev = memremap_kunit_dev(test, MEMORY_DEVICE_GENERIC, 1);
	mdev->pgmap->vmemmap_shift = PMD_ORDER;
	memremap_kunit_register(test, mdev);
	head = pfn_to_page(memremap_kunit_pfn(mdev, 0));
	tail = head + 300;

	KUNIT_EXPECT_TRUE(test, PageTail(tail));
	KUNIT_EXPECT_PTR_EQ(test, page_folio(tail), page_folio(head));
	KUNIT_EXPECT_PTR_EQ(test, page_pgmap(tail), mdev->pgmap);
	KUNIT_EXPECT_FALSE(test, is_device_private_page(tail));
	KUNIT_EXPECT_FALSE(test, is_device_coherent_page(tail));
	KUNIT_EXPECT_FALSE(test, is_pci_p2pdma_page(tail));
	KUNIT_EXPECT_TRUE(test, zone_device_pages_have_same_pgmap(head, tail));
	memremap_kunit_unmap_all_back(test, mdev);
}

static struct kunit_case memremap_kunit_cases[] = {
	KUNIT_CASE_PARAM(memremap_refuses_incomplete_pagemap,
			 memremap_kunit_refusal_gen_params),
	KUNIT_CASE(memremap_maps_every_range),
	KUNIT_CASE(memunmap_waits_for_pages_in_use),
	KUNIT_CASE_PARAM(free_path_leaves_reused_page_alone,
			 memremap_kunit_type_gen_params),
	KUNIT_CASE_PARAM(large_folio_is_handed_out_and_freed_whole,
			 memremap_kunit_folio_type_gen_params),
	KUNIT_CASE_PARAM(freed_large_folio_pages_go_out_at_any_order,
			 memremap_kunit_folio_type_gen_params),
	KUNIT_CASE_PARAM(free_path_leaves_reused_folio_alone,
			 memremap_kunit_folio_type_gen_params),
	KUNIT_CASE(compound_pagemap_tails_know_their_pagemap),
	{}
};

static struct kunit_suite memremap_kunit_suite = {
	.name = "memremap",
	.test_cases = memremap_kunit_cases,
};

kunit_test_suite(memremap_kunit_suite);

MODULE_DESCRIPTION("KUnit tests for ZONE_DEVICE pagemaps");
MODULE_LICENSE("GPL");
