//! Drawing: one function per screen, all reading the model and nothing else. Text comes from the
//! same renderers the scripted commands use, so both front ends say the same thing.

use std::cell::Cell;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Gauge, List, ListItem, ListState, Paragraph, Wrap};

use super::app::{Confirm, Model, Screen, StepState};
use crate::apply::{self, Outcome};
use crate::methods::Risk;
use crate::render;

pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 16;

/// Colours, or none at all when `NO_COLOR` is set (modifiers still mark what matters).
#[derive(Debug, Clone, Copy)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    pub fn from_env() -> Theme {
        Theme {
            color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }
    fn fg(self, c: Color) -> Style {
        if self.color {
            Style::new().fg(c)
        } else {
            Style::new()
        }
    }
    fn accent(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }
    fn danger(self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }
    fn ok(self) -> Style {
        self.fg(Color::Green)
    }
    fn warn(self) -> Style {
        self.fg(Color::Yellow)
    }
    fn dim(self) -> Style {
        self.fg(Color::DarkGray).add_modifier(Modifier::DIM)
    }
    fn selected(self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }
    fn risk(self, r: Risk) -> Style {
        match r {
            Risk::Low => self.ok(),
            Risk::Medium => self.warn(),
            Risk::High => self.danger(),
        }
    }
}

pub fn view(m: &Model, f: &mut Frame, t: Theme) {
    let area = f.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let text = format!(
            "Terminal too small: {}x{}.\nlowport needs at least {MIN_WIDTH}x{MIN_HEIGHT}.\nEnlarge it, or press q to quit.",
            area.width, area.height
        );
        f.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
        return;
    }
    let [top, body, status, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(5),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    f.render_widget(title_bar(m, t, top.width), top);
    match m.screen {
        Screen::Host => host(m, f, body, t),
        Screen::Approaches => approaches(m, f, body, t),
        Screen::Settings => settings(m, f, body, t),
        Screen::Preview => preview(m, f, body, t),
        Screen::Review => review(m, f, body, t),
        Screen::Apply => apply(m, f, body, t),
        Screen::History => history(m, f, body, t),
    }
    if let Some(msg) = &m.message {
        f.render_widget(Paragraph::new(msg.as_str()).style(t.warn()), status);
    }
    // Narrow terminals get single spaces between keys, so every key still fits.
    let keys = m.keys();
    let wide: usize = keys
        .iter()
        .map(|(k, w)| k.chars().count() + w.chars().count() + 3)
        .sum();
    let pad = if wide <= footer.width as usize {
        " "
    } else {
        ""
    };
    let keys: Vec<Span> = keys
        .iter()
        .flat_map(|(k, what)| {
            [
                Span::styled(format!(" {k}"), t.accent()),
                Span::raw(format!(" {what}{pad}")),
            ]
        })
        .collect();
    f.render_widget(Paragraph::new(Line::from(keys)), footer);
    if m.help {
        help(f, body, t);
    }
    if let Some(c) = &m.confirm {
        confirm(c, f, body, t);
    }
    if let Some(at) = m.picker {
        picker(m, at, f, body, t);
    }
}

/// The host picker: this host, or another one to plan for (its facts, or a stock install). A
/// list, so a short terminal scrolls to the selection.
fn picker(m: &Model, at: usize, f: &mut Frame, area: Rect, t: Theme) {
    let r = centered(area, 72, m.choices.len() as u16 + 2);
    let items: Vec<ListItem> = m
        .choices
        .iter()
        .map(|c| {
            let mark = if *c == m.other { "●" } else { " " };
            ListItem::new(format!(
                "{mark} {}",
                render::clean(&super::app::host_label(c))
            ))
        })
        .collect();
    let list = List::new(items)
        .block(boxed("Plan for"))
        .highlight_style(t.selected());
    let mut state = ListState::default().with_selected(Some(at));
    f.render_widget(Clear, r);
    f.render_stateful_widget(list, r, &mut state);
}

