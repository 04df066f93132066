//! Values of docker flags that are read from files or written as times: `--env-file`,
//! `--label-file`, and `logs --since/--until`.

use crate::error::{Exit, Res};

/// The lines of a docker env (or label) file: `KEY=VALUE`, or `KEY` alone (an env file
/// takes it from this environment and leaves it out when unset; a label gets an empty
/// value); blank lines and `#` comments are skipped. Values are taken as written (no quotes
/// removed), as docker does.
pub fn env_file(path: &str, flag: &str) -> Res<Vec<String>> {
    lines_file(path, flag, true)
}

/// A `--label-file`: as an env file, `KEY` alone being an empty label.
pub fn label_file(path: &str) -> Res<Vec<String>> {
    lines_file(path, "--label-file", false)
}

fn lines_file(path: &str, flag: &str, from_env: bool) -> Res<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| Exit::agent(format!("{flag} {path}: {e}")))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = line.split('=').next().unwrap_or("");
        if key.is_empty() || key.chars().any(char::is_whitespace) {
            return Err(Exit::agent(format!("{flag} {path}: line {}: variable {key:?} contains whitespaces", n + 1)));
        }
        if line.contains('=') || !from_env {
            out.push(line.to_string());
        } else if let Ok(v) = std::env::var(key) {
            out.push(format!("{key}={v}"));
        }
    }
    Ok(out)
}

/// docker's time for `--since`/`--until`: RFC 3339 (`2026-12-01T10:00:00Z`), Unix seconds
/// (`1764583200`, `1764583200.5`), or a duration before now (`10m`, `1h30m`). Nanoseconds.
pub fn time(flag: &str, s: &str, now_ns: i64) -> Res<i64> {
    let bad = || {
        Exit::agent(format!(
            "invalid value {s:?} for {flag}: use a timestamp (2026-12-01T10:00:00Z), Unix seconds, or a duration like 10m"
        ))
    };
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return t.timestamp_nanos_opt().ok_or_else(bad);
    }
    if let Ok(secs) = s.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Ok((secs * 1e9) as i64);
        }
        return Err(bad());
    }
    let d = humantime::parse_duration(s).map_err(|_| bad())?;
    let d = i64::try_from(d.as_nanos()).map_err(|_| bad())?;
    Ok(now_ns.saturating_sub(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_files_read_like_docker() {
        let d = std::env::temp_dir().join(format!("envfile-{}", std::process::id()));
        std::fs::write(&d, "# comment\n\nA=1\nB=two words\nPATH\nNOT_SET_ANYWHERE_XYZ\n").unwrap();
        let v = env_file(d.to_str().unwrap(), "--env-file").unwrap();
        assert_eq!(&v[..2], ["A=1", "B=two words"]);
        assert!(v[2].starts_with("PATH="), "{v:?}");
        assert_eq!(v.len(), 3, "unset names are left out");
        std::fs::write(&d, "BAD KEY=1\n").unwrap();
        let e = env_file(d.to_str().unwrap(), "--env-file").unwrap_err();
        assert!(e.1.contains("line 1") && e.1.contains("BAD KEY"), "{}", e.1);
        let _ = std::fs::remove_file(&d);
        assert!(env_file("/no/such/file", "--env-file").unwrap_err().1.contains("/no/such/file"));
    }

    #[test]
    fn times_parse_like_docker() {
        let now = 2_000_000_000_000_000_000;
        assert_eq!(time("--since", "10m", now).unwrap(), now - 600_000_000_000);
        assert_eq!(time("--since", "1764583200", now).unwrap(), 1_764_583_200_000_000_000);
        assert_eq!(time("--since", "1764583200.5", now).unwrap(), 1_764_583_200_500_000_000);
        assert_eq!(time("--since", "2026-12-01T10:00:00Z", now).unwrap(), 1_796_119_200_000_000_000);
        assert!(time("--until", "soon", now).unwrap_err().1.contains("\"soon\""));
    }
}
