//! `cp`: between a container and the local filesystem, as docker's: tar streams through the
//! API (CopyFrom: server-streaming; CopyTo: client-streaming, in chunks), `-` for a tar on
//! stdin/stdout, `-a` keeps owners, `-L` follows a symlink given as the source. The
//! destination rules are docker's: into an existing directory under the source's name;
//! a path that does not exist (its parent does) becomes the copy; a file is replaced by a
//! file, never by a directory. `SRC/.` copies a directory's contents.

use super::verbs::{daemon, EXIT_DAEMON};
use crate::client::Clients;
use crate::error::{Exit, Res};
use agent_proto::chunks::{ChunkReader, ChunkWriter};
use agent_proto::v1 as pb;
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use tokio_stream::StreamExt;

fn fail(msg: impl Into<String>) -> Exit {
    Exit(EXIT_DAEMON, msg.into())
}

/// docker's split of a cp argument: `CONTAINER:PATH`, or a local path (absolute, or
/// starting with `.`, or without a colon).
fn split(arg: &str) -> Option<(&str, &str)> {
    if arg.starts_with('/') || arg.starts_with('.') {
        return None;
    }
    arg.split_once(':').filter(|(c, _)| !c.is_empty())
}

/// `cp SRC DEST`: exactly one side is `CONTAINER:PATH`.
pub async fn cp(cl: &mut Clients, archive: bool, follow: bool, src: String, dest: String) -> Res<u8> {
    match (split(&src), split(&dest)) {
        (Some(_), Some(_)) => Err(fail("copying between containers is not supported")),
        (None, None) => Err(fail("must specify at least one container source")),
        (Some((c, p)), None) => from_container(cl, c, p, &dest, archive, follow).await,
        (None, Some((c, p))) => to_container(cl, &src, c, p, archive, follow).await,
    }
}

/// A container path as the agent takes it: relative paths are below its root.
fn abs(p: &str) -> String {
    if p.starts_with('/') {
        p.to_string()
    } else {
        format!("/{p}")
    }
}

