//! The one glob matcher of the build: `.dockerignore` patterns (`dockerfile::ignore`) and wildcard COPY/ADD
//! sources (`runtime/build/copy.rs`).
//!
//! Hand-written rather than taken from a crate, because Docker's rules are idiosyncratic and the maintained crates
//! implement others: in `moby/patternmatcher` `**` followed by more pattern means "empty, or anything ending in `/`"
//! (so `a**b` matches `a/x/b`), which `glob` and `globset` both refuse (`**` must be a whole path component there);
//! a negated class is Go's `[^...]` (theirs is `[!...]`), and `-` and `]` must be escaped inside a class (`[]]` is
//! an error in Go, a class in both crates). `*` and `?` never cross `/`. What `.dockerignore` adds on top (a pattern
//! that matches a parent directory excludes everything below it, the last matching pattern wins, `!` re-includes)
//! is in `dockerfile::ignore`. Matching is an NFA simulation: linear in path length times pattern length, no
//! backtracking, no recursion.
//!
//! Known divergences from Docker, all in patterns that are broken or meaningless there: an escaped character always
//! matches itself (Docker compares wildcard-free patterns byte-for-byte, backslash included), and a literal `^`
//! outside `[...]` matches itself (Docker's regex treats it as an anchor).

/// A compiled pattern.
#[derive(Debug, Clone)]
pub struct Glob {
    toks: Vec<Tok>,
}

impl Glob {
    /// A path pattern as `moby/patternmatcher` reads it (`.dockerignore`): `**` spans directories. The pattern is
    /// expected cleaned (`crate::build::path::clean`).
    pub fn new(pattern: &str) -> Result<Glob, &'static str> {
        Ok(Glob { toks: compile(pattern, true)? })
    }

    /// A pattern for one path component, as Go's `filepath.Match` reads it (wildcard COPY/ADD sources): `**` is
    /// just two `*`.
    pub fn component(pattern: &str) -> Result<Glob, &'static str> {
        Ok(Glob { toks: compile(pattern, false)? })
    }

    /// Whether the whole of `path` matches.
    pub fn matches(&self, path: &str) -> bool {
        self.run(path, false)
    }

    /// Whether `path` or one of its parent directories matches (`a/b` matches `a/b/c`).
    pub fn matches_self_or_parent(&self, path: &str) -> bool {
        self.run(path, true)
    }
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

fn compile(pattern: &str, dir_stars: bool) -> Result<Vec<Tok>, &'static str> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        i += 1;
        let tok = match c {
            '*' if dir_stars && chars.get(i) == Some(&'*') => {
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

impl Glob {
    /// NFA states: `2*i` = about to match token `i` (`2*n` = accept), `2*i+1` = inside the `.*` of a `DirPrefix`.
    fn run(&self, path: &str, parents: bool) -> bool {
        let n = self.toks.len();
        let accept = 2 * n;
        let mut cur = vec![false; 2 * n + 2];
        let mut next = vec![false; 2 * n + 2];
        cur[0] = true;
        self.closure(&mut cur);
        for c in path.chars() {
            // Checking acceptance before each `/` tests every parent directory in the same pass.
            if parents && c == '/' && cur[accept] {
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
    use super::Glob;

    #[test]
    fn a_component_pattern_reads_double_star_as_two_stars() {
        let g = Glob::component("a**b").unwrap();
        assert!(g.matches("axyb"));
        assert!(Glob::new("a**b").unwrap().matches("a/x/b"));
        assert!(!Glob::new("a**b").unwrap().matches("axb"));
    }

    #[test]
    fn matches_is_whole_path_and_parents_is_opt_in() {
        let g = Glob::new("a/b").unwrap();
        assert!(g.matches("a/b"));
        assert!(!g.matches("a/b/c"));
        assert!(g.matches_self_or_parent("a/b/c"));
        assert!(Glob::component("[").is_err());
    }
}
