//! compose's variables: `${VAR}`, `$VAR`, `${VAR:-default}`, `${VAR-default}`,
//! `${VAR:?error}`, `${VAR?error}`, `${VAR:+other}`, `${VAR+other}` and `$$` for a `$`,
//! substituted in the file's values (not its keys) from this environment, then a `.env`
//! beside the file; and the dotenv format that `.env` and `env_file` are written in.

use std::collections::{BTreeMap, BTreeSet};

/// Where variables come from: this process's environment first, then the `.env` file.
#[derive(Default, Debug, Clone)]
pub struct Vars {
    pub env: BTreeMap<String, String>,
    pub dotenv: BTreeMap<String, String>,
    /// Names used while unset (compose warns about each once).
    pub unset: BTreeSet<String>,
}

impl Vars {
    pub fn from_process(dotenv: BTreeMap<String, String>) -> Vars {
        Vars { env: std::env::vars().collect(), dotenv, unset: BTreeSet::new() }
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.env.get(k).or_else(|| self.dotenv.get(k)).map(String::as_str)
    }
}

fn is_name_start(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic()
}

fn is_name(c: char) -> bool {
    c == '_' || c.is_ascii_alphanumeric()
}

/// Substitutes the variables of `s`; the error says what is wrong.
pub fn expand(s: &str, vars: &mut Vars) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '$' {
            out.push(c);
            i += 1;
            continue;
        }
        match chars.get(i + 1) {
            Some('$') => {
                out.push('$');
                i += 2;
            }
            Some('{') => {
                let start = i + 2;
                let end = closing(&chars, start).ok_or_else(|| format!("invalid interpolation format for {s:?}"))?;
                let inner: String = chars[start..end].iter().collect();
                out.push_str(&braced(&inner, s, vars)?);
                i = end + 1;
            }
            Some(&n) if is_name_start(n) => {
                let mut j = i + 1;
                while j < chars.len() && is_name(chars[j]) {
                    j += 1;
                }
                let name: String = chars[i + 1..j].iter().collect();
                out.push_str(&lookup(&name, vars));
                i = j;
            }
            _ => {
                // A lone `$` stays, as compose leaves it.
                out.push('$');
                i += 1;
            }
        }
    }
    Ok(out)
}

