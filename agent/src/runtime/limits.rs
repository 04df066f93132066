//! Size limits on what a create request may carry, so a hostile or broken client cannot make
//! the agent store or pass on unbounded data. Each refusal names the field and its limit.

use super::{ContainerSpec, Result, RuntimeError};

/// Most entries in a list field.
const LISTS: &[(&str, usize)] = &[
    ("env", 4096),
    ("command and entrypoint arguments", 4096),
    ("labels", 256),
    ("volumes", 128),
    ("tmpfs", 64),
    ("ports", 1024),
    ("dns", 16),
    ("add-host", 256),
    ("sysctls", 128),
    ("cap-add", 64),
    ("cap-drop", 64),
    ("devices", 128),
    ("security-opt", 16),
    ("device-cgroup-rule", 128),
    ("per-device block I/O limits (--device-read-bps …, --blkio-weight-device)", 128),
];

/// Longest single value (the kernel refuses longer argv/env strings: MAX_ARG_STRLEN).
const MAX_STRING: usize = 128 * 1024;
/// Longest label key.
const MAX_LABEL_KEY: usize = 256;
/// Longest label value.
const MAX_LABEL_VALUE: usize = 4096;
/// Largest sum of annotation keys and values (Kubernetes allows 256 KiB per object).
const MAX_ANNOTATIONS: usize = 512 * 1024;
/// Largest command line plus environment, in bytes.
const MAX_ARGS_TOTAL: usize = 1 << 20;

fn bad(m: String) -> Result<()> {
    Err(RuntimeError::InvalidArgument(m))
}

/// Checks every size limit of a create request.
pub fn check(spec: &ContainerSpec) -> Result<()> {
    let args = spec.command.len() + spec.entrypoint.as_ref().map_or(0, Vec::len);
    let counts = [
        spec.env.len(),
        args,
        spec.labels.len(),
        spec.volumes.len() + spec.named_volumes.len(),
        spec.tmpfs.len(),
        spec.ports.len(),
        spec.dns.len(),
        spec.add_hosts.len(),
        spec.sysctls.len(),
        spec.cap_add.len(),
        spec.cap_drop.len(),
        spec.devices.len(),
        spec.security.to_opts().len(),
        spec.device_cgroup_rules.len(),
        {
            let b = &spec.resources.blkio_devices;
            b.read_bps.len() + b.write_bps.len() + b.read_iops.len() + b.write_iops.len() + b.weight.len()
        },
    ];
    for ((what, max), n) in LISTS.iter().zip(counts) {
        if n > *max {
            return bad(format!("too many {what} ({n}; at most {max})"));
        }
    }
    let strings = spec.env.iter().chain(spec.command.iter()).chain(spec.entrypoint.iter().flatten());
    let mut total = 0;
    for s in strings {
        if s.len() > MAX_STRING {
            let head: String = s.chars().take(32).collect();
            return bad(format!("argument or variable {head:?}… is {} bytes; at most {MAX_STRING}", s.len()));
        }
        total += s.len() + 1;
    }
    if total > MAX_ARGS_TOTAL {
        return bad(format!("command line and environment are {total} bytes; at most {MAX_ARGS_TOTAL}"));
    }
    for (k, v) in &spec.labels {
        if k.is_empty() || k.len() > MAX_LABEL_KEY || k.contains('\0') {
            return bad(format!("invalid label key {:?}: 1-{MAX_LABEL_KEY} bytes, no NUL", truncate(k)));
        }
        if v.len() > MAX_LABEL_VALUE || v.contains('\0') {
            return bad(format!("label {k:?}: the value is longer than {MAX_LABEL_VALUE} bytes or has a NUL"));
        }
    }
    if spec.annotations.len() > 256 {
        return bad(format!("too many annotations ({}; at most 256)", spec.annotations.len()));
    }
    let mut ann = 0;
    for (k, v) in &spec.annotations {
        if k.is_empty() || k.len() > MAX_LABEL_KEY || k.contains('\0') || v.contains('\0') {
            return bad(format!("invalid annotation {:?}: key of 1-{MAX_LABEL_KEY} bytes, no NUL", truncate(k)));
        }
        ann += k.len() + v.len();
    }
    if ann > MAX_ANNOTATIONS {
        return bad(format!("annotations are {ann} bytes; at most {MAX_ANNOTATIONS}"));
    }
    if !spec.log_path.is_empty()
        && (!spec.log_path.starts_with('/')
            || spec.log_path.split('/').any(|c| c == "..")
            || spec.log_path.contains('\0'))
    {
        return bad(format!("invalid log path {:?}: an absolute path without '..'", truncate(&spec.log_path)));
    }
    for (what, v, max) in [("working directory", &spec.working_dir, 4096), ("user", &spec.user, 256)] {
        if v.len() > max || v.contains('\0') {
            return bad(format!("invalid {what} {:?}: at most {max} bytes, no NUL", truncate(v)));
        }
    }
    Ok(())
}

fn truncate(s: &str) -> String {
    let mut t: String = s.chars().take(40).collect();
    if t.len() < s.len() {
        t.push('…');
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_name_the_field() {
        let ok = ContainerSpec { env: vec!["A=1".into()], ..Default::default() };
        assert!(check(&ok).is_ok());
        let many = ContainerSpec {
            labels: (0..300).map(|i| (format!("k{i}"), "v".to_string())).collect(),
            ..Default::default()
        };
        let e = check(&many).unwrap_err().to_string();
        assert!(e.contains("too many labels (300; at most 256)"), "{e}");
        let long = ContainerSpec { env: vec![format!("A={}", "x".repeat(200_000))], ..Default::default() };
        assert!(check(&long).unwrap_err().to_string().contains("at most 131072"));
        let key = ContainerSpec { labels: [("k".repeat(300), "v".into())].into(), ..Default::default() };
        assert!(check(&key).unwrap_err().to_string().contains("invalid label key"));
        let total = ContainerSpec { command: vec!["y".repeat(100_000); 20], ..Default::default() };
        assert!(check(&total).unwrap_err().to_string().contains("at most 1048576"));
    }
}
