#!/usr/bin/env bash
# Stage "parser-test": the parser's own tests on the recorded console logs in
# harness/tests/logs, counted as suite "parser" in the summary.
source "$(dirname "$0")/common.sh"
stage_start parser-test
mkdir -p "$BUILD/check"
rc=0
python3 "$HARNESS/tests/run.py" --kunit "$BASE/tools/testing/kunit/kunit.py" \
	--json "$BUILD/check/parser.json" >"$BUILD/check/parser.log" 2>&1 || rc=$?
summary=$(tail -n 1 "$BUILD/check/parser.log")
if [ "$rc" != 0 ]; then
	cat "$BUILD/check/parser.log" >&2
fi
stage_done "$summary (log: $BUILD/check/parser.log)"
