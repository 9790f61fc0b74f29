#!/usr/bin/env bash
# Prints the Python that has the pinned chDB (the current ClickHouse engine
# for the tests, `scripts/with-chdb.sh`), or fails. With `--install`, first
# installs it where missing: into a virtual environment under target/
# (ignored by git), so a clean clone needs only python3 and PyPI.
set -euo pipefail

# chdb 4.4.0 is ClickHouse 26.9 (its engine is the chdb-core wheel). Its
# other requirements, pandas and pyarrow, serve DataFrames, which the front
# does not use: installed without them (580 MB instead of 910 MB).
CHDB_VERSION=4.4.0
CHDB_CORE_VERSION=26.9.0
here=$(cd "$(dirname "$0")/.." && pwd)
venv="$here/target/chdb-venv"

has_chdb() {
  "$1" -c "import sys, chdb; sys.exit(chdb.__version__ != '$CHDB_VERSION')" >/dev/null 2>&1
}

for python in "$venv/bin/python3" python3; do
  if has_chdb "$python"; then command -v "$python"; exit 0; fi
done
[ "${1:-}" = "--install" ] || exit 1

command -v python3 >/dev/null 2>&1 || { echo "error: python3 not found; install it (apt-get install python3 python3-venv)" >&2; exit 1; }
echo "installing: chdb $CHDB_VERSION (the current ClickHouse engine for the tests) into $venv" >&2
if [ ! -x "$venv/bin/python3" ]; then
  python3 -m venv "$venv" >&2 || { echo "error: python3 -m venv failed; install python3-venv" >&2; exit 1; }
fi
"$venv/bin/python3" -m pip install --quiet --disable-pip-version-check --no-deps \
  "chdb==$CHDB_VERSION" "chdb-core==$CHDB_CORE_VERSION" >&2
has_chdb "$venv/bin/python3" || { echo "error: chdb $CHDB_VERSION did not install into $venv" >&2; exit 1; }
echo "$venv/bin/python3"
