#!/usr/bin/env bash
# Stage "parse": the last boot's console log into build/<flavour>/check/results.json.
source "$(dirname "$0")/common.sh"
stage_start parse
dir=$FDIR/check
[ -f "$dir/console.log" ] || stage_fail "no console log in $dir; run 'make boot'"
rc=0
python3 "$HARNESS/results.py" parse "$dir/console.log" "$dir" --flavour "$VARIANT" \
	--status "$dir/boot.status" --kunit "$BASE/tools/testing/kunit/kunit.py" || rc=$?
stage_done "$dir/results.json"
exit "$rc"
