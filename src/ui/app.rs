//! The wizard's state machine, in The Elm Architecture: a [`Model`], the [`Msg`]s that change it,
//! and a pure [`update`] that returns the side effects ([`Cmd`]) the runtime must perform. No
//! business rule lives here: availability, plans, apply and rollback all come from the engine;
//! dangerous actions are values (a confirmation holds the plan; only `y` turns it into a `Cmd`).

use std::cell::Cell;
use std::path::PathBuf;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::apply::{Event, Outcome};
use crate::cli::OtherHost;
use crate::error::Exit;
use crate::facts::Facts;
use crate::methods::{Assessment, MethodId, Request, Risk, Want};
use crate::plan::Plan;
use crate::validate;
use crate::verify::Report;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Host,
    Approaches,
    Settings,
    Preview,
    Review,
    Apply,
    History,
}

impl Screen {
    pub const FLOW: [Screen; 6] = [
        Screen::Host,
        Screen::Approaches,
        Screen::Settings,
        Screen::Preview,
        Screen::Review,
        Screen::Apply,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Screen::Host => "Host",
            Screen::Approaches => "Approaches",
            Screen::Settings => "Settings",
            Screen::Preview => "Preview",
            Screen::Review => "Review",
            Screen::Apply => "Apply",
            Screen::History => "History",
        }
    }
}

pub use super::form::FieldId;

/// One setting of the form, validated as it is typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub id: FieldId,
    pub value: String,
    pub error: Option<String>,
}

impl Field {
    pub fn label(&self) -> &'static str {
        self.id.label()
    }

    /// What is shown under a valid value: the hint, or for a service name the unit it means
    /// (a typed `fabio.service` is the unit `fabio.service`, never `fabio.service.service`).
    pub fn note(&self) -> String {
        match (self.id, validate::service_name(self.value.trim())) {
            (FieldId::Service, Ok(name)) => format!("the unit {name}.service"),
            _ => self.id.hint().to_string(),
        }
    }

    fn validate(&mut self) {
        self.error = self.id.check(&self.value).err();
    }

    /// A switch's state, shown and toggled as such.
    pub fn on(&self) -> bool {
        validate::yes_no(&self.value).unwrap_or(false)
    }
}

/// One row of the live step list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepState {
    Pending,
    Running,
    Done,
    Skipped,
    Failed,
    Undone,
    UndoFailed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub title: String,
    /// A rollback of an earlier run, not an apply.
    pub rollback: bool,
    /// (plan step number, what it does, where it is).
    pub steps: Vec<(usize, String, StepState)>,
    pub log: Vec<String>,
    pub run: Option<String>,
    pub finished: Option<Result<(Outcome, Option<Report>), String>>,
}

impl Progress {
    pub fn running(&self) -> bool {
        self.finished.is_none()
    }

    fn set(&mut self, step: usize, state: StepState) {
        if let Some(s) = self.steps.iter_mut().find(|s| s.0 == step) {
            s.2 = state;
        }
    }
}

/// A past run as the History screen lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRow {
    pub id: String,
    pub time: String,
    pub method: String,
    pub status: String,
    pub rolled_back: bool,
    /// (step number, its undo) for each step still to undo, in the order rollback runs them.
    pub undo: Vec<(usize, String)>,
}

/// A pending decision shown as a popup: nothing happens until the operator says yes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirm {
    Apply(Box<Plan>),
    Rollback(RunRow),
    /// Quit while a run is in progress: it is interrupted and rolled back first.
    QuitRunning,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    Key(KeyEvent),
    Resize,
    Facts(Result<Box<Facts>, String>),
    /// New facts for the request, the methods assessed on them, and the plan (or why not).
    Planned {
        facts: Box<Facts>,
        methods: Vec<Assessment>,
        plan: Result<Box<Plan>, String>,
    },
    Methods(Vec<Assessment>),
    Progress(Event),
    /// An apply or rollback ended; `exit` is what the wizard exits with if it is the last.
    Finished {
        result: Result<(Outcome, Option<Report>), String>,
        exit: Exit,
    },
    History(Result<Vec<RunRow>, String>),
    Saved(Result<Saved, String>),
    Exported(Result<PathBuf, String>),
    /// SIGTERM/SIGHUP: leave as cleanly as from `q`.
    Terminate,
}

