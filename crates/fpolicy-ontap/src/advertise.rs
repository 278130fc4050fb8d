//! The address ONTAP must reach this instance on: configured, else the
//! ECS task's address (task metadata endpoint v4), else the local address
//! the system would use to reach the cluster.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::OntapError;

/// Where the address came from, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Configured,
    EcsTaskMetadata,
    RouteToCluster,
}

/// Finds the address to register. `cluster` is the management host:port.
pub async fn advertise_address(
    configured: Option<&str>,
    cluster: &str,
) -> Result<(IpAddr, Source), OntapError> {
    if let Some(a) = configured.filter(|a| !a.is_empty()) {
        let ip = a.parse().map_err(|_| {
            OntapError::Config(format!("advertise_address {a:?} is not an IP address"))
        })?;
        return Ok((ip, Source::Configured));
    }
    if let Ok(uri) = std::env::var("ECS_CONTAINER_METADATA_URI_V4") {
        match ecs_task_ip(&uri).await {
            Ok(ip) => return Ok((ip, Source::EcsTaskMetadata)),
            Err(e) => {
                tracing::warn!(error = %e, "ECS task metadata did not give an address; using the route to the cluster")
            }
        }
    }
    let target: SocketAddr = tokio::net::lookup_host(cluster)
        .await
        .map_err(|e| OntapError::Config(format!("cannot resolve {cluster}: {e}")))?
        .next()
        .ok_or_else(|| OntapError::Config(format!("cannot resolve {cluster}")))?;
    let bind: SocketAddr = if target.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()
    .expect("valid");
    let sock = std::net::UdpSocket::bind(bind).map_err(|e| OntapError::Config(e.to_string()))?;
    // connect() on UDP sends nothing: it only picks the route and source.
    sock.connect(target)
        .map_err(|e| OntapError::Config(format!("no route to {target}: {e}")))?;
    let ip = sock
        .local_addr()
        .map_err(|e| OntapError::Config(e.to_string()))?
        .ip();
    Ok((ip, Source::RouteToCluster))
}

/// `GET ${ECS_CONTAINER_METADATA_URI_V4}/task`: the first IPv4 address of
/// the task's first container network.
async fn ecs_task_ip(uri: &str) -> Result<IpAddr, String> {
    let rest = uri
        .strip_prefix("http://")
        .ok_or("metadata URI is not http://")?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut stream =
        tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(host))
            .await
            .map_err(|_| "metadata endpoint timed out".to_owned())?
            .map_err(|e| e.to_string())?;
    let req = format!("GET /{path}/task HTTP/1.0\r\nHost: {host}\r\n\r\n");
    stream
        .write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut body = Vec::new();
    tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut body))
        .await
        .map_err(|_| "metadata endpoint timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&body);
    let json = text
        .split_once("\r\n\r\n")
        .map_or(text.as_ref(), |(_, b)| b);
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    v["Containers"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["Networks"].as_array().into_iter().flatten())
        .find_map(|n| n["IPv4Addresses"][0].as_str().and_then(|a| a.parse().ok()))
        .ok_or_else(|| "no IPv4 address in the task metadata".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn configured_then_route_and_ecs_metadata() {
        let (ip, src) = advertise_address(Some("10.1.2.3"), "127.0.0.1:443")
            .await
            .unwrap();
        assert_eq!(
            (ip.to_string().as_str(), src),
            ("10.1.2.3", Source::Configured)
        );
        assert!(
            advertise_address(Some("not-an-ip"), "127.0.0.1:443")
                .await
                .is_err()
        );
        let (ip, src) = advertise_address(None, "127.0.0.1:443").await.unwrap();
        assert_eq!(
            (ip.to_string().as_str(), src),
            ("127.0.0.1", Source::RouteToCluster)
        );
        // A task metadata endpoint.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let body = r#"{"Containers":[{"Networks":[{"NetworkMode":"awsvpc","IPv4Addresses":["10.0.3.7"]}]}]}"#;
            let _ = s
                .write_all(
                    format!(
                        "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                )
                .await;
        });
        let ip = ecs_task_ip(&format!("http://{addr}/v4/abc")).await.unwrap();
        assert_eq!(ip.to_string(), "10.0.3.7");
    }
}
