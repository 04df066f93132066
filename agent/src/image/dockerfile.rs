//! Dockerfile parser and `.dockerignore` matcher.
//!
//! The goal is that a Dockerfile written for `docker build` resolves to the same instructions here, so the parsing
//! rules are ported from Docker's BuildKit frontend (`frontend/dockerfile/parser`, `shell`, `instructions`) and from
//! `moby/patternmatcher`, including their quirks (for example `COPY "a b" /x` is split on whitespace without
//! honouring the quotes, exactly as Docker does).
//!
//! Scope and deliberate omissions:
//! * Single-stage builds only: a second `FROM` and `COPY --from` are rejected with an error.
//! * Heredocs (`RUN <<EOF`) and the BuildKit-only flags (`RUN --mount`, `COPY --link`, ...) are rejected rather than
//!   silently misinterpreted.
//! * `HEALTHCHECK` and `ONBUILD` are syntax-checked and returned as [`Instruction::Ignored`] so a caller can warn and
//!   carry on.
//! * Variable substitution supports `$V`, `${V}`, `${V:-w}`, `${V-w}`, `${V:+w}`, `${V+w}`, `${V:?w}`, `${V?w}`;
//!   BuildKit's newer pattern forms (`${V#p}`, `${V%p}`, `${V/a/b}`) and the automatic platform args
//!   (`TARGETPLATFORM`, ...) are not provided.
//! * Values that depend on the base image (relative `WORKDIR`, `COPY` destinations relative to the working directory)
//!   are returned unresolved; the base image's environment can be supplied with [`parse_with_base_env`] so `$PATH`
//!   and friends substitute like they do in Docker.
//!
//! Everything is bounded for hostile input (see the `MAX_*` constants): errors are returned, never panics, and no
//! code path recurses more than [`MAX_SUBSTITUTION_DEPTH`] levels deep.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::iter::Peekable;
use std::ops::RangeInclusive;
use std::str::Chars;

/// Largest Dockerfile accepted, in bytes.
pub const MAX_DOCKERFILE_BYTES: usize = 1024 * 1024;
/// Largest number of instructions (logical lines) accepted in one Dockerfile.
pub const MAX_INSTRUCTIONS: usize = 10_000;
/// Largest `.dockerignore` accepted, in bytes.
pub const MAX_DOCKERIGNORE_BYTES: usize = 1024 * 1024;
/// Deepest nesting of `${VAR:-${OTHER:-...}}` accepted; the substitution lexer recurses once per level.
pub const MAX_SUBSTITUTION_DEPTH: usize = 32;
/// Total bytes that substitution and per-instruction copies (shell prefix, RUN build args) may produce over one parse.
/// Without it `ENV A=$A$A` repeated a few dozen times grows exponentially even though the input is tiny.
pub const MAX_EXPANSION_BYTES: usize = 64 * 1024 * 1024;

/// How much of an offending token an error message quotes; hostile input can make tokens megabytes long.
const ERROR_SNIPPET_CHARS: usize = 80;

/// Build args Docker accepts without an `ARG` declaration; they reach `RUN` but are never reported as unused.
const PREDEFINED_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

const KEYWORDS: [&str; 18] = [
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// A Dockerfile or `.dockerignore` that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number where the offending instruction (or pattern) starts; 0 when the error concerns the whole
    /// file (too large, no `FROM`, ...).
    pub line: usize,
    /// Human readable description; quotes the offending text (truncated to a readable length).
    pub message: String,
}

impl ParseError {
    fn at(line: usize, message: impl Into<String>) -> Self {
        ParseError { line, message: message.into() }
    }

    fn whole_file(message: impl Into<String>) -> Self {
        ParseError { line: 0, message: message.into() }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            f.write_str(&self.message)
        } else {
            write!(f, "line {}: {}", self.line, self.message)
        }
    }
}

impl std::error::Error for ParseError {}

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
    /// `HEALTHCHECK` or `ONBUILD`: syntax-checked but not interpreted; callers can warn and skip it.
    Ignored { keyword: &'static str, line: usize, text: String },
}

impl Instruction {
    /// 1-based line number where the instruction starts.
    pub fn line(&self) -> usize {
        match self {
            Instruction::From { line, .. }
            | Instruction::Arg { line, .. }
            | Instruction::Run { line, .. }
            | Instruction::Cmd { line, .. }
            | Instruction::Entrypoint { line, .. }
            | Instruction::Shell { line, .. }
            | Instruction::Copy { line, .. }
            | Instruction::Add { line, .. }
            | Instruction::Env { line, .. }
            | Instruction::Label { line, .. }
            | Instruction::Workdir { line, .. }
            | Instruction::User { line, .. }
            | Instruction::Expose { line, .. }
            | Instruction::Volume { line, .. }
            | Instruction::StopSignal { line, .. }
            | Instruction::Ignored { line, .. } => *line,
        }
    }

    /// The instruction as written (continuations joined, trimmed).
    pub fn text(&self) -> &str {
        match self {
            Instruction::From { text, .. }
            | Instruction::Arg { text, .. }
            | Instruction::Run { text, .. }
            | Instruction::Cmd { text, .. }
            | Instruction::Entrypoint { text, .. }
            | Instruction::Shell { text, .. }
            | Instruction::Copy { text, .. }
            | Instruction::Add { text, .. }
            | Instruction::Env { text, .. }
            | Instruction::Label { text, .. }
            | Instruction::Workdir { text, .. }
            | Instruction::User { text, .. }
            | Instruction::Expose { text, .. }
            | Instruction::Volume { text, .. }
            | Instruction::StopSignal { text, .. }
            | Instruction::Ignored { text, .. } => text,
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
            Instruction::Ignored { keyword, .. } => keyword,
        }
    }
}

/// Result of a successful parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// Instructions in source order, including `ARG`s that precede `FROM`.
    pub instructions: Vec<Instruction>,
    /// Build args that were supplied but never declared with `ARG` (sorted); Docker warns about these.
    pub unused_args: Vec<String>,
}

/// Parses a Dockerfile, substituting variables from `build_args` and the Dockerfile's own `ARG`/`ENV`.
///
/// Equivalent to [`parse_with_base_env`] with an empty base-image environment.
pub fn parse(text: &str, build_args: &BTreeMap<String, String>) -> Result<Parsed, ParseError> {
    parse_with_base_env(text, build_args, &BTreeMap::new())
}

/// Parses a Dockerfile whose base image has the environment `base_env`.
///
/// Docker substitutes `$PATH` in `ENV PATH=/x:$PATH` with the base image's value; callers that know the base image
/// config (e.g. after a first [`parse`] to learn the `FROM` image, then pulling it) can pass it here to get identical
/// results. `base_env` is only visible after `FROM`.
pub fn parse_with_base_env(
    text: &str,
    build_args: &BTreeMap<String, String>,
    base_env: &BTreeMap<String, String>,
) -> Result<Parsed, ParseError> {
    if text.len() > MAX_DOCKERFILE_BYTES {
        return Err(ParseError::whole_file(format!(
            "Dockerfile is {} bytes, larger than the {MAX_DOCKERFILE_BYTES} byte limit",
            text.len()
        )));
    }
    let (escape, lines) = logical_lines(text)?;
    let mut state = State {
        escape,
        build_args,
        base_env,
        in_stage: false,
        meta_args: BTreeMap::new(),
        stage_args: BTreeMap::new(),
        env: BTreeMap::new(),
        shell: vec!["/bin/sh".to_string(), "-c".to_string()],
        declared: BTreeSet::new(),
        budget: 0,
    };
    let mut instructions = Vec::with_capacity(lines.len());
    for logical in &lines {
        instructions.push(state.instruction(logical)?);
    }
    if instructions.is_empty() {
        return Err(ParseError::whole_file("the Dockerfile contains no instructions"));
    }
    if !state.in_stage {
        return Err(ParseError::whole_file("the Dockerfile has no FROM instruction"));
    }
    let unused_args = build_args
        .keys()
        .filter(|k| !state.declared.contains(*k) && !PREDEFINED_ARGS.contains(&k.as_str()))
        .cloned()
        .collect();
    Ok(Parsed { instructions, unused_args })
}

// ---------------------------------------------------------------------------------------------------------------
// Physical lines -> logical lines
// ---------------------------------------------------------------------------------------------------------------

struct LogicalLine {
    line: usize,
    text: String,
}

/// Parser directives are only honoured in an uninterrupted run of `# key=value` comments at the very top.
#[derive(Default)]
struct Directives {
    done: bool,
    seen: BTreeSet<String>,
}

impl Directives {
    /// Returns the new escape character if `line` (left-trimmed) is an `escape` directive.
    fn observe(&mut self, line: &str, lineno: usize) -> Result<Option<char>, ParseError> {
        if self.done {
            return Ok(None);
        }
        let Some((key, value)) = parse_directive(line) else {
            self.done = true;
            return Ok(None);
        };
        // Unknown directives are plain comments and, like any comment, end the directive block.
        if !matches!(key.as_str(), "escape" | "syntax" | "check") {
            self.done = true;
            return Ok(None);
        }
        if !self.seen.insert(key.clone()) {
            return Err(ParseError::at(lineno, format!("only one {key} parser directive can be used")));
        }
        if key != "escape" {
            return Ok(None);
        }
        match value {
            "\\" => Ok(Some('\\')),
            "`" => Ok(Some('`')),
            other => {
                Err(ParseError::at(lineno, format!("invalid escape token {} does not match ` or \\", quoted(other))))
            }
        }
    }
}

/// Matches Docker's `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`, returning the lower-cased key and the value.
fn parse_directive(line: &str) -> Option<(String, &str)> {
    let is_re_space = |c: char| matches!(c, ' ' | '\t' | '\n' | '\x0c' | '\r');
    let rest = line.strip_prefix('#')?.trim_start_matches(is_re_space);
    let name_len = rest
        .bytes()
        .enumerate()
        .take_while(|&(i, b)| if i == 0 { b.is_ascii_alphabetic() } else { b.is_ascii_alphanumeric() })
        .count();
    if name_len == 0 {
        return None;
    }
    let (name, rest) = rest.split_at(name_len);
    let value = rest.trim_start_matches(is_re_space).strip_prefix('=')?.trim_matches(is_re_space);
    if value.is_empty() {
        return None;
    }
    Some((name.to_ascii_lowercase(), value))
}

/// If `line` ends with the escape character (optionally followed by blanks), returns it without them.
fn strip_continuation(line: &str, escape: char) -> Option<&str> {
    line.trim_end_matches([' ', '\t']).strip_suffix(escape)
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// Splits the file into instructions the way BuildKit's scanner does: directives first, then comments and blank
/// lines dropped, continuation lines joined (without trimming them, so `RUN a \` + `    b` keeps the spaces), with
/// comment and blank lines inside a continuation skipped.
fn logical_lines(src: &str) -> Result<(char, Vec<LogicalLine>), ParseError> {
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    let mut escape = '\\';
    let mut directives = Directives::default();
    let mut out: Vec<LogicalLine> = Vec::new();
    let mut lines = src.split('\n').enumerate().map(|(i, l)| (i + 1, l.strip_suffix('\r').unwrap_or(l)));

    while let Some((lineno, raw)) = lines.next() {
        let first = raw.trim_start();
        if let Some(esc) = directives.observe(first, lineno)? {
            escape = esc;
        }
        if first.is_empty() || first.starts_with('#') {
            continue;
        }
        let mut text = String::new();
        let mut continued = match strip_continuation(first, escape) {
            Some(s) => {
                text.push_str(s);
                true
            }
            None => {
                text.push_str(first);
                false
            }
        };
        while continued {
            // A continuation at end of file simply ends the instruction, as in Docker.
            let Some((_, next)) = lines.next() else { break };
            if next.trim_start().is_empty() || is_comment(next) {
                continue;
            }
            match strip_continuation(next, escape) {
                Some(s) => text.push_str(s),
                None => {
                    text.push_str(next);
                    continued = false;
                }
            }
        }
        let trimmed = text.trim();
        if trimmed.is_empty() {
            continue;
        }
        if out.len() >= MAX_INSTRUCTIONS {
            return Err(ParseError::at(lineno, format!("too many instructions (limit {MAX_INSTRUCTIONS})")));
        }
        out.push(LogicalLine { line: lineno, text: trimmed.to_string() });
    }
    Ok((escape, out))
}

// ---------------------------------------------------------------------------------------------------------------
// Instruction dispatch
// ---------------------------------------------------------------------------------------------------------------

struct State<'a> {
    escape: char,
    build_args: &'a BTreeMap<String, String>,
    base_env: &'a BTreeMap<String, String>,
    in_stage: bool,
    /// ARGs declared before FROM; only these are visible to FROM itself.
    meta_args: BTreeMap<String, Option<String>>,
    /// ARGs declared inside the stage; `None` = declared without any value (unset for substitution).
    stage_args: BTreeMap<String, Option<String>>,
    env: BTreeMap<String, String>,
    shell: Vec<String>,
    declared: BTreeSet<String>,
    budget: usize,
}

/// Whitespace as in Docker's `reWhitespace` (`[\t\v\f\r ]+`), used to split keywords and plain-form arguments.
fn is_re_ws(c: char) -> bool {
    matches!(c, '\t' | '\x0b' | '\x0c' | '\r' | ' ')
}

fn split_re_ws(s: &str) -> Vec<&str> {
    s.split(is_re_ws).filter(|w| !w.is_empty()).collect()
}

/// Splits `KEYWORD rest` on the first whitespace run.
fn split_command(text: &str) -> (&str, &str) {
    match text.find(is_re_ws) {
        Some(i) => (&text[..i], text[i..].trim_start_matches(is_re_ws)),
        None => (text, ""),
    }
}

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

