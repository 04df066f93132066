//! Resource limits of a container's cgroup, written for v1 or v2 and read back.

use super::blkio::BlkioDevices;
use super::{CgroupError, Cgroups, Layout};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Limits with docker's meanings; `None` leaves the kernel default.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    /// CFS quota and period, microseconds.
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    pub cpu_shares: Option<u64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    /// Bytes.
    pub memory: Option<i64>,
    pub memory_reservation: Option<i64>,
    /// Memory plus swap, bytes; -1 unlimited.
    pub memory_swap: Option<i64>,
    pub pids_limit: Option<i64>,
    pub blkio_weight: Option<u16>,
    pub oom_score_adj: Option<i32>,
    /// `--memory-swappiness` 0-100 (v1 only).
    #[serde(default)]
    pub memory_swappiness: Option<u8>,
    /// `--oom-kill-disable` (v1 only).
    #[serde(default)]
    pub oom_kill_disable: Option<bool>,
    /// `--cpu-rt-period` / `--cpu-rt-runtime`, microseconds (v1 with CONFIG_RT_GROUP_SCHED).
    #[serde(default)]
    pub cpu_rt_period: Option<u64>,
    #[serde(default)]
    pub cpu_rt_runtime: Option<i64>,
    /// `--device-{read,write}-{bps,iops}`, `--blkio-weight-device`.
    #[serde(default, skip_serializing_if = "BlkioDevices::is_empty")]
    pub blkio_devices: BlkioDevices,
}

/// The smallest memory limit accepted (as Docker's).
pub const MIN_MEMORY: i64 = 6 * 1024 * 1024;

/// Why a set of limits was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct InvalidLimit(pub String);

fn cpu_list_ok(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.split(',').all(|part| {
            let mut it = part.splitn(2, '-');
            let a = it.next().and_then(|x| x.trim().parse::<usize>().ok());
            let b = it.next().map(|x| x.trim().parse::<usize>().ok());
            match (a, b) {
                (Some(a), None) => a < max,
                (Some(a), Some(Some(b))) => a <= b && b < max,
                _ => false,
            }
        })
}

impl Resources {
    /// Checks the limits against docker's rules and this host (`cpus` online CPUs).
    pub fn validate(&self, cpus: usize) -> Result<(), InvalidLimit> {
        let bad = |m: String| Err(InvalidLimit(m));
        if let Some(m) = self.memory {
            if m < MIN_MEMORY {
                return bad(format!("memory limit {m} bytes is below the 6 MiB minimum"));
            }
        }
        if let (Some(m), Some(r)) = (self.memory, self.memory_reservation) {
            if r > m {
                return bad(format!("memory reservation {r} must not exceed the memory limit {m}"));
            }
        }
        if let Some(s) = self.memory_swap {
            match self.memory {
                None if s != -1 => return bad("--memory-swap needs --memory".into()),
                Some(m) if s != -1 && s < m => {
                    return bad(format!("memory+swap limit {s} must be at least the memory limit {m}"))
                }
                _ => {}
            }
        }
        if let Some(p) = self.cpu_period {
            if !(1000..=1_000_000).contains(&p) {
                return bad(format!("cpu period {p} µs is outside 1000-1000000"));
            }
        }
        if let Some(q) = self.cpu_quota {
            if q != -1 && q < 1000 {
                return bad(format!("cpu quota {q} µs is below the 1000 µs minimum"));
            }
            let period = self.cpu_period.unwrap_or(100_000) as i64;
            if q > period * cpus as i64 {
                return bad(format!(
                    "cpu quota {q} µs per {period} µs asks for {:.2} CPUs; this host has {cpus}",
                    q as f64 / period as f64
                ));
            }
        }
        if let Some(s) = self.cpu_shares {
            if !(2..=262_144).contains(&s) {
                return bad(format!("cpu shares {s} is outside 2-262144"));
            }
        }
        if let Some(c) = &self.cpuset_cpus {
            if !cpu_list_ok(c, cpus) {
                return bad(format!(
                    "cpuset cpus {c:?} is not a list of CPUs 0-{} (e.g. 0-1,3)",
                    cpus.saturating_sub(1)
                ));
            }
        }
        if let Some(m) = &self.cpuset_mems {
            if !cpu_list_ok(m, 1024) {
                return bad(format!("cpuset mems {m:?} is not a list of memory nodes (e.g. 0)"));
            }
        }
        if let Some(w) = self.blkio_weight {
            if !(10..=1000).contains(&w) {
                return bad(format!("blkio weight {w} is outside 10-1000"));
            }
        }
        if let Some(o) = self.oom_score_adj {
            if o < 0 {
                return bad(format!(
                    "oom score adjustment {o} is negative: that needs CAP_SYS_RESOURCE, which this agent does not have"
                ));
            }
            if o > 1000 {
                return bad(format!("oom score adjustment {o} is above 1000"));
            }
        }
        if let Some(s) = self.memory_swappiness {
            if s > 100 {
                return bad(format!("invalid --memory-swappiness {s}: must be between 0 and 100"));
            }
        }
        if let Some(p) = self.cpu_rt_period {
            if !(1..=1_000_000).contains(&p) {
                return bad(format!("invalid --cpu-rt-period {p}: must be 1-1000000 µs"));
            }
        }
        if let Some(r) = self.cpu_rt_runtime {
            let period = self.cpu_rt_period.unwrap_or(1_000_000);
            if r < 0 {
                return bad(format!("invalid --cpu-rt-runtime {r}: must not be negative"));
            }
            if r as u64 > period {
                return bad(format!("--cpu-rt-runtime {r} cannot be higher than --cpu-rt-period {period} µs"));
            }
        }
        Ok(())
    }

