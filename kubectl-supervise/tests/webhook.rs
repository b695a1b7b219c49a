//! The built `kubectl-supervise webhook` over real HTTPS: recorded AdmissionReviews answered
//! with patches that make what `inject` makes, bad input refused while the server keeps
//! serving, slow clients cut off, certificates rotated under open connections, SIGTERM.
//!
//! Theory of operation. Each test makes a CA and a serving certificate with the openssl recipe
//! of docs/kubectl-supervise.md (the very block the docs show), starts the binary on
//! 127.0.0.1:0 and learns its port from the "listening on" log line, then talks to it as the
//! API server does: TLS with the CA as the only root, the Service's DNS name as server name.
//! Patches are applied with the json-patch crate (not our code) and compared with the output
//! of `kubectl supervise inject` for the same pod. Every wait has a deadline and ends on an
//! event (a log line, a handshake that succeeds, an exit); the webhook is killed on drop.
//! Without openssl the tests are skipped loudly, except under CI, where they fail.

// Test helpers may unwrap: a failure is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kubectl_supervise::{check, manifest, yaml};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// The Service's name, which the recipe's certificate is for.
const HOST: &str = "supervisor-webhook.supervisor-system.svc";
const DEADLINE: Duration = Duration::from_secs(20);
const IMAGE: &str = "reg.example/supervisor:1";
const MAX_BODY: usize = kubectl_supervise::webhook::MAX_BODY;

fn repo(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
}

/// The block of docs/kubectl-supervise.md the docs say the tests run.
fn recipe() -> String {
    let doc = std::fs::read_to_string(repo("docs/kubectl-supervise.md")).expect("docs");
    let marker = "<!-- tests: kubectl-supervise/tests/webhook.rs runs the next block -->";
    let after = &doc[doc.find(marker).expect("the recipe's marker") + marker.len()..];
    let body = &after[after.find("```sh\n").expect("a sh block") + 6..];
    body[..body.find("```").expect("the block's end")].to_string()
}

/// Runs the recipe in `dir`; None (a skip) when openssl is missing outside CI.
fn make_pair(dir: &Path) -> Option<()> {
    if Command::new("openssl").arg("version").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none_or(|v| v.is_empty()),
            "CI is set, so the webhook tests must run, but openssl is not installed"
        );
        eprintln!("\n=== SKIPPED (not in CI): the webhook tests need openssl\n");
        return None;
    }
    let out = Command::new("sh")
        .args(["-ec", &recipe()])
        .current_dir(dir)
        .output()
        .expect("sh");
    assert!(
        out.status.success(),
        "the recipe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(())
}

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A running webhook.
struct Webhook {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<String>>,
    dir: tempfile::TempDir,
}

impl Webhook {
    fn start(extra: &[&str]) -> Option<Webhook> {
        Webhook::start_with(extra, "info")
    }

    /// Started with RUST_LOG=`level` (`debug` logs each connection's end).
    fn start_with(extra: &[&str], level: &str) -> Option<Webhook> {
        Webhook::spawn(
            Command::new(env!("CARGO_BIN_EXE_kubectl-supervise")),
            extra,
            level,
        )
    }

    /// Started with at most `files` open files (`ulimit -n`).
    fn start_limited(extra: &[&str], files: u32) -> Option<Webhook> {
        let mut sh = Command::new("sh");
        sh.args(["-c", &format!("ulimit -n {files} && exec \"$0\" \"$@\"")])
            .arg(env!("CARGO_BIN_EXE_kubectl-supervise"));
        Webhook::spawn(sh, extra, "info")
    }

