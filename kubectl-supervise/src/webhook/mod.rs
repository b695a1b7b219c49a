//! `kubectl-supervise webhook`: the mutating admission webhook that wires pods as they are
//! created, with the same `inject` as the command line.
//!
//! Theory of operation. One thread accepts TCP connections and gives each its own thread
//! (std threads: a webhook sees a few kept-alive connections from the API servers, and a
//! blocking thread per connection is simple to bound and to reason about). A connection thread
//! does the TLS handshake ([`tls`]), then reads requests one at a time ([`http`]) and answers:
//! `POST /mutate` with the decision of [`review`] (a pure function: body in, AdmissionReview
//! out; one review runs at a time, see `Server::reviews`), `GET /healthz` with 200, anything else with 404/405, a malformed request with 400 and
//! a body over 3 MiB with 413, closing the connection after those. Every socket read has a
//! deadline: an idle kept-alive connection may wait [`IDLE_TIMEOUT`], but once a request (or
//! the handshake) has begun it must arrive whole within `--request-timeout`, so a slow client
//! costs one thread for that long and no one else waits for it; past [`MAX_CONNECTIONS`] new
//! connections are closed at once. A watcher thread reloads the certificate when its files
//! change ([`tls::Reloader`]). SIGTERM or SIGINT (blocked in every thread, taken by one
//! `sigwait` thread) stops the accepting, lets the requests in progress finish, closes idle
//! connections, and returns; in a pod, `supervisor main --stop-delay` keeps the webhook serving
//! while the API servers stop sending to it.
//!
//! The webhook never blocks a pod: whatever `inject` thinks of a pod, the answer is
//! `allowed: true` (see [`review`]), and the example configuration says `failurePolicy:
//! Ignore`, so an unreachable webhook does not block pods either. Code on the request path
//! returns errors instead of panicking: the release profile aborts on a panic.

pub mod http;
pub mod patch;
pub mod review;
pub mod tls;

use crate::inject::Options;
use nix::sys::signal::{SigSet, Signal};
use rustls::{ServerConnection, StreamOwned};
use std::cell::Cell;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The largest request body: the API server's own limit on an object is 3 MiB.
pub const MAX_BODY: usize = 3 * 1024 * 1024;
pub const MAX_HEAD: usize = 16 * 1024;
/// How long a kept-alive connection may sit idle between requests. Longer than the idle
/// timeout of Go's HTTP client (90 s), so the API server, not us, closes idle connections: a
/// POST sent on a connection we close at the same moment would fail (Go does not retry it).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
pub const MAX_CONNECTIONS: usize = 256;
/// How often the certificate files are looked at.
pub const RELOAD_EVERY: Duration = Duration::from_secs(1);

/// What `kubectl-supervise webhook` was asked to do.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The inject options every pod starts from (its annotations add the rest).
    pub options: Options,
    pub request_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The certificate or key cannot be used (exit 2: nothing was started).
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: io::Error },
    #[error("{0}")]
    Setup(String),
}

/// A connection the server knows about: a handle to close it, and whether a request is in
/// progress on it.
struct Tracked {
    stream: TcpStream,
    busy: bool,
}

struct Server {
    config: Config,
    /// Held while a review runs: one at a time. A review is CPU work that allocates a few
    /// thousand small objects, and the allocator (dlmalloc, see main.rs) has one lock: reviews
    /// on several threads at once only convoy on it. With 10 connections on this 2-CPU machine,
    /// every connection thread reviewing at will gave 720 reviews/s, two at a time 1,530, one at
    /// a time 2,790 (bench/webhook.sh); more throughput comes from more replicas.
    reviews: Mutex<()>,
    tls: Arc<rustls::ServerConfig>,
    stopping: AtomicBool,
    conns: Mutex<HashMap<u64, Tracked>>,
    gone: Condvar,
    next_id: AtomicU64,
}

