//! The wiring: builds tunnels, sockets, the FIB, the RIB and the host TUN from a
//! [`Config`], runs them, applies new configs by difference, and tears it all down.
//!
//! This room decides nothing per packet and owns no protocol; it only knows which part
//! needs which other part, in what order things start and stop, and what a config change
//! means for each. [`view`] holds the snapshots it shows to the control plane, [`build`]
//! the pure config -> routes/addresses functions.

pub mod build;
pub mod view;

use crate::config::{Config, TunnelConfig};
use crate::dataplane::fib::Fib;
use crate::dataplane::forward::Forwarder;
use crate::dataplane::host::{HostTun, KernelRoutes};
use crate::dataplane::path::{LocalPacket, PacketPath, TunnelTable};
use crate::dataplane::tunnel::{Tunnel, TunnelDrop, TunnelParams, MAX_TUNNEL_ID};
use crate::dataplane::udp::{self, DemuxDrop, Demuxer, UdpPort};
use crate::dataplane::{NextHop, TunnelId};
use crate::routing::rib::{Candidate, Rib, RibChange, RouteSource};
use build::{
    connected_routes, connected_routes_by, is_host_address, local_addresses, static_routes,
    static_routes_by,
};
use ipnetwork::IpNetwork;
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;
use view::{
    LookupResult, NextHopInfo, RouteBatch, RouteInfo, RouterEvent, RouterStatus, TunnelInfo,
};

#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error("cannot bind UDP port {port}: {source}")]
    Bind { port: u16, source: std::io::Error },
    #[error("host interface: {0}")]
    Host(std::io::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("nat: {0}")]
    Nat(#[from] crate::nat::NatError),
}

/// A config that cannot be applied to the running router. Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {why}")]
pub struct ApplyError {
    /// Dotted path of the field, as in config errors.
    pub field: String,
    pub why: String,
    pub kind: ApplyErrorKind,
}

/// Why a config could not be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyErrorKind {
    /// Valid, but only a restart of wgrd can make this change.
    NeedsRestart,
    /// Making the change failed (e.g. installing the nftables rules).
    Failed,
}

/// What an applied config changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplySummary {
    pub tunnels_added: Vec<String>,
    pub tunnels_removed: Vec<String>,
    /// Rebuilt with a new session (peer key, preshared key or keepalive changed).
    pub tunnels_replaced: Vec<String>,
    /// Kept their session; MTU, endpoint or addresses changed.
    pub tunnels_updated: Vec<String>,
    pub routes_changed: usize,
}

impl ApplySummary {
    pub fn is_empty(&self) -> bool {
        *self == ApplySummary::default()
    }
}

/// How many local packets may wait for the control plane before new ones are dropped.
const LOCAL_QUEUE: usize = 4096;
/// Router events buffered for slow watchers.
const EVENT_QUEUE: usize = 4096;

/// What changes when a config is applied; guarded by one lock so applies are serialized.
struct State {
    config: Config,
    rib: Rib,
    next_tunnel_id: u32,
    /// UDP port number -> index in the path's port list.
    ports: HashMap<u16, usize>,
    kernel: Option<KernelRoutes>,
}

/// A running router. Share it (`Arc<Router>`) with the control plane; every method takes
/// `&self`. Dropping it without [`Router::shutdown`] still stops its threads.
pub struct Router {
    started: Instant,
    path: Arc<PacketPath>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    state: tokio::sync::Mutex<State>,
    events: tokio::sync::broadcast::Sender<RouterEvent>,
    local: Arc<Mutex<LocalDispatch>>,
    /// wgrd's nftables table (`[nat]`).
    nat: crate::nat::Nat,
}

/// Who gets the router's own packets: protocol tasks by IP protocol number (OSPF is 89,
/// TCP for BGP 6), and one taker for everything else.
#[derive(Default)]
struct LocalDispatch {
    by_protocol: HashMap<u8, tokio::sync::mpsc::Sender<LocalPacket>>,
    rest: Option<tokio::sync::mpsc::Sender<LocalPacket>>,
    rest_taken: bool,
}

