//! Syslog: one RFC 5424 message per event to a SIEM or a collector, in CEF
//! or JSON (`message.rs`), over one of three transports:
//!
//! - `tcp`: RFC 6587 octet counting. TCP cannot tell what the receiver
//!   got when a connection breaks: the sink counts the reconnect and,
//!   besides the batch that failed, resends the last batch it had written
//!   (at least once; duplicates possible). A receiver that closed the
//!   connection (a restart) is noticed before the next write.
//! - `tls`: the same framing over TLS (RFC 5425), the server verified
//!   against `ca_bundle` (else the system roots), a client certificate for
//!   mutual TLS. Same delivery guarantee as `tcp`.
//! - `relp`: RELP (`relp.rs`), acknowledged per message: an event counts
//!   as delivered only when its `rsp 200` arrives; at most
//!   `max_in_flight` frames are unacknowledged; a broken session resends
//!   exactly what was not acknowledged. This is the transport that loses
//!   nothing.
//!
//! Sockets are blocking with `timeout` on every read and write: the sink
//! runs on its own delivery thread.

mod message;
pub mod relp;

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use fpolicy_event::Emitted;
use fpolicy_event::format::{AccessPoints, Format};
use serde::Deserialize;

pub use message::{Facility, MessageFormat, Payload, octet_counted};

use super::{Delivered, EntryFailure, Formatter, NotSent, Sink, SinkError, VERSION};
use crate::config::duration;

/// How messages travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    #[default]
    Tcp,
    Tls,
    Relp,
}

/// One `[[sink]]` with `type = "syslog"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogSinkConfig {
    pub name: String,
    /// `host:port` of the receiver.
    pub address: String,
    #[serde(default)]
    pub transport: Transport,
    /// MSG: `cef` or `json`.
    #[serde(default = "default_payload")]
    pub format: Payload,
    /// With `format = "json"`: `fpolicy`, `ocsf` or `ecs` (or `s3`).
    #[serde(default)]
    pub json_format: Format,
    #[serde(default = "default_facility")]
    pub facility: Facility,
    #[serde(default = "default_app_name")]
    pub app_name: String,
    /// HOSTNAME of the messages (default: this machine's host name).
    #[serde(default)]
    pub hostname: Option<String>,
    /// TLS: the CA that issued the receiver's certificate (else the
    /// system's roots).
    #[serde(default)]
    pub ca_bundle: Option<PathBuf>,
    /// TLS: a client certificate and key (PEM) for mutual TLS.
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    #[serde(default)]
    pub client_key: Option<PathBuf>,
    /// TLS: the name to verify in the receiver's certificate (default: the
    /// host of `address`).
    #[serde(default)]
    pub server_name: Option<String>,
    /// RELP: frames sent and not yet acknowledged, at most.
    #[serde(default = "default_window")]
    pub max_in_flight: usize,
    /// Connect, write and acknowledgement timeout.
    #[serde(default = "default_timeout", deserialize_with = "duration::any")]
    pub timeout: Duration,
    #[serde(default)]
    pub max_events_per_sec: u32,
}

fn default_payload() -> Payload {
    Payload::Cef
}

fn default_facility() -> Facility {
    Facility::Local0
}

fn default_app_name() -> String {
    "fpolicy-bridge".into()
}