fn title_bar(m: &Model, t: Theme, width: u16) -> Line<'static> {
    let mut spans = vec![Span::styled(" lowport ", t.accent())];
    if m.screen == Screen::History {
        spans.push(Span::styled("History", t.selected()));
    } else {
        for (i, s) in Screen::FLOW.iter().enumerate() {
            // Narrow terminals show only the current step's name.
            if width < 80 && *s != m.screen {
                continue;
            }
            if i > 0 && width >= 80 {
                spans.push(Span::styled(" › ", t.dim()));
            }
            let style = if *s == m.screen {
                t.selected()
            } else {
                t.dim()
            };
            spans.push(Span::styled(s.title(), style));
        }
    }
    if let Some(f) = &m.facts {
        let who = if m.is_root { "root" } else { "not root" };
        spans.push(Span::styled(format!("  {} ({who})", f.hostname), t.dim()));
    }
    Line::from(spans)
}

fn boxed(title: &str) -> Block<'_> {
    Block::default()
        .borders(Borders::ALL)
        .title(format!(" {title} "))
}

fn host(m: &Model, f: &mut Frame, area: Rect, t: Theme) {
    let mut lines: Vec<Line> = vec![
        if m.for_other_host() {
            Line::styled(
                format!(
                    "Planning for {} (o: other hosts): nothing runs here; its plans are saved \
                     or exported as a script to run there.",
                    render::clean(&super::app::host_label(&m.other))
                ),
                t.warn(),
            )
        } else {
            Line::styled(
                "Read-only detection: nothing on this host changes until you confirm an apply.",
                t.dim(),
            )
        },
        Line::raw(""),
    ];
    match (&m.facts, &m.facts_error) {
        (_, Some(e)) => {
            lines.push(Line::styled(format!("Detection failed: {e}"), t.danger()));
            lines.push(Line::raw(
                "Fix the binary in Settings (Enter, then choose an approach) or quit.",
            ));
        }
        (None, None) => lines.push(Line::raw("Detecting…")),
        (Some(facts), None) => {
            // Said first: where every user may already bind the port, no grant is needed.
            let want = crate::methods::Want {
                ports: crate::validate::port_list(m.value(super::app::FieldId::Ports))
                    .unwrap_or_default(),
                ..crate::methods::Want::default()
            };
            if let Some(open) = crate::methods::already_open(facts, &want) {
                lines.push(Line::styled(open, t.warn()));
                lines.push(Line::raw(""));
            }
            for l in render::facts(facts).lines() {
                let style = if l.trim_start().starts_with('!') {
                    t.warn()
                } else {
                    Style::new()
                };
                lines.push(Line::styled(l.to_string(), style));
            }
            for n in &m.notes {
                // A profile note quotes the operator's configuration file.
                lines.push(Line::raw(render::clean(n)));
            }
            if facts.binary.is_none() {
                lines.push(Line::raw(""));
                lines.push(Line::styled(
                    "No binary given yet: you will name the service's executable in Settings.",
                    t.warn(),
                ));
            }
        }
    }
    let p = Paragraph::new(lines)
        .block(boxed("Host"))
        .wrap(Wrap { trim: false });
    scrolled(f, p, area, m.scroll, &m.scroll_max);
}

/// Draws a bordered, wrapped paragraph scrolled by `scroll` but never past its end, and records
/// in `max` the furthest scroll that still fills the pane, which `update` clamps to.
fn scrolled(f: &mut Frame, p: Paragraph, area: Rect, scroll: u16, max: &Cell<u16>) {
    let rows = p.line_count(area.width.saturating_sub(2));
    let limit = u16::try_from(rows)
        .unwrap_or(u16::MAX)
        .saturating_sub(area.height);
    max.set(limit);
    f.render_widget(p.scroll((scroll.min(limit), 0)), area);
}

fn badge(r: Risk) -> &'static str {
    match r {
        Risk::Low => "low ",
        Risk::Medium => "med ",
        Risk::High => "HIGH",
    }
}