async fn from_container(cl: &mut Clients, id: &str, path: &str, dest: &str, archive: bool, follow: bool) -> Res<u8> {
    let req = pb::CopyFromRequest { id: id.into(), path: abs(path), follow_link: follow };
    let mut s = cl.c.copy_from(req).await.map_err(daemon)?.into_inner();
    let stat = match s.next().await {
        Some(Ok(pb::CopyFromResponse { msg: Some(pb::copy_from_response::Msg::Stat(st)) })) => st,
        Some(Err(e)) => return Err(daemon(e)),
        _ => return Err(fail("the agent sent no stat of the path")),
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(8);
    let to_stdout = dest == "-";
    let dest = PathBuf::from(dest);
    let src_is_dir = stat.mode & libc::S_IFMT == libc::S_IFDIR;
    let contents = path.ends_with("/.") || path == ".";
    let top = stat.name.clone();
    let writer = std::thread::spawn(move || -> Res<()> {
        let input = ChunkReader::new(rx);
        if to_stdout {
            let mut out = std::io::stdout().lock();
            let mut input = input;
            std::io::copy(&mut input, &mut out)?;
            out.flush()?;
            return Ok(());
        }
        extract_local(input, &dest, &top, src_is_dir, contents, archive)
    });
    let mut err = None;
    while let Some(m) = s.next().await {
        match m {
            Ok(pb::CopyFromResponse { msg: Some(pb::copy_from_response::Msg::Data(d)) }) => {
                if tx.send(d).await.is_err() {
                    break;
                }
            }
            Ok(_) => {}
            Err(e) => {
                err = Some(daemon(e));
                break;
            }
        }
    }
    drop(tx);
    let local = writer.join().map_err(|_| fail("the extracting thread failed"))?;
    if let Some(e) = err {
        return Err(e);
    }
    local.map(|_| 0)
}

/// Extracts the container's archive (top entry `top`) at `dest` by docker's rules.
fn extract_local(
    input: impl std::io::Read,
    dest: &Path,
    top: &str,
    src_is_dir: bool,
    contents: bool,
    archive: bool,
) -> Res<()> {
    let meta = std::fs::metadata(dest).ok();
    let dest_s = dest.display().to_string();
    // (directory to extract in, rename of the top entry)
    let (into, rename): (PathBuf, Option<String>) = match meta {
        Some(m) if m.is_dir() && !contents => (dest.to_path_buf(), None),
        Some(m) if m.is_dir() => (dest.to_path_buf(), Some(String::new())),
        Some(_) if src_is_dir => return Err(fail("cannot copy a directory to a file")),
        Some(_) => (parent_of(dest), Some(base_of(dest)?)),
        None if dest_s.ends_with('/') && !src_is_dir => {
            return Err(fail(format!("no such directory: {dest_s}")));
        }
        None => {
            let parent = parent_of(dest);
            if !parent.is_dir() {
                return Err(fail(format!("no such directory: {}", parent.display())));
            }
            (parent, Some(base_of(dest)?))
        }
    };
    let mut ar = tar::Archive::new(input);
    ar.set_preserve_permissions(true);
    ar.set_preserve_mtime(true);
    ar.set_preserve_ownerships(archive);
    ar.set_overwrite(true);
    let root = std::fs::canonicalize(&into)?;
    let rebase = |raw: &str| -> Res<PathBuf> {
        let rel = PathBuf::from(raw.trim_start_matches('/'));
        if rel.components().any(|c| matches!(c, Component::ParentDir)) {
            return Err(fail(format!("archive entry {raw:?} leaves the destination")));
        }
        Ok(match &rename {
            None => rel,
            Some(to) => match rel.strip_prefix(top) {
                Ok(rest) if to.is_empty() => rest.to_path_buf(),
                // `join("")` would add a trailing slash: a file's own name is just `to`.
                Ok(rest) if rest.as_os_str().is_empty() => PathBuf::from(to),
                Ok(rest) => Path::new(to).join(rest),
                Err(_) => rel,
            },
        })
    };
    for e in ar.entries()? {
        let mut e = e?;
        let raw = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let rel = rebase(&raw)?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        let target = root.join(&rel);
        // Never through a symlink the archive planted (`a -> /etc`, then `a/passwd`).
        if let Some(p) = target.parent() {
            let mut probe = p.to_path_buf();
            while !probe.exists() && probe.pop() {}
            if !std::fs::canonicalize(&probe)?.starts_with(&root) {
                return Err(fail(format!("archive entry {raw:?} leads out of {} through a symlink", root.display())));
            }
            std::fs::create_dir_all(p)?;
        }
        if e.header().entry_type() == tar::EntryType::Link {
            let link = e.link_name_bytes().map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
            let from = root.join(rebase(&link)?);
            let _ = std::fs::remove_file(&target);
            std::fs::hard_link(&from, &target).map_err(|err| fail(format!("link {}: {err}", target.display())))?;
            continue;
        }
        e.unpack(&target).map_err(|err| fail(format!("{}: {err}", target.display())))?;
    }
    Ok(())
}

fn parent_of(p: &Path) -> PathBuf {
    match p.parent() {
        Some(x) if !x.as_os_str().is_empty() => x.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn base_of(p: &Path) -> Res<String> {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| fail(format!("invalid destination {}", p.display())))
}

async fn to_container(cl: &mut Clients, src: &str, id: &str, path: &str, archive: bool, follow: bool) -> Res<u8> {
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::CopyToRequest>(8);
    let stdin = src == "-";
    let local = PathBuf::from(src);
    let contents = src.ends_with("/.");
    let top = if stdin || contents {
        String::new()
    } else {
        let meta = if follow { std::fs::metadata(&local) } else { std::fs::symlink_metadata(&local) };
        meta.map_err(|e| fail(format!("lstat {src}: {e}")))?;
        base_of(&local)?
    };
    let start = pb::CopyToStart { id: id.into(), path: abs(path), rename_from: top.clone(), copy_uid_gid: archive };
    tx.send(pb::CopyToRequest { msg: Some(pb::copy_to_request::Msg::Start(start)) })
        .await
        .map_err(|_| fail("the copy stream closed"))?;
    let sender = std::thread::spawn(move || -> Res<()> {
        let mut w = ChunkWriter::new(
            tx,
            |d| pb::CopyToRequest { msg: Some(pb::copy_to_request::Msg::Data(d)) },
            "the agent ended the copy",
        );
        if stdin {
            std::io::copy(&mut std::io::stdin().lock(), &mut w)?;
        } else {
            let src = if follow { std::fs::canonicalize(&local)? } else { local };
            let mut b = tar::Builder::new(&mut w);
            b.follow_symlinks(false);
            b.mode(tar::HeaderMode::Complete);
            let meta = std::fs::symlink_metadata(&src)?;
            if meta.is_dir() && top.is_empty() {
                b.append_dir_all(".", &src)?;
            } else if meta.is_dir() {
                b.append_dir_all(&top, &src)?;
            } else {
                b.append_path_with_name(&src, &top)?;
            }
            b.finish()?;
        }
        w.flush()?;
        Ok(())
    });
    let res = cl.c.copy_to(tokio_stream::wrappers::ReceiverStream::new(rx)).await;
    let local = sender.join().map_err(|_| fail("the archiving thread failed"))?;
    res.map_err(daemon)?;
    local.map(|_| 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_split_like_dockers() {
        assert_eq!(split("web:/etc/hostname"), Some(("web", "/etc/hostname")));
        assert_eq!(split("./a:b"), None);
        assert_eq!(split("/tmp/x:y"), None);
        assert_eq!(split("file"), None);
        assert_eq!(split("-"), None);
        assert_eq!(split(":x"), None);
    }
}
