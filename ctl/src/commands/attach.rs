//! `attach`: the container's output from now on, our stdin to its stdin (when it was
//! created with -i), docker's detach keys (default ctrl-p,ctrl-q: the client leaves, the
//! container runs on with its stdin open) and `--sig-proxy` (signals agentctl receives are
//! sent to the container, when it has no terminal, as docker's ForwardAllSignals).

use super::verbs::{daemon, EXIT_DAEMON};
use crate::client::Clients;
use crate::error::{Exit, Res};
use crate::tty;
use agent_proto::v1 as pb;
use std::io::{IsTerminal, Write};
use tokio::io::AsyncReadExt;
use tokio::signal::unix::{signal, SignalKind};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;

/// docker's `term.ToBytes`: comma-separated keys, each one character or `ctrl-X` (X one of
/// a-z, @, [, \, ], ^, _).
pub fn parse_detach_keys(s: &str) -> Result<Vec<u8>, String> {
    let bad = || format!("Invalid detach keys ({s}) provided");
    let mut out = Vec::new();
    for k in s.split(',') {
        let k = k.trim();
        if let Some(c) = k.strip_prefix("ctrl-") {
            let c = c.as_bytes();
            if c.len() != 1 {
                return Err(bad());
            }
            match c[0].to_ascii_lowercase() {
                b @ b'a'..=b'z' => out.push(b - b'a' + 1),
                b'@' => out.push(0),
                b @ (b'[' | b'\\' | b']' | b'^' | b'_') => out.push(b - b'@'),
                _ => return Err(bad()),
            }
        } else if k.len() == 1 {
            out.push(k.as_bytes()[0]);
        } else {
            return Err(bad());
        }
    }
    if out.is_empty() {
        return Err(bad());
    }
    Ok(out)
}

/// Finds the detach sequence in input: bytes that may begin it are held back until they
/// turn out not to (then sent), as docker's escape proxy.
#[derive(Debug)]
pub struct Escape {
    keys: Vec<u8>,
    held: Vec<u8>,
}

impl Escape {
    pub fn new(keys: Vec<u8>) -> Escape {
        Escape { keys, held: Vec::new() }
    }

    /// The bytes to pass on, and whether the sequence was completed.
    pub fn feed(&mut self, data: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        for &b in data {
            if b == self.keys[self.held.len()] {
                self.held.push(b);
                if self.held.len() == self.keys.len() {
                    return (out, true);
                }
            } else {
                out.append(&mut self.held);
                if b == self.keys[0] {
                    self.held.push(b);
                } else {
                    out.push(b);
                }
            }
        }
        (out, false)
    }
}

