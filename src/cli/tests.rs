//! The command-line table's own checks, and the man page generated from it.

use super::*;

fn run(args: &[&str]) -> Result<Args, String> {
    let mut argv = vec!["supervisor"];
    argv.extend(args);
    match parse(argv)? {
        Request::Run(a) => Ok(a),
        Request::Print(p) => Err(format!("printed: {p}")),
    }
}

fn printed(args: &[&str]) -> String {
    let mut argv = vec!["supervisor"];
    argv.extend(args);
    match parse(argv) {
        Ok(Request::Print(p)) => p,
        other => panic!("{args:?}: {other:?}"),
    }
}

#[test]
fn the_table_is_consistent() {
    for m in MODES {
        let mut seen = std::collections::HashSet::new();
        for o in m.options.iter().chain(GLOBAL) {
            assert!(seen.insert(o.id), "{} has {} twice", m.name, o.id);
            assert!(o.help.ends_with('.'), "{}: {}", o.id, o.help);
            assert_eq!(o.kind == Kind::Flag, o.value.is_empty(), "{}", o.id);
            assert!(!(o.kind == Kind::Flag && o.default.is_some()), "{}", o.id);
            assert!(
                o.id.name()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_')
            );
        }
    }
}

#[test]
fn flags_after_double_dash_belong_to_the_child() {
    let a = run(&["main", "--grace=3s", "--", "ls", "--grace", "-l"]).unwrap();
    assert_eq!(a.positional, ["ls", "--grace", "-l"]);
    assert_eq!(a.values(Id::Grace), ["3s"]);
    let a = run(&["main", "ls", "-l", "--", "x"]).unwrap();
    assert_eq!(a.positional, ["ls", "-l", "--", "x"]);
    let a = run(&["main", "--", "--help"]).unwrap();
    assert_eq!(a.positional, ["--help"]);
}

#[test]
fn options_and_values() {
    let a = run(&[
        "--log-level=debug",
        "sidecar",
        "--wait-file=/s/a,b",
        "--wait-file",
        "/s/c",
        "--allow-remote-quit",
        "--log-format",
        "json",
        "--",
        "d",
    ])
    .unwrap();
    assert_eq!(a.mode.name, "sidecar");
    assert_eq!(a.values(Id::WaitFile), ["/s/a,b", "/s/c"]);
    assert_eq!(a.values(Id::AllowRemoteQuit), [""]);
    assert_eq!(a.values(Id::LogLevel), ["debug"]);
    assert_eq!(a.values(Id::LogFormat), ["json"]);
    assert_eq!(a.values(Id::On), Vec::<OsString>::new());
    let a = run(&["main", "--done-file=", "--", "x"]).unwrap();
    assert_eq!(a.values(Id::DoneFile), [""]);
}

#[test]
fn non_utf8_values_pass_byte_for_byte() {
    use std::os::unix::ffi::OsStringExt;
    let raw = OsString::from_vec(b"--done-file=/s/\xff".to_vec());
    let argv = vec![
        OsString::from("supervisor"),
        "main".into(),
        raw,
        "--".into(),
        "x".into(),
    ];
    let Request::Run(a) = parse(argv).unwrap() else {
        panic!()
    };
    assert_eq!(
        a.values(Id::DoneFile),
        [OsString::from_vec(b"/s/\xff".to_vec())]
    );
}

#[test]
fn errors_are_one_line_and_suggest() {
    let cases = [
        (
            &["sidecar", "--wait-fil=/d", "--", "x"][..],
            "unknown option --wait-fil (did you mean --wait-file?)",
        ),
        (
            &["main", "--gracee", "1s", "--", "x"],
            "unknown option --gracee (did you mean --grace?)",
        ),
        (&["main"], "missing CMD (the command goes after --)"),
        (&["main", "--grace"], "--grace needs a value (DURATION)"),
        (
            &["mian", "x"],
            "unknown mode \"mian\" (did you mean main?): use main, sidecar, probe or install",
        ),
        (
            &[],
            "a mode is required: main, sidecar, probe or install (see supervisor --help)",
        ),
        (
            &["main", "--allow-remote-quit=yes", "--", "x"],
            "--allow-remote-quit takes no value",
        ),
        (
            &["probe"],
            "missing TARGET (file:PATH, tcp://HOST:PORT, unix:PATH, http://HOST:PORT/PATH, \
             http+unix:SOCKET:/PATH, docker[:ENDPOINT] or a preset, as for main --wait-for.)",
        ),
        (
            &["main", "--zzzzzzzz", "--", "x"],
            "unknown option --zzzzzzzz (options go before --; everything after it belongs to the command)",
        ),
        (
            &["main", "--wait-fr=/x", "--", "x"],
            "unknown option --wait-fr (did you mean --wait-for?)",
        ),
        (
            &["--versoin"],
            "unknown option --versoin (did you mean --version?)",
        ),
        (
            &["sidecar", "--hlep"],
            "unknown option --hlep (did you mean --help?)",
        ),
    ];
    for (args, want) in cases {
        let e = run(args).unwrap_err();
        assert_eq!(e, want, "{args:?}");
        assert!(!e.contains('\n'));
    }
}

