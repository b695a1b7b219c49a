//! The command line, as clap sees it. Only strings and flags live here: `config` validates them
//! into plain types, so clap never leaks into the core.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::ffi::OsString;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "supervisor",
    version = crate::VERSION,
    about = "PID 1 for the containers of a pod: run the job, stop the sidecars when it ends.",
    propagate_version = true,
    disable_help_subcommand = true
)]
pub struct Cli {
    /// Log level: error, warn, info, debug or trace. RUST_LOG is read when this is not set.
    #[arg(
        long,
        global = true,
        env = "SUPERVISOR_LOG_LEVEL",
        value_name = "LEVEL"
    )]
    pub log_level: Option<String>,

    /// Log format on stderr.
    #[arg(
        long,
        global = true,
        env = "SUPERVISOR_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text
    )]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the main container's command; write a done-marker when it ends, however it ends.
    Main(MainArgs),
    /// Run a sidecar daemon until the main container is done, then stop it and exit 0.
    Sidecar(SidecarArgs),
    /// Check targets once (for Kubernetes exec probes): exit 0 if all are ready, 1 otherwise.
    Probe(ProbeArgs),
    /// Copy this binary to DIR/supervisor (for init containers).
    Install(InstallArgs),
}

#[derive(Args, Debug)]
pub struct MainArgs {
    /// Where to write the JSON done-marker when CMD ends (on the volume shared with the sidecars).
    #[arg(long, env = "SUPERVISOR_DONE_FILE", value_name = "PATH")]
    pub done_file: Option<PathBuf>,

    /// After SIGTERM/SIGINT is forwarded, how long CMD has before its process group is SIGKILLed.
    #[arg(
        long,
        env = "SUPERVISOR_GRACE",
        default_value = "25s",
        value_name = "DURATION"
    )]
    pub grace: String,

    /// Start CMD only when this target is ready: file:PATH, tcp://HOST:PORT,
    /// http://HOST:PORT/PATH or unix:PATH. Repeatable; comma-separated in the environment.
    #[arg(
        long = "wait-for",
        env = "SUPERVISOR_WAIT_FOR",
        value_delimiter = ',',
        value_name = "TARGET"
    )]
    pub wait_for: Vec<String>,

    /// Give up waiting for --wait-for targets after this long: CMD is not run, exit 124.
    #[arg(long, env = "SUPERVISOR_WAIT_TIMEOUT", value_name = "DURATION")]
    pub wait_timeout: Option<String>,

    /// POST to this URL after CMD ends and the marker is written (e.g. a proxy's quitquitquit).
    #[arg(
        long = "quit-url",
        env = "SUPERVISOR_QUIT_URL",
        value_delimiter = ',',
        value_name = "URL"
    )]
    pub quit_url: Vec<String>,

    /// Allow --quit-url hosts other than loopback.
    #[arg(long, env = "SUPERVISOR_ALLOW_REMOTE_QUIT")]
    pub allow_remote_quit: bool,

    /// Refresh the lease file beside the marker at this interval (for sidecars using
    /// --stale-after on filesystems without working locks).
    #[arg(long, env = "SUPERVISOR_HEARTBEAT", value_name = "DURATION")]
    pub heartbeat: Option<String>,

    /// The command to run, after `--`.
    #[arg(
        required = true,
        trailing_var_arg = true,
        value_name = "CMD",
        value_parser = clap::value_parser!(OsString)
    )]
    pub command: Vec<OsString>,
}

