// SPDX-License-Identifier: GPL-2.0
/*
 * hmm-bench: the guest half of `make bench`.
 *
 * Times the operations a GPU driver's fault handling is made of, through
 * the dummy device /dev/hmm_dmirror0 (device-private memory), on buffers of
 * a few sizes backed by 4 KiB pages or by THPs:
 *
 *   memcpy        a plain memcpy of the same bytes: the physical limit
 *   to_dev        HMM_DMIRROR_MIGRATE_TO_DEV of a written buffer
 *   to_sys        HMM_DMIRROR_MIGRATE_TO_SYS of a buffer in device memory
 *   cpu_fault     the CPU touching each page of a buffer in device memory
 *                 (one migrate_to_ram per fault)
 *   dev_read      HMM_DMIRROR_READ of a written buffer (hmm_range_fault()
 *                 with a fault request; everything is present)
 *   dev_read_cold HMM_DMIRROR_READ of a buffer never touched (every page
 *                 faulted in by hmm_range_fault())
 *   snapshot      HMM_DMIRROR_SNAPSHOT of a written buffer (no fault)
 *   evict         HMM_DMIRROR_RELEASE of a device holding the buffer
 *                 (migrate_device_range() and friends)
 *
 * Only the uapi shared by upstream's driver and ours is used, so the same
 * binary measures either driver. Each figure is set up afresh for every
 * repetition; only the operation itself is timed, with CLOCK_MONOTONIC
 * (under QEMU -icount the guest clock counts instructions, so figures
 * repeat run to run). One line per figure on stdout:
 *
 *   HMM-BENCH <label> <figure> <backing> <bytes> <reps> <median ns> <min ns> <max ns>
 *
 * Usage: hmm-bench LABEL [MIB ...]   (default sizes: 2 256)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "lib/test_hmm_uapi.h"

#define THP_SIZE	(2UL << 20)
#define MAX_REPS	15

static long page_size;
static const char *label;

static void die(const char *what)
{
	fprintf(stderr, "hmm-bench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* A buffer of @bytes, THP-backed if @thp (2 MiB aligned, MADV_HUGEPAGE). */
struct buf {
	void *map;		/* what munmap() takes */
	size_t map_len;
	char *p;		/* the aligned buffer */
	size_t len;
};

static struct buf buf_new(size_t bytes, int thp)
{
	struct buf b = { .len = bytes };

	b.map_len = bytes + (thp ? THP_SIZE : 0);
	b.map = mmap(NULL, b.map_len, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (b.map == MAP_FAILED)
		die("mmap");
	b.p = b.map;
	if (thp) {
		b.p = (char *)(((uintptr_t)b.map + THP_SIZE - 1) & ~(THP_SIZE - 1));
		if (madvise(b.p, bytes, MADV_HUGEPAGE))
			die("madvise(MADV_HUGEPAGE)");
	}
	return b;
}

static void buf_fill(struct buf *b)
{
	memset(b->p, 0x5a, b->len);
}

static void buf_free(struct buf *b)
{
	munmap(b->map, b->map_len);
}

static int dev_fd;

static void dev_cmd(unsigned long request, struct buf *b, void *ptr,
		    const char *what)
{
	struct hmm_dmirror_cmd cmd = {
		.addr = (uintptr_t)b->p,
		.ptr = (uintptr_t)ptr,
		.npages = b->len / page_size,
	};

	if (ioctl(dev_fd, request, &cmd))
		die(what);
	if (request != HMM_DMIRROR_RELEASE && cmd.cpages != cmd.npages) {
		fprintf(stderr, "hmm-bench: %s: %llu of %llu pages\n", what,
			(unsigned long long)cmd.cpages,
			(unsigned long long)cmd.npages);
		exit(1);
	}
}

static char *bounce;	/* the driver's user-side copy buffer */

/* The state a figure's buffer starts in. */
enum start { FRESH, WRITTEN, ON_DEVICE };

static struct buf prepare(size_t bytes, int thp, enum start start)
{
	struct buf b = buf_new(bytes, thp);

