//! The webhook's HTTPS server: accept, TLS, HTTP/1.1 by hyper, deadlines, drain.
//!
//! Theory of operation. A current-thread tokio runtime runs the accept loop and one task per
//! connection: everything on the wire is I/O-bound and a single thread serves thousands of
//! connections, while the runtime's features stay the in-pod binary's (no rt-multi-thread,
//! no signal). Each connection is admitted by the [`Registry`] (which may close idle ones to
//! make room), then its task races the connection against a watchdog: the phase's deadline
//! passing closes it, being evicted or the server stopping shuts it down gracefully (hyper
//! finishes a request in progress and closes an idle connection at once). The phase moves
//! with what the connection does: [`Watched`] sees request bytes arrive and the response
//! flushed, the service sees the request in and the answer out, [`Tracked`] sees the last
//! byte of the answer handed over.
//!
//! A review is CPU work: a fraction of a millisecond for a usual pod, reviewed on the runtime
//! thread itself, but tens of milliseconds for a pod of several MiB, which goes to tokio's
//! blocking pool, one at a time (a semaphore of one), so that the runtime thread keeps
//! answering handshakes and `/healthz` meanwhile. More than one at a time would only convoy
//! on the allocator's one lock (measured with the previous thread-per-connection server: one
//! at a time gave the most reviews/s on two cores); more throughput comes from more replicas.
//!
//! A response refused before its body was read (413) closes the connection; the task then
//! closes our side and reads what the client still sends for a moment, because closing a
//! socket with unread data makes the kernel send a reset, which can destroy the response
//! before the client reads it.

use super::conns::{Admission, Bound, Conn, Limits, Phase, Registry, Throttle, Timeouts};
use super::{Config, MAX_BODY, MAX_HEAD, Route, WebhookError, review, tls};
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::header::{CONNECTION, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use nix::sys::signal::{SigSet, Signal};
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// The largest body reviewed on the runtime thread: a pod of a few dozen containers, whose
/// review takes a millisecond or two.
const INLINE_REVIEW: usize = 64 * 1024;

/// How long between two log lines of one kind about misbehaving clients.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// What every connection task shares.
struct Server {
    config: Config,
    timeouts: Timeouts,
    registry: Registry,
    tls: TlsAcceptor,
    /// One review at a time (see the module doc).
    reviews: Semaphore,
    /// True once a stop signal arrived.
    stopping: watch::Receiver<bool>,
    throttles: Mutex<Throttles>,
}

/// One throttle per kind of line a client can cause at will.
struct Throttles {
    evicted: Throttle,
    refused: Throttle,
    deadline: Throttle,
    tls: Throttle,
    malformed: Throttle,
}

pub(super) fn serve(
    config: Config,
    listening: &mut dyn FnMut(SocketAddr),
) -> Result<(), WebhookError> {
    let provider = tls::provider();
    let reloader = Arc::new(tls::Reloader::new(&config.cert, &config.key, provider)?);
    let tls_config = tls::server_config(Arc::clone(&reloader))
        .map_err(|e| WebhookError::Setup(format!("TLS configuration: {e}")))?;
    // Blocked before any thread exists, so every thread inherits the mask and only the
    // sigwait below ever takes these signals.
    let mut stop_signals = SigSet::empty();
    stop_signals.add(Signal::SIGTERM);
    stop_signals.add(Signal::SIGINT);
    stop_signals
        .thread_block()
        .map_err(|e| WebhookError::Setup(format!("cannot block signals: {e}")))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .thread_name("webhook")
        .build()
        .map_err(|e| WebhookError::Setup(format!("cannot start the runtime: {e}")))?;
    let listener = runtime
        .block_on(async { TcpListener::bind(config.listen).await })
        .map_err(|source| WebhookError::Listen {
            addr: config.listen,
            source,
        })?;
    let local = listener
        .local_addr()
        .map_err(|e| WebhookError::Setup(e.to_string()))?;
    let (stop_tx, stop_rx) = watch::channel(false);
    spawn_thread("signals", move || {
        let sig = stop_signals
            .wait()
            .map(|s| s.as_str())
            .unwrap_or("a stop signal");
        tracing::info!("received {sig}: no new connections; finishing the requests in progress");
        let _ = stop_tx.send(true);
    })?;
    let server = Arc::new(Server {
        timeouts: Timeouts {
            request: config.request_timeout,
            idle: super::IDLE_TIMEOUT,
        },
        config,
        registry: Registry::new(limits()),
        tls: TlsAcceptor::from(Arc::new(tls_config)),
        reviews: Semaphore::new(1),
        stopping: stop_rx,
        throttles: Mutex::new(Throttles::new()),
    });
    spawn_reload_thread(Arc::clone(&server), reloader)?;
    listening(local);
    runtime.block_on(async {
        accept_loop(&server, &listener).await;
        drop(listener);
        drain(&server).await;
    });
    Ok(())
}

/// The connection limits, lowered when the process may not open that many descriptors: past
/// that, accept would fail before the registry could make room.
fn limits() -> Limits {
    let mut l = Limits {
        total: super::MAX_CONNECTIONS,
        per_client: super::MAX_PER_CLIENT,
    };
    let files = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| open_files(&t));
    // Descriptors for the listener, the runtime, stdio, the certificate files.
    const RESERVED: usize = 32;
    if let Some(n) = files.filter(|n| *n < l.total + RESERVED) {
        l.total = n.saturating_sub(RESERVED).max(4);
        l.per_client = (l.total / 4).max(1);
        tracing::warn!(
            "only {n} open files allowed (ulimit -n): serving at most {} connections, {} per client",
            l.total,
            l.per_client
        );
    }
    l
}

