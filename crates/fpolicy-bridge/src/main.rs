//! The `fpolicy-bridge` command line.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use fpolicy_bridge::app;
use fpolicy_bridge::config::{Config, LogFormat, Overrides};
use fpolicy_bridge::query::{self, Query};
use fpolicy_event::Operation;
use fpolicy_event::time::parse_rfc3339;

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
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (defaults need no config file).
    Serve(ServeArgs),
    /// Print or check configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Inspect the spool.
    Spool {
        #[command(subcommand)]
        command: SpoolCommand,
    },
    /// Print events from the JSON Lines files as JSON lines.
    Query(QueryArgs),
    /// Manage the FPolicy registration on the ONTAP cluster (REST API).
    Ontap(OntapArgs),
    /// S3 Access Point polling.
    Poll {
        #[command(subcommand)]
        command: PollCommand,
    },
    /// Inspect routing.
    Routes {
        #[command(subcommand)]
        command: RoutesCommand,
    },
    /// Ask a running server's admin port whether it is healthy (exit 0) or
    /// not (exit 1): the container health check, with no curl in the image.
    Health(HealthArgs),
}

#[derive(clap::Args)]
struct HealthArgs {
    /// The server's admin address.
    #[arg(long, default_value = "127.0.0.1:9899")]
    admin: std::net::SocketAddr,
    /// What to ask: `/readyz?scope=server` is "takes events" (listening,
    /// spool open); `/readyz` also needs every sink, poll and the ONTAP
    /// registration to be working.
    #[arg(long, default_value = "/readyz?scope=server")]
    path: String,
    /// Seconds per step (connect, send, receive).
    #[arg(long, default_value_t = 3)]
    timeout: u64,
}

#[derive(clap::Args)]
struct OntapArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Cluster management URL (ontap.cluster_url).
    #[arg(long, global = true)]
    cluster_url: Option<String>,
    /// REST user (ontap.username); the password comes from ontap.password_env / password_file.
    #[arg(long, global = true)]
    username: Option<String>,
    /// SVM name (ontap.svm).
    #[arg(long, global = true)]
    svm: Option<String>,
    /// CA bundle of the cluster certificate (ontap.ca_bundle).
    #[arg(long, global = true)]
    ca_bundle: Option<PathBuf>,
    /// Do not verify the cluster certificate (logged as a warning).
    #[arg(long, global = true)]
    insecure: bool,
    /// FPolicy policy name (ontap.policy).
    #[arg(long, global = true)]
    policy: Option<String>,
    /// FPolicy engine name (ontap.engine).
    #[arg(long, global = true)]
    engine: Option<String>,
    /// Event name prefix (ontap.event_prefix).
    #[arg(long, global = true)]
    event_prefix: Option<String>,
    /// Port ONTAP connects to (ontap.port; default: server.listen's port).
    #[arg(long, global = true)]
    port: Option<u16>,
    /// Seconds to wait for ONTAP (ontap.timeout_secs).
    #[arg(long, global = true)]
    timeout: Option<u64>,
    #[command(subcommand)]
    command: OntapCommand,
}

#[derive(Subcommand)]
enum OntapCommand {
    /// Engine, policy, events, scope, persistent store and per-node connection state.
    Status,
    /// Create or update engine, events, policy (and persistent store) and enable the policy.
    Register {
        /// Primary server(s) to add (default: keep the engine's list).
        #[arg(long = "server")]
        servers: Vec<String>,
    },
    /// Add a primary server.
    AddServer { address: String },
    /// Remove a primary server.
    RemoveServer { address: String },
    /// Replace the primary servers.
    SetServers {
        #[arg(required = true)]
        addresses: Vec<String>,
    },
    /// Disable and remove what register created.
    Unregister,
}

