//! Reading a container's output: `logs` (from the log file, optionally following) and
//! `attach` (live output from now on, plus stdin through the shim's FIFO).

use super::{Phase, Result, Runtime, RuntimeError, State};
use crate::logfile::{Chain, LogConfig, Record, Rotation, Stream};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Which log records to return.
#[derive(Clone, Debug, Default)]
pub struct LogOptions {
    pub follow: bool,
    /// Unix nanoseconds; records before are skipped.
    pub since: i64,
    /// The last N records only (<= 0: all).
    pub tail: i64,
    /// Unix nanoseconds; records after are skipped, and a follower ends once it passed
    /// (0: no end).
    pub until: i64,
    pub stdout: bool,
    pub stderr: bool,
}

/// A piece of a process's output, or its end.
#[derive(Clone, Debug, PartialEq)]
pub enum OutputChunk {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    Exit(i32),
}

const POLL: Duration = Duration::from_millis(10);

/// Records a follower (`logs -f`, attach) may have read ahead of its client: a client that
/// stops reading holds at most this many (each at most `logfile::MAX_RECORD`, 16 KiB) in
/// the agent, besides what HTTP/2 flow control lets through; the log file is the buffer.
pub const FOLLOW_AHEAD: usize = 8;

fn running(p: &Phase) -> bool {
    matches!(p, Phase::Running { .. } | Phase::Created)
}

fn exit_code(p: &Phase) -> Option<i32> {
    match p {
        Phase::Exited { code } | Phase::Removed { code } => Some(*code),
        _ => None,
    }
}

/// Where the shim writes a container's output: `log`, or with `--log-driver none` a small
/// buffer `attach` reads (no log is kept: `logs` refuses).
pub(super) fn log_base(dir: &Path, c: &LogConfig) -> PathBuf {
    dir.join(if c.readable() { "log" } else { "attach" })
}

/// The attach buffer of `--log-driver none`: 1 MiB, replaced when full.
const ATTACH_BUFFER: Rotation = Rotation { max_size: 1 << 20, max_file: 1, compress: false };

/// How the shim rotates the output of a container.
pub(super) fn log_rotation(c: &LogConfig) -> Option<Rotation> {
    if c.readable() {
        c.rotation()
    } else {
        Some(ATTACH_BUFFER)
    }
}

/// Waits for a change of phase or a short tick, whichever comes first.
async fn tick(rx: &mut watch::Receiver<Phase>) {
    let _ = tokio::time::timeout(POLL, rx.changed()).await;
}

/// How long a follower whose log file is watched sleeps at most without news (a safety net).
const WATCHED_CHECK: Duration = Duration::from_secs(5);

/// Wakes a caught-up follower when its log grows (`logwatch.rs`: inotify, so idle followers
/// cost no wake-ups), its container's phase changes, or after [`WATCHED_CHECK`]; until the
/// log file exists (or without inotify) it polls every [`POLL`].
struct Growth {
    path: PathBuf,
    sub: Option<super::logwatch::Subscription>,
}

impl Growth {
    fn new(path: PathBuf) -> Growth {
        let sub = super::logwatch::subscribe(&path);
        Growth { path, sub }
    }

    /// Watches the file now at the path (the reader moved to it after a rotation).
    fn renew(&mut self, chain: &mut Chain) {
        if chain.take_switched() {
            self.sub = super::logwatch::subscribe(&self.path);
        }
    }

    async fn wait(&mut self, rx: &mut watch::Receiver<Phase>) {
        let Some(sub) = self.sub.as_mut() else {
            tick(rx).await;
            self.sub = super::logwatch::subscribe(&self.path);
            return;
        };
        tokio::select! {
            _ = sub.rx.changed() => {}
            _ = rx.changed() => {}
            _ = tokio::time::sleep(WATCHED_CHECK) => {}
        }
    }
}

