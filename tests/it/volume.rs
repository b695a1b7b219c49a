//! Nothing on the shared volume can hang or redirect the supervisor (issue 22, item 4).
//!
//! Every path the supervisor opens - its marker, its lease, its ready file, the termination log,
//! `install`'s target, and the other containers' markers and leases it reads - is tried with each
//! thing a hostile container (or a careless one) can leave where a file was expected: a FIFO
//! with and without a reader, a listening unix socket, device nodes, a directory, and a symlink to
//! each of those. Whatever is there, the supervisor never blocks, says so in one warning line
//! naming the path, keeps its exit code, loses nothing else, and never writes through a link.
//! Then the marker's directory itself is swapped while the command runs: the marker lands in the
//! directory that was there at the start, or nowhere, never in the symlink's target.
//!
//! Each run is bounded (a hang fails the test with the output so far) and runs as the init of a
//! PID namespace of its own, so a hung supervisor cannot outlive its test.

use crate::util::{
    DEADLINE, Outcome, Proc, bin, helper_str, mkdir, path_str as s, read_json, start, sup_env,
    sup_ns, tempdir, wait_until,
};
use nix::sys::stat::{Mode, SFlag, makedev, mknod};
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A supervisor run that blocks is killed after this and fails its test.
const BOUND: Duration = DEADLINE;

// ---- what can be where a file was expected ----

/// One thing that can sit at a path: how to make it, and what the supervisor must call it.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Thing {
    Fifo,
    /// A FIFO some process holds open for reading: an open for writing no longer fails at once.
    FifoWithReader,
    /// A bound, listening unix socket.
    Socket,
    /// Device nodes made on the volume (mknod): /dev/null's, /dev/zero's, /dev/tty's numbers.
    DevNull,
    DevZero,
    DevTty,
    /// A directory with a file in it.
    Dir,
    /// A symlink to one of these, elsewhere (outside the volume).
    LinkTo(Target),
}

/// What a planted symlink points at.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Target {
    File,
    Fifo,
    FifoWithReader,
    Socket,
    DevNull,
    DevZero,
    Terminal,
    Dir,
}

const THINGS: [Thing; 15] = [
    Thing::Fifo,
    Thing::FifoWithReader,
    Thing::Socket,
    Thing::DevNull,
    Thing::DevZero,
    Thing::DevTty,
    Thing::Dir,
    Thing::LinkTo(Target::File),
    Thing::LinkTo(Target::Fifo),
    Thing::LinkTo(Target::FifoWithReader),
    Thing::LinkTo(Target::Socket),
    Thing::LinkTo(Target::DevNull),
    Thing::LinkTo(Target::DevZero),
    Thing::LinkTo(Target::Terminal),
    Thing::LinkTo(Target::Dir),
];

impl Thing {
    /// How the supervisor names it in its warning (it looks at the entry, never through it).
    fn called(self) -> &'static str {
        match self {
            Thing::Fifo | Thing::FifoWithReader => "a FIFO",
            Thing::Socket => "a socket",
            Thing::DevNull | Thing::DevZero | Thing::DevTty => "a character device",
            Thing::Dir => "a directory",
            Thing::LinkTo(_) => "a symlink",
        }
    }
}

/// Everything a planted thing needs to stay what it is (a FIFO's reader, a listening socket),
/// and the symlink targets whose state is checked afterwards.
struct Elsewhere {
    dir: PathBuf,
    terminal: Terminal,
    keep: Vec<Box<dyn std::any::Any>>,
}

/// A pseudo-terminal: the supervisor may be pointed at its slave; whatever is written there can
/// be read on the master.
struct Terminal {
    master: OwnedFd,
    _slave: OwnedFd,
    path: PathBuf,
}

impl Terminal {
    fn new() -> Terminal {
        let pty = nix::pty::openpty(None, None).expect("openpty");
        let path = nix::unistd::ttyname(pty.slave.as_fd()).expect("ttyname");
        // Non-blocking, so that "nothing was written" is a read that finds nothing.
        let flags =
            nix::fcntl::fcntl(pty.master.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFL).unwrap();
        let flags = nix::fcntl::OFlag::from_bits_retain(flags) | nix::fcntl::OFlag::O_NONBLOCK;
        nix::fcntl::fcntl(pty.master.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(flags)).unwrap();
        Terminal {
            master: pty.master,
            _slave: pty.slave,
            path,
        }
    }

