//! Integration tests: every test runs the built `supervisor` binary and checks what a user sees.
mod containers;
mod examples;
mod hardening;
mod install;
mod lease;
mod main_mode;
mod readiness;
mod sidecar;
mod util;
