#!/usr/bin/env bash
# make series-check: what a maintainer runs on the series before reading it.
#
# The patches `make series` wrote (build/series/) are applied with git am,
# one at a time, on a fresh checkout of the pristine base: a worktree of its
# own (build/series-check/tree), reset to the base commit and cleaned before
# every run, never the tree `make series` committed in. After each patch:
#   checkpatch  scripts/checkpatch.pl --strict on the patch file: errors,
#               warnings and checks are counted; an error or a warning fails;
#   kernel-doc  scripts/kernel-doc -none -Wall on every C file and header the
#               patch adds or changes (as suite docs does); a warning the
#               file did not have before the patch fails (a base file keeps
#               its own old ones);
#   build       bzImage and modules with the harness's configuration of
#               flavour ours (configs/*.config merged on the final tree),
#               through olddefconfig on the tree as it stands, so a symbol a
#               later patch adds is simply absent until then. One build
#               folder (build/series-check/obj), incremental; ccache when it
#               is installed, so a second run recompiles little.
# After the last patch: our kernel objects again with W=1 (any warning in
# one of our files fails), and the tree must be flavour ours's, byte for
# byte, in exactly the files flavour ours manages (harness/tree.sh).
#
# One line per patch, then a total; logs in build/series-check/log/.
FLAVOUR=ours	# the series is flavour ours, whatever FLAVOUR says
source "$(dirname "$0")/common.sh"
stage_start series-check
run_t0=$_stage_t0

out=$BUILD/series-check
repo=$BUILD/series/repo
tree=$out/tree
obj=$out/obj
logs=$out/log
mapfile -t patches < <(find "$BUILD/series" -maxdepth 1 -name '0*.patch' \
	! -name '0000-cover-letter.patch' | sort)
