//! Bounded traffic between namespaces of the test: ping and an iperf3 TCP transfer.

use crate::netns::Netns;
use crate::util::{terminate, wait_until};
use anyhow::{bail, Context, Result};
use std::time::Duration;

/// Ping `dst` from `from` until one echo comes back (each try bounded to 1 s), for at
/// most `timeout`: the first packets may wait for a handshake.
pub fn wait_ping(from: &Netns, dst: &str, timeout: Duration) -> Result<()> {
    wait_until(&format!("ping {} -> {dst}", from.short()), timeout, || {
        from.succeeds(
            &["ping", "-n", "-c", "1", "-W", "1", dst],
            Duration::from_secs(3),
        )
    })
}

/// `count` pings from `from` to `dst` that must all be answered.
pub fn ping(from: &Netns, dst: &str, count: u32) -> Result<()> {
    let c = count.to_string();
    let out = from
        .exec_timeout(
            &["ping", "-n", "-c", &c, "-W", "1", "-i", "0.2", dst],
            Duration::from_secs(u64::from(count) + 5),
        )
        .with_context(|| format!("ping {} -> {dst}", from.short()))?;
    if !out.contains(" 0% packet loss") {
        bail!("ping {} -> {dst} lost packets:\n{out}", from.short());
    }
    Ok(())
}

/// Result of one iperf3 run.
#[derive(Debug, Clone, Copy)]
pub struct Iperf {
    /// Bits per second the receiver got.
    pub bits_per_second: f64,
    pub bytes: u64,
}

impl Iperf {
    pub fn gbps(&self) -> f64 {
        self.bits_per_second / 1e9
    }
}

/// A single-stream iperf3 TCP transfer of `secs` seconds from `client` to the server
/// started in `server` on `server_addr`. Bounded: the server serves one test only
/// (`-1`) and everything runs under a timeout.
pub fn iperf(client: &Netns, server: &Netns, server_addr: &str, secs: u32) -> Result<Iperf> {
    let dir = tempfile::Builder::new().prefix("wgrdt-iperf-").tempdir()?;
    let log = dir.path().join("iperf3-server.log");
    let mut srv = server.spawn(
        &["iperf3", "-s", "-1", "-B", server_addr, "-p", "5201"],
        &log,
        &[],
    )?;
    let result = (|| {
        server.wait_tcp_listen(5201, Duration::from_secs(5))?;
        let t = secs.to_string();
        let out = client
            .exec_timeout(
                &[
                    "iperf3",
                    "-c",
                    server_addr,
                    "-p",
                    "5201",
                    "-t",
                    &t,
                    "-J",
                    "--connect-timeout",
                    "3000",
                ],
                Duration::from_secs(u64::from(secs) + 20),
            )
            .with_context(|| format!("iperf3 {} -> {server_addr}", client.short()))?;
        parse_iperf_json(&out)
    })();
    terminate(&mut srv, libc::SIGTERM, Duration::from_secs(2));
    result.with_context(|| {
        format!(
            "iperf3 server log: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    })
}

fn parse_iperf_json(out: &str) -> Result<Iperf> {
    let v: serde_json::Value = serde_json::from_str(out).context("iperf3 JSON")?;
    if let Some(err) = v.get("error").and_then(|e| e.as_str()) {
        bail!("iperf3: {err}");
    }
    let sum = &v["end"]["sum_received"];
    let bps = sum["bits_per_second"]
        .as_f64()
        .context("iperf3 JSON: no end.sum_received.bits_per_second")?;
    let bytes = sum["bytes"].as_u64().unwrap_or(0);
    if bytes == 0 {
        bail!("iperf3 transferred nothing");
    }
    Ok(Iperf {
        bits_per_second: bps,
        bytes,
    })
}

/// An HTTP/1.0 server on ADDR:PORT answering every request with "TAG PEER-ADDRESS": the
/// client sees who answered, and from which source address the server saw it.
pub const WHO_SERVER: &str = r#"
import socket, sys
addr, port, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((addr, port))
s.listen(8)
while True:
    c, peer = s.accept()
    c.settimeout(5)
    try:
        c.recv(4096)
        c.sendall(("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n%s %s\n" % (tag, peer[0])).encode())
    except OSError:
        pass
    c.close()
"#;

/// Start [`WHO_SERVER`] in `ns` and wait until it listens.
pub fn who_server(
    ns: &Netns,
    addr: &str,
    port: u16,
    tag: &str,
    dir: &std::path::Path,
) -> Result<()> {
    let log = dir.join(format!("who-{tag}.log"));
    let port_s = port.to_string();
    ns.spawn(
        &["/usr/bin/python3", "-c", WHO_SERVER, addr, &port_s, tag],
        &log,
        &[],
    )?;
    ns.wait_tcp_listen(port, Duration::from_secs(5))
}

/// `curl` from `ns`: the body, or an error when no answer came within 3 s.
pub fn fetch(ns: &Netns, url: &str) -> Result<String> {
    Ok(ns
        .exec_timeout(
            &["curl", "-s", "--max-time", "3", url],
            Duration::from_secs(6),
        )?
        .trim()
        .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_iperf_json() {
        let j = r#"{"end":{"sum_received":{"bits_per_second":3.1e8,"bytes":77}}}"#;
        let r = parse_iperf_json(j).unwrap();
        assert_eq!(r.bytes, 77);
        assert!((r.gbps() - 0.31).abs() < 1e-9);
        assert!(parse_iperf_json(r#"{"error":"unable to connect"}"#).is_err());
    }
}
