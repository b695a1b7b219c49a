//! Who may hold a connection, and for how long: the webhook's defence against one client
//! switching it off by opening connections and sending nothing.
//!
//! Theory of operation. Every connection has a [`Phase`], moved forward by what it does (its
//! first request byte read, its body in, its response handed to the socket) and read by two
//! parties: the connection's own watchdog, which closes it at the phase's deadline, and
//! [`Registry::admit`], which decides what happens to each new connection. The deadlines:
//! a new connection must finish its TLS handshake and send the first byte of a request within
//! `request` (the `--request-timeout`), and so must every request once its first byte is in;
//! a response must be taken by the client within `request` too; only a connection that has been
//! answered may then sit idle, for [`Timeouts::idle`]. A review in progress has no deadline:
//! it is our own work.
//!
//! Admission never refuses a connection to make a new one wait for an old one that does
//! nothing. A connection that is not in the middle of a request (new, or kept alive between
//! requests) is *idle*, and idle connections make room: when a client already holds its share
//! ([`Limits::per_client`]) its own oldest idle connection is closed, and when the server holds
//! [`Limits::total`] the oldest idle connection of anyone is closed, the ones that never
//! completed a request first. A new connection is refused only when the client (or the server)
//! is at its bound with every connection busy in a request, each of which ends within
//! `request`. So a client holds at most its share; the others keep the rest; a client that
//! opens connections as fast as it can mostly closes its own.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How many connections may be open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub total: usize,
    /// How many one client (one IP address) may hold: its connections beyond this close its own
    /// oldest idle ones.
    pub per_client: usize,
}

/// How long each phase may last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// The TLS handshake and a request's first byte on a new connection; a request once begun;
    /// a response being taken.
    pub request: Duration,
    /// A kept-alive connection between requests.
    pub idle: Duration,
}

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Accepted at `since`: the handshake and the first byte of a request are due.
    New { since: Instant },
    /// A request's first byte arrived at `since`; the rest is due.
    Reading { since: Instant },
    /// The request is in; the answer is being worked out.
    Working,
    /// The response was ready at `since`; `queued` once its last byte is with the TLS layer
    /// (the next successful flush then means the client has it all).
    Writing { since: Instant, queued: bool },
    /// Answered at `since`, kept alive for another request.
    Idle { since: Instant },
}

impl Phase {
    /// When the connection is closed if it stays in this phase.
    pub fn deadline(&self, t: Timeouts) -> Option<Instant> {
        match *self {
            Phase::New { since } | Phase::Reading { since } | Phase::Writing { since, .. } => {
                Some(since + t.request)
            }
            Phase::Idle { since } => Some(since + t.idle),
            Phase::Working => None,
        }
    }

    /// Which idle connection goes first to make room: lower ranks first. Connections that
    /// never completed a request go before kept-alive ones (the API server's), the oldest
    /// first. None: busy, never closed to make room.
    fn eviction_rank(&self) -> Option<(u8, Instant)> {
        match *self {
            Phase::New { since } => Some((0, since)),
            Phase::Idle { since } => Some((1, since)),
            Phase::Reading { .. } | Phase::Working | Phase::Writing { .. } => None,
        }
    }

    /// What the phase is called in a log line.
    pub fn name(&self) -> &'static str {
        match self {
            Phase::New { .. } => "sent no request",
            Phase::Reading { .. } => "did not send its request in time",
            Phase::Working => "was being answered",
            Phase::Writing { .. } => "did not read its response in time",
            Phase::Idle { .. } => "was idle",
        }
    }
}

/// One connection's state, shared by its task, its socket wrapper and the registry.
#[derive(Debug)]
pub struct Conn {
    pub client: IpAddr,
    phase: Mutex<Phase>,
    /// Woken when the phase changes (the watchdog re-reads the deadline).
    pub changed: Notify,
    /// Woken when the registry closed the connection to make room.
    pub evicted: Notify,
    /// An answer went out before its request was read whole (the rest is unread).
    early: AtomicBool,
}

