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
    done: Option<ExitStatus>,
}

/// Starts `cmd` in a new process group with stdout read line by line and stderr collected.
pub fn start(mut cmd: Command) -> Proc {
    let what = format!("{cmd:?}");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // A session of its own: every descendant, even one that re-parented away or moved to a
    // process group of its own, keeps this session id, so cleanup can find it.
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc_setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let out = child.stdout.take().expect("stdout");
    let err = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
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
                    self.kill_group();
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
        // An orphan that escaped the kill may still hold the pipes: read for a bounded time only.
        let end = Instant::now() + Duration::from_secs(5);
        if let Some(rx) = self.stdout_rx.take() {
            while let Ok(l) = rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
                self.stdout_buf.push(l);
            }
        }
        let stderr = match self.stderr_thread.take() {
            Some(t) => {
                while !t.is_finished() && Instant::now() < end {
                    std::thread::sleep(Duration::from_millis(5));
                }
                if t.is_finished() {
                    t.join().unwrap_or_default()
                } else {
                    "<stderr still open: a process escaped>".to_string()
                }
            }
            None => String::new(),
        };
        Outcome {
            what: self.what.clone(),
            status,
            stdout: self.stdout_buf.join("\n"),
            stderr,
        }
    }

    /// SIGKILLs every process of the session this process leads, and every descendant
    /// (children of the supervisor live in process groups of their own).
    pub fn kill_group(&self) {
        let mut all = descendants(self.pid());
        all.extend(session_members(self.pid()));
        all.push(self.pid());
        for pid in all {
            // SAFETY: kill(2) on processes this test started; harmless if they are gone.
            unsafe {
                libc_kill(-pid, 9);
                libc_kill(pid, 9);
            }
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
    #[link_name = "setsid"]
    fn libc_setsid() -> i32;
}

/// Processes whose session id is `sid`.
pub fn session_members(sid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the command name: state ppid pgrp session ...
        let rest: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        if rest.get(3).and_then(|s| s.parse::<i32>().ok()) == Some(sid) {
            out.push(pid);
        }
    }
    out
}

/// Every descendant of `pid` (children, grandchildren, ...), from /proc.
pub fn descendants(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let mut stack = vec![pid];
    while let Some(p) = stack.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let children = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
            for c in children
                .split_whitespace()
                .filter_map(|s| s.parse::<i32>().ok())
            {
                if !out.contains(&c) {
                    out.push(c);
                    stack.push(c);
                }
            }
        }
    }
    out
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

/// A python3 helper that prints `ready`, then one line `got SIGNAME` per signal received (each
/// line one write(2), so several helpers on one pipe never interleave), and
/// exits with code 0 on SIGTERM after printing. Its first argument, if any, is written to a file
/// as its pid.
pub const SIGNAL_ECHO: &str = r#"
import os, signal, sys, time
def h(n, f):
    os.write(1, ("got " + signal.Signals(n).name + "\n").encode())
    if n == signal.SIGTERM and os.environ.get("ECHO_EXIT_ON_TERM", "1") == "1":
        sys.exit(0)
for s in ("SIGHUP", "SIGINT", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGTERM", "SIGWINCH", "SIGCONT", "SIGALRM", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGPWR", "SIGURG"):
    signal.signal(getattr(signal, s), h)
if len(sys.argv) > 1:
    open(sys.argv[1], "w").write(str(os.getpid()))
os.write(1, b"ready\n")
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

// ---- Listeners, ports, namespaces and locks (readiness and lease tests) ----

