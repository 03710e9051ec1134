//! Kubernetes: the minimal Pod whose container binds the plan's ports without root, and for a
//! redirect plan the Service that sends the low port to the container's high one.

use super::yaml::{Y, comment, document, map, num, s, yes};
use super::{CONTAINER_NOTE, File, Grant, provenance, workload_name};
use crate::error::Result;
use crate::facts::UNPRIVILEGED_PORT_START;
use crate::plan::Plan;

pub fn export(plan: &Plan) -> Result<Vec<File>> {
    let name = workload_name(plan);
    let grant = Grant::of(plan);
    let mut pod_security = vec![
        comment(
            "runAsNonRoot needs a numeric user: 65534 is nobody in most images (fabio's image \
             runs as nobody); use your image's uid",
        ),
        ("runAsNonRoot".to_string(), yes(true)),
        ("runAsUser".to_string(), num(65534)),
        ("runAsGroup".to_string(), num(65534)),
    ];
    let mut container_security = Vec::new();
    match &grant {
        Grant::Sysctl(low) => {
            pod_security.push(comment(format!(
                "a safe sysctl: it applies to this pod's network namespace only, where every \
                 process of the pod may then bind ports from {low} up"
            )));
            pod_security.push((
                "sysctls".to_string(),
                Y::List(vec![map([
                    ("name", s(UNPRIVILEGED_PORT_START)),
                    ("value", s(low.to_string())),
                ])]),
            ));
            container_security.push(("allowPrivilegeEscalation".to_string(), yes(false)));
            container_security.push(comment(
                "dropping every capability fails with EPERM if the image's binary carries a \
                 file capability: then add NET_BIND_SERVICE back",
            ));
            container_security.push((
                "capabilities".to_string(),
                map([("drop", Y::List(vec![s("ALL")]))]),
            ));
        }
        Grant::Capability => {
            container_security.push(comment(
                "allowPrivilegeEscalation is left unset: false sets no_new_privs, under which \
                 the kernel grants the binary's file capability only if the process already \
                 held it before exec, which depends on the runtime",
            ));
            container_security.push((
                "capabilities".to_string(),
                map([
                    ("drop", Y::List(vec![s("ALL")])),
                    ("add", Y::List(vec![s("NET_BIND_SERVICE")])),
                ]),
            ));
        }
        Grant::Publish(_) => {
            container_security.push(("allowPrivilegeEscalation".to_string(), yes(false)));
            container_security.push((
                "capabilities".to_string(),
                map([("drop", Y::List(vec![s("ALL")]))]),
            ));
        }
    }
    let ports: Vec<Y> = grant
        .container_ports(plan)
        .iter()
        .map(|p| map([("containerPort", num(p))]))
        .collect();
    let pod = map([
        ("apiVersion", s("v1")),
        ("kind", s("Pod")),
        (
            "metadata",
            map([("name", s(&name)), ("labels", map([("app", s(&name))]))]),
        ),
        (
            "spec",
            map([
                ("securityContext", Y::Map(pod_security)),
                (
                    "containers",
                    Y::List(vec![map([
                        ("name", s(&name)),
                        ("image", Y::Str(name.clone())),
                        ("ports", Y::List(ports)),
                        ("securityContext", Y::Map(container_security)),
                    ])]),
                ),
            ]),
        ),
    ]);
    let header = format!(
        "---\n{}# The image is named after the service: use yours.\n{}",
        provenance(plan, "# "),
        CONTAINER_NOTE
            .lines()
            .map(|l| format!("# {l}\n"))
            .collect::<String>()
    );
    let mut text = document(&header, &pod);
    if let Grant::Publish(pairs) = &grant {
        let service = map([
            ("apiVersion", s("v1")),
            ("kind", s("Service")),
            ("metadata", map([("name", s(&name))])),
            (
                "spec",
                map([
                    ("selector", map([("app", s(&name))])),
                    (
                        "ports",
                        Y::List(
                            pairs
                                .iter()
                                .map(|(low, high)| {
                                    map([
                                        ("name", s(format!("port-{low}"))),
                                        ("port", num(low)),
                                        ("targetPort", num(high)),
                                    ])
                                })
                                .collect(),
                        ),
                    ),
                ]),
            ),
        ]);
        text.push_str(&document(
            "---\n# Clients use the low port; the container listens on the high one.\n",
            &service,
        ));
    }
    Ok(vec![File::new("lowport.k8s.yaml", text)])
}