    /// The limits only a create sets (`update` refuses them), named by their flag.
    pub fn create_only(&self) -> Option<&'static str> {
        let b = &self.blkio_devices;
        [
            (self.memory_swappiness.is_some(), "--memory-swappiness"),
            (self.oom_kill_disable.is_some(), "--oom-kill-disable"),
            (self.cpu_rt_period.is_some(), "--cpu-rt-period"),
            (self.cpu_rt_runtime.is_some(), "--cpu-rt-runtime"),
            (!b.read_bps.is_empty(), "--device-read-bps"),
            (!b.write_bps.is_empty(), "--device-write-bps"),
            (!b.read_iops.is_empty(), "--device-read-iops"),
            (!b.write_iops.is_empty(), "--device-write-iops"),
            (!b.weight.is_empty(), "--blkio-weight-device"),
        ]
        .into_iter()
        .find_map(|(set, flag)| set.then_some(flag))
    }

    /// `self` with the fields of `upd` that are set (the create-only ones stay).
    pub fn merged(&self, upd: &Resources) -> Resources {
        macro_rules! pick {
            ($($f:ident),*) => { Resources { $($f: upd.$f.clone().or_else(|| self.$f.clone()),)* ..self.clone() } };
        }
        pick!(
            cpu_quota,
            cpu_period,
            cpu_shares,
            cpuset_cpus,
            cpuset_mems,
            memory,
            memory_reservation,
            memory_swap,
            pids_limit,
            blkio_weight,
            oom_score_adj
        )
    }
}

/// One file write: (controller, v1 file, v2 file, value).
struct Write {
    controller: &'static str,
    file: &'static str,
    value: String,
}

