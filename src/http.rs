//! A minimal HTTP/1.1 client: one GET or POST, status line only.
//!
//! Readiness probes and quit endpoints need nothing more than "connect, send a request, read the
//! status code". A full client crate would cost more binary size than this whole file, and bring
//! TLS and redirects we do not want: a quit endpoint must not be redirected elsewhere, and a probe
//! must follow Kubernetes' rule (200-399 is ready) without chasing Location headers.
//!
//! Name resolution never needs NSS: `localhost` and IP literals are resolved here; other names go
//! through the resolver (in the static musl build: /etc/hosts, then DNS).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The most of a response we read: the status line must fit in it.
const MAX_RESPONSE_HEAD: usize = 8 * 1024;

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

/// Resolves a host without NSS for `localhost` and IP literals.
pub async fn resolve(host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
    if host.eq_ignore_ascii_case("localhost") {
        return Ok(vec![
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port),
        ]);
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    Ok(tokio::net::lookup_host((host, port)).await?.collect())
}

/// Connects to the first address that accepts.
pub async fn connect(host: &str, port: u16) -> std::io::Result<TcpStream> {
    let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address");
    for addr in resolve(host, port).await? {
        match TcpStream::connect(addr).await {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

/// Sends one request and returns the status code. The whole exchange is bounded by `timeout`.
pub async fn request(method: Method, url: &HttpUrl, timeout: Duration) -> Result<u16, String> {
    match tokio::time::timeout(timeout, exchange(method, url)).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {}ms", timeout.as_millis())),
    }
}

async fn exchange(method: Method, url: &HttpUrl) -> Result<u16, String> {
    let mut stream = connect(&url.host, url.port)
        .await
        .map_err(|e| e.to_string())?;
    let verb = match method {
        Method::Get => "GET",
        Method::Post => "POST",
    };
    let host = if url.host.contains(':') {
        format!("[{}]", url.host)
    } else {
        url.host.clone()
    };
    let req = format!(
        "{verb} {} HTTP/1.1\r\nHost: {host}:{}\r\nUser-Agent: supervisor/{}\r\nAccept: */*\r\nConnection: close\r\n{}\r\n",
        url.path,
        url.port,
        env!("CARGO_PKG_VERSION"),
        if method == Method::Post {
            "Content-Length: 0\r\n"
        } else {
            ""
        }
    );
    stream
        .write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(code) = parse_status_line(&buf)? {
            return Ok(code);
        }
        if buf.len() >= MAX_RESPONSE_HEAD {
            return Err("status line too long".into());
        }
        let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed before a status line".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
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
}
