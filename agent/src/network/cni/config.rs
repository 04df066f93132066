//! Network configuration files: the first of `cni_conf_dir` in lexical order (like
//! containerd and libcni), a `.conflist` (a list of plugins) or a `.conf`/`.json` (a single
//! plugin, taken as a list of one), and where each plugin's executable is.

use super::CniError;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// The CNI versions whose results this client reads (Debian's plugins 1.1 speak up to 1.0.0).
pub const VERSIONS: &[&str] = &["0.3.0", "0.3.1", "0.4.0", "1.0.0"];

/// A network configuration list as loaded.
#[derive(Clone, Debug, PartialEq)]
pub struct NetList {
    pub name: String,
    pub cni_version: String,
    /// `disableCheck`: the operator asked for no CHECK.
    pub disable_check: bool,
    /// Each plugin's own object (with its `type`), in order.
    pub plugins: Vec<Map<String, Value>>,
    /// The file it came from.
    pub file: PathBuf,
}

impl NetList {
    /// Parses a conflist (`list`) or a single plugin's config.
    pub fn parse(text: &str, file: &Path, list: bool) -> Result<NetList, CniError> {
        let bad = |m: String| CniError::Config(format!("{}: {m}", file.display()));
        let v: Value = serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
        let Value::Object(mut top) = v else { return Err(bad("not a JSON object".into())) };
        let name = top.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
        if name.is_empty() {
            return Err(bad("no \"name\"".into()));
        }
        let cni_version = top.get("cniVersion").and_then(Value::as_str).unwrap_or_default().to_string();
        if !VERSIONS.contains(&cni_version.as_str()) {
            return Err(bad(format!("cniVersion {cni_version:?} is not one of {}", VERSIONS.join(", "))));
        }
        let disable_check = top.get("disableCheck").and_then(Value::as_bool).unwrap_or(false);
        let plugins = if list {
            let Some(Value::Array(ps)) = top.remove("plugins") else {
                return Err(bad("no \"plugins\" list".into()));
            };
            let mut out = Vec::new();
            for (i, p) in ps.into_iter().enumerate() {
                let Value::Object(p) = p else { return Err(bad(format!("plugin {i} is not an object"))) };
                out.push(p);
            }
            out
        } else {
            vec![top]
        };
        if plugins.is_empty() {
            return Err(bad("the \"plugins\" list is empty".into()));
        }
        for (i, p) in plugins.iter().enumerate() {
            let ty = p.get("type").and_then(Value::as_str).unwrap_or_default();
            if ty.is_empty() || ty.contains('/') || ty.starts_with('.') {
                return Err(bad(format!("plugin {i} has no valid \"type\" ({ty:?})")));
            }
        }
        Ok(NetList { name, cni_version, disable_check, plugins, file: file.to_path_buf() })
    }

    /// The conflist as JSON again (what the cache keeps, so a DEL after a restart uses the
    /// configuration the ADD used).
    pub fn to_value(&self) -> Value {
        serde_json::json!({
            "name": self.name,
            "cniVersion": self.cni_version,
            "disableCheck": self.disable_check,
            "plugins": self.plugins,
        })
    }

    pub fn from_value(v: &Value) -> Result<NetList, CniError> {
        NetList::parse(&v.to_string(), Path::new("(cached config)"), true)
    }

    /// Whether CHECK is defined for this version (0.4.0 on) and not disabled.
    pub fn can_check(&self) -> bool {
        !self.disable_check && !self.cni_version.starts_with("0.3")
    }
}

/// The plugin `type` of a plugin object.
pub fn plugin_type(p: &Map<String, Value>) -> &str {
    p.get("type").and_then(Value::as_str).unwrap_or_default()
}

