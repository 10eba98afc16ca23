// SPDX-License-Identifier: GPL-2.0
/*
 * hmm-fuzz: random and hostile commands to /dev/hmm_dmirror*, interleaved
 * with the mm operations that race with them.
 *
 * The fuzzer keeps a small world: an arena of slots at fixed addresses,
 * each either unmapped or mapped with some kind of memory (private
 * anonymous, read-only, no access, THP, shared memfd, hugetlbfs), and a
 * shadow holding the byte every page of a mapped slot must contain (each
 * page is filled with one byte value). Each step picks one of:
 *
 *   a sane command     on a slot: any command, an in-range window (one in
 *                      eight a whole PMD, which a THP crosses to a private
 *                      device as one 2 MiB page), a good buffer. It must
 *                      succeed or fail with an errno the command documents
 *                      (lib/test_hmm_uapi.h). Data it hands back (READ,
 *                      MIGRATE_TO_DEV, EXCLUSIVE) must match the shadow; a
 *                      WRITE updates the shadow. Or FLAGS: a known mask
 *                      (FAIL_ALLOC sends the next THP page by page) must be
 *                      taken, an unknown bit refused with EINVAL.
 *   a hostile command  unaligned, zero, huge or wrapping ranges, kernel or
 *                      unmapped buffers, bad command numbers, a bad
 *                      argument pointer. Where the uapi's first checks make
 *                      it invalid, success is a failure, and the errno must
 *                      be the one the header gives for that check.
 *   an mm operation    map, unmap, mprotect, madvise(DONTNEED), mremap to
 *                      another slot, fork with a child that checks and
 *                      writes, a CPU read or write of a page.
 *
 * and every so often checks every readable page against the shadow. With
 * a second thread unmapping and remapping slots under the commands (the
 * "racing" case), data checks are off but the errno rules still hold.
 *
 * Reproducible: every case prints its seed; HMM_FUZZ_SEED=<n> replays it,
 * HMM_FUZZ_CALLS=<n> sets the number of steps per case (default 20000). A
 * failure prints the last steps before it.
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
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lib/test_hmm_uapi.h>

#define PAGE		4096UL
#define SLOTS		12
#define PMD_PAGES	512UL
#define SLOT_PAGES	(2 * PMD_PAGES)		/* 4 MiB: two PMDs */
#define SLOT_SIZE	(SLOT_PAGES * PAGE)
#define NDEVICES	4
#define USER_TOP	0x00007ffffffff000UL	/* x86-64 TASK_SIZE */
#define UNKNOWN		(-1)
#define BUF_SIZE	(2 * SLOT_SIZE)		/* the largest hostile window */

enum kind { K_NONE, K_ANON, K_RO, K_NOACCESS, K_THP, K_SHARED, K_HUGETLB,
	    K_COUNT };
static const char *const kind_name[] = {
	"unmapped", "anon", "read-only", "no-access", "thp", "shared",
	"hugetlb",
};

struct slot {
	enum kind kind;
	int memfd;			/* K_SHARED only */
	short shadow[SLOT_PAGES];	/* byte each page holds, or UNKNOWN */
};

struct world {
	char *arena;
	struct slot slot[SLOTS];
	int fd[NDEVICES];
	char *buf;			/* a good command buffer: BUF_SIZE */
	char *ro_buf;			/* a read-only one */
	struct hmm_rng rng;
	bool data_checks;
	unsigned long steps, commands, refused, moved_pages, checked_pages;
	unsigned long seconds;		/* how long the run took */
	struct hmm_history history;
};

static char *slot_addr(struct world *w, int s)
{
	return w->arena + s * SLOT_SIZE;
}

/* Where each slot is and what it holds, to read a kernel report against. */
static void dump_slots(struct world *w)
{
	int s;

	for (s = 0; s < SLOTS; s++)
		fprintf(stderr, "#   slot %2d at %p: %s\n", s, slot_addr(w, s),
			kind_name[w->slot[s].kind]);
}

static bool readable(enum kind k)
{
	return k != K_NONE && k != K_NOACCESS;
}

static bool writable(enum kind k)
{
	return readable(k) && k != K_RO;
}

/* Fill page p of slot s with byte v, through the CPU. */
static void cpu_fill(struct world *w, int s, unsigned long p, int v)
{
	memset(slot_addr(w, s) + p * PAGE, v, PAGE);
	w->slot[s].shadow[p] = (short)v;
}

