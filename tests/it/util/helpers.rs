//! The helper programs tests run, kept as files in `tests/it/helpers/` (readable, lintable,
//! runnable by hand), and the listeners readiness tests talk to.

use super::proc::{Proc, start};
use super::wait::DEADLINE;
use std::path::PathBuf;
use std::process::Command;

/// The path of a helper program in tests/it/helpers/.
pub fn helper(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/helpers")
        .join(name);
    assert!(p.is_file(), "no helper program {}", p.display());
    p
}

/// The argument vector that runs a Python helper with `args`.
pub fn python(name: &str, args: &[&str]) -> Vec<String> {
    let mut v = vec!["python3".to_string(), helper_str(name)];
    v.extend(args.iter().map(|a| a.to_string()));
    v
}

/// [`helper`] as a string, for shell scripts and argument vectors.
pub fn helper_str(name: &str) -> String {
    helper(name).to_str().expect("utf-8 path").to_string()
}

/// Argument vector of signal_echo.py: prints `ready`, then `got SIGNAME` for each signal it gets,
/// and exits 0 on SIGTERM.
pub fn signal_echo() -> Vec<String> {
    python("signal_echo.py", &[])
}

/// Argument vector of listen.py (see that file for KIND and the options).
pub fn py_listen(kind: &str, opts: &[String]) -> Vec<String> {
    let mut v = python("listen.py", &[kind]);
    v.extend(opts.iter().cloned());
    v
}

/// Starts listen.py directly (not under a supervisor) and returns it with its port (0 for unix).
/// Unless it was told to listen late (`delay=`, `go=`), it is listening when this returns.
pub fn listener(kind: &str, opts: &[String]) -> (Proc, u16) {
    let argv = py_listen(kind, opts);
    let mut c = Command::new(&argv[0]);
    c.args(&argv[1..]);
    let mut p = start(c);
    let port = if kind == "unix" {
        0
    } else {
        let line = p.expect_line("port ", DEADLINE);
        line.trim_start_matches("port ")
            .trim()
            .parse()
            .expect("port number")
    };
    let late = opts
        .iter()
        .any(|o| o.starts_with("delay=") || o.starts_with("go="));
    if kind != "closed" && !late {
        p.expect_line("listening", DEADLINE);
    }
    (p, port)
}

/// A port that was free a moment ago (for daemons that must be told their port up front).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}
