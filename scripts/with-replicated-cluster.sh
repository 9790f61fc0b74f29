#!/usr/bin/env bash
# Runs a command with a private ClickHouse cluster of two shards of two
# replicas each, replicated through a private ZooKeeper, then stops them
# (`make test-cluster`). ZooKeeper is Debian's `zookeeper` package (3.8),
# started with `java` and a zoo.cfg, data directory and free client port of
# its own; each of the four ClickHouse servers has its own config (from the
# templates `throughline up` uses, store/src/server/, plus `<zookeeper>`,
# `{shard}`/`{replica}` macros and `internal_replication`), data and logs
# in a temporary directory, and serves HTTP on its TCP port + 1, as
# Throughline's migrator expects of every node (store/src/cluster/nodes.rs).
#
# The command finds them in THROUGHLINE_TEST_REPLICATED_CLUSTER (the
# cluster's name), THROUGHLINE_TEST_REPLICATED_URLS (the nodes' HTTP URLs,
# space-separated, in the order shard 1 replica 1, shard 1 replica 2,
# shard 2 replica 1, shard 2 replica 2), THROUGHLINE_TEST_REPLICATED_DIRS
# (each node's directory, in the same order: `start.sh` there starts that
# node again, and `server.pid` holds its pid, for a test that kills one)
# and THROUGHLINE_TEST_CLICKHOUSE_URL (the first node).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
templates="$here/store/src/server"
cluster=throughline_replicated

if command -v clickhouse-server >/dev/null 2>&1; then
  server="clickhouse-server"
elif command -v clickhouse >/dev/null 2>&1; then
  server="clickhouse server"
else
  echo "error: no ClickHouse on PATH; run scripts/install-deps.sh" >&2
  exit 1
fi
zk_jar=/usr/share/java/zookeeper.jar
if [ ! -f "$zk_jar" ] || ! command -v java >/dev/null 2>&1; then
  echo "error: no ZooKeeper ($zk_jar) or no java; run scripts/install-deps.sh" >&2
  exit 1
fi

taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
picked=()
# A port nothing listens on, none of this run's, with the next one free
# too; below the kernel's ephemeral range (outgoing connections' ports), so
# that no client's socket holds it by the time a server binds it.
low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
free_pair() {
  local port p
  while :; do
    port=$(shuf -i 10000-$((low - 2)) -n 1)
    for p in "${picked[@]}"; do
      if [ $((port - p)) -ge -1 ] && [ $((port - p)) -le 1 ]; then continue 2; fi
    done
    if ! taken "$port" && ! taken $((port + 1)); then echo "$port"; return; fi
  done
}

dirs=()
pids=()
cleanup() {
  # Each node by the pid it wrote (a test may have started it again).
  for dir in "${dirs[@]}"; do
    [ -f "$dir/server.pid" ] && pids+=("$(cat "$dir/server.pid")")
  done
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  for dir in "${dirs[@]}"; do rm -rf "$dir"; done
}
trap cleanup EXIT INT TERM

# ZooKeeper, standalone.
zk_port=$(free_pair); picked+=("$zk_port")
zk_dir=$(mktemp -d "${TMPDIR:-/tmp}/throughline-zookeeper.XXXXXX")
dirs+=("$zk_dir")
mkdir -p "$zk_dir/data"
cat > "$zk_dir/zoo.cfg" <<EOF
tickTime=500
dataDir=$zk_dir/data
clientPort=$zk_port
clientPortAddress=127.0.0.1
maxSessionTimeout=60000
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr
EOF
java -Xmx256m -cp "$zk_jar" org.apache.zookeeper.server.ZooKeeperServerMain "$zk_dir/zoo.cfg" \
  > "$zk_dir/zookeeper.log" 2>&1 &
