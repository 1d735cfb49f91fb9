//! The layers together: two speakers wired back to back through bytes (emit, framer,
//! parse), a session brought up, routes exchanged over IPv4, IPv6 and IPv4-over-IPv6
//! next hops, and torn down by a silent tunnel. The seed of the instance's simulated
//! network tests; timers are not needed here, so their actions are dropped.

use super::adj_out::{AdjRibOut, Export, OutSession};
use super::attr::{AsPath, MpNextHop, Origin, PathAttrs};
use super::decision::{Decision, DecisionConfig, PeerInfo, Resolution};
use super::fsm::{Action, Event, Negotiated, PeerConfig, Session, State};
use super::message::{Framer, Message, MAX_LEN};
use crate::dataplane::{NextHop, TunnelId};
use crate::routing::rib::RouteSource;
use ipnetwork::IpNetwork;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

struct Speaker {
    session: Session,
    framer: Framer,
    decision: Decision,
    adj_out: AdjRibOut,
    /// The peer's address as this side sees it.
    peer_addr: IpAddr,
    up: Option<Negotiated>,
}

impl Speaker {
    fn new(local_as: u32, peer_as: u32, id: u8, peer_addr: IpAddr, passive: bool) -> Speaker {
        let mut c = PeerConfig::new(local_as, peer_as, Ipv4Addr::new(10, 255, 0, id));
        c.passive = passive;
        c.extended_next_hop = true;
        c.hold_time = 9;
        Speaker {
            session: Session::new(c),
            framer: Framer::new(),
            decision: Decision::new(local_as, DecisionConfig::default()),
            adj_out: AdjRibOut::default(),
            peer_addr,
            up: None,
        }
    }

    /// Handles one event; returns the bytes to put on the wire.
    fn handle(&mut self, e: Event) -> Vec<u8> {
        let mut wire = Vec::new();
        for a in self.session.handle(e) {
            match a {
                Action::Send(m) => wire.extend(m.emit(self.session.codec())),
                Action::SessionUp(n) => {
                    self.decision.peer_up(PeerInfo {
                        addr: self.peer_addr,
                        router_id: n.peer_id,
                        asn: n.peer_as,
                        ebgp: n.ebgp,
                        four_octet_as: n.four_octet_as,
                        rr_client: false,
                    });
                    self.up = Some(n);
                }
                Action::SessionDown(_) => {
                    self.decision.peer_down(self.peer_addr);
                    self.adj_out.clear();
                    self.up = None;
                }
                Action::Update(u) => {
                    self.decision.update(self.peer_addr, &u);
                }
                _ => {}
            }
        }
        wire
    }

    /// Bytes from the peer: frame, parse with the session's codec, handle.
    fn receive(&mut self, bytes: &[u8]) -> Vec<u8> {
        self.framer.push(bytes);
        let mut wire = Vec::new();
        while let Some(m) = self.framer.next_message() {
            let ev = match m.and_then(|b| Message::parse(&b, self.session.codec())) {
                Ok(Message::Open(o)) => Event::BgpOpen(o),
                Ok(Message::Keepalive) => Event::KeepAliveMsg,
                Ok(Message::Update(u)) => Event::UpdateMsg(Box::new(u)),
                Ok(Message::Notification(n)) => Event::NotifMsg(n),
                Ok(Message::RouteRefresh(r)) => Event::RouteRefreshMsg(r),
                Err(n) => Event::DecodeError(n),
            };
            wire.extend(self.handle(ev));
        }
        wire
    }

    fn announce(&mut self, wanted: &BTreeMap<IpNetwork, Arc<Export>>) -> Vec<u8> {
        let Some(n) = &self.up else { return Vec::new() };
        let s = OutSession {
            codec: n.codec(),
            max_len: MAX_LEN,
            families: n.families.clone(),
            extended_next_hop: n.extended_next_hop,
        };
        let codec = n.codec();
        self.adj_out
            .sync(wanted, &s)
            .into_iter()
            .flat_map(|u| Message::Update(u).emit(codec))
            .collect()
    }
}

