//! The client against fake plugins: shell scripts that log what they were given (the
//! `CNI_*` variables and stdin) and answer like plugins do. No root needed.

use super::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

struct Fixture {
    _dir: tempfile::TempDir,
    cni: Cni,
    log: PathBuf,
}

/// A plugin `name` that logs one line per call and, on ADD, answers `ip` on eth0 (or fails
/// with a CNI error when `ip` is empty).
fn plugin(bin: &Path, log: &Path, name: &str, ip: &str) {
    let answer = if ip.is_empty() {
        r#"echo '{"cniVersion":"1.0.0","code":11,"msg":"failed to allocate","details":"range is full"}'; exit 1"#
            .to_string()
    } else {
        format!(
            r#"echo '{{"cniVersion":"1.0.0","interfaces":[{{"name":"eth0","sandbox":"'"$CNI_NETNS"'"}}],"ips":[{{"address":"{ip}/24","interface":0}}]}}'"#
        )
    };
    let script = format!(
        "#!/bin/sh\nconf=$(cat)\nprintf '%s|%s|%s|%s|%s|%s|%s|%s\\n' {name} \"$CNI_COMMAND\" \"$CNI_CONTAINERID\" \
         \"$CNI_NETNS\" \"$CNI_IFNAME\" \"$CNI_ARGS\" \"$CNI_PATH\" \"$conf\" >> {log}\n\
         if [ \"$CNI_COMMAND\" = ADD ]; then {answer}; fi\n",
        log = log.display()
    );
    let p = bin.join(name);
    std::fs::write(&p, script).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn fixture(conflist: &str) -> Fixture {
    let d = tempfile::tempdir().unwrap();
    let (conf, bin) = (d.path().join("conf"), d.path().join("bin"));
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(conf.join("10-test.conflist"), conflist).unwrap();
    let log = d.path().join("calls.log");
    let cni = Cni::new(conf.to_str().unwrap(), bin.to_str().unwrap(), d.path().join("cache"));
    Fixture { _dir: d, cni, log }
}

/// A logged call: (plugin, command, container, netns, ifname, args, path, stdin JSON).
type Logged = (String, String, String, String, String, String, String, Value);

fn calls(f: &Fixture) -> Vec<Logged> {
    std::fs::read_to_string(&f.log)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let p: Vec<&str> = l.splitn(8, '|').collect();
            let s = |i: usize| p[i].to_string();
            (s(0), s(1), s(2), s(3), s(4), s(5), s(6), serde_json::from_str(p[7]).unwrap())
        })
        .collect()
}

const LIST: &str = r#"{"cniVersion":"1.0.0","name":"podnet","plugins":[
    {"type":"first","bridge":"br9"},
    {"type":"second","capabilities":{"portMappings":true}}]}"#;

fn attach() -> Attach {
    Attach {
        container_id: "abc".into(),
        netns: "/proc/42/ns/net".into(),
        args: vec![("K8S_POD_NAME".into(), "web".into())],
        port_mappings: vec![PortMapping {
            host_port: 8080,
            container_port: 80,
            protocol: "tcp".into(),
            host_ip: String::new(),
        }],
    }
}

#[tokio::test]
async fn add_chains_results_and_offers_port_mappings_to_capable_plugins() {
    let f = fixture(LIST);
    let bin = f.cni.bin_dirs[0].clone();
    plugin(&bin, &f.log, "first", "10.9.0.2");
    plugin(&bin, &f.log, "second", "10.9.0.7");
    let r = f.cni.add(&attach()).await.unwrap();
    assert_eq!(result::pod_ips(&r), ["10.9.0.7".parse::<IpAddr>().unwrap()], "the last plugin's result is the result");
    let c = calls(&f);
    assert_eq!(c.len(), 2);
    let (name, cmd, id, netns, ifname, args, path, conf) = &c[0];
    assert_eq!((name.as_str(), cmd.as_str(), id.as_str(), netns.as_str()), ("first", "ADD", "abc", "/proc/42/ns/net"));
    assert_eq!((ifname.as_str(), args.as_str()), ("eth0", "IgnoreUnknown=1;K8S_POD_NAME=web"));
    assert_eq!(path, &bin.display().to_string());
    assert_eq!(
        (conf["name"].as_str(), conf["cniVersion"].as_str(), conf["bridge"].as_str()),
        (Some("podnet"), Some("1.0.0"), Some("br9"))
    );
    assert!(conf.get("prevResult").is_none() && conf.get("runtimeConfig").is_none(), "{conf}");
    let conf = &c[1].7;
    assert_eq!(conf["prevResult"]["ips"][0]["address"], "10.9.0.2/24", "{conf}");
    assert_eq!(
        conf["runtimeConfig"]["portMappings"][0],
        serde_json::json!({"hostPort":8080,"containerPort":80,"protocol":"tcp"})
    );
    assert_eq!(f.cni.pod_ips("abc").unwrap(), ["10.9.0.7".parse::<IpAddr>().unwrap()]);
    assert!(f.cni.attached("abc").unwrap());
}

