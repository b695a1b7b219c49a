//! `supervisor install DIR`: copy this binary into a shared volume (the init-container pattern for
//! images that cannot be rebuilt).
//!
//! Theory of operation: read the running executable (`/proc/self/exe`, the very file the kernel
//! runs), decide from its ELF headers whether it may be copied (`verdict`, pure), then write it
//! under a temp name and rename it into place: atomic and idempotent, so a container that already
//! runs the installed copy is never handed a half-written file. The copy is meant for other
//! images (scratch, distroless, alpine), where a dynamically linked build fails with a bare "No
//! such file or directory" naming the binary, not the missing loader; so a binary that is not
//! static is refused (exit 125, nothing written) unless `--allow-dynamic` says the target image
//! has its loader.

use crate::elf::{self, ElfError, Linkage};
use crate::exit::Outcome;
use crate::fsutil::{self, Kind};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

pub fn run(dir: &Path, allow_dynamic: bool) -> Outcome {
    let (exe, image) = match read_self() {
        Ok(x) => x,
        Err(e) => {
            tracing::error!("install into {} failed: {e}", dir.display());
            return Outcome::Internal;
        }
    };
    match verdict(&exe, elf::linkage(&image), allow_dynamic) {
        Verdict::Copy => {}
        Verdict::CopyWithWarning(w) => tracing::warn!("{w}"),
        Verdict::Refuse(why) => {
            tracing::error!("{why}");
            return Outcome::Internal;
        }
    }
    match install(dir, &image) {
        Ok(path) => {
            println!("{}", path.display());
            Outcome::Success
        }
        Err(e) => {
            tracing::error!("install into {} failed: {e}", dir.display());
            Outcome::Internal
        }
    }
}

/// What to do with the running executable, given how it is linked.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Copy,
    CopyWithWarning(String),
    Refuse(String),
}

/// How to get the static build, for the refusal message (one source: README, Building).
const STATIC_HINT: &str = "use the static build (`cargo build --release` gives \
    target/x86_64-unknown-linux-musl/release/supervisor; see the README, Building)";

fn verdict(exe: &Path, linkage: Result<Linkage, ElfError>, allow_dynamic: bool) -> Verdict {
    let exe = exe.display();
    let what = match linkage {
        Ok(Linkage::Static) => return Verdict::Copy,
        Ok(dynamic) => format!("is {dynamic}"),
        Err(e) => format!("cannot be checked for static linking ({e})"),
    };
    if allow_dynamic {
        Verdict::CopyWithWarning(format!(
            "installing {exe} although it {what} (--allow-dynamic): it runs only in images that \
             provide its loader and libraries"
        ))
    } else {
        Verdict::Refuse(format!(
            "refusing to install {exe}: it {what}; a binary that is not static fails with \"No \
             such file or directory\" in images without its loader (scratch, distroless, alpine); \
             {STATIC_HINT}, or pass --allow-dynamic to copy it anyway"
        ))
    }
}

/// Publishes the copy as markers are published ([`fsutil::Place::publish`]: a temp file beside
/// the target, renamed over it, in the directory opened once), made durable here: an init
/// container's copy must survive the node's crash as the volume does.
fn install(dir: &Path, image: &[u8]) -> io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let target = dir.join("supervisor");
    let named = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", target.display()));
    let place = fsutil::Place::open(&target).map_err(named)?;
    match place.look() {
        Ok(Some(e)) if e.kind != Kind::File && e.kind != Kind::Dir => tracing::warn!(
            "replacing {} that was in the way of {}",
            e.kind,
            target.display()
        ),
        _ => {}
    }
    place
        .publish(0o755, |out| {
            out.write_all(image)?;
            out.sync_all()
        })
        .map_err(named)?;
    place.sync_dir();
    Ok(target)
}

/// The running executable's path (for messages) and bytes. /proc/self/exe works even when the
/// binary was deleted or replaced; in an empty root without /proc, argv[0] is the fallback.
fn read_self() -> io::Result<(PathBuf, Vec<u8>)> {
    let (path, mut file) = match File::open("/proc/self/exe") {
        Ok(f) => (
            std::fs::read_link("/proc/self/exe").unwrap_or_else(|_| "/proc/self/exe".into()),
            f,
        ),
        Err(e) => match std::env::args_os().next() {
            Some(a0) if Path::new(&a0).components().count() > 1 => {
                let f = File::open(&a0)?;
                (PathBuf::from(a0), f)
            }
            _ => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot find my own executable (/proc/self/exe: {e})"),
                ));
            }
        },
    };
    let mut image = Vec::new();
    file.read_to_end(&mut image)?;
    Ok((path, image))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dynamic() -> Linkage {
        Linkage::Dynamic {
            interpreter: Some("/lib64/ld-linux-x86-64.so.2".into()),
            needed: vec!["libc.so.6".into()],
        }
    }

    #[test]
    fn a_static_binary_is_copied_silently() {
        let exe = Path::new("/usr/local/bin/supervisor");
        assert_eq!(verdict(exe, Ok(Linkage::Static), false), Verdict::Copy);
        assert_eq!(verdict(exe, Ok(Linkage::Static), true), Verdict::Copy);
    }

    #[test]
    fn a_dynamic_binary_is_refused_in_one_line_that_says_why_and_what_to_do() {
        let exe = Path::new("/root/.cargo/bin/supervisor");
        let Verdict::Refuse(why) = verdict(exe, Ok(dynamic()), false) else {
            panic!("not refused")
        };
        assert!(!why.contains('\n'), "{why}");
        for needle in [
            "/root/.cargo/bin/supervisor",
            "loader /lib64/ld-linux-x86-64.so.2",
            "needs libc.so.6",
            "cargo build --release",
            "--allow-dynamic",
        ] {
            assert!(why.contains(needle), "{needle:?} missing: {why}");
        }
    }

    #[test]
    fn allow_dynamic_copies_with_a_warning() {
        let exe = Path::new("/x/supervisor");
        let Verdict::CopyWithWarning(w) = verdict(exe, Ok(dynamic()), true) else {
            panic!("not copied")
        };
        assert!(
            w.contains("--allow-dynamic") && w.contains("ld-linux"),
            "{w}"
        );
    }

    #[test]
    fn a_binary_that_cannot_be_checked_counts_as_not_static() {
        let exe = Path::new("/x/supervisor");
        let Verdict::Refuse(why) = verdict(exe, Err(ElfError::NotElf), false) else {
            panic!("not refused")
        };
        assert!(why.contains("not an ELF file"), "{why}");
        assert!(matches!(
            verdict(exe, Err(ElfError::NotElf), true),
            Verdict::CopyWithWarning(_)
        ));
    }
}
