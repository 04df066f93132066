//! Named volumes through agentctl: data that outlives containers (and an agent crash),
//! removal refused while in use, anonymous volumes and `rm -v`, the image's content copied
//! into a new volume, tmpfs-typed volumes, `--volumes-from`, bad names, concurrent first
//! use and prune. Nothing is left behind.

use agent_proto::v1 as pb;
use e2e::{eventually, privileged, Agent};

const IMG: &str = "local/busybox:latest";

fn volume_dirs(a: &Agent) -> Vec<String> {
    std::fs::read_dir(a.root().join("volumes"))
        .map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

fn volume_names(a: &Agent) -> Vec<String> {
    a.ok(&["volume", "ls", "-q"]).lines().map(str::to_string).collect()
}

fn done(a: &Agent) {
    let ids = a.ok(&["ps", "-aq"]);
    for id in ids.split_whitespace() {
        a.ok(&["rm", "-f", id]);
    }
    for v in volume_names(a) {
        a.ok(&["volume", "rm", &v]);
    }
    assert!(volume_dirs(a).is_empty(), "leftover volume dirs: {:?}", volume_dirs(a));
    a.assert_no_leftovers();
}

#[test]
fn named_volume_keeps_data_and_is_refused_while_in_use() {
    if !privileged("named_volume") {
        return;
    }
    let mut a = Agent::start("vols");
    a.ok(&["run", "--rm", "-v", "data:/d", IMG, "sh", "-c", "echo hello > /d/f"]);
    assert_eq!(a.ok(&["run", "--rm", "-v", "data:/d:ro", IMG, "cat", "/d/f"]), "hello");
    // A read-only mount is read-only.
    let r = a.ctl(&["run", "--rm", "-v", "data:/d:ro", IMG, "touch", "/d/g"]);
    assert_ne!(r.code, 0, "{}{}", r.stdout, r.stderr);

    let v: serde_json::Value = serde_json::from_str(&a.ok(&["volume", "inspect", "data"])).unwrap();
    let v = &v[0];
    assert_eq!(v["Name"], "data");
    assert_eq!(v["Driver"], "local");
    assert_eq!(v["Scope"], "local");
    let mp = a.root().join("volumes/data/_data");
    assert_eq!(v["Mountpoint"], mp.display().to_string());
    assert!(v["CreatedAt"].as_str().unwrap().starts_with("20"), "{v}");
    assert_eq!(std::fs::read_to_string(mp.join("f")).unwrap(), "hello\n");

    // In use by a container (even a stopped one): refused, naming it.
    let id = a.ok(&["create", "-v", "data:/d", IMG, "true"]);
    let r = a.ctl(&["volume", "rm", "data"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("volume is in use - [") && r.stderr.contains(&id), "{}", r.stderr);
    assert!(mp.join("f").exists());
    let m = &a.inspect(&id)["Mounts"][0];
    assert_eq!(
        (m["Type"].as_str(), m["Name"].as_str(), m["Destination"].as_str()),
        (Some("volume"), Some("data"), Some("/d"))
    );
    a.ok(&["rm", &id]);
    // Kept across the container's removal and an agent crash.
    a.crash_and_restart();
    assert_eq!(a.ok(&["run", "--rm", "-v", "data:/d", IMG, "cat", "/d/f"]), "hello");
    assert_eq!(a.ok(&["volume", "rm", "data"]), "data");
    assert!(!a.root().join("volumes/data").exists());
    let r = a.ctl(&["volume", "rm", "data"]);
    assert!(r.code != 0 && r.stderr.contains("no such volume: data"), "{}", r.stderr);
    // docker's volume events: create (once), a mount per start, destroy.
    let ev = a.ok(&["events", "--no-follow", "--filter", "type=volume"]);
    let actions: Vec<&str> = ev.lines().filter(|l| l.contains(" data ")).filter_map(|l| l.split(' ').nth(3)).collect();
    assert_eq!(actions, ["create", "mount", "mount", "mount", "mount", "destroy"], "{ev}");
    assert!(ev.contains("destination=/d") && ev.contains("read/write=false"), "{ev}");
    a.ok(&["volume", "rm", "-f", "data"]);

    // The image's files under the path land in a new volume, with their ownership.
    a.ok(&["run", "--rm", "-v", "etc:/etc", IMG, "true"]);
    let passwd = a.root().join("volumes/etc/_data/passwd");
    assert!(std::fs::read_to_string(&passwd).unwrap().contains("root:"), "{}", passwd.display());
    assert!(a.ok(&["run", "--rm", "-v", "etc:/x", IMG, "cat", "/x/group"]).contains("root:"));
    // Into an empty one made by `volume create` too, but not into one that has data.
    a.ok(&["volume", "create", "--label", "k=v", "empty"]);
    a.ok(&["run", "--rm", "-v", "empty:/etc", IMG, "test", "-f", "/etc/passwd"]);
    a.ok(&["run", "--rm", "-v", "full:/d", IMG, "touch", "/d/mine"]);
    a.ok(&["run", "--rm", "-v", "full:/etc", IMG, "test", "!", "-e", "/etc/passwd"]);
    // nocopy: an empty volume stays empty.
    a.ok(&["run", "--rm", "-v", "bare:/etc:nocopy", IMG, "test", "!", "-e", "/etc/passwd"]);
    a.ok(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,src=bare2,dst=/etc,volume-nocopy",
        IMG,
        "test",
        "!",
        "-e",
        "/etc/passwd",
    ]);
    let ls: Vec<serde_json::Value> = a
        .ok(&["volume", "ls", "--filter", "label=k=v", "--format", "json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(ls.len(), 1, "{ls:?}");
    assert_eq!(ls[0]["Name"], "empty");
    done(&a);
}

#[test]
fn bad_names_are_refused_and_nothing_is_made() {
    if !privileged("volume_names") {
        return;
    }
    let a = Agent::start("volbad");
    for bad in ["_x", "a b", "x"] {
        let r = a.ctl(&["volume", "create", bad]);
        assert!(r.code != 0 && r.stderr.contains(&format!("{bad:?}")), "{bad}: {}", r.stderr);
    }
    let r = a.ctl(&["run", "--rm", "-v", "_bad:/d", IMG, "true"]);
    assert!(r.code != 0 && r.stderr.contains("_bad"), "{}", r.stderr);
    let r = a.ctl(&["volume", "create", "-o", "size=1m", "opts"]);
    assert!(r.code != 0 && r.stderr.contains("\"size\""), "{}", r.stderr);
    let code = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let ch = agent_proto::connect(&a.host).await.expect("connect");
        let mut v = pb::volume_service_client::VolumeServiceClient::new(ch);
        v.create(pb::CreateVolumeRequest { name: "-x".into(), ..Default::default() }).await.unwrap_err().code()
    });
    assert_eq!(code, tonic::Code::InvalidArgument);
    assert!(volume_names(&a).is_empty() && volume_dirs(&a).is_empty());
    assert_eq!(a.ok(&["ps", "-aq"]), "");
    done(&a);
}

#[test]
fn anonymous_volumes_go_with_rm_v_and_volumes_from_shares() {
    if !privileged("anon_volumes") {
        return;
    }
    let a = Agent::start("volanon");
    let c1 = a.ok(&["create", "-v", "/cache", IMG, "true"]);
    let anon = volume_names(&a);
    assert!(anon.len() == 1 && anon[0].len() == 64, "{anon:?}");
    a.ok(&["rm", &c1]);
    assert_eq!(volume_names(&a), anon, "plain rm keeps the anonymous volume");
    a.ok(&["volume", "rm", &anon[0]]);

    let c2 = a.ok(&["create", "-v", "/cache", "-v", "keep:/k", IMG, "true"]);
    assert_eq!(volume_names(&a).len(), 2);
    a.ok(&["rm", "-v", &c2]);
    assert_eq!(volume_names(&a), vec!["keep".to_string()], "rm -v removes only the anonymous one");
    a.ok(&["run", "--rm", "-v", "/x", "--mount", "type=volume,target=/y", IMG, "true"]);
    assert_eq!(volume_names(&a), vec!["keep".to_string()], "--rm removes anonymous volumes");

    // --volumes-from: the named and the anonymous volumes of another container.
    a.ok(&[
        "run",
        "-d",
        "--name",
        "src",
        "-v",
        "keep:/s",
        "-v",
        "/a",
        IMG,
        "sh",
        "-c",
        "echo v > /s/f; echo w > /a/f; sleep 1000",
    ]);
    let got = a.ok(&["run", "--rm", "--volumes-from", "src", IMG, "sh", "-c", "cat /s/f /a/f"]);
    assert_eq!(got, "v\nw");
    let r = a.ctl(&["run", "--rm", "--volumes-from", "src:ro", IMG, "touch", "/s/g"]);
    assert_ne!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let r = a.ctl(&["run", "--rm", "--volumes-from", "nosuch", IMG, "true"]);
    assert!(r.code != 0 && r.stderr.contains("nosuch"), "{}", r.stderr);
    // Listed as not dangling while src uses it; named by --name.
    a.ok(&["volume", "create", "--name", "loose"]);
    assert_eq!(a.ok(&["volume", "ls", "-q", "--filter", "dangling=true"]), "loose");
    a.ok(&["volume", "rm", "loose"]);
    a.ok(&["rm", "-f", "-v", "src"]);
    assert_eq!(volume_names(&a), vec!["keep".to_string()]);

    // --mount type=volume with a name.
    a.ok(&["run", "--rm", "--mount", "type=volume,source=keep,target=/m", IMG, "test", "-f", "/m/f"]);
    done(&a);
}

#[test]
fn tmpfs_volume_concurrent_first_use_and_prune() {
    if !privileged("tmpfs_volume") {
        return;
    }
    let a = Agent::start("voltmp");
    a.ok(&["volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=8m", "tv"]);
    let m = a.ok(&["run", "--rm", "-v", "tv:/t", IMG, "grep", " /t ", "/proc/mounts"]);
    assert!(m.starts_with("tmpfs /t tmpfs") && m.contains("size=8192k"), "{m}");
    let mp = a.root().join("volumes/tv/_data").display().to_string();
    assert!(std::fs::read_to_string("/proc/self/mounts").unwrap().contains(&mp));
    a.ok(&["volume", "rm", "tv"]);
    assert!(!std::fs::read_to_string("/proc/self/mounts").unwrap().contains(&mp), "tmpfs left mounted");

    // A bind-typed volume: a host directory, mounted at first use; removing the volume
    // leaves the host directory and its files alone.
    let host_dir = a.dir.path().join("share");
    std::fs::create_dir_all(&host_dir).unwrap();
    let dev = format!("device={}", host_dir.display());
    a.ok(&["volume", "create", "-o", "type=none", "-o", &dev, "-o", "o=bind", "bv"]);
    a.ok(&["run", "--rm", "-v", "bv:/b", IMG, "sh", "-c", "echo from-ctr > /b/f"]);
    assert_eq!(std::fs::read_to_string(host_dir.join("f")).unwrap(), "from-ctr\n");
    a.ok(&["volume", "rm", "bv"]);
    assert_eq!(std::fs::read_to_string(host_dir.join("f")).unwrap(), "from-ctr\n", "the host's data stays");
    let bv = a.root().join("volumes/bv").display().to_string();
    assert!(!std::fs::read_to_string("/proc/self/mounts").unwrap().contains(&bv), "{bv} left mounted");

    // Ten creates naming one new volume: made once, none fails.
    let runs: Vec<_> = (0..10)
        .map(|_| {
            a.cmd()
                .args(["run", "--rm", "-v", "same:/d", IMG, "touch", "/d/x"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in runs {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(volume_names(&a), vec!["same".to_string()]);
    // Each `--rm` container is gone when its client returns. Once in CI the prune below
    // found "same" still in use (cause not found): say so with what the agent knew, and
    // wait for the deferred removal, so what follows is about prune.
    let left = a.ok(&["ps", "-aq"]);
    if !left.is_empty() {
        eprintln!("WARNING: --rm containers left after their clients returned:\n{}\n{}", a.ok(&["ps", "-a"]), a.log());
        assert!(eventually(30, || a.ok(&["ps", "-aq"]).is_empty()), "--rm containers never removed: {left}");
    }

    // prune: only the unused ones (and with a label filter, only those matching).
    a.ok(&["volume", "create", "--label", "x=1", "old"]);
    let used = a.ok(&["create", "-v", "used:/u", IMG, "true"]);
    let out = a.ok(&["volume", "prune", "-f", "--filter", "label=x=1"]);
    assert!(out.contains("old") && out.contains("Total reclaimed space"), "{out}");
    assert_eq!(volume_names(&a), vec!["same".to_string(), "used".to_string()]);
    let out = a.ok(&["volume", "prune", "-f"]);
    assert!(
        out.contains("same") && !out.contains("used"),
        "{out}\ncontainers: {}\nagent log: {}",
        a.ok(&["ps", "-a"]),
        a.log()
    );
    assert_eq!(volume_names(&a), vec!["used".to_string()]);
    let df = a.ok(&["system", "df"]);
    assert!(df.contains("Local Volumes"), "{df}");
    a.ok(&["rm", &used]);
    done(&a);
}

#[test]
fn a_crash_between_a_volume_dir_and_its_record_is_repaired() {
    if !privileged("volume_crash") {
        return;
    }
    let mut a = Agent::start("volcrash");
    a.env = vec![("AGENTD_CRASH_AT".into(), "volume.after_dir".into())];
    a.crash_and_restart();
    assert_ne!(a.ctl(&["volume", "create", "cv"]).code, 0, "the agent should have died at volume.after_dir");
    a.env.clear();
    a.crash_and_restart();
    assert!(volume_names(&a).is_empty() && volume_dirs(&a).is_empty(), "{:?}", volume_dirs(&a));
    assert!(a.log().contains("start-up sweep: removed a volume directory without a record"));

    a.ok(&["volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "cv"]);
    a.ok(&["run", "--rm", "-v", "cv:/v", IMG, "true"]);
    a.env = vec![("AGENTD_CRASH_AT".into(), "volume.after_record".into())];
    a.crash_and_restart();
    assert_ne!(a.ctl(&["volume", "rm", "cv"]).code, 0, "the agent should have died at volume.after_record");
    a.env.clear();
    a.crash_and_restart();
    // The record went before the crash: the sweep unmounted and removed the directory.
    assert!(volume_names(&a).is_empty() && volume_dirs(&a).is_empty(), "{:?}", volume_dirs(&a));

    // `rm -v` cut short after the container's directory went: the removal finished at the
    // next start takes the anonymous volume too.
    let c = a.ok(&["create", "-v", "/anon", IMG, "true"]);
    assert_eq!(volume_names(&a).len(), 1);
    a.env = vec![("AGENTD_CRASH_AT".into(), "remove.after_dir".into())];
    a.crash_and_restart();
    assert_ne!(a.ctl(&["rm", "-v", &c]).code, 0, "the agent should have died at remove.after_dir");
    a.env.clear();
    a.crash_and_restart();
    assert_eq!(a.ok(&["ps", "-aq"]), "");
    assert!(volume_names(&a).is_empty() && volume_dirs(&a).is_empty(), "{:?}", volume_dirs(&a));

    // A record whose directory was removed by hand: made again (empty) at the next start.
    a.ok(&["run", "--rm", "-v", "lost:/l", IMG, "touch", "/l/x"]);
    std::fs::remove_dir_all(a.root().join("volumes/lost")).unwrap();
    let r = a.ctl(&["run", "--rm", "-v", "lost:/l", IMG, "true"]);
    assert!(r.code != 0 && r.stderr.contains("volume lost: its directory"), "{}", r.stderr);
    a.crash_and_restart();
    assert!(a.log().contains("the directory of a volume was gone; made it again"));
    a.ok(&["run", "--rm", "-v", "lost:/l", IMG, "test", "!", "-e", "/l/x"]);
    done(&a);
}

#[test]
fn an_images_volume_is_an_anonymous_volume_with_its_content() {
    if !privileged("image_volume") {
        return;
    }
    let a = Agent::start("volimg");
    let ctx = a.dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM local/busybox\nRUN mkdir /data && echo seed > /data/s && chown 1000:1001 /data/s\nVOLUME /data\n",
    )
    .unwrap();
    a.ok(&["build", "-t", "local/withvol:1", ctx.to_str().unwrap()]);
    assert_eq!(a.ok(&["run", "--rm", "local/withvol:1", "cat", "/data/s"]), "seed");
    assert!(volume_names(&a).is_empty(), "--rm removes the image's anonymous volume");

    let id = a.ok(&["create", "local/withvol:1", "true"]);
    let vols = volume_names(&a);
    assert_eq!(vols.len(), 1, "{vols:?}");
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(a.root().join("volumes").join(&vols[0]).join("_data/s")).unwrap();
    assert_eq!((m.uid(), m.gid()), (1000, 1001), "ownership kept in the copy");
    a.ok(&["rm", "-v", &id]);
    // A mount of the container's own on the path replaces the image's volume.
    a.ok(&["run", "--rm", "-v", "mine:/data", "local/withvol:1", "cat", "/data/s"]);
    assert_eq!(volume_names(&a), vec!["mine".to_string()]);
    done(&a);
}
