/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the test programs of test_hmm share (hmm-stress and hmm-fuzz most of
 * it, hmm-tests and hmm-regression-tests the pagemap reader):
 *
 *   hmm_rng        a reproducible random stream (xorshift64*), seeded from
 *                  an environment variable or the clock, and split per
 *                  thread or per case (splitmix64, FNV-1a of a name);
 *   hmm_history    the last steps a thread or case took, for its report;
 *   hmm_dmirror()  one /dev/hmm_dmirror command, its errno as the result
 *                  (hmm_dmirror_ioctl() with a hand-made argument);
 *   hmm_dmirror_counter()
 *                  a counter of the driver's debugfs file;
 *   hmm_dmirror_errno_documented()
 *                  whether an errno is one lib/test_hmm_uapi.h gives the
 *                  command for a well-formed request (its *_ERRNOS lists);
 *   hmm_watchdog   a thread that calls a hang a hang: after a while without
 *                  progress it has the test say what led there, asks the
 *                  kernel for its blocked tasks and CPUs (sysrq w, l), and
 *                  fails the test if told to;
 *   hmm_pagemap()  a page's /proc/self/pagemap entry, and its PM_* bits.
 *
 * Header-only (static inline), so each test stays one C file to build.
 */
#ifndef HMM_COMMON_H
#define HMM_COMMON_H

#include <dirent.h>
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <linux/const.h>

#include <lib/test_hmm_uapi.h>

#include "../kselftest.h"	/* KSFT_FAIL, ARRAY_SIZE, __printf */

/* ---- Painted buffers: contents a test can check word by word ---- */

/* Word @index of a buffer painted with @seed. */
static inline uint32_t hmm_word_of(unsigned int seed, unsigned long index)
{
	return (seed * 0x9e3779b9u) ^ (uint32_t)(index * 40503u + 7);
}

static inline void hmm_paint(void *mem, unsigned long bytes, unsigned int seed)
{
	uint32_t *word = mem;
	unsigned long n;

	for (n = 0; n < bytes / sizeof(*word); n++)
		word[n] = hmm_word_of(seed, n);
}

/* Byte offset of the first word that is not hmm_paint(@seed)'s, or -1. */
static inline long hmm_unpainted(const void *mem, unsigned long bytes,
				 unsigned int seed)
{
	const uint32_t *word = mem;
	unsigned long n;

	for (n = 0; n < bytes / sizeof(*word); n++)
		if (word[n] != hmm_word_of(seed, n))
			return n * sizeof(*word);
	return -1;
}

/* ---- PCI peer-to-peer memory ---- */

/*
 * The p2pmem directory in sysfs of the @n-th PCI device (from 0, in the
 * order of /sys/bus/pci/devices) that publishes peer-to-peer memory
 * (QEMU's NVMe controller memory buffer), into @out: 0, or -ENOENT if
 * fewer devices do. Mapping its "allocate" file MAP_SHARED gives pages of
 * that memory.
 */
static inline int hmm_p2pmem_dir(int n, char *out, size_t len)
{
	const char *pci = "/sys/bus/pci/devices";
	struct dirent *de;
	int ret = -ENOENT;
	DIR *d = opendir(pci);
	char path[512];

	if (!d)
		return -errno;
	while (ret && (de = readdir(d))) {
		snprintf(path, sizeof(path), "%s/%.64s/p2pmem", pci, de->d_name);
		if (access(path, F_OK) == 0 && strlen(path) < len && !n--) {
			memcpy(out, path, strlen(path) + 1);
			ret = 0;
		}
	}
	closedir(d);
	return ret;
}

/* ---- Random streams ---- */

struct hmm_rng {
	uint64_t state;		/* never 0 */
};

/* splitmix64: spreads related seeds (a run's seed + thread id) apart. */
static inline uint64_t hmm_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* FNV-1a of a name: a case's own offset from the run's seed. */
static inline uint64_t hmm_name_hash(const char *name)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	while (*name)
		h = (h ^ (unsigned char)*name++) * 0x100000001b3ULL;
	return h;
}

