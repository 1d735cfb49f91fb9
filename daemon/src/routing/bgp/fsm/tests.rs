//! Session FSM tests: each feeds numbered events and checks the actions and state.
//! Timers never fire by themselves; their expiries are events.

use super::*;
use crate::routing::bgp::attr::{PathAttrs, AFI_IPV4};

const LOCAL_ID: Ipv4Addr = Ipv4Addr::new(10, 255, 0, 1);
const PEER_ID: Ipv4Addr = Ipv4Addr::new(10, 255, 0, 2);

fn config() -> PeerConfig {
    PeerConfig::new(65001, 65002, LOCAL_ID)
}

fn peer_open(asn: u32, hold: u16) -> OpenRepr {
    let mut c = PeerConfig::new(asn, 65001, PEER_ID);
    c.hold_time = hold;
    c.open()
}

fn sent(actions: &[Action]) -> Vec<&Message> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(m) => Some(m),
            _ => None,
        })
        .collect()
}

fn notification(actions: &[Action]) -> Option<&Notification> {
    sent(actions).into_iter().find_map(|m| match m {
        Message::Notification(n) => Some(n),
        _ => None,
    })
}

/// Drives a session to Established and returns it.
fn established(config: PeerConfig) -> Session {
    let mut s = Session::new(config);
    s.handle(Event::ManualStart);
    s.handle(Event::TcpConnectionConfirmed);
    s.handle(Event::BgpOpen(peer_open(65002, 90)));
    let a = s.handle(Event::KeepAliveMsg);
    assert!(a.iter().any(|a| matches!(a, Action::SessionUp(_))));
    assert_eq!(s.state(), State::Established);
    s
}

#[test]
fn happy_path_to_established() {
    let mut s = Session::new(config());
    assert_eq!(s.state(), State::Idle);

    let a = s.handle(Event::ManualStart);
    assert_eq!(s.state(), State::Connect);
    assert!(a.contains(&Action::Connect));
    assert!(a.contains(&Action::StartTimer(
        Timer::ConnectRetry,
        Duration::from_secs(120)
    )));

    let a = s.handle(Event::TcpConnectionConfirmed);
    assert_eq!(s.state(), State::OpenSent);
    assert_eq!(
        sent(&a),
        vec![&Message::Open(s.config().open())],
        "an OPEN and nothing else"
    );
    assert!(a.contains(&Action::StartTimer(Timer::Hold, Duration::from_secs(240))));

    let a = s.handle(Event::BgpOpen(peer_open(65002, 30)));
    assert_eq!(s.state(), State::OpenConfirm);
    assert_eq!(sent(&a), vec![&Message::Keepalive]);
    assert!(a.contains(&Action::StartTimer(Timer::Hold, Duration::from_secs(30))));
    assert!(a.contains(&Action::StartTimer(
        Timer::Keepalive,
        Duration::from_secs(10)
    )));

    let a = s.handle(Event::KeepAliveMsg);
    assert_eq!(s.state(), State::Established);
    let up = a.iter().find_map(|a| match a {
        Action::SessionUp(n) => Some(n.clone()),
        _ => None,
    });
    assert_eq!(
        up,
        Some(Negotiated {
            peer_as: 65002,
            peer_id: PEER_ID,
            hold_time: 30,
            four_octet_as: true,
            families: vec![Family::Ipv4Unicast, Family::Ipv6Unicast],
            extended_next_hop: false,
            route_refresh: true,
            extended_message: true,
            ebgp: true,
            graceful_restart: None,
        })
    );
    assert_eq!(s.max_message_len(), 65535, "both offered extended messages");
    assert_eq!(
        s.codec(),
        Codec {
            four_octet_as: true
        }
    );

    // Keepalives keep it up; the keepalive timer sends one and re-arms.
    let a = s.handle(Event::KeepaliveTimerExpires);
    assert_eq!(sent(&a), vec![&Message::Keepalive]);
    assert!(a.contains(&Action::StartTimer(
        Timer::Keepalive,
        Duration::from_secs(10)
    )));
    let a = s.handle(Event::KeepAliveMsg);
    assert_eq!(
        a,
        vec![Action::StartTimer(Timer::Hold, Duration::from_secs(30))]
    );

    // An UPDATE restarts the hold timer and goes to the RIB layer.
    let u = UpdateRepr {
        attrs: PathAttrs::default(),
        ..UpdateRepr::default()
    };
    let a = s.handle(Event::UpdateMsg(Box::new(u.clone())));
    assert_eq!(
        a,
        vec![
            Action::StartTimer(Timer::Hold, Duration::from_secs(30)),
            Action::Update(Box::new(u))
        ]
    );
    assert_eq!(s.counters.messages_in, 4);
    assert_eq!(s.counters.messages_out, 3);
}

