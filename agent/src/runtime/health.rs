//! Health checks, as docker's `HEALTHCHECK` and `--health-*`: the agent runs the test
//! command in the running container (an exec) every interval; `retries` failures in a row
//! make it `unhealthy`, one success `healthy`; failures during the start period do not
//! count while it is still `starting`. A change of status is recorded with the container
//! (so it survives an agent restart) and logged as a `health_status: <status>` event. The
//! last [`LOG_LEN`] results, each with at most [`OUTPUT_MAX`] bytes of output, are kept.

use super::{ContainerRecord, OutputChunk, Phase, Result, Runtime, RuntimeError, State};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

/// Results kept per container (docker keeps 5).
pub const LOG_LEN: usize = 5;
/// Output kept per result (docker's 4 KiB).
pub const OUTPUT_MAX: usize = 4096;
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_RETRIES: u32 = 3;
const MIN_DURATION_NS: i64 = 1_000_000;

/// A health check as docker's config holds it. Zero durations and retries mean "the
/// image's, else the default"; an empty `test` means "the image's".
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct HealthConfig {
    /// `["NONE"]`, `["CMD", arg…]` or `["CMD-SHELL", "command line"]`.
    pub test: Vec<String>,
    pub interval_ns: i64,
    pub timeout_ns: i64,
    pub start_period_ns: i64,
    pub retries: u32,
    /// Between checks while in the start period (docker 25's `--health-start-interval`);
    /// 0: the interval, as before docker 25.
    #[serde(default)]
    pub start_interval_ns: i64,
}

impl HealthConfig {
    /// Checks the values a user or an image gives.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(RuntimeError::InvalidArgument(m));
        match self.test.first().map(String::as_str) {
            None => {}
            Some("NONE") if self.test.len() == 1 => {}
            Some("NONE") => return bad(format!("health check test {:?}: NONE takes no arguments", self.test)),
            Some("CMD") | Some("CMD-SHELL") if self.test.len() >= 2 && !self.test[1].is_empty() => {}
            Some("CMD") | Some("CMD-SHELL") => {
                return bad(format!("health check test {:?}: a command is required", self.test))
            }
            Some(other) => {
                return bad(format!(
                    "health check test {:?}: starts with {other:?}; use NONE, CMD or CMD-SHELL",
                    self.test
                ))
            }
        }
        for (what, v) in [
            ("interval", self.interval_ns),
            ("timeout", self.timeout_ns),
            ("start period", self.start_period_ns),
            ("start interval", self.start_interval_ns),
        ] {
            if v != 0 && v < MIN_DURATION_NS {
                return bad(format!("health check {what} {v} ns: must be 0 (default) or at least 1 ms"));
            }
        }
        Ok(())
    }

    /// The check that applies: the user's fields over the image's; `None` when disabled.
    pub fn effective(user: Option<&HealthConfig>, image: Option<&HealthConfig>) -> Option<HealthConfig> {
        let u = user.cloned().unwrap_or_default();
        let i = image.cloned().unwrap_or_default();
        let pick = |a: i64, b: i64| if a != 0 { a } else { b };
        let h = HealthConfig {
            test: if u.test.is_empty() { i.test } else { u.test },
            interval_ns: pick(u.interval_ns, i.interval_ns),
            timeout_ns: pick(u.timeout_ns, i.timeout_ns),
            start_period_ns: pick(u.start_period_ns, i.start_period_ns),
            retries: if u.retries != 0 { u.retries } else { i.retries },
            start_interval_ns: pick(u.start_interval_ns, i.start_interval_ns),
        };
        match h.test.first().map(String::as_str) {
            None | Some("NONE") => None,
            _ => Some(h),
        }
    }

    /// The command to exec.
    fn argv(&self) -> Vec<String> {
        match self.test.first().map(String::as_str) {
            Some("CMD-SHELL") => vec!["/bin/sh".into(), "-c".into(), self.test[1..].join(" ")],
            _ => self.test.iter().skip(1).cloned().collect(),
        }
    }

    fn interval(&self) -> Duration {
        positive(self.interval_ns).unwrap_or(DEFAULT_INTERVAL)
    }

    /// The wait before the next check: the start interval while in the start period.
    fn interval_at(&self, in_start_period: bool) -> Duration {
        match positive(self.start_interval_ns) {
            Some(d) if in_start_period => d,
            _ => self.interval(),
        }
    }

    fn timeout(&self) -> Duration {
        positive(self.timeout_ns).unwrap_or(DEFAULT_TIMEOUT)
    }

    fn retries(&self) -> u32 {
        if self.retries == 0 {
            DEFAULT_RETRIES
        } else {
            self.retries
        }
    }
}

