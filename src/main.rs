//! The `strom` binary: `strom serve` (the default) runs the broker.

use clap::{Parser, Subcommand};
use strom::cli::Output;
use strom::client::ClientError;
use strom::config::{Config, ServeArgs};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(name = "strom", version, about = "A Kafka-compatible message broker")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the broker (also what a bare `strom` does).
    Serve(ServeArgs),
    /// The cluster: its brokers, controller and unhealthy partitions.
    Cluster {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: strom::cli::cluster::ClusterCommand,
    },
    /// Partitions: move replicas between brokers (reassign).
    Partitions {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: strom::cli::partitions::PartitionsCommand,
    },
    /// Topics: list, create, describe, alter, delete.
    Topics {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: TopicsCommand,
    },
    /// Configs of a topic, a broker or the broker defaults: describe, alter.
    Configs {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: ConfigsCommand,
    },
    /// Consumer groups: list, describe with lag, delete, reset offsets.
    Groups {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: GroupsCommand,
    },
    /// Transactions at their coordinator: list, describe.
    Transactions {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: TransactionsCommand,
    },
    /// ACLs (with an authorizer configured): list, add, remove.
    Acls {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: strom::cli::security_args::AclsCommand,
    },
    /// SCRAM users: list, create (or change a password), delete.
    Users {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: strom::cli::security_args::UsersCommand,
    },
    /// Client quotas (byte rates, request time, connection rates): describe, alter.
    Quotas {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: strom::cli::security_args::QuotasCommand,
    },
    /// Idempotent and transactional producers of a partition.
    Producers {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: ProducersCommand,
    },
    /// Produce one record per line of standard input.
    Produce {
        #[command(flatten)]
        client: ClientArgs,
        topic: String,
        /// Split each line at this separator into key and value (e.g. ':').
        #[arg(short = 'K', long)]
        key_separator: Option<String>,
        /// Write every record to this partition.
        #[arg(short, long)]
        partition: Option<i32>,
    },
    /// Check a data directory's log files, or repair them (with the broker stopped).
    Log {
        #[command(subcommand)]
        command: LogCommand,
    },
    /// Print records of a topic, then exit at its end (like kcat -e).
    Consume {
        #[command(flatten)]
        client: ClientArgs,
        topic: String,
        #[arg(short, long)]
        partition: Option<i32>,
        /// Start at the beginning instead of the end.
        #[arg(long)]
        from_beginning: bool,
        /// Print keys too, followed by this separator.
        #[arg(short = 'K', long)]
        key_separator: Option<String>,
        /// Stop after this many records.
        #[arg(long)]
        max_messages: Option<usize>,
        /// Keep waiting for new records instead of stopping at the end.
        #[arg(short, long)]
        follow: bool,
    },
}

#[derive(Subcommand)]
enum LogCommand {
    /// Read every segment: framing, CRCs, offsets, indexes, gaps. Exit code 1 if
    /// anything is wrong.
    Check {
        /// The data directory (log.dirs).
        dir: std::path::PathBuf,
    },
    /// Truncate each damaged partition before its first bad batch (removing the
    /// segments after it) and drop wrong indexes; a dry run unless --execute.
    Repair {
        dir: std::path::PathBuf,
        #[arg(long)]
        execute: bool,
    },
}

#[derive(clap::Args)]
struct ClientArgs {
    /// Any broker of the cluster (strom or Kafka).
    #[arg(
        long,
        env = "STROM_BOOTSTRAP_SERVER",
        default_value = "localhost:9092",
        global = true
    )]
    bootstrap_server: String,
    /// Client security properties, as Kafka's tools take them (security.protocol,
    /// sasl.mechanism, sasl.jaas.config, ssl.truststore.location, …).
    #[arg(long, env = "STROM_COMMAND_CONFIG", global = true)]
    command_config: Option<std::path::PathBuf>,
    /// JSON output for scripts instead of tables.
    #[arg(long, global = true)]
    json: bool,
}

impl ClientArgs {
    fn bootstrap(&self) -> Result<strom::client::Bootstrap, ClientError> {
        let security = match &self.command_config {
            Some(path) => strom::client::ClientSecurity::from_file(path)?,
            None => Default::default(),
        };
        Ok(strom::client::Bootstrap {
            servers: self.bootstrap_server.clone(),
            security,
        })
    }
}

