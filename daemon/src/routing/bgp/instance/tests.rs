//! Two instances in a simulated network: writes are delivered to the other side, a
//! Connect output brings the transport up on both ends, timers are inputs.

use super::*;
use crate::dataplane::{NextHop, TunnelId};
use crate::routing::bgp::attr::Origin;
use crate::routing::bgp::policy::{Match, PrefixMatch, Term};

const A: IpAddr = IpAddr::V4(Ipv4Addr::new(169, 254, 0, 1));
const B: IpAddr = IpAddr::V4(Ipv4Addr::new(169, 254, 0, 2));

fn net(s: &str) -> IpNetwork {
    s.parse().expect("prefix")
}

fn resolve(_: &PeerInfo, _: IpAddr) -> Option<Resolution> {
    Some(Resolution {
        next_hop: NextHop::Tunnel(TunnelId(7)),
        igp_cost: 0,
    })
}

fn instance(me: u8, local_as: u32, peer: IpAddr, peer_as: u32, import: Option<Policy>) -> Instance {
    let local = if me == 1 { A } else { B };
    let IpAddr::V4(local4) = local else {
        unreachable!()
    };
    let mut session = PeerConfig::new(local_as, peer_as, Ipv4Addr::new(10, 255, 0, me));
    session.passive = me == 2;
    Instance::new(InstanceConfig {
        local_as,
        router_id: Ipv4Addr::new(10, 255, 0, me),
        decision: DecisionConfig::default(),
        originated: BTreeMap::from([(
            net(if me == 1 {
                "10.1.0.0/24"
            } else {
                "10.2.0.0/24"
            }),
            PathAttrs {
                origin: Some(Origin::Igp),
                ..PathAttrs::default()
            },
        )]),
        neighbors: vec![NeighborConfig {
            addr: peer,
            session,
            local: LocalAddrs {
                v4: Some(local4),
                ..LocalAddrs::default()
            },
            import,
            export: Some(Policy::accept_all()),
            allow_without_policy: false,
            next_hop_self: false,
            rr_client: false,
        }],
    })
}

/// Runs outputs until quiet; returns every output seen, per side.
fn run(
    a: &mut Instance,
    b: &mut Instance,
    first: Vec<(bool, Input)>,
) -> (Vec<Output>, Vec<Output>) {
    let mut queue: std::collections::VecDeque<(bool, Input)> = first.into();
    let (mut seen_a, mut seen_b) = (Vec::new(), Vec::new());
    let mut steps = 0;
    while let Some((to_a, input)) = queue.pop_front() {
        steps += 1;
        assert!(steps < 200, "no quiescence");
        let outs = if to_a {
            a.handle(B, input, &resolve)
        } else {
            b.handle(A, input, &resolve)
        };
        for o in &outs {
            match o {
                Output::Write(_, bytes) => queue.push_back((!to_a, Input::Received(bytes.clone()))),
                Output::Connect(_) => {
                    queue.push_back((to_a, Input::TransportUp));
                    queue.push_back((!to_a, Input::TransportUp));
                }
                _ => {}
            }
        }
        if to_a {
            seen_a.extend(outs);
        } else {
            seen_b.extend(outs);
        }
    }
    (seen_a, seen_b)
}

fn last_routes(outs: &[Output]) -> Option<Vec<IpNetwork>> {
    outs.iter().rev().find_map(|o| match o {
        Output::Routes(r) => Some(r.iter().map(|c| c.prefix).collect()),
        _ => None,
    })
}

