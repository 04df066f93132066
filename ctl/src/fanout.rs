//! `--context a,b,c VERB…` (or `--context all`): the verb runs on every node at once, each
//! through its own context (mTLS), as a child `agentctl --context NODE VERB…` with a
//! per-node timeout. Results are merged: tables get a NODE column, JSON lines a `Node`
//! field, anything else a section per node. Failures are reported per node on stderr and
//! make the exit code non-zero; the other nodes' results are still printed.

use crate::context::CtlConfig;
use crate::error::{Exit, Res, EXIT_AGENT};
use std::ffi::OsString;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Whether `--context` names several nodes.
pub fn is_fanout(context: Option<&str>) -> bool {
    context.is_some_and(|c| c == "all" || c.contains(','))
}

/// The node names of `spec` (`all`: every context), each known.
pub fn nodes(spec: &str, cfg: &CtlConfig) -> Res<Vec<String>> {
    let names: Vec<String> = if spec == "all" {
        cfg.contexts.keys().cloned().collect()
    } else {
        spec.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
    };
    if names.is_empty() {
        return Err(Exit::agent(format!(
            "--context {spec:?}: no contexts (create them with `agentctl context create`)"
        )));
    }
    for n in &names {
        if n != "default" && !cfg.contexts.contains_key(n) {
            return Err(Exit::agent(format!("--context {spec:?}: no such context {n:?}")));
        }
    }
    let mut seen = std::collections::HashSet::new();
    Ok(names.into_iter().filter(|n| seen.insert(n.clone())).collect())
}

/// The command line without `--context X` / `--context=X` (each child gets its own).
fn args_without_context(args: &[OsString]) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut skip = false;
    for a in args {
        if skip {
            skip = false;
            continue;
        }
        let s = a.to_string_lossy();
        if s == "--context" {
            skip = true;
            continue;
        }
        if s.starts_with("--context=") {
            continue;
        }
        out.push(a.clone());
    }
    out
}

/// What one node answered.
struct Answer {
    node: String,
    code: i32,
    stdout: String,
    stderr: String,
}

fn run_one(node: &str, args: &[OsString], timeout: Duration) -> Answer {
    let fail =
        |msg: String| Answer { node: node.to_string(), code: EXIT_AGENT as i32, stdout: String::new(), stderr: msg };
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return fail(format!("cannot find agentctl itself: {e}")),
    };
    let child = Command::new(exe)
        .arg("--context")
        .arg(node)
        .args(args)
        // The node's context decides where and how to connect.
        .env_remove("AGENT_HOST")
        .env_remove("AGENT_CONTEXT")
        .env_remove("AGENT_TLSCACERT")
        .env_remove("AGENT_TLSCERT")
        .env_remove("AGENT_TLSKEY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return fail(format!("cannot start agentctl: {e}")),
    };
    // Read both pipes while waiting, so a large answer cannot block the child.
    let out = child.stdout.take().map(|mut o| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut o, &mut s);
            s
        })
    });
    let err = child.stderr.take().map(|mut o| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut o, &mut s);
            s
        })
    });
    let deadline = Instant::now() + timeout;
    let code = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st.code().unwrap_or(EXIT_AGENT as i32),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break -1;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return fail(format!("waiting for agentctl: {e}")),
        }
    };
    let stdout = out.and_then(|t| t.join().ok()).unwrap_or_default();
    let mut stderr = err.and_then(|t| t.join().ok()).unwrap_or_default();
    if code == -1 {
        stderr.push_str(&format!("no answer within {} s (--node-timeout)", timeout.as_secs()));
        return Answer { node: node.to_string(), code: EXIT_AGENT as i32, stdout, stderr };
    }
    Answer { node: node.to_string(), code, stdout, stderr }
}

/// Runs the command line on every node at once and prints the merged result; the exit code
/// is 0 only when every node succeeded.
pub fn run(nodes: Vec<String>, args: &[OsString], timeout: Duration) -> u8 {
    let args = args_without_context(args);
    let answers: Vec<Answer> = std::thread::scope(|s| {
        let handles: Vec<_> = nodes.iter().map(|n| s.spawn(|| run_one(n, &args, timeout))).collect();
        handles
            .into_iter()
            .zip(&nodes)
            .map(|(h, n)| {
                h.join().unwrap_or_else(|_| Answer {
                    node: n.clone(),
                    code: EXIT_AGENT as i32,
                    stdout: String::new(),
                    stderr: "the node's worker panicked".into(),
                })
            })
            .collect()
    });
    let ok: Vec<&Answer> = answers.iter().filter(|a| a.code == 0).collect();
    print!("{}", merge(&ok.iter().map(|a| (a.node.as_str(), a.stdout.as_str())).collect::<Vec<_>>()));
    let mut code = 0u8;
    for a in &answers {
        for l in a.stderr.lines().filter(|l| !l.trim().is_empty()) {
            eprintln!("{}: {l}", a.node);
        }
        if a.code != 0 {
            eprintln!("{}: FAILED (exit {})", a.node, a.code);
            if code == 0 {
                code = u8::try_from(a.code).unwrap_or(EXIT_AGENT);
            }
        }
    }
    code
}

/// Where each column of a docker-style header starts (cells are separated by 2+ spaces).
fn column_starts(header: &[char]) -> Vec<usize> {
    let mut starts = vec![0];
    let mut spaces = 0;
    for (i, c) in header.iter().enumerate() {
        if *c == ' ' {
            spaces += 1;
        } else {
            if spaces >= 2 && i > 0 {
                starts.push(i);
            }
            spaces = 0;
        }
    }
    starts
}

