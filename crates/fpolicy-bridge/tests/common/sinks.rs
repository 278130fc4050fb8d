//! Cloud sink configurations and a session that sends given paths, shared
//! by the moto tests (cloud.rs) and the fake-endpoint tests (sink_faults.rs).

use std::time::Duration;

use fpolicy_bridge::config::Config;
use fpolicy_bridge::sink::{EventBridgeSinkConfig, SqsSinkConfig};
use fpolicy_proto::{Message, ProtocolVersion, ReqType, sample};

use super::{RawClient, TestServer, base_config};

pub fn sqs(name: &str, url: &str, endpoint: &str) -> SqsSinkConfig {
    SqsSinkConfig {
        name: name.into(),
        queue_url: url.into(),
        max_in_flight: 4,
        max_events_per_sec: 0,
        api_calls_per_sec: 0.0,
        endpoint_url: Some(endpoint.into()),
        format: Default::default(),
    }
}

pub fn bus(name: &str, bus: &str, endpoint: &str) -> EventBridgeSinkConfig {
    EventBridgeSinkConfig {
        name: name.into(),
        event_bus_name: bus.into(),
        source: "fsxn.fpolicy".into(),
        detail_type: "FPolicy File Operation".into(),
        max_in_flight: 4,
        max_events_per_sec: 0,
        api_calls_per_sec: 0.0,
        endpoint_url: Some(endpoint.into()),
        format: Default::default(),
    }
}

/// A test server configuration with time to drain to a cloud sink.
pub fn cloud_config(dir: &std::path::Path) -> Config {
    let mut cfg = base_config(dir);
    cfg.shutdown.drain_timeout = Duration::from_secs(30);
    cfg
}

/// One session sends a notification per path, then a KEEP_ALIVE.
pub async fn send_paths(server: &TestServer, paths: &[(&str, ReqType)]) {
    let mut c = RawClient::session(server.addr, "audit", "cloud").await;
    for (i, (path, rt)) in paths.iter().enumerate() {
        c.send(&Message::ScreenReq(sample::screen_request(
            i as u64 + 1,
            *rt,
            path,
            ProtocolVersion::V2_0,
        )))
        .await;
    }
    c.send(&Message::KeepAlive).await;
}
