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

# ---- boot modes (harness/modes) ----------------------------------------
# A mode's row is "name | kernel command-line words | QEMU arguments"; the
# first row is the default mode. MODES_TABLE replaces the table (the
# harness's own tests use one of their own).
MODES_TABLE=${MODES_TABLE:-$HARNESS/modes}

# _mode_rows: each mode as "name<TAB>words<TAB>qemu", fields trimmed.
_mode_rows() {
	awk -F'|' '/^[ \t]*(#|$)/ { next } {
		for (i = 1; i <= 3; i++) { gsub(/^[ \t]+|[ \t]+$/, "", $i) }
		printf "%s\t%s\t%s\n", $1, $2, $3 }' "$MODES_TABLE"
}
mode_names() { _mode_rows | cut -f1; }
mode_default() { mode_names | head -n 1; }
mode_exists() {
	mode_names | grep -qxF -- "$1" && return 0
	echo "error: no boot mode '$1' in $MODES_TABLE (modes: $(mode_names | tr '\n' ' '))" >&2
	return 1
}
# mode_cmdline MODE, mode_qemu MODE: what the mode adds to every boot.
mode_cmdline() { _mode_rows | awk -F'\t' -v m="$1" '$1 == m { print $2 }'; }
mode_qemu() { _mode_rows | awk -F'\t' -v m="$1" '$1 == m { print $3 }'; }
# mode_dir MODE: where a check boot in MODE keeps its console and results.
mode_dir() {
	if [ "$1" = "$(mode_default)" ]; then
		echo "$FDIR/check"
	else
		echo "$FDIR/check-$1"
	fi
}
# mode_tag MODE: the prefix of the mode's summary rows (none by default).
mode_tag() {
	[ "$1" = "$(mode_default)" ] || echo "$1"
}
# run_modes: the modes a check covers, MODES (words) or every mode.
run_modes() {
	local m
	if [ -z "${MODES:-}" ]; then
		mode_names
		return
	fi
	for m in $MODES; do
		mode_exists "$m" || return 1
		echo "$m"
	done
}

# mode_has_suites MODE: does the flavour (FDIR) run any suite in MODE?
# A mode with none (mode "dma" on flavour upstream) is not booted. Before
# the initramfs lists the flavour's suites, every mode counts.
mode_has_suites() {
	local modes
	[ -f "$FDIR/hmm-suites" ] || return 0
	while IFS=$'\t' read -r _ modes _; do
		case ",$modes," in *",*,"* | *",$1,"*) return 0 ;; esac
	done <"$FDIR/hmm-suites"
	return 1
}

# Time limits of the suites (harness/suites) and of a whole guest are
# multiplied by this: the debug kernel is 15 to 40 times slower.
LIMIT_SCALE=${LIMIT_SCALE:-1}
[ "$DEBUG" = 1 ] && [ "$LIMIT_SCALE" = 1 ] && LIMIT_SCALE=40

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
