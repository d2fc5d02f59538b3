#!/usr/bin/env bash
# See inside, against a real strom process: /metrics after known kcat traffic
# (checked by promtool), the protocol trace of a kcat produce and consume, and
# the web console in Debian's Chromium (playwright-core). Installs chromium and
# prometheus (promtool) when missing. Screenshots: target/console-screenshots.
#
# Usage: compat/console/run.sh [path/to/strom]   (default: target/debug/strom)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=$(realpath "${1:-$root/target/debug/strom}")
port=${CONSOLE_PORT:-29592}
http=$((port + 1))
broker=127.0.0.1:$port
source "$root/scripts/lib/strom-process.sh"
work=$STROM_WORK

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
(cd "$here" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

passed=0 failed=0
check() { # name, command...
  local name=$1; shift
  if "$@"; then passed=$((passed + 1)); echo "ok   $name"; else failed=$((failed + 1)); echo "FAIL $name"; fi
}

start_strom "$bin" "$port" --http-listen "127.0.0.1:$http" --trace-protocol --trace-records \
  --group-initial-rebalance-delay-ms 0
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$http/health" >/dev/null && break; sleep 0.1; done

# ---- metrics: 100 records in, consumed by a group, then promtool -----------------
for i in $(seq 1 100); do printf 'k%d:{"orderId":%d}\n' "$i" "$i"; done >"$work/in.txt"
kcat -b "$broker" -P -t metered -p 0 -K: -l "$work/in.txt"
kcat -b "$broker" -G metered-readers -X auto.offset.reset=earliest -e -q metered >"$work/out.txt" 2>/dev/null || true
curl -sf "http://127.0.0.1:$http/metrics" >"$work/metrics.txt"
metric() { grep -E "^$1 " "$work/metrics.txt" | awk '{print $2}'; }
check "messagesin counts the 100 records" [ "$(metric 'kafka_server_brokertopicmetrics_messagesin_total\{topic="metered"\}')" = 100 ]
check "bytesin equals the log's size" [ "$(metric 'kafka_server_brokertopicmetrics_bytesin_total\{topic="metered"\}')" = \
  "$(metric 'kafka_log_log_size\{topic="metered",partition="0"\}')" ]
check "the high watermark is 100" [ "$(metric 'kafka_topic_partition_current_offset\{topic="metered",partition="0"\}')" = 100 ]
check "the group consumed all 100" [ "$(wc -l <"$work/out.txt")" -eq 100 ]
check "the group's committed offset is 100" [ "$(metric 'kafka_consumergroup_current_offset\{consumergroup="metered-readers",topic="metered",partition="0"\}')" = 100 ]
check "the group's lag is 0" [ "$(metric 'kafka_consumergroup_lag_sum\{consumergroup="metered-readers",topic="metered"\}')" = 0 ]
# promtool also lints naming: the two names it objects to (a _count and a _sum
# that are gauges) are the JMX exporter's and kafka_exporter's, kept because
# Kafka dashboards query them. Anything else it finds fails.
promtool check metrics <"$work/metrics.txt" >"$work/promtool.txt" 2>&1 || true
grep -vE '^(kafka_server_socket_server_metrics_connection_count|kafka_consumergroup_lag_sum) non-histogram and non-summary metrics should not have "_(count|sum)" suffix$' \
  "$work/promtool.txt" >"$work/promtool-other.txt" || true
check "promtool check metrics finds nothing else" [ ! -s "$work/promtool-other.txt" ]
if [ -s "$work/promtool-other.txt" ]; then cat "$work/promtool-other.txt"; fi

# ---- the trace of a kcat produce and consume -------------------------------------
echo 'trace-key:{"traced":true}' | kcat -b "$broker" -P -t traced -K:
kcat -b "$broker" -C -t traced -o beginning -e -q >/dev/null
sleep 0.5
check "the trace shows kcat's ApiVersions with its software" grep -q 'ApiVersions v3 #1' "$work/strom.log"
check "the trace shows the produce, decoded" grep -qE '→ acks=-1 timeout=[0-9]+ms; traced\[0\]: 1 batch\(es\), 1 record\(s\)' "$work/strom.log"
check "the trace shows the record (--trace-records)" grep -q '@0 key="trace-key" value="{\\"traced\\":true}"' "$work/strom.log"
check "the trace shows the produce's answer" grep -q '← traced\[0\]: NONE base_offset=0' "$work/strom.log"
check "the trace shows the fetch from offset 0" grep -qE '→ max_wait=[0-9]+ms .*traced\[0\]@0' "$work/strom.log"
check "the trace shows the fetched records" grep -qE '← NONE; traced\[0\]: NONE hw=1 lso=1 start=0, 1 batch\(es\), 1 record\(s\)' "$work/strom.log"

# ---- the console in a browser -------------------------------------------------------
shots="$root/target/console-screenshots"
mkdir -p "$shots"
if (cd "$here" && STROM_BROKER="$broker" STROM_CONSOLE="http://127.0.0.1:$http" STROM_BIN="$bin" SCREENSHOTS="$shots" npm test); then
  passed=$((passed + 1)); echo "ok   the console in Chromium (screenshots in $shots)"
else
  failed=$((failed + 1)); echo "FAIL the console in Chromium"; strom_log_tail
fi

echo "console/metrics/trace: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
