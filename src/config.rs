//! From the command line and the environment to a validated, plain configuration.
//!
//! Everything a user can get wrong is checked here, before any process starts, and reported as
//! one line naming the option, or the environment variable when the value came from there, and
//! the offending value (exit 2). Each option `--some-option` also reads `SUPERVISOR_SOME_OPTION`
//! when it is not on the command line; a repeatable option's variable holds a comma-separated
//! list in which `\,` is a literal comma and `\\` a literal backslash (any other backslash is
//! kept as is, so ordinary paths need no escaping). Options that would do nothing without
//! another one are refused, naming the one they need.

use crate::cli;
use crate::clock;
use crate::http::{self, HttpUrl};
use crate::logging::{Format, LevelFilter};
use crate::readiness::{DockerEnv, Target};
use crate::signals::{self, Sig, SigSet};
use crate::stop::StopSettings;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A bad command line or environment, in one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{place} is empty")]
    Empty { place: String },
    #[error("{place}: {message}")]
    Invalid { place: String, message: String },
    #[error("{option} needs {needs}")]
    Needs { option: String, needs: &'static str },
    #[error("{0}")]
    CommandLine(String),
}

/// Where a value came from: the flag, or its environment variable.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Place {
    Flag(&'static str),
    Env(String),
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::Flag(id) => write!(f, "--{}", id.replace('_', "-")),
            Place::Env(var) => f.write_str(var),
        }
    }
}

/// One value of an option, with where it came from.
struct Val {
    raw: OsString,
    place: Place,
}

impl Val {
    fn invalid(&self, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            place: self.place.to_string(),
            message: message.into(),
        }
    }

    /// The value as text: non-empty, UTF-8.
    fn text(&self) -> Result<&str, ConfigError> {
        if self.raw.is_empty() {
            return Err(ConfigError::Empty {
                place: self.place.to_string(),
            });
        }
        self.raw
            .to_str()
            .ok_or_else(|| self.invalid(format!("{:?} is not valid UTF-8", self.raw)))
    }

    fn duration(&self) -> Result<Duration, ConfigError> {
        clock::parse_duration(self.text()?).map_err(|m| self.invalid(m))
    }

    fn positive_duration(&self) -> Result<Duration, ConfigError> {
        let d = self.duration()?;
        if d.is_zero() {
            return Err(self.invalid(format!("{:?} must be greater than zero", self.raw)));
        }
        Ok(d)
    }

    fn signal(&self) -> Result<Sig, ConfigError> {
        let sig: Sig = self
            .text()?
            .parse()
            .map_err(|e: signals::SigError| self.invalid(e.to_string()))?;
        if sig.handling() != signals::Handling::Forward {
            return Err(self.invalid(format!("{sig} cannot ask a process to stop")));
        }
        Ok(sig)
    }

    /// A readiness target; the `docker` preset is resolved against the container's variables.
    fn target(&self, docker: &DockerEnv) -> Result<Target, ConfigError> {
        Target::parse_with(self.text()?, docker).map_err(|e| self.invalid(e.to_string()))
    }

    /// A path naming a file (not empty, not ending in `/` or `..`).
    fn file_path(&self) -> Result<PathBuf, ConfigError> {
        if self.raw.is_empty() {
            return Err(ConfigError::Empty {
                place: self.place.to_string(),
            });
        }
        let p = PathBuf::from(&self.raw);
        if p.file_name().is_none() || self.raw.as_bytes().ends_with(b"/") {
            return Err(self.invalid(format!(
                "{:?} does not name a file",
                p.display().to_string()
            )));
        }
        Ok(p)
    }

    /// One of `choices`, each with the value it stands for.
    fn choice<T: Copy>(&self, choices: &[(&str, T)]) -> Result<T, ConfigError> {
        let t = self.text()?;
        choices
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(t.trim()))
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
                self.invalid(format!("invalid value {t:?} (use {})", names.join(", ")))
            })
    }
}

