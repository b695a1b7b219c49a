//! A seed's pod and schedule: which containers, wired how (as `examples/` wires them), what
//! their programs do, and what the kubelet and the kernel do to them when.
//!
//! Everything random about a run is drawn here, up front, from the seed: the kubelet's own
//! choices during the run (restart back-offs, the deletion's jitter) included. What the run then
//! does with it depends only on the order in which the processes react, which is the point.

use crate::behaviour::{Behaviour, OnStop, OwnEnd};
use crate::rng::Rng;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

/// How many times a container may start (the first start and two restarts).
pub const MAX_STARTS: usize = 3;

/// What the machine's load may add to any step the documentation bounds. Generous on purpose:
/// a correct supervisor ends in milliseconds, so the slack costs time only when one hangs, and
/// a busy machine never turns a late exit into a false "hang".
pub const SLACK: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    Never,
    OnFailure,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Main,
    /// `sidecar --wait-file main.done`.
    Sidecar,
    /// `sidecar --wait-file <that sidecar>.done`: the chain main -> proxy -> shipper.
    Chained(usize),
    /// A native sidecar (restartPolicy Always, no `--wait-file`): stops on TERM only.
    Native,
}

#[derive(Debug, Clone)]
pub struct Container {
    pub name: String,
    pub kind: Kind,
    pub done_file: bool,
    /// `main --requires`: the sidecars (container indexes) whose markers it requires.
    pub requires: Vec<usize>,
    /// `main --wait-for file:<sidecar>.ready`.
    pub wait_for: Vec<usize>,
    pub wait_timeout: Option<Duration>,
    /// `sidecar --ready-when file:<name>.up --ready-file <name>.ready`.
    pub ready: bool,
    pub stop_delay: Duration,
    pub grace: Duration,
    pub on_success: bool,
    /// What its program does, one per start.
    pub children: Vec<Behaviour>,
    /// The kubelet's back-off before each restart.
    pub backoffs: Vec<Duration>,
}

impl Container {
    /// The container whose marker this sidecar waits for.
    pub fn waits_on(&self) -> Option<usize> {
        match self.kind {
            Kind::Sidecar => Some(0),
            Kind::Chained(up) => Some(up),
            Kind::Main | Kind::Native => None,
        }
    }

    pub fn is_main(&self) -> bool {
        self.kind == Kind::Main
    }
}

/// A marker someone drops on the volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forged {
    Success,
    Failure,
    /// A sidecar's marker saying it was stopped by a signal from outside.
    StopRequest,
    Garbage,
    Empty,
}