#[test]
fn connect_failure_retries_from_active() {
    let mut s = Session::new(config());
    s.handle(Event::ManualStart);
    let a = s.handle(Event::TcpConnectionFails);
    assert_eq!(s.state(), State::Active);
    assert_eq!(a, vec![Action::Close]);
    let a = s.handle(Event::ConnectRetryTimerExpires);
    assert_eq!(s.state(), State::Connect);
    assert!(a.contains(&Action::Connect));
    // The peer's own connection may arrive while in Active too.
    s.handle(Event::TcpConnectionFails);
    s.handle(Event::TcpConnectionConfirmed);
    assert_eq!(s.state(), State::OpenSent);
}

#[test]
fn passive_waits_without_connecting() {
    let mut c = config();
    c.passive = true;
    let mut s = Session::new(c);
    let a = s.handle(Event::ManualStart);
    assert_eq!(s.state(), State::Active);
    assert!(!a.contains(&Action::Connect));
    assert!(s.handle(Event::ConnectRetryTimerExpires).is_empty());
    assert_eq!(s.state(), State::Active);
    s.handle(Event::TcpConnectionConfirmed);
    assert_eq!(s.state(), State::OpenSent);
}

#[test]
fn hold_timer_expiry_sends_notification_and_restarts_later() {
    let mut s = established(config());
    let a = s.handle(Event::HoldTimerExpires);
    assert_eq!(s.state(), State::Idle);
    assert_eq!(
        notification(&a),
        Some(&Notification::new(HOLD_TIMER_EXPIRED, 0))
    );
    assert!(a.contains(&Action::SessionDown(DownReason::HoldTimerExpired)));
    assert!(a.contains(&Action::Close));
    assert!(a.contains(&Action::StartTimer(Timer::IdleHold, Duration::from_secs(5))));
    assert_eq!(s.negotiated(), None);
    // Automatic restart.
    let a = s.handle(Event::IdleHoldTimerExpires);
    assert_eq!(s.state(), State::Connect);
    assert!(a.contains(&Action::Connect));
}

#[test]
fn hold_timer_in_open_sent() {
    let mut s = Session::new(config());
    s.handle(Event::ManualStart);
    s.handle(Event::TcpConnectionConfirmed);
    let a = s.handle(Event::HoldTimerExpires);
    assert_eq!(
        notification(&a),
        Some(&Notification::new(HOLD_TIMER_EXPIRED, 0))
    );
    // Never Established: no SessionDown.
    assert!(!a.iter().any(|a| matches!(a, Action::SessionDown(_))));
    assert_eq!(s.state(), State::Idle);
}

fn open_sent() -> Session {
    let mut s = Session::new(config());
    s.handle(Event::ManualStart);
    s.handle(Event::TcpConnectionConfirmed);
    s
}

#[test]
fn bad_open_wrong_as() {
    let mut s = open_sent();
    let a = s.handle(Event::BgpOpen(peer_open(65099, 90)));
    assert_eq!(
        notification(&a),
        Some(&Notification::with_data(
            OPEN_ERROR,
            OPEN_BAD_PEER_AS,
            &[0xfe, 0x4b]
        ))
    );
    assert_eq!(s.state(), State::Idle);
    // A 4-octet AS is checked through the capability, not the AS_TRANS field.
    let mut s = open_sent();
    let a = s.handle(Event::BgpOpen(peer_open(4_200_000_000, 90)));
    assert_eq!(
        notification(&a),
        Some(&Notification::with_data(
            OPEN_ERROR,
            OPEN_BAD_PEER_AS,
            &AS_TRANS.to_be_bytes()
        ))
    );
}

