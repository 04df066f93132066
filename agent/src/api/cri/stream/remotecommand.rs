//! Kubernetes' remote command protocol (exec and attach), as kubelet serves it, over SPDY or
//! WebSocket. Channels: `error`, `stdin`, `stdout`, `stderr`, and `resize` (v3 and later,
//! with a tty: JSON `{"Width":W,"Height":H}` messages). Over SPDY the client opens one stream
//! per channel, named by its `streamtype` header, and the command runs once the expected
//! streams are there; over WebSocket (`ws.rs`) every channel exists from the start. Output
//! goes out on stdout/stderr, which we end when the command exits; then the error channel
//! carries the outcome: in v4 and v5 a JSON metav1.Status (`Success`, or `Failure` with reason
//! `NonZeroExitCode` and the code as an `ExitCode` cause), in v1–v3 a plain message, empty
//! for success.

use super::session::{Session, Stream, StreamWriter};
use super::ws::{WsConn, WsWriter};
use super::IoOptions;
use crate::runtime::{ExecInput, ExecRequest, OutputChunk, Runtime};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// In the server's order; the client's preference decides.
pub const PROTOCOLS: &[&str] = &["v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"];

/// How long the client has to open its streams (kubelet's default).
const STREAM_CREATION: Duration = Duration::from_secs(30);
/// How long we wait for the client to hang up after the outcome is sent.
const LINGER: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Streams {
    error: Option<Stream>,
    stdin: Option<Stream>,
    stdout: Option<Stream>,
    stderr: Option<Stream>,
    resize: Option<Stream>,
}

/// Our half of one channel, whatever carries it.
#[derive(Clone)]
pub enum Sink {
    Spdy(StreamWriter),
    Ws(WsWriter),
}

impl Sink {
    pub async fn write(&self, d: &[u8]) -> bool {
        match self {
            Sink::Spdy(w) => w.write(d).await,
            Sink::Ws(w) => w.write(d).await,
        }
    }

    pub async fn close(&self) {
        match self {
            Sink::Spdy(w) => w.close().await,
            Sink::Ws(w) => w.close().await,
        }
    }
}

/// The channels of one command.
#[derive(Default)]
pub struct Channels {
    pub error: Option<Sink>,
    pub stdin: Option<mpsc::Receiver<Vec<u8>>>,
    pub stdout: Option<Sink>,
    pub stderr: Option<Sink>,
    pub resize: Option<mpsc::Receiver<Vec<u8>>>,
}

/// The connection carrying them.
pub enum Transport {
    Spdy(Session),
    Ws(WsConn),
}

impl Transport {
    fn gone(&self) -> tokio::sync::watch::Receiver<bool> {
        match self {
            Transport::Spdy(s) => s.gone.clone(),
            Transport::Ws(w) => w.gone.clone(),
        }
    }

    async fn finish(self, linger: Duration) {
        match self {
            Transport::Spdy(s) => s.finish(linger).await,
            Transport::Ws(w) => w.finish(linger).await,
        }
    }
}

pub fn version(proto: &str) -> u8 {
    match proto {
        "v5.channel.k8s.io" => 5,
        "v4.channel.k8s.io" | "v4.base64.channel.k8s.io" => 4,
        "v3.channel.k8s.io" => 3,
        "v2.channel.k8s.io" => 2,
        _ => 1,
    }
}

/// Waits for the SPDY streams `o` calls for.
async fn spdy_channels(sess: &mut Session, o: IoOptions, v: u8) -> Result<Channels, String> {
    let mut c = Streams::default();
    let want_resize = o.tty && v >= 3;
    let want_stderr = o.stderr && !o.tty;
    let complete = |c: &Streams| {
        c.error.is_some()
            && (!o.stdin || c.stdin.is_some())
            && (!o.stdout || c.stdout.is_some())
            && (!want_stderr || c.stderr.is_some())
            && (!want_resize || c.resize.is_some())
    };
    let collect = async {
        while !complete(&c) {
            let Some(s) = sess.incoming.recv().await else {
                return Err("the client went away before opening its streams".to_string());
            };
            let kind = s.header("streamtype").unwrap_or_default().to_string();
            let slot = match kind.as_str() {
                "error" => &mut c.error,
                "stdin" => &mut c.stdin,
                "stdout" => &mut c.stdout,
                "stderr" => &mut c.stderr,
                "resize" => &mut c.resize,
                other => return Err(format!("unexpected stream type {other:?}")),
            };
            *slot = Some(s);
        }
        Ok(())
    };
    match tokio::time::timeout(STREAM_CREATION, collect).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err(format!("the client did not open its streams within {} s", STREAM_CREATION.as_secs())),
    }
    let sink = |s: &Option<Stream>| s.as_ref().map(|s| Sink::Spdy(s.out.clone()));
    Ok(Channels {
        error: sink(&c.error),
        stdout: sink(&c.stdout),
        stderr: sink(&c.stderr),
        stdin: c.stdin.map(|s| s.data),
        resize: c.resize.map(|s| s.data),
    })
}

