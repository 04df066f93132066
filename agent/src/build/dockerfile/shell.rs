//! Words and variables, ported from BuildKit: splitting on Docker's whitespace, the builder flags in front of an
//! instruction (`extractBuilderFlags`), ENV/LABEL/ARG words (`parseWords`: quotes and escapes kept verbatim so the
//! lexer can interpret them afterwards) and the substitution lexer (`shell.Lex`: `ProcessWord`/`ProcessWords`).

use super::{charge, MAX_SUBSTITUTION_DEPTH};
use std::collections::BTreeMap;
use std::iter::Peekable;
use std::str::Chars;

/// Whitespace as in Docker's `reWhitespace` (`[\t\v\f\r ]+`), used to split keywords and plain-form arguments.
pub(super) fn is_re_ws(c: char) -> bool {
    matches!(c, '\t' | '\x0b' | '\x0c' | '\r' | ' ')
}

pub(super) fn split_re_ws(s: &str) -> Vec<&str> {
    s.split(is_re_ws).filter(|w| !w.is_empty()).collect()
}

/// Splits `KEYWORD rest` on the first whitespace run.
pub(super) fn split_command(text: &str) -> (&str, &str) {
    match text.find(is_re_ws) {
        Some(i) => (&text[..i], text[i..].trim_start_matches(is_re_ws)),
        None => (text, ""),
    }
}

/// Where a word scanner is: between words, in a word, or inside quotes.
#[derive(PartialEq)]
enum Phase {
    Spaces,
    Word,
    Quote(char),
}

/// Port of BuildKit's `extractBuilderFlags`: leading words starting with `--` are flags (quotes and `\` handled,
/// always with `\` regardless of the escape directive), a lone `--` ends them. Returns the flags and the remainder.
pub(super) fn extract_flags(line: &str) -> (Vec<String>, &str) {
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

/// ENV/LABEL/ARG words, as BuildKit's `parseWords` splits them: quotes and escapes are kept verbatim so the
/// substitution lexer can interpret them afterwards.
pub(super) fn parse_words(rest: &str, escape: char) -> Vec<String> {
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
// Variable substitution — port of BuildKit's shell lexer (ProcessWord / ProcessWords).
// ---------------------------------------------------------------------------------------------------------------

/// Variables visible to substitution: ENV shadows ARG, as in Docker.
pub(super) struct Scope<'s> {
    pub(super) env: Option<&'s BTreeMap<String, String>>,
    pub(super) args: &'s BTreeMap<String, Option<String>>,
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
pub(super) struct Words {
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

    pub(super) fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(self.word);
        }
        self.words
    }
}

pub(super) struct Lexer<'a, 'b> {
    chars: Peekable<Chars<'a>>,
    escape: char,
    scope: &'b Scope<'b>,
    budget: &'b mut usize,
    depth: usize,
}

impl<'a, 'b> Lexer<'a, 'b> {
    pub(super) fn new(word: &'a str, escape: char, scope: &'b Scope<'b>, budget: &'b mut usize) -> Self {
        Lexer { chars: word.chars().peekable(), escape, scope, budget, depth: 0 }
    }

    /// Processes until `stop` (consumed) or end of input. `words`, when given, receives ProcessWords splitting.
    pub(super) fn process_stop_on(
        &mut self,
        stop: Option<char>,
        mut words: Option<&mut Words>,
    ) -> Result<String, String> {
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

#[cfg(test)]
mod tests;
