#!/usr/bin/env bash
# Every test strom has, on a fresh machine: installs what is missing (kcat, Node.js
# and the npm packages of each suite), then
# unit and integration tests (with a real librdkafka through the rdkafka crate),
# lints, and the compatibility suites (kcat, kafkajs, sarama, confluent-kafka)
# against the real binary.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v kcat >/dev/null 2>&1 || missing+=(kcat)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
command -v node >/dev/null 2>&1 || missing+=(nodejs npm)
# librdkafka in the tests is built with OpenSSL (TLS and SCRAM clients).
{ command -v pkg-config >/dev/null 2>&1 && pkg-config --exists openssl; } || missing+=(pkg-config libssl-dev)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
# The cluster feature: protoc for the etcd client's build, etcd (and etcdctl)
# for the cluster tests.
command -v protoc >/dev/null 2>&1 || missing+=(protobuf-compiler)
[ -f /usr/include/google/protobuf/descriptor.proto ] || missing+=(libprotobuf-dev)
command -v etcd >/dev/null 2>&1 || [ -x /usr/bin/etcd ] || missing+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || missing+=(etcd-client)
# The network-partition tests put brokers in network namespaces (ip netns).
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

echo "== format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy --workspace --all-targets --locked --features strom/cluster -- -D warnings

# The cluster tests' checker runs a kafkajs writer (compat/kafkajs/checker-producer.js).
(cd compat/kafkajs && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

echo "== unit and integration tests (with the cluster feature: a single broker's tests, and the cluster's against etcd)"
cargo test --workspace --locked --all-targets --features strom/cluster

echo "== fuzz: every target for 20 s from the committed corpus (cargo-fuzz, where a nightly toolchain exists)"
bash scripts/fuzz.sh 20

echo "== compat: kcat"
bash compat/kcat/run.sh target/debug/strom

echo "== examples/exactly_once.rs: the README's transaction example"
bash scripts/exactly-once-example.sh target/debug/strom

echo "== compat: kafkajs"
bash compat/kafkajs/run.sh target/debug/strom

echo "== compat: see inside (metrics through promtool, the protocol trace, the console in Chromium)"
bash compat/console/run.sh target/debug/strom

echo "== examples/shop: the order pipeline end to end, and docker-compose"
bash examples/shop/run-tests.sh target/debug/strom

echo "== compat: sarama 1.22 (Go, Debian's package, old protocol versions)"
SARAMA_VERSIONS="default 0.10.0.0 0.11.0.0" bash compat/go/run.sh target/debug/strom

echo "== compat: confluent-kafka (Python) AdminClient, transactions, KIP-848 groups, in a venv"
bash compat/python/run.sh target/debug/strom
