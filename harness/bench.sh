#!/usr/bin/env bash
# make bench: our core against upstream 6.12, measured in the same way.
#
# Builds flavours upstream and ours with the same config, then boots them
# alternately, ROUNDS times each (upstream ours upstream ours ...), with the
# same QEMU options, so that whatever the host does falls on both. Each boot
# runs harness/guest/hmm-bench.c once with upstream's lib/test_hmm.c built
# for that flavour (only the core differs) and, on ours, once more with our
# driver. harness/bench-report.py turns the lines into the table,
# build/bench/results.tsv and build/bench/bench.png.
#
#   ROUNDS=2          boots per flavour (icount figures repeat exactly)
#   ICOUNT=1          guest clock follows instructions (reproducible; the
#                     default); ICOUNT=0 measures TCG wall-clock time
#   BENCH_SIZES="2 256"      buffer sizes in MiB
#   BENCH_FIGURES="to_dev evict"  only these figures (default: all)
#   BENCH_REPS=N      timed repetitions per figure and boot, after an untimed
#                     one (default 9, or 5 from 16 MiB)
#   RUNS=3            the whole measurement RUNS times; then
#                     build/bench/stability-{icount,tcg}.tsv holds the min
#                     and max of each speed-up over the runs
#   BENCH_OUT=DIR     where the results go (default build/bench); runs
#                     with different BENCH_OUT may overlap: each boots
#                     its own copies of the kernels and initramfs
#   PROFILE=1         instead of the comparison: flavour ours built with the
#                     function profiler (configs/profile.config, in
#                     build/profile/), one boot, each figure once with the
#                     profiler on; the summary in build/bench/profile.txt
#   INSNS=1           instead of the timings: the instructions each function
#                     executes in each figure, both flavours side by side
#                     (build/bench/insns.txt). Each flavour boots once under
#                     a QEMU plugin of ours (harness/qemu-plugin/insns.c,
#                     built against the installed QEMU's plugin header,
#                     fetched once from Debian's source package) that
#                     counts the instructions of every block run in the
#                     timed windows; BENCH_FIGURES defaults to to_dev
#                     to_sys cpu_fault, BENCH_REPS to 3. INSNS=hmm puts
#                     flavour ours with HMM's tracepoints compiled out (as
#                     TRACE_COST=hmm) next to ours instead, INSNS=trace
#                     ours without the tracing configs (as TRACE_COST=1)
#   DMA=0             leave out the DMA figures: by default each run also
#                     boots flavour ours once in boot mode dma (QEMU's edu
#                     DMA engine behind the IOMMU) and times test_hmm_dma's
#                     dma_map and device read (dma_read) at BENCH_DMA_SIZES
#                     (MiB, default 2), BENCH_DMA_REPS times (default 3),
#                     in the thread's CPU time (harness/guest/hmm-bench.c)
#   TRACE_COST=1      instead of the comparison: what tracepoints cost while
#                     off. Flavour ours as `make check` builds it (with
#                     configs/trace.config, no event enabled) against the
#                     same tree built without it (build/notrace/), booted
#                     alternately ROUNDS times each; build/bench/trace-cost.txt
#   TRACE_COST=hmm    the same, against flavour ours built with tracing but
#                     with HMM's own tracepoints compiled out of mm/hmm.c
#                     and mm/migrate_device.c (NOTRACE, build/hmmnotrace/):
#                     what HMM's tracepoints cost, apart from the kernel's
#                     other tracepoints
#   TRACE_COST=placebo  the noise floor of the two above: against flavour
#                     ours with the same code and the same tracepoints, but
#                     with the functions of mm/hmm.c and mm/migrate_device.c
#                     aligned to 4 KiB, which moves every address after them
#                     and executes not one instruction more or less
#                     (build/hmmnotrace/ again)
source "$(dirname "$0")/common.sh"
stage_start bench

rounds=${ROUNDS:-2}
runs=${RUNS:-1}
export ICOUNT=${ICOUNT:-1}
mode=tcg
[ "$ICOUNT" = 1 ] && mode=icount
out=${BENCH_OUT:-$BUILD/bench}
mkdir -p "$out"

