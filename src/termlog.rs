//! The Kubernetes termination message: what `kubectl describe pod` shows for a container that
//! ended (and `.status.containerStatuses[].state.terminated.message`).
//!
//! Theory of operation: the kubelet mounts a file at `terminationMessagePath` (default
//! `/dev/termination-log`) into every container and reads at most 4096 bytes of it after the
//! container ends. We write one sentence a person understands at once, then the marker's JSON
//! when the whole still fits, never more than 4096 bytes. The file is a bind mount, so it cannot
//! be replaced by a rename; it is written in place with a single `write` of the whole message
//! after truncating, which nobody reads concurrently (the kubelet reads after the exit). A path
//! of our own that does not exist yet is created atomically instead. It is written on the way
//! out, on the thread that reads signals: nothing here may block, so what is not a regular file
//! is never opened (see `fsutil`).

use crate::fsutil;
use std::io::{self, Write};
use std::path::Path;

/// What the kubelet reads of the file.
pub const LIMIT: usize = 4096;

/// The message: `first_line`, and `marker` (one line of JSON, newline-terminated) below it when
/// both fit; the first line alone is cut to the limit on a character boundary.
pub fn compose(first_line: &str, marker: &[u8]) -> Vec<u8> {
    let line: String = first_line
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut out = Vec::with_capacity(LIMIT);
    out.extend_from_slice(line.as_bytes());
    out.push(b'\n');
    if out.len() + marker.len() <= LIMIT {
        out.extend_from_slice(marker);
    } else if out.len() > LIMIT {
        let mut end = LIMIT - 1;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
        out.push(b'\n');
    }
    out
}

/// Writes the message to `path`: in place when a regular file is there (the kubelet's bind
/// mount), then cut to its length (cheaper than truncating first, which on some filesystems
/// discards blocks); atomically as a new file when nothing is. Anything else there (a FIFO, a
/// socket, a device, a terminal, a directory, a symlink) is refused unopened: the error says what
/// it is, and the caller warns and goes on.
pub fn write(path: &Path, first_line: &str, marker: &[u8]) -> io::Result<()> {
    let text = compose(first_line, marker);
    let mut f = match fsutil::open_regular_for_write(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return fsutil::Place::open(path)?.write_atomic(&text);
        }
        Err(e) => return Err(e),
    };
    f.write_all(&text)?;
    f.set_len(text.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_only_when_it_fits() {
        let m = b"{\"exit_code\":3}\n";
        assert_eq!(
            compose("main: x exited", m),
            b"main: x exited\n{\"exit_code\":3}\n"
        );
        let big = vec![b'x'; LIMIT];
        assert_eq!(compose("main: y", &big), b"main: y\n");
        let long = "é".repeat(LIMIT);
        let out = compose(&long, m);
        assert!(out.len() <= LIMIT, "{}", out.len());
        assert!(std::str::from_utf8(&out).is_ok());
        assert_eq!(compose("a\nb\u{1b}", b""), b"a b \n");
    }
}
