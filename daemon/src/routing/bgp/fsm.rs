//! The BGP session state machine (RFC 4271 8): Idle, Connect, Active, OpenSent,
//! OpenConfirm, Established. A pure transition function: [`Session::handle`] takes one
//! [`Event`] and returns the [`Action`]s (messages to send, timers to arm or stop, connect
//! or close the transport, session up/down, updates for the RIB layer). No I/O, no clock:
//! timer expiries are events, so tests replay exactly.
//!
//! Also here: OPEN validation and capability negotiation (RFC 4271 6.2, RFC 5492, RFC 4760
//! families, RFC 6793 4-octet AS, RFC 8950 extended next hop, RFC 2918 route refresh),
//! hold time negotiation (4.2), collision resolution by BGP identifier (6.8), passive mode,
//! the RFC 4724 graceful restart capability (offered when configured, with our families
//! and their Forwarding State bit set once a previous session of this [`Session`] existed:
//! a session flap keeps our forwarding, a process restart does not; the peer's restart
//! time and per-family forwarding bits parsed),
//! the per-neighbor prefix limit (RFC 4486 Cease subcode 1), and the wgrd-specific
//! `PeerSilent` event: the tunnel under the session reported its peer silent, so the
//! session drops at once instead of waiting for the hold timer.
//!
//! Not here: transports, Adj-RIB-In, policy (see `decision` and docs/bgp.md).

use super::attr::{Codec, Family, AFI_IPV6, AS_TRANS};
use super::message::*;
use std::net::Ipv4Addr;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    ConnectRetry,
    Hold,
    Keepalive,
    /// Delay before an automatic restart after an error (RFC 4271 8.1.1 IdleHoldTimer).
    IdleHold,
    /// RFC 4724 4.2: how long a restarting peer's stale routes are kept (its restart
    /// time while the session is down, then a bound on the wait for its End-of-RIB).
    /// The instance runs this one, not the session.
    GracefulRestart,
}

/// RFC 4724 3: the Graceful Restart capability code.
pub const CAP_GRACEFUL_RESTART: u8 = 64;

/// What the peer's Graceful Restart capability says (RFC 4724 3).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PeerGracefulRestart {
    /// Seconds the peer expects us to keep its routes while it restarts (12 bits).
    pub restart_time: u16,
    /// The Restart State bit: the peer has just restarted.
    pub restarting: bool,
    /// The families the peer preserves forwarding for, with the Forwarding State bit
    /// (set: forwarding was kept across this restart). Unknown families are left out.
    pub families: Vec<(Family, bool)>,
}

impl PeerGracefulRestart {
    /// Reads the capability value; None if malformed (then it is ignored).
    pub fn parse(d: &[u8]) -> Option<PeerGracefulRestart> {
        if d.len() < 2 || !(d.len() - 2).is_multiple_of(4) {
            return None;
        }
        let head = u16::from_be_bytes([d[0], d[1]]);
        let families = d[2..]
            .chunks_exact(4)
            .filter_map(|c| {
                let f = Family::from_afi_safi(u16::from_be_bytes([c[0], c[1]]), c[2])?;
                Some((f, c[3] & 0x80 != 0))
            })
            .collect();
        Some(PeerGracefulRestart {
            restart_time: head & 0x0fff,
            restarting: head & 0x8000 != 0,
            families,
        })
    }

    /// The peer's capability from its OPEN (the first one, if it sent several).
    pub fn from_open(open: &OpenRepr) -> Option<PeerGracefulRestart> {
        open.capabilities.iter().find_map(|c| match c {
            Capability::Other { code, data } if *code == CAP_GRACEFUL_RESTART => {
                PeerGracefulRestart::parse(data)
            }
            _ => None,
        })
    }

    /// Whether forwarding for `family` survived the restart (RFC 4724 4.2: otherwise
    /// its stale routes go at once).
    pub fn forwarding_kept(&self, family: Family) -> bool {
        self.families.contains(&(family, true))
    }
}

