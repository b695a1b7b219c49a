//! HTTP/1.1 without I/O: the URLs of probes and quit endpoints, the bytes of one GET or POST, and
//! the status code read from the response's head.
//!
//! Theory of operation: readiness probes and quit endpoints need nothing more than "connect, send
//! a request, read the status code". The connection and its bytes belong to whoever drives the
//! exchange (`readiness::attempt`, non-blocking, from any readiness loop); this module only says
//! what to send ([`request`]) and what the answer means ([`parse_head`], [`Method::accepts`]),
//! pure functions that the fuzzers and unit tests call directly. A full client crate would cost
//! more binary size than this whole file, and bring TLS and redirects we do not want: a quit
//! endpoint must not be redirected elsewhere, and a probe follows Kubernetes' rule (200-399 is
//! ready) without chasing Location headers.

use std::net::{IpAddr, Ipv6Addr};

/// The most of a response we read: the final status line must arrive within it.
pub const MAX_RESPONSE_HEAD: usize = 8 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
    raw: String,
}

impl std::fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.raw)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid URL {url:?}: {why}")]
pub struct UrlError {
    url: String,
    why: &'static str,
}

/// Parses `http://HOST[:PORT][/PATH][?QUERY]`. HOST is a name, an IPv4 literal or `[IPv6]`.
pub fn parse_url(s: &str) -> Result<HttpUrl, UrlError> {
    let err = |why| UrlError {
        url: s.to_string(),
        why,
    };
    let rest = if let Some(r) = s.strip_prefix("http://") {
        r
    } else if s.starts_with("https://") {
        return Err(err(
            "https is not supported (probes and quit endpoints are plain HTTP inside the pod)",
        ));
    } else {
        return Err(err("expected http://HOST:PORT/PATH"));
    };
    if s.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err(err("contains spaces or control characters"));
    }
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let path = path.split('#').next().unwrap_or("/");
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    if authority.contains('@') {
        return Err(err("user info is not supported"));
    }
    let (host, port) = split_host_port(authority).ok_or_else(|| err("bad host or port"))?;
    let port = port.unwrap_or(80);
    if host.is_empty() {
        return Err(err("missing host"));
    }
    Ok(HttpUrl {
        host,
        port,
        path,
        raw: s.to_string(),
    })
}

/// Splits `host`, `host:port`, `[v6]` or `[v6]:port`. The port, when present, must be 1-65535.
pub fn split_host_port(authority: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = &rest[..end];
        host.parse::<Ipv6Addr>().ok()?;
        match &rest[end + 1..] {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':')?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.contains(':') && !authority.starts_with('[') {
        return None;
    }
    if !host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b))
    {
        return None;
    }
    let port = match port {
        None => None,
        Some(p) => {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            match p.parse::<u16>() {
                Ok(0) | Err(_) => return None,
                Ok(n) => Some(n),
            }
        }
    };
    Some((host.to_ascii_lowercase(), port))
}

