//! docker's `--format TEMPLATE`: Go text/template (the gotmpl crate) over the same fields
//! docker shows (`{{.Names}}`, `{{.State.Pid}}`, `{{json .}}`), with docker's extra
//! functions (json, join, split, title, lower, upper, pad, truncate, println), and
//! `table TEMPLATE`: a header row (each field's docker header) and tab-aligned columns as
//! docker's tabwriter prints them (minimum width 10, padding 3).

use gotmpl::{MissingKey, Template, TemplateError, Value};
use serde_json::Value as Json;

/// A parsed `--format` template.
pub struct Format {
    table: bool,
    tmpl: Template,
}

/// A template error as docker reports it (`template parsing error: …`).
#[derive(Debug)]
pub struct Error(pub String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl Format {
    /// Parses `src` (`table ` prefix: a table with a header). Docker's escapes `\t` and
    /// `\n` written literally on a command line are read as tab and newline.
    pub fn parse(src: &str) -> Result<Format, Error> {
        let (table, body) = match src.strip_prefix("table") {
            Some(rest) if rest.is_empty() || rest.starts_with(char::is_whitespace) => (true, rest.trim_start()),
            _ => (false, src),
        };
        let body = body.replace("\\t", "\t").replace("\\n", "\n");
        let tmpl = with_funcs(Template::new("").missing_key(MissingKey::Error))
            .parse(&body)
            .map_err(|e| Error(format!("template parsing error: {e}")))?;
        Ok(Format { table, tmpl })
    }

    /// Renders `items` (one line each; a header first for `table`, from `headers`:
    /// field → column title, other fields titled by their upper-cased name).
    pub fn render(&self, items: &[Json], headers: &[(&str, &str)]) -> Result<String, Error> {
        let mut lines = Vec::new();
        if self.table {
            lines.push(self.exec(&header_data(items.first(), headers))?);
        }
        for it in items {
            lines.push(self.exec(&to_value(it))?);
        }
        let text = lines.into_iter().map(|l| l + "\n").collect::<String>();
        Ok(if self.table { align(&text) } else { text })
    }

    fn exec(&self, data: &Value) -> Result<String, Error> {
        self.tmpl.execute_to_string(data).map_err(|e| Error(format!("template: {e}")))
    }
}

/// Renders `items` with `src` and prints them.
pub fn print(src: &str, items: &[Json], headers: &[(&str, &str)]) -> Result<(), Error> {
    print!("{}", Format::parse(src)?.render(items, headers)?);
    Ok(())
}

/// The data a header row is rendered with: each field of the first item (or each known
/// header) mapped to its title, so `{{.ID}}\t{{.Names}}` renders `CONTAINER ID\tNAMES`.
fn header_data(first: Option<&Json>, headers: &[(&str, &str)]) -> Value {
    let mut m = serde_json::Map::new();
    if let Some(Json::Object(o)) = first {
        for k in o.keys() {
            m.insert(k.clone(), Json::String(upper_words(k)));
        }
    }
    for (k, h) in headers {
        m.insert(k.to_string(), Json::String(h.to_string()));
    }
    to_value(&Json::Object(m))
}

/// `RunningFor` → `RUNNING FOR`.
fn upper_words(k: &str) -> String {
    let mut out = String::new();
    let mut prev_lower = false;
    for c in k.chars() {
        if c.is_uppercase() && prev_lower {
            out.push(' ');
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        out.extend(c.to_uppercase());
    }
    out
}

/// Tab-separated cells aligned as Go's tabwriter (minwidth 10, tabwidth 1, padding 3):
/// every cell but a line's last is padded to its column's width.
fn align(text: &str) -> String {
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    let mut widths: Vec<usize> = Vec::new();
    for r in &rows {
        for (i, c) in r.iter().enumerate().take(r.len().saturating_sub(1)) {
            let w = (c.chars().count() + 3).max(10);
            if widths.len() <= i {
                widths.push(w);
            } else {
                widths[i] = widths[i].max(w);
            }
        }
    }
    let mut out = String::new();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            out.push_str(c);
            if i + 1 < r.len() {
                out.push_str(&" ".repeat(widths[i] - c.chars().count()));
            }
        }
        out.push('\n');
    }
    out
}

fn to_value(j: &Json) -> Value {
    gotmpl::to_value(j).unwrap_or(Value::Nil)
}

fn to_json(v: &Value) -> Json {
    match v {
        Value::Nil => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::Uint(u) => Json::from(*u),
        Value::Float(f) => serde_json::Number::from_f64(*f).map(Json::Number).unwrap_or(Json::Null),
        Value::String(s) => Json::String(s.to_string()),
        Value::List(l) => Json::Array(l.iter().map(to_json).collect()),
        Value::Map(m) => Json::Object(m.iter().map(|(k, v)| (k.to_string(), to_json(v))).collect()),
        other => Json::String(other.to_string()),
    }
}

fn arg_error(name: &str, want: &str) -> TemplateError {
    TemplateError::Exec(format!("{name}: expected {want}"))
}

fn string_arg(name: &str, args: &[Value], i: usize) -> Result<String, TemplateError> {
    match args.get(i) {
        Some(Value::String(s)) => Ok(s.to_string()),
        Some(other) => Ok(other.to_string()),
        None => Err(arg_error(name, "more arguments")),
    }
}