impl State<'_> {
    fn instruction(&mut self, logical: &LogicalLine) -> Result<Instruction, ParseError> {
        let line = logical.line;
        let (keyword_raw, rest) = split_command(&logical.text);
        let Some(&keyword) = KEYWORDS.iter().find(|k| k.eq_ignore_ascii_case(keyword_raw)) else {
            return Err(ParseError::at(line, format!("unknown instruction {}", quoted(keyword_raw))));
        };
        if !self.in_stage && keyword != "FROM" && keyword != "ARG" {
            return Err(ParseError::at(
                line,
                format!("the first instruction must be FROM (only ARG may precede it), found {}", quoted(keyword)),
            ));
        }
        if self.in_stage && keyword == "FROM" {
            return Err(ParseError::at(line, "multi-stage builds are not supported (second FROM)"));
        }
        let (flag_words, rest) = extract_flags(rest);
        let rest = rest.trim();
        let text = logical.text.clone();
        let flags = parse_flags(flag_words, keyword, line)?;

        match keyword {
            "FROM" => self.from(rest, flags, line, text),
            "ARG" => {
                no_flags(&flags, keyword, line)?;
                self.arg(rest, line, text)
            }
            "RUN" => {
                no_flags(&flags, keyword, line)?;
                let argv = self.command_argv(rest, keyword, true, line)?;
                let build_args = self.run_build_args().map_err(|m| ParseError::at(line, m))?;
                Ok(Instruction::Run { argv, build_args, line, text })
            }
            "CMD" => {
                no_flags(&flags, keyword, line)?;
                Ok(Instruction::Cmd { argv: self.command_argv(rest, keyword, false, line)?, line, text })
            }
            "ENTRYPOINT" => {
                no_flags(&flags, keyword, line)?;
                Ok(Instruction::Entrypoint { argv: self.command_argv(rest, keyword, false, line)?, line, text })
            }
            "SHELL" => {
                no_flags(&flags, keyword, line)?;
                let argv = match parse_json_array(rest) {
                    Json::Array(v) if !v.is_empty() => v,
                    Json::Array(_) => return Err(ParseError::at(line, "SHELL requires at least one argument")),
                    _ => return Err(ParseError::at(line, "SHELL requires the arguments to be in JSON form")),
                };
                self.shell = argv.clone();
                Ok(Instruction::Shell { argv, line, text })
            }
            "COPY" | "ADD" => self.copy(keyword, rest, flags, line, text),
            "ENV" => {
                no_flags(&flags, keyword, line)?;
                let vars = self.name_values(rest, keyword, line)?;
                for (k, v) in &vars {
                    self.env.insert(k.clone(), v.clone());
                }
                Ok(Instruction::Env { vars, line, text })
            }
            "LABEL" => {
                no_flags(&flags, keyword, line)?;
                Ok(Instruction::Label { labels: self.name_values(rest, keyword, line)?, line, text })
            }
            "MAINTAINER" => {
                no_flags(&flags, keyword, line)?;
                if rest.is_empty() {
                    return Err(ParseError::at(line, "MAINTAINER requires exactly one argument"));
                }
                Ok(Instruction::Label { labels: vec![("maintainer".to_string(), rest.to_string())], line, text })
            }
            "WORKDIR" => {
                no_flags(&flags, keyword, line)?;
                Ok(Instruction::Workdir { path: self.single_value(rest, keyword, line)?, line, text })
            }
            "USER" => {
                no_flags(&flags, keyword, line)?;
                Ok(Instruction::User { user: self.single_value(rest, keyword, line)?, line, text })
            }
            "STOPSIGNAL" => {
                no_flags(&flags, keyword, line)?;
                let signal = self.single_value(rest, keyword, line)?;
                validate_signal(&signal).map_err(|m| ParseError::at(line, m))?;
                Ok(Instruction::StopSignal { signal, line, text })
            }
            "EXPOSE" => {
                no_flags(&flags, keyword, line)?;
                self.expose(rest, line, text)
            }
            "VOLUME" => {
                no_flags(&flags, keyword, line)?;
                self.volume(rest, line, text)
            }
            "HEALTHCHECK" => {
                flags.only(&["interval", "timeout", "start-period", "start-interval", "retries"], keyword, line)?;
                check_healthcheck(rest).map_err(|m| ParseError::at(line, m))?;
                Ok(Instruction::Ignored { keyword: "HEALTHCHECK", line, text })
            }
            "ONBUILD" => {
                no_flags(&flags, keyword, line)?;
                check_onbuild(rest).map_err(|m| ParseError::at(line, m))?;
                Ok(Instruction::Ignored { keyword: "ONBUILD", line, text })
            }
            // KEYWORDS and this match are kept in sync; reaching here is a bug, reported rather than panicking.
            other => Err(ParseError::at(line, format!("instruction {} is not implemented", quoted(other)))),
        }
    }

    /// Substitutes variables in one word with the scope Docker uses at this point of the file.
    fn expand(&mut self, word: &str, line: usize) -> Result<String, ParseError> {
        let scope = if self.in_stage {
            Scope { env: Some(&self.env), args: &self.stage_args }
        } else {
            Scope { env: None, args: &self.meta_args }
        };
        let mut lexer = Lexer::new(word, self.escape, &scope, &mut self.budget);
        lexer.process_stop_on(None, None).map_err(|m| ParseError::at(line, format!("{m} in {}", quoted(word))))
    }

    /// Like [`State::expand`] but splits the result into words (quotes protect whitespace), as Docker does for
    /// EXPOSE so `EXPOSE $PORTS` works with `PORTS="80 443"`.
    fn expand_words(&mut self, word: &str, line: usize) -> Result<Vec<String>, ParseError> {
        let scope = Scope { env: Some(&self.env), args: &self.stage_args };
        let mut words = Words::default();
        let mut lexer = Lexer::new(word, self.escape, &scope, &mut self.budget);
        lexer
            .process_stop_on(None, Some(&mut words))
            .map_err(|m| ParseError::at(line, format!("{m} in {}", quoted(word))))?;
        Ok(words.finish())
    }

    fn from(&mut self, rest: &str, flags: Flags, line: usize, text: String) -> Result<Instruction, ParseError> {
        // --platform is accepted for compatibility; the runtime only builds for its own platform.
        flags.only(&["platform"], "FROM", line)?;
        let args = split_re_ws(rest);
        let (image_raw, alias_raw) = match args.as_slice() {
            [image] => (*image, None),
            [image, as_kw, name] if as_kw.eq_ignore_ascii_case("as") => (*image, Some(*name)),
            [_, other, _] => {
                return Err(ParseError::at(
                    line,
                    format!("FROM expects AS as its second argument, found {}", quoted(other)),
                ))
            }
            _ => return Err(ParseError::at(line, "FROM requires either one or three arguments")),
        };
        let image = self.expand(image_raw, line)?;
        if image.is_empty() {
            return Err(ParseError::at(
                line,
                format!("base image name {} is empty after substitution", quoted(image_raw)),
            ));
        }
        let alias = match alias_raw {
            None => None,
            Some(name) => {
                let name = name.to_ascii_lowercase();
                if !is_valid_stage_name(&name) {
                    return Err(ParseError::at(
                        line,
                        format!(
                            "invalid name for build stage: {}, name can't start with a number or contain symbols",
                            quoted(&name)
                        ),
                    ));
                }
                Some(name)
            }
        };
        self.in_stage = true;
        self.env = self.base_env.clone();
        charge(&mut self.budget, self.env.iter().map(|(k, v)| k.len() + v.len()).sum())
            .map_err(|m| ParseError::at(line, m))?;
        Ok(Instruction::From { image, alias, line, text })
    }

    fn arg(&mut self, rest: &str, line: usize, text: String) -> Result<Instruction, ParseError> {
        let words = parse_words(rest, self.escape);
        if words.is_empty() {
            return Err(ParseError::at(line, "ARG requires at least one argument"));
        }
        // All defaults are substituted before any is applied: `ARG A=1 B=$A` sees the previous A, like Docker.
        let mut decls = Vec::with_capacity(words.len());
        for word in &words {
            let (name, default) = match word.split_once('=') {
                Some((n, d)) => (n, Some(d)),
                None => (word.as_str(), None),
            };
            if name.is_empty() {
                return Err(ParseError::at(line, format!("ARG names can not be blank: {}", quoted(word))));
            }
            let default = match default {
                Some(d) => Some(self.expand(d, line)?),
                None => None,
            };
            decls.push((name.to_string(), default));
        }
        let mut args = Vec::with_capacity(decls.len());
        for (name, default) in decls {
            self.declared.insert(name.clone());
            let value = match self.build_args.get(&name) {
                Some(given) => Some(given.clone()),
                None if default.is_some() => default,
                // Inside the stage a bare `ARG X` re-imports the value of an ARG X declared before FROM.
                None if self.in_stage => self.meta_args.get(&name).cloned().flatten(),
                None => None,
            };
            let copied = value.as_ref().map_or(0, |v| v.len()) * 2 + name.len();
            charge(&mut self.budget, copied).map_err(|m| ParseError::at(line, m))?;
            let scope = if self.in_stage { &mut self.stage_args } else { &mut self.meta_args };
            scope.insert(name.clone(), value.clone());
            args.push((name, value));
        }
        Ok(Instruction::Arg { args, line, text })
    }

    /// RUN/CMD/ENTRYPOINT argument: JSON exec form, or shell form wrapped in the current SHELL. Like Docker, text
    /// that merely starts with `[` but is not valid JSON is shell form, while valid JSON with non-strings is an error.
    fn command_argv(
        &mut self,
        rest: &str,
        keyword: &str,
        is_run: bool,
        line: usize,
    ) -> Result<Vec<String>, ParseError> {
        if rest.is_empty() {
            return Err(ParseError::at(line, format!("{keyword} requires at least one argument")));
        }
        match parse_json_array(rest) {
            Json::Array(argv) => {
                if is_run && argv.is_empty() {
                    return Err(ParseError::at(line, "RUN requires at least one argument"));
                }
                Ok(argv)
            }
            Json::NotStringArray => {
                Err(ParseError::at(line, format!("{keyword}: JSON array arguments must all be strings")))
            }
            Json::Invalid => {
                if is_run && rest.split_whitespace().any(is_heredoc_word) {
                    return Err(ParseError::at(line, "heredocs (<<EOF) are not supported"));
                }
                charge(&mut self.budget, self.shell.iter().map(String::len).sum::<usize>() + rest.len())
                    .map_err(|m| ParseError::at(line, m))?;
                let mut argv = self.shell.clone();
                argv.push(rest.to_string());
                Ok(argv)
            }
        }
    }

    fn run_build_args(&mut self) -> Result<Vec<(String, String)>, String> {
        let mut out: Vec<(String, String)> = Vec::new();
        for (name, value) in &self.stage_args {
            if let Some(value) = value {
                if !self.env.contains_key(name) {
                    out.push((name.clone(), value.clone()));
                }
            }
        }
        for name in PREDEFINED_ARGS {
            if self.stage_args.contains_key(name) || self.env.contains_key(name) {
                continue;
            }
            if let Some(value) = self.build_args.get(name) {
                out.push((name.to_string(), value.clone()));
            }
        }
        out.sort();
        charge(&mut self.budget, out.iter().map(|(k, v)| k.len() + v.len()).sum())?;
        Ok(out)
    }

    fn copy(
        &mut self,
        keyword: &'static str,
        rest: &str,
        flags: Flags,
        line: usize,
        text: String,
    ) -> Result<Instruction, ParseError> {
        flags.only(&["chown", "chmod"], keyword, line)?;
        let words: Vec<String> = match parse_json_array(rest) {
            Json::Array(v) => v,
            Json::NotStringArray => {
                return Err(ParseError::at(line, format!("{keyword}: JSON array arguments must all be strings")))
            }
            Json::Invalid => {
                let words = split_re_ws(rest);
                if words.iter().any(|w| is_heredoc_word(w)) {
                    return Err(ParseError::at(line, "heredocs (<<EOF) are not supported"));
                }
                words.into_iter().map(str::to_string).collect()
            }
        };
        if words.len() < 2 {
            return Err(ParseError::at(
                line,
                format!("{keyword} requires at least two arguments (source and destination), got {}", words.len()),
            ));
        }
        let mut expanded = Vec::with_capacity(words.len());
        for word in &words {
            expanded.push(self.expand(word, line)?);
        }
        let Some(dest) = expanded.pop() else {
            return Err(ParseError::at(line, format!("{keyword} requires a destination")));
        };
        let chown = match flags.get("chown") {
            Some(v) => Some(self.expand(v, line)?),
            None => None,
        };
        let chmod = match flags.get("chmod") {
            Some(v) => {
                let v = self.expand(v, line)?;
                Some(parse_chmod(&v).map_err(|m| ParseError::at(line, m))?)
            }
            None => None,
        };
        Ok(if keyword == "ADD" {
            Instruction::Add { srcs: expanded, dest, chown, chmod, line, text }
        } else {
            Instruction::Copy { srcs: expanded, dest, chown, chmod, line, text }
        })
    }

    /// ENV/LABEL body: `key value` (legacy, the whole rest is the value) or `k=v k2="v 2"`. Every value is
    /// substituted against the scope before the instruction, so `ENV A=2 B=$A` gives B the previous A (Docker).
    fn name_values(&mut self, rest: &str, keyword: &str, line: usize) -> Result<Vec<(String, String)>, ParseError> {
        let words = parse_words(rest, self.escape);
        let Some(first) = words.first() else {
            return Err(ParseError::at(line, format!("{keyword} requires at least one argument")));
        };
        let mut raw: Vec<(String, String)> = Vec::new();
        if !first.contains('=') {
            let parts: Vec<&str> = rest.splitn(2, is_re_ws).collect();
            match parts.as_slice() {
                [key, value] if !value.trim_start_matches(is_re_ws).is_empty() => {
                    raw.push((key.to_string(), value.trim_start_matches(is_re_ws).to_string()))
                }
                _ => return Err(ParseError::at(line, format!("{keyword} must have two arguments"))),
            }
        } else {
            for word in &words {
                let Some((k, v)) = word.split_once('=') else {
                    return Err(ParseError::at(
                        line,
                        format!("syntax error - can't find = in {}. Must be of the form: name=value", quoted(word)),
                    ));
                };
                raw.push((k.to_string(), v.to_string()));
            }
        }
        let mut out = Vec::with_capacity(raw.len());
        for (k, v) in &raw {
            let key = self.expand(k, line)?;
            if key.is_empty() {
                return Err(ParseError::at(line, format!("{keyword} names can not be blank")));
            }
            let value = self.expand(v, line)?;
            out.push((key, value));
        }
        Ok(out)
    }

    /// WORKDIR/USER/STOPSIGNAL: the whole rest is one word (so `WORKDIR /a b` is the path `/a b`, as in Docker).
    fn single_value(&mut self, rest: &str, keyword: &str, line: usize) -> Result<String, ParseError> {
        if rest.is_empty() {
            return Err(ParseError::at(line, format!("{keyword} requires exactly one argument")));
        }
        let value = self.expand(rest, line)?;
        if value.is_empty() {
            return Err(ParseError::at(line, format!("{keyword} value {} is empty after substitution", quoted(rest))));
        }
        Ok(value)
    }

    fn expose(&mut self, rest: &str, line: usize, text: String) -> Result<Instruction, ParseError> {
        let words = split_re_ws(rest);
        if words.is_empty() {
            return Err(ParseError::at(line, "EXPOSE requires at least one argument"));
        }
        let mut ports = Vec::new();
        for word in words {
            for spec in self.expand_words(word, line)? {
                ports.push(parse_port_spec(&spec).map_err(|m| ParseError::at(line, m))?);
            }
        }
        if ports.is_empty() {
            return Err(ParseError::at(line, "EXPOSE has no ports after substitution"));
        }
        Ok(Instruction::Expose { ports, line, text })
    }

    fn volume(&mut self, rest: &str, line: usize, text: String) -> Result<Instruction, ParseError> {
        let words: Vec<String> = match parse_json_array(rest) {
            Json::Array(v) => v,
            Json::NotStringArray => {
                return Err(ParseError::at(line, "VOLUME: JSON array arguments must all be strings"));
            }
            Json::Invalid => split_re_ws(rest).into_iter().map(str::to_string).collect(),
        };
        if words.is_empty() {
            return Err(ParseError::at(line, "VOLUME requires at least one argument"));
        }
        let mut paths = Vec::with_capacity(words.len());
        for word in &words {
            let path = self.expand(word, line)?;
            if path.is_empty() {
                return Err(ParseError::at(line, "VOLUME specified can not be an empty string"));
            }
            paths.push(path);
        }
        Ok(Instruction::Volume { paths, line, text })
    }
}

