// SPDX-License-Identifier: GPL-2.0
/*
 * The HMM dummy device (lib/test_hmm.c) driven from user space.
 *
 * Every case is one operation applied to one memory setup as seen by one
 * device, or by two: the layout of cow.c. Operations are the TEST_F bodies;
 * setups and devices are fixture variants generated from tables, so a new
 * backing or device is one more table row and every operation runs over it.
 *
 * No case spells out its expected results. A setup is a row of segments,
 * each of one page kind (anonymous, THP, hugetlbfs, file, zero page, ...),
 * and the kind table states what the uapi contract promises for such a page:
 * what a snapshot reports, whether the device may read or write it, whether
 * it can move to device memory, whether it can be held exclusively. An
 * operation walks the pages of its range and derives every verdict from that
 * table, so a range mixing kinds needs no code of its own. What a page holds
 * is tracked as a generation number per page, and memory is compared with it
 * byte for byte on both sides: the CPU's view and the device's copy.
 *
 * Fixtures (name: variants x operations):
 *   mem     backing x {private, coherent device}: read, write, snapshot,
 *           migration both ways, CPU access, fork and COW, exclusive access;
 *   dev     each of the four devices: release, close, repeated round trips,
 *           GUP, exclusive access with mprotect and fork, the device's own
 *           mapping, partial ranges, holes;
 *   pair    two devices over one range: double map, access to the other
 *           device's memory, migration between devices, remote snapshots;
 *   dthp    a THP moved to the device (a device-private PMD where the driver
 *           has 2 MiB pages), whole or a window of it, private or coherent:
 *           munmap, mprotect (with uffd-wp), MADV_DONTNEED, mremap, fork,
 *           smaps, pagemap, MADV_COLLAPSE, MADV_COLD/PAGEOUT/FREE,
 *           compaction, move_pages(), mbind(), NUMA balancing, khugepaged,
 *           exclusive access and snapshots;
 *   race    a device command against munmap, mprotect, MADV_DONTNEED, mremap
 *           or fork in another thread; each verdict admits every legal
 *           interleaving, and the state afterwards is checked exactly;
 *   stuck   a range where some pages cannot move (pinned, held by a pipe, on
 *           another device, page cache): what is reported, what moved;
 *   badarg  each command with a bad argument and the errno it returns.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "../kselftest_harness.h"
#include "hmm-common.h"

#include <lib/test_hmm_uapi.h>
#include <mm/gup_test.h>
#include <linux/userfaultfd.h>
#include <linux/mempolicy.h>

#ifndef UFFD_FEATURE_WP_UNPOPULATED		/* older libc headers */
#define UFFD_FEATURE_WP_UNPOPULATED	(1 << 13)
#endif
#ifndef MADV_COLLAPSE				/* older libc headers */
#define MADV_COLLAPSE			25
#endif
#ifndef HMM_DMIRROR_FLAGS			/* 6.12's driver has none */
#define HMM_DMIRROR_FLAGS		_IOWR('H', 0x08, struct hmm_dmirror_cmd)
#endif
#ifndef HMM_DMIRROR_MIGRATE_ON_FAULT_TO_DEV	/* nor this */
#define HMM_DMIRROR_MIGRATE_ON_FAULT_TO_DEV	_IOWR('H', 0x09, struct hmm_dmirror_cmd)
#endif

#define M		struct __test_metadata *_metadata
#define PMD_PAGES	512		/* base pages under one PMD (4 KiB pages) */
#define SENTINEL	0xa5		/* device buffers before the device writes */
#define GUP_WRITE	0x01		/* FOLL_WRITE, for gup_test */
#define GUP_LONGTERM	0x100		/* FOLL_LONGTERM, for gup_test */

static size_t pg;

static void __attribute__((constructor)) hmm_page_size(void)
{
	pg = getpagesize();
}

/* Minors of the dummy driver: two device-private, then two coherent. */
enum { PRIV0, PRIV1, COH0, COH1 };

static bool coherent(int dev)
{
	return dev >= COH0;
}

static int dev_open(int dev)
{
	char path[32];

	snprintf(path, sizeof(path), "/dev/hmm_dmirror%d", dev);
	return open(path, O_RDWR);
}

/* One device command over npages from addr; 0 or -errno. */
static int dmirror(int fd, unsigned long req, const void *addr, void *buf,
		   unsigned long npages, struct hmm_dmirror_cmd *out)
{
	struct hmm_dmirror_cmd cmd = {
		.addr = (uintptr_t)addr, .ptr = (uintptr_t)buf, .npages = npages,
	};
	int ret = ioctl(fd, req, &cmd);

	if (out)
		*out = cmd;
	return ret ? -errno : 0;
}

