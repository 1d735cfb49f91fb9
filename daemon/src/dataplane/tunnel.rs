//! One WireGuard peer: the boringtun `Tunn` session state, the peer's current endpoint
//! (which roams to the source of the last authenticated packet), and its counters.
//!
//! This room knows nothing of sockets or routing: callers hand it datagrams and IP packets
//! and it answers with what to send where. Every tunnel's allowed IPs are 0.0.0.0/0 and
//! ::/0 — *which* tunnel carries a packet is the FIB's decision, not cryptokey routing.

use super::TunnelId;
use crate::keys::{PresharedKey, PrivateKey, PublicKey};
use boringtun::noise::errors::WireGuardError;
use boringtun::noise::rate_limiter::RateLimiter;
use boringtun::noise::{Tunn, TunnResult};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

/// Tunnel ids must fit in boringtun's 24-bit session index prefix: a session's local index
/// is `(id << 8) | n`, which is how a received datagram finds its tunnel.
pub const MAX_TUNNEL_ID: u32 = (1 << 24) - 1;

/// Why a tunnel dropped a packet. The names are the ones the API and `wgrctl` show.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TunnelDrop {
    /// Outgoing packet but the peer has never been heard from and has no configured endpoint.
    NoEndpoint,
    /// A datagram that failed authentication, replay check or decoding.
    BadDatagram,
    /// The decrypted payload was not an IPv4/IPv6 packet.
    BadInnerPacket,
    /// Sending to the UDP socket failed.
    SendFailed,
}

impl TunnelDrop {
    pub const ALL: [TunnelDrop; 4] = [
        TunnelDrop::NoEndpoint,
        TunnelDrop::BadDatagram,
        TunnelDrop::BadInnerPacket,
        TunnelDrop::SendFailed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            TunnelDrop::NoEndpoint => "no_endpoint",
            TunnelDrop::BadDatagram => "bad_datagram",
            TunnelDrop::BadInnerPacket => "bad_inner_packet",
            TunnelDrop::SendFailed => "send_failed",
        }
    }
}

/// Per-tunnel counters, updated on the packet path without locks.
#[derive(Debug, Default)]
pub struct TunnelCounters {
    pub rx_packets: AtomicU64,
    pub rx_bytes: AtomicU64,
    pub tx_packets: AtomicU64,
    pub tx_bytes: AtomicU64,
    pub handshakes: AtomicU64,
    drops: [AtomicU64; 4],
}

impl TunnelCounters {
    pub fn drop(&self, reason: TunnelDrop) {
        self.drops[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn drops(&self, reason: TunnelDrop) -> u64 {
        self.drops[reason as usize].load(Ordering::Relaxed)
    }
}

/// What the caller must do after handing a tunnel a datagram.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// Nothing more (a handshake, keepalive, or a dropped datagram).
    Nothing,
    /// `out[..len]` holds a decrypted IP packet that entered through this tunnel.
    Packet(usize),
}

/// A snapshot of a tunnel's state for the API and logs.
#[derive(Debug, Clone, PartialEq)]
pub struct TunnelStatus {
    pub endpoint: Option<SocketAddr>,
    /// Wall-clock time of the last completed handshake, if a session is up.
    pub last_handshake: Option<SystemTime>,
    /// Time since the last authenticated packet from the peer.
    pub last_received_ago: Option<Duration>,
    pub session_up: bool,
}

struct Session {
    tunn: Tunn,
    endpoint: Option<SocketAddr>,
    last_received: Option<Instant>,
    /// When we last sent a liveness probe. Probes go out on their own schedule even while
    /// traffic flows: the peer arms its silence detection only on seeing our keepalives,
    /// and a tunnel busy from the first second would otherwise never arm (seen in CI).
    last_probe: Option<Instant>,
    /// When the current session was established, to notice new handshakes (rekeys).
    established: Option<Instant>,
    /// Declare the peer silent after this long without an authenticated packet: the
    /// shortest interval any protocol asked for (see [`LivenessUser`]).
    liveness: Option<Duration>,
    requests: [Option<Duration>; 2],
    /// The peer is currently considered silent.
    silent: bool,
    /// Keepalives that arrived well within the interval: the peer probes us as fast as we
    /// need to hear from it.
    probe_streak: u8,
    /// The last authenticated packet was a transport packet (not a handshake message).
    last_was_transport: bool,
    /// Silence is reported only once the peer has shown that it probes (a wgrd peer with
    /// liveness on). A peer that sends keepalives seldom or never (wireguard-go, the
    /// kernel) would otherwise be declared silent whenever its traffic pauses.
    armed: bool,
}

/// Quick keepalives (each within 4/5 of the interval of the packet before) that arm
/// silence detection.
const PROBE_STREAK_TO_ARM: u8 = 3;
/// WireGuard's message type of transport data (keepalives included).
const TRANSPORT_MESSAGE: u8 = 4;

/// Who asked for liveness detection on a tunnel; the tunnel uses the shortest interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LivenessUser {
    Ospf = 0,
    Bgp = 1,
}

