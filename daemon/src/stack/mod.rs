//! A userspace TCP stack on the router's own tunnel addresses, for BGP sessions across
//! WireGuard tunnels: no kernel addresses, no root, and link-local (`fe80::`) peering
//! works because every tunnel is its own smoltcp interface (see [`link`]).
//!
//! It owns the TCP state of those connections and one tokio task that drives smoltcp;
//! it must not decide routes or touch the FIB: segments come from the router's local
//! delivery (IP protocol 6) and leave with [`PacketPath::send_on_tunnel`], because a BGP
//! peer across a tunnel is the other end of that tunnel. The TCP itself (RFC 9293, with
//! RFC 7323 window scaling and RFC 6298 retransmission timers) is smoltcp's.
//!
//! Driving: the task wakes for a burst of received segments, for a user's read, write or
//! close (a [`Notify`]), for smoltcp's own timers (`poll_at`) and every
//! [`TABLE_CHECK`] to notice config applies (a new tunnel table); it then polls the
//! links that need it, hands new connections to their listeners and sends what smoltcp
//! produced. Streams reach their sockets under the same mutex, so a stream sees a reset
//! or a removed tunnel in the same critical section that observed it.
//!
//! [`PacketPath::send_on_tunnel`]: crate::dataplane::path::PacketPath::send_on_tunnel

mod check;
mod link;

pub use check::Rejected;

use crate::dataplane::path::{LocalPacket, TunnelTable};
use crate::dataplane::{Ingress, TunnelId};
use crate::router::Router;
use link::{link_specs, new_socket, pick_port, Link, LinkSpec};
use smoltcp::iface::{PollIngressSingleResult, SocketHandle};
use smoltcp::socket::tcp::{self, RecvError, SendError, State};
use smoltcp::time::Instant as SInstant;
use smoltcp::wire::{IpEndpoint, IpListenEndpoint};
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// How long [`TcpStack::connect`] waits for the handshake unless told otherwise.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Half-open connections per listening port and tunnel before new SYNs are refused.
const BACKLOG: usize = 16;
/// Established connections waiting in [`TcpListener::accept`]; more are closed.
const ACCEPT_QUEUE: usize = 64;
/// How long a dropped stream may take to finish its close before it is reset.
const LINGER: Duration = Duration::from_secs(30);
/// Received segments taken per wakeup, so user commands are not starved by a flood.
const BURST: usize = 256;
/// How often the tunnel table is compared with the one the links were built from.
const TABLE_CHECK: Duration = Duration::from_millis(250);

/// A userspace TCP stack over the router's tunnels. Cheap to clone; the task stops on
/// [`TcpStack::shutdown`] or when the last clone is dropped.
#[derive(Clone)]
pub struct TcpStack {
    shared: Arc<Shared>,
    _owner: Arc<Owner>,
    connect_timeout: Duration,
}

/// A listening port on every tunnel address; closes the port when dropped.
pub struct TcpListener {
    shared: Arc<Shared>,
    port: u16,
    rx: mpsc::Receiver<(TcpStream, Accepted)>,
}

/// Where an accepted connection came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    pub tunnel: TunnelId,
    pub local: SocketAddr,
    pub remote: SocketAddr,
}

/// One connection. Dropping it closes it (FIN, then RST if the close has not finished
/// within [`LINGER`]). Link-local addresses carry no scope id: [`TcpStream::tunnel`]
/// is their scope.
pub struct TcpStream {
    shared: Arc<Shared>,
    key: Key,
    local: SocketAddr,
    remote: SocketAddr,
}

/// What the stack dropped and why, since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StackCounters {
    /// Segments delivered to the stack by the router.
    pub received: u64,
    pub malformed: u64,
    pub bad_checksum: u64,
    /// Fragments and IPv6 extension headers.
    pub unsupported: u64,
    /// Addressed to the router but not arriving on a tunnel (host side, self).
    pub not_from_tunnel: u64,
    /// From a tunnel the stack has no link for (yet).
    pub unknown_tunnel: u64,
    pub queue_full: u64,
    pub sent: u64,
    /// The tunnel was gone when the segment was to be sent.
    pub send_failed: u64,
    /// Connections closed because their listener's accept queue was full.
    pub accept_overflow: u64,
}

