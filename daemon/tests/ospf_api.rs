//! The `Ospf` gRPC service through the generated client, over two in-process routers
//! joined by one tunnel over loopback UDP with HMAC-SHA-256 OSPF authentication: the
//! adjacency reaches Full with signed packets, and the service shows interfaces,
//! neighbors, the database and routes, never the key. Without a speaker the service
//! answers FAILED_PRECONDITION.

use hyper_util::rt::TokioIo;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Endpoint, Uri};
use tonic::Code;
use wgrd::config::{
    Config, ControlConfig, OspfAuth, OspfAuthType, OspfConfig, OspfProfile, OspfSecret,
    RouterConfig, TunnelConfig, TunnelOspf,
};
use wgrd::control::{Control, ControlServer};
use wgrd::keys::PrivateKey;
use wgrd::router::Router;
use wgrd::routing::ospf::{self, neighbor::State};
use wgrd_proto::v1 as pb;

const SECRET: &[u8] = b"api-test-ospf-secret";

fn config(id: Ipv4Addr, key: &PrivateKey, tunnel: TunnelConfig) -> Config {
    Config {
        router: RouterConfig {
            router_id: id,
            private_key: key.clone(),
            private_key_file: None,
            listen_port: 0,
            listen_address: Some("127.0.0.1".parse().unwrap()),
        },
        host: None,
        tunnels: vec![tunnel],
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

fn tunnel(peer: &PrivateKey, endpoint: Option<SocketAddr>, addr: &str) -> TunnelConfig {
    TunnelConfig {
        name: "to-peer".into(),
        peer_public_key: peer.public_key(),
        preshared_key: None,
        preshared_key_file: None,
        endpoint,
        persistent_keepalive: endpoint.map(|_| 1),
        addresses: vec![addr.parse().unwrap()],
        mtu: 1420,
        listen_port: None,
        ospf: Some(TunnelOspf {
            cost: Some(7),
            auth: Some(OspfAuth {
                key_id: 5,
                key_file: "ospf.key".into(),
                algorithm: OspfAuthType::HmacSha256,
                key: OspfSecret(SECRET.to_vec()),
            }),
            ..Default::default()
        }),
    }
}

async fn unix_channel(path: &Path) -> Channel {
    let path = path.to_owned();
    Endpoint::try_from("http://wgrd.sock")
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(&path).await?))
            }
        }))
        .await
        .unwrap()
}

