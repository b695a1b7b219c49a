//! Fuzz entry points for kubectl-supervise: its YAML reader, `inject` and `check`, on any
//! bytes. Each checks the properties the plugin promises, not just "no panic": one-line
//! errors, output that reads back as what was written, and an `inject` that changes nothing
//! the second time.

use kubectl_supervise::{check, inject, yaml};

fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// What Kubernetes reads from a stream: each document's JSON.
fn values(docs: &[yaml::Node]) -> Vec<serde_json::Value> {
    docs.iter().map(yaml::Node::to_json).collect()
}

/// `yaml::parse`, then `emit`: never a panic; an error is one line; what parses is written as
/// YAML that parses again to the same values (the emitter keeps every scalar's meaning).
pub fn kubectl_yaml(data: &[u8]) {
    let Some(s) = text(data) else { return };
    match yaml::parse(s) {
        Ok(docs) => {
            let out = yaml::emit(&docs);
            let back = yaml::parse(&out)
                .unwrap_or_else(|e| panic!("emitted YAML does not parse: {e}\n{out}"));
            assert_eq!(values(&docs), values(&back), "{out}");
        }
        Err(e) => assert!(!e.to_string().contains('\n'), "{e}"),
    }
}

/// The options an `inject` input asks for: its first line's words (`native`, `no-requires`,
/// `no-auto-ready`, any other word names a main); the rest is the manifest.
fn options(line: &str) -> inject::Options {
    let mut o = inject::Options::default();
    for w in line.split_whitespace() {
        match w {
            "native" => o.native = Some(true),
            "no-requires" => o.requires = Some(false),
            "no-auto-ready" => o.auto_ready = Some(false),
            main => o.mains.push(main.to_string()),
        }
    }
    o
}

/// `inject_str`: never a panic; an error is one line; the output is YAML, checks without an
/// error, and injecting it again (with the same options) changes nothing.
pub fn kubectl_inject(data: &[u8]) {
    let Some(s) = text(data) else { return };
    let (line, manifest) = s.split_once('\n').unwrap_or(("", s));
    let opts = options(line);
    match inject::inject_str(manifest, &opts) {
        Ok(out) => {
            yaml::parse(&out).unwrap_or_else(|e| panic!("output does not parse: {e}\n{out}"));
            check::check_str(&out).unwrap_or_else(|e| panic!("check: {e}\n{out}"));
            let again = inject::inject_str(&out, &opts)
                .unwrap_or_else(|e| panic!("injecting the output: {e}\n{out}"));
            assert_eq!(out, again, "injecting twice changed it");
        }
        Err(e) => assert!(!e.to_string().contains('\n'), "{e}"),
    }
}

/// `check_str`: never a panic; an error and each finding are one line.
pub fn kubectl_check(data: &[u8]) {
    let Some(s) = text(data) else { return };
    match check::check_str(s) {
        Ok(findings) => {
            for f in findings {
                let line = f.to_string();
                assert!(!line.contains('\n'), "{line}");
            }
        }
        Err(e) => assert!(!e.to_string().contains('\n'), "{e}"),
    }
}
