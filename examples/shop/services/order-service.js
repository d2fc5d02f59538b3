// The order service: subscribed to new orders. It checks stock, records the order
// and decides: an order it can satisfy is published as items reserved (for the
// inventory service) and as completed (for notifications); one it cannot is
// published as rejected.
//
// Its view of the stock is its own (initial stock minus what it has reserved), kept
// durably with the orders it has decided, so a redelivered order is not decided twice.
'use strict'
const { log, TOPICS } = require('../lib/kafka')
const { INITIAL_STOCK } = require('../lib/catalog')
const { runService, start } = require('../lib/service')
const store = require('../lib/state').open('order-service', () => ({ available: { ...INITIAL_STOCK } }))

start(() => runService({
  name: 'order-service',
  topics: [TOPICS.ordersCreated],
  producer: true,
  eachMessage: async ({ message }, producer) => {
    const order = JSON.parse(message.value.toString())
    const key = order.orderId
    // Decide once; a redelivered order gets the same decision published again
    // (consumers downstream apply each order once).
    store.apply(key, s => {
      const short = order.items.find(i => (s.available[i.productId] || 0) < i.quantity)
      if (!short) for (const i of order.items) s.available[i.productId] -= i.quantity
      s.decisions = {
        ...(s.decisions || {}),
        [key]: short ? { ok: false, reason: `not enough stock of ${short.productId}` } : { ok: true }
      }
    })
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
}))
