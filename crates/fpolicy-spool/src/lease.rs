//! Leases on spools kept in a shared directory (Amazon EFS, NFS), so that
//! a spool outlives the instance that wrote it: another instance adopts
//! an orphan and delivers it.
//!
//! # Layout
//!
//! ```text
//! <root>/<instance id>/                 an instance's own spool
//! <root>/.adopted/<instance id>+<generation>+<nonce>/  a spool taken over, being drained
//! <spool>/lease.<generation, 20 digits>   one file per generation:
//!                                         "owner=<id>\nnonce=<n>\nbeat=<n>\n"
//! ```
//!
//! # Protocol
//!
//! - The **current lease** of a spool is its highest generation; its owner
//!   holds the spool. Only the holder writes to (or drains) the spool.
//! - **Claiming** is creating the next generation's file exclusively
//!   (`O_EXCL`, atomic on local file systems and on NFSv4, which EFS
//!   speaks): of any number of instances that try, exactly one succeeds.
//! - **Renewing** rewrites the holder's own lease file with the next beat
//!   (write a temporary file, rename it over). A holder that finds a
//!   higher generation, or its spool moved away, has been **fenced**: it
//!   must stop writing at once.
//! - **Expiry** is seen by observers, on their own monotonic clock: a
//!   lease whose (generation, nonce, beat) did not change for `lease` is
//!   expired. The nonce is random per claim, so a spool that was replaced
//!   by a new one of the same name never looks unchanged.
//!   No wall clocks are compared, so clock offsets between machines do not
//!   matter; a holder that renews every `lease / 3` is never taken over
//!   while clock rates differ by less than a factor of 2.
//! - **Start-up**: an instance claims its own spool (the next generation);
//!   if another instance holds it, it waits until that lease expires
//!   (then claims it back) or the spool moves away (then starts a new one).
//! - **Adoption**: an instance that sees a foreign spool's lease expire
//!   claims it, moves a live spool to `.adopted/` (so its instance id is
//!   free for a restart), drains it and removes it.
//! - **Advisory lock** (where the file system has locks; EFS has NFSv4.1
//!   locks): the process using a spool also holds `holder.lock`
//!   ([`FsLeaseStore::lock`]). A previous holder that stalled rather than
//!   died still holds it, so an adopter waits until it stops.
//!
//! The decisions are written against [`LeaseStore`], so the same code runs
//! on the file system ([`FsLeaseStore`]) and in the model test
//! (`tests/lease_model.rs`), which checks the protocol over random
//! interleavings of instances, crashes at every step and skewed clocks.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where adopted spools go, under the shared root.
pub const ADOPTED_DIR: &str = ".adopted";
/// The advisory lock file in a spool, held by the process using it.
pub const LOCK_FILE: &str = "holder.lock";

/// One lease generation of a spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    pub generation: u64,
    pub owner: String,
    /// Random per claim: tells two claims of the same generation apart.
    pub nonce: u64,
    /// Renewals so far (observers watch it change).
    pub beat: u64,
}

/// Storage of spools and their leases.
pub trait LeaseStore {
    /// Every spool (own and adopted), as names relative to the root.
    fn spools(&self) -> io::Result<Vec<String>>;
    /// The current (highest) lease of a spool, `None` when it has none
    /// yet; `NotFound` when the spool does not exist.
    fn current(&self, spool: &str) -> io::Result<Option<LeaseRecord>>;
    /// Creates the spool's directory (no error if it exists).
    fn create_spool(&self, spool: &str) -> io::Result<()>;
    /// Creates lease `lease.generation` exclusively; `false` if it exists.
    fn create_lease(&self, spool: &str, lease: &LeaseRecord) -> io::Result<bool>;
    /// Replaces the content of lease `lease.generation` (a renewal).
    fn rewrite_lease(&self, spool: &str, lease: &LeaseRecord) -> io::Result<()>;
    /// Moves a spool to `.adopted/<name>+<generation>+<nonce>`; returns
    /// its new name.
    fn retire(&self, spool: &str, lease: &LeaseRecord) -> io::Result<String>;
}

/// A spool this instance holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub spool: String,
    pub generation: u64,
    pub nonce: u64,
    pub beat: u64,
}

