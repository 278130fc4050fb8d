//! RFC 5424 syslog messages of events, and their framing on a stream
//! (RFC 6587 octet counting, which RFC 5425 TLS uses too). Pure: no I/O.
//!
//! `<PRI>1 TIMESTAMP HOSTNAME APP-NAME - MSGID - MSG`: the event's time,
//! the bridge's host name, `app_name`, no process id, the operation as
//! MSGID, no structured data, and the event as CEF or JSON.

use fpolicy_event::Event;
use fpolicy_event::format::{self, AccessPoints, Format, cef};
use serde::Deserialize;

/// The syslog facility (RFC 5424 table 1), by its usual name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Facility {
    Kern,
    User,
    Mail,
    Daemon,
    Auth,
    Syslog,
    Lpr,
    News,
    Uucp,
    Cron,
    Authpriv,
    Ftp,
    Ntp,
    Security,
    Console,
    Solaris,
    Local0,
    Local1,
    Local2,
    Local3,
    Local4,
    Local5,
    Local6,
    Local7,
}

impl Facility {
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// What MSG holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Payload {
    /// ArcSight CEF (docs/formats.md).
    Cef,
    /// One JSON document in `json_format`.
    Json,
}

/// How one sink writes messages.
#[derive(Debug, Clone)]
pub struct MessageFormat {
    pub facility: Facility,
    pub app_name: String,
    pub hostname: String,
    pub payload: Payload,
    pub json_format: Format,
    pub version: &'static str,
}

/// RFC 5424 severity: warning for a synchronous deny, notice for a
/// deletion, informational otherwise.
pub fn severity(event: &Event) -> u8 {
    use fpolicy_event::Operation::{Delete, DeleteDir};
    if format::denied(event) {
        4
    } else if matches!(event.operation_type, Delete | DeleteDir) {
        5
    } else {
        6
    }
}

/// A header field: printable US-ASCII without spaces, at most `max`
/// characters, `-` when empty (RFC 5424's NILVALUE).
pub fn header_field(s: &str, max: usize) -> String {
    let clean: String = s
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if clean.is_empty() { "-".into() } else { clean }
}

impl MessageFormat {
    /// Appends the syslog message of `event` (without framing) to `out`.
    pub fn message(
        &self,
        event: &Event,
        access_points: &AccessPoints,
        out: &mut Vec<u8>,
    ) -> Result<(), format::Skip> {
        use std::io::Write as _;
        let pri = u16::from(self.facility.code()) * 8 + u16::from(severity(event));
        let _ = write!(
            out,
            "<{pri}>1 {} {} {} - {} - ",
            header_field(&event.timestamp, 64),
            header_field(&self.hostname, 255),
            header_field(&self.app_name, 48),
            header_field(event.operation_type.as_str(), 32),
        );
        match self.payload {
            Payload::Cef => {
                let mut line = String::with_capacity(512);
                cef::render(event, self.version, &mut line);
                out.extend_from_slice(line.as_bytes());
            }
            Payload::Json => {
                format::render_json(self.json_format, event, access_points, self.version, out)?
            }
        }
        Ok(())
    }
}

/// Appends `message` with RFC 6587 octet counting: `LEN SP MESSAGE`.
pub fn octet_counted(message: &[u8], out: &mut Vec<u8>) {
    let mut len = itoa::Buffer::new();
    out.extend_from_slice(len.format(message.len()).as_bytes());
    out.push(b' ');
    out.extend_from_slice(message);
}

#[cfg(test)]
mod tests {
    use super::*;
    use fpolicy_event::{Metadata, Operation};

    fn event(op: Operation) -> Event {
        Event {
            event_id: "id-1".into(),
            operation_type: op,
            file_path: "/a/b c.txt".into(),
            previous_path: None,
            volume_name: "vol1".into(),
            svm_name: "svm1".into(),
            timestamp: "2026-12-02T10:00:00.123456Z".into(),
            file_size: 5,
            client_ip: Some("10.0.0.5".into()),
            metadata: Metadata {
                protocol: "smb".into(),
                ..Metadata::default()
            },
        }
    }

    fn fmt(payload: Payload) -> MessageFormat {
        MessageFormat {
            facility: Facility::Local0,
            app_name: "fpolicy-bridge".into(),
            hostname: "bridge host".into(),
            payload,
            json_format: Format::Fpolicy,
            version: "0.1.0",
        }
    }

    #[test]
    fn the_header_is_rfc_5424() {
        let mut out = Vec::new();
        fmt(Payload::Cef)
            .message(
                &event(Operation::Create),
                &AccessPoints::default(),
                &mut out,
            )
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("<134>1 2026-12-02T10:00:00.123456Z bridgehost fpolicy-bridge - create - CEF:0|NetApp|ONTAP FPolicy|0.1.0|create|"),
            "{text}"
        );
        let mut out = Vec::new();
        fmt(Payload::Json)
            .message(
                &event(Operation::Delete),
                &AccessPoints::default(),
                &mut out,
            )
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        // local0 (16) * 8 + notice (5)
        assert!(text.starts_with("<133>1 "), "{text}");
        let json = text.split_once(" - delete - ").unwrap().1;
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(v["event_id"], "id-1");
    }

    #[test]
    fn octet_counting_counts_bytes() {
        let mut out = Vec::new();
        octet_counted("<134>1 ü".as_bytes(), &mut out);
        assert_eq!(out, "9 <134>1 ü".as_bytes());
    }

    #[test]
    fn header_fields_are_printable_ascii_or_nil() {
        assert_eq!(header_field("", 10), "-");
        assert_eq!(header_field("a b\tc", 10), "abc");
        assert_eq!(header_field("日本", 10), "-");
        assert_eq!(header_field("abcdef", 3), "abc");
    }
}