#[derive(Default)]
struct Counters {
    received: AtomicU64,
    malformed: AtomicU64,
    bad_checksum: AtomicU64,
    unsupported: AtomicU64,
    not_from_tunnel: AtomicU64,
    unknown_tunnel: AtomicU64,
    queue_full: AtomicU64,
    sent: AtomicU64,
    send_failed: AtomicU64,
    accept_overflow: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    fn snapshot(&self) -> StackCounters {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StackCounters {
            received: get(&self.received),
            malformed: get(&self.malformed),
            bad_checksum: get(&self.bad_checksum),
            unsupported: get(&self.unsupported),
            not_from_tunnel: get(&self.not_from_tunnel),
            unknown_tunnel: get(&self.unknown_tunnel),
            queue_full: get(&self.queue_full),
            sent: get(&self.sent),
            send_failed: get(&self.send_failed),
            accept_overflow: get(&self.accept_overflow),
        }
    }
}

/// Cancels the task when the last [`TcpStack`] clone goes.
struct Owner {
    cancel: CancellationToken,
    _task: tokio::task::JoinHandle<()>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// A socket is named by its tunnel and its handle in that tunnel's socket set. Tunnel
/// ids are never reused, and a socket leaves its set only after its stream is gone, so a
/// key never points at someone else's socket.
type Key = (TunnelId, SocketHandle);

/// What the stack has observed of a stream's connection.
struct Conn {
    last: State,
    /// The peer's FIN arrived: reads end with EOF, not with an error.
    fin: bool,
    error: Option<io::ErrorKind>,
}

struct Inner {
    links: HashMap<TunnelId, Link>,
    listeners: HashMap<u16, mpsc::Sender<(TcpStream, Accepted)>>,
    conns: HashMap<Key, Conn>,
    /// Sockets whose stream is gone, finishing their close; reset at the deadline.
    orphans: Vec<(Key, SInstant)>,
    /// The tunnel table the links were built from.
    table: Option<Arc<TunnelTable>>,
    next_poll: Option<SInstant>,
    closed: bool,
}

struct Shared {
    inner: Mutex<Inner>,
    kick: Notify,
    router: Arc<Router>,
    /// Serializes syncs, so an older config can never be applied after a newer one.
    sync_lock: tokio::sync::Mutex<()>,
    epoch: std::time::Instant,
    counters: Counters,
    cancel: CancellationToken,
}

/// A connection that reached ESTABLISHED on a listening socket.
struct Ready {
    key: Key,
    port: u16,
    local: SocketAddr,
    remote: SocketAddr,
    state: State,
}

fn endpoint_addr(e: IpEndpoint) -> SocketAddr {
    SocketAddr::new(IpAddr::from(e.addr), e.port)
}

fn err(kind: io::ErrorKind, why: &str) -> io::Error {
    io::Error::new(kind, why.to_string())
}

fn shut_down() -> io::Error {
    err(io::ErrorKind::NotConnected, "TCP stack shut down")
}

impl TcpStack {
    /// Start the stack on `router`'s tunnels. Takes the router's TCP deliveries
    /// ([`Router::subscribe_local`] for protocol 6). Must run inside a tokio runtime.
    pub fn start(router: Arc<Router>) -> TcpStack {
        let rx = router.subscribe_local(6);
        let cancel = CancellationToken::new();
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                links: HashMap::new(),
                listeners: HashMap::new(),
                conns: HashMap::new(),
                orphans: Vec::new(),
                table: None,
                next_poll: None,
                closed: false,
            }),
            kick: Notify::new(),
            router,
            sync_lock: tokio::sync::Mutex::new(()),
            epoch: std::time::Instant::now(),
            counters: Counters::default(),
            cancel: cancel.clone(),
        });
        let task = tokio::spawn(
            Arc::clone(&shared)
                .run(rx)
                .instrument(tracing::info_span!("tcp_stack")),
        );
        TcpStack {
            shared,
            _owner: Arc::new(Owner {
                cancel,
                _task: task,
            }),
            connect_timeout: CONNECT_TIMEOUT,
        }
    }

    /// The same stack with another handshake timeout for [`TcpStack::connect`].
    pub fn with_connect_timeout(mut self, timeout: Duration) -> TcpStack {
        self.connect_timeout = timeout;
        self
    }

    /// Connect from `local` (an address of tunnel `tunnel`; port 0 picks an ephemeral
    /// one) to `remote` across that tunnel. Fails with `ConnectionRefused` on a RST,
    /// `TimedOut` when the handshake does not finish within the connect timeout,
    /// `AddrNotAvailable` for an unknown tunnel or an address it does not have.
    pub async fn connect(
        &self,
        tunnel: TunnelId,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> io::Result<TcpStream> {
        let span = tracing::debug_span!("tcp_connect", %tunnel, %local, %remote);
        async {
            if !self.shared.lock().links.contains_key(&tunnel) {
                // A tunnel added a moment ago: the periodic check may not have run.
                self.shared.sync().await;
            }
            let stream = self.shared.open(tunnel, local, remote)?;
            let established = std::future::poll_fn(|cx| stream.poll_established(cx));
            match tokio::time::timeout(self.connect_timeout, established).await {
                Ok(Ok(())) => {
                    tracing::debug!(local = %stream.local, "connected");
                    Ok(stream)
                }
                Ok(Err(e)) => Err(e),
                Err(_) => Err(err(io::ErrorKind::TimedOut, "TCP handshake timed out")),
            }
        }
        .instrument(span)
        .await
    }

    /// Accept connections to `port` on every address of every tunnel (present and
    /// future). One listener per port.
    pub fn listen(&self, port: u16) -> io::Result<TcpListener> {
        if port == 0 {
            return Err(err(io::ErrorKind::InvalidInput, "cannot listen on port 0"));
        }
        let mut inner = self.shared.lock();
        if inner.closed {
            return Err(shut_down());
        }
        if inner.listeners.contains_key(&port) {
            return Err(err(io::ErrorKind::AddrInUse, "port already has a listener"));
        }
        let (tx, rx) = mpsc::channel(ACCEPT_QUEUE);
        inner.listeners.insert(port, tx);
        for link in inner.links.values_mut() {
            link.refill(port, BACKLOG);
        }
        drop(inner);
        self.shared.kick.notify_one();
        Ok(TcpListener {
            shared: Arc::clone(&self.shared),
            port,
            rx,
        })
    }

    /// Reset every connection, close every listener and stop the task. Idempotent.
    pub fn shutdown(&self) {
        self.shared.cancel.cancel();
        self.shared.close_all();
    }

    pub fn counters(&self) -> StackCounters {
        self.shared.counters.snapshot()
    }
}

