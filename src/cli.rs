//! The command line: one table of every option ([`MODES`], [`GLOBAL`]), the parser that reads
//! argv against it, and the help printed from it. The man page (docs/supervisor.1) is generated
//! from the same table by a test, so `--help`, `man supervisor` and the code cannot drift.
//!
//! Why not clap: it cost more of a 1 MiB budget than this whole module (the figure is in the
//! README's "Dependencies and what they cost"), and the supervisor needs
//! things it does not do (an error that names the environment variable a value came from, lists
//! in the environment with an escape for the separator, one-line errors). The grammar is small:
//! `supervisor [GLOBAL] MODE [OPTIONS] [--] ARGS...`, options as `--name VALUE` or
//! `--name=VALUE`, flags as `--name`. Everything after `--`, or from the first word that is not an
//! option, is the command's, flags included. Values are kept raw (`OsString`); `config` validates
//! them and reads each option's environment variable ([`env_var`]).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

/// How an option takes values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `--name`, no value.
    Flag,
    /// `--name VALUE`; given twice, the last wins.
    One,
    /// `--name VALUE`, repeatable: each occurrence is one value.
    Many,
}

/// Every option of every mode, by name: what the configuration reads. A misspelt id does not
/// compile, and [`Id::name`] is the one place that spells each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Id {
    LogLevel,
    LogFormat,
    DoneFile,
    Heartbeat,
    WaitFor,
    WaitTimeout,
    OnWaitTimeout,
    Requires,
    Timeout,
    Grace,
    StopSignal,
    StopDelay,
    TermSignals,
    QuitUrl,
    Quit,
    AllowRemoteQuit,
    TerminationLog,
    WaitFile,
    On,
    StaleAfter,
    Poll,
    ReadyWhen,
    ReadyFile,
    ExitCode,
    AllowDynamic,
}

impl Id {
    /// `wait_file`: the option is `--wait-file`, its variable `SUPERVISOR_WAIT_FILE`.
    pub fn name(self) -> &'static str {
        match self {
            Id::LogLevel => "log_level",
            Id::LogFormat => "log_format",
            Id::DoneFile => "done_file",
            Id::Heartbeat => "heartbeat",
            Id::WaitFor => "wait_for",
            Id::WaitTimeout => "wait_timeout",
            Id::OnWaitTimeout => "on_wait_timeout",
            Id::Requires => "requires",
            Id::Timeout => "timeout",
            Id::Grace => "grace",
            Id::StopSignal => "stop_signal",
            Id::StopDelay => "stop_delay",
            Id::TermSignals => "term_signals",
            Id::QuitUrl => "quit_url",
            Id::Quit => "quit",
            Id::AllowRemoteQuit => "allow_remote_quit",
            Id::TerminationLog => "termination_log",
            Id::WaitFile => "wait_file",
            Id::On => "on",
            Id::StaleAfter => "stale_after",
            Id::Poll => "poll",
            Id::ReadyWhen => "ready_when",
            Id::ReadyFile => "ready_file",
            Id::ExitCode => "exit_code",
            Id::AllowDynamic => "allow_dynamic",
        }
    }

    /// `--wait-file`.
    pub fn flag(self) -> String {
        format!("--{}", self.name().replace('_', "-"))
    }

    /// `SUPERVISOR_WAIT_FILE`.
    pub fn var(self) -> String {
        env_var(self)
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opt {
    pub id: Id,
    pub kind: Kind,
    /// The value's name in help (`PATH`); empty for flags.
    pub value: &'static str,
    pub default: Option<&'static str>,
    pub heading: &'static str,
    /// One sentence, for `-h`.
    pub help: &'static str,
    /// More, for `--help` and the man page (may be empty).
    pub more: &'static str,
}

impl Opt {
    /// `--wait-file`.
    pub fn flag_name(&self) -> String {
        self.id.flag()
    }
}

/// The modes. A new one is a variant here, an entry in [`MODES`], and an arm wherever the
/// compiler asks for one (config, dispatch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModeId {
    Main,
    Sidecar,
    Probe,
    Install,
}

