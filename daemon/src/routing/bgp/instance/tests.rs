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
        via: None,
    })
}

fn instance(me: u8, local_as: u32, peer: IpAddr, peer_as: u32, import: Option<Policy>) -> Instance {
    instance_offering(me, local_as, peer, peer_as, import, true)
}

fn instance_offering(
    me: u8,
    local_as: u32,
    peer: IpAddr,
    peer_as: u32,
    import: Option<Policy>,
    extended_message: bool,
) -> Instance {
    let local = if me == 1 { A } else { B };
    let IpAddr::V4(local4) = local else {
        unreachable!()
    };
    let mut session = PeerConfig::new(local_as, peer_as, Ipv4Addr::new(10, 255, 0, me));
    session.passive = me == 2;
    session.extended_message = extended_message;
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
            keep_received_routes: false,
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

/// The route set after `outs`, if they changed it (the RIB gets deltas; the instance
/// keeps the set they add up to).
fn last_routes(i: &Instance, outs: &[Output]) -> Option<Vec<IpNetwork>> {
    outs.iter()
        .any(|o| matches!(o, Output::Routes(_)))
        .then(|| i.routes().keys().collect())
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
    assert_eq!(last_routes(&a, &oa), Some(vec![net("10.2.0.0/24")]));
    assert_eq!(last_routes(&b, &ob), Some(vec![net("10.1.0.0/24")]));
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
    assert!(outs.contains(&Output::Routes(RouteDelta {
        changed: vec![],
        removed: vec![net("10.1.0.0/24")],
    })));
    assert!(b.routes().is_empty());
    assert!(outs
        .iter()
        .any(|o| matches!(o, Output::NeighborDown(_, DownReason::PeerSilent))));
}

/// A next hop is never resolved through one of our own routes (the FIB entry is then
/// BGP's): the resolver names the FIB route it matched, the instance refuses its own.
#[test]
fn next_hop_never_resolves_through_our_own_route() {
    let mut a = instance(1, 65001, B, 65001, None);
    let mut b = instance(2, 65001, A, 65001, None);
    let (_, ob) = run(
        &mut a,
        &mut b,
        vec![(false, Input::Start), (true, Input::Start)],
    );
    let own = net("10.1.0.0/24");
    assert_eq!(last_routes(&b, &ob), Some(vec![own]));
    let via = |tunnel: u32| {
        move |_: &PeerInfo, _: IpAddr| {
            Some(Resolution {
                next_hop: NextHop::Tunnel(TunnelId(tunnel)),
                igp_cost: 0,
                via: Some(own),
            })
        }
    };
    // The FIB's route for that prefix leads elsewhere than ours: another protocol's,
    // usable.
    let outs = b.resolution_changed(&via(8));
    assert_eq!(
        routes_out(&outs),
        vec![(vec![own], vec![])],
        "resolved through the other route"
    );
    assert_eq!(
        b.routes().get(&own).expect("own route").next_hop,
        NextHop::Tunnel(TunnelId(8))
    );
    // Now the FIB holds exactly our route: refused, the route goes.
    let outs = b.resolution_changed(&via(8));
    assert_eq!(routes_out(&outs), removed(own));
    assert!(b.routes().is_empty());
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
    assert_eq!(last_routes(&a, &oa), None);
    assert_eq!(last_routes(&b, &ob), None);
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
    assert_eq!(last_routes(&b, &ob), Some(vec![net("10.1.0.0/24")]));
    let c = b.routes().values().next().expect("a route");
    assert!(!c.ebgp);
}

/// A simulated network of any number of speakers. Node n has the address 10.0.0.n (its
/// session address toward every neighbor), router id 10.255.0.n, and originates
/// 10.n.0.0/24. Of two neighbors, the lower-numbered one connects; the other is passive.
struct Net {
    nodes: BTreeMap<IpAddr, Instance>,
    /// Every output each node produced, in order.
    seen: BTreeMap<IpAddr, Vec<Output>>,
    /// Node 1's own view of next hops, when a test gives it one (else [`resolve`]).
    hub_view: Option<std::rc::Rc<std::cell::RefCell<HubView>>>,
}

/// Next hop address -> IGP cost, or None: unreachable. Absent: reachable at cost 0. A
/// next hop resolves to the tunnel numbered like the node that owns the address.
type HubView = BTreeMap<IpAddr, Option<u32>>;

fn hub_resolve(view: &HubView, nh: IpAddr) -> Option<Resolution> {
    let cost = view.get(&nh).copied().unwrap_or(Some(0))?;
    Some(Resolution {
        next_hop: NextHop::Tunnel(TunnelId(u32::from(node_n(nh)))),
        igp_cost: cost,
        via: None,
    })
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
        keep_received_routes: false,
    }
}

