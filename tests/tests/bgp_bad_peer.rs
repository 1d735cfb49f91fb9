//! Malformed UPDATEs from a scripted BGP peer (RFC 7606), in one network namespace.
//!
//! ```text
//! lo: 10.99.0.1 wgrd (AS 65001, kernel TCP)
//!     10.99.0.2:1179 scripted "bad" peer (AS 65002)
//!     10.99.0.3:1179 scripted well-behaved peer (AS 65003)
//! ```
//!
//! Both peers are written here with std TCP sockets opened inside the namespace: they
//! listen, wgrd connects to them as address neighbors (`port = 1179`), they answer OPEN
//! and KEEPALIVE by hand and then send UPDATEs built byte by byte. The addresses sit on
//! the namespace's loopback (10.99.0.0/24 rather than 127.0.0.0/8, whose next hops wgrd
//! refuses as martians).
//!
//! - treat-as-withdraw: an ORIGIN of length 2 withdraws the prefix it carried (already
//!   learned) and keeps a new one out; the session stays up and takes a good UPDATE after;
//! - session reset: an NLRI prefix length of 33 gets NOTIFICATION 3/10 (Invalid Network
//!   Field) and the connection closes; wgrd drops the peer's routes and connects again;
//! - meanwhile the well-behaved peer's session (no NOTIFICATION, no close, Established)
//!   and route stay, and the daemon keeps running.
//!
//! Namespace test: WGRD_NETNS_TESTS=1 as root.

use anyhow::{bail, Context, Result};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wgrd_tests::{netns_test, wait_until, wgrctl_json, Keypair, Netns, Wgrd, WgrdConf};

const WGRD: &str = "10.99.0.1";
const BAD: &str = "10.99.0.2";
const GOOD: &str = "10.99.0.3";
const PEER_PORT: u16 = 1179;
const STEP: Duration = Duration::from_secs(20);

const OPEN: u8 = 1;
const UPDATE: u8 = 2;
const NOTIFICATION: u8 = 3;
const KEEPALIVE: u8 = 4;

/// A whole message: marker, length, type, body.
fn message(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    m.push(ty);
    m.extend_from_slice(body);
    m
}

/// OPEN: version 4, AS_TRANS-free 2-octet AS, hold 9, the identifier, capabilities
/// multiprotocol IPv4 unicast and 4-octet AS.
fn open(asn: u32, id: Ipv4Addr) -> Vec<u8> {
    let caps: Vec<u8> = [
        vec![1, 4, 0, 1, 0, 1],
        [vec![65, 4], asn.to_be_bytes().to_vec()].concat(),
    ]
    .concat();
    let mut b = vec![4];
    b.extend_from_slice(&(asn as u16).to_be_bytes());
    b.extend_from_slice(&9u16.to_be_bytes());
    b.extend_from_slice(&id.octets());
    b.push((caps.len() + 2) as u8);
    b.push(2); // capabilities parameter
    b.push(caps.len() as u8);
    b.extend_from_slice(&caps);
    message(OPEN, &b)
}

/// ORIGIN IGP as it should be (flags well-known transitive, length 1).
const GOOD_ORIGIN: &[u8] = &[0x40, 1, 1, 0];
/// ORIGIN with length 2: RFC 7606 7.1, treat-as-withdraw.
const BAD_ORIGIN: &[u8] = &[0x40, 1, 2, 0, 0];

/// An UPDATE announcing `nlri` (raw NLRI bytes) with `origin`, AS_PATH [asn] (4-octet) and
/// NEXT_HOP `nh`.
fn update(origin: &[u8], asn: u32, nh: Ipv4Addr, nlri: &[u8]) -> Vec<u8> {
    let mut attrs = origin.to_vec();
    attrs.extend_from_slice(&[0x40, 2, 6, 2, 1]);
    attrs.extend_from_slice(&asn.to_be_bytes());
    attrs.extend_from_slice(&[0x40, 3, 4]);
    attrs.extend_from_slice(&nh.octets());
    let mut b = vec![0, 0];
    b.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    b.extend_from_slice(&attrs);
    b.extend_from_slice(nlri);
    message(UPDATE, &b)
}

/// One /24 as NLRI bytes.
fn p24(a: u8, b: u8, c: u8) -> Vec<u8> {
    vec![24, a, b, c]
}

fn read_msg(s: &mut TcpStream) -> Result<(u8, Vec<u8>)> {
    let mut h = [0u8; 19];
    s.read_exact(&mut h)?;
    if h[..16] != [0xff; 16] {
        bail!("bad marker: {h:?}");
    }
    let len = usize::from(u16::from_be_bytes([h[16], h[17]]));
    let mut body = vec![0; len.saturating_sub(19)];
    s.read_exact(&mut body)?;
    Ok((h[18], body))
}

