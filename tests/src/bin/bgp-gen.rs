//! `bgp-gen`: a BGP route generator for `lab/bench-bgp`. It listens on kernel TCP,
//! answers any speaker that connects (OPEN with multiprotocol IPv4/IPv6 unicast and
//! 4-octet AS, then KEEPALIVE), and once the session is up and the benchmark opens the
//! peer's gate (a file named after the peer's address in `--gate DIR`), writes a whole
//! table in one go: `--v4` IPv4 /24s from 11.0.0.0 in classic NLRI and `--v6` IPv6 /48s
//! from 2a00::/48 in MP_REACH_NLRI (RFC 4760), many prefixes per UPDATE (up to 4096
//! bytes, RFC 4271 4), then End-of-RIB for both families (RFC 4724 2). AS paths vary per
//! UPDATE (1,000 distinct second hops, private 4-octet ASes no receiver uses: a 16-bit
//! range hit the receivers' own AS and lost those UPDATEs to the loop check) so receivers
//! hold many attribute sets, as in a real table.
//!
//! It prints one line per event with a CLOCK_REALTIME timestamp in nanoseconds, for the
//! script to compute times from: `established PEER T`, `start PEER T`, `sent PEER T`.
//! Written with std only and independently of wgrd's codecs, so both receivers are fed
//! by a third party. Bounded: a peer whose gate does not open within `--gate-timeout`
//! seconds is dropped; the process runs until killed.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const MAX_MSG: usize = 4096;
const HEADER: usize = 19;
const HOLD_TIME: u16 = 240;

#[derive(Clone)]
struct Args {
    listen: String,
    asn: u32,
    router_id: Ipv4Addr,
    v4: u32,
    v6: u32,
    /// Peer address -> the IPv6 next hop announced to it.
    nh6: HashMap<IpAddr, Ipv6Addr>,
    gate: PathBuf,
    gate_timeout: Duration,
}

fn usage() -> ! {
    eprintln!(
        "usage: bgp-gen --listen ADDR:PORT --asn N --router-id A.B.C.D --v4 N --v6 N \
         --gate DIR [--nh6 PEER=IPV6]... [--gate-timeout SECS]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        listen: "0.0.0.0:179".into(),
        asn: 65010,
        router_id: Ipv4Addr::new(10, 77, 0, 1),
        v4: 10_000,
        v6: 0,
        nh6: HashMap::new(),
        gate: PathBuf::from("."),
        gate_timeout: Duration::from_secs(600),
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_else(|| usage());
        match k.as_str() {
            "--listen" => a.listen = v,
            "--asn" => a.asn = v.parse().unwrap_or_else(|_| usage()),
            "--router-id" => a.router_id = v.parse().unwrap_or_else(|_| usage()),
            "--v4" => a.v4 = v.parse().unwrap_or_else(|_| usage()),
            "--v6" => a.v6 = v.parse().unwrap_or_else(|_| usage()),
            "--gate" => a.gate = PathBuf::from(v),
            "--gate-timeout" => {
                a.gate_timeout = Duration::from_secs(v.parse().unwrap_or_else(|_| usage()))
            }
            "--nh6" => {
                let (peer, nh) = v.split_once('=').unwrap_or_else(|| usage());
                a.nh6.insert(
                    peer.parse().unwrap_or_else(|_| usage()),
                    nh.parse().unwrap_or_else(|_| usage()),
                );
            }
            _ => usage(),
        }
    }
    a
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

fn say(what: &str, peer: IpAddr) {
    println!("{what} {peer} {}", now_ns());
    let _ = std::io::stdout().flush();
}

fn message(kind: u8, body: &[u8]) -> Vec<u8> {
    let len = HEADER + body.len();
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&(len as u16).to_be_bytes());
    m.push(kind);
    m.extend_from_slice(body);
    m
}

