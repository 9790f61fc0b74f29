#!/usr/bin/env bash
# `cargo test --workspace` (or, given `-p CRATE ...`, only that), then one
# closing line with the totals over every test binary ("N passed, N
# failed"), so a reader of the log's end sees the whole run and not only the
# last, possibly empty, binary.
set -euo pipefail
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
scope=(--workspace)
[ "${1:-}" = "-p" ] && scope=()
"${CARGO:-cargo}" test "${scope[@]}" "$@" 2>&1 | tee "$log" || status=$?
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "%d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
