//! Image throughput: import of a rootfs tar, and pull from a local registry (Debian's
//! docker-registry on 127.0.0.1, fed by skopeo) when one is installed.

use crate::stats::Report;
use e2e::{Agent, Registry};
use std::io::Write;
use std::time::Instant;

/// A rootfs tar of `mib` MiB of incompressible data in 4 MiB files.
fn rootfs_tar(path: &std::path::Path, mib: usize) -> Result<(), String> {
    let f = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut b = tar::Builder::new(std::io::BufWriter::new(f));
    // xorshift: incompressible enough for gzip, cheap, no dependency.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut chunk = vec![0u8; 4 << 20];
    for i in 0..mib.div_ceil(4) {
        for w in chunk.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            w.copy_from_slice(&x.to_le_bytes()[..w.len()]);
        }
        let mut h = tar::Header::new_gnu();
        h.set_size(chunk.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        b.append_data(&mut h, format!("data/blob{i}"), chunk.as_slice()).map_err(|e| format!("tar: {e}"))?;
    }
    b.into_inner().and_then(|mut w| w.flush()).map_err(|e| format!("tar: {e}"))
}

pub fn run(agent: &Agent, mib: usize, report: &mut Report) -> Result<(), String> {
    let dir = agent.dir.path().join("bench-images");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let tar = dir.join("rootfs.tar");
    rootfs_tar(&tar, mib)?;
    let t = Instant::now();
    ctl(agent, &["image", "import", "--rootfs", "-t", "bench/data:1", &tar.to_string_lossy()])?;
    let secs = t.elapsed().as_secs_f64();
    report.figure(format!("image import, rootfs tar of {mib} MiB"), mib as f64 / secs, "MB/s");
    let _ = std::fs::remove_file(&tar);
    let Some(reg) = Registry::start(&dir.join("registry"), None) else {
        eprintln!("  pull: skipped (no docker-registry)");
        return ctl(agent, &["rmi", "bench/data:1"]);
    };
    let archive = dir.join("data.oci.tar");
    ctl(agent, &["save", "-o", &archive.to_string_lossy(), "bench/data:1"])?;
    reg.push(&archive, "bench/data:1", None);
    ctl(agent, &["rmi", "bench/data:1"])?;
    let reference = format!("{}/bench/data:1", reg.host());
    let t = Instant::now();
    ctl(agent, &["pull", "--insecure", &reference])?;
    let secs = t.elapsed().as_secs_f64();
    report.figure(format!("image pull from a local registry, {mib} MiB"), mib as f64 / secs, "MB/s");
    ctl(agent, &["rmi", &reference])
}

fn ctl(agent: &Agent, args: &[&str]) -> Result<(), String> {
    let out = agent.cmd().args(args).output().map_err(|e| format!("agentctl: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("agentctl {args:?}: {}", String::from_utf8_lossy(&out.stderr)))
    }
}
