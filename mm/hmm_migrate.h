/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Mirroring and migration in one page-table walk: what mm/hmm.c and
 * mm/migrate_device.c ask of each other for HMM_PFN_REQ_MIGRATE and
 * MIGRATE_VMA_FAULT. For mm/ only.
 *
 * hmm_range_fault() with HMM_PFN_REQ_MIGRATE hands every span it has
 * reported to the collection of migrate_device.c; migrate_vma_setup() with
 * MIGRATE_VMA_FAULT runs that same walk (hmm_range_walk()) on a range of
 * its own, without a notifier. CONFIG_HMM_MIGRATE_WALK says both halves
 * are built; without it the stubs refuse the combined requests.
 */
#ifndef _MM_HMM_MIGRATE_H
#define _MM_HMM_MIGRATE_H

#include <linux/hmm.h>
#include <linux/migrate.h>

#ifdef CONFIG_HMM_MIGRATE_WALK
int mdev_walk_begin(struct migrate_vma *args, const struct hmm_range *range);
void mdev_walk_collect(struct migrate_vma *args, unsigned long *hmm_pfns,
		       pmd_t *pmdp, unsigned long start, unsigned long end);
void mdev_walk_abort(struct migrate_vma *args, bool failed);
int hmm_range_walk(struct hmm_range *range, struct mm_struct *mm);
#else
static inline int mdev_walk_begin(struct migrate_vma *args,
				  const struct hmm_range *range)
{
	return -EOPNOTSUPP;
}

static inline void mdev_walk_collect(struct migrate_vma *args,
				     unsigned long *hmm_pfns, pmd_t *pmdp,
				     unsigned long start, unsigned long end)
{
}

static inline void mdev_walk_abort(struct migrate_vma *args, bool failed)
{
}

static inline int hmm_range_walk(struct hmm_range *range,
				 struct mm_struct *mm)
{
	return -EOPNOTSUPP;
}
#endif

#endif /* _MM_HMM_MIGRATE_H */