fn approaches(m: &Model, f: &mut Frame, area: Rect, t: Theme) {
    let left_width = if area.width >= 80 { 30 } else { 24 };
    let [left, right] =
        Layout::horizontal([Constraint::Length(left_width), Constraint::Min(20)]).areas(area);
    let recommended = m.recommended();
    let items: Vec<ListItem> = m
        .methods
        .iter()
        .enumerate()
        .map(|(i, a)| {
            // The mark leads the row, so a narrow list cuts the id, never the mark.
            let mark = if !a.available {
                "✗"
            } else if Some(i) == recommended {
                "★"
            } else {
                " "
            };
            let mut spans = vec![
                Span::raw(format!("{mark} ")),
                Span::styled(format!("[{}]", badge(a.risk)), t.risk(a.risk)),
                Span::raw(format!(" {}", a.id)),
            ];
            if !a.available {
                spans = spans.into_iter().map(|s| s.style(t.dim())).collect();
            }
            ListItem::new(Line::from(spans))
        })
        .collect();
    let list_block =
        boxed("Approaches").border_style(if m.detail_focus { t.dim() } else { t.accent() });
    let list = List::new(items)
        .block(list_block)
        .highlight_style(t.selected());
    let mut state = ListState::default().with_selected(Some(m.cursor));
    f.render_stateful_widget(list, left, &mut state);

    let Some(a) = m.selected() else {
        f.render_widget(
            Paragraph::new("No method is known for this OS.").block(boxed("Details")),
            right,
        );
        return;
    };
    let mut lines = vec![
        Line::styled(a.doc.title.clone(), t.accent()),
        Line::from(vec![
            Span::raw("Risk: "),
            Span::styled(a.risk.to_string(), t.risk(a.risk)),
        ]),
    ];
    if recommended == Some(m.cursor) {
        lines.push(Line::styled("★ recommended here", t.ok()));
    }
    if !a.available {
        lines.push(Line::styled("Unavailable here:", t.danger()));
        lines.extend(
            a.check
                .blockers
                .iter()
                .map(|b| Line::styled(format!("  - {b}"), t.danger())),
        );
    }
    lines.push(Line::raw(""));
    for (head, body) in [
        ("", &a.doc.summary),
        ("How it works", &a.doc.how),
        ("Scope", &a.doc.scope),
        ("Persistence", &a.doc.persistence),
        ("Undo", &a.doc.undo),
    ] {
        if !head.is_empty() {
            lines.push(Line::styled(
                head,
                Style::new().add_modifier(Modifier::BOLD),
            ));
        }
        lines.push(Line::raw(body.clone()));
        lines.push(Line::raw(""));
    }
    lines.push(Line::styled(
        "Risks",
        Style::new().add_modifier(Modifier::BOLD),
    ));
    lines.extend(a.doc.risks.iter().map(|r| Line::raw(format!("  - {r}"))));
    if !a.check.warnings.is_empty() {
        lines.push(Line::raw(""));
        lines.push(Line::styled(
            "With your settings",
            Style::new().add_modifier(Modifier::BOLD),
        ));
        lines.extend(
            a.check
                .warnings
                .iter()
                .map(|w| Line::styled(format!("  ! {w}"), t.warn())),
        );
    }
    if !a.check.input.is_empty() {
        lines.push(Line::raw(""));
        lines.push(Line::styled(
            "Still needed",
            Style::new().add_modifier(Modifier::BOLD),
        ));
        lines.extend(a.check.input.iter().map(|w| Line::raw(format!("  - {w}"))));
    }
    let block = boxed("Details").border_style(if m.detail_focus { t.accent() } else { t.dim() });
    let p = Paragraph::new(lines)
        .block(block)
        .wrap(Wrap { trim: false });
    scrolled(f, p, right, m.detail_scroll, &m.detail_max);
}