impl Conn {
    pub fn new(client: IpAddr, now: Instant) -> Conn {
        Conn {
            client,
            phase: Mutex::new(Phase::New { since: now }),
            changed: Notify::new(),
            evicted: Notify::new(),
            early: AtomicBool::new(false),
        }
    }

    pub fn set_answered_early(&self) {
        self.early.store(true, Ordering::Relaxed);
    }

    pub fn answered_early(&self) -> bool {
        self.early.load(Ordering::Relaxed)
    }

    pub fn phase(&self) -> Phase {
        *lock(&self.phase)
    }

    /// Moves to the phase `f` gives (None: stays).
    pub fn update(&self, f: impl FnOnce(Phase) -> Option<Phase>) {
        let mut p = lock(&self.phase);
        if let Some(next) = f(*p) {
            if next != *p {
                *p = next;
                self.changed.notify_one();
            }
        }
    }

    /// Request bytes arrived: a new or idle connection starts a request.
    pub fn on_request_bytes(&self, now: Instant) {
        self.update(|p| match p {
            Phase::New { .. } | Phase::Idle { .. } => Some(Phase::Reading { since: now }),
            _ => None,
        });
    }

    pub fn on_request_read(&self) {
        self.update(|_| Some(Phase::Working));
    }

    pub fn on_response(&self, now: Instant) {
        self.update(|_| {
            Some(Phase::Writing {
                since: now,
                queued: false,
            })
        });
    }

    /// The response's last byte was handed to the TLS layer.
    pub fn on_response_queued(&self) {
        self.update(|p| match p {
            Phase::Writing { since, .. } => Some(Phase::Writing {
                since,
                queued: true,
            }),
            _ => None,
        });
    }

    /// The socket took everything written so far.
    pub fn on_flushed(&self, now: Instant) {
        self.update(|p| match p {
            Phase::Writing { queued: true, .. } => Some(Phase::Idle { since: now }),
            _ => None,
        });
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic aborts the process (panic = "abort"): a poisoned lock cannot be seen, and its
    // data would be fine anyway (every update is one assignment).
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What [`Registry::admit`] decided for a new connection.
#[derive(Debug)]
pub enum Admission {
    /// Serve it; `evicted` idle connections were closed to make room, for the log.
    Accepted {
        id: u64,
        conn: Arc<Conn>,
        evicted: Vec<Eviction>,
    },
    /// Refused: every connection that counts against it is busy.
    Refused(Bound),
}

/// Which bound was in the way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Client,
    Total,
}

/// An idle connection closed to make room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eviction {
    pub client: IpAddr,
    pub bound: Bound,
    pub phase: &'static str,
}

#[derive(Default)]
struct Table {
    conns: HashMap<u64, Arc<Conn>>,
    per_client: HashMap<IpAddr, usize>,
    next_id: u64,
}

/// The open connections.
pub struct Registry {
    limits: Limits,
    table: Mutex<Table>,
    /// Woken when a connection leaves (the drain waits for the last one).
    pub left: Notify,
}

