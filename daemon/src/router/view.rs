//! What the router shows of itself: plain snapshots of tunnels, routes and status, and
//! the events that announce changes. The control plane (gRPC, `wgrctl`) renders these; it
//! never reaches into the data plane's own types.

use crate::dataplane::path::TunnelEvent;
use crate::keys::PublicKey;
use ipnetwork::IpNetwork;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, SystemTime};

/// One tunnel as the API shows it. Carries no key material but the peer's public key.
#[derive(Debug, Clone, PartialEq)]
pub struct TunnelInfo {
    pub name: String,
    pub peer_public_key: PublicKey,
    pub configured_endpoint: Option<SocketAddr>,
    /// Where datagrams go now (configured, or learned from the peer).
    pub endpoint: Option<SocketAddr>,
    pub session_up: bool,
    pub last_handshake: Option<SystemTime>,
    pub last_received_ago: Option<Duration>,
    pub persistent_keepalive: Option<u16>,
    pub addresses: Vec<IpNetwork>,
    pub mtu: u16,
    pub listen_port: u16,
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub handshakes: u64,
    /// Drops by reason (stable snake_case names).
    pub drops: Vec<(&'static str, u64)>,
}

/// Where a route sends packets, with tunnels by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextHopInfo {
    /// One tunnel, or several for equal-cost multipath.
    Tunnels(Vec<String>),
    Host,
    Local,
    Blackhole,
}

impl std::fmt::Display for NextHopInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NextHopInfo::Tunnels(names) => f.write_str(&names.join(",")),
            NextHopInfo::Host => f.write_str("host"),
            NextHopInfo::Local => f.write_str("local"),
            NextHopInfo::Blackhole => f.write_str("blackhole"),
        }
    }
}

/// A RIB candidate or FIB entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo {
    pub prefix: IpNetwork,
    /// connected, static, ospf, ebgp, ibgp; "fib" for entries read from the FIB.
    pub source: &'static str,
    pub admin_distance: u8,
    pub metric: u32,
    pub next_hop: NextHopInfo,
    /// The selected candidate for its prefix (always true for FIB entries).
    pub best: bool,
}

/// The answer to "where would a packet to this address go".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupResult {
    pub prefix: IpNetwork,
    pub next_hop: NextHopInfo,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RouterStatus {
    pub router_id: Ipv4Addr,
    pub public_key: PublicKey,
    pub uptime: Duration,
    pub listen_ports: Vec<u16>,
    pub tunnels: usize,
    pub tunnels_up: usize,
    pub rib_prefixes: usize,
    pub fib_routes: usize,
    /// Counters of the forwarding decision and the demultiplexer, by name.
    pub counters: Vec<(&'static str, u64)>,
}

/// A change worth telling a watcher about.
#[derive(Debug, Clone, PartialEq)]
pub enum RouterEvent {
    Tunnel(TunnelEvent),
    /// The best route of a prefix changed; `route` is None when the prefix is gone.
    Route {
        prefix: IpNetwork,
        route: Option<RouteInfo>,
    },
    /// A tunnel was added, removed or replaced by a config change.
    TunnelConfigured {
        tunnel: String,
        present: bool,
    },
}
