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
source "$(dirname "$0")/common.sh"
stage_start bench

rounds=${ROUNDS:-2}
export ICOUNT=${ICOUNT:-1}
out=$BUILD/bench
mkdir -p "$out"
raw=$out/raw.tsv

for fl in upstream ours; do
	make -s --no-print-directory -C "$TOP" FLAVOUR="$fl" initramfs
done

printf 'flavour\tround\tdriver\tfigure\tbacking\tbytes\treps\tmedian_ns\tmin_ns\tmax_ns\n' >"$raw"
for ((r = 1; r <= rounds; r++)); do
	for fl in upstream ours; do
		echo "bench       [$fl]     round $r of $rounds$([ "$ICOUNT" = 1 ] && echo ', icount')"
		FLAVOUR=$fl TIMEOUT=${TIMEOUT:-3600} "$HARNESS/boot.sh" bench
		log=$BUILD/$fl/bench/console.log
		cp "$log" "$out/console-$fl-$r.log"
		awk -v fl="$fl" -v r="$r" '$1 == "HMM-BENCH" {
			printf "%s\t%s", fl, r
			for (i = 2; i <= NF; i++) printf "\t%s", $i
			printf "\n" }' "$log" >>"$raw"
	done
done

python3 "$HARNESS/bench-report.py" "$raw" "$out" ||
	stage_fail "bench-report.py could not summarise $raw"
stage_done "$rounds rounds per flavour; $out/results.tsv, $out/bench.png"
