//! Carrying a [`Plan`] out over the agent's API (client-side reconciliation): what the
//! agent has, read into the plan's terms; then removals, networks, and each service in
//! start order, after what it depends on is started, healthy or done as it asks. `down`
//! too.

use super::model::{self, Condition, Project};
use super::plan::{Action, Existing, Plan, Step};
use super::progress::Progress;
use super::spec;
use crate::client::Clients;
use crate::error::{Exit, Res};
use agent_proto::v1 as pb;
use std::collections::{BTreeMap, BTreeSet};

/// What the agent has of the project: its containers (with their specs, for `diff`) and
/// the names of every network.
pub struct Observed {
    pub containers: Vec<Existing>,
    pub specs: BTreeMap<String, pb::ContainerSpec>,
    pub networks: Vec<pb::NetworkInfo>,
}

pub async fn observe(cl: &mut Clients, p: &Project) -> Res<Observed> {
    let list = cl.c.list(pb::ListContainersRequest { all: true }).await?.into_inner().containers;
    let (mut containers, mut specs) = (Vec::new(), BTreeMap::new());
    for c in list {
        let spec = c.spec.clone().unwrap_or_default();
        if spec.labels.get(model::LABEL_PROJECT) != Some(&p.name) {
            continue;
        }
        let label = |k: &str| spec.labels.get(k).cloned().unwrap_or_default();
        containers.push(Existing {
            id: c.id.clone(),
            name: c.name.clone(),
            service: label(model::LABEL_SERVICE),
            hash: label(model::LABEL_HASH),
            running: c.state == pb::ContainerState::Running as i32,
            exited_ok: c.state == pb::ContainerState::Exited as i32 && c.exit_code == 0,
            image_id: c.image_id.clone(),
        });
        specs.insert(c.id, spec);
    }
    let networks = cl.n.list(pb::ListNetworksRequest {}).await?.into_inner().networks;
    Ok(Observed { containers, specs, networks })
}

/// The config hash of each service.
pub fn hashes(p: &Project) -> BTreeMap<String, String> {
    p.services.iter().map(|(n, s)| (n.clone(), s.config_hash())).collect()
}

/// The image ID of each service's image. With `pull`, a missing image is pulled first
/// (compose's default pull policy, `missing`); without, a missing image has no ID.
pub async fn image_ids(cl: &mut Clients, p: &Project, pull: bool) -> Res<BTreeMap<String, String>> {
    let out = Progress::new(p.services.values().map(|s| s.image.clone()));
    let mut by_ref: BTreeMap<String, String> = BTreeMap::new();
    let mut ids = BTreeMap::new();
    for (name, s) in &p.services {
        if !by_ref.contains_key(&s.image) {
            let id = match cl.i.inspect(pb::InspectImageRequest { image: s.image.clone() }).await {
                Ok(r) => r.into_inner().image.map(|i| i.id).unwrap_or_default(),
                Err(e) if e.code() == tonic::Code::NotFound && pull => {
                    let auth = crate::registry::credentials_for(&s.image)?;
                    let quiet = !std::io::IsTerminal::is_terminal(&std::io::stderr());
                    let img =
                        crate::registry::pull_image(&mut cl.i, s.image.clone(), auth, false, quiet, false).await?;
                    out.line("Image", &s.image, "Pulled");
                    img.id
                }
                Err(e) if e.code() == tonic::Code::NotFound => String::new(),
                Err(e) => return Err(e.into()),
            };
            by_ref.insert(s.image.clone(), id);
        }
        ids.insert(name.clone(), by_ref.get(&s.image).cloned().unwrap_or_default());
    }
    Ok(ids)
}

/// Plans against what the agent has (`images`: the image ID of each service).
pub fn plan_for(p: &Project, o: &Observed, images: &BTreeMap<String, String>, prune: bool) -> Res<Plan> {
    let have: Vec<super::plan::ExistingNetwork> = o
        .networks
        .iter()
        .map(|n| super::plan::ExistingNetwork {
            name: n.name.clone(),
            subnet: n.subnet.clone(),
            internal: n.internal,
            project: n.labels.get(model::LABEL_PROJECT).cloned(),
        })
        .collect();
    super::plan::check_networks(p, &have).map_err(Exit::agent)?;
    let nets: Vec<String> = o.networks.iter().map(|n| n.name.clone()).collect();
    let desired = super::plan::Desired { hashes: hashes(p), images: images.clone() };
    super::plan::plan(p, &desired, &o.containers, &nets, prune).map_err(Exit::agent)
}