/// Side effects the runtime performs, reporting back with a `Msg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cmd {
    Gather {
        binary: Option<String>,
        ports: Vec<validate::PortArg>,
        other: OtherHost,
    },
    /// Plan the request, for this host or (when `OtherHost` names one) for another.
    Plan(Request, OtherHost),
    Apply(Box<Plan>),
    /// Write a plan for another host as the script that carries it out there.
    Export(Box<Plan>),
    Rollback(String),
    LoadHistory,
    SavePlan(Box<Plan>),
    Interrupt,
    Quit,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub screen: Screen,
    /// Where Esc from History returns to.
    pub back: Screen,
    pub facts: Option<Facts>,
    pub facts_error: Option<String>,
    pub methods: Vec<Assessment>,
    pub cursor: usize,
    /// `--method`: where the cursor starts once the methods are known.
    pub preselect: Option<MethodId>,
    pub detail_focus: bool,
    pub detail_scroll: u16,
    pub fields: Vec<Field>,
    pub field: usize,
    pub plan: Option<Plan>,
    pub plan_error: Option<String>,
    pub scroll: u16,
    /// The furthest the Host or Preview pane (`scroll`) and the Details pane (`detail_scroll`)
    /// scroll, as last drawn: the view knows the wrapped height, and `update` clamps to it so
    /// scrolling stops at the end. Unlimited until drawn.
    pub scroll_max: Cell<u16>,
    pub detail_max: Cell<u16>,
    pub ack: String,
    pub ack_error: Option<String>,
    pub confirm: Option<Confirm>,
    pub progress: Option<Progress>,
    pub runs: Vec<RunRow>,
    pub run_cursor: usize,
    pub help: bool,
    pub is_root: bool,
    /// lowport's absolute path, for the command that applies a saved plan.
    pub exe: PathBuf,
    /// See [`Start::options`].
    pub options: Vec<String>,
    pub notes: Vec<String>,
    /// The command line that applies the saved plan with sudo, once saved.
    pub saved: Option<Saved>,
    /// The script a plan for another host was exported to.
    pub exported: Option<PathBuf>,
    /// The host plans are made for: this one (the default), or another's facts.
    pub other: OtherHost,
    /// The hosts `o` offers, and the one the open picker points at.
    pub choices: Vec<OtherHost>,
    pub picker: Option<usize>,
    pub message: Option<String>,
    pub quitting: bool,
    pub quit: bool,
    /// The exit code of the last apply or rollback carried out.
    pub exit: Option<Exit>,
}

/// A plan the wizard saved: where, and the SHA-256 of the bytes written, which the command
/// that applies it carries (the file must still be those bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    pub path: PathBuf,
    pub sha256: String,
}

/// What the operator gave on the command line.
#[derive(Debug, Clone, Default)]
pub struct Start {
    pub method: Option<MethodId>,
    pub binary: Option<String>,
    pub ports: Vec<validate::PortArg>,
    pub user: Option<String>,
    pub group: Option<String>,
    pub interface: Option<String>,
    pub service: crate::methods::ServiceOptions,
    /// `--facts FILE` / `--target-os NAME`: plan for that host from the start.
    pub other: OtherHost,
    pub is_root: bool,
    /// lowport's absolute path (see [`Model::exe`]).
    pub exe: PathBuf,
    /// The global options (`--root`, `--state-dir`) the wizard was started with, which the
    /// commands it prints for later must carry.
    pub options: Vec<String>,
    /// What a profile read from the configuration (shown on the Host screen).
    pub notes: Vec<String>,
}

impl Start {
    fn want(&self) -> Want {
        Want {
            binary: self.binary.clone(),
            ports: self.ports.clone(),
            user: self.user.clone(),
            group: self.group.clone(),
            interface: self.interface.clone(),
            service: self.service.clone(),
        }
    }
}

