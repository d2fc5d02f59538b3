//! End-to-end latency at a fixed rate. A consumer is assigned every partition at
//! its current end before a producer starts sending `rate` records a second; each
//! record's value starts with its send time (microseconds since the Unix epoch,
//! big-endian), and the consumer records receive time minus send time. Producer and
//! consumer share this process's clock.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use crate::client::{payload, unix_micros, BenchError, Env, Result, TopicArgs};
use crate::produce::{producer, send, Deliveries};
use crate::report::{Latency, Run};

#[derive(Args, Debug, Clone)]
pub struct LatencyArgs {
    #[command(flatten)]
    pub topic: TopicArgs,
    /// Records sent per second.
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,
    /// Seconds to send for.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Bytes per record value (at least the 8 of the timestamp).
    #[arg(long, default_value_t = 1024)]
    pub record_size: usize,
    /// acks: 0, 1 or all.
    #[arg(long, default_value = "1")]
    pub acks: String,
    /// linger.ms of the producer.
    #[arg(long, default_value_t = 0)]
    pub linger_ms: u64,
}

/// A consumer positioned at the current end of every partition of `topic`.
fn consumer_at_end(env: &Env, topic: &str) -> Result<BaseConsumer> {
    let consumer: BaseConsumer = env
        .config(&[
            ("group.id", format!("bench-latency-{}", unix_micros())),
            ("enable.auto.commit", "false".into()),
            ("fetch.wait.max.ms", "100".into()),
        ])
        .create()?;
    let mut tpl = TopicPartitionList::new();
    for p in env.partitions(topic)? {
        let (_, high) = consumer.fetch_watermarks(topic, p, Duration::from_secs(30))?;
        tpl.add_partition_offset(topic, p, Offset::Offset(high))?;
    }
    consumer.assign(&tpl)?;
    Ok(consumer)
}

/// Receive until `expected` (known once the producer is done) records have
/// arrived, or nothing has for `idle` after the producer finished. Warm-up records
/// (send time 0) only set `warm`.
fn receive(
    consumer: &BaseConsumer,
    warm: &AtomicBool,
    done: &AtomicBool,
    expected: &AtomicU64,
    idle: Duration,
) -> Result<Vec<u64>> {
    let mut samples = Vec::new();
    let mut last = Instant::now();
    loop {
        if done.load(Ordering::Acquire) && samples.len() as u64 >= expected.load(Ordering::Acquire) {
            return Ok(samples);
        }
        match consumer.poll(Duration::from_millis(50)) {
            Some(Ok(m)) => {
                let now = unix_micros();
                last = Instant::now();
                match m.payload().and_then(|p| p.get(..8)) {
                    Some(&[0, 0, 0, 0, 0, 0, 0, 0]) => warm.store(true, Ordering::Release),
                    Some(sent) => {
                        let sent = u64::from_be_bytes(sent.try_into().expect("8 bytes"));
                        samples.push(now.saturating_sub(sent));
                    }
                    None => {}
                }
            }
            // A broker going away (a failover measured on purpose) is news,
            // not the end: librdkafka reconnects and fetches from the new leader.
            Some(Err(KafkaError::MessageConsumption(
                RDKafkaErrorCode::BrokerTransportFailure | RDKafkaErrorCode::AllBrokersDown,
            ))) => {}
            Some(Err(e)) => return Err(e.into()),
            None if done.load(Ordering::Acquire) && last.elapsed() > idle => return Ok(samples),
            None => {}
        }
    }
}

pub fn run(env: &Env, args: &LatencyArgs) -> Result<Run> {
    if args.rate == 0 {
        return Err(BenchError::Failed("--rate must be at least 1".into()));
    }
    let topic = args.topic.prepare(env, "latency")?;
    let consumer = consumer_at_end(env, &topic)?;
    let deliveries = Arc::new(Deliveries::default());
    let producer = producer(env, &args.acks, "none", args.linger_ms, &deliveries)?;
    let (warm, done, expected) = (AtomicBool::new(false), AtomicBool::new(false), AtomicU64::new(u64::MAX));
    let mut value = payload(args.record_size.max(8));
    let total = args.rate * args.seconds;
    let (samples, sent, seconds) = std::thread::scope(|s| {
        let receiver = s.spawn(|| receive(&consumer, &warm, &done, &expected, Duration::from_secs(10)));
        let sending = (|| -> Result<(u64, f64)> {
            // Warm up until a record makes the round trip: connections, metadata
            // and the consumer's first fetch are not what is measured.
            value[..8].fill(0);
            let warming = Instant::now();
            let mut warmups = 0u64;
            while !warm.load(Ordering::Acquire) {
                if warming.elapsed() > Duration::from_secs(30) {
                    return Err(BenchError::Failed("no record came back within 30 s".into()));
                }
                send(&producer, BaseRecord::to(&topic).payload(&value[..]))?;
                warmups += 1;
                producer.poll(Duration::from_millis(10));
            }
            let start = Instant::now();
            let mut sent = 0u64;
            while sent < total {
                // Send whatever is due by now; between rounds, sleep briefly.
                let due = ((start.elapsed().as_secs_f64() * args.rate as f64) as u64).min(total);
                while sent < due {
                    value[..8].copy_from_slice(&unix_micros().to_be_bytes());
                    send(&producer, BaseRecord::to(&topic).payload(&value[..]))?;
                    sent += 1;
                }
                producer.poll(Duration::ZERO);
                std::thread::sleep(Duration::from_micros(100));
            }
            let seconds = start.elapsed().as_secs_f64();
            producer.flush(Duration::from_secs(60))?;
            // Every record delivered but the warm-up ones is a sample to wait for.
            let delivered = deliveries.delivered.load(Ordering::Acquire);
            expected.store(delivered.saturating_sub(warmups), Ordering::Release);
            Ok((sent, seconds))
        })();
        done.store(true, Ordering::Release);
        let samples = receiver
            .join()
            .unwrap_or_else(|_| Err(BenchError::Failed("consumer thread panicked".into())));
        sending.and_then(|(sent, seconds)| Ok((samples?, sent, seconds)))
    })?;
    let received = samples.len() as u64;
    let mut run = Run::new(
        "latency".into(),
        topic,
        vec![
            format!("rate={}", args.rate),
            format!("seconds={}", args.seconds),
            format!("record_size={}", value.len()),
            format!("acks={}", args.acks),
            format!("linger_ms={}", args.linger_ms),
        ],
        received,
        received * value.len() as u64,
        seconds,
    );
    run.errors = sent.saturating_sub(received);
    run.latency_ms = Latency::from_micros(samples);
    Ok(run)
}
