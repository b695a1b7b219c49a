//! Files on a volume other containers can write to: exclusive create, atomic replace, bounded
//! read, sibling names. No policy here: which file means what lives in `marker`, `lease`, `ready`.
//!
//! Theory of operation: anything at a path on a shared emptyDir may have been planted by another
//! container - a symlink to a secret, a FIFO, a listening socket, a device node, a directory, a
//! multi-GiB sparse file - and any directory on the way may be swapped while we run.
//! - Nothing is opened that is not a regular file. Opening a FIFO blocks until its other end
//!   comes (on the thread that reads signals, that is a PID 1 deaf to TERM), a terminal opened
//!   by a session leader becomes its controlling terminal, and a device's open has the driver's
//!   side effects. So the entry is looked at first (`lstat`: a symlink is a symlink, not what it
//!   names), only a regular file is opened, with O_NOFOLLOW|O_NONBLOCK|O_NOCTTY (an open never
//!   waits, not even for a file lease's break), and what was opened is checked again (`fstat`),
//!   which catches a swap between the look and the open. What is refused says what it was
//!   ([`in_the_way`]), for one warning that names it.
//! - Writers never write through an existing entry: they create a hidden temp file beside the
//!   target with O_EXCL|O_NOFOLLOW (nothing existing is ever opened) and rename it over the final
//!   name (rename replaces a symlink, FIFO or device without following or opening it, and readers
//!   see either nothing or the whole file).
//! - A writer's directory is opened once ([`Place::open`]) and every later operation - create,
//!   rename, unlink, look - is relative to that descriptor, never to the path again. What it
//!   protects against: a directory on the way renamed, deleted, or swapped for a symlink or a
//!   FIFO while we run cannot redirect a write, a rename or an unlink; they land in the directory
//!   that was there when we started, or fail (it was deleted), and never in whatever the path
//!   names by then. What it does not: the path is resolved once, at start, following symlinks as
//!   the kernel does, because the path and every link in it at that moment are the user's
//!   configuration (an image's /var/run -> /run, a volume mounted behind a link). Readers, which
//!   wait for other containers' files that may appear in directories made later, resolve their
//!   paths each time and only ever read.

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag};
use nix::unistd::UnlinkatFlags;
use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Readers never look at more than this much of a file on the volume.
pub const MAX_READ: u64 = 64 * 1024;

/// The directory a path lives in (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// `PATH` with `SUFFIX` appended to its file name: `/shared/done` + `.lease`.
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// What sits at a path, as `lstat` sees it: a symlink is a symlink, not what it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
}

impl Kind {
    /// The kind an `st_mode` gives.
    pub fn of(mode: u32) -> Kind {
        match SFlag::from_bits_truncate(mode & SFlag::S_IFMT.bits()) {
            SFlag::S_IFDIR => Kind::Dir,
            SFlag::S_IFLNK => Kind::Symlink,
            SFlag::S_IFIFO => Kind::Fifo,
            SFlag::S_IFSOCK => Kind::Socket,
            SFlag::S_IFCHR => Kind::CharDevice,
            SFlag::S_IFBLK => Kind::BlockDevice,
            _ => Kind::File,
        }
    }
}

impl std::fmt::Display for Kind {
    /// With its article, for messages: "a FIFO".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::File => "a regular file",
            Kind::Dir => "a directory",
            Kind::Symlink => "a symlink",
            Kind::Fifo => "a FIFO",
            Kind::Socket => "a socket",
            Kind::CharDevice => "a character device",
            Kind::BlockDevice => "a block device",
        })
    }
}

/// The error a refused entry gives: it names what was there.
#[derive(Debug)]
struct NotRegular(Kind);

impl std::fmt::Display for NotRegular {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Kind::Dir => f.write_str("a directory is in the way"),
            k => write!(f, "not a regular file ({k})"),
        }
    }
}

impl std::error::Error for NotRegular {}

fn not_regular(kind: Kind) -> io::Error {
    let e = match kind {
        Kind::Dir => io::ErrorKind::IsADirectory,
        _ => io::ErrorKind::InvalidData,
    };
    io::Error::new(e, NotRegular(kind))
}

/// What was in the way, when `e` is the refusal of something that is not a regular file.
pub fn in_the_way(e: &io::Error) -> Option<Kind> {
    e.get_ref()?.downcast_ref::<NotRegular>().map(|n| n.0)
}

/// What an `lstat` found: its kind and identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    pub dev: u64,
    pub ino: u64,
}

