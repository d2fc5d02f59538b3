#!/usr/bin/env bash
# The README's transaction example (examples/exactly_once.rs) against a real strom
# process: what read_committed reads must be exactly the committed transactions.
# Usage: scripts/exactly-once-example.sh [path/to/strom]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$(realpath "${1:-$root/target/debug/strom}")
port=${EXACTLY_ONCE_PORT:-29892}
source "$root/scripts/lib/strom-process.sh"
cd "$root"
cargo build --quiet --locked --example exactly_once
start_strom "$bin" "$port" --group-initial-rebalance-delay-ms 0
out=$(timeout 120 target/debug/examples/exactly_once "127.0.0.1:$port") || { echo "$out"; strom_log_tail; exit 1; }
echo "$out"
grep -qx 'read_committed:   \["2", "4", "6", "8", "10", "12", "14", "16", "18", "20"\]' <<<"$out"
grep -q 'read_uncommitted: .*"20", "12", "14", "16", "18", "20"\]' <<<"$out"