impl Registry {
    pub fn new(limits: Limits) -> Registry {
        Registry {
            limits,
            table: Mutex::new(Table::default()),
            left: Notify::new(),
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Decides a new connection from `client`, closing idle ones to make room.
    pub fn admit(&self, client: IpAddr, now: Instant) -> Admission {
        let mut t = lock(&self.table);
        let mut evicted = Vec::new();
        let theirs = t.per_client.get(&client).copied().unwrap_or(0);
        if theirs >= self.limits.per_client {
            match t.evict(Some(client)) {
                Some(e) => evicted.push(e.with_bound(Bound::Client)),
                None => return Admission::Refused(Bound::Client),
            }
        }
        if t.conns.len() >= self.limits.total {
            match t.evict(None) {
                Some(e) => evicted.push(e.with_bound(Bound::Total)),
                None => return Admission::Refused(Bound::Total),
            }
        }
        let id = t.next_id;
        t.next_id += 1;
        let conn = Arc::new(Conn::new(client, now));
        t.conns.insert(id, Arc::clone(&conn));
        *t.per_client.entry(client).or_default() += 1;
        Admission::Accepted { id, conn, evicted }
    }

    /// A connection ended (or was refused after admission).
    pub fn leave(&self, id: u64) {
        let mut t = lock(&self.table);
        t.forget(id);
        drop(t);
        self.left.notify_waiters();
    }

    pub fn len(&self) -> usize {
        lock(&self.table).conns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every open connection, for the drain.
    pub fn all(&self) -> Vec<Arc<Conn>> {
        lock(&self.table).conns.values().cloned().collect()
    }
}

impl Table {
    /// Closes the idle connection that goes first (of `client`, or of anyone).
    fn evict(&mut self, client: Option<IpAddr>) -> Option<Eviction> {
        let (id, conn) = self
            .conns
            .iter()
            .filter(|(_, c)| client.is_none_or(|ip| c.client == ip))
            .filter_map(|(id, c)| c.phase().eviction_rank().map(|r| (r, *id, c)))
            .min_by_key(|(r, id, _)| (*r, *id))
            .map(|(_, id, c)| (id, Arc::clone(c)))?;
        self.forget(id);
        conn.evicted.notify_one();
        Some(Eviction {
            client: conn.client,
            bound: Bound::Total,
            phase: conn.phase().name(),
        })
    }

    fn forget(&mut self, id: u64) {
        let Some(c) = self.conns.remove(&id) else {
            return;
        };
        if let Some(n) = self.per_client.get_mut(&c.client) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_client.remove(&c.client);
            }
        }
    }
}

impl Eviction {
    fn with_bound(mut self, bound: Bound) -> Eviction {
        self.bound = bound;
        self
    }
}

/// Lets a kind of log line through once per `every`, counting the ones held back, so that a
/// client opening thousands of connections cannot flood the log.
#[derive(Debug)]
pub struct Throttle {
    every: Duration,
    last: Option<Instant>,
    held: u64,
}

impl Throttle {
    pub fn new(every: Duration) -> Throttle {
        Throttle {
            every,
            last: None,
            held: 0,
        }
    }

