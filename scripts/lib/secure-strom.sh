# Sourced by the compat suites after strom-process.sh: a second strom with
# security on, as the README's Security section configures it.
#   start_secure_strom BIN PORT   listeners SASL_SSL PORT, SASL_PLAINTEXT PORT+1,
#                                 SSL PORT+2 (client certificates required);
#                                 PLAIN users admin (super user) and alice, SCRAM
#                                 users bob (SHA-512) and carol (SHA-256), ACLs on.
# Sets $SECURE_DIR (ca.pem, client.pem/client.key, admin.properties) and
# $SECURE_PID; stopped when the script exits.

SECURE_DIR="$STROM_WORK/secure"
SECURE_PID=
stop_secure_strom() {
  if [ -n "$SECURE_PID" ]; then
    kill "$SECURE_PID" 2>/dev/null && wait "$SECURE_PID" 2>/dev/null
    SECURE_PID=
  fi
}
trap 'stop_secure_strom; stop_strom; rm -rf "$STROM_WORK"' EXIT

# A CA, the broker's certificate for localhost and 127.0.0.1 (key and chain in
# one PEM file, as ssl.keystore.location takes it) and a client certificate.
make_test_pki() {
  local d=$1
  mkdir -p "$d"
  (
    cd "$d"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj "/CN=strom test CA" 2>/dev/null
    issue() { # name, subject, extensions
      openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
      printf '%s\n' "$3" >"$1.ext"
      openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$1.crt" -days 2 \
        -extfile "$1.ext" 2>/dev/null
    }
    issue server "/CN=localhost" "subjectAltName=DNS:localhost,IP:127.0.0.1"
    cat server.key server.crt >server.pem
    issue client "/O=strom/CN=alice" "extendedKeyUsage=clientAuth"
  )
}

start_secure_strom() {
  local bin=$1 port=$2
  SECURE_BIN=$bin SECURE_PORT=$port
  make_test_pki "$SECURE_DIR"
  cat >"$SECURE_DIR/server.properties" <<PROPS
listeners=SASL_SSL://127.0.0.1:$port,SASL_PLAINTEXT://127.0.0.1:$((port + 1)),SSL://127.0.0.1:$((port + 2))
log.dirs=$SECURE_DIR/data
group.initial.rebalance.delay.ms=0
ssl.keystore.type=PEM
ssl.keystore.location=$SECURE_DIR/server.pem
ssl.truststore.type=PEM
ssl.truststore.location=$SECURE_DIR/ca.pem
listener.name.ssl.ssl.client.auth=required
ssl.principal.mapping.rules=RULE:^CN=([^,]*),.*\$/\$1/,DEFAULT
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required \\
  user_admin="admin-secret" user_alice="alice-secret";
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required \\
  user_admin="admin-secret" user_alice="alice-secret";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin
PROPS
  cat >"$SECURE_DIR/admin.properties" <<PROPS
security.protocol=SASL_SSL
sasl.mechanism=PLAIN
sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret";
ssl.truststore.type=PEM
ssl.truststore.location=$SECURE_DIR/ca.pem
PROPS
  "$bin" --config "$SECURE_DIR/server.properties" >>"$SECURE_DIR/strom.log" 2>&1 &
  SECURE_PID=$!
  for _ in $(seq 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    sleep 0.05
  done
  local admin=(--bootstrap-server "127.0.0.1:$port" --command-config "$SECURE_DIR/admin.properties")
  "$bin" users create bob --password bob-secret --mechanism SCRAM-SHA-512 "${admin[@]}" >/dev/null &&
    "$bin" users create carol --password carol-secret --mechanism SCRAM-SHA-256 "${admin[@]}" >/dev/null ||
    { echo "secure strom did not start:"; cat "$SECURE_DIR/strom.log"; return 1; }
}

# strom's admin tool, logged in as the super user.
secure_admin() { "$SECURE_BIN" "$@" --bootstrap-server "127.0.0.1:$SECURE_PORT" --command-config "$SECURE_DIR/admin.properties"; }
