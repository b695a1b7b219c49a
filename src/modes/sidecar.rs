//! `supervisor sidecar`: PID 1 of a sidecar container.
//!
//! The recipe: clear a stale ready file, arm the watch on the markers' directories, spawn the
//! daemon, then loop. Each turn first re-evaluates the world (which markers exist and count, which
//! leases to wait on), then waits for one event: a signal, a filesystem change, a lease released by
//! a dead main, the daemon becoming ready, a heartbeat check, or the end of the grace period.
//!
//! Lifecycle of the daemon, as [`Phase`]: `Running` until every marker counts (or a main vanished,
//! or we were asked to stop), then `Stopping` (asked once; SIGKILL of its group at the deadline),
//! until the reaper reports the daemon's exit. A daemon that exits while `Running` ended on its own:
//! that is a failure the pod must show, so its status becomes ours.

use super::{sleep_until_opt, tick_opt};
use crate::child::{self, Child};
use crate::config::{ExitPolicy, OnPolicy, SidecarConfig, signal_name};
use crate::exit::{ChildStatus, Outcome};
use crate::lease;
use crate::marker::{self, Presence};
use crate::readiness;
use crate::reaper;
use crate::signals;
use crate::stop;
use crate::watch::Watcher;
use nix::sys::signal::Signal;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::mpsc;

/// The daemon's readiness wait, polled beside the main loop.
type ReadyWait<'a> = Pin<Box<dyn std::future::Future<Output = Result<(), Vec<String>>> + 'a>>;

pub fn run(cfg: SidecarConfig) -> Outcome {
    if let Err(e) = signals::block() {
        tracing::error!("cannot block signals: {e}");
        return Outcome::Internal;
    }
    super::block_on(supervise(cfg))
}

/// What we know about one `--wait-file`.
#[derive(Debug, Clone, PartialEq)]
enum Wait {
    Pending,
    /// The marker is there and counts; the main's exit code if it said one.
    Done(Option<i64>),
    /// The main's lease was released (or went stale) without a marker.
    Vanished,
}

struct WaitFile {
    path: PathBuf,
    lease: PathBuf,
    state: Wait,
    /// The lease a helper thread is blocked on ([`lease::Found`]'s id), so each lease is waited
    /// on once.
    lease_id: Option<u64>,
    /// The last thing we logged about this marker, so events do not repeat the same line.
    last_note: Option<String>,
}

/// Why the daemon is being stopped.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Cause {
    Markers,
    Vanished,
    Requested(Signal),
}

enum Phase {
    Running,
    Stopping {
        cause: Cause,
        since: Instant,
        deadline: tokio::time::Instant,
        killed: bool,
    },
}

