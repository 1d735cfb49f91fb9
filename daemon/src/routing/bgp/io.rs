//! The glue between one BGP [`Instance`] and the running [`Router`]: the task that owns
//! the instance, connects and accepts its transports (the userspace TCP stack across
//! tunnels, kernel TCP toward LAN neighbors), maps its timers to sleeps, installs its
//! routes into the RIB, and answers the API's questions.
//!
//! Owns no protocol logic: sessions, decisions and exports are the instance's. What lives
//! here is I/O policy: which transport a neighbor uses, collisions between two
//! connections (RFC 4271 6.8, which needs both connections and so cannot be in the
//! single-connection instance), tunnel liveness, and when to re-resolve next hops.

use super::attr::{AsPath, Origin, PathAttrs};
use super::decision::{PeerInfo, Resolution};
use super::fsm::{resolve_collision, CollisionWinner, DownReason, Negotiated, State, Timer};
use super::installer::Installer;
use super::instance::{Input, Instance, InstanceConfig, Output, RouteDelta};
use super::message::{Framer, Message};
use super::scope;
use super::setup;
use super::transport::{self, BoxStream, ConnEvent, Connection, KernelOptions};
use crate::config::{BgpNeighborConfig, BgpRedistribute, Config};
use crate::dataplane::fib::Fib;
use crate::dataplane::path::TunnelEvent;
use crate::dataplane::tunnel::LivenessUser;
use crate::dataplane::{NextHop, TunnelId};
use crate::router::view::RouterEvent;
use crate::router::Router;
use crate::routing::rib::RouteSource;
use crate::stack::TcpStack;
use ipnetwork::IpNetwork;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;

/// How long a tunnel may stay silent before its BGP sessions go down, by default. The
/// tunnel probes three times per interval; a peer that does not probe back (not a wgrd)
/// never arms the detection, so this cannot tear down sessions to wireguard-go peers.
/// The same interval OSPF uses by default.
pub const DEFAULT_LIVENESS: Duration =
    Duration::from_millis(crate::config::DEFAULT_LIVENESS_MS as u64);
/// BGP's well-known port, where the speaker listens.
pub const BGP_PORT: u16 = 179;
/// How often the running config is re-read for changes no event announces.
const CONFIG_POLL: Duration = Duration::from_secs(2);
/// Route changes are batched this long before next hops are resolved again.
const RESOLVE_DELAY: Duration = Duration::from_millis(100);
/// How long a connect attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection we closed gets this long to flush (a NOTIFICATION) before it is cut.
const CLOSE_GRACE: Duration = Duration::from_secs(3);

/// One neighbor as the status shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct NeighborStatus {
    /// The address on the wire (a link-local one is only unique with `tunnel`).
    pub address: IpAddr,
    /// What the speaker's requests ([`Table`], [`BgpClient::soft_reset`], ...) and
    /// [`PathInfo::peer`] name this neighbor by: `address`, scoped to its tunnel when
    /// link-local (see [`super::scope`]).
    pub key: IpAddr,
    pub tunnel: Option<String>,
    pub description: Option<String>,
    pub local_as: u32,
    pub remote_as: u32,
    pub state: State,
    /// When it entered its current state.
    pub since: Instant,
    pub passive: bool,
    pub messages_in: u64,
    pub messages_out: u64,
    pub updates_in: u64,
    pub established_transitions: u32,
    pub last_error: Option<String>,
    pub negotiated: Option<Negotiated>,
    /// Routes in its Adj-RIB-In (after import policy).
    pub prefixes_received: usize,
    /// Routes in its Adj-RIB-Out.
    pub prefixes_advertised: usize,
    /// Routes kept as received, before import policy (`keep-received-routes` only).
    pub prefixes_kept: Option<usize>,
    /// Whether a silent tunnel takes this session down at once.
    pub fast_failover: FastFailover,
}

/// Tunnel liveness as it applies to one session (`Off` for a LAN neighbor).
pub use crate::dataplane::tunnel::FastFailover;

/// What the speaker shows of itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BgpStatus {
    pub running: bool,
    pub asn: u32,
    pub router_id: Option<Ipv4Addr>,
    pub neighbors: Vec<NeighborStatus>,
    /// Best routes installed from BGP.
    pub routes: usize,
    /// Locally originated routes (networks, redistribution, API).
    pub originated: usize,
    /// Problems with listening (for example port 179 already taken).
    pub listen_errors: Vec<String>,
}

/// Which table [`BgpHandle::paths`] lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// Every path known, with the best marked.
    LocRib,
    /// What one neighbor sent us (after import policy).
    AdjIn(IpAddr),
    /// What one neighbor sent us, as received (before import policy): neighbors with
    /// `keep-received-routes` only.
    AdjInPre(IpAddr),
    /// What we sent one neighbor.
    AdjOut(IpAddr),
}

/// One path of a table.
#[derive(Debug, Clone, PartialEq)]
pub struct PathInfo {
    pub prefix: IpNetwork,
    /// None: originated here.
    pub peer: Option<IpAddr>,
    pub next_hop: Option<IpAddr>,
    pub attrs: PathAttrs,
    pub best: bool,
}

/// Why an API request was refused (nothing changed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BgpError {
    #[error("BGP is not running (no [bgp] section)")]
    NotRunning,
    #[error("no BGP neighbor {0}")]
    NoSuchNeighbor(IpAddr),
    #[error("{0} is a neighbor on several tunnels; name one as {0}%TUNNEL")]
    AmbiguousNeighbor(IpAddr),
    #[error("{0} is not announced over the API")]
    NotAnnounced(IpNetwork),
    #[error("neighbor {0} does not keep received routes (set keep-received-routes = true in its [[bgp.neighbor]])")]
    NotKept(IpAddr),
}

enum Request {
    Paths {
        table: Table,
        prefix: Option<IpNetwork>,
        reply: oneshot::Sender<Result<Vec<PathInfo>, BgpError>>,
    },
    Announce {
        prefix: IpNetwork,
        attrs: Box<PathAttrs>,
        reply: oneshot::Sender<Result<(), BgpError>>,
    },
    Withdraw {
        prefix: IpNetwork,
        reply: oneshot::Sender<Result<(), BgpError>>,
    },
    SoftReset {
        neighbor: Option<IpAddr>,
        inbound: bool,
        outbound: bool,
        reply: oneshot::Sender<Result<(), BgpError>>,
    },
    Restart {
        neighbor: IpAddr,
        reply: oneshot::Sender<Result<(), BgpError>>,
    },
}

/// Owns the BGP task: dropping it stops the task; [`BgpHandle::shutdown`] also closes
/// sessions with a Cease and withdraws BGP's routes from the RIB.
pub struct BgpHandle {
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
    status: watch::Receiver<BgpStatus>,
    requests: mpsc::Sender<Request>,
}

impl BgpHandle {
    pub fn status(&self) -> BgpStatus {
        self.status.borrow().clone()
    }

    /// Changes of the status, for waiting on sessions.
    pub fn watch(&self) -> watch::Receiver<BgpStatus> {
        self.status.clone()
    }

    /// A cheap handle for the API: questions and commands, no ownership.
    pub fn client(&self) -> BgpClient {
        BgpClient {
            status: self.status.clone(),
            requests: self.requests.clone(),
        }
    }

