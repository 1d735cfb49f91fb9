//! In-process OSPF lab: three routers in one test process, in a triangle of WireGuard
//! tunnels over loopback UDP, each running its OSPF speaker. No root, no TUN: pings enter
//! through the router's own local-send path and replies come back on local delivery.
//!
//! Checks: adjacencies reach Full, every router learns the others' router ids and a
//! redistributed static route, traffic takes the cheaper two-hop path, and when the
//! middle router stops, traffic moves to the direct tunnel (timed, fast profile). And
//! several areas around a border router, with a stub area.

use ipnetwork::IpNetwork;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wgrd::config::{
    Config, OspfArea, OspfConfig, OspfProfile, OspfRedistribute, RedistributeFrom, RouteVia,
    RouterConfig, StaticRoute, TunnelConfig, TunnelOspf,
};
use wgrd::keys::PrivateKey;
use wgrd::router::Router;
use wgrd::routing::ospf::instance::Scope;
use wgrd::routing::ospf::neighbor::State;
use wgrd::routing::ospf::spf::PathType;
use wgrd::routing::ospf::{self, OspfHandle};

mod common;

const WAIT: Duration = Duration::from_secs(15);

fn router_config(id: Ipv4Addr, key: &PrivateKey) -> Config {
    Config {
        router: RouterConfig {
            router_id: id,
            private_key: key.clone(),
            private_key_file: None,
            listen_port: 0,
            listen_address: Some("127.0.0.1".parse().unwrap()),
        },
        host: None,
        tunnels: vec![],
        routes: vec![],
        control: Default::default(),
        forwarding: Default::default(),
        nat: Default::default(),
        ospf: Some(OspfConfig {
            profile: OspfProfile::Fast,
            ..Default::default()
        }),
        bgp: None,
        policies: vec![],
        prefix_lists: vec![],
    }
}

fn tunnel(
    name: &str,
    peer: &PrivateKey,
    endpoint: Option<SocketAddr>,
    addr: &str,
    cost: u16,
) -> TunnelConfig {
    TunnelConfig {
        name: name.into(),
        peer_public_key: peer.public_key(),
        preshared_key: None,
        preshared_key_file: None,
        endpoint,
        persistent_keepalive: endpoint.map(|_| 1),
        addresses: vec![addr.parse().unwrap()],
        mtu: 1420,
        listen_port: None,
        ospf: Some(TunnelOspf {
            cost: Some(cost),
            ..Default::default()
        }),
    }
}

/// One ping; true if the reply came back within `wait`.
async fn ping_once(
    from: &Router,
    local: &mut common::LocalRx,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    seq: u16,
    wait: Duration,
) -> bool {
    common::ping_once(from, local, src, dst, seq, wait)
        .await
        .is_some()
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    start.elapsed()
}

fn via(router: &Router, dst: Ipv4Addr) -> Option<String> {
    router.lookup(dst.into()).map(|l| l.next_hop.to_string())
}