/// Our Graceful Restart capability (RFC 4724 3): the restart time, no Restart State bit
/// (we never defer our advertisement, so no peer waits on it), and `families` with the
/// Forwarding State bit `forwarding` (whether our forwarding survived since the previous
/// session: true after a session flap in the same process, false on a fresh start).
pub fn graceful_restart_capability(
    restart_time: u16,
    families: &[Family],
    forwarding: bool,
) -> Capability {
    let mut data = (restart_time & 0x0fff).to_be_bytes().to_vec();
    for f in families {
        data.extend_from_slice(&f.afi().to_be_bytes());
        data.push(f.safi());
        data.push(if forwarding { 0x80 } else { 0 });
    }
    Capability::Other {
        code: CAP_GRACEFUL_RESTART,
        data,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PrefixLimitAction {
    /// Cease with subcode 1 and stay Idle until started again.
    Stop,
    /// Report once, keep the session.
    Warn,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PrefixLimit {
    pub max: u32,
    pub action: PrefixLimitAction,
}

/// One neighbor's configuration, as the FSM needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerConfig {
    pub local_as: u32,
    pub peer_as: u32,
    pub router_id: Ipv4Addr,
    /// Proposed hold time in seconds (0: no keepalives at all, if the peer agrees).
    pub hold_time: u16,
    /// The lowest non-zero hold time accepted from the peer.
    pub min_hold_time: u16,
    pub connect_retry: Duration,
    pub idle_hold: Duration,
    /// Never connect; wait for the peer (RFC 4271 8.1.1 PassiveTcpEstablishment).
    pub passive: bool,
    pub families: Vec<Family>,
    /// Offer IPv4 unicast with IPv6 next hops (RFC 8950).
    pub extended_next_hop: bool,
    pub prefix_limit: Option<PrefixLimit>,
    /// Offer RFC 8654 extended messages (UPDATEs up to 65535 bytes when both offer).
    pub extended_message: bool,
    /// RFC 4724 graceful restart (helper) with this restart time in seconds; None: off,
    /// the capability is not offered.
    pub graceful_restart: Option<u16>,
}

impl PeerConfig {
    /// RFC 4271 10 defaults: hold 90 s, connect retry 120 s.
    pub fn new(local_as: u32, peer_as: u32, router_id: Ipv4Addr) -> PeerConfig {
        PeerConfig {
            local_as,
            peer_as,
            router_id,
            hold_time: 90,
            min_hold_time: 3,
            connect_retry: Duration::from_secs(120),
            idle_hold: Duration::from_secs(5),
            passive: false,
            families: vec![Family::Ipv4Unicast, Family::Ipv6Unicast],
            extended_next_hop: false,
            prefix_limit: None,
            extended_message: true,
            graceful_restart: None,
        }
    }

    pub fn ebgp(&self) -> bool {
        self.local_as != self.peer_as
    }

    /// The OPEN this side sends on a first session (see [`Session::open`]).
    pub fn open(&self) -> OpenRepr {
        self.open_with(false)
    }

    fn open_with(&self, forwarding_kept: bool) -> OpenRepr {
        let mut capabilities: Vec<Capability> = self
            .families
            .iter()
            .map(|&f| Capability::Multiprotocol(f))
            .collect();
        capabilities.push(Capability::RouteRefresh);
        if self.extended_message {
            capabilities.push(Capability::ExtendedMessage);
        }
        if self.extended_next_hop {
            capabilities.push(Capability::ExtendedNextHop(vec![(
                Family::Ipv4Unicast,
                AFI_IPV6,
            )]));
        }
        if let Some(t) = self.graceful_restart {
            capabilities.push(graceful_restart_capability(
                t,
                &self.families,
                forwarding_kept,
            ));
        }
        capabilities.push(Capability::FourOctetAs(self.local_as));
        OpenRepr {
            my_as: u16::try_from(self.local_as).unwrap_or(AS_TRANS),
            hold_time: self.hold_time,
            bgp_id: self.router_id,
            capabilities,
        }
    }
}

/// What both OPENs agreed on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Negotiated {
    pub peer_as: u32,
    pub peer_id: Ipv4Addr,
    /// Seconds; 0 means no hold timer and no keepalives.
    pub hold_time: u16,
    pub four_octet_as: bool,
    pub families: Vec<Family>,
    pub extended_next_hop: bool,
    pub route_refresh: bool,
    /// Both sides offered extended messages (RFC 8654).
    pub extended_message: bool,
    pub ebgp: bool,
    /// Both sides offered graceful restart: the peer's capability (None otherwise).
    pub graceful_restart: Option<PeerGracefulRestart>,
}

impl Negotiated {
    pub fn codec(&self) -> Codec {
        Codec {
            four_octet_as: self.four_octet_as,
        }
    }
    pub fn keepalive(&self) -> Duration {
        Duration::from_secs(u64::from(self.hold_time / 3))
    }
    /// The longest UPDATE, NOTIFICATION or ROUTE-REFRESH either side may send.
    pub fn max_message_len(&self) -> usize {
        if self.extended_message {
            super::message::EXTENDED_MAX_LEN
        } else {
            super::message::MAX_LEN
        }
    }
}

/// Why a session left Established (or never got there).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DownReason {
    AdminStop,
    HoldTimerExpired,
    NotificationReceived(Notification),
    NotificationSent(Notification),
    TransportFailed,
    PeerSilent,
    PrefixLimit,
    Collision,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    ManualStart,
    ManualStop,
    /// The transport is up, whichever side opened it (RFC 4271 events 16 and 17).
    TcpConnectionConfirmed,
    TcpConnectionFails,
    BgpOpen(OpenRepr),
    KeepAliveMsg,
    UpdateMsg(Box<UpdateRepr>),
    RouteRefreshMsg(RouteRefreshRepr),
    NotifMsg(Notification),
    /// The framer or a parser refused a message (events 21-22, 28): send this and drop.
    DecodeError(Notification),
    HoldTimerExpires,
    KeepaliveTimerExpires,
    ConnectRetryTimerExpires,
    IdleHoldTimerExpires,
    /// The other connection of a collision won (RFC 4271 6.8, event 23).
    OpenCollisionDump,
    /// A connection from the peer arrived while Idle (after a collision dump, or during
    /// the idle hold after an error): go to Active so it can be taken at once instead of
    /// waiting for the automatic restart. Ignored after ManualStop.
    IncomingWhileIdle,
    /// The tunnel carrying this session reported its peer silent.
    PeerSilent,
    /// How many prefixes the Adj-RIB-In holds after the last UPDATE.
    AdjRibInCount(u32),
}

