//! `inject`: add the supervisor wiring to every pod of a stream of documents.
//!
//! Theory of operation. For each pod (see [`crate::manifest`]) the settings come from the
//! options, else the pod template's `supervisor/*` annotations. A front end per kind of pod (a
//! Kubernetes pod template here, a Buildkite step in [`buildkite`]) describes the pod to the one
//! planner ([`plan`]): its containers split into mains and sidecars. A container whose command
//! already runs `supervisor main` or `sidecar` (written, or baked into a known image) is left
//! exactly as it is, which is what makes injecting twice a no-op. Each remaining container's
//! command becomes `supervisor MODE [flags] --` followed by what it ran before: its `command`,
//! else the image's ENTRYPOINT (from `--entrypoint`, the annotation or [`crate::images`]), and
//! its `args` stay untouched, so Kubernetes' command/args rules give the original program the
//! same argv. The binary comes from an init container running `supervisor install` into an
//! emptyDir, mounted read-only wherever a container writes nothing there ([`tree`] edits the
//! document in place, so everything else in it survives), and the edited pod spec must parse
//! strictly as a Kubernetes PodSpec before anything is written.
//!
//! The library entry points take a document tree ([`inject_doc`]) or text ([`inject_str`]), so
//! the admission webhook applies exactly the same wiring.

mod buildkite;
mod plan;
mod tree;

pub use buildkite::sh_quote;
pub use plan::{BINARY, MOUNT_PATH, MainWiring, SidecarWiring, VOLUME, main_flags, sidecar_flags};
pub use tree::{IMAGE_BINARY, INSTALL_CONTAINER, INSTALL_DIR};

use crate::command;
use crate::images;
use crate::manifest::{self, Location, Origin};
use crate::yaml::{self, Node, YamlError};
use k8s_openapi::api::core::v1::PodSpec;
use plan::Member;
use std::collections::{BTreeMap, BTreeSet};
use supervisor::config::Parsed;

/// The install image when neither `--image` nor KUBECTL_SUPERVISE_IMAGE says otherwise.
pub const DEFAULT_IMAGE: &str = concat!(
    "ghcr.io/supervisor-dev/supervisor:",
    env!("CARGO_PKG_VERSION")
);

/// Pod template annotations `inject` (and the webhook) read.
pub mod annotation {
    /// `"false"`: leave this pod alone. The webhook injects only pods with `"true"`.
    pub const INJECT: &str = "supervisor/inject";
    /// `NAME[,NAME]`: the main containers.
    pub const MAIN: &str = "supervisor/main";
    /// `SIDECAR=TARGET[,...]`: readiness targets (commas in a target as `\,`).
    pub const READY: &str = "supervisor/ready";
    /// `"true"`: native sidecars.
    pub const NATIVE: &str = "supervisor/native";
    /// A JSON object `{"NAME": ["ENTRYPOINT", ...]}`.
    pub const ENTRYPOINTS: &str = "supervisor/entrypoints";
    /// `"false"`: a sidecar that ends does not stop the mains (no `--done-file` on the
    /// sidecars, no `--requires` on the mains).
    pub const REQUIRES: &str = "supervisor/requires";
    /// `"false"`: the mains wait only for the sidecars `supervisor/ready` names, not for the
    /// known images' readiness.
    pub const AUTO_READY: &str = "supervisor/auto-ready";
    /// A duration: how long the mains wait for the sidecars' readiness (`--wait-timeout`).
    pub const WAIT_TIMEOUT: &str = "supervisor/wait-timeout";
}

/// What the user asked for; empty fields fall back to the pod's annotations.
#[derive(Clone, Debug)]
pub struct Options {
    pub mains: Vec<String>,
    /// (sidecar, readiness target)
    pub ready: Vec<(String, String)>,
    pub native: Option<bool>,
    pub image: String,
    /// (container, what it runs before its args)
    pub entrypoints: Vec<(String, Vec<String>)>,
    pub wait_timeout: Option<String>,
    /// Whether the mains stop when a sidecar ends (`Some(false)`: `--no-requires`).
    pub requires: Option<bool>,
    /// Whether the mains wait for the known sidecars' readiness without `--ready`
    /// (`Some(false)`: `--no-auto-ready`).
    pub auto_ready: Option<bool>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mains: Vec::new(),
            ready: Vec::new(),
            native: None,
            image: DEFAULT_IMAGE.to_string(),
            entrypoints: Vec::new(),
            wait_timeout: None,
            requires: None,
            auto_ready: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InjectError {
    #[error(transparent)]
    Yaml(#[from] YamlError),
    /// One line, whatever the manifest holds: a name with a newline is written escaped.
    #[error("{}: {}", escape_controls(.object), escape_controls(.message))]
    Pod { object: String, message: String },
    #[error("{0}")]
    Usage(String),
}

/// `s` on one line: newlines, tabs and other control characters written escaped.
pub(crate) fn escape_controls(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&c.escape_unicode().to_string()),
            c => out.push(c),
        }
    }
    out
}

