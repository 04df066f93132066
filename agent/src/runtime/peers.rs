//! The running peers in each container's /etc/hosts: one line per running container of each
//! of its bridge networks (name and aliases), so they resolve each other by name.
//!
//! A starting container's own file is written before its command runs, listing every running
//! peer (`write_own_hosts`). Its peers learn of it, and of a container that exits, is renamed,
//! connected or disconnected, a moment later: the change marks the network, and one thread
//! rewrites the files of the marked networks' members in passes that take every change made
//! meanwhile at once. Rewriting every peer's file on every start made each start cost O(N)
//! file reads and writes (O(N^2) bytes) — at 300 running containers ~1600 opens and ~2500
//! reads per `run`. A pass builds each network's block once, keeps each member's
//! `hosts.base` in memory, and skips a file whose text it last wrote unchanged; after a pass
//! the thread waits twice the pass's time before the next, so the passes take at most about a
//! third of one CPU however many containers there are (the peers then learn later, not the
//! starts slow down).
//!
//! Files are rewritten in place (a rename would break the bind mount) and never created: a
//! container removed meanwhile must not get its file back.

use super::{ContainerRecord, Runtime, State};
use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

/// Longest wait between passes however long the last one took.
const MAX_GAP: Duration = Duration::from_millis(500);
/// How long a mark waits for others to join its pass.
const GATHER: Duration = Duration::from_millis(2);

#[derive(Default)]
struct Marks {
    /// Networks whose members' files are due for a rewrite.
    dirty: BTreeSet<String>,
    /// Each member's `hosts.base` (written once at create).
    base: HashMap<String, Arc<str>>,
    /// A hash of the text last written to each member's `hosts`.
    written: HashMap<String, u64>,
}

/// The marks and caches shared by the runtime and the rewriting thread.
#[derive(Default)]
pub(super) struct Peers {
    state: Mutex<Marks>,
    wake: Condvar,
    /// False until the thread runs (and if it could not be started): marks rewrite at once.
    threaded: AtomicBool,
}

/// One member whose file a rewrite writes, and its bridge networks (in order).
struct Plan {
    id: String,
    nets: Vec<String>,
}

