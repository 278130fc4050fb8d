//! `fpolicy-sim`: simulate ONTAP nodes against an FPolicy server, or run a
//! discarding server to measure the simulator.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use fpolicy_sim::discard::{DiscardConfig, DiscardStats};
use fpolicy_sim::{Mode, SimConfig, parse_duration};

#[derive(Parser)]
#[command(
    name = "fpolicy-sim",
    version,
    about = "ONTAP-side FPolicy simulator and load generator"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum EngineMode {
    /// Fire and forget, as an asynchronous engine.
    Async,
    /// Wait for SCREEN_RESP, as a synchronous engine.
    Sync,
}

#[derive(Subcommand)]
enum Command {
    /// Connect simulated ONTAP nodes to a server and send a workload.
    Run(Box<RunArgs>),
    /// Listen, answer handshakes, discard notifications (measures the simulator).
    Discard {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:9898")]
        listen: SocketAddr,
        /// Answer every SCREEN_REQ with allow (for synchronous runs).
        #[arg(long)]
        reply: bool,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// FPolicy server address.
    #[arg(long, default_value = "127.0.0.1:9898")]
    server: SocketAddr,
    /// Simulated ONTAP nodes, one connection each.
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// Engine behaviour.
    #[arg(long, value_enum, default_value = "async")]
    mode: EngineMode,
    /// Synchronous mode: most requests outstanding per node.
    #[arg(long, default_value_t = 256)]
    outstanding: usize,
    /// Total SCREEN_REQs per second over all nodes (default: as fast as possible).
    #[arg(long)]
    rate: Option<u64>,
    /// Total SCREEN_REQs over all nodes (default 10000 unless --duration is given).
    #[arg(long)]
    count: Option<u64>,
    /// Run for this long instead of a count (e.g. 60s).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Policy name sent in NEGO_REQ.
    #[arg(long, default_value = fpolicy_proto::sample::SAMPLE_POLICY)]
    policy: String,
    /// SVM UUID sent in NEGO_REQ.
    #[arg(long, default_value = fpolicy_proto::sample::SAMPLE_VS_UUID)]
    svm_uuid: String,
    /// Prefix of the session ids (node number appended).
    #[arg(long, default_value = "5ab0c6a4-0f1e-11f1-9c2d-00a098d1")]
    session_prefix: String,
    /// Protocol versions offered, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1.0,1.1,1.2,2.0")]
    versions: Vec<String>,
    /// KEEP_ALIVE interval (ONTAP default 120s).
    #[arg(long, value_parser = parse_duration, default_value = "120s")]
    keep_alive: Duration,
    /// Synchronous mode: STATUS_QUERY_REQ for requests older than this.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    status_after: Duration,
    /// Synchronous mode: SCREEN_CANCEL for requests older than this.
    #[arg(long, value_parser = parse_duration, default_value = "20s")]
    cancel_after: Duration,
    /// Workload seed (same seed, same operations).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Connect with TLS, verifying the server against this CA (PEM).
    #[arg(long, value_name = "PEM")]
    tls_ca: Option<std::path::PathBuf>,
    /// Mutual TLS: client certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// Mutual TLS: client private key (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// Name the server certificate must carry.
    #[arg(long, default_value = "localhost")]
    tls_server_name: String,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Run(a) => {
            anyhow::ensure!(a.nodes > 0, "--nodes must be at least 1");
            anyhow::ensure!(a.outstanding > 0, "--outstanding must be at least 1");
            let mut cfg = SimConfig::new(a.server);
            cfg.nodes = a.nodes;
            cfg.mode = match a.mode {
                EngineMode::Async => Mode::Async,
                EngineMode::Sync => Mode::Sync {
                    max_outstanding: a.outstanding,
                },
            };
            cfg.rate = a.rate;
            cfg.duration = a.duration;
            cfg.count = match (a.count, a.duration) {
                (Some(c), _) => Some(c),
                (None, Some(_)) => None,
                (None, None) => Some(10_000),
            };
            cfg.policy_name = a.policy;
            cfg.vs_uuid = a.svm_uuid;
            cfg.session_prefix = a.session_prefix;
            cfg.versions = a.versions;
            cfg.keep_alive_interval = a.keep_alive;
            cfg.status_query_after = a.status_after;
            cfg.cancel_after = a.cancel_after;
            cfg.seed = a.seed;
            if let Some(ca) = &a.tls_ca {
                let client = a.tls_cert.as_deref().zip(a.tls_key.as_deref());
                cfg.tls = Some(
                    fpolicy_sim::tls::SimTls::from_pem(ca, client, &a.tls_server_name)
                        .map_err(anyhow::Error::msg)?,
                );
            } else {
                anyhow::ensure!(a.tls_cert.is_none(), "--tls-cert needs --tls-ca");
            }
            let report = rt.block_on(fpolicy_sim::run(cfg));
            // A closed stdout (| head) is not an error worth a panic.
            let text = if a.json {
                report.to_json() + "\n"
            } else {
                report.to_string()
            };
            let _ = std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes());
            if !report.errors.is_empty() {
                std::process::exit(1);
            }
        }
        Command::Discard { listen, reply } => {
            rt.block_on(async {
                let listener = tokio::net::TcpListener::bind(listen).await?;
                eprintln!("fpolicy-sim discard: listening on {listen} (reply: {reply})");
                let stats = Arc::new(DiscardStats::default());
                let printer = stats.clone();
                tokio::spawn(async move {
                    let mut last = 0;
                    loop {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        let now = printer.screen_requests.load(Ordering::Relaxed);
                        if now != last {
                            eprintln!(
                                "fpolicy-sim discard: {now} SCREEN_REQs ({:.0}/s over the last 5 s), {} connections",
                                (now - last) as f64 / 5.0,
                                printer.connections.load(Ordering::Relaxed)
                            );
                            last = now;
                        }
                    }
                });
                fpolicy_sim::discard::serve(listener, DiscardConfig { reply }, stats).await
            })?;
        }
    }
    Ok(())
}
