//! Scoped neighbor addresses: what keys a neighbor inside the speaker.
//!
//! A link-local address names a host only on one link, and every tunnel is its own link:
//! dn42-style peering routinely has `fe80::1` at the far end of several tunnels. The
//! instance, its timers and its tables key neighbors by `IpAddr`, so a tunnel
//! neighbor's link-local address carries its tunnel in the address itself, in bits
//! 32..64 that `fe80::/64` keeps zero (the embedded scope of the BSD kernels). The
//! scoped form never leaves the speaker's process: connections use [`unscoped`], and
//! the API and logs show `fe80::1%tunnel` ([`describe`]).
//!
//! Global addresses, and link-local ones outside `fe80::/64` (whose bits 32..64 are
//! taken), are their own key.

use crate::dataplane::TunnelId;
use std::net::{IpAddr, Ipv6Addr};

/// Whether `addr` is in `fe80::/64`, the only link-local prefix in use (RFC 4291 2.5.6).
fn link_local_64(a: &Ipv6Addr) -> bool {
    let s = a.segments();
    s[0] == 0xfe80 && s[1] == 0 && s[2] == 0 && s[3] == 0
}

/// The key of a neighbor at `addr` across tunnel `tunnel`: `addr` itself unless it is
/// link-local.
pub fn scoped(addr: IpAddr, tunnel: TunnelId) -> IpAddr {
    match addr {
        IpAddr::V6(a) if link_local_64(&a) => {
            let mut s = a.segments();
            s[2] = (tunnel.0 >> 16) as u16;
            s[3] = tunnel.0 as u16;
            IpAddr::V6(Ipv6Addr::from(s))
        }
        other => other,
    }
}

/// The tunnel a scoped key names, if it is one.
pub fn scope(key: IpAddr) -> Option<TunnelId> {
    match key {
        IpAddr::V6(a) => {
            let s = a.segments();
            let id = (u32::from(s[2]) << 16) | u32::from(s[3]);
            (s[0] == 0xfe80 && s[1] == 0 && id != 0).then_some(TunnelId(id))
        }
        IpAddr::V4(_) => None,
    }
}

/// The address on the wire for a key.
pub fn unscoped(key: IpAddr) -> IpAddr {
    match (key, scope(key)) {
        (IpAddr::V6(a), Some(_)) => {
            let mut s = a.segments();
            s[2] = 0;
            s[3] = 0;
            IpAddr::V6(Ipv6Addr::from(s))
        }
        _ => key,
    }
}

/// A key as people read it: `fe80::1%to-r2` for a scoped one (`tunnel_name` gives the
/// name of a tunnel id), the address otherwise.
pub fn describe(key: IpAddr, tunnel_name: impl Fn(TunnelId) -> Option<String>) -> String {
    match scope(key) {
        Some(id) => {
            let zone = tunnel_name(id).unwrap_or_else(|| id.to_string());
            format!("{}%{zone}", unscoped(key))
        }
        None => key.to_string(),
    }
}

/// Splits `fe80::1%to-r2` into the address and its zone (a tunnel name).
pub fn parse_with_zone(text: &str) -> Option<(IpAddr, Option<&str>)> {
    let text = text.trim();
    match text.split_once('%') {
        Some((a, zone)) if !zone.is_empty() => Some((a.parse().ok()?, Some(zone))),
        Some(_) => None,
        None => Some((text.parse().ok()?, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_same_link_local_address_on_two_tunnels_gives_two_keys() {
        let (a, b) = (
            scoped(ip("fe80::1"), TunnelId(1)),
            scoped(ip("fe80::1"), TunnelId(7)),
        );
        assert_ne!(a, b);
        assert_eq!(scope(a), Some(TunnelId(1)));
        assert_eq!(scope(b), Some(TunnelId(7)));
        assert_eq!(unscoped(a), ip("fe80::1"));
        assert_eq!(unscoped(b), ip("fe80::1"));
        let big = scoped(ip("fe80::2"), TunnelId(0x00ab_cdef));
        assert_eq!(scope(big), Some(TunnelId(0x00ab_cdef)));
        assert_eq!(unscoped(big), ip("fe80::2"));
        // Still link-local to everything that asks (next hop rules, session family).
        assert!(matches!(a, IpAddr::V6(v) if v.is_unicast_link_local()));
    }

    #[test]
    fn global_addresses_and_odd_link_locals_are_their_own_key() {
        for s in ["10.0.0.1", "2001:db8::1", "fe80:1::1"] {
            assert_eq!(scoped(ip(s), TunnelId(3)), ip(s), "{s}");
            assert_eq!(unscoped(ip(s)), ip(s), "{s}");
        }
        assert_eq!(scope(ip("2001:db8::1")), None);
        assert_eq!(scope(ip("fe80::1")), None);
    }

    #[test]
    fn keys_read_with_their_tunnel_and_parse_back() {
        let k = scoped(ip("fe80::13:3"), TunnelId(2));
        let name = |id: TunnelId| (id == TunnelId(2)).then(|| "to-r3".to_owned());
        assert_eq!(describe(k, name), "fe80::13:3%to-r3");
        assert_eq!(describe(ip("10.0.0.1"), name), "10.0.0.1");
        assert_eq!(
            parse_with_zone("fe80::13:3%to-r3"),
            Some((ip("fe80::13:3"), Some("to-r3")))
        );
        assert_eq!(parse_with_zone(" 10.0.0.1 "), Some((ip("10.0.0.1"), None)));
        assert_eq!(parse_with_zone("fe80::1%"), None);
        assert_eq!(parse_with_zone("nonsense"), None);
    }
}
