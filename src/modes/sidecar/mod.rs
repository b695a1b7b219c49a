//! `supervisor sidecar`: PID 1 of a sidecar container.
//!
//! The recipe: block the signals; check every file it will write (the ready file's directory,
//! its own `--done-file` and lease) before the daemon starts; arm the watch on the mains' files;
//! spawn the daemon; then loop: next event, let the [`policy`] decide, carry out what it decided.
//! When the daemon is gone, nothing of its tree outlives the supervisor: its group and any
//! process that escaped it are SIGKILLed; then [`super::finish`] writes the marker (with
//! `--done-file`), the termination message and the closing log line.

pub mod policy;

use super::{Action, Finishing, Hands, act_common};
use crate::child::{self, Child};
use crate::config::SidecarConfig;
use crate::ending::Ending;
use crate::events::{Event, Events, Timer};
use crate::exit::Outcome;
use crate::fsutil::{self, Place};
use crate::marker::Role;
use crate::peers::Peers;
use crate::readiness::{self, ReadyFile};
use crate::reaper;
use crate::signals::Signals;
use crate::stop::{Ask, Step};
use policy::{Policy, Settings};
use std::collections::VecDeque;
use std::time::{Instant, SystemTime};

pub fn run(cfg: SidecarConfig) -> Outcome {
    super::supervising(supervise(cfg))
}

fn settings(cfg: &SidecarConfig, command: &str) -> Settings {
    Settings {
        command: command.to_string(),
        on: cfg.on,
        exit: cfg.exit_code,
        grace: cfg.grace,
        stop_delay: cfg.stop_delay,
        term_signals: cfg.term_signals,
        ask: if cfg.quit_urls.is_empty() {
            Ask::Signal(cfg.stop_signal)
        } else {
            Ask::Quit(cfg.stop_signal)
        },
        waits: cfg
            .wait_files
            .iter()
            .map(|p| {
                let lease = crate::lease::lease_path(p);
                (p.display().to_string(), lease.display().to_string())
            })
            .collect(),
        stale_after: cfg.stale_after,
    }
}

/// Opens the ready file's directory (once, for the whole run), removes a stale ready file and
/// proves a new one can be written, before the daemon starts.
fn prepare_ready_file(cfg: &SidecarConfig) -> Result<Option<Place>, String> {
    let Some(rf) = &cfg.ready_file else {
        return Ok(None);
    };
    let unusable = |e| {
        format!(
            "the ready file's directory {} is not usable: {e}",
            fsutil::parent_dir(rf).display()
        )
    };
    let place = Place::open(rf).map_err(unusable)?;
    super::remove_stale(&place, "ready file")
        .map_err(|e| format!("cannot remove the stale ready file {}: {e}", rf.display()))?;
    place.check_writable().map_err(unusable)?;
    Ok(Some(place))
}

async fn supervise(cfg: SidecarConfig) -> Outcome {
    let started = Instant::now();
    let started_at = SystemTime::now();
    let shown = super::display_command(&cfg.command);
    let refuse =
        |why: String| super::refuse(Role::Sidecar, cfg.termination_log.as_deref(), &shown, why);
    let signals = match Signals::new() {
        Ok(s) => s,
        Err(e) => return refuse(format!("cannot read signals (signalfd): {e}")),
    };
    reaper::become_subreaper();
    let ready_file = match prepare_ready_file(&cfg) {
        Ok(p) => p,
        Err(why) => return refuse(why),
    };
    let lease = match &cfg.done_file {
        Some(done) => match super::prepare_done_file(done, None) {
            Ok(l) => Some(l),
            Err(why) => return refuse(why),
        },
        None => None,
    };
    // Armed before the first look at the markers: one written in between is still seen.
    let mut events = Events::new(signals, Peers::new(&cfg.wait_files, cfg.poll));
    let mut policy = Policy::new(settings(&cfg, &shown));
    let finishing = Finishing {
        role: Role::Sidecar,
        command: cfg.command.clone(),
        shown: shown.clone(),
        started,
        started_at,
        done_file: lease.as_ref().map(|l| l.marker().clone()),
        lease,
        termination_log: cfg.termination_log.clone(),
    };
    let child = match child::spawn(&cfg.command) {
        Ok(c) => c,
        Err(e) => return super::finish(finishing, e.ending()),
    };
    events.watch_child(child.pid);
    log_started(&cfg, &shown, child);
    if !cfg.ready_when.is_empty() {
        let targets = cfg.ready_when.clone();
        events.await_ready(Box::pin(readiness::wait_all(
            targets,
            "ready-when",
            cfg.poll,
            None,
        )));
    }
    let mut queue: VecDeque<Action> = policy.start().into();
    for i in 0..cfg.wait_files.len() {
        let obs = events.peers.observe(i);
        queue.extend(policy.on_peer(i, obs, false));
    }
    let ready_file = ready_file.as_ref();
    let ending = run_loop(
        &cfg,
        ready_file,
        child,
        &mut events,
        &mut policy,
        queue,
        started,
    )
    .await;
    // Kept open to the end, for the same reason as the runtime (see `block_on`).
    std::mem::forget(events);
    // No straggler of the daemon's group, nor a process that escaped it, outlives its supervisor.
    child.kill_group();
    let leftovers = reaper::kill_leftover_children();
    if leftovers > 0 {
        tracing::warn!("killed {leftovers} leftover process(es) of the daemon");
    }
    super::finish(finishing, ending)
}

