//! Harness for the root-only end-to-end tests: each test starts its own `agentd` (own
//! instance name, root, run dir and socket) and drives it with the real `agentctl`.

pub mod crictl;
pub mod fixtures;
pub mod h2raw;
pub mod hostmount;
pub mod tally;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// True when the tests can touch the kernel for real; otherwise prints why they skip.
pub fn privileged(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    eprintln!("SKIP {test}: needs root (namespaces, cgroups, overlay mounts)");
    false
}

/// Where the workspace's binaries are (`target/debug` next to this test binary).
pub fn bin_dir() -> PathBuf {
    if let Ok(d) = std::env::var("AGENT_BIN_DIR") {
        return PathBuf::from(d);
    }
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/e2e-hash
    exe.parent().and_then(Path::parent).expect("target dir").to_path_buf()
}

/// The environment key (set for agentd too, where it means nothing) of a `start_v2_view` agent.
const V2_VIEW: &str = "AGENTD_E2E_V2_VIEW";

/// A running agent owned by one test.
pub struct Agent {
    pub dir: tempfile::TempDir,
    pub instance: String,
    pub host: String,
    /// More `--listen` addresses besides the unix socket (e.g. a TLS tcp:// one).
    pub extra_listen: Vec<String>,
    /// Environment set for agentd (e.g. a PATH without some host program).
    pub env: Vec<(String, String)>,
    /// The root is a tmpfs of this test (`start_on_tmpfs`), unmounted when the agent goes.
    tmpfs_root: bool,
    /// agentd starts with this soft open-file limit (its hard one as the test's).
    nofile_soft: Option<u64>,
    child: Option<Child>,
}

/// `config` with a bridge subnet of its own: agents of parallel tests that left the choice
/// to the address pools raced for the same free subnet (both saw 10.88.0.0/16 free, the
/// second's bridge then overlapped the first's route).
fn own_subnet(config: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let subnet = format!("10.{}.{}.0/24", 100 + n % 100, std::process::id() % 250);
    // The caller's top-level keys must come before any table.
    format!("{config}\n[network]\nbridge_subnet = \"{subnet}\"\n")
}