#[derive(Subcommand)]
enum PollCommand {
    /// Run one cycle now and print what it found (a dry run: the stored
    /// state and the spool are not touched, so it is safe while serving).
    Once {
        #[command(flatten)]
        common: CommonArgs,
        /// Only this [[poll]].
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Subcommand)]
enum RoutesCommand {
    /// Which routes and sinks an event would take.
    Test(RoutesTestArgs),
    /// An EventBridge event pattern per route, with the same meaning.
    EventbridgePatterns {
        #[command(flatten)]
        common: CommonArgs,
    },
    /// The routes as a CloudFormation template of AWS::Events::Rule
    /// resources (JSON; parameters EventBusName, TargetArn and
    /// RuleNamePrefix), so bus-side and in-process routing come from one
    /// source.
    Cloudformation {
        #[command(flatten)]
        common: CommonArgs,
        /// What a rule matches: `routes`, the route names the bridge put in
        /// detail.metadata.routes (exact, for the bridge's own bus); or
        /// `conditions`, the route's conditions translated to a pattern
        /// (for events from elsewhere; approximate where EventBridge cannot
        /// say the same, noted on standard error).
        #[arg(long = "match", value_enum, default_value_t = RuleMatch::Routes)]
        rule_match: RuleMatch,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum RuleMatch {
    Routes,
    Conditions,
}

#[derive(clap::Args)]
struct RoutesTestArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Volume-relative path, e.g. /legal/2026/contract.pdf.
    file_path: String,
    /// Operation [default: create].
    #[arg(long, default_value = "create")]
    op: Operation,
    /// Renames: the old path.
    #[arg(long)]
    previous_path: Option<String>,
    /// smb, nfsv3, nfsv4.0, nfsv4.1 [default: smb].
    #[arg(long, default_value = "smb")]
    protocol: String,
    #[arg(long, default_value = "unknown")]
    volume: String,
    #[arg(long, default_value = "unknown")]
    svm: String,
    /// FILE, DIR, STREAM, SYMLINK [default: FILE].
    #[arg(long, default_value = "FILE")]
    file_type: String,
}

#[derive(clap::Args)]
struct CommonArgs {
    /// TOML configuration file.
    #[arg(long, short = 'c', env = "FPOLICY_BRIDGE_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (spool and JSON Lines files).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[derive(clap::Args)]
struct ServeArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Address ONTAP connects to [default: 0.0.0.0:9898].
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<String>,
    /// Admin HTTP address (/metrics, /healthz, /readyz) [default: 127.0.0.1:9899].
    #[arg(long, value_name = "ADDR:PORT")]
    admin_listen: Option<String>,
    /// Write-complete quiet window in seconds; 0 turns coalescing off [default: 5].
    #[arg(long, value_name = "SECS")]
    write_complete_delay: Option<f64>,
    /// `stdout`: print events instead of writing JSON Lines files.
    #[arg(long, value_parser = ["stdout"])]
    sink: Option<String>,
    /// Log format: text or json [default: text].
    #[arg(long, value_parser = ["text", "json"])]
    log_format: Option<String>,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the fully commented default configuration.
    Default,
    /// Parse and validate a configuration file.
    Check { file: PathBuf },
}

#[derive(Subcommand)]
enum SpoolCommand {
    /// Segments, records, each sink's position and any damage (read-only;
    /// server must be stopped).
    Stats {
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Verify every record and cursor without changing anything; exit 1
    /// when something is damaged (server must be stopped).
    Check {
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Do what `serve` does at start: move damaged bytes to quarantine/,
    /// keep every intact record, and report (server must be stopped).
    Repair {
        #[command(flatten)]
        common: CommonArgs,
    },
}

#[derive(clap::Args)]
struct QueryArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Start (inclusive): RFC 3339 or YYYY-MM-DD.
    #[arg(long)]
    from: String,
    /// End (exclusive): RFC 3339 or YYYY-MM-DD.
    #[arg(long)]
    to: String,
    /// Only paths starting with this (file_path or previous_path).
    #[arg(long)]
    path_prefix: Option<String>,
    /// Only these operations (repeatable).
    #[arg(long = "op")]
    ops: Vec<Operation>,
    /// Stop after this many events.
    #[arg(long)]
    limit: Option<u64>,
}

fn load(common: &CommonArgs) -> anyhow::Result<Config> {
    // A file, else the TOML itself in FPOLICY_BRIDGE_CONFIG_TOML (how the
    // CloudFormation template passes the configuration it generates).
    let mut cfg = match (&common.config, std::env::var("FPOLICY_BRIDGE_CONFIG_TOML")) {
        (Some(path), _) => Config::load(path)?,
        (None, Ok(text)) => {
            Config::parse(&text, std::path::Path::new("$FPOLICY_BRIDGE_CONFIG_TOML"))?
        }
        (None, Err(_)) => Config::default(),
    };
    cfg.apply(&Overrides {
        data_dir: common.data_dir.clone(),
        ..Overrides::default()
    });
    Ok(cfg)
}

fn init_logging(cfg: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cfg.log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match cfg.log.format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}

/// SIGTERM and SIGINT, listened for from the moment they are installed: a
/// signal that arrives while the server starts is kept and acted on as soon
/// as it is up (a process started in the background by a shell inherits an
/// ignored SIGINT, so the handler must be in place before anything slow).
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn wait(mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    // Signal handlers first, before anything slow (see `Signals`).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("fpolicy-rt")
        .build()?;
    let signals = {
        let _enter = rt.enter();
        Signals::install().context("cannot install signal handlers")?
    };
    let mut cfg = load(&args.common)?;
    cfg.apply(&Overrides {
        listen: args.listen,
        admin_listen: args.admin_listen,
        write_complete_delay_secs: args.write_complete_delay,
        stdout_sink: args.sink.is_some(),
        log_format: args.log_format.as_deref().map(|f| {
            if f == "json" {
                LogFormat::Json
            } else {
                LogFormat::Text
            }
        }),
        ..Overrides::default()
    });
    cfg.validate()?;
    init_logging(&cfg);
    rt.block_on(async {
        let running = app::start(cfg).await?;
        let stop = running.shutdown_handle();
        tokio::spawn(async move {
            let sig = signals.wait().await;
            tracing::info!(
                signal = sig,
                "shutting down: no new connections, closing sessions, draining sinks"
            );
            let _ = stop.send(true);
        });
        running.wait().await
    })
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args),
        Command::Config {
            command: ConfigCommand::Default,
        } => {
            print!("{}", fpolicy_bridge::config::DEFAULT_CONFIG);
            Ok(())
        }
        Command::Config {
            command: ConfigCommand::Check { file },
        } => Config::load(&file)
            .map_err(anyhow::Error::from)
            .and_then(|c| c.validate().map_err(anyhow::Error::from))
            .map(|()| println!("{}: ok", file.display())),
        Command::Spool {
            command: SpoolCommand::Stats { common },
        } => spool_stats(&common),
        Command::Spool {
            command: SpoolCommand::Check { common },
        } => spool_check(&common),
        Command::Spool {
            command: SpoolCommand::Repair { common },
        } => spool_repair(&common),
        Command::Query(args) => run_query(args),
        Command::Ontap(args) => ontap_command(args),
        Command::Poll {
            command: PollCommand::Once { common, name },
        } => poll_once(&common, name.as_deref()),
        Command::Routes {
            command: RoutesCommand::Test(args),
        } => routes_test(args),
        Command::Routes {
            command: RoutesCommand::EventbridgePatterns { common },
        } => routes_patterns(&common),
        Command::Routes {
            command: RoutesCommand::Cloudformation { common, rule_match },
        } => routes_cloudformation(&common, rule_match),
        Command::Health(args) => health(&args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fpolicy-bridge: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

/// Holds the data dir of a spool that must already exist (nothing is
/// created), so that a diagnostic never runs beside the server.
fn lock_existing_spool(cfg: &Config) -> anyhow::Result<Option<std::fs::File>> {
    let spool = cfg.spool_dir();
    anyhow::ensure!(
        spool.join("segments").is_dir(),
        "no spool at {} (wrong --data-dir or --config?)",
        spool.display()
    );
    let lock = cfg.data_dir.join("LOCK");
    let Ok(file) = std::fs::File::open(&lock) else {
        return Ok(None);
    };
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "data dir {} is in use by a running fpolicy-bridge: stop the server first, or read /metrics",
            cfg.data_dir.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", lock.display()))
        }
    }
}

fn spool_report(
    cfg: &Config,
    s: &fpolicy_spool::SpoolStats,
    recovery: &fpolicy_spool::Recovery,
) -> serde_json::Value {
    serde_json::json!({
        "dir": cfg.spool_dir(),
        "segments": s.segments,
        "bytes": s.bytes,
        "first_seq": s.first_seq,
        "next_seq": s.next_seq,
        "records": s.records,
        "torn_tail_bytes": recovery.truncated_bytes,
        "lost_records": recovery.lost_records(),
        "damaged_bytes": recovery.damaged_bytes(),
        "damage": recovery.describe(),
        "sinks": s.cursors.iter().map(|(k, v)| (k.clone(), serde_json::json!({"cursor": v, "lag": s.next_seq.saturating_sub(*v)}))).collect::<serde_json::Map<_, _>>(),
    })
}

fn spool_stats(common: &CommonArgs) -> anyhow::Result<()> {
    let cfg = load(common)?;
    let _lock = lock_existing_spool(&cfg)?;
    let (stats, recovery) = fpolicy_spool::Spool::inspect(&app::spool_config(&cfg))?;
    println!(
        "{}",
        serde_json::to_string_pretty(&spool_report(&cfg, &stats, &recovery))?
    );
    Ok(())
}

fn spool_check(common: &CommonArgs) -> anyhow::Result<()> {
    let cfg = load(common)?;
    let _lock = lock_existing_spool(&cfg)?;
    let (stats, recovery) = fpolicy_spool::Spool::inspect(&app::spool_config(&cfg))?;
    for line in recovery.describe() {
        println!("{line}");
    }
    println!(
        "{} records in {} segments; {} damaged bytes, {} records lost, {} torn tail bytes",
        stats.records,
        stats.segments,
        recovery.damaged_bytes(),
        recovery.lost_records(),
        recovery.truncated_bytes
    );
    anyhow::ensure!(
        recovery.damage.is_empty() && recovery.cursors_reset.is_empty(),
        "the spool needs recovery: `fpolicy-bridge spool repair` (or `serve`, which repairs at start) keeps every intact record and moves the damaged bytes to quarantine/"
    );
    println!("ok");
    Ok(())
}

fn spool_repair(common: &CommonArgs) -> anyhow::Result<()> {
    let cfg = load(common)?;
    let _lock = lock_existing_spool(&cfg)?;
    let (spool, recovery) = fpolicy_spool::Spool::open(app::spool_config(&cfg))?;
    for line in recovery.describe() {
        println!("{line}");
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&spool_report(&cfg, &spool.stats(), &recovery))?
    );
    Ok(())
}

