//! Source IP classification: intranet (loopback, RFC 1918, RFC 6598 shared space, ULA,
//! link-local) or internet, as the seed's `ip_to_domain`, and CIDR sets for high-risk lists.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// Where an address is, from the cluster's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpScope {
    /// A private, loopback, link-local or otherwise non-public address.
    Intranet,
    /// A public address.
    Internet,
    /// Not an IP address.
    Invalid,
}

impl IpScope {
    /// The scope as written in the enrichment (`intranet`, `internet`).
    pub fn as_str(self) -> &'static str {
        match self {
            IpScope::Intranet => "intranet",
            IpScope::Internet => "internet",
            IpScope::Invalid => "invalid",
        }
    }
}

/// Parses an address as it appears in `sourceIPs`; IPv4-mapped IPv6 becomes IPv4.
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    let addr: IpAddr = s.trim().parse().ok()?;
    Some(match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    })
}

pub fn scope(addr: IpAddr) -> IpScope {
    let intranet = match addr {
        IpAddr::V4(a) => v4_intranet(a),
        IpAddr::V6(a) => v6_intranet(a),
    };
    if intranet {
        IpScope::Intranet
    } else {
        IpScope::Internet
    }
}

fn v4_intranet(a: Ipv4Addr) -> bool {
    let o = a.octets();
    a.is_loopback() || a.is_private() || a.is_link_local() || a.is_unspecified() || (o[0] == 100 && (o[1] & 0xc0) == 64)
    // 100.64.0.0/10, RFC 6598 (carrier-grade NAT, cloud VPCs)
}

fn v6_intranet(a: Ipv6Addr) -> bool {
    let s = a.segments();
    a.is_loopback()
        || a.is_unspecified()
        || (s[0] & 0xfe00) == 0xfc00 // fc00::/7 unique local
        || (s[0] & 0xffc0) == 0xfe80 // fe80::/10 link-local
}

/// A set of networks (CIDRs or single addresses).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpSet {
    nets: Vec<IpNet>,
}

impl IpSet {
    /// Parses `10.0.0.0/8`, `2001:db8::/32` or a bare address.
    pub fn parse_entry(s: &str) -> Result<IpNet, super::EnrichError> {
        let s = s.trim();
        if let Ok(net) = s.parse::<IpNet>() {
            return Ok(net.trunc());
        }
        match parse_ip(s) {
            Some(addr) => Ok(IpNet::from(addr)),
            None => Err(super::EnrichError::NotANetwork(s.to_string())),
        }
    }

    /// A set of the networks `nets`.
    pub fn new(nets: Vec<IpNet>) -> Self {
        IpSet { nets }
    }

    /// Whether the set has no network.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// Whether `addr` is in one of the networks.
    pub fn contains(&self, addr: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(&addr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sc(s: &str) -> IpScope {
        parse_ip(s).map_or(IpScope::Invalid, scope)
    }

    #[test]
    fn scopes() {
        for s in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.99.1",
            "100.64.0.1",
            "100.127.255.255",
            "169.254.1.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert_eq!(sc(s), IpScope::Intranet, "{s}");
        }
        for s in ["8.8.8.8", "172.32.0.1", "100.128.0.1", "203.0.113.7", "2001:db8::1", "::ffff:8.8.8.8"] {
            assert_eq!(sc(s), IpScope::Internet, "{s}");
        }
        assert_eq!(sc("not-an-ip"), IpScope::Invalid);
    }

    #[test]
    fn sets() {
        let set = IpSet::new(vec![
            IpSet::parse_entry("198.51.100.0/24").unwrap(),
            IpSet::parse_entry("2001:db8::7").unwrap(),
        ]);
        assert!(set.contains(parse_ip("198.51.100.200").unwrap()));
        assert!(!set.contains(parse_ip("198.51.101.1").unwrap()));
        assert!(set.contains(parse_ip("2001:db8::7").unwrap()));
        assert!(IpSet::parse_entry("300.1.1.1/8").is_err());
    }
}
