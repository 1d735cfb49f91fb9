//! One OSPFv2 instance (point-to-point interfaces in one or several areas), as a
//! deterministic machine:
//! [`Instance::handle`] takes an input (a received packet, a timer tick, a silent peer, a
//! new configuration) and the current time, and returns outputs (packets to send, the
//! new route set, neighbor state changes). No sockets, no clock, no tasks: `io` runs it.
//!
//! RFC 2328: receiving (8.2), hellos (9.5, 10.5), database exchange (10.6, 10.8),
//! requests (10.7, 10.9), flooding (13, 13.3, 13.5, 13.7), origination and refresh
//! (12.4, 12.4.1 for router-LSAs on point-to-point links, 12.4.4 for AS-external-LSAs),
//! self-originated LSAs received back (13.4), aging and MaxAge removal (14), SPF (16).
//! Cryptographic authentication (D.4.3, RFC 5709) per interface, with the replay check
//! per neighbor. Several areas (3): one LSDB per area plus the AS-wide one for type 5,
//! an interface in one area, an area border router originating summaries (12.4.3, see
//! [`super::abr`]), stub areas (3.6: E option clear, no type 5, a default summary).
//! Not yet: LAN interfaces (DR election, network-LSAs), virtual links, area ranges,
//! sequence number wrap (the LSA is flushed and waits).

use super::abr::{self, AreaSettings, Summaries, BACKBONE};
use super::auth::AuthKey;
use super::lsa::{
    ExternalLsa, LinkKind, LsType, Lsa, LsaBody, LsaHeader, LsaKey, RouterLink, RouterLsa,
    SummaryLsa, FLAG_B, FLAG_E, INITIAL_SEQUENCE, LS_REFRESH_TIME, MAX_AGE, MAX_SEQUENCE,
};
use super::lsdb::Lsdb;
use super::neighbor::{self, Action, Event, Neighbor, State};
use super::packet::{
    Auth, Body, DbDesc, Hello, LsRequest, PacketRepr, ALL_D_ROUTERS, ALL_SPF_ROUTERS, DD_INIT,
    DD_MASTER, DD_MORE, OPT_E,
};
use super::spf::{self, Adjacency, AreaInput, Route, Throttle};
use crate::dataplane::TunnelId;
use ipnetwork::Ipv4Network;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// IP (20) plus OSPF (24) header bytes, subtracted from the MTU to size bodies.
const HEADERS: usize = 44;

/// A point-to-point OSPF interface over one tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceConfig {
    pub tunnel: TunnelId,
    pub name: String,
    /// The area the interface belongs to.
    pub area: Ipv4Addr,
    /// The tunnel's IPv4 address, if numbered (advertised as a stub network).
    pub address: Option<Ipv4Network>,
    pub cost: u16,
    pub hello: u16,
    pub dead: u32,
    pub retransmit: Duration,
    pub mtu: u16,
    /// Cryptographic authentication; None: null authentication.
    pub auth: Option<AuthKey>,
}

/// An AS-external route to originate (redistribution).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct External {
    pub prefix: Ipv4Network,
    pub metric: u32,
    pub e2: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timers {
    pub spf_delay: Duration,
    pub spf_hold: Duration,
    pub spf_max_hold: Duration,
    /// Between two originations of the same LSA (RFC 2328 MinLSInterval).
    pub min_ls_interval: Duration,
    /// Between accepting two instances of the same LSA from flooding (MinLSArrival).
    pub min_ls_arrival: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            spf_delay: Duration::from_millis(5),
            spf_hold: Duration::from_millis(50),
            spf_max_hold: Duration::from_secs(5),
            min_ls_interval: Duration::from_millis(200),
            min_ls_arrival: Duration::from_millis(100),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceConfig {
    pub router_id: Ipv4Addr,
    /// The area of a router without interfaces (its stubs still make a router-LSA).
    pub area: Ipv4Addr,
    /// Settings of areas that are not plain (stub); an area not listed is a normal one.
    pub areas: BTreeMap<Ipv4Addr, AreaSettings>,
    pub interfaces: Vec<InterfaceConfig>,
    /// Prefixes of the router itself (its id, host addresses, routes to the host)
    /// advertised as stub links with a cost.
    pub stubs: Vec<(Ipv4Network, u16)>,
    pub externals: Vec<External>,
    pub timers: Timers,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// An OSPF packet (IP payload) received on a tunnel.
    Packet {
        tunnel: TunnelId,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        bytes: Vec<u8>,
    },
    /// Time passed: fire whatever timers are due.
    Timer,
    /// The tunnel says its peer went silent: the adjacency dies at once.
    PeerSilent(TunnelId),
    Configure(InstanceConfig),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// An OSPF packet (without IP header) to send on a tunnel to `dst`.
    Send {
        tunnel: TunnelId,
        dst: Ipv4Addr,
        packet: Vec<u8>,
    },
    /// The complete set of OSPF routes after an SPF run.
    Routes(Vec<Route>),
    NeighborChanged {
        tunnel: TunnelId,
        router_id: Ipv4Addr,
        from: State,
        to: State,
    },
}

#[derive(Debug, Clone)]
struct Interface {
    cfg: InterfaceConfig,
    neighbor: Option<Neighbor>,
    hello_due: Instant,
    /// The highest cryptographic sequence number accepted from the neighbor (router id).
    rx_seq: Option<(Ipv4Addr, u32)>,
}

impl Interface {
    fn link_data(&self) -> Ipv4Addr {
        match self.cfg.address {
            Some(a) => a.ip(),
            None => Ipv4Addr::from(self.cfg.tunnel.0),
        }
    }
    fn max_body(&self) -> usize {
        let digest = self
            .cfg
            .auth
            .as_ref()
            .map_or(0, |k| k.algorithm.digest_len());
        usize::from(self.cfg.mtu)
            .saturating_sub(HEADERS + digest)
            .max(64)
    }
}

/// Where an LSA lives and floods (RFC 2328 12.1, A.4.1): one area, or the whole AS
/// (type 5, every area but the stub ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    Area(Ipv4Addr),
    As,
}

impl Scope {
    /// The scope of an LSA of `ls_type` received or sent in `area`.
    pub fn of(area: Ipv4Addr, ls_type: LsType) -> Scope {
        match ls_type {
            LsType::AsExternal => Scope::As,
            _ => Scope::Area(area),
        }
    }
}

/// An LSA key with its scope: the same key may exist in several areas (our router-LSA,
/// summaries).
pub type ScopedKey = (Scope, LsaKey);

/// One attached area: its settings, database and the summaries we want in it.
#[derive(Debug, Clone, Default)]
struct Area {
    settings: AreaSettings,
    lsdb: Lsdb,
    summaries: Summaries,
}

