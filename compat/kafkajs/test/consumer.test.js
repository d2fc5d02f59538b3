'use strict'
const test = require('node:test')
const assert = require('node:assert')
const { kafka, unique, waitFor, loggedErrors } = require('./helpers')

const client = kafka('compat-consumer')
const admin = client.admin()
const producer = client.producer()

test.before(async () => {
  await admin.connect()
  await producer.connect()
})
test.after(async () => {
  await producer.disconnect()
  await admin.disconnect()
  assert.deepStrictEqual(loggedErrors(), [], 'kafkajs logged errors')
})

async function topicWith (partitions, count) {
  const topic = unique('consume')
  await admin.createTopics({ topics: [{ topic, numPartitions: partitions }] })
  const messages = Array.from({ length: count }, (_, i) => ({ key: `k${i}`, value: `v${i}`, partition: i % partitions }))
  if (count) await producer.send({ topic, acks: -1, messages })
  return topic
}

test('eachMessage from the beginning', async () => {
  const topic = await topicWith(3, 30)
  const consumer = client.consumer({ maxWaitTimeInMs: 500, groupId: unique('each-message') })
  const seen = []
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  await consumer.run({ eachMessage: async ({ message }) => { seen.push(message.value.toString()) } })
  await waitFor(() => seen.length === 30, '30 messages')
  await consumer.disconnect()
  assert.deepStrictEqual(seen.sort(), Array.from({ length: 30 }, (_, i) => `v${i}`).sort())
})

test('eachBatch', async () => {
  const topic = await topicWith(1, 50)
  const consumer = client.consumer({ maxWaitTimeInMs: 500, groupId: unique('each-batch') })
  const offsets = []
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  await consumer.run({
    eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
      for (const m of batch.messages) {
        offsets.push(Number(m.offset))
        resolveOffset(m.offset)
      }
      await heartbeat()
    }
  })
  await waitFor(() => offsets.length === 50, '50 messages in batches')
  await consumer.disconnect()
  assert.deepStrictEqual(offsets, Array.from({ length: 50 }, (_, i) => i))
})

test('two consumers of one group split the partitions and rebalance on disconnect', async () => {
  const topic = await topicWith(4, 0)
  const groupId = unique('split')
  const assignments = new Map()
  const received = new Map()
  const start = async (name) => {
    const c = client.consumer({ maxWaitTimeInMs: 500, groupId, heartbeatInterval: 500 })
    c.on(c.events.GROUP_JOIN, e => assignments.set(name, (e.payload.memberAssignment[topic] || []).slice().sort()))
    await c.connect()
    await c.subscribe({ topic })
    received.set(name, [])
    await c.run({ eachMessage: async ({ partition }) => { received.get(name).push(partition) } })
    return c
  }
  const one = await start('one')
  const two = await start('two')
  await waitFor(() => assignments.get('one')?.length === 2 && assignments.get('two')?.length === 2, 'two partitions each')
  const union = [...assignments.get('one'), ...assignments.get('two')].sort()
  assert.deepStrictEqual(union, [0, 1, 2, 3])

  await two.disconnect()
  await waitFor(() => assignments.get('one')?.length === 4, 'all four partitions on the remaining consumer')
  await producer.send({ topic, acks: -1, messages: [0, 1, 2, 3].map(p => ({ value: 'x', partition: p })) })
  await waitFor(() => new Set(received.get('one')).size === 4, 'messages from every partition')
  await one.disconnect()
})

test('seek', async () => {
  const topic = await topicWith(1, 20)
  const consumer = client.consumer({ maxWaitTimeInMs: 500, groupId: unique('seek') })
  const offsets = []
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  await consumer.run({ eachMessage: async ({ message }) => { offsets.push(Number(message.offset)) } })
  consumer.seek({ topic, partition: 0, offset: '15' })
  await waitFor(() => offsets.includes(19), 'the end after seeking')
  await consumer.disconnect()
  assert.strictEqual(offsets[0], 15)
  assert.deepStrictEqual(offsets, [15, 16, 17, 18, 19])
})

test('pause and resume', async () => {
  const topic = await topicWith(1, 0)
  const consumer = client.consumer({ maxWaitTimeInMs: 500, groupId: unique('pause') })
  const seen = []
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  await consumer.run({ eachMessage: async ({ message }) => { seen.push(message.value.toString()) } })
  await producer.send({ topic, messages: [{ value: 'before' }] })
  await waitFor(() => seen.length === 1, 'the first message')
  consumer.pause([{ topic }])
  await producer.send({ topic, messages: [{ value: 'while-paused' }] })
  await new Promise(resolve => setTimeout(resolve, 1000))
  assert.deepStrictEqual(seen, ['before'], 'nothing while paused')
  consumer.resume([{ topic }])
  await waitFor(() => seen.length === 2, 'the message after resuming')
  await consumer.disconnect()
  assert.deepStrictEqual(seen, ['before', 'while-paused'])
})

test('commitOffsets with autoCommit off', async () => {
  const topic = await topicWith(1, 10)
  const groupId = unique('manual-commit')
  const consumer = client.consumer({ maxWaitTimeInMs: 500, groupId })
  let seen = 0
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  await consumer.run({ autoCommit: false, eachMessage: async () => { seen++ } })
  await waitFor(() => seen === 10, 'ten messages')
  await consumer.commitOffsets([{ topic, partition: 0, offset: '7' }])
  const fetched = await admin.fetchOffsets({ groupId, topics: [topic] })
  assert.strictEqual(fetched[0].partitions[0].offset, '7')
  await consumer.disconnect()
})
