//! The clap types of docker's container verbs that work on a container's processes and
//! files: pause/unpause, cp, diff, export, top, attach (flattened into `cli::Cmd`), and
//! `run`'s flags for its attached client (`RunAttach`).

use clap::{Args, Subcommand};

/// `run`'s flags for the attached (foreground) client.
#[derive(Args, Clone, Debug, Default)]
pub struct RunAttach {
    /// Attach to STDIN, STDOUT or STDERR (default: STDOUT and STDERR; -i adds STDIN)
    #[arg(short = 'a', long = "attach", value_name = "STREAM")]
    pub attach: Vec<String>,
    /// Override the key sequence for detaching a container (default ctrl-p,ctrl-q; with -it)
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    /// Proxy received signals to the process (without a terminal)
    #[arg(long = "sig-proxy", default_value_t = true, num_args = 0..=1, default_missing_value = "true",
          action = clap::ArgAction::Set)]
    pub sig_proxy: bool,
}

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
    /// Copy files/folders between a container and the local filesystem
    ///
    /// agentctl cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-
    /// agentctl cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH
    Cp {
        /// Archive mode (copy all uid/gid information)
        #[arg(short = 'a', long = "archive")]
        archive: bool,
        /// Always follow symbol link in SRC_PATH
        #[arg(short = 'L', long = "follow-link")]
        follow_link: bool,
        src: String,
        dest: String,
    },
    /// Export a container's filesystem as a tar archive
    Export {
        /// Write to a file, instead of STDOUT
        #[arg(short = 'o', long = "output")]
        output: Option<String>,
        container: String,
    },
    /// Attach local standard input, output, and error streams to a running container
    Attach {
        /// Override the key sequence for detaching a container (default ctrl-p,ctrl-q)
        #[arg(long = "detach-keys")]
        detach_keys: Option<String>,
        /// Do not attach STDIN
        #[arg(long = "no-stdin")]
        no_stdin: bool,
        /// Proxy all received signals to the process
        #[arg(long = "sig-proxy", default_value_t = true, num_args = 0..=1, default_missing_value = "true",
              action = clap::ArgAction::Set)]
        sig_proxy: bool,
        container: String,
    },
    /// Display the running processes of a container
    Top {
        container: String,
        /// ps OPTIONS (default -ef)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Upload an image to a registry
    Push {
        /// Plain HTTP to this registry (loopback registries always are, like docker's)
        #[arg(long)]
        insecure: bool,
        /// Suppress verbose output
        #[arg(short = 'q', long)]
        quiet: bool,
        /// NAME[:TAG]
        reference: String,
    },
}
