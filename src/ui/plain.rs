//! Plain mode: the same flow as the wizard as line prompts, for terminals where a full screen
//! does not fit (`--plain`, `TERM=dumb`, output or input not a terminal). On a terminal the
//! prompts are dialoguer's; with piped input they read one line each, so scripts can drive them.

use std::io::{BufRead, IsTerminal, Write};

use dialoguer::{Input, Select};

use super::app::Start;
use super::form::{self, FieldId};
use crate::console::{self, How};
use crate::error::{Error, Exit, Result};
use crate::methods::{self, Request, Want};
use crate::render;
use crate::runner::{self, Context};

enum Prompter {
    Terminal,
    Lines,
}

fn eof() -> Error {
    Error::Declined("input ended before every question was answered; nothing was changed".into())
}

impl Prompter {
    fn new() -> Prompter {
        if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
            Prompter::Terminal
        } else {
            Prompter::Lines
        }
    }

    fn line(prompt: &str) -> Result<String> {
        err!("{prompt}");
        let _ = std::io::stderr().flush();
        let mut s = String::new();
        if std::io::stdin().lock().read_line(&mut s)? == 0 {
            return Err(eof());
        }
        Ok(s.trim().to_string())
    }

    /// Picks one of `items`; piped, the answer is its number or its name in `names`.
    fn select(
        &self,
        prompt: &str,
        items: &[String],
        names: &[&str],
        default: usize,
    ) -> Result<usize> {
        match self {
            Prompter::Terminal => Select::new()
                .with_prompt(prompt)
                .items(items)
                .default(default)
                .interact()
                .map_err(|e| Error::Declined(format!("no choice made ({e}); nothing was changed"))),
            Prompter::Lines => loop {
                for (i, item) in items.iter().enumerate() {
                    errln!("  {}) {item}", i + 1);
                }
                let answer = Self::line(&format!(
                    "{prompt} [1-{} or a name, default {}]: ",
                    items.len(),
                    default + 1
                ))?;
                if answer.is_empty() {
                    return Ok(default);
                }
                if let Some(i) = names.iter().position(|n| *n == answer) {
                    return Ok(i);
                }
                match answer.parse::<usize>() {
                    Ok(n) if (1..=items.len()).contains(&n) => return Ok(n - 1),
                    _ => errln!(
                        "'{answer}' is not one of 1 to {} nor one of: {}",
                        items.len(),
                        names.join(", ")
                    ),
                }
            },
        }
    }

    /// Asks for a value; `check` validates it, and an empty answer keeps `default`.
    fn input(
        &self,
        prompt: &str,
        default: &str,
        check: impl Fn(&str) -> Result<(), String>,
    ) -> Result<String> {
        match self {
            Prompter::Terminal => Input::<String>::new()
                .with_prompt(prompt)
                .default(default.to_string())
                .allow_empty(true)
                .validate_with(|v: &String| check(v))
                .interact_text()
                .map_err(|e| Error::Declined(format!("no answer ({e}); nothing was changed"))),
            Prompter::Lines => loop {
                let answer = Self::line(&format!("{prompt} [{default}]: "))?;
                let answer = if answer.is_empty() {
                    default.to_string()
                } else {
                    answer
                };
                match check(&answer) {
                    Ok(()) => return Ok(answer),
                    Err(e) => errln!("{}", render::clean(&e)),
                }
            },
        }
    }
}

pub fn run(ctx: &Context, start: Start, how: How) -> Result<Exit> {
    if how.yes && start.method.is_none() {
        return Err(Error::Invalid(
            "--yes needs --method: nothing may be asked".into(),
        ));
    }
    let ask = Prompter::new();
    let mut want = Want {
        binary: start.binary.clone(),
        ports: start.ports.clone(),
        user: start.user.clone(),
        group: start.group.clone(),
        interface: start.interface.clone(),
        service: start.service.clone(),
    };
    // Another host (`--facts`, `--target-os`) is planned from its document: never applied here.
    let other = runner::other_host(&start.other)?;
    let facts = match &other {
        Some(f) => f.clone(),
        None => runner::gather(ctx, &want, None, true)?,
    };
    out!("{}", render::facts(&facts));
    for n in &start.notes {
        outln!("{}", render::clean(n));
    }
    let method = match start.method {
        Some(m) => m,
        None => {
            let list = methods::assess(&facts, &want);
            outln!();
            out!("{}", render::methods(&list));
            let default = methods::recommended(&list).unwrap_or(0);
            let items: Vec<String> = list
                .iter()
                .enumerate()
                .map(|(i, a)| {
                    let state = if !a.available {
                        "  (unavailable here)"
                    } else if i == default {
                        "  (recommended here)"
                    } else {
                        ""
                    };
                    format!("[{}] {} - {}{state}", a.risk, a.id, a.doc.title)
                })
                .collect();
            loop {
                let ids: Vec<&str> = list.iter().map(|a| a.id.as_str()).collect();
                let chosen = &list[ask.select("Approach", &items, &ids, default)?];
                if chosen.available {
                    break chosen.id;
                }
                errln!(
                    "{} is unavailable here: {}",
                    chosen.id,
                    render::clean(&chosen.check.blockers.join("; "))
                );
            }
        }
    };
    if !how.yes {
        // The settings the chosen method reads, asked in the wizard's order with its rules.
        let mut answers: Vec<(FieldId, String)> = Vec::new();
        for id in FieldId::ALL.into_iter().filter(|id| id.used_by(method)) {
            let prompt = format!("{} ({})", id.label(), id.hint());
            let answer = ask.input(&prompt, &id.initial(&want), |v| id.check(v))?;
            answers.push((id, answer));
        }
        want = form::want(method, |id| {
            answers
                .iter()
                .find(|(f, _)| *f == id)
                .map_or("", |(_, v)| v.as_str())
        })
        .map_err(Error::Invalid)?;
    }
    let req = Request::new(method, want);
    if let Some(f) = other {
        let plan = runner::plan_from_facts(&f, &req)?;
        out!("{}", render::plan(&plan));
        outln!(
            "This plan is for another host: review it here, then carry it out there with \
             `lowport export --format {} …` (the same options) or save it with `lowport plan \
             … --out FILE`.",
            if plan.family == "windows" {
                "powershell"
            } else {
                "sh"
            }
        );
        return Ok(if plan.nothing_to_do() {
            Exit::NothingToDo
        } else {
            Exit::Success
        });
    }
    let (facts, plan) = runner::plan(ctx, &req)?;
    console::carry_out(ctx, &plan, Some(facts), how)
}
