//! What the router shows of itself: plain snapshots of tunnels, routes and status, and
//! the events that announce changes. The control plane (gRPC, `wgrctl`) renders these; it
//! never reaches into the data plane's own types.

use crate::dataplane::path::{TunnelEvent, TunnelTable};
use crate::keys::PublicKey;
use crate::routing::rib::{Candidate, RibChange};
use ipnetwork::IpNetwork;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
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
    /// The best routes of one RIB update changed: one event per batch (a full BGP table
    /// is thousands of prefixes per batch), so a table load cannot overflow the event
    /// queue, and only a consumer that wants [`RouteInfo`]s pays for building them.
    Routes(RouteBatch),
    /// A tunnel was added, removed or replaced by a config change.
    TunnelConfigured {
        tunnel: String,
        present: bool,
    },
}

/// The best-route changes of one router update, in the order they were made. Cheap to
/// clone (shared); carries the tunnel table of the moment it was made, so that a route
/// rendered later names its tunnels as they were named when it changed.
#[derive(Clone)]
pub struct RouteBatch {
    changes: Arc<Vec<RibChange>>,
    tunnels: Arc<TunnelTable>,
}

impl RouteBatch {
    pub(crate) fn new(changes: Vec<RibChange>, tunnels: Arc<TunnelTable>) -> RouteBatch {
        RouteBatch {
            changes: Arc::new(changes),
            tunnels,
        }
    }

    /// Each changed prefix with its new best route (None: the prefix is gone).
    pub fn best_routes(&self) -> impl ExactSizeIterator<Item = (IpNetwork, Option<&Candidate>)> {
        self.changes.iter().map(|c| (c.prefix, c.new.as_ref()))
    }

    /// The same as [`RouteBatch::best_routes`], rendered for the API (built on demand).
    pub fn route_infos(
        &self,
    ) -> impl ExactSizeIterator<Item = (IpNetwork, Option<RouteInfo>)> + '_ {
        self.changes.iter().map(|c| {
            let route = c
                .new
                .as_ref()
                .map(|best| super::route_info(best, true, &self.tunnels));
            (c.prefix, route)
        })
    }
}

impl PartialEq for RouteBatch {
    /// Equal changes; the tunnel table is context, not content.
    fn eq(&self, other: &RouteBatch) -> bool {
        self.changes == other.changes
    }
}

impl std::fmt::Debug for RouteBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteBatch")
            .field("changes", &self.changes.len())
            .finish()
    }
}
