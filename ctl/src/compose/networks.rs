//! Networks in the file: the top-level ones (the agent's network each means) and the
//! `networks:` of a service.

use super::model::Network;
use super::yaml::{Known, Node, Result};

const NETWORK_KEYS: Known = Known {
    compose: &[
        "attachable",
        "driver",
        "driver_opts",
        "enable_ipv4",
        "enable_ipv6",
        "external",
        "internal",
        "ipam",
        "labels",
        "name",
    ],
};

/// A top-level network: the agent's network it means.
pub fn network(project: &str, key: &str, n: &Node) -> Result<Network> {
    let mut net = Network { name: format!("{project}_{key}"), ..Default::default() };
    if n.is_null() {
        return Ok(net);
    }
    let mut name = None;
    n.keys(
        |k, v| {
            match k {
                "name" => name = Some(v.str()?),
                "external" => net.external = v.bool()?,
                "internal" => net.internal = v.bool()?,
                "labels" => {
                    net.labels = v.list_or_dict('=')?.into_iter().map(|(k, v)| (k, v.unwrap_or_default())).collect()
                }
                "driver" if v.str()? == "bridge" => {}
                "driver" => return Err(v.err(format!("network driver {:?} is not supported (bridge)", v.str()?))),
                "ipam" => net.subnet = ipam(v)?,
                "attachable" | "enable_ipv4" if v.bool()? => {}
                "enable_ipv6" if !v.bool()? => {}
                _ => return Ok(false),
            }
            Ok(true)
        },
        &NETWORK_KEYS,
    )?;
    if let Some(nm) = name {
        net.name = nm;
    } else if net.external {
        net.name = key.to_string();
    }
    Ok(net)
}

fn ipam(v: &Node) -> Result<Option<String>> {
    let mut subnet = None;
    v.keys(
        |k, x| {
            match k {
                "driver" if x.str()? == "default" => {}
                "config" => {
                    let cfgs = x.seq()?;
                    if cfgs.len() > 1 {
                        return Err(x.err("one subnet per network"));
                    }
                    for c in cfgs {
                        c.keys(
                            |k, y| {
                                match k {
                                    "subnet" => subnet = Some(y.str()?),
                                    _ => return Ok(false),
                                }
                                Ok(true)
                            },
                            &Known { compose: &["ip_range", "gateway", "aux_addresses"] },
                        )?;
                    }
                }
                _ => return Ok(false),
            }
            Ok(true)
        },
        &Known { compose: &["driver", "options"] },
    )?;
    Ok(subnet)
}

/// A service's `networks:`, a list or a map (whose per-network settings are not supported).
pub fn of_service(v: &Node) -> Result<Vec<String>> {
    if let Ok(list) = v.seq() {
        return list.iter().map(Node::str).collect();
    }
    let mut out = Vec::new();
    for (k, x) in v.map()? {
        if !x.is_null() {
            x.keys(
                |_, _| Ok(false),
                &Known {
                    compose: &[
                        "aliases",
                        "ipv4_address",
                        "ipv6_address",
                        "priority",
                        "mac_address",
                        "driver_opts",
                        "gw_priority",
                        "link_local_ips",
                        "interface_name",
                    ],
                },
            )?;
        }
        out.push(k.name.clone());
    }
    Ok(out)
}
