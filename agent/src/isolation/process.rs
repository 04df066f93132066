//! The last steps before `execve`, shared by a container's init and by exec: resolve the
//! user in the container's /etc/passwd, drop to Docker's default capabilities, set
//! no_new_privs, switch user, find the program in `PATH`, exec.

use caps::{CapSet, Capability};
use std::collections::HashSet;
use std::ffi::CString;
use std::path::Path;

/// A failure before the user's program runs: the exit code it maps to (125 setup,
/// 126 not executable, 127 not found) and a message for the user.
#[derive(Debug, thiserror::Error)]
#[error("{msg}")]
pub struct Failure {
    pub code: i32,
    pub msg: String,
}

impl Failure {
    /// A setup failure (exit 125 in `agentctl run`), said by `why` (a message or an error).
    pub fn setup(why: impl std::fmt::Display) -> Failure {
        Failure { code: 125, msg: why.to_string() }
    }
}

/// Why `--cap-add`/`--cap-drop` cannot be resolved.
#[derive(Debug, thiserror::Error)]
pub enum CapError {
    #[error("unknown capability {0:?}")]
    Unknown(String),
    #[error("reading the agent's capabilities: {0}")]
    ReadOwn(#[source] caps::errors::CapsError),
}

/// Docker's default capability set.
pub const DEFAULT_CAPS: [Capability; 14] = [
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_FSETID,
    Capability::CAP_FOWNER,
    Capability::CAP_MKNOD,
    Capability::CAP_NET_RAW,
    Capability::CAP_SETGID,
    Capability::CAP_SETUID,
    Capability::CAP_SETFCAP,
    Capability::CAP_SETPCAP,
    Capability::CAP_NET_BIND_SERVICE,
    Capability::CAP_SYS_CHROOT,
    Capability::CAP_KILL,
    Capability::CAP_AUDIT_WRITE,
];

/// A resolved user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub home: String,
}

/// Who a process runs as, before resolving it in the container's files.
#[derive(Clone, Copy, Debug)]
pub struct Identity<'a> {
    /// `user[:group]`, names or numbers.
    pub user: &'a str,
    /// Added supplementary groups (`--group-add`, the CRI's supplemental_groups).
    pub groups: &'a [String],
    /// Whether the groups listing the user in /etc/group are added.
    pub image_groups: bool,
    /// Whether no_new_privs is set before exec.
    pub no_new_privs: bool,
}

impl<'a> Identity<'a> {
    /// Just a user: the image's groups, no added ones, no_new_privs.
    pub fn user(user: &'a str) -> Identity<'a> {
        Identity { user, groups: &[], image_groups: true, no_new_privs: true }
    }
}

fn group_entries(group: &str) -> Vec<Vec<&str>> {
    group
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 4)
        .collect()
}

fn group_id(g: &str, groups_file: &[Vec<&str>]) -> Result<u32, Failure> {
    match g.parse::<u32>() {
        Ok(n) => Ok(n),
        Err(_) => groups_file
            .iter()
            .find(|f| f[0] == g)
            .and_then(|f| f[2].parse().ok())
            .ok_or_else(|| Failure::setup(format!("unable to find group {g}: no matching entries in group file"))),
    }
}

/// Resolves `user[:group]` against passwd/group file contents, like Docker.
pub fn resolve_user(spec: &str, passwd: &str, group: &str) -> Result<User, Failure> {
    resolve(Identity::user(spec), passwd, group)
}