/// What claiming an instance's own spool found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnClaim {
    Held(Held),
    /// Another instance holds it (adopting it, or a second instance runs
    /// with the same id): try again later.
    Busy {
        owner: String,
    },
}

/// What a renewal found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    Renewed,
    /// Another instance took the spool over: stop writing to it now.
    Fenced,
}

/// Whether `spool` is an adopted one (under `.adopted/`).
pub fn is_adopted(spool: &str) -> bool {
    spool.starts_with(ADOPTED_DIR)
}

/// The name of an adopted spool.
pub fn retired_name(spool: &str, lease: &LeaseRecord) -> String {
    format!(
        "{ADOPTED_DIR}/{spool}+{}+{:016x}",
        lease.generation, lease.nonce
    )
}

/// The instance a spool belonged to: `a` for `a` and `.adopted/a+7+…`.
pub fn original_owner(spool: &str) -> &str {
    match spool
        .strip_prefix(ADOPTED_DIR)
        .and_then(|s| s.strip_prefix('/'))
    {
        Some(rest) => rest.split_once('+').map_or(rest, |(id, _)| id),
        None => spool,
    }
}

/// Whether `id` can name an instance's spool (a directory name without
/// `/` and `+`, not hidden).
pub fn valid_instance_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Observers' view of other spools' leases: when each last changed, on
/// the observer's monotonic clock (milliseconds).
#[derive(Debug, Clone, Default)]
pub struct Watch {
    seen: HashMap<String, ((u64, u64, u64), u64)>,
}

impl Watch {
    /// Records what `spool`'s lease is now (`None`: no lease file yet) and
    /// says whether it has stayed the same for at least `lease`.
    pub fn expired(
        &mut self,
        spool: &str,
        lease: Option<&LeaseRecord>,
        now_ms: u64,
        lease_ms: u64,
    ) -> bool {
        let key = lease.map_or((0, 0, 0), |l| (l.generation, l.nonce, l.beat));
        let entry = self.seen.entry(spool.to_owned()).or_insert((key, now_ms));
        if entry.0 != key {
            *entry = (key, now_ms);
        }
        now_ms.saturating_sub(entry.1) >= lease_ms
    }

    /// Forgets spools that no longer exist.
    pub fn retain(&mut self, present: &[String]) {
        self.seen.retain(|k, _| present.iter().any(|p| p == k));
    }
}

fn not_found(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
}

/// Start-up: claims the instance's own spool `id` (creating it when it
/// does not exist). A foreign holder is waited for until its lease expires
/// (`watch`) or the spool moves away.
/// `nonce` is a fresh random number.
pub fn claim_own(
    store: &dyn LeaseStore,
    id: &str,
    watch: &mut Watch,
    now_ms: u64,
    lease_ms: u64,
    nonce: u64,
) -> io::Result<OwnClaim> {
    let current = match store.current(id) {
        Ok(c) => c,
        Err(e) if not_found(&e) => {
            store.create_spool(id)?;
            None
        }
        Err(e) => return Err(e),
    };
    if let Some(l) = &current
        && l.owner != id
        && !watch.expired(id, Some(l), now_ms, lease_ms)
    {
        return Ok(OwnClaim::Busy {
            owner: l.owner.clone(),
        });
    }
    let next = LeaseRecord {
        generation: current.as_ref().map_or(1, |l| l.generation + 1),
        owner: id.to_owned(),
        nonce,
        beat: 0,
    };
    match store.create_lease(id, &next) {
        Ok(true) => Ok(OwnClaim::Held(Held {
            spool: id.to_owned(),
            generation: next.generation,
            nonce,
            beat: 0,
        })),
        Ok(false) => Ok(OwnClaim::Busy {
            owner: store
                .current(id)
                .ok()
                .flatten()
                .map_or_else(String::new, |l| l.owner),
        }),
        // Moved away between the read and the claim: start afresh next time.
        Err(e) if not_found(&e) => Ok(OwnClaim::Busy {
            owner: String::new(),
        }),
        Err(e) => Err(e),
    }
}