#[test]
fn ebgp_pair_exchanges_originated_routes() {
    let dn = Policy {
        terms: vec![Term {
            matches: vec![Match::PrefixList(vec![PrefixMatch {
                prefix: net("10.0.0.0/8"),
                ge: None,
                le: Some(24),
            }])],
            sets: vec![],
            verdict: Some(Verdict::Accept),
        }],
        default: Verdict::Reject,
    };
    let mut a = instance(1, 65001, B, 65002, Some(dn.clone()));
    let mut b = instance(2, 65002, A, 65001, Some(dn));
    let (oa, ob) = run(
        &mut a,
        &mut b,
        vec![(false, Input::Start), (true, Input::Start)],
    );
    assert_eq!(a.state(B), Some(State::Established));
    assert_eq!(b.state(A), Some(State::Established));
    assert_eq!(last_routes(&oa), Some(vec![net("10.2.0.0/24")]));
    assert_eq!(last_routes(&ob), Some(vec![net("10.1.0.0/24")]));
    let path = b
        .decision()
        .adj_rib_in(A)
        .and_then(|t| t.get(&net("10.1.0.0/24")))
        .expect("learned");
    assert_eq!(path.next_hop, A);
    assert_eq!(
        path.attrs.as_path.as_ref().and_then(|p| p.first_as()),
        Some(65001)
    );

    // The tunnel goes silent: B drops A's routes at once.
    let outs = b.handle(A, Input::PeerSilent, &resolve);
    assert!(outs.contains(&Output::Routes(vec![])));
    assert!(outs
        .iter()
        .any(|o| matches!(o, Output::NeighborDown(_, DownReason::PeerSilent))));
}

#[test]
fn rfc8212_without_import_policy_learns_nothing() {
    let mut a = instance(1, 65001, B, 65002, None);
    let mut b = instance(2, 65002, A, 65001, None);
    let (oa, ob) = run(
        &mut a,
        &mut b,
        vec![(false, Input::Start), (true, Input::Start)],
    );
    assert_eq!(b.state(A), Some(State::Established));
    assert_eq!(last_routes(&oa), None);
    assert_eq!(last_routes(&ob), None);
    assert!(b.decision().adj_rib_in(A).is_some_and(|t| t.is_empty()));
}

#[test]
fn ibgp_pair_needs_no_policy() {
    let mut a = instance(1, 65001, B, 65001, None);
    let mut b = instance(2, 65001, A, 65001, None);
    let (_, ob) = run(
        &mut a,
        &mut b,
        vec![(false, Input::Start), (true, Input::Start)],
    );
    assert_eq!(last_routes(&ob), Some(vec![net("10.1.0.0/24")]));
    let c = &b.routes()[0];
    assert_eq!(
        c.source,
        crate::routing::rib::RouteSource::Bgp { ebgp: false }
    );
}

/// A simulated network of any number of speakers. Node n has the address 10.0.0.n (its
/// session address toward every neighbor), router id 10.255.0.n, and originates
/// 10.n.0.0/24. Of two neighbors, the lower-numbered one connects; the other is passive.
struct Net {
    nodes: BTreeMap<IpAddr, Instance>,
    /// Every output each node produced, in order.
    seen: BTreeMap<IpAddr, Vec<Output>>,
}

fn ip(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))
}

fn rid(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 255, 0, n)
}

fn prefix(n: u8) -> IpNetwork {
    IpNetwork::V4(ipnetwork::Ipv4Network::new(Ipv4Addr::new(10, n, 0, 0), 24).expect("net"))
}

/// One side of a session in [`Net`].
#[derive(Clone, Copy)]
struct Peer {
    n: u8,
    asn: u32,
    rr_client: bool,
    graceful_restart: Option<u16>,
}

fn ibgp(n: u8) -> Peer {
    Peer {
        n,
        asn: 65000,
        rr_client: false,
        graceful_restart: None,
    }
}

fn rr_client(n: u8) -> Peer {
    Peer {
        rr_client: true,
        ..ibgp(n)
    }
}

fn originates(n: u8) -> BTreeMap<IpNetwork, PathAttrs> {
    BTreeMap::from([(
        prefix(n),
        PathAttrs {
            origin: Some(Origin::Igp),
            ..PathAttrs::default()
        },
    )])
}

