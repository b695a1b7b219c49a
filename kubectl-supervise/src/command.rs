//! The `supervisor` command lines of a container, parsed exactly as the binary parses them.
//!
//! Theory of operation. A container runs `command` (else its image's ENTRYPOINT, from
//! [`crate::images`]) followed by `args` (else the image's CMD). A supervisor command line can
//! sit there directly, or inside a script handed to `sh -c`; exec probes can run one too. Each
//! one found is parsed by the binary's own `supervisor::config::from_argv_env` with the
//! container's environment as the manifest and the image table know it (the image's variables,
//! then the manifest's): what it rejects, the binary would reject too, and a value that came
//! from a `SUPERVISOR_*` variable is named by that variable, as the binary names it.

use crate::images;
use k8s_openapi::api::core::v1::Container;
use std::path::Path;
use supervisor::config::{ConfigError, Parsed};

/// Where in a container a command line was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// The container's own process (`command`/`args`, or the image's).
    Command,
    /// A line of a shell script the container's process runs.
    Script,
    /// An exec probe: `startupProbe`, `readinessProbe` or `livenessProbe`.
    Probe(&'static str),
}

/// One `supervisor` command line.
#[derive(Debug)]
pub struct Invocation {
    pub place: Place,
    /// The words as written (binary first).
    pub written: Vec<String>,
    /// The `SUPERVISOR_*` variables it reads, for messages.
    pub from_env: Vec<String>,
    pub parsed: Result<Parsed, ConfigError>,
}

impl Invocation {
    pub fn binary(&self) -> &str {
        self.written.first().map(String::as_str).unwrap_or_default()
    }
}

/// Whether a word names the supervisor binary.
pub fn is_supervisor(word: &str) -> bool {
    Path::new(word)
        .file_name()
        .is_some_and(|n| n == "supervisor")
}

/// The argument vector a container runs, when it can be known: `command` + `args`, else the
/// known image's ENTRYPOINT + (`args` or CMD).
pub fn effective_argv(c: &Container) -> Option<Vec<String>> {
    effective_argv_with(c, None)
}

/// [`effective_argv`], with what the container's image runs when the user said so (an
/// `--entrypoint` or the `supervisor/entrypoints` annotation: ENTRYPOINT, plus CMD when the
/// container has no args).
pub fn effective_argv_with(c: &Container, entrypoint: Option<&[String]>) -> Option<Vec<String>> {
    if let Some(cmd) = &c.command {
        let mut v = cmd.clone();
        v.extend(c.args.iter().flatten().cloned());
        return Some(v);
    }
    if let Some(ep) = entrypoint {
        let mut v = ep.to_vec();
        v.extend(c.args.iter().flatten().cloned());
        return Some(v);
    }
    let mut v = images::image_command(c.image.as_deref().unwrap_or(""), c.args.is_some())?;
    v.extend(c.args.iter().flatten().cloned());
    Some(v)
}

/// The container's environment as far as the manifest and the image table tell:
/// `valueFrom` variables are unknown and left out.
pub fn environment(c: &Container) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = images::known(c.image.as_deref().unwrap_or(""))
        .map(|k| {
            k.env
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        })
        .unwrap_or_default();
    for e in c.env.iter().flatten() {
        env.retain(|(k, _)| *k != e.name);
        if let Some(v) = &e.value {
            env.push((e.name.clone(), v.clone()));
        }
    }
    env
}

/// Every supervisor command line of a container.
pub fn invocations(c: &Container) -> Vec<Invocation> {
    invocations_with(c, None)
}

/// [`invocations`], with a user-given entrypoint (see [`effective_argv_with`]).
pub fn invocations_with(c: &Container, entrypoint: Option<&[String]>) -> Vec<Invocation> {
    let env = environment(c);
    let mut places: Vec<(Place, Vec<String>)> = Vec::new();
    if let Some(argv) = effective_argv_with(c, entrypoint) {
        places.push((Place::Command, argv));
    }
    for (name, probe) in [
        ("startupProbe", &c.startup_probe),
        ("readinessProbe", &c.readiness_probe),
        ("livenessProbe", &c.liveness_probe),
    ] {
        if let Some(cmd) = probe
            .as_ref()
            .and_then(|p| p.exec.as_ref())
            .and_then(|e| e.command.clone())
        {
            places.push((Place::Probe(name), cmd));
        }
    }
    let mut out = Vec::new();
    for (place, argv) in places {
        for (line, in_script) in supervisor_lines(&argv) {
            let place = if in_script && place == Place::Command {
                Place::Script
            } else {
                place.clone()
            };
            out.push(Invocation {
                place,
                from_env: env_used(&line, &env),
                parsed: parse_with_env(&line, &env),
                written: line,
            });
        }
    }
    out
}

/// The supervisor command lines in an argument vector: the vector itself, or lines of the
/// script it hands to a shell's `-c`. The flag says whether it came from a script.
pub fn supervisor_lines(argv: &[String]) -> Vec<(Vec<String>, bool)> {
    let mut lines = Vec::new();
    let Some(first) = argv.first() else {
        return lines;
    };
    if is_supervisor(first) {
        lines.push((argv.to_vec(), false));
        return lines;
    }
    let Some(script) = shell_script(argv) else {
        return lines;
    };
    let mut cur: Option<Vec<String>> = None;
    for w in shell_words(script) {
        match (w, cur.as_mut()) {
            (None, _) => lines.extend(cur.take().map(|l| (l, true))),
            (Some(w), Some(l)) => l.push(w),
            (Some(w), None) if is_supervisor(&w) => cur = Some(vec![w]),
            (Some(_), None) => {}
        }
    }
    lines.extend(cur.take().map(|l| (l, true)));
    lines
}

