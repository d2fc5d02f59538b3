#!/usr/bin/env bash
# The kafkajs suite (node:test) against a real strom process.
# Usage: compat/kafkajs/run.sh [path/to/strom]   (default: target/debug/strom)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=$(realpath "${1:-$root/target/debug/strom}")
port=${KAFKAJS_PORT:-29492}
source "$root/scripts/lib/strom-process.sh"

(cd "$here" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
start_strom "$bin" "$port" --group-initial-rebalance-delay-ms 0
cd "$here"
STROM_BROKER="127.0.0.1:$port" npm test || { strom_log_tail; exit 1; }
