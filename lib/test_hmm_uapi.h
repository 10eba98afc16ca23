/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * The commands of /dev/hmm_dmirror0..3, the dummy device of lib/test_hmm.c.
 *
 * Opening a node gives the caller a device that sees the caller's address
 * space: the device has a page table of its own, kept coherent with the
 * CPU's, and memory of its own (devices 0 and 1 device-private, 2 and 3
 * device-coherent), which pages can be migrated into and out of. Every
 * command takes a struct hmm_dmirror_cmd.
 *
 * Every command first reads the structure (EFAULT if it cannot), then,
 * for the commands that use a range (all but RELEASE), checks, in order:
 *   EINVAL  addr is not page aligned, npages is 0, or the range
 *           addr .. addr + npages pages wraps or leaves the user address
 *           space of the process that opened the file;
 *   EFAULT  ptr (when the command uses it) is not a user address range of
 *           the size the command needs;
 *   ESRCH   the process that opened the file has no address space left;
 *   (the command's own checks of the memory of the range, below);
 *   EFAULT  ptr is not mapped all along by mappings that let it be read
 *           (WRITE) or written (the others), and not VM_IO or VM_PFNMAP.
 * Only then does the command act; bad arguments change nothing. The device
 * uses ptr's pages in place: a page of ptr that cannot be had when the
 * device gets to it (unmapped meanwhile, say) fails the command with
 * EFAULT then, when some pages may have moved already. EINTR: a
 * fatal signal arrived while the command was working. An unknown command
 * fails with ENOTTY. On error, the structure is not written back: cpages
 * and faults are only meaningful on success.
 *
 * Each command's HMM_DMIRROR_*_ERRNOS lists, as an array initializer for
 * tests to check answers against, the errors its comment gives for a
 * well-formed request (a range inside one mapping, a good ptr): the memory
 * of the range, not the arguments, decides between them.
 *
 * This header is binary compatible with the one of Linux 6.12: the same
 * layout, command numbers and snapshot codes.
 */
#ifndef _LIB_TEST_HMM_UAPI_H
#define _LIB_TEST_HMM_UAPI_H

#include <linux/types.h>
#include <linux/ioctl.h>

/**
 * struct hmm_dmirror_cmd - the argument of every /dev/hmm_dmirror command
 * @addr:   in: first virtual address of the range, page aligned
 * @ptr:    in: the user buffer the command reads from or writes to
 * @npages: in: length of the range in pages
 * @cpages: out: pages the command handled (see each command)
 * @faults: out: times the device had to fault pages in through the CPU's
 *          page table before it could finish the command
 */
struct hmm_dmirror_cmd {
	__u64		addr;
	__u64		ptr;
	__u64		npages;
	__u64		cpages;
	__u64		faults;
};

/*
 * The byte HMM_DMIRROR_SNAPSHOT reports for each page. ERROR and NONE stand
 * alone; otherwise the byte is a kind of memory (high nibble, or ZERO)
 * combined with one access bit (READ or WRITE) and, when the CPU maps the
 * page with a huge entry, the size of that entry (PMD or PUD).
 *   ERROR                the page may not be accessed: no mapping there,
 *                        or a mapping without read permission;
 *   NONE                 nothing mapped yet, or a device-private page of
 *                        another device; alone, or as the kind "system
 *                        memory" with an access bit;
 *   READ, WRITE          the CPU maps the page read-only, or writable;
 *   PMD, PUD             ... with a huge entry of that level;
 *   ZERO                 the shared zero page;
 *   DEV_PRIVATE_LOCAL    a device-private page of this device;
 *   DEV_PRIVATE_REMOTE   a device-private page of another device (the
 *                        core does not report those today);
 *   DEV_COHERENT_LOCAL   a device-coherent page of this device;
 *   DEV_COHERENT_REMOTE  a device-coherent page of another device.
 */
enum {
	HMM_DMIRROR_PROT_ERROR			= 0xFF,
	HMM_DMIRROR_PROT_NONE			= 0x00,
	HMM_DMIRROR_PROT_READ			= 0x01,
	HMM_DMIRROR_PROT_WRITE			= 0x02,
	HMM_DMIRROR_PROT_PMD			= 0x04,
	HMM_DMIRROR_PROT_PUD			= 0x08,
	HMM_DMIRROR_PROT_ZERO			= 0x10,
	HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL	= 0x20,
	HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE	= 0x30,
	HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL	= 0x40,
	HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE	= 0x50,
};

/* The kinds of memory a dmirror device has; 0 means "no device". */
enum {
	HMM_DMIRROR_MEMORY_DEVICE_PRIVATE = 1,
	HMM_DMIRROR_MEMORY_DEVICE_COHERENT,
};

/* Every command is read-write on a struct hmm_dmirror_cmd, type 'H'. */
#define HMM_DMIRROR_IOC(nr)	_IOWR('H', (nr), struct hmm_dmirror_cmd)

/*
 * HMM_DMIRROR_READ: the device reads the range into ptr (npages pages).
 * Pages the device does not map yet are faulted in for reading, as a CPU
 * read would; device-private pages of another device come back to system
 * memory. cpages = npages, faults = number of fault rounds (1 when the
 * device mapped none of the range).
 * EFAULT: part of the range is unmapped or not readable. EBUSY: the range
 * kept changing under the device for longer than a second.
 */
#define HMM_DMIRROR_READ		HMM_DMIRROR_IOC(0x00)
#define HMM_DMIRROR_READ_ERRNOS		{ EFAULT, EBUSY }

/*
 * HMM_DMIRROR_WRITE: the device writes ptr (npages pages) into the range,
 * faulting pages in for writing as needed (this breaks copy-on-write).
 * cpages = npages, faults as for READ. The range is written window by
 * window: on error, the pages before the failing one may already hold the
 * new data. EPERM: part of the range is not writable. EFAULT: part of the
 * range is unmapped. EBUSY as for READ.
 */
#define HMM_DMIRROR_WRITE		HMM_DMIRROR_IOC(0x01)
#define HMM_DMIRROR_WRITE_ERRNOS		{ EPERM, EFAULT, EBUSY }

/*
 * HMM_DMIRROR_MIGRATE_TO_DEV: move the range into this device's memory;
 * the device maps the pages it now holds, and copies them into ptr
 * (npages pages). cpages = npages. The whole range is checked before
 * anything moves.
 * EINVAL: part of the range is not mapped, or is mapped without read
 * permission or by a mapping that cannot migrate (VM_IO, VM_PFNMAP,
 * VM_MIXEDMAP, hugetlbfs, DAX); nothing moved.
 * ENOMEM: the device ran out of memory; the pages that fit moved.
 * ENOENT: some page is not in this device's memory afterwards (shared or
 * file-backed memory, a page held by another device, a busy page; or a
 * page of ptr, which the CPU then needs back, when ptr overlaps the range).
 * EBUSY: the range kept changing for longer than a second while the
 * device looked at it after the move; the pages that moved stay moved.
 * Pages that did not move keep their data where it was.
 */
#define HMM_DMIRROR_MIGRATE_TO_DEV	HMM_DMIRROR_IOC(0x02)
#define HMM_DMIRROR_MIGRATE_TO_DEV_ERRNOS	{ EINVAL, ENOMEM, ENOENT, EBUSY }

/*
 * HMM_DMIRROR_MIGRATE_TO_SYS: move every page of the range that is in this
 * device's memory back to system memory. ptr is not used. cpages = pages
 * moved (pages already in system memory are not counted).
 * EINVAL: as for MIGRATE_TO_DEV. ENOMEM: no system memory for a page.
 * EBUSY: a page of this device could not be moved (it is in use); it stays
 * in device memory with its data.
 */
#define HMM_DMIRROR_MIGRATE_TO_SYS	HMM_DMIRROR_IOC(0x03)
#define HMM_DMIRROR_MIGRATE_TO_SYS_ERRNOS	{ EINVAL, ENOMEM, EBUSY }

/*
 * HMM_DMIRROR_SNAPSHOT: write to ptr one byte per page (npages bytes)
 * describing how the CPU maps it, without faulting anything in; see
 * HMM_DMIRROR_PROT_* below. cpages = npages. Holes and pages the device
 * may not access are reported, not failed. EBUSY: the range kept changing
 * under the device for longer than a second.
 */
#define HMM_DMIRROR_SNAPSHOT		HMM_DMIRROR_IOC(0x04)
#define HMM_DMIRROR_SNAPSHOT_ERRNOS		{ EBUSY }

/*
 * HMM_DMIRROR_EXCLUSIVE: give the device exclusive (atomic) access to the
 * range: the CPU's mappings are replaced by device-exclusive entries and
 * the next CPU access takes the page back. The data of the range is
 * copied into ptr (npages pages). cpages = npages.
 * EFAULT: part of the range is unmapped. EPERM: part of it is not
 * writable. EOPNOTSUPP: part of it is shared, file or hugetlbfs memory:
 * make_device_exclusive() takes private anonymous pages only (THPs too,
 * page by page). EINVAL: part of it is special memory (VM_IO, VM_PFNMAP).
 * EBUSY: some page kept changing for longer than a second.
 */
#define HMM_DMIRROR_EXCLUSIVE		HMM_DMIRROR_IOC(0x05)
#define HMM_DMIRROR_EXCLUSIVE_ERRNOS		{ EFAULT, EPERM, EOPNOTSUPP, EINVAL, EBUSY }

/*
 * HMM_DMIRROR_CHECK_EXCLUSIVE: succeed when the device holds exclusive
 * access to no page of the range any more; EPERM when it still holds it
 * for some page. ptr is not used; cpages = 0.
 */
#define HMM_DMIRROR_CHECK_EXCLUSIVE	HMM_DMIRROR_IOC(0x06)
#define HMM_DMIRROR_CHECK_EXCLUSIVE_ERRNOS	{ EPERM }

/*
 * HMM_DMIRROR_RELEASE: give back all of this device's memory: every page
 * in it, whoever placed it there, is moved to system memory, and the
 * device memory is unmapped (it is mapped again on the next migration).
 * The structure is read, but its fields are not used, and it is not
 * written back. A page that stays busy (pinned) is waited for; a fatal
 * signal ends the wait with EINTR, and its memory is given back later.
 */
#define HMM_DMIRROR_RELEASE		HMM_DMIRROR_IOC(0x07)

/*
 * HMM_DMIRROR_FLAGS: set the flags of this open file to npages, a mask of
 * HMM_DMIRROR_FLAG_*; the other fields are not used, nothing is written
 * back. EINVAL: an unknown flag.
 *
 * HMM_DMIRROR_FLAG_FAIL_ALLOC: the next allocation of a 2 MiB device page
 * fails, as if device memory were fragmented, and the flag clears: the
 * migration falls back to 4 KiB pages.
 */
#define HMM_DMIRROR_FLAGS		HMM_DMIRROR_IOC(0x08)
#define HMM_DMIRROR_FLAG_FAIL_ALLOC	(1ULL << 0)

/*
 * HMM_DMIRROR_MIGRATE_ON_FAULT_TO_DEV: a device fault on the range, as a
 * GPU driver handles one that also moves the memory into the device: one
 * walk of the CPU page table faults in what is not mapped readable,
 * mirrors the range and collects its system memory for migration
 * (hmm_range_fault() with HMM_PFN_REQ_MIGRATE); what was collected moves
 * into this device's memory, and the device maps every page of the range
 * where it is now, without a second walk. Then the device reads the range
 * into ptr (npages pages), as READ does. cpages = pages that moved;
 * faults = fault rounds of the read (0 unless the range changed between
 * the walk and the read). Empty addresses of anonymous memory are not
 * faulted in: they move as fresh zeroed device pages.
 * EINVAL, ENOMEM and EBUSY as for MIGRATE_TO_DEV; EFAULT: part of the range
 * could not be faulted in. Pages that cannot move (file pages, busy pages)
 * are mapped where they are.
 */
#define HMM_DMIRROR_MIGRATE_ON_FAULT_TO_DEV	HMM_DMIRROR_IOC(0x09)
#define HMM_DMIRROR_MIGRATE_ON_FAULT_TO_DEV_ERRNOS \
	{ EINVAL, ENOMEM, EBUSY, EFAULT }

/*
 * /dev/hmm_dma0..: lib/test_hmm_dma.c, a mirror that reaches the process's
 * pages by real DMA (QEMU's edu device, behind the guest's IOMMU when there
 * is one). It takes two commands of the table above, HMM_DMIRROR_READ and
 * HMM_DMIRROR_WRITE, with the same structure, checks and errors, except
 * that faults counts hmm_range_fault() calls; and two of its own:
 *
 * HMM_DMA_MAP: mirror the range (faulting it in for reading) and map it
 * for the device, moving no data: what a driver does to prefetch. ptr is
 * not used. cpages = npages. Errors as HMM_DMIRROR_READ's.
 *
 * HMM_DMA_STATS: copy the file's struct hmm_dma_stats to the argument.
 *
 * The device needs 400 ms of the guest's time per 4 KiB page it reads or
 * writes (QEMU's edu: 100 ms per transfer, 2 KiB a transfer each way).
 *
 * The file keeps the DMA mappings of the range of its last command (its
 * "region") from one command to the next, until the process changes the
 * pages (each invalidation unmaps what it covers) or a command on a range
 * outside the region replaces it.
 */

/**
 * struct hmm_dma_stats - what an open /dev/hmm_dma file has done, in total
 * @regions:   regions set up (DMA maps allocated)
 * @mapped:    entries mapped for the device (hmm_dma_map_pfn() on an entry
 *             that was not mapped)
 * @reused:    entries a command found mapped already
 * @unmapped:  entries unmapped, by invalidations or by a region's end
 * @huge:      entries the CPU mapped with a PMD (a THP) when the device
 *             used them
 * @transfers: DMA transfers the device made
 * @p2p:       of @mapped, PCI peer-to-peer pages reached through the host
 *             bridge (HMM_PFN_P2PDMA)
 * @p2p_bus:   of @mapped, PCI peer-to-peer pages reached by their bus
 *             address (HMM_PFN_P2PDMA_BUS)
 */
struct hmm_dma_stats {
	__u64		regions;
	__u64		mapped;
	__u64		reused;
	__u64		unmapped;
	__u64		huge;
	__u64		transfers;
	__u64		p2p;
	__u64		p2p_bus;
};

#define HMM_DMA_STATS			_IOR('H', 0x40, struct hmm_dma_stats)
#define HMM_DMA_MAP			HMM_DMIRROR_IOC(0x41)

#endif /* _LIB_TEST_HMM_UAPI_H */
