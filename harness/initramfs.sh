#!/usr/bin/env bash
# Stage "initramfs": the guest's root file system, an uncompressed cpio.
#   /init                 harness/guest/init
#   /bin/busybox          Debian's static busybox
#   /bin/*                the test programs and the demo, built static
#   /lib/modules/*.ko     the flavour's test_hmm (and later suites' modules)
#   /etc/hmm-bench        what `make bench` runs (harness/guest/hmm-bench.c)
#   /etc/hmm-suites       which suites `make check` runs, in order:
#                         upstream-hmm-tests (upstream's, unmodified),
#                         upstream-test_hmm (the same with upstream's driver),
#                         hmm-tests (ours) when this repository has it,
#                         hmm-driver-tests (ours, flavour ours only),
#                         kunit (every mm/*_kunit.ko the build made)
# Test programs are rebuilt only when their source is newer.
source "$(dirname "$0")/common.sh"
stage_start initramfs

CC=${CC:-gcc}
# -I .../selftests/mm: "../kselftest_harness.h" resolves to the base's.
CFLAGS="-O2 -Wall -static -I $BASE/tools/testing/selftests/mm"

# build_prog OUT SRC INCLUDE_ROOT [DIR]: a static program from SRC, rebuilt
# when SRC, the uapi header under INCLUDE_ROOT or any file in DIR (SRC's
# helpers) is newer than OUT.
build_prog() {
	local out=$1 src=$2 inc=$3 dir=${4:-}
	local stale=0
	[ -x "$out" ] && [ ! "$src" -nt "$out" ] && [ ! "$inc/lib/test_hmm_uapi.h" -nt "$out" ] || stale=1
	if [ -n "$dir" ] && [ -n "$(find "$dir" -newer "$out" -type f 2>/dev/null | head -n 1)" ]; then
		stale=1
	fi
	if [ "$stale" = 1 ]; then
		mkdir -p "$(dirname "$out")"
		# shellcheck disable=SC2086
		$CC $CFLAGS -I "$inc" -o "$out" "$src" -lpthread -lrt -lm ||
			stage_fail "could not build $(basename "$out") from $src"
	fi
}

ko=$OBJ/lib/test_hmm.ko
[ -f "$ko" ] || stage_fail "$ko is missing; run 'make build'"

root=$FDIR/initramfs
rm -rf "$root"
mkdir -p "$root"/{bin,dev,proc,sys,tmp,etc,lib/modules}
cp /bin/busybox "$root/bin/busybox"
cp "$HARNESS/guest/init" "$root/init"
cp "$ko" "$root/lib/modules/"
: >"$root/etc/hmm-suites"

# add_suite NAME MODULE PROGRAM: run PROGRAM (copied to /bin) as suite NAME
# with MODULE (a .ko in /lib/modules, or -) loaded around it. SUITES="a b"
# keeps only the suites named.
add_suite() {
	if [ -n "${SUITES:-}" ] && [[ " $SUITES " != *" $1 "* ]]; then
		return 0
	fi
	cp "$3" "$root/bin/"
	printf '%s\t%s\t%s\n' "$1" "$2" "/bin/$(basename "$3")" >>"$root/etc/hmm-suites"
}

# Upstream's own suite, unmodified from the base tarball: the same binary
# for every flavour.
sel=$BASE/tools/testing/selftests
build_prog "$COMMON/upstream-hmm-tests" "$sel/mm/hmm-tests.c" "$BASE"
add_suite upstream-hmm-tests test_hmm.ko "$COMMON/upstream-hmm-tests"

# Upstream's suite again, with upstream's own driver built against the
# flavour's core (harness/build.sh): for flavour ours, upstream's driver is a
# client of our API.
cp "$FDIR/upstream-test_hmm/upstream_test_hmm.ko" "$root/lib/modules/"
add_suite upstream-test_hmm upstream_test_hmm.ko "$COMMON/upstream-hmm-tests"

# Our suite, when this repository has it, against either flavour: our
# source, the flavour's uapi header, the base's kselftest harness.
ours=$TOP/tools/testing/selftests/mm/hmm-tests.c
if [ -f "$ours" ]; then
	build_prog "$FDIR/guest/hmm-tests" "$ours" "$SRC" "$(dirname "$ours")"
	add_suite hmm-tests test_hmm.ko "$FDIR/guest/hmm-tests"
fi

# Our driver's own contract (its errnos, eviction on unload): only where our
# driver is, so flavour ours only.
contract=$TOP/tools/testing/selftests/mm/hmm-driver-tests.c
if [ -f "$contract" ] && [ "$FLAVOUR" = ours ]; then
	build_prog "$FDIR/guest/hmm-driver-tests" "$contract" "$SRC" "$(dirname "$contract")"
	add_suite hmm-driver-tests test_hmm.ko "$FDIR/guest/hmm-driver-tests"
fi

# KUnit tests of our core (mm/*_kunit.c, built as modules where the
# flavour's config has them): run by harness/guest/kunit-run, which loads
# them and prints their KTAP from debugfs. Last, since they run in the
# kernel itself.
mapfile -t kunit_mods < <(find "$OBJ/mm" -maxdepth 1 -name '*_kunit.ko' | sort)
if [ "$FLAVOUR" = ours ] && ((${#kunit_mods[@]} == 0)); then
	stage_fail "no mm/*_kunit.ko in $OBJ (is configs/kunit.config merged?)"
fi
if ((${#kunit_mods[@]})); then
	mkdir -p "$root/lib/modules/kunit"
	cp "${kunit_mods[@]}" "$root/lib/modules/kunit/"
	add_suite kunit - "$HARNESS/guest/kunit-run"
fi

# The demo speaks the flavour's own uapi header.
build_prog "$FDIR/guest/hmm-demo" "$HARNESS/guest/hmm-demo.c" "$SRC"
cp "$FDIR/guest/hmm-demo" "$root/bin/"

# The benchmark (make bench, boot mode "bench"): the same binary for both
# flavours, built against the base's uapi, run once with upstream's driver
# (so that only the core differs between flavours) and, on flavour ours,
# once with ours. BENCH_SIZES: buffer sizes in MiB.
build_prog "$COMMON/hmm-bench" "$HARNESS/guest/hmm-bench.c" "$BASE"
cp "$COMMON/hmm-bench" "$root/bin/"
sizes=${BENCH_SIZES:-2 256}
printf 'upstream-driver\tupstream_test_hmm.ko\t/bin/hmm-bench upstream-driver %s\n' \
	"$sizes" >"$root/etc/hmm-bench"
if [ "$FLAVOUR" = ours ]; then
	printf 'our-driver\ttest_hmm.ko\t/bin/hmm-bench our-driver %s\n' \
		"$sizes" >>"$root/etc/hmm-bench"
fi

(cd "$root" && find . -print0 | sort -z | cpio --null -o -H newc --quiet) >"$FDIR/initramfs.cpio"
stage_done "$(du -h "$FDIR/initramfs.cpio" | cut -f1) with $(wc -l <"$root/etc/hmm-suites") suites"
