//! The build context: the tar the client sent, unpacked without what `.dockerignore` excludes, and the paths the
//! Dockerfile names in it (its own, COPY/ADD sources), none of which may lead outside it.

use super::{failed, invalid};
use crate::build::dockerfile::IgnoreMatcher;
use crate::build::glob::Glob;
use crate::build::path::{self, clean_rel};
use crate::runtime::{Result, RuntimeError};
use std::path::{Path, PathBuf};

/// Extracts a build context tar into `dir`, leaving out what `.dockerignore` excludes
/// (the Dockerfile and `.dockerignore` themselves always stay).
pub fn unpack_context(tar_path: &Path, dir: &Path, dockerfile: &str) -> Result<()> {
    let io = |e: std::io::Error| RuntimeError::InvalidArgument(format!("build context: {e}"));
    // Read .dockerignore first (a tar is read once, so scan twice).
    let mut ignore = None;
    {
        let f = std::fs::File::open(tar_path).map_err(io)?;
        let mut ar = tar::Archive::new(f);
        for e in ar.entries().map_err(io)? {
            let mut e = e.map_err(io)?;
            if entry_rel(&e).map_err(io)?.is_some_and(|p| p == Path::new(".dockerignore")) {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut e, &mut s).map_err(io)?;
                ignore = Some(
                    IgnoreMatcher::new(&s).map_err(|e| RuntimeError::InvalidArgument(format!(".dockerignore: {e}")))?,
                );
                break;
            }
        }
    }
    let dockerfile = path::clean_rel(dockerfile).unwrap_or_default();
    let f = std::fs::File::open(tar_path).map_err(io)?;
    let mut ar = tar::Archive::new(f);
    ar.set_preserve_permissions(true);
    ar.set_overwrite(true);
    for e in ar.entries().map_err(io)? {
        let mut e = e.map_err(io)?;
        let Some(rel) = entry_rel(&e).map_err(io)? else { continue };
        let keep = rel == dockerfile
            || rel == Path::new(".dockerignore")
            || ignore.as_ref().is_none_or(|m| !m.is_excluded(&rel.to_string_lossy()));
        if keep {
            // unpack_in refuses entries that would land outside `dir` (`..`, through symlinks).
            e.unpack_in(dir).map_err(io)?;
        }
    }
    Ok(())
}

/// A context entry's path, cleaned like every other path of the build; `None` for the context root itself and for a
/// path that climbs out of it (which `unpack_in` refuses anyway).
fn entry_rel<R: std::io::Read>(e: &tar::Entry<R>) -> std::io::Result<Option<PathBuf>> {
    Ok(path::clean_rel(&e.path()?.to_string_lossy()).filter(|p| !p.as_os_str().is_empty()))
}

/// The Dockerfile `name` (default `Dockerfile`) in the context `ctx`: its name as given and its text.
pub(super) fn read_dockerfile(ctx: &Path, name: &str) -> Result<(String, String)> {
    let df_name = if name.is_empty() { "Dockerfile".to_string() } else { name.to_string() };
    let df_rel = clean_rel(&df_name)
        .ok_or_else(|| RuntimeError::InvalidArgument(format!("Dockerfile {df_name:?} is outside the context")))?;
    let df_path = ctx.join(&df_rel);
    inside_context(ctx, &df_path, &df_name, 0)?;
    if df_path.symlink_metadata().map(|m| !m.is_file()).unwrap_or(true) {
        return Err(RuntimeError::InvalidArgument(format!(
            "Dockerfile {df_name:?} is not a regular file in the build context"
        )));
    }
    let text = std::fs::read(&df_path)
        .map_err(|e| RuntimeError::InvalidArgument(format!("Dockerfile {df_name:?} in the build context: {e}")))?;
    let text = String::from_utf8(text)
        .map_err(|_| RuntimeError::InvalidArgument(format!("Dockerfile {df_name:?} is not UTF-8")))?;
    Ok((df_name, text))
}

/// Fails unless `p`'s parent directory, with every symlink resolved, is inside `ctx` (the
/// last component itself is copied as it is, a symlink as a symlink).
pub(super) fn inside_context(ctx: &Path, p: &Path, src: &str, line: usize) -> Result<()> {
    let root = ctx.canonicalize().map_err(|e| failed(line, format!("build context: {e}")))?;
    // The context itself (`COPY . /x`) is checked as it is; anything else by its parent.
    let parent = if p.components().eq(ctx.components()) { p } else { p.parent().unwrap_or(p) };
    let real = parent.canonicalize().map_err(|e| failed(line, format!("{src:?}: {e}")))?;
    if !real.starts_with(&root) {
        return Err(invalid(line, format!("source {src:?} is outside the build context (through a symlink)")));
    }
    Ok(())
}

/// The context paths a COPY source names. A last component with `*` or `?` is a glob (Go's `filepath.Match`
/// rules, as Docker's, through [`Glob::component`]), expanded in its directory.
pub(super) fn sources(ctx: &Path, src: &str, line: usize) -> Result<Vec<PathBuf>> {
    let rel = clean_rel(src).ok_or_else(|| invalid(line, format!("source {src:?} is outside the build context")))?;
    inside_context(ctx, &ctx.join(&rel), src, line)?;
    let name = rel.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if name.contains(['*', '?']) {
        let glob = Glob::component(&name).map_err(|m| invalid(line, format!("source {src:?}: {m}")))?;
        let parent = ctx.join(rel.parent().unwrap_or(Path::new("")));
        let mut found: Vec<PathBuf> = std::fs::read_dir(&parent)
            .map(|rd| {
                rd.flatten().filter(|e| glob.matches(&e.file_name().to_string_lossy())).map(|e| e.path()).collect()
            })
            .unwrap_or_default();
        found.sort();
        if found.is_empty() {
            return Err(failed(line, format!("no source files were specified: {src:?} matches nothing")));
        }
        return Ok(found);
    }
    let p = ctx.join(&rel);
    if p.symlink_metadata().is_err() {
        return Err(failed(line, format!("{src:?} not found in the build context (or excluded by .dockerignore)")));
    }
    Ok(vec![p])
}
