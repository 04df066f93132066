//! Pulling from a real registry on 127.0.0.1 (Debian's docker-registry), images pushed by
//! skopeo from archives the fixtures build: by tag and digest, shared layers not fetched
//! twice, resume, corruption, multi-platform indexes, login, mirrors.

use e2e::fixtures::{digest, layer, oci_archive, oci_archive_multiarch, Blob, Entry};
use e2e::{privileged, Agent, Registry};
use std::path::Path;

fn busybox_layer(a: &Agent) -> Vec<u8> {
    let v: serde_json::Value = serde_json::from_str(&a.ok(&["image", "inspect", "local/busybox"])).unwrap();
    let diff = v[0]["RootFS"]["Layers"][0].as_str().unwrap().trim_start_matches("sha256:").to_string();
    std::fs::read(a.root().join("blobs/sha256").join(diff)).expect("busybox layer blob")
}

/// An archive of busybox + one layer with /app/hello = `text`; returns it and its top layer.
fn app_archive(a: &Agent, dir: &Path, name: &str, text: &str) -> (std::path::PathBuf, Blob) {
    let top = Blob::gz(layer(&[Entry::Dir("app"), Entry::File("app/hello", text.as_bytes())]));
    let top2 = Blob { bytes: top.bytes.clone(), gzip: true, diff_id: top.diff_id.clone() };
    let p = dir.join(format!("{name}.tar"));
    std::fs::write(&p, oci_archive(&[Blob::plain(busybox_layer(a)), top], &["sh"], "latest", false)).unwrap();
    (p, top2)
}

fn have_tools() -> bool {
    let ok = std::process::Command::new("skopeo").arg("--version").output().is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipped: skopeo is missing (apt-get install skopeo)");
    }
    ok
}

#[test]
fn pull_by_tag_and_digest_shares_layers_resumes_and_verifies() {
    if !privileged("pull_by_tag_and_digest") || !have_tools() {
        return;
    }
    let a = Agent::start("pull");
    let Some(reg) = Registry::start(&a.dir.path().join("registry"), None) else { return };
    let dir = a.dir.path();
    let host = reg.host();
    let (one, _) = app_archive(&a, dir, "one", "v1");
    reg.push(&one, "test/app:1", None);

    // By tag. The busybox layer is already in the store: not downloaded again.
    let r = a.ctl(&["pull", "--insecure", &format!("{host}/test/app:1")]);
    assert_eq!(r.code, 0, "pull: {}{}\n{}", r.stdout, r.stderr, a.log());
    assert!(r.stdout.contains("Already exists"), "the shared layer must not be fetched: {}", r.stdout);
    assert!(r.stdout.contains("Pull complete"), "{}", r.stdout);
    let mdigest = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("Digest: "))
        .map(str::to_string)
        .expect("the pull reports the manifest digest");
    let out = a.ok(&["run", "--rm", "--network", "none", &format!("{host}/test/app:1"), "cat", "/app/hello"]);
    assert_eq!(out, "v1");
    let layers_dir = a.root().join("layers");
    assert_eq!(std::fs::read_dir(&layers_dir).unwrap().count(), 2, "busybox layer shared, one new layer");

    // By digest, after removing the tag: same image, found by its digest.
    a.ok(&["rmi", &format!("{host}/test/app:1")]);
    let r = a.ctl(&["pull", "--insecure", &format!("{host}/test/app@{mdigest}")]);
    assert_eq!(r.code, 0, "pull by digest: {}{}", r.stdout, r.stderr);
    let listed = a.ok(&["images", "--format", "json"]);
    assert!(listed.contains(&mdigest), "image pulled by digest is listed with its digest: {listed}");

    // Resume: half of the layer is already there from an interrupted pull.
    let (two, top2) = app_archive(&a, dir, "two", &"v2-".repeat(50_000));
    reg.push(&two, "test/app:2", None);
    let d = digest(&top2.bytes);
    let downloads = a.root().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let half = top2.bytes.len() / 2;
    std::fs::write(downloads.join(format!("{}.partial", d.trim_start_matches("sha256:"))), &top2.bytes[..half])
        .unwrap();
    let r = a.ctl(&["pull", "--insecure", &format!("{host}/test/app:2")]);
    assert_eq!(r.code, 0, "resumed pull: {}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains(&format!("Resuming at {half} bytes")), "{}", r.stdout);
    let out =
        a.ok(&["run", "--rm", "--network", "none", &format!("{host}/test/app:2"), "sh", "-c", "wc -c < /app/hello"]);
    assert_eq!(out, "150000");

    // Corruption in the registry: detected, named, nothing kept.
    let (three, top3) = app_archive(&a, dir, "three", "v3");
    reg.push(&three, "test/app:3", None);
    let d3 = digest(&top3.bytes);
    let f = reg.blob_file(&d3);
    let mut bytes = std::fs::read(&f).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    std::fs::write(&f, bytes).unwrap();
    let before = std::fs::read_dir(&layers_dir).unwrap().count();
    let r = a.ctl(&["pull", "--insecure", &format!("{host}/test/app:3")]);
    assert_eq!(r.code, 1, "a corrupted blob must fail the pull: {}", r.stdout);
    assert!(r.stderr.contains(&d3) && r.stderr.contains("does not match its digest"), "{}", r.stderr);
    assert!(!a.ok(&["images"]).contains("test/app   3"), "no image from a corrupted pull");
    assert_eq!(std::fs::read_dir(&layers_dir).unwrap().count(), before, "no layer from a corrupted pull");
    let leftovers: Vec<_> = std::fs::read_dir(&downloads).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(
        !leftovers.iter().any(|n| n.to_string_lossy().starts_with(d3.trim_start_matches("sha256:"))),
        "corrupt data is not kept for a resume: {leftovers:?}"
    );

    // Clear errors: unknown tag, bad reference, unreachable registry.
    let r = a.ctl(&["pull", "--insecure", &format!("{host}/test/app:nope")]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("test/app:nope") && r.stderr.to_lowercase().contains("unknown"), "{}", r.stderr);
    let r = a.ctl(&["pull", "Bad/Ref"]);
    assert!(r.stderr.contains("invalid image reference \"Bad/Ref\""), "{}", r.stderr);
    let r = a.ctl(&["pull", "--insecure", &format!("127.0.0.1:{}/x/y:1", e2e::free_port())]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("x/y:1"), "{}", r.stderr);
    drop(reg);
    a.assert_no_leftovers();
}

