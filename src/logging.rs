//! Logs: one line per event on stderr, in words, prefixed with the mode so they stand apart from
//! the child's own output on the same stream. Text by default, JSON on request.
//!
//! A small `tracing::Subscriber` of our own rather than tracing-subscriber: the supervisor needs
//! a level filter and two line formats, nothing else (no spans, no per-target filters, no ANSI),
//! and the general-purpose formatter cost more of a 1 MiB budget than it would give (the
//! figure is in the README's "Dependencies and what they cost").

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::OnceLock;
use tracing::field::{Field, Visit};
pub use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Parses a level name. `RUST_LOG` may be a directive list (`info,supervisor=debug`): the entry
/// for this crate wins, else the last bare level.
/// Logs `text` at `level` (for lines decided elsewhere, as data).
pub fn log(level: tracing::Level, text: &str) {
    match level {
        tracing::Level::ERROR => tracing::error!("{text}"),
        tracing::Level::WARN => tracing::warn!("{text}"),
        tracing::Level::INFO => tracing::info!("{text}"),
        tracing::Level::DEBUG => tracing::debug!("{text}"),
        tracing::Level::TRACE => tracing::trace!("{text}"),
    }
}

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

/// The line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// The mode name printed on every line (`main`, `sidecar`, ...).
static MODE: OnceLock<&'static str> = OnceLock::new();

struct Logger {
    level: LevelFilter,
    format: Format,
}

/// Installs the logger.
pub fn init(level: LevelFilter, format: Format) {
    let _ = tracing::subscriber::set_global_default(Logger { level, format });
}

/// Sets the mode shown in log lines; call once, before the first event of that mode.
pub fn set_mode(mode: &'static str) {
    let _ = MODE.set(mode);
}

/// Collects an event's message and any other fields (`key=value`).
#[derive(Default)]
struct Fields {
    message: String,
    extra: Vec<(&'static str, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.extra.push((field.name(), value.to_string()));
        }
    }

    /// No log line of ours carries a float; writing one without the float formatter keeps that
    /// code (some 15 KiB) out of the binary.
    fn record_f64(&mut self, field: &Field, value: f64) {
        let text = if value.is_finite() && value.abs() < 1e15 {
            let thousandths = (value * 1000.0) as i64;
            let sign = if thousandths < 0 { "-" } else { "" };
            let t = thousandths.unsigned_abs();
            format!("{sign}{}.{:03}", t / 1000, t % 1000)
        } else {
            "NaN or out of range".to_string()
        };
        self.record_str(field, &text);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            self.extra.push((field.name(), format!("{value:?}")));
        }
    }
}

/// One log line, without the trailing newline.
pub fn format_line(
    format: Format,
    timestamp: &str,
    level: &Level,
    mode: &str,
    message: &str,
    extra: &[(&str, String)],
) -> String {
    match format {
        Format::Text => {
            let mut line = String::with_capacity(timestamp.len() + mode.len() + message.len() + 16);
            line.push_str(timestamp);
            line.push_str(match *level {
                Level::ERROR => " ERROR ",
                Level::WARN => "  WARN ",
                Level::INFO => "  INFO ",
                Level::DEBUG => " DEBUG ",
                Level::TRACE => " TRACE ",
            });
            line.push_str(mode);
            line.push_str(": ");
            // One event, one line: control characters (a multi-line script in the command, text
            // from a marker) are escaped so they can neither split nor forge log lines.
            if message.chars().any(char::is_control) {
                for c in message.chars() {
                    if c.is_control() {
                        line.extend(c.escape_default());
                    } else {
                        line.push(c);
                    }
                }
            } else {
                line.push_str(message);
            }
            for (k, v) in extra {
                let _ = write!(line, " {k}={v}");
            }
            line
        }
        Format::Json => {
            let mut obj = serde_json::Map::new();
            obj.insert("timestamp".into(), timestamp.into());
            obj.insert("level".into(), level.as_str().into());
            obj.insert("mode".into(), mode.into());
            obj.insert("message".into(), message.into());
            for (k, v) in extra {
                obj.insert((*k).into(), v.as_str().into());
            }
            serde_json::Value::Object(obj).to_string()
        }
    }
}

impl Subscriber for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= self.level
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.level)
    }

    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let now = crate::clock::rfc3339(std::time::SystemTime::now());
        let mode = MODE.get().copied().unwrap_or("supervisor");
        let mut line = format_line(
            self.format,
            &now,
            event.metadata().level(),
            mode,
            &fields.message,
            &fields.extra,
        );
        line.push('\n');
        // One write per line, so lines from concurrent writers never interleave; a closed
        // stderr is not worth dying for.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}
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

    #[test]
    fn line_formats() {
        let text = format_line(Format::Text, "T", &Level::INFO, "main", "started sh", &[]);
        assert_eq!(text, "T  INFO main: started sh");
        let json = format_line(
            Format::Json,
            "T",
            &Level::WARN,
            "sidecar",
            "a \"quoted\" word",
            &[("k", "v".into())],
        );
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["level"], "WARN");
        assert_eq!(v["mode"], "sidecar");
        assert_eq!(v["message"], "a \"quoted\" word");
        assert_eq!(v["k"], "v");
    }
}
