// SPDX-License-Identifier: GPL-2.0
/*
 * hmm-demo: what `make run` shows a person, in six steps.
 *
 * A buffer of ordinary anonymous memory is filled by the CPU, read by the
 * dummy device through its mirror of the process's page table (the kernel
 * walks the CPU page table with hmm_range_fault()), migrated into the
 * device's own memory, inspected with a snapshot of the mirror (each page
 * now a device-private entry), then touched by the CPU, which faults every
 * page back to system memory through the pagemap's migrate_to_ram(). Every
 * byte is checked at the end. Each step prints what happened and how long
 * it took in guest time.
 */
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

#include <lib/test_hmm_uapi.h>

#define DEMO_PAGES	1024UL

static long page_size;

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void die(const char *what)
{
	fprintf(stderr, "hmm-demo: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* One ioctl on the device for npages from addr; ptr is the ioctl's buffer. */
static struct hmm_dmirror_cmd device_cmd(int fd, unsigned long request,
					 void *addr, void *ptr,
					 unsigned long npages,
					 const char *what)
{
	struct hmm_dmirror_cmd cmd = {
		.addr = (uintptr_t)addr,
		.ptr = (uintptr_t)ptr,
		.npages = npages,
	};

	if (ioctl(fd, request, &cmd))
		die(what);
	return cmd;
}

/* Count the snapshot entries equal to want (after masking with mask). */
static unsigned long count_entries(const uint8_t *snap, unsigned long n,
				   uint8_t mask, uint8_t want)
{
	unsigned long i, hits = 0;

	for (i = 0; i < n; i++)
		hits += (snap[i] & mask) == want;
	return hits;
}

/* The demo's data: word i of the buffer; never read back from buf itself
 * while it sits in device memory, since a CPU read would fault it home.
 */
static uint32_t pattern(unsigned long i)
{
	return i * 2654435761u;
}

/* How many words of copy differ from the pattern. */
static unsigned long count_mismatches(const uint32_t *copy, unsigned long words)
{
	unsigned long i, bad = 0;

	for (i = 0; i < words; i++)
		bad += copy[i] != pattern(i);
	return bad;
}

static void step(int nr, const char *text, double t0)
{
	printf("  %d. %-62s %8.2f ms\n", nr, text, now_ms() - t0);
}

#define THP_PAGES	512UL	/* a 2 MiB THP, of 4 KiB pages */

/*
 * The same round trip for one THP: it moves to the device as one 2 MiB
 * device page (every snapshot byte has the PMD bit) and comes back whole.
 * Returns the number of problems found.
 */
static unsigned long demo_thp(int fd, double mig_ms_per_mib)
{
	size_t size = THP_PAGES * page_size;
	unsigned long words = size / sizeof(uint32_t), i, bad, huge;
	uint8_t pmd_local = HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL |
			    HMM_DMIRROR_PROT_PMD;
	uint8_t snap[THP_PAGES];
	uint32_t *buf, *mirror;
	char line[128], *raw;
	double t0, ms;

	raw = mmap(NULL, 2 * size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	mirror = malloc(size);
	if (raw == MAP_FAILED || !mirror)
		die("allocate the THP buffers");
	buf = (uint32_t *)(((uintptr_t)raw + size - 1) & ~(size - 1));
	if (madvise(buf, size, MADV_HUGEPAGE))
		die("madvise(MADV_HUGEPAGE)");
	printf("hmm-demo: a 2 MiB THP through /dev/hmm_dmirror0\n");
	for (i = 0; i < words; i++)
		buf[i] = pattern(i);

	t0 = now_ms();
	device_cmd(fd, HMM_DMIRROR_MIGRATE_TO_DEV, buf, mirror, THP_PAGES,
		   "migrate the THP to device");
	ms = now_ms() - t0;
	bad = count_mismatches(mirror, words);
	device_cmd(fd, HMM_DMIRROR_SNAPSHOT, buf, snap, THP_PAGES, "snapshot");
	huge = count_entries(snap, THP_PAGES, 0xf4, pmd_local);
	snprintf(line, sizeof(line),
		 "2 MiB page: %lu/%lu pages, %.1f ms/MiB (4 KiB pages: %.1f)",
		 huge, THP_PAGES, ms / 2, mig_ms_per_mib);
	step(7, line, t0);

	t0 = now_ms();
	bad += count_mismatches(buf, words);
	device_cmd(fd, HMM_DMIRROR_SNAPSHOT, buf, snap, THP_PAGES, "snapshot");
	snprintf(line, sizeof(line),
		 "CPU reads it: back as one THP (%lu pages), %lu bad words",
		 count_entries(snap, THP_PAGES, 0xf4, HMM_DMIRROR_PROT_PMD), bad);
	step(8, line, t0);
	bad += THP_PAGES - count_entries(snap, THP_PAGES, 0xf4,
					 HMM_DMIRROR_PROT_PMD);
	munmap(raw, 2 * size);
	free(mirror);
	return bad + THP_PAGES - huge;
}

int main(void)
{
	unsigned long size, words, i, bad = 0;
	struct hmm_dmirror_cmd cmd;
	uint32_t *buf, *mirror;
	char line[128];
	unsigned long private;
	double t0, mig_ms;
	uint8_t *snap;
	int fd;

	page_size = sysconf(_SC_PAGESIZE);
	size = DEMO_PAGES * page_size;
	words = size / sizeof(uint32_t);
	printf("hmm-demo: a %lu KiB buffer (%lu pages) through /dev/hmm_dmirror0\n",
	       size >> 10, DEMO_PAGES);

	fd = open("/dev/hmm_dmirror0", O_RDWR);
	if (fd < 0)
		die("open /dev/hmm_dmirror0");
	buf = mmap(NULL, size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	mirror = malloc(size);
	snap = malloc(DEMO_PAGES);
	if (buf == MAP_FAILED || !mirror || !snap)
		die("allocate the buffers");

	t0 = now_ms();
	for (i = 0; i < words; i++)
		buf[i] = pattern(i);
	step(1, "CPU fills the buffer", t0);

	t0 = now_ms();
	cmd = device_cmd(fd, HMM_DMIRROR_READ, buf, mirror, DEMO_PAGES,
			 "device read");
	bad = count_mismatches(mirror, words);
	snprintf(line, sizeof(line),
		 "device reads it via hmm_range_fault(): %llu pages, %lu bad words",
		 (unsigned long long)cmd.cpages, bad);
	step(2, line, t0);

	/* The driver copies what it migrated into ptr, for checking. */
	memset(mirror, 0, size);
	t0 = now_ms();
	cmd = device_cmd(fd, HMM_DMIRROR_MIGRATE_TO_DEV, buf, mirror,
			 DEMO_PAGES, "migrate to device");
	mig_ms = now_ms() - t0;
	bad += count_mismatches(mirror, words);
	snprintf(line, sizeof(line), "migrate to device memory: %llu of %lu pages moved",
		 (unsigned long long)cmd.cpages, DEMO_PAGES);
	step(3, line, t0);

	t0 = now_ms();
	device_cmd(fd, HMM_DMIRROR_SNAPSHOT, buf, snap, DEMO_PAGES, "snapshot");
	private = count_entries(snap, DEMO_PAGES, 0xf0,
				HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL);
	snprintf(line, sizeof(line), "snapshot: %lu pages are device-private, this device's",
		 private);
	step(4, line, t0);

	t0 = now_ms();
	bad += count_mismatches(buf, words);
	snprintf(line, sizeof(line), "CPU reads it, faulting it back: %lu bad words",
		 bad);
	step(5, line, t0);

	t0 = now_ms();
	device_cmd(fd, HMM_DMIRROR_SNAPSHOT, buf, snap, DEMO_PAGES, "snapshot");
	snprintf(line, sizeof(line), "snapshot: %lu pages back in system memory",
		 count_entries(snap, DEMO_PAGES, 0xf0, 0));
	step(6, line, t0);

	bad += demo_thp(fd, mig_ms / (size >> 20));
	close(fd);
	if (bad || private != DEMO_PAGES || count_entries(snap, DEMO_PAGES, 0xf0, 0) != DEMO_PAGES) {
		printf("hmm-demo: FAILED\n");
		return 1;
	}
	printf("hmm-demo: every byte verified, 4 KiB and 2 MiB; HMM works\n");
	return 0;
}
