//! The invariants, written down once: [`RULES`] is the table every run is checked against.
//!
//! Theory of operation: the rules never trust the supervisor's own account of what happened
//! first. The timeline comes from the helpers' reports (when a program started, which signals it
//! received when, how it ended) and the kubelet's (which signal, kill or forged marker it dealt
//! when, when each supervisor exited, its marker right then). From it [`Facts`] say, for each
//! container start, when it *could* have begun to end (a lower bound) and when it surely had
//! (an upper bound); a cause counts as a possible reason for an ending when its lower bound comes
//! before the program's first reaction (the first stop signal it received, or its own end). Every
//! ending the documented tables give for any possible cause is accepted; anything else is a
//! violation. Where two causes race, both are possible and both endings pass: a rule may only
//! flag what no order of the observed events explains.
//!
//! The outcome tables exist twice: as the README wrote them before issue 22 item 1
//! ([`Table::Readme`]) and as it writes them since, with the pod-deletion rule
//! ([`Table::PodDeletion`], the one checked). An ending that only the older table allows is a
//! violation of `pod-deletion`; one neither allows is a violation of `outcome`.

use crate::behaviour::OwnEnd;
use crate::plan::{Container, Plan};
use crate::record::{Inc, KillWhy, Record, What};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// How long a helper may take from reporting its own end to being gone, on a busy machine.
const EXITING: Duration = Duration::from_millis(50);

/// A rule of the table.
pub struct Rule {
    pub id: &'static str,
    /// The promise, in words.
    pub says: &'static str,
    /// Where it is written down.
    pub source: &'static str,
    check: fn(&Ctx) -> Vec<Violation>,
}

pub const RULES: &[Rule] = &[
    Rule {
        id: "ends-in-time",
        says: "every supervisor ends within its bound: --stop-delay + --grace after what stops it (a term signal, a required sidecar's end - a gate waits for one that ended before CMD until --wait-timeout -, the marker it waits for), at once after its program ends (--grace if it left processes), all plus 5 s of slack for a busy machine; and the pod ends",
        source: "README (How it works, Recipes: --stop-delay, --grace), docs/failure-modes.md",
        check: ends_in_time,
    },
    Rule {
        id: "outcome",
        says: "each container's exit code and marker reason are the ones the documented tables give for what happened first",
        source: "README (Exit codes, Files on the shared volume), docs/failure-modes.md",
        check: outcome,
    },
    Rule {
        id: "pod-deletion",
        says: "a stop from outside (a term signal, or a required sidecar stopped by one) is `stopped` with `stop_request` and CMD's own code (`cancelled` before CMD started); `dependency-failed`/122 only for a sidecar that ended on its own, was killed, vanished or daemonized",
        source: "README (Exit codes: 122; reason `stopped`), docs/failure-modes.md (the pod is deleted), issue 22 item 1",
        check: pod_deletion,
    },
    Rule {
        id: "marker-valid",
        says: "a marker is valid JSON with the container's role and exit code, or absent only where the supervisor was SIGKILLed",
        source: "README (Files on the shared volume, The marker)",
        check: marker_valid,
    },
    Rule {
        id: "no-crash",
        says: "a supervisor never dies of a signal nobody sent it (a panic, a fault of its own)",
        source: "README (After the child starts, nothing bails)",
        check: no_crash,
    },
    Rule {
        id: "survives-signals",
        says: "a supervisor survives every signal sent to it but KILL, the faults included (ILL, TRAP, ABRT, BUS, FPE, SEGV, SYS)",
        source: "README (Every signal), docs/failure-modes.md (every signal 1-64), issue 22 item 5",
        check: survives_signals,
    },
    Rule {
        id: "signals-delivered",
        says: "a signal sent to a supervisor reaches its program - the faults too; a term signal to a sidecar as its stop; not twice the signal a stop was already asked with - unless the program ended right after",
        source: "README (Every signal), docs/failure-modes.md (every signal 1-64, signals during --stop-delay), issue 22 item 5",
        check: signals_delivered,
    },
    Rule {
        id: "no-spurious-signal",
        says: "a program receives only signals someone sent (a stop signal, what was sent to its supervisor, the signal that stopped a required sidecar): no SIGCONT when nothing is stopped",
        source: "docs/failure-modes.md (a stopped child), issue 22 item 7",
        check: no_spurious_signal,
    },
    Rule {
        id: "cwd-released",
        says: "once its program runs, a supervisor whose paths are all absolute keeps no directory but / as its working directory (looked at a second after it forked)",
        source: "README (The child), docs/failure-modes.md (the working directory), issue 22 item 7",
        check: cwd_released,
    },
    Rule {
        id: "no-leftover",
        says: "when a supervisor exits, nothing of its container is left running (a second later, nothing in its cgroup)",
        source: "README (What CMD leaves behind, A daemon that leaves early), docs/failure-modes.md, issue 22 item 7",
        check: findings_no_leftover,
    },
    Rule {
        id: "no-zombie",
        says: "no zombie child of a supervisor lasts two seconds",
        source: "README (Reaping)",
        check: findings_no_zombie,
    },
    Rule {
        id: "pod-clean",
        says: "after the pod ends, no process of any container and no PID namespace of the pod is left",
        source: "README (How it works), issue 22 item 8",
        check: findings_pod_clean,
    },
];

pub struct Violation {
    pub rule: &'static str,
    pub text: String,
    /// The open fix that explains it (see [`KNOWN`]); None: a new finding, which fails the run.
    pub known: Option<&'static str>,
}

