//! `check`: the wiring mistakes that make a pod hang, fail, or lose its exit code.
//!
//! Theory of operation. Each pod is read as the kubelet would run it ([`manifest::view`]),
//! every supervisor command line in it is found and parsed by the binary's own parser
//! ([`command::invocations`]), and each container gets its slot (init, native sidecar, app).
//! Paths are resolved to (volume, path inside it) through the container's mounts, because two
//! containers see the same file only through the same volume. Then every rule of [`RULES`]
//! runs: each is one function from that picture to findings, so a rule can be read, tested and
//! documented alone (docs/kubectl-supervise.md lists them; a test keeps the list in step).

use crate::command::{self, Invocation, Place};
use crate::images;
use crate::inject;
use crate::manifest::{self, Origin, PodView};
use crate::yaml::{self, Node, YamlError};
use k8s_openapi::api::core::v1::Container;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;
use supervisor::clock::human;
use supervisor::config::{MainConfig, Parsed, SidecarConfig};
use supervisor::readiness::Target;

/// One problem: where, what to change, and which rule found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub object: String,
    pub container: Option<String>,
    pub rule: &'static str,
    pub message: String,
}

impl std::fmt::Display for Finding {
    /// One line, whatever the manifest holds: control characters (a newline in a name, a
    /// path or a script) are written escaped.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let line = match &self.container {
            Some(c) => format!(
                "{}: container {c}: {} [{}]",
                self.object, self.message, self.rule
            ),
            None => format!("{}: {} [{}]", self.object, self.message, self.rule),
        };
        f.write_str(&inject::escape_controls(&line))
    }
}

/// How long a command line shown in a finding may be: a script can be pages long.
const SHOWN_LINE_MAX: usize = 200;

/// A command line as a shell would take it, cut to [`SHOWN_LINE_MAX`] characters.
fn shown_line(words: &[String]) -> String {
    let line = words
        .iter()
        .map(|w| inject::sh_quote(w))
        .collect::<Vec<_>>()
        .join(" ");
    if line.chars().count() <= SHOWN_LINE_MAX {
        return line;
    }
    let cut: String = line.chars().take(SHOWN_LINE_MAX).collect();
    format!("{cut}...")
}

/// A rule: its id (shown in brackets after each finding), what it catches, and the check.
pub struct Rule {
    pub id: &'static str,
    pub summary: &'static str,
    pub check: fn(&Pod) -> Vec<Finding>,
}

/// Every rule, in the order findings are listed.
pub const RULES: &[Rule] = &[
    Rule {
        id: "unknown-field",
        summary: "a field the Kubernetes types do not know (misspelt or misplaced): it would be dropped",
        check: unknown_field,
    },
    Rule {
        id: "command-line",
        summary: "a supervisor command line the binary would reject (unknown option, bad value, a non-loopback quit URL without --allow-remote-quit)",
        check: command_line,
    },
    Rule {
        id: "volume-undefined",
        summary: "a mount names a volume the pod does not define",
        check: volume_undefined,
    },
    Rule {
        id: "job-restart-policy",
        summary: "a Job's pod with restartPolicy other than Never or OnFailure",
        check: job_restart_policy,
    },
    Rule {
        id: "binary-not-installed",
        summary: "the binary runs from a volume that no earlier init container fills with `supervisor install`",
        check: binary_not_installed,
    },
    Rule {
        id: "wrong-slot",
        summary: "a mode in the wrong place: install outside a run-to-completion init container, main in an init container, sidecar in one without restartPolicy: Always, probe as a command, main or sidecar in a probe",
        check: wrong_slot,
    },
    Rule {
        id: "sidecar-never-stops",
        summary: "a Job's classic sidecar without --wait-file (never stopped), or a native sidecar with one (restarted when it exits)",
        check: sidecar_never_stops,
    },
    Rule {
        id: "not-shared",
        summary: "a marker, ready file or --wait-for path on no volume, or on a volume no other container mounts",
        check: not_shared,
    },
    Rule {
        id: "volume-outlives-pod",
        summary: "a marker, ready file or lease on a volume that outlives the pod (hostPath, a PersistentVolumeClaim, NFS...): a file left by an earlier pod stops the sidecars, or fails the mains, at once",
        check: volume_outlives_pod,
    },
    Rule {
        id: "read-only-write",
        summary: "a file the supervisor writes is on a readOnly mount",
        check: read_only_write,
    },
    Rule {
        id: "writable-mount",
        summary: "the supervisor volume is writable in a container that only reads it (the binary could be replaced)",
        check: writable_mount,
    },
    Rule {
        id: "wait-file-unwritten",
        summary: "a --wait-file that no --done-file writes: the sidecar never stops",
        check: wait_file_unwritten,
    },
    Rule {
        id: "requires-unwritten",
        summary: "a main's --requires that no sidecar's --done-file writes: that sidecar's death goes unnoticed",
        check: requires_unwritten,
    },
    Rule {
        id: "done-file-unwaited",
        summary: "a --done-file that no sidecar waits for (--wait-file) and no main requires (--requires)",
        check: done_file_unwaited,
    },
    Rule {
        id: "ready-file-unwritten",
        summary: "a --wait-for file: that no sidecar's --ready-file writes: the main never starts",
        check: ready_file_unwritten,
    },
    Rule {
        id: "on-failure-any",
        summary: "restartPolicy OnFailure with a sidecar that stops on any marker: the retried main finds it gone",
        check: on_failure_any,
    },
    Rule {
        id: "on-success-never",
        summary: "restartPolicy Never with --on success: a failed main is never retried and the sidecar never stops",
        check: on_success_never,
    },
    Rule {
        id: "grace-too-long",
        summary: "--stop-delay plus --grace not below terminationGracePeriodSeconds: the kubelet's SIGKILL comes first",
        check: grace_too_long,
    },
    Rule {
        id: "native-without-startup-probe",
        summary: "a native sidecar the mains wait for without a startupProbe",
        check: native_without_startup_probe,
    },
    Rule {
        id: "unsupervised-container",
        summary: "an app container of a Job's pod that is not supervised while another is, and that nothing stops: the Job never completes",
        check: unsupervised_container,
    },
    Rule {
        id: "endpoint-disabled",
        summary: "a quit or health URL of a known sidecar whose flag enabling it is missing",
        check: endpoint_disabled,
    },
    Rule {
        id: "unwaited-sidecar",
        summary: "a main talks to a sidecar (DOCKER_HOST naming its socket or port, a port it serves on localhost in the main's environment or arguments) without waiting for it: it may start before the sidecar is ready",
        check: unwaited_sidecar,
    },
    Rule {
        id: "probe-target",
        summary: "`supervisor probe` on a non-loopback host or a port the container does not declare",
        check: probe_target,
    },
];