fn default_window() -> usize {
    256
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

impl SyslogSinkConfig {
    /// `[[sink]]` fields of a syslog sink; the name is checked with the others.
    pub fn validate(&self) -> Result<(), String> {
        let bad = |m: String| Err(format!("sink {:?}: {m}", self.name));
        if self.host_port().is_none() {
            return bad(format!("address {:?} must be host:port", self.address));
        }
        if self.transport != Transport::Tls
            && (self.ca_bundle.is_some()
                || self.client_cert.is_some()
                || self.server_name.is_some())
        {
            return bad(
                "ca_bundle, client_cert and server_name are for transport = \"tls\"".into(),
            );
        }
        if self.client_cert.is_some() != self.client_key.is_some() {
            return bad("client_cert and client_key go together".into());
        }
        if !(1..=10_000).contains(&self.max_in_flight) {
            return bad("max_in_flight must be 1..=10000".into());
        }
        if self.timeout.is_zero() {
            return bad("timeout must be above 0".into());
        }
        if message::header_field(&self.app_name, 48) != self.app_name {
            return bad("app_name must be 1-48 printable ASCII characters without spaces".into());
        }
        Ok(())
    }

    /// The JSON format of the messages, for the configuration's checks.
    pub fn json_format(&self) -> Format {
        match self.format {
            Payload::Json => self.json_format,
            Payload::Cef => Format::Fpolicy,
        }
    }

    fn host_port(&self) -> Option<(&str, u16)> {
        let (host, port) = self.address.rsplit_once(':')?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        (!host.is_empty()).then_some(())?;
        Some((host, port.parse().ok()?))
    }

    /// The sink; `access_points` for `json_format = "s3"`.
    pub fn build(&self, access_points: &Arc<AccessPoints>) -> SyslogSink {
        let hostname = self.hostname.clone().unwrap_or_else(host_name);
        SyslogSink {
            fmt: MessageFormat {
                facility: self.facility,
                app_name: self.app_name.clone(),
                hostname,
                payload: self.format,
                json_format: self.json_format,
                version: VERSION,
            },
            access_points: access_points.clone(),
            cfg: self.clone(),
            tls: None,
            session: None,
            connections: 0,
            last_batch: Vec::new(),
            resend_last: false,
        }
    }
}

/// This machine's host name (the kernel's), else `fpolicy-bridge`.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "fpolicy-bridge".into())
}

/// A connection, plain or TLS.
enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }

    /// Whether the receiver closed the connection (or it broke) while it
    /// sat idle: a non-blocking read that finds the end of the stream.
    fn closed_by_peer(&mut self) -> bool {
        if self.tcp().set_nonblocking(true).is_err() {
            return true;
        }
        let mut byte = [0u8; 512];
        let closed = match self.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
        };
        closed || self.tcp().set_nonblocking(false).is_err()
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// An open connection; for RELP, the next transaction number.
struct Session {
    stream: Stream,
    txnr: u32,
    /// Bytes read and not yet parsed (RELP responses).
    read_buf: Vec<u8>,
}

impl Session {
    /// The answer to `open` (the server sends nothing else before the
    /// client's next frame).
    fn read_frame(&mut self) -> Result<relp::Frame, String> {
        let mut frames = Vec::new();
        self.read_frames(&mut frames, 1)?;
        Ok(frames.swap_remove(0))
    }

