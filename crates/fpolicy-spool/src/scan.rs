//! Pure record scanning of one segment's bytes: no I/O, so every byte
//! pattern can be tested (and fuzzed).
//!
//! A scan walks the records from just after the magic. A record is valid
//! when its length is within the format limit, it fits in the data, its
//! sequence number is above the previous valid record's (and below the
//! next segment's first, when known) and its CRC matches. At an invalid
//! record the scan resynchronises: it looks for the next offset where a
//! valid record starts. The bytes skipped are a damaged region; bad bytes
//! with no valid record after them are the tail.

use crate::{FORMAT_MAX_RECORD_BYTES, MAGIC, RECORD_HEADER, crc};

/// Index entry every this many records of a segment.
pub(crate) const INDEX_EVERY: u64 = 256;

/// Bytes that are not part of any valid record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    /// Byte offset in the segment file.
    pub offset: u64,
    pub len: u64,
    /// Sequence numbers known to be lost: from `.0` through `.1`
    /// (inclusive). `None` as the upper bound when nothing follows that
    /// would bound it (a tail of the last segment). Empty ranges (the
    /// region held no whole record's worth of numbers) are `None`.
    pub lost: Option<(u64, Option<u64>)>,
}

impl Region {
    /// How many records are known lost (0 when the upper bound is open).
    pub fn lost_records(&self) -> u64 {
        match self.lost {
            Some((from, Some(to))) => to + 1 - from,
            _ => 0,
        }
    }
}

/// What a scan found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Scan {
    /// (seq, offset, total length) of each valid record, in order.
    pub records: Vec<(u64, u64, u64)>,
    /// The magic is missing or wrong (bytes 0..8 are a damaged region).
    pub bad_magic: bool,
    /// Damaged regions followed by a valid record.
    pub damage: Vec<Region>,
    /// Bad bytes after the last valid record, up to the end of the data.
    pub tail: Option<Region>,
}

impl Scan {
    pub fn is_clean(&self) -> bool {
        !self.bad_magic && self.damage.is_empty() && self.tail.is_none()
    }

    /// Offset just after the last valid record (where appends continue
    /// once the tail is cut).
    pub fn end(&self) -> u64 {
        self.records
            .last()
            .map_or(MAGIC.len() as u64, |(_, off, len)| off + len)
    }

    /// One past the highest valid sequence number.
    pub fn end_seq(&self) -> Option<u64> {
        self.records.last().map(|(seq, _, _)| seq + 1)
    }

    /// Sparse index: (seq, offset) of every INDEX_EVERY-th record.
    pub fn index(&self) -> Vec<(u64, u64)> {
        self.records
            .iter()
            .step_by(INDEX_EVERY as usize)
            .map(|(seq, off, _)| (*seq, *off))
            .collect()
    }
}

/// The record starting at `at`, if it is valid: (seq, total length).
fn record_at(data: &[u8], at: usize, min_seq: u64, limit_seq: Option<u64>) -> Option<(u64, usize)> {
    let header = data.get(at..at.checked_add(RECORD_HEADER)?)?;
    let len = u32::from_le_bytes(header[..4].try_into().ok()?) as usize;
    let sum = u32::from_le_bytes(header[4..8].try_into().ok()?);
    let seq = u64::from_le_bytes(header[8..16].try_into().ok()?);
    if len > FORMAT_MAX_RECORD_BYTES || seq < min_seq || limit_seq.is_some_and(|l| seq >= l) {
        return None;
    }
    let payload = data.get(at + RECORD_HEADER..at + RECORD_HEADER + len)?;
    (crc(seq, payload) == sum).then_some((seq, RECORD_HEADER + len))
}