impl Net {
    fn new(nodes: Vec<(u8, Instance)>) -> Net {
        Net {
            nodes: nodes.into_iter().map(|(n, i)| (ip(n), i)).collect(),
            seen: BTreeMap::new(),
            hub_view: None,
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
            let o = match (&self.hub_view, node == ip(1)) {
                (Some(view), true) => {
                    let view = view.borrow();
                    i.handle(nbr, input, &|_: &PeerInfo, nh| hub_resolve(&view, nh))
                }
                _ => i.handle(nbr, input, &resolve),
            };
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
        self.node(n).routes().keys().collect()
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

/// The route changes in `outs`: (changed, removed) prefixes per delta.
fn routes_out(outs: &[Output]) -> Vec<(Vec<IpNetwork>, Vec<IpNetwork>)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Routes(r) => Some((
                r.changed.iter().map(|c| c.prefix).collect(),
                r.removed.clone(),
            )),
            _ => None,
        })
        .collect()
}

/// One delta removing `p` and nothing else.
fn removed(p: IpNetwork) -> Vec<(Vec<IpNetwork>, Vec<IpNetwork>)> {
    vec![(vec![], vec![p])]
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
        vec![(vec![prefix(11)], vec![]), (vec![], vec![prefix(1)])]
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
    assert_eq!(routes_out(&out), removed(prefix(1)));
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
    assert_eq!(routes_out(&out), removed(prefix(1)));
    assert!(!out
        .iter()
        .any(|o| matches!(o, Output::StartTimer(_, GR_TIMER, _))));

    // Silent after a transport drop: the stale routes go at once too.
    let mut net = gr_pair(Some(120));
    cut(&mut net);
    assert_eq!(net.routes(2), vec![prefix(1)]);
    let out = net.node_mut(2).handle(ip(1), Input::PeerSilent, &resolve);
    assert_eq!(routes_out(&out), removed(prefix(1)));
    assert!(out.contains(&Output::StopTimer(ip(1), GR_TIMER)));

    // The peer stops the session (a Cease NOTIFICATION): withdrawn at once.
    let mut net = gr_pair(Some(120));
    let outs = net.run(vec![(1, 2, Input::Stop)]);
    let at2 = &outs[&ip(2)];
    assert!(at2.iter().any(|o| matches!(
        o,
        Output::NeighborDown(_, DownReason::NotificationReceived(_))
    )));
    assert_eq!(routes_out(at2), removed(prefix(1)));

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
    assert_eq!(routes_out(&outs[&ip(2)]), removed(prefix(1)));
    assert!(outs[&ip(2)].contains(&Output::StopTimer(ip(1), GR_TIMER)));
}

#[test]
fn without_graceful_restart_a_transport_drop_withdraws_at_once() {
    let mut net = gr_pair(None);
    let out = cut(&mut net);
    assert!(out.contains(&Output::NeighborDown(ip(1), DownReason::TransportFailed)));
    assert_eq!(routes_out(&out), removed(prefix(1)));
    assert!(!out
        .iter()
        .any(|o| matches!(o, Output::StartTimer(_, GR_TIMER, _))));
    assert!(net.node(2).decision().adj_rib_in(ip(1)).is_none());
}

// ---------------------------------------------------------------------------------------
// Incremental decision: only dirty prefixes are touched, and the result always equals the
// full recompute.

fn pool(i: u16) -> IpNetwork {
    let [hi, lo] = i.to_be_bytes();
    IpNetwork::V4(ipnetwork::Ipv4Network::new(Ipv4Addr::new(10, 100 + hi, lo, 0), 24).expect("net"))
}

