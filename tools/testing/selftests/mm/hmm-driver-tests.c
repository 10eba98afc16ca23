// SPDX-License-Identifier: GPL-2.0
/*
 * The contract of our dummy HMM driver, lib/test_hmm.c, as its uapi header
 * (lib/test_hmm_uapi.h) writes it down, beyond what upstream's hmm-tests
 * look at:
 *   - every command answers bad input with the errno the header names, and
 *     bad input moves nothing and changes no byte;
 *   - a migration that fails part-way keeps every byte, and the whole
 *     range is checked before anything moves;
 *   - closing the file, HMM_DMIRROR_RELEASE and unloading the module bring
 *     pages in device memory back to system memory, intact;
 *   - device memory grows past one chunk; cpages and faults count what the
 *     header says;
 *   - a THP moves to the device-private device whole, as one 2 MiB device
 *     page, and back whole; HMM_DMIRROR_FLAG_FAIL_ALLOC makes it fall back
 *     to single pages (the device-coherent device always uses those);
 *   - freed device-private memory keeps its stores until memory pressure
 *     (its shrinker, seen through CONFIG_SHRINKER_DEBUG's debugfs files);
 *   - the core's events in /proc/vmstat move by exactly what each command
 *     did: pages collected and moved, in which direction, 2 MiB folios
 *     moved whole or split, CPU faults, exclusive grants and revocations,
 *     and pinned or referenced pages given up;
 *   - the driver's debugfs "mirror" shows what each open file holds:
 *     mirrored, writable and exclusive entries, resident device pages and
 *     2 MiB ones.
 * Each test runs on a device-private (0) and a device-coherent (2) device;
 * the module must be loaded with spm_addr_dev0/1 (the guest's init does).
 * One test unloads and reloads the module itself.
 */
#include "../kselftest_harness.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <fcntl.h>
#include <glob.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lib/test_hmm_uapi.h>
#include <mm/gup_test.h>

#include "hmm-common.h"

#define NPAGES		64UL
/* More than one 16 MiB chunk of device memory. */
#define GROW_NPAGES	(4096UL + 256)
/* An address no process owns: above the 47-bit user address space. */
#define BEYOND_USER	0x800000000000ULL
/* A kernel address, which the driver must refuse to copy to or from. */
#define KERNEL_PTR	0xffff888000000000ULL
#define MODULE_PATH	"/lib/modules/test_hmm.ko"

static long page_size;
/* This program's trace instance (hmm-common.h), one test at a time. */
static struct hmm_trace trace;

static int device_open(int device)
{
	char path[64];

	snprintf(path, sizeof(path), "/dev/hmm_dmirror%d", device);
	return open(path, O_RDWR);
}

/* One command; 0 or -errno. */
static int device_cmd(int fd, unsigned long request, const void *addr,
		      void *ptr, uint64_t npages, struct hmm_dmirror_cmd *out)
{
	struct hmm_dmirror_cmd cmd = {
		.addr = (uintptr_t)addr,
		.ptr = (uintptr_t)ptr,
		.npages = npages,
	};

	if (ioctl(fd, request, &cmd))
		return -errno;
	if (out)
		*out = cmd;
	return 0;
}

