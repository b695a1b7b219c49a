//! `supervisor`: see the library's documentation (src/lib.rs) for the theory of operation.

use clap::Parser;
use supervisor::cli::{Cli, Command};
use supervisor::exit::Outcome;
use supervisor::{config, exit, logging, modes};
use tracing::level_filters::LevelFilter;

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
        Command::Install(a) => modes::install::run(&a.dir, a.allow_dynamic),
    };
    exit::code(outcome)
}

fn usage(msg: &str) -> i32 {
    eprintln!("supervisor: error: {msg}");
    exit::code(Outcome::Usage)
}