impl Model {
    pub fn new(start: &Start) -> (Model, Vec<Cmd>) {
        let want = start.want();
        let mut fields: Vec<Field> = FieldId::ALL
            .iter()
            .map(|id| Field {
                id: *id,
                value: id.initial(&want),
                error: None,
            })
            .collect();
        fields.iter_mut().for_each(Field::validate);
        let model = Model {
            screen: Screen::Host,
            back: Screen::Host,
            facts: None,
            facts_error: None,
            methods: Vec::new(),
            cursor: 0,
            preselect: start.method,
            detail_focus: false,
            detail_scroll: 0,
            fields,
            field: 0,
            plan: None,
            plan_error: None,
            scroll: 0,
            scroll_max: Cell::new(u16::MAX),
            detail_max: Cell::new(u16::MAX),
            ack: String::new(),
            ack_error: None,
            confirm: None,
            progress: None,
            runs: Vec::new(),
            run_cursor: 0,
            help: false,
            is_root: start.is_root,
            exe: start.exe.clone(),
            options: start.options.clone(),
            notes: start.notes.clone(),
            saved: None,
            exported: None,
            other: start.other.clone(),
            choices: host_choices(&start.other),
            picker: None,
            message: None,
            quitting: false,
            quit: false,
            exit: None,
        };
        let cmd = Cmd::Gather {
            binary: start.binary.clone(),
            ports: start.ports.clone(),
            other: start.other.clone(),
        };
        (model, vec![cmd])
    }

    pub fn value(&self, id: FieldId) -> &str {
        self.fields
            .iter()
            .find(|f| f.id == id)
            .map_or("", |f| f.value.trim())
    }

    fn opt(&self, id: FieldId) -> Option<String> {
        Some(self.value(id).to_string()).filter(|v| !v.is_empty())
    }

    pub fn selected(&self) -> Option<&Assessment> {
        self.methods.get(self.cursor)
    }

    /// The method lowport recommends: the first available one in catalog order.
    pub fn recommended(&self) -> Option<usize> {
        crate::methods::recommended(&self.methods)
    }

    fn request(&self) -> Option<Request> {
        let method = self.selected()?.id;
        let want = super::form::want(method, |id| self.value(id)).ok()?;
        Some(Request::new(method, want))
    }

    /// The form's fields the chosen method reads: the only ones shown and asked.
    pub fn used(&self) -> Vec<usize> {
        let method = self.selected().map(|a| a.id);
        (0..self.fields.len())
            .filter(|i| method.is_some_and(|m| self.fields[*i].id.used_by(m)))
            .collect()
    }

    fn running(&self) -> bool {
        self.progress.as_ref().is_some_and(Progress::running)
    }

    fn set_methods(&mut self, methods: Vec<Assessment>) {
        let keep = self.selected().map(|m| m.id).or(self.preselect);
        self.methods = methods;
        self.cursor = keep
            .and_then(|id| self.methods.iter().position(|m| m.id == id))
            .or_else(|| self.recommended())
            .unwrap_or(0);
    }

    /// Screens the footer shows keys for, and the keys.
    pub fn keys(&self) -> Vec<(&'static str, &'static str)> {
        if self.confirm.is_some() {
            return vec![("y", "yes"), ("n/Esc", "no")];
        }
        if self.help {
            return vec![("?/Esc", "close help")];
        }
        if self.picker.is_some() {
            return vec![("↑↓", "move"), ("Enter", "plan for it"), ("Esc", "close")];
        }
        let mut k = match self.screen {
            Screen::Host => vec![
                ("↑↓", "scroll"),
                ("Enter", "approaches"),
                ("o", "hosts"),
                ("h", "history"),
            ],
            Screen::Approaches => {
                vec![
                    ("↑↓/jk", "move"),
                    ("Tab", "pane"),
                    ("Enter", "choose"),
                    ("Esc", "back"),
                    ("h", "history"),
                ]
            }
            Screen::Settings => vec![
                ("↑↓/Tab", "field"),
                if self
                    .fields
                    .get(self.field)
                    .is_some_and(|f| f.id.is_switch())
                {
                    ("Space", "toggle")
                } else {
                    ("type", "edit")
                },
                ("Enter", "preview"),
                ("Esc", "back"),
            ],
            Screen::Preview if self.plan.as_ref().is_some_and(|p| p.from_facts) => vec![
                ("↑↓/PgUp/PgDn", "scroll"),
                ("Enter", "export script"),
                ("s", "save plan"),
                ("Esc", "back"),
            ],
            Screen::Preview if !self.is_root => {
                vec![
                    ("↑↓/PgUp/PgDn", "scroll"),
                    ("s", "save plan"),
                    ("Esc", "back"),
                ]
            }
            Screen::Preview => vec![
                ("↑↓/PgUp/PgDn", "scroll"),
                ("Enter", "continue"),
                ("Esc", "back"),
            ],
            Screen::Review => vec![
                ("type", "acknowledge"),
                ("Enter", "continue"),
                ("Esc", "back"),
            ],
            Screen::Apply if self.running() => vec![("q", "stop and roll back")],
            Screen::Apply => vec![("h", "history"), ("Esc", "start over")],
            Screen::History => vec![
                ("↑↓/jk", "move"),
                ("Enter", "roll back"),
                ("r", "reload"),
                ("Esc", "back"),
            ],
        };
        if !matches!(self.screen, Screen::Settings | Screen::Review) {
            k.push(("?", "help"));
            // While a run is in progress `q` stops it (listed above): one key, one meaning.
            if !self.running() {
                k.push(("q", "quit"));
            }
        }
        k
    }
}

