//! Soak: a steady ping stream through a wgrd <-> wireguard-go tunnel for longer than two
//! WireGuard rekeys (REKEY_AFTER_TIME is 120 s), asserting that no gap between replies
//! reaches 1 s. Run in both who-initiates directions.
//!
//! Gated twice: the namespace-test switch (WGRD_NETNS_TESTS=1, root) and WGRD_SOAK=1,
//! since each case takes ~4.5 minutes. CI sets both. For experiments:
//! `WGRD_SOAK_SECS` (stream length, default 260), `WGRD_SOAK_INTERVAL` (echo interval,
//! default 0.05 s; the tolerated silence grows with it: 1 s beyond one interval) and
//! `WGRD_SOAK_KEEPALIVE` (persistent keepalive on wgrd's tunnel, default off).
//!
//! The stream is `ping -D -i 0.05` from lanA to lanB (20 echoes/s, each a round trip, so
//! a session deaf in either direction shows up). The gap is measured between the
//! timestamps of consecutive replies, plus from the start of the stream to the first
//! reply and from the last reply to the end. Handshakes are counted on both sides:
//! wireguard-go's latest-handshake timestamp (polled every second by `wg show`) and
//! wgrd's "handshake complete" log lines.

use anyhow::{bail, Context, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use wgrd_tests::util::run_output;
use wgrd_tests::{
    netns_test, topo, wait_ping, Keypair, Lab, WgGo, WgGoConf, WgPeer, Wgrd, WgrdConf, WgrdTunnel,
};

/// Longest tolerated silence in the stream.
const MAX_GAP: f64 = 1.0;
/// Echo interval of the stream.
const INTERVAL: f64 = 0.05;
/// Default stream length: two REKEY_AFTER_TIMEs (120 s) after the first handshake, plus margin.
const DEFAULT_SECS: u64 = 260;

fn soak_enabled(name: &str) -> bool {
    let on = matches!(
        std::env::var("WGRD_SOAK").as_deref(),
        Ok("1") | Ok("true") | Ok("yes")
    );
    if !on {
        println!("SKIPPED {name}: soak test; set WGRD_SOAK=1 (with WGRD_NETNS_TESTS=1, as root)");
        eprintln!("SKIPPED {name}: soak test; set WGRD_SOAK=1 (with WGRD_NETNS_TESTS=1, as root)");
    }
    on
}

fn soak_secs() -> u64 {
    std::env::var("WGRD_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&s| (10..=1800).contains(&s))
        .unwrap_or(DEFAULT_SECS)
}

fn soak_interval() -> f64 {
    std::env::var("WGRD_SOAK_INTERVAL")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&i: &f64| (0.01..=5.0).contains(&i))
        .unwrap_or(INTERVAL)
}

fn soak_keepalive() -> Option<u16> {
    std::env::var("WGRD_SOAK_KEEPALIVE")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&k| k > 0)
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

/// What one ping stream showed.
#[derive(Debug)]
struct Stream {
    /// Seconds from the start of the stream to its end.
    length: f64,
    sent: u64,
    replies: u64,
    /// Longest silence and where it ended (Unix seconds).
    max_gap: f64,
    max_gap_end: f64,
    /// Every silence longer than the reporting threshold: (start, length in seconds, the
    /// reply that ended it). Its icmp_seq and time= tell echoes delayed in the path (a
    /// large RTT, no seq missing) from echoes lost (seqs missing) or never sent.
    gaps: Vec<(f64, f64, String)>,
}

/// Parse `ping -D` output; `start`/`end` bound the stream (Unix seconds); silences
/// longer than `report_over` seconds are listed.
fn parse_ping(out: &str, start: f64, end: f64, report_over: f64) -> Result<Stream> {
    let mut stamps = Vec::new();
    let mut lines = Vec::new();
    let mut sent = 0;
    for line in out.lines() {
        // "[1700000000.123456] 64 bytes from 10.2.0.2: icmp_seq=1 ttl=62 time=0.52 ms"
        if line.contains(" bytes from ") && line.contains("icmp_seq=") {
            let ts = line
                .strip_prefix('[')
                .and_then(|l| l.split(']').next())
                .context("ping -D line without timestamp")?;
            stamps.push(ts.parse::<f64>().context("ping timestamp")?);
            lines.push(line.split("] ").nth(1).unwrap_or(line).to_string());
        }
        // "5200 packets transmitted, 5200 received, 0% packet loss, time 260012ms"
        if let Some(n) = line.split(" packets transmitted").next() {
            if line.contains(" packets transmitted") {
                sent = n.trim().parse().unwrap_or(0);
            }
        }
    }
    if stamps.is_empty() {
        bail!("no echo reply at all; ping output:\n{out}");
    }
    let mut points = vec![start];
    points.extend(&stamps);
    points.push(end.max(*stamps.last().expect("not empty")));
    let mut s = Stream {
        length: end - start,
        sent,
        replies: stamps.len() as u64,
        max_gap: 0.0,
        max_gap_end: start,
        gaps: Vec::new(),
    };
    lines.push("end of stream".into());
    for (i, w) in points.windows(2).enumerate() {
        let gap = w[1] - w[0];
        if gap > s.max_gap {
            s.max_gap = gap;
            s.max_gap_end = w[1];
        }
        if gap > report_over {
            s.gaps.push((w[0], gap, lines[i].clone()));
        }
    }
    Ok(s)
}

/// wgrd on rA, wireguard-go on rB; `wgrd_dials`: wgrd has the endpoint (and starts the
/// first handshake), else wireguard-go has it.
fn soak(name: &str, wgrd_dials: bool) -> Result<()> {
    if !soak_enabled(name) {
        return Ok(());
    }
    let Some(_t) = netns_test(name, &["wireguard-go", "wg"]) else {
        return Ok(());
    };
    let secs = soak_secs();
    let interval = soak_interval();
    let max_gap = MAX_GAP + (interval - INTERVAL);
    let lab = topo::two_sites()?;
    let (ka, kb) = (Keypair::generate()?, Keypair::generate()?);
    let mut tunnel = WgrdTunnel::new(
        "to-rB",
        &kb.public,
        wgrd_dials.then_some("192.168.77.2:51820"),
    )
    .addresses(&["169.254.0.0/31"]);
    tunnel.persistent_keepalive = soak_keepalive();
    let ra = Wgrd::start(
        lab.ns("rA"),
        &WgrdConf::new("10.255.0.1", &ka)
            .tunnel(tunnel)
            .route("10.2.0.0/24", "to-rB")
            .route("10.1.0.0/24", "host"),
    )?;
    let wg = WgGo::start(
        lab.ns("rB"),
        &WgGoConf {
            interface: "wg0".into(),
            key: kb.clone(),
            listen_port: 51820,
            addresses: vec!["169.254.0.1/31".into()],
            peers: vec![WgPeer::any(
                &ka.public,
                (!wgrd_dials).then_some("192.168.77.1:51820"),
            )],
            mtu: 1420,
        },
    )?;
    lab.route("rA", "10.2.0.0/24 dev wgrd0")?;
    lab.route("rB", "10.1.0.0/24 dev wg0")?;
    // The side with the endpoint sends first and so makes the first handshake.
    if wgrd_dials {
        wait_ping(lab.ns("lanA"), "10.2.0.2", Duration::from_secs(15))?;
    } else {
        wait_ping(lab.ns("lanB"), "10.1.0.2", Duration::from_secs(15))?;
    }
    let first_handshake = wg.latest_handshake(&ka.public)?;

    let (stream, wg_handshakes) = run_stream(&lab, &wg, &ka.public, secs, interval)?;
    let wgrd_handshakes = ra.log().matches("handshake complete").count();

    println!(
        "{name}: {:.1} s stream every {interval} s, {} sent, {} replies, max gap {:.3} s (ended at {:.3}); \
         handshakes: wireguard-go saw {} ({}), wgrd logged {wgrd_handshakes}",
        stream.length,
        stream.sent,
        stream.replies,
        stream.max_gap,
        stream.max_gap_end,
        wg_handshakes.len(),
        wg_handshakes
            .iter()
            .map(|t| format!("+{}s", t.saturating_sub(first_handshake)))
            .collect::<Vec<_>>()
            .join(" "),
    );
    for (start, len, ended_by) in &stream.gaps {
        println!("  gap of {len:.3} s from {start:.3}, ended by: {ended_by}");
    }
    if stream.max_gap >= max_gap {
        bail!(
            "longest gap in the stream {:.3} s (>= {max_gap} s), ending at {:.3}; gaps over {:.2} s: {:?}",
            stream.max_gap,
            stream.max_gap_end,
            interval + 0.2,
            stream.gaps
        );
    }
    // Initial handshake plus at least two rekeys, seen by the reference peer and by wgrd.
    if secs >= DEFAULT_SECS && (wg_handshakes.len() < 3 || wgrd_handshakes < 3) {
        bail!(
            "expected >= 3 handshakes (2 rekeys) in {secs} s; wireguard-go saw {}, wgrd logged {wgrd_handshakes}",
            wg_handshakes.len()
        );
    }
    ra.stop()?;
    drop(wg);
    Ok(())
}

/// Run the ping stream lanA -> lanB for `secs` while polling wireguard-go's latest
/// handshake once a second. Returns the stream and the distinct handshake times seen.
fn run_stream(
    lab: &Lab,
    wg: &WgGo,
    peer: &str,
    secs: u64,
    interval: f64,
) -> Result<(Stream, Vec<u64>)> {
    let count = ((secs as f64) / interval).round() as u64 * 2;
    let done = AtomicBool::new(false);
    let mut handshakes: Vec<u64> = Vec::new();
    let start = now_secs();
    let out = std::thread::scope(|scope| {
        let pinger = scope.spawn(|| {
            // -w: the stream ends after `secs` whatever happens; -c only bounds the
            // count (it is never reached: ping's interval is a little over -i).
            let c = count.to_string();
            let deadline = secs.to_string();
            let i = interval.to_string();
            let mut args = lab.ns("lanA").enter_prefix();
            args.extend(
                [
                    "ping", "-n", "-D", "-i", &i, "-W", "1", "-c", &c, "-w", &deadline, "10.2.0.2",
                ]
                .map(String::from),
            );
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let res = run_output(&refs, Duration::from_secs(secs + 30), None);
            // The stream ends when ping exits, not when the handshake poller below next
            // wakes up (up to a second later, which would count as a gap).
            let end = now_secs();
            done.store(true, Ordering::Relaxed);
            (res, end)
        });
        while !done.load(Ordering::Relaxed) {
            if let Ok(t) = wg.latest_handshake(peer) {
                if t > 0 && handshakes.last() != Some(&t) {
                    handshakes.push(t);
                }
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        pinger.join().expect("ping thread")
    });
    let (out, end) = out;
    // ping exits 1 when an echo was lost; the output still has every reply.
    let out = out.context("ping stream")?;
    if !matches!(out.status.code(), Some(0) | Some(1)) {
        bail!(
            "ping stream failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = String::from_utf8_lossy(&out.stdout).into_owned();
    Ok((parse_ping(&out, start, end, interval + 0.2)?, handshakes))
}

#[test]
fn soak_rekeys_wgrd_dials() -> Result<()> {
    soak("soak_rekeys_wgrd_dials", true)
}

#[test]
fn soak_rekeys_wireguard_go_dials() -> Result<()> {
    soak("soak_rekeys_wireguard_go_dials", false)
}

#[test]
fn parses_ping_stream() {
    let out = "PING 10.2.0.2 (10.2.0.2) 56(84) bytes of data.\n\
        [100.000000] 64 bytes from 10.2.0.2: icmp_seq=1 ttl=62 time=0.5 ms\n\
        [100.050000] 64 bytes from 10.2.0.2: icmp_seq=2 ttl=62 time=0.5 ms\n\
        [101.500000] 64 bytes from 10.2.0.2: icmp_seq=31 ttl=62 time=0.5 ms\n\
        \n--- 10.2.0.2 ping statistics ---\n\
        31 packets transmitted, 3 received, 90% packet loss, time 1500ms\n";
    let s = parse_ping(out, 99.99, 101.6, 0.25).unwrap();
    assert_eq!((s.sent, s.replies), (31, 3));
    assert!((s.max_gap - 1.45).abs() < 1e-6, "{s:?}");
    assert_eq!(s.gaps.len(), 1);
    assert!(s.gaps[0].2.contains("icmp_seq=31"), "{s:?}");
    assert!(parse_ping("no replies", 0.0, 1.0, 0.25).is_err());
}