#[derive(Subcommand)]
enum TopicsCommand {
    /// Every topic with its partition count.
    List,
    /// Create a topic.
    Create {
        topic: String,
        #[arg(long, default_value_t = 1)]
        partitions: i32,
        #[arg(long, default_value_t = 1)]
        replication_factor: i16,
        /// A topic config, KEY=VALUE (repeatable), e.g. --config cleanup.policy=compact
        #[arg(long = "config", value_parser = strom::cli::topics::key_value)]
        configs: Vec<(String, String)>,
    },
    /// Partitions, offsets and config overrides of a topic.
    Describe { topic: String },
    /// Add partitions, set or delete config overrides.
    Alter {
        topic: String,
        #[arg(long)]
        partitions: Option<i32>,
        #[arg(long = "config", value_parser = strom::cli::topics::key_value)]
        configs: Vec<(String, String)>,
        #[arg(long = "delete-config")]
        delete_configs: Vec<String>,
    },
    /// Delete a topic and its data.
    Delete { topic: String },
}

/// Whose configs: exactly one of --topic, --broker, --broker-defaults.
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
struct ConfigTarget {
    #[arg(long)]
    topic: Option<String>,
    #[arg(long)]
    broker: Option<i32>,
    /// The dynamic defaults of every broker.
    #[arg(long)]
    broker_defaults: bool,
}

impl ConfigTarget {
    fn target(self) -> strom::cli::configs::Target {
        use strom::cli::configs::Target;
        match (self.topic, self.broker) {
            (Some(t), _) => Target::Topic(t),
            (None, Some(b)) => Target::Broker(b),
            (None, None) => Target::BrokerDefaults,
        }
    }
}

#[derive(Subcommand)]
enum ConfigsCommand {
    /// The configs set on a topic or broker (every config with --all), with sources.
    Describe {
        #[command(flatten)]
        target: ConfigTarget,
        #[arg(long)]
        all: bool,
    },
    /// Set or delete configs (IncrementalAlterConfigs).
    Alter {
        #[command(flatten)]
        target: ConfigTarget,
        /// KEY=VALUE (repeatable)
        #[arg(long = "set", value_parser = strom::cli::topics::key_value)]
        set: Vec<(String, String)>,
        /// KEY (repeatable): back to the next layer's value
        #[arg(long = "delete")]
        delete: Vec<String>,
    },
}

#[derive(Subcommand)]
enum TransactionsCommand {
    /// Every transactional id with its producer id and state.
    List {
        /// Only these states (repeatable): Empty, Ongoing, PrepareCommit, …
        #[arg(long = "state")]
        states: Vec<String>,
        /// Only these producer ids (repeatable)
        #[arg(long = "producer-id")]
        producer_ids: Vec<i64>,
    },
    /// Producer id, epoch, state, timeout, start time and partitions of one id.
    Describe { transactional_id: String },
}

#[derive(Subcommand)]
enum ProducersCommand {
    /// The partition's producers: epoch, last sequence, open transaction's first offset.
    Describe { topic: String, partition: i32 },
}

#[derive(Subcommand)]
enum GroupsCommand {
    /// Every group with its state.
    List,
    /// Members, committed offsets, log end offsets and lag of one group.
    Describe { group: String },
    /// Delete a group without members, with its committed offsets.
    Delete { group: String },
    /// Move a group's committed offsets (a dry run unless --execute).
    ResetOffsets {
        #[arg(long)]
        group: String,
        #[arg(long)]
        topic: String,
        #[arg(long, group = "to")]
        to_earliest: bool,
        #[arg(long, group = "to")]
        to_latest: bool,
        /// Epoch milliseconds or YYYY-MM-DDTHH:MM:SS[.mmm]Z
        #[arg(long, group = "to")]
        to_datetime: Option<String>,
        #[arg(long, group = "to")]
        to_offset: Option<i64>,
        #[arg(long)]
        execute: bool,
    },
}

