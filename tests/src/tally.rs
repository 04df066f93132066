//! One row of the fault suite's table (`tests/tests/faults.rs`, `pileup.rs`): faults
//! injected, invariants checked, violations (must be 0). Each test prints its row; every
//! row is also appended to `<target>/faults-table.txt`, which `scripts/faults-table.sh`
//! prints as one table after the suite.

use std::io::Write;

pub struct Tally {
    pub name: &'static str,
    pub faults: u32,
    pub checked: u32,
    pub violations: Vec<String>,
}

impl Tally {
    pub fn new(name: &'static str) -> Tally {
        Tally { name, faults: 0, checked: 0, violations: Vec::new() }
    }

    /// Counts an invariant; `what` describes the violation when `ok` is false.
    pub fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        self.checked += 1;
        if !ok {
            self.violations.push(what());
        }
    }

    /// Prints the row (and appends it to the suite's table) and fails on any violation.
    pub fn finish(self) {
        let row = format!("{:<28} {:>8} {:>12} {:>11}", self.name, self.faults, self.checked, self.violations.len());
        println!("{:<28} {:>8} {:>12} {:>11}", "FAULTS", "injected", "invariants", "violations");
        println!("{row}");
        let table = crate::bin_dir().join("faults-table.txt");
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(&table) {
            let _ = writeln!(f, "{row}");
        }
        assert!(self.violations.is_empty(), "{}: violations:\n{}", self.name, self.violations.join("\n"));
    }
}

/// Resident memory of a process, KiB (0 when it cannot be read).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
