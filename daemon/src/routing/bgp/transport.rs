//! Byte streams under BGP sessions: a generic connection driver (any `AsyncRead +
//! AsyncWrite`: kernel TCP here, the userspace stack across tunnels) and the kernel TCP
//! side for neighbors that are not behind a tunnel, with TCP-MD5 (RFC 2385) and GTSM
//! (RFC 5082).
//!
//! The session itself never sees a socket: the driver turns a stream into
//! [`ConnEvent`]s for the speaker task and takes bytes to write from a channel.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Any byte stream a session can run over.
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

pub type BoxStream = Box<dyn Stream>;

/// What a driven connection reports to the speaker. `id` tells a connection from the
/// one that replaced it (late events of a closed connection are ignored).
#[derive(Debug)]
pub enum ConnEvent {
    Data {
        peer: IpAddr,
        id: u64,
        bytes: Vec<u8>,
    },
    Closed {
        peer: IpAddr,
        id: u64,
        why: String,
    },
}

/// The speaker's end of a driven connection: bytes to write, and closing. Dropping it
/// closes the connection after what was queued is written.
#[derive(Debug)]
pub struct Connection {
    pub id: u64,
    writer: mpsc::UnboundedSender<Vec<u8>>,
    stop: CancellationToken,
}

impl Connection {
    pub fn write(&self, bytes: Vec<u8>) {
        let _ = self.writer.send(bytes);
    }

    /// Close at once, dropping what was not written yet.
    pub fn abort(&self) {
        self.stop.cancel();
    }

    /// What [`Connection::abort`] cancels, to cut the connection later.
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }
}

/// Reads a largest-message worth at a time: the framer cuts messages out of whatever
/// arrives.
const READ_CHUNK: usize = 65_536;

/// Runs `stream` on two tasks (reader, writer) until either side ends.
pub fn drive(
    stream: BoxStream,
    peer: IpAddr,
    id: u64,
    events: mpsc::Sender<ConnEvent>,
) -> Connection {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (writer, mut queue) = mpsc::unbounded_channel::<Vec<u8>>();
    let stop = CancellationToken::new();
    let reader_stop = stop.clone();
    let reader_events = events.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; READ_CHUNK];
        let why = loop {
            tokio::select! {
                _ = reader_stop.cancelled() => break "closed by us".to_string(),
                r = rd.read(&mut buf) => match r {
                    Ok(0) => break "closed by the peer".to_string(),
                    Ok(n) => {
                        let bytes = buf[..n].to_vec();
                        if reader_events.send(ConnEvent::Data { peer, id, bytes }).await.is_err() {
                            break "speaker gone".to_string();
                        }
                    }
                    Err(e) => break e.to_string(),
                },
            }
        };
        reader_stop.cancel();
        let _ = reader_events
            .send(ConnEvent::Closed { peer, id, why })
            .await;
    });
    let writer_stop = stop.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = writer_stop.cancelled() => break,
                m = queue.recv() => match m {
                    Some(bytes) => {
                        if wr.write_all(&bytes).await.is_err() || wr.flush().await.is_err() {
                            writer_stop.cancel();
                            break;
                        }
                    }
                    // The speaker dropped its end: orderly close after the queue.
                    None => {
                        let _ = wr.shutdown().await;
                        writer_stop.cancel();
                        break;
                    }
                },
            }
        }
    });
    Connection { id, writer, stop }
}

/// How a kernel TCP session is secured.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelOptions {
    /// TCP-MD5 key (RFC 2385).
    pub md5_key: Option<Vec<u8>>,
    /// GTSM: send with TTL 255, accept only TTL >= 254 (RFC 5082).
    pub ttl_security: bool,
}