    /// Waits for at least `at_least` frames, then takes every frame already
    /// received as well.
    fn read_frames(&mut self, out: &mut Vec<relp::Frame>, at_least: usize) -> Result<(), String> {
        loop {
            loop {
                match relp::parse(&self.read_buf) {
                    Ok(Some((frame, used))) => {
                        self.read_buf.drain(..used);
                        out.push(frame);
                    }
                    Ok(None) => break,
                    Err(e) => return Err(e.to_string()),
                }
            }
            if out.len() >= at_least {
                return Ok(());
            }
            quick_ack(self.stream.tcp());
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err("the server closed the connection".into()),
                Ok(n) => self.read_buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    return Err("no acknowledgement within the timeout".into());
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }
}

/// Acknowledges received data at once instead of after the delayed-ACK
/// timer (Linux): the server sends many small answers, and with Nagle on
/// its side each would otherwise wait for our delayed ACK (~40 ms).
fn quick_ack(tcp: &TcpStream) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let on: libc::c_int = 1;
        // SAFETY: a valid socket descriptor and a c_int option value of
        // the size given; failure only costs latency.
        unsafe {
            libc::setsockopt(
                tcp.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_QUICKACK,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = tcp;
}

pub struct SyslogSink {
    cfg: SyslogSinkConfig,
    fmt: MessageFormat,
    access_points: Arc<AccessPoints>,
    tls: Option<Arc<rustls::ClientConfig>>,
    session: Option<Session>,
    /// Connections opened so far (the first is no reconnect).
    connections: u64,
    /// TCP/TLS: the frames of the last batch written, sent again after a
    /// broken connection (the receiver may not have got them).
    last_batch: Vec<u8>,
    resend_last: bool,
}

impl SyslogSink {
    fn unavailable(&self, message: String) -> SinkError {
        SinkError::Transient {
            sink: self.cfg.name.clone(),
            message: format!("syslog receiver {}: {message}", self.cfg.address),
            throttled: false,
        }
    }

    fn tls_config(&mut self) -> Result<Arc<rustls::ClientConfig>, String> {
        if let Some(c) = &self.tls {
            return Ok(c.clone());
        }
        let trust = match &self.cfg.ca_bundle {
            Some(path) => fpolicy_tls::Trust::File(path.clone()),
            None => fpolicy_tls::Trust::SystemRoots,
        };
        let identity = match (&self.cfg.client_cert, &self.cfg.client_key) {
            (Some(cert_chain), Some(key)) => Some(fpolicy_tls::ClientIdentity { cert_chain, key }),
            _ => None,
        };
        let config = Arc::new(
            fpolicy_tls::client_config_with_identity(&trust, identity)
                .map_err(|e| e.to_string())?,
        );
        self.tls = Some(config.clone());
        Ok(config)
    }

    /// Opens a connection (and for RELP, a session).
    fn connect(&mut self) -> Result<Session, String> {
        let (host, port) = self.cfg.host_port().ok_or("bad address")?;
        let (host, port) = (host.to_owned(), port);
        let timeout = self.cfg.timeout;
        let addrs = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {host}: {e}"))?;
        let mut last = format!("{host} has no address");
        let mut tcp = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, timeout) {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = format!("cannot connect to {addr}: {e}"),
            }
        }
        let tcp = tcp.ok_or(last)?;
        let _ = tcp.set_nodelay(true);
        tcp.set_read_timeout(Some(timeout))
            .map_err(|e| e.to_string())?;
        tcp.set_write_timeout(Some(timeout))
            .map_err(|e| e.to_string())?;
        let stream = if self.cfg.transport == Transport::Tls {
            let config = self.tls_config()?;
            let name = self.cfg.server_name.clone().unwrap_or_else(|| host.clone());
            let server_name = rustls::pki_types::ServerName::try_from(name.clone())
                .map_err(|_| format!("{name:?} is not a valid TLS server name"))?;
            let conn =
                rustls::ClientConnection::new(config, server_name).map_err(|e| e.to_string())?;
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            while tls.conn.is_handshaking() {
                tls.conn
                    .complete_io(&mut tls.sock)
                    .map_err(|e| format!("TLS handshake: {e}"))?;
            }
            Stream::Tls(Box::new(tls))
        } else {
            Stream::Plain(tcp)
        };
        let mut session = Session {
            stream,
            txnr: 1,
            read_buf: Vec::new(),
        };
        if self.cfg.transport == Transport::Relp {
            let mut frame = Vec::new();
            relp::encode(1, "open", &relp::open_offers(VERSION), &mut frame);
            session
                .stream
                .write_all(&frame)
                .map_err(|e| e.to_string())?;
            let answer = session.read_frame()?;
            if answer.txnr != 1 || answer.command != "rsp" || answer.status() != Some(200) {
                return Err(format!(
                    "RELP open refused: {} {}",
                    answer.command,
                    String::from_utf8_lossy(&answer.data)
                ));
            }
            session.txnr = relp::next_txnr(1);
        }
        self.connections += 1;
        Ok(session)
    }

    /// The open session, reconnecting when there is none or the receiver
    /// closed it; says whether this was a reconnect.
    fn session(&mut self) -> Result<bool, SinkError> {
        if let Some(s) = &mut self.session
            && s.stream.closed_by_peer()
        {
            tracing::warn!(sink = %self.cfg.name, address = %self.cfg.address, "the syslog receiver closed the connection; reconnecting");
            self.session = None;
            self.resend_last = self.cfg.transport != Transport::Relp;
        }
        if self.session.is_some() {
            return Ok(false);
        }
        let reconnect = self.connections > 0;
        match self.connect() {
            Ok(s) => {
                self.session = Some(s);
                Ok(reconnect)
            }
            Err(m) => Err(self.unavailable(m)),
        }
    }