fn is_valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

/// Detects BuildKit heredoc openers (`<<EOF`, `<<-EOF`, `<<"EOF"`) but not here-strings (`<<<`).
fn is_heredoc_word(word: &str) -> bool {
    let Some(rest) = word.strip_prefix("<<") else { return false };
    let rest = rest.strip_prefix('-').unwrap_or(rest);
    let rest = rest.strip_prefix(['"', '\'']).unwrap_or(rest);
    rest.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
}

fn parse_chmod(value: &str) -> Result<u32, String> {
    let valid = !value.is_empty() && value.len() <= 4 && value.bytes().all(|b| (b'0'..=b'7').contains(&b));
    match u32::from_str_radix(value, 8) {
        Ok(mode) if valid => Ok(mode),
        _ => Err(format!("invalid --chmod value {}: expected an octal mode such as 755", quoted(value))),
    }
}

/// Accepts what Docker's `signal.ParseSignal` could plausibly accept; mapping names to numbers is left to the caller
/// because the signal table is platform specific.
fn validate_signal(signal: &str) -> Result<(), String> {
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
fn parse_port_spec(spec: &str) -> Result<PortSpec, String> {
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

fn check_healthcheck(rest: &str) -> Result<(), String> {
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

fn check_onbuild(rest: &str) -> Result<(), String> {
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

fn charge(budget: &mut usize, bytes: usize) -> Result<(), String> {
    *budget = budget.saturating_add(bytes);
    if *budget > MAX_EXPANSION_BYTES {
        return Err(format!("variable substitution produces more than {MAX_EXPANSION_BYTES} bytes"));
    }
    Ok(())
}

/// Quotes `s` for an error message, truncating very long input.
fn quoted(s: &str) -> String {
    match s.char_indices().nth(ERROR_SNIPPET_CHARS) {
        Some((cut, _)) => format!("{:?}…", &s[..cut]),
        None => format!("{s:?}"),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Flags
// ---------------------------------------------------------------------------------------------------------------

/// `--name=value` flags in front of an instruction's arguments.
struct Flags {
    /// `None` for a bare `--name`; Docker's boolean flags (e.g. `--link`) look like that.
    values: BTreeMap<String, Option<String>>,
}

impl Flags {
    fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).and_then(|v| v.as_deref())
    }

    /// Rejects flags outside `allowed`; every allowed flag takes a value (a bare `--chown` is an error in Docker).
    fn only(&self, allowed: &[&str], keyword: &str, line: usize) -> Result<(), ParseError> {
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

fn no_flags(flags: &Flags, keyword: &str, line: usize) -> Result<(), ParseError> {
    flags.only(&[], keyword, line)
}

fn parse_flags(words: Vec<String>, keyword: &str, line: usize) -> Result<Flags, ParseError> {
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

/// Port of BuildKit's `extractBuilderFlags`: leading words starting with `--` are flags (quotes and `\` handled,
/// always with `\` regardless of the escape directive), a lone `--` ends them. Returns the flags and the remainder.
fn extract_flags(line: &str) -> (Vec<String>, &str) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote(char),
    }
    let mut words = Vec::new();
    let mut word = String::new();
    let mut blank_ok = false;
    let mut phase = Phase::Spaces;
    let mut it = line.char_indices();
    while let Some((pos, ch)) = it.next() {
        match phase {
            Phase::Spaces => {
                if ch.is_whitespace() {
                    continue;
                }
                if !line[pos..].starts_with("--") {
                    return (words, &line[pos..]);
                }
                phase = Phase::Word;
                word.push(ch);
            }
            Phase::Word => {
                if ch.is_whitespace() {
                    if word == "--" {
                        return (words, &line[pos..]);
                    }
                    if blank_ok || !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                    blank_ok = false;
                    phase = Phase::Spaces;
                } else if ch == '\'' || ch == '"' {
                    blank_ok = true;
                    phase = Phase::Quote(ch);
                } else if ch == '\\' {
                    if let Some((_, next)) = it.next() {
                        word.push(next);
                    }
                } else {
                    word.push(ch);
                }
            }
            Phase::Quote(q) => {
                if ch == q {
                    phase = Phase::Word;
                } else if ch == '\\' {
                    match it.next() {
                        Some((_, next)) => word.push(next),
                        None => phase = Phase::Word,
                    }
                } else {
                    word.push(ch);
                }
            }
        }
    }
    if phase != Phase::Spaces && word != "--" && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    (words, "")
}

// ---------------------------------------------------------------------------------------------------------------
// Word splitting (ENV/LABEL/ARG) — port of BuildKit's parseWords: quotes and escapes are kept verbatim so the
// substitution lexer can interpret them afterwards.
// ---------------------------------------------------------------------------------------------------------------

fn parse_words(rest: &str, escape: char) -> Vec<String> {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote(char),
    }
    let mut words = Vec::new();
    let mut word = String::new();
    let mut blank_ok = false;
    let mut phase = Phase::Spaces;
    let mut it = rest.chars();
    while let Some(mut ch) = it.next() {
        if phase == Phase::Spaces {
            if ch.is_whitespace() {
                continue;
            }
            phase = Phase::Word;
        }
        match phase {
            Phase::Word => {
                if ch.is_whitespace() {
                    phase = Phase::Spaces;
                    if blank_ok || !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                    blank_ok = false;
                    continue;
                }
                if ch == '\'' || ch == '"' {
                    blank_ok = true;
                    phase = Phase::Quote(ch);
                }
                if ch == escape {
                    // Unquoted escape: keep it plus the next char (even a quote) so the lexer sees the escape.
                    let Some(next) = it.next() else { continue };
                    word.push(ch);
                    ch = next;
                }
                word.push(ch);
            }
            Phase::Quote(q) => {
                if ch == q {
                    phase = Phase::Word;
                }
                // Nothing can be escaped inside single quotes.
                if ch == escape && q != '\'' {
                    let Some(next) = it.next() else {
                        phase = Phase::Word;
                        continue;
                    };
                    word.push(ch);
                    ch = next;
                }
                word.push(ch);
            }
            Phase::Spaces => {}
        }
    }
    if phase != Phase::Spaces && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

// ---------------------------------------------------------------------------------------------------------------
// JSON exec form
// ---------------------------------------------------------------------------------------------------------------

enum Json {
    Array(Vec<String>),
    /// Valid JSON array with a non-string element: Docker reports an error rather than falling back to shell form.
    NotStringArray,
    /// Not JSON at all: Docker treats the text as shell form.
    Invalid,
}

/// Parses a JSON array of strings. Hand-written (no serde) to keep the module dependency free; non-string elements
/// are fully validated so `[1]` is an error while `[ -f x ]` is shell form, matching Docker.
fn parse_json_array(s: &str) -> Json {
    let s = s.trim_start();
    if !s.starts_with('[') {
        return Json::Invalid;
    }
    let mut c = JsonCursor { s, b: s.as_bytes(), pos: 1 };
    let mut out = Vec::new();
    let mut all_strings = true;
    c.ws();
    if !c.eat(b']') {
        loop {
            c.ws();
            if c.peek() == Some(b'"') {
                match c.string() {
                    Some(v) => out.push(v),
                    None => return Json::Invalid,
                }
            } else if c.skip_value() {
                all_strings = false;
            } else {
                return Json::Invalid;
            }
            c.ws();
            if c.eat(b',') {
                continue;
            }
            if c.eat(b']') {
                break;
            }
            return Json::Invalid;
        }
    }
    c.ws();
    if c.pos != c.b.len() {
        return Json::Invalid;
    }
    if all_strings {
        Json::Array(out)
    } else {
        Json::NotStringArray
    }
}

struct JsonCursor<'a> {
    s: &'a str,
    b: &'a [u8],
    pos: usize,
}

impl JsonCursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.s.get(self.pos..self.pos + 4)?;
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        self.pos += 4;
        u32::from_str_radix(digits, 16).ok()
    }

    /// Decodes a JSON string at the cursor; lone surrogates become U+FFFD like Go's decoder.
    fn string(&mut self) -> Option<String> {
        if !self.eat(b'"') {
            return None;
        }
        let mut out = String::new();
        let mut seg = self.pos;
        loop {
            match self.peek()? {
                b'"' => {
                    out.push_str(self.s.get(seg..self.pos)?);
                    self.pos += 1;
                    return Some(out);
                }
                b'\\' => {
                    out.push_str(self.s.get(seg..self.pos)?);
                    self.pos += 1;
                    let esc = self.peek()?;
                    self.pos += 1;
                    let ch = match esc {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => return None,
                    };
                    out.push(ch);
                    seg = self.pos;
                }
                0..=0x1f => return None,
                _ => self.pos += 1,
            }
        }
    }

    fn unicode_escape(&mut self) -> Option<char> {
        let hi = self.hex4()?;
        if !(0xD800..0xDC00).contains(&hi) {
            return Some(char::from_u32(hi).unwrap_or('\u{FFFD}'));
        }
        let save = self.pos;
        if self.b.get(self.pos) == Some(&b'\\') && self.b.get(self.pos + 1) == Some(&b'u') {
            self.pos += 2;
            if let Some(lo) = self.hex4() {
                if (0xDC00..0xE000).contains(&lo) {
                    return Some(char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)).unwrap_or('\u{FFFD}'));
                }
            }
            self.pos = save;
        }
        Some('\u{FFFD}')
    }

    fn literal(&mut self, lit: &[u8]) -> bool {
        if self.b.get(self.pos..self.pos + lit.len()) == Some(lit) {
            self.pos += lit.len();
            true
        } else {
            false
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> bool {
        self.eat(b'-');
        if self.eat(b'0') {
            // A leading zero may not be followed by more digits.
        } else if self.digits() == 0 {
            return false;
        }
        if self.eat(b'.') && self.digits() == 0 {
            return false;
        }
        if self.eat(b'e') || self.eat(b'E') {
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if self.digits() == 0 {
                return false;
            }
        }
        true
    }

    fn object_key(&mut self) -> bool {
        self.ws();
        if self.peek() != Some(b'"') || self.string().is_none() {
            return false;
        }
        self.ws();
        self.eat(b':')
    }

    /// Validates and skips any JSON value. Iterative with an explicit stack so `[[[[...` cannot overflow the stack.
    fn skip_value(&mut self) -> bool {
        let mut stack: Vec<u8> = Vec::new();
        loop {
            self.ws();
            let ok = match self.peek() {
                Some(b'"') => self.string().is_some(),
                Some(b'[') => {
                    self.pos += 1;
                    self.ws();
                    if !self.eat(b']') {
                        stack.push(b']');
                        continue;
                    }
                    true
                }
                Some(b'{') => {
                    self.pos += 1;
                    self.ws();
                    if !self.eat(b'}') {
                        stack.push(b'}');
                        if !self.object_key() {
                            return false;
                        }
                        continue;
                    }
                    true
                }
                Some(b't') => self.literal(b"true"),
                Some(b'f') => self.literal(b"false"),
                Some(b'n') => self.literal(b"null"),
                Some(b'-' | b'0'..=b'9') => self.number(),
                _ => false,
            };
            if !ok {
                return false;
            }
            // A value just ended: close as many containers as the input closes, then expect the next value.
            loop {
                let Some(&close) = stack.last() else { return true };
                self.ws();
                if self.eat(b',') {
                    if close == b'}' && !self.object_key() {
                        return false;
                    }
                    break;
                }
                if self.eat(close) {
                    stack.pop();
                    continue;
                }
                return false;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Variable substitution — port of BuildKit's shell lexer (ProcessWord / ProcessWords).
// ---------------------------------------------------------------------------------------------------------------

/// Variables visible to substitution: ENV shadows ARG, as in Docker.
struct Scope<'s> {
    env: Option<&'s BTreeMap<String, String>>,
    args: &'s BTreeMap<String, Option<String>>,
}

impl<'s> Scope<'s> {
    fn get(&self, name: &str) -> Option<&'s str> {
        if let Some(value) = self.env.and_then(|env| env.get(name)) {
            return Some(value);
        }
        self.args.get(name).and_then(|v| v.as_deref())
    }
}

/// Accumulates words for ProcessWords semantics: whitespace from literal text and substituted values splits, quoted
/// and escaped whitespace does not.
#[derive(Default)]
struct Words {
    word: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }

    fn add_raw_char(&mut self, ch: char) {
        self.word.push(ch);
        self.in_word = true;
    }

    fn add_str(&mut self, s: &str) {
        for ch in s.chars() {
            self.add_char(ch);
        }
    }

    fn add_raw_str(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(self.word);
        }
        self.words
    }
}

struct Lexer<'a, 'b> {
    chars: Peekable<Chars<'a>>,
    escape: char,
    scope: &'b Scope<'b>,
    budget: &'b mut usize,
    depth: usize,
}

impl<'a, 'b> Lexer<'a, 'b> {
    fn new(word: &'a str, escape: char, scope: &'b Scope<'b>, budget: &'b mut usize) -> Self {
        Lexer { chars: word.chars().peekable(), escape, scope, budget, depth: 0 }
    }

    /// Processes until `stop` (consumed) or end of input. `words`, when given, receives ProcessWords splitting.
    fn process_stop_on(&mut self, stop: Option<char>, mut words: Option<&mut Words>) -> Result<String, String> {
        let mut result = String::new();
        while let Some(&ch) = self.chars.peek() {
            if Some(ch) == stop {
                self.chars.next();
                return Ok(result);
            }
            match ch {
                '\'' => {
                    let s = self.single_quote()?;
                    if let Some(w) = words.as_deref_mut() {
                        w.add_raw_str(&s);
                    }
                    result.push_str(&s);
                }
                '"' => {
                    let s = self.double_quote()?;
                    if let Some(w) = words.as_deref_mut() {
                        w.add_raw_str(&s);
                    }
                    result.push_str(&s);
                }
                '$' => {
                    let s = self.dollar()?;
                    if let Some(w) = words.as_deref_mut() {
                        w.add_str(&s);
                    }
                    result.push_str(&s);
                }
                _ => {
                    self.chars.next();
                    if ch == self.escape {
                        // An escape at the very end is dropped, like Docker.
                        let Some(escaped) = self.chars.next() else { break };
                        if let Some(w) = words.as_deref_mut() {
                            w.add_raw_char(escaped);
                        }
                        result.push(escaped);
                    } else {
                        if let Some(w) = words.as_deref_mut() {
                            w.add_char(ch);
                        }
                        result.push(ch);
                    }
                }
            }
        }
        match stop {
            Some(stop) => Err(format!("unexpected end of statement while looking for matching {stop}")),
            None => Ok(result),
        }
    }

    fn single_quote(&mut self) -> Result<String, String> {
        self.chars.next();
        let mut result = String::new();
        loop {
            match self.chars.next() {
                None => return Err("unexpected end of statement while looking for matching single-quote".to_string()),
                Some('\'') => return Ok(result),
                Some(c) => result.push(c),
            }
        }
    }

    /// Inside double quotes only `$` is special and the escape char only escapes `"`, `$` and itself (sh rules).
    fn double_quote(&mut self) -> Result<String, String> {
        self.chars.next();
        let mut result = String::new();
        loop {
            match self.chars.peek().copied() {
                None => return Err("unexpected end of statement while looking for matching double-quote".to_string()),
                Some('"') => {
                    self.chars.next();
                    return Ok(result);
                }
                Some('$') => {
                    let value = self.dollar()?;
                    result.push_str(&value);
                }
                Some(mut ch) => {
                    self.chars.next();
                    if ch == self.escape {
                        match self.chars.peek().copied() {
                            None => continue,
                            Some(next) if next == '"' || next == '$' || next == self.escape => {
                                self.chars.next();
                                ch = next;
                            }
                            Some(_) => {}
                        }
                    }
                    result.push(ch);
                }
            }
        }
    }

    fn lookup(&mut self, name: &str) -> Result<Option<&'b str>, String> {
        let value = self.scope.get(name);
        charge(self.budget, value.map_or(0, str::len))?;
        Ok(value)
    }

    fn dollar(&mut self) -> Result<String, String> {
        self.chars.next();
        if self.chars.peek() != Some(&'{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(self.lookup(&name)?.unwrap_or("").to_string());
        }
        self.chars.next();
        match self.chars.peek() {
            None => return Err("syntax error: missing '}'".to_string()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".to_string()),
            Some(_) => {}
        }
        let name = self.name();
        match self.chars.next() {
            Some('}') => Ok(self.lookup(&name)?.unwrap_or("").to_string()),
            None => Err("syntax error: missing '}'".to_string()),
            Some(':') => {
                let modifier = self.chars.next();
                let word = self.nested_word()?;
                let value = self.lookup(&name)?;
                let empty = value.is_none_or(str::is_empty);
                match modifier {
                    Some('-') => Ok(if empty { word } else { value.unwrap_or("").to_string() }),
                    Some('+') => Ok(if empty { String::new() } else { word }),
                    Some('?') if empty => Err(if word.is_empty() {
                        format!("{name}: is not allowed to be unset or empty")
                    } else {
                        format!("{name}: {word}")
                    }),
                    Some('?') => Ok(value.unwrap_or("").to_string()),
                    Some(other) => Err(format!("unsupported modifier ({other}) in substitution")),
                    None => Err("syntax error: missing '}'".to_string()),
                }
            }
            Some(modifier @ ('-' | '+' | '?')) => {
                let word = self.nested_word()?;
                let value = self.lookup(&name)?;
                match (modifier, value) {
                    ('-', None) => Ok(word),
                    ('+', Some(_)) => Ok(word),
                    ('+', None) => Ok(String::new()),
                    ('?', None) => Err(if word.is_empty() {
                        format!("{name}: is not allowed to be unset")
                    } else {
                        format!("{name}: {word}")
                    }),
                    (_, value) => Ok(value.unwrap_or("").to_string()),
                }
            }
            Some(_) => Err("missing ':' in substitution".to_string()),
        }
    }

    /// The `word` part of `${name:-word}`, which may itself contain quotes and substitutions.
    fn nested_word(&mut self) -> Result<String, String> {
        if self.depth >= MAX_SUBSTITUTION_DEPTH {
            return Err(format!("variable substitution nested deeper than {MAX_SUBSTITUTION_DEPTH} levels"));
        }
        self.depth += 1;
        let result = self.process_stop_on(Some('}'), None);
        self.depth -= 1;
        match result {
            Err(_) if self.chars.peek().is_none() => Err("syntax error: missing '}'".to_string()),
            other => other,
        }
    }

    /// Variable name: letters, digits and `_`; a leading digit run (`$1`) or one special char (`$@`) is a name by
    /// itself, matching sh and Docker.
    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(&ch) = self.chars.peek() {
            if name.is_empty() && ch.is_ascii_digit() {
                while let Some(&d) = self.chars.peek() {
                    if !d.is_ascii_digit() {
                        break;
                    }
                    name.push(d);
                    self.chars.next();
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!') {
                self.chars.next();
                name.push(ch);
                return name;
            }
            if !ch.is_alphanumeric() && ch != '_' {
                break;
            }
            name.push(ch);
            self.chars.next();
        }
        name
    }
}

// ---------------------------------------------------------------------------------------------------------------
// .dockerignore
// ---------------------------------------------------------------------------------------------------------------

/// Decides which build-context paths a `.dockerignore` excludes, with `moby/patternmatcher` semantics.
///
/// The glob matcher is hand-written rather than taken from a crate because it is small and Docker's semantics are
/// idiosyncratic: `**` followed by more pattern means "empty, or anything ending in `/`" (so `a**b` matches `a/x/b`),
/// `*`/`?` never cross `/`, a pattern that matches a parent directory excludes everything below it, and the last
/// matching pattern wins with `!` re-including. Matching is an NFA simulation: linear in path length times pattern
/// length, no backtracking, no recursion.
///
/// Known divergences from Docker, all in patterns that are broken or meaningless there: an escaped character always
/// matches itself (Docker compares wildcard-free patterns byte-for-byte, backslash included), and a literal `^`
/// outside `[...]` matches itself (Docker's regex treats it as an anchor).
///
/// Callers walking the context may skip an excluded directory entirely only when [`IgnoreMatcher::has_exceptions`]
/// is false; otherwise a `!` pattern may re-include something below it. Docker's CLI also always sends the
/// Dockerfile and `.dockerignore` themselves regardless of the patterns; that is up to the caller.
#[derive(Debug, Clone, Default)]
pub struct IgnoreMatcher {
    patterns: Vec<GlobPattern>,
}

#[derive(Debug, Clone)]
struct GlobPattern {
    exclusion: bool,
    toks: Vec<Tok>,
}

#[derive(Debug, Clone)]
enum Tok {
    Lit(char),
    /// `?`: one character other than `/`.
    AnyChar,
    /// `*`: any run of characters other than `/`.
    Star,
    /// `**` at the end of the pattern: anything at all.
    AnyRun,
    /// `**` (or `**/`) followed by more pattern: empty, or anything ending with `/`.
    DirPrefix,
    /// `[...]` / `[^...]`; like Docker's regex translation it can match `/`.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl IgnoreMatcher {
    /// Builds a matcher from `.dockerignore` content. Errors (with the line number) on malformed patterns such as an
    /// unclosed `[`, a lone `!`, or a trailing `\`, which Docker also rejects.
    pub fn new(content: &str) -> Result<Self, ParseError> {
        if content.len() > MAX_DOCKERIGNORE_BYTES {
            return Err(ParseError::whole_file(format!(
                ".dockerignore is {} bytes, larger than the {MAX_DOCKERIGNORE_BYTES} byte limit",
                content.len()
            )));
        }
        let content = content.strip_prefix('\u{feff}').unwrap_or(content);
        let mut patterns = Vec::new();
        for (idx, raw) in content.split('\n').enumerate() {
            let lineno = idx + 1;
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            // Docker only treats `#` in the first column as a comment, before trimming.
            if raw.starts_with('#') {
                continue;
            }
            let mut pattern = raw.trim();
            if pattern.is_empty() {
                continue;
            }
            let exclusion = pattern.starts_with('!');
            if exclusion {
                pattern = pattern[1..].trim();
                if pattern.is_empty() {
                    return Err(ParseError::at(lineno, "illegal exclusion pattern: \"!\""));
                }
            }
            let mut cleaned = clean_path(pattern);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
            let toks = compile_glob(&cleaned)
                .map_err(|m| ParseError::at(lineno, format!("{m} in pattern {}", quoted(raw.trim()))))?;
            patterns.push(GlobPattern { exclusion, toks });
        }
        Ok(IgnoreMatcher { patterns })
    }

    /// Whether the context-relative path (`/`-separated; a leading `/` or `./` is ignored) is excluded from the build
    /// context. The context root itself is never excluded.
    pub fn is_excluded(&self, rel_path: &str) -> bool {
        let cleaned = clean_path(rel_path);
        let path = cleaned.trim_start_matches('/');
        if path.is_empty() || path == "." {
            return false;
        }
        let mut excluded = false;
        for pattern in &self.patterns {
            // Last match wins, so a pattern that cannot change the current verdict need not be evaluated.
            if pattern.exclusion != excluded {
                continue;
            }
            if pattern.matches_self_or_parent(path) {
                excluded = !pattern.exclusion;
            }
        }
        excluded
    }

    /// Whether any `!` exception pattern exists (if not, an excluded directory can be pruned without descending).
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }

    /// Whether the file contained no patterns.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
}

/// Go's `filepath.Clean` for `/` paths: collapse `//`, drop `.`, resolve `..` lexically, drop trailing `/`.
fn clean_path(path: &str) -> String {
    if path.is_empty() {
        return ".".to_string();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ => {
                    if !rooted {
                        parts.push("..");
                    }
                }
            },
            s => parts.push(s),
        }
    }
    let body = parts.join("/");
    if rooted {
        format!("/{body}")
    } else if body.is_empty() {
        ".".to_string()
    } else {
        body
    }
}

