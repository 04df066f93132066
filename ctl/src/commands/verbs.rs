//! pause, unpause, diff, export, top: each a call and docker's output.

use super::{each, echo, PARALLEL};
use crate::cli_verbs::VerbCmd;
use crate::client::{Client, Clients};
use crate::error::{Exit, Res};
use agent_proto::v1 as pb;

/// docker's exit code for an error of the daemon in these verbs (its `run` family uses 125).
pub const EXIT_DAEMON: u8 = 1;

/// The agent's refusal, as docker prints it, with docker's exit code 1.
pub fn daemon(s: tonic::Status) -> Exit {
    Exit(EXIT_DAEMON, format!("Error response from agent: {}", s.message()))
}

/// Runs one of the verbs.
pub async fn run(cl: &mut Clients, cmd: VerbCmd) -> Res<u8> {
    match cmd {
        VerbCmd::Pause { containers } => {
            let pause = |mut c: Client, id| async move { c.pause(pb::PauseContainerRequest { id }).await.map(drop) };
            each(&cl.c, containers, PARALLEL, pause, echo).await
        }
        VerbCmd::Unpause { containers } => {
            let unpause =
                |mut c: Client, id| async move { c.unpause(pb::UnpauseContainerRequest { id }).await.map(drop) };
            each(&cl.c, containers, PARALLEL, unpause, echo).await
        }
        VerbCmd::Cp { archive, follow_link, src, dest } => super::cp::cp(cl, archive, follow_link, src, dest).await,
        VerbCmd::Attach { detach_keys, no_stdin, sig_proxy, container } => {
            super::attach::attach(cl, container, detach_keys, !no_stdin, sig_proxy).await
        }
        VerbCmd::Export { output, container } => export(cl, output, container).await,
        VerbCmd::Top { container, ps_args } => top(cl, container, ps_args).await,
        VerbCmd::Push { insecure, quiet, reference } => super::image::push(cl, insecure, quiet, reference).await,
    }
}

/// `diff`: docker's `C /path` lines.
pub async fn diff(cl: &mut Clients, id: String) -> Res<u8> {
    let r = cl.c.diff(pb::DiffRequest { id }).await.map_err(daemon)?.into_inner();
    for c in r.changes {
        let k = match c.kind {
            1 => "A",
            2 => "D",
            _ => "C",
        };
        println!("{k} {}", c.path);
    }
    Ok(0)
}

/// `export [-o FILE]`: the tar to stdout (refused on a terminal, as docker) or a file, which
/// is only left behind complete.
async fn export(cl: &mut Clients, output: Option<String>, id: String) -> Res<u8> {
    use std::io::{IsTerminal, Write};
    use tokio_stream::StreamExt;
    if output.is_none() && std::io::stdout().is_terminal() {
        return Err(Exit(EXIT_DAEMON, "cowardly refusing to save to a terminal. Use the -o flag or redirect".into()));
    }
    let mut s = cl.c.export(pb::ExportRequest { id }).await.map_err(daemon)?.into_inner();
    let (mut out, tmp): (Box<dyn Write>, Option<(String, String)>) = match &output {
        Some(f) => {
            let tmp = format!("{f}.agentctl-partial");
            let file = std::fs::File::create(&tmp).map_err(|e| Exit(EXIT_DAEMON, format!("open {f}: {e}")))?;
            (Box::new(std::io::BufWriter::new(file)), Some((tmp, f.clone())))
        }
        None => (Box::new(std::io::stdout().lock()), None),
    };
    let res: Res<()> = async {
        while let Some(c) = s.next().await {
            out.write_all(&c.map_err(daemon)?.data)?;
        }
        out.flush()?;
        Ok(())
    }
    .await;
    drop(out);
    match (res, tmp) {
        (Ok(()), Some((tmp, f))) => {
            std::fs::rename(&tmp, &f).map(|_| 0).map_err(|e| Exit(EXIT_DAEMON, format!("{f}: {e}")))
        }
        (Ok(()), None) => Ok(0),
        (Err(e), Some((tmp, _))) => {
            let _ = std::fs::remove_file(tmp);
            Err(e)
        }
        (Err(e), None) => Err(e),
    }
}

/// `top CONTAINER [ps OPTIONS]`: docker's table (tabwriter: columns at least 20 wide, 3 apart).
async fn top(cl: &mut Clients, id: String, ps_args: Vec<String>) -> Res<u8> {
    let r = cl.c.top(pb::TopRequest { id, ps_args }).await.map_err(daemon)?.into_inner();
    let rows: Vec<Vec<String>> =
        std::iter::once(r.titles.clone()).chain(r.processes.into_iter().map(|p| p.fields)).collect();
    print!("{}", table(&rows));
    Ok(0)
}

/// Cells padded as docker's `tabwriter.NewWriter(out, 20, 1, 3, ' ', 0)`.
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let width: Vec<usize> = (0..cols)
        .map(|i| rows.iter().filter_map(|r| r.get(i)).map(|c| c.chars().count() + 3).max().unwrap_or(0).max(20))
        .collect();
    let mut out = String::new();
    for r in rows {
        let n = r.len();
        for (i, c) in r.iter().enumerate() {
            if i + 1 == n {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}", w = width[i]));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn top_table_is_dockers() {
        let rows = vec![vec!["PID".to_string(), "CMD".to_string()], vec!["42".to_string(), "sleep 1000".to_string()]];
        assert_eq!(super::table(&rows), format!("{:<20}CMD\n{:<20}sleep 1000\n", "PID", "42"));
    }
}
