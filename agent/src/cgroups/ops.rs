//! The seam between the runtime and the cgroup file system: everything the runtime asks of
//! cgroups, as a trait. [`super::Cgroups`] is the real one (v1, v2, hybrid); unit tests of
//! the runtime use a fake that records what exists and fails where told.

use super::stats::Usage;
use super::{CgroupError, CgroupHost, Cgroups, Resources};
use std::path::PathBuf;

/// What the runtime does with cgroups (`id` is relative to the instance's parent).
pub trait CgroupOps: Send + Sync {
    /// The host layout.
    fn host(&self) -> &CgroupHost;
    /// The path of `id` relative to each hierarchy root.
    fn relative(&self, id: &str) -> String;
    /// The directories of `id` in every hierarchy.
    fn dirs(&self, id: &str) -> Vec<PathBuf>;
    fn create(&self, id: &str) -> Result<Vec<PathBuf>, CgroupError>;
    fn remove(&self, id: &str) -> Result<(), CgroupError>;
    /// Removes the instance's parent (at shutdown with nothing running).
    fn remove_parent(&self);
    /// The names of the instance's direct children (containers, shims, groups).
    fn children(&self) -> Vec<String>;
    fn has_device_controller(&self) -> bool;
    fn restrict_devices(&self, id: &str, allow: Option<&[String]>) -> Result<(), CgroupError>;
    fn oom_killed(&self, id: &str) -> bool;
    fn kill_all(&self, id: &str);
    fn apply(&self, id: &str, r: &Resources) -> Result<(), CgroupError>;
    /// Refuses limits whose files this host's kernel does not offer.
    fn check_supported(&self, r: &Resources) -> Result<(), CgroupError>;
    fn read_back(&self, id: &str) -> Resources;
    fn usage(&self, id: &str) -> Usage;
    /// Freezes (`true`) or thaws the container's processes (`pause`/`unpause`); returns
    /// once the kernel reports it done.
    fn freeze(&self, id: &str, frozen: bool) -> Result<(), CgroupError>;
    /// Whether the container's cgroup is frozen (read from the kernel).
    fn is_frozen(&self, id: &str) -> bool;
    /// The PIDs (host) of the container's processes.
    fn pids(&self, id: &str) -> Vec<i32>;
    /// The first component of a `--cgroup-parent` missing in some hierarchy.
    fn first_missing(&self, parent: &str) -> Option<String>;
    /// Removes `parent` up to `made` where no other cgroup is left in it.
    fn remove_parent_chain(&self, parent: &str, made: &str);
}

impl CgroupOps for Cgroups {
    fn host(&self) -> &CgroupHost {
        Cgroups::host(self)
    }
    fn relative(&self, id: &str) -> String {
        Cgroups::relative(self, id)
    }
    fn dirs(&self, id: &str) -> Vec<PathBuf> {
        Cgroups::dirs(self, id)
    }
    fn create(&self, id: &str) -> Result<Vec<PathBuf>, CgroupError> {
        Cgroups::create(self, id)
    }
    fn remove(&self, id: &str) -> Result<(), CgroupError> {
        Cgroups::remove(self, id)
    }
    fn remove_parent(&self) {
        Cgroups::remove_parent(self)
    }
    fn children(&self) -> Vec<String> {
        Cgroups::children(self)
    }
    fn has_device_controller(&self) -> bool {
        Cgroups::has_device_controller(self)
    }
    fn restrict_devices(&self, id: &str, allow: Option<&[String]>) -> Result<(), CgroupError> {
        Cgroups::restrict_devices(self, id, allow)
    }
    fn oom_killed(&self, id: &str) -> bool {
        Cgroups::oom_killed(self, id)
    }
    fn kill_all(&self, id: &str) {
        Cgroups::kill_all(self, id)
    }
    fn apply(&self, id: &str, r: &Resources) -> Result<(), CgroupError> {
        Cgroups::apply(self, id, r)
    }
    fn check_supported(&self, r: &Resources) -> Result<(), CgroupError> {
        Cgroups::check_supported(self, r)
    }
    fn read_back(&self, id: &str) -> Resources {
        Cgroups::read_back(self, id)
    }
    fn usage(&self, id: &str) -> Usage {
        Cgroups::usage(self, id)
    }
    fn freeze(&self, id: &str, frozen: bool) -> Result<(), CgroupError> {
        Cgroups::freeze(self, id, frozen)
    }
    fn is_frozen(&self, id: &str) -> bool {
        Cgroups::is_frozen(self, id)
    }
    fn pids(&self, id: &str) -> Vec<i32> {
        Cgroups::pids(self, id)
    }
    fn first_missing(&self, parent: &str) -> Option<String> {
        Cgroups::first_missing(self, parent)
    }
    fn remove_parent_chain(&self, parent: &str, made: &str) {
        Cgroups::remove_parent_chain(self, parent, made)
    }
}
