//! The node's capacity ledger, for schedulers: what the host has, what is set aside for
//! the system, what may be handed out (with overcommit), and what containers reserve.
//! A container reserves its limits (its memory reservation when it has no memory limit)
//! from create until removal; one without either reserves the configured default, which is
//! nothing unless the operator sets one (best effort, as Kubernetes treats such pods).

use super::{Result, Runtime, RuntimeError, State};
use crate::cgroups::Resources;
use serde::Deserialize;

/// Operator settings of the ledger (config file `[capacity]`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CapacityConfig {
    /// CPUs kept for the system (not allocatable).
    pub reserved_cpus: f64,
    /// Bytes of memory kept for the system.
    pub reserved_memory: u64,
    /// Allocatable = (capacity - reserved) x overcommit.
    pub overcommit: f64,
    /// What a container without a CPU limit reserves (default 0: nothing).
    pub default_cpus: f64,
    /// What a container without a memory limit or reservation reserves, bytes (default 0).
    pub default_memory: u64,
}

impl Default for CapacityConfig {
    fn default() -> Self {
        CapacityConfig {
            reserved_cpus: 0.0,
            reserved_memory: 256 << 20,
            overcommit: 1.0,
            default_cpus: 0.0,
            default_memory: 0,
        }
    }
}

/// CPUs and bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Amount {
    pub cpus: f64,
    pub memory: u64,
}

/// The ledger as `Info` reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Ledger {
    pub capacity: Amount,
    pub allocatable: Amount,
    pub allocated: Amount,
}

fn host_capacity() -> Amount {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64;
    let memory = crate::cgroups::host_memory();
    Amount { cpus, memory }
}

fn gib(b: u64) -> String {
    format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64)
}

impl CapacityConfig {
    /// What a container with these limits reserves: its CPU limit, its memory limit (else
    /// its memory reservation), else the defaults.
    pub fn request(&self, r: &Resources) -> Amount {
        let cpus = match (r.cpu_quota, r.cpu_period) {
            (Some(q), p) if q > 0 => q as f64 / p.filter(|p| *p > 0).unwrap_or(100_000) as f64,
            _ => self.default_cpus,
        };
        let memory = r
            .memory
            .filter(|m| *m > 0)
            .or(r.memory_reservation.filter(|m| *m > 0))
            .map(|m| m as u64)
            .unwrap_or(self.default_memory);
        Amount { cpus, memory }
    }

    /// Checks the settings.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if !(self.overcommit >= 1.0 && self.overcommit <= 100.0) {
            return Err(format!("capacity.overcommit {} must be between 1 and 100", self.overcommit));
        }
        if self.reserved_cpus < 0.0 || self.default_cpus < 0.0 {
            return Err("capacity CPU amounts must not be negative".into());
        }
        Ok(())
    }
}

impl Runtime {
    /// The ledger now, not counting the container `except` (for updates).
    pub fn ledger(&self, except: Option<&str>) -> Result<Ledger> {
        let cap = host_capacity();
        let c = &self.cfg.capacity;
        let allocatable = Amount {
            cpus: ((cap.cpus - c.reserved_cpus).max(0.0)) * c.overcommit,
            memory: (cap.memory.saturating_sub(c.reserved_memory) as f64 * c.overcommit) as u64,
        };
        let mut allocated = Amount::default();
        for g in self.groups()? {
            let r = c.request(&g.resources);
            allocated.cpus += r.cpus;
            allocated.memory += r.memory;
        }
        self.scan(|it| {
            for rec in it {
                // Group members are accounted in their group's reservation.
                if rec.state == State::Removing || Some(rec.id.as_str()) == except || !rec.spec.group.is_empty() {
                    continue;
                }
                let r = c.request(&rec.spec.resources);
                allocated.cpus += r.cpus;
                allocated.memory += r.memory;
            }
        })?;
        Ok(Ledger { capacity: cap, allocatable, allocated })
    }

    /// Refuses `res` if it does not fit next to what is allocated (`except` excluded). What
    /// it does not reserve cannot be short: a best-effort container is always admitted.
    pub(super) fn admit(&self, res: &Resources, except: Option<&str>) -> Result<()> {
        let l = self.ledger(except)?;
        let want = self.cfg.capacity.request(res);
        let short_cpu = if want.cpus > 0.0 { l.allocated.cpus + want.cpus - l.allocatable.cpus } else { 0.0 };
        let short_mem =
            if want.memory > 0 { (l.allocated.memory + want.memory).saturating_sub(l.allocatable.memory) } else { 0 };
        if short_cpu <= 1e-9 && short_mem == 0 {
            return Ok(());
        }
        Err(RuntimeError::Insufficient(Box::new(Shortfall {
            want,
            allocated: l.allocated,
            allocatable: l.allocatable,
            cpus: if short_cpu > 1e-9 { short_cpu } else { 0.0 },
            memory: short_mem,
        })))
    }
}

/// A reservation the ledger refused: what the container needs, what is allocated of what is
/// allocatable, and how much is missing (`cpus` 0 / `memory` 0: that one was not short).
/// The API sends it as text and as structured details (ARCHITECTURE.md, "Errors").
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Shortfall {
    pub want: Amount,
    pub allocated: Amount,
    pub allocatable: Amount,
    pub cpus: f64,
    pub memory: u64,
}

impl Shortfall {
    /// What is left to hand out (never negative: an operator may lower the allocatable).
    pub fn free(&self) -> Amount {
        Amount {
            cpus: (self.allocatable.cpus - self.allocated.cpus).max(0.0),
            memory: self.allocatable.memory.saturating_sub(self.allocated.memory),
        }
    }
}

impl std::fmt::Display for Shortfall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut short = Vec::new();
        if self.cpus > 0.0 {
            short.push(format!("{:.2} CPUs", self.cpus));
        }
        if self.memory > 0 {
            short.push(gib(self.memory));
        }
        write!(
            f,
            "not enough allocatable resources: the container needs {:.2} CPUs and {}, {:.2} CPUs and {} of {:.2} CPUs and {} are allocated; short by {}",
            self.want.cpus,
            gib(self.want.memory),
            self.allocated.cpus,
            gib(self.allocated.memory),
            self.allocatable.cpus,
            gib(self.allocatable.memory),
            short.join(" and ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_use_limits_or_defaults() {
        let c = CapacityConfig::default();
        let r = c.request(&Resources::default());
        assert_eq!((r.cpus, r.memory), (0.0, 0), "no limits: nothing reserved by default");
        let r = c.request(&Resources { memory_reservation: Some(64 << 20), ..Default::default() });
        assert_eq!((r.cpus, r.memory), (0.0, 64 << 20), "a memory reservation is reserved");
        let r =
            c.request(&Resources { memory: Some(1 << 30), memory_reservation: Some(64 << 20), ..Default::default() });
        assert_eq!(r.memory, 1 << 30, "the limit wins");
        let op = CapacityConfig { default_cpus: 0.01, default_memory: 16 << 20, ..Default::default() };
        let r = op.request(&Resources::default());
        assert_eq!((r.cpus, r.memory), (0.01, 16 << 20), "an operator's default applies");
        let r = c.request(&Resources {
            cpu_quota: Some(50_000),
            cpu_period: Some(100_000),
            memory: Some(1 << 30),
            ..Default::default()
        });
        assert_eq!((r.cpus, r.memory), (0.5, 1 << 30));
        assert!(CapacityConfig { overcommit: 0.5, ..Default::default() }.validate().is_err());
    }
}