fn run_query(args: QueryArgs) -> anyhow::Result<()> {
    let cfg = load(&args.common)?;
    let q = Query {
        from: parse_rfc3339(&args.from)?,
        to: parse_rfc3339(&args.to)?,
        path_prefix: args.path_prefix,
        operations: args.ops,
        limit: args.limit,
    };
    anyhow::ensure!(q.from < q.to, "--from must be before --to");
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let stats = query::run(&cfg.jsonl_dir(), &q, &mut out)
        .with_context(|| format!("cannot read {}", cfg.jsonl_dir().display()))?;
    out.flush()?;
    if stats.skipped > 0 {
        eprintln!("fpolicy-bridge: skipped {} unreadable lines", stats.skipped);
    }
    Ok(())
}

fn routes_test(args: RoutesTestArgs) -> anyhow::Result<()> {
    let cfg = load(&args.common)?;
    cfg.validate()?;
    let router = cfg.router()?;
    let event = fpolicy_event::Event {
        event_id: String::new(),
        operation_type: args.op,
        file_path: args.file_path,
        previous_path: args.previous_path,
        volume_name: args.volume,
        svm_name: args.svm,
        timestamp: String::new(),
        file_size: 0,
        client_ip: None,
        metadata: fpolicy_event::Metadata {
            protocol: args.protocol,
            file_type: Some(args.file_type),
            ..fpolicy_event::Metadata::default()
        },
    };
    let routing = router.route(&event);
    let mut local = Vec::new();
    if cfg.sinks.jsonl.enabled {
        local.push("jsonl");
    }
    if cfg.sinks.stdout.enabled {
        local.push("stdout");
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "routes": routing.routes,
            "sinks": routing.sinks,
            "default": routing.routes.is_empty(),
            "also_every_event": local,
        }))?
    );
    Ok(())
}