/// Connects to a neighbor over kernel TCP.
pub async fn connect_kernel(
    remote: SocketAddr,
    local: Option<IpAddr>,
    opts: &KernelOptions,
) -> io::Result<tokio::net::TcpStream> {
    let socket = match remote {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    if let Some(key) = &opts.md5_key {
        set_md5_key(&socket, remote.ip(), key)?;
    }
    if opts.ttl_security {
        set_ttl_security(&socket, remote.is_ipv6())?;
    }
    socket.set_nodelay(true)?;
    if let Some(ip) = local {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    socket.connect(remote).await
}

/// A kernel listener for one address family on `port`.
pub fn listen_kernel(v6: bool, port: u16) -> io::Result<tokio::net::TcpListener> {
    let socket = if v6 {
        let s = socket2::Socket::new(
            socket2::Domain::IPV6,
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )?;
        // One listener per family keeps MD5 keys in their plain address form.
        s.set_only_v6(true)?;
        s
    } else {
        socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )?
    };
    s_reuse(&socket)?;
    socket.set_nonblocking(true)?;
    let addr: SocketAddr = if v6 {
        (std::net::Ipv6Addr::UNSPECIFIED, port).into()
    } else {
        (std::net::Ipv4Addr::UNSPECIFIED, port).into()
    };
    socket.bind(&addr.into())?;
    socket.listen(64)?;
    tokio::net::TcpListener::from_std(socket.into())
}

fn s_reuse(s: &socket2::Socket) -> io::Result<()> {
    s.set_reuse_address(true)
}

/// Sets (or with an empty key, removes) the TCP-MD5 key for `peer` on a socket; on a
/// listener this must happen before the peer's SYN arrives.
pub fn set_md5_key(socket: &impl AsRawFd, peer: IpAddr, key: &[u8]) -> io::Result<()> {
    if key.len() > MD5_MAX_KEY {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("TCP-MD5 keys are at most {MD5_MAX_KEY} bytes"),
        ));
    }
    let mut sig = TcpMd5Sig {
        addr: [0; 128],
        flags: 0,
        prefixlen: 0,
        keylen: key.len() as u16,
        ifindex: 0,
        key: [0; MD5_MAX_KEY],
    };
    sig.key[..key.len()].copy_from_slice(key);
    let sa: socket2::SockAddr = SocketAddr::new(peer, 0).into();
    let raw = sa.as_ptr() as *const u8;
    // SAFETY: `sa` holds `sa.len()` valid bytes, at most a sockaddr_storage (128).
    let bytes = unsafe { std::slice::from_raw_parts(raw, sa.len() as usize) };
    sig.addr[..bytes.len()].copy_from_slice(bytes);
    setsockopt(
        socket.as_raw_fd(),
        libc::IPPROTO_TCP,
        libc::TCP_MD5SIG,
        &sig,
    )
}

/// GTSM on one socket: our packets leave with TTL 255 and the kernel drops the peer's
/// unless they arrive with at least 254, i.e. from a directly connected neighbor.
pub fn set_ttl_security(socket: &impl AsRawFd, v6: bool) -> io::Result<()> {
    let fd = socket.as_raw_fd();
    if v6 {
        setsockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, &255i32)?;
        setsockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_MINHOPCOUNT, &254i32)
    } else {
        setsockopt(fd, libc::IPPROTO_IP, libc::IP_TTL, &255i32)?;
        setsockopt(fd, libc::IPPROTO_IP, libc::IP_MINTTL, &254i32)
    }
}

const MD5_MAX_KEY: usize = 80;

/// Linux `struct tcp_md5sig` (include/uapi/linux/tcp.h); libc does not define it.
#[repr(C)]
struct TcpMd5Sig {
    addr: [u8; 128],
    flags: u8,
    prefixlen: u8,
    keylen: u16,
    ifindex: i32,
    key: [u8; MD5_MAX_KEY],
}

