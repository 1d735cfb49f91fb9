//! The userspace TCP stack between routers in one process, over real WireGuard tunnels on
//! loopback UDP: no root, no TUN. Each router's stack takes its router's TCP deliveries
//! and sends into its tunnels, so what runs is the whole path a BGP session will use.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wgrd::config::Config;
use wgrd::dataplane::TunnelId;
use wgrd::keys::PrivateKey;
use wgrd::router::Router;
use wgrd::stack::{TcpStack, TcpStream};

/// Upper bound for anything that should take milliseconds; a failure, not a pace.
const WAIT: Duration = Duration::from_secs(10);
const MIB: usize = 1024 * 1024;

/// A tunnel of a test router, written as in a config file.
struct T<'a> {
    name: &'a str,
    peer: &'a PrivateKey,
    endpoint: Option<SocketAddr>,
    addrs: &'a [&'a str],
}

/// Built from TOML rather than struct literals, so new config fields keep their defaults.
fn config(id: [u8; 4], key: &PrivateKey, tunnels: &[T]) -> Config {
    let mut text = format!(
        "[router]\nrouter-id = \"{}\"\nprivate-key = \"{}\"\nlisten-port = 0\nlisten-address = \"127.0.0.1\"\n",
        Ipv4Addr::from(id),
        key.to_base64()
    );
    for t in tunnels {
        let addrs: Vec<String> = t.addrs.iter().map(|a| format!("\"{a}\"")).collect();
        text += &format!(
            "[[tunnel]]\nname = \"{}\"\npeer-public-key = \"{}\"\naddresses = [{}]\n",
            t.name,
            t.peer.public_key().to_base64(),
            addrs.join(", ")
        );
        if let Some(ep) = t.endpoint {
            // The dialling side keeps the session up, like a spoke behind NAT.
            text += &format!("endpoint = \"{ep}\"\npersistent-keepalive = 1\n");
        }
    }
    wgrd::config::parse_str(&text, Path::new("test.toml")).expect("valid config")
}

/// Addresses of the two ends of the tunnel between `Pair::a` and `Pair::b`.
const A_ADDRS: [&str; 3] = ["169.254.1.0/31", "2001:db8::/127", "fe80::1/64"];
const B_ADDRS: [&str; 3] = ["169.254.1.1/31", "2001:db8::1/127", "fe80::2/64"];

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

struct Node {
    router: Arc<Router>,
    stack: TcpStack,
}

impl Node {
    async fn start(config: Config) -> Node {
        let router = Arc::new(Router::start(config).await.expect("router starts"));
        let stack = TcpStack::start(Arc::clone(&router));
        Node { router, stack }
    }

    fn tunnel_id(&self, name: &str) -> TunnelId {
        self.router.path().tunnels.load().by_name(name).unwrap().id
    }

    /// Wait until `name` has a session and knows its peer's endpoint, so a first segment
    /// is not lost to a handshake in progress.
    async fn wait_up(&self, name: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let status = self
                .router
                .path()
                .tunnels
                .load()
                .by_name(name)
                .unwrap()
                .status();
            if status.session_up && status.endpoint.is_some() {
                return;
            }
            assert!(Instant::now() < deadline, "tunnel {name} never came up");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Router `b` (no endpoint: it waits to be dialled) and router `a` dialling it, with one
/// tunnel "to-b"/"to-a" carrying an IPv4 /31, an IPv6 /127 and a link-local address.
async fn pair() -> (Node, Node) {
    let (a_key, b_key) = (PrivateKey::generate(), PrivateKey::generate());
    let b = Node::start(config(
        [10, 255, 0, 2],
        &b_key,
        &[T {
            name: "to-a",
            peer: &a_key,
            endpoint: None,
            addrs: &B_ADDRS,
        }],
    ))
    .await;
    let b_port = b.router.local_ports()[0];
    let a = Node::start(config(
        [10, 255, 0, 1],
        &a_key,
        &[T {
            name: "to-b",
            peer: &b_key,
            endpoint: Some((Ipv4Addr::LOCALHOST, b_port).into()),
            addrs: &A_ADDRS,
        }],
    ))
    .await;
    a.wait_up("to-b").await;
    b.wait_up("to-a").await;
    (a, b)
}

/// Deterministic bytes that differ per stream and per position, so a reordering,
/// duplication or cross-talk shows up as a mismatch.
fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0] ^ seed)
        .collect()
}