/// Node 1 learns `count` prefixes from node 2 (eBGP) and exports them to node 3 (eBGP).
fn transit_with(count: u16) -> Net {
    let peer = |n: u8, asn: u32| Peer {
        n,
        asn,
        rr_client: false,
        graceful_restart: None,
    };
    let hub = speaker(
        1,
        65001,
        &[peer(2, 65002), peer(3, 65003)],
        DecisionConfig::default(),
    );
    let mut net = Net::new(vec![
        (1, hub),
        (
            2,
            speaker(2, 65002, &[peer(1, 65001)], DecisionConfig::default()),
        ),
        (
            3,
            speaker(3, 65003, &[peer(1, 65001)], DecisionConfig::default()),
        ),
    ]);
    net.start();
    let table: BTreeMap<IpNetwork, PathAttrs> = (0..count)
        .map(|i| {
            (
                pool(i),
                PathAttrs {
                    origin: Some(Origin::Igp),
                    ..PathAttrs::default()
                },
            )
        })
        .collect();
    let out = net.node_mut(2).set_originated(table, &resolve);
    net.deliver(2, out);
    net
}

impl Net {
    /// Delivers the writes among `outs` (produced by node `from`) and runs until quiet.
    fn deliver(&mut self, from: u8, outs: Vec<Output>) -> BTreeMap<IpAddr, Vec<Output>> {
        let first = outs
            .into_iter()
            .filter_map(|o| match o {
                Output::Write(peer, bytes) => Some((node_n(peer), from, Input::Received(bytes))),
                _ => None,
            })
            .collect();
        self.run(first)
    }
}

/// The prefixes announced and withdrawn by UPDATE bytes (IPv4, 4-octet AS).
fn update_prefixes(outs: &[Output]) -> (Vec<IpNetwork>, Vec<IpNetwork>) {
    let codec = crate::routing::bgp::attr::Codec {
        four_octet_as: true,
    };
    let (mut ann, mut wd) = (Vec::new(), Vec::new());
    for o in outs {
        if let Output::Write(_, bytes) = o {
            if let Ok(Message::Update(u)) = Message::parse(bytes, codec) {
                ann.extend(u.announced().copied());
                wd.extend(u.withdrawals().copied());
            }
        }
    }
    (ann, wd)
}

#[test]
fn an_update_for_one_prefix_among_ten_thousand_touches_only_that_prefix() {
    let mut net = transit_with(10_000);
    assert_eq!(
        net.node(1).routes().len(),
        10_000 + 1,
        "the table and node 3's own"
    );
    assert_eq!(
        net.node(3).decision().adj_rib_in(ip(1)).map(|t| t.len()),
        Some(10_000 + 1),
        "node 3 has the table and node 1's own through node 1"
    );

    // Node 2 announces one more prefix; node 1 handles that UPDATE with a resolver that
    // counts its calls: the work is one prefix's, not the table's.
    let mut more = net.node(2).config().originated.clone();
    more.insert(pool(20_000), more[&pool(0)].clone());
    let out = net.node_mut(2).set_originated(more, &resolve);
    let writes: Vec<Output> = out
        .into_iter()
        .filter(|o| matches!(o, Output::Write(..)))
        .collect();
    assert_eq!(update_prefixes(&writes), (vec![pool(20_000)], vec![]));
    let calls = std::cell::Cell::new(0);
    let counting = |p: &PeerInfo, nh: IpAddr| {
        calls.set(calls.get() + 1);
        resolve(p, nh)
    };
    let mut at1 = Vec::new();
    for w in writes {
        if let Output::Write(_, bytes) = w {
            at1.extend(
                net.node_mut(1)
                    .handle(ip(2), Input::Received(bytes), &counting),
            );
        }
    }
    assert_eq!(calls.get(), 1, "one prefix decided, with one route");
    assert_eq!(
        routes_out(&at1),
        vec![(vec![pool(20_000)], vec![])],
        "the RIB gets that prefix only"
    );
    assert_eq!(update_prefixes(&at1), (vec![pool(20_000)], vec![]));
    assert_eq!(net.node(1).routes().len(), 10_000 + 2);

    // A withdrawal of one prefix: one removal to the RIB, one withdrawal to node 3.
    let mut fewer = net.node(2).config().originated.clone();
    fewer.remove(&pool(1234));
    let out = net.node_mut(2).set_originated(fewer, &resolve);
    calls.set(0);
    let mut at1 = Vec::new();
    for o in out {
        if let Output::Write(_, bytes) = o {
            at1.extend(
                net.node_mut(1)
                    .handle(ip(2), Input::Received(bytes), &counting),
            );
        }
    }
    assert_eq!(calls.get(), 0, "no route left to resolve");
    assert_eq!(routes_out(&at1), vec![(vec![], vec![pool(1234)])]);
    assert_eq!(update_prefixes(&at1), (vec![], vec![pool(1234)]));

    // Nothing moved: a resolution check costs one call per next hop, and says nothing.
    calls.set(0);
    let out = net.node_mut(1).resolution_changed(&counting);
    assert!(out.is_empty());
    assert_eq!(calls.get(), 2, "two (peer, next hop) in use: nodes 2 and 3");
}