/// Reads options from the parsed command line, falling back to the environment, then to the
/// definition's default.
struct Source<'a> {
    args: &'a cli::Args,
    /// Each option's variable, looked up once: (option id, variable, value).
    env: Vec<(&'static str, String, OsString)>,
    /// What should be said once logging is up: settings ignored (warnings), presets expanded.
    notes: std::cell::RefCell<Vec<Note>>,
    /// The Docker variables the `docker` readiness preset reads.
    docker: DockerEnv,
}

impl Source<'_> {
    /// An option `id` that does nothing without `need`: refused when it was on the command line;
    /// when it came from the environment (an image's default), ignored with a warning. Returns
    /// whether to keep it.
    fn needs(
        &self,
        id: &'static str,
        missing: bool,
        need: &'static str,
    ) -> Result<bool, ConfigError> {
        if !missing {
            return Ok(true);
        }
        let flag = Place::Flag(id).to_string();
        if self.on_command_line(id) {
            return Err(ConfigError::Needs {
                option: flag,
                needs: need,
            });
        }
        self.notes.borrow_mut().push(Note::Warn(format!(
            "{} is set but {flag} does nothing without {need}; ignoring it",
            cli::env_var(id)
        )));
        Ok(false)
    }

    fn on_command_line(&self, id: &str) -> bool {
        !self.args.values(id).is_empty()
    }

    fn env_value(&self, id: &'static str) -> Option<Val> {
        self.env
            .iter()
            .find(|(o, _, _)| *o == id)
            .map(|(_, var, raw)| Val {
                raw: raw.clone(),
                place: Place::Env(var.clone()),
            })
    }

    /// The value of a single-valued option, if it has one (from the command line, the
    /// environment, or its default).
    fn one(&self, id: &'static str) -> Option<Val> {
        if let Some(raw) = self.args.values(id).pop() {
            return Some(Val {
                raw,
                place: Place::Flag(id),
            });
        }
        if let Some(v) = self.env_value(id) {
            return Some(v);
        }
        let default = self.args.spec(id).and_then(|o| o.default)?;
        Some(Val {
            raw: default.into(),
            place: Place::Flag(id),
        })
    }

    /// Whether the option was given at all (not just its default).
    fn given(&self, id: &'static str) -> bool {
        self.on_command_line(id) || self.env.iter().any(|(o, _, _)| *o == id)
    }

    /// The values of a repeatable option: each occurrence on the command line is one value;
    /// otherwise its variable's list.
    fn many(&self, id: &'static str) -> Result<Vec<Val>, ConfigError> {
        if self.on_command_line(id) {
            return Ok(self
                .args
                .values(id)
                .into_iter()
                .map(|raw| Val {
                    raw,
                    place: Place::Flag(id),
                })
                .collect());
        }
        let Some(v) = self.env_value(id) else {
            return Ok(Vec::new());
        };
        if v.raw.is_empty() {
            return Ok(Vec::new());
        }
        let items = split_list(&v.raw);
        if items.iter().any(|i| i.is_empty()) {
            return Err(v.invalid(format!(
                "{:?} has an empty item (write a comma inside an item as \\,)",
                v.raw
            )));
        }
        Ok(items
            .into_iter()
            .map(|raw| Val {
                raw,
                place: v.place.clone(),
            })
            .collect())
    }

    /// A flag: present on the command line, or its variable says true.
    fn flag(&self, id: &'static str) -> Result<bool, ConfigError> {
        if self.on_command_line(id) {
            return Ok(true);
        }
        let Some(v) = self.env_value(id) else {
            return Ok(false);
        };
        v.choice(&[
            ("true", true),
            ("false", false),
            ("1", true),
            ("0", false),
            ("yes", true),
            ("no", false),
            ("on", true),
            ("off", false),
        ])
    }
}

fn push(items: &mut [Vec<u8>], b: u8) {
    if let Some(i) = items.last_mut() {
        i.push(b);
    }
}

/// Splits an environment list on commas; `\,` is a comma and `\\` a backslash inside an item.
pub fn split_list(s: &OsStr) -> Vec<OsString> {
    let mut items = vec![Vec::new()];
    let mut bytes = s.as_bytes().iter().copied().peekable();
    while let Some(b) = bytes.next() {
        match (b, bytes.peek()) {
            (b'\\', Some(&next @ (b',' | b'\\'))) => {
                bytes.next();
                push(&mut items, next);
            }
            (b',', _) => items.push(Vec::new()),
            _ => push(&mut items, b),
        }
    }
    items.into_iter().map(OsString::from_vec).collect()
}

