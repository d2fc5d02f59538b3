#!/usr/bin/env bash
# kcat (librdkafka's command-line client) against a real strom process:
# metadata, keyed produce from a file, consume back with -e, byte-for-byte compare,
# with and without compression, and a restart in between.
#
# Usage: compat/kcat/run.sh [path/to/strom]   (default: target/debug/strom)
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
bin=$(realpath "${1:-$root/target/debug/strom}")
port=${KCAT_PORT:-29092}
broker=127.0.0.1:$port
source "$root/scripts/lib/strom-process.sh"
source "$root/scripts/lib/secure-strom.sh"
work=$STROM_WORK

start() { start_strom "$bin" "$port" --num-partitions 4; }
stop() { stop_strom; }

passed=0 failed=0
check() { # name, command...
  local name=$1; shift
  if "$@"; then passed=$((passed + 1)); echo "ok   $name"; else failed=$((failed + 1)); echo "FAIL $name"; fi
}

start

# Metadata: one broker, advertised as configured.
kcat -b "$broker" -L >"$work/meta.txt"
check "metadata lists the broker" grep -q "broker 0 at $broker" "$work/meta.txt"

# Keyed messages from a file; values hold the delimiter, JSON and UTF-8.
for i in $(seq 1 2000); do
  printf 'order-%d:{"orderId":"%d","userId":"67890","items":[{"productId":"535","quantity":1,"price":300}],"totalPrice":400.00,"note":"grüße"}\n' "$i" "$i"
done >"$work/orders.txt"

produce_and_compare() { # topic, extra kcat flags...
  local topic=$1; shift
  kcat -b "$broker" -P -t "$topic" -p 0 -K: -l "$@" "$work/orders.txt"
  kcat -b "$broker" -C -t "$topic" -p 0 -o beginning -e -q -K: -f '%k:%s\n' >"$work/$topic.out"
  cmp "$work/orders.txt" "$work/$topic.out"
}
check "produce and consume back, byte for byte" produce_and_compare shop.orders
check "the same with gzip" produce_and_compare shop.orders.gzip -z gzip
check "the same with snappy" produce_and_compare shop.orders.snappy -z snappy
check "the same with lz4" produce_and_compare shop.orders.lz4 -z lz4
check "the same with zstd" produce_and_compare shop.orders.zstd -z zstd

kcat -b "$broker" -L -t shop.orders >"$work/topic.txt"
check "the topic was auto-created with num.partitions" grep -q 'topic "shop.orders" with 4 partitions' "$work/topic.txt"

# Offsets: -Q by timestamp (0 = the first record), and the end offset after a restart.
check "offset query by timestamp" bash -c "kcat -b $broker -Q -t shop.orders:0:0 | grep -q 'offset 0'"
stop
start
kcat -b "$broker" -C -t shop.orders -p 0 -o beginning -e -q -K: -f '%k:%s\n' >"$work/after-restart.out"
check "everything is still there after a restart" cmp "$work/orders.txt" "$work/after-restart.out"
check "the end offset survives" bash -c "kcat -b $broker -C -t shop.orders -p 0 -o -1 -e -q -f '%o\n' | grep -qx 1999"

# Two balanced consumers (-G) in one group split the partitions between them.
kcat -b "$broker" -L -t shop.split >/dev/null
group_consumer() { # n
  kcat -b "$broker" -G split-group shop.split -u -X auto.offset.reset=earliest -f '%p %s\n' \
    >"$work/g$1.out" 2>"$work/g$1.err" &
  echo $!
}
g1=$(group_consumer 1)
g2=$(group_consumer 2)
wait_for() { # seconds, command...
  local n=$(($1 * 10)); shift
  for _ in $(seq "$n"); do "$@" && return 0; sleep 0.1; done
  return 1
}
both_assigned() { grep -q 'assigned:' "$work/g1.err" && grep -q 'assigned:' "$work/g2.err"; }
check "both -G consumers get an assignment" wait_for 30 both_assigned
# Keyed, so the default partitioner spreads them over every partition.
seq 1 400 | sed 's/.*/key-&:&/' | kcat -b "$broker" -P -t shop.split -K:
all_consumed() { [ "$(cat "$work/g1.out" "$work/g2.out" | wc -l)" -ge 400 ]; }
check "together they consume every record" wait_for 30 all_consumed
kill "$g1" "$g2" 2>/dev/null; wait "$g1" "$g2" 2>/dev/null || true
split_evenly() {
  local p1 p2
  p1=$(cut -d' ' -f1 "$work/g1.out" | sort -u | tr '\n' ' ')
  p2=$(cut -d' ' -f1 "$work/g2.out" | sort -u | tr '\n' ' ')
  echo "   consumer 1 partitions: $p1; consumer 2 partitions: $p2"
  [ -n "$p1" ] && [ -n "$p2" ] && [ -z "$(comm -12 <(echo "$p1" | tr ' ' '\n' | sed '/^$/d') <(echo "$p2" | tr ' ' '\n' | sed '/^$/d'))" ]
}
check "each consumer owns different partitions" split_evenly
exactly_once() { cat "$work/g1.out" "$work/g2.out" | cut -d' ' -f2 | sort -n | cmp - <(seq 1 400); }
check "each record was consumed exactly once" exactly_once

