//! One BGP speaker with all its neighbors, as a deterministic machine:
//! [`Instance::handle`] takes one [`Input`] for one neighbor (transport up/down, bytes
//! received, a timer expiry, a silent tunnel, start/stop) and returns [`Output`]s (connect,
//! close, bytes to write, timers to arm or stop, the changes to the BGP route set for the
//! RIB, neighbor up/down). No sockets, no clock, no tasks: `io.rs` runs it, maps timers to
//! sleeps and transports to TCP (tokio) or smoltcp sockets.
//!
//! Glue only: the codecs, [`Session`], [`Decision`], import [`Policy`], [`export_prefix`]
//! and [`AdjRibOut`] do the work (RFC 4271 8, 9). The decision is incremental: whatever
//! changes an Adj-RIB-In (an UPDATE, a session down, a stale sweep) or the originated
//! routes names the prefixes it touched (*dirty*); only those are decided again, only
//! their candidates go to the RIB ([`RouteDelta`]) and only their exports are compared
//! with each neighbor's Adj-RIB-Out, so an UPDATE costs O(prefixes in it) whatever the
//! table size. Full passes remain where the input concerns everything: the initial
//! advertisement to a neighbor and a policy change (that neighbor's export only), and a
//! next hop whose resolution moved (the prefixes using it). The full recompute
//! ([`Decision::candidates`], [`exports_for`]) is kept as the reference the tests compare
//! with.
//!
//! Route reflection (RFC 4456): neighbors with `rr_client` are clients; the export rules
//! are [`exports_for`]'s, the cluster id is the decision's (the router id by default).
//!
//! Graceful restart, helper side (RFC 4724 4.2): when a session whose peer offered the
//! capability (and we did) drops by a transport failure or hold timer expiry, the peer's
//! routes of the families in its capability stay, marked stale, for its restart time
//! ([`Timer::GracefulRestart`]). When the session returns, families the peer no longer
//! preserves forwarding for are swept at once, the others when its End-of-RIB for them
//! arrives (or when the timer, rearmed to [`STALE_PATH_TIME`], runs out). A NOTIFICATION,
//! a stop, or a silent tunnel (`PeerSilent`: the peer is gone, failover must win) drop
//! everything at once. Every session gets an End-of-RIB per family after our initial
//! advertisement.

use super::adj_in_pre::AdjRibInPre;
use super::adj_out::Export;
use super::adj_out::{AdjRibOut, OutSession};
use super::attr::{Family, MpUnreach, PathAttrs};
use super::decision::{
    installed_of, Decision, DecisionConfig, Installed, Path, PeerInfo, Resolution,
};
use super::export::{export_prefix, exports_for, ExportPeer, LocalAddrs};
use super::fsm::{
    Action, DownReason, Event, Negotiated, PeerConfig, PeerGracefulRestart, Session, State, Timer,
};
use super::message::{Framer, Message, RouteRefreshRepr, UpdateRepr};
use super::policy::{effective_verdict, Policy, Verdict};
use crate::prefix_map::PrefixMap;
use crate::routing::rib::Candidate;
use ipnetwork::IpNetwork;
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct NeighborConfig {
    pub addr: IpAddr,
    pub session: PeerConfig,
    /// This side's addresses toward the neighbor (next hop self).
    pub local: LocalAddrs,
    pub import: Option<Policy>,
    pub export: Option<Policy>,
    /// Opt out of RFC 8212 (eBGP without policy exchanges everything).
    pub allow_without_policy: bool,
    pub next_hop_self: bool,
    /// A route reflection client of ours (RFC 4456; iBGP neighbors only).
    pub rr_client: bool,
    /// Keep a pre-policy Adj-RIB-In ([`AdjRibInPre`]) for soft reset inbound.
    pub keep_received_routes: bool,
}

/// How long stale routes wait for the peer's End-of-RIB once its session is back (RFC
/// 4724 4.2 leaves the bound to the implementation; FRR's stale path time).
pub const STALE_PATH_TIME: Duration = Duration::from_secs(360);

#[derive(Clone, Debug)]
pub struct InstanceConfig {
    pub local_as: u32,
    pub router_id: Ipv4Addr,
    pub decision: DecisionConfig,
    /// Locally originated routes (`networks`, redistribution).
    pub originated: BTreeMap<IpNetwork, PathAttrs>,
    pub neighbors: Vec<NeighborConfig>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    Start,
    Stop,
    /// Our connection to the peer is up.
    TransportUp,
    /// A connection from the peer was taken (also from Idle, unless stopped).
    Accepted,
    /// A connection from the peer won a collision (RFC 4271 6.8): dump this one with a
    /// Cease; an [`Input::Accepted`] for the winner follows.
    CollisionDump,
    TransportDown,
    Received(Vec<u8>),
    TimerExpired(Timer),
    PeerSilent,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    Connect(IpAddr),
    Close(IpAddr),
    Write(IpAddr, Vec<u8>),
    StartTimer(IpAddr, Timer, Duration),
    StopTimer(IpAddr, Timer),
    /// What changed in the BGP route set, for `Router::update_protocol_routes`.
    Routes(RouteDelta),
    NeighborUp(IpAddr, Negotiated),
    NeighborDown(IpAddr, DownReason),
}