/* A run's seed: the number in environment variable @var, else the clock. */
static inline uint64_t hmm_seed_from_env(const char *var)
{
	const char *env = getenv(var);

	if (env && *env)
		return strtoull(env, NULL, 0);
	return (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
}

static inline void hmm_rng_seed(struct hmm_rng *r, uint64_t seed)
{
	r->state = seed | 1;
}

/* xorshift64*: small, fast, and the same stream on every machine. */
static inline uint64_t hmm_rng_next(struct hmm_rng *r)
{
	r->state ^= r->state >> 12;
	r->state ^= r->state << 25;
	r->state ^= r->state >> 27;
	return r->state * 0x2545F4914F6CDD1DULL;
}

/* A number in [0, n); 0 when n is 0. */
static inline unsigned long hmm_rng_below(struct hmm_rng *r, unsigned long n)
{
	return n ? hmm_rng_next(r) % n : 0;
}

/* ---- The last steps ---- */

#define HMM_HISTORY	24
#define HMM_HISTORY_LEN	128

struct hmm_history {
	char line[HMM_HISTORY][HMM_HISTORY_LEN];
	unsigned int next;
};

static inline void __printf(2, 3)
hmm_note(struct hmm_history *h, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(h->line[h->next++ % HMM_HISTORY], HMM_HISTORY_LEN, fmt, ap);
	va_end(ap);
}

/* The remembered steps, oldest first, as "#   <who>: <step>" lines. */
static inline void hmm_history_dump(const struct hmm_history *h,
				    const char *who)
{
	unsigned int n = h->next < HMM_HISTORY ? h->next : HMM_HISTORY;
	unsigned int i;

	for (i = h->next - n; i < h->next; i++)
		fprintf(stderr, "#   %s: %s\n", who, h->line[i % HMM_HISTORY]);
}

/* ---- Commands ---- */

/* One command on @fd with argument @arg: 0, or the errno it failed with. */
static inline int hmm_dmirror_ioctl(int fd, unsigned long request, void *arg)
{
	return ioctl(fd, request, arg) ? errno : 0;
}

/* One command on a range and a buffer: 0, or the errno it failed with. */
static inline int hmm_dmirror(int fd, unsigned long request, void *addr,
			      void *ptr, unsigned long npages)
{
	struct hmm_dmirror_cmd cmd = {
		.addr = (uintptr_t)addr,
		.ptr = (uintptr_t)ptr,
		.npages = npages,
	};

	return hmm_dmirror_ioctl(fd, request, &cmd);
}

#ifdef HMM_DMIRROR_READ_ERRNOS	/* not in 6.12's header (flavour upstream) */
/*
 * Whether @err is an answer lib/test_hmm_uapi.h documents for @request
 * given a well-formed request (a range inside one mapping, a good buffer):
 * its HMM_DMIRROR_*_ERRNOS lists. RELEASE documents none.
 */
static inline bool hmm_dmirror_errno_documented(unsigned long request,
						int err)
{
	static const struct {
		unsigned long request;
		int errnos[8];		/* ends at the first 0 */
	} table[] = {
		{ HMM_DMIRROR_READ,		HMM_DMIRROR_READ_ERRNOS },
		{ HMM_DMIRROR_WRITE,		HMM_DMIRROR_WRITE_ERRNOS },
		{ HMM_DMIRROR_MIGRATE_TO_DEV,	HMM_DMIRROR_MIGRATE_TO_DEV_ERRNOS },
		{ HMM_DMIRROR_MIGRATE_TO_SYS,	HMM_DMIRROR_MIGRATE_TO_SYS_ERRNOS },
		{ HMM_DMIRROR_SNAPSHOT,		HMM_DMIRROR_SNAPSHOT_ERRNOS },
		{ HMM_DMIRROR_EXCLUSIVE,	HMM_DMIRROR_EXCLUSIVE_ERRNOS },
		{ HMM_DMIRROR_CHECK_EXCLUSIVE,	HMM_DMIRROR_CHECK_EXCLUSIVE_ERRNOS },
		{ HMM_DMIRROR_MIGRATE_ON_FAULT_TO_DEV,
		  HMM_DMIRROR_MIGRATE_ON_FAULT_TO_DEV_ERRNOS },
	};
	unsigned int i, j;

	for (i = 0; i < ARRAY_SIZE(table); i++) {
		if (table[i].request != request)
			continue;
		for (j = 0; j < 8 && table[i].errnos[j]; j++)
			if (table[i].errnos[j] == err)
				return true;
	}
	return false;
}
#endif

/*
 * The value of @name in a file of "name value" lines (/proc/vmstat, the
 * driver's debugfs counters); the last one if it repeats, -1 if absent.
 */
static inline long hmm_read_keyed(const char *path, const char *name)
{
	char key[64];
	long value, found = -1;
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	while (fscanf(f, "%63s %ld", key, &value) == 2)
		if (!strcmp(key, name))
			found = value;
	fclose(f);
	return found;
}

/*
 * A counter of device @dev from test_hmm's debugfs file (what the core
 * told the driver of its folios: folio_free_small, folio_free_huge,
 * folio_split), or -1 without one (6.12's driver). Counters start at 0
 * when the module loads.
 */
static inline long hmm_dmirror_counter(int dev, const char *name)
{
	char path[64];

	snprintf(path, sizeof(path),
		 "/sys/kernel/debug/test_hmm/hmm_dmirror%d/counters", dev);
	return hmm_read_keyed(path, name);
}

/* ---- Kernel knobs and counters ---- */

/* Write @value to the file @path (a sysctl, a sysfs knob); 0 or -errno. */
static inline int hmm_write_file(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY);
	ssize_t len = strlen(value), done;

	if (fd < 0)
		return -errno;
	done = write(fd, value, len);
	close(fd);
	return done == len ? 0 : -EIO;
}

