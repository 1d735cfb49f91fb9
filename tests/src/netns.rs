//! Network namespaces as guards: [`Netns`] is one namespace, [`Lab`] a set of them
//! joined by veth pairs. Dropping either kills every process left inside the namespaces
//! and deletes them, also while unwinding from a panic.

use crate::util::{run, run_output, wait_until};
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Every namespace the harness creates starts with this, then `<pid>-<n>-<name>`, so
/// leftovers are recognizable and two test processes never collide.
pub const NS_PREFIX: &str = "wgrdt-";

/// Bound for short configuration commands (`ip`, `sysctl`, ...).
const CMD_TIMEOUT: Duration = Duration::from_secs(30);

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// One network namespace, deleted (with every process in it) on drop.
pub struct Netns {
    name: String,
    short: String,
}

impl Netns {
    /// Create a namespace `wgrdt-<pid>-<n>-<short>` with its loopback up.
    pub fn new(short: &str) -> Result<Netns> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{NS_PREFIX}{}-{n}-{short}", std::process::id());
        run("host", &["ip", "netns", "add", &name], CMD_TIMEOUT)?;
        // From here on the guard exists, so a failure below still deletes the namespace.
        let ns = Netns {
            name,
            short: short.to_string(),
        };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The full namespace name (as `ip netns list` shows it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The short name the test gave it.
    pub fn short(&self) -> &str {
        &self.short
    }

    fn what(&self) -> String {
        format!("netns {} ({})", self.short, self.name)
    }

    /// The argv prefix that runs a program inside this namespace. `nsenter` execs the
    /// program directly (unlike `ip netns exec`, which forks), so a spawned child's pid
    /// is the program's pid.
    pub fn enter_prefix(&self) -> Vec<String> {
        vec!["nsenter".into(), format!("--net=/run/netns/{}", self.name)]
    }

    /// Run `args` inside the namespace (bounded to 30 s); stdout, or an error naming
    /// the namespace with the command's stderr.
    pub fn exec(&self, args: &[&str]) -> Result<String> {
        self.exec_timeout(args, CMD_TIMEOUT)
    }

    /// [`Netns::exec`] with an explicit bound.
    pub fn exec_timeout(&self, args: &[&str], timeout: Duration) -> Result<String> {
        let mut full: Vec<String> = self.enter_prefix();
        full.extend(args.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = full.iter().map(String::as_str).collect();
        run(&self.what(), &refs, timeout)
    }

    /// Run inside the namespace and report only whether it succeeded (for polling).
    pub fn succeeds(&self, args: &[&str], timeout: Duration) -> bool {
        let mut full: Vec<String> = self.enter_prefix();
        full.extend(args.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = full.iter().map(String::as_str).collect();
        run_output(&refs, timeout, None)
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    /// `sh -c script` inside the namespace.
    pub fn sh(&self, script: &str) -> Result<String> {
        self.exec(&["sh", "-c", script])
    }

    /// `ip -n <ns> args...`.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        let mut full = vec!["ip", "-n", &self.name];
        full.extend_from_slice(args);
        run(&self.what(), &full, CMD_TIMEOUT)
    }

    /// Set a sysctl of this namespace (`net.ipv4.ip_forward`, ...). Written through
    /// /proc/sys, whose net/ part belongs to the writer's namespace.
    pub fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        self.exec(&["sh", "-c", &format!("echo {value} > {path}")])
            .with_context(|| format!("sysctl {key}={value}"))?;
        Ok(())
    }

    /// Make this namespace a router: IPv4/IPv6 forwarding on, reverse-path filtering off
    /// (paths are asymmetric while routes change). Call before creating interfaces so
    /// new ones (the daemon's TUN) inherit the `default` values.
    pub fn make_router(&self) -> Result<()> {
        self.sysctl("net.ipv4.ip_forward", "1")?;
        self.sysctl("net.ipv6.conf.all.forwarding", "1")?;
        self.sysctl("net.ipv4.conf.all.rp_filter", "0")?;
        self.sysctl("net.ipv4.conf.default.rp_filter", "0")?;
        Ok(())
    }

    /// Start a long-running program inside the namespace with stdout and stderr appended
    /// to `log`. The namespace's drop kills it if its own guard has not.
    pub fn spawn(&self, args: &[&str], log: &Path, envs: &[(&str, &str)]) -> Result<Child> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("open log {}", log.display()))?;
        let prefix = self.enter_prefix();
        let mut cmd = Command::new(&prefix[0]);
        cmd.args(&prefix[1..]).args(args);
        cmd.envs(envs.iter().copied());
        cmd.stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file);
        cmd.spawn()
            .with_context(|| format!("{}: spawn `{}`", self.what(), args.join(" ")))
    }

    /// Pids of every process whose network namespace is this one.
    pub fn pids(&self) -> Vec<i32> {
        run("host", &["ip", "netns", "pids", &self.name], CMD_TIMEOUT)
            .map(|out| {
                out.split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether interface `ifname` exists in this namespace.
    pub fn has_link(&self, ifname: &str) -> bool {
        self.ip(&["link", "show", "dev", ifname]).is_ok()
    }

    /// Wait until interface `ifname` exists and is up.
    pub fn wait_link_up(&self, ifname: &str, timeout: Duration) -> Result<()> {
        wait_until(&format!("{ifname} up in {}", self.what()), timeout, || {
            self.ip(&["-o", "link", "show", "dev", ifname])
                .map(|o| o.contains(",UP") || o.contains("<UP"))
                .unwrap_or(false)
        })
    }

    /// Wait until something listens on UDP `port` in this namespace.
    pub fn wait_udp_listen(&self, port: u16, timeout: Duration) -> Result<()> {
        let filter = format!("sport = :{port}");
        wait_until(&format!("UDP :{port} in {}", self.what()), timeout, || {
            self.exec(&["ss", "-Hlun", &filter])
                .map(|o| !o.trim().is_empty())
                .unwrap_or(false)
        })
    }

    /// Wait until something listens on TCP `port` in this namespace.
    pub fn wait_tcp_listen(&self, port: u16, timeout: Duration) -> Result<()> {
        let filter = format!("sport = :{port}");
        wait_until(&format!("TCP :{port} in {}", self.what()), timeout, || {
            self.exec(&["ss", "-Hltn", &filter])
                .map(|o| !o.trim().is_empty())
                .unwrap_or(false)
        })
    }

    fn teardown(&mut self) -> Result<()> {
        // Kill everything still inside, a few rounds in case something forks while dying.
        for _ in 0..20 {
            let pids = self.pids();
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                // SAFETY: kill(2) on processes living in our own test namespace.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        run("host", &["ip", "netns", "del", &self.name], CMD_TIMEOUT)?;
        if Path::new("/run/netns").join(&self.name).exists() {
            bail!("namespace {} still present after delete", self.name);
        }
        Ok(())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = self.teardown() {
            eprintln!("warning: cleaning up {}: {e:#}", self.name);
        }
    }
}

/// Namespaces of one test, addressed by their short names, plus the veth links between
/// them. Everything goes away on drop.
#[derive(Default)]
pub struct Lab {
    nodes: Vec<Netns>,
}

impl Lab {
    pub fn new() -> Lab {
        Lab::default()
    }

    /// Add a namespace named `short` (unique within the lab).
    pub fn add(&mut self, short: &str) -> Result<&Netns> {
        if self.nodes.iter().any(|n| n.short == short) {
            bail!("lab already has a node {short}");
        }
        self.nodes.push(Netns::new(short)?);
        Ok(self.nodes.last().expect("just pushed"))
    }

    /// Add a namespace configured as a router ([`Netns::make_router`]).
    pub fn add_router(&mut self, short: &str) -> Result<&Netns> {
        self.add(short)?.make_router()?;
        Ok(self.ns(short))
    }

    /// The namespace called `short`; panics on a name the test never added (a bug in
    /// the test, not a runtime condition).
    pub fn ns(&self, short: &str) -> &Netns {
        self.nodes
            .iter()
            .find(|n| n.short == short)
            .unwrap_or_else(|| panic!("no node {short} in the lab"))
    }

    /// Full names of every namespace in the lab.
    pub fn names(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.name.clone()).collect()
    }

    /// A veth pair: `a_if` in `a`, `b_if` in `b`, both up. Both ends are created
    /// directly inside their namespaces, so the host never sees them.
    pub fn link(&self, a: &str, a_if: &str, b: &str, b_if: &str) -> Result<()> {
        let (na, nb) = (self.ns(a), self.ns(b));
        run(
            "host",
            &[
                "ip", "link", "add", a_if, "netns", &na.name, "type", "veth", "peer", "name", b_if,
                "netns", &nb.name,
            ],
            CMD_TIMEOUT,
        )
        .with_context(|| format!("link {a}:{a_if} <-> {b}:{b_if}"))?;
        na.ip(&["link", "set", a_if, "up"])?;
        nb.ip(&["link", "set", b_if, "up"])?;
        Ok(())
    }

    /// Add `cidr` to interface `ifname` of node `ns`.
    pub fn addr(&self, ns: &str, ifname: &str, cidr: &str) -> Result<()> {
        self.ns(ns).ip(&["addr", "add", cidr, "dev", ifname])?;
        Ok(())
    }

    /// `ip route add <spec>` in node `ns`, e.g. `route("lanA", "default via 10.1.0.1")`.
    pub fn route(&self, ns: &str, spec: &str) -> Result<()> {
        let mut args = vec!["route", "add"];
        args.extend(spec.split_whitespace());
        self.ns(ns).ip(&args)?;
        Ok(())
    }
}

/// Namespaces that carry the harness prefix and this process's pid (leftovers check).
pub fn own_namespaces() -> Vec<String> {
    let prefix = format!("{NS_PREFIX}{}-", std::process::id());
    list_namespaces()
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .collect()
}

/// Every namespace name on the machine.
pub fn list_namespaces() -> Vec<String> {
    run("host", &["ip", "netns", "list"], CMD_TIMEOUT)
        .map(|out| {
            out.lines()
                .filter_map(|l| l.split_whitespace().next().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
