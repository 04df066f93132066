//! Create, start, recover and the firewall reconcile on fake host seams: every step that
//! touches the host fails in turn, and nothing may be left behind (no cgroup, no firewall
//! entry, no lease, no directory, no record in a wrong state); the caller gets the error.

use super::fakes::FakeHost;
use super::{ContainerSpec, NetConfig, Runtime, RuntimeConfig, RuntimeError, State};
use crate::image::ImageStore;
use crate::store::{Kind, Store};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Builds a runtime on `h` over the state in `dir` (made on first use, with a tiny image).
async fn runtime(h: &Arc<FakeHost>, dir: &Path) -> Arc<Runtime> {
    runtime_with(h, dir, None).await
}

/// [`runtime`] with pod networks from CNI.
pub(super) async fn runtime_with(h: &Arc<FakeHost>, dir: &Path, cni: Option<crate::network::cni::Cni>) -> Arc<Runtime> {
    let root = dir.join("root");
    std::fs::create_dir_all(&root).unwrap();
    let store = Arc::new(Store::open(&root.join("meta.redb")).unwrap());
    let images = Arc::new(ImageStore::open(&root, Arc::clone(&store)).unwrap());
    if images.resolve("test/img:1").is_err() {
        let tar = dir.join("rootfs.tar");
        let mut b = tar::Builder::new(std::fs::File::create(&tar).unwrap());
        let mut hd = tar::Header::new_gnu();
        hd.set_size(3);
        hd.set_mode(0o755);
        hd.set_uid(0);
        hd.set_gid(0);
        hd.set_mtime(0);
        hd.set_cksum();
        b.append_data(&mut hd, "bin/true", &b"#!\n"[..]).unwrap();
        b.finish().unwrap();
        let opts = crate::image::archive::ImportOptions {
            rootfs: true,
            tags: vec!["test/img:1".into()],
            cmd: vec!["/bin/true".into()],
            env: vec![],
        };
        crate::image::archive::import(&images, &tar, &opts).unwrap();
    }
    let cfg = RuntimeConfig {
        instance: "unit".into(),
        root,
        run_dir: dir.join("run"),
        capacity: Default::default(),
        sysctl: Default::default(),
        network: NetConfig { bridge_subnet: "10.250.0.0/24".into(), ..Default::default() },
        userns: Default::default(),
        cni,
        logs: Default::default(),
    };
    Runtime::open(cfg, store, images, h.host()).await.unwrap()
}

/// A container on the default bridge with one published port (so the firewall table names
/// its address).
fn spec(name: &str) -> ContainerSpec {
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap();
    ContainerSpec {
        name: name.into(),
        image: "test/img:1".into(),
        command: vec!["/bin/true".into()],
        ports: vec![format!("127.0.0.1:{port}:80")],
        ..Default::default()
    }
}

fn table_has(h: &FakeHost, ip: &str) -> bool {
    h.table.lock().unwrap().as_deref().is_some_and(|t| t.contains(ip))
}