/// Run `f` on a thread that has entered `ns`'s network namespace: sockets it creates
/// belong to `ns` for good.
fn in_ns<T: Send + 'static>(ns: &Netns, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let path = format!("/run/netns/{}", ns.name());
    std::thread::spawn(move || -> Result<T> {
        let file = std::fs::File::open(&path).with_context(|| path.clone())?;
        // SAFETY: a valid fd; setns changes only this thread's network namespace.
        if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            bail!("setns {path}: {}", std::io::Error::last_os_error());
        }
        Ok(f())
    })
    .join()
    .map_err(|_| anyhow::anyhow!("namespace thread panicked"))?
}

enum Event {
    Msg(u8, Vec<u8>),
    Closed,
}

/// One scripted peer's Established session: writes go through `out` (shared with the
/// keepalive thread), everything wgrd sends arrives on `rx`.
struct Peer {
    name: &'static str,
    out: Arc<Mutex<TcpStream>>,
    rx: mpsc::Receiver<Event>,
    stop: Arc<AtomicBool>,
}

impl Peer {
    /// Accept wgrd's connection on `listener` and bring the session up.
    fn accept(
        name: &'static str,
        listener: &TcpListener,
        asn: u32,
        id: Ipv4Addr,
        timeout: Duration,
    ) -> Result<Peer> {
        listener.set_nonblocking(true)?;
        let deadline = Instant::now() + timeout;
        let mut s = loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if Instant::now() > deadline {
                        bail!("{name}: wgrd did not connect within {timeout:?}");
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(e.into()),
            }
        };
        s.set_nonblocking(false)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        let (ty, _) = read_msg(&mut s).with_context(|| format!("{name}: wgrd's OPEN"))?;
        if ty != OPEN {
            bail!("{name}: expected OPEN, got type {ty}");
        }
        s.write_all(&open(asn, id))?;
        s.write_all(&message(KEEPALIVE, &[]))?;
        loop {
            let (ty, body) = read_msg(&mut s).with_context(|| format!("{name}: KEEPALIVE"))?;
            match ty {
                KEEPALIVE => break,
                NOTIFICATION => bail!("{name}: NOTIFICATION {body:?} instead of KEEPALIVE"),
                _ => {}
            }
        }
        s.set_read_timeout(None)?;
        let (tx, rx) = mpsc::channel();
        let mut reader = s.try_clone()?;
        std::thread::spawn(move || loop {
            match read_msg(&mut reader) {
                Ok((ty, body)) => {
                    if tx.send(Event::Msg(ty, body)).is_err() {
                        return;
                    }
                }
                Err(_) => {
                    let _ = tx.send(Event::Closed);
                    return;
                }
            }
        });
        let out = Arc::new(Mutex::new(s));
        let stop = Arc::new(AtomicBool::new(false));
        let (ka_out, ka_stop) = (out.clone(), stop.clone());
        std::thread::spawn(move || {
            while !ka_stop.load(Ordering::Relaxed) {
                if ka_out
                    .lock()
                    .unwrap()
                    .write_all(&message(KEEPALIVE, &[]))
                    .is_err()
                {
                    return;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        });
        Ok(Peer {
            name,
            out,
            rx,
            stop,
        })
    }

    fn send(&self, bytes: &[u8]) -> Result<()> {
        self.out.lock().unwrap().write_all(bytes)?;
        Ok(())
    }

    /// Everything received so far that is neither KEEPALIVE nor UPDATE: a NOTIFICATION
    /// or the connection closing.
    fn trouble(&self) -> Vec<String> {
        let mut out = vec![];
        while let Ok(e) = self.rx.try_recv() {
            match e {
                Event::Msg(KEEPALIVE | UPDATE, _) => {}
                Event::Msg(ty, body) => out.push(format!("type {ty} {body:?}")),
                Event::Closed => out.push("closed".into()),
            }
        }
        out
    }

    /// Wait for a NOTIFICATION (code, subcode), then for the connection to close.
    fn wait_notification(&self, timeout: Duration) -> Result<(u8, u8, bool)> {
        let deadline = Instant::now() + timeout;
        let mut got = None;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(Event::Msg(NOTIFICATION, body)) if body.len() >= 2 => {
                    got = Some((body[0], body[1]))
                }
                Ok(Event::Msg(..)) => {}
                Ok(Event::Closed) => {
                    let (c, s) =
                        got.with_context(|| format!("{}: closed, no NOTIFICATION", self.name))?;
                    return Ok((c, s, true));
                }
                Err(_) => match got {
                    Some((c, s)) => return Ok((c, s, false)),
                    None => bail!("{}: no NOTIFICATION within {timeout:?}", self.name),
                },
            }
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.out.lock().unwrap().shutdown(std::net::Shutdown::Both);
    }
}

