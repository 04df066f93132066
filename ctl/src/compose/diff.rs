//! `diff`: what `apply` would do, one line per network and container (`+` made, `~`
//! recreated or started, `-` removed, blank unchanged), with what changed in a recreated
//! container's spec.

use super::apply::Observed;
use super::model::Project;
use super::plan::{Action, Plan};
use crate::error::Res;
use agent_proto::v1 as pb;

/// Prints the plan; exit 1 when it changes something, 0 when not, like diff(1).
pub fn print(p: &Project, plan: &Plan, o: &Observed) -> Res<u8> {
    for n in &plan.create_networks {
        println!("+ network {}: create", n.name);
    }
    for e in &plan.remove {
        println!("- container {} ({}): remove", e.name, e.service);
    }
    for step in &plan.steps {
        let c = &step.container;
        match &step.action {
            Action::Create => println!("+ container {c} ({}): create", step.service),
            Action::Start(_) => println!("~ container {c} ({}): start (stopped)", step.service),
            Action::Unchanged(_) => println!("  container {c} ({}): unchanged", step.service),
            Action::Recreate(old) => {
                let s = &p.services[&step.service];
                let new = super::spec::container_spec(p, &step.service, s, &step.hash)?;
                let what = match o.specs.get(&old.id) {
                    Some(_) if old.hash == step.hash => {
                        vec![format!("image {} now names {}", new.image, short(&step.image_id))]
                    }
                    Some(before) => changes(before, &new),
                    None => Vec::new(),
                };
                let what = if what.is_empty() { "config changed".to_string() } else { what.join(", ") };
                println!("~ container {c} ({}): recreate: {what}", step.service);
            }
        }
    }
    for e in &plan.orphans {
        println!("  container {} ({}): not in the file (apply --prune removes it)", e.name, e.service);
    }
    Ok(u8::from(plan.changes()))
}

/// An image ID as docker shows it: 12 hex digits.
fn short(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    hex.get(..12).unwrap_or(hex)
}

/// The fields of the spec that differ, as `field: old -> new` (`env: +A, -B, ~C`).
fn changes(old: &pb::ContainerSpec, new: &pb::ContainerSpec) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = |name: &str, a: String, b: String| {
        if a != b {
            out.push(format!("{name}: {a} -> {b}"));
        }
    };
    field("image", old.image.clone(), new.image.clone());
    field("command", format!("{:?}", old.command), format!("{:?}", new.command));
    field("entrypoint", format!("{:?}", old.entrypoint), format!("{:?}", new.entrypoint));
    field("ports", format!("{:?}", old.ports), format!("{:?}", new.ports));
    field("volumes", format!("{:?}", old.volumes), format!("{:?}", new.volumes));
    field("tmpfs", format!("{:?}", old.tmpfs), format!("{:?}", new.tmpfs));
    field("network", old.network_mode.clone(), new.network_mode.clone());
    field("user", old.user.clone(), new.user.clone());
    field("working_dir", old.working_dir.clone(), new.working_dir.clone());
    field("hostname", old.hostname.clone(), new.hostname.clone());
    field("restart", old.restart.clone(), new.restart.clone());
    field("read_only", old.read_only.to_string(), new.read_only.to_string());
    field("resources", format!("{:?}", old.resources), format!("{:?}", new.resources));
    let env = |s: &pb::ContainerSpec| -> Vec<(String, String)> {
        s.env
            .iter()
            .map(|e| e.split_once('=').map(|(k, v)| (k.into(), v.into())).unwrap_or((e.clone(), String::new())))
            .collect()
    };
    let (a, b) = (env(old), env(new));
    let mut d = Vec::new();
    for (k, v) in &b {
        match a.iter().find(|(x, _)| x == k) {
            None => d.push(format!("+{k}")),
            Some((_, w)) if w != v => d.push(format!("~{k}")),
            _ => {}
        }
    }
    d.extend(a.iter().filter(|(k, _)| !b.iter().any(|(x, _)| x == k)).map(|(k, _)| format!("-{k}")));
    if !d.is_empty() {
        out.push(format!("env: {}", d.join(", ")));
    }
    let user = |s: &pb::ContainerSpec| -> std::collections::BTreeMap<String, String> {
        s.labels
            .iter()
            .filter(|(k, _)| !k.starts_with("com.docker.compose."))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    if user(old) != user(new) {
        out.push(format!("labels: {:?} -> {:?}", user(old), user(new)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_what_changed() {
        let a =
            pb::ContainerSpec { image: "busybox".into(), env: vec!["A=1".into(), "B=2".into()], ..Default::default() };
        let b = pb::ContainerSpec {
            image: "busybox:1".into(),
            env: vec!["A=9".into(), "C=3".into()],
            ..Default::default()
        };
        assert_eq!(changes(&a, &b), ["image: busybox -> busybox:1", "env: ~A, +C, -B"]);
        assert!(changes(&a, &a).is_empty());
    }
}
