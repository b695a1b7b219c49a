//! The planner: who is main, who is sidecar, and every file between them.
//!
//! Theory of operation. Every pod `inject` wires goes through [`plan`], whatever produced it: a
//! Kubernetes pod template, or the pod agent-stack-k8s builds for a Buildkite step (its podSpec
//! containers are the mains, its `sidecars` native sidecars). The front ends describe the pod
//! as a [`Pod`]: its containers with their supervisor command lines parsed, the names of the
//! mains, the restart policy, the termination grace period and whether the sidecars are
//! native. [`plan`] decides from that and the [`Settings`] alone, with no tree in sight, what
//! each container's supervisor is told ([`MainWiring`], [`SidecarWiring`]); [`main_flags`] and
//! [`sidecar_flags`] turn that into words. Containers wired already are read, never changed:
//! their markers and ready files become what the others wait for.

use super::{InjectError, Settings, Used, pod_error};
use crate::command::{self, Invocation, Place};
use crate::images;
use k8s_openapi::api::core::v1::{Container, PodSpec};
use std::collections::BTreeMap;
use std::time::Duration;
use supervisor::config::Parsed;

/// The emptyDir that carries the binary and the pod's marker and ready files.
pub const VOLUME: &str = "supervisor";
pub const MOUNT_PATH: &str = "/supervisor";
pub const BINARY: &str = "/supervisor/bin/supervisor";

/// A container of the pod, with the supervisor command lines it runs.
pub struct Member {
    pub name: String,
    pub container: Container,
    pub invocations: Vec<Invocation>,
    /// A native sidecar already (an init container with `restartPolicy: Always`).
    pub native: bool,
    /// How to tell it is ready, when its image is known ([`images::serves`]).
    pub known_target: Option<String>,
}

impl Member {
    /// `entrypoint`: what the user says the container's image runs (`--entrypoint`).
    pub fn new(container: &Container, entrypoint: Option<&[String]>) -> Member {
        let image = container.image.as_deref().unwrap_or("");
        let argv = command::effective_argv_with(container, entrypoint).unwrap_or_default();
        let env = command::environment(container);
        Member {
            name: container.name.clone(),
            invocations: command::invocations_with(container, entrypoint),
            container: container.clone(),
            native: container.restart_policy.as_deref() == Some("Always"),
            known_target: images::serves(image, &argv, &env).and_then(|s| s.target),
        }
    }

    /// A pod's app containers, then its native sidecars (init containers with
    /// `restartPolicy: Always`, sidecars whatever the options say).
    pub fn of_pod(spec: &PodSpec, settings: &Settings) -> Vec<Member> {
        let natives = spec
            .init_containers
            .iter()
            .flatten()
            .filter(|c| c.restart_policy.as_deref() == Some("Always"));
        spec.containers
            .iter()
            .chain(natives)
            .map(|c| Member::new(c, settings.entrypoint(&c.name)))
            .collect()
    }

    /// The supervisor running as the container's process, when there is one.
    pub fn runs(&self) -> Option<&Parsed> {
        self.invocations
            .iter()
            .filter(|i| matches!(i.place, Place::Command | Place::Script))
            .find_map(|i| match &i.parsed {
                Ok(p @ (Parsed::Main(_) | Parsed::Sidecar(_))) => Some(p),
                _ => None,
            })
    }

    /// Wired already: it runs a supervisor (even one whose command line does not parse: that
    /// is `check`'s to report, not ours to overwrite).
    pub fn wired(&self) -> bool {
        self.runs().is_some()
            || self
                .invocations
                .iter()
                .any(|i| matches!(i.place, Place::Command | Place::Script) && i.parsed.is_err())
    }
}

/// A pod as the planner sees it.
pub struct Pod<'a> {
    /// How messages name it: `Job/ci`, `step ":docker: build"`.
    pub object: &'a str,
    /// The mains and the sidecars, in the pod's order.
    pub members: Vec<Member>,
    /// The names of the mains among the members.
    pub mains: Vec<String>,
    /// `restartPolicy`: `Always` when the pod does not say.
    pub restart: String,
    pub termination_grace_s: i64,
    /// The classic sidecars become native sidecars (`--native`).
    pub native: bool,
}

impl Pod<'_> {
    fn member(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.name == name)
    }

    fn sidecars(&self) -> impl Iterator<Item = &Member> {
        self.members
            .iter()
            .filter(|m| !self.mains.contains(&m.name))
    }

    /// A Job's pod: it runs to completion.
    fn job_like(&self) -> bool {
        matches!(self.restart.as_str(), "Never" | "OnFailure")
    }

    /// Whether a sidecar is (or becomes) a native sidecar.
    fn is_native(&self, m: &Member) -> bool {
        self.native || m.native
    }

    /// Classic sidecars of a Job must be stopped when the mains are done; in a long-running
    /// pod (and for native sidecars) the pod's own end stops them.
    fn stopped_by_markers(&self, m: &Member) -> bool {
        self.job_like() && !self.is_native(m)
    }

    /// Some sidecar waits for the mains' markers.
    fn any_stopped_by_markers(&self) -> bool {
        self.sidecars().any(|s| self.stopped_by_markers(s))
    }
}

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

