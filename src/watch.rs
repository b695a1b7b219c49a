//! Waiting for files that may not exist yet, in directories that may not exist yet.
//!
//! Theory of operation: for every path of interest we watch, with inotify, the nearest ancestor of
//! its directory that exists. Any event there may mean progress (the marker appeared, or a
//! directory on the way to it did), so the caller re-checks its paths and re-arms, which moves the
//! watch one level deeper as directories get created. The caller always checks AFTER arming: a file
//! created between a check and the arming would otherwise be missed forever.
//!
//! While nothing changes there are no wake-ups at all: no timer runs when inotify works. When it
//! does not (the instance limit is 0, or the filesystem does not deliver events) we fall back to
//! polling at `--poll`, and say so once.

use crate::asyncfd::{self, Owned};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::unix::AsyncFd;

pub struct Watcher {
    paths: Vec<PathBuf>,
    backend: Backend,
}

enum Backend {
    Inotify {
        fd: AsyncFd<Owned<Inotify>>,
        watched: HashMap<PathBuf, WatchDescriptor>,
    },
    Poll(Duration),
}

impl Watcher {
    /// Watches for changes to `paths` (files whose appearance or change we care about).
    pub fn new(paths: Vec<PathBuf>, poll: Duration) -> Self {
        let backend = match Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
            .map_err(std::io::Error::from)
            .and_then(asyncfd::readable)
        {
            Ok(fd) => Backend::Inotify {
                fd,
                watched: HashMap::new(),
            },
            Err(e) => {
                tracing::warn!(
                    "inotify is unavailable ({e}); polling every {}ms instead",
                    poll.as_millis()
                );
                Backend::Poll(poll)
            }
        };
        let mut w = Watcher { paths, backend };
        w.arm();
        w
    }

    /// Replaces the paths of interest and re-arms: directories no longer needed lose their watch
    /// at once (see [`Watcher::disarm`] for why that matters), new ones gain one.
    pub fn set_paths(&mut self, paths: Vec<PathBuf>) {
        if paths != self.paths {
            self.paths = paths;
            self.arm();
        }
    }

    /// True when this watcher polls instead of using inotify.
    pub fn is_polling(&self) -> bool {
        matches!(self.backend, Backend::Poll(_))
    }

    /// Adds watches on the nearest existing ancestors of every path. Idempotent; call after each
    /// change, before re-checking the paths.
    pub fn arm(&mut self) {
        let Backend::Inotify { fd, watched } = &mut self.backend else {
            return;
        };
        let mut dirs: Vec<PathBuf> = Vec::new();
        for p in &self.paths {
            let d = nearest_existing_dir(crate::fsutil::parent_dir(p));
            if !dirs.contains(&d) {
                dirs.push(d);
            }
        }
        // Drop watches on directories we no longer need (we went deeper).
        watched.retain(|dir, wd| {
            let keep = dirs.contains(dir);
            if !keep {
                let _ = fd.get_ref().0.rm_watch(*wd);
            }
            keep
        });
        // No IN_ATTRIB: a main's heartbeat touches its lease's mtime, and that must not wake us.
        let mask = AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_MOVED_FROM
            | AddWatchFlags::IN_CLOSE_WRITE
            | AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_DELETE_SELF
            | AddWatchFlags::IN_MOVE_SELF
            | AddWatchFlags::IN_ONLYDIR;
        for d in dirs {
            if watched.contains_key(&d) {
                continue;
            }
            match fd.get_ref().0.add_watch(&d, mask) {
                Ok(wd) => {
                    tracing::debug!("watching {}", d.display());
                    watched.insert(d, wd);
                }
                Err(e) => tracing::debug!("cannot watch {}: {e}", d.display()),
            }
        }
    }

    /// Removes every watch. Closing an inotify instance waits for the kernel to retire its
    /// watches (an SRCU grace period, 10-20 ms here), and process exit closes it too, so an
    /// instance is never closed on a critical path: its watches are removed as soon as they are no
    /// longer needed (removal only queues the retirement, which then runs in the background) and
    /// the instance itself lives on, empty, until the process exits.
    pub fn disarm(&mut self) {
        self.paths.clear();
        if let Backend::Inotify { fd, watched } = &mut self.backend {
            for (_, wd) in watched.drain() {
                let _ = fd.get_ref().0.rm_watch(wd);
            }
        }
    }

    /// Waits until something may have changed, then re-arms. Spurious wake-ups are allowed: the
    /// caller re-checks its paths.
    pub async fn changed(&mut self) {
        if self.paths.is_empty() {
            // Nothing to watch: no wake-ups, not even polling ones.
            return std::future::pending().await;
        }
        match &mut self.backend {
            Backend::Poll(every) => tokio::time::sleep(*every).await,
            Backend::Inotify { fd, watched } => {
                loop {
                    let mut guard = match fd.readable_mut().await {
                        Ok(g) => g,
                        Err(_) => return,
                    };
                    match guard.get_inner_mut().0.read_events() {
                        Ok(events) => {
                            let gone: Vec<WatchDescriptor> = events
                                .iter()
                                .filter(|e| e.mask.contains(AddWatchFlags::IN_IGNORED))
                                .map(|e| e.wd)
                                .collect();
                            if !gone.is_empty() {
                                watched.retain(|_, wd| !gone.contains(wd));
                            }
                            break;
                        }
                        Err(nix::errno::Errno::EAGAIN) => guard.clear_ready(),
                        Err(_) => break,
                    }
                }
                self.arm();
            }
        }
    }
}

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
