//! ExecSync, and the streaming Exec, Attach and PortForward (not served yet: they need
//! kubelet's streaming server).

use super::{unimplemented, CriRuntime, Rpc};
use crate::api::convert::status;
use crate::runtime::{ExecRequest, OutputChunk};
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

pub(super) async fn exec(_: &CriRuntime, _: pb::ExecRequest) -> Rpc<pb::ExecResponse> {
    Err(unimplemented("streaming Exec", "use ExecSync, or agentctl exec"))
}

pub(super) async fn attach(_: &CriRuntime, _: pb::AttachRequest) -> Rpc<pb::AttachResponse> {
    Err(unimplemented("streaming Attach", "use agentctl attach"))
}

pub(super) async fn port_forward(_: &CriRuntime, _: pb::PortForwardRequest) -> Rpc<pb::PortForwardResponse> {
    Err(unimplemented("PortForward", "publish the port on the sandbox (hostPort)"))
}
