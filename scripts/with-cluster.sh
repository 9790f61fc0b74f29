#!/usr/bin/env bash
# Runs a command with two private ClickHouse servers that form a cluster of
# two shards, one replica each, without ZooKeeper (`remote_servers` only),
# then stops them. Each has its own config, data and logs in a temporary
# directory, from the templates `throughline up` uses (store/src/server/),
# and serves HTTP on its TCP port + 1, as Throughline's migrator expects
# of every node of a cluster (store/src/cluster/nodes.rs). The command finds
# them in THROUGHLINE_TEST_CLUSTER (the cluster's name),
# THROUGHLINE_TEST_CLUSTER_URLS (the nodes' HTTP URLs, space-separated),
# THROUGHLINE_TEST_CLUSTER_PIDS (their servers' pids, for a benchmark's CPU
# figures) and THROUGHLINE_TEST_CLICKHOUSE_URL (the first node, also a
# single server for tests that compare). A second cluster, `<name>_stopped`, pairs the first
# node with one that never runs.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
templates="$here/store/src/server"
cluster=throughline_test

if command -v clickhouse-server >/dev/null 2>&1; then
  server=(clickhouse-server)
elif command -v clickhouse >/dev/null 2>&1; then
  server=(clickhouse server)
else
  echo "error: no ClickHouse on PATH; run scripts/install-deps.sh" >&2
  exit 1
fi

taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# A TCP port nothing listens on whose next port is free too (HTTP); below
# the kernel's ephemeral range (outgoing connections' ports), so that no
# client's socket holds it by the time a node binds it.
low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
free_pair() {
  local port
  while :; do
    port=$(shuf -i 10000-$((low - 2)) -n 1)
    if ! taken "$port" && ! taken $((port + 1)); then echo "$port"; return; fi
  done
}
tcp1=$(free_pair)
tcp2=$(free_pair)
while [ $((tcp2 - tcp1)) -ge -1 ] && [ $((tcp2 - tcp1)) -le 1 ]; do tcp2=$(free_pair); done
# A node that never runs: the cluster `<name>_stopped` has it as its second
# shard, for the test of a node that does not answer.
tcp3=$(free_pair)
while [ "$tcp3" = "$tcp1" ] || [ "$tcp3" = "$tcp2" ] || [ $((tcp3 - tcp1)) = 1 ] || [ $((tcp3 - tcp2)) = 1 ] || [ $((tcp1 - tcp3)) = 1 ] || [ $((tcp2 - tcp3)) = 1 ]; do tcp3=$(free_pair); done

dirs=()
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  for dir in "${dirs[@]}"; do rm -rf "$dir"; done
}
trap cleanup EXIT INT TERM

remote_servers="    <remote_servers>
        <$cluster>
            <shard><replica><host>127.0.0.1</host><port>$tcp1</port></replica></shard>
            <shard><replica><host>127.0.0.1</host><port>$tcp2</port></replica></shard>
        </$cluster>
        <${cluster}_stopped>
            <shard><replica><host>127.0.0.1</host><port>$tcp1</port></replica></shard>
            <shard><replica><host>127.0.0.1</host><port>$tcp3</port></replica></shard>
        </${cluster}_stopped>
    </remote_servers>"

urls=()
for tcp in "$tcp1" "$tcp2"; do
  http=$((tcp + 1))
  dir=$(mktemp -d "${TMPDIR:-/tmp}/throughline-cluster.XXXXXX")
  dirs+=("$dir")
  mkdir -p "$dir"/{data,tmp,user_files,format_schemas,log}
  sed -e "s|{{dir}}|$dir|g" -e "s|{{http_port}}|$http|g" -e "s|{{tcp_port}}|$tcp|g" \
    "$templates/config.xml" | grep -v '^</yandex>' > "$dir/config.xml"
  printf '%s\n</yandex>\n' "$remote_servers" >> "$dir/config.xml"
  cp "$templates/users.xml" "$dir/users.xml"
  "${server[@]}" --config-file="$dir/config.xml" >/dev/null 2>&1 &
  pids+=($!)
  urls+=("http://127.0.0.1:$http")
done

for i in 0 1; do
  url=${urls[$i]}
  for _ in $(seq 1 300); do
    if [ "$(curl -s "$url/ping" 2>/dev/null)" = "Ok." ]; then break; fi
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then
      echo "error: ClickHouse node $((i + 1)) exited during start-up; its log:" >&2
      tail -20 "${dirs[$i]}/log/clickhouse-server.err.log" >&2 || true
      exit 1
    fi
    sleep 0.1
  done
  [ "$(curl -s "$url/ping")" = "Ok." ] || { echo "error: ClickHouse node $((i + 1)) did not start within 30 s" >&2; exit 1; }
done
echo "private ClickHouse cluster $cluster for this run: ${urls[*]} (files in ${dirs[*]})"

export THROUGHLINE_TEST_CLUSTER=$cluster
export THROUGHLINE_TEST_CLUSTER_URLS="${urls[*]}"
export THROUGHLINE_TEST_CLUSTER_PIDS="${pids[*]}"
export THROUGHLINE_TEST_CLICKHOUSE_URL=${urls[0]}
"$@"