fn speaker(n: u8, asn: u32, peers: &[Peer], decision: DecisionConfig) -> Instance {
    Instance::new(InstanceConfig {
        local_as: asn,
        router_id: rid(n),
        decision,
        originated: originates(n),
        neighbors: peers.iter().map(|p| neighbor(n, asn, *p)).collect(),
    })
}

fn neighbor(me: u8, asn: u32, p: Peer) -> NeighborConfig {
    let mut session = PeerConfig::new(asn, p.asn, rid(me));
    session.passive = me > p.n;
    session.graceful_restart = p.graceful_restart;
    let IpAddr::V4(local) = ip(me) else {
        unreachable!()
    };
    NeighborConfig {
        addr: ip(p.n),
        session,
        local: LocalAddrs {
            v4: Some(local),
            ..LocalAddrs::default()
        },
        import: None,
        export: None,
        allow_without_policy: true,
        next_hop_self: false,
        rr_client: p.rr_client,
    }
}

impl Net {
    fn new(nodes: Vec<(u8, Instance)>) -> Net {
        Net {
            nodes: nodes.into_iter().map(|(n, i)| (ip(n), i)).collect(),
            seen: BTreeMap::new(),
        }
    }

    fn node(&self, n: u8) -> &Instance {
        &self.nodes[&ip(n)]
    }

    fn node_mut(&mut self, n: u8) -> &mut Instance {
        self.nodes.get_mut(&ip(n)).expect("node")
    }

    /// Feeds inputs (node, neighbor, input) and everything they cause until quiet;
    /// returns the outputs of this run per node.
    fn run(&mut self, first: Vec<(u8, u8, Input)>) -> BTreeMap<IpAddr, Vec<Output>> {
        let mut queue: std::collections::VecDeque<(IpAddr, IpAddr, Input)> = first
            .into_iter()
            .map(|(n, m, i)| (ip(n), ip(m), i))
            .collect();
        let mut outs: BTreeMap<IpAddr, Vec<Output>> = BTreeMap::new();
        let mut steps = 0;
        while let Some((node, nbr, input)) = queue.pop_front() {
            steps += 1;
            assert!(steps < 2000, "no quiescence");
            let Some(i) = self.nodes.get_mut(&node) else {
                continue;
            };
            let o = i.handle(nbr, input, &resolve);
            for x in &o {
                match x {
                    Output::Write(peer, bytes) => {
                        queue.push_back((*peer, node, Input::Received(bytes.clone())))
                    }
                    Output::Connect(peer) => {
                        queue.push_back((node, *peer, Input::TransportUp));
                        queue.push_back((*peer, node, Input::Accepted));
                    }
                    _ => {}
                }
            }
            self.seen.entry(node).or_default().extend(o.iter().cloned());
            outs.entry(node).or_default().extend(o);
        }
        outs
    }

    /// Starts every configured neighbor of every node.
    fn start(&mut self) {
        let starts = self
            .nodes
            .iter()
            .flat_map(|(node, i)| {
                let n = node_n(*node);
                i.neighbors()
                    .map(move |v| (n, node_n(v.config.addr), Input::Start))
                    .collect::<Vec<_>>()
            })
            .collect();
        self.run(starts);
    }

    fn routes(&self, n: u8) -> Vec<IpNetwork> {
        self.node(n).routes().iter().map(|c| c.prefix).collect()
    }

    /// The route node `n` holds for `p` from neighbor `from` (its Adj-RIB-In).
    fn path(&self, n: u8, from: u8, p: IpNetwork) -> Option<crate::routing::bgp::decision::Path> {
        self.node(n)
            .decision()
            .adj_rib_in(ip(from))
            .and_then(|t| t.get(&p))
            .cloned()
    }
}

fn node_n(a: IpAddr) -> u8 {
    match a {
        IpAddr::V4(v) => v.octets()[3],
        IpAddr::V6(_) => unreachable!(),
    }
}

