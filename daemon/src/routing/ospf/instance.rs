//! One OSPFv2 instance (one area, point-to-point interfaces), as a deterministic machine:
//! [`Instance::handle`] takes an input (a received packet, a timer tick, a silent peer, a
//! new configuration) and the current time, and returns outputs (packets to send, the
//! new route set, neighbor state changes). No sockets, no clock, no tasks: `io` runs it.
//!
//! RFC 2328: receiving (8.2), hellos (9.5, 10.5), database exchange (10.6, 10.8),
//! requests (10.7, 10.9), flooding (13, 13.3, 13.5, 13.7), origination and refresh
//! (12.4, 12.4.1 for router-LSAs on point-to-point links, 12.4.4 for AS-external-LSAs),
//! self-originated LSAs received back (13.4), aging and MaxAge removal (14), SPF (16).
//! Cryptographic authentication (D.4.3, RFC 5709) per interface, with the replay check
//! per neighbor. Not yet: LAN interfaces (DR election, network-LSAs),
//! several areas (ABR summaries), sequence number wrap (the LSA is flushed and waits).

use super::auth::AuthKey;
use super::lsa::{
    ExternalLsa, LinkKind, LsType, Lsa, LsaBody, LsaHeader, LsaKey, RouterLink, RouterLsa, FLAG_E,
    INITIAL_SEQUENCE, LS_REFRESH_TIME, MAX_AGE, MAX_SEQUENCE,
};
use super::lsdb::Lsdb;
use super::neighbor::{self, Action, Event, Neighbor, State};
use super::packet::{
    Auth, Body, DbDesc, Hello, LsRequest, PacketRepr, ALL_D_ROUTERS, ALL_SPF_ROUTERS, DD_INIT,
    DD_MASTER, DD_MORE, OPT_E,
};
use super::spf::{self, Adjacency, Route, Throttle};
use crate::dataplane::TunnelId;
use ipnetwork::Ipv4Network;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// IP (20) plus OSPF (24) header bytes, subtracted from the MTU to size bodies.
const HEADERS: usize = 44;

/// A point-to-point OSPF interface over one tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceConfig {
    pub tunnel: TunnelId,
    pub name: String,
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
    pub area: Ipv4Addr,
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

pub struct Instance {
    cfg: InstanceConfig,
    ifaces: BTreeMap<TunnelId, Interface>,
    lsdb: Lsdb,
    throttle: Throttle,
    /// Sequence numbers we originated this run, by key.
    mine: BTreeMap<LsaKey, i32>,
    /// Own LSAs that must be re-originated even if unchanged (seen newer from flooding).
    force: BTreeSet<LsaKey>,
    originate_due: Option<Instant>,
    last_originated: Option<Instant>,
    next_age_check: Instant,
    /// MaxAge LSAs already flooded, waiting for acks before removal.
    flushing: BTreeSet<LsaKey>,
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
            lsdb: Lsdb::default(),
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

