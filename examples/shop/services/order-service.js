// The order service: subscribed to new orders. It checks stock, records the order
// and decides: an order it can satisfy is published as items reserved (for the
// inventory service) and as completed (for notifications); one it cannot is
// published as rejected.
//
// Its view of the stock is its own (initial stock minus what it has reserved), kept
// durably with the orders it has decided, so a redelivered order is not decided twice.
'use strict'
const { kafka, ensureTopics, onShutdown, log, TOPICS } = require('../lib/kafka')
const { INITIAL_STOCK } = require('../lib/catalog')
const store = require('../lib/state').open('order-service', () => ({ available: { ...INITIAL_STOCK } }))

async function main () {
  const client = kafka('order-service')
  await ensureTopics(client)
  const producer = client.producer({ idempotent: true })
  await producer.connect()
  const consumer = client.consumer({ groupId: 'order-service', sessionTimeout: 10000, heartbeatInterval: 1000 })
  await consumer.connect()
  await consumer.subscribe({ topic: TOPICS.ordersCreated, fromBeginning: true })
  await consumer.run({
    eachMessage: async ({ message }) => {
      const order = JSON.parse(message.value.toString())
      const key = order.orderId
      // Decide once; a redelivered order gets the same decision published again
      // (consumers downstream apply each order once).
      if (!store.seen(key)) {
        store.apply(key, s => {
          const short = order.items.find(i => (s.available[i.productId] || 0) < i.quantity)
          if (short) {
            s.decisions = { ...(s.decisions || {}), [key]: { ok: false, reason: `not enough stock of ${short.productId}` } }
          } else {
            for (const i of order.items) s.available[i.productId] -= i.quantity
            s.decisions = { ...(s.decisions || {}), [key]: { ok: true } }
          }
        })
      }
      const decision = store.state.decisions[key]
      if (decision.ok) {
        await producer.sendBatch({
          acks: -1,
          topicMessages: [
            { topic: TOPICS.inventoryReserved, messages: [{ key, value: JSON.stringify({ orderId: key, items: order.items }) }] },
            { topic: TOPICS.ordersCompleted, messages: [{ key, value: JSON.stringify(order) }] }
          ]
        })
        log('order-service', 'order completed', { orderId: key })
      } else {
        await producer.send({
          topic: TOPICS.ordersRejected,
          acks: -1,
          messages: [{ key, value: JSON.stringify({ ...order, reason: decision.reason }) }]
        })
        log('order-service', 'order rejected', { orderId: key, reason: decision.reason })
      }
    }
  })
  onShutdown(async () => {
    await consumer.disconnect()
    await producer.disconnect()
  })
}

main().catch(e => { console.error(e); process.exit(1) })
