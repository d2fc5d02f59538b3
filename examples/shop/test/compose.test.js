// No Docker engine runs where strom is tested, so docker-compose.yml is checked by
// construction: resolved by Docker Compose itself (which also validates it against
// its Compose Specification schema), the oldest version it claims and a current one,
// with and without the cluster profile, and wired the way the shop needs in both. The
// end-to-end test (e2e.test.js) then runs the brokers compose resolves as processes.
'use strict'
const test = require('node:test')
const assert = require('node:assert')
const fs = require('node:fs')
const path = require('node:path')
const { ROOT, composeBinaries, resolve, brokers, published } = require('./compose')

const SHOP = ['web', 'order-service', 'inventory-service', 'notification-service', 'analytics-service']
const SHOP_DOCKERFILE = fs.readFileSync(path.join(__dirname, '..', 'Dockerfile'), 'utf8')
const SHOP_DATA_DIR = SHOP_DOCKERFILE.match(/^ENV DATA_DIR=(\S+)$/m)[1]

/** Every STROM_* variable a service sets is one `strom serve` reads. */
function readByStrom (environment) {
  if (!process.env.STROM_BIN) return
  const help = require('node:child_process').execFileSync(process.env.STROM_BIN, ['serve', '--help'], { encoding: 'utf8' })
  for (const name of Object.keys(environment).filter(n => n.startsWith('STROM_'))) {
    assert.ok(help.includes(`env: ${name}=`), `strom serve reads ${name}`)
  }
}

/** What every broker has, alone or in the cluster. */
function checkBroker (project, name) {
  const b = project.services[name]
  const env = b.environment
  assert.match(env.STROM_LISTEN, /INTERNAL:\/\/0\.0\.0\.0:29092/, name)
  assert.match(env.STROM_LISTEN, /EXTERNAL:\/\/0\.0\.0\.0:9092/, name)
  // Kafka's rule: a listener name needs a security protocol.
  assert.strictEqual(env.STROM_LISTENER_SECURITY_PROTOCOL_MAP, 'INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT', name)
  // The other containers and brokers reach it by its service name, on its first
  // plain listener (the one brokers use between themselves); the host on the port
  // it publishes.
  assert.ok(env.STROM_ADVERTISED_LISTENER.startsWith(`INTERNAL://${name}:29092,`), name)
  const external = Number(env.STROM_ADVERTISED_LISTENER.match(/EXTERNAL:\/\/localhost:(\d+)/)[1])
  assert.strictEqual(published(b, 9092), external, `${name} publishes ${external}`)
  // The console and metrics: reachable from the host's loopback only.
  assert.strictEqual(env.STROM_HTTP_LISTEN, '0.0.0.0:9644')
  assert.strictEqual(b.ports.find(p => p.target === 9644).host_ip, '127.0.0.1', name)
  // Its log in a volume of its own; the shop finds it under the alias `kafka`.
  const data = b.volumes.find(v => v.target === env.STROM_DATA_DIR)
  assert.strictEqual(data && data.type, 'volume', `${name} keeps its log in a volume`)
  assert.ok(b.networks.default.aliases.includes('kafka'), name)
  assert.deepStrictEqual(b.healthcheck.test.slice(0, 2), ['CMD', 'strom'], name)
  readByStrom(env)
  return data.source
}

/** The shop's services: every broker running waited for, bootstrapped from `kafka`. */
function checkShop (project) {
  for (const name of SHOP) {
    const s = project.services[name]
    assert.ok(s, name)
    assert.strictEqual(s.environment.KAFKA_BROKERS, 'kafka:29092', name)
    for (const [broker] of brokers(project)) {
      assert.strictEqual(s.depends_on[broker].condition, 'service_healthy', `${name} waits for ${broker}`)
    }
    for (const [dep, d] of Object.entries(s.depends_on)) {
      assert.ok(dep in project.services || d.required === false, `${name} needs ${dep}, which does not run`)
    }
    assert.ok(fs.existsSync(path.join(__dirname, '..', s.command[1])), `${name} runs ${s.command[1]}`)
    const state = s.volumes.find(v => v.target === SHOP_DATA_DIR)
    assert.strictEqual(state && state.type, 'volume', `${name} keeps its state (${SHOP_DATA_DIR}) in a volume`)
    // What a service publishes is its HTTP port, as itself.
    for (const p of s.ports || []) {
      assert.deepStrictEqual([p.target, Number(p.published)], [Number(s.environment.PORT), Number(s.environment.PORT)], name)
    }
  }
  assert.strictEqual(published(project.services.web, 8080), 8080)
  // No two services publish the same host port.
  const ports = Object.values(project.services).flatMap(s => (s.ports || []).map(p => Number(p.published)))
  assert.strictEqual(new Set(ports).size, ports.length, ports.join(' '))
}