/// Changes to the BGP route set handed to the RIB: candidates new or different, and
/// prefixes that no longer have one. Only prefixes an input touched appear.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteDelta {
    pub changed: Vec<Candidate>,
    pub removed: Vec<IpNetwork>,
}

impl RouteDelta {
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.removed.is_empty()
    }
}

struct Neighbor {
    cfg: NeighborConfig,
    session: Session,
    framer: Framer,
    adj_out: AdjRibOut,
    /// The peer's graceful restart capability on the current (or last) session.
    peer_gr: Option<PeerGracefulRestart>,
    /// End-of-RIB still to send after the initial advertisement.
    eor_pending: bool,
    /// The whole export map is to be compared with the Adj-RIB-Out (initial
    /// advertisement, new export policy), not only the dirty prefixes.
    full_sync: bool,
    /// The pre-policy Adj-RIB-In, with `keep_received_routes` only.
    pre: Option<AdjRibInPre>,
}

impl Neighbor {
    fn new(cfg: NeighborConfig) -> Neighbor {
        Neighbor {
            pre: cfg.keep_received_routes.then(|| AdjRibInPre::new(true)),
            session: Session::new(cfg.session.clone()),
            cfg,
            framer: Framer::new(),
            adj_out: AdjRibOut::default(),
            peer_gr: None,
            eor_pending: false,
            full_sync: false,
        }
    }
}

/// One neighbor as the status shows it (borrowed from the instance).
pub struct NeighborView<'a> {
    pub config: &'a NeighborConfig,
    pub session: &'a Session,
    pub adj_rib_out: &'a AdjRibOut,
    /// What the peer sent before import policy (`keep_received_routes` only).
    pub adj_rib_in_pre: Option<&'a AdjRibInPre>,
}

pub struct Instance {
    cfg: InstanceConfig,
    neighbors: BTreeMap<IpAddr, Neighbor>,
    decision: Decision,
    /// The BGP route set as the RIB was told it: one candidate per prefix. Prefixes
    /// decided alike in one pass (one UPDATE's) share one `Installed`: an entry is the
    /// prefix and a pointer.
    routes: PrefixMap<Arc<Installed>>,
    /// Prefixes touched by the input being handled, decided again before it returns
    /// (repeats allowed: sorted and deduplicated once, cheaper than a set per insert).
    dirty: Vec<IpNetwork>,
    /// How each (peer, next hop) resolved when first used: what
    /// [`Instance::resolution_changed`] compares with to find the next hops that moved.
    resolved: HashMap<PeerNextHop, Option<Resolution>>,
}

impl Instance {
    pub fn new(cfg: InstanceConfig) -> Instance {
        let neighbors = cfg
            .neighbors
            .iter()
            .map(|n| (n.addr, Neighbor::new(n.clone())))
            .collect();
        let mut decision = Decision::new(cfg.local_as, cfg.decision);
        decision.router_id = Some(cfg.router_id);
        Instance {
            decision,
            cfg,
            neighbors,
            routes: PrefixMap::new(),
            dirty: Vec::new(),
            resolved: HashMap::new(),
        }
    }

    /// The BGP route set (what the RIB has from us), by prefix.
    pub fn routes(&self) -> &PrefixMap<Arc<Installed>> {
        &self.routes
    }

    pub fn state(&self, addr: IpAddr) -> Option<State> {
        self.neighbors.get(&addr).map(|n| n.session.state())
    }

    pub fn decision(&self) -> &Decision {
        &self.decision
    }

    pub fn config(&self) -> &InstanceConfig {
        &self.cfg
    }