static void *map(unsigned long npages, int prot, int flags)
{
	void *p = mmap(NULL, npages * page_size, prot,
		       flags | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* Word i of a buffer tagged @seed; never read back from device memory. */
static uint32_t pattern(unsigned long seed, unsigned long i)
{
	return (seed << 24) ^ (i * 2654435761u);
}

static void fill(void *buf, unsigned long npages, unsigned long seed)
{
	uint32_t *w = buf;
	unsigned long i;

	for (i = 0; i < npages * page_size / sizeof(*w); i++)
		w[i] = pattern(seed, i);
}

/* The first word of @buf that is not the pattern, or -1 if none. */
static long first_bad(const void *buf, unsigned long npages,
		      unsigned long seed)
{
	const uint32_t *w = buf;
	unsigned long i;

	for (i = 0; i < npages * page_size / sizeof(*w); i++)
		if (w[i] != pattern(seed, i))
			return i;
	return -1;
}

/*
 * A private read-write buffer of @npages filled with pattern @seed, and a
 * mirror buffer as large for the device to copy into.
 */
static bool buffers(unsigned long npages, unsigned long seed, char **buf,
		    char **mirror)
{
	*buf = map(npages, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	*mirror = map(npages, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	if (!*buf || !*mirror)
		return false;
	fill(*buf, npages, seed);
	return true;
}

/*
 * How many snapshot bytes of [addr, +npages) are @want in the bits of
 * @mask; ~0UL if the snapshot fails.
 */
static unsigned long count_snap_bits(int fd, void *addr, unsigned long npages,
				     uint8_t mask, uint8_t want)
{
	uint8_t snap[GROW_NPAGES];
	unsigned long i, n = 0;

	if (npages > GROW_NPAGES ||
	    device_cmd(fd, HMM_DMIRROR_SNAPSHOT, addr, snap, npages, NULL))
		return ~0UL;
	for (i = 0; i < npages; i++)
		n += (snap[i] & mask) == want;
	return n;
}

/* How many snapshot bytes of [addr, +npages) have the device-memory kind. */
static unsigned long count_kind(int fd, void *addr, unsigned long npages,
				uint8_t kind)
{
	return count_snap_bits(fd, addr, npages, 0xf0, kind);
}

FIXTURE(driver)
{
	int fd;
	uint8_t local;		/* snapshot kind of this device's pages */
};

FIXTURE_VARIANT(driver)
{
	int device;
	bool coherent;
};

FIXTURE_VARIANT_ADD(driver, private)
{
	.device = 0,
	.coherent = false,
};

FIXTURE_VARIANT_ADD(driver, coherent)
{
	.device = 2,
	.coherent = true,
};

FIXTURE_SETUP(driver)
{
	page_size = sysconf(_SC_PAGESIZE);
	self->local = variant->coherent ? HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL :
					  HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL;
	self->fd = device_open(variant->device);
	ASSERT_GE(self->fd, 0) TH_LOG("open /dev/hmm_dmirror%d: %s",
				      variant->device, strerror(errno));
}

FIXTURE_TEARDOWN(driver)
{
	if (trace.dir[0])
		hmm_trace_end(&trace);
	if (self->fd >= 0)
		close(self->fd);
}

/* Where a bad-argument case points addr or ptr. */
enum where {
	BUF,		/* private anonymous memory, read-write, filled */
	BUF_PLUS_1,	/* one byte into BUF: not page aligned */
	HOLE,		/* nothing mapped */
	BUF_INTO_HOLE,	/* the last page of BUF, then the hole */
	RO,		/* read-only private anonymous memory */
	NONE,		/* PROT_NONE */
	SHARED,		/* shared anonymous memory */
	BEYOND,		/* above the user address space */
	KERNEL,		/* a kernel address */
};

/* npages of a bad-argument case. */
enum count {
	SOME,		/* NPAGES */
	ZERO,
	WRAPS,		/* npages << PAGE_SHIFT wraps around 2^64 */
	TO_TOP,		/* addr + npages pages passes 2^64 */
	TWO,		/* 2: for BUF_INTO_HOLE */
};

struct bad_case {
	const char	*what;
	unsigned long	request;
	enum where	addr;
	enum count	npages;
	enum where	ptr;
	int		err;		/* expected: 0 or an errno */
};

/* Ranges every command that takes one must refuse, as commands x shapes. */
static const unsigned long range_commands[] = {
	HMM_DMIRROR_READ, HMM_DMIRROR_WRITE, HMM_DMIRROR_MIGRATE_TO_DEV,
	HMM_DMIRROR_MIGRATE_TO_SYS, HMM_DMIRROR_SNAPSHOT,
	HMM_DMIRROR_EXCLUSIVE, HMM_DMIRROR_CHECK_EXCLUSIVE,
};

static const struct bad_case bad_ranges[] = {
	{ "addr not page aligned", 0, BUF_PLUS_1, SOME, BUF, EINVAL },
	{ "npages 0", 0, BUF, ZERO, BUF, EINVAL },
	{ "byte size wraps", 0, BUF, WRAPS, BUF, EINVAL },
	{ "range passes 2^64", 0, BUF, TO_TOP, BUF, EINVAL },
	{ "beyond user space", 0, BEYOND, SOME, BUF, EINVAL },
};

/* ptr buffers every command that uses ptr must refuse. */
static const unsigned long ptr_commands[] = {
	HMM_DMIRROR_READ, HMM_DMIRROR_WRITE, HMM_DMIRROR_MIGRATE_TO_DEV,
	HMM_DMIRROR_SNAPSHOT, HMM_DMIRROR_EXCLUSIVE,
};

static const struct bad_case bad_ptrs[] = {
	{ "ptr is a kernel address", 0, BUF, SOME, KERNEL, EFAULT },
	{ "ptr unmapped", 0, BUF, SOME, HOLE, EFAULT },
};

/* What each command answers for memory it cannot use. */
static const struct bad_case bad_cases[] = {
	{ "READ into read-only ptr", HMM_DMIRROR_READ, BUF, SOME, RO, EFAULT },
	{ "SNAPSHOT into read-only ptr", HMM_DMIRROR_SNAPSHOT, BUF, SOME, RO,
	  EFAULT },
	{ "MIGRATE_TO_DEV into read-only ptr", HMM_DMIRROR_MIGRATE_TO_DEV, BUF,
	  SOME, RO, EFAULT },
	{ "EXCLUSIVE into read-only ptr", HMM_DMIRROR_EXCLUSIVE, BUF, SOME, RO,
	  EFAULT },
	{ "WRITE from PROT_NONE ptr", HMM_DMIRROR_WRITE, BUF, SOME, NONE,
	  EFAULT },

	{ "READ of a hole", HMM_DMIRROR_READ, HOLE, SOME, BUF, EFAULT },
	{ "READ of PROT_NONE", HMM_DMIRROR_READ, NONE, SOME, BUF, EFAULT },
	{ "READ into a hole", HMM_DMIRROR_READ, BUF_INTO_HOLE, TWO, BUF,
	  EFAULT },
	{ "WRITE to a hole", HMM_DMIRROR_WRITE, HOLE, SOME, BUF, EFAULT },
	{ "WRITE to read-only", HMM_DMIRROR_WRITE, RO, SOME, BUF, EPERM },
	{ "MIGRATE_TO_DEV of a hole", HMM_DMIRROR_MIGRATE_TO_DEV, HOLE, SOME,
	  BUF, EINVAL },
	{ "MIGRATE_TO_DEV into a hole", HMM_DMIRROR_MIGRATE_TO_DEV,
	  BUF_INTO_HOLE, TWO, BUF, EINVAL },
	{ "MIGRATE_TO_DEV of PROT_NONE", HMM_DMIRROR_MIGRATE_TO_DEV, NONE,
	  SOME, BUF, EINVAL },
	{ "MIGRATE_TO_DEV of shared memory", HMM_DMIRROR_MIGRATE_TO_DEV,
	  SHARED, SOME, BUF, ENOENT },
	{ "MIGRATE_TO_SYS of a hole", HMM_DMIRROR_MIGRATE_TO_SYS, HOLE, SOME,
	  BUF, EINVAL },
	{ "SNAPSHOT of a hole", HMM_DMIRROR_SNAPSHOT, HOLE, SOME, BUF, 0 },
	{ "EXCLUSIVE of a hole", HMM_DMIRROR_EXCLUSIVE, HOLE, SOME, BUF,
	  EFAULT },
	{ "EXCLUSIVE of read-only", HMM_DMIRROR_EXCLUSIVE, RO, SOME, BUF,
	  EPERM },
	{ "EXCLUSIVE of shared memory", HMM_DMIRROR_EXCLUSIVE, SHARED, SOME,
	  BUF, EOPNOTSUPP },
	{ "CHECK_EXCLUSIVE of a hole", HMM_DMIRROR_CHECK_EXCLUSIVE, HOLE, SOME,
	  BUF, 0 },
	{ "unknown command", _IOWR('H', 0x42, struct hmm_dmirror_cmd), BUF,
	  SOME, BUF, ENOTTY },
};

struct bad_setup {
	char	*buf;		/* NPAGES, then a hole of NPAGES */
	char	*ro;
	char	*none;
	char	*shared;
	char	*scratch;	/* NPAGES: where ptr points when it is BUF */
};

static uint64_t resolve(const struct bad_setup *s, enum where where)
{
	switch (where) {
	case BUF:		return (uintptr_t)s->buf;
	case BUF_PLUS_1:	return (uintptr_t)s->buf + 1;
	case HOLE:		return (uintptr_t)s->buf + NPAGES * page_size;
	case BUF_INTO_HOLE:	return (uintptr_t)s->buf + (NPAGES - 1) * page_size;
	case RO:		return (uintptr_t)s->ro;
	case NONE:		return (uintptr_t)s->none;
	case SHARED:		return (uintptr_t)s->shared;
	case BEYOND:		return BEYOND_USER;
	case KERNEL:		return KERNEL_PTR;
	}
	return 0;
}

static uint64_t resolve_npages(uint64_t addr, enum count count)
{
	switch (count) {
	case SOME:	return NPAGES;
	case ZERO:	return 0;
	case WRAPS:	return 1ULL << 52;
	case TO_TOP:	return (UINT64_MAX - addr) / page_size + 2;
	case TWO:	return 2;
	}
	return 0;
}

/*
 * Run one bad-argument case with @request: the errno of the header, and
 * nothing of buf moved to device memory, no byte of buf or shared changed.
 */
static void run_bad_case(struct __test_metadata *_metadata, int fd,
			 uint8_t local, const struct bad_setup *s,
			 const struct bad_case *c, unsigned long request)
{
	uint64_t addr = resolve(s, c->addr);
	struct hmm_dmirror_cmd cmd = {
		.addr = addr,
		.ptr = c->ptr == BUF ? (uintptr_t)s->scratch :
				       resolve(s, c->ptr),
		.npages = resolve_npages(addr, c->npages),
	};
	int err = ioctl(fd, request, &cmd) ? errno : 0;

	EXPECT_EQ(err, c->err) TH_LOG("%s (request %#lx): got %s", c->what,
				      request, strerror(err));
	EXPECT_EQ(count_kind(fd, s->buf, NPAGES, local), 0)
		TH_LOG("%s (request %#lx) moved pages", c->what, request);
	EXPECT_EQ(first_bad(s->buf, NPAGES, 1), -1)
		TH_LOG("%s (request %#lx) changed buf", c->what, request);
	EXPECT_EQ(first_bad(s->shared, NPAGES, 2), -1)
		TH_LOG("%s (request %#lx) changed shared", c->what, request);
}

/* Every command, every kind of bad input. */
TEST_F(driver, bad_arguments)
{
	struct bad_setup s;
	unsigned int i, j;

	s.buf = map(2 * NPAGES, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	s.ro = map(NPAGES, PROT_READ, MAP_PRIVATE);
	s.none = map(NPAGES, PROT_NONE, MAP_PRIVATE);
	s.shared = map(NPAGES, PROT_READ | PROT_WRITE, MAP_SHARED);
	s.scratch = map(NPAGES, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	ASSERT_TRUE(s.buf && s.ro && s.none && s.shared && s.scratch);
	ASSERT_EQ(munmap(s.buf + NPAGES * page_size, NPAGES * page_size), 0);
	fill(s.buf, NPAGES, 1);
	fill(s.shared, NPAGES, 2);
	fill(s.scratch, NPAGES, 3);

	for (i = 0; i < ARRAY_SIZE(range_commands); i++)
		for (j = 0; j < ARRAY_SIZE(bad_ranges); j++)
			run_bad_case(_metadata, self->fd, self->local, &s,
				     &bad_ranges[j], range_commands[i]);
	for (i = 0; i < ARRAY_SIZE(ptr_commands); i++)
		for (j = 0; j < ARRAY_SIZE(bad_ptrs); j++)
			run_bad_case(_metadata, self->fd, self->local, &s,
				     &bad_ptrs[j], ptr_commands[i]);
	for (i = 0; i < ARRAY_SIZE(bad_cases); i++)
		run_bad_case(_metadata, self->fd, self->local, &s,
			     &bad_cases[i], bad_cases[i].request);

	/* The command structure itself unreadable, RELEASE included. */
	EXPECT_EQ(ioctl(self->fd, HMM_DMIRROR_READ, NULL), -1);
	EXPECT_EQ(errno, EFAULT);
	EXPECT_EQ(ioctl(self->fd, HMM_DMIRROR_RELEASE, NULL), -1);
	EXPECT_EQ(errno, EFAULT);
	EXPECT_EQ(ioctl(self->fd, HMM_DMIRROR_SNAPSHOT, (void *)KERNEL_PTR),
		  -1);
	EXPECT_EQ(errno, EFAULT);
}

/* SNAPSHOT of what is not mapped says ERROR, page by page. */
TEST_F(driver, snapshot_of_hole)
{
	uint8_t snap[NPAGES];
	char *buf = map(NPAGES, PROT_NONE, MAP_PRIVATE);
	struct hmm_dmirror_cmd cmd = { 0 };
	unsigned long i;

	ASSERT_NE(buf, NULL);
	ASSERT_EQ(munmap(buf, NPAGES * page_size), 0);
	memset(snap, 0x5a, sizeof(snap));
	ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_SNAPSHOT, buf, snap, NPAGES,
			     &cmd), 0);
	EXPECT_EQ(cmd.cpages, NPAGES);
	for (i = 0; i < NPAGES; i++)
		ASSERT_EQ(snap[i], HMM_DMIRROR_PROT_ERROR);
}

/* cpages and faults count what the header says. */
TEST_F(driver, counters)
{
	char *buf, *mirror;
	struct hmm_dmirror_cmd cmd = { 0 };

	ASSERT_TRUE(buffers(NPAGES, 4, &buf, &mirror));

	/* The device maps nothing yet: one fault round, then none. */
	ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_READ, buf, mirror, NPAGES,
			     &cmd), 0);
	EXPECT_EQ(cmd.cpages, NPAGES);
	EXPECT_EQ(cmd.faults, 1);
	EXPECT_EQ(first_bad(mirror, NPAGES, 4), -1);
	ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_READ, buf, mirror, NPAGES,
			     &cmd), 0);
	EXPECT_EQ(cmd.faults, 0);
	/* Written by the CPU, so mapped writable: a write needs no fault. */
	ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_WRITE, buf, mirror, NPAGES,
			     &cmd), 0);
	EXPECT_EQ(cmd.cpages, NPAGES);
	EXPECT_EQ(cmd.faults, 0);

	/* Into the device and back: every page, then none. */
	ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, buf, mirror,
			     NPAGES, &cmd), 0);
	EXPECT_EQ(cmd.cpages, NPAGES);
	EXPECT_EQ(count_kind(self->fd, buf, NPAGES, self->local), NPAGES);
	/* The device mapped what it moved: reading it needs no fault. */
	memset(mirror, 0, NPAGES * page_size);
	ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_READ, buf, mirror, NPAGES,
			     &cmd), 0);
	EXPECT_EQ(cmd.faults, 0);
	EXPECT_EQ(first_bad(mirror, NPAGES, 4), -1);
	ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_SYS, buf, NULL,
			     NPAGES, &cmd), 0);
	EXPECT_EQ(cmd.cpages, NPAGES);
	ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_SYS, buf, NULL,
			     NPAGES, &cmd), 0);
	EXPECT_EQ(cmd.cpages, 0);
	EXPECT_EQ(count_kind(self->fd, buf, NPAGES, self->local), 0);
	EXPECT_EQ(first_bad(buf, NPAGES, 4), -1);
}

/*
 * The CPU takes device memory back under the per-VMA lock: no fault gives
 * up to be retried under the mmap_lock (vma_lock_retry stays put), and on
 * device-private memory each page reaches migrate_to_ram() once. Coherent
 * memory is mapped as normal pages: the CPU reads it without a fault.
 * THP is off for this process, so that khugepaged does not take its
 * mmap_lock for write meanwhile: that would fail the fault's trylock, and
 * the fault would retry, as it should then.
 */
TEST_F(driver, cpu_fault_back_without_retry)
{
	struct hmm_dmirror_cmd cmd = { 0 };
	long retries, faults;
	char *buf, *mirror;

	ASSERT_EQ(prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0), 0);
	ASSERT_TRUE(buffers(NPAGES, 5, &buf, &mirror));
	ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, buf, mirror,
			     NPAGES, &cmd), 0);
	ASSERT_EQ(cmd.cpages, NPAGES);

	/* The first read of /proc/vmstat sets up stdio's buffer. */
	ASSERT_GE(hmm_vmstat("vma_lock_retry"), 0)
		TH_LOG("no vma_lock_retry: CONFIG_PER_VMA_LOCK_STATS is off");
	retries = hmm_vmstat("vma_lock_retry");
	faults = hmm_vmstat("device_private_fault");
	EXPECT_EQ(first_bad(buf, NPAGES, 5), -1);
	EXPECT_EQ(hmm_vmstat("vma_lock_retry") - retries, 0);
	EXPECT_EQ(hmm_vmstat("device_private_fault") - faults,
		  variant->coherent ? 0 : NPAGES);
	EXPECT_EQ(count_kind(self->fd, buf, NPAGES, self->local),
		  variant->coherent ? NPAGES : 0);
}

/* Takes and drops the mmap_lock for write until told to stop. */
struct mmap_writer {
	char *page;		/* a page of its own to mprotect() */
	bool stop;
	unsigned long rounds;
	int error;		/* the first mprotect() errno */
};

