#!/usr/bin/env bash
# The shop's tests: the end-to-end pipeline against a real strom binary, and the
# docker-compose checks. Usage: examples/shop/run-tests.sh [path/to/strom]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export STROM_BIN=${1:-$root/target/debug/strom}
cd "$here"
npm ci --no-audit --no-fund --loglevel=error >/dev/null
npm test