fn open(a: &Args) -> Vec<u8> {
    let mut caps = Vec::new();
    for (afi, safi) in [(1u16, 1u8), (2, 1)] {
        // Multiprotocol (RFC 4760 8): AFI, reserved, SAFI.
        caps.extend_from_slice(&[1, 4]);
        caps.extend_from_slice(&afi.to_be_bytes());
        caps.extend_from_slice(&[0, safi]);
    }
    // 4-octet AS (RFC 6793).
    caps.extend_from_slice(&[65, 4]);
    caps.extend_from_slice(&a.asn.to_be_bytes());
    let mut body = vec![4];
    let my_as = u16::try_from(a.asn).unwrap_or(23456);
    body.extend_from_slice(&my_as.to_be_bytes());
    body.extend_from_slice(&HOLD_TIME.to_be_bytes());
    body.extend_from_slice(&a.router_id.octets());
    // One optional parameter (type 2, capabilities) holding them all.
    body.push(caps.len() as u8 + 2);
    body.push(2);
    body.push(caps.len() as u8);
    body.extend_from_slice(&caps);
    message(1, &body)
}

fn keepalive() -> Vec<u8> {
    message(4, &[])
}

/// One path attribute; the extended length bit when the value needs it.
fn attr(out: &mut Vec<u8>, flags: u8, kind: u8, value: &[u8]) {
    if value.len() > 255 {
        out.extend_from_slice(&[flags | 0x10, kind]);
        out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    } else {
        out.extend_from_slice(&[flags, kind, value.len() as u8]);
    }
    out.extend_from_slice(value);
}

fn common_attrs(out: &mut Vec<u8>, asn: u32, second: u32) {
    attr(out, 0x40, 1, &[0]); // ORIGIN IGP
    let mut path = vec![2, 2]; // AS_SEQUENCE of two 4-octet ASes
    path.extend_from_slice(&asn.to_be_bytes());
    path.extend_from_slice(&second.to_be_bytes());
    attr(out, 0x40, 2, &path);
}

fn second_as(msg: usize) -> u32 {
    4_200_000_000 + (msg % 1000) as u32
}

/// The whole table for one peer as UPDATE messages, each at most `MAX_MSG` bytes.
fn table(a: &Args, nh4: Ipv4Addr, nh6: Ipv6Addr) -> Vec<u8> {
    let mut out = Vec::new();
    let mut msgs = 0usize;
    // IPv4 /24s: 4 bytes each in the NLRI field.
    let mut i = 0u32;
    while i < a.v4 {
        let mut attrs = Vec::new();
        common_attrs(&mut attrs, a.asn, second_as(msgs));
        attr(&mut attrs, 0x40, 3, &nh4.octets());
        let room = MAX_MSG - HEADER - 4 - attrs.len();
        let n = (room / 4).min((a.v4 - i) as usize) as u32;
        let mut body = vec![0, 0];
        body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        body.extend_from_slice(&attrs);
        for k in i..i + n {
            let base = (11u32 << 24) + (k << 8);
            body.push(24);
            body.extend_from_slice(&base.to_be_bytes()[..3]);
        }
        out.extend_from_slice(&message(2, &body));
        msgs += 1;
        i += n;
    }
    // IPv6 /48s in MP_REACH_NLRI: 7 bytes each.
    let mut i = 0u32;
    while i < a.v6 {
        let mut base_attrs = Vec::new();
        common_attrs(&mut base_attrs, a.asn, second_as(msgs));
        // MP_REACH header: AFI 2, SAFI 1, next hop length 16, next hop, reserved.
        let mp_head = 2 + 1 + 1 + 16 + 1;
        let room = MAX_MSG - HEADER - 4 - base_attrs.len() - 4 - mp_head;
        let n = (room / 7).min((a.v6 - i) as usize) as u32;
        let mut mp = vec![0, 2, 1, 16];
        mp.extend_from_slice(&nh6.octets());
        mp.push(0);
        for k in i..i + n {
            let p: u128 = (0x2a00u128 << 112) + (u128::from(k) << 80);
            mp.push(48);
            mp.extend_from_slice(&p.to_be_bytes()[..6]);
        }
        let mut attrs = Vec::new();
        attr(&mut attrs, 0x80, 14, &mp);
        attrs.extend_from_slice(&base_attrs);
        let mut body = vec![0, 0];
        body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        body.extend_from_slice(&attrs);
        out.extend_from_slice(&message(2, &body));
        msgs += 1;
        i += n;
    }
    // End-of-RIB: an empty UPDATE (IPv4), an empty MP_UNREACH_NLRI (IPv6).
    out.extend_from_slice(&message(2, &[0, 0, 0, 0]));
    let mut eor6 = Vec::new();
    attr(&mut eor6, 0x80, 15, &[0, 2, 1]);
    let mut body = vec![0, 0];
    body.extend_from_slice(&(eor6.len() as u16).to_be_bytes());
    body.extend_from_slice(&eor6);
    out.extend_from_slice(&message(2, &body));
    out
}