static void *mmap_writer_loop(void *arg)
{
	struct mmap_writer *w = arg;

	while (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE)) {
		if (mprotect(w->page, page_size, PROT_READ) ||
		    mprotect(w->page, page_size, PROT_READ | PROT_WRITE)) {
			w->error = errno;
			break;
		}
		w->rounds++;
	}
	return NULL;
}

/*
 * The same while another thread keeps taking the mmap_lock for write: a
 * fault whose trylock of it fails under the VMA lock is retried under the
 * mmap_lock. Retried or not, every page comes back once, whole.
 */
TEST_F(driver, cpu_fault_back_against_mmap_writers)
{
	struct mmap_writer w = { 0 };
	struct hmm_dmirror_cmd cmd = { 0 };
	long retries, faults;
	char *buf, *mirror;
	pthread_t thread;
	int round;

	ASSERT_EQ(prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0), 0);
	w.page = map(1, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	ASSERT_NE(w.page, NULL);
	ASSERT_TRUE(buffers(NPAGES, 6, &buf, &mirror));
	ASSERT_GE(hmm_vmstat("vma_lock_retry"), 0);
	retries = hmm_vmstat("vma_lock_retry");
	faults = hmm_vmstat("device_private_fault");
	ASSERT_EQ(pthread_create(&thread, NULL, mmap_writer_loop, &w), 0);
	for (round = 0; round < 8; round++) {
		ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, buf,
				     mirror, NPAGES, &cmd), 0);
		ASSERT_EQ(cmd.cpages, NPAGES);
		EXPECT_EQ(first_bad(buf, NPAGES, 6), -1) TH_LOG("round %d", round);
		EXPECT_EQ(count_kind(self->fd, buf, NPAGES, self->local),
			  variant->coherent ? NPAGES : 0);
		/* The CPU does not take coherent memory back: the driver does. */
		ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_SYS, buf,
				     NULL, NPAGES, &cmd), 0);
		EXPECT_EQ(cmd.cpages, variant->coherent ? NPAGES : 0);
	}
	__atomic_store_n(&w.stop, true, __ATOMIC_RELEASE);
	ASSERT_EQ(pthread_join(thread, NULL), 0);
	EXPECT_EQ(w.error, 0);
	EXPECT_GT(w.rounds, 0);
	EXPECT_EQ(hmm_vmstat("device_private_fault") - faults,
		  variant->coherent ? 0 : 8 * NPAGES);
	TH_LOG("%lu mprotect pairs, %ld faults retried under the mmap_lock",
	       w.rounds, hmm_vmstat("vma_lock_retry") - retries);
}

/* Exclusive access lasts until the CPU touches the page. */
TEST_F(driver, exclusive_until_cpu_touch)
{
	char *buf, *mirror;
	struct hmm_dmirror_cmd cmd = { 0 };

	ASSERT_TRUE(buffers(NPAGES, 5, &buf, &mirror));
	ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_EXCLUSIVE, buf, mirror,
			     NPAGES, &cmd), 0);
	EXPECT_EQ(cmd.cpages, NPAGES);
	EXPECT_EQ(first_bad(mirror, NPAGES, 5), -1);
	/* Twice in a row is fine: the first grant is simply renewed. */
	ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_EXCLUSIVE, buf, mirror,
			     NPAGES, &cmd), 0);
	EXPECT_EQ(device_cmd(self->fd, HMM_DMIRROR_CHECK_EXCLUSIVE, buf, NULL,
			     NPAGES, NULL), -EPERM);
	/* A CPU read of every page takes them all back. */
	EXPECT_EQ(first_bad(buf, NPAGES, 5), -1);
	EXPECT_EQ(device_cmd(self->fd, HMM_DMIRROR_CHECK_EXCLUSIVE, buf, NULL,
			     NPAGES, NULL), 0);
}

struct exclusive_loop {
	int fd;
	char *buf, *mirror;
	bool stop;		/* set by the test, read with __atomic */
	int error;
};

/* Pages of l->buf the racing thread keeps renewing exclusive access to. */
#define RENEWED		8UL

/*
 * Renew exclusive access to the first RENEWED pages of l->buf until told
 * to stop. EBUSY is a documented answer here (the forks keep changing the
 * range); any other error is kept for the test.
 */
static void *exclusive_loop(void *arg)
{
	struct exclusive_loop *l = arg;
	int err;

	while (!__atomic_load_n(&l->stop, __ATOMIC_ACQUIRE) && !l->error) {
		err = device_cmd(l->fd, HMM_DMIRROR_EXCLUSIVE, l->buf,
				 l->mirror, RENEWED, NULL);
		if (err != -EBUSY)
			l->error = err;
	}
	return NULL;
}

/*
 * fork() of memory the device holds exclusive. In 6.12 (and mainline to
 * date) fork restores such an entry in the parent only if it can trylock
 * the folio, and otherwise fails the whole fork with ENOMEM: a device
 * renewing its access (which locks the folio) while the process forks
 * made fork fail at random. Ours restores it without the lock: every fork
 * succeeds, every child sees the data, and the device has lost its
 * exclusive access to the parent's pages.
 */
TEST_F_TIMEOUT(driver, fork_with_exclusive_entries, 300)
{
	struct exclusive_loop l = { .fd = self->fd };
	int round, status;
	pthread_t thread;
	pid_t pid;

	ASSERT_TRUE(buffers(NPAGES, 40, &l.buf, &l.mirror));
	ASSERT_EQ(device_cmd(l.fd, HMM_DMIRROR_EXCLUSIVE, l.buf, l.mirror,
			     NPAGES, NULL), 0);
	/* Without a racing grant: the fork itself ends exclusive access. */
	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid)
		_exit(first_bad(l.buf, NPAGES, 40) == -1 ? 0 : 1);
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status));
	EXPECT_EQ(device_cmd(l.fd, HMM_DMIRROR_CHECK_EXCLUSIVE, l.buf, NULL,
			     NPAGES, NULL), 0);

	ASSERT_EQ(pthread_create(&thread, NULL, exclusive_loop, &l), 0);
	for (round = 0; round < 20; round++) {
		pid = fork();
		if (!pid)
			_exit(first_bad(l.buf, NPAGES, 40) == -1 ? 0 : 1);
		EXPECT_GE(pid, 0) TH_LOG("fork %d: %s", round, strerror(errno));
		if (pid < 0)
			break;
		ASSERT_EQ(waitpid(pid, &status, 0), pid);
		EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status));
	}
	__atomic_store_n(&l.stop, true, __ATOMIC_RELEASE);
	ASSERT_EQ(pthread_join(thread, NULL), 0);
	EXPECT_EQ(l.error, 0);
	EXPECT_EQ(first_bad(l.buf, NPAGES, 40), -1);
}

/*
 * make_device_exclusive() takes private anonymous pages only: shared file
 * memory and hugetlb pages are refused with EOPNOTSUPP and left as they
 * were; a private file mapping is fine (the write fault gives the process
 * anonymous copies) and the file keeps its data.
 */
TEST_F(driver, exclusive_refuses_file_and_hugetlb)
{
	const size_t huge = 2UL << 20;
	char *mirror = map(huge / page_size, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE);
	char *shared, *private, *hp, count[32];
	int fd = memfd_create("exclusive", 0);
	FILE *nr;
	long before = -1;

	ASSERT_NE(mirror, NULL);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(ftruncate(fd, NPAGES * page_size), 0);
	shared = mmap(NULL, NPAGES * page_size, PROT_READ | PROT_WRITE,
		      MAP_SHARED, fd, 0);
	ASSERT_NE(shared, MAP_FAILED);
	fill(shared, NPAGES, 41);
	EXPECT_EQ(device_cmd(self->fd, HMM_DMIRROR_EXCLUSIVE, shared, mirror,
			     NPAGES, NULL), -EOPNOTSUPP);
	EXPECT_EQ(device_cmd(self->fd, HMM_DMIRROR_CHECK_EXCLUSIVE, shared,
			     NULL, NPAGES, NULL), 0);

	private = mmap(NULL, NPAGES * page_size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE, fd, 0);
	ASSERT_NE(private, MAP_FAILED);
	EXPECT_EQ(device_cmd(self->fd, HMM_DMIRROR_EXCLUSIVE, private, mirror,
			     NPAGES, NULL), 0);
	EXPECT_EQ(first_bad(mirror, NPAGES, 41), -1);
	fill(private, NPAGES, 42);
	EXPECT_EQ(first_bad(shared, NPAGES, 41), -1);
	munmap(private, NPAGES * page_size);
	munmap(shared, NPAGES * page_size);
	close(fd);

	nr = fopen("/proc/sys/vm/nr_hugepages", "r+");
	ASSERT_NE(nr, NULL);
	ASSERT_EQ(fscanf(nr, "%ld", &before), 1);
	snprintf(count, sizeof(count), "%ld", before + 1);
	rewind(nr);
	ASSERT_GT(fputs(count, nr), 0);
	fclose(nr);
	hp = mmap(NULL, huge, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	ASSERT_NE(hp, MAP_FAILED) TH_LOG("no hugetlb page: %s",
					 strerror(errno));
	fill(hp, huge / page_size, 43);
	EXPECT_EQ(device_cmd(self->fd, HMM_DMIRROR_EXCLUSIVE, hp, mirror,
			     huge / page_size, NULL), -EOPNOTSUPP);
	EXPECT_EQ(first_bad(hp, huge / page_size, 43), -1);
	munmap(hp, huge);
	nr = fopen("/proc/sys/vm/nr_hugepages", "w");
	ASSERT_NE(nr, NULL);
	fprintf(nr, "%ld", before);
	fclose(nr);
}

/*
 * A range that is partly shared memory: the private part moves, the
 * shared part cannot, the command says ENOENT, and every byte is intact.
 */
TEST_F(driver, partial_migration_keeps_data)
{
	char *buf = map(3 * NPAGES, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	char *mirror = map(3 * NPAGES, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	char *middle;

	ASSERT_TRUE(buf && mirror);
	middle = mmap(buf + NPAGES * page_size, NPAGES * page_size,
		      PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	ASSERT_NE(middle, MAP_FAILED);
	fill(buf, 3 * NPAGES, 6);

	EXPECT_EQ(device_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, buf, mirror,
			     3 * NPAGES, NULL), -ENOENT);
	EXPECT_EQ(count_kind(self->fd, buf, NPAGES, self->local), NPAGES);
	EXPECT_EQ(count_kind(self->fd, middle, NPAGES, self->local), 0);
	EXPECT_EQ(count_kind(self->fd, middle + NPAGES * page_size, NPAGES,
			     self->local), NPAGES);
	EXPECT_EQ(first_bad(buf, 3 * NPAGES, 6), -1);
}

/* The whole range is checked first: a hole at the end moves nothing. */
TEST_F(driver, migration_checks_before_moving)
{
	char *buf = map(2 * NPAGES, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	char *mirror = map(2 * NPAGES, PROT_READ | PROT_WRITE, MAP_PRIVATE);

	ASSERT_TRUE(buf && mirror);
	fill(buf, NPAGES, 7);
	ASSERT_EQ(munmap(buf + NPAGES * page_size, NPAGES * page_size), 0);

	EXPECT_EQ(device_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, buf, mirror,
			     2 * NPAGES, NULL), -EINVAL);
	EXPECT_EQ(count_kind(self->fd, buf, NPAGES, self->local), 0);
	EXPECT_EQ(first_bad(buf, NPAGES, 7), -1);
}

/* Device memory grows past its first chunk on demand. */
TEST_F(driver, device_memory_grows)
{
	char *buf, *mirror;
	struct hmm_dmirror_cmd cmd = { 0 };

	ASSERT_TRUE(buffers(GROW_NPAGES, 8, &buf, &mirror));
	ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, buf, mirror,
			     GROW_NPAGES, &cmd), 0);
	EXPECT_EQ(cmd.cpages, GROW_NPAGES);
	EXPECT_EQ(first_bad(mirror, GROW_NPAGES, 8), -1);
	EXPECT_EQ(count_kind(self->fd, buf, GROW_NPAGES, self->local),
		  GROW_NPAGES);
	EXPECT_EQ(first_bad(buf, GROW_NPAGES, 8), -1);
}

/*
 * Close the fixture's file, open a fresh one in its place, and expect the
 * NPAGES pages at @buf home in system memory (the close evicted them)
 * before the CPU has touched them.
 */
static void reopen_expect_home(struct __test_metadata *_metadata, int *fd,
			       int device, char *buf)
{
	uint8_t snap[NPAGES];
	unsigned long i;

	ASSERT_EQ(close(*fd), 0);
	*fd = device_open(device);
	ASSERT_GE(*fd, 0);
	ASSERT_EQ(device_cmd(*fd, HMM_DMIRROR_SNAPSHOT, buf, snap, NPAGES,
			     NULL), 0);
	for (i = 0; i < NPAGES; i++)
		ASSERT_EQ(snap[i], HMM_DMIRROR_PROT_WRITE) TH_LOG("page %lu", i);
}

/*
 * Closing the file brings its pages home: a fresh file sees them in
 * system memory before the CPU has touched them, and the data is intact.
 */
TEST_F(driver, close_evicts)
{
	char *buf, *mirror;

	ASSERT_TRUE(buffers(NPAGES, 9, &buf, &mirror));
	ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, buf, mirror,
			     NPAGES, NULL), 0);
	ASSERT_EQ(count_kind(self->fd, buf, NPAGES, self->local), NPAGES);

	reopen_expect_home(_metadata, &self->fd, variant->device, buf);
	EXPECT_EQ(first_bad(buf, NPAGES, 9), -1);
}

