#!/usr/bin/env bash
# The shop's tests: the end-to-end pipeline against a real strom binary, on the
# brokers docker-compose.yml runs (one, and three with the cluster profile), and the
# docker-compose checks, with Docker Compose itself resolving the file.
# Usage: examples/shop/run-tests.sh [path/to/strom]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
STROM_BIN=$(realpath "${1:-$root/target/debug/strom}")
export STROM_BIN
source "$root/scripts/lib/docker-compose.sh"
# The newest first (the end-to-end test resolves with it); 2.20.3 is the oldest
# Compose that resolves docker-compose.yml (depends_on.required, fixed in 2.20.3).
COMPOSE_BINS="$(fetch_docker_compose 2.40.3 dba9d98e1ba5bfe11d88c99b9bd32fc4a0624a30fafe68eea34d61a3e42fd372)"
COMPOSE_BINS+=":$(fetch_docker_compose 2.20.3 f45e4cb687df8b48a57f656097ce7175fa8e8bef70be407b011e29ff663f475f)"
export COMPOSE_BINS
cd "$here"
npm ci --no-audit --no-fund --loglevel=error >/dev/null
npm test
