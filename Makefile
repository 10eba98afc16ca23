# HMM for Linux 6.12: build our kernel, boot it in QEMU, run the suites.
#
#   make run            boot our kernel and show HMM working (the demo)
#   make check          run every suite; ends with "N passed, N failed"
#   make check-debug    the same on flavour ours's debug kernel (KASAN,
#                       lockdep, DEBUG_VM, kmemleak, ...), build/ours-debug
#   make bench          our core against upstream's, same driver, same guest
#   make help           every target, one line each
#
# FLAVOUR=ours (default: the base with our files and patches) or
# FLAVOUR=upstream (the pristine base). `make check FLAVOURS="ours upstream"`
# checks both in one run with one summary. DEBUG=1 makes any stage work on
# the flavour's debug kernel (configs/debug.config) in build/<flavour>-debug.

FLAVOUR  ?= ours
FLAVOURS ?= $(FLAVOUR)
DEBUG    ?= 0
H        := harness
B        := build
export FLAVOUR DEBUG

# Knobs: what each target reads from the environment (or `make VAR=...`).
#> FLAVOUR        every stage: ours (default) or upstream
#> FLAVOURS       check, report: the flavours of one run and summary
#> DEBUG          every stage: 1 for the flavour's debug kernel (build/<flavour>-debug)
#> MODE           boot, parse, run, shell: the boot mode (harness/modes; default the first)
#> MODES          check, report: the boot modes of a run (default: every mode)
#> SUITES         initramfs, check: only the suites named (harness/suites)
#> TESTS          initramfs, check: only the tests named, in the suites on the kselftest harness (its -t)
#> TIMEOUT        boot, check, run, bench: the guest's time limit in seconds (check: the suites' limits added up)
#> LIMIT_SCALE    initramfs, boot: multiplies every time limit (default 1; 40 with DEBUG=1)
#> ICOUNT         boot, check, bench: 1 for a guest clock that follows instructions executed
#> DRY_RUN        boot: 1 prints the guest's folder, time limit and QEMU command instead of booting
#> JOBS           build, users, series-check: parallel compile jobs (default: nproc)
#> CONFIGS        config: the fragments of configs/ to merge (default: guest hmm pagemaps trace dma [kunit hmm-dma] [debug])
#> TARBALL        tree: the base (default /usr/src/linux-source-6.12.tar.xz)
#> BUILD          every stage: the build folder (default build/)
#> CC             initramfs: the compiler of the guest programs (default gcc)
#> KERNEL         boot: a bzImage to boot instead of the flavour's
#> INITRD         boot: an initramfs to boot instead of the flavour's
#> BOOT_OUT       boot: the folder for the console log instead of the flavour's
#> FUZZ_CALLS     check, fuzz: steps per fuzz case (check 1500, fuzz 250000)
#> FUZZ_SEED      check, fuzz: replay a fuzz run
#> STRESS_SECONDS check, stress: length of the stress run (check 25, stress 600)
#> STRESS_SEED    check, stress: replay a stress run
#> STRESS_FAIL_ALLOC check, stress: 1 (default) makes some 2 MiB device allocations fail, 0 does not
#> STRESS_FOCUS   check, stress: thp aims the run at THPs split while unmapped (all ranges THP, whole-range moves)
#> STRESS_SKIP    check, stress: operations to leave out, comma-separated (names as in the report)
#> REGRESSIONS_UPSTREAM_BUGS check: 1 runs on flavour upstream the regression tests that hang its guest
#> ROUNDS         bench: boots per flavour (default 2)
#> RUNS           bench: the whole comparison this many times, then stability-*.tsv
#> BENCH_SIZES    bench: buffer sizes in MiB (default "2 256")
#> BENCH_FIGURES  bench: only these figures (default: all)
#> BENCH_REPS     bench: timed repetitions per figure and boot
#> BENCH_OUT      bench: the results folder (default build/bench)
#> PROFILE        bench: 1 profiles flavour ours instead of comparing
#> INSNS          bench: 1 counts the instructions of each function per figure, both flavours (QEMU plugin);
#>                hmm ours against ours without HMM's tracepoints, trace without the tracing configs
#> INSNS_TOP      bench: functions listed per figure by INSNS (default 40, 0 for all)
#> TRACE_COST     bench: 1 compares flavour ours with and without the tracing configs instead;
#>                hmm without HMM's tracepoints; placebo with the same code moved (noise floor)

.PHONY: help setup tree config build initramfs boot parse report \
	check check-debug check-flavour parser-test kernel-doc docs users bench fuzz stress series series-check \
	run shell clean distclean
