#!/usr/bin/env bash
# Stage "boot": the flavour's kernel and initramfs in QEMU (TCG: KVM is not
# usable here), in one of four modes:
#   check  run the suites of the boot mode (boot.sh check [BOOTMODE], one
#          of harness/modes, default its first): console to
#          build/<flavour>/check/console.log (check-<mode>/ for another
#          mode), one line per suite on the terminal; killed after TIMEOUT
#          seconds (default: the sum of the mode's suites' time limits, plus
#          five minutes for booting, each times LIMIT_SCALE);
#   bench  the benchmark once per driver (/etc/hmm-bench), console to
#          build/<flavour>/bench/console.log, the same lines on the terminal;
#   run    the demo, its output on the terminal, console in build/<flavour>/run;
#   shell  an interactive busybox shell on the terminal (Ctrl-A X quits QEMU).
# The guest gets 4 GiB with 512 MiB at 0x140000000 reserved by memmap=, which
# test_hmm turns into the two device-coherent devices (hmm_dmirror2 and 3),
# and three legacy pmem regions (memmap=nn!ss, gaps between them so they
# stay three: 128 MiB for fsdax, 128 MiB for device-dax at 2 MiB, 64 MiB
# for device-dax at 4 KiB, ending where RAM does at 6 GiB) plus an NVMe
# controller with a 16 MiB controller memory buffer for suite pagemaps
# (fsdax, device-dax, p2pdma, a device mirroring DAX).
# ICOUNT=1 makes the guest clock follow instructions executed (benchmarks).
# DRY_RUN=1 prints the folder, the time limit and the QEMU command line.
# QEMU_PLUGIN loads a TCG plugin with its arguments (make bench INSNS=1).
# KERNEL, INITRD and BOOT_OUT replace the flavour's bzImage, initramfs.cpio
# and console folder (make bench, so that runs of it can overlap).
source "$(dirname "$0")/common.sh"
mode=${1:-check}
bootmode=${2:-$(mode_default)}
mode_exists "$bootmode" || exit 2
stage_start boot

# The guest's time limit: what its suites may take, and booting.
guest_limit() {
	local total=300 modes limit
	[ -f "$FDIR/hmm-suites" ] || { echo 900; return; }
	while IFS=$'\t' read -r _ modes limit _; do
		case ",$modes," in *",*,"*|*",$bootmode,"*) total=$((total + limit)) ;; esac
	done <"$FDIR/hmm-suites"
	echo $((total * LIMIT_SCALE))
}
if [ "$mode" = check ]; then
	TIMEOUT=${TIMEOUT:-$(guest_limit)}
else
	TIMEOUT=${TIMEOUT:-900}
fi
# A mode may ask for -icount itself (mode "dma": its device's DMA takes
# 100 ms of guest time per transfer, which icount's sleep=off skips while
# the guest waits); then it is booted as with ICOUNT=1, with its own, and
# with one vCPU and no idle=poll even for benchmarks (below): a polling
# vCPU would count out every 100 ms instruction by instruction.
# shellcheck disable=SC2207  # the mode's QEMU arguments, split at spaces
mode_args=($(mode_qemu "$bootmode"))
icount=${ICOUNT:-0}
[[ " ${mode_args[*]} " == *" -icount "* ]] && icount=mode

spm0=0x140000000
spm1=0x150000000
cmdline="console=ttyS0 printk.time=1 panic=-1 $(mode_cmdline "$bootmode")"
cmdline+=" memmap=512M\$$spm0 hmm.spm0=$spm0 hmm.spm1=$spm1 hmm.mode=$mode"
cmdline+=" hmm.bootmode=$bootmode"
cmdline+=" memmap=128M!0x160000000 memmap=128M!0x170000000 memmap=64M!0x17c000000"
# Under -icount QEMU 7.2 runs both vCPUs in one thread, and a vCPU halted
# in the idle loop can miss its timer interrupts for as long as the other
# one stays busy: a benchmark keeping CPU 0 busy for minutes got RCU stall
# reports ("timer wakeup didn't happen") from CPU 1, and grace periods
# (evict) varied by 2x. For benchmarks, idle=poll keeps the idle vCPU
# executing, so it takes its interrupts on time; its idle instructions
# count on the guest clock for both flavours alike. Not for check runs
# (check-debug): there every idle second would cost as much host time as a
# busy one (kmemleak's 7 s waits went from 29 s to 227 s), and their
# suites keep both vCPUs waking each other.
[ "$icount" = 1 ] && [ "$mode" = bench ] && cmdline+=" idle=poll"

