//! The lease protocol of `fpolicy_spool::lease` as a model: N instances
//! on an in-memory shared directory, random interleavings of time passing
//! (each instance's clock running 10 % fast or slow), scans for orphans,
//! crashes (also in the middle of a claim, a renewal or an adoption, after
//! any number of store operations), restarts, and stalls. Checked after
//! every step:
//! - at most one running instance holds the current lease of a spool
//!   (two instances never write to or drain the same spool);
//! - an instance that keeps renewing on time is never fenced;
//!
//! and at the end, once the survivors keep running, every spool of a dead
//! instance is held (adopted) by a running one.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::io;

use fpolicy_spool::lease::{self, Held, LeaseRecord, LeaseStore, OwnClaim, Renewal, Watch};
use proptest::prelude::*;

const LEASE_MS: u64 = 30_000;

/// A spool's leases by generation: (owner, nonce, beat).
type Leases = BTreeMap<u64, (String, u64, u64)>;

/// Spools by name: (identity, leases).
#[derive(Default)]
struct Mem {
    spools: RefCell<BTreeMap<String, (usize, Leases)>>,
    next_identity: Cell<usize>,
    next_nonce: Cell<u64>,
}

impl Mem {
    fn identity(&self, spool: &str) -> Option<usize> {
        self.spools.borrow().get(spool).map(|s| s.0)
    }

    fn nonce(&self) -> u64 {
        self.next_nonce.set(self.next_nonce.get() + 1);
        self.next_nonce.get()
    }

    fn current_of(&self, identity: usize) -> Option<u64> {
        self.spools
            .borrow()
            .values()
            .find(|s| s.0 == identity)
            .and_then(|s| s.1.keys().next_back().copied())
    }
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "no such spool")
}

impl LeaseStore for Mem {
    fn spools(&self) -> io::Result<Vec<String>> {
        Ok(self.spools.borrow().keys().cloned().collect())
    }
    fn current(&self, spool: &str) -> io::Result<Option<LeaseRecord>> {
        let s = self.spools.borrow();
        let (_, leases) = s.get(spool).ok_or_else(gone)?;
        Ok(leases.iter().next_back().map(|(g, (o, n, b))| LeaseRecord {
            generation: *g,
            owner: o.clone(),
            nonce: *n,
            beat: *b,
        }))
    }
    fn create_spool(&self, spool: &str) -> io::Result<()> {
        let id = self.next_identity.get();
        let mut s = self.spools.borrow_mut();
        if !s.contains_key(spool) {
            s.insert(spool.to_owned(), (id, BTreeMap::new()));
            self.next_identity.set(id + 1);
        }
        Ok(())
    }
    fn create_lease(&self, spool: &str, l: &LeaseRecord) -> io::Result<bool> {
        let mut s = self.spools.borrow_mut();
        let (_, leases) = s.get_mut(spool).ok_or_else(gone)?;
        if leases.contains_key(&l.generation) {
            return Ok(false);
        }
        leases.insert(l.generation, (l.owner.clone(), l.nonce, l.beat));
        Ok(true)
    }
    fn rewrite_lease(&self, spool: &str, l: &LeaseRecord) -> io::Result<()> {
        let mut s = self.spools.borrow_mut();
        let (_, leases) = s.get_mut(spool).ok_or_else(gone)?;
        let entry = leases.get_mut(&l.generation).ok_or_else(gone)?;
        *entry = (l.owner.clone(), l.nonce, l.beat);
        Ok(())
    }
    fn retire(&self, spool: &str, l: &LeaseRecord) -> io::Result<String> {
        let mut s = self.spools.borrow_mut();
        let name = lease::retired_name(spool, l);
        // A rename onto an existing spool fails on a file system.
        if s.contains_key(&name) {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, name));
        }
        let v = s.remove(spool).ok_or_else(gone)?;
        s.insert(name.clone(), v);
        Ok(name)
    }
}

/// The store as one instance sees it: it crashes (every call fails from
/// then on) after `budget` operations.
struct Crashing<'a> {
    store: &'a Mem,
    budget: Cell<usize>,
}

impl Crashing<'_> {
    fn step(&self) -> io::Result<()> {
        match self.budget.get() {
            0 => Err(io::Error::other("crashed")),
            n => {
                self.budget.set(n - 1);
                Ok(())
            }
        }
    }
}

