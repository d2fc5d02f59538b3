//! Consumer throughput: a new consumer group subscribes to the topic and reads it
//! from the earliest offset. The clock starts at the first record received (the
//! group join before it is reported apart) and stops at the last one expected.

use std::time::{Duration, Instant};

use clap::Args;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::client::{unix_micros, BenchError, Env, Result};
use crate::cpu;
use crate::report::Run;

#[derive(Args, Debug, Clone)]
pub struct ConsumeArgs {
    /// Topic to read.
    #[arg(long)]
    pub topic: String,
    /// Records to read; by default all the topic holds when the run starts.
    #[arg(long)]
    pub records: Option<u64>,
    /// Consumer group id; by default a new one.
    #[arg(long)]
    pub group: Option<String>,
    /// Give up after this many seconds without a record.
    #[arg(long, default_value_t = 10)]
    pub idle_timeout_s: u64,
    /// isolation.level: read_committed (librdkafka's default: reads up to the
    /// last stable offset, skipping aborted transactions) or read_uncommitted.
    #[arg(long, default_value = "read_committed")]
    pub isolation: String,
}

/// Records between the low and high watermarks of every partition.
fn records_in(env: &Env, consumer: &BaseConsumer, topic: &str) -> Result<u64> {
    let mut total = 0;
    for p in env.partitions(topic)? {
        let (low, high) = consumer.fetch_watermarks(topic, p, Duration::from_secs(30))?;
        total += (high - low).max(0) as u64;
    }
    Ok(total)
}

pub fn run(env: &Env, args: &ConsumeArgs) -> Result<Run> {
    let group = args
        .group
        .clone()
        .unwrap_or_else(|| format!("bench-consume-{}", unix_micros()));
    let consumer: BaseConsumer = env
        .config(&[
            ("group.id", group.clone()),
            ("auto.offset.reset", "earliest".into()),
            ("enable.auto.commit", "false".into()),
            ("enable.partition.eof", "false".into()),
            ("isolation.level", args.isolation.clone()),
        ])
        .create()?;
    let expected = match args.records {
        Some(n) => n,
        None => records_in(env, &consumer, &args.topic)?,
    };
    if expected == 0 {
        return Err(BenchError::Failed(format!("topic {} holds no records", args.topic)));
    }
    // The broker's CPU is counted from the subscription (the group join is a small
    // part of it): the fetches that bring the first records come before the clock.
    let cpu = cpu::Meter::start(env.broker_pid);
    let subscribed = Instant::now();
    consumer.subscribe(&[&args.topic])?;
    let (mut received, mut bytes) = (0u64, 0u64);
    let mut first: Option<Instant> = None;
    let mut last = Instant::now();
    while received < expected {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let now = Instant::now();
                first.get_or_insert(now);
                last = now;
                received += 1;
                bytes += m.payload_len() as u64;
            }
            Some(Err(e)) => return Err(e.into()),
            None => {
                let idle_since = if first.is_some() { last } else { subscribed };
                if idle_since.elapsed()
                    > Duration::from_secs(args.idle_timeout_s.max(1) + 20 * u64::from(first.is_none()))
                {
                    break;
                }
            }
        }
    }
    let broker_cpu = cpu.elapsed();
    let Some(first) = first else {
        return Err(BenchError::Failed(format!("no record arrived from {}", args.topic)));
    };
    let mut run = Run::new(
        "consume".into(),
        args.topic.clone(),
        vec![
            format!("group={group}"),
            format!("isolation={}", args.isolation),
            format!("join_ms={:.0}", (first - subscribed).as_secs_f64() * 1000.0),
        ],
        received,
        bytes,
        (last - first).as_secs_f64(),
    )
    .with_broker_cpu(broker_cpu);
    run.errors = expected.saturating_sub(received);
    Ok(run)
}