# Under -icount QEMU 7.2's round-robin scheduler can starve one vCPU for
# good while the other stays busy: the debug guest hung in
# fork_with_exclusive_entries (2 runs in 6, and again here) with CPU 1
# frozen at the first instruction of an interrupt handler for minutes
# (harness/vcpus.py samples) while CPU 0 kept running, and no kernel
# report. A check boot with ICOUNT=1 therefore gets one vCPU; it loses no
# speed (both ran on one host thread) but the debug kernel's runs see no
# two CPUs at once. Benchmarks keep two, with idle=poll (above), except
# in a mode with its own -icount.
smp=2
[ "$icount" != 0 ] && [ "$mode" != bench ] && smp=1
[ "$icount" = mode ] && smp=1

# One host thread runs every vCPU (-accel tcg,thread=single), as -icount
# does anyway. With a thread per vCPU, a static key flipped while another
# vCPU executed the patched code left that vCPU running the breakpoint the
# kernel plants during the patch after the patch was complete: an int3 Oops
# in __schedule() in one boot in seven (README.md, "Open findings"). One
# thread executes one vCPU at a time, so a patch is never half seen.
accel=(-accel 'tcg,thread=single')

kernel=${KERNEL:-$OBJ/arch/x86/boot/bzImage}
initrd=${INITRD:-$FDIR/initramfs.cpio}
# Two NUMA nodes of 2 GiB: the CPUs and the boot on node 0, node 1 only
# memory, a target for move_pages(), mbind() and NUMA balancing.
# shellcheck disable=SC2054 # QEMU's option values are comma lists
qemu=(qemu-system-x86_64 "${accel[@]}" -machine q35 -cpu max -smp "$smp" -m 4G -no-reboot
	-object memory-backend-ram,id=node0,size=2G
	-object memory-backend-ram,id=node1,size=2G
	-numa "node,nodeid=0,cpus=0-$((smp - 1)),memdev=node0"
	-numa node,nodeid=1,memdev=node1
	-kernel "$kernel" -initrd "$initrd"
	-append "$cmdline")
[ "$icount" = 1 ] && qemu+=(-icount 'shift=0,sleep=off')
[ -n "${QEMU_PLUGIN:-}" ] && qemu+=(-plugin "$QEMU_PLUGIN")
# The mode's QEMU arguments come before the PCI devices: an IOMMU must
# exist before the devices whose DMA it translates.
qemu+=("${mode_args[@]}"
	-blockdev "driver=null-co,node-name=nvme0,size=67108864,read-zeroes=on"
	-device "nvme,serial=hmm-cmb,drive=nvme0,cmb_size_mb=16")
if [ "$mode" = check ]; then
	out=${BOOT_OUT:-$(mode_dir "$bootmode")}
else
	out=${BOOT_OUT:-$FDIR/$mode}
fi
# DRY_RUN=1: say what would boot, and how, without booting.
if [ "${DRY_RUN:-0}" = 1 ]; then
	printf 'out=%s\ntimeout=%s\n' "$out" "$TIMEOUT"
	printf 'qemu:'
	printf ' %q' "${qemu[@]}"
	printf '\n'
	exit 0
fi
for f in "$kernel" "$initrd"; do
	[ -f "$f" ] || stage_fail "$f is missing; run 'make initramfs'"
done

if [ "$mode" = shell ]; then
	"${qemu[@]}" -nographic
	exit 0
fi

mkdir -p "$out"
log=$out/console.log
rm -f "$out/boot.status"