impl Runtime {
    /// Streams a container's log records.
    pub fn logs(self: &Arc<Self>, name: &str, opts: LogOptions) -> Result<mpsc::Receiver<Record>> {
        let rec = self.resolve(name)?;
        if !rec.spec.log_config.readable() {
            return Err(RuntimeError::FailedPrecondition(crate::logfile::config::NOT_READABLE.into()));
        }
        let path = log_base(&self.container_dir(&rec.id), &rec.spec.log_config);
        let mut rx = self.watch(&rec.id);
        let (tx, out) = mpsc::channel(FOLLOW_AHEAD);
        let want = move |r: &Record| {
            let both = opts.stdout == opts.stderr;
            r.time >= opts.since
                && (opts.until == 0 || r.time <= opts.until)
                && (both || (r.stream == Stream::Stdout) == opts.stdout)
        };
        tokio::spawn(async move {
            let mut growth = Growth::new(path.clone());
            let mut chain = Chain::from_start(&path);
            if opts.tail > 0 {
                let mut last = std::collections::VecDeque::new();
                while let Ok(Some(rec)) = chain.next_record() {
                    if want(&rec) {
                        last.push_back(rec);
                        if last.len() > opts.tail as usize {
                            last.pop_front();
                        }
                    }
                }
                for rec in last {
                    if tx.send(rec).await.is_err() {
                        return;
                    }
                }
            }
            loop {
                let mut sent_any = false;
                while let Ok(Some(rec)) = chain.next_record() {
                    sent_any = true;
                    if want(&rec) && tx.send(rec).await.is_err() {
                        return;
                    }
                }
                growth.renew(&mut chain);
                if !opts.follow {
                    return;
                }
                let left =
                    (opts.until != 0).then(|| opts.until - chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0));
                if left.is_some_and(|l| l <= 0) {
                    // --until has passed: what came before it was sent.
                    return;
                }
                let done = !running(&rx.borrow());
                if done {
                    // The shim is gone and the log complete: what it wrote after the pass
                    // above (a fast command's last line) is read now.
                    while let Ok(Some(rec)) = chain.next_record() {
                        if want(&rec) && tx.send(rec).await.is_err() {
                            return;
                        }
                    }
                    return;
                }
                if !sent_any {
                    // Caught up: wait for more, or end now when the client has gone (a
                    // quiet container's followers would otherwise live until it exits).
                    let wait = async {
                        match left {
                            Some(l) => {
                                let _ =
                                    tokio::time::timeout(Duration::from_nanos(l as u64), growth.wait(&mut rx)).await;
                            }
                            None => growth.wait(&mut rx).await,
                        }
                    };
                    tokio::select! {
                        _ = wait => {}
                        _ = tx.closed() => return,
                    }
                }
            }
        });
        Ok(out)
    }

    /// The attributes `logs --details` shows for a container (`--log-opt labels=,env=`).
    pub fn log_attrs(&self, name: &str) -> Result<BTreeMap<String, String>> {
        let rec = self.resolve(name)?;
        Ok(rec.spec.log_config.attrs(&rec.spec.labels, &rec.env))
    }

    /// Attaches to a created or running container: output from now until it exits, then
    /// its exit code. `stdin` (when the container was created with it) is fed to its stdin;
    /// closing the channel closes the container's stdin.
    pub fn attach(
        self: &Arc<Self>,
        name: &str,
        stdin: Option<mpsc::Receiver<Vec<u8>>>,
    ) -> Result<mpsc::Receiver<OutputChunk>> {
        let rec = self.resolve(name)?;
        if !matches!(rec.state, State::Created | State::Running) {
            return Err(RuntimeError::FailedPrecondition(format!(
                "cannot attach to container {}: it is not running",
                rec.name
            )));
        }
        if rec.paused {
            return Err(RuntimeError::FailedPrecondition(format!(
                "cannot attach to container {}: it is paused, unpause it first",
                rec.name
            )));
        }
        let dir = self.container_dir(&rec.id);
        let path = log_base(&dir, &rec.spec.log_config);
        let rx = self.watch(&rec.id);
        let (tx, out) = mpsc::channel(FOLLOW_AHEAD);
        if let (Some(input), true) = (stdin, rec.spec.stdin_open) {
            tokio::spawn(feed_stdin(dir.join("stdin"), rx.clone(), input));
        }
        let mut rx = rx;
        // Opened now when it exists: a fast container with --rm may be gone, directory and
        // all, before the first pass below; an open file outlives its directory.
        let mut chain = Chain::at_end(&path);
        tokio::spawn(async move {
            let mut growth = Growth::new(path.clone());
            loop {
                let mut sent_any = false;
                while let Ok(Some(rec)) = chain.next_record() {
                    sent_any = true;
                    if tx.send(chunk_of(rec)).await.is_err() {
                        return;
                    }
                }
                growth.renew(&mut chain);
                let phase = rx.borrow().clone();
                if let Some(code) = exit_code(&phase) {
                    // The shim is gone and the log complete: what it wrote after the pass
                    // above (a fast command's last line) is sent before the exit code.
                    while let Ok(Some(rec)) = chain.next_record() {
                        if tx.send(chunk_of(rec)).await.is_err() {
                            return;
                        }
                    }
                    let _ = tx.send(OutputChunk::Exit(code)).await;
                    return;
                }
                if !sent_any {
                    tokio::select! {
                        _ = growth.wait(&mut rx) => {}
                        _ = tx.closed() => return,
                    }
                }
            }
        });
        Ok(out)
    }
}

fn chunk_of(rec: Record) -> OutputChunk {
    match rec.stream {
        Stream::Stdout => OutputChunk::Stdout(rec.data),
        Stream::Stderr => OutputChunk::Stderr(rec.data),
    }
}

/// Writes attached stdin into the shim's FIFO once the container runs.
async fn feed_stdin(fifo: PathBuf, mut rx: watch::Receiver<Phase>, mut input: mpsc::Receiver<Vec<u8>>) {
    use tokio::io::AsyncWriteExt;
    let mut first = input.recv().await;
    // The shim opens the FIFO when the container starts.
    loop {
        let p = rx.borrow_and_update().clone();
        match p {
            Phase::Running { .. } => break,
            Phase::Created => {
                if rx.changed().await.is_err() {
                    return;
                }
            }
            _ => return,
        }
    }
    let mut tries = 0;
    let mut sender = loop {
        match tokio::net::unix::pipe::OpenOptions::new().open_sender(&fifo) {
            Ok(s) => break s,
            Err(_) if tries < 100 => {
                tries += 1;
                tokio::time::sleep(POLL).await;
            }
            Err(_) => return,
        }
    };
    loop {
        let data = match first.take() {
            Some(d) => d,
            None => match input.recv().await {
                Some(d) => d,
                None => return,
            },
        };
        if sender.write_all(&data).await.is_err() {
            return;
        }
    }
}
