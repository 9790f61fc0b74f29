#!/usr/bin/env bash
# Installs what building and testing Throughline needs and the machine lacks:
# ClickHouse (server and client), Chromium with chromedriver (for the
# console's browser tests), Prometheus's Alertmanager and promtool (the
# alert receiver's test runs a real Alertmanager; promtool checks both
# /metrics) and ZooKeeper (`make test-cluster`) from the system's packages,
# chDB (the current ClickHouse engine in process, for the tests' second
# run) from PyPI into
# target/chdb-venv, and a Rust toolchain check. Safe to run again: it only
# installs what is missing.
set -euo pipefail

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else
    echo "error: need root (or sudo) to run: $*" >&2
    exit 1
  fi
}

apt_install() {
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: $* missing and this is not a Debian/Ubuntu machine; install them with your package manager" >&2
    exit 1
  fi
  echo "installing: $*"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get install -y -qq "$@" >/dev/null 2>&1 || {
    as_root apt-get update -qq
    as_root apt-get install -y -qq "$@"
  }
}

if ! command -v clickhouse-server >/dev/null 2>&1 && ! command -v clickhouse >/dev/null 2>&1; then
  apt_install clickhouse-server clickhouse-client
fi

command -v curl >/dev/null 2>&1 || apt_install curl

# The console's browser tests drive headless Chromium through chromedriver.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  apt_install chromium chromium-driver
fi

# The Alertmanager receiver is tested against a real Alertmanager, and both
# /metrics outputs against `promtool check metrics`. Debian's packages ship
# services too; the tests start their own Alertmanager and nothing else.
if [ ! -x /usr/bin/prometheus-alertmanager ] && ! command -v alertmanager >/dev/null 2>&1; then
  apt_install prometheus-alertmanager
fi
command -v promtool >/dev/null 2>&1 || apt_install prometheus

# `make test-cluster` replicates through ZooKeeper: Debian's package (3.8,
# its jars; the tests start their own server with `java`, not its service).
if [ ! -f /usr/share/java/zookeeper.jar ]; then
  apt_install zookeeper
fi
command -v java >/dev/null 2>&1 || apt_install default-jre-headless

# `make test` runs part of the suite on the current engine too
# (scripts/with-chdb.sh); a pinned chDB where python3 lacks it.
command -v python3 >/dev/null 2>&1 || apt_install python3 python3-venv
"$(dirname "$0")/chdb-python.sh" --install >/dev/null

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found; install a Rust toolchain (rustup) first" >&2
  exit 1
fi
