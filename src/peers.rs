//! Other containers' supervisors, seen through the files they leave on the shared volume: a
//! sidecar watches its mains (`--wait-file`), a main watches the sidecars it requires
//! (`--requires`). Each peer is a marker path and the lease beside it.
//!
//! Theory of operation: this module observes and reports; what an observation means (whether a
//! marker counts, whether a peer vanished or is stale) is the policies' business. Three
//! mechanisms, each costing nothing while nothing happens:
//! - a directory watch (see `watch`) on the directories of peers that have no live lease yet: a
//!   marker or a lease appearing wakes the event loop, which calls [`Peers::changed`];
//! - one helper thread per live lease, blocked in a shared flock: the peer's death or its clean end
//!   (lease released right after its marker) posts to the loop's inbox, which calls
//!   [`Peers::released`];
//! - with `--stale-after`, the lease's age, read on request ([`Peers::lease_ages`]).
//!
//! A peer whose lease is held is not watched at all: its release is what matters, a marker
//! cannot count before it, and a supervisor that holds no watches near its end never waits for the
//! kernel to retire them on its way out.

use crate::fsutil::Kind;
use crate::lease::{self, Found};
use crate::marker::{self, Presence};
use crate::watch::Watcher;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

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
    /// The look follows the release of the lease a helper thread waited on: whatever marker is
    /// there now was written before that release.
    pub released: bool,
}

/// The age of a live lease, for `--stale-after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseAge {
    pub age: Duration,
    /// The lease declares a heartbeat (a lease without one never gets younger).
    pub heartbeat: bool,
}

/// Reports a release: (peer, lease id). Called on the helper thread.
pub type OnRelease = Arc<dyn Fn(usize, u64) + Send + Sync>;

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
    on_release: OnRelease,
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
    pub fn new(markers: &[PathBuf], poll: Duration, on_release: OnRelease) -> Peers {
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
        let mut peers = Peers {
            list,
            watcher: None,
            on_release,
        };
        if !markers.is_empty() {
            peers.watcher = Some(Watcher::new(peers.paths_to_watch(), poll));
        }
        peers
    }

    pub fn count(&self) -> usize {
        self.list.len()
    }

    pub fn watcher(&self) -> Option<&Watcher> {
        self.watcher.as_ref()
    }

    /// Looks at peer `i`'s marker and lease. A lease seen held for the first time gets a helper
    /// thread that reports its release.
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
        Observation {
            marker,
            lease,
            released: false,
        }
    }

    fn wait_in_thread(&self, i: usize, id: u64, file: std::fs::File) {
        let report = self.on_release.clone();
        let spawned = crate::signals::spawn_thread("lease", 64 * 1024, move || {
            if lease::wait_released(file).is_ok() {
                report(i, id);
            }
        });
        if let Err(e) = spawned {
            tracing::warn!(
                "cannot wait on the lease {}: {e}; only its files will tell when it ends",
                self.list[i].lease.display()
            );
        }
    }

    /// Something may have changed in a watched directory (or it is time to poll): re-arm the
    /// watch, then look at every open peer (in that order: a change between the two is seen).
    pub fn changed(&mut self) -> Vec<(usize, Observation)> {
        if let Some(w) = &mut self.watcher {
            w.drain_inotify();
            w.arm();
        }
        let open: Vec<usize> = (0..self.list.len())
            .filter(|&i| self.list[i].open)
            .collect();
        open.into_iter().map(|i| (i, self.observe(i))).collect()
    }

    /// The lease `id` of peer `peer` that a helper thread waited on was released: look again. A
    /// report about a lease since replaced, or about a settled peer, is dropped.
    pub fn released(&mut self, peer: usize, id: u64) -> Option<(usize, Observation)> {
        let p = self.list.get(peer)?;
        if !p.open || p.waiting_on.is_some_and(|w| w != id) {
            return None;
        }
        self.list[peer].waiting_on = None;
        let mut obs = self.observe(peer);
        obs.released = true;
        Some((peer, obs))
    }

    /// The age of each peer's lease while it is held and waited on (`None` otherwise).
    pub fn lease_ages(&self) -> Vec<Option<LeaseAge>> {
        self.list
            .iter()
            .map(|p| {
                p.waiting_on?;
                let age = lease::age(&p.lease)?;
                let heartbeat = match lease::open(&p.lease) {
                    Found::Lease { body, .. } => body.is_none_or(|b| b.heartbeat_ms.is_some()),
                    Found::Absent | Found::Other(_) => false,
                };
                Some(LeaseAge { age, heartbeat })
            })
            .collect()
    }

    /// The policy is done with peer `i` (it ended, or counts as ended): stop watching it.
    pub fn settle(&mut self, i: usize) {
        if let Some(p) = self.list.get_mut(i) {
            p.open = false;
        }
        self.rewatch();
    }

    /// Peers still of interest and without a live lease: the ones to watch.
    fn paths_to_watch(&self) -> Vec<PathBuf> {
        self.list
            .iter()
            .filter(|p| p.open && p.waiting_on.is_none())
            .flat_map(|p| [p.marker.clone(), p.lease.clone()])
            .collect()
    }

    /// Brings the watches in line with what is still of interest. Called by the event loop once
    /// the policy has decided about an observation (not by `observe`, so that a watch is never
    /// added for a peer the policy is about to settle).
    pub fn rewatch(&mut self) {
        let paths = self.paths_to_watch();
        if let Some(w) = &mut self.watcher {
            w.set_paths(paths);
        }
    }
}
