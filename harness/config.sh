#!/usr/bin/env bash
# Stage "config": allnoconfig plus the fragments in configs/, merged with the
# kernel's own scripts/kconfig/merge_config.sh. Every option a fragment asks
# for must survive the merge (a dependency Kconfig silently dropped is an
# error that names the option). Skipped when neither the fragments, the
# base nor a Kconfig file the flavour changes changed since the last merge.
#
# config.sh [OBJDIR FRAGMENT...]: merge into OBJDIR instead of the flavour's
# build folder, from the named fragments instead of CONFIGS (users.sh does).
source "$(dirname "$0")/common.sh"
stage_start config

obj=${1:-$OBJ}
# Flavour ours adds the KUnit and test_hmm_dma fragments: their symbols exist only with
# our patches. The debug kernel (DEBUG=1) merges the checkers last.
default="guest hmm pagemaps trace dma"
[ "$FLAVOUR" = ours ] && default="$default kunit hmm-dma"
[ "$DEBUG" = 1 ] && default="$default debug"
names=${CONFIGS:-$default}
if (($# > 1)); then
	shift
	names="$*"
fi
fragments=()
for f in $names; do
	[ -f "$TOP/configs/$f.config" ] || stage_fail "no fragment configs/$f.config"
	fragments+=("$TOP/configs/$f.config")
done

# The key: the fragments, the base, and every Kconfig file the flavour
# changes (a patch that adds a symbol must make the merge run again).
kconfigs=()
if [ -f "$SRC/.hmm-managed" ]; then
	mapfile -t kconfigs < <(grep -E '(^|/)Kconfig[^/]*$' "$SRC/.hmm-managed" || true)
fi
key=$( {
	cat "${fragments[@]}" "$SRC/.hmm-stamp"
	for k in "${kconfigs[@]}"; do
		echo "$k"
		cat "$SRC/$k"
	done
} | sha256sum | cut -c1-16)
if [ -f "$obj/.config" ] && [ "$(cat "$obj/.hmm-config-key" 2>/dev/null)" = "$key" ]; then
	stage_done "unchanged ($names)"
	exit 0
fi

mkdir -p "$obj"
log=$obj/merge_config.log
if ! (cd "$SRC" && ARCH=x86_64 scripts/kconfig/merge_config.sh -n -O "$obj" "${fragments[@]}") >"$log" 2>&1; then
	tail -n 20 "$log" >&2
	stage_fail "merge_config.sh failed; full log: $log"
fi

lost=()
while IFS= read -r line; do
	case "$line" in
	CONFIG_*=*)
		grep -qxF -- "$line" "$obj/.config" || lost+=("$line") ;;
	"# CONFIG_"*" is not set")
		opt=${line#\# }; opt=${opt%% *}
		grep -q "^$opt=" "$obj/.config" && lost+=("$line") ;;
	esac
done < <(cat "${fragments[@]}")
if ((${#lost[@]})); then
	stage_fail "the merged .config lacks: ${lost[*]} (see $log)"
fi

echo "$key" >"$obj/.hmm-config-key"
stage_done "$(grep -c '=[ym]$' "$obj/.config") options from $names"