.DEFAULT_GOAL := help

help: ## this list, and the knobs each target reads
	@echo "Targets (FLAVOUR=$(FLAVOUR); stages run their predecessors):"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | \
		sed 's/:.*## /\t/' | awk -F'\t' '{ printf "  %-13s %s\n", $$1, $$2 }'
	@echo "Knobs (environment or make VAR=value; the targets that read them):"
	@sed -n 's/^#> /  /p' $(MAKEFILE_LIST)

setup: ## install what is missing (apt, idempotent)
	@$(H)/setup.sh

tree: setup ## unpack the base once; lay our files and patches over it
	@$(H)/tree.sh

config: tree ## allnoconfig + configs/*.config via merge_config.sh
	@$(H)/config.sh

build: config ## build bzImage and modules (incremental)
	@$(H)/build.sh

initramfs: build ## busybox, static test programs, modules into a cpio
	@$(H)/initramfs.sh

boot: initramfs ## boot the guest in MODE and run its suites (console log only)
	@$(H)/boot.sh check $(MODE)

parse: ## parse the last boot's console in MODE into results (no boot)
	@$(H)/parse.sh $(MODE)

report: ## summarise parsed results of FLAVOURS into build/check/summary.tsv
	@$(H)/report.sh $(FLAVOURS)

parser-test: tree ## the parser's own tests on recorded console logs
	@$(H)/parser-test.sh

kernel-doc: tree ## kernel-doc -Wall on our C files and headers (suite docs)
	@$(H)/docs.sh kernel-doc

docs: override FLAVOUR := ours
docs: tree ## kernel-doc check, then Sphinx: Documentation/mm with no warning of ours
	@$(H)/docs.sh

# The stages record their results and the report gives the verdict: its
# exit status is the run's.
check: setup parser-test ## every suite for FLAVOURS in every boot mode (MODES), then the summary
	@$(H)/docs.sh kernel-doc --record
	@for f in $(FLAVOURS); do \
		$(MAKE) --no-print-directory FLAVOUR=$$f check-flavour || exit 1; \
	done
	@$(H)/report.sh $(FLAVOURS)

check-flavour: initramfs
	@$(H)/check.sh

# The debug kernel is 15 to 40 times slower than the normal one under TCG:
# a longer time limit, and the guest clock follows instructions executed
# (ICOUNT=1), so that time limits inside the guest (kselftest's 30 s per
# test in upstream's unmodified hmm-tests, hung task, soft lockup) measure
# the guest's work, not the host's load or the checkers' cost.
check-debug: setup ## every suite on flavour ours's debug kernel (build/ours-debug)
	@$(MAKE) --no-print-directory check FLAVOURS=ours DEBUG=1 \
		TIMEOUT=$(or $(TIMEOUT),7200) ICOUNT=$(or $(ICOUNT),1)

users: setup ## compile in-tree HMM users (nouveau, amdgpu, xe, RDMA) against FLAVOUR
	@$(H)/users.sh

# Their time limits follow from FUZZ_CALLS and STRESS_SECONDS (harness/suites).
fuzz: setup ## a long fuzz of our driver: FUZZ_CALLS steps per case (4 cases), FUZZ_SEED
	@$(MAKE) --no-print-directory check FLAVOURS=ours SUITES=fuzz \
		FUZZ_CALLS=$(or $(FUZZ_CALLS),250000)

stress: setup ## a long stress run: STRESS_SECONDS (default 600), STRESS_SEED to replay
	@$(MAKE) --no-print-directory check FLAVOURS=ours SUITES=stress \
		STRESS_SECONDS=$(or $(STRESS_SECONDS),600) \
		STRESS_FAIL_ALLOC=$(or $(STRESS_FAIL_ALLOC),1)

series: setup ## the project as a patch series on the pristine base, in build/series/
	@$(H)/series.sh

series-check: series ## apply the series on a fresh base: per-patch build, checkpatch, kernel-doc, W=1
	@$(H)/series-check.sh

bench: setup ## our core vs upstream's: table, build/bench/results.tsv, bench.png
	@$(H)/bench.sh

run: initramfs ## boot and run the demo: mirror, migrate, fault back
	@$(H)/boot.sh run $(MODE)

shell: initramfs ## boot to an interactive busybox shell (Ctrl-A X quits)
	@$(H)/boot.sh shell $(MODE)

clean: ## remove the flavour's build outputs (keeps the unpacked base)
	rm -rf $(B)/$(FLAVOUR)$(if $(filter 1,$(DEBUG)),-debug) $(B)/check

distclean: ## remove build/ entirely
	rm -rf $(B)