static int wait_child(pid_t pid)
{
	int status;

	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/*
 * Contents: word i of layout page p at generation gen. Generation 0 is a
 * page of zeroes; any other generation makes every word distinct and
 * non-zero, so a page of the wrong place or age never passes for another.
 */
static uint64_t word(unsigned long p, size_t i, int gen)
{
	return gen ? (uint64_t)gen << 56 | (uint64_t)p << 24 | i : 0;
}

static void fill(void *page, unsigned long p, int gen)
{
	uint64_t *w = page;

	for (size_t i = 0; i < pg / sizeof(*w); i++)
		w[i] = word(p, i, gen);
}

static bool holds(const void *page, unsigned long p, int gen)
{
	const uint64_t *w = page;

	for (size_t i = 0; i < pg / sizeof(*w); i++)
		if (w[i] != word(p, i, gen))
			return false;
	return true;
}

/* Snapshot bytes, shortened. */
enum {
	SN_NONE = HMM_DMIRROR_PROT_NONE,
	SN_R = HMM_DMIRROR_PROT_READ,
	SN_W = HMM_DMIRROR_PROT_WRITE,
	SN_PMD = HMM_DMIRROR_PROT_PMD,
	SN_ZERO = HMM_DMIRROR_PROT_ZERO | HMM_DMIRROR_PROT_READ,
	SN_ERR = HMM_DMIRROR_PROT_ERROR,
};

static int local(int dev)
{
	return coherent(dev) ? HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL :
			       HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL;
}

/*
 * What another device's snapshot shows for a page on device owner. A
 * coherent page is an ordinary mapping of someone else's memory. A
 * device-private page is documented as PRIVATE_REMOTE, but hmm_range_fault()
 * hands a device only its own private pages, so upstream reports it as not
 * mapped; both mean "no access without a migration".
 */
static bool remote_view(int owner, unsigned char seen)
{
	if (coherent(owner))
		return seen == (HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE | SN_W);
	return seen == SN_NONE ||
	       seen == (HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE | SN_W);
}

/* ---- Page kinds and what the contract says about each ---------------- */

enum { ANON, ANON_SHARED, THP, THP_RO, HUGETLB, FILE_PRIVATE, FILE_COW,
	FILE_SHARED, ZERO, READONLY, NOACCESS, EMPTY };
enum { MOVES, STAYS, REFUSED };		/* MIGRATE_TO_DEV on such a page */
/*
 * EXCLUSIVE on such a page: granted; part of a THP, which a kernel with
 * make_device_exclusive() (mainline 6.15, ours) grants and 6.12 refuses
 * for ever (EBUSY); not memory a device can hold exclusive, which the
 * core refuses with EOPNOTSUPP (6.15, ours) or 6.12's driver with EBUSY or
 * EINVAL; never.
 */
enum { EXCL_OK, EXCL_THP, EXCL_REFUSED, EXCL_NEVER };

#define PRIV_ANON	(MAP_PRIVATE | MAP_ANONYMOUS)
#define RW		(PROT_READ | PROT_WRITE)

static const struct kind {
	int flags;		/* mmap() flags */
	bool file, thp;		/* a tmpfs file holding generation 1; MADV_HUGEPAGE */
	char touch;		/* populate: 'w'rite generation 1, 'r'ead, or not */
	int prot;		/* protection once populated */
	int gen;		/* generation after setup */
	int snap;		/* snapshot after setup */
	int read_err, write_err;	/* device access */
	int move, excl;		/* MOVES/STAYS/REFUSED, EXCL_* */
	bool shared;		/* a store reaches every mapping and the file */
} kinds[] = {
	[ANON]	       = { PRIV_ANON, .touch = 'w', .prot = RW, .gen = 1, .snap = SN_W },
	[ANON_SHARED]  = { MAP_SHARED | MAP_ANONYMOUS, .touch = 'w', .prot = RW, .gen = 1,
			   .snap = SN_W, .move = STAYS, .excl = EXCL_REFUSED, .shared = true },
	[THP]	       = { PRIV_ANON, .thp = true, .touch = 'w', .prot = RW, .gen = 1,
			   .snap = SN_W | SN_PMD, .excl = EXCL_THP },
	[THP_RO]       = { PRIV_ANON, .thp = true, .touch = 'w', .prot = PROT_READ, .gen = 1,
			   .snap = SN_R | SN_PMD, .write_err = -EPERM, .excl = EXCL_NEVER },
	[HUGETLB]      = { PRIV_ANON | MAP_HUGETLB, .touch = 'w', .prot = RW, .gen = 1,
			   .snap = SN_W | SN_PMD, .move = REFUSED, .excl = EXCL_REFUSED },
	[FILE_PRIVATE] = { MAP_PRIVATE, .file = true, .touch = 'r', .prot = RW, .gen = 1,
			   .snap = SN_R, .move = STAYS },
	[FILE_COW]     = { MAP_PRIVATE, .file = true, .touch = 'w', .prot = RW, .gen = 1,
			   .snap = SN_W },
	[FILE_SHARED]  = { MAP_SHARED, .file = true, .touch = 'w', .prot = RW, .gen = 1,
			   .snap = SN_W, .move = STAYS, .excl = EXCL_REFUSED, .shared = true },
	[ZERO]	       = { PRIV_ANON, .touch = 'r', .prot = RW, .snap = SN_ZERO },
	[READONLY]     = { PRIV_ANON, .touch = 'w', .prot = PROT_READ, .gen = 1, .snap = SN_R,
			   .write_err = -EPERM, .excl = EXCL_NEVER },
	[NOACCESS]     = { PRIV_ANON, .touch = 'w', .prot = PROT_NONE, .gen = 1, .snap = SN_ERR,
			   .read_err = -EFAULT, .write_err = -EFAULT, .move = REFUSED,
			   .excl = EXCL_NEVER },
	[EMPTY]	       = { PRIV_ANON, .prot = RW, .snap = SN_NONE },
};

/* A setup: segments laid out from a PMD boundary, and the range tested. */
struct backing {
	struct { int kind; unsigned int npages; } seg[8];
	unsigned int skip, npages;	/* npages 0: to the end of the layout */
};

#define ONE(k, n)	{ .seg = { { k, n } } }
static const struct backing anon = ONE(ANON, 96);
static const struct backing anon_shared = ONE(ANON_SHARED, 96);
static const struct backing thp = ONE(THP, PMD_PAGES);
/* Half of one THP and half of the next: no PMD boundary at either end. */
static const struct backing thp_unaligned = {
	.seg = { { THP, 2 * PMD_PAGES } }, .skip = PMD_PAGES / 2, .npages = PMD_PAGES,
};

static const struct backing thp_readonly = ONE(THP_RO, PMD_PAGES);
/*
 * One PMD's range, its first half populated page by page, the rest empty:
 * a device that asks for 2 MiB entries over a whole PMD finds a PTE table
 * with holes, whose pages move one by one and whose holes are filled one
 * by one. (MADV_NOHUGEPAGE, so khugepaged never collapses it midway.)
 */
static const struct backing pmd_half = {
	.seg = { { ANON, PMD_PAGES / 2 }, { EMPTY, PMD_PAGES / 2 } },
};

static const struct backing hugetlb = ONE(HUGETLB, PMD_PAGES);
static const struct backing file_private = ONE(FILE_PRIVATE, 96);
static const struct backing file_cow = ONE(FILE_COW, 96);
static const struct backing file_shared = ONE(FILE_SHARED, 96);
static const struct backing zero = ONE(ZERO, 96);
static const struct backing readonly = ONE(READONLY, 96);
static const struct backing noaccess = ONE(NOACCESS, 96);
static const struct backing empty = ONE(EMPTY, 96);
static const struct backing mixed = { .seg = {
	{ THP, PMD_PAGES }, { ANON, 8 }, { ZERO, 8 }, { FILE_SHARED, 8 },
	{ ANON_SHARED, 8 }, { FILE_PRIVATE, 8 }, { FILE_COW, 8 }, { EMPTY, 8 } } };
static const struct backing small = ONE(ANON, 16);
/* For bad arguments: writable, read-only, no access, then a hole. */
static const struct backing edges = {
	.seg = { { ANON, 8 }, { READONLY, 8 }, { NOACCESS, 8 }, { EMPTY, 8 } }, .npages = 24,
};

struct page_info {
	unsigned char kind;
	int fd;			/* the tmpfs file behind the page, or -1 */
	unsigned int fpage;	/* its page in that file */
};

/* One test's world: the memory, a device handle, the expected state. */
struct ctx {
	char *base, *ptr;	/* layout start; tested range start */
	unsigned long first, n;	/* tested range: layout page first, n pages */
	struct page_info *page;	/* by layout page */
	int dev, fd;
	bool huge;		/* the device takes 2 MiB pages (see moves_whole()) */
	bool modern;		/* a mainline-era driver and core (see ctx_init) */
	int *gen;		/* expected generation, by range page */
	char *buf;		/* device side of READ, WRITE, MIGRATE */
	unsigned char *snap, *want;
	struct hmm_dmirror_cmd cmd;
};

static const struct kind *kind_of(const struct ctx *c, unsigned long i)
{
	return &kinds[c->page[c->first + i].kind];
}

static char *at(const struct ctx *c, unsigned long i)
{
	return c->ptr + i * pg;
}

static int dm(struct ctx *c, int fd, unsigned long req, unsigned long from,
	      unsigned long n)
{
	void *buf = req == HMM_DMIRROR_SNAPSHOT ? (void *)(c->snap + from) :
						  (void *)(c->buf + from * pg);

	return dmirror(fd, req, at(c, from), buf, n, &c->cmd);
}

/* Read one byte for real: the fault it takes is the point, not the value. */
static char read_byte(const char *addr)
{
	return __atomic_load_n(addr, __ATOMIC_RELAXED);
}

static void place(M, struct ctx *c, int k, unsigned long p, unsigned long n)
{
	const struct kind *kd = &kinds[k];
	char *addr = c->base + p * pg;
	int fd = -1;

	if (kd->file) {
		fd = open("/tmp", O_TMPFILE | O_RDWR, 0600);
		ASSERT_GE(fd, 0);
		for (unsigned long i = 0; i < n; i++) {
			fill(c->buf, p + i, 1);
			ASSERT_EQ((ssize_t)pg, pwrite(fd, c->buf, pg, i * pg));
		}
	}
	ASSERT_EQ(addr, mmap(addr, n * pg, RW, kd->flags | MAP_FIXED, fd, 0));
	/*
	 * A kind of 4 KiB pages stays so: with THP "always", khugepaged
	 * would otherwise collapse a PMD's worth of them (pmd_half) at any
	 * moment, under a test that expects PTEs.
	 */
	if (kd->thp) {
		ASSERT_EQ(0, madvise(addr, n * pg, MADV_HUGEPAGE));
	} else if (!(kd->flags & MAP_HUGETLB)) {
		ASSERT_EQ(0, madvise(addr, n * pg, MADV_NOHUGEPAGE));
	}
	for (unsigned long i = 0; i < n; i++) {
		c->page[p + i] = (struct page_info){ k, fd, i };
		if (kd->touch == 'w')
			fill(addr + i * pg, p + i, 1);
		else if (kd->touch == 'r')
			read_byte(addr + i * pg);
	}
	ASSERT_EQ(0, mprotect(addr, n * pg, kd->prot));
}

static void ctx_init(M, struct ctx *c, const struct backing *b, int dev)
{
	unsigned long total = 0, p = 0, i;
	char *space;

	ASSERT_EQ(PMD_PAGES, pg / sizeof(uint64_t));	/* 4 KiB pages, 2 MiB PMDs */
	for (i = 0; b->seg[i].npages; i++)
		total += b->seg[i].npages;
	space = mmap(NULL, (total + PMD_PAGES) * pg, PROT_NONE,
		     PRIV_ANON | MAP_NORESERVE, -1, 0);
	ASSERT_NE(MAP_FAILED, space);
	c->base = (char *)(((uintptr_t)space + PMD_PAGES * pg - 1) & ~(PMD_PAGES * pg - 1));
	c->first = b->skip;
	c->n = b->npages ? b->npages : total - b->skip;
	c->ptr = c->base + c->first * pg;
	c->page = calloc(total, sizeof(*c->page));
	c->gen = calloc(c->n, sizeof(*c->gen));
	c->buf = malloc(total * pg);
	c->snap = malloc(c->n);
	c->want = malloc(c->n);
	ASSERT_TRUE(c->page && c->gen && c->buf && c->snap && c->want);
	for (i = 0; b->seg[i].npages; p += b->seg[i++].npages)
		place(_metadata, c, b->seg[i].kind, p, b->seg[i].npages);
	memset(c->buf, SENTINEL, c->n * pg);
	for (i = 0; i < c->n; i++)
		c->gen[i] = kind_of(c, i)->gen;
	c->dev = dev;
	c->fd = dev_open(dev);
	ASSERT_GE(c->fd, 0);
	/*
	 * A driver with HMM_DMIRROR_FLAGS is a mainline-era one: 2 MiB
	 * device pages, and make_device_exclusive() under it.
	 */
	c->modern = !dmirror(c->fd, HMM_DMIRROR_FLAGS, NULL, NULL, 0, NULL);
	c->huge = !coherent(dev) && c->modern;
}

/* First range page whose CPU view differs from gen[], or -1. */
static long cpu_mismatch(const struct ctx *c)
{
	for (unsigned long i = 0; i < c->n; i++) {
		bool hidden = !(kind_of(c, i)->prot & PROT_READ);
		bool same;

		if (hidden && mprotect(at(c, i), pg, PROT_READ))
			return i;
		same = holds(at(c, i), c->first + i, c->gen[i]);
		if (hidden && mprotect(at(c, i), pg, PROT_NONE))
			return i;
		if (!same)
			return i;
	}
	return -1;
}

static void expect_cpu(M, const struct ctx *c)
{
	long bad = cpu_mismatch(c);

	ASSERT_EQ(-1, bad) TH_LOG("CPU sees the wrong data in page %ld", bad);
}

static void expect_buf(M, const struct ctx *c, unsigned long from, unsigned long n)
{
	for (unsigned long i = from; i < from + n; i++) {
		ASSERT_TRUE(holds(c->buf + i * pg, c->first + i, c->gen[i]))
			TH_LOG("device copy of page %lu is wrong", i);
	}
}

static void expect_untouched(M, const struct ctx *c)
{
	for (size_t i = 0; i < c->n * pg; i++) {
		unsigned char byte = c->buf[i];

		ASSERT_EQ(SENTINEL, byte) TH_LOG("byte %zu", i);
	}
}

/* Files: a shared page carries the last store, a private one never does. */
static void expect_files(M, const struct ctx *c)
{
	char *copy = malloc(pg);

	for (unsigned long i = 0; i < c->n; i++) {
		const struct page_info *pi = &c->page[c->first + i];

		if (pi->fd < 0)
			continue;
		ASSERT_EQ((ssize_t)pg, pread(pi->fd, copy, pg, pi->fpage * pg));
		ASSERT_TRUE(holds(copy, c->first + i,
				  kinds[pi->kind].shared ? c->gen[i] : 1))
			TH_LOG("file behind page %lu", i);
	}
	free(copy);
}

/* Snapshot pages [from, from + n) through fd and compare with want[]. */
static void expect_snap_range(M, struct ctx *c, int fd, unsigned long from,
			      unsigned long n)
{
	ASSERT_EQ(0, dm(c, fd, HMM_DMIRROR_SNAPSHOT, from, n));
	ASSERT_EQ(n, c->cmd.cpages);
	for (unsigned long i = from; i < from + n; i++) {
		unsigned char want = c->want[i];

		ASSERT_EQ(want, c->snap[i]) TH_LOG("snapshot of page %lu", i);
	}
}

static void expect_snap(M, struct ctx *c, int fd)
{
	expect_snap_range(_metadata, c, fd, 0, c->n);
}

static void want_all(struct ctx *c, int snap)
{
	memset(c->want, snap, c->n);
}

static void set_gen(struct ctx *c, unsigned long from, unsigned long n, int gen)
{
	for (unsigned long i = from; i < from + n; i++) {
		fill(at(c, i), c->first + i, gen);
		c->gen[i] = gen;
	}
}

/* Device READ of pages [from, from + n): data checked, faults returned. */
static long device_read(M, struct ctx *c, int fd, unsigned long from, unsigned long n)
{
	ASSERT_EQ(0, dm(c, fd, HMM_DMIRROR_READ, from, n));
	ASSERT_EQ(n, c->cmd.cpages);
	expect_buf(_metadata, c, from, n);
	return c->cmd.faults;
}

/* ---- What a whole range does, derived from its pages ------------------ */

static int access_err(const struct ctx *c, bool write)
{
	for (unsigned long i = 0; i < c->n; i++) {
		int err = write ? kind_of(c, i)->write_err : kind_of(c, i)->read_err;

		if (err)
			return err;
	}
	return 0;
}

static int migrate_err(const struct ctx *c)
{
	int err = 0;

	for (unsigned long i = 0; i < c->n; i++) {
		if (kind_of(c, i)->move == REFUSED)
			return -EINVAL;
		if (kind_of(c, i)->move == STAYS)
			err = -ENOENT;
	}
	return err;
}

/* Does page i move when the whole range's migration returns err? */
static bool moves(const struct ctx *c, int err, unsigned long i)
{
	return err != -EINVAL && kind_of(c, i)->move == MOVES;
}

static int perm(const struct kind *k)
{
	return k->prot & PROT_WRITE ? SN_W : SN_R;
}

/*
 * Does page i move as part of a 2 MiB device page? A THP the CPU maps
 * whole, read-only or not, whose whole PMD lies in the range does, on a
 * device-private device of a driver that has them; it comes back to
 * system memory whole too. Anything else moves page by page (a THP split
 * first).
 */
static bool moves_whole(const struct ctx *c, unsigned long i)
{
	unsigned long p = c->first + i, head = p - p % PMD_PAGES, q;
	int k = c->page[p].kind;

	if (!c->huge || (k != THP && k != THP_RO) || head < c->first ||
	    head + PMD_PAGES > c->first + c->n)
		return false;
	for (q = head; q < head + PMD_PAGES; q++)
		if (c->page[q].kind != k)
			return false;
	return true;
}

/* The snapshot PMD bit of page i once it moved (either way). */
static int moved_pmd(const struct ctx *c, unsigned long i)
{
	return moves_whole(c, i) ? SN_PMD : 0;
}

/* ---- mem: every operation over every backing ---------------------------- */

FIXTURE(mem) {
	struct ctx c;
};

FIXTURE_VARIANT(mem) {
	const struct backing *backing;
	int dev;
};

FIXTURE_VARIANT_ADD(mem, anon_private) { &anon, PRIV0 };
FIXTURE_VARIANT_ADD(mem, anon_coherent) { &anon, COH0 };
FIXTURE_VARIANT_ADD(mem, anon_shared_private) { &anon_shared, PRIV0 };
FIXTURE_VARIANT_ADD(mem, anon_shared_coherent) { &anon_shared, COH0 };
FIXTURE_VARIANT_ADD(mem, thp_private) { &thp, PRIV0 };
FIXTURE_VARIANT_ADD(mem, thp_coherent) { &thp, COH0 };
FIXTURE_VARIANT_ADD(mem, thp_unaligned_private) { &thp_unaligned, PRIV0 };
FIXTURE_VARIANT_ADD(mem, thp_unaligned_coherent) { &thp_unaligned, COH0 };
FIXTURE_VARIANT_ADD(mem, thp_readonly_private) { &thp_readonly, PRIV0 };
FIXTURE_VARIANT_ADD(mem, thp_readonly_coherent) { &thp_readonly, COH0 };
FIXTURE_VARIANT_ADD(mem, pmd_half_private) { &pmd_half, PRIV0 };
FIXTURE_VARIANT_ADD(mem, pmd_half_coherent) { &pmd_half, COH0 };
FIXTURE_VARIANT_ADD(mem, hugetlb_private) { &hugetlb, PRIV0 };
FIXTURE_VARIANT_ADD(mem, hugetlb_coherent) { &hugetlb, COH0 };
FIXTURE_VARIANT_ADD(mem, file_private_private) { &file_private, PRIV0 };
FIXTURE_VARIANT_ADD(mem, file_private_coherent) { &file_private, COH0 };
FIXTURE_VARIANT_ADD(mem, file_cow_private) { &file_cow, PRIV0 };
FIXTURE_VARIANT_ADD(mem, file_cow_coherent) { &file_cow, COH0 };
FIXTURE_VARIANT_ADD(mem, file_shared_private) { &file_shared, PRIV0 };
FIXTURE_VARIANT_ADD(mem, file_shared_coherent) { &file_shared, COH0 };
FIXTURE_VARIANT_ADD(mem, zero_private) { &zero, PRIV0 };
FIXTURE_VARIANT_ADD(mem, zero_coherent) { &zero, COH0 };
FIXTURE_VARIANT_ADD(mem, readonly_private) { &readonly, PRIV0 };
FIXTURE_VARIANT_ADD(mem, readonly_coherent) { &readonly, COH0 };
FIXTURE_VARIANT_ADD(mem, noaccess_private) { &noaccess, PRIV0 };
FIXTURE_VARIANT_ADD(mem, noaccess_coherent) { &noaccess, COH0 };
FIXTURE_VARIANT_ADD(mem, empty_private) { &empty, PRIV0 };
FIXTURE_VARIANT_ADD(mem, empty_coherent) { &empty, COH0 };
FIXTURE_VARIANT_ADD(mem, mixed_private) { &mixed, PRIV0 };
FIXTURE_VARIANT_ADD(mem, mixed_coherent) { &mixed, COH0 };

FIXTURE_SETUP(mem)
{
	ctx_init(_metadata, &self->c, variant->backing, variant->dev);
}

FIXTURE_TEARDOWN(mem)
{
	close(self->c.fd);
}

/* The device reads the range: one device fault, then none while it is valid. */
TEST_F(mem, read)
{
	struct ctx *c = &self->c;
	int err = access_err(c, false);

	ASSERT_EQ(err, dm(c, c->fd, HMM_DMIRROR_READ, 0, c->n));
	if (err) {
		expect_untouched(_metadata, c);
	} else {
		ASSERT_EQ(c->n, c->cmd.cpages);
		ASSERT_EQ(1, c->cmd.faults);
		expect_buf(_metadata, c, 0, c->n);
		ASSERT_EQ(0, device_read(_metadata, c, c->fd, 0, c->n));
	}
	expect_cpu(_metadata, c);
}

/* The device writes the range; what it may not write stays as it was. */
TEST_F(mem, write)
{
	struct ctx *c = &self->c;
	int err = access_err(c, true);
	unsigned long i;

	for (i = 0; i < c->n; i++)
		fill(c->buf + i * pg, c->first + i, 2);
	ASSERT_EQ(err, dm(c, c->fd, HMM_DMIRROR_WRITE, 0, c->n));
	for (i = 0; i < c->n; i++)
		c->want[i] = err ? kind_of(c, i)->snap :
			     SN_W | (kind_of(c, i)->snap & SN_PMD);
	if (!err) {
		ASSERT_EQ(c->n, c->cmd.cpages);
		ASSERT_EQ(1, c->cmd.faults);
		for (i = 0; i < c->n; i++)
			c->gen[i] = 2;
	}
	expect_snap(_metadata, c, c->fd);
	expect_cpu(_metadata, c);
	expect_files(_metadata, c);
}

/* A snapshot reports each kind as the table says, and faults nothing in. */
TEST_F(mem, snapshot)
{
	struct ctx *c = &self->c;

	for (unsigned long i = 0; i < c->n; i++)
		c->want[i] = kind_of(c, i)->snap;
	expect_snap(_metadata, c, c->fd);
	expect_snap(_metadata, c, c->fd);
}

/* Migration to the device: what moves is mapped by it, the rest is not. */
TEST_F(mem, migrate)
{
	struct ctx *c = &self->c;
	int err = migrate_err(c);

	ASSERT_EQ(err, dm(c, c->fd, HMM_DMIRROR_MIGRATE_TO_DEV, 0, c->n));
	if (!err) {
		ASSERT_EQ(c->n, c->cmd.cpages);
		expect_buf(_metadata, c, 0, c->n);
	}
	for (unsigned long i = 0; i < c->n; i++)
		c->want[i] = moves(c, err, i) ?
			     local(c->dev) | perm(kind_of(c, i)) | moved_pmd(c, i) :
			     kind_of(c, i)->snap;
	expect_snap(_metadata, c, c->fd);
	/*
	 * Reading back a range that mixes pages on this device-private device
	 * with pages it has not mirrored yet oopses upstream's driver (it maps
	 * the ZONE_DEVICE page itself, then copies from it): not exercised.
	 */
	if (!access_err(c, false) && (!err || coherent(c->dev)))
		ASSERT_EQ(err ? 1 : 0, device_read(_metadata, c, c->fd, 0, c->n));
}

/*
 * A device fault that moves the range in, in one walk of the CPU page table
 * (hmm_range_fault() with HMM_PFN_REQ_MIGRATE): what can move moves, empty
 * addresses as fresh zeroed pages, the rest is mapped where it is; the
 * device then reads it all without a fault of its own. A driver of 6.12
 * has no such command.
 */
TEST_F(mem, migrate_on_fault)
{
	struct ctx *c = &self->c;
	int err = migrate_err(c) == -EINVAL ? -EINVAL : 0;
	unsigned long i, moved = 0;

	if (!c->modern) {
		ASSERT_EQ(-EINVAL, dm(c, c->fd, HMM_DMIRROR_MIGRATE_ON_FAULT_TO_DEV,
				      0, c->n));
		expect_cpu(_metadata, c);
		return;
	}
	ASSERT_EQ(err, dm(c, c->fd, HMM_DMIRROR_MIGRATE_ON_FAULT_TO_DEV, 0, c->n));
	for (i = 0; i < c->n; i++) {
		moved += moves(c, err, i);
		c->want[i] = moves(c, err, i) ?
			     local(c->dev) | perm(kind_of(c, i)) | moved_pmd(c, i) :
			     kind_of(c, i)->snap;
	}
	if (!err) {
		ASSERT_EQ(moved, c->cmd.cpages);
		ASSERT_EQ(0, c->cmd.faults);
		expect_buf(_metadata, c, 0, c->n);
	}
	expect_snap(_metadata, c, c->fd);
	expect_cpu(_metadata, c);
	expect_files(_metadata, c);
}

/*
 * The CPU touches migrated memory: device-private pages fault back to system
 * memory (and out of the device's mirror), coherent ones are used in place.
 */
TEST_F(mem, cpu_access)
{
	struct ctx *c = &self->c;
	int err = migrate_err(c);

	ASSERT_EQ(err, dm(c, c->fd, HMM_DMIRROR_MIGRATE_TO_DEV, 0, c->n));
	expect_cpu(_metadata, c);
	for (unsigned long i = 0; i < c->n; i++)
		c->want[i] = !moves(c, err, i) ? kind_of(c, i)->snap :
			     coherent(c->dev) ? local(c->dev) | perm(kind_of(c, i)) :
			     perm(kind_of(c, i)) | moved_pmd(c, i);
	expect_snap(_metadata, c, c->fd);
	if (!access_err(c, false))
		ASSERT_EQ(!err && coherent(c->dev) ? 0 : 1,
			  device_read(_metadata, c, c->fd, 0, c->n));
}

/* Explicit migration back counts exactly the pages that had moved. */
TEST_F(mem, migrate_back)
{
	struct ctx *c = &self->c;
	int err = migrate_err(c);
	unsigned long i, moved = 0;

	ASSERT_EQ(err, dm(c, c->fd, HMM_DMIRROR_MIGRATE_TO_DEV, 0, c->n));
	ASSERT_EQ(err == -EINVAL ? -EINVAL : 0,
		  dm(c, c->fd, HMM_DMIRROR_MIGRATE_TO_SYS, 0, c->n));
	for (i = 0; i < c->n; i++) {
		moved += moves(c, err, i);
		c->want[i] = moves(c, err, i) ? perm(kind_of(c, i)) | moved_pmd(c, i) :
			     kind_of(c, i)->snap;
	}
	if (err != -EINVAL)
		ASSERT_EQ(moved, c->cmd.cpages);
	expect_snap(_metadata, c, c->fd);
	expect_cpu(_metadata, c);
	if (!access_err(c, false))
		ASSERT_EQ(1, device_read(_metadata, c, c->fd, 0, c->n));
}

/* Another process stored gen everywhere: only our shared pages show it. */
static void seen_from_other(struct ctx *c, int gen)
{
	for (unsigned long i = 0; i < c->n; i++)
		if (kind_of(c, i)->shared && kind_of(c, i)->prot & PROT_WRITE)
			c->gen[i] = gen;
}

/* CPU, files and (where it may read) the device all hold what gen[] says. */
static void expect_settled(M, struct ctx *c)
{
	expect_cpu(_metadata, c);
	expect_files(_metadata, c);
	if (!access_err(c, false))
		device_read(_metadata, c, c->fd, 0, c->n);
}

/* A child's device writes its copy: private pages COW, shared ones do not. */
TEST_F(mem, fork_device_write)
{
	struct ctx *c = &self->c;
	int err = access_err(c, true);
	unsigned long i;
	pid_t pid;

	for (i = 0; i < c->n; i++)
		fill(c->buf + i * pg, c->first + i, 2);
	pid = fork();
	if (!pid) {
		int fd = dev_open(c->dev);

		if (dmirror(fd, HMM_DMIRROR_WRITE, c->ptr, c->buf, c->n, NULL) != err)
			_exit(1);
		for (i = 0; i < c->n && !err; i++)
			c->gen[i] = 2;
		_exit(cpu_mismatch(c) < 0 ? 0 : 2);
	}
	ASSERT_EQ(0, wait_child(pid));
	if (!err)
		seen_from_other(c, 2);
	expect_settled(_metadata, c);
}

static void cpu_write_all(struct ctx *c, int gen)
{
	for (unsigned long i = 0; i < c->n; i++)
		if (kind_of(c, i)->prot & PROT_WRITE)
			set_gen(c, i, 1, gen);
}

/* After migration and fork, the child's stores stay in the child. */
TEST_F(mem, cow_child_writes)
{
	struct ctx *c = &self->c;
	pid_t pid;

	ASSERT_EQ(migrate_err(c), dm(c, c->fd, HMM_DMIRROR_MIGRATE_TO_DEV, 0, c->n));
	pid = fork();
	if (!pid) {
		cpu_write_all(c, 3);
		_exit(cpu_mismatch(c) < 0 ? 0 : 1);
	}
	ASSERT_EQ(0, wait_child(pid));
	seen_from_other(c, 3);
	expect_settled(_metadata, c);
}

/*
 * After migration and fork, private pages are shared copy-on-write: the
 * parent's device may only read them, and the parent's stores stay in the
 * parent.
 */
TEST_F(mem, cow_parent_writes)
{
	struct ctx *c = &self->c;
	int err = migrate_err(c), go[2];
	pid_t pid;

	ASSERT_EQ(err, dm(c, c->fd, HMM_DMIRROR_MIGRATE_TO_DEV, 0, c->n));
	ASSERT_EQ(0, pipe(go));
	pid = fork();
	if (!pid) {
		char token;

		close(go[1]);	/* a parent that fails first must not leave us waiting */
		if (read(go[0], &token, 1) != 1)
			_exit(1);
		seen_from_other(c, 3);
		_exit(cpu_mismatch(c) < 0 ? 0 : 2);
	}
	for (unsigned long i = 0; i < c->n; i++) {
		int snap = kind_of(c, i)->snap;

		/* Shared read-only with the child, a 2 MiB page whole. */
		if (moves(c, err, i))
			snap = local(c->dev) | SN_R | moved_pmd(c, i);
		else if (!kind_of(c, i)->shared && snap != SN_ERR && snap & SN_W)
			snap = (snap & ~SN_W) | SN_R;
		c->want[i] = snap;
	}
	expect_snap(_metadata, c, c->fd);
	cpu_write_all(c, 3);
	ASSERT_EQ(1, write(go[1], "x", 1));
	ASSERT_EQ(0, wait_child(pid));
	expect_settled(_metadata, c);
}

/* Exclusive access: granted for private anonymous pages, undone by the CPU. */
TEST_F(mem, exclusive)
{
	struct ctx *c = &self->c;
	int worst = EXCL_OK, ret;

	for (unsigned long i = 0; i < c->n; i++) {
		int excl = kind_of(c, i)->excl;

		if (excl == EXCL_THP && c->modern)
			excl = EXCL_OK;
		if (excl > worst)
			worst = excl;
	}
	ret = dm(c, c->fd, HMM_DMIRROR_EXCLUSIVE, 0, c->n);
	if (worst == EXCL_NEVER)
		ASSERT_TRUE(ret < 0);
	if (worst == EXCL_REFUSED && c->modern)
		ASSERT_EQ(-EOPNOTSUPP, ret);
	if (worst == EXCL_REFUSED && !c->modern && ret != -EINVAL)
		ASSERT_EQ(-EBUSY, ret);
	if (worst < EXCL_REFUSED)
		ASSERT_EQ(worst == EXCL_OK ? 0 : -EBUSY, ret);
	if (!ret) {
		ASSERT_EQ(c->n, c->cmd.cpages);
		expect_buf(_metadata, c, 0, c->n);
		ASSERT_EQ(-EPERM, dm(c, c->fd, HMM_DMIRROR_CHECK_EXCLUSIVE, 0, c->n));
	}
	expect_cpu(_metadata, c);
	ASSERT_EQ(0, dm(c, c->fd, HMM_DMIRROR_CHECK_EXCLUSIVE, 0, c->n));
}

/* ---- dev: what each device does with its own memory --------------------- */

FIXTURE(dev) {
	struct ctx c;
};

FIXTURE_VARIANT(dev) {
	int dev;
};

FIXTURE_VARIANT_ADD(dev, private0) { PRIV0 };
FIXTURE_VARIANT_ADD(dev, private1) { PRIV1 };
FIXTURE_VARIANT_ADD(dev, coherent0) { COH0 };
FIXTURE_VARIANT_ADD(dev, coherent1) { COH1 };

FIXTURE_SETUP(dev)
{
	ctx_init(_metadata, &self->c, &anon, variant->dev);
}

FIXTURE_TEARDOWN(dev)
{
	close(self->c.fd);
}

static void to_device(M, struct ctx *c, unsigned long from, unsigned long n)
{
	ASSERT_EQ(0, dm(c, c->fd, HMM_DMIRROR_MIGRATE_TO_DEV, from, n));
	ASSERT_EQ(n, c->cmd.cpages);
	expect_buf(_metadata, c, from, n);
}

/* RELEASE evicts the device's memory; the data survives, the device recovers. */
TEST_F(dev, release)
{
	struct ctx *c = &self->c;

	to_device(_metadata, c, 0, c->n);
	ASSERT_EQ(0, dm(c, c->fd, HMM_DMIRROR_RELEASE, 0, c->n));
	want_all(c, SN_W);
	expect_snap(_metadata, c, c->fd);
	expect_cpu(_metadata, c);
	to_device(_metadata, c, 0, c->n);
	want_all(c, local(c->dev) | SN_W);
	expect_snap(_metadata, c, c->fd);
}

/* Closing the handle that migrated the memory loses none of it. */
TEST_F(dev, close)
{
	struct ctx *c = &self->c;
	int fd = dev_open(c->dev);

	ASSERT_EQ(0, dm(c, fd, HMM_DMIRROR_MIGRATE_TO_DEV, 0, c->n));
	ASSERT_EQ(0, close(fd));
	device_read(_metadata, c, c->fd, 0, c->n);
	expect_cpu(_metadata, c);
}

/* Round trips with new data each time; the way back is the device's own. */
TEST_F(dev, cycles)
{
	struct ctx *c = &self->c;

	for (int round = 2; round < 6; round++) {
		to_device(_metadata, c, 0, c->n);
		if (coherent(c->dev)) {
			ASSERT_EQ(0, dm(c, c->fd, HMM_DMIRROR_MIGRATE_TO_SYS, 0, c->n));
			ASSERT_EQ(c->n, c->cmd.cpages);
		}
		expect_cpu(_metadata, c);
		want_all(c, SN_W);
		expect_snap(_metadata, c, c->fd);
		set_gen(c, 0, c->n, round);
	}
}

/* The CPU stores into migrated memory; the device reads what was stored. */
TEST_F(dev, cpu_write)
{
	struct ctx *c = &self->c;

	to_device(_metadata, c, 0, c->n);
	set_gen(c, 0, c->n, 7);
	want_all(c, coherent(c->dev) ? local(c->dev) | SN_W : SN_W);
	expect_snap(_metadata, c, c->fd);
	device_read(_metadata, c, c->fd, 0, c->n);
}

/* Migrating what is already on the device moves nothing and loses nothing. */
TEST_F(dev, migrate_twice)
{
	struct ctx *c = &self->c;

	to_device(_metadata, c, 0, c->n);
	memset(c->buf, SENTINEL, c->n * pg);
	to_device(_metadata, c, 0, c->n);
	want_all(c, local(c->dev) | SN_W);
	expect_snap(_metadata, c, c->fd);
}

/* Migrating system memory back to system memory is a counted no-op. */
TEST_F(dev, migrate_back_idle)
{
	struct ctx *c = &self->c;

	ASSERT_EQ(0, dm(c, c->fd, HMM_DMIRROR_MIGRATE_TO_SYS, 0, c->n));
	ASSERT_EQ(0, c->cmd.cpages);
	want_all(c, SN_W);
	expect_snap(_metadata, c, c->fd);
	expect_cpu(_metadata, c);
}

/* Half a range on the device: only the other half needs a device fault. */
TEST_F(dev, half_range)
{
	struct ctx *c = &self->c;
	unsigned long half = c->n / 2;

	to_device(_metadata, c, half, c->n - half);
	memset(c->want, SN_W, half);
	memset(c->want + half, local(c->dev) | SN_W, c->n - half);
	expect_snap(_metadata, c, c->fd);
	ASSERT_EQ(1, device_read(_metadata, c, c->fd, 0, half));
	ASSERT_EQ(0, device_read(_metadata, c, c->fd, half, c->n - half));
	expect_cpu(_metadata, c);
}

/* An unmapped tail: the snapshot marks it an error, a read fails on it. */
TEST_F(dev, hole)
{
	struct ctx *c = &self->c;
	unsigned long tail = 8;

	ASSERT_EQ(0, munmap(at(c, c->n - tail), tail * pg));
	want_all(c, SN_W);
	memset(c->want + c->n - tail, SN_ERR, tail);
	expect_snap(_metadata, c, c->fd);
	ASSERT_EQ(-EFAULT, dm(c, c->fd, HMM_DMIRROR_READ, 0, c->n));
	ASSERT_EQ(-EINVAL, dm(c, c->fd, HMM_DMIRROR_MIGRATE_TO_DEV, c->n - tail, tail));
}

/*
 * userfaultfd write protection of never-populated pages leaves a marker in
 * each empty PTE. A marker is still an empty page to everyone but uffd: a
 * snapshot reports nothing there, and a device read faults the zero page in.
 */
TEST_F(dev, uffd_wp_markers)
{
	struct ctx *c = &self->c;
	struct uffdio_api api = {
		.api = UFFD_API, .features = UFFD_FEATURE_WP_UNPOPULATED,
	};
	struct uffdio_register reg = {
		.range = { (uintptr_t)c->ptr, c->n * pg },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};
	struct uffdio_writeprotect wp = {
		.range = reg.range, .mode = UFFDIO_WRITEPROTECT_MODE_WP,
	};
	int uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	ASSERT_GE(uffd, 0);
	set_gen(c, 0, c->n, 0);		/* a CPU store: before protection */
	ASSERT_EQ(0, madvise(c->ptr, c->n * pg, MADV_DONTNEED));
	ASSERT_EQ(0, ioctl(uffd, UFFDIO_API, &api));
	ASSERT_EQ(0, ioctl(uffd, UFFDIO_REGISTER, &reg));
	ASSERT_EQ(0, ioctl(uffd, UFFDIO_WRITEPROTECT, &wp));
	want_all(c, SN_NONE);
	expect_snap(_metadata, c, c->fd);
	ASSERT_LT(0, device_read(_metadata, c, c->fd, 0, c->n));	/* faulted */
	want_all(c, SN_ZERO);
	expect_snap(_metadata, c, c->fd);
	expect_cpu(_metadata, c);
	close(uffd);
}

/*
 * get_user_pages() cannot hand out device-private pages, so it faults them
 * back; coherent pages are handed out in place unless the pin is long-term.
 */
TEST_F(dev, gup)
{
	static const struct { unsigned long cmd; unsigned int flags; bool longterm; } calls[] = {
		{ GUP_BASIC_TEST, GUP_WRITE },
		{ GUP_FAST_BENCHMARK, GUP_WRITE },
		{ PIN_FAST_BENCHMARK, GUP_WRITE | GUP_LONGTERM, true },
		{ PIN_LONGTERM_BENCHMARK, GUP_WRITE, true },
	};
	struct ctx *c = &self->c;
	int gup = open("/sys/kernel/debug/gup_test", O_RDWR);

	ASSERT_GE(gup, 0);
	to_device(_metadata, c, 0, c->n);
	want_all(c, local(c->dev) | SN_W);
	for (unsigned long i = 0; i < ARRAY_SIZE(calls); i++) {
		struct gup_test args = {
			.addr = (uintptr_t)at(c, i), .size = pg,
			.nr_pages_per_call = 1, .gup_flags = calls[i].flags,
		};

		ASSERT_EQ(0, ioctl(gup, calls[i].cmd, &args));
		if (!coherent(c->dev) || calls[i].longterm)
			c->want[i] = SN_W;
	}
	close(gup);
	expect_snap(_metadata, c, c->fd);
	expect_cpu(_metadata, c);
}

/* Exclusive access, then read-only: the device can read but not write. */
TEST_F(dev, exclusive_mprotect)
{
	struct ctx *c = &self->c;

	ASSERT_EQ(0, dm(c, c->fd, HMM_DMIRROR_EXCLUSIVE, 0, c->n));
	expect_buf(_metadata, c, 0, c->n);
	ASSERT_EQ(0, mprotect(c->ptr, c->n * pg, PROT_READ));
	ASSERT_EQ(-EPERM, dm(c, c->fd, HMM_DMIRROR_WRITE, 0, c->n));
	device_read(_metadata, c, c->fd, 0, c->n);
	expect_cpu(_metadata, c);
}

/* Exclusive access, then fork: both sides get their own writable copy. */
TEST_F(dev, exclusive_fork)
{
	struct ctx *c = &self->c;
	pid_t pid;

	ASSERT_EQ(0, dm(c, c->fd, HMM_DMIRROR_EXCLUSIVE, 0, c->n));
	pid = fork();
	if (!pid) {
		set_gen(c, 0, c->n, 5);
		_exit(cpu_mismatch(c) < 0 ? 0 : 1);
	}
	set_gen(c, 0, c->n, 6);
	ASSERT_EQ(0, wait_child(pid));
	expect_cpu(_metadata, c);
	ASSERT_EQ(0, dm(c, c->fd, HMM_DMIRROR_CHECK_EXCLUSIVE, 0, c->n));
	device_read(_metadata, c, c->fd, 0, c->n);
}

/* The device file's own mapping: readable by the device, never migrated. */
TEST_F(dev, map_device_file)
{
	struct ctx *c = &self->c;
	char *map = mmap(NULL, 4 * pg, RW, MAP_PRIVATE, c->fd, 0);

	ASSERT_NE(MAP_FAILED, map);
	ASSERT_EQ(0, dmirror(c->fd, HMM_DMIRROR_SNAPSHOT, map, c->snap, 4, &c->cmd));
	for (int i = 0; i < 4; i++)
		ASSERT_EQ(SN_R, c->snap[i]);
	ASSERT_EQ(0, dmirror(c->fd, HMM_DMIRROR_READ, map, c->buf, 4, &c->cmd));
	ASSERT_EQ(1, c->cmd.faults);
	for (int i = 0; i < 4; i++)
		ASSERT_TRUE(holds(c->buf + i * pg, 0, 0));
	ASSERT_EQ(-EINVAL, dmirror(c->fd, HMM_DMIRROR_MIGRATE_TO_DEV, map, c->buf, 4, NULL));
}

/* ---- pair: two devices over one range ----------------------------------- */

FIXTURE(pair) {
	struct ctx c;
	int other;		/* handle of device b */
};

FIXTURE_VARIANT(pair) {
	int a, b;
};

FIXTURE_VARIANT_ADD(pair, private_private) { PRIV0, PRIV1 };
FIXTURE_VARIANT_ADD(pair, coherent_coherent) { COH0, COH1 };
FIXTURE_VARIANT_ADD(pair, private_coherent) { PRIV0, COH0 };
FIXTURE_VARIANT_ADD(pair, coherent_private) { COH0, PRIV0 };

FIXTURE_SETUP(pair)
{
	ctx_init(_metadata, &self->c, &anon, variant->a);
	self->other = dev_open(variant->b);
	ASSERT_GE(self->other, 0);
}

FIXTURE_TEARDOWN(pair)
{
	close(self->other);
	close(self->c.fd);
}

/* Both devices mirror the range; b's migration invalidates a's mirror. */
TEST_F(pair, double_map)
{
	struct ctx *c = &self->c;

	ASSERT_EQ(1, device_read(_metadata, c, c->fd, 0, c->n));
	ASSERT_EQ(1, device_read(_metadata, c, self->other, 0, c->n));
	ASSERT_EQ(0, dm(c, self->other, HMM_DMIRROR_MIGRATE_TO_DEV, 0, c->n));
	ASSERT_EQ(1, device_read(_metadata, c, c->fd, 0, c->n));
	want_all(c, coherent(variant->b) ? local(variant->b) | SN_W : SN_W);
	expect_snap(_metadata, c, self->other);
	expect_cpu(_metadata, c);
}

/* b writes memory that sits on a: private pages come back first. */
TEST_F(pair, cross_write)
{
	struct ctx *c = &self->c;
	unsigned long i;

	to_device(_metadata, c, 0, c->n);
	for (i = 0; i < c->n; i++) {
		fill(c->buf + i * pg, c->first + i, 2);
		c->gen[i] = 2;
	}
	ASSERT_EQ(0, dm(c, self->other, HMM_DMIRROR_WRITE, 0, c->n));
	ASSERT_EQ(c->n, c->cmd.cpages);
	ASSERT_EQ(1, c->cmd.faults);
	want_all(c, coherent(variant->a) ? local(variant->a) | SN_W : SN_W);
	expect_snap(_metadata, c, c->fd);
	expect_cpu(_metadata, c);
}

/*
 * Migration selects system memory only: a's pages do not move to b. (b's
 * attempt invalidates a's mirror, and a device-private a then cannot read
 * its own pages through upstream's driver: the data is checked by the CPU.)
 */
TEST_F(pair, cross_migrate)
{
	struct ctx *c = &self->c;

	to_device(_metadata, c, 0, c->n);
	ASSERT_EQ(-ENOENT, dm(c, self->other, HMM_DMIRROR_MIGRATE_TO_DEV, 0, c->n));
	want_all(c, local(variant->a) | SN_W);
	expect_snap(_metadata, c, c->fd);
	expect_cpu(_metadata, c);
}

/*
 * b faults a's pages in and moves them in one walk: a's device-private
 * pages come back to system memory on the way and move on to b; a's
 * coherent pages are mapped by the CPU and do not move (b's migration
 * selects system memory only), so b maps them where they are.
 */
TEST_F(pair, migrate_on_fault)
{
	struct ctx *c = &self->c;
	bool stay = coherent(variant->a);

	to_device(_metadata, c, 0, c->n);
	if (!c->modern) {
		ASSERT_EQ(-EINVAL, dm(c, self->other,
				      HMM_DMIRROR_MIGRATE_ON_FAULT_TO_DEV, 0, c->n));
		expect_cpu(_metadata, c);
		return;
	}
	ASSERT_EQ(0, dm(c, self->other, HMM_DMIRROR_MIGRATE_ON_FAULT_TO_DEV,
			0, c->n));
	ASSERT_EQ(stay ? 0 : c->n, c->cmd.cpages);
	ASSERT_EQ(0, c->cmd.faults);
	expect_buf(_metadata, c, 0, c->n);
	if (stay) {
		want_all(c, local(variant->a) | SN_W);
		expect_snap(_metadata, c, c->fd);
		want_all(c, HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE | SN_W);
	} else {
		want_all(c, local(variant->b) | SN_W);
	}
	expect_snap(_metadata, c, self->other);
	expect_cpu(_metadata, c);
}

/* b sees a's pages as remote, and looking does not move them. */
TEST_F(pair, remote_snapshot)
{
	struct ctx *c = &self->c;

	to_device(_metadata, c, 0, c->n);
	ASSERT_EQ(0, dm(c, self->other, HMM_DMIRROR_SNAPSHOT, 0, c->n));
	for (unsigned long i = 0; i < c->n; i++) {
		ASSERT_TRUE(remote_view(variant->a, c->snap[i]))
			TH_LOG("page %lu: 0x%x", i, c->snap[i]);
	}
	want_all(c, local(variant->a) | SN_W);
	expect_snap(_metadata, c, c->fd);
}

/* Only the owner migrates its pages back. */
TEST_F(pair, back_by_owner_only)
{
	struct ctx *c = &self->c;

	to_device(_metadata, c, 0, c->n);
	ASSERT_EQ(0, dm(c, self->other, HMM_DMIRROR_MIGRATE_TO_SYS, 0, c->n));
	ASSERT_EQ(0, c->cmd.cpages);
	want_all(c, local(variant->a) | SN_W);
	expect_snap(_metadata, c, c->fd);
	ASSERT_EQ(0, dm(c, c->fd, HMM_DMIRROR_MIGRATE_TO_SYS, 0, c->n));
	ASSERT_EQ(c->n, c->cmd.cpages);
	want_all(c, SN_W);
	expect_snap(_metadata, c, c->fd);
	expect_cpu(_metadata, c);
}

/* Half on each device: each reads the whole range correctly. */
TEST_F(pair, split)
{
	struct ctx *c = &self->c;
	unsigned long i, half = c->n / 2;

	to_device(_metadata, c, 0, half);
	ASSERT_EQ(0, dm(c, self->other, HMM_DMIRROR_MIGRATE_TO_DEV, half, c->n - half));
	ASSERT_EQ(c->n - half, c->cmd.cpages);
	ASSERT_EQ(0, dm(c, c->fd, HMM_DMIRROR_SNAPSHOT, 0, c->n));
	for (i = 0; i < c->n; i++) {
		ASSERT_TRUE(i < half ? c->snap[i] == (local(variant->a) | SN_W) :
				       remote_view(variant->b, c->snap[i]))
			TH_LOG("page %lu: 0x%x", i, c->snap[i]);
	}
	device_read(_metadata, c, c->fd, 0, c->n);
	device_read(_metadata, c, self->other, 0, c->n);
	expect_cpu(_metadata, c);
}

/* ---- dthp: address-space operations on a THP in device memory ---------- */

/*
 * The range is one THP moved to the device. On a device-private device of
 * a driver with 2 MiB pages that is one device-private PMD; anywhere else
 * 512 device pages mapped by PTEs. Each operation covers the whole PMD or
 * a window inside it; a device-private PMD stays whole only where nothing
 * cuts it, and is split into PTEs (the folio where a part of it must go)
 * otherwise. Every page must hold its data afterwards, wherever the
 * operation left it, and a driver with folio counters (debugfs, ours) must
 * have been told of every folio it lost.
 */
#define WIN_FIRST	128
#define WIN_PAGES	64

FIXTURE(dthp) {
	struct ctx c;
	unsigned long w0, wn;		/* the window the operation covers */
	long freed, splits;		/* device counters before the move */
};

FIXTURE_VARIANT(dthp) {
	int dev;
	bool whole;			/* the window is the whole PMD */
};

FIXTURE_VARIANT_ADD(dthp, whole_private) { PRIV0, true };
FIXTURE_VARIANT_ADD(dthp, whole_coherent) { COH0, true };
FIXTURE_VARIANT_ADD(dthp, part_private) { PRIV0, false };
FIXTURE_VARIANT_ADD(dthp, part_coherent) { COH0, false };

/* Device pages freed so far: a 4 KiB folio is one, a 2 MiB one 512. */
static long pages_freed(int dev)
{
	return hmm_dmirror_counter(dev, "folio_free_small") +
	       PMD_PAGES * hmm_dmirror_counter(dev, "folio_free_huge");
}

FIXTURE_SETUP(dthp)
{
	struct ctx *c = &self->c;

	ctx_init(_metadata, c, &thp, variant->dev);
	self->w0 = variant->whole ? 0 : WIN_FIRST;
	self->wn = variant->whole ? c->n : WIN_PAGES;
	self->freed = pages_freed(c->dev);
	self->splits = hmm_dmirror_counter(c->dev, "folio_split");
	to_device(_metadata, c, 0, c->n);
	for (unsigned long i = 0; i < c->n; i++)
		c->want[i] = local(c->dev) | SN_W | moved_pmd(c, i);
	expect_snap(_metadata, c, c->fd);
}

FIXTURE_TEARDOWN(dthp)
{
	close(self->c.fd);
}

static bool in_win(const FIXTURE_DATA(dthp) *self, unsigned long i)
{
	return i >= self->w0 && i < self->w0 + self->wn;
}

/*
 * The snapshot after an operation that left the window's pages as @win and
 * the others as @rest: device pages keep the PMD bit while @pmd_kept (a
 * device-private PMD that nothing cut).
 */
static void want_dthp(FIXTURE_DATA(dthp) *self, int win, int rest,
		      bool pmd_kept)
{
	struct ctx *c = &self->c;

	for (unsigned long i = 0; i < c->n; i++) {
		int v = in_win(self, i) ? win : rest;

		if (pmd_kept && (v & 0xf0))
			v |= moved_pmd(c, i);
		c->want[i] = v;
	}
}

/* Write generation @gen into the window with the CPU (faulting it back). */
static void cpu_write_win(FIXTURE_DATA(dthp) *self, int gen)
{
	set_gen(&self->c, self->w0, self->wn, gen);
}

/*
 * What the driver was told since setup: @freed of its pages freed, and,
 * when @splits >= 0, that many 2 MiB folios split. Only a driver with the
 * counters can be asked.
 */
static void expect_events(M, FIXTURE_DATA(dthp) *self, long freed,
			  long splits)
{
	const struct ctx *c = &self->c;

	if (!c->modern)
		return;
	ASSERT_EQ(self->freed + freed, pages_freed(c->dev));
	if (splits >= 0)
		ASSERT_EQ(self->splits + splits,
			  hmm_dmirror_counter(c->dev, "folio_split"));
}

/*
 * The events once every page the process still maps was read by the CPU:
 * a device-private page came back to system memory (all 512 freed; a
 * device THP the operation @cut into PTEs split once on the way back); a
 * coherent one is read in place, so only the @gone pages the operation
 * dropped were freed.
 */
static void expect_all_back(M, FIXTURE_DATA(dthp) *self, long gone, bool cut)
{
	const struct ctx *c = &self->c;

	if (coherent(c->dev))
		expect_events(_metadata, self, gone, 0);
	else
		expect_events(_metadata, self, c->n, c->huge && cut ? 1 : -1);
}

/*
 * Where upstream's driver can be trusted with its own device-private
 * pages: it oopses reading a range it half mirrors, and warns when told to
 * write one the CPU made read-only.
 */
static bool driver_sane(const struct ctx *c)
{
	return c->modern || coherent(c->dev);
}

/* Device READ of the range, where the driver can be trusted with it. */
static void device_read_dthp(M, struct ctx *c)
{
	if (driver_sane(c))
		device_read(_metadata, c, c->fd, 0, c->n);
}

/* munmap: a whole PMD is freed at once, a cut one when the rest comes back. */
TEST_F(dthp, munmap)
{
	struct ctx *c = &self->c;

	ASSERT_EQ(0, munmap(at(c, self->w0), self->wn * pg));
	want_dthp(self, SN_ERR, local(c->dev) | SN_W, false);
	expect_snap(_metadata, c, c->fd);
	expect_events(_metadata, self,
		      variant->whole || !c->huge ? (long)self->wn : 0,
		      variant->whole ? 0 : -1);
	for (unsigned long i = 0; i < c->n; i++) {
		if (in_win(self, i))
			continue;
		ASSERT_TRUE(holds(at(c, i), c->first + i, c->gen[i]))
			TH_LOG("CPU sees the wrong data in page %lu", i);
	}
	expect_all_back(_metadata, self, self->wn, !variant->whole);
}

/* mprotect read-only: the device may read, not write; then writable again. */
TEST_F(dthp, mprotect)
{
	struct ctx *c = &self->c;

	ASSERT_EQ(0, mprotect(at(c, self->w0), self->wn * pg, PROT_READ));
	want_dthp(self, local(c->dev) | SN_R, local(c->dev) | SN_W,
		  variant->whole);
	expect_snap(_metadata, c, c->fd);
	device_read_dthp(_metadata, c);
	if (driver_sane(c))
		ASSERT_EQ(-EPERM, dm(c, c->fd, HMM_DMIRROR_WRITE, self->w0,
				     self->wn));
	ASSERT_EQ(0, mprotect(at(c, self->w0), self->wn * pg, RW));
	cpu_write_win(self, 2);
	expect_cpu(_metadata, c);
	expect_all_back(_metadata, self, 0, !variant->whole);
}

/*
 * uffd-wp on the window, then mprotect read-only and back: the entries keep
 * their uffd-wp bit (pagemap), and the device cannot write through it.
 */
TEST_F(dthp, mprotect_uffd_wp)
{
	struct ctx *c = &self->c;
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = {
		.range = { (uintptr_t)c->ptr, c->n * pg },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};
	struct uffdio_writeprotect wp = {
		.range = { (uintptr_t)at(c, self->w0), self->wn * pg },
		.mode = UFFDIO_WRITEPROTECT_MODE_WP,
	};
	int uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	ASSERT_GE(uffd, 0);
	ASSERT_EQ(0, ioctl(uffd, UFFDIO_API, &api));
	ASSERT_EQ(0, ioctl(uffd, UFFDIO_REGISTER, &reg));
	ASSERT_EQ(0, ioctl(uffd, UFFDIO_WRITEPROTECT, &wp));
	ASSERT_EQ(0, mprotect(at(c, self->w0), self->wn * pg, PROT_READ));
	ASSERT_EQ(0, mprotect(at(c, self->w0), self->wn * pg, RW));
	for (unsigned long i = 0; i < c->n; i++) {
		uint64_t e = hmm_pagemap(at(c, i));

		ASSERT_EQ(in_win(self, i), !!(e & PM_UFFD_WP))
			TH_LOG("page %lu: pagemap %#llx", i, (unsigned long long)e);
	}
	want_dthp(self, local(c->dev) | SN_R, local(c->dev) | SN_W,
		  variant->whole);
	expect_snap(_metadata, c, c->fd);
	if (driver_sane(c))
		ASSERT_GT(0, dm(c, c->fd, HMM_DMIRROR_WRITE, self->w0,
				self->wn));
	wp.mode = 0;
	ASSERT_EQ(0, ioctl(uffd, UFFDIO_WRITEPROTECT, &wp));
	cpu_write_win(self, 2);
	expect_cpu(_metadata, c);
	close(uffd);
}

/* MADV_DONTNEED: the window reads as zeroes, the rest keeps its data. */
TEST_F(dthp, dontneed)
{
	struct ctx *c = &self->c;

	ASSERT_EQ(0, madvise(at(c, self->w0), self->wn * pg, MADV_DONTNEED));
	want_dthp(self, SN_NONE, local(c->dev) | SN_W, false);
	expect_snap(_metadata, c, c->fd);
	for (unsigned long i = self->w0; i < self->w0 + self->wn; i++)
		c->gen[i] = 0;
	expect_cpu(_metadata, c);
	expect_all_back(_metadata, self, self->wn, !variant->whole);
}

/*
 * mremap: a whole PMD moves to another 2 MiB boundary as it is; a window
 * moves out (cutting the PMD) and back, and its pages are the device's
 * at both places.
 */
TEST_F(dthp, mremap)
{
	struct ctx *c = &self->c;
	size_t len = self->wn * pg;
	char *space, *to, *from = at(c, self->w0);

	space = mmap(NULL, len + PMD_PAGES * pg, PROT_NONE,
		     PRIV_ANON | MAP_NORESERVE, -1, 0);
	ASSERT_NE(MAP_FAILED, space);
	to = (char *)(((uintptr_t)space + PMD_PAGES * pg - 1) &
		      ~(PMD_PAGES * pg - 1));
	ASSERT_EQ(to, mremap(from, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to));
	ASSERT_EQ(0, dmirror(c->fd, HMM_DMIRROR_SNAPSHOT, to, c->snap, self->wn,
			     &c->cmd));
	for (unsigned long i = 0; i < self->wn; i++) {
		ASSERT_EQ(local(c->dev) | SN_W |
			  (variant->whole ? moved_pmd(c, i) : 0), c->snap[i])
			TH_LOG("moved page %lu", i);
	}
	if (variant->whole) {
		c->ptr = to;	/* the range lives there now */
	} else {
		ASSERT_EQ(from, mremap(to, len, len,
				       MREMAP_MAYMOVE | MREMAP_FIXED, from));
	}
	want_dthp(self, local(c->dev) | SN_W, local(c->dev) | SN_W,
		  variant->whole);
	expect_snap(_metadata, c, c->fd);
	device_read_dthp(_metadata, c);
	expect_cpu(_metadata, c);
	expect_all_back(_metadata, self, 0, !variant->whole);
}

/*
 * fork: both processes share the device THP read-only; a write in either
 * (to the window) stays in that process.
 */
TEST_F(dthp, fork)
{
	struct ctx *c = &self->c;
	int go[2];
	pid_t pid;

	ASSERT_EQ(0, pipe(go));
	pid = fork();
	if (!pid) {
		char token;

		close(go[1]);
		if (read(go[0], &token, 1) != 1)
			_exit(1);
		if (cpu_mismatch(c) >= 0)	/* the parent's writes: not here */
			_exit(2);
		cpu_write_win(self, 3);
		_exit(cpu_mismatch(c) < 0 ? 0 : 3);
	}
	want_dthp(self, local(c->dev) | SN_R, local(c->dev) | SN_R, true);
	expect_snap(_metadata, c, c->fd);
	cpu_write_win(self, 4);
	expect_cpu(_metadata, c);
	ASSERT_EQ(1, write(go[1], "x", 1));
	ASSERT_EQ(0, wait_child(pid));
	expect_cpu(_metadata, c);
	device_read_dthp(_metadata, c);
}

/* smaps of the window's mapping: resident, anonymous and private. */
TEST_F(dthp, smaps)
{
	struct ctx *c = &self->c;
	long rss = -1, anon = -1, thp = -1, priv = 0, v;
	char line[256], key[64];
	bool ours = false;
	FILE *f;

	/* A window of its own mapping: its own smaps entry. */
	if (!variant->whole)
		ASSERT_EQ(0, mprotect(at(c, self->w0), self->wn * pg, PROT_READ));
	f = fopen("/proc/self/smaps", "r");
	ASSERT_NE(NULL, f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
			ours = lo == (uintptr_t)at(c, self->w0);
			continue;
		}
		if (!ours || sscanf(line, "%63[^:]: %ld kB", key, &v) != 2)
			continue;
		if (!strcmp(key, "Rss"))
			rss = v;
		else if (!strcmp(key, "Anonymous"))
			anon = v;
		else if (!strcmp(key, "AnonHugePages"))
			thp = v;
		else if (!strcmp(key, "Private_Clean") ||
			 !strcmp(key, "Private_Dirty"))
			priv += v;
	}
	fclose(f);
	ASSERT_EQ((long)(self->wn * pg / 1024), rss);
	ASSERT_EQ(rss, anon);
	ASSERT_EQ(rss, priv);		/* mapped once: private */
	ASSERT_EQ(c->huge && variant->whole ? rss : 0, thp);
	ASSERT_EQ(0, mprotect(c->ptr, c->n * pg, RW));
	expect_cpu(_metadata, c);
}