impl LocalDispatch {
    fn deliver(&self, packet: LocalPacket) {
        let protocol = match packet.packet.first().map(|b| b >> 4) {
            Some(4) => packet.packet.get(9).copied(),
            Some(6) => packet.packet.get(6).copied(),
            _ => None,
        };
        let taker = protocol
            .and_then(|p| self.by_protocol.get(&p))
            .or(self.rest.as_ref());
        if let Some(taker) = taker {
            // A taker that cannot keep up loses packets, as a congested router would.
            let _ = taker.try_send(packet);
        }
    }
}

/// Move local packets from the data path to their takers.
fn spawn_local_dispatch(
    mut rx: tokio::sync::mpsc::Receiver<LocalPacket>,
    dispatch: Arc<Mutex<LocalDispatch>>,
) {
    tokio::spawn(async move {
        while let Some(packet) = rx.recv().await {
            dispatch
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .deliver(packet);
        }
    });
}

impl Router {
    /// Bring up everything the config describes.
    pub async fn start(config: Config) -> Result<Router, RouterError> {
        let demux = Demuxer::new(&config.router.private_key);

        // Sockets: the shared one first, then one per distinct port tunnels ask for.
        let mut wanted_ports = vec![config.router.listen_port];
        for t in &config.tunnels {
            if let Some(p) = t.listen_port {
                if !wanted_ports.contains(&p) {
                    wanted_ports.push(p);
                }
            }
        }
        let mut ports = Vec::new();
        let mut port_index = HashMap::new();
        for port in wanted_ports {
            let socket = udp::bind(config.router.listen_address, port)
                .map_err(|source| RouterError::Bind { port, source })?;
            port_index.insert(port, ports.len());
            ports.push(UdpPort::new(socket).map_err(|source| RouterError::Bind { port, source })?);
        }

        let mut next_tunnel_id = 1;
        let tunnels: Vec<Arc<Tunnel>> = config
            .tunnels
            .iter()
            .map(|t| {
                let id = TunnelId(next_tunnel_id);
                next_tunnel_id += 1;
                new_tunnel(&config, t, id, &port_index, &demux)
            })
            .collect();
        let table = TunnelTable::new(tunnels);

        // NAT before the host TUN: once wgrd0 is up (what users and tests wait for), the
        // table is in place. A later failure drops `nat`, which removes the table.
        let nat = crate::nat::Nat::new();
        nat.apply(&config).await?;
        let host = match &config.host {
            Some(h) => Some(Arc::new(HostTun::create(h).map_err(RouterError::Host)?)),
            None => None,
        };
        let kernel = match (&config.host, &host) {
            (Some(h), Some(tun)) if h.export_routes => Some(
                KernelRoutes::new(tun.index().map_err(RouterError::Host)?)
                    .map_err(RouterError::Host)?,
            ),
            _ => None,
        };

        let fib = Arc::new(Fib::new());
        let mut rib = Rib::new(Arc::clone(&fib));
        rib.replace_source(RouteSource::Connected, connected_routes(&config, &table));
        rib.replace_source(RouteSource::Static, static_routes(&config, &table));

        let forwarder = Forwarder::new(local_addresses(&config, &table));
        forwarder.set_mss_clamp(config.forwarding.mss_clamp);
        let (local_tx, local_rx) = tokio::sync::mpsc::channel(LOCAL_QUEUE);
        let path = Arc::new(PacketPath::new(
            fib, forwarder, ports, host, demux, table, local_tx,
        ));
        let threads = path.spawn()?;

        let local = Arc::new(Mutex::new(LocalDispatch::default()));
        spawn_local_dispatch(local_rx, Arc::clone(&local));
        let (events, _) = tokio::sync::broadcast::channel(EVENT_QUEUE);
        forward_tunnel_events(&path, &events);

        let router = Router {
            started: Instant::now(),
            path,
            threads: Mutex::new(threads),
            state: tokio::sync::Mutex::new(State {
                config,
                rib,
                next_tunnel_id,
                ports: port_index,
                kernel,
            }),
            events,
            local,
            nat,
        };
        {
            let mut state = router.state.lock().await;
            export_routes(&mut state).await;
            tracing::info!(
                router_id = %state.config.router.router_id,
                tunnels = state.config.tunnels.len(),
                "router started"
            );
        }
        Ok(router)
    }