/// Renews a held lease, or finds that it was taken over.
pub fn renew(store: &dyn LeaseStore, id: &str, held: &mut Held) -> io::Result<Renewal> {
    match store.current(&held.spool) {
        Ok(Some(l))
            if l.generation == held.generation && l.owner == id && l.nonce == held.nonce =>
        {
            let next = LeaseRecord {
                generation: held.generation,
                owner: id.to_owned(),
                nonce: held.nonce,
                beat: held.beat + 1,
            };
            match store.rewrite_lease(&held.spool, &next) {
                Ok(()) => {
                    held.beat = next.beat;
                    Ok(Renewal::Renewed)
                }
                Err(e) if not_found(&e) => Ok(Renewal::Fenced),
                Err(e) => Err(e),
            }
        }
        Ok(_) => Ok(Renewal::Fenced),
        Err(e) if not_found(&e) => Ok(Renewal::Fenced),
        Err(e) => Err(e),
    }
}

/// The foreign spools whose leases expired (on `watch`), oldest first by
/// name; `own` is excluded.
pub fn orphans(
    store: &dyn LeaseStore,
    own: &str,
    watch: &mut Watch,
    now_ms: u64,
    lease_ms: u64,
) -> io::Result<Vec<(String, Option<LeaseRecord>)>> {
    let mut spools = store.spools()?;
    spools.sort();
    watch.retain(&spools);
    let mut out = Vec::new();
    for s in spools {
        if s == own {
            continue;
        }
        let lease = match store.current(&s) {
            Ok(l) => l,
            Err(e) if not_found(&e) => continue,
            Err(e) => return Err(e),
        };
        if watch.expired(&s, lease.as_ref(), now_ms, lease_ms) {
            out.push((s, lease));
        }
    }
    Ok(out)
}

/// Takes over an orphan whose lease was `seen`: claims the next
/// generation and, for an instance's own spool, moves it to `.adopted/`.
/// `None` when another instance was first. `nonce` is a fresh random
/// number.
pub fn adopt(
    store: &dyn LeaseStore,
    id: &str,
    spool: &str,
    seen: Option<&LeaseRecord>,
    nonce: u64,
) -> io::Result<Option<Held>> {
    let next = LeaseRecord {
        generation: seen.map_or(1, |l| l.generation + 1),
        owner: id.to_owned(),
        nonce,
        beat: 0,
    };
    match store.create_lease(spool, &next) {
        Ok(true) => {}
        Ok(false) => return Ok(None),
        Err(e) if not_found(&e) => return Ok(None),
        Err(e) => return Err(e),
    }
    let spool = if is_adopted(spool) {
        spool.to_owned()
    } else {
        store.retire(spool, &next)?
    };
    Ok(Some(Held {
        spool,
        generation: next.generation,
        nonce,
        beat: 0,
    }))
}

/// Lease files on a file system under `root`.
#[derive(Debug, Clone)]
pub struct FsLeaseStore {
    root: PathBuf,
}

fn lease_name(generation: u64) -> String {
    format!("lease.{generation:020}")
}

fn parse_lease(generation: u64, text: &str) -> LeaseRecord {
    let mut l = LeaseRecord {
        generation,
        owner: String::new(),
        nonce: 0,
        beat: 0,
    };
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("owner=") {
            l.owner = v.to_owned();
        } else if let Some(v) = line.strip_prefix("nonce=") {
            l.nonce = v.parse().unwrap_or(0);
        } else if let Some(v) = line.strip_prefix("beat=") {
            l.beat = v.parse().unwrap_or(0);
        }
    }
    l
}

fn lease_text(l: &LeaseRecord) -> String {
    format!("owner={}\nnonce={}\nbeat={}\n", l.owner, l.nonce, l.beat)
}

