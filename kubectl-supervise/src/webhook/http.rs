//! HTTP/1.1 requests and responses over any byte stream: just what an admission webhook needs.
//!
//! Theory of operation. The API server sends `POST /mutate` with a JSON body, usually on a
//! kept-alive connection; probes send `GET /healthz`. A [`Conn`] reads one request at a time
//! into a buffer that keeps whatever follows it (a pipelined request), parses the head with
//! `httparse`, and reads the body by `Content-Length` or chunked encoding, never holding more
//! than [`Limits`] allow: a body announced or grown past `max_body` is refused as soon as that
//! is known ([`ReadError::TooLarge`], 413), without reading the rest. Timeouts are the
//! stream's business (the server's sockets carry deadlines): a read that times out is an
//! [`ReadError::Io`] like any other failure, and the connection is dropped.

use std::io::{self, Read, Write};

/// How much a request may hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_head: usize,
    pub max_body: usize,
}

/// A request, read whole.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub body: Vec<u8>,
    /// The client keeps the connection open for another request.
    pub keep_alive: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The client closed the connection between requests: nothing to answer.
    #[error("connection closed")]
    Closed,
    #[error("{0}")]
    Io(#[from] io::Error),
    /// Not HTTP/1.x as we read it: 400, then close (the stream cannot be resynchronised).
    #[error("malformed request: {0}")]
    Malformed(String),
    /// 431.
    #[error("request head over {0} bytes")]
    HeadTooLarge(usize),
    /// 413.
    #[error("request body over {0} bytes")]
    TooLarge(usize),
}

/// One connection's read side: the bytes read ahead of the request being parsed.
#[derive(Default)]
pub struct Conn {
    buf: Vec<u8>,
}

const CHUNK: usize = 16 * 1024;

