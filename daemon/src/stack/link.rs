//! One tunnel as smoltcp sees it: an IP-medium `Interface` holding the tunnel's own
//! addresses, the TCP sockets bound to them, and a device whose "wire" is two queues
//! (packets from the tunnel in, packets for `send_on_tunnel` out).
//!
//! An interface per tunnel is what scopes link-local addresses: `fe80::1` on two tunnels
//! is two different addresses, and a segment can only reach sockets of the tunnel it
//! arrived on. Owns no I/O and no timers; [`super`] drives it.

use crate::config::Config;
use crate::dataplane::TunnelId;
use crate::router::build::{host_prefix, is_host_address};
use smoltcp::iface::{Config as IfaceConfig, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::socket::{tcp, AnySocket};
use smoltcp::time::Instant;
use smoltcp::wire::{HardwareAddress, IpCidr, Ipv4Address, Ipv6Address};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;

/// smoltcp keeps at most this many addresses per interface (the `iface-max-addr-count-8`
/// feature).
pub const MAX_ADDRESSES: usize = 8;

/// Received packets waiting for the next poll; beyond this a flood is dropped.
pub const RX_QUEUE: usize = 1024;

/// Bytes of each socket's receive and transmit buffers: a full unscaled window, more
/// than a BGP speaker ever has in flight between reads. Not 64 KiB: smoltcp would then
/// scale its window by 1 and round advertised windows down to even numbers, so the
/// window's right edge can recede by a byte; a byte sent into it and refused meets a
/// smoltcp 0.13.1 bug (the zero-window probe timer displaces the retransmission timer
/// and is stopped when the window reopens) and the connection stalls for good.
pub const SOCKET_BUFFER: usize = 65535;

/// What a tunnel looks like to the stack, derived from the config and the tunnel table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkSpec {
    pub name: String,
    pub addresses: Vec<IpCidr>,
    pub mtu: u16,
}

/// The stack's view of every tunnel: its configured addresses (plus the router id, so a
/// segment to it is answered like one to a tunnel address), with the tunnel's live id
/// and MTU from `live` (`None` for a tunnel not built yet, which is skipped).
pub fn link_specs(
    config: &Config,
    live: impl Fn(&str) -> Option<(TunnelId, u16)>,
) -> BTreeMap<TunnelId, LinkSpec> {
    let router_id = IpAddr::V4(config.router.router_id);
    // As in the forwarding room: a router id the host TUN carries belongs to the kernel.
    let router_id = (!is_host_address(config, &host_prefix(router_id))).then_some(router_id);
    let mut specs = BTreeMap::new();
    for t in &config.tunnels {
        let Some((id, mtu)) = live(&t.name) else {
            continue;
        };
        let mut addresses: Vec<IpCidr> = t
            .addresses
            .iter()
            .map(|net| IpCidr::new(net.ip().into(), net.prefix()))
            .collect();
        if let Some(rid) = router_id {
            if !addresses.iter().any(|a| IpAddr::from(a.address()) == rid) {
                addresses.push(IpCidr::new(rid.into(), 32));
            }
        }
        if addresses.len() > MAX_ADDRESSES {
            tracing::warn!(
                tunnel = %t.name,
                kept = MAX_ADDRESSES,
                "too many addresses for the TCP stack; the rest take no connections"
            );
            addresses.truncate(MAX_ADDRESSES);
        }
        specs.insert(
            id,
            LinkSpec {
                name: t.name.clone(),
                addresses,
                mtu,
            },
        );
    }
    specs
}

/// The device smoltcp polls: IP packets without any link header.
pub struct TunnelDevice {
    pub rx: VecDeque<Vec<u8>>,
    pub tx: Vec<Vec<u8>>,
    mtu: usize,
}

pub struct Rx(Vec<u8>);

pub struct Tx<'a>(&'a mut Vec<Vec<u8>>);

impl RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut packet = vec![0; len];
        let r = f(&mut packet);
        self.0.push(packet);
        r
    }
}