fn full(h: &OspfHandle) -> usize {
    h.status()
        .neighbors
        .iter()
        .filter(|n| n.state == State::Full)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triangle_converges_follows_lowest_cost_and_reroutes_when_a_router_stops() {
    let keys: Vec<PrivateKey> = (0..3).map(|_| PrivateKey::generate()).collect();
    let id = |n: u8| Ipv4Addr::new(10, 255, 2, n);
    let started = Instant::now();

    // r1 accepts both tunnels; r2 dials r1; r3 dials both. Costs: r1-r2 10, r2-r3 10,
    // r1-r3 50, so r1 reaches r3 through r2.
    let mut c1 = router_config(id(1), &keys[0]);
    c1.tunnels = vec![
        tunnel("to-r2", &keys[1], None, "169.254.12.0/31", 10),
        tunnel("to-r3", &keys[2], None, "169.254.13.0/31", 50),
    ];
    let r1 = Arc::new(Router::start(c1).await.unwrap());
    let r1_addr: SocketAddr = (Ipv4Addr::LOCALHOST, r1.local_ports()[0]).into();
    let mut c2 = router_config(id(2), &keys[1]);
    c2.tunnels = vec![
        tunnel("to-r1", &keys[0], Some(r1_addr), "169.254.12.1/31", 10),
        tunnel("to-r3", &keys[2], None, "169.254.23.0/31", 10),
    ];
    let r2 = Arc::new(Router::start(c2).await.unwrap());
    let r2_addr: SocketAddr = (Ipv4Addr::LOCALHOST, r2.local_ports()[0]).into();
    let mut c3 = router_config(id(3), &keys[2]);
    c3.tunnels = vec![
        tunnel("to-r1", &keys[0], Some(r1_addr), "169.254.13.1/31", 50),
        tunnel("to-r2", &keys[1], Some(r2_addr), "169.254.23.1/31", 10),
    ];
    // r3 redistributes a static route (E2, metric 20).
    c3.routes = vec![StaticRoute {
        prefix: "192.168.33.0/24".parse::<IpNetwork>().unwrap(),
        via: RouteVia::Blackhole,
    }];
    if let Some(o) = c3.ospf.as_mut() {
        o.redistribute = vec![OspfRedistribute {
            from: RedistributeFrom::Static,
            metric: 20,
            metric_type: 2,
            prefix_list: vec![],
        }];
    }
    let r3 = Arc::new(Router::start(c3).await.unwrap());
    let o1 = ospf::spawn(Arc::clone(&r1));
    let o2 = ospf::spawn(Arc::clone(&r2));
    let o3 = ospf::spawn(Arc::clone(&r3));
    let mut r1_local = r1.take_local_packets().unwrap();

    wait_for("every adjacency Full", || {
        full(&o1) == 2 && full(&o2) == 2 && full(&o3) == 2
    })
    .await;
    let converged = wait_for("r1 to reach r3 via r2", || {
        via(&r1, id(3)).as_deref() == Some("to-r2")
            && via(&r3, id(1)).as_deref() == Some("to-r2")
            && via(&r1, "192.168.33.1".parse().unwrap()).as_deref() == Some("to-r2")
            // r2's own SPF may run a hold time after the others' on a busy machine.
            && via(&r2, id(1)).is_some()
            && via(&r2, id(3)).is_some()
    })
    .await;
    let initial = started.elapsed();
    eprintln!("initial convergence: {initial:?} from start ({converged:?} after Full)");

    // Every router learned the others' ids and the tunnel subnets it is not on.
    assert_eq!(via(&r2, id(1)).as_deref(), Some("to-r1"));
    assert_eq!(via(&r2, id(3)).as_deref(), Some("to-r3"));
    assert_eq!(
        via(&r1, "169.254.23.0".parse().unwrap()).as_deref(),
        Some("to-r2")
    );
    let routes = r1.rib_routes().await;
    let ext = routes
        .iter()
        .find(|r| r.prefix.to_string() == "192.168.33.0/24" && r.source == "ospf")
        .expect("the redistributed route reached r1");
    assert!(ext.best);

    // Traffic follows the lowest cost: r1 -> r2 -> r3 and back.
    let transit_before = r2.tunnel("to-r3").await.unwrap().tx_packets;
    let mut seq = 0u16;
    let mut ok = false;
    for _ in 0..20 {
        seq += 1;
        if ping_once(
            &r1,
            &mut r1_local,
            id(1),
            id(3),
            seq,
            Duration::from_millis(500),
        )
        .await
        {
            ok = true;
            break;
        }
    }
    assert!(ok, "no echo reply from r3");
    assert!(r2.tunnel("to-r3").await.unwrap().tx_packets > transit_before);

    // Stop r2 (its OSPF and its tunnels): r1 and r3 hear nothing more from it, their
    // tunnels report the peer silent and the adjacency ends without a dead interval.
    let cut = Instant::now();
    o2.shutdown().await;
    r2.shutdown().await;
    let reroute = wait_for("r1 to reach r3 directly", || {
        via(&r1, id(3)).as_deref() == Some("to-r3") && via(&r3, id(1)).as_deref() == Some("to-r1")
    })
    .await;
    eprintln!("reroute after r2 stopped: {reroute:?} (tunnel liveness 1 s)");
    assert!(reroute < Duration::from_secs(3), "reroute took {reroute:?}");
    // And traffic flows on the new path.
    let mut ok = false;
    for _ in 0..20 {
        seq += 1;
        if ping_once(
            &r1,
            &mut r1_local,
            id(1),
            id(3),
            seq,
            Duration::from_millis(300),
        )
        .await
        {
            ok = true;
            break;
        }
    }
    assert!(ok, "no echo reply over the direct tunnel");
    eprintln!("traffic restored {:?} after the cut", cut.elapsed());
    // Once r3's new router-LSA (without its link to r2) arrives, r2 is unreachable.
    wait_for("r2's routes to go", || via(&r1, id(2)).is_none()).await;

    o1.shutdown().await;
    o3.shutdown().await;
    // OSPF routes are withdrawn when the speaker stops.
    assert!(r1.rib_routes().await.iter().all(|r| r.source != "ospf"));
    r1.shutdown().await;
    r3.shutdown().await;
}

/// `liveness-ms` reaches the tunnels: `[ospf] liveness-ms` for tunnels that set none, a
/// tunnel's own value before it, a change applied at runtime; the status shows what the
/// tunnel runs with. Then the peer stops and the adjacency ends on the liveness report,
/// long before the fast profile's 3 s dead interval could end it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_liveness_reaches_the_tunnel_and_ends_the_adjacency() {
    let keys: Vec<PrivateKey> = (0..2).map(|_| PrivateKey::generate()).collect();
    let id = |n: u8| Ipv4Addr::new(10, 255, 3, n);
    let ms = Duration::from_millis;

    let mut c1 = router_config(id(1), &keys[0]);
    c1.tunnels = vec![tunnel("to-r2", &keys[1], None, "169.254.12.0/31", 10)];
    c1.ospf.as_mut().unwrap().liveness_ms = Some(300);
    let r1 = Arc::new(Router::start(c1.clone()).await.unwrap());
    let r1_addr: SocketAddr = (Ipv4Addr::LOCALHOST, r1.local_ports()[0]).into();
    let mut c2 = router_config(id(2), &keys[1]);
    let mut t = tunnel("to-r1", &keys[0], Some(r1_addr), "169.254.12.1/31", 10);
    t.ospf.as_mut().unwrap().liveness_ms = Some(250);
    c2.tunnels = vec![t];
    c2.ospf.as_mut().unwrap().liveness_ms = Some(5000);
    let r2 = Arc::new(Router::start(c2).await.unwrap());
    let o1 = ospf::spawn(Arc::clone(&r1));
    let o2 = ospf::spawn(Arc::clone(&r2));
    wait_for("the adjacency Full", || full(&o1) == 1 && full(&o2) == 1).await;

    let tunnel_liveness =
        |r: &Router, name: &str| r.path().tunnels.load().by_name(name).unwrap().liveness();
    let shown = |h: &OspfHandle| h.status().interfaces[0].liveness;
    assert_eq!(tunnel_liveness(&r1, "to-r2"), Some(ms(300)));
    assert_eq!(shown(&o1), Some(ms(300)));
    assert_eq!(
        tunnel_liveness(&r2, "to-r1"),
        Some(ms(250)),
        "the tunnel's own wins"
    );
    assert_eq!(shown(&o2), Some(ms(250)));

    // A runtime change reaches the tunnel without restarting the speaker.
    c1.ospf.as_mut().unwrap().liveness_ms = Some(400);
    r1.apply(c1.clone()).await.unwrap();
    wait_for("the new interval on r1's tunnel", || {
        tunnel_liveness(&r1, "to-r2") == Some(ms(400)) && shown(&o1) == Some(ms(400))
    })
    .await;
    assert_eq!(full(&o1), 1, "the adjacency stayed up");
    // A new interval re-arms silence detection only after a few of the peer's probes
    // (the tunnel waits to see that its peer probes at all); give them a second.
    tokio::time::sleep(Duration::from_secs(1)).await;

    // r2 goes away: r1's adjacency ends on the liveness report (400 ms plus a timer
    // tick), not on the 3 s dead interval.
    let cut = Instant::now();
    o2.shutdown().await;
    r2.shutdown().await;
    wait_for("r1's neighbor to go", || full(&o1) == 0).await;
    let down = cut.elapsed();
    eprintln!("adjacency down {down:?} after r2 stopped (liveness 400 ms)");
    assert!(
        down < Duration::from_millis(2500),
        "took {down:?}: the dead interval, not liveness, ended it"
    );
    o1.shutdown().await;
    r1.shutdown().await;
}