/// Actions live only until the instance has carried them out.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Connect,
    Close,
    Send(Message),
    StartTimer(Timer, Duration),
    StopTimer(Timer),
    SessionUp(Negotiated),
    SessionDown(DownReason),
    /// An UPDATE for the RIB layer (RFC 7606 faults included).
    Update(Box<UpdateRepr>),
    /// The peer asks for a re-advertisement of this family.
    RouteRefresh(Family),
    PrefixLimitWarning(u32),
}

/// Large hold time while waiting for the peer's OPEN (RFC 4271 8.2.2: 4 minutes).
const OPEN_HOLD: Duration = Duration::from_secs(240);

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub messages_in: u64,
    pub messages_out: u64,
    pub updates_in: u64,
    pub connect_retries: u32,
    pub established_transitions: u32,
    pub last_error: Option<DownReason>,
}

/// One neighbor's session.
#[derive(Clone, Debug)]
pub struct Session {
    config: PeerConfig,
    state: State,
    negotiated: Option<Negotiated>,
    /// Stays Idle until a manual start (after ManualStop or a prefix limit stop).
    stopped: bool,
    warned_prefix_limit: bool,
    pub counters: Counters,
}

/// RFC 4271 6.8: which connection survives a collision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CollisionWinner {
    /// The connection this side opened.
    Local,
    /// The connection the peer opened.
    Remote,
}

/// The connection opened by the side with the higher BGP identifier survives.
pub fn resolve_collision(local_id: Ipv4Addr, remote_id: Ipv4Addr) -> CollisionWinner {
    if u32::from(local_id) > u32::from(remote_id) {
        CollisionWinner::Local
    } else {
        CollisionWinner::Remote
    }
}

fn secs(s: u16) -> Duration {
    Duration::from_secs(u64::from(s))
}

impl Session {
    /// A new connect-retry interval (a config change): the next time the timer is
    /// armed, not the running one.
    pub fn set_connect_retry(&mut self, retry: Duration) {
        self.config.connect_retry = retry;
    }

