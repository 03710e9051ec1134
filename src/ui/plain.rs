//! Plain mode: the same flow as the wizard as line prompts, for terminals where a full screen
//! does not fit (`--plain`, `TERM=dumb`, output or input not a terminal). On a terminal the
//! prompts are dialoguer's; with piped input they read one line each, so scripts can drive them.

use std::io::{BufRead, IsTerminal, Write};

use dialoguer::{Input, Select};

use super::app::Start;
use crate::console::{self, How};
use crate::error::{Error, Exit, Result};
use crate::methods::{self, Request, Want};
use crate::render;
use crate::runner::{self, Context};
use crate::validate;

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
        eprint!("{prompt}");
        let _ = std::io::stderr().flush();
        let mut s = String::new();
        if std::io::stdin().lock().read_line(&mut s)? == 0 {
            return Err(eof());
        }
        Ok(s.trim().to_string())
    }

    fn select(&self, prompt: &str, items: &[String], default: usize) -> Result<usize> {
        match self {
            Prompter::Terminal => Select::new()
                .with_prompt(prompt)
                .items(items)
                .default(default)
                .interact()
                .map_err(|e| Error::Declined(format!("no choice made ({e}); nothing was changed"))),
            Prompter::Lines => loop {
                for (i, item) in items.iter().enumerate() {
                    eprintln!("  {}) {item}", i + 1);
                }
                let answer = Self::line(&format!(
                    "{prompt} [1-{}, default {}]: ",
                    items.len(),
                    default + 1
                ))?;
                if answer.is_empty() {
                    return Ok(default);
                }
                match answer.parse::<usize>() {
                    Ok(n) if (1..=items.len()).contains(&n) => return Ok(n - 1),
                    _ => eprintln!("'{answer}' is not one of 1 to {}", items.len()),
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
                    Err(e) => eprintln!("{}", render::clean(&e)),
                }
            },
        }
    }
}

fn optional(check: fn(&str) -> Result<String, String>) -> impl Fn(&str) -> Result<(), String> {
    move |v: &str| {
        if v.trim().is_empty() {
            Ok(())
        } else {
            check(v.trim()).map(|_| ())
        }
    }
}

fn some(v: String) -> Option<String> {
    Some(v).filter(|s| !s.is_empty())
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
        service: start.service.clone(),
    };
    let facts = runner::gather(ctx, &want, None, true)?;
    print!("{}", render::facts(&facts));
    for n in &start.notes {
        println!("{}", render::clean(n));
    }
    let method = match start.method {
        Some(m) => m,
        None => {
            let list = methods::assess(&facts, &want);
            println!();
            print!("{}", render::methods(&list));
            let items: Vec<String> = list
                .iter()
                .map(|a| {
                    let state = if a.available {
                        ""
                    } else {
                        "  (unavailable here)"
                    };
                    format!("[{}] {} - {}{state}", a.risk, a.id, a.doc.title)
                })
                .collect();
            let default = list.iter().position(|a| a.available).unwrap_or(0);
            loop {
                let chosen = &list[ask.select("Approach", &items, default)?];
                if chosen.available {
                    break chosen.id;
                }
                eprintln!(
                    "{} is unavailable here: {}",
                    chosen.id,
                    render::clean(&chosen.check.blockers.join("; "))
                );
            }
        }
    };
    if !how.yes {
        let binary = want.binary.clone().unwrap_or_default();
        want.binary = some(ask.input(
            "Binary (path or command name, empty for none)",
            &binary,
            optional(validate::binary),
        )?);
        let ports: Vec<String> = want.ports.iter().map(ToString::to_string).collect();
        let ports = ask.input("Ports (e.g. 80 443)", &ports.join(" "), |v| {
            validate::port_list(v).map(|_| ())
        })?;
        want.ports = validate::port_list(&ports).map_err(Error::Invalid)?;
        let user = want.user.clone().unwrap_or_default();
        want.user = some(ask.input("User (optional)", &user, optional(validate::account_name))?);
        let group = want.group.clone().unwrap_or_default();
        want.group =
            some(ask.input("Group (optional)", &group, optional(validate::account_name))?);
    }
    let (facts, plan) = runner::plan(ctx, &Request::new(method, want))?;
    console::carry_out(ctx, &plan, Some(facts), how)
}