/// The hosts the wizard can plan for: this one, the facts document given on the command line
/// (if any), and a stock install of each OS lowport plans for.
fn host_choices(start: &OtherHost) -> Vec<OtherHost> {
    let mut v = vec![OtherHost::default()];
    if start.facts.is_some() {
        v.push(OtherHost {
            facts: start.facts.clone(),
            target_os: None,
        });
    }
    v.extend(
        crate::facts::targets::TARGETS
            .iter()
            .map(|(name, _)| OtherHost {
                facts: None,
                target_os: Some(name.to_string()),
            }),
    );
    v
}

/// How the picker and the Host screen name a host choice.
pub fn host_label(o: &OtherHost) -> String {
    match (&o.facts, &o.target_os) {
        (Some(f), _) => format!("the host of facts document {}", f.display()),
        (None, Some(os)) => format!("a stock {os} install"),
        (None, None) => "this host".to_string(),
    }
}

impl Model {
    /// Plans are made for another host (its facts), to be saved or exported, never applied here.
    pub fn for_other_host(&self) -> bool {
        self.other != OtherHost::default()
    }

    fn gather(&self) -> Cmd {
        Cmd::Gather {
            binary: self.opt(FieldId::Binary),
            ports: validate::port_list(self.value(FieldId::Ports)).unwrap_or_default(),
            other: self.other.clone(),
        }
    }
}

/// Scrolls by a line or a page, never past `max` (the end, as last drawn).
fn scroll(value: &mut u16, key: KeyCode, page: u16, max: u16) {
    *value = match key {
        KeyCode::Up | KeyCode::Char('k') => value.saturating_sub(1),
        KeyCode::Down | KeyCode::Char('j') => value.saturating_add(1),
        KeyCode::PageUp => value.saturating_sub(page),
        KeyCode::PageDown | KeyCode::Char(' ') => value.saturating_add(page),
        KeyCode::Home => 0,
        KeyCode::End => max,
        _ => *value,
    }
    .min(max);
}

fn step_of(e: &Event) -> Option<(usize, StepState)> {
    Some(match e {
        Event::Running { step, .. } => (*step, StepState::Running),
        Event::Skipped { step, .. } => (*step, StepState::Skipped),
        Event::Done { step } => (*step, StepState::Done),
        Event::Failed { step, .. } => (*step, StepState::Failed),
        Event::Undone { step, .. } => (*step, StepState::Undone),
        Event::UndoFailed { step, .. } => (*step, StepState::UndoFailed),
        _ => return None,
    })
}