/// Where a container runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// An init container that runs to completion.
    Init,
    /// An init container with restartPolicy: Always.
    Native,
    /// An app container.
    App,
}

pub struct Member {
    pub container: Container,
    pub slot: Slot,
    /// Position among the init containers.
    pub init_index: Option<usize>,
    pub invocations: Vec<Invocation>,
}

/// A pod, with its containers' supervisor command lines found and parsed.
pub struct Pod {
    pub view: PodView,
    pub members: Vec<Member>,
}

impl Pod {
    pub fn new(view: PodView) -> Pod {
        // A bad annotation is inject's error to report; here it only adds nothing.
        let entrypoints = inject::annotated_entrypoints(&view.annotations).unwrap_or_default();
        let member = |c: &Container, slot, index| {
            let ep = entrypoints.get(&c.name).map(Vec::as_slice);
            Member {
                invocations: command::invocations_with(c, ep),
                container: c.clone(),
                slot,
                init_index: index,
            }
        };
        let mut members = Vec::new();
        for (i, c) in view.spec.init_containers.iter().flatten().enumerate() {
            let slot = if c.restart_policy.as_deref() == Some("Always") {
                Slot::Native
            } else {
                Slot::Init
            };
            members.push(member(c, slot, Some(i)));
        }
        for c in &view.spec.containers {
            members.push(member(c, Slot::App, None));
        }
        Pod { view, members }
    }

    fn finding(&self, c: Option<&Member>, rule: &'static str, message: String) -> Finding {
        Finding {
            object: self.view.object.clone(),
            container: c.map(|m| m.container.name.clone()),
            rule,
            message,
        }
    }

    fn is_pod(&self) -> bool {
        self.view.origin != Origin::ContainerSpec
    }

    /// Every supervisor command line of the pod parses, so what each container writes and
    /// waits for is known: the rules that match one container's files with another's need it
    /// (else a broken line would make its partners look wrong).
    fn complete(&self) -> bool {
        !self.members.iter().any(Member::broken)
    }

    fn restart_policy(&self) -> &str {
        self.view.spec.restart_policy.as_deref().unwrap_or("Always")
    }

    fn job_like(&self) -> bool {
        matches!(self.restart_policy(), "Never" | "OnFailure")
    }

    fn termination_grace(&self) -> i64 {
        self.view
            .spec
            .termination_grace_period_seconds
            .unwrap_or(30)
    }

    fn mains(&self) -> impl Iterator<Item = (&Member, &MainConfig)> {
        self.members.iter().flat_map(|m| {
            m.running().filter_map(move |p| match p {
                Parsed::Main(c) => Some((m, c)),
                _ => None,
            })
        })
    }

    fn sidecars(&self) -> impl Iterator<Item = (&Member, &SidecarConfig)> {
        self.members.iter().flat_map(|m| {
            m.running().filter_map(move |p| match p {
                Parsed::Sidecar(c) => Some((m, c)),
                _ => None,
            })
        })
    }
}

impl Member {
    fn name(&self) -> &str {
        &self.container.name
    }

    /// Command lines the container's own process runs (not probes), parsed.
    fn running(&self) -> impl Iterator<Item = &Parsed> {
        self.invocations
            .iter()
            .filter(|i| matches!(i.place, Place::Command | Place::Script))
            .filter_map(|i| i.parsed.as_ref().ok())
    }

    /// Its own supervisor command line does not parse: what it writes and waits for is not
    /// known.
    fn broken(&self) -> bool {
        self.invocations
            .iter()
            .any(|i| matches!(i.place, Place::Command | Place::Script) && i.parsed.is_err())
    }

    fn supervised(&self) -> bool {
        self.invocations
            .iter()
            .any(|i| matches!(i.place, Place::Command | Place::Script))
    }