    pub fn neighbor(&self, addr: IpAddr) -> Option<NeighborView<'_>> {
        self.neighbors.get(&addr).map(|n| NeighborView {
            config: &n.cfg,
            session: &n.session,
            adj_rib_out: &n.adj_out,
            adj_rib_in_pre: n.pre.as_ref(),
        })
    }

    pub fn neighbors(&self) -> impl Iterator<Item = NeighborView<'_>> {
        self.neighbors.values().map(|n| NeighborView {
            config: &n.cfg,
            session: &n.session,
            adj_rib_out: &n.adj_out,
            adj_rib_in_pre: n.pre.as_ref(),
        })
    }

    /// Replace the locally originated routes (config `networks`, redistribution, routes
    /// announced over the API) and advertise the difference.
    pub fn set_originated<R>(
        &mut self,
        originated: BTreeMap<IpNetwork, PathAttrs>,
        resolve: &R,
    ) -> Vec<Output>
    where
        R: Fn(&PeerInfo, IpAddr) -> Option<Resolution>,
    {
        if originated == self.cfg.originated {
            return Vec::new();
        }
        let old = std::mem::replace(&mut self.cfg.originated, originated);
        let new = &self.cfg.originated;
        self.dirty.extend(
            old.iter()
                .filter(|(p, a)| new.get(p) != Some(a))
                .map(|(p, _)| *p),
        );
        self.dirty.extend(
            new.iter()
                .filter(|(p, a)| old.get(p) != Some(a))
                .map(|(p, _)| *p),
        );
        let mut out = Vec::new();
        self.redecide(resolve, &mut out);
        out
    }

    /// A new neighbor, idle until [`Input::Start`]. Replaces one with the same address
    /// (call [`Instance::remove_neighbor`] first to stop it cleanly).
    pub fn add_neighbor(&mut self, cfg: NeighborConfig) {
        self.cfg.neighbors.retain(|n| n.addr != cfg.addr);
        self.cfg.neighbors.push(cfg.clone());
        self.neighbors.insert(cfg.addr, Neighbor::new(cfg));
    }

    /// Stops a neighbor (Cease to the peer), forgets its routes and removes it.
    pub fn remove_neighbor<R>(&mut self, addr: IpAddr, resolve: &R) -> Vec<Output>
    where
        R: Fn(&PeerInfo, IpAddr) -> Option<Resolution>,
    {
        let mut out = Vec::new();
        self.run_event(addr, Event::ManualStop, &mut out);
        if self.neighbors.remove(&addr).is_some() {
            let gone = self.decision.peer_down(addr);
            self.dirty.extend(gone);
            self.cfg.neighbors.retain(|n| n.addr != addr);
            out.push(Output::StopTimer(addr, Timer::GracefulRestart));
            out.push(Output::Close(addr));
        }
        self.redecide(resolve, &mut out);
        out
    }

    /// A new connect-retry interval for a neighbor (config change), kept by its session.
    pub fn set_connect_retry(&mut self, addr: IpAddr, retry: Duration) {
        if let Some(n) = self.neighbors.get_mut(&addr) {
            n.session.set_connect_retry(retry);
            n.cfg.session.connect_retry = retry;
        }
        if let Some(c) = self.cfg.neighbors.iter_mut().find(|c| c.addr == addr) {
            c.session.connect_retry = retry;
        }
    }

    /// Turns the pre-policy Adj-RIB-In of a neighbor on or off, without resetting its
    /// session and without output: turned on while the session is up, the table starts
    /// empty and incomplete, and the next soft reset inbound (or
    /// [`Instance::set_neighbor_policy`], which io calls after any neighbor change) asks
    /// the peer for a ROUTE-REFRESH to fill it.
    pub fn set_keep_received_routes(&mut self, addr: IpAddr, keep: bool) {
        let Some(n) = self.neighbors.get_mut(&addr) else {
            return;
        };
        n.cfg.keep_received_routes = keep;
        if !keep {
            n.pre = None;
        } else if n.pre.is_none() {
            let up = n.session.state() == State::Established;
            n.pre = Some(AdjRibInPre::new(!up));
        }
        if let Some(c) = self.cfg.neighbors.iter_mut().find(|c| c.addr == addr) {
            c.keep_received_routes = keep;
        }
    }

    /// New policies (or next-hop-self) for a neighbor without resetting its session:
    /// exports are recomputed at once; import policy is applied again as a soft reset
    /// inbound does (from the kept pre-policy table, else by a route refresh).
    pub fn set_neighbor_policy<R>(
        &mut self,
        addr: IpAddr,
        import: Option<Policy>,
        export: Option<Policy>,
        allow_without_policy: bool,
        next_hop_self: bool,
        resolve: &R,
    ) -> Vec<Output>
    where
        R: Fn(&PeerInfo, IpAddr) -> Option<Resolution>,
    {
        let Some(n) = self.neighbors.get_mut(&addr) else {
            return Vec::new();
        };
        n.cfg.import = import;
        n.cfg.export = export;
        n.cfg.allow_without_policy = allow_without_policy;
        n.cfg.next_hop_self = next_hop_self;
        // Export policy may change any prefix: this neighbor's whole export is compared.
        n.full_sync = true;
        let updated = n.cfg.clone();
        if let Some(c) = self.cfg.neighbors.iter_mut().find(|c| c.addr == addr) {
            *c = updated;
        }
        let mut out = self.soft_reset(addr, true, false, resolve);
        self.redecide(resolve, &mut out);
        out
    }

    /// The addresses this side uses toward a neighbor (next hop self), once its transport
    /// knows them.
    pub fn set_local_addrs(&mut self, addr: IpAddr, local: LocalAddrs) {
        if let Some(n) = self.neighbors.get_mut(&addr) {
            n.cfg.local = local;
        }
        if let Some(c) = self.cfg.neighbors.iter_mut().find(|c| c.addr == addr) {
            c.local = local;
        }
    }

    /// Soft reset: inbound applies import policy again to what the peer sent, from the
    /// pre-policy Adj-RIB-In when the neighbor keeps one (no message to the peer), else
    /// by asking the peer to resend its routes (RFC 2918 ROUTE-REFRESH, when it
    /// negotiated route refresh; also when the kept table is not complete yet);
    /// outbound sends ours again.
    pub fn soft_reset<R>(
        &mut self,
        addr: IpAddr,
        inbound: bool,
        outbound: bool,
        resolve: &R,
    ) -> Vec<Output>
    where
        R: Fn(&PeerInfo, IpAddr) -> Option<Resolution>,
    {
        let mut out = Vec::new();
        let Some(n) = self.neighbors.get_mut(&addr) else {
            return out;
        };
        if n.session.state() != State::Established {
            return out;
        }
        let Some(neg) = n.session.negotiated() else {
            return out;
        };
        let s = out_session(neg);
        let replay = if inbound {
            n.pre.as_ref().map(|pre| (pre.updates(), pre.is_complete()))
        } else {
            None
        };
        let refresh = inbound && neg.route_refresh && !replay.as_ref().is_some_and(|r| r.1);
        if refresh {
            if let Some(pre) = n.pre.as_mut() {
                // The peer's answer fills it: complete from now on.
                pre.set_complete();
            }
        }
        for f in neg.families.clone() {
            if refresh {
                let m = Message::RouteRefresh(RouteRefreshRepr {
                    afi: f.afi(),
                    subtype: 0,
                    safi: f.safi(),
                });
                out.push(Output::Write(addr, m.emit(s.codec)));
            }
            if outbound {
                for u in n.adj_out.refresh(f, &s) {
                    out.push(Output::Write(addr, Message::Update(u).emit(s.codec)));
                }
            }
        }
        if let Some((updates, _)) = replay {
            for u in updates {
                for part in import(&n.cfg, u) {
                    self.dirty
                        .extend(self.decision.update_imported(addr, &part).changed);
                }
            }
            // The prefix limit counts what policy admits.
            let count = self.decision.adj_rib_in(addr).map_or(0, |t| t.len());
            self.run_event(addr, Event::AdjRibInCount(count as u32), &mut out);
        }
        self.redecide(resolve, &mut out);
        out
    }

    /// One input for one neighbor; `resolve` is the current FIB/IGP view of next hops.
    pub fn handle<R>(&mut self, addr: IpAddr, input: Input, resolve: &R) -> Vec<Output>
    where
        R: Fn(&PeerInfo, IpAddr) -> Option<Resolution>,
    {
        let mut out = Vec::new();
        let Some(n) = self.neighbors.get_mut(&addr) else {
            return out;
        };
        // Stale routes of a graceful restart end here: the timer ran out, we stop the
        // neighbor, or its tunnel says the peer is gone.
        if matches!(
            input,
            Input::Stop | Input::PeerSilent | Input::TimerExpired(Timer::GracefulRestart)
        ) {
            let swept = self.decision.sweep_stale(addr, None);
            self.dirty.extend(swept);
            if n.session.state() != State::Established {
                // Only the stale routes kept the peer's table; it goes with them.
                let gone = self.decision.peer_down(addr);
                self.dirty.extend(gone);
            }
            out.push(Output::StopTimer(addr, Timer::GracefulRestart));
        }
        let events = match input {
            Input::Start => vec![Event::ManualStart],
            Input::Stop => vec![Event::ManualStop],
            Input::TransportUp => {
                n.framer = Framer::new();
                vec![Event::TcpConnectionConfirmed]
            }
            Input::Accepted => {
                n.framer = Framer::new();
                vec![Event::IncomingWhileIdle, Event::TcpConnectionConfirmed]
            }
            Input::CollisionDump => vec![Event::OpenCollisionDump],
            Input::TransportDown => vec![Event::TcpConnectionFails],
            Input::PeerSilent => vec![Event::PeerSilent],
            Input::TimerExpired(t) => vec![match t {
                Timer::ConnectRetry => Event::ConnectRetryTimerExpires,
                Timer::Hold => Event::HoldTimerExpires,
                Timer::Keepalive => Event::KeepaliveTimerExpires,
                Timer::IdleHold => Event::IdleHoldTimerExpires,
                Timer::GracefulRestart => return self.finish(resolve, out),
            }],
            Input::Received(bytes) => {
                n.framer.push(&bytes);
                self.receive(addr, &mut out);
                return self.finish(resolve, out);
            }
        };
        for ev in events {
            self.run_event(addr, ev, &mut out);
        }
        self.finish(resolve, out)
    }

    /// Runs every whole message buffered for `addr`, one at a time: the OPEN may raise
    /// the length limit (RFC 8654) for the messages right behind it.
    fn receive(&mut self, addr: IpAddr, out: &mut Vec<Output>) {
        loop {
            let Some(n) = self.neighbors.get_mut(&addr) else {
                return;
            };
            let max_len = n.session.max_message_len();
            n.framer.set_max_len(max_len);
            let Some(m) = n.framer.next_message() else {
                return;
            };
            let parsed = m.and_then(|b| Message::parse_with_max(&b, n.session.codec(), max_len));
            let failed = parsed.is_err();
            let ev = match parsed {
                Ok(Message::Open(o)) => Event::BgpOpen(o),
                Ok(Message::Keepalive) => Event::KeepAliveMsg,
                Ok(Message::Update(u)) => Event::UpdateMsg(Box::new(u)),
                Ok(Message::Notification(x)) => Event::NotifMsg(x),
                Ok(Message::RouteRefresh(r)) => Event::RouteRefreshMsg(r),
                Err(x) => Event::DecodeError(x),
            };
            self.run_event(addr, ev, out);
            if failed {
                return;
            }
        }
    }

    fn finish<R>(&mut self, resolve: &R, mut out: Vec<Output>) -> Vec<Output>
    where
        R: Fn(&PeerInfo, IpAddr) -> Option<Resolution>,
    {
        self.redecide(resolve, &mut out);
        out
    }

    /// Next hops may resolve differently (IGP or FIB change): every (peer, next hop)
    /// decided with is resolved again, and only the prefixes of those whose resolution
    /// moved are decided again. Costs O(next hops) when nothing moved.
    pub fn resolution_changed<R>(&mut self, resolve: &R) -> Vec<Output>
    where
        R: Fn(&PeerInfo, IpAddr) -> Option<Resolution>,
    {
        let mut moved: HashMap<IpAddr, HashSet<IpAddr>> = HashMap::new();
        let decision = &self.decision;
        let routes = &self.routes;
        self.resolved.retain(|&(peer, nh), old| {
            // A peer that is gone has no routes left to move.
            let Some(info) = decision.peer_info(peer) else {
                return false;
            };
            let new = resolve(info, nh).filter(|r| !through_own(routes, r));
            if new != *old {
                moved.entry(peer).or_default().insert(nh);
                *old = new;
            }
            true
        });
        for (peer, next_hops) in &moved {
            let touched = self.decision.prefixes_via(*peer, next_hops);
            self.dirty.extend(touched);
        }
        let mut out = Vec::new();
        self.redecide(resolve, &mut out);
        out
    }

    /// Feeds one FSM event and carries out its actions; the prefixes whose Adj-RIB-In
    /// entries changed join `self.dirty`.
    fn run_event(&mut self, addr: IpAddr, ev: Event, out: &mut Vec<Output>) {
        let Some(n) = self.neighbors.get_mut(&addr) else {
            return;
        };
        let dirty = &mut self.dirty;
        let mut queue = vec![ev];
        while let Some(ev) = queue.pop() {
            let actions = n.session.handle(ev);
            for a in actions {
                match a {
                    Action::Connect => out.push(Output::Connect(addr)),
                    Action::Close => out.push(Output::Close(addr)),
                    Action::Send(m) => out.push(Output::Write(addr, m.emit(n.session.codec()))),
                    Action::StartTimer(t, d) => out.push(Output::StartTimer(addr, t, d)),
                    Action::StopTimer(t) => out.push(Output::StopTimer(addr, t)),
                    Action::SessionUp(neg) => {
                        let gone = self.decision.peer_up(PeerInfo {
                            addr,
                            router_id: neg.peer_id,
                            asn: neg.peer_as,
                            ebgp: neg.ebgp,
                            four_octet_as: neg.four_octet_as,
                            rr_client: n.cfg.rr_client && !neg.ebgp,
                        });
                        dirty.extend(gone);
                        n.peer_gr = neg.graceful_restart.clone();
                        if self.decision.has_stale(addr) {
                            // RFC 4724 4.2: families no longer preserved (or no longer
                            // carried) go now; the others wait for their End-of-RIB.
                            for f in [Family::Ipv4Unicast, Family::Ipv6Unicast] {
                                let kept = neg.families.contains(&f)
                                    && n.peer_gr.as_ref().is_some_and(|g| g.forwarding_kept(f));
                                if !kept {
                                    dirty.extend(self.decision.sweep_stale(addr, Some(f)));
                                }
                            }
                            if self.decision.has_stale(addr) {
                                out.push(Output::StartTimer(
                                    addr,
                                    Timer::GracefulRestart,
                                    STALE_PATH_TIME,
                                ));
                            } else {
                                out.push(Output::StopTimer(addr, Timer::GracefulRestart));
                            }
                        }
                        n.adj_out.clear();
                        if let Some(pre) = n.pre.as_mut() {
                            pre.clear();
                        }
                        n.eor_pending = true;
                        // The initial advertisement: everything we have.
                        n.full_sync = true;
                        out.push(Output::NeighborUp(addr, neg));
                    }
                    Action::SessionDown(reason) => {
                        let graceful = matches!(
                            reason,
                            DownReason::TransportFailed | DownReason::HoldTimerExpired
                        );
                        match n.peer_gr.take().filter(|g| graceful && g.restart_time > 0) {
                            Some(g) => {
                                let keep: Vec<Family> =
                                    g.families.iter().map(|&(f, _)| f).collect();
                                dirty.extend(self.decision.peer_down_graceful(addr, &keep));
                                if self.decision.has_stale(addr) {
                                    out.push(Output::StartTimer(
                                        addr,
                                        Timer::GracefulRestart,
                                        Duration::from_secs(g.restart_time.into()),
                                    ));
                                }
                            }
                            None => {
                                dirty.extend(self.decision.peer_down(addr));
                                out.push(Output::StopTimer(addr, Timer::GracefulRestart));
                            }
                        }
                        n.adj_out.clear();
                        // Not kept stale across a graceful restart: the new session
                        // sends everything again and refills it.
                        if let Some(pre) = n.pre.as_mut() {
                            pre.clear();
                        }
                        n.eor_pending = false;
                        n.full_sync = false;
                        out.push(Output::NeighborDown(addr, reason));
                    }
                    Action::Update(u) => {
                        if let Some(f) = end_of_rib(&u) {
                            dirty.extend(self.decision.sweep_stale(addr, Some(f)));
                            if n.peer_gr.is_some() && !self.decision.has_stale(addr) {
                                out.push(Output::StopTimer(addr, Timer::GracefulRestart));
                            }
                            continue;
                        }
                        if let Some(pre) = n.pre.as_mut() {
                            pre.apply(&u, u.faults.withdraws(n.cfg.session.ebgp()));
                        }
                        for part in import(&n.cfg, *u) {
                            dirty.extend(self.decision.update_imported(addr, &part).changed);
                        }
                        let count = self.decision.adj_rib_in(addr).map_or(0, |t| t.len());
                        queue.push(Event::AdjRibInCount(count as u32));
                    }
                    Action::RouteRefresh(f) => {
                        if let Some(neg) = n.session.negotiated() {
                            let s = out_session(neg);
                            for u in n.adj_out.refresh(f, &s) {
                                out.push(Output::Write(addr, Message::Update(u).emit(s.codec)));
                            }
                        }
                    }
                    Action::PrefixLimitWarning(_) => {}
                }
            }
        }
    }

    /// Decides the dirty prefixes again, hands their changed candidates to the RIB and
    /// brings every established neighbor's Adj-RIB-Out up to date for them (the whole
    /// export map for neighbors flagged `full_sync`).
    fn redecide<R>(&mut self, resolve: &R, out: &mut Vec<Output>)
    where
        R: Fn(&PeerInfo, IpAddr) -> Option<Resolution>,
    {
        let mut dirty = std::mem::take(&mut self.dirty);
        if dirty.is_empty() && !self.neighbors.values().any(|n| n.full_sync) {
            return;
        }
        dirty.sort_unstable();
        dirty.dedup();
        let _span = tracing::debug_span!("bgp_decide", dirty = dirty.len()).entered();
        // Every resolution used is remembered as first seen (not overwritten), so a
        // later `resolution_changed` still sees the difference for older prefixes.
        let mut seen = std::mem::take(&mut self.resolved);
        let routes = &self.routes;
        let once = ResolveOnce::new(|p: &PeerInfo, nh: IpAddr| {
            let r = resolve(p, nh).filter(|r| !through_own(routes, r));
            seen.entry((p.addr, nh)).or_insert_with(|| r.clone());
            r
        });
        let memo = |p: &PeerInfo, nh: IpAddr| once.resolve(p, nh);
        let decision = &self.decision;
        // Decided against the route set as installed (what the FIB holds), so every
        // prefix is decided before the set changes.
        let mut bests: Vec<(IpNetwork, Option<(&PeerInfo, &Path)>)> =
            Vec::with_capacity(dirty.len());
        let mut candidates = Vec::with_capacity(dirty.len());
        for p in &dirty {
            let sel = decision.select(p, &memo);
            candidates.push(sel.as_ref().map(installed_of));
            bests.push((*p, sel.map(|s| (s.best.peer, s.best.path))));
        }
        let cluster_id = decision.cluster_id().unwrap_or(self.cfg.router_id);
        let originated = &self.cfg.originated;
        let full_sync = self.neighbors.values().any(|n| {
            n.full_sync
                && n.session.negotiated().is_some()
                && n.session.state() == State::Established
        });
        let full_best = full_sync.then(|| decision.best_paths(&memo));
        drop(once);
        let mut delta = RouteDelta::default();
        let mut last: Option<Arc<Installed>> = None;
        for (p, c) in dirty.iter().zip(candidates) {
            match c {
                Some(c) => match self.routes.get_mut(p) {
                    Some(slot) => {
                        if **slot != c {
                            delta.changed.push(c.candidate(*p));
                            *slot = shared_installed(&mut last, c);
                        }
                    }
                    None => {
                        delta.changed.push(c.candidate(*p));
                        // The map tries the run of its last insert first: a table
                        // decided in prefix order costs no second full search.
                        self.routes.insert(*p, shared_installed(&mut last, c));
                    }
                },
                None => {
                    if self.routes.remove(p).is_some() {
                        delta.removed.push(*p);
                    }
                }
            }
        }
        if !delta.is_empty() {
            out.push(Output::Routes(delta));
        }
        for (addr, n) in self.neighbors.iter_mut() {
            let Some(neg) = n.session.negotiated() else {
                continue;
            };
            if n.session.state() != State::Established {
                continue;
            }
            let to = ExportPeer {
                addr: *addr,
                ebgp: neg.ebgp,
                local_as: self.cfg.local_as,
                local: n.cfg.local,
                next_hop_self: n.cfg.next_hop_self,
                rr_client: n.cfg.rr_client && !neg.ebgp,
                cluster_id,
            };
            let s = out_session(neg);
            let updates = if std::mem::take(&mut n.full_sync) {
                let best = full_best.as_deref().unwrap_or_default();
                let mut wanted = exports_for(best, originated, &to);
                wanted.retain(|p, e| match export_policy(&n.cfg, neg.ebgp, p, e.clone()) {
                    Some(edited) => {
                        *e = edited;
                        true
                    }
                    None => false,
                });
                n.adj_out.sync(&wanted, &s)
            } else {
                let mut shared = SharedExports::default();
                let changes: Vec<(IpNetwork, Option<Arc<Export>>)> = bests
                    .iter()
                    .map(|(p, best)| {
                        let e = shared_export(p, *best, originated, &to, &mut shared)
                            .and_then(|e| export_policy(&n.cfg, neg.ebgp, p, e));
                        (*p, e)
                    })
                    .collect();
                n.adj_out.sync_prefixes(&changes, &s)
            };
            for u in updates {
                out.push(Output::Write(*addr, Message::Update(u).emit(s.codec)));
            }
            if std::mem::take(&mut n.eor_pending) {
                for &f in &neg.families {
                    let eor = Message::Update(end_of_rib_marker(f));
                    out.push(Output::Write(*addr, eor.emit(s.codec)));
                }
            }
        }
        drop(full_best);
        drop(bests);
        self.resolved = seen;
    }
}