/// A port that was free a moment ago (for daemons that must be told their port up front).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// True when `cond` holds at every check for the whole of `period` (asserting that something does
/// NOT happen needs a period; this is the only place a test waits without an event).
pub fn stays(period: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + period;
    loop {
        if !cond() {
            return false;
        }
        if Instant::now() >= end {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends `sig` to `pid` (negative: a process group).
pub fn kill(pid: i32, sig: i32) {
    // SAFETY: kill(2) has no memory effects; a stale pid only yields ESRCH.
    unsafe {
        libc_kill(pid, sig);
    }
}

/// The direct children of a process.
pub fn children(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// `supervisor ARGS` as PID 1 of a fresh PID namespace, as in a container: `unshare --fork`
/// makes the supervisor the namespace's init, `--kill-child` kills it if unshare dies (so a
/// failing test's group kill takes the whole namespace down), and when the init dies the kernel
/// kills everything else in the namespace.
pub fn sup_in_pid_ns<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut u = Command::new("unshare");
    u.args([
        "--pid",
        "--fork",
        "--kill-child",
        "--mount-proc",
        "--",
        bin(),
    ]);
    u.args(args);
    sup_env(&mut u);
    u
}

/// The init (PID 1 inside) of the namespace made by an `unshare --fork` process: its child.
pub fn ns_init(unshare: &Proc) -> i32 {
    let mut init = 0;
    assert!(
        wait_until(DEADLINE, || {
            init = children(unshare.pid()).first().copied().unwrap_or(0);
            init != 0
        }),
        "unshare {} never forked its namespace init",
        unshare.pid()
    );
    init
}

/// How many processes are blocked waiting for a lock on `path` (the `->` lines of /proc/locks
/// for its inode): lets a test know a sidecar is already parked on a lease.
pub fn lock_waiters(path: &Path) -> usize {
    use std::os::unix::fs::MetadataExt;
    let Ok(ino) = std::fs::metadata(path).map(|m| m.ino()) else {
        return 0;
    };
    let needle = format!(":{ino} ");
    std::fs::read_to_string("/proc/locks")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("->") && l.contains(&needle))
        .count()
}

/// A python3 listener for readiness tests. `python3 -c PY_LISTEN KIND key=value...`:
/// - `tcp`: binds 127.0.0.1:0 (or `port=`), prints `port N`, then listens (after `delay=` seconds
///   or once the file `go=` exists), writes `flag=` (if given) and prints `listening`;
/// - `closed`: binds a port and never listens (connections are refused), prints `port N`;
/// - `unix`: same as tcp on the unix socket `path=`;
/// - `http`: an HTTP server like tcp that answers GET with 503 for the first `fail=` requests,
///   then 200 (writing `flag=` first), printing `GET PATH CODE`; answers POST with 200 after
///   printing `POST PATH marker=yes|no` (whether the file `marker=` exists at that moment), and
///   exits if PATH is `exit_on=`. `ignore_term=1` ignores SIGTERM. With `code_from_path=1`, GET
///   /NNN answers status NNN (with a Location header pointing at a closed port).
pub const PY_LISTEN: &str = r#"
import os, signal, socket, sys, time
kind = sys.argv[1]
opts = dict(a.split("=", 1) for a in sys.argv[2:])
if opts.get("ignore_term") == "1":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
def say(s):
    print(s, flush=True)
def gate():
    d = float(opts.get("delay", "0"))
    if d:
        time.sleep(d)
    go = opts.get("go")
    if go:
        while not os.path.exists(go):
            time.sleep(0.02)
def flag():
    f = opts.get("flag")
    if f:
        open(f, "w").write(str(time.time()))
def serve(s):
    s.listen(64)
    flag()
    say("listening")
    while True:
        c, _ = s.accept()
        c.close()
port = int(opts.get("port", "0"))
if kind in ("tcp", "closed"):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    say("port %d" % s.getsockname()[1])
    if kind == "closed":
        while True:
            time.sleep(3600)
    gate()
    serve(s)
elif kind == "unix":
    s = socket.socket(socket.AF_UNIX)
    gate()
    s.bind(opts["path"])
    serve(s)
elif kind == "http":
    from http.server import HTTPServer, BaseHTTPRequestHandler
    fail = int(opts.get("fail", "0"))
    gets = [0]
    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass
        def reply(self, code):
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()
            self.wfile.flush()
        def do_GET(self):
            gets[0] += 1
            if opts.get("code_from_path") == "1":
                # GET /302 answers 302, with a Location that leads nowhere.
                code = int(self.path.strip("/"))
                say("GET %s %d" % (self.path, code))
                self.send_response(code)
                self.send_header("Location", "http://127.0.0.1:1/")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if gets[0] <= fail:
                say("GET %s 503" % self.path)
                self.reply(503)
                return
            flag()
            say("GET %s 200" % self.path)
            self.reply(200)
        def do_POST(self):
            m = opts.get("marker")
            say("POST %s marker=%s" % (self.path, "yes" if m and os.path.exists(m) else "no"))
            self.reply(200)
            if self.path == opts.get("exit_on"):
                say("quitting")
                os._exit(0)
    srv = HTTPServer(("127.0.0.1", port), H, bind_and_activate=False)
    srv.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.server_bind()
    say("port %d" % srv.server_address[1])
    gate()
    srv.server_activate()
    say("listening")
    srv.serve_forever()
"#;

/// Argument vector that runs PY_LISTEN.
pub fn py_listen(kind: &str, opts: &[String]) -> Vec<String> {
    let mut v = vec![
        "python3".to_string(),
        "-c".into(),
        PY_LISTEN.into(),
        kind.into(),
    ];
    v.extend(opts.iter().cloned());
    v
}

/// Starts PY_LISTEN directly (not under a supervisor) and returns it with its port (0 for unix).
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