fn settings(m: &Model, f: &mut Frame, area: Rect, t: Theme) {
    let method = m
        .selected()
        .map_or(String::new(), |a| format!("{} ({})", a.id, a.doc.title));
    let mut lines = vec![Line::raw(format!("Method: {method}")), Line::raw("")];
    // Scroll so the active field stays in view; rows are counted after wrapping.
    let inner = area.width.saturating_sub(2).max(1) as usize;
    let rows = |l: &Line| l.width().div_ceil(inner).max(1);
    // The row after the active field's note: what must be in view.
    let mut active_end = 0;
    // Labels are right-aligned to the longest; notes start under the values.
    let width = m.fields.iter().map(|f| f.label().len()).max().unwrap_or(0);
    let indent = " ".repeat(width + 2);
    for i in m.used() {
        let field = &m.fields[i];
        let active = i == m.field;
        let cursor = if active && !field.id.is_switch() {
            "▏"
        } else {
            ""
        };
        let label = Span::styled(
            format!("{:>width$}: ", field.label()),
            if active { t.accent() } else { Style::new() },
        );
        let shown = match (field.id.is_switch(), field.on()) {
            (true, true) => "[x] yes".to_string(),
            (true, false) => "[ ] no".to_string(),
            (false, _) => format!("{}{cursor}", field.value),
        };
        let value = Span::styled(shown, if active { t.selected() } else { Style::new() });
        lines.push(Line::from(vec![label, value]));
        match &field.error {
            Some(e) => lines.push(Line::styled(format!("{indent}✗ {e}"), t.danger())),
            None => lines.push(Line::styled(format!("{indent}{}", field.note()), t.dim())),
        }
        if active {
            active_end = lines.iter().map(rows).sum();
        }
    }
    if let Some(e) = &m.plan_error {
        lines.push(Line::raw(""));
        for l in e.lines() {
            lines.push(Line::styled(l.to_string(), t.danger()));
        }
    }
    let visible = area.height.saturating_sub(2) as usize;
    let offset = active_end.saturating_sub(visible) as u16;
    f.render_widget(
        Paragraph::new(lines)
            .block(boxed("Settings"))
            .wrap(Wrap { trim: false })
            .scroll((offset, 0)),
        area,
    );
}

fn diff_line(l: &str, t: Theme) -> Line<'static> {
    let body = l.trim_start();
    let style = if body.starts_with("+++") || body.starts_with("---") {
        Style::new().add_modifier(Modifier::BOLD)
    } else if body.starts_with('+') {
        t.ok()
    } else if body.starts_with('-') {
        t.danger()
    } else if body.starts_with("@@") {
        t.accent()
    } else if body.starts_with('!') {
        t.warn()
    } else {
        Style::new()
    };
    Line::styled(l.to_string(), style)
}

fn preview(m: &Model, f: &mut Frame, area: Rect, t: Theme) {
    let Some(plan) = &m.plan else { return };
    // Once saved, the commands that apply the plan need room: one line each, the last wraps,
    // and the SHA-256 it carries takes a line of its own.
    let notice = match (m.is_root, &m.saved) {
        _ if plan.from_facts => 4,
        (true, _) => 1,
        (false, None) => 4,
        (false, Some(_)) => 8,
    };
    let [head, body, foot] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(notice),
    ])
    .areas(area);
    let head_text = if plan.from_facts {
        "A plan for another host: nothing here will change. Review every step below."
    } else {
        "Nothing has changed on this host yet. Review every step below."
    };
    f.render_widget(Paragraph::new(head_text).style(t.ok()), head);
    let lines: Vec<Line> = render::plan(plan)
        .lines()
        .map(|l| diff_line(l, t))
        .collect();
    let p = Paragraph::new(lines)
        .block(boxed("Preview"))
        .wrap(Wrap { trim: false });
    scrolled(f, p, body, m.scroll, &m.scroll_max);
    let text = match (m.is_root, &m.saved) {
        _ if plan.from_facts => other_host_notice(m, plan),
        (true, _) if plan.nothing_to_do() => "Already in place: nothing to apply.".to_string(),
        (true, _) if plan.risk == Risk::High => "High risk: Enter opens a guided review first.".to_string(),
        (true, _) => "Enter asks for confirmation, then applies.".to_string(),
        (false, None) => "You are not root: applying needs root. Press s to save this plan;\nlowport then shows the exact sudo command that applies it.".to_string(),
        (false, Some(s)) => format!(
            "Plan saved. Hand it to root and apply exactly this plan with:\n  {}",
            render::apply_plan_command(&m.exe, &m.options, &s.path, &s.sha256, true)
                .replace(" && ", " &&\n  ")
        ),
    };
    let style = if m.is_root { t.dim() } else { t.warn() };
    f.render_widget(
        Paragraph::new(text).style(style).wrap(Wrap { trim: false }),
        foot,
    );
}