#[test]
fn route_reflector_serves_a_mesh_of_clients() {
    // Hub 1 reflects for clients 2, 3, 4; 5 and 6 are ordinary iBGP peers of the hub.
    let hub = speaker(
        1,
        65000,
        &[rr_client(2), rr_client(3), rr_client(4), ibgp(5), ibgp(6)],
        DecisionConfig::default(),
    );
    let mut nodes = vec![(1, hub)];
    for n in 2..=6 {
        nodes.push((n, speaker(n, 65000, &[ibgp(1)], DecisionConfig::default())));
    }
    let mut net = Net::new(nodes);
    net.start();
    for n in 2..=6 {
        assert_eq!(net.node(1).state(ip(n)), Some(State::Established), "{n}");
    }
    let all = |except: u8, without: &[u8]| -> Vec<IpNetwork> {
        (1..=6)
            .filter(|m| *m != except && !without.contains(m))
            .map(prefix)
            .collect()
    };
    assert_eq!(net.routes(1), all(1, &[]));
    // Clients learn everything: each other's routes and the non-clients'.
    for c in 2..=4 {
        assert_eq!(net.routes(c), all(c, &[]), "client {c}");
    }
    // Non-clients learn the clients' routes (and the hub's), not each other's.
    assert_eq!(net.routes(5), all(5, &[6]));
    assert_eq!(net.routes(6), all(6, &[5]));

    // Reflected as the originator sent it, plus ORIGINATOR_ID and CLUSTER_LIST.
    for (at, orig) in [(2, 3), (3, 4), (4, 2), (5, 2), (2, 5)] {
        let p = net.path(at, 1, prefix(orig)).expect("reflected path");
        assert_eq!(p.next_hop, ip(orig), "original next hop at {at}");
        assert_eq!(p.attrs.originator_id, Some(rid(orig)));
        assert_eq!(
            p.attrs.cluster_list,
            vec![rid(1)],
            "hub's router id as cluster id"
        );
        assert_eq!(
            p.attrs.as_path,
            Some(crate::routing::bgp::attr::AsPath::default())
        );
        assert_eq!(p.attrs.local_pref, Some(100));
    }
    // The hub's own routes are not reflected: no ORIGINATOR_ID, next hop the hub.
    let own = net.path(2, 1, prefix(1)).expect("hub route");
    assert_eq!((own.attrs.originator_id, own.next_hop), (None, ip(1)));
    assert!(own.attrs.cluster_list.is_empty());
    // Nothing came back to its originator.
    for n in 2..=6 {
        assert!(net.path(n, 1, prefix(n)).is_none(), "{n}");
    }

    // A client's withdrawal reaches the others.
    let out = net.node_mut(4).set_originated(BTreeMap::new(), &resolve);
    let writes = out
        .into_iter()
        .filter_map(|o| match o {
            Output::Write(_, b) => Some((1, 4, Input::Received(b))),
            _ => None,
        })
        .collect();
    net.run(writes);
    assert_eq!(net.routes(2), all(2, &[4]));
    assert_eq!(net.routes(5), all(5, &[4, 6]));
}