impl LeaseStore for Crashing<'_> {
    fn spools(&self) -> io::Result<Vec<String>> {
        self.step()?;
        self.store.spools()
    }
    fn current(&self, spool: &str) -> io::Result<Option<LeaseRecord>> {
        self.step()?;
        self.store.current(spool)
    }
    fn create_spool(&self, spool: &str) -> io::Result<()> {
        self.step()?;
        self.store.create_spool(spool)
    }
    fn create_lease(&self, spool: &str, l: &LeaseRecord) -> io::Result<bool> {
        self.step()?;
        self.store.create_lease(spool, l)
    }
    fn rewrite_lease(&self, spool: &str, l: &LeaseRecord) -> io::Result<()> {
        self.step()?;
        self.store.rewrite_lease(spool, l)
    }
    fn retire(&self, spool: &str, l: &LeaseRecord) -> io::Result<String> {
        self.step()?;
        self.store.retire(spool, l)
    }
}

struct Instance {
    id: String,
    running: bool,
    /// Renews on time (a stalled process does not).
    punctual: bool,
    /// Own clock, and its rate in per mille of real time.
    clock: u64,
    rate: u64,
    last_renew: u64,
    watch: Watch,
    /// Held spools, each with whether the instance stalled since it took it.
    held: Vec<(Held, bool)>,
}

struct World {
    store: Mem,
    instances: Vec<Instance>,
}

#[derive(Debug, Clone)]
enum Op {
    Advance(u64),
    Scan(usize),
    Crash(usize),
    CrashDuringScan(usize, usize),
    Restart(usize),
    Stall(usize),
    Resume(usize),
    /// Two instances look for orphans, then both try to adopt what they
    /// saw: the race that exclusive claims settle.
    Race(usize, usize),
}

impl World {
    fn new(n: usize, rates: &[u64]) -> World {
        let instances = (0..n)
            .map(|i| Instance {
                id: format!("task-{i}"),
                running: false,
                punctual: true,
                clock: 1_000_000 * i as u64, // clocks disagree on the time of day
                rate: rates[i % rates.len()],
                last_renew: 0,
                watch: Watch::default(),
                held: Vec::new(),
            })
            .collect();
        let mut w = World {
            store: Mem::default(),
            instances,
        };
        for i in 0..n {
            w.restart(i);
        }
        w
    }

    fn restart(&mut self, i: usize) {
        let inst = &mut self.instances[i];
        if inst.running {
            return;
        }
        inst.running = true;
        inst.punctual = true;
        inst.watch = Watch::default();
        inst.held.clear();
        inst.last_renew = inst.clock;
        self.scan_with(i, usize::MAX);
    }

    /// Claims its own spool if it has none, then adopts every orphan it
    /// sees; the instance crashes after `budget` store operations.
    fn scan_with(&mut self, i: usize, budget: usize) {
        let store = Crashing {
            store: &self.store,
            budget: Cell::new(budget),
        };
        let inst = &mut self.instances[i];
        if !inst.running {
            return;
        }
        let result = (|| -> io::Result<()> {
            if !inst.held.iter().any(|(h, _)| h.spool == inst.id)
                && let OwnClaim::Held(h) = lease::claim_own(
                    &store,
                    &inst.id,
                    &mut inst.watch,
                    inst.clock,
                    LEASE_MS,
                    self.store.nonce(),
                )?
            {
                inst.held.push((h, false));
            }
            for (spool, seen) in
                lease::orphans(&store, &inst.id, &mut inst.watch, inst.clock, LEASE_MS)?
            {
                if inst.held.iter().any(|(h, _)| h.spool == spool) {
                    continue;
                }
                if let Some(h) =
                    lease::adopt(&store, &inst.id, &spool, seen.as_ref(), self.store.nonce())?
                {
                    inst.held.push((h, false));
                }
            }
            Ok(())
        })();
        if result.is_err() {
            inst.running = false;
            inst.held.clear();
        }
    }

    fn renew_all(&mut self, i: usize) {
        let inst = &mut self.instances[i];
        let mut kept = Vec::new();
        for (mut h, stalled) in std::mem::take(&mut inst.held) {
            match lease::renew(&self.store, &inst.id, &mut h).unwrap() {
                Renewal::Renewed => kept.push((h, stalled)),
                Renewal::Fenced => assert!(
                    stalled,
                    "{} renewed {} on time and was fenced",
                    inst.id, h.spool
                ),
            }
        }
        inst.held = kept;
        inst.last_renew = inst.clock;
    }

