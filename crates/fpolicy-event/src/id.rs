//! Event ids.
//!
//! An id is a hash of the notification's identity, formatted as an RFC 9562
//! version-8 UUID: the same notification (a replay from the spool, or ONTAP
//! resending a request on a resumed session) always gets the same id, so
//! consumers can deduplicate. The identity is the SVM, policy, ONTAP session
//! and ReqId (unique per session), the ReqType, GenerationTime, VolMsid and
//! paths. ReqId is part of it on purpose: two writes with equal content and
//! equal GenerationTime are still two events.

use xxhash_rust::xxh3::Xxh3;

/// Accumulates the identity fields; [`IdBuilder::finish`] formats the UUID.
#[derive(Default, Clone)]
pub struct IdBuilder(Xxh3);

impl IdBuilder {
    pub fn new() -> Self {
        IdBuilder(Xxh3::new())
    }

    pub fn str(&mut self, s: &str) -> &mut Self {
        self.0.update(&(s.len() as u64).to_le_bytes());
        self.0.update(s.as_bytes());
        self
    }

    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.0.update(&v.to_le_bytes());
        self
    }

    pub fn finish(&self) -> String {
        let mut b = self.0.digest128().to_be_bytes();
        b[6] = (b[6] & 0x0f) | 0x80; // version 8: custom
        b[8] = (b[8] & 0x3f) | 0x80; // RFC 9562 variant
        let mut out = String::with_capacity(36);
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for (i, byte) in b.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                out.push('-');
            }
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_shape_and_stability() {
        let a = IdBuilder::new().str("svm").u64(7).finish();
        let b = IdBuilder::new().str("svm").u64(7).finish();
        let c = IdBuilder::new().str("svm").u64(8).finish();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "8");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
        // Length prefixes keep field boundaries: ("ab","c") != ("a","bc").
        assert_ne!(
            IdBuilder::new().str("ab").str("c").finish(),
            IdBuilder::new().str("a").str("bc").finish()
        );
    }
}
