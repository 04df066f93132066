//! Groups: a pod-like parent cgroup (`<instance>/group-<name>`) with limits that bound
//! the usage of all its members; members' own cgroups live below it.

use super::{group_cgroup, names, Result, Runtime, RuntimeError};
use crate::cgroups::Resources;
use crate::store::Kind;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A group as the store keeps it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GroupRecord {
    pub name: String,
    pub resources: Resources,
    pub labels: BTreeMap<String, String>,
    pub created_at: i64,
}

impl Runtime {
    /// Creates a group and its cgroup with the given limits.
    pub async fn create_group(
        &self,
        name: &str,
        resources: Resources,
        labels: BTreeMap<String, String>,
    ) -> Result<GroupRecord> {
        if !names::valid_name(name) || name.len() > 64 {
            return Err(RuntimeError::InvalidArgument(format!(
                "invalid group name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-], 2-64 characters"
            )));
        }
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        resources.validate(cpus).map_err(|e| RuntimeError::InvalidArgument(e.0))?;
        let _g = self.create_lock.lock().await;
        if self.store.get::<GroupRecord>(Kind::Group, name)?.is_some() {
            return Err(RuntimeError::AlreadyExists(format!("group {name:?} already exists")));
        }
        self.admit(&resources, None)?;
        let cg = group_cgroup(name);
        self.cgroups.create(&cg)?;
        if let Err(e) = self.cgroups.apply(&cg, &resources) {
            let _ = self.cgroups.remove(&cg);
            return Err(e.into());
        }
        let rec = GroupRecord {
            name: name.to_string(),
            resources,
            labels,
            created_at: chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0),
        };
        if let Err(e) = self.store.put(Kind::Group, name, &rec) {
            let _ = self.cgroups.remove(&cg);
            return Err(e.into());
        }
        Ok(rec)
    }

    /// Every group.
    pub fn groups(&self) -> Result<Vec<GroupRecord>> {
        Ok(self.store.all(Kind::Group)?)
    }

    /// One group.
    pub fn group(&self, name: &str) -> Result<GroupRecord> {
        self.store.get(Kind::Group, name)?.ok_or_else(|| RuntimeError::NotFound(format!("group {name}")))
    }

    /// IDs of a group's member containers.
    pub fn group_members(&self, name: &str) -> Result<Vec<String>> {
        Ok(self.list()?.into_iter().filter(|c| c.spec.group == name).map(|c| c.id).collect())
    }

    /// Removes an empty group and its cgroup.
    pub async fn remove_group(&self, name: &str) -> Result<()> {
        let _g = self.create_lock.lock().await;
        self.group(name)?;
        let members = self.group_members(name)?;
        if !members.is_empty() {
            let short: Vec<&str> = members.iter().map(|m| &m[..12]).collect();
            return Err(RuntimeError::FailedPrecondition(format!(
                "group {name} still has {} container(s): {}; remove them first",
                members.len(),
                short.join(", ")
            )));
        }
        self.cgroups.remove(&group_cgroup(name))?;
        self.store.delete(Kind::Group, name)?;
        Ok(())
    }
}