/*
 * pagemap of the window: device-private pages are swap-like entries whose
 * offsets are the folio's consecutive frames; coherent ones are present.
 */
TEST_F(dthp, pagemap)
{
	struct ctx *c = &self->c;
	uint64_t first = hmm_pagemap(at(c, self->w0));

	for (unsigned long i = self->w0; i < self->w0 + self->wn; i++) {
		uint64_t e = hmm_pagemap(at(c, i));

		if (coherent(c->dev)) {
			ASSERT_EQ(PM_PRESENT, e & (PM_PRESENT | PM_SWAP))
				TH_LOG("page %lu: %#llx", i, (unsigned long long)e);
			continue;
		}
		ASSERT_EQ(PM_SWAP, e & (PM_PRESENT | PM_SWAP))
			TH_LOG("page %lu: %#llx", i, (unsigned long long)e);
		if (c->huge)
			ASSERT_EQ(PM_SWAP_OFFSET(first) + i - self->w0,
				  PM_SWAP_OFFSET(e)) TH_LOG("page %lu", i);
	}
	want_dthp(self, local(c->dev) | SN_W, local(c->dev) | SN_W, true);
	expect_snap(_metadata, c, c->fd);
	expect_cpu(_metadata, c);
}

/*
 * Cut the PMD around the window by an mprotect round trip; returns the
 * window's snapshot afterwards. Device-private entries stay read-only
 * (write access comes back at a fault); coherent pages are present and
 * writable again.
 */