    pub async fn shutdown(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for BgpHandle {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// What the control plane holds: status, tables, announce/withdraw, resets.
#[derive(Clone)]
pub struct BgpClient {
    status: watch::Receiver<BgpStatus>,
    requests: mpsc::Sender<Request>,
}

impl BgpClient {
    pub fn status(&self) -> BgpStatus {
        self.status.borrow().clone()
    }

    pub fn watch(&self) -> watch::Receiver<BgpStatus> {
        self.status.clone()
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, BgpError>>) -> Request,
    ) -> Result<T, BgpError> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(make(tx))
            .await
            .map_err(|_| BgpError::NotRunning)?;
        rx.await.map_err(|_| BgpError::NotRunning)?
    }

    /// Paths of one table, optionally only those of one prefix (exact match).
    pub async fn paths(
        &self,
        table: Table,
        prefix: Option<IpNetwork>,
    ) -> Result<Vec<PathInfo>, BgpError> {
        self.ask(|reply| Request::Paths {
            table,
            prefix,
            reply,
        })
        .await
    }

    /// Originate `prefix` with these attributes (next hop and MP attributes are derived
    /// per neighbor; origin defaults to IGP).
    pub async fn announce(&self, prefix: IpNetwork, attrs: PathAttrs) -> Result<(), BgpError> {
        self.ask(|reply| Request::Announce {
            prefix,
            attrs: Box::new(attrs),
            reply,
        })
        .await
    }

    pub async fn withdraw(&self, prefix: IpNetwork) -> Result<(), BgpError> {
        self.ask(|reply| Request::Withdraw { prefix, reply }).await
    }

    /// Soft reset of one neighbor or all: inbound asks for the routes again (route
    /// refresh), outbound sends ours again.
    pub async fn soft_reset(
        &self,
        neighbor: Option<IpAddr>,
        inbound: bool,
        outbound: bool,
    ) -> Result<(), BgpError> {
        self.ask(|reply| Request::SoftReset {
            neighbor,
            inbound,
            outbound,
            reply,
        })
        .await
    }

    /// Hard reset: the session is closed with a Cease and started again.
    pub async fn restart(&self, neighbor: IpAddr) -> Result<(), BgpError> {
        self.ask(|reply| Request::Restart { neighbor, reply }).await
    }
}

/// Starts the BGP speaker of `router`. It runs while the config has a `[bgp]` section
/// (and picks up later changes of it). Takes the router's TCP (protocol 6) packets for
/// the userspace stack that carries sessions across tunnels.
pub fn spawn(router: Arc<Router>) -> BgpHandle {
    let stop = CancellationToken::new();
    let (tx, status) = watch::channel(BgpStatus::default());
    let (requests, rx) = mpsc::channel(16);
    let task = tokio::spawn(run(router, rx, tx, stop.clone()));
    BgpHandle {
        stop,
        task: Some(task),
        status,
        requests,
    }
}

/// How a neighbor is reached.
#[derive(Debug, Clone, PartialEq)]
enum Via {
    Tunnel {
        id: TunnelId,
        name: String,
        local: IpAddr,
        /// All the tunnel's addresses: next hop self for the other family too.
        addresses: Vec<IpNetwork>,
    },
    Kernel {
        port: u16,
        local: Option<IpAddr>,
        opts: KernelOptions,
    },
}

/// The io side of one neighbor.
struct Peer {
    cfg: BgpNeighborConfig,
    via: Via,
    conn: Option<Live>,
    /// An outgoing connect in progress: its attempt number and task.
    connecting: Option<(u64, AbortHandle)>,
    /// A connection from the peer waiting for its OPEN to settle a collision.
    pending: Option<Pending>,
    state: State,
    since: Instant,
}

struct Live {
    conn: Connection,
    outgoing: bool,
}

struct Pending {
    conn: Connection,
    framer: Framer,
    buffered: Vec<u8>,
}

enum IoEvent {
    Connected {
        peer: IpAddr,
        attempt: u64,
        stream: BoxStream,
        local: SocketAddr,
    },
    ConnectFailed {
        peer: IpAddr,
        attempt: u64,
        why: String,
    },
    Incoming {
        stream: BoxStream,
        remote: SocketAddr,
        local: SocketAddr,
        tunnel: Option<TunnelId>,
    },
}

/// The FIB view next hops are resolved against.
#[derive(Clone)]
struct Resolver {
    fib: Arc<Fib>,
    /// Neighbors across tunnels: link-local next hops they send resolve to their tunnel.
    peer_tunnels: Arc<HashMap<IpAddr, TunnelId>>,
    /// Metrics of the other protocols' best routes (OSPF cost): the IGP cost of a next
    /// hop is the metric of the route it resolves through.
    igp: Arc<HashMap<IpNetwork, u32>>,
    /// Neighbors over kernel TCP (LAN routers): the host's kernel reaches them, and their
    /// next hops, whatever wgrd's own table says.
    kernel_peers: Arc<BTreeSet<IpAddr>>,
}

impl Resolver {
    fn resolve(&self, peer: &PeerInfo, nh: IpAddr) -> Option<Resolution> {
        let direct = |id: TunnelId| Resolution {
            next_hop: NextHop::Tunnel(id),
            igp_cost: 0,
            via: None,
        };
        if let IpAddr::V6(v6) = nh {
            if v6.is_unicast_link_local() {
                return self.peer_tunnels.get(&peer.addr).copied().map(direct);
            }
        }
        // The peer itself across its tunnel (also when its address is not in a connected
        // subnet, e.g. an unnumbered tunnel).
        if nh == peer.addr {
            if let Some(id) = self.peer_tunnels.get(&peer.addr) {
                return Some(direct(*id));
            }
        }
        let from_lan = self.kernel_peers.contains(&peer.addr);
        let host = Resolution {
            next_hop: NextHop::Host,
            igp_cost: 0,
            via: None,
        };
        // Before the FIB: a default route into a tunnel must not capture the LAN router.
        if from_lan && nh == peer.addr {
            return Some(host);
        }
        let Some((prefix, hop)) = self.fib.longest_match(nh) else {
            // A third-party next hop on the LAN: the kernel knows its neighbors.
            return from_lan.then_some(host);
        };
        // The instance refuses it if `prefix` is its own route with this next hop.
        match hop {
            NextHop::Local | NextHop::Blackhole => None,
            next_hop => Some(Resolution {
                next_hop,
                igp_cost: self.igp.get(&prefix).copied().unwrap_or(0),
                via: Some(prefix),
            }),
        }
    }
}

struct Speaker {
    router: Arc<Router>,
    stack: TcpStack,
    instance: Option<Instance>,
    /// The config the instance was built from.
    built: Option<Built>,
    peers: BTreeMap<IpAddr, Peer>,
    timers: BTreeMap<(IpAddr, Timer), tokio::time::Instant>,
    resolver: Resolver,
    /// Routes announced over the API.
    api_routes: BTreeMap<IpNetwork, PathAttrs>,
    /// The best route (source, metric) of every prefix whose best is not BGP's: IGP costs
    /// and redistribution, kept from the router's route events.
    others: BTreeMap<IpNetwork, (&'static str, u32)>,
    /// `others` follows the RIB (false at start and after missed events: re-read it).
    others_known: bool,
    /// Tunnels whose liveness we asked for.
    liveness: BTreeSet<TunnelId>,
    listeners: Vec<AbortHandle>,
    listen_errors: Vec<String>,
    /// The kernel listeners' MD5 keys and port, to know when to rebuild them.
    kernel_listen: Option<Vec<(IpAddr, Option<Vec<u8>>)>>,
    tunnel_listening: bool,
    next_id: u64,
    resolve_at: Option<tokio::time::Instant>,
    io_tx: mpsc::Sender<IoEvent>,
    conn_tx: mpsc::Sender<ConnEvent>,
    status: watch::Sender<BgpStatus>,
    /// Writes route deltas to the RIB (see `installer.rs`).
    installer: Installer,
    /// The outputs being acted on were decided from a connection's data: their routes
    /// go to the installer's queue without waiting.
    from_peer_data: bool,
}

/// What a running instance was built from; a change of anything but the originated
/// routes and policies rebuilds the neighbor it concerns.
#[derive(Clone, PartialEq)]
struct Built {
    asn: u32,
    router_id: Ipv4Addr,
    decision: (u8, bool),
    /// Offered in every OPEN: a change restarts the sessions.
    graceful_restart: crate::config::GracefulRestart,
    neighbors: BTreeMap<IpAddr, (BgpNeighborConfig, Via)>,
    policies: Vec<crate::config::PolicyConfig>,
    /// What is originated (`networks`, `redistribute`): a change re-originates without
    /// touching the sessions.
    originate: (Vec<IpNetwork>, Vec<BgpRedistribute>),
    /// Seconds between connection attempts: a change reaches every session's next
    /// attempt, without a restart.
    connect_retry: u16,
}

async fn run(
    router: Arc<Router>,
    mut requests: mpsc::Receiver<Request>,
    status: watch::Sender<BgpStatus>,
    stop: CancellationToken,
) {
    let (io_tx, mut io_rx) = mpsc::channel(64);
    let (conn_tx, mut conn_rx) = mpsc::channel(256);
    let mut events = router.subscribe();
    let stack = TcpStack::start(Arc::clone(&router));
    let installer = Installer::spawn(Arc::clone(&router));
    let mut s = Speaker {
        resolver: Resolver {
            fib: Arc::clone(&router.path().fib),
            peer_tunnels: Arc::default(),
            igp: Arc::default(),
            kernel_peers: Arc::default(),
        },
        router,
        stack,
        instance: None,
        built: None,
        peers: BTreeMap::new(),
        timers: BTreeMap::new(),
        api_routes: BTreeMap::new(),
        others: BTreeMap::new(),
        others_known: false,
        liveness: BTreeSet::new(),
        listeners: Vec::new(),
        listen_errors: Vec::new(),
        kernel_listen: None,
        tunnel_listening: false,
        next_id: 1,
        resolve_at: None,
        io_tx,
        conn_tx,
        status,
        installer,
        from_peer_data: false,
    };
    s.reconfigure().await;
    let mut poll = tokio::time::interval(CONFIG_POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let far = || tokio::time::Instant::now() + Duration::from_secs(3600);
    'run: loop {
        let timer = s
            .timers
            .iter()
            .min_by_key(|(_, at)| **at)
            .map(|(k, at)| (*k, *at));
        let timer_at = timer.map_or_else(far, |(_, at)| at);
        let resolve_at = s.resolve_at.unwrap_or_else(far);
        tokio::select! {
            _ = stop.cancelled() => break,
            e = conn_rx.recv() => {
                if let Some(e) = e {
                    s.from_peer_data = true;
                    s.conn_event(e).await;
                    s.from_peer_data = false;
                    // Our own installs are router events too: taken now, a table load
                    // does not pile up a copy of every change in the event queue.
                    if !s.drain_router_events(&mut events, None).await {
                        break 'run;
                    }
                }
            }
            e = io_rx.recv() => {
                if let Some(e) = e {
                    s.io_event(e).await;
                }
            }
            r = requests.recv() => match r {
                Some(r) => s.request(r).await,
                None => break,
            },
            e = events.recv() => {
                if !s.drain_router_events(&mut events, Some(e)).await {
                    break 'run;
                }
            }
            _ = poll.tick() => {
                s.reconfigure().await;
                // Liveness arms without an event: keep the status true to it.
                s.publish();
            }
            _ = tokio::time::sleep_until(resolve_at), if s.resolve_at.is_some() => {
                s.resolve_at = None;
                s.routes_changed().await;
            }
            _ = tokio::time::sleep_until(timer_at), if timer.is_some() => {
                if let Some((key, _)) = timer {
                    s.timers.remove(&key);
                    s.input(key.0, Input::TimerExpired(key.1)).await;
                }
            }
        }
    }
    s.stop_all().await;
    s.stack.shutdown();
}

impl Speaker {
    fn resolver(&self) -> Resolver {
        self.resolver.clone()
    }

