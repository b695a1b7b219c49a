//! From the command line and the environment to a validated, plain configuration.
//!
//! Everything a user can get wrong is checked here, before any process starts, and reported as
//! one line naming the option, or the environment variable when the value came from there, and
//! the offending value, cut to a readable length (exit 2). Each option `--some-option` also reads
//! `SUPERVISOR_SOME_OPTION` when it is not on the command line; a repeatable option's variable
//! holds a comma-separated list in which `\,` is a literal comma and `\\` a literal backslash
//! (any other backslash is kept as is, so ordinary paths need no escaping). One rule for empty
//! values: an empty value is an error, on the command line and in the environment alike, except
//! `--termination-log`, where empty turns the message off. Options that would do nothing without
//! another one are refused, naming the one they need. Options are read by [`Id`], and each one's
//! default lives only in the table of `cli`.

use crate::cli::{self, Id, ModeId};
use crate::clock;
use crate::http::{self, HttpUrl};
use crate::logging::{Format, LevelFilter};
use crate::readiness::{DockerEnv, Target};
use crate::signals::{self, Sig};
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

/// Where a value came from: the flag, its environment variable, or a positional argument.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Place {
    Flag(Id),
    Env(String),
    Arg(&'static str),
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::Flag(id) => f.write_str(&id.flag()),
            Place::Env(var) => f.write_str(var),
            Place::Arg(name) => f.write_str(name),
        }
    }
}

/// The most of a value an error line shows: a 100 kB value must not make a 100 kB line.
const SHOWN: usize = 200;

/// `raw` as an error line shows it: quoted, escaped, cut to 200 characters.
pub fn shown(raw: &OsStr) -> String {
    let text = raw.to_string_lossy();
    match text.char_indices().nth(SHOWN) {
        Some((i, _)) => format!(
            "{:?}…({} more bytes)",
            &text[..i],
            raw.as_bytes().len().saturating_sub(i)
        ),
        None => format!("{text:?}"),
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

    fn shown(&self) -> String {
        shown(&self.raw)
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
            .ok_or_else(|| self.invalid(format!("{} is not valid UTF-8", self.shown())))
    }

    /// A message about the value, with the value cut to a readable length.
    fn wrong(&self, why: impl std::fmt::Display) -> ConfigError {
        self.invalid(bounded(&why.to_string()))
    }

    fn duration(&self) -> Result<Duration, ConfigError> {
        clock::parse_duration(self.text()?).map_err(|m| self.wrong(m))
    }

    fn positive_duration(&self) -> Result<Duration, ConfigError> {
        let d = self.duration()?;
        if d.is_zero() {
            return Err(self.invalid(format!("{} must be greater than zero", self.shown())));
        }
        Ok(d)
    }

    fn signal(&self) -> Result<Sig, ConfigError> {
        self.text()?
            .parse()
            .map_err(|e: signals::SigError| self.wrong(e))
    }

    /// A signal the supervisor can ask a process to stop with: one it can send and receive, and
    /// not one whose default action continues or suspends a process (the child would then run on
    /// until the SIGKILL).
    fn stop_signal(&self) -> Result<Sig, ConfigError> {
        let sig = self.signal()?;
        if sig.handling() != signals::Handling::Forward {
            return Err(self.invalid(format!("{sig} cannot ask a process to stop")));
        }
        if sig.suspends_or_continues() {
            return Err(self.invalid(format!(
                "{sig} stops nothing: its default action continues or suspends a process, which \
                 then runs until the SIGKILL (use TERM, INT, QUIT or the image's STOPSIGNAL)"
            )));
        }
        Ok(sig)
    }

    /// A readiness target; the `docker` preset is resolved against the container's variables.
    fn target(&self, docker: &DockerEnv) -> Result<Target, ConfigError> {
        Target::parse_with(self.text()?, docker).map_err(|e| self.wrong(e))
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
            return Err(self.invalid(format!("{} does not name a file", self.shown())));
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
                self.invalid(format!(
                    "invalid value {} (use {})",
                    self.shown(),
                    names.join(", ")
                ))
            })
    }
}

