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
#                         pagemaps (fsdax, device-dax, p2pdma, long-term pins),
#                         fuzz (hmm-fuzz.c, flavour ours; short in check),
#                         kunit (every mm/*_kunit.ko the build made)
#   /lib/pagemaps         the ext4 image suite pagemaps puts on pmem
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

# add_suite NAME MODULE PROGRAM [VAR=VALUE...]: run PROGRAM (copied to /bin)
# as suite NAME with MODULE (a .ko in /lib/modules, or -) loaded around it,
# in an environment with the VAR=VALUE words added. SUITES="a b" keeps only
# the suites named.
add_suite() {
	local name=$1 module=$2 prog=$3 command
	shift 3
	if [ -n "${SUITES:-}" ] && [[ " $SUITES " != *" $name "* ]]; then
		return 0
	fi
	cp "$prog" "$root/bin/"
	command="/bin/$(basename "$prog")"
	(($#)) && command="env $* $command"
	printf '%s\t%s\t%s\n' "$name" "$module" "$command" >>"$root/etc/hmm-suites"
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

# The other pagemap types (fsdax, device-dax, p2pdma) and long-term pins of
# device memory, against either flavour. The fsdax tests copy an ext4 image
# made here (4 KiB blocks, as DAX needs, with a 1 MiB seed file whose bytes
# the test knows) onto the guest's pmem.
pagemaps=$TOP/tools/testing/selftests/mm/pagemaps-tests.c
if [ -f "$pagemaps" ]; then
	build_prog "$FDIR/guest/pagemaps-tests" "$pagemaps" "$SRC"
	image=$COMMON/pagemaps-ext4.img.gz
	if [ ! -f "$image" ] || [ "$0" -nt "$image" ]; then
		seed=$(mktemp -d)
		python3 -c 'import sys; sys.stdout.buffer.write(bytes((i * 7 + i // 4096) & 255 for i in range(1 << 20)))' >"$seed/seed"
		rm -f "$COMMON/pagemaps-ext4.img"
		mkfs.ext4 -q -F -b 4096 -d "$seed" "$COMMON/pagemaps-ext4.img" 64M ||
			stage_fail "mkfs.ext4 could not make the pagemaps image"
		gzip -9 -f "$COMMON/pagemaps-ext4.img"
		rm -rf "$seed"
	fi
	mkdir -p "$root/lib/pagemaps"
	cp "$image" "$root/lib/pagemaps/ext4.img.gz"
	add_suite pagemaps test_hmm.ko "$FDIR/guest/pagemaps-tests"
fi

# The fuzzer: our driver's uapi under random and hostile commands, flavour
# ours only: FUZZ_CALLS steps per case (a short run in make check, a long
# one from `make fuzz`), FUZZ_SEED replays a run (else a fresh seed, which
# the suite prints).
fuzz=$TOP/tools/testing/selftests/mm/hmm-fuzz.c
if [ -f "$fuzz" ] && [ "$FLAVOUR" = ours ]; then
	build_prog "$FDIR/guest/hmm-fuzz" "$fuzz" "$SRC"
	fuzz_env=("HMM_FUZZ_CALLS=${FUZZ_CALLS:-1500}")
	[ -n "${FUZZ_SEED:-}" ] && fuzz_env+=("HMM_FUZZ_SEED=$FUZZ_SEED")
	add_suite fuzz test_hmm.ko "$FDIR/guest/hmm-fuzz" "${fuzz_env[@]}"
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
# once with ours. BENCH_SIZES: buffer sizes in MiB; BENCH_FIGURES (words),
# BENCH_REPS and BENCH_PROFILE=1 become hmm-bench's environment.
build_prog "$COMMON/hmm-bench" "$HARNESS/guest/hmm-bench.c" "$BASE"
cp "$COMMON/hmm-bench" "$root/bin/"
sizes=${BENCH_SIZES:-2 256}
bench_env=""
[ -n "${BENCH_FIGURES:-}" ] && bench_env+="HMM_BENCH_FIGURES=$(printf %s "$BENCH_FIGURES" | tr -s ' ,' ,) "
[ -n "${BENCH_REPS:-}" ] && bench_env+="HMM_BENCH_REPS=$BENCH_REPS "
[ "${BENCH_PROFILE:-0}" = 1 ] && bench_env+="HMM_BENCH_PROFILE=1 "
[ -n "$bench_env" ] && bench_env="env $bench_env"
printf 'upstream-driver\tupstream_test_hmm.ko\t%s/bin/hmm-bench upstream-driver %s\n' \
	"$bench_env" "$sizes" >"$root/etc/hmm-bench"
if [ "$FLAVOUR" = ours ]; then
	printf 'our-driver\ttest_hmm.ko\t%s/bin/hmm-bench our-driver %s\n' \
		"$bench_env" "$sizes" >>"$root/etc/hmm-bench"
fi

(cd "$root" && find . -print0 | sort -z | cpio --null -o -H newc --quiet) >"$FDIR/initramfs.cpio"
stage_done "$(du -h "$FDIR/initramfs.cpio" | cut -f1) with $(wc -l <"$root/etc/hmm-suites") suites"