/// The `source` and `detail-type` a route's events carry on the bus: those
/// of its first EventBridge sink.
fn source_and_type(cfg: &Config, sinks: &[String]) -> (String, String) {
    cfg.cloud_sinks
        .iter()
        .find(|c| {
            sinks.contains(&c.name) && c.kind == fpolicy_bridge::config::CloudSinkType::Eventbridge
        })
        .map(|c| (c.source.clone(), c.detail_type.clone()))
        .unwrap_or_else(|| ("fsxn.fpolicy".into(), "FPolicy File Operation".into()))
}

fn routes_patterns(common: &CommonArgs) -> anyhow::Result<()> {
    let cfg = load(common)?;
    cfg.validate()?;
    let router = cfg.router()?;
    let mut out = serde_json::Map::new();
    for route in router.routes() {
        let (source, detail_type) = source_and_type(&cfg, &route.sinks);
        let (pattern, warnings) =
            fpolicy_event::route::eventbridge_pattern(route, &source, &detail_type);
        for w in warnings {
            eprintln!("note: {w}");
        }
        out.insert(route.name.clone(), pattern);
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

fn ontap_command(args: OntapArgs) -> anyhow::Result<()> {
    let mut cfg = load(&args.common)?;
    let o = &mut cfg.ontap;
    if let Some(v) = args.cluster_url {
        o.cluster_url = v;
    }
    if let Some(v) = args.username {
        o.username = v;
    }
    if let Some(v) = args.svm {
        o.svm = v;
    }
    if let Some(v) = args.ca_bundle {
        o.ca_bundle = v;
    }
    o.insecure |= args.insecure;
    if let Some(v) = args.policy {
        o.policy = v;
    }
    if let Some(v) = args.engine {
        o.engine = v;
    }
    if let Some(v) = args.event_prefix {
        o.event_prefix = v;
    }
    if let Some(v) = args.port {
        o.port = v;
    }
    if let Some(v) = args.timeout {
        o.timeout_secs = v;
    }
    cfg.validate()?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let control = fpolicy_bridge::ontap::control(&cfg).await?;
        let timeout = std::time::Duration::from_secs(cfg.ontap.connect_timeout_secs);
        let print_changes = |changes: &[String]| {
            if changes.is_empty() {
                println!("no change");
            }
            for c in changes {
                println!("{c}");
            }
        };
        match args.command {
            OntapCommand::Status => {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&control.status().await?)?
                );
            }
            OntapCommand::Register { servers } => {
                let change = if servers.is_empty() {
                    fpolicy_ontap::ServerChange::Keep
                } else {
                    fpolicy_ontap::ServerChange::Add(servers)
                };
                print_changes(&control.register(&change).await?);
                let servers = control
                    .engine()
                    .await?
                    .and_then(|e| e.primary_servers)
                    .unwrap_or_default();
                match control.wait_connected(&servers, timeout).await {
                    Ok(conns) => {
                        for c in conns {
                            println!("{} -> {}: {}", c.node.name, c.server, c.state);
                        }
                    }
                    Err(e) => {
                        eprintln!("fpolicy-bridge: {e}");
                        std::process::exit(3);
                    }
                }
            }
            OntapCommand::AddServer { address } => {
                let s = control
                    .change_servers(&fpolicy_ontap::ServerChange::Add(vec![address]))
                    .await?;
                println!("primary servers: {}", s.join(", "));
            }
            OntapCommand::RemoveServer { address } => {
                let s = control
                    .change_servers(&fpolicy_ontap::ServerChange::Remove(vec![address]))
                    .await?;
                println!("primary servers: {}", s.join(", "));
            }
            OntapCommand::SetServers { addresses } => {
                let s = control
                    .change_servers(&fpolicy_ontap::ServerChange::Set(addresses))
                    .await?;
                println!("primary servers: {}", s.join(", "));
            }
            OntapCommand::Unregister => print_changes(&control.unregister().await?),
        }
        Ok::<_, anyhow::Error>(())
    })
}