/// Resolves an identity against passwd/group file contents, like containerd and Docker:
/// the supplementary groups are the primary group, the groups of /etc/group that list the
/// user by name (`image_groups`), then the added ones (numbers, or names in /etc/group).
pub fn resolve(id: Identity<'_>, passwd: &str, group: &str) -> Result<User, Failure> {
    let (u, g) = match id.user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (id.user, None),
    };
    let u = if u.is_empty() { "0" } else { u };
    let entries: Vec<Vec<&str>> = passwd
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 7)
        .collect();
    let by_num = u.parse::<u32>().ok();
    let found = entries.iter().find(|f| match by_num {
        Some(n) => f[2].parse::<u32>().ok() == Some(n),
        None => f[0] == u,
    });
    let (uid, mut gid, home, name) = match (found, by_num) {
        (Some(f), _) => (
            f[2].parse::<u32>().map_err(|_| Failure::setup(format!("bad passwd entry for {u}")))?,
            f[3].parse::<u32>().unwrap_or(0),
            f[5].to_string(),
            Some(f[0].to_string()),
        ),
        (None, Some(n)) => (n, 0, "/".to_string(), None),
        (None, None) => {
            return Err(Failure::setup(format!("unable to find user {u}: no matching entries in passwd file")))
        }
    };
    let groups_file = group_entries(group);
    if let Some(g) = g {
        gid = group_id(g, &groups_file)?;
    }
    let mut groups = vec![gid];
    let mut add = |n: u32| {
        if !groups.contains(&n) {
            groups.push(n);
        }
    };
    if let (Some(name), true) = (&name, id.image_groups) {
        for f in &groups_file {
            if f[3].split(',').any(|m| m == name) {
                if let Ok(n) = f[2].parse::<u32>() {
                    add(n);
                }
            }
        }
    }
    for g in id.groups {
        add(group_id(g, &groups_file)?);
    }
    Ok(User { uid, gid, groups, home })
}

/// Reads the current root's passwd/group files and resolves `spec`.
pub fn lookup_user(spec: &str) -> Result<User, Failure> {
    lookup(Identity::user(spec))
}

/// Reads the current root's passwd/group files and resolves `id`.
pub fn lookup(id: Identity<'_>) -> Result<User, Failure> {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
    resolve(id, &passwd, &group)
}

/// Finds `prog` in the `PATH` of `env` (Docker's default when unset).
pub fn find_program(prog: &str, env: &[String]) -> Result<String, Failure> {
    if prog.is_empty() {
        return Err(Failure { code: 127, msg: "exec: \"\": executable file not found in $PATH".into() });
    }
    if prog.contains('/') {
        return Ok(prog.to_string());
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    let mut denied = None;
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let cand = Path::new(dir).join(prog);
        if let Ok(m) = std::fs::metadata(&cand) {
            if m.is_file() {
                use std::os::unix::fs::PermissionsExt;
                if m.permissions().mode() & 0o111 != 0 {
                    return Ok(cand.display().to_string());
                }
                denied = Some(cand.display().to_string());
            }
        }
    }
    match denied {
        Some(p) => Err(Failure { code: 126, msg: format!("exec: \"{p}\": permission denied") }),
        None => Err(Failure { code: 127, msg: format!("exec: \"{prog}\": executable file not found in $PATH") }),
    }
}

/// The capability set from names (`CAP_CHOWN`); empty: Docker's default 14.
pub fn cap_set(names: &[String]) -> HashSet<Capability> {
    if names.is_empty() {
        return DEFAULT_CAPS.into_iter().collect();
    }
    names.iter().filter_map(|n| n.parse::<Capability>().ok()).collect()
}

/// `--cap-add`/`--cap-drop` applied to Docker's defaults, as names. `ALL` in drop empties
/// the set; `ALL` in add means every capability this agent itself holds.
pub fn resolve_caps(add: &[String], drop: &[String]) -> Result<Vec<String>, CapError> {
    let norm = |n: &str| {
        let u = n.trim().to_ascii_uppercase();
        if u == "ALL" || u.starts_with("CAP_") {
            u
        } else {
            format!("CAP_{u}")
        }
    };
    let parse = |n: &str| -> Result<Option<Capability>, CapError> {
        let u = norm(n);
        if u == "ALL" {
            return Ok(None);
        }
        u.parse::<Capability>().map(Some).map_err(|_| CapError::Unknown(n.to_string()))
    };
    let mut set: HashSet<Capability> = DEFAULT_CAPS.into_iter().collect();
    for d in drop {
        match parse(d)? {
            None => set.clear(),
            Some(c) => {
                set.remove(&c);
            }
        }
    }
    for a in add {
        match parse(a)? {
            None => set.extend(caps::read(None, CapSet::Permitted).map_err(CapError::ReadOwn)?),
            Some(c) => {
                set.insert(c);
            }
        }
    }
    let mut v: Vec<String> = set.into_iter().map(|c| c.to_string()).collect();
    v.sort();
    if v.is_empty() {
        // An empty list means "default": mark "none" explicitly.
        v.push("NONE".into());
    }
    Ok(v)
}