/* Map slot s as kind k and fill it; a kind the system refuses is anon. */
static void slot_map(struct world *w, int s, enum kind k)
{
	struct slot *sl = &w->slot[s];
	char *addr = slot_addr(w, s);
	int prot = PROT_READ | PROT_WRITE, flags = MAP_FIXED | MAP_PRIVATE |
		   MAP_ANONYMOUS, fd = -1;
	unsigned long p;
	void *got;

	if (sl->memfd >= 0)
		close(sl->memfd);
	sl->memfd = -1;
	if (k == K_SHARED) {
		fd = memfd_create("hmm-fuzz", 0);
		if (fd < 0 || ftruncate(fd, SLOT_SIZE))
			k = K_ANON;
		else
			flags = MAP_FIXED | MAP_SHARED;
	}
	if (k == K_HUGETLB)
		flags |= MAP_HUGETLB;
	got = mmap(addr, SLOT_SIZE, prot, flags, k == K_SHARED ? fd : -1, 0);
	if (got == MAP_FAILED && k == K_HUGETLB) {
		k = K_ANON;
		flags &= ~MAP_HUGETLB;
		got = mmap(addr, SLOT_SIZE, prot, flags, -1, 0);
	}
	if (got != addr) {
		fprintf(stderr, "# mmap of a slot failed: %s\n", strerror(errno));
		abort();
	}
	if (k == K_SHARED)
		sl->memfd = fd;
	else if (fd >= 0)
		close(fd);
	if (k == K_THP)
		madvise(addr, SLOT_SIZE, MADV_HUGEPAGE);
	sl->kind = k;
	for (p = 0; p < SLOT_PAGES; p++)
		cpu_fill(w, s, p, (int)(hmm_rng_below(&w->rng, 255) + 1));
	if (k == K_RO || k == K_NOACCESS)
		mprotect(addr, SLOT_SIZE, k == K_RO ? PROT_READ : PROT_NONE);
}

static void slot_unmap(struct world *w, int s)
{
	munmap(slot_addr(w, s), SLOT_SIZE);
	w->slot[s].kind = K_NONE;
}

/* Check every known page of slot s (readable) against the shadow. */
static bool slot_check(struct world *w, int s)
{
	struct slot *sl = &w->slot[s];
	char *addr = slot_addr(w, s);
	unsigned long p;

	if (!readable(sl->kind) || !w->data_checks)
		return true;
	for (p = 0; p < SLOT_PAGES; p++) {
		char *page = addr + p * PAGE;

		if (sl->shadow[p] == UNKNOWN)
			continue;
		w->checked_pages++;
		if (page[0] != (char)sl->shadow[p] ||
		    page[PAGE - 1] != (char)sl->shadow[p] ||
		    page[hmm_rng_below(&w->rng, PAGE)] != (char)sl->shadow[p]) {
			fprintf(stderr, "# slot %d (%s) page %lu holds %#x, expected %#x\n",
				s, kind_name[sl->kind], p, page[0] & 0xff,
				sl->shadow[p] & 0xff);
			return false;
		}
	}
	return true;
}

static const unsigned long commands[] = {
	HMM_DMIRROR_READ, HMM_DMIRROR_WRITE, HMM_DMIRROR_MIGRATE_TO_DEV,
	HMM_DMIRROR_MIGRATE_TO_SYS, HMM_DMIRROR_SNAPSHOT,
	HMM_DMIRROR_EXCLUSIVE, HMM_DMIRROR_CHECK_EXCLUSIVE,
	HMM_DMIRROR_RELEASE, HMM_DMIRROR_MIGRATE_ON_FAULT_TO_DEV,
};

#define NR_COMMANDS	(sizeof(commands) / sizeof(commands[0]))

static const char *const command_name[] = {
	"READ", "WRITE", "MIGRATE_TO_DEV", "MIGRATE_TO_SYS", "SNAPSHOT",
	"EXCLUSIVE", "CHECK_EXCLUSIVE", "RELEASE", "MIGRATE_ON_FAULT_TO_DEV",
};

/* Does the command hand the range's data back in ptr? */
static bool returns_data(unsigned long cmd)
{
	return cmd == HMM_DMIRROR_READ || cmd == HMM_DMIRROR_MIGRATE_TO_DEV ||
	       cmd == HMM_DMIRROR_EXCLUSIVE ||
	       cmd == HMM_DMIRROR_MIGRATE_ON_FAULT_TO_DEV;
}

