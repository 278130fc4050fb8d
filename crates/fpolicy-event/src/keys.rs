//! The few names a sink keys and routes an event by (its id, operation,
//! path, volume, SVM, protocol and first route), read from the event's JSON
//! without building the event.
//!
//! The NATS and SQS sinks need these per event to make a subject, a message
//! id or a group id. A serde parse of the whole event cost a quarter of the
//! NATS sink's CPU; this walk only looks at the top-level keys and the two
//! in `metadata`, skips every other value, and copies a string only when it
//! holds an escape. It accepts the JSON objects serde reads (any key order,
//! any whitespace, unknown keys) and rejects a missing or mistyped field, a
//! repeated one and malformed JSON; nesting is bounded.

use std::borrow::Cow;

use crate::json::escape_mask;

/// The keys of one event; borrowed from its JSON unless escaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventKeys<'a> {
    pub event_id: Cow<'a, str>,
    pub operation_type: Cow<'a, str>,
    pub file_path: Cow<'a, str>,
    pub volume_name: Cow<'a, str>,
    pub svm_name: Cow<'a, str>,
    /// `metadata.protocol`; empty when absent.
    pub protocol: Cow<'a, str>,
    /// `metadata.routes[0]`, when there is one.
    pub first_route: Option<Cow<'a, str>>,
}