/// The result of an `agentctl` run.
#[derive(Debug)]
pub struct Ctl {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Ctl {
    fn from(o: Output) -> Ctl {
        Ctl {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Agent {
    /// Starts an agent for `test` (instance `t<pid><name>`), with the busybox image imported.
    pub fn start(test: &str) -> Agent {
        let a = Agent::start_bare(test);
        let r = a.ctl(&["image", "busybox"]);
        assert_eq!(r.code, 0, "import busybox: {}", r.stderr);
        a
    }

    /// Starts an agent with `config` (TOML) and the busybox image.
    pub fn start_with_config(test: &str, config: &str) -> Agent {
        let a = Agent::start_bare_with(test, Some(config));
        let r = a.ctl(&["image", "busybox"]);
        assert_eq!(r.code, 0, "import busybox: {}", r.stderr);
        a
    }

    /// Starts an agent without importing any image.
    pub fn start_bare(test: &str) -> Agent {
        Agent::start_bare_with(test, None)
    }

    fn start_bare_with(test: &str, config: Option<&str>) -> Agent {
        Agent::start_listening(test, config.unwrap_or(""), &[])
    }

    /// Starts an agent (no image) with `config` that also listens on `extra_listen`.
    pub fn start_listening(test: &str, config: &str, extra_listen: &[String]) -> Agent {
        Agent::launch(test, &own_subnet(config), extra_listen, &[])
    }

    /// Starts an agent (no image) whose config file is exactly `config` — without a subnet
    /// of its own, the address pools choose — with `env` set for agentd.
    pub fn start_exact(test: &str, config: &str, env: &[(&str, &str)]) -> Agent {
        Agent::launch(test, config, &[], env)
    }

    /// Starts an agent whose root is a tmpfs of `mib` MiB (to fill it), with `env` for
    /// agentd and the busybox image imported.
    pub fn start_on_tmpfs(test: &str, mib: u64, env: &[(&str, &str)]) -> Agent {
        let a = Agent::launch_with(test, &own_subnet(""), &[], env, Some(mib));
        let r = a.ctl(&["image", "busybox"]);
        assert_eq!(r.code, 0, "import busybox: {}", r.stderr);
        a
    }

    fn launch(test: &str, config: &str, extra_listen: &[String], env: &[(&str, &str)]) -> Agent {
        Agent::launch_with(test, config, extra_listen, env, None)
    }

    fn launch_with(
        test: &str,
        config: &str,
        extra_listen: &[String],
        env: &[(&str, &str)],
        tmpfs_mib: Option<u64>,
    ) -> Agent {
        let dir = tempfile::Builder::new().prefix("e2e-").tempdir().expect("tempdir");
        if let Some(mib) = tmpfs_mib {
            let root = dir.path().join("root");
            std::fs::create_dir(&root).expect("root dir");
            nix::mount::mount(
                Some("tmpfs"),
                &root,
                Some("tmpfs"),
                nix::mount::MsFlags::empty(),
                Some(format!("size={mib}m,mode=0711").as_str()),
            )
            .expect("mount a tmpfs for the root");
        }
        let short: String = test.chars().filter(|c| c.is_ascii_alphanumeric()).take(16).collect();
        let instance = format!("t{}{}", std::process::id() % 100000, short);
        let host = format!("unix://{}/run/agentd.sock", dir.path().display());
        std::fs::write(dir.path().join("agentd.toml"), config).expect("config");
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut a = Agent {
            dir,
            instance,
            host,
            extra_listen: extra_listen.to_vec(),
            env,
            tmpfs_root: tmpfs_mib.is_some(),
            nofile_soft: None,
            child: None,
        };
        a.spawn();
        a
    }

    /// Starts an agent (with busybox) whose soft open-file limit is `soft` when it starts, as
    /// a service manager's default of 1024 would leave it.
    pub fn start_with_nofile(test: &str, soft: u64) -> Agent {
        let mut a = Agent::start(test);
        a.nofile_soft = Some(soft);
        a.crash_and_restart();
        a
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn run_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    /// Starts an agent (with busybox) that sees cgroup v2 only: agentd runs in a mount
    /// namespace of its own without the host's v1 hierarchies, so on a hybrid host it takes
    /// the cgroup2 mount for a pure v2 layout (the v2 code paths against the real kernel).
    /// `None` where the host has no cgroup2 mount beside v1 ones.
    pub fn start_v2_view(test: &str) -> Option<Agent> {
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let v2 = mounts.lines().find_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f.len() > 2 && f[2] == "cgroup2").then(|| PathBuf::from(f[1]))
        })?;
        if cgroup_mounts().contains(&v2) {
            return None;
        }
        let a = Agent::launch(test, &own_subnet(""), &[], &[(V2_VIEW, v2.to_str()?)]);
        let r = a.ctl(&["image", "busybox"]);
        assert_eq!(r.code, 0, "import busybox: {}", r.stderr);
        Some(a)
    }

    /// The cgroup2 mount a `start_v2_view` agent uses.
    pub fn v2_view(&self) -> Option<PathBuf> {
        self.env.iter().find(|(k, _)| k == V2_VIEW).map(|(_, v)| PathBuf::from(v))
    }

    /// The agentd command line of this agent.
    pub fn agentd_cmd(&self) -> Command {
        if self.v2_view().is_some() {
            // unshare(1): a private mount namespace; there the v1 hierarchies are unmounted
            // before agentd starts (the host's stay as they are).
            let plain = self.plain_agentd_cmd();
            let mut c = Command::new("unshare");
            c.args(["-m", "--propagation", "private", "sh", "-c"]);
            c.arg("for m in $(awk '$3==\"cgroup\" {print $2}' /proc/self/mounts); do umount \"$m\" || exit 1; done; exec \"$@\"");
            c.arg("sh").arg(plain.get_program()).args(plain.get_args());
            return c;
        }
        self.plain_agentd_cmd()
    }

    fn plain_agentd_cmd(&self) -> Command {
        let mut c = Command::new(bin_dir().join("agentd"));
        c.arg("--root").arg(self.root()).arg("--run-dir").arg(self.run_dir()).arg("--instance").arg(&self.instance);
        c.arg("--config").arg(self.dir.path().join("agentd.toml"));
        if !self.extra_listen.is_empty() {
            c.arg("--listen").arg(format!("unix://{}", self.run_dir().join("agentd.sock").display()));
            for l in &self.extra_listen {
                c.arg("--listen").arg(l);
            }
        }
        c
    }

    /// The process ID of agentd.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("agentd.log"))
            .expect("log file");
        let mut cmd = self.agentd_cmd();
        if let Some(soft) = self.nofile_soft {
            use std::os::unix::process::CommandExt;
            let (_, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).expect("nofile");
            // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, soft, hard)
                        .map_err(std::io::Error::from)
                });
            }
        }
        let child = cmd
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn agentd");
        self.child = Some(child);
        let sock = self.run_dir().join("agentd.sock");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(&sock).is_err() {
            assert!(Instant::now() < deadline, "agentd did not come up: {}", self.log());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// agentd's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agentd.log")).unwrap_or_default()
    }

    /// Kills agentd with SIGKILL (containers must survive) and starts it again.
    pub fn crash_and_restart(&mut self) {
        self.crash_and_restart_after(Duration::ZERO);
    }

    /// Kills agentd with SIGKILL, stays away for `away`, and starts it again.
    pub fn crash_and_restart_after(&mut self, away: Duration) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        std::thread::sleep(away);
        self.spawn();
    }

    fn remove_all_and_stop(&mut self) {
        let ids = self.ctl(&["ps", "-aq"]).stdout;
        for id in ids.split_whitespace() {
            let r = self.ctl(&["rm", "-f", id]);
            if r.code != 0 {
                eprintln!("WARNING: clean-up of agent {}: rm -f {id}: {}", self.instance, r.stderr.trim());
            }
        }
        self.stop();
    }

    /// True when this agent's nft table is still there.
    fn firewall_table_left(&self) -> bool {
        Command::new("nft")
            .args(["list", "table", "ip", &self.instance])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Stops agentd gracefully.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.id() as i32), nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            eprintln!("WARNING: agent {} did not stop within 10 s of SIGTERM; killed", self.instance);
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `agentctl` against this agent.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(bin_dir().join("agentctl"));
        // Never the machine's own contexts: each agent gets its own agentctl config file.
        c.env("AGENT_HOST", &self.host).env("AGENTCTL_CONFIG", self.dir.path().join("agentctl.toml"));
        c.stdin(Stdio::null());
        c
    }

    /// Runs `agentctl ARGS`.
    pub fn ctl(&self, args: &[&str]) -> Ctl {
        self.cmd().args(args).output().expect("run agentctl").into()
    }

    /// Runs `agentctl ARGS` with `input` on stdin.
    pub fn ctl_stdin(&self, args: &[&str], input: &[u8]) -> Ctl {
        use std::io::Write;
        let mut c = self
            .cmd()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("agentctl");
        let mut i = c.stdin.take().expect("stdin");
        i.write_all(input).expect("write stdin");
        drop(i);
        c.wait_with_output().expect("agentctl").into()
    }

    /// Runs `agentctl ARGS`, asserts success, returns trimmed stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let r = self.ctl(args);
        assert_eq!(r.code, 0, "agentctl {args:?} failed: {}{}\nagent log:\n{}", r.stdout, r.stderr, self.log());
        r.stdout.trim().to_string()
    }

    /// `agentctl inspect NAME` as JSON.
    pub fn inspect(&self, name: &str) -> serde_json::Value {
        let out = self.ok(&["inspect", name]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("inspect json");
        v[0].clone()
    }

    /// The container's cgroup directories on this host (each v1 controller, or the v2 dir).
    pub fn cgroup_dirs(&self, id: &str) -> Vec<PathBuf> {
        cgroup_mounts().into_iter().map(|m| m.join(&self.instance).join(id)).collect()
    }

    /// Asserts that nothing of this instance is left on the host besides what `keep` names.
    pub fn assert_no_leftovers(&self) {
        for m in cgroup_mounts() {
            let p = m.join(&self.instance);
            let children: Vec<_> = std::fs::read_dir(&p)
                .map(|rd| rd.flatten().filter(|e| e.path().is_dir()).map(|e| e.path()).collect())
                .unwrap_or_default();
            assert!(children.is_empty(), "leftover cgroups: {children:?}");
        }
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let d = self.dir.path().display().to_string();
        let own_root = format!("tmpfs {} tmpfs ", self.root().display());
        let left: Vec<&str> =
            mounts.lines().filter(|l| l.contains(&d) && !(self.tmpfs_root && l.starts_with(&own_root))).collect();
        assert!(left.is_empty(), "leftover host mounts under {d}:\n{}", left.join("\n"));
        let ps = Command::new("ps").args(["-eo", "args"]).output().expect("ps");
        let ps = String::from_utf8_lossy(&ps.stdout);
        // `agent-shim shim DIR` (or `agentd shim DIR`): the second word, not a name containing "shim".
        let shims: Vec<_> =
            ps.lines().filter(|l| l.split_whitespace().nth(1) == Some("shim") && l.contains(&d)).collect();
        assert!(shims.is_empty(), "leftover shims: {shims:?}");
        let cdir = self.root().join("containers");
        let left: Vec<_> =
            std::fs::read_dir(&cdir).map(|rd| rd.flatten().map(|e| e.path()).collect()).unwrap_or_default();
        assert!(left.is_empty(), "leftover container dirs: {left:?}");
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.remove_all_and_stop();
            // agentd keeps its firewall table and bridge while it thinks a container runs
            // (and a killed agentd cannot remove them): say so, with what it knew, and let a
            // fresh agentd — which sweeps what it finds — clean up after itself.
            if self.firewall_table_left() && !std::thread::panicking() {
                eprintln!(
                    "WARNING: agent {} left its firewall table after stopping; containers: {:?}; end of its log:\n{}",
                    self.instance,
                    self.ctl(&["ps", "-a"]).stdout,
                    self.log()
                        .lines()
                        .rev()
                        .take(15)
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                        .collect::<Vec<_>>()
                        .join("\n")
                );
                self.spawn();
                self.remove_all_and_stop();
            }
        }
        // Whatever a failed test left: kill processes in our cgroups, remove the cgroups
        // (group members sit one level deeper than plain containers).
        for m in cgroup_mounts() {
            remove_cgroup_tree(&m.join(&self.instance));
        }
        if let Some(v2) = self.v2_view() {
            remove_cgroup_tree(&v2.join(&self.instance));
        }
        if self.tmpfs_root {
            let _ = nix::mount::umount2(&self.root(), nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

fn remove_cgroup_tree(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten().filter(|e| e.path().is_dir()) {
            remove_cgroup_tree(&e.path());
        }
    }
    let mut killed = false;
    if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        for pid in procs.split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
            killed = true;
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
    }
    // Killed processes whose parent is gone are zombies of PID 1 until it reaps them, which
    // takes seconds on this kind of VM: their cgroup cannot be removed before.
    for _ in 0..if killed { 1000 } else { 100 } {
        if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Mount points of the cgroup hierarchies the agent uses (v1 controllers, or the v2 root).
pub fn cgroup_mounts() -> Vec<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let v1: Vec<PathBuf> = mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f.len() > 2 && f[2] == "cgroup").then(|| PathBuf::from(f[1]))
        })
        .collect();
    if !v1.is_empty() {
        return v1;
    }
    vec![PathBuf::from("/sys/fs/cgroup")]
}