static int cut_pmd(M, FIXTURE_DATA(dthp) *self)
{
	struct ctx *c = &self->c;

	EXPECT_EQ(0, mprotect(at(c, self->w0), self->wn * pg, PROT_READ));
	EXPECT_EQ(0, mprotect(at(c, self->w0), self->wn * pg, RW));
	return local(c->dev) | (coherent(c->dev) ? SN_W : SN_R);
}

/*
 * MADV_COLLAPSE over the range: a device-private PMD is left alone, device
 * pages mapped by PTEs may be brought back and collapsed into a THP;
 * either way nothing is lost.
 */
TEST_F(dthp, collapse)
{
	struct ctx *c = &self->c;
	int win = local(c->dev) | SN_W, ret;

	if (!variant->whole)
		win = cut_pmd(_metadata, self);
	ret = madvise(c->ptr, c->n * pg, MADV_COLLAPSE);
	ASSERT_TRUE(!ret || errno == EINVAL || errno == EAGAIN ||
		    errno == ENOMEM) TH_LOG("MADV_COLLAPSE: %s", strerror(errno));
	want_dthp(self, win, local(c->dev) | SN_W, variant->whole);
	ASSERT_EQ(0, dm(c, c->fd, HMM_DMIRROR_SNAPSHOT, 0, c->n));
	for (unsigned long i = 0; i < c->n; i++) {
		/* Collapsed: a system THP; else each page as it was, or back. */
		ASSERT_TRUE(ret ? c->snap[i] == c->want[i] || c->snap[i] == SN_W :
				  c->snap[i] == (SN_W | SN_PMD))
			TH_LOG("page %lu: 0x%x (MADV_COLLAPSE %d)", i, c->snap[i], ret);
	}
	expect_cpu(_metadata, c);
}