/// What a mode's positional arguments are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Positional {
    /// A command to run, after `--` (its own flags included).
    Command,
    /// Values of the mode's own (targets, a directory).
    Values,
}

/// A mode (subcommand).
#[derive(Debug)]
pub struct Mode {
    pub id: ModeId,
    pub name: &'static str,
    pub summary: &'static str,
    pub description: &'static str,
    pub positional: Positional,
    /// The positional arguments' name and help (`CMD...`).
    pub args: (&'static str, &'static str),
    pub options: &'static [Opt],
    pub examples: &'static str,
}

const fn opt(
    id: Id,
    kind: Kind,
    value: &'static str,
    default: Option<&'static str>,
    heading: &'static str,
    help: &'static str,
    more: &'static str,
) -> Opt {
    Opt {
        id,
        kind,
        value,
        default,
        heading,
        help,
        more,
    }
}

use Kind::{Flag, Many, One};

// The options both supervising modes share.
#[rustfmt::skip]
const QUIT_URL: Opt = opt(Id::QuitUrl, Many, "URL", None, "Quit endpoints",
    "POST here to make a proxy exit (main: after CMD ends; sidecar: instead of the stop signal). \
     Repeatable.",
    "For sidecars that cannot be wrapped (a mesh proxy). Loopback only unless \
     --allow-remote-quit; 2 s timeout each; redirects are not followed. A sidecar whose URLs all \
     fail sends the stop signal at once.");
#[rustfmt::skip]
const QUIT: Opt = opt(Id::Quit, Many, "PRESET", None, "Quit endpoints",
    "POST a known proxy's quit endpoint: istio, envoy[:PORT], linkerd, cloud-sql-proxy.", "");
#[rustfmt::skip]
const ALLOW_REMOTE_QUIT: Opt = opt(Id::AllowRemoteQuit, Flag, "", None, "Quit endpoints",
    "Allow --quit-url hosts other than loopback.", "");
#[rustfmt::skip]
const TERM_SIGNALS: Opt = opt(Id::TermSignals, One, "LIST", Some("TERM,INT"), "Stopping",
    "The signals that count as a request to stop (e.g. TERM,QUIT,RTMIN+3).",
    "Set it to the image's STOPSIGNAL when that is not TERM: the grace period, the marker and a \
     sidecar's stop-and-exit-0 then follow whatever signal the runtime sends.");
#[rustfmt::skip]
const TERMINATION_LOG: Opt = opt(Id::TerminationLog, One, "PATH", None, "Kubernetes",
    "Write the Kubernetes termination message here.",
    "By default /dev/termination-log, when this container has a writable one (the kubelet \
     mounts it): one sentence saying how the run ended, then the marker's JSON if it fits in the \
     4096 bytes the kubelet reads. An empty value turns it off.");

#[rustfmt::skip]
pub const GLOBAL: &[Opt] = &[
    opt(Id::LogLevel, One, "LEVEL", None, "Global options",
        "Log level: error, warn, info (the default) or debug.",
        "RUST_LOG is read when this is not set (a directive list like info,supervisor=debug works)."),
    opt(Id::LogFormat, One, "FORMAT", Some("text"), "Global options",
        "Log format on stderr: text or json.", ""),
];