/// The inode of one of this process's namespaces (`pid`, `net`…).
pub fn ns_inode(pid: &str, ns: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).map(|p| p.display().to_string()).unwrap_or_default()
}

/// Polls `f` until it returns true or `secs` pass.
pub fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

/// A "test host": a network namespace joined to the host by a veth pair, with
/// `10.<a>.<b>.1/30` on the host side and `.2` inside. Removed on drop.
pub struct TestHost {
    pub ns: String,
    pub host_ip: String,
    pub ip: String,
}

impl TestHost {
    /// Creates the namespace `name` (unique per test) on subnet `10.a.b.0/30`.
    pub fn new(name: &str, a: u8, b: u8) -> TestHost {
        let ns = format!("e2e{}{}", std::process::id() % 10000, name);
        let hv = format!("e{}{}h", std::process::id() % 10000, name);
        let host_ip = format!("10.{a}.{b}.1");
        let ip = format!("10.{a}.{b}.2");
        let _ = Command::new("ip").args(["netns", "del", &ns]).status();
        let sh = format!(
            "ip netns add {ns} && ip link add {hv} type veth peer name eth0 netns {ns} && \
             ip addr add {host_ip}/30 dev {hv} && ip link set {hv} up && \
             ip -n {ns} addr add {ip}/30 dev eth0 && ip -n {ns} link set eth0 up && ip -n {ns} link set lo up && \
             ip -n {ns} route add default via {host_ip}"
        );
        let st = Command::new("sh").args(["-c", &sh]).status().expect("sh");
        assert!(st.success(), "creating test host {ns}");
        TestHost { ns, host_ip, ip }
    }

