//! Waiting for files that may not exist yet, in directories that may not exist yet.
//!
//! Theory of operation: for every path of interest we watch the nearest ancestor of its directory
//! that exists. Any event there may mean progress (the file appeared, or a directory on the way to
//! it did), so the caller re-checks its paths and the watcher re-arms, which moves the watch one
//! level deeper as directories get created. The caller always checks AFTER arming: a file created
//! between a check and the arming would otherwise be missed forever. While nothing changes there
//! are no wake-ups at all.
//!
//! The event loop waits on the inotify descriptor ([`Watcher::inotify_fd`]) and hears dnotify
//! through its signalfd; on either, or on the poll tick when a directory can only be polled, it
//! calls [`Watcher::arm`] and re-checks its paths.
//!
//! How a directory is watched, in order of preference:
//! - dnotify (`fcntl(F_NOTIFY)` on an open directory): the kernel sends us SIGIO, which arrives
//!   through the signalfd like every other signal (`events` tells it apart from a SIGIO someone
//!   sends us by its origin). Its kernel group lives as long as the
//!   kernel, so closing the directory at exit costs nothing. inotify's does not: closing an inotify
//!   instance waits for the kernel to retire its watches (an SRCU grace period, 10-20 ms here), and
//!   a process exit closes it, so a supervisor that watched with inotify until just before its end
//!   exits 10-20 ms late, after its work is done.
//! - inotify, where dnotify is not available (`fs.dir-notify-enable = 0`).
//! - polling at `--poll`, where neither can watch the directory (no permission to read it, the
//!   inotify instance limit reached), said once.

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// fcntl(2)'s F_NOTIFY and its flags (linux/fcntl.h; the libc crate does not have them).
const F_NOTIFY: i32 = 1024 + 2;
const DN_CREATE: i32 = 0x4;
const DN_DELETE: i32 = 0x8;
const DN_RENAME: i32 = 0x10;
const DN_MULTISHOT: i32 = 0x8000_0000_u32 as i32;

/// How one directory is watched.
enum Mark {
    /// The open directory: closing it ends the watch.
    Dnotify(#[allow(dead_code)] OwnedFd),
    Inotify(WatchDescriptor),
    /// Neither works there: poll.
    Unwatched,
}

pub struct Watcher {
    paths: Vec<PathBuf>,
    poll: Duration,
    marks: HashMap<PathBuf, Mark>,
    inotify: Option<Inotify>,
    /// Said that it polls.
    said: bool,
}

impl Watcher {
    /// Watches for changes to `paths` (files whose appearance or change we care about).
    pub fn new(paths: Vec<PathBuf>, poll: Duration) -> Self {
        let mut w = Watcher {
            paths,
            poll,
            marks: HashMap::new(),
            inotify: None,
            said: false,
        };
        w.arm();
        w
    }

    /// Replaces the paths of interest and re-arms: directories no longer needed lose their watch
    /// at once, new ones gain one.
    pub fn set_paths(&mut self, paths: Vec<PathBuf>) {
        if paths != self.paths {
            self.paths = paths;
            self.arm();
        }
    }

    /// True when some directory can only be polled.
    pub fn is_polling(&self) -> bool {
        self.marks.values().any(|m| matches!(m, Mark::Unwatched))
    }

    /// How often to look when some directory can only be polled.
    pub fn poll_interval(&self) -> Duration {
        self.poll
    }

    /// The inotify instance's descriptor, once a directory is watched with inotify.
    pub fn inotify_fd(&self) -> Option<BorrowedFd<'_>> {
        self.inotify.as_ref().map(|i| i.as_fd())
    }

    /// Reads and discards the inotify events (the caller re-checks its paths anyway).
    pub fn drain_inotify(&self) {
        if let Some(i) = &self.inotify {
            while i.read_events().is_ok_and(|e| !e.is_empty()) {}
        }
    }

    /// Watches the nearest existing ancestors of every path, and only those. Idempotent; call
    /// after each change, before re-checking the paths.
    ///
    /// A directory can appear below the one chosen between choosing it and arming its watch
    /// (`mkdir -p a/b/c` while we arm `a`): its creation made no event we will see, and nothing
    /// deeper would either. So the choice is made again after arming, until it holds still.
    pub fn arm(&mut self) {
        // Each round that changes the choice went at least one level deeper or saw a directory
        // vanish; a bound keeps a directory created and removed in a loop from holding us here.
        let mut dirs = self.dirs_to_watch();
        for _ in 0..64 {
            self.arm_dirs(&dirs);
            let again = self.dirs_to_watch();
            if again == dirs {
                return;
            }
            dirs = again;
        }
        tracing::debug!("watched directories keep changing; re-armed 64 times");
    }

