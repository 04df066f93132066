//! A tree of a container's filesystem written as a tar stream, by descriptor: each entry is
//! opened relative to its parent's descriptor with O_NOFOLLOW (symlinks are archived as
//! links, never followed), so nothing outside the container's root is read. Owners are
//! given as the container sees them (through a `--userns` mapping). Hard links within the
//! tree become tar links; sockets are skipped (tar has none), as docker does.

use super::fsat::{open_dir, reopen_read, CpError, IdMap};
use nix::fcntl::{readlinkat, OFlag};
use nix::sys::stat::{fstat, FileStat, Mode, SFlag};
use std::collections::HashMap;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};

/// Writes entries into a tar stream.
pub struct Packer<W: Write> {
    tar: tar::Builder<W>,
    ids: IdMap,
    links: HashMap<(u64, u64), String>,
}

fn io_err<'a>(what: &'static str, path: &'a str) -> impl FnOnce(std::io::Error) -> CpError + 'a {
    move |err| CpError::Io { what, path: path.to_string(), err }
}

fn kind(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

impl<W: Write> Packer<W> {
    pub fn new(out: W, ids: IdMap) -> Packer<W> {
        let mut tar = tar::Builder::new(out);
        tar.mode(tar::HeaderMode::Complete);
        tar.follow_symlinks(false);
        Packer { tar, ids, links: HashMap::new() }
    }

    /// The finished stream.
    pub fn finish(self) -> Result<W, CpError> {
        self.tar.into_inner().map_err(io_err("write", "archive"))
    }

    fn header(&self, st: &FileStat, t: tar::EntryType) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(t);
        h.set_mode(st.st_mode & 0o7777);
        h.set_uid(self.ids.container_uid(st.st_uid).into());
        h.set_gid(self.ids.container_gid(st.st_gid).into());
        h.set_mtime(st.st_mtime.max(0) as u64);
        h.set_size(0);
        h
    }

    /// Archives the entry open as `fd` (O_PATH, not followed) under `name`, and below it for
    /// a directory. `name` "" is the root of the archive: only its contents are written.
    pub fn add(&mut self, fd: &OwnedFd, name: &str) -> Result<(), CpError> {
        let st = fstat(fd).map_err(super::fsat::io_at("stat", name))?;
        let shown = if name.is_empty() { "/" } else { name };
        let k = kind(&st);
        if k == SFlag::S_IFDIR {
            if !name.is_empty() {
                let mut h = self.header(&st, tar::EntryType::Directory);
                self.tar.append_data(&mut h, format!("{name}/"), std::io::empty()).map_err(io_err("write", shown))?;
            }
            let mut dir = open_dir(fd).map_err(super::fsat::io_at("open", shown))?;
            let mut names: Vec<std::ffi::OsString> = Vec::new();
            for e in dir.iter() {
                let e = e.map_err(super::fsat::io_at("list", shown))?;
                let n = e.file_name().to_bytes();
                if n != b"." && n != b".." {
                    names.push(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(n).to_os_string());
                }
            }
            names.sort();
            for n in names {
                let child_name = match n.to_str() {
                    Some(s) if name.is_empty() => s.to_string(),
                    Some(s) => format!("{name}/{s}"),
                    None => {
                        tracing::warn!(dir = shown, "skipping a name that is not UTF-8");
                        continue;
                    }
                };
                let child = nix::fcntl::openat(
                    dir.as_fd(),
                    n.as_os_str(),
                    OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                );
                match child {
                    Ok(c) => self.add(&c, &child_name)?,
                    // Removed while we listed: a running container changes its files.
                    Err(nix::errno::Errno::ENOENT) => continue,
                    Err(e) => return Err(super::fsat::io_at("open", &child_name)(e)),
                }
            }
            return Ok(());
        }
        if k == SFlag::S_IFREG {
            if st.st_nlink > 1 {
                let key = (st.st_dev, st.st_ino);
                if let Some(first) = self.links.get(&key) {
                    let mut h = self.header(&st, tar::EntryType::Link);
                    let first = first.clone();
                    return self.tar.append_link(&mut h, name, first).map_err(io_err("write", shown));
                }
                self.links.insert(key, name.to_string());
            }
            let f = reopen_read(fd).map_err(super::fsat::io_at("read", shown))?;
            let mut h = self.header(&st, tar::EntryType::Regular);
            h.set_size(st.st_size.max(0) as u64);
            // A file that changes size while read (a running container writes it) would
            // break the archive: exactly the stat's size is written (zero-padded).
            let data = std::io::Read::chain(std::io::Read::take(f, h.size().unwrap_or(0)), std::io::repeat(0));
            return self
                .tar
                .append_data(&mut h, name, std::io::Read::take(data, st.st_size.max(0) as u64))
                .map_err(io_err("write", shown));
        }
        if k == SFlag::S_IFLNK {
            let target = readlinkat(fd.as_fd(), "").map_err(super::fsat::io_at("readlink", shown))?;
            let mut h = self.header(&st, tar::EntryType::Symlink);
            return self.tar.append_link(&mut h, name, target).map_err(io_err("write", shown));
        }
        let t = match k {
            SFlag::S_IFCHR => tar::EntryType::Char,
            SFlag::S_IFBLK => tar::EntryType::Block,
            SFlag::S_IFIFO => tar::EntryType::Fifo,
            _ => return Ok(()),
        };
        let mut h = self.header(&st, t);
        let (maj, min) = (libc::major(st.st_rdev), libc::minor(st.st_rdev));
        h.set_device_major(maj).map_err(io_err("write", shown))?;
        h.set_device_minor(min).map_err(io_err("write", shown))?;
        self.tar.append_data(&mut h, name, std::io::empty()).map_err(io_err("write", shown))
    }
}
