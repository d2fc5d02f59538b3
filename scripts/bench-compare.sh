#!/usr/bin/env bash
# The runs behind docs/BENCHMARKS.md: this machine's limits (fio, iperf3), then
# strom and, when its binary is there, a peer broker (tansu) measured the same way
# in the same run, RUNS times each; prints the medians as Markdown tables.
#
#   scripts/bench-compare.sh                 # everything (about 10 minutes)
#   RUNS=3 SUSTAINED_GB=0 scripts/bench-compare.sh
#
# The peer is never part of the repository; install it with
#   cargo install tansu --locked --features dynostore --root /tmp/tansu
# Needs fio and iperf3 (Debian packages) for the machine's limits; as root it
# drops the page cache before every run so each starts from the same state.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-5}
RECORDS=${RECORDS:-300000}
SUSTAINED_GB=${SUSTAINED_GB:-10}
TANSU=${TANSU:-/tmp/tansu/bin/tansu}
OUT=${OUT:-target/bench-results}
WORK=${WORK:-/var/tmp/strom-bench}
STROM_PORT=9092
TANSU_PORT=19092

rm -rf "$OUT" "$WORK"
mkdir -p "$OUT" "$WORK"
cargo build --release --locked -p strom -p strom-bench >&2
STROM=target/release/strom
BENCH=target/release/strom-bench

fresh() {
  sync
  if [ -w /proc/sys/vm/drop_caches ]; then echo 3 >/proc/sys/vm/drop_caches; fi
}

source scripts/lib/wait-port.sh

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

echo "== machine limits" >&2
{
  echo "# nproc: $(nproc); memory: $(free -g | awk '/Mem:/ {print $2}') GiB; kernel: $(uname -r)"
  if command -v fio >/dev/null; then
    fresh
    fio --name=buffered --rw=write --bs=1M --size=4G --ioengine=psync --end_fsync=1 \
      --filename="$WORK/fio" --output-format=terse --terse-version=3 | awk -F';' '{print "fio_buffered_write_kBps", $48}'
    rm -f "$WORK/fio"
    fio --name=direct --rw=write --bs=1M --size=4G --ioengine=libaio --iodepth=8 --direct=1 \
      --filename="$WORK/fio" --output-format=terse --terse-version=3 | awk -F';' '{print "fio_direct_write_kBps", $48}'
    rm -f "$WORK/fio"
    fio --name=fsync --rw=write --bs=16k --size=64M --ioengine=sync --fdatasync=1 \
      --filename="$WORK/fio" --output-format=json | python3 -c '
import json, sys
s = json.load(sys.stdin)["jobs"][0]["sync"]["lat_ns"]
print("fio_fdatasync_p50_us", s["percentile"]["50.000000"] / 1000)
print("fio_fdatasync_p99_us", s["percentile"]["99.000000"] / 1000)'
    rm -f "$WORK/fio"
  fi
  if command -v iperf3 >/dev/null; then
    iperf3 -s -1 -p 5299 >/dev/null 2>&1 &
    sleep 0.5
    iperf3 -c 127.0.0.1 -p 5299 -t 5 -J | python3 -c '
import json, sys
print("iperf3_loopback_bps", json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"])'
  fi
} >"$OUT/limits.txt"
cat "$OUT/limits.txt" >&2

start_strom() {
  rm -rf "$WORK/strom-data"
  local t0
  t0=$(date +%s%N)
  "$STROM" --listen "127.0.0.1:$STROM_PORT" --advertised-listener "127.0.0.1:$STROM_PORT" \
    --data-dir "$WORK/strom-data" >"$OUT/strom.log" 2>&1 &
  pids+=($!)
  wait_port 127.0.0.1 $STROM_PORT
  echo "strom_startup_ms $((($(date +%s%N) - t0) / 1000000))" >>"$OUT/limits.txt"
  sleep 1
  echo "strom_idle_rss_kB $(awk '/VmRSS/ {print $2}' "/proc/${pids[-1]}/status")" >>"$OUT/limits.txt"
}

start_tansu() {
  "$TANSU" broker --storage-engine memory://tansu/ --listener-url "tcp://127.0.0.1:$TANSU_PORT" \
    --advertised-listener-url "tcp://127.0.0.1:$TANSU_PORT" >"$OUT/tansu.log" 2>&1 &
  pids+=($!)
  wait_port 127.0.0.1 $TANSU_PORT
  sleep 1
  echo "tansu_idle_rss_kB $(awk '/VmRSS/ {print $2}' "/proc/${pids[-1]}/status")" >>"$OUT/limits.txt"
}

bench() { # broker label args...: one run, its JSON kept
  local broker=$1 label=$2 port
  shift 2
  port=$([ "$broker" = strom ] && echo $STROM_PORT || echo $TANSU_PORT)
  fresh
  "$BENCH" --json -b "127.0.0.1:$port" "$@" >"$OUT/$broker.$label.json"
}

median_rate() { # files...: median msgs/s
  python3 -c '
import json, statistics, sys
print(int(statistics.median(json.load(open(f))["runs"][0]["msgs_per_sec"] for f in sys.argv[1:])))' "$@"
}

brokers=(strom)
[ -x "$TANSU" ] && brokers+=(tansu)
for broker in "${brokers[@]}"; do
  echo "== $broker" >&2
  "start_$broker"
  for i in $(seq 1 "$RUNS"); do
    bench "$broker" "produce-acks1.$i" produce --topic "burst-$i" --records "$RECORDS" --acks 1 --linger-ms 5
    bench "$broker" "consume.$i" consume --topic "burst-$i"
    bench "$broker" "produce-acksall.$i" produce --topic "durable-$i" --records "$RECORDS" --acks all --linger-ms 5
  done
  half=$(($(median_rate "$OUT/$broker".produce-acks1.*.json) / 2))
  for i in $(seq 1 "$RUNS"); do
    bench "$broker" "latency.$i" latency --topic "latency-$i" --rate "$half" --seconds 5
  done
  if [ "$broker" = strom ]; then
    for p in 1 10 100 1000; do
      for i in $(seq 1 "$RUNS"); do
        bench strom "partitions-$p.$i" produce --topic "spread-$p-$i" --partitions "$p" --records "$RECORDS"
      done
    done
    if [ "$SUSTAINED_GB" -gt 0 ]; then
      bench strom "sustained.1" produce --topic sustained --records $((SUSTAINED_GB * 1000000000 / 1024)) --acks 1
    fi
  fi
  kill "${pids[-1]}"
  wait "${pids[-1]}" 2>/dev/null || true
done

python3 scripts/bench-summary.py "$OUT"