/// Why a body is not an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeysError {
    #[error("malformed JSON at byte {0}")]
    Malformed(usize),
    #[error("missing field `{0}`")]
    Missing(&'static str),
    #[error("field `{0}` has the wrong type")]
    WrongType(&'static str),
    #[error("duplicate field `{0}`")]
    Duplicate(&'static str),
    #[error("JSON nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

/// Deeper than any event (3 levels); a bound on the skip's work.
const MAX_DEPTH: usize = 32;

/// The top-level strings, in the order of `read`'s match.
const TOP: [&str; 5] = [
    "event_id",
    "operation_type",
    "file_path",
    "volume_name",
    "svm_name",
];

/// Reads the keys of the event `json`.
pub fn read(json: &[u8]) -> Result<EventKeys<'_>, KeysError> {
    let mut w = Walker { b: json, at: 0 };
    let mut top: [Option<Cow<'_, str>>; 5] = Default::default();
    let mut meta: Option<(Cow<'_, str>, Option<Cow<'_, str>>)> = None;
    w.object(|w, key| {
        let k = match key {
            b"event_id" => 0,
            b"operation_type" => 1,
            b"file_path" => 2,
            b"volume_name" => 3,
            b"svm_name" => 4,
            b"metadata" if meta.is_some() => return Err(KeysError::Duplicate("metadata")),
            b"metadata" => {
                meta = Some(w.metadata()?);
                return Ok(());
            }
            _ => return w.skip_value(),
        };
        if top[k].is_some() {
            return Err(KeysError::Duplicate(TOP[k]));
        }
        top[k] = Some(w.string_value(TOP[k])?);
        Ok(())
    })?;
    w.ws();
    if w.at != json.len() {
        return Err(KeysError::Malformed(w.at));
    }
    let [event_id, operation_type, file_path, volume_name, svm_name] = top;
    let (protocol, first_route) = meta.ok_or(KeysError::Missing("metadata"))?;
    Ok(EventKeys {
        event_id: event_id.ok_or(KeysError::Missing("event_id"))?,
        operation_type: operation_type.ok_or(KeysError::Missing("operation_type"))?,
        file_path: file_path.ok_or(KeysError::Missing("file_path"))?,
        volume_name: volume_name.ok_or(KeysError::Missing("volume_name"))?,
        svm_name: svm_name.ok_or(KeysError::Missing("svm_name"))?,
        protocol,
        first_route,
    })
}

struct Walker<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Walker<'a> {
    fn malformed<T>(&self) -> Result<T, KeysError> {
        Err(KeysError::Malformed(self.at))
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.at) {
            self.at += 1;
        }
    }

    /// Skips whitespace and takes `byte`.
    fn expect(&mut self, byte: u8) -> Result<(), KeysError> {
        self.ws();
        if self.b.get(self.at) == Some(&byte) {
            self.at += 1;
            Ok(())
        } else {
            self.malformed()
        }
    }

    /// An object whose values `each` reads (or skips), given the raw key.
    fn object(
        &mut self,
        mut each: impl FnMut(&mut Self, &[u8]) -> Result<(), KeysError>,
    ) -> Result<(), KeysError> {
        self.expect(b'{')?;
        self.ws();
        if self.b.get(self.at) == Some(&b'}') {
            self.at += 1;
            return Ok(());
        }
        loop {
            self.expect(b'"')?;
            let (start, end, _) = self.string_body()?;
            self.expect(b':')?;
            self.ws();
            // Keys are UTF-8 (skipped values need not be, as for serde).
            let key = &self.b[start..end];
            if !key.is_ascii() && std::str::from_utf8(key).is_err() {
                return Err(KeysError::Malformed(start));
            }
            each(self, key)?;
            self.ws();
            match self.b.get(self.at) {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return self.malformed(),
            }
        }
    }

    /// `metadata`: its protocol and first route.
    #[allow(clippy::type_complexity)]
    fn metadata(&mut self) -> Result<(Cow<'a, str>, Option<Cow<'a, str>>), KeysError> {
        let (mut protocol, mut routes) = (None, None);
        self.ws();
        if self.b.get(self.at) != Some(&b'{') {
            return Err(KeysError::WrongType("metadata"));
        }
        self.object(|w, key| match key {
            b"protocol" if protocol.is_some() => Err(KeysError::Duplicate("protocol")),
            b"protocol" => {
                protocol = Some(w.string_value("protocol")?);
                Ok(())
            }
            b"routes" if routes.is_some() => Err(KeysError::Duplicate("routes")),
            b"routes" => {
                routes = Some(w.first_string("routes")?);
                Ok(())
            }
            _ => w.skip_value(),
        })?;
        Ok((protocol.unwrap_or_default(), routes.flatten()))
    }

    /// An array of strings; its first, if any.
    fn first_string(&mut self, field: &'static str) -> Result<Option<Cow<'a, str>>, KeysError> {
        self.expect(b'[')?;
        self.ws();
        if self.b.get(self.at) == Some(&b']') {
            self.at += 1;
            return Ok(None);
        }
        let mut first = None;
        loop {
            let s = self.string_value(field)?;
            first.get_or_insert(s);
            self.ws();
            match self.b.get(self.at) {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(first);
                }
                _ => return self.malformed(),
            }
        }
    }

    /// A string value, unescaped only when it has escapes.
    fn string_value(&mut self, field: &'static str) -> Result<Cow<'a, str>, KeysError> {
        self.ws();
        if self.b.get(self.at) != Some(&b'"') {
            return Err(KeysError::WrongType(field));
        }
        let open = self.at;
        self.at += 1;
        let (start, end, escaped) = self.string_body()?;
        let b: &'a [u8] = self.b;
        if escaped {
            // Rare (quotes, backslashes, control characters in a name):
            // serde_json does the unescaping.
            serde_json::from_slice::<String>(&b[open..=end])
                .map(Cow::Owned)
                .map_err(|_| KeysError::Malformed(open))
        } else {
            std::str::from_utf8(&b[start..end])
                .map(Cow::Borrowed)
                .map_err(|_| KeysError::Malformed(start))
        }
    }

    /// After an opening quote: the body's span and whether it has an
    /// escape; leaves `at` after the closing quote. Escapes are checked
    /// for form only (a two-byte escape or `\u` and four hex digits).
    fn string_body(&mut self) -> Result<(usize, usize, bool), KeysError> {
        let start = self.at;
        let mut escaped = false;
        loop {
            // Eight bytes at a time, to the first that needs a look.
            while let Some(chunk) = self.b.get(self.at..self.at + 8) {
                let mask = escape_mask(u64::from_le_bytes(chunk.try_into().expect("eight bytes")));
                if mask != 0 {
                    self.at += mask.trailing_zeros() as usize / 8;
                    break;
                }
                self.at += 8;
            }
            match self.b.get(self.at) {
                None => return self.malformed(),
                Some(b'"') => {
                    self.at += 1;
                    return Ok((start, self.at - 1, escaped));
                }
                Some(b'\\') => {
                    escaped = true;
                    self.at += 1;
                    match self.b.get(self.at) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                            self.at += 1
                        }
                        Some(b'u') => {
                            let hex = self.b.get(self.at + 1..self.at + 5);
                            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                                return self.malformed();
                            }
                            self.at += 5;
                        }
                        _ => return self.malformed(),
                    }
                }
                Some(&c) if c < 0x20 => return self.malformed(),
                Some(_) => self.at += 1,
            }
        }
    }

    /// Skips one value of any kind, nested at most [`MAX_DEPTH`] deep.
    fn skip_value(&mut self) -> Result<(), KeysError> {
        // Open containers as a stack of bits: 1 = object, 0 = array.
        let mut open: u64 = 0;
        let mut depth = 0usize;
        loop {
            self.ws();
            // A value.
            match self.b.get(self.at) {
                Some(b'"') => {
                    self.at += 1;
                    self.string_body()?;
                }
                Some(&c @ (b'{' | b'[')) => {
                    if depth == MAX_DEPTH {
                        return Err(KeysError::TooDeep);
                    }
                    self.at += 1;
                    open = open << 1 | u64::from(c == b'{');
                    depth += 1;
                    self.ws();
                    let close = if c == b'{' { b'}' } else { b']' };
                    if self.b.get(self.at) == Some(&close) {
                        self.at += 1;
                        open >>= 1;
                        depth -= 1;
                    } else {
                        if c == b'{' {
                            self.key()?;
                        }
                        continue;
                    }
                }
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'n') => self.literal(b"null")?,
                Some(b'-' | b'0'..=b'9') => self.number()?,
                _ => return self.malformed(),
            }
            // After a value: the next one, or close containers.
            loop {
                if depth == 0 {
                    return Ok(());
                }
                self.ws();
                let in_object = open & 1 == 1;
                match self.b.get(self.at) {
                    Some(b',') => {
                        self.at += 1;
                        if in_object {
                            self.key()?;
                        }
                        break;
                    }
                    Some(b'}') if in_object => {}
                    Some(b']') if !in_object => {}
                    _ => return self.malformed(),
                }
                self.at += 1;
                open >>= 1;
                depth -= 1;
            }
        }
    }

    /// A key and its colon, inside an object being skipped.
    fn key(&mut self) -> Result<(), KeysError> {
        self.expect(b'"')?;
        self.string_body()?;
        self.expect(b':')
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), KeysError> {
        if self.b[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(())
        } else {
            self.malformed()
        }
    }

    /// A JSON number: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn number(&mut self) -> Result<(), KeysError> {
        let digits = |w: &mut Self| {
            let from = w.at;
            while w.b.get(w.at).is_some_and(u8::is_ascii_digit) {
                w.at += 1;
            }
            w.at > from
        };
        if self.b.get(self.at) == Some(&b'-') {
            self.at += 1;
        }
        if self.b.get(self.at) == Some(&b'0') {
            self.at += 1;
        } else if !digits(self) {
            return self.malformed();
        }
        if self.b.get(self.at) == Some(&b'.') {
            self.at += 1;
            if !digits(self) {
                return self.malformed();
            }
        }
        if let Some(b'e' | b'E') = self.b.get(self.at) {
            self.at += 1;
            if let Some(b'+' | b'-') = self.b.get(self.at) {
                self.at += 1;
            }
            if !digits(self) {
                return self.malformed();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod serde_oracle;

#[cfg(test)]
mod tests {
    use super::serde_oracle::SerdeKeys;
    use super::*;
    use proptest::prelude::*;

    fn keys_of(e: &crate::Event) -> EventKeys<'static> {
        EventKeys {
            event_id: e.event_id.clone().into(),
            operation_type: e.operation_type.as_str().into(),
            file_path: e.file_path.clone().into(),
            volume_name: e.volume_name.clone().into(),
            svm_name: e.svm_name.clone().into(),
            protocol: e.metadata.protocol.clone().into(),
            first_route: e.metadata.routes.first().cloned().map(Cow::Owned),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn any_written_event_reads_back_its_keys(event in crate::json::tests::event()) {
            let mut json = Vec::new();
            crate::json::write_event(&event, &mut json);
            prop_assert_eq!(read(&json).unwrap(), keys_of(&event));
            // The same through serde_json's pretty printer (other
            // whitespace, and other escapes than ours).
            let pretty = serde_json::to_vec_pretty(&event).unwrap();
            prop_assert_eq!(read(&pretty).unwrap(), keys_of(&event));
        }

        #[test]
        fn a_damaged_event_is_read_as_serde_reads_it(
            event in crate::json::tests::event(),
            damage in proptest::collection::vec(
                (any::<prop::sample::Index>(), prop::sample::select(DAMAGE.to_vec())),
                1..4,
            ),
        ) {
            // Oracle: the serde parse this replaced. Any byte replaced by
            // one that matters to JSON: both refuse it, or both read the
            // same keys.
            let mut json = Vec::new();
            crate::json::write_event(&event, &mut json);
            for (at, byte) in damage {
                let i = at.index(json.len());
                json[i] = byte;
            }
            let ours = read(&json).ok();
            let theirs = serde_json::from_slice::<SerdeKeys<'_>>(&json)
                .ok()
                .map(SerdeKeys::into_keys);
            prop_assert_eq!(ours, theirs, "{}", String::from_utf8_lossy(&json));
        }

        #[test]
        fn no_input_panics(json in proptest::collection::vec(any::<u8>(), 0..96)) {
            let _ = read(&json);
        }
    }

    const DAMAGE: [u8; 21] = *b"\"\\{}[],:01-e.tn \t\nx\x01\x80";

    #[test]
    fn keys_in_any_order_with_unknown_fields_and_escapes() {
        let json = br#" { "metadata" : { "x": [1, {"a": [true, false, null]}, -0.5e+3],
            "routes": ["audit", "other"], "protocol": "nfs" },
          "unknown": {"nested": [[], {}]},
          "svm_name": "svm\"1", "volume_name": "vol\u00e91", "file_path": "/a\\b",
          "operation_type": "create", "event_id": "id-1" } "#;
        let k = read(json).unwrap();
        assert_eq!(k.svm_name, "svm\"1");
        assert_eq!(k.volume_name, "vol\u{e9}1");
        assert_eq!(k.file_path, "/a\\b");
        assert!(matches!(k.event_id, Cow::Borrowed("id-1")));
        assert_eq!(k.protocol, "nfs");
        assert_eq!(k.first_route.as_deref(), Some("audit"));
    }

    #[test]
    fn missing_mistyped_repeated_and_malformed_fields_are_refused() {
        let base = r#"{"event_id":"i","operation_type":"create","file_path":"/f","volume_name":"v","svm_name":"s","metadata":{}}"#;
        let k = read(base.as_bytes()).unwrap();
        assert_eq!((k.protocol.as_ref(), k.first_route), ("", None));
        let cases = [
            (
                base.replace(r#""event_id":"i","#, ""),
                KeysError::Missing("event_id"),
            ),
            (
                base.replace(r#","metadata":{}"#, ""),
                KeysError::Missing("metadata"),
            ),
            (
                base.replace(r#""v""#, "7"),
                KeysError::WrongType("volume_name"),
            ),
            (
                base.replace(r#"{}"#, "[]"),
                KeysError::WrongType("metadata"),
            ),
            (
                base.replace(r#"{}"#, r#"{"routes":[1]}"#),
                KeysError::WrongType("routes"),
            ),
            (
                base.replace(r#""svm_name":"s""#, r#""svm_name":"s","svm_name":"t""#),
                KeysError::Duplicate("svm_name"),
            ),
        ];
        for (json, want) in cases {
            assert_eq!(read(json.as_bytes()), Err(want), "{json}");
        }
        for junk in [
            "",
            "{",
            "[]",
            r#"{"event_id":"i"} x"#,
            r#"{"a":01}"#,
            r#"{"a":"\x"}"#,
            "{\"a\":\"\u{1}\"}",
            r#"{"a":[1,]}"#,
            r#"{"a":{"b"}}"#,
            r#"{"a":tru}"#,
            r#"{"a":[}"#,
        ] {
            assert!(
                matches!(read(junk.as_bytes()), Err(KeysError::Malformed(_))),
                "{junk}"
            );
        }
        let deep = format!(r#"{{"a":{}{}}}"#, "[".repeat(40), "]".repeat(40));
        assert_eq!(read(deep.as_bytes()), Err(KeysError::TooDeep));
    }
}
