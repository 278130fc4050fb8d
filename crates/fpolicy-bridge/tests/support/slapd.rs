//! A real OpenLDAP server for the identity tests: `slapd` (Debian package
//! `slapd`, which scripts/test.sh installs) started on loopback ports with
//! a configuration of the test's own, plain (`ldap://`, also StartTLS) and
//! LDAPS with a certificate from a fresh CA. A small schema adds the
//! Active Directory attributes (`objectSid` as binary, `sAMAccountName`,
//! `userPrincipalName`) as an auxiliary class `user`. Like AD, it answers
//! at most 1,000 entries per search to a normal user, so only a paged
//! search reads everything.
#![allow(dead_code)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

pub const BASE: &str = "dc=example,dc=com";
pub const READER_DN: &str = "cn=reader,dc=example,dc=com";
pub const READER_PASSWORD: &str = "reader-s3cret";
const ADMIN_DN: &str = "cn=admin,dc=example,dc=com";
const ADMIN_PASSWORD: &str = "admin-s3cret";

const SCHEMA: &str = "\
attributetype ( 1.3.6.1.4.1.99999.1.1 NAME 'objectSid'
  EQUALITY octetStringMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.99999.1.2 NAME 'sAMAccountName'
  EQUALITY caseIgnoreMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.99999.1.3 NAME 'userPrincipalName'
  EQUALITY caseIgnoreMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.99999.2.1 NAME 'user'
  SUP top AUXILIARY
  MAY ( objectSid $ sAMAccountName $ userPrincipalName ) )
";

/// One test user: AD attributes when it has a SID, POSIX ones when it has
/// a UID.
#[derive(Debug, Clone)]
pub struct LdapUser {
    pub name: String,
    pub sid: Option<String>,
    pub uid: Option<u32>,
}

pub struct Slapd {
    dir: tempfile::TempDir,
    pub plain_port: u16,
    pub tls_port: u16,
    /// The CA that issued the server's certificate.
    pub ca: PathBuf,
    /// A file holding the reader's password.
    pub password_file: PathBuf,
    child: Option<Child>,
}

fn binary() -> String {
    std::env::var("FPOLICY_SLAPD").unwrap_or_else(|_| "/usr/sbin/slapd".into())
}

