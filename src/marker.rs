//! The done-marker: a JSON file that tells the other containers a supervised command has ended.
//!
//! Theory of operation: `main` writes one when its command ends, however it ends; a `sidecar`
//! with `--done-file` writes one when its daemon ends. The file is published atomically
//! ([`fsutil::Place::write_atomic`], in the directory opened when the lease was taken) on a
//! volume other containers can write to, so the reading side ([`inspect`]) trusts nothing: it
//! never follows a symlink, never opens what is not a regular file, reads a bounded prefix, and
//! anything that exists counts as a marker with what could be decoded of it (a plain `touch` is
//! "done, code unknown"; so is a FIFO, a socket, a device or a symlink). Whether a marker counts
//! yet is the lease's business (see `lease`), not this module's.

use crate::fsutil::{self, Kind};
use crate::signals::Sig;
use serde::{Deserialize, Serialize};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Why the command ended, as written in the marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// The command exited by itself with `exit_code`.
    Exited,
    /// The command was killed by `signal`.
    Signaled,
    /// The command could not be executed (not found: 127, not executable: 126).
    ExecFailed,
    /// The command outlived `--grace` after being asked to stop, and its group was SIGKILLed.
    GraceKilled,
    /// `--wait-timeout` expired before the `--wait-for` targets were ready; the command never ran.
    NotReady,
    /// The supervisor was asked to stop before the command started.
    Cancelled,
    /// The supervisor could not start the command for another reason (fork failed, ...).
    SupervisorError,
    /// `main --timeout` expired: the command was stopped.
    TimedOut,
    /// A sidecar named by `main --requires` ended first: the command was stopped.
    DependencyFailed,
    /// The supervisor stopped the command: a sidecar's daemon because the mains were done or the
    /// sidecar was asked to stop; a main's command because the pod is stopping (`stop_request`).
    Stopped,
    /// A sidecar's daemon exited 0 before the mains were done and left processes behind.
    Daemonized,
}

impl Reason {
    /// Every reason, in the order of the documentation.
    pub const ALL: [Reason; 11] = [
        Reason::Exited,
        Reason::Signaled,
        Reason::ExecFailed,
        Reason::GraceKilled,
        Reason::NotReady,
        Reason::Cancelled,
        Reason::SupervisorError,
        Reason::TimedOut,
        Reason::DependencyFailed,
        Reason::Stopped,
        Reason::Daemonized,
    ];

    /// The name written in the marker (`grace-killed`).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Exited => "exited",
            Reason::Signaled => "signaled",
            Reason::ExecFailed => "exec-failed",
            Reason::GraceKilled => "grace-killed",
            Reason::NotReady => "not-ready",
            Reason::Cancelled => "cancelled",
            Reason::SupervisorError => "supervisor-error",
            Reason::TimedOut => "timed-out",
            Reason::DependencyFailed => "dependency-failed",
            Reason::Stopped => "stopped",
            Reason::Daemonized => "daemonized",
        }
    }

    /// The reason named `name` in a marker, if we know it.
    pub fn from_name(name: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

/// Which kind of supervisor wrote a marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Main,
    Sidecar,
}

/// The dependency a `dependency-failed` marker names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dependency {
    /// The sidecar's `--done-file`.
    pub path: String,
    /// How it ended, from its marker; absent when it vanished without one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub exit_code: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<Reason>,
    /// What it ran (its marker's command), for people.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub command: Option<String>,
}

/// The marker's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Marker {
    pub version: u32,
    pub role: Role,
    /// What the supervisor (the container) exits with.
    pub exit_code: i32,
    pub reason: Reason,
    /// The signal that ended the command (or cancelled its start), without `SIG`.
    pub signal: Option<String>,
    /// The signal from outside that stopped the run (the pod is stopping), without `SIG`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub stop_request: Option<String>,
    /// How the command itself ended, as a shell reports it; null when it never ran.
    pub command_exit_code: Option<i32>,
    pub started_at: String,
    pub finished_at: String,
    pub duration_ms: u64,
    pub command: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub dependency: Option<Dependency>,
}

/// The most of the command line a marker records, as JSON. Readers stop at
/// [`fsutil::MAX_READ`]; a marker cut there is not JSON and loses its exit code, so a long command
/// (an inline script, 100k arguments, a 128 KiB argv[0]) must never push the marker past it.
const MAX_COMMAND_JSON: usize = 8 * 1024;
/// The most characters of one argument, or of the error, a marker records.
const MAX_FIELD_CHARS: usize = 1024;

