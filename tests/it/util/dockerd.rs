//! A real dockerd for the tests, owning nothing of the host's: its own config file (not
//! /etc/docker/daemon.json), data and exec roots, pid file and socket, all under a directory of the
//! test's; and run in a mount namespace of its own with an empty tmpfs on /run/containerd, because
//! dockerd uses a containerd it finds on the default socket instead of starting its own.

use super::fs::path_str;
use super::ns::{bin, sup_env};
use std::path::{Path, PathBuf};
use std::process::Command;

/// dockerd's arguments, everything under `root` (its socket is `root/docker.sock`).
pub fn dockerd_args(dockerd: &Path, root: &Path) -> Vec<String> {
    let config = root.join("daemon.json");
    std::fs::write(&config, "{}").expect("write daemon.json");
    let p = |n: &str| path_str(&root.join(n));
    vec![
        path_str(dockerd),
        "--iptables=false".into(),
        "--ip6tables=false".into(),
        "--bridge=none".into(),
        "--storage-driver=vfs".into(),
        "--data-root".into(),
        p("data"),
        "--exec-root".into(),
        p("exec"),
        "--config-file".into(),
        p("daemon.json"),
        "--pidfile".into(),
        p("docker.pid"),
        "-H".into(),
        format!("unix://{}", p("docker.sock")),
    ]
}

/// The supervisor with `args`, in a mount namespace where the host's /run/containerd is hidden.
pub fn sup_hiding_containerd(args: &[String]) -> Command {
    let mut c = Command::new("unshare");
    c.args([
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        r#"if [ -d /run/containerd ]; then mount -t tmpfs tmpfs /run/containerd || exit 99; fi; exec "$0" "$@""#,
        bin(),
    ])
    .args(args);
    sup_env(&mut c);
    c
}

/// Unmounts whatever a daemon left mounted under a directory (dockerd leaves its exec-root
/// mounts behind when it is killed), deepest first.
pub struct Unmount(pub PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let prefix = path_str(&self.0);
        let mut targets: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter(|m| m.starts_with(&prefix))
            .collect();
        targets.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in targets {
            let _ = Command::new("umount").args(["-l", m]).status();
        }
    }
}