    /// What arrived on the terminal since the last look.
    fn written(&self) -> Vec<u8> {
        let mut buf = [0u8; 4096];
        match nix::unistd::read(self.master.as_raw_fd(), &mut buf) {
            Ok(n) => buf[..n].to_vec(),
            Err(_) => Vec::new(),
        }
    }
}

impl Elsewhere {
    /// The symlink targets, outside the volume.
    fn new(dir: &Path) -> Elsewhere {
        let dir = mkdir(dir);
        let mut e = Elsewhere {
            dir: dir.clone(),
            terminal: Terminal::new(),
            keep: Vec::new(),
        };
        std::fs::write(dir.join("file"), "victim\n").unwrap();
        mkdir(&dir.join("dir"));
        std::fs::write(dir.join("dir/keep"), "x").unwrap();
        e.plant(&dir.join("fifo"), Thing::Fifo);
        e.plant(&dir.join("held-fifo"), Thing::FifoWithReader);
        e.plant(&dir.join("sock"), Thing::Socket);
        e
    }

    fn target(&self, t: Target) -> PathBuf {
        match t {
            Target::File => self.dir.join("file"),
            Target::Fifo => self.dir.join("fifo"),
            Target::FifoWithReader => self.dir.join("held-fifo"),
            Target::Socket => self.dir.join("sock"),
            Target::DevNull => PathBuf::from("/dev/null"),
            Target::DevZero => PathBuf::from("/dev/zero"),
            Target::Terminal => self.terminal.path.clone(),
            Target::Dir => self.dir.join("dir"),
        }
    }

    /// Makes `thing` at `path`.
    fn plant(&mut self, path: &Path, thing: Thing) {
        match thing {
            Thing::LinkTo(t) => std::os::unix::fs::symlink(self.target(t), path).unwrap(),
            _ => {
                if let Some(k) = make(path, thing) {
                    self.keep.push(k);
                }
            }
        }
    }

    /// Fails the test unless every symlink target is as it was made: nothing written through a
    /// link, nothing created in a linked directory, nothing removed.
    fn assert_untouched(&self, what: &str) {
        let text = std::fs::read_to_string(self.dir.join("file")).unwrap();
        assert_eq!(text, "victim\n", "{what}: written through a symlink");
        let mut names: Vec<String> = std::fs::read_dir(self.dir.join("dir"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["keep"],
            "{what}: a file appeared in a linked directory"
        );
        for (name, is) in [("fifo", "fifo"), ("held-fifo", "fifo"), ("sock", "socket")] {
            let t = std::fs::symlink_metadata(self.dir.join(name))
                .unwrap_or_else(|e| panic!("{what}: {name} is gone: {e}"))
                .file_type();
            let ok = if is == "fifo" {
                t.is_fifo()
            } else {
                t.is_socket()
            };
            assert!(ok, "{what}: {name} was replaced");
        }
        let w = self.terminal.written();
        assert!(
            w.is_empty(),
            "{what}: written to a terminal: {:?}",
            String::from_utf8_lossy(&w)
        );
    }
}

/// Makes `thing` (not a symlink) at `path`; returns what keeps it what it is (a FIFO's reader, a
/// listening socket).
fn make(path: &Path, thing: Thing) -> Option<Box<dyn std::any::Any>> {
    let dev = |major, minor| {
        mknod(
            path,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            makedev(major, minor),
        )
        .unwrap_or_else(|e| panic!("mknod {}: {e}", path.display()))
    };
    let fifo = || nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o666)).unwrap();
    match thing {
        Thing::Fifo => fifo(),
        Thing::FifoWithReader => {
            fifo();
            let reader = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(nix::libc::O_NONBLOCK)
                .open(path)
                .unwrap();
            return Some(Box::new(reader));
        }
        Thing::Socket => return Some(Box::new(UnixListener::bind(path).unwrap())),
        Thing::DevNull => dev(1, 3),
        Thing::DevZero => dev(1, 5),
        Thing::DevTty => dev(5, 0),
        Thing::Dir => {
            mkdir(path);
            std::fs::write(path.join("keep"), "x").unwrap();
        }
        Thing::LinkTo(t) => panic!("a link to {t:?} needs its target: Elsewhere::plant"),
    }
    None
}