fn stop_timeout(p: &Project, service: &str) -> Option<u32> {
    p.services.get(service).and_then(|s| s.stop_grace_period)
}

/// `apply`: carries the plan out; prints each change as compose does.
pub async fn apply(cl: &mut Clients, p: &Project, plan: &Plan) -> Res<u8> {
    let names = plan.steps.iter().map(|s| s.container.clone()).chain(plan.remove.iter().map(|e| e.name.clone()));
    let out = Progress::new(names.chain(plan.create_networks.iter().map(|n| n.name.clone())));
    // Every spec is built (and so checked) before anything changes.
    let mut specs = BTreeMap::new();
    for step in &plan.steps {
        if matches!(step.action, Action::Create | Action::Recreate(_)) {
            let s =
                p.services.get(&step.service).ok_or_else(|| Exit::agent(format!("no service {:?}", step.service)))?;
            specs.insert(step.service.clone(), spec::container_spec(p, &step.service, s, &step.hash)?);
        }
    }
    if !plan.orphans.is_empty() {
        let names: Vec<&str> = plan.orphans.iter().map(|e| e.name.as_str()).collect();
        eprintln!(
            "warning: found orphan containers ({}) for project {:?}: apply --prune removes them",
            names.join(", "),
            p.name
        );
    }
    for e in &plan.remove {
        remove(cl, e, stop_timeout(p, &e.service)).await?;
        out.line("Container", &e.name, "Removed");
    }
    for n in &plan.create_networks {
        let key = p.networks.iter().find(|(_, v)| v.name == n.name).map(|(k, _)| k.clone()).unwrap_or_default();
        let mut labels: std::collections::HashMap<String, String> = n.labels.clone().into_iter().collect();
        labels.insert(model::LABEL_PROJECT.into(), p.name.clone());
        labels.insert(model::LABEL_NETWORK.into(), key);
        let req = pb::CreateNetworkRequest {
            name: n.name.clone(),
            subnet: n.subnet.clone().unwrap_or_default(),
            internal: n.internal,
            labels,
        };
        cl.n.create(req).await?;
        out.line("Network", &n.name, "Created");
    }
    let mut ids: BTreeMap<String, String> = BTreeMap::new();
    // Old containers already removed: those in the network namespace of a service being
    // recreated go before it (the agent keeps a namespace's owner while others use it).
    let mut gone: BTreeSet<String> = BTreeSet::new();
    for step in &plan.steps {
        // Only what is started waits for what it depends on.
        if !matches!(step.action, Action::Unchanged(_)) {
            wait_for_dependencies(cl, p, &step.service, &ids, &out).await?;
        }
        if matches!(step.action, Action::Recreate(_)) {
            for later in &plan.steps {
                let joins = p.services.get(&later.service).and_then(|s| s.network_mode.as_deref())
                    == Some(format!("service:{}", step.service).as_str());
                if let (true, Action::Recreate(o)) = (joins, &later.action) {
                    remove(cl, o, stop_timeout(p, &later.service)).await?;
                    gone.insert(o.id.clone());
                }
            }
        }
        let spec = specs.remove(&step.service);
        let id = run_step(cl, p, step, spec, &gone, &out).await?;
        ids.insert(step.service.clone(), id);
    }
    if !plan.changes() {
        println!("{}: up to date", p.name);
    }
    Ok(0)
}

/// Waits until each service `service` depends on is as its `condition` asks.
async fn wait_for_dependencies(
    cl: &mut Clients,
    p: &Project,
    service: &str,
    ids: &BTreeMap<String, String>,
    out: &Progress,
) -> Res {
    let Some(s) = p.services.get(service) else { return Ok(()) };
    for (dep, cond) in &s.depends_on {
        let (Some(id), name) = (ids.get(dep), p.container_name(dep)) else { continue };
        let condition = match cond {
            Condition::Started => continue,
            Condition::Healthy => "healthy",
            Condition::CompletedSuccessfully => "",
        };
        out.line("Container", &name, "Waiting");
        let req = pb::WaitContainerRequest { id: id.clone(), condition: condition.into(), fail_unhealthy: true };
        let r =
            cl.c.wait(req)
                .await
                .map_err(|e| Exit::agent(format!("dependency failed to start: container {name}: {}", e.message())))?;
        let code = r.into_inner().exit_code;
        if *cond == Condition::CompletedSuccessfully && code != 0 {
            return Err(Exit::agent(format!(
                "service {dep:?} didn't complete successfully: exit {code} (service {service:?} depends on it)"
            )));
        }
        out.line("Container", &name, if *cond == Condition::Healthy { "Healthy" } else { "Exited" });
    }
    Ok(())
}

