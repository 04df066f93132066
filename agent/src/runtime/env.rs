//! The one rule for environment variables, used by run (image, then HOSTNAME/TERM, then the
//! request), exec (the container's, then the request) and build (ENV, and build args where
//! ENV has not set them): entries are `KEY=VALUE`, the key is what comes before the first
//! `=`, and a later value of a key replaces the earlier one in place (order of first
//! appearance is kept, as docker does).

fn key(e: &str) -> &str {
    e.split_once('=').map(|(k, _)| k).unwrap_or(e)
}

/// Refuses an entry that is not `KEY=VALUE` (empty, no key, a NUL byte), naming it.
pub fn check(env: &[String]) -> Result<(), super::RuntimeError> {
    match env.iter().find(|e| e.is_empty() || e.starts_with('=') || e.contains('\0')) {
        Some(e) => {
            Err(super::RuntimeError::InvalidArgument(format!("invalid environment variable {e:?}: use KEY=VALUE")))
        }
        None => Ok(()),
    }
}

/// `over` merged into `base` by key: later wins.
pub fn merge(base: &[String], over: &[String]) -> Vec<String> {
    let mut out: Vec<String> = base.to_vec();
    for e in over {
        match out.iter_mut().find(|x| key(x) == key(e)) {
            Some(x) => *x = e.clone(),
            None => out.push(e.clone()),
        }
    }
    out
}

/// `defaults` added to `base` where `base` does not set their key.
pub fn fill(base: &[String], defaults: &[String]) -> Vec<String> {
    let mut out = base.to_vec();
    for d in defaults {
        if !out.iter().any(|x| key(x) == key(d)) {
            out.push(d.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_wins_in_place_and_defaults_only_fill() {
        let m = merge(&["PATH=/bin".into(), "A=1".into()], &["A=2".into(), "B=3".into()]);
        assert_eq!(m, vec!["PATH=/bin", "A=2", "B=3"]);
        assert_eq!(merge(&["A=1".into()], &["A=x=y".into()]), vec!["A=x=y"]);
        let f = fill(&["A=1".into()], &["A=9".into(), "B=2".into()]);
        assert_eq!(f, vec!["A=1", "B=2"]);
        assert!(check(&["A=1".into(), "B".into()]).is_ok());
        assert!(check(&["=x".into()]).unwrap_err().to_string().contains("\"=x\""));
    }
}