/// The channels of a served connection: SPDY waits for the client's streams.
pub async fn open(t: &mut Transport, o: IoOptions, v: u8) -> Result<Channels, String> {
    match t {
        Transport::Spdy(s) => spdy_channels(s, o, v).await,
        Transport::Ws(w) => Ok(w.channels(o)),
    }
}

/// The outcome as the error stream carries it in protocol `v`; None: nothing to write.
pub fn outcome(v: u8, result: Result<i32, String>, what: &str) -> Option<String> {
    let status = match &result {
        Ok(0) => serde_json::json!({"metadata": {}, "status": "Success"}),
        Ok(code) => serde_json::json!({
            "metadata": {},
            "status": "Failure",
            "message": format!("command terminated with non-zero exit code: {what} exited with {code}"),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
        }),
        Err(msg) => serde_json::json!({
            "metadata": {}, "status": "Failure", "message": msg, "reason": "InternalError",
            "details": {"causes": [{"message": msg}]}, "code": 500,
        }),
    };
    if v >= 4 {
        return Some(status.to_string());
    }
    match result {
        Ok(0) => None,
        Ok(code) => Some(format!("command terminated with non-zero exit code: {what} exited with {code}")),
        Err(msg) => Some(msg),
    }
}

async fn report(err: &Option<Sink>, v: u8, result: Result<i32, String>, what: &str) {
    if let Some(e) = err {
        if let Some(msg) = outcome(v, result, what) {
            e.write(msg.as_bytes()).await;
        }
        e.close().await;
    }
}

#[derive(serde::Deserialize)]
struct Size {
    #[serde(rename = "Width")]
    width: u16,
    #[serde(rename = "Height")]
    height: u16,
}

/// The terminal's first size, which clients send as soon as the streams are open: waited
/// for (up to 2 s) so the command starts with it rather than racing a resize. Returns
/// (rows, cols) and what was read beyond it.
async fn first_size(s: &mut mpsc::Receiver<Vec<u8>>) -> (Option<(u16, u16)>, Vec<u8>) {
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while let Ok(Some(d)) = tokio::time::timeout_at(deadline, s.recv()).await {
        buf.extend_from_slice(&d);
        let mut it = serde_json::Deserializer::from_slice(&buf).into_iter::<Size>();
        match it.next() {
            Some(Ok(sz)) => {
                let used = it.byte_offset();
                return (Some((sz.height, sz.width)), buf.split_off(used));
            }
            Some(Err(e)) if e.is_eof() => continue,
            _ => break,
        }
    }
    (None, buf)
}

/// Reads JSON size messages off the resize stream into `input` (rows, cols), after `buf`.
async fn resizes(mut s: mpsc::Receiver<Vec<u8>>, input: mpsc::Sender<ExecInput>, mut buf: Vec<u8>) {
    loop {
        if buf.is_empty() {
            match s.recv().await {
                Some(d) => buf.extend_from_slice(&d),
                None => return,
            }
        }
        let mut it = serde_json::Deserializer::from_slice(&buf).into_iter::<Size>();
        let mut used = 0;
        loop {
            match it.next() {
                Some(Ok(sz)) => {
                    used = it.byte_offset();
                    if input.send(ExecInput::Resize(sz.height, sz.width)).await.is_err() {
                        return;
                    }
                }
                Some(Err(e)) if e.is_eof() => break,
                Some(Err(e)) => {
                    tracing::info!(error = %e, "exec: a resize message that is not a size; ignoring the rest");
                    return;
                }
                None => break,
            }
        }
        buf.drain(..used);
        if used == 0 {
            // An incomplete message: wait for more.
            match s.recv().await {
                Some(d) => buf.extend_from_slice(&d),
                None => return,
            }
        }
    }
}

/// Sends output chunks to the client's streams until the exit; its code.
async fn relay(out: &mut mpsc::Receiver<OutputChunk>, stdout: Option<&Sink>, stderr: Option<&Sink>) -> Option<i32> {
    while let Some(c) = out.recv().await {
        match c {
            OutputChunk::Stdout(d) => {
                if let Some(w) = stdout {
                    w.write(&d).await;
                }
            }
            OutputChunk::Stderr(d) => {
                // With a tty there is no stderr stream: the terminal merges both.
                if let Some(w) = stderr.or(stdout) {
                    w.write(&d).await;
                }
            }
            OutputChunk::Exit(code) => return Some(code),
        }
    }
    None
}

