/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The device-private entry, built and read in one place.
 *
 * A page of device-private memory is mapped in a process by a non-present
 * page-table entry that names the device page and whether the CPU may
 * write to it once the page is back. mm/hmm.c reads such entries (to report
 * the caller's own device memory), mm/migrate_device.c reads them (to
 * collect device pages) and writes them (to map a device page, fresh or
 * migrated). They all go through the helpers below, so that the entry has
 * one definition. A PMD that maps a whole PMD-sized device folio has its
 * own reader and builder beside them, the same entry one level up.
 *
 * These are for mm/ only.
 */
#ifndef _MM_HMM_ENTRY_H
#define _MM_HMM_ENTRY_H

#include <linux/mm.h>
#include <linux/swapops.h>

/**
 * struct hmm_devp - a device-private entry, decoded
 * @page: the device page it maps; NULL if the entry is not device-private
 * @writable: whether the CPU may write to the page when it is back
 */
struct hmm_devp {
	struct page *page;
	bool writable;
};

/* The device-private page that @entry maps, if it maps one. */
static inline struct hmm_devp hmm_devp_from_swp(swp_entry_t entry)
{
	struct hmm_devp devp = {};

	if (is_device_private_entry(entry)) {
		devp.page = pfn_swap_entry_to_page(entry);
		devp.writable = is_writable_device_private_entry(entry);
	}
	return devp;
}

/* The same for a non-present, non-empty PTE (is_swap_pte()). */
static inline struct hmm_devp hmm_devp_from_pte(pte_t pte)
{
	return hmm_devp_from_swp(pte_to_swp_entry(pte));
}

/*
 * The PTE that maps device-private @page, writable once back if @writable,
 * with the soft-dirty and uffd-wp bits of @old, the non-present entry it
 * replaces (or an empty PTE: none to keep).
 */
static inline pte_t hmm_devp_mkpte(struct page *page, bool writable,
				   pte_t old)
{
	unsigned long pfn = page_to_pfn(page);
	pte_t pte;

	pte = swp_entry_to_pte(writable ?
			       make_writable_device_private_entry(pfn) :
			       make_readable_device_private_entry(pfn));
	if (pte_swp_soft_dirty(old))
		pte = pte_swp_mksoft_dirty(pte);
	if (pte_swp_uffd_wp(old))
		pte = pte_swp_mkuffd_wp(pte);
	return pte;
}

#ifdef CONFIG_ARCH_ENABLE_THP_MIGRATION
/* The device-private folio a non-present PMD maps, if it maps one. */
static inline struct hmm_devp hmm_devp_from_pmd(pmd_t pmd)
{
	struct hmm_devp devp = {};

	if (is_pmd_device_private_entry(pmd))
		devp = hmm_devp_from_swp(pmd_to_swp_entry(pmd));
	return devp;
}

/*
 * The PMD that maps the PMD-sized device-private folio whose first page is
 * @page: hmm_devp_mkpte() one level up, keeping the bits of @old.
 */
static inline pmd_t hmm_devp_mkpmd(struct page *page, bool writable,
				   pmd_t old)
{
	unsigned long pfn = page_to_pfn(page);
	pmd_t pmd;

	pmd = swp_entry_to_pmd(writable ?
			       make_writable_device_private_entry(pfn) :
			       make_readable_device_private_entry(pfn));
	if (pmd_swp_soft_dirty(old))
		pmd = pmd_swp_mksoft_dirty(pmd);
	if (pmd_swp_uffd_wp(old))
		pmd = pmd_swp_mkuffd_wp(pmd);
	return pmd;
}
#else
static inline struct hmm_devp hmm_devp_from_pmd(pmd_t pmd)
{
	return (struct hmm_devp) {};
}

static inline pmd_t hmm_devp_mkpmd(struct page *page, bool writable,
				   pmd_t old)
{
	return old;	/* never called: no device-private PMD is made */
}
#endif

#endif /* _MM_HMM_ENTRY_H */