/// Drops privileges to `user` with capability set `keep`, and sets no_new_privs if asked.
pub fn drop_privileges(user: &User, keep: &HashSet<Capability>, no_new_privs: bool) -> Result<(), Failure> {
    let keep = keep.clone();
    for c in caps::all() {
        if !keep.contains(&c) {
            // Capabilities the kernel does not know fail to drop: nothing to drop then.
            let _ = caps::drop(None, CapSet::Bounding, c);
        }
    }
    let _ = caps::clear(None, CapSet::Ambient);
    caps::clear(None, CapSet::Inheritable)
        .map_err(|e| Failure::setup(format!("clear inheritable capabilities: {e}")))?;
    let gids: Vec<nix::unistd::Gid> = user.groups.iter().map(|g| nix::unistd::Gid::from_raw(*g)).collect();
    nix::unistd::setgroups(&gids).map_err(|e| Failure::setup(format!("setgroups: {e}")))?;
    let gid = nix::unistd::Gid::from_raw(user.gid);
    nix::unistd::setresgid(gid, gid, gid).map_err(|e| Failure::setup(format!("setgid {}: {e}", user.gid)))?;
    let uid = nix::unistd::Uid::from_raw(user.uid);
    nix::unistd::setresuid(uid, uid, uid).map_err(|e| Failure::setup(format!("setuid {}: {e}", user.uid)))?;
    if user.uid == 0 {
        // Effective must stay a subset of permitted at every step: shrink it first.
        caps::set(None, CapSet::Effective, &keep)
            .map_err(|e| Failure::setup(format!("set effective capabilities: {e}")))?;
        caps::set(None, CapSet::Permitted, &keep)
            .map_err(|e| Failure::setup(format!("set permitted capabilities: {e}")))?;
    }
    // SAFETY: prctl with integer arguments only.
    if no_new_privs && unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(Failure::setup(format!("no_new_privs: {}", std::io::Error::last_os_error())));
    }
    Ok(())
}

/// Adds `HOME` (from passwd) and a default `PATH` when the environment lacks them.
pub fn complete_env(env: &[String], user: &User) -> Vec<String> {
    let mut env = env.to_vec();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.push("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", if user.home.is_empty() { "/" } else { &user.home }));
    }
    env
}

