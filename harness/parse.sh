#!/usr/bin/env bash
# Stage "parse": the console log of a check boot in BOOTMODE (parse.sh
# [BOOTMODE], default harness/modes' first) into results.json beside it.
# Exits 0 once the results are written, whatever they say: their verdict
# is the report's (make report, make check); 1 only when nothing could be
# parsed.
source "$(dirname "$0")/common.sh"
bootmode=${1:-$(mode_default)}
mode_exists "$bootmode" || exit 2
stage_start parse
dir=$(mode_dir "$bootmode")
[ -f "$dir/console.log" ] || stage_fail "no console log in $dir; run 'make boot'"
python3 "$HARNESS/results.py" parse "$dir/console.log" "$dir" --flavour "$VARIANT" \
	--mode "$(mode_tag "$bootmode")" --status "$dir/boot.status" \
	--kunit "$BASE/tools/testing/kunit/kunit.py" ||
	stage_fail "could not parse $dir/console.log"
stage_done "$dir/results.json"