/// The hub's state equals what the full recompute makes of its Adj-RIBs-In: the RIB
/// candidates and every established neighbor's Adj-RIB-Out.
fn assert_equals_full_recompute<R>(hub: &Instance, resolve: &R)
where
    R: Fn(&PeerInfo, IpAddr) -> Option<Resolution>,
{
    let full: Vec<Candidate> = hub.decision().candidates(resolve);
    let have: Vec<Candidate> = hub.routes().iter().map(|(p, r)| r.candidate(p)).collect();
    assert_eq!(have, full, "RIB candidates");
    let best = hub.decision().best_paths(resolve);
    let cluster_id = hub.decision().cluster_id().expect("router id");
    for v in hub.neighbors() {
        if v.session.state() != State::Established {
            assert!(
                v.adj_rib_out.is_empty(),
                "{} down but advertised",
                v.config.addr
            );
            continue;
        }
        let neg = v.session.negotiated().expect("negotiated");
        let to = ExportPeer {
            addr: v.config.addr,
            ebgp: neg.ebgp,
            local_as: hub.config().local_as,
            local: v.config.local,
            next_hop_self: v.config.next_hop_self,
            rr_client: v.config.rr_client && !neg.ebgp,
            cluster_id,
        };
        let want: BTreeMap<IpNetwork, Export> = exports_for(&best, &hub.config().originated, &to)
            .into_iter()
            .filter_map(|(p, e)| {
                let e = export_policy(v.config, neg.ebgp, &p, e)?;
                Some((p, (*e).clone()))
            })
            .collect();
        let have: BTreeMap<IpNetwork, Export> = v
            .adj_rib_out
            .iter()
            .map(|(p, e)| (*p, (**e).clone()))
            .collect();
        assert_eq!(have, want, "Adj-RIB-Out of {}", v.config.addr);
    }
}

#[derive(Clone, Debug)]
enum Op {
    /// Peer k originates these (pool index, origin, MED) instead of what it had.
    Originate(u8, Vec<(u16, u8, Option<u32>)>),
    /// The hub stops and restarts its session to peer k.
    Bounce(u8),
    /// Peer k's next hop resolves (at this IGP cost) or not, at the hub.
    Resolve(u8, Option<u32>),
    /// A new export policy toward peer k: reject one pool prefix, or accept all.
    Export(u8, Option<u16>),
    /// The hub's own originated routes.
    HubOriginates(Vec<u16>),
    /// A new import policy from peer k: reject one pool prefix, or accept all (peers 2
    /// and 4 keep received routes: applied from the kept table; 3 and 5: route refresh).
    Import(u8, Option<u16>),
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    let peer = 2u8..=5;
    let route = (0u16..12, 0u8..3, proptest::option::of(0u32..3));
    prop_oneof![
        4 => (peer.clone(), proptest::collection::vec(route, 0..8))
            .prop_map(|(k, r)| Op::Originate(k, r)),
        1 => peer.clone().prop_map(Op::Bounce),
        2 => (peer.clone(), proptest::option::of(0u32..3)).prop_map(|(k, c)| Op::Resolve(k, c)),
        1 => (peer, proptest::option::of(0u16..12)).prop_map(|(k, r)| Op::Export(k, r)),
        1 => proptest::collection::vec(0u16..12, 0..3).prop_map(Op::HubOriginates),
        1 => (2u8..=5, proptest::option::of(0u16..12)).prop_map(|(k, r)| Op::Import(k, r)),
    ]
}