fn positive(ns: i64) -> Option<Duration> {
    u64::try_from(ns).ok().filter(|n| *n > 0).map(Duration::from_nanos)
}

/// The health of a running container.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Starting,
    Healthy,
    Unhealthy,
}

impl Status {
    /// docker's word.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Starting => "starting",
            Status::Healthy => "healthy",
            Status::Unhealthy => "unhealthy",
        }
    }
}

/// One run of the check.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Probe {
    /// Unix nanoseconds.
    pub start: i64,
    pub end: i64,
    /// 0 healthy, anything else unhealthy (-1: it could not run or timed out).
    pub exit_code: i32,
    pub output: String,
}

/// What a container's record keeps of its health.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Health {
    pub status: Status,
    pub failing_streak: u32,
    pub log: VecDeque<Probe>,
}

impl Health {
    /// Adds a result; returns the new status when it changed.
    pub fn record(&mut self, p: Probe, in_start_period: bool, retries: u32) -> Option<Status> {
        let before = self.status;
        if p.exit_code == 0 {
            self.failing_streak = 0;
            self.status = Status::Healthy;
        } else if !(in_start_period && self.status == Status::Starting) {
            self.failing_streak += 1;
            if self.failing_streak >= retries {
                self.status = Status::Unhealthy;
            }
        }
        self.log.push_back(p);
        while self.log.len() > LOG_LEN {
            self.log.pop_front();
        }
        (self.status != before).then_some(self.status)
    }
}

/// Keeps the first [`OUTPUT_MAX`] bytes, cut at a character boundary.
fn bounded(out: &[u8]) -> String {
    let s = String::from_utf8_lossy(&out[..out.len().min(OUTPUT_MAX)]).into_owned();
    s.trim_end_matches('\u{FFFD}').to_string()
}

fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
}

