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
 *   gpu_fault     a device fault on a written buffer not yet on the device,
 *                 handled as a GPU driver would: with a driver that has
 *                 HMM_DMIRROR_MIGRATE_ON_FAULT_TO_DEV, that one command
 *                 (mirror and migrate in one walk, then map and read);
 *                 otherwise the classic sequence, HMM_DMIRROR_READ (mirror,
 *                 faulting) then HMM_DMIRROR_MIGRATE_TO_DEV (migrate, then
 *                 mirror again and read)
 *   evict         HMM_DMIRROR_RELEASE of a device holding the buffer
 *                 (migrate_device_range() and friends)
 *
 * With LABEL "dma-driver" the device is /dev/hmm_dma0 instead
 * (lib/test_hmm_dma.c: QEMU's edu device moving the data by DMA, behind
 * the IOMMU), and the figures are the ones it has:
 *
 *   dma_map       HMM_DMA_MAP of a written buffer: hmm_range_fault() and
 *                 hmm_dma_map_pfn() of every page, no data moved
 *   dev_read      HMM_DMIRROR_READ of a written buffer: the same, then
 *                 the data moved by DMA (dma_read in the table)
 *
 * timed as the CPU time of the thread (CLOCK_THREAD_CPUTIME_ID): edu
 * takes a fixed 100 ms of guest time per transfer of 2 KiB, which says
 * nothing about HMM; the thread's time is the mirroring, the mapping and
 * driving the device, not the wait for it.
 *
 * Only the uapi shared by upstream's driver and ours is used, so the same
 * binary measures either driver (and the one command of test_hmm_dma's);
 * gpu_fault asks the driver first whether it has the one command of ours
 * it would use. Each figure is set up afresh for every
 * repetition; only the operation itself is timed, with CLOCK_MONOTONIC
 * (under QEMU -icount the guest clock counts instructions, so figures
 * repeat run to run). One line per figure on stdout:
 *
 *   HMM-BENCH <label> <figure> <backing> <bytes> <reps> <median ns> <min ns> <max ns>
 *
 * Usage: hmm-bench LABEL [MIB ...]   (default sizes: 2 256)
 *
 * The environment narrows or changes a run:
 *
 *   HMM_BENCH_FIGURES=a,b  only these figures (default: all)
 *   HMM_BENCH_REPS=N       N timed repetitions of each figure instead of 9
 *                          or 5 by size (after one untimed one)
 *   HMM_BENCH_PROFILE=1    one repetition per figure with the kernel's
 *                          function profiler on around the timed operation
 *                          (a kernel with CONFIG_FUNCTION_PROFILER), then
 *                          the functions that took longest, inclusive of
 *                          their callees, summed over CPUs, one line each:
 *
 *   HMM-PROFILE <label> <figure> <backing> <bytes> <function> <hits> <us>
 *
 *   HMM_BENCH_MARK=1       mark the timed repetitions for the instruction
 *                          counter (make bench INSNS=1, harness/qemu-plugin/
 *                          insns.c): each timed operation is entered as a
 *                          window, sched_get_priority_max() before it and
 *                          sched_get_priority_min() after, and each figure
 *                          ends with sched_rr_get_interval(), which makes
 *                          the plugin write the figure's counts out; the
 *                          modules' functions first, for their addresses:
 *
 *   HMM-KSYM <label> <address> <function> <module>
 *
 * On a kernel with the core's /proc/vmstat events (flavour ours), the
 * untimed repetition of each figure also says what its operation did,
 * every event that moved and by how much (pages; thp_* in folios):
 *
 *   HMM-EVENTS <label> <figure> <backing> <bytes> <event>=<delta> ...
 *
 * They are read outside the timed window, and never around a timed
 * repetition, so the figures are the same with or without them.
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
#include <sys/mount.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "lib/test_hmm_uapi.h"

/* Commands of our drivers, which the base's header lacks. */
#ifndef HMM_DMA_MAP
#define HMM_DMA_MAP		_IOWR('H', 0x41, struct hmm_dmirror_cmd)
#endif
#ifndef HMM_DMIRROR_MIGRATE_ON_FAULT_TO_DEV
#define HMM_DMIRROR_MIGRATE_ON_FAULT_TO_DEV \
	_IOWR('H', 0x09, struct hmm_dmirror_cmd)
#endif

#define THP_SIZE	(2UL << 20)
#define MAX_REPS	15
/* Functions listed per profiled figure. */
#define PROFILE_TOP	30
#define TRACEFS		"/sys/kernel/tracing"

static long page_size;
static const char *label;

static void die(const char *what)
{
	fprintf(stderr, "hmm-bench: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* The device is test_hmm_dma's (LABEL dma-driver), timed in CPU time. */
static int dma_driver;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(dma_driver ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC,
		      &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/*
 * The profiler, when asked for: only the functions of the paths measured
 * (the migrate, fault and eviction paths, the drivers' commands, what they
 * call into), since every traced function slows the guest down.
 */
static int profiling;
static const char *const profile_filter[] = {
	"mdev_*", "migrate_*", "hmm_*", "dmirror_*", "*migration*",
	"try_to_migrate*", "rmap_walk*", "folio_*", "__folio_*",
	"lru_add_drain*", "walk_page_range*", "__walk_page_range",
	"walk_p?d_range", "mmu_notifier_*", "__mmu_notifier_*",
	"flush_tlb_*", "handle_mm_fault", "__handle_mm_fault",
	"do_swap_page", "do_anonymous_page", "do_huge_pmd_anonymous_page",
	"memunmap_pages", "memremap_pages", "pageunmap_range",
	"arch_remove_memory", "arch_add_memory", "percpu_ref_*",
	"vm_normal_page", "alloc_pages*", "__alloc_pages*", "free_*page*",
	"__free_pages*", "split_huge_pmd*", "__split_huge_pmd*",
	"split_folio*", "split_huge_page*", "msleep", "schedule",
	"synchronize_rcu*", "wait_for_completion*", "page_vma_mapped_walk",
	"copy_mc_*", "kvcalloc*", "kvmalloc*", "__kvmalloc*", "kvfree",
	"xa_*", "__xa_*", "zap_*", "unmap_*", "lock_page*", "mem_cgroup_*",
	"__mem_cgroup_*", "__lruvec_stat*", "anon_vma_*", "remove_migration*",
	"set_pte_*", "ptep_*", "dev_pagemap_*", "get_dev_pagemap",
	"zone_device_*", "free_zone_device_*", "__put_*", "put_page*",
	"do_wp_page", "wp_page_reuse", "do_user_addr_fault", "split_page",
	NULL,
};

static void tracefs_write(const char *file, const char *text, int flags)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), TRACEFS "/%s", file);
	fd = open(path, O_WRONLY | flags);
	if (fd < 0)
		die(path);
	/* A pattern that matches nothing is refused: leave it out. */
	if (write(fd, text, strlen(text)) < 0 && errno != EINVAL)
		die(path);
	close(fd);
}

static void profile_init(void)
{
	int i;

	if (mount("tracefs", TRACEFS, "tracefs", 0, NULL) && errno != EBUSY)
		die("mount tracefs");
	tracefs_write("set_ftrace_filter", "", O_TRUNC);
	for (i = 0; profile_filter[i]; i++)
		tracefs_write("set_ftrace_filter", profile_filter[i], O_APPEND);
}

/* Enabling the profiler starts it from zero. */
static void profile_enable(int on)
{
	tracefs_write("function_profile_enabled", on ? "1" : "0", 0);
}

/* One function's totals, summed over the per-CPU profiles. */
struct prof_fn {
	char name[64];
	unsigned long hits;
	double us;
};

static int cmp_prof(const void *a, const void *b)
{
	const struct prof_fn *x = a, *y = b;

	return x->us < y->us ? 1 : x->us > y->us ? -1 : 0;
}

/* Read the per-CPU profiles and print the longest functions. */
static void profile_report(const char *figure, int thp, size_t bytes)
{
	static struct prof_fn fn[4096];
	int nfn = 0, cpu, i;

	for (cpu = 0; ; cpu++) {
		char path[128], line[256], name[64], unit[8];
		unsigned long hits;
		double t;
		FILE *f;

		snprintf(path, sizeof(path), TRACEFS "/trace_stat/function%d", cpu);
		f = fopen(path, "r");
		if (!f)
			break;
		while (fgets(line, sizeof(line), f)) {
			if (sscanf(line, " %63s %lu %lf %7s", name, &hits, &t,
				   unit) != 4)
				continue;
			if (!strcmp(unit, "ms"))
				t *= 1000;
			else if (!strcmp(unit, "ns"))
				t /= 1000;
			for (i = 0; i < nfn && strcmp(fn[i].name, name); i++)
				;
			if (i == nfn) {
				if (nfn == (int)(sizeof(fn) / sizeof(fn[0])))
					continue;
				snprintf(fn[nfn++].name, sizeof(fn[0].name), "%s", name);
			}
			fn[i].hits += hits;
			fn[i].us += t;
		}
		fclose(f);
	}
	qsort(fn, nfn, sizeof(fn[0]), cmp_prof);
	for (i = 0; i < nfn && i < PROFILE_TOP; i++)
		printf("HMM-PROFILE %s %s %s %zu %s %lu %.1f\n", label, figure,
		       thp ? "thp" : "4k", bytes, fn[i].name, fn[i].hits,
		       fn[i].us);
	memset(fn, 0, sizeof(fn[0]) * nfn);
}

/* ---- The core's events around the untimed repetition ---- */

/* Events of Documentation/mm/hmm.rst, "What HMM counts". */
static const char *const event_names[] = {
	"pgmigrate_device_collected", "pgmigrate_device_success",
	"pgmigrate_to_device_private", "pgmigrate_from_device_private",
	"pgmigrate_device_fail_locked", "pgmigrate_device_fail_pinned",
	"pgmigrate_device_fail_refs", "pgmigrate_device_fail_alloc",
	"pgmigrate_device_fail_raced", "thp_migration_device",
	"thp_migration_device_split", "device_private_fault",
};

enum { NR_EVENTS = sizeof(event_names) / sizeof(event_names[0]) };

static int counting;		/* read the events around the operation */
static long events_before[NR_EVENTS], events_delta[NR_EVENTS];

/* Every event's value now into @v (-1: the kernel has none); any found? */
static int events_read(long *v)
{
	char key[64];
	long value;
	int found = 0;
	size_t i;
	FILE *f = fopen("/proc/vmstat", "r");

	for (i = 0; i < NR_EVENTS; i++)
		v[i] = -1;
	if (!f)
		return 0;
	while (fscanf(f, "%63s %ld", key, &value) == 2)
		for (i = 0; i < NR_EVENTS; i++)
			if (!strcmp(key, event_names[i])) {
				v[i] = value;
				found = 1;
			}
	fclose(f);
	return found;
}

static void events_report(const char *figure, int thp, size_t bytes)
{
	size_t i;

	printf("HMM-EVENTS %s %s %s %zu", label, figure, thp ? "thp" : "4k",
	       bytes);
	for (i = 0; i < NR_EVENTS; i++)
		if (events_delta[i])
			printf(" %s=%ld", event_names[i], events_delta[i]);
	printf("\n");
}

/*
 * Wait, for at most five seconds, until the kernel has left its early
 * clocksource. On x86 the TSC's refined calibration, a second or so into
 * the boot, switches clocksources by stop_machine(). Under QEMU 7.2's
 * -icount a reschedule IPI can go astray while a vCPU is busy, and
 * stop_machine() then waited for the benchmark's vCPU for 20 s of guest
 * time, which the kernel reports as an RCU stall (make bench at 64 MiB,
 * README.md "Open findings"). An idle, polling vCPU needs no IPI to see
 * the stopper: so the switch happens before the first figure.
 */
static void wait_clocksource(void)
{
	const char *path =
		"/sys/devices/system/clocksource/clocksource0/current_clocksource";
	uint64_t t0 = now_ns();
	char name[64];

	for (;;) {
		FILE *f = fopen(path, "r");
		int early = 0;

		if (!f)
			return;		/* no such file: nothing to wait for */
		if (fgets(name, sizeof(name), f))
			early = strstr(name, "early") != NULL;
		fclose(f);
		if (!early)
			return;
		if (now_ns() - t0 > 5000000000ull) {
			fprintf(stderr, "hmm-bench: still on clocksource %s",
				name);
			return;
		}
		usleep(10000);
	}
}

/* ---- Windows for the instruction counter (HMM_BENCH_MARK=1) ---- */

static int marking;		/* HMM_BENCH_MARK=1 */
static int marked;		/* mark this repetition */

/*
 * The system calls the plugin watches for (by their kernel functions'
 * addresses): nothing else in the guest makes them while hmm-bench runs.
 */
static void mark_open(void)
{
	syscall(SYS_sched_get_priority_max, 0);
}

static void mark_close(void)
{
	syscall(SYS_sched_get_priority_min, 0);
}

static void mark_dump(void)
{
	struct timespec ts;

	syscall(SYS_sched_rr_get_interval, 0, &ts);
}

/* The text symbols of modules, whose addresses System.map lacks. */
static void mark_modules(void)
{
	char line[512], addr[32], type[4], name[256], mod[64];
	FILE *f = fopen("/proc/kallsyms", "r");

	if (!f)
		die("/proc/kallsyms");
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%31s %3s %255s [%63[^]]]", addr, type, name,
			   mod) != 4 || (type[0] != 't' && type[0] != 'T'))
			continue;
		printf("HMM-KSYM %s %s %s %s\n", label, addr, name, mod);
	}
	fclose(f);
}

