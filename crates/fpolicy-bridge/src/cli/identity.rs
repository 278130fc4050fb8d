//! `identity sync|lookup`: the "test connection" of `[identity]`.

use clap::Subcommand;
use fpolicy_bridge::identity::IdentitySources;
use fpolicy_event::users::UserRef;

use super::{CommonArgs, load};

#[derive(Subcommand)]
pub enum IdentityCommand {
    /// Run one sync from every configured source and print what it read.
    Sync,
    /// Print the name an event with this SID or UID would get (after one
    /// sync).
    Lookup {
        /// A SID (S-1-5-21-…) or a UID.
        user: String,
    },
}

pub fn run(common: &CommonArgs, command: IdentityCommand) -> anyhow::Result<()> {
    let cfg = load(common)?;
    cfg.validate()?;
    let sources = IdentitySources::from_config(&cfg)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let synced = rt.block_on(sources.sync());
    match command {
        IdentityCommand::Sync => {
            let (_, report) = synced.map_err(|e| anyhow::anyhow!("identity sync failed: {e}"))?;
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "users": report.table_users,
                    "directory_users": report.directory.map(|d| d.0),
                    "directory_entries_skipped": report.directory.map(|d| d.1),
                    "ontap_local_users": report.ontap_local_users,
                    "fixed": report.fixed,
                    "rejected": report.rejected,
                }))?
            );
            Ok(())
        }
        IdentityCommand::Lookup { user } => {
            let (sid, uid) = match UserRef::parse(&user).map_err(anyhow::Error::msg)? {
                UserRef::Sid(s) => (Some(s), None),
                UserRef::Uid(u) => (None, Some(u)),
                UserRef::Name(_) => anyhow::bail!("{user:?}: give a SID (S-1-…) or a UID"),
            };
            let table = match synced {
                Ok((table, _)) => table,
                Err(e) => {
                    eprintln!(
                        "warning: identity sync failed ({e}); looking up in the fixed and well-known entries only"
                    );
                    sources.initial_table()
                }
            };
            let found = table.lookup(sid.as_deref(), uid);
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "sid": sid,
                    "uid": uid,
                    "user_name": found.map(|u| &*u.name),
                    "user_principal": found.and_then(|u| u.principal.as_deref()),
                }))?
            );
            anyhow::ensure!(
                found.is_some(),
                "{user}: unknown (events leave user_name out)"
            );
            Ok(())
        }
    }
}