/// Log settings, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogSettings {
    pub level: LevelFilter,
    pub format: Format,
}

/// Which markers end a sidecar's wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnPolicy {
    Any,
    Success,
}

/// What a sidecar exits with after the mains are done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitPolicy {
    Zero,
    Main,
    Daemon,
}

/// What `main` does when `--wait-timeout` expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnWaitTimeout {
    Fail,
    Continue,
}

#[derive(Debug, Clone)]
pub struct MainConfig {
    pub done_file: Option<PathBuf>,
    pub heartbeat: Option<Duration>,
    pub wait_for: Vec<Target>,
    pub wait_timeout: Option<Duration>,
    pub on_wait_timeout: OnWaitTimeout,
    pub requires: Vec<PathBuf>,
    pub timeout: Option<Duration>,
    pub stop: StopSettings,
    pub quit_urls: Vec<HttpUrl>,
    pub termination_log: Option<PathBuf>,
    pub command: Vec<OsString>,
}

#[derive(Debug, Clone)]
pub struct SidecarConfig {
    pub wait_files: Vec<PathBuf>,
    pub on: OnPolicy,
    pub stale_after: Option<Duration>,
    pub poll: Duration,
    pub ready_when: Vec<Target>,
    pub ready_file: Option<PathBuf>,
    pub stop: StopSettings,
    pub quit_urls: Vec<HttpUrl>,
    pub exit_code: ExitPolicy,
    pub done_file: Option<PathBuf>,
    pub termination_log: Option<PathBuf>,
    pub command: Vec<OsString>,
}

/// Whether every path is absolute: then nothing needs the working directory once the command
/// runs (file targets are checked after it starts only by a sidecar).
fn all_absolute<'a>(paths: impl IntoIterator<Item = &'a Path>, targets: &'a [Target]) -> bool {
    paths
        .into_iter()
        .chain(targets.iter().flat_map(Target::paths))
        .all(Path::is_absolute)
}

impl MainConfig {
    pub fn paths_are_absolute(&self) -> bool {
        let paths = self
            .done_file
            .iter()
            .chain(&self.requires)
            .chain(&self.termination_log);
        all_absolute(paths.map(PathBuf::as_path), &self.wait_for)
    }
}

impl SidecarConfig {
    pub fn paths_are_absolute(&self) -> bool {
        let paths = self
            .done_file
            .iter()
            .chain(&self.wait_files)
            .chain(&self.ready_file)
            .chain(&self.termination_log);
        all_absolute(paths.map(PathBuf::as_path), &self.ready_when)
    }
}

#[derive(Debug, Clone)]
pub struct ProbeConfig {
    pub targets: Vec<Target>,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct InstallConfig {
    pub dir: PathBuf,
    pub allow_dynamic: bool,
}

/// A whole `supervisor` command line, validated.
#[derive(Debug, Clone)]
pub enum Parsed {
    Main(MainConfig),
    Sidecar(SidecarConfig),
    Probe(ProbeConfig),
    Install(InstallConfig),
}

/// A line for the log, decided while reading the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// A preset expanded: `--quit istio is POST http://…`.
    Info(String),
    /// A setting from the environment that does nothing and was ignored.
    Warn(String),
}

/// What the process should do.
#[derive(Debug)]
pub enum Invocation {
    Run {
        log: LogSettings,
        mode: Box<Parsed>,
        /// What to log once logging is up.
        notes: Vec<Note>,
    },
    /// `--help`, `--version`, `help`: print this to stdout and exit 0.
    Print(String),
}

/// Parses this process's command line and environment.
pub fn from_process() -> Result<Invocation, ConfigError> {
    // One pass over the environment, copying only our variables (and RUST_LOG), rather than a
    // getenv per option or a copy of every variable.
    let ours: Vec<(OsString, OsString)> = our_environment();
    parse(std::env::args_os(), &|var| {
        ours.iter()
            .find(|(k, _)| k.as_bytes() == var.as_bytes())
            .map(|(_, v)| v.clone())
    })
}