impl FsLeaseStore {
    pub fn new(root: impl Into<PathBuf>) -> FsLeaseStore {
        FsLeaseStore { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of a spool.
    pub fn path(&self, spool: &str) -> PathBuf {
        self.root.join(spool)
    }

    /// Removes a drained spool (the caller holds its lease).
    pub fn remove(&self, spool: &str) -> io::Result<()> {
        fs::remove_dir_all(self.path(spool))
    }

    /// Takes the advisory lock of a spool (`holder.lock`, `flock`; on NFS
    /// an NFSv4 lock that the server releases when the client is gone),
    /// held until the file is dropped. `Ok(None)` while another process
    /// holds it: a previous holder that is stalled, not dead, keeps it, so
    /// an adopter waits for it to stop. Where the file system has no locks
    /// (`ENOLCK`, unsupported), returns the file unlocked: the lease alone
    /// decides.
    pub fn lock(&self, spool: &str) -> io::Result<Option<fs::File>> {
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.path(spool).join(LOCK_FILE))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(file)),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e))
                if e.kind() == io::ErrorKind::Unsupported
                    || e.raw_os_error() == Some(libc::ENOLCK) =>
            {
                Ok(Some(file))
            }
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

impl LeaseStore for FsLeaseStore {
    fn spools(&self) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        let names = |dir: &Path| -> io::Result<Vec<String>> {
            match fs::read_dir(dir) {
                Ok(d) => Ok(d
                    .filter_map(Result::ok)
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|n| !n.starts_with('.'))
                    .collect()),
                Err(e) if not_found(&e) => Ok(Vec::new()),
                Err(e) => Err(e),
            }
        };
        out.extend(names(&self.root)?);
        out.extend(
            names(&self.root.join(ADOPTED_DIR))?
                .into_iter()
                .map(|n| format!("{ADOPTED_DIR}/{n}")),
        );
        Ok(out)
    }

    fn current(&self, spool: &str) -> io::Result<Option<LeaseRecord>> {
        let dir = self.path(spool);
        let mut best: Option<u64> = None;
        for e in fs::read_dir(&dir)? {
            let name = e?.file_name();
            let Some(generation) = name
                .to_str()
                .and_then(|n| n.strip_prefix("lease."))
                .and_then(|g| g.parse::<u64>().ok())
            else {
                continue;
            };
            best = best.max(Some(generation));
        }
        let Some(generation) = best else {
            return Ok(None);
        };
        // A lease file is created empty and filled right after; an empty
        // or half-written one still names its generation.
        let text = fs::read_to_string(dir.join(lease_name(generation))).unwrap_or_default();
        Ok(Some(parse_lease(generation, &text)))
    }

    fn create_spool(&self, spool: &str) -> io::Result<()> {
        fs::create_dir_all(self.path(spool))?;
        sync_dir(&self.root)
    }

    fn create_lease(&self, spool: &str, lease: &LeaseRecord) -> io::Result<bool> {
        let dir = self.path(spool);
        let mut f = match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dir.join(lease_name(lease.generation)))
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(e),
        };
        f.write_all(lease_text(lease).as_bytes())?;
        f.sync_all()?;
        sync_dir(&dir)?;
        Ok(true)
    }

    fn rewrite_lease(&self, spool: &str, lease: &LeaseRecord) -> io::Result<()> {
        let dir = self.path(spool);
        let target = dir.join(lease_name(lease.generation));
        // Only the holder renews, and only an existing file.
        fs::metadata(&target)?;
        let tmp = dir.join(format!("{}.tmp", lease_name(lease.generation)));
        let mut f = fs::File::create(&tmp)?;
        f.write_all(lease_text(lease).as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, &target)?;
        Ok(())
    }

    fn retire(&self, spool: &str, lease: &LeaseRecord) -> io::Result<String> {
        let adopted = self.root.join(ADOPTED_DIR);
        fs::create_dir_all(&adopted)?;
        let name = retired_name(spool, lease);
        fs::rename(self.path(spool), self.root.join(&name))?;
        sync_dir(&self.root)?;
        sync_dir(&adopted)?;
        Ok(name)
    }
}

