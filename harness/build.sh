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

# Upstream's driver, unmodified from the base tarball, as an external module
# against this flavour's headers and core: a real client of our API. Named
# upstream_test_hmm so it cannot be confused with the flavour's own.
ext=$FDIR/upstream-test_hmm
mkdir -p "$ext"
for f in test_hmm.c:upstream_test_hmm.c test_hmm_uapi.h:test_hmm_uapi.h; do
	cmp -s "$BASE/lib/${f%%:*}" "$ext/${f##*:}" || cp "$BASE/lib/${f%%:*}" "$ext/${f##*:}"
done
echo 'obj-m := upstream_test_hmm.o' >"$ext/Kbuild"
if ! make -C "$SRC" O="$OBJ" ARCH=x86_64 M="$ext" modules >>"$log" 2>&1; then
	tail -n 20 "$log" >&2
	stage_fail "upstream's test_hmm did not build against this tree; full log: $log"
fi
stage_done "bzImage and modules, $ncc files compiled; upstream's test_hmm built"