impl Runtime {
    /// Runs `rec`'s health check while it runs (started, restarted, or re-adopted). Nothing
    /// when it has none.
    pub(super) fn watch_health(self: &Arc<Self>, rec: &ContainerRecord) {
        let Some(check) = rec.spec.health.clone() else { return };
        let rt = Arc::clone(self);
        let (id, started_at) = (rec.id.clone(), rec.started_at);
        let mut phase = self.watch(&id);
        tokio::spawn(async move {
            let start_period = positive(check.start_period_ns).unwrap_or_default();
            let started = std::time::Instant::now()
                .checked_sub(Duration::from_nanos(now_ns().saturating_sub(started_at).max(0) as u64))
                .unwrap_or_else(std::time::Instant::now);
            loop {
                let ended = async {
                    let _ = phase.wait_for(|p| !matches!(p, Phase::Running { .. })).await;
                };
                let wait = check.interval_at(started.elapsed() < start_period);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = ended => return,
                }
                // A paused container is not probed (its exec would be refused): no failure counts.
                if rt.load(&id).is_ok_and(|r| r.paused) {
                    continue;
                }
                let probe = rt.probe(&id, &check).await;
                let in_start = started.elapsed() < start_period;
                match rt.record_probe(&id, started_at, probe, in_start, check.retries()).await {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(e) => tracing::warn!(container = %id, error = %e, "recording a health check result"),
                }
            }
        });
    }

    /// Returns once the container is healthy (at once if it is); FailedPrecondition when
    /// it has no health check, or stops running (or turns unhealthy, with `fail_unhealthy`)
    /// before that.
    pub async fn wait_healthy(&self, name: &str, fail_unhealthy: bool) -> Result<()> {
        // Subscribe first: a change between the read and the wait is not missed.
        let mut events = self.live_events();
        let rec = self.resolve(name)?;
        let id = rec.id.clone();
        let verdict = |rec: &ContainerRecord| -> Option<Result<()>> {
            let refuse = |why: String| Some(Err(RuntimeError::FailedPrecondition(why)));
            if rec.spec.health.is_none() {
                return refuse(format!(
                    "container {} has no health check (give --health-cmd, or HEALTHCHECK in its image)",
                    rec.name
                ));
            }
            if rec.state != State::Running {
                return refuse(format!(
                    "container {} is not running (exit code {}), so it will not become healthy",
                    rec.name, rec.exit_code
                ));
            }
            match rec.health.as_ref().map(|h| h.status) {
                Some(Status::Healthy) => Some(Ok(())),
                Some(Status::Unhealthy) if fail_unhealthy => refuse(format!("container {} is unhealthy", rec.name)),
                _ => None,
            }
        };
        if let Some(v) = verdict(&rec) {
            return v;
        }
        loop {
            match events.recv().await {
                Ok(e) if e.id == id => {
                    let Ok(rec) = self.load(&id) else {
                        return Err(RuntimeError::NotFound(name.to_string()));
                    };
                    if let Some(v) = verdict(&rec) {
                        return v;
                    }
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    // Missed some: read the state again.
                    let rec = self.load(&id).map_err(|_| RuntimeError::NotFound(name.to_string()))?;
                    if let Some(v) = verdict(&rec) {
                        return v;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                    return Err(RuntimeError::Internal("the agent is shutting down".into()))
                }
            }
        }
    }

    /// Runs the check once, within its timeout.
    async fn probe(&self, id: &str, check: &HealthConfig) -> Probe {
        let start = now_ns();
        let req = super::ExecRequest { args: check.argv(), ..Default::default() };
        let mut io = match self.exec(id, req).await {
            Ok(io) => io,
            Err(e) => {
                return Probe { start, end: now_ns(), exit_code: -1, output: format!("cannot run the check: {e}") }
            }
        };
        let mut out = Vec::new();
        let collect = async {
            while let Some(c) = io.output.recv().await {
                match c {
                    OutputChunk::Stdout(d) | OutputChunk::Stderr(d) => {
                        if out.len() < OUTPUT_MAX {
                            out.extend_from_slice(&d);
                        }
                    }
                    OutputChunk::Exit(code) => return code,
                }
            }
            -1
        };
        match tokio::time::timeout(check.timeout(), collect).await {
            Ok(code) => Probe { start, end: now_ns(), exit_code: code, output: bounded(&out) },
            Err(_) => {
                io.terminate().await;
                let t = check.timeout();
                Probe { start, end: now_ns(), exit_code: -1, output: format!("Health check exceeded timeout ({t:?})") }
            }
        }
    }

    /// Adds a result to the container's health; records it and logs the event when the
    /// status changed. `false`: the container no longer runs this start (stop checking).
    async fn record_probe(
        self: &Arc<Self>,
        id: &str,
        started_at: i64,
        p: Probe,
        in_start: bool,
        retries: u32,
    ) -> Result<bool> {
        let live = self.live(id);
        let _op = live.op.lock().await;
        let Ok(mut rec) = self.load(id) else { return Ok(false) };
        if rec.state != State::Running || rec.started_at != started_at {
            return Ok(false);
        }
        let mut h = rec.health.take().unwrap_or_default();
        let changed = h.record(p, in_start, retries);
        rec.health = Some(h);
        match changed {
            Some(s) => {
                tracing::info!(container = %id, status = s.as_str(), "health status changed");
                self.save_and_log(&rec, &format!("health_status: {}", s.as_str()), &[], false)?;
            }
            None => self.save(&rec)?,
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(code: i32) -> Probe {
        Probe { exit_code: code, ..Default::default() }
    }

    #[test]
    fn the_start_interval_applies_only_in_the_start_period() {
        let ms = |n: u64| Duration::from_millis(n);
        let h = HealthConfig { interval_ns: 60_000_000_000, start_interval_ns: 200_000_000, ..Default::default() };
        assert_eq!(h.interval_at(true), ms(200));
        assert_eq!(h.interval_at(false), ms(60_000));
        let plain = HealthConfig { interval_ns: 1_000_000_000, ..Default::default() };
        assert_eq!(plain.interval_at(true), ms(1000), "unset: the interval, as before docker 25");
        let image =
            HealthConfig { test: vec!["CMD".into(), "true".into()], start_interval_ns: 5, ..Default::default() };
        let user = HealthConfig { start_interval_ns: 7, ..Default::default() };
        assert_eq!(HealthConfig::effective(Some(&user), Some(&image)).map(|h| h.start_interval_ns), Some(7));
        assert_eq!(HealthConfig::effective(None, Some(&image)).map(|h| h.start_interval_ns), Some(5));
        let bad = HealthConfig { start_interval_ns: 10, ..Default::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("start interval 10 ns"));
    }

    #[test]
    fn status_follows_docker() {
        let mut h = Health::default();
        assert_eq!(h.record(probe(1), true, 2), None, "a failure in the start period does not count");
        assert_eq!(h.failing_streak, 0);
        assert_eq!(h.record(probe(1), false, 2), None);
        assert_eq!(h.record(probe(1), false, 2), Some(Status::Unhealthy), "after `retries` failures in a row");
        assert_eq!(h.record(probe(0), false, 2), Some(Status::Healthy));
        assert_eq!(h.failing_streak, 0);
        assert_eq!(h.record(probe(1), true, 2), None, "once healthy, the start period no longer shields");
        assert_eq!(h.failing_streak, 1);
        for _ in 0..10 {
            h.record(probe(0), false, 2);
        }
        assert_eq!(h.log.len(), LOG_LEN);
    }

    #[test]
    fn user_fields_override_the_image_and_none_disables() {
        let image = HealthConfig {
            test: vec!["CMD-SHELL".into(), "true".into()],
            interval_ns: 5_000_000_000,
            retries: 4,
            ..Default::default()
        };
        let user = HealthConfig { interval_ns: 1_000_000_000, ..Default::default() };
        let e = HealthConfig::effective(Some(&user), Some(&image)).unwrap();
        assert_eq!(e.test, image.test);
        assert_eq!((e.interval_ns, e.retries), (1_000_000_000, 4));
        let none = HealthConfig { test: vec!["NONE".into()], ..Default::default() };
        assert_eq!(HealthConfig::effective(Some(&none), Some(&image)), None);
        assert_eq!(HealthConfig::effective(None, None), None);
        assert_eq!(e.argv(), vec!["/bin/sh", "-c", "true"]);
        let cmd =
            HealthConfig { test: vec!["CMD".into(), "test".into(), "-f".into(), "/x".into()], ..Default::default() };
        assert_eq!(cmd.argv(), vec!["test", "-f", "/x"]);
    }

    #[test]
    fn bad_checks_are_refused_naming_the_value() {
        let t = |v: &[&str]| HealthConfig { test: v.iter().map(|s| s.to_string()).collect(), ..Default::default() };
        assert!(t(&["CMD", "true"]).validate().is_ok());
        assert!(t(&["CMD"]).validate().unwrap_err().to_string().contains("a command is required"));
        assert!(t(&["RUN", "x"]).validate().unwrap_err().to_string().contains("\"RUN\""));
        assert!(t(&["NONE", "x"]).validate().is_err());
        let short = HealthConfig { interval_ns: 10, ..t(&["CMD", "true"]) };
        assert!(short.validate().unwrap_err().to_string().contains("interval 10 ns"));
        assert_eq!(bounded(&vec![b'a'; 10_000]).len(), OUTPUT_MAX);
    }
}
