//! NATS JetStream: every event published to a subject made from its names
//! (`fpolicy.{svm}.{volume}.{operation}` by default) with the header
//! `Nats-Msg-Id` = `event_id`, so a resend after a crash or a lost
//! acknowledgement is dropped by the server inside the stream's duplicate
//! window. An event counts as delivered only when its PubAck arrives. The
//! payload is the event in the sink's `format` (default: the event).
//!
//! Failures: a server down → the client reconnects to another; no quorum,
//! a full stream, a timeout → retried with the shared backoff (the spool
//! holds the events); a message larger than the server's `max_payload` or
//! a subject no stream covers → dead letter.

use std::path::PathBuf;
use std::time::Duration;

use async_nats::Subject;
use async_nats::jetstream::{self, stream::StorageType};
use bytes::Bytes;
use std::sync::Arc;

use fpolicy_event::Emitted;
use fpolicy_event::format::{AccessPoints, Format};
use serde::Deserialize;

use super::aws::LocalRuntime;
use super::{Delivered, EntryFailure, Formatter, Sink, SinkError};
use crate::config::duration;

/// Placeholders a subject template may use.
pub const PLACEHOLDERS: [&str; 5] = ["svm", "volume", "operation", "protocol", "route"];

/// One `[[sink]]` with `type = "nats"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsSinkConfig {
    pub name: String,
    /// `nats://host:4222` or `tls://host:4222`; the client moves between them.
    pub servers: Vec<String>,
    /// Tokens separated by `.`; `{svm}`, `{volume}`, `{operation}`,
    /// `{protocol}`, `{route}` are replaced by the event's, escaped.
    #[serde(default = "default_subject")]
    pub subject: String,
    #[serde(default = "default_stream")]
    pub stream: String,
    /// Create the stream when it does not exist (else it must exist and
    /// cover the subject).
    #[serde(default)]
    pub create_stream: bool,
    /// For a created stream: copies kept (a cluster of 3 wants 3).
    #[serde(default = "default_replicas")]
    pub replicas: usize,
    /// For a created stream: how long messages are kept (0 = unlimited).
    #[serde(default = "default_max_age", deserialize_with = "duration::any")]
    pub max_age: Duration,
    /// For a created stream: how long the server drops a repeated id.
    #[serde(
        default = "default_duplicate_window",
        deserialize_with = "duration::any"
    )]
    pub duplicate_window: Duration,
    /// Published, not yet acknowledged.
    #[serde(default = "default_in_flight")]
    pub max_in_flight: usize,
    #[serde(default)]
    pub max_events_per_sec: u32,
    /// A `.creds` file (JWT and NKey seed).
    #[serde(default)]
    pub credentials_file: Option<PathBuf>,
    /// Or a user, with the password in an environment variable.
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub password_env: Option<String>,
    /// Or an NKey seed file.
    #[serde(default)]
    pub nkey_seed_file: Option<PathBuf>,
    /// TLS: the CA that issued the servers' certificates (verification on).
    #[serde(default)]
    pub ca_bundle: Option<PathBuf>,
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    #[serde(default)]
    pub client_key: Option<PathBuf>,
    /// The payload: `fpolicy` (the event), `s3`, `ocsf` or `ecs`.
    #[serde(default)]
    pub format: Format,
}

fn default_subject() -> String {
    "fpolicy.{svm}.{volume}.{operation}".into()
}
fn default_stream() -> String {
    "FPOLICY".into()
}
fn default_replicas() -> usize {
    1
}
fn default_max_age() -> Duration {
    Duration::from_secs(7 * 86_400)
}
fn default_duplicate_window() -> Duration {
    Duration::from_secs(120)
}
fn default_in_flight() -> usize {
    4096
}

