//! Logical lines → typed instructions: the scope a Dockerfile builds up as it goes (ARGs before and after FROM,
//! ENV, the SHELL that wraps shell forms, the substitution budget) and the dispatch by keyword.

use super::instruction::{
    check_healthcheck, check_onbuild, health_duration, health_retries, is_heredoc_word, is_valid_stage_name, no_flags,
    parse_chmod, parse_flags, parse_json_array, parse_port_spec, validate_signal, Flags, Json,
};
use super::lines::LogicalLine;
use super::shell::{extract_flags, is_re_ws, parse_words, split_command, split_re_ws, Lexer, Scope, Words};
use super::{charge, quoted, Instruction, ParseError, Parsed, KEYWORDS, PREDEFINED_ARGS};
use std::collections::{BTreeMap, BTreeSet};

/// Resolves the logical lines of a Dockerfile whose escape character is `escape`.
pub(super) fn parse(
    escape: char,
    lines: &[LogicalLine],
    build_args: &BTreeMap<String, String>,
    base_env: &BTreeMap<String, String>,
) -> Result<Parsed, ParseError> {
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
    for logical in lines {
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
                let at = |m: String| ParseError::at(line, m);
                let (kind, cmd) = split_command(rest);
                let test = if kind.eq_ignore_ascii_case("NONE") {
                    vec!["NONE".to_string()]
                } else {
                    match parse_json_array(cmd) {
                        Json::Array(argv) if !argv.is_empty() => {
                            std::iter::once("CMD".to_string()).chain(argv).collect()
                        }
                        Json::Array(_) => return Err(at("HEALTHCHECK CMD requires a command".into())),
                        Json::NotStringArray => {
                            return Err(at("HEALTHCHECK: JSON array arguments must all be strings".into()))
                        }
                        Json::Invalid => vec!["CMD-SHELL".to_string(), cmd.to_string()],
                    }
                };
                Ok(Instruction::Healthcheck {
                    test,
                    interval_ns: health_duration(&flags, "interval").map_err(at)?,
                    timeout_ns: health_duration(&flags, "timeout").map_err(at)?,
                    start_period_ns: health_duration(&flags, "start-period").map_err(at)?,
                    start_interval_ns: health_duration(&flags, "start-interval").map_err(at)?,
                    retries: health_retries(&flags).map_err(at)?,
                    line,
                    text,
                })
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

#[cfg(test)]
mod tests;