/// A violation whose fix is under way: counted and shown, but not failing the run. Remove the
/// entry when the fix lands (a stale entry is harmless, a missing one fails CI).
pub struct Known {
    pub rule: &'static str,
    /// Words every violation it explains contains (None: every violation of the rule).
    pub says: Option<&'static str>,
    pub what: &'static str,
}

pub const KNOWN: &[Known] = &[];

/// The table as docs/race.md shows it (a Markdown table; the explorer checks the copy).
pub fn table() -> String {
    let mut s = String::from("| rule | the promise | where it is written |\n| --- | --- | --- |\n");
    for r in RULES {
        s.push_str(&format!("| `{}` | {} | {} |\n", r.id, r.says, r.source));
    }
    s
}

/// How many container starts of a run the outcome rules could judge.
pub fn judged(plan: &Plan, rec: &Record) -> usize {
    let cx = Ctx::new(plan, rec, Path::new("/"), Duration::ZERO);
    (0..rec.incs.len())
        .filter(|&i| cx.allowed(i, Table::PodDeletion).is_some() && cx.actual(i).is_some())
        .count()
}

/// Checks a run against every rule.
pub fn check(plan: &Plan, rec: &Record, vol: &Path, slack: Duration) -> Vec<Violation> {
    let cx = Ctx::new(plan, rec, vol, slack);
    let mut all: Vec<Violation> = RULES.iter().flat_map(|r| (r.check)(&cx)).collect();
    for v in &mut all {
        v.known = KNOWN
            .iter()
            .find(|k| k.rule == v.rule && k.says.is_none_or(|w| v.text.contains(w)))
            .map(|k| k.what);
    }
    all
}

/// How long a signal may take to reach a program, and how soon after its first stop signal a
/// program may end, before a signal it never received counts as dropped.
const IN_FLIGHT: u64 = 1_000_000_000;
const AFTER_STOP: u64 = 250_000_000;
const TERM: i32 = 15;
const INT: i32 = 2;
const KILL: i32 = 9;

fn is_term(sig: i32) -> bool {
    sig == TERM || sig == INT
}

/// What the helpers of one start reported, digested.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// The program (CMD or daemon) said `start`.
    pub started: Option<u64>,
    /// The first stop signal (TERM or INT) it received.
    pub first_stop: Option<(u64, i32)>,
    /// It ended by itself.
    pub own: Option<(u64, OwnEnd)>,
    /// It ended after a stop signal: (when, code, died of it).
    pub stopped: Option<(u64, i32, bool)>,
    /// Its own shell code, when known (a program that reported no end was SIGKILLed).
    pub status: Option<i32>,
    /// The earliest time this start could have begun to end.
    pub end_lo: u64,
    /// The program's first reaction: its first stop signal or its own end.
    pub react: u64,
    /// When the supervisor was gone (exit seen, or the kill).
    pub gone: u64,
}

/// A way a writer's marker can be seen ended: a start's end or a forged marker.
#[derive(Debug, Clone)]
struct End {
    lo: u64,
    hi: u64,
    /// Seen until then at the latest (a later start of the writer removes it), and surely
    /// until `removed_lo`.
    until: u64,
    removed_lo: u64,
    exit_code: Option<i64>,
    /// The exit code read is not known for sure (a forged marker may have replaced it).
    unsure: bool,
    vanished: bool,
    /// It was (or may have been) stopped by a signal from outside / ended otherwise.
    requested: bool,
    failure: bool,
    /// It surely counted for a reader alive then (for bounds; a possible one is enough for
    /// outcomes).
    sure: bool,
    inc: Option<usize>,
}

struct Ctx<'a> {
    plan: &'a Plan,
    rec: &'a Record,
    vol: &'a Path,
    slack: u64,
    facts: Vec<Facts>,
    /// Per container with a `--done-file`: the ways its marker was seen ended.
    ends: Vec<Vec<End>>,
}