fn poll_once(common: &CommonArgs, only: Option<&str>) -> anyhow::Result<()> {
    let cfg = load(common)?;
    cfg.validate()?;
    let polls: Vec<_> = cfg
        .polls
        .iter()
        .filter(|p| only.is_none_or(|n| p.name == n))
        .cloned()
        .collect();
    anyhow::ensure!(
        !polls.is_empty(),
        "no [[poll]] {}in the configuration",
        only.map(|n| format!("named {n:?} ")).unwrap_or_default()
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let (ingest, _rx) = tokio::sync::mpsc::channel(1);
        let ctx = fpolicy_bridge::poll::PollContext {
            ingest_rules: std::sync::Arc::new(fpolicy_bridge::ingest::IngestRules {
                router: cfg.router()?,
                screening: cfg.screening_rules()?,
                recent: None,
            }),
            cfg: std::sync::Arc::new(cfg.clone()),
            ingest,
            metrics: Default::default(),
        };
        for p in &polls {
            let client = fpolicy_poll::s3::client(p.endpoint_url.as_deref()).await;
            let (report, changes) = fpolicy_bridge::poll::run_cycle(&ctx, p, &client, true).await?;
            for c in &changes {
                let o = &c.object;
                println!(
                    "{}",
                    serde_json::json!({
                        "poll": p.name,
                        "change": format!("{:?}", c.kind).to_lowercase(),
                        "key": o.key,
                        "file_path": fpolicy_poll::state::file_path(&p.path_prefix, &o.key),
                        "size": o.size,
                        "etag": o.etag,
                        "last_modified": fpolicy_event::time::rfc3339(o.last_modified.saturating_mul(1_000_000_000)),
                    })
                );
            }
            eprintln!(
                "poll {}: {} objects in {} pages; {} new, {} changed, {} gone{}",
                p.name,
                report.objects,
                report.pages,
                report.created,
                report.written,
                report.deleted,
                if report.baseline { " (no stored state yet: serve would take these as the baseline)" } else { "" }
            );
        }
        Ok::<_, anyhow::Error>(())
    })
}

