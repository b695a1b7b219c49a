//! What a run left behind for the rules: every start of every container (when, how it ended,
//! its marker as it was when it ended, what its programs reported), every signal, kill and forged
//! marker the kubelet and the schedule dealt, and what the kubelet itself saw going wrong while
//! it ran (processes left behind, zombies, a pod that did not end).

use crate::behaviour::OwnEnd;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

/// Why a signal was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// Pod deletion (or the deadline's deletion).
    Delete,
    /// The schedule's signal.
    Inject,
    /// The kubelet stopping a native sidecar once the regular containers have ended.
    Native,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillWhy {
    Oom,
    /// The pod's grace period ran out.
    Kubelet,
}

#[derive(Debug, Clone)]
pub struct Sent {
    pub t: u64,
    pub inc: usize,
    pub sig: i32,
    pub why: Why,
}

#[derive(Debug, Clone)]
pub struct Forge {
    pub t: u64,
    pub ctr: usize,
    pub content: Vec<u8>,
    pub exit_code: Option<i64>,
    pub stop_request: bool,
}

/// What a helper reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum What {
    Start,
    Got {
        sig: i32,
        from: i32,
    },
    /// Ended after a stop signal: exit code, or death by the signal (`died`).
    Stopped {
        code: i32,
        died: bool,
    },
    /// Ended by itself.
    Own(OwnEnd),
    Up,
    Fork,
}

#[derive(Debug, Clone)]
pub struct HelperEv {
    pub t: u64,
    pub role: String,
    pub pid: i32,
    pub what: What,
}

/// One start of one container.
#[derive(Debug, Clone)]
pub struct Inc {
    pub ctr: usize,
    pub start_no: usize,
    pub pid: i32,
    pub start: u64,
    pub end: Option<u64>,
    pub status: Option<ExitStatus>,
    pub killed: Option<(u64, KillWhy)>,
    /// The `--done-file` as it was right after this start ended (None: absent).
    pub marker: Option<Vec<u8>>,
    pub events: Vec<HelperEv>,
    pub log: String,
    /// The supervisor's working directory, once its child had run a while.
    pub cwd: Option<String>,
}

impl Inc {
    /// The exit code the kubelet reports (128+N for a signal).
    pub fn code(&self) -> Option<i32> {
        self.status
            .map(|s| s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0)))
    }

    /// The signal that killed the supervisor itself, if one did.
    pub fn death_signal(&self) -> Option<i32> {
        self.status.and_then(|s| s.signal())
    }
}

/// Something the kubelet saw while the run went on.
#[derive(Debug, Clone)]
pub struct Finding {
    pub rule: &'static str,
    pub text: String,
}

#[derive(Debug, Default)]
pub struct Record {
    pub t0: u64,
    pub incs: Vec<Inc>,
    pub sent: Vec<Sent>,
    pub kills: Vec<(u64, usize, KillWhy)>,
    pub forges: Vec<Forge>,
    pub deletion: Option<u64>,
    /// The deletion was the deadline's (activeDeadlineSeconds), not the schedule's.
    pub deadline_hit: bool,
    pub restarts: usize,
    /// The kubelet's own timeline, for people.
    pub log: Vec<(u64, String)>,
    pub findings: Vec<Finding>,
    pub ended: u64,
}

impl Record {
    pub fn note(&mut self, text: String) {
        self.log.push((crate::sys::now(), text));
    }

    /// Milliseconds since the pod started, for messages.
    pub fn ms(&self, t: u64) -> String {
        format!("+{}ms", t.saturating_sub(self.t0) / 1_000_000)
    }
}

/// Reads the lines the helpers of one start wrote (see `helper`).
pub fn parse_events(text: &str) -> Vec<HelperEv> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<HelperEv> {
    let mut f = line.split_whitespace();
    let t = f.next()?.parse().ok()?;
    let role = f.next()?.to_string();
    let pid = f.next()?.parse().ok()?;
    let rest: Vec<&str> = f.collect();
    let what = match rest.as_slice() {
        ["start"] => What::Start,
        ["up"] => What::Up,
        ["fork", ..] => What::Fork,
        ["got", sig, from, ..] => What::Got {
            sig: sig.parse().ok()?,
            from: from.strip_prefix("from=")?.parse().ok()?,
        },
        ["exit", c, "stop"] => What::Stopped {
            code: c.parse().ok()?,
            died: false,
        },
        ["die", s, "stop"] => What::Stopped {
            code: 128 + s.parse::<i32>().ok()?,
            died: true,
        },
        ["exit", c, "self"] => What::Own(OwnEnd::Exit(c.parse().ok()?)),
        ["die", s, "self"] => What::Own(OwnEnd::Die(s.parse().ok()?)),
        ["exit", "0", "daemonize"] => What::Own(OwnEnd::Daemonize),
        _ => return None,
    };
    Some(HelperEv { t, role, pid, what })
}
