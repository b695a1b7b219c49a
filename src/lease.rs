//! The lease: a file beside a marker, locked by the supervisor that will write the marker, for its
//! whole life.
//!
//! Theory of operation: a marker is written by a living supervisor. When a whole container dies at
//! once (OOM kill of the cgroup, the kubelet's SIGKILL, a runtime crash) no marker ever comes, and
//! whoever waits for one would wait forever. A lock is held by the kernel, not by the process: it
//! is released however the process dies. So the writer takes an exclusive flock on
//! `<done-file>.lease` (created as a locked temp file and renamed into place, so the path never
//! shows an unlocked lease of a live writer; close-on-exec, so the command cannot inherit and
//! outlive it), and a reader blocks on a shared flock of the same file in a helper thread: when
//! that call returns, the writer is gone. Containers of a pod share one kernel and the emptyDir is
//! one filesystem, so this works across containers; network filesystems (NFS, CIFS, some FUSE) may
//! not honour flock, which is what `--heartbeat`/`--stale-after` are for.
//!
//! The lock also says whether a marker counts yet: the writer renames its marker into place and
//! only then releases the lease, so a marker that appears while the lease is still held
//! exclusively was not written by the holder (anyone who can write the volume can drop a file
//! there) and waits until the lease is released.
//!
//! One writer per lease: a writer also holds an open-file-description write lock (`F_OFD_SETLK`)
//! on its lease, a lock family of its own that readers' flocks never touch (so a reader's passing
//! shared flock cannot make a restarted writer believe the lease is taken). A new lease is
//! published with a rename that refuses to replace anything (`RENAME_NOREPLACE`), which fails if
//! a lease is already there; the newcomer then takes the same write lock on the existing lease: if
//! that fails, a live writer holds it and the newcomer refuses to start; if it succeeds, the old
//! writer is dead and the newcomer replaces the lease while holding the lock, so two writers
//! starting at the same instant cannot both win. Something at the lease's name that is not a
//! regular file is no lease: the writer replaces it (unopened, with a warning), a reader treats it
//! as no lease.
//!
//! The writer's side works in the marker's directory as opened when the lease is taken (see
//! `fsutil`): publishing, the heartbeat (through the held descriptor), the marker and the final
//! unlink never resolve the path again, so a directory swapped while the command runs redirects
//! none of them.
//!
//! flock needs no write access: a reader whose view of the volume is read-only waits on a
//! read-only descriptor.

use crate::clock;
use crate::fsutil::{self, Kind, Place};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg, OFlag};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

const LEASE_SUFFIX: &str = ".lease";

/// `<done-file>.lease`.
pub fn lease_path(done: &Path) -> PathBuf {
    fsutil::with_suffix(done, LEASE_SUFFIX)
}

/// The lease's content: who holds it. It never changes while held (a heartbeat only touches the
/// mtime), which is what tells one lease from its replacement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Body {
    pub pid: u32,
    pub started_at: String,
    /// The heartbeat interval, when the holder refreshes the mtime (`--heartbeat`); null otherwise.
    pub heartbeat_ms: Option<u64>,
}

/// The holder's side: the held locks, and the directory the lease and its marker live in.
pub struct Lease {
    place: Place,
    marker: Place,
    lock: Flock<File>,
    /// The held file's (device, inode): what tells our lease from a replacement at the path.
    id: (u64, u64),
}

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("cannot create the lease {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "another supervisor holds the lease {path} ({holder}); refusing to start a second one for the same marker"
    )]
    Taken { path: String, holder: String },
}

impl Lease {
    /// Opens the marker's directory (once, for the whole run: see `fsutil`), then creates, locks
    /// and publishes a fresh lease for the marker at `done`, unless a live writer holds the one
    /// already there.
    pub fn acquire(done: &Path, heartbeat_ms: Option<u64>) -> Result<Lease, LeaseError> {
        let path = lease_path(done);
        let err = |source| LeaseError::Io {
            path: path.display().to_string(),
            source,
        };
        let marker = Place::open(done).map_err(err)?;
        let place = marker.beside(LEASE_SUFFIX);
        let body = Body {
            pid: std::process::id(),
            started_at: clock::rfc3339(SystemTime::now()),
            heartbeat_ms,
        };
        let tmp = place.temp();
        let lock = locked_temp(&tmp, &body).map_err(err)?;
        let published = publish(&tmp, &place);
        if published.is_err() {
            let _ = tmp.remove();
        }
        match published {
            Ok(()) => {}
            Err(Publish::Taken) => {
                return Err(LeaseError::Taken {
                    path: path.display().to_string(),
                    holder: describe_holder(&place),
                });
            }
            Err(Publish::Io(e)) => return Err(err(e)),
        }
        let id = lock
            .metadata()
            .map(|m| (m.dev(), m.ino()))
            .unwrap_or((0, 0));
        Ok(Lease {
            place,
            marker,
            lock,
            id,
        })
    }

