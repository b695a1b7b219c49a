//! Integration tests: every test runs the built `supervisor` binary and checks what a user sees.
mod util;