/* The number a file such as a sysctl holds; -1 if it cannot be read. */
static inline long hmm_read_long(const char *path)
{
	char text[32] = "";
	int fd = open(path, O_RDONLY);
	ssize_t len;

	if (fd < 0)
		return -1;
	len = read(fd, text, sizeof(text) - 1);
	close(fd);
	return len > 0 ? strtol(text, NULL, 10) : -1;
}

/* The event counter @name of /proc/vmstat; -1 if there is none. */
static inline long hmm_vmstat(const char *name)
{
	return hmm_read_keyed("/proc/vmstat", name);
}

/* ---- The core's events in /proc/vmstat (Documentation/mm/hmm.rst) ---- */

enum hmm_event {
	HMM_EV_COLLECTED, HMM_EV_SUCCESS, HMM_EV_TO_PRIVATE,
	HMM_EV_FROM_PRIVATE, HMM_EV_TO_COHERENT, HMM_EV_FROM_COHERENT,
	HMM_EV_LOCKED, HMM_EV_PINNED, HMM_EV_REFS, HMM_EV_ALLOC,
	HMM_EV_RACED, HMM_EV_THP, HMM_EV_THP_SPLIT, HMM_EV_FAULT,
	HMM_EV_GRANT, HMM_EV_REVOKE, HMM_EV_COUNT
};

struct hmm_events {
	long v[HMM_EV_COUNT];		/* -1: not in /proc/vmstat */
};

/* The /proc/vmstat name of event @ev. */
static inline const char *hmm_event_name(enum hmm_event ev)
{
	static const char *const name[HMM_EV_COUNT] = {
		"pgmigrate_device_collected", "pgmigrate_device_success",
		"pgmigrate_to_device_private", "pgmigrate_from_device_private",
		"pgmigrate_to_device_coherent", "pgmigrate_from_device_coherent",
		"pgmigrate_device_fail_locked", "pgmigrate_device_fail_pinned",
		"pgmigrate_device_fail_refs", "pgmigrate_device_fail_alloc",
		"pgmigrate_device_fail_raced", "thp_migration_device",
		"thp_migration_device_split", "device_private_fault",
		"device_exclusive_grant", "device_exclusive_revoke",
	};

	return name[ev];
}

/* Every event at once, from one pass over /proc/vmstat. */
static inline void hmm_events_read(struct hmm_events *e)
{
	char key[64];
	long value;
	int ev;
	FILE *f = fopen("/proc/vmstat", "r");

	for (ev = 0; ev < HMM_EV_COUNT; ev++)
		e->v[ev] = -1;
	if (!f)
		return;
	while (fscanf(f, "%63s %ld", key, &value) == 2)
		for (ev = 0; ev < HMM_EV_COUNT; ev++)
			if (!strcmp(key, hmm_event_name((enum hmm_event)ev)))
				e->v[ev] = value;
	fclose(f);
}