/* The start and the end of a timed operation. */
static uint64_t timed_begin(void)
{
	if (counting)
		events_read(events_before);
	if (profiling)
		profile_enable(1);
	if (marked)
		mark_open();
	return now_ns();
}

static uint64_t timed_end(uint64_t t0)
{
	uint64_t t = now_ns() - t0;
	long now[NR_EVENTS];
	size_t i;

	if (marked)
		mark_close();
	if (profiling)
		profile_enable(0);
	if (counting) {
		events_read(now);
		for (i = 0; i < NR_EVENTS; i++)
			events_delta[i] = now[i] - events_before[i];
	}
	return t;
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

/*
 * The driver's user-side copy buffer: page aligned, as a buffer a device
 * copies pages into would be (our driver then copies whole pages; an
 * unaligned buffer costs it two copies of part of a page for each).
 */
static struct buf bounce_buf;
static char *bounce;

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
	int dma;	/* 1: test_hmm_dma only; 2: both drivers */
};

static uint64_t fig_memcpy(const struct figure *f, size_t bytes, int thp)
{
	struct buf src = prepare(bytes, thp, WRITTEN);
	struct buf dst = prepare(bytes, thp, WRITTEN);
	uint64_t t;

	t = timed_begin();
	memcpy(dst.p, src.p, bytes);
	t = timed_end(t);
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

	t = timed_begin();
	for (i = 0; i < bytes; i += page_size)
		(void)p[i];
	t = timed_end(t);
	check_filled(&b, f->name);
	buf_free(&b);
	return t;
}