static int do_cmd(struct world *w, int dev, unsigned long cmd,
		  struct hmm_dmirror_cmd *c)
{
	int err = hmm_dmirror_ioctl(w->fd[dev], cmd, c);

	w->commands++;
	if (err)
		w->refused++;
	return err;
}

/*
 * HMM_DMIRROR_FLAGS on a device: a known mask is taken (FAIL_ALLOC makes
 * the next 2 MiB device page fail, so a whole THP goes page by page); an
 * unknown bit is refused with EINVAL.
 */
static bool step_flags(struct world *w)
{
	int dev = (int)hmm_rng_below(&w->rng, NDEVICES), err;
	struct hmm_dmirror_cmd c = { 0 };
	bool bad = !hmm_rng_below(&w->rng, 4);

	if (hmm_rng_below(&w->rng, 2))
		c.npages = HMM_DMIRROR_FLAG_FAIL_ALLOC;
	if (bad)
		c.npages |= 1ULL << (1 + hmm_rng_below(&w->rng, 63));
	hmm_note(&w->history, "FLAGS dev%d %#llx", dev,
		 (unsigned long long)c.npages);
	err = do_cmd(w, dev, HMM_DMIRROR_FLAGS, &c);
	if (err != (bad ? EINVAL : 0)) {
		fprintf(stderr, "# FLAGS %#llx: %s, expected %s\n",
			(unsigned long long)c.npages, strerror(err),
			bad ? "EINVAL" : "success");
		return false;
	}
	return true;
}

/*
 * A sane command on a window of a slot; false on a broken rule. One window
 * in eight is a whole PMD of the slot, which a THP moves to a private
 * device as one 2 MiB page; now and then the step sets the FLAGS instead.
 */
static bool step_sane(struct world *w)
{
	int s = (int)hmm_rng_below(&w->rng, SLOTS), dev = (int)hmm_rng_below(&w->rng, NDEVICES);
	unsigned int ci = (unsigned int)hmm_rng_below(&w->rng, NR_COMMANDS);
	unsigned long cmd = commands[ci], first, n, p;
	struct slot *sl = &w->slot[s];
	struct hmm_dmirror_cmd c = { 0 };
	int err;

	if (!hmm_rng_below(&w->rng, 16))
		return step_flags(w);
	if (!hmm_rng_below(&w->rng, 8)) {
		first = PMD_PAGES * hmm_rng_below(&w->rng, SLOT_PAGES / PMD_PAGES);
		n = PMD_PAGES;
	} else {
		first = hmm_rng_below(&w->rng, SLOT_PAGES);
		n = 1 + hmm_rng_below(&w->rng, hmm_rng_below(&w->rng, 4) ?
				      64 : SLOT_PAGES - first);
	}
	if (first + n > SLOT_PAGES)
		n = SLOT_PAGES - first;
	c.addr = (uintptr_t)(slot_addr(w, s) + first * PAGE);
	c.ptr = (uintptr_t)w->buf;
	c.npages = n;
	if (cmd == HMM_DMIRROR_WRITE) {
		for (p = 0; p < n; p++)
			memset(w->buf + p * PAGE, (int)(hmm_rng_below(&w->rng, 255) + 1), PAGE);
	}
	hmm_note(&w->history, "%s dev%d slot %d (%s) pages %lu+%lu", command_name[ci], dev, s,
		 kind_name[sl->kind], first, n);
	err = do_cmd(w, dev, cmd, &c);
	if (err && !hmm_dmirror_errno_documented(cmd, err) &&
	    !(err == EINTR && cmd == HMM_DMIRROR_RELEASE)) {
		fprintf(stderr, "# %s on a %s slot failed with %s, which it does not document\n",
			command_name[ci], kind_name[sl->kind], strerror(err));
		return false;
	}
	if (cmd == HMM_DMIRROR_WRITE) {
		/* Written, or maybe partly written: the shadow follows. */
		for (p = 0; p < n; p++)
			sl->shadow[first + p] = err ? UNKNOWN :
				(short)(unsigned char)w->buf[p * PAGE];
		return true;
	}
	if (cmd == HMM_DMIRROR_MIGRATE_TO_DEV && !err)
		w->moved_pages += n;
	if (cmd == HMM_DMIRROR_MIGRATE_ON_FAULT_TO_DEV && !err)
		w->moved_pages += c.cpages;
	if (err || !returns_data(cmd) || !w->data_checks)
		return true;
	for (p = 0; p < n; p++) {
		short want = sl->shadow[first + p];

		if (want == UNKNOWN)
			continue;
		w->checked_pages++;
		if (w->buf[p * PAGE] != (char)want ||
		    w->buf[p * PAGE + PAGE - 1] != (char)want) {
			fprintf(stderr, "# %s returned %#x for slot %d page %lu, expected %#x\n",
				command_name[ci], w->buf[p * PAGE] & 0xff, s,
				first + p, want & 0xff);
			return false;
		}
	}
	return true;
}

