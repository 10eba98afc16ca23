#!/usr/bin/env bash
# Stage "tree": the flavour's kernel source tree.
#
# The base tarball is unpacked once into build/base. Each flavour's tree is a
# hard-linked copy of it (seconds, no extra disk), over which this stage lays
# the files the flavour changes:
#   upstream  nothing: the pristine base;
#   ours      the base patched by patches/*.patch in the order series/order
#             gives (base_patches in common.sh), then our own files (the
#             kernel paths at the top of this repository) on top.
# A changed file is written as a new file (the hard link to the base is
# broken, never written through), and only when its content differs, so the
# kernel build stays incremental. A file that stops being ours is restored
# from the base with a fresh time stamp so that make rebuilds it.
source "$(dirname "$0")/common.sh"
stage_start tree

# Our files: everything under the kernel paths this repository holds.
our_dirs=(mm include lib tools Documentation)

[ -f "$TARBALL" ] || stage_fail "$TARBALL not found; run 'make setup'"
stamp="$(stat -c '%s %Y' "$TARBALL")"
if [ "$(cat "$BASE/.hmm-stamp" 2>/dev/null)" != "$stamp" ]; then
	echo "tree: unpacking $(basename "$TARBALL") into build/base (once)"
	rm -rf "$BUILD/base"
	mkdir -p "$BUILD/base"
	tar -xJf "$TARBALL" -C "$BUILD/base"
	echo "$stamp" >"$BASE/.hmm-stamp"
fi

if [ "$(cat "$SRC/.hmm-stamp" 2>/dev/null)" != "$stamp" ]; then
	rm -rf "$SRC"
	mkdir -p "$FDIR"
	cp -al "$BASE" "$SRC"
	rm -f "$SRC/.hmm-managed"
fi

# Build the desired content of every managed file in a scratch folder.
want=$(mktemp -d)
trap 'rm -rf "$want"' EXIT
npatches=0
if [ "$FLAVOUR" = ours ]; then
	patches=$(base_patches) || stage_fail "the base patches are out of order (above)"
	while read -r p; do
		[ -n "$p" ] || continue
		pf=$TOP/patches/$p
		# Start each touched file from the base, unless an earlier patch made it.
		sed -n 's#^+++ b/\([^[:space:]]*\).*#\1#p' "$pf" | while read -r f; do
			if [ ! -e "$want/$f" ] && [ -f "$BASE/$f" ]; then
				mkdir -p "$want/$(dirname "$f")"
				cp "$BASE/$f" "$want/$f"
			fi
		done
		patch -d "$want" -p1 --batch --forward --quiet --no-backup-if-mismatch <"$pf" >/dev/null ||
			stage_fail "patch $p does not apply to the base"
		npatches=$((npatches + 1))
	done <<<"$patches"
	for d in "${our_dirs[@]}"; do
		[ -d "$TOP/$d" ] || continue
		(cd "$TOP" && find "$d" -type f ! -name '*.orig' ! -name '*.rej') | while read -r f; do
			mkdir -p "$want/$(dirname "$f")"
			cp "$TOP/$f" "$want/$f"
		done
	done
fi
(cd "$want" && find . -type f | sed 's#^\./##' | sort) >"$want.list"
trap 'rm -rf "$want" "$want.list"' EXIT

changed=0
while read -r f; do
	if ! cmp -s "$want/$f" "$SRC/$f"; then
		mkdir -p "$SRC/$(dirname "$f")"
		rm -f "$SRC/$f"
		cp "$want/$f" "$SRC/$f"
		changed=$((changed + 1))
	fi
done <"$want.list"

restored=0
if [ -f "$SRC/.hmm-managed" ]; then
	while read -r f; do
		rm -f "$SRC/$f"
		[ -f "$BASE/$f" ] && cp "$BASE/$f" "$SRC/$f"
		restored=$((restored + 1))
	done < <(comm -23 "$SRC/.hmm-managed" "$want.list")
fi
cp "$want.list" "$SRC/.hmm-managed"

stage_done "$(wc -l <"$want.list") files ours ($npatches patches), $changed updated, $restored restored"
