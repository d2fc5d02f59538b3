'use strict'
// The kafkajs writer of the cluster tests' checker (tests/common/checker.rs):
// an acks=all kafkajs producer sends ROUNDS rounds of one record per
// partition to TOPIC on a cluster with faults going on, and prints every
// acknowledged record as `partition offset value`. It exits non-zero if a send
// is never acknowledged.
//
//   node checker-producer.js BROKERS TOPIC PARTITIONS ROUNDS
const { Kafka, logLevel } = require('kafkajs')

const [brokers, topic, partitions, rounds] = process.argv.slice(2)

async function main () {
  const kafka = new Kafka({
    clientId: 'strom-checker-kafkajs',
    brokers: brokers.split(','),
    logLevel: logLevel.NOTHING,
    // Faults: a leader killed or frozen; its requests time out and go to the
    // new leader once the cluster names it.
    requestTimeout: 5000,
    retry: { retries: 30, initialRetryTime: 200, maxRetryTime: 3000 }
  })
  // Not idempotent: see OtherWriters in tests/common/checker.rs (kafkajs#1303).
  const producer = kafka.producer({ maxInFlightRequests: 1 })
  await producer.connect()
  for (let round = 0; round < Number(rounds); round++) {
    const messages = []
    for (let p = 0; p < Number(partitions); p++) {
      messages.push({ partition: p, value: `${topic}-${round}-${p}` })
    }
    const acked = await producer.send({ topic, acks: -1, messages })
    if (acked.length !== messages.length || new Set(acked.map(m => m.partition)).size !== acked.length) {
      // kafkajs resolved the send without every partition's result, or with
      // one twice (seen when a broker goes mid-request, kafkajs#1303): records
      // never acknowledged are not counted.
      console.error(`round ${round}: acknowledged partitions ${acked.map(m => `${m.partition}@${m.baseOffset}`)}`)
    }
    for (const m of acked) {
      // One record per partition a round: its offset is the batch's base.
      const value = `${topic}-${round}-${m.partition}`
      process.stdout.write(`${m.partition} ${m.baseOffset} ${value}\n`)
    }
  }
  await producer.disconnect()
}

main().catch(e => {
  console.error(e)
  process.exit(1)
})