/// Counts the peer's quick keepalives toward arming silence detection: a keepalive that
/// arrives within 4/5 of the interval after the peer's previous transport packet shows
/// that the peer sends something at least that often when it has nothing else to send
/// (a wgrd probing, or a persistent keepalive shorter than the interval). Slow keepalives
/// do not undo that: a busy or loaded moment is not evidence against it. The keepalive an
/// initiator sends right after a handshake does not count (it follows a handshake
/// message, not a transport packet), or every peer would arm at each rekey.
fn note_probe(s: &mut Session, now: Instant, keepalive: bool, after_transport: bool) {
    let Some(interval) = s.liveness else {
        return;
    };
    if !keepalive || !after_transport {
        return;
    }
    let quick = s
        .last_received
        .is_some_and(|t| now.duration_since(t) < interval * 4 / 5);
    if quick {
        s.probe_streak = s.probe_streak.saturating_add(1);
        s.armed |= s.probe_streak >= PROBE_STREAK_TO_ARM;
    }
}

/// Tunnel liveness as it applies to a routing session or adjacency over the tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FastFailover {
    /// No tunnel to watch (a LAN neighbor), or liveness detection is off.
    Off,
    /// Liveness is on but the peer has not shown that it probes (wireguard-go never
    /// does): failures are found by the protocol's own timers.
    Waiting(Duration),
    /// The peer probes: a silence of this long ends the session at once.
    Armed(Duration),
}

impl FastFailover {
    pub fn name(self) -> &'static str {
        match self {
            FastFailover::Off => "off",
            FastFailover::Waiting(_) => "waiting",
            FastFailover::Armed(_) => "armed",
        }
    }

    pub fn interval(self) -> Option<Duration> {
        match self {
            FastFailover::Off => None,
            FastFailover::Waiting(d) | FastFailover::Armed(d) => Some(d),
        }
    }
}

/// What a liveness check found (see [`Tunnel::set_liveness`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// Nothing changed.
    Unchanged,
    /// No authenticated packet for longer than the liveness interval.
    Silent,
    /// Heard from again after being silent.
    Alive,
}

/// One WireGuard peer.
pub struct Tunnel {
    pub id: TunnelId,
    pub name: String,
    pub peer_public_key: PublicKey,
    mtu: AtomicU16,
    /// Index of the UDP socket this tunnel sends from (see `udp::Sockets`).
    pub socket: usize,
    pub counters: TunnelCounters,
    session: Mutex<Session>,
}

/// Parameters to build a [`Tunnel`].
pub struct TunnelParams<'a> {
    pub id: TunnelId,
    pub name: String,
    pub private_key: &'a PrivateKey,
    pub peer_public_key: PublicKey,
    pub preshared_key: Option<&'a PresharedKey>,
    pub endpoint: Option<SocketAddr>,
    pub persistent_keepalive: Option<u16>,
    pub mtu: u16,
    pub socket: usize,
    /// Shared by all tunnels so the cookie mechanism sees the whole handshake load.
    pub rate_limiter: Arc<RateLimiter>,
}

