//! The container's mount table, built inside its new mount namespace: the overlay root,
//! /proc, /dev, /sys, per-container /etc files; then `pivot_root`, then Docker's masked
//! and read-only paths.

use super::mountapi;
use super::process::Failure;
use super::spec::{LaunchSpec, Propagation};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Paths Docker hides from containers (bind of /dev/null on files, read-only tmpfs on dirs).
pub const MASKED_PATHS: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths Docker makes read-only.
pub const READONLY_PATHS: [&str; 5] = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

fn fail(what: &str, path: &Path, e: nix::Error) -> Failure {
    Failure::setup(format!("{what} {}: {}", path.display(), e.desc()))
}

fn mnt(src: &str, target: &Path, fstype: &str, flags: MsFlags, data: Option<&str>) -> Result<(), Failure> {
    std::fs::create_dir_all(target).map_err(|e| Failure::setup(format!("mkdir {}: {e}", target.display())))?;
    mount(Some(src), target, Some(fstype), flags, data).map_err(|e| fail(&format!("mount {fstype} on"), target, e))
}

/// Inside `root`, the path of container path `p` (which is absolute).
fn inroot(root: &Path, p: &str) -> PathBuf {
    root.join(p.trim_start_matches('/'))
}

const NOSUID_NODEV_NOEXEC: MsFlags = MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV).union(MsFlags::MS_NOEXEC);

