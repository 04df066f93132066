//! `agentctl`: the command line of node-agent, with docker's verbs, flags and exit codes.

mod aliases;
mod build;
mod busybox;
mod certs;
mod cg_flags;
mod cli;
mod cli_create;
mod cli_verbs;
mod client;
mod commands;
mod compose;
mod error;
mod fanout;
mod fields;
mod flags;
mod log_flags;
mod mounts;
mod net_flags;
mod output;
mod registry;
mod run_flags;
mod template;
mod tty;

// The contexts file is the client library's, shared with schedulers.
use agent_client::context;
use clap::Parser;
use cli::{Cli, Cmd};
use error::{Exit, Res, EXIT_AGENT};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = aliases::rewrite(std::env::args_os().skip(1).collect());
    let argv0 = std::env::args_os().next().unwrap_or_else(|| "agentctl".into());
    let cli = match Cli::try_parse_from(std::iter::once(argv0).chain(args)) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_AGENT } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    // Like every Unix filter, `agentctl ps | head` ends quietly when the reader goes away:
    // println! panics on EPIPE (SIGPIPE stays ignored, or a refused TLS handshake would kill
    // us mid-write on the socket), so that one panic becomes exit 141 without a message.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.contains("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default_hook(info);
    }));
    if fanout::is_fanout(cli.conn.context.as_deref())
        && !matches!(cli.cmd, Cmd::Context { .. } | Cmd::Certs { .. } | Cmd::Completion { .. })
    {
        let spec = cli.conn.context.clone().unwrap_or_default();
        let nodes = context::CtlConfig::load().map_err(Exit::from).and_then(|cfg| fanout::nodes(&spec, &cfg));
        return match nodes {
            Ok(n) => {
                let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
                ExitCode::from(fanout::run(n, &args, std::time::Duration::from_secs(cli.conn.node_timeout)))
            }
            Err(Exit(code, msg)) => {
                eprintln!("{msg}");
                ExitCode::from(error::docker_code(code, error::failure_code(&cli.cmd)))
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
    let failure = error::failure_code(&cli.cmd);
    match rt.block_on(dispatch(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(Exit(code, msg)) => {
            if !msg.is_empty() {
                eprintln!("{msg}");
            }
            ExitCode::from(error::docker_code(code, failure))
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
        Cmd::Completion { shell } => {
            use clap::CommandFactory;
            use std::io::Write;
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "agentctl", &mut script);
            return match std::io::stdout().write_all(&script) {
                Ok(()) => Ok(0),
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(141),
                Err(e) => Err(Exit::agent(format!("writing the completion script: {e}"))),
            };
        }
        // The file is read before connecting.
        Cmd::Apply(a) => return compose::run(&conn, a.f, compose::Verb::Apply { prune: a.prune }).await,
        Cmd::Diff(compose::DiffArgs { apply: a, container: None }) => {
            return compose::run(&conn, a.f, compose::Verb::Diff { prune: a.prune }).await
        }
        Cmd::Down(a) => return compose::run(&conn, a.f, compose::Verb::Down { timeout: a.timeout }).await,
        _ => client::connect(&conn).await?,
    };
    commands::run(&mut cl, cmd).await
}
