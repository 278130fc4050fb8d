//! The `fpolicy-bridge` binary as a process: start it with a config of the
//! test's own, wait until it is ready, read its log.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::{eventually, http_get};

pub const BIN: &str = env!("CARGO_BIN_EXE_fpolicy-bridge");

pub fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

pub struct Proc {
    pub child: Child,
    pub addr: SocketAddr,
    pub admin: SocketAddr,
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
        .stderr(std::fs::File::create(dir.join(format!("stderr-{}.log", addr.port()))).unwrap())
        .spawn()
        .unwrap();
    Proc { child, addr, admin }
}

pub async fn ready(p: &Proc) {
    let ok = eventually(30, async || {
        tokio::net::TcpStream::connect(p.admin).await.is_ok()
            && http_get(p.admin, "/readyz").await.0 == 200
    })
    .await;
    assert!(ok, "server became ready");
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
