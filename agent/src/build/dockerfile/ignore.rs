//! `.dockerignore`: which build-context paths stay out of the build, with `moby/patternmatcher` semantics. The
//! patterns themselves are [`Glob`]s, shared with COPY/ADD sources.

use super::{quoted, ParseError, MAX_DOCKERIGNORE_BYTES};
use crate::build::glob::Glob;
use crate::build::path;

/// Decides which build-context paths a `.dockerignore` excludes, with `moby/patternmatcher` semantics: patterns are
/// cleaned and anchored at the context root, a pattern that matches a parent directory excludes everything below
/// it, and the last matching pattern wins with `!` re-including. The glob rules (`**`, classes, escapes) and why
/// they are our own are in [`crate::build::glob`].
///
/// Callers walking the context may skip an excluded directory entirely only when [`IgnoreMatcher::has_exceptions`]
/// is false; otherwise a `!` pattern may re-include something below it. Docker's CLI also always sends the
/// Dockerfile and `.dockerignore` themselves regardless of the patterns; that is up to the caller.
#[derive(Debug, Clone, Default)]
pub struct IgnoreMatcher {
    patterns: Vec<Pattern>,
}

#[derive(Debug, Clone)]
struct Pattern {
    exclusion: bool,
    glob: Glob,
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
            let mut cleaned = path::clean(pattern);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
            let glob = Glob::new(&cleaned)
                .map_err(|m| ParseError::at(lineno, format!("{m} in pattern {}", quoted(raw.trim()))))?;
            patterns.push(Pattern { exclusion, glob });
        }
        Ok(IgnoreMatcher { patterns })
    }

    /// Whether the context-relative path (`/`-separated; a leading `/` or `./` is ignored) is excluded from the build
    /// context. The context root itself is never excluded.
    pub fn is_excluded(&self, rel_path: &str) -> bool {
        let cleaned = path::clean(rel_path);
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
            if pattern.glob.matches_self_or_parent(path) {
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

#[cfg(test)]
mod tests;