    /// `first` and every router event already queued, all at once: a lag costs a full
    /// re-read of the RIB, and every RIB batch (ours included) is an event. False when
    /// the router is gone.
    async fn drain_router_events(
        &mut self,
        events: &mut broadcast::Receiver<RouterEvent>,
        first: Option<Result<RouterEvent, broadcast::error::RecvError>>,
    ) -> bool {
        let mut next = first;
        loop {
            let e = match next.take() {
                Some(e) => e,
                None => match events.try_recv() {
                    Ok(e) => Ok(e),
                    Err(broadcast::error::TryRecvError::Lagged(n)) => {
                        Err(broadcast::error::RecvError::Lagged(n))
                    }
                    Err(_) => return true,
                },
            };
            if !self.router_event(e).await {
                return false;
            }
        }
    }

    /// One router event; false when the router is gone.
    async fn router_event(&mut self, e: Result<RouterEvent, broadcast::error::RecvError>) -> bool {
        match e {
            Ok(RouterEvent::Tunnel(TunnelEvent::PeerSilent { tunnel })) => {
                self.tunnel_silent(&tunnel).await
            }
            Ok(RouterEvent::Tunnel(TunnelEvent::PeerAlive { tunnel })) => {
                self.tunnel_alive(&tunnel).await
            }
            Ok(RouterEvent::Tunnel(TunnelEvent::Up { tunnel })) => self.tunnel_alive(&tunnel).await,
            Ok(RouterEvent::TunnelConfigured { .. }) => self.reconfigure().await,
            Ok(RouterEvent::Routes(batch)) => {
                // The batch holds each prefix's new best route: keep the non-BGP ones (IGP
                // costs, redistribution) without re-reading the whole RIB.
                let bgp = RouteSource::Bgp { ebgp: true };
                for (prefix, best) in batch.best_routes() {
                    match best.filter(|c| !c.source.same_protocol(bgp)) {
                        Some(c) => {
                            self.others.insert(prefix, (c.source.name(), c.metric));
                        }
                        None => {
                            self.others.remove(&prefix);
                        }
                    }
                }
                if self.resolve_at.is_none() {
                    self.resolve_at = Some(tokio::time::Instant::now() + RESOLVE_DELAY);
                }
            }
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => {
                // Changes were missed (one route event per RIB batch makes this rare):
                // re-read on the usual delay (not at once), so that costs one RIB scan
                // per delay at most.
                self.others_known = false;
                if self.resolve_at.is_none() {
                    self.resolve_at = Some(tokio::time::Instant::now() + RESOLVE_DELAY);
                }
            }
            Err(broadcast::error::RecvError::Closed) => return false,
        }
        true
    }

    async fn input(&mut self, addr: IpAddr, input: Input) {
        let r = self.resolver();
        let Some(i) = self.instance.as_mut() else {
            return;
        };
        let out = i.handle(addr, input, &|p: &PeerInfo, nh| r.resolve(p, nh));
        drop(r);
        self.act(out).await;
    }

    async fn act(&mut self, outputs: Vec<Output>) {
        for o in outputs {
            match o {
                Output::Connect(addr) => self.connect(addr),
                Output::Close(addr) => {
                    if let Some(p) = self.peers.get_mut(&addr) {
                        if let Some((_, task)) = p.connecting.take() {
                            task.abort();
                        }
                        if let Some(live) = p.conn.take() {
                            close_gracefully(live.conn);
                        }
                    }
                }
                Output::Write(addr, bytes) => {
                    if let Some(live) = self.peers.get(&addr).and_then(|p| p.conn.as_ref()) {
                        live.conn.write(bytes);
                    }
                }
                Output::StartTimer(addr, t, d) => {
                    self.timers
                        .insert((addr, t), tokio::time::Instant::now() + d);
                }
                Output::StopTimer(addr, t) => {
                    self.timers.remove(&(addr, t));
                }
                Output::Routes(routes) => self.install(routes).await,
                Output::NeighborUp(addr, neg) => {
                    tracing::info!(neighbor = %self.show(addr), remote_as = neg.peer_as, peer_id = %neg.peer_id, hold = neg.hold_time, "bgp session established");
                }
                Output::NeighborDown(addr, why) => {
                    tracing::info!(neighbor = %self.show(addr), reason = %describe_down(&why), "bgp session down");
                }
            }
        }
        self.note_states();
        self.publish();
    }

