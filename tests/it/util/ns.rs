//! The binary under test, run plainly or as the init of a fresh PID namespace, as in a container.
//!
//! `unshare --pid --fork` makes the program PID 1 of a new namespace; `--kill-child` kills it if
//! unshare dies (so a failing test's group kill takes the whole namespace down), and when the
//! init dies the kernel kills everything else in the namespace. Every command gets the clean
//! environment of [`sup`]: no RUST_LOG, no SUPERVISOR_* or Docker variables from the developer's
//! shell.

use super::proc::{Proc, child_of};
use std::ffi::{OsStr, OsString};
use std::process::Command;

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_supervisor")
}

/// A `supervisor` command with the given arguments and a clean environment.
pub fn sup<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut c = Command::new(bin());
    c.args(args);
    c.env_remove("RUST_LOG");
    // The `docker` readiness preset reads these: a test sets them itself when it wants them.
    for var in supervisor::readiness::docker::VARS {
        c.env_remove(var);
    }
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("SUPERVISOR_") {
            c.env_remove(k);
        }
    }
    c
}

/// Gives `c` the clean environment of [`sup`] (no RUST_LOG, no SUPERVISOR_*), for commands that
/// run the supervisor through a wrapper (unshare, sh).
pub fn sup_env(c: &mut Command) -> &mut Command {
    for (k, v) in sup(Vec::<String>::new()).get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    c
}

/// `unshare FLAGS --pid --fork --kill-child -- PROGRAM ARGS`, with the clean environment of
/// [`sup`] plus `SUP` (the binary under test) for scripts.
pub fn in_ns<I, S>(flags: &[&str], program: &str, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut c = Command::new("unshare");
    c.args(flags)
        .args(["--pid", "--fork", "--kill-child", "--", program])
        .args(args);
    sup_env(&mut c);
    c.env("SUP", bin());
    c
}

/// The supervisor as PID 1 of its own namespace, as in a container.
pub fn sup_ns<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    in_ns(&[], bin(), args)
}

/// The supervisor as PID 1 of its own namespace with its own /proc (`--mount-proc`), so that
/// what it and its children read in /proc is the namespace's.
pub fn sup_in_pid_ns<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    in_ns(&["--mount-proc"], bin(), args)
}

/// A shell script as PID 1 of its own namespace (plus FLAGS, e.g. `--mount`). `$SUP` is the binary.
pub fn sh_ns(flags: &[&str], script: &str) -> Command {
    in_ns(flags, "sh", ["-c", script])
}

/// The supervisor as an ordinary process (a child subreaper, not PID 1) under a shell that is PID
/// 1 of a fresh namespace. Its host pid is `grandchild` of the returned process.
pub fn sup_under_init<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    // `; exit $?` keeps the shell from exec'ing the supervisor in its place.
    let mut v: Vec<OsString> = vec!["-c".into(), r#""$0" "$@"; exit $?"#.into(), bin().into()];
    v.extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
    in_ns(&[], "sh", v)
}

/// The init (PID 1 inside) of the namespace made by an `unshare --fork` process: its child.
pub fn ns_init(unshare: &Proc) -> i32 {
    child_of(unshare.pid())
}
