#!/usr/bin/env bash
# The fault-injection suite (root): tests/tests/faults.rs and pileup.rs, then one table of
# every test's row (faults injected, invariants checked, violations; e2e::tally appends the
# rows to target/debug/faults-table.txt). Exits non-zero when a test failed.
set -uo pipefail
cd "$(dirname "$0")/.."
table=target/debug/faults-table.txt
rm -f "$table"
timeout "${FAULTS_TIMEOUT:-1200}" cargo test -p e2e --test faults --test pileup -- --test-threads "${FAULTS_THREADS:-2}" "$@"
rc=$?
printf '%-28s %8s %12s %11s\n' FAULTS injected invariants violations
cat "$table" 2>/dev/null
awk '{f+=$(NF-2); c+=$(NF-1); v+=$NF} END {printf "%-28s %8d %12d %11d\n", "total", f, c, v}' "$table" 2>/dev/null
exit $rc
