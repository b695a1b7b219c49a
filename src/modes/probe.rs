//! `supervisor probe`: one attempt at each target, for Kubernetes exec probes in images with no
//! shell or curl. Silent when everything is ready; one line per failing target otherwise.
//!
//! The attempts run concurrently on the poll runner (no async runtime), so N targets cost one
//! `--timeout` at worst, not N.

use crate::config::ProbeConfig;
use crate::exit::Outcome;
use crate::readiness::attempt::Attempt;
use crate::readiness::runner;
use std::time::Instant;

pub fn run(cfg: ProbeConfig) -> Outcome {
    let deadline = Instant::now() + cfg.timeout;
    let attempts = cfg
        .targets
        .iter()
        .map(|t| (Attempt::probe(t), deadline))
        .collect();
    let mut failed = 0;
    for (t, outcome) in cfg.targets.iter().zip(runner::run(attempts)) {
        if let Err(why) = outcome {
            eprintln!("not ready: {t}: {why}");
            failed += 1;
        }
    }
    if failed == 0 {
        Outcome::Success
    } else {
        Outcome::ProbeFailed
    }
}
