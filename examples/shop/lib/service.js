// The shape every shop service shares: ensure the topics exist, consume some topics
// as one consumer group (from the beginning, so a new service catches up), maybe
// produce, maybe serve HTTP, and shut down cleanly on SIGINT/SIGTERM.
'use strict'
const { kafka, ensureTopics, onShutdown, log } = require('./kafka')
const { serve } = require('./http')

/**
 * @param {object} o
 * @param {string} o.name        client id, and the consumer group id
 * @param {string[]} o.topics    topics to consume
 * @param {function} o.eachMessage  ({topic, message}, producer) => Promise
 * @param {boolean} [o.producer] also connect a producer (acks=all on every send)
 * @param {function} [o.routes]  producer => routes for lib/http's serve
 * @param {number} [o.port]      HTTP port (with routes)
 */
async function runService ({ name, topics, eachMessage, producer = false, routes, port }) {
  const client = kafka(name)
  await ensureTopics(client)
  // One request in flight, so retries keep each key's events in order; not
  // kafkajs's idempotent mode: losing a broker mid-request, kafkajs 2.2 can give
  // the next record a sequence number already used, which the broker (as Kafka
  // would) takes for a duplicate and drops while the send succeeds (kafkajs#1303).
  // A retried send may arrive twice instead, and every service applies each
  // event once (lib/state.js).
  const prod = producer ? client.producer({ maxInFlightRequests: 1 }) : null
  if (prod) await prod.connect()
  const consumer = client.consumer({ groupId: name, sessionTimeout: 10000, heartbeatInterval: 1000 })
  await consumer.connect()
  await consumer.subscribe({ topics, fromBeginning: true })
  await consumer.run({ eachMessage: args => eachMessage(args, prod) })
  const server = routes ? await serve(port, routes(prod)) : null
  if (server) log(name, 'listening', { port: server.address().port })
  onShutdown(async () => {
    if (server) server.close()
    await consumer.disconnect()
    if (prod) await prod.disconnect()
  })
}

/** Run `main`, exiting with the error if it fails. */
function start (main) {
  main().catch(e => { console.error(e); process.exit(1) })
}

module.exports = { runService, start }