/// Serves until SIGTERM or SIGINT; `listening` is called with the bound address once
/// connections are accepted.
pub fn serve(config: Config, listening: &mut dyn FnMut(SocketAddr)) -> Result<(), WebhookError> {
    let provider = tls::provider();
    let reloader = Arc::new(tls::Reloader::new(&config.cert, &config.key, provider)?);
    let tls_config = tls::server_config(Arc::clone(&reloader))
        .map_err(|e| WebhookError::Setup(format!("TLS configuration: {e}")))?;
    let listener = TcpListener::bind(config.listen).map_err(|source| WebhookError::Listen {
        addr: config.listen,
        source,
    })?;
    let local = listener
        .local_addr()
        .map_err(|e| WebhookError::Setup(e.to_string()))?;
    // Blocked before any thread exists, so every thread inherits the mask and only the
    // sigwait below ever takes these signals.
    let mut stop_signals = SigSet::empty();
    stop_signals.add(Signal::SIGTERM);
    stop_signals.add(Signal::SIGINT);
    stop_signals
        .thread_block()
        .map_err(|e| WebhookError::Setup(format!("cannot block signals: {e}")))?;
    let server = Arc::new(Server {
        config,
        reviews: Mutex::new(()),
        tls: Arc::new(tls_config),
        stopping: AtomicBool::new(false),
        conns: Mutex::new(HashMap::new()),
        gone: Condvar::new(),
        next_id: AtomicU64::new(0),
    });
    spawn_signal_thread(Arc::clone(&server), stop_signals, wake_address(local))?;
    spawn_reload_thread(Arc::clone(&server), reloader)?;
    listening(local);
    accept_loop(&server, &listener);
    drain(&server);
    Ok(())
}

