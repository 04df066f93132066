//! docker's other spellings of verbs agentctl has, rewritten before parsing: the
//! `container` management forms (`container ls` = `ps`, `container rm` = `rm`, …) and the
//! top-level image verbs `history`, `tag`, `load` (= `image import`) and `import`
//! (= `image import --rootfs`), with their docker flags.

use std::ffi::OsString;

/// Global flags that take a value (their value is not the verb).
const GLOBAL_WITH_VALUE: &[&str] =
    &["-H", "--host", "--context", "--tlscacert", "--tlscert", "--tlskey", "--node-timeout"];

/// `args` (without argv\[0\]) with docker's alias forms in agentctl's.
pub fn rewrite(args: Vec<OsString>) -> Vec<OsString> {
    let s: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    let mut i = 0;
    while i < s.len() && s[i].starts_with('-') {
        i += if GLOBAL_WITH_VALUE.contains(&s[i].as_str()) { 2 } else { 1 };
    }
    if i >= s.len() {
        return args;
    }
    let (head, verb, rest) = (&s[..i], s[i].as_str(), &s[i + 1..]);
    let tail: Vec<String> = match verb {
        "container" => match rest.split_first() {
            Some((v, r)) if v == "ls" || v == "list" => {
                std::iter::once("ps".to_string()).chain(r.iter().cloned()).collect()
            }
            Some((v, r)) if v == "prune" => {
                std::iter::once("container-prune".to_string()).chain(r.iter().cloned()).collect()
            }
            Some(_) => rest.to_vec(),
            None => return args,
        },
        "history" | "tag" => ["image", verb].iter().map(|x| x.to_string()).chain(rest.iter().cloned()).collect(),
        "load" => load(rest),
        "import" => import(rest),
        _ => return args,
    };
    head.iter().cloned().chain(tail).map(OsString::from).collect()
}

/// `load [-i FILE] [-q]` → `image import FILE|-`.
fn load(rest: &[String]) -> Vec<String> {
    let mut file = "-".to_string();
    let mut other = Vec::new();
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-i" | "--input" => file = it.next().cloned().unwrap_or_default(),
            "-q" | "--quiet" => {}
            x if x.starts_with("--input=") => file = x["--input=".len()..].to_string(),
            _ => other.push(a.clone()),
        }
    }
    ["image", "import"].iter().map(|x| x.to_string()).chain(other).chain([file]).collect()
}

/// `import [-c CMD…] FILE|- [REPOSITORY[:TAG]]` → `image import --rootfs [-t REF] FILE`.
fn import(rest: &[String]) -> Vec<String> {
    let mut out: Vec<String> = ["image", "import", "--rootfs"].iter().map(|x| x.to_string()).collect();
    let positional: Vec<&String> = rest.iter().filter(|a| !a.starts_with('-') || *a == "-").collect();
    out.extend(rest.iter().filter(|a| a.starts_with('-') && *a != "-").cloned());
    if let Some(r) = positional.get(1) {
        out.extend(["-t".to_string(), r.to_string()]);
    }
    if let Some(f) = positional.first() {
        out.push(f.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::rewrite;

    fn rw(a: &str) -> String {
        let v = rewrite(a.split_whitespace().map(Into::into).collect());
        v.iter().map(|x| x.to_string_lossy().into_owned()).collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn dockers_spellings() {
        assert_eq!(rw("container ls -a"), "ps -a");
        assert_eq!(rw("container prune -f --filter until=1h"), "container-prune -f --filter until=1h");
        assert_eq!(rw("-H unix:///x container rm -f web"), "-H unix:///x rm -f web");
        assert_eq!(rw("container inspect web"), "inspect web");
        assert_eq!(rw("history busybox"), "image history busybox");
        assert_eq!(rw("tag busybox mine:1"), "image tag busybox mine:1");
        assert_eq!(rw("load -i img.tar"), "image import img.tar");
        assert_eq!(rw("load"), "image import -");
        assert_eq!(rw("import rootfs.tar my/app:1"), "image import --rootfs -t my/app:1 rootfs.tar");
        assert_eq!(rw("import - my/app"), "image import --rootfs -t my/app -");
        assert_eq!(rw("ps -a"), "ps -a");
        assert_eq!(rw("run --rm busybox history"), "run --rm busybox history", "only the verb position");
    }
}