/// The script of `sh|bash|ash [-flags] -c SCRIPT`.
pub fn shell_script(argv: &[String]) -> Option<&str> {
    let shell = matches!(
        Path::new(argv.first()?)
            .file_name()
            .and_then(|n| n.to_str()),
        Some("sh" | "bash" | "ash" | "dash")
    );
    if !shell {
        return None;
    }
    for (i, a) in argv.iter().enumerate().skip(1) {
        if !a.starts_with('-') {
            return None;
        }
        if a.contains('c') {
            return argv.get(i + 1).map(String::as_str);
        }
    }
    None
}

/// A small POSIX-shell word splitter: quotes, backslashes, comments; separators (`;`, `&&`,
/// `||`, `|`, `&`, newline) come out as `None`. Enough to find supervisor lines in scripts; not
/// an interpreter (no expansions).
pub fn shell_words(script: &str) -> Vec<Option<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = script.chars().peekable();
    let flush = |cur: &mut String, in_word: &mut bool, out: &mut Vec<Option<String>>| {
        if *in_word {
            out.push(Some(std::mem::take(cur)));
            *in_word = false;
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for d in chars.by_ref() {
                    if d == '\'' {
                        break;
                    }
                    cur.push(d);
                }
            }
            '"' => {
                in_word = true;
                while let Some(d) = chars.next() {
                    match d {
                        '"' => break,
                        '\\' => match chars.peek() {
                            Some(&e @ ('"' | '\\' | '$' | '`')) => {
                                cur.push(e);
                                chars.next();
                            }
                            Some('\n') => {
                                chars.next();
                            }
                            _ => cur.push('\\'),
                        },
                        _ => cur.push(d),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') | None => {}
                Some(e) => {
                    in_word = true;
                    cur.push(e);
                }
            },
            '#' if !in_word => {
                for d in chars.by_ref() {
                    if d == '\n' {
                        break;
                    }
                }
                flush(&mut cur, &mut in_word, &mut out);
                out.push(None);
            }
            ';' | '\n' | '|' | '&' => {
                flush(&mut cur, &mut in_word, &mut out);
                if (c == '|' || c == '&') && chars.peek() == Some(&c) {
                    chars.next();
                }
                out.push(None);
            }
            c if c.is_whitespace() => flush(&mut cur, &mut in_word, &mut out),
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    flush(&mut cur, &mut in_word, &mut out);
    out
}

/// The `SUPERVISOR_*` variables a command line reads: those of its mode's (and the global)
/// options that the command line does not set itself, which the binary would read from its
/// environment (see `supervisor::config`).
pub fn env_used(line: &[String], env: &[(String, String)]) -> Vec<String> {
    let Ok(supervisor::cli::Request::Run(args)) = supervisor::cli::parse(line) else {
        return Vec::new();
    };
    args.mode
        .options
        .iter()
        .chain(supervisor::cli::GLOBAL)
        .filter(|o| args.values(o.id).is_empty())
        .map(|o| supervisor::cli::env_var(o.id))
        .filter(|var| env.iter().any(|(k, _)| k == var))
        .collect()
}

/// Parses a command line as the binary would, in a container whose environment is `env`.
pub fn parse_with_env(line: &[String], env: &[(String, String)]) -> Result<Parsed, ConfigError> {
    supervisor::config::from_argv_env(line, &|var| {
        env.iter()
            .rev()
            .find(|(k, _)| k == var)
            .map(|(_, v)| v.into())
    })
}

/// A list in the format of the binary's environment lists (comma-separated, `\,` for a comma
/// and `\\` for a backslash), as annotations use it; empty items are dropped.
pub fn split_list(v: &str) -> Vec<String> {
    supervisor::config::split_list(std::ffi::OsStr::new(v))
        .into_iter()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn shell_words_split_like_sh() {
        let w = shell_words("a 'b c' \"d \\\"e\\\"\" f\\ g; supervisor main -- x && y\n# note\nz");
        let w: Vec<String> = w
            .into_iter()
            .map(|t| t.unwrap_or_else(|| "<sep>".into()))
            .collect();
        assert_eq!(
            w,
            [
                "a",
                "b c",
                "d \"e\"",
                "f g",
                "<sep>",
                "supervisor",
                "main",
                "--",
                "x",
                "<sep>",
                "y",
                "<sep>",
                "<sep>",
                "z"
            ]
        );
    }

    #[test]
    fn the_environment_is_read_as_the_binary_reads_it() {
        let env = vec![
            ("SUPERVISOR_WAIT_FILE".to_string(), r"/a,/b\,c".to_string()),
            ("SUPERVISOR_GRACE".to_string(), "3s".to_string()),
            ("SUPERVISOR_LOG_LEVEL".to_string(), "debug".to_string()),
            ("OTHER".to_string(), "x".to_string()),
        ];
        let line = words(&["supervisor", "sidecar", "--grace", "1s", "--", "d"]);
        assert_eq!(
            env_used(&line, &env),
            ["SUPERVISOR_WAIT_FILE", "SUPERVISOR_LOG_LEVEL"]
        );
        let Ok(Parsed::Sidecar(c)) = parse_with_env(&line, &env) else {
            unreachable!("a sidecar");
        };
        assert_eq!(c.stop.grace, std::time::Duration::from_secs(1));
        assert_eq!(
            c.wait_files,
            [
                std::path::PathBuf::from("/a"),
                std::path::PathBuf::from("/b,c")
            ]
        );
        let bad = vec![("SUPERVISOR_ON".to_string(), "sometimes".to_string())];
        let e = parse_with_env(&line, &bad).expect_err("bad value");
        assert!(e.to_string().starts_with("SUPERVISOR_ON:"), "{e}");
        assert_eq!(split_list(r"job,web\,x,"), ["job", "web,x"]);
    }
}