    fn spawn(mut cmd: Command, extra: &[&str], level: &str) -> Option<Webhook> {
        let dir = tempfile::tempdir().expect("tempdir");
        make_pair(dir.path())?;
        let mut child = cmd
            .arg("webhook")
            .arg("--cert")
            .arg(dir.path().join("tls.crt"))
            .arg("--key")
            .arg(dir.path().join("tls.key"))
            .args(["--listen", "127.0.0.1:0", "--image", IMAGE])
            .args(extra)
            .env("RUST_LOG", level)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the webhook");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on https://").nth(1) {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_string());
                }
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let mut w = Webhook {
            child,
            addr: "127.0.0.1:1".parse().unwrap(),
            log,
            dir,
        };
        match rx.recv_timeout(DEADLINE) {
            Ok(a) => w.addr = a.parse().expect("an address"),
            Err(_) => panic!("the webhook never listened:\n{}", w.log()),
        }
        Some(w)
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// A TLS connection that trusts only `ca`.
    fn connect_with(&self, ca: &Path) -> Result<Tls, String> {
        tls_connect(self.addr, ca)
    }

    fn connect(&self) -> Tls {
        self.connect_with(&self.ca()).expect("handshake")
    }

    /// One review on a new connection: (status, response body as JSON).
    fn review(&self, body: &[u8]) -> (u16, Value) {
        let mut c = self.connect();
        let (status, _, body) = exchange(&mut c, "POST", "/mutate?timeout=5s", body);
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// SIGTERM, then the exit status (within the deadline).
    fn stop(&mut self) -> std::process::ExitStatus {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("kill");
        let end = Instant::now() + DEADLINE;
        loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                return s;
            }
            assert!(
                Instant::now() < end,
                "no exit after SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for a log line containing `needle`.
    fn wait_log(&self, needle: &str) {
        let end = Instant::now() + DEADLINE;
        while !self.log().contains(needle) {
            assert!(
                Instant::now() < end,
                "no {needle:?} in the log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TLS connection to `addr` that trusts only `ca`, as the API server makes them.
fn tls_connect(addr: SocketAddr, ca: &Path) -> Result<Tls, String> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).expect("ca.crt") {
        roots.add(c.expect("a certificate")).expect("a root");
    }
    let config =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls_graviola::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
    let conn =
        rustls::ClientConnection::new(Arc::new(config), ServerName::try_from(HOST).expect("name"))
            .expect("client");
    let tcp = TcpStream::connect_timeout(&addr, DEADLINE).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn
            .complete_io(&mut tls.sock)
            .map_err(|e| e.to_string())?;
    }
    Ok(tls)
}

fn send(s: &mut impl Write, method: &str, path: &str, body: &[u8]) {
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("write head");
    s.write_all(body).expect("write body");
    s.flush().expect("flush");
}

/// Reads one response: (status, head, body).
fn read_response(s: &mut impl Read) -> std::io::Result<(u16, String, Vec<u8>)> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let status = head[9..12].parse().expect("a status");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .map(|n| n.trim().parse().expect("a length"))
        .unwrap_or(0);
    let mut body = vec![0; length];
    s.read_exact(&mut body)?;
    Ok((status, head, body))
}

fn exchange(s: &mut Tls, method: &str, path: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
    send(s, method, path, body);
    read_response(s).expect("a response")
}

fn recorded(name: &str) -> Value {
    let text = std::fs::read_to_string(repo(&format!("kubectl-supervise/tests/webhook/{name}")))
        .expect("recorded review");
    serde_json::from_str(&text).expect("JSON")
}

/// What `kubectl supervise inject --image IMAGE` writes for this object, as JSON.
fn injected_by_the_cli(object: &Value) -> Value {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = kubectl_supervise::cli::run(
        ["kubectl-supervise", "inject", "--image", IMAGE],
        &mut serde_json::to_string(object).expect("json").as_bytes(),
        &mut out,
        &mut err,
    );
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&err));
    yaml::parse(&String::from_utf8(out).expect("utf-8")).expect("yaml")[0].to_json()
}

fn patch_of(response: &Value) -> Vec<Value> {
    use base64::Engine;
    let b64 = response["patch"].as_str().expect("a patch");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("base64");
    serde_json::from_slice(&bytes).expect("a JSON array")
}

const RECORDED: [&str; 3] = ["bare-pod.json", "job-pod.json", "agent-stack-k8s-pod.json"];

