// Analytics: consumes every order event for sales figures.
//   GET /stats → {ordersCreated, ordersCompleted, ordersRejected, revenue,
//                 unitsSold: {productId: units}, popular: [productId…]}
'use strict'
const { TOPICS } = require('../lib/kafka')
const { runService, start } = require('../lib/service')
const store = require('../lib/state').open('analytics-service', () => ({
  ordersCreated: 0, ordersCompleted: 0, ordersRejected: 0, revenue: 0, unitsSold: {}
}))

start(() => runService({
  name: 'analytics-service',
  topics: [TOPICS.ordersCreated, TOPICS.ordersCompleted, TOPICS.ordersRejected],
  eachMessage: async ({ topic, message }) => {
    const order = JSON.parse(message.value.toString())
    store.apply(`${topic}:${order.orderId}`, s => {
      if (topic === TOPICS.ordersCreated) s.ordersCreated++
      if (topic === TOPICS.ordersRejected) s.ordersRejected++
      if (topic === TOPICS.ordersCompleted) {
        s.ordersCompleted++
        s.revenue += order.totalPrice
        for (const i of order.items) s.unitsSold[i.productId] = (s.unitsSold[i.productId] || 0) + i.quantity
      }
    })
  },
  port: Number(process.env.PORT || 8082),
  routes: () => ({
    'GET /stats': async () => {
      const { applied, ...stats } = store.state
      const popular = Object.entries(stats.unitsSold).sort((a, b) => b[1] - a[1]).map(([p]) => p)
      return [200, { ...stats, popular }]
    }
  })
}))
