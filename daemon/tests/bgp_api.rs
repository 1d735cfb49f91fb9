//! The `Bgp` gRPC service through the generated client, over two in-process routers
//! joined by one WireGuard tunnel over loopback UDP (a /31) with an eBGP session on the
//! userspace TCP stack, each router's API on a Unix socket in a temporary directory.
//!
//! Checks: GetBgp and ListNeighbors show the session Established with its negotiated
//! capabilities; a path added over the API on one router reaches the other's Loc-RIB and
//! Adj-RIB-In with its attributes, and DeletePath takes it away again; refusals
//! (malformed prefix or attribute, unknown prefix or neighbor) have their status codes
//! and change nothing; soft resets resend routes; a hard reset takes the session down
//! and up, which the Events stream reports; a daemon without a speaker, or whose config
//! has no [bgp], answers FAILED_PRECONDITION. With keep-received-routes, a route the
//! import policy rejects is listed in adj-in-pre only, and a policy change applied with
//! the config admits it from the kept table, with no ROUTE-REFRESH to the peer; so does
//! an edit of a `[[prefix-list]]` that the import policy names, applied as TOML.

use hyper_util::rt::TokioIo;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Endpoint, Uri};
use tonic::Code;
use wgrd::config::{BgpNeighborConfig, Config, ControlConfig};
use wgrd::control::{Control, ControlServer};
use wgrd::keys::PrivateKey;
use wgrd::router::Router;
use wgrd::routing::bgp::io as bgp;
use wgrd_proto::v1 as pb;

mod common;

const WAIT: Duration = Duration::from_secs(20);
type Client = pb::bgp_client::BgpClient<Channel>;

fn id(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 255, 8, n)
}

