//! Attempts against real sockets of this process: listeners that answer, refuse, or accept and
//! stay silent, driven by the poll runner.

use super::*;
use crate::readiness::{DockerEnv, runner};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::sync::mpsc;
use std::time::Instant;

fn run(target: &str, within: Duration) -> Outcome {
    let t: Target = target.parse().unwrap();
    runner::run(vec![(Attempt::probe(&t), Instant::now() + within)])
        .pop()
        .unwrap()
}

const LONG: Duration = Duration::from_secs(20);

/// Reads one request head from `conn`, sends it to the test, then writes `answer` and closes.
fn answer(mut conn: impl Read + Write, answer: &[u8], heads: &mpsc::Sender<String>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap_or(0) == 1 {
        head.push(byte[0]);
    }
    let _ = heads.send(String::from_utf8_lossy(&head).into_owned());
    let _ = conn.write_all(answer);
}

/// An HTTP server on 127.0.0.1 that answers each connection with `reply`; its port and the
/// request heads it received.
fn http_server(reply: &'static [u8]) -> (u16, mpsc::Receiver<String>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            answer(conn, reply, &tx);
        }
    });
    (port, rx)
}

fn unix_http_server(
    dir: &std::path::Path,
    reply: &'static [u8],
) -> (String, mpsc::Receiver<String>) {
    let path = dir.join("d.sock");
    let l = UnixListener::bind(&path).unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            answer(conn, reply, &tx);
        }
    });
    (path.to_str().unwrap().to_string(), rx)
}

#[test]
fn tcp_and_unix_targets_are_ready_when_they_accept() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    assert_eq!(run(&format!("tcp://127.0.0.1:{port}"), LONG), Ok(None));
    // localhost is both loopback addresses, tried in turn, without any lookup.
    assert_eq!(run(&format!("tcp://localhost:{port}"), LONG), Ok(None));
    drop(l);
    let refused = run(&format!("tcp://127.0.0.1:{port}"), LONG).unwrap_err();
    assert!(refused.contains("Connection refused"), "{refused}");
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("s.sock");
    let missing = run(&format!("unix:{}", sock.display()), LONG).unwrap_err();
    assert!(missing.contains("No such file"), "{missing}");
    let _l = UnixListener::bind(&sock).unwrap();
    assert_eq!(run(&format!("unix:{}", sock.display()), LONG), Ok(None));
    // A file where a socket was expected is refused, never opened.
    let file = dir.path().join("file");
    std::fs::write(&file, "").unwrap();
    assert!(run(&format!("unix:{}", file.display()), LONG).is_err());
}

#[test]
fn http_targets_are_ready_when_they_answer_200_to_399() {
    let (port, heads) = http_server(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(
        run(&format!("http://127.0.0.1:{port}/healthz?x=1"), LONG),
        Ok(Some(204))
    );
    let head = heads.recv().unwrap();
    assert!(
        head.starts_with(&format!(
            "GET /healthz?x=1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        )),
        "{head}"
    );
    let (port, _) = http_server(b"HTTP/1.1 503 Service Unavailable\r\n\r\n");
    assert_eq!(
        run(&format!("http://127.0.0.1:{port}/"), LONG),
        Err("HTTP status 503".into())
    );
    // Early hints first, then the answer.
    let (port, _) =
        http_server(b"HTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\nHTTP/1.1 200 OK\r\n\r\n");
    assert_eq!(
        run(&format!("http://localhost:{port}/"), LONG),
        Ok(Some(200))
    );
}

#[test]
fn what_is_not_http_is_not_ready() {
    for (reply, want) in [
        (&b""[..], "connection closed before a status line"),
        (b"SSH-2.0-OpenSSH_9.2\r\n", "not an HTTP/1.x response"),
        (b"HTTP/1.1 200", "connection closed before a status line"),
    ] {
        let (port, _) = http_server(reply);
        let why = run(&format!("http://127.0.0.1:{port}/"), LONG).unwrap_err();
        assert!(why.contains(want), "{reply:?}: {why}");
    }
    // A peer that sends headers forever costs one bounded read.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        if let Ok((mut c, _)) = l.accept() {
            let _ = c.write_all(b"HTTP/1.1 100 Continue\r\n");
            while c
                .write_all(b"X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n")
                .is_ok()
            {}
        }
    });
    let why = run(&format!("http://127.0.0.1:{port}/"), LONG).unwrap_err();
    assert!(
        why.contains("no final status in the first 8192 bytes"),
        "{why}"
    );
}

#[test]
fn a_port_that_accepts_and_stays_silent_is_not_ready() {
    // Listening, never accepting: the kernel completes the handshake, nobody ever answers.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let t0 = Instant::now();
    let why = run(
        &format!("http://127.0.0.1:{port}/"),
        Duration::from_millis(200),
    )
    .unwrap_err();
    assert!(t0.elapsed() >= Duration::from_millis(200), "ended early");
    assert!(why.starts_with("no answer within 200ms "), "{why}");
    assert!(why.ends_with("(connected, no status line yet)"), "{why}");
    drop(l);
}