impl TcpListener {
    /// The next established connection. Fails once the stack has shut down.
    pub async fn accept(&mut self) -> io::Result<(TcpStream, Accepted)> {
        self.rx.recv().await.ok_or_else(shut_down)
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        let now = self.shared.now();
        let mut guard = self.shared.lock();
        let inner = &mut *guard;
        inner.listeners.remove(&self.port);
        for (&id, link) in inner.links.iter_mut() {
            let Some(backlog) = link.backlogs.remove(&self.port) else {
                continue;
            };
            if let Some(h) = backlog.listening {
                link.sockets.remove(h);
            }
            for h in backlog.pending {
                link.socket(h).abort();
                inner.orphans.push(((id, h), now));
            }
            link.dirty = true;
        }
        drop(guard);
        self.shared.kick.notify_one();
    }
}

impl TcpStream {
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    pub fn peer_addr(&self) -> SocketAddr {
        self.remote
    }

    pub fn tunnel(&self) -> TunnelId {
        self.key.0
    }

    fn poll_established(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut inner = self.shared.lock();
        let inner = &mut *inner;
        let conn = match self.conn(&inner.conns) {
            Ok(c) => c,
            Err(e) => return Poll::Ready(Err(e)),
        };
        if let Some(kind) = conn.error {
            return Poll::Ready(Err(kind.into()));
        }
        let Some(link) = inner.links.get_mut(&self.key.0) else {
            return Poll::Ready(Err(io::ErrorKind::ConnectionAborted.into()));
        };
        let socket = link.socket(self.key.1);
        match socket.state() {
            State::SynSent | State::SynReceived => {
                socket.register_send_waker(cx.waker());
                Poll::Pending
            }
            State::Closed => Poll::Ready(Err(io::ErrorKind::ConnectionRefused.into())),
            _ => Poll::Ready(Ok(())),
        }
    }

    fn conn<'a>(&self, conns: &'a HashMap<Key, Conn>) -> io::Result<&'a Conn> {
        conns.get(&self.key).ok_or_else(shut_down)
    }
}

