//! The typed instructions a Dockerfile resolves to, and the argument forms instructions share: builder flags
//! (`--chown=…`), the JSON exec form (`["sh", "-c", "x"]`, read with serde_json), EXPOSE port specs, `--chmod`
//! modes, signals, and the syntax checks of the instructions that are only validated (HEALTHCHECK, ONBUILD).

use super::shell::{split_command, split_re_ws};
use super::{quoted, ParseError, KEYWORDS};
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::RangeInclusive;

/// Transport protocol of an exposed port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// `tcp` (the default when no protocol is given).
    Tcp,
    /// `udp`.
    Udp,
    /// `sctp`.
    Sctp,
}

impl Protocol {
    /// Lower-case name as used in OCI `ExposedPorts` keys.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// One `EXPOSE` argument: a port or inclusive port range plus protocol.
///
/// Ranges are kept as ranges (not expanded) so `EXPOSE 1-65535` stays small; use [`PortSpec::ports`] to expand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortSpec {
    /// First port of the range (equal to `end` for a single port).
    pub start: u16,
    /// Last port of the range, inclusive.
    pub end: u16,
    /// Protocol of every port in the range.
    pub protocol: Protocol,
}

impl PortSpec {
    /// All ports covered by this spec.
    pub fn ports(&self) -> RangeInclusive<u16> {
        self.start..=self.end
    }
}

/// Formats as an OCI `ExposedPorts` key (`80/tcp`), or `start-end/proto` for a range.
impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start == self.end {
            write!(f, "{}/{}", self.start, self.protocol.as_str())
        } else {
            write!(f, "{}-{}/{}", self.start, self.end, self.protocol.as_str())
        }
    }
}

/// One resolved Dockerfile instruction.
///
/// Every variant carries `line` (1-based line where the instruction starts) and `text` (the instruction as written,
/// with line continuations joined and surrounding whitespace trimmed) — suitable as history `created_by` and as a
/// build-cache key. Values have had build-time variable substitution applied where Docker applies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    /// `FROM image [AS name]`; `image` is substituted with ARGs declared before `FROM` and may be `scratch`.
    /// `--platform` is accepted and ignored.
    From { image: String, alias: Option<String>, line: usize, text: String },
    /// `ARG name[=default] ...`; each value is the build arg if given, else the default, else (inside the stage) the
    /// value of a same-named ARG declared before `FROM`; `None` means declared but unset.
    Arg { args: Vec<(String, Option<String>)>, line: usize, text: String },
    /// `RUN`; shell form is already wrapped in the current `SHELL` (default `["/bin/sh", "-c", cmd]`).
    /// `build_args` are the ARG values in scope that are not shadowed by `ENV` (plus any predefined proxy args that
    /// were given): Docker exports them into the command's environment without persisting them in the image.
    Run { argv: Vec<String>, build_args: Vec<(String, String)>, line: usize, text: String },
    /// `CMD`; shell form wrapped in the current `SHELL`. An empty `argv` (`CMD []`) clears the command.
    Cmd { argv: Vec<String>, line: usize, text: String },
    /// `ENTRYPOINT`; shell form wrapped in the current `SHELL`. An empty `argv` clears the entrypoint.
    Entrypoint { argv: Vec<String>, line: usize, text: String },
    /// `SHELL ["exe", "args"...]`; already applied to later shell-form instructions, reported for the image config.
    Shell { argv: Vec<String>, line: usize, text: String },
    /// `COPY [--chown=u:g] [--chmod=mode] src... dest`. `dest` is unresolved: a relative dest is relative to the
    /// working directory at that point, and several sources require a directory dest — both checked by the builder.
    Copy { srcs: Vec<String>, dest: String, chown: Option<String>, chmod: Option<u32>, line: usize, text: String },
    /// `ADD`, same shape as [`Instruction::Copy`]; URL and archive semantics are the builder's business.
    Add { srcs: Vec<String>, dest: String, chown: Option<String>, chmod: Option<u32>, line: usize, text: String },
    /// `ENV`; pairs in source order (a later duplicate key wins).
    Env { vars: Vec<(String, String)>, line: usize, text: String },
    /// `LABEL`, and also `MAINTAINER x` which is mapped to the label `maintainer=x`.
    Label { labels: Vec<(String, String)>, line: usize, text: String },
    /// `WORKDIR`; a relative path must be resolved against the image's current working directory, which only the
    /// builder knows (it depends on the base image).
    Workdir { path: String, line: usize, text: String },
    /// `USER user[:group]`.
    User { user: String, line: usize, text: String },
    /// `EXPOSE port[-end][/proto] ...`.
    Expose { ports: Vec<PortSpec>, line: usize, text: String },
    /// `VOLUME`; JSON or whitespace-separated list.
    Volume { paths: Vec<String>, line: usize, text: String },
    /// `STOPSIGNAL`; a signal number or name (e.g. `SIGTERM`, `TERM`, `9`), not mapped to a number here.
    StopSignal { signal: String, line: usize, text: String },
    /// `HEALTHCHECK [--interval=D] [--timeout=D] [--start-period=D] [--start-interval=D] [--retries=N] CMD …` or
    /// `HEALTHCHECK NONE`: `test` in docker's form (`["CMD", …]` for the exec form,
    /// `["CMD-SHELL", "…"]` for the shell form, `["NONE"]`); durations in nanoseconds (0: unset).
    Healthcheck {
        test: Vec<String>,
        interval_ns: i64,
        timeout_ns: i64,
        start_period_ns: i64,
        start_interval_ns: i64,
        retries: u32,
        line: usize,
        text: String,
    },
    /// `ONBUILD`: syntax-checked but not interpreted; callers can warn and skip it.
    Ignored { keyword: &'static str, line: usize, text: String },
}

