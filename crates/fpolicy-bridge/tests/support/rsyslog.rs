//! A real rsyslog receiver for the syslog sink tests (Debian packages
//! `rsyslog`, `rsyslog-relp` and `rsyslog-gnutls`, which scripts/test.sh
//! installs): `rsyslogd -n` with a configuration of the test's own on a
//! loopback port, plain TCP (`imtcp`), TLS (`imtcp` with the gtls driver
//! and a certificate from a fresh CA) or RELP (`imrelp`), writing each
//! message as `HOSTNAME|APP-NAME|MSGID|MSG` to a file. Queues are direct,
//! so what RELP acknowledged is in the file once rsyslog stops.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    Tcp,
    Tls,
    /// TLS that requires a client certificate from the test CA.
    MutualTls,
    Relp,
}

pub struct Rsyslog {
    dir: tempfile::TempDir,
    pub port: u16,
    /// With TLS: the CA that issued the receiver's certificate (and, for
    /// mutual TLS, `client.pem` / `client.key` beside it).
    pub ca: Option<PathBuf>,
    pub output: PathBuf,
    config: PathBuf,
    child: Option<Child>,
}

fn binary() -> String {
    std::env::var("FPOLICY_RSYSLOGD").unwrap_or_else(|_| "/usr/sbin/rsyslogd".into())
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Rsyslog {
    pub fn start(input: Input) -> Rsyslog {
        assert!(
            Path::new(&binary()).exists(),
            "rsyslogd is not installed ({}): scripts/test.sh installs the Debian packages rsyslog, rsyslog-relp and rsyslog-gnutls",
            binary()
        );
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("work")).unwrap();
        let port = crate::common::process::free_port().port();
        let ca = matches!(input, Input::Tls | Input::MutualTls)
            .then(|| crate::common::write_certificates(d, input == Input::MutualTls));
        let output = d.join("messages.log");
        let mut conf = format!(
            "global(workDirectory={work:?} maxMessageSize=\"64k\"{tls})\n\
             main_queue(queue.type=\"Direct\")\n",
            work = d.join("work"),
            tls = match &ca {
                Some(ca) => format!(
                    " DefaultNetstreamDriverCAFile={ca:?} DefaultNetstreamDriverCertFile={:?} DefaultNetstreamDriverKeyFile={:?}",
                    d.join("server.pem"),
                    d.join("server.key")
                ),
                None => String::new(),
            }
        );
        conf.push_str(&match input {
            Input::Tcp => format!(
                "module(load=\"imtcp\")\ninput(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\")\n"
            ),
            Input::Tls => format!(
                "module(load=\"imtcp\" StreamDriver.Name=\"gtls\" StreamDriver.Mode=\"1\" StreamDriver.AuthMode=\"anon\")\n\
                 input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\")\n"
            ),
            Input::MutualTls => format!(
                "module(load=\"imtcp\" StreamDriver.Name=\"gtls\" StreamDriver.Mode=\"1\" StreamDriver.AuthMode=\"x509/certvalid\")\n\
                 input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\")\n"
            ),
            Input::Relp => format!(
                "module(load=\"imrelp\")\ninput(type=\"imrelp\" address=\"127.0.0.1\" port=\"{port}\")\n"
            ),
        });
        conf.push_str(&format!(
            "template(name=\"line\" type=\"string\" string=\"%hostname%|%app-name%|%msgid%|%msg%\\n\")\n\
             action(type=\"omfile\" file={output:?} template=\"line\" asyncWriting=\"off\" flushOnTXEnd=\"on\")\n"
        ));
        let config = d.join("rsyslog.conf");
        std::fs::write(&config, conf).unwrap();
        let mut r = Rsyslog {
            dir,
            port,
            ca,
            output,
            config,
            child: None,
        };
        r.spawn();
        r
    }

    fn spawn(&mut self) {
        let mut command = Command::new(binary());
        command
            .arg("-n")
            .arg("-f")
            .arg(&self.config)
            .arg("-i")
            .arg(self.dir.path().join("rsyslogd.pid"));
        self.child = Some(crate::common::process::spawn_listening(
            command,
            &self.dir.path().join("rsyslogd.log"),
            self.port,
        ));
    }

    /// Stops rsyslog the way a service restart does (SIGTERM: it writes
    /// what it took), then starts it again on the same port and file.
    pub fn restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let _ = c.wait();
        }
        self.spawn();
    }

    /// The lines written so far, each split into HOSTNAME, APP-NAME, MSGID
    /// and MSG.
    pub fn lines(&self) -> Vec<[String; 4]> {
        std::fs::read_to_string(&self.output)
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let mut parts = l.splitn(4, '|').map(str::to_owned);
                std::array::from_fn(|_| parts.next().unwrap_or_default())
            })
            .collect()
    }
}