/*
 * madvise(@advice) on the window leaves device memory where it is, and a
 * device-private PMD whole (there is nothing to age, reclaim or free).
 */
static void advise_stays(M, FIXTURE_DATA(dthp) *self, int advice)
{
	struct ctx *c = &self->c;

	ASSERT_EQ(0, madvise(at(c, self->w0), self->wn * pg, advice));
	want_dthp(self, local(c->dev) | SN_W, local(c->dev) | SN_W, true);
	expect_snap(_metadata, c, c->fd);
	expect_events(_metadata, self, 0, 0);
	expect_cpu(_metadata, c);
	expect_all_back(_metadata, self, 0, false);
}

TEST_F(dthp, cold)
{
	advise_stays(_metadata, self, MADV_COLD);
}

TEST_F(dthp, pageout)
{
	advise_stays(_metadata, self, MADV_PAGEOUT);
}

TEST_F(dthp, free)
{
	advise_stays(_metadata, self, MADV_FREE);
}

/* Compaction walks memory around device pages and moves none of them. */
TEST_F(dthp, compaction)
{
	struct ctx *c = &self->c;
	int fd = open("/proc/sys/vm/compact_memory", O_WRONLY);
	int win = local(c->dev) | SN_W;

	if (!variant->whole)
		win = cut_pmd(_metadata, self);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(1, write(fd, "1", 1));
	close(fd);
	want_dthp(self, win, local(c->dev) | SN_W, variant->whole);
	expect_snap(_metadata, c, c->fd);
	expect_events(_metadata, self, 0, 0);
	expect_cpu(_metadata, c);
}

