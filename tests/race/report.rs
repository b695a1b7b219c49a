//! What the explorer prints: a failing seed in full (its schedule, the violated rules, the
//! kubelet's timeline, what every program reported, every container's log), and the counts of
//! a batch (seeds, events of each kind, violations by rule).

use crate::behaviour::OwnEnd;
use crate::plan::{Plan, sig_name};
use crate::record::{KillWhy, Record, What, Why};
use crate::rules::{self, Violation};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Everything about one run, for a person who has to find out what went wrong.
pub fn detail(plan: &Plan, rec: &Record, violations: &[Violation], vol: &Path) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "=== {}", plan.describe(vol).trim_end());
    let _ = writeln!(
        s,
        "--- violations (RACE_SEED={} replays this run):",
        plan.seed
    );
    for v in violations {
        let _ = writeln!(s, "  {}", line(v));
    }
    let _ = writeln!(s, "--- kubelet timeline:");
    for (t, what) in &rec.log {
        let _ = writeln!(s, "  {:>7} {what}", rec.ms(*t));
    }
    for inc in &rec.incs {
        let name = &plan.containers[inc.ctr].name;
        let _ = writeln!(
            s,
            "--- {name}#{} (pid {}, {} to {}): exit {:?}{}; marker: {}",
            inc.start_no,
            inc.pid,
            rec.ms(inc.start),
            inc.end.map_or("?".into(), |t| rec.ms(t)),
            inc.code(),
            inc.killed.map_or(String::new(), |k| format!(
                ", SIGKILLed {} ({:?})",
                rec.ms(k.0),
                k.1
            )),
            inc.marker
                .as_ref()
                .map_or("absent".into(), |m| String::from_utf8_lossy(m)
                    .trim_end()
                    .to_string())
        );
        for e in &inc.events {
            let _ = writeln!(
                s,
                "    {:>7} {} {}: {:?}",
                rec.ms(e.t),
                e.role,
                e.pid,
                e.what
            );
        }
        for line in inc.log.lines() {
            let _ = writeln!(s, "    | {line}");
        }
    }
    s
}

/// `[rule] text`, or `[rule, known] text` for a violation whose fix is under way.
pub fn line(v: &Violation) -> String {
    let known = if v.known.is_some() { ", known" } else { "" };
    format!("[{}{known}] {}", v.rule, v.text)
}

/// The counts of a batch of seeds.
#[derive(Default)]
pub struct Counts {
    pub seeds: usize,
    pub failed_seeds: Vec<u64>,
    pub events: BTreeMap<String, usize>,
    pub violations: BTreeMap<&'static str, usize>,
    /// Of those, the ones a fix under way explains.
    pub known: BTreeMap<&'static str, usize>,
    pub seeds_violating: BTreeMap<&'static str, Vec<u64>>,
    /// Starts of containers whose ending the outcome rules judged, and the ones they could not
    /// (SIGKILLed, crashed, or the program died before it could report).
    pub judged: usize,
    pub unjudged: usize,
}

impl Counts {
    pub fn add(&mut self, plan: &Plan, rec: &Record, violations: &[Violation]) {
        self.seeds += 1;
        for (k, n) in events(plan, rec) {
            *self.events.entry(k).or_default() += n;
        }
        let mut rules_hit: Vec<&'static str> = Vec::new();
        for v in violations {
            *self.violations.entry(v.rule).or_default() += 1;
            if v.known.is_some() {
                *self.known.entry(v.rule).or_default() += 1;
            }
            if !rules_hit.contains(&v.rule) {
                rules_hit.push(v.rule);
            }
        }
        for r in rules_hit {
            self.seeds_violating.entry(r).or_default().push(plan.seed);
        }
        if violations.iter().any(|v| v.known.is_none()) {
            self.failed_seeds.push(plan.seed);
        }
        let judged = rules::judged(plan, rec);
        self.judged += judged;
        self.unjudged += rec.incs.len() - judged;
    }

    pub fn show(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "race: {} seeds", self.seeds);
        let _ = writeln!(s, "race: events dealt:");
        for (k, n) in &self.events {
            let _ = writeln!(s, "  {n:>7}  {k}");
        }
        let _ = writeln!(
            s,
            "race: container starts whose ending was judged: {} (not judged: {}, SIGKILLed or crashed)",
            self.judged, self.unjudged
        );
        let _ = writeln!(
            s,
            "race: violations by rule (violations, of which known / seeds, first seeds):"
        );
        for r in rules::RULES {
            let n = self.violations.get(r.id).copied().unwrap_or(0);
            let k = self.known.get(r.id).copied().unwrap_or(0);
            let seeds = self.seeds_violating.get(r.id).cloned().unwrap_or_default();
            let first: Vec<String> = seeds.iter().take(5).map(u64::to_string).collect();
            let first = if first.is_empty() {
                String::new()
            } else {
                format!("  seeds {}", first.join(" "))
            };
            let _ = writeln!(s, "  {n:>7}, {k:>7} / {:<5} {}{first}", seeds.len(), r.id);
        }
        let _ = writeln!(
            s,
            "race: known violations are explained by fixes under way:"
        );
        for k in rules::KNOWN {
            let _ = writeln!(s, "  {}: {}", k.rule, k.what);
        }
        s
    }
}

/// The events of a run, by kind.
fn events(plan: &Plan, rec: &Record) -> Vec<(String, usize)> {
    let mut v: Vec<(String, usize)> = Vec::new();
    let mut add = |k: String| match v.iter_mut().find(|(key, _)| *key == k) {
        Some(e) => e.1 += 1,
        None => v.push((k, 1)),
    };
    add(if plan.shared_ns {
        "pod: one shared PID namespace"
    } else {
        "pod: a PID namespace per container"
    }
    .into());
    match (rec.deletion, rec.deadline_hit) {
        (Some(_), false) => add("pod deleted (TERM to all, jittered)".into()),
        (Some(_), true) => add("pod deleted at its deadline (activeDeadlineSeconds)".into()),
        (None, _) => add("pod ended by itself".into()),
    }
    for s in &rec.sent {
        add(match s.why {
            Why::Delete => "TERM on deletion".into(),
            Why::Native => "TERM to a native sidecar after the mains".into(),
            Why::Inject => format!("signal {} to a supervisor", sig_class(s.sig)),
        });
    }
    for (_, _, why) in &rec.kills {
        add(match why {
            KillWhy::Oom => "supervisor OOM-killed (SIGKILL)".into(),
            KillWhy::Kubelet => "SIGKILL after the grace period (kubelet)".into(),
        });
    }
    for _ in &rec.forges {
        add("marker forged".into());
    }
    for _ in 0..rec.restarts {
        add("container restarted".into());
    }
    for inc in &rec.incs {
        let role = if inc.ctr == 0 { "CMD" } else { "daemon" };
        for e in &inc.events {
            match e.what {
                What::Own(OwnEnd::Exit(c)) if e.role != "linger" => {
                    add(format!(
                        "{role} ended by itself ({})",
                        if c == 0 { "exit 0" } else { "exit != 0" }
                    ));
                }
                What::Own(OwnEnd::Die(_)) => add(format!("{role} crashed (signal)")),
                What::Own(OwnEnd::Daemonize) => add("daemon daemonized".into()),
                _ => {}
            }
        }
    }
    v
}

fn sig_class(sig: i32) -> String {
    match sig {
        4 | 5 | 6 | 7 | 8 | 11 | 31 => "fault (ILL/TRAP/ABRT/BUS/FPE/SEGV/SYS)".into(),
        34..=64 => "RTMIN+n".into(),
        _ => sig_name(sig),
    }
}
