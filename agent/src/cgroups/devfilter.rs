//! The device cgroup of cgroup v2: an eBPF program (BPF_PROG_TYPE_CGROUP_DEVICE) attached to
//! the container's cgroup, which the kernel asks on every mknod and open of a device node.
//! It allows what the rules allow (docker's defaults, `--device`s, `--device-cgroup-rule`s,
//! the same `c 1:3 rwm` strings v1's devices.allow takes) and refuses everything else, as
//! runc's devicefilter does. Written here (a few instructions, two bpf(2) calls) rather
//! than with an eBPF crate: nothing else of the agent loads programs.

use crate::isolation::devices::DeviceRule;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;
/// `bpf_cgroup_dev_ctx.access_type`: the low 16 bits are the type, the high 16 the access.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;

/// One eBPF instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    /// dst in the low nibble, src in the high one.
    regs: u8,
    off: i16,
    imm: i32,
}

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn { code, regs: (src << 4) | dst, off, imm }
}

const LDX_W: u8 = 0x61; // dst = *(u32 *)(src + off)
const AND32_K: u8 = 0x54;
const RSH32_K: u8 = 0x74;
const MOV32_X: u8 = 0xbc;
const MOV32_K: u8 = 0xb4;
const JNE_K: u8 = 0x55;
const JNE_X: u8 = 0x5d;
const EXIT: u8 = 0x95;

/// The program for `rules`, in order; a device no rule allows is refused.
pub fn program(rules: &[DeviceRule]) -> Vec<Insn> {
    // r2 = type, r3 = access, r4 = major, r5 = minor (r1 is the context).
    let mut p = vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(AND32_K, 2, 0, 0, 0xffff),
        insn(LDX_W, 3, 1, 0, 0),
        insn(RSH32_K, 3, 0, 0, 16),
        insn(LDX_W, 4, 1, 4, 0),
        insn(LDX_W, 5, 1, 8, 0),
    ];
    for r in rules {
        let access = r.perms.chars().fold(0, |a, c| {
            a | match c {
                'm' => ACC_MKNOD,
                'r' => ACC_READ,
                'w' => ACC_WRITE,
                _ => 0,
            }
        });
        // Each check that fails jumps to the next rule: its `off` is set once the block's
        // length is known (marked `true`).
        let mut block: Vec<(Insn, bool)> = Vec::new();
        match r.kind {
            'c' => block.push((insn(JNE_K, 2, 0, 0, DEV_CHAR), true)),
            'b' => block.push((insn(JNE_K, 2, 0, 0, DEV_BLOCK), true)),
            _ => {}
        }
        // Every access asked for must be in the rule's: (access & rule) == access.
        block.push((insn(MOV32_X, 1, 3, 0, 0), false));
        block.push((insn(AND32_K, 1, 0, 0, access), false));
        block.push((insn(JNE_X, 1, 3, 0, 0), true));
        if let Some(m) = r.major {
            block.push((insn(JNE_K, 4, 0, 0, m as i32), true));
        }
        if let Some(m) = r.minor {
            block.push((insn(JNE_K, 5, 0, 0, m as i32), true));
        }
        block.push((insn(MOV32_K, 0, 0, 0, 1), false));
        block.push((insn(EXIT, 0, 0, 0, 0), false));
        let len = block.len();
        p.extend(block.into_iter().enumerate().map(|(i, (mut ins, jumps))| {
            if jumps {
                ins.off = (len - i - 1) as i16;
            }
            ins
        }));
    }
    p.push(insn(MOV32_K, 0, 0, 0, 0));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

fn bpf(cmd: libc::c_long, attr: *const u8, size: usize) -> std::io::Result<i32> {
    // SAFETY: `attr` points to `size` initialised bytes of a bpf_attr variant that outlives the call.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr, size as libc::c_uint) };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r as i32)
    }
}

/// Loads a device program; the verifier's log is in the error.
pub fn load(prog: &[Insn]) -> std::io::Result<OwnedFd> {
    #[repr(C)]
    struct Load {
        prog_type: u32,
        insn_cnt: u32,
        insns: u64,
        license: u64,
        log_level: u32,
        log_size: u32,
        log_buf: u64,
        kern_version: u32,
        prog_flags: u32,
    }
    let license = c"Apache";
    let mut log = vec![0u8; 16 * 1024];
    let attr = Load {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: prog.len() as u32,
        insns: prog.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 1,
        log_size: log.len() as u32,
        log_buf: log.as_mut_ptr() as u64,
        kern_version: 0,
        prog_flags: 0,
    };
    match bpf(BPF_PROG_LOAD, (&attr as *const Load).cast(), std::mem::size_of::<Load>()) {
        // SAFETY: a new descriptor the kernel gave us, owned from here.
        Ok(fd) => Ok(unsafe { OwnedFd::from_raw_fd(fd) }),
        Err(e) => {
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]);
            Err(std::io::Error::new(e.kind(), format!("loading the device filter: {e}: {}", text.trim())))
        }
    }
}