/// The error a stream reports once its link or socket is gone.
fn failure(conn: &Conn) -> io::Error {
    conn.error
        .unwrap_or(io::ErrorKind::ConnectionAborted)
        .into()
}

impl AsyncRead for TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let mut guard = this.shared.lock();
        let inner = &mut *guard;
        let conn = match this.conn(&inner.conns) {
            Ok(c) => c,
            Err(e) => return Poll::Ready(Err(e)),
        };
        let Some(link) = inner.links.get_mut(&this.key.0) else {
            return Poll::Ready(Err(failure(conn)));
        };
        let socket = link.socket(this.key.1);
        match socket.recv_slice(buf.initialize_unfilled()) {
            Ok(0) if buf.remaining() > 0 => {
                socket.register_recv_waker(cx.waker());
                Poll::Pending
            }
            Ok(n) => {
                buf.advance(n);
                // The window opened: smoltcp may owe the peer a window update.
                link.dirty = true;
                drop(guard);
                this.shared.kick.notify_one();
                Poll::Ready(Ok(()))
            }
            Err(RecvError::Finished) => Poll::Ready(Ok(())),
            Err(RecvError::InvalidState) if conn.fin => Poll::Ready(Ok(())),
            Err(RecvError::InvalidState) => Poll::Ready(Err(failure(conn))),
        }
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let mut guard = this.shared.lock();
        let inner = &mut *guard;
        let conn = match this.conn(&inner.conns) {
            Ok(c) => c,
            Err(e) => return Poll::Ready(Err(e)),
        };
        if let Some(kind) = conn.error {
            return Poll::Ready(Err(kind.into()));
        }
        let Some(link) = inner.links.get_mut(&this.key.0) else {
            return Poll::Ready(Err(failure(conn)));
        };
        let socket = link.socket(this.key.1);
        match socket.send_slice(data) {
            Ok(0) if !data.is_empty() => {
                socket.register_send_waker(cx.waker());
                Poll::Pending
            }
            Ok(n) => {
                link.dirty = true;
                drop(guard);
                this.shared.kick.notify_one();
                Poll::Ready(Ok(n))
            }
            Err(SendError::InvalidState) => Poll::Ready(Err(err(
                io::ErrorKind::BrokenPipe,
                "connection closed for sending",
            ))),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Written bytes are already the stack's to deliver, as with a kernel socket.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let mut inner = this.shared.lock();
        if let Some(link) = inner.links.get_mut(&this.key.0) {
            link.socket(this.key.1).close();
            link.dirty = true;
        }
        drop(inner);
        this.shared.kick.notify_one();
        Poll::Ready(Ok(()))
    }
}

impl Drop for TcpStream {
    fn drop(&mut self) {
        let now = self.shared.now();
        let mut guard = self.shared.lock();
        let inner = &mut *guard;
        inner.conns.remove(&self.key);
        if let Some(link) = inner.links.get_mut(&self.key.0) {
            link.socket(self.key.1).close();
            link.dirty = true;
            inner
                .orphans
                .push((self.key, now + smoltcp::time::Duration::from(LINGER)));
        }
        drop(guard);
        self.shared.kick.notify_one();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere leaves smoltcp's state consistent enough to tear down.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now(&self) -> SInstant {
        SInstant::from_micros(self.epoch.elapsed().as_micros() as i64)
    }

    fn tokio_instant(&self, at: SInstant) -> tokio::time::Instant {
        let micros = u64::try_from(at.total_micros()).unwrap_or(0);
        tokio::time::Instant::from_std(self.epoch + Duration::from_micros(micros))
    }

