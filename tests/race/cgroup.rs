//! Containers as the kubelet knows them: a cgroup each (cgroup v2), which counts every process of
//! the container wherever it re-parents, and which the kernel kills as one (`cgroup.kill`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// This process's own cgroup v2 directory, if the machine has a writable cgroup v2 hierarchy
/// (the unified one of a hybrid setup counts: no controller is needed).
pub fn own() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mount = mounts.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        right
            .starts_with("cgroup2 ")
            .then(|| left.split_whitespace().nth(4).map(PathBuf::from))?
    })?;
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = own.lines().find_map(|l| l.strip_prefix("0::"))?;
    let dir = mount.join(rel.trim_start_matches('/'));
    dir.join("cgroup.procs").exists().then_some(dir)
}

pub fn make(dir: &Path) -> std::io::Result<PathBuf> {
    std::fs::create_dir(dir)?;
    Ok(dir.to_path_buf())
}

pub fn procs(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

pub fn populated(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("cgroup.events"))
        .map(|s| s.lines().any(|l| l == "populated 1"))
        .unwrap_or(false)
}

/// SIGKILLs every process of the cgroup at once.
pub fn kill(dir: &Path) {
    let _ = std::fs::write(dir.join("cgroup.kill"), "1");
}

/// Kills what is left, waits until the kernel has it gone, and removes the cgroup. False when
/// something would not go within the deadline.
pub fn remove(dir: &Path) -> bool {
    if !dir.exists() {
        return true;
    }
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        if populated(dir) {
            kill(dir);
        } else if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// `pid comm args` of each process in the cgroup, for messages.
pub fn describe(dir: &Path) -> String {
    procs(dir)
        .into_iter()
        .map(|p| {
            let cmd = std::fs::read(format!("/proc/{p}/cmdline"))
                .map(|b| {
                    String::from_utf8_lossy(&b)
                        .replace('\0', " ")
                        .trim()
                        .to_string()
                })
                .unwrap_or_default();
            let state = stat(p).map_or('?', |s| s.0);
            format!("pid {p} ({state}) {cmd}")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[path = "../shared/procfs.rs"]
mod procfs;
pub use procfs::{children, stat};

/// Every process still in `dir`'s tree, described (empty when there is none).
pub fn procs_under(dir: &Path) -> String {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if !procs(&d).is_empty() {
            out.push(format!("{}: {}", d.display(), describe(&d)));
        }
        if let Ok(entries) = std::fs::read_dir(&d) {
            stack.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
        }
    }
    out.join("; ")
}

/// Removes `dir` and every cgroup under it, killing what they hold.
pub fn remove_tree(dir: &Path) -> bool {
    let children: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|e| {
            e.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    children.iter().all(|c| remove_tree(c)) && remove(dir)
}

/// Every process of the machine.
pub fn all_pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}
