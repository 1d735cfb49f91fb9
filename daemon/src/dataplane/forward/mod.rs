//! The per-packet forwarding decision: given one IP packet and where it came from, say
//! whether to forward it (and out of which egress), deliver it to the control plane,
//! answer it with a packet the router generates (ICMP echo reply or error), or drop it.
//!
//! Pure: no I/O, no allocation, no locks. Routes come through [`RouteLookup`] (the FIB
//! implements it), MTUs through a closure, time through an injectable clock. The only
//! shared state is atomics (counters, rate limiters, the IPv4 ident) and the arc-swapped
//! [`LocalAddresses`]. Must not touch the FIB's internals, tunnels or sockets; wire
//! formats live in [`crate::wire`].
//!
//! Implements, for a router: RFC 1812 sections 4.2.2.7 / 5.2.4.3 (fragmentation),
//! 5.3.1 (TTL), 5.3.7 (martian filtering), 4.3.2.3 - 4.3.2.8 (ICMP errors: contents,
//! source, when not to send, rate limit), 4.3.3.6 (echo); RFC 1191 (frag-needed MTU);
//! RFC 8200 section 3 (hop limit); RFC 4443 sections 2.2, 2.4, 3.1 - 3.3, 4.1 - 4.2;
//! RFC 4291 section 2.5.6 (link-local scope); RFC 1624 (incremental checksum); TCP MSS
//! clamping toward and from tunnels in [`mss`] (RFC 9293 3.7.1, RFC 6691).
//! See docs/forwarding.md for the decisions and their reasons.

mod counters;
mod hash;
mod limiter;
mod local;
pub mod mss;

#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
mod tests;

pub use counters::{DropReason, Event, ForwardCounters};
pub use hash::{flow_hash, flow_hash_seeded};
pub use limiter::{IcmpRateLimiter, RateLimit};
pub use local::{LocalAddresses, OSPF_V4_GROUPS, OSPF_V6_GROUPS};

use super::{Egress, Ingress};
use crate::wire::icmp::{self, v4, v6};
use crate::wire::ipv4::{Ipv4Fragmenter, Ipv4Packet};
use crate::wire::ipv6::{next_header, Ipv6Packet};
use crate::wire::{checksum, ipv4, ipv6, WireError};
use arc_swap::ArcSwap;
use hash::{hash_v4, hash_v6};
use local::is_link_local_v6;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The FIB as the forwarding decision sees it: the egress for `dst`, with the ECMP member
/// already chosen by `flow_hash`. `None` means no route.
pub trait RouteLookup {
    fn lookup(&self, dst: IpAddr, flow_hash: u32) -> Option<Egress>;
}

impl<F: Fn(IpAddr, u32) -> Option<Egress>> RouteLookup for F {
    fn lookup(&self, dst: IpAddr, flow_hash: u32) -> Option<Egress> {
        self(dst, flow_hash)
    }
}

/// What to do with one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Send `packet[..len]` out of `to`. The packet was modified in place: TTL / hop
    /// limit decremented and the IPv4 checksum patched. `len` is the IP datagram length,
    /// which drops any bytes after it in the buffer.
    Forward { to: Egress, len: usize },
    /// IPv4 without DF, larger than `mtu`: already TTL-decremented in place; send the
    /// fragments from [`Ipv4Fragmenter::new`]`(packet, mtu)` out of `to`.
    Fragment { to: Egress, mtu: u16 },
    /// For the router itself and not answered here (OSPF, TCP for BGP, ICMP other than
    /// echo, fragments): hand the packet, unmodified, to the control plane.
    Deliver,
    /// The router answered: send `out[..len]` (an ICMP echo reply or ICMP error) out of
    /// `to`, which the FIB chose toward the original packet's source.
    Reply { len: usize, to: Egress },
    /// Dropped and counted under the reason.
    Drop(DropReason),
}