fn health(args: &HealthArgs) -> anyhow::Result<()> {
    let body = fpolicy_bridge::admin::probe(
        args.admin,
        &args.path,
        std::time::Duration::from_secs(args.timeout.max(1)),
    )?;
    println!("{body}");
    Ok(())
}

/// `Legal-compliance` → `LegalCompliance` (a CloudFormation logical id).
fn logical_id(name: &str) -> String {
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn routes_cloudformation(common: &CommonArgs, rule_match: RuleMatch) -> anyhow::Result<()> {
    let cfg = load(common)?;
    cfg.validate()?;
    let router = cfg.router()?;
    let mut resources = serde_json::Map::new();
    let mut rule_names = std::collections::HashSet::new();
    for route in router.routes() {
        let (source, detail_type) = source_and_type(&cfg, &route.sinks);
        let pattern = match rule_match {
            RuleMatch::Routes => serde_json::json!({
                "source": [source],
                "detail-type": [detail_type],
                "detail": {"metadata": {"routes": [route.name]}}
            }),
            RuleMatch::Conditions => {
                let (pattern, warnings) =
                    fpolicy_event::route::eventbridge_pattern(route, &source, &detail_type);
                for w in warnings {
                    eprintln!("note: {w}");
                }
                pattern
            }
        };
        let id = logical_id(&route.name);
        // Named, so a StackSets execution role scoped to the prefix may
        // create them (rule names: [.-_A-Za-z0-9], at most 64).
        let rule_name: String = route
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                    c
                } else {
                    '-'
                }
            })
            .take(47)
            .collect();
        if !rule_names.insert(rule_name.clone()) {
            anyhow::bail!("two routes give the rule name {rule_name:?}: rename one");
        }
        let logical = format!("Route{id}Rule");
        if resources.contains_key(&logical) {
            anyhow::bail!("two routes give the logical id {logical}: rename one");
        }
        resources.insert(
            logical,
            serde_json::json!({
                "Type": "AWS::Events::Rule",
                "Properties": {
                    "Name": {"Fn::Sub": format!("${{RuleNamePrefix}}-{rule_name}")},
                    "Description": format!("fpolicy-bridge route {}", route.name),
                    "EventBusName": {"Ref": "EventBusName"},
                    "EventPattern": pattern,
                    "State": "ENABLED",
                    "Targets": [{"Id": id, "Arn": {"Ref": "TargetArn"}}]
                }
            }),
        );
    }
    let template = serde_json::json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "fpolicy-bridge use-case rules, generated by `fpolicy-bridge routes cloudformation` from the bridge's [[route]]s; do not edit by hand.",
        "Parameters": {
            "EventBusName": {"Type": "String", "Description": "The bus fpolicy-bridge puts events on."},
            "TargetArn": {"Type": "String", "Description": "Where matching events go (a queue, a function, ...)."},
            "RuleNamePrefix": {"Type": "String", "Default": "fpolicy-bridge", "AllowedPattern": "^[a-z][a-z0-9-]{1,15}$", "Description": "Rule names start with it (the StackSets execution role is scoped to it)."}
        },
        "Resources": resources
    });
    // Compact: the generated template stays under the 51,200-byte inline limit.
    println!("{}", serde_json::to_string(&template)?);
    Ok(())
}
