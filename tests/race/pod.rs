//! The kubelet: runs one seed's pod as process trees of the real `supervisor` binary and deals
//! the schedule's events to it.
//!
//! Theory of operation: each container start is the supervisor as a direct child of this
//! thread - PID 1 of a fresh PID namespace with its own /proc (the thread unshares CLONE_NEWPID
//! before the fork, the child mounts /proc), or, for a pod with `shareProcessNamespace`, a
//! process of the pod's one namespace whose init is a `pause` helper - in a cgroup of its own, so
//! the kubelet gets the supervisor's exact wait status, counts every process of the container and
//! kills it as the kernel kills a container. One loop waits on the supervisors' pidfds with a
//! timeout to the next due thing, and does what a kubelet does: starts the containers, restarts
//! them under OnFailure (native sidecars always) after their back-off, sends native sidecars TERM
//! once the regular containers have ended, deletes the pod when told (TERM to each container
//! after its jitter, SIGKILL to what still runs after the grace period) or at the deadline; and
//! what the schedule says, at its time. Every 50 ms it looks for zombies and at the supervisors'
//! working directories. A supervisor gets a signal only once it has blocked its signals (a PID 1
//! without a handler never sees one sent earlier: a window every init has, not a race to explore).

use crate::cgroup;
use crate::plan::{Forged, Inject, Kind, Plan, Restart};
use crate::record::{Finding, Forge, Inc, KillWhy, Record, Sent, Why};
use crate::sys;
use nix::libc;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Setup {
    /// The supervisor binary under test.
    pub sup: PathBuf,
    /// This binary, which is also the helper programs.
    pub me: PathBuf,
    /// The explorer's own cgroup directory, under which each run makes its containers'.
    pub cgroups: PathBuf,
    /// What the machine's load may add to any step the documentation bounds.
    pub slack: Duration,
}

enum State {
    Running(Live),
    /// Restarting at this time.
    Waiting(u64),
    Done,
}

struct Live {
    inc: usize,
    child: Child,
    pidfd: OwnedFd,
    cgroup: PathBuf,
    /// When the supervisor was first seen with a child, and whether its working directory was
    /// looked at since.
    child_seen: Option<u64>,
    cwd_seen: bool,
}

struct Pause {
    child: Child,
    pidns: OwnedFd,
    mntns: OwnedFd,
    cgroup: PathBuf,
}

const TICK: u64 = 50_000_000;
const ZOMBIE_LIMIT: u64 = 2_000_000_000;
const LEFTOVER_LOOK: u64 = 1_000_000_000;
const CWD_LOOK: u64 = 1_000_000_000;

struct Kubelet<'a> {
    plan: &'a Plan,
    setup: &'a Setup,
    dir: PathBuf,
    vol: PathBuf,
    cg: PathBuf,
    own_pidns: OwnedFd,
    pause: Option<Pause>,
    states: Vec<State>,
    starts: Vec<usize>,
    rec: Record,
    next_event: usize,
    forged: usize,
    term_at: Vec<Option<u64>>,
    kill_at: Vec<Option<u64>>,
    natives_stopped: bool,
    leftover_checks: Vec<(u64, usize, PathBuf)>,
    zombies: HashMap<i32, u64>,
    zombies_told: HashSet<i32>,
    next_tick: u64,
    /// The pod's PID namespaces, by name, each held open so that its number cannot be given to
    /// another run's namespace before the last look.
    namespaces: HashMap<String, OwnedFd>,
    backstop: u64,
    hung: bool,
}

/// Runs the pod of `plan` in `dir` (made fresh) and returns what happened.
pub fn run(plan: &Plan, setup: &Setup, dir: &Path) -> Record {
    let mut k = Kubelet::new(plan, setup, dir);
    k.start_pod();
    while !k.over() {
        k.step();
    }
    k.finish()
}