/// Delivers bytes back and forth until both sides are quiet.
fn exchange(a: &mut Speaker, b: &mut Speaker, mut to_b: Vec<u8>, mut to_a: Vec<u8>) {
    for _ in 0..16 {
        if to_a.is_empty() && to_b.is_empty() {
            return;
        }
        let from_b = b.receive(&std::mem::take(&mut to_b));
        let from_a = a.receive(&std::mem::take(&mut to_a));
        to_a = from_b;
        to_b = from_a;
    }
    panic!("no quiescence");
}

fn net(s: &str) -> IpNetwork {
    s.parse().expect("prefix")
}

fn resolve(_: &PeerInfo, _: IpAddr) -> Option<Resolution> {
    Some(Resolution {
        next_hop: NextHop::Tunnel(TunnelId(1)),
        igp_cost: 0,
        via: None,
    })
}

#[test]
fn two_speakers_exchange_routes_and_drop_on_silence() {
    let ll_a: Ipv6Addr = "fe80::a".parse().expect("addr");
    let ll_b: Ipv6Addr = "fe80::b".parse().expect("addr");
    let mut a = Speaker::new(65001, 4_200_000_002, 1, IpAddr::V6(ll_b), false);
    let mut b = Speaker::new(4_200_000_002, 65001, 2, IpAddr::V6(ll_a), true);

    b.handle(Event::ManualStart);
    assert_eq!(b.session.state(), State::Active);
    a.handle(Event::ManualStart);
    assert_eq!(a.session.state(), State::Connect);
    // The transport comes up on both ends.
    let to_b = a.handle(Event::TcpConnectionConfirmed);
    let to_a = b.handle(Event::TcpConnectionConfirmed);
    exchange(&mut a, &mut b, to_b, to_a);
    assert_eq!(a.session.state(), State::Established);
    assert_eq!(b.session.state(), State::Established);
    let n = a.up.clone().expect("up");
    assert!(n.four_octet_as && n.extended_next_hop && n.ebgp);
    assert_eq!(n.peer_as, 4_200_000_002);
    assert_eq!(n.hold_time, 9);

    // A announces IPv4 (IPv4 next hop), IPv6 and IPv4 over its link-local address.
    let attrs = PathAttrs {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::sequence(&[65001])),
        ..PathAttrs::default()
    };
    let v6 = MpNextHop::V6 {
        global: Ipv6Addr::UNSPECIFIED,
        link_local: Some(ll_a),
    };
    let wanted = BTreeMap::from([
        (
            net("10.1.0.0/24"),
            Arc::new(Export {
                attrs: attrs.clone(),
                next_hop: MpNextHop::V4(Ipv4Addr::new(169, 254, 0, 1)),
            }),
        ),
        (
            net("2001:db8:1::/48"),
            Arc::new(Export {
                attrs: attrs.clone(),
                next_hop: v6,
            }),
        ),
        (
            net("172.20.0.0/14"),
            Arc::new(Export {
                attrs,
                next_hop: v6,
            }),
        ),
    ]);
    let to_b = a.announce(&wanted);
    exchange(&mut a, &mut b, to_b, Vec::new());
    let cands = b.decision.candidates(&resolve);
    let prefixes: Vec<IpNetwork> = cands.iter().map(|c| c.prefix).collect();
    assert_eq!(
        prefixes,
        vec![
            net("10.1.0.0/24"),
            net("172.20.0.0/14"),
            net("2001:db8:1::/48")
        ]
    );
    assert!(cands
        .iter()
        .all(|c| c.source == RouteSource::Bgp { ebgp: true }
            && c.next_hop == NextHop::Tunnel(TunnelId(1))));
    let stored = b
        .decision
        .adj_rib_in(IpAddr::V6(ll_a))
        .and_then(|t| t.get(&net("172.20.0.0/14")))
        .expect("stored");
    assert_eq!(stored.next_hop, IpAddr::V6(ll_a));

    // A withdraws one.
    let mut fewer = wanted.clone();
    fewer.remove(&net("2001:db8:1::/48"));
    let to_b = a.announce(&fewer);
    exchange(&mut a, &mut b, to_b, Vec::new());
    assert_eq!(b.decision.candidates(&resolve).len(), 2);

    // The tunnel reports A silent: B drops the session and its routes at once.
    let out = b.handle(Event::PeerSilent);
    assert!(out.is_empty());
    assert_eq!(b.session.state(), State::Idle);
    assert!(b.decision.candidates(&resolve).is_empty());
    assert_eq!(b.session.counters.established_transitions, 1);
}
