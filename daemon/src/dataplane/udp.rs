//! The UDP sockets WireGuard datagrams travel on, and the demultiplexing of a received
//! datagram to the tunnel it belongs to.
//!
//! Many tunnels share one socket. A handshake initiation names its sender only inside the
//! encrypted static key, so it is matched by decrypting that key (after the MAC and cookie
//! checks of the shared rate limiter, which keep a handshake flood from costing a
//! Diffie-Hellman each); every other message carries the receiver index we chose, whose
//! upper 24 bits are the tunnel id.

use super::TunnelId;
use crate::keys::{PrivateKey, PublicKey};
use boringtun::noise::handshake::parse_handshake_anon;
use boringtun::noise::rate_limiter::RateLimiter;
use boringtun::noise::{Packet, TunnResult};
use boringtun::x25519;
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

/// Socket buffers large enough that a burst at line rate is not dropped by the kernel
/// before the receive thread gets to it (the stock 208 KiB loses ~17% at full speed here).
const SOCKET_BUFFER_BYTES: usize = 8 << 20;

/// How long a blocking receive waits before checking for shutdown.
pub const RECV_POLL: Duration = Duration::from_millis(200);

/// Open a UDP socket for WireGuard. Without an address it is dual-stack (`[::]`, IPv4
/// peers appear as mapped addresses), falling back to IPv4 only where IPv6 is disabled.
pub fn bind(address: Option<IpAddr>, port: u16) -> io::Result<UdpSocket> {
    let socket = match address {
        Some(ip) => bind_one(SocketAddr::new(ip, port), false)?,
        None => match bind_one(
            SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
            true,
        ) {
            Ok(s) => s,
            Err(e) if e.kind() != io::ErrorKind::AddrInUse => bind_one(
                SocketAddr::new(IpAddr::V4([0, 0, 0, 0].into()), port),
                false,
            )?,
            Err(e) => return Err(e),
        },
    };
    Ok(socket)
}

fn bind_one(addr: SocketAddr, dual_stack: bool) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if dual_stack {
        socket.set_only_v6(false)?;
    }
    // FORCE variants need CAP_NET_ADMIN; without it take what the sysctl limit allows.
    if socket.set_recv_buffer_size(SOCKET_BUFFER_BYTES).is_err() {
        tracing::debug!("could not enlarge UDP receive buffer");
    }
    force_buffer(&socket, libc::SO_RCVBUFFORCE);
    force_buffer(&socket, libc::SO_SNDBUFFORCE);
    socket.bind(&addr.into())?;
    socket.set_read_timeout(Some(RECV_POLL))?;
    Ok(socket.into())
}

fn force_buffer(socket: &Socket, option: libc::c_int) {
    use std::os::fd::AsRawFd;
    let size = SOCKET_BUFFER_BYTES as libc::c_int;
    // SAFETY: setsockopt with a valid fd, a c_int value and its exact length.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            &size as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        tracing::debug!(option, "SO_*BUFFORCE refused (no CAP_NET_ADMIN?)");
    }
}

/// Segments per GSO send: the kernel's UDP_MAX_SEGMENTS is 64 on older kernels.
const MAX_GSO_SEGMENTS: usize = 64;

/// A bound UDP socket with batched I/O: several datagrams to one destination leave in one
/// `sendmsg` (UDP GSO), and a burst from one source arrives in one `recvmsg` (UDP GRO),
/// where the kernel supports it; quinn-udp falls back to one datagram per call where it
/// does not.
pub struct UdpPort {
    socket: UdpSocket,
    state: quinn_udp::UdpSocketState,
    dual_stack: bool,
}

/// One receive: `len` bytes of datagrams from `src`, each `stride` long (the last may be
/// shorter).
#[derive(Debug, Clone, Copy)]
pub struct Datagrams {
    pub len: usize,
    pub stride: usize,
    pub src: SocketAddr,
}

