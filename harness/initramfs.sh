#!/usr/bin/env bash
# Stage "initramfs": the guest's root file system, an uncompressed cpio.
#   /init                 harness/guest/init
#   /bin/busybox          Debian's static busybox
#   /bin/*                the suites' programs and the demo, built static
#   /lib/modules/*.ko     the flavour's test_hmm, upstream's test_hmm built
#                         against the flavour, the KUnit modules
#   /etc/hmm-suites       the suites of harness/suites this flavour runs, one
#                         line each: name, modes, limit (scaled), module,
#                         command; the guest runs those of its boot mode
#   /lib/pagemaps         the ext4 image suite pagemaps puts on pmem
# A copy of /etc/hmm-suites stays in build/<flavour>/hmm-suites, for the
# boot stage's time limit. `make bench` adds its own /etc/hmm-bench on top
# (harness/bench.sh). Test programs are rebuilt only when their source is
# newer. SUITES="a b" keeps only the suites named; TESTS="x y" runs only
# the tests named in each suite built on the kselftest harness (its -t:
# every variant of each), to chase one test on the debug kernel.
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
# Upstream's driver, built against the flavour's core by the build stage
# (suite upstream-test_hmm, and make bench's "upstream-driver").
cp "$FDIR/upstream-test_hmm/upstream_test_hmm.ko" "$root/lib/modules/"
: >"$root/etc/hmm-suites"

# What some suites need beside their program: prepare_<suite> runs when
# the suite is in the initramfs.

# The fsdax tests copy an ext4 image made here (4 KiB blocks, as DAX needs,
# with a 1 MiB seed file whose bytes the test knows) onto the guest's pmem.
prepare_pagemaps() {
	local image=$COMMON/pagemaps-ext4.img.gz seed
	if [ ! -f "$image" ] || [ "$0" -nt "$image" ]; then
		mkdir -p "$COMMON"
		seed=$(mktemp -d)
		python3 -c 'import sys; sys.stdout.buffer.write(bytes((i * 7 + i // 4096) & 255 for i in range(1 << 20)))' >"$seed/seed"
		rm -f "$COMMON/pagemaps-ext4.img"
		mkfs.ext4 -q -F -b 4096 -d "$seed" "$COMMON/pagemaps-ext4.img" 64M >/dev/null ||
			stage_fail "mkfs.ext4 could not make the pagemaps image"
		gzip -9 -f "$COMMON/pagemaps-ext4.img"
		rm -rf "$seed"
	fi
	mkdir -p "$root/lib/pagemaps"
	cp "$image" "$root/lib/pagemaps/ext4.img.gz"
}