/// Whether a resolution goes through one of our own routes with that next hop (what
/// the FIB then holds is BGP's: a BGP next hop must not resolve through BGP).
fn through_own(routes: &PrefixMap<Arc<Installed>>, r: &Resolution) -> bool {
    r.via
        .and_then(|via| routes.get(&via))
        .is_some_and(|own| own.next_hop == r.next_hop)
}

/// `c` shared with the previous prefix's when equal (consecutive prefixes of one UPDATE
/// mostly are).
fn shared_installed(last: &mut Option<Arc<Installed>>, c: Installed) -> Arc<Installed> {
    match last {
        Some(l) if **l == c => l.clone(),
        _ => last.insert(Arc::new(c)).clone(),
    }
}

/// Resolves each (peer, next hop) once per input: the prefixes of an UPDATE share one
/// next hop, so a thousand-prefix UPDATE costs one FIB lookup, not a thousand. The last
/// answer is checked first (consecutive prefixes usually share it), then a map.
struct ResolveOnce<F> {
    resolve: RefCell<F>,
    last: RefCell<Option<(PeerNextHop, Option<Resolution>)>>,
    known: RefCell<HashMap<PeerNextHop, Option<Resolution>>>,
}

/// (peer address, next hop address).
type PeerNextHop = (IpAddr, IpAddr);