enum Event {
    Output(Option<Result<pb::AttachResponse, tonic::Status>>),
    Detached,
    Signal(&'static str),
}

/// What an attached client does with the streams: shared by `attach` and a foreground `run`.
pub struct Session {
    /// Copy our stdin into the container's.
    pub stdin: bool,
    /// At the end of our input, close the container's stdin (`run -i`: docker's StdinOnce).
    pub close_stdin_at_eof: bool,
    /// The detach sequence looked for in our input; `None`: input passes as it is.
    pub escape: Option<Vec<u8>>,
    /// Send the signals agentctl receives to the container (when it has no terminal).
    pub sig_proxy: bool,
    /// Show the container's stdout / stderr (`run -a`).
    pub stdout: bool,
    pub stderr: bool,
    /// The exit code of our own failures (docker: 1 for attach, 125 for run).
    pub fail_code: u8,
}

/// Streams `out` until the container exits (its code), the detach keys are read (0), or
/// the stream fails.
pub async fn relay_session(
    cl: &mut Clients,
    id: &str,
    mut out: tonic::Streaming<pb::AttachResponse>,
    tx: tokio::sync::mpsc::Sender<pb::AttachRequest>,
    s: Session,
) -> Res<u8> {
    use pb::attach_request::Msg;
    use pb::attach_response::Msg as Out;
    let fail = |m: String| Exit(s.fail_code, m);
    let (ev_tx, mut ev) = tokio::sync::mpsc::channel::<Event>(16);
    if s.stdin {
        let (tx, ev_tx, escape, close) = (tx.clone(), ev_tx.clone(), s.escape.clone(), s.close_stdin_at_eof);
        tokio::spawn(async move {
            let mut input = tokio::io::stdin();
            let mut buf = vec![0u8; 32 * 1024];
            let mut esc = escape.map(Escape::new);
            loop {
                let n = match input.read(&mut buf).await {
                    Ok(0) | Err(_) => {
                        if close {
                            let _ = tx.send(pb::AttachRequest { msg: Some(Msg::CloseStdin(true)) }).await;
                        }
                        return;
                    }
                    Ok(n) => n,
                };
                let (pass, detach) = match esc.as_mut() {
                    Some(e) => e.feed(&buf[..n]),
                    None => (buf[..n].to_vec(), false),
                };
                if !pass.is_empty() && tx.send(pb::AttachRequest { msg: Some(Msg::Stdin(pass)) }).await.is_err() {
                    return;
                }
                if detach {
                    let _ = ev_tx.send(Event::Detached).await;
                    return;
                }
            }
        });
    }
    if s.sig_proxy {
        for (kind, name) in [
            (SignalKind::interrupt(), "INT"),
            (SignalKind::terminate(), "TERM"),
            (SignalKind::hangup(), "HUP"),
            (SignalKind::quit(), "QUIT"),
            (SignalKind::user_defined1(), "USR1"),
            (SignalKind::user_defined2(), "USR2"),
        ] {
            let mut sig = signal(kind).map_err(|e| fail(format!("signal handler: {e}")))?;
            let ev_tx = ev_tx.clone();
            tokio::spawn(async move {
                while sig.recv().await.is_some() {
                    if ev_tx.send(Event::Signal(name)).await.is_err() {
                        return;
                    }
                }
            });
        }
    }
    drop(ev_tx);
    loop {
        let e = tokio::select! {
            m = out.next() => Event::Output(m),
            Some(e) = ev.recv() => e,
        };
        match e {
            Event::Detached => return Ok(0),
            Event::Signal(name) => {
                let req = pb::KillContainerRequest { id: id.to_string(), signal: name.into() };
                if let Err(e) = cl.c.kill(req).await {
                    eprintln!("Error response from agent: {}", e.message());
                }
            }
            Event::Output(None) => {
                return Err(fail("lost the connection to the agent before the container exited".into()))
            }
            Event::Output(Some(Err(e))) => return Err(fail(format!("Error response from agent: {}", e.message()))),
            Event::Output(Some(Ok(m))) => match m.msg {
                Some(Out::Stdout(d)) if s.stdout => {
                    let mut o = std::io::stdout().lock();
                    let _ = o.write_all(&d);
                    let _ = o.flush();
                }
                Some(Out::Stderr(d)) if s.stderr => {
                    let _ = std::io::stderr().write_all(&d);
                }
                Some(Out::ExitCode(c)) => return Ok(c.clamp(0, 255) as u8),
                _ => {}
            },
        }
    }
}

/// `attach CONTAINER`.
pub async fn attach(cl: &mut Clients, id: String, keys: Option<String>, with_stdin: bool, sig_proxy: bool) -> Res<u8> {
    use pb::attach_request::Msg;
    let keys = parse_detach_keys(keys.as_deref().unwrap_or("ctrl-p,ctrl-q")).map_err(|m| Exit(EXIT_DAEMON, m))?;
    let info = cl.c.inspect(pb::InspectContainerRequest { id: id.clone() }).await.map_err(daemon)?.into_inner();
    let info = info.container.unwrap_or_default();
    if info.state != pb::ContainerState::Running as i32 {
        return Err(Exit(EXIT_DAEMON, "You cannot attach to a stopped container, start it first".into()));
    }
    if info.paused {
        return Err(Exit(EXIT_DAEMON, "You cannot attach to a paused container, unpause it first".into()));
    }
    let spec = info.spec.unwrap_or_default();
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::AttachRequest>(16);
    let start = pb::AttachStart { id: info.id.clone(), keep_stdin: true };
    let _ = tx.send(pb::AttachRequest { msg: Some(Msg::Start(start)) }).await;
    let out = cl.c.attach(ReceiverStream::new(rx)).await.map_err(daemon)?.into_inner();
    let _raw = (spec.tty && std::io::stdin().is_terminal()).then(tty::RawMode::enable);
    // The end of our input leaves the container's stdin open (docker closes it only for a
    // StdinOnce container: `run -i`, which closes it itself).
    let session = Session {
        stdin: with_stdin && spec.stdin_open,
        close_stdin_at_eof: false,
        escape: Some(keys),
        sig_proxy: sig_proxy && !spec.tty,
        stdout: true,
        stderr: true,
        fail_code: EXIT_DAEMON,
    };
    relay_session(cl, &info.id, out, tx, session).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse_like_dockers() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), vec![16, 17]);
        assert_eq!(parse_detach_keys("ctrl-@,a,ctrl-[").unwrap(), vec![0, b'a', 27]);
        assert!(parse_detach_keys("ctrl-pp").unwrap_err().contains("ctrl-pp"));
        assert!(parse_detach_keys("").is_err());
    }

    #[test]
    fn the_sequence_is_found_across_reads_and_false_starts_pass() {
        let mut e = Escape::new(vec![16, 17]);
        assert_eq!(e.feed(b"ab\x10"), (b"ab".to_vec(), false));
        assert_eq!(e.feed(b"c"), (b"\x10c".to_vec(), false));
        assert_eq!(e.feed(b"\x10\x10"), (b"\x10".to_vec(), false));
        assert_eq!(e.feed(b"\x11rest"), (vec![], true));
    }
}
