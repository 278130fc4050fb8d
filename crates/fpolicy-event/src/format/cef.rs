//! ArcSight Common Event Format (CEF:0), one line per event, for syslog.
//!
//! Header: `CEF:0|NetApp|ONTAP FPolicy|<bridge version>|<operation>|<phrase>|<severity>|`
//! with severity 1 (reads, opens, lookups), 3 (creations, writes,
//! renames, attributes), 5 (deletions), 7 (a synchronous deny).
//!
//! | extension | from |
//! |---|---|
//! | `rt` | the event's time, ms since the epoch |
//! | `act` | the operation |
//! | `outcome` | `allow` or `deny` (synchronous engines), else `success` |
//! | `src` | the client's address |
//! | `suser` | the user's name |
//! | `suid` | the SID or UID |
//! | `fname` | the file name |
//! | `filePath` | the path (for renames: the new one) |
//! | `oldFilePath` | renames: the old path |
//! | `fsize` | the size (files) |
//! | `fileType` | `file`, `dir` or `symlink` |
//! | `dvchost` | the SVM |
//! | `app` | the protocol (`smb`, `nfsv3`, …) |
//! | `externalId` | the event_id |
//! | `cs1Label=Volume cs1` | the volume |
//! | `cs2Label=SVM cs2` | the SVM |
//! | `cs3Label=ScreeningRule cs3` | the rule that denied it |
//!
//! Escaping as CEF requires: `\` and `|` in the header, `\` and `=` in
//! extension values, and line breaks (`\n`, `\r`) in both.

use std::fmt::Write as _;

use super::{PRODUCT, VENDOR};
use crate::event::{Event, Operation};

/// CEF severity (0-10) of an event.
pub fn severity(event: &Event) -> u8 {
    if super::denied(event) {
        return 7;
    }
    match event.operation_type {
        Operation::Delete | Operation::DeleteDir => 5,
        Operation::Read
        | Operation::Open
        | Operation::Close
        | Operation::Getattr
        | Operation::Lookup => 1,
        _ => 3,
    }
}