impl NatsSinkConfig {
    /// The fields of a NATS sink; the name is checked with the others.
    pub fn validate(&self) -> Result<(), String> {
        let bad = |m: String| Err(format!("sink {:?}: {m}", self.name));
        if self.servers.is_empty() {
            return bad("servers must name at least one nats:// or tls:// URL".into());
        }
        for s in &self.servers {
            if s.parse::<async_nats::ServerAddr>().is_err() {
                return bad(format!("server {s:?} is not a NATS URL (nats://host:4222)"));
            }
        }
        if let Err(e) = SubjectTemplate::parse(&self.subject) {
            return bad(e);
        }
        let name_ok = !self.stream.is_empty()
            && !self
                .stream
                .contains(|c: char| c.is_whitespace() || matches!(c, '.' | '*' | '>' | '/' | '\\'));
        if !name_ok {
            return bad(format!(
                "stream {:?} is not a valid stream name",
                self.stream
            ));
        }
        if !(1..=5).contains(&self.replicas) || !(1..=65_536).contains(&self.max_in_flight) {
            return bad("replicas must be 1..=5 and max_in_flight 1..=65536".into());
        }
        if self.user.is_some() != self.password_env.is_some() {
            return bad("user and password_env go together".into());
        }
        if self.client_cert.is_some() != self.client_key.is_some() {
            return bad("client_cert and client_key go together".into());
        }
        Ok(())
    }

    pub async fn build(&self, access_points: &Arc<AccessPoints>) -> NatsSink {
        NatsSink {
            subject: SubjectTemplate::parse(&self.subject).expect("validated"),
            cfg: self.clone(),
            js: None,
            rt: LocalRuntime::default(),
            formatter: Formatter::new(self.format, access_points.clone()),
        }
    }

    async fn connect(&self) -> Result<async_nats::Client, String> {
        let mut o = async_nats::ConnectOptions::new()
            .name(format!("fpolicy-bridge/{}", self.name))
            .connection_timeout(Duration::from_secs(5))
            .max_reconnects(None::<usize>);
        if let Some(path) = &self.credentials_file {
            o = o
                .credentials_file(path)
                .await
                .map_err(|e| format!("credentials_file {}: {e}", path.display()))?;
        }
        if let (Some(user), Some(var)) = (&self.user, &self.password_env) {
            let password = std::env::var(var)
                .map_err(|_| format!("the NATS password: set the environment variable {var}"))?;
            o = o.user_and_password(user.clone(), password);
        }
        if let Some(path) = &self.nkey_seed_file {
            let seed = std::fs::read_to_string(path)
                .map_err(|e| format!("nkey_seed_file {}: {e}", path.display()))?;
            o = o.nkey(seed.trim().to_owned());
        }
        if let Some(ca) = &self.ca_bundle {
            o = o.add_root_certificates(ca.clone()).require_tls(true);
        }
        if let (Some(cert), Some(key)) = (&self.client_cert, &self.client_key) {
            o = o.add_client_certificate(cert.clone(), key.clone());
        }
        let servers: Vec<async_nats::ServerAddr> =
            self.servers.iter().filter_map(|s| s.parse().ok()).collect();
        o.connect(servers)
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", self.servers.join(", ")))
    }
}

/// A subject with placeholders, parsed once.
#[derive(Debug, Clone, PartialEq)]
pub struct SubjectTemplate(Vec<Token>);

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Literal(String),
    Placeholder(&'static str),
}