// ---- checks ----

/// The stderr lines at WARN level that name `path`, but for the run's closing line (at WARN when
/// the code is not 0, and naming the marker it wrote).
fn warnings_naming(o: &Outcome, path: &Path) -> Vec<String> {
    let p = s(path);
    o.stderr
        .lines()
        .filter(|l| l.contains(" WARN ") && l.contains(&p) && !l.contains("; marker written to"))
        .map(str::to_string)
        .collect()
}

/// Exactly one warning names `path`, and it says what is there.
fn assert_one_warning(o: &Outcome, path: &Path, thing: Thing, what: &str) {
    let w = warnings_naming(o, path);
    assert_eq!(w.len(), 1, "{what}: want one warning naming the path{o}");
    assert!(
        w[0].contains(thing.called()),
        "{what}: the warning must say {:?}{o}",
        thing.called()
    );
}

/// No error line names `path`: what was in the way is no failure.
fn assert_no_error_naming(o: &Outcome, path: &Path, what: &str) {
    let p = s(path);
    assert!(
        !o.stderr
            .lines()
            .any(|l| l.contains(" ERROR ") && l.contains(&p)),
        "{what}: an error names the path{o}"
    );
}

fn is_regular(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_file())
}

/// Runs a supervisor as the init of its own PID namespace, killed after [`BOUND`].
fn bounded(args: &[&str]) -> Outcome {
    start(sup_ns(args)).finish_with(BOUND)
}

// ---- the termination log ----

/// The termination log is written on every way out: a run that ends, a start that is refused, a
/// usage error. Whatever sits at the path (or is the path: /dev/null, a terminal), nothing
/// blocks, one warning names it, the exit code and the marker are those of the run.
#[test]
fn a_termination_log_that_is_not_a_regular_file_never_blocks_and_costs_one_warning() {
    let t = tempdir();
    let mut e = Elsewhere::new(&t.path().join("elsewhere"));
    let mut cases: Vec<(String, PathBuf, Thing)> = Vec::new();
    for (i, thing) in THINGS.iter().enumerate() {
        let p = t.path().join(format!("log{i}"));
        e.plant(&p, *thing);
        cases.push((format!("{thing:?}"), p, *thing));
    }
    // The path itself a device: what a user may type.
    for target in [Target::DevNull, Target::DevZero, Target::Terminal] {
        let thing = Thing::DevNull; // any device: "a character device"
        cases.push((format!("{target:?} itself"), e.target(target), thing));
    }
    let vol = mkdir(&t.path().join("vol"));
    let in_the_way = mkdir(&vol.join("in-the-way"));
    for (name, log, thing) in &cases {
        let log_s = s(log);
        for (mode, code) in [("main", 3), ("sidecar", 4)] {
            let what = format!("{mode}, termination log {name}");
            let done = vol.join(format!("{mode}.done"));
            let _ = std::fs::remove_file(&done);
            let script = format!("exit {code}");
            let o = bounded(&[
                mode,
                "--done-file",
                &s(&done),
                "--termination-log",
                &log_s,
                "--",
                "sh",
                "-c",
                &script,
            ]);
            assert_eq!(o.code(), Some(code), "{what}{o}");
            assert_one_warning(&o, log, *thing, &what);
            assert_eq!(read_json(&done)["exit_code"], code, "{what}: the marker");
        }
        // A refused start (the marker path is a directory) writes the termination log too.
        let what = format!("refused start, termination log {name}");
        let o = bounded(&[
            "main",
            "--done-file",
            &s(&in_the_way),
            "--termination-log",
            &log_s,
            "--",
            "true",
        ]);
        assert_eq!(o.code(), Some(125), "{what}{o}");
        assert_one_warning(&o, log, *thing, &what);
        // So does a usage error (before logging is set up: a plain line on stderr).
        let what = format!("usage error, termination log {name}");
        let o = bounded(&[
            "main",
            "--termination-log",
            &log_s,
            "--grace=soon",
            "--",
            "true",
        ]);
        assert_eq!(o.code(), Some(2), "{what}{o}");
        let said: Vec<&str> = o
            .stderr
            .lines()
            .filter(|l| l.contains(&format!("could not write the termination message {log_s}")))
            .collect();
        assert_eq!(said.len(), 1, "{what}: want one warning{o}");
        assert!(said[0].contains(thing.called()), "{what}{o}");
    }
    e.assert_untouched("termination logs");
}