/// Tunables of the forwarding decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwarderConfig {
    /// Cap on generated ICMP errors (all kinds together).
    pub icmp_errors: RateLimit,
    /// Cap on echo replies, separate so pings never starve errors or vice versa.
    pub echo_replies: RateLimit,
    /// Fragment IPv4 packets without DF that exceed the egress MTU (else drop them).
    pub fragment_ipv4: bool,
    /// Seed of the ECMP flow hash; differ it per router to avoid hash polarization.
    pub hash_seed: u32,
    /// Lower the MSS of TCP SYNs forwarded into or out of a tunnel to fit the tunnel MTU
    /// (changeable later with [`Forwarder::set_mss_clamp`]).
    pub mss_clamp: bool,
}

impl Default for ForwarderConfig {
    fn default() -> Self {
        ForwarderConfig {
            icmp_errors: RateLimit::ICMP_ERRORS,
            echo_replies: RateLimit::ECHO_REPLIES,
            fragment_ipv4: true,
            hash_seed: 0,
            mss_clamp: true,
        }
    }
}

/// TTL / hop limit of packets the router originates.
const ORIGIN_TTL: u8 = 64;
/// DSCP CS6 (precedence 6, internetwork control) for ICMP errors (RFC 1812 4.3.2.5).
const ERROR_TOS: u8 = 0xc0;

/// Monotonic nanoseconds; injectable so tests control the rate limiters.
pub type Clock = Box<dyn Fn() -> u64 + Send + Sync>;

/// The forwarding decision and its state. Share it between packet threads by reference
/// (`Arc<Forwarder>`); every method takes `&self`.
pub struct Forwarder {
    local: ArcSwap<LocalAddresses>,
    errors: IcmpRateLimiter,
    echoes: IcmpRateLimiter,
    counters: ForwardCounters,
    config: ForwarderConfig,
    ident: AtomicU16,
    mss_clamp: AtomicBool,
    clock: Clock,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder")
            .field("local", &self.local)
            .field("config", &self.config)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl Forwarder {
    /// A forwarder with the default configuration.
    pub fn new(local: LocalAddresses) -> Self {
        Self::with_config(local, ForwarderConfig::default())
    }

    pub fn with_config(local: LocalAddresses, config: ForwarderConfig) -> Self {
        let start = Instant::now();
        Forwarder {
            local: ArcSwap::from_pointee(local),
            errors: IcmpRateLimiter::new(config.icmp_errors),
            echoes: IcmpRateLimiter::new(config.echo_replies),
            counters: ForwardCounters::default(),
            config,
            ident: AtomicU16::new(0),
            mss_clamp: AtomicBool::new(config.mss_clamp),
            clock: Box::new(move || start.elapsed().as_nanos() as u64),
        }
    }

    /// Replaces the clock the rate limiters read (monotonic nanoseconds).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Swaps in new local addresses (after a configuration change). Packets being
    /// decided keep the old set; the next ones see the new one.
    pub fn set_local(&self, local: LocalAddresses) {
        self.local.store(Arc::new(local));
    }

    pub fn local(&self) -> Arc<LocalAddresses> {
        self.local.load_full()
    }

    /// Turns TCP MSS clamping on or off (config `[forwarding] mss-clamp`); packets being
    /// decided may still see the old setting.
    pub fn set_mss_clamp(&self, on: bool) {
        self.mss_clamp.store(on, Ordering::Relaxed);
    }

    pub fn mss_clamp(&self) -> bool {
        self.mss_clamp.load(Ordering::Relaxed)
    }

    pub fn config(&self) -> &ForwarderConfig {
        &self.config
    }

    pub fn counters(&self) -> &ForwardCounters {
        &self.counters
    }

    /// Decides what to do with `packet`, which arrived from `ingress`.
    ///
    /// - `packet` is one IP packet; bytes after its IP length are ignored. It is modified
    ///   only for `Forward` and `Fragment`.
    /// - `egress_mtu` gives the IP MTU of an egress; it is not asked about
    ///   `Egress::Local`.
    /// - `out` receives replies; give it at least as many bytes as the largest packet
    ///   (an echo reply is as long as its request) and 1280 for ICMPv6 errors. Shorter
    ///   buffers cut ICMP error quotes and make large pings go unanswered.
    ///
    /// Packets from `Ingress::Local` (the router's own) are routed without a TTL
    /// decrement and never cause ICMP errors: the router would be telling itself.
    pub fn decide<R, M>(
        &self,
        ingress: Ingress,
        packet: &mut [u8],
        routes: &R,
        egress_mtu: M,
        out: &mut [u8],
    ) -> Decision
    where
        R: RouteLookup + ?Sized,
        M: Fn(Egress) -> u16,
    {
        let local = self.local.load();
        let cx = Cx {
            fwd: self,
            ingress,
            routes,
            mtu: &egress_mtu,
            local: &local,
        };
        match packet.first().map(|b| b >> 4) {
            Some(4) => cx.v4(packet, out),
            Some(6) => cx.v6(packet, out),
            Some(_) => cx.drop(DropReason::BadVersion),
            None => cx.drop(DropReason::Truncated),
        }
    }

    fn next_ident(&self) -> u16 {
        self.ident.fetch_add(1, Ordering::Relaxed)
    }
}

impl From<WireError> for DropReason {
    fn from(e: WireError) -> Self {
        match e {
            WireError::Truncated => DropReason::Truncated,
            WireError::BadVersion => DropReason::BadVersion,
            WireError::BadHeaderLength => DropReason::BadHeaderLength,
            WireError::BadTotalLength => DropReason::BadTotalLength,
        }
    }
}

/// Everything one decision needs, so the helpers below take few arguments.
struct Cx<'a, R: ?Sized, M> {
    fwd: &'a Forwarder,
    ingress: Ingress,
    routes: &'a R,
    mtu: &'a M,
    local: &'a LocalAddresses,
}

