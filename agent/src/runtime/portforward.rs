//! A TCP connection into a pod's network namespace, for the CRI's PortForward: made from a
//! thread of its own that joins the namespace only to connect (a socket keeps the
//! namespace it was made in, and the thread, whose namespace is now the pod's, ends).

use super::{Result, Runtime, RuntimeError, State};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

const CONNECT: Duration = Duration::from_secs(5);

impl Runtime {
    /// Connects to 127.0.0.1:`port` in the network namespace of the running sandbox `id`.
    pub async fn connect_in_sandbox(&self, id: &str, port: u16) -> Result<tokio::net::TcpStream> {
        let rec = self.sandbox(id)?;
        if rec.state != State::Running || rec.pid <= 0 {
            return Err(RuntimeError::FailedPrecondition(format!("pod sandbox {} is not running", rec.id)));
        }
        let pid = rec.pid;
        let (tx, rx) = tokio::sync::oneshot::channel();
        // Not a pool thread: its namespace must never serve anything else.
        let spawned = std::thread::Builder::new().name("netns-connect".into()).spawn(move || {
            let _ = tx.send(connect_in(pid, port));
        });
        if let Err(e) = spawned {
            return Err(RuntimeError::Internal(format!("starting a thread to connect in pod {}: {e}", rec.id)));
        }
        let sock = rx
            .await
            .map_err(|_| RuntimeError::Internal("the namespace thread ended without an answer".into()))?
            .map_err(|e| {
                RuntimeError::FailedPrecondition(format!("connect to 127.0.0.1:{port} in pod {}: {e}", rec.id))
            })?;
        sock.set_nonblocking(true).map_err(|e| RuntimeError::Internal(e.to_string()))?;
        tokio::net::TcpStream::from_std(sock).map_err(|e| RuntimeError::Internal(e.to_string()))
    }
}

fn connect_in(pid: i32, port: u16) -> std::io::Result<std::net::TcpStream> {
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))?;
    nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
    std::net::TcpStream::connect_timeout(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)), CONNECT)
}
