//! docker's `--mount` flag (`type=bind,source=…,target=…,readonly,bind-propagation=…`,
//! `type=volume,source=NAME,target=…[,readonly][,volume-nocopy][,volume-opt=K=V]` and
//! `type=tmpfs,target=…,tmpfs-size=…,tmpfs-mode=…`), turned into the `-v` and `--tmpfs`
//! forms the agent's API takes (which the agent parses and checks).

/// What one `--mount` becomes.
#[derive(Debug, PartialEq, Eq)]
pub enum Mount {
    /// A `-v HOST:CONTAINER[:OPTIONS]` string.
    Volume(String),
    /// A `--tmpfs PATH[:OPTIONS]` string.
    Tmpfs(String),
    /// A volume's `-v NAME:CONTAINER[:ro]` (or `CONTAINER`: anonymous), and the driver
    /// options to create it with when it does not exist yet.
    Named { volume: String, name: String, options: Vec<(String, String)> },
}

/// Parses one `--mount` value (comma-separated `key=value` fields, as docker's CSV).
pub fn parse(spec: &str) -> Result<Mount, String> {
    let bad = |why: String| format!("invalid --mount {spec:?}: {why}");
    let (mut kind, mut src, mut dst, mut ro, mut prop) = (None, None, None, false, None);
    let (mut size, mut mode) = (None, None);
    let mut vol_opts: Vec<(String, String)> = Vec::new();
    let mut no_copy = false;
    for field in spec.split(',') {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let value = || v.filter(|v| !v.is_empty()).ok_or_else(|| bad(format!("{k} needs a value")));
        match k.as_str() {
            "type" => kind = Some(value()?),
            "source" | "src" => src = Some(value()?),
            "target" | "destination" | "dst" => dst = Some(value()?),
            "readonly" | "ro" => {
                ro = match v {
                    None | Some("1") | Some("true") => true,
                    Some("0") | Some("false") => false,
                    Some(o) => return Err(bad(format!("readonly={o:?} is not true or false"))),
                }
            }
            "bind-propagation" => prop = Some(value()?),
            "tmpfs-size" => size = Some(value()?),
            "tmpfs-mode" => mode = Some(value()?),
            "volume-nocopy" => {
                no_copy = match v {
                    None | Some("1") | Some("true") => true,
                    Some("0") | Some("false") => false,
                    Some(o) => return Err(bad(format!("volume-nocopy={o:?} is not true or false"))),
                }
            }
            "volume-opt" => {
                let (ok, ov) = value()?.split_once('=').ok_or_else(|| bad("volume-opt takes KEY=VALUE".into()))?;
                vol_opts.push((ok.to_string(), ov.to_string()));
            }
            "" => {}
            k => return Err(bad(format!("unknown field {k:?}"))),
        }
    }
    let dst = dst.ok_or_else(|| bad("target is required".into()))?;
    let plain = |p: &str, what: &str| {
        if p.contains(':') || p.contains(',') {
            Err(bad(format!("the {what} {p:?} contains ':' or ','")))
        } else {
            Ok(())
        }
    };
    plain(dst, "target")?;
    if kind != Some("volume") && (no_copy || !vol_opts.is_empty()) {
        return Err(bad("volume-opt and volume-nocopy are for volume mounts".into()));
    }
    match kind {
        Some("bind") => {
            let src = src.ok_or_else(|| bad("source is required for a bind mount".into()))?;
            plain(src, "source")?;
            if size.is_some() || mode.is_some() {
                return Err(bad("tmpfs options on a bind mount".into()));
            }
            let mut opts: Vec<&str> = Vec::new();
            if ro {
                opts.push("ro");
            }
            opts.extend(prop);
            let opts = if opts.is_empty() { String::new() } else { format!(":{}", opts.join(",")) };
            Ok(Mount::Volume(format!("{src}:{dst}{opts}")))
        }
        Some("tmpfs") => {
            if src.is_some() || prop.is_some() {
                return Err(bad("source and bind-propagation are for bind mounts".into()));
            }
            let mut opts: Vec<String> = Vec::new();
            if ro {
                opts.push("ro".into());
            }
            opts.extend(size.map(|s| format!("size={s}")));
            opts.extend(mode.map(|m| format!("mode={m}")));
            let opts = if opts.is_empty() { String::new() } else { format!(":{}", opts.join(",")) };
            Ok(Mount::Tmpfs(format!("{dst}{opts}")))
        }
        Some("volume") => {
            if size.is_some() || mode.is_some() || prop.is_some() {
                return Err(bad("tmpfs and bind options on a volume mount".into()));
            }
            let name = src.unwrap_or_default();
            plain(name, "source")?;
            if name.starts_with('/') {
                return Err(bad(format!("the source {name:?} of a volume is a name, not a path (type=bind)")));
            }
            if name.is_empty() && !vol_opts.is_empty() {
                return Err(bad("volume-opt needs a named volume (source=NAME)".into()));
            }
            let opts: Vec<&str> = [(ro, "ro"), (no_copy, "nocopy")].iter().filter(|o| o.0).map(|o| o.1).collect();
            let opts = if opts.is_empty() { String::new() } else { format!(":{}", opts.join(",")) };
            let volume = if name.is_empty() { format!("{dst}{opts}") } else { format!("{name}:{dst}{opts}") };
            Ok(Mount::Named { volume, name: name.to_string(), options: vol_opts })
        }
        Some(t) => Err(bad(format!("type {t:?} is not supported (bind, volume or tmpfs)"))),
        None => Err(bad("type is required (bind, volume or tmpfs)".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_mounts_become_volumes_and_tmpfs() {
        assert_eq!(
            parse("type=bind,source=/a,target=/b,readonly,bind-propagation=rshared").unwrap(),
            Mount::Volume("/a:/b:ro,rshared".into())
        );
        assert_eq!(parse("type=bind,src=/a,dst=/b").unwrap(), Mount::Volume("/a:/b".into()));
        assert_eq!(parse("type=bind,src=/a,dst=/b,ro=false").unwrap(), Mount::Volume("/a:/b".into()));
        assert_eq!(
            parse("type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770").unwrap(),
            Mount::Tmpfs("/t:size=1m,mode=1770".into())
        );
        for bad in [
            "type=bind,target=/b",
            "type=volume,src=/v,dst=/b",
            "src=/a,dst=/b",
            "type=bind,src=/a:x,dst=/b",
            "type=bind,src=/a,dst=/b,volume-nocopy",
        ] {
            assert!(parse(bad).unwrap_err().contains(bad), "{bad}");
        }
        assert!(parse("type=bind,src=/a,dst=/b,bogus=1").unwrap_err().contains("bogus"));
    }

    #[test]
    fn docker_volume_mounts() {
        assert_eq!(
            parse("type=volume,source=data,target=/d,readonly").unwrap(),
            Mount::Named { volume: "data:/d:ro".into(), name: "data".into(), options: vec![] }
        );
        assert_eq!(
            parse("type=volume,src=n,target=/e,volume-nocopy,readonly").unwrap(),
            Mount::Named { volume: "n:/e:ro,nocopy".into(), name: "n".into(), options: vec![] }
        );
        assert_eq!(
            parse("type=volume,target=/cache").unwrap(),
            Mount::Named { volume: "/cache".into(), name: String::new(), options: vec![] }
        );
        assert_eq!(
            parse("type=volume,src=t,dst=/t,volume-opt=type=tmpfs,volume-opt=device=tmpfs").unwrap(),
            Mount::Named {
                volume: "t:/t".into(),
                name: "t".into(),
                options: vec![("type".into(), "tmpfs".into()), ("device".into(), "tmpfs".into())]
            }
        );
        for bad in [
            "type=volume,dst=/d,volume-opt=type=tmpfs",
            "type=volume,src=v,dst=/d,volume-opt=x",
            "type=volume,src=v,dst=/d,tmpfs-size=1m",
        ] {
            assert!(parse(bad).unwrap_err().contains(bad), "{bad}");
        }
    }
}
