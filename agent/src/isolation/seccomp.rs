//! The default seccomp profile, like Docker's: an allowlist (every system call this build
//! knows, up to the newest in our libc, except the ones Docker's default profile refuses)
//! — a newer, unknown system call gets ENOSYS so libcs fall back, as runc arranges — and the
//! refusals (kernel keyrings, modules, kexec, BPF, perf, ptrace, mounts, namespaces, clocks,
//! reboot…, and `clone` with namespace flags) fail with EPERM. `clone3` gets ENOSYS, so
//! libcs fall back to `clone`, whose flags can be checked. Built with seccompiler (pure
//! Rust, no libseccomp).

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
};
use std::collections::BTreeMap;

#[cfg(target_arch = "x86_64")]
const ARCH: seccompiler::TargetArch = seccompiler::TargetArch::x86_64;
#[cfg(target_arch = "aarch64")]
const ARCH: seccompiler::TargetArch = seccompiler::TargetArch::aarch64;

/// The highest system call number the allowlist covers (`mseal` on x86_64, Linux 6.10);
/// anything above is unknown to this build and refused with ENOSYS.
#[cfg(target_arch = "x86_64")]
const MAX_KNOWN: libc::c_long = libc::SYS_mseal;
#[cfg(target_arch = "aarch64")]
const MAX_KNOWN: libc::c_long = libc::SYS_mseal;

/// System calls refused with EPERM.
const DENIED: &[libc::c_long] = &[
    libc::SYS_acct,
    libc::SYS_add_key,
    libc::SYS_bpf,
    libc::SYS_clock_adjtime,
    libc::SYS_clock_settime,
    libc::SYS_delete_module,
    libc::SYS_finit_module,
    libc::SYS_init_module,
    libc::SYS_get_mempolicy,
    libc::SYS_mbind,
    libc::SYS_set_mempolicy,
    libc::SYS_move_pages,
    libc::SYS_kcmp,
    libc::SYS_kexec_file_load,
    libc::SYS_kexec_load,
    libc::SYS_keyctl,
    libc::SYS_request_key,
    libc::SYS_lookup_dcookie,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_name_to_handle_at,
    libc::SYS_open_by_handle_at,
    libc::SYS_perf_event_open,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_ptrace,
    libc::SYS_quotactl,
    libc::SYS_reboot,
    libc::SYS_setns,
    libc::SYS_settimeofday,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_unshare,
    libc::SYS_userfaultfd,
    libc::SYS_fsopen,
    libc::SYS_fsmount,
    libc::SYS_fsconfig,
    libc::SYS_move_mount,
    libc::SYS_open_tree,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_ioperm,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_iopl,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_nfsservctl,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_uselib,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_ustat,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_sysfs,
    #[cfg(target_arch = "x86_64")]
    libc::SYS__sysctl,
];

/// Why the default profile cannot be built or installed.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("seccomp filter: {0}")]
    Build(#[from] seccompiler::BackendError),
    #[error("installing the seccomp filter: {0}")]
    Install(#[source] std::io::Error),
}

/// Installs one BPF program on this thread with seccomp(2), leaving no_new_privs as it is
/// (seccompiler's `apply_filter` always sets it; without it the call needs CAP_SYS_ADMIN).
pub fn install(bpf: &[seccompiler::sock_filter]) -> std::io::Result<()> {
    if bpf.is_empty() || bpf.len() > u16::MAX as usize {
        return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
    }
    let prog = libc::sock_fprog { len: bpf.len() as u16, filter: bpf.as_ptr() as *mut libc::sock_filter };
    // SAFETY: prog points at `bpf`, alive across the call; seccompiler's sock_filter has the
    // kernel's layout (it is what its own apply_filter hands to the same call).
    let r =
        unsafe { libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, 0, &prog as *const libc::sock_fprog) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

const NS_FLAGS: [u64; 7] = [
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    libc::CLONE_NEWCGROUP as u64,
];

fn build(rules: BTreeMap<i64, Vec<SeccompRule>>, errno: i32) -> Result<BpfProgram, SeccompError> {
    let f = SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(errno as u32), ARCH)?;
    Ok(f.try_into()?)
}

/// The allowlist: every number up to [`MAX_KNOWN`] but the denied ones and `clone3`; the
/// rest gets ENOSYS.
fn allowlist() -> Result<BpfProgram, SeccompError> {
    let allowed: BTreeMap<i64, Vec<SeccompRule>> =
        (0..=MAX_KNOWN).filter(|n| !DENIED.contains(n) && *n != libc::SYS_clone3).map(|n| (n, vec![])).collect();
    let f = SeccompFilter::new(allowed, SeccompAction::Errno(libc::ENOSYS as u32), SeccompAction::Allow, ARCH)?;
    Ok(f.try_into()?)
}

/// The programs of the default profile, in installation order: the allowlist (ENOSYS for
/// the rest), then the EPERM refusals — for two ERRNO verdicts the kernel keeps the one of
/// the filter installed last, so a refused call reports EPERM, not ENOSYS.
pub fn default_programs() -> Result<Vec<BpfProgram>, SeccompError> {
    let mut deny: BTreeMap<i64, Vec<SeccompRule>> = DENIED.iter().map(|s| (*s, vec![])).collect();
    let clone_ns = NS_FLAGS
        .iter()
        .map(|f| {
            let c = SeccompCondition::new(0, SeccompCmpArgLen::Qword, SeccompCmpOp::MaskedEq(*f), *f)?;
            SeccompRule::new(vec![c])
        })
        .collect::<Result<Vec<_>, _>>()?;
    deny.insert(libc::SYS_clone, clone_ns);
    Ok(vec![allowlist()?, build(deny, libc::EPERM)?])
}

/// Installs the default profile on this thread (needs no_new_privs or CAP_SYS_ADMIN).
pub fn apply_default() -> Result<(), SeccompError> {
    for p in default_programs()? {
        install(&p).map_err(SeccompError::Install)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn programs_build() {
        let p = super::default_programs().unwrap();
        assert_eq!(p.len(), 2);
        assert!(p[0].len() > 300, "the allowlist names each allowed call");
        assert!(p[1].len() > super::DENIED.len());
    }
}
