// SPDX-License-Identifier: GPL-2.0
/*
 * Tests of HMM's DMA helpers (include/linux/hmm-dma.h) on a real DMA engine:
 * /dev/hmm_dma0 of lib/test_hmm_dma.c, which drives QEMU's edu PCI device.
 * A device read mirrors the range with hmm_range_fault(), maps each page
 * with hmm_dma_map_pfn() and has the device copy it by DMA; a device write
 * copies the other way. The guest boots with QEMU's Intel IOMMU in strict
 * mode (boot mode "dma"), so a wrong or stale DMA address is refused by the
 * IOMMU: the data comes back wrong, and the fault report in the console
 * fails the test that was running (harness/results.py).
 *
 * Each test checks the bytes against the CPU's view, and the driver's
 * counts (HMM_DMA_STATS) against what the test did: how many entries were
 * mapped, found mapped, and unmapped by invalidations.
 */
#include "../kselftest_harness.h"
#include "hmm-common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lib/test_hmm_uapi.h>

#define NPAGES		16UL
#define THP_SIZE	(2UL << 20)
/* Transfers per 4 KiB page: edu moves 2 KiB a time, in and out. */
#define XFERS_PER_PAGE	4

FIXTURE(dma)
{
	int fd;
	long page;
	struct hmm_dma_stats base;	/* the counts before the test acts */
};

static int dma_stats(int fd, struct hmm_dma_stats *s)
{
	return ioctl(fd, HMM_DMA_STATS, s) ? errno : 0;
}

FIXTURE_SETUP(dma)
{
	self->page = sysconf(_SC_PAGESIZE);
	self->fd = open("/dev/hmm_dma0", O_RDWR | O_CLOEXEC);
	ASSERT_GE(self->fd, 0) TH_LOG("no /dev/hmm_dma0: %s", strerror(errno));
	ASSERT_EQ(dma_stats(self->fd, &self->base), 0);
}

FIXTURE_TEARDOWN(dma)
{
	close(self->fd);
}

/* What the counts moved by since the test began. */
static struct hmm_dma_stats dma_delta(int fd, const struct hmm_dma_stats *base)
{
	struct hmm_dma_stats now = {};

	if (dma_stats(fd, &now))
		memset(&now, 0xff, sizeof(now));
	now.regions -= base->regions;
	now.mapped -= base->mapped;
	now.reused -= base->reused;
	now.unmapped -= base->unmapped;
	now.huge -= base->huge;
	now.transfers -= base->transfers;
	now.p2p -= base->p2p;
	now.p2p_bus -= base->p2p_bus;
	return now;
}

static void *map_anon(unsigned long bytes, int advice)
{
	void *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (mem == MAP_FAILED)
		return NULL;
	if (advice >= 0 && madvise(mem, bytes, advice)) {
		munmap(mem, bytes);
		return NULL;
	}
	return mem;
}

/* A 2 MiB-aligned THP, painted with @seed and mapped by its PMD. */
static char *map_thp(unsigned int seed)
{
	char *area = map_anon(2 * THP_SIZE, -1);
	char *thp;

	if (!area)
		return NULL;
	thp = (char *)(((uintptr_t)area + THP_SIZE - 1) & ~(THP_SIZE - 1));
	if (madvise(thp, THP_SIZE, MADV_HUGEPAGE))
		return NULL;
	hmm_paint(thp, THP_SIZE, seed);
	return thp;
}

/*
 * The device reads pages it never saw, over more than one of the driver's
 * windows: each is mapped once, then copied.
 */
TEST_F_TIMEOUT(dma, read_anon, 60)
{
	unsigned long npages = NPAGES + NPAGES / 2, bytes = npages * self->page;
	char *mem = map_anon(bytes, MADV_NOHUGEPAGE);
	char *buf = malloc(bytes);
	struct hmm_dma_stats d;

	ASSERT_NE(mem, NULL);
	ASSERT_NE(buf, NULL);
	hmm_paint(mem, bytes, 1);
	memset(buf, 0, bytes);

	ASSERT_EQ(hmm_dmirror(self->fd, HMM_DMIRROR_READ, mem, buf, npages), 0);
	ASSERT_EQ(hmm_unpainted(buf, bytes, 1), -1);
	d = dma_delta(self->fd, &self->base);
	EXPECT_EQ(d.regions, 1);
	EXPECT_EQ(d.mapped, npages);
	EXPECT_EQ(d.reused, 0);
	EXPECT_EQ(d.unmapped, 0);
	EXPECT_EQ(d.huge, 0);
	EXPECT_EQ(d.transfers, npages * XFERS_PER_PAGE);
	free(buf);
	munmap(mem, bytes);
}