    /// The running config (key material included: never send it anywhere as is).
    pub async fn config(&self) -> Config {
        self.state.lock().await.config.clone()
    }

    /// NAT rules with their counters, and the sysctls they need.
    pub async fn nat_status(&self) -> crate::nat::NatStatus {
        self.nat.status().await
    }

    /// The packet path, for the control plane (local send, counters).
    pub fn path(&self) -> &Arc<PacketPath> {
        &self.path
    }

    /// The router's own packets that no protocol claimed (echo replies to pings the
    /// router sent, ...). Can be taken once.
    pub fn take_local_packets(&self) -> Option<tokio::sync::mpsc::Receiver<LocalPacket>> {
        let mut local = self.local.lock().unwrap_or_else(|e| e.into_inner());
        if local.rest_taken {
            return None;
        }
        let (tx, rx) = tokio::sync::mpsc::channel(LOCAL_QUEUE);
        local.rest = Some(tx);
        local.rest_taken = true;
        Some(rx)
    }

    /// The router's own packets of one IP protocol (e.g. 89 for OSPF), for the task that
    /// speaks it. A later subscription for the same protocol replaces the earlier one.
    pub fn subscribe_local(&self, protocol: u8) -> tokio::sync::mpsc::Receiver<LocalPacket> {
        let (tx, rx) = tokio::sync::mpsc::channel(LOCAL_QUEUE);
        self.local
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .by_protocol
            .insert(protocol, tx);
        rx
    }

    /// Make `candidates` the complete set of routes from a routing protocol: the RIB picks
    /// the best per prefix, the FIB and the kernel export follow, watchers are told.
    /// Returns how many best routes changed.
    pub async fn replace_protocol_routes(
        &self,
        source: RouteSource,
        candidates: Vec<Candidate>,
    ) -> usize {
        let mut state = self.state.lock().await;
        let changes = state.rib.replace_source(source, candidates);
        let changed = changes.len();
        if changed > 0 {
            export_routes(&mut state).await;
            self.announce_routes(changes);
        }
        changed
    }

    /// Changes to a routing protocol's routes: `remove` (by prefix, for `source`'s
    /// protocol) is withdrawn, `add` offered, in one RIB batch; the FIB, the kernel export
    /// and watchers follow as for [`Router::replace_protocol_routes`], at the cost of the
    /// change rather than of the protocol's whole table. Returns how many best routes
    /// changed.
    pub async fn update_protocol_routes(
        &self,
        source: RouteSource,
        add: Vec<Candidate>,
        remove: Vec<IpNetwork>,
    ) -> usize {
        let mut state = self.state.lock().await;
        let remove = remove.into_iter().map(|p| (p, source)).collect();
        let changes = state.rib.update(add, remove);
        let changed = changes.len();
        if changed > 0 {
            export_routes(&mut state).await;
            self.announce_routes(changes);
        }
        changed
    }

    /// The best route of every prefix whose best is not from `protocol`'s protocol, as
    /// (prefix, source name, metric), without building a
    /// [`RouteInfo`] per route: what a protocol re-reads of the others' routes when it
    /// missed events (its receiver lagged behind the event queue).
    pub async fn best_routes_except(
        &self,
        protocol: RouteSource,
    ) -> Vec<(IpNetwork, &'static str, u32)> {
        let state = self.state.lock().await;
        state
            .rib
            .best_routes()
            .filter(|c| !c.source.same_protocol(protocol))
            .map(|c| (c.prefix, c.source.name(), c.metric))
            .collect()
    }

    /// The UDP ports actually bound (useful when the config asked for port 0).
    pub fn local_ports(&self) -> Vec<u16> {
        self.path
            .ports
            .iter()
            .filter_map(|p| p.local_addr().ok().map(|a| a.port()))
            .collect()
    }