fn hash(s: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

/// The `name aliases…` line of a container on network `n`, when it is on it.
fn line(c: &ContainerRecord, n: &str) -> Option<String> {
    c.bridge_networks().into_iter().find(|(cn, _)| cn == n).map(|(_, ip)| {
        let names: Vec<&str> =
            std::iter::once(c.name.as_str()).chain(c.spec.network_aliases.iter().map(String::as_str)).collect();
        format!("{ip}\t{}\n", names.join(" "))
    })
}

impl Peers {
    pub(super) fn new() -> Peers {
        Peers::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Marks> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets a removed container's cached files.
    pub(super) fn forget(&self, id: &str) {
        let mut s = self.lock();
        s.base.remove(id);
        s.written.remove(id);
    }
}

/// Starts the thread that rewrites the marked networks' files; it ends with the runtime.
pub(super) fn spawn(rt: &Arc<Runtime>) {
    let weak: Weak<Runtime> = Arc::downgrade(rt);
    let r = std::thread::Builder::new().name("hosts-peers".into()).spawn(move || loop {
        let nets = {
            let Some(rt) = weak.upgrade() else { return };
            let peers = Arc::clone(&rt.peers);
            drop(rt);
            let mut s = peers.lock();
            while s.dirty.is_empty() {
                // Wakes now and then to notice that the runtime is gone.
                s = peers.wake.wait_timeout(s, Duration::from_secs(1)).unwrap_or_else(|p| p.into_inner()).0;
                if weak.strong_count() == 0 {
                    return;
                }
            }
            drop(s);
            std::thread::sleep(GATHER);
            let taken = std::mem::take(&mut peers.lock().dirty);
            taken
        };
        let Some(rt) = weak.upgrade() else { return };
        let t = Instant::now();
        rt.rewrite_hosts(&nets);
        drop(rt);
        std::thread::sleep((t.elapsed() * 2).min(MAX_GAP));
    });
    match r {
        Ok(_) => rt.peers.threaded.store(true, Ordering::SeqCst),
        Err(e) => tracing::error!(error = %e, "cannot start the /etc/hosts thread; peers are written at once instead"),
    }
}

impl Runtime {
    /// Marks network `net`: its members' /etc/hosts are rewritten in the next pass.
    pub(super) fn refresh_hosts(&self, net: &str) {
        if !self.peers.threaded.load(Ordering::SeqCst) {
            self.rewrite_hosts(&BTreeSet::from([net.to_string()]));
            return;
        }
        self.peers.lock().dirty.insert(net.to_string());
        self.peers.wake.notify_one();
    }

    /// Rewrites, now, the /etc/hosts of a container that is starting: the running peers of
    /// each of its networks, and itself (written even when unchanged: the container may have
    /// edited it in an earlier run).
    pub(super) fn write_own_hosts(&self, rec: &ContainerRecord) {
        let nets: Vec<String> = rec.bridge_networks().into_iter().map(|(n, _)| n).collect();
        if nets.is_empty() {
            return;
        }
        self.peers.lock().written.remove(&rec.id);
        let _serial = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        let blocks = self.records.read(&self.store, |all| {
            nets.iter()
                .map(|n| {
                    let mut b = String::new();
                    for c in all.values().filter(|c| c.state == State::Running || c.id == rec.id) {
                        if let Some(l) = line(if c.id == rec.id { rec } else { c }, n) {
                            b.push_str(&l);
                        }
                    }
                    (n.clone(), b)
                })
                .collect::<HashMap<_, _>>()
        });
        match blocks {
            Ok(blocks) => self.write_hosts(&Plan { id: rec.id.clone(), nets }, &blocks),
            Err(e) => tracing::warn!(container = %rec.id, error = %e, "writing /etc/hosts: listing containers"),
        }
    }

    /// One pass: the files of every member of `nets`.
    fn rewrite_hosts(&self, nets: &BTreeSet<String>) {
        let _serial = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        let snapshot = self.records.read(&self.store, |all| {
            let plans: Vec<Plan> = all
                .values()
                .filter(|c| c.state != State::Removing)
                .filter_map(|c| {
                    let cn: Vec<String> = c.bridge_networks().into_iter().map(|(n, _)| n).collect();
                    cn.iter().any(|n| nets.contains(n)).then(|| Plan { id: c.id.clone(), nets: cn })
                })
                .collect();
            let wanted: BTreeSet<&String> = plans.iter().flat_map(|p| p.nets.iter()).collect();
            let mut blocks: HashMap<String, String> = wanted.into_iter().map(|n| (n.clone(), String::new())).collect();
            for c in all.values().filter(|c| c.state == State::Running) {
                for (n, b) in blocks.iter_mut() {
                    if let Some(l) = line(c, n) {
                        b.push_str(&l);
                    }
                }
            }
            (plans, blocks)
        });
        let (plans, blocks) = match snapshot {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "refreshing /etc/hosts: listing containers");
                return;
            }
        };
        for p in &plans {
            self.write_hosts(p, &blocks);
        }
    }

    /// Writes one member's `hosts` from its base and its networks' blocks, unless that is
    /// the text last written there.
    fn write_hosts(&self, p: &Plan, blocks: &HashMap<String, String>) {
        let dir = self.container_dir(&p.id);
        let cached = self.peers.lock().base.get(&p.id).cloned();
        let base = match cached {
            Some(b) => b,
            None => match std::fs::read_to_string(dir.join("hosts.base")) {
                Ok(t) => {
                    let b: Arc<str> = t.into();
                    self.peers.lock().base.insert(p.id.clone(), Arc::clone(&b));
                    b
                }
                // Removed meanwhile.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
                Err(e) => {
                    tracing::warn!(container = %p.id, error = %e, "refreshing /etc/hosts: reading hosts.base");
                    return;
                }
            },
        };
        let mut text = String::from(&*base);
        for n in &p.nets {
            text.push_str(&format!("# containers of network {n}\n"));
            text.push_str(blocks.get(n).map(String::as_str).unwrap_or(""));
        }
        let h = hash(&text);
        if self.peers.lock().written.get(&p.id) == Some(&h) {
            return;
        }
        let f = std::fs::OpenOptions::new().write(true).truncate(true).open(dir.join("hosts"));
        match f.and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes())) {
            Ok(()) => {
                self.peers.lock().written.insert(p.id.clone(), h);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(container = %p.id, error = %e, "rewriting /etc/hosts"),
        }
    }
}
