//! Realtime CPU budgets (`--cpu-rt-period`, `--cpu-rt-runtime`, microseconds): v1
//! `cpu.rt_period_us` / `cpu.rt_runtime_us`, which exist only on kernels built with
//! CONFIG_RT_GROUP_SCHED. A new cgroup starts with no budget (runtime 0), and the kernel
//! refuses a child more than its parent has (the sum of the children's runtime/period
//! ratios must fit in the parent's), so every ancestor below the hierarchy's root is given
//! what its children need first, top down. A failure puts back what was changed.

use super::{CgroupError, Cgroups, Layout};
use std::path::{Path, PathBuf};

const PERIOD: &str = "cpu.rt_period_us";
const RUNTIME: &str = "cpu.rt_runtime_us";
/// The kernel's fixed-point shift for bandwidth ratios (`to_ratio`, BW_SHIFT).
const SHIFT: u32 = 20;

/// runtime/period as the kernel compares them.
fn ratio(period: u64, runtime: u64) -> u128 {
    if period == 0 {
        return 0;
    }
    ((runtime as u128) << SHIFT) / period as u128
}

/// The least runtime in `period` whose ratio is at least `need`.
fn runtime_for(period: u64, need: u128) -> u64 {
    let mut r = ((need * period as u128) >> SHIFT) as u64;
    while ratio(period, r) < need {
        r += 1;
    }
    r
}

fn read_u64(p: &Path) -> Result<u64, CgroupError> {
    let s = std::fs::read_to_string(p).map_err(|err| CgroupError::Io { path: p.to_path_buf(), err })?;
    // An unlimited runtime reads -1: as much as its period.
    Ok(s.trim().parse::<i64>().map(|v| if v < 0 { u64::MAX } else { v as u64 }).unwrap_or(0))
}

fn write(p: &Path, v: u64) -> Result<(), CgroupError> {
    std::fs::write(p, v.to_string()).map_err(|err| CgroupError::Limit {
        file: p.to_path_buf(),
        value: v.to_string(),
        err,
    })
}

/// The ratio the children of `dir` other than `except` hold.
fn others(dir: &Path, except: &Path) -> u128 {
    let Ok(rd) = std::fs::read_dir(dir) else { return 0 };
    rd.flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && p != except)
        .filter_map(|p| {
            let period = read_u64(&p.join(PERIOD)).ok()?;
            let runtime = read_u64(&p.join(RUNTIME)).ok()?;
            Some(ratio(period, runtime.min(period)))
        })
        .sum()
}

/// What each ancestor of `dir` (below `root`) must hold for `dir` to get `runtime` per
/// `period`: (ancestor, its runtime now, the runtime it needs), bottom up; ancestors that
/// already hold enough (and theirs) are left out.
fn plan(root: &Path, dir: &Path, period: u64, runtime: u64) -> Result<Vec<(PathBuf, u64, u64)>, CgroupError> {
    let mut out = Vec::new();
    let mut need = ratio(period, runtime);
    let mut child = dir.to_path_buf();
    while let Some(parent) = child.parent().map(Path::to_path_buf) {
        if parent == root || !parent.starts_with(root) {
            break;
        }
        let p = read_u64(&parent.join(PERIOD))?;
        let now = read_u64(&parent.join(RUNTIME))?;
        let sum = others(&parent, &child) + need;
        if ratio(p, now.min(p)) >= sum {
            break;
        }
        let want = runtime_for(p, sum);
        if want > p {
            return Err(CgroupError::Unsupported(format!(
                "--cpu-rt-runtime {runtime} per {period} µs: {} would need {want} µs of realtime budget per {p} µs, more than its period",
                parent.display()
            )));
        }
        out.push((parent.clone(), now, want));
        need = ratio(p, want);
        child = parent;
    }
    Ok(out)
}

impl Cgroups {
    /// Whether this host can give realtime budgets to cgroups (`None`: yes; otherwise why not).
    pub(super) fn rt_unsupported(&self) -> Option<String> {
        if self.host.layout == Layout::V2 {
            return Some(
                "--cpu-rt-period/--cpu-rt-runtime need cgroup v1's cpu controller: cgroup v2 has no realtime budgets"
                    .into(),
            );
        }
        let dir = self.host.hierarchy_of("cpu").map(|h| h.mount_point.clone());
        match dir {
            Some(d) if d.join(RUNTIME).exists() => None,
            _ => Some(format!(
                "--cpu-rt-period/--cpu-rt-runtime: this kernel has no {RUNTIME} (built without CONFIG_RT_GROUP_SCHED)"
            )),
        }
    }

