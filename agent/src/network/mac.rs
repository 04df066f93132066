//! An Ethernet (MAC) address: `--mac-address`, parsed once (six octets, unicast) and given
//! to the container's eth0 when its veth pair is created (`netlink::add_veth_to_bridge`).

use super::NetError;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A unicast MAC address (the low bit of the first octet is 0: a multicast address would
/// make the interface unusable, as the kernel refuses it only at `ip link set`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// Parses `02:42:ac:11:00:02` (or with `-`): six hex octets, unicast.
    pub fn parse(s: &str) -> Result<MacAddr, NetError> {
        let bad = |why: &str| NetError::Invalid(format!("invalid --mac-address {s:?}: {why}"));
        let sep = if s.contains('-') { '-' } else { ':' };
        let parts: Vec<&str> = s.split(sep).collect();
        if parts.len() != 6 {
            return Err(bad("use six hex octets, e.g. 02:42:ac:11:00:02"));
        }
        let mut b = [0u8; 6];
        for (i, p) in parts.iter().enumerate() {
            if p.len() != 2 {
                return Err(bad("use six hex octets, e.g. 02:42:ac:11:00:02"));
            }
            b[i] = u8::from_str_radix(p, 16).map_err(|_| bad("use six hex octets, e.g. 02:42:ac:11:00:02"))?;
        }
        if b[0] & 1 == 1 {
            return Err(bad("a multicast address (the first octet's low bit is set); use a unicast one"));
        }
        Ok(MacAddr(b))
    }
}

impl std::fmt::Display for MacAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5])
    }
}

impl Serialize for MacAddr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for MacAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        MacAddr::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn six_unicast_octets_parse_and_print_lowercase() {
        let m = MacAddr::parse("02:42:AC:11:00:02").unwrap();
        assert_eq!(m.0, [2, 0x42, 0xac, 0x11, 0, 2]);
        assert_eq!(m.to_string(), "02:42:ac:11:00:02");
        assert_eq!(MacAddr::parse("02-42-ac-11-00-02").unwrap(), m);
        let back: MacAddr = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn bad_or_multicast_addresses_are_refused_naming_the_value() {
        for bad in
            ["", "02:42:ac:11:00", "02:42:ac:11:00:02:03", "02:42:ac:11:00:zz", "2:42:ac:11:00:02", "02:42:ac:11:0002"]
        {
            let e = MacAddr::parse(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("{bad:?}")) && e.contains("six hex octets"), "{bad}: {e}");
        }
        let e = MacAddr::parse("01:00:5e:00:00:01").unwrap_err().to_string();
        assert!(e.contains("multicast"), "{e}");
        let e = MacAddr::parse("ff:ff:ff:ff:ff:ff").unwrap_err().to_string();
        assert!(e.contains("multicast"), "{e}");
    }
}
