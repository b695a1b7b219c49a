//! Records the git commit in `supervisor --version`, when the source is a git checkout.
use std::process::Command;

fn main() {
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
    println!(
        "cargo:rustc-env=SUPERVISOR_GIT_COMMIT={}",
        commit.unwrap_or_else(|| "unknown commit".into())
    );
    println!("cargo:rerun-if-env-changed=SUPERVISOR_GIT_COMMIT");
    for p in [".git/HEAD", ".git/refs/heads", ".git/packed-refs"] {
        if std::path::Path::new(p).exists() {
            println!("cargo:rerun-if-changed={p}");
        }
    }
}
