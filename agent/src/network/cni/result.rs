//! Reading a CNI result (0.3.x to 1.0.0): the pod's addresses are its `ips`, the ones on
//! an interface inside the sandbox first.

use serde_json::Value;
use std::net::IpAddr;

/// The addresses of `result`, without their prefix length: the ones whose `interface`
/// points at an interface with a `sandbox` first (the pod's own), then the others, in the
/// result's order.
pub fn pod_ips(result: &Value) -> Vec<IpAddr> {
    let ifaces = result.get("interfaces").and_then(Value::as_array).cloned().unwrap_or_default();
    let in_sandbox = |ip: &Value| {
        ip.get("interface")
            .and_then(Value::as_u64)
            .and_then(|i| ifaces.get(usize::try_from(i).ok()?))
            .and_then(|i| i.get("sandbox"))
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
    };
    let ips = result.get("ips").and_then(Value::as_array).cloned().unwrap_or_default();
    let addr = |ip: &Value| -> Option<IpAddr> {
        let a = ip.get("address")?.as_str()?;
        a.split('/').next()?.parse().ok()
    };
    let mut out: Vec<IpAddr> = ips.iter().filter(|i| in_sandbox(i)).filter_map(addr).collect();
    for ip in ips.iter().filter(|i| !in_sandbox(i)).filter_map(addr) {
        if !out.contains(&ip) {
            out.push(ip);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_addresses_come_first() {
        let r: Value = serde_json::from_str(
            r#"{"cniVersion":"1.0.0",
                "interfaces":[{"name":"cni0","mac":"aa"},{"name":"veth1"},{"name":"eth0","sandbox":"/proc/1/ns/net"}],
                "ips":[{"address":"10.9.0.1/24","interface":0},{"address":"10.9.0.5/24","gateway":"10.9.0.1","interface":2},
                       {"address":"fd00::5/64","interface":2},{"address":"bad"}]}"#,
        )
        .unwrap();
        let ips: Vec<String> = pod_ips(&r).iter().map(|i| i.to_string()).collect();
        assert_eq!(ips, ["10.9.0.5", "fd00::5", "10.9.0.1"]);
        assert!(pod_ips(&Value::Null).is_empty());
    }
}
