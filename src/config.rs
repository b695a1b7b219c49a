//! From the parsed command line to a validated, plain configuration.
//!
//! Everything a user can get wrong is checked here, before any process starts, and reported as
//! one line naming the option and the offending value (exit 2).

use crate::cli::{self, ExitCodeArg, OnArg};
use crate::http::{self, HttpUrl};
use crate::readiness::Target;
use nix::sys::signal::Signal;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
#[error("{option}: {message}")]
pub struct ConfigError {
    pub option: &'static str,
    pub message: String,
}

fn bad(option: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        option,
        message: message.into(),
    }
}

#[derive(Debug)]
pub struct MainConfig {
    pub done_file: Option<PathBuf>,
    pub grace: Duration,
    pub wait_for: Vec<Target>,
    pub wait_timeout: Option<Duration>,
    pub quit_urls: Vec<HttpUrl>,
    pub heartbeat: Option<Duration>,
    pub command: Vec<OsString>,
}

/// Which markers end the wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnPolicy {
    Any,
    Success,
}

/// What a sidecar exits with after a marker-triggered stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitPolicy {
    Zero,
    Main,
    Daemon,
}

#[derive(Debug)]
pub struct SidecarConfig {
    pub wait_files: Vec<PathBuf>,
    pub on: OnPolicy,
    pub stop_signal: Signal,
    pub grace: Duration,
    pub quit_urls: Vec<HttpUrl>,
    pub exit_code: ExitPolicy,
    pub poll: Duration,
    pub ready_when: Vec<Target>,
    pub ready_file: Option<PathBuf>,
    pub stale_after: Option<Duration>,
    pub command: Vec<OsString>,
}

#[derive(Debug)]
pub struct ProbeConfig {
    pub targets: Vec<Target>,
    pub timeout: Duration,
}

/// Parses `500ms`, `10s`, `2m`, `1h`, `1.5s` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err(format!(
            "invalid duration {s:?}: expected e.g. 500ms, 10s, 2m, 1h"
        ));
    }
    let value: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: {num:?} is not a number"))?;
    let scale = match unit {
        "ms" => 1e-3,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => {
            return Err(format!(
                "invalid duration {s:?}: unknown unit {unit:?} (use ms, s, m or h)"
            ));
        }
    };
    let secs = value * scale;
    // A year is far beyond any sensible grace or timeout; the bound keeps the arithmetic of
    // deadlines (Instant + Duration) from overflowing.
    if !secs.is_finite() || secs > 365.0 * 24.0 * 3600.0 {
        return Err(format!("invalid duration {s:?}: too large"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses `TERM`, `SIGTERM`, `sigterm` or `15`.
pub fn parse_signal(s: &str) -> Result<Signal, String> {
    let t = s.trim();
    if let Ok(n) = t.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| format!("invalid signal {s:?}: no signal {n}"));
    }
    let upper = t.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>()
        .map_err(|_| format!("invalid signal {s:?}: expected a name like TERM or a number"))
}

/// The name of a signal without the SIG prefix, as written in markers and logs.
pub fn signal_name(sig: Signal) -> &'static str {
    let full = sig.as_str();
    full.strip_prefix("SIG").unwrap_or(full)
}

fn duration(option: &'static str, s: &str) -> Result<Duration, ConfigError> {
    parse_duration(s).map_err(|m| bad(option, m))
}

fn positive_duration(option: &'static str, s: &str) -> Result<Duration, ConfigError> {
    let d = duration(option, s)?;
    if d.is_zero() {
        return Err(bad(option, format!("{s:?} must be greater than zero")));
    }
    Ok(d)
}

fn targets(option: &'static str, raw: &[String]) -> Result<Vec<Target>, ConfigError> {
    raw.iter()
        .map(|t| t.parse::<Target>().map_err(|e| bad(option, e.to_string())))
        .collect()
}

fn quit_urls(raw: &[String], allow_remote: bool) -> Result<Vec<HttpUrl>, ConfigError> {
    raw.iter()
        .map(|u| {
            let url = http::parse_url(u).map_err(|e| bad("--quit-url", e.to_string()))?;
            if !allow_remote && !http::is_loopback(&url.host) {
                return Err(bad(
                    "--quit-url",
                    format!(
                        "{u:?} is not a loopback address (use --allow-remote-quit to allow it)"
                    ),
                ));
            }
            Ok(url)
        })
        .collect()
}

fn file_path(option: &'static str, p: &Path) -> Result<PathBuf, ConfigError> {
    if p.as_os_str().is_empty() {
        return Err(bad(option, "empty path"));
    }
    if p.file_name().is_none() {
        return Err(bad(
            option,
            format!("{:?} does not name a file", p.display().to_string()),
        ));
    }
    Ok(p.to_path_buf())
}

/// A whole `supervisor` command line, validated.
#[derive(Debug)]
pub enum Parsed {
    Main(MainConfig),
    Sidecar(SidecarConfig),
    Probe(ProbeConfig),
    Install(PathBuf),
}

