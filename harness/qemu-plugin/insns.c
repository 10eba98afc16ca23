// SPDX-License-Identifier: GPL-2.0
/*
 * insns: a QEMU TCG plugin that counts the guest instructions executed at
 * each translation block, inside windows the guest opens and closes itself.
 *
 * Why our own: the kernel's function profiler (make bench PROFILE=1) adds a
 * hook to every call it counts, which makes small functions look far more
 * expensive than they are, and TCG emulates no PMU for perf to read. Under
 * -icount shift=0 one guest instruction is one nanosecond of the guest's
 * clock, so the instructions a function executes are exactly what it adds
 * to a figure of `make bench`. QEMU 7.2's plugin API cannot read guest
 * registers, so the guest marks its windows by entering three functions
 * nothing else runs while the benchmark does (three system calls, see
 * harness/guest/hmm-bench.c); their addresses come from System.map.
 *
 * Arguments (-plugin insns.so,on=HEX,off=HEX,dump=HEX,out=FILE):
 *   on    entering it opens a window
 *   off   entering it closes the window
 *   dump  entering it appends the instructions counted in all windows since
 *         the last dump to FILE, one line per block, and starts again:
 *           window N
 *           <start address> <instructions in the block> <instructions run>
 *
 * Each block's executions are counted by an inline add (no callback per
 * block); a window's count is the difference between its close and its
 * open. The vCPUs run in one host thread under -icount, so the counters
 * need no atomics. A block left early by an exception counts whole.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

/* A translated block, by start address and length (one entry for both). */
struct block {
	uint64_t vaddr;
	uint64_t insns;
	uint64_t runs;		/* executions since translated (inline add) */
	uint64_t opened;	/* runs when the current window opened */
	uint64_t counted;	/* instructions counted since the last dump */
};

/*
 * A fixed table: the inline adds point into it, so it never moves. 2^21
 * blocks is ten times what a boot of the guest translates.
 */
#define TABLE_BITS	21
#define TABLE_SIZE	(1UL << TABLE_BITS)

static struct block *table;
static uint32_t *used;		/* indices of the table's entries in use */
static size_t nused;
static uint64_t on_addr, off_addr, dump_addr;
static int open_now;
static unsigned int windows;
static FILE *out;

static struct block *block_of(uint64_t vaddr, uint64_t insns)
{
	uint64_t h = (vaddr ^ (insns << 56)) * 0x9e3779b97f4a7c15ULL;
	size_t i = h >> (64 - TABLE_BITS);

	for (;; i = (i + 1) & (TABLE_SIZE - 1)) {
		struct block *b = &table[i];

		if (b->insns == insns && b->vaddr == vaddr)
			return b;
		if (!b->insns) {
			if (nused == TABLE_SIZE - 1) {
				fprintf(stderr, "insns: table full\n");
				abort();
			}
			b->vaddr = vaddr;
			b->insns = insns;
			/* Translated inside a window: counted from zero. */
			used[nused++] = i;
			return b;
		}
	}
}

static void window_open(unsigned int vcpu, void *udata)
{
	size_t k;

	if (open_now)
		return;
	for (k = 0; k < nused; k++)
		table[used[k]].opened = table[used[k]].runs;
	open_now = 1;
}

static void window_close(unsigned int vcpu, void *udata)
{
	size_t k;

	if (!open_now)
		return;
	for (k = 0; k < nused; k++) {
		struct block *b = &table[used[k]];

		b->counted += (b->runs - b->opened) * b->insns;
		b->opened = b->runs;
	}
	open_now = 0;
}

static void window_dump(unsigned int vcpu, void *udata)
{
	size_t k;

	fprintf(out, "window %u\n", windows++);
	for (k = 0; k < nused; k++) {
		struct block *b = &table[used[k]];

		if (!b->counted)
			continue;
		fprintf(out, "%" PRIx64 " %" PRIu64 " %" PRIu64 "\n",
			b->vaddr, b->insns, b->counted);
		b->counted = 0;
	}
	fflush(out);
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	uint64_t vaddr = qemu_plugin_tb_vaddr(tb);
	struct block *b = block_of(vaddr, qemu_plugin_tb_n_insns(tb));

	qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64,
						 &b->runs, 1);
	if (vaddr == on_addr)
		qemu_plugin_register_vcpu_tb_exec_cb(tb, window_open,
						     QEMU_PLUGIN_CB_NO_REGS,
						     NULL);
	else if (vaddr == off_addr)
		qemu_plugin_register_vcpu_tb_exec_cb(tb, window_close,
						     QEMU_PLUGIN_CB_NO_REGS,
						     NULL);
	else if (vaddr == dump_addr)
		qemu_plugin_register_vcpu_tb_exec_cb(tb, window_dump,
						     QEMU_PLUGIN_CB_NO_REGS,
						     NULL);
}

static void at_exit(qemu_plugin_id_t id, void *udata)
{
	if (out)
		fclose(out);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id,
					   const qemu_info_t *info,
					   int argc, char **argv)
{
	const char *path = NULL;
	int i;

	for (i = 0; i < argc; i++) {
		char *eq = strchr(argv[i], '=');

		if (!eq) {
			fprintf(stderr, "insns: %s: not NAME=VALUE\n", argv[i]);
			return -1;
		}
		*eq++ = '\0';
		if (!strcmp(argv[i], "on"))
			on_addr = strtoull(eq, NULL, 16);
		else if (!strcmp(argv[i], "off"))
			off_addr = strtoull(eq, NULL, 16);
		else if (!strcmp(argv[i], "dump"))
			dump_addr = strtoull(eq, NULL, 16);
		else if (!strcmp(argv[i], "out"))
			path = eq;
		else {
			fprintf(stderr, "insns: unknown argument %s\n", argv[i]);
			return -1;
		}
	}
	if (!on_addr || !off_addr || !dump_addr || !path) {
		fprintf(stderr, "insns: needs on=, off=, dump= and out=\n");
		return -1;
	}
	out = fopen(path, "w");
	table = calloc(TABLE_SIZE, sizeof(*table));
	used = calloc(TABLE_SIZE, sizeof(*used));
	if (!out || !table || !used) {
		fprintf(stderr, "insns: cannot open %s or allocate\n", path);
		return -1;
	}
	qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
	qemu_plugin_register_atexit_cb(id, at_exit, NULL);
	return 0;
}
