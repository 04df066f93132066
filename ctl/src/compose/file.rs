//! Reading a Compose file into a [`Project`]: the file (or stdin for `-`), the `.env`
//! beside it, interpolation, the top-level keys, the project's name (`-p`, then
//! `COMPOSE_PROJECT_NAME`, then `name:`, then the directory's name, as compose chooses) and
//! the `default` network of services that name none.

use super::interpolate::{self, Vars};
use super::model::{Network, Project};
use super::schema::{self, Ctx};
use super::yaml::{self, Known};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const TOP_KEYS: Known = Known { compose: &["volumes", "configs", "secrets", "include", "models"] };

/// Reads `file` (`-`: stdin, relative paths then start in the working directory).
pub fn read(file: &str, project_name: Option<&str>) -> Result<Project, String> {
    let (text, dir, label) = if file == "-" {
        let mut t = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut t).map_err(|e| format!("reading stdin: {e}"))?;
        (t, std::env::current_dir().map_err(|e| format!("the working directory: {e}"))?, "-".to_string())
    } else {
        let p = std::fs::canonicalize(file).map_err(|e| format!("{file}: {e}"))?;
        let t = std::fs::read_to_string(&p).map_err(|e| format!("{file}: {e}"))?;
        let dir = p.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("/"));
        (t, dir, p.display().to_string())
    };
    let dotenv = dir.join(".env");
    let mut vars = Vars::from_process(BTreeMap::new());
    match std::fs::read_to_string(&dotenv) {
        Ok(t) => {
            let pairs = interpolate::dotenv(&t, &mut vars).map_err(|e| format!("{}: {e}", dotenv.display()))?;
            vars.dotenv = pairs.into_iter().collect();
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{}: {e}", dotenv.display())),
    }
    let env_name = vars.get("COMPOSE_PROJECT_NAME").map(str::to_string);
    let name = project_name.map(str::to_string).or(env_name);
    let p = parse(&text, &dir, name.as_deref(), &mut vars).map_err(|e| format!("{file}: {e}"))?;
    for v in &vars.unset {
        eprintln!("warning: the {v:?} variable is not set: using an empty string");
    }
    Ok(Project { file: label, ..p })
}