/*
 * The pages of two files interleaved in device memory, one page each in
 * turn: closing one file brings its pages home, scattered as they are
 * (the driver names them to migrate_device_pfns()), and leaves the other
 * file's on the device. Both keep their data.
 */
TEST_F(driver, close_evicts_scattered_pages)
{
	int other = device_open(variant->device);
	char *buf, *mirror, *obuf, *omirror;
	unsigned long i;

	ASSERT_GE(other, 0);
	ASSERT_TRUE(buffers(NPAGES, 33, &buf, &mirror));
	ASSERT_TRUE(buffers(NPAGES, 34, &obuf, &omirror));
	for (i = 0; i < NPAGES; i++) {
		ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV,
				     buf + i * page_size, mirror, 1, NULL), 0);
		ASSERT_EQ(device_cmd(other, HMM_DMIRROR_MIGRATE_TO_DEV,
				     obuf + i * page_size, omirror, 1, NULL), 0);
	}
	ASSERT_EQ(count_kind(self->fd, buf, NPAGES, self->local), NPAGES);

	reopen_expect_home(_metadata, &self->fd, variant->device, buf);
	EXPECT_EQ(count_kind(other, obuf, NPAGES, self->local), NPAGES);
	EXPECT_EQ(first_bad(buf, NPAGES, 33), -1);
	EXPECT_EQ(first_bad(obuf, NPAGES, 34), -1);
	EXPECT_EQ(close(other), 0);
}

/*
 * HMM_DMIRROR_RELEASE (the path module unload takes) brings home every
 * page of the device, also those another file placed.
 */
TEST_F(driver, release_evicts_every_page)
{
	int other = device_open(variant->device);
	char *buf, *mirror;

	ASSERT_GE(other, 0);
	ASSERT_TRUE(buffers(NPAGES, 10, &buf, &mirror));
	ASSERT_EQ(device_cmd(other, HMM_DMIRROR_MIGRATE_TO_DEV, buf, mirror,
			     NPAGES, NULL), 0);
	ASSERT_EQ(count_kind(self->fd, buf, NPAGES, self->local), NPAGES);

	ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_RELEASE, NULL, NULL, 0,
			     NULL), 0);
	EXPECT_EQ(count_kind(self->fd, buf, NPAGES, self->local), 0);
	EXPECT_EQ(first_bad(buf, NPAGES, 10), -1);
	/* The device maps memory again when it next needs it. */
	ASSERT_EQ(device_cmd(other, HMM_DMIRROR_MIGRATE_TO_DEV, buf, mirror,
			     NPAGES, NULL), 0);
	EXPECT_EQ(count_kind(self->fd, buf, NPAGES, self->local), NPAGES);
	EXPECT_EQ(first_bad(buf, NPAGES, 10), -1);
	close(other);
}

/*
 * Device memory another file holds exclusively (a device-exclusive entry
 * in the CPU page table instead of a mapping) still goes home on RELEASE,
 * with its data, and the CPU can use it afterwards.
 */
TEST_F(driver, release_evicts_exclusive_pages)
{
	int other = device_open(variant->device);
	char *buf, *mirror;

	ASSERT_GE(other, 0);
	ASSERT_TRUE(buffers(NPAGES, 12, &buf, &mirror));
	ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, buf, mirror,
			     NPAGES, NULL), 0);
	ASSERT_EQ(device_cmd(other, HMM_DMIRROR_EXCLUSIVE, buf, mirror,
			     NPAGES, NULL), 0);
	EXPECT_EQ(first_bad(mirror, NPAGES, 12), -1);

	ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_RELEASE, NULL, NULL, 0,
			     NULL), 0);
	EXPECT_EQ(count_kind(self->fd, buf, NPAGES, self->local), 0);
	EXPECT_EQ(first_bad(buf, NPAGES, 12), -1);
	close(other);
}

/* RELEASE in a loop on its own file until told to stop. */
struct releaser {
	int fd;
	bool stop;		/* set by the test, read with __atomic */
	bool started;		/* set by the thread, read with __atomic */
	unsigned long rounds;
	int error;		/* first unexpected errno, or 0 */
};

static void *release_loop(void *arg)
{
	struct releaser *r = arg;
	int ret;

	__atomic_store_n(&r->started, true, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		ret = device_cmd(r->fd, HMM_DMIRROR_RELEASE, NULL, NULL, 0, NULL);
		if (ret && !r->error)
			r->error = ret;
		r->rounds++;
		usleep(20000);	/* let some migrations finish between removals */
	}
	return NULL;
}

/*
 * RELEASE retires and removes device memory while migrations fill it. A
 * migration window must never wait for new device memory while it holds
 * pages of memory being removed: the removal waits for those pages. Every
 * migration ends (in success, or ENOMEM/ENOENT when memory went away under
 * it), and every byte is where the CPU can read it after each round.
 * Under TCG on a loaded host the 100 rounds can take longer than the
 * default 30 s, hence the longer time limit.
 */
TEST_F_TIMEOUT(driver, release_races_migration, 180)
{
	struct releaser r = { .fd = device_open(variant->device) };
	unsigned long npages = 4 * NPAGES, round, failed = 0;
	char *buf, *mirror;
	pthread_t thread;
	int ret;

	ASSERT_GE(r.fd, 0);
	ASSERT_TRUE(buffers(npages, 11, &buf, &mirror));
	ASSERT_EQ(pthread_create(&thread, NULL, release_loop, &r), 0);
	/*
	 * The race is the point: on a slow guest the migrations below could
	 * all be done before the thread first runs.
	 */
	while (!__atomic_load_n(&r.started, __ATOMIC_ACQUIRE))
		sched_yield();
	for (round = 0; round < 100; round++) {
		ret = device_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, buf,
				 mirror, npages, NULL);
		if (ret != -ENOMEM && ret != -ENOENT)
			ASSERT_EQ(ret, 0);
		failed += ret != 0;
		ASSERT_EQ(first_bad(buf, npages, 11), -1) TH_LOG("round %lu", round);
	}
	__atomic_store_n(&r.stop, true, __ATOMIC_RELEASE);
	ASSERT_EQ(pthread_join(thread, NULL), 0);
	EXPECT_EQ(r.error, 0);
	EXPECT_LT(0, r.rounds);
	TH_LOG("%lu releases, %lu of 100 migrations lost memory to one",
	       r.rounds, failed);
	close(r.fd);
}

/*
 * A child migrates a buffer to the device, has a second device take it
 * exclusive and exits, while RELEASE evicts the device's memory. On a
 * device-coherent device the eviction walks the rmap of pages whose only
 * users are device-exclusive entries of the exiting process; the process
 * zaps those entries and frees its anon_vmas as the walk goes. Each child
 * reports by its exit status; a kernel splat fails the run on its own.
 */
static int exclusive_holder(int device)
{
	int fd = device_open(device), other = device_open(device);
	int ret = 0;
	char *buf, *mirror;

	if (fd < 0 || other < 0 || !buffers(NPAGES, 13, &buf, &mirror))
		return 2;
	ret = device_cmd(fd, HMM_DMIRROR_MIGRATE_TO_DEV, buf, mirror, NPAGES,
			 NULL);
	if (ret == -ENOMEM || ret == -ENOENT)
		return 0;	/* memory went away under the migration */
	if (ret)
		return 3;
	ret = device_cmd(other, HMM_DMIRROR_EXCLUSIVE, buf, mirror, NPAGES,
			 NULL);
	if (ret == -EBUSY)
		return 0;	/* the eviction held a page; the header allows it */
	if (ret)
		return 4;
	return first_bad(mirror, NPAGES, 13) == -1 ? 0 : 5;
}

