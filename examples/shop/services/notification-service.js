// The notification service: tells the user how their order went. A log line stands
// in for the e-mail or SMS; the sent notifications are also listed for checking.
//   GET /notifications → [{orderId, userId, kind, text}]
'use strict'
const { kafka, ensureTopics, onShutdown, log, TOPICS } = require('../lib/kafka')
const { serve } = require('../lib/http')
const store = require('../lib/state').open('notification-service', () => ({ sent: [] }))

async function main () {
  const client = kafka('notification-service')
  await ensureTopics(client)
  const consumer = client.consumer({ groupId: 'notification-service', sessionTimeout: 10000, heartbeatInterval: 1000 })
  await consumer.connect()
  await consumer.subscribe({ topics: [TOPICS.ordersCompleted, TOPICS.ordersRejected], fromBeginning: true })
  await consumer.run({
    eachMessage: async ({ topic, message }) => {
      const order = JSON.parse(message.value.toString())
      const kind = topic === TOPICS.ordersCompleted ? 'completed' : 'rejected'
      const text = kind === 'completed'
        ? `Your order ${order.orderId} is on its way (total ${order.totalPrice}).`
        : `Sorry, we could not fulfil order ${order.orderId}: ${order.reason}.`
      const sent = store.apply(`${kind}:${order.orderId}`, s => {
        s.sent.push({ orderId: order.orderId, userId: order.userId, kind, text })
      })
      if (sent) log('notification-service', 'notified user', { userId: order.userId, orderId: order.orderId, text })
    }
  })
  const server = await serve(Number(process.env.PORT || 8083), {
    'GET /notifications': async () => [200, store.state.sent]
  })
  onShutdown(async () => {
    server.close()
    await consumer.disconnect()
  })
}

main().catch(e => { console.error(e); process.exit(1) })
