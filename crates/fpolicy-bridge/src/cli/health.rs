//! `health`: ask a running server's admin port (the container health check).

use super::{CommonArgs, load};

/// The configured admin address; a wildcard one is asked on loopback.
pub fn admin_address(common: &CommonArgs) -> anyhow::Result<std::net::SocketAddr> {
    if common.config.is_none() && std::env::var_os("FPOLICY_BRIDGE_CONFIG_TOML").is_none() {
        return Ok(std::net::SocketAddr::from(([127, 0, 0, 1], 9899)));
    }
    let cfg = load(common)?;
    let mut addr = cfg.admin.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    Ok(addr)
}

#[derive(clap::Args)]
pub struct HealthArgs {
    /// The server's admin address.
    /// [default: admin.listen of --config (a wildcard address asked on
    /// loopback), else 127.0.0.1:9899]
    #[arg(long)]
    pub admin: Option<std::net::SocketAddr>,
    /// What to ask: `/readyz?scope=server` is "takes events" (listening,
    /// spool open); `/readyz` also needs every sink, poll and the ONTAP
    /// registration to be working.
    #[arg(long, default_value = "/readyz?scope=server")]
    pub path: String,
    /// Seconds per step (connect, send, receive).
    #[arg(long, default_value_t = 3)]
    pub timeout: u64,
}

pub fn run(common: &CommonArgs, args: &HealthArgs) -> anyhow::Result<()> {
    let admin = match args.admin {
        Some(a) => a,
        None => admin_address(common)?,
    };
    let body = fpolicy_bridge::admin::probe(
        admin,
        &args.path,
        std::time::Duration::from_secs(args.timeout.max(1)),
    )?;
    println!("{body}");
    Ok(())
}
