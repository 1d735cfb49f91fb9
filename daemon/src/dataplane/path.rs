//! The packet path: the threads that move packets between the UDP sockets, the host TUN
//! and the tunnels, acting on the forwarding decisions of [`super::forward`].
//!
//! It owns the I/O threads and the table of live tunnels; it does not decide anything about
//! a packet itself (that is `forward`) nor hold routing state (that is the FIB, which it
//! only reads). Blocking sockets on dedicated threads rather than async tasks: a packet
//! costs one syscall each way, with no wakeups or task hops in between, and a peer's
//! packets stay in order because one thread carries each direction.

use super::batch::{HostBatch, UdpBatch};
use super::fib::Fib;
use super::forward::{Decision, Forwarder, RouteLookup};
use super::host::HostTun;
use super::tunnel::{Liveness, Received, Tunnel};
use super::udp::{Demux, DemuxDrop, Demuxer, UdpPort};
use super::{Egress, Ingress, TunnelId};
use crate::keys::PublicKey;
use crate::wire::ipv4::Ipv4Fragmenter;
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Large enough for any IP packet plus WireGuard's 32 bytes of overhead.
const BUFFER_BYTES: usize = 65_536 + 64;

/// Tunnel events buffered for slow watchers before they are told they lagged.
const EVENT_QUEUE: usize = 1024;

/// Extra non-waiting TUN reads after a wakeup before the output is flushed.
const HOST_DRAIN_READS: usize = 16;

/// How often boringtun's timers are driven.
const TIMER_TICK: Duration = Duration::from_millis(100);
/// The shortest timer tick (for the shortest liveness intervals).
const TIMER_TICK_MIN: Duration = Duration::from_millis(20);

/// A packet for the router itself that the data path does not answer on its own (OSPF,
/// BGP's TCP, echo replies to pings the router sent...), with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalPacket {
    pub ingress: Ingress,
    pub packet: Vec<u8>,
}

/// The live tunnels, replaced as a whole when the set changes so readers never lock.
#[derive(Default)]
pub struct TunnelTable {
    by_id: HashMap<TunnelId, Arc<Tunnel>>,
    by_key: HashMap<PublicKey, TunnelId>,
    by_name: HashMap<String, TunnelId>,
}

impl TunnelTable {
    pub fn new(tunnels: impl IntoIterator<Item = Arc<Tunnel>>) -> TunnelTable {
        let mut table = TunnelTable::default();
        for t in tunnels {
            table.by_key.insert(t.peer_public_key, t.id);
            table.by_name.insert(t.name.clone(), t.id);
            table.by_id.insert(t.id, t);
        }
        table
    }

    pub fn get(&self, id: TunnelId) -> Option<&Arc<Tunnel>> {
        self.by_id.get(&id)
    }

    pub fn by_name(&self, name: &str) -> Option<&Arc<Tunnel>> {
        self.by_name.get(name).and_then(|id| self.by_id.get(id))
    }

    pub fn by_key(&self, key: &PublicKey) -> Option<&Arc<Tunnel>> {
        self.by_key.get(key).and_then(|id| self.by_id.get(id))
    }

    /// Tunnels in id order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Tunnel>> {
        let mut all: Vec<_> = self.by_id.values().collect();
        all.sort_by_key(|t| t.id);
        all.into_iter()
    }
}

/// Counters of the path itself (per-tunnel counters live on each tunnel).
#[derive(Debug, Default)]
pub struct PathCounters {
    demux_drops: [AtomicU64; 4],
    pub cookie_replies: AtomicU64,
    /// Local packets dropped because the control plane was not reading fast enough.
    pub local_queue_full: AtomicU64,
    pub host_write_errors: AtomicU64,
    /// FIB pointed at a tunnel that no longer exists.
    pub stale_tunnel: AtomicU64,
}