# Console lines go to the log; the terminal gets the harness's markers (check,
# bench) or the guest's user-space output (run). Kernel messages are never
# silenced (no "quiet"): a warning must reach the log to be caught.
tag=$(mode_tag "$bootmode")
tag=${tag:+$tag/}
show() {
	local t0 line name=""
	t0=$(date +%s)
	while IFS= read -r line; do
		if [ "$mode" = run ]; then
			# The demo's own lines; kernel messages stay in the log
			# (a kernel report fails the stage below, and is shown).
			case "$line" in "HMM-HARNESS: "*|"["*) ;; *) printf '%s\n' "$line" ;; esac
			continue
		fi
		case "$line" in
		"HMM-HARNESS: begin "*)
			name=${line#HMM-HARNESS: begin }
			name=${name%%\[*}	# a kernel message glued on
			t0=$(date +%s) ;;
		"HMM-BENCH "*)
			# A figure done: its median, and the time since the
			# driver's run began, as progress.
			local _l label fig back bytes reps med
			read -r _l label fig back bytes reps med _ <<<"$line"
			printf '%-11s %-10s %s %s %s %s KiB: %s ns median of %s (%ss)\n' \
				bench "[$FLAVOUR]" "$label" "$fig" "$back" "$((bytes >> 10))" \
				"$med" "$reps" "$(($(date +%s) - t0))" ;;
		"HMM-HARNESS: end "*)
			printf '%-11s %-10s suite %s%s: %s (%ss)\n' boot "[$VARIANT]" "$tag" "$name" \
				"${line##* }" "$(($(date +%s) - t0))" ;;
		esac
	done
}

# QEMU's monitor on a socket (its path in $out/monitor): a guest that hangs
# with no kernel report can still be asked where its vCPUs are
# (harness/vcpus.py). Twenty seconds before the time limit the harness asks
# it itself, into $out/vcpus.txt. A socket path has at most 107 bytes.
sock=$out/monitor.sock
((${#sock} < 100)) || sock=$(mktemp -u /tmp/hmm-monitor.XXXXXX)
rm -f "$sock" "$out/vcpus.txt"
echo "$sock" >"$out/monitor"
watcher=
if ((TIMEOUT > 60)); then
	(
		trap 'kill "$nap" 2>/dev/null; exit 0' TERM
		sleep $((TIMEOUT - 20)) &
		nap=$!
		wait "$nap"
		"$HARNESS/vcpus.py" "$sock" "$OBJ/System.map" 10 >"$out/vcpus.txt" 2>&1
	) &
	watcher=$!
fi

set +e
timeout -k 10 "$TIMEOUT" "${qemu[@]}" -display none -serial stdio \
	-monitor "unix:$sock,server=on,wait=off" \
	</dev/null 2>&1 | sed -u 's/\r//g' | tee "$log" | show
rc=${PIPESTATUS[0]}
set -e
if [ -n "$watcher" ]; then
	kill "$watcher" 2>/dev/null || true
	wait "$watcher" 2>/dev/null || true
fi
rm -f "$sock"
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
	echo "timeout $TIMEOUT" >"$out/boot.status"
	if [ -s "$out/vcpus.txt" ]; then
		echo "the vCPUs before the time limit ($out/vcpus.txt):"
		sed -n '1,3p' "$out/vcpus.txt"
	fi
	[ "$mode" = run ] && stage_fail "the guest did not finish within ${TIMEOUT}s; console: $log"
	stage_done "guest killed after ${TIMEOUT}s; console: $log"
	exit 0
fi
echo "exit $rc" >"$out/boot.status"
if [ "$mode" != check ]; then
	# The suites have their verdict from the parse stage; the demo's and
	# the benchmark's are here.
	python3 "$HARNESS/results.py" scan "$log" ||
		stage_fail "the kernel reported a problem (above); console: $log"
	grep -q '^HMM-HARNESS: done' "$log" ||
		stage_fail "the $mode did not complete; console: $log"
	if grep -Eq '^HMM-HARNESS: end .* rc=[1-9]' "$log"; then
		stage_fail "the $mode failed; console: $log"
	fi
fi
stage_done "guest powered off (qemu exit $rc); console: $log"