pub async fn exec(
    rt: &Arc<Runtime>,
    mut sess: Transport,
    proto: &str,
    container: &str,
    cmd: Vec<String>,
    o: IoOptions,
) {
    let v = version(proto);
    let mut ch = match open(&mut sess, o, v).await {
        Ok(c) => c,
        Err(e) => {
            tracing::info!(container, error = %e, "CRI exec: streams");
            sess.finish(Duration::ZERO).await;
            return;
        }
    };
    let what = format!("{cmd:?}");
    let mut req = ExecRequest { args: cmd, tty: o.tty, stdin: o.stdin, ..Default::default() };
    let mut resize_rest = Vec::new();
    if let (true, Some(r)) = (o.tty, ch.resize.as_mut()) {
        let (size, rest) = first_size(r).await;
        if let Some((rows, cols)) = size {
            (req.rows, req.cols) = (rows, cols);
        }
        resize_rest = rest;
    }
    let mut io = match rt.exec(container, req).await {
        Ok(io) => io,
        Err(e) => {
            report(&ch.error, v, Err(format!("exec in container {container}: {e}")), &what).await;
            sess.finish(LINGER).await;
            return;
        }
    };
    if let Some(mut s) = ch.stdin.take() {
        let input = io.input.clone();
        tokio::spawn(async move {
            while let Some(d) = s.recv().await {
                if input.send(ExecInput::Data(d)).await.is_err() {
                    return;
                }
            }
            // The client closed stdin (EOF), or went away.
            let _ = input.send(ExecInput::Close).await;
        });
    }
    if let Some(s) = ch.resize.take() {
        tokio::spawn(resizes(s, io.input.clone(), resize_rest));
    }
    let (stdout, stderr) = (ch.stdout.clone(), ch.stderr.clone());
    let mut gone = sess.gone();
    let code = tokio::select! {
        c = relay(&mut io.output, stdout.as_ref(), stderr.as_ref()) => c,
        _ = gone.wait_for(|g| *g) => None,
    };
    let Some(code) = code else {
        // The client hung up first: the command goes with it, as nobody can see it any more.
        tracing::info!(container, "CRI exec: the client went away; ending the command");
        io.terminate().await;
        sess.finish(Duration::ZERO).await;
        return;
    };
    for w in [&stdout, &stderr].into_iter().flatten() {
        w.close().await;
    }
    report(&ch.error, v, Ok(code), &what).await;
    sess.finish(LINGER).await;
}

pub async fn attach(rt: &Arc<Runtime>, mut sess: Transport, proto: &str, container: &str, o: IoOptions) {
    let v = version(proto);
    let mut ch = match open(&mut sess, o, v).await {
        Ok(c) => c,
        Err(e) => {
            tracing::info!(container, error = %e, "CRI attach: streams");
            sess.finish(Duration::ZERO).await;
            return;
        }
    };
    let stdin = ch.stdin.take();
    // A tty's size belongs to the terminal the shim holds: each size goes to it.
    if let Some(s) = ch.resize.take() {
        let (tx, mut sizes) = mpsc::channel(4);
        tokio::spawn(resizes(s, tx, Vec::new()));
        let (rt, container) = (Arc::clone(rt), container.to_string());
        tokio::spawn(async move {
            while let Some(ExecInput::Resize(rows, cols)) = sizes.recv().await {
                if let Err(e) = rt.resize_tty(&container, rows, cols) {
                    tracing::info!(container, error = %e, "CRI attach: resize");
                }
            }
        });
    }
    let mut out = match rt.attach(container, stdin) {
        Ok(o) => o,
        Err(e) => {
            report(&ch.error, v, Err(format!("attach to container {container}: {e}")), "attach").await;
            sess.finish(LINGER).await;
            return;
        }
    };
    let (stdout, stderr) = (ch.stdout.clone(), ch.stderr.clone());
    let mut gone = sess.gone();
    let exited = tokio::select! {
        c = relay(&mut out, stdout.as_ref(), stderr.as_ref()) => c.is_some(),
        _ = gone.wait_for(|g| *g) => false,
    };
    if !exited {
        // Detached: the container runs on.
        sess.finish(Duration::ZERO).await;
        return;
    }
    for w in [&stdout, &stderr].into_iter().flatten() {
        w.close().await;
    }
    // kubelet reports success once the attached container has exited, whatever its code.
    report(&ch.error, v, Ok(0), "attach").await;
    sess.finish(LINGER).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_outcomes_are_metav1_statuses() {
        assert_eq!(outcome(4, Ok(0), "x").unwrap(), r#"{"metadata":{},"status":"Success"}"#);
        let f: serde_json::Value = serde_json::from_str(&outcome(4, Ok(3), "[sh]").unwrap()).unwrap();
        assert_eq!(f["status"], "Failure");
        assert_eq!(f["reason"], "NonZeroExitCode");
        assert_eq!(f["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(f["details"]["causes"][0]["message"], "3");
        let e: serde_json::Value = serde_json::from_str(&outcome(4, Err("boom".into()), "x").unwrap()).unwrap();
        assert_eq!((e["status"].as_str(), e["message"].as_str()), (Some("Failure"), Some("boom")));
    }

    #[test]
    fn older_protocols_carry_plain_messages() {
        assert_eq!(outcome(3, Ok(0), "x"), None);
        assert!(outcome(2, Ok(5), "[false]").unwrap().contains("exited with 5"));
        assert_eq!(outcome(1, Err("boom".into()), "x").unwrap(), "boom");
    }
}