    /// Hands the instance's route changes to the RIB as one batch (the cost of the
    /// change, not of the table): queued when decided from a peer's UPDATEs, so that the
    /// next ones are decided meanwhile; otherwise in the RIB before this returns.
    async fn install(&mut self, delta: RouteDelta) {
        if self.from_peer_data {
            self.installer.send(delta).await;
        } else {
            self.installer.install_now(delta).await;
        }
    }

    /// Records state changes (for "since") after the instance moved.
    fn note_states(&mut self) {
        let Some(i) = &self.instance else { return };
        for (addr, p) in self.peers.iter_mut() {
            let state = i.state(*addr).unwrap_or(State::Idle);
            if state != p.state {
                p.state = state;
                p.since = Instant::now();
            }
        }
    }

    fn connect(&mut self, addr: IpAddr) {
        let id = self.next_id;
        self.next_id += 1;
        let Some(p) = self.peers.get_mut(&addr) else {
            return;
        };
        if let Some((_, task)) = p.connecting.take() {
            task.abort();
        }
        let tx = self.io_tx.clone();
        let via = p.via.clone();
        let stack = self.stack.clone();
        let task = tokio::spawn(async move {
            let attempt = async {
                match via {
                    Via::Tunnel { id, local, .. } => {
                        let s = stack
                            .connect(
                                id,
                                SocketAddr::new(local, 0),
                                SocketAddr::new(scope::unscoped(addr), BGP_PORT),
                            )
                            .await?;
                        let local = s.local_addr();
                        Ok::<_, std::io::Error>((Box::new(s) as BoxStream, local))
                    }
                    Via::Kernel { port, local, opts } => {
                        let s =
                            transport::connect_kernel(SocketAddr::new(addr, port), local, &opts)
                                .await?;
                        let local = s.local_addr()?;
                        Ok((Box::new(s) as BoxStream, local))
                    }
                }
            };
            let event = match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
                Ok(Ok((stream, local))) => IoEvent::Connected {
                    peer: addr,
                    attempt: id,
                    stream,
                    local,
                },
                Ok(Err(e)) => IoEvent::ConnectFailed {
                    peer: addr,
                    attempt: id,
                    why: e.to_string(),
                },
                Err(_) => IoEvent::ConnectFailed {
                    peer: addr,
                    attempt: id,
                    why: "connect timed out".into(),
                },
            };
            let _ = tx.send(event).await;
        });
        p.connecting = Some((id, task.abort_handle()));
    }

    async fn io_event(&mut self, e: IoEvent) {
        match e {
            IoEvent::Connected {
                peer,
                attempt,
                stream,
                local,
            } => {
                let Some(p) = self.peers.get_mut(&peer) else {
                    return;
                };
                if p.connecting.as_ref().map(|(a, _)| *a) != Some(attempt) || p.conn.is_some() {
                    // Superseded (an incoming connection was taken meanwhile).
                    return;
                }
                p.connecting = None;
                let id = self.next_id;
                self.next_id += 1;
                let conn = transport::drive(stream, peer, id, self.conn_tx.clone());
                p.conn = Some(Live {
                    conn,
                    outgoing: true,
                });
                self.learn_local(peer, local.ip());
                tracing::debug!(neighbor = %peer, %local, "bgp connected");
                self.input(peer, Input::TransportUp).await;
            }
            IoEvent::ConnectFailed { peer, attempt, why } => {
                let Some(p) = self.peers.get_mut(&peer) else {
                    return;
                };
                if p.connecting.as_ref().map(|(a, _)| *a) != Some(attempt) {
                    return;
                }
                p.connecting = None;
                tracing::debug!(neighbor = %peer, %why, "bgp connect failed");
                self.input(peer, Input::TransportDown).await;
            }
            IoEvent::Incoming {
                stream,
                remote,
                local,
                tunnel,
            } => self.incoming(stream, remote, local, tunnel).await,
        }
    }

    /// The next-hop-self addresses toward a neighbor: the local end of its connection,
    /// plus the tunnel's other addresses for the other family.
    fn learn_local(&mut self, peer: IpAddr, local: IpAddr) {
        let tunnel_addrs: Vec<IpAddr> = match self.peers.get(&peer).map(|p| &p.via) {
            Some(Via::Tunnel { addresses, .. }) => addresses.iter().map(|n| n.ip()).collect(),
            _ => Vec::new(),
        };
        let addrs = setup::local_addrs_of(std::iter::once(local).chain(tunnel_addrs));
        if let Some(i) = self.instance.as_mut() {
            i.set_local_addrs(peer, addrs);
        }
    }

    async fn incoming(
        &mut self,
        stream: BoxStream,
        remote: SocketAddr,
        local: SocketAddr,
        tunnel: Option<TunnelId>,
    ) {
        let addr = match tunnel {
            Some(t) => scope::scoped(remote.ip(), t),
            None => remote.ip(),
        };
        let known = self
            .peers
            .get(&addr)
            .is_some_and(|p| match (&p.via, tunnel) {
                (Via::Tunnel { id, .. }, Some(t)) => *id == t,
                (Via::Kernel { .. }, None) => true,
                _ => false,
            });
        if !known {
            tracing::info!(%remote, "bgp connection from an unknown neighbor refused");
            return;
        }
        let state = self
            .instance
            .as_ref()
            .and_then(|i| i.state(addr))
            .unwrap_or(State::Idle);
        let id = self.next_id;
        self.next_id += 1;
        let conn = transport::drive(stream, addr, id, self.conn_tx.clone());
        let Some(p) = self.peers.get_mut(&addr) else {
            return;
        };
        match state {
            State::Established => {
                tracing::debug!(neighbor = %addr, "second connection while established: closed");
                close_gracefully(conn);
            }
            State::OpenSent | State::OpenConfirm if p.conn.is_some() => {
                // A collision: settle it when the peer's OPEN on the new connection tells
                // its identifier.
                if let Some(old) = p.pending.take() {
                    old.conn.abort();
                }
                p.pending = Some(Pending {
                    conn,
                    framer: Framer::new(),
                    buffered: Vec::new(),
                });
            }
            _ => {
                if let Some((_, task)) = p.connecting.take() {
                    task.abort();
                }
                if let Some(old) = p.conn.take() {
                    old.conn.abort();
                }
                p.conn = Some(Live {
                    conn,
                    outgoing: false,
                });
                self.learn_local(addr, local.ip());
                self.input(addr, Input::Accepted).await;
                // Refused (stopped): do not leave the peer hanging.
                let still_idle = self
                    .instance
                    .as_ref()
                    .and_then(|i| i.state(addr))
                    .is_none_or(|s| s == State::Idle);
                if still_idle {
                    if let Some(live) = self.peers.get_mut(&addr).and_then(|p| p.conn.take()) {
                        live.conn.abort();
                    }
                }
            }
        }
    }

    async fn conn_event(&mut self, e: ConnEvent) {
        let (peer, id) = match &e {
            ConnEvent::Data { peer, id, .. } | ConnEvent::Closed { peer, id, .. } => (*peer, *id),
        };
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        if p.pending.as_ref().is_some_and(|x| x.conn.id == id) {
            self.pending_event(peer, e).await;
            return;
        }
        if p.conn.as_ref().map(|l| l.conn.id) != Some(id) {
            return;
        }
        match e {
            ConnEvent::Data { bytes, .. } => self.input(peer, Input::Received(bytes)).await,
            ConnEvent::Closed { why, .. } => {
                tracing::debug!(neighbor = %peer, %why, "bgp connection closed");
                p.conn = None;
                self.input(peer, Input::TransportDown).await;
            }
        }
    }