/* ---- NUMA and khugepaged meeting a device THP ---- */

#define NODE_CPU	0	/* harness/boot.sh: the CPUs and memory */
#define NODE_FAR	1	/* memory, no CPU */
#define NUMA_BALANCING	"/proc/sys/kernel/numa_balancing"
#define KHUGEPAGED	"/sys/kernel/mm/transparent_hugepage/khugepaged/"
#define WAIT_SECONDS	60	/* for a kernel thread or scanner to come by */

/* move_pages() of the window to @nodes (NULL: where is each page?). */
static long window_move_pages(FIXTURE_DATA(dthp) *self, const int *nodes,
			      int *status)
{
	void **pages = calloc(self->wn, sizeof(*pages));
	long ret;

	if (!pages)
		return -ENOMEM;
	for (unsigned long k = 0; k < self->wn; k++)
		pages[k] = at(&self->c, self->w0 + k);
	ret = syscall(__NR_move_pages, 0, self->wn, pages, nodes, status,
		      nodes ? MPOL_MF_MOVE : 0);
	free(pages);
	return ret;
}

/*
 * move_pages() over the window: device memory is on no node, asked where
 * (-ENOENT) or told to move (-ENOENT, and it stays); once the CPU has
 * read the data back, a device-private page is in system memory on the
 * CPU's node (the default policy), while a coherent one is still device
 * memory.
 */
TEST_F(dthp, move_pages)
{
	struct ctx *c = &self->c;
	int *nodes = calloc(self->wn, sizeof(int));
	int *status = calloc(self->wn, sizeof(int));

	ASSERT_TRUE(nodes && status);
	for (unsigned long k = 0; k < self->wn; k++)
		nodes[k] = NODE_FAR;
	ASSERT_EQ(0, window_move_pages(self, NULL, status));
	for (unsigned long k = 0; k < self->wn; k++) {
		ASSERT_EQ(-ENOENT, status[k])
			TH_LOG("where is page %lu", k);
	}
	ASSERT_EQ(0, window_move_pages(self, nodes, status));
	for (unsigned long k = 0; k < self->wn; k++) {
		ASSERT_EQ(-ENOENT, status[k])
			TH_LOG("moving page %lu", k);
	}
	want_dthp(self, local(c->dev) | SN_W, local(c->dev) | SN_W, true);
	expect_snap(_metadata, c, c->fd);
	expect_events(_metadata, self, 0, 0);

	expect_cpu(_metadata, c);
	expect_all_back(_metadata, self, 0, false);
	ASSERT_EQ(0, window_move_pages(self, NULL, status));
	for (unsigned long k = 0; k < self->wn; k++) {
		ASSERT_EQ(coherent(c->dev) ? -ENOENT : NODE_CPU, status[k])
			TH_LOG("page %lu back in system memory", k);
	}
	free(nodes);
	free(status);
}

/*
 * mbind() of the window to the far node, with MPOL_MF_MOVE: device
 * memory stays where it is (a window of its own cuts a device-private
 * PMD into PTEs, the folio stays whole), and the policy is the driver's
 * to follow when the CPU faults a page back: the window's device-private
 * pages come back on the far node.
 */
TEST_F(dthp, mbind)
{
	struct ctx *c = &self->c;
	unsigned long mask = 1UL << NODE_FAR;
	int *status = calloc(self->wn, sizeof(int));

	ASSERT_NE(NULL, status);
	ASSERT_EQ(0, syscall(__NR_mbind, at(c, self->w0), self->wn * pg,
			     MPOL_BIND, &mask, 8 * sizeof(mask), MPOL_MF_MOVE))
		TH_LOG("mbind: %s", strerror(errno));
	want_dthp(self, local(c->dev) | SN_W, local(c->dev) | SN_W,
		  variant->whole);
	expect_snap(_metadata, c, c->fd);
	expect_events(_metadata, self, 0, 0);

	expect_cpu(_metadata, c);
	expect_all_back(_metadata, self, 0, !variant->whole);
	ASSERT_EQ(0, window_move_pages(self, NULL, status));
	for (unsigned long k = 0; k < self->wn; k++) {
		ASSERT_EQ(coherent(c->dev) ? -ENOENT : NODE_FAR, status[k])
			TH_LOG("page %lu", k);
	}
	free(status);
}

/*
 * Spin on the CPU until NUMA balancing's scanner has run over this task
 * twice; false after WAIT_SECONDS. The scanner leaves alone the pages on
 * the node a single-threaded task runs on, so a bait page bound to the
 * far node (with MPOL_F_NUMA_BALANCING, or the scanner skips a bound
 * mapping) is what it marks for a hinting fault at each run (vmstat's
 * numa_pte_updates grows), and touching the bait again undoes the mark
 * for the next run. A run covers 256 MiB of mappings from where the last
 * one stopped, the first from the lowest address: all of a test's.
 */
static bool numa_scanned_twice(void)
{
	unsigned long mask = 1UL << NODE_FAR;
	time_t end = time(NULL) + WAIT_SECONDS;
	char *bait = mmap(NULL, pg, RW, PRIV_ANON, -1, 0);
	long last, now;
	int runs = 0;

	if (bait == MAP_FAILED)
		return false;
	if (syscall(__NR_mbind, bait, pg, MPOL_BIND | MPOL_F_NUMA_BALANCING,
		    &mask, 8 * sizeof(mask), 0))
		goto out;
	bait[0] = 1;
	last = hmm_vmstat("numa_pte_updates");
	while (runs < 2 && time(NULL) < end) {
		read_byte(bait);
		now = hmm_vmstat("numa_pte_updates");
		runs += now > last;
		last = now;
	}
out:
	munmap(bait, pg);
	return runs == 2;
}

/*
 * NUMA balancing's scanner over the range has nothing to sample in
 * device memory: coherent pages and device-private entries stay as they
 * are, writable, and a device write afterwards leaves them there. (6.12's
 * scanner takes write access from device-private entries, so that the
 * device's next write pulls its pages back to system memory; flavour
 * upstream is checked for what it does.)
 */
TEST_F_TIMEOUT(dthp, numa_balancing, 2 * WAIT_SECONDS)
{
	struct ctx *c = &self->c;
	long mode = hmm_read_long(NUMA_BALANCING);
	bool kept = c->modern || coherent(c->dev), scanned;
	char restore[32];

	ASSERT_GE(mode, 0);
	ASSERT_EQ(0, hmm_write_file(NUMA_BALANCING, "1"));
	scanned = numa_scanned_twice();
	snprintf(restore, sizeof(restore), "%ld", mode);
	ASSERT_EQ(0, hmm_write_file(NUMA_BALANCING, restore));
	ASSERT_TRUE(scanned) TH_LOG("no NUMA scan in %d s", WAIT_SECONDS);

	want_dthp(self, local(c->dev) | (kept ? SN_W : SN_R),
		  local(c->dev) | (kept ? SN_W : SN_R), true);
	expect_snap(_metadata, c, c->fd);
	expect_events(_metadata, self, 0, 0);
	if (kept) {
		for (unsigned long i = self->w0; i < self->w0 + self->wn; i++) {
			fill(c->buf + i * pg, c->first + i, 2);
			c->gen[i] = 2;
		}
		ASSERT_EQ(0, dm(c, c->fd, HMM_DMIRROR_WRITE, self->w0,
				self->wn));
		/* Still the device's: the write faulted nothing back. */
		expect_snap(_metadata, c, c->fd);
		expect_events(_metadata, self, 0, 0);
	}
	expect_cpu(_metadata, c);
	expect_all_back(_metadata, self, 0, false);
}

/*
 * Wait until khugepaged has finished two more full scans, every mm it
 * knows (a MADV_HUGEPAGE mapping made this one known) gone over at
 * least once; false after WAIT_SECONDS.
 */
static bool khugepaged_scanned_twice(void)
{
	long start = hmm_read_long(KHUGEPAGED "full_scans");
	time_t end = time(NULL) + WAIT_SECONDS;

	while (hmm_read_long(KHUGEPAGED "full_scans") < start + 2) {
		if (start < 0 || time(NULL) >= end)
			return false;
		usleep(10000);
	}
	return true;
}

/*
 * khugepaged's background scan over the range, made to run every 10 ms:
 * a device-private PMD is no page table to collapse, and 512 device PTEs
 * (a cut PMD, or a coherent device's pages) are no pages it may copy, so
 * everything stays exactly where it was. (MADV_COLLAPSE, above, may
 * bring pages back; khugepaged never does.)
 */
TEST_F_TIMEOUT(dthp, khugepaged, 2 * WAIT_SECONDS)
{
	struct ctx *c = &self->c;
	long sleep_ms = hmm_read_long(KHUGEPAGED "scan_sleep_millisecs");
	int win = local(c->dev) | SN_W;
	char restore[32];
	bool scanned;

	if (!variant->whole)
		win = cut_pmd(_metadata, self);
	ASSERT_GE(sleep_ms, 0);
	ASSERT_EQ(0, hmm_write_file(KHUGEPAGED "scan_sleep_millisecs", "10"));
	scanned = khugepaged_scanned_twice();
	snprintf(restore, sizeof(restore), "%ld", sleep_ms);
	ASSERT_EQ(0, hmm_write_file(KHUGEPAGED "scan_sleep_millisecs", restore));
	ASSERT_TRUE(scanned) TH_LOG("khugepaged did not scan in %d s", WAIT_SECONDS);

	want_dthp(self, win, local(c->dev) | SN_W, variant->whole);
	expect_snap(_metadata, c, c->fd);
	expect_events(_metadata, self, 0, 0);
	expect_cpu(_metadata, c);
}

/* Exclusive access to the window: the CPU's copy first, then the grant. */
TEST_F(dthp, exclusive)
{
	struct ctx *c = &self->c;

	ASSERT_EQ(0, dm(c, c->fd, HMM_DMIRROR_EXCLUSIVE, self->w0, self->wn));
	expect_buf(_metadata, c, self->w0, self->wn);
	ASSERT_EQ(-EPERM, dm(c, c->fd, HMM_DMIRROR_CHECK_EXCLUSIVE, self->w0,
			     self->wn));
	expect_cpu(_metadata, c);
	ASSERT_EQ(0, dm(c, c->fd, HMM_DMIRROR_CHECK_EXCLUSIVE, 0, c->n));
}

/*
 * Snapshots of the window: the owner sees its pages (one PMD-order entry),
 * another device sees them as remote, and looking moves nothing.
 */
TEST_F(dthp, snapshot)
{
	struct ctx *c = &self->c;
	int other = dev_open(coherent(c->dev) ? COH1 : PRIV1);

	ASSERT_GE(other, 0);
	want_dthp(self, local(c->dev) | SN_W, local(c->dev) | SN_W, true);
	expect_snap_range(_metadata, c, c->fd, self->w0, self->wn);
	ASSERT_EQ(0, dm(c, other, HMM_DMIRROR_SNAPSHOT, self->w0, self->wn));
	for (unsigned long i = self->w0; i < self->w0 + self->wn; i++) {
		ASSERT_TRUE(remote_view(c->dev, c->snap[i]))
			TH_LOG("page %lu: 0x%x", i, c->snap[i]);
	}
	close(other);
	expect_snap(_metadata, c, c->fd);
	expect_events(_metadata, self, 0, 0);
}

/* ---- race: a device command against an address-space change ------------ */

enum { R_munmap, R_mprotect, R_dontneed, R_mremap, R_fork };
#define G(gen)		(1u << (gen))
#define ROUNDS		8

FIXTURE(race) {
	struct ctx c;
	char *away;		/* where mremap moves the second half */
};

FIXTURE_VARIANT(race) {
	int racer;
	unsigned long req;
	int dev;
};

FIXTURE_VARIANT_ADD(race, munmap_read_private)
	{ R_munmap, HMM_DMIRROR_READ, PRIV0 };
FIXTURE_VARIANT_ADD(race, munmap_read_coherent)
	{ R_munmap, HMM_DMIRROR_READ, COH0 };
FIXTURE_VARIANT_ADD(race, munmap_write_private)
	{ R_munmap, HMM_DMIRROR_WRITE, PRIV0 };
FIXTURE_VARIANT_ADD(race, munmap_write_coherent)
	{ R_munmap, HMM_DMIRROR_WRITE, COH0 };
FIXTURE_VARIANT_ADD(race, munmap_migrate_private)
	{ R_munmap, HMM_DMIRROR_MIGRATE_TO_DEV, PRIV0 };
FIXTURE_VARIANT_ADD(race, munmap_migrate_coherent)
	{ R_munmap, HMM_DMIRROR_MIGRATE_TO_DEV, COH0 };
FIXTURE_VARIANT_ADD(race, mprotect_read_private)
	{ R_mprotect, HMM_DMIRROR_READ, PRIV0 };
FIXTURE_VARIANT_ADD(race, mprotect_read_coherent)
	{ R_mprotect, HMM_DMIRROR_READ, COH0 };
FIXTURE_VARIANT_ADD(race, mprotect_write_private)
	{ R_mprotect, HMM_DMIRROR_WRITE, PRIV0 };
FIXTURE_VARIANT_ADD(race, mprotect_write_coherent)
	{ R_mprotect, HMM_DMIRROR_WRITE, COH0 };
FIXTURE_VARIANT_ADD(race, mprotect_migrate_private)
	{ R_mprotect, HMM_DMIRROR_MIGRATE_TO_DEV, PRIV0 };
FIXTURE_VARIANT_ADD(race, mprotect_migrate_coherent)
	{ R_mprotect, HMM_DMIRROR_MIGRATE_TO_DEV, COH0 };
FIXTURE_VARIANT_ADD(race, dontneed_read_private)
	{ R_dontneed, HMM_DMIRROR_READ, PRIV0 };
FIXTURE_VARIANT_ADD(race, dontneed_read_coherent)
	{ R_dontneed, HMM_DMIRROR_READ, COH0 };
FIXTURE_VARIANT_ADD(race, dontneed_write_private)
	{ R_dontneed, HMM_DMIRROR_WRITE, PRIV0 };
FIXTURE_VARIANT_ADD(race, dontneed_write_coherent)
	{ R_dontneed, HMM_DMIRROR_WRITE, COH0 };
FIXTURE_VARIANT_ADD(race, dontneed_migrate_private)
	{ R_dontneed, HMM_DMIRROR_MIGRATE_TO_DEV, PRIV0 };