    /// The nearest existing ancestor of each path, once each.
    fn dirs_to_watch(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        for p in &self.paths {
            let d = nearest_existing_dir(crate::fsutil::parent_dir(p));
            if !dirs.contains(&d) {
                dirs.push(d);
            }
        }
        dirs
    }

    /// Watches exactly `dirs`.
    fn arm_dirs(&mut self, dirs: &[PathBuf]) {
        // Drop watches on directories we no longer need (we went deeper, or are done).
        let inotify = &self.inotify;
        self.marks.retain(|dir, mark| {
            let keep = dirs.contains(dir);
            if !keep {
                if let (Mark::Inotify(wd), Some(fd)) = (mark, inotify) {
                    let _ = fd.rm_watch(*wd);
                }
            }
            keep
        });
        for d in dirs {
            if !self.marks.contains_key(d) {
                let mark = self.mark(d);
                self.marks.insert(d.clone(), mark);
            }
        }
    }

    fn mark(&mut self, dir: &Path) -> Mark {
        let dnotify_error = match dnotify(dir) {
            Ok(fd) => {
                tracing::debug!("watching {} (dnotify)", dir.display());
                return Mark::Dnotify(fd);
            }
            Err(e) => e,
        };
        match self.inotify_watch(dir) {
            Ok(wd) => {
                tracing::debug!(
                    "watching {} (inotify; dnotify: {dnotify_error})",
                    dir.display()
                );
                Mark::Inotify(wd)
            }
            Err(e) => {
                if !self.said {
                    tracing::warn!(
                        "cannot watch {} (dnotify: {dnotify_error}; inotify: {e}); polling every {}ms instead",
                        dir.display(),
                        self.poll.as_millis()
                    );
                    self.said = true;
                }
                Mark::Unwatched
            }
        }
    }

    fn inotify_watch(&mut self, dir: &Path) -> io::Result<WatchDescriptor> {
        if self.inotify.is_none() {
            let fd = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
            self.inotify = Some(fd);
        }
        let fd = self.inotify.as_ref();
        // No IN_ATTRIB: a main's heartbeat touches its lease's mtime, and that must not wake us.
        let mask = AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_MOVED_FROM
            | AddWatchFlags::IN_CLOSE_WRITE
            | AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_DELETE_SELF
            | AddWatchFlags::IN_MOVE_SELF
            | AddWatchFlags::IN_ONLYDIR;
        match fd {
            Some(fd) => fd.add_watch(dir, mask).map_err(io::Error::from),
            None => Err(io::Error::other("no inotify instance")),
        }
    }

    /// Stops watching everything (see `set_paths`).
    pub fn disarm(&mut self) {
        self.set_paths(Vec::new());
    }
}

/// Watches `dir` with dnotify: creations, deletions and renames in it, for as long as the
/// returned descriptor is open.
fn dnotify(dir: &Path) -> io::Result<OwnedFd> {
    let fd: OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_DIRECTORY)
        .open(dir)?
        .into();
    // SAFETY: fcntl on a descriptor we own, with an integer argument.
    let r = unsafe {
        nix::libc::fcntl(
            fd.as_raw_fd(),
            F_NOTIFY,
            DN_CREATE | DN_DELETE | DN_RENAME | DN_MULTISHOT,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

use std::os::unix::fs::OpenOptionsExt;

/// The deepest existing directory on the way to `dir` (at worst `/` or `.`).
pub fn nearest_existing_dir(dir: &Path) -> PathBuf {
    let mut d = dir.to_path_buf();
    loop {
        if d.is_dir() {
            return d;
        }
        match d.parent() {
            Some(p) if !p.as_os_str().is_empty() => d = p.to_path_buf(),
            _ => {
                return if dir.is_absolute() {
                    PathBuf::from("/")
                } else {
                    PathBuf::from(".")
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_dir() {
        assert_eq!(nearest_existing_dir(Path::new("/")), PathBuf::from("/"));
        assert_eq!(
            nearest_existing_dir(Path::new("/proc/nonexistent/deeper")),
            PathBuf::from("/proc")
        );
        assert_eq!(
            nearest_existing_dir(Path::new("no/such/dir")),
            PathBuf::from(".")
        );
    }
}