TEST_F_TIMEOUT(driver, release_races_exit_of_exclusive_holder, 180)
{
	struct releaser r = { .fd = device_open(variant->device) };
	pthread_t thread;
	int round, status;
	pid_t child;

	ASSERT_GE(r.fd, 0);
	ASSERT_EQ(pthread_create(&thread, NULL, release_loop, &r), 0);
	for (round = 0; round < 40; round++) {
		child = fork();
		ASSERT_GE(child, 0);
		if (child == 0)
			_exit(exclusive_holder(variant->device));
		ASSERT_EQ(waitpid(child, &status, 0), child);
		ASSERT_TRUE(WIFEXITED(status));
		ASSERT_EQ(WEXITSTATUS(status), 0) TH_LOG("round %d", round);
	}
	__atomic_store_n(&r.stop, true, __ATOMIC_RELEASE);
	ASSERT_EQ(pthread_join(thread, NULL), 0);
	EXPECT_EQ(r.error, 0);
	EXPECT_LT(0, r.rounds);
	TH_LOG("%lu releases while 40 holders exited", r.rounds);
	close(r.fd);
}

/* ---- 2 MiB device pages ---- */

#define THP_PAGES	512UL	/* base pages under one PMD */

/*
 * A buffer of one PMD's pages at a 2 MiB boundary, advised for THP, filled
 * with pattern @seed when @populate (the fault path then maps a THP).
 */
static char *thp_buffer(unsigned long seed, bool populate)
{
	size_t size = THP_PAGES * page_size;
	char *raw = map(2 * THP_PAGES, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	char *buf;

	if (!raw)
		return NULL;
	buf = (char *)(((uintptr_t)raw + size - 1) & ~(size - 1));
	if (madvise(buf, size, MADV_HUGEPAGE))
		return NULL;
	if (populate)
		fill(buf, THP_PAGES, seed);
	return buf;
}

/* How many snapshot bytes of [addr, +npages) are exactly @want. */
static unsigned long count_snap(int fd, void *addr, unsigned long npages,
				uint8_t want)
{
	return count_snap_bits(fd, addr, npages, 0xff, want);
}

/* Is every byte of [buf, +npages) zero? */
static bool all_zero(const char *buf, unsigned long npages)
{
	unsigned long i;

	for (i = 0; i < npages * page_size; i++)
		if (buf[i])
			return false;
	return true;
}

/*
 * An empty 2 MiB range advised for THP (thp_buffer()); with @zero_page,
 * read once, so that it maps the huge zero page.
 */
static char *empty_thp_buffer(bool zero_page)
{
	char *buf = thp_buffer(0, false);

	if (buf && zero_page && !all_zero(buf, 1))
		return NULL;
	return buf;
}

/*
 * What a snapshot shows for a page of a THP moved to this device: on the
 * device-private device the THP moves whole, mapped by one device-private
 * PMD; the device-coherent device moves it page by page.
 */
static uint8_t thp_on_device(bool coherent, uint8_t local)
{
	return local | HMM_DMIRROR_PROT_WRITE |
	       (coherent ? 0 : HMM_DMIRROR_PROT_PMD);
}

#define SN_THP	(HMM_DMIRROR_PROT_WRITE | HMM_DMIRROR_PROT_PMD)

/*
 * A THP goes to the device and comes back to a CPU access with its data:
 * whole both ways on the private device (one device-private PMD, then a
 * THP again), page by page on the coherent one (used in place).
 */
TEST_F(driver, thp_moves_whole)
{
	char *buf = thp_buffer(21, true);
	char *mirror = map(THP_PAGES, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	struct hmm_dmirror_cmd cmd = {};

	ASSERT_TRUE(buf && mirror);
	ASSERT_EQ(count_snap(self->fd, buf, THP_PAGES, SN_THP), THP_PAGES);
	ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, buf, mirror,
			     THP_PAGES, &cmd), 0);
	EXPECT_EQ(cmd.cpages, THP_PAGES);
	EXPECT_EQ(first_bad(mirror, THP_PAGES, 21), -1);
	EXPECT_EQ(count_snap(self->fd, buf, THP_PAGES,
			     thp_on_device(variant->coherent, self->local)),
		  THP_PAGES);
	EXPECT_EQ(first_bad(buf, THP_PAGES, 21), -1);
	EXPECT_EQ(count_snap(self->fd, buf, THP_PAGES,
			     variant->coherent ?
			     (self->local | HMM_DMIRROR_PROT_WRITE) : SN_THP),
		  THP_PAGES);
}

/*
 * An empty 2 MiB range, and one reading as the huge zero page, move as one
 * 2 MiB device page on the private device, and read back as zeroes.
 */
TEST_F(driver, thp_empty_and_zero_move_whole)
{
	char *mirror = map(THP_PAGES, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	int zero_page;

	ASSERT_NE(mirror, NULL);
	for (zero_page = 0; zero_page < 2; zero_page++) {
		char *buf = empty_thp_buffer(zero_page);

		ASSERT_NE(buf, NULL);
		ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, buf,
				     mirror, THP_PAGES, NULL), 0);
		EXPECT_TRUE(all_zero(mirror, THP_PAGES));
		EXPECT_EQ(count_snap(self->fd, buf, THP_PAGES,
				     thp_on_device(variant->coherent,
						   self->local)),
			  THP_PAGES) TH_LOG("zero page: %d", zero_page);
		EXPECT_TRUE(all_zero(buf, THP_PAGES));
	}
}

/*
 * HMM_DMIRROR_FLAG_FAIL_ALLOC: the next 2 MiB device page is not to be
 * had, and the THP moves page by page instead, data intact; the flag
 * clears after that one use. An unknown flag is EINVAL.
 */
TEST_F(driver, thp_fail_alloc_falls_back)
{
	char *buf = thp_buffer(22, true);
	char *mirror = map(THP_PAGES, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	char *again = thp_buffer(24, true);

	ASSERT_TRUE(buf && mirror && again);
	EXPECT_EQ(device_cmd(self->fd, HMM_DMIRROR_FLAGS, NULL, NULL, 2, NULL),
		  -EINVAL);
	ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_FLAGS, NULL, NULL,
			     HMM_DMIRROR_FLAG_FAIL_ALLOC, NULL), 0);
	ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, buf, mirror,
			     THP_PAGES, NULL), 0);
	EXPECT_EQ(first_bad(mirror, THP_PAGES, 22), -1);
	EXPECT_EQ(count_snap(self->fd, buf, THP_PAGES,
			     self->local | HMM_DMIRROR_PROT_WRITE), THP_PAGES);
	EXPECT_EQ(first_bad(buf, THP_PAGES, 22), -1);
	/* Used up: the next THP moves whole again. */
	ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, again,
			     mirror, THP_PAGES, NULL), 0);
	EXPECT_EQ(count_snap(self->fd, again, THP_PAGES,
			     thp_on_device(variant->coherent, self->local)),
		  THP_PAGES);
	EXPECT_EQ(first_bad(again, THP_PAGES, 24), -1);
}

/*
 * A THP shared with a child (fork, and neither has written since) that
 * finds no 2 MiB device page: it is split where it is, unmapped in both
 * processes, and moves page by page, read-only as it is shared. Both
 * processes then read its data back.
 */
TEST_F(driver, thp_fail_alloc_shared_with_child)
{
	char *buf = thp_buffer(32, true);
	char *mirror = map(THP_PAGES, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	int status, go[2];
	pid_t pid;
	char c = 0;

	ASSERT_TRUE(buf && mirror);
	ASSERT_EQ(pipe(go), 0);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid) {
		close(go[1]);
		if (read(go[0], &c, 1) != 1)
			_exit(3);
		_exit(first_bad(buf, THP_PAGES, 32) == -1 ? 0 : 1);
	}
	close(go[0]);
	ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_FLAGS, NULL, NULL,
			     HMM_DMIRROR_FLAG_FAIL_ALLOC, NULL), 0);
	EXPECT_EQ(device_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, buf, mirror,
			     THP_PAGES, NULL), 0);
	EXPECT_EQ(first_bad(mirror, THP_PAGES, 32), -1);
	EXPECT_EQ(count_snap(self->fd, buf, THP_PAGES,
			     self->local | HMM_DMIRROR_PROT_READ), THP_PAGES);
	ASSERT_EQ(write(go[1], &c, 1), 1);
	close(go[1]);
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(WEXITSTATUS(status), 0);
	EXPECT_EQ(first_bad(buf, THP_PAGES, 32), -1);
}

/*
 * Half of a 2 MiB device page unmapped: the rest of it still comes back to
 * a CPU access, with its data.
 */
TEST_F(driver, thp_partial_munmap_then_touch)
{
	char *buf = thp_buffer(25, true);
	char *mirror = map(THP_PAGES, PROT_READ | PROT_WRITE, MAP_PRIVATE);

	ASSERT_TRUE(buf && mirror);
	ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, buf, mirror,
			     THP_PAGES, NULL), 0);
	ASSERT_EQ(munmap(buf + THP_PAGES / 2 * page_size,
			 THP_PAGES / 2 * page_size), 0);
	EXPECT_EQ(first_bad(buf, THP_PAGES / 2, 25), -1);
	EXPECT_EQ(count_snap(self->fd, buf, THP_PAGES / 2,
			     variant->coherent ?
			     (self->local | HMM_DMIRROR_PROT_WRITE) :
			     HMM_DMIRROR_PROT_WRITE), THP_PAGES / 2);
}

/*
 * After fork both processes see a 2 MiB device page's data; a write in
 * the child shows in the child only.
 */
TEST_F(driver, thp_fork_both_see_data)
{
	char *buf = thp_buffer(26, true);
	char *mirror = map(THP_PAGES, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	int status;
	pid_t pid;

	ASSERT_TRUE(buf && mirror);
	ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, buf, mirror,
			     THP_PAGES, NULL), 0);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid) {
		if (first_bad(buf, THP_PAGES, 26) != -1)
			_exit(1);
		fill(buf, THP_PAGES, 27);
		_exit(first_bad(buf, THP_PAGES, 27) == -1 ? 0 : 2);
	}
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(WEXITSTATUS(status), 0);
	EXPECT_EQ(first_bad(buf, THP_PAGES, 26), -1);
}

/*
 * HMM_DMIRROR_MIGRATE_TO_SYS counts the pages of a 2 MiB device page and
 * brings it back as a THP; closing the file and HMM_DMIRROR_RELEASE evict
 * one with its data.
 */
TEST_F(driver, thp_back_close_release)
{
	char *buf = thp_buffer(28, true);
	char *mirror = map(THP_PAGES, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	uint8_t home = variant->coherent ? HMM_DMIRROR_PROT_WRITE : SN_THP;
	struct hmm_dmirror_cmd cmd = {};

	ASSERT_TRUE(buf && mirror);
	ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, buf, mirror,
			     THP_PAGES, NULL), 0);
	ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_SYS, buf, NULL,
			     THP_PAGES, &cmd), 0);
	EXPECT_EQ(cmd.cpages, THP_PAGES);
	EXPECT_EQ(count_snap(self->fd, buf, THP_PAGES, home), THP_PAGES);

	ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, buf, mirror,
			     THP_PAGES, NULL), 0);
	ASSERT_EQ(close(self->fd), 0);
	self->fd = device_open(variant->device);
	ASSERT_GE(self->fd, 0);
	EXPECT_EQ(count_snap(self->fd, buf, THP_PAGES, home), THP_PAGES);

	ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, buf, mirror,
			     THP_PAGES, NULL), 0);
	ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_RELEASE, NULL, NULL, 0,
			     NULL), 0);
	EXPECT_EQ(count_snap(self->fd, buf, THP_PAGES, home), THP_PAGES);
	EXPECT_EQ(first_bad(buf, THP_PAGES, 28), -1);
}