    /// Changes from now on: tunnel state, best routes, tunnels added or removed.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<RouterEvent> {
        self.events.subscribe()
    }

    pub async fn status(&self) -> RouterStatus {
        let state = self.state.lock().await;
        let tunnels = self.path.tunnels.load();
        let mut counters = self.path.forwarder.counters().snapshot();
        counters.extend(
            DemuxDrop::ALL
                .iter()
                .map(|&d| (d.name(), self.path.counters.demux_drops(d))),
        );
        let c = &self.path.counters;
        counters.push(("cookie_replies", c.cookie_replies.load(Ordering::Relaxed)));
        counters.push((
            "local_queue_full",
            c.local_queue_full.load(Ordering::Relaxed),
        ));
        counters.push((
            "host_write_errors",
            c.host_write_errors.load(Ordering::Relaxed),
        ));
        counters.push(("stale_tunnel", c.stale_tunnel.load(Ordering::Relaxed)));
        RouterStatus {
            router_id: state.config.router.router_id,
            public_key: state.config.router.private_key.public_key(),
            uptime: self.started.elapsed(),
            listen_ports: self.local_ports(),
            tunnels: state.config.tunnels.len(),
            tunnels_up: tunnels.iter().filter(|t| t.status().session_up).count(),
            rib_prefixes: state.rib.len(),
            fib_routes: self.path.fib.len(),
            counters,
        }
    }

    /// Every tunnel in config order.
    pub async fn tunnels(&self) -> Vec<TunnelInfo> {
        let state = self.state.lock().await;
        let table = self.path.tunnels.load();
        state
            .config
            .tunnels
            .iter()
            .filter_map(|cfg| {
                let t = table.by_name(&cfg.name)?;
                Some(self.tunnel_info(cfg, t, &state))
            })
            .collect()
    }

    pub async fn tunnel(&self, name: &str) -> Option<TunnelInfo> {
        let state = self.state.lock().await;
        let cfg = state.config.tunnel(name)?;
        let table = self.path.tunnels.load();
        let t = table.by_name(name)?;
        Some(self.tunnel_info(cfg, t, &state))
    }

    fn tunnel_info(&self, cfg: &TunnelConfig, t: &Tunnel, state: &State) -> TunnelInfo {
        let status = t.status();
        let c = &t.counters;
        TunnelInfo {
            name: t.name.clone(),
            peer_public_key: t.peer_public_key,
            configured_endpoint: cfg.endpoint,
            endpoint: status.endpoint,
            session_up: status.session_up,
            last_handshake: status.last_handshake,
            last_received_ago: status.last_received_ago,
            persistent_keepalive: cfg.persistent_keepalive,
            addresses: cfg.addresses.clone(),
            mtu: t.mtu(),
            listen_port: self
                .path
                .ports
                .get(t.socket)
                .and_then(|p| p.local_addr().ok())
                .map(|a| a.port())
                .unwrap_or(state.config.router.listen_port),
            rx_bytes: c.rx_bytes.load(Ordering::Relaxed),
            rx_packets: c.rx_packets.load(Ordering::Relaxed),
            tx_bytes: c.tx_bytes.load(Ordering::Relaxed),
            tx_packets: c.tx_packets.load(Ordering::Relaxed),
            handshakes: c.handshakes.load(Ordering::Relaxed),
            drops: TunnelDrop::ALL
                .iter()
                .map(|&d| (d.name(), c.drops(d)))
                .collect(),
        }
    }

    /// Every RIB candidate (selected ones marked `best`).
    pub async fn rib_routes(&self) -> Vec<RouteInfo> {
        let state = self.state.lock().await;
        let table = self.path.tunnels.load();
        let mut previous = None;
        state
            .rib
            .candidates()
            .iter()
            .map(|c| {
                // Sorted by prefix, the selected candidate first within its prefix.
                let best = previous != Some(c.prefix);
                previous = Some(c.prefix);
                route_info(c, best, &table)
            })
            .collect()
    }

    /// What the data path uses, straight from the FIB.
    pub fn fib_routes(&self) -> Vec<RouteInfo> {
        let table = self.path.tunnels.load();
        self.path
            .fib
            .entries()
            .into_iter()
            .map(|(prefix, hop)| RouteInfo {
                prefix,
                source: "fib",
                admin_distance: 0,
                metric: 0,
                next_hop: next_hop_info(&hop, &table),
                best: true,
            })
            .collect()
    }

    /// The FIB entry a packet to `address` would match.
    pub fn lookup(&self, address: IpAddr) -> Option<LookupResult> {
        let table = self.path.tunnels.load();
        let (prefix, hop) = self.path.fib.longest_match(address)?;
        Some(LookupResult {
            prefix,
            next_hop: next_hop_info(&hop, &table),
        })
    }

    /// Make the running router match `new` (already validated by the config loader),
    /// changing only what differs: an unchanged tunnel keeps its session and counters.
    /// All or nothing: on error nothing was changed.
    pub async fn apply(&self, new: Config) -> Result<ApplySummary, Vec<ApplyError>> {
        let mut state = self.state.lock().await;
        let old = state.config.clone();
        let current = self.path.tunnels.load_full();
        // Every refusal is decided here, before anything is touched.
        let plan = plan_apply(&old, &new, &state, &current)?;
        if let Err(e) = self.nat.apply(&new).await {
            return Err(vec![ApplyError {
                field: "nat".into(),
                why: e.to_string(),
                kind: ApplyErrorKind::Failed,
            }]);
        }
        self.path.forwarder.set_mss_clamp(new.forwarding.mss_clamp);

        let mut summary = plan.summary;
        let tunnels: Vec<Arc<Tunnel>> = new
            .tunnels
            .iter()
            .zip(plan.tunnels)
            .map(|(t, p)| match p {
                TunnelPlan::Keep {
                    tunnel,
                    reconfigure,
                } => {
                    if reconfigure {
                        tunnel.reconfigure(t.mtu, t.endpoint);
                    }
                    tunnel
                }
                TunnelPlan::Build { id } => new_tunnel(&new, t, id, &state.ports, &self.path.demux),
            })
            .collect();
        state.next_tunnel_id = plan.next_tunnel_id;
        let table = TunnelTable::new(tunnels);

        // Routes first toward the new tunnels, then swap the table: a packet in between
        // can at worst meet a FIB entry for a tunnel not yet in the table, and is dropped
        // and counted as stale.
        let mut changes = state
            .rib
            .replace_source(RouteSource::Connected, connected_routes(&new, &table));
        changes.extend(
            state
                .rib
                .replace_source(RouteSource::Static, static_routes(&new, &table)),
        );
        self.path.tunnels.store(Arc::new(table));
        self.path
            .forwarder
            .set_local(local_addresses(&new, &self.path.tunnels.load()));
        summary.routes_changed = changes.len();
        state.config = new;
        export_routes(&mut state).await;

        for name in summary
            .tunnels_removed
            .iter()
            .chain(&summary.tunnels_replaced)
        {
            let _ = self.events.send(RouterEvent::TunnelConfigured {
                tunnel: name.clone(),
                present: false,
            });
        }
        for name in summary
            .tunnels_added
            .iter()
            .chain(&summary.tunnels_replaced)
        {
            let _ = self.events.send(RouterEvent::TunnelConfigured {
                tunnel: name.clone(),
                present: true,
            });
        }
        self.announce_routes(changes);
        if !summary.is_empty() {
            tracing::info!(?summary, "config applied");
        }
        Ok(summary)
    }

    /// What [`Router::apply`] would do with `new`, decided by the same plan, without
    /// changing anything: the same summary (with `routes_changed` from the same RIB
    /// update run on a detached copy of the RIB, so it costs a copy of every candidate)
    /// or the same refusals. Not tried: installing `[nat]` (nftables), which can still
    /// fail when applied for real.
    pub async fn apply_dry_run(&self, new: &Config) -> Result<ApplySummary, Vec<ApplyError>> {
        let state = self.state.lock().await;
        let current = self.path.tunnels.load();
        let plan = plan_apply(&state.config, new, &state, &current)?;
        let ids = plan.tunnel_ids(new);
        let id = |name: &str| ids.get(name).copied();
        let mut rib = state.rib.detached_copy();
        let mut changes = rib.replace_source(RouteSource::Connected, connected_routes_by(new, id));
        changes.extend(rib.replace_source(RouteSource::Static, static_routes_by(new, id)));
        let mut summary = plan.summary;
        summary.routes_changed = changes.len();
        Ok(summary)
    }

    /// One event for the whole update (none if nothing changed).
    fn announce_routes(&self, changes: Vec<RibChange>) {
        if changes.is_empty() {
            return;
        }
        let batch = RouteBatch::new(changes, self.path.tunnels.load_full());
        let _ = self.events.send(RouterEvent::Routes(batch));
    }

    /// Stop every thread and remove what the router created (TUN, kernel routes).
    pub async fn shutdown(&self) {
        self.path.stop();
        self.nat.clear().await;
        if let Some(kernel) = self.state.lock().await.kernel.as_mut() {
            kernel.clear().await;
        }
        let threads: Vec<_> = self
            .threads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect();
        for thread in threads {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        tracing::info!("router stopped");
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        self.path.stop();
    }
}