fn writes(r: &Resources, layout: Layout) -> Vec<Write> {
    let w = |controller, file, value: String| Write { controller, file, value };
    let mut out = Vec::new();
    let v2 = layout == Layout::V2;
    if r.cpu_quota.is_some() || r.cpu_period.is_some() {
        let period = r.cpu_period.unwrap_or(100_000);
        let quota = r.cpu_quota.unwrap_or(-1);
        if v2 {
            let q = if quota < 0 { "max".to_string() } else { quota.to_string() };
            out.push(w("cpu", "cpu.max", format!("{q} {period}")));
        } else {
            out.push(w("cpu", "cpu.cfs_period_us", period.to_string()));
            out.push(w("cpu", "cpu.cfs_quota_us", quota.to_string()));
        }
    }
    if let Some(s) = r.cpu_shares {
        if v2 {
            // The conversion runc and the kernel docs use: [2, 262144] -> [1, 10000].
            out.push(w("cpu", "cpu.weight", (1 + ((s.clamp(2, 262_144) - 2) * 9999) / 262_142).to_string()));
        } else {
            out.push(w("cpu", "cpu.shares", s.to_string()));
        }
    }
    if let Some(c) = &r.cpuset_cpus {
        out.push(w("cpuset", "cpuset.cpus", c.clone()));
    }
    if let Some(m) = &r.cpuset_mems {
        out.push(w("cpuset", "cpuset.mems", m.clone()));
    }
    if let Some(res) = r.memory_reservation {
        out.push(w("memory", if v2 { "memory.low" } else { "memory.soft_limit_in_bytes" }, res.to_string()));
    }
    if let Some(m) = r.memory {
        out.push(w("memory", if v2 { "memory.max" } else { "memory.limit_in_bytes" }, m.to_string()));
        // Docker: without --memory-swap, swap may be as large as the memory limit.
        let swap = r.memory_swap.unwrap_or(m * 2);
        if v2 {
            let s = if swap < 0 { "max".to_string() } else { (swap - m).max(0).to_string() };
            out.push(w("memory", "memory.swap.max", s));
        } else {
            out.push(w("memory", "memory.memsw.limit_in_bytes", swap.to_string()));
        }
    }
    if let Some(p) = r.pids_limit {
        let v = if p <= 0 { "max".to_string() } else { p.to_string() };
        out.push(w("pids", "pids.max", v));
    }
    if let Some(b) = r.blkio_weight {
        if v2 {
            out.push(w("io", "io.weight", format!("default {}", b.clamp(1, 10000))));
        } else {
            out.push(w("blkio", "blkio.weight", b.to_string()));
        }
    }
    // v2 has neither (check_supported refuses them there, as docker does).
    if let Some(s) = r.memory_swappiness {
        out.push(w("memory", "memory.swappiness", s.to_string()));
    }
    if r.oom_kill_disable == Some(true) {
        out.push(w("memory", "memory.oom_control", "1".into()));
    }
    if v2 {
        out.extend(super::blkio::v2_writes(&r.blkio_devices).into_iter().map(|(f, v)| w("io", f, v)));
    } else {
        out.extend(super::blkio::v1_writes(&r.blkio_devices).into_iter().map(|(f, v)| w("blkio", f, v)));
    }
    out
}

/// What cgroup v2 cannot do of these limits, said as docker's refusals are.
fn v2_refusal(r: &Resources) -> Option<String> {
    if let Some(s) = r.memory_swappiness {
        return Some(format!(
            "--memory-swappiness {s}: cgroup v2 has no per-cgroup swappiness (docker refuses it on v2 too)"
        ));
    }
    if r.oom_kill_disable == Some(true) {
        return Some(
            "--oom-kill-disable: cgroup v2 cannot disable the OOM killer (docker refuses it on v2 too)".into(),
        );
    }
    None
}

impl Cgroups {
    fn controller_dir(&self, controller: &str, id: &str) -> Option<PathBuf> {
        match self.host.layout {
            Layout::V2 => self.host.hierarchies.first().map(|h| self.path_in(&h.mount_point, id)),
            _ => self.host.hierarchy_of(controller).map(|h| self.path_in(&h.mount_point, id)),
        }
    }

    /// Applies the limits that are set. A controller the kernel lacks is a clear error.
    pub fn apply(&self, id: &str, r: &Resources) -> Result<(), CgroupError> {
        if self.host.layout == Layout::V2 {
            if let Some(why) = v2_refusal(r) {
                return Err(CgroupError::Unsupported(why));
            }
        }
        let mut pending = writes(r, self.host.layout);
        // memory.limit must stay <= memsw.limit at every step (v1): if one order fails,
        // the other one works.
        let mut retried = false;
        while !pending.is_empty() {
            let w = pending.remove(0);
            let dir = self
                .controller_dir(w.controller, id)
                .ok_or_else(|| CgroupError::NoController(format!("{} (no {} controller)", w.file, w.controller)))?;
            let f = dir.join(w.file);
            if !f.exists() {
                return Err(CgroupError::NoController(w.file.to_string()));
            }
            if let Err(e) = std::fs::write(&f, &w.value) {
                let memsw_order = w.file == "memory.limit_in_bytes" || w.file == "memory.memsw.limit_in_bytes";
                if memsw_order && !retried && e.raw_os_error() == Some(libc::EINVAL) && !pending.is_empty() {
                    retried = true;
                    let next = pending.remove(0);
                    pending.insert(0, w);
                    pending.insert(0, next);
                    continue;
                }
                return Err(CgroupError::Limit { file: f, value: w.value, err: e });
            }
        }
        // Last: a refusal puts the ancestors' budgets back, and the cgroup goes on error.
        self.apply_rt(id, r.cpu_rt_period, r.cpu_rt_runtime)
    }