/// A neighbor's JSON object from `wgrctl bgp neighbors`.
fn neighbor(socket: &Path, addr: &str) -> serde_json::Value {
    wgrctl_json(socket, &["bgp", "neighbors"])
        .ok()
        .and_then(|v| v.as_array()?.iter().find(|n| n["address"] == addr).cloned())
        .unwrap_or_default()
}

fn established(socket: &Path, addr: &str) -> bool {
    neighbor(socket, addr)["state"] == "established"
}

/// Whether the Loc-RIB has a best path for `prefix` from `peer`.
fn learned(socket: &Path, prefix: &str, peer: &str) -> bool {
    wgrctl_json(socket, &["bgp", "routes", prefix]).is_ok_and(|v| {
        v.as_array()
            .into_iter()
            .flatten()
            .any(|p| p["prefix"] == prefix && p["best"] == true && p["peer"] == peer)
    })
}

/// Neither present now nor arriving within `settle`.
fn stays_out(socket: &Path, prefix: &str, settle: Duration) -> bool {
    let t = Instant::now();
    while t.elapsed() < settle {
        if wgrctl_json(socket, &["bgp", "routes", prefix]).is_ok_and(|v| {
            v.as_array()
                .is_some_and(|a| a.iter().any(|p| p["prefix"] == prefix))
        }) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    true
}

#[test]
fn malformed_updates_withdraw_or_reset_one_session_only() -> Result<()> {
    let Some(_t) = netns_test("malformed_updates_withdraw_or_reset_one_session_only", &[]) else {
        return Ok(());
    };
    wgrd_tests::wgrd::wgrd_bin()?;
    wgrd_tests::wgrd::wgrctl_bin()?;
    let ns = Netns::new("bgpbad")?;
    for a in [WGRD, BAD, GOOD] {
        ns.ip(&["addr", "add", &format!("{a}/32"), "dev", "lo"])?;
    }
    let bad_addr: SocketAddr = format!("{BAD}:{PEER_PORT}").parse()?;
    let good_addr: SocketAddr = format!("{GOOD}:{PEER_PORT}").parse()?;
    let bad_l = in_ns(&ns, move || TcpListener::bind(bad_addr))??;
    let good_l = in_ns(&ns, move || TcpListener::bind(good_addr))??;

    let key = Keypair::generate()?;
    let dir = tempfile::Builder::new().prefix("wgrdt-bgpbad-").tempdir()?;
    let key_file = dir.path().join("router.key");
    std::fs::write(&key_file, format!("{}\n", key.private))?;
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600))?;
    let socket = dir.path().join("wgrd.sock");
    let mut toml = WgrdConf::new("10.255.0.1", &key).to_toml(&key_file);
    toml += &format!(
        "\n[control]\nsocket = \"{}\"\n\n[bgp]\nasn = 65001\nconnect-retry = 1\n",
        socket.display()
    );
    for (addr, asn) in [(BAD, 65002), (GOOD, 65003)] {
        toml += &format!(
            "\n[[bgp.neighbor]]\naddress = \"{addr}\"\nremote-as = {asn}\nport = {PEER_PORT}\n\
             local-address = \"{WGRD}\"\nhold-time = 9\nimport = \"all\"\nexport = \"all\"\n"
        );
    }
    toml += "\n[[policy]]\nname = \"all\"\ndefault = \"accept\"\n";
    let mut wgrd = Wgrd::start_raw(&ns, &toml)?;
    let log = |w: &Wgrd| {
        format!(
            "neighbors: {:?}\nroutes: {:?}\nwgrd log:\n{}",
            wgrctl_json(&socket, &["bgp", "neighbors"]),
            wgrctl_json(&socket, &["bgp", "routes"]),
            w.log()
        )
    };
    let (bad_nh, good_nh): (Ipv4Addr, Ipv4Addr) = (BAD.parse()?, GOOD.parse()?);

    // Both sessions up; the good peer's route in; a first good route from the bad peer.
    let good = Peer::accept("good", &good_l, 65003, "10.255.0.3".parse()?, STEP)
        .with_context(|| log(&wgrd))?;
    let bad = Peer::accept("bad", &bad_l, 65002, "10.255.0.2".parse()?, STEP)
        .with_context(|| log(&wgrd))?;
    good.send(&update(GOOD_ORIGIN, 65003, good_nh, &p24(10, 3, 0)))?;
    bad.send(&update(GOOD_ORIGIN, 65002, bad_nh, &p24(10, 2, 1)))?;
    wait_until("both peers' routes in wgrd", STEP, || {
        established(&socket, BAD)
            && established(&socket, GOOD)
            && learned(&socket, "10.3.0.0/24", GOOD)
            && learned(&socket, "10.2.1.0/24", BAD)
    })
    .with_context(|| log(&wgrd))?;
    let good_before = neighbor(&socket, GOOD);
    println!("good neighbor before: {good_before}");

    // (a) ORIGIN with a bad length, twice: on the known prefix (treat-as-withdraw takes
    // it out) and on a new one (never installed). Then a good UPDATE on the same session.
    let t = Instant::now();
    bad.send(&update(BAD_ORIGIN, 65002, bad_nh, &p24(10, 2, 1)))?;
    bad.send(&update(BAD_ORIGIN, 65002, bad_nh, &p24(10, 2, 2)))?;
    wait_until("10.2.1.0/24 treated as withdrawn", STEP, || {
        !learned(&socket, "10.2.1.0/24", BAD)
    })
    .with_context(|| log(&wgrd))?;
    let withdrawn_after = t.elapsed();
    assert!(
        stays_out(&socket, "10.2.2.0/24", Duration::from_secs(1)),
        "{}",
        log(&wgrd)
    );
    bad.send(&update(GOOD_ORIGIN, 65002, bad_nh, &p24(10, 2, 3)))?;
    wait_until("a good UPDATE after the bad ones", STEP, || {
        learned(&socket, "10.2.3.0/24", BAD)
    })
    .with_context(|| log(&wgrd))?;
    // Kept up: no NOTIFICATION or close on the bad peer's side, Established on wgrd's.
    std::thread::sleep(Duration::from_secs(1));
    let trouble = bad.trouble();
    assert!(
        trouble.is_empty(),
        "bad peer after treat-as-withdraw: {trouble:?}"
    );
    let n = neighbor(&socket, BAD);
    assert_eq!(n["state"], "established", "{n}");
    println!(
        "(a) bad ORIGIN length: 10.2.1.0/24 withdrawn after {withdrawn_after:?}, \
         10.2.2.0/24 never installed, session up: {n}"
    );

    // (b) an NLRI prefix length of 33: NOTIFICATION 3/10 and the connection closes.
    let t = Instant::now();
    bad.send(&update(GOOD_ORIGIN, 65002, bad_nh, &[33, 10, 2, 4, 0, 0]))?;
    let (code, subcode, closed) = bad.wait_notification(STEP).with_context(|| log(&wgrd))?;
    let notified_after = t.elapsed();
    assert_eq!((code, subcode), (3, 10), "NOTIFICATION {code}/{subcode}");
    assert!(closed, "the connection stayed open after the NOTIFICATION");
    wait_until("the bad peer's routes gone", STEP, || {
        !learned(&socket, "10.2.3.0/24", BAD)
    })
    .with_context(|| log(&wgrd))?;
    let n = neighbor(&socket, BAD);
    println!(
        "(b) NLRI length 33: NOTIFICATION {code}/{subcode} after {notified_after:?}, \
         connection closed, routes gone after {:?}; neighbor: {n}",
        t.elapsed()
    );
    drop(bad);

    // wgrd connects again after its idle hold; the peer behaves this time.
    let t = Instant::now();
    let bad = Peer::accept(
        "bad again",
        &bad_l,
        65002,
        "10.255.0.2".parse()?,
        Duration::from_secs(90),
    )
    .with_context(|| log(&wgrd))?;
    bad.send(&update(GOOD_ORIGIN, 65002, bad_nh, &p24(10, 2, 5)))?;
    wait_until("the bad peer back", STEP, || {
        established(&socket, BAD) && learned(&socket, "10.2.5.0/24", BAD)
    })
    .with_context(|| log(&wgrd))?;
    println!(
        "bad peer reconnected and Established again after {:?}",
        t.elapsed()
    );

    // (c) the good peer never noticed: no NOTIFICATION, no close, still Established
    // with its route; the daemon runs.
    let trouble = good.trouble();
    assert!(trouble.is_empty(), "good peer: {trouble:?}");
    let good_after = neighbor(&socket, GOOD);
    assert_eq!(good_after["state"], "established", "{good_after}");
    assert_eq!(
        good_after["established_transitions"], good_before["established_transitions"],
        "{good_before}\n{good_after}"
    );
    assert_eq!(
        good_after["since_unix"], good_before["since_unix"],
        "{good_after}"
    );
    assert!(learned(&socket, "10.3.0.0/24", GOOD), "{}", log(&wgrd));
    println!("good neighbor after: {good_after}");
    assert!(wgrd.is_running(), "{}", log(&wgrd));
    drop(bad);
    drop(good);
    wgrd.stop()?;
    Ok(())
}
