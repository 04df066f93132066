//! Who may ask for what: the parts of a container spec that reach the host as root, which
//! only an admin (or an operator where `allow_privileged_operator` is set) may ask for. It
//! works on the domain spec, so the agent API, the CRI and stored records share one rule.

use super::ContainerSpec;

/// Capabilities that reach past the container's namespaces (host devices, kernel, other
/// processes, files by inode): only for callers allowed to make privileged containers.
const HOST_CAPS: &[&str] = &[
    "ALL",
    "SYS_ADMIN",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_PTRACE",
    "SYS_BOOT",
    "SYS_TIME",
    "DAC_READ_SEARCH",
    "SYSLOG",
    "MAC_ADMIN",
    "MAC_OVERRIDE",
    "BPF",
    "PERFMON",
    "LINUX_IMMUTABLE",
    "SYS_RESOURCE",
];

/// What in a spec would give its container the host, if anything: `--privileged`, host
/// bind mounts, devices, host-reaching capabilities, no or a custom seccomp profile, unmasked
/// system paths, the
/// host's network, IPC, PID or UTS namespace, the host's IDs where the agent remaps by default.
/// `device_cgroup`: whether a device cgroup stops nodes made with CAP_MKNOD from opening
/// (without one, `--cap-add MKNOD` reaches every host device).
pub fn needs_privilege(s: &ContainerSpec, userns_default: &str, device_cgroup: bool) -> Option<String> {
    if s.privileged {
        return Some("--privileged".into());
    }
    if let Some(v) = s.volumes.first() {
        return Some(format!("a host bind mount (-v {})", super::spec::volume_string(v)));
    }
    if let Some(d) = s.devices.first() {
        return Some(format!("a host device (--device {d})"));
    }
    let norm = |c: &str| c.trim().to_ascii_uppercase().trim_start_matches("CAP_").to_string();
    if let Some(c) =
        s.cap_add.iter().find(|c| HOST_CAPS.contains(&norm(c).as_str()) || (!device_cgroup && norm(c) == "MKNOD"))
    {
        return Some(format!("--cap-add {c}"));
    }
    if let Some(o) = s.security.to_opts().iter().find(|o| o.starts_with("seccomp")) {
        let shown: String = o.chars().take(40).collect();
        return Some(format!("--security-opt {shown}"));
    }
    if s.security.masked_paths.is_some() || s.security.readonly_paths.is_some() {
        return Some("--security-opt systempaths=unconfined".into());
    }
    if s.network == "host" {
        return Some("--network host".into());
    }
    if s.ipc == "host" {
        return Some("--ipc host".into());
    }
    if s.pid == "host" {
        return Some("--pid host".into());
    }
    if s.net_opts.uts_host {
        return Some("--uts host".into());
    }
    if s.cgroupns == super::CgroupNs::Host {
        return Some("--cgroupns host".into());
    }
    if let Some(r) = s.device_cgroup_rules.first() {
        return Some(format!("a device cgroup rule (--device-cgroup-rule '{r}')"));
    }
    if s.cgroup_parent.starts_with('/') {
        return Some(format!("a cgroup outside the agent's (--cgroup-parent {})", s.cgroup_parent));
    }
    if s.userns == "host" && userns_default != "host" {
        return Some("--userns=host (the agent remaps containers by default)".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_reaches_the_host_is_named() {
        let plain = ContainerSpec::default();
        assert_eq!(needs_privilege(&plain, "host", true), None);
        let v = ContainerSpec { volumes: vec![super::super::spec::parse_volume("/:/host").unwrap()], ..plain.clone() };
        assert_eq!(needs_privilege(&v, "host", true).as_deref(), Some("a host bind mount (-v /:/host)"));
        let c = ContainerSpec { cap_add: vec!["cap_sys_admin".into()], ..plain.clone() };
        assert!(needs_privilege(&c, "host", true).is_some_and(|m| m.contains("cap_sys_admin")));
        let m = ContainerSpec { cap_add: vec!["MKNOD".into()], ..plain.clone() };
        assert_eq!(needs_privilege(&m, "host", true), None);
        assert!(needs_privilege(&m, "host", false).is_some(), "MKNOD without a device cgroup");
        let sec = ContainerSpec {
            security: super::super::spec::Security::parse(&["seccomp=unconfined".into()]).unwrap(),
            ..plain.clone()
        };
        assert!(needs_privilege(&sec, "host", true).is_some_and(|m| m.contains("seccomp=unconfined")));
        let sys = ContainerSpec {
            security: super::super::spec::Security::parse(&["systempaths=unconfined".into()]).unwrap(),
            ..plain.clone()
        };
        assert!(needs_privilege(&sys, "host", true).is_some_and(|m| m.contains("systempaths")));
        let nnp = ContainerSpec {
            security: super::super::spec::Security::parse(&["no-new-privileges=false".into()]).unwrap(),
            ..plain.clone()
        };
        assert_eq!(needs_privilege(&nnp, "host", true), None, "docker's default needs nothing");
        let u = ContainerSpec { userns: "host".into(), ..plain.clone() };
        assert_eq!(needs_privilege(&u, "host", true), None);
        assert!(needs_privilege(&u, "remap", true).is_some());
        let uts = ContainerSpec {
            net_opts: super::super::net_opts::NetOpts { uts_host: true, ..Default::default() },
            ..plain.clone()
        };
        assert_eq!(needs_privilege(&uts, "host", true).as_deref(), Some("--uts host"));
        let n = ContainerSpec { network: "host".into(), ..plain.clone() };
        assert_eq!(needs_privilege(&n, "host", true).as_deref(), Some("--network host"));
        let ns = ContainerSpec { cgroupns: super::super::CgroupNs::Host, ..plain.clone() };
        assert_eq!(needs_privilege(&ns, "host", true).as_deref(), Some("--cgroupns host"));
        let rule = crate::isolation::devices::DeviceRule::parse("b 254:0 rwm").unwrap();
        let r = ContainerSpec { device_cgroup_rules: vec![rule], ..plain.clone() };
        assert!(needs_privilege(&r, "host", true).is_some_and(|m| m.contains("'b 254:0 rwm'")));
        let p = ContainerSpec { cgroup_parent: "/elsewhere".into(), ..plain.clone() };
        assert!(needs_privilege(&p, "host", true).is_some_and(|m| m.contains("/elsewhere")));
        let p = ContainerSpec { cgroup_parent: "mine".into(), ..plain };
        assert_eq!(needs_privilege(&p, "host", true), None);
    }
}
