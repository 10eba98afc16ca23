#!/usr/bin/env bash
# Stage "setup": install what the other stages need, from Debian's archive.
# Idempotent: when every package is present it only says so.
source "$(dirname "$0")/common.sh"
stage_start setup

packages=(
	linux-source-6.12	# the base tree
	qemu-system-x86		# the guest
	busybox-static		# the guest's user space
	build-essential flex bison bc kmod cpio xz-utils rsync
	libelf-dev libssl-dev dwarves	# kernel build dependencies
	python3			# kunit.py's KTAP parser, our report
	python3-sphinx python3-yaml	# make docs: Sphinx for Documentation/mm
	e2fsprogs gzip		# suite pagemaps: the ext4 image for fsdax
	gnuplot-nox		# make bench: the plot
	ccache			# make series-check: rebuilds after each patch
)

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
		missing+=("$p")
	fi
done

if ((${#missing[@]} == 0)); then
	stage_done "all ${#packages[@]} packages present"
	exit 0
fi

if [ "$(id -u)" != 0 ]; then
	stage_fail "missing packages (${missing[*]}); run as root or install them"
fi
log=$BUILD/setup.log
mkdir -p "$BUILD"
echo "setup: installing ${missing[*]} (log: $log)"
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
	tail -n 20 "$log" >&2
	stage_fail "apt-get failed; full log: $log"
fi
stage_done "installed ${#missing[@]} packages"
