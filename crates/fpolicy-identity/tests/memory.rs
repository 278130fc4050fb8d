//! The table's size for 300,000 users, measured with a counting allocator
//! (the bound: well under 100 MiB). Run with `--nocapture` to see
//! the figure quoted in docs/benchmarks.md.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};

use fpolicy_identity::{DirectoryUser, TableBuilder};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator and only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// AD-like users: two domains, a SID for each, a UID for half of them,
/// names and principals of realistic length.
fn user(i: u32) -> DirectoryUser {
    DirectoryUser {
        sid: Some(format!(
            "S-1-5-21-3623811015-3361044348-{}-{}",
            30300820 + i % 2,
            1000 + i
        )),
        uid: i.is_multiple_of(2).then_some(100_000 + i),
        name: format!("user{i:06}"),
        principal: Some(format!("user{i:06}@corp.example.com")),
    }
}

#[test]
fn three_hundred_thousand_users_fit_well_under_100_mib() {
    let before = LIVE.load(Relaxed);
    let mut b = TableBuilder::with_well_known();
    for i in 0..300_000 {
        b.add(user(i));
    }
    let table = b.build();
    let bytes = LIVE.load(Relaxed) - before;
    let mib = bytes as f64 / (1024.0 * 1024.0);
    println!(
        "identity table, 300,000 users: {mib:.1} MiB ({} bytes/user)",
        bytes / 300_000
    );
    assert_eq!(table.users(), 300_000 + 23);
    assert!(mib < 64.0, "{mib:.1} MiB");
    let found = table.lookup(Some("S-1-5-21-3623811015-3361044348-30300821-1001"), None);
    assert_eq!(&*found.unwrap().name, "user000001");
}
