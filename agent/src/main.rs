//! `agentd`: the daemon; `agentd shim DIR` and `agentd nsexec JSON` are its re-executed
//! helpers, dispatched before any thread exists (they fork and clone).

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match (args.get(1).map(String::as_str), args.get(2)) {
        (Some("shim"), Some(dir)) => return code(agent::shim::main(std::path::Path::new(dir))),
        (Some("nsexec"), Some(json)) => return code(agent::isolation::nsexec::main(json)),
        _ => {}
    }
    let flags = agent::config::Flags::parse();
    let check = flags.check_config;
    let cfg = match agent::config::Config::resolve(flags) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("agentd: {e}");
            return ExitCode::from(2);
        }
    };
    if check {
        println!(
            "configuration ok: instance {} root {} run dir {} listen {} userns default {}{}",
            cfg.instance,
            cfg.root.display(),
            cfg.run_dir.display(),
            cfg.listen.join(","),
            cfg.userns.default,
            match &cfg.metrics {
                None => String::new(),
                Some(m) => format!(" metrics {}{}", m.addr, if m.tls.is_some() { " (mutual TLS)" } else { "" }),
            }
        );
        return ExitCode::SUCCESS;
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    if cfg.json_logs {
        tracing_subscriber::fmt().json().with_env_filter(filter).with_writer(std::io::stderr).init();
    } else {
        // Colour only for a person at a terminal: a log file or journal gets plain text.
        use std::io::IsTerminal;
        let ansi = std::io::stderr().is_terminal();
        tracing_subscriber::fmt().with_ansi(ansi).with_env_filter(filter).with_writer(std::io::stderr).init();
    }
    if let Err(e) = agent::crash::init() {
        eprintln!("agentd: {e}");
        return ExitCode::from(2);
    }
    match agent::nofile::raise() {
        Ok((before, now)) => {
            // Connections and followers each hold a descriptor; containers hold a few more.
            let want = cfg.limits.max_connections as u64 + cfg.limits.max_followers as u64;
            if now < want {
                tracing::warn!(
                    limit = now,
                    max_connections = cfg.limits.max_connections,
                    max_followers = cfg.limits.max_followers,
                    "the open-file limit is below [limits] max_connections + max_followers: clients past it are \
                     refused (raise the hard limit, e.g. LimitNOFILE= of the service)"
                );
            }
            if before != now {
                tracing::info!(
                    before,
                    now,
                    "raised the open-file soft limit to the hard limit; programs started get the old one"
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
    }
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("agentd: tokio runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(agent::daemon::run(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("agentd: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn code(c: i32) -> ExitCode {
    ExitCode::from(c.clamp(0, 255) as u8)
}
