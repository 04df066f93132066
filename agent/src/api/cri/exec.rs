//! ExecSync, and the streaming Exec, Attach and PortForward: those validate the request
//! and answer with a single-use URL of the streaming server (`stream/`), which runs it.

use super::stream::{IoOptions, Pending, StreamError};
use super::{CriRuntime, Rpc};
use crate::api::convert::status;
use crate::runtime::{ExecRequest, OutputChunk, State};
use agent_proto::cri as pb;
use std::time::Duration;
use tonic::Status;

pub(super) async fn exec_sync(cri: &CriRuntime, r: pb::ExecSyncRequest) -> Rpc<pb::ExecSyncResponse> {
    if r.cmd.is_empty() {
        return Err(Status::invalid_argument("cmd is required"));
    }
    let ex = ExecRequest { args: r.cmd, ..Default::default() };
    let mut io = cri.rt.exec(&r.container_id, ex).await.map_err(status)?;
    let collect = async {
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        while let Some(c) = io.output.recv().await {
            match c {
                OutputChunk::Stdout(d) => stdout.extend(d),
                OutputChunk::Stderr(d) => stderr.extend(d),
                OutputChunk::Exit(code) => return pb::ExecSyncResponse { stdout, stderr, exit_code: code },
            }
        }
        pb::ExecSyncResponse { stdout, stderr, exit_code: 255 }
    };
    if r.timeout <= 0 {
        return Ok(collect.await);
    }
    match tokio::time::timeout(Duration::from_secs(r.timeout as u64), collect).await {
        Ok(out) => Ok(out),
        Err(_) => {
            // Answered once the command is gone, not while it is still a zombie.
            io.terminate().await;
            Err(Status::deadline_exceeded(format!("command did not finish within {} seconds (killed)", r.timeout)))
        }
    }
}

/// A container by CRI ID that runs (NotFound / FailedPrecondition naming it otherwise).
fn running_container(cri: &CriRuntime, id: &str) -> Result<String, Status> {
    let rec = cri.rt.cri_container(id).map_err(status)?;
    if rec.state != State::Running {
        return Err(Status::failed_precondition(format!("container {} is not running", rec.id)));
    }
    Ok(rec.id)
}

fn io_options(stdin: bool, stdout: bool, stderr: bool, tty: bool) -> Result<IoOptions, Status> {
    if !(stdin || stdout || stderr) {
        return Err(Status::invalid_argument("one of stdin, stdout or stderr must be set"));
    }
    if tty && stderr {
        return Err(Status::invalid_argument("tty and stderr cannot both be set (a terminal merges them)"));
    }
    Ok(IoOptions { stdin, stdout, stderr, tty })
}

fn url(cri: &CriRuntime, p: Pending) -> Result<String, Status> {
    cri.streams.register(p).map_err(|e| match e {
        StreamError::TooMany => Status::resource_exhausted(e.to_string()),
        StreamError::Random(_) => Status::internal(e.to_string()),
    })
}

pub(super) async fn exec(cri: &CriRuntime, r: pb::ExecRequest) -> Rpc<pb::ExecResponse> {
    if r.cmd.is_empty() {
        return Err(Status::invalid_argument("cmd is required"));
    }
    let io = io_options(r.stdin, r.stdout, r.stderr, r.tty)?;
    let container = running_container(cri, &r.container_id)?;
    Ok(pb::ExecResponse { url: url(cri, Pending::Exec { container, cmd: r.cmd, io })? })
}

pub(super) async fn attach(cri: &CriRuntime, r: pb::AttachRequest) -> Rpc<pb::AttachResponse> {
    let io = io_options(r.stdin, r.stdout, r.stderr, r.tty)?;
    let container = running_container(cri, &r.container_id)?;
    Ok(pb::AttachResponse { url: url(cri, Pending::Attach { container, io })? })
}

pub(super) async fn port_forward(cri: &CriRuntime, r: pb::PortForwardRequest) -> Rpc<pb::PortForwardResponse> {
    let sb = cri.rt.sandbox(&r.pod_sandbox_id).map_err(status)?;
    if sb.state != State::Running {
        return Err(Status::failed_precondition(format!("pod sandbox {} is not ready", sb.id)));
    }
    if let Some(p) = r.port.iter().find(|p| !(1..=65535).contains(*p)) {
        return Err(Status::invalid_argument(format!("port {p} is not a TCP port (1-65535)")));
    }
    let ports = r.port.iter().map(|&p| p as u16).collect();
    Ok(pb::PortForwardResponse { url: url(cri, Pending::PortForward { sandbox: sb.id, ports })? })
}
