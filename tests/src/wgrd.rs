//! Launching the `wgrd` daemon under test inside a namespace.
//!
//! The binary is `$WGRD_BIN` if set; otherwise the harness runs `cargo build -p wgrd`
//! once per test process (same profile and target dir as the test itself), so a test
//! never runs a stale daemon.

use crate::netns::Netns;
use crate::util::{terminate, wait_until};
use crate::wggo::Keypair;
use anyhow::{anyhow, bail, Context, Result};
use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::OnceLock;
use std::time::Duration;

/// How long a starting daemon may take to open its UDP port and TUN.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long SIGTERM may take to stop it.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The `wgrd` binary to test (built on first use unless `WGRD_BIN` is set).
pub fn wgrd_bin() -> Result<PathBuf> {
    static BIN: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| find_or_build("WGRD_BIN", "wgrd", "wgrd").map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!(e))
}

/// The `wgrctl` binary (`$WGRCTL_BIN`, else built on first use like [`wgrd_bin`]).
pub fn wgrctl_bin() -> Result<PathBuf> {
    static BIN: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| {
        find_or_build("WGRCTL_BIN", "wgrctl", "wgrctl").map_err(|e| format!("{e:#}"))
    })
    .clone()
    .map_err(|e| anyhow!(e))
}

/// `wgrctl --socket SOCKET --json ARGS...`, parsed.
pub fn wgrctl_json(socket: &Path, args: &[&str]) -> Result<serde_json::Value> {
    let bin = wgrctl_bin()?;
    let bin = bin.to_string_lossy();
    let socket = socket.to_string_lossy();
    let mut all = vec![&*bin, "--socket", &*socket, "--json"];
    all.extend_from_slice(args);
    let out = crate::util::run("wgrctl", &all, Duration::from_secs(10))?;
    serde_json::from_str(&out).with_context(|| format!("wgrctl {args:?}: not JSON: {out}"))
}

