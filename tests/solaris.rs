//! Solaris and illumos: the SMF manifests lowport plans parse as XML and follow the
//! service_bundle DTD's element order and required attributes (checked by xmllint, libxml2's
//! validator, against the DTD's structure as illumos ships it in
//! /usr/share/lib/xml/dtd/service_bundle.dtd.1); their exec strings give back the planned argv
//! through a POSIX shell; and the `--target-os` scenarios hold exactly the representative
//! documents, whose plans they show.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

/// The service_bundle DTD's content models and attributes for every element a manifest may
/// hold around what lowport writes, as in illumos-gate usr/src/cmd/svc/dtd/service_bundle.dtd.1
/// (Oracle Solaris 11 ships the same structure). Elements lowport never writes (property lists,
/// documentation, property patterns, XInclude) are left open.
const DTD: &str = r#"
<!ELEMENT service_bundle (service_bundle* | service* | xi:include*)>
<!ATTLIST service_bundle type CDATA #REQUIRED name CDATA #REQUIRED>
<!ELEMENT xi:include ANY>
<!ELEMENT service (create_default_instance?, single_instance?, restarter?, dependency*,
    dependent*, method_context?, exec_method*, property_group*, instance*, stability?,
    template?)>
<!ATTLIST service name CDATA #REQUIRED version CDATA #REQUIRED
    type (service | restarter | milestone) #REQUIRED>
<!ELEMENT create_default_instance EMPTY>
<!ATTLIST create_default_instance enabled (true | false) #REQUIRED>
<!ELEMENT single_instance EMPTY>
<!ELEMENT restarter (service_fmri)>
<!ELEMENT service_fmri EMPTY>
<!ATTLIST service_fmri value CDATA #REQUIRED>
<!ELEMENT dependency (service_fmri*, stability?, (propval | property)*)>
<!ATTLIST dependency name CDATA #REQUIRED
    grouping (require_all | require_any | exclude_all | optional_all) #REQUIRED
    restart_on (error | restart | refresh | none) #REQUIRED type CDATA #REQUIRED
    delete (true | false) "false">
<!ELEMENT dependent (service_fmri, stability?, (propval | property)*)>
<!ATTLIST dependent name CDATA #REQUIRED
    grouping (require_all | require_any | exclude_all | optional_all) #REQUIRED
    restart_on (error | restart | refresh | none) #REQUIRED delete (true | false) "false"
    override (true | false) "false">
<!ELEMENT envvar EMPTY>
<!ATTLIST envvar name CDATA #REQUIRED value CDATA #REQUIRED>
<!ELEMENT method_environment (envvar+)>
<!ELEMENT method_profile EMPTY>
<!ATTLIST method_profile name CDATA #REQUIRED>
<!ELEMENT method_credential EMPTY>
<!ATTLIST method_credential user CDATA #REQUIRED group CDATA #IMPLIED
    supp_groups CDATA #IMPLIED privileges CDATA #IMPLIED limit_privileges CDATA #IMPLIED>
<!ELEMENT method_context ((method_profile | method_credential)?, method_environment?)>
<!ATTLIST method_context working_directory CDATA #IMPLIED project CDATA #IMPLIED
    resource_pool CDATA #IMPLIED>
<!ELEMENT exec_method (method_context?, stability?, (propval | property)*)>
<!ATTLIST exec_method type (method | monitor) #REQUIRED name CDATA #REQUIRED
    exec CDATA #REQUIRED timeout_seconds CDATA #REQUIRED delete (true | false) "false">
<!ELEMENT propval EMPTY>
<!ATTLIST propval name CDATA #REQUIRED
    type (count | integer | opaque | host | hostname | net_address_v4 | net_address_v6 |
          time | astring | ustring | boolean | fmri | uri) #REQUIRED
    value CDATA #REQUIRED override (true | false) "false">
<!ELEMENT property ANY>
<!ELEMENT property_group (stability?, (propval | property)*)>
<!ATTLIST property_group name CDATA #REQUIRED type CDATA #REQUIRED
    delete (true | false) "false">
