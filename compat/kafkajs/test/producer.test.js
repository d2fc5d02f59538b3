'use strict'
const test = require('node:test')
const assert = require('node:assert')
const { CompressionTypes } = require('kafkajs')
const { kafka, unique, loggedErrors, consumeAll } = require('./helpers')

const client = kafka('compat-producer')
const admin = client.admin()

test.before(() => admin.connect())
test.after(async () => {
  await admin.disconnect()
  assert.deepStrictEqual(loggedErrors(), [], 'kafkajs logged errors')
})

async function roundTrip ({ acks, compression, idempotent = false }) {
  const topic = unique('produce')
  await admin.createTopics({ topics: [{ topic, numPartitions: 2 }] })
  const producer = client.producer(idempotent ? { idempotent: true, maxInFlightRequests: 1 } : {})
  await producer.connect()
  const messages = Array.from({ length: 100 }, (_, i) => ({
    key: `order-${i}`,
    value: JSON.stringify({ orderId: String(i), totalPrice: 400.0 }),
    headers: { source: 'web', attempt: String(i) }
  }))
  const results = await producer.send({ topic, acks, compression, messages })
  assert.ok(results.every(r => r.errorCode === 0))
  await producer.disconnect()
  const seen = await consumeAll(client, topic, 100)
  assert.strictEqual(seen.length, 100)
  for (const m of seen) {
    const i = Number(m.key.toString().slice('order-'.length))
    assert.strictEqual(JSON.parse(m.value.toString()).orderId, String(i))
    assert.strictEqual(m.headers.source.toString(), 'web')
    assert.strictEqual(m.headers.attempt.toString(), String(i))
  }
  // Per partition, offsets are dense and in send order.
  for (const p of [0, 1]) {
    const offsets = seen.filter(m => m.partition === p).map(m => Number(m.offset))
    assert.deepStrictEqual(offsets, offsets.map((_, i) => i))
  }
}

test('send with acks=-1, keys and headers', () => roundTrip({ acks: -1 }))
test('send with acks=1', () => roundTrip({ acks: 1 }))
test('send with gzip', () => roundTrip({ acks: -1, compression: CompressionTypes.GZIP }))
test('the idempotent producer', () => roundTrip({ acks: -1, idempotent: true }))

test('sendBatch to several topics', async () => {
  const a = unique('batch-a')
  const b = unique('batch-b')
  await admin.createTopics({ topics: [{ topic: a }, { topic: b }] })
  const producer = client.producer()
  await producer.connect()
  await producer.sendBatch({
    acks: -1,
    topicMessages: [
      { topic: a, messages: [{ key: 'k1', value: 'one' }, { key: 'k2', value: 'two' }] },
      { topic: b, messages: [{ key: 'k3', value: 'three' }] }
    ]
  })
  await producer.disconnect()
  assert.deepStrictEqual((await consumeAll(client, a, 2)).map(m => m.value.toString()), ['one', 'two'])
  assert.deepStrictEqual((await consumeAll(client, b, 1)).map(m => m.value.toString()), ['three'])
})
