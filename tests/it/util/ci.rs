//! The skip policy. A test that cannot run on this machine (no IPv6 loopback, podman or a daemon
//! not installed, not root) says so loudly and returns - except under CI (`CI` set to any
//! non-empty value, as `.ci/run` does), where it fails: a green CI run means every test ran.

use std::path::PathBuf;

/// Whether the tests run under CI.
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// Call when this test cannot run here, then return from it. Under CI this fails the test.
#[track_caller]
pub fn skip(why: &str) {
    if in_ci() {
        panic!("CI is set, so this test must run, but {why}");
    }
    eprintln!(
        "\n=== SKIPPED (CI is not set): {why}\n=== scripts/setup.sh installs what the tests need\n"
    );
}

/// The path of the program `name` (on PATH or in the sbin directories), or None after [`skip`]
/// naming the Debian package that provides it.
#[track_caller]
pub fn tool(name: &str, package: &str) -> Option<PathBuf> {
    let found = which(name);
    if found.is_none() {
        skip(&format!(
            "{name} is not installed (apt-get install {package})"
        ));
    }
    found
}

/// The path of the program `name` on PATH or in /usr/sbin, /sbin.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}
