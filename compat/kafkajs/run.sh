#!/usr/bin/env bash
# The kafkajs suite (node:test) against a real strom process.
# Usage: compat/kafkajs/run.sh [path/to/strom]   (default: target/debug/strom)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=$(realpath "${1:-$root/target/debug/strom}")
port=${KAFKAJS_PORT:-29492}
source "$root/scripts/lib/strom-process.sh"
source "$root/scripts/lib/secure-strom.sh"

(cd "$here" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
start_strom "$bin" "$port" --group-initial-rebalance-delay-ms 0
start_secure_strom "$bin" "$((port + 10))"
cd "$here"
export STROM_SECURE_BROKER="127.0.0.1:$((port + 10))" STROM_SECURE_SASL_PLAINTEXT="127.0.0.1:$((port + 11))"
export STROM_SECURE_CA="$SECURE_DIR/ca.pem"
STROM_BROKER="127.0.0.1:$port" npm test || { strom_log_tail; tail -20 "$SECURE_DIR/strom.log"; exit 1; }
