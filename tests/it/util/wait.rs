//! Deadlines: every wait in a test is for a condition, bounded, so a broken build fails instead
//! of hanging.

use std::time::{Duration, Instant};

/// How long any single test step may take before the test fails instead of hanging.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Polls `cond` every few milliseconds until it holds or `within` passes.
pub fn wait_until(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// True when `cond` holds at every check for the whole of `period` (asserting that something does
/// NOT happen needs a period; this is the only place a test waits without an event).
pub fn stays(period: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + period;
    loop {
        if !cond() {
            return false;
        }
        if Instant::now() >= end {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