/// Loopback by its literal form only: `localhost`, 127.0.0.0/8, ::1. A name is never resolved to
/// decide this, so DNS cannot turn a remote host into an allowed one.
pub fn is_loopback(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") || host.to_ascii_lowercase().ends_with(".localhost") {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => false,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

impl Method {
    /// Whether a final status code counts: Kubernetes' httpGet rule (200-399) for a probe; only a
    /// 2xx for a quit call, whose redirect is never followed.
    pub fn accepts(self, code: u16) -> bool {
        match self {
            Method::Get => (200..400).contains(&code),
            Method::Post => (200..300).contains(&code),
        }
    }
}

/// The bytes of one request. `host` is what the `Host` header names (an IPv6 literal gets its
/// brackets back), with `:port` when there is one (none over a unix socket). The connection is
/// closed after the answer, and a POST says it has no body.
pub fn request(method: Method, host: &str, port: Option<u16>, path: &str) -> Vec<u8> {
    let verb = match method {
        Method::Get => "GET",
        Method::Post => "POST",
    };
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    let port = port.map(|p| format!(":{p}")).unwrap_or_default();
    let body = match method {
        Method::Post => "Content-Length: 0\r\n",
        Method::Get => "",
    };
    format!(
        "{verb} {path} HTTP/1.1\r\nHost: {host}{port}\r\nUser-Agent: supervisor/{}\r\n\
         Accept: */*\r\nConnection: close\r\n{body}\r\n",
        env!("CARGO_PKG_VERSION"),
    )
    .into_bytes()
}

/// The final status code of a response whose first bytes are `buf`: `Ok(None)` while more bytes
/// are needed. Interim responses (`100 Continue`, `103 Early Hints`) are skipped: their head ends
/// with an empty line and the final response follows. Bounded: a head that has not given a final
/// status within [`MAX_RESPONSE_HEAD`] bytes is an error, so a peer that sends headers forever
/// costs 8 KiB and one attempt.
pub fn parse_head(buf: &[u8]) -> Result<Option<u16>, String> {
    let incomplete = || {
        if buf.len() >= MAX_RESPONSE_HEAD {
            Err(format!(
                "no final status in the first {MAX_RESPONSE_HEAD} bytes"
            ))
        } else {
            Ok(None)
        }
    };
    let mut rest = buf;
    loop {
        let Some(code) = parse_status_line(rest)? else {
            return incomplete();
        };
        if !(100..200).contains(&code) || code == 101 {
            return Ok(Some(code));
        }
        match end_of_head(rest) {
            Some(n) => rest = &rest[n..],
            None => return incomplete(),
        }
    }
}

/// Where the head that starts `buf` ends: after its first empty line (`\n\n` or `\n\r\n`).
fn end_of_head(buf: &[u8]) -> Option<usize> {
    buf.iter().enumerate().find_map(|(i, &b)| {
        if b != b'\n' {
            return None;
        }
        match buf.get(i + 1..) {
            Some([b'\n', ..]) => Some(i + 2),
            Some([b'\r', b'\n', ..]) => Some(i + 3),
            _ => None,
        }
    })
}

/// `Ok(None)` until a whole line is there; then the code of `HTTP/1.x NNN ...`.
pub fn parse_status_line(buf: &[u8]) -> Result<Option<u16>, String> {
    let Some(end) = buf.iter().position(|&b| b == b'\n') else {
        return Ok(None);
    };
    let line = String::from_utf8_lossy(&buf[..end]);
    let line = line.trim_end_matches('\r');
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    let code = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") || code.len() != 3 {
        return Err(format!(
            "not an HTTP/1.x response: {:?}",
            truncate(line, 80)
        ));
    }
    match code.parse::<u16>() {
        Ok(c) if (100..=599).contains(&c) => Ok(Some(c)),
        _ => Err(format!("bad status code {:?}", truncate(code, 16))),
    }
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = parse_url("http://127.0.0.1:15020/quitquitquit").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("127.0.0.1", 15020, "/quitquitquit")
        );
        let u = parse_url("http://localhost").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("localhost", 80, "/")
        );
        let u = parse_url("http://[::1]:8080/a?b=c#frag").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("::1", 8080, "/a?b=c")
        );
        let u = parse_url("http://Svc.NS:9?x").unwrap();
        assert_eq!((u.host.as_str(), u.path.as_str()), ("svc.ns", "/?x"));
        for bad in [
            "",
            "http://",
            "http://:80/",
            "https://localhost/",
            "ftp://x/",
            "http://a:0/",
            "http://a:65536/",
            "http://a:/",
            "http://a:b/",
            "http://u:p@host/",
            "http://[::1/",
            "http://[zz]:1/",
            "http://::1:80/",
            "http://a b/",
            "http://a/\n",
            "http://a%2f/",
        ] {
            assert!(parse_url(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn loopback() {
        for h in [
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "foo.localhost",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in [
            "10.0.0.1",
            "example.com",
            "localhost.example.com",
            "0.0.0.0",
            "::",
            "169.254.1.1",
        ] {
            assert!(!is_loopback(h), "{h}");
        }
    }

    #[test]
    fn status_lines() {
        assert_eq!(parse_status_line(b"HTTP/1.1 200 OK\r\n"), Ok(Some(200)));
        assert_eq!(parse_status_line(b"HTTP/1.0 503\r\n"), Ok(Some(503)));
        assert_eq!(parse_status_line(b"HTTP/1.1 20"), Ok(None));
        assert!(parse_status_line(b"SSH-2.0-OpenSSH\r\n").is_err());
        assert!(parse_status_line(b"HTTP/1.1 999 x\r\n").is_err());
        assert!(parse_status_line(b"HTTP/1.1 abc x\r\n").is_err());
    }

    #[test]
    fn request_bytes() {
        let get = String::from_utf8(request(Method::Get, "::1", Some(8080), "/a?b")).unwrap();
        assert!(
            get.starts_with("GET /a?b HTTP/1.1\r\nHost: [::1]:8080\r\n"),
            "{get}"
        );
        assert!(get.ends_with("Connection: close\r\n\r\n"), "{get}");
        assert!(!get.contains("Content-Length"), "{get}");
        let post = String::from_utf8(request(Method::Post, "localhost", None, "/quit")).unwrap();
        assert!(
            post.starts_with("POST /quit HTTP/1.1\r\nHost: localhost\r\n"),
            "{post}"
        );
        assert!(post.ends_with("Content-Length: 0\r\n\r\n"), "{post}");
        // One empty line, at the end: the head is complete and nothing follows it.
        assert_eq!(post.matches("\r\n\r\n").count(), 1);
    }

    #[test]
    fn heads() {
        assert_eq!(parse_head(b""), Ok(None));
        assert_eq!(parse_head(b"HTTP/1.1 204 No Content\r\n"), Ok(Some(204)));
        // Interim responses are skipped, whole; the final one counts.
        let early = b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 503 Busy\r\n";
        assert_eq!(parse_head(early), Ok(Some(503)));
        assert_eq!(parse_head(b"HTTP/1.1 100 Continue\r\n\r\n"), Ok(None));
        assert_eq!(
            parse_head(b"HTTP/1.1 100 Continue\n\nHTTP/1.0 200 OK\n"),
            Ok(Some(200))
        );
        assert_eq!(parse_head(b"HTTP/1.1 100 Continue\r\nX: y\r\n"), Ok(None));
        // 101 is final (and not ready: nothing here asked to switch protocols).
        assert_eq!(parse_head(b"HTTP/1.1 101 Switching\r\n"), Ok(Some(101)));
        assert!(parse_head(b"HTTP/1.1 100 Continue\r\n\r\nSSH-2.0\r\n").is_err());
        // A peer that never ends its interim heads, or its status line, costs 8 KiB at most.
        let mut endless = b"HTTP/1.1 100 Continue\r\n".to_vec();
        while endless.len() < MAX_RESPONSE_HEAD {
            endless.extend_from_slice(b"X-Pad: aaaaaaaaaaaaaaaa\r\n");
        }
        assert!(parse_head(&endless).unwrap_err().contains("8192"));
        assert_eq!(parse_head(&endless[..MAX_RESPONSE_HEAD - 1]), Ok(None));
        let long_line = [b"HTTP/1.1 200 ".as_slice(), &[b'a'; MAX_RESPONSE_HEAD]].concat();
        assert!(parse_head(&long_line[..MAX_RESPONSE_HEAD]).is_err());
    }

    #[test]
    fn what_counts() {
        for (code, get, post) in [
            (101, false, false),
            (200, true, true),
            (204, true, true),
            (302, true, false),
            (399, true, false),
            (404, false, false),
            (503, false, false),
        ] {
            assert_eq!(Method::Get.accepts(code), get, "{code}");
            assert_eq!(Method::Post.accepts(code), post, "{code}");
        }
    }
}
