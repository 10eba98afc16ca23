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
 * the refcount after page_free(), which undid a driver's immediate reuse).
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
	bool reuse_on_free;	/* hand the page out again from page_free */
	struct work_struct unmap_work;
	struct completion unmapped;
};

static struct memremap_kunit_dev *memremap_kunit_of(struct page *page)
{
	return page->pgmap->owner;
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
	if (page->pgmap->type == MEMORY_DEVICE_PRIVATE)
		zone_device_page_init(page);
	else
		get_page(page);
}

static vm_fault_t memremap_kunit_migrate_to_ram(struct vm_fault *vmf)
{
	return VM_FAULT_SIGBUS;	/* never mapped in a process */
}

static const struct dev_pagemap_ops memremap_kunit_ops = {
	.page_free = memremap_kunit_page_free,
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

static void memremap_kunit_refusal_desc(const struct memremap_kunit_refusal *r,
					char *desc)
{
	strscpy(desc, r->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(memremap_kunit_refusal, memremap_kunit_refusals,
		  memremap_kunit_refusal_desc);

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

static struct kunit_case memremap_kunit_cases[] = {
	KUNIT_CASE_PARAM(memremap_refuses_incomplete_pagemap,
			 memremap_kunit_refusal_gen_params),
	KUNIT_CASE(memremap_maps_every_range),
	KUNIT_CASE(memunmap_waits_for_pages_in_use),
	KUNIT_CASE_PARAM(free_path_leaves_reused_page_alone,
			 memremap_kunit_type_gen_params),
	{}
};

static struct kunit_suite memremap_kunit_suite = {
	.name = "memremap",
	.test_cases = memremap_kunit_cases,
};

kunit_test_suite(memremap_kunit_suite);

MODULE_DESCRIPTION("KUnit tests for ZONE_DEVICE pagemaps");
MODULE_LICENSE("GPL");
