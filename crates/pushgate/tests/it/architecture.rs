//! Checks the architecture invariants of docs/architecture.md against
//! `cargo metadata`, so an arrow pointing the wrong way fails CI.
//!
//! The rules name crates by role (the hub, a transport, the HTTP plumbing, the
//! sources), so crates that do not exist yet are covered as soon as they are
//! added. Only normal dependencies count: tests and benches may use anything.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context as _, ensure};
use cargo_metadata::{DependencyKind, MetadataCommand};

const HUB: &str = "pushgate-hub";
const PROTOCOL: &str = "pushgate-protocol";
const CLIENT: &str = "pushgate-client";
const HTTP: &str = "pushgate-http";
const SOURCES: &str = "pushgate-sources";
const AUTH: &str = "pushgate-auth";
const GATEWAY: &str = "pushgate";
const TRANSPORTS: [&str; 4] = ["pushgate-poll", "pushgate-longpoll", "pushgate-sse", "pushgate-ws"];
/// HTTP, database and WebSocket crates the hub and the protocol must not know about.
const KEPT_OUT_OF_HUB: [&str; 7] =
    ["hyper", "axum", "http", "sqlx", "tokio-tungstenite", "tungstenite", "reqwest"];
/// The crates that compose, and so may use `anyhow`.
const MAY_USE_ANYHOW: [&str; 4] = [GATEWAY, "pushgate-bench", "pushgate-examples", "pushgate-testkit"];

/// A workspace member as far as these rules care.
struct Member {
    name: String,
    /// Package names of its normal dependencies, optional ones included.
    normal_dependencies: Vec<String>,
    /// The text of its Cargo.toml.
    manifest: String,
}

/// The rule, if any, that `from` depending on `to` breaks.
fn broken_rule(from: &str, to: &str, ours: &BTreeSet<&str>) -> Option<&'static str> {
    let is_ours = ours.contains(to);
    let is_transport = |name: &str| TRANSPORTS.contains(&name);
    if from == PROTOCOL && is_ours {
        return Some("pushgate-protocol depends on no crate of ours");
    }
    if from == PROTOCOL && KEPT_OUT_OF_HUB.contains(&to) {
        return Some("pushgate-protocol depends on no HTTP, database or WebSocket crate");
    }
    if from == HUB && is_ours && to != PROTOCOL {
        return Some("the hub depends on no crate of ours but pushgate-protocol");
    }
    if from == HUB && KEPT_OUT_OF_HUB.contains(&to) {
        return Some("the hub depends on no HTTP, database or WebSocket crate");
    }
    if from == CLIENT && is_ours && to != PROTOCOL {
        return Some("pushgate-client depends on no crate of ours but pushgate-protocol");
    }
    if is_transport(from) && is_ours && ![HUB, HTTP, PROTOCOL].contains(&to) {
        return Some(
            "a transport depends on no other crate of ours than pushgate-hub, pushgate-http and pushgate-protocol",
        );
    }
    if from == HTTP && is_transport(to) {
        return Some("pushgate-http depends on no transport");
    }
    if from == SOURCES && (is_transport(to) || to == GATEWAY) {
        return Some("pushgate-sources depends on no transport and not on the gateway");
    }
    if from == AUTH && is_ours && ![HUB, HTTP, PROTOCOL].contains(&to) {
        return Some(
            "pushgate-auth depends on no other crate of ours than pushgate-hub, pushgate-http and pushgate-protocol",
        );
    }
    if to == "anyhow" && !MAY_USE_ANYHOW.contains(&from) {
        return Some("only the gateway, bench, examples and testkit use anyhow");
    }
    None
}

/// Whether a manifest opts into the workspace lints with `[lints] workspace = true`.
fn has_workspace_lints(manifest: &str) -> bool {
    // `None` until the first table header: the root table, where the dotted
    // spelling `lints.workspace = true` is allowed.
    let mut table: Option<String> = None;
    for line in manifest.lines() {
        let line: String = line.split('#').next().unwrap_or_default().split_whitespace().collect();
        if line.starts_with('[') {
            table = Some(line);
        } else if (line == "workspace=true" && table.as_deref() == Some("[lints]"))
            || (line == "lints.workspace=true" && table.is_none())
        {
            return true;
        }
    }
    false
}

/// Every broken rule, one line each, naming the crates and the rule.
fn violations(members: &[Member]) -> Vec<String> {
    let ours: BTreeSet<&str> = members.iter().map(|member| member.name.as_str()).collect();
    let mut found = Vec::new();
    for member in members {
        for dependency in &member.normal_dependencies {
            if let Some(rule) = broken_rule(&member.name, dependency, &ours) {
                found.push(format!("{} depends on {dependency}: {rule}", member.name));
            }
        }
        if !has_workspace_lints(&member.manifest) {
            found.push(format!(
                "{} lacks `[lints] workspace = true`: every member uses the workspace lints",
                member.name
            ));
        }
    }
    found
}

