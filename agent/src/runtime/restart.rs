//! Restart policies like docker's `--restart`: the agent starts a container again when it
//! exits, with exponential back-off (100 ms doubling, at most 1 min, back to 100 ms after
//! 10 s of running). A stop or kill by the user is not a failure: it is not restarted (until
//! the agent restarts, for `always`, as docker does).

use super::{ContainerRecord, Result, Runtime, RuntimeError, State};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// `--restart`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    #[default]
    No,
    /// On a non-zero exit, at most `max` times (`None`: no limit).
    OnFailure {
        max: Option<u32>,
    },
    Always,
    UnlessStopped,
}

impl RestartPolicy {
    pub fn parse(s: &str) -> Result<RestartPolicy> {
        Ok(match s {
            "" | "no" => RestartPolicy::No,
            "always" => RestartPolicy::Always,
            "unless-stopped" => RestartPolicy::UnlessStopped,
            "on-failure" => RestartPolicy::OnFailure { max: None },
            s => match s.strip_prefix("on-failure:").map(str::parse::<u32>) {
                Some(Ok(n)) => RestartPolicy::OnFailure { max: Some(n) },
                _ => {
                    return Err(RuntimeError::InvalidArgument(format!(
                        "invalid --restart {s:?}: use no, on-failure[:N], always or unless-stopped"
                    )))
                }
            },
        })
    }

    /// Whether a container that exited with `code` (after `restarts` restarts) goes again.
    pub fn wants_restart(self, code: i32, stopped_by_user: bool, restarts: u32) -> bool {
        if stopped_by_user {
            return false;
        }
        match self {
            RestartPolicy::No => false,
            RestartPolicy::OnFailure { max } => code != 0 && max.is_none_or(|m| restarts < m),
            RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
        }
    }
}

impl std::fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RestartPolicy::No => write!(f, "no"),
            RestartPolicy::OnFailure { max: None } => write!(f, "on-failure"),
            RestartPolicy::OnFailure { max: Some(n) } => write!(f, "on-failure:{n}"),
            RestartPolicy::Always => write!(f, "always"),
            RestartPolicy::UnlessStopped => write!(f, "unless-stopped"),
        }
    }
}

/// The wait before restart number `rapid + 1` of a container that keeps failing fast.
pub fn backoff(rapid: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1u64 << rapid.min(10))).min(Duration::from_secs(60))
}

impl Runtime {
    /// After an exit was recorded: starts `rec` again later if its policy says so.
    pub(super) fn maybe_restart(self: &Arc<Self>, rec: &ContainerRecord) {
        let policy = rec.spec.restart;
        if !policy.wants_restart(rec.exit_code, rec.stopped_by_user, rec.restart_count) {
            return;
        }
        // A run of 10 s or more was not a crash loop: the back-off starts over.
        let ran = rec.finished_at.saturating_sub(rec.started_at);
        let rapid = if ran >= 10_000_000_000 { 0 } else { rec.rapid_restarts };
        let delay = backoff(rapid);
        let (rt, id) = (Arc::clone(self), rec.id.clone());
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            // Still wanted? (removed, started or stopped by the user meanwhile: no.)
            let Ok(mut cur) = rt.load(&id) else { return };
            if cur.state != State::Exited || cur.stopped_by_user {
                return;
            }
            cur.rapid_restarts = rapid + 1;
            let attrs = [("policy", policy.to_string()), ("exitCode", cur.exit_code.to_string())];
            if let Err(e) = rt.save_and_log(&cur, "restart", &attrs, false) {
                tracing::warn!(container = %id, error = %e, "restart: recording it");
            }
            tracing::info!(container = %id, policy = %policy, after = ?delay, "restarting per its restart policy");
            if let Err(e) = rt.start(&id).await {
                tracing::warn!(container = %id, error = %e, "restart per its policy failed");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_and_decide_like_docker() {
        for s in ["no", "on-failure", "on-failure:3", "always", "unless-stopped"] {
            assert_eq!(RestartPolicy::parse(s).unwrap().to_string(), s);
        }
        assert!(RestartPolicy::parse("sometimes").unwrap_err().to_string().contains("\"sometimes\""));
        assert!(RestartPolicy::parse("on-failure:x").is_err());
        let of2 = RestartPolicy::OnFailure { max: Some(2) };
        assert!(of2.wants_restart(1, false, 0) && of2.wants_restart(1, false, 1));
        assert!(!of2.wants_restart(1, false, 2), "at most twice");
        assert!(!of2.wants_restart(0, false, 0), "a clean exit is not a failure");
        assert!(RestartPolicy::Always.wants_restart(0, false, 9));
        assert!(!RestartPolicy::Always.wants_restart(1, true, 0), "stopped by the user");
        assert!(!RestartPolicy::No.wants_restart(1, false, 0));
        assert_eq!(backoff(0), Duration::from_millis(100));
        assert_eq!(backoff(3), Duration::from_millis(800));
        assert_eq!(backoff(40), Duration::from_secs(60));
    }
}
