//! How a command fails: docker's exit code and the message for stderr.

/// Exit code for errors of the agent or of usage, like docker (see [`docker_code`]).
pub const EXIT_AGENT: u8 = 125;

/// Exit code of a failed command other than `run`/`create`, like docker.
pub const EXIT_FAILED: u8 = 1;

/// How the failure of `cmd` exits: docker's 125 for `run` and `create`; 2 for a Compose
/// `diff`, whose 1 means "would change something" (as `kubectl diff`); 1 for the others.
pub fn failure_code(cmd: &crate::cli::Cmd) -> u8 {
    use crate::cli::Cmd;
    match cmd {
        Cmd::Run { .. } | Cmd::Create { .. } => EXIT_AGENT,
        Cmd::Diff(d) if d.container.is_none() => 2,
        _ => EXIT_FAILED,
    }
}

/// docker's exit codes: 125 for a usage error (clap's, before any command runs); a command's
/// failure exits with its [`failure_code`]. Codes a command chose itself (a container's exit
/// code, 126/127 of a command that could not run) stay.
pub fn docker_code(code: u8, failure: u8) -> u8 {
    if code == EXIT_AGENT {
        failure
    } else {
        code
    }
}

/// An error that ends the command with a specific exit code.
#[derive(Debug)]
pub struct Exit(pub u8, pub String);

impl Exit {
    /// An agent or usage error (exit code 125).
    pub fn agent(msg: impl Into<String>) -> Exit {
        Exit(EXIT_AGENT, msg.into())
    }
}

impl From<tonic::Status> for Exit {
    fn from(s: tonic::Status) -> Exit {
        Exit(EXIT_AGENT, format!("Error response from agent: {}", s.message()))
    }
}

impl From<anyhow::Error> for Exit {
    fn from(e: anyhow::Error) -> Exit {
        Exit(EXIT_AGENT, format!("{e:#}"))
    }
}

impl From<agent_client::context::ContextError> for Exit {
    fn from(e: agent_client::context::ContextError) -> Exit {
        Exit(EXIT_AGENT, e.to_string())
    }
}

impl From<agent_client::TargetError> for Exit {
    fn from(e: agent_client::TargetError) -> Exit {
        Exit(EXIT_AGENT, e.to_string())
    }
}

impl From<std::io::Error> for Exit {
    fn from(e: std::io::Error) -> Exit {
        Exit(EXIT_AGENT, e.to_string())
    }
}

impl From<serde_json::Error> for Exit {
    fn from(e: serde_json::Error) -> Exit {
        Exit(EXIT_AGENT, e.to_string())
    }
}

impl From<crate::template::Error> for Exit {
    fn from(e: crate::template::Error) -> Exit {
        Exit(EXIT_AGENT, e.0)
    }
}

/// What every command returns: its exit code, or why it failed.
pub type Res<T = ()> = Result<T, Exit>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_run_and_create_fail_with_125() {
        use clap::Parser;
        let code = |args: &[&str]| {
            let cli = crate::cli::Cli::try_parse_from(std::iter::once("agentctl").chain(args.iter().copied()));
            docker_code(EXIT_AGENT, failure_code(&cli.expect("parses").cmd))
        };
        assert_eq!(code(&["run", "img"]), 125);
        assert_eq!(code(&["create", "img"]), 125);
        assert_eq!(code(&["rm", "web"]), 1);
        assert_eq!(code(&["diff", "web"]), 1);
        assert_eq!(code(&["diff", "-f", "compose.yaml"]), 2);
        assert_eq!(docker_code(127, 125), 127);
        assert_eq!(docker_code(126, 1), 126);
        assert_eq!(docker_code(7, 1), 7, "a container's own code stays");
    }
}