pub(crate) fn pod_error(object: &str, message: impl Into<String>) -> InjectError {
    InjectError::Pod {
        object: object.to_string(),
        message: message.into(),
    }
}

/// `SIDECAR=TARGET`, the target checked by the binary's own parser.
pub fn parse_ready(s: &str) -> Result<(String, String), String> {
    let (name, target) = s
        .split_once('=')
        .filter(|(n, t)| !n.is_empty() && !t.is_empty())
        .ok_or_else(|| format!("{s:?} is not SIDECAR=TARGET"))?;
    target
        .parse::<supervisor::readiness::Target>()
        .map_err(|e| format!("{s:?}: {e}"))?;
    Ok((name.to_string(), target.to_string()))
}

/// `NAME=WORDS`: a JSON array of strings, or words separated by spaces.
pub fn parse_entrypoint(s: &str) -> Result<(String, Vec<String>), String> {
    let (name, words) = s
        .split_once('=')
        .filter(|(n, _)| !n.is_empty())
        .ok_or_else(|| format!("{s:?} is not NAME=ENTRYPOINT"))?;
    let words: Vec<String> = if words.trim_start().starts_with('[') {
        serde_json::from_str(words)
            .map_err(|e| format!("{s:?}: not a JSON array of strings: {e}"))?
    } else {
        words.split_whitespace().map(str::to_string).collect()
    };
    Ok((name.to_string(), words))
}

/// Which option names matched some container, so that a `--main` or `--ready` naming nothing
/// anywhere in the stream is an error rather than silently ignored.
#[derive(Default)]
pub(crate) struct Used(BTreeSet<String>);

/// Injects every document of a YAML stream; returns the new text.
pub fn inject_str(text: &str, opts: &Options) -> Result<String, InjectError> {
    let mut docs = yaml::parse(text)?;
    let mut used = Used::default();
    for doc in &mut docs {
        inject_in(doc, opts, &mut used)?;
    }
    unused_names(opts, &used)?;
    Ok(yaml::emit(&docs))
}

/// Injects every pod of one document in place; returns the objects that changed.
pub fn inject_doc(doc: &mut Node, opts: &Options) -> Result<Vec<String>, InjectError> {
    let mut used = Used::default();
    let changed = inject_in(doc, opts, &mut used)?;
    unused_names(opts, &used)?;
    Ok(changed)
}

/// Injects one object given as JSON (an admission request's Pod): the injected object, or
/// None when nothing changed. The object is refused before any copy of it is made when it is
/// deeper or holds more values than a tree may ([`yaml::check_json`]).
pub fn inject_json(
    object: &serde_json::Value,
    opts: &Options,
) -> Result<Option<serde_json::Value>, InjectError> {
    yaml::check_json(object)?;
    let mut doc = Node::from_json(object);
    let changed = inject_doc(&mut doc, opts)?;
    Ok((!changed.is_empty()).then(|| doc.to_json()))
}

fn inject_in(doc: &mut Node, opts: &Options, used: &mut Used) -> Result<Vec<String>, InjectError> {
    let mut changed = Vec::new();
    for loc in manifest::locate(doc) {
        let Some(node) = manifest::node_at_mut(doc, &loc.path) else {
            continue;
        };
        let did = match loc.origin {
            Origin::Kubernetes => inject_template(node, &loc, opts, used)?,
            Origin::Buildkite => buildkite::inject(node, &loc, opts, used)?,
            Origin::ContainerSpec => false,
        };
        if did {
            changed.push(loc.object.clone());
        }
    }
    Ok(changed)
}

