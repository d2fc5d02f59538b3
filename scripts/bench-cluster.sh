#!/usr/bin/env bash
# The cluster's figures in docs/BENCHMARKS.md (issue 17): a one-member etcd and
# three strom brokers on loopback (release, the cluster feature), driven by
# strom-bench, RUNS times each; prints the medians.
#   - producer throughput with acks=all at replication factor 1 and 3;
#   - end-to-end latency (acks=all, replication factor 3) at half the RF 3 rate;
#   - failover: a latency run at 1,000 records/s on one partition (RF 3) whose
#     leader is killed with kill -9 in the middle; the records sent while no
#     leader answered wait for the new one, so the run's maximum latency is the
#     time from the kill to producers succeeding again.
#
#   scripts/bench-cluster.sh                  # about 5 minutes
#   RUNS=1 RECORDS=100000 scripts/bench-cluster.sh
#
# Needs etcd (Debian's etcd-server) and protoc (protobuf-compiler) for the build.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
RECORDS=${RECORDS:-300000}
OUT=${OUT:-target/bench-results/cluster}
WORK=${WORK:-/var/tmp/strom-bench-cluster}
ETCD=${ETCD:-/usr/bin/etcd}
SESSION_MS=${SESSION_MS:-9000}
PORT=9092

rm -rf "$OUT" "$WORK"
mkdir -p "$OUT" "$WORK"
cargo build --release --locked -p strom --features strom/cluster -p strom-bench >&2
STROM=target/release/strom
BENCH=target/release/strom-bench
host() { echo "127.0.5.$1"; }
BOOTSTRAP="$(host 1):$PORT,$(host 2):$PORT,$(host 3):$PORT"

pids=()
declare -A broker_pid
cleanup() {
  for p in "${pids[@]}" "${broker_pid[@]}"; do kill -9 "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

source scripts/lib/wait-port.sh

"$ETCD" --data-dir "$WORK/etcd" --listen-client-urls http://127.0.6.1:2379 \
  --advertise-client-urls http://127.0.6.1:2379 --listen-peer-urls http://127.0.6.1:2380 \
  --initial-advertise-peer-urls http://127.0.6.1:2380 --initial-cluster default=http://127.0.6.1:2380 \
  --unsafe-no-fsync >"$OUT/etcd.log" 2>&1 &
pids+=($!)
wait_port 127.0.6.1 2379

start_broker() { # node id
  "$STROM" serve --node-id "$1" --data-dir "$WORK/b$1" --metadata-store etcd://127.0.6.1:2379/bench \
    --listen "$(host "$1"):$PORT" --advertised-listener "$(host "$1"):$PORT" \
    --override "broker.session.timeout.ms=$SESSION_MS" >>"$OUT/broker-$1.log" 2>&1 &
  broker_pid[$1]=$!
  wait_port "$(host "$1")" $PORT
}
for n in 1 2 3; do start_broker "$n"; done
# Every broker registered and a controller elected.
until "$STROM" cluster status --bootstrap-server "$(host 1):$PORT" --json 2>/dev/null |
  python3 -c 'import json,sys; s=json.load(sys.stdin); sys.exit(not (len(s["brokers"]) == 3 and s["controller"] >= 0))'; do
  sleep 0.2
done

bench() { # label args...
  local label=$1
  shift
  sync
  "$BENCH" --json -b "$BOOTSTRAP" "$@" >"$OUT/$label.json"
}

median() { # field files...: median of runs[0][field]
  local field=$1
  shift
  python3 -c '
import json, statistics, sys
f = sys.argv[1]
def get(run):
    v = run
    for k in f.split("."):
        v = v[k]
    return v
print(round(statistics.median(get(json.load(open(p))["runs"][0]) for p in sys.argv[2:]), 1))' "$field" "$@"
}

echo "== throughput: acks=all, replication factor 1 and 3" >&2
for i in $(seq 1 "$RUNS"); do
  bench "rf1.$i" produce --topic "rf1-$i" --partitions 6 --replication-factor 1 --records "$RECORDS" --acks all --linger-ms 5
  bench "rf3.$i" produce --topic "rf3-$i" --partitions 6 --replication-factor 3 --records "$RECORDS" --acks all --linger-ms 5
done
rf3_rate=$(median msgs_per_sec "$OUT"/rf3.*.json)
half=$(python3 -c "print(max(1, int($rf3_rate / 2)))")

echo "== latency at half the RF 3 rate ($half/s)" >&2
for i in $(seq 1 "$RUNS"); do
  bench "latency.$i" latency --topic "lat-$i" --partitions 6 --replication-factor 3 --rate "$half" --seconds 10 --acks all
done

echo "== failover: kill -9 the leader in the middle of a latency run" >&2
for i in $(seq 1 "$RUNS"); do
  topic="failover-$i"
  "$BENCH" --json -b "$BOOTSTRAP" latency --topic "$topic" --partitions 1 --replication-factor 3 \
    --rate 1000 --seconds 25 --acks all >"$OUT/failover.$i.json" &
  bench_pid=$!
  sleep 10
  leader=$("$STROM" topics describe "$topic" --bootstrap-server "$BOOTSTRAP" --json |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["partitions"][0]["leader"])')
  echo "killing broker $leader, the leader of $topic-0" >&2
  kill -9 "${broker_pid[$leader]}"
  wait "$bench_pid"
  start_broker "$leader"
  sleep 5
done

{
  echo "| figure | median of $RUNS |"
  echo "|---|---|"
  echo "| acks=all, RF 1: msgs/s | $(median msgs_per_sec "$OUT"/rf1.*.json) |"
  echo "| acks=all, RF 1: MB/s | $(median mb_per_sec "$OUT"/rf1.*.json) |"
  echo "| acks=all, RF 3: msgs/s | $rf3_rate |"
  echo "| acks=all, RF 3: MB/s | $(median mb_per_sec "$OUT"/rf3.*.json) |"
  echo "| RF 3 / RF 1 | $(python3 -c "print(round($rf3_rate / $(median msgs_per_sec "$OUT"/rf1.*.json) * 100))") % |"
  echo "| latency at $half/s (RF 3, acks=all): p50 ms | $(median latency_ms.p50 "$OUT"/latency.*.json) |"
  echo "| … p99 ms | $(median latency_ms.p99 "$OUT"/latency.*.json) |"
  echo "| … p99.9 ms | $(median latency_ms.p999 "$OUT"/latency.*.json) |"
  echo "| failover (kill -9 the leader → records acknowledged again): ms | $(median latency_ms.max "$OUT"/failover.*.json) |"
  echo "| failover target: broker.session.timeout.ms + 2 s | $((SESSION_MS + 2000)) |"
} | tee "$OUT/summary.md"
