//! `run`/`create`'s cgroup flags beyond the limits `update` shares (docker's names): swappiness,
//! the OOM killer, realtime budgets, per-device block I/O limits, device cgroup rules, the
//! cgroup parent and namespace. Sent as given: the agent parses and checks them (units,
//! ranges, block devices), naming the bad value.

use agent_proto::v1 as pb;
use clap::{Args, ValueEnum};

/// `--cgroupns`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CgroupNs {
    /// A cgroup namespace of its own, rooted at its cgroup (the default here)
    Private,
    /// The host's cgroup namespace (admin role by default)
    Host,
}

#[derive(Args, Clone, Default)]
pub struct CgroupFlags {
    /// Tune container memory swappiness (0 to 100; -1: the kernel's) (cgroup v1)
    #[arg(long = "memory-swappiness", allow_hyphen_values = true, value_name = "INT")]
    pub memory_swappiness: Option<i64>,
    /// Disable OOM Killer (cgroup v1)
    #[arg(long = "oom-kill-disable")]
    pub oom_kill_disable: bool,
    /// Limit CPU real-time period in microseconds
    #[arg(long = "cpu-rt-period", value_name = "INT")]
    pub cpu_rt_period: Option<i64>,
    /// Limit CPU real-time runtime in microseconds
    #[arg(long = "cpu-rt-runtime", value_name = "INT")]
    pub cpu_rt_runtime: Option<i64>,
    /// Limit read rate (bytes per second) from a device (PATH:RATE, e.g. /dev/vda:10mb)
    #[arg(long = "device-read-bps", value_name = "PATH:RATE")]
    pub device_read_bps: Vec<String>,
    /// Limit write rate (bytes per second) to a device (PATH:RATE)
    #[arg(long = "device-write-bps", value_name = "PATH:RATE")]
    pub device_write_bps: Vec<String>,
    /// Limit read rate (IO per second) from a device (PATH:N)
    #[arg(long = "device-read-iops", value_name = "PATH:N")]
    pub device_read_iops: Vec<String>,
    /// Limit write rate (IO per second) to a device (PATH:N)
    #[arg(long = "device-write-iops", value_name = "PATH:N")]
    pub device_write_iops: Vec<String>,
    /// Block IO weight (relative device weight, PATH:WEIGHT with WEIGHT 10-1000)
    #[arg(long = "blkio-weight-device", value_name = "PATH:WEIGHT")]
    pub blkio_weight_device: Vec<String>,
    /// Add a rule to the cgroup allowed devices list ('c|b|a MAJOR:MINOR|* rwm')
    #[arg(long = "device-cgroup-rule", value_name = "RULE")]
    pub device_cgroup_rule: Vec<String>,
    /// Optional parent cgroup for the container (relative: below the agent's; /absolute:
    /// from the hierarchy's root)
    #[arg(long = "cgroup-parent", value_name = "PATH")]
    pub cgroup_parent: Option<String>,
    /// Cgroup namespace to use: private (the default here) or host
    #[arg(long, value_enum)]
    pub cgroupns: Option<CgroupNs>,
}

impl CgroupFlags {
    /// Puts the flags into `spec` (its resources made if missing).
    pub fn apply(&self, spec: &mut pb::ContainerSpec) {
        let r = spec.resources.get_or_insert_with(Default::default);
        r.memory_swappiness = self.memory_swappiness;
        r.oom_kill_disable = self.oom_kill_disable;
        r.cpu_rt_period = self.cpu_rt_period.unwrap_or(0);
        r.cpu_rt_runtime = self.cpu_rt_runtime.unwrap_or(0);
        r.device_read_bps = self.device_read_bps.clone();
        r.device_write_bps = self.device_write_bps.clone();
        r.device_read_iops = self.device_read_iops.clone();
        r.device_write_iops = self.device_write_iops.clone();
        r.blkio_weight_device = self.blkio_weight_device.clone();
        spec.device_cgroup_rules = self.device_cgroup_rule.clone();
        spec.cgroup_parent = self.cgroup_parent.clone().unwrap_or_default();
        spec.cgroupns = match self.cgroupns {
            Some(CgroupNs::Private) => "private".into(),
            Some(CgroupNs::Host) => "host".into(),
            None => String::new(),
        };
    }
}
