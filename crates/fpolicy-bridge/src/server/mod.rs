//! The FPolicy server: listener, sessions, TLS.

mod listener;
mod session;
pub mod tls;

pub use listener::{ServerContext, serve_listener};
pub use session::run_session;