impl Device for TunnelDevice {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _: Instant) -> Option<(Rx, Tx<'_>)> {
        let packet = self.rx.pop_front()?;
        Some((Rx(packet), Tx(&mut self.tx)))
    }

    fn transmit(&mut self, _: Instant) -> Option<Tx<'_>> {
        Some(Tx(&mut self.tx))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        // smoltcp derives the MSS it announces from this: the tunnel MTU, so segments
        // never need fragmenting inside the tunnel.
        caps.max_transmission_unit = self.mtu;
        caps
    }
}

/// Sockets waiting for connections to one listening port on one link.
#[derive(Default)]
pub struct Backlog {
    /// The socket in LISTEN that takes the next SYN.
    pub listening: Option<SocketHandle>,
    /// Sockets that took a SYN and are not yet handed to the listener.
    pub pending: Vec<SocketHandle>,
}

/// One tunnel's interface and sockets.
pub struct Link {
    pub iface: Interface,
    pub sockets: SocketSet<'static>,
    pub device: TunnelDevice,
    pub addresses: Vec<IpCidr>,
    pub mtu: u16,
    /// Something happened (packets in, a user read or wrote) that needs a poll.
    pub dirty: bool,
    /// When smoltcp's timers next need a poll.
    pub poll_at: Option<Instant>,
    /// Listening port -> its sockets on this link.
    pub backlogs: HashMap<u16, Backlog>,
}

impl Link {
    pub fn new(spec: &LinkSpec, now: Instant) -> Link {
        let mut device = TunnelDevice {
            rx: VecDeque::new(),
            tx: Vec::new(),
            mtu: usize::from(spec.mtu),
        };
        let mut config = IfaceConfig::new(HardwareAddress::Ip);
        // Seeds initial sequence numbers and ephemeral choices inside smoltcp.
        config.random_seed = rand::random();
        let mut iface = Interface::new(config, &mut device, now);
        // A BGP peer may sit on an address outside the tunnel's subnet (a loopback
        // reached across it); the tunnel is its only way out, so everything is routed
        // there. The gateway is never looked at on an IP-medium device.
        let _ = iface
            .routes_mut()
            .add_default_ipv4_route(Ipv4Address::UNSPECIFIED);
        let _ = iface
            .routes_mut()
            .add_default_ipv6_route(Ipv6Address::UNSPECIFIED);
        let mut link = Link {
            iface,
            sockets: SocketSet::new(Vec::new()),
            device,
            addresses: Vec::new(),
            mtu: spec.mtu,
            dirty: true,
            poll_at: None,
            backlogs: HashMap::new(),
        };
        link.set_addresses(&spec.addresses);
        link
    }

    pub fn set_addresses(&mut self, addresses: &[IpCidr]) {
        self.iface.update_ip_addrs(|addrs| {
            addrs.clear();
            for a in addresses.iter().take(MAX_ADDRESSES) {
                let _ = addrs.push(*a);
            }
        });
        self.addresses = addresses.to_vec();
    }

    pub fn has_address(&self, ip: IpAddr) -> bool {
        self.iface.has_ip_addr(ip)
    }

    pub fn socket(&mut self, handle: SocketHandle) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut::<tcp::Socket>(handle)
    }

    /// Whether a socket on this link already uses local `port`.
    pub fn port_in_use(&self, port: u16) -> bool {
        self.backlogs.contains_key(&port)
            || self.sockets.iter().any(|(_, s)| {
                tcp::Socket::downcast(s).is_some_and(|t| {
                    t.local_endpoint().is_some_and(|e| e.port == port)
                        || t.listen_endpoint().port == port
                })
            })
    }

    /// Make sure `port` has a socket in LISTEN here, unless `limit` connections are
    /// already half-open (a SYN flood then meets RSTs rather than eating memory).
    pub fn refill(&mut self, port: u16, limit: usize) {
        let backlog = self.backlogs.entry(port).or_default();
        if let Some(h) = backlog.listening {
            if self.sockets.get::<tcp::Socket>(h).is_listening() {
                return;
            }
            backlog.pending.push(h);
            backlog.listening = None;
        }
        if backlog.pending.len() >= limit {
            return;
        }
        let mut socket = new_socket();
        if socket.listen(port).is_ok() {
            backlog.listening = Some(self.sockets.add(socket));
        }
    }

    /// Refill every listening port after each received packet, so that two SYNs in one
    /// burst both find a listener.
    pub fn refill_all(&mut self, limit: usize) {
        let ports: Vec<u16> = self.backlogs.keys().copied().collect();
        for port in ports {
            self.refill(port, limit);
        }
    }
}