/// What the pod will look like: the wiring of each container `inject` (re)writes.
pub struct Plan {
    pub mains: BTreeMap<String, MainWiring>,
    pub sidecar_wiring: BTreeMap<String, SidecarWiring>,
    /// The sidecars that are or become native sidecars: they get a startupProbe.
    pub natives: Vec<String>,
    /// The classic sidecars become native ones (moved among the init containers).
    pub to_native: bool,
}

impl Plan {
    /// The supervisor words a container's command starts with, when it is to be wired.
    pub fn flags(&self, name: &str) -> Option<Vec<String>> {
        match (self.mains.get(name), self.sidecar_wiring.get(name)) {
            (Some(w), _) => Some(main_flags(w)),
            (None, Some(w)) => Some(sidecar_flags(w)),
            (None, None) => None,
        }
    }

    /// Whether the container's supervisor writes to the volume (its mount stays writable).
    pub fn writes(&self, name: &str) -> bool {
        match (self.mains.get(name), self.sidecar_wiring.get(name)) {
            (Some(w), _) => w.done_file.is_some(),
            (None, Some(w)) => w.ready_file.is_some() || w.done_file.is_some(),
            (None, None) => false,
        }
    }

    /// The readiness target of a native sidecar wired now, for its startupProbe.
    pub fn startup_target(&self, name: &str) -> Option<&str> {
        if !self.natives.iter().any(|n| n == name) {
            return None;
        }
        self.sidecar_wiring.get(name)?.ready_when.as_deref()
    }
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

/// The `--grace` a mode has when none is given, from the binary's own parser (so the default
/// is written once, in its option table).
fn default_grace(mode: &str) -> Option<Duration> {
    match supervisor::config::from_argv([BINARY, mode, "--", "true"]).ok()? {
        Parsed::Main(c) => Some(c.stop.grace),
        Parsed::Sidecar(c) => Some(c.stop.grace),
        Parsed::Probe(_) | Parsed::Install(_) => None,
    }
}

/// A `--grace` for `mode` that fits the pod's termination grace period, when the default
/// does not: five sixths of it, so the marker and the stop land before the kubelet's SIGKILL.
pub fn fitting_grace(mode: &str, termination_grace_s: i64) -> Option<String> {
    let default = default_grace(mode).unwrap_or(Duration::MAX);
    fit_grace(default, termination_grace_s)
}

fn fit_grace(default: Duration, termination_grace_s: i64) -> Option<String> {
    if (termination_grace_s as f64) > default.as_secs_f64() {
        return None;
    }
    let ms = termination_grace_s.max(0) * 1000 * 5 / 6;
    Some(if ms % 1000 == 0 || ms >= 2000 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    })
}

/// A pod's `restartPolicy`, `Always` when it does not say.
pub fn restart_policy(spec: &k8s_openapi::api::core::v1::PodSpec) -> String {
    spec.restart_policy
        .clone()
        .unwrap_or_else(|| "Always".into())
}

pub fn file_in_volume(name: &str, ext: &str) -> String {
    format!("{MOUNT_PATH}/{name}.{ext}")
}

/// Decides the wiring of every container of `pod` that is not wired yet.
pub fn plan(pod: &Pod, settings: &Settings, used: &mut Used) -> Result<Plan, InjectError> {
    let sidecars: Vec<String> = pod.sidecars().map(|m| m.name.clone()).collect();
    for s in settings.ready.keys() {
        if pod.mains.contains(s) {
            return Err(pod_error(
                pod.object,
                format!("--ready {s}=...: {s} is a main container, not a sidecar"),
            ));
        }
        if sidecars.contains(s) {
            used.0.insert(s.clone());
        }
    }
    let done_files = if pod.any_stopped_by_markers() {
        main_markers(pod)?
    } else {
        Vec::new()
    };
    let side = sidecar_side(pod, settings, &done_files)?;
    let mains = main_side(pod, settings, &side);
    Ok(Plan {
        mains,
        sidecar_wiring: side.wiring,
        natives: pod
            .sidecars()
            .filter(|s| pod.is_native(s))
            .map(|s| s.name.clone())
            .collect(),
        to_native: pod.native,
    })
}

/// The markers the classic sidecars of a Job wait for: each main's `--done-file` (the one a
/// wired main already writes, or the one it gets now).
fn main_markers(pod: &Pod) -> Result<Vec<String>, InjectError> {
    let sidecar_todo = pod
        .sidecars()
        .any(|s| !s.wired() && pod.stopped_by_markers(s));
    let mut done_files = Vec::new();
    for m in pod.mains.iter().filter_map(|m| pod.member(m)) {
        let done = match m.runs() {
            Some(Parsed::Main(c)) => c.done_file.as_ref().map(|p| p.display().to_string()),
            Some(_) => {
                return Err(pod_error(
                    pod.object,
                    format!(
                        "container {} already runs `supervisor sidecar`, not main",
                        m.name
                    ),
                ));
            }
            None => Some(file_in_volume(&m.name, "done")),
        };
        match done {
            Some(d) => done_files.push(d),
            None if sidecar_todo => {
                return Err(pod_error(
                    pod.object,
                    format!(
                        "container {} already runs `supervisor main` without --done-file: its sidecars could not know when it ends",
                        m.name
                    ),
                ));
            }
            None => {}
        }
    }
    Ok(done_files)
}

