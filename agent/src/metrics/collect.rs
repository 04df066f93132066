//! What a scrape reads from the runtime at that moment: containers by state, each running
//! container's cgroup usage and restarts, the image store. Nothing here is kept between
//! scrapes, so a removed container's series disappear with it.

use crate::runtime::{Runtime, State};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use std::sync::Arc;

/// One sample of the runtime, taken when a scrape asks.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Snapshot {
    /// (state, count) for every state, zeros included.
    pub by_state: Vec<(&'static str, u64)>,
    pub containers: Vec<ContainerSample>,
    pub images: u64,
    pub image_bytes: u64,
}

/// One running container.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ContainerSample {
    pub id: String,
    pub name: String,
    pub cpu_seconds: f64,
    pub memory_bytes: u64,
    pub memory_limit_bytes: u64,
    pub pids: u64,
    pub restarts: u64,
}

/// Where a snapshot comes from (the runtime; a fixed one in unit tests).
pub trait Source: Send + Sync + 'static {
    fn snapshot(&self) -> Snapshot;
}

fn state_name(s: State) -> &'static str {
    match s {
        State::Created => "created",
        State::Running => "running",
        State::Exited => "exited",
        State::Removing => "removing",
    }
}

impl Source for Arc<Runtime> {
    fn snapshot(&self) -> Snapshot {
        let mut snap = Snapshot {
            by_state: [State::Created, State::Running, State::Exited, State::Removing]
                .into_iter()
                .map(|s| (state_name(s), 0))
                .collect(),
            ..Default::default()
        };
        match self.list() {
            Ok(all) => {
                for c in &all {
                    if let Some(e) = snap.by_state.iter_mut().find(|(n, _)| *n == state_name(c.state)) {
                        e.1 += 1;
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "metrics: listing containers"),
        }
        match self.stats(&[]) {
            Ok(samples) => {
                for (rec, u) in samples {
                    snap.containers.push(ContainerSample {
                        id: rec.id.clone(),
                        name: rec.name.clone(),
                        cpu_seconds: u.cpu_usage_ns as f64 / 1e9,
                        memory_bytes: u.memory_usage,
                        memory_limit_bytes: u.memory_limit,
                        pids: u.pids,
                        restarts: rec.restart_count as u64,
                    });
                }
            }
            Err(e) => tracing::warn!(error = %e, "metrics: reading container usage"),
        }
        match self.images().disk_usage(&[]) {
            Ok(u) => {
                snap.images = u.images as u64;
                snap.image_bytes = u.layers_bytes;
            }
            Err(e) => tracing::warn!(error = %e, "metrics: reading the image store"),
        }
        snap
    }
}

/// Client connections and followers being served (`[limits]`), at each scrape.
#[derive(Debug)]
pub struct ClientsCollector {
    pub connections: crate::transport::limits::Connections,
    pub followers: Arc<crate::api::followers::Followers>,
}

impl Collector for ClientsCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for (name, help, n) in [
            (
                "client_connections",
                "Client connections being served ([limits] max_connections)",
                self.connections.active(),
            ),
            ("followers", "Calls following logs or events ([limits] max_followers)", self.followers.active()),
        ] {
            let f = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
            ConstGauge::new(n as i64).encode(f)?;
        }
        Ok(())
    }
}

/// The collector registered with the registry.
pub struct RuntimeCollector<S: Source>(pub S);

impl<S: Source> std::fmt::Debug for RuntimeCollector<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RuntimeCollector")
    }
}

fn per_container<M: EncodeMetric>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    cs: &[ContainerSample],
    value: impl Fn(&ContainerSample) -> M,
) -> Result<(), std::fmt::Error> {
    let mut family = enc.encode_descriptor(name, help, None, kind)?;
    for c in cs {
        let labels = [("id", c.id.as_str()), ("name", c.name.as_str())];
        value(c).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

impl<S: Source> Collector for RuntimeCollector<S> {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let snap = self.0.snapshot();
        {
            let mut f = enc.encode_descriptor("containers", "Containers by state", None, MetricType::Gauge)?;
            for (state, n) in &snap.by_state {
                ConstGauge::new(*n as i64).encode(f.encode_family(&[("state", *state)])?)?;
            }
        }
        let cs = &snap.containers;
        per_container(
            &mut enc,
            "container_cpu_seconds",
            "CPU time used by a running container (cgroup cpuacct / cpu.stat)",
            MetricType::Counter,
            cs,
            |c| ConstCounter::new(c.cpu_seconds),
        )?;
        per_container(
            &mut enc,
            "container_memory_bytes",
            "Memory used by a running container (cgroup)",
            MetricType::Gauge,
            cs,
            |c| ConstGauge::new(c.memory_bytes as i64),
        )?;
        per_container(
            &mut enc,
            "container_memory_limit_bytes",
            "Memory limit of a running container (0: none)",
            MetricType::Gauge,
            cs,
            |c| ConstGauge::new(c.memory_limit_bytes.min(i64::MAX as u64) as i64),
        )?;
        per_container(
            &mut enc,
            "container_pids",
            "Processes and threads in a running container",
            MetricType::Gauge,
            cs,
            |c| ConstGauge::new(c.pids as i64),
        )?;
        per_container(
            &mut enc,
            "container_restarts",
            "Restarts of a running container by its restart policy",
            MetricType::Gauge,
            cs,
            |c| ConstGauge::new(c.restarts as i64),
        )?;
        ConstGauge::new(snap.images as i64).encode(enc.encode_descriptor(
            "images",
            "Images in the store",
            None,
            MetricType::Gauge,
        )?)?;
        ConstGauge::new(snap.image_bytes as i64).encode(enc.encode_descriptor(
            "image_store_bytes",
            "Bytes of the unpacked layers in the image store (each layer once)",
            None,
            MetricType::Gauge,
        )?)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(Snapshot);
    impl Source for Fixed {
        fn snapshot(&self) -> Snapshot {
            self.0.clone()
        }
    }

    #[test]
    fn a_scrape_shows_states_containers_and_images() {
        let snap = Snapshot {
            by_state: vec![("created", 1), ("running", 2), ("exited", 0), ("removing", 0)],
            containers: vec![ContainerSample {
                id: "abc".into(),
                name: "web".into(),
                cpu_seconds: 1.5,
                memory_bytes: 4096,
                memory_limit_bytes: 1 << 20,
                pids: 3,
                restarts: 2,
            }],
            images: 4,
            image_bytes: 1234,
        };
        let m = super::super::Metrics::new(vec![Box::new(RuntimeCollector(Fixed(snap)))]);
        let text = m.render().unwrap();
        for want in [
            r#"agentd_containers{state="running"} 2"#,
            r#"agentd_containers{state="exited"} 0"#,
            r#"agentd_container_cpu_seconds_total{id="abc",name="web"} 1.5"#,
            r#"agentd_container_memory_bytes{id="abc",name="web"} 4096"#,
            r#"agentd_container_pids{id="abc",name="web"} 3"#,
            r#"agentd_container_restarts{id="abc",name="web"} 2"#,
            "agentd_images 4",
            "agentd_image_store_bytes 1234",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
    }
}