/*
 * What the uapi says of a hostile request: anything documented may come
 * back (V_MAYBE), it must fail somehow (V_FAIL), or it breaks one of the
 * first checks and must fail with that errno.
 */
enum verdict { V_MAYBE, V_FAIL, V_EINVAL, V_EFAULT };

static uint64_t hostile_addr(struct world *w, enum verdict *v)
{
	uint64_t good = (uintptr_t)slot_addr(w, (int)hmm_rng_below(&w->rng, SLOTS));

	switch (hmm_rng_below(&w->rng, 8)) {
	case 0:
		*v = V_EINVAL;
		return good + 1 + hmm_rng_below(&w->rng, PAGE - 1);
	case 1:
		return 0;			/* page 0: never mapped */
	case 2:
		return USER_TOP - PAGE;
	case 3:
		*v = V_EINVAL;
		return USER_TOP;
	case 4:
		*v = V_EINVAL;
		return 0xffff888000000000ULL;
	case 5:
		*v = V_EINVAL;
		return ~0ULL & ~(PAGE - 1);
	case 6:
		return (uintptr_t)w->arena + hmm_rng_below(&w->rng, SLOTS * SLOT_PAGES) * PAGE;
	default:
		return hmm_rng_next(&w->rng) & ~(PAGE - 1);
	}
}

static uint64_t hostile_npages(struct world *w, uint64_t addr, enum verdict *v)
{
	uint64_t n;

	switch (hmm_rng_below(&w->rng, 6)) {
	case 0:
		*v = V_EINVAL;
		return 0;
	case 1:
		n = ~0ULL;
		break;
	case 2:
		n = ~0ULL / PAGE;
		break;
	case 3:
		n = (1ULL << 52) + 1;
		break;
	case 4:
		n = 1 + hmm_rng_below(&w->rng, 2 * SLOT_PAGES);
		break;
	default:
		n = 1 + hmm_rng_below(&w->rng, 16);
		break;
	}
	/* The range wraps or leaves user space: EINVAL. */
	if (n > (USER_TOP - addr) / PAGE || addr >= USER_TOP)
		*v = V_EINVAL;
	return n;
}

/* Does the command write its results to ptr? */
static bool writes_ptr(unsigned long cmd)
{
	return cmd == HMM_DMIRROR_READ || cmd == HMM_DMIRROR_MIGRATE_TO_DEV ||
	       cmd == HMM_DMIRROR_SNAPSHOT || cmd == HMM_DMIRROR_EXCLUSIVE ||
	       cmd == HMM_DMIRROR_MIGRATE_ON_FAULT_TO_DEV;
}

static uint64_t hostile_ptr(struct world *w, unsigned long cmd,
			    enum verdict *v)
{
	switch (hmm_rng_below(&w->rng, 6)) {
	case 0:
		*v = V_EFAULT;
		return 0xffff888000000000ULL;
	case 1:
		*v = V_EFAULT;
		return ~0ULL - PAGE;
	case 2:
		*v = V_FAIL;
		return 0;		/* a user address, unmapped */
	case 3:					/* readable, not writable */
		if (writes_ptr(cmd))
			*v = V_FAIL;
		return (uintptr_t)w->ro_buf;
	case 4: return (uintptr_t)w->arena + hmm_rng_below(&w->rng, SLOTS) * SLOT_SIZE;
	default: return (uintptr_t)w->buf;
	}
}

/* Mark the pages of [start, start + len) that lie in the arena unknown. */
static void forget_range(struct world *w, uint64_t start, uint64_t len)
{
	uint64_t lo = (uintptr_t)w->arena, hi = lo + SLOTS * SLOT_SIZE;
	uint64_t end = start + len, a;

	if (end < start || end > hi)
		end = hi;	/* wrapped, or past the arena */
	for (a = start > lo ? start : lo; a < end; a += PAGE) {
		uint64_t off = a - lo;

		w->slot[off / SLOT_SIZE].shadow[(off % SLOT_SIZE) / PAGE] =
			UNKNOWN;
	}
}

