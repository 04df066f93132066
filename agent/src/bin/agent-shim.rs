//! `agent-shim`: agentd's per-container supervisor (`agent-shim shim DIR`) and its exec
//! helper (`agent-shim nsexec JSON`) as a binary of their own. agentd starts one shim per
//! container and keeps it for the container's life, so what a shim costs is paid per
//! container: this binary holds only the shim's code (a fraction of agentd's size) and is
//! linked as a position-dependent executable (`-no-pie`, see build.rs), so the loader has
//! no relocations to apply and its read-only data stays shared between all shims instead
//! of being copied into every one. agentd itself stays position-independent.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let c = match (args.get(1).map(String::as_str), args.get(2)) {
        (Some("shim"), Some(dir)) => agent::shim::main(std::path::Path::new(dir)),
        (Some("nsexec"), Some(json)) => agent::isolation::nsexec::main(json),
        _ => {
            eprintln!("usage: agent-shim shim DIR | agent-shim nsexec JSON (agentd starts it; not for people)");
            2
        }
    };
    ExitCode::from(c.clamp(0, 255) as u8)
}