/// A socket as every connection of the stack uses it.
pub fn new_socket() -> tcp::Socket<'static> {
    let mut socket = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; SOCKET_BUFFER]),
        tcp::SocketBuffer::new(vec![0; SOCKET_BUFFER]),
    );
    // BGP writes whole messages; holding a KEEPALIVE back behind an unacknowledged
    // UPDATE only adds latency.
    socket.set_nagle_enabled(false);
    // RFC 5082 (GTSM): single-hop peers may insist on TTL 255.
    socket.set_hop_limit(Some(255));
    socket
}

/// An ephemeral port (RFC 6335 range) starting the search at `start`, skipping ports
/// `in_use` says are taken; `None` when all are.
pub fn pick_port(start: u16, in_use: impl Fn(u16) -> bool) -> Option<u16> {
    const FIRST: u16 = 49152;
    const COUNT: u32 = (u16::MAX - FIRST) as u32 + 1;
    let offset = u32::from(start) % COUNT;
    (0..COUNT)
        .map(|i| FIRST + ((offset + i) % COUNT) as u16)
        .find(|&p| !in_use(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::PrivateKey;

    #[test]
    fn ephemeral_ports_stay_in_range_and_skip_used_ones() {
        assert_eq!(pick_port(0, |_| false), Some(49152));
        assert_eq!(pick_port(u16::MAX, |_| false), Some(49152 + 16383));
        assert_eq!(pick_port(16383, |p| p == 65535), Some(49152));
        assert_eq!(pick_port(7, |p| p < 65535), Some(65535));
        assert_eq!(pick_port(7, |_| true), None);
    }

    fn config(host: &str) -> Config {
        let text = format!(
            r#"
[router]
router-id = "10.255.0.1"
private-key = "{key}"
{host}
[[tunnel]]
name = "a"
peer-public-key = "{peer}"
addresses = ["169.254.1.0/31", "fe80::1/64"]
[[tunnel]]
name = "b"
peer-public-key = "{peer2}"
addresses = ["fe80::1/64", "2001:db8::/127"]
"#,
            key = PrivateKey::generate().to_base64(),
            peer = PrivateKey::generate().public_key().to_base64(),
            peer2 = PrivateKey::generate().public_key().to_base64(),
        );
        crate::config::parse_str(&text, std::path::Path::new("t.toml")).expect("valid")
    }

    fn cidr(s: &str) -> IpCidr {
        let net: ipnetwork::IpNetwork = s.parse().unwrap();
        IpCidr::new(net.ip().into(), net.prefix())
    }

    #[test]
    fn specs_carry_each_tunnels_addresses_and_the_router_id() {
        let live = |name: &str| match name {
            "a" => Some((TunnelId(1), 1420)),
            "b" => Some((TunnelId(2), 1280)),
            _ => None,
        };
        let specs = link_specs(&config(""), live);
        assert_eq!(
            specs[&TunnelId(1)].addresses,
            [
                cidr("169.254.1.0/31"),
                cidr("fe80::1/64"),
                cidr("10.255.0.1/32")
            ]
        );
        assert_eq!(specs[&TunnelId(2)].mtu, 1280);
        assert_eq!(specs[&TunnelId(2)].addresses[0], cidr("fe80::1/64"));

        // Not yet built: no link.
        let only_a = link_specs(&config(""), |n| live(n).filter(|_| n == "a"));
        assert_eq!(only_a.keys().collect::<Vec<_>>(), [&TunnelId(1)]);

        // The host owns the router id: it is not ours to answer.
        let shared = config("[host]\naddresses = [\"10.255.0.1/32\"]");
        assert_eq!(link_specs(&shared, live)[&TunnelId(1)].addresses.len(), 2);
    }
}