#[test]
fn reflected_loops_are_dropped_by_originator_and_cluster() {
    // Two reflectors 1 and 7, each other's non-client; 2 is a client of both. Reflector
    // 7 prefers what 1 reflects over 2's own announcement (local pref 50 on import), so
    // it reflects 2's route back to 2 with 2's ORIGINATOR_ID: 2 must drop it.
    let low = Policy {
        terms: vec![Term {
            matches: vec![],
            sets: vec![crate::routing::bgp::policy::Set::LocalPref(50)],
            verdict: Some(Verdict::Accept),
        }],
        default: Verdict::Accept,
    };
    let build = |cluster: Option<Ipv4Addr>| {
        let cfg = DecisionConfig {
            cluster_id: cluster,
            ..DecisionConfig::default()
        };
        let mut r7 = speaker(7, 65000, &[rr_client(2), ibgp(1)], cfg);
        let mut c = neighbor(7, 65000, rr_client(2));
        c.import = Some(low.clone());
        r7.add_neighbor(c);
        Net::new(vec![
            (1, speaker(1, 65000, &[rr_client(2), ibgp(7)], cfg)),
            (2, speaker(2, 65000, &[ibgp(1), ibgp(7)], cfg)),
            (7, r7),
        ])
    };

    let mut net = build(None);
    net.start();
    let via1 = net
        .path(7, 1, prefix(2))
        .expect("1 reflects 2's route to 7");
    assert_eq!(via1.attrs.originator_id, Some(rid(2)));
    assert_eq!(via1.attrs.cluster_list, vec![rid(1)]);
    // 7 sent it to 2 (its best came from 1) ...
    let sent = net
        .node(7)
        .neighbor(ip(2))
        .and_then(|v| v.adj_rib_out.get(&prefix(2)).cloned())
        .expect("reflected back toward the originator");
    assert_eq!(sent.attrs.originator_id, Some(rid(2)));
    assert_eq!(sent.attrs.cluster_list, vec![rid(7), rid(1)]);
    // ... and 2 dropped it: its own prefix is nowhere in its tables.
    assert!(net.path(2, 7, prefix(2)).is_none());
    assert!(net.path(2, 1, prefix(2)).is_none());
    assert!(!net.routes(2).contains(&prefix(2)));
    assert!(net.routes(2).contains(&prefix(1)) && net.routes(2).contains(&prefix(7)));

    // Redundant reflectors of one cluster: 7 drops what 1 reflects (cluster id in the
    // CLUSTER_LIST) and keeps 2's own announcement.
    let mut net = build(Some(Ipv4Addr::new(10, 254, 0, 1)));
    net.start();
    assert!(net
        .node(1)
        .neighbor(ip(7))
        .is_some_and(|v| v.adj_rib_out.get(&prefix(2)).is_some()));
    assert!(net.path(7, 1, prefix(2)).is_none(), "cluster loop");
    assert!(net.path(7, 2, prefix(2)).is_some());
    assert!(net.routes(7).contains(&prefix(2)));
}

/// eBGP pair 1 (65001, connects) and 2 (65002, passive), graceful restart on both sides
/// with `gr` (None: off), established.
fn gr_pair(gr: Option<u16>) -> Net {
    let peer = |n: u8, asn: u32| Peer {
        n,
        asn,
        rr_client: false,
        graceful_restart: gr,
    };
    let mut net = Net::new(vec![
        (
            1,
            speaker(1, 65001, &[peer(2, 65002)], DecisionConfig::default()),
        ),
        (
            2,
            speaker(2, 65002, &[peer(1, 65001)], DecisionConfig::default()),
        ),
    ]);
    net.start();
    assert_eq!(net.node(2).state(ip(1)), Some(State::Established));
    assert_eq!(net.routes(2), vec![prefix(1)]);
    let neg = net
        .node(2)
        .neighbor(ip(1))
        .and_then(|v| v.session.negotiated().cloned())
        .expect("negotiated");
    assert_eq!(neg.graceful_restart.is_some(), gr.is_some());
    net
}

fn routes_out(outs: &[Output]) -> Vec<Vec<IpNetwork>> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Routes(r) => Some(r.iter().map(|c| c.prefix).collect()),
            _ => None,
        })
        .collect()
}

/// The transport under the 1-2 session fails on both ends.
fn cut(net: &mut Net) -> Vec<Output> {
    net.run(vec![(1, 2, Input::TransportDown)]);
    net.run(vec![(2, 1, Input::TransportDown)])
        .remove(&ip(2))
        .unwrap_or_default()
}

const GR_TIMER: Timer = Timer::GracefulRestart;