/// Switches user, finds and executes the program. Returns only on failure.
pub fn exec(
    args: &[String],
    env: &[String],
    cwd: &str,
    who: Identity<'_>,
    caps: &[String],
    seccomp: super::spec::Seccomp<'_>,
) -> Failure {
    let user = match lookup(who) {
        Ok(u) => u,
        Err(f) => return f,
    };
    let cwd = if cwd.is_empty() { "/" } else { cwd };
    // Docker creates a missing working directory.
    if let Err(e) = std::fs::create_dir_all(cwd) {
        return Failure::setup(format!("working directory {cwd}: {e}"));
    }
    let install = || match seccomp {
        super::spec::Seccomp::Default => super::seccomp::apply_default().map_err(Failure::setup),
        super::spec::Seccomp::Programs(p) => super::seccomp_profile::apply(p).map_err(Failure::setup),
        super::spec::Seccomp::Off => Ok(()),
    };
    // Without no_new_privs a filter needs CAP_SYS_ADMIN: installed while we still hold it,
    // as runc does (the profile must then allow what dropping privileges calls).
    if !who.no_new_privs {
        if let Err(f) = install() {
            return f;
        }
    }
    if let Err(f) = drop_privileges(&user, &cap_set(caps), who.no_new_privs) {
        return f;
    }
    if let Err(e) = std::env::set_current_dir(cwd) {
        return Failure::setup(format!("chdir to working directory {cwd}: {e}"));
    }
    let env = complete_env(env, &user);
    let Some(first) = args.first() else {
        return Failure::setup("no command given and the image has none");
    };
    let path = match find_program(first, &env) {
        Ok(p) => p,
        Err(f) => return f,
    };
    let cstr = |s: &str| CString::new(s).map_err(|_| Failure::setup(format!("{s:?} contains a NUL byte")));
    let argv: Result<Vec<CString>, Failure> = args.iter().map(|a| cstr(a)).collect();
    let envp: Result<Vec<CString>, Failure> = env.iter().map(|a| cstr(a)).collect();
    let (argv, envp, cpath) = match (argv, envp, cstr(&path)) {
        (Ok(a), Ok(e), Ok(p)) => (a, e, p),
        (Err(f), _, _) | (_, Err(f), _) | (_, _, Err(f)) => return f,
    };
    // Last: from here on the process can do only what the profile lets it.
    if who.no_new_privs {
        if let Err(f) = install() {
            return f;
        }
    }
    let err = match nix::unistd::execve(&cpath, &argv, &envp) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    match err {
        nix::errno::Errno::ENOENT => Failure { code: 127, msg: format!("exec: \"{path}\": no such file or directory") },
        nix::errno::Errno::EACCES => Failure { code: 126, msg: format!("exec: \"{path}\": permission denied") },
        e => Failure { code: 126, msg: format!("exec: \"{path}\": {}", e.desc()) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\nweb:x:1000:1000::/home/web:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nweb:x:1000:\nstaff:x:50:web,other\n";

    #[test]
    fn resolves_names_numbers_and_groups() {
        assert_eq!(resolve_user("", PASSWD, GROUP).unwrap().uid, 0);
        let w = resolve_user("web", PASSWD, GROUP).unwrap();
        assert_eq!((w.uid, w.gid, w.groups.clone(), w.home.as_str()), (1000, 1000, vec![1000, 50], "/home/web"));
        let n = resolve_user("4242:staff", PASSWD, GROUP).unwrap();
        assert_eq!((n.uid, n.gid), (4242, 50));
        let e = resolve_user("ghost", PASSWD, GROUP).unwrap_err();
        assert!(e.msg.contains("unable to find user ghost"), "{}", e.msg);
        assert!(resolve_user("web:nogroup", PASSWD, GROUP).is_err());
    }

    #[test]
    fn supplementary_groups_as_containerd_sets_them() {
        let extra = ["staff".to_string(), "4000".to_string(), "1000".to_string()];
        let id = |user, image_groups| Identity { user, groups: &extra, image_groups, no_new_privs: true };
        // The primary group, the image's groups of the user, the added ones; no repeats.
        assert_eq!(resolve(id("web", true), PASSWD, GROUP).unwrap().groups, [1000, 50, 4000]);
        assert_eq!(resolve(id("web:0", true), PASSWD, GROUP).unwrap().groups, [0, 50, 4000, 1000]);
        // Strict: the image's groups are left out.
        let none: [String; 0] = [];
        let strict = Identity { user: "web", groups: &none, image_groups: false, no_new_privs: true };
        assert_eq!(resolve(strict, PASSWD, GROUP).unwrap().groups, [1000]);
        // A numeric user unknown to passwd has no name to be listed under.
        assert_eq!(resolve(id("4242", true), PASSWD, GROUP).unwrap().groups, [0, 50, 4000, 1000]);
        let bad = ["nosuch".to_string()];
        let e = resolve(Identity { user: "web", groups: &bad, image_groups: true, no_new_privs: true }, PASSWD, GROUP)
            .unwrap_err();
        assert!(e.msg.contains("unable to find group nosuch"), "{}", e.msg);
    }

    #[test]
    fn program_lookup_codes() {
        let d = tempfile::tempdir().unwrap();
        let env = vec![format!("PATH={}", d.path().display())];
        assert_eq!(find_program("nope", &env).unwrap_err().code, 127);
        let f = d.path().join("noexec");
        std::fs::write(&f, "x").unwrap();
        assert_eq!(find_program("noexec", &env).unwrap_err().code, 126);
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find_program("noexec", &env).unwrap(), f.display().to_string());
        assert_eq!(find_program("/abs/x", &env).unwrap(), "/abs/x");
    }
}
