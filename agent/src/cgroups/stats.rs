//! Usage counters of a container's cgroup, like `docker stats` reads them.

use super::limits::flat_keyed;
use super::{Cgroups, Layout};

/// One sample of a container's usage.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Usage {
    pub cpu_usage_ns: u64,
    pub throttled_periods: u64,
    pub throttled_ns: u64,
    pub memory_usage: u64,
    pub memory_limit: u64,
    pub memory_cache: u64,
    pub pids: u64,
    pub pids_limit: u64,
    pub blkio_read_bytes: u64,
    pub blkio_write_bytes: u64,
}

fn get(pairs: &[(String, u64)], k: &str) -> u64 {
    pairs.iter().find(|(n, _)| n == k).map(|(_, v)| *v).unwrap_or(0)
}

fn read_u64(p: std::path::PathBuf) -> u64 {
    std::fs::read_to_string(p).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
}

impl Cgroups {
    /// Reads the usage counters of a container's cgroup.
    pub fn usage(&self, id: &str) -> Usage {
        let dir = |c: &str| match self.host.layout {
            Layout::V2 => self.host.hierarchies.first().map(|h| self.path_in(&h.mount_point, id)),
            _ => self.host.hierarchy_of(c).map(|h| self.path_in(&h.mount_point, id)),
        };
        let mut u = Usage::default();
        let host_mem = crate::cgroups::host_memory();
        if self.host.layout == Layout::V2 {
            let Some(d) = dir("cpu") else { return u };
            let cpu = flat_keyed(&d.join("cpu.stat"));
            u.cpu_usage_ns = get(&cpu, "usage_usec") * 1000;
            u.throttled_periods = get(&cpu, "nr_throttled");
            u.throttled_ns = get(&cpu, "throttled_usec") * 1000;
            u.memory_usage = read_u64(d.join("memory.current"));
            u.memory_limit = std::fs::read_to_string(d.join("memory.max"))
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(host_mem);
            u.memory_cache = get(&flat_keyed(&d.join("memory.stat")), "file");
            u.pids = read_u64(d.join("pids.current"));
            u.pids_limit = read_u64(d.join("pids.max"));
            for l in std::fs::read_to_string(d.join("io.stat")).unwrap_or_default().lines() {
                for kv in l.split_whitespace() {
                    if let Some(v) = kv.strip_prefix("rbytes=") {
                        u.blkio_read_bytes += v.parse::<u64>().unwrap_or(0);
                    } else if let Some(v) = kv.strip_prefix("wbytes=") {
                        u.blkio_write_bytes += v.parse::<u64>().unwrap_or(0);
                    }
                }
            }
            return u;
        }
        if let Some(d) = dir("cpuacct") {
            u.cpu_usage_ns = read_u64(d.join("cpuacct.usage"));
        }
        if let Some(d) = dir("cpu") {
            let cpu = flat_keyed(&d.join("cpu.stat"));
            u.throttled_periods = get(&cpu, "nr_throttled");
            u.throttled_ns = get(&cpu, "throttled_time");
        }
        if let Some(d) = dir("memory") {
            u.memory_usage = read_u64(d.join("memory.usage_in_bytes"));
            let lim = read_u64(d.join("memory.limit_in_bytes"));
            u.memory_limit = if lim == 0 || lim > host_mem { host_mem } else { lim };
            u.memory_cache = get(&flat_keyed(&d.join("memory.stat")), "cache");
        }
        if let Some(d) = dir("pids") {
            u.pids = read_u64(d.join("pids.current"));
            u.pids_limit = read_u64(d.join("pids.max"));
        }
        if let Some(d) = dir("blkio") {
            for l in std::fs::read_to_string(d.join("blkio.throttle.io_service_bytes")).unwrap_or_default().lines() {
                let f: Vec<&str> = l.split_whitespace().collect();
                if f.len() == 3 {
                    let v = f[2].parse::<u64>().unwrap_or(0);
                    match f[1] {
                        "Read" => u.blkio_read_bytes += v,
                        "Write" => u.blkio_write_bytes += v,
                        _ => {}
                    }
                }
            }
        }
        u
    }
}