    /// Bytes on a connection that collided with ours, until its OPEN arrives.
    async fn pending_event(&mut self, peer: IpAddr, e: ConnEvent) {
        let local_id = self.instance.as_ref().map(|i| i.config().router_id);
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let Some(pending) = p.pending.as_mut() else {
            return;
        };
        let bytes = match e {
            ConnEvent::Closed { .. } => {
                p.pending = None;
                return;
            }
            ConnEvent::Data { bytes, .. } => bytes,
        };
        pending.framer.push(&bytes);
        pending.buffered.extend_from_slice(&bytes);
        let open = match pending.framer.next_message() {
            None => return,
            Some(Ok(m)) => match Message::parse(&m, Default::default()) {
                Ok(Message::Open(o)) => o,
                _ => {
                    // Not an OPEN first: not a BGP speaker we can talk to on it.
                    if let Some(x) = p.pending.take() {
                        x.conn.abort();
                    }
                    return;
                }
            },
            Some(Err(_)) => {
                if let Some(x) = p.pending.take() {
                    x.conn.abort();
                }
                return;
            }
        };
        let Some(local_id) = local_id else { return };
        let state = self
            .instance
            .as_ref()
            .and_then(|i| i.state(peer))
            .unwrap_or(State::Idle);
        let ours_outgoing = p.conn.as_ref().is_some_and(|l| l.outgoing);
        // RFC 4271 6.8: the connection initiated by the higher identifier survives.
        let keep_existing = match state {
            State::Established => true,
            State::OpenSent | State::OpenConfirm if ours_outgoing => {
                resolve_collision(local_id, open.bgp_id) == CollisionWinner::Local
            }
            _ => false,
        };
        let Some(pending) = p.pending.take() else {
            return;
        };
        if keep_existing {
            tracing::debug!(neighbor = %peer, "bgp collision: keeping our connection");
            let n = super::message::Notification::new(6, 7);
            pending
                .conn
                .write(Message::Notification(n).emit(Default::default()));
            close_gracefully(pending.conn);
            return;
        }
        tracing::debug!(neighbor = %peer, "bgp collision: taking the peer's connection");
        if matches!(state, State::OpenSent | State::OpenConfirm) {
            self.input(peer, Input::CollisionDump).await;
        }
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        if let Some(old) = p.conn.take() {
            close_gracefully(old.conn);
        }
        p.conn = Some(Live {
            conn: pending.conn,
            outgoing: false,
        });
        self.input(peer, Input::Accepted).await;
        self.input(peer, Input::Received(pending.buffered)).await;
    }

    async fn tunnel_silent(&mut self, tunnel: &str) {
        let peers: Vec<IpAddr> = self
            .peers
            .iter()
            .filter(|(_, p)| matches!(&p.via, Via::Tunnel { name, .. } if name == tunnel))
            .map(|(a, _)| *a)
            .collect();
        for addr in peers {
            tracing::info!(%tunnel, neighbor = %addr, "bgp: tunnel peer silent, session down");
            self.input(addr, Input::PeerSilent).await;
        }
    }

    /// The tunnel works again: sessions waiting out their idle hold start at once.
    async fn tunnel_alive(&mut self, tunnel: &str) {
        let peers: Vec<IpAddr> = self
            .peers
            .iter()
            .filter(|(_, p)| matches!(&p.via, Via::Tunnel { name, .. } if name == tunnel))
            .filter(|(_, p)| p.state == State::Idle)
            .map(|(a, _)| *a)
            .collect();
        for addr in peers {
            self.timers.remove(&(addr, Timer::IdleHold));
            self.input(addr, Input::TimerExpired(Timer::IdleHold)).await;
        }
    }

    /// The RIB changed: next hops may resolve differently, redistributed routes may
    /// have come or gone.
    async fn routes_changed(&mut self) {
        let started = Instant::now();
        self.update_originated().await;
        let r = self.resolver();
        if let Some(i) = self.instance.as_mut() {
            let out = i.resolution_changed(&|p: &PeerInfo, nh| r.resolve(p, nh));
            drop(r);
            self.act(out).await;
        }
        tracing::debug!(
            elapsed_us = started.elapsed().as_micros() as u64,
            "bgp: next hops and originated routes re-read"
        );
    }

    async fn update_originated(&mut self) {
        let config = self.router.config().await;
        let Some(bgp) = &config.bgp else { return };
        if !self.others_known {
            // At start and after missed events: the whole RIB once; events keep it.
            self.others = self
                .router
                .best_routes_except(RouteSource::Bgp { ebgp: true })
                .await
                .into_iter()
                .map(|(prefix, source, metric)| (prefix, (source, metric)))
                .collect();
            self.others_known = true;
        }
        self.resolver.igp = Arc::new(self.others.iter().map(|(p, (_, m))| (*p, *m)).collect());
        let mut originated = setup::originated_networks(bgp);
        if !bgp.redistribute.is_empty() {
            for (prefix, (source, _)) in &self.others {
                let wanted = bgp.redistribute.iter().any(|w| {
                    matches!(
                        (w, *source),
                        (BgpRedistribute::Connected, "connected")
                            | (BgpRedistribute::Static, "static")
                            | (BgpRedistribute::Ospf, "ospf")
                    )
                });
                if wanted {
                    originated.entry(*prefix).or_insert_with(|| PathAttrs {
                        // Learned from another protocol (RFC 4271 5.1.1).
                        origin: Some(Origin::Incomplete),
                        as_path: Some(AsPath::default()),
                        ..PathAttrs::default()
                    });
                }
            }
        }
        for (p, a) in &self.api_routes {
            originated.insert(*p, a.clone());
        }
        let r = self.resolver();
        if let Some(i) = self.instance.as_mut() {
            let out = i.set_originated(originated, &|p: &PeerInfo, nh| r.resolve(p, nh));
            drop(r);
            self.act(out).await;
        }
    }

    async fn request(&mut self, r: Request) {
        match r {
            Request::Paths {
                table,
                prefix,
                reply,
            } => {
                let _ = reply.send(self.paths(table, prefix));
            }
            Request::Announce {
                prefix,
                mut attrs,
                reply,
            } => {
                if self.instance.is_none() {
                    let _ = reply.send(Err(BgpError::NotRunning));
                    return;
                }
                attrs.origin.get_or_insert(Origin::Igp);
                attrs.as_path.get_or_insert_with(AsPath::default);
                attrs.next_hop = None;
                attrs.mp_reach = None;
                attrs.mp_unreach = None;
                self.api_routes.insert(prefix, *attrs);
                self.update_originated().await;
                let _ = reply.send(Ok(()));
            }
            Request::Withdraw { prefix, reply } => {
                if self.instance.is_none() {
                    let _ = reply.send(Err(BgpError::NotRunning));
                    return;
                }
                if self.api_routes.remove(&prefix).is_none() {
                    let _ = reply.send(Err(BgpError::NotAnnounced(prefix)));
                    return;
                }
                self.update_originated().await;
                let _ = reply.send(Ok(()));
            }
            Request::SoftReset {
                neighbor,
                inbound,
                outbound,
                reply,
            } => {
                let addrs: Vec<IpAddr> = match neighbor.map(|a| self.neighbor_key(a)) {
                    Some(Err(e)) => {
                        let _ = reply.send(Err(e));
                        return;
                    }
                    Some(Ok(a)) => vec![a],
                    None => self.peers.keys().copied().collect(),
                };
                let r = self.resolver();
                let Some(i) = self.instance.as_mut() else {
                    let _ = reply.send(Err(BgpError::NotRunning));
                    return;
                };
                let mut out = Vec::new();
                for a in addrs {
                    out.extend(
                        i.soft_reset(a, inbound, outbound, &|p: &PeerInfo, nh| r.resolve(p, nh)),
                    );
                }
                drop(r);
                self.act(out).await;
                let _ = reply.send(Ok(()));
            }
            Request::Restart { neighbor, reply } => {
                if self.instance.is_none() {
                    let _ = reply.send(Err(BgpError::NotRunning));
                    return;
                }
                let neighbor = match self.neighbor_key(neighbor) {
                    Ok(k) => k,
                    Err(e) => {
                        let _ = reply.send(Err(e));
                        return;
                    }
                };
                self.input(neighbor, Input::Stop).await;
                self.input(neighbor, Input::Start).await;
                let _ = reply.send(Ok(()));
            }
        }
    }

