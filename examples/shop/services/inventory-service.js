// The inventory service: consumes items reserved by the order service and
// decrements stock, exactly once per order even across crashes.
//   GET /stock → {productId: units}
'use strict'
const { log, TOPICS } = require('../lib/kafka')
const { INITIAL_STOCK } = require('../lib/catalog')
const { runService, start } = require('../lib/service')
const store = require('../lib/state').open('inventory-service', () => ({ stock: { ...INITIAL_STOCK } }))

start(() => runService({
  name: 'inventory-service',
  topics: [TOPICS.inventoryReserved],
  eachMessage: async ({ message }) => {
    const { orderId, items } = JSON.parse(message.value.toString())
    const applied = store.apply(orderId, s => {
      for (const i of items) s.stock[i.productId] -= i.quantity
    })
    if (applied) log('inventory-service', 'stock decremented', { orderId })
  },
  port: Number(process.env.PORT || 8081),
  routes: () => ({ 'GET /stock': async () => [200, store.state.stock] })
}))