impl Instruction {
    /// 1-based line number where the instruction starts.
    pub fn line(&self) -> usize {
        self.place().0
    }

    /// The instruction as written (continuations joined, trimmed).
    pub fn text(&self) -> &str {
        self.place().1
    }

    fn place(&self) -> (usize, &str) {
        match self {
            Instruction::From { line, text, .. }
            | Instruction::Arg { line, text, .. }
            | Instruction::Run { line, text, .. }
            | Instruction::Cmd { line, text, .. }
            | Instruction::Entrypoint { line, text, .. }
            | Instruction::Shell { line, text, .. }
            | Instruction::Copy { line, text, .. }
            | Instruction::Add { line, text, .. }
            | Instruction::Env { line, text, .. }
            | Instruction::Label { line, text, .. }
            | Instruction::Workdir { line, text, .. }
            | Instruction::User { line, text, .. }
            | Instruction::Expose { line, text, .. }
            | Instruction::Volume { line, text, .. }
            | Instruction::StopSignal { line, text, .. }
            | Instruction::Healthcheck { line, text, .. }
            | Instruction::Ignored { line, text, .. } => (*line, text),
        }
    }

    /// Upper-case keyword of the variant (`MAINTAINER` reports `LABEL`, since that is what it became).
    pub fn keyword(&self) -> &'static str {
        match self {
            Instruction::From { .. } => "FROM",
            Instruction::Arg { .. } => "ARG",
            Instruction::Run { .. } => "RUN",
            Instruction::Cmd { .. } => "CMD",
            Instruction::Entrypoint { .. } => "ENTRYPOINT",
            Instruction::Shell { .. } => "SHELL",
            Instruction::Copy { .. } => "COPY",
            Instruction::Add { .. } => "ADD",
            Instruction::Env { .. } => "ENV",
            Instruction::Label { .. } => "LABEL",
            Instruction::Workdir { .. } => "WORKDIR",
            Instruction::User { .. } => "USER",
            Instruction::Expose { .. } => "EXPOSE",
            Instruction::Volume { .. } => "VOLUME",
            Instruction::StopSignal { .. } => "STOPSIGNAL",
            Instruction::Healthcheck { .. } => "HEALTHCHECK",
            Instruction::Ignored { keyword, .. } => keyword,
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Flags
// ---------------------------------------------------------------------------------------------------------------

/// Docker flags this parser knows about but does not implement, so the error can say "not supported" instead of
/// "unknown".
fn unsupported_flags(keyword: &str) -> &'static [&'static str] {
    match keyword {
        "RUN" => &["mount", "network", "security", "device"],
        "COPY" => &["from", "link", "parents", "exclude"],
        "ADD" => &["link", "checksum", "keep-git-dir", "exclude", "unpack"],
        _ => &[],
    }
}

/// `--name=value` flags in front of an instruction's arguments.
pub(super) struct Flags {
    /// `None` for a bare `--name`; Docker's boolean flags (e.g. `--link`) look like that.
    values: BTreeMap<String, Option<String>>,
}

impl Flags {
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).and_then(|v| v.as_deref())
    }

    /// Rejects flags outside `allowed`; every allowed flag takes a value (a bare `--chown` is an error in Docker).
    pub(super) fn only(&self, allowed: &[&str], keyword: &str, line: usize) -> Result<(), ParseError> {
        for (name, value) in &self.values {
            if allowed.contains(&name.as_str()) {
                if value.is_none() {
                    return Err(ParseError::at(line, format!("missing a value on flag --{name}")));
                }
                continue;
            }
            if unsupported_flags(keyword).contains(&name.as_str()) {
                return Err(ParseError::at(line, format!("{keyword} --{name} is not supported")));
            }
            return Err(ParseError::at(line, format!("unknown flag {} for {keyword}", quoted(&format!("--{name}")))));
        }
        Ok(())
    }
}

