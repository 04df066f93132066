//! The one lexical path cleaning of the build: `.dockerignore` patterns and the paths they are matched against,
//! the Dockerfile's place in the context, COPY/ADD sources and destinations, WORKDIR, the context tar's entries.

use std::path::PathBuf;

/// Go's `filepath.Clean` for `/` paths: collapse `//`, drop `.`, resolve `..` lexically, drop trailing `/`.
pub fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".to_string();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ => {
                    if !rooted {
                        parts.push("..");
                    }
                }
            },
            s => parts.push(s),
        }
    }
    let body = parts.join("/");
    if rooted {
        format!("/{body}")
    } else if body.is_empty() {
        ".".to_string()
    } else {
        body
    }
}

/// `path` under a root it may not leave, relative to that root: cleaned like [`clean`], with a leading `/` meaning
/// the root (`/x` and `x` are the same); `None` when it climbs out (`../x`, `a/../../x`, `/../x`). The root itself is
/// the empty path.
pub fn clean_rel(path: &str) -> Option<PathBuf> {
    let cleaned = clean(path.trim_start_matches('/'));
    if cleaned == ".." || cleaned.starts_with("../") {
        return None;
    }
    Some(if cleaned == "." { PathBuf::new() } else { PathBuf::from(cleaned) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_path_matches_go() {
        for (input, want) in [
            ("", "."),
            (".", "."),
            ("./", "."),
            ("a/./b", "a/b"),
            ("a/../..", ".."),
            ("/../a", "/a"),
            ("//a//b//", "/a/b"),
            ("../../x", "../../x"),
            ("a/b/../../c", "c"),
        ] {
            assert_eq!(clean(input), want, "{input}");
        }
    }

    #[test]
    fn clean_rel_stays_under_the_root() {
        assert_eq!(clean_rel("/a/./b/../c"), Some(PathBuf::from("a/c")));
        assert_eq!(clean_rel("../x"), None);
        assert_eq!(clean_rel("a/../../x"), None);
        assert_eq!(clean_rel("/../x"), None);
        assert_eq!(clean_rel("/"), Some(PathBuf::new()));
        assert_eq!(clean_rel("./a//b/"), Some(PathBuf::from("a/b")));
    }
}