fn new_tunnel(
    config: &Config,
    t: &TunnelConfig,
    id: TunnelId,
    ports: &HashMap<u16, usize>,
    demux: &Demuxer,
) -> Arc<Tunnel> {
    let socket = t
        .listen_port
        .and_then(|p| ports.get(&p).copied())
        .unwrap_or(0);
    Arc::new(Tunnel::new(TunnelParams {
        id,
        name: t.name.clone(),
        private_key: &config.router.private_key,
        peer_public_key: t.peer_public_key,
        preshared_key: t.preshared_key.as_ref(),
        endpoint: t.endpoint,
        persistent_keepalive: t.persistent_keepalive,
        mtu: t.mtu,
        socket,
        rate_limiter: demux.rate_limiter.clone(),
    }))
}

/// Whether a tunnel can keep its WireGuard session across a config change: everything
/// boringtun was built with must be the same.
fn same_session(old: &TunnelConfig, new: &TunnelConfig) -> bool {
    old.peer_public_key == new.peer_public_key
        && old.preshared_key == new.preshared_key
        && old.persistent_keepalive == new.persistent_keepalive
        && old.listen_port == new.listen_port
}

/// What applying a config does to one tunnel of the new config.
enum TunnelPlan {
    /// Keep the running tunnel with its session and counters; `reconfigure` when its
    /// MTU, endpoint or addresses differ.
    Keep {
        tunnel: Arc<Tunnel>,
        reconfigure: bool,
    },
    /// Build a new tunnel (a new session) with this id.
    Build { id: TunnelId },
}