pub struct Instance {
    cfg: InstanceConfig,
    ifaces: BTreeMap<TunnelId, Interface>,
    areas: BTreeMap<Ipv4Addr, Area>,
    /// AS-external-LSAs (type 5), shared by the non-stub areas.
    external: Lsdb,
    throttle: Throttle,
    /// Sequence numbers we originated this run, by key.
    mine: BTreeMap<ScopedKey, i32>,
    /// Own LSAs that must be re-originated even if unchanged (seen newer from flooding).
    force: BTreeSet<ScopedKey>,
    originate_due: Option<Instant>,
    last_originated: Option<Instant>,
    next_age_check: Instant,
    /// MaxAge LSAs already flooded, waiting for acks before removal.
    flushing: BTreeSet<ScopedKey>,
    /// LSAs to put in updates per tunnel at the end of this step.
    flood_queue: BTreeMap<TunnelId, BTreeSet<LsaKey>>,
    routes: Vec<Route>,
    dd_seed: u32,
    counters: BTreeMap<&'static str, u64>,
    out: Vec<Output>,
    /// The time of the input being handled, and the cryptographic sequence number base
    /// (seconds, from the wall clock at start; io sets it) at `started`.
    now: Instant,
    started: Instant,
    crypto_seq_base: u32,
}

impl Instance {
    pub fn new(cfg: InstanceConfig, now: Instant) -> Instance {
        let t = &cfg.timers;
        let mut i = Instance {
            throttle: Throttle::new(t.spf_delay, t.spf_hold, t.spf_max_hold),
            dd_seed: u32::from(cfg.router_id).rotate_left(16) | 1,
            cfg: InstanceConfig {
                interfaces: vec![],
                ..cfg.clone()
            },
            ifaces: BTreeMap::new(),
            areas: BTreeMap::new(),
            external: Lsdb::default(),
            mine: BTreeMap::new(),
            force: BTreeSet::new(),
            originate_due: None,
            last_originated: None,
            next_age_check: now,
            flushing: BTreeSet::new(),
            flood_queue: BTreeMap::new(),
            routes: vec![],
            counters: BTreeMap::new(),
            out: vec![],
            now,
            started: now,
            crypto_seq_base: 0,
        };
        i.configure(cfg, now);
        i.out.clear();
        i
    }

    pub fn router_id(&self) -> Ipv4Addr {
        self.cfg.router_id
    }

    /// Sets the cryptographic sequence number sent now; it then grows by one a second.
    /// io passes the wall clock's seconds so that a restart does not go backwards.
    pub fn set_crypto_seq(&mut self, seq: u32) {
        self.crypto_seq_base = seq;
        self.started = self.now;
    }

    fn crypto_seq(&self) -> u32 {
        let secs = self.now.saturating_duration_since(self.started).as_secs();
        self.crypto_seq_base
            .wrapping_add(u32::try_from(secs).unwrap_or(u32::MAX))
    }

    /// Every database: one per attached area, and the AS-wide one.
    pub fn lsdbs(&self) -> impl Iterator<Item = (Scope, &Lsdb)> {
        self.areas
            .iter()
            .map(|(id, a)| (Scope::Area(*id), &a.lsdb))
            .chain(std::iter::once((Scope::As, &self.external)))
    }

    /// The database of `scope`, if attached.
    pub fn lsdb(&self, scope: Scope) -> Option<&Lsdb> {
        match scope {
            Scope::As => Some(&self.external),
            Scope::Area(a) => self.areas.get(&a).map(|a| &a.lsdb),
        }
    }

    fn lsdb_mut(&mut self, scope: Scope) -> Option<&mut Lsdb> {
        match scope {
            Scope::As => Some(&mut self.external),
            Scope::Area(a) => self.areas.get_mut(&a).map(|a| &mut a.lsdb),
        }
    }

    /// An LSA by key in the first database that holds it (tests, single-area views).
    pub fn find_lsa(&self, key: &LsaKey) -> Option<&super::lsdb::Entry> {
        self.lsdbs().find_map(|(_, db)| db.get(key))
    }

    fn entry(&self, scope: Scope, key: &LsaKey) -> Option<&super::lsdb::Entry> {
        self.lsdb(scope)?.get(key)
    }

    /// The scope of `ls_type` on `tunnel`'s interface.
    fn scope_on(&self, tunnel: TunnelId, ls_type: LsType) -> Option<Scope> {
        let area = self.ifaces.get(&tunnel)?.cfg.area;
        Some(Scope::of(area, ls_type))
    }

    fn is_stub(&self, area: Ipv4Addr) -> bool {
        self.areas.get(&area).is_some_and(|a| a.settings.stub)
    }

    /// The option bits of our packets and LSAs in `area`: E unless it is a stub area.
    fn options(&self, area: Ipv4Addr) -> u8 {
        if self.is_stub(area) {
            0
        } else {
            OPT_E
        }
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    pub fn spf_runs(&self) -> u64 {
        self.throttle.runs
    }

    pub fn counters(&self) -> &BTreeMap<&'static str, u64> {
        &self.counters
    }

    /// (tunnel, neighbor router id, state) of every neighbor.
    pub fn neighbors(&self) -> Vec<(TunnelId, Ipv4Addr, State)> {
        self.ifaces
            .values()
            .filter_map(|i| {
                i.neighbor
                    .as_ref()
                    .map(|n| (i.cfg.tunnel, n.router_id, n.state))
            })
            .collect()
    }

    /// The configured interfaces with their neighbor, if any.
    pub fn interfaces(&self) -> impl Iterator<Item = (&InterfaceConfig, Option<&Neighbor>)> {
        self.ifaces.values().map(|i| (&i.cfg, i.neighbor.as_ref()))
    }

