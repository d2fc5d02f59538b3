#!/usr/bin/env bash
# The shop's tests: the end-to-end pipeline against a real strom binary, and the
# docker-compose checks. Usage: examples/shop/run-tests.sh [path/to/strom]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
STROM_BIN=$(realpath "${1:-$root/target/debug/strom}")
export STROM_BIN
cd "$here"
npm ci --no-audit --no-fund --loglevel=error >/dev/null
npm test
