#!/usr/bin/env bash
# Stage "report": the parsed results of the given flavours (and of the
# parser's own tests and the kernel-doc check, suites "parser" and "docs")
# into build/check/summary.tsv and the closing line. With DEBUG=1, the
# flavours' debug kernels (build/<flavour>-debug).
source "$(dirname "$0")/common.sh"
results=()
for r in parser docs; do
	[ -f "$BUILD/check/$r.json" ] && results+=("$BUILD/check/$r.json")
done
for f in "$@"; do
	[ "$DEBUG" = 1 ] && f=$f-debug
	r=$BUILD/$f/check/results.json
	[ -f "$r" ] || { echo "report: no results for $f ($r); run 'make check'" >&2; exit 1; }
	results+=("$r")
done
echo
exec python3 "$HARNESS/results.py" report --summary "$BUILD/check/summary.tsv" "${results[@]}"
