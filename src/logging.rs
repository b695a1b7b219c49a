//! Logs: one line per event on stderr, in words, prefixed so they stand apart from the child's own
//! output on the same stream. Text by default, JSON on request.

use crate::cli::LogFormat;
use tracing::level_filters::LevelFilter;

/// Parses a level name. `RUST_LOG` may be a directive list (`info,supervisor=debug`): the entry
/// for this crate wins, else the last bare level.
pub fn parse_level(s: &str) -> Option<LevelFilter> {
    let one = |l: &str| -> Option<LevelFilter> {
        match l.trim().to_ascii_lowercase().as_str() {
            "off" => Some(LevelFilter::OFF),
            "error" => Some(LevelFilter::ERROR),
            "warn" | "warning" => Some(LevelFilter::WARN),
            "info" => Some(LevelFilter::INFO),
            "debug" => Some(LevelFilter::DEBUG),
            "trace" => Some(LevelFilter::TRACE),
            _ => None,
        }
    };
    if let Some(l) = one(s) {
        return Some(l);
    }
    let mut found = None;
    for d in s.split(',') {
        match d.split_once('=') {
            Some((target, level)) if target.trim() == "supervisor" => return one(level),
            Some(_) => {}
            None => found = one(d).or(found),
        }
    }
    found
}

pub fn init(level: LevelFilter, format: LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        assert_eq!(parse_level("debug"), Some(LevelFilter::DEBUG));
        assert_eq!(parse_level("WARN"), Some(LevelFilter::WARN));
        assert_eq!(
            parse_level("info,supervisor=trace"),
            Some(LevelFilter::TRACE)
        );
        assert_eq!(parse_level("hyper=debug,error"), Some(LevelFilter::ERROR));
        assert_eq!(parse_level("nope"), None);
    }
}
