// SPDX-License-Identifier: GPL-2.0
/*
 * Regression tests: one test per problem found and fixed upstream after
 * Linux 6.12 in a feature 6.12 already has (device memory migration,
 * device-exclusive entries, the dummy driver's file lifetime). Each test is
 * named after the problem it guards against and drives the same scenario
 * through the driver's uapi (lib/test_hmm_uapi.h), so it runs unchanged on
 * both flavours: our core with our driver, and pristine 6.12 with its own.
 *
 * What a test asserts is what a user of the scenario can see: the bytes of
 * the buffer, where its pages live (the driver's snapshot and
 * /proc/self/pagemap), which commands fail. Where the upstream bug showed
 * only as a kernel report (a DEBUG_VM warning, a bad page state), the guest
 * harness fails the run on that report; the test then only has to walk the
 * kernel through the path. The note above each test names the upstream fix
 * and says what it needs to show.
 *
 * The module must be loaded with spm_addr_dev0/1, as the guest's init does:
 * devices 0 and 1 are device-private, 2 and 3 device-coherent.
 */
#include "../kselftest_harness.h"
#include "hmm-common.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/const.h>
#include <linux/mempolicy.h>
#include <linux/userfaultfd.h>

#include <lib/test_hmm_uapi.h>

#define NPAGES		32L
/* Rounds of the racing tests: a few seconds under TCG. */
#define ROUNDS		40
#define THP_SIZE	(2UL << 20)
/* The snapshot bits that say "in some device's memory". */
#define KIND_MASK	0xf0

static long page_size;

static int dmirror_open(int device)
{
	char name[32];

	snprintf(name, sizeof(name), "/dev/hmm_dmirror%d", device);
	return open(name, O_RDWR | O_CLOEXEC);
}

/* Issue one command; 0 or -errno. @cpages, when not NULL, gets cmd.cpages. */
static int dmirror_cmd(int fd, unsigned long request, void *addr, void *ptr,
		       unsigned long npages, uint64_t *cpages)
{
	struct hmm_dmirror_cmd cmd = {
		.addr = (uintptr_t)addr,
		.ptr = (uintptr_t)ptr,
		.npages = npages,
	};

	if (ioctl(fd, request, &cmd) < 0)
		return -errno;
	if (cpages)
		*cpages = cmd.cpages;
	return 0;
}

static void *anon_map(unsigned long bytes, int flags)
{
	void *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
			 flags | MAP_ANONYMOUS, -1, 0);

	return mem == MAP_FAILED ? NULL : mem;
}

/*
 * How many of the @npages pages at @addr the snapshot through @fd reports
 * in device memory (any device, any kind); -1 when the snapshot fails.
 */
static long pages_in_device(int fd, void *addr, unsigned long npages)
{
	uint8_t kinds[NPAGES * 16];
	unsigned long n;
	long count = 0;

	if (npages > sizeof(kinds) ||
	    dmirror_cmd(fd, HMM_DMIRROR_SNAPSHOT, addr, kinds, npages, NULL))
		return -1;
	for (n = 0; n < npages; n++)
		count += (kinds[n] & KIND_MASK) != 0;
	return count;
}

/* /proc/kpageflags: the page is part of a transparent huge page. */
#define KPF_THP_BIT	_BITULL(22)

/*
 * Whether every page of [@addr, +@bytes) is mapped present and part of a
 * THP (the folio was not split), through /proc/self/pagemap and
 * /proc/kpageflags (the guest runs the tests as root).
 */
static bool all_in_thp(void *addr, unsigned long bytes)
{
	int fd = open("/proc/kpageflags", O_RDONLY);
	unsigned long off;
	bool ok = fd >= 0;

	for (off = 0; ok && off < bytes; off += page_size) {
		uint64_t entry = hmm_pagemap((char *)addr + off), flags = 0;
		uint64_t pfn = entry & (_BITULL(55) - 1);

		ok = (entry & PM_PRESENT) &&
		     pread(fd, &flags, sizeof(flags), pfn * sizeof(flags)) ==
		     sizeof(flags) && (flags & KPF_THP_BIT);
	}
	if (fd >= 0)
		close(fd);
	return ok;
}

/*
 * Empty every CPU's LRU batches: memory compaction starts with
 * lru_add_drain_all(), so a folio that was wrongly queued for the LRU
 * reaches the LRU (and its checks) now, inside the test.
 */
static int drain_lru_batches(void)
{
	return hmm_write_file("/proc/sys/vm/compact_memory", "1");
}

/* A 2 MiB aligned, THP-backed (when the kernel allows) anonymous range. */
static void *thp_map(void)
{
	char *mem = anon_map(2 * THP_SIZE, MAP_PRIVATE);
	char *aligned;

	if (!mem)
		return NULL;
	aligned = (char *)(((uintptr_t)mem + THP_SIZE - 1) & ~(THP_SIZE - 1));
	if (aligned != mem)
		munmap(mem, aligned - mem);
	munmap(aligned + THP_SIZE, mem + THP_SIZE - aligned);
	madvise(aligned, THP_SIZE, MADV_HUGEPAGE);
	return aligned;
}

/*
 * A THP-backed 2 MiB range painted with @seed and mapped by its PMD, as
 * the snapshot through @fd shows; NULL if the kernel gave it no THP.
 */
static char *painted_thp(int fd, unsigned int seed)
{
	char *thp = thp_map();
	uint8_t kind = 0;

	if (!thp)
		return NULL;
	hmm_paint(thp, THP_SIZE, seed);
	if (dmirror_cmd(fd, HMM_DMIRROR_SNAPSHOT, thp, &kind, 1, NULL) ||
	    !(kind & HMM_DMIRROR_PROT_PMD)) {
		munmap(thp, THP_SIZE);
		return NULL;
	}
	return thp;
}

/*
 * Ask device @fd for exclusive access to the @npages pages at @addr and
 * check what a grant means: the device's copy in @mirror holds paint
 * @seed and the device holds the pages. 0 if all of it held.
 */
static int granted_exclusive(int fd, char *addr, char *mirror,
			     unsigned long npages, unsigned int seed)
{
	if (dmirror_cmd(fd, HMM_DMIRROR_EXCLUSIVE, addr, mirror, npages, NULL))
		return -1;
	if (hmm_unpainted(mirror, npages * page_size, seed) != -1)
		return -2;
	if (dmirror_cmd(fd, HMM_DMIRROR_CHECK_EXCLUSIVE, addr, NULL, npages,
			NULL) != -EPERM)
		return -3;
	return 0;
}

/*
 * A child forked to hold the parent's mappings: it says it is there, waits
 * to be let go, then runs @fn(@arg) and exits with what @fn returns.
 */
struct parked {
	pid_t pid;
	int go[2], ready[2];
};

static int park_child(struct parked *p, int (*fn)(void *), void *arg)
{
	char byte = 0;

	if (pipe(p->go) || pipe(p->ready))
		return -1;
	p->pid = fork();
	if (p->pid < 0)
		return -1;
	if (!p->pid) {
		if (write(p->ready[1], &byte, 1) != 1 ||
		    read(p->go[0], &byte, 1) != 1)
			_exit(3);
		_exit(fn(arg));
	}
	return read(p->ready[0], &byte, 1) == 1 ? 0 : -1;
}

