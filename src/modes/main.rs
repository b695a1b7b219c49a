//! `supervisor main`: PID 1 of the main container.
//!
//! The recipe: take the lease and clear any stale marker (failing fast if the volume is not
//! writable), wait for the `--wait-for` targets, spawn the command, then loop: forward signals,
//! reap, SIGKILL after the grace period, refresh the heartbeat. However it ends (exit, signal,
//! exec failure, grace kill, readiness timeout, cancellation) the end goes through [`finish`],
//! which writes the marker, releases the lease and calls the quit URLs.

use super::{sleep_until_opt, tick_opt};
use crate::child::{self, SpawnError};
use crate::config::{MainConfig, signal_name};
use crate::exit::{self, ChildStatus, Outcome};
use crate::lease::Lease;
use crate::marker::{self, Marker, Reason};
use crate::readiness;
use crate::reaper;
use crate::signals::{self, Signals};
use crate::stop;
use nix::sys::signal::Signal;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

/// Polling interval for `file:` targets when inotify is unavailable.
const FILE_POLL: Duration = Duration::from_millis(200);

pub fn run(cfg: MainConfig) -> Outcome {
    if let Err(e) = signals::block() {
        tracing::error!("cannot block signals: {e}");
        return Outcome::Internal;
    }
    super::block_on(supervise(cfg))
}

/// What the end of the run needs to know.
struct Run {
    cfg: MainConfig,
    lease: Option<Lease>,
    started_at: SystemTime,
    started: Instant,
    command: String,
}

