//! Where the pods are in a stream of documents, and typed views of them.
//!
//! Theory of operation. Every object with a pod template is found by its `kind` (a `List`'s
//! items too), and a Buildkite pipeline's `kubernetes` plugin blocks (in steps and group
//! steps) are pods as well. A location is a path of keys and indexes into the document tree,
//! so `inject` can edit the tree in place and `check` can read the same spot. Typed views
//! parse with k8s-openapi strictly: the typed value is serialized back and must hold every
//! field of the source, so a misspelt field (which the types would silently drop, and the API
//! server may too) is reported instead of ignored.

use crate::yaml::Node;
use k8s_openapi::api::core::v1::{Container, PodSpec, Volume, VolumeMount};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;

/// What produced a pod.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Origin {
    /// A Pod or the pod template of a workload.
    Kubernetes,
    /// The pod agent-stack-k8s (v0.35+) builds for a Buildkite step's `kubernetes` plugin.
    Buildkite,
    /// A lone container spec (no pod around it: the platform that runs it provides one).
    ContainerSpec,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A pod found in a document.
#[derive(Clone, Debug)]
pub struct Location {
    /// How to name it in messages: `Job/ci-dind`, `step ":docker: build"`.
    pub object: String,
    pub origin: Origin,
    /// Kubernetes: the pod template (the node holding `metadata` and `spec`). Buildkite: the
    /// plugin block (holding `podSpec` and `sidecars`). ContainerSpec: the container.
    pub path: Vec<Seg>,
    /// The `kind` of the top-level object (`Job`), or "" when not a Kubernetes object.
    pub kind: String,
}

/// Kinds with a pod template, and the path to it.
pub const TEMPLATE_PATHS: &[(&str, &[&str])] = &[
    ("Pod", &[]),
    ("PodTemplate", &["template"]),
    ("Job", &["spec", "template"]),
    ("CronJob", &["spec", "jobTemplate", "spec", "template"]),
    ("Deployment", &["spec", "template"]),
    ("StatefulSet", &["spec", "template"]),
    ("DaemonSet", &["spec", "template"]),
    ("ReplicaSet", &["spec", "template"]),
    ("ReplicationController", &["spec", "template"]),
];

pub fn node_at<'a>(doc: &'a Node, path: &[Seg]) -> Option<&'a Node> {
    path.iter().try_fold(doc, |n, s| match s {
        Seg::Key(k) => n.get(k),
        Seg::Index(i) => n.as_seq()?.get(*i),
    })
}

pub fn node_at_mut<'a>(doc: &'a mut Node, path: &[Seg]) -> Option<&'a mut Node> {
    path.iter().try_fold(doc, |n, s| match s {
        Seg::Key(k) => n.get_mut(k),
        Seg::Index(i) => n.as_seq_mut()?.get_mut(*i),
    })
}

fn object_name(obj: &Node) -> String {
    let kind = obj.get("kind").and_then(Node::as_str).unwrap_or("object");
    let meta = obj.get("metadata");
    let name = meta
        .and_then(|m| m.get("name"))
        .and_then(Node::as_str)
        .map(str::to_string)
        .or_else(|| {
            meta.and_then(|m| m.get("generateName"))
                .and_then(Node::as_str)
                .map(|g| format!("{g}*"))
        })
        .unwrap_or_else(|| "(unnamed)".into());
    format!("{kind}/{name}")
}

/// Every pod in one document.
pub fn locate(doc: &Node) -> Vec<Location> {
    let mut out = Vec::new();
    locate_in(doc, Vec::new(), &mut out);
    out
}

