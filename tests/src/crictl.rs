//! crictl (kubelet-era CRI client, 1.26.1) with a config file of its own (never the
//! machine's /etc/crictl.yaml), pointed at one test agent.

use crate::{Agent, Ctl};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct Crictl {
    pub bin: PathBuf,
    pub config: PathBuf,
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_path_buf()
}

/// Runs `c` to completion, killing it after `secs` (a hung client fails, never hangs the suite).
pub fn run(mut c: Command, secs: u64) -> Ctl {
    let what = format!("{c:?}");
    let mut child = c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(secs);
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "{what} did not finish in {secs} s:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output").into()
}

impl Crictl {
    /// crictl for agent `a` (`CRICTL`, else `target/crictl/bin/crictl`); None and a printed
    /// reason when it is missing and `CRICTL` is unset (set but missing: a failure).
    pub fn for_agent(test: &str, a: &Agent) -> Option<Crictl> {
        let default = workspace().join("target/crictl/bin/crictl");
        let bin = std::env::var_os("CRICTL").map(PathBuf::from).unwrap_or(default);
        if !bin.exists() {
            assert!(std::env::var_os("CRICTL").is_none(), "{test}: CRICTL is set but {} is missing", bin.display());
            eprintln!(
                "SKIP {test}: {} is missing (set CRICTL, or run ../shared/tools/crictl.sh target/crictl)",
                bin.display()
            );
            return None;
        }
        let sock = a.host.strip_prefix("unix://").expect("unix agent");
        let config = a.dir.path().join("crictl.yaml");
        // A deadline roomier than crictl's 2 s for a loaded 2-core machine.
        std::fs::write(
            &config,
            format!("runtime-endpoint: unix://{sock}\nimage-endpoint: unix://{sock}\ntimeout: 30\n"),
        )
        .expect("crictl config");
        Some(Crictl { bin, config })
    }

    pub fn cmd(&self, args: &[&str]) -> Ctl {
        let mut c = Command::new(&self.bin);
        c.arg("--config").arg(&self.config).args(args);
        run(c, 120)
    }

    /// Runs `crictl ARGS`, asserts success, returns trimmed stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let r = self.cmd(args);
        assert_eq!(r.code, 0, "crictl {args:?} failed: {}{}", r.stdout, r.stderr);
        r.stdout.trim().to_string()
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.ok(args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("crictl {args:?}: {e}: {out}"))
    }

    /// Writes `v` as a JSON config file named `name` beside the crictl config.
    pub fn config_file(&self, name: &str, v: &serde_json::Value) -> String {
        let p = self.config.with_file_name(name);
        std::fs::write(&p, v.to_string()).expect("write config");
        p.display().to_string()
    }
}