/// Applies one message. Returns the effects to run; never performs any itself.
pub fn update(m: &mut Model, msg: Msg) -> Vec<Cmd> {
    match msg {
        Msg::Key(key) => on_key(m, key),
        Msg::Resize => Vec::new(),
        Msg::Facts(Ok(f)) => {
            m.facts = Some(*f);
            m.facts_error = None;
            Vec::new()
        }
        Msg::Facts(Err(e)) => {
            // Asked for from Settings, the failure is about what was typed there.
            if m.screen == Screen::Settings {
                m.plan_error = Some(e.clone());
            }
            m.facts_error = Some(e);
            Vec::new()
        }
        Msg::Methods(list) => {
            m.set_methods(list);
            Vec::new()
        }
        Msg::Planned {
            facts,
            methods,
            plan,
        } => {
            m.facts = Some(*facts);
            m.facts_error = None;
            m.set_methods(methods);
            match plan {
                Ok(p) => {
                    m.plan = Some(*p);
                    m.plan_error = None;
                    m.scroll = 0;
                    m.screen = Screen::Preview;
                }
                Err(e) => m.plan_error = Some(e),
            }
            Vec::new()
        }
        Msg::Progress(e) => {
            if let Some(p) = &mut m.progress {
                if let Event::Started { run } = &e {
                    p.run = Some(run.clone());
                }
                if let Some((step, state)) = step_of(&e) {
                    p.set(step, state);
                }
                p.log.push(crate::render::event(&e));
            }
            Vec::new()
        }
        Msg::Finished { result, exit } => {
            m.exit = Some(exit);
            if let Some(p) = &mut m.progress {
                if let Ok((
                    Outcome::RolledBack { run, .. } | Outcome::RollbackIncomplete { run, .. },
                    _,
                )) = &result
                {
                    p.run = Some(run.clone());
                }
                p.finished = Some(result);
            }
            if m.quitting {
                m.quit = true;
                return vec![Cmd::Quit];
            }
            vec![Cmd::LoadHistory]
        }
        Msg::History(Ok(runs)) => {
            m.runs = runs;
            m.run_cursor = m.run_cursor.min(m.runs.len().saturating_sub(1));
            Vec::new()
        }
        Msg::History(Err(e)) => {
            m.message = Some(e);
            Vec::new()
        }
        Msg::Saved(result) => {
            match result {
                Ok(saved) => m.saved = Some(saved),
                Err(e) => m.message = Some(e),
            }
            Vec::new()
        }
        Msg::Exported(result) => {
            match result {
                Ok(path) => m.exported = Some(path),
                Err(e) => m.message = Some(e),
            }
            Vec::new()
        }
        Msg::Terminate => request_quit(m),
    }
}

fn request_quit(m: &mut Model) -> Vec<Cmd> {
    if m.running() {
        m.confirm = Some(Confirm::QuitRunning);
        Vec::new()
    } else {
        m.quit = true;
        vec![Cmd::Quit]
    }
}

fn on_key(m: &mut Model, key: KeyEvent) -> Vec<Cmd> {
    let ctrl_c = key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c');
    if let Some(c) = m.confirm.clone() {
        return on_confirm(m, c, key.code);
    }
    if let Some(at) = m.picker {
        return on_picker(m, at, key.code);
    }
    if ctrl_c {
        return request_quit(m);
    }
    if m.help {
        if matches!(key.code, KeyCode::Char('?') | KeyCode::Esc | KeyCode::Enter) {
            m.help = false;
        }
        return Vec::new();
    }
    m.message = None;
    let typing = matches!(m.screen, Screen::Settings | Screen::Review);
    if !typing {
        match key.code {
            KeyCode::Char('q') => return request_quit(m),
            KeyCode::Char('?') => {
                m.help = true;
                return Vec::new();
            }
            KeyCode::Char('h') if m.screen != Screen::History && !m.running() => {
                m.back = m.screen;
                m.screen = Screen::History;
                return vec![Cmd::LoadHistory];
            }
            _ => {}
        }
    }
    match m.screen {
        Screen::Host => {
            match key.code {
                KeyCode::Enter if m.facts.is_some() => m.screen = Screen::Approaches,
                KeyCode::Char('o') => {
                    m.picker = Some(m.choices.iter().position(|c| *c == m.other).unwrap_or(0));
                }
                k => scroll(&mut m.scroll, k, 10, m.scroll_max.get()),
            }
            Vec::new()
        }
        Screen::Approaches => on_approaches(m, key.code),
        Screen::Settings => on_settings(m, key.code),
        Screen::Preview => on_preview(m, key.code),
        Screen::Review => on_review(m, key.code),
        Screen::Apply => match key.code {
            KeyCode::Esc if !m.running() => {
                m.progress = None;
                m.plan = None;
                m.screen = Screen::Approaches;
                vec![m.gather()]
            }
            _ => Vec::new(),
        },
        Screen::History => on_history(m, key.code),
    }
}

