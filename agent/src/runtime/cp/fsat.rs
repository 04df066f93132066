//! Paths of a container's filesystem opened by descriptor, never by host path: lookups go
//! through `openat2(RESOLVE_IN_ROOT)` on the descriptor of the container's root, so `..` and
//! absolute symlinks stay inside it (a symlink `/escape -> /../../../etc` leads to the
//! container's /etc), and the last component of what is read or written is opened with
//! `O_NOFOLLOW` relative to its parent's descriptor.

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

/// A failure of cp/export on the container's filesystem.
#[derive(Debug, thiserror::Error)]
pub enum CpError {
    /// The path does not exist (docker's message names the path).
    #[error("{0}")]
    Missing(String),
    /// The request cannot be done on this tree (a directory over a file, `..` in an archive).
    #[error("{0}")]
    Refused(String),
    #[error("{what} {path}: {err}")]
    Io { what: &'static str, path: String, err: std::io::Error },
}

pub fn io_at<'a>(what: &'static str, path: &'a str) -> impl FnOnce(Errno) -> CpError + 'a {
    move |e| CpError::Io { what, path: path.to_string(), err: std::io::Error::from(e) }
}

/// A container path relative to its root: `/a//b/` → `a/b` (empty for the root). `..`
/// components are kept: the kernel clamps them at the root (RESOLVE_IN_ROOT).
pub fn relative(path: &str) -> String {
    path.split('/').filter(|c| !c.is_empty() && *c != ".").collect::<Vec<_>>().join("/")
}

/// Opens `path` below `root` with everything resolved inside it; `follow`: a symlink as the
/// last component is followed (else the link itself is opened, O_PATH).
pub fn open_in_root(root: &OwnedFd, path: &str, flags: OFlag, follow: bool) -> Result<OwnedFd, Errno> {
    let rel = relative(path);
    let rel = if rel.is_empty() { ".".to_string() } else { rel };
    let mut flags = flags | OFlag::O_CLOEXEC;
    if !follow {
        flags |= OFlag::O_NOFOLLOW;
    }
    let how = OpenHow::new()
        .flags(flags)
        .mode(Mode::empty())
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    // EAGAIN: a concurrent rename raced a `..` lookup; the kernel asks to retry.
    let mut tries = 0;
    loop {
        match openat2(root.as_fd(), rel.as_str(), how) {
            Err(Errno::EAGAIN) if tries < 16 => tries += 1,
            r => return r,
        }
    }
}

/// The parent directory of `path` (resolved inside `root`) and the last component.
pub fn parent_in_root(root: &OwnedFd, path: &str) -> Result<(OwnedFd, String), Errno> {
    let rel = relative(path);
    let (dir, name) = match rel.rsplit_once('/') {
        Some((d, n)) => (d.to_string(), n.to_string()),
        None => (String::new(), rel.clone()),
    };
    let fd = open_in_root(root, &dir, OFlag::O_PATH | OFlag::O_DIRECTORY, true)?;
    Ok((fd, name))
}

/// Reopens an O_PATH descriptor for reading (a regular file) through /proc/self/fd.
pub fn reopen_read(fd: &OwnedFd) -> Result<std::fs::File, Errno> {
    let p = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let f = nix::fcntl::open(p.as_str(), OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY, Mode::empty())?;
    Ok(std::fs::File::from(f))
}

/// The directory of an O_PATH descriptor, for listing.
pub fn open_dir(fd: &OwnedFd) -> Result<nix::dir::Dir, Errno> {
    nix::dir::Dir::openat(fd.as_fd(), ".", OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
}

/// `mkdir -p` of `path` inside `root` (each component resolved inside it); the last
/// directory's descriptor (O_PATH).
pub fn mkdir_all(root: &OwnedFd, path: &str) -> Result<OwnedFd, CpError> {
    let rel = relative(path);
    let mut done = String::new();
    let mut fd = open_in_root(root, "", OFlag::O_PATH | OFlag::O_DIRECTORY, true).map_err(io_at("open", "/"))?;
    for comp in rel.split('/').filter(|c| !c.is_empty()) {
        done = if done.is_empty() { comp.to_string() } else { format!("{done}/{comp}") };
        match open_in_root(root, &done, OFlag::O_PATH | OFlag::O_DIRECTORY, true) {
            Ok(f) => fd = f,
            Err(Errno::ENOENT) => {
                match nix::sys::stat::mkdirat(fd.as_fd(), comp, Mode::from_bits_truncate(0o755)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(io_at("mkdir", &format!("/{done}"))(e)),
                }
                fd = open_in_root(root, &done, OFlag::O_PATH | OFlag::O_DIRECTORY, true)
                    .map_err(io_at("open", &format!("/{done}")))?;
            }
            Err(Errno::ENOTDIR) => {
                return Err(CpError::Refused(format!("cannot create directory /{done}: a file is in the way")))
            }
            Err(e) => return Err(io_at("open", &format!("/{done}"))(e)),
        }
    }
    Ok(fd)
}

/// Host ↔ container IDs through a `--userns` mapping (identity without one).
#[derive(Clone, Debug, Default)]
pub struct IdMap(pub Option<crate::isolation::userns::IdMapping>);

fn to_host(r: &[crate::isolation::userns::IdRange], id: u32) -> u32 {
    r.iter().find(|r| id >= r.container && id - r.container < r.size).map_or(id, |r| r.host + (id - r.container))
}

fn to_container(r: &[crate::isolation::userns::IdRange], id: u32) -> u32 {
    r.iter().find(|r| id >= r.host && id - r.host < r.size).map_or(id, |r| r.container + (id - r.host))
}

impl IdMap {
    pub fn host_uid(&self, id: u32) -> u32 {
        self.0.as_ref().map_or(id, |m| to_host(&m.uids, id))
    }
    pub fn host_gid(&self, id: u32) -> u32 {
        self.0.as_ref().map_or(id, |m| to_host(&m.gids, id))
    }
    pub fn container_uid(&self, id: u32) -> u32 {
        self.0.as_ref().map_or(id, |m| to_container(&m.uids, id))
    }
    pub fn container_gid(&self, id: u32) -> u32 {
        self.0.as_ref().map_or(id, |m| to_container(&m.gids, id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(relative("/"), "");
        assert_eq!(relative("/etc//hostname/"), "etc/hostname");
        assert_eq!(relative("./a/./b"), "a/b");
        assert_eq!(relative("/../x"), "../x");
    }

    #[test]
    fn symlinks_and_dotdot_stay_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        let root_dir = d.path().join("root");
        std::fs::create_dir_all(root_dir.join("etc")).unwrap();
        std::fs::write(root_dir.join("etc/secret"), "inside").unwrap();
        std::os::unix::fs::symlink("/../../../etc", root_dir.join("escape")).unwrap();
        let root = nix::fcntl::open(&root_dir, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty()).unwrap();
        let f = open_in_root(&root, "/escape/secret", OFlag::O_PATH, true).unwrap();
        assert_eq!(std::io::read_to_string(reopen_read(&f).unwrap()).unwrap(), "inside");
        // The host's /etc/hostname is not reached.
        assert_eq!(open_in_root(&root, "/escape/hostname", OFlag::O_PATH, true).unwrap_err(), Errno::ENOENT);
        assert_eq!(open_in_root(&root, "/../../etc/hostname", OFlag::O_PATH, true).unwrap_err(), Errno::ENOENT);
        let (p, name) = parent_in_root(&root, "/escape/new").unwrap();
        assert_eq!(name, "new");
        nix::sys::stat::mkdirat(p.as_fd(), name.as_str(), Mode::from_bits_truncate(0o755)).unwrap();
        assert!(root_dir.join("etc/new").is_dir());
        mkdir_all(&root, "/escape/a/b").unwrap();
        assert!(root_dir.join("etc/a/b").is_dir());
    }

    #[test]
    fn ids_are_mapped_both_ways() {
        use crate::isolation::userns::{IdMapping, IdRange};
        let r = vec![IdRange { container: 0, host: 100000, size: 65536 }];
        let m = IdMap(Some(IdMapping { uids: r.clone(), gids: r }));
        assert_eq!(m.host_uid(0), 100000);
        assert_eq!(m.container_gid(100001), 1);
        assert_eq!(IdMap::default().host_uid(7), 7);
    }
}
