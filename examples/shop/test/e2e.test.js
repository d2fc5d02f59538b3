// The whole shop as processes: strom, then every service. 200 orders go in (some
// impossible to satisfy); in the middle of the stream the inventory service (on
// one broker) or one of three brokers (on a cluster, the topology of
// docker-compose.cluster.yml) is killed with SIGKILL and restarted. At the end
// stock, statuses, notifications and analytics must agree exactly.
'use strict'
const test = require('node:test')
const assert = require('node:assert')
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { Kafka, logLevel } = require('kafkajs')
const { INITIAL_STOCK, PRICES } = require('../lib/catalog')

const ROOT = path.join(__dirname, '..', '..', '..')
const STROM = process.env.STROM_BIN || path.join(ROOT, 'target', 'debug', 'strom')
const BROKER_PORT = Number(process.env.SHOP_BROKER_PORT || 29592)
const PORTS = { web: 18180, inventory: 18181, analytics: 18182, notification: 18183 }
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

async function stop (name, signal = 'SIGTERM') {
  const child = children.get(name)
  if (!child || child.exitCode !== null) return
  const exited = new Promise(resolve => child.once('exit', resolve))
  child.kill(signal)
  await exited
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

/** Run `body`, reporting every process's state and log if it fails. */
async function reportingFailures (body) {
  try { await body() } catch (e) { report(); throw e }
}

test.after(async () => {
  for (const name of [...children.keys()].reverse()) await stop(name)
  if (process.env.KEEP_SHOP_LOGS) console.log(`logs in ${work}`)
  else fs.rmSync(work, { recursive: true, force: true })
})

test('the shop pipeline agrees end to end, across a crash of the inventory service', { timeout: 300000 }, () => reportingFailures(async () => {
  start('strom', STROM, [
    '--listen', `127.0.0.1:${BROKER_PORT}`, '--advertised-listener', `127.0.0.1:${BROKER_PORT}`,
    '--data-dir', path.join(work, 'strom'), '--group-initial-rebalance-delay-ms', '0'
  ])
  await shop(async i => {
    if (i === 100) await stop('inventory', 'SIGKILL') // no chance to commit or clean up
    if (i === 130) startService('inventory', 'inventory-service.js', PORTS.inventory)
  })
  await stopAll()
}))

const ETCD = ['/usr/bin/etcd', '/usr/local/bin/etcd'].find(p => fs.existsSync(p))
const CLUSTER_PORT = BROKER_PORT + 10

/** Broker `n` of the three-broker cluster (etcd on CLUSTER_PORT + 5). */
function startBroker (n) {
  const port = CLUSTER_PORT + n
  start(`strom-${n}`, STROM, [
    '--node-id', String(n), '--metadata-store', `etcd://127.0.0.1:${CLUSTER_PORT + 5}/shop`,
    '--listen', `127.0.0.1:${port}`, '--advertised-listener', `127.0.0.1:${port}`,
    '--data-dir', path.join(work, `strom-${n}`), '--group-initial-rebalance-delay-ms', '0',
    // As docker-compose.cluster.yml: every topic on all three brokers.
    '--config', path.join(ROOT, 'examples', 'cluster.properties'),
    '--override', 'broker.session.timeout.ms=3000', '--override', 'broker.heartbeat.interval.ms=500'
  ])
}

test('the shop pipeline agrees end to end on a three-broker cluster, across a broker\'s crash', { timeout: 300000, skip: !ETCD && 'no etcd here' }, () => reportingFailures(async () => {
  const etcdPeer = `http://127.0.0.1:${CLUSTER_PORT + 6}`
  start('etcd', ETCD, [
    '--data-dir', path.join(work, 'etcd'), '--name', 'shop',
    '--listen-client-urls', `http://127.0.0.1:${CLUSTER_PORT + 5}`, '--advertise-client-urls', `http://127.0.0.1:${CLUSTER_PORT + 5}`,
    '--listen-peer-urls', etcdPeer, '--initial-advertise-peer-urls', etcdPeer, '--initial-cluster', `shop=${etcdPeer}`
  ])
  kafkaBrokers = [1, 2, 3].map(n => `127.0.0.1:${CLUSTER_PORT + n}`).join(',')
  servicesDir = path.join(work, 'services-cluster')
  for (const n of [1, 2, 3]) startBroker(n)
  await shop(async i => {
    if (i === 100) await stop('strom-2', 'SIGKILL')
    if (i === 130) startBroker(2)
  })
  const admin = new Kafka({ clientId: 'shop-test', brokers: kafkaBrokers.split(','), logLevel: logLevel.NOTHING }).admin()
  await admin.connect()
  const { topics } = await admin.fetchTopicMetadata({ topics: ['orders.created'] })
  assert.ok(topics[0].partitions.every(p => p.replicas.length === 3), 'three replicas of every partition')
  await admin.disconnect()
  await stopAll()
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
  await waitFor(async () => {
    const { body } = await http(PORTS.inventory, 'GET', '/stock')
    return JSON.stringify(body) === JSON.stringify(expected)
  }, `stock ${JSON.stringify(expected)}`)
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
