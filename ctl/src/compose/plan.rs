//! What `apply` would do, decided from the project and what the agent has: per service
//! create, recreate (its config hash changed, or its image's tag now names another
//! image), start (stopped), or nothing; networks to
//! make; containers to remove (of services no longer listed, with `--prune`). Pure: `diff`
//! prints it, `apply` carries it out.

use super::model::{Network, Project};

/// A container of the project that the agent has.
#[derive(Debug, Clone, PartialEq)]
pub struct Existing {
    pub id: String,
    pub name: String,
    pub service: String,
    pub hash: String,
    pub running: bool,
    /// It ran and exited with 0.
    pub exited_ok: bool,
    /// The image the container was made from.
    pub image_id: String,
}

/// What each service should be: its config hash, and the ID of the image its reference
/// names now (absent or empty: not known, e.g. not pulled yet).
#[derive(Debug, Clone, Default)]
pub struct Desired {
    pub hashes: std::collections::BTreeMap<String, String>,
    pub images: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Create,
    /// The config or the image changed: the old container goes, a new one is made.
    Recreate(Existing),
    /// Same config, not running.
    Start(Existing),
    Unchanged(Existing),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub service: String,
    pub container: String,
    pub hash: String,
    /// The image ID the service's reference names now (empty: not known).
    pub image_id: String,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    pub create_networks: Vec<Network>,
    /// In start order.
    pub steps: Vec<Step>,
    /// Removed first: orphans (with prune) and extra containers of listed services.
    pub remove: Vec<Existing>,
    /// Orphans left alone (no prune): apply warns about them.
    pub orphans: Vec<Existing>,
}

impl Plan {
    pub fn changes(&self) -> bool {
        !self.create_networks.is_empty()
            || !self.remove.is_empty()
            || self.steps.iter().any(|s| !matches!(s.action, Action::Unchanged(_)))
    }
}

/// Plans `apply`; `networks` are the names of the agent's networks.
pub fn plan(
    p: &Project,
    desired: &Desired,
    existing: &[Existing],
    networks: &[String],
    prune: bool,
) -> Result<Plan, String> {
    let mut out = Plan::default();
    for n in p.networks.values() {
        if networks.contains(&n.name) {
            continue;
        }
        if n.external {
            return Err(format!("external network {:?} not found", n.name));
        }
        out.create_networks.push(n.clone());
    }
    for e in existing {
        if !p.services.contains_key(&e.service) {
            if prune {
                out.remove.push(e.clone());
            } else {
                out.orphans.push(e.clone());
            }
        }
    }
    for service in p.start_order()? {
        let container = p.container_name(&service);
        let hash = desired.hashes.get(&service).cloned().unwrap_or_default();
        let image = desired.images.get(&service).filter(|i| !i.is_empty());
        let mine = existing.iter().filter(|e| e.service == service);
        let mut current = None;
        for e in mine {
            if e.name == container && current.is_none() {
                current = Some(e.clone());
            } else {
                // A container of the service under another name (container_name changed).
                out.remove.push(e.clone());
            }
        }
        // A container in another service's network namespace must follow that service
        // when it is made anew: the namespace it joined is gone.
        let joined = p.services.get(&service).and_then(|s| s.network_mode.as_deref()?.strip_prefix("service:"));
        let host_remade = joined.is_some_and(|j| {
            out.steps.iter().any(|st| st.service == j && matches!(st.action, Action::Create | Action::Recreate(_)))
        });
        let done = |e: &Existing| e.exited_ok && is_job(p, &service);
        let action = match current {
            None => Action::Create,
            Some(e) if e.hash != hash || host_remade => Action::Recreate(e),
            Some(e) if image.is_some_and(|i| !e.image_id.is_empty() && *i != e.image_id) => Action::Recreate(e),
            // A job others wait to complete that did is not run again.
            Some(e) if !e.running && !done(&e) => Action::Start(e),
            Some(e) => Action::Unchanged(e),
        };
        let image_id = image.cloned().unwrap_or_default();
        out.steps.push(Step { service, container, hash, image_id, action });
    }
    Ok(out)
}

/// A network the agent has, as far as the file can ask about it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExistingNetwork {
    pub name: String,
    pub subnet: String,
    pub internal: bool,
    /// Its `com.docker.compose.project` label.
    pub project: Option<String>,
}