/* Does the command use ptr at all? */
static bool uses_ptr(unsigned long cmd)
{
	return cmd != HMM_DMIRROR_MIGRATE_TO_SYS &&
	       cmd != HMM_DMIRROR_CHECK_EXCLUSIVE && cmd != HMM_DMIRROR_RELEASE;
}

static const char *verdict_name(enum verdict v)
{
	static const char *const name[] = {
		"anything documented", "a failure", "EINVAL", "EFAULT",
	};

	return name[v];
}

static bool step_hostile(struct world *w)
{
	int dev = (int)hmm_rng_below(&w->rng, NDEVICES), err, want = 0;
	unsigned int ci = (unsigned int)hmm_rng_below(&w->rng, NR_COMMANDS);
	unsigned long cmd = commands[ci];
	enum verdict va = V_MAYBE, vn = V_MAYBE, vp = V_MAYBE, v;
	struct hmm_dmirror_cmd c = { 0 };

	c.addr = hostile_addr(w, &va);
	c.npages = hostile_npages(w, c.addr, &vn);
	c.ptr = hostile_ptr(w, cmd, &vp);

	switch (hmm_rng_below(&w->rng, 10)) {
	case 0: {
		/*
		 * A command number the driver does not have (0x08 is FLAGS,
		 * 0x09 MIGRATE_ON_FAULT_TO_DEV).
		 */
		unsigned long bad[] = {
			_IOWR('H', 0x0a + hmm_rng_below(&w->rng, 0xee), struct hmm_dmirror_cmd),
			_IOR('H', 0x00, struct hmm_dmirror_cmd),
			_IOWR('H', 0x00, __u64),
			_IOWR('h', 0x00, struct hmm_dmirror_cmd),
		};
		unsigned long nr = bad[hmm_rng_below(&w->rng, 4)];

		hmm_note(&w->history, "ioctl %#lx (not a command)", nr);
		err = do_cmd(w, dev, nr, &c);
		if (err != ENOTTY) {
			fprintf(stderr, "# unknown command %#lx gave %s, not ENOTTY\n",
				nr, err ? strerror(err) : "success");
			return false;
		}
		return true;
	}
	case 1: {
		/* An argument pointer that cannot be read. */
		void *arg = hmm_rng_below(&w->rng, 2) ? NULL : (void *)0xffff888000000000ULL;

		hmm_note(&w->history, "%s with argument pointer %p", command_name[ci], arg);
		w->commands++;
		err = ioctl(w->fd[dev], cmd, arg) ? errno : 0;
		if (err != EFAULT) {
			fprintf(stderr, "# %s with a bad argument pointer gave %s, not EFAULT\n",
				command_name[ci], err ? strerror(err) : "success");
			return false;
		}
		w->refused++;
		return true;
	}
	default:
		break;
	}

	/* The header's order: the range first, then ptr. */
	v = va != V_MAYBE ? va : vn;
	if (v == V_MAYBE && uses_ptr(cmd))
		v = vp;
	if (cmd == HMM_DMIRROR_RELEASE)
		v = V_MAYBE;	/* RELEASE ignores the fields */
	hmm_note(&w->history, "%s dev%d addr %#llx npages %#llx ptr %#llx: expect %s",
		 command_name[ci], dev, (unsigned long long)c.addr,
		 (unsigned long long)c.npages, (unsigned long long)c.ptr,
		 verdict_name(v));
	err = do_cmd(w, dev, cmd, &c);

	/* What it may have changed: the range (WRITE), or ptr's buffer. */
	if (cmd == HMM_DMIRROR_WRITE)
		forget_range(w, c.addr, c.npages * PAGE);
	else if (writes_ptr(cmd))
		forget_range(w, c.ptr, cmd == HMM_DMIRROR_SNAPSHOT ?
			     c.npages : c.npages * PAGE);

	switch (v) {
	case V_MAYBE:
	case V_FAIL:
		if (!err && v == V_FAIL) {
			fprintf(stderr, "# %s: a request that cannot succeed succeeded\n",
				command_name[ci]);
			return false;
		}
		if (err && err != EINVAL && err != EFAULT && err != EINTR &&
		    !hmm_dmirror_errno_documented(cmd, err)) {
			fprintf(stderr, "# %s gave undocumented %s\n",
				command_name[ci], strerror(err));
			return false;
		}
		return true;
	default:
		want = v == V_EINVAL ? EINVAL : EFAULT;
		if (err != want) {
			fprintf(stderr, "# %s: invalid request gave %s, not %s\n",
				command_name[ci], err ? strerror(err) : "success",
				verdict_name(v));
			return false;
		}
		return true;
	}
}