impl Forged {
    /// The file's bytes; `n` makes each forged JSON marker unique, so a marker found on the volume
    /// can be told apart from what a supervisor wrote.
    pub fn content(self, n: usize) -> Vec<u8> {
        match self {
            Forged::Success => format!(r#"{{"exit_code":0,"forged":{n}}}"#).into_bytes(),
            Forged::Failure => {
                format!(r#"{{"exit_code":1,"reason":"exited","forged":{n}}}"#).into_bytes()
            }
            Forged::StopRequest => format!(
                r#"{{"version":1,"role":"sidecar","exit_code":0,"reason":"stopped","signal":null,"stop_request":"TERM","forged":{n}}}"#
            )
            .into_bytes(),
            Forged::Garbage => format!("\0forged {n} {{").into_bytes(),
            Forged::Empty => Vec::new(),
        }
    }

    /// The exit code a reader decodes from it (None: unknown).
    pub fn exit_code(self) -> Option<i64> {
        match self {
            Forged::Success | Forged::StopRequest => Some(0),
            Forged::Failure => Some(1),
            Forged::Garbage | Forged::Empty => None,
        }
    }
}

#[derive(Debug, Clone)]
pub enum Inject {
    /// Pod deletion or a drain: TERM to every container, each after its jitter.
    Delete { jitters: Vec<Duration> },
    /// A signal to a container's supervisor.
    Signal { ctr: usize, sig: i32 },
    /// The container's supervisor SIGKILLed, as the OOM killer does.
    Oom { ctr: usize },
    /// A marker written over the container's `--done-file`.
    Forge { ctr: usize, forged: Forged },
}

#[derive(Debug, Clone)]
pub struct Event {
    pub at: Duration,
    pub what: Inject,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub seed: u64,
    pub restart: Restart,
    /// `shareProcessNamespace: true`: one PID namespace (with a pause init) for every container,
    /// so no supervisor is PID 1.
    pub shared_ns: bool,
    /// terminationGracePeriodSeconds: SIGKILL this long after the TERM.
    pub pod_grace: Duration,
    /// activeDeadlineSeconds: the pod is deleted then if it has not ended.
    pub deadline: Duration,
    pub deadline_jitters: Vec<Duration>,
    pub containers: Vec<Container>,
    /// In time order.
    pub events: Vec<Event>,
}

const FAULTS: [i32; 7] = [4, 5, 6, 7, 8, 11, 31];
const RTMIN: i32 = 34;

impl Plan {
    pub fn generate(seed: u64) -> Plan {
        let mut r = Rng::new(seed);
        let restart = if r.chance(0.4) {
            Restart::OnFailure
        } else {
            Restart::Never
        };
        let shared_ns = r.chance(0.25);
        let mut containers = vec![main_container(&mut r)];
        let sidecars = 1 + r.below(3) as usize;
        for i in 1..=sidecars {
            let c = sidecar(&mut r, i, &mut containers, restart);
            containers.push(c);
        }
        wire_main(&mut r, &mut containers);
        let longest = containers
            .iter()
            .map(|c| c.stop_delay + c.grace)
            .max()
            .unwrap_or_default();
        let pod_grace = if r.chance(0.2) {
            r.ms(150, 700)
        } else {
            // Long enough that a supervisor still running past its bound is seen, not killed.
            longest + SLACK + Duration::from_millis(500)
        };
        let n = containers.len();
        let deadline_jitters = (0..n).map(|_| r.ms(0, 200)).collect();
        let events = schedule(&mut r, &containers, shared_ns);
        Plan {
            seed,
            restart,
            shared_ns,
            pod_grace,
            deadline: Duration::from_millis(4500),
            deadline_jitters,
            containers,
            events,
        }
    }

    pub fn done(&self, vol: &Path, ci: usize) -> String {
        file(vol, &self.containers[ci].name, "done")
    }

    pub fn ready_file(&self, vol: &Path, ci: usize) -> String {
        file(vol, &self.containers[ci].name, "ready")
    }

    pub fn up_file(&self, vol: &Path, ci: usize) -> String {
        file(vol, &self.containers[ci].name, "up")
    }

    /// The supervisor's command line for a start of container `ci`, whose program reports to
    /// `events`; `me` is this binary (the helpers).
    pub fn argv(&self, ci: usize, start: usize, vol: &Path, me: &str, events: &str) -> Vec<String> {
        let c = &self.containers[ci];
        let mut a: Vec<String> = Vec::new();
        let mut opt = |k: &str, v: String| {
            a.push(k.to_string());
            a.push(v);
        };
        if c.is_main() {
            for &s in &c.requires {
                opt("--requires", self.done(vol, s));
            }
            for &s in &c.wait_for {
                opt("--wait-for", format!("file:{}", self.ready_file(vol, s)));
            }
            if let Some(w) = c.wait_timeout {
                opt("--wait-timeout", dur(w));
            }
        } else {
            if let Some(up) = c.waits_on() {
                opt("--wait-file", self.done(vol, up));
            }
            if c.ready {
                opt("--ready-when", format!("file:{}", self.up_file(vol, ci)));
                opt("--ready-file", self.ready_file(vol, ci));
            }
            if c.on_success {
                opt("--on", "success".into());
            }
        }
        if c.done_file {
            opt("--done-file", self.done(vol, ci));
        }
        if !c.stop_delay.is_zero() {
            opt("--stop-delay", dur(c.stop_delay));
        }
        opt("--grace", dur(c.grace));
        opt("--log-level", "debug".into());
        let mode = if c.is_main() { "main" } else { "sidecar" };
        let role = if c.is_main() { "cmd" } else { "daemon" };
        let mut argv = vec![mode.to_string()];
        argv.extend(a);
        argv.push("--".into());
        argv.extend([me.to_string(), "helper".into(), role.into(), events.into()]);
        let b = &c.children[start];
        argv.extend(b.to_args(&self.up_file(vol, ci)));
        argv
    }

    /// The pod and schedule, as printed with a seed.
    pub fn describe(&self, vol: &Path) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "seed {}: restartPolicy {:?}, {}, terminationGracePeriod {}ms, deleted at +{}ms unless it ended",
            self.seed,
            self.restart,
            if self.shared_ns {
                "shareProcessNamespace (pause is PID 1)"
            } else {
                "a PID namespace per container (supervisor is PID 1)"
            },
            self.pod_grace.as_millis(),
            self.deadline.as_millis()
        );
        for (ci, c) in self.containers.iter().enumerate() {
            let argv = self.argv(ci, 0, vol, "HELPER", "EVENTS");
            let cut = argv.iter().position(|a| a == "--").unwrap_or(argv.len());
            let _ = writeln!(
                s,
                "  {} ({:?}): supervisor {}",
                c.name,
                c.kind,
                argv[..cut].join(" ")
            );
            for (i, b) in c.children.iter().enumerate() {
                let _ = writeln!(s, "      start {i}: {}", b.describe());
            }
        }
        for e in &self.events {
            let _ = writeln!(s, "  +{}ms {}", e.at.as_millis(), self.event_words(&e.what));
        }
        s
    }

