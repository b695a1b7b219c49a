//! The main's lease: a file beside the marker, locked by the main's supervisor for its whole life.
//!
//! Theory of operation: a marker is written by a living supervisor. When the whole main container
//! dies at once (OOM kill of the cgroup, the kubelet's SIGKILL, a runtime crash) no marker ever
//! comes, and a sidecar waiting for one would wait forever. A lock is held by the kernel, not by the
//! process: it is released however the process dies. So the main takes an exclusive flock on
//! `<done-file>.lease` (created as a locked temp file and renamed into place, so the path never
//! shows an unlocked lease of a live main; close-on-exec, so the command cannot inherit and
//! outlive it), and a sidecar blocks on a shared flock of the same file in a helper thread. When
//! that call returns, the main is gone. Sidecar and main share one kernel and the emptyDir is one
//! filesystem, so this works across containers; network filesystems (NFS, CIFS, some FUSE) may not
//! honour flock, which is what `--heartbeat`/`--stale-after` are for.
//!
//! flock needs no write access: a sidecar whose view of the volume is read-only can still wait on
//! a read-only descriptor.

use crate::marker;
use nix::fcntl::{Flock, FlockArg, OFlag};
use std::fs::{File, OpenOptions};
use std::hash::{Hash, Hasher};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// `<done-file>.lease`.
pub fn lease_path(done: &Path) -> PathBuf {
    let mut s = done.as_os_str().to_os_string();
    s.push(".lease");
    PathBuf::from(s)
}

/// The main's side: a held lock.
pub struct Lease {
    path: PathBuf,
    lock: Flock<File>,
    inode: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot create the lease {path}: {source}")]
pub struct LeaseError {
    path: String,
    #[source]
    source: io::Error,
}

impl Lease {
    /// Creates, locks and publishes a fresh lease for the marker at `done`.
    pub fn acquire(done: &Path, heartbeat_ms: Option<u128>) -> Result<Lease, LeaseError> {
        let path = lease_path(done);
        let tmp = marker::sibling(&path, &format!("tmp.{}", std::process::id()));
        let err = |source| LeaseError {
            path: path.display().to_string(),
            source,
        };
        let file = marker::create_exclusive(&tmp, 0o644).map_err(err)?;
        let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(l) => l,
            Err((_, e)) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(err(io::Error::from(e)));
            }
        };
        let body = format!(
            "{{\"pid\":{},\"started_at\":\"{}\",\"heartbeat_ms\":{}}}\n",
            std::process::id(),
            marker::rfc3339(SystemTime::now()),
            heartbeat_ms.map_or("null".to_string(), |h| h.to_string())
        );
        let published = lock
            .write_all(body.as_bytes())
            .and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = published {
            let _ = std::fs::remove_file(&tmp);
            return Err(err(e));
        }
        let inode = lock.metadata().map(|m| m.ino()).unwrap_or(0);
        Ok(Lease { path, lock, inode })
    }

    /// Refreshes the lease's mtime (the heartbeat for filesystems without working locks).
    pub fn touch(&self) {
        let now = nix::sys::time::TimeSpec::UTIME_NOW;
        if let Err(e) = nix::sys::stat::futimens(self.lock.as_raw_fd(), &now, &now) {
            tracing::warn!("heartbeat: cannot touch {}: {e}", self.path.display());
        }
    }

    /// Removes the lease at a clean end (after the marker is written). Only our own lease is
    /// removed: a newer main may already have replaced it.
    pub fn release(self) {
        if let Ok(m) = std::fs::symlink_metadata(&self.path) {
            if m.ino() == self.inode {
                let _ = std::fs::remove_file(&self.path);
            }
        }
        drop(self.lock);
    }
}

/// What a sidecar found at a lease path.
#[derive(Debug)]
pub enum Found {
    Absent,
    /// A lease file, opened read-only. `id` tells one lease from its replacement: the inode
    /// number alone does not (a filesystem may give a new file the number of one just freed), so
    /// it is combined with the lease's content, which names its holder and start time and never
    /// changes (a heartbeat only touches the mtime).
    Lease {
        file: File,
        id: u64,
    },
}

/// Opens the lease at `path` for watching, without following symlinks or blocking on FIFOs.
pub fn open(path: &Path) -> Found {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).bits())
        .open(path)
    {
        Ok(f) => f,
        Err(_) => return Found::Absent,
    };
    match file.metadata() {
        Ok(m) if m.is_file() => {
            let mut head = Vec::with_capacity(256);
            let _ = (&file).take(512).read_to_end(&mut head);
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (m.dev(), m.ino(), head).hash(&mut h);
            Found::Lease {
                id: h.finish(),
                file,
            }
        }
        _ => Found::Absent,
    }
}

/// Blocks until the lease's holder is gone (the kernel grants us a shared lock). Run on a helper
/// thread: there is no async flock, and a thread blocked in the kernel costs no wake-ups.
pub fn wait_released(file: File) -> io::Result<()> {
    match Flock::lock(file, FlockArg::LockShared) {
        // The lock itself is dropped at once: a restarted main takes a lock on a new file anyway.
        Ok(_lock) => Ok(()),
        Err((_, e)) => Err(io::Error::from(e)),
    }
}

/// Whether the lease says its main refreshes it (`"heartbeat_ms": N`). A main without
/// `--heartbeat` writes `null`: its lease never gets younger, and calling it stale would stop the
/// daemon of a healthy job. A lease that cannot be read or parsed counts as refreshed, so
/// `--stale-after` still guards it.
pub fn has_heartbeat(path: &Path) -> bool {
    let Ok(bytes) = marker::read_bounded(path) else {
        return true;
    };
    match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(v) => !v.get("heartbeat_ms").is_some_and(|h| h.is_null()),
        Err(_) => true,
    }
}

/// The lease's age by its mtime, for `--stale-after`.
pub fn age(path: &Path) -> Option<std::time::Duration> {
    let m = std::fs::symlink_metadata(path).ok()?;
    if !m.is_file() {
        return None;
    }
    SystemTime::now().duration_since(m.modified().ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_beside_marker() {
        assert_eq!(
            lease_path(Path::new("/shared/done")),
            PathBuf::from("/shared/done.lease")
        );
    }
}
