//! Fuzz entry points for the supervisor's parsers.
//!
//! The supervisor's modules come from its library crate (`src/lib.rs`). Each public function takes raw fuzzer bytes, feeds them to one parser and checks the
//! properties the rest of the program relies on; a panic is a finding. The same functions replay
//! the checked-in corpus on stable (`tests/corpus.rs`), so CI runs every past input on each build.

mod kubectl;
pub use kubectl::{kubectl_check, kubectl_inject, kubectl_yaml};

use supervisor::{clock, config, http, logging, marker, readiness, signals};

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// `clock::parse_duration`: never panics (Duration::from_secs_f64 does on overflow), accepted
/// values stay within the year the deadline arithmetic is safe for, every error names the input,
/// and what `clock::human` prints of a duration is a duration again.
pub fn duration(data: &[u8]) {
    let Some(s) = text(data) else { return };
    match clock::parse_duration(s) {
        Ok(d) => {
            assert!(d.as_secs() <= 365 * 24 * 3600, "{s:?} gave {d:?}");
            let shown = clock::human(d);
            assert!(clock::parse_duration(&shown).is_ok(), "{s:?} -> {shown:?}");
        }
        Err(e) => assert!(e.contains(&format!("{s:?}")), "{s:?}: {e}"),
    }
}

/// `signals::Sig` and `signals::parse_list`: accepted signals have a name that parses back to the
/// same signal, and lists print back as the same set.
pub fn signal(data: &[u8]) {
    let Some(s) = text(data) else { return };
    if let Ok(sig) = s.parse::<signals::Sig>() {
        let name = sig.to_string();
        assert_eq!(name.parse::<signals::Sig>(), Ok(sig), "{s:?} -> {name}");
        assert_eq!(sig.number().to_string().parse::<signals::Sig>(), Ok(sig));
    }
    if let Ok(set) = signals::parse_list(s) {
        assert!(set.iter().next().is_some());
        assert_eq!(signals::parse_list(&set.to_string()), Ok(set), "{s:?}");
    }
}

/// `readiness::Target`: what parses prints back (in logs and the ready file) as the same target,
/// in the same environment (the `docker` preset reads the container's Docker variables, here
/// none, and a TLS set whose DOCKER_HOST comes from the input after a NUL).
pub fn target(data: &[u8]) {
    let Some(s) = text(data) else { return };
    let (s, host) = s.split_once('\0').unwrap_or((s, ""));
    let tls = readiness::DockerEnv::from_env(&|var| match var {
        "DOCKER_HOST" => Some(host.into()),
        "DOCKER_TLS_CERTDIR" => Some("/certs".into()),
        _ => None,
    });
    for env in [readiness::DockerEnv::default(), tls] {
        target_in(s, &env);
    }
}

fn target_in(s: &str, env: &readiness::DockerEnv) {
    match readiness::Target::parse_with(s, env) {
        Ok(t) => {
            let shown = t.to_string();
            let back = readiness::Target::parse_with(&shown, env);
            assert_eq!(back.as_ref(), Ok(&t), "{s:?}");
            match &t {
                readiness::Target::Tcp { host, port, .. } => {
                    assert!(!host.is_empty() && *port != 0, "{s:?}");
                }
                readiness::Target::HttpUnix { socket, path } => {
                    assert!(!socket.as_os_str().is_empty() && path.starts_with('/'), "{s:?}");
                    assert!(!path.bytes().any(|b| b.is_ascii_control() || b == b' '));
                }
                readiness::Target::Docker(d) => {
                    // What it probes is a target of its own, printed and parsed back the same.
                    let inner = d.probe.to_string();
                    assert_eq!(inner.parse::<readiness::Target>().as_ref(), Ok(&*d.probe));
                    assert!(!d.describe().contains('\n'), "{s:?}");
                }
                _ => {}
            }
            // The ready file lists targets as JSON strings: always valid JSON.
            let json = serde_json::to_string(&[shown]).expect("serialise");
            serde_json::from_str::<Vec<String>>(&json).expect("round trip");
        }
        Err(e) => {
            let e = e.to_string();
            assert!(e.contains(&format!("{s:?}")) && !e.contains('\n'), "{s:?}: {e}");
        }
    }
}

