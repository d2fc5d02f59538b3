// The whole shop as processes: strom, then every service. 200 orders go in (some
// impossible to satisfy); in the middle of the stream the inventory service (on
// one broker) or one of three brokers (on a cluster) is killed with SIGKILL and
// restarted. At the end stock, statuses, notifications and analytics must agree
// exactly. The brokers are the ones docker-compose.yml runs, as Docker Compose
// resolves it (test/compose.js): their environment and properties file, with the
// addresses moved to this machine.
'use strict'
const test = require('node:test')
const assert = require('node:assert')
const { spawn, execFileSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { Kafka, logLevel } = require('kafkajs')
const { INITIAL_STOCK, PRICES } = require('../lib/catalog')
const { composeBinaries, resolve, brokers, asProcess, healthcheckAsProcess } = require('./compose')

const ROOT = path.join(__dirname, '..', '..', '..')
const STROM = process.env.STROM_BIN || path.join(ROOT, 'target', 'debug', 'strom')
const BROKER_PORT = Number(process.env.SHOP_BROKER_PORT || 29592)
const HTTP_PORT = Number(process.env.SHOP_HTTP_PORT || 18180)
const PORTS = { web: HTTP_PORT, inventory: HTTP_PORT + 1, analytics: HTTP_PORT + 2, notification: HTTP_PORT + 3 }
const COMPOSE = composeBinaries()[0]
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'strom-shop-'))
const children = new Map()

let kafkaBrokers = `127.0.0.1:${BROKER_PORT}`
let servicesDir = path.join(work, 'services')

function start (name, command, args, env = {}) {
  const out = fs.openSync(path.join(work, `${name}.log`), 'a')
  const child = spawn(command, args, {
    env: { ...process.env, KAFKA_BROKERS: kafkaBrokers, DATA_DIR: servicesDir, ...env },
    stdio: ['ignore', out, out]
  })
  children.set(name, child)
  return child
}

function startService (name, file, port) {
  return start(name, process.execPath, [path.join(__dirname, '..', 'services', file)], port ? { PORT: String(port) } : {})
}

