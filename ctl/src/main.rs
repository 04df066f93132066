//! `agentctl`: the command line of node-agent, with docker's verbs, flags and exit codes.

mod build;
mod busybox;
mod certs;
mod cli;
mod client;
mod commands;
mod context;
mod error;
mod fanout;
mod mounts;
mod output;
mod registry;
mod tty;

use clap::Parser;
use cli::{Cli, Cmd};
use error::{Exit, Res, EXIT_AGENT};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_AGENT } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    // Like docker and every Unix filter: `agentctl ps | head` ends quietly when the reader
    // goes away (Rust ignores SIGPIPE, and println! would panic on EPIPE).
    // SAFETY: restoring a signal's default disposition before any thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    if fanout::is_fanout(cli.conn.context.as_deref()) && !matches!(cli.cmd, Cmd::Context { .. } | Cmd::Certs { .. }) {
        let spec = cli.conn.context.clone().unwrap_or_default();
        let nodes = context::CtlConfig::load().map_err(Exit::from).and_then(|cfg| fanout::nodes(&spec, &cfg));
        return match nodes {
            Ok(n) => {
                let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
                ExitCode::from(fanout::run(n, &args, std::time::Duration::from_secs(cli.conn.node_timeout)))
            }
            Err(Exit(code, msg)) => {
                eprintln!("{msg}");
                ExitCode::from(code)
            }
        };
    }
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("agentctl: {e}");
            return ExitCode::from(EXIT_AGENT);
        }
    };
    match rt.block_on(dispatch(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(Exit(code, msg)) => {
            if !msg.is_empty() {
                eprintln!("{msg}");
            }
            ExitCode::from(code)
        }
    }
}

/// Runs the verb: those on local files alone without connecting, the others on the agent.
async fn dispatch(cli: Cli) -> Res<u8> {
    let Cli { conn, cmd } = cli;
    let mut cl = match cmd {
        Cmd::Context { cmd } => return commands::context::run(cmd, &conn),
        Cmd::Certs { cmd } => return commands::certs::run(cmd),
        Cmd::Logout { registry } => return commands::image::logout(registry),
        _ => client::connect(&conn).await?,
    };
    commands::run(&mut cl, cmd).await
}
