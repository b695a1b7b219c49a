//! Stopping a daemon: ask once, wait out the grace period, then SIGKILL its process group.
//!
//! The stop signal is sent exactly once (dockerd, for one, quits without cleaning up on the third
//! SIGTERM). With quit URLs the daemon is asked over HTTP instead; if every URL fails, the stop
//! signal is sent at once rather than idling until the SIGKILL. The caller owns the grace timer
//! and the wait for the daemon's exit, so signals and the reaper keep running meanwhile.

use crate::child::Child;
use crate::config::signal_name;
use crate::http::{self, HttpUrl, Method};
use nix::sys::signal::Signal;
use std::time::Duration;

/// Timeout of one quit request.
pub const QUIT_TIMEOUT: Duration = Duration::from_secs(2);

/// POSTs to every URL concurrently. Returns how many answered with a 2xx status; failures are
/// logged with the URL and the reason.
pub async fn post_all(urls: &[HttpUrl], timeout: Duration) -> usize {
    let results = futures_join(urls.iter().map(|u| async move {
        let r = http::request(Method::Post, u, timeout).await;
        (u, r)
    }))
    .await;
    let mut ok = 0;
    for (u, r) in results {
        match r {
            Ok(code) if (200..300).contains(&code) => {
                tracing::info!("quit URL {u} answered {code}");
                ok += 1;
            }
            Ok(code) => {
                tracing::warn!("quit URL {u} answered {code} (not a success; not followed)")
            }
            Err(e) => tracing::warn!("quit URL {u} failed: {e}"),
        }
    }
    ok
}

/// Runs futures concurrently on the current task and collects their outputs in order. (Small
/// enough not to pull in the futures crate.)
async fn futures_join<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let handles: Vec<_> = futs.map(|f| Box::pin(f)).collect();
    let mut outputs: Vec<Option<F::Output>> = handles.iter().map(|_| None).collect();
    let mut handles: Vec<Option<_>> = handles.into_iter().map(Some).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, out) in handles.iter_mut().zip(outputs.iter_mut()) {
            if let Some(fut) = slot {
                match fut.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        *out = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

/// Sends the stop signal, once, to the daemon's process group.
pub fn send_stop_signal(child: &Child, sig: Signal) {
    tracing::info!(
        "stopping the daemon: sending {} to its process group",
        signal_name(sig)
    );
    child.signal_group(sig);
}

/// Asks the daemon to stop over HTTP; when no URL succeeds, sends `fallback` at once rather than
/// idling until the SIGKILL.
pub async fn quit(child: &Child, urls: &[HttpUrl], fallback: Signal) {
    tracing::info!("stopping the daemon: POSTing to {} quit URL(s)", urls.len());
    if post_all(urls, QUIT_TIMEOUT).await == 0 {
        tracing::warn!(
            "no quit URL succeeded; sending {} to the daemon instead",
            signal_name(fallback)
        );
        child.signal_group(fallback);
    }
}
