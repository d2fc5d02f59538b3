// The notification service: tells the user how their order went. A log line stands
// in for the e-mail or SMS; the sent notifications are also listed for checking.
//   GET /notifications → [{orderId, userId, kind, text}]
'use strict'
const { log, TOPICS } = require('../lib/kafka')
const { runService, start } = require('../lib/service')
const store = require('../lib/state').open('notification-service', () => ({ sent: [] }))

start(() => runService({
  name: 'notification-service',
  topics: [TOPICS.ordersCompleted, TOPICS.ordersRejected],
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
  },
  port: Number(process.env.PORT || 8083),
  routes: () => ({ 'GET /notifications': async () => [200, store.state.sent] })
}))
