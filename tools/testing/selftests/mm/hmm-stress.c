// SPDX-License-Identifier: GPL-2.0
/*
 * hmm-stress: several threads drive every device of test_hmm at once
 * (/dev/hmm_dmirror0..3) while the same threads change the address space
 * under them, and every byte is checked against what it must hold.
 *
 * The address space is an arena of ranges, 2 MiB each (one PMD), each
 * with a parking place after it for mremap. A range is mapped as one
 * kind of memory: 4 KiB anonymous pages, THP, a shared memfd (tmpfs) or
 * a private mapping of a tmpfs file (whose pages become anonymous copies
 * when written). Most ranges are "owned": a mutex serialises the steps on
 * one range, and a shadow says what every page of it holds and how it is
 * mapped. Every page is filled with a pattern derived from a 32-bit tag
 * (tag 0: zeroes), and each write uses new tags, so a stale copy, a lost
 * write or a page at the wrong address shows up as a mismatch. What the
 * shadow expects after each step:
 *
 *   device or CPU write   the new tags (a device write that fails may
 *                         have written some pages: each holds old or new);
 *   madvise(DONTNEED)     anonymous: zeroes; shared file: unchanged;
 *                         private file: the file's tags again;
 *   mremap shrink, regrow the tail as after DONTNEED;
 *   munmap, mprotect      pages not readable are not checked until they
 *                         are again, and then hold what they held;
 *   fork                  the child sees the parent's data and writes
 *                         some pages: only a shared file sees that;
 *   everything else       (migrations both ways, the one-walk device
 *                         fault that migrates, device reads, snapshots,
 *                         exclusive access, RELEASE, mremap away and
 *                         back) leaves the data as it was.
 *
 * A THP range moved whole to a device-private device becomes one 2 MiB
 * device page (a device THP, one device-private PMD); the partial steps
 * that follow cut device THPs up. With HMM_STRESS_FAIL_ALLOC=1 one such
 * move in four has that allocation made to fail (HMM_DMIRROR_FLAGS), and
 * the THP goes page by page, split unmapped (make check and make stress
 * set it). The report counts both, and the splits and frees of 2 MiB
 * device folios the driver was told of.
 *
 * After each step the window it touched is checked, through the device
 * that did the step when it did one (so that data can stay in device
 * memory), else through the CPU; now and then the whole range. Errors
 * must be ones the uapi header documents, and the header's rules are
 * held: a range with a hole fails, a readable one can be read.
 *
 * Two "wild" ranges have no shadow and no lock: every thread runs any
 * command and any mm operation on them at any time, so that commands race
 * with munmap, mprotect, mremap and fork of the very pages they work on.
 * There only the errnos are checked (and that nothing crashes).
 *
 * The run is cut into rounds. Between rounds the threads stop, some data
 * is moved into each device's memory, the files are closed and test_hmm
 * is unloaded and loaded again; then every owned range must hold what its
 * shadow says and no page may be left in device memory.
 *
 * HMM_STRESS_SEED=<n> replays a run's choices (each thread draws from its
 * own generator; the interleaving is the scheduler's), HMM_STRESS_SECONDS
 * sets its length (default 25), HMM_STRESS_THREADS the number of threads
 * (default 4), HMM_STRESS_ROUND the length of a round in seconds, and
 * HMM_STRESS_SKIP="exclusive,fork" leaves the operations named (as in the
 * figures at the end) out, to narrow a failure down. HMM_STRESS_FOCUS=thp
 * aims the run at THPs split while unmapped: every owned range is a THP
 * (and mapped again as one), half the steps take a whole range, half the
 * whole-range moves to a private device have their 2 MiB allocation fail
 * (the forked child's too), so the core splits a THP whose mappings, in
 * the parent and in children, are migration entries at the time. A minute without
 * progress is a hang: the watchdog prints what every thread was doing,
 * asks the kernel for its blocked tasks and CPUs (sysrq w, l) and fails.
 */
#include "../kselftest_harness.h"
#include "hmm-common.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lib/test_hmm_uapi.h>

#define PAGE		4096UL
#define WORDS		(PAGE / sizeof(uint64_t))
#define RANGE_PAGES	512UL			/* 2 MiB, one PMD */
#define RANGE_SIZE	(RANGE_PAGES * PAGE)
#define SLOT_SIZE	(2 * RANGE_SIZE)	/* the range, then parking */
#define NR_OWNED	8
#define NR_WILD		2
#define NR_RANGES	(NR_OWNED + NR_WILD)
#define MAX_THREADS	16
#define NDEVICES	4
#define WINDOW		64UL
#define MODULE_PATH	"/lib/modules/test_hmm.ko"

enum kind { K_NONE, K_ANON, K_THP, K_SHMEM, K_FILE, K_COUNT };

static const char *const kind_name[K_COUNT] = {
	"unmapped", "anon", "thp", "shmem", "file-private",
};

/* How one page of a range is mapped. */
enum access { A_HOLE, A_NONE, A_RO, A_RW };

enum op {
	OP_READ, OP_WRITE, OP_TO_PRIVATE, OP_TO_COHERENT, OP_TO_SYS,
	OP_ON_FAULT, OP_SNAPSHOT, OP_EXCLUSIVE, OP_CHECK_EXCL, OP_RELEASE,
	OP_CPU_READ,
	OP_CPU_WRITE, OP_MMAP, OP_MUNMAP, OP_MPROTECT, OP_DONTNEED,
	OP_MREMAP_MOVE, OP_MREMAP_SHRINK, OP_FORK, OP_COUNT
};

static const char *const op_name[OP_COUNT] = {
	"dev-read", "dev-write", "migrate-private", "migrate-coherent",
	"migrate-system", "fault-migrate", "snapshot", "exclusive",
	"check-exclusive",
	"release", "cpu-read", "cpu-write", "mmap", "munmap", "mprotect",
	"dontneed", "mremap-move", "mremap-shrink", "fork",
};

/* How often each operation is drawn, out of the sum. */
static const unsigned int op_weight[OP_COUNT] = {
	[OP_READ] = 10, [OP_WRITE] = 10, [OP_TO_PRIVATE] = 10,
	[OP_TO_COHERENT] = 8, [OP_TO_SYS] = 6, [OP_ON_FAULT] = 8,
	[OP_SNAPSHOT] = 4,
	[OP_EXCLUSIVE] = 5, [OP_CHECK_EXCL] = 2, [OP_RELEASE] = 1,
	[OP_CPU_READ] = 6, [OP_CPU_WRITE] = 6, [OP_MMAP] = 2,
	[OP_MUNMAP] = 1, [OP_MPROTECT] = 4, [OP_DONTNEED] = 4,
	[OP_MREMAP_MOVE] = 2, [OP_MREMAP_SHRINK] = 2, [OP_FORK] = 2,
};

struct range {
	pthread_mutex_t lock;		/* owned ranges: one step at a time */
	char *addr;
	enum kind kind;
	uint32_t tag[RANGE_PAGES];	/* what each page holds */
	uint32_t file_tag[RANGE_PAGES];	/* K_FILE: what the file holds */
	unsigned char access[RANGE_PAGES];
};

/* What a forked child found, in memory it shares with its parent. */
struct child_report {
	long page;			/* -1: all good */
	uint32_t want, found;
};

