// Shared setup: a kafkajs client for the broker under test that records every
// error kafkajs logs, so each suite can assert that there were none.
'use strict'
const { Kafka, logLevel } = require('kafkajs')

const BROKER = process.env.STROM_BROKER || 'localhost:9092'
const errors = []

const logCreator = () => ({ namespace, level, log }) => {
  if (level === logLevel.ERROR) {
    errors.push(`[${namespace}] ${log.message} ${log.error || ''}`.trim())
  }
}

function kafka (clientId) {
  return new Kafka({
    clientId,
    brokers: [BROKER],
    logLevel: logLevel.ERROR,
    logCreator,
    retry: { retries: 3 }
  })
}

function unique (name) {
  return `${name}-${Date.now()}-${Math.random().toString(36).slice(2, 7)}`
}

async function waitFor (cond, what, ms = 30000) {
  const deadline = Date.now() + ms
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

/**
 * Run `fn`, which provokes errors on purpose (creating a topic twice, an illegal
 * name): what kafkajs logs meanwhile is expected, not a finding.
 */
async function expectingErrors (fn) {
  const before = errors.length
  try {
    return await fn()
  } finally {
    errors.splice(before)
  }
}

// kafkajs logs every error code in a response at error level, including the one
// Kafka itself uses to tell group members to rejoin (REBALANCE_IN_PROGRESS on a
// heartbeat): that is the protocol working, against Apache Kafka as here.
const NORMAL_PROTOCOL_FLOW = [/Heartbeat\(key: 12, version: \d+\) The group is rebalancing, so a rejoin is needed/]

/** Everything kafkajs logged at error level so far, but the normal flow above. */
function loggedErrors () {
  return errors.filter(e => !NORMAL_PROTOCOL_FLOW.some(re => re.test(e)))
}

/** Consume `count` messages of `topic` from the beginning with a throwaway group. */
async function consumeAll (client, topic, count) {
  const consumer = client.consumer({ maxWaitTimeInMs: 500, groupId: unique('reader') })
  const seen = []
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  await consumer.run({ eachMessage: async ({ partition, message }) => { seen.push({ partition, ...message }) } })
  await waitFor(() => seen.length >= count, `${count} messages from ${topic}`)
  await consumer.disconnect()
  return seen
}

module.exports = { kafka, unique, waitFor, loggedErrors, expectingErrors, consumeAll, BROKER }