/// What applying a config will do, decided before anything is touched, so that
/// [`Router::apply`] and [`Router::apply_dry_run`] cannot disagree.
struct ApplyPlan {
    /// One per tunnel of the new config, in its order.
    tunnels: Vec<TunnelPlan>,
    /// Everything but `routes_changed`, which needs the RIB.
    summary: ApplySummary,
    /// The state's next tunnel id once the new tunnels are built.
    next_tunnel_id: u32,
}

impl ApplyPlan {
    /// The id each tunnel of `new` will have, for building its routes.
    fn tunnel_ids(&self, new: &Config) -> HashMap<String, TunnelId> {
        new.tunnels
            .iter()
            .zip(&self.tunnels)
            .map(|(t, p)| {
                let id = match p {
                    TunnelPlan::Keep { tunnel, .. } => tunnel.id,
                    TunnelPlan::Build { id } => *id,
                };
                (t.name.clone(), id)
            })
            .collect()
    }
}

/// Decide what applying `new` over `old` means for the `running` tunnels: which keep
/// their session, which are rebuilt, added or removed, and every reason the change needs
/// a restart. Reads only; changes nothing.
fn plan_apply(
    old: &Config,
    new: &Config,
    state: &State,
    running: &TunnelTable,
) -> Result<ApplyPlan, Vec<ApplyError>> {
    let mut errors = restart_only_changes(old, new, &state.ports);
    let mut summary = ApplySummary::default();
    let mut next_tunnel_id = state.next_tunnel_id;
    let mut tunnels = Vec::with_capacity(new.tunnels.len());
    for t in &new.tunnels {
        let previous = old.tunnel(&t.name);
        let kept = previous
            .filter(|o| same_session(o, t))
            .and_then(|_| running.by_name(&t.name).cloned());
        match kept {
            Some(tunnel) => {
                let reconfigure = previous != Some(t);
                if reconfigure {
                    summary.tunnels_updated.push(t.name.clone());
                }
                tunnels.push(TunnelPlan::Keep {
                    tunnel,
                    reconfigure,
                });
            }
            None => {
                // Checked here rather than while building, so that running out refuses
                // the whole change before any id is taken.
                if next_tunnel_id > MAX_TUNNEL_ID {
                    errors.push(ApplyError {
                        field: format!("tunnel \"{}\"", t.name),
                        why: "tunnel ids exhausted; restart wgrd".into(),
                        kind: ApplyErrorKind::NeedsRestart,
                    });
                    continue;
                }
                if previous.is_some() {
                    summary.tunnels_replaced.push(t.name.clone());
                } else {
                    summary.tunnels_added.push(t.name.clone());
                }
                tunnels.push(TunnelPlan::Build {
                    id: TunnelId(next_tunnel_id),
                });
                next_tunnel_id += 1;
            }
        }
    }
    for t in &old.tunnels {
        if new.tunnel(&t.name).is_none() {
            summary.tunnels_removed.push(t.name.clone());
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(ApplyPlan {
        tunnels,
        summary,
        next_tunnel_id,
    })
}

/// Changes the running router cannot make without a restart (yet).
fn restart_only_changes(
    old: &Config,
    new: &Config,
    ports: &HashMap<u16, usize>,
) -> Vec<ApplyError> {
    let mut errors = Vec::new();
    let mut restart = |field: &str| {
        errors.push(ApplyError {
            field: field.into(),
            why: "cannot change while wgrd runs; restart wgrd to change it".into(),
            kind: ApplyErrorKind::NeedsRestart,
        })
    };
    if old.router.private_key != new.router.private_key {
        restart("router.private-key");
    }
    if old.router.listen_port != new.router.listen_port {
        restart("router.listen-port");
    }
    if old.router.listen_address != new.router.listen_address {
        restart("router.listen-address");
    }
    if old.host != new.host {
        restart("host");
    }
    for t in &new.tunnels {
        if let Some(port) = t.listen_port {
            if !ports.contains_key(&port) {
                errors.push(ApplyError {
                    field: format!("tunnel \"{}\".listen-port", t.name),
                    why: format!(
                        "port {port} is not open; a new listen port needs a restart of wgrd"
                    ),
                    kind: ApplyErrorKind::NeedsRestart,
                });
            }
        }
    }
    errors
}

/// Republish tunnel state changes from the data path as router events.
fn forward_tunnel_events(
    path: &Arc<PacketPath>,
    events: &tokio::sync::broadcast::Sender<RouterEvent>,
) {
    let mut rx = path.subscribe();
    let events = events.clone();
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(e) => {
                    let _ = events.send(RouterEvent::Tunnel(e));
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "tunnel events lagged");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    });
}