/// `s` cut to `max` characters, with `…` marking the cut.
pub fn bounded(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// The command as a marker records it: each argument bounded, and arguments dropped (with a note
/// saying how many) once the JSON would pass [`MAX_COMMAND_JSON`].
fn bounded_command(command: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut size = 2;
    for (i, arg) in command.iter().enumerate() {
        let arg = bounded(arg, MAX_FIELD_CHARS);
        // Escaping can grow a character to six bytes: measure the JSON, not the string.
        let len = serde_json::to_string(&arg).map_or(usize::MAX, |j| j.len() + 1);
        if size + len > MAX_COMMAND_JSON {
            out.push(format!("…({} more arguments)", command.len() - i));
            break;
        }
        size += len;
        out.push(arg);
    }
    out
}

impl Marker {
    /// The marker as written: one line of JSON, every unbounded field bounded.
    pub fn to_json(&self) -> Vec<u8> {
        let bounded = Marker {
            command: bounded_command(&self.command),
            error: self.error.as_deref().map(|e| bounded(e, MAX_FIELD_CHARS)),
            dependency: self.dependency.clone().map(|d| Dependency {
                path: bounded(&d.path, MAX_FIELD_CHARS),
                command: d.command.map(|c| bounded(&c, MAX_FIELD_CHARS)),
                ..d
            }),
            ..self.clone()
        };
        // Serialising a struct of strings and numbers cannot fail; fall back to a minimal valid
        // marker rather than panic in PID 1.
        let mut out = serde_json::to_vec(&bounded).unwrap_or_else(|_| {
            format!("{{\"version\":1,\"exit_code\":{}}}", self.exit_code).into_bytes()
        });
        out.push(b'\n');
        out
    }
}

/// What a reader learns from a marker it found. Anything that exists counts as a marker: a plain
/// `touch` (empty) or non-JSON content gives an unknown code. Every text field is sanitised: it
/// was written by whoever can write the volume, and it goes into our logs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Seen {
    pub exit_code: Option<i64>,
    /// The reason, when it is one we know.
    pub reason: Option<Reason>,
    /// The signal from outside that stopped its writer, when the marker says one did.
    pub stop_request: Option<Sig>,
    /// The command's first word (its program), for messages like "dockerd exited with code 1".
    pub program: Option<String>,
    /// How the command itself ended, when the marker says.
    pub command_exit_code: Option<i64>,
}

/// Printable, one line, bounded: no newline (forged log lines), no escape sequence.
fn clean(s: &str, max: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(max).collect()
}

/// Extracts what a reader needs from marker bytes. Never fails: garbage means "unknown".
pub fn decode(bytes: &[u8]) -> Seen {
    let Ok(serde_json::Value::Object(o)) = serde_json::from_slice(bytes) else {
        return Seen::default();
    };
    let text = |k: &str| o.get(k).and_then(|v| v.as_str()).map(|s| clean(s, 64));
    Seen {
        exit_code: o.get("exit_code").and_then(|c| c.as_i64()),
        reason: text("reason").and_then(|r| Reason::from_name(&r)),
        stop_request: text("stop_request").and_then(|s| s.parse().ok()),
        program: o
            .get("command")
            .and_then(|c| c.get(0))
            .and_then(|c| c.as_str())
            .map(|p| clean(p.rsplit('/').next().unwrap_or(p), 64))
            .filter(|p| !p.is_empty()),
        command_exit_code: o.get("command_exit_code").and_then(|c| c.as_i64()),
    }
}

/// The state of a marker path, as a reader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    Absent,
    /// Something that is not a marker sits there (a directory): it does not count.
    NotAFile,
    Present(Seen),
}

/// Looks at a marker path without following symlinks or blocking.
pub fn inspect(path: &Path) -> Presence {
    look(path).0
}

