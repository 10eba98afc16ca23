#!/usr/bin/env bash
# Stage "build": the kernel image and modules, incremental (kbuild's own
# dependency tracking decides what to recompile).
source "$(dirname "$0")/common.sh"
stage_start build

log=$FDIR/build.log
make -C "$SRC" O="$OBJ" ARCH=x86_64 -j"$JOBS" bzImage modules >"$log" 2>&1 &
pid=$!
progress_while "$pid" "$log" "compiling"
if ! wait "$pid"; then
	grep -E 'error|Error' "$log" | head -n 20 >&2 || true
	stage_fail "kernel build failed; full log: $log"
fi
ncc=$(grep -c '^  CC' "$log" || true)
stage_done "bzImage and modules, $ncc files compiled"
