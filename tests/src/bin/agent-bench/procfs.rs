//! Memory read from /proc: a process's RSS and PSS, the shims of one agent, MemAvailable.

use std::path::Path;

/// `VmRSS` of `pid` in KiB (0 when gone).
pub fn rss_kib(pid: u32) -> u64 {
    field_kib(&format!("/proc/{pid}/status"), "VmRSS:")
}

/// `Pss` of `pid` in KiB from smaps_rollup (0 when gone).
pub fn pss_kib(pid: u32) -> u64 {
    field_kib(&format!("/proc/{pid}/smaps_rollup"), "Pss:")
}

/// `MemAvailable` in KiB.
pub fn mem_available_kib() -> u64 {
    field_kib("/proc/meminfo", "MemAvailable:")
}

fn field_kib(file: &str, key: &str) -> u64 {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l[key.len()..].split_whitespace().next().and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

/// PIDs of the shims of the agent whose root is `root` (`agentd shim <root>/containers/…`).
pub fn shims_of(root: &Path) -> Vec<u32> {
    let root = root.to_string_lossy().into_owned();
    let Ok(rd) = std::fs::read_dir("/proc") else { return Vec::new() };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|pid| {
            let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else { return false };
            let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
            args.len() >= 3 && args[1] == b"shim" && args[2].starts_with(root.as_bytes())
        })
        .collect()
}