#[test]
fn end_of_rib_follows_the_initial_advertisement() {
    for gr in [None, Some(120)] {
        let net = gr_pair(gr);
        let seen = &net.seen[&ip(1)];
        let eor = |f| Output::Write(ip(2), Message::Update(end_of_rib_marker(f)).emit(codec4()));
        let pos = |o: &Output| seen.iter().position(|x| x == o);
        let v4 = pos(&eor(Family::Ipv4Unicast)).expect("IPv4 End-of-RIB");
        let v6 = pos(&eor(Family::Ipv6Unicast)).expect("IPv6 End-of-RIB");
        let announce = seen
            .iter()
            .position(|o| matches!(o, Output::Write(_, b) if b.len() > 23 && b[18] == 2))
            .expect("the announcement");
        assert!(announce < v4 && v4 < v6, "{gr:?}");
        // Both parse back as markers.
        for (f, b) in [(Family::Ipv4Unicast, v4), (Family::Ipv6Unicast, v6)] {
            let Output::Write(_, bytes) = &seen[b] else {
                unreachable!()
            };
            let Ok(Message::Update(u)) = Message::parse(bytes, codec4()) else {
                panic!("parses")
            };
            assert_eq!(end_of_rib(&u), Some(f));
        }
    }
    let plain = UpdateRepr {
        withdrawn: vec![prefix(1)],
        ..UpdateRepr::default()
    };
    assert_eq!(end_of_rib(&plain), None);
}

fn codec4() -> crate::routing::bgp::attr::Codec {
    crate::routing::bgp::attr::Codec {
        four_octet_as: true,
    }
}

#[test]
fn graceful_restart_keeps_routes_across_a_transport_drop_until_end_of_rib() {
    let mut net = gr_pair(Some(120));
    let out = cut(&mut net);
    assert!(out.contains(&Output::NeighborDown(ip(1), DownReason::TransportFailed)));
    assert!(out.contains(&Output::StartTimer(
        ip(1),
        GR_TIMER,
        Duration::from_secs(120)
    )));
    assert!(routes_out(&out).is_empty(), "no withdrawal");
    assert_eq!(net.routes(2), vec![prefix(1)]);
    let t = net.node(2).decision().adj_rib_in(ip(1)).expect("kept");
    assert!(t.is_stale(&prefix(1)));

    // While down, 1 changes what it originates: 10.1/24 becomes 10.11/24.
    let new = BTreeMap::from([(prefix(11), originates(1)[&prefix(1)].clone())]);
    assert!(net.node_mut(1).set_originated(new, &resolve).is_empty());
    // 1 comes back (its idle hold runs out); 2 takes the connection.
    let out = net.run(vec![(1, 2, Input::TimerExpired(Timer::IdleHold))]);
    let at2 = &out[&ip(2)];
    assert_eq!(net.node(2).state(ip(1)), Some(State::Established));
    // Waiting for the End-of-RIB now, with the stale bound.
    assert!(at2.contains(&Output::StartTimer(ip(1), GR_TIMER, STALE_PATH_TIME)));
    // The new route joined the stale one, then the End-of-RIB swept the stale one.
    assert_eq!(
        routes_out(at2),
        vec![vec![prefix(1), prefix(11)], vec![prefix(11)]]
    );
    assert!(at2.contains(&Output::StopTimer(ip(1), GR_TIMER)));
    assert_eq!(net.routes(2), vec![prefix(11)]);
    assert!(!net.node(2).decision().has_stale(ip(1)));
}