#[test]
fn bad_open_hold_time_and_identifier() {
    let mut c = config();
    c.min_hold_time = 9;
    let mut s = Session::new(c);
    s.handle(Event::ManualStart);
    s.handle(Event::TcpConnectionConfirmed);
    let a = s.handle(Event::BgpOpen(peer_open(65002, 6)));
    assert_eq!(
        notification(&a),
        Some(&Notification::new(OPEN_ERROR, OPEN_BAD_HOLD_TIME))
    );

    let mut s = open_sent();
    let mut o = peer_open(65002, 90);
    o.bgp_id = Ipv4Addr::UNSPECIFIED;
    let a = s.handle(Event::BgpOpen(o));
    assert_eq!(notification(&a).map(|n| n.subcode), Some(OPEN_BAD_BGP_ID));

    // iBGP with our own identifier.
    let mut c = config();
    c.peer_as = 65001;
    let mut s = Session::new(c);
    s.handle(Event::ManualStart);
    s.handle(Event::TcpConnectionConfirmed);
    let mut o = peer_open(65001, 90);
    o.bgp_id = LOCAL_ID;
    let a = s.handle(Event::BgpOpen(o));
    assert_eq!(notification(&a).map(|n| n.subcode), Some(OPEN_BAD_BGP_ID));
}

#[test]
fn hold_time_zero_means_no_keepalives() {
    let mut s = open_sent();
    let a = s.handle(Event::BgpOpen(peer_open(65002, 0)));
    assert!(a.contains(&Action::StopTimer(Timer::Hold)));
    assert!(!a
        .iter()
        .any(|a| matches!(a, Action::StartTimer(Timer::Keepalive | Timer::Hold, _))));
    assert_eq!(s.negotiated().map(|n| n.hold_time), Some(0));
}

#[test]
fn negotiation_of_families_and_extended_next_hop() {
    let mut c = config();
    c.extended_next_hop = true;
    let s = Session::new(c);
    // A peer with IPv6 only and extended next hop.
    let mut pc = PeerConfig::new(65002, 65001, PEER_ID);
    pc.families = vec![Family::Ipv6Unicast];
    pc.extended_next_hop = true;
    let n = s.negotiate(&pc.open()).expect("acceptable");
    assert_eq!(n.families, vec![Family::Ipv6Unicast]);
    assert!(n.extended_next_hop);
    // A peer without capabilities: IPv4 unicast, 2-octet AS, no route refresh.
    let bare = OpenRepr {
        my_as: 65002,
        hold_time: 180,
        bgp_id: PEER_ID,
        capabilities: vec![],
    };
    let n = s.negotiate(&bare).expect("acceptable");
    assert_eq!(n.families, vec![Family::Ipv4Unicast]);
    assert!(!n.four_octet_as && !n.route_refresh && !n.extended_next_hop);
    assert_eq!(n.hold_time, 90);
}

#[test]
fn unexpected_messages_are_fsm_errors() {
    let mut s = open_sent();
    let a = s.handle(Event::KeepAliveMsg);
    assert_eq!(notification(&a), Some(&Notification::new(FSM_ERROR, 1)));
    let mut s = open_sent();
    s.handle(Event::BgpOpen(peer_open(65002, 90)));
    let a = s.handle(Event::UpdateMsg(Box::default()));
    assert_eq!(notification(&a), Some(&Notification::new(FSM_ERROR, 2)));
    let mut s = established(config());
    let a = s.handle(Event::BgpOpen(peer_open(65002, 90)));
    assert_eq!(notification(&a), Some(&Notification::new(FSM_ERROR, 3)));
    assert!(a.iter().any(|a| matches!(a, Action::SessionDown(_))));
}

#[test]
fn decode_error_is_sent_and_session_drops() {
    let mut s = established(config());
    let n = Notification::new(UPDATE_ERROR, 10);
    let a = s.handle(Event::DecodeError(n.clone()));
    assert_eq!(notification(&a), Some(&n));
    assert!(a.contains(&Action::SessionDown(DownReason::NotificationSent(n))));
}

#[test]
fn notification_received_drops_without_reply() {
    let mut s = established(config());
    let n = Notification::new(CEASE, CEASE_ADMIN_SHUTDOWN);
    let a = s.handle(Event::NotifMsg(n.clone()));
    assert!(sent(&a).is_empty());
    assert!(a.contains(&Action::SessionDown(DownReason::NotificationReceived(n))));
    assert_eq!(s.state(), State::Idle);
}