/// `http::parse_url`, `split_host_port`, `is_loopback` and `parse_status_line`. A URL that parses
/// can be put on a request line as is: no spaces, no control characters, a path starting with
/// `/`, a non-empty host, a non-zero port.
pub fn http(data: &[u8]) {
    // The status line and head parsers see raw bytes from the network.
    match http::parse_status_line(data) {
        Ok(Some(code)) => assert!((100..=599).contains(&code)),
        Ok(None) => assert!(!data.contains(&b'\n')),
        Err(_) => {}
    }
    head(data);
    let Some(s) = text(data) else { return };
    if let Some((host, port)) = http::split_host_port(s) {
        assert_ne!(port, Some(0), "{s:?}");
        assert!(
            !host.contains(['/', '@', ' ', '[', ']']),
            "{s:?} -> {host:?}"
        );
        let _ = http::is_loopback(&host);
    }
    if let Ok(u) = http::parse_url(s) {
        assert!(!u.host.is_empty() && u.port != 0, "{s:?}");
        assert!(u.path.starts_with('/'), "{s:?} -> {:?}", u.path);
        assert!(
            !u.path
                .bytes()
                .chain(u.host.bytes())
                .any(|b| b.is_ascii_control() || b == b' '),
            "{s:?}"
        );
        assert!(!u.path.contains('#'), "{s:?}");
        assert_eq!(http::parse_url(&u.to_string()).as_ref(), Ok(&u));
        // The request for any URL that parses is one head: a request line of three parts, then
        // headers, then one empty line, at the end.
        for method in [http::Method::Get, http::Method::Post] {
            let req = http::request(method, &u.host, Some(u.port), &u.path);
            let req = String::from_utf8(req).expect("ASCII request");
            assert!(req.ends_with("\r\n\r\n") && req.matches("\r\n\r\n").count() == 1);
            let line = req.split("\r\n").next().unwrap_or_default();
            assert_eq!(line.split(' ').count(), 3, "{line:?}");
            assert!(!req.replace("\r\n", "").contains(['\r', '\n']), "{req:?}");
        }
    }
}

/// `http::parse_head` on the first bytes of a response, whole and fed a piece at a time (as the
/// socket gives them): a final status or an error is the same however the bytes arrived, more
/// bytes never take a final status back, and nothing past the 8 KiB bound is ever needed.
fn head(data: &[u8]) {
    // A reader never holds more than the bound.
    let data = &data[..data.len().min(http::MAX_RESPONSE_HEAD)];
    let whole = http::parse_head(data);
    match &whole {
        Ok(Some(code)) => assert!((101..=599).contains(code) && (*code >= 200 || *code == 101)),
        Ok(None) => assert!(data.len() < http::MAX_RESPONSE_HEAD),
        Err(_) => {}
    }
    let mut decided = None;
    for end in 0..=data.len() {
        match http::parse_head(&data[..end]) {
            Ok(None) => assert!(decided.is_none(), "a decision taken back at {end}"),
            other => {
                if decided.is_none() {
                    decided = Some(other.clone());
                }
                assert_eq!(Some(&other), decided.as_ref(), "{end}");
            }
        }
    }
    if let Some(d) = decided {
        assert_eq!(d, whole);
    }
}

/// `marker::decode` on hostile bytes never panics and bounds what it keeps; and a marker the main
/// writes (whatever its command line and error text, built here from the same bytes) fits in what
/// a sidecar reads and decodes to its exit code.
pub fn marker(data: &[u8]) {
    let seen = marker::decode(data);
    // The reason goes into the sidecar's logs: one of the known ones, or none.
    if let Some(r) = &seen.reason {
        assert!(marker::Reason::ALL.contains(r), "{r:?}");
    }
    // Whatever the JSON around it, an integer `exit_code` at the top level is what decode finds.
    if let Ok(serde_json::Value::Object(o)) = serde_json::from_slice(data) {
        assert_eq!(seen.exit_code, o.get("exit_code").and_then(|c| c.as_i64()));
    }
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let code = parts.next().map_or(0, |p| p.len() as i32 - 3);
    let error = parts.next().map(|e| e.repeat(64));
    let m = marker::Marker {
        version: 1,
        role: marker::Role::Main,
        exit_code: code,
        reason: marker::Reason::Exited,
        signal: None,
        command_exit_code: Some(code),
        started_at: clock::rfc3339(std::time::SystemTime::now()),
        finished_at: clock::rfc3339(std::time::SystemTime::now()),
        duration_ms: data.len() as u64,
        command: parts
            .map(|p| p.repeat(if p.len() < 64 { 1 + p.len() * 40 } else { 1 }))
            .collect(),
        error,
        dependency: None,
        stop_request: None,
    };
    let bytes = m.to_json();
    assert!(
        bytes.len() < supervisor::fsutil::MAX_READ as usize,
        "{} bytes",
        bytes.len()
    );
    let back = marker::decode(&bytes);
    assert_eq!(back.exit_code, Some(i64::from(code)));
    assert_eq!(back.reason, Some(marker::Reason::Exited));
}

