//! In-process lab: several routers in one test process, talking WireGuard over loopback UDP.
//! No root, no TUN: packets enter through the router's own local-send path and come back on
//! its local-delivery channel, so what is tested is the real tunnel, demux and forwarding
//! code between real sockets.

use ipnetwork::IpNetwork;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use wgrd::config::{Config, RouteVia, StaticRoute};
use wgrd::keys::PrivateKey;
use wgrd::router::Router;

mod common;

const WAIT: Duration = Duration::from_secs(10);

fn router_config(id: [u8; 4], key: &PrivateKey) -> Config {
    common::loopback_router(Ipv4Addr::from(id), key)
}

use common::loopback_tunnel as tunnel;

fn route(prefix: &str, via: &str) -> StaticRoute {
    StaticRoute {
        prefix: prefix.parse::<IpNetwork>().unwrap(),
        via: RouteVia::Tunnel(via.into()),
    }
}

/// Ping `dst` from router `from` (source `src`) until the echo reply comes back to
/// `from`'s local delivery (bounded by WAIT). Returns the reply packet.
async fn ping(
    from: &Router,
    local: &mut common::LocalRx,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    seq: u16,
) -> Option<Vec<u8>> {
    common::ping_until(from, local, src, dst, seq, Duration::from_millis(500), WAIT).await
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_carries_spoke_to_spoke_traffic_and_follows_a_roaming_spoke() {
    let (hub_key, a_key, c_key) = (
        PrivateKey::generate(),
        PrivateKey::generate(),
        PrivateKey::generate(),
    );
    let (hub_id, a_id, c_id) = ([10, 255, 0, 1], [10, 255, 0, 2], [10, 255, 0, 3]);

    // The hub knows no endpoints: both spokes dial in (remote-access server style).
    let mut hub_cfg = router_config(hub_id, &hub_key);
    hub_cfg.tunnels = vec![
        tunnel("to-a", &a_key, None, "169.254.1.0/31"),
        tunnel("to-c", &c_key, None, "169.254.2.0/31"),
    ];
    hub_cfg.routes = vec![
        route("10.255.0.2/32", "to-a"),
        route("10.255.0.3/32", "to-c"),
    ];
    let hub = Router::start(hub_cfg).await.expect("hub starts");
    let hub_addr: SocketAddr = (Ipv4Addr::LOCALHOST, hub.local_ports()[0]).into();

    let spoke = |id: [u8; 4], key: &PrivateKey, addr: &str| {
        let mut cfg = router_config(id, key);
        cfg.tunnels = vec![tunnel("to-hub", &hub_key, Some(hub_addr), addr)];
        cfg.routes = vec![route("10.255.0.0/16", "to-hub")];
        cfg
    };
    let a = Router::start(spoke(a_id, &a_key, "169.254.1.1/31"))
        .await
        .unwrap();
    let c = Router::start(spoke(c_id, &c_key, "169.254.2.1/31"))
        .await
        .unwrap();
    let mut a_local = a.take_local_packets().unwrap();

    let hub_tunnel = |name: &str| hub.path().tunnels.load().by_name(name).unwrap().clone();
    wait_for("both spokes to dial in", || {
        hub_tunnel("to-a").endpoint().is_some() && hub_tunnel("to-c").endpoint().is_some()
    })
    .await;

    // Spoke to spoke through the hub: A pings C's router id, C answers, the reply returns.
    let reply = ping(&a, &mut a_local, a_id.into(), c_id.into(), 1).await;
    assert!(
        reply.is_some(),
        "no echo reply from spoke C through the hub"
    );
    let transit = hub_tunnel("to-c");
    assert!(
        transit
            .counters
            .tx_packets
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );

    // The hub itself answers on its own address, too.
    assert!(ping(&a, &mut a_local, a_id.into(), hub_id.into(), 2)
        .await
        .is_some());

    // Roaming: spoke A comes back from another UDP port (as after a NAT rebinding); the
    // hub must follow it without any configuration change.
    let old_endpoint = hub_tunnel("to-a").endpoint().unwrap();
    a.shutdown().await;
    let a2 = Router::start(spoke(a_id, &a_key, "169.254.1.1/31"))
        .await
        .unwrap();
    let new_port = a2.local_ports()[0];
    assert_ne!(new_port, old_endpoint.port());
    let mut a2_local = a2.take_local_packets().unwrap();
    let reply = ping(&a2, &mut a2_local, a_id.into(), c_id.into(), 3).await;
    assert!(reply.is_some(), "no reply after the spoke roamed");
    assert_eq!(hub_tunnel("to-a").endpoint().unwrap().port(), new_port);

    a2.shutdown().await;
    c.shutdown().await;
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applying_a_config_changes_only_what_differs() {
    let (r1_key, r2_key, r3_key) = (
        PrivateKey::generate(),
        PrivateKey::generate(),
        PrivateKey::generate(),
    );
    let (r1_id, r2_id) = ([10, 255, 1, 1], [10, 255, 1, 2]);
    let r2 = Router::start({
        let mut c = router_config(r2_id, &r2_key);
        c.tunnels = vec![tunnel("to-r1", &r1_key, None, "169.254.9.1/31")];
        c.routes = vec![route("10.255.1.1/32", "to-r1")];
        c
    })
    .await
    .unwrap();
    let r2_addr: SocketAddr = (Ipv4Addr::LOCALHOST, r2.local_ports()[0]).into();
    let mut cfg = router_config(r1_id, &r1_key);
    cfg.tunnels = vec![tunnel("to-r2", &r2_key, Some(r2_addr), "169.254.9.0/31")];
    cfg.routes = vec![route("10.255.1.2/32", "to-r2")];
    let r1 = Router::start(cfg.clone()).await.unwrap();
    let mut local = r1.take_local_packets().unwrap();
    assert!(ping(&r1, &mut local, r1_id.into(), r2_id.into(), 1)
        .await
        .is_some());
    let before = r1.tunnel("to-r2").await.unwrap();
    assert!(before.session_up);

    // Add a tunnel and a route, change nothing about to-r2.
    let mut next = cfg.clone();
    next.tunnels
        .push(tunnel("to-r3", &r3_key, None, "169.254.10.0/31"));
    next.routes.push(route("10.3.0.0/16", "to-r3"));
    let summary = r1.apply(next.clone()).await.expect("apply succeeds");
    assert_eq!(summary.tunnels_added, vec!["to-r3".to_string()]);
    assert!(summary.tunnels_replaced.is_empty() && summary.tunnels_updated.is_empty());
    let lookup = r1.lookup("10.3.1.1".parse().unwrap()).unwrap();
    assert_eq!(lookup.next_hop.to_string(), "to-r3");

    // The untouched tunnel kept its session: same handshake count, counters carried on.
    assert!(ping(&r1, &mut local, r1_id.into(), r2_id.into(), 2)
        .await
        .is_some());
    let after = r1.tunnel("to-r2").await.unwrap();
    assert_eq!(after.handshakes, before.handshakes);
    assert!(after.tx_packets > before.tx_packets);

    // A change that needs a restart is refused whole: nothing changes.
    let mut bad = next.clone();
    bad.router.listen_port = 1;
    bad.tunnels.retain(|t| t.name != "to-r3");
    let errors = r1.apply(bad).await.unwrap_err();
    assert_eq!(errors[0].field, "router.listen-port");
    assert!(
        r1.tunnel("to-r3").await.is_some(),
        "a refused apply changed nothing"
    );

    // Removing a tunnel removes its routes.
    r1.apply(cfg).await.unwrap();
    assert!(r1.tunnel("to-r3").await.is_none());
    assert!(r1.lookup("10.3.1.1".parse().unwrap()).is_none());
    r1.shutdown().await;
    r2.shutdown().await;
}

/// A protocol's update is announced as one event carrying every changed prefix, so even
/// a batch far beyond the event queue's capacity (4,096) cannot make a watcher lag, and
/// the routes render with their tunnel's name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_route_update_is_one_event_with_every_changed_prefix() {
    use wgrd::dataplane::NextHop;
    use wgrd::router::view::{NextHopInfo, RouterEvent};
    use wgrd::routing::rib::{Candidate, RouteSource};

    let (key, peer) = (PrivateKey::generate(), PrivateKey::generate());
    let mut cfg = router_config([10, 255, 2, 1], &key);
    cfg.tunnels = vec![tunnel("to-peer", &peer, None, "169.254.11.0/31")];
    let router = Router::start(cfg).await.unwrap();
    let via = router.path().tunnels.load().by_name("to-peer").unwrap().id;
    let mut events = router.subscribe();

    const ROUTES: u32 = 10_000;
    let prefixes: Vec<IpNetwork> = (0..ROUTES)
        .map(|n| format!("10.{}.{}.0/24", n >> 8, n & 0xff).parse().unwrap())
        .collect();
    let bgp = RouteSource::Bgp { ebgp: true };
    let add = prefixes
        .iter()
        .map(|&prefix| Candidate {
            prefix,
            source: bgp,
            next_hop: NextHop::Tunnel(via),
            metric: 0,
        })
        .collect();
    assert_eq!(
        router.update_protocol_routes(bgp, add, vec![]).await,
        ROUTES as usize
    );
    let Ok(RouterEvent::Routes(batch)) = events.try_recv() else {
        panic!("one route batch expected");
    };
    let infos: Vec<_> = batch.route_infos().collect();
    assert_eq!(
        infos.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
        prefixes,
        "every prefix once, in prefix order"
    );
    for (_, route) in &infos {
        let route = route.as_ref().expect("a new best route");
        assert_eq!(route.source, "ebgp");
        assert_eq!(
            route.next_hop,
            NextHopInfo::Tunnels(vec!["to-peer".to_string()])
        );
    }
    assert!(events.try_recv().is_err(), "nothing else queued");

    // Withdrawing them all: one event again, every prefix gone.
    router
        .update_protocol_routes(bgp, vec![], prefixes.clone())
        .await;
    let Ok(RouterEvent::Routes(batch)) = events.try_recv() else {
        panic!("one route batch expected");
    };
    assert_eq!(batch.best_routes().len(), prefixes.len());
    assert!(batch.best_routes().all(|(_, best)| best.is_none()));
    assert_eq!(router.lookup("10.1.2.3".parse().unwrap()), None);
    router.shutdown().await;
}
