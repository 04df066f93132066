//! Running one plugin as the CNI spec says: the command and the container in `CNI_*`
//! variables, the network config on stdin, a result (or an error object) on stdout.

use super::CniError;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long one plugin may take before it is killed (a hung plugin must not hang the RPC).
pub const PLUGIN_TIMEOUT: Duration = Duration::from_secs(60);

/// One plugin call.
pub struct Call<'a> {
    /// `ADD`, `DEL` or `CHECK`.
    pub command: &'a str,
    pub container_id: &'a str,
    /// The network namespace's path; empty is allowed for DEL (the namespace is gone).
    pub netns: &'a str,
    pub ifname: &'a str,
    /// `CNI_ARGS`: `K=V;K=V`.
    pub args: &'a str,
    /// `CNI_PATH`: where plugins (and the IPAM plugins they delegate to) are.
    pub path: &'a [PathBuf],
}

/// Runs plugin `exe` (of type `ty`) with `conf` on stdin; its result, `Value::Null` for an
/// empty answer (DEL and CHECK print nothing).
pub async fn invoke(exe: &Path, ty: &str, call: &Call<'_>, conf: &Value) -> Result<Value, CniError> {
    use tokio::io::AsyncWriteExt;
    let fail = |msg: String| CniError::Plugin { plugin: ty.to_string(), command: call.command.to_string(), msg };
    let cni_path = std::env::join_paths(call.path).map_err(|e| fail(format!("CNI_PATH: {e}")))?;
    let mut cmd = tokio::process::Command::new(exe);
    cmd.env("CNI_COMMAND", call.command)
        .env("CNI_CONTAINERID", call.container_id)
        .env("CNI_NETNS", call.netns)
        .env("CNI_IFNAME", call.ifname)
        .env("CNI_ARGS", call.args)
        .env("CNI_PATH", cni_path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| fail(format!("cannot run {}: {e}", exe.display())))?;
    let input = serde_json::to_vec(conf).map_err(|e| fail(format!("encoding its config: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A plugin that exits without reading its config fails below with its own message.
        if let Err(e) = stdin.write_all(&input).await {
            tracing::debug!(plugin = ty, error = %e, "writing the CNI config to the plugin");
        }
    }
    let out = match tokio::time::timeout(PLUGIN_TIMEOUT, child.wait_with_output()).await {
        Ok(r) => r.map_err(|e| fail(format!("waiting for {}: {e}", exe.display())))?,
        // Dropping the future kills the plugin (kill_on_drop).
        Err(_) => return Err(fail(format!("no answer in {} s, killed", PLUGIN_TIMEOUT.as_secs()))),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(fail(error_message(&stdout, &stderr, out.status)));
    }
    if !stderr.trim().is_empty() {
        tracing::debug!(plugin = ty, command = call.command, stderr = %stderr.trim(), "CNI plugin stderr");
    }
    if stdout.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&stdout).map_err(|e| fail(format!("its answer is not JSON ({e}): {}", stdout.trim())))
}

/// The message of a failed plugin: its error object's `msg` and `details` (and `code`), or
/// its stderr when it printed none.
fn error_message(stdout: &str, stderr: &str, status: std::process::ExitStatus) -> String {
    if let Ok(Value::Object(e)) = serde_json::from_str::<Value>(stdout) {
        if let Some(msg) = e.get("msg").and_then(Value::as_str) {
            let mut m = msg.to_string();
            if let Some(d) = e.get("details").and_then(Value::as_str).filter(|d| !d.is_empty()) {
                m = format!("{m}: {d}");
            }
            if let Some(c) = e.get("code").and_then(Value::as_u64) {
                m = format!("{m} (CNI error code {c})");
            }
            return m;
        }
    }
    let text = if stderr.trim().is_empty() { stdout.trim() } else { stderr.trim() };
    if text.is_empty() {
        format!("exited with {status} and no message")
    } else {
        format!("{text} ({status})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_objects_and_plain_stderr() {
        use std::os::unix::process::ExitStatusExt;
        let st = std::process::ExitStatus::from_raw(1 << 8);
        let m = error_message(r#"{"cniVersion":"1.0.0","code":7,"msg":"no IP","details":"range full"}"#, "", st);
        assert_eq!(m, "no IP: range full (CNI error code 7)");
        assert!(error_message("", "boom\n", st).starts_with("boom ("));
        assert!(error_message("", "", st).contains("no message"));
    }
}
