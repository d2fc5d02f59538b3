'use strict'
// kafkajs against the secured broker (scripts/lib/secure-strom.sh): SASL PLAIN
// over TLS, SCRAM-SHA-256, ACLs created and read with kafkajs' admin client.
const test = require('node:test')
const assert = require('node:assert')
const fs = require('node:fs')
const { Kafka, logLevel, AclResourceTypes, AclOperationTypes, AclPermissionTypes, ResourcePatternTypes } = require('kafkajs')
const { unique, waitFor } = require('./helpers')

const BROKER = process.env.STROM_SECURE_BROKER
const PLAIN_BROKER = process.env.STROM_SECURE_SASL_PLAINTEXT
const ssl = BROKER && { ca: [fs.readFileSync(process.env.STROM_SECURE_CA, 'utf8')] }

function client (sasl, { tls = true } = {}) {
  return new Kafka({
    clientId: 'compat-security',
    brokers: [tls ? BROKER : PLAIN_BROKER],
    ssl: tls ? ssl : false,
    sasl,
    logLevel: logLevel.NOTHING,
    retry: { retries: 2 }
  })
}

const admin = client({ mechanism: 'plain', username: 'admin', password: 'admin-secret' }).admin()
const topic = unique('secure-orders')

test.before(async () => {
  if (!BROKER) return
  await admin.connect()
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] })
  const allow = (principal, resourceType, resourceName, operation) => ({
    resourceType,
    resourceName,
    resourcePatternType: ResourcePatternTypes.LITERAL,
    principal,
    host: '*',
    operation,
    permissionType: AclPermissionTypes.ALLOW
  })
  await admin.createAcls({
    acl: [
      allow('User:alice', AclResourceTypes.TOPIC, topic, AclOperationTypes.WRITE),
      allow('User:carol', AclResourceTypes.TOPIC, topic, AclOperationTypes.READ),
      allow('User:carol', AclResourceTypes.GROUP, 'carol-group', AclOperationTypes.READ)
    ]
  })
})
test.after(() => BROKER && admin.disconnect())

test('ACLs read back with describeAcls', { skip: !BROKER }, async () => {
  const { resources } = await admin.describeAcls({
    resourceType: AclResourceTypes.TOPIC,
    resourceName: topic,
    resourcePatternType: ResourcePatternTypes.LITERAL,
    operation: AclOperationTypes.ANY,
    permissionType: AclPermissionTypes.ANY
  })
  const principals = resources.flatMap(r => r.acls.map(a => a.principal)).sort()
  assert.deepStrictEqual(principals, ['User:alice', 'User:carol'])
})

test('PLAIN over TLS writes, SCRAM-SHA-256 reads in a group', { skip: !BROKER }, async () => {
  const producer = client({ mechanism: 'plain', username: 'alice', password: 'alice-secret' }).producer()
  await producer.connect()
  await producer.send({ topic, messages: [1, 2, 3].map(i => ({ key: `k${i}`, value: JSON.stringify({ orderId: i }) })) })
  await producer.disconnect()

  const consumer = client({ mechanism: 'scram-sha-256', username: 'carol', password: 'carol-secret' }, { tls: false })
    .consumer({ groupId: 'carol-group', maxWaitTimeInMs: 500 })
  const seen = []
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  await consumer.run({ eachMessage: async ({ message }) => { seen.push(JSON.parse(message.value.toString()).orderId) } })
  await waitFor(() => seen.length >= 3, 'three orders')
  await consumer.disconnect()
  assert.deepStrictEqual(seen, [1, 2, 3])
})

test('a wrong password is a SASL authentication error', { skip: !BROKER }, async () => {
  const producer = client({ mechanism: 'scram-sha-512', username: 'bob', password: 'nope' }).producer()
  await assert.rejects(producer.connect(), err => err.name === 'KafkaJSSASLAuthenticationError' || /SASL|authentic/i.test(String(err)))
})

test('without an ACL the write is TOPIC_AUTHORIZATION_FAILED', { skip: !BROKER }, async () => {
  const producer = client({ mechanism: 'scram-sha-512', username: 'bob', password: 'bob-secret' }).producer()
  await producer.connect()
  await assert.rejects(
    producer.send({ topic, messages: [{ value: 'x' }] }),
    err => /authoriz/i.test(String(err)) || err.type === 'TOPIC_AUTHORIZATION_FAILED'
  )
  await producer.disconnect()
})