struct worker {
	int id;
	pthread_t thread;
	struct hmm_rng rng;
	uint32_t next_tag;
	int fd[NDEVICES];
	int sink;			/* a memfd for wild CPU touches */
	char *buf;			/* RANGE_SIZE of command data */
	uint32_t *tags;			/* RANGE_PAGES new tags */
	struct child_report *report;
	unsigned long ops[OP_COUNT], refused[OP_COUNT];
	unsigned long verified, wild_steps;
	/*
	 * Whole-range migrations to a private device: as one 2 MiB page,
	 * and with its allocation made to fail (page by page).
	 */
	unsigned long compound, fallbacks;
	struct hmm_history history;
};

static struct {
	char *arena;
	struct range range[NR_RANGES];
	struct worker worker[MAX_THREADS];
	int nthreads, ndevices;
	uint64_t seed;
	bool stop;			/* these three: __atomic_*() only */
	bool failed;
	unsigned long progress;
	unsigned long mismatches, violations, unloads, device_pages;
	/* The device's folio counters, added up before each unload. */
	long folio_splits, huge_freed;
	bool fail_alloc;		/* HMM_STRESS_FAIL_ALLOC */
	bool focus_thp;			/* HMM_STRESS_FOCUS=thp */
	long thp_splits;		/* /proc/vmstat thp_split_page, start */
	struct hmm_events events;	/* the core's events, start */
	unsigned long main_verified;
	pthread_mutex_t report_lock;
} st = { .report_lock = PTHREAD_MUTEX_INITIALIZER };

static bool stopped(void)
{
	return __atomic_load_n(&st.stop, __ATOMIC_RELAXED);
}

static bool failed(void)
{
	return __atomic_load_n(&st.failed, __ATOMIC_RELAXED);
}

static uint32_t new_tag(struct worker *w)
{
	w->next_tag = (w->next_tag + 1) & 0x07ffffff;
	return ((uint32_t)(w->id + 1) << 27) | w->next_tag;
}

static void dump_history(struct worker *w)
{
	char who[16];

	snprintf(who, sizeof(who), "thread %d", w->id);
	hmm_history_dump(&w->history, who);
}

/* A broken rule: say what and where, with the steps that led to it. */
static void fail(struct worker *w, bool mismatch, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&st.report_lock);
	if (mismatch)
		st.mismatches++;
	else
		st.violations++;
	fprintf(stderr, "# %s: ", mismatch ? "MISMATCH" : "VIOLATION");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (HMM_STRESS_SEED=%llu)\n",
		(unsigned long long)st.seed);
	if (w)
		dump_history(w);
	__atomic_store_n(&st.failed, true, __ATOMIC_RELAXED);
	__atomic_store_n(&st.stop, true, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&st.report_lock);
}

static uint64_t pattern(uint32_t tag, unsigned long i)
{
	return tag ? (uint64_t)tag << 32 | (uint32_t)(i * 2654435761U ^ tag) : 0;
}

static void fill_page(char *page, uint32_t tag)
{
	uint64_t *word = (uint64_t *)page;
	unsigned long i;

	for (i = 0; i < WORDS; i++)
		word[i] = pattern(tag, i);
}

/* The first word of @page that is not @tag's pattern, or -1. */
static long bad_word(const char *page, uint32_t tag)
{
	const uint64_t *word = (const uint64_t *)page;
	unsigned long i;

	for (i = 0; i < WORDS; i++)
		if (word[i] != pattern(tag, i))
			return (long)i;
	return -1;
}

static int range_index(struct range *r)
{
	return (int)(r - st.range);
}

static bool readable(struct range *r, unsigned long p)
{
	return r->access[p] >= A_RO;
}

static bool writable(struct range *r, unsigned long p)
{
	return r->access[p] == A_RW;
}

static bool all_pages(struct range *r, unsigned long first, unsigned long n,
		      bool (*test)(struct range *r, unsigned long p))
{
	unsigned long p;

	for (p = first; p < first + n; p++)
		if (!test(r, p))
			return false;
	return true;
}

static bool is_hole(struct range *r, unsigned long p)
{
	return r->access[p] == A_HOLE;
}

static bool any_hole(struct range *r, unsigned long first, unsigned long n)
{
	unsigned long p;

	for (p = first; p < first + n; p++)
		if (is_hole(r, p))
			return true;
	return false;
}

/* Compare one page's bytes (seen by @how) with the shadow. */
static bool check_page(struct worker *w, struct range *r, unsigned long p,
		       const char *data, const char *how)
{
	long bad = bad_word(data, r->tag[p]);

	w->verified++;
	if (bad < 0)
		return true;
	fail(w, true,
	     "range %d (%s) page %lu seen by %s: word %ld is %#llx, expected %#llx (tag %#x)",
	     range_index(r), kind_name[r->kind], p, how, bad,
	     (unsigned long long)((const uint64_t *)data)[bad],
	     (unsigned long long)pattern(r->tag[p], (unsigned long)bad),
	     r->tag[p]);
	return false;
}

/* The readable pages of a window, through the CPU. */
static bool check_cpu(struct worker *w, struct range *r, unsigned long first,
		      unsigned long n)
{
	unsigned long p;

	for (p = first; p < first + n; p++)
		if (readable(r, p) &&
		    !check_page(w, r, p, r->addr + p * PAGE, "the CPU"))
			return false;
	return true;
}

/* Pages of a window a command copied into the worker's buffer. */
static bool check_buf(struct worker *w, struct range *r, unsigned long first,
		      unsigned long n, const char *how)
{
	unsigned long p;

	for (p = 0; p < n; p++)
		if (!check_page(w, r, first + p, w->buf + p * PAGE, how))
			return false;
	return true;
}

/* ---- Device commands ---- */

static int dev_cmd(struct worker *w, int dev, unsigned long request,
		   char *addr, unsigned long npages)
{
	return hmm_dmirror(w->fd[dev], request, addr, w->buf, npages);
}

/* Count a command's outcome; false (and a failure) if undocumented. */
static bool outcome(struct worker *w, enum op which, unsigned long request,
		    int err, int dev, struct range *r)
{
	w->ops[which]++;
	if (!err)
		return true;
	w->refused[which]++;
	if (hmm_dmirror_errno_documented(request, err))
		return true;
	fail(w, false, "%s on device %d, range %d (%s): undocumented %s",
	     op_name[which], dev, range_index(r), kind_name[r->kind],
	     strerror(err));
	return false;
}

/* A step on an owned range: window [first, first + n), device dev. */
struct step {
	struct worker *w;
	struct range *r;
	enum op op;
	int dev;
	unsigned long first, n;
	char *addr;		/* of the window */
};

static bool must_fail(struct step *s, int err, const char *why)
{
	if (err)
		return true;
	fail(s->w, false, "%s on device %d, range %d (%s) pages %lu+%lu succeeded, but %s",
	     op_name[s->op], s->dev, range_index(s->r), kind_name[s->r->kind],
	     s->first, s->n, why);
	return false;
}

static bool must_not(struct step *s, int err, int bad, const char *why)
{
	if (err != bad)
		return true;
	fail(s->w, false, "%s on device %d, range %d (%s) pages %lu+%lu failed with %s, but %s",
	     op_name[s->op], s->dev, range_index(s->r), kind_name[s->r->kind],
	     s->first, s->n, strerror(err), why);
	return false;
}

