//! The `fpolicy-bridge` binary as a process: start it with a config of the
//! test's own, wait until it is ready, read its log.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::{eventually, http_get};

pub const BIN: &str = env!("CARGO_BIN_EXE_fpolicy-bridge");

/// A loopback port nothing listens on, for a child process to bind.
///
/// Not from `bind(0)`: that hands out ephemeral ports, and between this
/// call and the child's bind any outgoing connection on the machine (the
/// simulator, a sink, another test) may take the same port as its local
/// end. Ports below the kernel's ephemeral range are never taken that way;
/// within this process a counter keeps two tests apart, and a start that
/// depends on the process id keeps test binaries apart.
pub fn free_port() -> SocketAddr {
    use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let (low, high) = below_ephemeral_range();
    let span = high - low;
    let start = std::process::id().wrapping_mul(977) % span;
    for _ in 0..span {
        let port = low + (start + NEXT.fetch_add(1, Relaxed) % span) % span;
        let addr = SocketAddr::from(([127, 0, 0, 1], port as u16));
        if std::net::TcpListener::bind(addr).is_ok() {
            return addr;
        }
    }
    panic!("no free loopback port in {low}..{high}");
}

/// The ports from 20000 to the start of the ephemeral range (32768 on
/// Linux unless configured otherwise).
fn below_ephemeral_range() -> (u32, u32) {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768);
    if ephemeral_low > 21000 {
        (20000, ephemeral_low)
    } else {
        (10000, ephemeral_low.max(10000 + 1000))
    }
}

pub struct Proc {
    pub child: Child,
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    /// Where its standard error goes.
    pub log: PathBuf,
}

pub fn spawn(dir: &Path, extra_toml: &str, args: &[&str], stdout: Stdio) -> Proc {
    spawn_with_data(dir, &dir.join("data"), extra_toml, args, stdout)
}

/// Like [`spawn`], with the data directory somewhere else (a small file
/// system), while the config and the log stay in `dir`.
pub fn spawn_with_data(
    dir: &Path,
    data_dir: &Path,
    extra_toml: &str,
    args: &[&str],
    stdout: Stdio,
) -> Proc {
    spawn_with_env(dir, data_dir, extra_toml, args, stdout, &[])
}

/// Like [`spawn_with_data`], with environment variables for the server.
pub fn spawn_with_env(
    dir: &Path,
    data_dir: &Path,
    extra_toml: &str,
    args: &[&str],
    stdout: Stdio,
    env: &[(&str, &str)],
) -> Proc {
    let addr = free_port();
    let admin = free_port();
    let cfg = dir.join("config.toml");
    std::fs::write(&cfg, format!("data_dir = {data_dir:?}\n{extra_toml}")).unwrap();
    let log = dir.join(format!("stderr-{}.log", addr.port()));
    let child = Command::new(BIN)
        .arg("serve")
        .arg("--config")
        .arg(&cfg)
        .args([
            "--listen",
            &addr.to_string(),
            "--admin-listen",
            &admin.to_string(),
        ])
        .args(args)
        .envs(env.iter().copied())
        .stdout(stdout)
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    Proc {
        child,
        addr,
        admin,
        log,
    }
}

pub async fn ready(p: &Proc) {
    let ok = eventually(30, async || {
        tokio::net::TcpStream::connect(p.admin).await.is_ok()
            && http_get(p.admin, "/readyz").await.0 == 200
    })
    .await;
    assert!(
        ok,
        "server became ready; its log:\n{}",
        std::fs::read_to_string(&p.log).unwrap_or_default()
    );
}

/// The standard error of the (single) server started in `dir`.
pub fn server_log(dir: &Path) -> String {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| e.file_name().to_string_lossy().starts_with("stderr"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .unwrap()
}

pub fn data(dir: &Path) -> PathBuf {
    dir.join("data")
}

/// Starts a test's own server (slapd, nats-server) with its standard error
/// in `log`, and waits up to 15 s until it accepts on loopback `port`;
/// a server that does not listen fails the test with its log.
pub fn spawn_listening(mut command: Command, log: &Path, port: u16) -> Child {
    let name = command.get_program().to_string_lossy().into_owned();
    let mut child = command
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("{name} starts: {e}"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        let exited = child.try_wait().ok().flatten();
        if exited.is_some() || std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{name} did not listen on {port} ({exited:?}): {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child
}