#[test]
fn pull_picks_linux_amd64_from_an_index() {
    if !privileged("pull_picks_linux_amd64") || !have_tools() {
        return;
    }
    let a = Agent::start("pullidx");
    let Some(reg) = Registry::start(&a.dir.path().join("registry"), None) else { return };
    let bb = busybox_layer(&a);
    let arch = |s: &str| Blob::plain(layer(&[Entry::File("arch", s.as_bytes())]));
    let p = a.dir.path().join("multi.tar");
    std::fs::write(
        &p,
        oci_archive_multiarch(
            &[("arm64", vec![Blob::plain(bb.clone()), arch("arm64")]), ("amd64", vec![Blob::plain(bb), arch("amd64")])],
            &["sh"],
            "latest",
        ),
    )
    .unwrap();
    reg.push(&p, "test/multi:1", None);
    let name = format!("{}/test/multi:1", reg.host());
    let r = a.ctl(&["pull", "--insecure", &name]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(a.ok(&["run", "--rm", "--network", "none", &name, "cat", "/arch"]), "amd64");
    let v: serde_json::Value = serde_json::from_str(&a.ok(&["image", "inspect", &name])).unwrap();
    assert_eq!(v[0]["Architecture"], "amd64", "{v}");
    drop(reg);
    a.assert_no_leftovers();
}

#[test]
fn login_gates_a_private_registry_and_mirrors_come_first() {
    if !privileged("login_gates_a_private_registry") || !have_tools() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let Some(private) = Registry::start(&tmp.path().join("private"), Some(("alice", "s3cret"))) else { return };
    let Some(mirror) = Registry::start(&tmp.path().join("mirror"), None) else { return };
    // The agent knows both as plain-HTTP registries and the mirror as the private one's mirror.
    let cfg = format!(
        "[registry]\ninsecure = [\"{p}\", \"{m}\"]\n[registry.mirrors]\n\"{p}\" = [\"{m}\"]\n",
        p = private.host(),
        m = mirror.host()
    );
    let a = Agent::start_with_config("login", &cfg);
    let (arch, _) = app_archive(&a, tmp.path(), "priv", "private");
    private.push(&arch, "team/app:1", Some("alice:s3cret"));
    let name = format!("{}/team/app:1", private.host());

    // The mirror does not have it, the origin refuses strangers.
    let r = a.ctl(&["pull", &name]);
    assert_eq!(r.code, 1, "anonymous pull of a private image: {}", r.stdout);
    assert!(r.stderr.to_lowercase().contains("authoriz"), "{}", r.stderr);
    let r = a.ctl_stdin(&["login", "-u", "alice", "--password-stdin", &private.host()], b"wrong\n");
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("wrong username or password"), "{}", r.stderr);
    let r = a.ctl_stdin(&["login", "-u", "alice", "--password-stdin", &private.host()], b"s3cret\n");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("Login Succeeded"));
    let auth = a.dir.path().join("auth.json");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&auth).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "credentials file is private");
    let r = a.ctl(&["pull", &name]);
    assert_eq!(r.code, 0, "pull after login: {}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("mirror") && r.stdout.contains("failed"), "the mirror was tried first: {}", r.stdout);
    assert_eq!(a.ok(&["run", "--rm", "--network", "none", &name, "cat", "/app/hello"]), "private");
    // The audit log never holds the password.
    assert!(!std::fs::read_to_string(a.root().join("audit.log")).unwrap_or_default().contains("s3cret"));

    // Now the mirror has an image under the origin's name: it is served from there, even
    // though the origin does not have it.
    let (m, _) = app_archive(&a, tmp.path(), "mirrored", "from-mirror");
    mirror.push(&m, "team/only-on-mirror:1", None);
    let name = format!("{}/team/only-on-mirror:1", private.host());
    let r = a.ctl(&["pull", &name]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(a.ok(&["run", "--rm", "--network", "none", &name, "cat", "/app/hello"]), "from-mirror");
    a.ok(&["logout", &private.host()]);
    assert!(!std::fs::read_to_string(&auth).unwrap().contains("alice"));
    a.assert_no_leftovers();
}