#[test]
fn recorded_reviews_get_patches_that_make_what_inject_makes() {
    let Some(w) = Webhook::start(&[]) else {
        return;
    };
    for name in RECORDED {
        let review = recorded(name);
        let (status, answer) = w.review(&serde_json::to_vec(&review).unwrap());
        assert_eq!(status, 200, "{name}: {answer}");
        assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(answer["kind"], "AdmissionReview");
        let r = &answer["response"];
        assert_eq!(r["uid"], review["request"]["uid"], "{name}");
        assert_eq!(r["allowed"], true, "{name}");
        assert_eq!(r["patchType"], "JSONPatch", "{name}: {r}");
        assert!(r.get("warnings").is_none(), "{name}: {r}");
        let ops = patch_of(r);
        for op in &ops {
            let path = op["path"].as_str().unwrap_or_default();
            assert!(path.starts_with("/spec/"), "{name}: {op}");
        }
        let object = &review["request"]["object"];
        let mut patched = object.clone();
        let patch: json_patch::Patch = serde_json::from_value(Value::Array(ops)).expect("patch");
        json_patch::patch(&mut patched, &patch).expect("the patch applies");
        assert_eq!(patched, injected_by_the_cli(object), "{name}");
        // The result is a strictly valid pod that check finds nothing wrong with.
        manifest::strict::<k8s_openapi::api::core::v1::Pod>(&patched).expect("strict");
        let findings = check::check_str(&patched.to_string()).expect("json");
        assert!(findings.is_empty(), "{name}: {findings:#?}");
        // The same pod wired already gets no patch.
        let mut again = review.clone();
        again["request"]["object"] = patched;
        let (_, answer) = w.review(&serde_json::to_vec(&again).unwrap());
        assert_eq!(
            answer["response"],
            json!({"uid": review["request"]["uid"], "allowed": true}),
            "{name}"
        );
    }
    w.wait_log("wired pod ci/redis-demo (");
    w.wait_log("wired pod ci/ci-dind-* (");
    w.wait_log("wired pod buildkite/buildkite-01932c1e-7d1f-4b2a-9c3e-5f6a7b8c9d0e-* (");
}

/// The bare pod's review, with its pod edited by `f`.
fn bare_with(f: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut r = recorded("bare-pod.json");
    f(&mut r["request"]["object"]);
    serde_json::to_vec(&r).unwrap()
}

#[test]
fn pods_are_never_blocked_and_say_why_they_were_not_wired() {
    let Some(w) = Webhook::start(&[]) else {
        return;
    };
    let cases: [(Vec<u8>, Option<&str>); 5] = [
        (
            bare_with(|p| {
                p["metadata"]["annotations"]
                    .as_object_mut()
                    .unwrap()
                    .remove("supervisor/inject");
            }),
            None,
        ),
        (
            bare_with(|p| {
                p["metadata"]["annotations"]
                    .as_object_mut()
                    .unwrap()
                    .remove("supervisor/main");
            }),
            Some("name the main ones with --main NAME or the supervisor/main annotation"),
        ),
        (
            bare_with(|p| p["spec"]["containers"][1]["image"] = json!("example.org/kv:1")),
            Some("container redis has no command and the entrypoint of its image"),
        ),
        (
            bare_with(|p| {
                p["metadata"]["annotations"]["supervisor/ready"] = json!("redis=ftp://x")
            }),
            Some("annotation supervisor/ready"),
        ),
        (
            {
                let mut r = recorded("bare-pod.json");
                r["request"]["kind"] =
                    json!({"group": "apps", "version": "v1", "kind": "Deployment"});
                serde_json::to_vec(&r).unwrap()
            },
            Some("only Pods are wired, not apps/v1 Deployment"),
        ),
    ];
    for (body, warning) in cases {
        let (status, answer) = w.review(&body);
        assert_eq!(status, 200, "{answer}");
        let r = &answer["response"];
        assert_eq!(r["allowed"], true, "{r}");
        assert!(r.get("patch").is_none(), "{r}");
        match warning {
            None => assert!(r.get("warnings").is_none(), "{r}"),
            Some(needle) => {
                let w0 = r["warnings"][0].as_str().unwrap_or_default();
                assert!(w0.starts_with("supervisor: ") && w0.contains(needle), "{r}");
            }
        }
    }
    w.wait_log("allowed pod ci/redis-demo without wiring: not wired: ");
}

