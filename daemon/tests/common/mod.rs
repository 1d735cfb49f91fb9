//! Helpers shared by the in-process tests: pinging through a router's own send path and
//! waiting for the reply on its local delivery, without root or a TUN.

// Each test binary uses only some of these helpers.
#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::time::Duration;
use wgrd::dataplane::path::LocalPacket;
use wgrd::router::Router;

pub type LocalRx = tokio::sync::mpsc::Receiver<LocalPacket>;

fn checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for chunk in data.chunks(2) {
        sum += u32::from(u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An ICMP echo request from `src` to `dst` with a 16-byte payload.
pub fn echo_request(src: Ipv4Addr, dst: Ipv4Addr, seq: u16) -> Vec<u8> {
    let mut p = vec![0u8; 20 + 8 + 16];
    let total = p.len() as u16;
    p[0] = 0x45;
    p[2..4].copy_from_slice(&total.to_be_bytes());
    p[8] = 64;
    p[9] = 1;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    let c = checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[20] = 8;
    p[24..26].copy_from_slice(&0x77u16.to_be_bytes());
    p[26..28].copy_from_slice(&seq.to_be_bytes());
    p[28..].copy_from_slice(b"wgrd in-process!");
    let c = checksum(&p[20..]);
    p[22..24].copy_from_slice(&c.to_be_bytes());
    p
}

fn is_reply(p: &[u8], from: Ipv4Addr, seq: u16) -> bool {
    p.len() >= 28
        && p[9] == 1
        && p[20] == 0
        && p[12..16] == from.octets()
        && p[26..28] == seq.to_be_bytes()
}

/// One echo request; the reply if it came back within `wait`.
pub async fn ping_once(
    router: &Router,
    local: &mut LocalRx,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    seq: u16,
    wait: Duration,
) -> Option<Vec<u8>> {
    router.path().send_local(&echo_request(src, dst, seq));
    let until = tokio::time::Instant::now() + wait;
    while let Ok(Some(got)) = tokio::time::timeout_at(until, local.recv()).await {
        if is_reply(&got.packet, dst, seq) {
            return Some(got.packet);
        }
    }
    None
}

/// Ping every `every` until a reply comes back or `within` has passed.
pub async fn ping_until(
    router: &Router,
    local: &mut LocalRx,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    seq: u16,
    every: Duration,
    within: Duration,
) -> Option<Vec<u8>> {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if let Some(reply) = ping_once(router, local, src, dst, seq, every).await {
            return Some(reply);
        }
    }
    None
}

/// A router on loopback UDP (an ephemeral port) with no tunnels and no protocols.
pub fn loopback_router(id: Ipv4Addr, key: &wgrd::keys::PrivateKey) -> wgrd::config::Config {
    wgrd::config::Config {
        router: wgrd::config::RouterConfig {
            router_id: id,
            private_key: key.clone(),
            private_key_file: None,
            listen_port: 0,
            listen_address: Some(Ipv4Addr::LOCALHOST.into()),
        },
        host: None,
        tunnels: vec![],
        routes: vec![],
        control: Default::default(),
        forwarding: Default::default(),
        nat: Default::default(),
        ospf: None,
        bgp: None,
        policies: vec![],
        prefix_lists: vec![],
    }
}

/// A tunnel to `peer` with one address; the side that knows the endpoint keeps the
/// session up with a 1 s keepalive.
pub fn loopback_tunnel(
    name: &str,
    peer: &wgrd::keys::PrivateKey,
    endpoint: Option<std::net::SocketAddr>,
    addr: &str,
) -> wgrd::config::TunnelConfig {
    wgrd::config::TunnelConfig {
        name: name.into(),
        peer_public_key: peer.public_key(),
        preshared_key: None,
        preshared_key_file: None,
        endpoint,
        persistent_keepalive: endpoint.map(|_| 1),
        addresses: vec![addr.parse().unwrap()],
        mtu: 1420,
        listen_port: None,
        ospf: None,
    }
}

/// `[bgp]` with quick reconnects and these networks; neighbors are added by the test.
pub fn bgp(asn: u32, id: Ipv4Addr, networks: &[&str]) -> wgrd::config::BgpConfig {
    wgrd::config::BgpConfig {
        asn,
        router_id: id,
        networks: networks.iter().map(|n| n.parse().unwrap()).collect(),
        redistribute: vec![],
        max_paths: 1,
        multipath_relax: false,
        hold_time: 90,
        connect_retry: 1,
        graceful_restart: Default::default(),
        neighbors: vec![],
    }
}

/// `[[policy]] name = "all", default = "accept"`: eBGP needs a policy (RFC 8212).
pub fn accept_all() -> wgrd::config::PolicyConfig {
    wgrd::config::PolicyConfig {
        name: "all".into(),
        default: wgrd::config::PolicyAction::Accept,
        rules: vec![],
    }
}