    /// TCP and TLS: every frame written and flushed, or an error (the
    /// pipeline resends the batch; the previous one goes again too).
    fn write_stream(&mut self, frames: Vec<u8>) -> Result<(), SinkError> {
        let session = self.session.as_mut().expect("connected");
        let mut result = Ok(());
        if self.resend_last && !self.last_batch.is_empty() {
            result = session.stream.write_all(&self.last_batch);
        }
        let result = result
            .and_then(|()| session.stream.write_all(&frames))
            .and_then(|()| session.stream.flush());
        match result {
            Ok(()) => {
                self.last_batch = frames;
                self.resend_last = false;
                Ok(())
            }
            Err(e) => {
                self.session = None;
                self.resend_last = true;
                Err(self.unavailable(format!("write failed: {e}")))
            }
        }
    }

    /// RELP: sends the messages with at most `max_in_flight` unacknowledged
    /// (a sliding window: every answer frees a slot for the next frame) and
    /// records in `out` every one not acknowledged with 200.
    fn send_relp(&mut self, messages: Vec<(usize, Vec<u8>)>, out: &mut Delivered) {
        let window = self.cfg.max_in_flight;
        let session = self.session.as_mut().expect("connected");
        let mut next = messages.into_iter();
        let mut unacked: VecDeque<(u32, usize)> = VecDeque::new();
        let mut frames = Vec::new();
        let mut answers = Vec::new();
        let broken = 'session: loop {
            frames.clear();
            while unacked.len() < window {
                let Some((i, msg)) = next.next() else { break };
                relp::encode(session.txnr, "syslog", &msg, &mut frames);
                unacked.push_back((session.txnr, i));
                session.txnr = relp::next_txnr(session.txnr);
            }
            if !frames.is_empty()
                && let Err(e) = session.stream.write_all(&frames)
            {
                break Some(format!("write failed: {e}"));
            }
            if unacked.is_empty() {
                break None;
            }
            answers.clear();
            if let Err(e) = session.read_frames(&mut answers, 1) {
                break Some(e);
            }
            for frame in answers.drain(..) {
                if frame.command == "serverclose" {
                    break 'session Some("the server closed the session".into());
                }
                if frame.command != "rsp" {
                    continue;
                }
                let Some(at) = unacked.iter().position(|(t, _)| *t == frame.txnr) else {
                    continue;
                };
                let (_, i) = unacked.remove(at).expect("found");
                if frame.status() != Some(200) {
                    let why = String::from_utf8_lossy(&frame.data).into_owned();
                    out.failures
                        .push((i, EntryFailure::Retry(format!("RELP: {why}"))));
                }
            }
        };
        if let Some(why) = broken {
            tracing::warn!(sink = %self.cfg.name, unacknowledged = unacked.len(), error = %why, "RELP session broke; resending what was not acknowledged");
            let why = format!("RELP session broke: {why}");
            for (_, i) in unacked {
                out.failures.push((i, EntryFailure::Retry(why.clone())));
            }
            for (i, _) in next {
                out.failures.push((i, EntryFailure::Retry(why.clone())));
            }
            self.session = None;
        }
    }
}

impl Drop for SyslogSink {
    fn drop(&mut self) {
        // RELP: end the session politely; the server answers, nobody waits.
        if self.cfg.transport == Transport::Relp
            && let Some(s) = &mut self.session
        {
            let mut frame = Vec::new();
            relp::encode(s.txnr, "close", b"", &mut frame);
            let _ = s.stream.write_all(&frame);
        }
    }
}

impl Sink for SyslogSink {
    fn name(&self) -> &str {
        &self.cfg.name
    }

    fn routed(&self) -> bool {
        true
    }

    fn check(&mut self) -> Result<(), SinkError> {
        self.session().map(|_| ())
    }