/// The index of the `}` closing a `${` whose content starts at `from` (nested `${...}` in
/// defaults counted).
fn closing(chars: &[char], from: usize) -> Option<usize> {
    let mut depth = 0;
    let mut i = from;
    while i < chars.len() {
        match chars[i] {
            '$' if chars.get(i + 1) == Some(&'{') => {
                depth += 1;
                i += 1;
            }
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

fn lookup(name: &str, vars: &mut Vars) -> String {
    match vars.get(name) {
        Some(v) => v.to_string(),
        None => {
            vars.unset.insert(name.to_string());
            String::new()
        }
    }
}

/// The inside of `${...}`.
fn braced(inner: &str, whole: &str, vars: &mut Vars) -> Result<String, String> {
    let name_end = inner.find(|c: char| !is_name(c)).unwrap_or(inner.len());
    let name = &inner[..name_end];
    let bad = || format!("invalid interpolation format for {whole:?}: ${{{inner}}}");
    if name.is_empty() || !name.starts_with(is_name_start) {
        return Err(bad());
    }
    let rest = &inner[name_end..];
    let value = vars.get(name).map(str::to_string);
    let (op, arg) = if let Some(a) = rest.strip_prefix(":-") {
        (":-", a)
    } else if let Some(a) = rest.strip_prefix(":?") {
        (":?", a)
    } else if let Some(a) = rest.strip_prefix(":+") {
        (":+", a)
    } else if rest.is_empty() {
        ("", "")
    } else {
        let mut cs = rest.chars();
        match cs.next() {
            Some('-') => ("-", cs.as_str()),
            Some('?') => ("?", cs.as_str()),
            Some('+') => ("+", cs.as_str()),
            _ => return Err(bad()),
        }
    };
    let empty = value.as_deref().is_none_or(str::is_empty);
    match op {
        "" => Ok(lookup(name, vars)),
        ":-" if empty => expand(arg, vars),
        "-" if value.is_none() => expand(arg, vars),
        ":?" if empty => Err(required(name, arg, vars)?),
        "?" if value.is_none() => Err(required(name, arg, vars)?),
        ":+" if !empty => expand(arg, vars),
        "+" if value.is_some() => expand(arg, vars),
        ":+" | "+" => Ok(String::new()),
        _ => Ok(value.unwrap_or_default()),
    }
}

/// The message of `${VAR:?message}`.
fn required(name: &str, arg: &str, vars: &mut Vars) -> Result<String, String> {
    let msg = expand(arg, vars)?;
    Ok(if msg.is_empty() { format!("required variable {name} is missing a value") } else { format!("{name}: {msg}") })
}

/// The dotenv format of `.env` and `env_file`, as compose reads it: `KEY=VALUE` lines,
/// `export KEY=VALUE`, `#` comments (also after an unquoted value, following a space),
/// `'literal'` and `"escaped \n, with ${VAR}"` values; unquoted values are trimmed and
/// expanded too. A `KEY` line alone takes the value from `vars` (left out when unset).
/// The error names the line.
pub fn dotenv(text: &str, vars: &mut Vars) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map(str::trim_start).unwrap_or(line);
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim_start())),
            None => (line, None),
        };
        if key.is_empty()
            || !key.starts_with(is_name_start) && !key.starts_with('.')
            || key.contains(char::is_whitespace)
        {
            return Err(format!("line {}: {key:?} is not a variable name", n + 1));
        }
        let Some(value) = value else {
            if let Some(v) = vars.get(key) {
                out.push((key.to_string(), v.to_string()));
            }
            continue;
        };
        // Earlier lines of the same file count as variables for the later ones.
        let mut local = vars.clone();
        for (k, v) in &out {
            local.dotenv.entry(k.clone()).or_insert_with(|| v.clone());
        }
        let at = |e: String| format!("line {}: {e}", n + 1);
        let v = if let Some(rest) = value.strip_prefix('\'') {
            rest.strip_suffix('\'').ok_or_else(|| at("unterminated single-quoted value".into()))?.to_string()
        } else if let Some(rest) = value.strip_prefix('"') {
            let body = rest.strip_suffix('"').ok_or_else(|| at("unterminated double-quoted value".into()))?;
            expand(&unescape(body), &mut local).map_err(at)?
        } else {
            let v = match value.find(" #") {
                Some(p) => &value[..p],
                None => value,
            };
            expand(v.trim_end(), &mut local).map_err(at)?
        };
        vars.unset.extend(local.unset);
        out.retain(|(k, _)| k != key);
        out.push((key.to_string(), v));
    }
    Ok(out)
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(o) => out.push(o),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vars {
        Vars { env: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), ..Default::default() }
    }

    #[test]
    fn compose_forms() {
        let mut v = vars(&[("A", "1"), ("E", "")]);
        v.dotenv.insert("D".into(), "dot".into());
        v.dotenv.insert("A".into(), "dotenv loses".into());
        let mut x = |s: &str| expand(s, &mut v);
        assert_eq!(x("a${A}b$A-$$A $").unwrap(), "a1b1-$A $");
        assert_eq!(x("${D}").unwrap(), "dot");
        assert_eq!(x("${E:-def}|${E-def}|${U-def}|${U:-${A}x}").unwrap(), "def||def|1x");
        assert_eq!(x("${A:+yes}|${E:+yes}|${E+yes}|${U+yes}").unwrap(), "yes||yes|");
        assert_eq!(x("${U:?set U please}").unwrap_err(), "U: set U please");
        assert!(x("${U?}").unwrap_err().contains("required variable U"));
        assert_eq!(x("${E?}").unwrap(), "");
        assert!(x("${A").unwrap_err().contains("invalid interpolation"));
        assert!(x("${1A}").unwrap_err().contains("invalid interpolation"));
        assert!(x("${A!x}").is_err());
        assert!(x("${A€}").is_err());
        assert_eq!(x("${UNSET_ONE}").unwrap(), "");
        assert!(v.unset.contains("UNSET_ONE"));
    }

    #[test]
    fn dotenv_format() {
        let mut v = vars(&[("HOME_X", "/h"), ("PASS", "from-env")]);
        let text =
            "# c\nexport A=1\nB = two words # note\nC='${A} lit'\nD=\"x\\ny ${A}\"\nE=${HOME_X}/e\nPASS\nNOPE\nA=2\n";
        let got = dotenv(text, &mut v).unwrap();
        let m: BTreeMap<_, _> = got.into_iter().collect();
        assert_eq!(m["A"], "2");
        assert_eq!(m["B"], "two words");
        assert_eq!(m["C"], "${A} lit");
        assert_eq!(m["D"], "x\ny 1");
        assert_eq!(m["E"], "/h/e");
        assert_eq!(m["PASS"], "from-env");
        assert!(!m.contains_key("NOPE"));
        assert!(dotenv("BAD KEY=1\n", &mut v).unwrap_err().contains("line 1"));
        assert!(dotenv("\nX=\"open\n", &mut v).unwrap_err().contains("line 2"));
    }
}
