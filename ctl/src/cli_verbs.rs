//! The clap types of docker's container verbs that work on a container's processes and
//! files: pause/unpause (flattened into `cli::Cmd`).

use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum VerbCmd {
    /// Pause all processes within one or more containers
    Pause {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Unpause all processes within one or more containers
    Unpause {
        #[arg(required = true)]
        containers: Vec<String>,
    },
}