fn on_confirm(m: &mut Model, c: Confirm, key: KeyCode) -> Vec<Cmd> {
    match key {
        KeyCode::Char('y') | KeyCode::Char('Y') => {
            m.confirm = None;
            match c {
                Confirm::Apply(plan) => {
                    m.progress = Some(Progress {
                        title: format!("Applying {}", plan.method),
                        rollback: false,
                        steps: plan
                            .steps
                            .iter()
                            .enumerate()
                            .map(|(i, s)| (i + 1, s.summary.clone(), StepState::Pending))
                            .collect(),
                        log: Vec::new(),
                        run: None,
                        finished: None,
                    });
                    m.screen = Screen::Apply;
                    vec![Cmd::Apply(plan)]
                }
                Confirm::Rollback(run) => {
                    m.progress = Some(Progress {
                        title: format!("Rolling back run {}", run.id),
                        rollback: true,
                        steps: run
                            .undo
                            .iter()
                            .map(|(n, u)| (*n, u.clone(), StepState::Pending))
                            .collect(),
                        log: Vec::new(),
                        run: Some(run.id.clone()),
                        finished: None,
                    });
                    m.back = Screen::History;
                    m.screen = Screen::Apply;
                    vec![Cmd::Rollback(run.id)]
                }
                Confirm::QuitRunning => {
                    m.quitting = true;
                    vec![Cmd::Interrupt]
                }
            }
        }
        KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => {
            m.confirm = None;
            Vec::new()
        }
        _ => Vec::new(),
    }
}

/// The host picker (`o` on the Host screen): choosing a host detects (or loads) it anew.
fn on_picker(m: &mut Model, at: usize, key: KeyCode) -> Vec<Cmd> {
    let last = m.choices.len().saturating_sub(1);
    match key {
        KeyCode::Esc => m.picker = None,
        KeyCode::Up | KeyCode::Char('k') => m.picker = Some(at.saturating_sub(1)),
        KeyCode::Down | KeyCode::Char('j') => m.picker = Some((at + 1).min(last)),
        KeyCode::Enter => {
            m.picker = None;
            m.other = m.choices[at.min(last)].clone();
            m.facts = None;
            m.facts_error = None;
            m.methods.clear();
            m.plan = None;
            m.saved = None;
            m.exported = None;
            m.scroll = 0;
            return vec![m.gather()];
        }
        _ => {}
    }
    Vec::new()
}

fn on_approaches(m: &mut Model, key: KeyCode) -> Vec<Cmd> {
    match key {
        KeyCode::Tab | KeyCode::BackTab => m.detail_focus = !m.detail_focus,
        KeyCode::Esc => m.screen = Screen::Host,
        KeyCode::Enter => match m.selected() {
            Some(a) if a.available => {
                m.screen = Screen::Settings;
                let used = m.used();
                m.field = used
                    .iter()
                    .copied()
                    .find(|i| m.fields[*i].value.is_empty())
                    .or(used.first().copied())
                    .unwrap_or(0);
            }
            Some(a) => {
                m.message = Some(format!(
                    "{} is unavailable here: {}",
                    a.id,
                    a.check.blockers.join("; ")
                ));
            }
            None => {}
        },
        k if m.detail_focus => scroll(&mut m.detail_scroll, k, 10, m.detail_max.get()),
        KeyCode::Up | KeyCode::Char('k') => {
            m.cursor = m.cursor.saturating_sub(1);
            m.detail_scroll = 0;
        }
        KeyCode::Down | KeyCode::Char('j') => {
            m.cursor = (m.cursor + 1).min(m.methods.len().saturating_sub(1));
            m.detail_scroll = 0;
        }
        KeyCode::Home => m.cursor = 0,
        KeyCode::End => m.cursor = m.methods.len().saturating_sub(1),
        _ => {}
    }
    Vec::new()
}

