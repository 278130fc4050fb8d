//! The `fpolicy-bridge` command line: one module per subcommand in `cli/`.

mod cli;

use clap::{Parser, Subcommand};

// The SDK path allocates per call and per entry from several threads;
// mimalloc measured faster than glibc malloc here (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "fpolicy-bridge",
    version,
    about = "FPolicy external server for NetApp ONTAP: every file operation as a durable JSON event"
)]
struct Cli {
    #[command(flatten)]
    common: cli::CommonArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (defaults need no config file).
    Serve(cli::serve::ServeArgs),
    /// Print or check configuration.
    Config {
        #[command(subcommand)]
        command: cli::config::ConfigCommand,
    },
    /// Inspect the spool.
    Spool {
        #[command(subcommand)]
        command: cli::spool::SpoolCommand,
    },
    /// Print events from the JSON Lines files as JSON lines.
    Query(cli::query::QueryArgs),
    /// Manage the FPolicy registration on the ONTAP cluster (REST API).
    Ontap(cli::ontap::OntapArgs),
    /// User names for SIDs and UIDs ([identity]).
    Identity {
        #[command(subcommand)]
        command: cli::identity::IdentityCommand,
    },
    /// S3 Access Point polling.
    Poll {
        #[command(subcommand)]
        command: cli::poll::PollCommand,
    },
    /// Inspect routing.
    Routes {
        #[command(subcommand)]
        command: cli::routes::RoutesCommand,
    },
    /// A live view of a running server (full screen; plain lines when not
    /// on a terminal): sessions, sinks, spool, drops, polls, ONTAP.
    Top(cli::top::TopArgs),
    /// Ask a running server's admin port whether it is healthy (exit 0) or
    /// not (exit 1): the container health check, with no curl in the image.
    Health(cli::health::HealthArgs),
}

/// The error and its causes, each once: an error whose message already
/// quotes its cause (`cannot read F: No such file or directory (os error
/// 2)`) does not get the cause repeated after it.
fn describe(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

fn main() -> std::process::ExitCode {
    let Cli { common, command } = Cli::parse();
    let result = match command {
        Command::Serve(args) => cli::serve::run(&common, args),
        Command::Config { command } => cli::config::run(command, &common),
        Command::Spool { command } => cli::spool::run(&common, command),
        Command::Query(args) => cli::query::run(&common, args),
        Command::Ontap(args) => cli::ontap::run(&common, args),
        Command::Poll { command } => cli::poll::run(&common, command),
        Command::Identity { command } => cli::identity::run(&common, command),
        Command::Routes { command } => cli::routes::run(&common, command),
        Command::Health(args) => cli::health::run(&common, &args),
        Command::Top(args) => cli::top::run(&common, args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fpolicy-bridge: {}", describe(&e));
            let code = e.downcast_ref::<cli::Exit>().map_or(1, |x| x.code);
            std::process::ExitCode::from(code)
        }
    }
}
