//! `inject`: add the supervisor wiring to every pod of a stream of documents.
//!
//! Theory of operation. For each pod (see [`crate::manifest`]) the settings come from the
//! options, else the pod template's `supervisor/*` annotations. The pod's app containers are
//! split into mains and sidecars; a container whose command already runs `supervisor main` or
//! `sidecar` (written, or baked into a known image) is left exactly as it is, which is what
//! makes injecting twice a no-op. Each remaining container's command becomes
//! `supervisor MODE [flags] --` followed by what it ran before: its `command`, else the image's
//! ENTRYPOINT (from `--entrypoint`, the annotation or [`crate::images`]), and its `args` stay
//! untouched, so Kubernetes' command/args rules give the original program the same argv. The
//! binary comes from an init container running `supervisor install` into an emptyDir, mounted
//! read-only wherever a container writes nothing there. The flags are decided by two pure
//! functions ([`main_flags`], [`sidecar_flags`]) from what the pod needs; the tree is edited in
//! place, so everything else in the document survives, and the edited pod spec must parse
//! strictly as a Kubernetes PodSpec before anything is written.
//!
//! The library entry points take a document tree ([`inject_doc`]) or text ([`inject_str`]), so
//! the admission webhook applies exactly the same wiring.

use crate::command::{self, Invocation, Place};
use crate::images;
use crate::manifest::{self, Location, Origin};
use crate::yaml::{self, Node, YamlError};
use k8s_openapi::api::core::v1::{Container, PodSpec};
use std::collections::{BTreeMap, BTreeSet};
use supervisor::config::Parsed;

