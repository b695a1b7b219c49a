//! Files: temp dirs, JSON documents, paths, and who waits on a lock.

use std::path::{Path, PathBuf};

/// A fresh temporary directory, removed on drop.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("supervisor-it-")
        .tempdir()
        .expect("tempdir")
}

/// Reads a JSON file into a serde_json::Value, failing the test with the text on error.
pub fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?} is not JSON ({e}): {text}"))
}

pub fn path_str(p: &Path) -> String {
    p.to_str().expect("utf-8 path").to_string()
}

/// `mkdir -p`, returning the path.
pub fn mkdir(p: &Path) -> PathBuf {
    std::fs::create_dir_all(p).expect("mkdir");
    p.to_path_buf()
}

/// How many processes are blocked waiting for a lock on `path` (the `->` lines of /proc/locks
/// for its inode): lets a test know a sidecar is already parked on a lease.
pub fn lock_waiters(path: &Path) -> usize {
    use std::os::unix::fs::MetadataExt;
    let Ok(ino) = std::fs::metadata(path).map(|m| m.ino()) else {
        return 0;
    };
    let needle = format!(":{ino} ");
    std::fs::read_to_string("/proc/locks")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("->") && l.contains(&needle))
        .count()
}

/// A main's marker with exit code `code`, written as `supervisor main` writes one: a temporary
/// file, then a rename, so a reader never sees half of it.
pub fn write_marker(path: &Path, code: i64) {
    let tmp = path.with_extension("test-tmp");
    std::fs::write(
        &tmp,
        format!("{{\"version\":1,\"exit_code\":{code},\"reason\":\"exited\"}}"),
    )
    .unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// `<marker>.lease`.
pub fn lease(marker: &Path) -> std::path::PathBuf {
    let mut s = marker.as_os_str().to_os_string();
    s.push(".lease");
    s.into()
}