    fn event_words(&self, what: &Inject) -> String {
        let name = |ci: usize| self.containers[ci].name.clone();
        match what {
            Inject::Delete { jitters } => {
                let each: Vec<String> = jitters
                    .iter()
                    .enumerate()
                    .map(|(ci, j)| format!("{} +{}ms", name(ci), j.as_millis()))
                    .collect();
                format!("pod deleted: TERM to {}", each.join(", "))
            }
            Inject::Signal { ctr, sig } => format!("signal {} to {}", sig_name(*sig), name(*ctr)),
            Inject::Oom { ctr } => format!("{} OOM-killed (SIGKILL)", name(*ctr)),
            Inject::Forge { ctr, forged } => {
                format!("marker forged over {}.done: {forged:?}", name(*ctr))
            }
        }
    }
}

pub fn sig_name(sig: i32) -> String {
    supervisor::signals::Sig::new(sig).map_or_else(|| sig.to_string(), |s| s.to_string())
}

fn file(vol: &Path, name: &str, ext: &str) -> String {
    vol.join(format!("{name}.{ext}")).display().to_string()
}

fn dur(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

fn main_container(r: &mut Rng) -> Container {
    let stop_delay = if r.chance(0.25) {
        r.ms(50, 600)
    } else {
        Duration::ZERO
    };
    let grace = r.ms(200, 1500);
    Container {
        name: "main".into(),
        kind: Kind::Main,
        done_file: true,
        requires: Vec::new(),
        wait_for: Vec::new(),
        wait_timeout: None,
        ready: false,
        stop_delay,
        grace,
        on_success: false,
        children: (0..MAX_STARTS).map(|_| cmd(r)).collect(),
        backoffs: (0..MAX_STARTS).map(|_| r.ms(0, 250)).collect(),
    }
}

fn sidecar(r: &mut Rng, i: usize, cs: &mut [Container], restart: Restart) -> Container {
    let chain_to: Vec<usize> = (1..cs.len())
        .filter(|&j| matches!(cs[j].kind, Kind::Sidecar | Kind::Chained(_)))
        .collect();
    let kind = if r.chance(0.2) {
        Kind::Native
    } else if !chain_to.is_empty() && r.chance(0.35) {
        let up = r.pick(&chain_to);
        cs[up].done_file = true;
        Kind::Chained(up)
    } else {
        Kind::Sidecar
    };
    let ready = r.chance(0.35);
    let on_success = kind != Kind::Native
        && r.chance(match restart {
            Restart::OnFailure => 0.7,
            Restart::Never => 0.1,
        });
    let stop_delay = if r.chance(0.3) {
        r.ms(50, 500)
    } else {
        Duration::ZERO
    };
    Container {
        name: format!("s{i}"),
        kind,
        done_file: r.chance(0.8),
        requires: Vec::new(),
        wait_for: Vec::new(),
        wait_timeout: None,
        ready,
        stop_delay,
        grace: r.ms(200, 1200),
        on_success,
        children: (0..MAX_STARTS).map(|n| daemon(r, n, ready)).collect(),
        backoffs: (0..MAX_STARTS).map(|_| r.ms(0, 250)).collect(),
    }
}

fn wire_main(r: &mut Rng, cs: &mut [Container]) {
    for s in 1..cs.len() {
        if cs[s].done_file && r.chance(0.7) {
            cs[0].requires.push(s);
        }
        if cs[s].ready && r.chance(0.6) {
            cs[0].wait_for.push(s);
        }
    }
    if !cs[0].wait_for.is_empty() {
        cs[0].wait_timeout = Some(r.ms(400, 1500));
    }
}

fn cmd(r: &mut Rng) -> Behaviour {
    let life = if r.chance(0.25) {
        None
    } else {
        let end = match r.weighted(&[55, 35, 10]) {
            0 => OwnEnd::Exit(0),
            1 => OwnEnd::Exit(1 + r.below(3) as i32),
            _ => OwnEnd::Die(r.pick(&[9, 11, 6])),
        };
        Some((r.ms(20, 1200), end))
    };
    let delay = r.ms(0, 400);
    let on_stop = match r.weighted(&[35, 15, 10, 20, 20]) {
        0 => OnStop::Exit(143, delay),
        1 => OnStop::Exit(0, delay),
        2 => OnStop::Exit(1, delay),
        3 => OnStop::Die(delay),
        _ => OnStop::Ignore,
    };
    Behaviour {
        life,
        on_stop,
        up: None,
        linger: r.chance(0.2),
    }
}

fn daemon(r: &mut Rng, start: usize, ready: bool) -> Behaviour {
    let crash = if start == 0 { 0.3 } else { 0.15 };
    let life = if r.chance(crash) {
        let end = match r.weighted(&[35, 15, 15, 35]) {
            0 => OwnEnd::Exit(1 + r.below(3) as i32),
            1 => OwnEnd::Exit(0),
            2 => OwnEnd::Daemonize,
            _ => OwnEnd::Die(r.pick(&[9, 11, 6])),
        };
        Some((r.ms(30, 1500), end))
    } else {
        None
    };
    let delay = r.ms(0, 300);
    let on_stop = match r.weighted(&[50, 20, 15, 15]) {
        0 => OnStop::Exit(0, delay),
        1 => OnStop::Exit(143, delay),
        2 => OnStop::Die(delay),
        _ => OnStop::Ignore,
    };
    let up = (ready && !r.chance(0.1)).then(|| r.ms(0, 300));
    Behaviour {
        life,
        on_stop,
        up,
        linger: r.chance(0.15),
    }
}

fn schedule(r: &mut Rng, cs: &[Container], shared_ns: bool) -> Vec<Event> {
    let n = cs.len();
    let mut events = Vec::new();
    if r.chance(0.5) {
        let at = r.ms(0, 1500);
        let jitters: Vec<Duration> = (0..n).map(|_| r.ms(0, 200)).collect();
        if r.chance(0.3) {
            // A second, different stop signal while the first is being acted on (Ctrl-C after
            // a TERM), mostly to the main, within its --stop-delay.
            let ctr = if r.chance(0.7) {
                0
            } else {
                r.below(n as u64) as usize
            };
            events.push(Event {
                at: at + jitters[ctr] + r.ms(0, 300),
                what: Inject::Signal { ctr, sig: 2 },
            });
        }
        events.push(Event {
            at,
            what: Inject::Delete { jitters },
        });
    }
    for _ in 0..r.weighted(&[40, 30, 20, 10]) {
        let at = r.ms(0, 1500);
        let ctr = r.below(n as u64) as usize;
        let sig = if r.chance(if shared_ns { 0.3 } else { 0.15 }) {
            r.pick(&FAULTS)
        } else {
            match r.below(5) {
                0 => 1,
                1 => 10,
                2 => 2,
                3 => 3,
                _ => RTMIN + r.below(31) as i32,
            }
        };
        events.push(Event {
            at,
            what: Inject::Signal { ctr, sig },
        });
    }
    if r.chance(0.15) {
        let at = r.ms(0, 1500);
        let ctr = r.below(n as u64) as usize;
        events.push(Event {
            at,
            what: Inject::Oom { ctr },
        });
    }
    let writers: Vec<usize> = (0..n).filter(|&i| cs[i].done_file).collect();
    if r.chance(0.2) {
        let at = r.ms(0, 1500);
        let ctr = r.pick(&writers);
        let forged = [
            Forged::Success,
            Forged::Failure,
            Forged::StopRequest,
            Forged::Garbage,
            Forged::Empty,
        ][r.weighted(&[30, 25, 20, 15, 10])];
        events.push(Event {
            at,
            what: Inject::Forge { ctr, forged },
        });
    }
    events.sort_by_key(|e| e.at);
    events
}