    /// Where a path lands: (volume, path inside it, mounted read-only).
    fn resolve(&self, path: &Path) -> Option<(String, PathBuf, bool)> {
        self.container
            .volume_mounts
            .iter()
            .flatten()
            .filter(|m| path.starts_with(&m.mount_path))
            .max_by_key(|m| Path::new(&m.mount_path).components().count())
            .map(|m| {
                let rel = path.strip_prefix(&m.mount_path).unwrap_or(path);
                let rel = match &m.sub_path {
                    Some(s) if !s.is_empty() => Path::new(s).join(rel),
                    _ => rel.to_path_buf(),
                };
                (m.name.clone(), normalize(&rel), m.read_only == Some(true))
            })
    }

    /// The files the container's supervisor writes.
    fn writes(&self) -> Vec<(&'static str, PathBuf)> {
        let mut out = Vec::new();
        for p in self.running() {
            match p {
                Parsed::Main(c) => {
                    out.extend(c.done_file.iter().map(|f| ("--done-file", f.clone())));
                }
                Parsed::Sidecar(c) => {
                    out.extend(c.ready_file.iter().map(|f| ("--ready-file", f.clone())));
                    out.extend(c.done_file.iter().map(|f| ("--done-file", f.clone())));
                }
                Parsed::Install(c) => out.push(("install directory", c.dir.clone())),
                Parsed::Probe(_) => {}
            }
        }
        out
    }
}

fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

fn shown(p: &Path) -> String {
    p.display().to_string()
}

/// Every finding for one pod, rule by rule.
///
/// A container whose supervisor command line does not parse gets that error alone: what the
/// other rules would say of it follows from the error, not from its wiring.
pub fn check_pod(view: PodView) -> Vec<Finding> {
    let pod = Pod::new(view);
    let broken: Vec<&str> = pod
        .members
        .iter()
        .filter(|m| m.broken())
        .map(Member::name)
        .collect();
    RULES
        .iter()
        .flat_map(|r| (r.check)(&pod))
        .filter(|f| {
            f.rule == "command-line" || f.container.as_deref().is_none_or(|c| !broken.contains(&c))
        })
        .collect()
}

/// Every finding in one document.
pub fn check_doc(doc: &Node) -> Vec<Finding> {
    let mut out = Vec::new();
    let locations = manifest::locate(doc);
    if locations.is_empty()
        && let Err(e) = manifest::strict_object(doc)
    {
        out.push(Finding {
            object: doc
                .get("kind")
                .and_then(Node::as_str)
                .unwrap_or("document")
                .to_string(),
            container: None,
            rule: "unknown-field",
            message: e,
        });
    }
    for loc in locations {
        match manifest::view(doc, &loc) {
            Ok(view) => out.extend(check_pod(view)),
            Err(e) => out.push(Finding {
                object: loc.object.clone(),
                container: None,
                rule: "unknown-field",
                message: format!("not a pod the Kubernetes types can read: {e}"),
            }),
        }
    }
    out
}

/// Every finding in a YAML (or JSON) stream.
pub fn check_str(text: &str) -> Result<Vec<Finding>, YamlError> {
    Ok(yaml::parse(text)?.iter().flat_map(check_doc).collect())
}

// ---------------------------------------------------------------------------------------------
// The rules
// ---------------------------------------------------------------------------------------------

fn unknown_field(pod: &Pod) -> Vec<Finding> {
    pod.view
        .unknown_field
        .iter()
        .map(|e| {
            pod.finding(
                None,
                "unknown-field",
                format!("{e}: Kubernetes would drop it; fix its name or place"),
            )
        })
        .collect()
}

fn command_line(pod: &Pod) -> Vec<Finding> {
    let mut out = Vec::new();
    for m in &pod.members {
        for inv in &m.invocations {
            if let Err(e) = &inv.parsed {
                let env = if inv.from_env.is_empty() {
                    String::new()
                } else {
                    format!(" (with {})", inv.from_env.join(", "))
                };
                out.push(pod.finding(
                    Some(m),
                    "command-line",
                    format!("`{}`{env} would not start: {e}", shown_line(&inv.written)),
                ));
            }
        }
    }
    out
}

fn volume_undefined(pod: &Pod) -> Vec<Finding> {
    if !pod.is_pod() {
        return Vec::new();
    }
    let volumes: Vec<&str> = pod
        .view
        .spec
        .volumes
        .iter()
        .flatten()
        .map(|v| v.name.as_str())
        .collect();
    let mut out = Vec::new();
    for m in &pod.members {
        for mount in m.container.volume_mounts.iter().flatten() {
            if !volumes.contains(&mount.name.as_str()) {
                out.push(pod.finding(
                    Some(m),
                    "volume-undefined",
                    format!(
                        "mounts volume {:?}, which the pod does not define",
                        mount.name
                    ),
                ));
            }
        }
    }
    out
}

fn job_restart_policy(pod: &Pod) -> Vec<Finding> {
    let policy = pod.restart_policy();
    if matches!(pod.view.kind.as_str(), "Job" | "CronJob") && !pod.job_like() {
        return vec![pod.finding(
            None,
            "job-restart-policy",
            format!("a Job's pod needs restartPolicy Never or OnFailure, not {policy}"),
        )];
    }
    Vec::new()
}