    pub fn path(&self) -> &Path {
        self.place.path()
    }

    /// Where the marker goes: in the lease's directory, opened when the lease was taken.
    pub fn marker(&self) -> &Place {
        &self.marker
    }

    /// Refreshes the lease's mtime (the heartbeat for filesystems without working locks), through
    /// the held descriptor: whatever is at the path by now is not touched.
    pub fn touch(&self) {
        let now = nix::sys::time::TimeSpec::UTIME_NOW;
        if let Err(e) = nix::sys::stat::futimens(self.lock.as_raw_fd(), &now, &now) {
            tracing::warn!("heartbeat: cannot touch {}: {e}", self.path().display());
        }
    }

    /// Removes the lease at a clean end (after the marker is written). Only our own lease is
    /// removed: a volume shared by mistake could hold another writer's by now.
    pub fn release(self) {
        if let Ok(Some(e)) = self.place.look() {
            if (e.dev, e.ino) == self.id {
                let _ = self.place.remove();
            }
        }
        drop(self.lock);
    }
}

/// The new lease, as a temp file holding both locks and the body.
fn locked_temp(tmp: &Place, body: &Body) -> io::Result<Flock<File>> {
    let file = tmp.create_exclusive(0o644)?;
    let cleanup = |e: io::Error| {
        let _ = tmp.remove();
        e
    };
    write_lock(&file).map_err(|e| cleanup(io::Error::from(e)))?;
    let mut lock = Flock::lock(file, FlockArg::LockExclusiveNonblock)
        .map_err(|(_, e)| cleanup(io::Error::from(e)))?;
    let mut text = serde_json::to_vec(body).unwrap_or_default();
    text.push(b'\n');
    lock.write_all(&text).map_err(cleanup)?;
    Ok(lock)
}

/// Takes the writers' lock (an OFD write lock on the whole file) without waiting.
fn write_lock(file: &File) -> Result<(), Errno> {
    // SAFETY: an all-zero flock is a valid value of this plain C struct; the fields that matter
    // are set below.
    let mut fl: nix::libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = nix::libc::F_WRLCK as i16;
    fl.l_whence = nix::libc::SEEK_SET as i16;
    nix::fcntl::fcntl(file.as_raw_fd(), nix::fcntl::FcntlArg::F_OFD_SETLK(&fl)).map(drop)
}

enum Publish {
    Taken,
    Io(io::Error),
}

/// Puts the locked temp file at the lease's name: a rename that refuses to replace anything when
/// nothing is there; over a dead writer's lease (whose writers' lock we then hold), or over
/// something that is no lease at all, otherwise. A few rounds: a lease may vanish between the
/// failed rename and our look at it (its writer ended cleanly).
fn publish(tmp: &Place, lease: &Place) -> Result<(), Publish> {
    for _ in 0..8 {
        match tmp.rename_noreplace(lease) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Publish::Io(e)),
        }
        let verdict = match lease.open_regular(OFlag::O_RDWR) {
            // A write lock needs a descriptor open for writing.
            Ok(f) => write_lock(&f),
            Err(e) => match (e.kind(), fsutil::in_the_way(&e)) {
                // Gone meanwhile: try the rename again.
                (io::ErrorKind::NotFound, _) => continue,
                // A directory cannot be replaced: the rename below says so.
                (_, Some(Kind::Dir)) => Ok(()),
                // Not a lease at all (a planted symlink, FIFO, socket, device): nobody's.
                (_, Some(kind)) => {
                    tracing::warn!(
                        "replacing {kind} that was in the way of the lease {}",
                        lease.path().display()
                    );
                    Ok(())
                }
                // Not ours to write (another user's lease): its flock still tells whether it
                // lives.
                (io::ErrorKind::PermissionDenied, None) => {
                    match lease.open_regular(OFlag::O_RDONLY).map(|f| is_held(f).0) {
                        Ok(true) => Err(Errno::EAGAIN),
                        _ => Ok(()),
                    }
                }
                _ => Ok(()),
            },
        };
        match verdict {
            Ok(()) => return tmp.rename_over(lease).map_err(Publish::Io),
            Err(Errno::EAGAIN | Errno::EACCES) => return Err(Publish::Taken),
            Err(e) => return Err(Publish::Io(io::Error::from(e))),
        }
    }
    Err(Publish::Io(io::Error::other(
        "the lease kept changing under us",
    )))
}