/// RFC 1812 5.3.7: sources that cannot be a single host: 0/8, 127/8, multicast, class E
/// and the limited broadcast.
fn martian_source_v4(a: Ipv4Addr) -> bool {
    let o = a.octets()[0];
    o == 0 || o == 127 || o >= 224
}

/// Destinations never forwarded: 0/8, 127/8 and class E (broadcast is handled apart).
fn martian_destination_v4(a: Ipv4Addr) -> bool {
    let o = a.octets()[0];
    o == 0 || o == 127 || o >= 240
}

/// ::ffff:0:0/96 must not appear on the wire (RFC 4291 section 2.5.5.2, RFC 4038).
fn v4_mapped(a: Ipv6Addr) -> bool {
    u128::from(a) >> 32 == 0xffff
}

fn martian_source_v6(a: Ipv6Addr) -> bool {
    a.is_unspecified() || a.is_loopback() || a.is_multicast() || v4_mapped(a)
}

fn martian_destination_v6(a: Ipv6Addr) -> bool {
    a.is_unspecified() || a.is_loopback() || v4_mapped(a)
}

fn ports_of(datagram: &[u8], off: usize) -> u32 {
    datagram
        .get(off..off + 4)
        .map_or(0, |p| u32::from_be_bytes([p[0], p[1], p[2], p[3]]))
}