#[rustfmt::skip]
const MAIN_OPTIONS: &[Opt] = &[
    opt(Id::DoneFile, One, "PATH", None, "Marker and lease",
        "Write the JSON done-marker here when CMD ends, however it ends.",
        "Put it on the volume shared with the sidecars. While running, the supervisor holds the \
         lease PATH.lease (a kernel lock the sidecars wait on, released however the process \
         dies); a second main for the same PATH refuses to start (exit 125)."),
    opt(Id::Heartbeat, One, "DURATION", None, "Marker and lease",
        "Refresh the lease's mtime this often (for sidecar --stale-after).",
        "Only needed where flock does not work across containers (some network filesystems)."),
    opt(Id::WaitFor, Many, "TARGET", None, "Readiness gate",
        "Start CMD only when this target is ready. Repeatable.",
        "file:PATH (exists), tcp://HOST:PORT (accepts), unix:PATH (accepts), \
         http://HOST:PORT/PATH (answers 200-399), http+unix:SOCKET:/PATH (answers 200-399 over a \
         unix socket), docker[:ENDPOINT] (dockerd answers GET /_ping on ENDPOINT, else \
         $DOCKER_HOST, else unix:///var/run/docker.sock; with DOCKER_TLS_CERTDIR set, also its \
         client certificates are there and non-empty; over TCP with TLS, accepting is enough), \
         or a preset: istio, envoy[:PORT], linkerd, cloud-sql-proxy. Network targets are tried \
         every 10-100 ms, each attempt bounded by 1s and by what is left of --wait-timeout; file \
         targets wait on dnotify, inotify where dnotify is off, else polling."),
    opt(Id::WaitTimeout, One, "DURATION", None, "Readiness gate",
        "Give up waiting for the --wait-for targets after this long.",
        "Then, by default, CMD never runs and the exit code is 124 (see --on-wait-timeout)."),
    opt(Id::OnWaitTimeout, One, "fail|continue", Some("fail"), "Readiness gate",
        "When --wait-timeout expires: fail (exit 124), or continue (start CMD, with a warning).",
        "continue suits a manifest that must work with or without a mesh."),
    opt(Id::Requires, Many, "PATH", None, "Dependencies",
        "A sidecar's --done-file: if that sidecar ends while CMD runs, stop CMD (exit 122).",
        "Repeatable. The sidecar ended when its marker appears, or when its lease is released \
         without one (its container was SIGKILLed or OOM-killed). A required sidecar that has not \
         started yet is not a failure: gate on it with --wait-for."),
    opt(Id::Timeout, One, "DURATION", None, "Stopping",
        "Stop CMD once it has run this long (exit 123).", ""),
    opt(Id::Grace, One, "DURATION", Some("25s"), "Stopping",
        "After CMD is asked to stop, how long it has before its process group is SIGKILLed.",
        "Keep --stop-delay plus --grace below the pod's terminationGracePeriodSeconds (30s by \
         default), so the marker is written before the kubelet's SIGKILL."),
    opt(Id::StopSignal, One, "SIG", Some("TERM"), "Stopping",
        "The signal that stops CMD when the supervisor decides to (--timeout, --requires).",
        "A stop request from outside is forwarded as the signal that arrived."),
    opt(Id::StopDelay, One, "DURATION", Some("0s"), "Stopping",
        "Forward a stop request from outside only after this delay, while CMD keeps running.",
        "The grace period starts after the delay. Meanwhile other signals are forwarded at once; \
         further term signals are held and delivered, in order, right after the first one."),
    TERM_SIGNALS,
    QUIT_URL,
    QUIT,
    ALLOW_REMOTE_QUIT,
    TERMINATION_LOG,
];

