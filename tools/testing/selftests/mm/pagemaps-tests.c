// SPDX-License-Identifier: GPL-2.0
/*
 * The ZONE_DEVICE pagemap types beside HMM's, shown working in the guest,
 * each through the driver that registers it and the way user space reaches
 * its pages:
 *
 *   fsdax    a legacy e820 pmem region (memmap=nn!ss): first as the raw
 *            namespace (memmap in RAM), then as an fsdax pfn namespace whose
 *            memmap lives in the pmem itself (an altmap). ext4 mounted with
 *            -o dax, files mapped MAP_SYNC (only DAX accepts it), written,
 *            pinned, read back; the data survives taking the pagemap down
 *            and registering it again.
 *   devdax   a second region as a devdax namespace: /dev/daxX.Y, 2 MiB
 *            folios (vmemmap_shift), mapped, pinned long-term (allowed for
 *            this type), unbound and bound again; a third one with 4 KiB
 *            alignment, mapped by PTEs.
 *   p2pdma   the controller memory buffer of QEMU's NVMe device, published
 *            as p2pmem: pages mapped through p2pmem/allocate, and given back
 *            through ops->page_free(), also by two threads at once.
 *
 * And the HMM rule for device memory and long-term pins: a FOLL_LONGTERM
 * pin (mm/gup_test.c) of a page in device-coherent or device-private
 * memory first migrates it to system memory, then pins the new page.
 *
 * Last, a device mirroring DAX: the dummy device (/dev/hmm_dmirror0) reads,
 * writes and snapshots an fsdax file and a device-dax mapping through
 * hmm_range_fault(), mapped by 4 KiB PTEs (special and devmap) and by 2 MiB
 * PMDs, read-write and read-only.
 */
#define _GNU_SOURCE
#include "../kselftest_harness.h"
#include "hmm-common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lib/test_hmm_uapi.h>
#include <mm/gup_test.h>

#ifndef MAP_SHARED_VALIDATE
#define MAP_SHARED_VALIDATE	0x03
#endif
#ifndef MAP_SYNC
#define MAP_SYNC		0x80000
#endif
#ifndef STATX_ATTR_DAX
#define STATX_ATTR_DAX		0x00200000
#endif

#define PAGE		4096UL
#define HUGE		(2UL << 20)	/* a PMD's worth */
/* The legacy pmem regions the guest boots with (harness/boot.sh). */
#define NR_PMEM_REGIONS	3
#define ND		"/sys/bus/nd"
#define DAXBUS		"/sys/bus/dax"
#define MNT		"/tmp/pagemaps-dax"
#define IMAGE		"/lib/pagemaps/ext4.img.gz"
/* A file mkfs.ext4 -d put in the image; its bytes are seed_byte(offset). */
#define SEED_FILE	MNT "/seed"
#define SEED_SIZE	(1024UL * 1024)

/* ---- sysfs ---------------------------------------------------------- */

static int sysfs_read(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		n--;
	buf[n] = '\0';
	return 0;
}

static unsigned long long sysfs_ull(const char *path)
{
	char buf[64];

	if (sysfs_read(path, buf, sizeof(buf)))
		return 0;
	return strtoull(buf, NULL, 0);
}

static int sysfs_write(const char *path, const char *val)
{
	ssize_t n;
	int fd = open(path, O_WRONLY);

	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	close(fd);
	return n < 0 ? -errno : 0;
}

/* Copy a directory entry's name into @out of @len bytes, cut if longer. */
static void copy_name(char *out, size_t len, const char *name)
{
	size_t n = strnlen(name, len - 1);

	memcpy(out, name, n);
	out[n] = '\0';
}

/* The first entry of directory @dir whose name starts with @prefix. */
static int dir_find(const char *dir, const char *prefix, char *out, size_t len)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int ret = -ENOENT;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, prefix, strlen(prefix)))
			continue;
		copy_name(out, len, de->d_name);
		ret = 0;
		break;
	}
	closedir(d);
	return ret;
}

/* A read-write shared mapping of @len bytes of the file at @path. */
static void *map_shared(const char *path, size_t len)
{
	void *map;
	int fd = open(path, O_RDWR);

	if (fd < 0)
		return MAP_FAILED;
	map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	return map;
}

/* ---- nvdimm: the two legacy pmem regions ---------------------------- */

struct nd_region {
	char name[32];		/* regionN */
	char ns[32];		/* its io namespace, namespaceN.0 */
	unsigned long long start;
};

/* The pmem regions, lowest physical address first. */
static int nd_regions(struct nd_region *r, int max)
{
	char path[512], prefix[32];
	struct dirent *de;
	int n = 0, i, j;
	DIR *d = opendir(ND "/devices");

	if (!d)
		return 0;
	while ((de = readdir(d)) && n < max) {
		if (strncmp(de->d_name, "region", 6))
			continue;
		copy_name(r[n].name, sizeof(r[n].name), de->d_name);
		snprintf(path, sizeof(path), ND "/devices/%s/resource", de->d_name);
		r[n].start = sysfs_ull(path);
		snprintf(path, sizeof(path), ND "/devices/%s", de->d_name);
		/* namespaceN.M, not the region's namespace_seed attribute */
		snprintf(prefix, sizeof(prefix), "namespace%.8s.", de->d_name + 6);
		if (dir_find(path, prefix, r[n].ns, sizeof(r[n].ns)))
			continue;
		n++;
	}
	closedir(d);
	for (i = 1; i < n; i++)
		for (j = i; j > 0 && r[j].start < r[j - 1].start; j--) {
			struct nd_region t = r[j];

			r[j] = r[j - 1];
			r[j - 1] = t;
		}
	return n;
}