/** Stop child `name` with `signal`, and with SIGKILL if it has not exited 10 s later. */
async function stop (name, signal = 'SIGTERM') {
  const child = children.get(name)
  if (!child || child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise(resolve => child.once('exit', resolve))
  child.kill(signal)
  const late = setTimeout(() => child.kill('SIGKILL'), 10000)
  await exited
  clearTimeout(late)
}

async function waitFor (cond, what, ms = 60000) {
  const deadline = Date.now() + ms
  for (;;) {
    try { if (await cond()) return } catch (_) {}
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

async function http (port, method, url, body) {
  const res = await fetch(`http://127.0.0.1:${port}${url}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body && JSON.stringify(body)
  })
  return { status: res.status, body: await res.json() }
}

/** A deterministic order stream: every tenth order wants far more than exists. */
function orders (n) {
  let seed = 42
  const rand = k => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % k }
  const products = Object.keys(INITIAL_STOCK)
  return Array.from({ length: n }, (_, i) => {
    if (i % 10 === 9) return { userId: `user-${i}`, items: [{ productId: '777', quantity: 1000, price: PRICES[777] }] }
    const items = []
    for (const p of products) if (rand(2)) items.push({ productId: p, quantity: 1 + rand(4), price: PRICES[p] })
    if (!items.length) items.push({ productId: '535', quantity: 1, price: PRICES[535] })
    return { userId: `user-${i % 17}`, items }
  })
}

/** What each process was doing, for a failure's report: exit codes and log tails. */
function report () {
  for (const [name, child] of children) {
    const file = path.join(work, `${name}.log`)
    const lines = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trimEnd().split('\n') : []
    console.error(`--- ${name}: ${child.exitCode === null ? 'running' : `exited ${child.exitCode} ${child.signalCode || ''}`}`)
    for (const line of lines.slice(-25)) console.error(`  ${line}`)
  }
}

/** Run `body`, reporting every process's state and log if it fails; then stop them all. */
async function reportingFailures (body) {
  try { await body() } catch (e) { report(); throw e } finally { await stopAll() }
}

test.after(async () => {
  for (const name of [...children.keys()].reverse()) await stop(name)
  if (process.env.KEEP_SHOP_LOGS) console.log(`logs in ${work}`)
  else fs.rmSync(work, { recursive: true, force: true })
})

/**
 * Broker `name` of the compose `project` as a process, at `at` (see asProcess),
 * with its properties file passed through `rewrite`; a shorter rebalance delay and
 * etcd session, for the test's pace.
 */
const brokerEnv = new Map()
function startBroker (project, name, at, rewrite = text => text) {
  const env = asProcess(project, name, at, path.join(work, name), work, rewrite)
  brokerEnv.set(name, env)
  start(name, STROM, [
    'serve', '--group-initial-rebalance-delay-ms', '0',
    '--override', 'broker.session.timeout.ms=3000', '--override', 'broker.heartbeat.interval.ms=500'
  ], env)
}

/**
 * Until broker `name` passes the healthcheck compose gives it (what the shop waits
 * for), run as in its container: with the broker's environment.
 */
async function untilHealthy (project, name, at) {
  const [program, args] = healthcheckAsProcess(project, name, at, STROM)
  const env = { ...process.env, ...brokerEnv.get(name) }
  await waitFor(() => { execFileSync(program, args, { env, stdio: 'ignore', timeout: 5000 }); return true }, `${name} healthy`)
}

test('the shop pipeline agrees end to end, across a crash of the inventory service', { timeout: 300000 }, () => reportingFailures(async () => {
  // `docker compose up`: one broker.
  const project = resolve(COMPOSE)
  assert.deepStrictEqual(brokers(project).map(([name]) => name), ['strom'])
  const at = { host: '127.0.0.1', internal: BROKER_PORT, external: BROKER_PORT + 1, http: BROKER_PORT + 2 }
  startBroker(project, 'strom', at)
  await untilHealthy(project, 'strom', at)
  await shop(async i => {
    if (i === 100) await stop('inventory', 'SIGKILL') // no chance to commit or clean up
    if (i === 130) startService('inventory', 'inventory-service.js', PORTS.inventory)
  })
}))

const ETCD = ['/usr/bin/etcd', '/usr/local/bin/etcd'].find(p => fs.existsSync(p))
const CLUSTER_PORT = BROKER_PORT + 10

test('the shop pipeline agrees end to end on a three-broker cluster, across a broker\'s crash', { timeout: 300000, skip: !ETCD && 'no etcd here' }, () => reportingFailures(async () => {
  // `docker compose --profile cluster up`: three brokers on etcd (here one member
  // stands for compose's three).
  const project = resolve(COMPOSE, ['cluster'])
  const names = brokers(project).map(([name]) => name)
  assert.deepStrictEqual(names, ['strom-1', 'strom-2', 'strom-3'])
  const etcdClient = `127.0.0.1:${CLUSTER_PORT + 5}`
  const etcdPeer = `http://127.0.0.1:${CLUSTER_PORT + 6}`
  start('etcd', ETCD, [
    '--data-dir', path.join(work, 'etcd'), '--name', 'shop',
    '--listen-client-urls', `http://${etcdClient}`, '--advertise-client-urls', `http://${etcdClient}`,
    '--listen-peer-urls', etcdPeer, '--initial-advertise-peer-urls', etcdPeer, '--initial-cluster', `shop=${etcdPeer}`
  ])
  // Compose's etcd members by name become this one.
  const toThisEtcd = text => text.replace(/^(metadata\.store=etcd:\/\/)([^/\s]+)/m, (_, scheme, hosts) => {
    assert.match(hosts, /^etcd-\d:2379(,etcd-\d:2379)*$/, 'etcd by its service names')
    return scheme + etcdClient
  })
  const at = n => ({ host: '127.0.0.1', internal: CLUSTER_PORT + n, external: CLUSTER_PORT + 10 + n, http: CLUSTER_PORT + 20 + n })
  // What the alias `kafka` resolves to in compose: every broker's internal listener.
  kafkaBrokers = [1, 2, 3].map(n => `127.0.0.1:${at(n).internal}`).join(',')
  servicesDir = path.join(work, 'services-cluster')
  names.forEach((name, i) => startBroker(project, name, at(i + 1), toThisEtcd))
  for (const [i, name] of names.entries()) await untilHealthy(project, name, at(i + 1))
  await shop(async i => {
    if (i === 100) await stop('strom-2', 'SIGKILL')
    if (i === 130) startBroker(project, 'strom-2', at(2), toThisEtcd)
  })
  const admin = new Kafka({ clientId: 'shop-test', brokers: kafkaBrokers.split(','), logLevel: logLevel.NOTHING }).admin()
  await admin.connect()
  const { topics } = await admin.fetchTopicMetadata({ topics: ['orders.created'] })
  assert.ok(topics[0].partitions.every(p => p.replicas.length === 3), 'three replicas of every partition')
  await admin.disconnect()
}))

async function stopAll () {
  for (const name of [...children.keys()].reverse()) await stop(name)
  children.clear()
}

/** Every service, 200 orders (`fault(i)` before the i-th), and the checks. */
async function shop (fault) {
  const admin = new Kafka({ clientId: 'shop-test', brokers: kafkaBrokers.split(','), logLevel: logLevel.NOTHING }).admin()
  await waitFor(async () => { await admin.connect(); return true }, 'strom')
  // A cluster is ready once the brokers know one another.
  await waitFor(async () => (await admin.describeCluster()).brokers.length === kafkaBrokers.split(',').length, 'every broker')

  startService('web', 'web.js', PORTS.web)
  startService('order', 'order-service.js')
  startService('inventory', 'inventory-service.js', PORTS.inventory)
  startService('notification', 'notification-service.js', PORTS.notification)
  startService('analytics', 'analytics-service.js', PORTS.analytics)
  const groups = ['web-order-status', 'order-service', 'inventory-service', 'notification-service', 'analytics-service']
  let states = []
  await waitFor(async () => {
    const { groups: described } = await admin.describeGroups(groups)
    states = described.map(g => `${g.groupId}=${g.state}(${g.members.length})`)
    return described.every(g => g.state === 'Stable')
  }, 'every service in its consumer group').catch(e => { throw new Error(`${e.message}: ${states.join(' ')}`) })

  assert.strictEqual((await http(PORTS.web, 'POST', '/orders', { items: [] })).status, 400)

  const stream = orders(200)
  const ids = []
  for (const [i, order] of stream.entries()) {
    await fault(i)
    const { status, body } = await http(PORTS.web, 'POST', '/orders', order)
    assert.strictEqual(status, 202)
    ids.push(body.orderId)
  }

  // Every order reaches a final status.
  const statuses = {}
  await waitFor(async () => {
    for (const id of ids) {
      if (statuses[id]) continue
      const { body } = await http(PORTS.web, 'GET', `/orders/${id}`)
      if (body.status !== 'pending') statuses[id] = body.status
    }
    return Object.keys(statuses).length === ids.length
  }, 'a final status for every order', 120000)
  const completed = ids.map((id, i) => ({ id, order: stream[i] })).filter(o => statuses[o.id] === 'completed')
  const rejected = ids.filter(id => statuses[id] === 'rejected')
  assert.strictEqual(completed.length + rejected.length, 200)
  stream.forEach((o, i) => { if (i % 10 === 9) assert.strictEqual(statuses[ids[i]], 'rejected', `order ${i} is impossible`) })
  assert.ok(completed.length > 100, `most orders can be served (${completed.length})`)

  // Stock: decremented exactly once per completed order, never below zero.
  const expected = { ...INITIAL_STOCK }
  for (const { order } of completed) for (const item of order.items) expected[item.productId] -= item.quantity
  let stock
  await waitFor(async () => {
    stock = (await http(PORTS.inventory, 'GET', '/stock')).body
    return JSON.stringify(stock) === JSON.stringify(expected)
  }, `stock ${JSON.stringify(expected)}`).catch(e => { throw new Error(`${e.message}, not ${JSON.stringify(stock)}`) })
  assert.ok(Object.values(expected).every(units => units >= 0))

  // One notification per order, saying what happened.
  await waitFor(async () => (await http(PORTS.notification, 'GET', '/notifications')).body.length === 200, '200 notifications')
  const notes = (await http(PORTS.notification, 'GET', '/notifications')).body
  assert.deepStrictEqual(Object.fromEntries(notes.map(n => [n.orderId, n.kind])), statuses)

  // Analytics agree with all of it.
  const revenue = completed.reduce((sum, { order }) => sum + order.items.reduce((s, i) => s + i.quantity * i.price, 0), 0)
  await waitFor(async () => (await http(PORTS.analytics, 'GET', '/stats')).body.ordersCompleted === completed.length, 'analytics to catch up')
  const stats = (await http(PORTS.analytics, 'GET', '/stats')).body
  assert.strictEqual(stats.ordersCreated, 200)
  assert.strictEqual(stats.ordersRejected, rejected.length)
  assert.strictEqual(stats.revenue, revenue)
  for (const [product, initial] of Object.entries(INITIAL_STOCK)) {
    assert.strictEqual(stats.unitsSold[product] || 0, initial - expected[product], `units of ${product}`)
  }
  assert.strictEqual(stats.popular[0], Object.entries(stats.unitsSold).sort((a, b) => b[1] - a[1])[0][0])
  await admin.disconnect()
}
