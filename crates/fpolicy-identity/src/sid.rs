//! Security identifiers. Binary layout (MS-DTYP 2.4.2.2): revision (1
//! byte), number of sub-authorities (1 byte, at most 15), identifier
//! authority (6 bytes, big-endian), then each sub-authority (4 bytes,
//! little-endian). Text form: `S-1-5-21-…`.

/// The text form of a binary SID, or `None` when the bytes are not one.
pub fn sid_to_string(bytes: &[u8]) -> Option<String> {
    let (&revision, rest) = bytes.split_first()?;
    let (&count, rest) = rest.split_first()?;
    let count = usize::from(count);
    if revision != 1 || count > 15 || rest.len() != 6 + 4 * count {
        return None;
    }
    let (authority, subs) = rest.split_at(6);
    let authority = authority
        .iter()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    let mut out = if authority < 1 << 32 {
        format!("S-1-{authority}")
    } else {
        format!("S-1-0x{authority:012X}")
    };
    for sub in subs.chunks_exact(4) {
        let v = u32::from_le_bytes([sub[0], sub[1], sub[2], sub[3]]);
        out.push('-');
        out.push_str(&v.to_string());
    }
    Some(out)
}

/// The binary form of a text SID (the inverse of [`sid_to_string`]).
pub fn sid_to_bytes(text: &str) -> Option<Vec<u8>> {
    let mut parts = text.strip_prefix("S-1-")?.split('-');
    let authority: u64 = parts.next()?.parse().ok()?;
    let subs: Vec<u32> = parts.map(|p| p.parse().ok()).collect::<Option<_>>()?;
    if authority >= 1 << 48 || subs.len() > 15 {
        return None;
    }
    let mut out = vec![1, subs.len() as u8];
    out.extend_from_slice(&authority.to_be_bytes()[2..]);
    for s in subs {
        out.extend_from_slice(&s.to_le_bytes());
    }
    Some(out)
}

/// Names of SIDs that mean the same on every Windows system.
const WELL_KNOWN: &[(&str, &str)] = &[
    ("S-1-0-0", "NULL SID"),
    ("S-1-1-0", "Everyone"),
    ("S-1-2-0", "LOCAL"),
    ("S-1-3-0", "CREATOR OWNER"),
    ("S-1-3-1", "CREATOR GROUP"),
    ("S-1-5-2", "NETWORK"),
    ("S-1-5-4", "INTERACTIVE"),
    ("S-1-5-6", "SERVICE"),
    ("S-1-5-7", "ANONYMOUS LOGON"),
    ("S-1-5-9", "ENTERPRISE DOMAIN CONTROLLERS"),
    ("S-1-5-11", "Authenticated Users"),
    ("S-1-5-18", "SYSTEM"),
    ("S-1-5-19", "LOCAL SERVICE"),
    ("S-1-5-20", "NETWORK SERVICE"),
    ("S-1-5-32-544", "Administrators"),
    ("S-1-5-32-545", "Users"),
    ("S-1-5-32-546", "Guests"),
    ("S-1-5-32-547", "Power Users"),
    ("S-1-5-32-548", "Account Operators"),
    ("S-1-5-32-549", "Server Operators"),
    ("S-1-5-32-550", "Print Operators"),
    ("S-1-5-32-551", "Backup Operators"),
];

/// The name of a well-known SID (case of the `S` ignored).
pub fn well_known_sid(sid: &str) -> Option<&'static str> {
    WELL_KNOWN
        .iter()
        .find(|(s, _)| s.eq_ignore_ascii_case(sid))
        .map(|(_, n)| *n)
}

/// Every well-known SID and its name.
pub fn well_known_sids() -> impl Iterator<Item = (&'static str, &'static str)> {
    WELL_KNOWN.iter().copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_what_active_directory_stores() {
        // S-1-5-21-3623811015-3361044348-30300820-1013
        let bytes = [
            1, 5, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0, 0xC7, 0xF7, 0xFE, 0xD7, 0x7C, 0x77, 0x55, 0xC8,
            0x94, 0x5A, 0xCE, 0x01, 0xF5, 0x03, 0, 0,
        ];
        assert_eq!(
            sid_to_string(&bytes).unwrap(),
            "S-1-5-21-3623811015-3361044348-30300820-1013"
        );
        assert_eq!(
            sid_to_string(&[1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0]).unwrap(),
            "S-1-5-18"
        );
        for bad in [
            &[][..],
            &[1],
            &[2, 0, 0, 0, 0, 0, 0, 5],
            &[1, 1, 0, 0, 0, 0, 0, 5, 18],
        ] {
            assert_eq!(sid_to_string(bad), None, "{bad:?}");
        }
        assert_eq!(well_known_sid("s-1-5-18"), Some("SYSTEM"));
        assert_eq!(well_known_sid("S-1-5-21-1-2-3-500"), None);
    }

    proptest! {
        #[test]
        fn text_and_binary_forms_round_trip(authority in 0u64..1 << 32, subs in proptest::collection::vec(any::<u32>(), 0..=15)) {
            let mut text = format!("S-1-{authority}");
            for s in &subs {
                text.push_str(&format!("-{s}"));
            }
            let bytes = sid_to_bytes(&text).unwrap();
            prop_assert_eq!(sid_to_string(&bytes).unwrap(), text);
        }

        #[test]
        fn any_bytes_decode_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = sid_to_string(&bytes);
        }
    }
}
