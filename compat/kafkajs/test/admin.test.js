'use strict'
const test = require('node:test')
const assert = require('node:assert')
const { kafka, unique, waitFor, loggedErrors, expectingErrors } = require('./helpers')

const client = kafka('compat-admin')
const admin = client.admin()

test.before(() => admin.connect())
test.after(async () => {
  await admin.disconnect()
  assert.deepStrictEqual(loggedErrors(), [], 'kafkajs logged errors')
})

test('createTopics, listTopics, fetchTopicMetadata', async () => {
  const topic = unique('admin-topic')
  assert.strictEqual(await admin.createTopics({ topics: [{ topic, numPartitions: 3 }] }), true)
  const again = await expectingErrors(() => admin.createTopics({ topics: [{ topic, numPartitions: 3 }] }))
  assert.strictEqual(again, false, 'already exists')
  assert.ok((await admin.listTopics()).includes(topic))
  const { topics } = await admin.fetchTopicMetadata({ topics: [topic] })
  assert.strictEqual(topics[0].name, topic)
  assert.deepStrictEqual(topics[0].partitions.map(p => p.partitionId).sort(), [0, 1, 2])
  assert.ok(topics[0].partitions.every(p => p.leader === 0))
  await expectingErrors(() =>
    assert.rejects(admin.createTopics({ topics: [{ topic: 'bad name!', numPartitions: 1 }] })))
})

test('fetchTopicOffsets after producing', async () => {
  const topic = unique('admin-offsets')
  await admin.createTopics({ topics: [{ topic, numPartitions: 2 }] })
  const producer = client.producer()
  await producer.connect()
  await producer.send({ topic, messages: [{ value: 'a', partition: 0 }, { value: 'b', partition: 0 }, { value: 'c', partition: 1 }] })
  await producer.disconnect()
  const offsets = await admin.fetchTopicOffsets(topic)
  const byPartition = Object.fromEntries(offsets.map(o => [o.partition, o]))
  assert.strictEqual(byPartition[0].high, '2')
  assert.strictEqual(byPartition[0].low, '0')
  assert.strictEqual(byPartition[1].high, '1')
})

test('fetchOffsets, resetOffsets, describeGroups, listGroups', async () => {
  const topic = unique('admin-groups')
  const groupId = unique('admin-group')
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] })
  const producer = client.producer()
  await producer.connect()
  await producer.send({ topic, messages: Array.from({ length: 5 }, (_, i) => ({ value: `m${i}` })) })
  await producer.disconnect()

  const consumer = client.consumer({ maxWaitTimeInMs: 500, groupId })
  let seen = 0
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  await consumer.run({ eachMessage: async () => { seen++ } })
  await waitFor(() => seen === 5, 'five messages')
  const described = await admin.describeGroups([groupId])
  assert.strictEqual(described.groups[0].state, 'Stable')
  assert.strictEqual(described.groups[0].protocolType, 'consumer')
  assert.strictEqual(described.groups[0].members.length, 1)
  await consumer.disconnect() // commits

  const fetched = await admin.fetchOffsets({ groupId, topics: [topic] })
  assert.strictEqual(fetched[0].partitions[0].offset, '5')
  const { groups } = await admin.listGroups()
  assert.ok(groups.some(g => g.groupId === groupId && g.protocolType === 'consumer'))

  // kafkajs commits the logical offset -2 (earliest), which a consumer resolves
  // with its own fromBeginning setting; without the reset it would resume at 5.
  await admin.resetOffsets({ groupId, topic, earliest: true })
  const reset = await admin.fetchOffsets({ groupId, topics: [topic] })
  assert.strictEqual(reset[0].partitions[0].offset, '-2')
  const again = client.consumer({ maxWaitTimeInMs: 500, groupId })
  let reread = 0
  await again.connect()
  await again.subscribe({ topic, fromBeginning: true })
  await again.run({ eachMessage: async () => { reread++ } })
  await waitFor(() => reread === 5, 'the five messages again after the reset')
  await again.disconnect()
})

test('deleteTopics', async () => {
  const topic = unique('admin-delete')
  await admin.createTopics({ topics: [{ topic }] })
  await admin.deleteTopics({ topics: [topic] })
  assert.ok(!(await admin.listTopics()).includes(topic))
})