    pub fn new(config: PeerConfig) -> Session {
        Session {
            config,
            state: State::Idle,
            negotiated: None,
            stopped: true,
            warned_prefix_limit: false,
            counters: Counters::default(),
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn config(&self) -> &PeerConfig {
        &self.config
    }

    /// How long a message from the peer may be now: 4096 bytes until both OPENs offered
    /// extended messages (RFC 8654), then 65535 for the rest of the session.
    pub fn max_message_len(&self) -> usize {
        match (self.state, &self.negotiated) {
            (State::OpenConfirm | State::Established, Some(n)) => n.max_message_len(),
            _ => super::message::MAX_LEN,
        }
    }

    /// The OPEN to send now: after a previous session, graceful restart's Forwarding
    /// State bits say our forwarding was kept.
    pub fn open(&self) -> OpenRepr {
        self.config
            .open_with(self.counters.established_transitions > 0)
    }

    /// What was agreed, from OpenConfirm on.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    /// The codec for this session's messages (2-octet AS until negotiated).
    pub fn codec(&self) -> Codec {
        self.negotiated
            .as_ref()
            .map(Negotiated::codec)
            .unwrap_or_default()
    }

    /// True where a second connection from the same peer is a collision to resolve
    /// (RFC 4271 6.8: OpenConfirm, and OpenSent once the peer's identifier is known).
    pub fn collision_relevant(&self) -> bool {
        matches!(self.state, State::OpenSent | State::OpenConfirm)
    }

    /// Checks a received OPEN against the configuration and computes what both sides
    /// agreed on (RFC 4271 6.2, RFC 5492, RFC 6793, RFC 8950).
    pub fn negotiate(&self, open: &OpenRepr) -> Result<Negotiated, Notification> {
        let c = &self.config;
        let peer_as = open.asn();
        if peer_as != c.peer_as {
            return Err(Notification::with_data(
                OPEN_ERROR,
                OPEN_BAD_PEER_AS,
                &open.my_as.to_be_bytes(),
            ));
        }
        let id = open.bgp_id;
        if id.is_unspecified()
            || id.is_multicast()
            || id.is_broadcast()
            || (!c.ebgp() && id == c.router_id)
        {
            return Err(Notification::with_data(
                OPEN_ERROR,
                OPEN_BAD_BGP_ID,
                &id.octets(),
            ));
        }
        if open.hold_time != 0 && open.hold_time < c.min_hold_time {
            return Err(Notification::new(OPEN_ERROR, OPEN_BAD_HOLD_TIME));
        }
        let hold_time = if open.hold_time == 0 || c.hold_time == 0 {
            0
        } else {
            open.hold_time.min(c.hold_time)
        };
        let theirs = open.families();
        let families = c
            .families
            .iter()
            .copied()
            .filter(|f| theirs.contains(f))
            .collect();
        let four_octet_as = open.has(|c| matches!(c, Capability::FourOctetAs(_)));
        let extended_next_hop = c.extended_next_hop
            && open.has(|cap| match cap {
                Capability::ExtendedNextHop(v) => v.contains(&(Family::Ipv4Unicast, AFI_IPV6)),
                _ => false,
            });
        Ok(Negotiated {
            peer_as,
            peer_id: id,
            hold_time,
            four_octet_as,
            families,
            extended_next_hop,
            route_refresh: open.has(|c| matches!(c, Capability::RouteRefresh)),
            extended_message: c.extended_message
                && open.has(|c| matches!(c, Capability::ExtendedMessage)),
            ebgp: c.ebgp(),
            graceful_restart: c
                .graceful_restart
                .and_then(|_| PeerGracefulRestart::from_open(open)),
        })
    }

    /// The transition function.
    pub fn handle(&mut self, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        if matches!(
            event,
            Event::BgpOpen(_)
                | Event::KeepAliveMsg
                | Event::UpdateMsg(_)
                | Event::RouteRefreshMsg(_)
                | Event::NotifMsg(_)
        ) {
            self.counters.messages_in += 1;
        }
        self.step(event, &mut out);
        self.counters.messages_out +=
            out.iter().filter(|a| matches!(a, Action::Send(_))).count() as u64;
        out
    }

    fn start(&mut self, out: &mut Vec<Action>) {
        self.stopped = false;
        self.warned_prefix_limit = false;
        out.push(Action::StopTimer(Timer::IdleHold));
        if self.config.passive {
            // Wait for the peer; nothing to retry.
            self.state = State::Active;
        } else {
            out.push(Action::StartTimer(
                Timer::ConnectRetry,
                self.config.connect_retry,
            ));
            out.push(Action::Connect);
            self.state = State::Connect;
        }
    }

    /// Back to Idle: close the transport, stop every timer, report a session that was up,
    /// and arm the automatic restart unless stopped.
    fn go_idle(&mut self, reason: DownReason, out: &mut Vec<Action>) {
        out.push(Action::Close);
        for t in [Timer::ConnectRetry, Timer::Hold, Timer::Keepalive] {
            out.push(Action::StopTimer(t));
        }
        if self.state == State::Established {
            out.push(Action::SessionDown(reason.clone()));
        }
        if reason != DownReason::AdminStop {
            self.counters.last_error = Some(reason);
        }
        self.negotiated = None;
        self.state = State::Idle;
        if !self.stopped {
            out.push(Action::StartTimer(Timer::IdleHold, self.config.idle_hold));
        }
    }

    fn notify_and_idle(&mut self, n: Notification, reason: DownReason, out: &mut Vec<Action>) {
        out.push(Action::Send(Message::Notification(n)));
        self.go_idle(reason, out);
    }

    fn fsm_error(&mut self, out: &mut Vec<Action>) {
        // RFC 6608 subcodes: 1 in OpenSent, 2 in OpenConfirm, 3 in Established.
        let sub = match self.state {
            State::OpenSent => 1,
            State::OpenConfirm => 2,
            State::Established => 3,
            _ => 0,
        };
        let n = Notification::new(FSM_ERROR, sub);
        self.notify_and_idle(n.clone(), DownReason::NotificationSent(n), out);
    }

    fn step(&mut self, event: Event, out: &mut Vec<Action>) {
        use State::*;
        match (self.state, event) {
            (Idle, Event::ManualStart) => self.start(out),
            (Idle, Event::IdleHoldTimerExpires) if !self.stopped => self.start(out),
            (Idle, Event::IncomingWhileIdle) if !self.stopped => {
                out.push(Action::StopTimer(Timer::IdleHold));
                self.state = State::Active;
            }
            (Idle, Event::ManualStop) => {
                self.stopped = true;
                out.push(Action::StopTimer(Timer::IdleHold));
            }
            (Idle, _) => {}

            (_, Event::ManualStart) => {}
            (_, Event::ManualStop) => {
                self.stopped = true;
                if matches!(self.state, OpenSent | OpenConfirm | Established) {
                    out.push(Action::Send(Message::Notification(Notification::new(
                        CEASE,
                        CEASE_ADMIN_SHUTDOWN,
                    ))));
                }
                out.push(Action::StopTimer(Timer::IdleHold));
                self.go_idle(DownReason::AdminStop, out);
            }

            (Connect | Active, Event::ConnectRetryTimerExpires) => {
                self.counters.connect_retries += 1;
                if self.config.passive {
                    return;
                }
                if self.state == Connect {
                    out.push(Action::Close);
                }
                out.push(Action::StartTimer(
                    Timer::ConnectRetry,
                    self.config.connect_retry,
                ));
                out.push(Action::Connect);
                self.state = Connect;
            }
            (Connect | Active, Event::TcpConnectionConfirmed) => {
                out.push(Action::StopTimer(Timer::ConnectRetry));
                out.push(Action::Send(Message::Open(self.open())));
                out.push(Action::StartTimer(Timer::Hold, OPEN_HOLD));
                self.state = OpenSent;
            }
            (Connect, Event::TcpConnectionFails) => {
                // Keep the connect retry timer: the next attempt comes from Active.
                out.push(Action::Close);
                self.state = Active;
            }
            (Connect | Active, Event::PeerSilent) => {}
            (_, Event::IncomingWhileIdle) => {}
            (Connect | Active, Event::AdjRibInCount(_)) => {}
            (Active, Event::TcpConnectionFails) => self.go_idle(DownReason::TransportFailed, out),
            (Connect | Active, Event::DecodeError(n)) => {
                self.notify_and_idle(n.clone(), DownReason::NotificationSent(n), out)
            }
            (Connect | Active, _) => self.go_idle(DownReason::TransportFailed, out),

            (OpenSent, Event::BgpOpen(open)) => match self.negotiate(&open) {
                Ok(neg) => {
                    out.push(Action::StopTimer(Timer::ConnectRetry));
                    out.push(Action::Send(Message::Keepalive));
                    self.arm_session_timers(&neg, out);
                    self.negotiated = Some(neg);
                    self.state = OpenConfirm;
                }
                Err(n) => self.notify_and_idle(n.clone(), DownReason::NotificationSent(n), out),
            },

            (OpenConfirm, Event::KeepAliveMsg) => {
                if let Some(neg) = self.negotiated.clone() {
                    self.restart_hold(&neg, out);
                    self.counters.established_transitions += 1;
                    self.state = Established;
                    out.push(Action::SessionUp(neg));
                }
            }

            (Established, Event::KeepAliveMsg) => {
                if let Some(neg) = self.negotiated.clone() {
                    self.restart_hold(&neg, out);
                }
            }
            (Established, Event::UpdateMsg(u)) => {
                self.counters.updates_in += 1;
                if let Some(neg) = self.negotiated.clone() {
                    self.restart_hold(&neg, out);
                }
                out.push(Action::Update(u));
            }
            (Established, Event::RouteRefreshMsg(r)) => {
                // RFC 2918 4: a family that was not negotiated is ignored.
                let fam = Family::from_afi_safi(r.afi, r.safi);
                if let (Some(f), Some(neg)) = (fam, &self.negotiated) {
                    if neg.families.contains(&f) {
                        out.push(Action::RouteRefresh(f));
                    }
                }
            }
            (Established, Event::AdjRibInCount(n)) => {
                if let Some(limit) = self.config.prefix_limit {
                    if n > limit.max {
                        match limit.action {
                            PrefixLimitAction::Stop => {
                                self.stopped = true;
                                self.notify_and_idle(
                                    Notification::new(CEASE, CEASE_MAX_PREFIXES),
                                    DownReason::PrefixLimit,
                                    out,
                                );
                            }
                            PrefixLimitAction::Warn if !self.warned_prefix_limit => {
                                self.warned_prefix_limit = true;
                                out.push(Action::PrefixLimitWarning(n));
                            }
                            PrefixLimitAction::Warn => {}
                        }
                    }
                }
            }

            (OpenConfirm | Established, Event::KeepaliveTimerExpires) => {
                out.push(Action::Send(Message::Keepalive));
                if let Some(neg) = &self.negotiated {
                    if neg.hold_time != 0 {
                        out.push(Action::StartTimer(Timer::Keepalive, neg.keepalive()));
                    }
                }
            }

            (OpenSent | OpenConfirm | Established, Event::HoldTimerExpires) => {
                let n = Notification::new(HOLD_TIMER_EXPIRED, 0);
                self.notify_and_idle(n, DownReason::HoldTimerExpired, out);
            }
            (OpenSent | OpenConfirm | Established, Event::NotifMsg(n)) => {
                self.go_idle(DownReason::NotificationReceived(n), out)
            }
            (OpenSent | OpenConfirm | Established, Event::DecodeError(n)) => {
                self.notify_and_idle(n.clone(), DownReason::NotificationSent(n), out)
            }
            (OpenSent | OpenConfirm | Established, Event::TcpConnectionFails) => {
                self.go_idle(DownReason::TransportFailed, out)
            }
            (OpenSent | OpenConfirm | Established, Event::PeerSilent) => {
                // The tunnel is dead: a NOTIFICATION would not arrive.
                self.go_idle(DownReason::PeerSilent, out)
            }
            (OpenSent | OpenConfirm, Event::OpenCollisionDump) => {
                let n = Notification::new(CEASE, CEASE_COLLISION);
                self.notify_and_idle(n, DownReason::Collision, out);
            }
            (OpenSent | OpenConfirm, Event::AdjRibInCount(_))
            | (OpenSent | OpenConfirm | Established, Event::ConnectRetryTimerExpires)
            | (OpenSent | OpenConfirm | Established, Event::IdleHoldTimerExpires)
            | (OpenSent, Event::KeepaliveTimerExpires) => {}
            (OpenSent | OpenConfirm | Established, _) => self.fsm_error(out),
        }
    }

    fn arm_session_timers(&self, neg: &Negotiated, out: &mut Vec<Action>) {
        if neg.hold_time == 0 {
            out.push(Action::StopTimer(Timer::Hold));
            out.push(Action::StopTimer(Timer::Keepalive));
        } else {
            out.push(Action::StartTimer(Timer::Hold, secs(neg.hold_time)));
            out.push(Action::StartTimer(Timer::Keepalive, neg.keepalive()));
        }
    }

    fn restart_hold(&self, neg: &Negotiated, out: &mut Vec<Action>) {
        if neg.hold_time != 0 {
            out.push(Action::StartTimer(Timer::Hold, secs(neg.hold_time)));
        }
    }
}

#[cfg(test)]
mod tests;
