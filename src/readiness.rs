//! Readiness targets and their probes.
//!
//! A target is something that is "up" or not: a file exists, a TCP port accepts, an HTTP endpoint
//! answers 200-399 (Kubernetes' httpGet rule), a unix socket accepts. [`wait_all`] retries the
//! network targets with a short capped backoff and re-checks file targets on inotify events,
//! logging every few seconds what is still pending.
//!
//! The backoff starts at 10 ms and doubles to a 100 ms cap: a gate is on the job's critical path,
//! and a refused loopback connect costs microseconds, so ten attempts a second per target is cheap
//! while a one-second poll would add half a second to every job on average.

use crate::http::{self, HttpUrl};
use crate::watch::Watcher;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// Per-attempt timeout of network probes while waiting.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);
const BACKOFF_START: Duration = Duration::from_millis(10);
/// The longest pause between two attempts: at most ten attempts a second per pending target.
pub const BACKOFF_MAX: Duration = Duration::from_millis(100);
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

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
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Parsing drops one leading `//` (URL style, `file:///x`): a path that itself starts with
        // `//` gets one written back, or the printed target would name another path.
        let slashes = |p: &std::path::Path| {
            if p.as_os_str().as_encoded_bytes().starts_with(b"//") {
                "//"
            } else {
                ""
            }
        };
        match self {
            Target::File(p) => write!(f, "file:{}{}", slashes(p), p.display()),
            Target::Tcp { raw, .. } => f.write_str(raw),
            Target::Http(u) => write!(f, "{u}"),
            Target::Unix(p) => write!(f, "unix:{}{}", slashes(p), p.display()),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid target {target:?}: {why}")]
pub struct TargetError {
    target: String,
    why: String,
}

impl FromStr for Target {
    type Err = TargetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
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
            if p.is_empty() {
                return Err(err("missing path (unix:/path/to/socket)"));
            }
            return Ok(Target::Unix(PathBuf::from(p)));
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
        match crate::presets::ready_url(s) {
            Some(Ok(url)) => http::parse_url(&url)
                .map(Target::Http)
                .map_err(|e| err(&e.to_string())),
            Some(Err(why)) => Err(err(&why)),
            None => Err(err(
                "unsupported; use file:PATH, tcp://HOST:PORT, http://HOST:PORT/PATH, unix:PATH \
                 or a preset (istio, envoy, linkerd, cloud-sql-proxy)",
            )),
        }
    }
}

impl Target {
    /// One attempt, bounded by `timeout`. `Err` says why the target is not ready.
    pub async fn probe(&self, timeout: Duration) -> Result<(), String> {
        match self {
            Target::File(p) => match std::fs::symlink_metadata(p) {
                Ok(_) => Ok(()),
                Err(e) => Err(e.to_string()),
            },
            Target::Tcp { host, port, .. } => {
                match tokio::time::timeout(timeout, http::connect(host, *port)).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err(format!("no answer within {}ms", timeout.as_millis())),
                }
            }
            Target::Http(url) => match http::request(http::Method::Get, url, timeout).await {
                Ok(code) if (200..400).contains(&code) => Ok(()),
                Ok(code) => Err(format!("HTTP status {code}")),
                Err(e) => Err(e),
            },
            Target::Unix(p) => {
                match tokio::time::timeout(timeout, tokio::net::UnixStream::connect(p)).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err(format!("no answer within {}ms", timeout.as_millis())),
                }
            }
        }
    }

    fn is_file(&self) -> bool {
        matches!(self, Target::File(_))
    }
}

/// The next backoff delay: doubling from 10 ms, capped at 100 ms.
pub fn next_backoff(current: Duration) -> Duration {
    (current * 2).min(BACKOFF_MAX)
}

/// Waits until every target is ready, or until `deadline`: then returns the targets still
/// pending, each with the reason of its last failed attempt. `what` names the waiter in logs.
/// The inotify watcher used for file targets comes back, disarmed, for the caller to keep (see
/// `watch`: closing it would block on the kernel right when the command should start).
pub async fn wait_all(
    targets: Vec<Target>,
    what: &'static str,
    poll: Duration,
    deadline: Option<tokio::time::Instant>,
) -> (Result<(), Vec<String>>, Option<Watcher>) {
    let files: Vec<PathBuf> = targets
        .iter()
        .filter_map(|t| match t {
            Target::File(p) => Some(p.clone()),
            _ => None,
        })
        .collect();
    let mut watcher = (!files.is_empty()).then(|| Watcher::new(files, poll));
    let result = wait_with(&targets, what, &mut watcher, deadline).await;
    if let Some(w) = &mut watcher {
        w.disarm();
    }
    (result, watcher)
}