    /// Checks, before anything is created, that every file these limits need exists
    /// (in the instance's parent cgroup, which is created if missing).
    pub fn check_supported(&self, r: &Resources) -> Result<(), CgroupError> {
        if self.host.layout == Layout::V2 {
            if let Some(why) = v2_refusal(r) {
                return Err(CgroupError::Unsupported(why));
            }
        }
        if r.cpu_rt_period.is_some() || r.cpu_rt_runtime.is_some() {
            if let Some(why) = self.rt_unsupported() {
                return Err(CgroupError::Unsupported(why));
            }
        }
        for w in writes(r, self.host.layout) {
            let Some(dir) = self.controller_dir(w.controller, "") else {
                return Err(CgroupError::NoController(format!("{} (no {} controller)", w.file, w.controller)));
            };
            if !dir.exists() {
                std::fs::create_dir_all(&dir).map_err(|err| CgroupError::Io { path: dir.clone(), err })?;
                if self.host.layout != Layout::V2 && w.controller == "cpuset" {
                    super::inherit_cpuset(&dir)?;
                }
            }
            if self.host.layout == Layout::V2 {
                if let Some(h) = self.host.hierarchies.first() {
                    super::enable_subtree(&h.mount_point, &dir, &h.controllers);
                }
            }
            // The root of a v1 hierarchy lacks some files (cpu.cfs_quota_us): look in a
            // child-level directory, the instance's parent.
            if !dir.join(w.file).exists() {
                return Err(CgroupError::NoController(w.file.to_string()));
            }
        }
        if self.host.layout != Layout::V2 {
            self.rt_fits(r.cpu_rt_period, r.cpu_rt_runtime)?;
        }
        Ok(())
    }

    /// Reads the limits back from the kernel.
    pub fn read_back(&self, id: &str) -> Resources {
        let read = |c: &str, f: &str| -> Option<String> {
            let d = self.controller_dir(c, id)?;
            std::fs::read_to_string(d.join(f)).ok().map(|s| s.trim().to_string())
        };
        let num = |c: &str, f: &str| read(c, f).and_then(|s| s.parse::<i64>().ok());
        let unlimited = |v: Option<i64>| v.filter(|&x| x > 0 && x < i64::MAX / 2 && x != 9_223_372_036_854_771_712);
        match self.host.layout {
            Layout::V2 => {
                let cpu = read("cpu", "cpu.max").unwrap_or_default();
                let mut it = cpu.split_whitespace();
                let q = it.next().and_then(|q| q.parse::<i64>().ok());
                let p = it.next().and_then(|p| p.parse::<u64>().ok());
                Resources {
                    cpu_quota: q,
                    cpu_period: p,
                    cpu_shares: None,
                    cpuset_cpus: read("cpuset", "cpuset.cpus").filter(|s| !s.is_empty()),
                    cpuset_mems: read("cpuset", "cpuset.mems").filter(|s| !s.is_empty()),
                    memory: num("memory", "memory.max"),
                    memory_reservation: num("memory", "memory.low").filter(|&x| x > 0),
                    memory_swap: None,
                    pids_limit: num("pids", "pids.max"),
                    blkio_weight: None,
                    oom_score_adj: None,
                    blkio_devices: read("io", "io.max").map(|s| super::blkio::read_io_max(&s)).unwrap_or_default(),
                    ..Default::default()
                }
            }
            _ => Resources {
                cpu_quota: num("cpu", "cpu.cfs_quota_us").filter(|&q| q > 0),
                cpu_period: num("cpu", "cpu.cfs_period_us").map(|p| p as u64),
                cpu_shares: num("cpu", "cpu.shares").map(|s| s as u64),
                cpuset_cpus: read("cpuset", "cpuset.cpus"),
                cpuset_mems: read("cpuset", "cpuset.mems"),
                memory: unlimited(num("memory", "memory.limit_in_bytes")),
                memory_reservation: unlimited(num("memory", "memory.soft_limit_in_bytes")),
                memory_swap: unlimited(num("memory", "memory.memsw.limit_in_bytes")),
                pids_limit: num("pids", "pids.max"),
                blkio_weight: num("blkio", "blkio.weight").map(|w| w as u16),
                oom_score_adj: None,
                memory_swappiness: num("memory", "memory.swappiness").map(|s| s.clamp(0, 100) as u8),
                oom_kill_disable: read("memory", "memory.oom_control")
                    .map(|s| s.lines().any(|l| l.trim() == "oom_kill_disable 1")),
                cpu_rt_period: num("cpu", "cpu.rt_period_us").map(|p| p as u64),
                cpu_rt_runtime: num("cpu", "cpu.rt_runtime_us"),
                blkio_devices: {
                    let lines = |f: &str| read("blkio", f).map(|s| super::blkio::read_lines(&s)).unwrap_or_default();
                    BlkioDevices {
                        read_bps: lines("blkio.throttle.read_bps_device"),
                        write_bps: lines("blkio.throttle.write_bps_device"),
                        read_iops: lines("blkio.throttle.read_iops_device"),
                        write_iops: lines("blkio.throttle.write_iops_device"),
                        weight: lines("blkio.weight_device"),
                    }
                },
            },
        }
    }
}

