//! `query`: events from the JSON Lines files.

use std::io::Write;

use anyhow::Context;
use fpolicy_bridge::query::{self, Query};
use fpolicy_event::Operation;
use fpolicy_event::time::parse_rfc3339;

use super::{CommonArgs, load};

#[derive(clap::Args)]
pub struct QueryArgs {
    /// Start (inclusive): RFC 3339 or YYYY-MM-DD.
    #[arg(long)]
    pub from: String,
    /// End (exclusive): RFC 3339 or YYYY-MM-DD.
    #[arg(long)]
    pub to: String,
    /// Only paths starting with this (file_path or previous_path).
    #[arg(long)]
    pub path_prefix: Option<String>,
    /// Only these operations (repeatable).
    #[arg(long = "op")]
    pub ops: Vec<Operation>,
    /// Stop after this many events.
    #[arg(long)]
    pub limit: Option<u64>,
}

pub fn run(common: &CommonArgs, args: QueryArgs) -> anyhow::Result<()> {
    let cfg = load(common)?;
    let q = Query {
        from: parse_rfc3339(&args.from)?,
        to: parse_rfc3339(&args.to)?,
        path_prefix: args.path_prefix,
        operations: args.ops,
        limit: args.limit,
    };
    anyhow::ensure!(q.from < q.to, "--from must be before --to");
    anyhow::ensure!(
        cfg.sinks.jsonl.format == fpolicy_event::Format::Fpolicy,
        "sinks.jsonl.format is {:?}: query reads the fpolicy format (the default) only; read {} with a tool for that format",
        cfg.sinks.jsonl.format.as_str(),
        cfg.jsonl_dir().display()
    );
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let dir = cfg.jsonl_dir();
    if !dir.exists() {
        anyhow::bail!(
            "no JSON Lines files at {}: they are written by serve while [sinks.jsonl] is enabled (the default; serve --sink stdout turns them off), under --data-dir or sinks.jsonl.dir",
            dir.display()
        );
    }
    let stats =
        query::run(&dir, &q, &mut out).with_context(|| format!("cannot read {}", dir.display()))?;
    out.flush()?;
    if stats.skipped > 0 {
        eprintln!("fpolicy-bridge: skipped {} unreadable lines", stats.skipped);
    }
    Ok(())
}
