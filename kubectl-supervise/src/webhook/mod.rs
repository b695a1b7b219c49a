//! `kubectl-supervise webhook`: the mutating admission webhook that wires pods as they are
//! created, with the same `inject` as the command line.
//!
//! Theory of operation. hyper serves HTTP/1.1 over rustls ([`tls`]) on a single-threaded tokio
//! runtime ([`server`]): one task per connection, each with a watchdog that enforces the
//! deadlines of [`conns`] (a new connection must send a request within `--request-timeout`,
//! a request once begun must arrive whole within it, a response must be taken within it; only
//! an answered connection may idle, for [`IDLE_TIMEOUT`]). Admission is [`conns::Registry`]'s:
//! at its share (a quarter of the connections) a client's new connection closes that client's
//! own oldest idle one, and at [`MAX_CONNECTIONS`] the oldest idle connection of anyone goes,
//! so a client that opens connections and sends nothing closes its own, never the API
//! server's. Requests are routed by [`route`]; `POST /mutate` bodies (JSON, at most
//! [`MAX_BODY`]) go to [`review::respond`], a plain function (body in, status and body out),
//! run off the runtime thread and one at a time (see `server`). A watcher thread reloads the
//! certificate when its files change ([`tls::Reloader`]). SIGTERM or SIGINT (blocked in every
//! thread, taken by one `sigwait` thread) stops the accepting, closes idle connections, lets
//! the requests in progress finish, and returns; in a pod, `supervisor main --stop-delay` keeps
//! the webhook serving while the API servers stop sending to it.
//!
//! The webhook never blocks a pod: whatever `inject` thinks of a pod, the answer is
//! `allowed: true` (see [`review`]), and the deployment says `failurePolicy: Ignore`, so an
//! unreachable webhook does not block pods either. Code on the request path returns errors
//! instead of panicking: the release profile aborts on a panic.

pub mod conns;
pub mod review;
pub mod server;
pub mod tls;

use crate::inject::Options;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The API server's limit on a request's body, which bounds the object it sends us.
pub const MAX_OBJECT: usize = 3 * 1024 * 1024;
/// The largest request body: the object as JSON, in the AdmissionReview. The API server's JSON
/// encoder (Go's encoding/json) writes `<`, `>`, `&` and control characters as six-byte
/// `\u003c` escapes, so the 3 MiB the API server accepted (as YAML, protobuf or JSON) can
/// reach six times that as JSON; the envelope (the user's name, groups and extra attributes,
/// the create options) is given 1 MiB beside it. A larger body is refused with 413 before it
/// is read. What a body of that size may cost in memory is bounded by
/// [`review::MAX_TOKENS`].
pub const MAX_BODY: usize = 6 * MAX_OBJECT + 1024 * 1024;
/// The request line and headers.
pub const MAX_HEAD: usize = 16 * 1024;
/// How long a kept-alive connection may sit idle between requests. Longer than the idle
/// timeout of Go's HTTP client (90 s), so the API server, not us, closes idle connections: a
/// POST sent on a connection we close at the same moment would fail (Go does not retry it).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Open connections at most. An idle connection costs about 25 KiB (rustls' and hyper's
/// buffers), so this is about 26 MiB; the API server needs one per concurrent review.
pub const MAX_CONNECTIONS: usize = 1024;
/// What one client (IP address) may hold: a quarter, so that it takes four addresses to fill
/// the server, and even then the oldest idle connections make room.
pub const MAX_PER_CLIENT: usize = MAX_CONNECTIONS / 4;
/// How often the certificate files are looked at.
pub const RELOAD_EVERY: Duration = Duration::from_secs(1);

/// What `kubectl-supervise webhook` was asked to do.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The inject options every pod starts from (its annotations add the rest).
    pub options: Options,
    pub request_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The certificate or key cannot be used (exit 2: nothing was started).
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Setup(String),
}

/// What a request gets, decided from its method, path and Content-Type alone (before its
/// body is read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `POST /mutate` with a JSON body: read it and review it.
    Review,
    /// `GET` or `HEAD /healthz`.
    Health,
    /// Answered at once with this status and text; the body, if any, is not read.
    Refuse(u16, &'static str),
}

/// Routes a request. The query string is ignored (the API server adds `?timeout=5s`).
pub fn route(method: &str, path: &str, content_type: Option<&[u8]>) -> Route {
    let path = path.split('?').next().unwrap_or_default();
    match (method, path) {
        ("POST", "/mutate") if is_json(content_type) => Route::Review,
        ("POST", "/mutate") => {
            Route::Refuse(415, "unsupported media type: send application/json\n")
        }
        ("GET" | "HEAD", "/healthz") => Route::Health,
        (_, "/mutate" | "/healthz") => Route::Refuse(405, "method not allowed\n"),
        _ => Route::Refuse(404, "not found\n"),
    }
}

/// `application/json`, with parameters or not (`; charset=utf-8`), in any case.
fn is_json(content_type: Option<&[u8]>) -> bool {
    let Some(v) = content_type else {
        return false;
    };
    let essence = v.split(|&b| b == b';').next().unwrap_or_default();
    essence
        .trim_ascii()
        .eq_ignore_ascii_case(b"application/json")
}

/// Serves until SIGTERM or SIGINT; `listening` is called with the bound address once
/// connections are accepted.
pub fn serve(config: Config, listening: &mut dyn FnMut(SocketAddr)) -> Result<(), WebhookError> {
    server::serve(config, listening)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let json = Some(&b"application/json"[..]);
        assert_eq!(route("POST", "/mutate?timeout=5s", json), Route::Review);
        assert_eq!(
            route("POST", "/mutate", Some(b"Application/JSON; charset=utf-8")),
            Route::Review
        );
        for ct in [None, Some(&b"text/plain"[..]), Some(b"application/jsonx")] {
            assert!(matches!(
                route("POST", "/mutate", ct),
                Route::Refuse(415, _)
            ));
        }
        assert_eq!(route("GET", "/healthz", None), Route::Health);
        assert_eq!(route("HEAD", "/healthz?x", None), Route::Health);
        assert!(matches!(
            route("GET", "/mutate", json),
            Route::Refuse(405, _)
        ));
        assert!(matches!(
            route("POST", "/healthz", json),
            Route::Refuse(405, _)
        ));
        assert!(matches!(
            route("POST", "/validate", json),
            Route::Refuse(404, _)
        ));
    }
}
