#!/usr/bin/env bash
# sarama (Go, Debian's golang-github-shopify-sarama-dev, 1.22) against strom.
#
# Usage: compat/go/run.sh path/to/strom [flags of stromcompat]   (starts that binary)
#        BOOTSTRAP=127.0.0.1:9092 compat/go/run.sh [flags]       (a running broker)
#   -only a,b,c,d      checks to run (also env CHECKS)
#   -version V         sarama config Version instead of sarama's default (also env SARAMA_VERSION)
#   -debug             sarama's own log on stderr (also env SARAMA_DEBUG=1)
# SARAMA_VERSIONS="default 0.10.0.0 1.0.0" runs the whole suite once per Version.
#
# Checks, each with the oldest Version sarama allows for it, printing every
# request (API key, version) sent and those answered UNSUPPORTED_VERSION:
#   (a) SyncProducer to a new topic, partition/offset of each send, read back
#   (b) AsyncProducer, all acknowledged without error, read back
#   (c) ConsumerGroup of 2 members on 4 partitions, commit, restart resumes
#   (d) ClusterAdmin CreateTopic (retention.ms), ListTopics, DescribeTopics, DeleteTopic
# Builds offline in GOPATH mode from Debian's Go packages, installed when missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bootstrap=${BOOTSTRAP:-127.0.0.1:9092}
strom_bin=
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
  strom_bin=$(realpath "$1")
  shift
fi
sarama_src=/usr/share/gocode/src/github.com/Shopify/sarama

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else echo "compat/go: need root to run: $*" >&2; exit 1
  fi
}

if ! command -v go >/dev/null || [ ! -f "$sarama_src/sarama.go" ] || ! command -v gcc >/dev/null; then
  echo "compat/go: installing golang-go and golang-github-shopify-sarama-dev (Debian)" >&2
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq
  as_root apt-get install -y -qq --no-install-recommends golang-go golang-github-shopify-sarama-dev gcc libc6-dev >/dev/null
fi
[ -f "$sarama_src/sarama.go" ] || { echo "compat/go: sarama source not found at $sarama_src" >&2; exit 1; }
version=$(dpkg-query -W -f='${Version}' golang-github-shopify-sarama-dev 2>/dev/null || echo unknown)

# GOPATH mode, offline: this folder (src/stromcompat) and Debian's gocode tree.
export GO111MODULE=off GOFLAGS= GOPROXY=off
export GOPATH="$here:/usr/share/gocode"
export CGO_CFLAGS="-O2 -Wno-deprecated-declarations" # DataDog/zstd's cgo warning
if [ -z "${HOME:-}" ] && [ -z "${XDG_CACHE_HOME:-}" ] && [ -z "${GOCACHE:-}" ]; then
  export GOCACHE=/tmp/stromcompat-go-cache
fi
mkdir -p "$here/bin"
echo "compat/go: building against sarama $version ($(go version | cut -d' ' -f3))"
go build -o "$here/bin/stromcompat" stromcompat

if [ -n "$strom_bin" ]; then
  port=${GO_COMPAT_PORT:-29892}
  source "$root/scripts/lib/strom-process.sh"
  start_strom "$strom_bin" "$port"
  bootstrap="127.0.0.1:$port"
fi

# Fail early and clearly when nothing listens there.
host=${bootstrap%%,*}; port=${host##*:}; host=${host%:*}
if ! timeout 3 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null; then
  echo "compat/go: no broker at $host:$port (set BOOTSTRAP=host:port and start strom first)" >&2
  exit 1
fi

status=0
for v in ${SARAMA_VERSIONS:-${SARAMA_VERSION:-default}}; do
  # Each run is bounded inside (about 60 s at most); timeout is a backstop.
  timeout 120 "$here/bin/stromcompat" -bootstrap "$bootstrap" -version "$v" "$@" || status=1
done
if [ "$status" != 0 ]; then
  echo "compat/go: FAILED: sarama $version against $bootstrap (see FAIL lines above)" >&2
  if [ -n "$strom_bin" ]; then strom_log_tail; fi
fi
exit "$status"
