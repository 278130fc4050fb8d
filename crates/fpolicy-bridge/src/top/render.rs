//! The full-screen view (ratatui): a summary, the sinks, the sessions
//! (sorted and filtered), and a key line. Fits 80×24: the session table
//! takes what the rest leaves.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Row, Table};

use super::model::{SortKey, View, session_rows};

/// What the keys changed.
#[derive(Debug, Clone, Default)]
pub struct Ui {
    pub sort: SortKey,
    pub filter: String,
    /// Typing a filter (after `/`).
    pub editing: bool,
    /// The last scrape's error, shown instead of stale numbers going unnoticed.
    pub error: Option<String>,
    pub source: String,
}

fn count(v: f64) -> String {
    if v >= 1_000_000.0 {
        format!("{:.1}M", v / 1_000_000.0)
    } else if v >= 10_000.0 {
        format!("{:.0}k", v / 1_000.0)
    } else {
        format!("{v:.0}")
    }
}

fn summary(v: &View, ui: &Ui) -> Vec<Line<'static>> {
    let mut state = Vec::new();
    if v.back_pressure {
        state.push("BACK PRESSURE");
    }
    if v.spool_write_failing {
        state.push("SPOOL WRITE FAILING");
    }
    if v.identity_sync_failing {
        state.push("identity sync failing");
    }
    vec![
        Line::from(format!(
            "fpolicy-bridge top — {}{}",
            ui.source,
            ui.error
                .as_ref()
                .map_or(String::new(), |e| format!("  [{e}]"))
        ))
        .style(Style::default().add_modifier(Modifier::BOLD)),
        Line::from(format!(
            "events {}/s (total {})  sessions {} (+{} handshaking)  ONTAP {}",
            count(v.events_per_sec),
            count(v.events_total),
            v.sessions_active,
            v.sessions_handshaking,
            v.registration
        )),
        Line::from(format!(
            "spool {} MiB, {}/s commits, fsync {}  dropped {}  filtered {}/s  bad input {}/s",
            (v.spool_bytes / 1_048_576.0).round(),
            count(v.commits_per_sec),
            v.fsync_ms
                .map_or("-".to_owned(), |ms| format!("{ms:.2} ms")),
            count(v.dropped_total),
            count(v.filtered_per_sec),
            count(v.parse_errors_per_sec)
        )),
        Line::from(format!(
            "names defaulted {}  identity users {}  {}",
            count(v.names_defaulted),
            count(v.identity_users),
            state.join("  ")
        )),
    ]
}

pub fn draw(frame: &mut Frame, v: &View, ui: &Ui) {
    let sink_rows = v.sinks.len().max(1) as u16 + 3;
    let poll_rows = if v.polls.is_empty() {
        0
    } else {
        v.polls.len() as u16 + 2
    };
    let [head, sinks, polls, sessions, keys] = Layout::vertical([
        Constraint::Length(4),
        Constraint::Length(sink_rows),
        Constraint::Length(poll_rows),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    frame.render_widget(Paragraph::new(summary(v, ui)), head);
    let header = Style::default().add_modifier(Modifier::BOLD);
    let rows = v.sinks.iter().map(|s| {
        Row::new(vec![
            s.name.clone(),
            if s.up { "up".into() } else { "DOWN".into() },
            format!("{}/s", count(s.delivered_per_sec)),
            count(s.lag),
            format!("{}/s", count(s.errors_per_sec)),
            count(s.dead_letters),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(16),
            Constraint::Length(5),
            Constraint::Length(11),
            Constraint::Length(9),
            Constraint::Length(9),
            Constraint::Length(12),
        ],
    )
    .header(
        Row::new([
            "sink",
            "state",
            "delivered",
            "lag",
            "errors",
            "dead letters",
        ])
        .style(header),
    )
    .block(Block::bordered().title("sinks"));
    frame.render_widget(table, sinks);
    if !v.polls.is_empty() {
        let rows = v.polls.iter().map(|p| {
            Row::new(vec![
                p.name.clone(),
                if p.up { "up".into() } else { "FAILING".into() },
                fpolicy_event::time::rfc3339((p.next_run_unix * 1e9) as i64),
            ])
        });
        let table = Table::new(
            rows,
            [
                Constraint::Length(16),
                Constraint::Length(8),
                Constraint::Min(20),
            ],
        )
        .header(Row::new(["poll", "state", "next run"]).style(header))
        .block(Block::bordered().title("polls"));
        frame.render_widget(table, polls);
    }
    let listed = session_rows(v, &ui.filter, ui.sort);
    let rows = listed.iter().map(|s| {
        Row::new(vec![
            s.node.clone(),
            s.svm.clone(),
            s.policy.clone(),
            s.engine.clone(),
            format!("{}/s", count(s.events_per_sec)),
            count(s.events as f64),
        ])
    });
    let title = format!(
        "sessions {} of {} (sort: {}{})",
        listed.len(),
        v.sessions.len(),
        ui.sort.label(),
        if ui.filter.is_empty() {
            String::new()
        } else {
            format!(", filter: {}", ui.filter)
        }
    );
    let table = Table::new(
        rows,
        [
            Constraint::Length(16),
            Constraint::Length(14),
            Constraint::Length(16),
            Constraint::Length(6),
            Constraint::Length(10),
            Constraint::Length(10),
        ],
    )
    .header(Row::new(["node", "svm", "policy", "engine", "events", "total"]).style(header))
    .block(Block::bordered().title(title));
    frame.render_widget(table, sessions);
    let help = if ui.editing {
        format!("filter: {}_   (Enter: keep, Esc: clear)", ui.filter)
    } else {
        "q quit   s sort   / filter".to_owned()
    };
    frame.render_widget(Paragraph::new(help), keys);
}
