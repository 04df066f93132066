//! `--cgroup-parent`: the cgroup a container's own is created in. Relative (`mygroup/sub`)
//! is below the instance's parent in each hierarchy (`<instance>/mygroup/sub/<id>`);
//! absolute (`/mygroup`, as docker's) is from each hierarchy's root. A parent missing at
//! create is made at start and removed with the container; one that existed is left.

use super::Cgroups;
use std::path::Path;

/// Why a `--cgroup-parent` was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid --cgroup-parent {0:?}: {1}")]
pub struct InvalidParent(pub String, pub &'static str);

/// A validated `--cgroup-parent`: `/a/b` or `a/b`, no empty, `.` or `..` components.
pub fn validate(p: &str) -> Result<String, InvalidParent> {
    let bad = |why| Err(InvalidParent(p.to_string(), why));
    let rest = p.strip_prefix('/').unwrap_or(p);
    if rest.is_empty() {
        return bad("name a cgroup (the hierarchy's root is not one)");
    }
    if rest.len() > 1024 {
        return bad("longer than 1024 bytes");
    }
    for c in rest.split('/') {
        match c {
            "" => return bad("empty path component"),
            "." | ".." => return bad("'.' and '..' are not allowed"),
            _ if c.contains(|x: char| x.is_control()) => return bad("control characters are not allowed"),
            _ => {}
        }
    }
    Ok(p.to_string())
}

impl Cgroups {
    /// The first component of `parent` (as `parent` itself is written: relative or
    /// absolute) missing in some hierarchy: what a container made there must remove.
    pub fn first_missing(&self, parent: &str) -> Option<String> {
        let mut prefix = String::new();
        for c in parent.trim_start_matches('/').split('/') {
            if !prefix.is_empty() || parent.starts_with('/') {
                prefix.push('/');
            }
            prefix.push_str(c);
            let missing = self.host.hierarchies.iter().any(|h| !self.path_in(&h.mount_point, &prefix).is_dir());
            if missing {
                return Some(prefix);
            }
        }
        None
    }

    /// Removes `parent` and its ancestors up to `made` (the first one a container made),
    /// deepest first, in every hierarchy; one still in use (another container's) is left.
    pub fn remove_parent_chain(&self, parent: &str, made: &str) {
        for h in &self.host.hierarchies {
            let top = self.path_in(&h.mount_point, made);
            let mut dir = self.path_in(&h.mount_point, parent);
            while dir.starts_with(&top) {
                match std::fs::remove_dir(&dir) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(_) => break,
                }
                match dir.parent() {
                    Some(p) if p != Path::new("") => dir = p.to_path_buf(),
                    _ => break,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_are_validated() {
        assert_eq!(validate("/mygroup").unwrap(), "/mygroup");
        assert_eq!(validate("a/b").unwrap(), "a/b");
        for bad in ["", "/", "a//b", "a/", "../x", "/a/../b", "./a"] {
            assert!(validate(bad).is_err(), "{bad}");
        }
        assert!(validate("a/../b").unwrap_err().to_string().contains("\"a/../b\""));
    }

    #[test]
    fn made_parents_go_with_the_container_and_others_stay() {
        let tree = tempfile::tempdir().unwrap();
        let root = tree.path();
        let mi = format!("40 1 0:26 / {} rw - cgroup2 cgroup2 rw\n", root.display());
        let host = super::super::CgroupHost::from_mountinfo(&mi, |_| Some(String::new())).unwrap();
        let cg = Cgroups::new(host, "inst");
        std::fs::create_dir_all(root.join("inst/keep")).unwrap();
        assert_eq!(cg.first_missing("keep"), None);
        assert_eq!(cg.first_missing("keep/new/deeper").as_deref(), Some("keep/new"));
        assert_eq!(cg.first_missing("/abs/x").as_deref(), Some("/abs"));
        cg.create("keep/new/deeper/c1").unwrap();
        cg.create("/abs/x/c2").unwrap();
        assert!(root.join("inst/keep/new/deeper/c1").is_dir() && root.join("abs/x/c2").is_dir());
        assert_eq!(cg.relative("/abs/x/c2"), "/abs/x/c2");
        cg.remove("keep/new/deeper/c1").unwrap();
        cg.remove_parent_chain("keep/new/deeper", "keep/new");
        assert!(!root.join("inst/keep/new").exists() && root.join("inst/keep").is_dir());
        cg.remove("/abs/x/c2").unwrap();
        cg.remove_parent_chain("/abs/x", "/abs");
        assert!(!root.join("abs").exists());
    }

    #[test]
    fn v2_enables_the_controllers_on_every_ancestor_of_a_parent() {
        let tree = tempfile::tempdir().unwrap();
        let root = tree.path();
        let mi = format!("40 1 0:26 / {} rw - cgroup2 cgroup2 rw\n", root.display());
        let host = super::super::CgroupHost::from_mountinfo(&mi, |_| Some("memory io".into())).unwrap();
        let cg = Cgroups::new(host, "inst");
        cg.create("a/b/c1").unwrap();
        for d in ["", "inst", "inst/a", "inst/a/b"] {
            let f = root.join(d).join("cgroup.subtree_control");
            assert_eq!(std::fs::read_to_string(&f).unwrap(), "+io", "{}: the last controller written", f.display());
        }
        assert!(!root.join("inst/a/b/c1/cgroup.subtree_control").exists(), "not on the container's own");
    }
}