/// Send `out` and read everything the other side sends until EOF, at the same time.
async fn exchange(stream: TcpStream, out: Vec<u8>) -> Vec<u8> {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let writer = async move {
        wr.write_all(&out).await.expect("write");
        wr.shutdown().await.expect("shutdown");
        wr
    };
    let reader = async move {
        let mut got = Vec::new();
        rd.read_to_end(&mut got).await.expect("read to EOF");
        got
    };
    let (_wr, got) = tokio::join!(writer, reader);
    got
}

/// `a` connects to `b` from `local` to `remote`; 1 MiB each way; both sides see EOF.
async fn mib_each_way(a: &Node, b: &Node, local: &str, remote: &str, port: u16) {
    let mut listener = b.stack.listen(port).unwrap();
    let remote_addr = SocketAddr::new(ip(remote), port);
    let connect = a.stack.connect(
        a.tunnel_id("to-b"),
        SocketAddr::new(ip(local), 0),
        remote_addr,
    );
    let (client, accepted) = tokio::join!(connect, listener.accept());
    let client = client.expect("connect");
    let (server, accepted) = accepted.expect("accept");
    assert_eq!(accepted.tunnel, b.tunnel_id("to-a"));
    assert_eq!(accepted.local, remote_addr);
    assert_eq!(accepted.remote, client.local_addr());
    assert_eq!(client.peer_addr(), remote_addr);
    assert_eq!(client.tunnel(), a.tunnel_id("to-b"));
    assert_eq!(server.peer_addr(), client.local_addr());

    let (to_b, to_a) = (pattern(0xa5, MIB), pattern(0x5a, MIB));
    let (got_b, got_a) = tokio::time::timeout(
        WAIT,
        futures::future::join(
            exchange(server, to_a.clone()),
            exchange(client, to_b.clone()),
        ),
    )
    .await
    .expect("transfer finished");
    assert!(
        got_b == to_b,
        "b received {} bytes, not a's MiB",
        got_b.len()
    );
    assert!(
        got_a == to_a,
        "a received {} bytes, not b's MiB",
        got_a.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv4_slash31_carries_a_mib_each_way_and_closes_cleanly() {
    let (a, b) = pair().await;
    mib_each_way(&a, &b, "169.254.1.0", "169.254.1.1", 179).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_slash127_carries_a_mib_each_way_and_closes_cleanly() {
    let (a, b) = pair().await;
    mib_each_way(&a, &b, "2001:db8::", "2001:db8::1", 179).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_local_carries_a_mib_each_way_and_closes_cleanly() {
    let (a, b) = pair().await;
    mib_each_way(&a, &b, "fe80::1", "fe80::2", 179).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_nobody_listens_on_refuses_at_once() {
    let (a, b) = pair().await;
    // A listener on another port must not take the connection.
    let _other = b.stack.listen(180).unwrap();
    let started = Instant::now();
    let got = a
        .stack
        .clone()
        .with_connect_timeout(WAIT)
        .connect(
            a.tunnel_id("to-b"),
            "169.254.1.0:0".parse().unwrap(),
            "169.254.1.1:179".parse().unwrap(),
        )
        .await;
    let e = got.err().expect("refused");
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    // One round trip, not a retransmission timer.
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_times_out() {
    let (a, _b) = pair().await;
    // b has no such address and no route to it: the SYN is dropped there.
    let got = a
        .stack
        .clone()
        .with_connect_timeout(Duration::from_millis(300))
        .connect(
            a.tunnel_id("to-b"),
            "169.254.1.0:0".parse().unwrap(),
            "192.0.2.9:179".parse().unwrap(),
        )
        .await;
    assert_eq!(got.err().unwrap().kind(), std::io::ErrorKind::TimedOut);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_the_tunnel_does_not_have_is_refused_locally() {
    let (a, _b) = pair().await;
    let got = a
        .stack
        .connect(
            a.tunnel_id("to-b"),
            "169.254.9.9:0".parse().unwrap(),
            "169.254.1.1:179".parse().unwrap(),
        )
        .await;
    assert_eq!(
        got.err().unwrap().kind(),
        std::io::ErrorKind::AddrNotAvailable
    );
}

/// An established connection between `a` and `b` on IPv4, with a byte each way.
async fn connected(a: &Node, b: &Node) -> (TcpStream, TcpStream) {
    let mut listener = b.stack.listen(179).unwrap();
    let (client, accepted) = tokio::join!(
        a.stack.connect(
            a.tunnel_id("to-b"),
            "169.254.1.0:0".parse().unwrap(),
            "169.254.1.1:179".parse().unwrap(),
        ),
        listener.accept()
    );
    let (mut client, mut server) = (client.unwrap(), accepted.unwrap().0);
    client.write_all(b"x").await.unwrap();
    let mut byte = [0u8];
    server.read_exact(&mut byte).await.unwrap();
    (client, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_from_the_peer_fails_reads_and_writes() {
    let (a, b) = pair().await;
    let (mut client, _server) = connected(&a, &b).await;
    // Shutting b's stack down resets its connections (as a crashing speaker would).
    b.stack.shutdown();
    let mut buf = [0u8; 16];
    let e = tokio::time::timeout(WAIT, client.read(&mut buf))
        .await
        .expect("read ends")
        .expect_err("reset, not EOF");
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset);
    let e = client.write_all(b"more").await.expect_err("write fails");
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_tunnel_fails_its_connections() {
    let (a, b) = pair().await;
    let (mut client, _server) = connected(&a, &b).await;
    let mut config = a.router.config().await;
    config.tunnels.clear();
    a.router.apply(config).await.expect("applied");
    let mut buf = [0u8; 16];
    let e = tokio::time::timeout(WAIT, client.read(&mut buf))
        .await
        .expect("read ends")
        .expect_err("aborted");
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionAborted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_segments_are_counted_and_dropped() {
    let (a, b) = pair().await;
    let (mut client, mut server) = connected(&a, &b).await;
    // A SYN to b's tunnel address with a TCP checksum that does not verify.
    let mut p = vec![0u8; 40];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&40u16.to_be_bytes());
    p[8] = 64;
    p[9] = 6;
    p[12..16].copy_from_slice(&[169, 254, 1, 0]);
    p[16..20].copy_from_slice(&[169, 254, 1, 1]);
    let sum = !p[..20]
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .fold(0u32, |s, w| {
            let s = s + w;
            (s & 0xffff) + (s >> 16)
        }) as u16;
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p[20..22].copy_from_slice(&40000u16.to_be_bytes());
    p[22..24].copy_from_slice(&179u16.to_be_bytes());
    p[32] = 0x50;
    p[33] = 0x02;
    p[36] = 0xde;
    assert!(a.router.path().send_on_tunnel(a.tunnel_id("to-b"), &p));
    let deadline = Instant::now() + WAIT;
    while b.stack.counters().bad_checksum == 0 {
        assert!(Instant::now() < deadline, "never counted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // And the connection next to it is untouched.
    server.write_all(b"still here").await.unwrap();
    let mut buf = [0u8; 10];
    client.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"still here");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_listeners_take_connections_from_two_tunnels_at_once() {
    // A hub with a tunnel to each of two spokes, both spokes dialling in.
    let (hub_key, x_key, y_key) = (
        PrivateKey::generate(),
        PrivateKey::generate(),
        PrivateKey::generate(),
    );
    let hub = Node::start(config(
        [10, 255, 0, 1],
        &hub_key,
        &[
            T {
                name: "to-x",
                peer: &x_key,
                endpoint: None,
                addrs: &["169.254.1.0/31", "fe80::1/64"],
            },
            T {
                name: "to-y",
                peer: &y_key,
                endpoint: None,
                addrs: &["169.254.2.0/31", "fe80::1/64"],
            },
        ],
    ))
    .await;
    let hub_ep: SocketAddr = (Ipv4Addr::LOCALHOST, hub.router.local_ports()[0]).into();
    let spoke = |id: u8, key: &PrivateKey, addrs: &'static [&'static str]| {
        config(
            [10, 255, 0, id],
            key,
            &[T {
                name: "to-hub",
                peer: &hub_key,
                endpoint: Some(hub_ep),
                addrs,
            }],
        )
    };
    let x = Node::start(spoke(2, &x_key, &["169.254.1.1/31", "fe80::2/64"])).await;
    let y = Node::start(spoke(3, &y_key, &["169.254.2.1/31", "fe80::2/64"])).await;
    for (node, name) in [
        (&x, "to-hub"),
        (&y, "to-hub"),
        (&hub, "to-x"),
        (&hub, "to-y"),
    ] {
        node.wait_up(name).await;
    }

    let mut bgp = hub.stack.listen(179).unwrap();
    let mut other = hub.stack.listen(180).unwrap();
    // The same link-local address on both hub tunnels: only the tunnel tells them apart.
    let dial = |node: &Node, port: u16| {
        let (stack, tunnel) = (node.stack.clone(), node.tunnel_id("to-hub"));
        async move {
            let local = "[fe80::2]:0".parse().unwrap();
            let remote = SocketAddr::new(ip("fe80::1"), port);
            stack.connect(tunnel, local, remote).await
        }
    };
    let (cx, cy, cx2) = tokio::join!(dial(&x, 179), dial(&y, 179), dial(&x, 180));
    let clients = [(cx.unwrap(), 1u8), (cy.unwrap(), 2), (cx2.unwrap(), 3)];
    let mut servers = Vec::new();
    for _ in 0..2 {
        servers.push(bgp.accept().await.unwrap());
    }
    servers.push(other.accept().await.unwrap());
    let tunnels: Vec<TunnelId> = servers.iter().map(|(_, a)| a.tunnel).collect();
    let (to_x, to_y) = (hub.tunnel_id("to-x"), hub.tunnel_id("to-y"));
    assert!(tunnels[..2].contains(&to_x) && tunnels[..2].contains(&to_y));
    assert_eq!(tunnels[2], to_x);

    // 64 KiB a stream, one byte more than the socket buffers, on three streams at once:
    // zero windows on every stream. With 64 KiB buffers (window scaling, windows rounded
    // to even) this stalled in half the runs under load (docs/bgp.md, Transport).
    const ECHO: usize = 64 * 1024;
    // Each client names itself; the hub answers on each stream with what it heard and
    // the tunnel it heard it on, so a crossed stream would show.
    let mut talks = Vec::new();
    for (mut client, n) in clients {
        talks.push(tokio::spawn(async move {
            client.write_all(&pattern(n, ECHO)).await.unwrap();
            let mut back = vec![0u8; ECHO];
            client.read_exact(&mut back).await.unwrap();
            (n, back)
        }));
    }
    for (mut server, accepted) in servers {
        let mut heard = vec![0u8; ECHO];
        tokio::spawn(async move {
            server.read_exact(&mut heard).await.unwrap();
            server.write_all(&heard).await.unwrap();
            let _ = accepted;
            // Keep the stream until the client has read everything.
            let mut rest = Vec::new();
            let _ = server.read_to_end(&mut rest).await;
        });
    }
    for talk in talks {
        let (n, back) = tokio::time::timeout(WAIT, talk).await.unwrap().unwrap();
        assert!(
            back == pattern(n, ECHO),
            "client {n} got someone else's bytes"
        );
    }
}
