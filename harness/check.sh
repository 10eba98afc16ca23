#!/usr/bin/env bash
# The guest half of `make check` for one flavour: a boot per boot mode of
# the run (MODES, or every mode of harness/modes), each parsed into its
# results; a mode where the flavour runs no suite is left out. The verdict
# is the report's (harness/report.sh).
source "$(dirname "$0")/common.sh"
modes=$(run_modes)
for m in $modes; do
	mode_has_suites "$m" || continue
	"$HARNESS/boot.sh" check "$m"
	"$HARNESS/parse.sh" "$m"
done
