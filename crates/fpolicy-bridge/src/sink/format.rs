//! A sink's `format`: what each spooled event becomes before the sink
//! sends it. The mappings are pure (fpolicy-event's `format` module); this
//! is the seam every sink shares: the default `fpolicy` passes the spooled
//! JSON through untouched (no parse), the others parse the event once and
//! render it.

use std::borrow::Cow;
use std::sync::Arc;

use fpolicy_event::format::{self, AccessPoints, Format, Skip};
use fpolicy_event::{Emitted, Event};

use super::{Delivered, EntryFailure};

/// The bridge's version, in OCSF metadata, ECS `observer.version` and the
/// CEF header.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Why an event is not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotSent {
    /// The format has no representation of it (counted, not an error).
    Skip(Skip),
    /// The spooled bytes are not an event: dead letter.
    Invalid(String),
}

impl NotSent {
    /// Records it in a delivery's outcome.
    pub fn record(self, i: usize, out: &mut Delivered) {
        match self {
            NotSent::Skip(s) => out.skipped.push((i, s)),
            NotSent::Invalid(why) => out.failures.push((i, EntryFailure::Reject(why))),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Formatter {
    format: Format,
    access_points: Arc<AccessPoints>,
}

impl Formatter {
    pub fn new(format: Format, access_points: Arc<AccessPoints>) -> Formatter {
        Formatter {
            format,
            access_points,
        }
    }

    pub fn format(&self) -> Format {
        self.format
    }

    pub fn access_points(&self) -> &AccessPoints {
        &self.access_points
    }

    /// The event behind spooled JSON.
    pub fn parse(json: &[u8]) -> Result<Event, NotSent> {
        serde_json::from_slice(json).map_err(|e| NotSent::Invalid(format!("not an event: {e}")))
    }

    /// The body of one event as one JSON document (S3: a notification with
    /// one record, or two for a rename).
    pub fn body<'a>(&self, json: &'a [u8]) -> Result<Cow<'a, [u8]>, NotSent> {
        if self.format == Format::Fpolicy {
            return Ok(Cow::Borrowed(json));
        }
        let event = Self::parse(json)?;
        let mut out = Vec::with_capacity(json.len() + 256);
        format::render_json(self.format, &event, &self.access_points, VERSION, &mut out)
            .map_err(NotSent::Skip)?;
        Ok(Cow::Owned(out))
    }

    /// The bodies of a batch, each with its position; the events not sent
    /// are recorded in `out`.
    pub fn bodies<'a>(
        &self,
        events: &'a [Emitted],
        out: &mut Delivered,
    ) -> Vec<(usize, Cow<'a, [u8]>)> {
        let mut bodies = Vec::with_capacity(events.len());
        for (i, e) in events.iter().enumerate() {
            match self.body(&e.json) {
                Ok(b) => bodies.push((i, b)),
                Err(n) => n.record(i, out),
            }
        }
        bodies
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fpolicy_event::{AccessPoint, Operation};

    fn emitted(json: &str) -> Emitted {
        Emitted {
            seq: 1,
            operation: Operation::Create,
            received: 0,
            json: json.as_bytes().to_vec(),
        }
    }

    #[test]
    fn fpolicy_passes_the_bytes_through_and_others_parse() {
        let raw = emitted("{\"not\":\"an event\"}");
        let plain = Formatter::default();
        let mut out = Delivered::default();
        assert_eq!(plain.bodies(std::slice::from_ref(&raw), &mut out).len(), 1);
        assert!(out.failures.is_empty());
        let ocsf = Formatter::new(Format::Ocsf, Arc::default());
        let got = ocsf.bodies(std::slice::from_ref(&raw), &mut out);
        assert!(got.is_empty());
        assert!(
            matches!(&out.failures[0], (0, EntryFailure::Reject(w)) if w.starts_with("not an event"))
        );
    }

    #[test]
    fn s3_skips_what_has_no_object() {
        let aps = Arc::new(AccessPoints::new(vec![AccessPoint::new(
            "vol1", "vol1-ap", "/",
        )]));
        let s3 = Formatter::new(Format::S3, aps);
        let event = |op: &str, vol: &str| {
            format!(
                r#"{{"event_id":"e","operation_type":"{op}","file_path":"/a.txt","volume_name":"{vol}","svm_name":"s","timestamp":"2026-12-02T00:00:00.000000Z","file_size":1,"metadata":{{"protocol":"smb","req_type":"SMB_CREAT","vol_msid":1,"svm_uuid":"u","policy_name":"p","session_id":"x","req_id":1,"ontap_peer":"p","s3_key":"a.txt","received_at":"2026-12-02T00:00:00.000000Z","engine":"async"}}}}"#
            )
        };
        let batch = [
            emitted(&event("create", "vol1")),
            emitted(&event("create_dir", "vol1")),
            emitted(&event("create", "vol9")),
        ];
        let mut out = Delivered::default();
        let bodies = s3.bodies(&batch, &mut out);
        assert_eq!(bodies.len(), 1);
        let v: serde_json::Value = serde_json::from_slice(&bodies[0].1).unwrap();
        assert_eq!(v["Records"][0]["s3"]["object"]["key"], "a.txt");
        assert_eq!(
            out.skipped,
            vec![(1, Skip::NotAnObject), (2, Skip::OutsideAccessPoints)]
        );
    }
}
