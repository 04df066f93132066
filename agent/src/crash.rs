//! A test hook: `AGENTD_CRASH_AT=<point>[,<point>…]`, read once at start, makes agentd abort
//! (`std::process::abort`, like a `kill -9` at that very line) when a verb reaches one of the
//! named points, so the fault-injection tests (`tests/tests/faults.rs`) can check what a
//! crash there leaves and that the next start repairs it. Unset, a point costs one load.
//!
//! Our own registry rather than the `fail` crate's (used for the unit tests' fail points):
//! enabling its `failpoints` feature in the binary would make every `fail_point!` of
//! production code configurable from the environment, errors included; here the only
//! action is an abort, and the points are a closed, documented list.

use std::sync::OnceLock;

/// The environment variable naming the points.
pub const ENV: &str = "AGENTD_CRASH_AT";

/// Every point, in the order a verb passes them.
pub const POINTS: &[&str] = &[
    "create.after_lease",
    "create.after_dir",
    "create.after_record",
    "start.after_cgroup",
    "start.after_shim",
    "start.after_record",
    "stop.after_signal",
    "remove.after_mark",
    "remove.after_dir",
    "remove.after_record",
    "commit.after_layer",
    "pull.after_download",
    "unpack.mid_layer",
    "image.before_record",
    "volume.after_dir",
    "volume.after_record",
];

static ARMED: OnceLock<Vec<&'static str>> = OnceLock::new();

/// Reads [`ENV`]; an unknown point is an error naming it.
pub fn init() -> Result<(), String> {
    let raw = std::env::var(ENV).unwrap_or_default();
    let mut armed = Vec::new();
    for p in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match POINTS.iter().find(|k| **k == p) {
            Some(k) => armed.push(*k),
            None => return Err(format!("{ENV}: unknown crash point {p:?}; the points are {}", POINTS.join(", "))),
        }
    }
    if !armed.is_empty() {
        tracing::warn!(points = ?armed, "test hook {ENV}: agentd aborts at these points");
    }
    let _ = ARMED.set(armed);
    Ok(())
}

/// Aborts the process when `name` is armed.
pub fn point(name: &'static str) {
    debug_assert!(POINTS.contains(&name), "unlisted crash point {name}");
    if ARMED.get().is_some_and(|a| a.contains(&name)) {
        eprintln!("agentd: {ENV}: aborting at {name}");
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn unarmed_points_do_nothing() {
        super::point("create.after_dir");
    }
}
