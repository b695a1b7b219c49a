//! The `docker` preset: dockerd is ready when it answers, not when its socket accepts.
//!
//! dockerd listens before it serves, and the TLS variant (docker:dind with `DOCKER_TLS_CERTDIR`)
//! writes the client's certificates after its port opens, so a client that starts at the first
//! accepted connection fails ("Cannot connect to the Docker daemon", or a missing `ca.pem`).
//! `docker[:ENDPOINT]` therefore waits until:
//! - dockerd answers `GET /_ping` with a 2xx/3xx on its endpoint: ENDPOINT as DOCKER_HOST writes
//!   it (`unix:///var/run/docker.sock`, `unix:/path`, `tcp://HOST[:PORT]`), else the container's
//!   DOCKER_HOST, else the default socket. Over TCP with TLS in effect (DOCKER_TLS_CERTDIR
//!   non-empty, or DOCKER_TLS_VERIFY set) the port accepting is enough: the supervisor speaks no
//!   TLS;
//! - with TLS in effect, `ca.pem`, `cert.pem` and `key.pem` are non-empty regular files in the
//!   client's certificate directory: DOCKER_CERT_PATH when set (where the docker client reads
//!   them), else `$DOCKER_TLS_CERTDIR/client`.
//!
//! The preset is resolved once, when the configuration is read, from the environment the parser
//! is given (the process's, or the manifest's for `kubectl-supervise check`), and the start-up
//! log says what it became.

use super::Target;
use crate::http;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The variables the preset reads (the configuration copies them from the environment).
pub const VARS: [&str; 4] = [
    "DOCKER_HOST",
    "DOCKER_TLS_CERTDIR",
    "DOCKER_CERT_PATH",
    "DOCKER_TLS_VERIFY",
];
const DEFAULT_ENDPOINT: &str = "unix:///var/run/docker.sock";
const CERTIFICATES: [&str; 3] = ["ca.pem", "cert.pem", "key.pem"];

/// The container's Docker variables; an empty value counts as unset, as the docker client has it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DockerEnv {
    host: Option<OsString>,
    tls_certdir: Option<OsString>,
    cert_path: Option<OsString>,
    tls_verify: bool,
}

impl DockerEnv {
    pub fn from_env(env: &dyn Fn(&str) -> Option<OsString>) -> DockerEnv {
        let get = |var: &str| env(var).filter(|v| !v.is_empty());
        DockerEnv {
            host: get("DOCKER_HOST"),
            tls_certdir: get("DOCKER_TLS_CERTDIR"),
            cert_path: get("DOCKER_CERT_PATH"),
            tls_verify: get("DOCKER_TLS_VERIFY").is_some(),
        }
    }

    fn tls(&self) -> bool {
        self.tls_certdir.is_some() || self.tls_verify
    }

    /// The directory whose certificates must be there, and the variable that named it.
    fn certificates(&self) -> Option<(PathBuf, String)> {
        if !self.tls() {
            return None;
        }
        if let Some(p) = &self.cert_path {
            return Some((PathBuf::from(p), "DOCKER_CERT_PATH".into()));
        }
        self.tls_certdir.as_ref().map(|d| {
            let shown = format!("DOCKER_TLS_CERTDIR={}", one_line(Path::new(d)));
            (Path::new(d).join("client"), shown)
        })
    }
}

/// `docker` → `Some(None)`, `docker:ENDPOINT` → `Some(Some(ENDPOINT))`, anything else → `None`.
pub fn preset_argument(s: &str) -> Option<Option<&str>> {
    let name = s.get(..6)?;
    if !name.eq_ignore_ascii_case("docker") {
        return None;
    }
    match &s[6..] {
        "" => Some(None),
        rest => rest.strip_prefix(':').map(Some),
    }
}

/// The `docker` preset, resolved.
#[derive(Debug, Clone, Eq)]
pub struct Docker {
    /// The endpoint, as DOCKER_HOST would write it.
    endpoint: String,
    /// What is probed on it.
    pub probe: Box<Target>,
    /// With TLS: the directory whose `ca.pem`, `cert.pem` and `key.pem` must be non-empty.
    pub certs: Option<PathBuf>,
    /// What the start-up log says the preset became.
    described: String,
}