impl<'a> Kubelet<'a> {
    fn new(plan: &'a Plan, setup: &'a Setup, dir: &Path) -> Kubelet<'a> {
        let vol = dir.join("vol");
        for d in ["vol", "ev", "log"] {
            std::fs::create_dir_all(dir.join(d)).expect("run directory");
        }
        let cg = setup.cgroups.join(format!("seed-{}", plan.seed));
        let _ = cgroup::remove(&cg);
        cgroup::make(&cg).expect("the run's cgroup");
        let n = plan.containers.len();
        let t0 = sys::now();
        let backstop = t0
            + sys::ns(plan.deadline + plan.pod_grace + setup.slack)
            + sys::ns(Duration::from_secs(2));
        Kubelet {
            plan,
            setup,
            dir: dir.to_path_buf(),
            vol,
            cg,
            own_pidns: sys::open_ns("/proc/thread-self/ns/pid").expect("own pid namespace"),
            pause: None,
            states: (0..n).map(|_| State::Done).collect(),
            starts: vec![0; n],
            rec: Record {
                t0,
                ..Record::default()
            },
            next_event: 0,
            forged: 0,
            term_at: vec![None; n],
            kill_at: vec![None; n],
            natives_stopped: false,
            leftover_checks: Vec::new(),
            zombies: HashMap::new(),
            zombies_told: HashSet::new(),
            next_tick: t0,
            namespaces: HashMap::new(),
            backstop,
            hung: false,
        }
    }

    fn start_pod(&mut self) {
        if self.plan.shared_ns {
            self.start_pause();
        }
        for ci in 0..self.plan.containers.len() {
            self.start(ci);
        }
    }

    fn over(&self) -> bool {
        self.states.iter().all(|s| matches!(s, State::Done)) && self.leftover_checks.is_empty()
    }

    /// One turn of the loop: what is due, then wait for an exit or the next due thing.
    fn step(&mut self) {
        let now = sys::now();
        self.due(now);
        if self.over() {
            return;
        }
        let wake = self.next_wake(now);
        let running: Vec<usize> = (0..self.states.len())
            .filter(|&ci| matches!(self.states[ci], State::Running(_)))
            .collect();
        let fds: Vec<i32> = running
            .iter()
            .map(|&ci| match &self.states[ci] {
                State::Running(l) => l.pidfd.as_raw_fd(),
                _ => -1,
            })
            .collect();
        let timeout = Duration::from_nanos(wake.saturating_sub(sys::now()));
        let ready = sys::poll_readable(&fds, timeout);
        for (i, r) in ready.into_iter().enumerate() {
            if r {
                self.exited(running[i]);
            }
        }
    }

    fn next_wake(&self, now: u64) -> u64 {
        let mut wake = vec![self.next_tick, self.backstop];
        if let Some(e) = self.plan.events.get(self.next_event) {
            wake.push(self.rec.t0 + sys::ns(e.at));
        }
        if self.rec.deletion.is_none() {
            wake.push(self.rec.t0 + sys::ns(self.plan.deadline));
        }
        wake.extend(self.term_at.iter().flatten());
        wake.extend(self.kill_at.iter().flatten());
        wake.extend(self.leftover_checks.iter().map(|c| c.0));
        wake.extend(self.states.iter().filter_map(|s| match s {
            State::Waiting(t) => Some(*t),
            _ => None,
        }));
        wake.into_iter().min().unwrap_or(now).max(now)
    }

    fn due(&mut self, now: u64) {
        while let Some(e) = self.plan.events.get(self.next_event) {
            if self.rec.t0 + sys::ns(e.at) > now {
                break;
            }
            self.next_event += 1;
            self.apply(e.what.clone());
        }
        if self.rec.deletion.is_none() && now >= self.rec.t0 + sys::ns(self.plan.deadline) {
            self.rec
                .note("activeDeadline: the pod has not ended; deleting it".into());
            self.rec.deadline_hit = true;
            self.begin_deletion(self.plan.deadline_jitters.clone());
        }
        for ci in 0..self.states.len() {
            self.due_for(ci, now);
        }
        self.stop_natives();
        self.leftovers_due(now);
        if now >= self.next_tick {
            self.tick(now);
            self.next_tick = now + TICK;
        }
        if now >= self.backstop && !self.hung {
            self.hang();
        }
        if self.hung && now > self.backstop + 10_000_000_000 {
            panic!("seed {}: the pod's processes would not die", self.plan.seed);
        }
    }

    fn due_for(&mut self, ci: usize, now: u64) {
        if self.term_at[ci].is_some_and(|t| t <= now) {
            self.term_at[ci] = None;
            if matches!(self.states[ci], State::Running(_)) {
                self.send(ci, libc::SIGTERM, Why::Delete);
            }
        }
        if self.kill_at[ci].is_some_and(|t| t <= now) {
            self.kill_at[ci] = None;
            self.kill(ci, KillWhy::Kubelet);
        }
        if let State::Waiting(t) = self.states[ci] {
            if t <= now {
                self.start(ci);
            }
        }
    }

    fn apply(&mut self, what: Inject) {
        match what {
            Inject::Delete { jitters } => {
                if self.rec.deletion.is_none() {
                    self.rec.note("pod deleted".into());
                    self.begin_deletion(jitters);
                }
            }
            Inject::Signal { ctr, sig } => self.send(ctr, sig, Why::Inject),
            Inject::Oom { ctr } => self.kill(ctr, KillWhy::Oom),
            Inject::Forge { ctr, forged } => self.forge(ctr, forged),
        }
    }

    fn begin_deletion(&mut self, jitters: Vec<Duration>) {
        let now = sys::now();
        self.rec.deletion = Some(now);
        let grace = sys::ns(self.plan.pod_grace);
        for (ci, jitter) in jitters.into_iter().enumerate() {
            match self.states[ci] {
                State::Running(_) => {
                    self.term_at[ci] = Some(now + sys::ns(jitter));
                    self.kill_at[ci] = Some(now + grace);
                }
                State::Waiting(_) => self.states[ci] = State::Done,
                State::Done => {}
            }
        }
    }

    /// Native sidecars get TERM once every regular container has ended for good.
    fn stop_natives(&mut self) {
        if self.natives_stopped || self.rec.deletion.is_some() {
            return;
        }
        let regular_done = self
            .plan
            .containers
            .iter()
            .zip(&self.states)
            .all(|(c, s)| c.kind == Kind::Native || matches!(s, State::Done));
        if !regular_done {
            return;
        }
        self.natives_stopped = true;
        let grace = sys::ns(self.plan.pod_grace);
        for ci in 0..self.states.len() {
            if self.plan.containers[ci].kind != Kind::Native {
                continue;
            }
            match self.states[ci] {
                State::Running(_) => {
                    self.send(ci, libc::SIGTERM, Why::Native);
                    self.kill_at[ci] = Some(sys::now() + grace);
                }
                State::Waiting(_) => self.states[ci] = State::Done,
                State::Done => {}
            }
        }
    }

    fn live(&self, ci: usize) -> Option<&Live> {
        match &self.states[ci] {
            State::Running(l) => Some(l),
            _ => None,
        }
    }

    /// Sends `sig` to container `ci`'s supervisor, once it has blocked its signals.
    fn send(&mut self, ci: usize, sig: i32, why: Why) {
        let name = &self.plan.containers[ci].name;
        let Some(l) = self.live(ci) else {
            self.rec
                .note(format!("{name} is not running: no {}", sig_name(sig)));
            return;
        };
        let (pid, inc) = (l.child.id() as i32, l.inc);
        if !wait_blocked(pid) {
            self.rec.note(format!(
                "{name}#{}: never blocked its signals; {} not sent",
                self.rec.incs[inc].start_no,
                sig_name(sig)
            ));
            return;
        }
        // Stamped before the kill: a program may report it before this thread runs again.
        let t = sys::now();
        sys::kill(pid, sig);
        self.rec.sent.push(Sent { t, inc, sig, why });
        let n = self.rec.incs[inc].start_no;
        self.rec
            .note(format!("{} to {name}#{n} ({why:?})", sig_name(sig)));
    }

    fn kill(&mut self, ci: usize, why: KillWhy) {
        let Some(l) = self.live(ci) else {
            return;
        };
        let (inc, cg) = (l.inc, l.cgroup.clone());
        let t = sys::now();
        cgroup::kill(&cg);
        self.rec.kills.push((t, inc, why));
        if self.rec.incs[inc].killed.is_none() {
            self.rec.incs[inc].killed = Some((t, why));
        }
        let c = &self.plan.containers[ci];
        let n = self.rec.incs[inc].start_no;
        self.rec.note(format!("{}#{n} SIGKILLed ({why:?})", c.name));
    }

    /// Writes a marker over container `ci`'s `--done-file`, atomically (a temp file renamed over
    /// it), as a script or a confused operator would.
    fn forge(&mut self, ci: usize, forged: Forged) {
        let content = forged.content(self.forged);
        self.forged += 1;
        let path = PathBuf::from(self.plan.done(&self.vol, ci));
        let tmp = self.vol.join(".forged.tmp");
        let t = sys::now();
        let ok = std::fs::write(&tmp, &content).and_then(|()| std::fs::rename(&tmp, &path));
        self.rec.forges.push(Forge {
            t,
            ctr: ci,
            content,
            exit_code: forged.exit_code(),
            stop_request: forged == Forged::StopRequest,
        });
        self.rec
            .note(format!("forged {} ({forged:?}): {ok:?}", path.display()));
    }

    fn start(&mut self, ci: usize) {
        let n = self.starts[ci];
        self.starts[ci] += 1;
        let c = &self.plan.containers[ci];
        let cgroup =
            cgroup::make(&self.cg.join(format!("{}.{n}", c.name))).expect("container cgroup");
        let events = self.dir.join(format!("ev/{}.{n}", c.name));
        let log = self.dir.join(format!("log/{}.{n}.log", c.name));
        let me = self.setup.me.display().to_string();
        let argv = self
            .plan
            .argv(ci, n, &self.vol, &me, &events.display().to_string());
        let start = sys::now();
        let child = self.spawn(&self.setup.sup, &argv, &cgroup, &log);
        let child = match child {
            Ok(c) => c,
            Err(e) => panic!("cannot start {} (start {n}): {e}", c.name),
        };
        let pid = child.id() as i32;
        self.hold_namespace(pid);
        let pidfd = sys::pidfd(pid).expect("pidfd_open");
        self.rec.incs.push(Inc {
            ctr: ci,
            start_no: n,
            pid,
            start,
            end: None,
            status: None,
            killed: None,
            marker: None,
            events: Vec::new(),
            log: log.display().to_string(),
            cwd: None,
        });
        let inc = self.rec.incs.len() - 1;
        self.rec
            .note(format!("started {}#{n} as pid {pid}", c.name));
        self.states[ci] = State::Running(Live {
            inc,
            child,
            pidfd,
            cgroup,
            child_seen: None,
            cwd_seen: false,
        });
    }

    /// Forks `program argv` into its namespace and cgroup (see the module doc).
    fn spawn(
        &self,
        program: &Path,
        argv: &[String],
        cgroup: &Path,
        log: &Path,
    ) -> std::io::Result<Child> {
        let out = File::create(log)?;
        let err = out.try_clone()?;
        let procs = File::options()
            .write(true)
            .open(cgroup.join("cgroup.procs"))?;
        let procs_fd = procs.as_raw_fd();
        let mntns = self.pause.as_ref().map(|p| p.mntns.as_raw_fd());
        let mut cmd = Command::new(program);
        cmd.args(argv)
            .current_dir(&self.dir)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        // SAFETY: the closure makes system calls only (async-signal-safe), on descriptors that
        // stay open until spawn returns.
        unsafe {
            cmd.pre_exec(move || {
                sys::container_setup(procs_fd)?;
                match mntns {
                    Some(fd) => sys::setns(fd, libc::CLONE_NEWNS),
                    None => sys::mount_proc(),
                }
            });
        }
        let own = self.own_pidns.as_raw_fd();
        match &self.pause {
            Some(p) => sys::setns(p.pidns.as_raw_fd(), libc::CLONE_NEWPID)?,
            None => {
                sys::setns(own, libc::CLONE_NEWPID)?;
                sys::unshare(libc::CLONE_NEWPID)?;
            }
        }
        let spawned = cmd.spawn();
        sys::setns(own, libc::CLONE_NEWPID)?;
        spawned
    }

    fn start_pause(&mut self) {
        let cgroup = cgroup::make(&self.cg.join("pause")).expect("pause cgroup");
        let log = self.dir.join("log/pause.log");
        let argv = ["helper".to_string(), "pause".into(), "-".into()];
        let child = self
            .spawn(&self.setup.me, &argv, &cgroup, &log)
            .expect("start the pause init");
        let pid = child.id();
        let pidns = sys::open_ns(&format!("/proc/{pid}/ns/pid")).expect("pause pid ns");
        let mntns = sys::open_ns(&format!("/proc/{pid}/ns/mnt")).expect("pause mount ns");
        self.hold_namespace(pid as i32);
        self.pause = Some(Pause {
            child,
            pidns,
            mntns,
            cgroup,
        });
    }

    fn hold_namespace(&mut self, pid: i32) {
        let path = format!("/proc/{pid}/ns/pid");
        if let (Ok(fd), Ok(name)) = (sys::open_ns(&path), std::fs::read_link(&path)) {
            self.namespaces.insert(name.display().to_string(), fd);
        }
    }

    /// Container `ci`'s supervisor exited: record how, keep its marker, look for what it left,
    /// restart it if the policy says so.
    fn exited(&mut self, ci: usize) {
        let State::Running(mut l) = std::mem::replace(&mut self.states[ci], State::Done) else {
            return;
        };
        let status = l.child.wait().ok();
        let now = sys::now();
        let c = &self.plan.containers[ci];
        let inc = l.inc;
        let marker = if c.done_file {
            std::fs::read(self.plan.done(&self.vol, ci)).ok()
        } else {
            None
        };
        let r = &mut self.rec.incs[inc];
        r.end = Some(now);
        r.status = status;
        r.marker = marker;
        let killed = r.killed.is_some();
        let n = r.start_no;
        let code = r.code();
        self.rec.note(format!(
            "{}#{n} exited: {:?} (code {code:?})",
            c.name, status
        ));
        // A supervisor killed, or dead of a signal (the crash rules report that), leaves its
        // container to the kubelet; one that exited must have left nothing running.
        let crashed = status.is_some_and(|s| s.signal().is_some());
        if killed || crashed || !cgroup::populated(&l.cgroup) {
            let _ = cgroup::remove(&l.cgroup);
        } else {
            self.leftover_checks
                .push((now + LEFTOVER_LOOK, inc, l.cgroup));
        }
        self.states[ci] = self.after_exit(ci, code != Some(0), now);
    }

    fn after_exit(&mut self, ci: usize, failed: bool, now: u64) -> State {
        let c = &self.plan.containers[ci];
        let n = self.starts[ci];
        let again = match c.kind {
            _ if self.rec.deletion.is_some() || n >= c.children.len() => false,
            Kind::Native => !self.natives_stopped,
            _ => self.plan.restart == Restart::OnFailure && failed,
        };
        if !again {
            return State::Done;
        }
        self.rec.restarts += 1;
        let at = now + sys::ns(c.backoffs[n]);
        self.rec.note(format!(
            "{} restarts in {}ms",
            c.name,
            c.backoffs[n].as_millis()
        ));
        State::Waiting(at)
    }

    /// A second after a supervisor exited, whatever of its container still runs was left behind.
    fn leftovers_due(&mut self, now: u64) {
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.leftover_checks)
            .into_iter()
            .partition(|c| c.0 <= now);
        self.leftover_checks = later;
        for (_, inc, cg) in due {
            if cgroup::populated(&cg) {
                let i = &self.rec.incs[inc];
                let text = format!(
                    "{}#{}: its supervisor exited at {} but its container still had {} a second later",
                    self.plan.containers[i.ctr].name,
                    i.start_no,
                    self.rec.ms(i.end.unwrap_or(0)),
                    cgroup::describe(&cg)
                );
                self.rec.findings.push(Finding {
                    rule: "no-leftover",
                    text,
                });
            }
            let _ = cgroup::remove(&cg);
        }
    }

    /// Every 50 ms: zombies the supervisors have not reaped, and their working directories.
    fn tick(&mut self, now: u64) {
        let mut seen = HashSet::new();
        for ci in 0..self.states.len() {
            let State::Running(l) = &mut self.states[ci] else {
                continue;
            };
            let sup = l.child.id() as i32;
            for p in cgroup::procs(&l.cgroup) {
                if cgroup::stat(p) == Some(('Z', sup)) {
                    seen.insert(p);
                    let first = *self.zombies.entry(p).or_insert(now);
                    if now - first >= ZOMBIE_LIMIT && self.zombies_told.insert(p) {
                        let i = &self.rec.incs[l.inc];
                        self.rec.findings.push(Finding {
                            rule: "no-zombie",
                            text: format!(
                                "{}#{}: pid {p} has been a zombie child of its supervisor for {}ms",
                                self.plan.containers[ci].name,
                                i.start_no,
                                (now - first) / 1_000_000
                            ),
                        });
                    }
                }
            }
            // A supervisor moves to / right after the fork; a busy machine may let the child run
            // first for a while, so the look waits a second after the child was first seen.
            let inc = &mut self.rec.incs[l.inc];
            if l.child_seen.is_none() && !cgroup::children(sup).is_empty() {
                l.child_seen = Some(now);
            }
            if !l.cwd_seen && l.child_seen.is_some_and(|t| now >= t + CWD_LOOK) {
                l.cwd_seen = true;
                inc.cwd = std::fs::read_link(format!("/proc/{sup}/cwd"))
                    .ok()
                    .map(|p| p.display().to_string());
            }
        }
        self.zombies.retain(|p, _| seen.contains(p));
    }

    fn hang(&mut self) {
        self.hung = true;
        let running: Vec<String> = (0..self.states.len())
            .filter(|&ci| matches!(self.states[ci], State::Running(_)))
            .map(|ci| self.plan.containers[ci].name.clone())
            .collect();
        self.rec.findings.push(Finding {
            rule: "ends-in-time",
            text: format!(
                "the pod had not ended {}ms after it started (still running: {}); killed it",
                (self.backstop - self.rec.t0) / 1_000_000,
                running.join(", ")
            ),
        });
        for ci in 0..self.states.len() {
            self.kill(ci, KillWhy::Kubelet);
            if let State::Waiting(_) = self.states[ci] {
                self.states[ci] = State::Done;
            }
        }
    }

    /// The pod has ended: stop its init, check that nothing of it is left, collect the reports.
    fn finish(mut self) -> Record {
        if let Some(mut p) = self.pause.take() {
            sys::kill(p.child.id() as i32, libc::SIGKILL);
            let _ = p.child.wait();
            let _ = cgroup::remove(&p.cgroup);
        }
        self.rec.ended = sys::now();
        self.pod_clean();
        for inc in &mut self.rec.incs {
            let name = &self.plan.containers[inc.ctr].name;
            let ev = self.dir.join(format!("ev/{name}.{}", inc.start_no));
            inc.events =
                crate::record::parse_events(&std::fs::read_to_string(ev).unwrap_or_default());
            inc.log = std::fs::read_to_string(&inc.log).unwrap_or_default();
        }
        self.rec
    }

    /// No process of any container and no namespace of the pod outlives it.
    fn pod_clean(&mut self) {
        let left = cgroup::procs_under(&self.cg);
        if !left.is_empty() {
            self.rec.findings.push(Finding {
                rule: "pod-clean",
                text: format!("after the pod ended, its cgroups still held {left}"),
            });
        }
        let mut in_ns = Vec::new();
        for pid in cgroup::all_pids() {
            if let Ok(ns) = std::fs::read_link(format!("/proc/{pid}/ns/pid")) {
                if self.namespaces.contains_key(&ns.display().to_string()) {
                    in_ns.push(format!("{pid} ({})", ns.display()));
                }
            }
        }
        if !in_ns.is_empty() {
            self.rec.findings.push(Finding {
                rule: "pod-clean",
                text: format!(
                    "after the pod ended, processes still lived in its PID namespaces: {}",
                    in_ns.join(", ")
                ),
            });
        }
        if !cgroup::remove_tree(&self.cg) {
            panic!("cannot remove the run's cgroup {}", self.cg.display());
        }
    }
}

/// Waits (at most two seconds: a busy machine) until `pid` has blocked TERM, i.e. the
/// supervisor has set up its signals; false if it never does or is gone.
fn wait_blocked(pid: i32) -> bool {
    let end = sys::now() + 2_000_000_000;
    loop {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let blocked = status
            .lines()
            .find_map(|l| l.strip_prefix("SigBlk:"))
            .and_then(|h| u64::from_str_radix(h.trim(), 16).ok());
        if status
            .lines()
            .any(|l| l.starts_with("State:") && l.contains('Z'))
        {
            return false;
        }
        match blocked {
            Some(b) if b & sys::bit(libc::SIGTERM) != 0 => return true,
            None => return false,
            _ if sys::now() > end => return false,
            _ => std::thread::sleep(Duration::from_micros(500)),
        }
    }
}

fn sig_name(sig: i32) -> String {
    crate::plan::sig_name(sig)
}
