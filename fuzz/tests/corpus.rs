//! Replays every checked-in input (`corpus/<target>/*`, and `regressions/<target>/*` for the
//! inputs of past findings) through the fuzz functions, on stable, in a second:
//! `cargo test --manifest-path fuzz/Cargo.toml --no-default-features`.
//!
//! Memory is limited for real: the replay's allocator refuses a test thread more than
//! [`THREAD_LIMIT`] bytes live (the allocation fails and the process aborts, as it would at
//! an RLIMIT_AS), and each input's peak must stay under [`INPUT_LIMIT`], named in the failure.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;

/// No test thread may hold more than this at once: the hard stop.
const THREAD_LIMIT: usize = 512 << 20;
/// What replaying one input may take at its peak (a YAML bomb, expanded, takes gigabytes).
const INPUT_LIMIT: usize = 256 << 20;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

/// The system allocator, counting what each thread holds.
struct Capped;

impl Capped {
    /// Counts `grow` more bytes for this thread; false when that passes the limit.
    fn take(grow: usize) -> bool {
        LIVE.with(|live| {
            let now = live.get().saturating_add(grow);
            if now > THREAD_LIMIT {
                return false;
            }
            live.set(now);
            PEAK.with(|p| p.set(p.get().max(now)));
            true
        })
    }

    fn give(shrink: usize) {
        LIVE.with(|live| live.set(live.get().saturating_sub(shrink)));
    }
}

// SAFETY: every call is passed to System unchanged; only the counting is added, and a refused
// allocation returns null, which GlobalAlloc allows.
unsafe impl GlobalAlloc for Capped {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !Self::take(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's layout, as GlobalAlloc requires.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        Self::give(layout.size());
        // SAFETY: ptr came from System.alloc with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            if !Self::take(new_size - layout.size()) {
                return std::ptr::null_mut();
            }
        } else {
            Self::give(layout.size() - new_size);
        }
        // SAFETY: ptr came from System with this layout; new_size is the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Capped = Capped;

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
            let before = LIVE.with(Cell::get);
            PEAK.with(|p| p.set(before));
            let r = std::panic::catch_unwind(|| f(&data));
            assert!(r.is_ok(), "{target}: {} panicked", path.display());
            let peak = PEAK.with(Cell::get) - before;
            assert!(
                peak <= INPUT_LIMIT,
                "{target}: {} took {} MiB at its peak",
                path.display(),
                peak >> 20
            );
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

#[test]
fn kubectl_yaml() {
    replay("yaml", supervisor_fuzz::kubectl_yaml);
}

#[test]
fn kubectl_inject() {
    replay("inject", supervisor_fuzz::kubectl_inject);
}

#[test]
fn kubectl_check() {
    replay("check", supervisor_fuzz::kubectl_check);
}

/// The limit is real: an allocation past it fails.
#[test]
fn the_memory_limit_holds() {
    let r = std::panic::catch_unwind(|| {
        let mut v: Vec<u8> = Vec::new();
        v.try_reserve_exact(THREAD_LIMIT + 1).is_err()
    });
    assert_eq!(r.ok(), Some(true));
}
