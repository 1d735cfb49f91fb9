//! The glue between one [`Instance`] and the running [`Router`]: the task that owns the
//! instance, feeds it received packets (IP protocol 89 from local delivery), tunnel
//! events (a silent peer), configuration changes and timer expiries, and carries out its
//! outputs (packets into tunnels with an IPv4 header, routes into the RIB).
//!
//! Owns no protocol logic: every decision is the instance's. Builds the instance's
//! configuration from the router's (`[ospf]`, tunnels, host prefixes, redistribution).

use super::abr::AreaSettings;
use super::auth::{Algorithm, AuthKey};
use super::instance::{
    External, Input, Instance, InstanceConfig, InterfaceConfig, Output, Scope, Timers,
};
use super::lsa::{Lsa, MAX_AGE};
use super::neighbor::State;
use super::packet::IP_PROTOCOL;
use super::spf::{PathType, Route};
use crate::config::{
    Config, OspfAuthType, OspfRedistribute, RedistributeFrom, RouteVia, DEFAULT_LIVENESS_MS,
    DEFAULT_OSPF_COST,
};
use crate::dataplane::path::{LocalPacket, TunnelEvent, TunnelTable};
use crate::dataplane::tunnel::FastFailover;
use crate::dataplane::{Ingress, NextHop, TunnelId};
use crate::router::view::RouterEvent;
use crate::router::Router;
use crate::routing::bgp::policy::PrefixMatch;
use crate::routing::rib::{Candidate, RouteSource};
use crate::wire::ipv4::{Ipv4Packet, Ipv4Repr};
use ipnetwork::{IpNetwork, Ipv4Network};
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;

/// The liveness interval asked of OSPF tunnels unless `liveness-ms` says otherwise.
pub const DEFAULT_LIVENESS: Duration = Duration::from_millis(DEFAULT_LIVENESS_MS as u64);
/// How often the running config is re-read for changes no event announces (and the
/// status, with its counters, republished).
const CONFIG_POLL: Duration = Duration::from_secs(2);
/// Cost of host prefixes (LAN behind the host, `via = "host"` routes).
const HOST_STUB_COST: u16 = 1;
/// RIB changes are batched this long before the BGP routes are read again (with
/// `redistribute = [{ from = "bgp" }]`).
const RIB_DELAY: Duration = Duration::from_millis(100);

/// One neighbor as the status shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighborInfo {
    pub tunnel: String,
    pub area: Ipv4Addr,
    pub router_id: Ipv4Addr,
    pub state: State,
    /// Source address of its packets.
    pub address: Ipv4Addr,
    /// When it entered its current state.
    pub since: Instant,
    /// Whether the tunnel's liveness would end this adjacency at once.
    pub fast_failover: FastFailover,
}

/// One interface (tunnel) as the status shows it. The key itself is never here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceInfo {
    pub tunnel: String,
    pub id: TunnelId,
    pub area: Ipv4Addr,
    pub address: Option<Ipv4Network>,
    pub cost: u16,
    pub hello: u16,
    pub dead: u32,
    /// (algorithm name, key id) with cryptographic authentication.
    pub auth: Option<(&'static str, u8)>,
    /// The liveness interval the tunnel itself runs with (None: liveness off).
    pub liveness: Option<Duration>,
    pub neighbor: Option<(Ipv4Addr, State)>,
}

/// One LSA of the database with the instant it was installed (its age is computed when
/// shown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LsdbEntry {
    /// The area whose database holds it, or the AS (type 5).
    pub scope: Scope,
    pub lsa: Lsa,
    pub installed: Instant,
}

impl LsdbEntry {
    pub fn age(&self, now: Instant) -> u16 {
        let elapsed = now.saturating_duration_since(self.installed).as_secs();
        (u64::from(self.lsa.header.age) + elapsed).min(u64::from(MAX_AGE)) as u16
    }
}

