//! Every write-side file operation of the spool goes through here, so that
//! tests can make any one of them fail (ENOSPC, EIO, a short write) and
//! check that the spool never leaves bytes a later write would follow.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

/// The write-side operations of the spool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IoOp {
    /// Appending a commit's records to a segment.
    Write,
    /// `fdatasync` of a segment.
    Sync,
    /// Reserving space ahead of the data (`fallocate`).
    Reserve,
    /// Cutting a segment back to its last good byte.
    Truncate,
    /// Creating a segment file.
    Create,
    /// Writing a cursor file.
    Cursor,
    /// Writing a quarantine file or a repaired segment.
    Repair,
}

/// A failure a [`FaultHook`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InjectedFault {
    /// The OS error to report (`libc::ENOSPC`, `libc::EIO`, …).
    pub errno: i32,
    /// For [`IoOp::Write`]: bytes that reach the file before the error.
    pub partial: usize,
}

/// Test support: decides whether the next operation fails.
pub trait FaultHook: Send + Sync + std::fmt::Debug {
    fn before(&self, op: IoOp, len: usize) -> Option<InjectedFault>;
}

/// The spool's handle on fault injection (none in production).
#[derive(Debug, Clone, Default)]
pub(crate) struct Faults(pub Option<Arc<dyn FaultHook>>);

impl Faults {
    fn check(&self, op: IoOp, len: usize) -> Option<InjectedFault> {
        self.0.as_ref().and_then(|h| h.before(op, len))
    }

    fn fail(&self, op: IoOp) -> io::Result<()> {
        match self.check(op, 0) {
            Some(f) => Err(io::Error::from_raw_os_error(f.errno)),
            None => Ok(()),
        }
    }

    pub fn write_all(&self, file: &mut File, bytes: &[u8]) -> io::Result<()> {
        if let Some(f) = self.check(IoOp::Write, bytes.len()) {
            let keep = f.partial.min(bytes.len());
            file.write_all(&bytes[..keep])?;
            return Err(io::Error::from_raw_os_error(f.errno));
        }
        file.write_all(bytes)
    }

    pub fn sync_data(&self, file: &File) -> io::Result<()> {
        self.fail(IoOp::Sync)?;
        file.sync_data()
    }

    pub fn set_len(&self, file: &File, len: u64) -> io::Result<()> {
        self.fail(IoOp::Truncate)?;
        file.set_len(len)?;
        file.sync_all()
    }

    /// Reserves `[offset, offset + len)` without changing the file size,
    /// so that later writes there cannot fail for lack of space. Returns
    /// `Ok(false)` when the file system cannot reserve.
    pub fn reserve(&self, file: &File, offset: u64, len: u64) -> io::Result<bool> {
        self.fail(IoOp::Reserve)?;
        reserve(file, offset, len)
    }

    /// Gives back reserved space past `from` (a sealed segment).
    pub fn release(&self, file: &File, from: u64, len: u64) {
        release(file, from, len);
    }

    /// Creates (or replaces) `path` with `bytes`, synced.
    pub fn create_file(&self, op: IoOp, path: &Path, bytes: &[u8]) -> io::Result<File> {
        let mut f = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(path)?;
        if let Some(fault) = self.check(op, bytes.len()) {
            let keep = fault.partial.min(bytes.len());
            f.write_all(&bytes[..keep])?;
            return Err(io::Error::from_raw_os_error(fault.errno));
        }
        f.write_all(bytes)?;
        f.sync_all()?;
        Ok(f)
    }
}

#[cfg(target_os = "linux")]
fn reserve(file: &File, offset: u64, len: u64) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    let (Ok(off), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return Ok(false);
    };
    // SAFETY: a valid open descriptor; fallocate only reads its arguments.
    let r = unsafe { libc::fallocate(file.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, off, len) };
    if r == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) => Ok(false),
        _ => Err(e),
    }
}

#[cfg(not(target_os = "linux"))]
fn reserve(_file: &File, _offset: u64, _len: u64) -> io::Result<bool> {
    Ok(false)
}

#[cfg(target_os = "linux")]
fn release(file: &File, from: u64, len: u64) {
    use std::os::fd::AsRawFd;
    if let (Ok(off), Ok(len)) = (i64::try_from(from), i64::try_from(len))
        && len > 0
    {
        // SAFETY: as above. Best effort: a failure only keeps space reserved.
        unsafe {
            libc::fallocate(
                file.as_raw_fd(),
                libc::FALLOC_FL_KEEP_SIZE | libc::FALLOC_FL_PUNCH_HOLE,
                off,
                len,
            );
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn release(_file: &File, _from: u64, _len: u64) {}

/// True for "no space left" and "quota exceeded".
/// Bytes an unprivileged writer can still use on the file system that
/// holds `path` (for the disk-space metric and alerts).
pub fn free_bytes(path: &Path) -> io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: c_path is a valid NUL-terminated string and st a writable
    // statvfs the call fills on success (checked before it is read).
    let r = unsafe { libc::statvfs(c_path.as_ptr(), st.as_mut_ptr()) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it initialised st.
    let st = unsafe { st.assume_init() };
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

pub fn is_no_space(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(code) if code == libc_enospc() || code == libc_edquot())
}

#[cfg(unix)]
fn libc_enospc() -> i32 {
    libc::ENOSPC
}
#[cfg(unix)]
fn libc_edquot() -> i32 {
    libc::EDQUOT
}
#[cfg(not(unix))]
fn libc_enospc() -> i32 {
    28
}
#[cfg(not(unix))]
fn libc_edquot() -> i32 {
    122
}