FIXTURE_VARIANT_ADD(race, dontneed_migrate_coherent)
	{ R_dontneed, HMM_DMIRROR_MIGRATE_TO_DEV, COH0 };
FIXTURE_VARIANT_ADD(race, mremap_read_private)
	{ R_mremap, HMM_DMIRROR_READ, PRIV0 };
FIXTURE_VARIANT_ADD(race, mremap_read_coherent)
	{ R_mremap, HMM_DMIRROR_READ, COH0 };
FIXTURE_VARIANT_ADD(race, mremap_write_private)
	{ R_mremap, HMM_DMIRROR_WRITE, PRIV0 };
FIXTURE_VARIANT_ADD(race, mremap_write_coherent)
	{ R_mremap, HMM_DMIRROR_WRITE, COH0 };
FIXTURE_VARIANT_ADD(race, mremap_migrate_private)
	{ R_mremap, HMM_DMIRROR_MIGRATE_TO_DEV, PRIV0 };
FIXTURE_VARIANT_ADD(race, mremap_migrate_coherent)
	{ R_mremap, HMM_DMIRROR_MIGRATE_TO_DEV, COH0 };
FIXTURE_VARIANT_ADD(race, fork_read_private)
	{ R_fork, HMM_DMIRROR_READ, PRIV0 };
FIXTURE_VARIANT_ADD(race, fork_read_coherent)
	{ R_fork, HMM_DMIRROR_READ, COH0 };
FIXTURE_VARIANT_ADD(race, fork_write_private)
	{ R_fork, HMM_DMIRROR_WRITE, PRIV0 };
FIXTURE_VARIANT_ADD(race, fork_write_coherent)
	{ R_fork, HMM_DMIRROR_WRITE, COH0 };
FIXTURE_VARIANT_ADD(race, fork_migrate_private)
	{ R_fork, HMM_DMIRROR_MIGRATE_TO_DEV, PRIV0 };
FIXTURE_VARIANT_ADD(race, fork_migrate_coherent)
	{ R_fork, HMM_DMIRROR_MIGRATE_TO_DEV, COH0 };
/* The one-walk device fault against each change of the address space. */
FIXTURE_VARIANT_ADD(race, munmap_onfault_private)
	{ R_munmap, HMM_DMIRROR_MIGRATE_ON_FAULT_TO_DEV, PRIV0 };
FIXTURE_VARIANT_ADD(race, mprotect_onfault_private)
	{ R_mprotect, HMM_DMIRROR_MIGRATE_ON_FAULT_TO_DEV, PRIV0 };
FIXTURE_VARIANT_ADD(race, dontneed_onfault_private)
	{ R_dontneed, HMM_DMIRROR_MIGRATE_ON_FAULT_TO_DEV, PRIV0 };
FIXTURE_VARIANT_ADD(race, dontneed_onfault_coherent)
	{ R_dontneed, HMM_DMIRROR_MIGRATE_ON_FAULT_TO_DEV, COH0 };
FIXTURE_VARIANT_ADD(race, mremap_onfault_private)
	{ R_mremap, HMM_DMIRROR_MIGRATE_ON_FAULT_TO_DEV, PRIV0 };
FIXTURE_VARIANT_ADD(race, fork_onfault_private)
	{ R_fork, HMM_DMIRROR_MIGRATE_ON_FAULT_TO_DEV, PRIV0 };

static const struct backing race_mem = ONE(ANON, 256);

FIXTURE_SETUP(race)
{
	ctx_init(_metadata, &self->c, &race_mem, variant->dev);
	self->away = mmap(NULL, self->c.n * pg, PROT_NONE, PRIV_ANON, -1, 0);
	ASSERT_NE(MAP_FAILED, self->away);
}

FIXTURE_TEARDOWN(race)
{
	close(self->c.fd);
}

/* First of n pages at mem (range pages from..) not holding a generation in gens. */
static long not_in(const struct ctx *c, const char *mem, unsigned long from,
		   unsigned long n, unsigned int gens)
{
	for (unsigned long i = 0; i < n; i++) {
		bool ok = false;

		for (int gen = 0; gen < 10; gen++)
			ok |= (gens & G(gen)) && holds(mem + i * pg, c->first + from + i, gen);
		if (!ok)
			return from + i;
	}
	return -1;
}

struct racer {
	int what;
	unsigned int gens;	/* what a page may hold while the command runs */
	const struct ctx *c;
	char *half, *away;
	size_t len;
	unsigned int spin;
	pthread_barrier_t go;
	int status;
};

/* Busy-wait n rounds: a compiler barrier each round keeps the loop. */
static void spin(unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
}

static void *race_thread(void *arg)
{
	struct racer *r = arg;

	pthread_barrier_wait(&r->go);
	spin(r->spin);
	switch (r->what) {
	case R_munmap:
		r->status = munmap(r->half, r->len);
		break;
	case R_mprotect:
		r->status = mprotect(r->half, r->len, PROT_READ);
		break;
	case R_dontneed:
		r->status = madvise(r->half, r->len, MADV_DONTNEED);
		break;
	case R_mremap:
		r->status = mremap(r->half, r->len, r->len,
				   MREMAP_MAYMOVE | MREMAP_FIXED, r->away) != r->away;
		break;
	case R_fork: {
		pid_t pid = fork();

		/* The child's copy is whatever each page held at the fork. */
		if (!pid)
			_exit(not_in(r->c, r->c->ptr, 0, r->c->n, r->gens) != -1);
		r->status = wait_child(pid);
		break;
	}
	}
	return NULL;
}

/* The device reads n pages at addr and must see exactly what the CPU sees. */
static void device_agrees(M, struct ctx *c, const char *addr, unsigned long n)
{
	ASSERT_EQ(0, dmirror(c->fd, HMM_DMIRROR_READ, addr, c->buf, n, &c->cmd));
	for (unsigned long i = 0; i < n; i++) {
		ASSERT_EQ(0, memcmp(c->buf + i * pg, addr + i * pg, pg))
			TH_LOG("device and CPU differ on page %lu", i);
	}
}

static void race_round(M, struct ctx *c, char *away, const FIXTURE_VARIANT(race) *v,
		       unsigned int round)
{
	unsigned long i, n = c->n, half = n / 2, rest = n - half;
	bool onfault = v->req == HMM_DMIRROR_MIGRATE_ON_FAULT_TO_DEV;
	bool write = v->req == HMM_DMIRROR_WRITE;
	/* The one-walk fault reads the range into buf, as READ does. */
	bool read = v->req == HMM_DMIRROR_READ || onfault;
	struct racer r = {
		.what = v->racer, .gens = write ? G(1) | G(2) : G(1), .c = c,
		.half = at(c, half), .away = away, .len = rest * pg, .spin = round * 4000,
	};
	unsigned int done;	/* what a page the command covered holds now */
	pthread_t thread;
	int ret;

	ASSERT_EQ(c->ptr, mmap(c->ptr, n * pg, RW, PRIV_ANON | MAP_FIXED, -1, 0));
	ASSERT_EQ(away, mmap(away, n * pg, PROT_NONE, PRIV_ANON | MAP_FIXED, -1, 0));
	set_gen(c, 0, n, 1);
	for (i = 0; i < n; i++)
		fill(c->buf + i * pg, c->first + i, 2);
	ASSERT_EQ(0, pthread_barrier_init(&r.go, NULL, 2));
	ASSERT_EQ(0, pthread_create(&thread, NULL, race_thread, &r));
	pthread_barrier_wait(&r.go);
	ret = dm(c, c->fd, v->req, 0, n);
	ASSERT_EQ(0, pthread_join(thread, NULL));
	pthread_barrier_destroy(&r.go);
	ASSERT_EQ(0, r.status);

	/* The command's result: one of those its interleavings allow. */
	switch (v->racer) {
	case R_munmap:
	case R_mremap:
		/* A window of the one-walk fault may find its VMA gone. */
		ASSERT_TRUE(!ret || ret == (read || write ? -EFAULT : -EINVAL) ||
			    (onfault && ret == -EINVAL) ||
			    (!read && !write && ret == -ENOENT)) TH_LOG("ret %d", ret);
		break;
	case R_mprotect:
		ASSERT_TRUE(!ret || (write && ret == -EPERM) ||
			    (!read && !write && ret == -ENOENT)) TH_LOG("ret %d", ret);
		break;
	default:
		ASSERT_TRUE(!ret || (!read && !write && ret == -ENOENT)) TH_LOG("ret %d", ret);
	}
	if (read && !ret) {
		ASSERT_EQ(-1, not_in(c, c->buf, 0, half, G(1)));
		ASSERT_EQ(-1, not_in(c, c->buf + half * pg, half, rest,
				     v->racer == R_dontneed ? G(0) | G(1) : G(1)));
	}

	/* The memory afterwards, then what the device makes of it. */
	done = !write ? G(1) : ret ? G(1) | G(2) : G(2);
	ASSERT_EQ(-1, not_in(c, c->ptr, 0, half, done));
	switch (v->racer) {
	case R_munmap:
		/* New memory in the hole: the device must not see the old. */
		ASSERT_EQ(at(c, half), mmap(at(c, half), rest * pg, RW,
					    PRIV_ANON | MAP_FIXED, -1, 0));
		set_gen(c, half, rest, 9);
		break;
	case R_mprotect:
		ASSERT_EQ(-1, not_in(c, at(c, half), half, rest, done));
		for (i = half; i < n; i++)
			fill(c->buf + i * pg, c->first + i, 8);
		ASSERT_EQ(-EPERM, dm(c, c->fd, HMM_DMIRROR_WRITE, half, rest));
		ASSERT_EQ(-1, not_in(c, at(c, half), half, rest, done));
		break;
	case R_dontneed:
		ASSERT_EQ(-1, not_in(c, at(c, half), half, rest,
				     write ? G(0) | G(2) : G(0)));
		break;
	case R_mremap:
		ASSERT_EQ(-1, not_in(c, away, half, rest, done));
		ASSERT_EQ(-EFAULT, dm(c, c->fd, HMM_DMIRROR_READ, half, rest));
		device_agrees(_metadata, c, away, rest);
		device_agrees(_metadata, c, c->ptr, half);
		return;
	case R_fork:
		ASSERT_EQ(-1, not_in(c, at(c, half), half, rest, done));
		break;
	}
	device_agrees(_metadata, c, c->ptr, n);
}

/* Every round shifts the racer later into the command. */
TEST_F(race, run)
{
	struct ctx *c = &self->c;

	if (variant->req == HMM_DMIRROR_MIGRATE_ON_FAULT_TO_DEV && !c->modern) {
		ASSERT_EQ(-EINVAL, dm(c, c->fd, variant->req, 0, c->n));
		return;
	}
	for (unsigned int round = 0; round < ROUNDS; round++)
		race_round(_metadata, &self->c, self->away, variant, round);
}

/* ---- stuck: some pages of a range cannot move ---------------------------- */

enum { O_pinned, O_piped, O_other_device, O_page_cache, O_forked };
#define BLOCKED		4	/* pages [BLOCKED, 2 * BLOCKED) are held back */

/* Whether the held pages stay behind, and their snapshot after the attempt. */
enum { HELD_W, HELD_R, HELD_REMOTE, MOVED_R };
static const struct { bool blocks; int held; } obstacles[] = {
	[O_pinned] = { true, HELD_W },		/* a long-term GUP pin */
	[O_piped] = { true, HELD_W },		/* page references in a pipe */
	[O_other_device] = { true, HELD_REMOTE },
	[O_page_cache] = { true, HELD_R },	/* clean page cache */
	[O_forked] = { false, MOVED_R },	/* copy-on-write shared with a child */
};

FIXTURE(stuck) {
	struct ctx c;
	int gup, pipe[2], other;
	pid_t child;
};

FIXTURE_VARIANT(stuck) {
	int obstacle;
	int dev, other;
};

FIXTURE_VARIANT_ADD(stuck, pinned_private) { O_pinned, PRIV0, PRIV1 };
FIXTURE_VARIANT_ADD(stuck, pinned_coherent) { O_pinned, COH0, COH1 };
FIXTURE_VARIANT_ADD(stuck, piped_private) { O_piped, PRIV0, PRIV1 };
FIXTURE_VARIANT_ADD(stuck, piped_coherent) { O_piped, COH0, COH1 };
FIXTURE_VARIANT_ADD(stuck, other_device_private) { O_other_device, PRIV0, PRIV1 };
FIXTURE_VARIANT_ADD(stuck, other_device_coherent) { O_other_device, COH0, COH1 };
FIXTURE_VARIANT_ADD(stuck, page_cache_private) { O_page_cache, PRIV0, PRIV1 };
FIXTURE_VARIANT_ADD(stuck, page_cache_coherent) { O_page_cache, COH0, COH1 };
FIXTURE_VARIANT_ADD(stuck, forked_private) { O_forked, PRIV0, PRIV1 };
FIXTURE_VARIANT_ADD(stuck, forked_coherent) { O_forked, COH0, COH1 };

FIXTURE_SETUP(stuck)
{
	ctx_init(_metadata, &self->c, &small, variant->dev);
	self->gup = -1;
	self->pipe[0] = -1;
	self->pipe[1] = -1;
	self->other = -1;
}

FIXTURE_TEARDOWN(stuck)
{
	if (self->gup >= 0)
		ioctl(self->gup, PIN_LONGTERM_TEST_STOP);
}

static void obstruct(M, FIXTURE_DATA(stuck) *self, const FIXTURE_VARIANT(stuck) *v)
{
	struct ctx *c = &self->c;
	struct pin_longterm_test pin = {
		.addr = (uintptr_t)at(c, BLOCKED), .size = BLOCKED * pg,
		.flags = PIN_LONGTERM_TEST_FLAG_USE_WRITE,
	};
	struct iovec iov = { at(c, BLOCKED), BLOCKED * pg };
	int fd;

	switch (v->obstacle) {
	case O_pinned:
		self->gup = open("/sys/kernel/debug/gup_test", O_RDWR);
		ASSERT_GE(self->gup, 0);
		ASSERT_EQ(0, ioctl(self->gup, PIN_LONGTERM_TEST_START, &pin));
		break;
	case O_piped:
		ASSERT_EQ(0, pipe(self->pipe));
		ASSERT_EQ((ssize_t)iov.iov_len, vmsplice(self->pipe[1], &iov, 1, 0));
		break;
	case O_other_device:
		self->other = dev_open(v->other);
		ASSERT_GE(self->other, 0);
		ASSERT_EQ(0, dm(c, self->other, HMM_DMIRROR_MIGRATE_TO_DEV, BLOCKED, BLOCKED));
		break;
	case O_forked:
		ASSERT_EQ(0, pipe(self->pipe));
		self->child = fork();
		if (!self->child) {
			char token;

			close(self->pipe[1]);
			_exit(read(self->pipe[0], &token, 1) != 1 || cpu_mismatch(c) >= 0);
		}
		/* Our stores take back all but the held pages. */
		set_gen(c, 0, BLOCKED, 1);
		set_gen(c, 2 * BLOCKED, c->n - 2 * BLOCKED, 1);
		break;
	case O_page_cache:
		/* The same data, but as clean page cache of a private mapping. */
		fd = open("/tmp", O_TMPFILE | O_RDWR, 0600);
		ASSERT_GE(fd, 0);
		ASSERT_EQ((ssize_t)iov.iov_len, pwrite(fd, iov.iov_base, iov.iov_len, 0));
		ASSERT_EQ(iov.iov_base, mmap(iov.iov_base, iov.iov_len, RW,
					     MAP_PRIVATE | MAP_FIXED, fd, 0));
		close(fd);
		ASSERT_EQ(-1, cpu_mismatch(c));
		break;
	}
}