static uint64_t fig_command(const struct figure *f, size_t bytes, int thp)
{
	struct buf b = prepare(bytes, thp, f->start);
	uint64_t t;

	t = timed_begin();
	dev_cmd(f->cmd, &b, bounce, f->name);
	t = timed_end(t);
	/* The commands that bring data back must not lose any. */
	if (f->cmd == HMM_DMIRROR_MIGRATE_TO_SYS ||
	    f->cmd == HMM_DMIRROR_RELEASE)
		check_filled(&b, f->name);
	buf_free(&b);
	if (f->cmd == HMM_DMIRROR_RELEASE)
		warm_up(bytes);
	return t;
}

/*
 * Does the driver have HMM_DMIRROR_MIGRATE_ON_FAULT_TO_DEV? Asked once, on
 * a page of its own, before anything is timed: a 6.12 driver answers
 * EINVAL to a command it does not know.
 */
static int has_migrate_on_fault(void)
{
	static int known = -1;
	struct buf b;
	struct hmm_dmirror_cmd cmd = { .npages = 1 };

	if (known >= 0)
		return known;
	b = prepare(page_size, 0, WRITTEN);
	cmd.addr = (uintptr_t)b.p;
	cmd.ptr = (uintptr_t)bounce;
	known = !ioctl(dev_fd, HMM_DMIRROR_MIGRATE_ON_FAULT_TO_DEV, &cmd);
	if (!known && errno != EINVAL)
		die("MIGRATE_ON_FAULT_TO_DEV");
	buf_free(&b);
	return known;
}

