//! The `fpolicy-bridge` subcommands, one module each. `--config` and
//! `--data-dir` are global: accepted before or after the subcommand.

pub mod config;
pub mod health;
pub mod identity;
pub mod ontap;
pub mod poll;
pub mod query;
pub mod routes;
pub mod serve;
pub mod spool;
pub mod top;

use std::path::PathBuf;

use fpolicy_bridge::config::{Config, LogFormat, Overrides};

#[derive(clap::Args)]
pub struct CommonArgs {
    /// TOML configuration file.
    #[arg(long, short = 'c', env = "FPOLICY_BRIDGE_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Data directory (spool and JSON Lines files).
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
}

pub fn load(common: &CommonArgs) -> anyhow::Result<Config> {
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
    // With spool.shared_root, the spool commands look at this instance's
    // directory there.
    fpolicy_bridge::shared_spool::resolve_instance_id(&mut cfg);
    Ok(cfg)
}

pub fn init_logging(cfg: &Config) {
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

/// An error that ends the process with an exit code of its own (1 is
/// every other error).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Exit {
    pub code: u8,
    pub message: String,
}
