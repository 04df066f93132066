//! What a call can fail with, as an enum a scheduler can match on instead of a
//! `tonic::Status`: the agent's gRPC codes (ARCHITECTURE.md, "Errors") with the facts it
//! puts in them parsed out — the shortfall of a refused reservation, the exit code of a
//! failed start.

use tonic::Code;
use tonic_types::StatusExt;

/// How much a reservation was short of the node's allocatable resources, as the agent's
/// capacity ledger reported it: exact from the status details (`ErrorInfo` metadata
/// `cpus_short`, `memory_short_bytes`); from an agent that sends none, parsed out of the
/// message (`… short by 0.50 CPUs and 1.00 GiB`, as precise as its two decimals).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Shortfall {
    /// CPUs missing, if CPUs were short.
    pub cpus: Option<f64>,
    /// Bytes of memory missing, if memory was short.
    pub memory: Option<u64>,
}

/// A failed call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// No such container, image, network… (`NotFound`).
    #[error("{0}")]
    NotFound(String),
    /// A name in use (`AlreadyExists`); from [`crate::Client::create`] also a container of
    /// that name with another spec.
    #[error("{0}")]
    AlreadyExists(String),
    /// The request is wrong; the message names the value (`InvalidArgument`).
    #[error("{0}")]
    InvalidArgument(String),
    /// Not enough of something: allocatable CPUs/memory (`shortfall` set), addresses, disk
    /// space (`ResourceExhausted`).
    #[error("{message}")]
    ResourceExhausted { message: String, shortfall: Option<Shortfall> },
    /// The object is not in a state for this (`FailedPrecondition`); a start that failed
    /// carries the container's exit code (126/127 like docker's).
    #[error("{message}")]
    FailedPrecondition { message: String, exit_code: Option<i32> },
    /// The caller's role may not do this (`PermissionDenied`).
    #[error("{0}")]
    PermissionDenied(String),
    /// No or a refused identity (`Unauthenticated`).
    #[error("{0}")]
    Unauthenticated(String),
    /// The agent could not be reached, or the connection broke before the answer came: the
    /// only failure that is retried, and only for calls that are safe to repeat.
    #[error("agent unavailable: {0}")]
    Unavailable(String),
    /// The call took longer than allowed.
    #[error("{0}")]
    DeadlineExceeded(String),
    /// A bug in the agent (`Internal`, `DataLoss`, `Unknown`).
    #[error("{0}")]
    Internal(String),
    /// The contexts file or the address is unusable.
    #[error("{0}")]
    Config(String),
    /// Any other code (`Cancelled`, `Aborted`, `OutOfRange`, `Unimplemented`).
    #[error("{code}: {message}")]
    Other { code: String, message: String },
}

/// The metadata key of the exit code of a container whose start failed (the agent's
/// `api::convert::EXIT_CODE_KEY`).
pub const EXIT_CODE_KEY: &str = "agent-exit-code";

/// `ErrorInfo.domain` of the agent's structured details (its `api::details`).
pub const DOMAIN: &str = "node-agent";

impl Error {
    /// Whether repeating the call may succeed: the agent was not reached or the connection
    /// broke. Only idempotent calls act on it.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Unavailable(_))
    }
}

impl From<tonic::Status> for Error {
    fn from(s: tonic::Status) -> Error {
        let message = s.message().to_string();
        // A status made on this side from a broken connection carries its cause (hyper, h2,
        // io); one the agent sent has none. A cut connection becomes Unknown or Internal in
        // tonic ("h2 protocol error", "error reading a body"): it is the transport, not the
        // agent, so it is Unavailable.
        let local = std::error::Error::source(&s).is_some();
        match s.code() {
            Code::NotFound => Error::NotFound(message),
            Code::AlreadyExists => Error::AlreadyExists(message),
            Code::InvalidArgument => Error::InvalidArgument(message),
            Code::ResourceExhausted => {
                let shortfall = detailed_shortfall(&s).or_else(|| parse_shortfall(&message));
                Error::ResourceExhausted { message, shortfall }
            }
            Code::FailedPrecondition => {
                let exit_code = info_value(&s, "START_FAILED", "exit_code").or_else(|| {
                    s.metadata().get(EXIT_CODE_KEY).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok())
                });
                Error::FailedPrecondition { message, exit_code }
            }
            Code::PermissionDenied => Error::PermissionDenied(message),
            Code::Unauthenticated => Error::Unauthenticated(message),
            Code::Unavailable => Error::Unavailable(message),
            Code::Unknown | Code::Internal | Code::Cancelled if local => Error::Unavailable(transport_message(&s)),
            Code::DeadlineExceeded => Error::DeadlineExceeded(message),
            Code::Internal | Code::DataLoss | Code::Unknown => Error::Internal(message),
            c => Error::Other { code: format!("{c:?}"), message },
        }
    }
}