impl Conn {
    /// Whether bytes of a next request are already here (pipelined).
    pub fn has_pending(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Reads one request. `started` is called when its first byte is here (the server then
    /// gives the rest of it a shorter deadline than an idle connection gets).
    pub fn read_request<S: Read + Write>(
        &mut self,
        s: &mut S,
        limits: Limits,
        started: &mut dyn FnMut(),
    ) -> Result<Request, ReadError> {
        if self.buf.is_empty() && self.fill(s)? == 0 {
            return Err(ReadError::Closed);
        }
        started();
        let (head_len, req) = loop {
            if let Some(parsed) = parse_head(&self.buf)? {
                break parsed;
            }
            if self.buf.len() > limits.max_head {
                return Err(ReadError::HeadTooLarge(limits.max_head));
            }
            if self.fill(s)? == 0 {
                return Err(ReadError::Malformed(
                    "the connection closed mid-head".into(),
                ));
            }
        };
        self.buf.drain(..head_len);
        if req.expect_continue {
            s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        let body = match req.framing {
            Framing::Length(n) if n > limits.max_body => {
                return Err(ReadError::TooLarge(limits.max_body));
            }
            Framing::Length(n) => self.take_exact(s, n)?,
            Framing::Chunked => self.take_chunked(s, limits.max_body)?,
        };
        Ok(Request {
            method: req.method,
            path: req.path,
            body,
            keep_alive: req.keep_alive,
        })
    }

    fn fill<S: Read>(&mut self, s: &mut S) -> io::Result<usize> {
        let mut chunk = [0u8; CHUNK];
        loop {
            match s.read(&mut chunk) {
                Ok(n) => {
                    self.buf
                        .extend_from_slice(chunk.get(..n).unwrap_or_default());
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn take_exact<S: Read>(&mut self, s: &mut S, n: usize) -> Result<Vec<u8>, ReadError> {
        while self.buf.len() < n {
            if self.fill(s)? == 0 {
                return Err(ReadError::Malformed(
                    "the connection closed mid-body".into(),
                ));
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    fn take_chunked<S: Read>(&mut self, s: &mut S, max: usize) -> Result<Vec<u8>, ReadError> {
        loop {
            match dechunk(&self.buf, max)? {
                Some((body, used)) => {
                    self.buf.drain(..used);
                    return Ok(body);
                }
                None => {
                    if self.fill(s)? == 0 {
                        return Err(ReadError::Malformed(
                            "the connection closed mid-body".into(),
                        ));
                    }
                }
            }
        }
    }
}

enum Framing {
    Length(usize),
    Chunked,
}

struct Head {
    method: String,
    path: String,
    framing: Framing,
    keep_alive: bool,
    expect_continue: bool,
}

/// The head, when all of it is in `buf`: its length and what it says.
fn parse_head(buf: &[u8]) -> Result<Option<(usize, Head)>, ReadError> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(ReadError::Malformed(e.to_string())),
    };
    let http11 = req.version == Some(1);
    let mut keep_alive = http11;
    let mut length = None;
    let mut chunked = false;
    let mut expect_continue = false;
    for h in req.headers.iter() {
        let value = std::str::from_utf8(h.value).unwrap_or("").trim();
        let has = |word: &str| {
            value
                .split(',')
                .any(|v| v.trim().eq_ignore_ascii_case(word))
        };
        match h.name.to_ascii_lowercase().as_str() {
            "content-length" => {
                let n: usize = value
                    .parse()
                    .map_err(|_| ReadError::Malformed(format!("Content-Length {value:?}")))?;
                if length.is_some_and(|m| m != n) {
                    return Err(ReadError::Malformed("two different Content-Lengths".into()));
                }
                length = Some(n);
            }
            "transfer-encoding" => chunked = has("chunked"),
            "connection" if has("close") => keep_alive = false,
            "connection" if has("keep-alive") => keep_alive = true,
            "expect" => expect_continue = has("100-continue"),
            _ => {}
        }
    }
    // Both framings at once is how requests are smuggled past proxies: refuse it.
    let framing = match (chunked, length) {
        (true, Some(_)) => {
            return Err(ReadError::Malformed(
                "both Content-Length and chunked Transfer-Encoding".into(),
            ));
        }
        (true, None) => Framing::Chunked,
        (false, n) => Framing::Length(n.unwrap_or(0)),
    };
    Ok(Some((
        len,
        Head {
            method: req.method.unwrap_or_default().to_string(),
            path: req.path.unwrap_or_default().to_string(),
            framing,
            keep_alive,
            expect_continue,
        },
    )))
}

/// A whole chunked body at the start of `buf`, when it is all there: (body, bytes used).
fn dechunk(buf: &[u8], max: usize) -> Result<Option<(Vec<u8>, usize)>, ReadError> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let Some(line_end) = find_crlf(buf, at) else {
            return Ok(None);
        };
        let line = std::str::from_utf8(buf.get(at..line_end).unwrap_or_default())
            .map_err(|_| ReadError::Malformed("a chunk size is not text".into()))?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| ReadError::Malformed(format!("chunk size {size_text:?}")))?;
        at = line_end + 2;
        if size == 0 {
            // Trailers, up to the empty line.
            loop {
                let Some(end) = find_crlf(buf, at) else {
                    return Ok(None);
                };
                let empty = end == at;
                at = end + 2;
                if empty {
                    return Ok(Some((body, at)));
                }
            }
        }
        if body.len().saturating_add(size) > max {
            return Err(ReadError::TooLarge(max));
        }
        let Some(data) = buf.get(at..at + size) else {
            return Ok(None);
        };
        body.extend_from_slice(data);
        at += size;
        match buf.get(at..at + 2) {
            None | Some([b'\r']) => return Ok(None),
            Some(b"\r\n") => at += 2,
            Some(_) => return Err(ReadError::Malformed("a chunk does not end in CRLF".into())),
        }
    }
}

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|i| i + from)
}

/// The reason phrase of the statuses the webhook sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// Writes a whole response in one buffer (one TLS record when it fits).
pub fn write_response<W: Write>(
    w: &mut W,
    status: u16,
    content_type: &str,
    body: &[u8],
    keep_alive: bool,
) -> io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n{}\r\n",
        reason(status),
        body.len(),
        if keep_alive {
            ""
        } else {
            "connection: close\r\n"
        }
    )
    .into_bytes();
    out.extend_from_slice(body);
    w.write_all(&out)?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream that serves `input` in pieces of `step` bytes and records what is written.
    struct Pieces {
        input: Vec<u8>,
        at: usize,
        step: usize,
        written: Vec<u8>,
    }

    impl Read for Pieces {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(out.len()).min(self.input.len() - self.at);
            out[..n].copy_from_slice(&self.input[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    impl Write for Pieces {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.written.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn stream(input: &[u8], step: usize) -> Pieces {
        Pieces {
            input: input.to_vec(),
            at: 0,
            step,
            written: Vec::new(),
        }
    }

    const LIMITS: Limits = Limits {
        max_head: 1024,
        max_body: 64,
    };

    fn read_all(input: &[u8], step: usize) -> Vec<Result<Request, ReadError>> {
        let mut s = stream(input, step);
        let mut conn = Conn::default();
        let mut out = Vec::new();
        loop {
            let r = conn.read_request(&mut s, LIMITS, &mut || {});
            let stop = r.is_err();
            out.push(r);
            if stop {
                return out;
            }
        }
    }

    #[test]
    fn pipelined_requests_in_any_pieces() {
        let input = b"POST /mutate HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /healthz HTTP/1.1\r\nConnection: close\r\n\r\nPOST /m HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: v\r\n\r\n";
        for step in [1, 2, 7, 1000] {
            let rs = read_all(input, step);
            assert_eq!(rs.len(), 4, "step {step}");
            let ok: Vec<&Request> = rs.iter().filter_map(|r| r.as_ref().ok()).collect();
            assert_eq!(
                (
                    ok[0].method.as_str(),
                    ok[0].path.as_str(),
                    ok[0].body.as_slice(),
                    ok[0].keep_alive
                ),
                ("POST", "/mutate", &b"hello"[..], true)
            );
            assert_eq!((ok[1].path.as_str(), ok[1].keep_alive), ("/healthz", false));
            assert_eq!(ok[2].body, b"abcde");
            assert!(matches!(rs[3], Err(ReadError::Closed)));
        }
    }

    #[test]
    fn limits_and_malformed_requests() {
        let big = b"POST /mutate HTTP/1.1\r\nContent-Length: 65\r\n\r\n";
        assert!(matches!(
            read_all(big, 100)[0],
            Err(ReadError::TooLarge(64))
        ));
        let chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n";
        let mut s = chunked.to_vec();
        s.extend_from_slice(&[b'x'; 64]);
        s.extend_from_slice(b"\r\n1\r\nx\r\n0\r\n\r\n");
        assert!(matches!(read_all(&s, 100)[0], Err(ReadError::TooLarge(64))));
        let head = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(2000));
        assert!(matches!(
            read_all(head.as_bytes(), 100)[0],
            Err(ReadError::HeadTooLarge(_))
        ));
        for bad in [
            &b"\x16\x03\x01\x02\x00garbage\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\nshort",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ] {
            assert!(
                matches!(read_all(bad, 3)[0], Err(ReadError::Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(matches!(read_all(b"", 1)[0], Err(ReadError::Closed)));
    }

    #[test]
    fn expect_continue_is_answered_and_responses_are_framed() {
        let mut s = stream(
            b"POST /mutate HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
            5,
        );
        let r = Conn::default()
            .read_request(&mut s, LIMITS, &mut || {})
            .expect("request");
        assert_eq!(r.body, b"hi");
        assert_eq!(s.written, b"HTTP/1.1 100 Continue\r\n\r\n");
        let mut out = Vec::new();
        write_response(&mut out, 413, "text/plain", b"too big\n", false).expect("write");
        assert_eq!(
            String::from_utf8_lossy(&out),
            "HTTP/1.1 413 Content Too Large\r\ncontent-type: text/plain\r\ncontent-length: 8\r\nconnection: close\r\n\r\ntoo big\n"
        );
    }
}
