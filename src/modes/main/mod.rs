//! `supervisor main`: PID 1 of the main container.
//!
//! The recipe: block the signals, take the lease and clear any stale marker (failing before
//! anything starts if the volume is not usable, or if another main holds the lease), watch the
//! required sidecars, then loop: next event, let the [`policy`] decide, carry out what it
//! decided. However the run ends, the end goes through [`super::finish`]: marker, lease,
//! termination message, closing log line; then the quit URLs.

pub mod policy;

use super::{Action, Finishing, Hands, act_common};
use crate::child::{self, Child};
use crate::config::MainConfig;
use crate::ending::Ending;
use crate::events::{Event, Events};
use crate::exit::Outcome;
use crate::lease::Lease;
use crate::marker::Role;
use crate::peers::Peers;
use crate::readiness;
use crate::reaper;
use crate::signals::Signals;
use policy::{Policy, Settings};
use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime};

/// Polling interval for file targets and required sidecars when inotify is unavailable.
const FILE_POLL: Duration = Duration::from_millis(200);

pub fn run(cfg: MainConfig) -> Outcome {
    super::supervising(supervise(cfg))
}

fn settings(cfg: &MainConfig, command: &str) -> Settings {
    Settings {
        command: command.to_string(),
        grace: cfg.grace,
        stop_signal: cfg.stop_signal,
        stop_delay: cfg.stop_delay,
        term_signals: cfg.term_signals,
        timeout: cfg.timeout,
        heartbeat: cfg.heartbeat,
        gated: !cfg.wait_for.is_empty(),
        wait_timeout: cfg.wait_timeout,
        on_wait_timeout: cfg.on_wait_timeout,
        requires: cfg
            .requires
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
    }
}

async fn supervise(cfg: MainConfig) -> Outcome {
    let started = Instant::now();
    let started_at = SystemTime::now();
    let shown = super::display_command(&cfg.command);
    let signals = match Signals::new() {
        Ok(s) => s,
        Err(e) => {
            let why = format!("cannot read signals (signalfd): {e}");
            return super::refuse(Role::Main, cfg.termination_log.as_deref(), &shown, why);
        }
    };
    reaper::become_subreaper();
    let lease = match &cfg.done_file {
        Some(done) => match super::prepare_done_file(done, cfg.heartbeat) {
            Ok(l) => Some(l),
            Err(why) => {
                return super::refuse(Role::Main, cfg.termination_log.as_deref(), &shown, why);
            }
        },
        None => None,
    };
    let mut events = Events::new(signals, Peers::new(&cfg.requires, FILE_POLL));
    let mut policy = Policy::new(settings(&cfg, &shown));
    let mut queue: VecDeque<Action> = policy.start().into();
    for i in 0..cfg.requires.len() {
        let obs = events.peers.observe(i);
        queue.extend(policy.on_peer(i, obs, false));
    }
    let ending = run_loop(
        &cfg,
        &shown,
        &mut events,
        &mut policy,
        queue,
        lease.as_ref(),
        started,
    )
    .await;
    // Kept open to the end, for the same reason as the runtime (see `block_on`).
    std::mem::forget(events);
    let outcome = super::finish(
        Finishing {
            role: Role::Main,
            command: cfg.command.clone(),
            shown,
            started,
            started_at,
            done_file: cfg.done_file.clone(),
            lease,
            termination_log: cfg.termination_log.clone(),
        },
        ending,
    );
    if !cfg.quit_urls.is_empty() {
        crate::quit::post_all(&cfg.quit_urls);
    }
    outcome
}

/// Next event, decide, act; until the policy says how the run ended.
async fn run_loop(
    cfg: &MainConfig,
    shown: &str,
    events: &mut Events,
    policy: &mut Policy,
    mut queue: VecDeque<Action>,
    lease: Option<&Lease>,
    started: Instant,
) -> Ending {
    let mut child: Option<Child> = None;
    loop {
        while let Some(action) = queue.pop_front() {
            let hands = Hands {
                child,
                quit_urls: &[],
            };
            match act_common(action, hands, events) {
                None => {}
                Some(Action::Finish(ending)) => return ending,
                Some(Action::Spawn) => match child::spawn(&cfg.command) {
                    Ok(c) => {
                        events.watch_child(c.pid);
                        child = Some(c);
                        queue.extend(policy.spawned());
                        log_started(cfg, shown, c, started);
                    }
                    Err(e) => queue.extend(policy.spawn_failed(e.ending())),
                },
                Some(Action::StartGate) => start_gate(cfg, shown, events),
                Some(Action::TouchLease) => {
                    if let Some(l) = lease {
                        l.touch();
                    }
                }
                Some(other) => tracing::debug!("main has no use for {other:?}"),
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
                .collect(),
            other => policy.on(other),
        }));
    }
}

fn start_gate(cfg: &MainConfig, shown: &str, events: &mut Events) {
    tracing::info!(
        "waiting for {} before starting {shown}",
        readiness::list(&cfg.wait_for)
    );
    events.await_ready(Box::pin(readiness::wait_all(
        cfg.wait_for.clone(),
        "wait-for",
        FILE_POLL,
        cfg.wait_timeout,
    )));
}

/// The one line a successful start logs: what runs, as which pid, and where its marker goes.
fn log_started(cfg: &MainConfig, shown: &str, c: Child, started: Instant) {
    let marker = match &cfg.done_file {
        Some(d) => format!("; marker will be written to {}", d.display()),
        None => String::new(),
    };
    let gate = if cfg.wait_for.is_empty() {
        String::new()
    } else {
        format!(
            " (targets ready after {})",
            crate::clock::human(started.elapsed())
        )
    };
    tracing::info!("started {shown} as pid {}{gate}{marker}", c.pid);
}
