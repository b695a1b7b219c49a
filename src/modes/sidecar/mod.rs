//! `supervisor sidecar`: PID 1 of a sidecar container.
//!
//! The recipe: block the signals; check every file it will write (the ready file's directory,
//! its own `--done-file` and lease) before the daemon starts; open the event stream with the
//! mains' files under watch; then let the driver run the [`policy`], which spawns the daemon.
//! When the daemon is gone, what it left behind is stopped too, and [`super::finish`] writes the
//! marker (with `--done-file`), the termination message and the closing log line.

pub mod policy;

use super::{Finishing, OwnEffects, Real, World};
use crate::config::SidecarConfig;
use crate::events::Events;
use crate::exit::Outcome;
use crate::fsutil::{self, Place};
use crate::marker::Role;
use crate::readiness::ReadyFile;
use crate::reaper;
use crate::signals::Signals;
use crate::stop::Ask;
use policy::{Own, Policy, Settings};
use std::time::{Instant, SystemTime};

pub fn run(cfg: SidecarConfig) -> Outcome {
    super::supervising(|| supervise(cfg))
}

fn settings(cfg: &SidecarConfig, command: &str) -> Settings {
    Settings {
        command: command.to_string(),
        on: cfg.on,
        exit: cfg.exit_code,
        stop: cfg.stop,
        ask: if cfg.quit_urls.is_empty() {
            Ask::Signal(cfg.stop.stop_signal)
        } else {
            Ask::Quit(cfg.stop.stop_signal)
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
        gated: !cfg.ready_when.is_empty(),
        ready_file: cfg.ready_file.as_ref().map(|p| p.display().to_string()),
    }
}

/// Opens the ready file's directory (once, for the whole run: see `fsutil`), removes a stale
/// ready file and proves a new one can be written, before the daemon starts.
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

/// `sidecar`'s own effects.
struct SidecarEffects {
    ready_file: Option<Place>,
}

impl OwnEffects for SidecarEffects {
    type Own = Own;

    fn own(&mut self, world: &mut World, action: Own) {
        match action {
            Own::AnnounceReady => {
                let (Some(place), Some(child)) = (&self.ready_file, world.child) else {
                    return;
                };
                let body = ReadyFile::new(child.pid.as_raw() as u32, &world.gate.0);
                if let Err(e) = place.write_atomic(&body.to_json()) {
                    let path = place.path().display();
                    tracing::error!("could not write the ready file {path}: {e}");
                }
            }
        }
    }
}

fn supervise(cfg: SidecarConfig) -> Outcome {
    let finishing = Finishing {
        role: Role::Sidecar,
        command: cfg.command.clone(),
        shown: super::display_command(&cfg.command),
        started: Instant::now(),
        started_at: SystemTime::now(),
        termination_log: cfg.termination_log.clone(),
    };
    let refuse = |why: String| {
        super::refuse(
            Role::Sidecar,
            cfg.termination_log.as_deref(),
            &finishing.shown,
            why,
        )
    };
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
    let events = match Events::new(signals, &cfg.wait_files, cfg.poll) {
        Ok(e) => e,
        Err(e) => {
            if let Some(l) = lease {
                l.release();
            }
            return refuse(format!("cannot wait for events (epoll): {e}"));
        }
    };
    let mut policy = Policy::new(settings(&cfg, &finishing.shown));
    let leave_cwd = cfg.paths_are_absolute();
    let mut fx = Real {
        world: World {
            events,
            command: cfg.command,
            child: None,
            gate: (cfg.ready_when, "ready-when"),
            poll: cfg.poll,
            quit_urls: cfg.quit_urls,
            lease,
            finishing,
            leave_cwd,
        },
        mode: SidecarEffects { ready_file },
    };
    let outcome = super::driver::drive(&mut policy, &mut fx);
    // Kept open to the end: closing descriptors would only delay the exit.
    std::mem::forget(fx);
    outcome
}