/// Hub 1 (AS 65000, max-paths 2): eBGP peers 2 (AS 65002) and 3 (AS 65003), a route
/// reflection client 4 and a plain iBGP peer 5; everyone draws prefixes from one pool.
fn random_net(relax: bool) -> Net {
    let peer = |n: u8, asn: u32, rr_client: bool| Peer {
        n,
        asn,
        rr_client,
        graceful_restart: None,
    };
    let cfg = DecisionConfig {
        max_paths: 2,
        multipath_relax: relax,
        cluster_id: None,
    };
    let mut hub = speaker(
        1,
        65000,
        &[
            peer(2, 65002, false),
            peer(3, 65003, false),
            peer(4, 65000, true),
            peer(5, 65000, false),
        ],
        cfg,
    );
    hub.set_keep_received_routes(ip(2), true);
    hub.set_keep_received_routes(ip(4), true);
    let mut nodes = vec![(1, hub)];
    for (n, asn) in [(2, 65002), (3, 65003), (4, 65000), (5, 65000)] {
        let mut s = speaker(n, asn, &[peer(1, 65000, false)], DecisionConfig::default());
        s.set_originated(BTreeMap::new(), &resolve);
        nodes.push((n, s));
    }
    let mut net = Net::new(nodes);
    net.start();
    net
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

    #[test]
    fn incremental_equals_full_recompute(relax: bool, ops in proptest::collection::vec(op(), 1..24)) {
        let view: std::rc::Rc<std::cell::RefCell<HubView>> = Default::default();
        let mut net = random_net(relax);
        net.hub_view = Some(view.clone());
        let hub = ip(1);
        // Feeds the hub one input (with its view) and runs what it causes until quiet.
        let to_hub = |net: &mut Net, k: u8, input: Input| {
            net.run(vec![(1, k, input)]);
        };
        for op in ops {
            match op {
                Op::Originate(k, routes) => {
                    let table = routes
                        .into_iter()
                        .map(|(i, origin, med)| {
                            let origin = [Origin::Igp, Origin::Egp, Origin::Incomplete][usize::from(origin)];
                            (pool(i), PathAttrs { origin: Some(origin), med, ..PathAttrs::default() })
                        })
                        .collect();
                    let out = net.node_mut(k).set_originated(table, &resolve);
                    net.deliver(k, out);
                }
                Op::Bounce(k) => {
                    to_hub(&mut net, k, Input::Stop);
                    to_hub(&mut net, k, Input::Start);
                }
                Op::Resolve(k, cost) => {
                    view.borrow_mut().insert(ip(k), cost);
                    let v = view.borrow().clone();
                    let at = net.nodes.get_mut(&hub).expect("hub")
                        .resolution_changed(&|_: &PeerInfo, nh| hub_resolve(&v, nh));
                    net.deliver(1, at);
                }
                Op::Import(k, reject) => {
                    let import = reject.map(|i| Policy {
                        terms: vec![Term {
                            matches: vec![Match::PrefixList(vec![PrefixMatch {
                                prefix: pool(i),
                                ge: None,
                                le: None,
                            }])],
                            sets: vec![],
                            verdict: Some(Verdict::Reject),
                        }],
                        default: Verdict::Accept,
                    });
                    let v = view.borrow().clone();
                    let at = net.nodes.get_mut(&hub).expect("hub")
                        .set_neighbor_policy(ip(k), import, None, true, false, &|_: &PeerInfo, nh| hub_resolve(&v, nh));
                    net.deliver(1, at);
                }
                Op::Export(k, reject) => {
                    let export = reject.map(|i| Policy {
                        terms: vec![Term {
                            matches: vec![Match::PrefixList(vec![PrefixMatch {
                                prefix: pool(i),
                                ge: None,
                                le: None,
                            }])],
                            sets: vec![],
                            verdict: Some(Verdict::Reject),
                        }],
                        default: Verdict::Accept,
                    });
                    let v = view.borrow().clone();
                    let at = net.nodes.get_mut(&hub).expect("hub")
                        .set_neighbor_policy(ip(k), None, export, true, false, &|_: &PeerInfo, nh| hub_resolve(&v, nh));
                    net.deliver(1, at);
                }
                Op::HubOriginates(ps) => {
                    let mut table = originates(1);
                    for i in ps {
                        table.insert(pool(i), PathAttrs { origin: Some(Origin::Igp), ..PathAttrs::default() });
                    }
                    let v = view.borrow().clone();
                    let at = net.nodes.get_mut(&hub).expect("hub")
                        .set_originated(table, &|_: &PeerInfo, nh| hub_resolve(&v, nh));
                    net.deliver(1, at);
                }
            }
            let v = view.borrow().clone();
            assert_equals_full_recompute(net.node(1), &|_: &PeerInfo, nh| hub_resolve(&v, nh));
            // The kept tables hold exactly what the peers sent, and the post-policy
            // tables are within them.
            for k in [2u8, 4] {
                let at_hub = net.node(1).neighbor(ip(k)).expect("neighbor");
                let pre: Vec<IpNetwork> = at_hub.adj_rib_in_pre.expect("kept").iter().map(|(p, _)| *p).collect();
                let sent: Vec<IpNetwork> = net.node(k).neighbor(hub).expect("hub").adj_rib_out.iter().map(|(p, _)| *p).collect();
                proptest::prop_assert_eq!(&pre, &sent, "kept from {}", k);
                let post = net.node(1).decision().adj_rib_in(ip(k));
                proptest::prop_assert!(post.is_none_or(|t| t.iter().all(|(p, _)| pre.contains(&p))));
            }
        }
    }
}

