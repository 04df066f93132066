//! `run`/`create`'s `--log-driver` and `--log-opt` (checked by the agent, which names the
//! bad value; here only their form).

use crate::error::{Exit, Res};
use agent_proto::v1 as pb;
use clap::Args;

#[derive(Args, Clone, Default)]
pub struct LogFlags {
    /// Logging driver for the container: json-file, local (both: the agent's rotated log
    /// file) or none (no log kept)
    #[arg(long = "log-driver", value_name = "DRIVER")]
    pub log_driver: Option<String>,
    /// Log driver options: max-size=10m, max-file=3, compress=true, labels=…, env=…
    #[arg(long = "log-opt", value_name = "KEY=VALUE")]
    pub log_opt: Vec<String>,
}

impl LogFlags {
    /// Puts the driver and its options into `spec`.
    pub fn apply(&self, spec: &mut pb::ContainerSpec) -> Res<()> {
        spec.log_driver = self.log_driver.clone().unwrap_or_default();
        for o in &self.log_opt {
            let Some((k, v)) = o.split_once('=') else {
                return Err(Exit::agent(format!("invalid key value pair format in logging opts: {o:?}")));
            };
            spec.log_opts.insert(k.to_string(), v.to_string());
        }
        Ok(())
    }
}
