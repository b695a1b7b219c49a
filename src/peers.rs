//! Other containers' supervisors, seen through the files they leave on the shared volume: a
//! sidecar watches its mains (`--wait-file`), a main watches the sidecars it requires
//! (`--requires`). Each peer is a marker path and the lease beside it.
//!
//! Theory of operation: this module observes and reports; what an observation means is the
//! policies' business. Three mechanisms, each costing nothing while nothing happens:
//! - inotify (see `watch`) on the directories of peers that have no live lease yet: a marker or a
//!   lease appearing wakes us;
//! - one helper thread per live lease, blocked in a shared flock: the peer's death or its clean end
//!   (lease released right after its marker) wakes us;
//! - with `--stale-after`, a timer that reads lease mtimes (for filesystems without flock).
//!
//! A peer whose lease is held is not watched with inotify at all: its release is what matters, a
//! marker cannot count before it, and a supervisor that holds no inotify watches near its end
//! never waits for the kernel to retire them on its way out.

use crate::fsutil::Kind;
use crate::lease::{self, Found};
use crate::marker::{self, Presence};
use crate::watch::Watcher;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;

/// What a peer's lease looks like right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseView {
    /// No lease file: the peer has not started, or ended cleanly.
    None,
    /// Held exclusively: the peer lives. `pid` as the lease says; `heartbeat` when it declares one.
    Held { pid: Option<u32>, heartbeat: bool },
    /// A lease file nobody holds: its writer died without a clean end.
    Free,
}

/// One look at a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub marker: Presence,
    pub lease: LeaseView,
}

/// What woke the peers up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// Something changed in a watched directory (or a poll tick): observe again.
    Changed,
    /// The lease of peer `peer` that a helper thread waited on was released.
    Released { peer: usize, id: u64 },
}

struct Peer {
    marker: PathBuf,
    lease: PathBuf,
    /// The lease a helper thread is blocked on, so each lease is waited on once.
    waiting_on: Option<u64>,
    /// Still of interest (the policy has not settled it).
    open: bool,
    /// Said that the marker, the lease, is not a regular file (once each: peers are looked at
    /// again on every change in their directory).
    said_marker: bool,
    said_lease: bool,
}

pub struct Peers {
    list: Vec<Peer>,
    watcher: Option<Watcher>,
    tx: mpsc::UnboundedSender<(usize, u64)>,
    rx: mpsc::UnboundedReceiver<(usize, u64)>,
}

/// Warns, the first time only, that what is at `path` is a `kind` and so `what`.
fn say_once(said: &mut bool, path: &Path, kind: Kind, what: &str) {
    if !*said {
        *said = true;
        tracing::warn!("{} is {kind}, {what}", path.display());
    }
}