static int nd_bind(const char *driver, const char *dev)
{
	char path[256];

	snprintf(path, sizeof(path), ND "/drivers/%s/bind", driver);
	return sysfs_write(path, dev);
}

static int nd_unbind(const char *driver, const char *dev)
{
	char path[256];

	snprintf(path, sizeof(path), ND "/devices/%s/driver", dev);
	if (access(path, F_OK))
		return 0;	/* not bound */
	snprintf(path, sizeof(path), ND "/drivers/%s/unbind", driver);
	return sysfs_write(path, dev);
}

static int nd_set(const char *dev, const char *attr, const char *val)
{
	char path[256];

	snprintf(path, sizeof(path), ND "/devices/%s/%s", dev, attr);
	return sysfs_write(path, val);
}

/*
 * Turn @region's namespace into a pfn ("pfn_seed") or dax ("dax_seed")
 * namespace with its memmap in the pmem (mode "pmem"), as ndctl
 * create-namespace -m fsdax|devdax -M dev [-a @align] does; @align NULL
 * keeps the default (2 MiB); @dev gets the device's name (pfnN.M, daxN.M).
 */
static int nd_claim_aligned(struct nd_region *region, const char *seed,
			    const char *driver, const char *align, char *dev,
			    size_t len)
{
	char path[256];
	int ret;

	ret = nd_unbind("nd_pmem", region->ns);
	if (ret)
		return ret;
	snprintf(path, sizeof(path), ND "/devices/%s/%s", region->name, seed);
	ret = sysfs_read(path, dev, len);
	if (ret)
		return ret;
	ret = nd_set(dev, "uuid", "7c1bd2c8-2f4e-4d8a-9e3b-5a6f0c1d2e3f");
	ret = ret ?: nd_set(dev, "mode", "pmem");
	if (align)
		ret = ret ?: nd_set(dev, "align", align);
	ret = ret ?: nd_set(dev, "namespace", region->ns);
	return ret ?: nd_bind(driver, dev);
}

static int nd_claim(struct nd_region *region, const char *seed,
		    const char *driver, char *dev, size_t len)
{
	return nd_claim_aligned(region, seed, driver, NULL, dev, len);
}

/* /dev/<name> of the block device under nd device @dev. */
static int nd_block(const char *dev, char *out, size_t len)
{
	char path[512], name[32];
	int ret;

	snprintf(path, sizeof(path), ND "/devices/%s/block", dev);
	ret = dir_find(path, "pmem", name, sizeof(name));
	if (!ret)
		snprintf(out, len, "/dev/%s", name);
	return ret;
}

/* ---- data patterns ------------------------------------------------ */

static uint8_t seed_byte(unsigned long off)
{
	return (uint8_t)(off * 7 + off / 4096);
}

static void fill(void *p, size_t len, unsigned int tag)
{
	uint64_t *w = p;
	size_t i;

	for (i = 0; i < len / 8; i++)
		w[i] = ((uint64_t)tag << 40) ^ i;
}

/* Index of the first word of @p that is not fill(@tag)'s, or -1. */
static long check(const void *p, size_t len, unsigned int tag)
{
	const uint64_t *w = p;
	size_t i;

	for (i = 0; i < len / 8; i++)
		if (w[i] != (((uint64_t)tag << 40) ^ i))
			return i;
	return -1;
}

/* ---- gup_test ------------------------------------------------------ */

/* One gup_test benchmark ioctl over [addr, addr + len): 0 or -errno. */
static int gup_run(unsigned long cmd, void *addr, size_t len, bool write)
{
	struct gup_test gup = {
		.addr = (unsigned long)addr,
		.size = len,
		.nr_pages_per_call = 64,
		.gup_flags = write ? 1 /* FOLL_WRITE */ : 0,
	};
	int fd = open("/sys/kernel/debug/gup_test", O_RDWR);
	int ret;

	if (fd < 0)
		return -errno;
	ret = ioctl(fd, cmd, &gup) ? -errno : 0;
	close(fd);
	/* gup_test stops at the first page it cannot get. */
	if (!ret && gup.size != len)
		ret = -EFAULT;
	return ret;
}

/* ---- fsdax ---------------------------------------------------------- */

static int ext4_image_to(const char *blockdev)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "zcat %s > %s", IMAGE, blockdev);
	return system(cmd) ? -EIO : 0;
}

/*
 * With the file system on @blockdev mounted -o dax: the seed file reads back
 * through a MAP_SYNC mapping, a new file of @len written through one reads
 * back through read(2), pins and the page cache stay out of it.
 */