/// The soft limit on open files, from /proc/self/limits.
fn open_files(limits: &str) -> Option<usize> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?;
    match soft {
        "unlimited" => Some(usize::MAX),
        n => n.parse().ok(),
    }
}

fn spawn_thread(name: &str, f: impl FnOnce() + Send + 'static) -> Result<(), WebhookError> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map(drop)
        .map_err(|e| WebhookError::Setup(format!("cannot start a thread: {e}")))
}

fn spawn_reload_thread(
    server: Arc<Server>,
    reloader: Arc<tls::Reloader>,
) -> Result<(), WebhookError> {
    spawn_thread("cert-reload", move || {
        while !*server.stopping.borrow() {
            std::thread::sleep(super::RELOAD_EVERY);
            match reloader.check() {
                tls::Reload::Unchanged => {}
                tls::Reload::Reloaded => tracing::info!(
                    "certificate reloaded from {}: new connections get it, open ones keep theirs",
                    server.config.cert.display()
                ),
                tls::Reload::Failed(e) => tracing::warn!(
                    "the certificate files changed but do not load ({e}); still serving the previous certificate"
                ),
            }
        }
    })
}

impl Throttles {
    fn new() -> Throttles {
        Throttles {
            evicted: Throttle::new(LOG_EVERY),
            refused: Throttle::new(LOG_EVERY),
            deadline: Throttle::new(LOG_EVERY),
            tls: Throttle::new(LOG_EVERY),
            malformed: Throttle::new(LOG_EVERY),
        }
    }
}

impl Server {
    /// Logs a warning about a client at most once per [`LOG_EVERY`] per kind, saying how many
    /// were held back.
    fn warn_throttled(
        &self,
        pick: fn(&mut Throttles) -> &mut Throttle,
        line: impl FnOnce() -> String,
    ) {
        let held = {
            let mut t = self.throttles.lock().unwrap_or_else(|e| e.into_inner());
            pick(&mut t).pass(Instant::now())
        };
        match held {
            Some(0) => tracing::warn!("{}", line()),
            Some(n) => tracing::warn!("{} ({n} more like it since the last such line)", line()),
            None => {}
        }
    }

    fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }
}

async fn accept_loop(server: &Arc<Server>, listener: &TcpListener) {
    let mut stopping = server.stopping.clone();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stopping.wait_for(|s| *s) => return,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors or memory: nothing to accept with for a moment.
                tracing::warn!("cannot accept a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        admit(server, tcp, peer);
    }
}

fn admit(server: &Arc<Server>, tcp: TcpStream, peer: SocketAddr) {
    let (id, conn, evicted) = match server.registry.admit(peer.ip(), Instant::now()) {
        Admission::Accepted { id, conn, evicted } => (id, conn, evicted),
        Admission::Refused(bound) => {
            server.warn_throttled(|t| &mut t.refused, || refused_line(server, peer, bound));
            return;
        }
    };
    for e in evicted {
        let limits = server.registry.limits();
        server.warn_throttled(
            |t| &mut t.evicted,
            || match e.bound {
                Bound::Client => format!(
                    "{} holds {} connections, its share: closed its oldest idle one (it {}) for a new one",
                    e.client, limits.per_client, e.phase
                ),
                Bound::Total => format!(
                    "{} connections open: closed the oldest idle one (from {}; it {}) for a new one from {}",
                    limits.total, e.client, e.phase, peer.ip()
                ),
            },
        );
    }
    let s = Arc::clone(server);
    tokio::spawn(async move {
        let end = connection(&s, &conn, tcp, peer).await;
        log_end(&s, peer, end);
        s.registry.leave(id);
    });
}

