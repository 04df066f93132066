//! Structured error details (`google.rpc.Status` in `grpc-status-details-bin`, as Google's
//! APIs send them): what a client in any language reads without parsing the message, which
//! stays the same text. ARCHITECTURE.md, "Errors", lists the reasons and their metadata.

use crate::runtime::Shortfall;
use std::collections::HashMap;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// `ErrorInfo.domain` of every detail the agent sends.
pub const DOMAIN: &str = "node-agent";
/// `ErrorInfo.reason` of a reservation the capacity ledger refused.
pub const INSUFFICIENT_ALLOCATABLE: &str = "INSUFFICIENT_ALLOCATABLE";
/// `ErrorInfo.reason` of a container whose process did not start (metadata `exit_code`).
pub const START_FAILED: &str = "START_FAILED";
/// `ErrorInfo.reason` of a request value refused by validation (with a `BadRequest`).
pub const INVALID_VALUE: &str = "INVALID_VALUE";

/// CPUs as a decimal string: the shortest that reads back as the value, rounded to a
/// millionth (the CFS quota is finer than that; float sums are not exact).
fn cpus(v: f64) -> String {
    let r = (v * 1e6).round() / 1e6;
    format!("{}", if r == 0.0 { 0.0 } else { r })
}

/// ResourceExhausted: the ledger's text, a `QuotaFailure` with one violation per short
/// resource (subject `cpus` / `memory`) and an `ErrorInfo` with the exact amounts.
pub fn insufficient(s: &Shortfall) -> Status {
    let free = s.free();
    let mut details = ErrorDetails::new();
    let mut meta = HashMap::from([
        ("cpus_requested".to_string(), cpus(s.want.cpus)),
        ("memory_requested_bytes".to_string(), s.want.memory.to_string()),
        ("cpus_free".to_string(), cpus(free.cpus)),
        ("memory_free_bytes".to_string(), free.memory.to_string()),
        ("cpus_allocatable".to_string(), cpus(s.allocatable.cpus)),
        ("memory_allocatable_bytes".to_string(), s.allocatable.memory.to_string()),
    ]);
    if s.cpus > 0.0 {
        meta.insert("cpus_short".into(), cpus(s.cpus));
        details.add_quota_failure_violation(
            "cpus",
            format!(
                "the container needs {} CPUs, {} of {} allocatable are free: short by {}",
                cpus(s.want.cpus),
                cpus(free.cpus),
                cpus(s.allocatable.cpus),
                cpus(s.cpus)
            ),
        );
    }
    if s.memory > 0 {
        meta.insert("memory_short_bytes".into(), s.memory.to_string());
        details.add_quota_failure_violation(
            "memory",
            format!(
                "the container needs {} bytes of memory, {} of {} allocatable are free: short by {}",
                s.want.memory, free.memory, s.allocatable.memory, s.memory
            ),
        );
    }
    details.set_error_info(INSUFFICIENT_ALLOCATABLE, DOMAIN, meta);
    Status::with_error_details(Code::ResourceExhausted, s.to_string(), details)
}

/// FailedPrecondition of a start that failed: an `ErrorInfo` with metadata `exit_code`.
pub fn start_failed(code: i32, message: String) -> Status {
    let details =
        ErrorDetails::with_error_info(START_FAILED, DOMAIN, HashMap::from([("exit_code".into(), code.to_string())]));
    Status::with_error_details(Code::FailedPrecondition, message, details)
}

/// The docker flag a validation message names (`invalid --shm-size -1: …` → `--shm-size`):
/// the first word that is `--` and a lower-case name.
fn named_flag(message: &str) -> Option<&str> {
    message.split(|c: char| c.is_whitespace() || matches!(c, ':' | ',' | '(' | ')' | '"' | '=')).find(|w| {
        w.strip_prefix("--")
            .is_some_and(|n| n.len() > 1 && n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
    })
}

/// InvalidArgument: when the message names the flag that was refused, a `BadRequest`
/// whose field violation is that flag (the message its description) and an `ErrorInfo`
/// `INVALID_VALUE` with metadata `field`; else the plain status.
pub fn invalid_argument(message: String) -> Status {
    let Some(flag) = named_flag(&message).map(str::to_string) else {
        return Status::invalid_argument(message);
    };
    let mut details = ErrorDetails::with_bad_request_violation(flag.clone(), message.clone());
    details.set_error_info(INVALID_VALUE, DOMAIN, HashMap::from([("field".to_string(), flag)]));
    Status::with_error_details(Code::InvalidArgument, message, details)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::Amount;

    #[test]
    fn a_shortfall_is_sent_structured_and_as_text() {
        let s = Shortfall {
            want: Amount { cpus: 2.0, memory: 1 << 30 },
            allocated: Amount { cpus: 1.5, memory: 512 << 20 },
            allocatable: Amount { cpus: 3.0, memory: 1280 << 20 },
            cpus: 0.5,
            memory: 256 << 20,
        };
        let st = insufficient(&s);
        assert_eq!(st.code(), Code::ResourceExhausted);
        assert!(st.message().ends_with("short by 0.50 CPUs and 0.25 GiB"), "{}", st.message());
        let info = st.get_details_error_info().expect("ErrorInfo");
        assert_eq!((info.reason.as_str(), info.domain.as_str()), (INSUFFICIENT_ALLOCATABLE, DOMAIN));
        assert_eq!(info.metadata["cpus_short"], "0.5");
        assert_eq!(info.metadata["memory_short_bytes"], (256u64 << 20).to_string());
        assert_eq!(info.metadata["cpus_free"], "1.5");
        assert_eq!(info.metadata["memory_free_bytes"], (768u64 << 20).to_string());
        assert_eq!(info.metadata["cpus_requested"], "2");
        let q = st.get_details_quota_failure().expect("QuotaFailure");
        let subjects: Vec<&str> = q.violations.iter().map(|v| v.subject.as_str()).collect();
        assert_eq!(subjects, ["cpus", "memory"]);
        let only_mem = insufficient(&Shortfall { cpus: 0.0, ..s });
        let info = only_mem.get_details_error_info().expect("ErrorInfo");
        assert!(!info.metadata.contains_key("cpus_short"), "{info:?}");
        assert_eq!(only_mem.get_details_quota_failure().expect("QuotaFailure").violations.len(), 1);
        assert_eq!(cpus(0.1 + 0.2), "0.3");
    }

    #[test]
    fn a_refused_flag_is_a_field_violation() {
        let st = invalid_argument("invalid --shm-size -1: must be positive".into());
        let br = st.get_details_bad_request().expect("BadRequest");
        assert_eq!(br.field_violations[0].field, "--shm-size");
        assert_eq!(st.message(), "invalid --shm-size -1: must be positive");
        let st = invalid_argument("invalid --device-cgroup-rule \"c 1:3\"".into());
        assert_eq!(st.get_details_bad_request().expect("BadRequest").field_violations[0].field, "--device-cgroup-rule");
        let plain = invalid_argument("invalid reference format: \"A B\"".into());
        assert!(plain.details().is_empty(), "no flag named: no details");
        let st = start_failed(127, "exec: \"nope\": not found".into());
        assert_eq!(st.get_details_error_info().expect("ErrorInfo").metadata["exit_code"], "127");
    }
}
