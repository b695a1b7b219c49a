//! The test harness: what every integration test module imports (`use crate::util::*`).
//!
//! Theory of operation: a test runs the built binary ([`bin`], [`sup`]) as a real process in a
//! session of its own ([`start`] gives a [`Proc`]), talks to it through handshakes - a line on
//! stdout ([`Proc::expect_line`]), a file appearing, a lock waited on ([`lock_waiters`]) - each
//! with a deadline ([`wait_until`], [`DEADLINE`]), never a bare sleep, and leaves nothing behind:
//! dropping a `Proc` SIGKILLs its whole session and every descendant. Anything that could outlive
//! a failed test runs as (or under) the init of a fresh PID namespace ([`in_ns`]), which the
//! kernel tears down with its init. The helper programs the tests run (signal echoes, listeners,
//! a terminal driver) are files in `tests/it/helpers/` ([`helper`]). A test that cannot run here
//! (no IPv6, a tool missing) calls [`skip`], which fails it when `CI` is set.
//!
//! One module per concern, all re-exported here:
//! - `proc`: starting, signalling, inspecting and cleaning up processes;
//! - `wait`: deadlines and conditions;
//! - `ns`: the binary under test, plain or as PID 1 of a PID namespace;
//! - `fs`: temp dirs, JSON files, paths, lock waiters;
//! - `helpers`: the helper programs and listeners;
//! - `ci`: the skip policy and tool lookup;
//! - `dockerd`: a real dockerd that owns nothing of the host's.

mod ci;
mod dockerd;
mod fs;
mod helpers;
mod ns;
mod proc;
mod wait;

pub use ci::*;
pub use dockerd::*;
pub use fs::*;
pub use helpers::*;
pub use ns::*;
pub use proc::*;
pub use wait::*;
