//! `supervisor`: PID 1 for the containers of a Kubernetes pod.
//!
//! Theory of operation: the main container runs `supervisor main`, which runs the job as a child
//! in its own process group, reaps zombies, forwards signals and, however the job ends, writes an
//! atomic JSON done-marker on the volume the pod shares. While it lives it holds a kernel lock on a
//! lease file beside the marker. Each sidecar runs `supervisor sidecar`, which runs its daemon and
//! watches (inotify) for the marker and (a blocked flock) for the lease's release; when the main is
//! done or gone it stops the daemon (signal once or quit URL, grace, SIGKILL) and exits 0, so the
//! pod completes. `probe` and `install` serve Kubernetes exec probes and init containers.
//!
//! This file only parses, sets up logging, runs a mode and exits with the code `exit` decides.

mod asyncfd;
mod child;
mod cli;
mod config;
mod exit;
mod http;
mod lease;
mod logging;
mod marker;
mod modes;
mod readiness;
mod reaper;
mod signals;
mod stop;
mod watch;

use clap::Parser;
use cli::{Cli, Command};
use exit::Outcome;
use tracing::level_filters::LevelFilter;

pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("SUPERVISOR_GIT_COMMIT"),
    ")"
);

fn main() {
    std::process::exit(run());
}

fn run() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // --help and --version print to stdout and succeed; every real error is a usage error.
            let _ = e.print();
            return if e.use_stderr() { exit::USAGE } else { 0 };
        }
    };
    let level = match cli.log_level.as_deref() {
        Some(l) => match logging::parse_level(l) {
            Some(level) => level,
            None => {
                return usage(&format!(
                    "--log-level: invalid level {l:?} (use error, warn, info, debug or trace)"
                ));
            }
        },
        None => std::env::var("RUST_LOG")
            .ok()
            .and_then(|v| logging::parse_level(&v))
            .unwrap_or(LevelFilter::INFO),
    };
    logging::init(level, cli.log_format);
    let outcome = match cli.command {
        Command::Main(a) => match config::MainConfig::from_args(a) {
            Ok(cfg) => {
                logging::set_mode("main");
                modes::main::run(cfg)
            }
            Err(e) => return usage(&e.to_string()),
        },
        Command::Sidecar(a) => match config::SidecarConfig::from_args(a) {
            Ok(cfg) => {
                logging::set_mode("sidecar");
                modes::sidecar::run(cfg)
            }
            Err(e) => return usage(&e.to_string()),
        },
        Command::Probe(a) => match config::ProbeConfig::from_args(a) {
            Ok(cfg) => modes::probe::run(cfg),
            Err(e) => return usage(&e.to_string()),
        },
        Command::Install(a) => modes::install::run(&a.dir),
    };
    exit::code(outcome)
}

fn usage(msg: &str) -> i32 {
    eprintln!("supervisor: error: {msg}");
    exit::code(Outcome::Usage)
}