fn refused_line(server: &Server, peer: SocketAddr, bound: Bound) -> String {
    let l = server.registry.limits();
    match bound {
        Bound::Client => format!(
            "refused a connection from {peer}: it holds {} connections, all in a request",
            l.per_client
        ),
        Bound::Total => format!(
            "refused a connection from {peer}: {} connections open, all in a request",
            l.total
        ),
    }
}

/// After the accept loop: idle connections were told to close; waits for the busy ones to
/// finish (each has at most `--request-timeout` left).
async fn drain(server: &Server) {
    let deadline = tokio::time::Instant::now() + server.timeouts.request + Duration::from_secs(1);
    loop {
        let left = server.registry.left.notified();
        if server.registry.is_empty() {
            tracing::info!("stopped");
            return;
        }
        if tokio::time::timeout_at(deadline, left).await.is_err() {
            tracing::warn!(
                "{} connection(s) still busy; stopping anyway",
                server.registry.len()
            );
            return;
        }
    }
}

/// How a connection ended, for the log.
enum End {
    /// The client closed it, or we did after a `Connection: close` answer.
    Closed,
    Handshake(io::Error),
    /// hyper's error: a malformed request (hyper answered it 400 or 431), a broken socket.
    Http(hyper::Error),
    /// The watchdog closed it: it stayed too long in the phase named.
    Deadline(&'static str),
    /// Closed before its first request to make room, or because the server is stopping.
    Dropped,
}

fn log_end(server: &Server, peer: SocketAddr, end: End) {
    match end {
        End::Closed => tracing::debug!("connection from {peer} closed"),
        End::Dropped => tracing::debug!("connection from {peer} closed before its first request"),
        // A client that gets a TLS alert from us, or sends one (a wrong caBundle makes the
        // API server refuse our certificate), is worth telling; one that hangs up is not.
        End::Handshake(e) => match rustls_error(&e) {
            Some(tls) => {
                server.warn_throttled(|t| &mut t.tls, || format!("TLS with {peer} failed: {tls}"))
            }
            None => tracing::debug!("connection from {peer} ended during the handshake: {e}"),
        },
        End::Http(e) if e.is_parse() || e.is_parse_too_large() => server.warn_throttled(
            |t| &mut t.malformed,
            || {
                let status = if e.is_parse_too_large() { 431 } else { 400 };
                format!("answered {status} to {peer}: malformed request: {e}")
            },
        ),
        End::Http(e) => tracing::debug!("connection from {peer} ended: {e}"),
        End::Deadline(phase) => server.warn_throttled(
            |t| &mut t.deadline,
            || {
                format!(
                    "closed the connection from {peer}: it {phase} (--request-timeout {})",
                    supervisor::clock::human(server.timeouts.request)
                )
            },
        ),
    }
}

fn rustls_error(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
}

/// What stopped the watchdog.
enum Watch {
    Deadline(&'static str),
    Evicted,
    Stopping,
}

/// Waits until the connection's phase deadline passes, or (unless `deadlines_only`) it is
/// evicted or the server stops.
async fn watchdog(server: &Server, conn: &Conn, deadlines_only: bool) -> Watch {
    let mut stopping = server.stopping.clone();
    loop {
        // Armed before the phase is read, so a change in between is not missed.
        let changed = conn.changed.notified();
        let phase = conn.phase();
        let deadline = phase.deadline(server.timeouts);
        if deadline.is_some_and(|d| d <= Instant::now()) {
            return Watch::Deadline(phase.name());
        }
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = sleep => {}
            _ = changed => {}
            _ = conn.evicted.notified(), if !deadlines_only => return Watch::Evicted,
            _ = stopping.wait_for(|s| *s), if !deadlines_only => return Watch::Stopping,
        }
    }
}

type ReplyFuture = Pin<Box<dyn Future<Output = Result<Response<Tracked>, Infallible>> + Send>>;

/// One connection, from the handshake to its close.
async fn connection(
    server: &Arc<Server>,
    conn: &Arc<Conn>,
    tcp: TcpStream,
    peer: SocketAddr,
) -> End {
    let _ = tcp.set_nodelay(true);
    if server.is_stopping() {
        return End::Dropped;
    }
    let tls = tokio::select! {
        r = server.tls.accept(tcp) => match r {
            Ok(s) => s,
            Err(e) => return End::Handshake(e),
        },
        w = watchdog(server, conn, false) => return match w {
            Watch::Deadline(phase) => End::Deadline(phase),
            Watch::Evicted | Watch::Stopping => End::Dropped,
        },
    };
    let io = Watched {
        inner: tls,
        conn: Arc::clone(conn),
    };
    let (s, c) = (Arc::clone(server), Arc::clone(conn));
    let handler =
        move |req| -> ReplyFuture { Box::pin(handle(Arc::clone(&s), Arc::clone(&c), peer, req)) };
    let mut http = http1::Builder::new()
        .keep_alive(true)
        .max_header_size(MAX_HEAD)
        .serve_connection(TokioIo::new(io), service_fn(handler));
    let mut shutting = false;
    let result = loop {
        tokio::select! {
            r = std::future::poll_fn(|cx| http.poll_without_shutdown(cx)) => break r,
            w = watchdog(server, conn, shutting) => match w {
                Watch::Deadline(phase) => return End::Deadline(phase),
                // Nothing was ever read from a new connection: nothing is lost by dropping
                // it (hyper's graceful shutdown would wait for its first request).
                Watch::Evicted | Watch::Stopping if matches!(conn.phase(), Phase::New { .. }) => {
                    return End::Dropped;
                }
                Watch::Evicted | Watch::Stopping => {
                    Pin::new(&mut http).graceful_shutdown();
                    shutting = true;
                }
            },
        }
    };
    if let Err(e) = result {
        return End::Http(e);
    }
    let mut io = http.into_parts().io.into_inner();
    close(server, &mut io).await;
    End::Closed
}

/// Closes our side (TLS close_notify, then FIN); after an answer given before the request was
/// read whole, reads and drops what the client still sends for a moment (see the module doc).
async fn close(server: &Server, io: &mut Watched) {
    let timeout = server.timeouts.request;
    let _ = tokio::time::timeout(timeout, io.inner.shutdown()).await;
    if !io.conn.answered_early() {
        return;
    }
    let tcp = io.inner.get_mut().0;
    let mut sink = vec![0u8; 16 * 1024];
    let mut left = 2 * MAX_BODY;
    let drain = async {
        while left > 0 {
            match tcp.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = tokio::time::timeout(timeout, drain).await;
}

/// The service: one request in, one response out.
async fn handle(
    server: Arc<Server>,
    conn: Arc<Conn>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Tracked>, Infallible> {
    // A pipelined request was read with the previous one.
    conn.on_request_bytes(Instant::now());
    let content_type = req.headers().get(CONTENT_TYPE).map(HeaderValue::as_bytes);
    let route = super::route(req.method().as_str(), req.uri().path(), content_type);
    let head = req.method() == hyper::Method::HEAD;
    let (status, kind, body, close) = match route {
        Route::Health => {
            conn.on_request_read();
            (200, "text/plain", b"ok\n".to_vec(), false)
        }
        Route::Refuse(status, text) => {
            // A small body is read and dropped, so the connection can carry the next
            // request; a larger one is left unread and the connection closed.
            let whole = discard(req.into_body(), MAX_HEAD).await;
            if !whole {
                conn.set_answered_early();
            }
            conn.on_request_read();
            (status, "text/plain", text.as_bytes().to_vec(), !whole)
        }
        Route::Review => match read_body(req.into_body()).await {
            Ok(body) => {
                conn.on_request_read();
                let r = run_review(&server, body).await;
                (r.status, r.content_type, r.body, false)
            }
            Err(status) => {
                conn.set_answered_early();
                conn.on_request_read();
                let text = format!("request body over {MAX_BODY} bytes");
                server.warn_throttled(
                    |t| &mut t.malformed,
                    || format!("answered {status} to {peer}: {text}"),
                );
                (status, "text/plain", format!("{text}\n").into_bytes(), true)
            }
        },
    };
    // hyper sends no body to a HEAD: an empty one is taken at once.
    let body = if head { Vec::new() } else { body };
    let keep = !close && !server.is_stopping();
    Ok(reply(&conn, status, kind, body, keep))
}

/// Reads and drops a body of at most `max` bytes; false if it is larger (the rest unread).
async fn discard(body: Incoming, max: usize) -> bool {
    use http_body_util::BodyExt;
    if body.size_hint().lower() > max as u64 {
        return false;
    }
    http_body_util::Limited::new(body, max)
        .collect()
        .await
        .is_ok()
}

fn reply(
    conn: &Arc<Conn>,
    status: u16,
    kind: &'static str,
    body: Vec<u8>,
    keep: bool,
) -> Response<Tracked> {
    let mut r = Response::new(Tracked {
        data: Some(Bytes::from(body)),
        conn: Arc::clone(conn),
    });
    *r.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    if !keep {
        r.headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    conn.on_response(Instant::now());
    r
}

/// The request body, at most [`MAX_BODY`] bytes; Err(413) as soon as it is known to be
/// larger (from its Content-Length, unread, or once that much has arrived).
async fn read_body(body: Incoming) -> Result<Bytes, u16> {
    use http_body_util::BodyExt;
    if body.size_hint().lower() > MAX_BODY as u64 {
        return Err(413);
    }
    let limited = http_body_util::Limited::new(body, MAX_BODY);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(413)
        }
        // The client broke off mid-body: the connection ends with it.
        Err(_) => Err(400),
    }
}

/// Reviews `body` and logs the outcome: a usual pod's on the runtime thread (a fraction of a
/// millisecond; a hop to another thread and back cost more than the review, bench/webhook.sh),
/// a larger one on the blocking pool, one at a time, so that the runtime thread keeps serving
/// meanwhile.
async fn run_review(server: &Server, body: Bytes) -> review::Reply {
    if body.len() <= INLINE_REVIEW {
        let r = review::respond(&body, &server.config.options);
        log_answer(&r.result);
        return r;
    }
    let permit = server.reviews.acquire().await;
    let options = server.config.options.clone();
    let r = tokio::task::spawn_blocking(move || review::respond(&body, &options)).await;
    drop(permit);
    let r = match r {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("a review failed: {e}");
            return review::Reply {
                status: 500,
                content_type: "text/plain",
                body: b"internal error\n".to_vec(),
                result: Err(review::BadReview::NoRequest),
            };
        }
    };
    log_answer(&r.result);
    r
}

fn log_answer(result: &Result<(String, review::Outcome), review::BadReview>) {
    match result {
        Ok((pod, review::Outcome::Wired(n))) => {
            tracing::info!("wired pod {pod} ({n} patch operations)")
        }
        Ok((pod, review::Outcome::Untouched(why))) => {
            tracing::debug!("left pod {pod} alone: {why}")
        }
        Ok((pod, review::Outcome::Refused(why))) => {
            tracing::warn!("allowed pod {pod} without wiring: {why}")
        }
        Err(e) => tracing::warn!("answered 400 to a bad AdmissionReview: {e}"),
    }
}

/// A response body that tells the connection when its last byte was taken.
struct Tracked {
    data: Option<Bytes>,
    conn: Arc<Conn>,
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let frame = self.data.take().map(|d| Ok(Frame::data(d)));
        self.conn.on_response_queued();
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        let end = self.data.as_ref().is_none_or(Bytes::is_empty);
        if end {
            self.conn.on_response_queued();
        }
        end
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.data.as_ref().map_or(0, |d| d.len() as u64))
    }
}

/// The TLS stream, telling the connection when request bytes arrive and when the socket took
/// everything written.
struct Watched {
    inner: TlsStream<TcpStream>,
    conn: Arc<Conn>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.conn.on_request_bytes(Instant::now());
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        if matches!(r, Poll::Ready(Ok(()))) {
            self.conn.on_flushed(Instant::now());
        }
        r
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open_files_limit_is_read() {
        let text = "Limit                     Soft Limit           Hard Limit           Units\n\
                    Max processes             127563               127563               processes\n\
                    Max open files            1024                 524288               files\n";
        assert_eq!(open_files(text), Some(1024));
        assert_eq!(
            open_files("Max open files            unlimited            unlimited            files"),
            Some(usize::MAX)
        );
        assert_eq!(open_files("Max processes 1 1 processes"), None);
    }
}