static bool step_read(struct step *s)
{
	int err = dev_cmd(s->w, s->dev, HMM_DMIRROR_READ, s->addr, s->n);

	if (!outcome(s->w, s->op, HMM_DMIRROR_READ, err, s->dev, s->r))
		return false;
	if (!all_pages(s->r, s->first, s->n, readable))
		return must_fail(s, err, "part of the window is not readable");
	if (!must_not(s, err, EFAULT, "the window is readable"))
		return false;
	return err || check_buf(s->w, s->r, s->first, s->n, "a device read");
}

/*
 * A device write that failed part-way: each writable page holds its old
 * data or the new; the shadow follows what is there.
 */
static bool settle_write(struct step *s)
{
	struct range *r = s->r;
	unsigned long p;

	for (p = s->first; p < s->first + s->n; p++) {
		uint32_t fresh = s->w->tags[p - s->first];

		if (!writable(r, p))
			continue;
		if (bad_word(r->addr + p * PAGE, fresh) < 0)
			r->tag[p] = fresh;
		else if (!check_page(s->w, r, p, r->addr + p * PAGE,
				     "the CPU after a failed device write"))
			return false;
	}
	return true;
}

static bool step_write(struct step *s)
{
	unsigned long p;
	int err;

	for (p = 0; p < s->n; p++) {
		s->w->tags[p] = new_tag(s->w);
		fill_page(s->w->buf + p * PAGE, s->w->tags[p]);
	}
	err = dev_cmd(s->w, s->dev, HMM_DMIRROR_WRITE, s->addr, s->n);
	if (!outcome(s->w, s->op, HMM_DMIRROR_WRITE, err, s->dev, s->r))
		return false;
	if (!all_pages(s->r, s->first, s->n, writable)) {
		if (!must_fail(s, err, "part of the window is not writable"))
			return false;
	} else if (!must_not(s, err, EPERM, "the window is writable") ||
		   !must_not(s, err, EFAULT, "the window is writable")) {
		return false;
	}
	if (err)
		return settle_write(s);
	for (p = 0; p < s->n; p++)
		s->r->tag[s->first + p] = s->w->tags[p];
	return true;
}

/* A whole range to a private device: one 2 MiB page, or 512 on request. */
static bool whole_to_private(struct step *s)
{
	return s->dev < 2 && !s->first && s->n == RANGE_PAGES;
}

/*
 * Make the next 2 MiB allocation of the device behind @fd fail, so that a
 * THP moves page by page (the core splits it): one whole-range move to a
 * private device in four, one in two with HMM_STRESS_FOCUS=thp. Returns
 * whether it asked.
 */
static bool maybe_fail_alloc(struct hmm_rng *rng, int fd)
{
	struct hmm_dmirror_cmd flags = { .npages = HMM_DMIRROR_FLAG_FAIL_ALLOC };

	if (!st.fail_alloc || hmm_rng_below(rng, st.focus_thp ? 2 : 4))
		return false;
	return !hmm_dmirror_ioctl(fd, HMM_DMIRROR_FLAGS, &flags);
}

static bool step_migrate(struct step *s)
{
	bool fail_alloc = whole_to_private(s) &&
			  maybe_fail_alloc(&s->w->rng, s->w->fd[s->dev]);
	unsigned char code = 0;
	int err;

	err = dev_cmd(s->w, s->dev, HMM_DMIRROR_MIGRATE_TO_DEV, s->addr, s->n);
	if (!err && whole_to_private(s) &&
	    !hmm_dmirror(s->w->fd[s->dev], HMM_DMIRROR_SNAPSHOT, s->addr,
			 &code, 1))
		s->w->compound += !!(code & HMM_DMIRROR_PROT_PMD);
	s->w->fallbacks += fail_alloc;

	if (!outcome(s->w, s->op, HMM_DMIRROR_MIGRATE_TO_DEV, err, s->dev,
		     s->r))
		return false;
	if (!all_pages(s->r, s->first, s->n, readable)) {
		if (!must_fail(s, err, "part of the window is not readable"))
			return false;
		return must_not(s, err, ENOENT, "the range check comes first") &&
		       must_not(s, err, ENOMEM, "the range check comes first");
	}
	if (!must_not(s, err, EINVAL, "the window is readable"))
		return false;
	return err || check_buf(s->w, s->r, s->first, s->n, "a migration");
}

/*
 * The one-walk device fault (MIGRATE_ON_FAULT_TO_DEV): what can move into
 * the device does, the rest is mapped where it is, and the device reads
 * the window either way.
 */
static bool step_on_fault(struct step *s)
{
	int err = dev_cmd(s->w, s->dev, HMM_DMIRROR_MIGRATE_ON_FAULT_TO_DEV,
			  s->addr, s->n);

	if (!outcome(s->w, s->op, HMM_DMIRROR_MIGRATE_ON_FAULT_TO_DEV, err,
		     s->dev, s->r))
		return false;
	if (!all_pages(s->r, s->first, s->n, readable))
		return must_fail(s, err, "part of the window is not readable");
	if (!must_not(s, err, EINVAL, "the window is readable"))
		return false;
	return err || check_buf(s->w, s->r, s->first, s->n,
				"a device fault that migrates");
}

static bool step_to_sys(struct step *s)
{
	int err = dev_cmd(s->w, s->dev, HMM_DMIRROR_MIGRATE_TO_SYS, s->addr,
			  s->n);

	if (!outcome(s->w, s->op, HMM_DMIRROR_MIGRATE_TO_SYS, err, s->dev,
		     s->r))
		return false;
	if (!all_pages(s->r, s->first, s->n, readable))
		return must_fail(s, err, "part of the window is not readable");
	return must_not(s, err, EINVAL, "the window is readable");
}

static bool step_snapshot(struct step *s)
{
	unsigned char *code = (unsigned char *)s->w->buf;
	unsigned long p;
	int err = dev_cmd(s->w, s->dev, HMM_DMIRROR_SNAPSHOT, s->addr, s->n);

	if (!outcome(s->w, s->op, HMM_DMIRROR_SNAPSHOT, err, s->dev, s->r))
		return false;
	for (p = 0; !err && p < s->n; p++) {
		struct range *r = s->r;
		bool error = code[p] == HMM_DMIRROR_PROT_ERROR;
		bool ok = readable(r, s->first + p) ? !error : error;

		if (r->access[s->first + p] == A_RO && !error &&
		    (code[p] & HMM_DMIRROR_PROT_WRITE))
			ok = false;
		if (!ok) {
			fail(s->w, false,
			     "snapshot of range %d (%s) page %lu is %#x, but the page is %s",
			     range_index(r), kind_name[r->kind], s->first + p,
			     code[p], r->access[s->first + p] == A_RO ?
			     "read-only" : readable(r, s->first + p) ?
			     "readable" : "not readable");
			return false;
		}
	}
	return true;
}

static bool step_exclusive(struct step *s)
{
	int err = dev_cmd(s->w, s->dev, HMM_DMIRROR_EXCLUSIVE, s->addr, s->n);
	struct range *r = s->r;

	if (!outcome(s->w, s->op, HMM_DMIRROR_EXCLUSIVE, err, s->dev, r))
		return false;
	if (!all_pages(r, s->first, s->n, writable))
		return must_fail(s, err, "part of the window is not writable");
	if (r->kind == K_SHMEM)
		return must_fail(s, err, "the mapping is shared");
	return err || check_buf(s->w, r, s->first, s->n, "exclusive access");
}