/// A name as the kernel takes it. (nix passes a `CStr` through as is; any other path type is
/// copied into a buffer first, in code of its own for each call.)
fn c_name(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// `openat`, as an owned descriptor.
fn open_at(dir: RawFd, name: &CStr, flags: OFlag, mode: u32) -> io::Result<OwnedFd> {
    let fd = nix::fcntl::openat(Some(dir), name, flags, Mode::from_bits_truncate(mode))?;
    // SAFETY: openat just returned this descriptor; nothing else owns or closes it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `lstat` of `name` in `dir`; None when nothing is there.
fn look_at(dir: RawFd, name: &CStr) -> io::Result<Option<Entry>> {
    match nix::sys::stat::fstatat(Some(dir), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(Entry {
            kind: Kind::of(st.st_mode),
            dev: st.st_dev,
            ino: st.st_ino,
        })),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Opens `name` in `dir` (`access`: O_RDONLY, O_WRONLY or O_RDWR) if it is a regular file, and
/// refuses anything else without opening it (see the theory of operation).
fn open_regular_at(dir: RawFd, name: &CStr, access: OFlag) -> io::Result<File> {
    match look_at(dir, name)? {
        None => return Err(Errno::ENOENT.into()),
        Some(e) if e.kind != Kind::File => return Err(not_regular(e.kind)),
        Some(_) => {}
    }
    let flags = access | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let file = File::from(open_at(dir, name, flags, 0)?);
    let m = file.metadata()?;
    if !m.is_file() {
        return Err(not_regular(Kind::of(m.mode())));
    }
    Ok(file)
}

/// Opens a regular file for reading, by path (a reader's re-resolving open; see the theory).
pub fn open_regular(path: &Path) -> io::Result<File> {
    open_regular_at(
        nix::libc::AT_FDCWD,
        &c_name(path.as_os_str())?,
        OFlag::O_RDONLY,
    )
}

/// Opens an existing regular file for writing in place, by path (the kubelet's termination log,
/// a bind mount that cannot be renamed over).
pub fn open_regular_for_write(path: &Path) -> io::Result<File> {
    open_regular_at(
        nix::libc::AT_FDCWD,
        &c_name(path.as_os_str())?,
        OFlag::O_WRONLY,
    )
}

/// Reads at most [`MAX_READ`] bytes of a regular file (see [`open_regular`]).
pub fn read_bounded(path: &Path) -> io::Result<Vec<u8>> {
    read_all(open_regular(path)?)
}

fn read_all(file: File) -> io::Result<Vec<u8>> {
    // Sized for a marker, so one read usually takes it all.
    let mut buf = Vec::with_capacity(4096);
    file.take(MAX_READ).read_to_end(&mut buf)?;
    Ok(buf)
}

/// A directory opened once. O_PATH: it needs no read permission and reads nothing; it only
/// anchors the `*at` calls.
#[derive(Debug)]
struct Dir(OwnedFd);

/// A file name in a directory opened once: every operation is relative to the directory's
/// descriptor, never to the path again (see the theory of operation). The path is kept for
/// messages.
#[derive(Debug, Clone)]
pub struct Place {
    dir: Arc<Dir>,
    name: CString,
    path: PathBuf,
}

impl Place {
    /// Opens `path`'s directory - resolving the path now, symlinks included, for the whole run -
    /// and names `path`'s file in it. Fails when the directory is not there or not a directory.
    pub fn open(path: &Path) -> io::Result<Place> {
        let name = path
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?;
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let dir = c_name(parent_dir(path).as_os_str())?;
        let fd = open_at(nix::libc::AT_FDCWD, &dir, flags, 0)?;
        Ok(Place {
            dir: Arc::new(Dir(fd)),
            name: c_name(name)?,
            path: path.to_path_buf(),
        })
    }

    /// The path as given, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `prefix` + this name + `suffix`, in the same directory.
    fn named(&self, prefix: &str, suffix: &str) -> Place {
        let mut name = prefix.as_bytes().to_vec();
        name.extend_from_slice(self.name.to_bytes());
        name.extend_from_slice(suffix.as_bytes());
        let path = parent_dir(&self.path).join(OsStr::from_bytes(&name));
        Place {
            dir: Arc::clone(&self.dir),
            // A name without NUL, and text without NUL.
            name: CString::new(name).unwrap_or_default(),
            path,
        }
    }

    /// `NAME` + `suffix` in the same directory: `done` + `.lease`.
    pub fn beside(&self, suffix: &str) -> Place {
        self.named("", suffix)
    }

    /// This process's temp name for this file: `.NAME.tmp.PID` in the same directory (hidden, so
    /// globbing users skip it; per process, so two writers never share one). The only temp name.
    pub fn temp(&self) -> Place {
        self.named(".", &format!(".tmp.{}", std::process::id()))
    }

    fn fd(&self) -> RawFd {
        self.dir.0.as_raw_fd()
    }

    /// What is at this name now, without following a symlink; None when nothing is.
    pub fn look(&self) -> io::Result<Option<Entry>> {
        look_at(self.fd(), &self.name)
    }

    /// Opens the file if it is a regular one (`access`: O_RDONLY, O_WRONLY or O_RDWR).
    pub fn open_regular(&self, access: OFlag) -> io::Result<File> {
        open_regular_at(self.fd(), &self.name, access)
    }

    /// Reads at most [`MAX_READ`] bytes, if it is a regular file.
    pub fn read_bounded(&self) -> io::Result<Vec<u8>> {
        read_all(self.open_regular(OFlag::O_RDONLY)?)
    }

    /// Removes the entry (not a directory).
    pub fn remove(&self) -> io::Result<()> {
        nix::unistd::unlinkat(
            Some(self.fd()),
            self.name.as_c_str(),
            UnlinkatFlags::NoRemoveDir,
        )
        .map_err(io::Error::from)
    }

    /// Creates a fresh file for writing: any stale entry (a temp file left by an earlier container
    /// with the same PID, or a planted symlink or FIFO) is unlinked first, then the file is created
    /// with O_EXCL|O_NOFOLLOW, so nothing that exists is ever opened or written through.
    pub fn create_exclusive(&self, mode: u32) -> io::Result<File> {
        let flags = OFlag::O_WRONLY
            | OFlag::O_CREAT
            | OFlag::O_EXCL
            | OFlag::O_NOFOLLOW
            | OFlag::O_NOCTTY
            | OFlag::O_CLOEXEC;
        let file = match open_at(self.fd(), &self.name, flags, mode) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                self.remove()?;
                open_at(self.fd(), &self.name, flags, mode)?
            }
            r => r?,
        };
        let file = File::from(file);
        // The umask may have narrowed the mode; readers in other containers (other UIDs) need it.
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        Ok(file)
    }

    /// Creates the file atomically with `mode`, filled by `fill`: this process's temp file, fill,
    /// rename over whatever is at the name (never a directory). The temp file is gone either way.
    pub fn publish(
        &self,
        mode: u32,
        fill: impl FnOnce(&mut File) -> io::Result<()>,
    ) -> io::Result<()> {
        let tmp = self.temp();
        let result = tmp
            .create_exclusive(mode)
            .and_then(|mut f| fill(&mut f))
            .and_then(|()| tmp.rename_over(self));
        if result.is_err() {
            let _ = tmp.remove();
        }
        result
    }

    /// Writes `contents` atomically (see [`Place::publish`]). No fsync: the rename is visible at
    /// once to every reader on this kernel (all of a pod's containers), and an emptyDir does not
    /// outlive its node, so a flush would only add a disk write to every job's end.
    pub fn write_atomic(&self, contents: &[u8]) -> io::Result<()> {
        self.publish(0o644, |f| f.write_all(contents))
    }

    /// Renames this entry to `to`, replacing what is there (anything but a directory).
    pub fn rename_over(&self, to: &Place) -> io::Result<()> {
        nix::fcntl::renameat(
            Some(self.fd()),
            self.name.as_c_str(),
            Some(to.fd()),
            to.name.as_c_str(),
        )
        .map_err(io::Error::from)
    }

    /// Renames this entry to `to` unless something is there (then `AlreadyExists`): one atomic
    /// `renameat2(RENAME_NOREPLACE)`; on a filesystem without it, `linkat` then `unlinkat`.
    pub fn rename_noreplace(&self, to: &Place) -> io::Result<()> {
        // SAFETY: both names are NUL-terminated strings that live across the call and both
        // descriptors are open; renameat2 reads them and nothing else. (nix offers renameat2 only
        // for glibc targets.)
        let r = unsafe {
            nix::libc::syscall(
                nix::libc::SYS_renameat2,
                self.fd(),
                self.name.as_ptr(),
                to.fd(),
                to.name.as_ptr(),
                nix::libc::RENAME_NOREPLACE,
            )
        };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(nix::libc::EINVAL | nix::libc::ENOSYS) => {
                nix::unistd::linkat(
                    Some(self.fd()),
                    self.name.as_c_str(),
                    Some(to.fd()),
                    to.name.as_c_str(),
                    AtFlags::empty(),
                )?;
                let _ = self.remove();
                Ok(())
            }
            _ => Err(e),
        }
    }

    /// Removes what an earlier run left at this name. Nothing there is fine; a directory (or
    /// anything that cannot be removed: a read-only volume) is an error. Returns what was removed:
    /// anything but a directory goes, unopened, unfollowed.
    pub fn remove_stale(&self) -> io::Result<Option<Kind>> {
        let Some(entry) = self.look()? else {
            return Ok(None);
        };
        if entry.kind == Kind::Dir {
            return Err(not_regular(Kind::Dir));
        }
        match self.remove() {
            Ok(()) => Ok(Some(entry.kind)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Proves that files can be created in the directory (and that no directory is at the name)
    /// by creating and removing this process's temp file: the check `main` gets for free by
    /// taking its lease, for files written only later (a ready file).
    pub fn check_writable(&self) -> io::Result<()> {
        if self.look()?.is_some_and(|e| e.kind == Kind::Dir) {
            return Err(not_regular(Kind::Dir));
        }
        let tmp = self.temp();
        tmp.create_exclusive(0o644)?;
        tmp.remove()
    }

    /// Makes the directory's entries durable. Best effort: some filesystems refuse fsync on a
    /// directory.
    pub fn sync_dir(&self) {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        if let Ok(d) = open_at(self.fd(), c".", flags, 0) {
            let _ = File::from(d).sync_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_beside_and_temp() {
        let dir = tempfile::tempdir().unwrap();
        let done = Place::open(&dir.path().join("done")).unwrap();
        assert_eq!(done.beside(".lease").path(), dir.path().join("done.lease"));
        let tmp = done.temp();
        assert_eq!(
            tmp.path(),
            dir.path().join(format!(".done.tmp.{}", std::process::id()))
        );
        assert_eq!(
            with_suffix(Path::new("/shared/done"), ".lease"),
            PathBuf::from("/shared/done.lease")
        );
        assert_eq!(parent_dir(Path::new("done")), Path::new("."));
        assert!(Place::open(Path::new("/")).is_err());
    }

    #[test]
    fn what_is_in_the_way_is_named_and_never_opened() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o644)).unwrap();
        let e = open_regular_for_write(&fifo).unwrap_err();
        assert_eq!(in_the_way(&e), Some(Kind::Fifo));
        assert_eq!(e.to_string(), "not a regular file (a FIFO)");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("/dev/null", &link).unwrap();
        assert_eq!(
            in_the_way(&open_regular(&link).unwrap_err()),
            Some(Kind::Symlink)
        );
        let e = open_regular(dir.path()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::IsADirectory);
        assert_eq!(in_the_way(&io::Error::other("x")), None);
        let p = Place::open(&fifo).unwrap();
        assert_eq!(p.remove_stale().unwrap(), Some(Kind::Fifo));
        assert_eq!(p.remove_stale().unwrap(), None);
    }

    #[test]
    fn writes_land_in_the_directory_opened_at_the_start() {
        let root = tempfile::tempdir().unwrap();
        let (dir, moved, other) = (
            root.path().join("d"),
            root.path().join("moved"),
            root.path().join("other"),
        );
        std::fs::create_dir(&dir).unwrap();
        std::fs::create_dir(&other).unwrap();
        let done = Place::open(&dir.join("done")).unwrap();
        std::fs::rename(&dir, &moved).unwrap();
        std::os::unix::fs::symlink(&other, &dir).unwrap();
        done.write_atomic(b"x").unwrap();
        assert_eq!(std::fs::read(moved.join("done")).unwrap(), b"x");
        assert_eq!(std::fs::read_dir(&other).unwrap().count(), 0);
        let lease = done.beside(".lease");
        done.temp().write_atomic(b"y").unwrap();
        done.temp().rename_noreplace(&lease).unwrap();
        let again = done.temp();
        again.write_atomic(b"z").unwrap();
        let e = again.rename_noreplace(&lease).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        again.remove().unwrap();
        assert_eq!(lease.read_bounded().unwrap(), b"y");
        let mut names: Vec<_> = std::fs::read_dir(&moved)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["done", "done.lease"]);
    }
}
