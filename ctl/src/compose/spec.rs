//! A service as the agent's ContainerSpec: written as the `run` flags it means and built by
//! the same code as `agentctl run` (`commands::container::spec_of`), then the two things
//! flags cannot say (an entrypoint of several words, a health test in exec form) set on it.

use super::model::{self, Health, Project, Service};
use crate::cli::{CreateOpts, ResourceOpts};
use crate::error::Res;
use agent_proto::v1 as pb;

/// The spec of `service`'s container, labelled with the project, the service and `hash`.
pub fn container_spec(p: &Project, service: &str, s: &Service, hash: &str) -> Res<pb::ContainerSpec> {
    let net = |key: &String| p.networks.get(key).map(|n| n.name.clone());
    let network = match s.network_mode.as_deref() {
        Some(m) => Some(match m.strip_prefix("service:") {
            Some(dep) => format!("container:{}", p.container_name(dep)),
            None => m.to_string(),
        }),
        None => s.networks.first().and_then(net),
    };
    let mut labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    for (k, v) in [
        (model::LABEL_PROJECT, p.name.as_str()),
        (model::LABEL_SERVICE, service),
        (model::LABEL_HASH, hash),
        (model::LABEL_NUMBER, "1"),
        (model::LABEL_ONEOFF, "False"),
        (model::LABEL_WORKDIR, p.dir.as_str()),
        (model::LABEL_FILES, p.file.as_str()),
    ] {
        labels.push(format!("{k}={v}"));
    }
    let mut o = CreateOpts {
        name: Some(p.container_name(service)),
        env: s.environment.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        workdir: s.working_dir.clone(),
        user: s.user.clone(),
        hostname: s.hostname.clone(),
        interactive: s.stdin_open,
        tty: s.tty,
        network,
        publish: s.ports.clone(),
        dns: s.dns.clone(),
        add_host: s.extra_hosts.clone(),
        cap_add: s.cap_add.clone(),
        cap_drop: s.cap_drop.clone(),
        volume: s.volumes.clone(),
        tmpfs: s.tmpfs.clone(),
        read_only: s.read_only,
        label: labels,
        restart: s.restart.clone().unwrap_or_else(|| "no".into()),
        init: s.init,
        sysctl: s.sysctls.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        res: ResourceOpts {
            cpus: s.resources.cpus,
            memory: s.resources.memory.map(|m| m.to_string()),
            memory_reservation: s.resources.memory_reservation.map(|m| m.to_string()),
            pids_limit: s.resources.pids,
            ..Default::default()
        },
        image_and_cmd: std::iter::once(s.image.clone()).chain(s.command.iter().flatten().cloned()).collect(),
        // Like compose, peers on its networks reach it by its service name too.
        more: crate::run_flags::RunFlags { network_alias: vec![service.to_string()], ..Default::default() },
        logging: crate::log_flags::LogFlags {
            log_driver: s.logging.as_ref().and_then(|l| l.driver.clone()),
            log_opt: s.logging.iter().flat_map(|l| l.options.iter().map(|(k, v)| format!("{k}={v}"))).collect(),
        },
        ..Default::default()
    };
    let exec_test = match &s.healthcheck {
        None => None,
        Some(Health::Disabled) => {
            o.no_healthcheck = true;
            None
        }
        Some(Health::Check { test, interval, timeout, start_period, start_interval, retries }) => {
            o.health_cmd = test.get(1..).filter(|t| !t.is_empty()).map(|t| t.join(" "));
            o.health_interval = interval.clone();
            o.health_timeout = timeout.clone();
            o.health_start_period = start_period.clone();
            o.health_start_interval = start_interval.clone();
            o.health_retries = retries.filter(|r| *r > 0);
            (test.first().map(String::as_str) == Some("CMD")).then(|| test.clone())
        }
    };
    let mut spec = crate::commands::container::spec_of(&o)?;
    if let Some(e) = &s.entrypoint {
        spec.entrypoint = e.clone();
        spec.entrypoint_set = true;
    }
    if let (Some(test), Some(h)) = (exec_test, spec.health.as_mut()) {
        h.test = test;
    }
    Ok(spec)
}

/// The networks after the first, which the container joins once created.
pub fn extra_networks(p: &Project, s: &Service) -> Vec<String> {
    s.networks.iter().skip(1).filter_map(|k| p.networks.get(k).map(|n| n.name.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn a_service_becomes_the_spec_run_would_make() {
        let text = "services:\n  web:\n    image: busybox\n    command: [sleep, '100']\n    entrypoint: [/bin/sh, -c]\n    environment: [A=1]\n    ports: ['8080:80']\n    healthcheck: {test: [CMD, test, -f, /x], interval: 2s, retries: 0}\n    mem_limit: 64m\n    networks: [a, b]\nnetworks: {a: {}, b: {}}\n";
        let mut vars = super::super::interpolate::Vars::default();
        let p = super::super::file::parse(text, Path::new("/srv/app"), None, &mut vars).unwrap();
        let s = &p.services["web"];
        let spec = container_spec(&p, "web", s, "abc").unwrap();
        assert_eq!(spec.name, "app-web-1");
        assert_eq!(spec.image, "busybox");
        assert_eq!(spec.command, ["sleep", "100"]);
        assert_eq!(
            (spec.entrypoint.as_slice(), spec.entrypoint_set),
            (&["/bin/sh".to_string(), "-c".into()][..], true)
        );
        assert_eq!(spec.env, ["A=1"]);
        assert_eq!(spec.ports, ["8080:80"]);
        assert_eq!(spec.network_mode, "app_a");
        assert_eq!(spec.labels[model::LABEL_PROJECT], "app");
        assert_eq!(spec.labels[model::LABEL_SERVICE], "web");
        assert_eq!(spec.labels[model::LABEL_HASH], "abc");
        let h = spec.health.unwrap();
        assert_eq!(h.test, ["CMD", "test", "-f", "/x"]);
        assert_eq!((h.interval_ns, h.retries), (2_000_000_000, 0));
        assert_eq!(spec.resources.unwrap().memory, 64 << 20);
        assert_eq!(spec.restart, "no");
        assert_eq!(extra_networks(&p, s), ["app_b"]);
    }
}
