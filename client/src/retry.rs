//! When a call is repeated: only calls that are safe to repeat, only when the agent was not
//! reached or the connection broke (`Error::Unavailable`), with exponential back-off, until
//! the policy's time is up.
//!
//! Safe to repeat: reads (Info, Version, List, Inspect, Wait), Stop (idempotent), Start (a
//! running container's start is a no-op), Remove (a repeat that finds nothing is the first
//! one's success), Create with a name (see [`crate::Client::create`]). Never repeated:
//! Create without a name, Kill, Exec and the other calls whose effect a repeat would double.

use crate::Error;
use std::future::Future;
use std::time::{Duration, Instant};

/// Back-off for repeated calls: `initial`, multiplied by `multiplier` after each failure,
/// capped at `max_delay`; no new attempt starts after `max_elapsed`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    pub initial: Duration,
    pub multiplier: f64,
    pub max_delay: Duration,
    /// How long a call keeps trying, from its first failure (a long Wait that loses its
    /// connection gets the whole time again).
    pub max_elapsed: Duration,
    /// How long one attempt to connect may take until the agent answers (TCP, TLS and a
    /// first call): a port that accepts and never speaks is a node that is down.
    pub connect_timeout: Duration,
}

impl Default for RetryPolicy {
    /// 100 ms doubling up to 2 s, for 60 s, each connect attempt at most 5 s: an agent
    /// restart (seconds) is ridden out, a node that is gone is reported within about a minute.
    fn default() -> RetryPolicy {
        RetryPolicy {
            initial: Duration::from_millis(100),
            multiplier: 2.0,
            max_delay: Duration::from_secs(2),
            max_elapsed: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// Whether a call may be sent again after it failed with `Unavailable`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// Repeating it has the effect of doing it once.
    Idempotent,
    /// It may have taken effect before the reply was lost: never repeated.
    Once,
}

impl RetryPolicy {
    /// No repeats at all.
    pub fn none() -> RetryPolicy {
        RetryPolicy { max_elapsed: Duration::ZERO, ..RetryPolicy::default() }
    }

    /// The pause before attempt `n + 1` after `n` failures (`n >= 1`).
    pub fn delay(&self, failures: u32) -> Duration {
        let exp = self.multiplier.max(1.0).powi(failures.saturating_sub(1).min(64) as i32);
        let d = self.initial.as_secs_f64() * exp;
        Duration::from_secs_f64(d.min(self.max_delay.as_secs_f64()))
    }

    /// Whether to try again after `err`, `failures` attempts in, `elapsed` since the first:
    /// the pause to wait, or None to give up with `err`.
    pub fn next(&self, kind: Idempotency, err: &Error, failures: u32, elapsed: Duration) -> Option<Duration> {
        if kind == Idempotency::Once || !err.is_unavailable() {
            return None;
        }
        let d = self.delay(failures);
        (elapsed + d <= self.max_elapsed).then_some(d)
    }

    /// Runs `call` until it succeeds, fails with an error that is not retried, or the
    /// policy gives up. `call` gets the attempt number (0 first).
    pub async fn run<T, F, Fut>(&self, kind: Idempotency, mut call: F) -> Result<T, Error>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let mut first_failure: Option<Instant> = None;
        let mut failures = 0;
        loop {
            match call(failures).await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    failures += 1;
                    let since = *first_failure.get_or_insert_with(Instant::now);
                    match self.next(kind, &e, failures, since.elapsed()) {
                        Some(d) => tokio::time::sleep(d).await,
                        None => return Err(e),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_and_is_capped() {
        let p = RetryPolicy::default();
        let ms: Vec<u128> = (1..=7).map(|n| p.delay(n).as_millis()).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1600, 2000, 2000]);
        assert_eq!(p.delay(1000), Duration::from_secs(2), "no overflow");
    }

    #[test]
    fn only_unavailable_idempotent_calls_are_retried() {
        let p = RetryPolicy::default();
        let down = Error::Unavailable("connection refused".into());
        assert_eq!(p.next(Idempotency::Idempotent, &down, 1, Duration::ZERO), Some(Duration::from_millis(100)));
        assert_eq!(p.next(Idempotency::Once, &down, 1, Duration::ZERO), None, "a kill is never repeated");
        for e in [
            Error::NotFound("x".into()),
            Error::AlreadyExists("x".into()),
            Error::InvalidArgument("x".into()),
            Error::Internal("x".into()),
            Error::ResourceExhausted { message: "x".into(), shortfall: None },
        ] {
            assert_eq!(p.next(Idempotency::Idempotent, &e, 1, Duration::ZERO), None, "{e:?}");
        }
        assert_eq!(p.next(Idempotency::Idempotent, &down, 3, Duration::from_millis(59_800)), None, "time is up");
        assert_eq!(RetryPolicy::none().next(Idempotency::Idempotent, &down, 1, Duration::ZERO), None);
    }

    #[tokio::test(start_paused = true)]
    async fn run_repeats_until_the_agent_answers() {
        let p = RetryPolicy::default();
        let mut seen = Vec::new();
        let r = p
            .run(Idempotency::Idempotent, |n| {
                seen.push(n);
                async move {
                    if n < 3 {
                        Err(Error::Unavailable("down".into()))
                    } else {
                        Ok(n)
                    }
                }
            })
            .await;
        assert_eq!(r.unwrap(), 3);
        assert_eq!(seen, [0, 1, 2, 3]);
        let mut calls = 0;
        let r: Result<(), Error> = p
            .run(Idempotency::Once, |_| {
                calls += 1;
                async { Err(Error::Unavailable("down".into())) }
            })
            .await;
        assert!(r.is_err());
        assert_eq!(calls, 1, "a call that is not idempotent is sent once");
    }
}
