//! The router's own addresses as the packet path sees them: which destinations are
//! local, and which address an ICMP error is sent from.
//!
//! Built by the router from the configuration and swapped whole (arc-swap in
//! [`super::Forwarder`]) when the configuration changes; read-only on the packet path.
//! Owns no configuration parsing. Source choice follows RFC 1812 section 4.3.2.4 and
//! RFC 4443 section 2.2.

use crate::dataplane::Ingress;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// AllSPFRouters and AllDRouters (RFC 2328 appendix A.1) and their OSPFv3 counterparts
/// (RFC 5340 appendix A.1): joined on every tunnel, so traffic to them is local.
pub const OSPF_V4_GROUPS: [Ipv4Addr; 2] =
    [Ipv4Addr::new(224, 0, 0, 5), Ipv4Addr::new(224, 0, 0, 6)];
pub const OSPF_V6_GROUPS: [Ipv6Addr; 2] = [
    Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 5),
    Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 6),
];

/// The router's own unicast addresses, with the interface each lives on when known.
#[derive(Debug, Clone, Default)]
pub struct LocalAddresses {
    /// Sorted and deduplicated, for a binary search per packet.
    v4: Vec<u32>,
    v6: Vec<u128>,
    /// In the order given: the fallback when choosing an ICMP source.
    ordered: Vec<IpAddr>,
    router_id: Option<Ipv4Addr>,
    interfaces: HashMap<Ingress, Vec<IpAddr>>,
}

impl LocalAddresses {
    /// The given addresses are local; none is tied to an interface. The first IPv4 one
    /// is the fallback ICMP source unless a router id is set.
    pub fn new(addrs: impl IntoIterator<Item = IpAddr>) -> Self {
        let mut l = LocalAddresses::default();
        for a in addrs {
            l.push(a);
        }
        l.reindex();
        l
    }

    /// Sets the router id: a local address and the preferred IPv4 ICMP error source when
    /// the ingress interface has no IPv4 address.
    pub fn with_router_id(mut self, id: Ipv4Addr) -> Self {
        self.router_id = Some(id);
        self.push(IpAddr::V4(id));
        self.reindex();
        self
    }

    /// Adds `addr` as an address of `iface` (a tunnel, the host side, or
    /// [`Ingress::Local`] for loopback-style addresses). ICMP errors about packets that
    /// arrived on `iface` are sent from it when the family and scope fit.
    pub fn with_interface(mut self, iface: Ingress, addr: IpAddr) -> Self {
        self.interfaces.entry(iface).or_default().push(addr);
        self.push(addr);
        self.reindex();
        self
    }

    fn push(&mut self, a: IpAddr) {
        if !self.ordered.contains(&a) {
            self.ordered.push(a);
        }
    }

    fn reindex(&mut self) {
        self.v4.clear();
        self.v6.clear();
        for a in &self.ordered {
            match a {
                IpAddr::V4(a) => self.v4.push(u32::from(*a)),
                IpAddr::V6(a) => self.v6.push(u128::from(*a)),
            }
        }
        self.v4.sort_unstable();
        self.v6.sort_unstable();
    }

    pub fn contains_v4(&self, a: Ipv4Addr) -> bool {
        self.v4.binary_search(&u32::from(a)).is_ok()
    }

    pub fn contains_v6(&self, a: Ipv6Addr) -> bool {
        self.v6.binary_search(&u128::from(a)).is_ok()
    }

    pub fn contains(&self, a: IpAddr) -> bool {
        match a {
            IpAddr::V4(a) => self.contains_v4(a),
            IpAddr::V6(a) => self.contains_v6(a),
        }
    }

    /// The source of an ICMPv4 error about a packet that arrived on `ingress`: an IPv4
    /// address of that interface, else the router id, else the first IPv4 address.
    /// Using the ingress address makes traceroute show the interface the probe entered.
    pub fn error_source_v4(&self, ingress: Ingress) -> Option<Ipv4Addr> {
        let v4 = |a: &IpAddr| match a {
            IpAddr::V4(a) => Some(*a),
            IpAddr::V6(_) => None,
        };
        self.interfaces
            .get(&ingress)
            .and_then(|addrs| addrs.iter().find_map(v4))
            .or(self.router_id)
            .or_else(|| self.ordered.iter().find_map(v4))
    }

    /// The source of an ICMPv6 error going to `dst`: an address of the ingress interface
    /// whose scope reaches `dst`, else any such address of the router. A link-local
    /// source is used only toward a link-local destination (RFC 4443 section 2.2 (d):
    /// choose as for any packet the node originates to `dst`).
    pub fn error_source_v6(&self, ingress: Ingress, dst: Ipv6Addr) -> Option<Ipv6Addr> {
        let dst_ll = is_link_local_v6(dst);
        let fits = |a: &IpAddr| match a {
            IpAddr::V6(a) if dst_ll || !is_link_local_v6(*a) => Some(*a),
            _ => None,
        };
        self.interfaces
            .get(&ingress)
            .and_then(|addrs| addrs.iter().find_map(fits))
            .or_else(|| self.ordered.iter().find_map(fits))
    }
}

pub(crate) fn is_link_local_v6(a: Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::TunnelId;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn membership() {
        let l = LocalAddresses::new([ip("10.0.0.1"), ip("2001:db8::1")])
            .with_router_id(Ipv4Addr::new(192, 0, 2, 1));
        assert!(l.contains(ip("10.0.0.1")));
        assert!(l.contains(ip("192.0.2.1")));
        assert!(l.contains(ip("2001:db8::1")));
        assert!(!l.contains(ip("10.0.0.2")));
    }

    #[test]
    fn error_source_prefers_ingress_then_router_id() {
        let t = Ingress::Tunnel(TunnelId(3));
        let l = LocalAddresses::new([ip("10.9.9.9")])
            .with_router_id(Ipv4Addr::new(192, 0, 2, 1))
            .with_interface(t, ip("fe80::1"))
            .with_interface(t, ip("10.0.0.1"))
            .with_interface(Ingress::Local, ip("2001:db8::ff"));
        assert_eq!(l.error_source_v4(t), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(
            l.error_source_v4(Ingress::Host),
            Some(Ipv4Addr::new(192, 0, 2, 1))
        );
        assert_eq!(
            l.error_source_v6(t, "fe80::2".parse().unwrap()),
            Some("fe80::1".parse().unwrap())
        );
        assert_eq!(
            l.error_source_v6(t, "2001:db8:5::1".parse().unwrap()),
            Some("2001:db8::ff".parse().unwrap())
        );
        assert_eq!(
            LocalAddresses::new([ip("fe80::1")]).error_source_v6(t, "2001:db8::9".parse().unwrap()),
            None
        );
    }
}