/// The kubelet's /dev/termination-log, used by default and for usage errors: in a mount namespace
/// whose /dev is an overlay (the host's /dev untouched), each thing in turn at that path.
#[test]
fn the_default_termination_log_is_held_to_the_same_rules_even_for_usage_errors() {
    let t = tempdir();
    let e = Elsewhere::new(&t.path().join("elsewhere"));
    let cases = [
        (Thing::Fifo, false),
        (Thing::Fifo, true),
        (Thing::Socket, false),
        (Thing::Dir, false),
        (Thing::LinkTo(Target::DevNull), false),
        // (Not a terminal: /dev/pts is not seen through the overlay.)
        (Thing::LinkTo(Target::Fifo), false),
    ];
    for (i, (thing, held)) in cases.into_iter().enumerate() {
        let what = format!(
            "/dev/termination-log: {thing:?}{}",
            if held { ", held open" } else { "" }
        );
        let upper = mkdir(&t.path().join(format!("upper{i}")));
        let work = mkdir(&t.path().join(format!("work{i}")));
        let log = upper.join("termination-log");
        // Kept for the loop: a socket stays bound. A FIFO's reader is the helper's (HOLD): the
        // overlay's FIFO is not the upper directory's.
        let _keep = match thing {
            Thing::LinkTo(target) => {
                std::os::unix::fs::symlink(e.target(target), &log).unwrap();
                None
            }
            _ => make(&log, thing),
        };
        for (args, code) in [
            (vec!["main", "--grace=soon", "--", "true"], 2),
            (vec!["main", "--", "sh", "-c", "exit 3"], 3),
        ] {
            let mut c = Command::new("unshare");
            c.args(["--mount", "--pid", "--fork", "--kill-child", "--", "sh"])
                .arg(helper_str("dev_overlay.sh"))
                .args([s(&upper), s(&work)])
                .env("HOLD", if held { "1" } else { "" })
                .arg(bin())
                .args(&args);
            sup_env(&mut c);
            let o = start(c).finish_with(BOUND);
            let what = format!("{what}, {args:?}");
            assert_eq!(o.code(), Some(code), "{what}{o}");
            let warned: Vec<&str> = o
                .stderr
                .lines()
                .filter(|l| {
                    l.contains("could not write the termination message /dev/termination-log")
                })
                .collect();
            assert_eq!(warned.len(), 1, "{what}: want one warning{o}");
            assert!(warned[0].contains(thing.called()), "{what}{o}");
        }
    }
    e.assert_untouched("/dev/termination-log");
    assert!(
        !Path::new("/dev/termination-log").exists(),
        "the host's /dev was touched"
    );
}

// ---- the files a supervisor writes ----

/// Which of its own files a supervisor finds something in the way of.
#[derive(Clone, Copy, Debug)]
enum Own {
    MainMarker,
    MainLease,
    SidecarMarker,
    SidecarLease,
    ReadyFile,
    Install,
}

/// A run of a supervisor whose file `own` (in `vol`) has `thing` in the way before it starts:
/// the path, and what the run ended with.
fn run_with_in_the_way(
    vol: &Path,
    e: &mut Elsewhere,
    own: Own,
    thing: Thing,
) -> (PathBuf, Outcome) {
    let done = vol.join("done");
    let at = match own {
        Own::MainMarker | Own::SidecarMarker => done.clone(),
        Own::MainLease | Own::SidecarLease => vol.join("done.lease"),
        Own::ReadyFile => vol.join("ready"),
        Own::Install => vol.join("supervisor"),
    };
    e.plant(&at, thing);
    let (d, r) = (s(&done), s(&vol.join("ready")));
    let o = match own {
        Own::MainMarker | Own::MainLease => {
            bounded(&["main", "--done-file", &d, "--", "sh", "-c", "exit 3"])
        }
        Own::SidecarMarker | Own::SidecarLease => {
            bounded(&["sidecar", "--done-file", &d, "--", "sh", "-c", "exit 3"])
        }
        Own::ReadyFile => {
            // Ready at once; the daemon ends once its ready file is a regular file.
            let go = format!("file:{}", s(vol));
            let mut c = sup_ns([
                "sidecar",
                "--ready-when",
                &go,
                "--ready-file",
                &r,
                "--",
                "sh",
                "-c",
                r#"until [ -f "$R" ]; do sleep 0.01; done; exit 3"#,
            ]);
            c.env("R", &r);
            start(c).finish_with(BOUND)
        }
        Own::Install => bounded(&["install", &s(vol)]),
    };
    (at, o)
}

