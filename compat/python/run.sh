#!/usr/bin/env bash
# confluent-kafka (Python) AdminClient, transaction and KIP-848 group scenarios against a real strom process, in a
# venv this script creates. Usage: compat/python/run.sh [path/to/strom]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=$(realpath "${1:-$root/target/debug/strom}")
port=${PYTHON_COMPAT_PORT:-29792}
source "$root/scripts/lib/strom-process.sh"
source "$root/scripts/lib/secure-strom.sh"

venv="$here/.venv"
if [ ! -x "$venv/bin/pytest" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
fi
start_strom "$bin" "$port"
start_secure_strom "$bin" "$((port + 10))"
cd "$here"
export STROM_SECURE_BROKER="127.0.0.1:$((port + 10))" STROM_SECURE_CA="$SECURE_DIR/ca.pem"
STROM_BROKER="127.0.0.1:$port" "$venv/bin/pytest" -v test_admin.py test_transactions.py test_security.py test_consumer_protocol.py ||
  { strom_log_tail; tail -20 "$SECURE_DIR/strom.log"; exit 1; }
