//! `supervisor install DIR`: copy this binary into a shared volume (the init-container pattern for
//! images that cannot be rebuilt). Atomic (temp file + rename) and idempotent: a container that
//! already runs the installed copy is never handed a half-written file.

use crate::exit::Outcome;
use crate::fsutil;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

pub fn run(dir: &Path, _allow_dynamic: bool) -> Outcome {
    match install(dir) {
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

fn install(dir: &Path) -> io::Result<PathBuf> {
    let mut source = open_self()?;
    std::fs::create_dir_all(dir)?;
    let target = dir.join("supervisor");
    let tmp = fsutil::sibling(&target, &format!("tmp.{}", std::process::id()));
    let result = (|| {
        let mut out = fsutil::create_exclusive(&tmp, 0o755)?;
        io::copy(&mut source, &mut out)?;
        out.sync_all()?;
        drop(out);
        std::fs::rename(&tmp, &target)?;
        fsutil::sync_dir(dir);
        Ok(target.clone())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The running executable. /proc/self/exe works even when the binary was deleted or replaced; in
/// an empty root without /proc, argv[0] is the fallback.
fn open_self() -> io::Result<File> {
    match File::open("/proc/self/exe") {
        Ok(f) => Ok(f),
        Err(e) => match std::env::args_os().next() {
            Some(a0) if Path::new(&a0).components().count() > 1 => File::open(a0),
            _ => Err(io::Error::new(
                e.kind(),
                format!("cannot find my own executable (/proc/self/exe: {e})"),
            )),
        },
    }
}
