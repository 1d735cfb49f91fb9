//! The wiring: builds tunnels, sockets, the FIB, the RIB and the host TUN from a
//! [`Config`], runs them, and tears them down on shutdown.
//!
//! This room decides nothing per packet and owns no protocol; it only knows which part
//! needs which other part, and in what order things start and stop.

use crate::config::{Config, RouteVia};
use crate::dataplane::fib::Fib;
use crate::dataplane::forward::{Forwarder, LocalAddresses};
use crate::dataplane::host::{HostTun, KernelRoutes};
use crate::dataplane::path::{LocalPacket, PacketPath, TunnelTable, UdpPort};
use crate::dataplane::tunnel::{Tunnel, TunnelParams};
use crate::dataplane::udp::{self, Demuxer};
use crate::dataplane::{NextHop, TunnelId};
use crate::routing::rib::{Candidate, Rib, RouteSource};
use ipnetwork::IpNetwork;
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error("cannot bind UDP port {port}: {source}")]
    Bind { port: u16, source: std::io::Error },
    #[error("host interface: {0}")]
    Host(std::io::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// How many local packets may wait for the control plane before new ones are dropped.
const LOCAL_QUEUE: usize = 4096;

/// A running router. Dropping it without [`Router::shutdown`] still stops its threads
/// (the TUN then disappears when the process exits).
pub struct Router {
    config: Config,
    path: Arc<PacketPath>,
    threads: Vec<JoinHandle<()>>,
    rib: Mutex<Rib>,
    kernel: Option<tokio::sync::Mutex<KernelRoutes>>,
    local_rx: Option<tokio::sync::mpsc::Receiver<LocalPacket>>,
}

impl Router {
    /// Bring up everything the config describes.
    pub async fn start(config: Config) -> Result<Router, RouterError> {
        let demux = Demuxer::new(&config.router.private_key);

        // Sockets: the shared one first, then one per tunnel that asks for its own port.
        let mut ports = vec![UdpPort::new(
            udp::bind(config.router.listen_address, config.router.listen_port).map_err(
                |source| RouterError::Bind {
                    port: config.router.listen_port,
                    source,
                },
            )?,
        )];
        let mut port_index: HashMap<u16, usize> = HashMap::new();
        let mut tunnels = Vec::new();
        for (i, t) in config.tunnels.iter().enumerate() {
            let socket = match t.listen_port {
                None => 0,
                Some(port) => match port_index.get(&port) {
                    Some(&index) => index,
                    None => {
                        let socket = udp::bind(config.router.listen_address, port)
                            .map_err(|source| RouterError::Bind { port, source })?;
                        ports.push(UdpPort::new(socket));
                        port_index.insert(port, ports.len() - 1);
                        ports.len() - 1
                    }
                },
            };
            tunnels.push(Arc::new(Tunnel::new(TunnelParams {
                id: TunnelId(i as u32 + 1),
                name: t.name.clone(),
                private_key: &config.router.private_key,
                peer_public_key: t.peer_public_key,
                preshared_key: t.preshared_key.as_ref(),
                endpoint: t.endpoint,
                persistent_keepalive: t.persistent_keepalive,
                mtu: t.mtu,
                socket,
                rate_limiter: demux.rate_limiter.clone(),
            })));
        }
        let table = TunnelTable::new(tunnels);

        let host = match &config.host {
            Some(h) => Some(Arc::new(HostTun::create(h).map_err(RouterError::Host)?)),
            None => None,
        };
        let kernel = match (&config.host, &host) {
            (Some(h), Some(tun)) if h.export_routes => Some(tokio::sync::Mutex::new(
                KernelRoutes::new(tun.index().map_err(RouterError::Host)?)
                    .map_err(RouterError::Host)?,
            )),
            _ => None,
        };

        let fib = Arc::new(Fib::new());
        let mut rib = Rib::new(Arc::clone(&fib));
        rib.replace_source(RouteSource::Connected, connected_routes(&config, &table));
        rib.replace_source(RouteSource::Static, static_routes(&config, &table));

        let forwarder = Forwarder::new(local_addresses(&config));
        let (local_tx, local_rx) = tokio::sync::mpsc::channel(LOCAL_QUEUE);
        let path = Arc::new(PacketPath::new(
            fib, forwarder, ports, host, demux, table, local_tx,
        ));
        let threads = path.spawn()?;
        let router = Router {
            config,
            path,
            threads,
            rib: Mutex::new(rib),
            kernel,
            local_rx: Some(local_rx),
        };
        router.export_routes().await;
        tracing::info!(
            router_id = %router.config.router.router_id,
            tunnels = router.config.tunnels.len(),
            "router started"
        );
        Ok(router)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The packet path, for the control plane (local send, tunnel status, counters).
    pub fn path(&self) -> &Arc<PacketPath> {
        &self.path
    }

    pub fn rib(&self) -> std::sync::MutexGuard<'_, Rib> {
        self.rib.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The stream of packets for the router itself that the data path did not answer.
    /// Can be taken once.
    pub fn take_local_packets(&mut self) -> Option<tokio::sync::mpsc::Receiver<LocalPacket>> {
        self.local_rx.take()
    }

    /// The UDP ports actually bound (useful when the config asked for port 0).
    pub fn local_ports(&self) -> Vec<u16> {
        self.path
            .ports
            .iter()
            .filter_map(|p| p.socket.local_addr().ok().map(|a| a.port()))
            .collect()
    }

    /// Mirror FIB routes toward tunnels (and the router's own addresses) into the kernel.
    async fn export_routes(&self) {
        let Some(kernel) = &self.kernel else { return };
        let desired: BTreeSet<IpNetwork> = self
            .path
            .fib
            .entries()
            .into_iter()
            .filter(|(prefix, hop)| {
                matches!(hop, NextHop::Tunnel(_) | NextHop::Ecmp(_) | NextHop::Local)
                    && !is_host_address(&self.config, prefix)
            })
            .map(|(prefix, _)| prefix)
            .collect();
        kernel.lock().await.sync(&desired).await;
    }

    /// Stop every thread and remove what the router created (TUN, kernel routes).
    pub async fn shutdown(mut self) {
        self.path.stop();
        if let Some(kernel) = &self.kernel {
            kernel.lock().await.clear().await;
        }
        for thread in self.threads.drain(..) {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        tracing::info!("router stopped");
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        self.path.stop();
    }
}

/// The router's own addresses: the router id and its tunnel addresses. Host addresses
/// belong to the kernel (the host answers them itself), so they are not here.
fn local_addresses(config: &Config) -> LocalAddresses {
    let mut addrs: Vec<IpAddr> = vec![IpAddr::V4(config.router.router_id)];
    for t in &config.tunnels {
        addrs.extend(t.addresses.iter().map(|n| n.ip()));
    }
    LocalAddresses::new(addrs)
}

fn is_host_address(config: &Config, prefix: &IpNetwork) -> bool {
    config
        .host
        .as_ref()
        .is_some_and(|h| h.addresses.iter().any(|a| host_prefix(a.ip()) == *prefix))
}

fn host_prefix(ip: IpAddr) -> IpNetwork {
    let len = if ip.is_ipv4() { 32 } else { 128 };
    IpNetwork::new(ip, len).expect("full-length prefix is valid")
}

/// Connected routes: each tunnel's subnets via that tunnel, each host subnet via the host,
/// and every address of the router's own as a local /32 or /128.
fn connected_routes(config: &Config, tunnels: &TunnelTable) -> Vec<Candidate> {
    let mut routes = vec![candidate(
        host_prefix(IpAddr::V4(config.router.router_id)),
        RouteSource::Connected,
        NextHop::Local,
    )];
    for t in &config.tunnels {
        let Some(tunnel) = tunnels.by_name(&t.name) else {
            continue;
        };
        for net in &t.addresses {
            let subnet = IpNetwork::new(net.network(), net.prefix()).expect("valid prefix");
            routes.push(candidate(
                subnet,
                RouteSource::Connected,
                NextHop::Tunnel(tunnel.id),
            ));
            routes.push(candidate(
                host_prefix(net.ip()),
                RouteSource::Connected,
                NextHop::Local,
            ));
        }
    }
    if let Some(h) = &config.host {
        for net in &h.addresses {
            let subnet = IpNetwork::new(net.network(), net.prefix()).expect("valid prefix");
            routes.push(candidate(subnet, RouteSource::Connected, NextHop::Host));
        }
    }
    dedup_by_prefix(routes)
}

fn static_routes(config: &Config, tunnels: &TunnelTable) -> Vec<Candidate> {
    let routes = config
        .routes
        .iter()
        .filter_map(|r| {
            let hop = match &r.via {
                RouteVia::Host => NextHop::Host,
                RouteVia::Blackhole => NextHop::Blackhole,
                RouteVia::Tunnel(name) => NextHop::Tunnel(tunnels.by_name(name)?.id),
            };
            Some(candidate(r.prefix, RouteSource::Static, hop))
        })
        .collect();
    dedup_by_prefix(routes)
}

/// A /32 tunnel address is both its own subnet and a local address; the local one wins.
fn dedup_by_prefix(routes: Vec<Candidate>) -> Vec<Candidate> {
    let mut seen: HashMap<IpNetwork, usize> = HashMap::new();
    let mut out: Vec<Candidate> = Vec::new();
    for r in routes {
        match seen.get(&r.prefix) {
            Some(&i) if r.next_hop == NextHop::Local => out[i] = r,
            Some(_) => {}
            None => {
                seen.insert(r.prefix, out.len());
                out.push(r);
            }
        }
    }
    out
}

fn candidate(prefix: IpNetwork, source: RouteSource, next_hop: NextHop) -> Candidate {
    Candidate {
        prefix,
        source,
        next_hop,
        metric: 0,
    }
}
