//! The FPolicy server, named after the data's path: the listener admits a
//! connection, the [`connection`] owns its read side, the [`handshake`]
//! establishes it, the session reads frames into the ingest step, and the
//! [`writer`] owns the write side.

mod connection;
mod handshake;
mod listener;
pub mod names;
mod session;
pub mod tls;
mod writer;

pub use listener::{ServerContext, serve_listener};
pub use session::run_session;
