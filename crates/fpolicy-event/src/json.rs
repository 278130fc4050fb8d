//! The event's JSON, written by hand on the ingest path.
//!
//! The bytes are exactly `serde_json::to_writer(event)`'s (keys in
//! declaration order, absent options and empty `routes` left out, the same
//! string escapes), which the tests below check for arbitrary events. It
//! exists for speed: serde_json escapes strings one byte at a time, and an
//! event is mostly strings (paths, ids, names), so that loop was the largest
//! single cost of ingest. Here strings are scanned eight bytes at a time and
//! copied in runs.
//!
//! Every field is named in a destructuring pattern, so a field added to
//! [`Event`] or [`Metadata`] does not compile until it is written here too.

use crate::event::{Event, Metadata};

/// Appends `event` as one JSON object (no newline).
pub fn write_event(event: &Event, out: &mut Vec<u8>) {
    let Event {
        event_id,
        operation_type,
        file_path,
        previous_path,
        volume_name,
        svm_name,
        timestamp,
        file_size,
        client_ip,
        metadata,
    } = event;
    let mut o = Object::open(out);
    o.string("event_id", event_id);
    o.string("operation_type", operation_type.as_str());
    o.string("file_path", file_path);
    o.opt_string("previous_path", previous_path);
    o.string("volume_name", volume_name);
    o.string("svm_name", svm_name);
    o.string("timestamp", timestamp);
    o.number("file_size", *file_size);
    o.opt_string("client_ip", client_ip);
    o.key("metadata");
    write_metadata(metadata, o.out);
    o.close();
}

fn write_metadata(metadata: &Metadata, out: &mut Vec<u8>) {
    let Metadata {
        protocol,
        protocol_version,
        req_type,
        user_id_type,
        uid,
        sid,
        user_name,
        user_principal,
        file_type,
        vol_msid,
        svm_uuid,
        policy_name,
        session_id,
        req_id,
        ontap_peer,
        s3_key,
        link_path,
        io_offset,
        io_length,
        generation_time,
        received_at,
        engine,
        screening,
        screening_rule,
        origin,
        routes,
        coalesced,
    } = metadata;
    let mut o = Object::open(out);
    o.string("protocol", protocol);
    o.opt_string("protocol_version", protocol_version);
    o.string("req_type", req_type);
    o.opt_string("user_id_type", user_id_type);
    o.opt_number("uid", uid.map(u64::from));
    o.opt_string("sid", sid);
    o.opt_string("user_name", user_name);
    o.opt_string("user_principal", user_principal);
    o.opt_string("file_type", file_type);
    o.number("vol_msid", *vol_msid);
    o.string("svm_uuid", svm_uuid);
    o.string("policy_name", policy_name);
    o.string("session_id", session_id);
    o.number("req_id", *req_id);
    o.string("ontap_peer", ontap_peer);
    o.string("s3_key", s3_key);
    o.opt_string("link_path", link_path);
    o.opt_number("io_offset", *io_offset);
    o.opt_number("io_length", io_length.map(u64::from));
    o.opt_number("generation_time", *generation_time);
    o.string("received_at", received_at);
    o.string("engine", engine);
    o.opt_string("screening", screening);
    o.opt_string("screening_rule", screening_rule);
    o.opt_string("origin", origin);
    if !routes.is_empty() {
        o.key("routes");
        o.out.push(b'[');
        for (i, route) in routes.iter().enumerate() {
            if i > 0 {
                o.out.push(b',');
            }
            write_string(o.out, route);
        }
        o.out.push(b']');
    }
    o.opt_number("coalesced", coalesced.map(u64::from));
    o.close();
}

/// An object being written: commas between members, braces around.
struct Object<'a> {
    out: &'a mut Vec<u8>,
    empty: bool,
}

impl<'a> Object<'a> {
    fn open(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Object { out, empty: true }
    }

