# Sourced by the benchmark scripts.
#   wait_port HOST PORT   waits (up to 20 s) until HOST:PORT accepts a connection
wait_port() {
  for _ in $(seq 1 2000); do
    if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
    sleep 0.01
  done
  echo "nothing listens on $1:$2" >&2
  return 1
}
