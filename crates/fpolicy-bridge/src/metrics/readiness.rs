//! What `/readyz` answers from, apart from the metrics: whether the server
//! listens, the ONTAP registration and its last error, why the spool cannot
//! be written, and what the last recovery found. Set by the server's parts,
//! read by the admin endpoint (and the registration state by the metrics).

use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

/// Self-registration with ONTAP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    Off = 0,
    Registered = 1,
    Pending = 2,
}

#[derive(Debug, Default)]
pub struct Readiness {
    listening: AtomicU64,
    registration: AtomicU64,
    registration_error: Mutex<Option<String>>,
    spool_write_error: Mutex<Option<String>>,
    recovery: Mutex<Option<String>>,
}

fn get(m: &Mutex<Option<String>>) -> Option<String> {
    m.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

fn set(m: &Mutex<Option<String>>, v: Option<String>) {
    *m.lock().unwrap_or_else(|p| p.into_inner()) = v;
}

impl Readiness {
    /// Listening with the spool open (or, false, stopping).
    pub fn set_listening(&self, on: bool) {
        self.listening.store(u64::from(on), Relaxed);
    }

    pub fn listening(&self) -> bool {
        self.listening.load(Relaxed) == 1
    }

    pub fn set_registration(&self, r: Registration, error: Option<String>) {
        self.registration.store(r as u64, Relaxed);
        set(&self.registration_error, error);
    }

    /// 0 off, 1 registered, 2 pending (the `fpolicy_ontap_registered` gauge).
    pub fn registration_code(&self) -> u64 {
        self.registration.load(Relaxed)
    }

    /// Why registration is still pending, when it is.
    pub fn registration_pending(&self) -> Option<String> {
        (self.registration_code() == Registration::Pending as u64)
            .then(|| get(&self.registration_error).unwrap_or_else(|| "in progress".into()))
    }

    pub fn set_spool_write_error(&self, why: Option<String>) {
        set(&self.spool_write_error, why);
    }

    pub fn spool_write_error(&self) -> Option<String> {
        get(&self.spool_write_error)
    }

    pub fn set_recovery(&self, summary: Option<String>) {
        set(&self.recovery, summary);
    }

    pub fn recovery(&self) -> Option<String> {
        get(&self.recovery)
    }
}
