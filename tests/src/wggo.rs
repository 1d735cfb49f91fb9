//! The reference peer: Debian's `wireguard-go`, configured with `wg setconf`.
//!
//! wireguard-go keeps its UAPI socket in /run/wireguard, which is shared by every network
//! namespace, so each instance runs in a private mount namespace with a tmpfs of its own
//! on /run; `wg` then reaches it with `nsenter -t PID -m -n`.

use crate::netns::Netns;
use crate::util::{run, run_stdin, terminate, wait_until};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::Child;
use std::time::Duration;

const CMD_TIMEOUT: Duration = Duration::from_secs(30);

/// A WireGuard key pair in base64, made by `wg genkey` / `wg pubkey`.
#[derive(Clone, Debug)]
pub struct Keypair {
    pub private: String,
    pub public: String,
}

impl Keypair {
    pub fn generate() -> Result<Keypair> {
        let private = run("host", &["wg", "genkey"], CMD_TIMEOUT)?
            .trim()
            .to_string();
        let public = run_stdin("host", &["wg", "pubkey"], &private, CMD_TIMEOUT)?
            .trim()
            .to_string();
        Ok(Keypair { private, public })
    }
}

/// One `[Peer]` of a wireguard-go interface.
#[derive(Clone, Debug)]
pub struct WgPeer {
    pub public_key: String,
    /// `host:port`; None for a peer that dials in.
    pub endpoint: Option<String>,
    pub allowed_ips: Vec<String>,
    pub persistent_keepalive: Option<u16>,
}

impl WgPeer {
    /// A peer with allowed IPs 0.0.0.0/0 and ::/0, like every wgrd tunnel.
    pub fn any(public_key: &str, endpoint: Option<&str>) -> WgPeer {
        WgPeer {
            public_key: public_key.to_string(),
            endpoint: endpoint.map(str::to_string),
            allowed_ips: vec!["0.0.0.0/0".into(), "::/0".into()],
            persistent_keepalive: None,
        }
    }
}

/// What to give a wireguard-go instance.
#[derive(Clone, Debug)]
pub struct WgGoConf {
    pub interface: String,
    pub key: Keypair,
    pub listen_port: u16,
    /// Addresses on the TUN, e.g. "169.254.0.1/31".
    pub addresses: Vec<String>,
    pub peers: Vec<WgPeer>,
    pub mtu: u16,
}

impl WgGoConf {
    /// The `wg setconf` text.
    pub fn setconf_text(&self) -> String {
        let mut s = format!(
            "[Interface]\nPrivateKey = {}\nListenPort = {}\n",
            self.key.private, self.listen_port
        );
        for p in &self.peers {
            s += &format!(
                "\n[Peer]\nPublicKey = {}\nAllowedIPs = {}\n",
                p.public_key,
                p.allowed_ips.join(", ")
            );
            if let Some(ep) = &p.endpoint {
                s += &format!("Endpoint = {ep}\n");
            }
            if let Some(k) = p.persistent_keepalive {
                s += &format!("PersistentKeepalive = {k}\n");
            }
        }
        s
    }
}

/// A running wireguard-go, killed on drop.
pub struct WgGo {
    ns_name: String,
    pub interface: String,
    child: Child,
    dir: tempfile::TempDir,
}

impl WgGo {
    /// Start wireguard-go in `ns`, configure it with `wg setconf`, give its TUN the
    /// addresses and bring it up. Routes are the caller's (`lab.route`).
    pub fn start(ns: &Netns, conf: &WgGoConf) -> Result<WgGo> {
        let dir = tempfile::Builder::new().prefix("wgrdt-wggo-").tempdir()?;
        let log = dir.path().join("wireguard-go.log");
        // The tmpfs goes over all of /run (not /run/wireguard, which may not exist on
        // the host); the mount namespace is a slave, so nothing leaks back to the host.
        let script = format!(
            "mount -t tmpfs wgrdt /run && mkdir /run/wireguard && exec wireguard-go -f {}",
            conf.interface
        );
        let child = ns.spawn(
            &[
                "unshare",
                "-m",
                "--propagation",
                "slave",
                "sh",
                "-c",
                &script,
            ],
            &log,
            &[
                ("WG_PROCESS_FOREGROUND", "1"),
                ("LOG_LEVEL", "error"),
                ("WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD", "1"),
            ],
        )?;
        let mut wg = WgGo {
            ns_name: ns.name().to_string(),
            interface: conf.interface.clone(),
            child,
            dir,
        };
        let sock = format!(
            "/proc/{}/root/run/wireguard/{}.sock",
            wg.pid(),
            conf.interface
        );
        wait_until(
            &format!("wireguard-go UAPI socket in {}", ns.short()),
            Duration::from_secs(10),
            || {
                if let Ok(Some(_)) = wg.child.try_wait() {
                    return true; // reported below
                }
                std::path::Path::new(&sock).exists()
            },
        )?;
        if let Ok(Some(status)) = wg.child.try_wait() {
            bail!(
                "wireguard-go in {} exited early ({status}); log:\n{}",
                ns.short(),
                wg.log()
            );
        }
        wg.setconf(conf)?;
        for a in &conf.addresses {
            ns.ip(&["addr", "add", a, "dev", &conf.interface])?;
        }
        ns.ip(&[
            "link",
            "set",
            &conf.interface,
            "mtu",
            &conf.mtu.to_string(),
            "up",
        ])?;
        Ok(wg)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Replace the configuration (`wg setconf`).
    pub fn setconf(&self, conf: &WgGoConf) -> Result<()> {
        let path = self.dir.path().join("wg.conf");
        std::fs::write(&path, conf.setconf_text())?;
        let p = path.to_string_lossy().to_string();
        self.wg(&["setconf", &self.interface, &p])?;
        Ok(())
    }

    /// Run `wg args...` against this instance (its mount and network namespaces).
    pub fn wg(&self, args: &[&str]) -> Result<String> {
        let pid = self.pid().to_string();
        let mut full = vec!["nsenter", "-t", &pid, "-m", "-n", "wg"];
        full.extend_from_slice(args);
        run(
            &format!("wireguard-go in {}", self.ns_name),
            &full,
            CMD_TIMEOUT,
        )
    }

    /// Seconds since the epoch of the latest handshake with `peer` (0 = none yet).
    pub fn latest_handshake(&self, peer: &str) -> Result<u64> {
        let out = self.wg(&["show", &self.interface, "latest-handshakes"])?;
        for line in out.lines() {
            let mut it = line.split_whitespace();
            if it.next() == Some(peer) {
                return it
                    .next()
                    .unwrap_or("0")
                    .parse()
                    .context("latest-handshakes");
            }
        }
        bail!("peer {peer} not configured on {}", self.interface)
    }

    /// Wait for a handshake with `peer`.
    pub fn wait_handshake(&self, peer: &str, timeout: Duration) -> Result<()> {
        wait_until(
            &format!("handshake on wireguard-go in {}", self.ns_name),
            timeout,
            || self.latest_handshake(peer).map(|t| t > 0).unwrap_or(false),
        )
    }

    /// The process log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("wireguard-go.log")
    }
}

impl Drop for WgGo {
    fn drop(&mut self) {
        terminate(&mut self.child, libc::SIGTERM, Duration::from_secs(3));
        // Captured by libtest; shown only for a failing test.
        eprintln!(
            "---- wireguard-go log ({}) ----\n{}",
            self.ns_name,
            self.log()
        );
    }
}