impl<R: RouteLookup + ?Sized, M: Fn(Egress) -> u16> Cx<'_, R, M> {
    fn drop(&self, reason: DropReason) -> Decision {
        self.fwd.counters.count_drop(reason);
        Decision::Drop(reason)
    }

    fn event(&self, e: Event) {
        self.fwd.counters.count(e);
    }

    fn now(&self) -> u64 {
        (self.fwd.clock)()
    }

    fn transit(&self) -> bool {
        self.ingress != Ingress::Local
    }

    /// The egress toward `dst` for a packet the router originates; `None` when there is
    /// no usable route.
    fn route_back(&self, dst: IpAddr, hash: u32) -> Option<Egress> {
        match self.routes.lookup(dst, hash) {
            None | Some(Egress::Blackhole) => None,
            e => e,
        }
    }

    /// Clamp the MSS of a TCP SYN `segment` (TCP header to the end of the IP payload)
    /// being forwarded to `to`: to fit the egress tunnel's MTU and the ingress tunnel's
    /// (the SYN's MSS sizes the segments that will come back through it), whichever is
    /// smaller. Host-to-host never happens here; the router's own packets are left alone.
    fn clamp_mss(&self, to: Egress, segment: &mut [u8], ipv6: bool) {
        if !self.transit() || !self.fwd.mss_clamp.load(Ordering::Relaxed) {
            return;
        }
        let egress = matches!(to, Egress::Tunnel(_)).then(|| (self.mtu)(to));
        let ingress = match self.ingress {
            Ingress::Tunnel(id) => Some((self.mtu)(Egress::Tunnel(id))),
            _ => None,
        };
        // 0: a tunnel that vanished under a stale entry; it says nothing about the path.
        let Some(mtu) = [egress, ingress]
            .into_iter()
            .flatten()
            .filter(|&m| m > 0)
            .min()
        else {
            return;
        };
        if let mss::Clamp::Clamped { .. } = mss::clamp_segment(segment, mss::max_mss(mtu, ipv6)) {
            self.event(Event::MssClamped);
        }
    }

    /// The MTU toward `to`, unbounded for local delivery.
    fn mtu_of(&self, to: Egress) -> usize {
        match to {
            Egress::Local => usize::MAX,
            e => usize::from((self.mtu)(e)),
        }
    }

    // ---------------------------------------------------------------- IPv4

    fn v4(&self, packet: &mut [u8], out: &mut [u8]) -> Decision {
        let ip = match Ipv4Packet::new_checked(&*packet) {
            Ok(ip) => ip,
            Err(e) => return self.drop(e.into()),
        };
        if !ip.verify_checksum() {
            return self.drop(DropReason::BadChecksum);
        }
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        if martian_source_v4(src) {
            return self.drop(DropReason::MartianSource);
        }
        if dst == Ipv4Addr::BROADCAST {
            return self.drop(DropReason::Broadcast);
        }
        if dst.is_multicast() {
            return if OSPF_V4_GROUPS.contains(&dst) {
                Decision::Deliver
            } else {
                self.drop(DropReason::Multicast)
            };
        }
        if martian_destination_v4(dst) {
            return self.drop(DropReason::MartianDestination);
        }
        if self.local.contains_v4(dst) {
            return self.local_v4(&ip, out);
        }

        let proto = ip.protocol();
        let ports = if !ip.is_fragment() {
            ports_of(ip.datagram(), ip.header_len())
        } else {
            0
        };
        let ports = if matches!(proto, 6 | 17 | 132) {
            ports
        } else {
            0
        };
        let hash = hash_v4(
            self.fwd.config.hash_seed,
            src.into(),
            dst.into(),
            proto,
            ports,
        );
        let to = match self.routes.lookup(IpAddr::V4(dst), hash) {
            None => {
                let (ty, code) = (v4::DEST_UNREACHABLE, v4::NET_UNREACHABLE);
                return self.error_v4(&ip, DropReason::NoRoute, ty, code, [0; 4], out);
            }
            Some(Egress::Blackhole) => return self.drop(DropReason::Blackhole),
            Some(Egress::Local) => return self.local_v4(&ip, out),
            Some(to) => to,
        };
        if self.transit() && ip.ttl() <= 1 {
            let (ty, code) = (v4::TIME_EXCEEDED, v4::TTL_EXCEEDED);
            return self.error_v4(&ip, DropReason::TtlExceeded, ty, code, [0; 4], out);
        }
        let len = ip.total_len();
        let mtu = (self.mtu)(to);
        if len > usize::from(mtu) {
            if usize::from(mtu) < ipv4::MIN_MTU {
                return self.drop(DropReason::EgressMtuTooSmall);
            }
            if ip.dont_frag() {
                let [hi, lo] = mtu.to_be_bytes();
                let (ty, code) = (v4::DEST_UNREACHABLE, v4::FRAG_NEEDED);
                return self.error_v4(&ip, DropReason::TooBig, ty, code, [0, 0, hi, lo], out);
            }
            if !self.fwd.config.fragment_ipv4 || Ipv4Fragmenter::new(ip.datagram(), mtu).is_none() {
                return self.drop(DropReason::CannotFragment);
            }
            if self.transit() {
                Ipv4Packet::new_unchecked(&mut *packet).decrement_ttl();
            }
            self.event(Event::Fragmented);
            return Decision::Fragment { to, mtu };
        }
        if proto == mss::PROTO_TCP && !ip.is_fragment() {
            let at = ip.header_len();
            self.clamp_mss(to, &mut packet[at..len], false);
        }
        if self.transit() {
            Ipv4Packet::new_unchecked(&mut *packet).decrement_ttl();
        }
        Decision::Forward { to, len }
    }

    /// A packet for one of the router's unicast addresses: answer echo, deliver the rest.
    fn local_v4(&self, ip: &Ipv4Packet<&[u8]>, out: &mut [u8]) -> Decision {
        let icmp = ip.payload();
        if ip.protocol() != icmp::PROTO_ICMP
            || ip.is_fragment()
            || icmp.first() != Some(&v4::ECHO_REQUEST)
        {
            return Decision::Deliver;
        }
        if icmp.len() < icmp::HEADER_LEN || !checksum::verifies(icmp) {
            return self.drop(DropReason::BadIcmp);
        }
        if !self.fwd.echoes.try_acquire(self.now()) {
            return self.drop(DropReason::EchoRateLimited);
        }
        // The reply comes from the address that was pinged (RFC 1812 4.3.3.6 via
        // RFC 1122 3.2.2.6); IP options are not echoed back.
        let (src, dst) = (ip.dst_addr(), ip.src_addr());
        let hash = hash_v4(
            self.fwd.config.hash_seed,
            src.into(),
            dst.into(),
            icmp::PROTO_ICMP,
            0,
        );
        let Some(to) = self.route_back(IpAddr::V4(dst), hash) else {
            return self.drop(DropReason::EchoUnroutable);
        };
        if ipv4::HEADER_LEN + icmp.len() > self.mtu_of(to) {
            return self.drop(DropReason::EchoTooBig);
        }
        let repr = icmp::v4_repr(src, dst, ip.tos(), self.fwd.next_ident(), ORIGIN_TTL);
        match icmp::emit_v4_echo_reply(out, repr, icmp) {
            Some(len) => {
                self.event(Event::EchoReplySent);
                Decision::Reply { len, to }
            }
            None => self.drop(DropReason::EchoTooBig),
        }
    }

    /// RFC 1812 4.3.2.7: no ICMP error about an ICMP error, a non-first fragment, a
    /// multicast or broadcast destination, or a source that is not one host.
    fn may_error_v4(&self, ip: &Ipv4Packet<&[u8]>) -> bool {
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        if !self.transit()
            || ip.frag_offset() != 0
            || dst.is_multicast()
            || dst == Ipv4Addr::BROADCAST
            || martian_source_v4(src)
        {
            return false;
        }
        if ip.protocol() == icmp::PROTO_ICMP {
            // An ICMP header we cannot see might be an error: stay silent.
            return ip.payload().first().is_some_and(|&t| !icmp::v4_is_error(t));
        }
        true
    }

    /// Drops `ip` under `reason` and, when allowed and within the rate limit, writes the
    /// ICMP error `ty`/`code` about it into `out`.
    fn error_v4(
        &self,
        ip: &Ipv4Packet<&[u8]>,
        reason: DropReason,
        ty: u8,
        code: u8,
        rest: [u8; 4],
        out: &mut [u8],
    ) -> Decision {
        self.fwd.counters.count_drop(reason);
        if !self.may_error_v4(ip) {
            self.event(Event::IcmpErrorForbidden);
            return Decision::Drop(reason);
        }
        if !self.fwd.errors.try_acquire(self.now()) {
            self.event(Event::IcmpErrorRateLimited);
            return Decision::Drop(reason);
        }
        let Some(src) = self.local.error_source_v4(self.ingress) else {
            self.event(Event::IcmpErrorNoSource);
            return Decision::Drop(reason);
        };
        let dst = ip.src_addr();
        let hash = hash_v4(
            self.fwd.config.hash_seed,
            src.into(),
            dst.into(),
            icmp::PROTO_ICMP,
            0,
        );
        let quote = ip.datagram();
        // RFC 792 wants the whole original header and 8 bytes of data at least.
        let min_len = ipv4::HEADER_LEN + icmp::HEADER_LEN + quote.len().min(ip.header_len() + 8);
        let sent = self.route_back(IpAddr::V4(dst), hash).and_then(|to| {
            let max = icmp::V4_ERROR_MAX.min(self.mtu_of(to)).min(out.len());
            if max < min_len {
                return None;
            }
            let repr = icmp::v4_repr(src, dst, ERROR_TOS, self.fwd.next_ident(), ORIGIN_TTL);
            icmp::emit_v4_error(out, repr, ty, code, rest, quote, max).map(|len| (len, to))
        });
        match sent {
            Some((len, to)) => {
                self.event(Event::IcmpErrorSent);
                Decision::Reply { len, to }
            }
            None => {
                self.event(Event::IcmpErrorUnroutable);
                Decision::Drop(reason)
            }
        }
    }

    // ---------------------------------------------------------------- IPv6

    fn v6(&self, packet: &mut [u8], out: &mut [u8]) -> Decision {
        let ip = match Ipv6Packet::new_checked(&*packet) {
            Ok(ip) => ip,
            Err(e) => return self.drop(e.into()),
        };
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        if martian_source_v6(src) {
            return self.drop(DropReason::MartianSource);
        }
        if dst.is_multicast() {
            return if OSPF_V6_GROUPS.contains(&dst) {
                Decision::Deliver
            } else {
                self.drop(DropReason::Multicast)
            };
        }
        if martian_destination_v6(dst) {
            return self.drop(DropReason::MartianDestination);
        }
        if self.local.contains_v6(dst) {
            return self.local_v6(&ip, out);
        }
        // RFC 4291 2.5.6: link-local packets never leave their link. (RFC 4443 3.1
        // code 2 "beyond scope of source" is not sent; see docs/forwarding.md.)
        if is_link_local_v6(src) || is_link_local_v6(dst) {
            return self.drop(DropReason::LinkLocalScope);
        }

        let (proto, ports, l4_at) = match ip.upper_layer() {
            Some(ul) if !ul.fragmented && matches!(ul.protocol, 6 | 17 | 132) => (
                ul.protocol,
                ports_of(ip.datagram(), ul.offset),
                Some(ul.offset),
            ),
            Some(ul) => (ul.protocol, 0, None),
            None => (ip.next_header(), 0, None),
        };
        let hash = hash_v6(
            self.fwd.config.hash_seed,
            src.into(),
            dst.into(),
            proto,
            ports,
        );
        let to = match self.routes.lookup(IpAddr::V6(dst), hash) {
            None => {
                let (ty, code) = (v6::DEST_UNREACHABLE, v6::NO_ROUTE);
                return self.error_v6(&ip, DropReason::NoRoute, ty, code, [0; 4], out);
            }
            Some(Egress::Blackhole) => return self.drop(DropReason::Blackhole),
            Some(Egress::Local) => return self.local_v6(&ip, out),
            Some(to) => to,
        };
        if self.transit() && ip.hop_limit() <= 1 {
            let (ty, code) = (v6::TIME_EXCEEDED, v6::HOP_LIMIT_EXCEEDED);
            return self.error_v6(&ip, DropReason::TtlExceeded, ty, code, [0; 4], out);
        }
        let len = ip.total_len();
        let mtu = (self.mtu)(to);
        if len > usize::from(mtu) {
            if usize::from(mtu) < ipv6::MIN_MTU {
                return self.drop(DropReason::EgressMtuTooSmall);
            }
            // Routers never fragment IPv6 (RFC 8200 section 5).
            let rest = u32::from(mtu).to_be_bytes();
            let ty = v6::PACKET_TOO_BIG;
            return self.error_v6(&ip, DropReason::TooBig, ty, 0, rest, out);
        }
        if let (mss::PROTO_TCP, Some(at)) = (proto, l4_at) {
            self.clamp_mss(to, &mut packet[at..len], true);
        }
        if self.transit() {
            Ipv6Packet::new_unchecked(&mut *packet).decrement_hop_limit();
        }
        Decision::Forward { to, len }
    }

    fn local_v6(&self, ip: &Ipv6Packet<&[u8]>, out: &mut [u8]) -> Decision {
        let datagram = ip.datagram();
        let icmp = match ip.upper_layer() {
            Some(ul) if ul.protocol == next_header::ICMPV6 && !ul.fragmented => {
                &datagram[ul.offset..]
            }
            _ => return Decision::Deliver,
        };
        if icmp.first() != Some(&v6::ECHO_REQUEST) {
            return Decision::Deliver;
        }
        let (src, dst) = (ip.dst_addr(), ip.src_addr());
        if icmp.len() < icmp::HEADER_LEN || !icmp::v6_checksum_ok(&dst, &src, icmp) {
            return self.drop(DropReason::BadIcmp);
        }
        if !self.fwd.echoes.try_acquire(self.now()) {
            return self.drop(DropReason::EchoRateLimited);
        }
        // Source of the reply: the pinged address (RFC 4443 2.2 (a), 4.2).
        let hash = hash_v6(
            self.fwd.config.hash_seed,
            src.into(),
            dst.into(),
            next_header::ICMPV6,
            0,
        );
        let Some(to) = self.route_back(IpAddr::V6(dst), hash) else {
            return self.drop(DropReason::EchoUnroutable);
        };
        if ipv6::HEADER_LEN + icmp.len() > self.mtu_of(to) {
            return self.drop(DropReason::EchoTooBig);
        }
        let repr = icmp::v6_repr(src, dst, ip.traffic_class(), ORIGIN_TTL);
        match icmp::emit_v6_echo_reply(out, repr, icmp) {
            Some(len) => {
                self.event(Event::EchoReplySent);
                Decision::Reply { len, to }
            }
            None => self.drop(DropReason::EchoTooBig),
        }
    }

    /// RFC 4443 2.4 (e): no error about an ICMPv6 error or redirect, a multicast
    /// destination, or a source that is not one node. Also none about a packet whose
    /// extension headers we cannot walk (it might be an error), and only packet-too-big
    /// about non-first fragments: the source needs it to size its fragments, while any
    /// other error could be about an error we cannot see.
    fn may_error_v6(&self, ip: &Ipv6Packet<&[u8]>, ty: u8) -> bool {
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        if !self.transit() || dst.is_multicast() || src.is_unspecified() || src.is_multicast() {
            return false;
        }
        match ip.upper_layer() {
            None => false,
            Some(ul) if !ul.first_fragment => ty == v6::PACKET_TOO_BIG,
            Some(ul) if ul.protocol == next_header::ICMPV6 => ip
                .datagram()
                .get(ul.offset)
                .is_some_and(|&t| !icmp::v6_is_error_or_redirect(t)),
            Some(_) => true,
        }
    }

    fn error_v6(
        &self,
        ip: &Ipv6Packet<&[u8]>,
        reason: DropReason,
        ty: u8,
        code: u8,
        rest: [u8; 4],
        out: &mut [u8],
    ) -> Decision {
        self.fwd.counters.count_drop(reason);
        if !self.may_error_v6(ip, ty) {
            self.event(Event::IcmpErrorForbidden);
            return Decision::Drop(reason);
        }
        if !self.fwd.errors.try_acquire(self.now()) {
            self.event(Event::IcmpErrorRateLimited);
            return Decision::Drop(reason);
        }
        let dst = ip.src_addr();
        let Some(src) = self.local.error_source_v6(self.ingress, dst) else {
            self.event(Event::IcmpErrorNoSource);
            return Decision::Drop(reason);
        };
        let hash = hash_v6(
            self.fwd.config.hash_seed,
            src.into(),
            dst.into(),
            next_header::ICMPV6,
            0,
        );
        let quote = ip.datagram();
        let min_len = ipv6::HEADER_LEN + icmp::HEADER_LEN + quote.len().min(ipv6::HEADER_LEN + 8);
        let sent = self.route_back(IpAddr::V6(dst), hash).and_then(|to| {
            let max = icmp::V6_ERROR_MAX.min(self.mtu_of(to)).min(out.len());
            if max < min_len {
                return None;
            }
            let repr = icmp::v6_repr(src, dst, 0, ORIGIN_TTL);
            icmp::emit_v6_error(out, repr, ty, code, rest, quote, max).map(|len| (len, to))
        });
        match sent {
            Some((len, to)) => {
                self.event(Event::IcmpErrorSent);
                Decision::Reply { len, to }
            }
            None => {
                self.event(Event::IcmpErrorUnroutable);
                Decision::Drop(reason)
            }
        }
    }
}