/// What the sidecars become, and what the mains learn from them.
struct SidecarSide {
    wiring: BTreeMap<String, SidecarWiring>,
    /// `file:` targets of the sidecars' ready files: the mains wait for them.
    ready_files: Vec<String>,
    /// The sidecars' markers: the mains require them.
    requires: Vec<String>,
}

fn sidecar_side(
    pod: &Pod,
    settings: &Settings,
    done_files: &[String],
) -> Result<SidecarSide, InjectError> {
    // A sidecar that ends stops the mains: each gets a marker of its own, which every main
    // wired now requires. Not when every main is wired already: none would read it.
    let mains_todo = pod
        .mains
        .iter()
        .any(|m| pod.member(m).is_some_and(|x| !x.wired()));
    let own_marker = settings.requires && mains_todo;
    let mut side = SidecarSide {
        wiring: BTreeMap::new(),
        ready_files: Vec::new(),
        requires: Vec::new(),
    };
    for s in pod.sidecars() {
        let explicit = settings.ready.get(&s.name);
        if let Some(Parsed::Sidecar(c)) = s.runs() {
            if settings.requires {
                let markers = c.done_file.iter().map(|f| f.display().to_string());
                side.requires.extend(markers);
            }
            if explicit.is_some() {
                let Some(f) = &c.ready_file else {
                    return Err(pod_error(
                        pod.object,
                        format!(
                            "container {} already runs `supervisor sidecar` without --ready-file: wire its readiness there",
                            s.name
                        ),
                    ));
                };
                side.ready_files.push(format!("file:{}", f.display()));
            }
            continue;
        }
        if s.wired() {
            continue;
        }
        // What it was told, else what its image is known to need (unless turned off).
        let target = explicit
            .cloned()
            .or_else(|| s.known_target.clone().filter(|_| settings.auto_ready));
        let ready_file = target.as_ref().map(|_| file_in_volume(&s.name, "ready"));
        side.ready_files
            .extend(ready_file.iter().map(|f| format!("file:{f}")));
        let done_file = own_marker.then(|| file_in_volume(&s.name, "done"));
        side.requires.extend(done_file.iter().cloned());
        let classic = pod.stopped_by_markers(s);
        let wiring = SidecarWiring {
            wait_files: if classic {
                done_files.to_vec()
            } else {
                Vec::new()
            },
            on_success: classic && pod.restart == "OnFailure",
            done_file,
            ready_when: target,
            ready_file,
            grace: fitting_grace("sidecar", pod.termination_grace_s),
        };
        side.wiring.insert(s.name.clone(), wiring);
    }
    Ok(side)
}

/// How long the mains wait for their sidecars' readiness when nothing says: long enough for
/// a dockerd or a database to start on a busy node, and the same bound the kubelet gives a
/// native sidecar's startupProbe (300 one-second periods).
pub const DEFAULT_WAIT_TIMEOUT: &str = "5m";

fn main_side(pod: &Pod, settings: &Settings, side: &SidecarSide) -> BTreeMap<String, MainWiring> {
    let wait_timeout = (!side.ready_files.is_empty()).then(|| {
        settings
            .wait_timeout
            .clone()
            .unwrap_or_else(|| DEFAULT_WAIT_TIMEOUT.to_string())
    });
    let done_file = pod.any_stopped_by_markers();
    let mut wiring = BTreeMap::new();
    for m in &pod.mains {
        if pod.member(m).is_none_or(Member::wired) {
            continue;
        }
        let w = MainWiring {
            done_file: done_file.then(|| file_in_volume(m, "done")),
            wait_for: side.ready_files.clone(),
            wait_timeout: wait_timeout.clone(),
            requires: side.requires.clone(),
            grace: fitting_grace("main", pod.termination_grace_s),
        };
        wiring.insert(m.clone(), w);
    }
    wiring
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
        // The defaults come from the binary's own option table.
        assert_eq!(default_grace("main"), Some(Duration::from_secs(25)));
        assert_eq!(default_grace("sidecar"), Some(Duration::from_secs(10)));
        assert_eq!(fitting_grace("main", 30), None);
        assert_eq!(fitting_grace("main", 25), Some("20s".into()));
        assert_eq!(fitting_grace("sidecar", 10), Some("8s".into()));
        assert_eq!(fitting_grace("sidecar", 1), Some("833ms".into()));
        assert_eq!(fitting_grace("sidecar", 0), Some("0s".into()));
    }
}