    /// The areas this instance is attached to, with their settings.
    pub fn areas(&self) -> impl Iterator<Item = (Ipv4Addr, AreaSettings)> + '_ {
        self.areas.iter().map(|(id, a)| (*id, a.settings.clone()))
    }

    /// True when attached to several areas (an area border router).
    pub fn is_abr(&self) -> bool {
        self.areas.len() > 1
    }

    fn count(&mut self, what: &'static str) {
        *self.counters.entry(what).or_default() += 1;
    }

    /// Handles one input at `now` and returns what to do.
    pub fn handle(&mut self, now: Instant, input: Input) -> Vec<Output> {
        self.now = self.now.max(now);
        match input {
            Input::Packet {
                tunnel,
                src,
                dst,
                bytes,
            } => self.receive(now, tunnel, src, dst, &bytes),
            Input::Timer => {}
            Input::PeerSilent(tunnel) => {
                if self
                    .ifaces
                    .get(&tunnel)
                    .is_some_and(|i| i.neighbor.is_some())
                {
                    self.count("peer_silent");
                    self.event(now, tunnel, Event::KillNbr);
                }
            }
            Input::Configure(cfg) => self.configure(cfg, now),
        }
        self.timers(now);
        self.flush_floods(now);
        std::mem::take(&mut self.out)
    }

    /// The earliest instant at which [`Input::Timer`] has something to do.
    pub fn next_deadline(&self) -> Instant {
        let mut at = self.next_age_check;
        let mut min = |t: Option<Instant>| {
            if let Some(t) = t {
                at = at.min(t);
            }
        };
        min(self.originate_due);
        min(self.throttle.due());
        for i in self.ifaces.values() {
            min(Some(i.hello_due));
            if let Some(n) = &i.neighbor {
                min(n.inactivity);
                min(n.dd_retransmit);
                min(n.lsr_retransmit);
                min(n.lsu_retransmit);
            }
        }
        at
    }

    /// The areas `cfg` attaches the router to, with their settings: those of its
    /// interfaces, or the default area when it has none.
    fn attached(cfg: &InstanceConfig) -> BTreeMap<Ipv4Addr, AreaSettings> {
        let mut ids: BTreeSet<Ipv4Addr> = cfg.interfaces.iter().map(|i| i.area).collect();
        if ids.is_empty() {
            ids.insert(cfg.area);
        }
        ids.into_iter()
            .map(|id| (id, cfg.areas.get(&id).cloned().unwrap_or_default()))
            .collect()
    }

    fn configure(&mut self, cfg: InstanceConfig, now: Instant) {
        if cfg.router_id != self.cfg.router_id {
            // A new identity: start over.
            for t in self.ifaces.keys().copied().collect::<Vec<_>>() {
                self.event(now, t, Event::KillNbr);
            }
            self.ifaces.clear();
            self.areas.clear();
            self.external = Lsdb::default();
            self.mine.clear();
            self.flushing.clear();
            self.dd_seed = u32::from(cfg.router_id).rotate_left(16) | 1;
        }
        // Areas: a new one starts empty; one left, or that became or stopped being a stub
        // area (its neighbors must agree on the E bit again), is dropped with everything
        // of ours in it. Other changes (default cost, ranges) only change summaries.
        let attached = Self::attached(&cfg);
        let gone: Vec<Ipv4Addr> = self
            .areas
            .iter()
            .filter(|(id, a)| attached.get(id).map(|s| s.stub) != Some(a.settings.stub))
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            for (t, i) in self.ifaces.clone() {
                if i.cfg.area == id {
                    self.event(now, t, Event::KillNbr);
                    self.ifaces.remove(&t);
                }
            }
            self.areas.remove(&id);
            let scope = Scope::Area(id);
            self.mine.retain(|(s, _), _| *s != scope);
            self.flushing.retain(|(s, _)| *s != scope);
        }
        for (id, settings) in &attached {
            self.areas.entry(*id).or_default().settings = settings.clone();
        }
        let wanted: BTreeSet<TunnelId> = cfg.interfaces.iter().map(|i| i.tunnel).collect();
        for t in self.ifaces.keys().copied().collect::<Vec<_>>() {
            if !wanted.contains(&t) {
                self.event(now, t, Event::KillNbr);
                self.ifaces.remove(&t);
            }
        }
        for ic in &cfg.interfaces {
            match self.ifaces.get_mut(&ic.tunnel) {
                Some(i) if i.cfg == *ic => {}
                Some(i) => {
                    let restart =
                        i.cfg.hello != ic.hello || i.cfg.dead != ic.dead || i.cfg.area != ic.area;
                    i.cfg = ic.clone();
                    i.hello_due = now;
                    if restart {
                        self.event(now, ic.tunnel, Event::KillNbr);
                    }
                }
                None => {
                    self.ifaces.insert(
                        ic.tunnel,
                        Interface {
                            cfg: ic.clone(),
                            neighbor: None,
                            hello_due: now,
                            rx_seq: None,
                        },
                    );
                }
            }
        }
        let t = &cfg.timers;
        self.throttle.delay = t.spf_delay;
        self.throttle.initial_hold = t.spf_hold;
        self.throttle.max_hold = t.spf_max_hold;
        self.cfg = cfg;
        self.schedule_originate(now);
        self.throttle.schedule(now);
    }

    // ---- sending ----

    fn send(&mut self, tunnel: TunnelId, body: Body) -> Vec<u8> {
        let key = self.ifaces.get(&tunnel).and_then(|i| i.cfg.auth.clone());
        let area_id = self
            .ifaces
            .get(&tunnel)
            .map_or(self.cfg.area, |i| i.cfg.area);
        let repr = PacketRepr {
            router_id: self.cfg.router_id,
            area_id,
            auth: match &key {
                None => Auth::Null,
                Some(k) => Auth::Crypto {
                    key_id: k.key_id,
                    len: k.algorithm.digest_len() as u8,
                    seq: self.crypto_seq(),
                },
            },
            body,
        };
        self.count(match &repr.body {
            Body::Hello(_) => "tx_hello",
            Body::DbDesc(_) => "tx_dd",
            Body::LsRequest(_) => "tx_lsr",
            Body::LsUpdate(_) => "tx_lsu",
            Body::LsAck(_) => "tx_lsack",
        });
        let mut packet = repr.to_bytes();
        if let Some(k) = &key {
            k.sign(&mut packet);
        }
        self.out.push(Output::Send {
            tunnel,
            dst: ALL_SPF_ROUTERS,
            packet: packet.clone(),
        });
        packet
    }

    fn send_hello(&mut self, tunnel: TunnelId) {
        let Some(i) = self.ifaces.get(&tunnel) else {
            return;
        };
        let hello = Hello {
            network_mask: i.cfg.address.map_or(Ipv4Addr::UNSPECIFIED, |a| a.mask()),
            hello_interval: i.cfg.hello,
            options: self.options(i.cfg.area),
            priority: 1,
            dead_interval: i.cfg.dead,
            designated_router: Ipv4Addr::UNSPECIFIED,
            backup_designated_router: Ipv4Addr::UNSPECIFIED,
            neighbors: i.neighbor.iter().map(|n| n.router_id).collect(),
        };
        self.send(tunnel, Body::Hello(hello));
    }

    /// Sends LSAs (current instances from the LSDB) in as many updates as the MTU needs.
    fn send_updates(&mut self, now: Instant, tunnel: TunnelId, keys: &[LsaKey]) {
        let Some(max) = self.ifaces.get(&tunnel).map(|i| i.max_body()) else {
            return;
        };
        let mut batch: Vec<Lsa> = Vec::new();
        let mut size = 4;
        for key in keys {
            let Some(e) = self
                .scope_on(tunnel, key.ls_type)
                .and_then(|scope| self.entry(scope, key))
            else {
                continue;
            };
            let lsa = e.for_flooding(now);
            let len = lsa.bytes().len();
            if !batch.is_empty() && size + len > max {
                self.send(tunnel, Body::LsUpdate(std::mem::take(&mut batch)));
                size = 4;
            }
            size += len;
            batch.push(lsa);
        }
        if !batch.is_empty() {
            self.send(tunnel, Body::LsUpdate(batch));
        }
    }

    fn send_dd(&mut self, tunnel: TunnelId, init: bool) {
        let Some(area) = self.ifaces.get(&tunnel).map(|i| i.cfg.area) else {
            return;
        };
        let options = self.options(area);
        let Some(i) = self.ifaces.get_mut(&tunnel) else {
            return;
        };
        let mtu = i.cfg.mtu;
        let per_packet = (i.max_body() - 8) / 20;
        let Some(n) = i.neighbor.as_mut() else {
            return;
        };
        let headers: Vec<LsaHeader> = if init {
            vec![]
        } else {
            let k = per_packet.min(n.summary.len());
            n.summary.drain(..k).collect()
        };
        let more = init || !n.summary.is_empty();
        if !more {
            // The snapshot of a large database: do not keep its capacity for the whole
            // life of the adjacency (20 bytes per LSA).
            n.summary = VecDeque::new();
        }
        let flags = (if init { DD_INIT } else { 0 })
            | (if more { DD_MORE } else { 0 })
            | (if n.master { DD_MASTER } else { 0 });
        n.more_sent = more;
        let dd = DbDesc {
            mtu,
            options,
            flags,
            seq: n.dd_seq,
            headers,
        };
        let bytes = self.send(tunnel, Body::DbDesc(dd));
        if let Some(n) = self.nbr(tunnel) {
            n.last_tx_dd = Some(bytes);
        }
    }

    fn resend_last_dd(&mut self, tunnel: TunnelId) {
        let Some(bytes) = self.nbr(tunnel).and_then(|n| n.last_tx_dd.clone()) else {
            return;
        };
        self.count("tx_dd");
        self.out.push(Output::Send {
            tunnel,
            dst: ALL_SPF_ROUTERS,
            packet: bytes,
        });
    }

    fn send_requests(&mut self, now: Instant, tunnel: TunnelId) {
        let Some(i) = self.ifaces.get_mut(&tunnel) else {
            return;
        };
        let per_packet = i.max_body() / 12;
        let rxmt = i.cfg.retransmit;
        let Some(n) = i.neighbor.as_mut() else {
            return;
        };
        let keys: Vec<LsaKey> = n.requests.keys().take(per_packet).copied().collect();
        if keys.is_empty() {
            n.lsr_retransmit = None;
            return;
        }
        n.requested = keys.iter().copied().collect();
        n.lsr_retransmit = Some(now + rxmt);
        self.send(
            tunnel,
            Body::LsRequest(keys.into_iter().map(LsRequest::from).collect()),
        );
    }

    fn flush_floods(&mut self, now: Instant) {
        for (tunnel, keys) in std::mem::take(&mut self.flood_queue) {
            let keys: Vec<LsaKey> = keys.into_iter().collect();
            self.send_updates(now, tunnel, &keys);
        }
    }

    fn nbr(&mut self, tunnel: TunnelId) -> Option<&mut Neighbor> {
        self.ifaces.get_mut(&tunnel)?.neighbor.as_mut()
    }

    // ---- the neighbor state machine ----

    fn event(&mut self, now: Instant, tunnel: TunnelId, ev: Event) {
        let Some(i) = self.ifaces.get_mut(&tunnel) else {
            return;
        };
        let dead = Duration::from_secs(u64::from(i.cfg.dead));
        let rxmt = i.cfg.retransmit;
        let area = i.cfg.area;
        let Some(n) = i.neighbor.as_mut() else {
            return;
        };
        let from = n.state;
        let (to, actions) = neighbor::transition(from, ev);
        n.state = to;
        let mut start_exstart = false;
        let mut send_requests = false;
        for a in actions {
            match a {
                Action::ResetInactivity => n.inactivity = Some(now + dead),
                Action::StartExStart => start_exstart = true,
                Action::BuildSummary => {
                    // The area's database, and the AS-external-LSAs unless it is a stub.
                    let a = self.areas.get(&area);
                    let external = a
                        .is_some_and(|a| !a.settings.stub)
                        .then_some(&self.external);
                    n.summary = a
                        .map(|a| &a.lsdb)
                        .into_iter()
                        .chain(external)
                        .flat_map(|db| db.iter().map(|(_, e)| e.header(now)))
                        .collect();
                }
                Action::SendRequests => send_requests = true,
                Action::ClearLists => n.clear_lists(),
                Action::StopTimers => n.stop_timers(),
            }
        }
        let router_id = n.router_id;
        if to == State::Down {
            i.neighbor = None;
        }
        if from != to {
            tracing::info!(
                tunnel = %i.cfg.name,
                neighbor = %router_id,
                from = from.name(),
                to = to.name(),
                "ospf neighbor"
            );
            if let Some(n) = self.nbr(tunnel) {
                n.since = now;
            }
            self.out.push(Output::NeighborChanged {
                tunnel,
                router_id,
                from,
                to,
            });
            if from == State::Full || to == State::Full {
                self.schedule_originate(now);
                self.throttle.schedule(now);
            }
        }
        if start_exstart {
            self.dd_seed = self.dd_seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let seq = self.dd_seed;
            if let Some(n) = self.nbr(tunnel) {
                n.master = true;
                n.dd_seq = seq;
                n.last_rx_dd = None;
                n.dd_retransmit = Some(now + rxmt);
            }
            self.send_dd(tunnel, true);
        }
        if send_requests {
            self.send_requests(now, tunnel);
        }
    }

    // ---- receiving ----

    fn receive(
        &mut self,
        now: Instant,
        tunnel: TunnelId,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        bytes: &[u8],
    ) {
        if !self.ifaces.contains_key(&tunnel) {
            self.count("rx_no_interface");
            return;
        }
        let repr = match PacketRepr::parse_bytes(bytes) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(%tunnel, error = %e, "ospf packet dropped");
                self.count(e.name());
                return;
            }
        };
        if self
            .ifaces
            .get(&tunnel)
            .is_some_and(|i| i.cfg.area != repr.area_id)
        {
            return self.count("wrong_area");
        }
        if repr.router_id == self.cfg.router_id {
            return self.count("own_router_id");
        }
        if let Err(why) = self.authenticate(tunnel, repr.router_id, repr.auth, bytes) {
            tracing::debug!(%tunnel, why, "ospf packet dropped");
            return self.count(why);
        }
        if dst == ALL_D_ROUTERS {
            return self.count("to_all_d_routers");
        }
        let rid = repr.router_id;
        match repr.body {
            Body::Hello(h) => {
                self.count("rx_hello");
                self.receive_hello(now, tunnel, src, rid, h)
            }
            body => {
                let known = self
                    .ifaces
                    .get(&tunnel)
                    .and_then(|i| i.neighbor.as_ref())
                    .is_some_and(|n| n.router_id == rid);
                if !known {
                    return self.count("unknown_neighbor");
                }
                match body {
                    Body::DbDesc(dd) => {
                        self.count("rx_dd");
                        self.receive_dd(now, tunnel, dd)
                    }
                    Body::LsRequest(r) => {
                        self.count("rx_lsr");
                        self.receive_lsr(now, tunnel, &r)
                    }
                    Body::LsUpdate(l) => {
                        self.count("rx_lsu");
                        self.receive_lsu(now, tunnel, l)
                    }
                    Body::LsAck(h) => {
                        self.count("rx_lsack");
                        self.receive_ack(now, tunnel, &h)
                    }
                    Body::Hello(_) => {}
                }
            }
        }
    }

    /// D.2/D.4.3: the interface's authentication against the packet's; on success with
    /// cryptographic authentication, the neighbor's sequence number is recorded.
    fn authenticate(
        &mut self,
        tunnel: TunnelId,
        rid: Ipv4Addr,
        auth: Auth,
        bytes: &[u8],
    ) -> Result<(), &'static str> {
        let Some(iface) = self.ifaces.get_mut(&tunnel) else {
            return Err("rx_no_interface");
        };
        let (key, key_id, len, seq) = match (&iface.cfg.auth, auth) {
            (None, Auth::Null) => return Ok(()),
            (None, _) | (Some(_), Auth::Null | Auth::Simple(_)) => return Err("auth_mismatch"),
            (Some(k), Auth::Crypto { key_id, len, seq }) => (k, key_id, len, seq),
        };
        if key_id != key.key_id {
            return Err("auth_key_id");
        }
        if usize::from(len) != key.algorithm.digest_len() {
            return Err("auth_bad_length");
        }
        let plen = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
        let Some(digest) = bytes.get(plen..plen + usize::from(len)) else {
            return Err("auth_truncated");
        };
        if !key.verify(&bytes[..plen], digest) {
            return Err("auth_bad_digest");
        }
        // Per neighbor, while it exists: a lower sequence number is a replay.
        let current = iface.neighbor.as_ref().map(|n| n.router_id) == Some(rid);
        match iface.rx_seq {
            Some((r, last)) if r == rid && current && seq < last => return Err("auth_replay"),
            _ => {}
        }
        iface.rx_seq = Some((rid, seq));
        Ok(())
    }

    fn receive_hello(
        &mut self,
        now: Instant,
        tunnel: TunnelId,
        src: Ipv4Addr,
        rid: Ipv4Addr,
        h: Hello,
    ) {
        let Some(i) = self.ifaces.get(&tunnel) else {
            return;
        };
        if h.hello_interval != i.cfg.hello || h.dead_interval != i.cfg.dead {
            return self.count("hello_timer_mismatch");
        }
        // 10.5: the E bit must match the area's kind (clear in a stub area).
        if h.options & OPT_E != self.options(i.cfg.area) & OPT_E {
            return self.count("options_mismatch");
        }
        if i.neighbor.as_ref().is_some_and(|n| n.router_id != rid) {
            // Another router on the other end of the tunnel: the old one is gone.
            self.event(now, tunnel, Event::KillNbr);
        }
        let Some(i) = self.ifaces.get_mut(&tunnel) else {
            return;
        };
        let n = i
            .neighbor
            .get_or_insert_with(|| Neighbor::new(rid, src, now));
        n.address = src;
        n.options = h.options;
        let new = n.state == State::Down;
        self.event(now, tunnel, Event::HelloReceived);
        if new {
            // Answer a new neighbor at once so that it sees itself listed without
            // waiting a hello interval (two-way in one round trip).
            self.send_hello(tunnel);
        }
        let ev = if h.neighbors.contains(&self.cfg.router_id) {
            Event::TwoWayReceived
        } else {
            Event::OneWayReceived
        };
        self.event(now, tunnel, ev);
    }

    fn receive_dd(&mut self, now: Instant, tunnel: TunnelId, dd: DbDesc) {
        let Some(i) = self.ifaces.get(&tunnel) else {
            return;
        };
        if dd.mtu > i.cfg.mtu {
            return self.count("mtu_mismatch");
        }
        let our_id = self.cfg.router_id;
        let Some(n) = i.neighbor.as_ref() else {
            return;
        };
        let rid = n.router_id;
        let key = (dd.flags, dd.options, dd.seq);
        let duplicate = n.last_rx_dd == Some(key);
        let state = n.state;
        match state {
            State::Down | State::TwoWay => {}
            State::Init => {
                self.event(now, tunnel, Event::TwoWayReceived);
                if self.nbr(tunnel).is_some_and(|n| n.state == State::ExStart) {
                    self.receive_dd(now, tunnel, dd);
                }
            }
            State::ExStart => {
                if dd.init() && dd.more() && dd.master() && dd.headers.is_empty() && rid > our_id {
                    if let Some(n) = self.nbr(tunnel) {
                        n.master = false;
                        n.dd_seq = dd.seq;
                        n.options = dd.options;
                        n.last_rx_dd = Some(key);
                        n.dd_retransmit = None;
                    }
                    self.event(now, tunnel, Event::NegotiationDone);
                    self.send_dd(tunnel, false);
                } else if !dd.init()
                    && !dd.master()
                    && rid < our_id
                    && self.nbr(tunnel).is_some_and(|n| n.dd_seq == dd.seq)
                {
                    if let Some(n) = self.nbr(tunnel) {
                        n.options = dd.options;
                    }
                    self.event(now, tunnel, Event::NegotiationDone);
                    self.exchange(now, tunnel, dd);
                } else {
                    self.count("dd_ignored");
                }
            }
            State::Exchange => {
                if duplicate {
                    if self.nbr(tunnel).is_some_and(|n| !n.master) {
                        self.resend_last_dd(tunnel);
                    }
                    return;
                }
                self.exchange(now, tunnel, dd);
            }
            State::Loading | State::Full => {
                if duplicate {
                    if self.nbr(tunnel).is_some_and(|n| !n.master) {
                        self.resend_last_dd(tunnel);
                    }
                } else {
                    self.count("dd_seq_mismatch");
                    self.event(now, tunnel, Event::SeqNumberMismatch);
                }
            }
        }
    }

    /// A DD packet in Exchange (or the one that ended ExStart for the master).
    fn exchange(&mut self, now: Instant, tunnel: TunnelId, dd: DbDesc) {
        let Some(n) = self.nbr(tunnel) else {
            return;
        };
        let we_master = n.master;
        let ok = dd.master() != we_master
            && !dd.init()
            && dd.options == n.options
            && if we_master {
                dd.seq == n.dd_seq
            } else {
                dd.seq == n.dd_seq.wrapping_add(1)
            };
        if !ok {
            self.count("dd_seq_mismatch");
            return self.event(now, tunnel, Event::SeqNumberMismatch);
        }
        n.last_rx_dd = Some((dd.flags, dd.options, dd.seq));
        let area = self.ifaces.get(&tunnel).map_or(BACKBONE, |i| i.cfg.area);
        for h in &dd.headers {
            let Some(key) = h.key() else {
                self.count("dd_unknown_lsa_type");
                return self.event(now, tunnel, Event::SeqNumberMismatch);
            };
            // 10.6: no AS-external-LSAs in a stub area.
            if key.ls_type == LsType::AsExternal && self.is_stub(area) {
                self.count("external_in_stub_area");
                return self.event(now, tunnel, Event::SeqNumberMismatch);
            }
            let ours = self
                .entry(Scope::of(area, key.ls_type), &key)
                .map(|e| e.header(now));
            if ours.is_none_or(|o| h.compare(&o) == Ordering::Greater) {
                if let Some(n) = self.nbr(tunnel) {
                    n.requests.insert(key, *h);
                }
            }
        }
        let Some(n) = self.nbr(tunnel) else {
            return;
        };
        if we_master {
            n.dd_seq = n.dd_seq.wrapping_add(1);
            if !n.more_sent && !dd.more() {
                n.dd_retransmit = None;
                let requests_empty = n.requests.is_empty();
                self.event(now, tunnel, Event::ExchangeDone { requests_empty });
            } else {
                let rxmt = self.ifaces.get(&tunnel).map(|i| i.cfg.retransmit);
                if let (Some(n), Some(rxmt)) = (self.nbr(tunnel), rxmt) {
                    n.dd_retransmit = Some(now + rxmt);
                }
                self.send_dd(tunnel, false);
            }
        } else {
            n.dd_seq = dd.seq;
            self.send_dd(tunnel, false);
            if let Some(n) = self.nbr(tunnel) {
                if !dd.more() && !n.more_sent {
                    let requests_empty = n.requests.is_empty();
                    self.event(now, tunnel, Event::ExchangeDone { requests_empty });
                }
            }
        }
    }

    fn receive_lsr(&mut self, now: Instant, tunnel: TunnelId, reqs: &[LsRequest]) {
        if self.nbr(tunnel).is_none_or(|n| n.state < State::Exchange) {
            return self.count("lsr_ignored");
        }
        let mut keys = Vec::new();
        for r in reqs {
            let held = |k: &LsaKey| {
                self.scope_on(tunnel, k.ls_type)
                    .and_then(|s| self.entry(s, k))
                    .is_some()
            };
            match r.key().filter(held) {
                Some(k) => keys.push(k),
                None => {
                    self.count("bad_ls_request");
                    return self.event(now, tunnel, Event::BadLsReq);
                }
            }
        }
        self.send_updates(now, tunnel, &keys);
    }

    fn receive_ack(&mut self, now: Instant, tunnel: TunnelId, headers: &[LsaHeader]) {
        if self.nbr(tunnel).is_none_or(|n| n.state < State::Exchange) {
            return self.count("lsack_ignored");
        }
        for h in headers {
            let Some(key) = h.key() else { continue };
            let same = self
                .scope_on(tunnel, key.ls_type)
                .and_then(|s| self.entry(s, &key))
                .is_some_and(|e| e.header(now).compare(h) == Ordering::Equal);
            if let Some(n) = self.nbr(tunnel) {
                if same {
                    n.retransmit.remove(&key);
                }
                if n.retransmit.is_empty() {
                    n.lsu_retransmit = None;
                }
            }
        }
    }

    /// RFC 2328 13: the receipt of each LSA of an update.
    fn receive_lsu(&mut self, now: Instant, tunnel: TunnelId, lsas: Vec<Lsa>) {
        if self.nbr(tunnel).is_none_or(|n| n.state < State::Exchange) {
            return self.count("lsu_ignored");
        }
        let mut acks = Vec::new();
        let mut send_back = Vec::new();
        let area = self.ifaces.get(&tunnel).map_or(BACKBONE, |i| i.cfg.area);
        for lsa in lsas {
            let key = lsa.key();
            // (3) An AS-external-LSA has no place in a stub area.
            if key.ls_type == LsType::AsExternal && self.is_stub(area) {
                self.count("external_in_stub_area");
                continue;
            }
            let scope = Scope::of(area, key.ls_type);
            let db = self
                .entry(scope, &key)
                .map(|e| (e.header(now), e.installed, e.flooded));
            let exchanging = self
                .ifaces
                .values()
                .filter_map(|i| i.neighbor.as_ref())
                .any(|n| matches!(n.state, State::Exchange | State::Loading));
            // (4) A flush of something we do not have: just acknowledge it.
            if lsa.header.age >= MAX_AGE && db.is_none() && !exchanging {
                acks.push(lsa.header);
                continue;
            }
            let newer = db.is_none_or(|(h, ..)| lsa.header.compare(&h) == Ordering::Greater);
            if newer {
                // (5a) Too soon after the last instance received via flooding: drop,
                // unacknowledged. A copy that answered one of our requests (or one of
                // our own) does not count: a neighbor re-originating right after the
                // exchange is taken at once rather than on its retransmission.
                if let Some((_, installed, flooded)) = db {
                    if flooded
                        && now.saturating_duration_since(installed) < self.cfg.timers.min_ls_arrival
                        && key.adv_router != self.cfg.router_id
                    {
                        self.count("lsa_min_arrival");
                        continue;
                    }
                }
                // (5b-d) Forget older instances, flood it on, install it.
                self.forget_retransmits(scope, &key);
                self.flood(now, scope, &key, Some(tunnel));
                let mut answers_request = false;
                if let Some(n) = self.nbr(tunnel) {
                    if n.requests
                        .get(&key)
                        .is_some_and(|r| lsa.header.compare(r) != Ordering::Less)
                    {
                        n.requests.remove(&key);
                        n.requested.remove(&key);
                        answers_request = true;
                    }
                }
                let header = lsa.header;
                let max_age = header.age >= MAX_AGE;
                let changed = self
                    .lsdb_mut(scope)
                    .is_some_and(|db| db.install_received(lsa, now, !answers_request));
                if changed {
                    self.throttle.schedule(now);
                }
                if !max_age {
                    self.flushing.remove(&(scope, key));
                }
                // The flood above queued keys; they go out at the end of the step.
                acks.push(header);
                // (5f) Our own LSA from an earlier life: take its number and move on.
                if key.adv_router == self.cfg.router_id {
                    self.count("self_originated_received");
                    self.force.insert((scope, key));
                    self.schedule_originate(now);
                }
                continue;
            }
            // (6) Asked for, yet not newer: the exchange went wrong.
            if self
                .nbr(tunnel)
                .is_some_and(|n| n.requests.contains_key(&key))
            {
                self.count("bad_ls_request");
                return self.event(now, tunnel, Event::BadLsReq);
            }
            let Some((db_header, ..)) = db else { continue };
            if lsa.header.compare(&db_header) == Ordering::Equal {
                // (7) A duplicate: an implied ack, or acknowledge it directly.
                let implied = self.nbr(tunnel).is_some_and(|n| n.retransmit.remove(&key));
                if !implied {
                    acks.push(lsa.header);
                }
                continue;
            }
            // (8) Ours is newer: send it back, unless it is a wrapping flush.
            if !(db_header.age >= MAX_AGE && db_header.seq == MAX_SEQUENCE) {
                send_back.push(key);
            }
        }
        if !acks.is_empty() {
            self.send(tunnel, Body::LsAck(acks));
        }
        if !send_back.is_empty() {
            self.send_updates(now, tunnel, &send_back);
        }
        // Loading: next batch of requests, or done.
        if let Some(n) = self.nbr(tunnel) {
            if n.state == State::Loading && n.requests.is_empty() {
                n.lsr_retransmit = None;
                self.event(now, tunnel, Event::LoadingDone);
            } else if n.state == State::Loading && n.requested.is_empty() && !n.requests.is_empty()
            {
                self.send_requests(now, tunnel);
            }
        }
    }

    /// RFC 2328 13.3: queue `key` to every adjacent neighbor in its scope but the one it
    /// came from (type 5: every interface not in a stub area).
    fn flood(&mut self, now: Instant, scope: Scope, key: &LsaKey, from: Option<TunnelId>) {
        let stubs: BTreeSet<Ipv4Addr> = self
            .areas
            .iter()
            .filter(|(_, a)| a.settings.stub)
            .map(|(id, _)| *id)
            .collect();
        for (tunnel, i) in self.ifaces.iter_mut() {
            if Some(*tunnel) == from {
                continue;
            }
            let in_scope = match scope {
                Scope::Area(a) => i.cfg.area == a,
                Scope::As => !stubs.contains(&i.cfg.area),
            };
            if !in_scope {
                continue;
            }
            let rxmt = i.cfg.retransmit;
            let Some(n) = i.neighbor.as_mut() else {
                continue;
            };
            if !n.floods() {
                continue;
            }
            n.retransmit.insert(*key);
            if n.lsu_retransmit.is_none() {
                n.lsu_retransmit = Some(now + rxmt);
            }
            self.flood_queue.entry(*tunnel).or_default().insert(*key);
        }
    }

    // ---- origination ----

    fn schedule_originate(&mut self, now: Instant) {
        if self.originate_due.is_some() {
            return;
        }
        let at = match self.last_originated {
            Some(last) => now.max(last + self.cfg.timers.min_ls_interval),
            None => now,
        };
        self.originate_due = Some(at);
    }

    /// Takes `key` of `scope` off the retransmission lists of the neighbors in scope.
    fn forget_retransmits(&mut self, scope: Scope, key: &LsaKey) {
        for i in self.ifaces.values_mut() {
            let in_scope = match scope {
                Scope::Area(a) => i.cfg.area == a,
                Scope::As => true,
            };
            if let Some(n) = i.neighbor.as_mut().filter(|_| in_scope) {
                n.retransmit.remove(key);
            }
        }
    }

    /// Our router-LSA in `area` (12.4.1): the links of the area's interfaces, the
    /// router's own stubs (in every area), B when a border router, E when redistributing
    /// (not in a stub area, where there are no externals).
    fn router_lsa_body(&self, area: Ipv4Addr) -> RouterLsa {
        let mut links = Vec::new();
        for i in self.ifaces.values().filter(|i| i.cfg.area == area) {
            if let Some(n) = i.neighbor.as_ref().filter(|n| n.state == State::Full) {
                links.push(RouterLink {
                    kind: LinkKind::PointToPoint,
                    id: n.router_id,
                    data: i.link_data(),
                    metric: i.cfg.cost,
                });
            }
            if let Some(a) = i.cfg.address {
                links.push(RouterLink {
                    kind: LinkKind::Stub,
                    id: a.network(),
                    data: a.mask(),
                    metric: i.cfg.cost,
                });
            }
        }
        for (prefix, cost) in &self.cfg.stubs {
            links.push(RouterLink {
                kind: LinkKind::Stub,
                id: prefix.network(),
                data: prefix.mask(),
                metric: *cost,
            });
        }
        let mut flags = 0;
        if self.is_abr() {
            flags |= FLAG_B;
        }
        if self.originates_externals() && !self.is_stub(area) {
            flags |= FLAG_E;
        }
        RouterLsa { flags, links }
    }

    /// Type-5 LSAs go out only if some attached area takes them.
    fn originates_externals(&self) -> bool {
        !self.cfg.externals.is_empty() && self.areas.values().any(|a| !a.settings.stub)
    }

    /// Every LSA we want in the databases now, with its scope.
    fn desired(&self) -> Vec<(ScopedKey, LsaBody)> {
        let rid = self.cfg.router_id;
        let key = |ls_type, id| LsaKey {
            ls_type,
            id,
            adv_router: rid,
        };
        let mut desired = Vec::new();
        for (id, area) in &self.areas {
            let scope = Scope::Area(*id);
            desired.push((
                (scope, key(LsType::Router, rid)),
                LsaBody::Router(self.router_lsa_body(*id)),
            ));
            let networks = &area.summaries.networks;
            for (prefix, id) in abr::summary_ids(networks.keys().copied()) {
                desired.push((
                    (scope, key(LsType::SummaryNetwork, id)),
                    LsaBody::Summary(SummaryLsa {
                        mask: prefix.mask(),
                        metric: networks[&prefix],
                    }),
                ));
            }
            for (asbr, metric) in &area.summaries.asbrs {
                desired.push((
                    (scope, key(LsType::SummaryAsbr, *asbr)),
                    LsaBody::Summary(SummaryLsa {
                        mask: Ipv4Addr::UNSPECIFIED,
                        metric: *metric,
                    }),
                ));
            }
        }
        if self.originates_externals() {
            for e in &self.cfg.externals {
                desired.push((
                    (Scope::As, key(LsType::AsExternal, e.prefix.network())),
                    LsaBody::External(ExternalLsa {
                        mask: e.prefix.mask(),
                        e2: e.e2,
                        metric: e.metric,
                        forwarding: Ipv4Addr::UNSPECIFIED,
                        tag: 0,
                    }),
                ));
            }
        }
        desired
    }

    fn originate(&mut self, now: Instant) {
        self.originate_due = None;
        self.last_originated = Some(now);
        let rid = self.cfg.router_id;
        let desired = self.desired();
        let wanted: BTreeSet<ScopedKey> = desired.iter().map(|(k, _)| *k).collect();
        for ((scope, key), body) in desired {
            let current = self.entry(scope, &key);
            let need = match current {
                None => true,
                Some(e) => {
                    e.lsa.body != body
                        || e.is_max_age(now)
                        || self.mine.get(&(scope, key)) != Some(&e.lsa.header.seq)
                        || e.age(now) >= LS_REFRESH_TIME
                        || self.force.contains(&(scope, key))
                }
            };
            if !need {
                continue;
            }
            let seq = match current.map(|e| e.lsa.header.seq) {
                None => INITIAL_SEQUENCE,
                Some(MAX_SEQUENCE) => {
                    // Wrap (RFC 2328 12.1.6): flush the old instance first.
                    self.premature_age(now, scope, key);
                    continue;
                }
                Some(s) => s.wrapping_add(1).max(INITIAL_SEQUENCE),
            };
            let options = match scope {
                Scope::Area(a) => self.options(a),
                Scope::As => OPT_E,
            };
            let header = LsaHeader {
                age: 0,
                options,
                ls_type: key.ls_type.to_u8(),
                id: key.id,
                adv_router: rid,
                seq,
                checksum: 0,
                length: 0,
            };
            let lsa = Lsa::build(header, body);
            self.mine.insert((scope, key), seq);
            self.count("lsa_originated");
            self.forget_retransmits(scope, &key);
            if self.lsdb_mut(scope).is_some_and(|db| db.install(lsa, now)) {
                self.throttle.schedule(now);
            }
            self.flushing.remove(&(scope, key));
            self.flood(now, scope, &key, None);
        }
        self.force.clear();
        // Own LSAs nobody wants any more are flushed.
        let stale: Vec<ScopedKey> = self
            .lsdbs()
            .flat_map(|(scope, db)| {
                db.iter()
                    .filter(move |(k, e)| k.adv_router == rid && !e.is_max_age(now))
                    .map(move |(k, _)| (scope, *k))
            })
            .filter(|sk| !wanted.contains(sk))
            .collect();
        for (scope, key) in stale {
            self.premature_age(now, scope, key);
        }
    }

    /// Sets an LSA's age to MaxAge and floods it (RFC 2328 14.1).
    fn premature_age(&mut self, now: Instant, scope: Scope, key: LsaKey) {
        let Some(e) = self.entry(scope, &key) else {
            return;
        };
        let mut lsa = e.lsa.clone();
        lsa.set_age(MAX_AGE);
        if let Some(db) = self.lsdb_mut(scope) {
            db.install(lsa, now);
        }
        self.mine.remove(&(scope, key));
        self.throttle.schedule(now);
        self.flushing.insert((scope, key));
        self.count("lsa_flushed");
        self.flood(now, scope, &key, None);
    }

    // ---- timers ----

    fn timers(&mut self, now: Instant) {
        let tunnels: Vec<TunnelId> = self.ifaces.keys().copied().collect();
        for t in tunnels {
            let Some(i) = self.ifaces.get_mut(&t) else {
                continue;
            };
            if i.hello_due <= now {
                i.hello_due = now + Duration::from_secs(u64::from(i.cfg.hello));
                self.send_hello(t);
            }
            let Some(i) = self.ifaces.get_mut(&t) else {
                continue;
            };
            let rxmt = i.cfg.retransmit;
            let Some(n) = i.neighbor.as_mut() else {
                continue;
            };
            let due = |d: Option<Instant>| d.is_some_and(|d| d <= now);
            if due(n.inactivity) {
                self.count("inactivity_timer");
                self.event(now, t, Event::InactivityTimer);
                continue;
            }
            if due(n.dd_retransmit) {
                if n.master && matches!(n.state, State::ExStart | State::Exchange) {
                    n.dd_retransmit = Some(now + rxmt);
                    self.resend_last_dd(t);
                } else {
                    n.dd_retransmit = None;
                }
            }
            let Some(n) = self.nbr(t) else { continue };
            if due(n.lsr_retransmit) {
                self.send_requests(now, t);
            }
            let Some(n) = self.nbr(t) else { continue };
            if due(n.lsu_retransmit) {
                let keys: Vec<LsaKey> = n.retransmit.iter().copied().collect();
                n.lsu_retransmit = if keys.is_empty() {
                    None
                } else {
                    Some(now + rxmt)
                };
                if !keys.is_empty() {
                    self.count("lsu_retransmit");
                    self.send_updates(now, t, &keys);
                }
            }
        }
        if now >= self.next_age_check {
            self.next_age_check = now + Duration::from_secs(1);
            self.age(now);
        }
        if self.originate_due.is_some_and(|d| d <= now) {
            self.originate(now);
        }
        if self.throttle.take_due(now) {
            self.run_spf(now);
        }
    }

    /// RFC 2328 14: refresh our own LSAs, flood LSAs that reached MaxAge, remove them
    /// once every neighbor acknowledged them.
    fn age(&mut self, now: Instant) {
        let rid = self.cfg.router_id;
        let mut refresh = false;
        let mut newly_max = Vec::new();
        let mut removable = Vec::new();
        let exchanging = self
            .ifaces
            .values()
            .filter_map(|i| i.neighbor.as_ref())
            .any(|n| matches!(n.state, State::Exchange | State::Loading));
        for (scope, db) in self.lsdbs() {
            for (key, e) in db.iter() {
                let age = e.age(now);
                if key.adv_router == rid && (LS_REFRESH_TIME..MAX_AGE).contains(&age) {
                    refresh = true;
                }
                if age < MAX_AGE {
                    continue;
                }
                let sk = (scope, *key);
                if !self.flushing.contains(&sk) {
                    newly_max.push(sk);
                } else {
                    // Conservative across areas: the same key pending anywhere waits.
                    let pending = self
                        .ifaces
                        .values()
                        .filter_map(|i| i.neighbor.as_ref())
                        .any(|n| n.retransmit.contains(key));
                    if !pending && !exchanging {
                        removable.push(sk);
                    }
                }
            }
        }
        for (scope, key) in newly_max {
            self.flushing.insert((scope, key));
            self.throttle.schedule(now);
            self.flood(now, scope, &key, None);
        }
        for (scope, key) in removable {
            self.flushing.remove(&(scope, key));
            if let Some(db) = self.lsdb_mut(scope) {
                db.remove(&key);
            }
            self.mine.remove(&(scope, key));
            // A wrapped own LSA is originated afresh once its flush is done.
            if key.adv_router == rid {
                self.schedule_originate(now);
            }
        }
        if refresh {
            self.schedule_originate(now);
        }
    }

    fn run_spf(&mut self, now: Instant) {
        let mut adjacencies: BTreeMap<Ipv4Addr, Vec<Adjacency>> = BTreeMap::new();
        for i in self.ifaces.values() {
            if let Some(n) = i.neighbor.as_ref().filter(|n| n.state == State::Full) {
                adjacencies.entry(i.cfg.area).or_default().push(Adjacency {
                    neighbor: n.router_id,
                    tunnel: i.cfg.tunnel,
                    cost: i.cfg.cost,
                });
            }
        }
        let inputs: Vec<AreaInput> = self
            .areas
            .iter()
            .map(|(id, a)| AreaInput {
                id: *id,
                lsdb: &a.lsdb,
                adjacencies: adjacencies.get(id).map_or(&[], Vec::as_slice),
            })
            .collect();
        let result = spf::run_areas(&inputs, &self.external, self.cfg.router_id, now);
        tracing::debug!(
            routes = result.routes.len(),
            areas = result.trees.len(),
            "ospf spf"
        );
        // A border router's summaries follow its routing table.
        let settings: BTreeMap<Ipv4Addr, AreaSettings> = self
            .areas
            .iter()
            .map(|(id, a)| (*id, a.settings.clone()))
            .collect();
        let mut summaries = abr::summaries(&settings, &result);
        let mut changed = false;
        for (id, a) in self.areas.iter_mut() {
            let s = summaries.remove(id).unwrap_or_default();
            if a.summaries != s {
                a.summaries = s;
                changed = true;
            }
        }
        if changed {
            self.schedule_originate(now);
        }
        if result.routes != self.routes {
            self.routes = result.routes;
            self.out.push(Output::Routes(self.routes.clone()));
        }
    }
}

#[cfg(test)]
mod tests;