impl<'a> Ctx<'a> {
    fn new(plan: &'a Plan, rec: &'a Record, vol: &'a Path, slack: Duration) -> Ctx<'a> {
        let facts = rec
            .incs
            .iter()
            .enumerate()
            .map(|(i, inc)| facts(rec, i, inc))
            .collect();
        let mut cx = Ctx {
            plan,
            rec,
            vol,
            slack: slack.as_nanos() as u64,
            facts,
            ends: Vec::new(),
        };
        cx.ends = (0..plan.containers.len())
            .map(|ci| cx.ends_of(ci))
            .collect();
        // A sidecar's end is `requested` when a term signal may have stopped it, a `failure`
        // when anything else may have: known once the ends of what it waits for are
        // (containers wait only on earlier ones).
        for ci in 0..plan.containers.len() {
            let kinds: Vec<(usize, bool, bool)> = cx.ends[ci]
                .iter()
                .enumerate()
                .filter_map(|(k, e)| {
                    let i = e.inc?;
                    (!e.vanished && !cx.plan.containers[ci].is_main()).then(|| {
                        let t = cx.sidecar_triggers(i);
                        let own = cx.own_first(i).is_some();
                        let requested = !t.terms.is_empty();
                        (k, requested, own || !t.settles.is_empty() || !requested)
                    })
                })
                .collect();
            for (k, requested, failure) in kinds {
                cx.ends[ci][k].requested |= requested;
                cx.ends[ci][k].failure |= failure;
            }
        }
        cx
    }

    fn c(&self, i: usize) -> &Container {
        &self.plan.containers[self.rec.incs[i].ctr]
    }

    fn who(&self, i: usize) -> String {
        let inc = &self.rec.incs[i];
        format!("{}#{}", self.c(i).name, inc.start_no)
    }

    fn ms(&self, t: u64) -> String {
        self.rec.ms(t)
    }

    /// Term signals sent to start `i` before `before`.
    fn terms(&self, i: usize, before: u64) -> Vec<(u64, i32)> {
        self.rec
            .sent
            .iter()
            .filter(|s| s.inc == i && is_term(s.sig) && s.t < before)
            .map(|s| (s.t, s.sig))
            .collect()
    }

    /// Until when a stop sent to start `i` may have found its program still running: its first
    /// reaction, or, when that was its own end, a moment later. The helper reports its end and
    /// then exits; until the kernel has it gone, the supervisor sees a running program, asks it
    /// to stop and calls the end `stopped` (a main with CMD's own code), which is as true.
    fn signal_window(&self, i: usize) -> u64 {
        let f = &self.facts[i];
        match self.own_first(i) {
            Some((t, _)) if t == f.react => f.react + EXITING.as_nanos() as u64,
            _ => f.react,
        }
    }

    /// The program's own end, when it came before any stop signal reached it.
    fn own_first(&self, i: usize) -> Option<(u64, OwnEnd)> {
        let f = &self.facts[i];
        f.own
            .filter(|(t, _)| f.first_stop.is_none_or(|(s, _)| *t < s))
    }

    /// The ways container `ci`'s marker was seen ended (empty without `--done-file`).
    fn ends_of(&self, ci: usize) -> Vec<End> {
        if !self.plan.containers[ci].done_file {
            return Vec::new();
        }
        let starts: Vec<usize> = (0..self.rec.incs.len())
            .filter(|&i| self.rec.incs[i].ctr == ci)
            .collect();
        let mut ends = Vec::new();
        for &i in &starts {
            let f = &self.facts[i];
            let inc = &self.rec.incs[i];
            let seen = self.seen_marker(i);
            let lo = inc
                .killed
                .map(|k| k.0)
                .filter(|_| seen.vanished)
                .unwrap_or(f.end_lo);
            let (until_lo, until) = self.removed_after(&starts, f.gone);
            ends.push(End {
                lo,
                hi: f.gone,
                until,
                removed_lo: until_lo,
                exit_code: seen.exit_code,
                unsure: seen.forged.is_some(),
                vanished: seen.vanished,
                requested: seen.forged == Some(true),
                failure: seen.vanished || seen.forged == Some(false),
                sure: until_lo > f.gone + self.slack,
                inc: Some(i),
            });
        }
        for fg in self.rec.forges.iter().filter(|f| f.ctr == ci) {
            // A live writer's lease makes a forged marker wait; its end replaces it.
            let held = starts.iter().any(|&i| {
                let f = &self.facts[i];
                f.started.is_some_and(|s| s < fg.t) && f.gone > fg.t
            });
            let alive = starts
                .iter()
                .any(|&i| self.rec.incs[i].start <= fg.t && self.facts[i].gone >= fg.t);
            let (until_lo, until) = self.removed_after(&starts, fg.t);
            if !held {
                ends.push(End {
                    lo: fg.t,
                    hi: fg.t,
                    until,
                    removed_lo: if alive { fg.t } else { until_lo },
                    exit_code: fg.exit_code,
                    unsure: false,
                    vanished: false,
                    requested: fg.stop_request,
                    failure: !fg.stop_request,
                    sure: !alive && until_lo > fg.t + self.slack,
                    inc: None,
                });
            }
        }
        ends
    }

    /// When a marker there at `t` was removed by the next start of its writer (`starts`), which
    /// removes a stale marker after it is spawned and before its program runs: (at the
    /// earliest, at the latest).
    fn removed_after(&self, starts: &[usize], t: u64) -> (u64, u64) {
        let later = starts.iter().filter(|&&i| {
            let f = &self.facts[i];
            f.started.unwrap_or(f.gone) > t
        });
        let lo = later
            .clone()
            .map(|&i| self.rec.incs[i].start.max(t))
            .min()
            .unwrap_or(u64::MAX);
        let hi = later
            .map(|&i| self.facts[i].started.unwrap_or(self.facts[i].gone))
            .min()
            .unwrap_or(u64::MAX);
        (lo, hi)
    }

    /// What a reader found once start `i` was gone.
    fn seen_marker(&self, i: usize) -> Seen {
        let inc = &self.rec.incs[i];
        let killed = inc.killed.is_some();
        let Some(bytes) = &inc.marker else {
            return Seen {
                exit_code: None,
                vanished: true,
                forged: None,
            };
        };
        if let Some(fg) = self.rec.forges.iter().find(|f| &f.content == bytes) {
            // A forged marker over it: a reader may have seen either.
            return Seen {
                exit_code: fg.exit_code,
                vanished: killed,
                forged: Some(fg.stop_request),
            };
        }
        let code = serde_json::from_slice::<Value>(bytes)
            .ok()
            .and_then(|v| v.get("exit_code").and_then(Value::as_i64));
        Seen {
            exit_code: code,
            vanished: killed && self.is_stale(i),
            forged: None,
        }
    }

    /// The marker after start `i` is the one its previous start left.
    fn is_stale(&self, i: usize) -> bool {
        let inc = &self.rec.incs[i];
        self.rec.incs[..i]
            .iter()
            .rev()
            .find(|p| p.ctr == inc.ctr)
            .is_some_and(|p| p.marker.is_some() && p.marker == inc.marker)
    }

    /// Why sidecar start `i` may have been asked to stop before its daemon reacted.
    fn sidecar_triggers(&self, i: usize) -> Triggers {
        let c = self.c(i);
        let start = self.rec.incs[i].start;
        let window = self.signal_window(i);
        let settles = match c.waits_on() {
            Some(up) => self.ends[up]
                .iter()
                .filter(|e| e.lo < window && e.until > start)
                .filter(|e| !c.on_success || counts_on_success(e))
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        Triggers {
            terms: self.terms(i, window),
            settles,
        }
    }

    /// The required sidecars' ends main start `i` may have seen before CMD reacted (see
    /// [`Ctx::signal_window`]): (container,
    /// end, stale: it was over before this start began).
    fn dependencies(&self, i: usize) -> Vec<(usize, End, bool)> {
        let window = self.signal_window(i);
        let start = self.rec.incs[i].start;
        let mut out = Vec::new();
        for &r in &self.c(i).requires {
            for e in &self.ends[r] {
                if e.lo < window && e.until > start {
                    out.push((r, e.clone(), e.hi < start));
                }
            }
        }
        out
    }

    /// Main start `i` has no gate, and a required sidecar's end was surely on the volume when it
    /// looked (before it started CMD): its end before this start, not yet removed by a restart.
    fn ended_at_start(&self, i: usize) -> Vec<(usize, End, bool)> {
        if !self.c(i).wait_for.is_empty() {
            return Vec::new();
        }
        let f = &self.facts[i];
        let start = self.rec.incs[i].start;
        let looked = f.started.unwrap_or(f.gone);
        self.dependencies(i)
            .into_iter()
            .filter(|(_, e, _)| e.hi < start && e.removed_lo > looked)
            .collect()
    }

    /// The required sidecars' ends main start `i` may have found at its first look (any of them
    /// may be the one it names when one surely ended before it started). That look happens
    /// somewhere between the start and CMD's start (or the start's end, when CMD never ran), so
    /// an end counts if it may have been on the volume at any moment of that window: written
    /// before its end, and not surely removed (by the sidecar's own restart) before its start.
    fn maybe_ended_at_start(&self, i: usize) -> Vec<(usize, End, bool)> {
        let f = &self.facts[i];
        let start = self.rec.incs[i].start;
        let looked = f.started.unwrap_or(f.gone);
        self.dependencies(i)
            .into_iter()
            .filter(|(_, e, _)| e.lo < looked && e.until > start)
            .collect()
    }

    fn marker_of(&self, i: usize) -> Option<Value> {
        let bytes = self.rec.incs[i].marker.as_ref()?;
        if self.rec.forges.iter().any(|f| &f.content == bytes) || self.is_stale(i) {
            return None;
        }
        serde_json::from_slice(bytes).ok()
    }
}

/// What a reader found once a start was gone.
struct Seen {
    exit_code: Option<i64>,
    /// No marker of its own: the lease released without one.
    vanished: bool,
    /// A forged marker was there instead (its `stop_request`): a reader may have seen either.
    forged: Option<bool>,
}

struct Triggers {
    terms: Vec<(u64, i32)>,
    settles: Vec<End>,
}

fn counts_on_success(e: &End) -> bool {
    e.unsure || (!e.vanished && e.exit_code.is_none_or(|c| c == 0))
}

fn facts(rec: &Record, i: usize, inc: &Inc) -> Facts {
    let role = if inc.ctr == 0 { "cmd" } else { "daemon" };
    let mut f = Facts::default();
    for e in inc.events.iter().filter(|e| e.role == role) {
        match e.what {
            What::Start => f.started = f.started.or(Some(e.t)),
            What::Got { sig, .. } if is_term(sig) && f.first_stop.is_none() => {
                f.first_stop = Some((e.t, sig));
            }
            What::Own(end) => f.own = Some((e.t, end)),
            What::Stopped { code, died } => f.stopped = Some((e.t, code, died)),
            _ => {}
        }
    }
    f.status = match (f.own, f.stopped) {
        (Some((_, OwnEnd::Exit(c))), _) => Some(c),
        (Some((_, OwnEnd::Die(s))), _) => Some(128 + s),
        (Some((_, OwnEnd::Daemonize)), _) => Some(0),
        (None, Some((_, c, _))) => Some(c),
        (None, None) if f.started.is_some() && inc.killed.is_none() => Some(128 + KILL),
        (None, None) => None,
    };
    f.gone = inc.killed.map(|k| k.0).or(inc.end).unwrap_or(rec.ended);
    let sends = rec
        .sent
        .iter()
        .filter(|s| s.inc == i && is_term(s.sig))
        .map(|s| s.t);
    let mut lo: Vec<u64> = [
        f.first_stop.map(|s| s.0),
        f.own.map(|o| o.0),
        f.stopped.map(|s| s.0),
        inc.killed.map(|k| k.0),
    ]
    .into_iter()
    .flatten()
    .chain(sends)
    .collect();
    if f.started.is_none() {
        lo.push(inc.start);
    }
    // A supervisor that died of a signal (a crash) ended when the signal came, whatever its
    // program did: at a send of that signal, or at any time since it started.
    if let (Some(sig), None) = (inc.death_signal(), inc.killed) {
        let sent = rec
            .sent
            .iter()
            .filter(|s| s.inc == i && s.sig == sig)
            .map(|s| s.t)
            .min();
        lo.push(sent.unwrap_or(inc.start));
    }
    f.end_lo = lo.into_iter().min().unwrap_or(inc.start);
    f.react = [f.first_stop.map(|s| s.0), f.own.map(|o| o.0)]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(f.gone);
    f
}

/// An ending the tables allow: its marker reason, exit code, whether `stop_request` is set
/// (None: either) and which required sidecar `dependency` names (None: not checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub reason: &'static str,
    pub code: i32,
    pub stop_request: Option<bool>,
    pub dep: Option<usize>,
}

fn out(reason: &'static str, code: i32, stop_request: Option<bool>, dep: Option<usize>) -> Outcome {
    Outcome {
        reason,
        code,
        stop_request,
        dep,
    }
}

/// Which outcome table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// The README's tables before issue 22 item 1.
    Readme,
    /// The README's tables since: a stop from outside is `stopped`, not a dependency failure.
    PodDeletion,
}

