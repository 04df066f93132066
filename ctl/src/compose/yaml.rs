//! The Compose file as a tree of nodes that know their line: loaded with saphyr, its
//! scalars kept as written (`early_parse` off, so `1.10` stays `1.10` until a key says it
//! is a number), YAML 1.1 merge keys (`<<: *base`, which compose files use) applied, and
//! the typed reads the model needs, each error naming the path in the file and the line.
//!
//! Why saphyr: serde_yaml is unmaintained; serde_yaml_ng and serde_norway keep its serde
//! model, whose errors have a position only while deserializing straight from the text —
//! but compose substitutes `${VAR}` in the raw values first, and a value tree carries no
//! positions. yaml-rust2 gives positions only as parser events (its `Yaml` tree has none).
//! saphyr (the maintained YAML 1.2 successor of yaml-rust2, by its maintainers) loads a
//! `MarkedYamlOwned` tree whose every node and key has its span, refuses duplicate keys and
//! bounds alias expansion (no "billion laughs"), so the tree is read here by hand.

use saphyr::{MarkedYamlOwned, ScalarStyle, YamlDataOwned, YamlLoader};
use std::fmt;

/// An error in the file: where (line, and the path of keys), and what.
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    pub line: usize,
    pub path: String,
    pub msg: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "line {}: {}", self.line, self.msg)
        } else {
            write!(f, "line {}: {}: {}", self.line, self.path, self.msg)
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// One node of the document.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub line: usize,
    /// Where it is in the file, as compose says it: `services.web.ports[0]`.
    pub path: String,
    pub v: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    /// A scalar as written; `plain` when it was not quoted.
    Scalar {
        text: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    /// Keys in the order written (each key with its own line).
    Map(Vec<(Key, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub name: String,
    pub line: usize,
}

/// Parses the first document of `text` (an empty file is an empty mapping).
pub fn load(text: &str) -> Result<Node> {
    let mut parser = saphyr_parser::Parser::new_from_str(text);
    let mut loader: YamlLoader<MarkedYamlOwned> = YamlLoader::default();
    loader.early_parse(false);
    let scan =
        |e: &saphyr::ScanError| Error { line: e.marker().line(), path: String::new(), msg: e.info().to_string() };
    parser.load(&mut loader, true).map_err(|e| scan(&e))?;
    if let Some(e) = loader.error() {
        return Err(scan(e));
    }
    let mut docs = loader.into_documents();
    if docs.len() > 1 {
        return Err(Error { line: 1, path: String::new(), msg: "a Compose file holds one YAML document".into() });
    }
    match docs.pop() {
        Some(d) => convert(d, String::new()),
        None => Ok(Node { line: 1, path: String::new(), v: Value::Map(Vec::new()) }),
    }
}

fn convert(n: MarkedYamlOwned, path: String) -> Result<Node> {
    let line = n.span.start.line();
    let err = |msg: String| Error { line, path: path.clone(), msg };
    let v = match n.data {
        YamlDataOwned::Representation(text, style, tag) => {
            if let Some(t) = tag.filter(|t| !t.is_yaml_core_schema()) {
                return Err(err(format!("the tag {t} is not supported")));
            }
            let plain = style == ScalarStyle::Plain;
            if plain && matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL") {
                Value::Null
            } else {
                Value::Scalar { text, plain }
            }
        }
        YamlDataOwned::Value(s) => match s {
            saphyr::ScalarOwned::Null => Value::Null,
            saphyr::ScalarOwned::Boolean(b) => Value::Scalar { text: b.to_string(), plain: true },
            saphyr::ScalarOwned::Integer(i) => Value::Scalar { text: i.to_string(), plain: true },
            saphyr::ScalarOwned::FloatingPoint(f) => Value::Scalar { text: f.to_string(), plain: true },
            saphyr::ScalarOwned::String(text) => Value::Scalar { text, plain: false },
        },
        YamlDataOwned::Sequence(items) => Value::Seq(
            items.into_iter().enumerate().map(|(i, x)| convert(x, format!("{path}[{i}]"))).collect::<Result<_>>()?,
        ),
        YamlDataOwned::Mapping(m) => {
            let mut out: Vec<(Key, Node)> = Vec::new();
            let mut merged: Vec<(Key, Node)> = Vec::new();
            for (k, v) in m {
                let kline = k.span.start.line();
                let name = match k.data {
                    YamlDataOwned::Representation(t, ..) => t,
                    _ => return Err(Error { line: kline, path, msg: "a key must be a string".into() }),
                };
                let child = if path.is_empty() { name.clone() } else { format!("{path}.{name}") };
                if name == "<<" {
                    merged.extend(merge_source(convert(v, child)?)?);
                } else {
                    out.push((Key { name, line: kline }, convert(v, child)?));
                }
            }
            // Keys written in the mapping win over merged ones; the first source wins among those.
            for (k, mut v) in merged {
                if !out.iter().any(|(o, _)| o.name == k.name) {
                    let child = if path.is_empty() { k.name.clone() } else { format!("{path}.{}", k.name) };
                    repath(&mut v, &child);
                    out.push((k, v));
                }
            }
            Value::Map(out)
        }
        YamlDataOwned::Tagged(t, _) => return Err(err(format!("the tag {t} is not supported"))),
        YamlDataOwned::Alias(_) | YamlDataOwned::BadValue => return Err(err("a value that cannot be read".into())),
    };
    Ok(Node { line, path, v })
}

/// What a `<<` key brings: a mapping, or a list of them.
fn merge_source(n: Node) -> Result<Vec<(Key, Node)>> {
    match n.v {
        Value::Map(m) => Ok(m),
        Value::Seq(items) => {
            let mut out = Vec::new();
            for i in items {
                match i.v {
                    Value::Map(m) => {
                        for (k, v) in m {
                            if !out_has(&out, &k.name) {
                                out.push((k, v));
                            }
                        }
                    }
                    _ => return Err(Error { line: i.line, path: i.path, msg: "a merge (<<) takes mappings".into() }),
                }
            }
            Ok(out)
        }
        _ => Err(Error { line: n.line, path: n.path, msg: "a merge (<<) takes a mapping or a list of them".into() }),
    }
}

fn out_has(out: &[(Key, Node)], name: &str) -> bool {
    out.iter().any(|(k, _)| k.name == name)
}

/// Gives a merged subtree the paths of where it lands.
fn repath(n: &mut Node, path: &str) {
    n.path = path.to_string();
    match &mut n.v {
        Value::Seq(items) => {
            for (i, x) in items.iter_mut().enumerate() {
                repath(x, &format!("{path}[{i}]"));
            }
        }
        Value::Map(m) => {
            for (k, v) in m {
                repath(v, &format!("{path}.{}", k.name));
            }
        }
        _ => {}
    }
}

impl Node {
    pub fn err(&self, msg: impl Into<String>) -> Error {
        Error { line: self.line, path: self.path.clone(), msg: msg.into() }
    }

    pub fn is_null(&self) -> bool {
        self.v == Value::Null
    }

    /// The scalar's text (numbers and booleans as written).
    pub fn str(&self) -> Result<String> {
        match &self.v {
            Value::Scalar { text, .. } => Ok(text.clone()),
            _ => Err(self.err("must be a string")),
        }
    }

    /// compose's booleans: true/false, and yes/no, on/off, y/n as compose-go reads them.
    pub fn bool(&self) -> Result<bool> {
        let t = self.str().map_err(|_| self.err("must be true or false"))?;
        match t.to_ascii_lowercase().as_str() {
            "true" | "yes" | "y" | "on" => Ok(true),
            "false" | "no" | "n" | "off" => Ok(false),
            _ => Err(self.err(format!("{t:?} is not true or false"))),
        }
    }

    pub fn int(&self) -> Result<i64> {
        let t = self.str().map_err(|_| self.err("must be a number"))?;
        t.trim().parse().map_err(|_| self.err(format!("{t:?} is not a whole number")))
    }

    pub fn float(&self) -> Result<f64> {
        let t = self.str().map_err(|_| self.err("must be a number"))?;
        match t.trim().parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(f),
            _ => Err(self.err(format!("{t:?} is not a number"))),
        }
    }

    pub fn seq(&self) -> Result<&[Node]> {
        match &self.v {
            Value::Seq(s) => Ok(s),
            _ => Err(self.err("must be a list")),
        }
    }

    pub fn map(&self) -> Result<&[(Key, Node)]> {
        match &self.v {
            Value::Map(m) => Ok(m),
            _ => Err(self.err("must be a mapping")),
        }
    }

    /// A string, or a list of strings (`command`, `dns`, `env_file`...): `None` for null.
    pub fn strings(&self) -> Result<Vec<String>> {
        match &self.v {
            Value::Null => Ok(Vec::new()),
            Value::Scalar { .. } => Ok(vec![self.str()?]),
            Value::Seq(items) => items.iter().map(Node::str).collect(),
            Value::Map(_) => Err(self.err("must be a string or a list of strings")),
        }
    }

    /// A list of strings only.
    pub fn string_list(&self) -> Result<Vec<String>> {
        match &self.v {
            Value::Null => Ok(Vec::new()),
            Value::Seq(items) => items.iter().map(Node::str).collect(),
            _ => Err(self.err("must be a list of strings")),
        }
    }

    /// compose's "list or dict" (environment, labels, sysctls): `{K: V}` or `[K=V, K]`.
    /// A key without a value is `None`.
    pub fn list_or_dict(&self, sep: char) -> Result<Vec<(String, Option<String>)>> {
        match &self.v {
            Value::Null => Ok(Vec::new()),
            Value::Map(m) => {
                m.iter().map(|(k, v)| Ok((k.name.clone(), if v.is_null() { None } else { Some(v.str()?) }))).collect()
            }
            Value::Seq(items) => items
                .iter()
                .map(|i| {
                    let s = i.str()?;
                    Ok(match s.split_once(sep) {
                        Some((k, v)) => (k.to_string(), Some(v.to_string())),
                        None => (s, None),
                    })
                })
                .collect(),
            Value::Scalar { .. } => Err(self.err("must be a mapping or a list")),
        }
    }

    /// Walks a mapping's keys: `f` handles the keys it knows and answers false for the
    /// others, which are errors naming the key and its line (`x-` extensions are skipped, as
    /// compose does).
    pub fn keys<'a>(&'a self, mut f: impl FnMut(&str, &'a Node) -> Result<bool>, what: &Known) -> Result<()> {
        for (k, v) in self.map()? {
            if k.name.starts_with("x-") {
                continue;
            }
            if !f(&k.name, v)? {
                let at = if self.path.is_empty() { String::new() } else { format!("{}: ", self.path) };
                let why = if what.compose.contains(&k.name.as_str()) {
                    format!("{at}the key {:?} is not supported by agentctl apply", k.name)
                } else {
                    format!("{at}unknown key {:?}", k.name)
                };
                return Err(Error { line: k.line, path: String::new(), msg: why });
            }
        }
        Ok(())
    }

    /// Every scalar in the tree, mutably (interpolation).
    pub fn scalars_mut(&mut self, f: &mut impl FnMut(&mut String, usize, &str) -> Result<()>) -> Result<()> {
        let (line, path) = (self.line, self.path.clone());
        match &mut self.v {
            Value::Scalar { text, .. } => f(text, line, &path),
            Value::Seq(items) => items.iter_mut().try_for_each(|x| x.scalars_mut(f)),
            Value::Map(m) => m.iter_mut().try_for_each(|(_, v)| v.scalars_mut(f)),
            Value::Null => Ok(()),
        }
    }
}

/// The keys the Compose Specification has at one place, for telling "not supported here"
/// from "unknown" (a typo).
pub struct Known {
    pub compose: &'static [&'static str],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_paths_and_scalars_as_written() {
        let n = load("services:\n  web:\n    image: busybox:1.10\n    ports:\n      - \"80\"\n    v: 1.10\n").unwrap();
        let web = &n.map().unwrap()[0].1.map().unwrap()[0].1;
        assert_eq!(web.path, "services.web");
        let (k, v) = &web.map().unwrap()[2];
        assert_eq!((k.name.as_str(), k.line, v.str().unwrap().as_str()), ("v", 6, "1.10"));
        let ports = &web.map().unwrap()[1].1;
        assert_eq!(ports.seq().unwrap()[0].path, "services.web.ports[0]");
        assert_eq!(ports.seq().unwrap()[0].line, 5);
        assert_eq!(load("").unwrap().map().unwrap().len(), 0);
    }

    #[test]
    fn merge_keys_and_duplicates() {
        let n = load("a: &b\n  x: 1\n  y: 2\nc:\n  <<: *b\n  y: 3\n").unwrap();
        let c = &n.map().unwrap()[1].1;
        let got: Vec<(String, String)> =
            c.map().unwrap().iter().map(|(k, v)| (k.name.clone(), v.str().unwrap())).collect();
        assert_eq!(got, [("y".into(), "3".into()), ("x".into(), "1".into())]);
        assert_eq!(c.map().unwrap()[1].1.path, "c.x");
        let e = load("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert!(load("a: [1\n").is_err());
        assert!(load("a: !custom 1\n").unwrap_err().msg.contains("tag"));
    }

    #[test]
    fn typed_reads() {
        let n = load("t: yes\nf: \"off\"\nn: 12\nl: [a, b]\nd: {A: 1, B: }\ne: [A=1, B]\nq: ''\nz: ~\n").unwrap();
        let m = n.map().unwrap();
        assert!(m[0].1.bool().unwrap());
        assert!(!m[1].1.bool().unwrap());
        assert_eq!(m[2].1.int().unwrap(), 12);
        assert!(m[3].1.int().is_err());
        assert_eq!(m[3].1.strings().unwrap(), ["a", "b"]);
        let d = m[4].1.list_or_dict('=').unwrap();
        assert_eq!(d, [("A".into(), Some("1".into())), ("B".into(), None)]);
        assert_eq!(m[5].1.list_or_dict('=').unwrap(), d);
        assert_eq!(m[6].1.str().unwrap(), "");
        assert!(m[7].1.is_null());
    }
}