/// [`inspect`], and what is there when it counts but is not a regular file (a FIFO, a symlink,
/// a socket, a device), so that whoever reports on it can say what it is.
pub fn look(path: &Path) -> (Presence, Option<Kind>) {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(_) => return (Presence::Absent, None),
    };
    match Kind::of(meta.mode()) {
        Kind::Dir => (Presence::NotAFile, None),
        // It exists, so the writer said "done", but its content is not ours to read: opening it
        // could block (a FIFO) or have a device's side effects.
        Kind::File => match fsutil::read_bounded(path) {
            Ok(bytes) => (Presence::Present(decode(&bytes)), None),
            // Swapped since the look, or unreadable.
            Err(e) => (Presence::Present(Seen::default()), fsutil::in_the_way(&e)),
        },
        other => (Presence::Present(Seen::default()), Some(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Marker {
        Marker {
            version: 1,
            role: Role::Main,
            exit_code: 143,
            reason: Reason::Signaled,
            signal: Some("TERM".into()),
            stop_request: None,
            command_exit_code: Some(143),
            started_at: "a".into(),
            finished_at: "b".into(),
            duration_ms: 5,
            command: vec!["/bin/sh".into(), "-c".into(), "exit \"1\"".into()],
            error: None,
            dependency: None,
        }
    }

    #[test]
    fn marker_round_trip() {
        let m = sample();
        let bytes = m.to_json();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains(r#""reason":"signaled""#), "{text}");
        assert!(text.contains(r#""role":"main""#), "{text}");
        assert!(text.contains(r#""signal":"TERM""#), "{text}");
        assert!(
            !text.contains("error") && !text.contains("dependency"),
            "{text}"
        );
        let back: Marker = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back, m);
        assert_eq!(
            decode(&bytes),
            Seen {
                exit_code: Some(143),
                reason: Some(Reason::Signaled),
                stop_request: None,
                program: Some("sh".into()),
                command_exit_code: Some(143),
            }
        );
    }

    #[test]
    fn reasons_are_named_as_serde_writes_them() {
        for r in Reason::ALL {
            assert_eq!(
                serde_json::to_string(&r).unwrap(),
                format!("\"{}\"", r.as_str())
            );
        }
    }

    /// The README's table of reasons names every reason, in order.
    #[test]
    fn readme_lists_every_reason() {
        let readme = include_str!("../README.md");
        let listed: Vec<&str> = readme
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split('`').next())
            .filter(|name| Reason::ALL.iter().any(|r| r.as_str() == *name))
            .collect();
        let all: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(listed, all);
    }

    #[test]
    fn long_commands_never_push_the_marker_past_what_readers_read() {
        let mut m = Marker {
            exit_code: 3,
            reason: Reason::Exited,
            command: vec!["x".into(); 100_000],
            error: Some("\u{1}".repeat(200_000)),
            dependency: Some(Dependency {
                path: "p".repeat(100_000),
                exit_code: Some(1),
                reason: None,
                command: Some("c".repeat(100_000)),
            }),
            ..sample()
        };
        m.command[0] = "\u{1}é".repeat(100_000);
        let bytes = m.to_json();
        assert!(
            bytes.len() < fsutil::MAX_READ as usize / 2,
            "{}",
            bytes.len()
        );
        assert_eq!(decode(&bytes).exit_code, Some(3));
        let back: Marker = serde_json::from_slice(&bytes).unwrap();
        assert!(back.command[0].ends_with('…'));
        assert!(back.command.last().unwrap().contains("more arguments"));
        let short = vec!["sh".to_string(), "-c".into(), "exit 3".into()];
        assert_eq!(bounded_command(&short), short);
    }

    #[test]
    fn decode_is_total() {
        for junk in [
            &b""[..],
            b"\n",
            b"done",
            b"{",
            b"[1,2]",
            b"{\"exit_code\":\"0\"}",
            b"{\"exit_code\":1.5}",
            b"\xff\xfe",
            b"null",
            b"{\"command\":[]}",
            b"{\"command\":\"sh\"}",
        ] {
            let seen = decode(junk);
            assert_eq!(seen.exit_code, None, "{junk:?}");
            assert_eq!(seen.program, None, "{junk:?}");
        }
        let forged = decode(b"{\"reason\":\"x\\n2026 ERROR forged\\u001b[31m\"}");
        assert_eq!(forged.reason, None, "an unknown reason is no reason");
        let stopped = decode(b"{\"reason\":\"stopped\",\"stop_request\":\"TERM\"}");
        assert_eq!(
            (stopped.reason, stopped.stop_request),
            (Some(Reason::Stopped), Some(Sig::TERM))
        );
        assert_eq!(decode(b"{\"exit_code\":0}").exit_code, Some(0));
        assert_eq!(
            decode(b" {\"exit_code\": 3 , \"x\": [1]} ").exit_code,
            Some(3)
        );
        let p = decode(b"{\"command\":[\"/usr/bin/dock\\u001berd\",\"-H\"]}");
        assert_eq!(p.program.as_deref(), Some("dockerd"));
    }
}