unsafe extern "C" {
    /// The C library's environment array (POSIX).
    static environ: *const *const std::ffi::c_char;
}

/// The `SUPERVISOR_*` and `RUST_LOG` variables of this process, and the Docker variables the
/// `docker` readiness preset reads.
fn our_environment() -> Vec<(OsString, OsString)> {
    let mut out = Vec::new();
    // SAFETY: this runs at start-up, before any thread exists, so nothing changes the environment
    // while it is read; `environ` is a NULL-terminated array of NUL-terminated strings.
    unsafe {
        let mut entry = environ;
        while !entry.is_null() && !(*entry).is_null() {
            let bytes = std::ffi::CStr::from_ptr(*entry).to_bytes();
            let docker = crate::readiness::docker::VARS
                .iter()
                .any(|v| bytes.starts_with(v.as_bytes()) && bytes.get(v.len()) == Some(&b'='));
            if docker || bytes.starts_with(b"SUPERVISOR_") || bytes.starts_with(b"RUST_LOG=") {
                if let Some(eq) = bytes.iter().position(|&b| b == b'=') {
                    out.push((
                        OsStr::from_bytes(&bytes[..eq]).to_os_string(),
                        OsStr::from_bytes(&bytes[eq + 1..]).to_os_string(),
                    ));
                }
            }
            entry = entry.add(1);
        }
    }
    out
}

/// Parses and validates a whole `supervisor` command line (`argv[0]` included) exactly as the
/// binary would, but reading no `SUPERVISOR_*` variable from this process's environment: for
/// tools that check the command lines written in manifests (`kubectl-supervise check`).
pub fn from_argv<I, T>(argv: I) -> Result<Parsed, ConfigError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    from_argv_env(argv, &|_| None)
}

/// [`from_argv`] with the container's environment (as a manifest sets it).
pub fn from_argv_env<I, T>(
    argv: I,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<Parsed, ConfigError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    match parse(argv, env)? {
        Invocation::Run { mode, .. } => Ok(*mode),
        Invocation::Print(_) => Err(ConfigError::CommandLine(
            "asks for help, runs nothing".into(),
        )),
    }
}

/// Parses a command line against an environment.
pub fn parse<I, T>(
    argv: I,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<Invocation, ConfigError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args = match cli::parse(argv).map_err(ConfigError::CommandLine)? {
        cli::Request::Print(text) => return Ok(Invocation::Print(text)),
        cli::Request::Run(args) => args,
    };
    let env_values = args
        .mode
        .options
        .iter()
        .chain(cli::GLOBAL)
        .filter_map(|o| {
            let var = cli::env_var(o.id);
            env(&var).map(|v| (o.id, var, v))
        })
        .collect();
    let s = Source {
        args: &args,
        env: env_values,
        notes: Default::default(),
        docker: DockerEnv::from_env(env),
    };
    let mode = match args.mode.name {
        "main" => Parsed::Main(main_config(&s)?),
        "sidecar" => Parsed::Sidecar(sidecar_config(&s)?),
        "probe" => Parsed::Probe(probe_config(&s)?),
        _ => Parsed::Install(install_config(&s)?),
    };
    Ok(Invocation::Run {
        log: log_settings(&s, env)?,
        mode: Box::new(mode),
        notes: s.notes.into_inner(),
    })
}

