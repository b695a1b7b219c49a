//! Readiness targets and the machinery that waits for them, without an async runtime.
//!
//! Theory of operation: a target is something that is "up" or not: a file exists, a TCP port or
//! a unix socket accepts, an HTTP endpoint answers 200-399 (Kubernetes' httpGet rule) over TCP or
//! over a unix socket, dockerd answers its `/_ping` (and, with TLS, has written the client's
//! certificates). Waiting for targets is split into three parts that any readiness-based loop can
//! drive:
//! - [`attempt`]: one non-blocking attempt at one target. It says which descriptor to wait on and
//!   for what, and advances when told the descriptor is ready, until it has an outcome. Names
//!   other than `localhost` and IP literals are looked up on a short-lived thread that reports
//!   through a descriptor, so the loop never blocks.
//! - [`gate`]: the pure decision of when to start which attempt (a capped backoff per target, each
//!   attempt's own deadline clipped to what is left of the overall one, file targets re-checked
//!   when their directory changes) and when the wait is over. Inputs carry the time.
//! - [`flight`]: the attempts under way and their deadlines, what every loop that drives them
//!   shares: which descriptors to wait on, the nearest deadline, step the ready one, time out.
//! - [`runner`]: a small poll(2) loop over a flight (`supervisor probe`, the quit URLs' POSTs);
//!   [`wait`] drives a gate from an async runtime, until the event loop drives it directly.
//!
//! The backoff starts at 10 ms and doubles to a 100 ms cap: a gate is on the job's critical path,
//! and a refused loopback connect costs microseconds, so ten attempts a second per target is cheap
//! while a one-second poll would add half a second to every job on average.

pub mod attempt;
pub mod docker;
pub mod flight;
pub mod gate;
pub mod runner;

pub use docker::{Docker, DockerEnv};

use crate::http::{self, HttpUrl};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// The longest one attempt at a network target may take while waiting.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);
pub const BACKOFF_START: Duration = Duration::from_millis(10);
/// The longest pause between two attempts: at most ten attempts a second per pending target.
pub const BACKOFF_MAX: Duration = Duration::from_millis(100);
/// How often a gate says what it is still waiting for.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// The longest path a unix socket address holds (`sun_path`).
const MAX_SOCKET_PATH: usize = 108;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    File(PathBuf),
    Tcp {
        host: String,
        port: u16,
        raw: String,
    },
    Http(HttpUrl),
    Unix(PathBuf),
    /// `http+unix:SOCKET:/PATH`: an HTTP GET over a unix socket.
    HttpUnix {
        socket: PathBuf,
        /// Path and query, starting with `/`.
        path: String,
    },
    Docker(Docker),
}

/// Parsing drops one leading `//` (URL style, `file:///x`): a path that itself starts with `//`
/// gets one written back, or the printed target would name another path.
fn slashes(p: &Path) -> &'static str {
    if p.as_os_str().as_encoded_bytes().starts_with(b"//") {
        "//"
    } else {
        ""
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::File(p) => write!(f, "file:{}{}", slashes(p), p.display()),
            Target::Tcp { raw, .. } => f.write_str(raw),
            Target::Http(u) => write!(f, "{u}"),
            Target::Unix(p) => write!(f, "unix:{}{}", slashes(p), p.display()),
            Target::HttpUnix { socket, path } => {
                write!(f, "http+unix:{}:{path}", socket.display())
            }
            Target::Docker(d) => write!(f, "{d}"),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid target {target:?}: {why}")]
pub struct TargetError {
    target: String,
    why: String,
}

const UNSUPPORTED: &str = "unsupported; use file:PATH, tcp://HOST:PORT, http://HOST:PORT/PATH, \
     unix:PATH, http+unix:SOCKET:/PATH, docker[:ENDPOINT] or a preset (istio, envoy, linkerd, \
     cloud-sql-proxy)";

impl FromStr for Target {
    type Err = TargetError;

    /// A target as the supervisor reads it with no Docker variable set (`docker` is then the
    /// default socket, without TLS). See [`Target::parse_with`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Target::parse_with(s, &DockerEnv::default())
    }
}