impl SubjectTemplate {
    pub fn parse(template: &str) -> Result<SubjectTemplate, String> {
        let mut tokens = Vec::new();
        for part in template.split('.') {
            if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                let known = PLACEHOLDERS.iter().find(|p| **p == name).ok_or_else(|| {
                    format!(
                        "subject {template:?}: unknown placeholder {{{name}}} (known: {})",
                        PLACEHOLDERS.join(", ")
                    )
                })?;
                tokens.push(Token::Placeholder(known));
            } else if part.is_empty()
                || part.contains(|c: char| c.is_whitespace() || matches!(c, '*' | '>' | '{' | '}'))
            {
                return Err(format!(
                    "subject {template:?}: token {part:?} must be a name or a placeholder"
                ));
            } else {
                tokens.push(Token::Literal(part.to_owned()));
            }
        }
        Ok(SubjectTemplate(tokens))
    }

    /// The subject of one event.
    pub fn render(&self, fields: &SubjectFields<'_>) -> String {
        let mut out = String::with_capacity(64);
        for (i, t) in self.0.iter().enumerate() {
            if i > 0 {
                out.push('.');
            }
            match t {
                Token::Literal(l) => out.push_str(l),
                Token::Placeholder(p) => escape_token(fields.get(p), &mut out),
            }
        }
        out
    }

    /// The subjects this template can produce, as a NATS filter: every
    /// placeholder is `*`.
    pub fn filter(&self) -> String {
        self.0
            .iter()
            .map(|t| match t {
                Token::Literal(l) => l.as_str(),
                Token::Placeholder(_) => "*",
            })
            .collect::<Vec<_>>()
            .join(".")
    }
}

/// What an event's subject is made of.
pub struct SubjectFields<'a> {
    pub svm: &'a str,
    pub volume: &'a str,
    pub operation: &'a str,
    pub protocol: &'a str,
    pub route: &'a str,
}

impl SubjectFields<'_> {
    fn get(&self, placeholder: &str) -> &str {
        match placeholder {
            "svm" => self.svm,
            "volume" => self.volume,
            "operation" => self.operation,
            "protocol" => self.protocol,
            _ => self.route,
        }
    }
}

