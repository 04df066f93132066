//! End-to-end tests of images: OCI and docker archives (made by hand and by skopeo),
//! layers shared between images, whiteouts and opaque directories in the running
//! container, hard links, hostile and corrupted archives, rmi and its clean-up.

use e2e::fixtures::{layer, oci_archive, Blob, Entry};
use e2e::{privileged, Agent};
use std::path::Path;

/// The busybox layer of the agent's `local/busybox` image, as bytes.
fn busybox_layer(a: &Agent) -> Vec<u8> {
    let v: serde_json::Value = serde_json::from_str(&a.ok(&["image", "inspect", "local/busybox"])).unwrap();
    let diff = v[0]["RootFS"]["Layers"][0].as_str().unwrap().trim_start_matches("sha256:").to_string();
    std::fs::read(a.root().join("blobs/sha256").join(diff)).expect("busybox layer blob")
}

const IMG_BB: &str = "local/busybox:latest";

fn layer_count(a: &Agent) -> usize {
    std::fs::read_dir(a.root().join("layers")).unwrap().count()
}

fn have_skopeo() -> bool {
    std::process::Command::new("skopeo").arg("--version").output().map(|o| o.status.success()).unwrap_or(false)
}

#[test]
fn oci_and_docker_archives_share_layers_and_honour_whiteouts() {
    if !privileged("oci_and_docker_archives") {
        return;
    }
    let a = Agent::start("imgs");
    let base = busybox_layer(&a);
    let mid = layer(&[
        Entry::File("hello", b"from mid\n"),
        Entry::Dir("data"),
        Entry::File("data/a", b"a"),
        Entry::File("data/b", b"b"),
        Entry::File("hl1", b"linked\n"),
        Entry::HardLink("hl2", "hl1"),
    ]);
    let top = layer(&[
        Entry::File(".wh.hello", b""),
        Entry::Dir("data"),
        Entry::File("data/.wh..wh..opq", b""),
        Entry::File("data/c", b"c"),
    ]);
    let dir = a.dir.path();
    let three = dir.join("three.tar");
    std::fs::write(
        &three,
        oci_archive(&[Blob::plain(base.clone()), Blob::gz(mid.clone()), Blob::gz(top)], &["sh"], "1", false),
    )
    .unwrap();
    let out = a.ok(&["image", "import", "--tag", "local/three:1", three.to_str().unwrap()]);
    assert!(out.contains("local/three:1"), "{out}");
    // The base layer is the busybox one: unpacked once.
    assert_eq!(layer_count(&a), 3);
    let out = a.ok(&[
        "run", "--rm", "local/three:1", "sh", "-c",
        "test -e /hello && echo hello-visible; ls /data | tr '\\n' ' '; echo; stat -c %i /hl1 /hl2 | uniq | wc -l; cat /hl2",
    ]);
    let l: Vec<&str> = out.lines().collect();
    assert!(!out.contains("hello-visible"), "a whiteout must hide the lower file: {out}");
    assert_eq!(l[0].trim(), "c", "an opaque directory hides lower contents: {out}");
    assert_eq!(l[1].trim(), "1", "hard links share an inode: {out}");
    assert_eq!(l[2], "linked");

    // The same base + mid as a `docker save` archive written by skopeo: shares both layers.
    let two = dir.join("two.tar");
    std::fs::write(&two, oci_archive(&[Blob::plain(base), Blob::gz(mid)], &["sh"], "2", false)).unwrap();
    if have_skopeo() {
        let docker = dir.join("two-docker.tar");
        let st = std::process::Command::new("skopeo")
            .args(["copy", "--quiet"])
            .arg(format!("oci-archive:{}:2", two.display()))
            .arg(format!("docker-archive:{}:local/two:2", docker.display()))
            .status()
            .unwrap();
        assert!(st.success(), "skopeo copy");
        let out = a.ok(&["image", "import", docker.to_str().unwrap()]);
        assert!(out.contains("local/two:2"), "RepoTags of a docker archive tag the image: {out}");
        // skopeo also reads what we can read: an oci archive of ours.
        let st = std::process::Command::new("skopeo")
            .args(["inspect", "--raw"])
            .arg(format!("oci-archive:{}:2", two.display()))
            .output()
            .unwrap();
        assert!(st.status.success());
    } else {
        eprintln!(
            "skopeo missing: importing the OCI archive instead of a docker archive (install skopeo for the full test)"
        );
        a.ok(&["image", "import", "--tag", "local/two:2", two.to_str().unwrap()]);
    }
    assert_eq!(layer_count(&a), 3, "two images with common layers share them on disk");
    assert_eq!(a.ok(&["run", "--rm", "local/two:2", "cat", "/hello"]), "from mid");
    // system df counts shared layers once; history says who shares each layer.
    let df: serde_json::Value = serde_json::from_str(&a.ok(&["system", "df", "--format", "json"])).unwrap();
    assert_eq!(df["Images"], 3);
    assert_eq!(df["Layers"], 3);
    let (total, shared, naive) = (
        df["LayersSize"].as_u64().unwrap(),
        df["SharedSize"].as_u64().unwrap(),
        df["SizeWithoutSharing"].as_u64().unwrap(),
    );
    assert!(shared > 0 && shared < total, "{df}");
    assert!(naive > total, "sharing saves space: {df}");
    let hist: Vec<serde_json::Value> = a
        .ok(&["image", "history", "--format", "json", "local/three:1"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(hist.len(), 3);
    let base_shared = hist[2]["SharedWith"].as_array().unwrap();
    assert!(
        base_shared.iter().any(|s| s == "local/busybox:latest") && base_shared.iter().any(|s| s == "local/two:2"),
        "{hist:?}"
    );
    assert!(hist[0]["SharedWith"].as_array().unwrap().is_empty(), "the top layer is only this image's");
    // prune removes untagged unused images (an archive whose index names no repository).
    let untagged = dir.join("untagged.tar");
    std::fs::write(
        &untagged,
        oci_archive(&[Blob::plain(layer(&[Entry::File("only-here", b"x")]))], &["sh"], "latest", false),
    )
    .unwrap();
    let out = a.ok(&["image", "import", untagged.to_str().unwrap()]);
    assert!(out.contains("Loaded image ID"), "{out}");
    assert_eq!(layer_count(&a), 4);
    let out = a.ok(&["image", "prune", "-f"]);
    assert!(out.contains("Deleted Images:\ndeleted: sha256:"), "{out}");
    assert_eq!(layer_count(&a), 3, "its layer goes with it");

    // rmi: refused while a container uses the image; afterwards only unshared layers go.
    a.ok(&["create", "--name", "user3", "local/three:1", "true"]);
    let r = a.ctl(&["rmi", "local/three:1"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("is used by container"), "{}", r.stderr);
    a.ok(&["rm", "user3"]);
    let out = a.ok(&["rmi", "local/three:1"]);
    assert!(out.contains("Untagged: local/three:1"), "{out}");
    assert_eq!(layer_count(&a), 2, "the top layer goes, the shared ones stay");
    assert!(!a.ok(&["images"]).contains("three"));
    a.ok(&["rmi", "local/two:2"]);
    assert_eq!(layer_count(&a), 1);
    let r = a.ctl(&["rmi", "local/two:2"]);
    assert!(r.stderr.contains("no such image"), "{}", r.stderr);
}

#[test]
fn hostile_and_corrupted_archives_are_refused_and_leave_nothing() {
    if !privileged("hostile_archives") {
        return;
    }
    let a = Agent::start_bare("hostile");
    let dir = a.dir.path();
    let slip = dir.join("slip.tar");
    let evil = layer(&[Entry::File("ok", b"fine"), Entry::RawFile("../../escaped-by-tar-slip", b"x")]);
    std::fs::write(&slip, oci_archive(&[Blob::plain(evil)], &["sh"], "1", false)).unwrap();
    let r = a.ctl(&["image", "import", "--tag", "local/evil:1", slip.to_str().unwrap()]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("escapes the layer root"), "{}", r.stderr);
    for p in [dir.join("escaped-by-tar-slip"), a.root().join("escaped-by-tar-slip"), dir.join("../escaped-by-tar-slip")]
    {
        assert!(!p.exists(), "{} must not exist", p.display());
    }
    assert_eq!(std::fs::read_dir(a.root().join("layers")).unwrap().count(), 0, "no half-unpacked layer");
    assert_eq!(std::fs::read_dir(a.root().join("tmp")).unwrap().count(), 0, "no temp leftovers");

    let bad = dir.join("corrupt.tar");
    std::fs::write(&bad, oci_archive(&[Blob::gz(layer(&[Entry::File("f", &[7u8; 4096])]))], &["sh"], "1", true))
        .unwrap();
    let r = a.ctl(&["image", "import", "--tag", "local/bad:1", bad.to_str().unwrap()]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("does not match its digest"), "{}", r.stderr);
    assert_eq!(a.ok(&["images", "-q"]), "");

    let r = a.ctl(&["image", "import", Path::new("/etc/hostname").to_str().unwrap()]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("invalid image archive"), "{}", r.stderr);
    let r = a.ctl(&["image", "import", "--rootfs", slip.to_str().unwrap()]);
    assert!(r.stderr.contains("needs a tag"), "{}", r.stderr);
    let r = a.ctl(&["image", "import", "--rootfs", "--tag", "Bad:Ref", slip.to_str().unwrap()]);
    assert!(r.stderr.contains("invalid image reference \"Bad:Ref\""), "{}", r.stderr);
}

#[test]
fn rootfs_import_like_docker_import() {
    if !privileged("rootfs_import") {
        return;
    }
    let a = Agent::start("rootfs");
    let base = busybox_layer(&a);
    let f = a.dir.path().join("root.tar");
    std::fs::write(&f, e2e::fixtures::gzip(&base)).unwrap();
    let out =
        a.ok(&["image", "import", "--rootfs", "--tag", "local/base:1", "--cmd", "echo imported", f.to_str().unwrap()]);
    assert!(out.contains("local/base:1"));
    assert_eq!(a.ok(&["run", "--rm", "local/base:1"]), "imported");
    let imgs = a.ok(&["images", "--format", "json"]);
    assert!(imgs.lines().any(|l| l.contains("local/base:1")), "{imgs}");
    // Same content, compressed or not: one layer on disk.
    assert_eq!(std::fs::read_dir(a.root().join("layers")).unwrap().count(), 1);
}

#[test]
fn save_gives_an_archive_skopeo_reads_and_we_import_back() {
    if !privileged("save") {
        return;
    }
    let a = Agent::start("save");
    let out = a.dir.path().join("saved.tar");
    a.ok(&["save", "-o", out.to_str().unwrap(), "local/busybox"]);
    let diff = {
        let v: serde_json::Value = serde_json::from_str(&a.ok(&["image", "inspect", "local/busybox"])).unwrap();
        v[0]["RootFS"]["Layers"][0].as_str().unwrap().to_string()
    };
    if have_skopeo() {
        let o = std::process::Command::new("skopeo")
            .arg("inspect")
            .arg(format!("oci-archive:{}:latest", out.display()))
            .output()
            .unwrap();
        assert!(o.status.success(), "skopeo inspect: {}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["Layers"][0], diff.as_str(), "an uncompressed layer's digest is its diff ID");
    }
    // Round trip into another agent: same image ID, and it runs.
    let b = Agent::start_bare("saveb");
    let o = b.ok(&["image", "import", out.to_str().unwrap()]);
    assert!(o.contains("local/busybox:latest"), "{o}");
    assert_eq!(b.ok(&["run", "--rm", "local/busybox", "echo", "round-trip"]), "round-trip");
    let id = |ag: &Agent| -> String {
        let v: serde_json::Value = serde_json::from_str(&ag.ok(&["image", "inspect", "local/busybox"])).unwrap();
        v[0]["Id"].as_str().unwrap().to_string()
    };
    assert_eq!(id(&a), id(&b));
    let r = a.ctl(&["save", "-o", out.to_str().unwrap(), "nope:1"]);
    assert!(r.stderr.contains("no such image: nope:1"), "{}", r.stderr);
}

#[test]
fn commit_turns_the_writable_layer_into_an_image_layer() {
    if !privileged("commit") {
        return;
    }
    let a = Agent::start("commit");
    a.ok(&["run", "--name", "w1", IMG_BB, "sh", "-c", "echo added > /newfile; rm /bin/ls; mkdir -p /d; echo d > /d/f"]);
    let before = layer_count(&a);
    let id = a.ok(&["commit", "w1", "local/committed:1"]);
    assert!(id.starts_with("sha256:"));
    assert_eq!(layer_count(&a), before + 1, "one new layer");
    let out = a.ok(&[
        "run",
        "--rm",
        "local/committed:1",
        "sh",
        "-c",
        "cat /newfile /d/f; test -e /bin/ls && echo ls-still-there; true",
    ]);
    assert_eq!(out, "added\nd", "the deletion travels as a whiteout");
    let hist = a.ok(&["image", "history", "local/committed:1"]);
    assert!(hist.contains("agentctl commit w1"), "{hist}");
    // The new image can be saved and read by skopeo like any other.
    let out = a.dir.path().join("c.tar");
    a.ok(&["save", "-o", out.to_str().unwrap(), "local/committed:1"]);
}

#[test]
fn decompression_bombs_stop_at_the_configured_layer_size() {
    if !privileged("decompression_bombs_stop_at_the_configured_layer_size") {
        return;
    }
    let a = Agent::start_with_config("bomb", "[images]\nmax_layer_size = 4194304\n");
    let before = layer_count(&a);
    let zeros = vec![0u8; 16 << 20];
    let bomb = a.dir.path().join("bomb.tar");
    std::fs::write(&bomb, oci_archive(&[Blob::gz(layer(&[Entry::File("zeros", &zeros)]))], &["sh"], "1", false))
        .unwrap();
    assert!(std::fs::metadata(&bomb).unwrap().len() < 256 * 1024, "a small archive");
    let r = a.ctl(&["image", "import", "--tag", "local/bomb:1", bomb.to_str().unwrap()]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("larger than the limit of 4194304 bytes"), "{}", r.stderr);
    assert_eq!(layer_count(&a), before, "nothing unpacked stays");
    assert_eq!(std::fs::read_dir(a.root().join("tmp")).unwrap().count(), 0, "no temporary files stay");
    assert!(!a.ok(&["images"]).contains("local/bomb"));
    a.assert_no_leftovers();
}