# bench_initrd FLAVOUR_CPIO OUT: the flavour's initramfs with this run's
# /etc/hmm-bench on top (a second cpio archive after the first: the kernel
# unpacks both, the later file wins), so that the settings below never
# change the initramfs `make check` boots. hmm-bench runs once with
# upstream's driver (only the core differs between flavours) and, on
# flavour ours, once with ours. BENCH_SIZES: buffer sizes in MiB;
# BENCH_FIGURES (words), BENCH_REPS and BENCH_PROFILE=1 become hmm-bench's
# environment.
bench_initrd() {
	local cpio=$1 dest=$2 fl=$3 overlay env_words="" limit=${TIMEOUT:-3600}
	local sizes=${BENCH_SIZES:-2 256}
	overlay=$(mktemp -d)
	mkdir -p "$overlay/etc"
	[ -n "${BENCH_FIGURES:-}" ] &&
		env_words+="HMM_BENCH_FIGURES=$(printf %s "$BENCH_FIGURES" | tr -s ' ,' ,) "
	[ -n "${BENCH_REPS:-}" ] && env_words+="HMM_BENCH_REPS=$BENCH_REPS "
	[ "${BENCH_PROFILE:-0}" = 1 ] && env_words+="HMM_BENCH_PROFILE=1 "
	[ "${BENCH_MARK:-0}" = 1 ] && env_words+="HMM_BENCH_MARK=1 "
	[ -n "$env_words" ] && env_words="env $env_words"
	printf 'upstream-driver\t*\t%s\tupstream_test_hmm.ko\t%s/bin/hmm-bench upstream-driver %s\n' \
		"$limit" "$env_words" "$sizes" >"$overlay/etc/hmm-bench"
	if [ "$fl" = ours ]; then
		printf 'our-driver\t*\t%s\ttest_hmm.ko\t%s/bin/hmm-bench our-driver %s\n' \
			"$limit" "$env_words" "$sizes" >>"$overlay/etc/hmm-bench"
	fi
	if [ "$fl" = dma ]; then
		printf 'dma-driver\t*\t%s\ttest_hmm_dma.ko\tenv HMM_BENCH_REPS=%s /bin/hmm-bench dma-driver %s\n' \
			"$limit" "${BENCH_DMA_REPS:-3}" "${BENCH_DMA_SIZES:-2}" \
			>"$overlay/etc/hmm-bench"
	fi
	{
		cat "$cpio"
		(cd "$overlay" && find . -print0 | sort -z | cpio --null -o -H newc --quiet)
	} >"$dest"
	rm -rf "$overlay"
}

# PROFILE=1: a kernel of its own (the profiler's hooks must not slow down
# the compared kernels), built under build/profile with the same base.
bench_profile() {
	local pb=$BUILD/profile log
	mkdir -p "$pb"
	[ -e "$pb/base" ] || ln -s "$(readlink -f "$BUILD/base")" "$pb/base"
	export BUILD=$pb CONFIGS="guest hmm pagemaps dma kunit hmm-dma profile" BENCH_PROFILE=1
	export BENCH_SIZES=${BENCH_SIZES:-2}
	export BENCH_FIGURES=${BENCH_FIGURES:-to_dev to_sys cpu_fault dev_read_cold evict}
	# lib/Makefile builds lib/ without the profiler's hooks; our driver
	# gets them back here, in this tree only, as test_fprobe.o does there.
	make --no-print-directory -C "$TOP" FLAVOUR=ours tree
	mk=$pb/ours/src/lib/Makefile
	if ! grep -q '^CFLAGS_test_hmm.o' "$mk"; then
		# A new file: the tree's files are hard links to the base.
		# shellcheck disable=SC2016 # make expands it, not the shell
		{ cat "$mk"; echo 'CFLAGS_test_hmm.o += $(CC_FLAGS_FTRACE)'; } >"$mk.new"
		mv "$mk.new" "$mk"
	fi
	make --no-print-directory -C "$TOP" FLAVOUR=ours initramfs
	bench_initrd "$pb/ours/initramfs.cpio" "$out/initramfs-profile.cpio" ours
	echo "bench       [ours]     profile of $BENCH_FIGURES at $BENCH_SIZES MiB$([ "$ICOUNT" = 1 ] && echo ', icount')"
	FLAVOUR=ours TIMEOUT=${TIMEOUT:-3600} INITRD="$out/initramfs-profile.cpio" \
		"$HARNESS/boot.sh" bench
	log=$pb/ours/bench/console.log
	cp "$log" "$out/console-profile.log"
	python3 "$HARNESS/bench-report.py" --profile "$log" "$out/profile.txt" ||
		stage_fail "bench-report.py could not summarise the profile in $log"
	stage_done "profile in $out/profile.txt"
}
if [ "${PROFILE:-0}" = 1 ]; then
	bench_profile
	exit 0