fn on_settings(m: &mut Model, key: KeyCode) -> Vec<Cmd> {
    // Only the fields the chosen method reads are visited.
    let used = m.used();
    let at = used.iter().position(|i| *i == m.field).unwrap_or(0);
    let n = used.len().max(1);
    let switch = m.fields.get(m.field).is_some_and(|f| f.id.is_switch());
    match key {
        KeyCode::Esc => m.screen = Screen::Approaches,
        KeyCode::Up | KeyCode::BackTab => {
            m.field = used.get((at + n - 1) % n).copied().unwrap_or(0)
        }
        KeyCode::Down | KeyCode::Tab => m.field = used.get((at + 1) % n).copied().unwrap_or(0),
        KeyCode::Char(c) if switch => {
            let f = &mut m.fields[m.field];
            let on = match c {
                ' ' => !f.on(),
                'y' | 'Y' => true,
                'n' | 'N' => false,
                _ => return Vec::new(),
            };
            f.value = if on { "yes" } else { "no" }.into();
            f.validate();
        }
        KeyCode::Backspace if !switch => {
            let f = &mut m.fields[m.field];
            f.value.pop();
            f.validate();
        }
        KeyCode::Char(c) => {
            let f = &mut m.fields[m.field];
            f.value.push(c);
            f.validate();
        }
        KeyCode::Enter => {
            if let Some(f) = used
                .iter()
                .map(|i| &m.fields[*i])
                .find(|f| f.error.is_some())
            {
                m.message = Some(format!("fix {} first", f.label()));
                return Vec::new();
            }
            if let Some(req) = m.request() {
                m.plan_error = None;
                return vec![Cmd::Plan(req, m.other.clone())];
            }
        }
        _ => {}
    }
    Vec::new()
}

fn on_preview(m: &mut Model, key: KeyCode) -> Vec<Cmd> {
    let Some(plan) = m.plan.clone() else {
        return Vec::new();
    };
    match key {
        KeyCode::Esc => m.screen = Screen::Settings,
        KeyCode::Char('s') if !m.is_root || plan.from_facts => {
            return vec![Cmd::SavePlan(Box::new(plan))];
        }
        // A plan for another host is exported as the script to run there; a high-risk one
        // gets the same guided review first.
        KeyCode::Enter if plan.from_facts && plan.risk == Risk::High => {
            m.ack.clear();
            m.ack_error = None;
            m.screen = Screen::Review;
        }
        KeyCode::Enter if plan.from_facts => return vec![Cmd::Export(Box::new(plan))],
        KeyCode::Enter if plan.nothing_to_do() => {
            m.message = Some("Nothing to do: everything is already in place.".into());
        }
        KeyCode::Enter if !m.is_root => {
            m.message = Some(
                "Applying needs root: press s to save the plan, then run the command shown.".into(),
            );
        }
        KeyCode::Enter if plan.risk == Risk::High => {
            m.ack.clear();
            m.ack_error = None;
            m.screen = Screen::Review;
        }
        KeyCode::Enter => m.confirm = Some(Confirm::Apply(Box::new(plan))),
        k => scroll(&mut m.scroll, k, 10, m.scroll_max.get()),
    }
    Vec::new()
}

fn on_review(m: &mut Model, key: KeyCode) -> Vec<Cmd> {
    let Some(plan) = m.plan.clone() else {
        return Vec::new();
    };
    match key {
        KeyCode::Esc => m.screen = Screen::Preview,
        KeyCode::Backspace => {
            m.ack.pop();
        }
        KeyCode::Char(c) => m.ack.push(c),
        KeyCode::Enter if m.ack.trim() == plan.method.as_str() && plan.from_facts => {
            m.screen = Screen::Preview;
            return vec![Cmd::Export(Box::new(plan))];
        }
        KeyCode::Enter if m.ack.trim() == plan.method.as_str() => {
            m.confirm = Some(Confirm::Apply(Box::new(plan)));
        }
        KeyCode::Enter => {
            m.ack_error = Some(format!("type exactly: {}", plan.method));
        }
        _ => {}
    }
    Vec::new()
}

fn on_history(m: &mut Model, key: KeyCode) -> Vec<Cmd> {
    match key {
        KeyCode::Esc => m.screen = m.back,
        KeyCode::Char('r') => return vec![Cmd::LoadHistory],
        KeyCode::Up | KeyCode::Char('k') => m.run_cursor = m.run_cursor.saturating_sub(1),
        KeyCode::Down | KeyCode::Char('j') => {
            m.run_cursor = (m.run_cursor + 1).min(m.runs.len().saturating_sub(1));
        }
        KeyCode::Enter => match m.runs.get(m.run_cursor) {
            Some(r) if r.rolled_back => {
                m.message = Some(format!("run {} is already rolled back", r.id))
            }
            Some(r) if !m.is_root => {
                let command = crate::apply::rollback_command(&m.options, &r.id);
                m.message = Some(format!("Rolling back needs root: run `sudo {command}`."))
            }
            Some(r) => m.confirm = Some(Confirm::Rollback(r.clone())),
            None => {}
        },
        _ => {}
    }
    Vec::new()
}
