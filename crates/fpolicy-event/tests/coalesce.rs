use fpolicy_event::record::{self, RecordView};
use fpolicy_event::*;
use proptest::prelude::*;

const S: i64 = 1_000_000_000;

fn ev(op: Operation, path: &str, prev: Option<&str>, size: u64, id: &str) -> Event {
    Event {
        event_id: id.into(),
        operation_type: op,
        file_path: path.into(),
        previous_path: prev.map(str::to_owned),
        volume_name: "v".into(),
        svm_name: "s".into(),
        timestamp: "2026-01-01T00:00:00.000000Z".into(),
        file_size: size,
        client_ip: None,
        metadata: Metadata::default(),
    }
}

struct Feed {
    c: Coalescer,
    out: Vec<Emitted>,
    seq: u64,
}

impl Feed {
    fn new(window: i64, max_pending: usize) -> Self {
        Feed {
            c: Coalescer::new(CoalesceConfig {
                window,
                max_hold: 60 * S,
                max_pending,
            }),
            out: Vec::new(),
            seq: 0,
        }
    }
    fn push(&mut self, op: Operation, path: &str, prev: Option<&str>, size: u64, at: i64) {
        let e = ev(op, path, prev, size, &format!("id{}", self.seq));
        let mut buf = Vec::new();
        record::encode(&e, at, [], &mut buf).unwrap();
        let v: RecordView = record::decode(&buf).unwrap();
        self.c.push(self.seq, &v, &mut self.out);
        self.seq += 1;
    }
    fn events(&self) -> Vec<Event> {
        self.out
            .iter()
            .map(|e| serde_json::from_slice(&e.json).unwrap())
            .collect()
    }
}

#[test]
fn window_off_passes_everything_through_in_order() {
    let mut f = Feed::new(0, 10);
    f.push(Operation::Create, "/a", None, 0, 0);
    f.push(Operation::Write, "/a", None, 5, 1);
    assert_eq!(f.out.len(), 2);
    assert_eq!(f.c.oldest_pending_seq(), None);
}

#[test]
fn create_then_writes_become_one_create_with_last_size() {
    let mut f = Feed::new(5 * S, 10);
    f.push(Operation::Create, "/a", None, 0, 0);
    f.push(Operation::Write, "/a", None, 100, S);
    f.push(Operation::Write, "/a", None, 200, 2 * S);
    assert!(f.out.is_empty());
    assert_eq!(f.c.oldest_pending_seq(), Some(0));
    f.c.expire(6 * S, &mut f.out);
    assert!(f.out.is_empty(), "quiet window restarts on each write");
    f.c.expire(7 * S, &mut f.out);
    let e = f.events();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].operation_type, Operation::Create);
    assert_eq!(e[0].file_size, 200);
    assert_eq!(e[0].event_id, "id0");
    assert_eq!(e[0].metadata.coalesced, Some(3));
    assert_eq!(f.c.oldest_pending_seq(), None);
}

#[test]
fn rename_and_delete_flush_first_so_per_path_order_holds() {
    let mut f = Feed::new(5 * S, 10);
    f.push(Operation::Write, "/a", None, 1, 0);
    f.push(Operation::Write, "/b", None, 1, 0);
    f.push(Operation::Rename, "/c", Some("/a"), 1, S);
    f.push(Operation::Delete, "/b", None, 1, S);
    let e = f.events();
    let got: Vec<(Operation, &str)> = e
        .iter()
        .map(|e| (e.operation_type, e.file_path.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (Operation::Write, "/a"),
            (Operation::Rename, "/c"),
            (Operation::Write, "/b"),
            (Operation::Delete, "/b")
        ]
    );
}

#[test]
fn directory_ops_flush_pending_children_and_close_flushes() {
    let mut f = Feed::new(5 * S, 10);
    f.push(Operation::Create, "/d/x", None, 1, 0);
    f.push(Operation::Create, "/dx", None, 1, 0);
    f.push(Operation::Create, "/f", None, 1, 0);
    f.push(Operation::RenameDir, "/e", Some("/d"), 0, S);
    f.push(Operation::Close, "/f", None, 1, S);
    let e = f.events();
    let got: Vec<&str> = e.iter().map(|e| e.file_path.as_str()).collect();
    assert_eq!(got, ["/d/x", "/e", "/f", "/f"]);
    assert_eq!(f.c.pending_len(), 1, "/dx is not under /d");
}

#[test]
fn overflow_emits_the_oldest_early_and_counts() {
    let mut f = Feed::new(5 * S, 2);
    f.push(Operation::Create, "/1", None, 1, 0);
    f.push(Operation::Create, "/2", None, 1, 0);
    f.push(Operation::Create, "/3", None, 1, 0);
    assert_eq!(f.events()[0].file_path, "/1");
    assert_eq!(f.c.stats().overflow, 1);
    assert_eq!(f.c.oldest_pending_seq(), Some(1));
}

#[test]
fn a_busy_path_is_held_at_most_max_hold() {
    let mut f = Feed::new(5 * S, 10);
    for i in 0..100 {
        f.push(Operation::Write, "/busy", None, i, i as i64 * S);
        f.c.expire(i as i64 * S, &mut f.out);
    }
    assert!(!f.out.is_empty(), "emitted within 60 s of the first write");
}

#[derive(Debug, Clone)]
struct Step {
    op: Operation,
    path: u8,
    other: u8,
    gap_ms: u16,
}

fn step() -> impl Strategy<Value = Step> {
    (
        prop::sample::select(vec![
            Operation::Create,
            Operation::Write,
            Operation::Delete,
            Operation::Rename,
            Operation::Read,
            Operation::Close,
        ]),
        0u8..4,
        0u8..4,
        0u16..8000,
    )
        .prop_map(|(op, path, other, gap_ms)| Step {
            op,
            path,
            other,
            gap_ms,
        })
}

proptest! {
    /// Nothing is lost: after a final flush, every notification is
    /// accounted for exactly once (as an event or folded into one), the
    /// cursor bound never passes a pending record, and per-path order holds
    /// for deletes and renames.
    #[test]
    fn conserves_notifications(steps in prop::collection::vec(step(), 1..80), max_pending in 1usize..4) {
        let mut f = Feed::new(5 * S, max_pending);
        let mut now = 0i64;
        for s in &steps {
            now += i64::from(s.gap_ms) * 1_000_000;
            let path = format!("/p{}", s.path);
            let other = format!("/p{}", s.other);
            let prev = (s.op == Operation::Rename).then_some(other.as_str());
            f.push(s.op, &path, prev, 1, now);
            f.c.expire(now, &mut f.out);
            if let Some(oldest) = f.c.oldest_pending_seq() {
                prop_assert!(f.out.iter().all(|e| e.seq != oldest));
            }
        }
        f.c.flush_all(&mut f.out);
        let events = f.events();
        let total: u64 = events.iter().map(|e| u64::from(e.metadata.coalesced.unwrap_or(1))).sum();
        prop_assert_eq!(total, steps.len() as u64);
        let mut seen = std::collections::HashSet::new();
        for e in &events { prop_assert!(seen.insert(e.event_id.clone())); }
        // A delete of a path comes after every earlier create/write of it.
        for (i, e) in events.iter().enumerate() {
            if e.operation_type == Operation::Delete {
                let del_seq = f.out[i].seq;
                for later in &events[i + 1..] {
                    if later.file_path == e.file_path {
                        let id: u64 = later.event_id[2..].parse().unwrap();
                        prop_assert!(id > del_seq, "{} after delete", later.event_id);
                    }
                }
            }
        }
    }
}