/// What becomes of a plan for another host: the script it was exported to and how to run it
/// there, the saved plan, or the keys that do either.
fn other_host_notice(m: &Model, plan: &crate::plan::Plan) -> String {
    let mut text = match &m.exported {
        Some(p) => {
            let p = render::clean(&p.display().to_string());
            if plan.family == "windows" {
                format!(
                    "Exported to {p}. On the host, as Administrator: `-Mode check`, then \
                     `-Mode apply`; `-Mode undo` reverts it."
                )
            } else {
                format!(
                    "Exported to {p}. Copy it to the host; as root: `sh SCRIPT check`, then \
                     `sh SCRIPT apply`; `sh SCRIPT undo` reverts it."
                )
            }
        }
        None if plan.risk == Risk::High => {
            "High risk: Enter opens a guided review, then exports the script.".to_string()
        }
        None => "Enter exports it as a script to run on that host; s saves the plan.".to_string(),
    };
    if let Some(s) = &m.saved {
        text.push_str(&format!(
            "\nPlan saved to {}; `lowport export --plan FILE --format sh` exports it later.",
            render::clean(&s.path.display().to_string())
        ));
    }
    text
}

fn review(m: &Model, f: &mut Frame, area: Rect, t: Theme) {
    let Some(plan) = &m.plan else { return };
    let [body, input] = Layout::vertical([Constraint::Min(4), Constraint::Length(4)]).areas(area);
    let mut lines = vec![
        Line::styled(
            format!("{} is HIGH RISK. Read this before applying.", plan.method),
            t.danger(),
        ),
        Line::raw(""),
        Line::styled(
            "What becomes possible, for whom",
            Style::new().add_modifier(Modifier::BOLD),
        ),
    ];
    lines.extend(plan.warnings.iter().map(|w| Line::raw(format!("  - {w}"))));
    let safer: Vec<_> = m
        .methods
        .iter()
        .filter(|a| a.available && a.risk < plan.risk)
        .collect();
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        "Safer alternatives here",
        Style::new().add_modifier(Modifier::BOLD),
    ));
    if safer.is_empty() {
        lines.push(Line::raw(
            "  none is available on this host with these settings",
        ));
    }
    for a in safer {
        lines.push(Line::from(vec![
            Span::styled(format!("  [{}] {}", badge(a.risk), a.id), t.risk(a.risk)),
            Span::raw(format!(": {}", a.doc.summary)),
        ]));
    }
    f.render_widget(
        Paragraph::new(lines)
            .block(boxed("Review"))
            .wrap(Wrap { trim: false }),
        body,
    );
    let mut prompt = vec![
        Line::raw(format!(
            "Type the method id ({}) and press Enter to acknowledge:",
            plan.method
        )),
        Line::styled(format!("> {}▏", m.ack), t.accent()),
    ];
    if let Some(e) = &m.ack_error {
        prompt.push(Line::styled(e.clone(), t.danger()));
    } else {
        prompt.push(Line::styled(
            "Apply stays impossible until you do.",
            t.dim(),
        ));
    }
    f.render_widget(Paragraph::new(prompt), input);
}