/// Import policy of B: rejects 10.1.0.0/24, accepts the rest.
fn reject_one() -> Policy {
    Policy {
        terms: vec![Term {
            matches: vec![Match::PrefixList(vec![PrefixMatch {
                prefix: net("10.1.0.0/24"),
                ge: None,
                le: None,
            }])],
            sets: vec![],
            verdict: Some(Verdict::Reject),
        }],
        default: Verdict::Accept,
    }
}

/// The messages among `outs` written to `to`, parsed.
fn written(outs: &[Output], to: IpAddr) -> Vec<Message> {
    let mut framer = Framer::new();
    for o in outs {
        if let Output::Write(a, bytes) = o {
            if *a == to {
                framer.push(bytes);
            }
        }
    }
    let mut msgs = Vec::new();
    while let Some(m) = framer.next_message() {
        msgs.push(Message::parse(&m.expect("framed"), codec4()).expect("parsed"));
    }
    msgs
}

fn refreshes(outs: &[Output], to: IpAddr) -> usize {
    written(outs, to)
        .iter()
        .filter(|m| matches!(m, Message::RouteRefresh(_)))
        .count()
}

fn kept(i: &Instance, from: IpAddr) -> Vec<IpNetwork> {
    let n = i.neighbor(from).expect("neighbor");
    let t = n.adj_rib_in_pre.expect("keep-received-routes");
    t.iter().map(|(p, _)| *p).collect()
}

/// A pair where B keeps what A sends and rejects 10.1.0.0/24 by import policy.
fn keeping_pair() -> (Instance, Instance) {
    let mut a = instance(1, 65001, B, 65002, Some(Policy::accept_all()));
    let mut b = instance(2, 65002, A, 65001, Some(reject_one()));
    b.set_keep_received_routes(A, true);
    run(
        &mut a,
        &mut b,
        vec![(false, Input::Start), (true, Input::Start)],
    );
    assert_eq!(b.state(A), Some(State::Established));
    (a, b)
}

fn with_originated(
    mut o: BTreeMap<IpNetwork, PathAttrs>,
    p: &str,
) -> BTreeMap<IpNetwork, PathAttrs> {
    o.insert(
        net(p),
        PathAttrs {
            origin: Some(Origin::Igp),
            ..PathAttrs::default()
        },
    );
    o
}

/// Delivers `outs` of A to B and runs both until quiet; returns B's outputs.
fn a_to_b(a: &mut Instance, b: &mut Instance, outs: Vec<Output>) -> Vec<Output> {
    let first = outs
        .into_iter()
        .filter_map(|o| match o {
            Output::Write(_, bytes) => Some((false, Input::Received(bytes))),
            _ => None,
        })
        .collect();
    run(a, b, first).1
}