impl Tunnel {
    pub fn new(p: TunnelParams<'_>) -> Tunnel {
        assert!(p.id.0 <= MAX_TUNNEL_ID, "tunnel id out of range");
        let tunn = Tunn::new(
            p.private_key.to_secret(),
            p.peer_public_key.to_dalek(),
            p.preshared_key.map(|k| k.0),
            p.persistent_keepalive,
            p.id.0,
            Some(p.rate_limiter),
        );
        Tunnel {
            id: p.id,
            name: p.name,
            peer_public_key: p.peer_public_key,
            mtu: AtomicU16::new(p.mtu),
            socket: p.socket,
            counters: TunnelCounters::default(),
            session: Mutex::new(Session {
                tunn,
                endpoint: p.endpoint.map(canonical),
                last_received: None,
                last_probe: None,
                established: None,
                liveness: None,
                requests: [None; 2],
                silent: false,
                probe_streak: 0,
                last_was_transport: false,
                armed: false,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Session> {
        // A panic while holding the lock would be a bug in boringtun; keep forwarding
        // rather than poisoning every later packet of this peer.
        self.session.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn endpoint(&self) -> Option<SocketAddr> {
        self.lock().endpoint
    }

    /// The IP MTU of the tunnel (what fits in one datagram after WireGuard's overhead).
    pub fn mtu(&self) -> u16 {
        self.mtu.load(Ordering::Relaxed)
    }

    /// Change what can change without a new session: MTU and configured endpoint. A new
    /// configured endpoint takes effect at once (the peer may still roam away from it).
    pub fn reconfigure(&self, mtu: u16, endpoint: Option<SocketAddr>) {
        self.mtu.store(mtu, Ordering::Relaxed);
        if let Some(endpoint) = endpoint {
            self.lock().endpoint = Some(canonical(endpoint));
        }
    }

    /// Encrypt an IP packet (or start a handshake and queue it). Calls `send` with each
    /// datagram to put on the wire and the endpoint to send it to.
    pub fn encapsulate(
        &self,
        packet: &[u8],
        out: &mut [u8],
        send: &mut dyn FnMut(&[u8], SocketAddr),
    ) -> Result<(), TunnelDrop> {
        let mut s = self.lock();
        let Some(endpoint) = s.endpoint else {
            self.counters.drop(TunnelDrop::NoEndpoint);
            return Err(TunnelDrop::NoEndpoint);
        };
        match s.tunn.encapsulate(packet, out) {
            TunnResult::WriteToNetwork(datagram) => {
                if !packet.is_empty() {
                    self.counters.tx_packets.fetch_add(1, Ordering::Relaxed);
                    self.counters
                        .tx_bytes
                        .fetch_add(packet.len() as u64, Ordering::Relaxed);
                }
                send(datagram, endpoint);
                Ok(())
            }
            TunnResult::Done => Ok(()),
            TunnResult::Err(e) => {
                tracing::debug!(tunnel = %self.name, error = ?e, "encapsulate failed");
                self.counters.drop(TunnelDrop::SendFailed);
                Err(TunnelDrop::SendFailed)
            }
            TunnResult::WriteToTunnelV4(..) | TunnResult::WriteToTunnelV6(..) => Ok(()),
        }
    }

    /// Handle a datagram from `src` that the demultiplexer attributed to this tunnel.
    /// Handshake answers and queued packets are passed to `send`; a decrypted IP packet is
    /// left in `out` and reported as [`Received::Packet`].
    pub fn decapsulate(
        &self,
        src: SocketAddr,
        datagram: &[u8],
        out: &mut [u8],
        send: &mut dyn FnMut(&[u8], SocketAddr),
    ) -> Received {
        let src = canonical(src);
        let mut s = self.lock();
        let result = s.tunn.decapsulate(Some(src.ip()), datagram, out);
        let authenticated = !matches!(result, TunnResult::Err(_));
        if authenticated {
            // Roaming: the endpoint follows the last authenticated packet (WireGuard §2.1).
            if s.endpoint != Some(src) {
                tracing::info!(tunnel = %self.name, endpoint = %src, "peer endpoint changed");
                s.endpoint = Some(src);
            }
            let now = Instant::now();
            // An authenticated message that yields nothing is a keepalive (or a
            // handshake message, which the streak tolerates).
            let keepalive = matches!(result, TunnResult::Done);
            let transport = datagram.first() == Some(&TRANSPORT_MESSAGE);
            let after_transport = s.last_was_transport;
            note_probe(&mut s, now, keepalive && transport, after_transport);
            s.last_received = Some(now);
            s.last_was_transport = transport;
        }
        let received = match result {
            TunnResult::Done => Received::Nothing,
            TunnResult::Err(WireGuardError::UnderLoad) => Received::Nothing,
            TunnResult::Err(e) => {
                tracing::trace!(tunnel = %self.name, error = ?e, "datagram dropped");
                self.counters.drop(TunnelDrop::BadDatagram);
                Received::Nothing
            }
            TunnResult::WriteToNetwork(reply) => {
                send(reply, src);
                // Flush packets queued while the handshake was in progress.
                while let TunnResult::WriteToNetwork(queued) = s.tunn.decapsulate(None, &[], out) {
                    send(queued, src);
                }
                Received::Nothing
            }
            TunnResult::WriteToTunnelV4(packet, _) | TunnResult::WriteToTunnelV6(packet, _) => {
                let len = packet.len();
                self.counters.rx_packets.fetch_add(1, Ordering::Relaxed);
                self.counters
                    .rx_bytes
                    .fetch_add(len as u64, Ordering::Relaxed);
                Received::Packet(len)
            }
        };
        self.note_session(&mut s);
        received
    }

    /// Drive boringtun's timers (handshake retry, rekey, keepalive, expiry) and the
    /// liveness probe. Call several times a second.
    pub fn tick(&self, out: &mut [u8], send: &mut dyn FnMut(&[u8], SocketAddr)) -> Liveness {
        let mut s = self.lock();
        let Some(endpoint) = s.endpoint else {
            // Nobody to talk to yet; boringtun may still want to expire state.
            let _ = s.tunn.update_timers(out);
            self.note_session(&mut s);
            return Liveness::Unchanged;
        };
        match s.tunn.update_timers(out) {
            TunnResult::WriteToNetwork(datagram) => {
                send(datagram, endpoint);
            }
            TunnResult::Err(WireGuardError::ConnectionExpired) if s.established.is_some() => {
                tracing::info!(tunnel = %self.name, "session expired");
            }
            _ => {}
        }
        let liveness = self.probe(&mut s, endpoint, out, send);
        self.note_session(&mut s);
        liveness
    }

    /// Fast failure detection for tunnels that carry a routing protocol: probe with a
    /// keepalive every third of the interval (a wgrd peer doing the same keeps us hearing
    /// from it, and its probes are what arms our detection), and report the peer silent
    /// once nothing authenticated arrived for the whole interval.
    fn probe(
        &self,
        s: &mut Session,
        endpoint: SocketAddr,
        out: &mut [u8],
        send: &mut dyn FnMut(&[u8], SocketAddr),
    ) -> Liveness {
        let Some(interval) = s.liveness else {
            return Liveness::Unchanged;
        };
        let now = Instant::now();
        let probe_every = interval / 3;
        let due = s
            .last_probe
            .is_none_or(|t| now.duration_since(t) >= probe_every);
        if due && s.tunn.time_since_last_handshake().is_some() {
            if let TunnResult::WriteToNetwork(keepalive) = s.tunn.encapsulate(&[], out) {
                send(keepalive, endpoint);
                s.last_probe = Some(now);
            }
        }
        let heard = s
            .last_received
            .is_some_and(|t| now.duration_since(t) < interval);
        match (s.silent, heard) {
            (false, false) if s.armed => {
                s.silent = true;
                s.armed = false;
                s.probe_streak = 0;
                tracing::info!(tunnel = %self.name, ?interval, "peer silent");
                Liveness::Silent
            }
            (true, true) => {
                s.silent = false;
                tracing::info!(tunnel = %self.name, "peer alive again");
                Liveness::Alive
            }
            _ => Liveness::Unchanged,
        }
    }

    /// Turn liveness detection on (with the interval after which a peer is silent) or
    /// off. A peer starts out silent until heard from.
    pub fn set_liveness(&self, interval: Option<Duration>) {
        self.request_liveness(LivenessUser::Ospf, interval);
    }

    /// Liveness detection on behalf of one protocol; the tunnel uses the shortest
    /// interval asked for, and turns detection off when nobody wants it.
    pub fn request_liveness(&self, user: LivenessUser, interval: Option<Duration>) {
        let mut s = self.lock();
        s.requests[user as usize] = interval;
        let effective = s.requests.iter().flatten().min().copied();
        if effective == s.liveness {
            return;
        }
        s.liveness = effective;
        s.probe_streak = 0;
        s.armed = false;
        s.silent = effective.is_some()
            && s.last_received
                .is_none_or(|t| Some(t.elapsed()) >= effective);
    }

    /// The liveness interval in use, if any.
    pub fn liveness(&self) -> Option<Duration> {
        self.lock().liveness
    }

    /// Whether a silence of the peer would be noticed, and how fast.
    pub fn fast_failover(&self) -> FastFailover {
        let s = self.lock();
        match s.liveness {
            None => FastFailover::Off,
            Some(d) if s.armed => FastFailover::Armed(d),
            Some(d) => FastFailover::Waiting(d),
        }
    }

    /// True while liveness detection is on and the peer is silent.
    pub fn is_silent(&self) -> bool {
        let s = self.lock();
        s.liveness.is_some() && s.silent
    }

    fn note_session(&self, s: &mut Session) {
        let established = s
            .tunn
            .time_since_last_handshake()
            .and_then(|since| Instant::now().checked_sub(since));
        let is_new = match (s.established, established) {
            // boringtun keeps session times at coarse resolution; only a jump is a handshake.
            (Some(old), Some(new)) => new > old + Duration::from_millis(500),
            (None, Some(_)) => true,
            _ => false,
        };
        if is_new {
            self.counters.handshakes.fetch_add(1, Ordering::Relaxed);
            tracing::info!(tunnel = %self.name, endpoint = ?s.endpoint, "handshake complete");
        }
        if established.is_none() && s.established.is_some() {
            tracing::info!(tunnel = %self.name, "session down");
        }
        s.established = established;
    }

    /// A snapshot for the API and logs.
    pub fn status(&self) -> TunnelStatus {
        let s = self.lock();
        let since = s.tunn.time_since_last_handshake();
        TunnelStatus {
            endpoint: s.endpoint,
            last_handshake: since.and_then(|d| SystemTime::now().checked_sub(d)),
            last_received_ago: s.last_received.map(|t| t.elapsed()),
            session_up: since.is_some(),
        }
    }
}

/// IPv4 peers reached through a dual-stack socket show up as `::ffff:a.b.c.d`; keep the
/// plain IPv4 form so endpoints compare equal to the configured ones and print naturally.
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => addr,
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Tunnel, Tunnel) {
        let ka = PrivateKey::generate();
        let kb = PrivateKey::generate();
        let limiter = |k: &PrivateKey| Arc::new(RateLimiter::new(&k.public_key().to_dalek(), 100));
        let a = Tunnel::new(TunnelParams {
            id: TunnelId(1),
            name: "a".into(),
            private_key: &ka,
            peer_public_key: kb.public_key(),
            preshared_key: None,
            endpoint: Some("127.0.0.1:2".parse().unwrap()),
            persistent_keepalive: None,
            mtu: 1420,
            socket: 0,
            rate_limiter: limiter(&ka),
        });
        let b = Tunnel::new(TunnelParams {
            id: TunnelId(2),
            name: "b".into(),
            private_key: &kb,
            peer_public_key: ka.public_key(),
            preshared_key: None,
            endpoint: None,
            persistent_keepalive: None,
            mtu: 1420,
            socket: 0,
            rate_limiter: limiter(&kb),
        });
        (a, b)
    }

    fn ping_packet() -> Vec<u8> {
        // IPv4 header only (protocol 253, experimental), enough for boringtun's checks.
        let mut p = vec![0u8; 28];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&28u16.to_be_bytes());
        p[8] = 64;
        p[9] = 253;
        p[12..16].copy_from_slice(&[10, 0, 0, 1]);
        p[16..20].copy_from_slice(&[10, 0, 0, 2]);
        p
    }

    /// Runs datagrams back and forth between two tunnels until both are quiet; returns the
    /// IP packets each one decrypted.
    fn exchange(
        a: &Tunnel,
        b: &Tunnel,
        first: Vec<(Vec<u8>, bool)>,
    ) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let a_addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b_addr: SocketAddr = "127.0.0.1:2".parse().unwrap();
        let mut queue = first; // (datagram, towards_b)
        let (mut got_a, mut got_b) = (vec![], vec![]);
        let mut out = vec![0u8; 2048];
        for _ in 0..100 {
            let Some((d, to_b)) = queue.pop() else { break };
            let mut sent = vec![];
            let (tunnel, from, got) = if to_b {
                (b, a_addr, &mut got_b)
            } else {
                (a, b_addr, &mut got_a)
            };
            if let Received::Packet(n) =
                tunnel.decapsulate(from, &d, &mut out, &mut |x, _| sent.push(x.to_vec()))
            {
                got.push(out[..n].to_vec());
            }
            queue.extend(sent.into_iter().map(|x| (x, !to_b)));
        }
        (got_a, got_b)
    }

    #[test]
    fn first_packet_triggers_handshake_then_is_delivered_and_endpoint_is_learned() {
        let (a, b) = pair();
        let mut out = vec![0u8; 2048];
        let mut sent = vec![];
        a.encapsulate(&ping_packet(), &mut out, &mut |d, to| {
            sent.push((d.to_vec(), to))
        })
        .unwrap();
        assert_eq!(sent.len(), 1, "a handshake initiation goes out");
        assert_eq!(sent[0].1, "127.0.0.1:2".parse().unwrap());
        let (_, got_b) = exchange(&a, &b, vec![(sent[0].0.clone(), true)]);
        assert_eq!(
            got_b,
            vec![ping_packet()],
            "queued packet flushed after handshake"
        );
        // b had no endpoint: it learned a's from the authenticated handshake.
        assert_eq!(b.endpoint(), Some("127.0.0.1:1".parse().unwrap()));
        assert!(a.status().session_up && b.status().session_up);
        assert_eq!(b.counters.rx_packets.load(Ordering::Relaxed), 1);
    }

    /// A pair whose handshake is done (a's first packet crossed to b), so both ends know
    /// each other's endpoint.
    fn handshaken_pair() -> (Tunnel, Tunnel) {
        let (a, b) = pair();
        let mut out = vec![0u8; 2048];
        let mut sent = vec![];
        a.encapsulate(&ping_packet(), &mut out, &mut |d, _| sent.push(d.to_vec()))
            .unwrap();
        exchange(&a, &b, vec![(sent[0].clone(), true)]);
        (a, b)
    }

    /// b's probes, `n` rounds a third of the interval apart, delivered to a.
    fn probe_rounds(a: &Tunnel, b: &Tunnel, interval: Duration, n: usize) {
        let mut out = vec![0u8; 2048];
        for _ in 0..n {
            std::thread::sleep(interval / 3);
            let mut from_b = vec![];
            b.tick(&mut out, &mut |d, _| from_b.push(d.to_vec()));
            exchange(a, b, from_b.into_iter().map(|d| (d, false)).collect());
        }
    }

    #[test]
    fn liveness_probes_when_quiet_and_reports_silence_and_return() {
        let (a, b) = handshaken_pair();
        let mut out = vec![0u8; 2048];
        let interval = Duration::from_millis(300);
        a.set_liveness(Some(interval));
        b.request_liveness(LivenessUser::Bgp, Some(interval));
        assert!(!a.is_silent(), "just heard from the peer");

        // Quiet for a third of the interval: a probe (keepalive) goes out.
        std::thread::sleep(interval / 3);
        let mut probes = vec![];
        assert_eq!(
            a.tick(&mut out, &mut |d, _| probes.push(d.to_vec())),
            Liveness::Unchanged
        );
        assert_eq!(probes.len(), 1, "one keepalive probe");

        // b probes a steadily: that arms a's silence detection.
        probe_rounds(&a, &b, interval, 4);

        // Nothing back for the whole interval: silent, reported once.
        std::thread::sleep(interval);
        assert_eq!(a.tick(&mut out, &mut |_, _| {}), Liveness::Silent);
        assert_eq!(a.tick(&mut out, &mut |_, _| {}), Liveness::Unchanged);
        assert!(a.is_silent());

        // The peer's probe arrives: alive again.
        probe_rounds(&a, &b, interval, 1);
        assert_eq!(a.tick(&mut out, &mut |_, _| {}), Liveness::Alive);
    }

    #[test]
    fn probes_go_out_on_schedule_while_traffic_flows_and_arm_the_peer() {
        // A tunnel busy from its first second: without probes among the data the peer
        // would never see keepalives and never arm its silence detection.
        let (a, b) = handshaken_pair();
        let mut out = vec![0u8; 2048];
        let interval = Duration::from_millis(150);
        a.set_liveness(Some(interval));
        b.set_liveness(Some(interval));
        assert_eq!(a.fast_failover(), FastFailover::Waiting(interval));
        let started = Instant::now();
        while started.elapsed() < interval * 4 && a.fast_failover() != FastFailover::Armed(interval)
        {
            std::thread::sleep(interval / 10);
            // b sends data every tenth of the interval, and ticks.
            let mut from_b = vec![];
            b.encapsulate(&ping_packet(), &mut out, &mut |d, _| {
                from_b.push(d.to_vec())
            })
            .unwrap();
            b.tick(&mut out, &mut |d, _| from_b.push(d.to_vec()));
            exchange(&a, &b, from_b.into_iter().map(|d| (d, false)).collect());
        }
        assert_eq!(a.fast_failover(), FastFailover::Armed(interval));
    }

    #[test]
    fn a_peer_that_never_probes_is_never_declared_silent() {
        // wireguard-go or the kernel: keepalives seldom or never, so a pause in its
        // traffic must not look like a dead peer.
        let (a, _b) = handshaken_pair();
        let mut out = vec![0u8; 2048];
        let interval = Duration::from_millis(150);
        a.set_liveness(Some(interval));
        std::thread::sleep(interval * 2);
        assert_eq!(a.tick(&mut out, &mut |_, _| {}), Liveness::Unchanged);
        assert!(!a.is_silent());
    }

    #[test]
    fn the_shortest_requested_interval_wins() {
        let (a, _) = pair();
        a.request_liveness(LivenessUser::Bgp, Some(Duration::from_millis(300)));
        a.set_liveness(Some(Duration::from_secs(1)));
        assert_eq!(a.liveness(), Some(Duration::from_millis(300)));
        a.request_liveness(LivenessUser::Bgp, None);
        assert_eq!(a.liveness(), Some(Duration::from_secs(1)));
        a.set_liveness(None);
        assert_eq!(a.liveness(), None);
    }

    #[test]
    fn tunnel_without_endpoint_cannot_send_first() {
        let (_, b) = pair();
        let mut out = vec![0u8; 2048];
        let r = b.encapsulate(&ping_packet(), &mut out, &mut |_, _| {
            panic!("nothing to send")
        });
        assert_eq!(r, Err(TunnelDrop::NoEndpoint));
        assert_eq!(b.counters.drops(TunnelDrop::NoEndpoint), 1);
    }

    #[test]
    fn garbage_datagram_is_counted_not_fatal() {
        let (a, _) = pair();
        let mut out = vec![0u8; 2048];
        let mut junk = vec![4u8, 0, 0, 0];
        junk.extend_from_slice(&[0xAB; 60]);
        let r = a.decapsulate(
            "127.0.0.1:9".parse().unwrap(),
            &junk,
            &mut out,
            &mut |_, _| {},
        );
        assert_eq!(r, Received::Nothing);
        assert_eq!(a.counters.drops(TunnelDrop::BadDatagram), 1);
        // An unauthenticated datagram must not move the endpoint.
        assert_eq!(a.endpoint(), Some("127.0.0.1:2".parse().unwrap()));
    }

    #[test]
    fn mapped_v4_addresses_are_canonicalised() {
        let mapped: SocketAddr = "[::ffff:192.0.2.1]:51820".parse().unwrap();
        assert_eq!(canonical(mapped), "192.0.2.1:51820".parse().unwrap());
        let v6: SocketAddr = "[2001:db8::1]:51820".parse().unwrap();
        assert_eq!(canonical(v6), v6);
    }
}