fn icon(s: StepState, t: Theme) -> Span<'static> {
    match s {
        StepState::Pending => Span::styled("·", t.dim()),
        StepState::Running => Span::styled("▶", t.accent()),
        StepState::Done => Span::styled("✓", t.ok()),
        StepState::Skipped => Span::styled("↷", t.dim()),
        StepState::Failed => Span::styled("✗", t.danger()),
        StepState::Undone => Span::styled("↺", t.warn()),
        StepState::UndoFailed => Span::styled("!", t.danger()),
    }
}

fn apply(m: &Model, f: &mut Frame, area: Rect, t: Theme) {
    let Some(p) = &m.progress else { return };
    let total = p.steps.len().max(1);
    let done = p
        .steps
        .iter()
        .filter(|(_, _, s)| !matches!(s, StepState::Pending | StepState::Running))
        .count();
    // Each step row wraps; size the box for the wrapped rows, at most half the screen.
    let inner = area.width.saturating_sub(2).max(1) as usize;
    let rows: usize = p
        .steps
        .iter()
        .map(|(n, s, _)| (s.chars().count() + 6 + n.to_string().len()).div_ceil(inner))
        .sum();
    let steps_height = (rows as u16 + 2).min(area.height / 2);
    let [gauge, steps, result] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(steps_height),
        Constraint::Min(3),
    ])
    .areas(area);
    let ratio = if p.finished.is_some() {
        1.0
    } else {
        done as f64 / total as f64
    };
    f.render_widget(
        Gauge::default()
            .ratio(ratio)
            .label(p.title.clone())
            .gauge_style(t.accent()),
        gauge,
    );
    let rows: Vec<Line> = p
        .steps
        .iter()
        .map(|(n, s, state)| Line::from(vec![icon(*state, t), Span::raw(format!(" {n}. {s}"))]))
        .collect();
    f.render_widget(
        Paragraph::new(rows)
            .block(boxed("Steps"))
            .wrap(Wrap { trim: false }),
        steps,
    );
    let mut lines: Vec<Line> = Vec::new();
    match &p.finished {
        None => {
            let tail = p.log.len().saturating_sub(result.height as usize);
            lines.extend(p.log[tail..].iter().map(|l| Line::raw(l.clone())));
        }
        Some(Err(e)) => lines.push(Line::styled(format!("Could not run: {e}"), t.danger())),
        Some(Ok((outcome, report))) => {
            match outcome {
                Outcome::Applied { run } => {
                    let not_started = report
                        .as_ref()
                        .is_some_and(|r| r.status == crate::verify::Verdict::NotStarted);
                    lines.push(Line::styled(
                        if not_started {
                            format!("Applied as run {run}; not started, so not verified yet.")
                        } else {
                            format!("Applied and verified as run {run}.")
                        },
                        t.ok(),
                    ));
                    lines.push(Line::raw(format!(
                        "Undo later: {}, or from History (h).",
                        apply::rollback_command(&m.options, run)
                    )));
                }
                Outcome::NothingToDo => lines.push(Line::raw("Nothing to do: already in place.")),
                Outcome::RolledBack { run, cause } if p.rollback => {
                    lines.push(Line::styled(
                        format!("Run {run} rolled back ({cause})."),
                        t.ok(),
                    ));
                }
                Outcome::RolledBack { cause, .. } => {
                    lines.push(Line::styled(format!("Failed: {cause}."), t.danger()));
                    lines.push(Line::styled(
                        "Every change was rolled back; the host is as before.",
                        t.ok(),
                    ));
                }
                Outcome::RollbackIncomplete { run, errors, .. } => {
                    lines.push(Line::styled(
                        "Failed, and the rollback is INCOMPLETE:",
                        t.danger(),
                    ));
                    lines.extend(
                        errors
                            .iter()
                            .map(|e| Line::styled(format!("  {e}"), t.danger())),
                    );
                    lines.push(Line::raw(format!(
                        "The journal is kept: fix the cause, then: {}",
                        apply::rollback_command(&m.options, run)
                    )));
                }
            }
            if let Some(r) = report {
                lines.push(Line::raw(""));
                lines.extend(render::verify(r).lines().map(|l| diff_line(l, t)));
            }
        }
    }
    f.render_widget(
        Paragraph::new(lines)
            .block(boxed("Result"))
            .wrap(Wrap { trim: false }),
        result,
    );
}