#[test]
fn help_short_and_long() {
    let short = printed(&["sidecar", "-h"]);
    let long = printed(&["sidecar", "--help"]);
    assert_eq!(printed(&["help", "sidecar"]), long);
    assert_eq!(printed(&["help", "help"]), printed(&["--help"]));
    assert!(short.lines().count() < long.lines().count() / 2, "{short}");
    for needle in ["--wait-file <PATH>", "Stopping:", "Global options:"] {
        assert!(short.contains(needle), "{needle} missing:\n{short}");
    }
    for needle in [
        "[env: SUPERVISOR_WAIT_FILE]",
        "[env: SUPERVISOR_LOG_LEVEL]",
        "[default: 10s]",
        "EXAMPLES",
        "EXIT CODES",
        "DURATIONS",
        "SIGNALS",
        "FILES",
        "ENVIRONMENT",
    ] {
        assert!(long.contains(needle), "{needle} missing:\n{long}");
    }
    assert!(long.lines().all(|l| l.len() <= 100), "{long}");
    assert!(printed(&["--help"]).contains("Modes:"));
    assert!(printed(&["--version"]).starts_with("supervisor 0."));
    assert!(printed(&["main", "-V"]).starts_with("supervisor "));
}

/// The exit codes the help lists are the ones `exit` decides.
#[test]
fn help_exit_codes_match_the_table() {
    let listed: Vec<i32> = SHARED_SECTIONS
        .split("EXIT CODES")
        .nth(1)
        .unwrap()
        .split("\n\n")
        .next()
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    let codes = crate::exit::DOCUMENTED;
    assert_eq!(listed, codes);
}

/// Every "(exit N)" an option's help promises is a code of the table, listed for that option's
/// mode (or for every mode).
#[test]
fn exit_codes_in_option_help_are_the_table_s() {
    let table = SHARED_SECTIONS
        .split("EXIT CODES")
        .nth(1)
        .unwrap()
        .split("\n\n")
        .next()
        .unwrap();
    for m in MODES {
        for o in m.options {
            let text = format!("{} {}", o.help, o.more);
            for (i, _) in text.match_indices("exit ") {
                let Ok(code) = text[i + 5..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
                    .parse::<i32>()
                else {
                    continue;
                };
                assert!(crate::exit::DOCUMENTED.contains(&code), "{}: {code}", o.id);
                let line = table
                    .lines()
                    .find(|l| l.split_whitespace().next() == Some(&code.to_string()))
                    .unwrap();
                let for_mode = line.contains(&format!("{}:", m.name)) || !line.contains(':');
                assert!(
                    for_mode,
                    "{} {}: exit {code} is not {}'s: {line}",
                    m.name, o.id, m.name
                );
            }
        }
    }
}

/// Roff-escapes text for the man page.
fn roff(s: &str) -> String {
    s.replace('\\', "\\e")
        .replace('-', "\\-")
        .replace("\n.", "\n\\&.")
}

/// The man page, from the same table as `--help`.
pub fn man_page() -> String {
    let mut out = String::from(".TH SUPERVISOR 1 \"\" \"supervisor\" \"User Commands\"\n");
    out.push_str(".SH NAME\nsupervisor \\- PID 1 for the containers of a Kubernetes pod\n");
    out.push_str(".SH SYNOPSIS\n");
    for m in MODES {
        out.push_str(&format!(
            ".B supervisor\n[\\fIGLOBAL OPTIONS\\fR] \\fB{}\\fR [\\fIOPTIONS\\fR] [\\-\\-] \\fI{}\\fR...\n.br\n",
            m.name, m.args.0
        ));
    }
    out.push_str(".SH DESCRIPTION\n");
    out.push_str(&roff(
        "Every container of the pod runs supervisor as its entrypoint. main runs the job, sidecar \
         runs a daemon and stops it when the mains are done, probe serves exec probes, install \
         copies the binary for init containers.",
    ));
    out.push('\n');
    for m in MODES {
        out.push_str(&format!(
            ".SH {}\n{}\n",
            m.name.to_uppercase(),
            roff(m.description)
        ));
        push_man_options(&mut out, m.options);
        out.push_str(&format!(
            ".SS Examples\n.nf\n    {}\n.fi\n",
            roff(m.examples)
        ));
    }
    out.push_str(".SH GLOBAL OPTIONS\n");
    push_man_options(&mut out, GLOBAL);
    for section in SHARED_SECTIONS.split("\n\n") {
        let (title, body) = section.split_once('\n').unwrap_or((section, ""));
        out.push_str(&format!(
            ".SH {}\n.nf\n{}\n.fi\n",
            title.trim(),
            roff(body.trim_end())
        ));
    }
    out
}

fn push_man_options(out: &mut String, options: &[Opt]) {
    let mut heading = "";
    for o in options {
        if o.heading != heading {
            heading = o.heading;
            out.push_str(&format!(".SS {heading}\n"));
        }
        let value = if o.kind == Kind::Flag {
            String::new()
        } else {
            format!(" \\fI{}\\fR", roff(o.value))
        };
        out.push_str(&format!(".TP\n\\fB{}\\fR{value}\n", roff(&o.flag_name())));
        let mut text = format!("{} {}", o.help, o.more);
        if let Some(d) = o.default {
            text.push_str(&format!(" Default: {d}."));
        }
        text.push_str(&format!(" Environment: {}.", env_var(o.id)));
        out.push_str(&roff(text.trim()));
        out.push('\n');
    }
}

/// docs/supervisor.1 is what the table generates. Regenerate with
/// `UPDATE_DOCS=1 cargo test --lib man_page_is_current`.
#[test]
fn man_page_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/supervisor.1");
    let want = man_page();
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(path, &want).unwrap();
    }
    let have = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        have == want,
        "docs/supervisor.1 is stale: run UPDATE_DOCS=1 cargo test --lib man_page_is_current"
    );
}