fn log_settings(
    s: &Source,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<LogSettings, ConfigError> {
    let level = match s.one("log_level") {
        Some(v) => crate::logging::parse_level(v.text()?).ok_or_else(|| {
            v.invalid(format!(
                "invalid level {:?} (use error, warn, info, debug or trace)",
                v.raw
            ))
        })?,
        // RUST_LOG is a convention, not ours to validate: a value we cannot read is ignored.
        None => env("RUST_LOG")
            .and_then(|v| crate::logging::parse_level(&v.to_string_lossy()))
            .unwrap_or(LevelFilter::INFO),
    };
    let format = match s.one("log_format") {
        Some(v) => v.choice(&[("text", Format::Text), ("json", Format::Json)])?,
        None => Format::Text,
    };
    Ok(LogSettings { level, format })
}

fn targets(s: &Source, id: &'static str) -> Result<Vec<Target>, ConfigError> {
    let mut out = Vec::new();
    for v in s.many(id)? {
        let t = v.target(&s.docker)?;
        if let Some(expansion) = t.expansion(v.text()?) {
            s.notes.borrow_mut().push(Note::Info(format!(
                "{} {} is {expansion}",
                v.place,
                v.text()?
            )));
        }
        out.push(t);
    }
    Ok(out)
}

fn paths(s: &Source, id: &'static str) -> Result<Vec<PathBuf>, ConfigError> {
    s.many(id)?.iter().map(Val::file_path).collect()
}

fn opt_duration(
    s: &Source,
    id: &'static str,
    positive: bool,
) -> Result<Option<Duration>, ConfigError> {
    s.one(id)
        .map(|v| {
            if positive {
                v.positive_duration()
            } else {
                v.duration()
            }
        })
        .transpose()
}

fn duration(s: &Source, id: &'static str) -> Result<Duration, ConfigError> {
    Ok(opt_duration(s, id, false)?.unwrap_or_default())
}

fn signal(s: &Source, id: &'static str) -> Result<Sig, ConfigError> {
    s.one(id).map_or(Ok(Sig::TERM), |v| v.signal())
}

fn stop_settings(s: &Source) -> Result<StopSettings, ConfigError> {
    Ok(StopSettings {
        grace: duration(s, "grace")?,
        stop_signal: signal(s, "stop_signal")?,
        stop_delay: duration(s, "stop_delay")?,
        term_signals: term_signals(s)?,
    })
}

fn term_signals(s: &Source) -> Result<SigSet, ConfigError> {
    match s.one("term_signals") {
        Some(v) => signals::parse_list(v.text()?).map_err(|e| v.invalid(e.to_string())),
        None => Ok(SigSet::empty().with(Sig::TERM).with(Sig::INT)),
    }
}

/// `--quit-url` and `--quit` presets, loopback only unless `--allow-remote-quit`.
fn quit_urls(s: &Source) -> Result<Vec<HttpUrl>, ConfigError> {
    let allow_remote = s.flag("allow_remote_quit")?;
    let mut urls = Vec::new();
    for v in s.many("quit_url")? {
        let url = http::parse_url(v.text()?).map_err(|e| v.invalid(e.to_string()))?;
        if !allow_remote && !http::is_loopback(&url.host) {
            return Err(v.invalid(format!(
                "{:?} is not a loopback address (use --allow-remote-quit to allow it)",
                v.raw
            )));
        }
        urls.push(url);
    }
    for v in s.many("quit")? {
        let url = crate::presets::quit_url(v.text()?).map_err(|m| v.invalid(m))?;
        s.notes.borrow_mut().push(Note::Info(format!(
            "{} {} is POST {url}",
            v.place,
            v.text()?
        )));
        urls.push(http::parse_url(&url).map_err(|e| v.invalid(e.to_string()))?);
    }
    s.needs(
        "allow_remote_quit",
        allow_remote && urls.is_empty(),
        "--quit-url",
    )?;
    Ok(urls)
}

/// `--termination-log`: the given path (empty: off), else the kubelet's file when this container
/// has a writable one.
fn termination_log(s: &Source) -> Result<Option<PathBuf>, ConfigError> {
    match s.one("termination_log") {
        Some(v) if v.raw.is_empty() => Ok(None),
        Some(v) => v.file_path().map(Some),
        None => {
            let default = Path::new("/dev/termination-log");
            Ok(nix::unistd::access(default, nix::unistd::AccessFlags::W_OK)
                .is_ok()
                .then(|| default.to_path_buf()))
        }
    }
}

fn command(s: &Source) -> Vec<OsString> {
    s.args.positional.clone()
}

fn main_config(s: &Source) -> Result<MainConfig, ConfigError> {
    let done_file = s.one("done_file").map(|v| v.file_path()).transpose()?;
    let mut heartbeat = opt_duration(s, "heartbeat", true)?;
    if !s.needs(
        "heartbeat",
        heartbeat.is_some() && done_file.is_none(),
        "--done-file (the lease lives beside it)",
    )? {
        heartbeat = None;
    }
    let wait_for = targets(s, "wait_for")?;
    let mut wait_timeout = opt_duration(s, "wait_timeout", false)?;
    if !s.needs(
        "wait_timeout",
        wait_timeout.is_some() && wait_for.is_empty(),
        "--wait-for",
    )? {
        wait_timeout = None;
    }
    s.needs(
        "on_wait_timeout",
        s.given("on_wait_timeout") && wait_timeout.is_none(),
        "--wait-timeout",
    )?;
    let requires = paths(s, "requires")?;
    if let Some(d) = &done_file {
        if let Some(r) = s.many("requires")?.iter().find(|v| Path::new(&v.raw) == d) {
            return Err(r.invalid(format!(
                "{:?} is this main's own --done-file",
                d.display().to_string()
            )));
        }
    }
    Ok(MainConfig {
        on_wait_timeout: match s.one("on_wait_timeout") {
            Some(v) => v.choice(&[
                ("fail", OnWaitTimeout::Fail),
                ("continue", OnWaitTimeout::Continue),
            ])?,
            None => OnWaitTimeout::Fail,
        },
        timeout: opt_duration(s, "timeout", true)?,
        stop: stop_settings(s)?,
        quit_urls: quit_urls(s)?,
        termination_log: termination_log(s)?,
        command: command(s),
        done_file,
        heartbeat,
        wait_for,
        wait_timeout,
        requires,
    })
}

fn sidecar_config(s: &Source) -> Result<SidecarConfig, ConfigError> {
    let wait_files = paths(s, "wait_file")?;
    let native = wait_files.is_empty();
    let mut stale_after = opt_duration(s, "stale_after", true)?;
    if !s.needs(
        "stale_after",
        native && stale_after.is_some(),
        "--wait-file",
    )? {
        stale_after = None;
    }
    s.needs("on", native && s.given("on"), "--wait-file")?;
    s.needs("exit_code", native && s.given("exit_code"), "--wait-file")?;
    let ready_when = targets(s, "ready_when")?;
    let mut ready_file = s.one("ready_file").map(|v| v.file_path()).transpose()?;
    if !s.needs(
        "ready_file",
        ready_file.is_some() && ready_when.is_empty(),
        "--ready-when",
    )? {
        ready_file = None;
    }
    let done_file = s.one("done_file").map(|v| v.file_path()).transpose()?;
    if let Some(d) = &done_file {
        if let Some(w) = s.many("wait_file")?.iter().find(|v| Path::new(&v.raw) == d) {
            return Err(w.invalid(format!(
                "{:?} is this sidecar's own --done-file",
                d.display().to_string()
            )));
        }
    }
    Ok(SidecarConfig {
        on: match s.one("on") {
            Some(v) => v.choice(&[("any", OnPolicy::Any), ("success", OnPolicy::Success)])?,
            None => OnPolicy::Any,
        },
        poll: opt_duration(s, "poll", true)?.unwrap_or(Duration::from_secs(1)),
        stop: stop_settings(s)?,
        quit_urls: quit_urls(s)?,
        exit_code: match s.one("exit_code") {
            Some(v) => v.choice(&[
                ("zero", ExitPolicy::Zero),
                ("main", ExitPolicy::Main),
                ("daemon", ExitPolicy::Daemon),
            ])?,
            None => ExitPolicy::Zero,
        },
        termination_log: termination_log(s)?,
        command: command(s),
        wait_files,
        stale_after,
        ready_when,
        ready_file,
        done_file,
    })
}

fn probe_config(s: &Source) -> Result<ProbeConfig, ConfigError> {
    let targets = s
        .args
        .positional
        .clone()
        .into_iter()
        .map(|raw| Val {
            raw,
            place: Place::Flag("TARGET"),
        })
        .map(|v| v.target(&s.docker))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ProbeConfig {
        targets,
        timeout: opt_duration(s, "timeout", true)?.unwrap_or(Duration::from_secs(1)),
    })
}

