//! `supervisor probe`: one attempt at each target, for Kubernetes exec probes in images with no
//! shell or curl. Silent when everything is ready; one line per failing target otherwise.

use crate::config::ProbeConfig;
use crate::exit::Outcome;

pub fn run(cfg: ProbeConfig) -> Outcome {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("supervisor: cannot start the probes: {e}");
            return Outcome::Internal;
        }
    };
    rt.block_on(async move {
        let mut failed = 0;
        // Concurrently, so N targets cost one timeout at worst, not N.
        let checks: Vec<_> = cfg
            .targets
            .iter()
            .map(|t| {
                tokio::spawn({
                    let t = t.clone();
                    let timeout = cfg.timeout;
                    async move { t.probe(timeout).await }
                })
            })
            .collect();
        for (t, handle) in cfg.targets.iter().zip(checks) {
            match handle.await {
                Ok(Ok(())) => {}
                Ok(Err(why)) => {
                    eprintln!("not ready: {t}: {why}");
                    failed += 1;
                }
                Err(e) => {
                    eprintln!("not ready: {t}: probe failed: {e}");
                    failed += 1;
                }
            }
        }
        if failed == 0 {
            Outcome::Success
        } else {
            Outcome::ProbeFailed
        }
    })
}
