//! Sandboxes on CNI over the fake host seams, with fake plugins (shell scripts that log
//! their calls): ADD after the infra starts, a failed ADD leaves no sandbox, a refused
//! removal runs no DEL, a removal runs DEL once.

use super::failure_tests::runtime_with;
use super::fakes::FakeHost;
use super::sandbox::{CriMeta, SandboxSpec};
use crate::network::cni::Cni;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Plugins `ok` (answers 10.7.0.9) and `bad` (fails ADD) in `dir/bin`, logging
/// `type command netns` lines to `dir/log`; a conflist of `types` in `dir/conf`.
fn cni(dir: &Path, types: &[&str]) -> Cni {
    let (bin, conf) = (dir.join("bin"), dir.join("conf"));
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&conf).unwrap();
    let log = dir.join("log");
    for (name, add) in [
        ("ok", r#"echo '{"cniVersion":"1.0.0","ips":[{"address":"10.7.0.9/24"}]}'"#),
        ("bad", r#"echo '{"code":7,"msg":"no bridge for you"}'; exit 1"#),
    ] {
        let script = format!(
            "#!/bin/sh\ncat >/dev/null\necho {name} $CNI_COMMAND $CNI_NETNS >> {}\n[ \"$CNI_COMMAND\" = ADD ] && {{ {add}; }}\nexit 0\n",
            log.display()
        );
        std::fs::write(bin.join(name), script).unwrap();
        std::fs::set_permissions(bin.join(name), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let plugins: Vec<serde_json::Value> = types.iter().map(|t| serde_json::json!({ "type": t })).collect();
    let list = serde_json::json!({"cniVersion": "1.0.0", "name": "unit", "plugins": plugins});
    std::fs::write(conf.join("10-unit.conflist"), list.to_string()).unwrap();
    Cni::new(conf.to_str().unwrap(), bin.to_str().unwrap(), dir.join("cache"))
}

fn log(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("log")).unwrap_or_default().lines().map(str::to_string).collect()
}

fn pod() -> SandboxSpec {
    SandboxSpec {
        meta: CriMeta { name: "p".into(), namespace: "ns".into(), uid: "u1".into(), attempt: 0 },
        pause_image: "test/img:1".into(),
        pause_command: vec!["/bin/true".into()],
        ports: vec!["8080:80/tcp".into()],
        ..Default::default()
    }
}

#[tokio::test]
async fn a_failed_add_removes_the_sandbox() {
    let _turn = fail::FailScenario::setup();
    let d = tempfile::tempdir().unwrap();
    let c = cni(d.path(), &["ok", "bad"]);
    let rt = runtime_with(&FakeHost::new(), d.path(), Some(c)).await;
    let e = rt.run_sandbox(pod()).await.unwrap_err().to_string();
    assert_eq!(e, "CNI plugin bad failed on ADD: no bridge for you (CNI error code 7)");
    assert!(rt.cri_records("sandbox").unwrap().is_empty(), "no sandbox left");
    let l = log(d.path());
    assert_eq!(l.len(), 4, "{l:?}");
    assert!(l[0].starts_with("ok ADD /proc/") && l[0].ends_with("/ns/net"), "{l:?}");
    assert_eq!(&l[2][..7], "bad DEL");
    assert_eq!(&l[3][..6], "ok DEL");
}

#[tokio::test]
async fn del_runs_once_and_only_when_the_removal_goes_ahead() {
    let _turn = fail::FailScenario::setup();
    let d = tempfile::tempdir().unwrap();
    let c = cni(d.path(), &["ok"]);
    let rt = runtime_with(&FakeHost::new(), d.path(), Some(c)).await;
    let sb = rt.run_sandbox(pod()).await.unwrap();
    assert_eq!(sb.spec.network, "none", "the plugins wire a namespace of its own");
    assert!(sb.ports.is_empty(), "portmap publishes the ports, not our firewall");
    assert_eq!(rt.pod_ips(&sb).unwrap(), ["10.7.0.9"]);
    let e = rt.remove(&sb.id, false).await.unwrap_err().to_string();
    assert!(e.contains("it is running"), "{e}");
    assert_eq!(log(d.path()).len(), 1, "a refused removal runs no DEL");
    rt.remove_sandbox(&sb.id).await.unwrap();
    let l = log(d.path());
    assert_eq!(l.len(), 2, "{l:?}");
    assert_eq!(l[1], format!("ok DEL /proc/{}/ns/net", sb.pid), "DEL while the namespace exists");
    rt.remove_sandbox(&sb.id).await.unwrap();
    assert_eq!(log(d.path()).len(), 2, "idempotent");
}

#[tokio::test]
async fn a_failing_del_fails_the_stop_and_a_retry_deletes() {
    let _turn = fail::FailScenario::setup();
    let d = tempfile::tempdir().unwrap();
    let c = cni(d.path(), &["ok"]);
    let bin = c.bin_dirs[0].clone();
    let rt = runtime_with(&FakeHost::new(), d.path(), Some(c)).await;
    let sb = rt.run_sandbox(pod()).await.unwrap();
    // The plugin now refuses DEL.
    let good = std::fs::read_to_string(bin.join("ok")).unwrap();
    std::fs::write(bin.join("ok"), good.replace("exit 0", "echo '{\"code\":9,\"msg\":\"busy\"}'; exit 1")).unwrap();
    let e = rt.stop_sandbox(&sb.id).await.unwrap_err().to_string();
    assert_eq!(e, "CNI plugin ok failed on DEL: busy (CNI error code 9)");
    assert_eq!(rt.sandbox(&sb.id).unwrap().state, super::State::Running, "kept, with its namespace, for a retry");
    std::fs::write(bin.join("ok"), good).unwrap();
    rt.stop_sandbox(&sb.id).await.unwrap();
    rt.remove_sandbox(&sb.id).await.unwrap();
    let dels = log(d.path()).iter().filter(|l| l.starts_with("ok DEL")).count();
    assert_eq!(dels, 2, "the failed DEL and the retry; none after");
    assert!(rt.cri_records("sandbox").unwrap().is_empty());
}