/// One service's step; the container's ID after it.
async fn run_step(
    cl: &mut Clients,
    p: &Project,
    step: &Step,
    spec: Option<pb::ContainerSpec>,
    gone: &BTreeSet<String>,
    out: &Progress,
) -> Res<String> {
    let s = p.services.get(&step.service).ok_or_else(|| Exit::agent(format!("no service {:?}", step.service)))?;
    let name = step.container.as_str();
    match &step.action {
        Action::Unchanged(e) => {
            out.line("Container", name, if e.running { "Running" } else { "Exited" });
            Ok(e.id.clone())
        }
        Action::Start(e) => {
            cl.c.start(pb::StartContainerRequest { id: e.id.clone() }).await?;
            out.line("Container", name, "Started");
            Ok(e.id.clone())
        }
        Action::Create => {
            let spec = spec.ok_or_else(|| Exit::agent(format!("no spec for {name}")))?;
            let id = create(cl, p, step, spec).await?;
            out.line("Container", name, "Created");
            cl.c.start(pb::StartContainerRequest { id: id.clone() }).await?;
            out.line("Container", name, "Started");
            Ok(id)
        }
        Action::Recreate(old) => {
            // The old container goes first: it holds the name and the ports (its new spec
            // was built and checked before anything changed).
            let spec = spec.ok_or_else(|| Exit::agent(format!("no spec for {name}")))?;
            if !gone.contains(&old.id) {
                remove(cl, old, s.stop_grace_period).await?;
            }
            let id = create(cl, p, step, spec).await?;
            out.line("Container", name, "Recreated");
            cl.c.start(pb::StartContainerRequest { id: id.clone() }).await?;
            out.line("Container", name, "Started");
            Ok(id)
        }
    }
}

/// Creates the step's container and joins it to its other networks; a failure there
/// removes it again.
async fn create(cl: &mut Clients, p: &Project, step: &Step, spec: pb::ContainerSpec) -> Res<String> {
    let s = p.services.get(&step.service).ok_or_else(|| Exit::agent(format!("no service {:?}", step.service)))?;
    let id = cl.c.create(pb::CreateContainerRequest { spec: Some(spec) }).await?.into_inner().id;
    for net in spec::extra_networks(p, s) {
        let req = pb::ConnectRequest { network: net, container: id.clone() };
        if let Err(e) = cl.n.connect_container(req).await {
            let _ =
                cl.c.remove(pb::RemoveContainerRequest { id: id.clone(), force: true, remove_volumes: false }).await;
            return Err(e.into());
        }
    }
    Ok(id)
}

async fn remove(cl: &mut Clients, e: &Existing, timeout: Option<u32>) -> Res {
    if e.running {
        cl.c.stop(pb::StopContainerRequest { id: e.id.clone(), timeout_seconds: timeout }).await?;
    }
    cl.c.remove(pb::RemoveContainerRequest { id: e.id.clone(), force: true, remove_volumes: false }).await?;
    Ok(())
}

/// `down`: the project's containers in reverse dependency order, then the networks apply
/// made for it (labelled with the project; external ones stay).
pub async fn down(cl: &mut Clients, p: &Project, timeout: Option<u32>) -> Res<u8> {
    let o = observe(cl, p).await?;
    let order = super::plan::down_order(p, &o.containers).map_err(Exit::agent)?;
    let nets: Vec<&pb::NetworkInfo> =
        o.networks.iter().filter(|n| n.labels.get(model::LABEL_PROJECT) == Some(&p.name)).collect();
    if order.is_empty() && nets.is_empty() {
        eprintln!("warning: no resource found to remove for project {:?}", p.name);
        return Ok(0);
    }
    let out = Progress::new(order.iter().map(|e| e.name.clone()).chain(nets.iter().map(|n| n.name.clone())));
    for e in &order {
        remove(cl, e, timeout.or_else(|| stop_timeout(p, &e.service))).await?;
        out.line("Container", &e.name, "Removed");
    }
    for n in nets {
        cl.n.remove(pb::RemoveNetworkRequest { name: n.name.clone() }).await?;
        out.line("Network", &n.name, "Removed");
    }
    Ok(0)
}