/// What the speaker shows of itself (tests and the gRPC `Ospf` service).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OspfStatus {
    pub running: bool,
    pub router_id: Option<Ipv4Addr>,
    /// The first attached area (the backbone if attached).
    pub area: Option<Ipv4Addr>,
    /// Every attached area with its kind.
    pub areas: Vec<(Ipv4Addr, AreaSettings)>,
    /// Attached to several areas: an area border router.
    pub abr: bool,
    pub interfaces: Vec<InterfaceInfo>,
    pub neighbors: Vec<NeighborInfo>,
    pub routes: Vec<Route>,
    pub lsas: usize,
    pub lsdb: Vec<LsdbEntry>,
    pub spf_runs: u64,
    pub counters: Vec<(&'static str, u64)>,
}

/// Owns the OSPF task: dropping it stops the task; [`OspfHandle::shutdown`] also
/// withdraws OSPF's routes from the RIB.
pub struct OspfHandle {
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
    status: watch::Receiver<OspfStatus>,
}

impl OspfHandle {
    pub fn status(&self) -> OspfStatus {
        self.status.borrow().clone()
    }

    /// Changes of the status, for waiting on convergence.
    pub fn watch(&self) -> watch::Receiver<OspfStatus> {
        self.status.clone()
    }

    pub async fn shutdown(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for OspfHandle {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The next router event, or never without a receiver.
async fn next_event(
    events: &mut Option<broadcast::Receiver<RouterEvent>>,
) -> Result<RouterEvent, broadcast::error::RecvError> {
    match events {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Starts the OSPF speaker of `router`. It runs while the config has an enabled
/// `[ospf]` section (and picks up later changes of it).
pub fn spawn(router: Arc<Router>) -> OspfHandle {
    let stop = CancellationToken::new();
    let (tx, status) = watch::channel(OspfStatus::default());
    let packets = router.subscribe_local(IP_PROTOCOL);
    let events = router.subscribe();
    let task = tokio::spawn(run(router, packets, events, tx, stop.clone()));
    OspfHandle {
        stop,
        task: Some(task),
        status,
    }
}

struct Speaker {
    router: Arc<Router>,
    instance: Option<Instance>,
    built: Option<InstanceConfig>,
    /// Interface addresses (IP source of our packets) by tunnel.
    sources: BTreeMap<TunnelId, Ipv4Addr>,
    /// Tunnels whose liveness we turned on, with the interval.
    liveness: BTreeMap<TunnelId, Duration>,
    status: watch::Sender<OspfStatus>,
    ident: u16,
    /// The selected BGP routes of the RIB (IPv4), when BGP is redistributed.
    bgp: BTreeSet<Ipv4Network>,
    /// When RIB changes are to be read (batched by [`RIB_DELAY`]).
    rib_at: Option<tokio::time::Instant>,
    /// `[ospf] redistribute` names BGP.
    bgp_wanted: bool,
}

async fn run(
    router: Arc<Router>,
    mut packets: mpsc::Receiver<LocalPacket>,
    events: broadcast::Receiver<RouterEvent>,
    status: watch::Sender<OspfStatus>,
    stop: CancellationToken,
) {
    let mut events = Some(events);
    let mut s = Speaker {
        router,
        instance: None,
        built: None,
        sources: BTreeMap::new(),
        liveness: BTreeMap::new(),
        status,
        ident: 0,
        bgp: BTreeSet::new(),
        rib_at: None,
        bgp_wanted: false,
    };
    s.reconfigure().await;
    let mut poll = tokio::time::interval(CONFIG_POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // Only a running instance listens to the router. An idle speaker (no [ospf])
        // holding a receiver would keep every route batch of a BGP table load queued
        // until this task got to run (measured: a third of a million routes, 32 MB).
        match (&s.instance, &events) {
            (None, Some(_)) => events = None,
            (Some(_), None) => events = Some(s.router.subscribe()),
            _ => {}
        }
        let deadline = s
            .instance
            .as_ref()
            .map(|i| i.next_deadline())
            .unwrap_or_else(|| Instant::now() + CONFIG_POLL);
        tokio::select! {
            _ = stop.cancelled() => break,
            p = packets.recv() => match p {
                Some(p) => s.packet(p).await,
                None => break,
            },
            e = next_event(&mut events) => match e {
                Ok(RouterEvent::Tunnel(TunnelEvent::PeerSilent { tunnel })) => {
                    let id = s.router.path().tunnels.load().by_name(&tunnel).map(|t| t.id);
                    if let Some(id) = id {
                        tracing::info!(%tunnel, "ospf: peer silent, adjacency down");
                        s.input(Input::PeerSilent(id)).await;
                    }
                }
                Ok(RouterEvent::TunnelConfigured { .. }) => s.reconfigure().await,
                Ok(RouterEvent::Routes(_)) => {
                    // Any change may add or remove a selected BGP route (one that loses
                    // to OSPF's own is announced as OSPF's); several are read in one go.
                    if s.redistributes_bgp() && s.rib_at.is_none() {
                        s.rib_at = Some(tokio::time::Instant::now() + RIB_DELAY);
                    }
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => s.reconfigure().await,
                Err(broadcast::error::RecvError::Closed) => break,
            },
            _ = poll.tick() => {
                s.reconfigure().await;
                // Counters (drops above all) change without any state change.
                s.publish();
            }
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => {
                s.input(Input::Timer).await;
            }
            _ = tokio::time::sleep_until(s.rib_at.unwrap_or_else(tokio::time::Instant::now)), if s.rib_at.is_some() => {
                s.rib_at = None;
                s.reconfigure().await;
            }
        }
    }
    s.router
        .replace_protocol_routes(RouteSource::Ospf, vec![])
        .await;
    let tunnels = s.router.path().tunnels.load();
    for id in s.liveness.keys() {
        if let Some(t) = tunnels.get(*id) {
            t.set_liveness(None);
        }
    }
    s.status.send_replace(OspfStatus::default());
}

impl Speaker {
    async fn packet(&mut self, p: LocalPacket) {
        let Ingress::Tunnel(tunnel) = p.ingress else {
            return;
        };
        let Ok(ip) = Ipv4Packet::new_checked(&p.packet[..]) else {
            return;
        };
        if !ip.verify_checksum() || ip.protocol() != IP_PROTOCOL || ip.is_fragment() {
            return;
        }
        let input = Input::Packet {
            tunnel,
            src: ip.src_addr(),
            dst: ip.dst_addr(),
            bytes: ip.payload().to_vec(),
        };
        self.input(input).await;
    }

    async fn input(&mut self, input: Input) {
        let Some(instance) = self.instance.as_mut() else {
            return;
        };
        let outputs = instance.handle(Instant::now(), input);
        self.act(outputs).await;
    }

    async fn act(&mut self, outputs: Vec<Output>) {
        let mut changed = false;
        for o in outputs {
            match o {
                Output::Send {
                    tunnel,
                    dst,
                    packet,
                } => {
                    // DD, requests, updates and acks: the database may have changed.
                    changed |= packet.get(1).is_some_and(|t| (2..=5).contains(t));
                    self.send(tunnel, dst, &packet)
                }
                Output::Routes(routes) => {
                    let n = routes.len();
                    let changes = self
                        .router
                        .replace_protocol_routes(RouteSource::Ospf, candidates(&routes))
                        .await;
                    tracing::debug!(routes = n, changes, "ospf routes installed");
                    changed = true;
                }
                Output::NeighborChanged { .. } => changed = true,
            }
        }
        if changed {
            self.publish();
        }
    }

    fn send(&mut self, tunnel: TunnelId, dst: Ipv4Addr, ospf: &[u8]) {
        let src = self.sources.get(&tunnel).copied().unwrap_or_else(|| {
            self.built
                .as_ref()
                .map_or(Ipv4Addr::UNSPECIFIED, |c| c.router_id)
        });
        self.ident = self.ident.wrapping_add(1);
        let repr = Ipv4Repr {
            src,
            dst,
            protocol: IP_PROTOCOL,
            ttl: 1,
            // Internetwork control (RFC 2328 A.1).
            tos: 0xc0,
            ident: self.ident,
            payload_len: ospf.len(),
        };
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut buf);
        buf[20..].copy_from_slice(ospf);
        self.router.path().send_on_tunnel(tunnel, &buf);
    }

    fn publish(&self) {
        let Some(i) = &self.instance else {
            self.status.send_replace(OspfStatus::default());
            return;
        };
        let tunnels = self.router.path().tunnels.load();
        let status = OspfStatus {
            running: true,
            router_id: Some(i.router_id()),
            area: i.areas().next().map(|(id, _)| id),
            areas: i.areas().collect(),
            abr: i.is_abr(),
            interfaces: i
                .interfaces()
                .map(|(c, n)| InterfaceInfo {
                    tunnel: c.name.clone(),
                    id: c.tunnel,
                    area: c.area,
                    address: c.address,
                    cost: c.cost,
                    hello: c.hello,
                    dead: c.dead,
                    auth: c.auth.as_ref().map(|k| (k.algorithm.name(), k.key_id)),
                    liveness: tunnels.get(c.tunnel).and_then(|t| t.liveness()),
                    neighbor: n.map(|n| (n.router_id, n.state)),
                })
                .collect(),
            neighbors: i
                .interfaces()
                .filter_map(|(c, n)| {
                    let n = n?;
                    Some(NeighborInfo {
                        tunnel: tunnels
                            .get(c.tunnel)
                            .map_or_else(|| c.name.clone(), |t| t.name.clone()),
                        area: c.area,
                        router_id: n.router_id,
                        state: n.state,
                        address: n.address,
                        since: n.since,
                        fast_failover: tunnels
                            .get(c.tunnel)
                            .map_or(FastFailover::Off, |t| t.fast_failover()),
                    })
                })
                .collect(),
            routes: i.routes().to_vec(),
            lsas: i.lsdbs().map(|(_, db)| db.len()).sum(),
            lsdb: i
                .lsdbs()
                .flat_map(|(scope, db)| {
                    db.iter().map(move |(_, e)| LsdbEntry {
                        scope,
                        lsa: e.lsa.clone(),
                        installed: e.installed,
                    })
                })
                .collect(),
            spf_runs: i.spf_runs(),
            counters: i.counters().iter().map(|(k, v)| (*k, *v)).collect(),
        };
        self.status.send_replace(status);
    }

    /// Liveness where the profile or `liveness-ms` asks for it, with that interval; off
    /// again on tunnels we no longer want it on. True if anything changed.
    fn apply_liveness(&mut self, config: &Config, tunnels: &TunnelTable) -> bool {
        let wanted = liveness_intervals(config, tunnels);
        if wanted == self.liveness {
            return false;
        }
        for id in self.liveness.keys() {
            if !wanted.contains_key(id) {
                if let Some(t) = tunnels.get(*id) {
                    t.set_liveness(None);
                }
            }
        }
        for (id, interval) in &wanted {
            if self.liveness.get(id) != Some(interval) {
                if let Some(t) = tunnels.get(*id) {
                    t.set_liveness(Some(*interval));
                }
            }
        }
        self.liveness = wanted;
        true
    }

    fn redistributes_bgp(&self) -> bool {
        self.built.is_some() && self.bgp_wanted
    }

    /// Re-reads the router's config and tunnels (and the RIB's BGP routes when they are
    /// redistributed); starts, changes or stops the instance.
    async fn reconfigure(&mut self) {
        let config = self.router.config().await;
        let tunnels = self.router.path().tunnels.load_full();
        self.bgp_wanted = config.ospf.as_ref().is_some_and(|o| {
            o.enabled
                && o.redistribute
                    .iter()
                    .any(|r| r.from == RedistributeFrom::Bgp)
        });
        self.bgp = if self.bgp_wanted {
            bgp_prefixes(&self.router.rib_routes().await)
        } else {
            BTreeSet::new()
        };
        let wanted = config
            .ospf
            .as_ref()
            .filter(|o| o.enabled)
            .map(|_| instance_config_with(&config, &tunnels, &self.bgp));
        let liveness_changed = self.apply_liveness(&config, &tunnels);
        if wanted == self.built {
            if liveness_changed {
                self.publish();
            }
            return;
        }
        self.sources.clear();
        if let Some(cfg) = &wanted {
            for i in &cfg.interfaces {
                self.sources
                    .insert(i.tunnel, i.address.map_or(cfg.router_id, |a| a.ip()));
            }
        }
        let now = Instant::now();
        match (&mut self.instance, wanted.clone()) {
            (None, Some(cfg)) => {
                tracing::info!(router_id = %cfg.router_id, interfaces = cfg.interfaces.len(), "ospf starting");
                let mut i = Instance::new(cfg, now);
                i.set_crypto_seq(wall_clock_seconds());
                let out = i.handle(now, Input::Timer);
                self.instance = Some(i);
                self.built = wanted;
                self.act(out).await;
            }
            (Some(i), Some(cfg)) => {
                let out = i.handle(now, Input::Configure(cfg));
                self.built = wanted;
                self.act(out).await;
            }
            (Some(_), None) => {
                tracing::info!("ospf stopping");
                self.instance = None;
                self.built = None;
                self.router
                    .replace_protocol_routes(RouteSource::Ospf, vec![])
                    .await;
            }
            (None, None) => {}
        }
        self.publish();
    }
}

/// The cryptographic sequence number to start from: seconds since 1970, so that a
/// restarted speaker does not fall below what its neighbors last saw.
fn wall_clock_seconds() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
}

fn v4(net: &IpNetwork) -> Option<Ipv4Network> {
    match net {
        IpNetwork::V4(n) => Ipv4Network::new(n.network(), n.prefix()).ok(),
        IpNetwork::V6(_) => None,
    }
}

/// The liveness interval of every OSPF tunnel: its own `liveness-ms`, else `[ospf]
/// liveness-ms`, else [`DEFAULT_LIVENESS`]; none where that says 0.
pub fn liveness_intervals(config: &Config, tunnels: &TunnelTable) -> BTreeMap<TunnelId, Duration> {
    let Some(ospf) = config.ospf.as_ref().filter(|o| o.enabled) else {
        return BTreeMap::new();
    };
    config
        .tunnels
        .iter()
        .filter(|t| !t.ospf.as_ref().is_some_and(|o| o.disabled))
        .filter_map(|t| {
            let ms = t
                .ospf
                .as_ref()
                .and_then(|o| o.liveness_ms)
                .or(ospf.liveness_ms)
                .unwrap_or(DEFAULT_LIVENESS_MS);
            if ms == 0 {
                return None;
            }
            let id = tunnels.by_name(&t.name)?.id;
            Some((id, Duration::from_millis(u64::from(ms))))
        })
        .collect()
}

/// The selected BGP routes (eBGP, iBGP) of a RIB listing, IPv4 only.
pub fn bgp_prefixes(rib: &[crate::router::view::RouteInfo]) -> BTreeSet<Ipv4Network> {
    rib.iter()
        .filter(|r| r.best && matches!(r.source, "ebgp" | "ibgp"))
        .filter_map(|r| v4(&r.prefix))
        .collect()
}

/// True if `prefix` passes the entry's `prefix-list` (an empty list passes all).
pub fn redistribute_allows(r: &OspfRedistribute, prefix: Ipv4Network) -> bool {
    let p = IpNetwork::V4(prefix);
    r.prefix_list.is_empty()
        || r.prefix_list.iter().any(|e| {
            PrefixMatch {
                prefix: e.prefix,
                ge: e.ge,
                le: e.le,
            }
            .matches(&p)
        })
}

/// The instance's view of the router's config: interfaces, stubs and externals (no BGP
/// routes to redistribute).
pub fn instance_config(config: &Config, tunnels: &TunnelTable) -> InstanceConfig {
    instance_config_with(config, tunnels, &BTreeSet::new())
}

/// [`instance_config`] with the selected BGP routes of the RIB, for `from = "bgp"`.
pub fn instance_config_with(
    config: &Config,
    tunnels: &TunnelTable,
    bgp: &BTreeSet<Ipv4Network>,
) -> InstanceConfig {
    let ospf = config.ospf.clone().unwrap_or_default();
    let mut interfaces = Vec::new();
    let mut stubs: Vec<(Ipv4Network, u16)> = Vec::new();
    let mut advertised: BTreeSet<Ipv4Network> = BTreeSet::new();
    for t in &config.tunnels {
        let o = t.ospf.clone().unwrap_or_default();
        let Some(tunnel) = tunnels.by_name(&t.name) else {
            continue;
        };
        if o.disabled {
            continue;
        }
        let profile = o.profile.unwrap_or(ospf.profile);
        let (hello, dead, rxmt) = profile.timers();
        let address = t.addresses.iter().find_map(|a| match a {
            IpNetwork::V4(n) => Some(*n),
            IpNetwork::V6(_) => None,
        });
        if let Some(a) = address.and_then(|a| v4(&IpNetwork::V4(a))) {
            advertised.insert(a);
        }
        interfaces.push(InterfaceConfig {
            tunnel: tunnel.id,
            name: t.name.clone(),
            area: o.area.unwrap_or(ospf.area),
            address,
            cost: o.cost.unwrap_or(DEFAULT_OSPF_COST),
            hello: o.hello.unwrap_or(hello),
            dead: o.dead.unwrap_or(dead),
            retransmit: Duration::from_secs(u64::from(rxmt)),
            mtu: t.mtu,
            auth: o.auth.as_ref().map(|a| {
                let algorithm = match a.algorithm {
                    OspfAuthType::Md5 => Algorithm::Md5,
                    OspfAuthType::HmacSha256 => Algorithm::HmacSha256,
                };
                AuthKey::new(algorithm, a.key_id, &a.key.0)
            }),
        });
    }
    let mut stub = |net: Ipv4Network, cost: u16| {
        if advertised.insert(net) {
            stubs.push((net, cost));
        }
    };
    let rid = config.router.router_id;
    stub(Ipv4Network::from(rid), 0);
    if let Some(h) = &config.host {
        for a in &h.addresses {
            if let Some(n) = v4(a) {
                stub(n, HOST_STUB_COST);
            }
        }
    }
    for r in config.routes.iter().filter(|r| r.via == RouteVia::Host) {
        if let Some(n) = v4(&r.prefix) {
            stub(n, HOST_STUB_COST);
        }
    }
    // Redistribution: what is not already a stub.
    let mut externals: BTreeMap<Ipv4Network, External> = BTreeMap::new();
    for r in &ospf.redistribute {
        let prefixes: Vec<Ipv4Network> = match r.from {
            RedistributeFrom::Connected => config
                .tunnels
                .iter()
                .flat_map(|t| t.addresses.iter())
                .chain(config.host.iter().flat_map(|h| h.addresses.iter()))
                .filter_map(v4)
                .collect(),
            RedistributeFrom::Static => config
                .routes
                .iter()
                .filter(|r| r.via != RouteVia::Host)
                .filter_map(|r| v4(&r.prefix))
                .collect(),
            RedistributeFrom::Bgp => bgp.iter().copied().collect(),
        };
        for p in prefixes {
            if !advertised.contains(&p) && redistribute_allows(r, p) {
                externals.entry(p).or_insert(External {
                    prefix: p,
                    metric: r.metric,
                    e2: r.metric_type == 2,
                });
            }
        }
    }
    InstanceConfig {
        router_id: rid,
        area: ospf.area,
        areas: ospf
            .areas
            .iter()
            .map(|a| {
                (
                    a.id,
                    AreaSettings {
                        stub: a.stub,
                        no_summary: a.no_summary,
                        default_cost: a.default_cost,
                        ranges: a.ranges.clone(),
                    },
                )
            })
            .collect(),
        interfaces,
        stubs,
        externals: externals.into_values().collect(),
        timers: Timers::default(),
    }
}

/// SPF routes as RIB candidates: one per prefix, ECMP sets sorted.
pub fn candidates(routes: &[Route]) -> Vec<Candidate> {
    routes
        .iter()
        .filter_map(|r| {
            let hops: Vec<TunnelId> = r.next_hops.iter().copied().collect();
            let next_hop = match hops.as_slice() {
                [] => return None,
                [one] => NextHop::Tunnel(*one),
                _ => NextHop::Ecmp(hops),
            };
            Some(Candidate {
                prefix: IpNetwork::V4(r.prefix),
                source: RouteSource::Ospf,
                next_hop,
                metric: match r.path_type {
                    PathType::External2 => r.cost.saturating_add(1 << 24),
                    _ => r.cost,
                },
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;
    use crate::keys::PrivateKey;

    fn config(rest: &str) -> Config {
        let text = format!(
            "[router]\nrouter-id = \"10.255.0.1\"\nprivate-key = \"{}\"\n\n\
             [host]\naddresses = [\"10.1.0.1/24\"]\n\n\
             [[tunnel]]\nname = \"to-r2\"\npeer-public-key = \"{}\"\n\
             addresses = [\"169.254.0.0/31\"]\n\n\
             [[route]]\nprefix = \"10.50.0.0/16\"\nvia = \"to-r2\"\n\n\
             [[route]]\nprefix = \"10.60.1.0/24\"\nvia = \"to-r2\"\n\n\
             [[route]]\nprefix = \"192.168.7.0/24\"\nvia = \"to-r2\"\n\n{rest}",
            PrivateKey::generate().to_base64(),
            PrivateKey::generate().public_key().to_base64(),
        );
        match parse_str(&text, std::path::Path::new("r1.toml")) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    fn net(s: &str) -> Ipv4Network {
        s.parse().unwrap()
    }

    fn externals(c: &InstanceConfig) -> Vec<(String, u32, bool)> {
        c.externals
            .iter()
            .map(|e| (e.prefix.to_string(), e.metric, e.e2))
            .collect()
    }

    #[test]
    fn prefix_lists_filter_each_source_and_bgp_routes_come_from_the_rib() {
        let c = config(
            "[ospf]\nredistribute = [\n\
             { from = \"static\", prefix-list = [\"10.0.0.0/8 le 16\"] },\n\
             { from = \"bgp\", metric = 40, type = 1, prefix-list = [\"172.16.0.0/12 ge 24\", \"10.70.0.0/16\"] },\n\
             { from = \"connected\", prefix-list = [\"169.254.0.0/16 le 32\"] },\n\
             ]\n",
        );
        let bgp: BTreeSet<Ipv4Network> = [
            "172.16.5.0/24",   // in, ge 24
            "172.16.0.0/16",   // too short
            "10.70.0.0/16",    // exact
            "10.70.1.0/24",    // exact entry only
            "192.168.99.0/24", // in no entry
        ]
        .into_iter()
        .map(net)
        .collect();
        let i = instance_config_with(&c, &TunnelTable::default(), &bgp);
        assert_eq!(
            externals(&i),
            vec![
                ("10.50.0.0/16".into(), 20, true),
                ("10.70.0.0/16".into(), 40, false),
                ("169.254.0.0/31".into(), 20, true),
                ("172.16.5.0/24".into(), 40, false),
            ]
        );
        // Without BGP routes (or without from = "bgp") there is nothing of BGP's.
        let none = instance_config(&c, &TunnelTable::default());
        assert!(none.externals.iter().all(|e| e.metric == 20));
        // No list: everything of the source.
        let all = config("[ospf]\nredistribute = [{ from = \"static\" }, { from = \"bgp\" }]\n");
        let i = instance_config_with(&all, &TunnelTable::default(), &bgp);
        assert_eq!(i.externals.len(), 3 + bgp.len());
    }

    #[test]
    fn bgp_prefixes_are_the_selected_bgp_routes() {
        use crate::router::view::{NextHopInfo, RouteInfo};
        let r = |p: &str, source: &'static str, best: bool| RouteInfo {
            prefix: p.parse().unwrap(),
            source,
            admin_distance: 20,
            metric: 0,
            next_hop: NextHopInfo::Blackhole,
            best,
        };
        let rib = [
            r("10.1.0.0/24", "ebgp", true),
            r("10.2.0.0/24", "ibgp", true),
            r("10.3.0.0/24", "ebgp", false),
            r("10.4.0.0/24", "ospf", true),
            r("10.5.0.0/24", "static", true),
            r("2001:db8::/32", "ebgp", true),
        ];
        let got: Vec<String> = bgp_prefixes(&rib).iter().map(|p| p.to_string()).collect();
        assert_eq!(got, vec!["10.1.0.0/24", "10.2.0.0/24"]);
    }
}
