//! The ONTAP REST control plane of fpolicy-bridge: registration of the
//! FPolicy engine, events and policy; the server list; connection state;
//! volume and SVM names.

pub mod advertise;
pub mod client;
pub mod error;
pub mod names;
pub mod register;
pub mod types;
pub mod users;

pub use client::{Endpoint, OntapClient};
pub use error::OntapError;
pub use names::OntapNames;
pub use register::{Control, Registration, ServerChange, Status};