fn int_arg(name: &str, args: &[Value], i: usize) -> Result<usize, TemplateError> {
    match args.get(i) {
        Some(Value::Int(n)) if *n >= 0 => Ok(*n as usize),
        Some(Value::Uint(n)) => Ok(*n as usize),
        _ => Err(arg_error(name, "a non-negative number")),
    }
}

fn s(v: String) -> Value {
    Value::String(v.into())
}

/// docker's template functions (cli/templates/templates.go) on top of Go's builtins.
fn with_funcs(t: Template) -> Template {
    t.func("json", |a| {
        let v = a.first().map(to_json).unwrap_or(Json::Null);
        Ok(s(serde_json::to_string(&v).unwrap_or_default()))
    })
    .func("join", |a| {
        let sep = string_arg("join", a, 1)?;
        match a.first() {
            Some(Value::List(l)) => Ok(s(l.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(&sep))),
            _ => Err(arg_error("join", "a list and a separator")),
        }
    })
    .func("split", |a| {
        let (text, sep) = (string_arg("split", a, 0)?, string_arg("split", a, 1)?);
        Ok(Value::List(text.split(sep.as_str()).map(|p| s(p.to_string())).collect::<Vec<_>>().into()))
    })
    .func("title", |a| {
        let t = string_arg("title", a, 0)?;
        let mut out = String::new();
        let mut start = true;
        for c in t.chars() {
            if start {
                out.extend(c.to_uppercase());
            } else {
                out.push(c);
            }
            start = c.is_whitespace();
        }
        Ok(s(out))
    })
    .func("lower", |a| Ok(s(string_arg("lower", a, 0)?.to_lowercase())))
    .func("upper", |a| Ok(s(string_arg("upper", a, 0)?.to_uppercase())))
    .func("pad", |a| {
        let t = string_arg("pad", a, 0)?;
        let (before, after) = (int_arg("pad", a, 1)?, int_arg("pad", a, 2)?);
        Ok(s(format!("{}{t}{}", " ".repeat(before), " ".repeat(after))))
    })
    .func("truncate", |a| {
        let t = string_arg("truncate", a, 0)?;
        let n = int_arg("truncate", a, 1)?;
        Ok(s(t.chars().take(n).collect()))
    })
    .func("println", |a| Ok(s(a.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(" ") + "\n")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(src: &str, items: &[Json]) -> Result<String, Error> {
        Format::parse(src)?.render(items, &[("ID", "CONTAINER ID"), ("Names", "NAMES")])
    }

    #[test]
    fn fields_nested_fields_and_json() {
        let c = [json!({"Names": "web", "State": {"Pid": 42, "Running": true}, "Labels": {"a": "1"}})];
        assert_eq!(render("{{.Names}}", &c).unwrap(), "web\n");
        assert_eq!(render("{{.State.Pid}} {{.State.Running}}", &c).unwrap(), "42 true\n");
        assert_eq!(render("{{json .Labels}}", &c).unwrap(), "{\"a\":\"1\"}\n");
        assert_eq!(render("{{index .Labels \"a\"}}", &c).unwrap(), "1\n");
        assert_eq!(render("{{range $k, $v := .Labels}}{{$k}}={{$v}}{{end}}", &c).unwrap(), "a=1\n");
    }

    #[test]
    fn dockers_functions() {
        let c = json!({"Names": "my web", "Cmd": ["sh", "-c", "x"], "Id": "0123456789abcdef"});
        let r = |t| render(t, std::slice::from_ref(&c)).unwrap();
        assert_eq!(r("{{join .Cmd \",\"}}"), "sh,-c,x\n");
        assert_eq!(r("{{upper .Names}}|{{lower \"AB\"}}|{{title .Names}}"), "MY WEB|ab|My Web\n");
        assert_eq!(r("{{truncate .Id 12}}"), "0123456789ab\n");
        assert_eq!(r("[{{pad .Names 1 2}}]"), "[ my web  ]\n");
        assert_eq!(r("{{index (split .Names \" \") 1}}"), "web\n");
        assert_eq!(r("{{println .Names}}"), "my web\n\n");
        assert_eq!(r("{{printf \"%s-%d\" .Names 7}}"), "my web-7\n");
    }

    #[test]
    fn table_has_dockers_headers_and_aligned_columns() {
        let items = [
            json!({"ID": "abc", "Names": "web", "Image": "busybox"}),
            json!({"ID": "abcdef123456", "Names": "db", "Image": "x"}),
        ];
        let out = render("table {{.ID}}\t{{.Names}}\t{{.Image}}", &items).unwrap();
        assert_eq!(
            out,
            "CONTAINER ID   NAMES     IMAGE\nabc            web       busybox\nabcdef123456   db        x\n"
        );
        // A literal `\t` (as typed in a shell's single quotes) is a tab too.
        assert_eq!(
            render("table {{.Names}}\\t{{.ID}}", &items[..1]).unwrap(),
            "NAMES     CONTAINER ID\nweb       abc\n"
        );
        assert_eq!(upper_words("RunningFor"), "RUNNING FOR");
        assert_eq!(render("table", &items[..1]).unwrap(), "\n\n");
    }

    #[test]
    fn errors_are_dockers() {
        let e = render("{{.Nope}}", &[json!({"Names": "web"})]).unwrap_err().to_string();
        assert!(e.starts_with("template: ") && e.contains("Nope"), "{e}");
        let e = render("{{.Names", &[json!({})]).unwrap_err().to_string();
        assert!(e.starts_with("template parsing error: "), "{e}");
    }
}
