# Sourced by the compat suites: run a strom binary on a port with a throwaway data
# directory, and stop it (and remove the directory) when the script exits.
#   start_strom BIN PORT [extra strom flags…]   sets $STROM_WORK and $STROM_PID

STROM_WORK=$(mktemp -d)
STROM_PID=
stop_strom() {
  if [ -n "$STROM_PID" ]; then
    kill "$STROM_PID" 2>/dev/null && wait "$STROM_PID" 2>/dev/null
    STROM_PID=
  fi
}
trap 'stop_strom; rm -rf "$STROM_WORK"' EXIT

start_strom() {
  local bin=$1 port=$2
  shift 2
  "$bin" --listen "127.0.0.1:$port" --advertised-listener "127.0.0.1:$port" \
    --data-dir "$STROM_WORK/data" "$@" >>"$STROM_WORK/strom.log" 2>&1 &
  STROM_PID=$!
  for _ in $(seq 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "strom did not start:"; cat "$STROM_WORK/strom.log"; return 1
}

# Print strom's warnings and errors (after a failure).
strom_log_tail() {
  echo "--- strom log (warnings and errors)"
  grep -vE ' INFO | DEBUG ' "$STROM_WORK/strom.log" | tail -40 || true
}
