//! `fpolicy-bridge top` end to end: in a real terminal (tmux, which
//! scripts/test.sh installs; its own server socket), against a live server
//! with fpolicy-sim traffic, read back with `capture-pane`; and the plain
//! mode when standard output is not a terminal. Needs the
//! `tui-integration` feature.

mod common;

use std::process::Command;
use std::time::Duration;

use common::process::BIN;
use common::*;

struct Tmux {
    socket: String,
}

impl Tmux {
    fn new() -> Tmux {
        Tmux {
            socket: format!("fpolicy-top-test-{}", std::process::id()),
        }
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux runs (scripts/test.sh installs it)")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "top"]).stdout).into_owned()
    }

    async fn shows(&self, text: &str) -> bool {
        eventually(10, async || self.screen().contains(text)).await
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_shows_a_live_server_in_80_by_24_and_answers_its_keys() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start(base_config(dir.path())).await;
    let mut sim = fpolicy_sim::SimConfig::new(server.addr);
    sim.rate = Some(500);
    sim.duration = Some(Duration::from_secs(30));
    sim.nodes = 2;
    let traffic = tokio::spawn(fpolicy_sim::run(sim));
    let tmux = Tmux::new();
    let command = format!("{BIN} top --admin {}", server.admin);
    let started = tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "top",
        "-x",
        "80",
        "-y",
        "24",
        &command,
    ]);
    assert!(started.status.success(), "{started:?}");
    assert!(tmux.shows("fpolicy-bridge top").await, "{}", tmux.screen());
    // Two sessions with their events per second, the JSON Lines sink.
    assert!(tmux.shows("sessions 2 of 2").await, "{}", tmux.screen());
    let screen = tmux.screen();
    assert!(
        screen.contains("127.0.0.1") && screen.contains("jsonl"),
        "{screen}"
    );
    assert!(
        eventually(10, async || {
            let s = tmux.screen();
            s.lines()
                .any(|l| l.starts_with("events ") && !l.starts_with("events 0/s"))
        })
        .await,
        "a non-zero event rate: {}",
        tmux.screen()
    );
    assert!(screen.lines().count() <= 24, "fits 24 lines");
    // s sorts, / filters, q quits.
    tmux.run(&["send-keys", "-t", "top", "s"]);
    assert!(tmux.shows("sort: node").await, "{}", tmux.screen());
    tmux.run(&["send-keys", "-t", "top", "/", "n", "o", "p", "e", "Enter"]);
    assert!(tmux.shows("sessions 0 of 2").await, "{}", tmux.screen());
    tmux.run(&["send-keys", "-t", "top", "q"]);
    let quit = eventually(10, async || {
        !tmux.run(&["has-session", "-t", "top"]).status.success()
    })
    .await;
    assert!(quit, "q ends top (and its tmux session)");
    traffic.abort();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_prints_plain_lines_when_not_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start(base_config(dir.path())).await;
    let mut sim = fpolicy_sim::SimConfig::new(server.addr);
    sim.rate = Some(200);
    sim.duration = Some(Duration::from_secs(10));
    let traffic = tokio::spawn(fpolicy_sim::run(sim));
    let admin = server.admin.to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args([
                "top",
                "--admin",
                &admin,
                "--interval",
                "0.5",
                "--count",
                "3",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("events ") && l.contains("jsonl=")),
        "{text}"
    );
    traffic.abort();
    server.stop().await;
}