/// Reads a flat `key value` file (memory.stat, cpu.stat) into pairs.
pub fn flat_keyed(path: &Path) -> Vec<(String, u64)> {
    std::fs::read_to_string(path)
        .map(|s| {
            s.lines()
                .filter_map(|l| {
                    let mut it = l.split_whitespace();
                    Some((it.next()?.to_string(), it.next()?.parse().ok()?))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_value() {
        let r = Resources { memory: Some(10 * 1024), ..Default::default() };
        assert!(r.validate(2).unwrap_err().0.contains("10240 bytes is below the 6 MiB minimum"));
        let r = Resources { oom_score_adj: Some(-5), ..Default::default() };
        assert!(r.validate(2).unwrap_err().0.contains("CAP_SYS_RESOURCE"));
        let r = Resources { cpu_quota: Some(300_000), ..Default::default() };
        assert!(r.validate(2).unwrap_err().0.contains("3.00 CPUs"));
        let r = Resources { cpuset_cpus: Some("0-3".into()), ..Default::default() };
        assert!(r.validate(2).is_err());
        assert!(Resources { cpuset_cpus: Some("0,1".into()), ..Default::default() }.validate(2).is_ok());
        let r = Resources { memory: Some(64 << 20), memory_swap: Some(32 << 20), ..Default::default() };
        assert!(r.validate(2).is_err());
    }

    #[test]
    fn v1_and_v2_files() {
        let r = Resources {
            cpu_quota: Some(50_000),
            memory: Some(64 << 20),
            pids_limit: Some(20),
            cpu_shares: Some(1024),
            ..Default::default()
        };
        let v1: Vec<(String, String)> =
            writes(&r, Layout::Hybrid).into_iter().map(|w| (w.file.to_string(), w.value)).collect();
        assert!(v1.contains(&("cpu.cfs_quota_us".into(), "50000".into())));
        assert!(v1.contains(&("memory.memsw.limit_in_bytes".into(), (128u64 << 20).to_string())));
        assert!(v1.contains(&("pids.max".into(), "20".into())));
        let v2: Vec<(String, String)> =
            writes(&r, Layout::V2).into_iter().map(|w| (w.file.to_string(), w.value)).collect();
        assert!(v2.contains(&("cpu.max".into(), "50000 100000".into())));
        assert!(v2.contains(&("memory.swap.max".into(), (64u64 << 20).to_string())));
        assert!(v2.contains(&("cpu.weight".into(), "39".into())));
    }

    #[test]
    fn applies_to_a_fake_v2_tree() {
        let tree = tempfile::tempdir().unwrap();
        let root = tree.path();
        let mi = format!("40 1 0:26 / {} rw - cgroup2 cgroup2 rw\n", root.display());
        std::fs::write(root.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        let host = super::super::CgroupHost::from_mountinfo(&mi, |p| {
            std::fs::read_to_string(p.join("cgroup.controllers")).ok()
        })
        .unwrap();
        let cg = Cgroups::new(host, "inst");
        cg.create("c1").unwrap();
        for f in ["cpu.max", "memory.max", "memory.swap.max", "pids.max"] {
            std::fs::write(root.join("inst/c1").join(f), "max").unwrap();
        }
        let r = Resources {
            cpu_quota: Some(50_000),
            memory: Some(64 << 20),
            memory_swap: Some(64 << 20),
            pids_limit: Some(20),
            ..Default::default()
        };
        cg.apply("c1", &r).unwrap();
        assert_eq!(std::fs::read_to_string(root.join("inst/c1/memory.swap.max")).unwrap(), "0");
        let back = cg.read_back("c1");
        assert_eq!(
            (back.cpu_quota, back.cpu_period, back.memory, back.pids_limit),
            (Some(50_000), Some(100_000), Some(64 << 20), Some(20))
        );
        // A controller file the kernel lacks is a clear error, not a silent no-op.
        let e = cg.apply("c1", &Resources { cpuset_cpus: Some("0".into()), ..Default::default() }).unwrap_err();
        assert!(e.to_string().contains("cpuset"), "{e}");
    }

    #[test]
    fn v2_writes_io_max_and_io_weight_and_refuses_what_v1_only_has() {
        use crate::cgroups::blkio::{BlkioDevices, DeviceLimit};
        let tree = tempfile::tempdir().unwrap();
        let root = tree.path();
        let mi = format!("40 1 0:26 / {} rw - cgroup2 cgroup2 rw\n", root.display());
        std::fs::write(root.join("cgroup.controllers"), "io memory\n").unwrap();
        let host = super::super::CgroupHost::from_mountinfo(&mi, |p| {
            std::fs::read_to_string(p.join("cgroup.controllers")).ok()
        })
        .unwrap();
        let cg = Cgroups::new(host, "inst");
        cg.create("c1").unwrap();
        for f in ["io.max", "io.weight"] {
            std::fs::write(root.join("inst").join(f), "").unwrap();
            std::fs::write(root.join("inst/c1").join(f), "").unwrap();
        }
        let d = |value| DeviceLimit { path: "/dev/vda".into(), major: 254, minor: 0, value };
        let r = Resources {
            blkio_devices: BlkioDevices { read_bps: vec![d(1 << 20)], write_iops: vec![d(50)], ..Default::default() },
            ..Default::default()
        };
        cg.check_supported(&r).unwrap();
        cg.apply("c1", &r).unwrap();
        assert_eq!(std::fs::read_to_string(root.join("inst/c1/io.max")).unwrap(), "254:0 rbps=1048576 wiops=50");
        let back = cg.read_back("c1");
        assert_eq!((back.blkio_devices.read_bps[0].value, back.blkio_devices.write_iops[0].value), (1 << 20, 50));
        let w = Resources {
            blkio_devices: BlkioDevices { weight: vec![d(300)], ..Default::default() },
            ..Default::default()
        };
        cg.apply("c1", &w).unwrap();
        assert_eq!(std::fs::read_to_string(root.join("inst/c1/io.weight")).unwrap(), "254:0 300");
        for (r, flag) in [
            (Resources { memory_swappiness: Some(10), ..Default::default() }, "--memory-swappiness"),
            (Resources { oom_kill_disable: Some(true), ..Default::default() }, "--oom-kill-disable"),
            (Resources { cpu_rt_runtime: Some(1000), ..Default::default() }, "--cpu-rt-period/--cpu-rt-runtime"),
        ] {
            let e = cg.check_supported(&r).unwrap_err();
            assert!(matches!(e, CgroupError::Unsupported(_)) && e.to_string().contains(flag), "{e}");
            assert!(e.to_string().contains("v2"), "{e}");
        }
    }

    #[test]
    fn new_limits_are_validated_and_create_only() {
        let r = Resources { memory_swappiness: Some(101), ..Default::default() };
        assert!(r.validate(2).unwrap_err().0.contains("--memory-swappiness 101"));
        let r = Resources { cpu_rt_period: Some(1000), cpu_rt_runtime: Some(2000), ..Default::default() };
        assert!(r.validate(2).unwrap_err().0.contains("cannot be higher than --cpu-rt-period 1000"));
        let r = Resources { cpu_rt_runtime: Some(950_000), ..Default::default() };
        assert!(r.validate(2).is_ok());
        assert_eq!(r.create_only(), Some("--cpu-rt-runtime"));
        let merged = r.merged(&Resources { memory: Some(64 << 20), ..Default::default() });
        assert_eq!((merged.cpu_rt_runtime, merged.memory), (Some(950_000), Some(64 << 20)));
    }
}
