//! `redirect-nft`: clients use the low port, nftables sends them to the service's port.

use std::path::Path;

use super::{Check, Meta, Method, MethodId, Request, Risk, redirect};
use crate::facts::Facts;
use crate::plan::Action;
use crate::plan::Target;

pub struct RedirectNft;

pub const RULES: &str = "/etc/lowport/redirect-nft.nft";
const TABLE: &str = "lowport_redirect";

fn ruleset(pairs: &[(u16, u16)]) -> String {
    let mut s = String::from(
        "#!/usr/sbin/nft -f\n# Written by lowport: clients use the low ports, the service listens \
         on the high ones.\n# Only lowport's own tables: nothing else is flushed or changed.\n",
    );
    for family in ["ip", "ip6"] {
        // Creating the table first makes the delete succeed, so loading twice is harmless.
        s.push_str(&format!(
            "table {family} {TABLE}\ndelete table {family} {TABLE}\n"
        ));
        s.push_str(&format!("table {family} {TABLE} {{\n"));
        s.push_str(
            "\tchain prerouting {\n\t\ttype nat hook prerouting priority -100; policy accept;\n",
        );
        for (low, high) in pairs {
            s.push_str(&format!("\t\ttcp dport {low} redirect to :{high}\n"));
        }
        s.push_str(
            "\t}\n\tchain output {\n\t\ttype nat hook output priority -100; policy accept;\n",
        );
        for (low, high) in pairs {
            s.push_str(&format!(
                "\t\toifname \"lo\" tcp dport {low} redirect to :{high}\n"
            ));
        }
        s.push_str("\t}\n}\n");
    }
    s
}

/// One nft command line that removes both tables if they exist (and succeeds if they do not).
fn delete_tables(nft: &str) -> Vec<String> {
    let script = ["ip", "ip6"]
        .iter()
        .map(|f| format!("table {f} {TABLE}; delete table {f} {TABLE}"))
        .collect::<Vec<_>>()
        .join("; ");
    vec![nft.to_string(), script]
}

const META: Meta = Meta {
    id: MethodId::RedirectNft,
    markdown: include_str!("../../assets/methods/redirect-nft.md"),
    risk: Risk::Medium,
    families: &["linux"],
};

impl Method for RedirectNft {
    fn per_netns(&self) -> bool {
        true
    }

    fn meta(&self) -> &'static Meta {
        &META
    }

    fn check(&self, facts: &Facts, req: &Request) -> Check {
        let mut c = Check::default();
        redirect::check(facts, req, "nft", "nftables", &mut c);
        c
    }

    fn actions(&self, facts: &Facts, req: &Request) -> Vec<Action> {
        let Ok(pairs) = req.redirect_pairs() else {
            return Vec::new();
        };
        let nft = facts
            .tool("nft")
            .map_or("nft".to_string(), |p| p.display().to_string());
        let rules = facts.root().host(Path::new(RULES)).display().to_string();
        let mut out = vec![
            Action::WriteFile {
                path: RULES.into(),
                content: ruleset(&pairs),
                mode: 0o644,
                owner: "root".into(),
                group: "root".into(),
            },
            Action::RunCommands {
                what: format!("load lowport's nftables tables ip/ip6 {TABLE}"),
                run: vec![vec![nft.clone(), "-f".into(), rules]],
                undo: vec![delete_tables(&nft)],
                check: Some(vec![
                    nft.clone(),
                    "list".into(),
                    "table".into(),
                    "ip".into(),
                    TABLE.into(),
                ]),
            },
        ];
        let start = vec![vec![nft.clone(), "-f".into(), RULES.into()]];
        let stop = vec![delete_tables(&nft)];
        out.extend(redirect::boot_unit(
            facts,
            "lowport-redirect-nft",
            "redirect low ports (nftables)",
            &start,
            &stop,
        ));
        out
    }

    fn target(&self, _facts: &Facts, req: &Request) -> Target {
        redirect::target(req)
    }
}