<!ELEMENT instance (restarter?, dependency*, dependent*, method_context?, exec_method*,
    property_group*, template?)>
<!ATTLIST instance name CDATA #REQUIRED enabled (true | false) #REQUIRED>
<!ELEMENT stability EMPTY>
<!ATTLIST stability
    value (Standard | Stable | Evolving | Unstable | External | Obsolete) #REQUIRED>
<!ELEMENT template (common_name, description?, documentation?, pg_pattern*)>
<!ELEMENT common_name (loctext+)>
<!ELEMENT description (loctext+)>
<!ELEMENT loctext (#PCDATA)>
<!ATTLIST loctext xml:lang CDATA #REQUIRED>
<!ELEMENT documentation ANY>
<!ELEMENT pg_pattern ANY>
"#;

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/scenarios")
        .join(name)
}

fn args(name: &str) -> Vec<String> {
    std::fs::read_to_string(scenario(name).join("args"))
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

/// A validator `.ci/run` installs: missing, the test says so and is skipped, except in CI.
fn tool(test: &str, path: &str) -> Option<PathBuf> {
    let p = PathBuf::from(path);
    if p.is_file() {
        return Some(p);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: {path} is not installed (.ci/run installs it)"
    );
    eprintln!("SKIPPED (needs {path}): {test}");
    None
}

/// The manifest the plan of scenario `name` writes.
fn manifest(name: &str) -> String {
    let plan = Lowport::new()
        .args(["plan", "--json", "--facts"])
        .arg(scenario(name).join("facts.json"))
        .args(args(name))
        .env("LOWPORT_STATE_DIR", "/nonexistent/lowport-state")
        .run()
        .code(0)
        .json();
    let steps = plan["steps"].as_array().unwrap();
    let write = steps
        .iter()
        .map(|s| &s["action"])
        .find(|a| a["type"] == "write_file")
        .expect("a manifest step");
    assert!(
        write["path"]
            .as_str()
            .unwrap()
            .starts_with("/var/svc/manifest/site/"),
        "{write}"
    );
    write["content"].as_str().unwrap().to_string()
}

/// The path manifests name in their DOCTYPE, as `svccfg validate` reads it.
const DTD_PATH: &str = "/usr/share/lib/xml/dtd/service_bundle.dtd.1";

/// xmllint's verdict on `xml` (`--valid`: against the DTD its DOCTYPE names, which an XML
/// catalog maps to [`DTD`]): Ok, or its complaint.
fn validate(xmllint: &Path, xml: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let (dtd, catalog, file) = (
        dir.path().join("sb.dtd"),
        dir.path().join("catalog.xml"),
        dir.path().join("m.xml"),
    );
    std::fs::write(&dtd, DTD).unwrap();
    std::fs::write(
        &catalog,
        format!(
            "<?xml version=\"1.0\"?>\n<catalog \
             xmlns=\"urn:oasis:names:tc:entity:xmlns:xml:catalog\">\n  <system \
             systemId=\"{DTD_PATH}\" uri=\"file://{}\"/>\n</catalog>\n",
            dtd.display()
        ),
    )
    .unwrap();
    std::fs::write(&file, xml).unwrap();
    let out = Command::new(xmllint)
        .args(["--noout", "--nonet", "--valid"])
        .arg(&file)
        .env("XML_CATALOG_FILES", &catalog)
        .output()
        .unwrap();
    if out.status.success() && out.stderr.is_empty() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

const PLANNED: &[&str] = &[
    "smf_illumos",
    "smf_solaris_11_4_ports_only",
    "smf_binary_path_quoted",
];

#[test]
fn manifests_follow_the_service_bundle_dtd() {
    let Some(xmllint) = tool(
        "manifests_follow_the_service_bundle_dtd",
        "/usr/bin/xmllint",
    ) else {
        return;
    };
    for name in PLANNED {
        let xml = manifest(name);
        validate(&xmllint, &xml).unwrap_or_else(|e| panic!("{name}: {e}\n{xml}"));
    }
    // The check can fail: elements out of order, a required attribute missing, a value outside
    // an enumeration, another root element.
    let xml = manifest("smf_illumos");
    let stability = "    <stability value=\"Unstable\"/>\n";
    let early = xml.replace(stability, "").replace(
        "    <property_group",
        &format!("{stability}    <property_group"),
    );
    for (what, bad) in [
        ("stability before property_group", early),
        (
            "no user",
            xml.replace("method_credential user=\"fabio\" ", "method_credential "),
        ),
        (
            "an unknown stability",
            xml.replace("\"Unstable\"", "\"Experimental\""),
        ),
        (
            "template before exec_method",
            xml.replace(
                "<exec_method type=\"method\" name=\"stop\"",
                "<template/><exec_method type=\"method\" name=\"stop\"",
            ),
        ),
        (
            "another root element",
            xml.replace("<service_bundle ", "<bundle ")
                .replace("</service_bundle>", "</bundle>"),
        ),
    ] {
        assert!(validate(&xmllint, &bad).is_err(), "{what} accepted:\n{bad}");
    }
}

/// The start method's exec string, as svc.startd reads it: the attribute value XML gives back,
/// its `%%` tokens expanded (lowport writes no other token), split by a POSIX shell (illumos
/// runs it with /sbin/sh, ksh93, whose single quotes are POSIX's).
#[test]
fn exec_strings_give_back_the_planned_argv() {
    let Some(xmllint) = tool(
        "exec_strings_give_back_the_planned_argv",
        "/usr/bin/xmllint",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.xml");
    std::fs::write(&file, manifest("smf_binary_path_quoted")).unwrap();
    let out = Command::new(&xmllint)
        .args(["--xpath", "string(//exec_method[@name='start']/@exec)"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // xmllint ends what it prints with a line break.
    let exec = String::from_utf8(out.stdout)
        .unwrap()
        .trim_end_matches('\n')
        .to_string();
    assert!(
        !exec.replace("%%", "").contains('%'),
        "a % token lowport did not mean: {exec}"
    );
    let expanded = exec.replace("%%", "%");
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("set -- {expanded}; printf '%s\\0' \"$@\""))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let words: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .split_terminator('\0')
        .map(String::from)
        .collect();
    assert_eq!(
        words,
        [
            "/opt/fabio's tools/bin/fabio",
            "-proxy.addr",
            ":80;proto=http",
            "-ui.title",
            "Tom & \"Jerry\" 100%"
        ]
    );
}

/// These scenarios stand for `--target-os NAME`: their facts are the representative document
/// itself, and planning with `--target-os` prints exactly their golden plan.
#[test]
fn target_os_scenarios_are_the_representative_documents() {
    for (name, target) in [
        ("smf_target_os_illumos", "illumos"),
        ("smf_target_os_solaris_11_4", "solaris-11.4"),
        ("smf_relative_binary_invalid", "illumos"),
        ("solaris_defaultpriv_target_os", "solaris-11.4"),
    ] {
        let read = |p: PathBuf| -> serde_json::Value {
            serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
        };
        let asset = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("assets/targets")
            .join(format!("{target}.json"));
        assert_eq!(
            read(scenario(name).join("facts.json")),
            read(asset),
            "{name}"
        );
        let out = Lowport::new()
            .args(["plan", "--target-os", target])
            .args(args(name))
            .env("LOWPORT_STATE_DIR", "/nonexistent/lowport-state")
            .run();
        let mut got = format!("exit {}\n{}", out.code.unwrap_or(-1), out.stdout);
        if !out.stderr.is_empty() {
            got.push_str("--- stderr\n");
            got.push_str(&out.stderr);
        }
        let golden = std::fs::read_to_string(scenario(name).join("plan.txt")).unwrap();
        assert_eq!(got, golden, "{name}");
    }
}