    async fn run(self: Arc<Self>, mut rx: mpsc::Receiver<LocalPacket>) {
        self.sync().await;
        let mut packets = Vec::new();
        let mut check = tokio::time::interval(TABLE_CHECK);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let next = self.lock().next_poll;
            let wake_at = match next {
                Some(at) => self.tokio_instant(at),
                None => tokio::time::Instant::now() + TABLE_CHECK,
            };
            tokio::select! {
                biased;
                _ = self.cancel.cancelled() => break,
                got = rx.recv() => match got {
                    Some(p) => {
                        packets.push(p);
                        while packets.len() < BURST {
                            match rx.try_recv() {
                                Ok(p) => packets.push(p),
                                Err(_) => break,
                            }
                        }
                    }
                    None => break,
                },
                _ = self.kick.notified() => {}
                _ = tokio::time::sleep_until(wake_at) => {}
                _ = check.tick() => {}
            }
            if self.table_changed() {
                self.sync().await;
            }
            self.run_once(&mut packets);
        }
        self.close_all();
        tracing::debug!("stopped");
    }

    fn table_changed(&self) -> bool {
        let current = self.router.path().tunnels.load();
        let inner = self.lock();
        // Holding the Arc we compared with keeps its address from being reused.
        inner
            .table
            .as_ref()
            .is_none_or(|seen| !Arc::ptr_eq(seen, &current))
    }

    /// Bring the links in line with the router's tunnels and their addresses.
    async fn sync(&self) {
        let _serial = self.sync_lock.lock().await;
        let table = self.router.path().tunnels.load_full();
        let config = self.router.config().await;
        let specs = link_specs(&config, |name| table.by_name(name).map(|t| (t.id, t.mtu())));
        let now = self.now();
        let mut inner = self.lock();
        if inner.closed {
            return;
        }
        inner.table = Some(table);
        apply_specs(&mut inner, specs, now);
        drop(inner);
        self.kick.notify_one();
    }

    /// Create a socket connecting from `local` to `remote` on `tunnel`.
    fn open(
        self: &Arc<Self>,
        tunnel: TunnelId,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> io::Result<TcpStream> {
        if remote.port() == 0 || remote.ip().is_unspecified() {
            return Err(err(io::ErrorKind::InvalidInput, "no remote address"));
        }
        if remote.is_ipv4() != local.is_ipv4() {
            return Err(err(
                io::ErrorKind::InvalidInput,
                "local and remote address families differ",
            ));
        }
        let mut guard = self.lock();
        let inner = &mut *guard;
        if inner.closed {
            return Err(shut_down());
        }
        let link = inner
            .links
            .get_mut(&tunnel)
            .ok_or_else(|| err(io::ErrorKind::AddrNotAvailable, "no such tunnel"))?;
        if !link.has_address(local.ip()) {
            return Err(err(
                io::ErrorKind::AddrNotAvailable,
                "not an address of this tunnel",
            ));
        }
        let port = match local.port() {
            0 => pick_port(rand::random(), |p| link.port_in_use(p))
                .ok_or_else(|| err(io::ErrorKind::AddrInUse, "no ephemeral port left"))?,
            p if link.port_in_use(p) => {
                return Err(err(io::ErrorKind::AddrInUse, "local port in use"));
            }
            p => p,
        };
        let mut socket = new_socket();
        let local_end = IpListenEndpoint {
            addr: Some(local.ip().into()),
            port,
        };
        socket
            .connect(link.iface.context(), remote, local_end)
            .map_err(|e| err(io::ErrorKind::InvalidInput, &e.to_string()))?;
        let handle = link.sockets.add(socket);
        link.dirty = true;
        let key = (tunnel, handle);
        inner.conns.insert(
            key,
            Conn {
                last: State::SynSent,
                fin: false,
                error: None,
            },
        );
        drop(guard);
        self.kick.notify_one();
        Ok(TcpStream {
            shared: Arc::clone(self),
            key,
            local: SocketAddr::new(local.ip(), port),
            remote,
        })
    }

    /// One round: take in `packets`, poll the links that need it, hand over new
    /// connections, send what came out.
    fn run_once(self: &Arc<Self>, packets: &mut Vec<LocalPacket>) {
        let now = self.now();
        let mut out = Vec::new();
        let mut ready = Vec::new();
        let mut takers = Vec::new();
        {
            let mut guard = self.lock();
            let inner = &mut *guard;
            if inner.closed {
                packets.clear();
                return;
            }
            for p in packets.drain(..) {
                self.ingest(inner, p);
            }
            for (&id, link) in inner.links.iter_mut() {
                let due = link.dirty || link.poll_at.is_some_and(|t| t <= now);
                if due {
                    poll_link(id, link, now, &mut ready);
                }
            }
            reap_orphans(inner, now);
            for r in &ready {
                inner.conns.insert(
                    r.key,
                    Conn {
                        last: r.state,
                        fin: false,
                        error: None,
                    },
                );
                takers.push(inner.listeners.get(&r.port).cloned());
            }
            observe(inner);
            for (&id, link) in inner.links.iter_mut() {
                out.extend(link.device.tx.drain(..).map(|p| (id, p)));
            }
            inner.next_poll = inner.links.values().filter_map(|l| l.poll_at).min();
        }
        self.send(out);
        // Streams are made (and maybe dropped) outside the lock: their Drop takes it.
        for (r, taker) in ready.into_iter().zip(takers) {
            let stream = TcpStream {
                shared: Arc::clone(self),
                key: r.key,
                local: r.local,
                remote: r.remote,
            };
            let accepted = Accepted {
                tunnel: r.key.0,
                local: r.local,
                remote: r.remote,
            };
            tracing::debug!(tunnel = %accepted.tunnel, local = %r.local, remote = %r.remote, "accepted");
            // No listener any more: the stream's drop closes the connection.
            let Some(taker) = taker else { continue };
            if let Err(mpsc::error::TrySendError::Full(_)) = taker.try_send((stream, accepted)) {
                bump(&self.counters.accept_overflow);
            }
        }
    }

    fn ingest(&self, inner: &mut Inner, p: LocalPacket) {
        let c = &self.counters;
        bump(&c.received);
        if let Err(why) = check::check_tcp(&p.packet) {
            bump(match why {
                Rejected::Malformed => &c.malformed,
                Rejected::BadChecksum => &c.bad_checksum,
                Rejected::Unsupported => &c.unsupported,
            });
            tracing::trace!(%why, "segment dropped");
            return;
        }
        let Ingress::Tunnel(id) = p.ingress else {
            bump(&c.not_from_tunnel);
            return;
        };
        let Some(link) = inner.links.get_mut(&id) else {
            bump(&c.unknown_tunnel);
            return;
        };
        if link.device.rx.len() >= link::RX_QUEUE {
            bump(&c.queue_full);
            return;
        }
        link.device.rx.push_back(p.packet);
        link.dirty = true;
    }

    fn send(&self, out: Vec<(TunnelId, Vec<u8>)>) {
        let path = self.router.path();
        for (id, packet) in out {
            if path.send_on_tunnel(id, &packet) {
                bump(&self.counters.sent);
            } else {
                bump(&self.counters.send_failed);
            }
        }
    }

    /// Reset everything, once; later calls find the stack closed.
    fn close_all(&self) {
        let now = self.now();
        let mut out = Vec::new();
        {
            let mut guard = self.lock();
            let inner = &mut *guard;
            if inner.closed {
                return;
            }
            inner.closed = true;
            // Dropping the senders ends every accept().
            inner.listeners.clear();
            fail_conns(inner, |_| true, io::ErrorKind::ConnectionAborted);
            for (&id, link) in inner.links.iter_mut() {
                // Let the peers know with the RSTs the aborts queued.
                link.iface
                    .poll_egress(now, &mut link.device, &mut link.sockets);
                out.extend(link.device.tx.drain(..).map(|p| (id, p)));
            }
            inner.links.clear();
            inner.orphans.clear();
        }
        self.send(out);
        self.kick.notify_one();
    }
}

