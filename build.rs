//! Records what `--version` names beside the crate version: the git commit (when the source is a
//! git checkout) and the target triple, so a binary found in an image says what it was built as.
use std::process::Command;

fn main() {
    // Cargo runs this script once per target triple and tells it which. (SV_, like the commit's
    // variable below: not a setting of the binary's own.)
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown target".into());
    println!("cargo:rustc-env=SV_BUILD_TARGET={target}");
    let commit = std::env::var("SUPERVISOR_GIT_COMMIT").ok().or_else(|| {
        let out = Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
            .filter(|s| !s.is_empty())
    });
    // Not under SUPERVISOR_: cargo also sets it in the environment of `cargo test`'s processes,
    // where the binary would take it for a misspelt setting of its own.
    println!(
        "cargo:rustc-env=SV_BUILD_COMMIT={}",
        commit.unwrap_or_else(|| "unknown commit".into())
    );
    println!("cargo:rerun-if-env-changed=SUPERVISOR_GIT_COMMIT");
    // Ask git where HEAD and the refs live: in a worktree `.git` is a file, not a directory.
    for name in ["HEAD", "refs/heads", "packed-refs"] {
        let path = Command::new("git")
            .args(["rev-parse", "--git-path", name])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        if let Some(p) = path.filter(|p| std::path::Path::new(p).exists()) {
            println!("cargo:rerun-if-changed={p}");
        }
    }
}
