//! The `strom` binary: `strom serve` (the default) runs the broker.

use clap::{Parser, Subcommand};
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
    /// Consumer groups: list them, or describe one with its members and lag.
    Groups {
        /// Any broker of the cluster (strom or Kafka).
        #[arg(
            long,
            env = "STROM_BOOTSTRAP_SERVER",
            default_value = "localhost:9092",
            global = true
        )]
        bootstrap_server: String,
        #[command(subcommand)]
        command: GroupsCommand,
    },
}

#[derive(Subcommand)]
enum GroupsCommand {
    /// Every group with its state.
    List,
    /// Members, committed offsets, log end offsets and lag of one group.
    Describe { group: String },
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Serve(args)) => args,
        None => cli.serve,
        Some(Command::Groups {
            bootstrap_server,
            command,
        }) => return run_tool(groups(bootstrap_server, command)),
    };
    let config = match Config::resolve(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("strom: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("strom: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("strom: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn groups(bootstrap: String, command: GroupsCommand) -> Result<(), strom::client::ClientError> {
    match command {
        GroupsCommand::List => strom::cli::groups::list(&bootstrap).await,
        GroupsCommand::Describe { group } => strom::cli::groups::describe(&bootstrap, &group).await,
    }
}

/// Run a client tool on a small runtime; errors go to stderr with exit code 1.
fn run_tool<E: std::fmt::Display>(tool: impl std::future::Future<Output = Result<(), E>>) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("strom: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(tool) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("strom: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> strom::error::Result<()> {
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