/// A message cut to a readable length (it may quote a value).
fn bounded(text: &str) -> String {
    const MAX: usize = 2 * SHOWN + 200;
    match text.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// Reads options from the parsed command line, falling back to the environment, then to the
/// table's default.
struct Source<'a> {
    args: &'a cli::Args,
    /// Each option's variable, looked up once: (option, variable, value).
    env: Vec<(Id, String, OsString)>,
    /// What should be said once logging is up: settings ignored (warnings), presets expanded.
    notes: std::cell::RefCell<Vec<Note>>,
    /// The Docker variables the `docker` readiness preset reads.
    docker: DockerEnv,
}

impl Source<'_> {
    /// An option `id` that does nothing without `need`: refused when it was on the command line;
    /// when it came from the environment (an image's default), ignored with a warning. Returns
    /// whether to keep it.
    fn needs(&self, id: Id, missing: bool, need: &'static str) -> Result<bool, ConfigError> {
        if !missing {
            return Ok(true);
        }
        if self.on_command_line(id) {
            return Err(ConfigError::Needs {
                option: id.flag(),
                needs: need,
            });
        }
        self.notes.borrow_mut().push(Note::Warn(format!(
            "{} is set but {} does nothing without {need}; ignoring it",
            id.var(),
            id.flag()
        )));
        Ok(false)
    }

    fn on_command_line(&self, id: Id) -> bool {
        !self.args.values(id).is_empty()
    }

    fn env_value(&self, id: Id) -> Option<Val> {
        self.env
            .iter()
            .find(|(o, _, _)| *o == id)
            .map(|(_, var, raw)| Val {
                raw: raw.clone(),
                place: Place::Env(var.clone()),
            })
    }

    /// The value of a single-valued option, if it was given (on the command line or in the
    /// environment).
    fn given_value(&self, id: Id) -> Option<Val> {
        if let Some(raw) = self.args.values(id).pop() {
            return Some(Val {
                raw,
                place: Place::Flag(id),
            });
        }
        self.env_value(id)
    }

    /// The value of a single-valued option: given, or its default.
    fn one(&self, id: Id) -> Option<Val> {
        self.given_value(id).or_else(|| {
            let default = self.args.spec(id).and_then(|o| o.default)?;
            Some(Val {
                raw: default.into(),
                place: Place::Flag(id),
            })
        })
    }

    /// The value of an option that has a default in the table (a test checks every such read).
    fn defaulted(&self, id: Id) -> Result<Val, ConfigError> {
        self.one(id).ok_or_else(|| {
            ConfigError::CommandLine(format!("{} has no default (a bug)", id.flag()))
        })
    }

    /// Whether the option was given at all (not just its default).
    fn given(&self, id: Id) -> bool {
        self.on_command_line(id) || self.env.iter().any(|(o, _, _)| *o == id)
    }

    /// The values of a repeatable option: each occurrence on the command line is one value;
    /// otherwise its variable's list.
    fn many(&self, id: Id) -> Result<Vec<Val>, ConfigError> {
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
            return Err(ConfigError::Empty {
                place: v.place.to_string(),
            });
        }
        let items = split_list(&v.raw);
        if items.iter().any(|i| i.is_empty()) {
            return Err(v.invalid(format!(
                "{} has an empty item (write a comma inside an item as \\,)",
                v.shown()
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
    fn flag(&self, id: Id) -> Result<bool, ConfigError> {
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

    fn duration(&self, id: Id) -> Result<Duration, ConfigError> {
        self.defaulted(id)?.duration()
    }

    fn positive(&self, id: Id) -> Result<Option<Duration>, ConfigError> {
        self.one(id).map(|v| v.positive_duration()).transpose()
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
/// runs.
fn all_absolute<'a>(paths: impl IntoIterator<Item = &'a Path>, targets: &'a [Target]) -> bool {
    paths
        .into_iter()
        .chain(targets.iter().flat_map(Target::paths))
        .all(Path::is_absolute)
}

impl MainConfig {
    pub fn paths_are_absolute(&self) -> bool {
        // The marker's directory is held open from the start: it needs no working directory.
        let paths = self.requires.iter().chain(&self.termination_log);
        all_absolute(paths.map(PathBuf::as_path), &self.wait_for)
    }
}

impl SidecarConfig {
    pub fn paths_are_absolute(&self) -> bool {
        // The marker's and the ready file's directories are held open from the start.
        let paths = self.wait_files.iter().chain(&self.termination_log);
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

/// A command line that could not be read: what was wrong, and where the termination message
/// should say so (the `--termination-log` of the command line or the environment, if it could be
/// made out, else the kubelet's file when it is there).
#[derive(Debug)]
pub struct Refused {
    pub error: ConfigError,
    pub termination_log: Option<PathBuf>,
}

/// Parses this process's command line and environment.
pub fn from_process() -> Result<Invocation, Refused> {
    let ours = our_environment();
    let env = |var: &str| {
        ours.iter()
            .find(|(k, _)| k.as_bytes() == var.as_bytes())
            .map(|(_, v)| v.clone())
    };
    let argv: Vec<OsString> = std::env::args_os().collect();
    match parse(argv.iter().cloned(), &env) {
        Ok(Invocation::Run {
            log,
            mode,
            mut notes,
        }) => {
            notes.extend(unknown_variables(&ours));
            Ok(Invocation::Run { log, mode, notes })
        }
        Ok(print) => Ok(print),
        Err(error) => Err(Refused {
            termination_log: termination_log_hint(&argv, &env),
            error,
        }),
    }
}

/// The `SUPERVISOR_*` and `RUST_LOG` variables of this process, and the ones of the images the
/// presets read (`DOCKER_*`). One pass, copying only those.
fn our_environment() -> Vec<(OsString, OsString)> {
    std::env::vars_os()
        .filter(|(k, _)| {
            let k = k.as_bytes();
            k.starts_with(b"SUPERVISOR_") || k == b"RUST_LOG" || k.starts_with(b"DOCKER_")
        })
        .collect()
}

/// A warning for each `SUPERVISOR_*` variable that no option of any mode reads (a typo would
/// otherwise be ignored without a word), with the closest real name.
fn unknown_variables(env: &[(OsString, OsString)]) -> Vec<Note> {
    let known: Vec<String> = cli::MODES
        .iter()
        .flat_map(|m| m.options.iter())
        .chain(cli::GLOBAL)
        .map(|o| o.id.var())
        .collect();
    env.iter()
        .map(|(k, _)| k.to_string_lossy())
        .filter(|k| k.starts_with("SUPERVISOR_") && !known.iter().any(|v| v == k))
        .map(|k| {
            let hint = cli::suggest(&k, known.iter().cloned())
                .map(|s| format!(" (did you mean {s}?)"))
                .unwrap_or_default();
            Note::Warn(format!(
                "{} is not a supervisor setting; ignoring it{hint}",
                bounded(&k)
            ))
        })
        .collect()
}

/// Where a usage error's termination message goes, read from the raw command line and
/// environment (the line may not parse): `--termination-log` before `--`, then its variable,
/// then the kubelet's file when this container has a writable one. Empty turns it off.
fn termination_log_hint(
    argv: &[OsString],
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Option<PathBuf> {
    let flag = Id::TerminationLog.flag();
    let mut given = None;
    let mut words = argv.iter().skip(1);
    while let Some(w) = words.next() {
        let b = w.as_bytes();
        if b == b"--" {
            break;
        }
        if b == flag.as_bytes() {
            given = words.next().cloned();
        } else if let Some(v) = b.strip_prefix(format!("{flag}=").as_bytes()) {
            given = Some(OsStr::from_bytes(v).to_os_string());
        }
    }
    match given.or_else(|| env(&Id::TerminationLog.var())) {
        Some(v) if v.is_empty() => None,
        Some(v) => Some(PathBuf::from(v)),
        None => kubelet_termination_log(),
    }
}

/// `/dev/termination-log`, when this container has a writable one (the kubelet mounts it).
fn kubelet_termination_log() -> Option<PathBuf> {
    let default = Path::new("/dev/termination-log");
    nix::unistd::access(default, nix::unistd::AccessFlags::W_OK)
        .is_ok()
        .then(|| default.to_path_buf())
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
    let args = match cli::parse(argv).map_err(|e| ConfigError::CommandLine(bounded(&e)))? {
        cli::Request::Print(text) => return Ok(Invocation::Print(text)),
        cli::Request::Run(args) => args,
    };
    let env_values = args
        .mode
        .options
        .iter()
        .chain(cli::GLOBAL)
        .filter_map(|o| {
            let var = o.id.var();
            env(&var).map(|v| (o.id, var, v))
        })
        .collect();
    let s = Source {
        args: &args,
        env: env_values,
        notes: Default::default(),
        docker: DockerEnv::from_env(env),
    };
    let mode = match args.mode.id {
        ModeId::Main => Parsed::Main(main_config(&s)?),
        ModeId::Sidecar => Parsed::Sidecar(sidecar_config(&s)?),
        ModeId::Probe => Parsed::Probe(probe_config(&s)?),
        ModeId::Install => Parsed::Install(install_config(&s)?),
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
    let level = match s.one(Id::LogLevel) {
        Some(v) => crate::logging::parse_level(v.text()?).ok_or_else(|| {
            v.invalid(format!(
                "invalid level {} (use error, warn, info, debug or trace)",
                v.shown()
            ))
        })?,
        // RUST_LOG is a convention, not ours to validate: a value we cannot read is ignored.
        None => env("RUST_LOG")
            .and_then(|v| crate::logging::parse_level(&v.to_string_lossy()))
            .unwrap_or(LevelFilter::INFO),
    };
    let format = s
        .defaulted(Id::LogFormat)?
        .choice(&[("text", Format::Text), ("json", Format::Json)])?;
    Ok(LogSettings { level, format })
}

fn targets(s: &Source, id: Id) -> Result<Vec<Target>, ConfigError> {
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

fn paths(s: &Source, id: Id) -> Result<Vec<PathBuf>, ConfigError> {
    s.many(id)?.iter().map(Val::file_path).collect()
}

fn stop_settings(s: &Source) -> Result<StopSettings, ConfigError> {
    let term = s.defaulted(Id::TermSignals)?;
    Ok(StopSettings {
        grace: s.duration(Id::Grace)?,
        stop_signal: s.defaulted(Id::StopSignal)?.stop_signal()?,
        stop_delay: s.duration(Id::StopDelay)?,
        term_signals: signals::parse_list(term.text()?).map_err(|e| term.wrong(e))?,
    })
}

/// `--quit-url` and `--quit` presets, loopback only unless `--allow-remote-quit`.
fn quit_urls(s: &Source) -> Result<Vec<HttpUrl>, ConfigError> {
    let allow_remote = s.flag(Id::AllowRemoteQuit)?;
    let mut urls = Vec::new();
    for v in s.many(Id::QuitUrl)? {
        let url = http::parse_url(v.text()?).map_err(|e| v.wrong(e))?;
        if !allow_remote && !http::is_loopback(&url.host) {
            return Err(v.invalid(format!(
                "{} is not a loopback address (use --allow-remote-quit to allow it)",
                v.shown()
            )));
        }
        urls.push(url);
    }
    for v in s.many(Id::Quit)? {
        let url = crate::presets::quit_url(v.text()?).map_err(|m| v.wrong(m))?;
        s.notes.borrow_mut().push(Note::Info(format!(
            "{} {} is POST {url}",
            v.place,
            v.text()?
        )));
        urls.push(http::parse_url(&url).map_err(|e| v.wrong(e))?);
    }
    s.needs(
        Id::AllowRemoteQuit,
        allow_remote && urls.is_empty(),
        "--quit-url",
    )?;
    Ok(urls)
}

/// `--termination-log`: the given path (empty: off), else the kubelet's file when this container
/// has a writable one.
fn termination_log(s: &Source) -> Result<Option<PathBuf>, ConfigError> {
    match s.given_value(Id::TerminationLog) {
        Some(v) if v.raw.is_empty() => Ok(None),
        Some(v) => v.file_path().map(Some),
        None => Ok(kubelet_termination_log()),
    }
}

/// A marker path of this supervisor's own that a watched path must not be.
fn not_own(s: &Source, id: Id, own: &Option<PathBuf>, whose: &str) -> Result<(), ConfigError> {
    if let Some(d) = own {
        if let Some(v) = s.many(id)?.iter().find(|v| Path::new(&v.raw) == d) {
            return Err(v.invalid(format!("{} is this {whose}'s own --done-file", v.shown())));
        }
    }
    Ok(())
}

fn main_config(s: &Source) -> Result<MainConfig, ConfigError> {
    let done_file = s
        .given_value(Id::DoneFile)
        .map(|v| v.file_path())
        .transpose()?;
    let mut heartbeat = s.positive(Id::Heartbeat)?;
    if !s.needs(
        Id::Heartbeat,
        heartbeat.is_some() && done_file.is_none(),
        "--done-file (the lease lives beside it)",
    )? {
        heartbeat = None;
    }
    let wait_for = targets(s, Id::WaitFor)?;
    let mut wait_timeout = s
        .given_value(Id::WaitTimeout)
        .map(|v| v.duration())
        .transpose()?;
    if !s.needs(
        Id::WaitTimeout,
        wait_timeout.is_some() && wait_for.is_empty(),
        "--wait-for",
    )? {
        wait_timeout = None;
    }
    s.needs(
        Id::OnWaitTimeout,
        s.given(Id::OnWaitTimeout) && wait_timeout.is_none(),
        "--wait-timeout",
    )?;
    let requires = paths(s, Id::Requires)?;
    not_own(s, Id::Requires, &done_file, "main")?;
    Ok(MainConfig {
        on_wait_timeout: s.defaulted(Id::OnWaitTimeout)?.choice(&[
            ("fail", OnWaitTimeout::Fail),
            ("continue", OnWaitTimeout::Continue),
        ])?,
        timeout: s.positive(Id::Timeout)?,
        stop: stop_settings(s)?,
        quit_urls: quit_urls(s)?,
        termination_log: termination_log(s)?,
        command: s.args.positional.clone(),
        done_file,
        heartbeat,
        wait_for,
        wait_timeout,
        requires,
    })
}

fn sidecar_config(s: &Source) -> Result<SidecarConfig, ConfigError> {
    let wait_files = paths(s, Id::WaitFile)?;
    let native = wait_files.is_empty();
    let mut stale_after = s.positive(Id::StaleAfter)?;
    if !s.needs(
        Id::StaleAfter,
        native && stale_after.is_some(),
        "--wait-file",
    )? {
        stale_after = None;
    }
    s.needs(Id::On, native && s.given(Id::On), "--wait-file")?;
    s.needs(Id::ExitCode, native && s.given(Id::ExitCode), "--wait-file")?;
    let ready_when = targets(s, Id::ReadyWhen)?;
    let mut ready_file = s
        .given_value(Id::ReadyFile)
        .map(|v| v.file_path())
        .transpose()?;
    if !s.needs(
        Id::ReadyFile,
        ready_file.is_some() && ready_when.is_empty(),
        "--ready-when",
    )? {
        ready_file = None;
    }
    let done_file = s
        .given_value(Id::DoneFile)
        .map(|v| v.file_path())
        .transpose()?;
    not_own(s, Id::WaitFile, &done_file, "sidecar")?;
    Ok(SidecarConfig {
        on: s
            .defaulted(Id::On)?
            .choice(&[("any", OnPolicy::Any), ("success", OnPolicy::Success)])?,
        poll: s.defaulted(Id::Poll)?.positive_duration()?,
        stop: stop_settings(s)?,
        quit_urls: quit_urls(s)?,
        exit_code: s.defaulted(Id::ExitCode)?.choice(&[
            ("zero", ExitPolicy::Zero),
            ("main", ExitPolicy::Main),
            ("daemon", ExitPolicy::Daemon),
        ])?,
        termination_log: termination_log(s)?,
        command: s.args.positional.clone(),
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
        .iter()
        .map(|raw| Val {
            raw: raw.clone(),
            place: Place::Arg("TARGET"),
        })
        .map(|v| v.target(&s.docker))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ProbeConfig {
        targets,
        timeout: s.defaulted(Id::Timeout)?.positive_duration()?,
    })
}

fn install_config(s: &Source) -> Result<InstallConfig, ConfigError> {
    if s.args.positional.len() > 1 {
        return Err(ConfigError::CommandLine(format!(
            "install takes one DIR, not {}",
            s.args.positional.len()
        )));
    }
    let dir = Val {
        raw: s.args.positional.first().cloned().unwrap_or_default(),
        place: Place::Arg("DIR"),
    };
    if dir.raw.is_empty() {
        return Err(ConfigError::Empty {
            place: dir.place.to_string(),
        });
    }
    Ok(InstallConfig {
        dir: PathBuf::from(dir.raw),
        allow_dynamic: s.flag(Id::AllowDynamic)?,
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

    #[test]
    fn every_mode_reads_its_defaults_from_the_table() {
        // Each read of a defaulted option fails loudly if the table lost its default.
        for args in [
            &["main", "--", "x"][..],
            &["sidecar", "--wait-file=/d", "--", "x"],
            &["sidecar", "--", "x"],
            &["probe", "file:/x"],
            &["install", "/x"],
        ] {
            run(args, &[]).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        }
        let s = sidecar(&["--wait-file=/d", "--", "x"], &[]);
        assert_eq!(
            (s.poll, s.on, s.exit_code, s.stop.stop_signal),
            (
                Duration::from_secs(1),
                OnPolicy::Any,
                ExitPolicy::Zero,
                Sig::TERM
            )
        );
    }

    #[test]
    fn an_empty_value_is_an_error_wherever_it_comes_from() {
        for (args, env, want) in [
            (
                &["main", "--", "x"][..],
                ("SUPERVISOR_WAIT_FOR", ""),
                "SUPERVISOR_WAIT_FOR is empty",
            ),
            (
                &["main", "--", "x"],
                ("SUPERVISOR_REQUIRES", ""),
                "SUPERVISOR_REQUIRES is empty",
            ),
            (
                &["main", "--", "x"],
                ("SUPERVISOR_GRACE", ""),
                "SUPERVISOR_GRACE is empty",
            ),
            (
                &["main", "--wait-for=", "--", "x"],
                ("X", ""),
                "--wait-for is empty",
            ),
        ] {
            assert_eq!(err(args, &[env]), want, "{args:?} {env:?}");
        }
        // The one exception, documented: an empty termination log turns it off.
        let m = main(&["--", "x"], &[("SUPERVISOR_TERMINATION_LOG", "")]);
        assert_eq!(m.termination_log, None);
    }

    #[test]
    fn a_stop_signal_that_stops_nothing_is_refused() {
        for sig in ["CONT", "TSTP", "TTIN", "TTOU"] {
            let e = err(&["main", &format!("--stop-signal={sig}"), "--", "x"], &[]);
            assert!(
                e.starts_with(&format!("--stop-signal: {sig} stops nothing")),
                "{e}"
            );
            let e = err(&["sidecar", "--", "x"], &[("SUPERVISOR_STOP_SIGNAL", sig)]);
            assert!(e.starts_with("SUPERVISOR_STOP_SIGNAL:"), "{e}");
        }
        // httpd's STOPSIGNAL is WINCH: a handler makes it a stop.
        assert_eq!(
            main(&["--stop-signal=WINCH", "--", "x"], &[])
                .stop
                .stop_signal,
            Sig::WINCH
        );
    }

    #[test]
    fn values_in_errors_are_cut_to_a_readable_length() {
        let long = "x".repeat(100_000);
        for (args, env) in [
            (
                vec![
                    "main".to_string(),
                    format!("--grace={long}"),
                    "--".into(),
                    "x".into(),
                ],
                None,
            ),
            (
                vec!["main".into(), "--".into(), "x".into()],
                Some(("SUPERVISOR_GRACE", long.as_str())),
            ),
            (
                vec!["main".into(), format!("--{long}"), "--".into(), "x".into()],
                None,
            ),
            (vec![long.clone()], None),
            (vec!["probe".into(), long.clone()], None),
        ] {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let env: Vec<(&str, &str)> = env.into_iter().collect();
            let e = err(&args, &env);
            assert!(e.len() < 1200, "{} bytes: {}", e.len(), &e[..200]);
            assert!(!e.contains('\n'));
        }
    }

    #[test]
    fn positional_values_are_named_as_such() {
        assert!(
            err(&["probe", "bogus"], &[]).starts_with("TARGET: invalid target \"bogus\""),
            "{}",
            err(&["probe", "bogus"], &[])
        );
    }

    #[test]
    fn unknown_variables_are_named_with_a_suggestion() {
        let env: Vec<(OsString, OsString)> = [
            ("SUPERVISOR_DONE_FIEL", "/x"),
            ("SUPERVISOR_GRACE", "1s"),
            ("SUPERVISOR_WAIT_FILE", "/y"),
            ("DOCKER_HOST", "unix:///x"),
        ]
        .iter()
        .map(|(k, v)| (OsString::from(k), OsString::from(v)))
        .collect();
        assert_eq!(
            unknown_variables(&env),
            vec![Note::Warn(
                "SUPERVISOR_DONE_FIEL is not a supervisor setting; ignoring it (did you mean SUPERVISOR_DONE_FILE?)".into()
            )]
        );
    }

    #[test]
    fn a_usage_error_s_termination_message_goes_where_the_line_says() {
        let argv = |a: &[&str]| -> Vec<OsString> {
            std::iter::once("supervisor")
                .chain(a.iter().copied())
                .map(OsString::from)
                .collect()
        };
        let none = |_: &str| None;
        assert_eq!(
            termination_log_hint(
                &argv(&["main", "--termination-log", "/t/x", "--grace=zz"]),
                &none
            ),
            Some(PathBuf::from("/t/x"))
        );
        assert_eq!(
            termination_log_hint(&argv(&["main", "--termination-log=/t/y"]), &none),
            Some(PathBuf::from("/t/y"))
        );
        assert_eq!(
            termination_log_hint(&argv(&["main", "--", "--termination-log=/t/y"]), &none),
            kubelet_termination_log(),
            "after -- it is the command's"
        );
        let env = |v: &str| (v == "SUPERVISOR_TERMINATION_LOG").then(|| OsString::from("/t/z"));
        assert_eq!(
            termination_log_hint(&argv(&["main"]), &env),
            Some(PathBuf::from("/t/z"))
        );
        assert_eq!(
            termination_log_hint(&argv(&["main", "--termination-log="]), &env),
            None
        );
    }
}