#[test]
fn http_over_a_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let (sock, heads) = unix_http_server(
        dir.path(),
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK",
    );
    assert_eq!(
        run(&format!("http+unix:{sock}:/_ping"), LONG),
        Ok(Some(200))
    );
    let head = heads.recv().unwrap();
    assert!(
        head.starts_with("GET /_ping HTTP/1.1\r\nHost: localhost\r\n"),
        "{head}"
    );
    // Silent: bound and listening, never accepting.
    let silent = dir.path().join("silent.sock");
    let _l = UnixListener::bind(&silent).unwrap();
    let why = run(
        &format!("http+unix:{}:/_ping", silent.display()),
        Duration::from_millis(100),
    )
    .unwrap_err();
    assert!(why.contains("connected, no status line yet"), "{why}");
}

#[test]
fn docker_waits_for_the_certificates_after_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    let (sock, _) = unix_http_server(dir.path(), b"HTTP/1.1 200 OK\r\n\r\n");
    let certs = dir.path().join("certs");
    let env = DockerEnv::from_env(&|k| match k {
        "DOCKER_TLS_CERTDIR" => Some(certs.clone().into()),
        _ => None,
    });
    let target = Target::parse_with(&format!("docker:unix://{sock}"), &env).unwrap();
    let attempt = || {
        runner::run(vec![(Attempt::probe(&target), Instant::now() + LONG)])
            .pop()
            .unwrap()
    };
    let why = attempt().unwrap_err();
    assert!(
        why.contains(&format!(
            "no client certificate {}/client/ca.pem",
            certs.display()
        )),
        "{why}"
    );
    std::fs::create_dir_all(certs.join("client")).unwrap();
    for name in ["ca.pem", "cert.pem"] {
        std::fs::write(certs.join("client").join(name), "-----BEGIN").unwrap();
    }
    // Empty, then a FIFO (never opened: the attempt cannot block on it), then a real file.
    let key = certs.join("client/key.pem");
    std::fs::write(&key, "").unwrap();
    assert!(attempt().unwrap_err().ends_with("key.pem is empty"));
    std::fs::remove_file(&key).unwrap();
    nix::unistd::mkfifo(&key, nix::sys::stat::Mode::S_IRWXU).unwrap();
    assert!(
        attempt()
            .unwrap_err()
            .ends_with("key.pem is not a regular file")
    );
    std::fs::remove_file(&key).unwrap();
    std::fs::write(&key, "-----BEGIN").unwrap();
    assert_eq!(attempt(), Ok(Some(200)));
}

#[test]
fn quit_posts_count_only_a_2xx() {
    let (port, heads) = http_server(b"HTTP/1.1 200 OK\r\n\r\n");
    let url = crate::http::parse_url(&format!("http://127.0.0.1:{port}/quitquitquit")).unwrap();
    let out = runner::run(vec![(Attempt::post(&url), Instant::now() + LONG)]);
    assert_eq!(out, [Ok(Some(200))]);
    let head = heads.recv().unwrap();
    assert!(
        head.starts_with("POST /quitquitquit HTTP/1.1\r\n"),
        "{head}"
    );
    assert!(head.contains("Content-Length: 0\r\n"), "{head}");
    let (port, _) = http_server(b"HTTP/1.1 302 Found\r\nLocation: http://10.0.0.1/\r\n\r\n");
    let url = crate::http::parse_url(&format!("http://127.0.0.1:{port}/q")).unwrap();
    let out = runner::run(vec![(Attempt::post(&url), Instant::now() + LONG)]);
    assert_eq!(
        out,
        [Err("answered 302 (not a success; not followed)".into())]
    );
}

#[test]
fn files_are_a_check_with_no_descriptor() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("ready");
    let mut a = Attempt::probe(&Target::File(f.clone()));
    assert!(a.step().unwrap().is_err());
    assert!(a.waits_on().is_none());
    std::fs::write(&f, "").unwrap();
    let mut a = Attempt::probe(&Target::File(f));
    assert_eq!(a.step(), Some(Ok(None)));
    // Over is over: stepping again gives the same outcome.
    assert_eq!(a.step(), Some(Ok(None)));
}

#[test]
fn a_waiting_attempt_names_its_descriptor_and_survives_spurious_steps() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let t: Target = format!("http://127.0.0.1:{port}/").parse().unwrap();
    let mut a = Attempt::probe(&t);
    // Connect and send (waiting for writability as told), then wait for the answer that never
    // comes; stepping without readiness changes nothing.
    assert_eq!(a.step(), None);
    for _ in 0..10 {
        let (fd, interest) = a.waits_on().unwrap();
        if interest == Interest::Readable {
            break;
        }
        let mut fds = [nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLOUT)];
        nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(1000u16)).unwrap();
        assert_eq!(a.step(), None);
    }
    for _ in 0..3 {
        assert_eq!(a.step(), None);
    }
    let (_, interest) = a.waits_on().unwrap();
    assert_eq!(interest, Interest::Readable);
    assert_eq!(
        a.timed_out(Duration::from_millis(1500)),
        "no answer within 1500ms (connected, no status line yet)"
    );
}