impl Peers {
    /// Starts watching the peers whose markers are `markers`. The watch is armed before anything
    /// is observed: a marker written in between is still seen.
    pub fn new(markers: &[PathBuf], poll: Duration) -> Peers {
        let list: Vec<Peer> = markers
            .iter()
            .map(|m| Peer {
                marker: m.clone(),
                lease: lease::lease_path(m),
                waiting_on: None,
                open: true,
                said_marker: false,
                said_lease: false,
            })
            .collect();
        let (tx, rx) = mpsc::unbounded_channel();
        let mut peers = Peers {
            list,
            watcher: None,
            tx,
            rx,
        };
        if !markers.is_empty() {
            peers.watcher = Some(Watcher::new(peers.paths_to_watch(), poll));
        }
        peers
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn marker(&self, i: usize) -> &Path {
        &self.list[i].marker
    }

    pub fn lease(&self, i: usize) -> &Path {
        &self.list[i].lease
    }

    /// Looks at peer `i`'s marker and lease. A lease seen held for the first time gets a helper
    /// thread that reports its release as [`Wake::Released`].
    pub fn observe(&mut self, i: usize) -> Observation {
        let p = &mut self.list[i];
        let (marker, odd) = marker::look(&p.marker);
        if let Some(kind) = odd {
            let what = "not a regular file: it counts as a marker whose exit code is unknown";
            say_once(&mut p.said_marker, &p.marker, kind, what);
        }
        let lease = match lease::open(&self.list[i].lease) {
            Found::Other(kind) => {
                let p = &mut self.list[i];
                say_once(
                    &mut p.said_lease,
                    &p.lease,
                    kind,
                    "not a lease: ignoring it",
                );
                p.waiting_on = None;
                LeaseView::None
            }
            Found::Absent => {
                // A clean end removes the lease: forget it, so the next one is waited on.
                self.list[i].waiting_on = None;
                LeaseView::None
            }
            Found::Lease { file, id, body } => match lease::is_held(file) {
                (true, Some(file)) => {
                    if self.list[i].waiting_on != Some(id) {
                        self.list[i].waiting_on = Some(id);
                        self.wait_in_thread(i, id, file);
                    }
                    LeaseView::Held {
                        pid: body.as_ref().map(|b| b.pid),
                        heartbeat: body.is_none_or(|b| b.heartbeat_ms.is_some()),
                    }
                }
                (true, None) => LeaseView::Held {
                    pid: None,
                    heartbeat: true,
                },
                (false, _) => {
                    // Nobody lives behind it: nothing to wait on; watch for its replacement.
                    self.list[i].waiting_on = None;
                    LeaseView::Free
                }
            },
        };
        Observation { marker, lease }
    }

    fn wait_in_thread(&self, i: usize, id: u64, file: std::fs::File) {
        let tx = self.tx.clone();
        let spawned = std::thread::Builder::new()
            .name("lease".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                if lease::wait_released(file).is_ok() {
                    let _ = tx.send((i, id));
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(
                "cannot wait on the lease {}: {e}; only its files will tell when it ends",
                self.list[i].lease.display()
            );
        }
    }

    /// Turns a wake-up into observations: every open peer after a change, the one whose lease
    /// was released (`true`) after a release. A report about a lease since replaced is dropped.
    pub fn gather(&mut self, wake: Wake) -> Vec<(usize, Observation, bool)> {
        match wake {
            Wake::Changed => {
                let open: Vec<usize> = (0..self.list.len())
                    .filter(|&i| self.list[i].open)
                    .collect();
                open.into_iter()
                    .map(|i| (i, self.observe(i), false))
                    .collect()
            }
            Wake::Released { peer, id } if self.is_current(peer, id) && self.list[peer].open => {
                // The lease waited on is released: a marker there now was written before the
                // release and counts, whatever lease may follow; look at the lease only without one.
                self.list[peer].waiting_on = None;
                let marker = marker::inspect(&self.list[peer].marker);
                let obs = match marker {
                    Presence::Present(_) => Observation {
                        marker,
                        lease: LeaseView::None,
                    },
                    _ => self.observe(peer),
                };
                vec![(peer, obs, true)]
            }
            Wake::Released { .. } => Vec::new(),
        }
    }

    /// Whether a release report is about the lease now waited on (a report about a lease since
    /// replaced by another one is stale).
    pub fn is_current(&self, peer: usize, id: u64) -> bool {
        self.list[peer].waiting_on.is_none_or(|w| w == id)
    }

    /// The age of peer `i`'s lease when it is older than `limit`, held, and declares a heartbeat
    /// (a lease without one never gets younger, and calling it stale would end a healthy peer).
    pub fn stale(&self, i: usize, limit: Duration) -> Option<Duration> {
        let p = &self.list[i];
        p.waiting_on?;
        let age = lease::age(&p.lease)?;
        if age <= limit {
            return None;
        }
        let declares = match lease::open(&p.lease) {
            Found::Lease { body, .. } => body.is_none_or(|b| b.heartbeat_ms.is_some()),
            Found::Absent | Found::Other(_) => false,
        };
        declares.then_some(age)
    }

    /// The policy is done with peer `i` (it ended, or counts as ended): stop watching it.
    pub fn settle(&mut self, i: usize) {
        self.list[i].open = false;
        self.rewatch();
    }

    /// Stops watching everything (the supervisor is stopping).
    pub fn settle_all(&mut self) {
        for p in &mut self.list {
            p.open = false;
        }
        self.rewatch();
    }

    /// Peers still of interest and without a live lease: the ones inotify must watch.
    fn paths_to_watch(&self) -> Vec<PathBuf> {
        self.list
            .iter()
            .filter(|p| p.open && p.waiting_on.is_none())
            .flat_map(|p| [p.marker.clone(), p.lease.clone()])
            .collect()
    }

    /// Brings the inotify watches in line with what is still of interest. Called by the recipes
    /// once the policy has decided about an observation (not by `observe`, so that a watch is
    /// never added for a peer the policy is about to settle).
    pub fn rewatch(&mut self) {
        let paths = self.paths_to_watch();
        if let Some(w) = &mut self.watcher {
            w.set_paths(paths);
        }
    }

    /// Waits for the next thing that may have changed.
    pub async fn next(&mut self) -> Wake {
        let (watcher, rx) = (&mut self.watcher, &mut self.rx);
        let changed = async {
            match watcher {
                Some(w) => w.changed().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = changed => Wake::Changed,
            Some((peer, id)) = rx.recv() => Wake::Released { peer, id },
        }
    }
}