/// What a finished start actually reported.
struct Actual {
    reason: Option<String>,
    code: i32,
    stop_request: bool,
    dep: Option<String>,
}

impl Ctx<'_> {
    /// The endings the table allows for start `i`; None when there is nothing to check (the
    /// supervisor was killed, or its program died before it could report anything).
    fn allowed(&self, i: usize, table: Table) -> Option<Vec<Outcome>> {
        let inc = &self.rec.incs[i];
        // Killed, or dead of a signal (`no-crash` and `survives-signals` tell that story).
        if inc.killed.is_some() || inc.death_signal().is_some() {
            return None;
        }
        if self.c(i).is_main() {
            self.main_allowed(i, table)
        } else {
            self.sidecar_allowed(i, table)
        }
    }

    fn main_allowed(&self, i: usize, table: Table) -> Option<Vec<Outcome>> {
        let f = &self.facts[i];
        let c = self.c(i);
        let inc = &self.rec.incs[i];
        let cmd_ran = self
            .marker_of(i)
            .is_some_and(|m| !m["command_exit_code"].is_null());
        let new = table == Table::PodDeletion;
        let terms = self.terms(i, self.signal_window(i));
        let deps = self.dependencies(i);
        let mut v = Vec::new();
        // Without a gate, a sidecar's end already on the volume when the main looks ends the
        // run at once: CMD never runs.
        let at_start = self.ended_at_start(i);
        if (f.started.is_none() && !cmd_ran) || !at_start.is_empty() {
            let stale = !at_start.is_empty();
            let (terms, deps) = match stale {
                false => (terms, deps),
                true => (Vec::new(), self.maybe_ended_at_start(i)),
            };
            for (_, sig) in &terms {
                v.push(out("cancelled", 128 + sig, None, None));
            }
            for (r, e, _) in &deps {
                // At its start a main cannot tell a sidecar that stopped because an earlier
                // main was done from one that failed: any end not asked from outside fails it.
                if e.failure || !new || (stale && !e.requested) {
                    v.push(out("dependency-failed", 122, None, Some(*r)));
                }
                // Stopped with the pod before CMD started: cancelled by the sidecar's signal.
                if e.requested && new {
                    for sig in [TERM, INT] {
                        v.push(out("cancelled", 128 + sig, None, None));
                    }
                }
            }
            if let Some(w) = c.wait_timeout {
                let waited = inc.end.unwrap_or(self.rec.ended) - inc.start;
                if waited + 10_000_000 >= w.as_nanos() as u64 {
                    v.push(out("not-ready", 124, None, None));
                }
            }
            return Some(v);
        }
        if f.started.is_none() {
            // It ran but died before it could report: of a signal forwarded too early.
            if let Some(st) = self
                .marker_of(i)
                .and_then(|m| m["command_exit_code"].as_i64())
            {
                v.push(out("signaled", st as i32, None, None));
                v.push(out("stopped", st as i32, Some(true), None));
            }
        }
        let st = f.status.or_else(|| {
            self.marker_of(i)
                .and_then(|m| m["command_exit_code"].as_i64().map(|c| c as i32))
        })?;
        let killed_by_grace = f.started.is_some() && f.own.is_none() && f.stopped.is_none();
        let died = f.stopped.is_some_and(|s| s.2) || st > 128 && f.stopped.is_none();
        if let Some((_, end)) = self.own_first(i) {
            v.push(match end {
                OwnEnd::Die(s) => out("signaled", 128 + s, None, None),
                _ => out("exited", st, None, None),
            });
        }
        // A stop asked from outside (or through a sidecar stopped from outside).
        let stopped = |dep: Option<usize>, v: &mut Vec<Outcome>| {
            if killed_by_grace {
                v.push(out("grace-killed", 128 + KILL, None, None));
            } else if new {
                v.push(out("stopped", st, Some(true), dep));
            } else if died {
                v.push(out("signaled", st, None, None));
            } else {
                v.push(out("exited", st, None, None));
            }
        };
        if !terms.is_empty() {
            stopped(None, &mut v);
        }
        for (r, e, _stale) in &deps {
            if e.failure || !new {
                v.push(out("dependency-failed", 122, None, Some(*r)));
            }
            if e.requested && new {
                stopped(Some(*r), &mut v);
            }
        }
        Some(v)
    }

    fn sidecar_allowed(&self, i: usize, table: Table) -> Option<Vec<Outcome>> {
        let f = &self.facts[i];
        f.started?;
        let t = self.sidecar_triggers(i);
        let mut v = Vec::new();
        if let Some((_, end)) = self.own_first(i) {
            let linger = self.c(i).children[self.rec.incs[i].start_no].linger;
            v.push(match end {
                OwnEnd::Exit(0) if linger => out("daemonized", 121, None, None),
                OwnEnd::Exit(c) => out("exited", c, None, None),
                OwnEnd::Die(s) => out("signaled", 128 + s, None, None),
                OwnEnd::Daemonize => out("daemonized", 121, None, None),
            });
        }
        if !t.terms.is_empty() {
            v.push(out("stopped", 0, Some(table == Table::PodDeletion), None));
        }
        if !t.settles.is_empty() {
            v.push(out("stopped", 0, Some(false), None));
        }
        Some(v)
    }

    fn actual(&self, i: usize) -> Option<Actual> {
        let inc = &self.rec.incs[i];
        let code = inc.code()?;
        if !self.c(i).done_file {
            return Some(Actual {
                reason: None,
                code,
                stop_request: false,
                dep: None,
            });
        }
        let m = self.marker_of(i)?;
        Some(Actual {
            reason: m["reason"].as_str().map(str::to_string),
            code: m["exit_code"].as_i64().map_or(-1, |c| c as i32),
            stop_request: m.get("stop_request").is_some_and(|s| !s.is_null()),
            dep: m["dependency"]["path"].as_str().map(str::to_string),
        })
    }

    fn matches(&self, a: &Actual, o: &Outcome) -> bool {
        let Some(reason) = &a.reason else {
            return a.code == o.code;
        };
        let dep_ok = match o.dep {
            None => true,
            Some(r) => a.dep.as_deref() == Some(self.plan.done(self.vol, r).as_str()),
        };
        reason == o.reason
            && a.code == o.code
            && o.stop_request.is_none_or(|s| s == a.stop_request)
            && dep_ok
    }

    /// The outcome verdict for start `i`: None when it passes, else whether the README's table
    /// (without the pod-deletion rule) would have allowed it, and the words.
    fn verdict(&self, i: usize) -> Option<(bool, String)> {
        let allowed = self.allowed(i, Table::PodDeletion)?;
        let a = self.actual(i)?;
        if allowed.iter().any(|o| self.matches(&a, o)) {
            return None;
        }
        let readme = self
            .allowed(i, Table::Readme)
            .is_some_and(|r| r.iter().any(|o| self.matches(&a, o)));
        let mut shown: Vec<String> = Vec::new();
        for o in &allowed {
            let o = self.show(o);
            if !shown.contains(&o) {
                shown.push(o);
            }
        }
        let got = format!(
            "{} {}{}{}",
            a.reason.as_deref().unwrap_or("(no marker)"),
            a.code,
            if a.stop_request { " stop_request" } else { "" },
            a.dep
                .as_deref()
                .map(|d| format!(" dependency {d}"))
                .unwrap_or_default()
        );
        let why = self.story(i);
        Some((
            readme,
            format!(
                "{}: ended `{got}`; allowed: {}; {why}",
                self.who(i),
                if shown.is_empty() {
                    "nothing (no cause seen)".to_string()
                } else {
                    shown.join(" | ")
                }
            ),
        ))
    }

    fn show(&self, o: &Outcome) -> String {
        let mut s = format!("{} {}", o.reason, o.code);
        match o.stop_request {
            Some(true) => s.push_str(" +stop_request"),
            Some(false) => s.push_str(" -stop_request"),
            None => {}
        }
        if let Some(r) = o.dep {
            s.push_str(&format!(" dep {}", self.plan.containers[r].name));
        }
        s
    }

    /// What the timeline says about start `i`, for a violation's message.
    fn story(&self, i: usize) -> String {
        let f = &self.facts[i];
        let mut parts = Vec::new();
        if let Some(t) = f.started {
            parts.push(format!("program started {}", self.ms(t)));
        }
        for (t, sig) in self.terms(i, u64::MAX) {
            parts.push(format!(
                "{} sent {}",
                crate::plan::sig_name(sig),
                self.ms(t)
            ));
        }
        if let Some((t, sig)) = f.first_stop {
            parts.push(format!(
                "program got {} {}",
                crate::plan::sig_name(sig),
                self.ms(t)
            ));
        }
        if let Some((t, end)) = f.own {
            parts.push(format!("program ended by itself ({end:?}) {}", self.ms(t)));
        }
        if let Some((t, code, _)) = f.stopped {
            parts.push(format!(
                "program ended {code} after its stop {}",
                self.ms(t)
            ));
        }
        if self.c(i).is_main() {
            for (r, e, stale) in self.dependencies(i) {
                parts.push(format!(
                    "{} ended {} ({}{}{})",
                    self.plan.containers[r].name,
                    self.ms(e.lo),
                    if e.vanished { "vanished" } else { "marker" },
                    if e.requested {
                        ", stopped from outside"
                    } else {
                        ""
                    },
                    if stale { ", before this start" } else { "" },
                ));
            }
        } else {
            let t = self.sidecar_triggers(i);
            for e in t.settles {
                parts.push(format!("its wait-file counted from {}", self.ms(e.lo)));
            }
        }
        parts.join(", ")
    }
}