#[test]
fn peer_silent_drops_at_once() {
    let mut s = established(config());
    let a = s.handle(Event::PeerSilent);
    assert_eq!(s.state(), State::Idle);
    assert!(sent(&a).is_empty(), "nothing can reach a silent peer");
    assert!(a.contains(&Action::SessionDown(DownReason::PeerSilent)));
    assert!(a.contains(&Action::Close));
    assert_eq!(s.counters.last_error, Some(DownReason::PeerSilent));
    // While connecting it changes nothing.
    let mut s = Session::new(config());
    s.handle(Event::ManualStart);
    assert!(s.handle(Event::PeerSilent).is_empty());
    assert_eq!(s.state(), State::Connect);
}

#[test]
fn manual_stop_sends_cease_and_stays_idle() {
    let mut s = established(config());
    let a = s.handle(Event::ManualStop);
    assert_eq!(
        notification(&a),
        Some(&Notification::new(CEASE, CEASE_ADMIN_SHUTDOWN))
    );
    assert!(a.contains(&Action::SessionDown(DownReason::AdminStop)));
    assert!(!a
        .iter()
        .any(|a| matches!(a, Action::StartTimer(Timer::IdleHold, _))));
    assert!(s.handle(Event::IdleHoldTimerExpires).is_empty());
    assert_eq!(s.state(), State::Idle);
}

#[test]
fn collision_relevant_states_and_winner() {
    let mut s = Session::new(config());
    assert!(!s.collision_relevant());
    s.handle(Event::ManualStart);
    assert!(!s.collision_relevant());
    s.handle(Event::TcpConnectionConfirmed);
    assert!(s.collision_relevant());
    s.handle(Event::BgpOpen(peer_open(65002, 90)));
    assert_eq!(s.state(), State::OpenConfirm);
    assert!(s.collision_relevant());
    // The peer has the higher identifier: its connection wins, ours is dumped.
    assert_eq!(
        resolve_collision(LOCAL_ID, PEER_ID),
        CollisionWinner::Remote
    );
    assert_eq!(resolve_collision(PEER_ID, LOCAL_ID), CollisionWinner::Local);
    let a = s.handle(Event::OpenCollisionDump);
    assert_eq!(
        notification(&a),
        Some(&Notification::new(CEASE, CEASE_COLLISION))
    );
    assert_eq!(s.state(), State::Idle);
    let s = established(config());
    assert!(!s.collision_relevant());
}

#[test]
fn prefix_limit_stop_and_warn() {
    let mut c = config();
    c.prefix_limit = Some(PrefixLimit {
        max: 10,
        action: PrefixLimitAction::Stop,
    });
    let mut s = established(c.clone());
    assert!(s.handle(Event::AdjRibInCount(10)).is_empty());
    let a = s.handle(Event::AdjRibInCount(11));
    assert_eq!(
        notification(&a),
        Some(&Notification::new(CEASE, CEASE_MAX_PREFIXES))
    );
    assert!(a.contains(&Action::SessionDown(DownReason::PrefixLimit)));
    assert!(
        s.handle(Event::IdleHoldTimerExpires).is_empty(),
        "stays down"
    );

    c.prefix_limit = Some(PrefixLimit {
        max: 10,
        action: PrefixLimitAction::Warn,
    });
    let mut s = established(c);
    assert_eq!(
        s.handle(Event::AdjRibInCount(11)),
        vec![Action::PrefixLimitWarning(11)]
    );
    assert!(s.handle(Event::AdjRibInCount(12)).is_empty(), "warns once");
    assert_eq!(s.state(), State::Established);
}

#[test]
fn route_refresh_only_for_negotiated_families() {
    let mut c = config();
    c.families = vec![Family::Ipv4Unicast];
    let mut s = established(c);
    let rr = |afi| {
        Event::RouteRefreshMsg(RouteRefreshRepr {
            afi,
            subtype: 0,
            safi: 1,
        })
    };
    assert!(s
        .handle(rr(AFI_IPV4))
        .contains(&Action::RouteRefresh(Family::Ipv4Unicast)));
    assert!(!s
        .handle(rr(AFI_IPV6))
        .iter()
        .any(|a| matches!(a, Action::RouteRefresh(_))));
}