fn locate_in(doc: &Node, base: Vec<Seg>, out: &mut Vec<Location>) {
    let kind = doc.get("kind").and_then(Node::as_str);
    if let Some(kind) = kind {
        if let Some(items) = doc.get("items").and_then(Node::as_seq)
            && kind.ends_with("List")
        {
            for (i, item) in items.iter().enumerate() {
                let mut p = base.clone();
                p.extend([Seg::Key("items".into()), Seg::Index(i)]);
                locate_in(item, p, out);
            }
            return;
        }
        if let Some((_, path)) = TEMPLATE_PATHS.iter().find(|(k, _)| *k == kind) {
            let mut p = base;
            p.extend(path.iter().map(|k| Seg::Key(k.to_string())));
            if node_at(doc, &p[p.len() - path.len()..]).is_some() {
                out.push(Location {
                    object: object_name(doc),
                    origin: Origin::Kubernetes,
                    path: p,
                    kind: kind.to_string(),
                });
            }
        }
        return;
    }
    if let Some(steps) = doc.get("steps").and_then(Node::as_seq) {
        buildkite_steps(steps, base, out);
        return;
    }
    if doc.get("name").is_some() && doc.get("image").is_some() && doc.get("apiVersion").is_none() {
        let name = doc.get("name").and_then(Node::as_str).unwrap_or("?");
        out.push(Location {
            object: format!("container spec {name}"),
            origin: Origin::ContainerSpec,
            path: base,
            kind: String::new(),
        });
    }
}