for (const bin of composeBinaries()) {
  const version = require('node:child_process').execFileSync(bin, ['version', '--short'], { encoding: 'utf8' }).trim()

  test(`Compose ${version}: \`docker compose up\` runs one broker and the shop`, () => {
    const project = resolve(bin)
    assert.deepStrictEqual(Object.keys(project.services).sort(), ['strom', ...SHOP].sort())
    const volume = checkBroker(project, 'strom')
    assert.strictEqual(published(project.services.strom, 9092), 9092)
    assert.strictEqual(project.services.strom.environment.STROM_METADATA_STORE, undefined, 'no etcd: a single broker')
    assert.strictEqual(project.services.strom.environment.STROM_CONFIG, undefined)
    assert.ok(volume in project.volumes)
    checkShop(project)
  })

  test(`Compose ${version}: \`docker compose --profile cluster up\` runs three etcd members, three brokers and the shop`, () => {
    const project = resolve(bin, ['cluster'])
    const names = ['etcd-1', 'etcd-2', 'etcd-3', 'strom-1', 'strom-2', 'strom-3']
    assert.deepStrictEqual(Object.keys(project.services).sort(), [...names, ...SHOP].sort())
    // One etcd cluster of three, each member reachable by its service name.
    const members = [1, 2, 3].map(n => `etcd-${n}=http://etcd-${n}:2380`).join(',')
    const clientUrls = []
    for (const n of [1, 2, 3]) {
      const etcd = project.services[`etcd-${n}`]
      assert.match(etcd.image, /etcd/)
      assert.ok(etcd.command.includes(`--name=etcd-${n}`))
      assert.ok(etcd.command.includes(`--initial-cluster=${members}`), 'one etcd cluster of three')
      assert.ok(etcd.command.includes(`--initial-advertise-peer-urls=http://etcd-${n}:2380`))
      // Reachable from the other containers, and founding the cluster together.
      assert.ok(etcd.command.includes('--listen-client-urls=http://0.0.0.0:2379'))
      assert.ok(etcd.command.includes('--listen-peer-urls=http://0.0.0.0:2380'))
      assert.ok(etcd.command.includes('--initial-cluster-state=new'))
      assert.ok(etcd.command.includes(`--data-dir=${etcd.volumes[0].target}`), 'its data in its volume')
      clientUrls.push(etcd.command.find(a => a.startsWith('--advertise-client-urls=')).split('=')[1])
      assert.ok(etcd.healthcheck.test.includes('etcdctl'))
      assert.ok(etcd.volumes.some(v => v.type === 'volume' && v.source === `etcd-${n}-data`))
    }
    const ids = new Set()
    const volumes = new Set()
    for (const n of [1, 2, 3]) {
      const name = `strom-${n}`
      const b = project.services[name]
      volumes.add(checkBroker(project, name))
      assert.strictEqual(published(b, 9092), 9091 + n, `${name} on the host's port ${9091 + n}`)
      ids.add(b.environment.STROM_NODE_ID)
      for (const e of [1, 2, 3]) assert.strictEqual(b.depends_on[`etcd-${e}`].condition, 'service_healthy')
      // The cluster's settings: etcd's members (by their service names) and three replicas.
      const config = b.volumes.find(v => v.target === b.environment.STROM_CONFIG)
      assert.strictEqual(config.source, path.join(ROOT, 'examples', 'cluster.properties'))
      const properties = fs.readFileSync(config.source, 'utf8')
      const store = properties.match(/^metadata\.store=etcd:\/\/([^/\s]+)(\/\S+)?$/m)
      assert.ok(store, 'metadata.store in examples/cluster.properties')
      assert.deepStrictEqual(store[1].split(',').map(h => `http://${h}`), clientUrls, 'every etcd member')
      assert.match(properties, /^default\.replication\.factor=3$/m)
      assert.match(properties, /^min\.insync\.replicas=2$/m)
    }
    assert.deepStrictEqual([...ids].sort(), ['1', '2', '3'], 'each broker its own node id')
    assert.strictEqual(volumes.size, 3, 'each broker its own volume')
    // Not the one broker's: a one-broker log never joins the cluster.
    const single = resolve(bin).services.strom.volumes.map(v => v.source)
    for (const v of volumes) assert.ok(!single.includes(v), `${v} is the one broker's volume too`)
    // All of it comes down together (the README's way back to one broker).
    const all = resolve(bin, ['*'])
    assert.deepStrictEqual(Object.keys(all.services).sort(), [...names, 'strom', ...SHOP].sort())
    checkShop(project)
  })
}

/** The sources the build stage of `dockerfile` copies (COPY src… dest, before the next FROM). */
function copiedSources (dockerfile) {
  const build = dockerfile.split(/^FROM /m)[1]
  return build.split('\n').filter(l => l.startsWith('COPY ')).flatMap(l => l.trim().split(/\s+/).slice(1, -1))
}

test('cargo reads the manifest from just what the broker image copies', () => {
  // Cargo refuses a manifest that names a target (a [[bench]], a workspace member)
  // it cannot find; asking it for a binary that does not exist parses everything
  // and stops before compiling anything.
  const os = require('node:os')
  const context = fs.mkdtempSync(path.join(os.tmpdir(), 'strom-image-'))
  try {
    for (const source of copiedSources(fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'))) {
      fs.cpSync(path.join(ROOT, source), path.join(context, source), { recursive: true })
    }
    const run = require('node:child_process').spawnSync('cargo', [
      'build', '--offline', '--locked', '--features', 'cluster', '--bin', 'no-such-binary', '--target-dir', path.join(context, 'target')
    ], { cwd: context, encoding: 'utf8' })
    assert.ok(!run.error, `cargo: ${run.error}`)
    assert.match(run.stderr, /no bin target named `no-such-binary`/, run.stderr)
    assert.match(run.stderr, /^\s+strom$/m, 'the strom binary is there to build')
  } finally {
    fs.rmSync(context, { recursive: true, force: true })
  }
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
  assert.match(SHOP_DOCKERFILE, /npm ci --omit=dev/)
  // The services run as node, and write their state where the volume goes.
  assert.match(SHOP_DOCKERFILE, new RegExp(`^RUN mkdir -p ${SHOP_DATA_DIR} && chown node:node ${SHOP_DATA_DIR}$`, 'm'))
  assert.ok(SHOP_DOCKERFILE.indexOf('chown node') < SHOP_DOCKERFILE.indexOf('USER node'))
})