fn compile_glob(pattern: &str) -> Result<Vec<Tok>, &'static str> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        i += 1;
        let tok = match c {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                // `**/` is treated as `**`: the slash is part of the "any directories" prefix.
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i >= chars.len() {
                    Tok::AnyRun
                } else {
                    Tok::DirPrefix
                }
            }
            '*' => Tok::Star,
            '?' => Tok::AnyChar,
            '\\' => match chars.get(i) {
                Some(&next) => {
                    i += 1;
                    Tok::Lit(next)
                }
                None => return Err("trailing backslash"),
            },
            '[' => {
                let negated = chars.get(i) == Some(&'^');
                if negated {
                    i += 1;
                }
                let mut ranges = Vec::new();
                loop {
                    if chars.get(i) == Some(&']') && !ranges.is_empty() {
                        i += 1;
                        break;
                    }
                    let lo = class_char(&chars, &mut i)?;
                    let hi = if chars.get(i) == Some(&'-') {
                        i += 1;
                        class_char(&chars, &mut i)?
                    } else {
                        lo
                    };
                    if hi < lo {
                        return Err("invalid character class range");
                    }
                    ranges.push((lo, hi));
                }
                Tok::Class { negated, ranges }
            }
            other => Tok::Lit(other),
        };
        toks.push(tok);
    }
    Ok(toks)
}

