//! Builds a ready-to-use root filesystem from the host's static busybox (Debian's
//! busybox-static), so a newcomer has an image without any registry.

use std::path::Path;

/// A tar of a minimal busybox root filesystem.
pub fn rootfs_tar(busybox: &Path) -> anyhow::Result<Vec<u8>> {
    let bin = std::fs::read(busybox)
        .map_err(|e| anyhow::anyhow!("read {}: {e} (install busybox-static)", busybox.display()))?;
    let out = std::process::Command::new(busybox)
        .arg("--list-full")
        .output()
        .map_err(|e| anyhow::anyhow!("run {} --list-full: {e}", busybox.display()))?;
    if !out.status.success() {
        anyhow::bail!("{} --list-full failed: is it a busybox binary?", busybox.display());
    }
    let mut b = tar::Builder::new(Vec::new());
    let mtime = 0;
    let dir = |b: &mut tar::Builder<Vec<u8>>, p: &str, mode: u32| -> anyhow::Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(mtime);
        h.set_size(0);
        b.append_data(&mut h, p, std::io::empty())?;
        Ok(())
    };
    for (d, mode) in [
        ("bin", 0o755),
        ("sbin", 0o755),
        ("usr", 0o755),
        ("usr/bin", 0o755),
        ("usr/sbin", 0o755),
        ("etc", 0o755),
        ("root", 0o700),
        ("tmp", 0o1777),
        ("var", 0o755),
        ("var/tmp", 0o1777),
        ("home", 0o755),
        ("proc", 0o555),
        ("sys", 0o555),
        ("dev", 0o755),
        ("run", 0o755),
    ] {
        dir(&mut b, d, mode)?;
    }
    let file = |b: &mut tar::Builder<Vec<u8>>, p: &str, mode: u32, data: &[u8]| -> anyhow::Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(mtime);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, p, data)?;
        Ok(())
    };
    file(&mut b, "bin/busybox", 0o755, &bin)?;
    file(
        &mut b,
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )?;
    file(&mut b, "etc/group", 0o644, b"root:x:0:\nnogroup:x:65534:\n")?;
    for applet in String::from_utf8_lossy(&out.stdout).lines() {
        let applet = applet.trim().trim_start_matches('/');
        if applet.is_empty() || applet == "bin/busybox" {
            continue;
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(mtime);
        h.set_size(0);
        b.append_link(&mut h, applet, "/bin/busybox")?;
    }
    Ok(b.into_inner()?)
}