fn binary_not_installed(pod: &Pod) -> Vec<Finding> {
    if !pod.is_pod() {
        return Vec::new();
    }
    // (volume, directory inside it, init index) of every install.
    let installs: Vec<(String, PathBuf, usize)> = pod
        .members
        .iter()
        .filter(|m| m.slot == Slot::Init)
        .flat_map(|m| {
            m.running().filter_map(move |p| match p {
                Parsed::Install(c) => m
                    .resolve(&c.dir)
                    .map(|(v, rel, _)| (v, rel, m.init_index.unwrap_or(usize::MAX))),
                _ => None,
            })
        })
        .collect();
    let mut out = Vec::new();
    for m in &pod.members {
        for inv in &m.invocations {
            let bin = Path::new(inv.binary());
            let Some((vol, rel, _)) = m.resolve(bin) else {
                continue;
            };
            let ok = installs.iter().any(|(v, dir, idx)| {
                *v == vol
                    && rel.parent() == Some(dir.as_path())
                    && match m.slot {
                        Slot::App => true,
                        _ => m.init_index.is_some_and(|i| i > *idx),
                    }
            });
            if !ok {
                out.push(pod.finding(
                    Some(m),
                    "binary-not-installed",
                    format!(
                        "runs {} from volume {vol:?}, but no earlier init container runs `supervisor install` into {}",
                        shown(bin),
                        shown(bin.parent().unwrap_or(bin))
                    ),
                ));
                break;
            }
        }
    }
    out
}

fn wrong_slot(pod: &Pod) -> Vec<Finding> {
    let mut out = Vec::new();
    for m in &pod.members {
        for inv in &m.invocations {
            let Ok(p) = &inv.parsed else { continue };
            let problem = match (p, &inv.place, m.slot) {
                (Parsed::Probe(_), Place::Command, _) => {
                    Some("`supervisor probe` is a one-shot check: use it in an exec probe, not as the container's command".to_string())
                }
                (Parsed::Main(_) | Parsed::Sidecar(_) | Parsed::Install(_), Place::Probe(which), _) => {
                    Some(format!("{which} should run `supervisor probe`"))
                }
                (Parsed::Install(_), _, Slot::App | Slot::Native) => Some(
                    "`supervisor install` belongs in an init container that runs to completion".into(),
                ),
                (Parsed::Main(_), _, Slot::Init | Slot::Native) => Some(
                    "`supervisor main` in an init container: make it an app container".into(),
                ),
                (Parsed::Sidecar(_), _, Slot::Init) => Some(
                    "`supervisor sidecar` in an init container without restartPolicy: Always blocks the pod forever: add restartPolicy: Always or make it an app container".into(),
                ),
                _ => None,
            };
            out.extend(problem.map(|p| pod.finding(Some(m), "wrong-slot", p)));
        }
    }
    out
}

fn sidecar_never_stops(pod: &Pod) -> Vec<Finding> {
    let mut out = Vec::new();
    for (m, c) in pod.sidecars() {
        let message = match m.slot {
            Slot::Native if !c.wait_files.is_empty() => {
                "a native sidecar must not use --wait-file: exiting on its own, it is restarted by the kubelet, whose SIGTERM stops it anyway"
            }
            Slot::App
                if pod.is_pod()
                    && pod.job_like()
                    && c.wait_files.is_empty()
                    && c.stale_after.is_none() =>
            {
                "a sidecar of a Job's pod without --wait-file (or SUPERVISOR_WAIT_FILE) is never stopped: wait for the mains' --done-file"
            }
            _ => continue,
        };
        out.push(pod.finding(Some(m), "sidecar-never-stops", message.into()));
    }
    out
}

/// The (option, path) pairs a container's supervisor reads or writes through the volume, and
/// the files or sockets its mains wait for.
fn shared_paths(m: &Member) -> Vec<(&'static str, PathBuf)> {
    let mut out = m.writes();
    for p in m.running() {
        match p {
            Parsed::Sidecar(c) => {
                out.extend(c.wait_files.iter().map(|f| ("--wait-file", f.clone())))
            }
            Parsed::Main(c) => {
                out.extend(c.wait_for.iter().filter_map(|t| match t {
                    Target::File(f) | Target::Unix(f) => Some(("--wait-for", f.clone())),
                    _ => None,
                }));
                out.extend(c.requires.iter().map(|f| ("--requires", f.clone())));
            }
            _ => {}
        }
    }
    out
}

fn not_shared(pod: &Pod) -> Vec<Finding> {
    let mut out = Vec::new();
    for m in &pod.members {
        for (what, path) in shared_paths(m) {
            match m.resolve(&path) {
                None => out.push(pod.finding(
                    Some(m),
                    "not-shared",
                    format!("{what} {} is on no volume: other containers cannot see it; put it on a shared emptyDir", shown(&path)),
                )),
                Some((vol, _, _)) if pod.is_pod() && what != "install directory" => {
                    let shared = pod.members.iter().any(|o| {
                        o.name() != m.name()
                            && o.container.volume_mounts.iter().flatten().any(|x| x.name == vol)
                    });
                    if !shared {
                        out.push(pod.finding(
                            Some(m),
                            "not-shared",
                            format!("{what} {} is on volume {vol:?}, which no other container mounts", shown(&path)),
                        ));
                    }
                }
                Some(_) => {}
            }
        }
    }
    out
}

fn read_only_write(pod: &Pod) -> Vec<Finding> {
    let mut out = Vec::new();
    for m in &pod.members {
        for (what, path) in m.writes() {
            if let Some((vol, _, true)) = m.resolve(&path) {
                out.push(pod.finding(
                    Some(m),
                    "read-only-write",
                    format!(
                        "{what} {} is written, but volume {vol:?} is mounted readOnly here",
                        shown(&path)
                    ),
                ));
            }
        }
    }
    out
}

