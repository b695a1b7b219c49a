//! Replays every checked-in input (`corpus/<target>/*`, and `regressions/<target>/*` for the
//! inputs of past findings) through the fuzz functions, on stable, in a second:
//! `cargo test --manifest-path fuzz/Cargo.toml --no-default-features`.

use std::path::Path;

fn replay(target: &str, f: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for e in entries {
            let path = e.expect("read_dir").path();
            let data = std::fs::read(&path).expect("read input");
            let r = std::panic::catch_unwind(|| f(&data));
            assert!(r.is_ok(), "{target}: {} panicked", path.display());
            n += 1;
        }
    }
    assert!(n > 0, "no corpus for {target}");
    eprintln!("{target}: replayed {n} inputs");
}

#[test]
fn duration() {
    replay("duration", supervisor_fuzz::duration);
}

#[test]
fn signal() {
    replay("signal", supervisor_fuzz::signal);
}

#[test]
fn target() {
    replay("target", supervisor_fuzz::target);
}

#[test]
fn http() {
    replay("http", supervisor_fuzz::http);
}

#[test]
fn marker() {
    replay("marker", supervisor_fuzz::marker);
}

#[test]
fn cli() {
    replay("cli", supervisor_fuzz::cli);
}

#[test]
fn level() {
    replay("level", supervisor_fuzz::level);
}

#[test]
fn review() {
    replay("review", supervisor_fuzz::review);
}