/* The device writes: the CPU reads what it wrote, nothing else changes. */
TEST_F(dma, write_anon)
{
	unsigned long bytes = NPAGES * self->page;
	char *mem = map_anon(bytes + 2 * self->page, MADV_NOHUGEPAGE);
	char *buf = malloc(bytes);

	ASSERT_NE(mem, NULL);
	ASSERT_NE(buf, NULL);
	hmm_paint(mem, bytes + 2 * self->page, 2);
	hmm_paint(buf, bytes, 3);

	ASSERT_EQ(hmm_dmirror(self->fd, HMM_DMIRROR_WRITE, mem + self->page,
			      buf, NPAGES), 0);
	ASSERT_EQ(hmm_unpainted(mem + self->page, bytes, 3), -1);
	/* The pages around the range keep their words. */
	ASSERT_EQ(hmm_unpainted(mem, self->page, 2), -1);
	ASSERT_EQ(((uint32_t *)(mem + self->page + bytes))[0],
		  hmm_word_of(2, (self->page + bytes) / 4));
	EXPECT_EQ(dma_delta(self->fd, &self->base).mapped, NPAGES);
	free(buf);
	munmap(mem, bytes + 2 * self->page);
}

/*
 * Pages the process never touched: a read faults in the zero page and the
 * device reads zeros; a write faults in private pages.
 */
TEST_F(dma, untouched_pages)
{
	unsigned long bytes = NPAGES * self->page;
	char *mem = map_anon(bytes, MADV_NOHUGEPAGE);
	char *buf = malloc(bytes);
	unsigned long i;

	ASSERT_NE(mem, NULL);
	ASSERT_NE(buf, NULL);
	memset(buf, 0xa5, bytes);
	ASSERT_EQ(hmm_dmirror(self->fd, HMM_DMIRROR_READ, mem, buf, NPAGES), 0);
	for (i = 0; i < bytes; i++)
		ASSERT_EQ(buf[i], 0) TH_LOG("byte %lu", i);

	hmm_paint(buf, bytes, 4);
	ASSERT_EQ(hmm_dmirror(self->fd, HMM_DMIRROR_WRITE, mem, buf, NPAGES),
		  0);
	ASSERT_EQ(hmm_unpainted(mem, bytes, 4), -1);
	free(buf);
	munmap(mem, bytes);
}

/*
 * Mappings outlive a command and die with the page: a second read reuses
 * every mapping; after the process drops one page and writes a new one
 * there, the invalidation has unmapped that entry, and the next read maps
 * the new page and reads its data, not the old page's.
 */
TEST_F(dma, invalidation_remaps)
{
	unsigned long bytes = NPAGES * self->page, victim = 5;
	char *mem = map_anon(bytes, MADV_NOHUGEPAGE);
	char *page = mem + victim * self->page;
	char *buf = malloc(bytes);
	struct hmm_dma_stats d;

	ASSERT_NE(mem, NULL);
	ASSERT_NE(buf, NULL);
	hmm_paint(mem, bytes, 5);
	ASSERT_EQ(hmm_dmirror(self->fd, HMM_DMIRROR_READ, mem, buf, NPAGES), 0);
	ASSERT_EQ(hmm_dmirror(self->fd, HMM_DMIRROR_READ, mem, buf, NPAGES), 0);
	d = dma_delta(self->fd, &self->base);
	EXPECT_EQ(d.mapped, NPAGES);
	EXPECT_EQ(d.reused, NPAGES);
	EXPECT_EQ(d.unmapped, 0);

	ASSERT_EQ(madvise(page, self->page, MADV_DONTNEED), 0);
	d = dma_delta(self->fd, &self->base);
	EXPECT_EQ(d.unmapped, 1);
	hmm_paint(page, self->page, 6);

	ASSERT_EQ(hmm_dmirror(self->fd, HMM_DMIRROR_READ, mem, buf, NPAGES), 0);
	ASSERT_EQ(hmm_unpainted(buf, victim * self->page, 5), -1);
	ASSERT_EQ(hmm_unpainted(buf + victim * self->page, self->page, 6), -1);
	d = dma_delta(self->fd, &self->base);
	EXPECT_EQ(d.mapped, NPAGES + 1);
	EXPECT_EQ(d.reused, 2 * NPAGES - 1);
	free(buf);
	munmap(mem, bytes);
}

