//! A test hook: `AGENTD_CRASH_AT=<point>[,<point>…]`, read once at start, makes agentd abort
//! (`std::process::abort`, like a `kill -9` at that very line) when a verb reaches one of the
//! named points, so the fault-injection tests (`tests/tests/faults.rs`) can check what a
//! crash there leaves and that the next start repairs it. Unset, a point costs one load.
//!
//! `AGENTD_DELAY_AT=<point>=<ms>[,…]` makes a verb wait that long at a point instead (a
//! blocking sleep of the thread that reaches it), so a test can do something else while a
//! verb is at a known place — e.g. remove an image while a pull has unpacked its layers but
//! not yet recorded the image (`faults.rs`).
//!
//! Our own registry rather than the `fail` crate's (used for the unit tests' fail points):
//! enabling its `failpoints` feature in the binary would make every `fail_point!` of
//! production code configurable from the environment, errors included; here the only
//! action is an abort, and the points are a closed, documented list.

use std::sync::OnceLock;

/// The environment variable naming the points.
pub const ENV: &str = "AGENTD_CRASH_AT";

/// The environment variable naming the points to wait at, each with its milliseconds.
pub const DELAY_ENV: &str = "AGENTD_DELAY_AT";

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
static DELAYED: OnceLock<Vec<(&'static str, u64)>> = OnceLock::new();

fn known(env: &str, p: &str) -> Result<&'static str, String> {
    POINTS
        .iter()
        .find(|k| **k == p)
        .copied()
        .ok_or_else(|| format!("{env}: unknown crash point {p:?}; the points are {}", POINTS.join(", ")))
}

/// Reads [`ENV`] and [`DELAY_ENV`]; an unknown point or a bad delay is an error naming it.
pub fn init() -> Result<(), String> {
    let raw = std::env::var(ENV).unwrap_or_default();
    let armed = raw
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| known(ENV, p))
        .collect::<Result<Vec<_>, _>>()?;
    if !armed.is_empty() {
        tracing::warn!(points = ?armed, "test hook {ENV}: agentd aborts at these points");
    }
    let _ = ARMED.set(armed);
    let delayed = parse_delays(&std::env::var(DELAY_ENV).unwrap_or_default())?;
    if !delayed.is_empty() {
        tracing::warn!(points = ?delayed, "test hook {DELAY_ENV}: agentd waits at these points (ms)");
    }
    let _ = DELAYED.set(delayed);
    Ok(())
}

fn parse_delays(raw: &str) -> Result<Vec<(&'static str, u64)>, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|item| {
            let (p, ms) = item.split_once('=').ok_or_else(|| format!("{DELAY_ENV}: {item:?} is not POINT=MS"))?;
            let ms = ms.trim().parse::<u64>().map_err(|_| format!("{DELAY_ENV}: {ms:?} of {p} is not milliseconds"))?;
            Ok((known(DELAY_ENV, p.trim())?, ms))
        })
        .collect()
}

/// Aborts the process when `name` is armed; waits when it is delayed.
pub fn point(name: &'static str) {
    debug_assert!(POINTS.contains(&name), "unlisted crash point {name}");
    if let Some((_, ms)) = DELAYED.get().and_then(|d| d.iter().find(|(p, _)| *p == name)) {
        tracing::warn!(point = name, ms, "test hook {DELAY_ENV}: waiting");
        std::thread::sleep(std::time::Duration::from_millis(*ms));
    }
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

    #[test]
    fn delays_are_point_equals_milliseconds() {
        assert_eq!(super::parse_delays(" image.before_record=250 ,").unwrap(), vec![("image.before_record", 250)]);
        let e = super::parse_delays("image.before_record").unwrap_err();
        assert!(e.contains("\"image.before_record\" is not POINT=MS"), "{e}");
        let e = super::parse_delays("image.before_record=soon").unwrap_err();
        assert!(e.contains("\"soon\""), "{e}");
        let e = super::parse_delays("nowhere=1").unwrap_err();
        assert!(e.contains("unknown crash point \"nowhere\""), "{e}");
    }
}