/// Where the signal thread connects to wake the blocked `accept`.
fn wake_address(local: SocketAddr) -> SocketAddr {
    let mut a = local;
    if a.ip().is_unspecified() {
        a.set_ip(match a {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    a
}

fn spawn_signal_thread(
    server: Arc<Server>,
    signals: SigSet,
    wake: SocketAddr,
) -> Result<(), WebhookError> {
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let sig = signals
                .wait()
                .map(|s| s.as_str())
                .unwrap_or("a stop signal");
            tracing::info!(
                "received {sig}: no new connections; finishing the requests in progress"
            );
            server.stopping.store(true, Ordering::SeqCst);
            let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        })
        .map(drop)
        .map_err(|e| WebhookError::Setup(format!("cannot start a thread: {e}")))
}

fn spawn_reload_thread(
    server: Arc<Server>,
    reloader: Arc<tls::Reloader>,
) -> Result<(), WebhookError> {
    std::thread::Builder::new()
        .name("cert-reload".into())
        .spawn(move || {
            while !server.stopping.load(Ordering::SeqCst) {
                std::thread::sleep(RELOAD_EVERY);
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
        .map(drop)
        .map_err(|e| WebhookError::Setup(format!("cannot start a thread: {e}")))
}

fn accept_loop(server: &Arc<Server>, listener: &TcpListener) {
    let mut last_full_warning: Option<Instant> = None;
    for incoming in listener.incoming() {
        if server.stopping.load(Ordering::SeqCst) {
            return;
        }
        let tcp = match incoming {
            Ok(t) => t,
            Err(e) => {
                tracing::debug!("accept: {e}");
                continue;
            }
        };
        let Some(id) = server.register(&tcp) else {
            if last_full_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                tracing::warn!(
                    "{MAX_CONNECTIONS} connections open: closing new ones until some end"
                );
                last_full_warning = Some(Instant::now());
            }
            continue;
        };
        let s = Arc::clone(server);
        let spawned = std::thread::Builder::new()
            .name(format!("conn-{id}"))
            .spawn(move || {
                let peer = tcp.peer_addr().map(|a| a.to_string()).unwrap_or_default();
                match s.connection(id, tcp) {
                    Ok(()) => {}
                    // A client that gets a TLS alert from us, or sends one (a wrong caBundle
                    // makes the API server refuse our certificate), is worth telling.
                    Err(ReadOrTls::Tls(e)) => tracing::warn!("TLS with {peer} failed: {e}"),
                    Err(e) => tracing::debug!("connection from {peer} ended: {e}"),
                }
                s.unregister(id);
            });
        if let Err(e) = spawned {
            tracing::warn!("cannot start a connection thread: {e}");
            server.unregister(id);
        }
    }
}

/// After the accept loop: closes idle connections and waits for the busy ones to finish
/// (each has at most `--request-timeout` left).
fn drain(server: &Server) {
    let deadline = Instant::now() + server.config.request_timeout + Duration::from_secs(1);
    let Ok(mut conns) = server.conns.lock() else {
        return;
    };
    for t in conns.values().filter(|t| !t.busy) {
        let _ = t.stream.shutdown(std::net::Shutdown::Both);
    }
    while !conns.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            tracing::warn!("{} connection(s) still busy; stopping anyway", conns.len());
            return;
        }
        conns = match server.gone.wait_timeout(conns, left) {
            Ok((c, _)) => c,
            Err(_) => return,
        };
    }
    tracing::info!("stopped");
}

impl Server {
    fn register(&self, tcp: &TcpStream) -> Option<u64> {
        let handle = tcp.try_clone().ok()?;
        let mut conns = self.conns.lock().ok()?;
        if conns.len() >= MAX_CONNECTIONS {
            return None;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        conns.insert(
            id,
            Tracked {
                stream: handle,
                busy: true,
            },
        );
        Some(id)
    }

    fn unregister(&self, id: u64) {
        if let Ok(mut conns) = self.conns.lock() {
            conns.remove(&id);
        }
        self.gone.notify_all();
    }

    /// Marks a connection busy or idle; false when the server is stopping and it is idle
    /// (it must close instead of waiting for another request).
    fn set_busy(&self, id: u64, busy: bool) -> bool {
        let Ok(mut conns) = self.conns.lock() else {
            return false;
        };
        if let Some(t) = conns.get_mut(&id) {
            t.busy = busy;
        }
        busy || !self.stopping.load(Ordering::SeqCst)
    }

    /// One connection, from the handshake to its close.
    fn connection(&self, id: u64, tcp: TcpStream) -> Result<(), ReadOrTls> {
        let timeout = self.config.request_timeout;
        let _ = tcp.set_nodelay(true);
        tcp.set_write_timeout(Some(timeout))?;
        let deadline = Rc::new(Cell::new(Instant::now() + timeout));
        let sock = Deadlined {
            tcp,
            deadline: Rc::clone(&deadline),
        };
        let conn = ServerConnection::new(Arc::clone(&self.tls))?;
        let mut stream = StreamOwned::new(conn, sock);
        while stream.conn.is_handshaking() {
            stream
                .conn
                .complete_io(&mut stream.sock)
                .map_err(tls_error)?;
        }
        let limits = http::Limits {
            max_head: MAX_HEAD,
            max_body: MAX_BODY,
        };
        let mut reader = http::Conn::default();
        loop {
            if !self.set_busy(id, false) {
                return Ok(());
            }
            deadline.set(Instant::now() + IDLE_TIMEOUT);
            let mut started = || {
                deadline.set(Instant::now() + timeout);
                self.set_busy(id, true);
            };
            let request = reader.read_request(&mut stream, limits, &mut started);
            let (status, kind, body, keep) = match request {
                Ok(req) => self.route(&req),
                Err(http::ReadError::Closed) => return Ok(()),
                Err(http::ReadError::Io(e)) => return Err(e.into()),
                Err(e) => {
                    let status = match e {
                        http::ReadError::TooLarge(_) => 413,
                        http::ReadError::HeadTooLarge(_) => 431,
                        _ => 400,
                    };
                    tracing::warn!("answered {status} to {}: {e}", peer(&stream.sock.tcp));
                    (status, "text/plain", format!("{e}\n").into_bytes(), false)
                }
            };
            let keep = keep && !self.stopping.load(Ordering::SeqCst);
            http::write_response(&mut stream, status, kind, &body, keep)?;
            if !keep {
                stream.conn.send_close_notify();
                let _ = stream.flush();
                linger(&mut stream.sock, timeout);
                return Ok(());
            }
        }
    }

    fn review(&self, body: &[u8]) -> Result<review::Answer, review::BadReview> {
        // Poisoned only if a review panicked, which aborts the process (panic = "abort").
        let _one_at_a_time = self.reviews.lock();
        review::review(body, &self.config.options)
    }

    /// The response to a request: (status, content type, body, keep the connection).
    fn route(&self, req: &http::Request) -> (u16, &'static str, Vec<u8>, bool) {
        let path = req.path.split('?').next().unwrap_or_default();
        match (req.method.as_str(), path) {
            ("POST", "/mutate") => match self.review(&req.body) {
                Ok(answer) => {
                    log_answer(&answer);
                    (200, "application/json", answer.body, req.keep_alive)
                }
                Err(e) => {
                    tracing::warn!("answered 400 to a bad AdmissionReview: {e}");
                    (
                        400,
                        "text/plain",
                        format!("{e}\n").into_bytes(),
                        req.keep_alive,
                    )
                }
            },
            ("GET" | "HEAD", "/healthz") => (200, "text/plain", b"ok\n".to_vec(), req.keep_alive),
            (_, "/mutate" | "/healthz") => (
                405,
                "text/plain",
                b"method not allowed\n".to_vec(),
                req.keep_alive,
            ),
            _ => (404, "text/plain", b"not found\n".to_vec(), req.keep_alive),
        }
    }
}

fn log_answer(a: &review::Answer) {
    match &a.outcome {
        review::Outcome::Wired(n) => {
            tracing::info!("wired pod {} ({n} patch operations)", a.pod)
        }
        review::Outcome::Untouched(why) => tracing::debug!("left pod {} alone: {why}", a.pod),
        review::Outcome::Refused(why) => {
            tracing::warn!("allowed pod {} without wiring: {why}", a.pod)
        }
    }
}

/// Closes our side, then reads and drops what the client still sends (the rest of a body we
/// refused) for a moment: closing a socket with unread data makes the kernel send a reset,
/// which can destroy the response before the client reads it.
fn linger(sock: &mut Deadlined, timeout: Duration) {
    let _ = sock.tcp.shutdown(std::net::Shutdown::Write);
    sock.deadline.set(Instant::now() + timeout);
    let mut sink = [0u8; 16 * 1024];
    let mut left = 2 * MAX_BODY;
    while left > 0 {
        match sock.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
}

fn peer(tcp: &TcpStream) -> String {
    tcp.peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "a client".into())
}

/// Why a connection ended early: TLS errors are logged, I/O errors (clients hang up all the
/// time, a deadline passed) only at debug level.
#[derive(Debug, thiserror::Error)]
enum ReadOrTls {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
}

/// rustls reports its own errors (alerts sent or received) wrapped in an io::Error.
fn tls_error(e: io::Error) -> ReadOrTls {
    if !e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) {
        return ReadOrTls::Io(e);
    }
    match e
        .into_inner()
        .map(|inner| inner.downcast::<rustls::Error>())
    {
        Some(Ok(tls)) => ReadOrTls::Tls(*tls),
        _ => ReadOrTls::Io(io::Error::other("a TLS error")),
    }
}

/// A TCP stream whose reads fail once `deadline` has passed, however the bytes trickle in.
struct Deadlined {
    tcp: TcpStream,
    deadline: Rc<Cell<Instant>>,
}

impl Read for Deadlined {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self
            .deadline
            .get()
            .saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"));
        }
        self.tcp.set_read_timeout(Some(left))?;
        self.tcp.read(buf)
    }
}

impl Write for Deadlined {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tcp.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}