#[test]
fn graceful_restart_timer_expiry_and_hold_timer_expiry() {
    let mut net = gr_pair(Some(90));
    // The hold timer runs out at 2 (its NOTIFICATION is lost: nothing delivered).
    let out = net
        .node_mut(2)
        .handle(ip(1), Input::TimerExpired(Timer::Hold), &resolve);
    assert!(out.contains(&Output::NeighborDown(ip(1), DownReason::HoldTimerExpired)));
    assert!(out.contains(&Output::StartTimer(
        ip(1),
        GR_TIMER,
        Duration::from_secs(90)
    )));
    assert!(routes_out(&out).is_empty());
    assert_eq!(net.routes(2), vec![prefix(1)]);
    // The peer never returns: the restart timer removes the routes.
    let out = net
        .node_mut(2)
        .handle(ip(1), Input::TimerExpired(GR_TIMER), &resolve);
    assert_eq!(routes_out(&out), vec![Vec::<IpNetwork>::new()]);
    assert!(net.node(2).routes().is_empty());
    assert!(net.node(2).decision().adj_rib_in(ip(1)).is_none());
    // A late expiry is harmless.
    let out = net
        .node_mut(2)
        .handle(ip(1), Input::TimerExpired(GR_TIMER), &resolve);
    assert!(routes_out(&out).is_empty());
}

#[test]
fn graceful_restart_yields_to_silence_notification_and_lost_capability() {
    // A silent tunnel: withdrawn at once, graceful restart or not.
    let mut net = gr_pair(Some(120));
    let out = net
        .run(vec![(2, 1, Input::PeerSilent)])
        .remove(&ip(2))
        .unwrap();
    assert!(out.contains(&Output::NeighborDown(ip(1), DownReason::PeerSilent)));
    assert_eq!(routes_out(&out), vec![Vec::<IpNetwork>::new()]);
    assert!(!out
        .iter()
        .any(|o| matches!(o, Output::StartTimer(_, GR_TIMER, _))));

    // Silent after a transport drop: the stale routes go at once too.
    let mut net = gr_pair(Some(120));
    cut(&mut net);
    assert_eq!(net.routes(2), vec![prefix(1)]);
    let out = net.node_mut(2).handle(ip(1), Input::PeerSilent, &resolve);
    assert_eq!(routes_out(&out), vec![Vec::<IpNetwork>::new()]);
    assert!(out.contains(&Output::StopTimer(ip(1), GR_TIMER)));

    // The peer stops the session (a Cease NOTIFICATION): withdrawn at once.
    let mut net = gr_pair(Some(120));
    let outs = net.run(vec![(1, 2, Input::Stop)]);
    let at2 = &outs[&ip(2)];
    assert!(at2.iter().any(|o| matches!(
        o,
        Output::NeighborDown(_, DownReason::NotificationReceived(_))
    )));
    assert_eq!(routes_out(at2), vec![Vec::<IpNetwork>::new()]);

    // The peer comes back without the capability: the stale routes go when it is up,
    // before its routes are even sent again.
    let mut net = gr_pair(Some(120));
    cut(&mut net);
    let plain = neighbor(
        1,
        65001,
        Peer {
            n: 2,
            asn: 65002,
            rr_client: false,
            graceful_restart: None,
        },
    );
    net.node_mut(1).add_neighbor(plain);
    net.node_mut(1).set_originated(BTreeMap::new(), &resolve);
    let outs = net.run(vec![(1, 2, Input::Start)]);
    assert_eq!(net.node(2).state(ip(1)), Some(State::Established));
    assert_eq!(routes_out(&outs[&ip(2)]), vec![Vec::<IpNetwork>::new()]);
    assert!(outs[&ip(2)].contains(&Output::StopTimer(ip(1), GR_TIMER)));
}

#[test]
fn without_graceful_restart_a_transport_drop_withdraws_at_once() {
    let mut net = gr_pair(None);
    let out = cut(&mut net);
    assert!(out.contains(&Output::NeighborDown(ip(1), DownReason::TransportFailed)));
    assert_eq!(routes_out(&out), vec![Vec::<IpNetwork>::new()]);
    assert!(!out
        .iter()
        .any(|o| matches!(o, Output::StartTimer(_, GR_TIMER, _))));
    assert!(net.node(2).decision().adj_rib_in(ip(1)).is_none());
}
