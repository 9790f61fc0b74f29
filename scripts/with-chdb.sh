#!/usr/bin/env bash
# Runs a command against the current ClickHouse engine, then stops it:
# `scripts/chdb-server.py`, a test-only ClickHouse HTTP front over chDB (the
# current engine in process, from PyPI's `chdb`; `scripts/install-deps.sh`
# installs it), on a free port of 127.0.0.1, its data in a temporary
# directory. Like `scripts/with-clickhouse.sh`, the command finds it in
# THROUGHLINE_TEST_CLICKHOUSE_URL; THROUGHLINE_TEST_CLICKHOUSE_COMPRESSION=none
# tells the tests' store to send plain inserts (the front speaks no
# compressed block format).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
python=$("$here/scripts/chdb-python.sh") || {
  echo "error: no chDB for the current ClickHouse engine; run scripts/install-deps.sh" >&2
  exit 1
}
dir=$(mktemp -d "${TMPDIR:-/tmp}/throughline-chdb.XXXXXX")
"$python" "$here/scripts/chdb-server.py" --port-file "$dir/url" >"$dir/log" 2>&1 &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM

for _ in $(seq 1 300); do
  [ -s "$dir/url" ] && break
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "error: the chDB front exited during start-up; its log:" >&2
    tail -20 "$dir/log" >&2 || true
    exit 1
  fi
  sleep 0.1
done
[ -s "$dir/url" ] || { echo "error: the chDB front did not start within 30 s" >&2; exit 1; }
url=$(cat "$dir/url")
[ "$(curl -s "$url/ping")" = "Ok." ] || { echo "error: the chDB front at $url does not answer /ping" >&2; exit 1; }
echo "current ClickHouse (chDB $("$python" -c 'import chdb; print(chdb.__version__)')) for this run: $url"

export THROUGHLINE_TEST_CLICKHOUSE_URL="$url"
export THROUGHLINE_TEST_CLICKHOUSE_COMPRESSION=none
# The same for a `throughline` binary that a test starts on this URL.
export THROUGHLINE_CLICKHOUSE_COMPRESSION=none
"$@"
