//! `cp` and `export`: a container's files as tar streams, both ways.
//!
//! Which filesystem: a running container's is read and written through its init's root
//! (`/proc/PID/root`, checked against the recorded start time): its mount namespace's view,
//! so volumes, `--tmpfs` mounts and the runtime's /etc files are copied as the container
//! sees them (docker does the same by mounting them for the copy). A stopped container's is
//! a detached overlay mount of its layers (`snapshot::view`): image layers plus its writable
//! layer, without volumes or tmpfs (they are not there when it does not run). `export` always
//! uses the overlay view: the container's root filesystem only, never /proc or a volume.
//! Every path is resolved inside the container's root (`fsat.rs`).

mod fsat;
mod pack;
mod unpack;

pub use fsat::CpError;

use super::{ContainerRecord, Result, Runtime, RuntimeError, State};
use agent_proto::chunks::ChunkWriter;
use fsat::IdMap;
use nix::fcntl::OFlag;
use nix::sys::stat::{fstat, Mode, SFlag};
use std::os::fd::OwnedFd;
use std::sync::Arc;
use tokio::sync::mpsc;

/// A path's stat as docker's cp reports it (`X-Docker-Container-Path-Stat`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    pub mode: u32,
    pub mtime: i64,
    pub link_target: String,
}

/// Where a copy into a container goes.
#[derive(Clone, Debug)]
pub struct CopyTo {
    /// An existing directory, or a path whose parent exists (with `rename_from`).
    pub path: String,
    /// The archive's top entry that becomes `path` when `path` does not exist.
    pub rename_from: String,
    /// `-a`: the archive's owners are kept.
    pub copy_uid_gid: bool,
}

/// Archive chunks, or the error that ended the stream.
pub type Chunks = mpsc::Receiver<std::result::Result<Vec<u8>, RuntimeError>>;

fn cp_error(e: CpError, rec: &ContainerRecord) -> RuntimeError {
    match e {
        CpError::Missing(p) => {
            RuntimeError::PathNotFound(format!("Could not find the file {p} in container {}", rec.name))
        }
        CpError::Refused(m) => RuntimeError::InvalidArgument(m),
        CpError::Io { what, path, err } => {
            RuntimeError::FailedPrecondition(format!("{what} {path} in container {}: {err}", rec.name))
        }
    }
}

fn missing_or(path: &str) -> impl FnOnce(nix::errno::Errno) -> CpError + '_ {
    move |e| match e {
        nix::errno::Errno::ENOENT | nix::errno::Errno::ENOTDIR => CpError::Missing(path.to_string()),
        e => fsat::io_at("open", path)(e),
    }
}

impl Runtime {
    /// The descriptor of the container's root (see the module's notes): a running one's
    /// through its init, otherwise (or with `overlay`) a detached overlay, writable when asked.
    fn root_of(&self, rec: &ContainerRecord, overlay: bool, writable: bool) -> Result<OwnedFd> {
        if rec.state == State::Running && !overlay {
            let p = format!("/proc/{}/root", rec.pid);
            let fd = nix::fcntl::open(p.as_str(), OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty());
            // The PID is still the container's init (not reused) once the open succeeded.
            if let (Ok(fd), Some(_)) = (fd, super::stop::pidfd(rec.pid, rec.pid_start)) {
                return Ok(fd);
            }
            return Err(RuntimeError::FailedPrecondition(format!("container {} is not running any more", rec.name)));
        }
        if rec.userns.is_some() {
            return Err(RuntimeError::FailedPrecondition(format!(
                "container {} has a user namespace: its files are copied while it runs (start it)",
                rec.name
            )));
        }
        let spec = self.rootfs_spec(rec);
        crate::snapshot::view::detached(&spec, writable).map_err(|err| RuntimeError::Io {
            what: "mount the filesystem of",
            path: self.container_dir(&rec.id),
            err,
        })
    }

    fn ids_of(rec: &ContainerRecord) -> IdMap {
        IdMap(rec.userns.as_ref().map(|l| l.map.clone()))
    }