async fn run_loop(
    cfg: &SidecarConfig,
    ready_file: Option<&Place>,
    child: Child,
    events: &mut Events,
    policy: &mut Policy,
    mut queue: VecDeque<Action>,
    started: Instant,
) -> Ending {
    let mut asked_at: Option<Instant> = None;
    loop {
        while let Some(action) = queue.pop_front() {
            if let Action::Stop(Step::Ask(_)) = action {
                asked_at = Some(Instant::now());
            }
            let hands = Hands {
                child: Some(child),
                quit_urls: &cfg.quit_urls,
            };
            match act_common(action, hands, events) {
                None => {}
                Some(Action::Finish(ending)) => return ending,
                Some(Action::AnnounceReady) => announce_ready(cfg, ready_file, child, started),
                Some(other) => tracing::debug!("sidecar has no use for {other:?}"),
            }
        }
        events.peers.rewatch();
        let event = events.next().await;
        queue.extend(super::deeds_first(match event {
            Event::Peers(wake) => events
                .peers
                .gather(wake)
                .into_iter()
                .flat_map(|(i, obs, released)| policy.on_peer(i, obs, released))
                .collect::<Vec<_>>(),
            Event::ChildExited(status) => {
                // Only a daemon that ended on its own is asked what it left behind.
                let leftovers =
                    !policy.stopping() && (reaper::has_children() || child.group_alive());
                policy.on_daemon_exit(status, leftovers, asked_at.map(|t| t.elapsed()))
            }
            Event::Timer(Timer::StaleCheck) => {
                let mut out = Vec::new();
                if let Some(limit) = cfg.stale_after {
                    for i in 0..events.peers.len() {
                        if let Some(age) = events.peers.stale(i, limit) {
                            out.extend(policy.on_stale(i, age));
                        }
                    }
                }
                out.extend(policy.stale_checked());
                out
            }
            other => policy.on(other),
        }));
    }
}

fn log_started(cfg: &SidecarConfig, shown: &str, c: Child) {
    let list = cfg
        .wait_files
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if list.is_empty() {
        tracing::info!(
            "started {shown} as pid {}; no --wait-file: will stop it on {} (native sidecar)",
            c.pid,
            cfg.term_signals
        );
    } else {
        let on = match cfg.on {
            crate::config::OnPolicy::Any => "any exit",
            crate::config::OnPolicy::Success => "success only",
        };
        tracing::info!(
            "started {shown} as pid {}; will stop it when the main is done ({list}, on {on})",
            c.pid
        );
    }
}

fn announce_ready(cfg: &SidecarConfig, ready_file: Option<&Place>, child: Child, started: Instant) {
    let note = match ready_file {
        Some(p) => format!("; writing {}", p.path().display()),
        None => String::new(),
    };
    tracing::info!(
        "daemon ready after {}{note}",
        crate::clock::human(started.elapsed())
    );
    if let Some(place) = ready_file {
        let body = ReadyFile::new(child.pid.as_raw() as u32, &cfg.ready_when);
        if let Err(e) = place.write_atomic(&body.to_json()) {
            tracing::error!(
                "could not write the ready file {}: {e}",
                place.path().display()
            );
        }
    }
}