/// The emptyDir that carries the binary and the pod's marker and ready files.
pub const VOLUME: &str = "supervisor";
pub const MOUNT_PATH: &str = "/supervisor";
pub const BINARY: &str = "/supervisor/bin/supervisor";
pub const INSTALL_DIR: &str = "/supervisor/bin";
pub const INSTALL_CONTAINER: &str = "install-supervisor";
/// Where the supervisor image keeps the binary.
pub const IMAGE_BINARY: &str = "/usr/local/bin/supervisor";
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
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InjectError {
    #[error(transparent)]
    Yaml(#[from] YamlError),
    #[error("{object}: {message}")]
    Pod { object: String, message: String },
    #[error("{0}")]
    Usage(String),
}

fn pod_error(object: &str, message: impl Into<String>) -> InjectError {
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
struct Used(BTreeSet<String>);

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
/// None when nothing changed.
pub fn inject_json(
    object: &serde_json::Value,
    opts: &Options,
) -> Result<Option<serde_json::Value>, InjectError> {
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
            Origin::Buildkite => inject_buildkite(node, &loc, opts, used)?,
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
struct Settings {
    mains: Vec<String>,
    ready: BTreeMap<String, String>,
    native: bool,
    entrypoints: BTreeMap<String, Vec<String>>,
    requires: bool,
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
    let mut entrypoints =
        annotated_entrypoints(annotations).map_err(|m| bad(annotation::ENTRYPOINTS, m))?;
    entrypoints.extend(opts.entrypoints.iter().cloned());
    Ok(Settings {
        mains,
        ready,
        native,
        entrypoints,
        requires,
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
// The flags (pure)
// ---------------------------------------------------------------------------------------------

/// What a main's command line must say.
#[derive(Debug, Default, PartialEq)]
pub struct MainWiring {
    pub done_file: Option<String>,
    pub wait_for: Vec<String>,
    pub wait_timeout: Option<String>,
    /// The sidecars' markers: a sidecar that ends stops the main.
    pub requires: Vec<String>,
    pub grace: Option<String>,
}

/// What a sidecar's command line must say.
#[derive(Debug, Default, PartialEq)]
pub struct SidecarWiring {
    pub wait_files: Vec<String>,
    pub on_success: bool,
    /// Its own marker, which the mains `--requires`.
    pub done_file: Option<String>,
    pub ready_when: Option<String>,
    pub ready_file: Option<String>,
    pub grace: Option<String>,
}

pub fn main_flags(w: &MainWiring) -> Vec<String> {
    let mut v = vec![BINARY.to_string(), "main".to_string()];
    v.extend(w.done_file.iter().map(|f| format!("--done-file={f}")));
    v.extend(w.wait_for.iter().map(|t| format!("--wait-for={t}")));
    v.extend(w.wait_timeout.iter().map(|t| format!("--wait-timeout={t}")));
    v.extend(w.requires.iter().map(|f| format!("--requires={f}")));
    v.extend(w.grace.iter().map(|g| format!("--grace={g}")));
    v.push("--".into());
    v
}

pub fn sidecar_flags(w: &SidecarWiring) -> Vec<String> {
    let mut v = vec![BINARY.to_string(), "sidecar".to_string()];
    v.extend(w.wait_files.iter().map(|f| format!("--wait-file={f}")));
    if w.on_success {
        v.push("--on=success".into());
    }
    v.extend(w.done_file.iter().map(|f| format!("--done-file={f}")));
    v.extend(w.ready_when.iter().map(|t| format!("--ready-when={t}")));
    v.extend(w.ready_file.iter().map(|f| format!("--ready-file={f}")));
    v.extend(w.grace.iter().map(|g| format!("--grace={g}")));
    v.push("--".into());
    v
}

/// The supervisor defaults: `main --grace 25s`, `sidecar --grace 10s`.
const MAIN_GRACE_S: f64 = 25.0;
const SIDECAR_GRACE_S: f64 = 10.0;

/// A `--grace` that fits the pod's termination grace period, when the default does not: five
/// sixths of it, so the marker and the stop land before the kubelet's SIGKILL.
pub fn fitting_grace(default_s: f64, termination_grace_s: i64) -> Option<String> {
    if (termination_grace_s as f64) > default_s {
        return None;
    }
    let ms = termination_grace_s.max(0) * 1000 * 5 / 6;
    Some(if ms % 1000 == 0 || ms >= 2000 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    })
}

// ---------------------------------------------------------------------------------------------
// Kubernetes pods
// ---------------------------------------------------------------------------------------------

/// A container's role in the pod.
struct Member {
    name: String,
    container: Container,
    invocations: Vec<Invocation>,
}

impl Member {
    fn new(container: Container, settings: &Settings) -> Member {
        let entrypoint = settings.entrypoints.get(&container.name).map(Vec::as_slice);
        Member {
            name: container.name.clone(),
            invocations: command::invocations_with(&container, entrypoint),
            container,
        }
    }

    /// The supervisor running as the container's process, when there is one.
    fn runs(&self) -> Option<&Parsed> {
        self.invocations
            .iter()
            .filter(|i| matches!(i.place, Place::Command | Place::Script))
            .find_map(|i| match &i.parsed {
                Ok(p @ (Parsed::Main(_) | Parsed::Sidecar(_))) => Some(p),
                _ => None,
            })
    }

    fn wired(&self) -> bool {
        self.runs().is_some()
            || self
                .invocations
                .iter()
                .any(|i| matches!(i.place, Place::Command | Place::Script) && i.parsed.is_err())
    }
}

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

/// What the pod will look like: who is main, who is sidecar, and every file between them.
struct Plan {
    sidecars: Vec<String>,
    main_wiring: BTreeMap<String, MainWiring>,
    sidecar_wiring: BTreeMap<String, SidecarWiring>,
    native: bool,
}

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
    let members: Vec<Member> = spec
        .containers
        .iter()
        .map(|c| Member::new(c.clone(), &settings))
        .collect();
    // Native sidecars wired earlier live among the init containers; options may name them.
    let names: Vec<String> = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .map(|c| c.name.clone())
        .collect();
    for n in settings.entrypoints.keys().chain(settings.ready.keys()) {
        if names.contains(n) {
            used.0.insert(n.clone());
        }
    }
    let mains = choose_mains(&members, &settings, object, used)?;
    let plan = plan(&spec, &members, mains, &settings, opts, object, used)?;
    let todo: Vec<&Member> = members.iter().filter(|m| !m.wired()).collect();
    if todo.is_empty() {
        return Ok(false);
    }
    let mut commands = BTreeMap::new();
    for m in &todo {
        let before = original_command(m, &settings, object)?;
        let mut argv = match (
            plan.main_wiring.get(&m.name),
            plan.sidecar_wiring.get(&m.name),
        ) {
            (Some(w), _) => main_flags(w),
            (None, Some(w)) => sidecar_flags(w),
            (None, None) => continue,
        };
        argv.extend(before);
        commands.insert(m.name.clone(), argv);
    }
    apply(spec_node, &spec, &plan, &commands, opts);
    let check: Result<PodSpec, String> = manifest::strict(&spec_node.to_json());
    check.map_err(|e| {
        pod_error(
            object,
            format!("internal error: the injected pod spec does not parse: {e}"),
        )
    })?;
    Ok(true)
}

fn choose_mains(
    members: &[Member],
    settings: &Settings,
    object: &str,
    used: &mut Used,
) -> Result<Vec<String>, InjectError> {
    let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
    let listed = names.join(", ");
    if !settings.mains.is_empty() {
        let found: Vec<String> = settings
            .mains
            .iter()
            .filter(|n| names.contains(&n.as_str()))
            .cloned()
            .collect();
        if found.is_empty() {
            return Err(pod_error(
                object,
                format!(
                    "no container named {} (containers: {listed})",
                    settings.mains.join(" or ")
                ),
            ));
        }
        used.0.extend(found.iter().cloned());
        return Ok(found);
    }
    if members.len() == 1 {
        return Ok(vec![members[0].name.clone()]);
    }
    if members.iter().all(Member::wired) {
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

fn file_in_volume(name: &str, ext: &str) -> String {
    format!("{MOUNT_PATH}/{name}.{ext}")
}

fn plan(
    spec: &PodSpec,
    members: &[Member],
    mains: Vec<String>,
    settings: &Settings,
    opts: &Options,
    object: &str,
    used: &mut Used,
) -> Result<Plan, InjectError> {
    let sidecars: Vec<String> = members
        .iter()
        .map(|m| m.name.clone())
        .filter(|n| !mains.contains(n))
        .collect();
    let restart = spec.restart_policy.as_deref().unwrap_or("Always");
    let job_like = matches!(restart, "Never" | "OnFailure");
    // Classic sidecars of a Job must stop when the mains are done; in a long-running pod (and
    // for native sidecars) the pod's own end stops them.
    let classic = job_like && !settings.native;
    let tgps = spec.termination_grace_period_seconds.unwrap_or(30);
    let by_name = |n: &str| members.iter().find(|m| m.name == n);

    let mut done_files = Vec::new();
    if classic && !sidecars.is_empty() {
        for m in &mains {
            let Some(member) = by_name(m) else { continue };
            let done = match member.runs() {
                Some(Parsed::Main(c)) => c.done_file.as_ref().map(|p| p.display().to_string()),
                Some(_) => {
                    return Err(pod_error(
                        object,
                        format!("container {m} already runs `supervisor sidecar`, not main"),
                    ));
                }
                None => Some(file_in_volume(m, "done")),
            };
            match done {
                Some(d) => done_files.push(d),
                None if sidecars
                    .iter()
                    .any(|s| by_name(s).is_some_and(|x| !x.wired())) =>
                {
                    return Err(pod_error(
                        object,
                        format!(
                            "container {m} already runs `supervisor main` without --done-file: its sidecars could not know when it ends"
                        ),
                    ));
                }
                None => {}
            }
        }
    }

    // A sidecar that ends stops the mains: each gets a marker of its own, which every main
    // wired now requires. Not when every main is wired already: none would read it.
    let mains_todo = mains.iter().any(|m| by_name(m).is_some_and(|x| !x.wired()));
    let own_marker = settings.requires && mains_todo;
    let mut requires = Vec::new();
    let mut ready_files = Vec::new();
    let mut sidecar_wiring = BTreeMap::new();
    for s in settings.ready.keys() {
        if mains.contains(s) {
            return Err(pod_error(
                object,
                format!("--ready {s}=...: {s} is a main container, not a sidecar"),
            ));
        }
        if sidecars.contains(s) {
            used.0.insert(s.clone());
        }
    }
    for s in &sidecars {
        let Some(member) = by_name(s) else { continue };
        let target = settings.ready.get(s);
        if let Some(Parsed::Sidecar(c)) = member.runs() {
            if settings.requires {
                requires.extend(c.done_file.iter().map(|f| f.display().to_string()));
            }
            if target.is_some() {
                match &c.ready_file {
                    Some(f) => ready_files.push(format!("file:{}", f.display())),
                    None => {
                        return Err(pod_error(
                            object,
                            format!(
                                "container {s} already runs `supervisor sidecar` without --ready-file: wire its readiness there"
                            ),
                        ));
                    }
                }
            }
            continue;
        }
        let ready_file = target.map(|_| file_in_volume(s, "ready"));
        ready_files.extend(ready_file.iter().map(|f| format!("file:{f}")));
        let done_file = own_marker.then(|| file_in_volume(s, "done"));
        requires.extend(done_file.iter().cloned());
        sidecar_wiring.insert(
            s.clone(),
            SidecarWiring {
                wait_files: if classic {
                    done_files.clone()
                } else {
                    Vec::new()
                },
                on_success: classic && restart == "OnFailure",
                done_file,
                ready_when: target.cloned(),
                ready_file,
                grace: fitting_grace(SIDECAR_GRACE_S, tgps),
            },
        );
    }
    let mut main_wiring = BTreeMap::new();
    for m in &mains {
        if by_name(m).is_none_or(Member::wired) {
            continue;
        }
        let wait_timeout = opts
            .wait_timeout
            .clone()
            .filter(|_| !ready_files.is_empty());
        main_wiring.insert(
            m.clone(),
            MainWiring {
                done_file: (classic && !sidecars.is_empty()).then(|| file_in_volume(m, "done")),
                wait_for: ready_files.clone(),
                wait_timeout,
                requires: requires.clone(),
                grace: fitting_grace(MAIN_GRACE_S, tgps),
            },
        );
    }
    Ok(Plan {
        sidecars,
        main_wiring,
        sidecar_wiring,
        native: settings.native,
    })
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
    if let Some(k) = images::known(image) {
        let mut v: Vec<String> = k.entrypoint.iter().map(|s| s.to_string()).collect();
        if c.args.is_none() {
            v.extend(k.cmd.iter().map(|s| s.to_string()));
        }
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
fn ensure_mount(c: &mut Node, read_only: bool) {
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
fn ensure_volume(spec: &mut Node) {
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

/// An `initContainers` list, placed before `containers` when new (where people write it).
fn ensure_init_list(spec: &mut Node) {
    if spec.get("initContainers").is_none_or(Node::is_null) {
        spec.set_before(&["containers"], "initContainers", Node::Seq(Vec::new()));
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

fn seq_of(words: &[String]) -> Node {
    Node::Seq(words.iter().map(|w| Node::text(w.clone())).collect())
}

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

/// Carries out the plan on the pod spec's tree.
fn apply(
    spec: &mut Node,
    typed: &PodSpec,
    plan: &Plan,
    commands: &BTreeMap<String, Vec<String>>,
    opts: &Options,
) {
    ensure_volume(spec);
    let mut natives = Vec::new();
    if let Some(containers) = spec.get_mut("containers").and_then(Node::as_seq_mut) {
        let mut keep = Vec::new();
        for mut c in std::mem::take(containers) {
            let name = c
                .get("name")
                .and_then(Node::as_str)
                .unwrap_or("")
                .to_string();
            if let Some(argv) = commands.get(&name) {
                c.set_after(&["image", "name"], "command", seq_of(argv));
                let writes = plan
                    .main_wiring
                    .get(&name)
                    .map(|w| w.done_file.is_some())
                    .or_else(|| {
                        plan.sidecar_wiring
                            .get(&name)
                            .map(|w| w.ready_file.is_some() || w.done_file.is_some())
                    })
                    .unwrap_or(false);
                ensure_mount(&mut c, !writes);
                if plan.native && plan.sidecars.contains(&name) {
                    c.set_after(&["image", "name"], "restartPolicy", Node::text("Always"));
                    let target = plan
                        .sidecar_wiring
                        .get(&name)
                        .and_then(|w| w.ready_when.as_ref());
                    if let Some(t) = target
                        && c.get("startupProbe").is_none()
                    {
                        c.set("startupProbe", startup_probe(t));
                    }
                    natives.push(c);
                    continue;
                }
            }
            keep.push(c);
        }
        *containers = keep;
    }
    let install = !installs_here(typed);
    if install || !natives.is_empty() {
        ensure_init_list(spec);
        let init = spec.entry("initContainers", || Node::Seq(Vec::new()));
        if let Some(list) = init.and_then(Node::as_seq_mut) {
            if install {
                list.insert(0, install_container(&opts.image));
            }
            list.extend(natives);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Buildkite
// ---------------------------------------------------------------------------------------------

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

/// A `kubernetes` plugin block: the podSpec's containers are the mains (the agent runs their
/// command lines in a shell), `sidecars` the sidecars, which agent-stack-k8s v0.35+ runs as
/// native sidecars: they wait for no marker and are stopped by the kubelet's SIGTERM.
fn inject_buildkite(
    block: &mut Node,
    loc: &Location,
    opts: &Options,
    used: &mut Used,
) -> Result<bool, InjectError> {
    let object = loc.object.as_str();
    let pod = manifest::buildkite_pod(block).map_err(|e| pod_error(object, e))?;
    let settings = settings(opts, &BTreeMap::new(), object)?;
    if block
        .get("sidecars")
        .and_then(Node::as_seq)
        .is_none_or(Vec::is_empty)
    {
        return Ok(false);
    }
    let mains: Vec<Member> = pod
        .containers
        .iter()
        .map(|c| Member::new(c.clone(), &settings))
        .collect();
    let sidecars: Vec<Member> = pod
        .init_containers
        .iter()
        .flatten()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"))
        .map(|c| Member::new(c.clone(), &settings))
        .collect();
    for m in mains.iter().chain(&sidecars) {
        if settings.mains.contains(&m.name) || settings.entrypoints.contains_key(&m.name) {
            used.0.insert(m.name.clone());
        }
    }
    let tgps = pod.termination_grace_period_seconds.unwrap_or(30);
    let own_marker = settings.requires && mains.iter().any(|m| !m.wired());
    let side = buildkite_sidecars(&sidecars, &settings, tgps, own_marker, object, used)?;
    let wiring = MainWiring {
        wait_timeout: opts
            .wait_timeout
            .clone()
            .filter(|_| !side.ready_files.is_empty()),
        wait_for: side.ready_files.clone(),
        requires: side.requires.clone(),
        grace: fitting_grace(MAIN_GRACE_S, tgps),
        ..Default::default()
    };
    let lines = buildkite_main_lines(block, &mains, &wiring, object)?;
    if side.commands.is_empty() && lines.is_empty() {
        return Ok(false);
    }
    apply_buildkite(block, &pod, &side.commands, &lines, opts);
    let check = manifest::buildkite_pod(block);
    check.map_err(|e| {
        pod_error(
            object,
            format!("internal error: the injected step does not parse: {e}"),
        )
    })?;
    Ok(true)
}

/// A Buildkite sidecar's new command, and what else it needs.
struct WiredSidecar {
    argv: Vec<String>,
    /// Its readiness target (for a startupProbe).
    target: Option<String>,
    /// Whether it writes to the volume (a ready file, a marker).
    writes: bool,
}

/// What the sidecars of a Buildkite step become, and what the mains learn from them.
struct BuildkiteSidecars {
    commands: BTreeMap<String, WiredSidecar>,
    /// `file:` targets of the sidecars' ready files.
    ready_files: Vec<String>,
    /// The sidecars' markers.
    requires: Vec<String>,
}

fn buildkite_sidecars(
    sidecars: &[Member],
    settings: &Settings,
    tgps: i64,
    own_marker: bool,
    object: &str,
    used: &mut Used,
) -> Result<BuildkiteSidecars, InjectError> {
    let mut out = BuildkiteSidecars {
        commands: BTreeMap::new(),
        ready_files: Vec::new(),
        requires: Vec::new(),
    };
    for s in sidecars {
        let target = settings.ready.get(&s.name);
        if target.is_some() {
            used.0.insert(s.name.clone());
        }
        if s.wired() {
            if let Some(Parsed::Sidecar(c)) = s.runs() {
                if target.is_some() {
                    let files = c.ready_file.iter().map(|f| format!("file:{}", f.display()));
                    out.ready_files.extend(files);
                }
                if settings.requires {
                    let files = c.done_file.iter().map(|f| f.display().to_string());
                    out.requires.extend(files);
                }
            }
            continue;
        }
        let ready_file = target.map(|_| file_in_volume(&s.name, "ready"));
        out.ready_files
            .extend(ready_file.iter().map(|f| format!("file:{f}")));
        let done_file = own_marker.then(|| file_in_volume(&s.name, "done"));
        out.requires.extend(done_file.iter().cloned());
        let writes = ready_file.is_some() || done_file.is_some();
        let mut argv = sidecar_flags(&SidecarWiring {
            ready_when: target.cloned(),
            ready_file,
            done_file,
            grace: fitting_grace(SIDECAR_GRACE_S, tgps),
            ..Default::default()
        });
        argv.extend(original_command(s, settings, object)?);
        out.commands.insert(
            s.name.clone(),
            WiredSidecar {
                argv,
                target: target.cloned(),
                writes,
            },
        );
    }
    Ok(out)
}

/// Each unwired command container's new command line: `supervisor main ... -- sh -ec
/// '<its lines>'`. Pipeline interpolation (`$$`) still happens first, on the whole text.
fn buildkite_main_lines(
    block: &Node,
    mains: &[Member],
    wiring: &MainWiring,
    object: &str,
) -> Result<BTreeMap<String, String>, InjectError> {
    let mut lines = BTreeMap::new();
    let raw_containers = block
        .at(&["podSpec", "containers"])
        .and_then(Node::as_seq)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for m in mains.iter().filter(|m| !m.wired()) {
        let Some(raw) = raw_containers
            .iter()
            .find(|c| c.get("name").and_then(Node::as_str) == Some(&m.name))
        else {
            continue;
        };
        if raw.get("args").is_some() {
            return Err(pod_error(
                object,
                format!(
                    "container {}: args in a command container are not supported; put them in command",
                    m.name
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
        let flags: Vec<String> = main_flags(wiring).iter().map(|f| sh_quote(f)).collect();
        let line = format!(
            "{} sh -ec {}",
            flags.join(" "),
            sh_quote(&script.join("\n"))
        );
        lines.insert(m.name.clone(), line);
    }
    Ok(lines)
}

fn apply_buildkite(
    block: &mut Node,
    pod: &PodSpec,
    commands: &BTreeMap<String, WiredSidecar>,
    lines: &BTreeMap<String, String>,
    opts: &Options,
) {
    let Some(pod_spec) = block.entry("podSpec", Node::map) else {
        return;
    };
    ensure_volume(pod_spec);
    if !installs_here(pod) {
        ensure_init_list(pod_spec);
        let init = pod_spec.entry("initContainers", || Node::Seq(Vec::new()));
        if let Some(list) = init.and_then(Node::as_seq_mut) {
            list.insert(0, install_container(&opts.image));
        }
    }
    if let Some(cs) = pod_spec.get_mut("containers").and_then(Node::as_seq_mut) {
        for c in cs {
            let name = c
                .get("name")
                .and_then(Node::as_str)
                .unwrap_or("")
                .to_string();
            if let Some(line) = lines.get(&name) {
                c.set("command", Node::Seq(vec![Node::text(line.clone())]));
                ensure_mount(c, true);
            }
        }
    }
    if let Some(cs) = block.get_mut("sidecars").and_then(Node::as_seq_mut) {
        for c in cs {
            let name = c
                .get("name")
                .and_then(Node::as_str)
                .unwrap_or("")
                .to_string();
            if let Some(w) = commands.get(&name) {
                c.set_after(&["image", "name"], "command", seq_of(&w.argv));
                ensure_mount(c, !w.writes);
                if let Some(t) = &w.target
                    && c.get("startupProbe").is_none()
                {
                    c.set("startupProbe", startup_probe(t));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_say_what_the_plan_says() {
        let w = MainWiring {
            done_file: Some("/supervisor/build.done".into()),
            wait_for: vec!["file:/supervisor/dind.ready".into()],
            wait_timeout: Some("2m".into()),
            requires: vec!["/supervisor/dind.done".into()],
            grace: None,
        };
        assert_eq!(
            main_flags(&w),
            [
                BINARY,
                "main",
                "--done-file=/supervisor/build.done",
                "--wait-for=file:/supervisor/dind.ready",
                "--wait-timeout=2m",
                "--requires=/supervisor/dind.done",
                "--"
            ]
        );
        let s = SidecarWiring {
            wait_files: vec!["/supervisor/a.done".into(), "/supervisor/b.done".into()],
            on_success: true,
            done_file: Some("/supervisor/c.done".into()),
            grace: Some("8s".into()),
            ..Default::default()
        };
        assert_eq!(
            sidecar_flags(&s),
            [
                BINARY,
                "sidecar",
                "--wait-file=/supervisor/a.done",
                "--wait-file=/supervisor/b.done",
                "--on=success",
                "--done-file=/supervisor/c.done",
                "--grace=8s",
                "--"
            ]
        );
    }

    #[test]
    fn grace_fits_the_termination_grace_period() {
        assert_eq!(fitting_grace(25.0, 30), None);
        assert_eq!(fitting_grace(25.0, 25), Some("20s".into()));
        assert_eq!(fitting_grace(10.0, 10), Some("8s".into()));
        assert_eq!(fitting_grace(10.0, 1), Some("833ms".into()));
        assert_eq!(fitting_grace(10.0, 0), Some("0s".into()));
    }

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
        assert_eq!(sh_quote("a b'c"), r"'a b'\''c'");
        assert_eq!(sh_quote("--x=/y"), "--x=/y");
    }
}