    /// The key of the neighbor a request names: its key, or its address when only one
    /// neighbor has that address (a link-local one on several tunnels needs its tunnel).
    fn neighbor_key(&self, a: IpAddr) -> Result<IpAddr, BgpError> {
        if self.peers.contains_key(&a) {
            return Ok(a);
        }
        let mut same = self.peers.keys().filter(|k| scope::unscoped(**k) == a);
        match (same.next(), same.next()) {
            (Some(k), None) => Ok(*k),
            (Some(_), Some(_)) => Err(BgpError::AmbiguousNeighbor(a)),
            _ => Err(BgpError::NoSuchNeighbor(a)),
        }
    }

    /// A neighbor as logs show it: `fe80::1%to-r2` for a link-local one.
    fn show(&self, key: IpAddr) -> String {
        let tunnels = self.router.path().tunnels.load();
        scope::describe(key, |id| tunnels.get(id).map(|t| t.name.clone()))
    }

    fn paths(&self, table: Table, prefix: Option<IpNetwork>) -> Result<Vec<PathInfo>, BgpError> {
        let i = self.instance.as_ref().ok_or(BgpError::NotRunning)?;
        let wanted = |p: &IpNetwork| prefix.is_none_or(|x| x == *p);
        let r = self.resolver();
        let resolve = |p: &PeerInfo, nh| r.resolve(p, nh);
        let mut out = Vec::new();
        match table {
            Table::AdjIn(addr) => {
                let addr = self.neighbor_key(addr)?;
                i.neighbor(addr).ok_or(BgpError::NoSuchNeighbor(addr))?;
                if let Some(t) = i.decision().adj_rib_in(addr) {
                    for (p, path) in t.iter().filter(|(p, _)| wanted(p)) {
                        out.push(PathInfo {
                            prefix: p,
                            peer: Some(addr),
                            next_hop: Some(path.next_hop),
                            attrs: (*path.attrs).clone(),
                            best: false,
                        });
                    }
                }
            }
            Table::AdjInPre(addr) => {
                let addr = self.neighbor_key(addr)?;
                let n = i.neighbor(addr).ok_or(BgpError::NoSuchNeighbor(addr))?;
                let t = n.adj_rib_in_pre.ok_or(BgpError::NotKept(addr))?;
                for (p, r) in t.iter().filter(|(p, _)| wanted(p)) {
                    let mut attrs = (*r.attrs).clone();
                    if !r.mp {
                        attrs.mp_reach = None;
                    }
                    out.push(PathInfo {
                        prefix: *p,
                        peer: Some(addr),
                        next_hop: r.next_hop(),
                        attrs,
                        best: false,
                    });
                }
            }
            Table::AdjOut(addr) => {
                let addr = self.neighbor_key(addr)?;
                let n = i.neighbor(addr).ok_or(BgpError::NoSuchNeighbor(addr))?;
                for (p, e) in n.adj_rib_out.iter().filter(|(p, _)| wanted(p)) {
                    out.push(PathInfo {
                        prefix: *p,
                        peer: Some(addr),
                        next_hop: mp_next_hop_ip(&e.next_hop),
                        attrs: e.attrs.clone(),
                        best: true,
                    });
                }
            }
            Table::LocRib => {
                let best: BTreeMap<IpNetwork, IpAddr> = i
                    .decision()
                    .best_paths(&resolve)
                    .into_iter()
                    .map(|(p, peer, _)| (p, peer.addr))
                    .collect();
                for (p, attrs) in i.config().originated.iter().filter(|(p, _)| wanted(p)) {
                    out.push(PathInfo {
                        prefix: *p,
                        peer: None,
                        next_hop: None,
                        attrs: attrs.clone(),
                        best: true,
                    });
                }
                for n in i.neighbors() {
                    let addr = n.config.addr;
                    let Some(t) = i.decision().adj_rib_in(addr) else {
                        continue;
                    };
                    for (p, path) in t.iter().filter(|(p, _)| wanted(p)) {
                        out.push(PathInfo {
                            prefix: p,
                            peer: Some(addr),
                            next_hop: Some(path.next_hop),
                            attrs: (*path.attrs).clone(),
                            best: best.get(&p) == Some(&addr),
                        });
                    }
                }
                out.sort_by(|a, b| a.prefix.cmp(&b.prefix).then(b.best.cmp(&a.best)));
            }
        }
        Ok(out)
    }

    fn publish(&self) {
        let Some(i) = &self.instance else {
            self.status.send_replace(BgpStatus {
                listen_errors: self.listen_errors.clone(),
                ..BgpStatus::default()
            });
            return;
        };
        let tunnels = self.router.path().tunnels.load();
        let neighbors = self
            .peers
            .iter()
            .filter_map(|(addr, p)| {
                let n = i.neighbor(*addr)?;
                let c = &n.session.counters;
                Some(NeighborStatus {
                    address: scope::unscoped(*addr),
                    key: *addr,
                    tunnel: p.cfg.tunnel.clone(),
                    description: p.cfg.description.clone(),
                    local_as: n.config.session.local_as,
                    remote_as: n.config.session.peer_as,
                    state: n.session.state(),
                    since: p.since,
                    passive: n.config.session.passive,
                    messages_in: c.messages_in,
                    messages_out: c.messages_out,
                    updates_in: c.updates_in,
                    established_transitions: c.established_transitions,
                    last_error: c.last_error.as_ref().map(describe_down),
                    negotiated: n.session.negotiated().cloned(),
                    prefixes_received: i.decision().adj_rib_in(*addr).map_or(0, |t| t.len()),
                    prefixes_advertised: n.adj_rib_out.len(),
                    prefixes_kept: n.adj_rib_in_pre.map(|t| t.len()),
                    fast_failover: match &p.via {
                        Via::Kernel { .. } => FastFailover::Off,
                        Via::Tunnel { id, .. } => tunnels
                            .get(*id)
                            .map_or(FastFailover::Off, |t| t.fast_failover()),
                    },
                })
            })
            .collect();
        let cfg = i.config();
        self.status.send_replace(BgpStatus {
            running: true,
            asn: cfg.local_as,
            router_id: Some(cfg.router_id),
            neighbors,
            routes: i.routes().len(),
            originated: cfg.originated.len(),
            listen_errors: self.listen_errors.clone(),
        });
    }

    /// Re-reads the router's config and tunnels; starts, changes or stops the speaker.
    async fn reconfigure(&mut self) {
        let config = self.router.config().await;
        let wanted = built_from(&config, &self.router);
        if wanted == self.built {
            return;
        }
        let Some(wanted) = wanted else {
            tracing::info!("bgp stopping");
            self.stop_all().await;
            self.built = None;
            self.publish();
            return;
        };
        let restart = self.built.as_ref().is_none_or(|b| {
            b.asn != wanted.asn
                || b.router_id != wanted.router_id
                || b.decision != wanted.decision
                || b.graceful_restart != wanted.graceful_restart
        });
        if restart {
            self.stop_all().await;
            let bgp = config.bgp.as_ref().expect("built from [bgp]");
            tracing::info!(asn = bgp.asn, router_id = %wanted.router_id, neighbors = wanted.neighbors.len(), "bgp starting");
            self.instance = Some(Instance::new(InstanceConfig {
                local_as: bgp.asn,
                router_id: wanted.router_id,
                decision: setup::decision_config(bgp),
                originated: BTreeMap::new(),
                neighbors: Vec::new(),
            }));
            self.built = Some(Built {
                neighbors: BTreeMap::new(),
                ..wanted.clone()
            });
        }
        self.sync_neighbors(&config, &wanted).await;
        if let Some(i) = self.instance.as_mut() {
            let retry = Duration::from_secs(wanted.connect_retry.into());
            for addr in self.peers.keys() {
                i.set_connect_retry(*addr, retry);
            }
        }
        self.built = Some(wanted);
        self.peer_tunnels_changed();
        self.sync_liveness();
        self.sync_listeners();
        self.update_originated().await;
        self.publish();
    }