static uint64_t fig_gpu_fault(const struct figure *f, size_t bytes, int thp)
{
	int one_walk = has_migrate_on_fault();
	struct buf b = prepare(bytes, thp, f->start);
	uint64_t t;

	t = timed_begin();
	if (one_walk) {
		dev_cmd(HMM_DMIRROR_MIGRATE_ON_FAULT_TO_DEV, &b, bounce,
			f->name);
	} else {
		dev_cmd(HMM_DMIRROR_READ, &b, bounce, f->name);
		dev_cmd(HMM_DMIRROR_MIGRATE_TO_DEV, &b, bounce, f->name);
	}
	t = timed_end(t);
	check_filled(&b, f->name);
	buf_free(&b);
	return t;
}

static const struct figure figures[] = {
	{ "memcpy",        WRITTEN,   0,                          fig_memcpy },
	{ "to_dev",        WRITTEN,   HMM_DMIRROR_MIGRATE_TO_DEV, fig_command },
	{ "to_sys",        ON_DEVICE, HMM_DMIRROR_MIGRATE_TO_SYS, fig_command },
	{ "cpu_fault",     ON_DEVICE, 0,                          fig_cpu_fault },
	{ "dma_map",       WRITTEN,   HMM_DMA_MAP,                fig_command, 1 },
	{ "dev_read",      WRITTEN,   HMM_DMIRROR_READ,           fig_command, 2 },
	{ "dev_read_cold", FRESH,     HMM_DMIRROR_READ,           fig_command },
	{ "snapshot",      WRITTEN,   HMM_DMIRROR_SNAPSHOT,       fig_command },
	{ "gpu_fault",     WRITTEN,   0,                          fig_gpu_fault },
	{ "evict",         ON_DEVICE, HMM_DMIRROR_RELEASE,        fig_command },
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Is figure @name one of the comma-separated list @only (NULL: all)? */
static int wanted(const char *only, const char *name)
{
	size_t n = strlen(name);
	const char *p;

	if (!only || !*only)
		return 1;
	for (p = only; (p = strstr(p, name)); p += n)
		if ((p == only || p[-1] == ',') && (p[n] == ',' || !p[n]))
			return 1;
	return 0;
}

static int reps_override;

/* Fewer repetitions of the big sizes: they are long and steady. */
static int reps_for(size_t bytes)
{
	if (profiling)
		return 1;	/* the profile is of one repetition */
	if (reps_override)
		return reps_override;
	if (bytes >= (16UL << 20))
		return 5;
	return 9;
}

int main(int argc, char **argv)
{
	static const unsigned long default_mib[] = { 2, 256 };
	const char *only = getenv("HMM_BENCH_FIGURES");
	unsigned long mib[16];
	int nsizes = 0, i, f, thp, r, has_events;

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

	if (getenv("HMM_BENCH_REPS")) {
		reps_override = atoi(getenv("HMM_BENCH_REPS"));
		if (reps_override < 1 || reps_override > MAX_REPS) {
			fprintf(stderr, "hmm-bench: HMM_BENCH_REPS: 1 to %d\n",
				MAX_REPS);
			return 2;
		}
	}
	page_size = sysconf(_SC_PAGESIZE);
	wait_clocksource();
	has_events = events_read(events_before);
	dma_driver = !strcmp(label, "dma-driver");
	dev_fd = open(dma_driver ? "/dev/hmm_dma0" : "/dev/hmm_dmirror0",
		      O_RDWR);
	if (dev_fd < 0)
		die(dma_driver ? "/dev/hmm_dma0" : "/dev/hmm_dmirror0");
	if (getenv("HMM_BENCH_PROFILE") && atoi(getenv("HMM_BENCH_PROFILE"))) {
		profile_init();
		profiling = 1;
	}
	if (getenv("HMM_BENCH_MARK") && atoi(getenv("HMM_BENCH_MARK"))) {
		marking = 1;
		mark_modules();
	}

	for (i = 0; i < nsizes; i++) {
		size_t bytes = mib[i] << 20;

		bounce_buf = buf_new(bytes, 0);
		bounce = bounce_buf.p;
		memset(bounce, 0, bytes);
		if (!dma_driver)
			warm_up(bytes);
		for (thp = 0; thp < 2; thp++) {
			for (f = 0; f < (int)(sizeof(figures) / sizeof(figures[0])); f++) {
				uint64_t t[MAX_REPS];
				int reps = reps_for(bytes);

				if (!wanted(only, figures[f].name) ||
				    (dma_driver ? !figures[f].dma :
						  figures[f].dma == 1))
					continue;
				/*
				 * One untimed repetition first: the first run
				 * of a figure at a size meets the page
				 * allocator in whatever state the previous
				 * figure left, which moved 256 MiB medians
				 * of three by up to 1%.
				 */
				if (!profiling) {
					counting = has_events;
					figures[f].fn(&figures[f], bytes, thp);
					counting = 0;
				}
				marked = marking;
				for (r = 0; r < reps; r++)
					t[r] = figures[f].fn(&figures[f], bytes, thp);
				marked = 0;
				qsort(t, reps, sizeof(t[0]), cmp_u64);
				printf("HMM-BENCH %s %s %s %zu %d %llu %llu %llu\n",
				       label, figures[f].name, thp ? "thp" : "4k",
				       bytes, reps,
				       (unsigned long long)t[reps / 2],
				       (unsigned long long)t[0],
				       (unsigned long long)t[reps - 1]);
				if (profiling)
					profile_report(figures[f].name, thp, bytes);
				if (marking)
					mark_dump();
				if (has_events && !profiling)
					events_report(figures[f].name, thp, bytes);
				fflush(stdout);
			}
		}
		buf_free(&bounce_buf);
	}
	close(dev_fd);
	return 0;
}
