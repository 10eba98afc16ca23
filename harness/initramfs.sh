#!/usr/bin/env bash
# Stage "initramfs": the guest's root file system, an uncompressed cpio.
#   /init                 harness/guest/init
#   /bin/busybox          Debian's static busybox
#   /bin/*                the test programs and the demo, built static
#   /lib/modules/*.ko     the flavour's test_hmm (and later suites' modules)
#   /etc/hmm-suites       which suites `make check` runs, in order
# Test programs are rebuilt only when their source is newer.
source "$(dirname "$0")/common.sh"
stage_start initramfs

CC=${CC:-gcc}
CFLAGS="-O2 -Wall -static"

# build_prog OUT SRC INCLUDE_ROOT: a static program, if SRC is newer than OUT.
build_prog() {
	local out=$1 src=$2 inc=$3
	if [ ! -x "$out" ] || [ "$src" -nt "$out" ] || [ "$inc/lib/test_hmm_uapi.h" -nt "$out" ]; then
		mkdir -p "$(dirname "$out")"
		# shellcheck disable=SC2086
		$CC $CFLAGS -I "$inc" -o "$out" "$src" -lpthread -lrt -lm ||
			stage_fail "could not build $(basename "$out") from $src"
	fi
}

ko=$OBJ/lib/test_hmm.ko
[ -f "$ko" ] || stage_fail "$ko is missing; run 'make build'"

# Upstream's own suite, unmodified from the base tarball: the same binary for
# every flavour.
build_prog "$COMMON/upstream-hmm-tests" "$BASE/tools/testing/selftests/mm/hmm-tests.c" "$BASE"
# The demo speaks the flavour's own uapi header.
build_prog "$FDIR/guest/hmm-demo" "$HARNESS/guest/hmm-demo.c" "$SRC"

root=$FDIR/initramfs
rm -rf "$root"
mkdir -p "$root"/{bin,dev,proc,sys,tmp,etc,lib/modules}
cp /bin/busybox "$root/bin/busybox"
cp "$HARNESS/guest/init" "$root/init"
cp "$COMMON/upstream-hmm-tests" "$FDIR/guest/hmm-demo" "$root/bin/"
cp "$ko" "$root/lib/modules/"

# name <TAB> module <TAB> command
printf '%s\t%s\t%s\n' \
	upstream-hmm-tests test_hmm.ko /bin/upstream-hmm-tests \
	>"$root/etc/hmm-suites"

(cd "$root" && find . -print0 | sort -z | cpio --null -o -H newc --quiet) >"$FDIR/initramfs.cpio"
stage_done "$(du -h "$FDIR/initramfs.cpio" | cut -f1) with $(wc -l <"$root/etc/hmm-suites") suites"