impl From<agent_proto::ConnectError> for Error {
    fn from(e: agent_proto::ConnectError) -> Error {
        match e {
            agent_proto::ConnectError::BadUrl(_) => Error::Config(e.to_string()),
            agent_proto::ConnectError::Transport(..) => Error::Unavailable(e.to_string()),
        }
    }
}

impl From<crate::target::TargetError> for Error {
    fn from(e: crate::target::TargetError) -> Error {
        Error::Config(e.to_string())
    }
}

/// The status's message with its causes, which say what broke.
fn transport_message(s: &tonic::Status) -> String {
    agent_proto::with_causes(s.message().to_string(), std::error::Error::source(s))
}

/// The agent's `ErrorInfo` of `reason`, if the status carries one.
fn error_info(s: &tonic::Status, reason: &str) -> Option<tonic_types::ErrorInfo> {
    s.get_details_error_info().filter(|i| i.domain == DOMAIN && i.reason == reason)
}

/// `key` of the agent's `ErrorInfo` of `reason`, parsed.
fn info_value<T: std::str::FromStr>(s: &tonic::Status, reason: &str, key: &str) -> Option<T> {
    error_info(s, reason)?.metadata.get(key)?.parse().ok()
}

/// The shortfall of an `INSUFFICIENT_ALLOCATABLE` status, exact: None when the status has
/// no such details (an older agent, or not the ledger).
pub fn detailed_shortfall(s: &tonic::Status) -> Option<Shortfall> {
    let info = error_info(s, "INSUFFICIENT_ALLOCATABLE")?;
    let cpus = info.metadata.get("cpus_short").and_then(|v| v.parse().ok());
    let memory = info.metadata.get("memory_short_bytes").and_then(|v| v.parse().ok());
    (cpus.is_some() || memory.is_some()).then_some(Shortfall { cpus, memory })
}