/// Whether this kernel takes device programs (probed with one that allows everything).
pub fn supported() -> bool {
    static PROBE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *PROBE.get_or_init(|| load(&[insn(MOV32_K, 0, 0, 0, 1), insn(EXIT, 0, 0, 0, 0)]).is_ok())
}

/// Attaches the program for `rules` (v1's `c 1:3 rwm` strings) to the cgroup at `dir`.
pub fn attach(dir: &Path, rules: &[String]) -> std::io::Result<()> {
    let parsed = rules
        .iter()
        .map(|r| DeviceRule::parse(r).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))
        .collect::<std::io::Result<Vec<_>>>()?;
    let prog = load(&program(&parsed))?;
    let cg = std::fs::File::open(dir)?;
    #[repr(C)]
    struct Attach {
        target_fd: u32,
        attach_bpf_fd: u32,
        attach_type: u32,
        attach_flags: u32,
    }
    let attr = Attach {
        target_fd: cg.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        // As runc: programs of the ancestors (systemd's DeviceAllow) still run too.
        attach_flags: BPF_F_ALLOW_MULTI,
    };
    // The attachment keeps the program; both descriptors close here.
    bpf(BPF_PROG_ATTACH, (&attr as *const Attach).cast(), std::mem::size_of::<Attach>()).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_become_checks_that_jump_to_the_next_rule() {
        let p = program(&[DeviceRule::parse("c 1:3 rw").unwrap()]);
        // 6 loads, then: type check, mov, and, access check, major, minor, allow (2); deny (2).
        assert_eq!(p.len(), 6 + 8 + 2);
        assert_eq!(p[6], insn(JNE_K, 2, 0, 7, DEV_CHAR), "a wrong type skips the whole rule");
        assert_eq!(p[8], insn(AND32_K, 1, 0, 0, ACC_READ | ACC_WRITE));
        assert_eq!(p[9], insn(JNE_X, 1, 3, 4, 0));
        assert_eq!(p[11], insn(JNE_K, 5, 0, 2, 3));
        assert_eq!(p[12], insn(MOV32_K, 0, 0, 0, 1));
        let any = program(&[DeviceRule::parse("a *:* m").unwrap()]);
        assert_eq!(any.len(), 6 + 5 + 2, "no type, major or minor check");
    }

    /// Against the kernel: a cgroup2 directory (this host's unified tree, or the v2 root)
    /// with the filter attached; a child in it may open what the rules allow only.
    #[test]
    fn the_kernel_enforces_the_filter() {
        if !nix::unistd::geteuid().is_root() || !supported() {
            eprintln!("SKIP the_kernel_enforces_the_filter: needs root and device programs");
            return;
        }
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let Some(root) = mounts.lines().find_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f.len() > 2 && f[2] == "cgroup2").then(|| std::path::PathBuf::from(f[1]))
        }) else {
            eprintln!("SKIP the_kernel_enforces_the_filter: no cgroup2 mount");
            return;
        };
        let dir = root.join(format!("agentd-devfilter-test-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        attach(&dir, &["c 1:3 rw".into(), "c 1:5 r".into()]).unwrap();
        let procs = std::ffi::CString::new(dir.join("cgroup.procs").into_os_string().into_encoded_bytes()).unwrap();
        let try_open = |path: &std::ffi::CStr, write: bool| -> bool {
            // A child joins the cgroup ("0": itself) and opens; its exit status is the
            // answer. Only async-signal-safe calls after the fork (the tests run threads).
            let flags = if write { libc::O_WRONLY } else { libc::O_RDONLY };
            // SAFETY: the child makes raw syscalls only and leaves with _exit.
            match unsafe { nix::unistd::fork() }.unwrap() {
                nix::unistd::ForkResult::Child => unsafe {
                    let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
                    let joined = fd >= 0 && libc::write(fd, b"0".as_ptr().cast(), 1) == 1;
                    let ok = joined && libc::open(path.as_ptr(), flags) >= 0;
                    libc::_exit(if ok { 0 } else { 1 })
                },
                nix::unistd::ForkResult::Parent { child } => {
                    matches!(nix::sys::wait::waitpid(child, None), Ok(nix::sys::wait::WaitStatus::Exited(_, 0)))
                }
            }
        };
        let results = (
            try_open(c"/dev/null", true),
            try_open(c"/dev/zero", false),
            try_open(c"/dev/zero", true),
            try_open(c"/dev/full", false),
        );
        let _ = std::fs::remove_dir(&dir);
        assert_eq!(results, (true, true, false, false), "null rw, zero r only, full not at all");
    }
}