fn workspace_members() -> anyhow::Result<Vec<Member>> {
    let workspace_manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
    let metadata = MetadataCommand::new()
        .manifest_path(workspace_manifest)
        .no_deps()
        .exec()
        .context("running cargo metadata")?;
    metadata
        .workspace_packages()
        .into_iter()
        .map(|package| {
            let manifest = std::fs::read_to_string(&package.manifest_path)
                .with_context(|| format!("reading {}", package.manifest_path))?;
            Ok(Member {
                name: package.name.to_string(),
                normal_dependencies: package
                    .dependencies
                    .iter()
                    .filter(|dependency| dependency.kind == DependencyKind::Normal)
                    .map(|dependency| dependency.name.clone())
                    .collect(),
                manifest,
            })
        })
        .collect()
}

#[test]
fn arrows_point_the_right_way() -> anyhow::Result<()> {
    let members = workspace_members()?;
    // The rules name crates; a rename must not switch them off silently.
    for required in [HUB, PROTOCOL, GATEWAY] {
        ensure!(
            members.iter().any(|member| member.name == required),
            "{required} is not a workspace member; update the rules in this test"
        );
    }
    let found = violations(&members);
    ensure!(found.is_empty(), "architecture rules broken:\n  {}", found.join("\n  "));
    Ok(())
}

/// A member for the rule tests below, with the workspace lints unless `manifest` says otherwise.
fn member(name: &str, dependencies: &[&str]) -> Member {
    Member {
        name: name.to_owned(),
        normal_dependencies: dependencies.iter().map(|&name| name.to_owned()).collect(),
        manifest: "[package]\nname = \"x\"\n\n[lints]\nworkspace = true\n".to_owned(),
    }
}

#[test]
fn every_rule_reports_a_wrong_arrow_and_allows_the_right_ones() {
    let mut unlinted = member("pushgate-testkit", &["anyhow"]);
    unlinted.manifest =
        "[package]\nname = \"pushgate-testkit\"\n\n[lints.rust]\nworkspace = true\n".to_owned();
    let members = [
        member(HUB, &["tokio", "axum", HTTP, PROTOCOL]),
        member(PROTOCOL, &["serde_json", "http", HUB]),
        member(CLIENT, &[PROTOCOL, "hyper", "tokio-tungstenite", HUB]),
        member("pushgate-sse", &[HUB, HTTP, "axum", "pushgate-ws", SOURCES]),
        member("pushgate-ws", &[HUB, "anyhow"]),
        member(HTTP, &["axum", "pushgate-poll"]),
        member("pushgate-poll", &[HUB]),
        member(SOURCES, &[HUB, "sqlx", "pushgate-longpoll", GATEWAY]),
        member("pushgate-longpoll", &[HUB, HTTP, PROTOCOL]),
        member(GATEWAY, &[HUB, HTTP, SOURCES, "pushgate-sse", AUTH, "anyhow"]),
        member(AUTH, &[HUB, HTTP, "jsonwebtoken", "pushgate-ws"]),
        unlinted,
    ];
    let found = violations(&members);
    let expected = [
        "pushgate-hub depends on axum: the hub depends on no HTTP, database or WebSocket crate",
        "pushgate-hub depends on pushgate-http: the hub depends on no crate of ours but pushgate-protocol",
        "pushgate-protocol depends on http: pushgate-protocol depends on no HTTP, database or WebSocket crate",
        "pushgate-protocol depends on pushgate-hub: pushgate-protocol depends on no crate of ours",
        "pushgate-client depends on pushgate-hub: pushgate-client depends on no crate of ours but pushgate-protocol",
        "pushgate-sse depends on pushgate-ws: a transport depends on no other crate of ours than pushgate-hub, pushgate-http and pushgate-protocol",
        "pushgate-sse depends on pushgate-sources: a transport depends on no other crate of ours than pushgate-hub, pushgate-http and pushgate-protocol",
        "pushgate-ws depends on anyhow: only the gateway, bench, examples and testkit use anyhow",
        "pushgate-http depends on pushgate-poll: pushgate-http depends on no transport",
        "pushgate-sources depends on pushgate-longpoll: pushgate-sources depends on no transport and not on the gateway",
        "pushgate-sources depends on pushgate: pushgate-sources depends on no transport and not on the gateway",
        "pushgate-auth depends on pushgate-ws: pushgate-auth depends on no other crate of ours than pushgate-hub, pushgate-http and pushgate-protocol",
        "pushgate-testkit lacks `[lints] workspace = true`: every member uses the workspace lints",
    ];
    assert_eq!(found, expected);
}

#[test]
fn workspace_lints_are_recognised_in_both_spellings() {
    assert!(has_workspace_lints("[lints]\nworkspace = true # shared\n"));
    assert!(has_workspace_lints("lints.workspace = true\n[package]\nname = \"x\"\n"));
    assert!(!has_workspace_lints("[package]\nname = \"x\"\nlints.workspace = true\n"));
    assert!(!has_workspace_lints("[lints]\n# workspace = true\n"));
    assert!(!has_workspace_lints("[lints]\n\n[features]\nworkspace = true\n"));
}