pub(super) fn no_flags(flags: &Flags, keyword: &str, line: usize) -> Result<(), ParseError> {
    flags.only(&[], keyword, line)
}

pub(super) fn parse_flags(words: Vec<String>, keyword: &str, line: usize) -> Result<Flags, ParseError> {
    let mut values = BTreeMap::new();
    for word in words {
        let body = word.strip_prefix("--").unwrap_or(&word);
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        if name.is_empty() {
            return Err(ParseError::at(line, format!("invalid flag {} for {keyword}", quoted(&word))));
        }
        if values.insert(name.to_string(), value.map(str::to_string)).is_some() {
            return Err(ParseError::at(line, format!("duplicate flag specified: {}", quoted(&word))));
        }
    }
    Ok(Flags { values })
}

// ---------------------------------------------------------------------------------------------------------------
// JSON exec form
// ---------------------------------------------------------------------------------------------------------------

pub(super) enum Json {
    Array(Vec<String>),
    /// Valid JSON array with a non-string element: Docker reports an error rather than falling back to shell form.
    NotStringArray,
    /// Not JSON at all: Docker treats the text as shell form.
    Invalid,
}

/// Parses a JSON array of strings the way BuildKit's `parseJSON` does (Go's `json.Unmarshal` into `[]interface{}`):
/// text that is not a JSON array is shell form (`[ -f x ]`), a valid array with a non-string element is an error
/// (`[1]`). serde_json validates the whole text first; the elements are kept raw ([`RawValue`] skips a value without
/// recursing, so `[[[[…` cannot overflow the stack, and checks numbers by their syntax only) and only the strings
/// are decoded.
pub(super) fn parse_json_array(s: &str) -> Json {
    let s = s.trim_start();
    if !s.starts_with('[') {
        return Json::Invalid;
    }
    let Ok(items) = serde_json::from_str::<Vec<&RawValue>>(s) else {
        return Json::Invalid;
    };
    let mut out = Vec::with_capacity(items.len());
    let mut all_strings = true;
    for item in items {
        if !item.get().starts_with('"') {
            all_strings = false;
            continue;
        }
        match json_string(item.get()) {
            Some(v) => out.push(v),
            None => return Json::Invalid,
        }
    }
    if all_strings {
        Json::Array(out)
    } else {
        Json::NotStringArray
    }
}