/// Parses a file's text; `dir` is where relative paths start; `name` the chosen project
/// name, if one was.
pub fn parse(text: &str, dir: &Path, name: Option<&str>, vars: &mut Vars) -> yaml::Result<Project> {
    let mut root = yaml::load(text)?;
    root.scalars_mut(&mut |s: &mut String, line, path: &str| {
        *s = interpolate::expand(s, vars).map_err(|msg| yaml::Error { line, path: path.to_string(), msg })?;
        Ok(())
    })?;
    let (mut services, mut networks, mut file_name) = (None, None, None);
    root.keys(
        |k, v| {
            match k {
                "services" => services = Some(v),
                "networks" => networks = Some(v),
                "name" => file_name = Some(v),
                // Obsolete in the Compose Specification: compose ignores it too.
                "version" => {}
                _ => return Ok(false),
            }
            Ok(true)
        },
        &TOP_KEYS,
    )?;
    let project = match (name, file_name) {
        (Some(n), _) => valid_project_name(n).ok_or_else(|| schema::error(1, format!("invalid project name {n:?}")))?,
        (None, Some(v)) => {
            let n = v.str()?;
            valid_project_name(&n).ok_or_else(|| {
                v.err(format!(
                    "invalid project name {n:?}: lowercase letters, digits, - and _, starting with a letter or digit"
                ))
            })?
        }
        (None, None) => {
            let base = dir.file_name().map(|b| b.to_string_lossy().to_string()).unwrap_or_default();
            normalize(&base).ok_or_else(|| {
                schema::error(1, format!("cannot make a project name of the directory {base:?}: use -p NAME or name:"))
            })?
        }
    };
    let mut p = Project {
        name: project.clone(),
        dir: dir.display().to_string(),
        file: String::new(),
        services: BTreeMap::new(),
        networks: BTreeMap::new(),
    };
    let Some(services) = services else {
        return Err(schema::error(1, "the file has no services"));
    };
    let mut declared: BTreeMap<String, (Network, usize)> = BTreeMap::new();
    if let Some(n) = networks {
        for (k, v) in n.map()? {
            declared.insert(k.name.clone(), (super::networks::network(&project, &k.name, v)?, k.line));
        }
    }
    let mut cx = Ctx { dir, vars };
    for (k, v) in services.map()? {
        if k.name.is_empty() || !k.name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
            return Err(schema::error(k.line, format!("invalid service name {:?}", k.name)));
        }
        let mut s = schema::service(v, &mut cx)?;
        if s.network_mode.is_some() && !s.networks.is_empty() {
            return Err(v.err("network_mode and networks cannot be combined"));
        }
        if s.networks.is_empty() && s.network_mode.is_none() {
            s.networks.push("default".into());
        }
        for n in &s.networks {
            let net = match declared.get(n) {
                Some((net, _)) => net.clone(),
                None if n == "default" => Network { name: format!("{project}_default"), ..Default::default() },
                None => {
                    return Err(schema::error(
                        k.line,
                        format!("service {:?} refers to undefined network {n:?}", k.name),
                    ))
                }
            };
            p.networks.insert(n.clone(), net);
        }
        p.services.insert(k.name.clone(), s);
    }
    let known: Vec<String> = p.services.keys().cloned().collect();
    for (name, s) in p.services.iter_mut() {
        for d in s.optional_deps.iter().filter(|d| !known.contains(d)) {
            eprintln!("warning: service {name:?} depends on {d:?} (required: false), which the file does not define");
            s.depends_on.remove(d);
        }
    }
    p.start_order().map_err(|e| schema::error(services.line, e))?;
    let names: Vec<String> = p.services.keys().map(|s| p.container_name(s)).collect();
    if let Some(d) = names.iter().enumerate().find(|(i, n)| names[..*i].contains(n)) {
        return Err(schema::error(services.line, format!("two services would make the container {:?}", d.1)));
    }
    Ok(p)
}

/// A `-p`/`name:` project name: compose's rule (lowercase letters, digits, `-`, `_`;
/// starting with a letter or digit).
fn valid_project_name(n: &str) -> Option<String> {
    let ok = n.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    ok.then(|| n.to_string())
}

/// A directory's name made a project name, as compose does: lowercased, other characters
/// dropped, leading `-`/`_` dropped.
fn normalize(base: &str) -> Option<String> {
    let n: String = base
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_')
        .collect();
    let n = n.trim_start_matches(['-', '_']).to_string();
    (!n.is_empty()).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::model::{Condition, Health};

    fn vars() -> Vars {
        let mut v = Vars::default();
        v.env.insert("TAG".into(), "1.36".into());
        v.env.insert("FROM_HERE".into(), "here".into());
        v.dotenv.insert("PORT".into(), "8080".into());
        v
    }

    fn parse_in(text: &str, dir: &Path) -> yaml::Result<Project> {
        parse(text, dir, None, &mut vars())
    }

    #[test]
    fn a_full_service() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("web.env"), "A=from-file\nB=file\n").unwrap();
        let text = r#"
name: shop
services:
  web:
    image: "busybox:${TAG}"
    command: sh -c 'echo "hi there"'
    entrypoint: ["/bin/sh", "-c"]
    env_file: web.env
    environment:
      B: env
      C: 1.10
      FROM_HERE:
      NOT_SET_ANYWHERE_Q:
    ports: ["${PORT}:80", {target: 81, published: "9001", host_ip: 127.0.0.1, protocol: udp}]
    volumes:
      - ./data:/data:ro
      - {type: tmpfs, target: /scratch, tmpfs: {size: 1m}}
      - type: bind
        source: /etc
        target: /host-etc
        read_only: true
    tmpfs: /run
    restart: on-failure:3
    healthcheck: {test: ["CMD", "true"], interval: 1s, retries: 2}
    deploy: {resources: {limits: {cpus: "0.5", memory: 64M, pids: 50}, reservations: {memory: 32m}}}
    sysctls: [net.core.somaxconn=1024]
    cap_add: [NET_ADMIN]
    cap_drop: [MKNOD]
    read_only: true
    user: "1000:1000"
    working_dir: /w
    hostname: h
    labels: [team=core]
    depends_on: {db: {condition: service_healthy}}
    stop_grace_period: 3s
  db:
    image: busybox
    healthcheck: {test: "true"}
