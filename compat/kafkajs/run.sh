#!/usr/bin/env bash
# The kafkajs suite (node:test) against a real strom process.
# Usage: compat/kafkajs/run.sh [path/to/strom]   (default: target/debug/strom)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${1:-$root/target/debug/strom}
port=${KAFKAJS_PORT:-29492}
work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

(cd "$here" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

"$bin" --listen "127.0.0.1:$port" --advertised-listener "127.0.0.1:$port" --data-dir "$work/data" \
  --group-initial-rebalance-delay-ms 0 >"$work/strom.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done

cd "$here"
if ! STROM_BROKER="127.0.0.1:$port" npm test; then
  echo "--- strom log (warnings and errors)"
  grep -vE ' INFO | DEBUG ' "$work/strom.log" | tail -40 || true
  exit 1
fi
