//! Live resource changes and usage samples of containers.

use super::{ContainerRecord, Result, Runtime, RuntimeError, State};
use crate::cgroups::stats::Usage;
use crate::cgroups::Resources;

impl Runtime {
    /// Merges `upd` into a container's limits, applies them if it runs, and returns the
    /// limits read back from the kernel (or as recorded when it does not run).
    pub async fn update(&self, name: &str, upd: Resources) -> Result<Resources> {
        let rec = self.resolve(name)?;
        let live = self.live(&rec.id);
        let _op = live.op.lock().await;
        let mut rec = self.load(&rec.id)?;
        let merged = rec.spec.resources.merged(&upd);
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        merged.validate(cpus).map_err(|e| RuntimeError::InvalidArgument(e.0))?;
        self.cgroups.check_supported(&upd)?;
        if rec.spec.group.is_empty() {
            self.admit(&merged, Some(&rec.id))?;
        }
        if rec.state == State::Running {
            self.cgroups.apply(&rec.cg(), &merged)?;
            if let Some(adj) = upd.oom_score_adj {
                let p = format!("/proc/{}/oom_score_adj", rec.pid);
                std::fs::write(&p, adj.to_string()).map_err(|err| RuntimeError::Io {
                    what: "write",
                    path: p.into(),
                    err,
                })?;
            }
        }
        rec.spec.resources = merged.clone();
        self.save_and_log(&rec, "update", &[], false)?;
        if rec.state == State::Running {
            let mut back = self.cgroups.read_back(&rec.cg());
            back.oom_score_adj = merged.oom_score_adj;
            return Ok(back);
        }
        Ok(merged)
    }

    /// One usage sample of each named container (all running ones when `names` is empty).
    pub fn stats(&self, names: &[String]) -> Result<Vec<(ContainerRecord, Usage)>> {
        let recs: Vec<ContainerRecord> = if names.is_empty() {
            self.list()?.into_iter().filter(|c| c.state == State::Running).collect()
        } else {
            names.iter().map(|n| self.resolve(n)).collect::<Result<_>>()?
        };
        Ok(recs
            .into_iter()
            .map(|r| {
                let u = if r.state == State::Running { self.cgroups.usage(&r.cg()) } else { Usage::default() };
                (r, u)
            })
            .collect())
    }
}

/// Host CPU time of all CPUs, nanoseconds (from /proc/stat), for CPU % like docker's.
pub fn system_cpu_ns() -> u64 {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: u64 = s
        .lines()
        .next()
        .map(|l| l.split_whitespace().skip(1).take(8).filter_map(|v| v.parse::<u64>().ok()).sum())
        .unwrap_or(0);
    // SAFETY: sysconf with a constant name.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    ticks * 1_000_000_000 / hz
}