fi

# INSNS=1: the plugin, built once against the plugin header of the QEMU
# installed (Debian ships none: it comes from the source package's tarball
# in Debian's archive, the one registry this machine reaches).
insns_plugin() {
	local dir=$BUILD/qemu-plugin ver url
	mkdir -p "$dir"
	if [ ! -f "$dir/qemu-plugin.h" ]; then
		ver=$(dpkg-query -W -f '${source:Upstream-Version}' qemu-system-x86)
		url=http://deb.debian.org/debian/pool/main/q/qemu/qemu_$ver.orig.tar.xz
		echo "bench       [insns]    fetching qemu-plugin.h from $url"
		curl -fsS "$url" | tar -xJ -O --wildcards '*/include/qemu/qemu-plugin.h' \
			>"$dir/qemu-plugin.h.new" ||
			stage_fail "could not fetch qemu-plugin.h from $url"
		mv "$dir/qemu-plugin.h.new" "$dir/qemu-plugin.h"
	fi
	if [ ! "$dir/insns.so" -nt "$HARNESS/qemu-plugin/insns.c" ]; then
		gcc -O2 -Wall -Werror -shared -fPIC -I "$dir" \
			-o "$dir/insns.so" "$HARNESS/qemu-plugin/insns.c" ||
			stage_fail "could not build $HARNESS/qemu-plugin/insns.c"
	fi
}

# The address of kernel function $2 in System.map $1, in hex.
insns_addr() {
	awk -v f="$2" '$3 == f { print $1; found = 1 } END { exit !found }' "$1" ||
		stage_fail "$2 is not in $1"
}

# build_hmm_variant FLAG: flavour ours again, in $BUILD/hmmnotrace, with
# mm/hmm.c and mm/migrate_device.c compiled with FLAG.
build_hmm_variant() {
	local nb=$BUILD/hmmnotrace flag=$1
	mkdir -p "$nb"
	[ -e "$nb/base" ] || ln -s "$(readlink -f "$BUILD/base")" "$nb/base"
	# Kbuild takes a file's CFLAGS_<object> from the environment too.
	BUILD=$nb env "CFLAGS_hmm.o=$flag" "CFLAGS_migrate_device.o=$flag" \
		make --no-print-directory -C "$TOP" FLAVOUR=ours initramfs
	grep -q -- "$flag" "$nb/ours/obj/mm/.hmm.o.cmd" ||
		stage_fail "$nb/ours/obj/mm/hmm.o was not built with $flag"
}

# build_notrace: flavour ours again, in $BUILD/notrace, without
# configs/trace.config: the kernel with no tracing at all.
build_notrace() {
	local nb=$BUILD/notrace
	mkdir -p "$nb"
	[ -e "$nb/base" ] || ln -s "$(readlink -f "$BUILD/base")" "$nb/base"
	BUILD=$nb CONFIGS="guest hmm pagemaps dma kunit hmm-dma" \
		make --no-print-directory -C "$TOP" FLAVOUR=ours initramfs
	if grep -q '^CONFIG_TRACING=y' "$nb/ours/obj/.config"; then
		stage_fail "$nb/ours/obj/.config has tracing: it is no baseline"
	fi
}

# The flavour that kernel LABEL of an INSNS run boots as: the variants of
# flavour ours, each in a build folder of its own, boot as ours.
insns_flavour() {
	case $1 in
	hmmnotrace | notrace) echo ours ;;
	*) echo "$1" ;;
	esac
}