/// stderr for log lines, with write errors ignored: on a full disk (or a closed
/// pipe) the broker must go on serving and shutting down, not panic in its logger.
struct LogOutput;

impl std::io::Write for LogOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

/// The last words of a failed run, where printing may itself fail.
fn say(message: std::fmt::Arguments) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "strom: {message}");
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(|| LogOutput)
        .init();
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Serve(args)) => args,
        None => cli.serve,
        Some(Command::Cluster { client, command }) => {
            return run_tool(async move { command.run(&client.bootstrap()?, Output { json: client.json }).await })
        }
        Some(Command::Partitions { client, command }) => {
            return run_tool(async move { command.run(&client.bootstrap()?, Output { json: client.json }).await })
        }
        Some(Command::Topics { client, command }) => return run_tool(topics(client, command)),
        Some(Command::Groups { client, command }) => return run_tool(groups(client, command)),
        Some(Command::Configs { client, command }) => return run_tool(configs(client, command)),
        Some(Command::Transactions { client, command }) => return run_tool(transactions(client, command)),
        Some(Command::Producers { client, command }) => return run_tool(producers(client, command)),
        Some(Command::Acls { client, command }) => {
            return run_tool(async move { command.run(&client.bootstrap()?, Output { json: client.json }).await })
        }
        Some(Command::Users { client, command }) => {
            return run_tool(async move { command.run(&client.bootstrap()?, Output { json: client.json }).await })
        }
        Some(Command::Quotas { client, command }) => {
            return run_tool(async move { command.run(&client.bootstrap()?, Output { json: client.json }).await })
        }
        Some(Command::Log { command }) => return log_tool(command),
        Some(Command::Produce {
            client,
            topic,
            key_separator,
            partition,
        }) => {
            return run_tool(async move {
                strom::cli::io::produce(&client.bootstrap()?, &topic, key_separator.as_deref(), partition).await
            })
        }
        Some(Command::Consume {
            client,
            topic,
            partition,
            from_beginning,
            key_separator,
            max_messages,
            follow,
        }) => {
            return run_tool(async move {
                strom::cli::io::consume(
                    &client.bootstrap()?,
                    &topic,
                    partition,
                    from_beginning,
                    key_separator.as_deref(),
                    max_messages,
                    follow,
                )
                .await
            })
        }
    };
    let config = match Config::resolve(&args) {
        Ok(c) => c,
        Err(e) => {
            say(format_args!("{e}"));
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            say(format_args!("cannot start the runtime: {e}"));
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            say(format_args!("{e}"));
            std::process::ExitCode::FAILURE
        }
    }
}

async fn configs(client: ClientArgs, command: ConfigsCommand) -> Result<(), ClientError> {
    use strom::cli::configs;
    let (bs, out) = (&client.bootstrap()?, Output { json: client.json });
    match command {
        ConfigsCommand::Describe { target, all } => configs::describe(bs, &target.target(), all, out).await,
        ConfigsCommand::Alter { target, set, delete } => configs::alter(bs, &target.target(), &set, &delete, out).await,
    }
}

async fn transactions(client: ClientArgs, command: TransactionsCommand) -> Result<(), ClientError> {
    use strom::cli::transactions;
    let (bs, out) = (&client.bootstrap()?, Output { json: client.json });
    match command {
        TransactionsCommand::List { states, producer_ids } => transactions::list(bs, &states, &producer_ids, out).await,
        TransactionsCommand::Describe { transactional_id } => transactions::describe(bs, &transactional_id, out).await,
    }
}

async fn producers(client: ClientArgs, command: ProducersCommand) -> Result<(), ClientError> {
    let (bs, out) = (&client.bootstrap()?, Output { json: client.json });
    match command {
        ProducersCommand::Describe { topic, partition } => {
            strom::cli::transactions::describe_producers(bs, &topic, partition, out).await
        }
    }
}