#[rustfmt::skip]
const SIDECAR_OPTIONS: &[Opt] = &[
    opt(Id::WaitFile, Many, "PATH", None, "Waiting for the mains",
        "A done-marker to wait for. Repeatable: the daemon stops when all have arrived.",
        "A main's --done-file, or another sidecar's for ordered stops. A marker counts only once \
         its lease is released. Without any --wait-file the daemon runs until a term signal (a \
         native sidecar)."),
    opt(Id::On, One, "any|success", Some("any"), "Waiting for the mains",
        "Which markers count: any, or only those with exit code 0.",
        "success suits restartPolicy: OnFailure: a failed or vanished main will be restarted."),
    opt(Id::StaleAfter, One, "DURATION", None, "Waiting for the mains",
        "Treat a main as vanished when its lease was not refreshed for this long.",
        "Use with main --heartbeat, where flock does not work across containers."),
    opt(Id::Poll, One, "DURATION", Some("1s"), "Waiting for the mains",
        "Polling interval, used only where no directory watch works (dnotify, then inotify).", ""),
    opt(Id::ReadyWhen, Many, "TARGET", None, "Readiness",
        "The daemon is ready when this target is (as main --wait-for). Repeatable.",
        "For docker:dind: docker (dockerd answers, and with DOCKER_TLS_CERTDIR its client \
         certificates are written), rather than unix:/var/run/docker.sock (dockerd accepts \
         before it answers)."),
    opt(Id::ReadyFile, One, "PATH", None, "Readiness",
        "Write this file (JSON, atomically) once every --ready-when target is ready.",
        "A stale one is removed at start; its directory must be writable (checked at start)."),
    opt(Id::StopSignal, One, "SIG", Some("TERM"), "Stopping",
        "The signal sent once to the daemon's process group to stop it (then SIGCONT).", ""),
    opt(Id::Grace, One, "DURATION", Some("10s"), "Stopping",
        "How long the daemon has to stop before its process group is SIGKILLed.", ""),
    opt(Id::StopDelay, One, "DURATION", Some("0s"), "Stopping",
        "Stop the daemon only this long after a stop request from outside.",
        "For proxies that must keep serving while the pod's endpoints are removed. Stops because \
         the mains are done are never delayed. Meanwhile other signals are forwarded at once; \
         further term signals are held and delivered, in order, right after the stop."),
    TERM_SIGNALS,
    QUIT_URL,
    QUIT,
    ALLOW_REMOTE_QUIT,
    opt(Id::ExitCode, One, "zero|main|daemon", Some("zero"), "Exit",
        "Exit code after the mains are done: 0, the main's code, or the daemon's status.",
        "main gives 137 when a main vanished without a marker."),
    opt(Id::DoneFile, One, "PATH", None, "Exit",
        "Write a done-marker here when the daemon ends, however it ends, and hold PATH.lease.",
        "What main --requires and other sidecars' --wait-file watch."),
    TERMINATION_LOG,
];

#[rustfmt::skip]
const PROBE_OPTIONS: &[Opt] = &[opt(Id::Timeout, One, "DURATION", Some("1s"), "Options",
    "Timeout of each check.", "")];

#[rustfmt::skip]
const INSTALL_OPTIONS: &[Opt] = &[opt(Id::AllowDynamic, Flag, "", None, "Options",
    "Install even when this binary is dynamically linked.",
    "A dynamic binary does not run in scratch or distroless images.")];

pub const MAIN: Mode = Mode {
    id: ModeId::Main,
    positional: Positional::Command,
    name: "main",
    summary: "Run the main container's command; write a done-marker when it ends, however it ends.",
    description: "Runs CMD as PID 1 of the main container: waits for the --wait-for targets, runs \
        CMD in its own process group, reaps every zombie, forwards every signal, and exits with \
        CMD's code. However CMD ends, the JSON done-marker (--done-file) is written atomically so \
        the sidecars stop; while the supervisor lives it holds PATH.lease, so they also notice a \
        SIGKILL or an OOM kill.",
    args: ("CMD", "The command to run, after --."),
    options: MAIN_OPTIONS,
    examples: "\
    The job of a CI pod, gated on its docker:dind sidecar answering at $DOCKER_HOST (and on
    its client certificates, with DOCKER_TLS_CERTDIR), and stopped if dockerd dies:
        supervisor main --done-file /shared/build.done --wait-for docker \\
            --wait-timeout 2m --requires /shared/dind.done -- ./ci.sh

    A job behind Istio and the Cloud SQL proxy, which it tells to quit when it ends:
        supervisor main --wait-for istio --quit istio --quit cloud-sql-proxy -- ./migrate.sh

    A batch Job with a wall-clock limit, stopped with the signal its program expects:
        supervisor main --done-file /shared/done --timeout 1h --stop-signal INT -- python job.py",
};

