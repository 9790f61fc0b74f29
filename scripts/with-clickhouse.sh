#!/usr/bin/env bash
# Runs a command with a private ClickHouse server for it, then stops the
# server: its own config, data and logs in a temporary directory, free ports,
# never the system service. The command finds it in
# THROUGHLINE_TEST_CLICKHOUSE_URL. The config comes from the same templates
# `throughline up` uses (store/src/server/).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
templates="$here/store/src/server"
dir=$(mktemp -d "${TMPDIR:-/tmp}/throughline-ch.XXXXXX")
mkdir -p "$dir"/{data,tmp,user_files,format_schemas,log}

# A port nothing listens on, below the kernel's ephemeral range (outgoing
# connections' ports), so that no client's socket holds it by the time the
# server binds it.
low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
free_port() {
  local port
  while :; do
    port=$(shuf -i 10000-$((low - 1)) -n 1)
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return; fi
  done
}
http_port=$(free_port)
tcp_port=$(free_port)
while [ "$tcp_port" = "$http_port" ]; do tcp_port=$(free_port); done
sed -e "s|{{dir}}|$dir|g" -e "s|{{http_port}}|$http_port|g" -e "s|{{tcp_port}}|$tcp_port|g" \
  "$templates/config.xml" > "$dir/config.xml"
cp "$templates/users.xml" "$dir/users.xml"

if command -v clickhouse-server >/dev/null 2>&1; then
  server=(clickhouse-server)
elif command -v clickhouse >/dev/null 2>&1; then
  server=(clickhouse server)
else
  echo "error: no ClickHouse on PATH; run scripts/install-deps.sh" >&2
  exit 1
fi

"${server[@]}" --config-file="$dir/config.xml" >/dev/null 2>&1 &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM

for _ in $(seq 1 300); do
  if [ "$(curl -s "http://127.0.0.1:$http_port/ping" 2>/dev/null)" = "Ok." ]; then break; fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "error: ClickHouse exited during start-up; its log:" >&2
    tail -20 "$dir/log/clickhouse-server.err.log" >&2 || true
    exit 1
  fi
  sleep 0.1
done
[ "$(curl -s "http://127.0.0.1:$http_port/ping")" = "Ok." ] || { echo "error: ClickHouse did not start within 30 s" >&2; exit 1; }
echo "private ClickHouse for this run: http://127.0.0.1:$http_port (files in $dir)"

export THROUGHLINE_TEST_CLICKHOUSE_URL="http://127.0.0.1:$http_port"
"$@"
