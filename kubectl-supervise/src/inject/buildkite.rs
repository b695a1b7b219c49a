//! A Buildkite step's `kubernetes` plugin block, wired through the same planner as a pod.
//!
//! agent-stack-k8s (v0.35+) builds the step's pod from the block: the podSpec's containers run
//! the step's command lines in a shell and are the mains; the `sidecars` run as native
//! sidecars. [`manifest::buildkite_pod`] builds that pod; the planner wires it like any pod
//! with native sidecars; only the writing differs: a main's command lines become one
//! `supervisor main ... -- sh -ec '<lines>'` line (pipeline interpolation, `$$`, still happens
//! first, on the whole text), and the sidecars stay in `sidecars`. A step without sidecars has
//! nothing to coordinate and is left alone.

use super::plan::{self, Member, Plan};
use super::{InjectError, Options, Used, original_command, pod_error, tree};
use crate::manifest::{self, Location};
use crate::yaml::Node;
use std::collections::BTreeMap;

/// Quotes a word for a POSIX shell.
pub fn sh_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

pub(super) fn inject(
    block: &mut Node,
    loc: &Location,
    opts: &Options,
    used: &mut Used,
) -> Result<bool, InjectError> {
    let object = loc.object.as_str();
    let pod = manifest::buildkite_pod(block).map_err(|e| pod_error(object, e))?;
    let mut settings = super::settings(opts, &BTreeMap::new(), object)?;
    // The stack runs every sidecar as a native sidecar, whatever the options say.
    settings.native = true;
    if block
        .get("sidecars")
        .and_then(Node::as_seq)
        .is_none_or(Vec::is_empty)
    {
        return Ok(false);
    }
    let members = Member::of_pod(&pod, &settings);
    for m in &members {
        if settings.mains.contains(&m.name) || settings.entrypoints.contains_key(&m.name) {
            used.0.insert(m.name.clone());
        }
    }
    let planned = plan::Pod {
        object,
        mains: pod.containers.iter().map(|c| c.name.clone()).collect(),
        members,
        restart: plan::restart_policy(&pod),
        termination_grace_s: pod.termination_grace_period_seconds.unwrap_or(30),
        native: true,
    };
    let plan = plan::plan(&planned, &settings, used)?;
    let mut sidecars = BTreeMap::new();
    for m in planned.members.iter().filter(|m| !m.wired()) {
        if let Some(mut argv) = plan.sidecar_wiring.get(&m.name).map(plan::sidecar_flags) {
            argv.extend(original_command(m, &settings, object)?);
            sidecars.insert(m.name.clone(), argv);
        }
    }
    let lines = main_lines(block, &plan, object)?;
    if sidecars.is_empty() && lines.is_empty() {
        return Ok(false);
    }
    apply(block, &pod, &plan, &sidecars, &lines, &opts.image);
    manifest::buildkite_pod(block).map_err(|e| {
        pod_error(
            object,
            format!("internal error: the injected step does not parse: {e}"),
        )
    })?;
    Ok(true)
}

/// Each main's new command line: `supervisor main ... -- sh -ec '<its lines>'`.
fn main_lines(
    block: &Node,
    plan: &Plan,
    object: &str,
) -> Result<BTreeMap<String, String>, InjectError> {
    let mut lines = BTreeMap::new();
    let raw_containers = block
        .at(&["podSpec", "containers"])
        .and_then(Node::as_seq)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for raw in raw_containers {
        let name = tree::name_of(raw);
        let Some(wiring) = plan.mains.get(&name) else {
            continue;
        };
        if raw.get("args").is_some() {
            return Err(pod_error(
                object,
                format!(
                    "container {name}: args in a command container are not supported; put them in command"
                ),
            ));
        }
        let script: Vec<&str> = raw
            .get("command")
            .and_then(Node::as_seq)
            .map(|l| l.iter().filter_map(Node::as_str).collect())
            .unwrap_or_default();
        if script.is_empty() {
            continue;
        }
        let flags: Vec<String> = plan::main_flags(wiring)
            .iter()
            .map(|f| sh_quote(f))
            .collect();
        let line = format!(
            "{} sh -ec {}",
            flags.join(" "),
            sh_quote(&script.join("\n"))
        );
        lines.insert(name, line);
    }
    Ok(lines)
}

fn apply(
    block: &mut Node,
    pod: &k8s_openapi::api::core::v1::PodSpec,
    plan: &Plan,
    sidecars: &BTreeMap<String, Vec<String>>,
    lines: &BTreeMap<String, String>,
    image: &str,
) {
    let Some(pod_spec) = block.entry("podSpec", Node::map) else {
        return;
    };
    tree::ensure_volume(pod_spec);
    tree::add_init_containers(pod_spec, pod, image, Vec::new());
    if let Some(cs) = pod_spec.get_mut("containers").and_then(Node::as_seq_mut) {
        for c in cs {
            let name = tree::name_of(c);
            if let Some(line) = lines.get(&name) {
                c.set("command", Node::Seq(vec![Node::text(line.clone())]));
                tree::ensure_mount(c, !plan.writes(&name));
            }
        }
    }
    if let Some(cs) = block.get_mut("sidecars").and_then(Node::as_seq_mut) {
        for c in cs {
            let name = tree::name_of(c);
            if let Some(argv) = sidecars.get(&name) {
                tree::wire_container(c, plan, &name, argv);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting() {
        assert_eq!(sh_quote("a b'c"), r"'a b'\''c'");
        assert_eq!(sh_quote("--x=/y"), "--x=/y");
        assert_eq!(sh_quote(""), "''");
    }
}