fn outcome(cx: &Ctx) -> Vec<Violation> {
    verdicts(cx, false, "outcome")
}

fn pod_deletion(cx: &Ctx) -> Vec<Violation> {
    verdicts(cx, true, "pod-deletion")
}

/// The outcome verdicts the older table allows (`readme`), or not.
fn verdicts(cx: &Ctx, readme: bool, rule: &'static str) -> Vec<Violation> {
    (0..cx.rec.incs.len())
        .filter_map(|i| cx.verdict(i))
        .filter(|(r, _)| *r == readme)
        .map(|(_, text)| Violation {
            rule,
            text,
            known: None,
        })
        .collect()
}

fn ends_in_time(cx: &Ctx) -> Vec<Violation> {
    let mut v: Vec<Violation> = cx
        .rec
        .findings
        .iter()
        .filter(|f| f.rule == "ends-in-time")
        .map(|f| Violation {
            rule: "ends-in-time",
            text: f.text.clone(),
            known: None,
        })
        .collect();
    for i in 0..cx.rec.incs.len() {
        if let Some((bound, why)) = cx.bound(i) {
            let f = &cx.facts[i];
            if f.gone > bound {
                let killed = cx.rec.incs[i].killed.map(|k| k.1);
                v.push(Violation {
                    rule: "ends-in-time",
                    text: format!(
                        "{}: still running at {}{}, past its bound {} ({why})",
                        cx.who(i),
                        cx.ms(f.gone),
                        match killed {
                            Some(KillWhy::Kubelet) => " when the kubelet SIGKILLed it",
                            Some(KillWhy::Oom) => " when it was OOM-killed",
                            None => "",
                        },
                        cx.ms(bound)
                    ),
                    known: None,
                });
            }
        }
    }
    v
}

