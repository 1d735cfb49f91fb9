//! Output batches: what one packet thread accumulates while it works through a burst, so
//! that the burst leaves in a few system calls instead of one per packet.
//!
//! - [`UdpBatch`]: encrypted datagrams to one destination, back to back with equal size
//!   (the last may be shorter), sent as one UDP GSO `sendmsg`.
//! - [`HostBatch`]: IP packets for the host TUN, each with virtio headroom, written with
//!   TCP coalescing (GRO) by tun-rs.
//!
//! Owns buffers only; it does not decide where anything goes. A batch is flushed when its
//! destination changes, when it is full, and at the end of every burst — so a packet never
//! waits for a later one.

use super::host::{HostTun, HEADROOM};
use super::udp::UdpPort;
use std::net::SocketAddr;
use tun_rs::GROTable;

/// The most one GSO send may carry: the whole run travels as one 64 KiB skb.
const GSO_MAX_BYTES: usize = 65_000;
/// The largest datagram a tunnel can produce: a 64 KiB packet plus WireGuard overhead.
pub const MAX_DATAGRAM: usize = 65_536 + 64;
/// Packets per TUN write batch, as tun-rs suggests.
const HOST_BATCH: usize = tun_rs::IDEAL_BATCH_SIZE;

/// Equal-sized datagrams for one (port, destination).
pub struct UdpBatch {
    buf: Vec<u8>,
    used: usize,
    stride: usize,
    count: usize,
    dest: Option<(usize, SocketAddr)>,
    /// A short datagram ended the run: GSO allows only the last one to be shorter.
    closed: bool,
}

impl Default for UdpBatch {
    fn default() -> Self {
        UdpBatch {
            buf: vec![0; GSO_MAX_BYTES + MAX_DATAGRAM],
            used: 0,
            stride: 0,
            count: 0,
            dest: None,
            closed: false,
        }
    }
}

impl UdpBatch {
    /// Where the next datagram is to be written (always room for the largest one).
    pub fn tail(&mut self) -> &mut [u8] {
        &mut self.buf[self.used..]
    }

    /// The datagram just written at [`UdpBatch::tail`] (`len` bytes) goes to `to` through
    /// `ports[port]`. Flushes earlier datagrams first if it cannot join them.
    pub fn commit(&mut self, ports: &[UdpPort], port: usize, to: SocketAddr, len: usize) {
        let start = self.used;
        let joins = self.count > 0
            && self.dest == Some((port, to))
            && !self.closed
            && len <= self.stride
            && self.count < ports[port].max_segments()
            && start + len <= GSO_MAX_BYTES;
        if self.count > 0 && !joins {
            self.send(ports, start);
            self.buf.copy_within(start..start + len, 0);
        }
        if self.count == 0 {
            self.dest = Some((port, to));
            self.stride = len;
            self.closed = false;
        } else if len < self.stride {
            self.closed = true;
        }
        self.used += len;
        self.count += 1;
        // Keep room for the largest datagram at the tail.
        if self.used > GSO_MAX_BYTES {
            self.flush(ports);
        }
    }

    pub fn flush(&mut self, ports: &[UdpPort]) {
        if self.count > 0 {
            let used = self.used;
            self.send(ports, used);
        }
    }

    /// Send `buf[..end]` (the committed datagrams) and start over.
    fn send(&mut self, ports: &[UdpPort], end: usize) {
        if let Some((port, to)) = self.dest {
            if let Err(e) = ports[port].send_segments(&self.buf[..end], self.stride, to) {
                tracing::trace!(error = %e, %to, "udp send failed");
            }
        }
        self.used = 0;
        self.count = 0;
        self.dest = None;
        self.closed = false;
    }
}

/// Packets waiting for one write to the host TUN.
#[derive(Default)]
pub struct HostBatch {
    bufs: Vec<Vec<u8>>,
    len: usize,
    gro: GROTable,
}

impl HostBatch {
    pub fn push(&mut self, host: &HostTun, packet: &[u8]) -> std::io::Result<()> {
        if self.len == HOST_BATCH {
            self.flush(host)?;
        }
        if self.len == self.bufs.len() {
            // Room for a whole coalesced super-segment: tun-rs only merges a flow's
            // packets into a buffer that can hold the result without reallocating.
            self.bufs.push(Vec::with_capacity(2 * HEADROOM + 65_535));
        }
        let buf = &mut self.bufs[self.len];
        buf.clear();
        buf.resize(HEADROOM, 0);
        buf.extend_from_slice(packet);
        self.len += 1;
        Ok(())
    }

    pub fn flush(&mut self, host: &HostTun) -> std::io::Result<()> {
        if self.len == 0 {
            return Ok(());
        }
        let n = std::mem::take(&mut self.len);
        host.send_batch(&mut self.gro, &mut self.bufs[..n])
    }
}