/// "pid 42 in its container, since 2026-…" from the lease, or what could not be read of it.
fn describe_holder(lease: &Place) -> String {
    match lease
        .read_bounded()
        .ok()
        .and_then(|b| serde_json::from_slice::<Body>(&b).ok())
    {
        Some(b) => format!("pid {} in its container, since {}", b.pid, b.started_at),
        None => "holder unknown: the lease cannot be read".to_string(),
    }
}

/// What a reader found at a lease path.
#[derive(Debug)]
pub enum Found {
    Absent,
    /// Something that is not a lease (not a regular file: a planted symlink, FIFO, socket, device
    /// or directory), not opened: a reader treats it as no lease, and the next writer replaces it.
    Other(Kind),
    /// A lease file, opened read-only. `id` tells one lease from its replacement: the inode number
    /// alone does not (a filesystem may give a new file the number of one just freed), so it is
    /// combined with the content, which names the holder and its start and never changes.
    Lease {
        file: File,
        id: u64,
        body: Option<Body>,
    },
}

/// Opens the lease at `path` for watching, if it is a regular file (see `fsutil`).
pub fn open(path: &Path) -> Found {
    let file = match fsutil::open_regular(path) {
        Ok(f) => f,
        Err(e) => return fsutil::in_the_way(&e).map_or(Found::Absent, Found::Other),
    };
    let Ok(m) = file.metadata() else {
        return Found::Absent;
    };
    let mut head = Vec::with_capacity(256);
    let _ = (&file).take(512).read_to_end(&mut head);
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (m.dev(), m.ino(), &head).hash(&mut h);
    Found::Lease {
        id: h.finish(),
        body: serde_json::from_slice(&head).ok(),
        file,
    }
}

/// Whether the lease behind `file` is held exclusively right now (its writer is alive). Takes and
/// drops a shared lock without waiting; gives the file back either way.
pub fn is_held(file: File) -> (bool, Option<File>) {
    match Flock::lock(file, FlockArg::LockSharedNonblock) {
        Ok(lock) => (false, lock.unlock().ok()),
        Err((file, Errno::EWOULDBLOCK)) => (true, Some(file)),
        // Locks unsupported here (some FUSE): nothing to wait on; the heartbeat is the guard.
        Err((file, _)) => (false, Some(file)),
    }
}

/// Blocks until the lease's holder is gone (the kernel grants us a shared lock). Run on a helper
/// thread: there is no async flock, and a thread blocked in the kernel costs no wake-ups.
pub fn wait_released(file: File) -> io::Result<()> {
    match Flock::lock(file, FlockArg::LockShared) {
        // Dropped at once: a restarted writer takes its lock on a new file anyway.
        Ok(_lock) => Ok(()),
        Err((_, e)) => Err(io::Error::from(e)),
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

    #[test]
    fn one_holder_per_lease_and_readers_see_it_held() {
        let dir = tempfile::tempdir().unwrap();
        let done = dir.path().join("done");
        let first = Lease::acquire(&done, None).unwrap();
        match Lease::acquire(&done, Some(5)) {
            Err(LeaseError::Taken { holder, .. }) => {
                assert!(
                    holder.contains(&format!("pid {}", std::process::id())),
                    "{holder}"
                )
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
        let Found::Lease { file, body, .. } = open(first.path()) else {
            panic!("no lease")
        };
        assert_eq!(body.unwrap().heartbeat_ms, None);
        let (held, file) = is_held(file);
        assert!(held);
        first.release();
        assert!(!lease_path(&done).exists());
        assert!(!is_held(file.unwrap()).0);
        // Released: the next holder gets it; a dead holder's lease left behind is taken over.
        Lease::acquire(&done, None).unwrap().release();
        std::fs::write(lease_path(&done), b"{}").unwrap();
        let again = Lease::acquire(&done, None).unwrap();
        assert!(matches!(
            Lease::acquire(&done, None),
            Err(LeaseError::Taken { .. })
        ));
        again.release();
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(names.is_empty(), "{names:?}");
    }
}