# INSNS=1: upstream against ours; INSNS=hmm: ours with HMM's tracepoints
# compiled out (as TRACE_COST=hmm builds it) against ours; INSNS=trace:
# ours without the tracing configs (as TRACE_COST=1 builds it) against ours.
bench_insns() {
	local fl fdir flavour map t0 labels=(upstream ours) specs=()
	insns_plugin
	export BENCH_MARK=1 BENCH_SIZES=${BENCH_SIZES:-2} BENCH_REPS=${BENCH_REPS:-3}
	export BENCH_FIGURES=${BENCH_FIGURES:-to_dev to_sys cpu_fault}
	[ "$INSNS" = hmm ] && labels=(hmmnotrace ours)
	[ "$INSNS" = trace ] && labels=(notrace ours)
	for fl in "${labels[@]}"; do
		case $fl in
		hmmnotrace) build_hmm_variant -DNOTRACE ;;
		notrace) build_notrace ;;
		*) make --no-print-directory -C "$TOP" FLAVOUR="$fl" initramfs ;;
		esac
		flavour=$(insns_flavour "$fl")
		fdir=$BUILD/$fl
		[ "$flavour" = "$fl" ] || fdir=$BUILD/$fl/ours
		bench_initrd "$fdir/initramfs.cpio" "$out/initramfs-insns-$fl.cpio" "$flavour"
		cp "$fdir/obj/System.map" "$out/System.map-$fl"
		cp "$fdir/obj/arch/x86/boot/bzImage" "$out/bzImage-insns-$fl"
	done
	for fl in "${labels[@]}"; do
		flavour=$(insns_flavour "$fl")
		map=$out/System.map-$fl
		t0=$(date +%s)
		echo "bench       [$fl]     instructions of $BENCH_FIGURES at $BENCH_SIZES MiB"
		QEMU_PLUGIN="$BUILD/qemu-plugin/insns.so,on=$(insns_addr "$map" __x64_sys_sched_get_priority_max),off=$(insns_addr "$map" __x64_sys_sched_get_priority_min),dump=$(insns_addr "$map" __x64_sys_sched_rr_get_interval),out=$out/insns-$fl.counts" \
			FLAVOUR=$flavour TIMEOUT=${TIMEOUT:-3600} KERNEL="$out/bzImage-insns-$fl" \
			INITRD="$out/initramfs-insns-$fl.cpio" \
			BOOT_OUT="$out/boot-insns-$fl" "$HARNESS/boot.sh" bench
		echo "bench       [$fl]     counted ($(($(date +%s) - t0))s)"
		specs+=("$fl:$map:$out/boot-insns-$fl/console.log:$out/insns-$fl.counts")
	done
	python3 "$HARNESS/insns-report.py" "$out/insns.txt" "${specs[@]}" ||
		stage_fail "insns-report.py could not attribute the counts"
	stage_done "instructions per function in $out/insns.txt"
}
if [ "${INSNS:-0}" != 0 ]; then
	case $INSNS in
	1 | hmm | trace) ;;
	*) stage_fail "INSNS=$INSNS: 1, hmm or trace" ;;
	esac
	bench_insns
	exit 0
fi

# bench_boot LABEL ROUND: boot $out/bzImage-LABEL with its initramfs and
# add its figures to $raw (flavour column LABEL) and $events. LABEL dma
# is flavour ours in boot mode dma.
bench_boot() {
	local label=$1 r=$2 fl=$1 log t0 bootmode
	bootmode=$(mode_default)
	[ "$label" = notrace ] && fl=ours
	[ "$label" = dma ] && fl=ours && bootmode=dma
	t0=$(date +%s)
	echo "bench       [$label]     run $run of $runs, round $r of $rounds ($mode)"
	FLAVOUR=$fl TIMEOUT=${TIMEOUT:-3600} KERNEL="$out/bzImage-$label" \
		INITRD="$out/initramfs-$label.cpio" \
		BOOT_OUT="$out/boot-$label" "$HARNESS/boot.sh" bench "$bootmode"
	log=$out/boot-$label/console.log
	cp "$log" "$out/console-$label-$r.log"
	awk -v fl="$label" -v r="$r" '$1 == "HMM-BENCH" {
		printf "%s\t%s", fl, r
		for (i = 2; i <= NF; i++) printf "\t%s", $i
		printf "\n" }' "$log" >>"$raw"
	# What each operation did (flavour ours: the core's events).
	awk -v fl="$label" -v r="$r" '$1 == "HMM-EVENTS" {
		printf "%s\t%s\t%s\t%s\t%s\t%s\t", fl, r, $2, $3, $4, $5
		for (i = 6; i <= NF; i++) printf "%s%s", (i > 6 ? " " : ""), $i
		printf "\n" }' "$log" >>"$events"
	echo "bench       [$label]     run $run of $runs, round $r of $rounds done ($(($(date +%s) - t0))s)"
}