/*
 * Copy-on-write after fork: the parent's write gives it a new page, and the
 * device must follow to it; the child keeps the old one.
 */
TEST_F(dma, cow_after_fork_remaps)
{
	unsigned long bytes = NPAGES * self->page;
	char *mem = map_anon(bytes, MADV_NOHUGEPAGE);
	char *buf = malloc(bytes);
	int pipefd[2], status;
	pid_t child;
	char c;

	ASSERT_NE(mem, NULL);
	ASSERT_NE(buf, NULL);
	hmm_paint(mem, bytes, 7);
	ASSERT_EQ(hmm_dmirror(self->fd, HMM_DMIRROR_READ, mem, buf, NPAGES), 0);
	ASSERT_EQ(pipe(pipefd), 0);
	child = fork();
	ASSERT_GE(child, 0);
	if (!child) {
		/* Hold the old pages until the parent is done, then check. */
		close(pipefd[1]);
		if (read(pipefd[0], &c, 1) != 1)
			_exit(2);
		_exit(hmm_unpainted(mem, bytes, 7) == -1 ? 0 : 1);
	}
	close(pipefd[0]);

	hmm_paint(mem, bytes, 8);
	EXPECT_EQ(dma_delta(self->fd, &self->base).unmapped, NPAGES);
	ASSERT_EQ(hmm_dmirror(self->fd, HMM_DMIRROR_READ, mem, buf, NPAGES), 0);
	EXPECT_EQ(hmm_unpainted(buf, bytes, 8), -1);
	EXPECT_EQ(dma_delta(self->fd, &self->base).mapped, 2 * NPAGES);

	ASSERT_EQ(write(pipefd[1], "x", 1), 1);
	close(pipefd[1]);
	ASSERT_EQ(waitpid(child, &status, 0), child);
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	free(buf);
	munmap(mem, bytes);
}

/*
 * The device reads and writes @npages at page @first of a mapped region
 * at @base: the CPU's words @seed must come back, and words @seed + 1
 * must land.
 */
static int sample_rw(int fd, char *base, unsigned long first,
		     unsigned long npages, long page, unsigned int seed)
{
	char *at = base + first * page, *buf = malloc(npages * page);
	int ret = -1;

	if (!buf)
		return -1;
	if (hmm_dmirror(fd, HMM_DMIRROR_READ, at, buf, npages) ||
	    memcmp(buf, at, npages * page))
		goto out;
	hmm_paint(buf, npages * page, seed + 1);
	if (hmm_dmirror(fd, HMM_DMIRROR_WRITE, at, buf, npages) ||
	    hmm_unpainted(at, npages * page, seed + 1) != -1)
		goto out;
	ret = 0;
out:
	free(buf);
	return ret;
}

/*
 * A THP: the device maps all of it (every entry inside the PMD mapping)
 * and moves data at its start, middle and end (moving all 2 MiB would take
 * the device minutes of guest time). After a 4 KiB page in its middle is
 * dropped, the PMD is split and every mapping of it undone; the device maps
 * the new layout, and reads the hole as zeros.
 */