/* Let the parked child go on and reap it: its exit status, or -1. */
static int release_child(struct parked *p)
{
	int status = -1, i;
	char byte = 0;

	if (write(p->go[1], &byte, 1) != 1 ||
	    waitpid(p->pid, &status, 0) != p->pid)
		status = -1;
	for (i = 0; i < 2; i++) {
		close(p->go[i]);
		close(p->ready[i]);
	}
	return status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

FIXTURE(regression)
{
	int fd[4];
};

FIXTURE_SETUP(regression)
{
	int device;

	page_size = sysconf(_SC_PAGESIZE);
	for (device = 0; device < 4; device++) {
		self->fd[device] = dmirror_open(device);
		ASSERT_GE(self->fd[device], 0)
			TH_LOG("open /dev/hmm_dmirror%d: %s", device,
			       strerror(errno));
	}
}

FIXTURE_TEARDOWN(regression)
{
	int device;

	for (device = 0; device < 4; device++)
		if (self->fd[device] >= 0)
			close(self->fd[device]);
}

/*
 * "mm/migrate_device: don't add folio to be freed to LRU in
 * migrate_device_finalize()" (CVE-2025-21861, fixed in 6.12.17).
 *
 * After a successful migration to device memory the old system folio has
 * given its memcg to the device page and is about to be freed; after a
 * failed one the unused destination never had a memcg. Putting either back
 * on the LRU made the memcg code warn (VM_WARN_ON_ONCE_FOLIO(!memcg) in
 * folio_lruvec_lock_irqsave(), with CONFIG_MEMCG and CONFIG_DEBUG_VM) when
 * the LRU batch was drained. The test walks finalize through each case -
 * to device and back on both device kinds, a CPU fault back, and a
 * migration of shared memory that must fail page by page - and drains the
 * LRU batches after each, so the warning, if any, lands in this test. It
 * also checks that nothing was lost on the way.
 */
TEST_F(regression, finalize_freed_folio_not_on_lru)
{
	static const int devices[] = { 0, 2 };
	unsigned long bytes = NPAGES * page_size;
	char *mirror = anon_map(bytes, MAP_PRIVATE);
	unsigned int d;

	ASSERT_NE(mirror, NULL);
	for (d = 0; d < 2; d++) {
		int fd = self->fd[devices[d]];
		char *buf = anon_map(bytes, MAP_PRIVATE);
		char *shared = anon_map(bytes, MAP_SHARED);
		uint64_t cpages = 0;

		ASSERT_NE(buf, NULL);
		ASSERT_NE(shared, NULL);
		hmm_paint(buf, bytes, 1 + d);
		hmm_paint(shared, bytes, 3 + d);

		/* Success to device: the old system folios are freed. */
		ASSERT_EQ(dmirror_cmd(fd, HMM_DMIRROR_MIGRATE_TO_DEV, buf,
				      mirror, NPAGES, &cpages), 0);
		ASSERT_EQ(cpages, (uint64_t)NPAGES);
		ASSERT_EQ(pages_in_device(fd, buf, NPAGES), NPAGES);
		ASSERT_EQ(drain_lru_batches(), 0);

		/* Success back to system memory: the device folios are freed. */
		ASSERT_EQ(dmirror_cmd(fd, HMM_DMIRROR_MIGRATE_TO_SYS, buf,
				      mirror, NPAGES, NULL), 0);
		ASSERT_EQ(pages_in_device(fd, buf, NPAGES), 0);
		ASSERT_EQ(drain_lru_batches(), 0);
		ASSERT_EQ(hmm_unpainted(buf, bytes, 1 + d), -1);

		/* Again, back by CPU fault this time (device-private only). */
		ASSERT_EQ(dmirror_cmd(fd, HMM_DMIRROR_MIGRATE_TO_DEV, buf,
				      mirror, NPAGES, NULL), 0);
		ASSERT_EQ(hmm_unpainted(buf, bytes, 1 + d), -1);
		ASSERT_EQ(drain_lru_batches(), 0);

		/*
		 * Shared memory cannot move to device memory: every page fails
		 * in the copy stage, its destination goes unused and its source
		 * stays. Whatever the driver answers, the data stays put.
		 */
		dmirror_cmd(fd, HMM_DMIRROR_MIGRATE_TO_DEV, shared, mirror,
			    NPAGES, NULL);
		ASSERT_EQ(pages_in_device(fd, shared, NPAGES), 0);
		ASSERT_EQ(drain_lru_batches(), 0);
		ASSERT_EQ(hmm_unpainted(shared, bytes, 3 + d), -1);

		munmap(buf, bytes);
		munmap(shared, bytes);
	}
	munmap(mirror, bytes);
}

/*
 * "mm/rmap: reject hugetlb folios in folio_make_device_exclusive()" and
 * "mm/gup: reject FOLL_SPLIT_PMD with hugetlb VMAs" (both in 6.12.117).
 *
 * Making a hugetlb page device-exclusive asked GUP to split its PMD
 * (FOLL_SPLIT_PMD), which on a hugetlb VMA split a hugetlb mapping as if it
 * were a THP, and the rmap code then treated the hugetlb folio as a small
 * anonymous one. The request must fail, leave the mapping and its data
 * untouched, and leave no exclusive entry behind.
 */
TEST_F(regression, exclusive_rejects_hugetlb)
{
	const char *knob = "/proc/sys/vm/nr_hugepages";
	long before = hmm_read_long(knob);
	char *mirror = anon_map(THP_SIZE, MAP_PRIVATE);
	char *huge, count[32];
	int ret;

	ASSERT_GE(before, 0);
	ASSERT_NE(mirror, NULL);
	snprintf(count, sizeof(count), "%ld", before + 1);
	ASSERT_EQ(hmm_write_file(knob, count), 0);
	huge = mmap(NULL, THP_SIZE, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	ASSERT_NE(huge, MAP_FAILED) TH_LOG("no hugetlb page: %s",
					   strerror(errno));
	hmm_paint(huge, THP_SIZE, 5);

	ret = dmirror_cmd(self->fd[0], HMM_DMIRROR_EXCLUSIVE, huge, mirror,
			  NPAGES, NULL);
	EXPECT_LT(ret, 0);
	EXPECT_EQ(dmirror_cmd(self->fd[0], HMM_DMIRROR_CHECK_EXCLUSIVE, huge,
			      NULL, NPAGES, NULL), 0);

	/* The CPU and the device both still see the same intact page. */
	EXPECT_EQ(hmm_unpainted(huge, THP_SIZE, 5), -1);
	hmm_paint(huge, THP_SIZE, 6);
	ASSERT_EQ(dmirror_cmd(self->fd[0], HMM_DMIRROR_READ, huge, mirror,
			      NPAGES, NULL), 0);
	EXPECT_EQ(hmm_unpainted(mirror, NPAGES * page_size, 6), -1);
	EXPECT_EQ(munmap(huge, THP_SIZE), 0);

	snprintf(count, sizeof(count), "%ld", before);
	EXPECT_EQ(hmm_write_file(knob, count), 0);
	munmap(mirror, THP_SIZE);
}

/*
 * "mm/rmap: handle device-exclusive entries correctly in
 * try_to_migrate_one()" (6.15; 6.12.117 lacks it).
 *
 * The unmap walk of try_to_migrate_one() decided by the folio's type
 * (zone device or not) whether a PTE could be non-present, and otherwise
 * took the page from pte_pfn(); a device-exclusive entry of a normal (THP)
 * folio is non-present, so pte_pfn() of it is garbage and the walk would
 * pick a page outside the folio. That needs a folio holding a
 * device-exclusive entry to be split or migrated while mapped. In 6.12
 * such an entry holds a reference but no mapcount, so a split request
 * finds the folio pinned and leaves it alone (and only the head page of a
 * PTE-mapped THP can be made exclusive: the others are tail pages); the
 * test pins down that whatever a split request does to a THP whose first
 * page the device holds exclusive, every page stays the page it was,
 * through the CPU and through a device, and the device loses its exclusive
 * access only through a notifier (here: the other device's read).
 */
TEST_F(regression, split_thp_with_exclusive_entry)
{
	const unsigned long npages = THP_SIZE / page_size;
	char *mirror = anon_map(THP_SIZE, MAP_PRIVATE);
	/* The range must really be one PMD-mapped THP to start with. */
	char *thp = painted_thp(self->fd[1], 7);
	char request[96];

	ASSERT_NE(mirror, NULL);
	ASSERT_NE(thp, NULL) TH_LOG("no PMD-mapped THP");

	/*
	 * The first page device-exclusive: the PMD is split, the folio is
	 * not (6.12 refuses the other pages of a THP: they are tail pages).
	 */
	ASSERT_EQ(dmirror_cmd(self->fd[0], HMM_DMIRROR_EXCLUSIVE, thp, mirror,
			      1, NULL), 0);
	ASSERT_EQ(dmirror_cmd(self->fd[0], HMM_DMIRROR_CHECK_EXCLUSIVE, thp,
			      NULL, 1, NULL), -EPERM);

	/* Split the folio: try_to_migrate() walks the exclusive entry. */
	snprintf(request, sizeof(request), "%d,0x%lx,0x%lx", getpid(),
		 (unsigned long)thp, (unsigned long)thp + THP_SIZE);
	ASSERT_EQ(hmm_write_file("/sys/kernel/debug/split_huge_pages", request), 0);

	/* Every page is where it was: through a device, then the CPU. */
	ASSERT_EQ(dmirror_cmd(self->fd[1], HMM_DMIRROR_READ, thp, mirror,
			      npages, NULL), 0);
	EXPECT_EQ(hmm_unpainted(mirror, THP_SIZE, 7), -1);
	EXPECT_EQ(hmm_unpainted(thp, THP_SIZE, 7), -1);
	EXPECT_EQ(dmirror_cmd(self->fd[0], HMM_DMIRROR_CHECK_EXCLUSIVE, thp,
			      NULL, npages, NULL), 0);
	hmm_paint(thp, THP_SIZE, 8);
	EXPECT_EQ(hmm_unpainted(thp, THP_SIZE, 8), -1);
	EXPECT_EQ(munmap(thp, THP_SIZE), 0);
	munmap(mirror, THP_SIZE);
}

/*
 * "lib: test_hmm: evict device pages on file close to avoid use-after-free"
 * (in 6.12.117).
 *
 * Closing a mirror file freed the mirror while pages it had placed in
 * device memory still pointed at it; the next CPU fault on them (a plain
 * read, or a core dump walking the process) used the freed mirror. The
 * close must bring those pages back to system memory, intact, on both
 * device kinds: afterwards /proc/self/pagemap shows them present (not a
 * device-private swap-like entry) and a new file on the same device sees
 * none of them in device memory.
 */
TEST_F(regression, release_evicts_device_pages)
{
	static const int devices[] = { 0, 2 };
	unsigned long bytes = NPAGES * page_size, n;
	char *mirror = anon_map(bytes, MAP_PRIVATE);
	unsigned int d;

	ASSERT_NE(mirror, NULL);
	for (d = 0; d < 2; d++) {
		int device = devices[d];
		char *buf = anon_map(bytes, MAP_PRIVATE);
		uint64_t cpages = 0;

		ASSERT_NE(buf, NULL);
		hmm_paint(buf, bytes, 9 + d);
		ASSERT_EQ(dmirror_cmd(self->fd[device],
				      HMM_DMIRROR_MIGRATE_TO_DEV, buf, mirror,
				      NPAGES, &cpages), 0);
		ASSERT_EQ(cpages, (uint64_t)NPAGES);
		ASSERT_EQ(pages_in_device(self->fd[device], buf, NPAGES),
			  NPAGES);

		/* Close the only file that placed them. */
		ASSERT_EQ(close(self->fd[device]), 0);
		self->fd[device] = -1;

		for (n = 0; n < NPAGES; n++) {
			uint64_t entry = hmm_pagemap(buf + n * page_size);

			ASSERT_TRUE(!!(entry & PM_PRESENT))
				TH_LOG("page %lu not present: %#llx", n,
				       (unsigned long long)entry);
			ASSERT_FALSE(!!(entry & PM_SWAP));
		}
		self->fd[device] = dmirror_open(device);
		ASSERT_GE(self->fd[device], 0);
		EXPECT_EQ(pages_in_device(self->fd[device], buf, NPAGES), 0);
		EXPECT_EQ(hmm_unpainted(buf, bytes, 9 + d), -1);
		munmap(buf, bytes);
	}
	munmap(mirror, bytes);
}

/*
 * In the heir of a mirror file whose opener has exited: device reads,
 * writes and migrations through @orphan must all fail and change no byte,
 * neither of the buffer nor of the output. True when they do.
 */
static bool orphan_commands_fail(int orphan)
{
	unsigned long bytes = NPAGES * page_size;
	char *buf = anon_map(bytes, MAP_PRIVATE);
	char *mirror = anon_map(bytes, MAP_PRIVATE);
	int own = dmirror_open(0);
	bool ok;

	if (!buf || !mirror || own < 0)
		return false;
	hmm_paint(buf, bytes, 11);
	hmm_paint(mirror, bytes, 12);
	ok = dmirror_cmd(orphan, HMM_DMIRROR_READ, buf, mirror, NPAGES,
			 NULL) < 0 &&
	     hmm_unpainted(mirror, bytes, 12) == -1 &&
	     dmirror_cmd(orphan, HMM_DMIRROR_WRITE, buf, mirror, NPAGES,
			 NULL) < 0 &&
	     dmirror_cmd(orphan, HMM_DMIRROR_MIGRATE_TO_DEV, buf, mirror,
			 NPAGES, NULL) < 0 &&
	     pages_in_device(own, buf, NPAGES) == 0 &&
	     hmm_unpainted(buf, bytes, 11) == -1;
	close(own);
	return ok;
}

/*
 * "lib/test_hmm: fail dmirror_fault() when the mirrored mm is gone"
 * (2026; 6.12.117's driver already fails the fault with EFAULT when
 * mmget_not_zero() fails).
 *
 * A mirror file follows the address space of the process that opened it.
 * When that process has exited, a device fault through the file has no
 * address space to fault in: it must fail, not report success with nothing
 * copied or spin. The opener forks an heir, which keeps the file, and
 * exits; the heir's READ, WRITE and MIGRATE_TO_DEV through it must fail
 * and leave every byte (its buffer and the output buffer) as it was.
 */
TEST_F(regression, fault_after_mirrored_mm_exit_fails)
{
	int gone[2], verdict[2], status;
	char result = 'x';
	pid_t opener;

	ASSERT_EQ(pipe(gone), 0);
	ASSERT_EQ(pipe(verdict), 0);
	opener = fork();
	ASSERT_GE(opener, 0);
	if (opener == 0) {
		int orphan = dmirror_open(0);

		/* The heir keeps the file; the opener exits at once. */
		if (orphan < 0 || fork() != 0)
			_exit(orphan < 0);
		close(gone[1]);
		if (read(gone[0], &result, 1) != 0)
			_exit(1);
		result = orphan_commands_fail(orphan) ? 'y' : 'n';
		_exit(write(verdict[1], &result, 1) == 1 ? 0 : 1);
	}
	close(gone[0]);
	close(gone[1]);
	close(verdict[1]);
	ASSERT_EQ(waitpid(opener, &status, 0), opener);
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ASSERT_EQ(read(verdict[0], &result, 1), 1);
	EXPECT_EQ(result, 'y');
	close(verdict[0]);
}

/*
 * "mm: Fix a hmm_range_fault() livelock / starvation problem" (7.0-rc3).
 *
 * A device fault (hmm_range_fault()) on a device-private page that someone
 * else holds locked for migration retried at once, in a loop with no
 * scheduling point; when the lock holder was waiting in
 * lru_add_drain_all() for a work item on the retrying CPU, neither made
 * progress (with PREEMPT_NONE, as our guest has). The fix makes the fault
 * sleep on the page lock. Here a forked child keeps reading, through
 * device 1, pages that device 0 holds (each read migrates them back with
 * the fault path), and CPU-reading them, while the parent keeps moving the
 * same pages between device 0 and system memory: both sides must finish
 * their rounds (the harness's timeout fails a livelock) and always see the
 * data that was written.
 */
TEST_F_TIMEOUT(regression, device_private_fault_waits_for_migration, 300)
{
	unsigned long bytes = NPAGES * page_size;
	char *buf = anon_map(bytes, MAP_PRIVATE);
	char *mirror = anon_map(bytes, MAP_PRIVATE);
	int round, status, read_ok = 0;
	pid_t reader;

	ASSERT_NE(buf, NULL);
	ASSERT_NE(mirror, NULL);
	hmm_paint(buf, bytes, 13);
	ASSERT_EQ(dmirror_cmd(self->fd[0], HMM_DMIRROR_MIGRATE_TO_DEV, buf,
			      mirror, NPAGES, NULL), 0);

	reader = fork();
	ASSERT_GE(reader, 0);
	if (reader == 0) {
		int fd = dmirror_open(1), bad = 0, ok = 0;

		for (round = 0; fd >= 0 && round < ROUNDS; round++) {
			memset(mirror, 0, bytes);
			if (dmirror_cmd(fd, HMM_DMIRROR_READ, buf, mirror,
					NPAGES, NULL) == 0) {
				ok++;
				bad += hmm_unpainted(mirror, bytes, 13) != -1;
			}
			bad += hmm_unpainted(buf, bytes, 13) != -1;
		}
		_exit(fd < 0 || bad || !ok ? 1 : 0);
	}

	for (round = 0; round < ROUNDS; round++) {
		/* Shared with the reader now: moves may fail, data may not. */
		dmirror_cmd(self->fd[0], HMM_DMIRROR_MIGRATE_TO_DEV, buf, mirror,
			    NPAGES, NULL);
		dmirror_cmd(self->fd[0], HMM_DMIRROR_MIGRATE_TO_SYS, buf, mirror,
			    NPAGES, NULL);
		read_ok += hmm_unpainted(buf, bytes, 13) == -1;
	}
	ASSERT_EQ(waitpid(reader, &status, 0), reader);
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	EXPECT_EQ(read_ok, ROUNDS);
	munmap(buf, bytes);
	munmap(mirror, bytes);
}

struct churn {
	int device;
	unsigned int seed;
	int failures;
	char first[96];		/* what went wrong first, for the log */
};

/* Count a failed round; remember the first one's @what and @err. */
static void churn_failed(struct churn *churn, int round, const char *what,
			 long err)
{
	if (!churn->failures++)
		snprintf(churn->first, sizeof(churn->first),
			 "round %d: %s (%ld)", round, what, err);
}

/* Move a buffer of one's own to @churn->device and back, ROUNDS times. */
static void *churn_device_pages(void *arg)
{
	struct churn *churn = arg;
	unsigned long bytes = NPAGES * page_size;
	char *buf = anon_map(bytes, MAP_PRIVATE);
	char *mirror = anon_map(bytes, MAP_PRIVATE);
	int fd = dmirror_open(churn->device), round;
	uint64_t cpages;

	if (!buf || !mirror || fd < 0) {
		churn->failures = ROUNDS;
		return NULL;
	}
	for (round = 0; round < ROUNDS; round++) {
		unsigned int seed = churn->seed + round;
		long err;

		hmm_paint(buf, bytes, seed);
		cpages = 0;
		err = dmirror_cmd(fd, HMM_DMIRROR_MIGRATE_TO_DEV, buf, mirror,
				  NPAGES, &cpages);
		if (err || cpages != (uint64_t)NPAGES) {
			churn_failed(churn, round, "to device: error, cpages",
				     err ? err : (long)cpages);
			continue;
		}
		err = hmm_unpainted(mirror, bytes, seed);
		if (err != -1) {
			churn_failed(churn, round, "device copy: bad byte", err);
			continue;
		}
		err = dmirror_cmd(fd, HMM_DMIRROR_MIGRATE_TO_SYS, buf, mirror,
				  NPAGES, NULL);
		if (err) {
			churn_failed(churn, round, "to system: error", err);
			continue;
		}
		err = hmm_unpainted(buf, bytes, seed);
		if (err != -1)
			churn_failed(churn, round, "back home: bad byte", err);
	}
	close(fd);
	munmap(buf, bytes);
	munmap(mirror, bytes);
	return NULL;
}

/*
 * "mm/zone_device: do not touch device folio after calling ->folio_free()"
 * (7.1-rc; 6.12's free_zone_device_folio() also reads the folio after
 * page_free() and, for some pagemap types, resets its refcount there).
 *
 * Once page_free() has run, the driver may hand the page to a new user on
 * another CPU at once; a core that still reads or writes the folio then
 * works on the new user's page. Two threads move buffers of their own
 * through the same device, so each page freed by one is taken again by the
 * other right away; every round must keep every byte. (The exact promise,
 * with a driver that reuses the page from inside page_free(), is the KUnit
 * case free_path_leaves_reused_page_alone in mm/memremap_kunit.c; with
 * KASAN a use after free shows in the debug flavour.)
 */
TEST_F_TIMEOUT(regression, device_page_reused_right_after_page_free, 300)
{
	static const int devices[] = { 0, 2 };
	unsigned int d;

	for (d = 0; d < 2; d++) {
		struct churn churn[2] = {
			{ .device = devices[d], .seed = 100 },
			{ .device = devices[d], .seed = 200 },
		};
		pthread_t thread[2];
		int t;

		for (t = 0; t < 2; t++)
			ASSERT_EQ(pthread_create(&thread[t], NULL,
						 churn_device_pages,
						 &churn[t]), 0);
		for (t = 0; t < 2; t++)
			ASSERT_EQ(pthread_join(thread[t], NULL), 0);
		for (t = 0; t < 2; t++)
			EXPECT_EQ(churn[t].failures, 0)
				TH_LOG("device %d, thread %d, first: %s",
				       devices[d], t, churn[t].first);
	}
}

/*
 * "mm/page_vma_mapped: device-exclusive entries are not migration entries"
 * (6.15; pristine 6.12.117 lacks it, ours has it as a patch).
 *
 * Walks that look for migration entries (remove_migration_ptes()) also
 * took device-exclusive entries. When a migration of a page failed while
 * some device held it exclusive - as the eviction of a device-coherent
 * page does, since the exclusive entry holds a reference the migration
 * cannot explain - undoing the migration turned the exclusive entry into
 * a present PTE, with a new reference and mapcount, behind the device's
 * back, and the entry's own reference was never dropped: the page could
 * never be evicted or freed again, and the device kept believing it held
 * it exclusive. Here device 0 takes exclusive access to pages that live
 * in device 2's coherent memory, and the file that placed them there is
 * closed: the pages must come back to system memory with their data, and
 * device 0 must have lost its exclusive access on the way. (On a kernel
 * with the bug the assertions fail, and unloading the driver afterwards
 * waits for ever for the leaked page.)
 */
TEST_F(regression, exclusive_entry_is_not_a_migration_entry)
{
	unsigned long bytes = NPAGES * page_size;
	char *buf = anon_map(bytes, MAP_PRIVATE);
	char *mirror = anon_map(bytes, MAP_PRIVATE);
	uint64_t cpages = 0;

	ASSERT_NE(buf, NULL);
	ASSERT_NE(mirror, NULL);
	hmm_paint(buf, bytes, 15);
	ASSERT_EQ(dmirror_cmd(self->fd[2], HMM_DMIRROR_MIGRATE_TO_DEV, buf,
			      mirror, NPAGES, &cpages), 0);
	ASSERT_EQ(cpages, (uint64_t)NPAGES);
	ASSERT_EQ(dmirror_cmd(self->fd[0], HMM_DMIRROR_EXCLUSIVE, buf, mirror,
			      NPAGES, NULL), 0);
	ASSERT_EQ(dmirror_cmd(self->fd[0], HMM_DMIRROR_CHECK_EXCLUSIVE, buf,
			      NULL, NPAGES, NULL), -EPERM);

	/* The release of the placing file evicts its pages. */
	ASSERT_EQ(close(self->fd[2]), 0);
	self->fd[2] = dmirror_open(2);
	ASSERT_GE(self->fd[2], 0);

	EXPECT_EQ(pages_in_device(self->fd[2], buf, NPAGES), 0);
	EXPECT_EQ(dmirror_cmd(self->fd[0], HMM_DMIRROR_CHECK_EXCLUSIVE, buf,
			      NULL, NPAGES, NULL), 0);
	EXPECT_EQ(hmm_unpainted(buf, bytes, 15), -1);
	EXPECT_EQ(munmap(buf, bytes), 0);
	munmap(mirror, bytes);
}

/*
 * "mm/rmap: implement make_device_exclusive() using folio_walk instead of
 * rmap walk" and "mm/rmap: keep mapcount untouched for device-exclusive
 * entries" (6.15; 6.12.118 lacks them).
 *
 * 6.12 made only small folios (and the head page of a THP) exclusive: a
 * device asking for exclusive access to memory backed by a THP got -EBUSY
 * for ever, which is how upstream's own exclusive tests fail under
 * transparent_hugepage=always. Every page of a THP must be grantable, the
 * folio must stay one THP (the PMD is split, the folio not), and the CPU
 * must get every page back, intact, at its first touch.
 */
TEST_F(regression, exclusive_on_thp_pages)
{
	const unsigned long npages = THP_SIZE / page_size;
	char *mirror = anon_map(THP_SIZE, MAP_PRIVATE);
	char *thp = painted_thp(self->fd[1], 31);

	ASSERT_NE(mirror, NULL);
	ASSERT_NE(thp, NULL) TH_LOG("no PMD-mapped THP");

	ASSERT_EQ(granted_exclusive(self->fd[0], thp, mirror, npages, 31), 0);
	/* Renewing the grant on a THP that is already exclusive works too. */
	ASSERT_EQ(granted_exclusive(self->fd[0], thp, mirror, npages, 31), 0);

	/* The CPU takes every page back; they are still one THP. */
	EXPECT_EQ(hmm_unpainted(thp, THP_SIZE, 31), -1);
	EXPECT_EQ(dmirror_cmd(self->fd[0], HMM_DMIRROR_CHECK_EXCLUSIVE, thp,
			      NULL, npages, NULL), 0);
	EXPECT_TRUE(all_in_thp(thp, THP_SIZE));
	hmm_paint(thp, THP_SIZE, 32);
	EXPECT_EQ(hmm_unpainted(thp, THP_SIZE, 32), -1);
	EXPECT_EQ(munmap(thp, THP_SIZE), 0);
	munmap(mirror, THP_SIZE);
}

/*
 * The same series: a THP that a fork left mapped by two processes. The
 * parent's exclusive request breaks COW page by page; the child's pages
 * and data must be untouched by it, and the parent's later writes must
 * not show in the child.
 */
static int child_keeps_paint_33(void *thp)
{
	return hmm_unpainted(thp, THP_SIZE, 33) == -1 ? 0 : 1;
}

TEST_F(regression, exclusive_on_thp_shared_after_fork)
{
	const unsigned long npages = THP_SIZE / page_size;
	char *mirror = anon_map(THP_SIZE, MAP_PRIVATE);
	char *thp = painted_thp(self->fd[1], 33);
	struct parked child;

	ASSERT_NE(mirror, NULL);
	ASSERT_NE(thp, NULL) TH_LOG("no PMD-mapped THP");
	/* The child holds the THP mapped until the parent is done with it. */
	ASSERT_EQ(park_child(&child, child_keeps_paint_33, thp), 0);

	ASSERT_EQ(granted_exclusive(self->fd[0], thp, mirror, npages, 33), 0);
	hmm_paint(thp, THP_SIZE, 34);

	EXPECT_EQ(release_child(&child), 0);
	EXPECT_EQ(hmm_unpainted(thp, THP_SIZE, 34), -1);
	EXPECT_EQ(munmap(thp, THP_SIZE), 0);
	munmap(mirror, THP_SIZE);
}

/*
 * "mm/migrate_device: handle partially mapped folios during collection"
 * (6.19; 6.12.118 lacks it).
 *
 * A THP that is mapped by PTEs rather than by its PMD - after an mprotect,
 * munmap or mremap of part of it, or an mremap of all of it to an address
 * that is not 2 MiB aligned - was skipped by migrate_vma_setup(): its
 * pages are tail pages, and the collection only took small folios. A
 * driver asking for the range got none of it, whatever it retried. The
 * collection must split such a folio and take its pages. Two ways to get
 * one, on each device kind: a read-only last page (the PMD split, the
 * folio not), and the whole THP moved to an address 4 KiB off alignment.
 * Every page of the range must be in device memory afterwards, the
 * device's copy and the CPU's reads intact.
 */
TEST_F(regression, pte_mapped_thp_pages_migrate)
{
	const unsigned long npages = THP_SIZE / page_size;
	char *mirror = anon_map(THP_SIZE, MAP_PRIVATE);
	int device;

	ASSERT_NE(mirror, NULL);
	for (device = 0; device < 4; device += 2) {
		int fd = self->fd[device];
		unsigned int seed = 20 + device;
		char *thp = painted_thp(self->fd[1], seed), *moved, *away;

		ASSERT_NE(thp, NULL) TH_LOG("no PMD-mapped THP");

		/* The last page read-only: the PMD is split, the folio kept. */
		ASSERT_EQ(mprotect(thp + THP_SIZE - page_size, page_size,
				   PROT_READ), 0);
		ASSERT_EQ(dmirror_cmd(fd, HMM_DMIRROR_MIGRATE_TO_DEV, thp, mirror,
				      npages - 1, NULL), 0);
		EXPECT_EQ(pages_in_device(fd, thp, npages - 1), npages - 1);
		EXPECT_EQ(hmm_unpainted(mirror, THP_SIZE - page_size, seed), -1);
		EXPECT_EQ(hmm_unpainted(thp, THP_SIZE, seed), -1);
		EXPECT_EQ(munmap(thp, THP_SIZE), 0);

		/* A whole THP moved 4 KiB off a 2 MiB boundary. */
		thp = thp_map();
		ASSERT_NE(thp, NULL);
		hmm_paint(thp, THP_SIZE, seed + 1);
		away = anon_map(2 * THP_SIZE, MAP_PRIVATE);
		ASSERT_NE(away, NULL);
		moved = (char *)(((uintptr_t)away + THP_SIZE - 1) &
				 ~(THP_SIZE - 1)) + page_size;
		ASSERT_EQ(mremap(thp, THP_SIZE, THP_SIZE,
				 MREMAP_MAYMOVE | MREMAP_FIXED, moved), moved);
		ASSERT_EQ(dmirror_cmd(fd, HMM_DMIRROR_MIGRATE_TO_DEV, moved,
				      mirror, npages, NULL), 0);
		EXPECT_EQ(pages_in_device(fd, moved, npages), npages);
		EXPECT_EQ(hmm_unpainted(mirror, THP_SIZE, seed + 1), -1);
		EXPECT_EQ(hmm_unpainted(moved, THP_SIZE, seed + 1), -1);
		EXPECT_EQ(munmap(away, 2 * THP_SIZE), 0);
	}
	munmap(mirror, THP_SIZE);
}

/*
 * The device-THP fixes mainline made after it merged device-private THPs
 * (6.18/6.19), which our core has in its own design. Each drives the
 * scenario of the problem, on a THP moved whole to device 0
 * (device-private): one device-private PMD with our driver; 512
 * device-private PTEs with 6.12's, where the same scenario must still
 * hold.
 */

/* A painted THP moved to device-private device @fd; NULL if no THP. */
static char *device_thp(int fd, char *mirror, unsigned int seed)
{
	char *thp = painted_thp(fd, seed);

	if (thp && dmirror_cmd(fd, HMM_DMIRROR_MIGRATE_TO_DEV, thp, mirror,
			       THP_SIZE / page_size, NULL)) {
		munmap(thp, THP_SIZE);
		return NULL;
	}
	return thp;
}

/* The snapshot bits of every page of @addr through @fd, ORed; -1 on error. */
static int snapshot_any(int fd, char *addr, unsigned long npages)
{
	uint8_t kinds[THP_SIZE / 4096];
	unsigned long n;
	int any = 0;

	if (npages > sizeof(kinds) ||
	    dmirror_cmd(fd, HMM_DMIRROR_SNAPSHOT, addr, kinds, npages, NULL))
		return -1;
	for (n = 0; n < npages; n++)
		any |= kinds[n];
	return any;
}

/*
 * "mm/huge_memory: use correct flags for device private PMD entry"
 * (CVE-2026-53155, 6.19).
 *
 * Migrating a device THP back made its PMD migration entry with the flags
 * of a present PMD read out of the device-private entry: the write bit
 * came from a swap bit (soft-dirty on x86). After fork, when both
 * processes map the THP read-only to share it copy-on-write, the entries
 * came back writable and a write in one process showed in the other. The
 * owner migrates the shared THP back; both mappings must stay read-only
 * and each process's writes its own.
 */
/* The parent's writes must not reach the child, nor the child's the parent. */
static int child_keeps_own_copy(void *thp)
{
	if (hmm_unpainted(thp, THP_SIZE, 40) != -1)
		return 1;
	hmm_paint(thp, THP_SIZE, 42);
	return hmm_unpainted(thp, THP_SIZE, 42) == -1 ? 0 : 2;
}

TEST_F(regression, device_thp_migration_keeps_cow_read_only)
{
	const unsigned long npages = THP_SIZE / page_size;
	char *mirror = anon_map(THP_SIZE, MAP_PRIVATE);
	char *thp = device_thp(self->fd[0], mirror, 40);
	struct parked child;
	int any;

	ASSERT_NE(thp, NULL) TH_LOG("no THP, or it did not move");
	ASSERT_EQ(park_child(&child, child_keeps_own_copy, thp), 0);
	ASSERT_EQ(dmirror_cmd(self->fd[0], HMM_DMIRROR_MIGRATE_TO_SYS, thp,
			      NULL, npages, NULL), 0);
	any = snapshot_any(self->fd[0], thp, npages);
	ASSERT_GE(any, 0);
	EXPECT_EQ(any & (HMM_DMIRROR_PROT_WRITE | KIND_MASK), 0)
		TH_LOG("after the migration: snapshot bits %#x", any);
	EXPECT_EQ(hmm_unpainted(thp, THP_SIZE, 40), -1);
	hmm_paint(thp, THP_SIZE, 41);
	EXPECT_EQ(release_child(&child), 0);
	EXPECT_EQ(hmm_unpainted(thp, THP_SIZE, 41), -1);
	munmap(thp, THP_SIZE);
	munmap(mirror, THP_SIZE);
}

/*
 * "mm/page_vma_mapped: fix device-private PMD handling" (CVE-2026-68163,
 * 6.19).
 *
 * page_vma_mapped_walk() returned a device-private PMD without checking it
 * mapped the folio being walked, handed it to migration walks too, and
 * missed a racing split. Migrating a device THP that a fork shares needs
 * the rmap walk to find it in the other process: afterwards the child's
 * mapping must be of system memory (present in pagemap), with the data.
 */
/* Before touching anything: where the parent's walk left the child. */
static int child_maps_system_memory(void *thp)
{
	unsigned long n;

	for (n = 0; n < THP_SIZE / page_size; n++) {
		uint64_t entry = hmm_pagemap((char *)thp + n * page_size);

		if (!(entry & PM_PRESENT) || (entry & PM_SWAP))
			return 1;
	}
	return hmm_unpainted(thp, THP_SIZE, 43) == -1 ? 0 : 2;
}

TEST_F(regression, device_thp_rmap_finds_other_mapping)
{
	const unsigned long npages = THP_SIZE / page_size;
	char *mirror = anon_map(THP_SIZE, MAP_PRIVATE);
	char *thp = device_thp(self->fd[0], mirror, 43);
	struct parked child;

	ASSERT_NE(thp, NULL) TH_LOG("no THP, or it did not move");
	ASSERT_EQ(park_child(&child, child_maps_system_memory, thp), 0);
	ASSERT_EQ(dmirror_cmd(self->fd[0], HMM_DMIRROR_MIGRATE_TO_SYS, thp,
			      NULL, npages, NULL), 0);
	EXPECT_EQ(release_child(&child), 0);
	EXPECT_EQ(hmm_unpainted(thp, THP_SIZE, 43), -1);
	munmap(thp, THP_SIZE);
	munmap(mirror, THP_SIZE);
}

/*
 * "fs/proc/task_mmu: do not warn on seeing non-migration pmd entry"
 * (CVE-2026-72173, 6.19).
 *
 * Reading /proc/pid/pagemap over a device-private PMD warned that a
 * non-present PMD was not a migration entry. The read must succeed
 * quietly (the harness fails the run on a warning) and report each page
 * as a swap-like entry, whole PMD or part of it.
 */
TEST_F(regression, device_thp_pagemap_reads_quietly)
{
	const unsigned long npages = THP_SIZE / page_size;
	char *mirror = anon_map(THP_SIZE, MAP_PRIVATE);
	char *thp = device_thp(self->fd[0], mirror, 44);
	uint64_t *entries = calloc(npages, sizeof(*entries));
	int fd = open("/proc/self/pagemap", O_RDONLY);
	unsigned long n;

	ASSERT_NE(thp, NULL) TH_LOG("no THP, or it did not move");
	ASSERT_NE(entries, NULL);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(pread(fd, entries, npages * sizeof(*entries),
			(uintptr_t)thp / page_size * sizeof(*entries)),
		  (ssize_t)(npages * sizeof(*entries)));
	for (n = 0; n < npages; n++)
		EXPECT_EQ(entries[n] & (PM_PRESENT | PM_SWAP), PM_SWAP);
	EXPECT_EQ(pread(fd, entries, sizeof(*entries),
			((uintptr_t)thp / page_size + 7) * sizeof(*entries)),
		  (ssize_t)sizeof(*entries));
	EXPECT_EQ(entries[0] & (PM_PRESENT | PM_SWAP), PM_SWAP);
	close(fd);
	free(entries);
	EXPECT_EQ(hmm_unpainted(thp, THP_SIZE, 44), -1);
	munmap(thp, THP_SIZE);
	munmap(mirror, THP_SIZE);
}

/*
 * "mm/huge_memory: preserve pmd_swp_uffd_wp on device-private PMD
 * downgrade" (CVE-2026-72180, 2026).
 *
 * mprotect() making a writable device-private PMD read-only rebuilt the
 * entry without its uffd-wp bit, so a userfaultfd write-protection of the
 * range was silently gone and a later write went through without the
 * monitor hearing of it. Protect the device THP, mprotect it read-only and
 * back: every page must keep its uffd-wp bit (pagemap).
 */
TEST_F(regression, device_thp_mprotect_keeps_uffd_wp)
{
	const unsigned long npages = THP_SIZE / page_size;
	char *mirror = anon_map(THP_SIZE, MAP_PRIVATE);
	char *thp = device_thp(self->fd[0], mirror, 45);
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = {
		.range = { (uintptr_t)thp, THP_SIZE },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};
	struct uffdio_writeprotect wp = {
		.range = reg.range, .mode = UFFDIO_WRITEPROTECT_MODE_WP,
	};
	int uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	unsigned long n;

	ASSERT_NE(thp, NULL) TH_LOG("no THP, or it did not move");
	ASSERT_GE(uffd, 0);
	ASSERT_EQ(ioctl(uffd, UFFDIO_API, &api), 0);
	ASSERT_EQ(ioctl(uffd, UFFDIO_REGISTER, &reg), 0);
	ASSERT_EQ(ioctl(uffd, UFFDIO_WRITEPROTECT, &wp), 0);
	ASSERT_EQ(mprotect(thp, THP_SIZE, PROT_READ), 0);
	ASSERT_EQ(mprotect(thp, THP_SIZE, PROT_READ | PROT_WRITE), 0);
	for (n = 0; n < npages; n++) {
		uint64_t entry = hmm_pagemap(thp + n * page_size);

		ASSERT_TRUE(entry & PM_UFFD_WP)
			TH_LOG("page %lu lost uffd-wp: %#llx", n,
			       (unsigned long long)entry);
	}
	wp.mode = 0;
	ASSERT_EQ(ioctl(uffd, UFFDIO_WRITEPROTECT, &wp), 0);
	EXPECT_EQ(hmm_unpainted(thp, THP_SIZE, 45), -1);
	close(uffd);
	munmap(thp, THP_SIZE);
	munmap(mirror, THP_SIZE);
}

struct advisor {
	char *thp;
	bool stop;		/* set by the test, read with __atomic */
	unsigned long rounds;
};

/*
 * Move @a->thp to device @fd and back ROUNDS times while @loop works on it
 * in another thread, then stop the thread; 0, or -1 if it could not run.
 */
static int bounce_device_thp(int fd, struct advisor *a, void *(*loop)(void *))
{
	const unsigned long npages = THP_SIZE / page_size;
	char *mirror = anon_map(THP_SIZE, MAP_PRIVATE);
	pthread_t thread;
	int round, ret = -1;

	if (!mirror)
		return -1;
	if (pthread_create(&thread, NULL, loop, a))
		goto out;
	for (round = 0; round < ROUNDS; round++) {
		dmirror_cmd(fd, HMM_DMIRROR_MIGRATE_TO_DEV, a->thp, mirror,
			    npages, NULL);
		dmirror_cmd(fd, HMM_DMIRROR_MIGRATE_TO_SYS, a->thp, NULL,
			    npages, NULL);
	}
	__atomic_store_n(&a->stop, true, __ATOMIC_RELEASE);
	ret = pthread_join(thread, NULL) ? -1 : 0;
out:
	munmap(mirror, THP_SIZE);
	return ret;
}

/* madvise() cold, pageout and free over the THP until told to stop. */
static void *advise_loop(void *arg)
{
	static const int advice[] = { MADV_COLD, MADV_PAGEOUT, MADV_FREE };
	struct advisor *a = arg;

	while (!__atomic_load_n(&a->stop, __ATOMIC_ACQUIRE))
		madvise(a->thp, THP_SIZE, advice[a->rounds++ % 3]);
	return NULL;
}

/*
 * The 2026 hardening of madvise around device-private PMDs (mainline
 * 7.1): MADV_COLD, MADV_PAGEOUT and MADV_FREE looked at a PMD without its
 * lock and asserted under the lock that a non-present PMD was a migration
 * entry, which a PMD that had just turned device-private was not. The
 * THP goes back and forth between system and device memory while
 * another thread keeps advising it; nothing may warn, and afterwards each
 * page holds its data or, where MADV_FREE let reclaim drop a clean page,
 * zeroes.
 */
TEST_F(regression, device_thp_madvise_races_migration)
{
	const unsigned long npages = THP_SIZE / page_size;
	struct advisor a = { .thp = painted_thp(self->fd[0], 46) };
	unsigned long n;

	ASSERT_NE(a.thp, NULL) TH_LOG("no PMD-mapped THP");
	ASSERT_EQ(bounce_device_thp(self->fd[0], &a, advise_loop), 0);
	for (n = 0; n < npages; n++) {
		const uint32_t *word = (const uint32_t *)(a.thp + n * page_size);
		unsigned long i, per_page = page_size / sizeof(*word);
		bool zero = true, painted = true;

		for (i = 0; i < per_page; i++) {
			zero &= !word[i];
			painted &= word[i] == hmm_word_of(46, n * per_page + i);
		}
		/* Zeroes: a clean page that MADV_FREE let reclaim drop. */
		EXPECT_TRUE(painted || zero)
			TH_LOG("page %lu (after %lu rounds of advice)", n,
			       a.rounds);
	}
	munmap(a.thp, THP_SIZE);
}

/*
 * mbind() to node 0 and node 1 in turn, moving what is there, and
 * move_pages() asking where the first page is, until told to stop.
 */
static void *policy_loop(void *arg)
{
	struct advisor *a = arg;
	void *first = a->thp;
	int status;

	while (!__atomic_load_n(&a->stop, __ATOMIC_ACQUIRE)) {
		unsigned long mask = 1UL << (a->rounds++ & 1);

		syscall(__NR_mbind, a->thp, THP_SIZE, MPOL_BIND, &mask,
			8 * sizeof(mask), MPOL_MF_MOVE | MPOL_MF_STRICT);
		syscall(__NR_move_pages, 0, 1, &first, NULL, &status, 0);
	}
	return NULL;
}

/*
 * The 2026 hardening of mempolicy around device-private PMDs (mainline
 * 7.1): the page walk of mbind() and migrate_pages() handed a non-present
 * PMD to queue_folios_pmd(), which took a device-private PMD for a
 * migration entry (asserting it was one) or read a folio out of it as if
 * it were present. The THP goes back and forth between system and device
 * memory while another thread binds it to one node and then the other,
 * with MPOL_MF_MOVE, and asks where it is; nothing may warn, and every
 * page keeps its data.
 */
TEST_F(regression, device_thp_mbind_races_migration)
{
	struct advisor a = { .thp = painted_thp(self->fd[0], 48) };

	ASSERT_NE(a.thp, NULL) TH_LOG("no PMD-mapped THP");
	ASSERT_EQ(bounce_device_thp(self->fd[0], &a, policy_loop), 0);
	EXPECT_EQ(hmm_unpainted(a.thp, THP_SIZE, 48), -1)
		TH_LOG("after %lu rounds of mbind()", a.rounds);
	munmap(a.thp, THP_SIZE);
}

/* AnonHugePages of /proc/meminfo, in kB; -1 if unreadable. */
static long anon_huge_kb(void)
{
	char line[128];
	long kb = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

#define THP_STATS \
	"/sys/kernel/mm/transparent_hugepage/hugepages-2048kB/stats/nr_anon"
#define KHUGEPAGED_SLEEP \
	"/sys/kernel/mm/transparent_hugepage/khugepaged/scan_sleep_millisecs"

/*
 * The anonymous THP counters around device-private PMDs (the 2026
 * hardening of the anon THP counters, mainline 7.1): a 2 MiB anonymous
 * folio counts in nr_anon of hugepages-2048kB and, mapped by a PMD, in
 * AnonHugePages, on whichever side of the device it is. Moving it to the
 * device and back, freeing it there, and cutting it there and bringing the
 * rest back page by page must each leave both counters where they were.
 * (khugepaged is held off meanwhile: its collapses would count too.)
 */
TEST_F(regression, device_thp_anon_counters_balance)
{
	const unsigned long npages = THP_SIZE / page_size;
	char *mirror = anon_map(THP_SIZE, MAP_PRIVATE);
	long sleep_ms = hmm_read_long(KHUGEPAGED_SLEEP), nr_anon, kb;
	char restore[32];
	int round;

	ASSERT_NE(mirror, NULL);
	memset(mirror, 0, THP_SIZE);	/* its own THP, if any, first */
	ASSERT_GE(sleep_ms, 0);
	ASSERT_EQ(hmm_write_file(KHUGEPAGED_SLEEP, "600000"), 0);
	nr_anon = hmm_read_long(THP_STATS);
	kb = anon_huge_kb();
	ASSERT_GE(nr_anon, 0);
	ASSERT_GE(kb, 0);
	for (round = 0; round < 3; round++) {
		char *thp = device_thp(self->fd[0], mirror, 47 + round);
		unsigned long n;

		ASSERT_NE(thp, NULL) TH_LOG("no THP, or it did not move");
		if (round == 0)		/* there and back */
			EXPECT_EQ(dmirror_cmd(self->fd[0],
					      HMM_DMIRROR_MIGRATE_TO_SYS, thp,
					      NULL, npages, NULL), 0);
		if (round == 2) {	/* cut, the rest read back */
			EXPECT_EQ(munmap(thp + 64 * page_size,
					 64 * page_size), 0);
			for (n = 0; n < npages; n++) {
				const uint32_t *w = (void *)(thp + n * page_size);

				if (n >= 64 && n < 128)
					continue;
				EXPECT_EQ(*w, hmm_word_of(47 + round,
							  n * page_size / 4));
			}
		}
		EXPECT_EQ(munmap(thp, THP_SIZE), 0);
		EXPECT_EQ(hmm_read_long(THP_STATS), nr_anon) TH_LOG("round %d", round);
		EXPECT_EQ(anon_huge_kb(), kb) TH_LOG("round %d", round);
	}
	snprintf(restore, sizeof(restore), "%ld", sleep_ms);
	hmm_write_file(KHUGEPAGED_SLEEP, restore);
	munmap(mirror, THP_SIZE);
}

/*
 * HMM_REGRESSIONS_EXCLUDE="a,b" (commas or spaces): leave the tests named
 * a and b out of the run (the harness's -T). The guest harness sets it on
 * flavour upstream for the tests of problems pristine 6.12.118 still has:
 * one whose failure wedges the guest (a page that can never be freed
 * stops the driver's unload), one that fails.
 */
int main(int argc, char **argv)
{
	const char *list = getenv("HMM_REGRESSIONS_EXCLUDE");
	char **args = calloc(argc + 64, sizeof(*args));
	char *names, *name;
	int n;

	if (!args)
		return KSFT_FAIL;
	for (n = 0; n < argc; n++)
		args[n] = argv[n];
	names = strdup(list ? list : "");
	for (name = strtok(names, " ,"); name && n < argc + 62;
	     name = strtok(NULL, " ,")) {
		args[n++] = "-T";
		args[n++] = name;
	}
	return test_harness_run(n, args);
}
