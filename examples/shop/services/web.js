// The web server: takes orders over HTTP and publishes them; it does not process
// them. Order statuses come back as events (completed or rejected).
//   POST /orders      {userId, items: [{productId, quantity, price}]} → 202 {orderId, status}
//   GET  /orders/:id  → {orderId, status, reason?}
'use strict'
const crypto = require('node:crypto')
const { log, TOPICS } = require('../lib/kafka')
const { runService, start } = require('../lib/service')
const store = require('../lib/state').open('web', () => ({ orders: {} }))

start(() => runService({
  name: 'web-order-status',
  topics: [TOPICS.ordersCompleted, TOPICS.ordersRejected],
  producer: true,
  eachMessage: async ({ topic, message }) => {
    const event = JSON.parse(message.value.toString())
    const status = topic === TOPICS.ordersCompleted ? 'completed' : 'rejected'
    store.apply(`${status}:${event.orderId}`, s => {
      s.orders[event.orderId] = { ...(s.orders[event.orderId] || {}), status, reason: event.reason }
    })
  },
  port: Number(process.env.PORT || 8080),
  routes: producer => ({
    'POST /orders': async ({ body }) => {
      if (!body || !body.userId || !Array.isArray(body.items) || body.items.length === 0) {
        return [400, { error: 'userId and items are required' }]
      }
      const orderId = body.orderId || crypto.randomUUID()
      const totalPrice = body.items.reduce((sum, i) => sum + i.quantity * i.price, 0)
      const order = { orderId, userId: body.userId, items: body.items, totalPrice }
      await producer.send({
        topic: TOPICS.ordersCreated,
        acks: -1,
        messages: [{ key: orderId, value: JSON.stringify(order) }]
      })
      store.apply(`created:${orderId}`, s => { s.orders[orderId] = s.orders[orderId] || { status: 'pending' } })
      log('web', 'order accepted', { orderId })
      return [202, { orderId, status: store.state.orders[orderId].status }]
    },
    'GET /orders/:id': async ({ params }) => {
      const o = store.state.orders[params.id]
      return o ? [200, { orderId: params.id, ...o }] : [404, { error: 'unknown order' }]
    }
  })
}))