fn writable_mount(pod: &Pod) -> Vec<Finding> {
    let mut out = Vec::new();
    for m in &pod.members {
        let written: Vec<String> = m
            .writes()
            .iter()
            .filter_map(|(_, p)| m.resolve(p).map(|r| r.0))
            .collect();
        let mut read: Vec<String> = Vec::new();
        for inv in &m.invocations {
            read.extend(m.resolve(Path::new(inv.binary())).map(|r| r.0));
        }
        // Sockets (`--wait-for unix:`) are another program's business, not ours.
        for (what, p) in shared_paths(m) {
            let socket = what == "--wait-for"
                && m.running().any(|x| {
                    matches!(x, Parsed::Main(c) if c.wait_for.iter().any(|t| matches!(t, Target::Unix(u) if *u == p)))
                });
            if !socket {
                read.extend(m.resolve(&p).map(|r| r.0));
            }
        }
        for mount in m.container.volume_mounts.iter().flatten() {
            if read.contains(&mount.name)
                && !written.contains(&mount.name)
                && mount.read_only != Some(true)
            {
                out.push(pod.finding(
                    Some(m),
                    "writable-mount",
                    format!(
                        "only reads supervisor files on volume {:?}: mount it readOnly: true",
                        mount.name
                    ),
                ));
            }
        }
    }
    out
}

/// Where files land: (volume, path inside it) of each (container, path).
fn resolved<'a>(files: impl Iterator<Item = (&'a Member, &'a PathBuf)>) -> Vec<(String, PathBuf)> {
    files
        .filter_map(|(m, f)| m.resolve(f))
        .map(|(v, p, _)| (v, p))
        .collect()
}

/// A finding for each (container, path) read that none of `written` writes.
fn unwritten<'a>(
    pod: &Pod,
    read: impl Iterator<Item = (&'a Member, &'a PathBuf)>,
    written: &[(String, PathBuf)],
    rule: &'static str,
    say: impl Fn(&str, &str) -> String,
) -> Vec<Finding> {
    if !pod.is_pod() || !pod.complete() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (m, f) in read {
        if let Some((v, p, _)) = m.resolve(f)
            && !written.contains(&(v.clone(), p))
        {
            out.push(pod.finding(Some(m), rule, say(&shown(f), &v)));
        }
    }
    out
}

/// Every marker: the mains' and the sidecars' --done-file.
fn done_files(pod: &Pod) -> Vec<(String, PathBuf)> {
    let mains = pod
        .mains()
        .filter_map(|(m, c)| c.done_file.as_ref().map(|f| (m, f)));
    let sidecars = pod
        .sidecars()
        .filter_map(|(m, c)| c.done_file.as_ref().map(|f| (m, f)));
    resolved(mains.chain(sidecars))
}

fn wait_file_unwritten(pod: &Pod) -> Vec<Finding> {
    let waits = pod
        .sidecars()
        .flat_map(|(m, c)| c.wait_files.iter().map(move |f| (m, f)));
    unwritten(
        pod,
        waits,
        &done_files(pod),
        "wait-file-unwritten",
        |f, v| {
            format!(
                "waits for {f} (volume {v:?}), but no `supervisor main --done-file` (nor another sidecar's) writes it: the sidecar never stops"
            )
        },
    )
}

fn requires_unwritten(pod: &Pod) -> Vec<Finding> {
    let markers = resolved(
        pod.sidecars()
            .filter_map(|(m, c)| c.done_file.as_ref().map(|f| (m, f))),
    );
    let requires = pod
        .mains()
        .flat_map(|(m, c)| c.requires.iter().map(move |f| (m, f)));
    unwritten(pod, requires, &markers, "requires-unwritten", |f, v| {
        format!(
            "requires {f} (volume {v:?}), but no `supervisor sidecar --done-file` writes it: that sidecar's death would go unnoticed; give the sidecar --done-file={f}"
        )
    })
}

fn done_file_unwaited(pod: &Pod) -> Vec<Finding> {
    if !pod.is_pod() || !pod.complete() {
        return Vec::new();
    }
    let waited = pod
        .sidecars()
        .flat_map(|(m, c)| c.wait_files.iter().map(move |f| (m, f)));
    let required = pod
        .mains()
        .flat_map(|(m, c)| c.requires.iter().map(move |f| (m, f)));
    let watched = resolved(waited.chain(required));
    let mains = pod.mains().map(|(m, c)| (m, &c.done_file, "--wait-file"));
    let sidecars = pod
        .sidecars()
        .map(|(m, c)| (m, &c.done_file, "main --requires or sidecar --wait-file"));
    let mut out = Vec::new();
    for (m, f, how) in mains.chain(sidecars) {
        if let Some(f) = f
            && let Some((v, p, _)) = m.resolve(f)
            && !watched.contains(&(v, p))
        {
            out.push(pod.finding(
                Some(m),
                "done-file-unwaited",
                format!("writes {}, but nothing watches it ({how})", shown(f)),
            ));
        }
    }
    out
}

fn ready_file_unwritten(pod: &Pod) -> Vec<Finding> {
    let ready = resolved(
        pod.sidecars()
            .filter_map(|(m, c)| c.ready_file.as_ref().map(|f| (m, f))),
    );
    let waits = pod.mains().flat_map(|(m, c)| {
        c.wait_for.iter().filter_map(move |t| match t {
            Target::File(f) => Some((m, f)),
            _ => None,
        })
    });
    unwritten(pod, waits, &ready, "ready-file-unwritten", |f, _| {
        format!(
            "waits for file:{f}, but no sidecar's --ready-file writes it: the main never starts"
        )
    })
}

