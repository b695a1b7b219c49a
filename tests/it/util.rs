//! Shared helpers for the integration tests: run the built binary, wait on conditions with
//! deadlines (never bare sleeps), and never leave a process behind.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_supervisor")
}

/// A `supervisor` command with the given arguments, its stdio captured.
pub fn sup<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut c = Command::new(bin());
    c.args(args);
    c.env_remove("RUST_LOG");
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("SUPERVISOR_") {
            c.env_remove(k);
        }
    }
    c
}

/// How long any single test step may take before the test fails instead of hanging.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Polls `cond` every few milliseconds until it holds or `within` passes.
pub fn wait_until(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The result of a finished command, printable in full when an assertion fails.
pub struct Outcome {
    pub what: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "\n--- command: {}\n--- status: {:?} (signal {:?})\n--- stdout:\n{}\n--- stderr:\n{}\n",
            self.what,
            self.status.code(),
            self.status.signal(),
            self.stdout,
            self.stderr
        )
    }
}

impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// A running process in its own process group; killed (the whole group) on drop, so a failing
/// test leaves nothing behind.
pub struct Proc {
    pub child: Child,
    pub what: String,
    stdout_rx: Option<mpsc::Receiver<String>>,
    stdout_buf: Vec<String>,
    stderr_thread: Option<std::thread::JoinHandle<String>>,
    stdout_thread: Option<std::thread::JoinHandle<()>>,
    done: Option<ExitStatus>,
}

/// Starts `cmd` in a new process group with stdout read line by line and stderr collected.
pub fn start(mut cmd: Command) -> Proc {
    let what = format!("{cmd:?}");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let out = child.stdout.take().expect("stdout");
    let err = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    let stdout_thread = std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            match line {
                Ok(l) => {
                    if tx.send(l).is_err() {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
    });
    let stderr_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = BufReader::new(err).read_to_string(&mut s);
        s
    });
    Proc {
        child,
        what,
        stdout_rx: Some(rx),
        stdout_buf: Vec::new(),
        stderr_thread: Some(stderr_thread),
        stdout_thread: Some(stdout_thread),
        done: None,
    }
}

impl Proc {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Waits for a stdout line containing `needle` (the handshake of helper children).
    pub fn expect_line(&mut self, needle: &str, within: Duration) -> String {
        let end = Instant::now() + within;
        let rx = self.stdout_rx.as_ref().expect("stdout reader");
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) => {
                    self.stdout_buf.push(l.clone());
                    if l.contains(needle) {
                        return l;
                    }
                }
                Err(_) => {
                    let _ = self.child.kill();
                    let o = self.finish_with(DEADLINE);
                    panic!("no stdout line containing {needle:?} within {within:?}{o}");
                }
            }
        }
    }

    /// Sends a signal to the process itself (not its group).
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped).
        unsafe {
            libc_kill(self.pid(), sig);
        }
    }

    /// Waits for exit within `within`; None if still running.
    pub fn wait_timeout(&mut self, within: Duration) -> Option<ExitStatus> {
        if let Some(s) = self.done {
            return Some(s);
        }
        let end = Instant::now() + within;
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                self.done = Some(s);
                return Some(s);
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Waits for exit (failing the test after `within`) and collects all output.
    pub fn finish_with(&mut self, within: Duration) -> Outcome {
        let status = match self.wait_timeout(within) {
            Some(s) => s,
            None => {
                self.kill_group();
                let s = self.child.wait().expect("wait");
                self.done = Some(s);
                let o = self.collect(s);
                panic!("still running after {within:?}; killed it{o}");
            }
        };
        self.collect(status)
    }

    pub fn finish(&mut self) -> Outcome {
        self.finish_with(DEADLINE)
    }

    fn collect(&mut self, status: ExitStatus) -> Outcome {
        // Children of the process may still hold the pipes; the group kill in Drop ends them, but
        // to read output now we kill leftovers of the group first.
        self.kill_group();
        if let Some(t) = self.stdout_thread.take() {
            let _ = t.join();
        }
        if let Some(rx) = self.stdout_rx.take() {
            self.stdout_buf.extend(rx.try_iter());
        }
        let stderr = self
            .stderr_thread
            .take()
            .map(|t| t.join().unwrap_or_default())
            .unwrap_or_default();
        Outcome {
            what: self.what.clone(),
            status,
            stdout: self.stdout_buf.join("\n"),
            stderr,
        }
    }

    pub fn kill_group(&self) {
        // SAFETY: kill(2) on our own process group id; harmless if it is gone.
        unsafe {
            libc_kill(-self.pid(), 9);
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.done.is_none() {
            self.kill_group();
            let _ = self.child.kill();
            let _ = self.child.wait();
        } else {
            self.kill_group();
        }
    }
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

/// Runs a command to completion (bounded by DEADLINE).
pub fn run(cmd: Command) -> Outcome {
    start(cmd).finish()
}

/// Whether a process exists (and is not a zombie).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            // The state follows the last ')' (the command name may contain spaces or parens).
            let state = s.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        }
        Err(_) => false,
    }
}

/// A fresh temporary directory, removed on drop.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("supervisor-it-")
        .tempdir()
        .expect("tempdir")
}

/// Reads a JSON file into a serde_json::Value, failing the test with the text on error.
pub fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?} is not JSON ({e}): {text}"))
}

/// A python3 helper that prints `ready`, then one line `got SIGNAME` per signal received, and
/// exits with code 0 on SIGTERM after printing. Its first argument, if any, is written to a file
/// as its pid.
pub const SIGNAL_ECHO: &str = r#"
import os, signal, sys, time
def h(n, f):
    print("got " + signal.Signals(n).name, flush=True)
    if n == signal.SIGTERM and os.environ.get("ECHO_EXIT_ON_TERM", "1") == "1":
        sys.exit(0)
for s in ("SIGHUP", "SIGINT", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGTERM", "SIGWINCH", "SIGCONT", "SIGALRM", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGPWR", "SIGURG"):
    signal.signal(getattr(signal, s), h)
if len(sys.argv) > 1:
    open(sys.argv[1], "w").write(str(os.getpid()))
print("ready", flush=True)
while True:
    time.sleep(3600)
"#;

/// Argument vector that runs SIGNAL_ECHO.
pub fn signal_echo() -> Vec<String> {
    vec!["python3".into(), "-c".into(), SIGNAL_ECHO.into()]
}

pub fn path_str(p: &Path) -> String {
    p.to_str().expect("utf-8 path").to_string()
}

pub fn join(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}