/// One character of a `[...]` class, following Go's `filepath.Match` rules (`-` and `]` must be escaped).
fn class_char(chars: &[char], i: &mut usize) -> Result<char, &'static str> {
    match chars.get(*i) {
        None | Some('-') | Some(']') => Err("syntax error in character class"),
        Some('\\') => {
            let c = *chars.get(*i + 1).ok_or("syntax error in character class")?;
            *i += 2;
            Ok(c)
        }
        Some(&c) => {
            *i += 1;
            Ok(c)
        }
    }
}

impl GlobPattern {
    /// NFA states: `2*i` = about to match token `i` (`2*n` = accept), `2*i+1` = inside the `.*` of a `DirPrefix`.
    fn matches_self_or_parent(&self, path: &str) -> bool {
        let n = self.toks.len();
        let accept = 2 * n;
        let mut cur = vec![false; 2 * n + 2];
        let mut next = vec![false; 2 * n + 2];
        cur[0] = true;
        self.closure(&mut cur);
        for c in path.chars() {
            // Checking acceptance before each `/` tests every parent directory in the same pass.
            if c == '/' && cur[accept] {
                return true;
            }
            next.fill(false);
            for (i, tok) in self.toks.iter().enumerate() {
                let (entry, inside, after) = (2 * i, 2 * i + 1, 2 * i + 2);
                if cur[inside] {
                    next[inside] = true;
                    if c == '/' {
                        next[after] = true;
                    }
                }
                if !cur[entry] {
                    continue;
                }
                match tok {
                    Tok::Lit(l) => next[after] |= c == *l,
                    Tok::AnyChar => next[after] |= c != '/',
                    Tok::Star => next[entry] |= c != '/',
                    Tok::AnyRun => next[entry] = true,
                    Tok::DirPrefix => {
                        next[inside] = true;
                        next[after] |= c == '/';
                    }
                    Tok::Class { negated, ranges } => {
                        next[after] |= ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated;
                    }
                }
            }
            self.closure(&mut next);
            std::mem::swap(&mut cur, &mut next);
            if !cur.iter().any(|&s| s) {
                return false;
            }
        }
        cur[accept]
    }