/// Reads one whole message; returns its type.
fn read_message(s: &mut TcpStream) -> std::io::Result<u8> {
    let mut h = [0u8; HEADER];
    s.read_exact(&mut h)?;
    let len = usize::from(u16::from_be_bytes([h[16], h[17]]));
    let mut rest = vec![0u8; len.saturating_sub(HEADER)];
    s.read_exact(&mut rest)?;
    Ok(h[18])
}

fn serve(mut s: TcpStream, a: Arc<Args>) -> std::io::Result<()> {
    let peer = s.peer_addr()?.ip();
    let IpAddr::V4(local) = s.local_addr()?.ip() else {
        return Err(std::io::Error::other("IPv4 sessions only"));
    };
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    if read_message(&mut s)? != 1 {
        return Err(std::io::Error::other("expected OPEN"));
    }
    s.write_all(&open(&a))?;
    s.write_all(&keepalive())?;
    // Established once the peer's KEEPALIVE arrives (RFC 4271 8.2.2, OpenConfirm).
    loop {
        match read_message(&mut s)? {
            4 => break,
            3 => return Err(std::io::Error::other("NOTIFICATION from peer")),
            _ => {}
        }
    }
    say("established", peer);
    s.set_read_timeout(None)?;
    // Whatever the peer sends from now on is read and dropped, so it never blocks.
    let mut reader = s.try_clone()?;
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        while matches!(reader.read(&mut buf), Ok(n) if n > 0) {}
    });
    let mut ka = s.try_clone()?;
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_secs(u64::from(HOLD_TIME / 3)));
        if ka.write_all(&keepalive()).is_err() {
            break;
        }
    });
    let nh6 = a.nh6.get(&peer).copied().unwrap_or(Ipv6Addr::UNSPECIFIED);
    let bytes = table(&a, local, nh6);
    let gate = a.gate.join(peer.to_string());
    let since = Instant::now();
    while !gate.exists() {
        if since.elapsed() > a.gate_timeout {
            return Err(std::io::Error::other("gate never opened"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    say("start", peer);
    s.write_all(&bytes)?;
    say("sent", peer);
    // Keep the session (the keepalive thread holds it); the process ends it.
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn main() {
    let a = Arc::new(parse_args());
    let l = TcpListener::bind(&a.listen).unwrap_or_else(|e| {
        eprintln!("bgp-gen: bind {}: {e}", a.listen);
        std::process::exit(1)
    });
    println!("listening {} {}", a.listen, now_ns());
    let _ = std::io::stdout().flush();
    for s in l.incoming().flatten() {
        let a = Arc::clone(&a);
        std::thread::spawn(move || {
            let peer = s
                .peer_addr()
                .map(|p| p.ip().to_string())
                .unwrap_or_default();
            if let Err(e) = serve(s, a) {
                eprintln!("bgp-gen: peer {peer}: {e}");
            }
        });
    }
}