fn install_config(s: &Source) -> Result<InstallConfig, ConfigError> {
    let dir = s.args.positional.first().cloned().unwrap_or_default();
    if s.args.positional.len() > 1 {
        return Err(ConfigError::CommandLine(format!(
            "install takes one DIR, not {}",
            s.args.positional.len()
        )));
    }
    if dir.is_empty() {
        return Err(ConfigError::Empty {
            place: "DIR".into(),
        });
    }
    Ok(InstallConfig {
        dir: PathBuf::from(dir),
        allow_dynamic: s.flag("allow_dynamic")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn run(args: &[&str], env: &[(&str, &str)]) -> Result<Parsed, ConfigError> {
        let env: HashMap<String, OsString> = env
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        let mut argv = vec!["supervisor"];
        argv.extend(args);
        from_argv_env(argv, &|k| env.get(k).cloned())
    }

    fn err(args: &[&str], env: &[(&str, &str)]) -> String {
        match run(args, env) {
            Err(e) => e.to_string(),
            Ok(p) => panic!("{args:?} {env:?} parsed: {p:?}"),
        }
    }

    fn sidecar(args: &[&str], env: &[(&str, &str)]) -> SidecarConfig {
        let args: Vec<&str> = ["sidecar"].iter().chain(args).copied().collect();
        match run(&args, env) {
            Ok(Parsed::Sidecar(s)) => s,
            other => panic!("{other:?}"),
        }
    }

    fn main(args: &[&str], env: &[(&str, &str)]) -> MainConfig {
        let args: Vec<&str> = ["main"].iter().chain(args).copied().collect();
        match run(&args, env) {
            Ok(Parsed::Main(m)) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn env_lists_split_on_unescaped_commas() {
        let cases: [(&str, &[&str]); 6] = [
            ("a,b", &["a", "b"]),
            ("/x/a\\,b,/y", &["/x/a,b", "/y"]),
            ("c:\\\\d,e", &["c:\\d", "e"]),
            ("keep\\this", &["keep\\this"]),
            ("trailing\\", &["trailing\\"]),
            ("", &[""]),
        ];
        for (input, want) in cases {
            let got: Vec<OsString> = split_list(OsStr::new(input));
            assert_eq!(
                got,
                want.iter().map(OsString::from).collect::<Vec<_>>(),
                "{input}"
            );
        }
    }

    #[test]
    fn options_read_their_environment_variable_and_the_command_line_wins() {
        let s = sidecar(
            &["--", "d"],
            &[
                ("SUPERVISOR_WAIT_FILE", "/s/a\\,b,/s/c"),
                ("SUPERVISOR_GRACE", "3s"),
            ],
        );
        assert_eq!(
            s.wait_files,
            [PathBuf::from("/s/a,b"), PathBuf::from("/s/c")]
        );
        assert_eq!(s.stop.grace, Duration::from_secs(3));
        let s = sidecar(
            &["--grace=4s", "--wait-file=/x", "--", "d"],
            &[("SUPERVISOR_GRACE", "3s"), ("SUPERVISOR_WAIT_FILE", "/y")],
        );
        assert_eq!(
            (s.stop.grace, s.wait_files),
            (Duration::from_secs(4), vec![PathBuf::from("/x")])
        );
        let m = main(
            &["--", "true"],
            &[
                ("SUPERVISOR_ALLOW_REMOTE_QUIT", "yes"),
                ("SUPERVISOR_QUIT_URL", "http://10.0.0.1/q"),
            ],
        );
        assert_eq!(m.quit_urls.len(), 1);
    }

    #[test]
    fn bad_values_name_the_variable_they_came_from() {
        assert_eq!(
            err(&["main", "--", "true"], &[("SUPERVISOR_DONE_FILE", "")]),
            "SUPERVISOR_DONE_FILE is empty"
        );
        assert_eq!(
            err(&["main", "--done-file=", "--", "true"], &[]),
            "--done-file is empty"
        );
        assert!(
            err(&["main", "--", "true"], &[("SUPERVISOR_GRACE", "abc")])
                .starts_with("SUPERVISOR_GRACE: invalid duration \"abc\"")
        );
        assert_eq!(
            err(
                &["sidecar", "--wait-file=/d", "--", "d"],
                &[("SUPERVISOR_ON", "sometimes")]
            ),
            "SUPERVISOR_ON: invalid value \"sometimes\" (use any, success)"
        );
        assert_eq!(
            err(
                &["main", "--", "true"],
                &[("SUPERVISOR_ALLOW_REMOTE_QUIT", "maybe")]
            ),
            "SUPERVISOR_ALLOW_REMOTE_QUIT: invalid value \"maybe\" (use true, false, 1, 0, yes, no, on, off)"
        );
        assert!(
            err(
                &["sidecar", "--", "d"],
                &[("SUPERVISOR_WAIT_FILE", "/a,,/b")]
            )
            .starts_with("SUPERVISOR_WAIT_FILE: \"/a,,/b\" has an empty item")
        );
        assert!(
            err(&["main", "--term-signals=TERM,KILL", "--", "x"], &[])
                .starts_with("--term-signals: invalid signal \"KILL\"")
        );
    }

    #[test]
    fn options_that_would_do_nothing_are_refused() {
        let cases: [(&[&str], &str); 8] = [
            (
                &["main", "--wait-timeout=1s", "--", "x"],
                "--wait-timeout needs --wait-for",
            ),
            (
                &["main", "--heartbeat=1s", "--", "x"],
                "--heartbeat needs --done-file (the lease lives beside it)",
            ),
            (
                &[
                    "main",
                    "--wait-for=file:/r",
                    "--on-wait-timeout=continue",
                    "--",
                    "x",
                ],
                "--on-wait-timeout needs --wait-timeout",
            ),
            (
                &["main", "--allow-remote-quit", "--", "x"],
                "--allow-remote-quit needs --quit-url",
            ),
            (
                &["sidecar", "--stale-after=1s", "--", "x"],
                "--stale-after needs --wait-file",
            ),
            (
                &["sidecar", "--ready-file=/r", "--", "x"],
                "--ready-file needs --ready-when",
            ),
            (
                &["sidecar", "--on=success", "--", "x"],
                "--on needs --wait-file",
            ),
            (
                &["sidecar", "--exit-code=main", "--", "x"],
                "--exit-code needs --wait-file",
            ),
        ];
        for (args, want) in cases {
            assert_eq!(err(args, &[]), want, "{args:?}");
        }
    }

    #[test]
    fn the_command_line_errors_fit_on_one_line() {
        assert_eq!(
            err(&["sidecar", "--wait-fil=/d", "--", "x"], &[]),
            "unknown option --wait-fil (did you mean --wait-file?)"
        );
        assert_eq!(
            err(&["main"], &[]),
            "missing CMD (the command goes after --)"
        );
        for args in [&["mian", "--", "x"][..], &["main", "--grace"], &["probe"]] {
            let e = err(args, &[]);
            assert!(!e.contains('\n') && !e.contains("tip:"), "{args:?}: {e}");
        }
    }

    #[test]
    fn presets_and_defaults() {
        let m = main(
            &["--quit=istio", "--wait-for=cloud-sql-proxy", "--", "x"],
            &[],
        );
        assert_eq!(
            m.quit_urls[0].to_string(),
            "http://127.0.0.1:15020/quitquitquit"
        );
        assert_eq!(m.wait_for[0].to_string(), "http://127.0.0.1:9090/startup");
        assert_eq!(
            (m.stop.grace, m.stop.stop_signal),
            (Duration::from_secs(25), Sig::TERM)
        );
        assert_eq!(m.stop.term_signals.to_string(), "INT,TERM");
        let s = sidecar(
            &[
                "--term-signals=QUIT,RTMIN+3",
                "--stop-signal=QUIT",
                "--",
                "x",
            ],
            &[],
        );
        assert_eq!(s.stop.term_signals.to_string(), "QUIT,RTMIN+3");
        assert_eq!(s.stop.grace, Duration::from_secs(10));
    }
}