zk_pid=$!
pids+=("$zk_pid")
for _ in $(seq 1 300); do
  if [ "$( (exec 3<>"/dev/tcp/127.0.0.1/$zk_port" && echo ruok >&3 && head -c 4 <&3) 2>/dev/null)" = "imok" ]; then break; fi
  if ! kill -0 "$zk_pid" 2>/dev/null; then
    echo "error: ZooKeeper exited during start-up; its log:" >&2
    tail -20 "$zk_dir/zookeeper.log" >&2 || true
    exit 1
  fi
  sleep 0.1
done

# Four nodes: TCP port, HTTP = TCP + 1, and an interserver port for the
# replicas' fetches.
tcps=(); interservers=()
for _ in 1 2 3 4; do
  p=$(free_pair); picked+=("$p"); tcps+=("$p")
  p=$(free_pair); picked+=("$p"); interservers+=("$p")
done
replica() { echo "<replica><host>127.0.0.1</host><port>${tcps[$1]}</port></replica>"; }
remote_servers="    <remote_servers>
        <$cluster>
            <shard><internal_replication>true</internal_replication>$(replica 0)$(replica 1)</shard>
            <shard><internal_replication>true</internal_replication>$(replica 2)$(replica 3)</shard>
        </$cluster>
    </remote_servers>
    <zookeeper>
        <node><host>127.0.0.1</host><port>$zk_port</port></node>
        <session_timeout_ms>10000</session_timeout_ms>
    </zookeeper>
    <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>"

urls=()
for i in 0 1 2 3; do
  tcp=${tcps[$i]}
  http=$((tcp + 1))
  shard=$((i / 2 + 1))
  name="s${shard}r$((i % 2 + 1))"
  dir=$(mktemp -d "${TMPDIR:-/tmp}/throughline-replica.XXXXXX")
  dirs+=("$dir")
  mkdir -p "$dir"/{data,tmp,user_files,format_schemas,log}
  sed -e "s|{{dir}}|$dir|g" -e "s|{{http_port}}|$http|g" -e "s|{{tcp_port}}|$tcp|g" \
    "$templates/config.xml" | grep -v '^</yandex>' > "$dir/config.xml"
  cat >> "$dir/config.xml" <<EOF
$remote_servers
    <macros><shard>$shard</shard><replica>$name</replica></macros>
    <interserver_http_host>127.0.0.1</interserver_http_host>
    <interserver_http_port>${interservers[$i]}</interserver_http_port>
</yandex>
EOF
  cp "$templates/users.xml" "$dir/users.xml"
  cat > "$dir/start.sh" <<EOF
#!/bin/sh
echo \$\$ > $dir/server.pid
exec $server --config-file=$dir/config.xml >/dev/null 2>&1
EOF
  chmod +x "$dir/start.sh"
  "$dir/start.sh" &
  pids+=($!)
  disown # a test may kill it: no "Killed" notice from this shell
  urls+=("http://127.0.0.1:$http")
done

for i in 0 1 2 3; do
  url=${urls[$i]}
  for _ in $(seq 1 300); do
    if [ "$(curl -s "$url/ping" 2>/dev/null)" = "Ok." ]; then break; fi
    if ! kill -0 "${pids[$((i + 1))]}" 2>/dev/null; then
      echo "error: ClickHouse node $((i + 1)) exited during start-up; its log:" >&2
      tail -20 "${dirs[$((i + 1))]}/log/clickhouse-server.err.log" >&2 || true
      exit 1
    fi
    sleep 0.1
  done
  [ "$(curl -s "$url/ping")" = "Ok." ] || { echo "error: ClickHouse node $((i + 1)) did not start within 30 s" >&2; exit 1; }
done
echo "private replicated ClickHouse cluster $cluster for this run: ${urls[*]}; ZooKeeper on 127.0.0.1:$zk_port (files in ${dirs[*]})"

export THROUGHLINE_TEST_REPLICATED_CLUSTER=$cluster
export THROUGHLINE_TEST_REPLICATED_URLS="${urls[*]}"
export THROUGHLINE_TEST_REPLICATED_DIRS="${dirs[*]:1}"
export THROUGHLINE_TEST_CLICKHOUSE_URL=${urls[0]}
"$@"