	if (start != FRESH)
		buf_fill(&b);
	if (start == ON_DEVICE)
		dev_cmd(HMM_DMIRROR_MIGRATE_TO_DEV, &b, bounce, "MIGRATE_TO_DEV");
	return b;
}

/* Every page of @b must still hold what buf_fill() wrote. */
static void check_filled(struct buf *b, const char *figure)
{
	size_t i;

	for (i = 0; i < b->len; i += page_size) {
		if (b->p[i] != 0x5a) {
			fprintf(stderr, "hmm-bench: %s lost data\n", figure);
			exit(1);
		}
	}
}

/*
 * Give the device enough memory for @bytes before anything is timed: a
 * driver may allocate its device memory on first use, and eviction may
 * hand it all back.
 */
static void warm_up(size_t bytes)
{
	struct buf b = prepare(bytes, 0, ON_DEVICE);

	buf_free(&b);
}

/*
 * A figure: one device command on a buffer in a given start state, or,
 * for the two that are not a command, a function of their own. Returns
 * the timed nanoseconds of one repetition.
 */
struct figure {
	const char *name;
	enum start start;
	unsigned long cmd;
	uint64_t (*fn)(const struct figure *f, size_t bytes, int thp);
};

static uint64_t fig_memcpy(const struct figure *f, size_t bytes, int thp)
{
	struct buf src = prepare(bytes, thp, WRITTEN);
	struct buf dst = prepare(bytes, thp, WRITTEN);
	uint64_t t;

	t = now_ns();
	memcpy(dst.p, src.p, bytes);
	t = now_ns() - t;
	buf_free(&src);
	buf_free(&dst);
	return t;
}

static uint64_t fig_cpu_fault(const struct figure *f, size_t bytes, int thp)
{
	struct buf b = prepare(bytes, thp, f->start);
	volatile char *p = b.p;
	uint64_t t;
	size_t i;

	t = now_ns();
	for (i = 0; i < bytes; i += page_size)
		(void)p[i];
	t = now_ns() - t;
	check_filled(&b, f->name);
	buf_free(&b);
	return t;
}

static uint64_t fig_command(const struct figure *f, size_t bytes, int thp)
{
	struct buf b = prepare(bytes, thp, f->start);
	uint64_t t;

	t = now_ns();
	dev_cmd(f->cmd, &b, bounce, f->name);
	t = now_ns() - t;
	/* The commands that bring data back must not lose any. */
	if (f->cmd == HMM_DMIRROR_MIGRATE_TO_SYS ||
	    f->cmd == HMM_DMIRROR_RELEASE)
		check_filled(&b, f->name);
	buf_free(&b);
	if (f->cmd == HMM_DMIRROR_RELEASE)
		warm_up(bytes);
	return t;
}

static const struct figure figures[] = {
	{ "memcpy",        WRITTEN,   0,                          fig_memcpy },
	{ "to_dev",        WRITTEN,   HMM_DMIRROR_MIGRATE_TO_DEV, fig_command },
	{ "to_sys",        ON_DEVICE, HMM_DMIRROR_MIGRATE_TO_SYS, fig_command },
	{ "cpu_fault",     ON_DEVICE, 0,                          fig_cpu_fault },
	{ "dev_read",      WRITTEN,   HMM_DMIRROR_READ,           fig_command },
	{ "dev_read_cold", FRESH,     HMM_DMIRROR_READ,           fig_command },
	{ "snapshot",      WRITTEN,   HMM_DMIRROR_SNAPSHOT,       fig_command },
	{ "evict",         ON_DEVICE, HMM_DMIRROR_RELEASE,        fig_command },
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Fewer repetitions of the big sizes: they are long and steady. */
static int reps_for(size_t bytes)
{
	if (bytes >= (128UL << 20))
		return 3;
	if (bytes >= (16UL << 20))
		return 5;
	return 9;
}

int main(int argc, char **argv)
{
	static const unsigned long default_mib[] = { 2, 256 };
	unsigned long mib[16];
	int nsizes = 0, i, f, thp, r;

	if (argc < 2) {
		fprintf(stderr, "usage: hmm-bench LABEL [MIB ...]\n");
		return 2;
	}
	label = argv[1];
	for (i = 2; i < argc && nsizes < 16; i++)
		mib[nsizes++] = strtoul(argv[i], NULL, 0);
	if (!nsizes)
		for (; nsizes < 2; nsizes++)
			mib[nsizes] = default_mib[nsizes];

	page_size = sysconf(_SC_PAGESIZE);
	dev_fd = open("/dev/hmm_dmirror0", O_RDWR);
	if (dev_fd < 0)
		die("/dev/hmm_dmirror0");

	for (i = 0; i < nsizes; i++) {
		size_t bytes = mib[i] << 20;

		bounce = malloc(bytes);
		if (!bounce)
			die("malloc");
		memset(bounce, 0, bytes);
		warm_up(bytes);
		for (thp = 0; thp < 2; thp++) {
			for (f = 0; f < (int)(sizeof(figures) / sizeof(figures[0])); f++) {
				uint64_t t[MAX_REPS];
				int reps = reps_for(bytes);

				for (r = 0; r < reps; r++)
					t[r] = figures[f].fn(&figures[f], bytes, thp);
				qsort(t, reps, sizeof(t[0]), cmp_u64);
				printf("HMM-BENCH %s %s %s %zu %d %llu %llu %llu\n",
				       label, figures[f].name, thp ? "thp" : "4k",
				       bytes, reps,
				       (unsigned long long)t[reps / 2],
				       (unsigned long long)t[0],
				       (unsigned long long)t[reps - 1]);
				fflush(stdout);
			}
		}
		free(bounce);
	}
	close(dev_fd);
	return 0;
}