    /// A command run inside the test host.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns]).args(args);
        c
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

/// A free TCP port on 127.0.0.1 (bound and released; good enough for one test).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// A real registry (Debian's `docker-registry`, distribution v2) on 127.0.0.1, owned by one
/// test: its own port and storage, killed when dropped.
pub struct Registry {
    pub port: u16,
    pub dir: PathBuf,
    child: Child,
}

impl Registry {
    /// Starts a registry storing under `dir`; with `user`, it requires that htpasswd login.
    /// None (and a printed reason) if `docker-registry` is not installed.
    pub fn start(dir: &Path, user: Option<(&str, &str)>) -> Option<Registry> {
        let bin = Path::new("/usr/bin/docker-registry");
        if !bin.exists() {
            eprintln!("skipped: /usr/bin/docker-registry is missing (apt-get install docker-registry)");
            return None;
        }
        std::fs::create_dir_all(dir).expect("registry dir");
        let port = free_port();
        let mut cfg = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.join("data").display()
        );
        if let Some((u, p)) = user {
            let out = Command::new("python3")
                .args([
                    "-W",
                    "ignore",
                    "-c",
                    "import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))",
                    p,
                ])
                .output()
                .expect("python3 for bcrypt");
            let hash = String::from_utf8_lossy(&out.stdout).trim().to_string();
            assert!(hash.starts_with("$2"), "bcrypt hash: {}", String::from_utf8_lossy(&out.stderr));
            std::fs::write(dir.join("htpasswd"), format!("{u}:{hash}\n")).expect("htpasswd");
            cfg.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                dir.join("htpasswd").display()
            ));
        }
        std::fs::write(dir.join("config.yml"), cfg).expect("registry config");
        let log = std::fs::File::create(dir.join("registry.log")).expect("registry log");
        let child = Command::new(bin)
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let r = Registry { port, dir: dir.to_path_buf(), child };
        assert!(
            eventually(15, || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()),
            "registry did not come up: {}",
            std::fs::read_to_string(dir.join("registry.log")).unwrap_or_default()
        );
        Some(r)
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Pushes an OCI archive as `name` (`repo:tag`) with skopeo (every platform of an index).
    pub fn push(&self, archive: &Path, name: &str, creds: Option<&str>) {
        let mut c = Command::new("skopeo");
        c.args(["copy", "--quiet", "--all", "--dest-tls-verify=false"]);
        if let Some(cr) = creds {
            c.arg("--dest-creds").arg(cr);
        }
        let out = c
            .arg(format!("oci-archive:{}", archive.display()))
            .arg(format!("docker://{}/{name}", self.host()))
            .output()
            .expect("skopeo");
        assert!(out.status.success(), "skopeo push {name}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// The file holding a blob in the registry's storage.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir.join("data/docker/registry/v2/blobs/sha256").join(&hex[..2]).join(hex).join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