    /// `"key":` (keys are plain ASCII names: nothing to escape).
    fn key(&mut self, key: &str) {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    fn string(&mut self, key: &str, value: &str) {
        self.key(key);
        write_string(self.out, value);
    }

    fn opt_string(&mut self, key: &str, value: &Option<String>) {
        if let Some(v) = value {
            self.string(key, v);
        }
    }

    fn number(&mut self, key: &str, value: u64) {
        self.key(key);
        self.out
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }

    fn opt_number(&mut self, key: &str, value: Option<u64>) {
        if let Some(v) = value {
            self.number(key, v);
        }
    }

    fn close(self) {
        self.out.push(b'}');
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Whether any of the eight bytes in `chunk` is below 0x20, `"` or `\`.
fn needs_escape(chunk: u64) -> bool {
    escape_mask(chunk) != 0
}

/// The classic "has a byte less than n" and "has a zero byte" tests for
/// bytes below 0x20, `"` and `\` in `chunk` (read little-endian): zero when
/// there is none, else the lowest set bit is the high bit of the first one
/// (a borrow can only mark bytes after a true match, never before it).
pub(crate) fn escape_mask(chunk: u64) -> u64 {
    let control = chunk.wrapping_sub(ONES * 0x20) & !chunk;
    let quote = chunk ^ (ONES * u64::from(b'"'));
    let quote = quote.wrapping_sub(ONES) & !quote;
    let backslash = chunk ^ (ONES * u64::from(b'\\'));
    let backslash = backslash.wrapping_sub(ONES) & !backslash;
    (control | quote | backslash) & HIGHS
}

/// A JSON string with serde_json's escapes: `\"`, `\\`, `\b \t \n \f \r`,
/// other control characters as `\u00xx` (lowercase hex); everything else,
/// DEL and non-ASCII included, as is.
pub fn write_string(out: &mut Vec<u8>, value: &str) {
    let bytes = value.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut run_start = 0;
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let chunk = u64::from_le_bytes(bytes[at..at + 8].try_into().expect("eight bytes"));
        if needs_escape(chunk) {
            for i in at..at + 8 {
                escape_byte(out, bytes, &mut run_start, i);
            }
        }
        at += 8;
    }
    if at < bytes.len() {
        // The last few bytes, padded with a byte that needs no escape.
        let mut tail = [b' '; 8];
        tail[..bytes.len() - at].copy_from_slice(&bytes[at..]);
        if needs_escape(u64::from_le_bytes(tail)) {
            for i in at..bytes.len() {
                escape_byte(out, bytes, &mut run_start, i);
            }
        }
    }
    out.extend_from_slice(&bytes[run_start..]);
    out.push(b'"');
}

/// Escapes `bytes[i]` if it must be, flushing the run of plain bytes before it.
#[inline]
fn escape_byte(out: &mut Vec<u8>, bytes: &[u8], run_start: &mut usize, i: usize) {
    let b = bytes[i];
    let short = match b {
        b'"' => b'"',
        b'\\' => b'\\',
        0x08 => b'b',
        b'\t' => b't',
        b'\n' => b'n',
        0x0c => b'f',
        b'\r' => b'r',
        0x00..=0x1f => b'u',
        _ => return,
    };
    out.extend_from_slice(&bytes[*run_start..i]);
    *run_start = i + 1;
    if short == b'u' {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        out.extend_from_slice(b"\\u00");
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 0xf)]);
    } else {
        out.extend_from_slice(&[b'\\', short]);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::event::Operation;
    use proptest::prelude::*;

    fn ours(event: &Event) -> String {
        let mut out = Vec::new();
        write_event(event, &mut out);
        String::from_utf8(out).expect("UTF-8")
    }

    #[test]
    fn every_escape_matches_serde_json() {
        let mut every_byte = String::new();
        for c in (0u8..=0x7f).map(char::from) {
            every_byte.push(c);
        }
        every_byte.push_str("é — カメラ \u{7f}\u{2028}\u{10ffff}");
        for s in [
            "",
            "plain",
            "exactly8",
            "\"",
            "\\\\",
            "a\"b\\c\nd",
            &every_byte,
        ] {
            let mut out = Vec::new();
            write_string(&mut out, s);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(s).unwrap()
            );
        }
    }

    proptest! {
        #[test]
        fn the_escape_mask_finds_the_first_byte_to_escape(bytes in any::<[u8; 8]>()) {
            let first = bytes.iter().position(|&b| b < 0x20 || b == b'"' || b == b'\\');
            let mask = escape_mask(u64::from_le_bytes(bytes));
            prop_assert_eq!(first, (mask != 0).then(|| mask.trailing_zeros() as usize / 8));
        }
    }

    #[test]
    fn a_minimal_event_matches_serde_json() {
        let event = crate::event::tests_support::sample_event();
        assert_eq!(ours(&event), serde_json::to_string(&event).unwrap());
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[a-z/\"\\\\\\x00-\\x1f ]{0,24}",
            "[\\x00-\\x7f]{0,40}",
        ]
    }

    fn opt_text() -> impl Strategy<Value = Option<String>> {
        proptest::option::of(text())
    }

    prop_compose! {
        fn metadata()(
            strings in proptest::collection::vec(text(), 11),
            options in proptest::collection::vec(opt_text(), 11),
            numbers in (any::<u64>(), any::<u64>(), any::<Option<u32>>(), any::<Option<u64>>()),
            more in (any::<Option<u32>>(), any::<Option<u64>>(), any::<Option<u32>>()),
            routes in proptest::collection::vec(text(), 0..3),
        ) -> Metadata {
            let mut s = strings.into_iter();
            let mut o = options.into_iter();
            Metadata {
                protocol: s.next().unwrap(),
                protocol_version: o.next().unwrap(),
                req_type: s.next().unwrap(),
                user_id_type: o.next().unwrap(),
                uid: numbers.2,
                sid: o.next().unwrap(),
                user_name: o.next().unwrap(),
                user_principal: o.next().unwrap(),
                file_type: o.next().unwrap(),
                vol_msid: numbers.0,
                svm_uuid: s.next().unwrap(),
                policy_name: s.next().unwrap(),
                session_id: s.next().unwrap(),
                req_id: numbers.1,
                ontap_peer: s.next().unwrap(),
                s3_key: s.next().unwrap(),
                link_path: o.next().unwrap(),
                io_offset: numbers.3,
                io_length: more.0,
                generation_time: more.1,
                received_at: s.next().unwrap(),
                engine: s.next().unwrap(),
                screening: o.next().unwrap(),
                screening_rule: o.next().unwrap(),
                origin: o.next().unwrap(),
                routes,
                coalesced: more.2,
            }
        }
    }

    prop_compose! {
        pub(crate) fn event()(
            strings in proptest::collection::vec(text(), 5),
            previous_path in opt_text(),
            client_ip in opt_text(),
            operation in proptest::sample::select(Operation::ALL.to_vec()),
            file_size in any::<u64>(),
            metadata in metadata(),
        ) -> Event {
            let mut s = strings.into_iter();
            Event {
                event_id: s.next().unwrap(),
                operation_type: operation,
                file_path: s.next().unwrap(),
                previous_path,
                volume_name: s.next().unwrap(),
                svm_name: s.next().unwrap(),
                timestamp: s.next().unwrap(),
                file_size,
                client_ip,
                metadata,
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn any_event_is_written_as_serde_json_writes_it(event in event()) {
            prop_assert_eq!(ours(&event), serde_json::to_string(&event).unwrap());
        }
    }
}