/*
 * The pages the shrinker of device @device counts (the stores kept by its
 * free blocks), summed over the nodes of its debugfs count file, which
 * lists nothing when there are none; -1 if the device has no shrinker.
 */
/* ---- Events in /proc/vmstat, and the tracepoints that add up to them ---- */

/*
 * Read the events into @before and start tracing every HMM event afresh:
 * expect_events() then checks both from here on.
 */
static void events_begin(struct __test_metadata *_metadata,
			 struct hmm_events *before)
{
	ASSERT_TRUE(hmm_trace_start(&trace, "hmm-driver-tests"))
		TH_LOG("tracefs instance %s: %s", trace.dir, strerror(errno));
	hmm_events_read(before);
}

/*
 * Every event moved by exactly @want since @before (events not named in
 * @want by 0), and the trace since then adds up to @want too; each that
 * did not is named.
 */
static void expect_events(struct __test_metadata *_metadata,
			  const struct hmm_events *before, const long *want)
{
	struct hmm_events now, traced;
	const char *text;
	int ev;

	hmm_events_read(&now);
	text = hmm_trace_read(&trace);
	ASSERT_NE(text, NULL)
		TH_LOG("%s/trace: unreadable, or events were lost", trace.dir);
	hmm_trace_events(text, &traced);
	for (ev = 0; ev < HMM_EV_COUNT; ev++) {
		const char *name = hmm_event_name((enum hmm_event)ev);

		ASSERT_GE(before->v[ev], 0)
			TH_LOG("%s: not in /proc/vmstat", name);
		EXPECT_EQ(now.v[ev] - before->v[ev], want[ev])
			TH_LOG("%s", name);
		EXPECT_EQ(traced.v[ev], want[ev])
			TH_LOG("%s, added up from the trace", name);
	}
}

/* @want: @nr pages collected and moved, counted in direction @dir too. */
static void want_moved(long *want, enum hmm_event dir, long nr)
{
	want[HMM_EV_COLLECTED] += nr;
	want[HMM_EV_SUCCESS] += nr;
	want[dir] += nr;
}

/* The "moved into" and "moved out of" events of this test's device. */
#define EV_TO(coherent)		((coherent) ? HMM_EV_TO_COHERENT : HMM_EV_TO_PRIVATE)
#define EV_FROM(coherent)	((coherent) ? HMM_EV_FROM_COHERENT : HMM_EV_FROM_PRIVATE)

/*
 * Pages in and out, 4 KiB at a time: each collected and moved once, in
 * the device's direction; then a CPU access to one page of the private
 * device faults once and brings back that page alone (the coherent device
 * is CPU memory: no fault).
 */
TEST_F(driver, events_move_pages)
{
	long want[HMM_EV_COUNT] = {};
	struct hmm_events before;
	char *buf, *mirror;

	ASSERT_TRUE(buffers(NPAGES, 31, &buf, &mirror));
	events_begin(_metadata, &before);
	ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, buf, mirror,
			     NPAGES, NULL), 0);
	want_moved(want, EV_TO(variant->coherent), NPAGES);
	expect_events(_metadata, &before, want);

	memset(want, 0, sizeof(want));
	events_begin(_metadata, &before);
	EXPECT_EQ(first_bad(buf, 1, 31), -1);
	if (!variant->coherent) {
		want[HMM_EV_FAULT] = 1;
		want_moved(want, HMM_EV_FROM_PRIVATE, 1);
	}
	expect_events(_metadata, &before, want);

	memset(want, 0, sizeof(want));
	events_begin(_metadata, &before);
	ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_SYS, buf, NULL,
			     NPAGES, NULL), 0);
	want_moved(want, EV_FROM(variant->coherent), NPAGES - !variant->coherent);
	expect_events(_metadata, &before, want);
	EXPECT_EQ(first_bad(buf, NPAGES, 31), -1);
}

/* An empty range moves too: a page of device memory for each hole. */
TEST_F(driver, events_fill_holes)
{
	char *buf = map(NPAGES, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	char *mirror = map(NPAGES, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	long want[HMM_EV_COUNT] = {};
	struct hmm_events before;

	ASSERT_TRUE(buf && mirror);
	events_begin(_metadata, &before);
	ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, buf, mirror,
			     NPAGES, NULL), 0);
	want_moved(want, EV_TO(variant->coherent), NPAGES);
	expect_events(_metadata, &before, want);
}

/*
 * An empty 2 MiB range, and one reading as the huge zero page, filled: on
 * the private device with one 2 MiB page (one compound migration of 512
 * pages, traced as one entry from "none"), on the coherent device page by
 * page.
 */
TEST_F(driver, events_fill_thp)
{
	char *mirror = map(THP_PAGES, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	int zero_page;

	ASSERT_NE(mirror, NULL);
	for (zero_page = 0; zero_page < 2; zero_page++) {
		char *buf = empty_thp_buffer(zero_page);
		long want[HMM_EV_COUNT] = {};
		struct hmm_events before;

		ASSERT_NE(buf, NULL);
		events_begin(_metadata, &before);
		ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, buf,
				     mirror, THP_PAGES, NULL), 0);
		want_moved(want, EV_TO(variant->coherent), THP_PAGES);
		want[HMM_EV_THP] = !variant->coherent;
		expect_events(_metadata, &before, want);
		EXPECT_TRUE(all_zero(buf, THP_PAGES))
			TH_LOG("zero page: %d", zero_page);
	}
}

/*
 * A THP: on the private device one folio moved whole (512 pages), and
 * back whole to one CPU fault; with its 2 MiB allocation failing, and on
 * the coherent device (single pages), one split and 512 pages.
 */
TEST_F(driver, events_thp)
{
	char *mirror = map(THP_PAGES, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	int fail_alloc;

	ASSERT_NE(mirror, NULL);
	for (fail_alloc = 0; fail_alloc < 2; fail_alloc++) {
		char *buf = thp_buffer(32, true);
		bool whole = !variant->coherent && !fail_alloc;
		long want[HMM_EV_COUNT] = {};
		struct hmm_events before;

		ASSERT_NE(buf, NULL);
		ASSERT_EQ(count_snap(self->fd, buf, THP_PAGES, SN_THP),
			  THP_PAGES);
		if (fail_alloc)
			ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_FLAGS, NULL,
					     NULL, HMM_DMIRROR_FLAG_FAIL_ALLOC,
					     NULL), 0);
		events_begin(_metadata, &before);
		ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, buf,
				     mirror, THP_PAGES, NULL), 0);
		want_moved(want, EV_TO(variant->coherent), THP_PAGES);
		want[whole ? HMM_EV_THP : HMM_EV_THP_SPLIT] = 1;
		expect_events(_metadata, &before, want);
		if (!whole)
			continue;

		/* One touch brings the 2 MiB page back whole. */
		memset(want, 0, sizeof(want));
		events_begin(_metadata, &before);
		EXPECT_EQ(first_bad(buf, 1, 32), -1);
		want[HMM_EV_FAULT] = 1;
		want[HMM_EV_THP] = 1;
		want_moved(want, HMM_EV_FROM_PRIVATE, THP_PAGES);
		expect_events(_metadata, &before, want);
		EXPECT_EQ(first_bad(buf, THP_PAGES, 32), -1);
	}
}

/*
 * Exclusive access: one grant per page. A renewal faults each entry back
 * first (a revocation) and grants it again; a CPU read of each page then
 * revokes it.
 */
TEST_F(driver, events_exclusive)
{
	long want[HMM_EV_COUNT] = {};
	struct hmm_events before;
	char *buf, *mirror;

	ASSERT_TRUE(buffers(NPAGES, 33, &buf, &mirror));
	events_begin(_metadata, &before);
	ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_EXCLUSIVE, buf, mirror,
			     NPAGES, NULL), 0);
	ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_EXCLUSIVE, buf, mirror,
			     NPAGES, NULL), 0);
	EXPECT_EQ(first_bad(buf, NPAGES, 33), -1);
	want[HMM_EV_GRANT] = 2 * NPAGES;
	want[HMM_EV_REVOKE] = 2 * NPAGES;	/* the renewal, then the reads */
	expect_events(_metadata, &before, want);
}

/*
 * Pages held by someone else are given up, each for its reason: pinned
 * (a long-term pin through gup_test), or an extra reference (vmsplice()
 * into a pipe keeps one per page until the pipe is read). Nothing moves.
 */
TEST_F(driver, events_given_up)
{
	struct pin_longterm_test pin = { .size = NPAGES * page_size };
	int gup = open("/sys/kernel/debug/gup_test", O_RDWR);
	long want[HMM_EV_COUNT] = {};
	struct hmm_events before;
	char *buf, *mirror;
	int pipefd[2];
	struct iovec iov;

	ASSERT_GE(gup, 0) TH_LOG("gup_test: %s", strerror(errno));
	ASSERT_TRUE(buffers(NPAGES, 34, &buf, &mirror));
	pin.addr = (uintptr_t)buf;
	ASSERT_EQ(ioctl(gup, PIN_LONGTERM_TEST_START, &pin), 0);
	events_begin(_metadata, &before);
	/* ENOENT: pages are not in device memory afterwards. */
	EXPECT_EQ(device_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, buf, mirror,
			     NPAGES, NULL), -ENOENT);
	want[HMM_EV_COLLECTED] = NPAGES;
	want[HMM_EV_PINNED] = NPAGES;
	expect_events(_metadata, &before, want);
	EXPECT_EQ(ioctl(gup, PIN_LONGTERM_TEST_STOP), 0);
	close(gup);
	EXPECT_EQ(count_kind(self->fd, buf, NPAGES, self->local), 0);

	ASSERT_EQ(pipe(pipefd), 0);
	ASSERT_EQ(fcntl(pipefd[1], F_SETPIPE_SZ, (int)(NPAGES * page_size)),
		  (int)(NPAGES * page_size));
	iov.iov_base = buf;
	iov.iov_len = NPAGES * page_size;
	ASSERT_EQ(vmsplice(pipefd[1], &iov, 1, 0), (ssize_t)iov.iov_len);
	memset(want, 0, sizeof(want));
	events_begin(_metadata, &before);
	EXPECT_EQ(device_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, buf, mirror,
			     NPAGES, NULL), -ENOENT);
	want[HMM_EV_COLLECTED] = NPAGES;
	want[HMM_EV_REFS] = NPAGES;
	expect_events(_metadata, &before, want);
	EXPECT_EQ(count_kind(self->fd, buf, NPAGES, self->local), 0);
	close(pipefd[0]);
	close(pipefd[1]);
	EXPECT_EQ(first_bad(buf, NPAGES, 34), -1);
}