fn buildkite_steps(steps: &[Node], base: Vec<Seg>, out: &mut Vec<Location>) {
    for (i, step) in steps.iter().enumerate() {
        let mut here = base.clone();
        here.extend([Seg::Key("steps".into()), Seg::Index(i)]);
        if let Some(inner) = step.get("steps").and_then(Node::as_seq) {
            buildkite_steps(inner, here.clone(), out);
        }
        let Some(plugins) = step.get("plugins").and_then(Node::as_seq) else {
            continue;
        };
        for (j, plugin) in plugins.iter().enumerate() {
            if plugin.get("kubernetes").is_none() {
                continue;
            }
            let label = step
                .get("label")
                .or_else(|| step.get("key"))
                .and_then(Node::as_str)
                .map(|l| format!("step {l:?}"))
                .unwrap_or_else(|| format!("step {i}"));
            let mut p = here.clone();
            p.extend([
                Seg::Key("plugins".into()),
                Seg::Index(j),
                Seg::Key("kubernetes".into()),
            ]);
            out.push(Location {
                object: label,
                origin: Origin::Buildkite,
                path: p,
                kind: String::new(),
            });
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Strict typed views
// ---------------------------------------------------------------------------------------------

/// Parses `value` as T and checks that T keeps every field of it (see the module doc).
pub fn strict<T: DeserializeOwned + Serialize>(value: &serde_json::Value) -> Result<T, String> {
    match typed(value, "")? {
        (t, None) => Ok(t),
        (_, Some(e)) => Err(e),
    }
}

/// Parses `value` as T; the second item names the first field T does not keep.
/// `base` prefixes the field paths in the message.
pub fn typed<T: DeserializeOwned + Serialize>(
    value: &serde_json::Value,
    base: &str,
) -> Result<(T, Option<String>), String> {
    let typed = T::deserialize(value).map_err(|e| e.to_string())?;
    let back = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    let mut path = base.to_string();
    let missing = first_missing(value, &back, &mut path);
    Ok((typed, missing))
}

/// The first place where `src` has something `back` does not (a field the types dropped).
fn first_missing(
    src: &serde_json::Value,
    back: &serde_json::Value,
    path: &mut String,
) -> Option<String> {
    use serde_json::Value as V;
    match (src, back) {
        (V::Object(a), V::Object(b)) => a.iter().find_map(|(k, v)| {
            let len = path.len();
            path.push('.');
            path.push_str(k);
            let r = match b.get(k) {
                None if !v.is_null() => {
                    Some(format!("unknown field {}", path.trim_start_matches('.')))
                }
                None => None,
                Some(w) => first_missing(v, w, path),
            };
            path.truncate(len);
            r
        }),
        (V::Array(a), V::Array(b)) if a.len() == b.len() => {
            a.iter().zip(b).enumerate().find_map(|(i, (v, w))| {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                let r = first_missing(v, w, path);
                path.truncate(len);
                r
            })
        }
        (V::Number(a), V::Number(b)) if a.as_f64() == b.as_f64() => None,
        (a, b) if a == b => None,
        (a, b) => Some(format!("{}: {a} became {b}", path.trim_start_matches('.'))),
    }
}

/// Strictly parses a whole top-level object of a kind we know; other kinds are not checked.
pub fn strict_object(doc: &Node) -> Result<(), String> {
    use k8s_openapi::api::admissionregistration::v1 as admission;
    use k8s_openapi::api::{apps::v1 as apps, batch::v1 as batch, core::v1 as core};
    // Only objects of a kind we know are worth a JSON copy.
    let kind = doc.get("kind").and_then(Node::as_str).unwrap_or_default();
    let v = || doc.to_json();
    match kind {
        "Pod" => strict::<core::Pod>(&v()).map(drop),
        "PodTemplate" => strict::<core::PodTemplate>(&v()).map(drop),
        "ConfigMap" => strict::<core::ConfigMap>(&v()).map(drop),
        "Namespace" => strict::<core::Namespace>(&v()).map(drop),
        "Service" => strict::<core::Service>(&v()).map(drop),
        "MutatingWebhookConfiguration" => {
            strict::<admission::MutatingWebhookConfiguration>(&v()).map(drop)
        }
        "Job" => strict::<batch::Job>(&v()).map(drop),
        "CronJob" => strict::<batch::CronJob>(&v()).map(drop),
        "Deployment" => strict::<apps::Deployment>(&v()).map(drop),
        "StatefulSet" => strict::<apps::StatefulSet>(&v()).map(drop),
        "DaemonSet" => strict::<apps::DaemonSet>(&v()).map(drop),
        "ReplicaSet" => strict::<apps::ReplicaSet>(&v()).map(drop),
        "ReplicationController" => strict::<core::ReplicationController>(&v()).map(drop),
        _ => Ok(()),
    }
}

/// A pod as `check` sees it: the spec the kubelet would run.
#[derive(Clone, Debug)]
pub struct PodView {
    pub object: String,
    pub origin: Origin,
    pub kind: String,
    pub spec: PodSpec,
    pub annotations: BTreeMap<String, String>,
    /// The first field of the object the Kubernetes types do not know.
    pub unknown_field: Option<String>,
}

/// The pod at a location, typed. Fails only when it cannot be read as a pod at all.
pub fn view(doc: &Node, loc: &Location) -> Result<PodView, String> {
    let node = node_at(doc, &loc.path).ok_or("the pod vanished")?;
    let (spec, annotations, unknown_field) = match loc.origin {
        Origin::Kubernetes => {
            let unknown = strict_object(doc_root(doc, loc)).err();
            let (spec, _) = typed::<PodSpec>(
                &node.get("spec").map(Node::to_json).unwrap_or_default(),
                "spec",
            )
            .map_err(|e| format!("spec: {e}"))?;
            let annotations = node
                .at(&["metadata", "annotations"])
                .map(Node::to_json)
                .and_then(|a| serde_json::from_value(a).ok())
                .unwrap_or_default();
            (spec, annotations, unknown)
        }
        Origin::Buildkite => {
            let (spec, unknown) = buildkite_pod_typed(node)?;
            (spec, BTreeMap::new(), unknown)
        }
        Origin::ContainerSpec => {
            let (c, unknown) = typed::<Container>(&node.to_json(), "")?;
            let spec = PodSpec {
                containers: vec![c],
                ..Default::default()
            };
            (spec, BTreeMap::new(), unknown)
        }
    };
    Ok(PodView {
        object: loc.object.clone(),
        origin: loc.origin,
        kind: loc.kind.clone(),
        spec,
        annotations,
        unknown_field,
    })
}

/// The top-level object a Kubernetes location is in (a List item, or the document).
fn doc_root<'a>(doc: &'a Node, loc: &Location) -> &'a Node {
    match loc.path.as_slice() {
        [Seg::Key(k), Seg::Index(i), ..] if k == "items" => {
            node_at(doc, &loc.path[..2]).unwrap_or(doc)
        }
        _ => doc,
    }
}

/// The workspace agent-stack-k8s mounts into every container of a step's pod.
pub const BUILDKITE_WORKSPACE: &str = "/workspace";

/// The pod agent-stack-k8s (v0.35+) builds for a step: the podSpec's containers run the step's
/// command lines in a shell (the agent does that; `$$` is pipeline interpolation's escaped
/// `$`), the `sidecars` become native sidecars after the podSpec's init containers, and a
/// /workspace emptyDir is mounted everywhere. The stack's own agent containers are left out:
/// they do not run supervisor.
pub fn buildkite_pod(block: &Node) -> Result<PodSpec, String> {
    match buildkite_pod_typed(block)? {
        (spec, None) => Ok(spec),
        (_, Some(e)) => Err(e),
    }
}

/// [`buildkite_pod`], with the first field the types do not know.
pub fn buildkite_pod_typed(block: &Node) -> Result<(PodSpec, Option<String>), String> {
    let (mut spec, unknown) = typed::<PodSpec>(
        &block.get("podSpec").map(Node::to_json).unwrap_or_default(),
        "podSpec",
    )
    .map_err(|e| format!("podSpec: {e}"))?;
    let mut unknown = unknown;
    let sidecars: Vec<Container> = match block.get("sidecars") {
        Some(s) => {
            let (v, u) = typed(&s.to_json(), "sidecars").map_err(|e| format!("sidecars: {e}"))?;
            unknown = unknown.or(u);
            v
        }
        None => Vec::new(),
    };
    for c in &mut spec.containers {
        if let Some(lines) = c.command.take() {
            let script = lines.join("\n").replace("$$", "$");
            c.command = Some(vec!["sh".into(), "-ec".into(), script]);
            c.args = None;
        }
    }
    let mut init = spec.init_containers.take().unwrap_or_default();
    for mut s in sidecars {
        s.restart_policy = Some("Always".into());
        init.push(s);
    }
    spec.init_containers = Some(init);
    let workspace = VolumeMount {
        name: "workspace".into(),
        mount_path: BUILDKITE_WORKSPACE.into(),
        ..Default::default()
    };
    for c in spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten())
    {
        c.volume_mounts
            .get_or_insert_with(Vec::new)
            .push(workspace.clone());
    }
    spec.volumes.get_or_insert_with(Vec::new).push(Volume {
        name: "workspace".into(),
        empty_dir: Some(Default::default()),
        ..Default::default()
    });
    spec.restart_policy = Some("Never".into());
    Ok((spec, unknown))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml;

    #[test]
    fn finds_pods_in_every_kind_and_in_lists() {
        let text = "kind: List\nitems:\n  - kind: Deployment\n    metadata: {name: d}\n    spec:\n      template:\n        spec:\n          containers: []\n  - kind: Service\n    metadata: {name: s}\n---\nkind: CronJob\nmetadata: {name: c}\nspec:\n  jobTemplate:\n    spec:\n      template:\n        spec: {containers: []}\n";
        let docs = yaml::parse(text).expect("yaml");
        let a = locate(&docs[0]);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].object, "Deployment/d");
        assert_eq!(
            a[0].path,
            [
                Seg::Key("items".into()),
                Seg::Index(0),
                Seg::Key("spec".into()),
                Seg::Key("template".into())
            ]
        );
        let b = locate(&docs[1]);
        assert_eq!(b[0].object, "CronJob/c");
        assert!(node_at(&docs[1], &b[0].path).is_some());
    }

    #[test]
    fn strict_parsing_names_unknown_fields() {
        let bad = serde_json::json!({
            "name": "x", "image": "busybox", "volumeMounts": [{"name": "v", "mountpath": "/v"}]
        });
        let err = strict::<Container>(&bad).expect_err("misspelt");
        assert_eq!(err, "unknown field volumeMounts[0].mountpath");
    }
}
