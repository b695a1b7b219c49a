//! Integration tests: every test runs the built `supervisor` binary and checks what a user sees.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)] // src/ only: see Cargo.toml [lints]
mod aarch64;
mod answers;
mod both_ways;
mod containers;
mod dind_faults;
mod examples;
mod hardening;
mod install;
mod kube;
mod lease;
mod lifecycle;
mod main_mode;
mod play;
mod readiness;
mod release;
mod sidecar;
mod signals;
mod trust;
mod util;
mod volume;
