//! `[spool] shared_root` with real processes: an instance whose sink is
//! unreachable is killed with -9, another one adopts its spool once the
//! lease expires and delivers every event when the sink comes back; an
//! instance restarted before its lease expires keeps its own spool; three
//! instances race for two orphans. The sink is a syslog receiver in this
//! test (TCP, JSON), which can be absent and then appear on its port.

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use common::process::{Proc, free_port, spawn};
use common::*;

/// A syslog receiver (RFC 6587 octet counting, JSON messages) that
/// records the `event_id` of every message.
struct Receiver {
    ids: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    fn start(addr: SocketAddr) -> Receiver {
        let listener = TcpListener::bind(addr).expect("receiver port free");
        let ids: Arc<Mutex<Vec<String>>> = Arc::default();
        let seen = ids.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let seen = seen.clone();
                std::thread::spawn(move || {
                    let mut r = BufReader::new(conn);
                    loop {
                        let mut len = Vec::new();
                        if r.read_until(b' ', &mut len).unwrap_or(0) == 0 {
                            return;
                        }
                        let Ok(n) = std::str::from_utf8(&len[..len.len() - 1])
                            .unwrap_or("x")
                            .parse::<usize>()
                        else {
                            return;
                        };
                        let mut msg = vec![0u8; n];
                        if r.read_exact(&mut msg).is_err() {
                            return;
                        }
                        let text = String::from_utf8_lossy(&msg);
                        let json = &text[text.find('{').unwrap_or(0)..];
                        if let Ok(v) = serde_json::from_str::<serde_json::Value>(json) {
                            seen.lock()
                                .unwrap()
                                .push(v["event_id"].as_str().unwrap_or("").to_owned());
                        }
                    }
                });
            }
        });
        Receiver { ids }
    }

    fn distinct(&self) -> HashSet<String> {
        self.ids.lock().unwrap().iter().cloned().collect()
    }
}

/// Takes events (the sink may be down: that is the point).
async fn ready(p: &Proc) {
    let ok = eventually(30, async || {
        tokio::net::TcpStream::connect(p.admin).await.is_ok()
            && http_get(p.admin, "/readyz?scope=server").await.0 == 200
    })
    .await;
    assert!(
        ok,
        "takes events: {}",
        std::fs::read_to_string(&p.log).unwrap_or_default()
    );
}

fn config(root: &Path, id: &str, receiver: SocketAddr) -> String {
    format!(
        "[events]\nwrite_complete_delay_secs = 0\n\
         [spool]\nshared_root = {root:?}\ninstance_id = \"{id}\"\nlease_secs = 3\n\
         [[sink]]\nname = \"siem\"\ntype = \"syslog\"\naddress = \"{receiver}\"\ntransport = \"tcp\"\nformat = \"json\"\ntimeout = \"2s\"\n"
    )
}

/// Starts an instance in its own directory; returns it with that directory.
async fn instance(root: &Path, id: &str, receiver: SocketAddr) -> (Proc, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let p = spawn(dir.path(), &config(root, id, receiver), &[], Stdio::null());
    (p, dir)
}

/// Sends `n` events to an instance and waits until they are in its JSON
/// Lines files (so they are durable in the spool); returns their ids.
async fn feed(p: &Proc, dir: &Path, n: u64) -> HashSet<String> {
    ready(p).await;
    let mut sim = fpolicy_sim::SimConfig::new(p.addr);
    sim.count = Some(n);
    assert!(fpolicy_sim::run(sim).await.errors.is_empty());
    let data = dir.join("data");
    assert!(eventually(30, async || read_events(&data).len() as u64 >= n).await);
    read_events(&data)
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_owned())
        .collect()
}

fn kill(p: &mut Proc) {
    p.child.kill().unwrap();
    p.child.wait().unwrap();
}