    /// Adds, removes and changes neighbors to match `wanted`.
    async fn sync_neighbors(&mut self, config: &Config, wanted: &Built) {
        let old = self
            .built
            .as_ref()
            .map(|b| b.neighbors.clone())
            .unwrap_or_default();
        let policies_changed = self
            .built
            .as_ref()
            .is_none_or(|b| b.policies != wanted.policies);
        let r = self.resolver();
        let resolve = |p: &PeerInfo, nh| r.resolve(p, nh);
        // Gone, or changed in what the session depends on: remove.
        for (addr, (c, via)) in &old {
            let keep = wanted
                .neighbors
                .get(addr)
                .is_some_and(|(nc, nv)| nv == via && session_part(nc) == session_part(c));
            if !keep {
                let out = self
                    .instance
                    .as_mut()
                    .map(|i| i.remove_neighbor(*addr, &resolve))
                    .unwrap_or_default();
                self.act(out).await;
                self.drop_peer(*addr);
            }
        }
        for (addr, (c, via)) in &wanted.neighbors {
            let Some(mut nc) = setup::neighbor_config(config, c) else {
                continue;
            };
            nc.addr = *addr;
            if self.peers.contains_key(addr) {
                // Same session; policies or next-hop-self may differ.
                let changed = old.get(addr).is_none_or(|(oc, _)| oc != c);
                if changed || policies_changed {
                    let out = self
                        .instance
                        .as_mut()
                        .map(|i| {
                            // No output: set_neighbor_policy's soft reset inbound
                            // fills a table turned on now (route refresh).
                            i.set_keep_received_routes(*addr, nc.keep_received_routes);
                            i.set_neighbor_policy(
                                *addr,
                                nc.import,
                                nc.export,
                                nc.allow_without_policy,
                                nc.next_hop_self,
                                &resolve,
                            )
                        })
                        .unwrap_or_default();
                    if let Some(p) = self.peers.get_mut(addr) {
                        p.cfg = c.clone();
                    }
                    self.act(out).await;
                }
                continue;
            }
            if let Some(i) = self.instance.as_mut() {
                i.add_neighbor(nc);
            }
            self.peers.insert(
                *addr,
                Peer {
                    cfg: c.clone(),
                    via: via.clone(),
                    conn: None,
                    connecting: None,
                    pending: None,
                    state: State::Idle,
                    since: Instant::now(),
                },
            );
            self.input(*addr, Input::Start).await;
        }
    }

    fn drop_peer(&mut self, addr: IpAddr) {
        if let Some(p) = self.peers.remove(&addr) {
            if let Some((_, t)) = p.connecting {
                t.abort();
            }
            if let Some(l) = p.conn {
                close_gracefully(l.conn);
            }
            if let Some(x) = p.pending {
                x.conn.abort();
            }
        }
        self.timers.retain(|(a, _), _| *a != addr);
    }

    fn peer_tunnels_changed(&mut self) {
        self.resolver.kernel_peers = Arc::new(
            self.peers
                .iter()
                .filter(|(_, p)| matches!(p.via, Via::Kernel { .. }))
                .map(|(a, _)| *a)
                .collect(),
        );
        self.resolver.peer_tunnels = Arc::new(
            self.peers
                .iter()
                .filter_map(|(a, p)| match &p.via {
                    Via::Tunnel { id, .. } => Some((*a, *id)),
                    Via::Kernel { .. } => None,
                })
                .collect(),
        );
    }

    fn sync_liveness(&mut self) {
        let wanted: BTreeSet<TunnelId> = self
            .peers
            .values()
            .filter_map(|p| match &p.via {
                Via::Tunnel { id, .. } => Some(*id),
                Via::Kernel { .. } => None,
            })
            .collect();
        let tunnels = self.router.path().tunnels.load();
        for id in self.liveness.difference(&wanted) {
            if let Some(t) = tunnels.get(*id) {
                t.request_liveness(LivenessUser::Bgp, None);
            }
        }
        for id in &wanted {
            if let Some(t) = tunnels.get(*id) {
                t.request_liveness(LivenessUser::Bgp, Some(DEFAULT_LIVENESS));
            }
        }
        self.liveness = wanted;
    }

    /// Listeners: the userspace stack on port 179 when a neighbor is across a tunnel,
    /// kernel sockets (with every password neighbor's MD5 key) for the others.
    fn sync_listeners(&mut self) {
        let any_tunnel = self
            .peers
            .values()
            .any(|p| matches!(p.via, Via::Tunnel { .. }));
        let kernel: Vec<(IpAddr, Option<Vec<u8>>)> = self
            .peers
            .iter()
            .filter_map(|(a, p)| match &p.via {
                Via::Kernel { opts, .. } => Some((*a, opts.md5_key.clone())),
                Via::Tunnel { .. } => None,
            })
            .collect();
        let kernel = (!kernel.is_empty()).then_some(kernel);
        if any_tunnel == self.tunnel_listening && kernel == self.kernel_listen {
            return;
        }
        for l in self.listeners.drain(..) {
            l.abort();
        }
        self.listen_errors.clear();
        self.tunnel_listening = false;
        if any_tunnel {
            match self.stack.listen(BGP_PORT) {
                Ok(mut listener) => {
                    let tx = self.io_tx.clone();
                    let task = tokio::spawn(async move {
                        while let Ok((stream, accepted)) = listener.accept().await {
                            let e = IoEvent::Incoming {
                                stream: Box::new(stream),
                                remote: accepted.remote,
                                local: accepted.local,
                                tunnel: Some(accepted.tunnel),
                            };
                            if tx.send(e).await.is_err() {
                                break;
                            }
                        }
                    });
                    self.listeners.push(task.abort_handle());
                    self.tunnel_listening = true;
                }
                Err(e) => self
                    .listen_errors
                    .push(format!("tunnel port {BGP_PORT}: {e}")),
            }
        }
        if let Some(keys) = &kernel {
            for v6 in [false, true] {
                match self.kernel_listener(v6, keys) {
                    Ok(handle) => self.listeners.push(handle),
                    Err(e) => {
                        let family = if v6 { "IPv6" } else { "IPv4" };
                        tracing::warn!(error = %e, "bgp: cannot listen on {family} port {BGP_PORT}; connecting only");
                        self.listen_errors
                            .push(format!("kernel {family} port {BGP_PORT}: {e}"));
                    }
                }
            }
        }
        self.kernel_listen = kernel;
    }