/// Poll one link: its received segments one at a time (refilling listeners in between),
/// then its output; collect the connections its listeners completed.
fn poll_link(id: TunnelId, link: &mut Link, now: SInstant, ready: &mut Vec<Ready>) {
    link.dirty = false;
    while !matches!(
        link.iface
            .poll_ingress_single(now, &mut link.device, &mut link.sockets),
        PollIngressSingleResult::None
    ) {
        link.refill_all(BACKLOG);
    }
    link.iface
        .poll_egress(now, &mut link.device, &mut link.sockets);
    link.refill_all(BACKLOG);
    let Link {
        backlogs, sockets, ..
    } = link;
    let mut dead = Vec::new();
    for (&port, backlog) in backlogs.iter_mut() {
        backlog.pending.retain(|&h| {
            let socket = sockets.get::<tcp::Socket>(h);
            match socket.state() {
                State::SynReceived => true,
                State::Established | State::CloseWait => {
                    if let (Some(l), Some(r)) = (socket.local_endpoint(), socket.remote_endpoint())
                    {
                        ready.push(Ready {
                            key: (id, h),
                            port,
                            local: endpoint_addr(l),
                            remote: endpoint_addr(r),
                            state: socket.state(),
                        });
                        return false;
                    }
                    dead.push(h);
                    false
                }
                // Back to LISTEN after a RST, or gone: either way not a connection,
                // and the port already has its listening socket.
                _ => {
                    dead.push(h);
                    false
                }
            }
        });
    }
    for h in dead {
        sockets.remove(h);
    }
    link.poll_at = link.iface.poll_at(now, &link.sockets);
}

