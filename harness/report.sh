#!/usr/bin/env bash
# Stage "report": the parsed results of the given flavours, in every boot
# mode of the run (MODES, or all of harness/modes), and of the parser's own
# tests and the kernel-doc check (suites "parser" and "docs") into
# build/check/summary.tsv and the closing line; exits 1 when anything
# failed. With DEBUG=1, the flavours' debug kernels (build/<flavour>-debug).
source "$(dirname "$0")/common.sh"
results=()
for r in parser docs; do
	[ -f "$BUILD/check/$r.json" ] && results+=("$BUILD/check/$r.json")
done
modes=$(run_modes)
for f in "$@"; do
	for m in $modes; do
		fdir=$BUILD/$f
		[ "$DEBUG" = 1 ] && fdir=$fdir-debug
		FDIR=$fdir mode_has_suites "$m" || continue
		r=$(FDIR=$fdir mode_dir "$m")/results.json
		[ -f "$r" ] || { echo "report: no results for $f in mode $m ($r); run 'make check'" >&2; exit 1; }
		results+=("$r")
	done
done
echo
exec python3 "$HARNESS/results.py" report --summary "$BUILD/check/summary.tsv" "${results[@]}"
