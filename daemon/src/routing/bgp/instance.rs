//! One BGP speaker with all its neighbors, as a deterministic machine:
//! [`Instance::handle`] takes one [`Input`] for one neighbor (transport up/down, bytes
//! received, a timer expiry, a silent tunnel, start/stop) and returns [`Output`]s (connect,
//! close, bytes to write, timers to arm or stop, the complete new BGP route set for the
//! RIB, neighbor up/down). No sockets, no clock, no tasks: an I/O layer (not written yet)
//! runs it, maps timers to sleeps and transports to TCP (tokio) or smoltcp sockets.
//!
//! Glue only: the codecs, [`Session`], [`Decision`], import [`Policy`], [`exports_for`]
//! and [`AdjRibOut`] do the work (RFC 4271 8, 9). After every change to any Adj-RIB-In the
//! decision runs over everything (full recompute; incremental is a later optimization) and
//! every established neighbor's Adj-RIB-Out is synced.
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

use super::adj_out::{AdjRibOut, OutSession};
use super::attr::{Family, MpUnreach, PathAttrs};
use super::decision::{Decision, DecisionConfig, PeerInfo, Resolution};
use super::export::{exports_for, ExportPeer, LocalAddrs};
use super::fsm::{
    Action, DownReason, Event, Negotiated, PeerConfig, PeerGracefulRestart, Session, State, Timer,
};
use super::message::{Framer, Message, RouteRefreshRepr, UpdateRepr, MAX_LEN};
use super::policy::{effective_verdict, Policy, Verdict};
use crate::routing::rib::Candidate;
use ipnetwork::IpNetwork;
use std::collections::BTreeMap;
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
    /// The complete BGP route set, for `Router::replace_protocol_routes`.
    Routes(Vec<Candidate>),
    NeighborUp(IpAddr, Negotiated),
    NeighborDown(IpAddr, DownReason),
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
}

impl Neighbor {
    fn new(cfg: NeighborConfig) -> Neighbor {
        Neighbor {
            session: Session::new(cfg.session.clone()),
            cfg,
            framer: Framer::new(),
            adj_out: AdjRibOut::default(),
            peer_gr: None,
            eor_pending: false,
        }
    }
}

/// One neighbor as the status shows it (borrowed from the instance).
pub struct NeighborView<'a> {
    pub config: &'a NeighborConfig,
    pub session: &'a Session,
    pub adj_rib_out: &'a AdjRibOut,
}