#[test]
fn replay_is_deterministic() {
    let events = || {
        vec![
            Event::ManualStart,
            Event::TcpConnectionFails,
            Event::ConnectRetryTimerExpires,
            Event::TcpConnectionConfirmed,
            Event::BgpOpen(peer_open(65002, 9)),
            Event::KeepAliveMsg,
            Event::KeepaliveTimerExpires,
            Event::PeerSilent,
            Event::IdleHoldTimerExpires,
        ]
    };
    let run = || {
        let mut s = Session::new(config());
        events()
            .into_iter()
            .map(|e| (s.handle(e), s.state()))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(), run());
    assert_eq!(run().last().map(|(_, st)| *st), Some(State::Connect));
}

#[test]
fn graceful_restart_capability_offered_only_when_enabled_and_parsed() {
    let gr = |o: &OpenRepr| {
        o.capabilities
            .iter()
            .find(|c| matches!(c, Capability::Other { code: 64, .. }))
            .cloned()
    };
    assert_eq!(gr(&config().open()), None, "off by default");
    let mut on = config();
    on.graceful_restart = Some(120);
    let cap = |f: u8| Capability::Other {
        code: 64,
        data: vec![0x00, 120, 0, 1, 1, f, 0, 2, 1, f],
    };
    assert_eq!(
        gr(&on.open()),
        Some(cap(0)),
        "restart time, no R bit, our families without F on a first session"
    );
    // Once a session existed, the next OPEN says forwarding was kept.
    let mut s = established(on.clone());
    assert_eq!(gr(&s.open()), Some(cap(0x80)));
    s.handle(Event::TcpConnectionFails);
    s.handle(Event::IdleHoldTimerExpires);
    let a = s.handle(Event::TcpConnectionConfirmed);
    let Some(Message::Open(o)) = sent(&a).first().copied() else {
        panic!("an OPEN")
    };
    assert_eq!(gr(o), Some(cap(0x80)));

    // The peer restarted (R), keeps IPv4 forwarding (F), not IPv6; an unknown family is
    // skipped.
    let mut theirs = peer_open(65002, 90);
    theirs.capabilities.push(Capability::Other {
        code: 64,
        data: vec![
            0x80 | 0x01,
            0x2c, // R, 300 s
            0,
            1,
            1,
            0x80, // IPv4 unicast, F
            0,
            2,
            1,
            0x00, // IPv6 unicast
            0,
            1,
            128,
            0x80, // IPv4 VPN: unknown here
        ],
    });
    let want = PeerGracefulRestart {
        restart_time: 300,
        restarting: true,
        families: vec![(Family::Ipv4Unicast, true), (Family::Ipv6Unicast, false)],
    };
    assert_eq!(PeerGracefulRestart::from_open(&theirs), Some(want.clone()));
    assert!(want.forwarding_kept(Family::Ipv4Unicast));
    assert!(!want.forwarding_kept(Family::Ipv6Unicast));
    let neg = |c: PeerConfig, o: &OpenRepr| Session::new(c).negotiate(o).expect("accepted");
    assert_eq!(neg(on.clone(), &theirs).graceful_restart, Some(want));
    assert_eq!(
        neg(config(), &theirs).graceful_restart,
        None,
        "negotiated only when we offered it too"
    );
    assert_eq!(
        neg(on.clone(), &peer_open(65002, 90)).graceful_restart,
        None
    );
    // Both sides' own OPENs round-trip through the codec.
    let bytes = Message::Open(on.open()).emit(Codec::default());
    let Ok(Message::Open(back)) = Message::parse(&bytes, Codec::default()) else {
        panic!("parses");
    };
    assert_eq!(
        PeerGracefulRestart::from_open(&back),
        Some(PeerGracefulRestart {
            restart_time: 120,
            restarting: false,
            families: vec![(Family::Ipv4Unicast, false), (Family::Ipv6Unicast, false)],
        })
    );
    // Malformed: ignored, as if not offered.
    for data in [vec![0x00], vec![0, 120, 0, 1, 1]] {
        assert_eq!(PeerGracefulRestart::parse(&data), None, "{data:?}");
    }
}