static void fsdax_exercise(struct __test_metadata *_metadata, const char *name,
			   size_t len, unsigned int tag)
{
	char path[128];
	struct statx stx;
	uint8_t *seed, *map;
	void *copy;
	unsigned long i;
	int fd;

	fd = open(SEED_FILE, O_RDONLY);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &stx), 0);
	ASSERT_TRUE(stx.stx_attributes_mask & STATX_ATTR_DAX);
	ASSERT_TRUE(stx.stx_attributes & STATX_ATTR_DAX);
	seed = mmap(NULL, SEED_SIZE, PROT_READ, MAP_SHARED_VALIDATE | MAP_SYNC, fd, 0);
	ASSERT_NE(seed, MAP_FAILED);
	for (i = 0; i < SEED_SIZE; i++)
		if (seed[i] != seed_byte(i))
			break;
	EXPECT_EQ(i, SEED_SIZE);
	/* Pages of a DAX file are device pages: pin them through gup-fast. */
	EXPECT_EQ(gup_run(PIN_FAST_BENCHMARK, seed, SEED_SIZE, false), 0);
	munmap(seed, SEED_SIZE);
	close(fd);

	snprintf(path, sizeof(path), MNT "/%s", name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(ftruncate(fd, len), 0);
	map = mmap(NULL, len, PROT_READ | PROT_WRITE,
		   MAP_SHARED_VALIDATE | MAP_SYNC, fd, 0);
	ASSERT_NE(map, MAP_FAILED);
	fill(map, len, tag);
	EXPECT_EQ(gup_run(GUP_FAST_BENCHMARK, map, len, true), 0);
	EXPECT_EQ(gup_run(PIN_BASIC_TEST, map, len, true), 0);
	EXPECT_EQ(msync(map, len, MS_SYNC), 0);
	munmap(map, len);

	copy = malloc(len);
	ASSERT_NE(copy, NULL);
	ASSERT_EQ(pread(fd, copy, len, 0), (ssize_t)len);
	EXPECT_EQ(check(copy, len, tag), -1);
	free(copy);
	close(fd);
}

/* The file written by fsdax_exercise() reads back after a remount. */
static void fsdax_verify(struct __test_metadata *_metadata, const char *name,
			 size_t len, unsigned int tag)
{
	char path[128];
	void *map;
	int fd;

	snprintf(path, sizeof(path), MNT "/%s", name);
	fd = open(path, O_RDONLY);
	ASSERT_GE(fd, 0);
	map = mmap(NULL, len, PROT_READ, MAP_SHARED_VALIDATE | MAP_SYNC, fd, 0);
	ASSERT_NE(map, MAP_FAILED);
	EXPECT_EQ(check(map, len, tag), -1);
	munmap(map, len);
	close(fd);
}

static void dax_mount(struct __test_metadata *_metadata, const char *blockdev)
{
	mkdir(MNT, 0755);
	ASSERT_EQ(mount(blockdev, MNT, "ext4", 0, "dax=always"), 0) {
		TH_LOG("mount %s -o dax: %s", blockdev, strerror(errno));
	}
}

/*
 * The pagemap tests share no state but need more than the harness's default
 * 30 s under TCG (a 64 MiB image to copy, file systems to mount).
 */
FIXTURE(pagemap)
{
	int unused;
};

FIXTURE_SETUP(pagemap)
{
}

FIXTURE_TEARDOWN(pagemap)
{
}

/* The raw namespace: pmem bound at boot, memmap in RAM. */
TEST_F_TIMEOUT(pagemap, fsdax_raw_namespace, 300)
{
	struct nd_region r[4];
	char blockdev[64];

	ASSERT_EQ(nd_regions(r, 4), NR_PMEM_REGIONS);
	ASSERT_EQ(nd_block(r[0].ns, blockdev, sizeof(blockdev)), 0);
	ASSERT_EQ(ext4_image_to(blockdev), 0);
	dax_mount(_metadata, blockdev);
	fsdax_exercise(_metadata, "raw", 8UL << 20, 1);
	ASSERT_EQ(umount(MNT), 0);
	dax_mount(_metadata, blockdev);
	fsdax_verify(_metadata, "raw", 8UL << 20, 1);
	ASSERT_EQ(umount(MNT), 0);
}

/*
 * The same region as an fsdax pfn namespace: memmap in the pmem (altmap).
 * Taking the pagemap down and up again keeps what was written.
 */
