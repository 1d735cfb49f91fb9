//! The kernel-facing side: the host TUN interface (packets the kernel routes to it enter
//! the forwarding decision; packets whose route is `host` are written to it) and the
//! optional export of tunnel routes into the kernel routing table over netlink.
//!
//! Exported routes point at the TUN device, so deleting the TUN on exit removes them with
//! it; [`KernelRoutes::clear`] removes them explicitly as well so a crash-free exit and a
//! config change that turns export off leave nothing behind.

use crate::config::HostConfig;
use ipnetwork::IpNetwork;
use std::collections::BTreeSet;
use std::io;
use std::net::IpAddr;
use std::sync::Mutex;
use tun_rs::{DeviceBuilder, GROTable, InterruptEvent, SyncDevice, VIRTIO_NET_HDR_LEN};

/// Bytes kept free in front of every packet written to the TUN, for the virtio header the
/// kernel expects when offloads are on.
pub const HEADROOM: usize = VIRTIO_NET_HDR_LEN;

/// The TUN device between the kernel and the forwarding decision.
pub struct HostTun {
    device: SyncDevice,
    name: String,
    stop: InterruptEvent,
    mtu: u16,
    /// For the occasional single packet sent outside a batch (ICMP, control plane).
    single: Mutex<(GROTable, Vec<Vec<u8>>)>,
}

