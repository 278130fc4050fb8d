//! The FPolicy event model: from a typed SCREEN_REQ to the JSON event every
//! sink delivers. No I/O, so all of it is tested exhaustively.
//!
//! - [`normalize`]: request + session → [`Event`]
//! - [`screen`]: deny rules for synchronous engines
//! - [`record`]: the event's spool record
//! - [`keys`]: the names sinks key and route by, read back from the JSON
//! - [`coalesce`]: write-complete coalescing over durable records
//! - [`route`]: per-use-case routing to sinks
//! - [`names`]: volume/SVM name resolution (the seam for ONTAP REST)
//! - [`time`]: RFC 3339 formatting and parsing
//! - [`filter`]: noise filters (temporary files, paths, users, clients)
//! - [`users`]: users named by name, SID or UID
//! - [`cidr`]: IPv4/IPv6 CIDR blocks
//! - [`format`]: output formats (S3 notifications, OCSF, ECS, CEF)

pub mod cidr;
pub mod coalesce;
pub mod event;
pub mod filter;
pub mod format;
pub mod id;
pub mod json;
pub mod keys;
pub mod names;
pub mod normalize;
pub mod record;
pub mod route;
pub mod screen;
pub mod time;
pub mod users;

pub use coalesce::{CoalesceConfig, CoalesceStats, Coalescer, Emitted};
pub use event::{Event, Metadata, Operation};
pub use filter::{FilterConfig, FilterReason, NoiseFilter};
pub use format::{AccessPoint, AccessPoints, Format};
pub use names::{NameResolver, NameState, StaticNames};
pub use normalize::{EngineType, GenerationTimeUnit, Normalizer, SessionInfo};
pub use record::RecordView;
pub use route::{RouteConfig, Router, Routing};
pub use screen::{ScreeningRules, Verdict};
pub use users::UserSet;
