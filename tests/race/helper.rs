//! The programs the pods run, as roles of this same binary: `race helper ROLE EVENTS [key=value]`.
//! `cmd` is a main's CMD and `daemon` a sidecar's daemon (both take a [`Behaviour`]), `linger` is
//! what either leaves behind, `pause` is the init of a pod that shares one PID namespace.
//!
//! Theory of operation: every signal is blocked first thing and taken with rt_sigtimedwait, so
//! none is lost and none kills a helper by its default action once it has said `start`. Each
//! helper appends what it receives and does to the EVENTS file, one line per event and one
//! write(2) per line (O_APPEND: lines of several processes never interleave), stamped with
//! CLOCK_MONOTONIC: `NS ROLE PID WHAT...`. Those lines are the timeline the rules read; the
//! helpers decide nothing from what they see beyond their behaviour.

use crate::behaviour::{Behaviour, OnStop, OwnEnd};
use crate::sys;
use nix::libc;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::time::Duration;

/// The signals that ask a helper to stop.
fn is_stop(sig: i32) -> bool {
    sig == libc::SIGTERM || sig == libc::SIGINT
}

struct Log {
    file: Option<File>,
    role: &'static str,
}

impl Log {
    fn open(path: &str, role: &'static str) -> Log {
        let file = OpenOptions::new().create(true).append(true).open(path).ok();
        Log { file, role }
    }

    fn say(&mut self, what: &str) {
        let line = format!("{} {} {} {what}\n", sys::now(), self.role, sys::getpid());
        if let Some(f) = &mut self.file {
            let _ = f.write(line.as_bytes());
        }
    }

    fn got(&mut self, t: &sys::Taken) {
        self.say(&format!("got {} from={} code={}", t.sig, t.pid, t.code));
    }
}

/// Runs a helper role; never returns.
pub fn main(args: &[String]) -> ! {
    // Before anything else: a signal forwarded from now on is taken, not acted on by default.
    let _ = sys::block(sys::all_signals());
    let (role, events, rest) = match args {
        [role, events, rest @ ..] => (role.as_str(), events.as_str(), rest),
        _ => bad_usage(args),
    };
    match role {
        "pause" => pause(),
        "linger" => linger(Log::open(events, "linger")),
        "cmd" | "daemon" => {
            let Some((b, up)) = Behaviour::from_args(rest) else {
                bad_usage(args)
            };
            let role = if role == "cmd" { "cmd" } else { "daemon" };
            child(Log::open(events, role), &b, up.as_deref(), events)
        }
        _ => bad_usage(args),
    }
}

fn bad_usage(args: &[String]) -> ! {
    eprintln!("race helper: bad arguments {args:?}");
    std::process::exit(64)
}

/// The init of a pod that shares one PID namespace: reaps whatever is re-parented to it.
fn pause() -> ! {
    loop {
        if !sys::reap_one() {
            let _ = sys::take(sys::bit(libc::SIGCHLD), None);
        }
    }
}

/// A process left behind: reports its signals, exits 0 on TERM or INT.
fn linger(mut log: Log) -> ! {
    log.say("start");
    loop {
        let Some(t) = sys::take(sys::all_signals(), None) else {
            continue;
        };
        if t.sig == libc::SIGCHLD {
            sys::reap_all();
            continue;
        }
        log.got(&t);
        if is_stop(t.sig) {
            log.say("exit 0 stop");
            std::process::exit(0);
        }
    }
}

/// Starts a linger process; its pid as this namespace sees it.
fn leave_behind(log: &mut Log, events: &str) {
    match sys::fork() {
        Ok(0) => linger(Log::open(events, "linger")),
        Ok(pid) => log.say(&format!("fork {pid}")),
        Err(e) => log.say(&format!("fork-failed {e}")),
    }
}

/// A CMD or a daemon: lives as its behaviour says and reports everything.
fn child(mut log: Log, b: &Behaviour, up_path: Option<&str>, events: &str) -> ! {
    let start = sys::now();
    log.say("start");
    if b.linger {
        leave_behind(&mut log, events);
    }
    let at = |d: Duration| start + sys::ns(d);
    let life_at = b.life.map(|(d, _)| at(d));
    let mut up_at = b.up.map(at);
    let mut stop_at: Option<(u64, i32)> = None;
    loop {
        let next = [life_at, up_at, stop_at.map(|s| s.0)]
            .into_iter()
            .flatten()
            .min();
        let timeout = next.map(|n| Duration::from_nanos(n.saturating_sub(sys::now())));
        if let Some(t) = sys::take(sys::all_signals(), timeout) {
            if t.sig == libc::SIGCHLD {
                sys::reap_all();
            } else {
                log.got(&t);
                if is_stop(t.sig) && stop_at.is_none() {
                    stop_at = match b.on_stop {
                        OnStop::Exit(_, d) | OnStop::Die(d) => {
                            Some((sys::now() + sys::ns(d), t.sig))
                        }
                        OnStop::Ignore => None,
                    };
                }
            }
        }
        let now = sys::now();
        if let (Some(u), Some(path)) = (up_at, up_path) {
            if u <= now {
                let _ = std::fs::write(path, b"up\n");
                log.say("up");
                up_at = None;
            }
        }
        if let Some((s, sig)) = stop_at.filter(|s| s.0 <= now) {
            if life_at.is_none_or(|l| s <= l) {
                end_on_stop(&mut log, b.on_stop, sig);
            }
        }
        if let (Some(l), Some((_, end))) = (life_at, b.life) {
            if l <= now {
                end_by_itself(&mut log, end, events);
            }
        }
    }
}

/// Reports the signals still pending, so a signal sent just before the end is not lost from
/// the timeline.
fn drain(log: &mut Log) {
    while let Some(t) = sys::take(sys::all_signals(), Some(Duration::ZERO)) {
        if t.sig != libc::SIGCHLD {
            log.got(&t);
        }
    }
}

fn end_on_stop(log: &mut Log, on_stop: OnStop, sig: i32) -> ! {
    drain(log);
    match on_stop {
        OnStop::Exit(c, _) => {
            log.say(&format!("exit {c} stop"));
            std::process::exit(c)
        }
        _ => {
            log.say(&format!("die {sig} stop"));
            sys::die_by(sig)
        }
    }
}

fn end_by_itself(log: &mut Log, end: OwnEnd, events: &str) -> ! {
    drain(log);
    match end {
        OwnEnd::Exit(c) => {
            log.say(&format!("exit {c} self"));
            std::process::exit(c)
        }
        OwnEnd::Die(sig) => {
            log.say(&format!("die {sig} self"));
            sys::die_by(sig)
        }
        OwnEnd::Daemonize => {
            leave_behind(log, events);
            log.say("exit 0 daemonize");
            std::process::exit(0)
        }
    }
}
