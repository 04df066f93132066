//! Test doubles of the host seams (`runtime/host.rs`): they keep what exists in memory and
//! fail on the operations a test names, so create/start/recover can be driven to fail at any
//! step without root, and what is left behind can be checked.

use super::host::{Host, Launcher};
use super::{Result, RuntimeError};
use crate::cgroups::stats::Usage;
use crate::cgroups::{CgroupError, CgroupHost, CgroupOps, Resources};
use crate::network::attach::BridgeAttach;
use crate::network::seam::{Firewall, Links};
use crate::network::{NetError, Subnet};
use crate::shim::StartReport;
use futures::future::BoxFuture;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The operations that fail, by name (see [`FakeHost::STEPS`]).
#[derive(Default)]
pub struct Faults(Mutex<BTreeSet<&'static str>>);

impl Faults {
    pub fn set(&self, step: &'static str) {
        self.0.lock().unwrap().insert(step);
    }
    pub fn clear(&self) {
        self.0.lock().unwrap().clear();
    }
    fn hit(&self, step: &'static str) -> bool {
        self.0.lock().unwrap().contains(step)
    }
}

/// Everything the fakes hold, shared with the test.
pub struct FakeHost {
    pub faults: Faults,
    pub cgroups: Mutex<BTreeSet<String>>,
    pub table: Mutex<Option<String>>,
    pub bridges: Mutex<BTreeSet<String>>,
    /// The process the launcher reports as a started container's shim (a real child, so
    /// the runtime's exit monitor has something to watch).
    pub shim: Mutex<Option<std::process::Child>>,
    cg_host: CgroupHost,
}

impl FakeHost {
    /// Every step of a start that touches the host, in order.
    pub const STEPS: &'static [&'static str] = &[
        "links.bridge",
        "cgroup.create",
        "cgroup.create.shim",
        "cgroup.apply",
        "cgroup.devices",
        "firewall.apply",
        "launch",
        "launch.report",
    ];

    pub fn new() -> Arc<FakeHost> {
        let mi = "40 1 0:26 / /fake/cgroup rw - cgroup2 cgroup2 rw\n";
        let cg_host = CgroupHost::from_mountinfo(mi, |_| Some("cpu memory pids".into())).expect("fake cgroup host");
        Arc::new(FakeHost {
            faults: Faults::default(),
            cgroups: Mutex::new(BTreeSet::new()),
            table: Mutex::new(None),
            bridges: Mutex::new(BTreeSet::new()),
            shim: Mutex::new(None),
            cg_host,
        })
    }

    /// The runtime's host handles, all backed by `self`.
    pub fn host(self: &Arc<Self>) -> Host {
        Host {
            cgroups: Arc::new(Arc::clone(self)) as Arc<dyn CgroupOps>,
            firewall: Arc::new(Arc::clone(self)) as Arc<dyn Firewall>,
            links: Arc::new(Arc::clone(self)) as Arc<dyn Links>,
            launcher: Arc::new(Arc::clone(self)) as Arc<dyn Launcher>,
        }
    }

    pub fn kill_shim(&self) {
        if let Some(mut c) = self.shim.lock().unwrap().take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn fail(&self, step: &'static str) -> bool {
        self.faults.hit(step)
    }
}

fn cg_err(step: &str) -> CgroupError {
    CgroupError::Io { path: PathBuf::from(format!("/fake/{step}")), err: std::io::Error::other("injected") }
}

impl CgroupOps for Arc<FakeHost> {
    fn host(&self) -> &CgroupHost {
        &self.cg_host
    }
    fn relative(&self, id: &str) -> String {
        format!("/fake/{id}")
    }
    fn dirs(&self, id: &str) -> Vec<PathBuf> {
        vec![PathBuf::from(format!("/fake/cgroup/{id}"))]
    }
    fn create(&self, id: &str) -> std::result::Result<Vec<PathBuf>, CgroupError> {
        let shim = id.rsplit('/').next().is_some_and(|l| l.starts_with("shim-"));
        if self.fail(if shim { "cgroup.create.shim" } else { "cgroup.create" }) {
            return Err(cg_err("create"));
        }
        self.cgroups.lock().unwrap().insert(id.to_string());
        Ok(self.dirs(id))
    }
    fn remove(&self, id: &str) -> std::result::Result<(), CgroupError> {
        self.cgroups.lock().unwrap().remove(id);
        Ok(())
    }
    fn remove_parent(&self) {}
    fn children(&self) -> Vec<String> {
        let set = self.cgroups.lock().unwrap();
        let tops: BTreeSet<String> = set.iter().filter_map(|c| c.split('/').next().map(String::from)).collect();
        tops.into_iter().collect()
    }
    fn has_device_controller(&self) -> bool {
        true
    }
    fn restrict_devices(&self, _id: &str, _allow: Option<&[String]>) -> std::result::Result<(), CgroupError> {
        if self.fail("cgroup.devices") {
            return Err(cg_err("devices"));
        }
        Ok(())
    }
    fn oom_killed(&self, _id: &str) -> bool {
        false
    }
    fn kill_all(&self, _id: &str) {}
    fn apply(&self, _id: &str, _r: &Resources) -> std::result::Result<(), CgroupError> {
        if self.fail("cgroup.apply") {
            return Err(cg_err("apply"));
        }
        Ok(())
    }
    fn check_supported(&self, _r: &Resources) -> std::result::Result<(), CgroupError> {
        Ok(())
    }
    fn read_back(&self, _id: &str) -> Resources {
        Resources::default()
    }
    fn usage(&self, _id: &str) -> Usage {
        Usage::default()
    }
    fn freeze(&self, _id: &str, _frozen: bool) -> std::result::Result<(), CgroupError> {
        if self.fail("cgroup.freeze") {
            return Err(cg_err("freeze"));
        }
        Ok(())
    }
    fn is_frozen(&self, _id: &str) -> bool {
        false
    }
    fn pids(&self, _id: &str) -> Vec<i32> {
        vec![]
    }
    fn first_missing(&self, parent: &str) -> Option<String> {
        let set = self.cgroups.lock().unwrap();
        (!set.iter().any(|c| c.starts_with(&format!("{parent}/")))).then(|| parent.to_string())
    }
    fn remove_parent_chain(&self, _parent: &str, _made: &str) {}
}

impl Firewall for Arc<FakeHost> {
    fn apply(&self, ruleset: &str) -> std::result::Result<(), NetError> {
        if self.fail("firewall.apply") {
            return Err(NetError::Command { cmd: "fake nft".into(), msg: "injected".into() });
        }
        *self.table.lock().unwrap() = Some(ruleset.to_string());
        Ok(())
    }
    fn delete_table(&self, _table: &str) {
        *self.table.lock().unwrap() = None;
    }
    fn ruleset(&self, _table: &str) -> std::result::Result<String, NetError> {
        Ok(self.table.lock().unwrap().clone().unwrap_or_default())
    }
}

impl Links for Arc<FakeHost> {
    fn ensure_bridge(&self, bridge: &str, _subnet: &Subnet) -> std::result::Result<(), NetError> {
        if self.fail("links.bridge") {
            return Err(NetError::Command { cmd: "fake netlink".into(), msg: "injected".into() });
        }
        self.bridges.lock().unwrap().insert(bridge.to_string());
        Ok(())
    }
    fn delete_link(&self, dev: &str) {
        self.bridges.lock().unwrap().remove(dev);
    }
    fn link_exists(&self, dev: &str) -> bool {
        self.bridges.lock().unwrap().contains(dev)
    }
    fn host_routes(&self) -> std::result::Result<Vec<(String, Subnet)>, NetError> {
        Ok(vec![])
    }
    fn attach_live(&self, _pid: i32, _a: &BridgeAttach) -> std::result::Result<(), NetError> {
        Ok(())
    }
}

impl Launcher for Arc<FakeHost> {
    fn launch(&self, dir: &Path) -> BoxFuture<'static, Result<StartReport>> {
        let res = if self.fail("launch") {
            Err(RuntimeError::Internal(format!("injected: shim for {} did not start", dir.display())))
        } else if self.fail("launch.report") {
            Ok(StartReport {
                shim_pid: 0,
                shim_start: 0,
                pid: 0,
                pid_start: 0,
                error: Some("exec: \"nope\": executable file not found".into()),
                exit_code: 127,
            })
        } else {
            match std::process::Command::new("sleep").arg("30").spawn() {
                Ok(child) => {
                    let pid = child.id() as i32;
                    let start = crate::isolation::start_time(pid).unwrap_or(0);
                    *self.shim.lock().unwrap() = Some(child);
                    Ok(StartReport {
                        shim_pid: pid,
                        shim_start: start,
                        pid,
                        pid_start: start,
                        error: None,
                        exit_code: 0,
                    })
                }
                Err(e) => Err(RuntimeError::Internal(format!("spawn the stand-in shim: {e}"))),
            }
        };
        Box::pin(async move { res })
    }
}