fn spools(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = fpolicy_bridge::shared_spool::list(root)
        .unwrap()
        .into_iter()
        .map(|(s, ..)| s)
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orphaned_spool_is_adopted_and_delivered_once_the_sink_is_back() {
    let root = tempfile::tempdir().unwrap();
    let receiver = free_port();
    // A: the receiver is not there yet, so the syslog sink holds everything.
    let (mut a, a_dir) = instance(root.path(), "task-a", receiver).await;
    let a_ids = feed(&a, a_dir.path(), 3_000).await;
    kill(&mut a);
    // B starts while A's lease is still fresh: it waits a lease period
    // before it may adopt.
    let (mut b, b_dir) = instance(root.path(), "task-b", receiver).await;
    ready(&b).await;
    let adopted = eventually(30, async || {
        metric(b.admin, "fpolicy_spool_adopted_total").await >= 1.0
    })
    .await;
    assert!(
        adopted,
        "B adopted A's spool:\n{}",
        std::fs::read_to_string(&b.log).unwrap_or_default()
    );
    assert!(
        spools(root.path())
            .iter()
            .any(|s| s.starts_with(".adopted/task-a+"))
    );
    let shown = eventually(30, async || {
        http_get(b.admin, "/metrics").await.1.lines().any(|l| {
            l.starts_with("fpolicy_spool_adopted_lag_events{spool=\"task-a\"}")
                && !l.ends_with(" 0")
        })
    })
    .await;
    assert!(shown, "the orphan's lag is shown");
    // The sink comes back: every event of A arrives, and the adopted spool
    // is removed.
    let rx = Receiver::start(receiver);
    let delivered = eventually(60, async || rx.distinct().is_superset(&a_ids)).await;
    assert!(
        delivered,
        "{} of {} of A's events delivered",
        rx.distinct().intersection(&a_ids).count(),
        a_ids.len()
    );
    assert!(
        eventually(30, async || spools(root.path()) == ["task-b"]).await,
        "{:?}",
        spools(root.path())
    );
    let log = std::fs::read_to_string(&b.log).unwrap();
    assert!(log.contains("adopting an orphaned spool"), "{log}");
    kill(&mut b);
    drop(b_dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_within_the_lease_keeps_its_own_spool() {
    let root = tempfile::tempdir().unwrap();
    let receiver = free_port();
    let (mut b, _b_dir) = instance(root.path(), "task-b", receiver).await;
    ready(&b).await;
    let (mut a, a_dir) = instance(root.path(), "task-a", receiver).await;
    let before = feed(&a, a_dir.path(), 500).await;
    kill(&mut a);
    // Back at once, same id, same shared root: it claims its own spool.
    let mut a = spawn(
        a_dir.path(),
        &config(root.path(), "task-a", receiver),
        &[],
        Stdio::null(),
    );
    ready(&a).await;
    // Several leases later B has adopted nothing.
    tokio::time::sleep(std::time::Duration::from_secs(8)).await;
    assert_eq!(metric(b.admin, "fpolicy_spool_adopted_total").await, 0.0);
    assert_eq!(spools(root.path()), ["task-a", "task-b"]);
    // A still holds the events; they go out when the receiver appears.
    let rx = Receiver::start(receiver);
    assert!(eventually(60, async || rx.distinct().is_superset(&before)).await);
    kill(&mut a);
    kill(&mut b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_race_for_two_orphans_and_each_is_adopted_once() {
    let root = tempfile::tempdir().unwrap();
    let receiver = free_port();
    let mut all = HashSet::new();
    for id in ["task-x", "task-y"] {
        let (mut p, dir) = instance(root.path(), id, receiver).await;
        all.extend(feed(&p, dir.path(), 400).await);
        kill(&mut p);
    }
    let mut racers = Vec::new();
    for id in ["task-1", "task-2", "task-3"] {
        racers.push(instance(root.path(), id, receiver).await);
    }
    for (p, _) in &racers {
        ready(p).await;
    }
    let adopted = eventually(30, async || {
        let mut n = 0.0;
        for (p, _) in &racers {
            n += metric(p.admin, "fpolicy_spool_adopted_total").await;
        }
        n >= 2.0
    })
    .await;
    assert!(adopted, "both orphans adopted");
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let mut total = 0.0;
    for (p, _) in &racers {
        total += metric(p.admin, "fpolicy_spool_adopted_total").await;
    }
    assert_eq!(total, 2.0, "each orphan adopted by exactly one instance");
    let rx = Receiver::start(receiver);
    assert!(eventually(60, async || rx.distinct().is_superset(&all)).await);
    assert!(
        eventually(30, async || spools(root.path())
            == ["task-1", "task-2", "task-3"])
        .await,
        "{:?}",
        spools(root.path())
    );
    for (mut p, _) in racers {
        kill(&mut p);
    }
}
