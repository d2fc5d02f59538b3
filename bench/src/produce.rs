//! Producer throughput: `producers` threads, each with its own librdkafka producer,
//! send `records` values of `record_size` bytes between them with null keys (so
//! librdkafka spreads them over the partitions), as fast as the broker acknowledges.
//! The clock runs from the first send to the last delivery report.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;

use crate::client::{payload, BenchError, Env, Result, TopicArgs};
use crate::cpu;
use crate::report::Run;

#[derive(Args, Debug, Clone)]
pub struct ProduceArgs {
    #[command(flatten)]
    pub topic: TopicArgs,
    /// Records to send, over all producers.
    #[arg(long, default_value_t = 1_000_000)]
    pub records: u64,
    /// Bytes per record value.
    #[arg(long, default_value_t = 1024)]
    pub record_size: usize,
    /// acks: 0, 1 or all.
    #[arg(long, default_value = "1")]
    pub acks: String,
    /// compression.type: none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none")]
    pub compression: String,
    /// linger.ms.
    #[arg(long, default_value_t = 5)]
    pub linger_ms: u64,
    /// Producer clients, each on its own thread and connection.
    #[arg(long, default_value_t = 1)]
    pub producers: u64,
    /// Records per transaction: each producer gets a transactional.id and commits
    /// every this many records (acks=all, idempotence, as transactions require);
    /// 0 (the default) for a plain producer.
    #[arg(long, default_value_t = 0)]
    pub transaction_size: u64,
}

/// Delivery reports, counted.
#[derive(Default)]
pub struct Deliveries {
    pub delivered: AtomicU64,
    pub failed: AtomicU64,
    pub first_error: Mutex<Option<String>>,
}

pub struct CountingContext(pub Arc<Deliveries>);

impl ClientContext for CountingContext {}

impl ProducerContext for CountingContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.0.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => {
                self.0.failed.fetch_add(1, Ordering::Relaxed);
                let mut first = self.0.first_error.lock().unwrap_or_else(|p| p.into_inner());
                first.get_or_insert_with(|| e.to_string());
            }
        }
    }
}

/// Enqueue one record, serving delivery reports while librdkafka's queue is full.
pub fn send(producer: &BaseProducer<CountingContext>, mut record: BaseRecord<'_, (), [u8]>) -> Result<()> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                record = r;
                producer.poll(Duration::from_millis(1));
            }
            Err((e, _)) => return Err(e.into()),
        }
    }
}

pub fn producer(
    env: &Env,
    acks: &str,
    compression: &str,
    linger_ms: u64,
    deliveries: &Arc<Deliveries>,
) -> Result<BaseProducer<CountingContext>> {
    let config = env.config(&[
        ("acks", acks.to_string()),
        ("compression.type", compression.to_string()),
        ("linger.ms", linger_ms.to_string()),
        ("message.timeout.ms", "300000".to_string()),
        // Room for a whole burst, so the measurement is the broker's pace.
        ("queue.buffering.max.messages", "1000000".to_string()),
    ]);
    Ok(config.create_with_context(CountingContext(deliveries.clone()))?)
}

fn produce_share(env: &Env, args: &ProduceArgs, topic: &str, count: u64, deliveries: &Arc<Deliveries>) -> Result<()> {
    if args.transaction_size > 0 {
        return produce_in_transactions(env, args, topic, count, deliveries);
    }
    let producer = producer(env, &args.acks, &args.compression, args.linger_ms, deliveries)?;
    let value = payload(args.record_size);
    for i in 0..count {
        send(&producer, BaseRecord::to(topic).payload(&value[..]))?;
        if i % 1024 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    producer.flush(Duration::from_secs(300))?;
    Ok(())
}

/// `count` records in transactions of `args.transaction_size`, each committed
/// (commit_transaction flushes: the clock includes every marker).
fn produce_in_transactions(
    env: &Env,
    args: &ProduceArgs,
    topic: &str,
    count: u64,
    deliveries: &Arc<Deliveries>,
) -> Result<()> {
    let id = format!(
        "strom-bench-{}-{:?}",
        crate::client::unix_micros(),
        std::thread::current().id()
    );
    let config = env.config(&[
        ("transactional.id", id),
        ("compression.type", args.compression.clone()),
        ("linger.ms", args.linger_ms.to_string()),
        // librdkafka wants message.timeout.ms ≤ transaction.timeout.ms.
        ("transaction.timeout.ms", "300000".to_string()),
        ("message.timeout.ms", "300000".to_string()),
        ("queue.buffering.max.messages", "1000000".to_string()),
    ]);
    let producer: BaseProducer<CountingContext> = config.create_with_context(CountingContext(deliveries.clone()))?;
    let timeout = Duration::from_secs(300);
    producer.init_transactions(timeout)?;
    let value = payload(args.record_size);
    let mut sent = 0;
    while sent < count {
        producer.begin_transaction()?;
        let n = args.transaction_size.min(count - sent);
        for i in 0..n {
            send(&producer, BaseRecord::to(topic).payload(&value[..]))?;
            if i % 1024 == 0 {
                producer.poll(Duration::ZERO);
            }
        }
        // Serve the delivery reports here: rust-rdkafka's BaseProducer flushes
        // (inside commit_transaction) in polls of up to 100 ms, which would
        // measure that step instead of the broker.
        while producer.in_flight_count() > 0 {
            producer.poll(Duration::from_millis(1));
        }
        producer.commit_transaction(timeout)?;
        sent += n;
    }
    producer.poll(Duration::ZERO);
    Ok(())
}

pub fn run(env: &Env, args: &ProduceArgs) -> Result<Run> {
    let topic = args.topic.prepare(env, "produce")?;
    // Metadata first, so the clock does not include the topic's creation.
    env.partitions(&topic)?;
    let deliveries = Arc::new(Deliveries::default());
    let producers = args.producers.max(1);
    let cpu = cpu::Meter::start(env.broker_pid);
    let start = Instant::now();
    let results: Vec<Result<()>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..producers)
            .map(|p| {
                let share = args.records / producers + u64::from(p < args.records % producers);
                let (topic, deliveries) = (&topic, &deliveries);
                s.spawn(move || produce_share(env, args, topic, share, deliveries))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(BenchError::Failed("producer thread panicked".into())))
            })
            .collect()
    });
    let seconds = start.elapsed().as_secs_f64();
    let broker_cpu = cpu.elapsed();
    results.into_iter().collect::<Result<Vec<()>>>()?;
    let delivered = deliveries.delivered.load(Ordering::Relaxed);
    let name = match args.transaction_size {
        0 => format!("produce acks={}", args.acks),
        n => format!("produce transactions of {n}"),
    };
    let mut run = Run::new(
        name,
        topic,
        vec![
            format!("record_size={}", args.record_size),
            format!("partitions={}", args.topic.partitions),
            format!("compression={}", args.compression),
            format!("linger_ms={}", args.linger_ms),
            format!("producers={producers}"),
        ],
        delivered,
        delivered * args.record_size as u64,
        seconds,
    )
    .with_broker_cpu(broker_cpu);
    run.errors = deliveries.failed.load(Ordering::Relaxed);
    if let Some(e) = deliveries
        .first_error
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
    {
        eprintln!("strom-bench: {} records failed, the first with: {e}", run.errors);
    }
    Ok(run)
}
