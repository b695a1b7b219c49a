//! `supervisor main`: PID 1 of the main container.
//!
//! The recipe: block the signals, take the lease and clear any stale marker (failing before
//! anything starts if the volume is not usable, or if another main holds the lease), open the
//! event stream with the required sidecars under watch, and let the driver run the [`policy`].
//! However the run ends, the end goes through [`super::finish`]: marker, lease, termination
//! message, closing log line.

pub mod policy;

use super::{Finishing, OwnEffects, Real, World};
use crate::config::MainConfig;
use crate::events::Events;
use crate::exit::Outcome;
use crate::marker::Role;
use crate::reaper;
use crate::signals::Signals;
use policy::{Gate, Own, Policy, Settings};
use std::time::{Duration, Instant, SystemTime};

/// Polling interval for file targets and required sidecars where no directory watch works.
const FILE_POLL: Duration = Duration::from_millis(200);

pub fn run(cfg: MainConfig) -> Outcome {
    super::supervising(|| supervise(cfg))
}

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

fn supervise(cfg: MainConfig) -> Outcome {
    let started = Instant::now();
    let finishing = Finishing {
        role: Role::Main,
        command: cfg.command.clone(),
        shown: super::display_command(&cfg.command),
        started,
        started_at: SystemTime::now(),
        termination_log: cfg.termination_log.clone(),
    };
    let refuse = |why: String| {
        super::refuse(
            Role::Main,
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
    let lease = match &cfg.done_file {
        Some(done) => match super::prepare_done_file(done, cfg.heartbeat) {
            Ok(l) => Some(l),
            Err(why) => return refuse(why),
        },
        None => None,
    };
    let events = match Events::new(signals, &cfg.requires, FILE_POLL) {
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
            gate: (cfg.wait_for, "wait-for"),
            poll: FILE_POLL,
            quit_urls: cfg.quit_urls,
            lease,
            finishing,
            leave_cwd,
        },
        mode: MainEffects,
    };
    let outcome = super::driver::drive(&mut policy, &mut fx);
    // Kept open to the end: closing descriptors and joining nothing would only delay the exit
    // the other containers are waiting for.
    std::mem::forget(fx);
    outcome
}