TEST_F_TIMEOUT(pagemap, fsdax_pfn_namespace_altmap, 300)
{
	struct nd_region r[4];
	char pfn[32], blockdev[64];

	ASSERT_EQ(nd_regions(r, 4), NR_PMEM_REGIONS);
	ASSERT_EQ(nd_claim(&r[0], "pfn_seed", "nd_pmem", pfn, sizeof(pfn)), 0);
	ASSERT_EQ(nd_block(pfn, blockdev, sizeof(blockdev)), 0);
	ASSERT_EQ(ext4_image_to(blockdev), 0);
	dax_mount(_metadata, blockdev);
	fsdax_exercise(_metadata, "pfn", 16UL << 20, 2);
	ASSERT_EQ(umount(MNT), 0);

	/* memunmap_pages() of an altmap pagemap, then memremap_pages(). */
	ASSERT_EQ(nd_unbind("nd_pmem", pfn), 0);
	ASSERT_EQ(nd_bind("nd_pmem", pfn), 0);
	ASSERT_EQ(nd_block(pfn, blockdev, sizeof(blockdev)), 0);
	dax_mount(_metadata, blockdev);
	fsdax_verify(_metadata, "pfn", 16UL << 20, 2);
	ASSERT_EQ(umount(MNT), 0);
}

/* ---- device-dax ------------------------------------------------------ */

/* The dev_dax device of nd dax device @nd_dax (daxN.M), with its size. */
static int devdax_find(const char *nd_dax, char *dev, size_t len,
		       unsigned long long *size, unsigned long long *align)
{
	char path[256], region[16];
	const char *dot = strchr(nd_dax, '.');

	if (!dot)
		return -EINVAL;
	snprintf(region, sizeof(region), "%.*s.", (int)(dot - nd_dax), nd_dax);
	if (dir_find(DAXBUS "/devices", region, dev, len))
		return -ENOENT;
	snprintf(path, sizeof(path), DAXBUS "/devices/%s/size", dev);
	*size = sysfs_ull(path);
	snprintf(path, sizeof(path), DAXBUS "/devices/%s/align", dev);
	*align = sysfs_ull(path);
	return *size ? 0 : -ENOSPC;
}

static void *devdax_map(const char *dev, size_t len)
{
	char path[64];

	snprintf(path, sizeof(path), "/dev/%s", dev);
	return map_shared(path, len);
}

TEST_F_TIMEOUT(pagemap, devdax_mmap_pin_rebind, 300)
{
	unsigned long long size, align;
	char ndax[32], dev[32], path[128];
	struct nd_region r[4];
	size_t len;
	void *map;

	ASSERT_EQ(nd_regions(r, 4), NR_PMEM_REGIONS);
	ASSERT_EQ(nd_claim(&r[1], "dax_seed", "dax_pmem", ndax, sizeof(ndax)), 0);
	ASSERT_EQ(devdax_find(ndax, dev, sizeof(dev), &size, &align), 0);
	TH_LOG("%s: %llu MiB in %llu KiB folios", dev, size >> 20, align >> 10);
	ASSERT_EQ(align, 2UL << 20);
	len = size & ~(align - 1);
	ASSERT_GE(len, 2 * align);

	map = devdax_map(dev, len);
	ASSERT_NE(map, MAP_FAILED);
	ASSERT_EQ((unsigned long)map & (align - 1), 0);
	fill(map, len, 3);
	EXPECT_EQ(check(map, len, 3), -1);
	EXPECT_EQ(gup_run(GUP_FAST_BENCHMARK, map, len, true), 0);
	/* Generic device memory may be pinned long-term in place. */
	EXPECT_EQ(gup_run(PIN_LONGTERM_BENCHMARK, map, len, true), 0);
	EXPECT_EQ(check(map, len, 3), -1);
	munmap(map, len);

	/* The pagemap goes with the driver and comes back with it. */
	snprintf(path, sizeof(path), DAXBUS "/drivers/device_dax/unbind");
	ASSERT_EQ(sysfs_write(path, dev), 0);
	snprintf(path, sizeof(path), DAXBUS "/drivers/device_dax/bind");
	ASSERT_EQ(sysfs_write(path, dev), 0);
	map = devdax_map(dev, len);
	ASSERT_NE(map, MAP_FAILED);
	EXPECT_EQ(check(map, len, 3), -1);
	munmap(map, len);
}

/* ---- p2pdma ---------------------------------------------------------- */

static unsigned long long p2pmem_attr(const char *dir, const char *attr)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, attr);
	return sysfs_ull(path);
}

/* @npages pages of p2p memory mapped through p2pmem/allocate. */
static void *p2pmem_map(const char *dir, size_t npages)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/allocate", dir);
	return map_shared(path, npages * PAGE);
}

TEST_F_TIMEOUT(pagemap, p2pdma_cmb_published_and_mapped, 120)
{
	unsigned long long size, avail;
	char dir[256];
	const size_t npages = 16;
	void *map;

	ASSERT_EQ(hmm_p2pmem_dir(0, dir, sizeof(dir)), 0);
	size = p2pmem_attr(dir, "size");
	avail = p2pmem_attr(dir, "available");
	TH_LOG("%s: %llu KiB, %llu available", dir, size >> 10, avail >> 10);
	ASSERT_GE(size, 2ULL << 20);
	ASSERT_EQ(p2pmem_attr(dir, "published"), 1);
	/* The NVMe driver may keep its submission queues there. */
	ASSERT_GE(avail, npages * PAGE);

	map = p2pmem_map(dir, npages);
	ASSERT_NE(map, MAP_FAILED);
	EXPECT_EQ(p2pmem_attr(dir, "available"), avail - npages * PAGE);
	fill(map, npages * PAGE, 4);
	EXPECT_EQ(check(map, npages * PAGE, 4), -1);
	munmap(map, npages * PAGE);
	/* Every page came back through ops->page_free(). */
	EXPECT_EQ(p2pmem_attr(dir, "available"), avail);
}