fn find_or_build(env: &str, package: &str, name: &str) -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os(env) {
        let bin = PathBuf::from(bin);
        if !bin.is_file() {
            bail!("{env}={} is not a file", bin.display());
        }
        return Ok(bin);
    }
    // The test executable lives in <target>/<profile>/deps/; wgrd goes to <target>/<profile>/.
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .context("locating the target dir from the test executable")?;
    let target_dir = profile_dir.parent().context("target dir")?;
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("workspace root")?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args(["build", "-q", "-p", package, "--bin", name])
        .env("CARGO_TARGET_DIR", target_dir);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let out = cmd
        .output()
        .with_context(|| format!("running cargo build -p {package}"))?;
    if !out.status.success() {
        bail!(
            "cargo build -p {package} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let bin = profile_dir.join(name);
    if !bin.is_file() {
        bail!("built {name} but {} is missing", bin.display());
    }
    Ok(bin)
}

/// The `[host]` section.
#[derive(Clone, Debug)]
pub struct WgrdHost {
    pub interface: String,
    pub addresses: Vec<String>,
    pub export_routes: bool,
    pub mtu: u16,
}

/// One `[[tunnel]]`.
#[derive(Clone, Debug)]
pub struct WgrdTunnel {
    pub name: String,
    pub peer_public_key: String,
    pub endpoint: Option<String>,
    pub persistent_keepalive: Option<u16>,
    pub addresses: Vec<String>,
    pub mtu: Option<u16>,
}

impl WgrdTunnel {
    pub fn new(name: &str, peer_public_key: &str, endpoint: Option<&str>) -> WgrdTunnel {
        WgrdTunnel {
            name: name.into(),
            peer_public_key: peer_public_key.into(),
            endpoint: endpoint.map(str::to_string),
            persistent_keepalive: None,
            addresses: Vec::new(),
            mtu: None,
        }
    }

    pub fn addresses(mut self, addrs: &[&str]) -> Self {
        self.addresses = addrs.iter().map(|s| s.to_string()).collect();
        self
    }

    pub fn keepalive(mut self, secs: u16) -> Self {
        self.persistent_keepalive = Some(secs);
        self
    }
}

/// A wgrd configuration, rendered to TOML by [`WgrdConf::to_toml`].
#[derive(Clone, Debug)]
pub struct WgrdConf {
    pub router_id: String,
    pub key: Keypair,
    pub listen_port: u16,
    pub host: Option<WgrdHost>,
    pub tunnels: Vec<WgrdTunnel>,
    /// (prefix, via): via is a tunnel name, "host" or "blackhole".
    pub routes: Vec<(String, String)>,
}

impl WgrdConf {
    /// A router with a host TUN `wgrd0` holding `<router_id>/32`, no route export
    /// (tests add the kernel routes toward `wgrd0` themselves unless they test export).
    pub fn new(router_id: &str, key: &Keypair) -> WgrdConf {
        WgrdConf {
            router_id: router_id.into(),
            key: key.clone(),
            listen_port: 51820,
            host: Some(WgrdHost {
                interface: "wgrd0".into(),
                addresses: vec![format!("{router_id}/32")],
                export_routes: false,
                mtu: 1420,
            }),
            tunnels: Vec::new(),
            routes: Vec::new(),
        }
    }

    pub fn tunnel(mut self, t: WgrdTunnel) -> Self {
        self.tunnels.push(t);
        self
    }

    pub fn route(mut self, prefix: &str, via: &str) -> Self {
        self.routes.push((prefix.into(), via.into()));
        self
    }

    pub fn export_routes(mut self, on: bool) -> Self {
        if let Some(h) = &mut self.host {
            h.export_routes = on;
        }
        self
    }

    /// The config file text; the private key is referenced as `key_file`.
    pub fn to_toml(&self, key_file: &Path) -> String {
        let q = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
        let list = |v: &[String]| {
            let items: Vec<String> = v.iter().map(|s| q(s)).collect();
            format!("[{}]", items.join(", "))
        };
        let mut s = String::new();
        let _ = writeln!(s, "[router]");
        let _ = writeln!(s, "router-id = {}", q(&self.router_id));
        let _ = writeln!(s, "private-key-file = {}", q(&key_file.to_string_lossy()));
        let _ = writeln!(s, "listen-port = {}", self.listen_port);
        if let Some(h) = &self.host {
            let _ = writeln!(s, "\n[host]");
            let _ = writeln!(s, "interface = {}", q(&h.interface));
            let _ = writeln!(s, "addresses = {}", list(&h.addresses));
            let _ = writeln!(s, "export-routes = {}", h.export_routes);
            let _ = writeln!(s, "mtu = {}", h.mtu);
        }
        for t in &self.tunnels {
            let _ = writeln!(s, "\n[[tunnel]]");
            let _ = writeln!(s, "name = {}", q(&t.name));
            let _ = writeln!(s, "peer-public-key = {}", q(&t.peer_public_key));
            if let Some(ep) = &t.endpoint {
                let _ = writeln!(s, "endpoint = {}", q(ep));
            }
            if let Some(k) = t.persistent_keepalive {
                let _ = writeln!(s, "persistent-keepalive = {k}");
            }
            if !t.addresses.is_empty() {
                let _ = writeln!(s, "addresses = {}", list(&t.addresses));
            }
            if let Some(m) = t.mtu {
                let _ = writeln!(s, "mtu = {m}");
            }
        }
        for (prefix, via) in &self.routes {
            let _ = writeln!(s, "\n[[route]]\nprefix = {}\nvia = {}", q(prefix), q(via));
        }
        s
    }
}

/// A running `wgrd run -c FILE` inside a namespace. Drop sends SIGTERM (SIGKILL after
/// 10 s) and prints the log (libtest shows it for failing tests); [`Wgrd::stop`] does the same and
/// also checks that the daemon removed its TUN.
pub struct Wgrd {
    ns_name: String,
    ns_short: String,
    child: Option<Child>,
    dir: tempfile::TempDir,
    tun: Option<String>,
}

impl Wgrd {
    /// Write the key and config, start the daemon in `ns`, wait until its UDP port is
    /// open and its TUN (if any) is up.
    pub fn start(ns: &Netns, conf: &WgrdConf) -> Result<Wgrd> {
        let dir = tempfile::Builder::new().prefix("wgrdt-wgrd-").tempdir()?;
        let key_file = dir.path().join("router.key");
        std::fs::write(&key_file, format!("{}\n", conf.key.private))?;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600))?;
        let toml = conf.to_toml(&key_file);
        let mut w = Wgrd::start_raw_in(ns, &toml, dir)?;
        w.tun = conf.host.as_ref().map(|h| h.interface.clone());
        let res: Result<()> = (|| {
            ns.wait_udp_listen(conf.listen_port, START_TIMEOUT)?;
            if let Some(tun) = &w.tun {
                ns.wait_link_up(tun, START_TIMEOUT)?;
            }
            Ok(())
        })();
        if let Err(e) = res {
            let status = w.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            return Err(e.context(format!(
                "wgrd in {} did not come up (exited: {status:?})\nconfig:\n{toml}\nlog:\n{}",
                ns.short(),
                w.log()
            )));
        }
        Ok(w)
    }

    /// Start with a config text of the caller's (paths in it are the caller's business).
    pub fn start_raw(ns: &Netns, toml: &str) -> Result<Wgrd> {
        let dir = tempfile::Builder::new().prefix("wgrdt-wgrd-").tempdir()?;
        Wgrd::start_raw_in(ns, toml, dir)
    }

    fn start_raw_in(ns: &Netns, toml: &str, dir: tempfile::TempDir) -> Result<Wgrd> {
        let bin = wgrd_bin()?;
        let conf_path = dir.path().join("wgrd.toml");
        std::fs::write(&conf_path, toml)?;
        let log = dir.path().join("wgrd.log");
        let bin_s = bin.to_string_lossy().to_string();
        let conf_s = conf_path.to_string_lossy().to_string();
        let child = ns.spawn(
            &[&bin_s, "run", "-c", &conf_s],
            &log,
            &[
                ("RUST_LOG", "info"),
                ("RUST_BACKTRACE", "1"),
                ("NO_COLOR", "1"),
            ],
        )?;
        Ok(Wgrd {
            ns_name: ns.name().to_string(),
            ns_short: ns.short().to_string(),
            child: Some(child),
            dir,
            tun: None,
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the daemon is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("wgrd.log")
    }

    /// The config file path (for `wgrd check` style tests).
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("wgrd.toml")
    }

    /// SIGTERM, wait, and check the exit was clean: exit status 0 within 10 s and the
    /// TUN gone.
    pub fn stop(mut self) -> Result<()> {
        let mut child = self.child.take().context("already stopped")?;
        if let Ok(Some(status)) = child.try_wait() {
            bail!(
                "wgrd in {} had already exited ({status}); log:\n{}",
                self.ns_short,
                self.log()
            );
        }
        let in_time = terminate(&mut child, libc::SIGTERM, STOP_TIMEOUT);
        if !in_time {
            bail!(
                "wgrd in {} ignored SIGTERM for {STOP_TIMEOUT:?} (killed); log:\n{}",
                self.ns_short,
                self.log()
            );
        }
        let status = child.wait()?;
        if !status.success() {
            bail!(
                "wgrd in {} exited with {status} on SIGTERM; log:\n{}",
                self.ns_short,
                self.log()
            );
        }
        if let Some(tun) = &self.tun {
            let ns_path = format!("/run/netns/{}", self.ns_name);
            let gone = wait_until("TUN removal", Duration::from_secs(2), || {
                !Command::new("ip")
                    .args(["-n", &self.ns_name, "link", "show", "dev", tun])
                    .output()
                    .map(|o| o.status.success())
                    .unwrap_or(false)
            });
            if gone.is_err() && Path::new(&ns_path).exists() {
                bail!("wgrd in {} left its TUN {tun} behind", self.ns_short);
            }
        }
        Ok(())
    }
}

impl Drop for Wgrd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child, libc::SIGTERM, STOP_TIMEOUT);
        }
        // libtest captures this and shows it only for a failing test (a test that
        // returns Err has already dropped its daemons, so "only when panicking" would
        // hide the log exactly when it is needed).
        eprintln!(
            "---- wgrd log ({}) ----\n{}\n---- end of wgrd log ----",
            self.ns_short,
            self.log()
        );
    }
}
