//! A pod's network from CNI plugins (`[cri] cni_conf_dir` / `cni_bin_dir`): the sandbox's
//! infra container gets a namespace of its own with only loopback (network `none`), and
//! the plugins wire it once it runs (ADD on `/proc/<infra pid>/ns/net`); DEL before the
//! infra process stops, or from the cached result with no namespace when it is gone (also
//! after an agent restart). Without CNI config, sandboxes use our own bridge network.

use super::sandbox::{CriMeta, SandboxSpec};
use super::{ContainerRecord, Result, Runtime, RuntimeError, State};
use crate::network::cni::{Attach, Cni, CniError, PortMapping};

impl From<CniError> for RuntimeError {
    fn from(e: CniError) -> Self {
        match e {
            e @ (CniError::NotReady(_) | CniError::Config(_)) => RuntimeError::FailedPrecondition(e.to_string()),
            e @ (CniError::Plugin { .. } | CniError::Cache(_)) => RuntimeError::Internal(e.to_string()),
        }
    }
}

/// The network of a pod: ours, or CNI's.
pub(super) enum PodNet<'a> {
    Ours,
    Cni(&'a Cni),
}

impl Runtime {
    /// The CNI client, when configured.
    pub fn cni(&self) -> Option<&Cni> {
        self.cfg.cni.as_ref()
    }

    /// Which network a new sandbox gets; with CNI, its configuration and plugins must be
    /// there before anything is created.
    pub(super) fn pod_net_for(&self, s: &SandboxSpec) -> Result<PodNet<'_>> {
        match self.cni() {
            Some(c) if !s.host_network => {
                c.ready()?;
                Ok(PodNet::Cni(c))
            }
            _ => Ok(PodNet::Ours),
        }
    }

    /// ADD for a started sandbox; on failure the plugins have undone their part (the
    /// caller removes the sandbox).
    pub(super) async fn pod_net_up(&self, cni: &Cni, rec: &ContainerRecord, s: &SandboxSpec) -> Result<()> {
        let port_mappings = port_mappings(&s.ports)?;
        let a = Attach {
            container_id: rec.id.clone(),
            netns: format!("/proc/{}/ns/net", rec.pid),
            args: k8s_args(&s.meta, &rec.id),
            port_mappings,
        };
        let r = cni.add(&a).await?;
        tracing::info!(sandbox = %rec.id, ips = ?crate::network::cni::result::pod_ips(&r), "pod network added by CNI");
        Ok(())
    }

    /// DEL of a sandbox's CNI attachment, if it has one (idempotent).
    pub(super) async fn pod_net_down(&self, sb: &ContainerRecord) -> Result<()> {
        let Some(cni) = self.cni() else { return Ok(()) };
        if !cni.attached(&sb.id)? {
            return Ok(());
        }
        cni.del(&sb.id, &live_netns(sb)).await?;
        tracing::info!(sandbox = %sb.id, "pod network deleted by CNI");
        Ok(())
    }

    /// A sandbox's addresses: from its CNI result, else its address on our bridge.
    pub fn pod_ips(&self, sb: &ContainerRecord) -> Result<Vec<String>> {
        if let Some(cni) = self.cni() {
            let ips = cni.pod_ips(&sb.id)?;
            if !ips.is_empty() {
                return Ok(ips.iter().map(ToString::to_string).collect());
            }
        }
        Ok(if sb.ip.is_empty() { vec![] } else { vec![sb.ip.clone()] })
    }

    /// CHECK of a running sandbox's CNI attachment: `None` when there is nothing to check
    /// (no CNI, not attached, not running, or CHECK not allowed by the config's version).
    pub async fn check_pod_network(&self, sb: &ContainerRecord) -> Option<std::result::Result<(), String>> {
        let cni = self.cni()?;
        let netns = live_netns(sb);
        if netns.is_empty() {
            return None;
        }
        match cni.check(&sb.id, &netns).await {
            Ok(true) => Some(Ok(())),
            Ok(false) => None,
            Err(e) => Some(Err(e.to_string())),
        }
    }
}

/// The namespace of a sandbox whose infra process still runs; empty otherwise.
fn live_netns(sb: &ContainerRecord) -> String {
    if sb.state == State::Running && sb.pid > 0 && crate::isolation::alive(sb.pid, sb.pid_start) {
        format!("/proc/{}/ns/net", sb.pid)
    } else {
        String::new()
    }
}

/// `CNI_ARGS` as kubelet's runtimes pass them (plugins such as host-local ignore them).
fn k8s_args(m: &CriMeta, id: &str) -> Vec<(String, String)> {
    vec![
        ("K8S_POD_NAMESPACE".into(), m.namespace.clone()),
        ("K8S_POD_NAME".into(), m.name.clone()),
        ("K8S_POD_INFRA_CONTAINER_ID".into(), id.to_string()),
        ("K8S_POD_UID".into(), m.uid.clone()),
    ]
}

/// The pod's `[hostIP:]hostPort:containerPort/proto` specs as portmap's mappings.
fn port_mappings(specs: &[String]) -> Result<Vec<PortMapping>> {
    let mut out = Vec::new();
    for s in specs {
        for p in crate::network::ports::parse(s)? {
            out.push(PortMapping {
                host_port: p.host_port,
                container_port: p.container_port,
                protocol: p.proto.clone(),
                host_ip: p.host_ip.map(|i| i.to_string()).unwrap_or_default(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_specs_become_mappings() {
        let m = port_mappings(&["8080:80/tcp".into(), "127.0.0.1:5353:53/udp".into()]).unwrap();
        assert_eq!(
            m,
            [
                PortMapping { host_port: 8080, container_port: 80, protocol: "tcp".into(), host_ip: String::new() },
                PortMapping {
                    host_port: 5353,
                    container_port: 53,
                    protocol: "udp".into(),
                    host_ip: "127.0.0.1".into()
                },
            ]
        );
        let e = port_mappings(&["x:80".into()]).unwrap_err().to_string();
        assert!(e.contains("\"x:80\""), "{e}");
    }
}