TEST_F(dma, thp_map_read_write)
{
	unsigned long npages = THP_SIZE / self->page, hole = 100, i;
	unsigned long samples[] = { 0, 255, npages - 4 };
	char *thp = map_thp(9);
	struct hmm_dma_stats d;
	char *buf;

	ASSERT_NE(thp, NULL);
	ASSERT_EQ(hmm_dmirror(self->fd, HMM_DMA_MAP, thp, NULL, npages), 0);
	d = dma_delta(self->fd, &self->base);
	ASSERT_EQ(d.huge, npages) TH_LOG("the range is not one THP");
	EXPECT_EQ(d.mapped, npages);
	EXPECT_EQ(d.transfers, 0);
	for (i = 0; i < ARRAY_SIZE(samples); i++) {
		unsigned long at = samples[i];

		ASSERT_EQ(sample_rw(self->fd, thp, at, 4, self->page, 9), 0)
			TH_LOG("pages %lu+4", at);
	}
	d = dma_delta(self->fd, &self->base);
	EXPECT_EQ(d.mapped, npages);
	EXPECT_EQ(d.transfers, 3 * 2 * 4 * XFERS_PER_PAGE);

	ASSERT_EQ(madvise(thp + hole * self->page, self->page, MADV_DONTNEED),
		  0);
	EXPECT_EQ(dma_delta(self->fd, &self->base).unmapped, npages);
	ASSERT_EQ(hmm_dmirror(self->fd, HMM_DMA_MAP, thp, NULL, npages), 0);
	d = dma_delta(self->fd, &self->base);
	EXPECT_EQ(d.mapped, 2 * npages);
	buf = malloc(3 * self->page);
	ASSERT_NE(buf, NULL);
	memset(buf, 0x5a, 3 * self->page);
	ASSERT_EQ(hmm_dmirror(self->fd, HMM_DMIRROR_READ,
			      thp + (hole - 1) * self->page, buf, 3), 0);
	ASSERT_EQ(memcmp(buf, thp + (hole - 1) * self->page, self->page), 0);
	for (i = 0; i < self->page; i++)
		ASSERT_EQ(buf[self->page + i], 0) TH_LOG("byte %lu", i);
	ASSERT_EQ(memcmp(buf + 2 * self->page, thp + (hole + 1) * self->page,
			 self->page), 0);
	free(buf);
	munmap(thp, THP_SIZE);
}

/* Whether an IOMMU translates DMA in this machine. */
static bool iommu_present(void)
{
	DIR *d = opendir("/sys/class/iommu");
	struct dirent *de;
	bool found = false;

	if (!d)
		return false;
	while (!found && (de = readdir(d)))
		found = de->d_name[0] != '.';
	closedir(d);
	return found;
}

/*
 * Read and write @npages of the p2pmem of @dir through the device: 0 with
 * the data checked both ways, -EFAULT if the device cannot reach that
 * memory (the PCI core gives no route between the two), -1 otherwise.
 */
static int p2pmem_rw(int fd, const char *dir, unsigned long npages,
		     long page)
{
	unsigned long bytes = npages * page;
	char path[300], *buf = malloc(bytes);
	void *cmb = MAP_FAILED;
	int ret = -1, mfd;

	snprintf(path, sizeof(path), "%s/allocate", dir);
	mfd = open(path, O_RDWR);
	if (buf && mfd >= 0)
		cmb = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED,
			   mfd, 0);
	if (mfd >= 0)
		close(mfd);
	if (cmb == MAP_FAILED)
		goto out;
	hmm_paint(cmb, bytes, 14);
	ret = hmm_dmirror(fd, HMM_DMIRROR_READ, cmb, buf, npages);
	if (ret) {
		ret = ret == EFAULT ? -EFAULT : -1;
		goto out;
	}
	ret = -1;
	if (hmm_unpainted(buf, bytes, 14) != -1)
		goto out;
	hmm_paint(buf, bytes, 15);
	if (hmm_dmirror(fd, HMM_DMIRROR_WRITE, cmb, buf, npages) ||
	    hmm_unpainted(cmb, bytes, 15) != -1)
		goto out;
	ret = 0;
out:
	if (cmb != MAP_FAILED)
		munmap(cmb, bytes);
	free(buf);
	return ret;
}

/*
 * PCI peer-to-peer memory (NVMe controller memory buffers): the device
 * reads and writes it by DMA like RAM, wherever the PCI core gives a
 * route, and is refused (EFAULT, nothing mapped) where it gives none.
 * Boot mode dma (behind the IOMMU, a CPU of AMD family 0x17) has a route
 * through the host bridge (HMM_PFN_P2PDMA: mapped as MMIO, the IOMMU
 * translating to the NVMe BAR); boot mode dma-p2p (no IOMMU) has the
 * device and an NVMe behind one PCIe switch, where the device uses the
 * bus address (HMM_PFN_P2PDMA_BUS), and the machine's own NVMe out of
 * reach.
 */