struct p2p_worker {
	const char *dir;
	unsigned int tag;
	int rounds;
	int failures;
};

static void *p2p_churn(void *arg)
{
	struct p2p_worker *w = arg;
	int i;

	for (i = 0; i < w->rounds; i++) {
		size_t npages = 1 + (i % 4);
		void *map = p2pmem_map(w->dir, npages);

		if (map == MAP_FAILED) {
			w->failures++;
			continue;
		}
		fill(map, npages * PAGE, w->tag + i);
		if (check(map, npages * PAGE, w->tag + i) != -1)
			w->failures++;
		munmap(map, npages * PAGE);
	}
	return NULL;
}

/*
 * Regression (6.12): the free path reset a p2pdma page's refcount after
 * ops->page_free() had returned it to the allocator, where another mapper
 * may already have taken it. Pages freed by one thread and handed out to
 * another at once must keep their data and their counts.
 */
TEST_F_TIMEOUT(pagemap, p2pdma_free_and_reuse_race, 300)
{
	struct p2p_worker w[2];
	pthread_t t[2];
	char dir[256];
	unsigned long long avail;
	int i;

	ASSERT_EQ(hmm_p2pmem_dir(0, dir, sizeof(dir)), 0);
	avail = p2pmem_attr(dir, "available");
	for (i = 0; i < 2; i++) {
		w[i] = (struct p2p_worker){ .dir = dir, .tag = 100 * (i + 1),
					    .rounds = 400 };
		ASSERT_EQ(pthread_create(&t[i], NULL, p2p_churn, &w[i]), 0);
	}
	for (i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		EXPECT_EQ(w[i].failures, 0);
	}
	EXPECT_EQ(p2pmem_attr(dir, "available"), avail);
}

/* ---- long-term pins of HMM device memory ----------------------------- */

FIXTURE(longterm)
{
	int dmirror;
	int gup;
	size_t len;
	void *buf;
};

FIXTURE_VARIANT(longterm)
{
	int device;		/* /dev/hmm_dmirrorN */
	uint8_t on_device;	/* its snapshot flag for a migrated page */
};

FIXTURE_VARIANT_ADD(longterm, coherent)
{
	.device = 2,
	.on_device = HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL,
};

FIXTURE_VARIANT_ADD(longterm, private)
{
	.device = 0,
	.on_device = HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL,
};

