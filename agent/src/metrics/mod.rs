//! Prometheus metrics (`agentd --metrics-listen ADDR`, served at `/metrics` in the text
//! exposition format, prometheus-client's encoder).
//!
//! Three sources, each in its room:
//! - [`layer`]: every gRPC call, counted by service, method and status code, with its
//!   duration (until the response ended) in a histogram;
//! - [`Metrics::count_events`]: the event log, followed live: container events by action
//!   and exits by reason;
//! - [`collect`]: read at scrape time from the runtime: containers by state, each running
//!   container's CPU, memory and pids from its cgroup, restarts, the image store's size.
//!
//! Label values come from fixed sets (method names of our own services, event actions the
//! runtime emits, states) or from containers that exist: a client cannot grow the series.

pub mod collect;
pub mod layer;
pub mod serve;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::collections::HashSet;
use std::sync::Arc;

type Labels = Vec<(&'static str, String)>;

/// The metrics of one agent.
pub struct Metrics {
    registry: Registry,
    rpc_total: Family<Labels, Counter>,
    rpc_seconds: Family<Labels, Histogram, fn() -> Histogram>,
    events_total: Family<Labels, Counter>,
    image_events_total: Family<Labels, Counter>,
    exits_total: Family<Labels, Counter>,
    events_lost: Counter,
    /// Full paths (`/pkg.Service/Method`) of the methods served: any other is "unknown".
    methods: HashSet<String>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn rpc_histogram() -> Histogram {
    // 0.25 ms … ~8 s.
    Histogram::new(exponential_buckets(0.00025, 2.0, 16))
}

/// Why a container exited, from its `die` event.
pub fn exit_reason(code: i32, oom_killed: bool) -> &'static str {
    if oom_killed {
        "oom"
    } else if code == 0 {
        "success"
    } else if code > 128 && code < 128 + 65 {
        "signal"
    } else {
        "error"
    }
}

impl Metrics {
    /// The registry with every family, and `collectors` read at each scrape.
    pub fn new(collectors: Vec<Box<dyn prometheus_client::collector::Collector>>) -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("agentd");
        let rpc_total = Family::<Labels, Counter>::default();
        registry.register("rpc_requests", "gRPC calls served, by service, method and status code", rpc_total.clone());
        let rpc_seconds = Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(rpc_histogram);
        registry.register(
            "rpc_duration_seconds",
            "Time from a gRPC call's arrival to the end of its response, by service and method",
            rpc_seconds.clone(),
        );
        let events_total = Family::<Labels, Counter>::default();
        registry.register(
            "container_events",
            "Container events (create, start, die, oom, kill, restart, destroy, …), by action",
            events_total.clone(),
        );
        let image_events_total = Family::<Labels, Counter>::default();
        registry.register(
            "image_events",
            "Image events (pull, import, untag, delete), by action",
            image_events_total.clone(),
        );
        let exits_total = Family::<Labels, Counter>::default();
        registry.register(
            "container_exits",
            "Container exits by reason: success (code 0), error (other codes), signal (128+n), oom",
            exits_total.clone(),
        );
        let events_lost = Counter::default();
        registry.register(
            "metrics_events_lost",
            "Events the metrics follower missed because it fell behind (the counts above are low by this much)",
            events_lost.clone(),
        );
        for c in collectors {
            registry.register_collector(c);
        }
        let methods = served_methods();
        Arc::new(Metrics {
            registry,
            rpc_total,
            rpc_seconds,
            events_total,
            image_events_total,
            exits_total,
            events_lost,
            methods,
        })
    }

    /// Records one finished gRPC call.
    pub fn observe_rpc(&self, path: &str, code: &str, seconds: f64) {
        let (service, method) = if self.methods.contains(path) {
            let p = path.trim_start_matches('/');
            let (s, m) = p.split_once('/').unwrap_or((p, ""));
            (s.to_string(), m.to_string())
        } else {
            ("unknown".to_string(), "unknown".to_string())
        };
        self.rpc_total
            .get_or_create(&vec![("service", service.clone()), ("method", method.clone()), ("code", code.to_string())])
            .inc();
        self.rpc_seconds.get_or_create(&vec![("service", service), ("method", method)]).observe(seconds);
    }

    /// Counts one event (`kind`: container or image; volume events are not counted).
    pub fn observe_event(&self, kind: &str, action: &str, attributes: &std::collections::BTreeMap<String, String>) {
        if kind == "image" {
            self.image_events_total.get_or_create(&vec![("action", action.to_string())]).inc();
            return;
        }
        if kind != "container" {
            return;
        }
        self.events_total.get_or_create(&vec![("action", action.to_string())]).inc();
        if action == "die" {
            let code = attributes.get("exitCode").and_then(|c| c.parse::<i32>().ok()).unwrap_or(0);
            let oom = attributes.get("oomKilled").is_some_and(|v| v == "true");
            self.exits_total.get_or_create(&vec![("reason", exit_reason(code, oom).to_string())]).inc();
        }
    }

    /// Follows the runtime's live events until the agent stops, counting each.
    pub fn count_events(self: &Arc<Self>, mut rx: tokio::sync::broadcast::Receiver<crate::runtime::Event>) {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            loop {
                match rx.recv().await {
                    Ok(ev) => me.observe_event(&ev.kind, &ev.action, &ev.attributes),
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "metrics: the event follower fell behind; counts are low");
                        me.events_lost.inc_by(n);
                    }
                    Err(RecvError::Closed) => break,
                }
            }
        });
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// Every method of the services agentd serves (ours, the CRI, health, reflection).
fn served_methods() -> HashSet<String> {
    let mut out = HashSet::new();
    for set in [agent_proto::FILE_DESCRIPTOR_SET, tonic_health::pb::FILE_DESCRIPTOR_SET] {
        match prost_reflect::DescriptorPool::decode(set) {
            Ok(pool) => {
                for s in pool.services() {
                    for m in s.methods() {
                        out.insert(format!("/{}/{}", s.full_name(), m.name()));
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics: cannot read the service descriptors; methods count as unknown")
            }
        }
    }
    for v in ["v1", "v1alpha"] {
        out.insert(format!("/grpc.reflection.{v}.ServerReflection/ServerReflectionInfo"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpc_series_are_bounded_to_served_methods() {
        let m = Metrics::new(vec![]);
        m.observe_rpc("/agent.v1.ContainerService/Create", "Ok", 0.001);
        m.observe_rpc("/agent.v1.ContainerService/Create", "NotFound", 0.002);
        m.observe_rpc("/evil/random-1", "Unimplemented", 0.0);
        m.observe_rpc("/evil/random-2", "Unimplemented", 0.0);
        let text = m.render().unwrap();
        assert!(
            text.contains(
                r#"agentd_rpc_requests_total{service="agent.v1.ContainerService",method="Create",code="Ok"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"method="Create",code="NotFound"} 1"#), "{text}");
        assert!(
            text.contains(r#"agentd_rpc_requests_total{service="unknown",method="unknown",code="Unimplemented"} 2"#)
        );
        assert!(!text.contains("random"), "{text}");
        assert!(text.contains("agentd_rpc_duration_seconds_bucket"), "{text}");
    }

    #[test]
    fn cri_and_health_methods_are_known() {
        let m = served_methods();
        assert!(m.contains("/runtime.v1.RuntimeService/RunPodSandbox"), "{m:?}");
        assert!(m.contains("/grpc.health.v1.Health/Check"));
    }

    #[test]
    fn exits_are_counted_by_reason() {
        let m = Metrics::new(vec![]);
        let attrs = |c: &str, oom: bool| {
            [("exitCode".to_string(), c.to_string()), ("oomKilled".to_string(), oom.to_string())].into_iter().collect()
        };
        m.observe_event("container", "die", &attrs("0", false));
        m.observe_event("container", "die", &attrs("3", false));
        m.observe_event("container", "die", &attrs("137", false));
        m.observe_event("container", "die", &attrs("137", true));
        m.observe_event("container", "start", &Default::default());
        m.observe_event("image", "pull", &Default::default());
        m.observe_event("volume", "create", &Default::default());
        m.observe_event("volume", "mount", &Default::default());
        let text = m.render().unwrap();
        assert!(!text.contains(r#"agentd_container_events_total{action="create"}"#), "{text}");
        for r in ["success", "error", "signal", "oom"] {
            assert!(text.contains(&format!("agentd_container_exits_total{{reason=\"{r}\"}} 1")), "{r}: {text}");
        }
        assert!(text.contains(r#"agentd_container_events_total{action="die"} 4"#), "{text}");
        assert!(text.contains(r#"agentd_container_events_total{action="start"} 1"#), "{text}");
        assert!(text.contains(r#"agentd_image_events_total{action="pull"} 1"#), "{text}");
    }
}