/// Loads the first configuration of `dir` in lexical order: `*.conflist`, `*.conf`, `*.json`.
pub fn load(dir: &Path) -> Result<NetList, CniError> {
    let rd = std::fs::read_dir(dir)
        .map_err(|e| CniError::NotReady(format!("cannot read the CNI config dir {}: {e}", dir.display())))?;
    let mut files: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("conflist" | "conf" | "json")))
        .collect();
    files.sort();
    let Some(file) = files.into_iter().next() else {
        return Err(CniError::NotReady(format!(
            "no network config found in {} (*.conflist, *.conf, *.json)",
            dir.display()
        )));
    };
    let text =
        std::fs::read_to_string(&file).map_err(|e| CniError::Config(format!("reading {}: {e}", file.display())))?;
    let list = file.extension().and_then(|e| e.to_str()) == Some("conflist");
    NetList::parse(&text, &file, list)
}

/// The executable of plugin `ty` in the first of `dirs` that has it.
pub fn find_plugin(dirs: &[PathBuf], ty: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    dirs.iter()
        .map(|d| d.join(ty))
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// The plugins of `list` that none of `dirs` holds.
pub fn missing_plugins(list: &NetList, dirs: &[PathBuf]) -> Vec<String> {
    list.plugins.iter().map(plugin_type).filter(|t| find_plugin(dirs, t).is_none()).map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_file_in_lexical_order_and_single_plugin_configs() {
        let d = tempfile::tempdir().unwrap();
        let e = load(d.path()).unwrap_err();
        assert!(matches!(e, CniError::NotReady(_)) && e.to_string().contains("no network config"), "{e}");
        std::fs::write(
            d.path().join("20-b.conflist"),
            r#"{"cniVersion":"1.0.0","name":"b","plugins":[{"type":"bridge"},{"type":"portmap"}]}"#,
        )
        .unwrap();
        std::fs::write(d.path().join("10-a.conf"), r#"{"cniVersion":"0.4.0","name":"a","type":"bridge","bridge":"x"}"#)
            .unwrap();
        std::fs::write(d.path().join("00-readme.txt"), "not a config").unwrap();
        let l = load(d.path()).unwrap();
        assert_eq!((l.name.as_str(), l.plugins.len()), ("a", 1));
        assert_eq!(l.plugins[0]["bridge"], "x");
        std::fs::remove_file(d.path().join("10-a.conf")).unwrap();
        let l = load(d.path()).unwrap();
        assert_eq!(l.name, "b");
        assert_eq!(l.plugins.iter().map(plugin_type).collect::<Vec<_>>(), ["bridge", "portmap"]);
        assert_eq!(NetList::from_value(&l.to_value()).unwrap().plugins, l.plugins);
    }

    #[test]
    fn bad_configs_name_the_file_and_the_problem() {
        let f = Path::new("/x/1.conflist");
        let e = |t: &str| NetList::parse(t, f, true).unwrap_err().to_string();
        assert!(e("{").contains("/x/1.conflist: not JSON"));
        assert!(e(r#"{"cniVersion":"1.0.0","plugins":[]}"#).contains("no \"name\""));
        assert!(e(r#"{"cniVersion":"9.9.9","name":"n","plugins":[]}"#).contains("\"9.9.9\""));
        assert!(e(r#"{"cniVersion":"1.0.0","name":"n","plugins":[]}"#).contains("empty"));
        assert!(e(r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"../sh"}]}"#).contains("\"../sh\""));
        assert!(!NetList::parse(r#"{"cniVersion":"0.3.1","name":"n","plugins":[{"type":"a"}]}"#, f, true)
            .unwrap()
            .can_check());
    }

    #[test]
    fn plugins_are_found_only_when_executable() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("bridge");
        std::fs::write(&p, "#!/bin/sh\n").unwrap();
        let l = NetList::parse(
            r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge"},{"type":"portmap"}]}"#,
            Path::new("f"),
            true,
        )
        .unwrap();
        let dirs = vec![d.path().to_path_buf()];
        assert_eq!(missing_plugins(&l, &dirs), ["bridge", "portmap"]);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(missing_plugins(&l, &dirs), ["portmap"]);
        assert_eq!(find_plugin(&dirs, "bridge"), Some(p));
    }
}
