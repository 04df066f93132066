//! `-p [hostIP:]hostPort[-end]:containerPort[-end][/tcp|/udp]`, as docker parses it.

use super::{NetError, PortMap};
use std::net::Ipv4Addr;

fn range(s: &str, what: &str, spec: &str) -> Result<(u16, u16), NetError> {
    let bad = || NetError::Invalid(format!("invalid port spec {spec:?}: bad {what} {s:?} (1-65535, or a-b)"));
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (a, b),
        None => (s, s),
    };
    let a: u16 = a.parse().map_err(|_| bad())?;
    let b: u16 = b.parse().map_err(|_| bad())?;
    if a == 0 || b < a {
        return Err(bad());
    }
    Ok((a, b))
}

/// Parses one `-p` value into one mapping per port.
pub fn parse(spec: &str) -> Result<Vec<PortMap>, NetError> {
    let (body, proto) = match spec.rsplit_once('/') {
        Some((b, p)) => (b, p.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if proto != "tcp" && proto != "udp" {
        return Err(NetError::Invalid(format!("invalid port spec {spec:?}: protocol must be tcp or udp")));
    }
    let parts: Vec<&str> = body.split(':').collect();
    let (ip, host, ctr) = match parts.as_slice() {
        [h, c] => (None, *h, *c),
        [ip, h, c] => (Some(*ip), *h, *c),
        _ => {
            return Err(NetError::Invalid(format!(
                "invalid port spec {spec:?}: use [hostIP:]hostPort:containerPort[/tcp|udp]"
            )))
        }
    };
    let host_ip = match ip {
        None | Some("") | Some("0.0.0.0") => None,
        Some(i) => Some(
            i.parse::<Ipv4Addr>()
                .map_err(|_| NetError::Invalid(format!("invalid port spec {spec:?}: bad host IP {i:?}")))?,
        ),
    };
    let (h0, h1) = range(host, "host port", spec)?;
    let (c0, c1) = range(ctr, "container port", spec)?;
    if h1 - h0 != c1 - c0 {
        return Err(NetError::Invalid(format!(
            "invalid port spec {spec:?}: the host and container ranges differ in size"
        )));
    }
    Ok((0..=(h1 - h0))
        .map(|i| PortMap { host_ip, host_port: h0 + i, container_port: c0 + i, proto: proto.clone() })
        .collect())
}

/// Refuses a host port that something on the host already listens on.
pub fn check_free(p: &PortMap) -> Result<(), NetError> {
    let ip = p.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
    let ok = match p.proto.as_str() {
        "udp" => std::net::UdpSocket::bind((ip, p.host_port)).is_ok(),
        _ => std::net::TcpListener::bind((ip, p.host_port)).is_ok(),
    };
    if ok {
        Ok(())
    } else {
        Err(NetError::Conflict(format!("host port {}/{} is already in use on the host", p.host_port, p.proto)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        let p = parse("6379:6379").unwrap();
        assert_eq!(p, vec![PortMap { host_ip: None, host_port: 6379, container_port: 6379, proto: "tcp".into() }]);
        let p = parse("127.0.0.1:8000-8002:9000-9002/udp").unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!((p[2].host_port, p[2].container_port, p[2].proto.as_str()), (8002, 9002, "udp"));
        assert_eq!(p[0].host_ip, Some(Ipv4Addr::LOCALHOST));
        for bad in ["80", "0:80", "70000:80", "80:80/sctp", "1-3:1-2", "x:1:2", "a:b:c:d"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