/// Remove orphans that finished closing; reset those past their deadline (removed on a
/// later round, once the RST went out).
fn reap_orphans(inner: &mut Inner, now: SInstant) {
    let links = &mut inner.links;
    inner.orphans.retain(|&((id, h), deadline)| {
        let Some(link) = links.get_mut(&id) else {
            return false;
        };
        let socket = link.socket(h);
        match socket.state() {
            State::Closed | State::TimeWait => {
                link.sockets.remove(h);
                false
            }
            _ if now >= deadline => {
                socket.abort();
                link.dirty = true;
                true
            }
            _ => true,
        }
    });
}

/// Turn socket states into what streams report: the peer's FIN, a refusal, a reset.
fn observe(inner: &mut Inner) {
    for (&(id, h), conn) in inner.conns.iter_mut() {
        let Some(link) = inner.links.get_mut(&id) else {
            continue;
        };
        let state = link.socket(h).state();
        if matches!(
            state,
            State::CloseWait | State::LastAck | State::Closing | State::TimeWait
        ) {
            conn.fin = true;
        }
        if state == State::Closed && conn.last != State::Closed && conn.error.is_none() {
            if conn.last == State::SynSent {
                conn.error = Some(io::ErrorKind::ConnectionRefused);
            } else if !conn.fin {
                // Only a RST closes a synchronized connection without the peer's FIN.
                conn.error = Some(io::ErrorKind::ConnectionReset);
            }
        }
        conn.last = state;
    }
}

/// Fail and abort every stream's connection `which` selects (the abort wakes them).
fn fail_conns(inner: &mut Inner, which: impl Fn(&Key) -> bool, kind: io::ErrorKind) {
    for (key, conn) in inner.conns.iter_mut() {
        if !which(key) {
            continue;
        }
        conn.error.get_or_insert(kind);
        if let Some(link) = inner.links.get_mut(&key.0) {
            link.socket(key.1).abort();
            link.dirty = true;
        }
    }
}

/// Make the links match `specs`: drop links of removed tunnels (failing their
/// connections), build links for new ones, follow address and MTU changes.
fn apply_specs(inner: &mut Inner, specs: BTreeMap<TunnelId, LinkSpec>, now: SInstant) {
    let gone: Vec<TunnelId> = inner
        .links
        .keys()
        .filter(|id| !specs.contains_key(id))
        .copied()
        .collect();
    for id in gone {
        tracing::debug!(tunnel = %id, "tunnel gone; its connections fail");
        fail_conns(inner, |k| k.0 == id, io::ErrorKind::ConnectionAborted);
        inner.links.remove(&id);
        inner.orphans.retain(|(k, _)| k.0 != id);
    }
    let ports: Vec<u16> = inner.listeners.keys().copied().collect();
    for (id, spec) in specs {
        let idle =
            !inner.conns.keys().any(|k| k.0 == id) && !inner.orphans.iter().any(|(k, _)| k.0 == id);
        let rebuild = match inner.links.get_mut(&id) {
            None => true,
            // smoltcp reads the MTU (hence the MSS) once per interface: a new MTU
            // needs a new interface, which waits until no connection uses the old one.
            Some(link) if link.mtu != spec.mtu && idle => true,
            Some(link) => {
                if link.addresses != spec.addresses {
                    link.set_addresses(&spec.addresses);
                    let addrs = link.addresses.clone();
                    let sockets = &link.sockets;
                    let lost = |k: &Key| {
                        k.0 == id
                            && sockets
                                .get::<tcp::Socket>(k.1)
                                .local_endpoint()
                                .is_some_and(|e| !addrs.iter().any(|a| a.address() == e.addr))
                    };
                    let lost: Vec<Key> = inner.conns.keys().filter(|k| lost(k)).copied().collect();
                    fail_conns(inner, |k| lost.contains(k), io::ErrorKind::AddrNotAvailable);
                }
                false
            }
        };
        if rebuild {
            tracing::debug!(tunnel = %id, name = %spec.name, mtu = spec.mtu, "link built");
            let mut link = Link::new(&spec, now);
            for &port in &ports {
                link.refill(port, BACKLOG);
            }
            inner.links.insert(id, link);
        }
    }
}