/// Reads `short by 0.50 CPUs and 1.00 GiB` (either part alone too) out of the ledger's
/// message; None when the message has no shortfall (addresses, disk space).
pub fn parse_shortfall(message: &str) -> Option<Shortfall> {
    let (_, rest) = message.rsplit_once("short by ")?;
    let mut out = Shortfall::default();
    for part in rest.split(" and ") {
        let mut w = part.split_whitespace();
        let (Some(num), Some(unit)) = (w.next(), w.next()) else { continue };
        let Ok(n) = num.parse::<f64>() else { continue };
        let unit = unit.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
        let scale = match unit {
            "CPUs" | "CPU" => {
                out.cpus = Some(n);
                continue;
            }
            "B" => 1u64,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            "TiB" => 1 << 40,
            _ => continue,
        };
        out.memory = Some((n * scale as f64).round() as u64);
    }
    (out.cpus.is_some() || out.memory.is_some()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_variants() {
        let e: Error = tonic::Status::not_found("no such container: web").into();
        assert!(matches!(&e, Error::NotFound(m) if m == "no such container: web"), "{e:?}");
        assert!(matches!(Error::from(tonic::Status::already_exists("x")), Error::AlreadyExists(_)));
        assert!(matches!(Error::from(tonic::Status::invalid_argument("x")), Error::InvalidArgument(_)));
        assert!(matches!(Error::from(tonic::Status::permission_denied("x")), Error::PermissionDenied(_)));
        assert!(matches!(Error::from(tonic::Status::unauthenticated("x")), Error::Unauthenticated(_)));
        assert!(Error::from(tonic::Status::unavailable("x")).is_unavailable());
        assert!(matches!(Error::from(tonic::Status::internal("x")), Error::Internal(_)), "the agent's Internal");
        assert!(matches!(Error::from(tonic::Status::unimplemented("x")), Error::Other { .. }));
        assert!(matches!(Error::from(tonic::Status::deadline_exceeded("x")), Error::DeadlineExceeded(_)));
    }

    #[test]
    fn a_start_failure_carries_its_exit_code() {
        let mut s = tonic::Status::failed_precondition("exec: \"nope\": not found");
        s.metadata_mut().insert(EXIT_CODE_KEY, "127".parse().unwrap());
        match Error::from(s) {
            Error::FailedPrecondition { exit_code, .. } => assert_eq!(exit_code, Some(127)),
            e => panic!("{e:?}"),
        }
        assert!(matches!(
            Error::from(tonic::Status::failed_precondition("x")),
            Error::FailedPrecondition { exit_code: None, .. }
        ));
    }

    #[test]
    fn a_broken_connection_is_unavailable() {
        // What tonic makes of a reset connection: a status with the io error as its source.
        let io = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "broken pipe");
        let s = tonic::Status::from_error(Box::new(io));
        assert!(matches!(s.code(), Code::Unknown | Code::Internal), "{s:?}");
        let e = Error::from(s);
        assert!(e.is_unavailable(), "{e:?}");
        let other = std::io::Error::other("connection closed before message completed");
        assert!(Error::from(tonic::Status::from_error(Box::new(other))).is_unavailable());
    }

    /// A status as the agent's `api::details` makes it.
    fn detailed(code: Code, msg: &str, reason: &str, meta: &[(&str, &str)]) -> tonic::Status {
        let meta: std::collections::HashMap<String, String> =
            meta.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut d = tonic_types::ErrorDetails::with_error_info(reason, DOMAIN, meta);
        d.add_quota_failure_violation("memory", "short");
        tonic::Status::with_error_details(code, msg, d)
    }

    #[test]
    fn the_details_shortfall_is_exact() {
        // The text says 0.25 GiB; the details have the byte.
        let msg = "not enough allocatable resources: …; short by 0.50 CPUs and 0.25 GiB";
        let s = detailed(
            Code::ResourceExhausted,
            msg,
            "INSUFFICIENT_ALLOCATABLE",
            &[("cpus_short", "0.5"), ("memory_short_bytes", "268435457")],
        );
        // Through the wire's bytes, as a client receives them.
        let s = tonic::Status::with_details(s.code(), s.message(), s.details().to_vec().into());
        match Error::from(s) {
            Error::ResourceExhausted { shortfall: Some(sh), message } => {
                assert_eq!(sh, Shortfall { cpus: Some(0.5), memory: Some(268_435_457) });
                assert_eq!(message, msg, "the text is kept");
            }
            e => panic!("{e:?}"),
        }
        let mem_only =
            detailed(Code::ResourceExhausted, "x", "INSUFFICIENT_ALLOCATABLE", &[("memory_short_bytes", "7")]);
        assert_eq!(detailed_shortfall(&mem_only), Some(Shortfall { cpus: None, memory: Some(7) }));
        // Details of another reason or domain are not a shortfall; the text is read instead.
        let other = detailed(Code::ResourceExhausted, "… short by 1.00 GiB", "OTHER", &[("memory_short_bytes", "7")]);
        assert_eq!(detailed_shortfall(&other), None);
        assert!(matches!(
            Error::from(other),
            Error::ResourceExhausted { shortfall: Some(Shortfall { cpus: None, memory: Some(m) }), .. } if m == 1 << 30
        ));
        let s = detailed(Code::FailedPrecondition, "exec failed", "START_FAILED", &[("exit_code", "126")]);
        assert!(matches!(Error::from(s), Error::FailedPrecondition { exit_code: Some(126), .. }));
    }

    #[test]
    fn the_ledgers_shortfall_is_parsed() {
        let msg = "not enough allocatable resources: the container needs 2.00 CPUs and 1.00 GiB, 1.50 CPUs and \
                   0.50 GiB of 3.00 CPUs and 1.25 GiB are allocated; short by 0.50 CPUs and 0.25 GiB";
        match Error::from(tonic::Status::resource_exhausted(msg)) {
            Error::ResourceExhausted { shortfall: Some(s), message } => {
                assert_eq!(s.cpus, Some(0.5));
                assert_eq!(s.memory, Some(256 << 20));
                assert_eq!(message, msg);
            }
            e => panic!("{e:?}"),
        }
        assert_eq!(parse_shortfall("… short by 1.00 GiB"), Some(Shortfall { cpus: None, memory: Some(1 << 30) }));
        assert_eq!(parse_shortfall("… short by 0.25 CPUs"), Some(Shortfall { cpus: Some(0.25), memory: None }));
        assert_eq!(parse_shortfall("no free address left in 10.1.0.0/24"), None);
        assert!(matches!(
            Error::from(tonic::Status::resource_exhausted("write /x: no space (0 B free)")),
            Error::ResourceExhausted { shortfall: None, .. }
        ));
    }
}
