//! `fpolicy-bridge top`: a live view of a running server from its admin
//! endpoint (`/metrics` and `/sessions`), refreshed every second. The
//! numbers come from [`model`] (pure, tested from recorded text); the
//! screen from [`render`] (ratatui).

pub mod model;
pub mod render;
