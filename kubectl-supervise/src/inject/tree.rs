//! Carrying out a [`Plan`] on the document tree: the volume, its mounts, the install init
//! container, the new commands, and native sidecars moved among the init containers.
//!
//! Everything here edits in place and adds only what is missing, so fields `inject` does not
//! own keep their place and their spelling, and a second run finds nothing to add.

use super::plan::{BINARY, MOUNT_PATH, Plan, VOLUME};
use crate::command;
use crate::yaml::Node;
use k8s_openapi::api::core::v1::PodSpec;
use std::collections::BTreeMap;
use supervisor::config::Parsed;

pub const INSTALL_DIR: &str = "/supervisor/bin";
pub const INSTALL_CONTAINER: &str = "install-supervisor";
/// Where the supervisor image keeps the binary.
pub const IMAGE_BINARY: &str = "/usr/local/bin/supervisor";

fn mount(read_only: bool) -> Node {
    let mut m = Node::map();
    m.set("name", Node::text(VOLUME));
    m.set("mountPath", Node::text(MOUNT_PATH));
    if read_only {
        m.set("readOnly", Node::plain("true"));
    }
    m
}

/// Mounts the volume into a container that does not mount it yet.
pub fn ensure_mount(c: &mut Node, read_only: bool) {
    let mounts = c.entry("volumeMounts", || Node::Seq(Vec::new()));
    let Some(list) = mounts.and_then(Node::as_seq_mut) else {
        return;
    };
    let has = list
        .iter()
        .any(|m| m.get("name").and_then(Node::as_str) == Some(VOLUME));
    if !has {
        list.push(mount(read_only));
    }
}

/// The `supervisor` emptyDir, unless the pod has a volume of that name.
pub fn ensure_volume(spec: &mut Node) {
    let volumes = spec.entry("volumes", || Node::Seq(Vec::new()));
    if let Some(list) = volumes.and_then(Node::as_seq_mut) {
        let has = list
            .iter()
            .any(|v| v.get("name").and_then(Node::as_str) == Some(VOLUME));
        if !has {
            let mut v = Node::map();
            v.set("name", Node::text(VOLUME));
            v.set("emptyDir", Node::map());
            list.push(v);
        }
    }
}

fn install_container(image: &str) -> Node {
    let mut c = Node::map();
    c.set("name", Node::text(INSTALL_CONTAINER));
    c.set("image", Node::text(image));
    c.set(
        "command",
        Node::Seq(
            [IMAGE_BINARY, "install", INSTALL_DIR]
                .into_iter()
                .map(Node::text)
                .collect(),
        ),
    );
    c.set("volumeMounts", Node::Seq(vec![mount(false)]));
    c
}

/// Whether an init container already installs the binary into our directory.
fn installs_here(spec: &PodSpec) -> bool {
    spec.init_containers.iter().flatten().any(|c| {
        command::invocations(c).iter().any(
            |i| matches!(&i.parsed, Ok(Parsed::Install(c)) if c.dir.as_os_str() == INSTALL_DIR),
        )
    })
}

/// The install init container first (init containers start in order), followed by `more`,
/// in an `initContainers` list placed before `containers` when new (where people write it).
pub fn add_init_containers(spec: &mut Node, typed: &PodSpec, image: &str, more: Vec<Node>) {
    let install = !installs_here(typed);
    if !install && more.is_empty() {
        return;
    }
    if spec.get("initContainers").is_none_or(Node::is_null) {
        spec.set_before(&["containers"], "initContainers", Node::Seq(Vec::new()));
    }
    let init = spec.entry("initContainers", || Node::Seq(Vec::new()));
    if let Some(list) = init.and_then(Node::as_seq_mut) {
        if install {
            list.insert(0, install_container(image));
        }
        list.extend(more);
    }
}

pub fn seq_of(words: &[String]) -> Node {
    Node::Seq(words.iter().map(|w| Node::text(w.clone())).collect())
}

/// The kubelet starts the containers after a native sidecar only once this passes.
fn startup_probe(target: &str) -> Node {
    let mut exec = Node::map();
    exec.set(
        "command",
        seq_of(&[BINARY.into(), "probe".into(), target.into()]),
    );
    let mut p = Node::map();
    p.set("exec", exec);
    p.set("periodSeconds", Node::plain("1"));
    p.set("failureThreshold", Node::plain("300"));
    p
}

/// A container's name in the tree ("" when it has none).
pub fn name_of(c: &Node) -> String {
    c.get("name")
        .and_then(Node::as_str)
        .unwrap_or("")
        .to_string()
}

/// Gives a container its new command and the volume; a native sidecar also its
/// `startupProbe` (unless it has one).
pub fn wire_container(c: &mut Node, plan: &Plan, name: &str, argv: &[String]) {
    c.set_after(&["image", "name"], "command", seq_of(argv));
    ensure_mount(c, !plan.writes(name));
    if let Some(t) = plan.startup_target(name)
        && c.get("startupProbe").is_none()
    {
        c.set("startupProbe", startup_probe(t));
    }
}

/// Carries out the plan on a Kubernetes pod spec's tree. `commands`: each container to wire,
/// with its whole new command.
pub fn apply_pod(
    spec: &mut Node,
    typed: &PodSpec,
    plan: &Plan,
    commands: &BTreeMap<String, Vec<String>>,
    image: &str,
) {
    ensure_volume(spec);
    // Native sidecars already among the init containers are wired where they are.
    if let Some(init) = spec.get_mut("initContainers").and_then(Node::as_seq_mut) {
        for c in init {
            let name = name_of(c);
            if let Some(argv) = commands.get(&name) {
                wire_container(c, plan, &name, argv);
            }
        }
    }
    let mut natives = Vec::new();
    if let Some(containers) = spec.get_mut("containers").and_then(Node::as_seq_mut) {
        let mut keep = Vec::new();
        for mut c in std::mem::take(containers) {
            let name = name_of(&c);
            if let Some(argv) = commands.get(&name) {
                wire_container(&mut c, plan, &name, argv);
                if plan.to_native && plan.natives.contains(&name) {
                    c.set_after(&["image", "name"], "restartPolicy", Node::text("Always"));
                    natives.push(c);
                    continue;
                }
            }
            keep.push(c);
        }
        *containers = keep;
    }
    add_init_containers(spec, typed, image, natives);
}