impl PathCounters {
    fn demux_drop(&self, reason: DemuxDrop) {
        self.demux_drops[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn demux_drops(&self, reason: DemuxDrop) -> u64 {
        self.demux_drops[reason as usize].load(Ordering::Relaxed)
    }
}

/// Per-thread working space: the packet being decrypted, room for a generated reply, and
/// the output batches.
struct Scratch {
    packet: Vec<u8>,
    reply: Vec<u8>,
    udp: UdpBatch,
    host: HostBatch,
}

impl Scratch {
    fn new() -> Scratch {
        Scratch {
            packet: vec![0; BUFFER_BYTES],
            reply: vec![0; BUFFER_BYTES],
            udp: UdpBatch::default(),
            host: HostBatch::default(),
        }
    }
}

/// Everything the I/O threads share.
pub struct PacketPath {
    pub tunnels: ArcSwap<TunnelTable>,
    pub fib: Arc<Fib>,
    pub forwarder: Forwarder,
    pub ports: Vec<UdpPort>,
    pub host: Option<Arc<HostTun>>,
    pub demux: Demuxer,
    pub counters: PathCounters,
    local_tx: tokio::sync::mpsc::Sender<LocalPacket>,
    events: tokio::sync::broadcast::Sender<TunnelEvent>,
    /// Working space for packets the router originates (control plane), which arrive
    /// one at a time from any thread.
    local_scratch: std::sync::Mutex<Scratch>,
    stopping: AtomicBool,
}

/// A change of a tunnel's state, noticed by the timer thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TunnelEvent {
    /// A session came up (the first handshake after none, or after expiry).
    Up { tunnel: String },
    /// The session expired and no new one replaced it.
    Down { tunnel: String },
    /// A handshake completed (initial or rekey).
    Handshake { tunnel: String },
    /// The peer's endpoint moved (roaming, or learned for a peer that dials in).
    EndpointChanged {
        tunnel: String,
        endpoint: SocketAddr,
    },
    /// Liveness detection is on and nothing authenticated arrived for its interval.
    PeerSilent { tunnel: String },
    /// A silent peer was heard from again.
    PeerAlive { tunnel: String },
}

/// What the timer thread last saw of a tunnel, to turn state into events.
#[derive(Default, Clone, Copy)]
struct Seen {
    up: bool,
    handshakes: u64,
    endpoint: Option<SocketAddr>,
}

impl RouteLookup for Fib {
    fn lookup(&self, dst: IpAddr, flow_hash: u32) -> Option<Egress> {
        Fib::lookup(self, dst, flow_hash)
    }
}

impl PacketPath {
    pub fn new(
        fib: Arc<Fib>,
        forwarder: Forwarder,
        ports: Vec<UdpPort>,
        host: Option<Arc<HostTun>>,
        demux: Demuxer,
        tunnels: TunnelTable,
        local_tx: tokio::sync::mpsc::Sender<LocalPacket>,
    ) -> PacketPath {
        PacketPath {
            tunnels: ArcSwap::from_pointee(tunnels),
            fib,
            forwarder,
            ports,
            host,
            demux,
            counters: PathCounters::default(),
            local_tx,
            events: tokio::sync::broadcast::channel(EVENT_QUEUE).0,
            local_scratch: std::sync::Mutex::new(Scratch::new()),
            stopping: AtomicBool::new(false),
        }
    }

    /// Tunnel state changes from now on.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<TunnelEvent> {
        self.events.subscribe()
    }

    /// Start the receive threads (one per UDP port, one for the TUN) and the timer thread.
    pub fn spawn(self: &Arc<Self>) -> std::io::Result<Vec<JoinHandle<()>>> {
        let mut threads = Vec::new();
        for index in 0..self.ports.len() {
            let path = Arc::clone(self);
            threads.push(
                std::thread::Builder::new()
                    .name(format!("wgrd-udp{index}"))
                    .spawn(move || path.udp_receive_loop(index))?,
            );
        }
        if self.host.is_some() {
            let path = Arc::clone(self);
            threads.push(
                std::thread::Builder::new()
                    .name("wgrd-tun".into())
                    .spawn(move || path.host_receive_loop())?,
            );
        }
        let path = Arc::clone(self);
        threads.push(
            std::thread::Builder::new()
                .name("wgrd-timers".into())
                .spawn(move || path.timer_loop())?,
        );
        Ok(threads)
    }