fn on_failure_any(pod: &Pod) -> Vec<Finding> {
    if !pod.is_pod() || pod.restart_policy() != "OnFailure" {
        return Vec::new();
    }
    pod.sidecars()
        .filter(|(m, c)| {
            m.slot == Slot::App
                && !c.wait_files.is_empty()
                && c.on == supervisor::config::OnPolicy::Any
        })
        .map(|(m, _)| {
            pod.finding(
                Some(m),
                "on-failure-any",
                "with restartPolicy OnFailure the sidecar needs --on success: the first failed attempt stops it, and the retry finds it gone".into(),
            )
        })
        .collect()
}

fn on_success_never(pod: &Pod) -> Vec<Finding> {
    if !pod.is_pod() || pod.restart_policy() != "Never" {
        return Vec::new();
    }
    pod.sidecars()
        .filter(|(m, c)| m.slot == Slot::App && c.on == supervisor::config::OnPolicy::Success)
        .map(|(m, _)| {
            pod.finding(
                Some(m),
                "on-success-never",
                "--on success with restartPolicy Never: a failed main is never retried, and this sidecar would not stop on its marker; use --on any".into(),
            )
        })
        .collect()
}

/// How long a supervisor may take to stop after a stop request: `--stop-delay`, then `--grace`.
fn stop_budget(p: &Parsed) -> Option<(Duration, Duration)> {
    match p {
        Parsed::Main(c) => Some((c.stop.stop_delay, c.stop.grace)),
        Parsed::Sidecar(c) => Some((c.stop.stop_delay, c.stop.grace)),
        _ => None,
    }
}

fn grace_too_long(pod: &Pod) -> Vec<Finding> {
    let period = pod.termination_grace();
    if !pod.is_pod() || period <= 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    for m in &pod.members {
        for p in m.running() {
            let Some((delay, grace)) = stop_budget(p) else {
                continue;
            };
            if (delay + grace).as_secs_f64() < period as f64 {
                continue;
            }
            let what = if delay.is_zero() {
                format!("--grace {}", human(grace))
            } else {
                format!(
                    "--stop-delay {} plus --grace {} ({})",
                    human(delay),
                    human(grace),
                    human(delay + grace)
                )
            };
            out.push(pod.finding(
                Some(m),
                "grace-too-long",
                format!(
                    "{what} is not below terminationGracePeriodSeconds {period}s: the kubelet's SIGKILL comes first; lower it or raise the period"
                ),
            ));
        }
    }
    out
}

fn native_without_startup_probe(pod: &Pod) -> Vec<Finding> {
    let waited: Vec<(String, PathBuf)> = pod
        .mains()
        .flat_map(|(m, c)| {
            c.wait_for.iter().filter_map(move |t| match t {
                Target::File(f) => m.resolve(f).map(|(v, p, _)| (v, p)),
                _ => None,
            })
        })
        .collect();
    pod.sidecars()
        .filter(|(m, c)| {
            m.slot == Slot::Native
                && m.container.startup_probe.is_none()
                && c.ready_file
                    .as_ref()
                    .and_then(|f| m.resolve(f))
                    .is_some_and(|(v, p, _)| waited.contains(&(v, p)))
        })
        .map(|(m, c)| {
            let target = c.ready_when.first().map(ToString::to_string).unwrap_or_else(|| "TARGET".into());
            pod.finding(
                Some(m),
                "native-without-startup-probe",
                format!("the mains wait for this native sidecar, but it has no startupProbe: add one running `supervisor probe {target}` so the kubelet starts the containers after it only once it is ready"),
            )
        })
        .collect()
}

/// Whether some main's quit URL stops this container: a known quit endpoint of its image, or
/// a port it declares.
fn quit_by_a_main(pod: &Pod, m: &Member) -> bool {
    let image = m.container.image.as_deref().unwrap_or("");
    let declared = declared_ports(m);
    pod.mains().any(|(_, c)| {
        c.quit_urls.iter().any(|u| {
            supervisor::http::is_loopback(&u.host)
                && (declared.contains(&i32::from(u.port))
                    || images::endpoints(image)
                        .any(|e| e.quits && e.port == u.port && u.path.starts_with(e.path)))
        })
    })
}

fn unsupervised_container(pod: &Pod) -> Vec<Finding> {
    if !pod.is_pod() || !pod.job_like() {
        return Vec::new();
    }
    let apps: Vec<&Member> = pod.members.iter().filter(|m| m.slot == Slot::App).collect();
    if !apps.iter().any(|m| m.supervised()) {
        return Vec::new();
    }
    apps.iter()
        .filter(|m| !m.supervised() && !quit_by_a_main(pod, m))
        .map(|m| {
            pod.finding(
                Some(m),
                "unsupervised-container",
                "runs no supervisor while other containers of this Job's pod do: if it never exits, the Job never completes; wrap it (`kubectl supervise inject`) or have a main POST its quit URL".into(),
            )
        })
        .collect()
}

