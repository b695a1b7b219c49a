//! Hostile input for the built `kubectl-supervise`: YAML bombs, deep nesting, huge files,
//! inputs that never end, a directory. Each must end within a deadline, under a real memory
//! limit (the child runs with `ulimit -v`), with exit 2, one line on stderr naming the
//! problem, and nothing on stdout; what is big but legitimate must still go through.

// Test helpers may unwrap: a failure is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The address space the child may use: far less than the bombs would take, far more than
/// the largest input the reader takes needs.
const MEMORY_KIB: u64 = 1024 * 1024;
/// Not a speed target: a run that has not ended by then never would.
const DEADLINE: Duration = Duration::from_secs(120);

fn attack(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/attacks")
        .join(name)
}

/// Where a run reads its input from.
enum Input {
    File(PathBuf),
    /// stdin fed by a thread that writes this forever (until the reader is gone).
    Endless(&'static [u8]),
    /// A FIFO given with -f, fed forever by a thread.
    Fifo(&'static [u8]),
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cut = |s: &str| s.chars().take(2000).collect::<String>();
        write!(
            f,
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code,
            cut(&self.stdout),
            cut(&self.stderr)
        )
    }
}

/// Writes `chunk` to `w` until the reader goes away.
fn feed(mut w: impl Write + Send + 'static, chunk: &'static [u8]) {
    std::thread::spawn(move || while w.write_all(chunk).is_ok() {});
}

fn wait(mut child: Child) -> Run {
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stdout.read_to_end(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stderr.read_to_end(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running after {DEADLINE:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = |v: Vec<u8>| String::from_utf8_lossy(&v).into_owned();
    Run {
        code: status.code(),
        stdout: text(out.join().expect("stdout reader")),
        stderr: text(err.join().expect("stderr reader")),
    }
}

/// Runs `kubectl-supervise ARGS` on `input` under the memory limit.
fn run(args: &[&str], input: Input) -> Run {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("ulimit -v {MEMORY_KIB} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_kubectl-supervise"))
        .args(args)
        .env_remove("KUBECTL_SUPERVISE_IMAGE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let dir = tempfile::tempdir().expect("tempdir");
    match &input {
        Input::File(p) => {
            cmd.arg("-f").arg(p).stdin(Stdio::null());
        }
        Input::Endless(_) => {
            cmd.stdin(Stdio::piped());
        }
        Input::Fifo(chunk) => {
            let fifo = dir.path().join("fifo");
            nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
                .expect("mkfifo");
            cmd.arg("-f").arg(&fifo).stdin(Stdio::null());
            let chunk: &'static [u8] = chunk;
            std::thread::spawn(move || {
                // Opening blocks until the reader opens its end.
                if let Ok(w) = std::fs::OpenOptions::new().write(true).open(&fifo) {
                    feed(w, chunk);
                }
            });
        }
    }
    let mut child = cmd.spawn().expect("spawn kubectl-supervise");
    if let Input::Endless(chunk) = input {
        feed(child.stdin.take().expect("stdin"), chunk);
    }
    wait(child)
}

/// Bad input: exit 2, one line on stderr containing `needle`, nothing on stdout.
fn refused(r: &Run, needle: &str) {
    assert_eq!(r.code, Some(2), "{r}");
    assert!(r.stdout.is_empty(), "{r}");
    assert_eq!(r.stderr.lines().count(), 1, "not one line: {r}");
    assert!(r.stderr.contains(needle), "no {needle:?}: {r}");
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

#[test]
fn yaml_bombs_are_refused() {
    for file in ["nested-aliases.yaml", "nested-aliases-10.yaml"] {
        for cmd in ["inject", "check"] {
            let r = run(&[cmd], Input::File(attack(file)));
            refused(&r, "aliases");
        }
    }
}

#[test]
fn deep_nesting_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = 100_000;
    let flow = write(
        dir.path(),
        "flow.yaml",
        &format!("{}{}", "[".repeat(n), "]".repeat(n)),
    );
    let block: String = (0..2_000)
        .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
        .collect();
    let block = write(dir.path(), "block.yaml", &block);
    for cmd in ["inject", "check"] {
        refused(
            &run(&[cmd], Input::File(block.clone())),
            "nested deeper than 100 levels",
        );
        // The parser's own bound on flow nesting comes first there (256 levels).
        let r = run(&[cmd], Input::File(flow.clone()));
        refused(&r, "invalid YAML: recursion limit exceeded");
    }
    // Within the parser's bound, still deeper than ours.
    let flow = write(
        dir.path(),
        "flow-200.yaml",
        &format!("{}{}", "[".repeat(200), "]".repeat(200)),
    );
    refused(
        &run(&["check"], Input::File(flow)),
        "nested deeper than 100 levels",
    );
}

#[test]
fn inputs_too_large_are_refused_while_reading() {
    let dir = tempfile::tempdir().expect("tempdir");
    let huge = write(
        dir.path(),
        "huge.yaml",
        &format!("a: \"{}\"\n", "x".repeat(20 << 20)),
    );
    for cmd in ["inject", "check"] {
        refused(&run(&[cmd], Input::File(huge.clone())), "larger than");
        // 1 GiB and more: read only up to the limit.
        let zero = run(&[cmd], Input::File("/dev/zero".into()));
        refused(&zero, "/dev/zero: larger than");
        let endless = run(&[cmd], Input::Endless(b"- a\n"));
        refused(&endless, "stdin: larger than");
        let fifo = run(&[cmd], Input::Fifo(b"a: b\n"));
        refused(&fifo, "larger than");
    }
}

#[test]
fn a_directory_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    for cmd in ["inject", "check"] {
        let r = run(&[cmd], Input::File(dir.path().to_path_buf()));
        refused(&r, "is a directory");
    }
}

#[test]
fn wide_inputs_stay_linear() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Half a million keys in one mapping: a quadratic duplicate check never ends.
    let keys: String = (0..500_000).map(|i| format!("  k{i}: v\n")).collect();
    let keys = write(dir.path(), "keys.yaml", &format!("data:\n{keys}"));
    for cmd in ["inject", "check"] {
        let r = run(&[cmd], Input::File(keys.clone()));
        assert_eq!(r.code, Some(0), "{r}");
    }
    let dup = write(dir.path(), "dup.yaml", "a: 1\nb: 2\na: 3\n");
    refused(
        &run(&["check"], Input::File(dup)),
        "duplicate key \"a\" at line 3",
    );
}

#[test]
fn big_legitimate_input_goes_through() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A ConfigMap with a 6 MiB value beside a pod: passed through, the pod wired.
    let text = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n  blob: \"{}\"\n---\n{}",
        "x".repeat(6 << 20),
        std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/unwired/demo-pod.yaml")
        )
        .expect("example")
    );
    let file = write(dir.path(), "big.yaml", &text);
    let r = run(&["inject", "--main", "job"], Input::File(file.clone()));
    assert_eq!(r.code, Some(0), "{r}");
    assert!(r.stdout.contains("supervisor/bin/supervisor"), "not wired");
    // Anchors used as people use them are expanded.
    let anchors = write(
        dir.path(),
        "anchors.yaml",
        "x-env: &env\n  - {name: A, value: \"1\"}\nitems:\n  - env: *env\n  - env: *env\n",
    );
    let r = run(&["check"], Input::File(anchors));
    assert_eq!(r.code, Some(0), "{r}");
}
