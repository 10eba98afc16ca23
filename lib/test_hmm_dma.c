// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * test_hmm_dma: a mirror that moves data by real DMA.
 *
 * lib/test_hmm.c's devices copy with memcpy(), so nothing there ever has to
 * produce an address a device can use. This driver does: it binds QEMU's
 * "edu" PCI device, a small DMA engine with a 4 KiB buffer and an interrupt
 * on completion, and exposes each one as /dev/hmm_dma<N>. A process that
 * opens the node gets a device that sees its address space through
 * hmm_range_fault() and reaches its pages through the DMA helpers of
 * <linux/hmm-dma.h>, behind whatever IOMMU translates for the PCI device.
 * A wrong address is then a fault the IOMMU reports, or wrong data, never a
 * silent pass.
 *
 * Why a module of its own and not a mode of test_hmm: test_hmm must load
 * and pass on every kernel the suites boot, with no PCI device at all; this
 * driver binds hardware that only the "dma" boot mode provides, and shares
 * none of test_hmm's device memory. What they share is the command format
 * (struct hmm_dmirror_cmd, and the numbers and errors of HMM_DMIRROR_READ
 * and HMM_DMIRROR_WRITE), so one test helper drives both.
 *
 * The mirror. Each open file watches its process's whole address space
 * with an mmu_interval_notifier and keeps one struct hmm_dma_map, for the
 * region of the last command: a command on another range unmaps and frees
 * it and starts a new one. Within the region, entries stay mapped from one
 * command to the next until an invalidation unmaps them (under ->lock, in
 * the notifier's callback); so a second read of the same pages reuses the
 * mappings, and a read after the process changed some pages maps the new
 * ones afresh. HMM_DMA_STATS reports how often each happened.
 *
 * The data path. edu copies between its own buffer (device address
 * EDU_BUF) and bus addresses, at most EDU_CHUNK bytes per transfer (QEMU
 * 7.2 stops the machine on a transfer that reaches the buffer's last byte).
 * A device read of a page is, per chunk, one transfer from the page into
 * edu and one from edu into a coherent bounce page; a device write is the
 * reverse. The driver waits for each transfer's interrupt.
 *
 * Locking: ->cmd_lock serialises the commands of a file (so only one
 * hmm_range_fault() writes its map at a time, and only commands change the
 * region); ->lock guards the map against the invalidate callback and is
 * held from the sequence check until the last transfer of a window. ->lock
 * is never held across a copy to or from user space, which can fault and
 * invalidate, nor across an allocation that can reclaim. edu->xfer_lock
 * serialises the device among files.
 */
#include <linux/delay.h>
#include <linux/dma-mapping.h>
#include <linux/hmm.h>
#include <linux/hmm-dma.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/mmu_notifier.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/pci-p2pdma.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>

#include "test_hmm_uapi.h"

#define EDU_VENDOR		0x1234
#define EDU_DEVICE		0x11e8

/* edu's registers, in BAR 0 */
#define EDU_REG_ID		0x00	/* 0xRRrr00ed: major, minor, 0xed */
#define EDU_REG_IRQ_STATUS	0x24
#define EDU_REG_IRQ_ACK		0x64
#define EDU_REG_DMA_SRC		0x80
#define EDU_REG_DMA_DST		0x88
#define EDU_REG_DMA_COUNT	0x90
#define EDU_REG_DMA_CMD		0x98

#define EDU_ID_MAGIC		0xed
#define EDU_DMA_RUN		BIT(0)
#define EDU_DMA_TO_RAM		BIT(1)	/* edu's buffer -> bus address */
#define EDU_DMA_IRQ		BIT(2)	/* interrupt when done */
#define EDU_IRQ_DMA		BIT(8)	/* the status bit of a finished DMA */

#define EDU_BUF			0x40000	/* the buffer, in edu's own addresses */
#define EDU_CHUNK		2048	/* bytes per transfer, see above */

/* Device time per transfer is 100 ms of the guest's clock; allow plenty. */
#define EDU_XFER_TIMEOUT_MS	10000

/*
 * Pages a command handles per window: its kernel buffer and one pass. The
 * invalidate callback waits for a window's transfers (400 ms of guest time
 * per page), so windows are short.
 */
#define HMM_DMA_WINDOW		16

/* One edu device. */
struct hmm_edu {
	struct pci_dev *pdev;
	void __iomem *regs;
	struct miscdevice misc;
	char name[24];
	int nr;				/* N of /dev/hmm_dma<N> */
	struct mutex xfer_lock;		/* one transfer at a time */
	struct completion done;		/* the interrupt of the transfer */
	void *bounce;			/* a coherent page for the far side */
	dma_addr_t bounce_dma;
	bool broken;			/* a transfer timed out */
};

/* One open file: a process's address space, mirrored. */
struct hmm_dma_file {
	struct hmm_edu *edu;
	struct mmu_interval_notifier notifier;
	struct mutex cmd_lock;		/* one command at a time */
	struct mutex lock;		/* the map, against invalidation */
	struct hmm_dma_map map;		/* of [start, end); none if !end */
	unsigned long start;
	unsigned long end;
	struct hmm_dma_stats stats;
	void *kbuf;			/* HMM_DMA_WINDOW pages */
};

static DEFINE_IDA(hmm_edu_ida);

/* ---- The DMA engine ---- */

static irqreturn_t hmm_edu_irq(int irq, void *data)
{
	struct hmm_edu *edu = data;
	u32 status = readl(edu->regs + EDU_REG_IRQ_STATUS);

	if (!(status & EDU_IRQ_DMA))
		return IRQ_NONE;
	writel(status, edu->regs + EDU_REG_IRQ_ACK);
	complete(&edu->done);
	return IRQ_HANDLED;
}

/*
 * Copy @len bytes between edu's buffer and bus address @bus: into the
 * buffer if !@to_ram, out of it otherwise. Waits for the interrupt.
 */
static int hmm_edu_transfer(struct hmm_edu *edu, dma_addr_t bus, u32 len,
			    bool to_ram)
{
	lockdep_assert_held(&edu->xfer_lock);
	if (edu->broken)
		return -EIO;
	reinit_completion(&edu->done);
	writeq(to_ram ? EDU_BUF : bus, edu->regs + EDU_REG_DMA_SRC);
	writeq(to_ram ? bus : EDU_BUF, edu->regs + EDU_REG_DMA_DST);
	writeq(len, edu->regs + EDU_REG_DMA_COUNT);
	writeq(EDU_DMA_RUN | EDU_DMA_IRQ | (to_ram ? EDU_DMA_TO_RAM : 0),
	       edu->regs + EDU_REG_DMA_CMD);
	if (!wait_for_completion_timeout(&edu->done,
					 msecs_to_jiffies(EDU_XFER_TIMEOUT_MS))) {
		/* It may still write later: never use the device again. */
		edu->broken = true;
		dev_err(&edu->pdev->dev, "DMA transfer timed out\n");
		return -EIO;
	}
	return 0;
}

/*
 * Move one page between bus addresses: @from into edu, edu into @to, chunk
 * by chunk. Returns the transfers made in *@xfers.
 */
static int hmm_edu_copy_page(struct hmm_edu *edu, dma_addr_t from,
			     dma_addr_t to, u64 *xfers)
{
	unsigned int off;
	int ret;

	for (off = 0; off < PAGE_SIZE; off += EDU_CHUNK) {
		ret = hmm_edu_transfer(edu, from + off, EDU_CHUNK, false);
		if (!ret)
			ret = hmm_edu_transfer(edu, to + off, EDU_CHUNK, true);
		if (ret)
			return ret;
		*xfers += 2;
	}
	return 0;
}

/* ---- The map of the region ---- */

/* Unmap the region's entries over [start, end). */
static void hmm_dma_unmap_span(struct hmm_dma_file *f, unsigned long start,
			       unsigned long end)
{
	struct device *dev = &f->edu->pdev->dev;
	unsigned long idx, last;

	lockdep_assert_held(&f->lock);
	start = max(start, f->start);
	end = min(end, f->end);
	if (start >= end)
		return;
	last = (end - 1 - f->start) >> PAGE_SHIFT;
	for (idx = (start - f->start) >> PAGE_SHIFT; idx <= last; idx++)
		if (hmm_dma_unmap_pfn(dev, &f->map, idx))
			f->stats.unmapped++;
}

/* Drop the region, its mappings first. */
static void hmm_dma_drop_region(struct hmm_dma_file *f)
{
	lockdep_assert_held(&f->lock);
	if (!f->end)
		return;
	hmm_dma_unmap_span(f, f->start, f->end);
	hmm_dma_map_free(&f->edu->pdev->dev, &f->map);
	f->start = 0;
	f->end = 0;
}

/*
 * Make [start, end) the region, unless it lies inside it already. The new
 * map is allocated before ->lock is taken: an allocation may reclaim, and
 * reclaim may invalidate this very mm, whose callback takes ->lock.
 */
static int hmm_dma_set_region(struct hmm_dma_file *f, unsigned long start,
			      unsigned long end)
{
	struct hmm_dma_map map;
	int ret;

	lockdep_assert_held(&f->cmd_lock);	/* the region stays ours */
	if (f->end && start >= f->start && end <= f->end)
		return 0;
	ret = hmm_dma_map_alloc(&f->edu->pdev->dev, &map,
				(end - start) >> PAGE_SHIFT, PAGE_SIZE);
	if (ret)
		return ret;
	mutex_lock(&f->lock);
	hmm_dma_drop_region(f);
	f->map = map;
	f->start = start;
	f->end = end;
	f->stats.regions++;
	mutex_unlock(&f->lock);
	return 0;
}

static bool hmm_dma_invalidate(struct mmu_interval_notifier *mni,
			       const struct mmu_notifier_range *range,
			       unsigned long cur_seq)
{
	struct hmm_dma_file *f = container_of(mni, struct hmm_dma_file,
					      notifier);

	if (mmu_notifier_range_blockable(range))
		mutex_lock(&f->lock);
	else if (!mutex_trylock(&f->lock))
		return false;
	mmu_interval_set_seq(mni, cur_seq);
	/* The device must not reach these pages once we return. */
	hmm_dma_unmap_span(f, range->start, range->end);
	mutex_unlock(&f->lock);
	return true;
}

static const struct mmu_interval_notifier_ops hmm_dma_notifier_ops = {
	.invalidate = hmm_dma_invalidate,
};

/* ---- Commands ---- */

/*
 * Count one entry the device now has mapped: @before is its word before
 * hmm_dma_map_pfn(), @after the word the helper left.
 */
static void hmm_dma_count(struct hmm_dma_stats *stats, unsigned long before,
			  unsigned long after)
{
	if (before & HMM_PFN_DMA_MAPPED) {
		stats->reused++;
		return;
	}
	stats->mapped++;
	if (after & HMM_PFN_P2PDMA)
		stats->p2p++;
	if (after & HMM_PFN_P2PDMA_BUS)
		stats->p2p_bus++;
}

/* What a command does with each page of its range. */
enum hmm_dma_op {
	HMM_DMA_OP_READ,	/* the device reads it (into f->kbuf) */
	HMM_DMA_OP_WRITE,	/* the device writes it (from f->kbuf) */
	HMM_DMA_OP_MAP,		/* the device maps it, and moves no data */
};

/*
 * The locked half of a window: map each page and move its data between it
 * and f->kbuf through the device, as @op says.
 */
static int hmm_dma_window_locked(struct hmm_dma_file *f, unsigned long start,
				 unsigned long npages, enum hmm_dma_op op)
{
	struct pci_p2pdma_map_state p2p = {};
	struct hmm_edu *edu = f->edu;
	struct device *dev = &edu->pdev->dev;
	unsigned long first = (start - f->start) >> PAGE_SHIFT, i;
	int ret = 0;

	lockdep_assert_held(&f->lock);
	mutex_lock(&edu->xfer_lock);
	for (i = 0; i < npages && !ret; i++) {
		unsigned long word = f->map.pfn_list[first + i];
		void *data = f->kbuf + i * PAGE_SIZE;
		dma_addr_t addr;

		if (fatal_signal_pending(current)) {
			ret = -EINTR;
			break;
		}

		if (hmm_pfn_to_map_order(word) >= PMD_SHIFT - PAGE_SHIFT)
			f->stats.huge++;
		addr = hmm_dma_map_pfn(dev, &f->map, first + i, &p2p);
		if (addr == DMA_MAPPING_ERROR) {
			ret = -EFAULT;
			break;
		}
		hmm_dma_count(&f->stats, word, f->map.pfn_list[first + i]);
		if (op == HMM_DMA_OP_MAP)
			continue;
		if (op == HMM_DMA_OP_WRITE) {
			memcpy(edu->bounce, data, PAGE_SIZE);
			ret = hmm_edu_copy_page(edu, edu->bounce_dma, addr,
						&f->stats.transfers);
		} else {
			ret = hmm_edu_copy_page(edu, addr, edu->bounce_dma,
						&f->stats.transfers);
			memcpy(data, edu->bounce, PAGE_SIZE);
		}
	}
	mutex_unlock(&edu->xfer_lock);
	return ret;
}

/*
 * One window of a command: mirror [start, start + npages pages) into the
 * region's map (faulting for write if @op writes), then move the data under
 * ->lock, retrying while the range changes, for at most
 * HMM_RANGE_DEFAULT_TIMEOUT.
 */
static int hmm_dma_window(struct hmm_dma_file *f, unsigned long start,
			  unsigned long npages, enum hmm_dma_op op, u64 *faults)
{
	bool write = op == HMM_DMA_OP_WRITE;
	struct mm_struct *mm = f->notifier.mm;
	struct hmm_range range = {
		.notifier = &f->notifier,
		.start = start,
		.end = start + (npages << PAGE_SHIFT),
		.hmm_pfns = &f->map.pfn_list[(start - f->start) >> PAGE_SHIFT],
		.default_flags = HMM_PFN_REQ_FAULT |
				 (write ? HMM_PFN_REQ_WRITE : 0),
	};
	unsigned long timeout = jiffies +
				msecs_to_jiffies(HMM_RANGE_DEFAULT_TIMEOUT);
	int ret;

	for (;;) {
		if (time_after(jiffies, timeout))
			return -EBUSY;
		if (fatal_signal_pending(current))
			return -EINTR;
		range.notifier_seq = mmu_interval_read_begin(range.notifier);
		mmap_read_lock(mm);
		ret = hmm_range_fault(&range);
		mmap_read_unlock(mm);
		(*faults)++;
		if (ret == -EBUSY)
			continue;
		if (ret)
			return ret;
		mutex_lock(&f->lock);
		if (mmu_interval_read_retry(range.notifier,
					    range.notifier_seq)) {
			mutex_unlock(&f->lock);
			continue;
		}
		ret = hmm_dma_window_locked(f, start, npages, op);
		mutex_unlock(&f->lock);
		return ret;
	}
}

/* HMM_DMIRROR_READ, HMM_DMIRROR_WRITE and HMM_DMA_MAP, window by window. */
static int hmm_dma_cmd_rw(struct hmm_dma_file *f, struct hmm_dmirror_cmd *cmd,
			  enum hmm_dma_op op)
{
	bool write = op == HMM_DMA_OP_WRITE, read = op == HMM_DMA_OP_READ;
	unsigned long start = cmd->addr;
	unsigned long end = start + (cmd->npages << PAGE_SHIFT);
	void __user *uptr = u64_to_user_ptr(cmd->ptr);
	int ret;

	ret = hmm_dma_set_region(f, start, end);
	if (ret)
		return ret;
	while (start < end) {
		unsigned long n = min((end - start) >> PAGE_SHIFT,
				      (unsigned long)HMM_DMA_WINDOW);
		size_t len = n << PAGE_SHIFT;

		if (write && copy_from_user(f->kbuf, uptr, len))
			return -EFAULT;
		ret = hmm_dma_window(f, start, n, op, &cmd->faults);
		if (ret)
			return ret;
		if (read && copy_to_user(uptr, f->kbuf, len))
			return -EFAULT;
		cmd->cpages += n;
		start += len;
		uptr += len;
	}
	return 0;
}

static int hmm_dma_check_cmd(const struct hmm_dmirror_cmd *cmd,
			     const struct mm_struct *mm, bool uses_ptr)
{
	u64 limit = mm->task_size;

	if (!PAGE_ALIGNED(cmd->addr) || !cmd->npages)
		return -EINVAL;
	if (cmd->addr >= limit ||
	    cmd->npages > (limit - cmd->addr) >> PAGE_SHIFT)
		return -EINVAL;
	if (uses_ptr &&
	    !access_ok(u64_to_user_ptr(cmd->ptr), cmd->npages << PAGE_SHIFT))
		return -EFAULT;
	return 0;
}

static long hmm_dma_ioctl(struct file *file, unsigned int request,
			  unsigned long arg)
{
	struct hmm_dma_file *f = file->private_data;
	struct mm_struct *mm = f->notifier.mm;
	void __user *uarg = (void __user *)arg;
	struct hmm_dmirror_cmd cmd;
	enum hmm_dma_op op;
	int ret;

	if (request == HMM_DMA_STATS) {
		struct hmm_dma_stats stats;

		mutex_lock(&f->cmd_lock);
		mutex_lock(&f->lock);
		stats = f->stats;
		mutex_unlock(&f->lock);
		mutex_unlock(&f->cmd_lock);
		return copy_to_user(uarg, &stats, sizeof(stats)) ? -EFAULT : 0;
	}
	switch (request) {
	case HMM_DMIRROR_READ:
		op = HMM_DMA_OP_READ;
		break;
	case HMM_DMIRROR_WRITE:
		op = HMM_DMA_OP_WRITE;
		break;
	case HMM_DMA_MAP:
		op = HMM_DMA_OP_MAP;
		break;
	default:
		return -ENOTTY;
	}
	if (copy_from_user(&cmd, uarg, sizeof(cmd)))
		return -EFAULT;
	ret = hmm_dma_check_cmd(&cmd, mm, op != HMM_DMA_OP_MAP);
	if (ret)
		return ret;
	if (!mmget_not_zero(mm))
		return -ESRCH;
	cmd.cpages = 0;
	cmd.faults = 0;
	if (mutex_lock_killable(&f->cmd_lock)) {
		ret = -EINTR;
	} else {
		ret = hmm_dma_cmd_rw(f, &cmd, op);
		mutex_unlock(&f->cmd_lock);
	}
	mmput(mm);
	if (ret)
		return ret;
	return copy_to_user(uarg, &cmd, sizeof(cmd)) ? -EFAULT : 0;
}

static int hmm_dma_open(struct inode *inode, struct file *file)
{
	struct hmm_edu *edu = container_of(file->private_data, struct hmm_edu,
					   misc);
	struct mm_struct *mm = current->mm;
	struct hmm_dma_file *f;
	int ret;

	if (!mm)
		return -EINVAL;
	f = kzalloc(sizeof(*f), GFP_KERNEL);
	if (!f)
		return -ENOMEM;
	f->kbuf = vmalloc(HMM_DMA_WINDOW * PAGE_SIZE);
	if (!f->kbuf) {
		kfree(f);
		return -ENOMEM;
	}
	f->edu = edu;
	mutex_init(&f->cmd_lock);
	mutex_init(&f->lock);
	ret = mmu_interval_notifier_insert(&f->notifier, mm, 0, mm->task_size,
					   &hmm_dma_notifier_ops);
	if (ret) {
		vfree(f->kbuf);
		kfree(f);
		return ret;
	}
	file->private_data = f;
	return 0;
}

static int hmm_dma_release(struct inode *inode, struct file *file)
{
	struct hmm_dma_file *f = file->private_data;

	mmu_interval_notifier_remove(&f->notifier);
	mutex_lock(&f->lock);
	hmm_dma_drop_region(f);
	mutex_unlock(&f->lock);
	vfree(f->kbuf);
	kfree(f);
	return 0;
}

static const struct file_operations hmm_dma_fops = {
	.owner = THIS_MODULE,
	.open = hmm_dma_open,
	.release = hmm_dma_release,
	.unlocked_ioctl = hmm_dma_ioctl,
	.llseek = noop_llseek,
};

/* ---- The PCI driver ---- */

static int hmm_edu_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct device *dev = &pdev->dev;
	struct hmm_edu *edu;
	int ret, nr;

	edu = devm_kzalloc(dev, sizeof(*edu), GFP_KERNEL);
	if (!edu)
		return -ENOMEM;
	edu->pdev = pdev;
	mutex_init(&edu->xfer_lock);
	init_completion(&edu->done);

	ret = pcim_enable_device(pdev);
	if (ret)
		return ret;
	ret = pcim_iomap_regions(pdev, BIT(0), KBUILD_MODNAME);
	if (ret)
		return ret;
	edu->regs = pcim_iomap_table(pdev)[0];
	if ((readl(edu->regs + EDU_REG_ID) & 0xff) != EDU_ID_MAGIC)
		return dev_err_probe(dev, -ENODEV, "not an edu device\n");
	pci_set_master(pdev);
	/* QEMU must be told: -device edu,dma_mask=0xffffffffffffffff */
	ret = dma_set_mask_and_coherent(dev, DMA_BIT_MASK(64));
	if (ret)
		return dev_err_probe(dev, ret, "no 64-bit DMA\n");
	edu->bounce = dmam_alloc_coherent(dev, PAGE_SIZE, &edu->bounce_dma,
					  GFP_KERNEL);
	if (!edu->bounce)
		return -ENOMEM;

	/*
	 * The vectors of a device enabled by pcim_enable_device() and the
	 * IRQ are device-managed: they go, IRQ first, when the device does.
	 */
	ret = pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_MSI | PCI_IRQ_INTX);
	if (ret < 0)
		return dev_err_probe(dev, ret, "no interrupt\n");
	ret = devm_request_irq(dev, pci_irq_vector(pdev, 0), hmm_edu_irq,
			       IRQF_SHARED, KBUILD_MODNAME, edu);
	if (ret)
		return ret;

	nr = ida_alloc(&hmm_edu_ida, GFP_KERNEL);
	if (nr < 0)
		return nr;
	edu->nr = nr;
	snprintf(edu->name, sizeof(edu->name), "hmm_dma%d", nr);
	edu->misc.minor = MISC_DYNAMIC_MINOR;
	edu->misc.name = edu->name;
	edu->misc.fops = &hmm_dma_fops;
	edu->misc.parent = dev;
	ret = misc_register(&edu->misc);
	if (ret) {
		ida_free(&hmm_edu_ida, nr);
		return ret;
	}
	pci_set_drvdata(pdev, edu);
	dev_info(dev, "/dev/%s: DMA through %s\n", edu->name,
		 device_iommu_mapped(dev) ? "an IOMMU" : "no IOMMU");
	return 0;
}

static void hmm_edu_remove(struct pci_dev *pdev)
{
	struct hmm_edu *edu = pci_get_drvdata(pdev);

	misc_deregister(&edu->misc);
	ida_free(&hmm_edu_ida, edu->nr);
}

static const struct pci_device_id hmm_edu_ids[] = {
	{ PCI_DEVICE(EDU_VENDOR, EDU_DEVICE) },
	{}
};
MODULE_DEVICE_TABLE(pci, hmm_edu_ids);

/*
 * An open file uses its device's struct hmm_edu, which goes with the
 * device's managed resources. Unloading the module waits for every file
 * (the fops' owner); unbinding through sysfs would not, so it is not
 * offered.
 */
static struct pci_driver hmm_edu_driver = {
	.name = "test_hmm_dma",
	.id_table = hmm_edu_ids,
	.probe = hmm_edu_probe,
	.remove = hmm_edu_remove,
	.driver.suppress_bind_attrs = true,
};
module_pci_driver(hmm_edu_driver);

MODULE_DESCRIPTION("HMM mirror with real DMA, on QEMU's edu device");
MODULE_LICENSE("GPL");