/* ---- The tracepoints, each step and entry ---- */

/*
 * The per-entry events @event of @text: @npages of them, one for each page
 * of [@buf, @buf + @npages pages) (as far as the sum of their indices
 * says; all at address 0 when @buf is NULL), each of one page, @from one
 * kind of memory @to another.
 */
static void expect_entries(struct __test_metadata *_metadata, const char *text,
			   const char *event, const char *buf,
			   unsigned long npages, const char *from,
			   const char *to)
{
	unsigned long n = 0, index_sum = 0;
	const char *pos = NULL, *f;

	while ((f = hmm_trace_next(text, &pos, event))) {
		unsigned long addr = hmm_trace_field(f, "addr");

		n++;
		if (buf) {
			ASSERT_TRUE(addr >= (uintptr_t)buf &&
				    addr < (uintptr_t)buf + npages * page_size)
				TH_LOG("%s at %#lx, outside the buffer", event,
				       addr);
			index_sum += (addr - (uintptr_t)buf) / page_size;
		} else {
			EXPECT_EQ(addr, 0) TH_LOG("%s by frame number", event);
		}
		EXPECT_EQ(hmm_trace_field(f, "nr"), 1);
		EXPECT_TRUE(hmm_trace_is(f, "from", from))
			TH_LOG("%s: not from=%s", event, from);
		EXPECT_TRUE(hmm_trace_is(f, "to", to))
			TH_LOG("%s: not to=%s", event, to);
	}
	EXPECT_EQ(n, npages) TH_LOG("%s events", event);
	if (buf)
		EXPECT_EQ(index_sum, npages * (npages - 1) / 2);
}

/*
 * A step's summary events of a migration of @npages 4 KiB pages, all of
 * which moved: as many commit and finalize events as collect events, and
 * each step's pages add up.
 */
static void expect_steps(struct __test_metadata *_metadata, const char *text,
			 const char *collect, const char *commit,
			 const char *finalize, unsigned long npages)
{
	unsigned long steps, sum;

	steps = hmm_trace_count(text, collect, "pages", &sum);
	EXPECT_GE(steps, 1) TH_LOG("no %s event", collect);
	EXPECT_EQ(sum, npages) TH_LOG("%s: pages", collect);
	hmm_trace_count(text, collect, "thp", &sum);
	EXPECT_EQ(sum, 0) TH_LOG("%s: thp", collect);
	EXPECT_EQ(hmm_trace_count(text, commit, "moved", &sum), steps);
	EXPECT_EQ(sum, npages) TH_LOG("%s: moved", commit);
	hmm_trace_count(text, commit, "kept", &sum);
	EXPECT_EQ(sum, 0) TH_LOG("%s: kept", commit);
	EXPECT_EQ(hmm_trace_count(text, finalize, "moved", &sum), steps);
	EXPECT_EQ(sum, npages) TH_LOG("%s: moved", finalize);
	hmm_trace_count(text, finalize, "kept", &sum);
	EXPECT_EQ(sum, 0) TH_LOG("%s: kept", finalize);
}

/*
 * Run migration command @cmd on the NPAGES pages at @buf under a fresh
 * trace, and check it: each step of migrate_vma_*() shows, with its pages,
 * and each page from @first on moved once, @from one memory @to another.
 * Returns the trace, for more checks.
 */
static const char *traced_move(struct __test_metadata *_metadata, int fd,
			       unsigned long cmd, char *buf, char *mirror,
			       unsigned long first, const char *from,
			       const char *to)
{
	unsigned long moved = NPAGES - first;
	const char *text;

	ASSERT_TRUE(hmm_trace_start(&trace, "hmm-driver-tests"));
	ASSERT_EQ(device_cmd(fd, cmd, buf, mirror, NPAGES, NULL), 0);
	text = hmm_trace_read(&trace);
	ASSERT_NE(text, NULL);
	expect_steps(_metadata, text, "hmm_migrate_vma_setup",
		     "hmm_migrate_vma_pages", "hmm_migrate_vma_finalize", moved);
	expect_entries(_metadata, text, "hmm_migrate_page",
		       buf + first * page_size, moved, from, to);
	EXPECT_EQ(hmm_trace_count(text, "hmm_migrate_skip", NULL, NULL), 0);
	return text;
}

/*
 * A migration to the device and back, traced step by step and page by
 * page. On the private device a CPU read of two pages in between faults
 * once on each, at its address, and brings back that page alone.
 */
TEST_F(driver, trace_migration_steps)
{
	const char *dev = variant->coherent ? "coherent" : "private";
	const char *text, *f, *pos = NULL;
	unsigned long first = 0;
	char *buf, *mirror;

	ASSERT_TRUE(buffers(NPAGES, 36, &buf, &mirror));
	text = traced_move(_metadata, self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, buf,
			   mirror, 0, "system", dev);
	f = hmm_trace_next(text, &pos, "hmm_migrate_vma_setup");
	ASSERT_NE(f, NULL);
	EXPECT_EQ(hmm_trace_field(f, "start"), (uintptr_t)buf);
	EXPECT_EQ(hmm_trace_field(f, "empty"), 0);

	if (!variant->coherent) {
		const char *event = "hmm_device_private_fault";

		ASSERT_TRUE(hmm_trace_start(&trace, "hmm-driver-tests"));
		EXPECT_EQ(first_bad(buf, 2, 36), -1);
		text = hmm_trace_read(&trace);
		ASSERT_NE(text, NULL);
		for (pos = NULL; first < 2; first++) {
			f = hmm_trace_next(text, &pos, event);
			ASSERT_NE(f, NULL);
			EXPECT_EQ(hmm_trace_field(f, "addr"),
				  (uintptr_t)buf + first * page_size);
			EXPECT_EQ(hmm_trace_field(f, "nr"), 1);
			EXPECT_TRUE(hmm_trace_is(f, "ret", "0"));
		}
		EXPECT_EQ(hmm_trace_next(text, &pos, event), NULL);
	}

	traced_move(_metadata, self->fd, HMM_DMIRROR_MIGRATE_TO_SYS, buf, NULL,
		    first, dev, "system");
	EXPECT_EQ(first_bad(buf, NPAGES, 36), -1);
}

/*
 * hmm_range_fault(), once per call: a device read of pages the CPU never
 * touched faults each in once (two passes or more per call that faulted);
 * a snapshot of them then asks for no fault and takes none, in one pass
 * per call.
 */
/* Bit 63 of the request: HMM_PFN_REQ_FAULT of include/linux/hmm.h. */
#define REQ_FAULT_SHIFT	63

TEST_F(driver, trace_range_fault)
{
	char *buf = map(NPAGES, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	char *out = map(NPAGES, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	unsigned long calls, faults, round;
	uint8_t snap[NPAGES];

	ASSERT_TRUE(buf && out);
	ASSERT_EQ(madvise(buf, NPAGES * page_size, MADV_NOHUGEPAGE), 0);
	for (round = 0; round < 2; round++) {
		const char *text, *f, *pos = NULL;

		ASSERT_TRUE(hmm_trace_start(&trace, "hmm-driver-tests"));
		ASSERT_EQ(round ? device_cmd(self->fd, HMM_DMIRROR_SNAPSHOT,
					     buf, snap, NPAGES, NULL) :
				  device_cmd(self->fd, HMM_DMIRROR_READ, buf,
					     out, NPAGES, NULL), 0);
		text = hmm_trace_read(&trace);
		ASSERT_NE(text, NULL);
		calls = hmm_trace_count(text, "hmm_range_fault", "faults",
					&faults);
		EXPECT_GE(calls, 1) TH_LOG("round %lu", round);
		EXPECT_EQ(faults, round ? 0 : NPAGES);
		while ((f = hmm_trace_next(text, &pos, "hmm_range_fault"))) {
			unsigned long start = hmm_trace_field(f, "start");
			unsigned long end = hmm_trace_field(f, "end");
			unsigned long passes = hmm_trace_field(f, "passes");
			unsigned long req = hmm_trace_field(f, "default_flags");

			EXPECT_TRUE(start >= (uintptr_t)buf && start < end &&
				    end <= (uintptr_t)buf + NPAGES * page_size)
				TH_LOG("range %#lx-%#lx", start, end);
			EXPECT_EQ(req >> REQ_FAULT_SHIFT, !round);
			EXPECT_EQ(hmm_trace_field(f, "ret"), 0);
			/* A pass that faulted is followed by another. */
			EXPECT_GE(passes, 1);
			EXPECT_EQ(passes >= 2, hmm_trace_field(f, "faults") > 0);
		}
	}
}

/*
 * Eviction: RELEASE collects the device's pages by frame number
 * (migrate_device_pfns()), and each page goes home with no address. A
 * first RELEASE empties the device of what earlier tests left there.
 */
TEST_F(driver, trace_eviction)
{
	const char *dev = variant->coherent ? "coherent" : "private";
	unsigned long steps, sum;
	char *buf, *mirror;
	const char *text;

	ASSERT_TRUE(buffers(NPAGES, 37, &buf, &mirror));
	ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_RELEASE, NULL, NULL, 0,
			     NULL), 0);
	ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, buf, mirror,
			     NPAGES, NULL), 0);
	ASSERT_TRUE(hmm_trace_start(&trace, "hmm-driver-tests"));
	ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_RELEASE, NULL, NULL, 0,
			     NULL), 0);
	text = hmm_trace_read(&trace);
	ASSERT_NE(text, NULL);
	steps = hmm_trace_count(text, "hmm_migrate_device_pfns", "pages", &sum);
	EXPECT_GE(steps, 1);
	EXPECT_EQ(sum, NPAGES);
	EXPECT_EQ(hmm_trace_count(text, "hmm_migrate_device_finalize", "moved",
				  &sum), steps);
	EXPECT_EQ(sum, NPAGES);
	expect_entries(_metadata, text, "hmm_migrate_page", NULL, NPAGES,
		       dev, "system");
	EXPECT_EQ(first_bad(buf, NPAGES, 37), -1);
}

/* ---- debugfs "mirror": what the device holds ---- */

/* What test_hmm's debugfs "mirror" says of the device's one open file. */
struct mirror_view {
	int files, chunks;
	long mirrored, writable, exclusive, resident, huge;
};

/* A file's line of debugfs "mirror". */
static const char mirror_file_line[] =
	"file %u mirrored %ld writable %ld exclusive %ld resident %ld huge %ld";