impl<F: FnMut(&PeerInfo, IpAddr) -> Option<Resolution>> ResolveOnce<F> {
    fn new(resolve: F) -> Self {
        ResolveOnce {
            resolve: RefCell::new(resolve),
            last: RefCell::new(None),
            known: RefCell::new(HashMap::new()),
        }
    }

    fn resolve(&self, peer: &PeerInfo, nh: IpAddr) -> Option<Resolution> {
        let key = (peer.addr, nh);
        let mut last = self.last.borrow_mut();
        if let Some((k, r)) = last.as_ref() {
            if *k == key {
                return r.clone();
            }
        }
        let r = self
            .known
            .borrow_mut()
            .entry(key)
            .or_insert_with(|| (self.resolve.borrow_mut())(peer, nh))
            .clone();
        *last = Some((key, r.clone()));
        r
    }
}

/// Prefixes that share a best path (one UPDATE's worth, same `Arc<PathAttrs>`) share one
/// `Arc<Export>` too: the Adj-RIB-Out then holds one copy of the attributes for all of
/// them and packing finds their group by pointer. The key is everything
/// [`export_prefix`] reads of a learned route apart from the prefix's family.
type ShareKey = (usize, IpAddr, IpAddr, bool);

/// The exports of one pass by [`ShareKey`], the last one apart.
#[derive(Default)]
struct SharedExports {
    last: Option<(ShareKey, Option<Arc<Export>>)>,
    known: HashMap<ShareKey, Option<Arc<Export>>>,
}

