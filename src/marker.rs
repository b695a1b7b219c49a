//! The done-marker: an atomic JSON file that tells the sidecars the main container has finished.
//!
//! Theory of operation: the marker lives on a volume other containers can write to, so it is
//! written as a temp file in the same directory (created with O_EXCL|O_NOFOLLOW, so nothing planted
//! there is followed), fsynced, then renamed over the final name. rename() replaces whatever is at
//! the path, a symlink included, without following it; readers see either nothing or the whole
//! file. Readers in turn open with O_NOFOLLOW|O_NONBLOCK and read at most [`MAX_READ`] bytes, so a
//! hostile marker (a FIFO, a sparse multi-GiB file, a symlink to a secret) cannot hang, exhaust or
//! leak anything.

use nix::fcntl::OFlag;
use serde::Serialize;
use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Readers never look at more than this much of a marker or ready file.
pub const MAX_READ: u64 = 64 * 1024;

/// Why the main's command ended, as written in the marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(serde::Deserialize))]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// The command exited by itself with `exit_code`.
    Exited,
    /// The command was killed by `signal`.
    Signaled,
    /// The command could not be executed (not found: 127, not executable: 126).
    ExecFailed,
    /// The command outlived `--grace` after SIGTERM and its process group was SIGKILLed.
    GraceKilled,
    /// `--wait-timeout` expired before the `--wait-for` targets were ready; the command never ran.
    NotReady,
    /// The supervisor was stopped (SIGTERM/SIGINT) before the command started.
    Cancelled,
    /// The supervisor could not start the command for another reason (fork failed, ...).
    SupervisorError,
}

/// The marker's content.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(test, derive(serde::Deserialize))]
pub struct Marker {
    pub version: u32,
    pub exit_code: i32,
    pub reason: Reason,
    pub signal: Option<String>,
    pub started_at: String,
    pub finished_at: String,
    pub duration_ms: u64,
    pub command: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}

/// The most of the command line a marker records, as JSON. Readers stop at [`MAX_READ`]; a marker
/// cut there is not JSON and loses its exit code, so a long command (an inline script, 100k
/// arguments, a 128 KiB argv[0]) must never push the marker past it.
const MAX_COMMAND_JSON: usize = 8 * 1024;
/// The most characters of one argument, or of the error, a marker records.
const MAX_FIELD_CHARS: usize = 1024;

/// `s` cut to `max` characters, with `…` marking the cut.
fn bounded(s: &str, max: usize) -> String {
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
    pub fn to_json(&self) -> Vec<u8> {
        let bounded = Marker {
            command: bounded_command(&self.command),
            error: self.error.as_deref().map(|e| bounded(e, MAX_FIELD_CHARS)),
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

/// What a sidecar learns from a marker it found. Anything that exists counts as a marker: a plain
/// `touch` (empty) or non-JSON content gives an unknown code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub exit_code: Option<i64>,
    pub reason: Option<String>,
}

/// Extracts what a sidecar needs from marker bytes. Never fails: garbage means "unknown".
pub fn decode(bytes: &[u8]) -> Seen {
    let value: serde_json::Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(_) => {
            return Seen {
                exit_code: None,
                reason: None,
            };
        }
    };
    Seen {
        exit_code: value.get("exit_code").and_then(|c| c.as_i64()),
        reason: value
            .get("reason")
            .and_then(|r| r.as_str())
            // Whoever can write the volume writes this text into our logs: no newlines (forged
            // log lines) and no escape sequences (a terminal's, or a log viewer's).
            .map(|r| r.chars().filter(|c| !c.is_control()).take(64).collect()),
    }
}

/// The state of a marker path, as a sidecar sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    Absent,
    /// Something that is not a marker sits there (a directory): it does not count.
    NotAFile,
    Present(Seen),
}

/// Looks at a marker path without following symlinks or blocking.
pub fn inspect(path: &Path) -> Presence {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(_) => return Presence::Absent,
    };
    let unknown = Seen {
        exit_code: None,
        reason: None,
    };
    if meta.is_dir() {
        return Presence::NotAFile;
    }
    if !meta.is_file() {
        // A symlink, FIFO or socket: it exists, so the main said "done", but its content is not
        // ours to read.
        return Presence::Present(unknown);
    }
    match read_bounded(path) {
        Ok(bytes) => Presence::Present(decode(&bytes)),
        Err(_) => Presence::Present(unknown),
    }
}

/// Reads at most [`MAX_READ`] bytes of a regular file, never following a symlink and never
/// blocking on a FIFO.
pub fn read_bounded(path: &Path) -> io::Result<Vec<u8>> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).bits())
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a regular file",
        ));
    }
    let mut buf = Vec::new();
    f.take(MAX_READ).read_to_end(&mut buf)?;
    Ok(buf)
}

/// The directory a path lives in (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A sibling path: `.NAME.SUFFIX` in the same directory (hidden, so globbing users skip it).
pub fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let name = path.file_name().unwrap_or(OsStr::new("marker"));
    let mut s = std::ffi::OsString::from(".");
    s.push(name);
    s.push(".");
    s.push(suffix);
    parent_dir(path).join(s)
}