fn unused_names(opts: &Options, used: &Used) -> Result<(), InjectError> {
    let names = opts
        .mains
        .iter()
        .chain(opts.ready.iter().map(|(s, _)| s))
        .chain(opts.entrypoints.iter().map(|(s, _)| s));
    for n in names {
        if !used.0.contains(n) {
            return Err(InjectError::Usage(format!(
                "no pod has a container named {n:?}"
            )));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------------

/// The options for one pod, after annotations.
pub struct Settings {
    pub mains: Vec<String>,
    /// The mains came from `--main`, which names containers across all the input's pods;
    /// an annotation names this pod's own.
    pub mains_from_options: bool,
    pub ready: BTreeMap<String, String>,
    pub native: bool,
    pub entrypoints: BTreeMap<String, Vec<String>>,
    pub requires: bool,
    pub auto_ready: bool,
    pub wait_timeout: Option<String>,
}

impl Settings {
    /// What the user says a container's image runs.
    pub fn entrypoint(&self, container: &str) -> Option<&[String]> {
        self.entrypoints.get(container).map(Vec::as_slice)
    }
}

fn settings(
    opts: &Options,
    annotations: &BTreeMap<String, String>,
    object: &str,
) -> Result<Settings, InjectError> {
    let bad = |key: &str, m: String| pod_error(object, format!("annotation {key}: {m}"));
    let mains = if !opts.mains.is_empty() {
        opts.mains.clone()
    } else {
        annotations
            .get(annotation::MAIN)
            .map(|v| command::split_list(v))
            .unwrap_or_default()
    };
    let mut ready = BTreeMap::new();
    if let Some(v) = annotations.get(annotation::READY) {
        for item in command::split_list(v) {
            let (s, t) = parse_ready(&item).map_err(|m| bad(annotation::READY, m))?;
            ready.insert(s, t);
        }
    }
    ready.extend(opts.ready.iter().cloned());
    let boolean =
        |given: Option<bool>, key: &str, default: bool| match (given, annotations.get(key)) {
            (Some(b), _) => Ok(b),
            (None, None) => Ok(default),
            (None, Some(v)) => match v.as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                other => Err(bad(key, format!("{other:?} is not true or false"))),
            },
        };
    let native = boolean(opts.native, annotation::NATIVE, false)?;
    let requires = boolean(opts.requires, annotation::REQUIRES, true)?;
    let auto_ready = boolean(opts.auto_ready, annotation::AUTO_READY, true)?;
    let wait_timeout = match (
        &opts.wait_timeout,
        annotations.get(annotation::WAIT_TIMEOUT),
    ) {
        (Some(t), _) => Some(t.clone()),
        (None, Some(t)) => {
            supervisor::clock::parse_duration(t).map_err(|e| bad(annotation::WAIT_TIMEOUT, e))?;
            Some(t.clone())
        }
        (None, None) => None,
    };
    let mut entrypoints =
        annotated_entrypoints(annotations).map_err(|m| bad(annotation::ENTRYPOINTS, m))?;
    entrypoints.extend(opts.entrypoints.iter().cloned());
    Ok(Settings {
        mains,
        mains_from_options: !opts.mains.is_empty(),
        ready,
        native,
        entrypoints,
        requires,
        auto_ready,
        wait_timeout,
    })
}

/// The `supervisor/entrypoints` annotation: container name -> what its image runs.
pub fn annotated_entrypoints(
    annotations: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, Vec<String>>, String> {
    match annotations.get(annotation::ENTRYPOINTS) {
        None => Ok(BTreeMap::new()),
        Some(v) => {
            serde_json::from_str(v).map_err(|e| format!("not a JSON object of string arrays: {e}"))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Kubernetes pods
// ---------------------------------------------------------------------------------------------

fn typed_spec(spec: &Node, object: &str) -> Result<PodSpec, InjectError> {
    serde_json::from_value(spec.to_json())
        .map_err(|e| pod_error(object, format!("not a valid pod spec: {e}")))
}

fn annotations_of(template: &Node) -> BTreeMap<String, String> {
    template
        .at(&["metadata", "annotations"])
        .map(Node::to_json)
        .and_then(|a| serde_json::from_value(a).ok())
        .unwrap_or_default()
}

/// A pod template: its app containers are the mains and the sidecars.
fn inject_template(
    template: &mut Node,
    loc: &Location,
    opts: &Options,
    used: &mut Used,
) -> Result<bool, InjectError> {
    let object = loc.object.as_str();
    let annotations = annotations_of(template);
    if annotations.get(annotation::INJECT).map(String::as_str) == Some("false") {
        return Ok(false);
    }
    let settings = settings(opts, &annotations, object)?;
    let Some(spec_node) = template.get_mut("spec") else {
        return Ok(false);
    };
    let spec = typed_spec(spec_node, object)?;
    let members = Member::of_pod(&spec, &settings);
    let names = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .map(|c| &c.name);
    for n in names {
        if settings.entrypoints.contains_key(n) || settings.ready.contains_key(n) {
            used.0.insert(n.clone());
        }
    }
    let mains = choose_mains(&members, &settings, object, used)?;
    let pod = plan::Pod {
        object,
        members,
        mains,
        restart: plan::restart_policy(&spec),
        termination_grace_s: spec.termination_grace_period_seconds.unwrap_or(30),
        native: settings.native,
    };
    let plan = plan::plan(&pod, &settings, used)?;
    let mut commands = BTreeMap::new();
    for m in pod.members.iter().filter(|m| !m.wired()) {
        if let Some(mut argv) = plan.flags(&m.name) {
            argv.extend(original_command(m, &settings, object)?);
            commands.insert(m.name.clone(), argv);
        }
    }
    if commands.is_empty() {
        return Ok(false);
    }
    tree::apply_pod(spec_node, &spec, &plan, &commands, &opts.image);
    let check: Result<PodSpec, String> = manifest::strict(&spec_node.to_json());
    check.map_err(|e| {
        pod_error(
            object,
            format!("internal error: the injected pod spec does not parse: {e}"),
        )
    })?;
    Ok(true)
}

/// The mains: those the options name, else the only app container, else (all wired already)
/// those that run `supervisor main`. A native sidecar is never one.
fn choose_mains(
    members: &[Member],
    settings: &Settings,
    object: &str,
    used: &mut Used,
) -> Result<Vec<String>, InjectError> {
    if let Some(n) = members
        .iter()
        .find(|m| m.native && settings.mains.contains(&m.name))
    {
        return Err(pod_error(
            object,
            format!(
                "{} is a native sidecar (an init container with restartPolicy: Always), not a main container",
                n.name
            ),
        ));
    }
    let members: Vec<&Member> = members.iter().filter(|m| !m.native).collect();
    let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
    let listed = names.join(", ");
    let found: Vec<String> = settings
        .mains
        .iter()
        .filter(|n| names.contains(&n.as_str()))
        .cloned()
        .collect();
    if !found.is_empty() {
        used.0.extend(found.iter().cloned());
        return Ok(found);
    }
    // `--main` naming none of this pod's containers says nothing about it: a pod with one
    // container is still its own main (docs/kubectl-supervise.md). An annotation names the
    // pod's own containers: naming none is a mistake.
    let lone = members.len() == 1 && settings.mains_from_options;
    if !settings.mains.is_empty() && !lone {
        return Err(pod_error(
            object,
            format!(
                "no container named {} (containers: {listed})",
                settings.mains.join(" or ")
            ),
        ));
    }
    if members.len() == 1 {
        return Ok(vec![members[0].name.clone()]);
    }
    if members.iter().all(|m| m.wired()) {
        return Ok(members
            .iter()
            .filter(|m| matches!(m.runs(), Some(Parsed::Main(_))))
            .map(|m| m.name.clone())
            .collect());
    }
    Err(pod_error(
        object,
        format!(
            "{} containers ({listed}): name the main ones with --main NAME or the {} annotation",
            members.len(),
            annotation::MAIN
        ),
    ))
}

/// What the container ran before: its `command`, else its image's ENTRYPOINT (and CMD when it
/// has no `args`, since a `command` of ours makes Kubernetes ignore the image's CMD).
fn original_command(
    m: &Member,
    settings: &Settings,
    object: &str,
) -> Result<Vec<String>, InjectError> {
    let c = &m.container;
    if let Some(cmd) = &c.command {
        return Ok(cmd.clone());
    }
    if let Some(words) = settings.entrypoints.get(&m.name) {
        return Ok(words.clone());
    }
    let image = c.image.as_deref().unwrap_or("");
    if let Some(v) = images::image_command(image, c.args.is_some()) {
        return Ok(v);
    }
    Err(pod_error(
        object,
        format!(
            "container {} has no command and the entrypoint of its image {image:?} is not known: give it with --entrypoint {}='[\"...\"]' (the image's ENTRYPOINT, followed by its CMD when the container has no args)",
            m.name, m.name
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_values() {
        assert_eq!(
            parse_ready("dind=unix:/var/run/dind/docker.sock"),
            Ok(("dind".into(), "unix:/var/run/dind/docker.sock".into()))
        );
        assert!(parse_ready("dind").is_err());
        assert!(parse_ready("dind=ftp://x").is_err());
        assert_eq!(
            parse_entrypoint(r#"app=["/bin/app", "serve"]"#),
            Ok(("app".into(), vec!["/bin/app".into(), "serve".into()]))
        );
        assert_eq!(
            parse_entrypoint("app=/bin/app serve"),
            Ok(("app".into(), vec!["/bin/app".into(), "serve".into()]))
        );
        assert!(parse_entrypoint("=x").is_err());
    }

    /// Found by the `inject` fuzz target: a blank line in a plain scalar is a newline, and a
    /// container name holding one split the error listing the containers over two lines.
    #[test]
    fn an_error_is_one_line_whatever_the_names_hold() {
        let pod = concat!(
            "kind: Pod\n",
            "metadata:\n",
            "  name: \"p\\tq\"\n",
            "spec:\n",
            "  containers:\n",
            "    - name: a\n",
            "\n",
            "        b\n",
            "      image: x\n",
            "    - name: c\n",
            "      image: w\n",
        );
        let e = inject_str(pod, &Options::default())
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "Pod/p\\tq: 2 containers (a\\nb, c): name the main ones with --main NAME or the supervisor/main annotation"
        );
    }
}