async fn serve(
    dir: &Path,
    name: &str,
    control: Control,
) -> (ControlServer, pb::ospf_client::OspfClient<Channel>) {
    let settings = ControlConfig {
        socket: dir.join(name),
        ..Default::default()
    };
    let server = ControlServer::start(Arc::new(control), &settings)
        .await
        .unwrap();
    let client = pb::ospf_client::OspfClient::new(unix_channel(server.socket()).await);
    (server, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ospf_service_shows_an_authenticated_adjacency() {
    let dir = tempfile::tempdir().unwrap();
    let (k1, k2) = (PrivateKey::generate(), PrivateKey::generate());
    let (id1, id2) = (Ipv4Addr::new(10, 255, 7, 1), Ipv4Addr::new(10, 255, 7, 2));
    let r1 = Arc::new(
        Router::start(config(id1, &k1, tunnel(&k2, None, "169.254.70.0/31")))
            .await
            .unwrap(),
    );
    let r1_addr: SocketAddr = (Ipv4Addr::LOCALHOST, r1.local_ports()[0]).into();
    let r2 = Arc::new(
        Router::start(config(
            id2,
            &k2,
            tunnel(&k1, Some(r1_addr), "169.254.70.1/31"),
        ))
        .await
        .unwrap(),
    );
    let o1 = ospf::spawn(Arc::clone(&r1));
    let o2 = ospf::spawn(Arc::clone(&r2));
    let (server, mut client) = serve(
        dir.path(),
        "r1.sock",
        Control::new(Arc::clone(&r1), None).with_ospf(o1.watch()),
    )
    .await;

    let start = Instant::now();
    loop {
        let s = o1.status();
        if s.neighbors.iter().any(|n| n.state == State::Full)
            && s.routes.iter().any(|r| r.prefix.ip() == id2)
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no authenticated adjacency: {:?}",
            s.counters
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let i = client
        .interfaces(pb::OspfInterfacesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(i.router_id, "10.255.7.1");
    assert_eq!(i.area, "0.0.0.0");
    assert_eq!(i.areas.len(), 1);
    assert_eq!(i.areas[0].id, "0.0.0.0");
    assert!(!i.areas[0].stub && !i.abr);
    assert_eq!(i.interfaces[0].area, "0.0.0.0");
    assert!(i.spf_runs >= 1);
    assert!(i.counters["rx_hello"] >= 1);
    assert!(
        !i.counters.contains_key("auth_bad_digest"),
        "{:?}",
        i.counters
    );
    assert_eq!(i.interfaces.len(), 1);
    let f = &i.interfaces[0];
    assert_eq!(
        (
            f.tunnel.as_str(),
            f.address.as_str(),
            f.cost,
            f.auth.as_str(),
            f.auth_key_id
        ),
        ("to-peer", "169.254.70.0/31", 7, "hmac-sha256", 5)
    );
    assert_eq!(f.neighbor_router_id, "10.255.7.2");
    assert_eq!(f.neighbor_state, "full");
    // The key is nowhere in what the API shows.
    let shown = format!("{i:?}");
    assert!(!shown.contains("api-test-ospf-secret"));

    let n = client
        .neighbors(pb::OspfNeighborsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(n.neighbors.len(), 1);
    assert_eq!(n.neighbors[0].router_id, "10.255.7.2");
    assert_eq!(n.neighbors[0].state, "full");
    assert_eq!(n.neighbors[0].tunnel, "to-peer");
    assert_eq!(n.neighbors[0].address, "169.254.70.1");
    assert_eq!(n.neighbors[0].area, "0.0.0.0");

    let d = client
        .database(pb::OspfDatabaseRequest {})
        .await
        .unwrap()
        .into_inner();
    let r2_lsa = d
        .lsas
        .iter()
        .find(|l| l.r#type == 1 && l.adv_router == "10.255.7.2")
        .expect("r2's router-LSA");
    assert_eq!(r2_lsa.type_name, "router");
    assert_eq!(r2_lsa.area, "0.0.0.0");
    assert!(r2_lsa.seq >= 0x8000_0001, "{r2_lsa:?}");
    assert!(r2_lsa.age < 60);
    assert!(
        r2_lsa.summary.contains("p2p 10.255.7.1 cost 7")
            && r2_lsa.summary.contains("stub 10.255.7.2/32 cost 0"),
        "{}",
        r2_lsa.summary
    );
    assert!(d.lsas.iter().any(|l| l.adv_router == "10.255.7.1"));

    let r = client
        .routes(pb::OspfRoutesRequest {})
        .await
        .unwrap()
        .into_inner();
    let to_r2 = r
        .routes
        .iter()
        .find(|r| r.prefix == "10.255.7.2/32")
        .expect("route to r2's id");
    assert_eq!(to_r2.path_type, "intra");
    assert_eq!(to_r2.cost, 7);
    assert_eq!(to_r2.tunnels, vec!["to-peer".to_string()]);

    // Events: the initial state has the adjacency; removing the tunnel from r1's config
    // makes the neighbor go away, and the Watch stream says so.
    let mut events = pb::events_client::EventsClient::new(unix_channel(server.socket()).await)
        .watch(pb::WatchRequest {})
        .await
        .unwrap()
        .into_inner();
    use pb::event::Kind;
    let mut initial = Vec::new();
    loop {
        match events.message().await.unwrap().unwrap().kind {
            Some(Kind::OspfNeighborState(n)) => initial.push((n.tunnel, n.router_id, n.state)),
            Some(Kind::InitialStateDone(_)) => break,
            _ => {}
        }
    }
    assert_eq!(
        initial,
        vec![(
            "to-peer".to_string(),
            "10.255.7.2".to_string(),
            "full".to_string()
        )]
    );
    let mut without = r1.config().await;
    without.tunnels.clear();
    r1.apply(without).await.unwrap();
    let gone = loop {
        let e = tokio::time::timeout(Duration::from_secs(15), events.message())
            .await
            .expect("an OSPF neighbor event after the tunnel is removed")
            .unwrap()
            .unwrap();
        if let Some(Kind::OspfNeighborChanged(c)) = e.kind {
            break c;
        }
    };
    assert_eq!(
        (
            gone.tunnel.as_str(),
            gone.router_id.as_str(),
            gone.state.as_str(),
            gone.previous_state.as_str()
        ),
        ("to-peer", "10.255.7.2", "gone", "full")
    );

    // Without a speaker: FAILED_PRECONDITION.
    let (bare, mut bare_client) =
        serve(dir.path(), "bare.sock", Control::new(Arc::clone(&r2), None)).await;
    let e = bare_client
        .neighbors(pb::OspfNeighborsRequest {})
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert_eq!(e.message(), "OSPF is not enabled");

    bare.shutdown().await;
    server.shutdown().await;
    o1.shutdown().await;
    o2.shutdown().await;
}
