// The inventory service: consumes items reserved by the order service and
// decrements stock, exactly once per order even across crashes.
//   GET /stock → {productId: units}
'use strict'
const { kafka, ensureTopics, onShutdown, log, TOPICS } = require('../lib/kafka')
const { INITIAL_STOCK } = require('../lib/catalog')
const { serve } = require('../lib/http')
const store = require('../lib/state').open('inventory-service', () => ({ stock: { ...INITIAL_STOCK } }))

async function main () {
  const client = kafka('inventory-service')
  await ensureTopics(client)
  const consumer = client.consumer({ groupId: 'inventory-service', sessionTimeout: 10000, heartbeatInterval: 1000 })
  await consumer.connect()
  await consumer.subscribe({ topic: TOPICS.inventoryReserved, fromBeginning: true })
  await consumer.run({
    eachMessage: async ({ message }) => {
      const { orderId, items } = JSON.parse(message.value.toString())
      const applied = store.apply(orderId, s => {
        for (const i of items) s.stock[i.productId] -= i.quantity
      })
      if (applied) log('inventory-service', 'stock decremented', { orderId })
    }
  })
  const server = await serve(Number(process.env.PORT || 8081), {
    'GET /stock': async () => [200, store.state.stock]
  })
  onShutdown(async () => {
    server.close()
    await consumer.disconnect()
  })
}

main().catch(e => { console.error(e); process.exit(1) })