static bool step_check_exclusive(struct step *s)
{
	int err = dev_cmd(s->w, s->dev, HMM_DMIRROR_CHECK_EXCLUSIVE, s->addr,
			  s->n);

	return outcome(s->w, s->op, HMM_DMIRROR_CHECK_EXCLUSIVE, err, s->dev,
		       s->r);
}

static bool step_release(struct step *s)
{
	int err = dev_cmd(s->w, s->dev, HMM_DMIRROR_RELEASE, s->addr, s->n);

	return outcome(s->w, s->op, HMM_DMIRROR_RELEASE, err, s->dev, s->r);
}

/* ---- CPU and mm operations on an owned range ---- */

static bool step_cpu_read(struct step *s)
{
	s->w->ops[s->op]++;
	return check_cpu(s->w, s->r, s->first, s->n);
}

static bool step_cpu_write(struct step *s)
{
	unsigned long p;

	s->w->ops[s->op]++;
	for (p = s->first; p < s->first + s->n; p++) {
		if (!writable(s->r, p))
			continue;
		s->r->tag[p] = new_tag(s->w);
		fill_page(s->r->addr + p * PAGE, s->r->tag[p]);
	}
	return true;
}

/* A file on tmpfs holding @tags, for the file kinds. */
static int make_file(struct worker *w, enum kind backing, const uint32_t *tags)
{
	unsigned long p;
	int fd;

	if (backing == K_SHMEM) {
		fd = memfd_create("hmm-stress", 0);
	} else {
		char path[64];

		snprintf(path, sizeof(path), "/tmp/hmm-stress-%d", w->id);
		fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
		unlink(path);
	}
	if (fd < 0)
		return -1;
	for (p = 0; p < RANGE_PAGES; p++)
		fill_page(w->buf + p * PAGE, tags[p]);
	if (pwrite(fd, w->buf, RANGE_SIZE, 0) != (ssize_t)RANGE_SIZE) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Map range @r afresh as @kind, full of new data, readable and writable. */
static bool map_range(struct worker *w, struct range *r, enum kind kind)
{
	int flags = MAP_FIXED, fd = -1;
	unsigned long p;
	void *got;

	for (p = 0; p < RANGE_PAGES; p++)
		w->tags[p] = new_tag(w);
	if (kind == K_SHMEM || kind == K_FILE) {
		fd = make_file(w, kind, w->tags);
		if (fd < 0) {
			fail(w, false, "no tmpfs file for range %d: %s",
			     range_index(r), strerror(errno));
			return false;
		}
		flags |= kind == K_SHMEM ? MAP_SHARED : MAP_PRIVATE;
	} else {
		flags |= MAP_PRIVATE | MAP_ANONYMOUS;
	}
	got = mmap(r->addr, RANGE_SIZE, PROT_READ | PROT_WRITE, flags, fd, 0);
	if (fd >= 0)
		close(fd);
	if (got != r->addr) {
		fail(w, false, "mmap of range %d as %s: %s", range_index(r),
		     kind_name[kind], strerror(errno));
		return false;
	}
	if (kind == K_THP || kind == K_ANON)
		madvise(r->addr, RANGE_SIZE,
			kind == K_THP ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	r->kind = kind;
	for (p = 0; p < RANGE_PAGES; p++) {
		r->tag[p] = w->tags[p];
		r->file_tag[p] = w->tags[p];
		r->access[p] = A_RW;
		if (kind == K_ANON || kind == K_THP)
			fill_page(r->addr + p * PAGE, r->tag[p]);
	}
	return true;
}

/* A kind of memory for an owned range: any, or THP under focus. */
static enum kind draw_kind(struct worker *w)
{
	if (st.focus_thp)
		return K_THP;
	return (enum kind)(1 + hmm_rng_below(&w->rng, K_COUNT - 1));
}

static bool step_mmap(struct step *s)
{
	enum kind kind = draw_kind(s->w);

	s->w->ops[s->op]++;
	hmm_note(&s->w->history, "  mmap range %d as %s", range_index(s->r), kind_name[kind]);
	if (hmm_rng_below(&s->w->rng, 2))
		munmap(s->r->addr, RANGE_SIZE);
	return map_range(s->w, s->r, kind);
}

static bool step_munmap(struct step *s)
{
	unsigned long p;

	s->w->ops[s->op]++;
	if (munmap(s->addr, s->n * PAGE)) {
		fail(s->w, false, "munmap: %s", strerror(errno));
		return false;
	}
	for (p = s->first; p < s->first + s->n; p++)
		s->r->access[p] = A_HOLE;
	if (all_pages(s->r, 0, RANGE_PAGES, is_hole))
		s->r->kind = K_NONE;
	return true;
}

static bool step_mprotect(struct step *s)
{
	static const int prot[] = {
		[A_NONE] = PROT_NONE, [A_RO] = PROT_READ,
		[A_RW] = PROT_READ | PROT_WRITE,
	};
	enum access access = (enum access)(A_NONE + hmm_rng_below(&s->w->rng, 3));
	unsigned long p;

	/* mprotect() over a hole may change part of the window: not here. */
	if (any_hole(s->r, s->first, s->n))
		return true;
	s->w->ops[s->op]++;
	if (mprotect(s->addr, s->n * PAGE, prot[access])) {
		fail(s->w, false, "mprotect of range %d pages %lu+%lu: %s",
		     range_index(s->r), s->first, s->n, strerror(errno));
		return false;
	}
	for (p = s->first; p < s->first + s->n; p++)
		s->r->access[p] = access;
	return true;
}

/* What a page holds once its mapping forgot it (DONTNEED, mremap). */
static uint32_t forgotten(struct range *r, unsigned long p)
{
	switch (r->kind) {
	case K_SHMEM:
		return r->tag[p];	/* the file has it */
	case K_FILE:
		return r->file_tag[p];	/* the private copy is gone */
	default:
		return 0;		/* anonymous: a zero page */
	}
}

static bool step_dontneed(struct step *s)
{
	unsigned long p;

	s->w->ops[s->op]++;
	/* Over holes madvise() fails with ENOMEM but zaps what is mapped. */
	if (madvise(s->addr, s->n * PAGE, MADV_DONTNEED) && errno != ENOMEM) {
		fail(s->w, false, "madvise(DONTNEED) of range %d: %s",
		     range_index(s->r), strerror(errno));
		return false;
	}
	for (p = s->first; p < s->first + s->n; p++)
		if (!is_hole(s->r, p))
			s->r->tag[p] = forgotten(s->r, p);
	return true;
}

/* Is the range one mapping (no hole, one protection), as mremap needs? */
static bool one_mapping(struct range *r)
{
	unsigned long p;

	for (p = 0; p < RANGE_PAGES; p++)
		if (is_hole(r, p) || r->access[p] != r->access[0])
			return false;
	return true;
}

static bool step_mremap_move(struct step *s)
{
	char *parking = s->r->addr + RANGE_SIZE;

	if (!one_mapping(s->r))
		return true;
	s->w->ops[s->op]++;
	if (mremap(s->r->addr, RANGE_SIZE, RANGE_SIZE,
		   MREMAP_MAYMOVE | MREMAP_FIXED, parking) == MAP_FAILED) {
		/* Two VMAs that did not merge: nothing moved. */
		s->w->refused[s->op]++;
		return true;
	}
	if (mremap(parking, RANGE_SIZE, RANGE_SIZE,
		   MREMAP_MAYMOVE | MREMAP_FIXED, s->r->addr) == MAP_FAILED) {
		fail(s->w, false, "mremap of range %d back from parking: %s",
		     range_index(s->r), strerror(errno));
		return false;
	}
	return true;
}

static bool step_mremap_shrink(struct step *s)
{
	struct range *r = s->r;
	unsigned long keep = 1 + hmm_rng_below(&s->w->rng, RANGE_PAGES - 1), p;
	enum access access = r->access[0];

	if (!one_mapping(r))
		return true;
	s->w->ops[s->op]++;
	hmm_note(&s->w->history, "  mremap range %d down to %lu pages and back", range_index(r),
		 keep);
	if (mremap(r->addr, RANGE_SIZE, keep * PAGE, 0) == MAP_FAILED) {
		fail(s->w, false, "mremap shrink of range %d: %s",
		     range_index(r), strerror(errno));
		return false;
	}
	if (mremap(r->addr, keep * PAGE, RANGE_SIZE, 0) == MAP_FAILED) {
		s->w->refused[s->op]++;
		for (p = keep; p < RANGE_PAGES; p++)
			r->access[p] = A_HOLE;
		return true;
	}
	for (p = keep; p < RANGE_PAGES; p++) {
		r->tag[p] = forgotten(r, p);
		r->access[p] = access;
	}
	return true;
}

/*
 * The forked child: the parent's data must be there; it migrates some of
 * its own copy into a device of its own, writes the window (new tags the
 * parent chose) and checks again. Only async-signal-safe calls here.
 */
static void child_run(struct step *s, bool write)
{
	struct range *r = s->r;
	struct child_report *rep = s->w->report;
	char path[32] = "/dev/hmm_dmirror0";
	unsigned long p;
	long bad;
	int fd;

	for (p = 0; p < RANGE_PAGES; p++) {
		if (!readable(r, p))
			continue;
		bad = bad_word(r->addr + p * PAGE, r->tag[p]);
		if (bad >= 0) {
			rep->page = (long)p;
			rep->want = r->tag[p];
			rep->found = (uint32_t)(((uint64_t *)(r->addr + p * PAGE))[bad] >> 32);
			_exit(1);
		}
	}
	path[16] = (char)('0' + s->dev);
	fd = open(path, O_RDWR);
	if (fd >= 0) {
		int err;

		if (whole_to_private(s))
			maybe_fail_alloc(&s->w->rng, fd);
		err = hmm_dmirror(fd, HMM_DMIRROR_MIGRATE_TO_DEV, s->addr,
				  s->w->buf, s->n);

		if (err && !hmm_dmirror_errno_documented(HMM_DMIRROR_MIGRATE_TO_DEV,
							 err))
			_exit(2);
	}
	for (p = s->first; write && p < s->first + s->n; p++) {
		r->tag[p] = s->w->tags[p - s->first];
		fill_page(r->addr + p * PAGE, r->tag[p]);
	}
	for (p = s->first; p < s->first + s->n; p++) {
		if (readable(r, p) && bad_word(r->addr + p * PAGE, r->tag[p]) >= 0) {
			rep->page = (long)p;
			rep->want = r->tag[p];
			_exit(1);
		}
	}
	if (fd >= 0)
		close(fd);
	_exit(0);
}

static bool step_fork(struct step *s)
{
	struct worker *w = s->w;
	struct range *r = s->r;
	bool write = all_pages(r, s->first, s->n, writable);
	unsigned long p;
	int status;
	pid_t child;

	for (p = 0; write && p < s->n; p++)
		w->tags[p] = new_tag(w);
	w->report->page = -1;
	w->ops[s->op]++;
	child = fork();
	if (child < 0) {
		int err = errno;

		/*
		 * ENOMEM: copy_page_range() reports every failure so, also
		 * 6.12's giving up on a device-exclusive entry whose page
		 * it cannot lock (another thread is migrating it).
		 */
		hmm_note(&w->history, "  fork failed: %s", strerror(err));
		if (!w->refused[s->op]++)
			fprintf(stderr, "# thread %d: fork failed with %s (counted as refused)\n",
				w->id, strerror(err));
		return true;
	}
	if (child == 0)
		child_run(s, write);
	if (waitpid(child, &status, 0) != child) {
		fail(w, false, "waitpid: %s", strerror(errno));
		return false;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		if (w->report->page >= 0)
			fail(w, true,
			     "the child forked with range %d (%s) found page %ld holding tag %#x, expected %#x",
			     range_index(r), kind_name[r->kind],
			     w->report->page, w->report->found,
			     w->report->want);
		else
			fail(w, false, "the child forked with range %d (%s) ended with status %#x",
			     range_index(r), kind_name[r->kind], status);
		return false;
	}
	/* Private pages the child wrote were its own copies. */
	for (p = 0; write && r->kind == K_SHMEM && p < s->n; p++)
		r->tag[s->first + p] = w->tags[p];
	return true;
}

static bool (*const step_fn[OP_COUNT])(struct step *s) = {
	[OP_READ] = step_read, [OP_WRITE] = step_write,
	[OP_TO_PRIVATE] = step_migrate, [OP_TO_COHERENT] = step_migrate,
	[OP_TO_SYS] = step_to_sys, [OP_ON_FAULT] = step_on_fault,
	[OP_SNAPSHOT] = step_snapshot,
	[OP_EXCLUSIVE] = step_exclusive,
	[OP_CHECK_EXCL] = step_check_exclusive, [OP_RELEASE] = step_release,
	[OP_CPU_READ] = step_cpu_read, [OP_CPU_WRITE] = step_cpu_write,
	[OP_MMAP] = step_mmap, [OP_MUNMAP] = step_munmap,
	[OP_MPROTECT] = step_mprotect, [OP_DONTNEED] = step_dontneed,
	[OP_MREMAP_MOVE] = step_mremap_move,
	[OP_MREMAP_SHRINK] = step_mremap_shrink, [OP_FORK] = step_fork,
};

static bool device_op(enum op op)
{
	return op <= OP_RELEASE;
}

/*
 * After a step, its window: through the device that did the step (which
 * leaves that device's pages where they are), else through the CPU; one
 * time in 16 the whole range through the CPU. Exclusive access was just
 * checked through the copy the command made.
 */
static bool check_after(struct step *s)
{
	int err;

	if (!hmm_rng_below(&s->w->rng, 16))
		return check_cpu(s->w, s->r, 0, RANGE_PAGES);
	/* Any access would take exclusive access back: let it last. */
	if (s->op == OP_EXCLUSIVE || s->op == OP_CHECK_EXCL)
		return true;
	if (device_op(s->op) && s->op != OP_READ &&
	    all_pages(s->r, s->first, s->n, readable)) {
		err = dev_cmd(s->w, s->dev, HMM_DMIRROR_READ, s->addr, s->n);
		if (!err)
			return check_buf(s->w, s->r, s->first, s->n,
					 "a device read after the step");
		if (err != EBUSY) {
			fail(s->w, false,
			     "device %d cannot read readable range %d (%s) pages %lu+%lu: %s",
			     s->dev, range_index(s->r), kind_name[s->r->kind],
			     s->first, s->n, strerror(err));
			return false;
		}
	}
	return check_cpu(s->w, s->r, s->first, s->n);
}

/* Per-run weights: HMM_STRESS_SKIP can leave operations out. */
static unsigned int weight[OP_COUNT];
static unsigned int weight_sum;

static enum op draw_op(struct worker *w)
{
	unsigned long pick = hmm_rng_below(&w->rng, weight_sum);
	int op;

	for (op = 0; op < OP_COUNT - 1; op++) {
		if (pick < weight[op])
			break;
		pick -= weight[op];
	}
	return (enum op)op;
}

/* A device for @op: private ones to migrate there, coherent ones likewise. */
static int draw_device(struct worker *w, enum op op)
{
	if (op == OP_TO_PRIVATE || st.ndevices <= 2)
		return (int)hmm_rng_below(&w->rng, 2);
	if (op == OP_TO_COHERENT)
		return 2 + (int)hmm_rng_below(&w->rng, (unsigned long)st.ndevices - 2);
	return (int)hmm_rng_below(&w->rng, (unsigned long)st.ndevices);
}

static void draw_window(struct worker *w, unsigned long *first,
			unsigned long *n)
{
	if (!hmm_rng_below(&w->rng, st.focus_thp ? 2 : 8)) {
		*first = 0;
		*n = RANGE_PAGES;
		return;
	}
	*first = hmm_rng_below(&w->rng, RANGE_PAGES);
	*n = 1 + hmm_rng_below(&w->rng, RANGE_PAGES - *first < WINDOW ?
			  RANGE_PAGES - *first : WINDOW);
}

static bool owned_step(struct worker *w)
{
	struct step s = { .w = w };
	bool ok;

	s.r = &st.range[hmm_rng_below(&w->rng, NR_OWNED)];
	s.op = draw_op(w);
	s.dev = draw_device(w, s.op);
	draw_window(w, &s.first, &s.n);
	s.addr = s.r->addr + s.first * PAGE;

	pthread_mutex_lock(&s.r->lock);
	hmm_note(&w->history, "%s dev%d range %d (%s) pages %lu+%lu", op_name[s.op], s.dev,
		 range_index(s.r), kind_name[s.r->kind], s.first, s.n);
	ok = step_fn[s.op](&s) && check_after(&s);
	pthread_mutex_unlock(&s.r->lock);
	return ok;
}

/* ---- The wild ranges: no lock, no shadow, only the errnos ---- */

static const unsigned long op_request[OP_RELEASE + 1] = {
	[OP_READ] = HMM_DMIRROR_READ, [OP_WRITE] = HMM_DMIRROR_WRITE,
	[OP_TO_PRIVATE] = HMM_DMIRROR_MIGRATE_TO_DEV,
	[OP_TO_COHERENT] = HMM_DMIRROR_MIGRATE_TO_DEV,
	[OP_TO_SYS] = HMM_DMIRROR_MIGRATE_TO_SYS,
	[OP_ON_FAULT] = HMM_DMIRROR_MIGRATE_ON_FAULT_TO_DEV,
	[OP_SNAPSHOT] = HMM_DMIRROR_SNAPSHOT,
	[OP_EXCLUSIVE] = HMM_DMIRROR_EXCLUSIVE,
	[OP_CHECK_EXCL] = HMM_DMIRROR_CHECK_EXCLUSIVE,
	[OP_RELEASE] = HMM_DMIRROR_RELEASE,
};

static void wild_map(struct worker *w, char *addr)
{
	static const int prots[] = {
		PROT_READ | PROT_WRITE, PROT_READ | PROT_WRITE, PROT_READ,
	};
	int prot = prots[hmm_rng_below(&w->rng, 3)], fd = -1, flags = MAP_FIXED;
	enum kind kind = (enum kind)(1 + hmm_rng_below(&w->rng, K_COUNT - 1));

	if (kind == K_SHMEM || kind == K_FILE) {
		fd = memfd_create("hmm-stress-wild", 0);
		if (fd < 0 || ftruncate(fd, RANGE_SIZE))
			kind = K_ANON;
	}
	flags |= kind == K_SHMEM ? MAP_SHARED : MAP_PRIVATE;
	if (kind == K_ANON || kind == K_THP)
		flags |= MAP_ANONYMOUS;
	if (mmap(addr, RANGE_SIZE, prot, flags, flags & MAP_ANONYMOUS ? -1 : fd,
		 0) != MAP_FAILED && kind == K_THP)
		madvise(addr, RANGE_SIZE, MADV_HUGEPAGE);
	if (fd >= 0)
		close(fd);
}

static bool wild_fork(struct worker *w, char *addr, unsigned long len)
{
	int status;
	pid_t child = fork();

	if (child < 0)
		return true;
	if (child == 0) {
		/* Read the pages through the kernel: a hole is EFAULT. */
		if (pwrite(w->sink, addr, len, 0) < 0 && errno != EFAULT)
			_exit(1);
		_exit(0);
	}
	if (waitpid(child, &status, 0) != child || !WIFEXITED(status) ||
	    WEXITSTATUS(status)) {
		fail(w, false, "a child forked over wild pages ended with status %#x",
		     status);
		return false;
	}
	return true;
}

static bool wild_step(struct worker *w)
{
	struct range *r = &st.range[NR_OWNED + hmm_rng_below(&w->rng, NR_WILD)];
	enum op op = draw_op(w);
	int dev = draw_device(w, op), err;
	unsigned long first, n;
	char *addr;

	draw_window(w, &first, &n);
	addr = r->addr + first * PAGE;
	hmm_note(&w->history, "wild %s dev%d range %d pages %lu+%lu", op_name[op], dev,
		 range_index(r), first, n);
	w->wild_steps++;
	if (device_op(op)) {
		err = dev_cmd(w, dev, op_request[op], addr, n);
		return outcome(w, op, op_request[op], err, dev, r);
	}
	w->ops[op]++;
	switch (op) {
	case OP_CPU_READ:
		if (pwrite(w->sink, addr, n * PAGE, 0) < 0)
			w->refused[op]++;
		break;
	case OP_CPU_WRITE:
		if (pread(w->sink, addr, n * PAGE, 0) < 0)
			w->refused[op]++;
		break;
	case OP_MMAP:
		wild_map(w, r->addr);
		break;
	case OP_MUNMAP:
		munmap(addr, n * PAGE);
		break;
	case OP_MPROTECT:
		mprotect(addr, n * PAGE, hmm_rng_below(&w->rng, 2) ? PROT_READ :
			 PROT_READ | PROT_WRITE);
		break;
	case OP_DONTNEED:
		madvise(addr, n * PAGE, MADV_DONTNEED);
		break;
	case OP_MREMAP_MOVE:
		/* Onto the other wild range, which it replaces. */
		mremap(r->addr, RANGE_SIZE, RANGE_SIZE,
		       MREMAP_MAYMOVE | MREMAP_FIXED,
		       st.range[NR_OWNED + (range_index(r) - NR_OWNED + 1) %
				NR_WILD].addr);
		break;
	case OP_MREMAP_SHRINK:
		if (mremap(r->addr, RANGE_SIZE, n * PAGE, 0) != MAP_FAILED)
			mremap(r->addr, n * PAGE, RANGE_SIZE, 0);
		break;
	default:
		return wild_fork(w, r->addr, RANGE_SIZE);
	}
	return true;
}

static void *worker_run(void *arg)
{
	struct worker *w = arg;

	while (!stopped()) {
		bool ok = hmm_rng_below(&w->rng, 4) ? owned_step(w) : wild_step(w);

		__atomic_add_fetch(&st.progress, 1, __ATOMIC_RELAXED);
		if (!ok)
			break;
	}
	return NULL;
}

/*
 * The watchdog's report of a hang (a minute without a step): the seed and
 * what every thread was doing; it then asks the kernel for its blocked
 * tasks and CPUs, and fails the run.
 */
static void report_hang(void *arg, unsigned long steps)
{
	int i;

	(void)arg;
	fprintf(stderr, "# after %lu steps (HMM_STRESS_SEED=%llu); each thread's last steps:\n",
		steps, (unsigned long long)st.seed);
	for (i = 0; i < st.nthreads; i++)
		dump_history(&st.worker[i]);
}

static void tick(void)
{
	__atomic_add_fetch(&st.progress, 1, __ATOMIC_RELAXED);
}

/* ---- Rounds, and the module unload between them ---- */

static int open_devices(void)
{
	char path[32];
	int i, d;

	for (i = 0; i < st.nthreads; i++) {
		for (d = 0; d < NDEVICES; d++) {
			snprintf(path, sizeof(path), "/dev/hmm_dmirror%d", d);
			st.worker[i].fd[d] = open(path, O_RDWR);
			if (st.worker[i].fd[d] < 0 && d < 2)
				return -errno;
		}
	}
	return 0;
}

static void close_devices(void)
{
	int i, d;

	for (i = 0; i < st.nthreads; i++)
		for (d = 0; d < NDEVICES; d++) {
			if (st.worker[i].fd[d] >= 0)
				close(st.worker[i].fd[d]);
			st.worker[i].fd[d] = -1;
		}
}

/* Pages of every range that sit in some device's memory now. */
static unsigned long device_pages(struct worker *w)
{
	unsigned long total = 0, p;
	int d, i;

	for (d = 0; d < st.ndevices; d++) {
		for (i = 0; i < NR_RANGES; i++) {
			unsigned char *code = (unsigned char *)w->buf;

			if (dev_cmd(w, d, HMM_DMIRROR_SNAPSHOT, st.range[i].addr,
				    RANGE_PAGES))
				continue;
			for (p = 0; p < RANGE_PAGES; p++)
				total += (code[p] & 0xf0) ==
					 HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL ||
					 (code[p] & 0xf0) ==
					 HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL;
		}
	}
	return total;
}

/*
 * Before an unload: put each owned range's data into some device, and
 * half the time give another device exclusive access to half of it, so
 * that the release and the unload find pages held both ways.
 */
static void fill_devices(struct worker *w)
{
	int i;

	for (i = 0; i < NR_OWNED; i++) {
		int dev = i % st.ndevices, other;

		hmm_note(&w->history, "migrate range %d to device %d before the unload", i,
			 dev);
		dev_cmd(w, dev, HMM_DMIRROR_MIGRATE_TO_DEV, st.range[i].addr,
			RANGE_PAGES);
		tick();
		if (hmm_rng_below(&w->rng, 2))
			continue;
		other = (dev + 1 + (int)hmm_rng_below(&w->rng, st.ndevices - 1)) % st.ndevices;
		hmm_note(&w->history, "device %d takes range %d exclusive before the unload",
			 other, i);
		dev_cmd(w, other, HMM_DMIRROR_EXCLUSIVE, st.range[i].addr,
			RANGE_PAGES / 2);
		tick();
	}
}

static void read_param(const char *name, char *value, size_t size)
{
	char path[96];
	FILE *f;

	snprintf(path, sizeof(path), "/sys/module/test_hmm/parameters/%s", name);
	snprintf(value, size, "0");
	f = fopen(path, "r");
	if (!f)
		return;
	if (!fgets(value, (int)size, f))
		snprintf(value, size, "0");
	value[strcspn(value, "\n")] = '\0';
	fclose(f);
}

/* Close every file, unload test_hmm, load it again; 0 or what failed. */
static const char *unload_reload(void)
{
	char spm0[32], spm1[32], command[192];

	read_param("spm_addr_dev0", spm0, sizeof(spm0));
	read_param("spm_addr_dev1", spm1, sizeof(spm1));
	close_devices();
	tick();
	/* The module's counters go with it: keep what they say first. */
	for (int d = 0; d < 2; d++) {
		long splits = hmm_dmirror_counter(d, "folio_split");
		long freed = hmm_dmirror_counter(d, "folio_free_huge");

		st.folio_splits += splits > 0 ? splits : 0;
		st.huge_freed += freed > 0 ? freed : 0;
	}
	if (system("rmmod test_hmm"))
		return "rmmod test_hmm";
	tick();
	snprintf(command, sizeof(command),
		 "insmod %s spm_addr_dev0=%s spm_addr_dev1=%s", MODULE_PATH,
		 spm0, spm1);
	if (system(command))
		return "insmod test_hmm";
	tick();
	st.unloads++;
	if (open_devices())
		return "opening the devices after the reload";
	return NULL;
}

/* Every owned range must hold its shadow after a reload. */
static bool verify_all(struct worker *w)
{
	int i;

	for (i = 0; i < NR_OWNED; i++) {
		hmm_note(&w->history, "verify range %d after the reload", i);
		if (!check_cpu(w, &st.range[i], 0, RANGE_PAGES))
			return false;
		tick();
	}
	return true;
}

static unsigned long env_ulong(const char *name, unsigned long fallback)
{
	const char *value = getenv(name);

	return value && *value ? strtoul(value, NULL, 0) : fallback;
}

/* Is @name one of the comma-separated words of @list? */
static bool listed(const char *list, const char *name)
{
	size_t len = strlen(name);
	const char *at = list;

	while (list && (at = strstr(at, name))) {
		if ((at == list || at[-1] == ',') && (!at[len] || at[len] == ','))
			return true;
		at += len;
	}
	return false;
}

/* HMM_STRESS_SKIP="exclusive,fork": leave those operations out. */
static void set_weights(void)
{
	const char *skip = getenv("HMM_STRESS_SKIP");
	int op;

	weight_sum = 0;
	for (op = 0; op < OP_COUNT; op++) {
		weight[op] = op_weight[op];
		/* Focus: more THPs moved whole, shared with a child. */
		if (st.focus_thp && (op == OP_TO_PRIVATE || op == OP_FORK))
			weight[op] *= 3;
		if (listed(skip, op_name[op]))
			weight[op] = 0;
		if (op == OP_TO_COHERENT && st.ndevices <= 2)
			weight[op] = 0;
		weight_sum += weight[op];
	}
}

static bool setup_worker(struct worker *w, int id)
{
	int d;

	w->id = id;
	hmm_rng_seed(&w->rng, hmm_mix(st.seed + (uint64_t)id));
	for (d = 0; d < NDEVICES; d++)
		w->fd[d] = -1;
	w->buf = mmap(NULL, RANGE_SIZE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	w->tags = calloc(RANGE_PAGES, sizeof(*w->tags));
	w->report = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	w->sink = memfd_create("hmm-stress-sink", 0);
	return w->buf != MAP_FAILED && w->tags && w->report != MAP_FAILED &&
	       w->sink >= 0 && !ftruncate(w->sink, RANGE_SIZE);
}

static bool setup_ranges(struct worker *w)
{
	char *arena;
	int i;

	arena = mmap(NULL, NR_RANGES * SLOT_SIZE + RANGE_SIZE, PROT_NONE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (arena == MAP_FAILED)
		return false;
	st.arena = (char *)(((uintptr_t)arena + RANGE_SIZE - 1) &
			    ~(RANGE_SIZE - 1));
	for (i = 0; i < NR_RANGES; i++) {
		struct range *r = &st.range[i];

		pthread_mutex_init(&r->lock, NULL);
		r->addr = st.arena + i * SLOT_SIZE;
		if (i >= NR_OWNED)
			wild_map(w, r->addr);
		else if (!map_range(w, r, st.focus_thp ? K_THP :
					 (enum kind)(1 + i % (K_COUNT - 1))))
			return false;
	}
	return true;
}

static void report(void)
{
	unsigned long ops[OP_COUNT] = { 0 }, refused[OP_COUNT] = { 0 };
	unsigned long verified = st.main_verified, wild = 0, total = 0;
	unsigned long compound = 0, fallbacks = 0;
	int i, op;

	for (i = 0; i < st.nthreads; i++) {
		for (op = 0; op < OP_COUNT; op++) {
			ops[op] += st.worker[i].ops[op];
			refused[op] += st.worker[i].refused[op];
		}
		verified += st.worker[i].verified;
		wild += st.worker[i].wild_steps;
		compound += st.worker[i].compound;
		fallbacks += st.worker[i].fallbacks;
	}
	fprintf(stderr, "# %-18s %10s %10s\n", "operation", "done", "refused");
	for (op = 0; op < OP_COUNT; op++) {
		fprintf(stderr, "# %-18s %10lu %10lu\n", op_name[op], ops[op],
			refused[op]);
		total += ops[op];
	}
	fprintf(stderr,
		"# operations %lu (%lu on wild ranges), bytes verified %llu, unloads %lu, pages in device memory at unloads %lu, mismatches %lu, violations %lu\n",
		total, wild, (unsigned long long)verified * PAGE, st.unloads,
		st.device_pages, st.mismatches, st.violations);
	fprintf(stderr,
		"# device THPs: %lu whole ranges moved as one 2 MiB page, %lu times the next 2 MiB allocation set to fail; 2 MiB device folios split %ld, freed whole %ld (until the last unload)\n",
		compound, fallbacks, st.folio_splits, st.huge_freed);
	fprintf(stderr, "# THPs split in the guest during the run (thp_split_page): %ld\n",
		hmm_vmstat("thp_split_page") - st.thp_splits);
}

/*
 * The core's events over the run, printed; with every migration over (the
 * threads stopped, the module reloaded), each page collected must have
 * been counted once more, as moved or failed: false if not.
 */
static bool report_events(void)
{
	struct hmm_events now;
	long d[HMM_EV_COUNT], ended;
	int ev;

	hmm_events_read(&now);
	fprintf(stderr, "# core events over the run:");
	for (ev = 0; ev < HMM_EV_COUNT; ev++) {
		d[ev] = now.v[ev] - st.events.v[ev];
		fprintf(stderr, "%s %s %ld", ev % 4 ? "," : "\n#  ",
			hmm_event_name((enum hmm_event)ev), d[ev]);
	}
	fprintf(stderr, "\n");
	ended = d[HMM_EV_SUCCESS] + d[HMM_EV_PINNED] + d[HMM_EV_REFS] +
		d[HMM_EV_ALLOC] + d[HMM_EV_RACED];
	if (st.events.v[HMM_EV_COLLECTED] >= 0 &&
	    d[HMM_EV_COLLECTED] == ended)
		return true;
	fprintf(stderr, "# collected %ld pages, but moved + failed = %ld\n",
		d[HMM_EV_COLLECTED], ended);
	return false;
}

FIXTURE(stress)
{
	struct hmm_watchdog watchdog;
};

FIXTURE_SETUP(stress)
{
	struct stat sb;
	int i;

	st.seed = hmm_seed_from_env("HMM_STRESS_SEED");
	st.fail_alloc = env_ulong("HMM_STRESS_FAIL_ALLOC", 0);
	st.focus_thp = listed(getenv("HMM_STRESS_FOCUS"), "thp");
	st.thp_splits = hmm_vmstat("thp_split_page");
	hmm_events_read(&st.events);
	st.nthreads = (int)env_ulong("HMM_STRESS_THREADS", 4);
	if (st.nthreads < 1 || st.nthreads > MAX_THREADS)
		st.nthreads = 4;
	st.ndevices = stat("/dev/hmm_dmirror2", &sb) ? 2 :
		      stat("/dev/hmm_dmirror3", &sb) ? 3 : 4;
	set_weights();
	for (i = 0; i < st.nthreads; i++)
		ASSERT_TRUE(setup_worker(&st.worker[i], i));
	ASSERT_EQ(open_devices(), 0) TH_LOG("/dev/hmm_dmirror*: %s",
					    strerror(errno));
	ASSERT_TRUE(setup_ranges(&st.worker[0]));
	self->watchdog = (struct hmm_watchdog){
		.progress = &st.progress,
		.hang_after = 60,
		.hang_fails = true,
		.on_hang = report_hang,
	};
	ASSERT_EQ(hmm_watchdog_start(&self->watchdog), 0);
}

FIXTURE_TEARDOWN(stress)
{
	hmm_watchdog_stop(&self->watchdog);
	close_devices();
}

/* One round: the threads run for @seconds, then stop. */
static bool run_round(unsigned long seconds)
{
	time_t end = time(NULL) + (time_t)seconds;
	int i;

	__atomic_store_n(&st.stop, false, __ATOMIC_RELAXED);
	for (i = 0; i < st.nthreads; i++)
		if (pthread_create(&st.worker[i].thread, NULL, worker_run,
				   &st.worker[i]))
			return false;
	while (!stopped() && time(NULL) < end)
		usleep(100000);
	__atomic_store_n(&st.stop, true, __ATOMIC_RELAXED);
	for (i = 0; i < st.nthreads; i++)
		pthread_join(st.worker[i].thread, NULL);
	return !failed();
}

TEST_F_TIMEOUT(stress, threads_devices_and_unloads, 24 * 3600)
{
	unsigned long seconds = env_ulong("HMM_STRESS_SECONDS", 25);
	unsigned long round = env_ulong("HMM_STRESS_ROUND", seconds / 4);
	struct worker *w0 = &st.worker[0];
	time_t end = time(NULL) + (time_t)seconds;
	unsigned long rounds = 0, left;
	const char *broken;

	if (round < 5)
		round = 5;
	if (round > 15)
		round = 15;
	TH_LOG("HMM_STRESS_SEED=%llu: %d threads, %d devices, %lu s in rounds of %lu s%s",
	       (unsigned long long)st.seed, st.nthreads, st.ndevices, seconds,
	       round, st.focus_thp ? ", focus on THPs" : "");
	do {
		left = (unsigned long)(end - time(NULL));
		if (!run_round(left < round ? (left ? left : 1) : round))
			break;
		rounds++;
		/* The workers are stopped: worker 0's files serve the main thread. */
		fill_devices(w0);
		st.device_pages += device_pages(w0);
		broken = unload_reload();
		if (broken) {
			fail(w0, false, "round %lu: %s failed", rounds, broken);
			break;
		}
		if (!verify_all(w0))
			break;
		if (device_pages(w0))
			fail(w0, false, "pages still in device memory after the reload");
	} while (!failed() && time(NULL) < end);
	report();
	TH_LOG("%lu rounds", rounds);
	ASSERT_FALSE(failed());
	ASSERT_TRUE(report_events());
	ASSERT_EQ(st.mismatches, 0UL);
	ASSERT_LT(0UL, st.unloads);
}

TEST_HARNESS_MAIN