# KUnit tests of our core (mm/*_kunit.c, built as modules by
# configs/kunit.config): harness/guest/kunit-run loads each from here.
prepare_kunit() {
	local kunit_mods
	mapfile -t kunit_mods < <(find "$OBJ/mm" -maxdepth 1 -name '*_kunit.ko' | sort)
	((${#kunit_mods[@]})) ||
		stage_fail "no mm/*_kunit.ko in $OBJ (is configs/kunit.config merged?)"
	mkdir -p "$root/lib/modules/kunit"
	cp "${kunit_mods[@]}" "$root/lib/modules/kunit/"
}

# The DMA helpers' driver for QEMU's edu device (configs/hmm-dma.config),
# loaded by the suite's module column like test_hmm.
prepare_dma() {
	local dko=$OBJ/lib/test_hmm_dma.ko
	[ -f "$dko" ] ||
		stage_fail "$dko is missing (is configs/hmm-dma.config merged?)"
	cp "$dko" "$root/lib/modules/"
}

# On flavour upstream, the regression tests of problems pristine 6.12.118
# still has are left out unless REGRESSIONS_UPSTREAM_BUGS=1: a device
# holding exclusive access loses a page reference for good (test_hmm can
# then never unload: the guest hangs until TIMEOUT after reporting it), the
# pages of a THP mapped by PTEs are never collected for migration, and no
# page of a THP can be made exclusive (those tests fail). The README lists
# them. Expanded into the regressions row's
# environment, comma-separated (one word).
UPSTREAM_BUGS_EXCLUDED=
if [ "$FLAVOUR" = upstream ] && [ "${REGRESSIONS_UPSTREAM_BUGS:-0}" != 1 ]; then
	UPSTREAM_BUGS_EXCLUDED=exclusive_entry_is_not_a_migration_entry,pte_mapped_thp_pages_migrate,exclusive_on_thp_pages
fi
export UPSTREAM_BUGS_EXCLUDED

# The tests of upstream's hmm-tests that pristine 6.12.118 fails under
# transparent_hugepage=always (boot mode thp-always), as "suite test":
# flavour upstream leaves them out of that boot unless
# REGRESSIONS_UPSTREAM_BUGS=1. The guest passes each to the suite's
# kselftest harness as -T (/etc/hmm-excluded). The README lists them.
upstream_thp_always_bugs=(
	"upstream-hmm-tests exclusive"
	"upstream-hmm-tests exclusive_mprotect"
	"upstream-hmm-tests exclusive_cow"
	"upstream-test_hmm exclusive"
	"upstream-test_hmm exclusive_mprotect"
	"upstream-test_hmm exclusive_cow"
)
: >"$root/etc/hmm-excluded"
if [ "$FLAVOUR" = upstream ] && [ "${REGRESSIONS_UPSTREAM_BUGS:-0}" != 1 ]; then
	for bug in "${upstream_thp_always_bugs[@]}"; do
		printf 'thp-always\t%s\t%s\n' "${bug% *}" "${bug#* }" \
			>>"$root/etc/hmm-excluded"
	done
fi

# suite_program SOURCE: build (or find) what SOURCE names; print its path.
suite_program() {
	local src=$1 out
	case "$src" in
	base:*.c)
		out=$COMMON/upstream-$(basename "${src#base:}" .c)
		build_prog "$out" "$BASE/${src#base:}" "$BASE" ;;
	*.c)
		[ -f "$TOP/$src" ] || stage_fail "harness/suites names $src, which does not exist"
		out=$FDIR/guest/$(basename "$src" .c)
		build_prog "$out" "$TOP/$src" "$SRC" "$(dirname "$TOP/$src")" ;;
	*)
		[ -f "$TOP/$src" ] || stage_fail "harness/suites names $src, which does not exist"
		out=$TOP/$src ;;
	esac
	echo "$out"
}

# Every row of harness/suites for this flavour (and SUITES), in order.
nsuites=0
while read -r name flavours modes module limit src env; do
	case "$name" in ''|'#'*) continue ;; esac
	[[ ",$flavours," == *",$FLAVOUR,"* ]] || continue
	if [ -n "${SUITES:-}" ] && [[ " $SUITES " != *" $name "* ]]; then
		continue
	fi
	fn=prepare_${name//-/_}
	if declare -F "$fn" >/dev/null; then
		"$fn"
	fi
	[ "$module" = - ] || [ -f "$root/lib/modules/$module" ] ||
		stage_fail "harness/suites: suite $name loads $module, which no stage builds"
	prog=$(suite_program "$src") || exit 1
	cp "$prog" "$root/bin/"
	command="/bin/$(basename "$prog")"
	words=()
	if [ "$env" != - ]; then
		# shellcheck disable=SC2086  # the row's words, expanded with the knobs
		eval "words=($env)"
	fi
	env_words=()
	for w in "${words[@]}"; do
		[ -n "${w#*=}" ] && env_words+=("$w")
	done
	((${#env_words[@]})) && command="env ${env_words[*]} $command"
	if [ -n "${TESTS:-}" ] && [[ "$src" == *.c ]]; then
		for t in $TESTS; do
			command+=" -t $t"
		done
	fi
	limit=$(eval "echo $limit")
	[[ "$limit" =~ ^[0-9]+$ ]] || stage_fail "harness/suites: suite $name's limit is not a number: $limit"
	printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$modes" "$((limit * LIMIT_SCALE))" \
		"$module" "$command" >>"$root/etc/hmm-suites"
	nsuites=$((nsuites + 1))
done <"$HARNESS/suites"
cp "$root/etc/hmm-suites" "$FDIR/hmm-suites"

# The demo speaks the flavour's own uapi header.
build_prog "$FDIR/guest/hmm-demo" "$HARNESS/guest/hmm-demo.c" "$SRC"
cp "$FDIR/guest/hmm-demo" "$root/bin/"

# The benchmark's program (make bench, which adds its settings): the same
# binary for both flavours, built against the base's uapi.
build_prog "$COMMON/hmm-bench" "$HARNESS/guest/hmm-bench.c" "$BASE"
cp "$COMMON/hmm-bench" "$root/bin/"

(cd "$root" && find . -print0 | sort -z | cpio --null -o -H newc --quiet) >"$FDIR/initramfs.cpio"
stage_done "$(du -h "$FDIR/initramfs.cpio" | cut -f1) with $nsuites suites"
