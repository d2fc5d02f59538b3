//! strom-bench: what a librdkafka application sees of a Kafka-compatible broker.
//!
//! Four commands, each pointed at any bootstrap server:
//! - `produce`: producer throughput (messages/s, MB/s) for a record size, count,
//!   partition count, acks, compression, linger and number of producers;
//! - `consume`: a group consumer reading a topic from the earliest offset;
//! - `latency`: end-to-end latency at a fixed rate, from a send timestamp carried
//!   in each record (producer and consumer run in this process, on one clock);
//! - `all`: every one of them once, with the defaults of docs/BENCHMARKS.md.
//!
//! Results print as a table, or as JSON with `--json`. MB is 10^6 bytes of record
//! values (keys, headers and protocol overhead are not counted). `produce` and
//! `consume` also report the broker's CPU seconds (user + system) over the measured
//! phase and per GB (10^9 bytes) of record values, when the broker process is known:
//! `--broker-pid`, or else the process listening on a loopback bootstrap port.

mod client;
mod consume;
mod cpu;
mod latency;
mod produce;
mod report;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use report::{Report, Run};

#[derive(Parser, Debug)]
#[command(
    name = "strom-bench",
    version,
    about = "Benchmark a Kafka-compatible broker with librdkafka"
)]
struct Cli {
    /// Bootstrap server(s), host:port[,host:port...].
    #[arg(
        long,
        short = 'b',
        global = true,
        env = "STROM_BENCH_BOOTSTRAP",
        default_value = "127.0.0.1:9092"
    )]
    bootstrap: String,
    /// Print the results as JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    /// Extra librdkafka property for every client, e.g. -X socket.send.buffer.bytes=1048576.
    #[arg(long = "set", short = 'X', global = true, value_parser = client::parse_property)]
    properties: Vec<(String, String)>,
    /// The broker's process id, for its CPU time; by default the process listening on
    /// the bootstrap port when that is a loopback address, or none (no CPU figures).
    #[arg(long, global = true)]
    broker_pid: Option<u32>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Producer throughput.
    Produce(produce::ProduceArgs),
    /// Consumer throughput: a group consumer from the earliest offset.
    Consume(consume::ConsumeArgs),
    /// End-to-end latency at a fixed rate.
    Latency(latency::LatencyArgs),
    /// Everything once: produce (acks=1, then acks=all), consume, latency at half
    /// the acks=1 rate.
    All(AllArgs),
}

#[derive(Args, Debug)]
struct AllArgs {
    /// Records per produce run.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Bytes per record value.
    #[arg(long, default_value_t = 1024)]
    record_size: usize,
    /// Partitions of the topics created.
    #[arg(long, default_value_t = 6)]
    partitions: i32,
    /// Producer linger.ms for the throughput runs.
    #[arg(long, default_value_t = 5)]
    linger_ms: u64,
    /// Rate of the latency run in messages/s; by default half the acks=1 rate measured.
    #[arg(long)]
    latency_rate: Option<u64>,
    /// Seconds the latency run sends for.
    #[arg(long, default_value_t = 10)]
    latency_seconds: u64,
}

fn run_all(env: &client::Env, args: &AllArgs) -> Result<Vec<Run>, client::BenchError> {
    let mut runs = Vec::new();
    let mut produce = produce::ProduceArgs {
        topic: client::TopicArgs::fresh(args.partitions),
        records: args.records,
        record_size: args.record_size,
        acks: "1".into(),
        compression: "none".into(),
        linger_ms: args.linger_ms,
        producers: 1,
        transaction_size: 0,
    };
    let acks1 = produce::run(env, &produce)?;
    let topic = acks1.topic.clone();
    let peak = acks1.msgs_per_sec;
    runs.push(acks1);

    produce.topic = client::TopicArgs::fresh(args.partitions);
    produce.acks = "all".into();
    runs.push(produce::run(env, &produce)?);

    let consume = consume::ConsumeArgs {
        topic: topic.clone(),
        records: None,
        group: None,
        idle_timeout_s: 10,
        isolation: "read_committed".into(),
    };
    runs.push(consume::run(env, &consume)?);

    let latency = latency::LatencyArgs {
        topic: client::TopicArgs::fresh(args.partitions),
        rate: args.latency_rate.unwrap_or(((peak / 2.0) as u64).max(1)),
        seconds: args.latency_seconds,
        record_size: args.record_size,
        acks: "1".into(),
        linger_ms: 0,
    };
    runs.push(latency::run(env, &latency)?);
    Ok(runs)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let env = client::Env {
        bootstrap: cli.bootstrap.clone(),
        properties: cli.properties.clone(),
        broker_pid: cli.broker_pid.or_else(|| cpu::find_broker(&cli.bootstrap)),
    };
    if env.broker_pid.is_none() && !matches!(cli.command, Command::Latency(_)) {
        eprintln!("strom-bench: broker process not found (see --broker-pid), no CPU figures");
    }
    let runs = match &cli.command {
        Command::Produce(a) => produce::run(&env, a).map(|r| vec![r]),
        Command::Consume(a) => consume::run(&env, a).map(|r| vec![r]),
        Command::Latency(a) => latency::run(&env, a).map(|r| vec![r]),
        Command::All(a) => run_all(&env, a),
    };
    match runs {
        Ok(runs) => {
            let report = Report {
                bootstrap: cli.bootstrap,
                runs,
            };
            if cli.json {
                println!("{}", report.to_json());
            } else {
                print!("{}", report.to_table());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("strom-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
