//! `ontap status|register|add-server|remove-server|set-servers|unregister`.

use std::path::PathBuf;

use clap::Subcommand;

use super::{CommonArgs, Exit, load};

#[derive(clap::Args)]
pub struct OntapArgs {
    /// Cluster management URL (ontap.cluster_url).
    #[arg(long, global = true)]
    pub cluster_url: Option<String>,
    /// REST user (ontap.username); the password comes from ontap.password_env / password_file.
    #[arg(long, global = true)]
    pub username: Option<String>,
    /// SVM name (ontap.svm).
    #[arg(long, global = true)]
    pub svm: Option<String>,
    /// CA bundle of the cluster certificate (ontap.ca_bundle).
    #[arg(long, global = true)]
    pub ca_bundle: Option<PathBuf>,
    /// Do not verify the cluster certificate (logged as a warning).
    #[arg(long, global = true)]
    pub insecure: bool,
    /// FPolicy policy name (ontap.policy).
    #[arg(long, global = true)]
    pub policy: Option<String>,
    /// FPolicy engine name (ontap.engine).
    #[arg(long, global = true)]
    pub engine: Option<String>,
    /// Event name prefix (ontap.event_prefix).
    #[arg(long, global = true)]
    pub event_prefix: Option<String>,
    /// Port ONTAP connects to (ontap.port; default: server.listen's port).
    #[arg(long, global = true)]
    pub port: Option<u16>,
    /// Seconds to wait for ONTAP (ontap.timeout_secs).
    #[arg(long, global = true)]
    pub timeout: Option<u64>,
    #[command(subcommand)]
    pub command: OntapCommand,
}

#[derive(Subcommand)]
pub enum OntapCommand {
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

pub fn run(common: &CommonArgs, args: OntapArgs) -> anyhow::Result<()> {
    let mut cfg = load(common)?;
    apply(&mut cfg.ontap, &args);
    cfg.validate()?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let control = fpolicy_bridge::ontap::control(&cfg).await?;
        let timeout = cfg.ontap.connect_timeout;
        run_command(&control, args.command, timeout).await
    })
}

/// The command line wins over the configuration file.
fn apply(o: &mut fpolicy_bridge::config::OntapSettings, args: &OntapArgs) {
    let set = |field: &mut String, v: &Option<String>| {
        if let Some(v) = v {
            field.clone_from(v);
        }
    };
    set(&mut o.cluster_url, &args.cluster_url);
    set(&mut o.username, &args.username);
    set(&mut o.svm, &args.svm);
    set(&mut o.policy, &args.policy);
    set(&mut o.engine, &args.engine);
    set(&mut o.event_prefix, &args.event_prefix);
    if let Some(v) = &args.ca_bundle {
        o.ca_bundle.clone_from(v);
    }
    o.insecure |= args.insecure;
    if let Some(v) = args.port {
        o.port = v;
    }
    if let Some(v) = args.timeout {
        o.timeout = std::time::Duration::from_secs(v);
    }
}

fn print_changes(changes: &[String]) {
    if changes.is_empty() {
        println!("no change");
    }
    for c in changes {
        println!("{c}");
    }
}

async fn run_command(
    control: &fpolicy_ontap::Control,
    command: OntapCommand,
    timeout: std::time::Duration,
) -> anyhow::Result<()> {
    use fpolicy_ontap::ServerChange;
    let servers = |s: Vec<String>| println!("primary servers: {}", s.join(", "));
    match command {
        OntapCommand::Status => {
            println!(
                "{}",
                serde_json::to_string_pretty(&control.status().await?)?
            );
        }
        OntapCommand::Register { servers } => register(control, servers, timeout).await?,
        OntapCommand::AddServer { address } => servers(
            control
                .change_servers(&ServerChange::Add(vec![address]))
                .await?,
        ),
        OntapCommand::RemoveServer { address } => servers(
            control
                .change_servers(&ServerChange::Remove(vec![address]))
                .await?,
        ),
        OntapCommand::SetServers { addresses } => servers(
            control
                .change_servers(&ServerChange::Set(addresses))
                .await?,
        ),
        OntapCommand::Unregister => print_changes(&control.unregister().await?),
    }
    Ok(())
}

/// Registers, then waits until every node is connected: exit 3 when they
/// are not within the timeout.
async fn register(
    control: &fpolicy_ontap::Control,
    servers: Vec<String>,
    timeout: std::time::Duration,
) -> anyhow::Result<()> {
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
    let conns = control
        .wait_connected(&servers, timeout)
        .await
        .map_err(|e| Exit {
            code: 3,
            message: e.to_string(),
        })?;
    for c in conns {
        println!("{} -> {}: {}", c.node.name, c.server, c.state);
    }
    Ok(())
}