impl Ctx<'_> {
    /// The latest time start `i` may still run, and why: the earliest of what ends it plus what
    /// its options allow for that.
    fn bound(&self, i: usize) -> Option<(u64, String)> {
        let f = &self.facts[i];
        let c = self.c(i);
        let inc = &self.rec.incs[i];
        let ns = |d: Duration| d.as_nanos() as u64;
        let stop = ns(c.stop_delay + c.grace) + self.slack;
        let mut b: Vec<(u64, String)> = Vec::new();
        // What a program leaves behind gets the stop signal, SIGKILL after --grace.
        let linger = c.children[inc.start_no].linger
            || matches!(c.children[inc.start_no].life, Some((_, OwnEnd::Daemonize)));
        for (t, what) in [
            (f.own.map(|o| o.0), "its program ended"),
            (f.stopped.map(|s| s.0), "its program ended"),
        ] {
            if let Some(t) = t {
                let extra = if linger { ns(c.grace) } else { 0 };
                b.push((t + self.slack + extra, what.into()));
            }
        }
        for (t, sig) in self.terms(i, u64::MAX) {
            b.push((
                t + stop,
                format!("{} {}", crate::plan::sig_name(sig), self.ms(t)),
            ));
        }
        if c.is_main() {
            let gated = !c.wait_for.is_empty();
            for (r, e, stale) in self.dependencies(i) {
                // A gate waits for a sidecar that ended before CMD started to come back.
                let before_cmd = f.started.is_none_or(|s| e.hi < s);
                if !stale && e.sure && !(gated && before_cmd) {
                    let name = &self.plan.containers[r].name;
                    b.push((e.hi + stop, format!("{name} ended {}", self.ms(e.hi))));
                }
            }
            if !self.ended_at_start(i).is_empty() {
                b.push((
                    inc.start + stop,
                    "a required sidecar had ended before it started".into(),
                ));
            }
            if let (Some(w), None) = (c.wait_timeout, f.started) {
                b.push((inc.start + ns(w) + self.slack, "--wait-timeout".into()));
            }
        } else {
            for e in self
                .sidecar_triggers(i)
                .settles
                .into_iter()
                .filter(|e| e.sure)
            {
                let at = e.hi.max(inc.start);
                b.push((at + stop, format!("its wait-file counted {}", self.ms(at))));
            }
        }
        b.into_iter().min_by_key(|x| x.0)
    }
}

