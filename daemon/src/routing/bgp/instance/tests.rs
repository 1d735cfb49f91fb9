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
