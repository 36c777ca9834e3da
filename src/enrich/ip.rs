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

    /// The enrichment member `","ipScope":"…` as `super::Members::open` writes it.
    pub(crate) fn json_member(self) -> &'static str {
        match self {
            IpScope::Intranet => "\",\"ipScope\":\"intranet",
            IpScope::Internet => "\",\"ipScope\":\"internet",
            IpScope::Invalid => "\",\"ipScope\":\"invalid",
        }
    }
}

/// Parses an address as it appears in `sourceIPs`; IPv4-mapped IPv6 becomes IPv4.
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    if let Some(v4) = dotted_quad(s.as_bytes()) {
        return Some(IpAddr::V4(v4));
    }
    if s == "::1" {
        // The loopback the apiserver's own clients come from on every control-plane node:
        // the general parser costs several hundred instructions in an interpreter.
        return Some(IpAddr::V6(Ipv6Addr::LOCALHOST));
    }
    let addr: IpAddr = s.trim().parse().ok()?;
    Some(match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    })
}

/// A plain dotted-quad IPv4 address (`10.0.0.1`: four decimal octets, no leading zeros), read
/// directly: the general address parser costs about a thousand instructions in an interpreter.
/// `None` for anything else, which the general parser then reads (it accepts every text this
/// does, with the same value: `dotted_quads_parse_as_std_does`).
fn dotted_quad(b: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut i = 0;
    for (n, octet) in octets.iter_mut().enumerate() {
        if n > 0 {
            if b.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        let start = i;
        let mut v: u32 = 0;
        while let Some(d) = b.get(i).filter(|d| d.is_ascii_digit()) {
            v = v * 10 + u32::from(d - b'0');
            i += 1;
            if i - start > 3 {
                return None;
            }
        }
        if i == start || v > 255 || (i - start > 1 && b[start] == b'0') {
            return None;
        }
        *octet = v as u8;
    }
    (i == b.len()).then(|| Ipv4Addr::from(octets))
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
    fn dotted_quads_parse_as_std_does() {
        let mut rng = crate::test_rng::XorShift::new(0x9e37_79b9_7f4a_7c15);
        let mut next = |m: u64| rng.below(m);
        let alphabet = b"0123456789.0123456789.2:a ";
        let mut fast = 0;
        for i in 0..300_000 {
            let text: String = if i % 2 == 0 {
                (0..4).map(|_| next(300).to_string()).collect::<Vec<_>>().join(".")
            } else {
                (0..1 + next(17)).map(|_| char::from(alphabet[next(alphabet.len() as u64) as usize])).collect()
            };
            let ours = dotted_quad(text.as_bytes());
            fast += usize::from(ours.is_some());
            if let Some(a) = ours {
                assert_eq!(Ok(a), text.parse::<Ipv4Addr>(), "{text:?}");
            }
            let general: Option<IpAddr> = text.trim().parse().ok();
            let general = general.map(|a| match a {
                IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(a, IpAddr::V4),
                v4 => v4,
            });
            assert_eq!(parse_ip(&text), general, "{text:?}");
        }
        assert!(fast > 50_000, "{fast}");
        assert_eq!(parse_ip("::1"), "::1".parse().ok());
        for t in ["01.2.3.4", "1.2.3.04", "256.1.1.1", "1.2.3", "1.2.3.4.", " 1.2.3.4", "0.0.0.0", "1234.1.1.1"] {
            assert_eq!(dotted_quad(t.as_bytes()), t.parse().ok(), "{t}");
        }
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
