//! `supervisor`: PID 1 for the containers of a Kubernetes pod.
//!
//! Theory of operation: the main container runs `supervisor main`, which runs the job as a child
//! in its own process group, reaps zombies, forwards signals and, however the job ends, writes an
//! atomic JSON done-marker on the volume the pod shares. While it lives it holds a kernel lock on a
//! lease file beside the marker. Each sidecar runs `supervisor sidecar`, which runs its daemon and
//! watches for the marker (a directory watch: dnotify, inotify where dnotify is off, polling where
//! neither works) and, in a helper thread blocked in a shared flock, for the lease's release; when
//! the main is done or gone it stops the daemon (signal once or quit URL, grace, SIGKILL) and
//! exits 0, so the pod completes. A sidecar with `--done-file` leaves a marker and a lease of its
//! own, which a main with `--requires` (or another sidecar) watches the same way: death travels
//! both ways.
//!
//! The module map, from policy to mechanism (arrows never point back):
//! - `main.rs` parses ([`config`], over the one option table of [`cli`]), sets up [`logging`],
//!   runs a mode and exits with the code [`exit`] decides.
//! - [`modes`]: each supervising mode is a pure policy (state + input → actions) and a thin
//!   recipe; one [`modes::driver`] runs every mode against its effects. The policy decides how the
//!   run ends ([`ending`]); [`stop`] is the one stop lifecycle they share.
//! - [`events`]: the one stream a mode reads, over one epoll descriptor ([`evloop`]): [`signals`],
//!   the [`reaper`], [`peers`] (other containers' [`marker`]s and [`lease`]s, through [`watch`]),
//!   readiness ([`readiness`]: targets, non-blocking attempts over [`http`], the pure gate),
//!   quit calls ([`quit`]), timers.
//! - Mechanism: [`child`] (spawn, signal the group), [`fsutil`] (files on a shared volume),
//!   [`termlog`], [`clock`], [`presets`], [`elf`].
//!
//! (The library split lets the fuzzers in `fuzz/` and `kubectl-supervise` call the parsers.)

pub mod child;
pub mod cli;
pub mod clock;
pub mod config;
pub mod elf;
pub mod ending;
pub mod events;
pub mod evloop;
pub mod exit;
pub mod fsutil;
pub mod http;
pub mod lease;
pub mod logging;
pub mod marker;
pub mod modes;
pub mod peers;
pub mod presets;
pub mod readiness;
pub mod reaper;
pub mod signals;
pub mod stop;
pub mod termlog;
pub mod watch;

/// `--version` of both binaries: the crate version, the git commit and the target triple it was
/// built for (`0.2.0 (42a158791107, aarch64-unknown-linux-musl)`), all fixed at compile time.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("SV_BUILD_COMMIT"),
    ", ",
    env!("SV_BUILD_TARGET"),
    ")"
);