fn shared_export(
    prefix: &IpNetwork,
    best: Option<(&PeerInfo, &Path)>,
    originated: &BTreeMap<IpNetwork, PathAttrs>,
    to: &ExportPeer,
    shared: &mut SharedExports,
) -> Option<Arc<Export>> {
    match best {
        Some((from, path)) if !originated.contains_key(prefix) => {
            let key = (
                Arc::as_ptr(&path.attrs) as usize,
                path.next_hop,
                from.addr,
                prefix.is_ipv4(),
            );
            // Consecutive prefixes mostly come from one UPDATE: no hashing for them.
            if let Some((k, e)) = &shared.last {
                if *k == key {
                    return e.clone();
                }
            }
            let e = shared
                .known
                .entry(key)
                .or_insert_with(|| export_prefix(prefix, best, originated, to).map(Arc::new))
                .clone();
            shared.last = Some((key, e.clone()));
            e
        }
        _ => export_prefix(prefix, best, originated, to).map(Arc::new),
    }
}

/// Export policy (RFC 8212 default included) on one prefix's export: None if rejected;
/// the same `Arc` when the policy left the attributes alone, so sharing survives.
fn export_policy(
    cfg: &NeighborConfig,
    ebgp: bool,
    prefix: &IpNetwork,
    e: Arc<Export>,
) -> Option<Arc<Export>> {
    if cfg.export.is_none() {
        return (!ebgp || cfg.allow_without_policy).then_some(e);
    }
    let mut attrs = Cow::Borrowed(&e.attrs);
    let v = effective_verdict(
        cfg.export.as_ref(),
        ebgp,
        cfg.allow_without_policy,
        prefix,
        &mut attrs,
    );
    if v != Verdict::Accept {
        return None;
    }
    let attrs = match attrs {
        Cow::Owned(a) if a != e.attrs => a,
        _ => return Some(e),
    };
    Some(Arc::new(Export {
        attrs,
        next_hop: e.next_hop,
    }))
}