async fn supervise(cfg: MainConfig) -> Outcome {
    let started_at = SystemTime::now();
    let started = Instant::now();
    let mut sigs = match super::start_supervising() {
        Ok(s) => s,
        Err(outcome) => return outcome,
    };
    let lease = match &cfg.done_file {
        Some(done) => match prepare_volume(done, cfg.heartbeat) {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::error!("{e}; not starting the command");
                return Outcome::Internal;
            }
        },
        None => None,
    };
    let command = super::display_command(&cfg.command);
    let run = Run {
        cfg,
        lease,
        started_at,
        started,
        command,
    };

    if !run.cfg.wait_for.is_empty() {
        match gate(&run, &mut sigs).await {
            Ok(()) => {}
            Err(GateEnd::NotReady(msg)) => {
                return finish(run, Outcome::NotReady, Reason::NotReady, Some(msg)).await;
            }
            Err(GateEnd::Cancelled(sig)) => {
                return finish(run, Outcome::Cancelled(sig), Reason::Cancelled, None).await;
            }
        }
    }

    let child = match child::spawn(&run.cfg.command) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("{e}");
            let reason = match e {
                SpawnError::Other { .. } => Reason::SupervisorError,
                _ => Reason::ExecFailed,
            };
            return finish(run, e.outcome(), reason, Some(e.to_string())).await;
        }
    };
    tracing::info!(
        "started {} as pid {}{}",
        run.command,
        child.pid,
        match &run.cfg.done_file {
            Some(d) => format!("; marker will be written to {}", d.display()),
            None => String::new(),
        }
    );

    let grace = run.cfg.grace;
    let mut grace_deadline: Option<tokio::time::Instant> = None;
    let mut grace_killed = false;
    let mut heartbeat = run
        .cfg
        .heartbeat
        .map(|d| tokio::time::interval_at(tokio::time::Instant::now() + d, d));
    let status = loop {
        tokio::select! {
            sig = sigs.recv() => match sig {
                Ok(Signal::SIGCHLD) => {
                    if let Some(st) = reaper::reap_child(child.pid) {
                        break st;
                    }
                }
                Ok(Signal::SIGPIPE) => {}
                Ok(sig) => {
                    child.signal_group(sig);
                    if signals::is_termination(sig) && grace_deadline.is_none() {
                        tracing::info!(
                            "received {}, forwarded to {}; it has {}ms to exit before SIGKILL",
                            signal_name(sig), run.command, grace.as_millis()
                        );
                        grace_deadline = Some(tokio::time::Instant::now() + grace);
                    } else {
                        tracing::debug!("forwarded {} to process group {}", signal_name(sig), child.pid);
                    }
                }
                Err(e) => {
                    // Never bail while the child runs: PID 1 exiting would kill the container.
                    tracing::warn!("reading signals failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            () = sleep_until_opt(grace_deadline), if !grace_killed && grace_deadline.is_some() => {
                tracing::warn!(
                    "{} still running {}ms after the stop signal; killing its process group",
                    run.command, grace.as_millis()
                );
                child.kill_group();
                grace_killed = true;
            }
            _ = tick_opt(&mut heartbeat), if heartbeat.is_some() => {
                if let Some(l) = &run.lease {
                    l.touch();
                }
            }
        }
    };

    let reason = match status {
        ChildStatus::Signaled(Signal::SIGKILL) if grace_killed => Reason::GraceKilled,
        ChildStatus::Signaled(_) => Reason::Signaled,
        ChildStatus::Exited(_) => Reason::Exited,
    };
    finish(run, Outcome::Child(status), reason, None).await
}

/// Takes the lease and removes a stale marker: proves the volume is there and writable before an
/// hour-long job starts, and makes sure no sidecar reads an earlier run's marker.
fn prepare_volume(done: &Path, heartbeat: Option<Duration>) -> Result<Lease, String> {
    let lease = Lease::acquire(done, heartbeat.map(|h| h.as_millis())).map_err(|e| {
        format!(
            "the marker directory {} is not usable: {e}",
            marker::parent_dir(done).display()
        )
    })?;
    match marker::remove_stale(done) {
        Ok(true) => tracing::info!(
            "removed a stale marker from an earlier run: {}",
            done.display()
        ),
        Ok(false) => {}
        Err(e) => {
            lease.release();
            return Err(format!(
                "cannot remove the stale marker {}: {e}",
                done.display()
            ));
        }
    }
    Ok(lease)
}

/// Why the command never started.
enum GateEnd {
    NotReady(String),
    Cancelled(Signal),
}

/// The readiness gate: returns when every target is ready, or says why the command must not start.
async fn gate(run: &Run, sigs: &mut Signals) -> Result<(), GateEnd> {
    let targets = readiness::list(&run.cfg.wait_for);
    tracing::info!("waiting for {targets} before starting {}", run.command);
    let deadline = run
        .cfg
        .wait_timeout
        .map(|d| tokio::time::Instant::now() + d);
    let wait = readiness::wait_all(&run.cfg.wait_for, "wait-for", FILE_POLL, deadline);
    tokio::pin!(wait);
    loop {
        tokio::select! {
            r = &mut wait => return r.map_err(|pending| {
                let msg = format!(
                    "not ready after {}ms: {}",
                    run.cfg.wait_timeout.unwrap_or_default().as_millis(),
                    pending.join(", ")
                );
                tracing::error!("{msg}; not starting {}", run.command);
                GateEnd::NotReady(msg)
            }),
            sig = sigs.recv() => match sig {
                Ok(Signal::SIGCHLD) => { reaper::reap(None); }
                Ok(s) if signals::is_termination(s) => {
                    tracing::warn!(
                        "received {} while waiting for {targets}; not starting {}",
                        signal_name(s), run.command
                    );
                    return Err(GateEnd::Cancelled(s));
                }
                Ok(s) => tracing::debug!("ignoring {} (the command has not started)", signal_name(s)),
                Err(e) => {
                    tracing::warn!("reading signals failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
}

/// Every end of `main` comes here: write the marker, release the lease, log the one closing line,
/// call the quit URLs. Returns the outcome, downgraded if the marker could not be written.
async fn finish(run: Run, outcome: Outcome, reason: Reason, error: Option<String>) -> Outcome {
    let elapsed = run.started.elapsed();
    let exit_code = exit::code(outcome);
    let signal = match outcome {
        Outcome::Child(ChildStatus::Signaled(s)) | Outcome::Cancelled(s) => {
            Some(signal_name(s).to_string())
        }
        _ => None,
    };
    let what = match reason {
        Reason::Exited => format!("exited with code {exit_code}"),
        Reason::Signaled => format!(
            "was killed by signal {} (exit code {exit_code})",
            signal.as_deref().unwrap_or("?")
        ),
        Reason::GraceKilled => {
            format!("was SIGKILLed after the grace period (exit code {exit_code})")
        }
        Reason::ExecFailed => format!("could not be executed (exit code {exit_code})"),
        Reason::NotReady => format!("was not started: targets not ready (exit code {exit_code})"),
        Reason::Cancelled => format!("was not started: cancelled (exit code {exit_code})"),
        Reason::SupervisorError => format!("could not be started (exit code {exit_code})"),
    };
    let mut outcome = outcome;
    let marker_note = match &run.cfg.done_file {
        None => String::new(),
        Some(path) => {
            let m = Marker {
                version: 1,
                exit_code,
                reason,
                signal,
                started_at: marker::rfc3339(run.started_at),
                finished_at: marker::rfc3339(SystemTime::now()),
                duration_ms: elapsed.as_millis() as u64,
                command: run
                    .cfg
                    .command
                    .iter()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect(),
                error,
            };
            match marker::write_atomic(path, &m.to_json()) {
                Ok(()) => format!("; marker written to {}", path.display()),
                Err(e) => {
                    tracing::error!("could not write the marker {}: {e}", path.display());
                    outcome = match outcome {
                        Outcome::Child(st) => Outcome::ChildButMarkerFailed(st),
                        o if exit::code(o) == 0 => Outcome::Internal,
                        o => o,
                    };
                    format!("; MARKER NOT WRITTEN to {}", path.display())
                }
            }
        }
    };
    // The lease goes only after the marker: a sidecar that sees the lock released must find it.
    if let Some(l) = run.lease {
        l.release();
    }
    tracing::info!(
        "{} {what} after {:.1}s{marker_note}",
        run.command,
        elapsed.as_secs_f64()
    );
    if !run.cfg.quit_urls.is_empty() {
        stop::post_all(&run.cfg.quit_urls, stop::QUIT_TIMEOUT).await;
    }
    outcome
}
