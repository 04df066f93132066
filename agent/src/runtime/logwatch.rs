//! Wakes log followers when their log file grows: one inotify instance for the whole agent
//! (the kernel allows only 128 instances per user by default, so one per follower would run
//! out), one watch per followed file shared by its followers, and a task that turns events
//! into a counter on a `watch` channel per file. A thousand caught-up followers then cost no
//! wake-ups at all; where inotify is unavailable they poll (`logs.rs`).

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::watch;

struct Watched {
    tx: watch::Sender<u64>,
    users: usize,
}

struct LogWatch {
    ino: Inotify,
    by_wd: Mutex<HashMap<WatchDescriptor, Watched>>,
}

/// The inotify descriptor as tokio polls it (owned by the `Inotify` of the static watcher).
struct Fd(RawFd);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

static WATCH: OnceLock<Option<Arc<LogWatch>>> = OnceLock::new();

fn watcher() -> Option<&'static Arc<LogWatch>> {
    WATCH
        .get_or_init(|| {
            let ino = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
                .map_err(|e| tracing::warn!(error = %e, "inotify unavailable: log followers poll"))
                .ok()?;
            let raw = ino.as_fd().as_raw_fd();
            let w = Arc::new(LogWatch { ino, by_wd: Mutex::new(HashMap::new()) });
            // SAFETY: the descriptor belongs to the static watcher's Inotify, never closed.
            let afd =
                unsafe { tokio::io::unix::AsyncFd::register_with_interest(Fd(raw), tokio::io::Interest::READABLE) }
                    .map_err(|e| tracing::warn!(error = %e, "cannot poll inotify: log followers poll"))
                    .ok()?;
            let me = Arc::clone(&w);
            tokio::spawn(async move {
                loop {
                    let Ok(mut g) = afd.readable().await else { return };
                    match me.ino.read_events() {
                        Ok(events) => {
                            let m = me.by_wd.lock().unwrap_or_else(|p| p.into_inner());
                            for e in events {
                                if let Some(w) = m.get(&e.wd) {
                                    w.tx.send_modify(|n| *n += 1);
                                }
                            }
                        }
                        Err(nix::errno::Errno::EAGAIN) => g.clear_ready(),
                        Err(e) => {
                            tracing::warn!(error = %e, "reading inotify events");
                            g.clear_ready();
                        }
                    }
                }
            });
            Some(w)
        })
        .as_ref()
}

/// A follower's subscription to the growth of one log file; dropping it ends the watch
/// when it was the last.
pub(super) struct Subscription {
    wd: WatchDescriptor,
    pub rx: watch::Receiver<u64>,
}

/// Subscribes to changes of `path`; `None` when it does not exist (yet) or inotify is
/// unavailable.
pub(super) fn subscribe(path: &Path) -> Option<Subscription> {
    let w = watcher()?;
    let wd = w.ino.add_watch(path, AddWatchFlags::IN_MODIFY | AddWatchFlags::IN_CLOSE_WRITE).ok()?;
    let mut m = w.by_wd.lock().unwrap_or_else(|p| p.into_inner());
    let e = m.entry(wd).or_insert_with(|| Watched { tx: watch::channel(0).0, users: 0 });
    e.users += 1;
    Some(Subscription { wd, rx: e.tx.subscribe() })
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let Some(w) = watcher() else { return };
        let mut m = w.by_wd.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = m.get_mut(&self.wd) {
            e.users -= 1;
            if e.users == 0 {
                m.remove(&self.wd);
                // Gone already when the file was deleted.
                let _ = w.ino.rm_watch(self.wd);
            }
        }
    }
}