/// Creates a fresh file for writing: any stale entry at `path` (a temp file left by an earlier
/// container with the same PID, or a planted symlink) is unlinked first, then the file is created
/// with O_EXCL|O_NOFOLLOW so nothing is ever written through a link.
pub fn create_exclusive(path: &Path, mode: u32) -> io::Result<File> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC).bits())
        .open(path)?;
    // The umask may have narrowed the mode; readers in other containers (other UIDs) need it.
    f.set_permissions(std::fs::Permissions::from_mode(mode))?;
    Ok(f)
}

/// Writes `contents` to `path` atomically: temp file, fsync, rename.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let tmp = sibling(path, &format!("tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = create_exclusive(&tmp, 0o644)?;
        f.write_all(contents)?;
        f.sync_all()?;
        drop(f);
        // No fsync of the directory: the rename is visible at once to every reader on this
        // kernel (all of a pod's containers), and an emptyDir does not outlive a node crash, so
        // it would only add a disk flush to every job's end.
        std::fs::rename(&tmp, path)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Makes a rename durable. Best effort: some filesystems refuse fsync on directories, and the
/// rename itself is already visible to every reader on this kernel.
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Removes a marker left by an earlier run, so sidecars never see a stale one. A missing marker
/// is fine; anything else that cannot be removed (a directory, a read-only volume) is an error.
pub fn remove_stale(path: &Path) -> io::Result<bool> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
        Ok(m) if m.is_dir() => {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                "the marker path is a directory",
            ));
        }
        Ok(_) => {}
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// RFC 3339 UTC timestamp with milliseconds, e.g. `2026-11-24T00:41:00.123Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (y, mo, da) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{mo:02}-{da:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day). Howard Hinnant's
/// well-known civil-from-days algorithm (public-domain arithmetic, written out here).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(951_782_400_123); // leap day 2000
        assert_eq!(rfc3339(t), "2000-02-29T00:00:00.123Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_481_999); // checked with date -u -d @
        assert_eq!(rfc3339(t), "2026-11-24T00:59:59.000Z");
        let t = UNIX_EPOCH + Duration::from_secs(4_107_542_400); // 2100-03-01, not a leap year
        assert_eq!(rfc3339(t), "2100-03-01T00:00:00.000Z");
    }

    #[test]
    fn marker_round_trip() {
        let m = Marker {
            version: 1,
            exit_code: 143,
            reason: Reason::Signaled,
            signal: Some("TERM".into()),
            started_at: "a".into(),
            finished_at: "b".into(),
            duration_ms: 5,
            command: vec!["sh".into(), "-c".into(), "exit \"1\"".into()],
            error: None,
        };
        let bytes = m.to_json();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains(r#""reason":"signaled""#), "{text}");
        assert!(text.contains(r#""signal":"TERM""#), "{text}");
        assert!(!text.contains("error"), "{text}");
        let back: Marker = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back, m);
        assert_eq!(
            decode(&bytes),
            Seen {
                exit_code: Some(143),
                reason: Some("signaled".into())
            }
        );
    }

    #[test]
    fn long_commands_never_push_the_marker_past_what_readers_read() {
        let mut m = Marker {
            version: 1,
            exit_code: 3,
            reason: Reason::Exited,
            signal: None,
            started_at: "a".into(),
            finished_at: "b".into(),
            duration_ms: 5,
            command: vec!["x".into(); 100_000],
            error: Some("\u{1}".repeat(200_000)),
        };
        m.command[0] = "\u{1}é".repeat(100_000);
        let bytes = m.to_json();
        assert!(bytes.len() < MAX_READ as usize / 2, "{}", bytes.len());
        assert_eq!(decode(&bytes).exit_code, Some(3));
        let back: Marker = serde_json::from_slice(&bytes).unwrap();
        assert!(back.command[0].ends_with('…'));
        assert!(back.command.last().unwrap().contains("more arguments"));
        let short = vec!["sh".to_string(), "-c".into(), "exit 3".into()];
        assert_eq!(bounded_command(&short), short);
    }

    #[test]
    fn decode_is_total() {
        let unknown = Seen {
            exit_code: None,
            reason: None,
        };
        for junk in [
            &b""[..],
            b"\n",
            b"done",
            b"{",
            b"[1,2]",
            b"{\"exit_code\":\"0\"}",
            b"{\"exit_code\":1.5}",
            b"\xff\xfe",
        ] {
            assert_eq!(decode(junk).exit_code, None, "{junk:?}");
        }
        assert_eq!(decode(b"null"), unknown);
        let forged = decode(b"{\"reason\":\"x\\n2026 ERROR forged\\u001b[31m\"}");
        assert_eq!(forged.reason.as_deref(), Some("x2026 ERROR forged[31m"));
        assert_eq!(decode(b"{\"exit_code\":0}").exit_code, Some(0));
        assert_eq!(
            decode(b" {\"exit_code\": 3 , \"x\": [1]} ").exit_code,
            Some(3)
        );
    }

    #[test]
    fn sibling_paths() {
        assert_eq!(
            sibling(Path::new("/shared/done"), "lease"),
            PathBuf::from("/shared/.done.lease")
        );
        assert_eq!(
            sibling(Path::new("done"), "tmp.1"),
            PathBuf::from("./.done.tmp.1")
        );
    }
}