# Security: the same kcat over SASL_SSL (SCRAM and PLAIN), SASL_PLAINTEXT and
# mutual TLS, against a broker with ACLs on.
sport=$((port + 10))
start_secure_strom "$bin" "$sport"
tls=(-X security.protocol=SASL_SSL -X ssl.ca.location="$SECURE_DIR/ca.pem")
as_bob=(-b "127.0.0.1:$sport" "${tls[@]}" -X sasl.mechanisms=SCRAM-SHA-512 -X sasl.username=bob -X sasl.password=bob-secret)
secure_admin topics create secure.orders --partitions 2 >/dev/null
secure_admin acls add --allow-principal User:bob --operation Write --operation Read --topic secure. --resource-pattern-type prefixed >/dev/null
secure_admin acls add --allow-principal User:bob --operation Read --group bob- --resource-pattern-type prefixed >/dev/null
secure_produce_consume() {
  head -200 "$work/orders.txt" | kcat "${as_bob[@]}" -P -t secure.orders -p 0 -K: -l /dev/stdin
  kcat "${as_bob[@]}" -C -t secure.orders -p 0 -o beginning -e -q -K: -f '%k:%s\n' >"$work/secure.out"
  cmp <(head -200 "$work/orders.txt") "$work/secure.out"
}
check "SASL_SSL with SCRAM-SHA-512: produce and consume back" secure_produce_consume
check "a consumer group over SASL_SSL" bash -c "kcat ${as_bob[*]@Q} -G bob-readers secure.orders -o beginning -e -q -X auto.offset.reset=earliest | wc -l | grep -qx 200"
check "a wrong password is refused" bash -c "! kcat -b 127.0.0.1:$sport ${tls[*]@Q} -X sasl.mechanisms=SCRAM-SHA-512 -X sasl.username=bob -X sasl.password=nope -L -m 5 >/dev/null 2>&1"
check "SCRAM-SHA-256 over SASL_PLAINTEXT" bash -c "kcat -b 127.0.0.1:$((sport + 1)) -X security.protocol=SASL_PLAINTEXT -X sasl.mechanisms=SCRAM-SHA-256 -X sasl.username=carol -X sasl.password=carol-secret -L | grep -q 'broker 0'"
check "PLAIN over SASL_SSL" bash -c "kcat -b 127.0.0.1:$sport ${tls[*]@Q} -X sasl.mechanisms=PLAIN -X sasl.username=alice -X sasl.password=alice-secret -L | grep -q 'broker 0'"
denied() {
  local out
  out=$(echo x | kcat -b "127.0.0.1:$sport" "${tls[@]}" -X sasl.mechanisms=PLAIN -X sasl.username=alice -X sasl.password=alice-secret -P -t secure.orders 2>&1 || true)
  grep -q 'Topic authorization failed' <<<"$out"
}
check "without an ACL, alice may not write (TOPIC_AUTHORIZATION_FAILED)" denied
mtls=(-b "127.0.0.1:$((sport + 2))" -X security.protocol=SSL -X ssl.ca.location="$SECURE_DIR/ca.pem")
check "mTLS with a client certificate" bash -c "kcat ${mtls[*]@Q} -X ssl.certificate.location=$SECURE_DIR/client.crt -X ssl.key.location=$SECURE_DIR/client.key -L | grep -q 'broker 0'"
check "mTLS without one is refused" bash -c "! kcat ${mtls[*]@Q} -L -m 5 >/dev/null 2>&1"

echo "kcat: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
