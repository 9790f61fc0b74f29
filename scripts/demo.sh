#!/usr/bin/env bash
# `make demo`: runs `throughline up` (private ClickHouse under DATA_DIR), sends
# the sample trace and events from sample-data/fixtures once it is ready, prints where to
# look, and stops everything on Ctrl-C.
set -euo pipefail
bin=$1
data_dir=$2
here=$(cd "$(dirname "$0")/.." && pwd)

"$bin" up --data-dir "$data_dir" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null' INT TERM EXIT

console=${THROUGHLINE_CONSOLE_ADDR:-127.0.0.1:8080}
otlp=${THROUGHLINE_OTLP_HTTP_ADDR:-127.0.0.1:4318}
for _ in $(seq 1 600); do
  curl -sf "http://$console/readyz" >/dev/null 2>&1 && break
  kill -0 $pid 2>/dev/null || exit 1
  sleep 0.1
done
curl -sf -X POST -H 'content-type: application/json' \
  --data-binary @"$here/sample-data/fixtures/otlp-traces.json" "http://$otlp/v1/traces" >/dev/null
curl -sf -X POST -H 'content-type: application/cloudevents-batch+json' \
  --data-binary @"$here/sample-data/fixtures/cloudevents-batch.json" "http://$otlp/v1/events" >/dev/null
cat <<MSG

Sample trace and events loaded. Try:
  http://$console/api/v1/traces/5b8efff798038103d269b633813fc60c
  http://$console/api/v1/keys/work_order/WO-88
  http://$console/api/v1/events?from=now-30d
(The full simulated plant, \`throughline demo\`, is not built yet.)
MSG
wait $pid