/// Equal when they probe the same things, wherever the endpoint was read from.
impl PartialEq for Docker {
    fn eq(&self, other: &Docker) -> bool {
        (&self.endpoint, &self.probe, &self.certs) == (&other.endpoint, &other.probe, &other.certs)
    }
}

impl std::fmt::Display for Docker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "docker:{}", self.endpoint)
    }
}

impl Docker {
    /// Resolves `docker[:ENDPOINT]` against the container's Docker variables. An error names
    /// the value, and DOCKER_HOST when the value came from there.
    pub fn resolve(argument: Option<&str>, env: &DockerEnv) -> Result<Docker, String> {
        let (value, origin) = match (argument, &env.host) {
            (Some(a), _) => (a.to_string(), "ENDPOINT"),
            (None, Some(h)) => match h.to_str() {
                Some(h) => (h.to_string(), "DOCKER_HOST"),
                None => return Err(format!("DOCKER_HOST {h:?} is not valid UTF-8")),
            },
            (None, None) => (DEFAULT_ENDPOINT.to_string(), "the default"),
        };
        let tls = env.tls();
        let (endpoint, probe) = endpoint(&value, tls).map_err(|why| match origin {
            "the default" => why,
            _ => format!("{origin} {value:?}: {why}"),
        })?;
        let certs = env.certificates();
        let mut described = format!("{probe} (endpoint {endpoint}");
        described.push_str(match origin {
            "DOCKER_HOST" => ", from DOCKER_HOST",
            "the default" => ", the default",
            _ => "",
        });
        if tls && matches!(probe, Target::Tcp { .. }) {
            described.push_str("; TLS: the port accepting is enough");
        }
        described.push(')');
        if let Some((dir, from)) = &certs {
            described.push_str(&format!(
                ", then non-empty {}/{{ca,cert,key}}.pem ({from})",
                one_line(dir)
            ));
        }
        Ok(Docker {
            endpoint,
            probe: Box::new(probe),
            certs: certs.map(|(dir, _)| dir),
            described,
        })
    }

    /// What the preset became, for the start-up log.
    pub fn describe(&self) -> String {
        self.described.clone()
    }
}

/// A path from the environment, for the one start-up log line: control characters escaped.
fn one_line(p: &Path) -> String {
    p.display()
        .to_string()
        .chars()
        .flat_map(|c| match c.is_control() {
            true => c.escape_default().collect::<Vec<_>>(),
            false => vec![c],
        })
        .collect()
}

/// A DOCKER_HOST value: the endpoint written back in one canonical form, and what to probe there.
fn endpoint(value: &str, tls: bool) -> Result<(String, Target), String> {
    if let Some(p) = value
        .strip_prefix("unix://")
        .or_else(|| value.strip_prefix("unix:"))
    {
        let socket = super::socket_path(p, "unix:///var/run/docker.sock")?;
        let shown = format!("unix://{}", socket.display());
        let probe = Target::HttpUnix {
            socket,
            path: "/_ping".into(),
        };
        return Ok((shown, probe));
    }
    let Some(rest) = value.strip_prefix("tcp://") else {
        return Err("not unix:///PATH or tcp://HOST:PORT".into());
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    let (host, port) = match http::split_host_port(authority) {
        Some((h, p)) if !h.is_empty() => (h, p.unwrap_or(if tls { 2376 } else { 2375 })),
        _ => return Err("expected tcp://HOST:PORT".into()),
    };
    let bracketed = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let shown = format!("tcp://{bracketed}");
    let probe = if tls {
        Target::Tcp {
            host,
            port,
            raw: shown.clone(),
        }
    } else {
        let url = format!("http://{bracketed}/_ping");
        Target::Http(http::parse_url(&url).map_err(|e| e.to_string())?)
    };
    Ok((shown, probe))
}

/// Whether the client's certificates are there: each a non-empty regular file (a symlink to one
/// counts, as a Secret's files are). Nothing is opened, so a FIFO planted there cannot block us.
pub fn certificates_ready(dir: &Path) -> Result<(), String> {
    for name in CERTIFICATES {
        let p = dir.join(name);
        match std::fs::metadata(&p) {
            Err(e) => return Err(format!("no client certificate {}: {e}", p.display())),
            Ok(m) if !m.is_file() => {
                return Err(format!("{} is not a regular file", p.display()));
            }
            Ok(m) if m.len() == 0 => return Err(format!("{} is empty", p.display())),
            Ok(_) => {}
        }
    }
    Ok(())
}