    /// Some(number of lines held back since the last one) when this one may be logged.
    pub fn pass(&mut self, now: Instant) -> Option<u64> {
        if self
            .last
            .is_some_and(|l| now.saturating_duration_since(l) < self.every)
        {
            self.held += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    fn accepted(a: Admission) -> (u64, Arc<Conn>, Vec<Eviction>) {
        match a {
            Admission::Accepted { id, conn, evicted } => (id, conn, evicted),
            Admission::Refused(b) => panic!("refused ({b:?})"),
        }
    }

    #[test]
    fn deadlines_follow_the_phase() {
        let t = Timeouts {
            request: Duration::from_secs(10),
            idle: Duration::from_secs(120),
        };
        let now = Instant::now();
        let c = Conn::new(A, now);
        assert_eq!(c.phase().deadline(t), Some(now + t.request));
        let later = now + Duration::from_secs(3);
        c.on_request_bytes(later);
        assert_eq!(c.phase().deadline(t), Some(later + t.request));
        // More bytes of the same request do not extend it.
        c.on_request_bytes(later + Duration::from_secs(5));
        assert_eq!(c.phase().deadline(t), Some(later + t.request));
        c.on_request_read();
        assert_eq!(c.phase().deadline(t), None);
        c.on_response(later);
        // A flush before the last byte is queued is not the end of the response.
        c.on_flushed(later);
        assert_eq!(c.phase().deadline(t), Some(later + t.request));
        c.on_response_queued();
        c.on_flushed(later + Duration::from_secs(1));
        let idle_since = later + Duration::from_secs(1);
        assert_eq!(c.phase(), Phase::Idle { since: idle_since });
        assert_eq!(c.phase().deadline(t), Some(idle_since + t.idle));
        // The next request gets the request timeout again, not what is left of the idle one.
        let next = idle_since + Duration::from_secs(100);
        c.on_request_bytes(next);
        assert_eq!(c.phase().deadline(t), Some(next + t.request));
    }

    #[test]
    fn one_client_closes_its_own_oldest_idle_connection() {
        let r = Registry::new(Limits {
            total: 10,
            per_client: 3,
        });
        let now = Instant::now();
        let (first, ..) = accepted(r.admit(A, now));
        let (_, second, _) = accepted(r.admit(A, now));
        let (_, third, _) = accepted(r.admit(A, now));
        second.on_request_bytes(now);
        let (_, b, evicted) = accepted(r.admit(B, now));
        assert!(evicted.is_empty());
        // A's fourth closes A's first (idle, oldest), not B's.
        let (_, _, evicted) = accepted(r.admit(A, now));
        assert_eq!(
            evicted,
            vec![Eviction {
                client: A,
                bound: Bound::Client,
                phase: "sent no request"
            }]
        );
        assert_eq!(r.len(), 4);
        assert!(r.all().iter().all(|c| c.client == A || Arc::ptr_eq(c, &b)));
        r.leave(first); // its task ends later: nothing counted twice
        assert_eq!(r.len(), 4);
        // With every connection of A busy, A's next one is refused; B is still served.
        third.on_request_bytes(now);
        for c in r.all().iter().filter(|c| c.client == A) {
            c.on_request_bytes(now);
        }
        assert!(matches!(r.admit(A, now), Admission::Refused(Bound::Client)));
        accepted(r.admit(B, now));
    }

    #[test]
    fn at_the_cap_the_oldest_idle_goes_first_never_a_busy_one() {
        let r = Registry::new(Limits {
            total: 3,
            per_client: 3,
        });
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(1);
        let (_, kept_alive, _) = accepted(r.admit(A, t0));
        kept_alive.on_request_bytes(t0);
        kept_alive.on_request_read();
        kept_alive.on_response(t0);
        kept_alive.on_response_queued();
        kept_alive.on_flushed(t0);
        let (_, busy, _) = accepted(r.admit(B, t0));
        busy.on_request_bytes(t0);
        let (_, fresh, _) = accepted(r.admit(B, t1));
        // The one that never sent a request goes before the older kept-alive one.
        let (_, newer, evicted) = accepted(r.admit(B, t1));
        assert_eq!(
            evicted,
            vec![Eviction {
                client: B,
                bound: Bound::Total,
                phase: "sent no request"
            }]
        );
        assert!(!r.all().iter().any(|c| Arc::ptr_eq(c, &fresh)));
        // Once the new one is busy, the kept-alive one is next.
        newer.on_request_bytes(t1);
        let (_, last, evicted) = accepted(r.admit(B, t1));
        assert_eq!(evicted[0].client, A);
        assert_eq!(evicted[0].phase, "was idle");
        assert!(!r.all().iter().any(|c| Arc::ptr_eq(c, &kept_alive)));
        // All busy: refused.
        last.on_request_bytes(t1);
        assert!(matches!(r.admit(A, t1), Admission::Refused(Bound::Total)));
    }

    #[test]
    fn throttled_lines_count_what_they_held_back() {
        let mut t = Throttle::new(Duration::from_secs(10));
        let now = Instant::now();
        assert_eq!(t.pass(now), Some(0));
        assert_eq!(t.pass(now + Duration::from_secs(1)), None);
        assert_eq!(t.pass(now + Duration::from_secs(2)), None);
        assert_eq!(t.pass(now + Duration::from_secs(11)), Some(2));
    }
}
