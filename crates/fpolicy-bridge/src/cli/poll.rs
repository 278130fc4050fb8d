//! `poll once`: one cycle of every (or one) `[[poll]]`, as a dry run.

use clap::Subcommand;

use super::{CommonArgs, load};

#[derive(Subcommand)]
pub enum PollCommand {
    /// Run one cycle now and print what it found (a dry run: the stored
    /// state and the spool are not touched, so it is safe while serving).
    Once {
        /// Only this [[poll]].
        #[arg(long)]
        name: Option<String>,
    },
}

pub fn run(common: &CommonArgs, command: PollCommand) -> anyhow::Result<()> {
    match command {
        PollCommand::Once { name } => poll_once(common, name.as_deref()),
    }
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
            ingest_rules: std::sync::Arc::new(fpolicy_bridge::ingest::IngestRules::offline(&cfg)?),
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