    fn deliver(&mut self, events: &[Emitted]) -> Result<Delivered, SinkError> {
        let mut out = Delivered::default();
        let mut messages = Vec::with_capacity(events.len());
        for (i, e) in events.iter().enumerate() {
            let event = match Formatter::parse(&e.json) {
                Ok(event) => event,
                Err(n) => {
                    n.record(i, &mut out);
                    continue;
                }
            };
            let mut msg = Vec::with_capacity(e.json.len() + 128);
            match self.fmt.message(&event, &self.access_points, &mut msg) {
                Ok(()) => messages.push((i, msg)),
                Err(skip) => NotSent::Skip(skip).record(i, &mut out),
            }
        }
        if messages.is_empty() {
            return Ok(out);
        }
        if self.session()? {
            out.reconnects += 1;
        }
        match self.cfg.transport {
            Transport::Relp => self.send_relp(messages, &mut out),
            Transport::Tcp | Transport::Tls => {
                let mut frames =
                    Vec::with_capacity(messages.iter().map(|(_, m)| m.len() + 8).sum());
                for (_, m) in &messages {
                    octet_counted(m, &mut frames);
                }
                self.write_stream(frames)?;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(transport: Transport) -> SyslogSinkConfig {
        SyslogSinkConfig {
            name: "siem".into(),
            address: "127.0.0.1:6514".into(),
            transport,
            format: Payload::Cef,
            json_format: Format::Fpolicy,
            facility: Facility::Local0,
            app_name: "fpolicy-bridge".into(),
            hostname: None,
            ca_bundle: None,
            client_cert: None,
            client_key: None,
            server_name: None,
            max_in_flight: 256,
            timeout: Duration::from_secs(10),
            max_events_per_sec: 0,
        }
    }

    #[test]
    fn validation_names_what_is_wrong() {
        assert!(cfg(Transport::Tcp).validate().is_ok());
        let with = |f: &dyn Fn(&mut SyslogSinkConfig)| {
            let mut c = cfg(Transport::Tcp);
            f(&mut c);
            c.validate().unwrap_err()
        };
        assert!(with(&|c| c.address = "nohost".into()).contains("host:port"));
        assert!(with(&|c| c.address = "h:99999".into()).contains("host:port"));
        assert!(with(&|c| c.ca_bundle = Some("/ca.pem".into())).contains("tls"));
        assert!(with(&|c| c.max_in_flight = 0).contains("max_in_flight"));
        assert!(with(&|c| c.app_name = "two words".into()).contains("app_name"));
        let mut tls = cfg(Transport::Tls);
        tls.client_cert = Some("/c.pem".into());
        assert!(tls.validate().unwrap_err().contains("together"));
        let mut v6 = cfg(Transport::Relp);
        v6.address = "[::1]:2514".into();
        assert!(v6.validate().is_ok());
    }

    /// A RELP server in a thread that answers `open`, acknowledges every
    /// `syslog` frame with `status` and records the most frames it saw
    /// unacknowledged; it stops answering after `answer` frames.
    fn fake_relp(status: u16, answer: usize) -> (String, std::thread::JoinHandle<usize>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let handle = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let mut buf = Vec::new();
            let mut answered = 0;
            let mut most_pending = 0;
            let mut chunk = [0u8; 65536];
            loop {
                let n = match s.read(&mut chunk) {
                    Ok(0) | Err(_) => return most_pending,
                    Ok(n) => n,
                };
                buf.extend_from_slice(&chunk[..n]);
                let mut pending = Vec::new();
                while let Ok(Some((f, used))) = relp::parse(&buf) {
                    buf.drain(..used);
                    pending.push(f);
                }
                most_pending = most_pending.max(pending.len());
                let mut reply = Vec::new();
                for f in pending {
                    match f.command.as_str() {
                        "open" => relp::encode(
                            f.txnr,
                            "rsp",
                            b"200 OK\nrelp_version=0\ncommands=syslog",
                            &mut reply,
                        ),
                        "syslog" if answered < answer => {
                            answered += 1;
                            relp::encode(
                                f.txnr,
                                "rsp",
                                format!("{status} x").as_bytes(),
                                &mut reply,
                            );
                        }
                        _ => {}
                    }
                }
                if s.write_all(&reply).is_err() {
                    return most_pending;
                }
            }
        });
        (addr, handle)
    }

    fn events(n: usize) -> Vec<Emitted> {
        (0..n)
            .map(|k| {
                let json = format!(
                    r#"{{"event_id":"e{k}","operation_type":"create","file_path":"/f{k}","volume_name":"v","svm_name":"s","timestamp":"2026-12-02T00:00:00.000000Z","file_size":1,"metadata":{{"protocol":"smb","req_type":"SMB_CREAT","vol_msid":1,"svm_uuid":"u","policy_name":"p","session_id":"x","req_id":1,"ontap_peer":"p","s3_key":"f","received_at":"2026-12-02T00:00:00.000000Z","engine":"async"}}}}"#
                );
                Emitted { seq: k as u64, operation: fpolicy_event::Operation::Create, received: 0, json: json.into_bytes() }
            })
            .collect()
    }

    #[test]
    fn relp_keeps_the_window_and_acknowledged_means_delivered() {
        let (addr, server) = fake_relp(200, usize::MAX);
        let mut c = cfg(Transport::Relp);
        c.address = addr;
        c.max_in_flight = 16;
        let mut sink = c.build(&Arc::default());
        let d = sink.deliver(&events(500)).unwrap();
        assert!(d.failures.is_empty(), "{:?}", d.failures.first());
        drop(sink);
        let most = server.join().unwrap();
        assert!(most <= 16, "{most} frames unacknowledged at once");
    }

    #[test]
    fn relp_resends_exactly_what_was_not_acknowledged() {
        // The server acknowledges 30 of 100, then goes silent.
        let (addr, server) = fake_relp(200, 30);
        let mut c = cfg(Transport::Relp);
        c.address = addr;
        c.max_in_flight = 10;
        c.timeout = Duration::from_millis(300);
        let mut sink = c.build(&Arc::default());
        let d = sink.deliver(&events(100)).unwrap();
        let retried: Vec<usize> = d.failures.iter().map(|(i, _)| *i).collect();
        assert_eq!(retried, (30..100).collect::<Vec<_>>());
        assert!(
            matches!(&d.failures[0].1, EntryFailure::Retry(w) if w.contains("acknowledgement"))
        );
        drop(sink);
        server.join().unwrap();
        // A refusal (500) is retried too.
        let (addr, server) = fake_relp(500, usize::MAX);
        let mut c = cfg(Transport::Relp);
        c.address = addr;
        let mut sink = c.build(&Arc::default());
        let d = sink.deliver(&events(3)).unwrap();
        assert_eq!(d.failures.len(), 3);
        drop(sink);
        server.join().unwrap();
    }

    #[test]
    fn an_unreachable_receiver_is_a_transient_error_in_words() {
        let mut c = cfg(Transport::Tcp);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        c.address = format!("127.0.0.1:{port}");
        let mut sink = c.build(&Arc::default());
        let e = sink.check().unwrap_err().to_string();
        assert!(e.contains("cannot connect"), "{e}");
    }

    #[test]
    fn tcp_frames_are_octet_counted_and_a_closed_peer_gets_the_last_batch_again() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = cfg(Transport::Tcp);
        c.address = listener.local_addr().unwrap().to_string();
        let mut sink = c.build(&Arc::default());
        let batch = events(2);
        sink.deliver(&batch[..1]).unwrap();
        let (mut first, _) = listener.accept().unwrap();
        first
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut got = vec![0u8; 4096];
        let n = first.read(&mut got).unwrap();
        let text = String::from_utf8_lossy(&got[..n]).into_owned();
        let (len, rest) = text.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), rest.len());
        // The receiver restarts: the sink notices, reconnects, and sends
        // the last batch before the new one.
        drop(first);
        std::thread::sleep(Duration::from_millis(100));
        let d = sink.deliver(&batch[1..]).unwrap();
        assert_eq!(d.reconnects, 1);
        let (mut second, _) = listener.accept().unwrap();
        second
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut all = Vec::new();
        let _ = second.read_to_end(&mut all);
        let text = String::from_utf8_lossy(&all);
        assert!(
            text.contains("externalId=e0") && text.contains("externalId=e1"),
            "{text}"
        );
    }
}
