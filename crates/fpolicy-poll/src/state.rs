//! Change detection by a streaming merge of two key-sorted sequences: the
//! state of the previous cycle and this cycle's listing (ListObjectsV2
//! returns keys in UTF-8 binary order). Memory stays O(1) in the number of
//! objects; the new state is written as the merge goes.

use std::cmp::Ordering;

/// What is known of one object.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObjectState {
    pub key: String,
    pub etag: String,
    pub size: u64,
    /// Unix seconds.
    pub last_modified: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Create,
    Write,
    Delete,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: ChangeKind,
    pub object: ObjectState,
}

/// Merges `old` and `new` (both sorted by key, unique) and reports each
/// change to `on_change`; every object of `new` goes to `keep` (the next
/// state).
pub fn diff_sorted<O, N>(
    old: O,
    new: N,
    mut on_change: impl FnMut(Change),
    mut keep: impl FnMut(&ObjectState),
) where
    O: IntoIterator<Item = ObjectState>,
    N: IntoIterator<Item = ObjectState>,
{
    let mut old = old.into_iter().peekable();
    let mut new = new.into_iter().peekable();
    loop {
        let order = match (old.peek(), new.peek()) {
            (None, None) => return,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(o), Some(n)) => o.key.as_bytes().cmp(n.key.as_bytes()),
        };
        match order {
            Ordering::Less => {
                let o = old.next().expect("peeked");
                on_change(Change {
                    kind: ChangeKind::Delete,
                    object: o,
                });
            }
            Ordering::Greater => {
                let n = new.next().expect("peeked");
                keep(&n);
                on_change(Change {
                    kind: ChangeKind::Create,
                    object: n,
                });
            }
            Ordering::Equal => {
                let o = old.next().expect("peeked");
                let n = new.next().expect("peeked");
                keep(&n);
                if o.etag != n.etag || o.size != n.size {
                    on_change(Change {
                        kind: ChangeKind::Write,
                        object: n,
                    });
                }
            }
        }
    }
}

/// The volume-relative path of an object key: `path_prefix` (where the
/// access point's root sits in the volume) joined with the key.
pub fn file_path(path_prefix: &str, key: &str) -> String {
    let mut out = String::with_capacity(path_prefix.len() + key.len() + 1);
    for part in path_prefix
        .split('/')
        .chain(key.split('/'))
        .filter(|p| !p.is_empty())
    {
        out.push('/');
        out.push_str(part);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}