impl UdpPort {
    pub fn new(socket: UdpSocket) -> io::Result<UdpPort> {
        let dual_stack =
            socket.local_addr()?.is_ipv6() && !socket2::SockRef::from(&socket).only_v6()?;
        let state = quinn_udp::UdpSocketState::new((&socket).into())?;
        // quinn-udp makes the socket non-blocking; our receive threads block (with a
        // timeout to notice shutdown), and a blocking send is the backpressure we want.
        socket.set_nonblocking(false)?;
        socket.set_read_timeout(Some(RECV_POLL))?;
        Ok(UdpPort {
            socket,
            state,
            dual_stack,
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// How many equal-sized datagrams one [`UdpPort::send_segments`] may carry.
    pub fn max_segments(&self) -> usize {
        self.state.max_gso_segments().clamp(1, MAX_GSO_SEGMENTS)
    }

    fn destination(&self, to: SocketAddr) -> SocketAddr {
        match to {
            SocketAddr::V4(v4) if self.dual_stack => {
                SocketAddr::new(IpAddr::V6(v4.ip().to_ipv6_mapped()), v4.port())
            }
            other => other,
        }
    }

    pub fn send(&self, datagram: &[u8], to: SocketAddr) -> io::Result<()> {
        self.send_segments(datagram, datagram.len(), to)
    }

    /// Send `contents` as datagrams of `stride` bytes (the last may be shorter) to `to`.
    pub fn send_segments(&self, contents: &[u8], stride: usize, to: SocketAddr) -> io::Result<()> {
        let transmit = quinn_udp::Transmit {
            destination: self.destination(to),
            ecn: None,
            contents,
            segment_size: (contents.len() > stride).then_some(stride),
            src_ip: None,
        };
        self.state.try_send((&self.socket).into(), &transmit)
    }

    /// Block until datagrams arrive (or the poll interval passes: `WouldBlock`).
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Datagrams> {
        let mut meta = [quinn_udp::RecvMeta::default()];
        let mut bufs = [std::io::IoSliceMut::new(buf)];
        let n = self
            .state
            .recv((&self.socket).into(), &mut bufs, &mut meta)?;
        if n == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(Datagrams {
            len: meta[0].len,
            stride: meta[0].stride.max(1),
            src: meta[0].addr,
        })
    }
}

/// Where a received datagram goes.
#[derive(Debug, PartialEq, Eq)]
pub enum Demux {
    /// Hand it to this tunnel.
    Tunnel(TunnelId),
    /// A handshake initiation from this public key: find the tunnel configured for it.
    Peer(PublicKey),
    /// Send this cookie reply back to the source (we are under load).
    CookieReply(usize),
    /// Not for any tunnel: malformed, bad MAC, or rate limited.
    Drop(DemuxDrop),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DemuxDrop {
    Malformed,
    BadMac,
    UnderLoad,
    UnknownPeer,
}

impl DemuxDrop {
    pub const ALL: [DemuxDrop; 4] = [
        DemuxDrop::Malformed,
        DemuxDrop::BadMac,
        DemuxDrop::UnderLoad,
        DemuxDrop::UnknownPeer,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DemuxDrop::Malformed => "malformed_datagram",
            DemuxDrop::BadMac => "bad_mac",
            DemuxDrop::UnderLoad => "handshake_under_load",
            DemuxDrop::UnknownPeer => "unknown_peer",
        }
    }
}

/// The router's own identity, needed to read who sent a handshake initiation.
pub struct Demuxer {
    secret: x25519::StaticSecret,
    public: x25519::PublicKey,
    pub rate_limiter: Arc<RateLimiter>,
}

/// Handshakes per second (over all peers) before the cookie mechanism kicks in.
const HANDSHAKE_RATE_LIMIT: u64 = 100;

impl Demuxer {
    pub fn new(private_key: &PrivateKey) -> Demuxer {
        let secret = private_key.to_secret();
        let public = x25519::PublicKey::from(&secret);
        Demuxer {
            rate_limiter: Arc::new(RateLimiter::new(&public, HANDSHAKE_RATE_LIMIT)),
            secret,
            public,
        }
    }

    /// Decide which tunnel a datagram from `src` belongs to. `cookie` receives a cookie
    /// reply when the answer is [`Demux::CookieReply`].
    pub fn classify(&self, src: SocketAddr, datagram: &[u8], cookie: &mut [u8]) -> Demux {
        let packet = match self
            .rate_limiter
            .verify_packet(Some(src.ip()), datagram, cookie)
        {
            Ok(packet) => packet,
            Err(TunnResult::WriteToNetwork(reply)) => return Demux::CookieReply(reply.len()),
            Err(TunnResult::Err(boringtun::noise::errors::WireGuardError::UnderLoad)) => {
                return Demux::Drop(DemuxDrop::UnderLoad)
            }
            Err(TunnResult::Err(boringtun::noise::errors::WireGuardError::InvalidMac)) => {
                return Demux::Drop(DemuxDrop::BadMac)
            }
            Err(_) => return Demux::Drop(DemuxDrop::Malformed),
        };
        let receiver_index = match packet {
            Packet::HandshakeInit(ref init) => {
                return match parse_handshake_anon(&self.secret, &self.public, init) {
                    Ok(half) => Demux::Peer(PublicKey(half.peer_static_public)),
                    Err(_) => Demux::Drop(DemuxDrop::UnknownPeer),
                };
            }
            Packet::HandshakeResponse(p) => p.receiver_idx,
            Packet::PacketCookieReply(p) => p.receiver_idx,
            Packet::PacketData(p) => p.receiver_idx,
        };
        Demux::Tunnel(TunnelId(receiver_index >> 8))
    }

    /// Called once a second: boringtun's limiter counts handshakes per interval.
    pub fn reset_rate_limiter(&self) {
        self.rate_limiter.reset_count();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::tunnel::{Tunnel, TunnelParams};

    #[test]
    fn initiation_is_matched_by_key_and_data_by_index() {
        let ours = PrivateKey::generate();
        let theirs = PrivateKey::generate();
        let demux = Demuxer::new(&ours);
        let their_demux = Demuxer::new(&theirs);
        let remote = Tunnel::new(TunnelParams {
            id: TunnelId(7),
            name: "remote".into(),
            private_key: &theirs,
            peer_public_key: ours.public_key(),
            preshared_key: None,
            endpoint: Some("127.0.0.1:1".parse().unwrap()),
            persistent_keepalive: None,
            mtu: 1420,
            socket: 0,
            rate_limiter: their_demux.rate_limiter.clone(),
        });
        let mut out = vec![0u8; 2048];
        let mut init = None;
        remote
            .encapsulate(&[0x45; 20], &mut out, &mut |d, _| init = Some(d.to_vec()))
            .unwrap();
        let init = init.unwrap();
        let mut cookie = [0u8; 64];
        let src: SocketAddr = "127.0.0.1:5".parse().unwrap();
        assert_eq!(
            demux.classify(src, &init, &mut cookie),
            Demux::Peer(theirs.public_key())
        );
        // A data message names our receiver index: tunnel id in the upper 24 bits.
        let mut data = vec![4u8, 0, 0, 0];
        data.extend_from_slice(&((42u32 << 8) | 3).to_le_bytes());
        data.extend_from_slice(&[0u8; 32]);
        assert_eq!(
            demux.classify(src, &data, &mut cookie),
            Demux::Tunnel(TunnelId(42))
        );
        // An initiation meant for someone else is not ours.
        let stranger = Demuxer::new(&PrivateKey::generate());
        assert!(matches!(
            stranger.classify(src, &init, &mut cookie),
            Demux::Drop(_)
        ));
        assert_eq!(
            demux.classify(src, &[1, 2, 3], &mut cookie),
            Demux::Drop(DemuxDrop::Malformed)
        );
    }

    #[test]
    fn a_handshake_flood_is_answered_with_cookies_not_diffie_hellman() {
        let ours = PrivateKey::generate();
        let demux = Demuxer::new(&ours);
        let theirs = PrivateKey::generate();
        let their_limiter = Demuxer::new(&theirs).rate_limiter;
        let src: SocketAddr = "192.0.2.9:4444".parse().unwrap();
        let mut cookie = [0u8; 64];
        let mut verdicts = Vec::new();
        // Each initiation comes from a fresh Tunn, as a flood of new handshakes would.
        for _ in 0..(HANDSHAKE_RATE_LIMIT + 20) {
            let t = Tunnel::new(TunnelParams {
                id: TunnelId(1),
                name: "flood".into(),
                private_key: &theirs,
                peer_public_key: ours.public_key(),
                preshared_key: None,
                endpoint: Some(src),
                persistent_keepalive: None,
                mtu: 1420,
                socket: 0,
                rate_limiter: their_limiter.clone(),
            });
            let mut out = vec![0u8; 256];
            let mut init = Vec::new();
            t.encapsulate(&[0x45; 20], &mut out, &mut |d, _| init = d.to_vec())
                .unwrap();
            verdicts.push(demux.classify(src, &init, &mut cookie));
        }
        let accepted = verdicts
            .iter()
            .filter(|v| matches!(v, Demux::Peer(_)))
            .count();
        let cookies = verdicts
            .iter()
            .filter(|v| matches!(v, Demux::CookieReply(64)))
            .count();
        assert!(
            accepted as u64 <= HANDSHAKE_RATE_LIMIT,
            "{accepted} accepted"
        );
        assert!(cookies >= 20, "only {cookies} cookie replies under load");
        // The cookie reply is one the initiator accepts (it then retries with mac2 set,
        // which passes under load: WireGuard section 5.4.7).
        let t = Tunnel::new(TunnelParams {
            id: TunnelId(1),
            name: "legit".into(),
            private_key: &theirs,
            peer_public_key: ours.public_key(),
            preshared_key: None,
            endpoint: Some(src),
            persistent_keepalive: None,
            mtu: 1420,
            socket: 0,
            rate_limiter: their_limiter,
        });
        let mut out = vec![0u8; 256];
        let mut init = Vec::new();
        t.encapsulate(&[0x45; 20], &mut out, &mut |d, _| init = d.to_vec())
            .unwrap();
        let Demux::CookieReply(len) = demux.classify(src, &init, &mut cookie) else {
            panic!("still under load: expected a cookie reply");
        };
        let ours_addr: SocketAddr = "192.0.2.1:51820".parse().unwrap();
        t.decapsulate(ours_addr, &cookie[..len], &mut out, &mut |_, _| {});
        assert_eq!(
            t.counters
                .drops(crate::dataplane::tunnel::TunnelDrop::BadDatagram),
            0
        );
    }
}
