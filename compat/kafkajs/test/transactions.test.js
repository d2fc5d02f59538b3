// kafkajs transactions: producer.transaction() with commit and abort as its
// read_committed consumer sees them, sendOffsets (consume-transform-produce, the
// group's offset moving only with a committed transaction), and zombie fencing.
'use strict'
const test = require('node:test')
const assert = require('node:assert')
const { kafka, unique, waitFor, loggedErrors, expectingErrors, consumeAll } = require('./helpers')

const client = kafka('compat-transactions')
const admin = client.admin()

test.before(() => admin.connect())
test.after(async () => {
  await admin.disconnect()
  assert.deepStrictEqual(loggedErrors(), [], 'kafkajs logged errors')
})

function transactional (transactionalId) {
  return client.producer({ transactionalId, idempotent: true, maxInFlightRequests: 1 })
}

test('committed transactions are read, aborted ones are not', async () => {
  const topic = unique('txn-topic')
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] })
  const producer = transactional(unique('txn-id'))
  await producer.connect()
  for (const [round, commit] of [[0, true], [1, false], [2, true]]) {
    const txn = await producer.transaction()
    await txn.send({ topic, messages: Array.from({ length: 3 }, (_, i) => ({ value: `r${round}-${i}` })) })
    if (commit) await txn.commit()
    else await txn.abort()
  }
  await producer.disconnect()
  // A marker follows each transaction: 3 + 3 + 3 records, 3 markers.
  const [{ high }] = await admin.fetchTopicOffsets(topic)
  assert.strictEqual(high, '12')
  const seen = await consumeAll(client, topic, 6)
  assert.deepStrictEqual(seen.map(m => m.value.toString()), ['r0-0', 'r0-1', 'r0-2', 'r2-0', 'r2-1', 'r2-2'])
})

test('sendOffsets commits the consumer group offset with the transaction', async () => {
  const input = unique('txn-in')
  const output = unique('txn-out')
  const groupId = unique('txn-group')
  await admin.createTopics({ topics: [{ topic: input, numPartitions: 1 }, { topic: output, numPartitions: 1 }] })
  const plain = client.producer()
  await plain.connect()
  await plain.send({ topic: input, messages: Array.from({ length: 10 }, (_, i) => ({ value: `in-${i}` })) })
  await plain.disconnect()

  const producer = transactional(unique('processor'))
  await producer.connect()
  const offsetsOf = async () => (await admin.fetchOffsets({ groupId, topics: [input] }))[0].partitions[0].offset
  for (const [until, commit] of [[6, true], [10, false]]) {
    const txn = await producer.transaction()
    await txn.send({ topic: output, messages: [{ value: `up-to-${until}` }] })
    await txn.sendOffsets({ consumerGroupId: groupId, topics: [{ topic: input, partitions: [{ partition: 0, offset: String(until) }] }] })
    if (commit) await txn.commit()
    else await txn.abort()
  }
  await producer.disconnect()
  await waitFor(async () => (await offsetsOf()) === '6', 'the committed transaction\'s offset')
  const out = await consumeAll(client, output, 1)
  assert.deepStrictEqual(out.map(m => m.value.toString()), ['up-to-6'])

  // A consumer of the group starts where the committed transaction left it.
  const consumer = client.consumer({ groupId, maxWaitTimeInMs: 500 })
  const seen = []
  await consumer.connect()
  await consumer.subscribe({ topic: input, fromBeginning: true })
  await consumer.run({ eachMessage: async ({ message }) => { seen.push(message.value.toString()) } })
  await waitFor(() => seen.length >= 4, 'the four records after offset 6')
  await consumer.disconnect()
  assert.deepStrictEqual(seen, ['in-6', 'in-7', 'in-8', 'in-9'])
})

test('a second producer with the same transactional id fences the first', async () => {
  const topic = unique('txn-fenced')
  const id = unique('zombie')
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] })
  const zombie = transactional(id)
  await zombie.connect()
  const old = await zombie.transaction()
  await old.send({ topic, messages: [{ value: 'old' }] })

  const fresh = transactional(id)
  await fresh.connect()
  // kafkajs sends the transactional InitProducerId on transaction(), not on
  // connect(): this aborts the zombie's open transaction and bumps the epoch.
  // Until the abort is complete Kafka answers CONCURRENT_TRANSACTIONS, which
  // kafkajs logs, then retries.
  const txn = await expectingErrors(() => fresh.transaction())
  await expectingErrors(() => assert.rejects(old.commit(), /fenced|epoch/i))
  await txn.send({ topic, messages: [{ value: 'new' }] })
  await txn.commit()
  await fresh.disconnect()
  await expectingErrors(() => zombie.disconnect())
  const seen = await consumeAll(client, topic, 1)
  assert.deepStrictEqual(seen.map(m => m.value.toString()), ['new'])
})