async fn topics(client: ClientArgs, command: TopicsCommand) -> Result<(), ClientError> {
    use strom::cli::topics;
    let (bs, out) = (&client.bootstrap()?, Output { json: client.json });
    match command {
        TopicsCommand::List => topics::list(bs, out).await,
        TopicsCommand::Create {
            topic,
            partitions,
            replication_factor,
            configs,
        } => topics::create(bs, &topic, partitions, replication_factor, &configs, out).await,
        TopicsCommand::Describe { topic } => topics::describe(bs, &topic, out).await,
        TopicsCommand::Alter {
            topic,
            partitions,
            configs,
            delete_configs,
        } => topics::alter(bs, &topic, partitions, &configs, &delete_configs, out).await,
        TopicsCommand::Delete { topic } => topics::delete(bs, &topic, out).await,
    }
}

async fn groups(client: ClientArgs, command: GroupsCommand) -> Result<(), ClientError> {
    use strom::cli::groups::{self, ResetTo};
    let (bs, out) = (&client.bootstrap()?, Output { json: client.json });
    match command {
        GroupsCommand::List => groups::list(bs, out).await,
        GroupsCommand::Describe { group } => groups::describe(bs, &group, out).await,
        GroupsCommand::Delete { group } => groups::delete(bs, &group, out).await,
        GroupsCommand::ResetOffsets {
            group,
            topic,
            to_earliest,
            to_latest,
            to_datetime,
            to_offset,
            execute,
        } => {
            let to = match (to_earliest, to_latest, to_datetime, to_offset) {
                (true, _, _, _) => ResetTo::Earliest,
                (_, true, _, _) => ResetTo::Latest,
                (_, _, Some(t), _) => ResetTo::Time(strom::cli::parse_time(&t).map_err(ClientError::Usage)?),
                (_, _, _, Some(o)) => ResetTo::Offset(o),
                _ => {
                    return Err(ClientError::Usage(
                        "say where to: --to-earliest, --to-latest, --to-datetime or --to-offset".into(),
                    ))
                }
            };
            groups::reset_offsets(bs, &group, &topic, to, execute, out).await
        }
    }
}

/// `strom log check|repair`: offline, on the files.
fn log_tool(command: LogCommand) -> std::process::ExitCode {
    use strom::log::check;
    let (dir, repair, execute) = match command {
        LogCommand::Check { dir } => (dir, false, false),
        LogCommand::Repair { dir, execute } => (dir, true, execute),
    };
    let checks = match check::check_data_dir(&dir) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("strom: cannot read {}: {e}", dir.display());
            return std::process::ExitCode::from(2);
        }
    };
    let mut problems = 0;
    for c in &checks {
        let state = if c.findings.is_empty() { "ok" } else { "PROBLEMS" };
        println!(
            "{}: {} segments, {} batches, log end offset {}: {state}",
            c.dir.display(),
            c.segments,
            c.batches,
            c.log_end_offset
        );
        for f in &c.findings {
            let kind = if f.damage { "damaged" } else { "warning" };
            println!("  {kind}: {} at byte {}: {}", f.file.display(), f.position, f.problem);
        }
        problems += c.findings.len();
        if repair && !c.findings.is_empty() {
            if !execute {
                println!("  (dry run: --execute repairs it)");
                continue;
            }
            match check::repair(&dir, c) {
                Ok(done) => done.iter().for_each(|d| println!("  repaired: {d}")),
                Err(e) => {
                    eprintln!("strom: repair of {} failed: {e}", c.dir.display());
                    return std::process::ExitCode::FAILURE;
                }
            }
        }
    }
    if problems == 0 || (repair && execute) {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}

/// Run a client tool on a small runtime; errors go to stderr with exit code 1.
fn run_tool<E: std::fmt::Display>(tool: impl std::future::Future<Output = Result<(), E>>) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            say(format_args!("cannot start the runtime: {e}"));
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(tool) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            say(format_args!("{e}"));
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> strom::error::Result<()> {
    // Each segment keeps three files open, and each connection one: the soft
    // limit (often 1024) goes up to the hard one, as Kafka's packaging asks of
    // operators.
    match strom::util::fs::raise_open_file_limit() {
        Ok(limit) => tracing::debug!(limit, "open file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open file limit"),
    }
    let running = strom::start(config).await?;
    let trigger = running.shutdown_trigger();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down: finishing in-flight requests and closing the log");
        let _ = trigger.send(true);
    });
    running.wait().await
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