/* ---- The core's tracepoints (include/trace/events/hmm.h), via tracefs ---- */

/*
 * A trace instance of the test program's own (its own buffer and event
 * switches, so that nothing else on the system turns HMM's events off or
 * reads them away), named after the program.
 */
#define HMM_TRACE_DIR	"/sys/kernel/tracing/instances/"

struct hmm_trace {
	char dir[96];
	char *text;		/* the last hmm_trace_read() */
};

/* Start (or restart, emptied) instance @name with every HMM event on. */
static inline bool hmm_trace_start(struct hmm_trace *t, const char *name)
{
	char path[160];
	int fd;

	snprintf(t->dir, sizeof(t->dir), HMM_TRACE_DIR "%s", name);
	if (mkdir(t->dir, 0755) && errno != EEXIST)
		return false;
	snprintf(path, sizeof(path), "%s/events/hmm/enable", t->dir);
	if (hmm_write_file(path, "1"))
		return false;
	snprintf(path, sizeof(path), "%s/trace", t->dir);
	/* Opening "trace" with O_TRUNC empties the buffer. */
	fd = open(path, O_WRONLY | O_TRUNC);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/*
 * Stop the events and read the whole buffer into t->text (NULL if it
 * cannot be read, or if events were lost: the buffer overflowed).
 */
static inline const char *hmm_trace_read(struct hmm_trace *t)
{
	size_t len = 0, room = 1 << 16;
	char path[160];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/events/hmm/enable", t->dir);
	hmm_write_file(path, "0");
	free(t->text);
	t->text = malloc(room);
	snprintf(path, sizeof(path), "%s/trace", t->dir);
	fd = open(path, O_RDONLY);
	if (!t->text || fd < 0)
		goto fail;
	while ((n = read(fd, t->text + len, room - len - 1)) > 0) {
		len += n;
		if (room - len == 1) {
			char *more = realloc(t->text, room *= 2);

			if (!more)
				goto fail;
			t->text = more;
		}
	}
	close(fd);
	fd = -1;
	if (n < 0)
		goto fail;
	t->text[len] = '\0';
	if (strstr(t->text, "LOST ") || strstr(t->text, "buffer started"))
		goto fail;
	return t->text;
fail:
	if (fd >= 0)
		close(fd);
	free(t->text);
	t->text = NULL;
	return NULL;
}

static inline void hmm_trace_end(struct hmm_trace *t)
{
	char path[160];

	snprintf(path, sizeof(path), "%s/events/hmm/enable", t->dir);
	hmm_write_file(path, "0");
	rmdir(t->dir);
	free(t->text);
	t->text = NULL;
}

/* The end of the line @p is in: its '\n', or the end of the text. */
static inline const char *hmm_trace_eol(const char *p)
{
	const char *eol = strchr(p, '\n');

	return eol ? eol : p + strlen(p);
}

/* Where @word (@len bytes) starts in [@p, @end), or NULL. */
static inline const char *hmm_trace_find(const char *p, const char *end,
					 const char *word, size_t len)
{
	for (; p + len <= end; p++)
		if (*p == *word && !memcmp(p, word, len))
			return p;
	return NULL;
}

/*
 * The fields of the next line of @text from *@pos on (NULL: from the
 * start) that records event @event, or NULL; *@pos moves past that line,
 * or to the end. A line reads "<task>-<pid> [cpu] <flags> <time>: <event>:
 * <field>=<value> ...".
 */
static inline const char *hmm_trace_next(const char *text, const char **pos,
					 const char *event)
{
	const char *line = *pos ? *pos : text;
	char tag[64];
	size_t len;

	len = snprintf(tag, sizeof(tag), ": %s: ", event);
	while (*line) {
		const char *eol = hmm_trace_eol(line);
		const char *hit = line[0] == '#' ? NULL :
				  hmm_trace_find(line, eol, tag, len);

		line = *eol ? eol + 1 : eol;
		if (hit) {
			*pos = line;
			return hit + len;
		}
	}
	*pos = line;
	return NULL;
}

/*
 * Where field @name's value starts in the event whose fields start at
 * @fields (its line only), or NULL.
 */
static inline const char *hmm_trace_value(const char *fields,
					  const char *name)
{
	const char *eol = hmm_trace_eol(fields), *p = fields;
	size_t len = strlen(name);

	while ((p = hmm_trace_find(p, eol, name, len))) {
		if ((p == fields || p[-1] == ' ') && p[len] == '=')
			return p + len + 1;
		p += len;
	}
	return NULL;
}

/* The number in field @name of the event at @fields; ~0UL if none. */
static inline unsigned long hmm_trace_field(const char *fields,
					    const char *name)
{
	const char *v = hmm_trace_value(fields, name);

	return v ? strtoul(v, NULL, 0) : ~0UL;
}

/* Whether field @name of the event at @fields reads @value (a word). */
static inline bool hmm_trace_is(const char *fields, const char *name,
				const char *value)
{
	const char *v = hmm_trace_value(fields, name);
	size_t len = strlen(value);

	return v && !strncmp(v, value, len) &&
	       (v[len] == ' ' || v[len] == '\n' || v[len] == '\0');
}

/* How many @event lines @text has, and the sum of their field @sum_of. */
static inline unsigned long hmm_trace_count(const char *text,
					    const char *event,
					    const char *sum_of,
					    unsigned long *sum)
{
	const char *pos = NULL, *f;
	unsigned long n = 0;

	if (sum)
		*sum = 0;
	while ((f = hmm_trace_next(text, &pos, event))) {
		n++;
		if (sum)
			*sum += hmm_trace_field(f, sum_of);
	}
	return n;
}

/*
 * The /proc/vmstat events the per-entry tracepoints of @text add up to
 * (Documentation/mm/hmm.rst): every move and every reason a page stayed
 * is one event with its size in pages, so the trace of a run must give
 * exactly what the counters say. Collected is what ended one way or the
 * other, locked pages aside (they never were).
 */
static inline void hmm_trace_events(const char *text, struct hmm_events *e)
{
	static const struct {
		const char *word;
		enum hmm_event ev;
	} mem_from[] = {
		{ "private", HMM_EV_FROM_PRIVATE },
		{ "coherent", HMM_EV_FROM_COHERENT },
	}, mem_to[] = {
		{ "private", HMM_EV_TO_PRIVATE },
		{ "coherent", HMM_EV_TO_COHERENT },
	}, reason[] = {
		{ "locked", HMM_EV_LOCKED }, { "pinned", HMM_EV_PINNED },
		{ "refs", HMM_EV_REFS }, { "alloc", HMM_EV_ALLOC },
		{ "raced", HMM_EV_RACED },
	};
	const char *pos = NULL, *f;
	unsigned int k;

	memset(e, 0, sizeof(*e));
	while ((f = hmm_trace_next(text, &pos, "hmm_migrate_page"))) {
		long nr = hmm_trace_field(f, "nr");

		e->v[HMM_EV_SUCCESS] += nr;
		e->v[HMM_EV_THP] += nr > 1;
		for (k = 0; k < ARRAY_SIZE(mem_from); k++) {
			if (hmm_trace_is(f, "from", mem_from[k].word))
				e->v[mem_from[k].ev] += nr;
			if (hmm_trace_is(f, "to", mem_to[k].word))
				e->v[mem_to[k].ev] += nr;
		}
	}
	pos = NULL;
	while ((f = hmm_trace_next(text, &pos, "hmm_migrate_skip")))
		for (k = 0; k < ARRAY_SIZE(reason); k++)
			if (hmm_trace_is(f, "reason", reason[k].word))
				e->v[reason[k].ev] += hmm_trace_field(f, "nr");
	e->v[HMM_EV_COLLECTED] = e->v[HMM_EV_SUCCESS] + e->v[HMM_EV_PINNED] +
				 e->v[HMM_EV_REFS] + e->v[HMM_EV_ALLOC] +
				 e->v[HMM_EV_RACED];
	e->v[HMM_EV_THP_SPLIT] = hmm_trace_count(text, "hmm_migrate_split",
						 NULL, NULL);
	e->v[HMM_EV_FAULT] = hmm_trace_count(text, "hmm_device_private_fault",
					     NULL, NULL);
	e->v[HMM_EV_GRANT] = hmm_trace_count(text, "hmm_device_exclusive_grant",
					     NULL, NULL);
	e->v[HMM_EV_REVOKE] = hmm_trace_count(text, "hmm_device_exclusive_revoke",
					      NULL, NULL);
}

/* ---- Hangs ---- */

/* Ask the kernel for blocked tasks (w) and every CPU's backtrace (l). */
static inline void hmm_sysrq_dump(void)
{
	int fd = open("/proc/sysrq-trigger", O_WRONLY);

	if (fd < 0)
		return;
	if (write(fd, "w", 1) < 0 || write(fd, "l", 1) < 0)
		fprintf(stderr, "# sysrq: %s\n", strerror(errno));
	close(fd);
}

/*
 * A watchdog over a counter the test bumps (__atomic) at each step. Set
 * the fields, then hmm_watchdog_start(); hmm_watchdog_stop() when done.
 */
struct hmm_watchdog {
	const unsigned long *progress;	/* the test's step counter */
	unsigned int hang_after;	/* seconds without a step: a hang */
	bool hang_fails;		/* _exit(KSFT_FAIL) after reporting */
	/* Says what led to the hang (the steps, the seed); may be NULL. */
	void (*on_hang)(void *arg, unsigned long steps);
	/* Called once a minute while the run lasts; may be NULL. */
	void (*on_minute)(void *arg, unsigned long steps,
			  unsigned long seconds);
	void *arg;
	bool stop;			/* __atomic: set by hmm_watchdog_stop() */
	pthread_t thread;
};

static inline void *hmm_watchdog_run(void *data)
{
	struct hmm_watchdog *wd = data;
	unsigned long last = ~0UL, now, idle = 0, seconds = 0;

	while (!__atomic_load_n(&wd->stop, __ATOMIC_ACQUIRE)) {
		sleep(1);
		now = __atomic_load_n(wd->progress, __ATOMIC_RELAXED);
		if (wd->on_minute && ++seconds % 60 == 0)
			wd->on_minute(wd->arg, now, seconds);
		if (now != last) {
			last = now;
			idle = 0;
			continue;
		}
		if (++idle != wd->hang_after)
			continue;
		fprintf(stderr, "# HANG: no progress for %u s after %lu steps\n",
			wd->hang_after, now);
		if (wd->on_hang)
			wd->on_hang(wd->arg, now);
		hmm_sysrq_dump();
		if (wd->hang_fails)
			_exit(KSFT_FAIL);
	}
	return NULL;
}

static inline int hmm_watchdog_start(struct hmm_watchdog *wd)
{
	wd->stop = false;
	return pthread_create(&wd->thread, NULL, hmm_watchdog_run, wd);
}

static inline void hmm_watchdog_stop(struct hmm_watchdog *wd)
{
	__atomic_store_n(&wd->stop, true, __ATOMIC_RELEASE);
	pthread_join(wd->thread, NULL);
}

/* ---- /proc/self/pagemap ---- */

/* Entry bits (Documentation/admin-guide/mm/pagemap.rst). */
#define PM_PRESENT		_BITULL(63)
#define PM_SWAP			_BITULL(62)	/* or a swap-like entry */
#define PM_UFFD_WP		_BITULL(57)
/* A swap-like entry's offset: for a device-private page, its pfn. */
#define PM_SWAP_OFFSET(e)	(((e) >> 5) & ((1ULL << 50) - 1))

/* The pagemap entry of the page at @addr; 0 when it cannot be read. */
static inline uint64_t hmm_pagemap(const void *addr)
{
	uint64_t entry = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY);

	if (fd < 0)
		return 0;
	if (pread(fd, &entry, sizeof(entry),
		  (uintptr_t)addr / getpagesize() * sizeof(entry)) !=
	    sizeof(entry))
		entry = 0;
	close(fd);
	return entry;
}

#endif /* HMM_COMMON_H */
