//! The planner: turns a method's actions into a [`Plan`], reading the target's current state
//! only through the [`Host`] seam (the live host, or a facts document). It sits above both the
//! plan data and the methods, so neither needs the other.

use crate::error::{Error, Refusal, Result};
use crate::facts::{Facts, Host};
use crate::methods;
use crate::plan::{Action, FORMAT_VERSION, Plan, Request, State, Step, Target, action};

fn step(action: Action, facts: &Facts, host: &dyn Host) -> Result<Step> {
    let before = match action.observe_on(host) {
        Ok(state) => state,
        // Without root some targets cannot be read (useradd's /etc/shadow): planning still
        // works, the state is unknown (never in place), and `apply --plan` reads it as root.
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => State::Unknown,
        Err(e) => return Err(Error::io(action.target(), e)),
    };
    Ok(Step {
        in_place: action.satisfied(&before, host),
        summary: action.summary(&before, host),
        // Programs as the planned-for host has them (a facts document may describe another).
        commands: action.commands(host.root(), &|name| {
            facts
                .tool(name)
                .map_or_else(|| name.to_string(), |p| p.display().to_string())
        }),
        diff: action::diff(&action, host),
        exposure: action::exposure(&action, host),
        undo: action.undo(&before, host.root()),
        before,
        action,
    })
}

fn fingerprint(
    req: &Request,
    plan_root: &std::path::Path,
    hostname: &str,
    steps: &[Step],
    verify: &Target,
) -> String {
    let pairs: Vec<(&Action, &crate::plan::State)> =
        steps.iter().map(|s| (&s.action, &s.before)).collect();
    let doc = serde_json::json!({
        "method": req.method, "root": plan_root, "host": hostname, "steps": pairs,
        "verify": verify,
    });
    format!("sha256:{}", action::sha256(doc.to_string().as_bytes()))
}

impl Plan {
    /// Plans `req` against `facts`, reading current state through `host`. Missing input is
    /// `Invalid`; a method that cannot work on this host is refused with every reason.
    pub fn build(facts: &Facts, host: &dyn Host, req: &Request) -> Result<Plan> {
        // A saved plan's request comes here too: it passes the command line's checks.
        req.validate().map_err(Error::Invalid)?;
        let method = methods::find(req.method);
        let check = method.check(facts, req);
        if !check.input.is_empty() {
            return Err(Error::Invalid(format!(
                "method {} needs more input:\n  - {}",
                req.method,
                check.input.join("\n  - ")
            )));
        }
        if !check.blockers.is_empty() {
            return Err(Error::refused(
                Refusal::Unavailable,
                format!(
                    "method {} is unavailable on this host:\n  - {}\nRun `lowport methods` to \
                     see the alternatives.",
                    req.method,
                    check.blockers.join("\n  - ")
                ),
            ));
        }
        let mut steps = method
            .actions(facts, req)
            .into_iter()
            .map(|a| step(a, facts, host))
            .collect::<Result<Vec<_>>>()?;
        // Commands (reloads, restarts, rule loads) follow the state they act on: they are in
        // place only when every other step is, and their own check (if any) agrees.
        let is_command = |s: &Step| matches!(s.action, Action::RunCommands { .. });
        let rest_in_place = steps.iter().filter(|s| !is_command(s)).all(|s| s.in_place);
        for s in steps.iter_mut().filter(|s| is_command(s)) {
            s.in_place &= rest_in_place;
        }
        // chown clears file capabilities: a capability already on a file whose owner or mode
        // is about to change must be set again after it.
        let rechowned: Vec<std::path::PathBuf> = steps
            .iter()
            .filter_map(|s| match &s.action {
                Action::SetOwnerMode { path, .. } if !s.in_place => Some(path.clone()),
                _ => None,
            })
            .collect();
        for s in &mut steps {
            if let Action::SetFileCap { path, .. } = &s.action
                && rechowned.contains(path)
            {
                s.in_place = false;
            }
        }
        let verify = method.target(facts, req);
        let mut warnings = check.warnings;
        if let Some(os) = &facts.target_os {
            warnings.insert(
                0,
                format!(
                    "planned for a stock {os} install ({}), not for your host: its files are \
                     taken to be as that release ships them. Plan with --facts FILE (from \
                     `lowport facts-script` run there) for the exact changes.",
                    facts.os.pretty_name
                ),
            );
        }
        Ok(Plan {
            format_version: FORMAT_VERSION,
            method: req.method,
            title: methods::Doc::title(method.meta().markdown),
            risk: method.risk(),
            request: req.clone(),
            root: facts.root.clone(),
            hostname: facts.hostname.clone(),
            family: facts.os.family.clone(),
            netns: facts.netns.filter(|_| method.per_netns()),
            fingerprint: fingerprint(req, &facts.root, &facts.hostname, &steps, &verify),
            warnings,
            steps,
            verify,
            from_facts: !host.is_live(),
        })
    }

