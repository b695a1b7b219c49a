//! Files on a volume other containers can write to: exclusive create, atomic replace, bounded
//! read, sibling paths. No policy here: which file means what lives in `marker`, `lease`, `ready`.
//!
//! Theory of operation: anything at a path on a shared emptyDir may have been planted by another
//! container (a symlink to a secret, a FIFO that blocks a reader, a multi-GiB sparse file). So
//! writers never write through an existing entry: they create a hidden temp file beside the target
//! with O_EXCL|O_NOFOLLOW and rename it over the final name (rename replaces a symlink without
//! following it, and readers see either nothing or the whole file). Readers open with
//! O_NOFOLLOW|O_NONBLOCK, refuse anything but a regular file and read a bounded prefix.

use nix::fcntl::OFlag;
use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Readers never look at more than this much of a file on the volume.
pub const MAX_READ: u64 = 64 * 1024;

/// The directory a path lives in (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A sibling path: `.NAME.SUFFIX` in the same directory (hidden, so globbing users skip it).
pub fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let name = path.file_name().unwrap_or(OsStr::new("file"));
    let mut s = OsString::from(".");
    s.push(name);
    s.push(".");
    s.push(suffix);
    parent_dir(path).join(s)
}

/// `PATH` with `SUFFIX` appended to its file name: `/shared/done` + `.lease`.
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// This process's temp sibling of `path`.
fn temp_of(path: &Path) -> PathBuf {
    sibling(path, &format!("tmp.{}", std::process::id()))
}

/// Creates a fresh file for writing: any stale entry at `path` (a temp file left by an earlier
/// container with the same PID, or a planted symlink) is unlinked first, then the file is created
/// with O_EXCL|O_NOFOLLOW so nothing is ever written through a link.
pub fn create_exclusive(path: &Path, mode: u32) -> io::Result<File> {
    let create = || {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(OFlag::O_NOFOLLOW.bits())
            .open(path)
    };
    let f = match create() {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            std::fs::remove_file(path)?;
            create()?
        }
        r => r?,
    };
    // The umask may have narrowed the mode; readers in other containers (other UIDs) need it.
    f.set_permissions(std::fs::Permissions::from_mode(mode))?;
    Ok(f)
}

/// Writes `contents` to `path` atomically: temp file, rename. No fsync: the rename is visible at
/// once to every reader on this kernel (all of a pod's containers), and an emptyDir does not
/// outlive its node, so a flush would only add a disk write to every job's end.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    publish(path, 0o644, |f| f.write_all(contents))
}

/// Creates `path` atomically with `mode`, filled by `fill`: temp file, fill, rename.
pub fn publish(
    path: &Path,
    mode: u32,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    let tmp = temp_of(path);
    let result = create_exclusive(&tmp, mode)
        .and_then(|mut f| fill(&mut f))
        .and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Renames `from` to `to` unless something is at `to` (then `AlreadyExists`): one atomic
/// `renameat2(RENAME_NOREPLACE)`; on a filesystem without it, `link` then `unlink`.
pub fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        std::ffi::CString::new(p.as_os_str().as_bytes())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
    };
    let (f, t) = (c(from)?, c(to)?);
    // SAFETY: both paths are NUL-terminated strings that live across the call; renameat2 reads
    // them and nothing else. (nix offers renameat2 only for glibc targets.)
    let r = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_renameat2,
            nix::libc::AT_FDCWD,
            f.as_ptr(),
            nix::libc::AT_FDCWD,
            t.as_ptr(),
            nix::libc::RENAME_NOREPLACE,
        )
    };
    if r == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(nix::libc::EINVAL | nix::libc::ENOSYS) => {
            std::fs::hard_link(from, to)?;
            let _ = std::fs::remove_file(from);
            Ok(())
        }
        _ => Err(e),
    }
}

/// Makes a rename durable. Best effort: some filesystems refuse fsync on directories.
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Opens a regular file for reading without following a symlink or blocking on a FIFO.
pub fn open_regular(path: &Path) -> io::Result<File> {
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
    Ok(f)
}

/// Reads at most [`MAX_READ`] bytes of a regular file (see [`open_regular`]).
pub fn read_bounded(path: &Path) -> io::Result<Vec<u8>> {
    // Sized for a marker, so one read usually takes it all.
    let mut buf = Vec::with_capacity(4096);
    open_regular(path)?.take(MAX_READ).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Removes a file left by an earlier run. A missing file is fine; anything else that cannot be
/// removed (a directory, a read-only volume) is an error. Returns whether something was removed.
pub fn remove_stale(path: &Path) -> io::Result<bool> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
        Ok(m) if m.is_dir() => {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                "a directory is in the way",
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

/// Proves that files can be created in `path`'s directory (and that nothing but a file or nothing
/// is at `path`), by creating and removing this process's temp sibling: the check `main` gets for
/// free by taking its lease, for files written only at the end (a ready file).
pub fn check_writable(path: &Path) -> io::Result<()> {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
        return Err(io::Error::new(
            io::ErrorKind::IsADirectory,
            "a directory is in the way",
        ));
    }
    let tmp = temp_of(path);
    create_exclusive(&tmp, 0o644)?;
    std::fs::remove_file(&tmp)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(
            with_suffix(Path::new("/shared/done"), ".lease"),
            PathBuf::from("/shared/done.lease")
        );
        assert_eq!(parent_dir(Path::new("done")), Path::new("."));
    }
}
