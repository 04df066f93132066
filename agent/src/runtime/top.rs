//! `top`: the host's `ps` with the caller's options, its header kept and its rows limited to
//! the PIDs of the container's cgroup, as docker's daemon does (moby `daemon/top_unix.go`):
//! the options may not rename the PID column (`-o pid=X` would hide it), and a row whose
//! last column (the command) holds spaces is joined back into that column.

use super::{Result, Runtime, RuntimeError, State};
use std::collections::HashSet;

/// `ps` output limited to some PIDs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Top {
    pub titles: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// Refuses `-o pid=…` style renames of the PID column (docker's `validatePSArgs`).
pub fn validate_args(args: &[String]) -> Result<()> {
    let joined = format!(" {}", args.join(" "));
    for (i, _) in joined.match_indices('=') {
        let key_start = joined[..i].rfind(|c: char| c.is_ascii_whitespace() || c == ',').map_or(0, |p| p + 1);
        let key = &joined[key_start..i];
        let value = joined[i + 1..].trim_start();
        if value.starts_with("PID") && key != "pid" {
            let v = value.split_ascii_whitespace().next().unwrap_or("");
            return Err(RuntimeError::InvalidArgument(format!("specifying \"{key}={v}\" is not allowed")));
        }
    }
    Ok(())
}

/// Parses `ps` output, keeping the rows whose PID is in `pids`.
pub fn parse(output: &str, pids: &HashSet<i32>) -> Result<Top> {
    let mut lines = output.lines();
    let titles: Vec<String> = lines.next().unwrap_or("").split_ascii_whitespace().map(String::from).collect();
    let Some(pid_col) = titles.iter().position(|t| t == "PID") else {
        return Err(RuntimeError::InvalidArgument("Couldn't find PID field in ps output".into()));
    };
    let mut rows = Vec::new();
    for l in lines {
        let mut fields: Vec<String> = l.split_ascii_whitespace().map(String::from).collect();
        if fields.is_empty() {
            continue;
        }
        let Some(pid) = fields.get(pid_col).and_then(|p| p.parse::<i32>().ok()) else {
            return Err(RuntimeError::Internal(format!("unexpected pid {:?} in ps output", fields.get(pid_col))));
        };
        if !pids.contains(&pid) {
            continue;
        }
        if fields.len() > titles.len() {
            let last = fields[titles.len() - 1..].join(" ");
            fields.truncate(titles.len() - 1);
            fields.push(last);
        }
        rows.push(fields);
    }
    Ok(Top { titles, rows })
}

impl Runtime {
    /// `top CONTAINER [ps OPTIONS]` (default `-ef`).
    pub async fn top(&self, name: &str, args: Vec<String>) -> Result<Top> {
        let rec = self.resolve(name)?;
        if rec.state != State::Running {
            return Err(RuntimeError::FailedPrecondition(format!("container {} is not running", rec.name)));
        }
        let args = if args.is_empty() { vec!["-ef".to_string()] } else { args };
        validate_args(&args)?;
        let out = tokio::process::Command::new("ps")
            .args(&args)
            .env("LC_ALL", "C")
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .map_err(|err| RuntimeError::Io { what: "run", path: "ps".into(), err })?;
        if !out.status.success() {
            return Err(RuntimeError::InvalidArgument(format!(
                "ps {}: {}: {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let pids: HashSet<i32> = self.cgroups.pids(&rec.cg()).into_iter().collect();
        parse(&String::from_utf8_lossy(&out.stdout), &pids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_of_the_containers_pids_with_the_command_joined() {
        let out = "UID          PID    PPID  C STIME TTY          TIME CMD\n\
                   root           1       0  0 10:00 ?        00:00:01 /sbin/init\n\
                   root        4242       1  0 10:01 ?        00:00:00 sleep 1000\n";
        let t = parse(out, &HashSet::from([4242])).unwrap();
        assert_eq!(t.titles.len(), 8);
        assert_eq!(t.rows, vec![vec!["root", "4242", "1", "0", "10:01", "?", "00:00:00", "sleep 1000"]]);
        assert!(parse("USER COMMAND\nroot x\n", &HashSet::new()).is_err());
    }

    #[test]
    fn renaming_the_pid_column_is_refused() {
        assert!(validate_args(&["-o".into(), "pid=PID,comm".into()]).is_ok());
        let e = validate_args(&["-o".into(), "ppid=PID".into()]).unwrap_err().to_string();
        assert!(e.contains("ppid=PID"), "{e}");
        assert!(validate_args(&["aux".into()]).is_ok());
    }
}
