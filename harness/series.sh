#!/usr/bin/env bash
# make series: the project as a patch series on the pristine base, in
# build/series/ (git format-patch output with a cover letter).
#
# series/order lists the patches: a message file (subject, then body) and
# what each patch carries (our files, and small base patches from patches/
# folded into the patch that needs them). The series is built as commits
# on top of a git repository of the pristine base (build/series/repo, made
# once; -f because Debian's .gitignore ignores the whole top level), then
# written out with git format-patch. The cover letter takes
# series/cover.txt and the summary of the last `make check`.
source "$(dirname "$0")/common.sh"
stage_start series

order=$TOP/series/order
out=$BUILD/series
repo=$out/repo
[ -f "$order" ] || stage_fail "no $order"
FLAVOUR=ours "$HARNESS/tree.sh" >/dev/null

# Every file of flavour ours must be carried by exactly one patch.
ours=$(cd "$TOP" && find mm include lib tools Documentation -type f 2>/dev/null | sort)
listed=$(sed -e '/^#/d' -e '/^$/d' "$order" | cut -f2 | tr ' ' '\n' | grep -v '^patches/' | sort)
missing=$(comm -23 <(printf '%s\n' "$ours") <(printf '%s\n' "$listed"))
extra=$(printf '%s\n' "$listed" | uniq -d)
[ -z "$missing" ] || stage_fail "series/order does not carry: $(echo "$missing" | tr '\n' ' ')"
[ -z "$extra" ] || stage_fail "series/order carries twice: $extra"
base_patches >/dev/null || stage_fail "the base patches are out of order (above)"

# The pristine base as a git repository, made once (a full copy: a
# hard-linked tree would be written through by the patches).
if [ ! -d "$repo/.git" ] || [ "$(cat "$repo/.hmm-stamp" 2>/dev/null)" != "$(cat "$BASE/.hmm-stamp")" ]; then
	echo "series: making a git repository of the base (once)"
	rm -rf "$repo"
	mkdir -p "$out"
	cp -r "$BASE" "$repo"
	(cd "$repo" && git init -q && git add -A -f &&
		git -c user.name=base -c user.email=base@localhost commit -q \
			-m "Linux $(make -s -C "$repo" kernelversion 2>/dev/null) (Debian linux-source-6.12)" &&
		git tag base)
	cp "$BASE/.hmm-stamp" "$repo/.hmm-stamp"
fi
name=$(git -C "$TOP" config user.name)
email=$(git -C "$TOP" config user.email)
git -C "$repo" checkout -q -f base
git -C "$repo" clean -q -fdx -e .hmm-stamp
git -C "$repo" checkout -q -B series

n=0
while IFS=$'\t' read -r msg items; do
	case "$msg" in ''|'#'*) continue ;; esac
	for item in $items; do
		case "$item" in
		patches/*) git -C "$repo" apply "$TOP/$item" ||
				stage_fail "$item does not apply in the series" ;;
		*) mkdir -p "$repo/$(dirname "$item")"
		   cp "$TOP/$item" "$repo/$item" ;;
		esac
	done
	git -C "$repo" add -A -f
	git -C "$repo" -c user.name="$name" -c user.email="$email" \
		commit -q -s -F "$TOP/series/$msg" || stage_fail "nothing to commit for $msg"
	n=$((n + 1))
done <"$order"

rm -f "$out"/*.patch
git -C "$repo" format-patch -q --cover-letter -o "$out" base..series >/dev/null
cover=$(ls "$out"/0000-cover-letter.patch)
# The cover letter: series/cover.txt (subject line, blank line, text) and
# the last make check's summary.
blurb=$(mktemp)
{
	tail -n +3 "$TOP/series/cover.txt"
	if [ -f "$BUILD/check/summary.tsv" ]; then
		printf '\nResults of the last make check (suite, passed, failed, skipped):\n\n'
		sed 's/^/  /' "$BUILD/check/summary.tsv"
	fi
} >"$blurb"
python3 - "$cover" "$blurb" "$(head -n 1 "$TOP/series/cover.txt")" <<'EOF'
import sys
cover, blurb, subject = sys.argv[1:]
text = open(cover).read()
text = text.replace('*** SUBJECT HERE ***', subject)
text = text.replace('*** BLURB HERE ***', open(blurb).read().rstrip('\n'))
open(cover, 'w').write(text)
EOF
rm -f "$blurb"

# The tree after the last patch must be flavour ours's: it differs from the
# base in exactly the files flavour ours manages, each byte for byte the
# same. (Comparing whole trees would trip over what builds leave in
# build/ours/src, e.g. htmldocs' generated pages.)
diffs=$(git -C "$repo" diff --shortstat base..series)
if ! cmp -s <(git -C "$repo" diff --name-only base..series | sort) "$SRC/.hmm-managed"; then
	stage_fail "the series changes other files than flavour ours does"
fi
while read -r f; do
	cmp -s "$repo/$f" "$SRC/$f" || stage_fail "$f differs from flavour ours's"
done <"$SRC/.hmm-managed"
for p in "$out"/0*.patch; do
	printf '  %s\n' "$(basename "$p")"
done
stage_done "$n patches and a cover letter in $out ($diffs); final tree identical to flavour ours"