/// Mirror FIB routes toward tunnels (and the router's own addresses) into the kernel.
async fn export_routes(state: &mut State) {
    let Some(kernel) = state.kernel.as_mut() else {
        return;
    };
    let desired: BTreeSet<IpNetwork> = state
        .rib
        .fib()
        .entries()
        .into_iter()
        .filter(|(prefix, hop)| {
            matches!(hop, NextHop::Tunnel(_) | NextHop::Ecmp(_) | NextHop::Local)
                && !is_host_address(&state.config, prefix)
        })
        .map(|(prefix, _)| prefix)
        .collect();
    kernel.sync(&desired).await;
}

fn next_hop_info(hop: &NextHop, table: &TunnelTable) -> NextHopInfo {
    let name = |id: &TunnelId| {
        table
            .get(*id)
            .map(|t| t.name.clone())
            .unwrap_or_else(|| id.to_string())
    };
    match hop {
        NextHop::Tunnel(id) => NextHopInfo::Tunnels(vec![name(id)]),
        NextHop::Ecmp(ids) => NextHopInfo::Tunnels(ids.iter().map(name).collect()),
        NextHop::Host => NextHopInfo::Host,
        NextHop::Local => NextHopInfo::Local,
        NextHop::Blackhole => NextHopInfo::Blackhole,
    }
}

fn route_info(c: &Candidate, best: bool, table: &TunnelTable) -> RouteInfo {
    RouteInfo {
        prefix: c.prefix,
        source: c.source.name(),
        admin_distance: c.source.admin_distance(),
        metric: c.metric,
        next_hop: next_hop_info(&c.next_hop, table),
        best,
    }
}
