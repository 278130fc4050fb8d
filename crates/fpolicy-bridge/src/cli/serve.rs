//! `serve`: run the server until SIGTERM or SIGINT.

use anyhow::Context;
use fpolicy_bridge::app;
use fpolicy_bridge::config::{LogFormat, Overrides};

use super::{CommonArgs, init_logging, load};

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address ONTAP connects to [default: 0.0.0.0:9898].
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<std::net::SocketAddr>,
    /// Admin HTTP address (/metrics, /healthz, /readyz) [default: 127.0.0.1:9899].
    #[arg(long, value_name = "ADDR:PORT")]
    pub admin_listen: Option<std::net::SocketAddr>,
    /// Write-complete quiet window in seconds; 0 turns coalescing off [default: 5].
    #[arg(long, value_name = "SECS", value_parser = fpolicy_bridge::config::duration::parse_duration)]
    pub write_complete_delay: Option<std::time::Duration>,
    /// `stdout`: print events instead of writing JSON Lines files.
    #[arg(long, value_parser = ["stdout"])]
    pub sink: Option<String>,
    /// Log format: text or json [default: text].
    #[arg(long, value_parser = ["text", "json"])]
    pub log_format: Option<String>,
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

pub fn run(common: &CommonArgs, args: ServeArgs) -> anyhow::Result<()> {
    // Signal handlers first, before anything slow (see `Signals`).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("fpolicy-rt")
        .build()?;
    let signals = {
        let _enter = rt.enter();
        Signals::install().context("cannot install signal handlers")?
    };
    let mut cfg = load(common)?;
    cfg.apply(&Overrides {
        listen: args.listen,
        admin_listen: args.admin_listen,
        write_complete_delay: args.write_complete_delay,
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
    if args.sink.is_some() {
        tracing::info!(
            data_dir = %cfg.data_dir.display(),
            "--sink stdout: no JSON Lines files, but events are still spooled in data_dir; a later serve with JSON Lines on writes them to the audit files too (give --data-dir a scratch directory to keep a demo apart)"
        );
    }
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