async fn eventually(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..250 {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f()
}

#[tokio::test]
async fn start_failing_at_any_step_leaves_nothing_and_a_retry_starts() {
    // Fail points are process-wide: these tests take turns with the one that sets them.
    let _turn = fail::FailScenario::setup();
    for &step in FakeHost::STEPS {
        let d = tempfile::tempdir().unwrap();
        let h = FakeHost::new();
        let rt = runtime(&h, d.path()).await;
        let rec = rt.create(spec("c1")).await.unwrap();
        assert!(!rec.ip.is_empty(), "on the default bridge");
        h.faults.set(step);
        let e = rt.start("c1").await.expect_err(step);
        let msg = e.to_string();
        match step {
            "launch.report" => assert!(matches!(e, RuntimeError::StartFailed { code: 127, .. }), "{step}: {msg}"),
            "firewall.apply" => {
                assert!(matches!(e, RuntimeError::StartFailed { code: 125, .. }), "{step}: {msg}");
                assert!(msg.contains("publishing ports / firewall: fake nft: injected"), "{step}: {msg}");
                h.kill_shim();
            }
            _ => assert!(msg.contains("injected"), "{step}: {msg}"),
        }
        assert!(h.cgroups.lock().unwrap().is_empty(), "{step}: cgroups left: {:?}", h.cgroups.lock().unwrap());
        assert!(!table_has(&h, &rec.ip), "{step}: its address stays in the firewall table");
        let after = rt.load(&rec.id).unwrap();
        assert_ne!(after.state, State::Running, "{step}");
        assert_eq!(after.pid, 0, "{step}");
        // Nothing stale blocks the next try.
        h.faults.clear();
        let ok = rt.start("c1").await.unwrap_or_else(|e| panic!("{step}: retry: {e}"));
        assert_eq!(ok.state, State::Running, "{step}");
        assert_eq!(h.cgroups.lock().unwrap().len(), 2, "{step}: container and shim cgroups");
        assert!(table_has(&h, &rec.ip), "{step}: published after the retry");
        // The exit path takes it all back.
        h.kill_shim();
        assert!(
            eventually(|| h.cgroups.lock().unwrap().is_empty() && !table_has(&h, &rec.ip)).await,
            "{step}: after the exit"
        );
        assert!(eventually(|| rt.load(&rec.id).is_ok_and(|r| r.state == State::Exited)).await, "{step}");
    }
}

#[tokio::test]
async fn create_failing_after_its_lease_leaves_no_lease_dir_or_record() {
    let scenario = fail::FailScenario::setup();
    for point in ["create.dir", "create.record"] {
        let d = tempfile::tempdir().unwrap();
        let h = FakeHost::new();
        let rt = runtime(&h, d.path()).await;
        fail::cfg(point, "return").unwrap();
        let vols = ["/anon", "kept:/k"].iter().map(|v| match super::spec::parse_volume_arg(v).unwrap() {
            super::spec::VolumeArg::Named(n) => n,
            super::spec::VolumeArg::Bind(_) => unreachable!("a volume"),
        });
        let e = rt.create(ContainerSpec { named_volumes: vols.collect(), ..spec("c1") }).await.expect_err(point);
        fail::remove(point);
        assert!(e.to_string().contains(point), "{e}");
        // Its anonymous volume went with it; a named one stays, as docker's.
        let names: Vec<String> = rt.volume_list().unwrap().into_iter().map(|u| u.volume.name).collect();
        assert_eq!(names, ["kept"], "{point}");
        let vdirs: Vec<_> = std::fs::read_dir(d.path().join("root/volumes")).unwrap().flatten().collect();
        assert_eq!(vdirs.len(), 1, "{point}: {vdirs:?}");
        assert!(rt.list().unwrap().is_empty(), "{point}: a record stayed");
        assert!(rt.store.keys(Kind::Lease).unwrap().is_empty(), "{point}: a lease stayed");
        let dirs: Vec<_> = std::fs::read_dir(d.path().join("root/containers")).unwrap().flatten().collect();
        assert!(dirs.is_empty(), "{point}: container directories stayed: {dirs:?}");
        // The same name and the same address are free again.
        let rec = rt.create(spec("c1")).await.unwrap();
        assert_eq!(rec.ip, "10.250.0.2", "{point}");
    }
    scenario.teardown();
}

#[tokio::test]
async fn a_failed_create_gives_its_fixed_ip_back() {
    let scenario = fail::FailScenario::setup();
    for point in ["create.dir", "create.record"] {
        let d = tempfile::tempdir().unwrap();
        let h = FakeHost::new();
        let rt = runtime(&h, d.path()).await;
        rt.create_network("fixnet", "10.251.0.0/24", false, Default::default()).await.unwrap();
        let fixed = |name: &str| ContainerSpec {
            network: "fixnet".into(),
            ports: vec![],
            net_opts: super::net_opts::NetOpts { ip: Some("10.251.0.9".parse().unwrap()), ..Default::default() },
            ..spec(name)
        };
        fail::cfg(point, "return").unwrap();
        let e = rt.create(fixed("c1")).await.expect_err(point);
        fail::remove(point);
        assert!(e.to_string().contains(point), "{e}");
        assert!(rt.store.keys(Kind::Lease).unwrap().is_empty(), "{point}: the fixed lease stayed");
        let rec = rt.create(fixed("c1")).await.unwrap();
        assert_eq!(rec.ip, "10.251.0.9", "{point}");
        assert_eq!(rt.store.keys(Kind::Lease).unwrap(), ["fixnet/10.251.0.9"], "{point}");
        // Taken now: refused naming the holder, and the refusal takes nothing.
        let e = rt.create(fixed("c2")).await.expect_err(point);
        assert!(matches!(&e, RuntimeError::AlreadyExists(m) if m.contains("by container c1")), "{point}: {e}");
        assert_eq!(rt.list().unwrap().len(), 1, "{point}");
        rt.remove("c1", true).await.unwrap();
        assert!(rt.store.keys(Kind::Lease).unwrap().is_empty(), "{point}: freed by rm");
    }
    scenario.teardown();
}

#[tokio::test]
async fn a_create_refused_before_any_change_leaves_nothing() {
    // Fail points are process-wide: these tests take turns with the one that sets them.
    let _turn = fail::FailScenario::setup();
    let d = tempfile::tempdir().unwrap();
    let h = FakeHost::new();
    let rt = runtime(&h, d.path()).await;
    rt.create(spec("c1")).await.unwrap();
    let leases = rt.store.keys(Kind::Lease).unwrap();
    for (bad, what) in [
        (ContainerSpec { image: "no/such:1".into(), ..spec("c2") }, "image"),
        (spec("c1"), "name"),
        (ContainerSpec { network: "nonet".into(), ..spec("c3") }, "network"),
        (
            ContainerSpec { volumes: vec![super::spec::parse_volume("/no/such/dir:/data").unwrap()], ..spec("c4") },
            "volume",
        ),
    ] {
        assert!(rt.create(bad).await.is_err(), "{what}");
        assert_eq!(rt.list().unwrap().len(), 1, "{what}");
        assert_eq!(rt.store.keys(Kind::Lease).unwrap(), leases, "{what}");
    }
}

#[test]
fn recover_readopts_a_running_container_and_records_one_that_exited_meanwhile() {
    let _turn = fail::FailScenario::setup();
    let d = tempfile::tempdir().unwrap();
    let h = FakeHost::new();
    let tokio_rt = || tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    // First agent: starts c1 and c2, then dies (its runtime and every task go).
    let (c1, c2) = {
        let t = tokio_rt();
        let ids = t.block_on(async {
            let rt = runtime(&h, d.path()).await;
            let a = rt.create(spec("c1")).await.unwrap();
            rt.start("c1").await.unwrap();
            let s1 = h.shim.lock().unwrap().take();
            let b = rt.create(spec("c2")).await.unwrap();
            rt.start("c2").await.unwrap();
            *h.shim.lock().unwrap() = s1;
            (a, b)
        });
        t.shutdown_timeout(Duration::from_secs(2));
        ids
    };
    // While it is away, c2's shim exits (the fake holds c1's; c2's child is reaped here).
    // Then a new agent opens the same state.
    let t = tokio_rt();
    t.block_on(async {
        let c2_rec_pid = {
            let store = Store::open(&d.path().join("root/meta.redb")).unwrap();
            store.get::<super::ContainerRecord>(Kind::Container, &c2.id).unwrap().unwrap().shim_pid
        };
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(c2_rec_pid), nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(c2_rec_pid), None);
        let rt = runtime(&h, d.path()).await;
        assert_eq!(rt.load(&c1.id).unwrap().state, State::Running, "c1's shim lives: re-adopted");
        assert!(
            eventually(|| rt.load(&c2.id).is_ok_and(|r| r.state == State::Exited)).await,
            "c2 exited while the agent was away"
        );
        assert!(eventually(|| !table_has(&h, &c2.ip)).await, "c2 unpublished");
        assert!(table_has(&h, &c1.ip), "c1 stays published");
        h.kill_shim();
        assert!(eventually(|| rt.load(&c1.id).is_ok_and(|r| r.state == State::Exited)).await, "c1's exit seen");
        assert!(eventually(|| h.cgroups.lock().unwrap().is_empty()).await, "{:?}", h.cgroups.lock().unwrap());
    });
}