#[test]
fn kept_table_holds_rejected_routes_and_follows_withdrawals() {
    let (mut a, mut b) = keeping_pair();
    // Rejected by policy: not in the post-policy table, but kept as received.
    assert!(b.routes().is_empty());
    assert!(b.decision().adj_rib_in(A).is_some_and(|t| t.is_empty()));
    assert_eq!(kept(&b, A), vec![net("10.1.0.0/24")]);
    let n = b.neighbor(A).unwrap();
    let r = n.adj_rib_in_pre.unwrap().get(&net("10.1.0.0/24")).unwrap();
    assert_eq!(r.next_hop(), Some(A));
    assert_eq!(
        r.attrs.as_path.as_ref().and_then(|p| p.first_as()),
        Some(65001)
    );
    // A neighbor without the option keeps nothing.
    assert!(a.neighbor(B).unwrap().adj_rib_in_pre.is_none());

    // An accepted announcement is in both tables; its withdrawal leaves both.
    let more = with_originated(a.config().originated.clone(), "10.1.1.0/24");
    let outs = a.set_originated(more, &resolve);
    a_to_b(&mut a, &mut b, outs);
    assert_eq!(kept(&b, A), vec![net("10.1.0.0/24"), net("10.1.1.0/24")]);
    assert_eq!(
        b.routes().keys().collect::<Vec<_>>(),
        vec![net("10.1.1.0/24")]
    );
    let fewer = with_originated(BTreeMap::new(), "10.1.1.0/24");
    let outs = a.set_originated(fewer, &resolve);
    a_to_b(&mut a, &mut b, outs);
    assert_eq!(kept(&b, A), vec![net("10.1.1.0/24")]);
    assert_eq!(
        b.routes().keys().collect::<Vec<_>>(),
        vec![net("10.1.1.0/24")]
    );

    // Session down: the kept table empties with the session.
    b.handle(A, Input::PeerSilent, &resolve);
    assert!(kept(&b, A).is_empty());
    assert!(b.routes().is_empty());
}

#[test]
fn soft_reset_inbound_reapplies_policy_from_the_kept_table_without_the_peer() {
    let (_a, mut b) = keeping_pair();
    assert!(b.routes().is_empty());
    // A new policy admits 10.1.0.0/24: applied from the kept table at once, nothing sent
    // to A (no ROUTE-REFRESH), and A is not needed at all.
    let outs = b.set_neighbor_policy(
        A,
        Some(Policy::accept_all()),
        Some(Policy::accept_all()),
        false,
        false,
        &resolve,
    );
    assert_eq!(refreshes(&outs, A), 0);
    assert_eq!(last_routes(&b, &outs), Some(vec![net("10.1.0.0/24")]));
    assert_eq!(
        b.decision().adj_rib_in(A).map(|t| t.len()),
        Some(1),
        "post-policy table"
    );
    // And back: a plain soft reset with the old policy rejects it again.
    b.set_neighbor_policy(A, Some(reject_one()), None, false, false, &resolve);
    assert!(b.routes().is_empty());
    let outs = b.soft_reset(A, true, false, &resolve);
    assert!(written(&outs, A).is_empty(), "{outs:?}");
    assert!(b.routes().is_empty());
    assert_eq!(kept(&b, A), vec![net("10.1.0.0/24")]);
}

#[test]
fn soft_reset_inbound_without_a_kept_table_asks_for_a_route_refresh() {
    let mut a = instance(1, 65001, B, 65002, Some(Policy::accept_all()));
    let mut b = instance(2, 65002, A, 65001, Some(reject_one()));
    run(
        &mut a,
        &mut b,
        vec![(false, Input::Start), (true, Input::Start)],
    );
    let outs = b.soft_reset(A, true, false, &resolve);
    assert_eq!(refreshes(&outs, A), 2, "one per family");
    assert!(b.neighbor(A).unwrap().adj_rib_in_pre.is_none());

    // Turned on while the session is up: the table starts incomplete, so the next
    // soft reset asks the peer once, and its answer fills the table.
    b.set_keep_received_routes(A, true);
    assert!(kept(&b, A).is_empty());
    let outs = b.set_neighbor_policy(A, Some(reject_one()), None, false, false, &resolve);
    assert_eq!(refreshes(&outs, A), 2);
    let first = outs
        .into_iter()
        .filter_map(|o| match o {
            Output::Write(_, bytes) => Some((true, Input::Received(bytes))),
            _ => None,
        })
        .collect();
    run(&mut a, &mut b, first);
    assert_eq!(kept(&b, A), vec![net("10.1.0.0/24")]);
    assert!(b.routes().is_empty());
    // Complete now: the next soft reset stays local.
    let outs = b.soft_reset(A, true, false, &resolve);
    assert_eq!(refreshes(&outs, A), 0);
    // Turned off: the table goes, the session stays.
    b.set_keep_received_routes(A, false);
    assert!(b.neighbor(A).unwrap().adj_rib_in_pre.is_none());
    assert_eq!(b.state(A), Some(State::Established));
}

