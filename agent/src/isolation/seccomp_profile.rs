//! Docker's seccomp profile format (`--security-opt seccomp=profile.json`), compiled to BPF
//! with seccompiler.
//!
//! seccompiler has one match action per filter, Docker profiles one per rule; the kernel
//! runs every installed filter and keeps the most restrictive verdict, so a profile becomes
//! a stack: one filter whose default is the profile's default action and which allows every
//! syscall the profile names (with the rule's argument conditions), plus one filter per
//! other action that applies it to that action's rules and allows the rest.
//! Syscall names go through seccompiler's own table (via its JSON frontend, the only public
//! door to it); names this table does not know are skipped, as runc does.

use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, OnceLock};

/// A compiled BPF program, serializable (code, jt, jf, k), to travel in the launch spec.
pub type Program = Vec<(u16, u8, u8, u32)>;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerProfile {
    default_action: String,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    syscalls: Vec<DockerRule>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerRule {
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    name: Option<String>,
    action: String,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Vec<DockerArg>,
    #[serde(default)]
    includes: Filter,
    #[serde(default)]
    excludes: Filter,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    caps: Vec<String>,
    #[serde(default)]
    arches: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerArg {
    index: u8,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: String,
}

const MAX_PROFILE: usize = 256 * 1024;

/// Why a Docker seccomp profile cannot be compiled or installed.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("seccomp profile is {0} bytes; at most {MAX_PROFILE}")]
    TooLarge(usize),
    #[error("seccomp profile: {0}")]
    Json(#[from] serde_json::Error),
    #[error("seccomp profile: action {0:?} is not supported")]
    Action(String),
    #[error("seccomp profile: argument index {0} is out of range 0-5")]
    ArgIndex(u8),
    #[error("seccomp profile: comparison {0:?} is not supported")]
    Comparison(String),
    #[error("seccomp profile: {0}")]
    Compile(#[source] seccompiler::Error),
    #[error("seccomp profile: no program")]
    NoProgram,
    #[error("installing the seccomp profile: {0}")]
    Install(#[source] std::io::Error),
}

fn action(a: &str, errno: Option<u32>, default_errno: u32) -> Result<serde_json::Value, ProfileError> {
    Ok(match a {
        "SCMP_ACT_ALLOW" => "allow".into(),
        "SCMP_ACT_ERRNO" => serde_json::json!({ "errno": errno.unwrap_or(default_errno) }),
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => "kill_thread".into(),
        "SCMP_ACT_KILL_PROCESS" => "kill_process".into(),
        "SCMP_ACT_TRAP" => "trap".into(),
        "SCMP_ACT_LOG" => "log".into(),
        other => return Err(ProfileError::Action(other.into())),
    })
}

fn condition(a: &DockerArg) -> Result<serde_json::Value, ProfileError> {
    if a.index > 5 {
        return Err(ProfileError::ArgIndex(a.index));
    }
    let (op, val) = match a.op.as_str() {
        "SCMP_CMP_EQ" => (serde_json::json!("eq"), a.value),
        "SCMP_CMP_NE" => (serde_json::json!("ne"), a.value),
        "SCMP_CMP_LT" => (serde_json::json!("lt"), a.value),
        "SCMP_CMP_LE" => (serde_json::json!("le"), a.value),
        "SCMP_CMP_GT" => (serde_json::json!("gt"), a.value),
        "SCMP_CMP_GE" => (serde_json::json!("ge"), a.value),
        // Docker: (arg & value) == valueTwo.
        "SCMP_CMP_MASKED_EQ" => (serde_json::json!({ "masked_eq": a.value }), a.value_two),
        other => return Err(ProfileError::Comparison(other.into())),
    };
    Ok(serde_json::json!({ "index": a.index, "type": "qword", "op": op, "val": val }))
}

#[cfg(target_arch = "x86_64")]
const ARCH: seccompiler::TargetArch = seccompiler::TargetArch::x86_64;
#[cfg(target_arch = "aarch64")]
const ARCH: seccompiler::TargetArch = seccompiler::TargetArch::aarch64;
#[cfg(target_arch = "x86_64")]
const ARCH_NAMES: &[&str] = &["SCMP_ARCH_X86_64", "amd64", "x86_64"];
#[cfg(target_arch = "aarch64")]
const ARCH_NAMES: &[&str] = &["SCMP_ARCH_AARCH64", "arm64", "aarch64"];

/// Whether seccompiler knows a syscall name (asked once per name, then remembered).
fn known(name: &str) -> bool {
    static CACHE: OnceLock<Mutex<HashMap<String, bool>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(k) = cache.lock().ok().and_then(|c| c.get(name).copied()) {
        return k;
    }
    let probe = serde_json::json!({ "p": { "mismatch_action": "allow", "match_action": "log", "filter": [{ "syscall": name }] } });
    let ok = seccompiler::compile_from_json(probe.to_string().as_bytes(), ARCH).is_ok();
    if let Ok(mut c) = cache.lock() {
        c.insert(name.to_string(), ok);
    }
    ok
}

/// A syscall name and the (ANDed) argument conditions of one rule, in seccompiler's JSON.
type Rule = (String, Vec<serde_json::Value>);

fn compile_filter(
    mismatch: serde_json::Value,
    matched: serde_json::Value,
    rules: &[Rule],
) -> Result<Program, ProfileError> {
    // seccompiler ORs the conditions of all entries of a syscall, and an entry without
    // conditions only means "always" while it is alone: keep just that one when present.
    let always: std::collections::HashSet<&str> =
        rules.iter().filter(|(_, a)| a.is_empty()).map(|(n, _)| n.as_str()).collect();
    let mut seen = std::collections::HashSet::new();
    let rules: Vec<&Rule> = rules
        .iter()
        .filter(|(n, a)| if always.contains(n.as_str()) { a.is_empty() && seen.insert(n.clone()) } else { true })
        .collect();
    let filter: Vec<serde_json::Value> = rules
        .iter()
        .map(|(name, args)| {
            if args.is_empty() {
                serde_json::json!({ "syscall": name })
            } else {
                serde_json::json!({ "syscall": name, "args": args })
            }
        })
        .collect();
    let doc = serde_json::json!({ "f": { "mismatch_action": mismatch, "match_action": matched, "filter": filter } });
    let mut map = seccompiler::compile_from_json(doc.to_string().as_bytes(), ARCH).map_err(ProfileError::Compile)?;
    let prog = map.remove("f").ok_or(ProfileError::NoProgram)?;
    Ok(prog.into_iter().map(|i| (i.code, i.jt, i.jf, i.k)).collect())
}

/// Compiles a Docker seccomp profile for a container with capabilities `caps`
/// (`CAP_…` names, for the profile's `includes`/`excludes`).
pub fn compile(json: &str, caps: &[String]) -> Result<Vec<Program>, ProfileError> {
    if json.len() > MAX_PROFILE {
        return Err(ProfileError::TooLarge(json.len()));
    }
    let p: DockerProfile = serde_json::from_str(json)?;
    let default_errno = p.default_errno_ret.unwrap_or(libc::EPERM as u32);
    let default = action(&p.default_action, p.default_errno_ret, default_errno)?;
    let has_cap = |c: &String| {
        let c = c.to_ascii_uppercase();
        let c = if c.starts_with("CAP_") { c } else { format!("CAP_{c}") };
        caps.contains(&c)
    };
    // Every named syscall (with its conditions) → allowed by the base filter; by action →
    // the rules of each non-allow filter.
    let mut named: Vec<Rule> = Vec::new();
    let mut by_action: BTreeMap<String, (serde_json::Value, Vec<Rule>)> = BTreeMap::new();
    for r in &p.syscalls {
        let arch_ok = (r.includes.arches.is_empty()
            || r.includes.arches.iter().any(|a| ARCH_NAMES.contains(&a.as_str())))
            && !r.excludes.arches.iter().any(|a| ARCH_NAMES.contains(&a.as_str()));
        let caps_ok = r.includes.caps.iter().all(has_cap) && !r.excludes.caps.iter().any(has_cap);
        if !arch_ok || !caps_ok {
            continue;
        }
        let act = action(&r.action, r.errno_ret, default_errno)?;
        let args = r.args.iter().map(condition).collect::<Result<Vec<_>, _>>()?;
        for n in r.names.iter().chain(r.name.iter()) {
            if !known(n) {
                tracing::debug!(syscall = %n, "seccomp profile names a syscall this build does not know; skipped");
                continue;
            }
            named.push((n.clone(), args.clone()));
            if act != serde_json::json!("allow") {
                by_action
                    .entry(act.to_string())
                    .or_insert_with(|| (act.clone(), vec![]))
                    .1
                    .push((n.clone(), args.clone()));
            }
        }
    }
    let mut progs = Vec::new();
    if default != serde_json::json!("allow") || named.is_empty() {
        progs.push(compile_filter(default.clone(), "allow".into(), &named)?);
    }
    for (_, (act, rules)) in by_action {
        progs.push(compile_filter("allow".into(), act, &rules)?);
    }
    Ok(progs)
}

/// Installs compiled programs on this thread (needs no_new_privs or CAP_SYS_ADMIN).
pub fn apply(programs: &[Program]) -> Result<(), ProfileError> {
    for p in programs {
        let bpf: seccompiler::BpfProgram =
            p.iter().map(|&(code, jt, jf, k)| seccompiler::sock_filter { code, jt, jf, k }).collect();
        super::seccomp::install(&bpf).map_err(ProfileError::Install)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_profiles_compile() {
        let deny_mkdir = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["mkdir","mkdirat","no_such_syscall_x"],"action":"SCMP_ACT_ERRNO","errnoRet":13},
            {"names":["personality"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":8,"op":"SCMP_CMP_EQ"}]},
            {"names":["reboot"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_BOOT"]}}]}"#;
        let p = compile(deny_mkdir, &["CAP_CHOWN".into()]).unwrap();
        assert_eq!(p.len(), 2, "one errno(13) filter, one errno(1) filter; the default allows");
        let allowlist = r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,"syscalls":[
            {"names":["read","write","exit_group"],"action":"SCMP_ACT_ALLOW"}]}"#;
        assert_eq!(compile(allowlist, &[]).unwrap().len(), 1);
        assert!(compile("{", &[]).unwrap_err().to_string().contains("seccomp profile"));
        let e = compile(r#"{"defaultAction":"SCMP_ACT_NOTIFY"}"#, &[]).unwrap_err().to_string();
        assert_eq!(e, "seccomp profile: action \"SCMP_ACT_NOTIFY\" is not supported");
        let bad_op = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":9,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#;
        assert!(compile(bad_op, &[]).unwrap_err().to_string().contains("out of range"));
        assert!(known("openat") && !known("no_such_syscall_x"));
        // An unconditional rule is not narrowed by a conditional one for the same call.
        let both = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["unshare"],"action":"SCMP_ACT_ERRNO"},
            {"names":["unshare"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":8,"op":"SCMP_CMP_EQ"}]}]}"#;
        let plain =
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["unshare"],"action":"SCMP_ACT_ERRNO"}]}"#;
        assert_eq!(compile(both, &[]).unwrap(), compile(plain, &[]).unwrap());
    }
}