fn config(n: u8, key: &PrivateKey, peer: &PrivateKey, endpoint: Option<SocketAddr>) -> Config {
    let mut neighbor = BgpNeighborConfig::new(if n == 1 { 65002 } else { 65001 });
    neighbor.tunnel = Some("to-peer".into());
    neighbor.import = Some("all".into());
    neighbor.export = Some("all".into());
    neighbor.description = Some(format!("r{}", 3 - n));
    let mut c = common::loopback_router(id(n), key);
    let addr = format!("169.254.71.{}/31", n - 1);
    c.tunnels = vec![common::loopback_tunnel("to-peer", peer, endpoint, &addr)];
    let mut bgp = common::bgp(65000 + u32::from(n), id(n), &[&format!("{}/32", id(n))]);
    bgp.neighbors = vec![neighbor];
    c.bgp = Some(bgp);
    c.policies = vec![common::accept_all()];
    c
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

async fn serve(dir: &Path, name: &str, control: Control) -> (ControlServer, Channel) {
    let settings = ControlConfig {
        socket: dir.join(name),
        ..Default::default()
    };
    let server = ControlServer::start(Arc::new(control), &settings)
        .await
        .unwrap();
    let channel = unix_channel(server.socket()).await;
    (server, channel)
}

/// r1 (from `r1_config(own key, peer key)`) and r2 (`config(2, ..)`, dialing r1) in eBGP
/// across one loopback tunnel, each with its speaker and its API on a Unix socket.
struct Pair {
    dir: tempfile::TempDir,
    /// r1's key and r2's.
    k1: PrivateKey,
    k2: PrivateKey,
    r1: Arc<Router>,
    r2: Arc<Router>,
    b1: bgp::BgpHandle,
    b2: bgp::BgpHandle,
    s1: ControlServer,
    s2: ControlServer,
    ch1: Channel,
    ch2: Channel,
}

impl Pair {
    async fn start(r1_config: impl FnOnce(&PrivateKey, &PrivateKey) -> Config) -> Pair {
        let dir = tempfile::tempdir().unwrap();
        let (k1, k2) = (PrivateKey::generate(), PrivateKey::generate());
        let r1 = Arc::new(Router::start(r1_config(&k1, &k2)).await.unwrap());
        let r1_addr: SocketAddr = (Ipv4Addr::LOCALHOST, r1.local_ports()[0]).into();
        let r2 = Arc::new(
            Router::start(config(2, &k2, &k1, Some(r1_addr)))
                .await
                .unwrap(),
        );
        let b1 = bgp::spawn(Arc::clone(&r1));
        let b2 = bgp::spawn(Arc::clone(&r2));
        let (s1, ch1) = serve(
            dir.path(),
            "r1.sock",
            Control::new(Arc::clone(&r1), None).with_bgp(b1.client()),
        )
        .await;
        let (s2, ch2) = serve(
            dir.path(),
            "r2.sock",
            Control::new(Arc::clone(&r2), None).with_bgp(b2.client()),
        )
        .await;
        Pair {
            dir,
            k1,
            k2,
            r1,
            r2,
            b1,
            b2,
            s1,
            s2,
            ch1,
            ch2,
        }
    }

    async fn shutdown(self) {
        for s in [self.s1, self.s2] {
            s.shutdown().await;
        }
        for b in [self.b1, self.b2] {
            b.shutdown().await;
        }
        for r in [self.r1, self.r2] {
            r.shutdown().await;
        }
    }
}

async fn neighbor(c: &mut Client) -> pb::BgpNeighbor {
    let mut n = c
        .list_neighbors(pb::ListBgpNeighborsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .neighbors;
    assert_eq!(n.len(), 1, "{n:?}");
    n.remove(0)
}

async fn paths(
    c: &mut Client,
    table: pb::BgpTable,
    neighbor: &str,
    prefix: &str,
) -> Vec<pb::BgpPath> {
    c.list_paths(pb::ListBgpPathsRequest {
        table: table.into(),
        neighbor: neighbor.into(),
        prefix: prefix.into(),
    })
    .await
    .unwrap()
    .into_inner()
    .paths
}

/// Polls `check` through the API until it holds.
macro_rules! wait_until {
    ($what:expr, $check:expr) => {{
        let start = Instant::now();
        loop {
            if $check {
                break;
            }
            assert!(start.elapsed() < WAIT, "timed out waiting for {}", $what);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }};
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bgp_service_shows_sessions_and_paths_and_takes_commands() {
    let pair = Pair::start(|k1, k2| config(1, k1, k2, None)).await;
    let (r1, dir) = (&pair.r1, &pair.dir);
    let mut c1 = Client::new(pair.ch1.clone());
    let mut c2 = Client::new(pair.ch2.clone());

    wait_until!(
        "the session established on both sides",
        neighbor(&mut c1).await.state == i32::from(pb::BgpState::Established)
            && neighbor(&mut c2).await.state == i32::from(pb::BgpState::Established)
    );

    // The speaker and its neighbor, with what the OPEN exchange agreed.
    let g = c1.get_bgp(pb::GetBgpRequest {}).await.unwrap().into_inner();
    assert_eq!((g.asn, g.router_id.as_str()), (65001, "10.255.8.1"));
    assert_eq!((g.neighbors, g.neighbors_established), (1, 1));
    assert_eq!(g.originated, 1, "the [bgp] network");
    assert!(g.listen_errors.is_empty(), "{:?}", g.listen_errors);
    let n = neighbor(&mut c1).await;
    assert_eq!(n.address, "169.254.71.1");
    assert_eq!(n.tunnel, "to-peer");
    assert_eq!(n.description, "r2");
    assert_eq!((n.local_as, n.remote_as), (65001, 65002));
    assert_eq!(n.state_name, "established");
    assert!(n.established_transitions >= 1);
    assert!(n.messages_in >= 2 && n.messages_out >= 2, "{n:?}");
    assert!(n.since_unix > 1_600_000_000);
    let neg = n.negotiated.clone().expect("negotiated capabilities");
    assert_eq!((neg.peer_as, neg.peer_id.as_str()), (65002, "10.255.8.2"));
    assert_eq!((neg.hold_time, neg.keepalive), (90, 30));
    assert!(
        neg.four_octet_as && neg.route_refresh && neg.ebgp,
        "{neg:?}"
    );
    assert!(
        neg.families.contains(&"ipv4-unicast".to_string()),
        "{neg:?}"
    );
    let one = c1
        .list_neighbors(pb::ListBgpNeighborsRequest {
            address: "169.254.71.1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(one.neighbors.len(), 1);

    // r2 originates a prefix with attributes over the API; r1 has it in its Loc-RIB (best)
    // and in r2's Adj-RIB-In, with the AS path, MED and communities it was given.
    c2.add_path(pb::AddBgpPathRequest {
        prefix: "192.0.2.0/24".into(),
        attributes: Some(pb::BgpPathAttributes {
            origin: "incomplete".into(),
            as_path: vec![65010],
            med: Some(5),
            local_pref: None,
            communities: vec!["65002:7".into()],
            large_communities: vec!["65002:1:2".into()],
        }),
    })
    .await
    .unwrap();
    wait_until!(
        "r1 learns 192.0.2.0/24",
        !paths(&mut c1, pb::BgpTable::LocRib, "", "192.0.2.0/24")
            .await
            .is_empty()
    );
    let loc = paths(&mut c1, pb::BgpTable::LocRib, "", "192.0.2.0/24").await;
    assert_eq!(loc.len(), 1, "{loc:?}");
    let p = &loc[0];
    assert!(p.best);
    assert_eq!(
        (p.peer.as_str(), p.next_hop.as_str()),
        ("169.254.71.1", "169.254.71.1")
    );
    assert_eq!(p.origin, "incomplete");
    assert_eq!(p.as_path, vec![65002, 65010]);
    assert_eq!(p.as_path_text, "65002 65010");
    assert_eq!(p.as_path_segments[0].r#type, "sequence");
    assert_eq!(p.med, Some(5));
    assert_eq!(p.communities, vec!["65002:7".to_string()]);
    assert_eq!(p.large_communities, vec!["65002:1:2".to_string()]);
    let adj_in = paths(&mut c1, pb::BgpTable::AdjIn, "169.254.71.1", "192.0.2.0/24").await;
    assert_eq!(adj_in.len(), 1, "{adj_in:?}");
    assert_eq!(adj_in[0].as_path, vec![65002, 65010]);
    // r2's own view: originated here (no peer) and sent to r1.
    let local = paths(&mut c2, pb::BgpTable::LocRib, "", "192.0.2.0/24").await;
    assert_eq!((local.len(), local[0].peer.as_str()), (1, ""));
    let out = paths(&mut c2, pb::BgpTable::AdjOut, "169.254.71.0", "").await;
    assert!(out.iter().any(|p| p.prefix == "192.0.2.0/24"), "{out:?}");
    // The Loc-RIB filtered by neighbor: only what r2 sent.
    let from_r2 = paths(&mut c1, pb::BgpTable::LocRib, "169.254.71.1", "").await;
    assert!(
        from_r2.iter().all(|p| p.peer == "169.254.71.1") && from_r2.len() >= 2,
        "{from_r2:?}"
    );

    // Refusals: status codes, and nothing changes.
    let before = c2.get_bgp(pb::GetBgpRequest {}).await.unwrap().into_inner();
    let e = c2
        .add_path(pb::AddBgpPathRequest {
            prefix: "198.51.100.1/24".into(),
            attributes: Some(pb::BgpPathAttributes {
                communities: vec!["65536:1".into()],
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("host bits") && e.message().contains("communities[1]"),
        "every problem listed: {}",
        e.message()
    );
    let e = c2
        .delete_path(pb::DeleteBgpPathRequest {
            prefix: "203.0.113.0/24".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let e = c2
        .delete_path(pb::DeleteBgpPathRequest {
            prefix: "not a prefix".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = c1
        .list_paths(pb::ListBgpPathsRequest {
            table: pb::BgpTable::AdjIn.into(),
            neighbor: "169.254.99.1".into(),
            prefix: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = c1
        .list_paths(pb::ListBgpPathsRequest {
            table: pb::BgpTable::AdjOut.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "ADJ_OUT needs a neighbor");
    let e = c1
        .reset_neighbor(pb::ResetBgpNeighborRequest {
            address: "169.254.99.1".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = c1
        .reset_neighbor(pb::ResetBgpNeighborRequest::default())
        .await
        .unwrap_err();
    assert_eq!(
        e.code(),
        Code::InvalidArgument,
        "neither an address nor all"
    );
    let after = c2.get_bgp(pb::GetBgpRequest {}).await.unwrap().into_inner();
    assert_eq!(before.originated, after.originated);
    assert_eq!(
        neighbor(&mut c1).await.established_transitions,
        n.established_transitions
    );

    // Soft reset outbound on r1 sends its routes again: r2 counts more UPDATEs, and the
    // session stays up. Inbound asks r2 for its routes again (ROUTE-REFRESH).
    let updates = neighbor(&mut c2).await.updates_in;
    let r = c1
        .reset_neighbor(pb::ResetBgpNeighborRequest {
            address: "169.254.71.1".into(),
            soft_out: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.neighbors, vec!["169.254.71.1".to_string()]);
    wait_until!(
        "r2 receives r1's routes again",
        neighbor(&mut c2).await.updates_in > updates
    );
    let updates = neighbor(&mut c1).await.updates_in;
    c1.reset_neighbor(pb::ResetBgpNeighborRequest {
        all: true,
        soft_in: true,
        ..Default::default()
    })
    .await
    .unwrap();
    wait_until!(
        "r2 sends its routes again on ROUTE-REFRESH",
        neighbor(&mut c1).await.updates_in > updates
    );
    let n1 = neighbor(&mut c1).await;
    assert_eq!(n1.state_name, "established");
    assert_eq!(n1.established_transitions, n.established_transitions);

    // DeletePath withdraws: gone from r1's Loc-RIB and Adj-RIB-In.
    c2.delete_path(pb::DeleteBgpPathRequest {
        prefix: "192.0.2.0/24".into(),
    })
    .await
    .unwrap();
    wait_until!(
        "the withdrawal reaches r1",
        paths(&mut c1, pb::BgpTable::LocRib, "", "192.0.2.0/24")
            .await
            .is_empty()
    );
    assert!(
        paths(&mut c1, pb::BgpTable::AdjIn, "169.254.71.1", "192.0.2.0/24")
            .await
            .is_empty()
    );

    // Events: the initial state has the neighbor; a hard reset shows up as changes, down
    // and established again.
    let mut events = pb::events_client::EventsClient::new(pair.ch1.clone())
        .watch(pb::WatchRequest {})
        .await
        .unwrap()
        .into_inner();
    use pb::event::Kind;
    let mut saw_initial = false;
    loop {
        let e = events.message().await.unwrap().unwrap();
        match e.kind {
            Some(Kind::BgpNeighborState(n)) => {
                assert_eq!(
                    (n.address.as_str(), n.state_name.as_str()),
                    ("169.254.71.1", "established")
                );
                saw_initial = true;
            }
            Some(Kind::InitialStateDone(_)) => break,
            _ => {}
        }
    }
    assert!(saw_initial, "the BGP neighbor is in the initial state");
    let r = c1
        .reset_neighbor(pb::ResetBgpNeighborRequest {
            address: "169.254.71.1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.neighbors.len(), 1);
    let (mut left, mut back) = (false, false);
    let start = Instant::now();
    while !back {
        let e = tokio::time::timeout(WAIT.saturating_sub(start.elapsed()), events.message())
            .await
            .expect("neighbor events after a hard reset")
            .unwrap()
            .unwrap();
        if let Some(Kind::BgpNeighborChanged(c)) = e.kind {
            assert_eq!(c.address, "169.254.71.1");
            assert!(c.present);
            if c.state_name != "established" {
                left = true;
            } else if c.established_transitions > n.established_transitions {
                back = true;
            }
        }
    }
    // Leaving Established may be sampled away when the session comes back at once; the
    // grown established_transitions still reports the flap.
    eprintln!("hard reset seen leaving Established on the stream: {left}");
    assert!(neighbor(&mut c1).await.established_transitions > n.established_transitions);

    // Without a speaker, and with a speaker but no [bgp]: FAILED_PRECONDITION.
    let (bare, ch) = serve(dir.path(), "bare.sock", Control::new(Arc::clone(r1), None)).await;
    let e = Client::new(ch)
        .get_bgp(pb::GetBgpRequest {})
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert_eq!(e.message(), "BGP is not enabled");
    let mut plain = config(1, &PrivateKey::generate(), &pair.k2, None);
    plain.bgp = None;
    plain.policies.clear();
    let r3 = Arc::new(Router::start(plain).await.unwrap());
    let b3 = bgp::spawn(Arc::clone(&r3));
    let (s3, ch) = serve(
        dir.path(),
        "r3.sock",
        Control::new(Arc::clone(&r3), None).with_bgp(b3.client()),
    )
    .await;
    let mut c3 = Client::new(ch);
    tokio::time::sleep(Duration::from_millis(200)).await;
    for e in [
        c3.get_bgp(pb::GetBgpRequest {}).await.unwrap_err(),
        c3.add_path(pb::AddBgpPathRequest {
            prefix: "192.0.2.0/24".into(),
            attributes: None,
        })
        .await
        .unwrap_err(),
        c3.list_neighbors(pb::ListBgpNeighborsRequest::default())
            .await
            .unwrap_err(),
    ] {
        assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    }

    for s in [bare, s3] {
        s.shutdown().await;
    }
    b3.shutdown().await;
    r3.shutdown().await;
    pair.shutdown().await;
}

/// r1 keeps what r2 sends and rejects r2's network (10.255.8.2/32) by import policy.
fn keeping_config(n: u8, key: &PrivateKey, peer: &PrivateKey, reject: bool) -> Config {
    let mut c = config(n, key, peer, None);
    let n = &mut c.bgp.as_mut().unwrap().neighbors[0];
    n.keep_received_routes = true;
    if reject {
        n.import = Some("not-r2".into());
    }
    c.policies.push(wgrd::config::PolicyConfig {
        name: "not-r2".into(),
        default: wgrd::config::PolicyAction::Accept,
        rules: vec![wgrd::config::PolicyRule {
            matches: wgrd::config::PolicyMatch {
                prefix_list: vec![wgrd::config::PrefixListEntry {
                    prefix: "10.255.8.2/32".parse().unwrap(),
                    ge: None,
                    le: None,
                }],
                ..Default::default()
            },
            action: Some(wgrd::config::PolicyAction::Reject),
            ..Default::default()
        }],
    });
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_routes_are_listed_before_policy_and_a_policy_change_needs_no_refresh() {
    let pair = Pair::start(|k1, k2| keeping_config(1, k1, k2, true)).await;
    let r1 = &pair.r1;
    let mut c1 = Client::new(pair.ch1.clone());
    let mut c2 = Client::new(pair.ch2.clone());
    let r2_net = "10.255.8.2/32";
    wait_until!(
        "r2's network reaches r1's kept table",
        neighbor(&mut c1).await.state == i32::from(pb::BgpState::Established)
            && !paths(&mut c1, pb::BgpTable::AdjInPre, "169.254.71.1", r2_net)
                .await
                .is_empty()
    );
    // Received as sent, rejected by the import policy: before policy only.
    let pre = paths(&mut c1, pb::BgpTable::AdjInPre, "169.254.71.1", r2_net).await;
    assert_eq!(pre.len(), 1, "{pre:?}");
    assert_eq!(
        (pre[0].peer.as_str(), pre[0].next_hop.as_str()),
        ("169.254.71.1", "169.254.71.1")
    );
    assert_eq!(pre[0].as_path, vec![65002]);
    assert!(paths(&mut c1, pb::BgpTable::AdjIn, "169.254.71.1", r2_net)
        .await
        .is_empty());
    assert!(paths(&mut c1, pb::BgpTable::LocRib, "", r2_net)
        .await
        .is_empty());
    // A neighbor without keep-received-routes: FAILED_PRECONDITION naming the option.
    let e = c2
        .list_paths(pb::ListBgpPathsRequest {
            table: pb::BgpTable::AdjInPre.into(),
            neighbor: "169.254.71.0".into(),
            prefix: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("keep-received-routes"), "{e:?}");
    let e = c1
        .list_paths(pb::ListBgpPathsRequest {
            table: pb::BgpTable::AdjInPre.into(),
            neighbor: String::new(),
            prefix: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");

    // The import policy changes with a config apply: the route is admitted from the
    // kept table. r2 is not asked to send anything again (no ROUTE-REFRESH): r1 gets no
    // UPDATE for it, and the session stays up.
    let before = neighbor(&mut c1).await;
    r1.apply(keeping_config(1, &pair.k1, &pair.k2, false))
        .await
        .unwrap();
    wait_until!(
        "r2's network is admitted",
        !paths(&mut c1, pb::BgpTable::LocRib, "", r2_net)
            .await
            .is_empty()
    );
    assert_eq!(
        paths(&mut c1, pb::BgpTable::AdjIn, "169.254.71.1", r2_net)
            .await
            .len(),
        1
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = neighbor(&mut c1).await;
    assert_eq!(after.updates_in, before.updates_in, "{after:?}");
    assert_eq!(
        after.established_transitions,
        before.established_transitions
    );
    assert_eq!(after.state_name, "established");

    pair.shutdown().await;
}

/// r1 keeps what r2 sends and imports only the prefixes of the `[[prefix-list]]`
/// "listed", which does not cover r2's network (10.255.8.2/32) yet.
fn listing_config(key: &PrivateKey, peer: &PrivateKey) -> Config {
    use wgrd::config::{
        PolicyAction, PolicyConfig, PolicyMatch, PolicyRule, PrefixListConfig, PrefixListEntry,
    };
    let mut c = config(1, key, peer, None);
    let n = &mut c.bgp.as_mut().unwrap().neighbors[0];
    n.keep_received_routes = true;
    n.import = Some("from-listed".into());
    let listed = vec![PrefixListEntry {
        prefix: "10.99.0.0/16".parse().unwrap(),
        ge: None,
        le: None,
    }];
    c.prefix_lists.push(PrefixListConfig {
        name: "listed".into(),
        entries: listed.clone(),
    });
    // As the loader resolves `prefix-list = "listed"`.
    c.policies.push(PolicyConfig {
        name: "from-listed".into(),
        default: PolicyAction::Reject,
        rules: vec![PolicyRule {
            matches: PolicyMatch {
                prefix_list: listed,
                prefix_list_name: Some("listed".into()),
                ..Default::default()
            },
            action: Some(PolicyAction::Accept),
            ..Default::default()
        }],
    });
    c
}

/// A `[[prefix-list]]` edited in the TOML given to ApplyConfig changes the policy that
/// names it: a dry run changes nothing, a reference to a list that does not exist is
/// refused, and the applied list admits r2's network from the kept table with the
/// session up throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_prefix_list_applied_as_toml_admits_a_route_without_a_reset() {
    use prost::Message as _;
    let pair = Pair::start(listing_config).await;
    let r1 = &pair.r1;
    let mut c1 = Client::new(pair.ch1.clone());
    let mut system = pb::system_client::SystemClient::new(pair.ch1.clone());
    let r2_net = "10.255.8.2/32";
    wait_until!(
        "r2's network reaches r1's kept table",
        neighbor(&mut c1).await.state == i32::from(pb::BgpState::Established)
            && !paths(&mut c1, pb::BgpTable::AdjInPre, "169.254.71.1", r2_net)
                .await
                .is_empty()
    );
    assert!(paths(&mut c1, pb::BgpTable::LocRib, "", r2_net)
        .await
        .is_empty());
    let before = neighbor(&mut c1).await;

    let shown = system
        .get_config(pb::GetConfigRequest {})
        .await
        .unwrap()
        .into_inner()
        .toml;
    assert!(shown.contains("prefix-list = \"listed\""), "{shown}");
    let listed = "entries = [\"10.99.0.0/16\"]";
    assert!(shown.contains(listed), "{shown}");
    let apply = |text: String, dry_run: bool| pb::ApplyConfigRequest {
        input: Some(pb::ConfigInput {
            source: Some(pb::config_input::Source::Toml(text)),
        }),
        dry_run,
    };

    let misnamed = shown.replace("prefix-list = \"listed\"", "prefix-list = \"listd\"");
    let e = system
        .apply_config(apply(misnamed, false))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let problems = pb::ConfigProblems::decode(e.details()).unwrap().problems;
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].field, "policy[2].rules[1].match.prefix-list");
    assert!(
        problems[0].why.contains("did you mean \"listed\"?"),
        "{problems:?}"
    );

    let widened = shown.replace(
        listed,
        "entries = [\"10.99.0.0/16\", \"10.255.8.0/24 le 32\"]",
    );
    system
        .apply_config(apply(widened.clone(), true))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        paths(&mut c1, pb::BgpTable::LocRib, "", r2_net)
            .await
            .is_empty(),
        "a dry run applied the list"
    );
    assert_eq!(r1.config().await.prefix_lists[0].entries.len(), 1);

    system.apply_config(apply(widened, false)).await.unwrap();
    wait_until!(
        "r2's network is admitted",
        !paths(&mut c1, pb::BgpTable::LocRib, "", r2_net)
            .await
            .is_empty()
    );
    assert_eq!(r1.config().await.prefix_lists[0].entries.len(), 2);
    let after = neighbor(&mut c1).await;
    assert_eq!(after.updates_in, before.updates_in, "{after:?}");
    assert_eq!(
        after.established_transitions,
        before.established_transitions
    );
    assert_eq!(after.state_name, "established");

    pair.shutdown().await;
}
