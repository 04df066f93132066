//! Physical lines → logical lines, the way BuildKit's scanner reads a Dockerfile: parser directives (`# escape=`)
//! at the very top, comments and blank lines dropped, continuation lines (ending in the escape character) joined.

use super::{quoted, ParseError, MAX_INSTRUCTIONS};
use std::collections::BTreeSet;

pub(super) struct LogicalLine {
    pub(super) line: usize,
    pub(super) text: String,
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
pub(super) fn logical_lines(src: &str) -> Result<(char, Vec<LogicalLine>), ParseError> {
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

#[cfg(test)]
mod tests;