fn endpoint_disabled(pod: &Pod) -> Vec<Finding> {
    let mut urls: Vec<(u16, String)> = Vec::new();
    for (_, c) in pod.mains() {
        urls.extend(
            c.quit_urls
                .iter()
                .filter(|u| supervisor::http::is_loopback(&u.host))
                .map(|u| (u.port, u.path.clone())),
        );
        urls.extend(c.wait_for.iter().filter_map(|t| match t {
            Target::Http(u) if supervisor::http::is_loopback(&u.host) => {
                Some((u.port, u.path.clone()))
            }
            _ => None,
        }));
    }
    let mut out = Vec::new();
    for m in &pod.members {
        let image = m.container.image.as_deref().unwrap_or("");
        let args: Vec<String> = command::effective_argv(&m.container).unwrap_or_default();
        for e in images::endpoints(image) {
            let Some(flag) = e.needs_arg else { continue };
            let used = urls
                .iter()
                .any(|(port, path)| *port == e.port && path.starts_with(e.path));
            if used
                && !args
                    .iter()
                    .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
            {
                out.push(pod.finding(
                    Some(m),
                    "endpoint-disabled",
                    format!(
                        "a main uses its endpoint on port {}{}, which needs the {flag} argument",
                        e.port, e.path
                    ),
                ));
            }
        }
    }
    out
}

/// The ports a member's container declares.
fn declared_ports(m: &Member) -> Vec<i32> {
    let ports = m.container.ports.iter().flatten();
    ports.map(|p| p.container_port).collect()
}

