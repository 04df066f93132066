//! Image references, normalized the way Docker does (`busybox` →
//! `docker.io/library/busybox:latest`) and shown back in their familiar short form.

use std::fmt;

/// A parsed image reference: `[domain/]path[:tag][@digest]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    pub domain: String,
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

/// Why a reference was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid image reference {input:?}: {why}")]
pub struct ReferenceError {
    pub input: String,
    pub why: &'static str,
}

const DEFAULT_DOMAIN: &str = "docker.io";

impl Reference {
    /// Parses and normalizes a reference; a missing tag becomes `latest` unless a digest is given.
    pub fn parse(input: &str) -> Result<Reference, ReferenceError> {
        let err = |why| ReferenceError { input: input.to_string(), why };
        if input.is_empty() {
            return Err(err("it is empty"));
        }
        if input.len() > 512 {
            return Err(err("it is longer than 512 characters"));
        }
        let (name, digest) = match input.split_once('@') {
            Some((n, d)) => {
                let hex = d.strip_prefix("sha256:").ok_or_else(|| err("the digest must be sha256:<64 hex>"))?;
                if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
                    return Err(err("the digest must be sha256:<64 hex>"));
                }
                (n, Some(d.to_string()))
            }
            None => (input, None),
        };
        let (name, tag) = match name.rfind(':') {
            Some(i) if !name[i + 1..].contains('/') => (&name[..i], Some(name[i + 1..].to_string())),
            _ => (name, None),
        };
        if let Some(t) = &tag {
            let ok = !t.is_empty()
                && t.len() <= 128
                && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
                && !t.starts_with(['.', '-']);
            if !ok {
                return Err(err("a tag is 1-128 of [A-Za-z0-9_.-], not starting with . or -"));
            }
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
                (first.to_string(), rest.to_string())
            }
            _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
        };
        let (host, port) = domain.split_once(':').unwrap_or((&domain, ""));
        let host_ok = !host.is_empty()
            && host.split('.').all(|l| {
                !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') && !l.starts_with('-')
            });
        if !host_ok || !port.bytes().all(|b| b.is_ascii_digit()) || (domain.contains(':') && port.is_empty()) {
            return Err(err("the registry must be a host name or address with an optional :port"));
        }
        let path = if domain == DEFAULT_DOMAIN && !path.contains('/') { format!("library/{path}") } else { path };
        // Like docker: the repository name (registry + path), not the tag, is limited.
        if domain.len() + 1 + path.len() > 255 {
            return Err(err("the repository name is longer than 255 characters"));
        }
        if path.is_empty()
            || !path.split('/').all(|c| {
                !c.is_empty()
                    && c.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                    && c.as_bytes()[0].is_ascii_alphanumeric()
            })
        {
            return Err(err("a repository name is lowercase letters, digits and separators (. _ -)"));
        }
        let tag = match (&tag, &digest) {
            (None, None) => Some("latest".to_string()),
            _ => tag,
        };
        Ok(Reference { domain, path, tag, digest })
    }

    /// The familiar form Docker shows: `busybox:latest`, `local/base:1`, `host:5000/x:y`.
    pub fn familiar(&self) -> String {
        let mut s = if self.domain == DEFAULT_DOMAIN {
            self.path.strip_prefix("library/").unwrap_or(&self.path).to_string()
        } else {
            format!("{}/{}", self.domain, self.path)
        };
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }
}

impl fmt::Display for Reference {
    /// The fully qualified form: `docker.io/library/busybox:latest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.path)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_like_docker() {
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
        assert_eq!(r.familiar(), "busybox:latest");
        let r = Reference::parse("local/base:1").unwrap();
        assert_eq!(r.to_string(), "docker.io/local/base:1");
        assert_eq!(r.familiar(), "local/base:1");
        let r = Reference::parse("localhost:5000/a/b:v2").unwrap();
        assert_eq!(r.domain, "localhost:5000");
        assert_eq!(r.path, "a/b");
        assert_eq!(r.familiar(), "localhost:5000/a/b:v2");
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("quay.io/x/y@{d}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.digest.as_deref(), Some(d.as_str()));
    }

    #[test]
    fn refuses_bad_references() {
        for bad in ["", "UPPER", "a:", "a@sha256:12", "a//b", "-x", "a:b c", "a:-t"] {
            assert!(Reference::parse(bad).is_err(), "{bad} should be refused");
        }
        let e = Reference::parse("Bad").unwrap_err();
        assert!(e.to_string().contains("\"Bad\""));
    }
}
