//! Quit URLs: POSTs that ask a proxy (istio-proxy, cloud-sql-proxy, a daemon with an admin
//! endpoint) to exit, at the end of a main's run or as a sidecar's way to stop its daemon.
//!
//! Theory of operation: every URL gets one [`Attempt::post`] at once, all driven by the poll
//! [`runner`] and bounded by [`QUIT_TIMEOUT`]; only a 2xx answer counts (a redirect is never
//! followed), and every other outcome is logged with its URL. A sidecar posts on a short-lived
//! thread of its own, so its loop keeps serving signals and the reaper meanwhile, and falls back
//! to the stop signal at once when no URL succeeded rather than idling until the SIGKILL.

use crate::child::Child;
use crate::http::HttpUrl;
use crate::readiness::attempt::Attempt;
use crate::readiness::runner;
use crate::signals::Sig;
use std::time::{Duration, Instant};

/// Timeout of one quit request.
pub const QUIT_TIMEOUT: Duration = Duration::from_secs(2);

/// POSTs to every URL concurrently. Returns how many answered with a 2xx status; failures are
/// logged with the URL and the reason.
pub fn post_all(urls: &[HttpUrl]) -> usize {
    let deadline = Instant::now() + QUIT_TIMEOUT;
    let outcomes = runner::run(urls.iter().map(|u| (Attempt::post(u), deadline)).collect());
    let mut ok = 0;
    for (u, outcome) in urls.iter().zip(outcomes) {
        match outcome {
            Ok(code) => {
                tracing::info!("quit URL {u} answered {}", code.unwrap_or_default());
                ok += 1;
            }
            Err(e) => tracing::warn!("quit URL {u} failed: {e}"),
        }
    }
    ok
}

/// Asks the daemon to stop over HTTP, beside the loop; when no URL succeeds, sends `fallback`
/// (and SIGCONT) at once.
pub fn quit(child: Child, urls: Vec<HttpUrl>, fallback: Sig) {
    tracing::info!("stopping the daemon: POSTing to {} quit URL(s)", urls.len());
    let fall_back = move || {
        child.signal_group(fallback);
        child.signal_group(Sig::CONT);
    };
    let spawned = std::thread::Builder::new()
        .name("quit".into())
        .spawn(move || {
            if post_all(&urls) == 0 {
                tracing::warn!("no quit URL succeeded; sending {fallback} to the daemon instead");
                fall_back();
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot POST the quit URLs (no thread: {e}); sending {fallback} instead");
        fall_back();
    }
}