fn header_field(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '|' => out.push_str("\\|"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
}

fn extension_value(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '=' => out.push_str("\\="),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

/// Appends the CEF line of `event` (no line break) to `out`.
pub fn render(event: &Event, version: &str, out: &mut String) {
    let m = &event.metadata;
    out.push_str("CEF:0|");
    for field in [VENDOR, PRODUCT, version, event.operation_type.as_str()] {
        header_field(out, field);
        out.push('|');
    }
    header_field(out, super::describe(event.operation_type));
    let _ = write!(out, "|{}|", severity(event));
    let mut first = true;
    let mut ext = |key: &str, value: &str| {
        if !first {
            out.push(' ');
        }
        first = false;
        out.push_str(key);
        out.push('=');
        extension_value(out, value);
    };
    ext("rt", &super::epoch_millis(&event.timestamp).to_string());
    ext("act", event.operation_type.as_str());
    ext("outcome", m.screening.as_deref().unwrap_or("success"));
    if let Some(ip) = &event.client_ip {
        ext("src", ip);
    }
    if let Some(name) = &m.user_name {
        ext("suser", name);
    }
    if let Some(id) = super::user_id(event) {
        ext("suid", &id);
    }
    ext("fname", super::file_name(&event.file_path));
    ext("filePath", &event.file_path);
    if let Some(old) = &event.previous_path {
        ext("oldFilePath", old);
    }
    let kind = if super::is_directory(event) {
        "dir"
    } else if super::is_symlink(event) {
        "symlink"
    } else {
        "file"
    };
    if kind == "file" {
        ext("fsize", &event.file_size.to_string());
    }
    ext("fileType", kind);
    ext("dvchost", &event.svm_name);
    ext("app", &m.protocol);
    ext("externalId", &event.event_id);
    ext("cs1Label", "Volume");
    ext("cs1", &event.volume_name);
    ext("cs2Label", "SVM");
    ext("cs2", &event.svm_name);
    if let Some(rule) = m.screening_rule.as_deref().filter(|_| super::denied(event)) {
        ext("cs3Label", "ScreeningRule");
        ext("cs3", rule);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::tests_support::{all_events, event};

    /// A small CEF reader (header split on unescaped `|`, extension split
    /// on unescaped `=` and the space before the next key), enough to
    /// check the escaping round-trips.
    fn parse(line: &str) -> (Vec<String>, Vec<(String, String)>) {
        let body = line.strip_prefix("CEF:").unwrap();
        let mut header = Vec::new();
        let mut cur = String::new();
        let mut chars = body.chars();
        while header.len() < 7 {
            match chars.next().unwrap() {
                '\\' => cur.push(chars.next().unwrap()),
                '|' => header.push(std::mem::take(&mut cur)),
                c => cur.push(c),
            }
        }
        let rest: String = chars.collect();
        // Tokens: split at unescaped '='; the key is the last word before it.
        let mut pieces = Vec::new();
        let mut cur = String::new();
        let mut it = rest.chars();
        while let Some(c) = it.next() {
            match c {
                '\\' => {
                    let n = it.next().unwrap();
                    cur.push(match n {
                        'n' => '\n',
                        'r' => '\r',
                        other => other,
                    });
                }
                '=' => pieces.push(std::mem::take(&mut cur)),
                c => cur.push(c),
            }
        }
        pieces.push(cur);
        let mut ext = Vec::new();
        let mut key = pieces[0].clone();
        for (i, p) in pieces.iter().enumerate().skip(1) {
            if i == pieces.len() - 1 {
                ext.push((key.clone(), p.clone()));
            } else {
                let (value, next) = p.rsplit_once(' ').unwrap();
                ext.push((key.clone(), value.to_owned()));
                key = next.to_owned();
            }
        }
        (header, ext)
    }

    #[test]
    fn every_event_has_a_header_and_its_extension() {
        for e in all_events() {
            let mut line = String::new();
            render(&e, "0.1.0", &mut line);
            let (h, ext) = parse(&line);
            assert_eq!(h[0], "0");
            assert_eq!(&h[1..4], ["NetApp", "ONTAP FPolicy", "0.1.0"]);
            assert_eq!(h[4], e.operation_type.as_str());
            assert_eq!(h[6], severity(&e).to_string());
            let get = |k: &str| {
                ext.iter()
                    .find(|(key, _)| key == k)
                    .map(|(_, v)| v.as_str())
            };
            assert_eq!(get("filePath"), Some(e.file_path.as_str()));
            assert_eq!(get("fname"), Some("q4 report+final.pdf"));
            assert_eq!(get("rt"), Some("1796205600123"));
            assert_eq!(get("dvchost"), Some("svm1"));
            assert_eq!(get("cs1"), Some("vol1"));
            assert_eq!(get("src"), Some("10.0.0.5"));
            assert_eq!(get("suser"), Some("alice"));
            assert_eq!(get("oldFilePath"), e.previous_path.as_deref());
        }
    }

    #[test]
    fn escaping_round_trips_through_a_reader() {
        let mut e = event(Operation::Rename, "smb");
        e.file_path = "/a=b\\c|d\ne".into();
        e.previous_path = Some("/x y=z".into());
        e.svm_name = "svm|1".into();
        let mut line = String::new();
        render(&e, "1|2", &mut line);
        assert!(!line.contains('\n'));
        let (h, ext) = parse(&line);
        assert_eq!(h[3], "1|2");
        let get = |k: &str| ext.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        assert_eq!(get("filePath").as_deref(), Some("/a=b\\c|d\ne"));
        assert_eq!(get("oldFilePath").as_deref(), Some("/x y=z"));
        assert_eq!(get("dvchost").as_deref(), Some("svm|1"));
    }

    proptest::proptest! {
        #[test]
        fn any_path_survives_the_escaping(path in "/\\PC{0,30}", svm in "\\PC{1,10}") {
            let mut e = event(Operation::Create, "smb");
            e.file_path = path.clone();
            e.svm_name = svm.clone();
            let mut line = String::new();
            render(&e, "0.1.0", &mut line);
            proptest::prop_assert!(!line.contains('\n') && !line.contains('\r'));
            let (_, ext) = parse(&line);
            let get = |k: &str| ext.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
            proptest::prop_assert_eq!(get("filePath"), Some(path));
            proptest::prop_assert_eq!(get("dvchost"), Some(svm));
        }
    }

    #[test]
    fn a_deny_is_severe_and_names_its_rule() {
        let mut e = event(Operation::Write, "smb");
        e.metadata.screening = Some("deny".into());
        e.metadata.screening_rule = Some("no-exe".into());
        let mut line = String::new();
        render(&e, "0.1.0", &mut line);
        assert!(line.contains("|7|"));
        assert!(line.contains("outcome=deny"));
        assert!(line.contains("cs3Label=ScreeningRule cs3=no-exe"));
    }
}
