// Analytics: consumes every order event for sales figures.
//   GET /stats → {ordersCreated, ordersCompleted, ordersRejected, revenue,
//                 unitsSold: {productId: units}, popular: [productId…]}
'use strict'
const { kafka, ensureTopics, onShutdown, TOPICS } = require('../lib/kafka')
const { serve } = require('../lib/http')
const store = require('../lib/state').open('analytics-service', () => ({
  ordersCreated: 0, ordersCompleted: 0, ordersRejected: 0, revenue: 0, unitsSold: {}
}))

async function main () {
  const client = kafka('analytics-service')
  await ensureTopics(client)
  const consumer = client.consumer({ groupId: 'analytics-service', sessionTimeout: 10000, heartbeatInterval: 1000 })
  await consumer.connect()
  await consumer.subscribe({ topics: [TOPICS.ordersCreated, TOPICS.ordersCompleted, TOPICS.ordersRejected], fromBeginning: true })
  await consumer.run({
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
    }
  })
  const server = await serve(Number(process.env.PORT || 8082), {
    'GET /stats': async () => {
      const { applied, ...stats } = store.state
      const popular = Object.entries(stats.unitsSold).sort((a, b) => b[1] - a[1]).map(([p]) => p)
      return [200, { ...stats, popular }]
    }
  })
  onShutdown(async () => {
    server.close()
    await consumer.disconnect()
  })
}

main().catch(e => { console.error(e); process.exit(1) })