TEST_F(dma, p2pdma_cmb)
{
	unsigned long npages = 4, reached = 0, refused = 0;
	bool iommu = iommu_present();
	struct hmm_dma_stats d;
	char dir[256];
	int n, ret;

	for (n = 0; !hmm_p2pmem_dir(n, dir, sizeof(dir)); n++) {
		ret = p2pmem_rw(self->fd, dir, npages, self->page);
		ASSERT_NE(ret, -1) TH_LOG("%s: wrong data or error", dir);
		TH_LOG("%s: %s", dir, ret ? "no route" : "read and written");
		if (ret)
			refused++;
		else
			reached++;
	}
	ASSERT_GT(reached, 0) TH_LOG("no p2pmem the device can reach");
	d = dma_delta(self->fd, &self->base);
	EXPECT_EQ(d.mapped, reached * npages);
	EXPECT_EQ(iommu ? d.p2p : d.p2p_bus, reached * npages);
	EXPECT_EQ(iommu ? d.p2p_bus : d.p2p, 0);
	/* Every provider is reachable through the IOMMU's host bridge. */
	if (iommu)
		EXPECT_EQ(refused, 0);
}

/* A command on another range replaces the region, unmapping the old one. */
TEST_F(dma, new_region_unmaps_old)
{
	unsigned long bytes = NPAGES * self->page;
	char *a = map_anon(bytes, MADV_NOHUGEPAGE);
	char *b = map_anon(bytes, MADV_NOHUGEPAGE);
	char *buf = malloc(bytes);
	struct hmm_dma_stats d;

	ASSERT_NE(a, NULL);
	ASSERT_NE(b, NULL);
	ASSERT_NE(buf, NULL);
	hmm_paint(a, bytes, 11);
	hmm_paint(b, bytes, 12);
	ASSERT_EQ(hmm_dmirror(self->fd, HMM_DMIRROR_READ, a, buf, NPAGES), 0);
	ASSERT_EQ(hmm_dmirror(self->fd, HMM_DMIRROR_READ, b, buf, NPAGES), 0);
	ASSERT_EQ(hmm_unpainted(buf, bytes, 12), -1);
	/* Part of the region again: no new region, nothing new mapped. */
	ASSERT_EQ(hmm_dmirror(self->fd, HMM_DMIRROR_READ, b + self->page, buf,
			      2), 0);
	ASSERT_EQ(memcmp(buf, b + self->page, 2 * self->page), 0);
	d = dma_delta(self->fd, &self->base);
	EXPECT_EQ(d.regions, 2);
	EXPECT_EQ(d.mapped, 2 * NPAGES);
	EXPECT_EQ(d.reused, 2);
	EXPECT_EQ(d.unmapped, NPAGES);
	free(buf);
	munmap(a, bytes);
	munmap(b, bytes);
}

/*
 * Bad input gets its documented error, and the device maps nothing for it
 * (a read-only range asked for write fails before anything is mapped).
 */
