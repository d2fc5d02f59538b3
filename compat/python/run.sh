#!/usr/bin/env bash
# confluent-kafka (Python) AdminClient scenario against a real strom process, in a
# venv this script creates. Usage: compat/python/run.sh [path/to/strom]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=$(realpath "${1:-$root/target/debug/strom}")
port=${PYTHON_COMPAT_PORT:-29792}
work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

venv="$here/.venv"
if [ ! -x "$venv/bin/pytest" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
fi

"$bin" --listen "127.0.0.1:$port" --advertised-listener "127.0.0.1:$port" --data-dir "$work/data" \
  >"$work/strom.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done

cd "$here"
STROM_BROKER="127.0.0.1:$port" "$venv/bin/pytest" -v --durations=3 test_admin.py