fn marker_valid(cx: &Ctx) -> Vec<Violation> {
    let mut v = Vec::new();
    for (i, inc) in cx.rec.incs.iter().enumerate() {
        let c = cx.c(i);
        if !c.done_file {
            continue;
        }
        if let Some(text) = cx.marker_problem(i, inc) {
            v.push(Violation {
                rule: "marker-valid",
                text: format!("{}: {text}", cx.who(i)),
                known: None,
            });
        }
    }
    v
}

impl Ctx<'_> {
    fn marker_problem(&self, i: usize, inc: &Inc) -> Option<String> {
        let killed = inc.killed.is_some();
        if inc.death_signal().is_some() && !killed {
            // It crashed: `no-crash` or `survives-signals` says so; the marker is the least of it.
            return None;
        }
        let Some(bytes) = &inc.marker else {
            return (!killed).then(|| "no marker, though its supervisor was not SIGKILLed".into());
        };
        if let Some(fg) = self.rec.forges.iter().find(|f| &f.content == bytes) {
            let after_write = fg.t > self.facts[i].end_lo;
            return (!killed && !after_write).then(|| {
                format!(
                    "its marker is still the one forged at {}, before its end",
                    self.ms(fg.t)
                )
            });
        }
        if killed && self.is_stale(i) {
            return None;
        }
        let text = String::from_utf8_lossy(bytes);
        if let Err(e) = serde_json::from_slice::<supervisor::marker::Marker>(bytes) {
            return Some(format!("marker is not a valid marker ({e}): {text}"));
        }
        let m: Value = serde_json::from_slice(bytes).ok()?;
        let role = if self.c(i).is_main() {
            "main"
        } else {
            "sidecar"
        };
        if m["role"] != role {
            return Some(format!("marker's role is not {role}: {text}"));
        }
        let code = m["exit_code"].as_i64();
        if !killed && code != inc.code().map(i64::from) {
            return Some(format!(
                "marker says exit_code {code:?}, the container exited {:?}: {text}",
                inc.code()
            ));
        }
        let f = &self.facts[i];
        let cmd = m["command_exit_code"].as_i64();
        match (f.status, cmd) {
            (Some(s), Some(c)) if c != i64::from(s) => Some(format!(
                "marker says command_exit_code {c}, the program's own report says {s}: {text}"
            )),
            (_, None) if f.started.is_some() => Some(format!(
                "marker says the program never ran (command_exit_code null), but it reported its start: {text}"
            )),
            _ => None,
        }
    }
}