/// The whole command line: NUL-separated arguments (any bytes, as the kernel allows) through the
/// parser and the validation into a config, with no environment. Nothing may panic, a parsed
/// `main`/`sidecar` always has a command, and every error is one line.
pub fn cli(data: &[u8]) {
    let mut args: Vec<OsString> = vec!["supervisor".into()];
    args.extend(
        data.split(|&b| b == 0)
            .map(|a| OsString::from_vec(a.to_vec())),
    );
    match config::parse(args, &|_| None) {
        Ok(config::Invocation::Run { mode, .. }) => match *mode {
            config::Parsed::Main(cfg) => {
                assert!(!cfg.command.is_empty());
                if cfg.heartbeat.is_some() {
                    assert!(cfg.done_file.is_some());
                }
                if cfg.wait_timeout.is_some() {
                    assert!(!cfg.wait_for.is_empty());
                }
            }
            config::Parsed::Sidecar(cfg) => {
                assert!(!cfg.command.is_empty());
                assert!(!cfg.poll.is_zero());
                assert!(cfg.ready_file.is_none() || !cfg.ready_when.is_empty());
            }
            config::Parsed::Probe(cfg) => {
                assert!(!cfg.targets.is_empty() && !cfg.timeout.is_zero());
            }
            config::Parsed::Install(cfg) => assert!(!cfg.dir.as_os_str().is_empty()),
        },
        Ok(config::Invocation::Print(text)) => assert!(!text.is_empty()),
        Err(e) => assert!(!e.to_string().contains('\n'), "{e}"),
    }
}

/// `logging::parse_level`, which also reads RUST_LOG directive lists; and the JSON log line, which
/// must stay one valid JSON object whatever the message (commands and paths end up in it).
pub fn level(data: &[u8]) {
    let Some(s) = text(data) else { return };
    let _ = logging::parse_level(s);
    let (message, value) = s.split_once('\0').unwrap_or((s, ""));
    let line = logging::format_line(
        logging::Format::Json,
        "T",
        &tracing::Level::INFO,
        "main",
        message,
        &[("extra", value.to_string())],
    );
    assert!(!line.contains('\n'), "{line:?}");
    let v: serde_json::Value = serde_json::from_str(&line).expect("valid JSON");
    assert_eq!(v["message"].as_str(), Some(message));
    assert_eq!(v["extra"].as_str(), Some(value));
}

/// The webhook's review handler, `review::respond`, on any body: it answers 200 or 400, never
/// panics; a 200 is a v1 AdmissionReview for the request's uid that allows the pod, with
/// warnings the API server keeps; a patch applies to the object the request carried, and the
/// pod it makes is wired already (reviewed again, it gets no patch).
pub fn review(data: &[u8]) {
    use kubectl_supervise::webhook::review;
    let opts = kubectl_supervise::inject::Options::default();
    let reply = review::respond(data, &opts);
    if reply.status == 400 {
        assert!(reply.result.is_err());
        let text = String::from_utf8(reply.body).expect("UTF-8");
        assert_eq!(text.matches('\n').count(), 1, "{text:?}");
        return;
    }
    assert_eq!(reply.status, 200);
    let answer: serde_json::Value = serde_json::from_slice(&reply.body).expect("JSON");
    assert_eq!(answer["apiVersion"], review::API_VERSION);
    assert_eq!(answer["kind"], review::KIND);
    let r = &answer["response"];
    assert!(r["uid"].as_str().is_some_and(|u| !u.is_empty()), "{r}");
    assert_eq!(r["allowed"], true);
    // The review reads only the fields it knows: the rest of a body it answers may be invalid
    // JSON (a lone surrogate escape in an unknown field). The checks below need it whole.
    let Ok(request) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    assert_eq!(r["uid"], request["request"]["uid"]);
    for w in r["warnings"].as_array().into_iter().flatten() {
        assert!(w.as_str().is_some_and(|w| w.chars().count() <= 256), "{w}");
    }
    let Some(b64) = r["patch"].as_str() else {
        return;
    };
    assert_eq!(r["patchType"], "JSONPatch");
    let bytes =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).expect("base64");
    let patch: json_patch::Patch = serde_json::from_slice(&bytes).expect("a JSON Patch");
    let mut pod = request["request"]["object"].clone();
    json_patch::patch(&mut pod, &patch).expect("the patch applies to the object sent");
    let mut again = request.clone();
    again["request"]["object"] = pod;
    let second = review::respond(&serde_json::to_vec(&again).expect("JSON"), &opts);
    let second: serde_json::Value = serde_json::from_slice(&second.body).expect("JSON");
    assert!(
        second["response"].get("patch").is_none(),
        "the patched pod is patched again: {second}"
    );
}