/// An error when a network of the file exists but is not what the file says (another
/// project's, another subnet, internal or not): apply does not change networks in place.
pub fn check_networks(p: &Project, have: &[ExistingNetwork]) -> Result<(), String> {
    for n in p.networks.values().filter(|n| !n.external) {
        let Some(h) = have.iter().find(|h| h.name == n.name) else { continue };
        let why = match &h.project {
            Some(other) if *other != p.name => format!("belongs to project {other:?}"),
            _ if n.subnet.as_ref().is_some_and(|s| *s != h.subnet) => {
                format!("has subnet {}, the file asks for {}", h.subnet, n.subnet.as_deref().unwrap_or_default())
            }
            _ if n.internal != h.internal => format!("has internal={}, the file asks for {}", h.internal, n.internal),
            _ => continue,
        };
        return Err(format!("network {:?} {why}: remove it (down) or mark it external", n.name));
    }
    Ok(())
}

/// Whether some service waits for `service` to complete (`service_completed_successfully`).
fn is_job(p: &Project, service: &str) -> bool {
    p.services.values().any(|s| s.depends_on.get(service) == Some(&super::model::Condition::CompletedSuccessfully))
}

/// The order `down` removes the project's containers in: those of unlisted services first,
/// then the services in reverse start order.
pub fn down_order(p: &Project, existing: &[Existing]) -> Result<Vec<Existing>, String> {
    let order = p.start_order()?;
    let rank = |e: &Existing| order.iter().position(|s| *s == e.service).map_or(0, |i| order.len() - i);
    let mut out = existing.to_vec();
    out.sort_by_key(|e| (rank(e), e.name.clone()));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::interpolate::Vars;

    fn project() -> Project {
        let text = "services:\n  web:\n    image: b\n    depends_on: [db]\n  db:\n    image: b\n  cache:\n    image: b\n    networks: [ext]\nnetworks:\n  ext: {external: true}\n";
        crate::compose::file::parse(text, std::path::Path::new("/x/p"), None, &mut Vars::default()).unwrap()
    }

    fn hashes(p: &Project) -> Desired {
        let hashes = p.services.iter().map(|(n, s)| (n.clone(), s.config_hash())).collect();
        let images = p.services.keys().map(|n| (n.clone(), "sha256:img".to_string())).collect();
        Desired { hashes, images }
    }

    fn have(service: &str, hash: &str, running: bool) -> Existing {
        Existing {
            id: format!("id-{service}"),
            name: format!("p-{service}-1"),
            service: service.into(),
            hash: hash.into(),
            running,
            exited_ok: false,
            image_id: "sha256:img".into(),
        }
    }

    #[test]
    fn from_nothing_everything_is_made_in_order() {
        let p = project();
        let nets = vec!["ext".to_string()];
        let plan = plan(&p, &hashes(&p), &[], &nets, false).unwrap();
        let names: Vec<&str> = plan.create_networks.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["p_default"]);
        let steps: Vec<(&str, &Action)> = plan.steps.iter().map(|s| (s.container.as_str(), &s.action)).collect();
        assert_eq!(steps, [("p-cache-1", &Action::Create), ("p-db-1", &Action::Create), ("p-web-1", &Action::Create)]);
        assert!(plan.changes());
        let e = super::plan(&p, &hashes(&p), &[], &[], false).unwrap_err();
        assert!(e.contains("external network \"ext\""), "{e}");
    }

    #[test]
    fn only_what_changed_is_touched() {
        let p = project();
        let h = hashes(&p);
        let nets = vec!["ext".to_string(), "p_default".to_string()];
        let mut have_all = vec![
            have("cache", &h.hashes["cache"], true),
            have("db", &h.hashes["db"], true),
            have("web", &h.hashes["web"], true),
        ];
        let same = plan(&p, &h, &have_all, &nets, true).unwrap();
        assert!(!same.changes(), "{same:?}");
        have_all[1].hash = "old".into();
        have_all[2].running = false;
        let orphan = have("gone", "x", true);
        have_all.push(orphan.clone());
        let pl = plan(&p, &h, &have_all, &nets, false).unwrap();
        assert!(matches!(pl.steps[0].action, Action::Unchanged(_)));
        assert!(matches!(&pl.steps[1].action, Action::Recreate(e) if e.id == "id-db"));
        assert!(matches!(&pl.steps[2].action, Action::Start(e) if e.id == "id-web"));
        assert_eq!((pl.remove.len(), pl.orphans.as_slice()), (0, &[orphan.clone()][..]));
        let pruned = plan(&p, &h, &have_all, &nets, true).unwrap();
        assert_eq!((pruned.remove.as_slice(), pruned.orphans.len()), (&[orphan][..], 0));
        // A service's container under an old name goes; its own name is made.
        let renamed = Existing { name: "old-name".into(), ..have("cache", &h.hashes["cache"], true) };
        let pl = plan(&p, &h, std::slice::from_ref(&renamed), &nets, false).unwrap();
        assert_eq!((pl.remove.as_slice(), &pl.steps[0].action), (&[renamed][..], &Action::Create));
        // The tag now names another image: recreated; an image not known here: not compared.
        let mut h2 = h.clone();
        h2.images.insert("cache".into(), "sha256:new".into());
        h2.images.insert("db".into(), String::new());
        have_all[1].hash = h.hashes["db"].clone();
        let pl = plan(&p, &h2, &have_all, &nets, false).unwrap();
        assert!(matches!(&pl.steps[0].action, Action::Recreate(e) if e.id == "id-cache"), "{pl:?}");
        assert!(matches!(pl.steps[1].action, Action::Unchanged(_)), "{pl:?}");
    }

    #[test]
    fn a_service_in_another_ones_netns_follows_it() {
        let text = "services:\n  db:\n    image: b\n  side:\n    image: b\n    network_mode: service:db\n";
        let p = crate::compose::file::parse(text, std::path::Path::new("/x/p"), None, &mut Vars::default()).unwrap();
        let h = hashes(&p);
        let nets = vec!["p_default".to_string()];
        let mut have_all = vec![have("db", &h.hashes["db"], true), have("side", &h.hashes["side"], true)];
        assert!(!plan(&p, &h, &have_all, &nets, false).unwrap().changes());
        have_all[0].hash = "old".into();
        let pl = plan(&p, &h, &have_all, &nets, false).unwrap();
        assert!(matches!(pl.steps[1].action, Action::Recreate(_)), "{pl:?}");
    }

    #[test]
    fn networks_that_differ_are_refused() {
        let text = "services:\n  a:\n    image: b\nnetworks:\n  default: {internal: true, ipam: {config: [{subnet: 10.1.2.0/24}]}}\n";
        let p = crate::compose::file::parse(text, std::path::Path::new("/x/p"), None, &mut Vars::default()).unwrap();
        let ours = ExistingNetwork {
            name: "p_default".into(),
            subnet: "10.1.2.0/24".into(),
            internal: true,
            project: Some("p".into()),
        };
        assert!(check_networks(&p, std::slice::from_ref(&ours)).is_ok());
        let e = check_networks(&p, &[ExistingNetwork { subnet: "10.9.9.0/24".into(), ..ours.clone() }]).unwrap_err();
        assert!(e.contains("has subnet 10.9.9.0/24") && e.contains("10.1.2.0/24"), "{e}");
        let e = check_networks(&p, &[ExistingNetwork { internal: false, ..ours.clone() }]).unwrap_err();
        assert!(e.contains("internal=false"), "{e}");
        let e = check_networks(&p, &[ExistingNetwork { project: Some("q".into()), ..ours }]).unwrap_err();
        assert!(e.contains("project \"q\""), "{e}");
    }

    #[test]
    fn a_completed_job_is_not_run_again() {
        let text = "services:\n  app:\n    image: b\n    depends_on: {job: {condition: service_completed_successfully}}\n  job:\n    image: b\n  other:\n    image: b\n";
        let p = crate::compose::file::parse(text, std::path::Path::new("/x/p"), None, &mut Vars::default()).unwrap();
        let h = hashes(&p);
        let nets = vec!["p_default".to_string()];
        let done = |s: &str| Existing { exited_ok: true, ..have(s, &h.hashes[s], false) };
        let all = vec![have("app", &h.hashes["app"], true), done("job"), done("other")];
        let pl = plan(&p, &h, &all, &nets, false).unwrap();
        let acts: Vec<(&str, bool)> =
            pl.steps.iter().map(|s| (s.service.as_str(), matches!(s.action, Action::Start(_)))).collect();
        assert_eq!(acts, [("job", false), ("app", false), ("other", true)], "only a job stays done");
    }

    #[test]
    fn down_goes_in_reverse() {
        let p = project();
        let all = [have("db", "", true), have("web", "", true), have("zz", "", false), have("cache", "", true)];
        let order: Vec<String> = down_order(&p, &all).unwrap().into_iter().map(|e| e.service).collect();
        assert_eq!(order, ["zz", "web", "db", "cache"]);
    }
}