"#;
        let p = parse_in(text, d.path()).unwrap();
        assert_eq!(p.name, "shop");
        let w = &p.services["web"];
        assert_eq!(w.image, "busybox:1.36");
        assert_eq!(w.command.as_deref().unwrap(), ["sh", "-c", "echo \"hi there\""]);
        assert_eq!(w.entrypoint.as_deref().unwrap(), ["/bin/sh", "-c"]);
        let env: Vec<String> = w.environment.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(env, ["A=from-file", "B=env", "C=1.10", "FROM_HERE=here"]);
        assert_eq!(w.ports, ["8080:80", "127.0.0.1:9001:81/udp"]);
        let data = d.path().join("data");
        assert_eq!(w.volumes, [format!("{}:/data:ro", data.display()), "/etc:/host-etc:ro".to_string()]);
        assert_eq!(w.tmpfs, ["/scratch:size=1m", "/run"]);
        assert_eq!(w.restart.as_deref(), Some("on-failure:3"));
        match &w.healthcheck {
            Some(Health::Check { test, interval, retries, .. }) => {
                assert_eq!(test, &["CMD", "true"]);
                assert_eq!((interval.as_deref(), *retries), (Some("1s"), Some(2)));
            }
            h => panic!("{h:?}"),
        }
        assert_eq!(w.resources.cpus, Some(0.5));
        assert_eq!(w.resources.memory, Some(64 << 20));
        assert_eq!(w.resources.memory_reservation, Some(32 << 20));
        assert_eq!(w.resources.pids, Some(50));
        assert_eq!(w.sysctls["net.core.somaxconn"], "1024");
        assert!(w.read_only);
        assert_eq!(w.user.as_deref(), Some("1000:1000"));
        assert_eq!(w.labels["team"], "core");
        assert_eq!(w.depends_on["db"], Condition::Healthy);
        assert_eq!(w.stop_grace_period, Some(3));
        assert_eq!(w.networks, ["default"]);
        assert_eq!(p.networks["default"].name, "shop_default");
        assert_eq!(p.container_name("web"), "shop-web-1");
        assert_eq!(p.start_order().unwrap(), ["db", "web"]);
        match &p.services["db"].healthcheck {
            Some(Health::Check { test, .. }) => assert_eq!(test, &["CMD-SHELL", "true"]),
            h => panic!("{h:?}"),
        }
    }

    #[test]
    fn unknown_and_unsupported_keys_name_key_and_line() {
        let d = Path::new("/tmp/My Project");
        let e = parse_in("services:\n  web:\n    image: busybox\n    imagee: x\n", d).unwrap_err();
        assert_eq!(e.line, 4, "{e}");
        assert!(e.to_string().contains("services.web: unknown key \"imagee\""), "{e}");
        let e = parse_in("services:\n  web:\n    image: busybox\n    build: .\n", d).unwrap_err();
        assert!(e.to_string().contains("\"build\" is not supported"), "{e}");
        let e = parse_in("services:\n  web:\n    image: busybox\n    deploy:\n      resources:\n        limits:\n          gpus: 1\n", d)
            .unwrap_err();
        assert_eq!(e.line, 7, "{e}");
        assert!(e.to_string().contains("services.web.deploy.resources.limits: unknown key \"gpus\""), "{e}");
        let e = parse_in("volumes:\n  v: {}\nservices: {}\n", d).unwrap_err();
        assert_eq!((e.line, e.msg.contains("\"volumes\" is not supported")), (1, true), "{e}");
        let e = parse_in("services:\n  w:\n    image: b\n    volumes: [data:/data]\n", d).unwrap_err();
        assert!(e.to_string().contains("line 4: services.w.volumes[0]") && e.msg.contains("named volume"), "{e}");
        let e = parse_in("services:\n  w:\n    image: b\n    networks: [back]\n", d).unwrap_err();
        assert!(e.msg.contains("undefined network \"back\""), "{e}");
        let e = parse_in("services:\n  w:\n    image: b\n    read_only: maybe\n", d).unwrap_err();
        assert_eq!(e.line, 4, "{e}");
        let e = parse_in("services:\n  w:\n    image: \"${X:?set X}\"\n", d).unwrap_err();
        assert_eq!((e.line, e.msg.as_str()), (3, "X: set X"), "{e}");
        // x- extensions are skipped, as compose does; the directory names the project.
        let p = parse_in("x-common: &c {image: busybox}\nservices:\n  w:\n    <<: *c\n    x-note: hi\n", d).unwrap();
        assert_eq!((p.name.as_str(), p.services["w"].image.as_str()), ("myproject", "busybox"));
    }

    #[test]
    fn other_forms_of_the_keys() {
        let d = Path::new("/srv/app");
        let text = r#"
services:
  a:
    image: b
    ports: [80, {target: 81}, {target: 82, host_ip: 127.0.0.1}, "127.0.0.1::83"]
    environment: [FROM_HERE, "X=a=b", NOT_SET_ANYWHERE_Q]
    labels: [flag]
    extra_hosts: ["db:10.0.0.2", "v6:::1"]
    healthcheck: {disable: true}
    command: []
  b:
    image: b
    extra_hosts: {db: 10.0.0.3}
    healthcheck: {test: [NONE]}
    entrypoint: "/bin/sh -c"
    tmpfs: [/a, /b]
    dns: 1.1.1.1
"#;
        let p = parse_in(text, d).unwrap();
        let a = &p.services["a"];
        assert_eq!(a.ports, ["80", "81", "127.0.0.1::82", "127.0.0.1::83"]);
        let env: Vec<String> = a.environment.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(env, ["FROM_HERE=here", "X=a=b"]);
        assert_eq!(a.labels["flag"], "");
        assert_eq!(a.extra_hosts, ["db:10.0.0.2", "v6:::1"]);
        assert_eq!(a.healthcheck, Some(Health::Disabled));
        assert_eq!(a.command.as_deref(), Some(&[][..]));
        let b = &p.services["b"];
        assert_eq!(b.extra_hosts, ["db:10.0.0.3"]);
        assert_eq!(b.healthcheck, Some(Health::Disabled));
        assert_eq!(b.entrypoint.as_deref().unwrap(), ["/bin/sh", "-c"]);
        assert_eq!((b.tmpfs.len(), b.dns.as_slice()), (2, &["1.1.1.1".to_string()][..]));
        let bad = |extra: &str| parse_in(&format!("services:\n  a:\n    image: b\n{extra}"), d).unwrap_err();
        assert!(bad("    deploy: {replicas: 2}\n").msg.contains("\"replicas\" is not supported"));
        assert!(bad("    cpus: 1\n    deploy: {resources: {limits: {cpus: 2}}}\n").msg.contains("differ"));
        assert!(bad("    restart: sometimes\n").msg.contains("\"sometimes\""));
        assert!(bad("    healthcheck: {test: [RUN, x]}\n").msg.contains("CMD"));
        assert!(bad("    healthcheck: {interval: soon}\n").msg.contains("\"soon\""));
        assert!(bad("    depends_on: {x: {condition: service_ready}}\n").msg.contains("service_ready"));
        assert!(bad("    volumes: [{type: volume, source: v, target: /v}]\n").msg.contains("\"volume\""));
        assert!(bad("    networks: {default: {aliases: [x]}}\n").msg.contains("\"aliases\" is not supported"));
        assert!(bad("    command: \"sh -c 'oops\"\n").msg.contains("quotes"));
        assert_eq!(bad("    env_file: /no/such/file.env\n").line, 4);
        let ok = parse_in("services:\n  a:\n    image: b\n    env_file: [{path: /no/such.env, required: false}]\n", d);
        assert!(ok.is_ok(), "{ok:?}");
        let opt = "services:\n  a:\n    image: b\n    depends_on: {x: {condition: service_started, required: false}}\n";
        assert!(
            parse_in(opt, d).unwrap().services["a"].depends_on.is_empty(),
            "an optional missing dependency is dropped"
        );
        assert!(bad("    depends_on: {x: {required: true}}\n").msg.contains("undefined service \"x\""));
    }

    #[test]
    fn network_modes() {
        let d = Path::new("/srv/app");
        let text = "services:\n  a:\n    image: b\n  b:\n    image: b\n    network_mode: service:a\n  c:\n    image: b\n    network_mode: host\n";
        let p = parse_in(text, d).unwrap();
        assert_eq!(p.services["b"].network_mode.as_deref(), Some("service:a"));
        assert!(p.services["b"].networks.is_empty() && p.services["c"].networks.is_empty());
        assert_eq!(p.start_order().unwrap(), ["a", "b", "c"], "b after the service whose network it joins");
        let spec = crate::compose::spec::container_spec(&p, "b", &p.services["b"], "h").unwrap();
        assert_eq!(spec.network_mode, "container:app-a-1");
        let spec = crate::compose::spec::container_spec(&p, "c", &p.services["c"], "h").unwrap();
        assert_eq!(spec.network_mode, "host");
        let e = parse_in("services:\n  a:\n    image: b\n    network_mode: host\n    networks: [x]\n", d).unwrap_err();
        assert!(e.msg.contains("cannot be combined"), "{e}");
        let e = parse_in("services:\n  a:\n    image: b\n    network_mode: bogus\n", d).unwrap_err();
        assert!(e.msg.contains("\"bogus\""), "{e}");
    }

    #[test]
    fn logging_becomes_log_driver_and_opts_and_keeps_other_hashes() {
        let d = Path::new("/srv/app");
        let text = "services:\n  a:\n    image: b\n    logging:\n      driver: local\n      options: {max-size: 1m, max-file: \"2\"}\n  b:\n    image: b\n";
        let p = parse_in(text, d).unwrap();
        let spec = crate::compose::spec::container_spec(&p, "a", &p.services["a"], "h").unwrap();
        assert_eq!(spec.log_driver, "local");
        assert_eq!(spec.log_opts.get("max-size").map(String::as_str), Some("1m"));
        assert_eq!(spec.log_opts.get("max-file").map(String::as_str), Some("2"));
        // Absent, the field is left out of the hash (skip_serializing_if): unchanged hashes.
        let plain = parse_in("services:\n  b:\n    image: b\n", d).unwrap();
        assert_eq!(p.services["b"].config_hash(), plain.services["b"].config_hash());
        assert_ne!(p.services["a"].config_hash(), plain.services["b"].config_hash());
        let e = parse_in("services:\n  a:\n    image: b\n    logging: {drivr: x}\n", d).unwrap_err();
        assert!(e.msg.contains("drivr"), "{e}");
    }

    #[test]
    fn networks_and_names() {
        let d = Path::new("/srv/app");
        let text = "services:\n  a:\n    image: b\n    networks: [front, back]\n  b:\n    image: b\n    container_name: bee\nnetworks:\n  front: {internal: true, ipam: {config: [{subnet: 10.99.0.0/24}]}}\n  back: {external: true, name: shared}\n  unused: {}\n";
        let p = parse(text, d, Some("proj"), &mut vars()).unwrap();
        assert_eq!(p.name, "proj");
        assert_eq!(p.services["a"].networks, ["front", "back"]);
        let names: Vec<&str> = p.networks.values().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["shared", "proj_default", "proj_front"], "unused networks are not made");
        assert!(p.networks["front"].internal && p.networks["back"].external);
        assert_eq!(p.networks["front"].subnet.as_deref(), Some("10.99.0.0/24"));
        assert_eq!(p.container_name("b"), "bee");
        assert!(parse(text, d, Some("Bad Name"), &mut vars()).is_err());
        let e = parse_in(
            "services:\n  a:\n    image: b\n    depends_on: [b]\n  b:\n    image: b\n    depends_on: [a]\n",
            d,
        )
        .unwrap_err();
        assert!(e.msg.contains("cycle"), "{e}");
    }
}
