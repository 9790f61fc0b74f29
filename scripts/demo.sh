#!/usr/bin/env bash
# `make demo`: runs `throughline up` (private ClickHouse under DATA_DIR) with
# the demo plant's configuration, process definitions and alert rules
# (sample-data/), backfills a day of the plant's history,
# keeps live traffic flowing, and stops everything on Ctrl-C.
set -euo pipefail
bin=$1
data_dir=$2
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

console=${THROUGHLINE_CONSOLE_ADDR:-127.0.0.1:8080}
otlp=${THROUGHLINE_OTLP_HTTP_ADDR:-127.0.0.1:4318}

"$bin" up --data-dir "$data_dir" --config sample-data/demo.toml \
  --processes-dir sample-data/processes --alerts-dir sample-data/alerts &
up=$!
demo=
stop() {
  [ -n "$demo" ] && kill -INT "$demo" 2>/dev/null && wait "$demo" 2>/dev/null
  kill -TERM "$up" 2>/dev/null
  wait "$up" 2>/dev/null
}
trap stop EXIT
trap 'exit 0' INT TERM

for _ in $(seq 1 600); do
  curl -sf "http://$console/readyz" >/dev/null 2>&1 && break
  kill -0 "$up" 2>/dev/null || exit 1
  sleep 0.1
done
cat <<MSG

Throughline is up. The demo plant backfills a day of history, then keeps
sending live traffic. Open the console:
  http://$console/                         overview: processes, systems, open breaches
  http://$console/breaches?open=true       SLA breaches still open
  http://$console/keys/order/SO-100000     one order's journey across CRM, ERP and MES
  http://$console/alerts                   the rules of sample-data/alerts
The same as JSON: http://$console/api/v1/processes (and /api/v1/breaches, ...).
Ctrl-C stops everything.

MSG
"$bin" demo --target "http://$otlp" --backfill 24h &
demo=$!
wait "$demo" || true
demo=
wait "$up"