/// Mounts everything under the new root (still at `spec.rootfs.target`).
/// Whether `target` (under `root`, before pivot_root) or any directory on the way to it is
/// a symlink: following one could create or mount something on the host.
fn through_symlink(root: &Path, target: &Path) -> bool {
    let Ok(rel) = target.strip_prefix(root) else { return true };
    let mut cur = root.to_path_buf();
    for c in rel.components() {
        cur.push(c);
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}

/// Makes a bind mount read-only, keeping the flags it has: in a user namespace the kernel
/// refuses a remount that would clear a locked nosuid/nodev/noexec/atime flag.
fn remount_ro(path: &Path, extra: MsFlags) -> Result<(), Failure> {
    use nix::sys::statvfs::FsFlags;
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | extra;
    if let Ok(st) = nix::sys::statvfs::statvfs(path) {
        let f = st.flags();
        for (has, keep) in [
            (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
            (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
            (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
            (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
            (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
            (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
        ] {
            if f.contains(has) {
                flags |= keep;
            }
        }
        if !f.intersects(FsFlags::ST_NOATIME | FsFlags::ST_RELATIME) {
            flags |= MsFlags::MS_STRICTATIME;
        }
    }
    mount(None::<&str>, path, None::<&str>, flags, None::<&str>).map_err(|e| fail("make read-only", path, e))
}

/// Binds the host's device node `host` on `target` (a new, empty file): in a user
/// namespace mknod is refused, so the nodes of /dev come from the host, like runc does.
fn bind_node(host: &Path, target: &Path) -> Result<(), Failure> {
    std::fs::write(target, b"").map_err(|e| Failure::setup(format!("create {}: {e}", target.display())))?;
    mount(Some(host), target, None::<&str>, MsFlags::MS_BIND, None::<&str>)
        .map_err(|e| fail("bind device on", target, e))
}

/// Detached copies of what a `--userns` container binds from the host (its /etc files,
/// volumes, devices), made by the shim before the clone: the init, root only in its user
/// namespace, may not even reach those paths (a 0700 directory on the way).
#[derive(Default)]
pub struct HostMounts {
    pub binds: Vec<OwnedFd>,
    pub volumes: Vec<OwnedFd>,
    pub devices: Vec<OwnedFd>,
}

impl HostMounts {
    /// Clones the mounts of every host path of `spec` (volumes with their submounts); an
    /// error names the path.
    pub fn open(spec: &LaunchSpec) -> std::io::Result<HostMounts> {
        let one = mountapi::open_tree_clone;
        Ok(HostMounts {
            binds: spec.binds.iter().map(|b| one(&b.host, false)).collect::<Result<_, _>>()?,
            volumes: spec.volumes.iter().map(|v| one(&v.host, true)).collect::<Result<_, _>>()?,
            devices: spec.devices.iter().map(|(h, _)| one(h, false)).collect::<Result<_, _>>()?,
        })
    }

    /// Every descriptor (kept open by the init until it execs).
    pub fn raw_fds(&self) -> Vec<i32> {
        self.binds.iter().chain(&self.volumes).chain(&self.devices).map(|f| f.as_raw_fd()).collect()
    }
}

/// Binds `host` on `target`, from its detached copy when the shim made one.
fn bind_host(host: &Path, detached: Option<&OwnedFd>, target: &Path, flags: MsFlags) -> Result<(), Failure> {
    match detached {
        Some(fd) => mountapi::attach(fd, target).map_err(|e| Failure::setup(e.to_string())),
        None => mount(Some(host), target, None::<&str>, flags, None::<&str>).map_err(|e| fail("bind on", target, e)),
    }
}

/// `rootfs_mount`: the overlay the shim built (`--userns`; the init's working directory
/// is then the mount point, and every path below is taken relative to it, as the host
/// path may not be reachable from the user namespace). Else the init mounts it itself.
pub fn setup_rootfs(
    spec: &LaunchSpec,
    rootfs_mount: Option<OwnedFd>,
    host_mounts: Option<&HostMounts>,
    shm: Option<&OwnedFd>,
) -> Result<(), Failure> {
    // Nothing we mount may propagate back to the host, unless a volume asks for it: then,
    // as runc does, the copy of the host's tree stays shared (or becomes its slave) so the
    // volumes' binds keep their peers on the host, and the rootfs's parent mount turns
    // private so the rootfs itself does not appear on the host.
    let root_prop = root_propagation(&spec.volumes);
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | root_prop, None::<&str>)
        .map_err(|e| fail("set the propagation of", Path::new("/"), e))?;
    if root_prop != MsFlags::MS_PRIVATE {
        let parent = mount_point_of(&spec.rootfs.target)?;
        mount(None::<&str>, &parent, None::<&str>, MsFlags::MS_PRIVATE, None::<&str>)
            .map_err(|e| fail("make private", &parent, e))?;
    }
    let root_buf = match rootfs_mount {
        Some(m) => {
            mountapi::attach(&m, Path::new(".")).map_err(|e| Failure::setup(format!("rootfs: {e}")))?;
            nix::unistd::fchdir(&m).map_err(|e| fail("chdir into", &spec.rootfs.target, e))?;
            PathBuf::from(".")
        }
        None => {
            spec.rootfs.mount().map_err(|e| fail("mount overlay on", &spec.rootfs.target, e))?;
            spec.rootfs.target.clone()
        }
    };
    let root = root_buf.as_path();
    mnt("proc", &inroot(root, "/proc"), "proc", NOSUID_NODEV_NOEXEC, None)?;
    mnt(
        "tmpfs",
        &inroot(root, "/dev"),
        "tmpfs",
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )?;
    let dev = inroot(root, "/dev");
    for (name, major, minor) in
        [("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0)]
    {
        let p = dev.join(name);
        if spec.userns.is_some() {
            bind_node(&Path::new("/dev").join(name), &p)?;
            continue;
        }
        mknod(&p, SFlag::S_IFCHR, Mode::from_bits_truncate(0o666), makedev(major, minor))
            .map_err(|e| fail("mknod", &p, e))?;
        // mknod honours the umask: set the mode exactly.
        nix::sys::stat::fchmodat(
            nix::fcntl::AT_FDCWD,
            &p,
            Mode::from_bits_truncate(0o666),
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )
        .map_err(|e| fail("chmod", &p, e))?;
    }
    mnt(
        "devpts",
        &dev.join("pts"),
        "devpts",
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
    )?;
    let link = |target: &str, name: &str| {
        std::os::unix::fs::symlink(target, dev.join(name))
            .map_err(|e| Failure::setup(format!("symlink /dev/{name}: {e}")))
    };
    link("pts/ptmx", "ptmx")?;
    link("/proc/self/fd", "fd")?;
    link("/proc/self/fd/0", "stdin")?;
    link("/proc/self/fd/1", "stdout")?;
    link("/proc/self/fd/2", "stderr")?;
    link("/proc/kcore", "core")?;
    match spec.ipc {
        super::spec::NsShare::Private => {
            let size = if spec.shm_size > 0 { spec.shm_size.div_ceil(1024) } else { 65536 };
            mnt("shm", &dev.join("shm"), "tmpfs", NOSUID_NODEV_NOEXEC, Some(&format!("mode=1777,size={size}k")))?
        }
        // Shared IPC means shared POSIX shared memory too: the host's /dev/shm, or the
        // other container's, cloned by the shim from inside its mount namespace.
        share => {
            let target = dev.join("shm");
            std::fs::create_dir_all(&target).map_err(|e| Failure::setup(format!("mkdir /dev/shm: {e}")))?;
            match (share, shm) {
                (super::spec::NsShare::Join(_), Some(fd)) => {
                    mountapi::attach(fd, &target).map_err(|e| Failure::setup(format!("shared /dev/shm: {e}")))?
                }
                (super::spec::NsShare::Join(pid), None) => {
                    return Err(Failure::setup(format!("no /dev/shm from the container of PID {pid}")))
                }
                _ => mount(Some("/dev/shm"), &target, None::<&str>, MsFlags::MS_BIND, None::<&str>)
                    .map_err(|e| fail("bind shm on", &target, e))?,
            }
        }
    }
    mnt("mqueue", &dev.join("mqueue"), "mqueue", NOSUID_NODEV_NOEXEC, None)?;
    let sys_ro = if spec.privileged { MsFlags::empty() } else { MsFlags::MS_RDONLY };
    let sys = inroot(root, "/sys");
    match mnt("sysfs", &sys, "sysfs", NOSUID_NODEV_NOEXEC | sys_ro, None) {
        Ok(()) => {}
        // A user namespace may mount sysfs only for a network namespace it owns: with the
        // host's or another container's, bind the host's /sys (read-only) instead.
        Err(_) if spec.userns.is_some() => {
            mount(Some("/sys"), &sys, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
                .map_err(|e| fail("bind /sys on", &sys, e))?;
            // Every mount below it too (cgroups, bpf, tracing), not just the top one.
            mountapi::make_readonly_recursive(&sys).map_err(|e| Failure::setup(e.to_string()))?;
        }
        Err(f) => return Err(f),
    }
    let mut devices = spec.devices.clone();
    if spec.privileged {
        // Every device node of the host's /dev (not its subdirectories), like docker.
        if let Ok(rd) = std::fs::read_dir("/dev") {
            for e in rd.flatten() {
                let dev_node = e.file_type().is_ok_and(|t| {
                    use std::os::unix::fs::FileTypeExt;
                    t.is_char_device() || t.is_block_device()
                });
                let name = e.file_name().to_string_lossy().into_owned();
                if dev_node && !dev.join(&name).exists() {
                    devices.push((e.path(), format!("/dev/{name}")));
                }
            }
        }
    }
    for (i, (host, ctr)) in devices.iter().enumerate() {
        let target = inroot(root, ctr);
        if through_symlink(root, &target) {
            return Err(Failure::setup(format!("device target {ctr} goes through a symlink in the image")));
        }
        if let Some(p) = target.parent() {
            std::fs::create_dir_all(p).map_err(|e| Failure::setup(format!("mkdir {}: {e}", p.display())))?;
        }
        if !target.exists() {
            std::fs::write(&target, b"").map_err(|e| Failure::setup(format!("create {ctr}: {e}")))?;
        }
        bind_host(host, host_mounts.and_then(|h| h.devices.get(i)), &target, MsFlags::MS_BIND)?;
    }
    for (i, v) in spec.volumes.iter().enumerate() {
        let target = inroot(root, &v.container);
        let detached = host_mounts.and_then(|h| h.volumes.get(i));
        let is_dir = match detached {
            Some(fd) => nix::sys::stat::fstat(fd).map(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR).unwrap_or(true),
            None => std::fs::metadata(&v.host).map(|m| m.is_dir()).unwrap_or(true),
        };
        // Paths inside the container must not lead out of it through a symlink.
        if through_symlink(root, &target) {
            return Err(Failure::setup(format!("volume target {} goes through a symlink in the image", v.container)));
        }
        if is_dir {
            std::fs::create_dir_all(&target).map_err(|e| Failure::setup(format!("mkdir {}: {e}", v.container)))?;
        } else if !target.exists() {
            if let Some(p) = target.parent() {
                std::fs::create_dir_all(p).map_err(|e| Failure::setup(format!("mkdir {}: {e}", p.display())))?;
            }
            std::fs::write(&target, b"").map_err(|e| Failure::setup(format!("create {}: {e}", v.container)))?;
        }
        bind_host(&v.host, detached, &target, MsFlags::MS_BIND | MsFlags::MS_REC)?;
        if v.read_only {
            remount_ro(&target, MsFlags::empty())?;
        }
        mount(None::<&str>, &target, None::<&str>, propagation_flags(v.propagation), None::<&str>)
            .map_err(|e| fail(&format!("make {}", v.propagation.name()), &target, e))?;
    }
    for (path, opts) in &spec.tmpfs {
        let data = if opts.is_empty() { "mode=1777".to_string() } else { opts.clone() };
        mnt(
            "tmpfs",
            &inroot(root, path),
            "tmpfs",
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            Some(&data),
        )?;
    }
    for (i, b) in spec.binds.iter().enumerate() {
        let target = inroot(root, &b.container);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Failure::setup(format!("mkdir {}: {e}", parent.display())))?;
        }
        // A symlink here (e.g. /etc/resolv.conf -> ../run/…) must not lead outside the root.
        if std::fs::symlink_metadata(&target).map(|m| m.file_type().is_symlink()).unwrap_or(false) {
            std::fs::remove_file(&target).map_err(|e| Failure::setup(format!("replace {}: {e}", b.container)))?;
        }
        if !target.exists() {
            std::fs::write(&target, b"").map_err(|e| Failure::setup(format!("create {}: {e}", b.container)))?;
        }
        bind_host(&b.host, host_mounts.and_then(|h| h.binds.get(i)), &target, MsFlags::MS_BIND)?;
    }
    Ok(())
}

/// The propagation flags of a volume's bind.
fn propagation_flags(p: Propagation) -> MsFlags {
    let rec = MsFlags::MS_REC;
    match p {
        Propagation::Rprivate => MsFlags::MS_PRIVATE | rec,
        Propagation::Private => MsFlags::MS_PRIVATE,
        Propagation::Rslave => MsFlags::MS_SLAVE | rec,
        Propagation::Slave => MsFlags::MS_SLAVE,
        Propagation::Rshared => MsFlags::MS_SHARED | rec,
        Propagation::Shared => MsFlags::MS_SHARED,
    }
}

/// What the copy of the host's mount tree becomes before anything is mounted (applied
/// recursively): shared if a volume shares with the host, a slave if one receives from
/// it, else private (containerd's rootfsPropagation).
pub fn root_propagation(volumes: &[super::spec::Volume]) -> MsFlags {
    if volumes.iter().any(|v| v.propagation.sends()) {
        MsFlags::MS_SHARED
    } else if volumes.iter().any(|v| v.propagation.receives()) {
        MsFlags::MS_SLAVE
    } else {
        MsFlags::MS_PRIVATE
    }
}

/// A line of /proc/self/mountinfo: the mount point and its propagation fields
/// (`shared:N`, `master:N`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub mount_point: PathBuf,
    pub optional: Vec<String>,
    /// The filesystem type (`ext4`, `xfs`, …) and its super options (`rw,prjquota`).
    pub fstype: String,
    pub super_options: Vec<String>,
}

impl MountEntry {
    pub fn shared(&self) -> bool {
        self.optional.iter().any(|o| o.starts_with("shared:"))
    }

    pub fn slave(&self) -> bool {
        self.optional.iter().any(|o| o.starts_with("master:"))
    }
}

/// The mount that holds `path` in `mountinfo`'s table: the last-mounted one with the
/// longest mount point that is `path` or one of its parents (`path` must be canonical).
pub fn mount_of(mountinfo: &str, path: &Path) -> Option<MountEntry> {
    let mut best: Option<MountEntry> = None;
    for l in mountinfo.lines() {
        let f: Vec<&str> = l.split(' ').collect();
        let Some(sep) = f.iter().position(|x| *x == "-") else { continue };
        if sep < 6 {
            continue;
        }
        let mp = PathBuf::from(unescape_mountinfo(f[4]));
        if !path.starts_with(&mp) {
            continue;
        }
        if best.as_ref().is_none_or(|b| mp.as_os_str().len() >= b.mount_point.as_os_str().len()) {
            best = Some(MountEntry {
                mount_point: mp,
                optional: f[6..sep].iter().map(|s| s.to_string()).collect(),
                fstype: f.get(sep + 1).unwrap_or(&"").to_string(),
                super_options: f.get(sep + 3).map(|o| o.split(',').map(str::to_string).collect()).unwrap_or_default(),
            });
        }
    }
    best
}

/// The mount point of the mount that holds `path` in this mount namespace.
fn mount_point_of(path: &Path) -> Result<PathBuf, Failure> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| Failure::setup(format!("read /proc/self/mountinfo: {e}")))?;
    let path = std::fs::canonicalize(path).map_err(|e| Failure::setup(format!("{}: {e}", path.display())))?;
    mount_of(&info, &path)
        .map(|m| m.mount_point)
        .ok_or_else(|| Failure::setup(format!("no mount holds {}", path.display())))
}

/// Undoes mountinfo's octal escapes (`\040` for a space, …).
pub fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| (b'0'..=b'3').contains(&d[0]) && d[1..].iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Binds the container's terminal (a path in its own devpts) on /dev/console (after pivot_root).
pub fn bind_console(pts: &Path) -> Result<(), Failure> {
    let target = Path::new("/dev/console");
    std::fs::write(target, b"").map_err(|e| Failure::setup(format!("create /dev/console: {e}")))?;
    mount(Some(pts), target, None::<&str>, MsFlags::MS_BIND, None::<&str>)
        .map_err(|e| fail("bind console on", target, e))
}

/// `--read-only`: the root mount becomes read-only (after pivot_root; the mounts on
/// top of it, /dev, /proc, volumes, tmpfs, stay as they are).
pub fn read_only_root() -> Result<(), Failure> {
    remount_ro(Path::new("/"), MsFlags::empty())
}

/// Makes `new_root` the root and detaches the old one.
pub fn pivot_root(new_root: &Path) -> Result<(), Failure> {
    let old_root = std::fs::File::open("/").map_err(|e| Failure::setup(format!("open the old root: {e}")))?;
    nix::unistd::chdir(new_root).map_err(|e| fail("chdir", new_root, e))?;
    // pivot_root(".", ".") stacks the old root under the new one; detaching it then
    // removes the old root without needing a directory for it.
    nix::unistd::pivot_root(".", ".").map_err(|e| fail("pivot_root", new_root, e))?;
    // The old root may share peers with the host (a volume's propagation): as runc does,
    // make it (reached through a descriptor: "." alone would be the new root) a slave
    // first, so unmounting it cannot unmount anything on the host.
    nix::unistd::fchdir(&old_root).map_err(|e| fail("chdir", Path::new("old root"), e))?;
    drop(old_root);
    mount(None::<&str>, ".", None::<&str>, MsFlags::MS_SLAVE | MsFlags::MS_REC, None::<&str>)
        .map_err(|e| fail("make the old root a slave", Path::new("/"), e))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| fail("unmount old root", Path::new("/"), e))?;
    nix::unistd::chdir("/").map_err(|e| fail("chdir", Path::new("/"), e))?;
    Ok(())
}

/// Hides the masked paths and makes the read-only paths read-only (after pivot_root;
/// paths the container lacks are skipped, as runc does).
pub fn mask_paths(masked: &[String], readonly: &[String]) -> Result<(), Failure> {
    for p in masked {
        let path = Path::new(p);
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => mount(Some("tmpfs"), path, Some("tmpfs"), MsFlags::MS_RDONLY, None::<&str>)
                .map_err(|e| fail("mask", path, e))?,
            Ok(_) => mount(Some("/dev/null"), path, None::<&str>, MsFlags::MS_BIND, None::<&str>)
                .map_err(|e| fail("mask", path, e))?,
            Err(_) => {}
        }
    }
    for p in readonly {
        let path = Path::new(p);
        if !path.exists() {
            continue;
        }
        mount(Some(path), path, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
            .map_err(|e| fail("bind", path, e))?;
        remount_ro(path, NOSUID_NODEV_NOEXEC)?;
    }
    Ok(())
}

/// Brings the loopback interface up in a new network namespace.
pub fn loopback_up() -> Result<(), Failure> {
    // SAFETY: plain socket/ioctl calls on a zeroed, correctly sized ifreq.
    unsafe {
        let s = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if s < 0 {
            return Err(Failure::setup(format!("socket: {}", std::io::Error::last_os_error())));
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo\0".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        let r = if libc::ioctl(s, libc::SIOCGIFFLAGS, &mut req) < 0 {
            -1
        } else {
            req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            libc::ioctl(s, libc::SIOCSIFFLAGS, &req)
        };
        let err = std::io::Error::last_os_error();
        libc::close(s);
        if r < 0 {
            return Err(Failure::setup(format!("bring loopback up: {err}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mount_holding_a_path_and_its_propagation() {
        let info = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
                    30 22 0:40 / /srv/a\\040b rw shared:7 master:3 - tmpfs tmpfs rw\n\
                    31 22 0:41 / /srv/p rw - tmpfs tmpfs rw\n\
                    32 31 0:42 / /srv/p rw master:9 - tmpfs tmpfs rw\n";
        let m = mount_of(info, Path::new("/srv/a b/x")).unwrap();
        assert_eq!(m.mount_point, Path::new("/srv/a b"));
        assert!(m.shared() && m.slave());
        let p = mount_of(info, Path::new("/srv/p/y")).unwrap();
        assert!(!p.shared() && p.slave(), "the last mount on a point is the one seen: {p:?}");
        let root = mount_of(info, Path::new("/srv/abc")).unwrap();
        assert_eq!((root.mount_point.as_path(), root.shared()), (Path::new("/"), true));
        assert_eq!((root.fstype.as_str(), root.super_options.as_slice()), ("ext4", ["rw".to_string()].as_slice()));
        assert_eq!(unescape_mountinfo("a\\011b\\134c\\9"), "a\tb\\c\\9");
    }

    #[test]
    fn root_propagation_follows_the_volumes() {
        let v = |p| super::super::spec::Volume {
            host: "/h".into(),
            container: "/c".into(),
            read_only: false,
            propagation: p,
        };
        assert_eq!(root_propagation(&[]), MsFlags::MS_PRIVATE);
        assert_eq!(root_propagation(&[v(Propagation::Private), v(Propagation::Rslave)]), MsFlags::MS_SLAVE);
        assert_eq!(root_propagation(&[v(Propagation::Rslave), v(Propagation::Shared)]), MsFlags::MS_SHARED);
    }
}