    /// Before a create: whether a container below the instance's parent could get
    /// `runtime` per `period` with what the host's root has left (the kernel's own check
    /// runs again at start).
    pub(super) fn rt_fits(&self, period: Option<u64>, runtime: Option<i64>) -> Result<(), CgroupError> {
        let (Some(runtime), Some(h)) = (runtime, self.host.hierarchy_of("cpu")) else { return Ok(()) };
        let root = h.mount_point.clone();
        let inst = root.join(&self.parent);
        std::fs::create_dir_all(&inst).map_err(|err| CgroupError::Io { path: inst.clone(), err })?;
        let period = period.unwrap_or(1_000_000);
        let runtime = runtime.max(0) as u64;
        let steps = plan(&root, &inst.join(".new"), period, runtime)?;
        let Some((top, _, want)) = steps.last() else { return Ok(()) };
        if top.parent() != Some(root.as_path()) {
            return Ok(());
        }
        let have = ratio(read_u64(&root.join(PERIOD))?, read_u64(&root.join(RUNTIME))?);
        let need = others(&root, top) + ratio(read_u64(&top.join(PERIOD))?, *want);
        if need > have {
            let host = read_u64(&root.join(RUNTIME))?;
            return Err(CgroupError::Unsupported(format!(
                "--cpu-rt-runtime {runtime} per {period} µs is more realtime budget than this host has left \
                 ({host} µs per {} µs for every realtime group, {} µs of it already given to others)",
                read_u64(&root.join(PERIOD))?,
                runtime_for(read_u64(&root.join(PERIOD))?, others(&root, top))
            )));
        }
        Ok(())
    }

    /// Gives the container's cgroup `id` its realtime budget, its ancestors theirs first.
    pub(super) fn apply_rt(&self, id: &str, period: Option<u64>, runtime: Option<i64>) -> Result<(), CgroupError> {
        if period.is_none() && runtime.is_none() {
            return Ok(());
        }
        if let Some(why) = self.rt_unsupported() {
            return Err(CgroupError::Unsupported(why));
        }
        let Some(h) = self.host.hierarchy_of("cpu") else {
            return Err(CgroupError::Unsupported("no cpu controller".into()));
        };
        let root = h.mount_point.clone();
        let dir = self.path_in(&root, id);
        if let Some(p) = period {
            write(&dir.join(PERIOD), p)?;
        }
        let Some(runtime) = runtime else { return Ok(()) };
        let period = read_u64(&dir.join(PERIOD))?;
        let runtime = runtime.max(0) as u64;
        let steps = plan(&root, &dir, period, runtime)?;
        let mut done: Vec<(PathBuf, u64)> = Vec::new();
        let res = (|| {
            for (anc, before, want) in steps.iter().rev() {
                write(&anc.join(RUNTIME), *want).map_err(|e| budget_error(e, runtime, period))?;
                done.push((anc.clone(), *before));
            }
            write(&dir.join(RUNTIME), runtime).map_err(|e| budget_error(e, runtime, period))
        })();
        if res.is_err() {
            for (anc, before) in done.iter().rev() {
                if let Err(e) = write(&anc.join(RUNTIME), *before) {
                    tracing::warn!(cgroup = %anc.display(), error = %e, "putting a realtime budget back");
                }
            }
        }
        res
    }
}

/// A budget the kernel refused (EINVAL/EBUSY: more than the host or a parent gives).
fn budget_error(e: CgroupError, runtime: u64, period: u64) -> CgroupError {
    match e {
        CgroupError::Limit { file, value, err }
            if matches!(err.raw_os_error(), Some(libc::EINVAL) | Some(libc::EBUSY)) =>
        {
            let host = std::fs::read_to_string("/proc/sys/kernel/sched_rt_runtime_us").unwrap_or_default();
            CgroupError::Unsupported(format!(
                "--cpu-rt-runtime {runtime} per {period} µs is more realtime budget than this host has left: \
                 the kernel refused {value} in {} ({err}); the host gives {} µs per second to all realtime groups",
                file.display(),
                host.trim()
            ))
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(dir: &Path, period: u64, runtime: u64) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(PERIOD), period.to_string()).unwrap();
        std::fs::write(dir.join(RUNTIME), runtime.to_string()).unwrap();
    }

    #[test]
    fn ancestors_get_what_their_children_need() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        group(root, 1_000_000, 950_000);
        group(&root.join("inst"), 1_000_000, 0);
        group(&root.join("inst/other"), 1_000_000, 100_000);
        group(&root.join("inst/par"), 500_000, 0);
        group(&root.join("inst/par/c1"), 1_000_000, 0);
        let steps = plan(root, &root.join("inst/par/c1"), 1_000_000, 200_000).unwrap();
        assert_eq!(
            steps,
            vec![(root.join("inst/par"), 0, 100_000), (root.join("inst"), 0, 300_000)],
            "par: 0.2 of its 500 ms; inst: 0.2 + the other's 0.1"
        );
        // Enough already: nothing to change.
        group(&root.join("inst/par"), 500_000, 250_000);
        assert_eq!(plan(root, &root.join("inst/par/c1"), 1_000_000, 200_000).unwrap(), vec![]);
        assert!(plan(root, &root.join("inst/par/c1"), 1_000_000, 2_000_000).is_err());
    }
}