    /// Re-plans this plan's request on current facts and refuses if anything differs: the host
    /// drifted since the plan was made (or the file was edited), so what was reviewed would not
    /// be what runs. Returns the fresh plan: it, never the file's own text (summaries, diffs,
    /// undo), is what is shown and run.
    pub fn ensure_current(&self, facts: &Facts, host: &dyn Host) -> Result<Plan> {
        let stale = |why: String| {
            Err(Error::refused(
                Refusal::StalePlan,
                format!(
                    "saved plan is stale: {why}. Nothing was changed; make a new plan with \
                     `lowport plan` and review it."
                ),
            ))
        };
        if facts.hostname != self.hostname {
            return stale(format!(
                "it was made on host '{}', this is '{}'",
                self.hostname, facts.hostname
            ));
        }
        if facts.root != self.root {
            return stale(format!(
                "it was made for root {}, not {}",
                self.root.display(),
                facts.root.display()
            ));
        }
        let now = Plan::build(facts, host, &self.request)?;
        if now.steps.len() != self.steps.len() {
            return stale("the method now plans a different number of steps".to_string());
        }
        for (old, new) in self.steps.iter().zip(&now.steps) {
            if old.action != new.action {
                return stale(format!(
                    "the step for {} is no longer the same",
                    old.action.target()
                ));
            }
            // A state unknown when planning without root is read now, as root; the step was
            // reviewed as a change of unknown state, and its undo is snapshotted when it runs.
            let learned = old.before == State::Unknown && !self.from_facts;
            if old.before != new.before && !learned {
                return stale(format!(
                    "{} changed since the plan was made",
                    old.action.target()
                ));
            }
        }
        if now.verify != self.verify {
            return stale("what it would verify is no longer the same".to_string());
        }
        // Every part was compared with the host's now; the fingerprint proves the file was not
        // edited after it was made (it covers the states as they were planned).
        let own = fingerprint(
            &self.request,
            &self.root,
            &self.hostname,
            &self.steps,
            &self.verify,
        );
        if own != self.fingerprint {
            return stale("its fingerprint does not match its content".to_string());
        }
        Ok(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{Answers, FactsHost};
    use crate::plan::{MethodId, State};
    use crate::request::Want;
    use crate::validate::PortArg;

    fn fixture() -> Facts {
        serde_json::from_str(include_str!(
            "../tests/scenarios/sysctl_lowers_the_boundary/facts.json"
        ))
        .unwrap()
    }

    fn sysctl() -> Request {
        Request::new(
            MethodId::Sysctl,
            Want {
                ports: vec![PortArg::Grant(80)],
                ..Want::default()
            },
        )
    }

    #[test]
    fn what_the_facts_do_not_hold_is_unknown_and_never_in_place() {
        let facts = fixture();
        let empty = Answers::default();
        let plan = Plan::build(&facts, &FactsHost::new(facts.root(), &empty), &sysctl()).unwrap();
        assert!(plan.from_facts);
        assert!(!plan.steps.is_empty());
        for s in &plan.steps {
            assert_eq!(s.before, State::Unknown, "{}", s.summary);
            assert!(!s.in_place, "{}", s.summary);
            assert!(s.summary.contains("unknown"), "{}", s.summary);
        }
        // With the answers detection recorded, the same steps start from known states.
        let known = Plan::build(
            &facts,
            &FactsHost::new(facts.root(), &facts.host),
            &sysctl(),
        )
        .unwrap();
        let actions = |p: &Plan| p.steps.iter().map(|s| s.action.clone()).collect::<Vec<_>>();
        assert_eq!(actions(&known), actions(&plan));
        assert!(known.steps.iter().all(|s| s.before != State::Unknown));
        assert_ne!(known.fingerprint, plan.fingerprint);
    }

    #[test]
    fn a_plan_checked_against_other_states_is_stale() {
        let facts = fixture();
        let host = FactsHost::new(facts.root(), &facts.host);
        let plan = Plan::build(&facts, &host, &sysctl()).unwrap();
        assert!(plan.ensure_current(&facts, &host).is_ok());
        let mut drifted = facts.host.clone();
        drifted.sysctls.insert(
            "net.ipv4.ip_unprivileged_port_start".into(),
            Some("900".into()),
        );
        let e = plan
            .ensure_current(&facts, &FactsHost::new(facts.root(), &drifted))
            .unwrap_err();
        assert_eq!(e.refusal(), Some(Refusal::StalePlan), "{e}");
        let mut elsewhere = facts.clone();
        elsewhere.hostname = "web2".into();
        let e = plan.ensure_current(&elsewhere, &host).unwrap_err();
        assert!(e.to_string().contains("made on host 'web1'"), "{e}");
    }
}