fn probe_target(pod: &Pod) -> Vec<Finding> {
    let mut out = Vec::new();
    for m in &pod.members {
        let ports = declared_ports(m);
        for inv in &m.invocations {
            let Ok(Parsed::Probe(p)) = &inv.parsed else {
                continue;
            };
            for t in &p.targets {
                let (host, port) = match t {
                    Target::Tcp { host, port, .. } => (host.as_str(), *port),
                    Target::Http(u) => (u.host.as_str(), u.port),
                    _ => continue,
                };
                if !supervisor::http::is_loopback(host) {
                    out.push(pod.finding(Some(m), "probe-target", format!("probes {t}: exec probes run inside the container, so probe it on 127.0.0.1")));
                } else if !ports.is_empty() && !ports.contains(&i32::from(port)) {
                    out.push(pod.finding(
                        Some(m),
                        "probe-target",
                        format!("probes port {port}, which the container does not declare"),
                    ));
                }
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// unwaited-sidecar
// ---------------------------------------------------------------------------------------------

/// What a sidecar serves, each socket as (volume, path inside it).
struct Served<'a> {
    member: &'a Member,
    sockets: Vec<(String, PathBuf)>,
    ports: Vec<u16>,
    /// How a main would wait for it, for the message.
    wait_with: Option<String>,
}

/// What a container's daemon runs: the command after `supervisor sidecar ... --`, else its
/// own command.
fn daemon_argv(m: &Member) -> Vec<String> {
    let wrapped = m.running().find_map(|p| match p {
        Parsed::Sidecar(c) => Some(
            c.command
                .iter()
                .map(|w| w.to_string_lossy().into_owned())
                .collect(),
        ),
        _ => None,
    });
    wrapped
        .or_else(|| command::effective_argv(&m.container))
        .unwrap_or_default()
}

fn served(m: &Member) -> Served<'_> {
    let image = m.container.image.as_deref().unwrap_or("");
    let env = command::environment(&m.container);
    let known = images::serves(image, &daemon_argv(m), &env).unwrap_or_default();
    let mut ports = known.ports;
    ports.extend(
        m.container
            .ports
            .iter()
            .flatten()
            .filter_map(|p| u16::try_from(p.container_port).ok()),
    );
    let ready_file = m.running().find_map(|p| match p {
        Parsed::Sidecar(c) => c.ready_file.as_ref().map(|f| format!("file:{}", shown(f))),
        _ => None,
    });
    Served {
        member: m,
        sockets: known
            .sockets
            .iter()
            .filter_map(|p| m.resolve(Path::new(p)).map(|(v, p, _)| (v, p)))
            .collect(),
        ports,
        wait_with: ready_file.or(known.target),
    }
}

/// The ports `host:PORT` names on loopback anywhere in `text` (`localhost:6379`,
/// `tcp://127.0.0.1:2376`, `[::1]:5432`).
fn loopback_ports(text: &str) -> Vec<u16> {
    let mut ports = Vec::new();
    for host in ["localhost:", "127.0.0.1:", "[::1]:"] {
        for (at, _) in text.match_indices(host) {
            let digits: String = text[at + host.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            ports.extend(digits.parse::<u16>().ok());
        }
    }
    ports
}

/// How a main reaches a sidecar, if it does: `DOCKER_HOST` naming one of its sockets or
/// ports, or one of its ports on loopback in the main's environment or arguments.
fn talks_to(main: &Member, s: &Served) -> Option<String> {
    let env = command::environment(&main.container);
    if let Some(host) = images::env_var(&env, "DOCKER_HOST") {
        if let Some(path) = host.strip_prefix("unix://")
            && let Some((v, p, _)) = main.resolve(Path::new(path))
            && s.sockets.contains(&(v, p))
        {
            return Some(format!("DOCKER_HOST {host}"));
        }
        let tls = images::env_var(&env, "DOCKER_TLS_VERIFY").is_some_and(|v| !v.is_empty());
        let local = ["tcp://localhost", "tcp://127.0.0.1", "tcp://[::1]"]
            .iter()
            .any(|p| host.starts_with(p));
        if local
            && let Some(port) = images::docker_tcp_port(host, tls)
            && s.ports.contains(&port)
        {
            return Some(format!("DOCKER_HOST {host}"));
        }
    }
    let words = command::effective_argv(&main.container).unwrap_or_default();
    let texts = env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain(words.iter().map(|w| ("its arguments", w.as_str())));
    for (what, text) in texts {
        if let Some(port) = loopback_ports(text)
            .into_iter()
            .find(|p| s.ports.contains(p))
        {
            return Some(format!("port {port} in {what}"));
        }
    }
    None
}

/// Whether the main waits for the sidecar: a `--wait-for` it satisfies, or the kubelet
/// holding the main until a native sidecar's startupProbe passes.
fn waits_for(main: &Member, cfg: &MainConfig, s: &Served) -> bool {
    let sm = s.member;
    if sm.slot == Slot::Native && sm.container.startup_probe.is_some() {
        return true;
    }
    let ready_file = sm.running().find_map(|p| match p {
        Parsed::Sidecar(c) => c
            .ready_file
            .as_ref()
            .and_then(|f| sm.resolve(f))
            .map(|(v, p, _)| (v, p)),
        _ => None,
    });
    cfg.wait_for
        .iter()
        .any(|t| satisfied_by(main, t, s, ready_file.as_ref()))
}

/// Whether a main's `--wait-for` target is ready only once the sidecar is: its ready file,
/// one of its sockets or ports, or (the `docker` preset) what the preset probes.
fn satisfied_by(
    main: &Member,
    t: &Target,
    s: &Served,
    ready_file: Option<&(String, PathBuf)>,
) -> bool {
    let socket = |path: &Path| {
        main.resolve(path)
            .is_some_and(|(v, p, _)| s.sockets.contains(&(v, p)))
    };
    match t {
        Target::File(f) => main
            .resolve(f)
            .is_some_and(|(v, p, _)| ready_file == Some(&(v, p))),
        Target::Tcp { host, port, .. } => {
            supervisor::http::is_loopback(host) && s.ports.contains(port)
        }
        Target::Http(u) => supervisor::http::is_loopback(&u.host) && s.ports.contains(&u.port),
        Target::Unix(p) | Target::HttpUnix { socket: p, .. } => socket(p),
        Target::Docker(d) => satisfied_by(main, &d.probe, s, ready_file),
    }
}

fn unwaited_sidecar(pod: &Pod) -> Vec<Finding> {
    if !pod.is_pod() || !pod.complete() {
        return Vec::new();
    }
    let sidecars: Vec<Served> = pod
        .members
        .iter()
        .filter(|m| m.slot != Slot::Init && !m.running().any(|p| matches!(p, Parsed::Main(_))))
        .map(served)
        .collect();
    let mut out = Vec::new();
    for (main, cfg) in pod.mains() {
        for s in &sidecars {
            let Some(how) = talks_to(main, s) else {
                continue;
            };
            if waits_for(main, cfg, s) {
                continue;
            }
            let name = s.member.name();
            let fix = match &s.wait_with {
                Some(t) => format!("add --wait-for={t}"),
                None => format!(
                    "make {name} announce its readiness (--ready-when, --ready-file) and wait for it"
                ),
            };
            out.push(pod.finding(
                Some(main),
                "unwaited-sidecar",
                format!("talks to {name} ({how}) but does not wait for it, so it may start before {name} is ready: {fix}"),
            ));
        }
    }
    out
}

/// The kind of a volume that outlives its pod, or None for one that ends with it (emptyDir,
/// a generic ephemeral volume) or that the kubelet writes itself (configMap, secret,
/// downwardAPI, projected: read-only, and another rule's business).
fn lasting_kind(v: &k8s_openapi::api::core::v1::Volume) -> Option<&'static str> {
    if v.empty_dir.is_some()
        || v.ephemeral.is_some()
        || v.config_map.is_some()
        || v.secret.is_some()
        || v.downward_api.is_some()
        || v.projected.is_some()
    {
        return None;
    }
    let kinds = [
        ("hostPath", v.host_path.is_some()),
        ("persistentVolumeClaim", v.persistent_volume_claim.is_some()),
        ("nfs", v.nfs.is_some()),
        ("csi volume", v.csi.is_some()),
        ("image volume", v.image.is_some()),
    ];
    Some(
        kinds
            .iter()
            .find(|(_, is)| *is)
            .map_or("volume that outlives the pod", |(k, _)| k),
    )
}

fn volume_outlives_pod(pod: &Pod) -> Vec<Finding> {
    if !pod.is_pod() {
        return Vec::new();
    }
    let mut seen: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for m in &pod.members {
        for (what, path) in shared_paths(m) {
            let Some((vol, _, _)) = m.resolve(&path) else {
                continue;
            };
            let lasting = pod
                .view
                .spec
                .volumes
                .iter()
                .flatten()
                .find(|v| v.name == vol)
                .and_then(lasting_kind);
            let Some(kind) = lasting.filter(|_| what != "install directory") else {
                continue;
            };
            if seen.contains(&vol) {
                continue;
            }
            out.push(pod.finding(
                None,
                "volume-outlives-pod",
                format!(
                    "volume {vol:?} is a {kind}, so a file left there by an earlier pod ({what} {}) stops the sidecars or fails the mains at once: hold the supervisor's files in an emptyDir",
                    shown(&path)
                ),
            ));
            seen.push(vol);
        }
    }
    out
}