#[test]
fn import_policy_sets_local_pref_on_ebgp_routes() {
    // RFC 4271 5.1.5 drops an eBGP peer's LOCAL_PREF; one set by our import policy
    // (after that) stays and counts in the decision.
    let lp = Policy {
        terms: vec![Term {
            matches: vec![],
            sets: vec![crate::routing::bgp::policy::Set::LocalPref(300)],
            verdict: Some(Verdict::Accept),
        }],
        default: Verdict::Accept,
    };
    let mut a = instance(1, 65001, B, 65002, Some(Policy::accept_all()));
    let mut b = instance(2, 65002, A, 65001, Some(lp));
    run(
        &mut a,
        &mut b,
        vec![(false, Input::Start), (true, Input::Start)],
    );
    let t = b.decision().adj_rib_in(A).expect("table");
    let p = t.get(&net("10.1.0.0/24")).expect("learned");
    assert_eq!(p.attrs.local_pref, Some(300));
}

/// An UPDATE of 1,500 /24s from AS 65001 with next hop A: 6,000 bytes of NLRI.
fn big_update() -> Vec<u8> {
    let nlri = (0..1500u32)
        .map(|i| IpNetwork::new(Ipv4Addr::from(0x0b00_0000 + (i << 8)).into(), 24).unwrap())
        .collect();
    let u = UpdateRepr {
        withdrawn: vec![],
        attrs: PathAttrs {
            origin: Some(Origin::Igp),
            as_path: Some(crate::routing::bgp::attr::AsPath::sequence(&[65001])),
            next_hop: Some(match A {
                IpAddr::V4(a) => a,
                IpAddr::V6(_) => unreachable!(),
            }),
            ..PathAttrs::default()
        },
        nlri,
        faults: Default::default(),
    };
    let bytes = Message::Update(u).emit(codec4());
    assert!(bytes.len() > 4096);
    bytes
}

#[test]
fn extended_messages_when_both_offer_them() {
    let mut a = instance(1, 65001, B, 65002, Some(Policy::accept_all()));
    let mut b = instance(2, 65002, A, 65001, Some(Policy::accept_all()));
    run(
        &mut a,
        &mut b,
        vec![(false, Input::Start), (true, Input::Start)],
    );
    let neg = b
        .neighbor(A)
        .and_then(|n| n.session.negotiated().cloned())
        .unwrap();
    assert!(neg.extended_message);
    let outs = b.handle(A, Input::Received(big_update()), &resolve);
    assert_eq!(b.state(A), Some(State::Established), "{outs:?}");
    // The 1,500 and A's own 10.1.0.0/24.
    assert_eq!(b.decision().adj_rib_in(A).map(|t| t.len()), Some(1501));
}

#[test]
fn without_extended_messages_a_long_update_ends_the_session() {
    let mut a = instance(1, 65001, B, 65002, Some(Policy::accept_all()));
    // B does not offer it (as before RFC 8654): 4096 bytes stay the limit.
    let mut b = instance_offering(2, 65002, A, 65001, Some(Policy::accept_all()), false);
    run(
        &mut a,
        &mut b,
        vec![(false, Input::Start), (true, Input::Start)],
    );
    assert_eq!(b.state(A), Some(State::Established));
    assert!(
        !b.neighbor(A)
            .and_then(|n| n.session.negotiated().cloned())
            .unwrap()
            .extended_message
    );
    let outs = b.handle(A, Input::Received(big_update()), &resolve);
    let notified = written(&outs, A).into_iter().any(|m| {
        matches!(m, Message::Notification(n) if n.code == crate::routing::bgp::message::HEADER_ERROR)
    });
    assert!(notified, "Bad Message Length: {outs:?}");
    assert_ne!(b.state(A), Some(State::Established));
}