    /// `cp CONTAINER:PATH -`: the path's stat and a tar stream of it (its base name at the
    /// top); `follow`: a symlink given as the path is followed (inside the container).
    pub async fn copy_from(&self, name: &str, path: &str, follow: bool) -> Result<(PathStat, Chunks)> {
        let rec = self.resolve(name)?;
        let root = self.root_of(&rec, false, false)?;
        let top = fsat::open_in_root(&root, path, OFlag::O_PATH, follow)
            .map_err(missing_or(path))
            .map_err(|e| cp_error(e, &rec))?;
        let st = fstat(&top).map_err(|e| cp_error(fsat::io_at("stat", path)(e), &rec))?;
        let base = fsat::relative(path).rsplit('/').next().unwrap_or("").to_string();
        let base = if base.is_empty() || base == ".." { "/".to_string() } else { base };
        let is_link = st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFLNK.bits();
        let link_target = if is_link {
            nix::fcntl::readlinkat(&top, "").map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
        } else {
            String::new()
        };
        let stat = PathStat { name: base.clone(), size: st.st_size, mode: st.st_mode, mtime: st.st_mtime, link_target };
        let (tx, rx) = mpsc::channel(4);
        let ids = Self::ids_of(&rec);
        let arch_name = if base == "/" { String::new() } else { base };
        std::thread::spawn(move || {
            let w = ChunkWriter::new(tx.clone(), Ok, "the client went away");
            let mut p = pack::Packer::new(w, ids);
            let res = p.add(&top, &arch_name).and_then(|_| p.finish()).and_then(|mut w| {
                std::io::Write::flush(&mut w).map_err(|err| CpError::Io { what: "send", path: "archive".into(), err })
            });
            if let Err(e) = res {
                let _ = tx.blocking_send(Err(RuntimeError::FailedPrecondition(format!("copying: {e}"))));
            }
        });
        Ok((stat, rx))
    }

    /// `cp SRC CONTAINER:PATH`: extracts the tar stream `input` into the container.
    pub async fn copy_to(&self, name: &str, to: CopyTo, input: mpsc::Receiver<Vec<u8>>) -> Result<()> {
        let rec = self.resolve(name)?;
        let live = self.live(&rec.id);
        // A stopped container's writable layer is mounted for the copy: it must not start
        // meanwhile. A running one is written through its own mount namespace.
        let _op = live.op.lock().await;
        let rec = self.load(&rec.id)?;
        let root = self.root_of(&rec, false, true)?;
        let ids = Self::ids_of(&rec);
        let rec2 = rec.clone();
        tokio::task::spawn_blocking(move || -> Result<()> {
            let err = |e| cp_error(e, &rec2);
            let (dest, rename) = match unpack::kind_of(&root, &to.path).map_err(err)? {
                Some(true) => (to.path.clone(), None),
                Some(false) if to.rename_from.is_empty() => {
                    return Err(RuntimeError::InvalidArgument(format!(
                        "destination {} in container {} must be a directory",
                        to.path, rec2.name
                    )))
                }
                Some(false) => {
                    let rel = fsat::relative(&to.path);
                    let (dir, base) = rel.rsplit_once('/').unwrap_or(("", rel.as_str()));
                    (format!("/{dir}"), Some((to.rename_from.clone(), base.to_string())))
                }
                None => {
                    let rel = fsat::relative(&to.path);
                    let (dir, base) = rel.rsplit_once('/').unwrap_or(("", rel.as_str()));
                    if to.rename_from.is_empty() || to.path.ends_with('/') || base.is_empty() {
                        return Err(cp_error(CpError::Missing(to.path.clone()), &rec2));
                    }
                    if unpack::kind_of(&root, dir).map_err(err)? != Some(true) {
                        return Err(cp_error(CpError::Missing(format!("/{dir}")), &rec2));
                    }
                    (format!("/{dir}"), Some((to.rename_from.clone(), base.to_string())))
                }
            };
            let owners = unpack::Owners { keep: to.copy_uid_gid, ids };
            let target = unpack::Target { dest: &dest, rename };
            unpack::unpack(agent_proto::chunks::ChunkReader::new(input), &root, &target, &owners).map_err(err)
        })
        .await
        .map_err(|e| RuntimeError::Internal(format!("copy task: {e}")))?
    }

    /// `export`: the container's root filesystem (overlay view) as a tar stream.
    pub async fn export(&self, name: &str) -> Result<Chunks> {
        let rec = self.resolve(name)?;
        if rec.userns.is_some() {
            return Err(RuntimeError::FailedPrecondition(format!(
                "container {} has a user namespace: export is not supported for it",
                rec.name
            )));
        }
        let root = self.root_of(&rec, true, false)?;
        let (tx, rx) = mpsc::channel(4);
        let rec2 = Arc::new(rec);
        std::thread::spawn(move || {
            let w = ChunkWriter::new(tx.clone(), Ok, "the client went away");
            let mut p = pack::Packer::new(w, IdMap::default());
            let res = p.add(&root, "").and_then(|_| p.finish()).and_then(|mut w| {
                std::io::Write::flush(&mut w).map_err(|err| CpError::Io { what: "send", path: "archive".into(), err })
            });
            if let Err(e) = res {
                let _ = tx.blocking_send(Err(cp_error(e, &rec2)));
            }
        });
        Ok(rx)
    }
}
