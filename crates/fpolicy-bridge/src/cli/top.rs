//! `top`: the live view of a running server (see `fpolicy_bridge::top`).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use fpolicy_bridge::admin::probe_limited;
use fpolicy_bridge::top::model::{Snapshot, View, plain_line, view};
use fpolicy_bridge::top::render::{Ui, draw};
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind};

use super::CommonArgs;

#[derive(clap::Args)]
pub struct TopArgs {
    /// The server's admin address [default: admin.listen of --config, else
    /// 127.0.0.1:9899].
    #[arg(long)]
    pub admin: Option<std::net::SocketAddr>,
    /// Seconds between refreshes.
    #[arg(long, default_value_t = 1.0)]
    pub interval: f64,
    /// One line per refresh instead of the full screen (the default when
    /// standard output is not a terminal).
    #[arg(long)]
    pub plain: bool,
    /// Plain mode: stop after this many lines (0: run until interrupted).
    #[arg(long, default_value_t = 0)]
    pub count: u64,
}

/// One scrape of `/metrics` and `/sessions`.
fn scrape(admin: std::net::SocketAddr, started: Instant) -> Result<Snapshot, String> {
    let timeout = Duration::from_secs(2);
    let metrics = probe_limited(admin, "/metrics", timeout, 8 << 20).map_err(|e| e.to_string())?;
    let sessions = probe_limited(admin, "/sessions", timeout, 8 << 20).ok();
    Ok(Snapshot::parse(
        started.elapsed().as_secs_f64(),
        &metrics,
        sessions.as_deref(),
    ))
}

pub fn run(common: &CommonArgs, args: TopArgs) -> anyhow::Result<()> {
    let admin = match args.admin {
        Some(a) => a,
        None => super::health::admin_address(common)?,
    };
    anyhow::ensure!(
        (0.1..=3600.0).contains(&args.interval),
        "--interval must be between 0.1 and 3600 seconds"
    );
    let interval = Duration::from_secs_f64(args.interval);
    if args.plain || !std::io::stdout().is_terminal() {
        return plain(admin, interval, args.count);
    }
    full_screen(admin, interval)
}

fn plain(admin: std::net::SocketAddr, interval: Duration, count: u64) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut prev: Option<Snapshot> = None;
    let mut lines = 0;
    loop {
        match scrape(admin, started) {
            Ok(now) => {
                if prev.is_some() {
                    println!("{}", plain_line(&view(prev.as_ref(), &now)));
                    lines += 1;
                }
                prev = Some(now);
            }
            Err(e) => {
                println!("cannot read {admin}: {e}");
                lines += 1;
            }
        }
        if count > 0 && lines >= count {
            return Ok(());
        }
        std::thread::sleep(interval);
    }
}

fn full_screen(admin: std::net::SocketAddr, interval: Duration) -> anyhow::Result<()> {
    let mut terminal = ratatui::try_init()?;
    let result = screen_loop(&mut terminal, admin, interval);
    ratatui::restore();
    result
}

fn screen_loop(
    terminal: &mut ratatui::DefaultTerminal,
    admin: std::net::SocketAddr,
    interval: Duration,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut ui = Ui {
        source: admin.to_string(),
        ..Ui::default()
    };
    let (mut prev, mut shown): (Option<Snapshot>, View) = (None, View::default());
    loop {
        match scrape(admin, started) {
            Ok(now) => {
                shown = view(prev.as_ref(), &now);
                prev = Some(now);
                ui.error = None;
            }
            Err(e) => ui.error = Some(e),
        }
        let deadline = Instant::now() + interval;
        loop {
            terminal.draw(|f| draw(f, &shown, &ui))?;
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !event::poll(left)? {
                break;
            }
            if let Event::Key(k) = event::read()?
                && k.kind == KeyEventKind::Press
                && key(&mut ui, k.code)
            {
                return Ok(());
            }
        }
    }
}

/// Applies a key; true to quit.
fn key(ui: &mut Ui, code: KeyCode) -> bool {
    if ui.editing {
        match code {
            KeyCode::Enter => ui.editing = false,
            KeyCode::Esc => {
                ui.editing = false;
                ui.filter.clear();
            }
            KeyCode::Backspace => {
                ui.filter.pop();
            }
            KeyCode::Char(c) if ui.filter.len() < 64 => ui.filter.push(c),
            _ => {}
        }
        return false;
    }
    match code {
        KeyCode::Char('q') | KeyCode::Esc => return true,
        KeyCode::Char('s') => ui.sort = ui.sort.next(),
        KeyCode::Char('/') => ui.editing = true,
        _ => {}
    }
    false
}