impl HostTun {
    /// Create the TUN, give it the configured addresses and bring it up.
    pub fn create(config: &HostConfig) -> io::Result<HostTun> {
        // Offloads: the kernel hands us TCP super-segments (up to 64 KiB) in one read and
        // takes coalesced ones in one write, which is most of the throughput.
        let mut builder = DeviceBuilder::new()
            .name(&config.interface)
            .mtu(config.mtu)
            .offload(true)
            .enable(true);
        // Addresses are given as /32 and /128: the prefix of a host address says what the
        // FIB sends to the host, but a kernel connected route for it would fight the LAN
        // interface that really owns that subnet.
        let mut first_v4 = true;
        for net in &config.addresses {
            match net.ip() {
                IpAddr::V4(a) if first_v4 => {
                    builder = builder.ipv4(a, 32, None);
                    first_v4 = false;
                }
                IpAddr::V4(_) => {}
                IpAddr::V6(a) => builder = builder.ipv6(a, 128u8),
            }
        }
        let device = builder.build_sync().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot create TUN {}: {e}", config.interface),
            )
        })?;
        for net in config.addresses.iter().filter(|n| n.is_ipv4()).skip(1) {
            if let IpAddr::V4(a) = net.ip() {
                device.add_address_v4(a, 32)?;
            }
        }
        // Reads wait in poll (interruptible); the fd itself never blocks, so a queue can
        // be drained without waiting once it is empty.
        device.set_nonblocking(true)?;
        Ok(HostTun {
            device,
            name: config.interface.clone(),
            stop: InterruptEvent::new()?,
            mtu: config.mtu,
            single: Mutex::new((GROTable::default(), vec![Vec::new()])),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Kernel interface index, for routes that point at the TUN.
    pub fn index(&self) -> io::Result<u32> {
        self.device.if_index()
    }

    pub fn mtu(&self) -> u16 {
        self.mtu
    }

    /// Blocks until the kernel hands over a packet (or a super-segment, which is split
    /// into `bufs` as MTU-sized packets), or [`HostTun::interrupt`] is called (then
    /// `Interrupted`). `raw` must hold a whole super-segment (64 KiB + header).
    pub fn recv_batch(
        &self,
        raw: &mut [u8],
        bufs: &mut [Vec<u8>],
        sizes: &mut [usize],
    ) -> io::Result<usize> {
        self.device
            .recv_multiple_intr(raw, bufs, sizes, 0, &self.stop)
    }

    /// Like [`HostTun::recv_batch`] but never waits: `WouldBlock` when nothing is queued.
    /// Draining the queue after a wakeup lets a burst of small packets (TCP ACKs) leave
    /// as one UDP batch.
    pub fn try_recv_batch(
        &self,
        raw: &mut [u8],
        bufs: &mut [Vec<u8>],
        sizes: &mut [usize],
    ) -> io::Result<usize> {
        self.device.recv_multiple(raw, bufs, sizes, 0)
    }

    /// Write packets, each preceded by [`HEADROOM`] spare bytes; runs of one TCP flow are
    /// coalesced into super-segments so the kernel sees few, large writes.
    pub fn send_batch(&self, gro: &mut GROTable, bufs: &mut [Vec<u8>]) -> io::Result<()> {
        self.device.send_multiple(gro, bufs, HEADROOM).map(|_| ())
    }

    /// Write one packet.
    pub fn send(&self, packet: &[u8]) -> io::Result<()> {
        let mut single = self.single.lock().unwrap_or_else(|e| e.into_inner());
        let (gro, bufs) = &mut *single;
        bufs[0].clear();
        bufs[0].resize(HEADROOM, 0);
        bufs[0].extend_from_slice(packet);
        self.device
            .send_multiple(gro, &mut bufs[..1], HEADROOM)
            .map(|_| ())
    }

    /// Wake the receiving thread so it can notice shutdown.
    pub fn interrupt(&self) {
        if let Err(e) = self.stop.trigger() {
            tracing::warn!(error = %e, "cannot interrupt TUN reader");
        }
    }
}

/// Routes mirrored into the kernel's main table, all pointing at the host TUN.
pub struct KernelRoutes {
    handle: rtnetlink::Handle,
    if_index: u32,
    installed: BTreeSet<IpNetwork>,
}

/// Marks our routes in `ip route` output (`proto 0xf3`), distinct from static/kernel/boot.
const RTPROT_WGRD: u8 = 243;

impl KernelRoutes {
    pub fn new(if_index: u32) -> io::Result<KernelRoutes> {
        let (connection, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(connection);
        Ok(KernelRoutes {
            handle,
            if_index,
            installed: BTreeSet::new(),
        })
    }

    /// Make the exported set equal `desired`: add what is missing, remove what is gone.
    pub async fn sync(&mut self, desired: &BTreeSet<IpNetwork>) {
        let stale: Vec<IpNetwork> = self.installed.difference(desired).copied().collect();
        let missing: Vec<IpNetwork> = desired.difference(&self.installed).copied().collect();
        for prefix in stale {
            match self.delete(prefix).await {
                Ok(()) => {}
                Err(e) => tracing::warn!(%prefix, error = %e, "cannot remove kernel route"),
            }
            self.installed.remove(&prefix);
        }
        for prefix in missing {
            match self.add(prefix).await {
                Ok(()) => {
                    self.installed.insert(prefix);
                }
                Err(e) => tracing::warn!(%prefix, error = %e, "cannot export route to kernel"),
            }
        }
    }

    pub async fn clear(&mut self) {
        self.sync(&BTreeSet::new()).await;
    }

    fn message(
        &self,
        prefix: IpNetwork,
    ) -> io::Result<rtnetlink::packet_route::route::RouteMessage> {
        use rtnetlink::packet_route::route::RouteProtocol;
        let builder = rtnetlink::RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(prefix.network(), prefix.prefix())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?
            .output_interface(self.if_index)
            .protocol(RouteProtocol::Other(RTPROT_WGRD));
        Ok(builder.build())
    }

    async fn add(&self, prefix: IpNetwork) -> io::Result<()> {
        let message = self.message(prefix)?;
        self.handle
            .route()
            .add(message)
            .replace()
            .execute()
            .await
            .map_err(io::Error::other)
    }

    async fn delete(&self, prefix: IpNetwork) -> io::Result<()> {
        let message = self.message(prefix)?;
        self.handle
            .route()
            .del(message)
            .execute()
            .await
            .map_err(io::Error::other)
    }
}