    fn kernel_listener(
        &self,
        v6: bool,
        keys: &[(IpAddr, Option<Vec<u8>>)],
    ) -> std::io::Result<AbortHandle> {
        let listener = transport::listen_kernel(v6, BGP_PORT)?;
        for (addr, key) in keys {
            if let Some(key) = key {
                if addr.is_ipv6() == v6 {
                    transport::set_md5_key(&listener, *addr, key)?;
                }
            }
        }
        let ttl: HashMap<IpAddr, bool> = self
            .peers
            .iter()
            .filter_map(|(a, p)| match &p.via {
                Via::Kernel { opts, .. } => Some((*a, opts.ttl_security)),
                _ => None,
            })
            .collect();
        let tx = self.io_tx.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, remote)) = listener.accept().await {
                let remote = SocketAddr::new(canonical(remote.ip()), remote.port());
                if ttl.get(&remote.ip()).copied().unwrap_or(false) {
                    if let Err(e) = transport::set_ttl_security(&stream, v6) {
                        tracing::warn!(error = %e, "bgp: GTSM on an accepted socket");
                    }
                }
                let _ = stream.set_nodelay(true);
                let Ok(local) = stream.local_addr() else {
                    continue;
                };
                let e = IoEvent::Incoming {
                    stream: Box::new(stream),
                    remote,
                    local,
                    tunnel: None,
                };
                if tx.send(e).await.is_err() {
                    break;
                }
            }
        });
        Ok(task.abort_handle())
    }

    /// Closes every session with a Cease and withdraws BGP's routes.
    async fn stop_all(&mut self) {
        let addrs: Vec<IpAddr> = self.peers.keys().copied().collect();
        for a in &addrs {
            self.input(*a, Input::Stop).await;
        }
        for a in addrs {
            self.drop_peer(a);
        }
        for l in self.listeners.drain(..) {
            l.abort();
        }
        self.tunnel_listening = false;
        self.kernel_listen = None;
        let tunnels = self.router.path().tunnels.load();
        for id in std::mem::take(&mut self.liveness) {
            if let Some(t) = tunnels.get(id) {
                t.request_liveness(LivenessUser::Bgp, None);
            }
        }
        // Normally withdrawn by the stops above; whatever is left goes now.
        let installed = self.instance.take().is_some_and(|i| !i.routes().is_empty());
        self.timers.clear();
        // Queued deltas first: none may land after the removal.
        self.installer.flush().await;
        if installed {
            self.router
                .replace_protocol_routes(RouteSource::Bgp { ebgp: true }, vec![])
                .await;
        }
    }
}

/// A connection we are done with: what was queued (a NOTIFICATION) is written, then it
/// closes; a peer that stops reading does not keep it open past the grace period.
fn close_gracefully(conn: Connection) {
    let stop = conn.stop_token();
    drop(conn);
    tokio::spawn(async move {
        tokio::time::sleep(CLOSE_GRACE).await;
        stop.cancel();
    });
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn mp_next_hop_ip(nh: &super::attr::MpNextHop) -> Option<IpAddr> {
    match nh {
        super::attr::MpNextHop::V4(a) => Some(IpAddr::V4(*a)),
        super::attr::MpNextHop::V6 { global, link_local } => {
            if global.is_unspecified() {
                link_local.map(IpAddr::V6)
            } else {
                Some(IpAddr::V6(*global))
            }
        }
    }
}

/// What a session depends on: a change here restarts it (policies and next-hop-self
/// change without a restart).
fn session_part(c: &BgpNeighborConfig) -> BgpNeighborConfig {
    BgpNeighborConfig {
        import: None,
        export: None,
        allow_without_policy: false,
        next_hop_self: false,
        keep_received_routes: false,
        description: None,
        ..c.clone()
    }
}

/// The speaker's view of the config: None without `[bgp]`.
fn built_from(config: &Config, router: &Router) -> Option<Built> {
    let bgp = config.bgp.as_ref()?;
    let tunnels = router.path().tunnels.load();
    let mut neighbors = BTreeMap::new();
    for n in &bgp.neighbors {
        let Some(addr) = setup::peer_address(config, n) else {
            continue;
        };
        let via = match &n.tunnel {
            Some(name) => {
                let Some(t) = tunnels.by_name(name) else {
                    continue;
                };
                let Some(tc) = config.tunnel(name) else {
                    continue;
                };
                let local = local_address_for(&tc.addresses, addr);
                let Some(local) = local else {
                    tracing::warn!(tunnel = %name, neighbor = %addr, "bgp: the tunnel has no address of the neighbor's family");
                    continue;
                };
                Via::Tunnel {
                    id: t.id,
                    name: name.clone(),
                    local,
                    addresses: tc.addresses.clone(),
                }
            }
            None => Via::Kernel {
                port: n.port,
                local: n.local_address,
                opts: KernelOptions {
                    md5_key: n.password.as_ref().map(|p| p.key.0.clone()),
                    ttl_security: n.ttl_security,
                },
            },
        };
        // A link-local address is a neighbor only together with its tunnel.
        let key = match &via {
            Via::Tunnel { id, .. } => scope::scoped(addr, *id),
            Via::Kernel { .. } => addr,
        };
        // The hold time the session offers, global or its own: a change of either
        // restarts the session (it is negotiated in the OPEN).
        let mut n = n.clone();
        n.hold_time = Some(n.hold_time.unwrap_or(bgp.hold_time));
        neighbors.insert(key, (n, via));
    }
    Some(Built {
        asn: bgp.asn,
        router_id: bgp.router_id,
        decision: (bgp.max_paths, bgp.multipath_relax),
        graceful_restart: bgp.graceful_restart,
        neighbors,
        policies: config.policies.clone(),
        originate: (bgp.networks.clone(), bgp.redistribute.clone()),
        connect_retry: bgp.connect_retry,
    })
}

/// The tunnel address a session to `peer` uses: same family, link-local for a
/// link-local peer, otherwise the one whose subnet holds the peer, else the first.
fn local_address_for(addresses: &[IpNetwork], peer: IpAddr) -> Option<IpAddr> {
    let same_family = addresses.iter().filter(|a| a.is_ipv4() == peer.is_ipv4());
    let link_local = |ip: IpAddr| matches!(ip, IpAddr::V6(v6) if v6.is_unicast_link_local());
    let candidates: Vec<&IpNetwork> = same_family
        .filter(|a| link_local(a.ip()) == link_local(peer))
        .collect();
    candidates
        .iter()
        .find(|a| a.contains(peer))
        .or(candidates.first())
        .map(|a| a.ip())
}

fn describe_down(r: &DownReason) -> String {
    match r {
        DownReason::AdminStop => "administratively stopped".into(),
        DownReason::HoldTimerExpired => "hold timer expired".into(),
        DownReason::NotificationReceived(n) => {
            format!("notification received: {}", describe_notification(n))
        }
        DownReason::NotificationSent(n) => {
            format!("notification sent: {}", describe_notification(n))
        }
        DownReason::TransportFailed => "connection failed or closed".into(),
        DownReason::PeerSilent => "tunnel peer silent".into(),
        DownReason::PrefixLimit => "prefix limit exceeded".into(),
        DownReason::Collision => "connection collision".into(),
    }
}

fn describe_notification(n: &super::message::Notification) -> String {
    let code = match n.code {
        1 => "message header error",
        2 => "OPEN message error",
        3 => "UPDATE message error",
        4 => "hold timer expired",
        5 => "finite state machine error",
        6 => "cease",
        7 => "route-refresh message error",
        _ => "unknown",
    };
    format!("{code} ({}/{})", n.code, n.subcode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    #[test]
    fn local_address_follows_family_scope_and_subnet() {
        let addrs: Vec<IpNetwork> = vec![
            "10.0.0.0/31".parse().unwrap(),
            "10.9.0.1/24".parse().unwrap(),
            "fe80::1/64".parse().unwrap(),
            "2001:db8::/127".parse().unwrap(),
        ];
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            local_address_for(&addrs, ip("10.9.0.2")),
            Some(ip("10.9.0.1"))
        );
        assert_eq!(
            local_address_for(&addrs, ip("10.0.0.1")),
            Some(ip("10.0.0.0"))
        );
        assert_eq!(
            local_address_for(&addrs, ip("fe80::2")),
            Some(ip("fe80::1"))
        );
        assert_eq!(
            local_address_for(&addrs, ip("2001:db8::1")),
            Some(ip("2001:db8::"))
        );
        assert_eq!(local_address_for(&addrs[..2], ip("2001:db8::1")), None);
    }

    #[test]
    fn v4_mapped_peers_are_plain_ipv4() {
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(canonical(mapped), "192.0.2.1".parse::<IpAddr>().unwrap());
        let v6: IpAddr = Ipv6Addr::LOCALHOST.into();
        assert_eq!(canonical(v6), v6);
    }
}
