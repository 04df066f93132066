//! Dockerfile parser and `.dockerignore` matcher.
//!
//! The goal is that a Dockerfile written for `docker build` resolves to the same instructions here, so the parsing
//! rules are ported from Docker's BuildKit frontend (`frontend/dockerfile/parser`, `shell`, `instructions`) and from
//! `moby/patternmatcher`, including their quirks (for example `COPY "a b" /x` is split on whitespace without
//! honouring the quotes, exactly as Docker does).
//!
//! The way through: [`lines`] turns the file into logical lines (parser directives, comments, continuations);
//! [`parser`] keeps the scope (ARG/ENV, SHELL, before or after FROM) and dispatches each line by keyword;
//! [`instruction`] holds the typed instructions and the argument forms they share (flags, the JSON exec form,
//! ports, modes, signals); [`shell`] splits words and substitutes variables; [`ignore`] reads `.dockerignore`. Glob
//! matching and path cleaning are shared with the build driver (`runtime/build.rs`) in [`crate::build::glob`] and
//! [`crate::build::path`].
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

mod ignore;
mod instruction;
mod lines;
mod parser;
mod shell;

pub use ignore::IgnoreMatcher;
pub use instruction::{Instruction, PortSpec, Protocol};

use std::collections::BTreeMap;
use std::fmt;

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
    let (escape, lines) = lines::logical_lines(text)?;
    parser::parse(escape, &lines, build_args, base_env)
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

#[cfg(test)]
mod tests;
