//! Each mode wires the pieces together: `main`, `sidecar`, `probe`, `install`.

pub mod install;
pub mod main;
pub mod probe;
pub mod sidecar;

use crate::exit::Outcome;
use std::ffi::OsString;

/// The single-threaded runtime every mode runs on: one thread, no work stealing, and no timer
/// unless a mode arms one (so an idle supervisor never wakes up).
pub fn block_on<F: std::future::Future<Output = Outcome>>(fut: F) -> Outcome {
    match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
    {
        Ok(rt) => rt.block_on(fut),
        Err(e) => {
            tracing::error!("cannot start the event loop: {e}");
            Outcome::Internal
        }
    }
}

/// What both supervising modes do first, inside the runtime: open the signalfd for the signals
/// blocked at start, and become a subreaper unless PID 1.
pub fn start_supervising() -> Result<crate::signals::Signals, Outcome> {
    let sigs = crate::signals::Signals::new().map_err(|e| {
        tracing::error!("cannot read signals (signalfd): {e}");
        Outcome::Internal
    })?;
    crate::reaper::become_subreaper();
    Ok(sigs)
}

/// A command line for logs and markers: arguments joined by spaces, shell-quoted where needed.
pub fn display_command(argv: &[OsString]) -> String {
    argv.iter()
        .map(|a| {
            let s = a.to_string_lossy();
            if !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b))
            {
                s.into_owned()
            } else {
                format!("'{}'", s.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Sleeps until the deadline, or forever without one (for optional `select!` branches).
pub async fn sleep_until_opt(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// The next tick of an optional interval, or never.
pub async fn tick_opt(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_display() {
        let argv: Vec<OsString> = ["sh", "-c", "echo 'hi' there", ""]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(display_command(&argv), r"sh -c 'echo '\''hi'\'' there' ''");
    }
}
