# HMM for Linux 6.12: build our kernel, boot it in QEMU, run the suites.
#
#   make run            boot our kernel and show HMM working (the demo)
#   make check          run every suite; ends with "N passed, N failed"
#   make bench          our core against upstream's, same driver, same guest
#   make help           every target, one line each
#
# FLAVOUR=ours (default: the base with our files and patches) or
# FLAVOUR=upstream (the pristine base). `make check FLAVOURS="ours upstream"`
# checks both in one run with one summary.

FLAVOUR  ?= ours
FLAVOURS ?= $(FLAVOUR)
H        := harness
B        := build
export FLAVOUR

.PHONY: help setup tree config build initramfs boot parse report \
	check check-flavour parser-test kernel-doc docs users bench fuzz series \
	run shell clean distclean
.DEFAULT_GOAL := help

help: ## this list
	@echo "Targets (FLAVOUR=$(FLAVOUR); stages run their predecessors):"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | \
		sed 's/:.*## /\t/' | awk -F'\t' '{ printf "  %-13s %s\n", $$1, $$2 }'

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

boot: initramfs ## boot the guest and run the suites (console log only)
	@$(H)/boot.sh check

parse: ## parse the last boot's console into results (no boot)
	@$(H)/parse.sh

report: ## summarise parsed results of FLAVOURS into build/check/summary.tsv
	@$(H)/report.sh $(FLAVOURS)

parser-test: tree ## the parser's own tests on recorded console logs
	@$(H)/parser-test.sh

kernel-doc: tree ## kernel-doc -Wall on our C files and headers (suite docs)
	@$(H)/docs.sh kernel-doc

docs: override FLAVOUR := ours
docs: tree ## kernel-doc check, then Sphinx: Documentation/mm with no warning of ours
	@$(H)/docs.sh

check: setup parser-test ## every suite for FLAVOURS, then the summary
	@$(H)/docs.sh kernel-doc || true
	@for f in $(FLAVOURS); do \
		$(MAKE) --no-print-directory FLAVOUR=$$f check-flavour || exit 1; \
	done
	@$(H)/report.sh $(FLAVOURS)

check-flavour: boot
	@$(H)/parse.sh || true

users: setup ## compile in-tree HMM users (nouveau, amdgpu, xe, RDMA) against FLAVOUR
	@$(H)/users.sh

fuzz: setup ## a long fuzz of our driver: FUZZ_CALLS steps per case (4 cases), FUZZ_SEED
	@$(MAKE) --no-print-directory check FLAVOURS=ours SUITES=fuzz \
		FUZZ_CALLS=$(or $(FUZZ_CALLS),250000) TIMEOUT=$(or $(TIMEOUT),14400)

series: setup ## the project as a patch series on the pristine base, in build/series/
	@$(H)/series.sh

bench: setup ## our core vs upstream's: table, build/bench/results.tsv, bench.png
	@$(H)/bench.sh

run: initramfs ## boot and run the demo: mirror, migrate, fault back
	@$(H)/boot.sh run

shell: initramfs ## boot to an interactive busybox shell (Ctrl-A X quits)
	@$(H)/boot.sh shell

clean: ## remove the flavour's build outputs (keeps the unpacked base)
	rm -rf $(B)/$(FLAVOUR) $(B)/check

distclean: ## remove build/ entirely
	rm -rf $(B)
