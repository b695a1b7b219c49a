//! `supervisor sidecar`: PID 1 of a sidecar container.
//!
//! The recipe: block the signals; check every file it will write (the ready file's directory,
//! its own `--done-file` and lease) before the daemon starts; open the event stream with the
//! mains' files under watch; then let the driver run the [`policy`], which spawns the daemon.
//! When the daemon is gone, what it left behind is stopped too, and [`super::finish`] writes the
//! marker (with `--done-file`), the termination message and the closing log line.

pub mod policy;

use super::{OwnEffects, Recipe, World};
use crate::config::SidecarConfig;
use crate::exit::Outcome;
use crate::fsutil::{self, Place};
use crate::marker::Role;
use crate::readiness::ReadyFile;
use crate::stop::Ask;
use policy::{Own, Policy, Settings};
use std::path::Path;

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
fn prepare_ready_file(rf: Option<&Path>) -> Result<Option<Place>, String> {
    let Some(rf) = rf else {
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

pub fn run(cfg: SidecarConfig) -> Outcome {
    let shown = super::display_command(&cfg.command);
    let policy = Policy::new(settings(&cfg, &shown));
    let ready_file = cfg.ready_file.clone();
    let recipe = Recipe {
        role: Role::Sidecar,
        leave_cwd: cfg.paths_are_absolute(),
        command: cfg.command,
        shown,
        termination_log: cfg.termination_log,
        done_file: cfg.done_file,
        heartbeat: None,
        watched: cfg.wait_files,
        poll: cfg.poll,
        gate: (cfg.ready_when, "ready-when"),
        quit_urls: cfg.quit_urls,
    };
    super::supervise(recipe, policy, || {
        let ready_file = prepare_ready_file(ready_file.as_deref())?;
        Ok(SidecarEffects { ready_file })
    })
}