((${#patches[@]})) || stage_fail "no patches in $BUILD/series; run 'make series'"
rm -rf "$logs"
mkdir -p "$logs" "$obj"

export CCACHE_DIR=$out/ccache CCACHE_MAXSIZE=4G
kmake() {
	local cc=(CC=gcc)
	command -v ccache >/dev/null && cc=(CC="ccache gcc")
	make -C "$tree" O="$obj" ARCH=x86_64 "${cc[@]}" "$@"
}

# The fresh tree: a worktree of the base commit, made once, then reset and
# cleaned each run so it holds the pristine base and nothing else (files the
# reset rewrites get new time stamps, so the build stays correct).
base=$(git -C "$repo" rev-parse base)
if [ "$(cat "$out/.base" 2>/dev/null)" != "$base" ] || ! git -C "$tree" rev-parse -q HEAD >/dev/null 2>&1; then
	echo "series-check: checking out the base in build/series-check/tree (once)"
	rm -rf "$tree"
	git -C "$repo" worktree prune
	git -C "$repo" worktree add -q --detach "$tree" base
	echo "$base" >"$out/.base"
fi
git -C "$tree" am --abort >/dev/null 2>&1 || true
git -C "$tree" checkout -q -f --detach base
git -C "$tree" clean -q -fdx
[ -z "$(git -C "$tree" status --porcelain)" ] || stage_fail "the fresh tree is not the pristine base"
stage_done "fresh tree at the base ($(git -C "$tree" log -1 --format=%s base))"

# The configuration of flavour ours (config.sh, default fragments), merged
# on flavour ours's tree: each step starts from it.
stage_start config
rm -f "$out/config/.hmm-config-key"	# config.sh's key does not cover Kconfig files
"$HARNESS/config.sh" "$out/config" >"$logs/config.log" 2>&1 ||
	{ cat "$logs/config.log" >&2; stage_fail "config.sh failed"; }
seed=$out/config/.config
stage_done "flavour ours's configuration, $(grep -c '=[ym]$' "$seed") options"

# checkpatch's "total: E errors, W warnings, C checks" as "E W C".
checkpatch_counts() {
	sed -n 's/^total: \([0-9]*\) errors, \([0-9]*\) warnings, \([0-9]*\) checks.*/\1 \2 \3/p' "$1"
}

failed=0
napplied=0
nbuilt=0
# kdoc_new FILE: the kernel-doc warnings of FILE (relative to the tree)
# that its version before the patch did not have; a base file a patch
# changes keeps its own old warnings out of the count. Compared by
# message, without the line numbers the patch moves.
kdoc_new() {
	local f=$1 before=$out/kdoc-before
	rm -rf "$before"
	mkdir -p "$before/$(dirname "$f")"
	if git -C "$tree" cat-file -e "HEAD~1:$f" 2>/dev/null; then
		git -C "$tree" show "HEAD~1:$f" >"$before/$f"
	else
		: >"$before/$f"
	fi
	(cd "$tree" && scripts/kernel-doc -none -Wall "$f") 2>&1 | sort >"$out/kdoc-after.txt" || true
	(cd "$tree" && scripts/kernel-doc -none -Wall "$before/$f") 2>&1 |
		sed "s|^$before/||" | sort >"$out/kdoc-old.txt" || true
	# Each old message excuses one new line with the same message.
	awk -F': ' '
		NR == FNR { sub(/^[^:]*:[0-9]*: /, ""); old[$0]++; next }
		{ msg = $0; sub(/^[^:]*:[0-9]*: /, "", msg)
		  if (old[msg] > 0) old[msg]--; else print }
	' "$out/kdoc-old.txt" "$out/kdoc-after.txt"
}

tot_e=0 tot_w=0 tot_c=0 tot_kdoc=0
printf '%-3s %-64s %-7s %-6s %-8s %-4s %s\n' '#' subject applies builds 'cp E/W/C' kdoc time
for p in "${patches[@]}"; do
	stage_start patch
	n=$(basename "$p" | cut -c1-4)
	subject=$(sed -n 's/^Subject: \[PATCH[^]]*\] //p' "$p" | head -n 1)
	if ! git -C "$tree" -c user.name=series-check -c user.email=series-check@localhost am -q "$p" >"$logs/$n-am.log" 2>&1; then
		printf '%-3s %-64.64s %-7s\n' "$((10#$n))" "$subject" no
		cat "$logs/$n-am.log" >&2
		failed=1
		break
	fi
	napplied=$((napplied + 1))

	(cd "$tree" && scripts/checkpatch.pl --strict --no-color "$p") >"$logs/$n-checkpatch.log" 2>&1 || true
	counts=$(checkpatch_counts "$logs/$n-checkpatch.log")
	if [ -z "$counts" ]; then
		counts="1 0 0"	# no total line: checkpatch itself failed
		echo "series-check: checkpatch printed no total" >>"$logs/$n-checkpatch.log"
	fi
	read -r e w c <<<"$counts"
	tot_e=$((tot_e + e)) tot_w=$((tot_w + w)) tot_c=$((tot_c + c))
	((e + w == 0)) || failed=1

	kdoc=0
	: >"$logs/$n-kernel-doc.log"
	while read -r f; do
		kdoc_new "$f" >>"$logs/$n-kernel-doc.log"
	done < <(git -C "$tree" diff --name-only --diff-filter=AM HEAD~1 HEAD -- '*.c' '*.h')
	kdoc=$(grep -c . "$logs/$n-kernel-doc.log" || true)
	tot_kdoc=$((tot_kdoc + kdoc))
	((kdoc == 0)) || failed=1

	built=yes
	cp "$seed" "$obj/.config"
	if ! kmake olddefconfig >"$logs/$n-build.log" 2>&1; then
		built=no
	else
		kmake -j"$JOBS" bzImage modules >>"$logs/$n-build.log" 2>&1 &
		pid=$!
		progress_while "$pid" "$logs/$n-build.log" "building patch $((10#$n))"
		wait "$pid" || built=no
	fi
	if [ "$built" = yes ]; then
		nbuilt=$((nbuilt + 1))
	else
		failed=1
		grep -E 'error|Error' "$logs/$n-build.log" | head -n 10 >&2 || true
	fi
	printf '%-3s %-64.64s %-7s %-6s %-8s %-4s %s\n' "$((10#$n))" "$subject" yes "$built" \
		"$e/$w/$c" "$kdoc" "$(stage_elapsed)"
done
printf '%-3s %-64s %-7s %-6s %-8s %-4s\n' '' "total: ${#patches[@]} patches" \
	"$napplied" "$nbuilt" "$tot_e/$tot_w/$tot_c" "$tot_kdoc"

if ((napplied < ${#patches[@]})); then
	stage_fail "patch $((napplied + 1)) does not apply (log: $logs)"
fi

# W=1: our kernel objects (the C files of ours the configuration builds),
# rebuilt with the extra warnings. A warning counts when it names one of our
# files; the rest of the tree is upstream's and not ours to fix.
stage_start W=1
mapfile -t ours < <(git -C "$tree" diff --name-only --diff-filter=AM base HEAD)
objs=()
for f in "${ours[@]}"; do
	case "$f" in
	tools/*) ;;
	*.c) [ -f "$obj/${f%.c}.o" ] && objs+=("${f%.c}.o") ;;
	esac
done
((${#objs[@]})) || stage_fail "none of our C files is built"
kmake -j"$JOBS" W=1 "${objs[@]}" >"$logs/w1.log" 2>&1 || { failed=1; tail -n 20 "$logs/w1.log" >&2; }
pattern=$(printf '%s\n' "${ours[@]}" | sed 's/[.]/\\./g' | paste -sd'|')
nw1=$(grep -cE "(^|/)($pattern):[0-9]+:([0-9]+:)? warning:" "$logs/w1.log" || true)
nother=$(grep -E ': warning:' "$logs/w1.log" | grep -cvE "(^|/)($pattern):" || true)
if ((nw1)); then
	grep -E "(^|/)($pattern):[0-9]+:([0-9]+:)? warning:" "$logs/w1.log" >&2
	failed=1
fi
stage_done "${#objs[@]} objects of ours: $nw1 warnings in our files, $nother elsewhere (log: $logs/w1.log)"

# The tree after the last patch is flavour ours's.
stage_start tree
FLAVOUR=ours "$HARNESS/tree.sh" >/dev/null
same=yes
if ! cmp -s <(printf '%s\n' "${ours[@]}" | sort) <(git -C "$tree" diff --name-only base HEAD | sort); then
	same=no	# a patch deletes a file
elif ! cmp -s <(printf '%s\n' "${ours[@]}" | sort) "$SRC/.hmm-managed"; then
	same=no
	echo "the series changes other files than flavour ours manages" >&2
else
	for f in "${ours[@]}"; do
		cmp -s "$tree/$f" "$SRC/$f" || { same=no; echo "$f differs from flavour ours's" >&2; }
	done
fi
[ "$same" = yes ] || failed=1
stage_done "after the last patch: ${#ours[@]} files, identical to flavour ours: $same"

stage_start series-check
_stage_t0=$run_t0
((failed == 0)) || stage_fail "${#patches[@]} patches: $napplied apply, $nbuilt build, checkpatch $tot_e/$tot_w/$tot_c, kernel-doc $tot_kdoc, W=1 $nw1, tree $same (logs: $logs)"
stage_done "${#patches[@]} patches apply and build; checkpatch $tot_e errors, $tot_w warnings, $tot_c checks; kernel-doc and W=1 clean; final tree is flavour ours's"
