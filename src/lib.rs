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
//! The library holds every module; `main.rs` only parses, sets up logging, runs a mode and exits
//! with the code `exit` decides. (The split lets the fuzzers in `fuzz/` call the parsers.)

pub mod asyncfd;
pub mod child;
pub mod cli;
pub mod config;
pub mod elf;
pub mod exit;
pub mod http;
pub mod lease;
pub mod logging;
pub mod marker;
pub mod modes;
pub mod readiness;
pub mod reaper;
pub mod signals;
pub mod stop;
pub mod watch;

/// `--version`: the crate version and the git commit it was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("SUPERVISOR_GIT_COMMIT"),
    ")"
);