/// One subject token from a name: `%` followed by two hex digits for `.`,
/// `*`, `>`, `%`, whitespace and control characters (so `vol.1` is
/// `vol%2E1`); an empty name is `_`.
pub fn escape_token(name: &str, out: &mut String) {
    if name.is_empty() {
        out.push('_');
        return;
    }
    for c in name.chars() {
        if matches!(c, '.' | '*' | '>' | '%') || c.is_whitespace() || c.is_control() {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
}

/// Whether every subject matching `inner` (a filter with `*`) also matches
/// `outer` (a stream's subject filter, with `*` and `>`).
pub fn covers(outer: &str, inner: &str) -> bool {
    let (o, i): (Vec<&str>, Vec<&str>) = (outer.split('.').collect(), inner.split('.').collect());
    for (k, ot) in o.iter().enumerate() {
        if *ot == ">" {
            return i.len() > k;
        }
        match i.get(k) {
            None => return false,
            Some(it) if *ot == "*" || ot == it => {}
            Some(_) => return false,
        }
    }
    o.len() == i.len()
}

pub struct NatsSink {
    cfg: NatsSinkConfig,
    subject: SubjectTemplate,
    js: Option<(async_nats::Client, jetstream::Context)>,
    rt: LocalRuntime,
    formatter: Formatter,
}

impl NatsSink {
    fn unavailable(&self, message: String) -> SinkError {
        SinkError::Transient {
            sink: self.cfg.name.clone(),
            message,
            throttled: false,
        }
    }

    /// Connected, with the stream checked (or created): the start-up check.
    async fn ensure(
        cfg: &NatsSinkConfig,
        subject: &SubjectTemplate,
    ) -> Result<(async_nats::Client, jetstream::Context), String> {
        let client = cfg.connect().await?;
        // For the stream check and lookups only: publishes and their acks
        // go through the client directly (`publish_window`).
        let js = jetstream::new(client.clone());
        let filter = subject.filter();
        let info = match js.get_stream(&cfg.stream).await {
            Ok(mut s) => s.info().await.map_err(|e| e.to_string())?.config.clone(),
            Err(e) if cfg.create_stream && e.to_string().contains("not found") => {
                let config = jetstream::stream::Config {
                    name: cfg.stream.clone(),
                    subjects: vec![filter.clone()],
                    storage: StorageType::File,
                    num_replicas: cfg.replicas,
                    max_age: cfg.max_age,
                    duplicate_window: cfg.duplicate_window,
                    ..Default::default()
                };
                let created = js
                    .create_stream(config)
                    .await
                    .map_err(|e| format!("cannot create stream {:?}: {e}", cfg.stream))?;
                tracing::info!(sink = %cfg.name, stream = %cfg.stream, subjects = %filter, replicas = cfg.replicas, "NATS stream created");
                created.cached_info().config.clone()
            }
            Err(e) => {
                return Err(format!(
                    "stream {:?}: {e} (create it with subjects covering {filter:?}, or set create_stream = true)",
                    cfg.stream
                ));
            }
        };
        if !info.subjects.iter().any(|s| covers(s, &filter)) {
            return Err(format!(
                "stream {:?} has subjects {:?}, which do not cover {filter:?} (the sink's subject {:?})",
                cfg.stream, info.subjects, cfg.subject
            ));
        }
        Ok((client, js))
    }

    fn message(&self, e: &Emitted) -> Result<(Subject, String), String> {
        let p = fpolicy_event::keys::read(&e.json).map_err(|err| format!("not an event: {err}"))?;
        let subject = self.subject.render(&SubjectFields {
            svm: &p.svm_name,
            volume: &p.volume_name,
            operation: &p.operation_type,
            protocol: &p.protocol,
            route: p.first_route.as_deref().unwrap_or("default"),
        });
        Ok((Subject::from(subject), p.event_id.into_owned()))
    }
}

impl Sink for NatsSink {
    fn name(&self) -> &str {
        &self.cfg.name
    }

    fn routed(&self) -> bool {
        true
    }

    fn check(&mut self) -> Result<(), SinkError> {
        let (cfg, subject) = (self.cfg.clone(), self.subject.clone());
        match self.rt.block_on(Self::ensure(&cfg, &subject))? {
            Ok(connected) => {
                self.js = Some(connected);
                Ok(())
            }
            Err(message) => Err(self.unavailable(message)),
        }
    }

    fn deliver(&mut self, events: &[Emitted]) -> Result<Delivered, SinkError> {
        if self.js.is_none() {
            self.check()?;
        }
        let (client, js) = self.js.clone().expect("connected above");
        let max_payload = client.server_info().max_payload;
        let mut out = Delivered {
            in_flight: self.cfg.max_in_flight.min(events.len()),
            ..Delivered::default()
        };
        let mut messages = Vec::with_capacity(events.len());
        for (i, body) in self.formatter.bodies(events, &mut out) {
            match self.message(&events[i]) {
                Ok(_) if max_payload > 0 && body.len() + 128 > max_payload => out.failures.push((
                    i,
                    EntryFailure::Reject(format!(
                        "{} bytes: larger than the server's max_payload ({max_payload})",
                        body.len()
                    )),
                )),
                Ok((subject, id)) => {
                    messages.push((i, subject, id, Bytes::from(body.into_owned())))
                }
                Err(why) => out.failures.push((i, EntryFailure::Reject(why))),
            }
        }
        let window = self.cfg.max_in_flight;
        let failures = self.rt.block_on(publish_window(
            &client,
            &js,
            messages,
            window,
            &self.cfg.stream,
        ))?;
        out.failures.extend(failures);
        Ok(out)
    }
}

/// How long the sink waits for the next acknowledgement before it counts
/// every unacknowledged publish as failed (they are retried; the server
/// drops the ones it already has by their `Nats-Msg-Id`).
const ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// Publishes every message with at most `window` unacknowledged at once (a
/// sliding window: a new publish goes out as soon as any ack comes back),
/// and returns the ones that failed.
///
/// The acknowledgements come back on one subscription, `<inbox>.*`, with
/// the message's index as the last token of its reply subject: a PubAck is
/// then one message on one stream, not a request with its own future, timer
/// and table entry as in the client's JetStream publish (which cost more
/// CPU per event than everything else in the sink).
async fn publish_window(
    client: &async_nats::Client,
    js: &jetstream::Context,
    messages: Vec<(usize, Subject, String, Bytes)>,
    window: usize,
    stream: &str,
) -> Vec<(usize, EntryFailure)> {
    use futures_util::StreamExt;
    let inbox = client.new_inbox();
    let mut acks = match client.subscribe(format!("{inbox}.*")).await {
        Ok(acks) => acks,
        Err(e) => {
            let why = format!("cannot subscribe for acknowledgements: {e}");
            return messages
                .iter()
                .map(|(i, ..)| (*i, EntryFailure::Retry(why.clone())))
                .collect();
        }
    };
    let mut failures = Vec::new();
    let mut waiting = vec![false; messages.len()];
    let mut outstanding = 0usize;
    let mut next = 0usize;
    loop {
        while next < messages.len() && outstanding < window {
            let (i, subject, id, payload) = &messages[next];
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(async_nats::header::NATS_MESSAGE_ID, id.as_str());
            // Subjects are `Bytes` inside: a clone is a reference count.
            let reply = Subject::from(format!("{inbox}.{next}"));
            match client
                .publish_with_reply_and_headers(subject.clone(), reply, headers, payload.clone())
                .await
            {
                Ok(()) => {
                    waiting[next] = true;
                    outstanding += 1;
                }
                Err(e) => failures.push((*i, publish_failure(&e))),
            }
            next += 1;
        }
        if outstanding == 0 {
            break;
        }
        let ack = match tokio::time::timeout(ACK_TIMEOUT, acks.next()).await {
            Ok(Some(ack)) => ack,
            Ok(None) | Err(_) => break,
        };
        let Some(k) = ack
            .subject
            .rsplit('.')
            .next()
            .and_then(|t| t.parse::<usize>().ok())
            .filter(|&k| waiting.get(k) == Some(&true))
        else {
            continue; // not ours, or already settled
        };
        waiting[k] = false;
        outstanding -= 1;
        let (i, subject, ..) = &messages[k];
        if ack.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
            failures.push((*i, no_stream(js, subject, stream).await));
        } else if let Some(why) = ack_error(&ack.payload) {
            failures.push((*i, EntryFailure::Retry(why)));
        }
    }
    // Whatever is still waiting had no answer in time (a server gone, a
    // connection lost): retried.
    for (k, still) in waiting.iter().enumerate() {
        if *still {
            let why = format!("no acknowledgement within {ACK_TIMEOUT:?}");
            failures.push((messages[k].0, EntryFailure::Retry(why)));
        }
    }
    let _ = acks.unsubscribe().await;
    failures
}

/// A publish the client refused: for good when it can never be sent (too
/// large, a subject it will not take), else retried.
fn publish_failure(e: &async_nats::client::PublishError) -> EntryFailure {
    use async_nats::client::PublishErrorKind;
    match e.kind() {
        PublishErrorKind::MaxPayloadExceeded | PublishErrorKind::InvalidSubject => {
            EntryFailure::Reject(e.to_string())
        }
        _ => EntryFailure::Retry(e.to_string()),
    }
}

/// The error of a PubAck (`{"error":{"code":503,"description":"…"}}`), or
/// `None` for a stored message (`{"stream":"…","seq":…}`, also when it
/// was a duplicate).
fn ack_error(payload: &[u8]) -> Option<String> {
    if stored_ack(payload) {
        return None;
    }
    #[derive(Deserialize)]
    struct Answer {
        error: Option<ApiError>,
        seq: Option<u64>,
    }
    #[derive(Deserialize)]
    struct ApiError {
        #[serde(default)]
        code: u16,
        #[serde(default)]
        description: String,
    }
    match serde_json::from_slice::<Answer>(payload) {
        Ok(Answer { error: Some(e), .. }) => Some(format!(
            "the stream refused the message ({}): {}",
            e.code, e.description
        )),
        Ok(Answer { seq: Some(_), .. }) => None,
        Ok(_) | Err(_) => Some(format!(
            "not a JetStream acknowledgement: {:?}",
            String::from_utf8_lossy(&payload[..payload.len().min(200)])
        )),
    }
}

/// The common answer, `{"stream":"…","seq":…}` (perhaps with
/// `"duplicate":true` or `"domain"`), known without a JSON parse: an
/// object with a `"seq":` number and no `"error"` anywhere. Anything else
/// goes through the full parse in [`ack_error`].
fn stored_ack(payload: &[u8]) -> bool {
    let object = payload.first() == Some(&b'{') && payload.last() == Some(&b'}');
    object
        && memchr::memmem::find(payload, b"\"error\"").is_none()
        && memchr::memmem::find(payload, b"\"seq\":")
            .and_then(|at| payload.get(at + 6))
            .is_some_and(u8::is_ascii_digit)
}

/// No stream answered for `subject`: for good when the server says no
/// stream covers it (dead letter), else the cluster is unavailable (retry).
async fn no_stream(js: &jetstream::Context, subject: &str, stream: &str) -> EntryFailure {
    match js.stream_by_subject(subject).await {
        Err(e) if e.to_string().contains("no stream") || e.to_string().contains("not found") => {
            EntryFailure::Reject(format!(
                "subject {subject:?} is not covered by any stream (expected {stream:?})"
            ))
        }
        _ => EntryFailure::Retry(format!("no answer from stream {stream:?} for {subject:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_made_from_escaped_names() {
        let t = SubjectTemplate::parse("fpolicy.{svm}.{volume}.{operation}").unwrap();
        let f = SubjectFields {
            svm: "svm1",
            volume: "vol.data 1>*",
            operation: "create",
            protocol: "smb",
            route: "default",
        };
        assert_eq!(t.render(&f), "fpolicy.svm1.vol%2Edata%201%3E%2A.create");
        let empty = SubjectFields { svm: "", ..f };
        assert!(t.render(&empty).starts_with("fpolicy._."));
        let mut s = String::new();
        escape_token("100%", &mut s);
        assert_eq!(s, "100%25");
        assert_eq!(t.filter(), "fpolicy.*.*.*");
        for bad in ["a..b", "a.{nope}", "a.*", "a.>", "a b", ""] {
            assert!(SubjectTemplate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn acknowledgements_are_read_as_stored_or_refused() {
        assert_eq!(ack_error(br#"{"stream":"FPOLICY","seq":42}"#), None);
        assert_eq!(
            ack_error(br#"{"stream":"FPOLICY","seq":7,"duplicate":true}"#),
            None
        );
        let full = ack_error(
            br#"{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"}}"#,
        )
        .unwrap();
        assert!(
            full.contains("503") && full.contains("maximum messages exceeded"),
            "{full}"
        );
        // Only the plain answer takes the short way.
        assert!(stored_ack(
            br#"{"stream":"FPOLICY","seq":42,"duplicate":true}"#
        ));
        for other in [
            &br#"{"stream":"error","seq":1}"#[..],
            br#"{"error":{"code":503},"seq":1}"#,
            br#"{"stream":"S","seq":"1"}"#,
            br#"{"stream":"S","seq":1"#,
        ] {
            assert!(!stored_ack(other), "{}", String::from_utf8_lossy(other));
        }
        assert_eq!(ack_error(br#"{"stream":"error","seq":1}"#), None);
        for junk in [&b""[..], b"{}", b"not json", br#"{"stream":"S","seq":1"#] {
            assert!(
                ack_error(junk)
                    .unwrap()
                    .contains("not a JetStream acknowledgement")
            );
        }
    }

    #[test]
    fn stream_filters_cover_templates() {
        assert!(covers("fpolicy.>", "fpolicy.*.*.*"));
        assert!(covers("fpolicy.*.*.*", "fpolicy.*.*.*"));
        assert!(covers(">", "a.b"));
        assert!(!covers("fpolicy.svm1.>", "fpolicy.*.*.*"));
        assert!(!covers("fpolicy.*.*", "fpolicy.*.*.*"));
        assert!(!covers("fpolicy.*.*.*.*", "fpolicy.*.*.*"));
        assert!(!covers("other.>", "fpolicy.*"));
        assert!(!covers("fpolicy.>", "fpolicy"));
    }
}