/// Every file a supervisor writes - the marker and lease of both modes, the ready file, the
/// installed binary - with each thing in the way at the start: anything but a directory is
/// replaced (one warning saying what it was), never followed, never opened; the run goes on and
/// keeps its exit code. A directory cannot be replaced: the start fails, naming it (exit 125).
#[test]
fn anything_in_the_way_of_a_file_the_supervisor_writes_is_replaced_never_followed() {
    let t = tempdir();
    let mut e = Elsewhere::new(&t.path().join("elsewhere"));
    let owns = [
        Own::MainMarker,
        Own::MainLease,
        Own::SidecarMarker,
        Own::SidecarLease,
        Own::ReadyFile,
        Own::Install,
    ];
    let mut n = 0;
    for own in owns {
        for thing in THINGS {
            n += 1;
            let vol = mkdir(&t.path().join(format!("vol{n}")));
            let what = format!("{own:?} is {thing:?}");
            let (at, o) = run_with_in_the_way(&vol, &mut e, own, thing);
            let code = if matches!(own, Own::Install) { 0 } else { 3 };
            if thing == Thing::Dir {
                assert_eq!(o.code(), Some(125), "{what}{o}");
                assert!(o.stderr.contains(&s(&at)), "{what}: must name the path{o}");
                assert!(
                    at.join("keep").exists(),
                    "{what}: the directory was touched"
                );
                continue;
            }
            assert_eq!(o.code(), Some(code), "{what}{o}");
            assert_one_warning(&o, &at, thing, &what);
            assert_no_error_naming(&o, &at, &what);
            match own {
                Own::MainMarker | Own::MainLease | Own::SidecarMarker | Own::SidecarLease => {
                    assert_eq!(read_json(&vol.join("done"))["exit_code"], 3, "{what}");
                    assert!(!vol.join("done.lease").exists(), "{what}: lease left{o}");
                }
                Own::ReadyFile => assert!(is_regular(&at), "{what}: no ready file{o}"),
                Own::Install => {
                    let m = std::fs::symlink_metadata(&at).unwrap();
                    assert!(m.is_file(), "{what}: not installed{o}");
                    assert_eq!(m.permissions().mode() & 0o777, 0o755, "{what}");
                }
            }
            let names: Vec<String> = std::fs::read_dir(&vol)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|n| n.contains(".tmp"))
                .collect();
            assert!(names.is_empty(), "{what}: temp files left: {names:?}");
            e.assert_untouched(&what);
        }
    }
}

// ---- the files a supervisor reads ----