fn no_crash(cx: &Ctx) -> Vec<Violation> {
    crashes(cx, false)
}

fn survives_signals(cx: &Ctx) -> Vec<Violation> {
    crashes(cx, true)
}

/// Supervisors that died of a signal nobody sent as a kill: `sent` selects the ones whose
/// signal was sent to them (a fault from outside), else the rest.
fn crashes(cx: &Ctx, sent: bool) -> Vec<Violation> {
    let mut v = Vec::new();
    for (i, inc) in cx.rec.incs.iter().enumerate() {
        if inc.killed.is_some() {
            continue;
        }
        let Some(sig) = inc.death_signal() else {
            continue;
        };
        let was_sent = cx.rec.sent.iter().any(|s| s.inc == i && s.sig == sig);
        if was_sent == sent {
            let rule = if sent { "survives-signals" } else { "no-crash" };
            v.push(Violation {
                rule,
                text: format!(
                    "{}: the supervisor itself died of signal {}{}",
                    cx.who(i),
                    crate::plan::sig_name(sig),
                    if sent { " sent to it" } else { " nobody sent" }
                ),
                known: None,
            });
        }
    }
    v
}

fn signals_delivered(cx: &Ctx) -> Vec<Violation> {
    let mut v = Vec::new();
    for s in &cx.rec.sent {
        let i = s.inc;
        let f = &cx.facts[i];
        let inc = &cx.rec.incs[i];
        let Some(started) = f.started else {
            continue;
        };
        let ended = [f.own.map(|o| o.0), f.stopped.map(|x| x.0)]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(f.gone);
        let after_stop = f.first_stop.is_some_and(|(t, _)| ended < t + AFTER_STOP);
        if started > s.t || ended < s.t + IN_FLIGHT || f.gone < s.t + IN_FLIGHT || after_stop {
            continue;
        }
        let role = if cx.c(i).is_main() { "cmd" } else { "daemon" };
        let want = if !cx.c(i).is_main() && is_term(s.sig) {
            TERM
        } else {
            s.sig
        };
        // One stop is asked once: a sidecar's daemon already asked, or a main's copy of the
        // signal its CMD was already asked with (docs/failure-modes.md, signals during
        // --stop-delay).
        let asked = f
            .first_stop
            .is_some_and(|(t, sig)| t <= s.t && (sig == want || !cx.c(i).is_main()));
        if is_term(want) && asked {
            continue;
        }
        let got = inc.events.iter().any(|e| {
            e.role == role && e.t > s.t && matches!(e.what, What::Got { sig, .. } if sig == want)
        });
        if !got {
            v.push(Violation {
                rule: "signals-delivered",
                text: format!(
                    "{}: {} sent to the supervisor {} never reached its program as {}, which ran until {}",
                    cx.who(i),
                    crate::plan::sig_name(s.sig),
                    cx.ms(s.t),
                    crate::plan::sig_name(want),
                    cx.ms(ended)
                ),
                known: None,
            });
        }
    }
    v
}

fn no_spurious_signal(cx: &Ctx) -> Vec<Violation> {
    let mut v = Vec::new();
    for (i, inc) in cx.rec.incs.iter().enumerate() {
        let mut told = Vec::new();
        for e in &inc.events {
            let What::Got { sig, .. } = e.what else {
                continue;
            };
            // A main asks CMD with the signal that stopped a required sidecar, too.
            let requires = &cx.c(i).requires;
            let sent = cx.rec.sent.iter().any(|s| {
                let to = s.inc == i || is_term(sig) && requires.contains(&cx.rec.incs[s.inc].ctr);
                to && s.sig == sig && s.t < e.t
            });
            if sig != TERM && !sent && !told.contains(&(e.role.clone(), sig)) {
                told.push((e.role.clone(), sig));
                v.push(Violation {
                    rule: "no-spurious-signal",
                    text: format!(
                        "{}: its {} received {} {}, which nobody sent",
                        cx.who(i),
                        e.role,
                        crate::plan::sig_name(sig),
                        cx.ms(e.t)
                    ),
                    known: None,
                });
            }
        }
    }
    v
}

fn cwd_released(cx: &Ctx) -> Vec<Violation> {
    cx.rec
        .incs
        .iter()
        .enumerate()
        .filter_map(|(i, inc)| {
            let cwd = inc.cwd.as_deref()?;
            (cwd != "/").then(|| Violation {
                rule: "cwd-released",
                text: format!(
                    "{}: its supervisor still had {cwd} as its working directory a second after it started its program",
                    cx.who(i)
                ),
                known: None,
            })
        })
        .collect()
}

fn findings(cx: &Ctx, rule: &'static str) -> Vec<Violation> {
    cx.rec
        .findings
        .iter()
        .filter(|f| f.rule == rule)
        .map(|f| Violation {
            rule,
            text: f.text.clone(),
            known: None,
        })
        .collect()
}

fn findings_no_leftover(cx: &Ctx) -> Vec<Violation> {
    findings(cx, "no-leftover")
}

fn findings_no_zombie(cx: &Ctx) -> Vec<Violation> {
    findings(cx, "no-zombie")
}

fn findings_pod_clean(cx: &Ctx) -> Vec<Violation> {
    findings(cx, "pod-clean")
}