/// RFC 4724 2: the End-of-RIB marker of a family (an empty UPDATE for IPv4 unicast, an
/// MP_UNREACH_NLRI without withdrawals for the others).
pub fn end_of_rib_marker(family: Family) -> UpdateRepr {
    match family {
        Family::Ipv4Unicast => UpdateRepr::default(),
        f => UpdateRepr {
            attrs: PathAttrs {
                mp_unreach: Some(MpUnreach {
                    family: f,
                    withdrawn: Vec::new(),
                }),
                ..PathAttrs::default()
            },
            ..UpdateRepr::default()
        },
    }
}

/// The family an UPDATE is the End-of-RIB marker of, if it is one.
pub fn end_of_rib(u: &UpdateRepr) -> Option<Family> {
    // Announcements first: most UPDATEs are, and the copy below would hold their lists.
    if !u.withdrawn.is_empty()
        || !u.nlri.is_empty()
        || u.attrs.mp_reach.is_some()
        || !u.faults.is_clean()
    {
        return None;
    }
    let mut rest = u.attrs.clone();
    let mp = rest.mp_unreach.take();
    if rest != PathAttrs::default() {
        return None;
    }
    match mp {
        None => Some(Family::Ipv4Unicast),
        Some(m) if m.withdrawn.is_empty() => Some(m.family),
        Some(_) => None,
    }
}