async fn supervise(cfg: SidecarConfig) -> Outcome {
    let mut sigs = match super::start_supervising() {
        Ok(s) => s,
        Err(outcome) => return outcome,
    };
    if let Some(rf) = &cfg.ready_file {
        match marker::remove_stale(rf) {
            Ok(true) => tracing::info!("removed a stale ready file: {}", rf.display()),
            Ok(false) => {}
            Err(e) => {
                tracing::error!(
                    "cannot remove the stale ready file {}: {e}; not starting the daemon",
                    rf.display()
                );
                return Outcome::Internal;
            }
        }
    }
    let mut waits: Vec<WaitFile> = cfg
        .wait_files
        .iter()
        .map(|p| WaitFile {
            path: p.clone(),
            lease: lease::lease_path(p),
            state: Wait::Pending,
            lease_id: None,
            last_note: None,
        })
        .collect();
    let mut watch_paths: Vec<PathBuf> = Vec::new();
    for w in &waits {
        watch_paths.push(w.path.clone());
        watch_paths.push(w.lease.clone());
    }
    // Armed before the first look at the markers: one written in between is still seen.
    let mut watcher = Watcher::new(watch_paths, cfg.poll);
    let (lease_tx, mut lease_rx) = mpsc::unbounded_channel::<(usize, u64)>();

    let command = super::display_command(&cfg.command);
    let child = match child::spawn(&cfg.command) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("{e}");
            return e.outcome();
        }
    };
    let list = cfg
        .wait_files
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if list.is_empty() {
        tracing::info!(
            "started {command} as pid {}; no --wait-file: will stop it on SIGTERM (native sidecar)",
            child.pid
        );
    } else {
        tracing::info!(
            "started {command} as pid {}; will stop it when the main is done ({list}, on {})",
            child.pid,
            match cfg.on {
                OnPolicy::Any => "any exit",
                OnPolicy::Success => "success only",
            }
        );
    }

    let want_ready = !cfg.ready_when.is_empty() || cfg.ready_file.is_some();
    let mut readiness: Option<ReadyWait<'_>> = if want_ready {
        Some(Box::pin(readiness::wait_all(
            &cfg.ready_when,
            "ready-when",
            cfg.poll,
            None,
        )))
    } else {
        None
    };
    let started = Instant::now();
    let mut stale_check = cfg.stale_after.map(|d| {
        let every = (d / 4).clamp(Duration::from_millis(50), Duration::from_secs(5));
        tokio::time::interval(every)
    });
    let mut phase = Phase::Running;

    let status = loop {
        if matches!(phase, Phase::Running) {
            for (i, w) in waits.iter_mut().enumerate() {
                evaluate(i, w, cfg.on, cfg.stale_after.is_some(), &lease_tx);
            }
            if let Some(cause) = all_done(&waits) {
                phase = begin_stop(&cfg, &child, cause);
                watcher.disarm();
            }
        }
        let stopping = !matches!(phase, Phase::Running);
        let kill_at = match &phase {
            Phase::Stopping {
                deadline,
                killed: false,
                ..
            } => Some(*deadline),
            _ => None,
        };
        tokio::select! {
            sig = sigs.recv() => match sig {
                Ok(Signal::SIGCHLD) => {
                    if let Some(st) = reaper::reap_child(child.pid) {
                        break st;
                    }
                }
                Ok(Signal::SIGPIPE) => {}
                Ok(s) if signals::is_termination(s) => {
                    if stopping {
                        tracing::info!("received {} while stopping the daemon; already stopping", signal_name(s));
                    } else {
                        tracing::info!("received {}: stopping {command}", signal_name(s));
                        phase = begin_stop(&cfg, &child, Cause::Requested(s));
                        watcher.disarm();
                    }
                }
                Ok(s) => {
                    tracing::debug!("forwarding {} to the daemon", signal_name(s));
                    child.signal_group(s);
                }
                Err(e) => {
                    tracing::warn!("reading signals failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            () = watcher.changed(), if !stopping => {}
            Some((i, id)) = lease_rx.recv() => {
                if !stopping {
                    released(&mut waits[i], id, cfg.on, "lock released");
                }
            }
            r = poll_opt(&mut readiness) => {
                readiness = None;
                if r.is_ok() {
                    announce_ready(&cfg, &child, started);
                }
            }
            _ = tick_opt(&mut stale_check), if !stopping && stale_check.is_some() => {
                if let Some(limit) = cfg.stale_after {
                    for w in waits.iter_mut() {
                        check_stale(w, limit, cfg.on);
                    }
                }
            }
            () = sleep_until_opt(kill_at), if kill_at.is_some() => {
                tracing::warn!(
                    "{command} still running {}ms after being asked to stop; killing its process group",
                    cfg.grace.as_millis()
                );
                child.kill_group();
                if let Phase::Stopping { killed, .. } = &mut phase {
                    *killed = true;
                }
            }
        }
    };

    // No straggler of the daemon's group, nor a process that escaped it, outlives its supervisor.
    child.kill_group();
    let leftovers = reaper::kill_leftover_children();
    if leftovers > 0 {
        tracing::warn!("killed {leftovers} leftover process(es) of the daemon");
    }
    match phase {
        Phase::Running => {
            tracing::error!(
                "{command} {} on its own before the main was done",
                child::describe(status)
            );
            Outcome::Child(status)
        }
        Phase::Stopping {
            cause,
            since,
            killed,
            ..
        } => {
            tracing::info!(
                "{command} stopped in {:.1}ms ({}{})",
                since.elapsed().as_secs_f64() * 1000.0,
                child::describe(status),
                if killed { ", after SIGKILL" } else { "" }
            );
            outcome(cause, cfg.exit_code, &waits, status)
        }
    }
}

/// Re-reads one marker and makes sure its lease (if any) is being waited on.
fn evaluate(
    i: usize,
    w: &mut WaitFile,
    on: OnPolicy,
    stale_after: bool,
    lease_tx: &mpsc::UnboundedSender<(usize, u64)>,
) {
    if w.state != Wait::Pending {
        return;
    }
    match marker::inspect(&w.path) {
        Presence::Present(seen) => {
            let counts = on == OnPolicy::Any || seen.exit_code.is_none_or(|c| c == 0);
            let code = match seen.exit_code {
                Some(c) => format!("exit code {c}"),
                None => "unknown exit code".to_string(),
            };
            let reason = seen.reason.as_deref().unwrap_or("unknown");
            if counts {
                // How long the marker took to reach us. Its mtime is when the main wrote it, at the
                // filesystem's coarse clock (a few ms), hence "about".
                let delay = std::fs::symlink_metadata(&w.path)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| SystemTime::now().duration_since(t).ok())
                    .map(|d| {
                        format!(
                            "; seen {:.1}ms after it was written",
                            d.as_secs_f64() * 1000.0
                        )
                    })
                    .unwrap_or_default();
                tracing::info!(
                    "marker {} arrived: main ended ({reason}, {code}){delay}",
                    w.path.display()
                );
                w.state = Wait::Done(seen.exit_code);
                return;
            }
            note(
                w,
                format!(
                    "marker {} says the main failed ({reason}, {code}); --on success keeps the daemon running for the restarted main",
                    w.path.display()
                ),
            );
        }
        Presence::NotAFile => note(
            w,
            format!(
                "{} is a directory, not a marker; ignoring it",
                w.path.display()
            ),
        ),
        Presence::Absent => w.last_note = None,
    }
    let found = lease::open(&w.lease);
    if let lease::Found::Absent = found {
        // A clean end removes the lease: forget it, so the next main's lease is waited on.
        w.lease_id = None;
    }
    if let lease::Found::Lease { file, id } = found {
        if w.lease_id != Some(id) {
            w.lease_id = Some(id);
            tracing::debug!("waiting on the main's lease {}", w.lease.display());
            if stale_after && !lease::has_heartbeat(&w.lease) {
                tracing::warn!(
                    "the main's lease {} has no heartbeat (the main runs without --heartbeat): --stale-after does not apply to it; only the lock tells when the main vanishes",
                    w.lease.display()
                );
            }
            let tx = lease_tx.clone();
            let spawned = std::thread::Builder::new()
                .name("lease".into())
                .stack_size(64 * 1024)
                .spawn(move || {
                    if lease::wait_released(file).is_ok() {
                        let _ = tx.send((i, id));
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!("cannot watch the lease {}: {e}", w.lease.display());
            }
        }
    }
}

/// Logs a line once per distinct situation.
fn note(w: &mut WaitFile, line: String) {
    if w.last_note.as_deref() != Some(line.as_str()) {
        tracing::warn!("{line}");
        w.last_note = Some(line);
    }
}

/// A main's lease was released (or went stale): if no marker came with it, the main vanished.
fn released(w: &mut WaitFile, id: u64, on: OnPolicy, how: &str) {
    // A forgotten lease (the file vanished: its directory was deleted, or someone removed it)
    // still counts: the helper thread held the old file open, so its lock was still the main's
    // life. Only a report about a lease since replaced by another one is stale.
    if w.state != Wait::Pending || w.lease_id.is_some_and(|i| i != id) {
        return;
    }
    if !matches!(
        marker::inspect(&w.path),
        Presence::Absent | Presence::NotAFile
    ) {
        return; // The marker is there: the next evaluation handles it.
    }
    match on {
        OnPolicy::Any => {
            tracing::error!(
                "main container vanished without a marker ({how}: {}); treating it as failed",
                w.lease.display()
            );
            w.state = Wait::Vanished;
        }
        OnPolicy::Success => note(
            w,
            format!(
                "main container vanished without a marker ({how}: {}); --on success keeps the daemon running for the restarted main",
                w.lease.display()
            ),
        ),
    }
}

/// `--stale-after`: a lease whose mtime was not refreshed in time counts as released.
fn check_stale(w: &mut WaitFile, limit: Duration, on: OnPolicy) {
    if w.state != Wait::Pending {
        return;
    }
    let Some(id) = w.lease_id else { return };
    if let Some(age) = lease::age(&w.lease) {
        if age > limit && lease::has_heartbeat(&w.lease) {
            released(w, id, on, &format!("heartbeat {}ms old", age.as_millis()));
        }
    }
}

fn all_done(waits: &[WaitFile]) -> Option<Cause> {
    // No --wait-file (a native sidecar): only SIGTERM/SIGINT stops the daemon.
    if waits.is_empty() || waits.iter().any(|w| w.state == Wait::Pending) {
        return None;
    }
    if waits.iter().any(|w| w.state == Wait::Vanished) {
        Some(Cause::Vanished)
    } else {
        Some(Cause::Markers)
    }
}

fn begin_stop(cfg: &SidecarConfig, child: &Child, cause: Cause) -> Phase {
    if cfg.quit_urls.is_empty() {
        // Sent right here, in the same turn that saw the marker.
        stop::send_stop_signal(child, cfg.stop_signal);
    } else {
        // The requests run beside the loop, so signals and the reaper keep being served.
        let (child, urls, fallback) = (*child, cfg.quit_urls.clone(), cfg.stop_signal);
        tokio::spawn(async move { stop::quit(&child, &urls, fallback).await });
    }
    Phase::Stopping {
        cause,
        since: Instant::now(),
        deadline: tokio::time::Instant::now() + cfg.grace,
        killed: false,
    }
}

fn outcome(cause: Cause, policy: ExitPolicy, waits: &[WaitFile], status: ChildStatus) -> Outcome {
    if let Cause::Requested(_) = cause {
        return Outcome::Stopped;
    }
    match policy {
        ExitPolicy::Zero => Outcome::Stopped,
        ExitPolicy::Daemon => Outcome::Child(status),
        ExitPolicy::Main => {
            if cause == Cause::Vanished {
                return Outcome::MainVanished;
            }
            let code = waits
                .iter()
                .filter_map(|w| match w.state {
                    Wait::Done(Some(c)) if c != 0 => Some(c),
                    _ => None,
                })
                .next()
                .unwrap_or(0);
            Outcome::MainCode(code.clamp(0, 255) as i32)
        }
    }
}

fn announce_ready(cfg: &SidecarConfig, child: &Child, started: Instant) {
    tracing::info!(
        "daemon ready after {:.1}s{}",
        started.elapsed().as_secs_f64(),
        match &cfg.ready_file {
            Some(p) => format!("; writing {}", p.display()),
            None => String::new(),
        }
    );
    if let Some(path) = &cfg.ready_file {
        let body = format!(
            "{{\"ready_at\":\"{}\",\"pid\":{},\"targets\":{}}}\n",
            marker::rfc3339(SystemTime::now()),
            child.pid,
            serde_json::to_string(
                &cfg.ready_when
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
            )
            .unwrap_or_else(|_| "[]".into())
        );
        if let Err(e) = marker::write_atomic(path, body.as_bytes()) {
            tracing::error!("could not write the ready file {}: {e}", path.display());
        }
    }
}

async fn poll_opt(fut: &mut Option<ReadyWait<'_>>) -> Result<(), Vec<String>> {
    match fut {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}