async fn wait_with(
    targets: &[Target],
    what: &str,
    watcher: &mut Option<Watcher>,
    deadline: Option<tokio::time::Instant>,
) -> Result<(), Vec<String>> {
    let started = Instant::now();
    let mut pending: Vec<&Target> = targets.iter().collect();
    let mut backoff = BACKOFF_START;
    let mut last_progress = Instant::now();
    loop {
        let mut still = Vec::new();
        let mut errors = Vec::new();
        for t in pending {
            match t.probe(ATTEMPT_TIMEOUT).await {
                Ok(()) => tracing::debug!("{what}: {t} is ready"),
                Err(e) => {
                    errors.push(format!("{t} ({e})"));
                    still.push(t);
                }
            }
        }
        pending = still;
        if pending.is_empty() {
            tracing::debug!(
                "{what}: all targets ready after {:.3}s",
                started.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            return Err(errors);
        }
        if last_progress.elapsed() >= PROGRESS_EVERY {
            tracing::info!(
                "{what}: still waiting after {:.0}s for {}",
                started.elapsed().as_secs_f64(),
                errors.join(", ")
            );
            last_progress = Instant::now();
        }
        let only_files = pending.iter().all(|t| t.is_file());
        // Only files left and inotify works: sleep until the filesystem says something (or it is
        // time to log progress). Otherwise retry the network targets after the backoff.
        let nap = match watcher {
            Some(w) if only_files && !w.is_polling() => PROGRESS_EVERY,
            _ => {
                let b = backoff;
                backoff = next_backoff(backoff);
                b
            }
        };
        let mut wake = tokio::time::Instant::now() + nap;
        if let Some(d) = deadline {
            wake = wake.min(d);
        }
        match watcher {
            Some(w) => {
                tokio::select! {
                    _ = w.changed() => {}
                    _ = tokio::time::sleep_until(wake) => {}
                }
            }
            None => tokio::time::sleep_until(wake).await,
        }
    }
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
mod tests {
    use super::*;

    #[test]
    fn parse_targets() {
        assert_eq!(
            "file:/shared/ready".parse::<Target>(),
            Ok(Target::File("/shared/ready".into()))
        );
        assert_eq!(
            "unix:///var/run/docker.sock".parse::<Target>(),
            Ok(Target::Unix("/var/run/docker.sock".into()))
        );
        match "tcp://127.0.0.1:6379".parse::<Target>() {
            Ok(Target::Tcp { host, port, .. }) => {
                assert_eq!((host.as_str(), port), ("127.0.0.1", 6379))
            }
            other => panic!("{other:?}"),
        }
        match "tcp://[::1]:80".parse::<Target>() {
            Ok(Target::Tcp { host, port, .. }) => assert_eq!((host.as_str(), port), ("::1", 80)),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            "http://localhost:8080/healthz".parse::<Target>(),
            Ok(Target::Http(_))
        ));
        for bad in [
            "gopher://x",
            "file:",
            "unix:",
            "tcp://host",
            "tcp://:80",
            "tcp://host:0",
            "tcp://host:99999",
            "https://x/",
            "localhost:80",
            "",
        ] {
            let e = bad.parse::<Target>().unwrap_err();
            assert!(e.to_string().contains(&format!("{bad:?}")), "{bad}: {e}");
        }
        assert_eq!(
            "tcp://db:5432".parse::<Target>().unwrap().to_string(),
            "tcp://db:5432"
        );
        // Found by fuzzing: printing must not lose a `//` that belongs to the path.
        for s in ["unix:////run/x.sock", "file:////a", "file://b", "unix:/c"] {
            let t = s.parse::<Target>().unwrap();
            assert_eq!(t.to_string().parse::<Target>(), Ok(t), "{s}");
        }
    }

    #[test]
    fn backoff_is_capped() {
        let mut d = BACKOFF_START;
        let mut seen = vec![d];
        for _ in 0..10 {
            d = next_backoff(d);
            seen.push(d);
        }
        assert_eq!(seen[1], Duration::from_millis(20));
        assert_eq!(*seen.last().unwrap(), Duration::from_millis(100));
    }
}
