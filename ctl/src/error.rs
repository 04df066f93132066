//! How a command fails: docker's exit code and the message for stderr.

/// Exit code for errors of the agent or of usage, like docker.
pub const EXIT_AGENT: u8 = 125;

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