/// The OSPF candidate for `prefix` in `r`'s RIB.
async fn ospf_route(r: &Router, prefix: &str) -> Option<wgrd::router::view::RouteInfo> {
    r.rib_routes()
        .await
        .into_iter()
        .find(|x| x.prefix.to_string() == prefix && x.source == "ospf")
}

/// r1 --eBGP-- r2 --OSPF-- r3: r2 redistributes its BGP routes (filtered by a prefix
/// list) into OSPF; r3 learns r1's network as an E2 external, follows a route announced
/// and withdrawn at run time, and never sees what the list leaves out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bgp_routes_redistributed_into_ospf_reach_a_pure_ospf_router() {
    use wgrd::routing::bgp::attr::PathAttrs;
    use wgrd::routing::bgp::io as bgp;
    let keys: Vec<PrivateKey> = (0..3).map(|_| PrivateKey::generate()).collect();
    let id = |n: u8| Ipv4Addr::new(10, 255, 6, n);
    let started = Instant::now();

    // r1: BGP only, originates 10.71.0.0/24 and its router id.
    let mut c1 = common::loopback_router(id(1), &keys[0]);
    c1.tunnels = vec![common::loopback_tunnel(
        "to-r2",
        &keys[1],
        None,
        "169.254.12.0/31",
    )];
    let mut b = common::bgp(65001, id(1), &["10.71.0.0/24", "10.255.6.1/32"]);
    let mut n = wgrd::config::BgpNeighborConfig::new(65002);
    n.tunnel = Some("to-r2".into());
    n.import = Some("all".into());
    n.export = Some("all".into());
    b.neighbors = vec![n];
    c1.bgp = Some(b);
    c1.policies = vec![common::accept_all()];
    let r1 = Arc::new(Router::start(c1).await.unwrap());
    let r1_addr: SocketAddr = (Ipv4Addr::LOCALHOST, r1.local_ports()[0]).into();

    // r2: eBGP to r1 (no OSPF on that tunnel), OSPF to r3 with BGP redistributed:
    // only 10.64.0.0/10 up to /24 passes the list (r1's /32 router id does not).
    let mut c2 = router_config(id(2), &keys[1]);
    let mut to_r1 = common::loopback_tunnel("to-r1", &keys[0], Some(r1_addr), "169.254.12.1/31");
    to_r1.ospf = Some(TunnelOspf {
        disabled: true,
        ..Default::default()
    });
    c2.tunnels = vec![
        to_r1,
        tunnel("to-r3", &keys[2], None, "169.254.23.0/31", 10),
    ];
    let mut b = common::bgp(65002, id(2), &[]);
    let mut n = wgrd::config::BgpNeighborConfig::new(65001);
    n.tunnel = Some("to-r1".into());
    n.import = Some("all".into());
    n.export = Some("all".into());
    b.neighbors = vec![n];
    c2.bgp = Some(b);
    c2.policies = vec![common::accept_all()];
    c2.ospf.as_mut().unwrap().redistribute = vec![OspfRedistribute {
        from: RedistributeFrom::Bgp,
        metric: 30,
        metric_type: 2,
        prefix_list: vec![wgrd::config::PrefixListEntry {
            prefix: "10.64.0.0/10".parse().unwrap(),
            ge: None,
            le: Some(24),
        }],
    }];
    let r2 = Arc::new(Router::start(c2).await.unwrap());
    let r2_addr: SocketAddr = (Ipv4Addr::LOCALHOST, r2.local_ports()[0]).into();

    // r3: OSPF only.
    let mut c3 = router_config(id(3), &keys[2]);
    c3.tunnels = vec![tunnel(
        "to-r2",
        &keys[1],
        Some(r2_addr),
        "169.254.23.1/31",
        10,
    )];
    let r3 = Arc::new(Router::start(c3).await.unwrap());

    let b1 = bgp::spawn(Arc::clone(&r1));
    let b2 = bgp::spawn(Arc::clone(&r2));
    let o2 = ospf::spawn(Arc::clone(&r2));
    let o3 = ospf::spawn(Arc::clone(&r3));

    let learned = {
        let start = Instant::now();
        loop {
            if let Some(route) = ospf_route(&r3, "10.71.0.0/24").await {
                break (start.elapsed(), route);
            }
            assert!(start.elapsed() < WAIT, "r3 never learned 10.71.0.0/24");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    eprintln!(
        "r1's BGP network as an OSPF external on r3 {:?} after start",
        learned.0
    );
    assert!(learned.1.best);
    assert_eq!(
        via(&r3, "10.71.0.1".parse().unwrap()).as_deref(),
        Some("to-r2")
    );
    // E2 metric 30 (type 2 metrics are ranked above every type 1 / internal cost).
    assert_eq!(learned.1.metric, (1 << 24) + 30);
    // Outside the prefix list: r1's router id reached r2 by BGP but not r3 by OSPF.
    assert!(r2
        .rib_routes()
        .await
        .iter()
        .any(|x| x.prefix.to_string() == "10.255.6.1/32" && x.source == "ebgp"));
    assert!(ospf_route(&r3, "10.255.6.1/32").await.is_none());
    let lsa = o3
        .status()
        .lsdb
        .iter()
        .filter(|e| e.lsa.header.ls_type == 5)
        .map(|e| e.lsa.header.id.to_string())
        .collect::<Vec<_>>();
    assert_eq!(lsa, vec!["10.71.0.0"], "r2's externals");

    // Run-time changes follow the RIB: announced on r1, on r3 soon after; withdrawn, gone.
    let t = Instant::now();
    b1.client()
        .announce("10.72.5.0/24".parse().unwrap(), PathAttrs::default())
        .await
        .unwrap();
    loop {
        if ospf_route(&r3, "10.72.5.0/24").await.is_some() {
            break;
        }
        assert!(t.elapsed() < WAIT, "the announced route never reached r3");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!("announced on r1 -> OSPF route on r3: {:?}", t.elapsed());
    let t = Instant::now();
    b1.client()
        .withdraw("10.72.5.0/24".parse().unwrap())
        .await
        .unwrap();
    loop {
        if ospf_route(&r3, "10.72.5.0/24").await.is_none() {
            break;
        }
        assert!(t.elapsed() < WAIT, "the withdrawn route stayed on r3");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!("withdrawn on r1 -> gone on r3: {:?}", t.elapsed());
    eprintln!("total {:?}", started.elapsed());

    o3.shutdown().await;
    o2.shutdown().await;
    b2.shutdown().await;
    b1.shutdown().await;
    for r in [r1, r2, r3] {
        r.shutdown().await;
    }
}

/// Several areas: r0 in the backbone, `abr` on the backbone, area 1 and the stub area 2,
/// r2 in area 1, r3 in area 2. Each learns the others' router ids as inter-area routes
/// through the border router; externals cross into area 1 (through an ASBR-summary) but
/// not into the stub area, which gets a default route instead; pings cross the ABR.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn areas_meet_at_a_border_router_and_a_stub_area_gets_a_default() {
    let keys: Vec<PrivateKey> = (0..4).map(|_| PrivateKey::generate()).collect();
    let id = |n: u8| Ipv4Addr::new(10, 255, 4, n);
    let area = |n: u32| Ipv4Addr::from(n);
    let started = Instant::now();
    let in_area = |mut t: TunnelConfig, a: u32| {
        t.ospf.as_mut().unwrap().area = Some(area(a));
        t
    };
    let stub2 = OspfArea {
        id: area(2),
        stub: true,
        no_summary: false,
        default_cost: 3,
        ranges: vec![],
    };
    let external = |c: &mut Config, prefix: &str| {
        c.routes = vec![StaticRoute {
            prefix: prefix.parse::<IpNetwork>().unwrap(),
            via: RouteVia::Blackhole,
        }];
        c.ospf.as_mut().unwrap().redistribute = vec![OspfRedistribute {
            from: RedistributeFrom::Static,
            metric: 20,
            metric_type: 2,
            prefix_list: vec![],
        }];
    };

    // The ABR accepts the three tunnels; the others dial it.
    let mut ca = router_config(id(1), &keys[1]);
    ca.tunnels = vec![
        in_area(tunnel("to-r0", &keys[0], None, "169.254.41.1/31", 10), 0),
        in_area(tunnel("to-r2", &keys[2], None, "169.254.42.0/31", 10), 1),
        in_area(tunnel("to-r3", &keys[3], None, "169.254.43.0/31", 10), 2),
    ];
    ca.ospf.as_mut().unwrap().areas = vec![stub2.clone()];
    let abr = Arc::new(Router::start(ca).await.unwrap());
    let abr_addr: SocketAddr = (Ipv4Addr::LOCALHOST, abr.local_ports()[0]).into();
    let mut c0 = router_config(id(0), &keys[0]);
    c0.tunnels = vec![tunnel(
        "to-abr",
        &keys[1],
        Some(abr_addr),
        "169.254.41.0/31",
        10,
    )];
    external(&mut c0, "192.168.40.0/24");
    let mut c2 = router_config(id(2), &keys[2]);
    c2.tunnels = vec![in_area(
        tunnel("to-abr", &keys[1], Some(abr_addr), "169.254.42.1/31", 10),
        1,
    )];
    let mut c3 = router_config(id(3), &keys[3]);
    c3.tunnels = vec![in_area(
        tunnel("to-abr", &keys[1], Some(abr_addr), "169.254.43.1/31", 10),
        2,
    )];
    c3.ospf.as_mut().unwrap().areas = vec![stub2];
    let r0 = Arc::new(Router::start(c0).await.unwrap());
    let r2 = Arc::new(Router::start(c2).await.unwrap());
    let r3 = Arc::new(Router::start(c3).await.unwrap());
    let oa = ospf::spawn(Arc::clone(&abr));
    let o0 = ospf::spawn(Arc::clone(&r0));
    let o2 = ospf::spawn(Arc::clone(&r2));
    let o3 = ospf::spawn(Arc::clone(&r3));
    let mut r0_local = r0.take_local_packets().unwrap();
    let mut r3_local = r3.take_local_packets().unwrap();

    let route = |h: &OspfHandle, p: &str| {
        let p: ipnetwork::Ipv4Network = p.parse().unwrap();
        h.status().routes.into_iter().find(|r| r.prefix == p)
    };
    wait_for("every adjacency Full", || {
        full(&oa) == 3 && full(&o0) == 1 && full(&o2) == 1 && full(&o3) == 1
    })
    .await;
    let converged = wait_for("inter-area routes everywhere", || {
        via(&r0, id(2)).as_deref() == Some("to-abr")
            && via(&r0, id(3)).as_deref() == Some("to-abr")
            && via(&r2, id(0)).as_deref() == Some("to-abr")
            && via(&r2, id(3)).as_deref() == Some("to-abr")
            && route(&o2, "192.168.40.0/24").is_some()
            && route(&o3, "0.0.0.0/0").is_some()
            && route(&o3, "10.255.4.0/32").is_some()
    })
    .await;
    eprintln!(
        "areas: every route {:?} after start ({converged:?} after Full)",
        started.elapsed()
    );
    let r = route(&o2, "10.255.4.0/32").unwrap();
    assert_eq!((r.path_type, r.cost), (PathType::InterArea, 20));
    let e = route(&o2, "192.168.40.0/24").unwrap();
    assert_eq!(
        (e.path_type, e.cost, e.cost2),
        (PathType::External2, 20, 20)
    );
    let d = route(&o3, "0.0.0.0/0").unwrap();
    assert_eq!((d.path_type, d.cost), (PathType::InterArea, 13));
    // The stub area holds no AS-external-LSA; r3 has no route to the external but its
    // default covers it.
    let s3 = o3.status();
    assert!(s3.lsdb.iter().all(|e| e.lsa.header.ls_type != 5));
    assert!(route(&o3, "192.168.40.0/24").is_none());
    assert_eq!(
        via(&r3, "192.168.40.1".parse().unwrap()).as_deref(),
        Some("to-abr")
    );
    // The ABR's status: three areas, every interface and neighbor with its own.
    let sa = oa.status();
    assert!(sa.abr);
    assert_eq!(sa.areas.len(), 3);
    assert!(sa.areas.iter().any(|(a, s)| *a == area(2) && s.stub));
    for (tunnel, a) in [("to-r0", 0), ("to-r2", 1), ("to-r3", 2)] {
        let i = sa.interfaces.iter().find(|i| i.tunnel == tunnel).unwrap();
        assert_eq!(i.area, area(a));
        let n = sa.neighbors.iter().find(|n| n.tunnel == tunnel).unwrap();
        assert_eq!(n.area, area(a));
    }
    assert!(sa
        .lsdb
        .iter()
        .any(|e| e.scope == Scope::As && e.lsa.header.ls_type == 5));

    // Pings cross the ABR: backbone to area 1, and from the stub area on its default.
    let mut seq = 0u16;
    for (from, local, src, dst) in [
        (&r0, &mut r0_local, id(0), id(2)),
        (&r3, &mut r3_local, id(3), id(0)),
    ] {
        let mut ok = false;
        for _ in 0..20 {
            seq += 1;
            if ping_once(from, local, src, dst, seq, Duration::from_millis(500)).await {
                ok = true;
                break;
            }
        }
        assert!(ok, "no echo reply from {dst} to {src}");
    }

    // r2 stops: its router id leaves the backbone (the ABR flushes the summary).
    o2.shutdown().await;
    r2.shutdown().await;
    let gone = wait_for("r2's summary to go", || via(&r0, id(2)).is_none()).await;
    eprintln!("areas: r2 stopped -> gone from the backbone in {gone:?}");
    for h in [oa, o0, o3] {
        h.shutdown().await;
    }
    for r in [abr, r0, r3] {
        r.shutdown().await;
    }
}
