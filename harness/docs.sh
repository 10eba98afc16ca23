#!/usr/bin/env bash
# Stage "docs": the documentation of our files builds without a warning.
#
#   docs.sh kernel-doc  scripts/kernel-doc -none -Wall on each C file and
#                       header of ours (the .c and .h files under this
#                       repository's kernel paths). Writes
#                       build/check/docs.json, which `make check` counts as
#                       suite "docs", one test per file; fails on any warning
#                       (with --record: only writes them down, for `make
#                       check`, whose report counts them).
#   docs.sh sphinx      `make SPHINXDIRS=mm htmldocs` on flavour ours's tree
#                       (Debian's Sphinx), from scratch, into build/ours/docs.
#                       Fails on a warning or error that names
#                       Documentation/mm/hmm.rst or one of our files; the
#                       rest of Documentation/mm is upstream's, and its
#                       warnings are counted but not ours to fix.
#   docs.sh             both (`make docs`).
#
# Our documentation exists only in flavour ours, whatever FLAVOUR says.
FLAVOUR=ours DEBUG=0
source "$(dirname "$0")/common.sh"

# Our C files and headers, relative to the top of the repository.
our_sources() {
	(cd "$TOP" && find mm include lib tools -name '*.[ch]' 2>/dev/null | sort)
}

docs_kernel_doc() {
	stage_start kernel-doc
	local log=$BUILD/check/docs.log tsv f n nfiles=0 nwarn=0
	[ -x "$BASE/scripts/kernel-doc" ] || stage_fail "no $BASE/scripts/kernel-doc; run 'make tree'"
	mkdir -p "$BUILD/check"
	tsv=$(mktemp)
	: >"$log"
	cd "$TOP"	# so that warnings name our files by their kernel paths
	while read -r f; do
		# kernel-doc warns on stderr; -none prints nothing else.
		n=$("$BASE/scripts/kernel-doc" -none -Wall "$f" 2>&1 |
			tee -a "$log" | grep -c . || true)
		printf '%s\t%s\n' "$f" "$n" >>"$tsv"
		nfiles=$((nfiles + 1))
		nwarn=$((nwarn + n))
	done < <(our_sources)
	python3 - "$tsv" "$log" "$BUILD/check/docs.json" <<'EOF'
import json, sys
tsv, log, out = sys.argv[1:]
rows = [l.rstrip('\n').split('\t') for l in open(tsv) if l.strip()]
bad = [(f, int(n)) for f, n in rows if int(n)]
json.dump({'flavour': '', 'console': log, 'problems': [],
           'suites': [{'suite': 'docs', 'passed': len(rows) - len(bad),
                       'failed': len(bad), 'skipped': 0, 'skipped_tests': [],
                       'failures': [{'test': f, 'why': '%d kernel-doc '
                                     'warnings' % n, 'where': log}
                                    for f, n in bad]}]},
          open(out, 'w'), indent=2)
EOF
	rm -f "$tsv"
	if ((nwarn)); then
		cat "$log" >&2
		# Recorded for the report, which gives the verdict.
		[ "$record" = 1 ] &&
			stage_done "$nwarn kernel-doc warnings in $nfiles files, recorded (log: $log)" &&
			return 0
		stage_fail "$nwarn kernel-doc warnings in $nfiles files (log: $log)"
	fi
	stage_done "$nfiles files, no kernel-doc warning"
}

docs_sphinx() {
	stage_start sphinx
	local out=$FDIR/docs log=$FDIR/docs.log pats pid rc=0 ours others
	command -v sphinx-build >/dev/null || stage_fail "no sphinx-build; run 'make setup'"
	# Warnings name a file by path, or a page by its name without .rst.
	pats=$(mktemp)
	printf '%s\n' /Documentation/mm/hmm.rst: /Documentation/mm/hmm: >"$pats"
	our_sources | sed 's#^#/#; s#$#:#' >>"$pats"
	mkdir -p "$out"
	# -E: read every page again, so that a warning is never hidden by the
	# saved state of an earlier build.
	make -C "$SRC" O="$out" SPHINXDIRS=mm SPHINXOPTS="-E -q" htmldocs >"$log" 2>&1 &
	pid=$!
	progress_while "$pid" "$log" "building Documentation/mm"
	wait "$pid" || rc=$?
	ours=$(grep -iE 'warning|error' "$log" | grep -cFf "$pats" || true)
	others=$(grep -iE 'warning|error' "$log" | grep -cvFf "$pats" || true)
	if ((ours)); then
		grep -iE 'warning|error' "$log" | grep -Ff "$pats" >&2
	fi
	rm -f "$pats"
	((rc == 0)) || stage_fail "Sphinx failed (exit $rc); log: $log"
	((ours == 0)) || stage_fail "$ours warnings from our files (above); log: $log"
	stage_done "Documentation/mm: no warning from ours ($others upstream's); $out/Documentation/output/mm/hmm.html"
}

record=0
[ "${2:-}" = --record ] && record=1
case "${1:-all}" in
kernel-doc) docs_kernel_doc ;;
sphinx) docs_sphinx ;;
all) docs_kernel_doc && docs_sphinx ;;
*) echo "usage: $0 [kernel-doc|sphinx]" >&2; exit 2 ;;
esac
