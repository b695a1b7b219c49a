//! Quit URLs: POSTs that ask a proxy (istio-proxy, cloud-sql-proxy, a daemon with an admin
//! endpoint) to exit, at the end of a main's run or as a sidecar's way to stop its daemon.
//!
//! Theory of operation: every URL gets one [`Attempt::post`] at once, all driven by the poll
//! [`runner`] and bounded by [`QUIT_TIMEOUT`]; only a 2xx answer counts (a redirect is never
//! followed), and every other outcome is logged with its URL. The caller learns how many
//! answered (the policy falls back to the stop signal when none did).

use crate::http::HttpUrl;
use crate::readiness::attempt::Attempt;
use crate::readiness::runner;
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