fn out_session(neg: &Negotiated) -> OutSession {
    OutSession {
        codec: neg.codec(),
        max_len: neg.max_message_len(),
        families: neg.families.clone(),
        extended_next_hop: neg.extended_next_hop,
    }
}

/// Import policy: splits an UPDATE into the withdrawals, one UPDATE for the accepted
/// prefixes the policy left as they were (so they share one set of attributes in the
/// Adj-RIB-In, as they did on the wire), and one UPDATE per prefix the policy edited;
/// rejected prefixes become withdrawals. Treat-as-withdraw UPDATEs pass unchanged (but
/// for an eBGP peer's LOCAL_PREF, dropped first).
fn import(cfg: &NeighborConfig, mut u: UpdateRepr) -> Vec<UpdateRepr> {
    let ebgp = cfg.session.ebgp();
    // RFC 4271 5.1.5: an eBGP peer's LOCAL_PREF is ignored, before policy, so a policy
    // may set its own (the decision keeps that one).
    if ebgp {
        u.attrs.local_pref = None;
    }
    let unfiltered = match &cfg.import {
        Some(p) => p.accepts_everything(),
        None => !ebgp || cfg.allow_without_policy,
    };
    if unfiltered || u.faults.withdraws(ebgp) {
        return vec![u];
    }
    let mut withdraw = UpdateRepr {
        withdrawn: u.withdrawn.clone(),
        attrs: PathAttrs {
            mp_unreach: u.attrs.mp_unreach.clone(),
            ..PathAttrs::default()
        },
        ..UpdateRepr::default()
    };
    // The attributes without the prefix lists: what policy sees and edits per prefix
    // (cloning and comparing them with the lists was quadratic in the UPDATE's size).
    let base = u.attrs.without_prefixes();
    // The accepted, unedited prefixes: classic NLRI and MP_REACH ones.
    let mut same = UpdateRepr {
        attrs: base.clone(),
        ..UpdateRepr::default()
    };
    let mut edited = Vec::new();
    let mut one = |p: IpNetwork, mp: bool| {
        // Copied only if the policy edits this prefix's attributes.
        let mut attrs = Cow::Borrowed(&base);
        let v = effective_verdict(
            cfg.import.as_ref(),
            ebgp,
            cfg.allow_without_policy,
            &p,
            &mut attrs,
        );
        if v == Verdict::Reject {
            withdraw.withdrawn.push(p);
            return;
        }
        let attrs = match attrs {
            Cow::Owned(a) if a != base => a,
            _ => {
                match same.attrs.mp_reach.as_mut() {
                    Some(r) if mp => r.nlri.push(p),
                    _ => same.nlri.push(p),
                }
                return;
            }
        };
        let mut part = UpdateRepr {
            attrs,
            ..UpdateRepr::default()
        };
        match part.attrs.mp_reach.as_mut() {
            Some(r) if mp => r.nlri = vec![p],
            _ => {
                part.attrs.mp_reach = None;
                part.nlri = vec![p];
            }
        }
        edited.push(part);
    };
    for p in &u.nlri {
        one(*p, false);
    }
    for p in u.attrs.mp_reach.iter().flat_map(|r| r.nlri.iter()) {
        one(*p, true);
    }
    // Withdrawals may mix families in `withdrawn` here: Decision::update treats the field
    // as a set of prefixes, whatever their family.
    let mut all = vec![withdraw];
    let announces = !same.nlri.is_empty()
        || same
            .attrs
            .mp_reach
            .as_ref()
            .is_some_and(|r| !r.nlri.is_empty());
    if announces {
        if same
            .attrs
            .mp_reach
            .as_ref()
            .is_some_and(|r| r.nlri.is_empty())
        {
            same.attrs.mp_reach = None;
        }
        all.push(same);
    }
    all.extend(edited);
    all
}

#[cfg(test)]
mod tests;