bench_tables() {
	raw=$out/raw.tsv
	events=$out/events.tsv
	printf 'flavour\tround\tdriver\tfigure\tbacking\tbytes\treps\tmedian_ns\tmin_ns\tmax_ns\n' >"$raw"
	printf 'flavour\tround\tdriver\tfigure\tbacking\tbytes\tevents\n' >"$events"
}

# TRACE_COST=1: the same tree with and without the tracing configs, booted
# alternately; bench-report.py --trace-cost gives each figure's ratio.
bench_trace_cost() {
	local nb=$BUILD/notrace r
	[ "$TRACE_COST" = 1 ] || nb=$BUILD/hmmnotrace
	make --no-print-directory -C "$TOP" FLAVOUR=ours initramfs
	bench_initrd "$BUILD/ours/initramfs.cpio" "$out/initramfs-ours.cpio" ours
	cp "$BUILD/ours/obj/arch/x86/boot/bzImage" "$out/bzImage-ours"
	if [ "$TRACE_COST" = hmm ]; then
		build_hmm_variant -DNOTRACE
	elif [ "$TRACE_COST" = placebo ]; then
		build_hmm_variant -falign-functions=4096
	else
		build_notrace
	fi
	bench_initrd "$nb/ours/initramfs.cpio" "$out/initramfs-notrace.cpio" ours
	cp "$nb/ours/obj/arch/x86/boot/bzImage" "$out/bzImage-notrace"
	run=1
	runs=1
	bench_tables
	for ((r = 1; r <= rounds; r++)); do
		bench_boot notrace "$r"
		bench_boot ours "$r"
	done
	python3 "$HARNESS/bench-report.py" --trace-cost "$raw" \
		"$out/trace-cost.txt" "$TRACE_COST" ||
		stage_fail "bench-report.py could not compare $raw"
	stage_done "$rounds rounds per kernel ($mode); $out/trace-cost.txt"
}
if [ "${TRACE_COST:-0}" != 0 ]; then
	case $TRACE_COST in
	1 | hmm | placebo) ;;
	*) stage_fail "TRACE_COST=$TRACE_COST: 1, hmm or placebo" ;;
	esac
	bench_trace_cost
	exit 0
fi

for fl in upstream ours; do
	make --no-print-directory -C "$TOP" FLAVOUR="$fl" initramfs
	bench_initrd "$BUILD/$fl/initramfs.cpio" "$out/initramfs-$fl.cpio" "$fl"
	cp "$BUILD/$fl/obj/arch/x86/boot/bzImage" "$out/bzImage-$fl"
done
if [ "${DMA:-1}" = 1 ]; then
	bench_initrd "$BUILD/ours/initramfs.cpio" "$out/initramfs-dma.cpio" dma
	cp "$BUILD/ours/obj/arch/x86/boot/bzImage" "$out/bzImage-dma"
fi

for ((run = 1; run <= runs; run++)); do
	bench_tables
	for ((r = 1; r <= rounds; r++)); do
		for fl in upstream ours; do
			bench_boot "$fl" "$r"
		done
	done
	# icount makes the DMA boot's figures repeat exactly: one is enough.
	[ "${DMA:-1}" = 1 ] && bench_boot dma 1
	python3 "$HARNESS/bench-report.py" "$raw" "$out" ||
		stage_fail "bench-report.py could not summarise $raw"
	if ((runs > 1)); then
		cp "$raw" "$out/raw-$mode-$run.tsv"
		cp "$out/results.tsv" "$out/results-$mode-$run.tsv"
	fi
done
if ((runs > 1)); then
	results=()
	for ((run = 1; run <= runs; run++)); do
		results+=("$out/results-$mode-$run.tsv")
	done
	python3 "$HARNESS/bench-report.py" --stability "$out/stability-$mode.tsv" "${results[@]}" ||
		stage_fail "bench-report.py could not compare the runs"
fi
stage_done "$runs run(s) of $rounds rounds per flavour ($mode); $out/results.tsv, $out/bench.png"
