//! The `supervisor` command lines of a container, parsed exactly as the binary parses them.
//!
//! Theory of operation. A container runs `command` (else its image's ENTRYPOINT, from
//! [`crate::images`]) followed by `args` (else the image's CMD). A supervisor command line can
//! sit there directly, or inside a script handed to `sh -c`; exec probes can run one too. Each
//! one found is completed with the container's `SUPERVISOR_*` variables (the image's, then the
//! manifest's, as the container's environment would have them): a variable becomes a flag
//! unless the command line sets that option itself, which is clap's precedence. Which variable
//! belongs to which option, and which options repeat, is read from the binary's own clap
//! definition, so new options are understood as soon as the library has them. The result goes
//! through `supervisor::config::from_argv`: what it rejects, the binary would reject too.

use crate::images;
use clap::CommandFactory;
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
    /// The words as written (binary first), before environment variables were added.
    pub written: Vec<String>,
    /// Environment variables that became flags, for messages.
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
    let known = images::known(c.image.as_deref().unwrap_or(""))?;
    let mut v: Vec<String> = known.entrypoint.iter().map(|s| s.to_string()).collect();
    match &c.args {
        Some(a) => v.extend(a.iter().cloned()),
        None => v.extend(known.cmd.iter().map(|s| s.to_string())),
    }
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
            let (argv, from_env) = with_env(&line, &env);
            out.push(Invocation {
                place,
                written: line,
                from_env,
                parsed: supervisor::config::from_argv(argv),
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

/// Splits a repeatable option's environment value: commas separate, `\,` is a comma, `\\` a
/// backslash, any other backslash is itself. Empty items are dropped.
pub fn split_env_list(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = v.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if matches!(chars.peek(), Some(',' | '\\')) => {
                cur.extend(chars.next());
            }
            ',' => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out.retain(|s| !s.is_empty());
    out
}

/// Quotes a list item for a repeatable option's environment value (the inverse of
/// [`split_env_list`]).
pub fn join_env_list<S: AsRef<str>>(items: &[S]) -> String {
    items
        .iter()
        .map(|s| s.as_ref().replace('\\', "\\\\").replace(',', "\\,"))
        .collect::<Vec<_>>()
        .join(",")
}

/// What clap's falsey parser reads as false, for boolean flags set by environment.
fn env_false(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "" | "0" | "n" | "no" | "f" | "false" | "off"
    )
}

/// The command line with the container's SUPERVISOR_* variables added as flags right after
/// the mode (see the module doc), and the names of the variables used.
pub fn with_env(line: &[String], env: &[(String, String)]) -> (Vec<String>, Vec<String>) {
    let cli = supervisor::cli::Cli::command();
    let globals: Vec<String> = cli
        .get_arguments()
        .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
        .collect();
    // The mode is the first word after the binary that is not a global option or its value.
    let mut i = 1;
    while let Some(w) = line.get(i) {
        let name = w.split('=').next().unwrap_or(w);
        if !globals.iter().any(|g| g == name) {
            break;
        }
        i += if w.contains('=') { 1 } else { 2 };
    }
    let Some(sub) = line.get(i).and_then(|m| cli.find_subcommand(m)) else {
        return (line.to_vec(), Vec::new());
    };
    let written = options_written(&line[i + 1..], sub);
    let mut flags = Vec::new();
    let mut used = Vec::new();
    for arg in sub.get_arguments() {
        let (Some(long), Some(var)) = (arg.get_long(), arg.get_env()) else {
            continue;
        };
        let Some((name, value)) = env.iter().find(|(k, _)| var == k.as_str()) else {
            continue;
        };
        if written.iter().any(|w| w == long) {
            continue;
        }
        used.push(name.clone());
        if !arg.get_action().takes_values() {
            if !env_false(value) {
                flags.push(format!("--{long}"));
            }
        } else if matches!(arg.get_action(), clap::ArgAction::Append)
            || arg.get_value_delimiter().is_some()
        {
            flags.extend(
                split_env_list(value)
                    .into_iter()
                    .map(|v| format!("--{long}={v}")),
            );
        } else {
            flags.push(format!("--{long}={value}"));
        }
    }
    let mut out = line[..=i].to_vec();
    out.extend(flags);
    out.extend(line[i + 1..].iter().cloned());
    (out, used)
}

/// The long options a command line sets before its command.
fn options_written(words: &[String], sub: &clap::Command) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(w) = words.get(i) {
        let Some(body) = w.strip_prefix("--") else {
            break;
        };
        if body.is_empty() {
            break;
        }
        let (name, inline) = match body.split_once('=') {
            Some((n, _)) => (n, true),
            None => (body, false),
        };
        let takes = sub
            .get_arguments()
            .find(|a| a.get_long() == Some(name))
            .is_some_and(|a| a.get_action().takes_values());
        out.push(name.to_string());
        i += if takes && !inline { 2 } else { 1 };
    }
    out
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
    fn env_lists_split_with_escapes() {
        assert_eq!(split_env_list("a,b"), ["a", "b"]);
        assert_eq!(split_env_list(r"a\,b,c\\,d\x"), ["a,b", r"c\", r"d\x"]);
        assert_eq!(split_env_list(""), Vec::<String>::new());
        let items = ["x,y", r"a\b", "z"];
        assert_eq!(split_env_list(&join_env_list(&items)), items);
    }

    #[test]
    fn environment_becomes_flags_unless_the_command_line_sets_them() {
        let env = vec![
            ("SUPERVISOR_WAIT_FILE".to_string(), r"/a,/b\,c".to_string()),
            ("SUPERVISOR_GRACE".to_string(), "3s".to_string()),
            (
                "SUPERVISOR_ALLOW_REMOTE_QUIT".to_string(),
                "false".to_string(),
            ),
            ("OTHER".to_string(), "x".to_string()),
        ];
        let (argv, used) = with_env(
            &words(&[
                "supervisor",
                "--log-level",
                "debug",
                "sidecar",
                "--grace",
                "1s",
                "--",
                "d",
            ]),
            &env,
        );
        assert_eq!(
            argv,
            words(&[
                "supervisor",
                "--log-level",
                "debug",
                "sidecar",
                "--wait-file=/a",
                "--wait-file=/b,c",
                "--allow-remote-quit",
                "--grace",
                "1s",
                "--",
                "d"
            ])
            .into_iter()
            .filter(|w| w != "--allow-remote-quit")
            .collect::<Vec<_>>()
        );
        assert_eq!(
            used,
            ["SUPERVISOR_WAIT_FILE", "SUPERVISOR_ALLOW_REMOTE_QUIT"]
        );
    }
}
