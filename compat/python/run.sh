#!/usr/bin/env bash
# confluent-kafka (Python) AdminClient and transaction scenarios against a real strom process, in a
# venv this script creates. Usage: compat/python/run.sh [path/to/strom]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=$(realpath "${1:-$root/target/debug/strom}")
port=${PYTHON_COMPAT_PORT:-29792}
source "$root/scripts/lib/strom-process.sh"

venv="$here/.venv"
if [ ! -x "$venv/bin/pytest" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
fi
start_strom "$bin" "$port"
cd "$here"
STROM_BROKER="127.0.0.1:$port" "$venv/bin/pytest" -v test_admin.py test_transactions.py || { strom_log_tail; exit 1; }