#[test]
fn bad_requests_are_answered_and_the_server_keeps_serving() {
    let Some(w) = Webhook::start(&[]) else {
        return;
    };
    let good = serde_json::to_vec(&recorded("bare-pod.json")).unwrap();
    // Refused bodies keep the connection: the API server reuses it.
    let mut c = w.connect();
    let bad: [&[u8]; 6] = [
        &good[..good.len() / 2],
        b"\x00\xffnot json at all",
        br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"x"}}"#,
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"ConversionReview","request":{"uid":"x"}}"#,
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#,
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":""}}"#,
    ];
    for body in bad {
        let (status, _, text) = exchange(&mut c, "POST", "/mutate", body);
        assert_eq!(status, 400, "{}", String::from_utf8_lossy(&text));
    }
    assert_eq!(exchange(&mut c, "GET", "/mutate", b"").0, 405);
    assert_eq!(exchange(&mut c, "POST", "/validate", b"{}").0, 404);
    let (status, _, body) = exchange(&mut c, "GET", "/healthz", b"");
    assert_eq!((status, body.as_slice()), (200, &b"ok\n"[..]));
    let (status, _, _) = exchange(&mut c, "POST", "/mutate", &good);
    assert_eq!(status, 200);

    // Not JSON: 415, whatever the body; the connection goes on.
    for ct in ["text/plain", "application/json-patch+json"] {
        let head = format!(
            "POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\r\n",
            good.len()
        );
        c.write_all(head.as_bytes()).unwrap();
        c.write_all(&good).unwrap();
        let (status, _, text) = read_response(&mut c).expect("a response");
        assert_eq!(status, 415, "{}", String::from_utf8_lossy(&text));
    }
    c.write_all(b"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        .unwrap();
    assert_eq!(read_response(&mut c).expect("a response").0, 415);
    assert_eq!(exchange(&mut c, "POST", "/mutate", &good).0, 200);

    // Over the limit, announced: 413 at once, whether or not the client sends the body.
    let mut c = w.connect();
    let huge = vec![b' '; MAX_BODY + 1];
    send(&mut c, "POST", "/mutate", &huge);
    let (status, head, _) = read_response(&mut c).expect("a response");
    assert_eq!(status, 413, "{head}");
    assert!(head.contains("connection: close"), "{head}");
    // Over the limit, chunked.
    let mut c = w.connect();
    c.write_all(b"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        .unwrap();
    let chunk = vec![b' '; 1024 * 1024];
    let mut answered = None;
    for _ in 0..=MAX_BODY / chunk.len() {
        let sent = c
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .and_then(|_| c.write_all(&chunk))
            .and_then(|_| c.write_all(b"\r\n"))
            .and_then(|_| c.flush());
        if sent.is_err() {
            break;
        }
    }
    if let Ok(r) = read_response(&mut c) {
        answered = Some(r.0);
    }
    assert_eq!(answered, Some(413));

    // Not TLS at all: the connection is closed.
    let mut raw = TcpStream::connect(w.addr).unwrap();
    raw.set_read_timeout(Some(DEADLINE)).unwrap();
    raw.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut rest = Vec::new();
    let _ = raw.read_to_end(&mut rest);
    assert!(!String::from_utf8_lossy(&rest).contains("200 OK"));

    // Still serving.
    let (status, answer) = w.review(&good);
    assert_eq!(
        (status, &answer["response"]["allowed"]),
        (200, &json!(true))
    );
    w.wait_log("answered 413");
    w.wait_log("answered 400 to a bad AdmissionReview");
}

#[test]
fn slow_clients_are_cut_off_while_others_are_served() {
    let Some(w) = Webhook::start(&["--request-timeout", "1s"]) else {
        return;
    };
    let good = serde_json::to_vec(&recorded("job-pod.json")).unwrap();
    // A client that starts a request and trickles it.
    let mut slow = w.connect();
    let began = Instant::now();
    slow.write_all(b"POST /mutate HTTP/1.1\r\n").unwrap();
    slow.flush().unwrap();
    // A client that never says hello (TLS).
    let mut silent = TcpStream::connect(w.addr).unwrap();
    silent.set_read_timeout(Some(DEADLINE)).unwrap();
    // Meanwhile, others are served at once.
    for i in 0..3 {
        review_within_a_second(&w, &good, &format!("review {i}"));
    }
    // It is cut off once --request-timeout has passed since its first byte.
    cut_off_after(&w, &mut slow, began, |c| {
        let _ = c.write_all(b"X").and_then(|_| c.flush());
    });
    let mut rest = Vec::new();
    let _ = silent.read_to_end(&mut rest);
    // Still serving.
    assert_eq!(w.review(&good).0, 200);
}

/// Makes a second pair in `dir` and moves it over the served files, as the kubelet updates a
/// Secret volume (each file replaced whole).
fn rotate(w: &Webhook, dir: &Path) {
    make_pair(dir).expect("openssl is there: the first pair was made");
    for f in ["tls.key", "tls.crt"] {
        let staged = w.dir.path().join(format!(".{f}.new"));
        std::fs::copy(dir.join(f), &staged).unwrap();
        std::fs::rename(&staged, w.dir.path().join(f)).unwrap();
    }
}

#[test]
fn rotated_certificates_are_picked_up_without_dropping_connections() {
    let Some(w) = Webhook::start(&[]) else {
        return;
    };
    let good = serde_json::to_vec(&recorded("bare-pod.json")).unwrap();
    let old_ca = w.dir.path().join("old-ca.crt");
    std::fs::copy(w.ca(), &old_ca).unwrap();
    let mut open = w.connect_with(&old_ca).expect("handshake");
    assert_eq!(exchange(&mut open, "POST", "/mutate", &good).0, 200);

    let second = tempfile::tempdir().unwrap();
    rotate(&w, second.path());
    let new_ca = second.path().join("ca.crt");
    let end = Instant::now() + DEADLINE;
    while w.connect_with(&new_ca).is_err() {
        assert!(
            Instant::now() < end,
            "the new certificate was never served:\n{}",
            w.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    w.wait_log("certificate reloaded");
    // New connections get the new certificate only; the open one goes on.
    assert!(w.connect_with(&old_ca).is_err());
    assert_eq!(exchange(&mut open, "POST", "/mutate", &good).0, 200);

    // A pair that does not load is reported, and the one in service stays.
    std::fs::write(w.dir.path().join("tls.key"), "not a key\n").unwrap();
    w.wait_log("do not load");
    let mut c = w
        .connect_with(&new_ca)
        .expect("still the second certificate");
    assert_eq!(exchange(&mut c, "POST", "/mutate", &good).0, 200);
}

#[test]
fn sigterm_closes_idle_connections_and_exits_0() {
    let Some(mut w) = Webhook::start(&[]) else {
        return;
    };
    let mut idle = w.connect();
    assert_eq!(exchange(&mut idle, "GET", "/healthz", b"").0, 200);
    let status = w.stop();
    assert_eq!(status.code(), Some(0), "{}", w.log());
    let mut rest = Vec::new();
    let _ = idle.read_to_end(&mut rest);
    assert!(rest.is_empty());
    let log = w.log();
    assert!(
        log.contains("received SIGTERM") && log.contains("stopped"),
        "{log}"
    );
}

/// One review on a new connection, which must be answered 200 within a second.
fn review_within_a_second(w: &Webhook, body: &[u8], what: &str) {
    let t = Instant::now();
    let (status, _) = w.review(body);
    assert_eq!(status, 200, "{what}");
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "{what}: {:?}\n{}",
        t.elapsed(),
        w.log()
    );
}

/// Whether the server closed `c`: a read that does not block ends (EOF, close_notify, reset).
fn closed(c: &mut Tls) -> bool {
    c.sock.set_nonblocking(true).unwrap();
    let mut b = [0u8; 64];
    let r = c.read(&mut b);
    c.sock.set_nonblocking(false).unwrap();
    !matches!(r, Err(e) if e.kind() == ErrorKind::WouldBlock)
}

#[test]
fn a_thousand_idle_connections_from_one_client_do_not_switch_it_off() {
    // A request timeout longer than the test: the only way the server closes the attacker's
    // connections is to make room.
    let Some(w) = Webhook::start(&["--request-timeout", "5m"]) else {
        return;
    };
    let good = serde_json::to_vec(&recorded("job-pod.json")).unwrap();
    // The API server's kept-alive connection, from the same address as the attacker.
    let mut kept = w.connect();
    assert_eq!(exchange(&mut kept, "POST", "/mutate", &good).0, 200);

    // One client opens a thousand TLS connections, finishes each handshake and sends nothing.
    let (addr, ca) = (w.addr, w.ca());
    let attacker = std::thread::spawn(move || {
        (0..1000)
            .filter_map(|_| tls_connect(addr, &ca).ok())
            .collect::<Vec<Tls>>()
    });
    // Meanwhile reviews on new connections, and health checks on the kept-alive one, are
    // answered, each within a second.
    let mut rounds = 0;
    while !attacker.is_finished() || rounds < 3 {
        review_within_a_second(&w, &good, &format!("review {rounds}"));
        let t = Instant::now();
        let (status, _, body) = exchange(&mut kept, "GET", "/healthz", b"");
        assert_eq!((status, body.as_slice()), (200, &b"ok\n"[..]));
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        rounds += 1;
    }
    let mut held = attacker.join().unwrap();
    assert!(held.len() > 900, "only {} handshakes", held.len());
    // The client holds at most its share: its oldest idle connections were closed.
    let share = kubectl_supervise::webhook::MAX_PER_CLIENT;
    let end = Instant::now() + DEADLINE;
    loop {
        held.retain_mut(|c| !closed(c));
        if held.len() <= share {
            break;
        }
        assert!(Instant::now() < end, "{} still open", held.len());
        std::thread::sleep(Duration::from_millis(20));
    }
    w.wait_log("closed its oldest idle one (it sent no request) for a new one");
    // The API server's connection, kept alive all along, still works.
    assert_eq!(exchange(&mut kept, "POST", "/mutate", &good).0, 200);
    assert!(!w.log().contains("answered 400"), "{}", w.log());
}

#[test]
fn with_few_open_files_it_serves_fewer_connections_rather_than_failing_to_accept() {
    let Some(w) = Webhook::start_limited(&["--request-timeout", "5m"], 96) else {
        return;
    };
    w.wait_log(
        "only 96 open files allowed (ulimit -n): serving at most 64 connections, 16 per client",
    );
    let good = serde_json::to_vec(&recorded("job-pod.json")).unwrap();
    // More idle connections than there are descriptors: the oldest make room.
    let held: Vec<Tls> = (0..128).map(|_| w.connect()).collect();
    review_within_a_second(&w, &good, "past the descriptors");
    drop(held);
}

#[test]
fn a_client_that_closes_after_the_handshake_is_not_logged_as_a_bad_request() {
    let Some(w) = Webhook::start_with(&[], "debug") else {
        return;
    };
    let mut ports = Vec::new();
    // Closed without a word, with a close_notify, and a TCP connection with no TLS at all.
    let c = w.connect();
    ports.push(c.sock.local_addr().unwrap().port());
    drop(c);
    let mut c = w.connect();
    ports.push(c.sock.local_addr().unwrap().port());
    c.conn.send_close_notify();
    c.flush().unwrap();
    drop(c);
    let raw = TcpStream::connect(w.addr).unwrap();
    ports.push(raw.local_addr().unwrap().port());
    drop(raw);
    for port in ports {
        w.wait_log(&format!("connection from 127.0.0.1:{port} "));
    }
    let log = w.log();
    assert!(!log.contains("answered 400"), "{log}");
    assert!(!log.contains(" WARN "), "{log}");
}

/// Cut off at `--request-timeout` (1 s) after `began`, while `poke` keeps writing to it.
fn cut_off_after(
    w: &Webhook,
    c: &mut Tls,
    began: Instant,
    mut poke: impl FnMut(&mut Tls),
) -> Duration {
    c.sock
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let took = loop {
        assert!(
            began.elapsed() < DEADLINE,
            "the client was never cut off:\n{}",
            w.log()
        );
        poke(c);
        let mut b = [0u8; 64];
        match c.read(&mut b) {
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            _ => break began.elapsed(),
        }
    };
    assert!(took >= Duration::from_millis(900), "cut after {took:?}");
    took
}

#[test]
fn a_trickled_body_is_cut_off_at_the_request_timeout() {
    let Some(w) = Webhook::start(&["--request-timeout", "1s"]) else {
        return;
    };
    let good = serde_json::to_vec(&recorded("job-pod.json")).unwrap();
    let mut slow = w.connect();
    let began = Instant::now();
    slow.write_all(
        b"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
    )
    .unwrap();
    slow.flush().unwrap();
    // Others are served meanwhile.
    review_within_a_second(&w, &good, "beside a slow body");
    cut_off_after(&w, &mut slow, began, |c| {
        let _ = c.write_all(b" ").and_then(|_| c.flush());
    });
    w.wait_log("it did not send its request in time (--request-timeout 1.0s)");
    review_within_a_second(&w, &good, "after");
}

#[test]
fn a_client_that_never_reads_its_responses_is_cut_off() {
    let Some(w) = Webhook::start(&["--request-timeout", "1s"]) else {
        return;
    };
    // A pod whose patch carries a MiB: its container's command, each word of it shifted.
    let words: Vec<String> = (0..1024)
        .map(|i| format!("{i:04}{}", "x".repeat(1020)))
        .collect();
    let big = bare_with(|p| p["spec"]["containers"][0]["command"] = json!(words));
    let mut c = w.connect();
    c.sock.set_write_timeout(Some(DEADLINE)).unwrap();
    // Responses pile up in the socket buffers until the server cannot write any more.
    let writer = std::thread::spawn(move || {
        for _ in 0..16 {
            let head = format!(
                "POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                big.len()
            );
            if c.write_all(head.as_bytes())
                .and_then(|_| c.write_all(&big))
                .and_then(|_| c.flush())
                .is_err()
            {
                break;
            }
        }
        c
    });
    w.wait_log("it did not read its response in time (--request-timeout 1.0s)");
    let good = serde_json::to_vec(&recorded("job-pod.json")).unwrap();
    review_within_a_second(&w, &good, "after");
    let mut c = writer.join().unwrap();
    let mut rest = Vec::new();
    let _ = c.read_to_end(&mut rest);
}

#[test]
fn the_largest_review_the_api_server_sends_is_answered() {
    let Some(w) = Webhook::start(&[]) else {
        return;
    };
    // 3 MiB of `<` in an annotation, as Go's encoding/json writes it: \u003c, six bytes each.
    let body = bare_with(|p| {
        p["metadata"]["annotations"]["example.com/big"] = json!("LT".repeat(3 * 1024 * 1024));
    });
    let text = String::from_utf8(body).unwrap().replace("LT", "\\u003c");
    assert!(
        text.len() > 18 * 1024 * 1024 && text.len() <= MAX_BODY,
        "{}",
        text.len()
    );
    let mut c = w.connect();
    let (status, _, answer) = exchange(&mut c, "POST", "/mutate", text.as_bytes());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(answer["response"]["patchType"], "JSONPatch", "{answer}");
}

#[test]
fn startup_errors_are_one_line() {
    let dir = tempfile::tempdir().unwrap();
    if make_pair(dir.path()).is_none() {
        return;
    }
    let other = tempfile::tempdir().unwrap();
    make_pair(other.path()).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_kubectl-supervise"))
            .arg("webhook")
            .args(args)
            .current_dir(dir.path())
            .output()
            .expect("run");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let key_elsewhere = other.path().join("tls.key");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = format!("127.0.0.1:{}", taken.local_addr().unwrap().port());
    let cases: [(Vec<&str>, i32, &str); 5] = [
        (
            vec!["--cert", "nope.crt", "--key", "tls.key"],
            2,
            "--cert nope.crt: ",
        ),
        (
            vec!["--cert", "tls.crt", "--key", "ca.crt"],
            2,
            "--key ca.crt: ",
        ),
        (
            vec![
                "--cert",
                "tls.crt",
                "--key",
                key_elsewhere.to_str().unwrap(),
            ],
            2,
            "do not belong together",
        ),
        (
            vec![
                "--cert",
                "tls.crt",
                "--key",
                "tls.key",
                "--listen",
                "localhost",
            ],
            2,
            "--listen \"localhost\" is not ADDR:PORT",
        ),
        (
            vec!["--cert", "tls.crt", "--key", "tls.key", "--listen", &port],
            1,
            "cannot listen on",
        ),
    ];
    for (args, code, needle) in cases {
        let (got, err) = run(&args);
        assert_eq!(got, Some(code), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}