fn history(m: &Model, f: &mut Frame, area: Rect, t: Theme) {
    let [list_area, detail] =
        Layout::vertical([Constraint::Min(4), Constraint::Length(6)]).areas(area);
    if m.runs.is_empty() {
        f.render_widget(
            Paragraph::new("No runs recorded yet.").block(boxed("History")),
            list_area,
        );
        return;
    }
    let items: Vec<ListItem> = m
        .runs
        .iter()
        .map(|r| {
            let style = if r.rolled_back { t.dim() } else { Style::new() };
            ListItem::new(Line::styled(
                format!("{} {:<8} {}", r.id, r.method, r.status),
                style,
            ))
        })
        .collect();
    let list = List::new(items)
        .block(boxed("History"))
        .highlight_style(t.selected());
    let mut state = ListState::default().with_selected(Some(m.run_cursor));
    f.render_stateful_widget(list, list_area, &mut state);
    if let Some(r) = m.runs.get(m.run_cursor) {
        let mut lines = vec![Line::raw(format!("Started {}; Enter rolls back:", r.time))];
        if r.undo.is_empty() {
            lines.push(Line::styled("  nothing left to undo", t.dim()));
        }
        lines.extend(
            r.undo
                .iter()
                .map(|(_, u)| Line::raw(format!("  - {}", render::clean(u)))),
        );
        f.render_widget(
            Paragraph::new(lines)
                .block(boxed("Rollback"))
                .wrap(Wrap { trim: false }),
            detail,
        );
    }
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

fn confirm(c: &Confirm, f: &mut Frame, area: Rect, t: Theme) {
    let mut lines: Vec<Line> = Vec::new();
    let title = match c {
        Confirm::Apply(plan) => {
            let n = plan.pending().count();
            lines.push(Line::raw(format!(
                "Apply {n} change(s) with {} on {}?",
                plan.method, plan.hostname
            )));
            lines.push(Line::raw(
                "Each step is journaled; a failure rolls everything back.",
            ));
            "Confirm apply"
        }
        Confirm::Rollback(run) => {
            lines.push(Line::raw(format!(
                "Roll back run {} ({})?",
                run.id, run.method
            )));
            lines.extend(
                run.undo
                    .iter()
                    .map(|(_, u)| Line::raw(format!("  - {}", render::clean(u)))),
            );
            "Confirm rollback"
        }
        Confirm::QuitRunning => {
            lines.push(Line::styled("A run is in progress.", t.danger()));
            lines.push(Line::raw("Quit now? It is stopped and rolled back first."));
            "Quit?"
        }
    };
    lines.push(Line::raw(""));
    lines.push(Line::styled("y: yes    n or Esc: no", t.accent()));
    let rect = centered(
        area,
        area.width.saturating_sub(8).min(70),
        lines.len() as u16 + 4,
    );
    f.render_widget(Clear, rect);
    f.render_widget(
        Paragraph::new(lines)
            .block(boxed(title).border_style(t.warn()))
            .wrap(Wrap { trim: false }),
        rect,
    );
}

fn help(f: &mut Frame, area: Rect, t: Theme) {
    let lines = vec![
        Line::styled("Keys", t.accent()),
        Line::raw("↑↓ or j/k   move or scroll"),
        Line::raw("Enter       select or continue"),
        Line::raw("Esc         go back"),
        Line::raw("Tab         switch pane / field"),
        Line::raw("h           history (roll back earlier runs)"),
        Line::raw("o           plan for another host (Host screen)"),
        Line::raw("?           this help"),
        Line::raw("q, Ctrl-C   quit (asks first while a run is in progress)"),
        Line::raw("Nothing changes on the host before you confirm an apply."),
    ];
    let rect = centered(area, 64, lines.len() as u16 + 2);
    f.render_widget(Clear, rect);
    f.render_widget(Paragraph::new(lines).block(boxed("Help")), rect);
}
