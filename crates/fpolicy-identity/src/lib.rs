//! User identity for fpolicy-bridge. FPolicy carries a Windows SID (SMB)
//! and/or a UNIX UID (NFS), never a name; this crate turns them into names.
//!
//! - [`sid`]: SIDs in binary (as Active Directory stores `objectSid`) and
//!   text form, and the well-known SIDs that need no directory.
//! - [`table`]: the in-memory table every event is looked up in (no I/O;
//!   compact enough for hundreds of thousands of users), and
//!   [`Identities`], the shared handle whose table a refresh swaps whole.
//! - [`ldap`]: the bulk sync from LDAP or Active Directory (paged search,
//!   LDAPS or StartTLS).

pub mod ldap;
pub mod sid;
pub mod table;

pub use table::{DirectoryUser, Identities, IdentityTable, TableBuilder, UserEntry};
