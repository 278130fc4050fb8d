//! Change detection by a streaming merge of two key-sorted sequences: the
//! state of the previous cycle and this cycle's listing (ListObjectsV2
//! returns keys in UTF-8 binary order). Memory stays O(1) in the number of
//! objects; the new state is written as the merge goes.

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

/// Incremental merge: feed this cycle's listing in key order with
/// [`Merger::push`] (a page at a time), then [`Merger::finish`]. The old
/// state is read lazily, so memory does not grow with the object count.
pub struct Merger<O: Iterator<Item = ObjectState>> {
    old: std::iter::Peekable<O>,
}

impl<O: Iterator<Item = ObjectState>> Merger<O> {
    pub fn new(old: O) -> Self {
        Merger {
            old: old.peekable(),
        }
    }

    /// One object of the new listing (keys strictly increasing).
    pub fn push(
        &mut self,
        n: ObjectState,
        on_change: &mut impl FnMut(Change),
        keep: &mut impl FnMut(&ObjectState),
    ) {
        while let Some(o) = self.old.next_if(|o| o.key.as_bytes() < n.key.as_bytes()) {
            on_change(Change {
                kind: ChangeKind::Delete,
                object: o,
            });
        }
        keep(&n);
        match self.old.next_if(|o| o.key == n.key) {
            Some(o) if o.etag == n.etag && o.size == n.size => {}
            Some(_) => on_change(Change {
                kind: ChangeKind::Write,
                object: n,
            }),
            None => on_change(Change {
                kind: ChangeKind::Create,
                object: n,
            }),
        }
    }

    /// Every old object not seen in the listing is gone.
    pub fn finish(mut self, on_change: &mut impl FnMut(Change)) {
        for o in self.old.by_ref() {
            on_change(Change {
                kind: ChangeKind::Delete,
                object: o,
            });
        }
    }
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
    let mut merger = Merger::new(old.into_iter());
    for n in new {
        merger.push(n, &mut on_change, &mut keep);
    }
    merger.finish(&mut on_change);
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