static bool step_fork(struct world *w)
{
	int s = (int)hmm_rng_below(&w->rng, SLOTS), status;
	unsigned long p = hmm_rng_below(&w->rng, SLOT_PAGES);
	pid_t child;

	hmm_note(&w->history, "fork; child checks slot %d (%s) and writes page %lu",
		 s, kind_name[w->slot[s].kind], p);
	child = fork();
	if (child < 0)
		return true;
	if (child == 0) {
		bool ok = slot_check(w, s);

		if (w->slot[s].kind != K_SHARED && writable(w->slot[s].kind))
			memset(slot_addr(w, s) + p * PAGE, 0x77, PAGE);
		_exit(ok ? 0 : 1);
	}
	if (waitpid(child, &status, 0) != child || !WIFEXITED(status) ||
	    WEXITSTATUS(status)) {
		fprintf(stderr, "# the forked child saw wrong data in slot %d\n", s);
		return false;
	}
	/* A private page the child wrote is the child's copy, not ours. */
	return slot_check(w, s);
}

static bool step_mm(struct world *w)
{
	int s = (int)hmm_rng_below(&w->rng, SLOTS), t;
	struct slot *sl = &w->slot[s];
	unsigned long p = hmm_rng_below(&w->rng, SLOT_PAGES);
	char *page = slot_addr(w, s) + p * PAGE;

	switch (hmm_rng_below(&w->rng, 10)) {
	case 0:
		hmm_note(&w->history, "unmap slot %d", s);
		slot_unmap(w, s);
		return true;
	case 1: {
		enum kind k = (enum kind)(1 + hmm_rng_below(&w->rng, K_COUNT - 1));

		hmm_note(&w->history, "map slot %d as %s", s, kind_name[k]);
		slot_map(w, s, k);
		return true;
	}
	case 2:
		if (!readable(sl->kind) || sl->kind == K_HUGETLB ||
		    sl->kind == K_SHARED)
			return true;
		hmm_note(&w->history, "mprotect slot %d read-only", s);
		if (!mprotect(slot_addr(w, s), SLOT_SIZE, PROT_READ))
			sl->kind = K_RO;
		return true;
	case 3:
		if (sl->kind == K_NONE || sl->kind == K_SHARED ||
		    sl->kind == K_HUGETLB)
			return true;
		hmm_note(&w->history, "madvise(DONTNEED) slot %d page %lu", s, p);
		if (!madvise(page, PAGE, MADV_DONTNEED))
			sl->shadow[p] = 0;	/* private anonymous: zeroes */
		return true;
	case 4:
		/* mremap slot s over slot t: the data moves with it. */
		t = (int)hmm_rng_below(&w->rng, SLOTS);
		if (t == s || sl->kind == K_NONE || sl->kind == K_HUGETLB)
			return true;
		hmm_note(&w->history, "mremap slot %d (%s) onto slot %d", s,
			 kind_name[sl->kind], t);
		if (w->slot[t].memfd >= 0)
			close(w->slot[t].memfd);
		if (mremap(slot_addr(w, s), SLOT_SIZE, SLOT_SIZE,
			   MREMAP_MAYMOVE | MREMAP_FIXED, slot_addr(w, t)) ==
		    MAP_FAILED) {
			slot_unmap(w, t);
			w->slot[t].memfd = -1;
			return true;
		}
		w->slot[t] = *sl;
		sl->kind = K_NONE;
		sl->memfd = -1;
		return slot_check(w, t);
	case 5:
		return step_fork(w);
	case 6:
	case 7:
		if (!writable(sl->kind))
			return true;
		hmm_note(&w->history, "CPU writes slot %d page %lu", s, p);
		cpu_fill(w, s, p, (int)(hmm_rng_below(&w->rng, 255) + 1));
		return true;
	default:
		if (!readable(sl->kind) || sl->shadow[p] == UNKNOWN ||
		    !w->data_checks)
			return true;
		hmm_note(&w->history, "CPU reads slot %d page %lu", s, p);
		w->checked_pages++;
		if (__atomic_load_n(page, __ATOMIC_RELAXED) != (char)sl->shadow[p]) {
			fprintf(stderr, "# CPU read %#x from slot %d page %lu, expected %#x\n",
				page[0] & 0xff, s, p, sl->shadow[p] & 0xff);
			return false;
		}
		return true;
	}
}

