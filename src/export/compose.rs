//! Compose: the minimal service that binds the plan's ports without root (`cap_drop`/`cap_add`,
//! `sysctls`, or a published port for a redirect plan).

use super::yaml::{Y, comment, document, map, num, s};
use super::{CONTAINER_NOTE, File, Grant, provenance, workload_name};
use crate::error::Result;
use crate::facts::UNPRIVILEGED_PORT_START;
use crate::plan::Plan;

pub fn export(plan: &Plan) -> Result<Vec<File>> {
    let name = workload_name(plan);
    let grant = Grant::of(plan);
    let mut service = vec![
        ("image".to_string(), s(&name)),
        comment("a numeric non-root user: 65534 is nobody in most images; use your image's"),
        ("user".to_string(), s("65534:65534")),
        ("cap_drop".to_string(), Y::List(vec![s("ALL")])),
    ];
    let published: Vec<(u16, u16)> = match &grant {
        Grant::Publish(pairs) => pairs.clone(),
        _ => plan.verify.ports.iter().map(|p| (*p, *p)).collect(),
    };
    match &grant {
        Grant::Capability => {
            service.push(("cap_add".to_string(), Y::List(vec![s("NET_BIND_SERVICE")])));
        }
        Grant::Sysctl(low) => {
            service.push(comment(format!(
                "this container's network namespace only: every process in it may bind ports \
                 from {low} up (not allowed with network_mode: host)"
            )));
            service.push((
                "sysctls".to_string(),
                map([(UNPRIVILEGED_PORT_START, num(low))]),
            ));
            service.push((
                "security_opt".to_string(),
                Y::List(vec![s("no-new-privileges:true")]),
            ));
        }
        Grant::Publish(_) => {
            service.push((
                "security_opt".to_string(),
                Y::List(vec![s("no-new-privileges:true")]),
            ));
        }
    }
    service.push((
        "ports".to_string(),
        Y::List(
            published
                .iter()
                .map(|(low, high)| s(format!("{low}:{high}")))
                .collect(),
        ),
    ));
    let header = format!(
        "{}# The image is named after the service: use yours.\n{}",
        provenance(plan, "# "),
        CONTAINER_NOTE
            .lines()
            .map(|l| format!("# {l}\n"))
            .collect::<String>()
    );
    let doc = map([("services", map([(name, Y::Map(service))]))]);
    Ok(vec![File::new("compose.yaml", document(&header, &doc))])
}