/// A lease period as milliseconds.
pub fn millis(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_advisory_lock_is_held_until_dropped_and_moves_with_the_spool() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsLeaseStore::new(dir.path());
        store.create_spool("a").unwrap();
        let held = store.lock("a").unwrap().expect("free");
        assert!(store.lock("a").unwrap().is_none(), "held by the first");
        let moved = store
            .retire(
                "a",
                &LeaseRecord {
                    generation: 2,
                    owner: "b".into(),
                    nonce: 3,
                    beat: 0,
                },
            )
            .unwrap();
        assert!(
            store.lock(&moved).unwrap().is_none(),
            "still held after the move"
        );
        drop(held);
        assert!(store.lock(&moved).unwrap().is_some());
    }

    #[test]
    fn names_of_adopted_spools_say_whose_they_were() {
        assert_eq!(original_owner("a"), "a");
        assert_eq!(
            original_owner(".adopted/task-1.7+3+00000000000000ff"),
            "task-1.7"
        );
        assert!(is_adopted(".adopted/task-1.7+3+00000000000000ff"));
        assert!(valid_instance_id("ip-10-0-0-5.ec2.internal"));
        assert!(!valid_instance_id("a+b") && !valid_instance_id(".x") && !valid_instance_id("a/b"));
        assert!(!is_adopted("task-1"));
    }

    #[test]
    fn two_adopters_of_an_adopted_spool_cannot_both_win() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsLeaseStore::new(dir.path());
        let spool = retired_name(
            "a",
            &LeaseRecord {
                generation: 2,
                owner: "z".into(),
                nonce: 1,
                beat: 0,
            },
        );
        store.create_spool(&spool).unwrap();
        let dead = LeaseRecord {
            generation: 2,
            owner: "z".into(),
            nonce: 1,
            beat: 4,
        };
        assert!(store.create_lease(&spool, &dead).unwrap());
        let (mut wb, mut wc) = (Watch::default(), Watch::default());
        for w in [&mut wb, &mut wc] {
            assert!(orphans(&store, "x", w, 0, 100).unwrap().is_empty());
        }
        let b = orphans(&store, "b", &mut wb, 100, 100).unwrap();
        let c = orphans(&store, "c", &mut wc, 100, 100).unwrap();
        assert_eq!((b.len(), c.len()), (1, 1));
        let won_b = adopt(&store, "b", &b[0].0, b[0].1.as_ref(), 7).unwrap();
        let won_c = adopt(&store, "c", &c[0].0, c[0].1.as_ref(), 8).unwrap();
        assert_eq!(
            won_b.map(|h| (h.spool, h.generation)),
            Some((spool.clone(), 3))
        );
        assert!(won_c.is_none(), "the second claim of generation 3 fails");
        assert_eq!(store.current(&spool).unwrap().unwrap().owner, "b");
    }

    #[test]
    fn the_file_system_store_claims_once_renews_and_retires() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsLeaseStore::new(dir.path());
        let mut watch = Watch::default();
        let OwnClaim::Held(mut a) = claim_own(&store, "a", &mut watch, 0, 30_000, 11).unwrap()
        else {
            panic!("a claims its new spool");
        };
        assert_eq!((a.spool.as_str(), a.generation), ("a", 1));
        assert_eq!(renew(&store, "a", &mut a).unwrap(), Renewal::Renewed);
        assert_eq!(store.current("a").unwrap().unwrap().beat, 1);
        // b sees a's lease change, then not change for a lease period.
        let mut b_watch = Watch::default();
        assert!(
            orphans(&store, "b", &mut b_watch, 0, 30_000)
                .unwrap()
                .is_empty()
        );
        let found = orphans(&store, "b", &mut b_watch, 30_000, 30_000).unwrap();
        assert_eq!(found.len(), 1);
        let held = adopt(&store, "b", &found[0].0, found[0].1.as_ref(), 0xab)
            .unwrap()
            .unwrap();
        assert_eq!(held.spool, ".adopted/a+2+00000000000000ab");
        assert!(
            dir.path()
                .join(&held.spool)
                .join("lease.00000000000000000002")
                .exists()
        );
        // A second adopter of the same sighting loses.
        assert!(
            adopt(&store, "c", &found[0].0, found[0].1.as_ref(), 12)
                .unwrap()
                .is_none()
        );
        // a is fenced at its next renewal, and a restart starts afresh.
        assert_eq!(renew(&store, "a", &mut a).unwrap(), Renewal::Fenced);
        let OwnClaim::Held(a2) =
            claim_own(&store, "a", &mut Watch::default(), 0, 30_000, 13).unwrap()
        else {
            panic!("a restarts with a new spool");
        };
        assert_eq!(a2.generation, 1);
        let mut spools = store.spools().unwrap();
        spools.sort();
        assert_eq!(spools, [".adopted/a+2+00000000000000ab", "a"]);
    }
}