static void unblock(M, FIXTURE_DATA(stuck) *self, const FIXTURE_VARIANT(stuck) *v)
{
	struct ctx *c = &self->c;

	switch (v->obstacle) {
	case O_pinned:
		ASSERT_EQ(0, ioctl(self->gup, PIN_LONGTERM_TEST_STOP));
		close(self->gup);
		self->gup = -1;
		break;
	case O_piped:
		close(self->pipe[0]);
		close(self->pipe[1]);
		break;
	case O_other_device:
		ASSERT_EQ(0, dm(c, self->other, HMM_DMIRROR_MIGRATE_TO_SYS, BLOCKED, BLOCKED));
		ASSERT_EQ(BLOCKED, c->cmd.cpages);
		break;
	case O_page_cache:
		set_gen(c, BLOCKED, BLOCKED, 1);	/* copy-on-write: anonymous now */
		break;
	case O_forked:
		ASSERT_EQ(1, write(self->pipe[1], "x", 1));
		ASSERT_EQ(0, wait_child(self->child));	/* it still sees its data */
		break;
	}
}

/*
 * The driver reports a range it could not fully migrate as ENOENT; the pages
 * that could move did, the others kept their data and mapping. Once nothing
 * holds them back they move too. (Only they are migrated again: upstream's
 * driver answers ENOENT for a page already on the device whose mirror entry
 * an invalidation dropped, and its invalidation drops one page too many.)
 * A page shared with a child is no obstacle: it moves, read-only for both.
 */
TEST_F(stuck, migrate)
{
	const int held = obstacles[variant->obstacle].held;
	bool blocks = obstacles[variant->obstacle].blocks;
	struct ctx *c = &self->c;

	obstruct(_metadata, self, variant);
	ASSERT_EQ(blocks ? -ENOENT : 0, dm(c, c->fd, HMM_DMIRROR_MIGRATE_TO_DEV, 0, c->n));
	ASSERT_EQ(0, dm(c, c->fd, HMM_DMIRROR_SNAPSHOT, 0, c->n));
	for (unsigned long i = 0; i < c->n; i++) {
		int want = local(c->dev) | SN_W;

		if (i >= BLOCKED && i < 2 * BLOCKED)
			want = held == HELD_W ? SN_W : held == HELD_R ? SN_R :
			       held == MOVED_R ? local(c->dev) | SN_R :
			       remote_view(variant->other, c->snap[i]) ? c->snap[i] : -1;
		ASSERT_EQ(want, c->snap[i]) TH_LOG("page %lu", i);
	}
	unblock(_metadata, self, variant);
	if (blocks) {
		to_device(_metadata, c, BLOCKED, BLOCKED);
		want_all(c, local(c->dev) | SN_W);
		expect_snap(_metadata, c, c->fd);
	}
	expect_cpu(_metadata, c);
}

/* ---- badarg: each command refuses what it cannot do ---------------------- */

enum { AT_RW, AT_MISALIGNED, AT_READONLY, AT_NOACCESS, AT_HOLE, AT_HUGETLB,
	AT_WRAP, NO_CMD };

FIXTURE(badarg) {
	struct ctx c;
};

FIXTURE_VARIANT(badarg) {
	unsigned long req;
	int where;
	unsigned long npages;
	bool bad_buf;		/* the user buffer is unmapped */
	int err;
};

FIXTURE_VARIANT_ADD(badarg, read_misaligned)
	{ HMM_DMIRROR_READ, AT_MISALIGNED, 8, false, -EINVAL };
FIXTURE_VARIANT_ADD(badarg, write_misaligned)
	{ HMM_DMIRROR_WRITE, AT_MISALIGNED, 8, false, -EINVAL };
FIXTURE_VARIANT_ADD(badarg, migrate_misaligned)
	{ HMM_DMIRROR_MIGRATE_TO_DEV, AT_MISALIGNED, 8, false, -EINVAL };
FIXTURE_VARIANT_ADD(badarg, migrate_back_misaligned)
	{ HMM_DMIRROR_MIGRATE_TO_SYS, AT_MISALIGNED, 8, false, -EINVAL };
FIXTURE_VARIANT_ADD(badarg, snapshot_misaligned)
	{ HMM_DMIRROR_SNAPSHOT, AT_MISALIGNED, 8, false, -EINVAL };
FIXTURE_VARIANT_ADD(badarg, exclusive_misaligned)
	{ HMM_DMIRROR_EXCLUSIVE, AT_MISALIGNED, 8, false, -EINVAL };
FIXTURE_VARIANT_ADD(badarg, check_exclusive_misaligned)
	{ HMM_DMIRROR_CHECK_EXCLUSIVE, AT_MISALIGNED, 8, false, -EINVAL };
FIXTURE_VARIANT_ADD(badarg, read_no_pages)
	{ HMM_DMIRROR_READ, AT_RW, 0, false, -EINVAL };
FIXTURE_VARIANT_ADD(badarg, write_no_pages)
	{ HMM_DMIRROR_WRITE, AT_RW, 0, false, -EINVAL };
FIXTURE_VARIANT_ADD(badarg, migrate_no_pages)
	{ HMM_DMIRROR_MIGRATE_TO_DEV, AT_RW, 0, false, -EINVAL };
FIXTURE_VARIANT_ADD(badarg, migrate_back_no_pages)
	{ HMM_DMIRROR_MIGRATE_TO_SYS, AT_RW, 0, false, -EINVAL };
FIXTURE_VARIANT_ADD(badarg, snapshot_no_pages)
	{ HMM_DMIRROR_SNAPSHOT, AT_RW, 0, false, -EINVAL };
FIXTURE_VARIANT_ADD(badarg, exclusive_no_pages)
	{ HMM_DMIRROR_EXCLUSIVE, AT_RW, 0, false, -EINVAL };
FIXTURE_VARIANT_ADD(badarg, check_exclusive_no_pages)
	{ HMM_DMIRROR_CHECK_EXCLUSIVE, AT_RW, 0, false, -EINVAL };
FIXTURE_VARIANT_ADD(badarg, read_wrapping)
	{ HMM_DMIRROR_READ, AT_WRAP, 0, false, -EINVAL };
FIXTURE_VARIANT_ADD(badarg, write_wrapping)
	{ HMM_DMIRROR_WRITE, AT_WRAP, 0, false, -EINVAL };
FIXTURE_VARIANT_ADD(badarg, migrate_wrapping)
	{ HMM_DMIRROR_MIGRATE_TO_DEV, AT_WRAP, 0, false, -EINVAL };
FIXTURE_VARIANT_ADD(badarg, migrate_back_wrapping)
	{ HMM_DMIRROR_MIGRATE_TO_SYS, AT_WRAP, 0, false, -EINVAL };
FIXTURE_VARIANT_ADD(badarg, snapshot_wrapping)
	{ HMM_DMIRROR_SNAPSHOT, AT_WRAP, 0, false, -EINVAL };
FIXTURE_VARIANT_ADD(badarg, exclusive_wrapping)
	{ HMM_DMIRROR_EXCLUSIVE, AT_WRAP, 0, false, -EINVAL };
FIXTURE_VARIANT_ADD(badarg, check_exclusive_wrapping)
	{ HMM_DMIRROR_CHECK_EXCLUSIVE, AT_WRAP, 0, false, -EINVAL };
FIXTURE_VARIANT_ADD(badarg, read_no_command)
	{ HMM_DMIRROR_READ, NO_CMD, 8, false, -EFAULT };
FIXTURE_VARIANT_ADD(badarg, write_no_command)
	{ HMM_DMIRROR_WRITE, NO_CMD, 8, false, -EFAULT };
FIXTURE_VARIANT_ADD(badarg, migrate_no_command)
	{ HMM_DMIRROR_MIGRATE_TO_DEV, NO_CMD, 8, false, -EFAULT };
FIXTURE_VARIANT_ADD(badarg, migrate_back_no_command)
	{ HMM_DMIRROR_MIGRATE_TO_SYS, NO_CMD, 8, false, -EFAULT };
FIXTURE_VARIANT_ADD(badarg, snapshot_no_command)
	{ HMM_DMIRROR_SNAPSHOT, NO_CMD, 8, false, -EFAULT };
FIXTURE_VARIANT_ADD(badarg, exclusive_no_command)
	{ HMM_DMIRROR_EXCLUSIVE, NO_CMD, 8, false, -EFAULT };
FIXTURE_VARIANT_ADD(badarg, check_exclusive_no_command)
	{ HMM_DMIRROR_CHECK_EXCLUSIVE, NO_CMD, 8, false, -EFAULT };
FIXTURE_VARIANT_ADD(badarg, release_no_command)
	{ HMM_DMIRROR_RELEASE, NO_CMD, 8, false, -EFAULT };
FIXTURE_VARIANT_ADD(badarg, read_hole)
	{ HMM_DMIRROR_READ, AT_HOLE, 8, false, -EFAULT };
FIXTURE_VARIANT_ADD(badarg, read_noaccess)
	{ HMM_DMIRROR_READ, AT_NOACCESS, 8, false, -EFAULT };
FIXTURE_VARIANT_ADD(badarg, read_into_noaccess)
	{ HMM_DMIRROR_READ, AT_RW, 24, false, -EFAULT };
FIXTURE_VARIANT_ADD(badarg, read_bad_buffer)
	{ HMM_DMIRROR_READ, AT_RW, 8, true, -EFAULT };
FIXTURE_VARIANT_ADD(badarg, write_hole)
	{ HMM_DMIRROR_WRITE, AT_HOLE, 8, false, -EFAULT };
FIXTURE_VARIANT_ADD(badarg, write_noaccess)
	{ HMM_DMIRROR_WRITE, AT_NOACCESS, 8, false, -EFAULT };
FIXTURE_VARIANT_ADD(badarg, write_readonly)
	{ HMM_DMIRROR_WRITE, AT_READONLY, 8, false, -EPERM };
FIXTURE_VARIANT_ADD(badarg, write_into_readonly)
	{ HMM_DMIRROR_WRITE, AT_RW, 16, false, -EPERM };
FIXTURE_VARIANT_ADD(badarg, write_bad_buffer)
	{ HMM_DMIRROR_WRITE, AT_RW, 8, true, -EFAULT };
FIXTURE_VARIANT_ADD(badarg, migrate_hole)
	{ HMM_DMIRROR_MIGRATE_TO_DEV, AT_HOLE, 8, false, -EINVAL };
FIXTURE_VARIANT_ADD(badarg, migrate_noaccess)
	{ HMM_DMIRROR_MIGRATE_TO_DEV, AT_NOACCESS, 8, false, -EINVAL };
FIXTURE_VARIANT_ADD(badarg, migrate_hugetlb)
	{ HMM_DMIRROR_MIGRATE_TO_DEV, AT_HUGETLB, PMD_PAGES, false, -EINVAL };
FIXTURE_VARIANT_ADD(badarg, migrate_into_noaccess)
	{ HMM_DMIRROR_MIGRATE_TO_DEV, AT_RW, 24, false, -EINVAL };
FIXTURE_VARIANT_ADD(badarg, migrate_bad_buffer)
	{ HMM_DMIRROR_MIGRATE_TO_DEV, AT_RW, 8, true, -EFAULT };
FIXTURE_VARIANT_ADD(badarg, migrate_back_hole)
	{ HMM_DMIRROR_MIGRATE_TO_SYS, AT_HOLE, 8, false, -EINVAL };
FIXTURE_VARIANT_ADD(badarg, migrate_back_noaccess)
	{ HMM_DMIRROR_MIGRATE_TO_SYS, AT_NOACCESS, 8, false, -EINVAL };
FIXTURE_VARIANT_ADD(badarg, migrate_back_hugetlb)
	{ HMM_DMIRROR_MIGRATE_TO_SYS, AT_HUGETLB, PMD_PAGES, false, -EINVAL };
FIXTURE_VARIANT_ADD(badarg, snapshot_bad_buffer)
	{ HMM_DMIRROR_SNAPSHOT, AT_RW, 8, true, -EFAULT };
FIXTURE_VARIANT_ADD(badarg, exclusive_bad_buffer)
	{ HMM_DMIRROR_EXCLUSIVE, AT_RW, 8, true, -EFAULT };

FIXTURE_SETUP(badarg)
{
	ctx_init(_metadata, &self->c, &edges, PRIV0);
	ASSERT_EQ(0, munmap(at(&self->c, 24), 8 * pg));
}

FIXTURE_TEARDOWN(badarg)
{
	close(self->c.fd);
}

TEST_F(badarg, refused)
{
	struct ctx *c = &self->c;
	unsigned long n = variant->npages;
	char *addr = c->ptr;
	void *buf = variant->req == HMM_DMIRROR_SNAPSHOT ? (void *)c->snap : c->buf;

	switch (variant->where) {
	case AT_MISALIGNED:
		addr += 1;
		break;
	case AT_READONLY:
		addr = at(c, 8);
		break;
	case AT_NOACCESS:
		addr = at(c, 16);
		break;
	case AT_HOLE:
		addr = at(c, 24);
		break;
	case AT_HUGETLB:
		addr = mmap(NULL, n * pg, RW, PRIV_ANON | MAP_HUGETLB, -1, 0);
		ASSERT_NE(MAP_FAILED, addr);
		break;
	case AT_WRAP:
		n = ~0UL / pg;		/* addr + n pages runs past the top */
		break;
	}
	if (variant->bad_buf)
		buf = at(c, 24);
	if (variant->where == NO_CMD) {
		ASSERT_EQ(-1, ioctl(c->fd, variant->req, NULL));
		ASSERT_EQ(variant->err, -errno);
	} else {
		ASSERT_EQ(variant->err, dmirror(c->fd, variant->req, addr, buf, n, NULL));
	}
	expect_cpu(_metadata, c);
}

TEST_HARNESS_MAIN