    /// Epsilon moves: tokens that can match the empty string may be skipped. Epsilons only go forward, so one
    /// ascending pass reaches the fixpoint.
    fn closure(&self, set: &mut [bool]) {
        for (i, tok) in self.toks.iter().enumerate() {
            if set[2 * i] && matches!(tok, Tok::Star | Tok::AnyRun | Tok::DirPrefix) {
                set[2 * i + 2] = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_args() -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    fn bargs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn ok(src: &str) -> Vec<Instruction> {
        match parse(src, &no_args()) {
            Ok(p) => p.instructions,
            Err(e) => panic!("unexpected error {e} for {src:?}"),
        }
    }

    fn err(src: &str) -> ParseError {
        match parse(src, &no_args()) {
            Ok(p) => panic!("expected an error for {src:?}, got {:?}", p.instructions),
            Err(e) => e,
        }
    }

    /// Parses `FROM scratch` + `body` and returns the instructions after FROM.
    fn stage(body: &str) -> Vec<Instruction> {
        let mut v = ok(&format!("FROM scratch\n{body}"));
        v.remove(0);
        v
    }

    fn stage_err(body: &str) -> ParseError {
        err(&format!("FROM scratch\n{body}"))
    }

    fn one(body: &str) -> Instruction {
        let v = stage(body);
        assert_eq!(v.len(), 1, "{v:?}");
        v.into_iter().next().unwrap()
    }

    fn argv(i: &Instruction) -> Vec<String> {
        match i {
            Instruction::Run { argv, .. }
            | Instruction::Cmd { argv, .. }
            | Instruction::Entrypoint { argv, .. }
            | Instruction::Shell { argv, .. } => argv.clone(),
            other => panic!("no argv in {other:?}"),
        }
    }

    fn sv(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn sh(cmd: &str) -> Vec<String> {
        sv(&["/bin/sh", "-c", cmd])
    }

    fn env_of(i: &Instruction) -> Vec<(String, String)> {
        match i {
            Instruction::Env { vars, .. } => vars.clone(),
            Instruction::Label { labels, .. } => labels.clone(),
            other => panic!("not ENV/LABEL: {other:?}"),
        }
    }

    fn kv(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn workdir(body: &str) -> String {
        match stage(body).pop() {
            Some(Instruction::Workdir { path, .. }) => path,
            other => panic!("not WORKDIR: {other:?}"),
        }
    }

    fn subst(env: &str, word: &str) -> Result<String, ParseError> {
        let src = format!("FROM scratch\n{env}\nWORKDIR {word}");
        parse(&src, &no_args()).map(|p| match p.instructions.last() {
            Some(Instruction::Workdir { path, .. }) => path.clone(),
            other => panic!("not WORKDIR: {other:?}"),
        })
    }

    #[test]
    fn realistic_dockerfile_end_to_end() {
        let src = concat!(
            "# syntax=docker/dockerfile:1\n",
            "# check=skip=all\n",
            "ARG PY=3.12\n",
            "FROM python:${PY}-slim AS app\n",
            "LABEL org.opencontainers.image.title=\"demo app\" version=1\n",
            "ARG PIP_INDEX\n",
            "ENV APP_HOME=/srv/app \\\n",
            "    PYTHONUNBUFFERED=1\n",
            "WORKDIR $APP_HOME\n",
            "COPY --chown=1000:1000 requirements.txt ./\n",
            "RUN pip install --no-cache-dir \\\n",
            "      -r requirements.txt   # installs deps\n",
            "COPY . .\n",
            "EXPOSE 8000 9000/udp\n",
            "VOLUME [\"/data\"]\n",
            "USER 1000\n",
            "HEALTHCHECK CMD curl -f http://localhost:8000/ || exit 1\n",
            "STOPSIGNAL SIGINT\n",
            "ENTRYPOINT [\"python\", \"-m\", \"app\"]\n",
            "CMD [\"--port\", \"8000\"]\n",
        );
        let p = parse(src, &bargs(&[("PIP_INDEX", "https://pypi.internal"), ("TYPO", "x")])).unwrap();
        let v = &p.instructions;
        assert_eq!(p.unused_args, sv(&["TYPO"]));
        let keywords: Vec<&str> = v.iter().map(Instruction::keyword).collect();
        assert_eq!(
            keywords,
            [
                "ARG",
                "FROM",
                "LABEL",
                "ARG",
                "ENV",
                "WORKDIR",
                "COPY",
                "RUN",
                "COPY",
                "EXPOSE",
                "VOLUME",
                "USER",
                "HEALTHCHECK",
                "STOPSIGNAL",
                "ENTRYPOINT",
                "CMD"
            ]
        );
        assert!(matches!(&v[1], Instruction::From { image, alias: Some(a), line: 4, .. }
            if image == "python:3.12-slim" && a == "app"));
        assert_eq!(env_of(&v[2]), kv(&[("org.opencontainers.image.title", "demo app"), ("version", "1")]));
        assert_eq!(env_of(&v[4]), kv(&[("APP_HOME", "/srv/app"), ("PYTHONUNBUFFERED", "1")]));
        assert!(matches!(&v[5], Instruction::Workdir { path, line: 9, .. } if path == "/srv/app"));
        assert_eq!(copy_parts(&v[6]), (sv(&["requirements.txt"]), "./".into(), Some("1000:1000".into()), None));
        assert_eq!(argv(&v[7]), sh("pip install --no-cache-dir       -r requirements.txt   # installs deps"));
        assert_eq!(run_args(&v[7]), kv(&[("PIP_INDEX", "https://pypi.internal")]));
        assert_eq!(v[7].line(), 11);
        assert_eq!(argv(&v[15]), sv(&["--port", "8000"]));
        assert_eq!(v[15].line(), 20);
    }

    #[test]
    fn parse_error_is_a_std_error() {
        let e: Box<dyn std::error::Error> = Box::new(err("FROM a\nBOGUS"));
        assert_eq!(e.to_string(), "line 2: unknown instruction \"BOGUS\"");
    }

    #[test]
    fn unicode_is_preserved() {
        assert_eq!(workdir("WORKDIR /données/日本"), "/données/日本");
        assert_eq!(env_of(&one("ENV É=ü")), kv(&[("É", "ü")]));
        assert_eq!(subst("ENV Ü=x", "/$Ü").unwrap(), "/x");
        assert!(err("FROM a\nRÜN x").message.contains("RÜN"));
    }

    // ----- FROM and stage structure -----

    #[test]
    fn from_image() {
        let v = ok("FROM alpine:3.19");
        assert_eq!(
            v,
            vec![Instruction::From {
                image: "alpine:3.19".into(),
                alias: None,
                line: 1,
                text: "FROM alpine:3.19".into()
            }]
        );
    }

    #[test]
    fn from_with_alias_lowercased() {
        match &ok("FROM alpine AS Builder")[0] {
            Instruction::From { image, alias, .. } => {
                assert_eq!(image, "alpine");
                assert_eq!(alias.as_deref(), Some("builder"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(&ok("from alpine as b")[0], Instruction::From { alias: Some(a), .. } if a == "b"));
    }

    #[test]
    fn from_scratch_and_platform_flag() {
        assert!(matches!(&ok("FROM scratch")[0], Instruction::From { image, .. } if image == "scratch"));
        let v = ok("FROM --platform=$BUILDPLATFORM golang:1.22 AS build");
        assert!(matches!(&v[0], Instruction::From { image, .. } if image == "golang:1.22"));
    }

    #[test]
    fn from_errors() {
        assert_eq!(err("FROM").message, "FROM requires either one or three arguments");
        assert_eq!(err("FROM a b").message, "FROM requires either one or three arguments");
        assert!(err("FROM a FOR b").message.contains("AS"));
        assert!(err("FROM a AS 1abc").message.contains("invalid name for build stage"));
        assert!(err("FROM a AS a$b").message.contains("invalid name for build stage"));
        assert!(err("FROM --foo=bar a").message.contains("unknown flag \"--foo\""));
        assert!(err("FROM --platform a").message.contains("missing a value"));
    }

    #[test]
    fn from_uses_only_args_declared_before_it() {
        let src = "ARG TAG=3.19\nARG IMG=alpine\nFROM ${IMG}:$TAG";
        assert!(matches!(&ok(src)[2], Instruction::From { image, .. } if image == "alpine:3.19"));
        let p = parse(src, &bargs(&[("TAG", "edge")])).unwrap();
        assert!(matches!(&p.instructions[2], Instruction::From { image, .. } if image == "alpine:edge"));
        assert!(p.unused_args.is_empty());
        // Meta ARG defaults can refer to earlier meta ARGs.
        let v = ok("ARG A=x\nARG B=${A}y\nFROM $B");
        assert!(matches!(&v[2], Instruction::From { image, .. } if image == "xy"));
        let e = err("ARG IMG\nFROM $IMG");
        assert_eq!(e.line, 2);
        assert!(e.message.contains("empty"), "{e}");
    }

    #[test]
    fn first_instruction_must_be_from() {
        let e = err("# comment\n\nRUN echo hi\nFROM alpine");
        assert_eq!(e.line, 3);
        assert!(e.message.contains("first instruction must be FROM"), "{e}");
        assert_eq!(err("ARG X=1\nENV A=b\nFROM a").line, 2);
    }

    #[test]
    fn second_from_is_rejected() {
        let e = err("FROM a\nRUN x\n\nFROM b");
        assert_eq!(e.line, 4);
        assert!(e.to_string().contains("multi-stage builds are not supported"));
    }

    #[test]
    fn whole_file_errors() {
        let e = err("");
        assert_eq!(e.line, 0);
        assert_eq!(e.to_string(), "the Dockerfile contains no instructions");
        assert_eq!(err("# just a comment\n\n   \n").line, 0);
        let e = err("ARG A=1\n");
        assert_eq!(e.to_string(), "the Dockerfile has no FROM instruction");
    }

    #[test]
    fn unknown_instruction_display() {
        let e = err("FROM a\nRUN x\n\nFOO bar");
        assert_eq!(e.to_string(), "line 4: unknown instruction \"FOO\"");
        assert_eq!(e.line, 4);
    }

    #[test]
    fn long_offending_text_is_truncated() {
        let kw = "X".repeat(10_000);
        let e = err(&format!("FROM a\n{kw}"));
        assert!(e.message.len() < 200, "{}", e.message.len());
        assert!(e.message.contains('…'));
    }

    #[test]
    fn keywords_are_case_insensitive() {
        let v = ok("from alpine\nRuN echo hi\nworkdir /x");
        assert_eq!(v.len(), 3);
        assert_eq!(v[1].keyword(), "RUN");
        assert_eq!(v[2].keyword(), "WORKDIR");
    }

    #[test]
    fn accessors_report_line_and_text() {
        let v = ok("FROM a\n\n# c\nRUN echo \\\n  hi\nUSER bob");
        assert_eq!(v[1].line(), 4);
        assert_eq!(v[1].text(), "RUN echo   hi");
        assert_eq!(v[2].line(), 6);
        assert_eq!(v[2].text(), "USER bob");
        assert_eq!(v[0].keyword(), "FROM");
    }

    // ----- RUN / CMD / ENTRYPOINT / SHELL -----

    #[test]
    fn run_shell_form() {
        let i = one("RUN apt-get update && apt-get install -y curl");
        assert_eq!(argv(&i), sh("apt-get update && apt-get install -y curl"));
    }

    #[test]
    fn run_is_not_substituted() {
        assert_eq!(argv(&stage("ENV A=1\nRUN echo $A ${B:-x} \\$C")[1]), sh("echo $A ${B:-x} \\$C"));
    }

    #[test]
    fn run_exec_form() {
        assert_eq!(argv(&one(r#"RUN ["/bin/echo", "a b", "c"]"#)), sv(&["/bin/echo", "a b", "c"]));
        assert_eq!(argv(&one(r#"RUN   [ "x" ]  "#)), sv(&["x"]));
        assert_eq!(argv(&one(r#"RUN ["$HOME"]"#)), sv(&["$HOME"]));
    }

    #[test]
    fn json_escapes() {
        let i = one(r#"CMD ["a\"b", "c\\d", "\u00e9\n\t", "\ud83d\ude00", "\/", "\ud800x"]"#);
        assert_eq!(argv(&i), sv(&["a\"b", "c\\d", "é\n\t", "😀", "/", "\u{FFFD}x"]));
    }

    #[test]
    fn invalid_json_falls_back_to_shell_form() {
        assert_eq!(argv(&one("RUN [ -f /etc/passwd ] && echo yes")), sh("[ -f /etc/passwd ] && echo yes"));
        assert_eq!(argv(&one("RUN [\"a\",]")), sh("[\"a\",]"));
        assert_eq!(argv(&one("RUN [\"a\" \"b\"]")), sh("[\"a\" \"b\"]"));
        assert_eq!(argv(&one("CMD [foo]")), sh("[foo]"));
        assert_eq!(argv(&one("RUN [\"a\"] trailing")), sh("[\"a\"] trailing"));
    }

    #[test]
    fn valid_json_with_non_strings_is_an_error() {
        for body in [
            "RUN [1]",
            "RUN [\"a\", 2.5e3]",
            "CMD [\"a\", null]",
            "ENTRYPOINT [true]",
            "RUN [\"a\", {\"b\": [1, {\"c\": false}], \"d\": -0.5}]",
            "RUN [[]]",
        ] {
            let e = stage_err(body);
            assert_eq!(e.line, 2);
            assert!(e.message.contains("must all be strings"), "{body}: {e}");
        }
        // Malformed nested values are not JSON, hence shell form.
        assert_eq!(argv(&one("RUN [{\"a\" 1}]")), sh("[{\"a\" 1}]"));
        assert_eq!(argv(&one("RUN [01]")), sh("[01]"));
    }

    #[test]
    fn run_errors() {
        assert_eq!(stage_err("RUN").message, "RUN requires at least one argument");
        assert_eq!(stage_err("RUN []").message, "RUN requires at least one argument");
        assert_eq!(stage_err("RUN --mount=type=cache,target=/x make").message, "RUN --mount is not supported");
        assert!(stage_err("RUN --network=none x").message.contains("not supported"));
        assert!(stage_err("RUN --foo=1 x").message.contains("unknown flag"));
        assert!(stage_err("RUN <<EOF\necho hi\nEOF").message.contains("heredoc"));
        assert!(stage_err("RUN cat <<-'END' > /f").message.contains("heredoc"));
    }

    #[test]
    fn run_allows_here_strings_and_double_dash_end_of_flags() {
        assert_eq!(argv(&one("RUN cat <<<hello")), sh("cat <<<hello"));
        assert_eq!(argv(&one("RUN -- --weird")), sh("--weird"));
        assert_eq!(argv(&one("RUN echo -- --x")), sh("echo -- --x"));
    }

    #[test]
    fn cmd_and_entrypoint() {
        assert_eq!(argv(&one("CMD echo hi")), sh("echo hi"));
        assert_eq!(argv(&one("CMD [\"nginx\", \"-g\", \"daemon off;\"]")), sv(&["nginx", "-g", "daemon off;"]));
        assert_eq!(argv(&one("CMD []")), Vec::<String>::new());
        assert_eq!(argv(&one("ENTRYPOINT exec top -b")), sh("exec top -b"));
        assert_eq!(argv(&one("ENTRYPOINT [\"top\", \"-b\"]")), sv(&["top", "-b"]));
        assert_eq!(stage_err("CMD").message, "CMD requires at least one argument");
        assert_eq!(stage_err("ENTRYPOINT   ").message, "ENTRYPOINT requires at least one argument");
    }

    #[test]
    fn shell_changes_later_shell_forms() {
        let v = stage(
            "RUN a\nSHELL [\"/bin/bash\", \"-eo\", \"pipefail\", \"-c\"]\nRUN b\nCMD c\nENTRYPOINT d\nRUN [\"e\"]",
        );
        assert_eq!(argv(&v[0]), sh("a"));
        assert_eq!(argv(&v[1]), sv(&["/bin/bash", "-eo", "pipefail", "-c"]));
        assert_eq!(argv(&v[2]), sv(&["/bin/bash", "-eo", "pipefail", "-c", "b"]));
        assert_eq!(argv(&v[3]), sv(&["/bin/bash", "-eo", "pipefail", "-c", "c"]));
        assert_eq!(argv(&v[4]), sv(&["/bin/bash", "-eo", "pipefail", "-c", "d"]));
        assert_eq!(argv(&v[5]), sv(&["e"]));
    }

    #[test]
    fn shell_errors() {
        assert!(stage_err("SHELL /bin/bash -c").message.contains("JSON form"));
        assert!(stage_err("SHELL [1]").message.contains("JSON form"));
        assert!(stage_err("SHELL []").message.contains("at least one"));
        assert!(stage_err("SHELL").message.contains("JSON form"));
    }

    // ----- COPY / ADD -----

    fn copy_parts(i: &Instruction) -> (Vec<String>, String, Option<String>, Option<u32>) {
        match i {
            Instruction::Copy { srcs, dest, chown, chmod, .. } | Instruction::Add { srcs, dest, chown, chmod, .. } => {
                (srcs.clone(), dest.clone(), chown.clone(), *chmod)
            }
            other => panic!("not COPY/ADD: {other:?}"),
        }
    }

    #[test]
    fn copy_plain_and_json() {
        assert_eq!(copy_parts(&one("COPY . /app")), (sv(&["."]), "/app".into(), None, None));
        assert_eq!(copy_parts(&one("COPY a b  c /dst/")), (sv(&["a", "b", "c"]), "/dst/".into(), None, None));
        assert_eq!(
            copy_parts(&one(r#"COPY ["my file", "other", "/dst dir/"]"#)),
            (sv(&["my file", "other"]), "/dst dir/".into(), None, None)
        );
        assert!(matches!(one("add x.tar.gz /"), Instruction::Add { .. }));
    }

    #[test]
    fn copy_flags() {
        let i = one("COPY --chown=app:app --chmod=0755 run.sh /usr/local/bin/");
        assert_eq!(copy_parts(&i), (sv(&["run.sh"]), "/usr/local/bin/".into(), Some("app:app".into()), Some(0o755)));
        let v = stage("ARG U=1000\nADD --chown=${U}:${U} x /y");
        assert_eq!(copy_parts(&v[1]).2.as_deref(), Some("1000:1000"));
        assert!(stage_err("COPY --chmod=abc a b").message.contains("--chmod"));
        assert!(stage_err("COPY --chmod=99999 a b").message.contains("--chmod"));
        assert!(stage_err("COPY --chown a b").message.contains("missing a value"));
        assert!(stage_err("COPY --link a b").message.contains("not supported"));
        assert!(stage_err("COPY --chown=a --chown=b a b").message.contains("duplicate flag"));
    }

    #[test]
    fn copy_from_is_not_supported() {
        let e = err("FROM a\n\nCOPY --from=builder /out /out");
        assert_eq!(e.to_string(), "line 3: COPY --from is not supported");
        assert!(stage_err("COPY --link a b").message.contains("not supported"));
        assert!(stage_err("ADD --checksum=sha256:00 https://x /y").message.contains("not supported"));
        assert!(stage_err("ADD --from=x a b").message.contains("unknown flag"));
    }

    #[test]
    fn copy_argument_count() {
        assert!(stage_err("COPY onlyone").message.contains("at least two arguments"));
        assert!(stage_err("COPY").message.contains("at least two arguments"));
        assert!(stage_err("COPY [\"a\"]").message.contains("at least two arguments"));
        assert!(stage_err("COPY [\"a\", 1]").message.contains("must all be strings"));
        assert!(stage_err("COPY <<EOF /x\nhi\nEOF").message.contains("heredoc"));
    }

    #[test]
    fn copy_substitution_and_quote_quirk() {
        let v = stage("ENV SRC=app DST=/srv\nCOPY $SRC/ ${DST}/");
        assert_eq!(copy_parts(&v[1]), (sv(&["app/"]), "/srv/".into(), None, None));
        // Plain form splits on whitespace without honouring quotes, exactly like Docker.
        assert!(stage_err("COPY \"a b\" /x").message.contains("double-quote"));
        // JSON elements are substituted too.
        let v = stage("ENV D=/d\nCOPY [\"x\", \"$D\"]");
        assert_eq!(copy_parts(&v[1]).1, "/d");
    }

    // ----- ENV / LABEL / MAINTAINER -----

    #[test]
    fn env_forms() {
        assert_eq!(env_of(&one("ENV A=1")), kv(&[("A", "1")]));
        assert_eq!(env_of(&one("ENV A=1 B=\"two words\" C='single $X' D=a\\ b")), {
            kv(&[("A", "1"), ("B", "two words"), ("C", "single $X"), ("D", "a b")])
        });
        assert_eq!(env_of(&one("ENV MY_NAME John Doe")), kv(&[("MY_NAME", "John Doe")]));
        assert_eq!(env_of(&one("ENV A \"quoted value\"")), kv(&[("A", "quoted value")]));
        assert_eq!(env_of(&one("ENV A=\"x\\\"y\" B=\"\"")), kv(&[("A", "x\"y"), ("B", "")]));
        assert_eq!(env_of(&one("ENV A= B=2")), kv(&[("A", ""), ("B", "2")]));
        assert_eq!(env_of(&one("ENV A=b=c")), kv(&[("A", "b=c")]));
    }

    #[test]
    fn env_substitutes_against_previous_scope() {
        let v = stage("ENV A=1\nENV A=2 B=$A\nENV C=$A");
        assert_eq!(env_of(&v[1]), kv(&[("A", "2"), ("B", "1")]));
        assert_eq!(env_of(&v[2]), kv(&[("C", "2")]));
        let v = stage("ENV PATH=/opt/bin:$PATH");
        assert_eq!(env_of(&v[0]), kv(&[("PATH", "/opt/bin:")]));
    }

    #[test]
    fn base_env_is_visible_after_from() {
        let base = bargs(&[("PATH", "/usr/bin:/bin")]);
        let p = parse_with_base_env("FROM x\nENV PATH=/opt/bin:$PATH", &no_args(), &base).unwrap();
        assert_eq!(env_of(&p.instructions[1]), kv(&[("PATH", "/opt/bin:/usr/bin:/bin")]));
        let p = parse_with_base_env("ARG I=$PATH\nFROM x$I", &no_args(), &base).unwrap();
        assert!(matches!(&p.instructions[1], Instruction::From { image, .. } if image == "x"));
    }

    #[test]
    fn env_errors() {
        assert_eq!(stage_err("ENV").message, "ENV requires at least one argument");
        assert_eq!(stage_err("ENV A").message, "ENV must have two arguments");
        assert!(stage_err("ENV A=1 B").message.contains("can't find ="));
        assert!(stage_err("ENV =x").message.contains("can not be blank"));
        assert!(stage_err("ENV A=\"unterminated").message.contains("double-quote"));
        assert!(stage_err("ENV A='x").message.contains("single-quote"));
    }

    #[test]
    fn label_forms() {
        assert_eq!(
            env_of(&one("LABEL version=\"1.0\" \"com.example.key\"=value description=\"multi word\"")),
            kv(&[("version", "1.0"), ("com.example.key", "value"), ("description", "multi word")])
        );
        assert_eq!(env_of(&one("LABEL legacy some value")), kv(&[("legacy", "some value")]));
        assert_eq!(env_of(&stage("ENV V=2\nLABEL v=$V")[1]), kv(&[("v", "2")]));
        assert!(stage_err("LABEL").message.contains("at least one"));
    }

    #[test]
    fn maintainer_becomes_label() {
        let i = one("MAINTAINER Jane Doe <jane@example.com>");
        assert_eq!(env_of(&i), kv(&[("maintainer", "Jane Doe <jane@example.com>")]));
        assert_eq!(i.keyword(), "LABEL");
        assert!(i.text().starts_with("MAINTAINER"));
        assert!(stage_err("MAINTAINER").message.contains("MAINTAINER"));
    }

    // ----- ARG -----

    fn arg_values(i: &Instruction) -> Vec<(String, Option<String>)> {
        match i {
            Instruction::Arg { args, .. } => args.clone(),
            other => panic!("not ARG: {other:?}"),
        }
    }

    fn run_args(i: &Instruction) -> Vec<(String, String)> {
        match i {
            Instruction::Run { build_args, .. } => build_args.clone(),
            other => panic!("not RUN: {other:?}"),
        }
    }

    #[test]
    fn arg_defaults_and_build_args() {
        let src = "FROM a\nARG A=1 B C=\"x y\"\nWORKDIR /$A/$B/$C";
        let p = parse(src, &bargs(&[("B", "given"), ("EXTRA", "1"), ("HTTP_PROXY", "http://p")])).unwrap();
        assert_eq!(
            arg_values(&p.instructions[1]),
            vec![("A".into(), Some("1".into())), ("B".into(), Some("given".into())), ("C".into(), Some("x y".into()))]
        );
        assert!(matches!(&p.instructions[2], Instruction::Workdir { path, .. } if path == "/1/given/x y"));
        assert_eq!(p.unused_args, sv(&["EXTRA"]));
        let p = parse(src, &bargs(&[("A", "override")])).unwrap();
        assert!(matches!(&p.instructions[2], Instruction::Workdir { path, .. } if path == "/override//x y"));
    }

    #[test]
    fn arg_without_value_is_unset() {
        let v = stage("ARG X\nWORKDIR /a${X-unset}/b${X:-empty}");
        assert_eq!(arg_values(&v[0]), vec![("X".into(), None)]);
        assert!(matches!(&v[1], Instruction::Workdir { path, .. } if path == "/aunset/bempty"));
    }

    #[test]
    fn arg_defaults_see_previous_scope_only() {
        let v = stage("ARG A=1\nARG A=2 B=$A");
        assert_eq!(arg_values(&v[1]), vec![("A".into(), Some("2".into())), ("B".into(), Some("1".into()))]);
    }

    #[test]
    fn meta_args_need_redeclaration_in_stage() {
        let src = "ARG V=1\nFROM a\nWORKDIR /x$V\nARG V\nWORKDIR /y$V";
        let v = ok(src);
        assert!(matches!(&v[2], Instruction::Workdir { path, .. } if path == "/x"));
        assert_eq!(arg_values(&v[3]), vec![("V".into(), Some("1".into()))]);
        assert!(matches!(&v[4], Instruction::Workdir { path, .. } if path == "/y1"));
        // A build arg wins over the meta default.
        let p = parse(src, &bargs(&[("V", "9")])).unwrap();
        assert!(matches!(&p.instructions[4], Instruction::Workdir { path, .. } if path == "/y9"));
    }

    #[test]
    fn env_shadows_arg() {
        let v = stage("ARG V=fromarg\nENV V=fromenv\nWORKDIR /$V\nARG V=again\nWORKDIR /$V");
        assert!(matches!(&v[2], Instruction::Workdir { path, .. } if path == "/fromenv"));
        assert!(matches!(&v[4], Instruction::Workdir { path, .. } if path == "/fromenv"));
    }

    #[test]
    fn run_receives_build_args_not_shadowed_by_env() {
        let src = "ARG META=m\nFROM a\nARG A=1\nARG B=2\nARG UNSET\nENV B=env\nRUN make";
        let p = parse(src, &bargs(&[("https_proxy", "http://proxy"), ("META", "x")])).unwrap();
        assert_eq!(run_args(&p.instructions[6]), kv(&[("A", "1"), ("https_proxy", "http://proxy")]));
        assert!(p.unused_args.is_empty(), "{:?}", p.unused_args);
        // Before any ARG nothing is exported.
        assert!(run_args(&one("RUN x")).is_empty());
    }

    #[test]
    fn arg_errors() {
        assert!(stage_err("ARG").message.contains("at least one"));
        assert!(stage_err("ARG =x").message.contains("can not be blank"));
        assert!(stage_err("ARG A=${").message.contains("missing '}'"));
    }

    // ----- WORKDIR / USER / STOPSIGNAL / VOLUME / EXPOSE -----

    #[test]
    fn workdir_user_stopsignal() {
        assert_eq!(workdir("WORKDIR /app"), "/app");
        assert_eq!(workdir("WORKDIR relative/dir"), "relative/dir");
        assert_eq!(workdir("WORKDIR \"/with space\""), "/with space");
        assert_eq!(workdir("WORKDIR /a b"), "/a b");
        assert!(matches!(one("USER 1000:1000"), Instruction::User { user, .. } if user == "1000:1000"));
        assert!(matches!(&stage("ENV U=app\nUSER $U")[1], Instruction::User { user, .. } if user == "app"));
        assert!(matches!(one("STOPSIGNAL SIGQUIT"), Instruction::StopSignal { signal, .. } if signal == "SIGQUIT"));
        assert!(matches!(one("STOPSIGNAL 9"), Instruction::StopSignal { signal, .. } if signal == "9"));
        assert!(matches!(one("STOPSIGNAL SIGRTMIN+3"), Instruction::StopSignal { .. }));
        assert!(stage_err("STOPSIGNAL 0").message.contains("invalid signal"));
        assert!(stage_err("STOPSIGNAL SIG TERM").message.contains("invalid signal"));
        assert!(stage_err("WORKDIR").message.contains("exactly one argument"));
        assert!(stage_err("WORKDIR $NOPE").message.contains("empty"));
        assert!(stage_err("USER").message.contains("exactly one argument"));
    }

    #[test]
    fn volume_forms() {
        let paths = |i: Instruction| match i {
            Instruction::Volume { paths, .. } => paths,
            other => panic!("{other:?}"),
        };
        assert_eq!(paths(one("VOLUME /data")), sv(&["/data"]));
        assert_eq!(paths(one("VOLUME /a /b")), sv(&["/a", "/b"]));
        assert_eq!(paths(one("VOLUME [\"/a b\", \"/c\"]")), sv(&["/a b", "/c"]));
        assert_eq!(paths(stage("ENV D=/d\nVOLUME $D").remove(1)), sv(&["/d"]));
        assert!(stage_err("VOLUME").message.contains("at least one"));
        assert!(stage_err("VOLUME []").message.contains("at least one"));
        assert!(stage_err("VOLUME [\"\"]").message.contains("empty string"));
        assert!(stage_err("VOLUME [1]").message.contains("must all be strings"));
    }

    fn ports(body: &str) -> Vec<String> {
        match stage(body).pop() {
            Some(Instruction::Expose { ports, .. }) => ports.iter().map(|p| p.to_string()).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn expose_forms() {
        assert_eq!(ports("EXPOSE 80"), sv(&["80/tcp"]));
        assert_eq!(ports("EXPOSE 80/tcp 53/UDP 9/sctp 443/"), sv(&["80/tcp", "53/udp", "9/sctp", "443/tcp"]));
        assert_eq!(ports("EXPOSE 8000-8010/udp"), sv(&["8000-8010/udp"]));
        assert_eq!(ports("ARG PORTS=\"80 443\"\nEXPOSE $PORTS 22"), sv(&["80/tcp", "443/tcp", "22/tcp"]));
        assert_eq!(ports("ENV P=8080\nEXPOSE ${P}/udp"), sv(&["8080/udp"]));
        let spec = PortSpec { start: 5, end: 7, protocol: Protocol::Tcp };
        assert_eq!(spec.ports().collect::<Vec<_>>(), vec![5, 6, 7]);
        assert_eq!(Protocol::Sctp.as_str(), "sctp");
    }

    #[test]
    fn expose_errors() {
        for bad in
            ["EXPOSE", "EXPOSE 80/icmp", "EXPOSE http", "EXPOSE 65536", "EXPOSE 90-80", "EXPOSE +80", "EXPOSE 1:80"]
        {
            let e = stage_err(bad);
            assert_eq!(e.line, 2, "{bad}");
        }
        assert!(stage_err("EXPOSE $NOTHING").message.contains("no ports"));
    }

    // ----- HEALTHCHECK / ONBUILD -----

    #[test]
    fn healthcheck_and_onbuild_are_ignored() {
        let v = stage(concat!(
            "HEALTHCHECK --interval=5m --timeout=3s CMD curl -f http://localhost/ || exit 1\n",
            "HEALTHCHECK NONE\n",
            "ONBUILD RUN make",
        ));
        assert!(matches!(&v[0], Instruction::Ignored { keyword: "HEALTHCHECK", line: 2, .. }));
        assert!(matches!(&v[1], Instruction::Ignored { keyword: "HEALTHCHECK", .. }));
        assert!(matches!(&v[2], Instruction::Ignored { keyword: "ONBUILD", line: 4, .. }));
        assert_eq!(v[2].keyword(), "ONBUILD");
    }

    #[test]
    fn healthcheck_and_onbuild_errors() {
        assert!(stage_err("HEALTHCHECK").message.contains("at least one"));
        assert!(stage_err("HEALTHCHECK PING x").message.contains("unknown type"));
        assert!(stage_err("HEALTHCHECK NONE x").message.contains("no arguments"));
        assert!(stage_err("HEALTHCHECK CMD").message.contains("requires a command"));
        assert!(stage_err("HEALTHCHECK --bogus=1 CMD x").message.contains("unknown flag"));
        assert!(stage_err("ONBUILD").message.contains("at least one"));
        assert!(stage_err("ONBUILD onbuild RUN x").message.to_lowercase().contains("chaining"));
        assert!(stage_err("ONBUILD FROM x").message.contains("isn't allowed"));
        assert!(stage_err("ONBUILD BOGUS x").message.contains("unknown instruction"));
    }

    // ----- variable substitution -----

    #[test]
    fn substitution_forms() {
        let env = "ENV A=a E= SP=\"x y\"";
        assert_eq!(subst(env, "/$A").unwrap(), "/a");
        assert_eq!(subst(env, "/${A}b").unwrap(), "/ab");
        assert_eq!(subst(env, "/$Ab").unwrap(), "/");
        assert_eq!(subst(env, "/${U:-def}").unwrap(), "/def");
        assert_eq!(subst(env, "/${E:-def}").unwrap(), "/def");
        assert_eq!(subst(env, "/${A:-def}").unwrap(), "/a");
        assert_eq!(subst(env, "/${U-def}").unwrap(), "/def");
        assert_eq!(subst(env, "/${E-def}x").unwrap(), "/x");
        assert_eq!(subst(env, "/${A:+alt}").unwrap(), "/alt");
        assert_eq!(subst(env, "/${E:+alt}x").unwrap(), "/x");
        assert_eq!(subst(env, "/${U:+alt}x").unwrap(), "/x");
        assert_eq!(subst(env, "/${E+alt}").unwrap(), "/alt");
        assert_eq!(subst(env, "/${U+alt}x").unwrap(), "/x");
        assert_eq!(subst(env, "/${A:?boom}").unwrap(), "/a");
        assert_eq!(subst(env, "/${SP}").unwrap(), "/x y");
        assert_eq!(subst(env, "/${U:-${A}-${U:-z}}").unwrap(), "/a-z");
        assert_eq!(subst(env, "/${U:-\"q }\"}").unwrap(), "/q }");
    }

    #[test]
    fn substitution_literals_and_escapes() {
        let env = "ENV A=a";
        assert_eq!(subst(env, "/\\$A").unwrap(), "/$A");
        assert_eq!(subst(env, "/\\${A}").unwrap(), "/${A}");
        assert_eq!(subst(env, "/'$A'").unwrap(), "/$A");
        assert_eq!(subst(env, "/\"$A\\$A\"").unwrap(), "/a$A");
        assert_eq!(subst(env, "/\"\\x\"").unwrap(), "/\\x");
        assert_eq!(subst(env, "/$").unwrap(), "/$");
        assert_eq!(subst(env, "/a$-b").unwrap(), "/ab");
        assert_eq!(subst(env, "/$1x").unwrap(), "/x");
        assert_eq!(subst(env, "/$ x").unwrap(), "/$ x");
        assert_eq!(subst(env, "/\\\\x").unwrap(), "/\\x");
        // An escape at the very end of a word is dropped (reachable through JSON, not through a line end).
        let v = stage("COPY [\"a\\\\\", \"/d\"]");
        assert_eq!(copy_parts(&v[0]).0, sv(&["a"]));
    }

    #[test]
    fn substitution_errors() {
        let env = "ENV A=a";
        for (word, needle) in [
            ("/${A", "missing '}'"),
            ("/${", "missing '}'"),
            ("/${}", "bad substitution"),
            ("/${:x}", "bad substitution"),
            ("/${A:%x}", "unsupported modifier"),
            ("/${A!x}", "missing ':'"),
            ("/${U:?must be set}", "U: must be set"),
            ("/${U?}", "not allowed to be unset"),
            ("/${A:-x", "missing '}'"),
            ("/\"abc", "double-quote"),
        ] {
            let e = subst(env, word).unwrap_err();
            assert_eq!(e.line, 3, "{word}");
            assert!(e.message.contains(needle), "{word}: {e}");
        }
    }

    #[test]
    fn substitution_depth_is_bounded() {
        let deep = format!("/{}x{}", "${U:-".repeat(100_000), "}".repeat(100_000));
        let e = subst("ENV A=a", &deep).unwrap_err();
        assert!(e.message.contains("nested deeper"), "{}", &e.message[..60.min(e.message.len())]);
        let ok_depth = format!("/{}x{}", "${U:-".repeat(MAX_SUBSTITUTION_DEPTH), "}".repeat(MAX_SUBSTITUTION_DEPTH));
        assert_eq!(subst("ENV A=a", &ok_depth).unwrap(), "/x");
    }

    #[test]
    fn substitution_output_is_bounded() {
        let mut src = String::from("FROM a\nENV A=0123456789abcdef0123456789abcdef\n");
        for _ in 0..40 {
            src.push_str("ENV A=$A$A\n");
        }
        let e = parse(&src, &no_args()).unwrap_err();
        assert!(e.message.contains("more than"), "{e}");
        assert!(e.line > 2);
    }

    #[test]
    fn shell_prefix_copies_are_bounded() {
        let big = "x".repeat(900_000);
        let mut src = format!("FROM a\nSHELL [\"{big}\"]\n");
        for _ in 0..9_000 {
            src.push_str("RUN y\n");
        }
        assert!(src.len() <= MAX_DOCKERFILE_BYTES);
        let e = parse(&src, &no_args()).unwrap_err();
        assert!(e.message.contains("more than"), "{e}");
    }

    // ----- line handling -----

    #[test]
    fn continuation_lines() {
        let v = stage("RUN apt-get update && \\\n    apt-get install -y \\\n      curl\nUSER x");
        assert_eq!(argv(&v[0]), sh("apt-get update &&     apt-get install -y       curl"));
        assert_eq!(v[0].line(), 2);
        assert_eq!(v[1].line(), 5);
    }

    #[test]
    fn continuation_skips_comments_and_blank_lines() {
        let v = stage("RUN echo a \\\n# comment inside\n  # indented comment\n\n   \n  b\nUSER x");
        assert_eq!(argv(&v[0]), sh("echo a   b"));
        assert_eq!(v[1].line(), 8);
    }

    #[test]
    fn continuation_with_trailing_blanks_and_at_eof() {
        assert_eq!(argv(&one("RUN a \\  \t\n b")), sh("a  b"));
        assert_eq!(argv(&one("RUN a \\")), sh("a"));
        assert_eq!(argv(&one("RUN a \\\n")), sh("a"));
        // A continuation in the middle of a word joins it.
        assert_eq!(env_of(&one("ENV A=he\\\nllo")), kv(&[("A", "hello")]));
    }

    #[test]
    fn continued_keyword_and_exec_form() {
        assert_eq!(argv(&one("RUN \\\n [\"a\", \\\n \"b\"]")), sv(&["a", "b"]));
        let v = stage("\\\nUSER x");
        assert!(matches!(&v[0], Instruction::User { user, line: 2, .. } if user == "x"));
    }

    #[test]
    fn comments_blank_lines_crlf_bom_and_indentation() {
        let src = concat!(
            "\u{feff}# header\r\n\r\n   # indented comment\r\n",
            "FROM a\r\n\t  RUN echo hi # not a comment\r\nUSER \\\r\n bob\r\n",
        );
        let v = ok(src);
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].line(), 4);
        assert_eq!(argv(&v[1]), sh("echo hi # not a comment"));
        assert!(matches!(&v[2], Instruction::User { user, line: 6, .. } if user == "bob"));
    }

    #[test]
    fn escape_directive_backtick() {
        let src = concat!(
            "# escape=`\nFROM mcr.microsoft.com/windows/servercore\n",
            "RUN dir c:\\ `\n  && echo done\nWORKDIR c:\\app\nENV P=`$notvar",
        );
        let v = ok(src);
        assert_eq!(argv(&v[1]), sh("dir c:\\   && echo done"));
        assert!(matches!(&v[2], Instruction::Workdir { path, .. } if path == "c:\\app"));
        assert_eq!(env_of(&v[3]), kv(&[("P", "$notvar")]));
    }

    #[test]
    fn escape_directive_variants() {
        // Key is case-insensitive and blanks are allowed; other known directives may precede it.
        let v = ok("# syntax=docker/dockerfile:1\n#  ESCAPE = `\nFROM a\nRUN a `\nb");
        assert_eq!(argv(&v[1]), sh("a b"));
        // Explicit backslash is the default.
        let v = ok("# escape=\\\nFROM a\nRUN a \\\nb");
        assert_eq!(argv(&v[1]), sh("a b"));
    }

    #[test]
    fn escape_directive_only_at_top() {
        // After an instruction it is an ordinary comment.
        let v = ok("FROM a\n# escape=`\nRUN a \\\nb");
        assert_eq!(argv(&v[1]), sh("a b"));
        // After an ordinary comment or unknown directive it is ignored too.
        let v = ok("# hello\n# escape=`\nFROM a\nRUN a \\\nb");
        assert_eq!(argv(&v[1]), sh("a b"));
        let v = ok("# foo=bar\n# escape=`\nFROM a\nRUN a \\\nb");
        assert_eq!(argv(&v[1]), sh("a b"));
        // After a blank line too.
        let v = ok("\n# escape=`\nFROM a\nRUN a \\\nb");
        assert_eq!(argv(&v[1]), sh("a b"));
    }

    #[test]
    fn escape_directive_errors() {
        let e = err("# escape=x\nFROM a");
        assert_eq!(e.line, 1);
        assert!(e.message.contains("invalid escape token"));
        let e = err("# escape=`\n# escape=\\\nFROM a");
        assert_eq!(e.line, 2);
        assert!(e.message.contains("only one escape parser directive"));
    }

    // ----- limits -----

    #[test]
    fn size_limit() {
        let src = format!("FROM a\nRUN {}", "x".repeat(MAX_DOCKERFILE_BYTES));
        let e = err(&src);
        assert_eq!(e.line, 0);
        assert!(e.to_string().contains("byte limit"));
    }

    #[test]
    fn instruction_limit() {
        let mut src = String::from("FROM a\n");
        for _ in 0..MAX_INSTRUCTIONS - 1 {
            src.push_str("RUN x\n");
        }
        assert_eq!(ok(&src).len(), MAX_INSTRUCTIONS);
        src.push_str("RUN x\n");
        let e = err(&src);
        assert_eq!(e.line, MAX_INSTRUCTIONS + 1);
        assert!(e.message.contains("too many instructions"));
    }

    #[test]
    fn deep_json_nesting_does_not_overflow() {
        let deep = format!("RUN {}{}", "[".repeat(200_000), "]".repeat(200_000));
        assert!(stage_err(&deep).message.contains("must all be strings"));
        let unbalanced = format!("RUN {}", "[{\"a\":".repeat(100_000));
        assert_eq!(argv(&one(&unbalanced)).len(), 3);
    }

    // ----- fuzz: never panic -----

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    const FRAGMENTS: &[&str] = &[
        "FROM ",
        "from ",
        "RUN ",
        "CMD ",
        "ENTRYPOINT ",
        "COPY ",
        "ADD ",
        "ENV ",
        "ARG ",
        "LABEL ",
        "EXPOSE ",
        "WORKDIR ",
        "USER ",
        "VOLUME ",
        "SHELL ",
        "STOPSIGNAL ",
        "HEALTHCHECK ",
        "ONBUILD ",
        "MAINTAINER ",
        "AS ",
        "scratch",
        "alpine",
        "\n",
        "\r\n",
        "\\\n",
        "`\n",
        "\\",
        "`",
        "# escape=`\n",
        "# escape=\\\n",
        "#",
        " ",
        "\t",
        "$",
        "${",
        "}",
        ":-",
        ":+",
        ":?",
        "-",
        "+",
        "?",
        "=",
        "\"",
        "'",
        "[",
        "]",
        "{",
        "}",
        ",",
        ":",
        "A",
        "B",
        "PATH",
        "1",
        "80",
        "/",
        "--chown=",
        "--chmod=",
        "--from=",
        "--platform=",
        "--",
        "<<EOF",
        "\\u00e9",
        "\\\"",
        "é",
        "\u{feff}",
        "\0",
        "true",
        "null",
        "NONE",
        "**",
        "*",
        "!",
        "[a-z]",
        "[^",
        "..",
        "./",
    ];

    #[test]
    fn fuzz_random_bytes_never_panic() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let args = bargs(&[("A", "x"), ("B", "y y")]);
        for _ in 0..3000 {
            let len = rng.below(300);
            let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            let text = String::from_utf8_lossy(&bytes);
            let _ = parse(&text, &args);
            let _ = parse(&format!("FROM a\n{text}"), &args);
            if let Ok(m) = IgnoreMatcher::new(&text) {
                let _ = m.is_excluded(&text);
            }
        }
    }

    #[test]
    fn fuzz_token_soup_never_panics() {
        let mut rng = XorShift(0xDEAD_BEEF_CAFE_F00D);
        let args = bargs(&[("A", "x"), ("PATH", "/bin")]);
        let mut parsed_ok = 0;
        for i in 0..4000 {
            let n = rng.below(40);
            let mut text = if i % 2 == 0 { String::from("FROM a\n") } else { String::new() };
            for _ in 0..n {
                text.push_str(FRAGMENTS[rng.below(FRAGMENTS.len())]);
            }
            if parse(&text, &args).is_ok() {
                parsed_ok += 1;
            }
            match IgnoreMatcher::new(&text) {
                Ok(m) => {
                    for _ in 0..4 {
                        let mut path = String::new();
                        for _ in 0..rng.below(8) {
                            path.push_str(FRAGMENTS[rng.below(FRAGMENTS.len())]);
                        }
                        let _ = m.is_excluded(&path);
                    }
                }
                Err(e) => assert!(e.line > 0 || e.message.contains("limit")),
            }
        }
        // Sanity check that the generator exercises the success paths too.
        assert!(parsed_ok > 50, "{parsed_ok}");
    }

    // ----- .dockerignore -----

    fn matcher(src: &str) -> IgnoreMatcher {
        match IgnoreMatcher::new(src) {
            Ok(m) => m,
            Err(e) => panic!("{e}"),
        }
    }

    fn check(src: &str, excluded: &[&str], included: &[&str]) {
        let m = matcher(src);
        for p in excluded {
            assert!(m.is_excluded(p), "{src:?} should exclude {p:?}");
        }
        for p in included {
            assert!(!m.is_excluded(p), "{src:?} should include {p:?}");
        }
    }

    #[test]
    fn ignore_plain_names_are_anchored_and_cover_children() {
        check("node_modules", &["node_modules", "node_modules/x/y.js"], &["a/node_modules", "node_modules2", "x"]);
        check("a/b", &["a/b", "a/b/c"], &["a", "a/bc", "b"]);
    }

    #[test]
    fn ignore_star_and_question_mark() {
        check("*.log", &["x.log", ".log", "dir.log/inner"], &["a/x.log", "x.log.txt"]);
        check("*/*.tmp", &["a/b.tmp"], &["b.tmp", "a/b/c.tmp"]);
        check("a?c", &["abc", "a-c"], &["a/c", "ac", "abbc"]);
        check("*", &["anything", "a/b/c"], &[]);
    }

    #[test]
    fn ignore_double_star() {
        check("**/*.log", &["x.log", "a/x.log", "a/b/c/x.log"], &["x.logs", "a/x.txt"]);
        check("a/**/b", &["a/b", "a/x/b", "a/x/y/b", "a/b/c"], &["a/xb", "b", "x/a/b"]);
        check("a/**", &["a/x", "a/x/y"], &["a", "ab"]);
        check("**", &["x", "a/b/c"], &[]);
        check("**/node_modules", &["node_modules", "x/node_modules/y"], &["xnode_modules"]);
        // Docker quirk: `**` not followed by `/` still means "empty or ending in /".
        check("a**b", &["ab", "a/x/b"], &["axb"]);
        check("**.md", &["x/.md", ".md"], &["x.md"]);
    }

    #[test]
    fn ignore_character_classes() {
        check("[abc].txt", &["a.txt", "c.txt"], &["d.txt", "ab.txt"]);
        check("file[0-9]", &["file0", "file7"], &["filea", "file10"]);
        check("[^a]x", &["bx", "zx"], &["ax"]);
        check("x[\\]]", &["x]"], &["x\\"]);
        check("x[\\-]", &["x-"], &["xa"]);
        check("a[/]b", &["a/b"], &["ab"]);
    }

    #[test]
    fn ignore_escapes() {
        check("a\\*", &["a*"], &["ab"]);
        check("\\!important", &["!important"], &["important"]);
        check("\\#file", &["#file"], &[]);
    }

    #[test]
    fn ignore_exceptions_last_match_wins() {
        check("*.md\n!README.md", &["CHANGES.md"], &["README.md", "src/x.md"]);
        check("!README.md\n*.md", &["README.md"], &[]);
        check("*.md\n!README*.md\nREADME-secret.md", &["README-secret.md", "a.md"], &["README.md", "README-x.md"]);
        check("docs\n!docs/keep.txt", &["docs", "docs/other.txt", "docs/sub/x"], &["docs/keep.txt"]);
        check("docs\n!docs/keep\n", &["docs/k"], &["docs/keep/inner/file"]);
        assert!(matcher("docs\n!docs/keep.txt").has_exceptions());
        assert!(!matcher("docs\n").has_exceptions());
    }

    #[test]
    fn ignore_comments_blank_lines_and_cleaning() {
        let src = "# comment\n\n   \n #notcomment\r\n/abs\n./dot\ntrail/\ndouble//slash\nup/../down\n  spaced  \n";
        check(
            src,
            &["#notcomment", "abs", "abs/x", "dot", "trail", "trail/x", "double/slash", "down", "spaced"],
            &["# comment", "comment", "up", "up/down"],
        );
        let m = matcher("\u{feff}bom");
        assert!(m.is_excluded("bom"));
        assert!(matcher("").is_empty());
        assert!(!matcher("# only\n").is_excluded("x"));
    }

    #[test]
    fn ignore_input_paths_are_cleaned() {
        let m = matcher("foo/bar");
        assert!(m.is_excluded("./foo/bar"));
        assert!(m.is_excluded("/foo/bar/"));
        assert!(m.is_excluded("foo//bar"));
        assert!(m.is_excluded("foo/x/../bar"));
        let m = matcher("*");
        assert!(!m.is_excluded("."));
        assert!(!m.is_excluded(""));
        assert!(!m.is_excluded("/"));
        assert!(!matcher("/").is_excluded("x"));
    }

    #[test]
    fn ignore_errors() {
        for (src, line) in [("ok\n[abc", 2), ("!", 1), ("a\n! \n", 2), ("x\\", 1), ("[z-a]", 1), ("[]", 1), ("[a-]", 1)]
        {
            match IgnoreMatcher::new(src) {
                Ok(_) => panic!("{src:?} should fail"),
                Err(e) => assert_eq!(e.line, line, "{src:?}: {e}"),
            }
        }
        let big = "x".repeat(MAX_DOCKERIGNORE_BYTES + 1);
        assert_eq!(IgnoreMatcher::new(&big).unwrap_err().line, 0);
    }

    #[test]
    fn ignore_long_paths_are_linear() {
        let m = matcher("**/a*b*c*d*e*f*g\n!x");
        let path = "a/".repeat(20_000) + "z";
        assert!(!m.is_excluded(&path));
        let m = matcher(&"*".repeat(5000));
        assert!(m.is_excluded(&"q".repeat(5000)));
    }

    #[test]
    fn clean_path_matches_go() {
        for (input, want) in [
            ("", "."),
            (".", "."),
            ("./", "."),
            ("a/./b", "a/b"),
            ("a/../..", ".."),
            ("/../a", "/a"),
            ("//a//b//", "/a/b"),
            ("../../x", "../../x"),
            ("a/b/../../c", "c"),
        ] {
            assert_eq!(clean_path(input), want, "{input}");
        }
    }
}