/*
 * The run's watchdog (hmm-common.h): if no step completes for a minute, the
 * last steps, the slots and the seed go to the console, then the kernel's
 * view of blocked tasks and of every CPU, so that a hang is reported with
 * what led to it rather than only as a time-out. The run goes on: the
 * suite's time limit ends a real hang.
 */
struct fuzz_watch {
	struct world *w;
	uint64_t seed;
	unsigned long calls;
};

/* Seconds on the monotonic clock. */
static unsigned long now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* A long run says how far it is, once a minute. */
static void fuzz_minute(void *arg, unsigned long steps, unsigned long seconds)
{
	struct fuzz_watch *fw = arg;

	fprintf(stderr, "# step %lu of %lu after %lu s\n", steps, fw->calls,
		seconds);
}

static void fuzz_hang(void *arg, unsigned long steps)
{
	struct fuzz_watch *fw = arg;

	fprintf(stderr, "# at step %lu (HMM_FUZZ_SEED=%llu); the steps before it:\n",
		steps, (unsigned long long)fw->seed);
	hmm_history_dump(&fw->w->history, "step");
	dump_slots(fw->w);
}

/* The racing case's second thread: slots vanish and come back. */
struct racer {
	struct world *w;
	bool stop;		/* set by the test, read with __atomic */
	unsigned long rounds;
};

static void *race_mm(void *arg)
{
	struct racer *r = arg;
	struct hmm_rng rng;

	hmm_rng_seed(&rng, hmm_mix(r->w->rng.state));
	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		uint64_t pick = hmm_rng_next(&rng);
		char *addr;

		addr = slot_addr(r->w, (int)(pick % SLOTS));
		if (pick & 1)
			munmap(addr, SLOT_SIZE);
		else
			mmap(addr, SLOT_SIZE, PROT_READ | PROT_WRITE,
			     MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		r->rounds++;
		usleep(50);
	}
	return NULL;
}

/*
 * The run's seed, picked once before the harness forks its cases, so that
 * one HMM_FUZZ_SEED replays all of them.
 */
static uint64_t base_seed;

__attribute__((constructor)) static void pick_seed(void)
{
	base_seed = hmm_seed_from_env("HMM_FUZZ_SEED");
}

FIXTURE(fuzz)
{
	struct world w;
	uint64_t seed;
	unsigned long calls;
};