/// Scans a segment whose file name says its first record is `first_seq`.
/// `limit_seq` is the next segment's first sequence number, if any:
/// records at or above it cannot belong here.
pub(crate) fn scan(data: &[u8], first_seq: u64, limit_seq: Option<u64>) -> Scan {
    let mut out = Scan {
        bad_magic: data.get(..MAGIC.len()) != Some(&MAGIC[..]),
        ..Scan::default()
    };
    let mut at = MAGIC.len().min(data.len());
    let mut min_seq = first_seq;
    let lost = |from: u64, to: Option<u64>| match to {
        Some(to) if to < from => None,
        to => Some((from, to)),
    };
    while at < data.len() {
        if let Some((seq, total)) = record_at(data, at, min_seq, limit_seq) {
            out.records.push((seq, at as u64, total as u64));
            at += total;
            min_seq = seq + 1;
            continue;
        }
        let next = (at + 1..data.len())
            .find_map(|o| record_at(data, o, min_seq, limit_seq).map(|(seq, _)| (o, seq)));
        match next {
            Some((o, seq)) => {
                out.damage.push(Region {
                    offset: at as u64,
                    len: (o - at) as u64,
                    lost: seq.checked_sub(1).and_then(|to| lost(min_seq, Some(to))),
                });
                at = o;
            }
            None => {
                out.tail = Some(Region {
                    offset: at as u64,
                    len: (data.len() - at) as u64,
                    lost: match limit_seq {
                        Some(l) => l.checked_sub(1).and_then(|to| lost(min_seq, Some(to))),
                        None => lost(min_seq, None),
                    },
                });
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(seq: u64, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        v.extend_from_slice(&crc(seq, payload).to_le_bytes());
        v.extend_from_slice(&seq.to_le_bytes());
        v.extend_from_slice(payload);
        v
    }

    fn segment(first: u64, n: u64) -> Vec<u8> {
        let mut data = MAGIC.to_vec();
        for s in first..first + n {
            data.extend(rec(s, format!("payload {s}").as_bytes()));
        }
        data
    }

    #[test]
    fn clean_segment() {
        let data = segment(10, 5);
        let s = scan(&data, 10, None);
        assert!(s.is_clean());
        assert_eq!(s.records.len(), 5);
        assert_eq!(s.end(), data.len() as u64);
        assert_eq!(s.end_seq(), Some(15));
    }

    #[test]
    fn flip_in_the_middle_loses_one_record_only() {
        let mut data = segment(0, 10);
        let third = 8 + 2 * (16 + 9);
        data[third + 20] ^= 0xFF;
        let s = scan(&data, 0, None);
        assert_eq!(s.records.len(), 9);
        assert_eq!(s.damage.len(), 1);
        assert_eq!(s.damage[0].offset, third as u64);
        assert_eq!(s.damage[0].lost, Some((2, Some(2))));
        assert!(s.tail.is_none());
    }

    #[test]
    fn torn_tail_and_bounded_tail() {
        let mut data = segment(0, 4);
        let full = data.len();
        data.extend_from_slice(&rec(4, b"unfinished")[..12]);
        let s = scan(&data, 0, None);
        assert_eq!(s.records.len(), 4);
        assert_eq!(
            s.tail,
            Some(Region {
                offset: full as u64,
                len: 12,
                lost: Some((4, None))
            })
        );
        // The same tail in a segment followed by one starting at 6.
        let s = scan(&data, 0, Some(6));
        assert_eq!(s.tail.unwrap().lost, Some((4, Some(5))));
    }

    #[test]
    fn bad_magic_keeps_the_records() {
        let mut data = segment(0, 3);
        data[0] = b'X';
        let s = scan(&data, 0, None);
        assert!(s.bad_magic);
        assert_eq!(s.records.len(), 3);
    }

    #[test]
    fn records_past_the_next_segment_are_not_believed() {
        let data = segment(0, 5);
        let s = scan(&data, 0, Some(3));
        assert_eq!(s.records.len(), 3);
        assert_eq!(s.tail.unwrap().lost, None);
    }

    #[test]
    fn damage_before_a_rewritten_first_record() {
        // A fragment, then record 0 again (the shape a failed write leaves
        // if it could not be cut).
        let mut data = MAGIC.to_vec();
        data.extend_from_slice(&rec(0, b"first")[..10]);
        data.extend(rec(0, b"first"));
        let s = scan(&data, 0, None);
        assert_eq!(s.records.len(), 1);
        assert_eq!(s.damage[0].lost, None);
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_scan_without_panic(
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
            first in proptest::prelude::any::<u64>(),
            limit in proptest::option::of(proptest::prelude::any::<u64>()),
        ) {
            let s = scan(&data, first, limit);
            let mut covered = s.records.iter().map(|r| r.2).sum::<u64>();
            covered += s.damage.iter().chain(&s.tail).map(|r| r.len).sum::<u64>();
            proptest::prop_assert_eq!(covered + 8, (data.len() as u64).max(8));
        }
    }

    #[test]
    fn any_single_flip_loses_at_most_the_records_it_touches() {
        let data = segment(100, 8);
        for i in 0..data.len() {
            let mut d = data.clone();
            d[i] ^= 0x5A;
            let s = scan(&d, 100, None);
            // Only the record holding byte i may be gone.
            assert!(s.records.len() >= 7, "flip at {i}");
            for (seq, off, len) in &s.records {
                assert!(*seq >= 100 && *seq < 108);
                let range = *off as usize..(*off + *len) as usize;
                assert_eq!(&d[range.clone()], &data[range]);
            }
        }
    }
}