    /// Ask every thread to finish; they notice within a receive poll interval.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        if let Some(host) = &self.host {
            host.interrupt();
        }
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    fn udp_receive_loop(&self, index: usize) {
        let port = &self.ports[index];
        // One receive may carry a whole GRO run of datagrams.
        let mut datagrams = vec![0u8; BUFFER_BYTES];
        let mut s = Scratch::new();
        while !self.stopping() {
            match port.recv(&mut datagrams) {
                Ok(got) => {
                    // Plain IPv4 rather than mapped IPv6, as tunnels record endpoints.
                    let src = super::tunnel::canonical(got.src);
                    for datagram in datagrams[..got.len].chunks(got.stride) {
                        self.on_datagram(index, src, datagram, &mut s);
                    }
                    self.flush(&mut s);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => {
                    // ICMP port unreachable from a dead peer surfaces here as ECONNREFUSED.
                    tracing::trace!(error = %e, "udp receive error");
                }
            }
        }
    }

    fn host_receive_loop(&self) {
        let Some(host) = &self.host else { return };
        let mut s = Scratch::new();
        let mut raw = vec![0u8; BUFFER_BYTES];
        let packet_room = usize::from(host.mtu()) + 64;
        let mut packets = vec![vec![0u8; packet_room]; tun_rs::IDEAL_BATCH_SIZE];
        let mut sizes = vec![0usize; tun_rs::IDEAL_BATCH_SIZE];
        while !self.stopping() {
            match host.recv_batch(&mut raw, &mut packets, &mut sizes) {
                Ok(mut n) => {
                    let tunnels = self.tunnels.load();
                    // Take what else is already queued before sending anything, so
                    // small packets that arrived together leave together.
                    for drained in 0..=HOST_DRAIN_READS {
                        for (packet, &len) in packets.iter_mut().zip(&sizes).take(n) {
                            self.route(&tunnels, Ingress::Host, &mut packet[..len], &mut s);
                        }
                        if drained == HOST_DRAIN_READS {
                            break;
                        }
                        match host.try_recv_batch(&mut raw, &mut packets, &mut sizes) {
                            Ok(more) => n = more,
                            Err(_) => break,
                        }
                    }
                    self.flush(&mut s);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    if !self.stopping() {
                        tracing::warn!(error = %e, "TUN read failed");
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }
        }
    }

    /// Send what a burst produced.
    fn flush(&self, s: &mut Scratch) {
        s.udp.flush(&self.ports);
        if let Some(host) = &self.host {
            if s.host.flush(host).is_err() {
                self.counters
                    .host_write_errors
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Drives every tunnel's timers: every [`TIMER_TICK`], or every quarter of the
    /// shortest liveness interval when that is shorter (probes go out every third of it
    /// and a silence is noticed within a quarter of it).
    fn timer_loop(&self) {
        let mut wire = vec![0u8; BUFFER_BYTES];
        let mut last_reset = Instant::now();
        let mut seen: HashMap<TunnelId, Seen> = HashMap::new();
        let mut tick = TIMER_TICK;
        while !self.stopping() {
            std::thread::sleep(tick);
            let tunnels = self.tunnels.load();
            tick = timer_tick(tunnels.iter().filter_map(|t| t.liveness()));
            for tunnel in tunnels.iter() {
                let port = &self.ports[tunnel.socket];
                let liveness = tunnel.tick(&mut wire, &mut |d, to| {
                    if port.send(d, to).is_err() {
                        tunnel.counters.drop(super::tunnel::TunnelDrop::SendFailed);
                    }
                });
                let name = || tunnel.name.clone();
                // Nobody listening is fine: events are for whoever watches.
                match liveness {
                    Liveness::Silent => {
                        let _ = self.events.send(TunnelEvent::PeerSilent { tunnel: name() });
                    }
                    Liveness::Alive => {
                        let _ = self.events.send(TunnelEvent::PeerAlive { tunnel: name() });
                    }
                    Liveness::Unchanged => {}
                }
                let before = seen.entry(tunnel.id).or_default();
                let now = self.observe(tunnel, *before);
                *before = now;
            }
            seen.retain(|id, _| tunnels.get(*id).is_some());
            if last_reset.elapsed() >= Duration::from_secs(1) {
                self.demux.reset_rate_limiter();
                last_reset = Instant::now();
            }
        }
    }

    /// Compare a tunnel with what was seen last tick and announce the differences.
    fn observe(&self, tunnel: &Tunnel, before: Seen) -> Seen {
        let status = tunnel.status();
        let now = Seen {
            up: status.session_up,
            handshakes: tunnel.counters.handshakes.load(Ordering::Relaxed),
            endpoint: status.endpoint,
        };
        let name = || tunnel.name.clone();
        // Nobody listening is fine: events are for whoever watches.
        if now.endpoint != before.endpoint {
            if let Some(endpoint) = now.endpoint {
                let _ = self.events.send(TunnelEvent::EndpointChanged {
                    tunnel: name(),
                    endpoint,
                });
            }
        }
        if now.handshakes > before.handshakes {
            let _ = self.events.send(TunnelEvent::Handshake { tunnel: name() });
        }
        if now.up && !before.up {
            let _ = self.events.send(TunnelEvent::Up { tunnel: name() });
        }
        if !now.up && before.up {
            let _ = self.events.send(TunnelEvent::Down { tunnel: name() });
        }
        now
    }

    /// A datagram arrived on UDP port `index`.
    fn on_datagram(&self, index: usize, src: SocketAddr, datagram: &[u8], s: &mut Scratch) {
        let port = &self.ports[index];
        let tunnels = self.tunnels.load();
        let tunnel = match self.demux.classify(src, datagram, &mut s.reply) {
            Demux::Tunnel(id) => tunnels.get(id),
            Demux::Peer(key) => tunnels.by_key(&key),
            Demux::CookieReply(len) => {
                self.counters.cookie_replies.fetch_add(1, Ordering::Relaxed);
                let _ = port.send(&s.reply[..len], src);
                return;
            }
            Demux::Drop(reason) => {
                self.counters.demux_drop(reason);
                return;
            }
        };
        let Some(tunnel) = tunnel else {
            self.counters.demux_drop(DemuxDrop::UnknownPeer);
            return;
        };
        // Answers go out of the tunnel's own socket, which is the one it arrived on.
        let out_port = &self.ports[tunnel.socket];
        let received = tunnel.decapsulate(src, datagram, &mut s.packet, &mut |d, to| {
            if out_port.send(d, to).is_err() {
                tunnel.counters.drop(super::tunnel::TunnelDrop::SendFailed);
            }
        });
        if let Received::Packet(len) = received {
            let ingress = Ingress::Tunnel(tunnel.id);
            let mut packet = std::mem::take(&mut s.packet);
            self.route(&tunnels, ingress, &mut packet[..len], s);
            s.packet = packet;
        }
    }

    /// Decide and act on one IP packet. `tunnels` is the caller's snapshot of the tunnel
    /// table, loaded once per burst rather than once per packet.
    fn route(&self, tunnels: &TunnelTable, ingress: Ingress, packet: &mut [u8], s: &mut Scratch) {
        let mtu = |egress: Egress| match egress {
            Egress::Tunnel(id) => tunnels.get(id).map(|t| t.mtu()).unwrap_or(0),
            _ => u16::MAX,
        };
        let decision = self
            .forwarder
            .decide(ingress, packet, &*self.fib, mtu, &mut s.reply);
        match decision {
            Decision::Forward { to, len } => self.transmit(tunnels, to, &packet[..len], s),
            Decision::Fragment { to, mtu } => {
                let mut fragment = std::mem::take(&mut s.reply);
                if let Some(mut fragments) = Ipv4Fragmenter::new(packet, mtu) {
                    while let Some(len) = fragments.next_into(&mut fragment) {
                        self.transmit(tunnels, to, &fragment[..len], s);
                    }
                }
                s.reply = fragment;
            }
            Decision::Reply { len, to } => {
                let reply = std::mem::take(&mut s.reply);
                self.transmit(tunnels, to, &reply[..len], s);
                s.reply = reply;
            }
            Decision::Deliver => self.deliver_local(ingress, packet),
            Decision::Drop(_) => {}
        }
    }

    fn transmit(&self, tunnels: &TunnelTable, egress: Egress, packet: &[u8], s: &mut Scratch) {
        match egress {
            Egress::Tunnel(id) => match tunnels.get(id) {
                Some(tunnel) => {
                    let mut sent = None;
                    let _ = tunnel.encapsulate(packet, s.udp.tail(), &mut |d, to| {
                        sent = Some((d.len(), to));
                    });
                    if let Some((len, to)) = sent {
                        s.udp.commit(&self.ports, tunnel.socket, to, len);
                    }
                }
                None => {
                    self.counters.stale_tunnel.fetch_add(1, Ordering::Relaxed);
                }
            },
            Egress::Host => match &self.host {
                Some(host) => {
                    if s.host.push(host, packet).is_err() {
                        self.counters
                            .host_write_errors
                            .fetch_add(1, Ordering::Relaxed);
                    }
                }
                None => {
                    self.counters
                        .host_write_errors
                        .fetch_add(1, Ordering::Relaxed);
                }
            },
            Egress::Local => self.deliver_local(Ingress::Local, packet),
            Egress::Blackhole => {}
        }
    }

    fn deliver_local(&self, ingress: Ingress, packet: &[u8]) {
        let local = LocalPacket {
            ingress,
            packet: packet.to_vec(),
        };
        if self.local_tx.try_send(local).is_err() {
            self.counters
                .local_queue_full
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Send an IP packet the router itself originated: it is routed like any other.
    pub fn send_local(&self, packet: &[u8]) {
        let mut s = self.local_scratch.lock().unwrap_or_else(|e| e.into_inner());
        let mut copy = packet.to_vec();
        self.route(&self.tunnels.load(), Ingress::Local, &mut copy, &mut s);
        self.flush(&mut s);
    }

    /// Send an IP packet straight into one tunnel, bypassing the FIB (OSPF hellos to
    /// 224.0.0.5 go out of every interface regardless of routes).
    pub fn send_on_tunnel(&self, id: TunnelId, packet: &[u8]) -> bool {
        let tunnels = self.tunnels.load();
        if tunnels.get(id).is_none() {
            return false;
        }
        let mut s = self.local_scratch.lock().unwrap_or_else(|e| e.into_inner());
        self.transmit(&tunnels, Egress::Tunnel(id), packet, &mut s);
        self.flush(&mut s);
        true
    }
}

/// The timer thread's sleep: [`TIMER_TICK`], or a quarter of the shortest liveness
/// interval, but not under [`TIMER_TICK_MIN`].
fn timer_tick(liveness: impl Iterator<Item = Duration>) -> Duration {
    liveness
        .map(|l| l / 4)
        .min()
        .map_or(TIMER_TICK, |q| q.clamp(TIMER_TICK_MIN, TIMER_TICK))
}

#[cfg(test)]
mod timer_tests {
    use super::*;

    #[test]
    fn the_timer_ticks_faster_for_short_liveness_intervals() {
        let ms = Duration::from_millis;
        assert_eq!(timer_tick(std::iter::empty()), TIMER_TICK);
        assert_eq!(timer_tick([ms(1000), ms(5000)].into_iter()), TIMER_TICK);
        assert_eq!(timer_tick([ms(1000), ms(300)].into_iter()), ms(75));
        assert_eq!(timer_tick([ms(100)].into_iter()), ms(25));
        assert_eq!(timer_tick([ms(40)].into_iter()), TIMER_TICK_MIN);
    }
}