    pub fn lsdb(&self) -> &Lsdb {
        &self.lsdb
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

    /// The area this instance runs in.
    pub fn area(&self) -> Ipv4Addr {
        self.cfg.area
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

    fn configure(&mut self, cfg: InstanceConfig, now: Instant) {
        if cfg.router_id != self.cfg.router_id || cfg.area != self.cfg.area {
            // A new identity: start over.
            for t in self.ifaces.keys().copied().collect::<Vec<_>>() {
                self.event(now, t, Event::KillNbr);
            }
            self.ifaces.clear();
            self.lsdb = Lsdb::default();
            self.mine.clear();
            self.flushing.clear();
            self.dd_seed = u32::from(cfg.router_id).rotate_left(16) | 1;
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
                    let restart = i.cfg.hello != ic.hello || i.cfg.dead != ic.dead;
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
        let repr = PacketRepr {
            router_id: self.cfg.router_id,
            area_id: self.cfg.area,
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
            options: OPT_E,
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
            let Some(e) = self.lsdb.get(key) else {
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
        let flags = (if init { DD_INIT } else { 0 })
            | (if more { DD_MORE } else { 0 })
            | (if n.master { DD_MASTER } else { 0 });
        n.more_sent = more;
        let dd = DbDesc {
            mtu,
            options: OPT_E,
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
                    n.summary = self.lsdb.iter().map(|(_, e)| e.header(now)).collect();
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
        if repr.area_id != self.cfg.area {
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
        if h.options & OPT_E != OPT_E {
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
        for h in &dd.headers {
            let Some(key) = h.key() else {
                self.count("dd_unknown_lsa_type");
                return self.event(now, tunnel, Event::SeqNumberMismatch);
            };
            let ours = self.lsdb.get(&key).map(|e| e.header(now));
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
            match r.key().filter(|k| self.lsdb.get(k).is_some()) {
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
                .lsdb
                .get(&key)
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
        for lsa in lsas {
            let key = lsa.key();
            let db = self
                .lsdb
                .get(&key)
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
                for i in self.ifaces.values_mut() {
                    if let Some(n) = i.neighbor.as_mut() {
                        n.retransmit.remove(&key);
                    }
                }
                self.flood(now, &key, Some(tunnel));
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
                if self.lsdb.install_received(lsa, now, !answers_request) {
                    self.throttle.schedule(now);
                }
                if !max_age {
                    self.flushing.remove(&key);
                }
                // The flood above queued keys; they go out at the end of the step.
                acks.push(header);
                // (5f) Our own LSA from an earlier life: take its number and move on.
                if key.adv_router == self.cfg.router_id {
                    self.count("self_originated_received");
                    self.force.insert(key);
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

    /// RFC 2328 13.3: queue `key` to every adjacent neighbor but the one it came from.
    fn flood(&mut self, now: Instant, key: &LsaKey, from: Option<TunnelId>) {
        for (tunnel, i) in self.ifaces.iter_mut() {
            if Some(*tunnel) == from {
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

    fn router_lsa_body(&self) -> RouterLsa {
        let mut links = Vec::new();
        for i in self.ifaces.values() {
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
        RouterLsa {
            flags: if self.cfg.externals.is_empty() {
                0
            } else {
                FLAG_E
            },
            links,
        }
    }

    fn originate(&mut self, now: Instant) {
        self.originate_due = None;
        self.last_originated = Some(now);
        let rid = self.cfg.router_id;
        let mut desired: Vec<(LsaKey, LsaBody)> = vec![(
            LsaKey {
                ls_type: LsType::Router,
                id: rid,
                adv_router: rid,
            },
            LsaBody::Router(self.router_lsa_body()),
        )];
        for e in &self.cfg.externals {
            desired.push((
                LsaKey {
                    ls_type: LsType::AsExternal,
                    id: e.prefix.network(),
                    adv_router: rid,
                },
                LsaBody::External(ExternalLsa {
                    mask: e.prefix.mask(),
                    e2: e.e2,
                    metric: e.metric,
                    forwarding: Ipv4Addr::UNSPECIFIED,
                    tag: 0,
                }),
            ));
        }
        let wanted: BTreeSet<LsaKey> = desired.iter().map(|(k, _)| *k).collect();
        for (key, body) in desired {
            let current = self.lsdb.get(&key);
            let need = match current {
                None => true,
                Some(e) => {
                    e.lsa.body != body
                        || e.is_max_age(now)
                        || self.mine.get(&key) != Some(&e.lsa.header.seq)
                        || e.age(now) >= LS_REFRESH_TIME
                        || self.force.contains(&key)
                }
            };
            if !need {
                continue;
            }
            let seq = match current.map(|e| e.lsa.header.seq) {
                None => INITIAL_SEQUENCE,
                Some(MAX_SEQUENCE) => {
                    // Wrap (RFC 2328 12.1.6): flush the old instance first.
                    self.premature_age(now, key);
                    continue;
                }
                Some(s) => s.wrapping_add(1).max(INITIAL_SEQUENCE),
            };
            let header = LsaHeader {
                age: 0,
                options: OPT_E,
                ls_type: key.ls_type.to_u8(),
                id: key.id,
                adv_router: rid,
                seq,
                checksum: 0,
                length: 0,
            };
            let lsa = Lsa::build(header, body);
            self.mine.insert(key, seq);
            self.count("lsa_originated");
            for i in self.ifaces.values_mut() {
                if let Some(n) = i.neighbor.as_mut() {
                    n.retransmit.remove(&key);
                }
            }
            if self.lsdb.install(lsa, now) {
                self.throttle.schedule(now);
            }
            self.flushing.remove(&key);
            self.flood(now, &key, None);
        }
        self.force.clear();
        // Own LSAs nobody wants any more are flushed.
        let stale: Vec<LsaKey> = self
            .lsdb
            .iter()
            .filter(|(k, e)| k.adv_router == rid && !wanted.contains(k) && !e.is_max_age(now))
            .map(|(k, _)| *k)
            .collect();
        for key in stale {
            self.premature_age(now, key);
        }
    }

    /// Sets an LSA's age to MaxAge and floods it (RFC 2328 14.1).
    fn premature_age(&mut self, now: Instant, key: LsaKey) {
        let Some(e) = self.lsdb.get(&key) else {
            return;
        };
        let mut lsa = e.lsa.clone();
        lsa.set_age(MAX_AGE);
        self.lsdb.install(lsa, now);
        self.mine.remove(&key);
        self.throttle.schedule(now);
        self.flushing.insert(key);
        self.count("lsa_flushed");
        self.flood(now, &key, None);
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
        for (key, e) in self.lsdb.iter() {
            let age = e.age(now);
            if key.adv_router == rid && (LS_REFRESH_TIME..MAX_AGE).contains(&age) {
                refresh = true;
            }
            if age >= MAX_AGE {
                if !self.flushing.contains(key) {
                    newly_max.push(*key);
                } else {
                    let pending = self
                        .ifaces
                        .values()
                        .filter_map(|i| i.neighbor.as_ref())
                        .any(|n| n.retransmit.contains(key));
                    if !pending && !exchanging {
                        removable.push(*key);
                    }
                }
            }
        }
        for key in newly_max {
            self.flushing.insert(key);
            self.throttle.schedule(now);
            self.flood(now, &key, None);
        }
        for key in removable {
            self.flushing.remove(&key);
            self.lsdb.remove(&key);
            self.mine.remove(&key);
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
        let adjacencies: Vec<Adjacency> = self
            .ifaces
            .values()
            .filter_map(|i| {
                let n = i.neighbor.as_ref().filter(|n| n.state == State::Full)?;
                Some(Adjacency {
                    neighbor: n.router_id,
                    tunnel: i.cfg.tunnel,
                    cost: i.cfg.cost,
                })
            })
            .collect();
        let result = spf::run(&self.lsdb, self.cfg.router_id, &adjacencies, now);
        tracing::debug!(
            routes = result.routes.len(),
            routers = result.routers.len(),
            "ospf spf"
        );
        if result.routes != self.routes {
            self.routes = result.routes;
            self.out.push(Output::Routes(self.routes.clone()));
        }
    }
}

#[cfg(test)]
mod tests;