#[tokio::test]
async fn the_firewall_counts_a_starting_container_as_running() {
    // Fail points are process-wide: these tests take turns with the one that sets them.
    let _turn = fail::FailScenario::setup();
    let d = tempfile::tempdir().unwrap();
    let h = FakeHost::new();
    let rt = runtime(&h, d.path()).await;
    let rec = rt.create(spec("c1")).await.unwrap();
    rt.reconcile_firewall().unwrap();
    assert!(!table_has(&h, &rec.ip), "created, not running");
    {
        let _starting = rt.mark_starting(&rec.id);
        rt.reconcile_firewall().unwrap();
        assert!(table_has(&h, &rec.ip), "starting counts as running");
    }
    rt.reconcile_firewall().unwrap();
    assert!(!table_has(&h, &rec.ip), "no longer starting");
    h.faults.set("firewall.apply");
    let _starting = rt.mark_starting(&rec.id);
    let e = rt.reconcile_firewall().unwrap_err();
    assert!(e.to_string().contains("injected"), "{e}");
}

#[tokio::test]
async fn the_start_up_sweep_removes_what_no_record_accounts_for() {
    let _turn = fail::FailScenario::setup();
    let d = tempfile::tempdir().unwrap();
    let h = FakeHost::new();
    let rt = runtime(&h, d.path()).await;
    let keep = rt.create(spec("c1")).await.unwrap();
    rt.start("c1").await.unwrap();
    // What a crash in the middle of a create or a removal leaves.
    let stray = "0badc0ffee0badc0ffee0badc0ffee0badc0ffee0badc0ffee0badc0ffee0bad";
    std::fs::create_dir_all(d.path().join("root/containers").join(stray).join("upper")).unwrap();
    rt.store.put(Kind::Lease, "bridge/10.250.0.99", &stray.to_string()).unwrap();
    for cg in [stray.to_string(), format!("shim-{stray}"), "an-admins-parent".to_string()] {
        use crate::cgroups::CgroupOps;
        h.create(&cg).unwrap();
    }
    rt.sweep();
    assert!(!d.path().join("root/containers").join(stray).exists(), "the directory without a record");
    let leases = rt.store.keys(Kind::Lease).unwrap();
    assert_eq!(leases, [format!("bridge/{}", keep.ip)], "only the live container's lease stays");
    let cgs = h.cgroups.lock().unwrap().clone();
    assert_eq!(
        cgs,
        ["an-admins-parent".to_string(), keep.id.clone(), format!("shim-{}", keep.id)].into_iter().collect(),
        "a cgroup not named as the agent names its own (a --cgroup-parent) stays"
    );
    assert!(d.path().join("root/containers").join(&keep.id).is_dir(), "the live container keeps its directory");
    h.kill_shim();
}