impl Slapd {
    /// Starts a server holding `users` under ou=people.
    pub async fn start(users: &[LdapUser]) -> Slapd {
        assert!(
            Path::new(&binary()).exists(),
            "slapd is not installed ({}): scripts/test.sh installs the Debian package slapd",
            binary()
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::create_dir(p.join("db")).unwrap();
        std::fs::write(p.join("ad.schema"), SCHEMA).unwrap();
        let ca = crate::common::write_server_certificates(p);
        let password_file = p.join("reader-password");
        std::fs::write(&password_file, format!("{READER_PASSWORD}\n")).unwrap();
        std::fs::write(p.join("slapd.conf"), config(p)).unwrap();
        let mut s = Slapd {
            plain_port: crate::common::process::free_port().port(),
            tls_port: crate::common::process::free_port().port(),
            ca,
            password_file,
            child: None,
            dir,
        };
        s.spawn();
        s.load(users).await;
        s
    }

    pub fn plain_url(&self) -> String {
        format!("ldap://localhost:{}", self.plain_port)
    }

    pub fn ldaps_url(&self) -> String {
        format!("ldaps://localhost:{}", self.tls_port)
    }

    fn spawn(&mut self) {
        let p = self.dir.path();
        let urls = format!(
            "ldap://127.0.0.1:{}/ ldaps://127.0.0.1:{}/",
            self.plain_port, self.tls_port
        );
        let mut command = Command::new(binary());
        command
            .arg("-f")
            .arg(p.join("slapd.conf"))
            .args(["-h", &urls, "-d", "0"]);
        self.child = Some(crate::common::process::spawn_listening(
            command,
            &p.join("slapd.log"),
            self.plain_port,
        ));
    }

    /// kill -9: the directory is gone until `restart`.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts again on the same ports with the same data.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// A session bound as the directory's administrator. A slapd that has
    /// just started may accept a connection before it serves binds (seen
    /// once in CI as a closed connection): tried for up to 10 s.
    async fn admin_session(&self) -> ldap3::Ldap {
        let url = format!("ldap://127.0.0.1:{}", self.plain_port);
        let mut last = String::new();
        for _ in 0..50 {
            match ldap3::LdapConnAsync::new(&url).await {
                Ok((conn, mut ldap)) => {
                    tokio::spawn(async move { conn.drive().await });
                    match ldap.simple_bind(ADMIN_DN, ADMIN_PASSWORD).await {
                        Ok(r) if r.rc == 0 => return ldap,
                        Ok(r) => last = format!("bind refused: {r:?}"),
                        Err(e) => last = e.to_string(),
                    }
                }
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        panic!(
            "cannot bind to slapd as its administrator: {last}\n{}",
            std::fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default()
        );
    }

    /// Adds the base entries (first time) and `users`, as the directory's
    /// administrator, over LDAP.
    pub async fn load(&self, users: &[LdapUser]) {
        let mut ldap = self.admin_session().await;
        let attr = |name: &str, values: &[&str]| {
            let values = values.iter().map(|v| v.as_bytes().to_vec()).collect();
            (name.as_bytes().to_vec(), values)
        };
        let base_entries: [(String, Vec<Attr>); 3] = [
            (
                BASE.into(),
                vec![
                    attr("objectClass", &["dcObject", "organization"]),
                    attr("o", &["Example"]),
                    attr("dc", &["example"]),
                ],
            ),
            (
                format!("ou=people,{BASE}"),
                vec![
                    attr("objectClass", &["organizationalUnit"]),
                    attr("ou", &["people"]),
                ],
            ),
            (
                READER_DN.into(),
                vec![
                    attr(
                        "objectClass",
                        &["simpleSecurityObject", "organizationalRole"],
                    ),
                    attr("cn", &["reader"]),
                    attr("userPassword", &[READER_PASSWORD]),
                ],
            ),
        ];
        for (dn, attrs) in base_entries {
            // Already there after a restart: fine.
            let _ = ldap.add(&dn, attrs).await;
        }
        for u in users {
            let r = ldap
                .add(&format!("uid={},ou=people,{BASE}", u.name), entry(u))
                .await;
            r.unwrap().success().unwrap();
        }
        let _ = ldap.unbind().await;
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An attribute and its values, as ldap3 adds them.
type Attr = (Vec<u8>, HashSet<Vec<u8>>);

fn entry(u: &LdapUser) -> Vec<Attr> {
    let one = |v: &str| HashSet::from([v.as_bytes().to_vec()]);
    let mut classes = HashSet::from([b"inetOrgPerson".to_vec(), b"user".to_vec()]);
    let mut attrs = vec![
        (b"cn".to_vec(), one(&u.name)),
        (b"sn".to_vec(), one(&u.name)),
        (b"uid".to_vec(), one(&u.name)),
    ];
    if let Some(sid) = &u.sid {
        let bytes = fpolicy_identity::sid::sid_to_bytes(sid).expect("a valid SID");
        attrs.push((b"objectSid".to_vec(), HashSet::from([bytes])));
        attrs.push((b"sAMAccountName".to_vec(), one(&u.name)));
        attrs.push((
            b"userPrincipalName".to_vec(),
            one(&format!("{}@example.com", u.name)),
        ));
    }
    if let Some(uid) = u.uid {
        classes.insert(b"posixAccount".to_vec());
        attrs.push((b"uidNumber".to_vec(), one(&uid.to_string())));
        attrs.push((b"gidNumber".to_vec(), one("100")));
        attrs.push((b"homeDirectory".to_vec(), one(&format!("/home/{}", u.name))));
    }
    attrs.push((b"objectClass".to_vec(), classes));
    attrs
}

fn config(p: &Path) -> String {
    let d = p.display();
    format!(
        "include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
include {d}/ad.schema
pidfile {d}/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCertificateFile {d}/server.pem
TLSCertificateKeyFile {d}/server.key
sizelimit size.soft=1000 size.hard=1000 size.prtotal=unlimited
database mdb
maxsize 104857600
dbnosync
suffix \"{BASE}\"
rootdn \"{ADMIN_DN}\"
rootpw {ADMIN_PASSWORD}
directory {d}/db
"
    )
}