/// Decodes one JSON string; a lone UTF-16 surrogate (`"\ud800"`) becomes U+FFFD, as in Go's decoder. serde_json
/// refuses lone surrogates in a Rust string but hands them over as WTF-8 when asked for bytes, so the string is read
/// as bytes and each surrogate replaced.
fn json_string(raw: &str) -> Option<String> {
    struct Bytes;
    impl serde::de::Visitor<'_> for Bytes {
        type Value = Vec<u8>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON string")
        }
        fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }
    }
    let mut de = serde_json::Deserializer::from_str(raw);
    let wtf8 = serde::Deserializer::deserialize_bytes(&mut de, Bytes).ok()?;
    de.end().ok()?;
    // A surrogate in WTF-8 is the three bytes ED A0..=BF xx; everything else is already UTF-8.
    let mut out = Vec::with_capacity(wtf8.len());
    let mut rest = wtf8.as_slice();
    while let Some((&b, tail)) = rest.split_first() {
        if b == 0xED && tail.first().is_some_and(|n| (0xA0..=0xBF).contains(n)) {
            out.extend_from_slice("\u{FFFD}".as_bytes());
            rest = tail.get(2..).unwrap_or_default();
        } else {
            out.push(b);
            rest = tail;
        }
    }
    Some(String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

// ---------------------------------------------------------------------------------------------------------------
// Argument values
// ---------------------------------------------------------------------------------------------------------------

pub(super) fn is_valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

/// Detects BuildKit heredoc openers (`<<EOF`, `<<-EOF`, `<<"EOF"`) but not here-strings (`<<<`).
pub(super) fn is_heredoc_word(word: &str) -> bool {
    let Some(rest) = word.strip_prefix("<<") else { return false };
    let rest = rest.strip_prefix('-').unwrap_or(rest);
    let rest = rest.strip_prefix(['"', '\'']).unwrap_or(rest);
    rest.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
}

pub(super) fn parse_chmod(value: &str) -> Result<u32, String> {
    let valid = !value.is_empty() && value.len() <= 4 && value.bytes().all(|b| (b'0'..=b'7').contains(&b));
    match u32::from_str_radix(value, 8) {
        Ok(mode) if valid => Ok(mode),
        _ => Err(format!("invalid --chmod value {}: expected an octal mode such as 755", quoted(value))),
    }
}

/// Accepts what Docker's `signal.ParseSignal` could plausibly accept; mapping names to numbers is left to the caller
/// because the signal table is platform specific.
pub(super) fn validate_signal(signal: &str) -> Result<(), String> {
    if signal.bytes().all(|b| b.is_ascii_digit()) {
        return match signal.parse::<u32>() {
            Ok(n) if (1..=64).contains(&n) => Ok(()),
            _ => Err(format!("invalid signal number {}", quoted(signal))),
        };
    }
    if signal.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-')
        && signal.starts_with(|c: char| c.is_ascii_alphabetic())
    {
        return Ok(());
    }
    Err(format!("invalid signal {}", quoted(signal)))
}

/// Mirrors Docker's `nat.SplitProtoPort` + range parsing: `80`, `80/udp`, `8000-8010/tcp`; a trailing empty protocol
/// means tcp and anything after a second `/` is ignored.
pub(super) fn parse_port_spec(spec: &str) -> Result<PortSpec, String> {
    let mut parts = spec.split('/');
    let port = parts.next().unwrap_or("");
    let proto = parts.next().filter(|p| !p.is_empty()).unwrap_or("tcp");
    let protocol = match proto.to_ascii_lowercase().as_str() {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        "sctp" => Protocol::Sctp,
        _ => return Err(format!("invalid protocol {} in EXPOSE {}", quoted(proto), quoted(spec))),
    };
    let parse_num = |s: &str| -> Result<u16, String> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("invalid port {} in EXPOSE", quoted(spec)));
        }
        s.parse::<u16>().map_err(|_| format!("port out of range in EXPOSE {}", quoted(spec)))
    };
    let (start, end) = match port.split_once('-') {
        Some((a, b)) => (parse_num(a)?, parse_num(b)?),
        None => {
            let p = parse_num(port)?;
            (p, p)
        }
    };
    if end < start {
        return Err(format!("invalid port range in EXPOSE {}", quoted(spec)));
    }
    Ok(PortSpec { start, end, protocol })
}

/// A `HEALTHCHECK` duration flag (Go's syntax: `30s`, `1m30s`, `500ms`): nanoseconds, at
/// least 1 ms; absent: 0.
pub(super) fn health_duration(flags: &Flags, name: &str) -> Result<i64, String> {
    let Some(v) = flags.get(name) else { return Ok(0) };
    let d = humantime::parse_duration(v).map_err(|e| format!("HEALTHCHECK --{name}={}: {e}", quoted(v)))?;
    let ns = i64::try_from(d.as_nanos()).map_err(|_| format!("HEALTHCHECK --{name}={}: too long", quoted(v)))?;
    if ns < 1_000_000 {
        return Err(format!("HEALTHCHECK --{name}={}: cannot be less than 1ms", quoted(v)));
    }
    Ok(ns)
}

/// `--retries=N` (at least 1); absent: 0.
pub(super) fn health_retries(flags: &Flags) -> Result<u32, String> {
    let Some(v) = flags.get("retries") else { return Ok(0) };
    match v.parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("HEALTHCHECK --retries={}: must be a whole number, at least 1", quoted(v))),
    }
}

pub(super) fn check_healthcheck(rest: &str) -> Result<(), String> {
    let words = split_re_ws(rest);
    let Some(kind) = words.first() else {
        return Err("HEALTHCHECK requires at least one argument".to_string());
    };
    if kind.eq_ignore_ascii_case("NONE") {
        if words.len() > 1 {
            return Err("HEALTHCHECK NONE takes no arguments".to_string());
        }
        Ok(())
    } else if kind.eq_ignore_ascii_case("CMD") {
        if words.len() < 2 {
            return Err("HEALTHCHECK CMD requires a command".to_string());
        }
        Ok(())
    } else {
        Err(format!("unknown type {} in HEALTHCHECK (try CMD or NONE)", quoted(kind)))
    }
}

pub(super) fn check_onbuild(rest: &str) -> Result<(), String> {
    let (trigger, _) = split_command(rest);
    if trigger.is_empty() {
        return Err("ONBUILD requires at least one argument".to_string());
    }
    match KEYWORDS.iter().find(|k| k.eq_ignore_ascii_case(trigger)) {
        None => Err(format!("unknown instruction {} in ONBUILD", quoted(trigger))),
        Some(&"ONBUILD") => Err("chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".to_string()),
        Some(&k @ ("FROM" | "MAINTAINER")) => Err(format!("{k} isn't allowed as an ONBUILD trigger")),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests;
