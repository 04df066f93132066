//! What the runtime needs of the host, behind small traits chosen once (`Host::real` in
//! `daemon.rs`): cgroups ([`CgroupOps`]), the firewall and links ([`Firewall`], [`Links`]),
//! and launching a container's shim ([`Launcher`]). Unit tests build the runtime on fakes
//! (`runtime/fakes.rs`) to make any step fail and check that nothing is left behind.

use super::{Result, RuntimeError};
use crate::cgroups::{CgroupOps, Cgroups};
use crate::network::seam::{Firewall, Kernel, Links, Nft};
use crate::shim::StartReport;
use futures::future::BoxFuture;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Starts the shim of the container whose directory (with its launch spec) is `dir`, and
/// returns its start report.
pub trait Launcher: Send + Sync {
    fn launch(&self, dir: &Path) -> BoxFuture<'static, Result<StartReport>>;
}

/// The runtime's handles on the host.
#[derive(Clone)]
pub struct Host {
    pub cgroups: Arc<dyn CgroupOps>,
    pub firewall: Arc<dyn Firewall>,
    pub links: Arc<dyn Links>,
    pub launcher: Arc<dyn Launcher>,
}

impl Host {
    /// The real host: cgroupfs, `nft`, rtnetlink, `agent-shim shim`.
    pub fn real(cgroups: Cgroups) -> Host {
        Host {
            cgroups: Arc::new(cgroups),
            firewall: Arc::new(Nft),
            links: Arc::new(Kernel),
            launcher: Arc::new(ShimProcess),
        }
    }
}

/// `agent-shim shim DIR` (or agentd re-executed: `shim::program`), which prints the start report.
pub struct ShimProcess;

impl Launcher for ShimProcess {
    fn launch(&self, dir: &Path) -> BoxFuture<'static, Result<StartReport>> {
        let dir: PathBuf = dir.to_path_buf();
        Box::pin(async move {
            let out = crate::shim::program::command("shim")
                .arg(&dir)
                .stdin(std::process::Stdio::null())
                .stderr(std::process::Stdio::inherit())
                .output()
                .await
                .map_err(|err| RuntimeError::Io { what: "run shim for", path: dir.clone(), err })?;
            StartReport::decode(&out.stdout).map_err(|e| {
                RuntimeError::Internal(format!(
                    "shim for {} gave no start report ({e}; exit {:?}): {}",
                    dir.display(),
                    out.status.code(),
                    String::from_utf8_lossy(&out.stdout)
                ))
            })
        })
    }
}
