/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * DMA mappings for a range mirrored with hmm_range_fault().
 *
 * A driver that mirrors a range into a device which reaches memory by DMA
 * needs, next to each hmm_pfns[] word, the address the device uses for that
 * page, and must know which entries it mapped so that it unmaps each once.
 * struct hmm_dma_map keeps both: the pfn array the driver hands to
 * hmm_range_fault() (whose HMM_PFN_DMA_MAPPED, HMM_PFN_P2PDMA and
 * HMM_PFN_P2PDMA_BUS bits record how an entry is mapped, and survive the
 * next hmm_range_fault()) and one DMA address per entry.
 *
 * The life of a map: hmm_dma_map_alloc() once per mirrored region; for each
 * device fault, hmm_range_fault() into @pfn_list and hmm_dma_map_pfn() on
 * the entries the device needs; in the mmu_interval_notifier's invalidate
 * callback, hmm_dma_unmap_pfn() on every entry of the invalidated span
 * before the pages can go; hmm_dma_map_free() after every entry is unmapped.
 * See Documentation/mm/hmm.rst, "DMA mapping a mirror".
 */
#ifndef LINUX_HMM_DMA_H
#define LINUX_HMM_DMA_H

#include <linux/dma-mapping.h>

struct device;
struct pci_p2pdma_map_state;	/* <linux/pci-p2pdma.h> */

/**
 * struct hmm_dma_map - DMA mappings of a mirrored region, one per page
 * @state: a single IOVA range for the whole region, where the DMA API can
 *	give one; this kernel maps entry by entry, and keeps here only the
 *	map's one mapping of the zero page (dma_use_iova() stays false)
 * @pfn_list: the hmm_pfns[] array of the region, for hmm_range_fault();
 *	one word per page, holding also each entry's DMA state
 * @dma_list: the DMA address of each mapped entry
 * @dma_entry_size: bytes of one DMA mapping, from the entry's page on;
 *	PAGE_SIZE unless the device maps in larger units
 */
struct hmm_dma_map {
	struct dma_iova_state state;
	unsigned long *pfn_list;
	dma_addr_t *dma_list;
	size_t dma_entry_size;
};

dma_addr_t hmm_dma_map_pfn(struct device *dev, struct hmm_dma_map *map,
			   size_t idx,
			   struct pci_p2pdma_map_state *p2pdma_state);
bool hmm_dma_unmap_pfn(struct device *dev, struct hmm_dma_map *map, size_t idx);
int hmm_dma_map_alloc(struct device *dev, struct hmm_dma_map *map,
		      size_t nr_entries, size_t dma_entry_size);
void hmm_dma_map_free(struct device *dev, struct hmm_dma_map *map);

#endif /* LINUX_HMM_DMA_H */