FIXTURE_SETUP(longterm)
{
	char path[32];

	snprintf(path, sizeof(path), "/dev/hmm_dmirror%d", variant->device);
	self->dmirror = open(path, O_RDWR);
	ASSERT_GE(self->dmirror, 0);
	self->gup = open("/sys/kernel/debug/gup_test", O_RDWR);
	ASSERT_GE(self->gup, 0);
	self->len = 16 * PAGE;
	self->buf = mmap(NULL, self->len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(self->buf, MAP_FAILED);
}

FIXTURE_TEARDOWN(longterm)
{
	munmap(self->buf, self->len);
	close(self->gup);
	close(self->dmirror);
}

static int dmirror_cmd(int fd, unsigned long req, void *addr, void *out,
		       size_t npages)
{
	struct hmm_dmirror_cmd cmd = {
		.addr = (unsigned long)addr,
		.ptr = (unsigned long)out,
		.npages = npages,
	};

	return ioctl(fd, req, &cmd) ? -errno : (int)cmd.cpages;
}

/* How many pages of the buffer the device's snapshot shows with @flag. */
static int pages_with(int fd, void *buf, size_t npages, uint8_t flag)
{
	uint8_t snap[64];
	size_t i;
	int n = 0;

	if (npages > sizeof(snap) ||
	    dmirror_cmd(fd, HMM_DMIRROR_SNAPSHOT, buf, snap, npages) < 0)
		return -1;
	for (i = 0; i < npages; i++)
		n += (snap[i] & 0xf0) == flag;
	return n;
}

TEST_F(longterm, pin_migrates_to_system_memory)
{
	size_t npages = self->len / PAGE;
	struct pin_longterm_test pin = {
		.addr = (unsigned long)self->buf,
		.size = self->len,
		.flags = PIN_LONGTERM_TEST_FLAG_USE_WRITE,
	};
	void *mirror = malloc(self->len), *pinned = malloc(self->len);
	uint64_t where;

	ASSERT_NE(mirror, NULL);
	ASSERT_NE(pinned, NULL);
	fill(self->buf, self->len, 5);
	ASSERT_EQ(dmirror_cmd(self->dmirror, HMM_DMIRROR_MIGRATE_TO_DEV,
			      self->buf, mirror, npages), (int)npages);
	ASSERT_EQ(pages_with(self->dmirror, self->buf, npages,
			     variant->on_device), (int)npages);

	/* The pin succeeds, on pages that are now system memory... */
	ASSERT_EQ(ioctl(self->gup, PIN_LONGTERM_TEST_START, &pin), 0);
	EXPECT_EQ(pages_with(self->dmirror, self->buf, npages,
			     variant->on_device), 0);
	/* ...holding the data... */
	where = (unsigned long)pinned;
	ASSERT_EQ(ioctl(self->gup, PIN_LONGTERM_TEST_READ, &where), 0);
	EXPECT_EQ(check(pinned, self->len, 5), -1);
	/* ...and the very pages the process maps. */
	fill(self->buf, self->len, 6);
	ASSERT_EQ(ioctl(self->gup, PIN_LONGTERM_TEST_READ, &where), 0);
	EXPECT_EQ(check(pinned, self->len, 6), -1);
	EXPECT_EQ(ioctl(self->gup, PIN_LONGTERM_TEST_STOP), 0);
	free(pinned);
	free(mirror);
}

/* ---- a device mirroring DAX ------------------------------------------- */

/* What the region's nd devices are named after: N of regionN. */
static int nd_region_id(const struct nd_region *region)
{
	return atoi(region->name + strlen("region"));
}

/*
 * The block device of @region's fsdax namespace, whichever it is now: the
 * raw namespace, or the pfn namespace fsdax_pfn_namespace_altmap made.
 */
static int fsdax_blockdev(struct nd_region *region, char *out, size_t len)
{
	char prefix[16];
	struct dirent *de;
	int ret = -ENOENT;
	DIR *d;

	if (!nd_block(region->ns, out, len))
		return 0;
	/*
	 * The region has its claimed pfn device and an idle seed (pfnN.M
	 * both, numbered in the order the kernel made them): the one with a
	 * block device is the namespace.
	 */
	snprintf(prefix, sizeof(prefix), "pfn%d.", nd_region_id(region));
	d = opendir(ND "/devices");
	if (!d)
		return -errno;
	while (ret && (de = readdir(d)))
		if (!strncmp(de->d_name, prefix, strlen(prefix)))
			ret = nd_block(de->d_name, out, len);
	closedir(d);
	return ret;
}

/*
 * The device-dax device of @region (daxN.0), made with alignment @align
 * (NULL: 2 MiB) unless an earlier test made it already.
 */
static int devdax_get(struct nd_region *region, const char *align, char *dev,
		      size_t len)
{
	unsigned long long size, dev_align;
	char ndax[32];
	int ret;

	snprintf(ndax, sizeof(ndax), "dax%d.0", nd_region_id(region));
	if (devdax_find(ndax, dev, len, &size, &dev_align)) {
		ret = nd_claim_aligned(region, "dax_seed", "dax_pmem", align,
				       ndax, sizeof(ndax));
		if (ret)
			return ret;
		ret = devdax_find(ndax, dev, len, &size, &dev_align);
		if (ret)
			return ret;
	}
	return dev_align == (align ? strtoull(align, NULL, 0) : HUGE) ?
	       0 : -EINVAL;
}

/*
 * The first offset of the file open at @fd, HUGE aligned, from which HUGE
 * bytes lie in one extent that starts HUGE aligned on the device too: what
 * a PMD mapping of a DAX file needs. -1 if there is none.
 */
static off_t fsdax_huge_offset(int fd)
{
	struct {
		struct fiemap map;
		struct fiemap_extent extents[32];
	} fm = {
		.map.fm_length = FIEMAP_MAX_OFFSET,
		.map.fm_flags = FIEMAP_FLAG_SYNC,
		.map.fm_extent_count = 32,
	};
	unsigned int i;

	if (ioctl(fd, FS_IOC_FIEMAP, &fm.map))
		return -1;
	for (i = 0; i < fm.map.fm_mapped_extents; i++) {
		const struct fiemap_extent *e = &fm.extents[i];
		off_t off = (e->fe_logical + HUGE - 1) & ~(HUGE - 1);
		off_t skip = off - e->fe_logical;

		if (skip + HUGE <= e->fe_length &&
		    !((e->fe_physical + skip) & (HUGE - 1)))
			return off;
	}
	return -1;
}

enum dax_kind {
	FSDAX,
	DEVDAX,
};

#define DAX_TAG_CPU	21
#define DAX_TAG_DEVICE	22

FIXTURE(daxmirror)
{
	int dmirror;
	int fd;			/* the DAX file, or /dev/daxX.Y */
	size_t len;
	off_t off;		/* offset of the mirrored range in fd */
	bool mounted;
	uint8_t *cpu;		/* a read-write mapping the CPU checks by */
	void *reserve;		/* address space around the mirrored mapping */
	size_t reserve_len;
	uint8_t *mirror;	/* the mapping the device mirrors */
};

FIXTURE_VARIANT(daxmirror)
{
	enum dax_kind kind;
	bool huge;		/* the mirrored mapping is PMD mapped */
	bool readonly;		/* ... and PROT_READ */
	/*
	 * The access the snapshot shows once the device's read faulted the
	 * pages in: a read fault maps fsdax read-only (the file system is
	 * told of the first write), device-dax as the mapping allows.
	 */
	uint8_t after_read;
};

FIXTURE_VARIANT_ADD(daxmirror, fsdax_4k)
{
	.kind = FSDAX,
	.after_read = HMM_DMIRROR_PROT_READ,
};

FIXTURE_VARIANT_ADD(daxmirror, fsdax_4k_readonly)
{
	.kind = FSDAX,
	.readonly = true,
	.after_read = HMM_DMIRROR_PROT_READ,
};

FIXTURE_VARIANT_ADD(daxmirror, fsdax_2m)
{
	.kind = FSDAX,
	.huge = true,
	.after_read = HMM_DMIRROR_PROT_READ,
};

FIXTURE_VARIANT_ADD(daxmirror, fsdax_2m_readonly)
{
	.kind = FSDAX,
	.huge = true,
	.readonly = true,
	.after_read = HMM_DMIRROR_PROT_READ,
};

FIXTURE_VARIANT_ADD(daxmirror, devdax_4k)
{
	.kind = DEVDAX,
	.after_read = HMM_DMIRROR_PROT_WRITE,
};

FIXTURE_VARIANT_ADD(daxmirror, devdax_4k_readonly)
{
	.kind = DEVDAX,
	.readonly = true,
	.after_read = HMM_DMIRROR_PROT_READ,
};

FIXTURE_VARIANT_ADD(daxmirror, devdax_2m)
{
	.kind = DEVDAX,
	.huge = true,
	.after_read = HMM_DMIRROR_PROT_WRITE,
};

FIXTURE_VARIANT_ADD(daxmirror, devdax_2m_readonly)
{
	.kind = DEVDAX,
	.huge = true,
	.readonly = true,
	.after_read = HMM_DMIRROR_PROT_READ,
};

/*
 * ext4 on region 0 mounted -o dax, its allocations aligned to 2 MiB
 * (stripe=512 blocks) so that a file can be PMD mapped; the image is
 * copied there only if the region holds no file system yet.
 */
static void daxmirror_mount(struct __test_metadata *_metadata,
			    struct nd_region *region)
{
	const char *opts = "dax=always,stripe=512";
	char blockdev[64];

	ASSERT_EQ(fsdax_blockdev(region, blockdev, sizeof(blockdev)), 0);
	/*
	 * A case that failed an assertion may not have reached its teardown
	 * (6.12's harness longjmp()s past it): whatever it left mounted goes.
	 */
	while (!umount(MNT))
		;
	mkdir(MNT, 0755);
	if (!mount(blockdev, MNT, "ext4", 0, opts))
		return;
	ASSERT_EQ(errno, EINVAL) {
		TH_LOG("mount %s -o %s: %s", blockdev, opts, strerror(errno));
	}
	/* No file system there yet. */
	ASSERT_EQ(ext4_image_to(blockdev), 0);
	ASSERT_EQ(mount(blockdev, MNT, "ext4", 0, opts), 0) {
		TH_LOG("mount %s -o %s: %s", blockdev, opts, strerror(errno));
	}
}

/*
 * An 8 MiB file open at *@fd; *@off is where its first PMD-mappable 2 MiB
 * start, the range the device mirrors.
 */
static void daxmirror_file(struct __test_metadata *_metadata, int *fd,
			   off_t *off)
{
	const size_t size = 8UL << 20;

	*fd = open(MNT "/mirrored", O_RDWR | O_CREAT | O_TRUNC, 0644);
	ASSERT_GE(*fd, 0);
	ASSERT_EQ(fallocate(*fd, 0, 0, size), 0);
	*off = fsdax_huge_offset(*fd);
	ASSERT_GE(*off, 0) {
		TH_LOG("no 2 MiB aligned extent in %zu MiB", size >> 20);
	}
}

FIXTURE_SETUP(daxmirror)
{
	struct nd_region r[4];
	char dev[32], path[64];
	uintptr_t base;
	int prot = PROT_READ | (variant->readonly ? 0 : PROT_WRITE);

	self->fd = -1;
	self->cpu = MAP_FAILED;
	self->mirror = MAP_FAILED;
	self->reserve = MAP_FAILED;
	self->len = HUGE;
	self->dmirror = open("/dev/hmm_dmirror0", O_RDWR);
	ASSERT_GE(self->dmirror, 0);
	ASSERT_EQ(nd_regions(r, 4), NR_PMEM_REGIONS);

	if (variant->kind == FSDAX) {
		daxmirror_mount(_metadata, &r[0]);
		self->mounted = true;
		daxmirror_file(_metadata, &self->fd, &self->off);
	} else {
		/* Region 1: 2 MiB alignment; region 2: 4 KiB. */
		ASSERT_EQ(devdax_get(&r[variant->huge ? 1 : 2],
				     variant->huge ? NULL : "4096",
				     dev, sizeof(dev)), 0);
		snprintf(path, sizeof(path), "/dev/%s", dev);
		self->fd = open(path, O_RDWR);
		ASSERT_GE(self->fd, 0);
		self->off = 0;
	}

	/* The CPU writes what the device must read. */
	self->cpu = mmap(NULL, self->len, PROT_READ | PROT_WRITE, MAP_SHARED,
			 self->fd, self->off);
	ASSERT_NE(self->cpu, MAP_FAILED);
	fill(self->cpu, self->len, DAX_TAG_CPU);

	/*
	 * The mirrored mapping, 2 MiB aligned for PMDs, or one page off that
	 * alignment so that only PTEs can map it.
	 */
	self->reserve_len = self->len + 2 * HUGE;
	self->reserve = mmap(NULL, self->reserve_len, PROT_NONE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(self->reserve, MAP_FAILED);
	base = ((uintptr_t)self->reserve + HUGE - 1) & ~(HUGE - 1);
	if (!variant->huge)
		base += PAGE;
	self->mirror = mmap((void *)base, self->len, prot,
			    MAP_SHARED | MAP_FIXED, self->fd, self->off);
	ASSERT_NE(self->mirror, MAP_FAILED);
}

FIXTURE_TEARDOWN(daxmirror)
{
	if (self->reserve != MAP_FAILED)
		munmap(self->reserve, self->reserve_len);
	if (self->cpu != MAP_FAILED)
		munmap(self->cpu, self->len);
	if (self->fd >= 0)
		close(self->fd);
	if (self->mounted)
		umount(MNT);
	close(self->dmirror);
}

/* Every byte of @npages pages' snapshot is @want; the first that is not. */
static long snapshot_differs(int fd, void *addr, size_t npages, uint8_t want,
			     uint8_t *got)
{
	uint8_t *snap = malloc(npages);
	long i, bad = -1;

	if (!snap ||
	    dmirror_cmd(fd, HMM_DMIRROR_SNAPSHOT, addr, snap, npages) < 0) {
		free(snap);
		*got = 0;
		return 0;
	}
	for (i = 0; i < (long)npages && bad < 0; i++)
		if (snap[i] != want)
			bad = i;
	*got = bad < 0 ? want : snap[bad];
	free(snap);
	return bad;
}

/*
 * The device reads what the CPU wrote, sees DAX pages at the size the CPU
 * maps them, and writes where the mapping lets it: its data reaches the
 * CPU (and, for fsdax, the file); on a read-only mapping the write fails
 * with EPERM and nothing changes.
 */
TEST_F_TIMEOUT(daxmirror, device_reads_writes_snapshots, 300)
{
	size_t npages = self->len / PAGE;
	uint8_t size = variant->huge ? HMM_DMIRROR_PROT_PMD : 0;
	uint8_t got;
	void *buf;
	long bad;
	int ret;

	buf = malloc(self->len);
	ASSERT_NE(buf, NULL);

	/* Nothing mapped yet: no fault taken, nothing reported. */
	bad = snapshot_differs(self->dmirror, self->mirror, npages,
			       HMM_DMIRROR_PROT_NONE, &got);
	EXPECT_EQ(bad, -1) {
		TH_LOG("page %ld before the read: 0x%02x", bad, got);
	}

	ASSERT_EQ(dmirror_cmd(self->dmirror, HMM_DMIRROR_READ, self->mirror,
			      buf, npages), (int)npages);
	EXPECT_EQ(check(buf, self->len, DAX_TAG_CPU), -1);
	bad = snapshot_differs(self->dmirror, self->mirror, npages,
			       variant->after_read | size, &got);
	EXPECT_EQ(bad, -1) {
		TH_LOG("page %ld after the read: 0x%02x, not 0x%02x", bad, got,
		       variant->after_read | size);
	}

	fill(buf, self->len, DAX_TAG_DEVICE);
	ret = dmirror_cmd(self->dmirror, HMM_DMIRROR_WRITE, self->mirror, buf,
			  npages);
	if (variant->readonly) {
		EXPECT_EQ(ret, -EPERM);
		EXPECT_EQ(check(self->cpu, self->len, DAX_TAG_CPU), -1);
		bad = snapshot_differs(self->dmirror, self->mirror, npages,
				       HMM_DMIRROR_PROT_READ | size, &got);
	} else {
		EXPECT_EQ(ret, (int)npages);
		EXPECT_EQ(check(self->cpu, self->len, DAX_TAG_DEVICE), -1);
		EXPECT_EQ(check(self->mirror, self->len, DAX_TAG_DEVICE), -1);
		bad = snapshot_differs(self->dmirror, self->mirror, npages,
				       HMM_DMIRROR_PROT_WRITE | size, &got);
	}
	EXPECT_EQ(bad, -1) {
		TH_LOG("page %ld after the write: 0x%02x", bad, got);
	}
	if (variant->kind == FSDAX) {
		/* The file says the same through read(2). */
		ASSERT_EQ(pread(self->fd, buf, self->len, self->off),
			  (ssize_t)self->len);
		EXPECT_EQ(check(buf, self->len, variant->readonly ?
				DAX_TAG_CPU : DAX_TAG_DEVICE), -1);
	}
	free(buf);
}

TEST_HARNESS_MAIN