pub struct Instance {
    cfg: InstanceConfig,
    neighbors: BTreeMap<IpAddr, Neighbor>,
    decision: Decision,
    routes: Vec<Candidate>,
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
            routes: Vec::new(),
        }
    }

    pub fn routes(&self) -> &[Candidate] {
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
        })
    }

    pub fn neighbors(&self) -> impl Iterator<Item = NeighborView<'_>> {
        self.neighbors.values().map(|n| NeighborView {
            config: &n.cfg,
            session: &n.session,
            adj_rib_out: &n.adj_out,
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
        self.cfg.originated = originated;
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
        let mut changed = self.run_event(addr, Event::ManualStop, &mut out);
        if self.neighbors.remove(&addr).is_some() {
            changed |= !self.decision.peer_down(addr).is_empty();
            self.cfg.neighbors.retain(|n| n.addr != addr);
            out.push(Output::StopTimer(addr, Timer::GracefulRestart));
            out.push(Output::Close(addr));
        }
        if changed {
            self.redecide(resolve, &mut out);
        }
        out
    }

    /// New policies (or next-hop-self) for a neighbor without resetting its session:
    /// exports are recomputed at once; imports apply to what the peer sends from now on,
    /// so the peer is asked to send everything again (route refresh) when it can.
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

    /// Soft reset (RFC 2918): inbound asks the peer to resend its routes (when it
    /// negotiated route refresh); outbound sends ours again.
    pub fn soft_reset<R>(
        &mut self,
        addr: IpAddr,
        inbound: bool,
        outbound: bool,
        _resolve: &R,
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
        for f in neg.families.clone() {
            if inbound && neg.route_refresh {
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
        let mut changed = false;
        if matches!(
            input,
            Input::Stop | Input::PeerSilent | Input::TimerExpired(Timer::GracefulRestart)
        ) {
            changed |= !self.decision.sweep_stale(addr, None).is_empty();
            if n.session.state() != State::Established {
                // Only the stale routes kept the peer's table; it goes with them.
                self.decision.peer_down(addr);
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
                Timer::GracefulRestart => return self.finish(changed, resolve, out),
            }],
            Input::Received(bytes) => {
                n.framer.push(&bytes);
                let mut evs = Vec::new();
                while let Some(m) = n.framer.next_message() {
                    let parsed = m.and_then(|b| Message::parse(&b, n.session.codec()));
                    let failed = parsed.is_err();
                    evs.push(match parsed {
                        Ok(Message::Open(o)) => Event::BgpOpen(o),
                        Ok(Message::Keepalive) => Event::KeepAliveMsg,
                        Ok(Message::Update(u)) => Event::UpdateMsg(Box::new(u)),
                        Ok(Message::Notification(x)) => Event::NotifMsg(x),
                        Ok(Message::RouteRefresh(r)) => Event::RouteRefreshMsg(r),
                        Err(x) => Event::DecodeError(x),
                    });
                    if failed {
                        break;
                    }
                }
                evs
            }
        };
        for ev in events {
            changed |= self.run_event(addr, ev, &mut out);
        }
        self.finish(changed, resolve, out)
    }

    fn finish<R>(&mut self, changed: bool, resolve: &R, mut out: Vec<Output>) -> Vec<Output>
    where
        R: Fn(&PeerInfo, IpAddr) -> Option<Resolution>,
    {
        if changed {
            self.redecide(resolve, &mut out);
        }
        out
    }

    /// Next hops moved (IGP change): decide again and resync.
    pub fn resolution_changed<R>(&mut self, resolve: &R) -> Vec<Output>
    where
        R: Fn(&PeerInfo, IpAddr) -> Option<Resolution>,
    {
        let mut out = Vec::new();
        self.redecide(resolve, &mut out);
        out
    }

    /// Feeds one FSM event and carries out its actions. True if an Adj-RIB-In changed.
    fn run_event(&mut self, addr: IpAddr, ev: Event, out: &mut Vec<Output>) -> bool {
        let Some(n) = self.neighbors.get_mut(&addr) else {
            return false;
        };
        let mut changed = false;
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
                        self.decision.peer_up(PeerInfo {
                            addr,
                            router_id: neg.peer_id,
                            asn: neg.peer_as,
                            ebgp: neg.ebgp,
                            four_octet_as: neg.four_octet_as,
                            rr_client: n.cfg.rr_client && !neg.ebgp,
                        });
                        n.peer_gr = neg.graceful_restart.clone();
                        if self.decision.has_stale(addr) {
                            // RFC 4724 4.2: families no longer preserved (or no longer
                            // carried) go now; the others wait for their End-of-RIB.
                            for f in [Family::Ipv4Unicast, Family::Ipv6Unicast] {
                                let kept = neg.families.contains(&f)
                                    && n.peer_gr.as_ref().is_some_and(|g| g.forwarding_kept(f));
                                if !kept {
                                    self.decision.sweep_stale(addr, Some(f));
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
                        n.eor_pending = true;
                        out.push(Output::NeighborUp(addr, neg));
                        // Triggers the initial advertisement.
                        changed = true;
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
                                changed |=
                                    !self.decision.peer_down_graceful(addr, &keep).is_empty();
                                if self.decision.has_stale(addr) {
                                    out.push(Output::StartTimer(
                                        addr,
                                        Timer::GracefulRestart,
                                        Duration::from_secs(g.restart_time.into()),
                                    ));
                                }
                            }
                            None => {
                                changed |= !self.decision.peer_down(addr).is_empty();
                                out.push(Output::StopTimer(addr, Timer::GracefulRestart));
                            }
                        }
                        n.adj_out.clear();
                        n.eor_pending = false;
                        out.push(Output::NeighborDown(addr, reason));
                    }
                    Action::Update(u) => {
                        if let Some(f) = end_of_rib(&u) {
                            changed |= !self.decision.sweep_stale(addr, Some(f)).is_empty();
                            if n.peer_gr.is_some() && !self.decision.has_stale(addr) {
                                out.push(Output::StopTimer(addr, Timer::GracefulRestart));
                            }
                            continue;
                        }
                        for part in import(&n.cfg, *u) {
                            changed |= !self.decision.update(addr, &part).changed.is_empty();
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
        changed
    }

    fn redecide<R>(&mut self, resolve: &R, out: &mut Vec<Output>)
    where
        R: Fn(&PeerInfo, IpAddr) -> Option<Resolution>,
    {
        let routes = self.decision.candidates(resolve);
        if routes != self.routes {
            self.routes = routes.clone();
            out.push(Output::Routes(routes));
        }
        let best = self.decision.best_paths(resolve);
        let cluster_id = self.decision.cluster_id().unwrap_or(self.cfg.router_id);
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
            let mut wanted = exports_for(&best, &self.cfg.originated, &to);
            wanted.retain(|p, e| {
                let mut attrs = e.attrs.clone();
                let v = effective_verdict(
                    n.cfg.export.as_ref(),
                    neg.ebgp,
                    n.cfg.allow_without_policy,
                    p,
                    &mut attrs,
                );
                if v == Verdict::Accept && attrs != e.attrs {
                    let mut edited = (**e).clone();
                    edited.attrs = attrs;
                    *e = Arc::new(edited);
                }
                v == Verdict::Accept
            });
            let s = out_session(neg);
            for u in n.adj_out.sync(&wanted, &s) {
                out.push(Output::Write(*addr, Message::Update(u).emit(s.codec)));
            }
            if std::mem::take(&mut n.eor_pending) {
                for &f in &neg.families {
                    let eor = Message::Update(end_of_rib_marker(f));
                    out.push(Output::Write(*addr, eor.emit(s.codec)));
                }
            }
        }
    }
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
    if !u.withdrawn.is_empty() || !u.nlri.is_empty() || !u.faults.is_clean() {
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
        max_len: MAX_LEN,
        families: neg.families.clone(),
        extended_next_hop: neg.extended_next_hop,
    }
}

/// Import policy: splits an UPDATE into the withdrawals plus one UPDATE per accepted
/// prefix (with that prefix's edited attributes); rejected prefixes become withdrawals.
/// Treat-as-withdraw UPDATEs pass unchanged.
fn import(cfg: &NeighborConfig, u: UpdateRepr) -> Vec<UpdateRepr> {
    let ebgp = cfg.session.ebgp();
    if u.faults.withdraws(ebgp) || (cfg.import.is_none() && (!ebgp || cfg.allow_without_policy)) {
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
    let mut out = Vec::new();
    let mut one = |p: IpNetwork, mp: bool| {
        let mut attrs = u.attrs.clone();
        attrs.mp_unreach = None;
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
        out.push(part);
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
    all.extend(out);
    all
}

#[cfg(test)]
mod tests;