fn setsockopt<T>(fd: i32, level: i32, name: i32, value: &T) -> io::Result<()> {
    // SAFETY: `value` is a valid, initialized T for the duration of the call and the
    // length passed is its size.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            value as *const T as *const libc::c_void,
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_struct_matches_the_kernel_layout() {
        // 128 (sockaddr_storage) + 1 + 1 + 2 + 4 + 80.
        assert_eq!(std::mem::size_of::<TcpMd5Sig>(), 216);
    }

    #[tokio::test]
    async fn driver_carries_bytes_both_ways_and_reports_close() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let opts = KernelOptions::default();
        let client = connect_kernel(addr, None, &opts);
        let (client, accepted) = tokio::join!(client, listener.accept());
        let (mut server, _) = accepted.unwrap();
        let (tx, mut rx) = mpsc::channel(16);
        let peer = addr.ip();
        let conn = drive(Box::new(client.unwrap()), peer, 7, tx);
        conn.write(b"hello".to_vec());
        let mut got = [0u8; 5];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello");
        server.write_all(b"world").await.unwrap();
        let mut seen = Vec::new();
        while seen.len() < 5 {
            match rx.recv().await.unwrap() {
                ConnEvent::Data { id, bytes, .. } => {
                    assert_eq!(id, 7);
                    seen.extend(bytes);
                }
                e => panic!("unexpected {e:?}"),
            }
        }
        assert_eq!(seen, b"world");
        drop(server);
        match rx.recv().await.unwrap() {
            ConnEvent::Closed { id: 7, .. } => {}
            e => panic!("unexpected {e:?}"),
        }
    }

    #[tokio::test]
    async fn md5_key_can_be_set_on_a_listener_and_a_connecting_socket() {
        // Needs no privilege; proves the struct and option are accepted by the kernel.
        let l = listen_kernel(false, 0).unwrap();
        set_md5_key(&l, "127.0.0.1".parse().unwrap(), b"secret").unwrap();
        let port = l.local_addr().unwrap().port();
        let remote: SocketAddr = ([127, 0, 0, 1], port).into();
        let limit = std::time::Duration::from_secs(5);
        let right = KernelOptions {
            md5_key: Some(b"secret".to_vec()),
            ttl_security: false,
        };
        let (c, a) = tokio::join!(
            tokio::time::timeout(limit, connect_kernel(remote, None, &right)),
            tokio::time::timeout(limit, l.accept())
        );
        c.expect("connects in time").unwrap();
        a.expect("accepts in time").unwrap();
        // A wrong key: the listener's kernel drops the SYN, so the connect times out.
        let wrong = KernelOptions {
            md5_key: Some(b"other".to_vec()),
            ttl_security: false,
        };
        let r = tokio::time::timeout(
            std::time::Duration::from_millis(500),
            connect_kernel(remote, None, &wrong),
        )
        .await;
        assert!(
            r.is_err() || r.unwrap().is_err(),
            "a wrong key must not connect"
        );
    }

    #[tokio::test]
    async fn gtsm_refuses_a_peer_whose_packets_arrive_with_a_low_ttl() {
        // Our side demands TTL >= 254; the listener answers with the default TTL (64), so
        // the handshake cannot complete: what GTSM does to a peer more than one hop away.
        let l = listen_kernel(false, 0).unwrap();
        let remote: SocketAddr = ([127, 0, 0, 1], l.local_addr().unwrap().port()).into();
        let gtsm = KernelOptions {
            md5_key: None,
            ttl_security: true,
        };
        let r = tokio::time::timeout(
            std::time::Duration::from_millis(500),
            connect_kernel(remote, None, &gtsm),
        )
        .await;
        assert!(
            r.is_err() || r.unwrap().is_err(),
            "a TTL-64 peer must not pass GTSM"
        );
        // With GTSM on both ends (TTL 255 out) it connects.
        let l2 = listen_kernel(false, 0).unwrap();
        set_ttl_security(&l2, false).unwrap();
        let remote2: SocketAddr = ([127, 0, 0, 1], l2.local_addr().unwrap().port()).into();
        let limit = std::time::Duration::from_secs(5);
        let (c, a) = tokio::join!(
            tokio::time::timeout(limit, connect_kernel(remote2, None, &gtsm)),
            tokio::time::timeout(limit, l2.accept())
        );
        c.expect("connects in time").unwrap();
        a.expect("accepts in time").unwrap();
    }
}
