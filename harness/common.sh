#!/usr/bin/env bash
# Shared by every stage script: where things live, and how a stage reports.
#
# Layout of build/ (all generated, ignored by git):
#   build/base/linux-source-6.12   the pristine base, unpacked once
#   build/<flavour>/src            that flavour's source tree (hard links into
#                                  the base, our files and patched files as
#                                  real copies)
#   build/<flavour>/obj            the kernel's O= build folder
#   build/<flavour>/initramfs.cpio the guest's root file system
#   build/<flavour>/check/         console log and parsed results of a boot
#   build/common/                  programs that do not depend on the flavour
#   build/<flavour>-debug/         the same for the flavour's debug kernel
#                                  (DEBUG=1: configs/debug.config merged last)
#   build/check/summary.tsv        the last `make check`, one row per suite
# shellcheck disable=SC2034  # the variables below are used by the scripts that source this

set -euo pipefail

HARNESS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(dirname "$HARNESS")
BUILD=${BUILD:-$TOP/build}
FLAVOUR=${FLAVOUR:-ours}
DEBUG=${DEBUG:-0}
TARBALL=${TARBALL:-/usr/src/linux-source-6.12.tar.xz}
BASE=$BUILD/base/linux-source-6.12
# VARIANT names the build: the flavour, or "<flavour>-debug" for its debug
# kernel, which has a folder of its own so neither build undoes the other.
VARIANT=$FLAVOUR
[ "$DEBUG" = 1 ] && VARIANT=$FLAVOUR-debug
FDIR=$BUILD/$VARIANT
SRC=$FDIR/src
OBJ=$FDIR/obj
COMMON=$BUILD/common
JOBS=${JOBS:-$(nproc)}

case "$FLAVOUR" in
ours|upstream) ;;
*) echo "error: FLAVOUR must be 'ours' or 'upstream', not '$FLAVOUR'" >&2; exit 2 ;;
esac
case "$DEBUG" in
0|1) ;;
*) echo "error: DEBUG must be 0 or 1, not '$DEBUG'" >&2; exit 2 ;;
esac

# The base patches of flavour ours (patches/*.patch), in the order they
# apply: the order series/order folds them into the series, which is the
# only list of them. Each is numbered by its place in that order; a patch
# file the order does not name, or a number out of place, is an error.
base_patches() {
	local order=$TOP/series/order n=0 p want
	while IFS=$'\t' read -r _ items; do
		for p in $items; do
			case "$p" in patches/*) ;; *) continue ;; esac
			n=$((n + 1))
			want=$(printf '%04d' "$n")
			if [ "${p#patches/}" = "${p#patches/"$want"-}" ]; then
				echo "error: series/order names $p as base patch $n; number it $want" >&2
				return 1
			fi
			[ -f "$TOP/$p" ] || { echo "error: series/order names $p, which does not exist" >&2; return 1; }
			echo "${p#patches/}"
		done
	done < <(sed -e '/^#/d' -e '/^$/d' "$order")
	for p in "$TOP"/patches/*.patch; do
		[ -e "$p" ] || continue
		grep -q "patches/$(basename "$p")" "$order" ||
			{ echo "error: series/order does not fold in patches/$(basename "$p")" >&2; return 1; }
	done
}

# Stage timing: stage_start NAME, then stage_done "what happened".
_stage_name=""
_stage_t0=0
stage_start() {
	_stage_name=$1
	_stage_t0=$(date +%s.%N)
}

stage_elapsed() {
	awk -v a="$_stage_t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1fs", b - a }'
}

stage_done() {
	printf '%-11s %-10s %s (%s)\n' "$_stage_name" "[$VARIANT]" "$*" "$(stage_elapsed)"
}

stage_fail() {
	printf '%-11s %-10s FAILED: %s (%s)\n' "$_stage_name" "[$VARIANT]" "$*" "$(stage_elapsed)" >&2
	exit 1
}

# Print a progress line every 30 s while PID runs, with the last line of LOG.
progress_while() {
	local pid=$1 log=$2 what=$3 n=0
	while kill -0 "$pid" 2>/dev/null; do
		sleep 1
		n=$((n + 1))
		if ((n % 30 == 0)); then
			printf '%-11s %-10s ... %s, %s so far: %s\n' "$_stage_name" "[$VARIANT]" \
				"$what" "$(stage_elapsed)" "$(tail -n 1 "$log" 2>/dev/null | cut -c1-60)"
		fi
	done
}
