//! A small ONTAP REST client: HTTPS with certificate verification on by
//! default (against the configured CA bundle; `insecure` is explicit and
//! logged), basic auth, JSON, timeouts, and ONTAP's error shape turned into
//! [`OntapError::Api`].

use std::time::Duration;

use bytes::Bytes;
use fpolicy_tls::Trust;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::OntapError;

/// How to reach the cluster's management interface.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `https://cluster-mgmt.example.com` (no trailing path).
    pub url: String,
    pub username: String,
    pub password: String,
    /// PEM bundle of the CA(s) that issued the cluster certificate.
    pub ca_bundle: Option<std::path::PathBuf>,
    /// The same as PEM text (e.g. from a secret in the environment).
    pub ca_pem: Option<String>,
    /// Skip certificate verification (explicit, logged as a warning).
    pub insecure: bool,
    pub timeout: Duration,
}

#[derive(Clone)]
pub struct OntapClient {
    http: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    base: String,
    auth: String,
    timeout: Duration,
}

fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(T[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn tls_config(ep: &Endpoint) -> Result<rustls::ClientConfig, OntapError> {
    // The CA comes as PEM text (e.g. from a secret in the environment) or as a file.
    let trust = match (ep.insecure, &ep.ca_pem, &ep.ca_bundle) {
        (true, _, _) => {
            tracing::warn!(url = %ep.url, "ONTAP certificate verification is OFF (--insecure): anyone on the path can impersonate the cluster");
            Trust::Insecure
        }
        (false, Some(pem), _) => Trust::Pem(pem.clone()),
        (false, None, Some(bundle)) => Trust::File(bundle.clone()),
        (false, None, None) => {
            return Err(OntapError::Config(
                "set the CA bundle that issued the cluster certificate (ca_bundle / --ca-bundle / ca_bundle_pem_env), or --insecure".into(),
            ));
        }
    };
    fpolicy_tls::client_config(&trust).map_err(|e| OntapError::Config(e.to_string()))
}

impl OntapClient {
    pub fn new(ep: &Endpoint) -> Result<OntapClient, OntapError> {
        let url = ep.url.trim_end_matches('/').to_owned();
        let allowed = url.starts_with("https://") || (ep.insecure && url.starts_with("http://"));
        if !allowed {
            return Err(OntapError::Config(format!(
                "cluster URL {url:?} must start with https:// (plain http only with --insecure)"
            )));
        }
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config(ep)?)
            .https_or_http()
            .enable_http1()
            .build();
        Ok(OntapClient {
            http: Client::builder(TokioExecutor::new()).build(connector),
            base: url,
            auth: format!(
                "Basic {}",
                base64(format!("{}:{}", ep.username, ep.password).as_bytes())
            ),
            timeout: ep.timeout,
        })
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Bytes), OntapError> {
        let transport = |message: String| OntapError::Transport {
            method: method.to_string(),
            path: path.to_owned(),
            message,
        };
        let mut req = Request::builder()
            .method(method.clone())
            .uri(format!("{}{path}", self.base))
            .header("authorization", &self.auth)
            .header("accept", "application/json");
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| transport(e.to_string()))?;
        let resp = tokio::time::timeout(self.timeout, async {
            let resp = self
                .http
                .request(req)
                .await
                .map_err(|e| transport(connect_error(&self.base, &e)))?;
            let status = resp.status();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| transport(e.to_string()))?
                .to_bytes();
            Ok::<_, OntapError>((status, bytes))
        })
        .await
        .map_err(|_| transport(format!("no answer within {} s", self.timeout.as_secs())))??;
        if resp.0.is_success() {
            return Ok(resp);
        }
        let err: serde_json::Value = serde_json::from_slice(&resp.1).unwrap_or_default();
        Err(OntapError::Api {
            method: method.to_string(),
            path: path.to_owned(),
            status: resp.0.as_u16(),
            code: err["error"]["code"].as_str().unwrap_or("-").to_owned(),
            message: err["error"]["message"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| String::from_utf8_lossy(&resp.1).chars().take(300).collect()),
        })
    }

    fn decode<T: DeserializeOwned>(
        method: &str,
        path: &str,
        bytes: &[u8],
    ) -> Result<T, OntapError> {
        serde_json::from_slice(bytes).map_err(|e| OntapError::Decode {
            method: method.to_owned(),
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, OntapError> {
        let (_, body) = self.call(Method::GET, path, None).await?;
        Self::decode("GET", path, &body)
    }

    /// Every record of a collection: follows `_links.next` page by page,
    /// at most `max` records (more is an error, not an unbounded list).
    pub async fn get_all<T: DeserializeOwned>(
        &self,
        path: &str,
        max: usize,
    ) -> Result<Vec<T>, OntapError> {
        let mut out = Vec::new();
        let mut next = Some(path.to_owned());
        while let Some(page_path) = next.take() {
            let page: crate::types::Page<T> = self.get(&page_path).await?;
            out.extend(page.records);
            if out.len() > max {
                return Err(OntapError::Config(format!(
                    "{path}: more than {max} records"
                )));
            }
            next = page.links.and_then(|l| l.next).map(|n| n.href);
        }
        Ok(out)
    }

    /// GET that maps 404 to `None`.
    pub async fn get_opt<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>, OntapError> {
        match self.get(path).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn post<B: Serialize>(&self, path: &str, body: &B) -> Result<(), OntapError> {
        let bytes = serde_json::to_vec(body).map_err(|e| OntapError::Config(e.to_string()))?;
        self.call(Method::POST, path, Some(bytes)).await.map(|_| ())
    }

    pub async fn patch<B: Serialize>(&self, path: &str, body: &B) -> Result<(), OntapError> {
        let bytes = serde_json::to_vec(body).map_err(|e| OntapError::Config(e.to_string()))?;
        self.call(Method::PATCH, path, Some(bytes))
            .await
            .map(|_| ())
    }

    pub async fn delete(&self, path: &str) -> Result<(), OntapError> {
        match self.call(Method::DELETE, path, None).await {
            Err(e) if e.status() == Some(404) => Ok(()),
            other => other.map(|_| ()),
        }
    }
}

/// What went wrong reaching the cluster, in words, with what to check
/// (the HTTP client's own error is a nested debug structure).
fn connect_error(base: &str, e: &(dyn std::error::Error + 'static)) -> String {
    let mut chain = Vec::new();
    let mut cause = Some(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as K;
            let what = match io.kind() {
                K::ConnectionRefused => "connection refused",
                K::TimedOut => "connection timed out",
                K::HostUnreachable | K::NetworkUnreachable => "no route to the host",
                _ => "",
            };
            if !what.is_empty() {
                return format!(
                    "cannot connect to {base}: {what}; check ontap.cluster_url (the cluster management address), that it is reachable from here, and that HTTPS (443) is allowed"
                );
            }
        }
        let text = c.to_string();
        if !chain.iter().any(|t: &String| t.contains(&text)) {
            chain.push(text);
        }
        cause = c.source();
    }
    let detail = chain.join(": ");
    let hint = if detail.contains("certificate") || detail.contains("tls") || detail.contains("TLS")
    {
        "; check ontap.ca_bundle (the CA that issued the cluster certificate)"
    } else if detail.contains("dns") || detail.contains("resolve") || detail.contains("lookup") {
        "; check the host name in ontap.cluster_url"
    } else {
        ""
    };
    format!("cannot reach {base}: {detail}{hint}")
}

/// Percent-encodes a path segment or query value.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_and_percent_encoding() {
        assert_eq!(base64(b"admin:secret"), "YWRtaW46c2VjcmV0");
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b""), "");
        assert_eq!(encode("vol 1/ä"), "vol%201%2F%C3%A4");
    }
}