TEST_F(dma, bad_input)
{
	unsigned long bytes = NPAGES * self->page;
	char *mem = map_anon(bytes, MADV_NOHUGEPAGE);
	char *buf = malloc(bytes);
	struct hmm_dmirror_cmd cmd = {};
	struct hmm_dma_stats d;

	ASSERT_NE(mem, NULL);
	ASSERT_NE(buf, NULL);
	hmm_paint(mem, bytes, 13);
	EXPECT_EQ(hmm_dmirror(self->fd, HMM_DMIRROR_READ, mem + 1, buf, 1),
		  EINVAL);
	EXPECT_EQ(hmm_dmirror(self->fd, HMM_DMIRROR_READ, mem, buf, 0), EINVAL);
	EXPECT_EQ(hmm_dmirror(self->fd, HMM_DMIRROR_READ, (void *)-4096UL, buf,
			      1), EINVAL);
	EXPECT_EQ(hmm_dmirror(self->fd, HMM_DMIRROR_READ, mem, (void *)-4096UL,
			      NPAGES), EFAULT);
	EXPECT_EQ(hmm_dmirror_ioctl(self->fd, HMM_DMIRROR_READ, NULL), EFAULT);
	EXPECT_EQ(hmm_dmirror_ioctl(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, &cmd),
		  ENOTTY);
	EXPECT_EQ(ioctl(self->fd, HMM_DMA_STATS, NULL), -1);
	EXPECT_EQ(errno, EFAULT);

	/* Memory the device may not have: nothing is mapped. */
	ASSERT_EQ(mprotect(mem, bytes, PROT_READ), 0);
	EXPECT_EQ(hmm_dmirror(self->fd, HMM_DMIRROR_WRITE, mem, buf, NPAGES),
		  EPERM);
	ASSERT_EQ(mprotect(mem, bytes, PROT_NONE), 0);
	EXPECT_EQ(hmm_dmirror(self->fd, HMM_DMIRROR_READ, mem, buf, NPAGES),
		  EFAULT);
	d = dma_delta(self->fd, &self->base);
	EXPECT_EQ(d.mapped, 0);
	EXPECT_EQ(d.transfers, 0);

	/* A hole in the range: refused before anything is mapped. */
	ASSERT_EQ(mprotect(mem, bytes, PROT_READ | PROT_WRITE), 0);
	ASSERT_EQ(munmap(mem + 3 * self->page, self->page), 0);
	EXPECT_EQ(hmm_dmirror(self->fd, HMM_DMIRROR_READ, mem, buf, NPAGES),
		  EFAULT);
	EXPECT_EQ(dma_delta(self->fd, &self->base).mapped, 0);
	free(buf);
	munmap(mem, bytes);
}

/* The racing side of invalidation_race: drop and refill, over and over. */
struct racer {
	char *mem;
	unsigned long bytes;
	long page;
	bool stop;			/* __atomic: the test sets it */
	unsigned int fills;
};

static void *racer_run(void *arg)
{
	struct racer *r = arg;
	unsigned long i;

	while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) {
		for (i = 0; i < r->bytes; i += r->page) {
			madvise(r->mem + i, r->page, MADV_DONTNEED);
			memset(r->mem + i, 1 + r->fills % 200, r->page);
			/* Let the guest idle, so that its clock skips ahead. */
			usleep(20000);
		}
		r->fills++;
	}
	return NULL;
}

/*
 * Device reads while another thread drops and refills the pages: every
 * invalidation unmaps entries under a live map. Each byte the device reads
 * must be one the CPU put there (0 or a fill value): a stale mapping would
 * read a freed page, and with strict IOMMU invalidation fault.
 */
TEST_F_TIMEOUT(dma, invalidation_race, 120)
{
	unsigned long npages = 4, bytes = npages * self->page, i;
	struct racer r = { .page = self->page, .bytes = bytes };
	unsigned int rounds, busy = 0;
	unsigned char *buf = malloc(bytes);
	pthread_t thread;
	int ret;

	ASSERT_NE(buf, NULL);
	r.mem = map_anon(bytes, MADV_NOHUGEPAGE);
	ASSERT_NE(r.mem, NULL);
	memset(r.mem, 1, bytes);
	ASSERT_EQ(pthread_create(&thread, NULL, racer_run, &r), 0);
	for (rounds = 0; rounds < 12; rounds++) {
		ret = hmm_dmirror(self->fd, HMM_DMIRROR_READ, r.mem, buf,
				  npages);
		if (ret == EBUSY) {
			busy++;
			continue;
		}
		ASSERT_EQ(ret, 0);
		for (i = 0; i < bytes; i++)
			ASSERT_LE(buf[i], 200) TH_LOG("byte %lu: %u", i, buf[i]);
	}
	__atomic_store_n(&r.stop, true, __ATOMIC_RELAXED);
	pthread_join(thread, NULL);
	EXPECT_LT(busy, rounds);
	EXPECT_GT(dma_delta(self->fd, &self->base).unmapped, 0);
	TH_LOG("%u rounds (%u busy), %u refills", rounds, busy, r.fills);
	free(buf);
	munmap(r.mem, bytes);
}

TEST_HARNESS_MAIN
