//! A container's DNS: its resolv.conf (nameservers, search domains, options, like docker's
//! `--dns`, `--dns-search`, `--dns-option` and the CRI's DNSConfig) and the `--add-host`
//! lines of its /etc/hosts.

use super::{Result, RuntimeError};

/// What a container asks of its resolver (empty: the host's).
#[derive(Clone, Copy, Debug, Default)]
pub struct Dns<'a> {
    pub servers: &'a [String],
    pub search: &'a [String],
    pub options: &'a [String],
}

/// The container's resolv.conf: the host's, with loopback nameservers replaced by
/// `upstream` (127.0.0.x is not reachable from a container's own network namespace), and
/// each of servers / search / options replacing the host's when given.
pub fn resolv_conf(host: &str, dns: Dns<'_>, upstream: &[String]) -> String {
    let mut out = String::new();
    let mut replaced = false;
    for l in host.lines() {
        let mut w = l.split_whitespace();
        let word = w.next();
        let addr = w.next().unwrap_or("");
        let is_ns = word == Some("nameserver");
        if is_ns && (!dns.servers.is_empty() || addr.starts_with("127.") || addr == "::1") {
            if dns.servers.is_empty() && !replaced {
                for u in upstream {
                    out.push_str(&format!("nameserver {u}\n"));
                }
            }
            replaced = true;
            continue;
        }
        if matches!(word, Some("search") | Some("domain")) && !dns.search.is_empty()
            || word == Some("options") && !dns.options.is_empty()
        {
            continue;
        }
        out.push_str(l);
        out.push('\n');
    }
    for d in dns.servers {
        out.push_str(&format!("nameserver {d}\n"));
    }
    if !dns.search.is_empty() {
        out.push_str(&format!("search {}\n", dns.search.join(" ")));
    }
    if !dns.options.is_empty() {
        out.push_str(&format!("options {}\n", dns.options.join(" ")));
    }
    out
}

/// Validates `--dns` and `--add-host` values.
pub fn check_dns_and_hosts(dns: &[String], add_hosts: &[String]) -> Result<()> {
    for d in dns {
        if d.parse::<std::net::IpAddr>().is_err() {
            return Err(RuntimeError::InvalidArgument(format!("invalid --dns {d:?}: an IP address is expected")));
        }
    }
    for h in add_hosts {
        let ok = h.split_once(':').is_some_and(|(n, ip)| {
            !n.is_empty()
                && n.len() <= 253
                && n.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b))
                && ip.parse::<std::net::IpAddr>().is_ok()
        });
        if !ok {
            return Err(RuntimeError::InvalidArgument(format!("invalid --add-host {h:?}: use name:ip")));
        }
    }
    Ok(())
}

/// Refuses search domains and options that would break resolv.conf (spaces, newlines).
pub fn check_search_and_options(search: &[String], options: &[String]) -> Result<()> {
    for (what, v) in search.iter().map(|v| ("search domain", v)).chain(options.iter().map(|v| ("resolver option", v))) {
        if v.is_empty() || v.len() > 253 || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(RuntimeError::InvalidArgument(format!("invalid DNS {what} {v:?}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_replaces_loopback_resolvers_and_what_is_asked_for() {
        let host = "search example\nnameserver 127.0.0.53\noptions edns0\n";
        let none = Dns::default();
        assert_eq!(
            resolv_conf(host, none, &["10.0.0.53".into()]),
            "search example\nnameserver 10.0.0.53\noptions edns0\n"
        );
        assert_eq!(resolv_conf(host, none, &[]), "search example\noptions edns0\n");
        let host = "nameserver 192.0.2.1\n";
        assert_eq!(resolv_conf(host, none, &[]), "nameserver 192.0.2.1\n");
        let servers = ["192.0.2.9".to_string()];
        assert_eq!(resolv_conf(host, Dns { servers: &servers, ..none }, &[]), "nameserver 192.0.2.9\n");
        let (search, options) =
            (["svc.cluster.local".to_string(), "cluster.local".to_string()], ["ndots:5".to_string()]);
        let pod = Dns { servers: &servers, search: &search, options: &options };
        assert_eq!(
            resolv_conf("search lan\ndomain lan\nnameserver 192.0.2.1\noptions edns0\n", pod, &[]),
            "nameserver 192.0.2.9\nsearch svc.cluster.local cluster.local\noptions ndots:5\n"
        );
        assert!(check_dns_and_hosts(&["x".into()], &[]).is_err());
        assert!(check_dns_and_hosts(&[], &["db:10.0.0.5".into()]).is_ok());
        assert!(check_dns_and_hosts(&[], &["db".into()]).is_err());
        assert!(check_search_and_options(&search, &options).is_ok());
        assert!(check_search_and_options(&["a b".into()], &[]).is_err());
    }
}