#[tokio::test]
async fn del_uses_the_cache_in_reverse_even_after_the_config_is_gone() {
    let f = fixture(LIST);
    let bin = f.cni.bin_dirs[0].clone();
    plugin(&bin, &f.log, "first", "10.9.0.2");
    plugin(&bin, &f.log, "second", "10.9.0.7");
    f.cni.add(&attach()).await.unwrap();
    // What an operator may do while pods run; a new client is what a restarted agent has.
    std::fs::remove_file(f.cni.conf_dir.join("10-test.conflist")).unwrap();
    let again = Cni::new(f.cni.conf_dir.to_str().unwrap(), bin.to_str().unwrap(), f.cni.cache_dir.clone());
    assert!(again.check("abc", "/proc/42/ns/net").await.unwrap());
    again.del("abc", "").await.unwrap();
    let c = calls(&f);
    let order: Vec<(&str, &str)> = c.iter().map(|c| (c.0.as_str(), c.1.as_str())).collect();
    assert_eq!(
        order,
        [
            ("first", "ADD"),
            ("second", "ADD"),
            ("first", "CHECK"),
            ("second", "CHECK"),
            ("second", "DEL"),
            ("first", "DEL")
        ]
    );
    for (_, cmd, _, netns, _, args, _, conf) in &c[4..] {
        assert_eq!((cmd.as_str(), netns.as_str(), args.as_str()), ("DEL", "", "IgnoreUnknown=1;K8S_POD_NAME=web"));
        assert_eq!(conf["prevResult"]["ips"][0]["address"], "10.9.0.7/24", "DEL gets the cached result: {conf}");
    }
    assert_eq!(c[5].7["bridge"], "br9", "the cached config");
    assert_eq!(c[4].7["runtimeConfig"]["portMappings"][0]["hostPort"], 8080);
    assert!(!again.attached("abc").unwrap());
    // A second DEL has nothing to do.
    again.del("abc", "").await.unwrap();
    assert_eq!(calls(&f).len(), 6);
}

#[tokio::test]
async fn a_failed_add_names_the_plugin_and_is_undone() {
    let f = fixture(LIST);
    let bin = f.cni.bin_dirs[0].clone();
    plugin(&bin, &f.log, "first", "10.9.0.2");
    plugin(&bin, &f.log, "second", "");
    let e = f.cni.add(&attach()).await.unwrap_err();
    assert_eq!(e.to_string(), "CNI plugin second failed on ADD: failed to allocate: range is full (CNI error code 11)");
    let order: Vec<(String, String)> = calls(&f).into_iter().map(|c| (c.0, c.1)).collect();
    let want = [("first", "ADD"), ("second", "ADD"), ("second", "DEL"), ("first", "DEL")];
    assert_eq!(order, want.map(|(a, b)| (a.to_string(), b.to_string())));
    assert!(!f.cni.attached("abc").unwrap());
    assert_eq!(std::fs::read_dir(&f.cni.cache_dir).map(|d| d.count()).unwrap_or(0), 0, "nothing cached");
}

#[tokio::test]
async fn readiness_names_what_is_missing() {
    let f = fixture(LIST);
    let bin = f.cni.bin_dirs[0].clone();
    plugin(&bin, &f.log, "first", "10.9.0.2");
    let e = f.cni.ready().unwrap_err().to_string();
    assert!(e.contains("network podnet") && e.contains("plugin(s) second not found in"), "{e}");
    let e = f.cni.add(&attach()).await.unwrap_err().to_string();
    assert!(e.contains("second not found"), "{e}");
    assert!(calls(&f).is_empty(), "no plugin runs while one is missing");
    plugin(&bin, &f.log, "second", "10.9.0.7");
    assert_eq!(f.cni.ready().unwrap().name, "podnet");
    std::fs::remove_file(f.cni.conf_dir.join("10-test.conflist")).unwrap();
    let e = f.cni.ready().unwrap_err().to_string();
    assert!(e.contains("no network config found in"), "{e}");
}

#[tokio::test]
async fn a_plugin_answering_garbage_is_an_error_naming_it() {
    let f = fixture(r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"odd"}]}"#);
    let p = f.cni.bin_dirs[0].join("odd");
    std::fs::write(&p, "#!/bin/sh\ncat >/dev/null\necho not json\n").unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    let e = f.cni.add(&attach()).await.unwrap_err().to_string();
    assert!(e.starts_with("CNI plugin odd failed on ADD: its answer is not JSON"), "{e}");
    assert!(e.contains("; undoing it, CNI plugin odd failed on DEL: its answer is not JSON"), "{e}");
    assert!(!f.cni.attached("abc").unwrap());
}

#[tokio::test]
async fn an_add_cut_short_is_cached_without_a_result_and_deleted_after_a_restart() {
    let f = fixture(LIST);
    let bin = f.cni.bin_dirs[0].clone();
    plugin(&bin, &f.log, "first", "10.9.0.2");
    // `second` hangs until the cache entry exists, shows it was written before any result.
    let hang = bin.join("second");
    std::fs::write(
        &hang,
        format!(
            "#!/bin/sh\ncat >/dev/null\necho \"second|$CNI_COMMAND|||||\" >/dev/null\n[ \"$CNI_COMMAND\" = ADD ] && grep -q '\"result\": null' {}/abc-eth0.json && sleep 30\nexit 0\n",
            f.cni.cache_dir.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&hang, std::fs::Permissions::from_mode(0o755)).unwrap();
    // The agent "dies" while `second` runs: the ADD future is dropped.
    let cut = tokio::time::timeout(std::time::Duration::from_millis(1500), f.cni.add(&attach())).await;
    assert!(cut.is_err(), "the ADD was still running: {cut:?}");
    assert!(f.cni.attached("abc").unwrap(), "pending entry cached");
    assert!(f.cni.pod_ips("abc").unwrap().is_empty());
    assert!(!f.cni.check("abc", "/proc/42/ns/net").await.unwrap(), "nothing to CHECK yet");
    f.cni.del("abc", "").await.unwrap();
    let dels: Vec<Logged> = calls(&f).into_iter().filter(|c| c.1 == "DEL").collect();
    assert_eq!(dels.len(), 1, "first's DEL (second logs nothing)");
    assert!(dels[0].7.get("prevResult").is_none(), "{}", dels[0].7);
    assert!(!f.cni.attached("abc").unwrap());
}