    fn apply(&mut self, op: &Op) {
        let n = self.instances.len();
        match *op {
            Op::Advance(dt) => {
                for i in 0..n {
                    let inst = &mut self.instances[i];
                    inst.clock += dt * inst.rate / 1000;
                    if inst.running && inst.punctual && inst.clock - inst.last_renew >= LEASE_MS / 3
                    {
                        self.renew_all(i);
                    }
                }
            }
            Op::Scan(i) => self.scan_with(i % n, usize::MAX),
            Op::Crash(i) => {
                let inst = &mut self.instances[i % n];
                inst.running = false;
                inst.held.clear();
            }
            Op::CrashDuringScan(i, k) => {
                self.scan_with(i % n, k);
                let inst = &mut self.instances[i % n];
                inst.running = false;
                inst.held.clear();
            }
            Op::Restart(i) => self.restart(i % n),
            Op::Race(i, j) => {
                let (i, j) = (i % n, j % n);
                let mut seen = Vec::new();
                for k in [i, j] {
                    let inst = &mut self.instances[k];
                    if inst.running {
                        let o = lease::orphans(
                            &self.store,
                            &inst.id,
                            &mut inst.watch,
                            inst.clock,
                            LEASE_MS,
                        )
                        .unwrap();
                        seen.push((k, o));
                    }
                }
                for (k, orphans) in seen {
                    for (spool, sighting) in orphans {
                        let nonce = self.store.nonce();
                        let inst = &mut self.instances[k];
                        if !inst.running || inst.held.iter().any(|(h, _)| h.spool == spool) {
                            continue;
                        }
                        match lease::adopt(&self.store, &inst.id, &spool, sighting.as_ref(), nonce)
                        {
                            Ok(Some(h)) => inst.held.push((h, false)),
                            Ok(None) => {}
                            Err(_) => {
                                inst.running = false;
                                inst.held.clear();
                            }
                        }
                    }
                }
            }
            Op::Stall(i) => {
                let inst = &mut self.instances[i % n];
                inst.punctual = false;
                for h in &mut inst.held {
                    h.1 = true;
                }
            }
            Op::Resume(i) => {
                let inst = &mut self.instances[i % n];
                if inst.running && !inst.punctual {
                    inst.punctual = true;
                    self.renew_all(i % n);
                }
            }
        }
    }

    /// At most one running instance holds the current generation of a spool.
    fn check_exclusive(&self) {
        let mut holders: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
        for inst in self.instances.iter().filter(|i| i.running) {
            for (h, _) in &inst.held {
                let Some(identity) = self.store.identity(&h.spool) else {
                    continue; // moved away: this holder is fenced at its next renewal
                };
                if self.store.current_of(identity) == Some(h.generation) {
                    holders.entry(identity).or_default().push(&inst.id);
                }
            }
        }
        for (identity, who) in holders {
            assert!(who.len() <= 1, "spool {identity} held by {who:?}");
        }
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1u64..LEASE_MS / 10).prop_map(Op::Advance),
        3 => (0usize..8).prop_map(Op::Scan),
        1 => (0usize..8).prop_map(Op::Crash),
        1 => ((0usize..8), (0usize..12)).prop_map(|(i, k)| Op::CrashDuringScan(i, k)),
        2 => (0usize..8).prop_map(Op::Restart),
        1 => (0usize..8).prop_map(Op::Stall),
        1 => (0usize..8).prop_map(Op::Resume),
        2 => ((0usize..8), (0usize..8)).prop_map(|(i, j)| Op::Race(i, j)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn leases_are_exclusive_kept_by_punctual_holders_and_orphans_are_adopted(
        n in 2usize..5,
        rates in proptest::collection::vec(900u64..=1100, 1..5),
        ops in proptest::collection::vec(op(), 1..120),
    ) {
        let mut w = World::new(n, &rates);
        w.check_exclusive();
        for op in &ops {
            w.apply(op);
            w.check_exclusive();
        }
        // Let the survivors (at least one) run on time for a while.
        if !w.instances.iter().any(|i| i.running) {
            w.restart(0);
        }
        for i in 0..n {
            w.apply(&Op::Resume(i));
        }
        for _ in 0..40 {
            w.apply(&Op::Advance(LEASE_MS / 10));
            for i in 0..n {
                if w.instances[i].running {
                    w.scan_with(i, usize::MAX);
                }
            }
            w.check_exclusive();
        }
        // Every spool is held by a running instance: its own or adopted.
        let spools = w.store.spools().unwrap();
        for spool in spools {
            let held = w.instances.iter().filter(|i| i.running).any(|i| i.held.iter().any(|(h, _)| h.spool == spool));
            prop_assert!(held, "spool {spool} is nobody's: {:?}", w.store.current(&spool));
        }
    }
}