static bool read_mirror_view(int device, struct mirror_view *v)
{
	char path[64], line[256];
	unsigned int id;
	FILE *f;

	snprintf(path, sizeof(path),
		 "/sys/kernel/debug/test_hmm/hmm_dmirror%d/mirror", device);
	f = fopen(path, "r");
	if (!f)
		return false;
	memset(v, 0, sizeof(*v));
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "chunk ", 6))
			v->chunks++;
		else if (sscanf(line, mirror_file_line, &id, &v->mirrored,
				&v->writable, &v->exclusive, &v->resident,
				&v->huge) == 6)
			v->files++;
	}
	fclose(f);
	return true;
}

/*
 * The view follows what the file does: pages moved in are resident and
 * mirrored writable, a THP on the private device is one 2 MiB page,
 * exclusive access shows per page, and after the pages went back nothing
 * is resident.
 */
TEST_F(driver, mirror_view)
{
	char *thp = thp_buffer(35, true);
	struct mirror_view v;
	char *buf, *mirror;

	ASSERT_TRUE(buffers(THP_PAGES, 36, &buf, &mirror));
	ASSERT_NE(thp, NULL);
	ASSERT_TRUE(read_mirror_view(variant->device, &v))
		TH_LOG("debugfs mirror: %s", strerror(errno));
	EXPECT_EQ(v.files, 1);
	EXPECT_EQ(v.mirrored, 0);
	EXPECT_EQ(v.resident, 0);

	ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, buf, mirror,
			     NPAGES, NULL), 0);
	ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, thp, mirror,
			     THP_PAGES, NULL), 0);
	ASSERT_TRUE(read_mirror_view(variant->device, &v));
	EXPECT_GE(v.chunks, 1);
	EXPECT_EQ(v.resident, NPAGES + THP_PAGES);
	EXPECT_EQ(v.huge, variant->coherent ? 0 : 1);
	EXPECT_EQ(v.mirrored, NPAGES + THP_PAGES);
	EXPECT_EQ(v.writable, NPAGES + THP_PAGES);
	EXPECT_EQ(v.exclusive, 0);

	/* Exclusive access to system pages: mirrored, nothing resident. */
	ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_EXCLUSIVE,
			     buf + NPAGES * page_size, mirror, NPAGES, NULL), 0);
	ASSERT_TRUE(read_mirror_view(variant->device, &v));
	EXPECT_EQ(v.exclusive, NPAGES);
	EXPECT_EQ(v.resident, NPAGES + THP_PAGES);

	ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_SYS, buf, NULL,
			     NPAGES, NULL), 0);
	ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_SYS, thp, NULL,
			     THP_PAGES, NULL), 0);
	ASSERT_TRUE(read_mirror_view(variant->device, &v));
	EXPECT_EQ(v.resident, 0);
	EXPECT_EQ(v.huge, 0);
	EXPECT_EQ(first_bad(thp, THP_PAGES, 35), -1);
	EXPECT_EQ(first_bad(buf, NPAGES, 36), -1);
}

static long shrinker_count(int device)
{
	char pattern[80], line[256], *p, *end;
	long n = 0;
	glob_t g;
	FILE *f;

	snprintf(pattern, sizeof(pattern),
		 "/sys/kernel/debug/shrinker/hmm_dmirror%d-*/count", device);
	if (glob(pattern, 0, NULL, &g))
		return -1;
	f = fopen(g.gl_pathv[0], "r");
	globfree(&g);
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		strtoul(line, &p, 10);		/* the memcg's inode */
		for (;;) {
			unsigned long v = strtoul(p, &end, 10);

			if (end == p)
				break;
			n += v;
			p = end;
		}
	}
	fclose(f);
	return n;
}

/* Memory pressure, of the kind that runs every shrinker. */
static int drop_slab(void)
{
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
	int ok;

	if (fd < 0)
		return -errno;
	ok = write(fd, "2", 1) == 1;
	close(fd);
	return ok ? 0 : -EIO;
}

/*
 * Device-private memory that is freed keeps its stores (the system pages
 * behind it), as a device keeps its RAM: a THP's and single pages' worth
 * are counted by the device's shrinker after they come back, and are
 * given back under memory pressure. Moved again afterwards, the data is
 * intact. The device-coherent device keeps its data in its own memory:
 * no stores, no shrinker.
 */
TEST_F(driver, stores_kept_until_pressure)
{
	char *buf = thp_buffer(29, true);
	char *small = map(NPAGES, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	char *mirror = map(THP_PAGES, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	int round;

	ASSERT_TRUE(buf && small && mirror);
	if (variant->coherent) {
		EXPECT_EQ(shrinker_count(variant->device), -1);
		return;
	}
	fill(small, NPAGES, 30);
	for (round = 0; round < 2; round++) {
		ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, buf,
				     mirror, THP_PAGES, NULL), 0);
		EXPECT_EQ(first_bad(mirror, THP_PAGES, 29), -1);
		ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, small,
				     mirror, NPAGES, NULL), 0);
		EXPECT_EQ(first_bad(mirror, NPAGES, 30), -1);
		ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_SYS, buf,
				     NULL, THP_PAGES, NULL), 0);
		ASSERT_EQ(device_cmd(self->fd, HMM_DMIRROR_MIGRATE_TO_SYS, small,
				     NULL, NPAGES, NULL), 0);
		EXPECT_EQ(first_bad(buf, THP_PAGES, 29), -1);
		EXPECT_EQ(first_bad(small, NPAGES, 30), -1);
		EXPECT_GE(shrinker_count(variant->device),
			  (long)(THP_PAGES + NPAGES)) TH_LOG("round %d", round);
		ASSERT_EQ(drop_slab(), 0);
		EXPECT_EQ(shrinker_count(variant->device), 0)
			TH_LOG("round %d", round);
	}
}

/*
 * A file outlives the process that opened it (a child inherited it): its
 * commands fail with ESRCH, and closing it is fine.
 */
TEST(opener_gone)
{
	int gone[2], verdict[2];
	char result = 'x';
	pid_t opener;

	page_size = sysconf(_SC_PAGESIZE);
	ASSERT_EQ(pipe(gone), 0);
	ASSERT_EQ(pipe(verdict), 0);
	opener = fork();
	ASSERT_GE(opener, 0);
	if (opener == 0) {
		int fd = device_open(0);
		char eof;

		if (fd < 0 || fork() != 0)
			_exit(fd < 0);
		/* The heir: wait until the opener has exited, then try. */
		close(gone[1]);
		if (read(gone[0], &eof, 1) != 0)
			_exit(1);
		result = device_cmd(fd, HMM_DMIRROR_SNAPSHOT,
				    (void *)(16 * page_size), &eof, 1,
				    NULL) == -ESRCH ? 'y' : 'n';
		close(fd);
		if (write(verdict[1], &result, 1) != 1)
			_exit(1);
		_exit(0);
	}
	close(gone[0]);
	close(gone[1]);
	close(verdict[1]);
	ASSERT_EQ(waitpid(opener, NULL, 0), opener);
	ASSERT_EQ(read(verdict[0], &result, 1), 1);
	EXPECT_EQ(result, 'y');
}

static bool module_loaded(void)
{
	struct stat st;

	return stat("/sys/module/test_hmm", &st) == 0;
}

/* A parameter of the loaded module, as insmod wants it back. */
static void read_param(const char *name, char *value, size_t size,
		       const char *fallback)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "/sys/module/test_hmm/parameters/%s",
		 name);
	snprintf(value, size, "%s", fallback);
	f = fopen(path, "r");
	if (!f)
		return;
	if (!fgets(value, size, f))
		snprintf(value, size, "%s", fallback);
	value[strcspn(value, "\n")] = '\0';
	fclose(f);
}

/*
 * Unloading the module after the files are closed leaves the process's
 * data intact, on both kinds of device, a 2 MiB device page's too; the
 * module is loaded again with the parameters it had, for the rest of the
 * run.
 */
TEST(unload_keeps_data)
{
	static const int devices[] = { 0, 2 };
	char *buf[2], *mirror, *thp;
	char spm0[32], spm1[32], command[256];
	int fd[2], i;

	page_size = sysconf(_SC_PAGESIZE);
	ASSERT_TRUE(module_loaded());
	read_param("spm_addr_dev0", spm0, sizeof(spm0), "0x140000000");
	read_param("spm_addr_dev1", spm1, sizeof(spm1), "0x150000000");
	mirror = map(THP_PAGES, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	ASSERT_NE(mirror, NULL);
	thp = thp_buffer(13, true);
	ASSERT_NE(thp, NULL);

	for (i = 0; i < 2; i++) {
		fd[i] = device_open(devices[i]);
		ASSERT_GE(fd[i], 0);
		buf[i] = map(NPAGES, PROT_READ | PROT_WRITE, MAP_PRIVATE);
		ASSERT_NE(buf[i], NULL);
		fill(buf[i], NPAGES, 11 + i);
		ASSERT_EQ(device_cmd(fd[i], HMM_DMIRROR_MIGRATE_TO_DEV, buf[i],
				     mirror, NPAGES, NULL), 0);
	}
	EXPECT_EQ(count_kind(fd[0], buf[0], NPAGES,
			     HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL), NPAGES);
	EXPECT_EQ(count_kind(fd[1], buf[1], NPAGES,
			     HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL), NPAGES);
	/* And a 2 MiB device page. */
	ASSERT_EQ(device_cmd(fd[0], HMM_DMIRROR_MIGRATE_TO_DEV, thp, mirror,
			     THP_PAGES, NULL), 0);
	EXPECT_EQ(count_snap(fd[0], thp, THP_PAGES,
			     HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL | SN_THP),
		  THP_PAGES);

	/* An open file pins the module. */
	EXPECT_NE(system("rmmod test_hmm 2>/dev/null"), 0);
	EXPECT_TRUE(module_loaded());

	close(fd[0]);
	close(fd[1]);
	ASSERT_EQ(system("rmmod test_hmm"), 0);
	EXPECT_FALSE(module_loaded());
	EXPECT_EQ(first_bad(buf[0], NPAGES, 11), -1);
	EXPECT_EQ(first_bad(buf[1], NPAGES, 12), -1);
	EXPECT_EQ(first_bad(thp, THP_PAGES, 13), -1);

	snprintf(command, sizeof(command),
		 "insmod %s spm_addr_dev0=%s spm_addr_dev1=%s", MODULE_PATH,
		 spm0, spm1);
	ASSERT_EQ(system(command), 0) TH_LOG("%s failed", command);
	ASSERT_TRUE(module_loaded());
	for (i = 0; i < 2; i++) {
		fd[i] = device_open(devices[i]);
		ASSERT_GE(fd[i], 0) TH_LOG("/dev/hmm_dmirror%d after reload",
					   devices[i]);
		EXPECT_EQ(count_kind(fd[i], buf[i], NPAGES, 0), NPAGES);
		close(fd[i]);
	}
}

TEST_HARNESS_MAIN
