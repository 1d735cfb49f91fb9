//! Pure functions from a [`Config`] to what the planes are made of: the connected and
//! static route candidates and the router's own addresses. No I/O, so they are tested
//! directly and reused unchanged when a new config is applied.

use crate::config::{Config, RouteVia};
use crate::dataplane::forward::LocalAddresses;
use crate::dataplane::path::TunnelTable;
use crate::dataplane::{Ingress, NextHop, TunnelId};
use crate::routing::rib::{Candidate, RouteSource};
use ipnetwork::IpNetwork;
use std::collections::HashMap;
use std::net::IpAddr;

/// The router's own addresses: the router id and its tunnel addresses. Host addresses
/// belong to the kernel (the host answers them itself), so they are not here.
pub fn local_addresses(config: &Config, tunnels: &TunnelTable) -> LocalAddresses {
    let mut local = LocalAddresses::new([]);
    if !router_id_is_host_address(config) {
        local = local.with_router_id(config.router.router_id);
    }
    for t in &config.tunnels {
        let Some(tunnel) = tunnels.by_name(&t.name) else {
            continue;
        };
        for net in &t.addresses {
            local = local.with_interface(Ingress::Tunnel(tunnel.id), net.ip());
        }
    }
    local
}

pub fn host_prefix(ip: IpAddr) -> IpNetwork {
    let len = if ip.is_ipv4() { 32 } else { 128 };
    IpNetwork::new(ip, len).expect("full-length prefix is valid")
}

fn subnet(net: &IpNetwork) -> IpNetwork {
    IpNetwork::new(net.network(), net.prefix()).expect("valid prefix")
}

/// True when `prefix` is exactly one of the host TUN's own addresses (those stay with the
/// kernel and are never exported back to it).
pub fn is_host_address(config: &Config, prefix: &IpNetwork) -> bool {
    config
        .host
        .as_ref()
        .is_some_and(|h| h.addresses.iter().any(|a| host_prefix(a.ip()) == *prefix))
}

/// A router id that is also an address of the host TUN belongs to the kernel: the host's
/// own sockets use it as their source, so their replies must reach the kernel, and the
/// kernel answers pings to it itself. (Like a Linux router whose router id lives on `lo`.)
fn router_id_is_host_address(config: &Config) -> bool {
    is_host_address(config, &host_prefix(IpAddr::V4(config.router.router_id)))
}

/// Connected routes: each tunnel's subnets via that tunnel, each host subnet via the host,
/// and every address of the router's own as a local /32 or /128.
pub fn connected_routes(config: &Config, tunnels: &TunnelTable) -> Vec<Candidate> {
    connected_routes_by(config, |name| tunnels.by_name(name).map(|t| t.id))
}

/// [`connected_routes`] with tunnel ids from `id_of` (a tunnel it does not know has no
/// routes): lets a dry run plan routes toward tunnels that are not built yet.
pub fn connected_routes_by(
    config: &Config,
    id_of: impl Fn(&str) -> Option<TunnelId>,
) -> Vec<Candidate> {
    let router_id_hop = if router_id_is_host_address(config) {
        NextHop::Host
    } else {
        NextHop::Local
    };
    let mut routes = vec![candidate(
        host_prefix(IpAddr::V4(config.router.router_id)),
        RouteSource::Connected,
        router_id_hop,
    )];
    for t in &config.tunnels {
        let Some(id) = id_of(&t.name) else {
            continue;
        };
        for net in &t.addresses {
            routes.push(candidate(
                subnet(net),
                RouteSource::Connected,
                NextHop::Tunnel(id),
            ));
            routes.push(candidate(
                host_prefix(net.ip()),
                RouteSource::Connected,
                NextHop::Local,
            ));
        }
    }
    if let Some(h) = &config.host {
        for net in &h.addresses {
            routes.push(candidate(
                subnet(net),
                RouteSource::Connected,
                NextHop::Host,
            ));
        }
    }
    dedup_by_prefix(routes)
}

pub fn static_routes(config: &Config, tunnels: &TunnelTable) -> Vec<Candidate> {
    static_routes_by(config, |name| tunnels.by_name(name).map(|t| t.id))
}

/// [`static_routes`] with tunnel ids from `id_of` (see [`connected_routes_by`]).
pub fn static_routes_by(
    config: &Config,
    id_of: impl Fn(&str) -> Option<TunnelId>,
) -> Vec<Candidate> {
    let routes = config
        .routes
        .iter()
        .filter_map(|r| {
            let hop = match &r.via {
                RouteVia::Host => NextHop::Host,
                RouteVia::Blackhole => NextHop::Blackhole,
                RouteVia::Tunnel(name) => NextHop::Tunnel(id_of(name)?),
            };
            Some(candidate(r.prefix, RouteSource::Static, hop))
        })
        .collect();
    dedup_by_prefix(routes)
}

/// A /32 tunnel address is both its own subnet and a local address; the local one wins.
fn dedup_by_prefix(routes: Vec<Candidate>) -> Vec<Candidate> {
    let mut seen: HashMap<IpNetwork, usize> = HashMap::new();
    let mut out: Vec<Candidate> = Vec::new();
    for r in routes {
        match seen.get(&r.prefix) {
            Some(&i) if r.next_hop == NextHop::Local => out[i] = r,
            Some(_) => {}
            None => {
                seen.insert(r.prefix, out.len());
                out.push(r);
            }
        }
    }
    out
}

fn candidate(prefix: IpNetwork, source: RouteSource, next_hop: NextHop) -> Candidate {
    Candidate {
        prefix,
        source,
        next_hop,
        metric: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::PrivateKey;

    fn config(host_addresses: &str) -> Config {
        let text = format!(
            r#"
[router]
router-id = "10.255.0.1"
private-key = "{}"
[host]
addresses = [{host_addresses}]
"#,
            PrivateKey::generate().to_base64()
        );
        crate::config::parse_str(&text, std::path::Path::new("t.toml")).expect("valid")
    }

    fn hop_of(routes: &[Candidate], prefix: &str) -> NextHop {
        let prefix: IpNetwork = prefix.parse().unwrap();
        routes
            .iter()
            .find(|c| c.prefix == prefix)
            .expect("route present")
            .next_hop
            .clone()
    }

    #[test]
    fn router_id_is_local_unless_the_host_owns_it() {
        let table = TunnelTable::default();
        let own = config(r#""10.1.0.1/24""#);
        assert_eq!(
            hop_of(&connected_routes(&own, &table), "10.255.0.1/32"),
            NextHop::Local
        );
        assert!(local_addresses(&own, &table).contains("10.255.0.1".parse().unwrap()));
        assert_eq!(
            hop_of(&connected_routes(&own, &table), "10.1.0.0/24"),
            NextHop::Host
        );

        // The host TUN carries the router id: the kernel's sockets use it as their source,
        // so replies to it must reach the kernel, not wgrd.
        let shared = config(r#""10.255.0.1/32""#);
        assert_eq!(
            hop_of(&connected_routes(&shared, &table), "10.255.0.1/32"),
            NextHop::Host
        );
        assert!(!local_addresses(&shared, &table).contains("10.255.0.1".parse().unwrap()));
    }
}