pub const SIDECAR: Mode = Mode {
    id: ModeId::Sidecar,
    positional: Positional::Command,
    name: "sidecar",
    summary: "Run a sidecar's daemon until the mains are done, then stop it and exit 0.",
    description: "Runs DAEMON as PID 1 of a sidecar container, announces its readiness \
        (--ready-when, --ready-file), and when every --wait-file marker has arrived (or a main \
        vanished) stops it once, gracefully, and exits 0 so the pod completes. Without \
        --wait-file it runs until a term signal (a native sidecar). A daemon that ends on its own \
        before the mains are done is a failure the pod shows.",
    args: ("DAEMON", "The daemon to run, after --."),
    options: SIDECAR_OPTIONS,
    examples: "\
    docker:dind beside a CI job, with a marker of its own so the job learns if dockerd dies:
        supervisor sidecar --wait-file /shared/build.done --done-file /shared/dind.done \\
            --ready-when docker --ready-file /shared/dind.ready \\
            -- dockerd-entrypoint.sh

    nginx (its image's STOPSIGNAL is QUIT) for a restartPolicy: OnFailure Job:
        supervisor sidecar --wait-file /shared/done --on success --stop-signal QUIT \\
            --term-signals TERM,QUIT -- nginx -g 'daemon off;'

    A native sidecar (initContainers, restartPolicy: Always), probed without a shell:
        supervisor sidecar -- dockerd-entrypoint.sh
        startupProbe: {exec: {command: [supervisor, probe, docker]}}

    A log shipper that stops only after the proxy in front of it has ended:
        supervisor sidecar --wait-file /shared/envoy.done -- fluent-bit -c /etc/fb.conf",
};

pub const PROBE: Mode = Mode {
    id: ModeId::Probe,
    positional: Positional::Values,
    name: "probe",
    summary: "Check targets once (for exec probes): exit 0 if all are ready, 1 otherwise.",
    description: "One attempt at each target, concurrently. Silent when all are ready; one line \
        per failing target on stderr otherwise. For Kubernetes exec probes in images with no \
        shell or curl.",
    args: (
        "TARGET",
        "file:PATH, tcp://HOST:PORT, unix:PATH, http://HOST:PORT/PATH, \
        http+unix:SOCKET:/PATH, docker[:ENDPOINT] or a preset, as for main --wait-for.",
    ),
    options: PROBE_OPTIONS,
    examples: "\
    A native docker:dind sidecar's startup probe (dockerd answers /_ping):
        startupProbe: {exec: {command: [/supervisor/bin/supervisor, probe, docker]}}

    dockerd on another socket, asked directly:
        supervisor probe http+unix:/run/user/1000/docker.sock:/_ping",
};

pub const INSTALL: Mode = Mode {
    id: ModeId::Install,
    positional: Positional::Values,
    name: "install",
    summary: "Copy this binary to DIR/supervisor (for init containers).",
    description: "Copies the running binary into DIR (created if needed), atomically, mode 0755, \
        and prints the installed path. Idempotent, and safe over a copy that is running.",
    args: ("DIR", "The directory to install into."),
    options: INSTALL_OPTIONS,
    examples: "\
    An init container that shares the binary with the others through an emptyDir:
        command: [/usr/local/bin/supervisor, install, /supervisor/bin]",
};

/// Every mode, in the order of the documentation.
pub const MODES: [&Mode; 4] = [&MAIN, &SIDECAR, &PROBE, &INSTALL];

/// The environment variable of an option: `wait_file` -> `SUPERVISOR_WAIT_FILE`.
pub fn env_var(id: Id) -> String {
    let name = id.name();
    let mut var = String::with_capacity(11 + name.len());
    var.push_str("SUPERVISOR_");
    var.push_str(&name.to_ascii_uppercase());
    var
}

/// A parsed command line: the mode, the options given (raw), and the positional arguments.
#[derive(Debug)]
pub struct Args {
    pub mode: &'static Mode,
    given: Vec<(&'static Opt, OsString)>,
    pub positional: Vec<OsString>,
}

impl Args {
    /// The values given on the command line for option `id`, in order (a flag gives one empty
    /// value per occurrence).
    pub fn values(&self, id: Id) -> Vec<OsString> {
        self.given
            .iter()
            .filter(|(o, _)| o.id == id)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// The option `id` of this mode (or a global one).
    pub fn spec(&self, id: Id) -> Option<&'static Opt> {
        self.mode.options.iter().chain(GLOBAL).find(|o| o.id == id)
    }
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Request {
    Run(Args),
    /// `--help`, `-h`, `help [MODE]`, `--version`: print this and exit 0.
    Print(String),
}

/// Parses argv (`argv[0]` included) against the table.
pub fn parse<I, T>(argv: I) -> Result<Request, String>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let mut words = argv.into_iter().map(Into::into).skip(1).peekable();
    let mut given = Vec::new();
    let mode = loop {
        let Some(w) = words.next() else {
            return Err(
                "a mode is required: main, sidecar, probe or install (see supervisor --help)"
                    .into(),
            );
        };
        let text = w.to_string_lossy();
        if let Some(p) = asks_for_help(&text, None) {
            return Ok(p);
        }
        match text.as_ref() {
            "help" => {
                // `help`, `help MODE`; `help help` is the help of everything.
                let m = words
                    .next()
                    .filter(|m| m != "help")
                    .map(|m| find_mode(&m.to_string_lossy()))
                    .transpose()?;
                return Ok(Request::Print(help(m, true)));
            }
            t if t.starts_with('-') => take_option(&w, &mut words, &[GLOBAL], &mut given)?,
            t => break find_mode(t)?,
        }
    };
    let mut positional = Vec::new();
    while let Some(w) = words.next() {
        let text = w.to_string_lossy().into_owned();
        if let Some(p) = asks_for_help(&text, Some(mode)) {
            return Ok(p);
        }
        match text.as_str() {
            "--" => {
                positional.extend(words.by_ref());
                break;
            }
            t if t.starts_with('-') && t.len() > 1 => {
                take_option(&w, &mut words, &[mode.options, GLOBAL], &mut given)?;
            }
            _ => {
                // The first word that is not an option starts the arguments (the command's
                // flags are its own: `main ls -l`).
                positional.push(w);
                positional.extend(words.by_ref());
                break;
            }
        }
    }
    if positional.is_empty() {
        return Err(format!(
            "missing {} ({})",
            mode.args.0,
            match mode.positional {
                Positional::Command => "the command goes after --",
                Positional::Values => mode.args.1,
            }
        ));
    }
    Ok(Request::Run(Args {
        mode,
        given,
        positional,
    }))
}

/// `-h`, `--help`, `-V`, `--version`.
fn asks_for_help(word: &str, mode: Option<&Mode>) -> Option<Request> {
    match word {
        "-h" => Some(Request::Print(help(mode, false))),
        "--help" => Some(Request::Print(help(mode, true))),
        "-V" | "--version" => Some(Request::Print(version())),
        _ => None,
    }
}

fn find_mode(name: &str) -> Result<&'static Mode, String> {
    MODES
        .iter()
        .find(|m| m.name == name)
        .copied()
        .ok_or_else(|| {
            let hint = suggest(name, MODES.iter().map(|m| m.name.to_string()))
                .map(|s| format!(" (did you mean {s}?)"))
                .unwrap_or_default();
            format!("unknown mode {name:?}{hint}: use main, sidecar, probe or install")
        })
}

/// Reads one option (`--name`, `--name=value`, `--name value`) into `given`. The value keeps its
/// raw bytes: paths need not be UTF-8.
fn take_option(
    word: &OsStr,
    rest: &mut impl Iterator<Item = OsString>,
    tables: &[&'static [Opt]],
    given: &mut Vec<(&'static Opt, OsString)>,
) -> Result<(), String> {
    let bytes = word.as_bytes();
    let (name, inline) = match bytes.iter().position(|&b| b == b'=') {
        Some(i) => (&bytes[..i], Some(OsStr::from_bytes(&bytes[i + 1..]))),
        None => (bytes, None),
    };
    let name = String::from_utf8_lossy(name).into_owned();
    let all = || tables.iter().flat_map(|t| t.iter());
    let Some(spec) = all().find(|o| o.flag_name() == name) else {
        // `--help` and `--version` are not in the tables but are worth suggesting (`--versoin`).
        let names = all()
            .map(Opt::flag_name)
            .chain(["--help".to_string(), "--version".to_string()]);
        let hint = suggest(&name, names)
            .map(|s| format!(" (did you mean {s}?)"))
            .unwrap_or_else(|| {
                " (options go before --; everything after it belongs to the command)".into()
            });
        // Escaped: whatever was typed must not split the one-line error.
        return Err(format!("unknown option {}{hint}", name.escape_debug()));
    };
    let value = match (spec.kind, inline) {
        (Flag, None) => OsString::new(),
        (Flag, Some(_)) => return Err(format!("{name} takes no value")),
        (_, Some(v)) => v.to_os_string(),
        (_, None) => rest
            .next()
            .ok_or_else(|| format!("{name} needs a value ({})", spec.value))?,
    };
    given.push((spec, value));
    Ok(())
}

/// The closest name within two edits, if any.
pub fn suggest(typed: &str, names: impl Iterator<Item = String>) -> Option<String> {
    names
        .map(|n| (distance(typed, &n), n))
        .filter(|(d, n)| *d <= 2.max(typed.len() / 4) && *d < n.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

/// Levenshtein distance.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

fn version() -> String {
    format!("supervisor {}\n", crate::VERSION)
}

const SHARED_SECTIONS: &str = "\
DURATIONS
    500ms, 10s, 1.5s, 2m, 1h, 1m30s, 1h2m3s (as Kubernetes and Go write them), or a bare
    number of seconds.

SIGNALS
    TERM, SIGTERM, 15, QUIT, RTMIN+3 (RTMIN is 34, as glibc, Docker and Kubernetes count).
    Every signal the supervisor can receive is forwarded to the command's process group,
    real-time ones included, and the faults SEGV, BUS, ILL, FPE, TRAP, SYS and ABRT when a
    process sends them; not KILL and STOP (the kernel acts on them), CHLD (it reaps) or 32 and
    33 (the C library's own). A real fault of the supervisor's own still ends it. During
    --stop-delay other signals are forwarded at once and further term signals are held, then
    delivered in order right after the stop signal; none is dropped.

ENVIRONMENT
    Every option can be set as SUPERVISOR_<OPTION> (--wait-file is SUPERVISOR_WAIT_FILE); the
    command line wins. A repeatable option takes a comma-separated list there, with \\, for a
    comma and \\\\ for a backslash inside an item. Flags take true/false, 1/0, yes/no, on/off.

EXIT CODES
    N    the command's own code, or 128+N when signal N killed it (also when the pod is
         stopping: a main's marker then says reason stopped)
    0    sidecar: daemon stopped as asked; probe: all ready; install: done
    1    probe: a target is not ready
    2    usage error: nothing was started
    121  sidecar: the daemon exited 0 but left processes running (it daemonized)
    122  main: a --requires sidecar ended on its own first; the command was stopped
    123  main: --timeout expired; the command was stopped
    124  main: --wait-timeout expired; the command never ran
    125  the supervisor could not do its job (volume not writable, lease taken, marker lost)
    126  the command is not executable
    127  the command was not found
    137  sidecar --exit-code main: the main vanished without a marker

FILES
    PATH (--done-file)   the done-marker: one line of JSON, written atomically
    PATH.lease           locked while the supervisor lives; released after the marker
    --ready-file         written once the daemon is ready
    /dev/termination-log what kubectl describe pod shows: a sentence, then the marker

SEE ALSO
    man supervisor (docs/supervisor.1); the README and docs/ of the source.
";

/// Help: `-h` (`long` false: one line per option) or `--help` (everything).
pub fn help(mode: Option<&Mode>, long: bool) -> String {
    let mut out = String::new();
    let Some(mode) = mode else {
        out.push_str("PID 1 for the containers of a Kubernetes pod: run the job, stop the sidecars when it ends.\n\n");
        out.push_str("Usage: supervisor [GLOBAL OPTIONS] MODE [OPTIONS] [--] ARGS...\n\nModes:\n");
        for m in MODES {
            out.push_str(&format!("  {:<9} {}\n", m.name, m.summary));
        }
        out.push_str("  help      Print the help of a mode: supervisor help sidecar\n");
        push_options(&mut out, GLOBAL, long);
        if long {
            out.push('\n');
            out.push_str(SHARED_SECTIONS);
        } else {
            out.push_str("\n(-h: short help; --help: all of it)\n");
        }
        return out;
    };
    out.push_str(mode.summary);
    out.push_str("\n\n");
    let args = match mode.positional {
        Positional::Command => format!("[--] {}...", mode.args.0),
        Positional::Values => format!("{}...", mode.args.0),
    };
    out.push_str(&format!(
        "Usage: supervisor {} [OPTIONS] {args}\n",
        mode.name
    ));
    if long {
        out.push('\n');
        out.push_str(&wrap(mode.description, 4));
        out.push_str(&format!(
            "\nArguments:\n    {}...  {}\n",
            mode.args.0, mode.args.1
        ));
    }
    push_options(&mut out, mode.options, long);
    push_options(&mut out, GLOBAL, long);
    if long {
        // The table's example text starts at its first word; the lines after it are indented.
        out.push_str("\nEXAMPLES\n    ");
        out.push_str(mode.examples);
        out.push_str("\n\n");
        out.push_str(SHARED_SECTIONS);
    } else {
        out.push_str("\n(-h: short help; --help: all of it, with examples)\n");
    }
    out
}

fn push_options(out: &mut String, options: &[Opt], long: bool) {
    let mut heading = "";
    for o in options {
        if o.heading != heading {
            heading = o.heading;
            out.push_str(&format!("\n{heading}:\n"));
        }
        let mut name = o.flag_name();
        if o.kind != Flag {
            name.push_str(&format!(" <{}>", o.value));
        }
        if !long {
            out.push_str(&format!("  {name:<30} {}\n", o.help));
            continue;
        }
        let mut text = o.help.to_string();
        if !o.more.is_empty() {
            text.push(' ');
            text.push_str(o.more);
        }
        if let Some(d) = o.default {
            text.push_str(&format!(" [default: {d}]"));
        }
        text.push_str(&format!(" [env: {}]", o.id.var()));
        out.push_str(&format!("  {name}\n{}", wrap(&text, 10)));
    }
}

/// `text` wrapped at 96 columns, each line indented by `indent`. A bracketed note (`[env: X]`)
/// is never split.
pub fn wrap(text: &str, indent: usize) -> String {
    let mut words: Vec<String> = Vec::new();
    let mut open = false;
    for w in text.split_whitespace() {
        match words.last_mut() {
            Some(last) if open => {
                last.push(' ');
                last.push_str(w);
            }
            _ => words.push(w.to_string()),
        }
        open = (open || w.starts_with('[')) && !w.ends_with(']');
    }
    let mut out = String::new();
    let mut line = String::new();
    for word in words {
        if !line.is_empty() && indent + line.len() + 1 + word.len() > 96 {
            out.push_str(&format!("{:indent$}{line}\n", ""));
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    if !line.is_empty() {
        out.push_str(&format!("{:indent$}{line}\n", ""));
    }
    out
}

#[cfg(test)]
mod tests;