fn is_header(line: &str) -> bool {
    !line.trim().is_empty() && line.chars().all(|c| c.is_ascii_uppercase() || c == ' ' || c == '_' || c == '/')
}

/// Merges the nodes' outputs: one table with a NODE column when every output is a table
/// with the same header; JSON lines with a `Node` field; otherwise a section per node.
fn merge(outs: &[(&str, &str)]) -> String {
    let non_empty: Vec<&(&str, &str)> = outs.iter().filter(|(_, o)| !o.trim().is_empty()).collect();
    if non_empty.is_empty() {
        return String::new();
    }
    let first_lines: Vec<&str> = non_empty.iter().filter_map(|(_, o)| o.lines().next()).collect();
    // The header's cells, from where its columns start (each node pads to its own widths).
    let cells_of = |line: &str, starts: &[usize]| -> Vec<String> {
        let chars: Vec<char> = line.chars().collect();
        (0..starts.len())
            .map(|i| {
                let a = starts[i].min(chars.len());
                let b = starts.get(i + 1).copied().unwrap_or(chars.len()).min(chars.len());
                chars[a..b].iter().collect::<String>().trim().to_string()
            })
            .collect()
    };
    let header_cells = |l: &str| cells_of(l, &column_starts(&l.chars().collect::<Vec<_>>()));
    if first_lines.iter().all(|l| is_header(l) && header_cells(l) == header_cells(first_lines[0])) {
        let mut rows =
            vec![std::iter::once("NODE".to_string()).chain(header_cells(first_lines[0])).collect::<Vec<_>>()];
        for (node, out) in outs {
            let mut lines = out.lines();
            let Some(h) = lines.next() else { continue };
            let starts = column_starts(&h.chars().collect::<Vec<_>>());
            for line in lines.filter(|l| !l.trim().is_empty()) {
                rows.push(std::iter::once(node.to_string()).chain(cells_of(line, &starts)).collect());
            }
        }
        return render(&rows);
    }
    let json_lines = non_empty.iter().all(|(_, o)| {
        o.lines()
            .filter(|l| !l.trim().is_empty())
            .all(|l| serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(l).is_ok())
    });
    if json_lines {
        let mut s = String::new();
        for (node, out) in outs {
            for l in out.lines().filter(|l| !l.trim().is_empty()) {
                if let Ok(mut m) = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(l) {
                    m.insert("Node".into(), serde_json::Value::String(node.to_string()));
                    s.push_str(&serde_json::Value::Object(m).to_string());
                    s.push('\n');
                }
            }
        }
        return s;
    }
    let mut s = String::new();
    for (node, out) in non_empty {
        s.push_str(&format!("== {node} ==\n{}", out));
        if !out.ends_with('\n') {
            s.push('\n');
        }
    }
    s
}

/// Columns padded like docker's tables (at least 3 spaces, the last unpadded).
fn render(rows: &[Vec<String>]) -> String {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n)
        .map(|i| rows.iter().map(|r| r.get(i).map(|c| c.chars().count()).unwrap_or(0)).max().unwrap_or(0))
        .collect();
    let mut s = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<w$}", w = widths[i] + 3));
            }
        }
        s.push_str(line.trim_end());
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_get_a_node_column() {
        let a = "CONTAINER ID   IMAGE     NAMES\nabc            busybox   web\n";
        let b = "CONTAINER ID   IMAGE                 NAMES\ndef            local/busybox:latest  db one\n";
        let m = merge(&[("a", a), ("b", b)]);
        let lines: Vec<&str> = m.lines().collect();
        assert!(lines[0].starts_with("NODE   CONTAINER ID   IMAGE"), "{m}");
        assert!(lines[1].starts_with("a      abc") && lines[1].ends_with("web"), "{m}");
        assert!(lines[2].contains("local/busybox:latest") && lines[2].ends_with("db one"), "{m}");
    }

    #[test]
    fn json_lines_get_a_node_field_and_text_gets_sections() {
        let m = merge(&[("a", "{\"Id\":\"1\"}\n"), ("b", "{\"Id\":\"2\"}\n")]);
        assert_eq!(m, "{\"Id\":\"1\",\"Node\":\"a\"}\n{\"Id\":\"2\",\"Node\":\"b\"}\n");
        let m = merge(&[("a", "abc\n"), ("b", "")]);
        assert_eq!(m, "== a ==\nabc\n");
    }

    #[test]
    fn the_context_flag_is_replaced() {
        let args: Vec<OsString> = ["--context", "a,b", "ps", "--context=x", "-a"].iter().map(OsString::from).collect();
        assert_eq!(args_without_context(&args), ["ps", "-a"].iter().map(OsString::from).collect::<Vec<_>>());
        let mut cfg = CtlConfig::default();
        cfg.contexts.insert("a".into(), Default::default());
        cfg.contexts.insert("b".into(), Default::default());
        assert_eq!(nodes("all", &cfg).unwrap(), ["a", "b"]);
        assert_eq!(nodes("b,a,b", &cfg).unwrap(), ["b", "a"]);
        assert!(nodes("a,zz", &cfg).is_err_and(|e| e.1.contains("\"zz\"")));
        assert!(is_fanout(Some("a,b")) && is_fanout(Some("all")) && !is_fanout(Some("a")));
    }
}