#[derive(Args, Debug)]
pub struct SidecarArgs {
    /// A done-marker to wait for. Repeatable: the daemon is stopped when all of them exist.
    /// Without any (a native sidecar), only SIGTERM/SIGINT stops it.
    #[arg(
        long = "wait-file",
        env = "SUPERVISOR_WAIT_FILE",
        value_delimiter = ',',
        value_name = "PATH"
    )]
    pub wait_file: Vec<PathBuf>,

    /// Which markers count: any, or only those with exit_code 0 (restartPolicy OnFailure).
    #[arg(long, env = "SUPERVISOR_ON", value_enum, default_value_t = OnArg::Any)]
    pub on: OnArg,

    /// The signal sent once to the daemon's process group to stop it.
    #[arg(
        long,
        env = "SUPERVISOR_STOP_SIGNAL",
        default_value = "TERM",
        value_name = "SIG"
    )]
    pub stop_signal: String,

    /// How long the daemon has to stop before its process group is SIGKILLed.
    #[arg(
        long,
        env = "SUPERVISOR_GRACE",
        default_value = "10s",
        value_name = "DURATION"
    )]
    pub grace: String,

    /// POST to this URL to stop the daemon instead of sending the stop signal. Repeatable.
    #[arg(
        long = "quit-url",
        env = "SUPERVISOR_QUIT_URL",
        value_delimiter = ',',
        value_name = "URL"
    )]
    pub quit_url: Vec<String>,

    /// Allow --quit-url hosts other than loopback.
    #[arg(long, env = "SUPERVISOR_ALLOW_REMOTE_QUIT")]
    pub allow_remote_quit: bool,

    /// Exit code after a marker-triggered stop: zero, the main's code, or the daemon's status.
    #[arg(long, env = "SUPERVISOR_EXIT_CODE", value_enum, default_value_t = ExitCodeArg::Zero)]
    pub exit_code: ExitCodeArg,

    /// Polling interval, used only when inotify is unavailable.
    #[arg(
        long,
        env = "SUPERVISOR_POLL",
        default_value = "1s",
        value_name = "DURATION"
    )]
    pub poll: String,

    /// The daemon is ready when this target is: file:PATH, tcp://, http://, unix:PATH. Repeatable.
    #[arg(
        long = "ready-when",
        env = "SUPERVISOR_READY_WHEN",
        value_delimiter = ',',
        value_name = "TARGET"
    )]
    pub ready_when: Vec<String>,

    /// Write this file (JSON, atomically) once the daemon is ready.
    #[arg(long, env = "SUPERVISOR_READY_FILE", value_name = "PATH")]
    pub ready_file: Option<PathBuf>,

    /// Treat the main as vanished when its lease was not refreshed for this long
    /// (use with `main --heartbeat`).
    #[arg(long, env = "SUPERVISOR_STALE_AFTER", value_name = "DURATION")]
    pub stale_after: Option<String>,

    /// The daemon to run, after `--`.
    #[arg(
        required = true,
        trailing_var_arg = true,
        value_name = "DAEMON",
        value_parser = clap::value_parser!(OsString)
    )]
    pub command: Vec<OsString>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnArg {
    Any,
    Success,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExitCodeArg {
    Zero,
    Main,
    Daemon,
}

#[derive(Args, Debug)]
pub struct ProbeArgs {
    /// Targets to check once: file:PATH, tcp://HOST:PORT, http://HOST:PORT/PATH, unix:PATH.
    #[arg(required = true, value_name = "TARGET")]
    pub targets: Vec<String>,

    /// Timeout of each check.
    #[arg(
        long,
        env = "SUPERVISOR_PROBE_TIMEOUT",
        default_value = "1s",
        value_name = "DURATION"
    )]
    pub timeout: String,
}

#[derive(Args, Debug)]
pub struct InstallArgs {
    /// Directory to copy the binary into (created if needed).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,

    /// Copy the binary even if it is not statically linked (it then runs only in images that
    /// have its loader and libraries); without this, install refuses such a binary (exit 125).
    #[arg(long)]
    pub allow_dynamic: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn flags_after_double_dash_belong_to_the_child() {
        let cli = Cli::try_parse_from(["supervisor", "main", "--", "ls", "--grace", "-l"]).unwrap();
        let Command::Main(m) = cli.command else {
            panic!("not main")
        };
        assert_eq!(m.command, ["ls", "--grace", "-l"]);
        assert_eq!(m.grace, "25s");
    }

    #[test]
    fn sidecar_without_wait_file_is_a_native_sidecar() {
        let cli = Cli::try_parse_from(["supervisor", "sidecar", "--", "sleep", "1"]).unwrap();
        let Command::Sidecar(s) = cli.command else {
            panic!("not sidecar")
        };
        assert!(s.wait_file.is_empty());
    }
}