/// The other containers' files, as a reader finds them: a sidecar's `--wait-file` (the main's
/// marker) and its lease, a main's `--requires` lease. Nothing there blocks or is opened; a
/// marker that is not a regular file counts as a marker whose code is unknown (as documented),
/// a lease that is not one is no lease; either way one warning names it.
#[test]
fn anything_at_a_watched_marker_or_lease_never_blocks_a_reader() {
    let t = tempdir();
    let mut e = Elsewhere::new(&t.path().join("elsewhere"));
    let mut n = 0;
    for thing in THINGS.into_iter().filter(|t| *t != Thing::Dir) {
        // The main's marker is the thing: it counts, code unknown (0).
        n += 1;
        let vol = mkdir(&t.path().join(format!("vol{n}")));
        let done = vol.join("done");
        e.plant(&done, thing);
        let what = format!("wait-file is {thing:?}");
        let o = bounded(&["sidecar", "--wait-file", &s(&done), "--", "sleep", "1000"]);
        assert_eq!(o.code(), Some(0), "{what}{o}");
        assert_one_warning(&o, &done, thing, &what);

        // The main's lease is the thing: no lease; the marker that follows is what counts.
        let lease = vol.join("m.lease");
        let marker = vol.join("m");
        e.plant(&lease, thing);
        let what = format!("wait-file's lease is {thing:?}");
        let mut sc = start(sup_ns([
            "sidecar",
            "--exit-code",
            "main",
            "--wait-file",
            &s(&marker),
            "--",
            "sh",
            "-c",
            "echo up; exec sleep 1000",
        ]));
        sc.expect_line("up", DEADLINE);
        let tmp = vol.join(".m.tmp");
        std::fs::write(&tmp, r#"{"exit_code":7,"reason":"exited"}"#).unwrap();
        std::fs::rename(&tmp, &marker).unwrap();
        let o = sc.finish_with(BOUND);
        assert_eq!(o.code(), Some(7), "{what}{o}");
        assert_one_warning(&o, &lease, thing, &what);

        // A required sidecar's lease is the thing: the main runs its command as if no lease.
        let req = vol.join("s");
        e.plant(&vol.join("s.lease"), thing);
        let what = format!("requires' lease is {thing:?}");
        let o = bounded(&["main", "--requires", &s(&req), "--", "sh", "-c", "exit 3"]);
        assert_eq!(o.code(), Some(3), "{what}{o}");
        assert_one_warning(&o, &vol.join("s.lease"), thing, &what);
    }
    e.assert_untouched("readers");
}

// ---- the marker's directory swapped while the command runs ----

/// How the marker's directory is swapped while the command runs.
#[derive(Clone, Copy, Debug)]
enum Swap {
    /// Renamed away, a symlink to another directory put in its place.
    ForSymlink,
    /// Renamed away, nothing in its place.
    RenamedAway,
    /// Renamed away, a FIFO in its place.
    ForFifo,
    /// Deleted with its content, a symlink to another directory in its place.
    DeletedThenSymlink,
}

/// Does `swap` to `dir` (moved to `moved`; the symlink points at `other`).
fn do_swap(swap: Swap, dir: &Path, moved: &Path, other: &Path) {
    match swap {
        Swap::ForSymlink | Swap::RenamedAway | Swap::ForFifo => {
            std::fs::rename(dir, moved).unwrap();
        }
        Swap::DeletedThenSymlink => std::fs::remove_dir_all(dir).unwrap(),
    }
    match swap {
        Swap::ForSymlink | Swap::DeletedThenSymlink => {
            std::os::unix::fs::symlink(other, dir).unwrap()
        }
        Swap::ForFifo => nix::unistd::mkfifo(dir, Mode::from_bits_truncate(0o666)).unwrap(),
        Swap::RenamedAway => {}
    }
}

/// Lets a command blocked in `read x <FIFO` go on: opens the FIFO for writing once the command
/// has it open for reading (until then a non-blocking open fails), and writes a line.
fn release(fifo: &Path) {
    let mut w = None;
    assert!(
        wait_until(DEADLINE, || {
            w = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(nix::libc::O_NONBLOCK)
                .open(fifo)
                .ok();
            w.is_some()
        }),
        "the command never read {}",
        fifo.display()
    );
    let mut w: File = w.unwrap();
    w.write_all(b"go\n").unwrap();
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// A command that says `up`, then waits for a line on the FIFO `GO` and exits 5.
const WAITS: &str = r#"echo up; read x <"$GO"; exit 5"#;

fn waiting(mode: &str, done: &Path, go: &Path) -> Proc {
    let mut c = sup_ns([mode, "--done-file", &s(done), "--", "sh", "-c", WAITS]);
    c.env("GO", go);
    start(c)
}

/// The marker's (and lease's) directory swapped while the command runs: the marker lands in the
/// directory that was there at the start (wherever it was moved), or nowhere when it was
/// deleted; never in the directory a symlink now names. The lease goes with it.
#[test]
fn a_marker_directory_swapped_during_the_run_never_redirects_the_marker() {
    let t = tempdir();
    let go = t.path().join("go");
    nix::unistd::mkfifo(&go, Mode::from_bits_truncate(0o600)).unwrap();
    let mut n = 0;
    for mode in ["main", "sidecar"] {
        for swap in [
            Swap::ForSymlink,
            Swap::RenamedAway,
            Swap::ForFifo,
            Swap::DeletedThenSymlink,
        ] {
            n += 1;
            let what = format!("{mode}, marker directory {swap:?}");
            let vol = mkdir(&t.path().join(format!("vol{n}")));
            let (dir, moved, other) = (vol.join("m"), vol.join("moved"), mkdir(&vol.join("other")));
            mkdir(&dir);
            let done = dir.join("done");
            let mut p = waiting(mode, &done, &go);
            p.expect_line("up", DEADLINE);
            assert!(is_regular(&dir.join("done.lease")), "{what}: no lease");
            do_swap(swap, &dir, &moved, &other);
            release(&go);
            let o = p.finish_with(BOUND);
            // The command's own failure is the exit code, marker or not.
            assert_eq!(o.code(), Some(5), "{what}{o}");
            assert_eq!(
                entries(&other),
                Vec::<String>::new(),
                "{what}: redirected{o}"
            );
            match swap {
                Swap::DeletedThenSymlink => {
                    assert!(o.stderr.contains("MARKER NOT WRITTEN"), "{what}{o}");
                }
                _ => {
                    assert_eq!(read_json(&moved.join("done"))["exit_code"], 5, "{what}");
                    assert_eq!(entries(&moved), ["done"], "{what}: lease or temp left{o}");
                }
            }
        }
    }
}

/// The ready file's directory swapped for a symlink before the daemon is ready: the ready file
/// lands in the directory that was there at the start.
#[test]
fn a_ready_file_directory_swapped_before_readiness_never_redirects_it() {
    let t = tempdir();
    let vol = mkdir(&t.path().join("vol"));
    let (dir, moved, other) = (
        mkdir(&vol.join("r")),
        vol.join("moved"),
        mkdir(&vol.join("other")),
    );
    let gate = t.path().join("gate");
    let go = t.path().join("go");
    nix::unistd::mkfifo(&go, Mode::from_bits_truncate(0o600)).unwrap();
    let mut c = sup_ns([
        "sidecar",
        "--ready-when",
        &format!("file:{}", s(&gate)),
        "--ready-file",
        &s(&dir.join("ready")),
        "--",
        "sh",
        "-c",
        r#"echo up; read x <"$GO"; exit 4"#,
    ]);
    c.env("GO", &go);
    let mut p = start(c);
    p.expect_line("up", DEADLINE);
    do_swap(Swap::ForSymlink, &dir, &moved, &other);
    std::fs::write(&gate, "").unwrap();
    assert!(
        wait_until(DEADLINE, || is_regular(&moved.join("ready"))),
        "the ready file never appeared where the directory went"
    );
    release(&go);
    let o = p.finish_with(BOUND);
    assert_eq!(o.code(), Some(4), "{o}");
    assert_eq!(entries(&other), Vec::<String>::new(), "redirected{o}");
}

/// `--heartbeat` touches the lease it holds, through its descriptor: a lease path swapped for a
/// FIFO while the command runs neither blocks the heartbeat nor stops it; the held lease (moved
/// away) keeps getting younger, and the FIFO, not being ours, is left alone at the end.
#[test]
fn the_heartbeat_touches_the_held_lease_whatever_is_at_its_path() {
    let t = tempdir();
    let vol = mkdir(&t.path().join("vol"));
    let go = t.path().join("go");
    nix::unistd::mkfifo(&go, Mode::from_bits_truncate(0o600)).unwrap();
    let done = vol.join("done");
    let lease = vol.join("done.lease");
    let mut c = sup_ns([
        "main",
        "--done-file",
        &s(&done),
        "--heartbeat",
        "100ms",
        "--",
        "sh",
        "-c",
        WAITS,
    ]);
    c.env("GO", &go);
    let mut p = start(c);
    p.expect_line("up", DEADLINE);
    let held = vol.join("held");
    std::fs::rename(&lease, &held).unwrap();
    nix::unistd::mkfifo(&lease, Mode::from_bits_truncate(0o666)).unwrap();
    let mtime = |p: &Path| std::fs::metadata(p).unwrap().modified().unwrap();
    let before = mtime(&held);
    assert!(
        wait_until(DEADLINE, || mtime(&held) > before),
        "the heartbeat stopped touching the held lease"
    );
    release(&go);
    let o = p.finish_with(BOUND);
    assert_eq!(o.code(), Some(5), "{o}");
    assert_eq!(read_json(&done)["exit_code"], 5);
    let fifo = std::fs::symlink_metadata(&lease).unwrap().file_type();
    assert!(fifo.is_fifo(), "someone else's FIFO was removed");
}