/// Parses and validates a whole `supervisor` command line (`argv[0]` included) exactly as the
/// binary would, but reading no `SUPERVISOR_*` variable from this process's environment: for
/// tools that check the command lines written in manifests (`kubectl-supervise check`).
pub fn from_argv<I, T>(argv: I) -> Result<Parsed, ConfigError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    use clap::{CommandFactory, FromArgMatches};
    let command = cli::Cli::command()
        .mut_subcommands(|sub| sub.mut_args(|a| a.env(None)))
        .mut_args(|a| a.env(None));
    let parsed = command
        .try_get_matches_from(argv)
        .and_then(|m| cli::Cli::from_arg_matches(&m))
        .map_err(|e| {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            bad(
                "command line",
                first.trim_start_matches("error: ").to_string(),
            )
        })?;
    Ok(match parsed.command {
        cli::Command::Main(a) => Parsed::Main(MainConfig::from_args(a)?),
        cli::Command::Sidecar(a) => Parsed::Sidecar(SidecarConfig::from_args(a)?),
        cli::Command::Probe(a) => Parsed::Probe(ProbeConfig::from_args(a)?),
        cli::Command::Install(a) => Parsed::Install(a.dir),
    })
}

impl MainConfig {
    pub fn from_args(a: cli::MainArgs) -> Result<Self, ConfigError> {
        let heartbeat = match &a.heartbeat {
            Some(h) => Some(positive_duration("--heartbeat", h)?),
            None => None,
        };
        if heartbeat.is_some() && a.done_file.is_none() {
            return Err(bad(
                "--heartbeat",
                "needs --done-file (the lease lives beside it)",
            ));
        }
        Ok(MainConfig {
            done_file: a
                .done_file
                .as_deref()
                .map(|p| file_path("--done-file", p))
                .transpose()?,
            grace: duration("--grace", &a.grace)?,
            wait_for: targets("--wait-for", &a.wait_for)?,
            wait_timeout: a
                .wait_timeout
                .as_deref()
                .map(|t| duration("--wait-timeout", t))
                .transpose()?,
            quit_urls: quit_urls(&a.quit_url, a.allow_remote_quit)?,
            heartbeat,
            command: a.command,
        })
    }
}

impl SidecarConfig {
    pub fn from_args(a: cli::SidecarArgs) -> Result<Self, ConfigError> {
        let wait_files = a
            .wait_file
            .iter()
            .map(|p| file_path("--wait-file", p))
            .collect::<Result<Vec<_>, _>>()?;
        let stop_signal = parse_signal(&a.stop_signal).map_err(|m| bad("--stop-signal", m))?;
        if stop_signal == Signal::SIGCHLD {
            return Err(bad("--stop-signal", "CHLD cannot stop a daemon"));
        }
        Ok(SidecarConfig {
            wait_files,
            on: match a.on {
                OnArg::Any => OnPolicy::Any,
                OnArg::Success => OnPolicy::Success,
            },
            stop_signal,
            grace: duration("--grace", &a.grace)?,
            quit_urls: quit_urls(&a.quit_url, a.allow_remote_quit)?,
            exit_code: match a.exit_code {
                ExitCodeArg::Zero => ExitPolicy::Zero,
                ExitCodeArg::Main => ExitPolicy::Main,
                ExitCodeArg::Daemon => ExitPolicy::Daemon,
            },
            poll: positive_duration("--poll", &a.poll)?,
            ready_when: targets("--ready-when", &a.ready_when)?,
            ready_file: a
                .ready_file
                .as_deref()
                .map(|p| file_path("--ready-file", p))
                .transpose()?,
            stale_after: a
                .stale_after
                .as_deref()
                .map(|s| positive_duration("--stale-after", s))
                .transpose()?,
            command: a.command,
        })
    }
}

impl ProbeConfig {
    pub fn from_args(a: cli::ProbeArgs) -> Result<Self, ConfigError> {
        Ok(ProbeConfig {
            targets: targets("TARGET", &a.targets)?,
            timeout: positive_duration("--timeout", &a.timeout)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ok = [
            ("500ms", Duration::from_millis(500)),
            ("10s", Duration::from_secs(10)),
            ("2m", Duration::from_secs(120)),
            ("1h", Duration::from_secs(3600)),
            ("7", Duration::from_secs(7)),
            ("0", Duration::ZERO),
            ("1.5s", Duration::from_millis(1500)),
            (" 3s ", Duration::from_secs(3)),
        ];
        for (s, want) in ok {
            assert_eq!(parse_duration(s), Ok(want), "{s}");
        }
        for s in [
            "",
            "s",
            "10x",
            "-1s",
            "1.2.3s",
            "ms",
            "1e3",
            "99999999h",
            "10 s",
        ] {
            let err = parse_duration(s).unwrap_err();
            assert!(err.contains(&format!("{s:?}")), "{s}: {err}");
        }
    }

    #[test]
    fn whole_command_lines_ignore_this_process_environment() {
        let ok = from_argv(["supervisor", "sidecar", "--wait-file=/s/done", "--", "d"]);
        match ok {
            Ok(Parsed::Sidecar(s)) => assert_eq!(s.wait_files, [PathBuf::from("/s/done")]),
            other => panic!("{other:?}"),
        }
        assert!(from_argv(["supervisor", "main", "--grace=x", "--", "true"]).is_err());
        assert!(from_argv(["supervisor", "main", "--nope", "--", "true"]).is_err());
    }

    #[test]
    fn signals() {
        for s in ["TERM", "SIGTERM", "sigterm", "term", "15"] {
            assert_eq!(parse_signal(s), Ok(Signal::SIGTERM), "{s}");
        }
        assert_eq!(parse_signal("QUIT"), Ok(Signal::SIGQUIT));
        assert_eq!(parse_signal("9"), Ok(Signal::SIGKILL));
        for s in ["", "NOPE", "0", "99", "-15", "SIG"] {
            assert!(parse_signal(s).is_err(), "{s}");
        }
        assert_eq!(signal_name(Signal::SIGTERM), "TERM");
    }
}
