//! `supervisor main`: PID 1 of the main container.
//!
//! The recipe: block the signals, take the lease and clear any stale marker (failing before
//! anything starts if the volume is not usable, or if another main holds the lease), open the
//! event stream with the required sidecars under watch, and let the driver run the [`policy`].
//! However the run ends, the end goes through [`super::finish`]: marker, lease, termination
//! message, closing log line.

pub mod policy;

use super::{OwnEffects, Recipe, World};
use crate::config::MainConfig;
use crate::exit::Outcome;
use crate::marker::Role;
use policy::{Gate, Own, Policy, Settings};
use std::time::Duration;

/// Polling interval for file targets and required sidecars where no directory watch works.
const FILE_POLL: Duration = Duration::from_millis(200);

fn settings(cfg: &MainConfig, command: &str) -> Settings {
    Settings {
        command: command.to_string(),
        stop: cfg.stop,
        timeout: cfg.timeout,
        heartbeat: cfg.heartbeat,
        gate: (!cfg.wait_for.is_empty()).then_some(Gate {
            wait_timeout: cfg.wait_timeout,
            on_wait_timeout: cfg.on_wait_timeout,
        }),
        requires: cfg
            .requires
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        quit: !cfg.quit_urls.is_empty(),
        marker: cfg.done_file.as_ref().map(|p| p.display().to_string()),
    }
}

/// `main`'s own effects.
struct MainEffects;

impl OwnEffects for MainEffects {
    type Own = Own;

    fn own(&mut self, world: &mut World, action: Own) {
        match action {
            Own::TouchLease => {
                if let Some(l) = &world.lease {
                    l.touch();
                }
            }
        }
    }
}

pub fn run(cfg: MainConfig) -> Outcome {
    let shown = super::display_command(&cfg.command);
    let policy = Policy::new(settings(&cfg, &shown));
    let recipe = Recipe {
        role: Role::Main,
        leave_cwd: cfg.paths_are_absolute(),
        command: cfg.command,
        shown,
        termination_log: cfg.termination_log,
        done_file: cfg.done_file,
        heartbeat: cfg.heartbeat,
        watched: cfg.requires,
        poll: FILE_POLL,
        gate: (cfg.wait_for, "wait-for"),
        quit_urls: cfg.quit_urls,
    };
    super::supervise(recipe, policy, || Ok(MainEffects))
}
