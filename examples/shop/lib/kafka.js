// What every shop service shares: the Kafka client, the topics, and a clean
// shutdown. Configuration comes from the environment so that the same code runs as
// plain processes (the tests) and in docker compose.
'use strict'
const { Kafka, logLevel } = require('kafkajs')

const BROKERS = (process.env.KAFKA_BROKERS || 'localhost:9092').split(',')

// Topic names say what happened, the key is always the orderId, so all events of
// one order land in one partition and stay in order.
const TOPICS = {
  ordersCreated: 'orders.created', // web → order service (and analytics)
  inventoryReserved: 'inventory.reserved', // order service → inventory service
  ordersCompleted: 'orders.completed', // order service → notification, web, analytics
  ordersRejected: 'orders.rejected' // order service → notification, web, analytics
}

function kafka (clientId) {
  return new Kafka({ clientId, brokers: BROKERS, logLevel: logLevel.WARN, retry: { retries: 10 } })
}

/** Create the shop's topics if they do not exist yet (idempotent). */
async function ensureTopics (client) {
  const admin = client.admin()
  await admin.connect()
  const existing = new Set(await admin.listTopics())
  const missing = Object.values(TOPICS).filter(t => !existing.has(t))
  if (missing.length) {
    await admin.createTopics({ topics: missing.map(topic => ({ topic, numPartitions: 3 })) }).catch(() => {})
  }
  await admin.disconnect()
}

/** Run `stop` on SIGINT/SIGTERM, then exit. */
function onShutdown (stop) {
  let stopping = false
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.on(signal, async () => {
      if (stopping) return
      stopping = true
      try { await stop() } finally { process.exit(0) }
    })
  }
}

function log (service, message, fields = {}) {
  console.log(JSON.stringify({ time: new Date().toISOString(), service, message, ...fields }))
}

module.exports = { kafka, ensureTopics, onShutdown, log, TOPICS }