/// The command-line reference in Markdown, from the same table as `--help`.
pub fn markdown_reference() -> String {
    let mut out = String::from(
        "# Command-line reference\n\n\
         Generated from the option table in `src/cli.rs` (the same source as `--help` and\n\
         `man supervisor`); a test fails when this file is stale. Regenerate with\n\
         `UPDATE_DOCS=1 cargo test --lib reference_is_current`.\n\n\
         Every option also reads `SUPERVISOR_<OPTION>` when it is not on the command line: see\n\
         [Environment](#environment).\n",
    );
    for m in MODES {
        let args = match m.positional {
            Positional::Command => format!("[--] {}...", m.args.0),
            Positional::Values => format!("{}...", m.args.0),
        };
        out.push_str(&format!(
            "\n## `supervisor {} [OPTIONS] {args}`\n\n{}\n\n",
            m.name,
            m.description
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        ));
        push_markdown_options(&mut out, m.options);
        let examples: Vec<&str> = m
            .examples
            .lines()
            .map(|l| l.strip_prefix("    ").unwrap_or(l))
            .collect();
        out.push_str(&format!(
            "\nExamples:\n\n```\n{}\n```\n",
            examples.join("\n")
        ));
    }
    out.push_str("\n## Global options\n\n");
    push_markdown_options(&mut out, GLOBAL);
    for section in SHARED_SECTIONS.split("\n\n") {
        let (title, body) = section.split_once('\n').unwrap_or((section, ""));
        let mut t = title.trim().to_lowercase();
        if let Some(c) = t.get_mut(0..1) {
            c.make_ascii_uppercase();
        }
        out.push_str(&format!("\n## {t}\n\n```\n{}\n```\n", body.trim_end()));
    }
    out
}

fn push_markdown_options(out: &mut String, options: &[Opt]) {
    out.push_str("| option | default | environment | meaning |\n| --- | --- | --- | --- |\n");
    for o in options {
        let name = match o.kind {
            Kind::Flag => format!("`{}`", o.flag_name()),
            _ => format!("`{} {}`", o.flag_name(), o.value),
        }
        .replace('|', "\\|");
        let text = format!("{} {}", o.help, o.more)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        out.push_str(&format!(
            "| {name} | {} | `{}` | {} |\n",
            o.default.map_or("".to_string(), |d| format!("`{d}`")),
            env_var(o.id),
            text.replace('|', "\\|")
        ));
    }
}

/// docs/cli.md is what the table generates.
#[test]
fn reference_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/cli.md");
    let want = markdown_reference();
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(path, &want).unwrap();
    }
    let have = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        have == want,
        "docs/cli.md is stale: run UPDATE_DOCS=1 cargo test --lib reference_is_current"
    );
}