impl Target {
    /// Parses a target; the `docker` preset is resolved against `env`, the container's Docker
    /// variables, once, here.
    pub fn parse_with(s: &str, env: &DockerEnv) -> Result<Target, TargetError> {
        let err = |why: &str| TargetError {
            target: s.to_string(),
            why: why.to_string(),
        };
        if let Some(p) = s.strip_prefix("file:") {
            let p = p.strip_prefix("//").unwrap_or(p);
            if p.is_empty() {
                return Err(err("missing path (file:/path/to/file)"));
            }
            return Ok(Target::File(PathBuf::from(p)));
        }
        if let Some(p) = s.strip_prefix("unix:") {
            let p = p.strip_prefix("//").unwrap_or(p);
            return socket_path(p, "unix:/path/to/socket")
                .map(Target::Unix)
                .map_err(|why| err(&why));
        }
        if let Some(rest) = s.strip_prefix("http+unix:") {
            return http_unix(rest).map_err(|why| err(&why));
        }
        if let Some(rest) = s.strip_prefix("tcp://") {
            let authority = rest.strip_suffix('/').unwrap_or(rest);
            return match http::split_host_port(authority) {
                Some((host, Some(port))) if !host.is_empty() => Ok(Target::Tcp {
                    host,
                    port,
                    raw: s.to_string(),
                }),
                _ => Err(err("expected tcp://HOST:PORT")),
            };
        }
        if s.starts_with("http://") || s.starts_with("https://") {
            return http::parse_url(s)
                .map(Target::Http)
                .map_err(|e| err(&e.to_string()));
        }
        if let Some(endpoint) = docker::preset_argument(s) {
            return Docker::resolve(endpoint, env)
                .map(Target::Docker)
                .map_err(|why| err(&why));
        }
        match crate::presets::ready_url(s) {
            Some(Ok(url)) => http::parse_url(&url)
                .map(Target::Http)
                .map_err(|e| err(&e.to_string())),
            Some(Err(why)) => Err(err(&why)),
            None => Err(err(UNSUPPORTED)),
        }
    }

    /// What the log says a preset or `docker` stands for; `None` for a target written out.
    pub fn expansion(&self, written: &str) -> Option<String> {
        match self {
            Target::Docker(d) => Some(d.describe()),
            _ if crate::presets::ready_url(written).is_some() => Some(format!("GET {self}")),
            _ => None,
        }
    }

    /// The paths this target reads (a file, a socket, certificates' directory): a relative one
    /// needs the working directory for as long as the target is checked.
    pub fn paths(&self) -> Vec<&Path> {
        match self {
            Target::File(p) | Target::Unix(p) => vec![p],
            Target::HttpUnix { socket, .. } => vec![socket],
            Target::Tcp { .. } | Target::Http(_) => Vec::new(),
            Target::Docker(d) => {
                let mut paths = d.probe.paths();
                paths.extend(d.certs.as_deref());
                paths
            }
        }
    }

    /// Whether this target is a file, re-checked when its directory changes rather than polled.
    pub fn is_file(&self) -> bool {
        matches!(self, Target::File(_))
    }
}

/// A unix socket's path: not empty, no control character (a NUL cannot be in an address, and a
/// newline would forge log lines), short enough for a socket address.
fn socket_path(p: &str, example: &str) -> Result<PathBuf, String> {
    if p.is_empty() {
        return Err(format!("missing path ({example})"));
    }
    if p.chars().any(char::is_control) {
        return Err("the socket path contains a control character".into());
    }
    if p.len() > MAX_SOCKET_PATH {
        return Err(format!(
            "the socket path is {} bytes long; a unix socket's path has at most {MAX_SOCKET_PATH}",
            p.len()
        ));
    }
    Ok(PathBuf::from(p))
}

/// `SOCKET:/PATH`, split at the last `:/` (a socket path may hold a colon, a URL path here not).
fn http_unix(rest: &str) -> Result<Target, String> {
    const FORM: &str = "http+unix:/path/to.sock:/url/path";
    let Some(i) = rest.rfind(":/") else {
        return Err(format!("expected http+unix:SOCKET:/PATH ({FORM})"));
    };
    let socket = socket_path(&rest[..i], FORM)?;
    let path = rest[i + 1..].split('#').next().unwrap_or("/");
    if path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err("the URL path contains spaces or control characters".into());
    }
    Ok(Target::HttpUnix {
        socket,
        path: path.to_string(),
    })
}

/// The next backoff delay: doubling from 10 ms, capped at 100 ms.
pub fn next_backoff(current: Duration) -> Duration {
    (current * 2).min(BACKOFF_MAX)
}

/// The ready file a sidecar writes once its daemon is ready (`--ready-file`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReadyFile {
    pub ready_at: String,
    pub pid: u32,
    pub targets: Vec<String>,
}

impl ReadyFile {
    pub fn new(pid: u32, targets: &[Target]) -> ReadyFile {
        ReadyFile {
            ready_at: crate::clock::rfc3339(std::time::SystemTime::now()),
            pid,
            targets: targets.iter().map(|t| t.to_string()).collect(),
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec(self).unwrap_or_default();
        out.push(b'\n');
        out
    }
}

/// A one-line description of targets, for logs.
pub fn list(targets: &[Target]) -> String {
    targets
        .iter()
        .map(|t| t.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests;
