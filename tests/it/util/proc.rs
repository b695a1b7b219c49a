//! Processes: start one in a session of its own, read its output line by line, signal it, wait
//! for it with a deadline, and kill it with every descendant when the test is done with it.

use super::wait::{DEADLINE, wait_until};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::{Duration, Instant};

/// The stderr read so far, and a bell rung at each new line.
type Shared = Arc<(Mutex<String>, Condvar)>;

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
    stderr_so_far: Shared,
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
    let stderr_so_far: Shared = Arc::new((Mutex::new(String::new()), Condvar::new()));
    let shared = stderr_so_far.clone();
    let stderr_thread = std::thread::spawn(move || {
        let mut reader = BufReader::new(err);
        let mut line = Vec::new();
        while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
            let (text, bell) = &*shared;
            text.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&line));
            bell.notify_all();
            line.clear();
        }
        let _ = reader.read_to_end(&mut line);
        let (text, _) = &*shared;
        text.lock().unwrap().clone()
    });
    Proc {
        child,
        what,
        stdout_rx: Some(rx),
        stdout_buf: Vec::new(),
        stderr_thread: Some(stderr_thread),
        stderr_so_far,
        done: None,
    }
}

/// Runs a command to completion (bounded by DEADLINE).
pub fn run(cmd: Command) -> Outcome {
    start(cmd).finish()
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

    /// Waits until stderr has a line containing `needle` (a log line of the supervisor's).
    pub fn expect_stderr(&mut self, needle: &str, within: Duration) {
        let end = Instant::now() + within;
        let (text, bell) = &*self.stderr_so_far;
        let mut seen = text.lock().unwrap();
        while !seen.contains(needle) {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                drop(seen);
                self.kill_group();
                let o = self.finish_with(DEADLINE);
                panic!("no stderr line containing {needle:?} within {within:?}{o}");
            }
            seen = bell.wait_timeout(seen, left).unwrap().0;
        }
    }

    /// The stdout lines read so far (by `expect_line`), one per line.
    pub fn stdout_so_far(&self) -> String {
        self.stdout_buf.join("\n")
    }

    /// Sends a signal to the process itself (not its group).
    pub fn signal(&self, sig: i32) {
        kill(self.pid(), sig);
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
            kill(-pid, 9);
            kill(pid, 9);
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

/// Sends `sig` to `pid` (negative: a process group).
pub fn kill(pid: i32, sig: i32) {
    // SAFETY: kill(2) has no memory effects; a stale pid only yields ESRCH.
    unsafe {
        libc_kill(pid, sig);
    }
}

#[path = "../../shared/procfs.rs"]
mod procfs;
pub use procfs::{children, stat};

/// Whether a process exists (and is not a zombie).
pub fn alive(pid: i32) -> bool {
    stat(pid).is_some_and(|(state, _)| state != 'Z' && state != 'X')
}

/// Whether a process is stopped (SIGSTOP): state `T`.
pub fn stopped(pid: i32) -> bool {
    stat(pid).is_some_and(|(state, _)| state == 'T')
}

/// Zombies whose parent is `parent`.
pub fn zombies_of(parent: i32) -> usize {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
                .filter(|&p| stat(p) == Some(('Z', parent)))
                .count()
        })
        .unwrap_or(0)
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

/// The first child of `pid`, waited for (with the deadline).
pub fn child_of(pid: i32) -> i32 {
    let mut found = 0;
    assert!(
        wait_until(DEADLINE, || {
            found = children(pid).first().copied().unwrap_or(0);
            found != 0
        }),
        "{pid} never had a child"
    );
    found
}

/// The first child of the first child of `pid`, waited for.
pub fn grandchild(pid: i32) -> i32 {
    child_of(child_of(pid))
}