FIXTURE_SETUP(fuzz)
{
	const char *env;
	int i;

	memset(&self->w, 0, sizeof(self->w));
	/* Each case its own stream, derived from the run's seed. */
	self->seed = base_seed;
	hmm_rng_seed(&self->w.rng, base_seed + hmm_name_hash(_metadata->name));
	env = getenv("HMM_FUZZ_CALLS");
	self->calls = env ? strtoul(env, NULL, 0) : 20000;
	TH_LOG("%lu steps; replay with HMM_FUZZ_SEED=%llu",
	       self->calls, (unsigned long long)base_seed);

	for (i = 0; i < NDEVICES; i++) {
		char path[32];

		snprintf(path, sizeof(path), "/dev/hmm_dmirror%d", i);
		self->w.fd[i] = open(path, O_RDWR);
		ASSERT_GE(self->w.fd[i], 0) TH_LOG("%s: %s", path, strerror(errno));
	}
	/* The arena: reserved whole, then mapped slot by slot. */
	self->w.arena = mmap(NULL, SLOTS * SLOT_SIZE + SLOT_SIZE, PROT_NONE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ASSERT_NE(self->w.arena, MAP_FAILED);
	self->w.arena = (char *)(((uintptr_t)self->w.arena + SLOT_SIZE - 1) &
				 ~(SLOT_SIZE - 1));
	/* The command buffer, with a no-access guard page after it. */
	self->w.buf = mmap(NULL, BUF_SIZE + PAGE, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	ASSERT_NE(self->w.buf, MAP_FAILED);
	ASSERT_EQ(mprotect(self->w.buf + BUF_SIZE, PAGE, PROT_NONE), 0);
	self->w.ro_buf = mmap(NULL, SLOT_SIZE, PROT_READ,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(self->w.ro_buf, MAP_FAILED);
	self->w.data_checks = true;
	for (i = 0; i < SLOTS; i++) {
		self->w.slot[i].memfd = -1;
		slot_map(&self->w, i, (enum kind)(1 + i % (K_COUNT - 1)));
	}
}

FIXTURE_TEARDOWN(fuzz)
{
	int i;

	for (i = 0; i < NDEVICES; i++)
		if (self->w.fd[i] >= 0)
			close(self->w.fd[i]);
	for (i = 0; i < SLOTS; i++)
		if (self->w.slot[i].memfd >= 0)
			close(self->w.slot[i].memfd);
}

/*
 * Run the steps: out of 16, @sane are sane commands, @hostile hostile ones,
 * and the rest mm operations.
 */
static bool fuzz_steps(struct world *w, unsigned long calls, int sane,
		       int hostile)
{
	int s;

	for (w->steps = 0; w->steps < calls; w->steps++) {
		unsigned long pick = hmm_rng_below(&w->rng, 16);
		bool ok;

		if (pick < (unsigned long)sane)
			ok = step_sane(w);
		else if (pick < (unsigned long)(sane + hostile))
			ok = step_hostile(w);
		else
			ok = step_mm(w);
		if (ok && w->steps % 997 == 0)
			for (s = 0; s < SLOTS && ok; s++)
				ok = slot_check(w, s);
		if (!ok) {
			fprintf(stderr, "# failed at step %lu; the steps before it:\n",
				w->steps);
			hmm_history_dump(&w->history, "step");
			return false;
		}
	}
	return true;
}

static bool fuzz_run(struct world *w, unsigned long calls, int sane,
		     int hostile)
{
	struct fuzz_watch fw = { .w = w, .seed = base_seed, .calls = calls };
	struct hmm_watchdog wd = {
		.progress = &w->steps,
		.hang_after = 60,
		.on_hang = fuzz_hang,
		.on_minute = fuzz_minute,
		.arg = &fw,
	};
	unsigned long start = now_seconds();
	bool ok;

	if (hmm_watchdog_start(&wd))
		return false;
	ok = fuzz_steps(w, calls, sane, hostile);
	w->seconds = now_seconds() - start;
	hmm_watchdog_stop(&wd);
	return ok;
}

static void report(struct __test_metadata *_metadata, struct world *w)
{
	TH_LOG("%lu steps in %lu s, %lu commands (%lu refused), %lu pages moved, %lu verified",
	       w->steps, w->seconds, w->commands, w->refused, w->moved_pages,
	       w->checked_pages);
}

/* Sane commands and mm operations only: the data must always be right. */
TEST_F_TIMEOUT(fuzz, sane_commands_and_mm, 7200)
{
	ASSERT_TRUE(fuzz_run(&self->w, self->calls, 10, 0));
	report(_metadata, &self->w);
}

/* Hostile commands only: every invalid one refused with its errno. */
TEST_F_TIMEOUT(fuzz, hostile_commands, 7200)
{
	ASSERT_TRUE(fuzz_run(&self->w, self->calls, 0, 16));
	report(_metadata, &self->w);
}

/* All three mixed. */
TEST_F_TIMEOUT(fuzz, mixed, 7200)
{
	ASSERT_TRUE(fuzz_run(&self->w, self->calls, 6, 5));
	report(_metadata, &self->w);
}

/* Mixed, with another thread unmapping and remapping slots throughout. */
TEST_F_TIMEOUT(fuzz, racing_munmap, 7200)
{
	struct racer r = { .w = &self->w };
	pthread_t thread;
	bool ok;

	self->w.data_checks = false;
	ASSERT_EQ(pthread_create(&thread, NULL, race_mm, &r), 0);
	/*
	 * The other thread does the mm operations; this one never touches
	 * the arena itself, which may vanish under it at any moment.
	 */
	ok = fuzz_run(&self->w, self->calls, 10, 6);
	__atomic_store_n(&r.stop, true, __ATOMIC_RELEASE);
	ASSERT_EQ(pthread_join(thread, NULL), 0);
	ASSERT_TRUE(ok);
	report(_metadata, &self->w);
	TH_LOG("%lu unmaps and remaps raced with the commands", r.rounds);
}

TEST_HARNESS_MAIN
