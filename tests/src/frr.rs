//! FRR (zebra + ospfd, or zebra + bgpd) inside a namespace, for interop tests.
//!
//! FRR daemons refuse to run as root, so they run as the `frr` user with their own
//! config, pid, zserv and vty directory (a temp dir that user can reach); several
//! instances in several namespaces never share a socket. They are children of the test
//! (foreground, logging to a file): [`Frr`]'s drop kills them, and so does the
//! namespace's if the guard was leaked.

use crate::netns::Netns;
use crate::util::{run, wait_until};
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

/// Where Debian installs the daemons.
pub const FRR_LIBEXEC: &str = "/usr/lib/frr";
const START_TIMEOUT: Duration = Duration::from_secs(15);
const VTYSH_TIMEOUT: Duration = Duration::from_secs(10);

/// zebra and ospfd (or bgpd) of one namespace; killed on drop (logs printed when
/// panicking).
pub struct Frr {
    children: Vec<(&'static str, Child)>,
    dir: tempfile::TempDir,
    ns: String,
}

/// The FRR version of the installed ospfd (like "8.4.4"), if FRR is installed.
pub fn frr_version() -> Option<String> {
    let bin = Path::new(FRR_LIBEXEC).join("ospfd");
    let out = run(
        "host",
        &[&bin.to_string_lossy(), "--version"],
        VTYSH_TIMEOUT,
    )
    .ok()?;
    out.lines()
        .next()?
        .split_whitespace()
        .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .map(str::to_owned)
}

fn chown_frr(path: &Path) -> Result<()> {
    run(
        "host",
        &["chown", "frr:frr", &path.to_string_lossy()],
        VTYSH_TIMEOUT,
    )?;
    Ok(())
}

impl Frr {
    /// Start zebra, then ospfd with `ospfd_conf` (FRR's own config language), in `ns`.
    /// Returns once ospfd answers on its vty socket.
    pub fn start_ospf(ns: &Netns, ospfd_conf: &str) -> Result<Frr> {
        Frr::start_with(ns, "ospfd", ospfd_conf)
    }

    /// Start zebra, then bgpd with `bgpd_conf` (listening on 179 of `ns`). Returns once
    /// bgpd answers on its vty socket.
    pub fn start_bgp(ns: &Netns, bgpd_conf: &str) -> Result<Frr> {
        Frr::start_with(ns, "bgpd", bgpd_conf)
    }

    fn start_with(ns: &Netns, name: &'static str, daemon_conf: &str) -> Result<Frr> {
        let dir = tempfile::Builder::new().prefix("wgrdt-frr-").tempdir()?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
        chown_frr(dir.path())?;
        let zebra_conf = dir.path().join("zebra.conf");
        std::fs::write(&zebra_conf, "hostname zebra\n")?;
        let daemon_path = dir.path().join(format!("{name}.conf"));
        std::fs::write(&daemon_path, daemon_conf)?;
        for f in [&zebra_conf, &daemon_path] {
            std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o640))?;
            chown_frr(f)?;
        }
        let mut frr = Frr {
            children: vec![],
            dir,
            ns: ns.name().to_string(),
        };
        frr.daemon(ns, "zebra", &zebra_conf)?;
        let zserv = frr.zserv();
        wait_until("zebra's zserv socket", START_TIMEOUT, || zserv.exists())
            .with_context(|| format!("zebra log:\n{}", frr.log()))?;
        frr.daemon(ns, name, &daemon_path)?;
        let vty = frr.dir.path().join(format!("{name}.vty"));
        wait_until("the daemon's vty socket", START_TIMEOUT, || vty.exists())
            .with_context(|| format!("frr logs:\n{}", frr.log()))?;
        Ok(frr)
    }

    fn zserv(&self) -> PathBuf {
        self.dir.path().join("zserv.api")
    }

    fn daemon(&mut self, ns: &Netns, name: &'static str, conf: &Path) -> Result<()> {
        let d = self.dir.path();
        let bin = Path::new(FRR_LIBEXEC).join(name);
        let log = d.join(format!("{name}.out"));
        let args: Vec<String> = vec![
            bin.to_string_lossy().into(),
            "-u".into(),
            "frr".into(),
            "-g".into(),
            "frr".into(),
            "-f".into(),
            conf.to_string_lossy().into(),
            "-i".into(),
            d.join(format!("{name}.pid")).to_string_lossy().into(),
            "-z".into(),
            self.zserv().to_string_lossy().into(),
            "--vty_socket".into(),
            d.to_string_lossy().into(),
            // No TCP vty.
            "-P".into(),
            "0".into(),
            "--log".into(),
            format!("file:{}", d.join(format!("{name}.log")).display()),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let child = ns.spawn(&args, &log, &[])?;
        self.children.push((name, child));
        Ok(())
    }

    /// One `vtysh -c` command (or several, each its own `-c`) against this instance.
    pub fn vtysh(&self, cmds: &[&str]) -> Result<String> {
        let dir = self.dir.path().to_string_lossy().to_string();
        let mut args = vec!["vtysh", "--vty_socket", &dir];
        for c in cmds {
            args.push("-c");
            args.push(c);
        }
        run(&self.ns, &args, VTYSH_TIMEOUT)
    }

    /// A `show ... json` command, parsed.
    pub fn json(&self, cmd: &str) -> Result<Value> {
        let out = self.vtysh(&[cmd])?;
        serde_json::from_str(&out).with_context(|| format!("`{cmd}` gave no JSON: {out}"))
    }

    /// Configuration commands, in `configure terminal` mode.
    pub fn configure(&self, lines: &[&str]) -> Result<String> {
        let mut cmds = vec!["configure terminal"];
        cmds.extend_from_slice(lines);
        let out = self.vtysh(&cmds)?;
        if out.contains("% ") {
            bail!("FRR refused {lines:?}: {out}");
        }
        Ok(out)
    }

    /// The states of ospfd's neighbors, like "Full/-" or "Full/DROther" by router id.
    pub fn ospf_neighbor_states(&self) -> Result<Vec<(String, String)>> {
        let v = self.json("show ip ospf neighbor json")?;
        let mut out = vec![];
        if let Some(map) = v.get("neighbors").and_then(Value::as_object) {
            for (rid, list) in map {
                for n in list.as_array().into_iter().flatten() {
                    let state = n
                        .get("nbrState")
                        .or_else(|| n.get("state"))
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    out.push((rid.clone(), state.to_owned()));
                }
            }
        }
        Ok(out)
    }

    /// ospfd's database as (type, link state id, advertising router, sequence number).
    pub fn ospf_lsdb(&self) -> Result<Vec<(u8, String, String, u32)>> {
        let v = self.json("show ip ospf database json")?;
        let mut out = vec![];
        collect_lsas(&v, None, &mut out);
        out.sort();
        Ok(out)
    }

    /// Everything the daemons logged so far.
    pub fn log(&self) -> String {
        let mut s = String::new();
        for (name, _) in &self.children {
            for ext in ["out", "log"] {
                let p = self.dir.path().join(format!("{name}.{ext}"));
                if let Ok(text) = std::fs::read_to_string(&p) {
                    s.push_str(&format!("--- {name}.{ext} ---\n{text}"));
                }
            }
        }
        s
    }
}

/// FRR's JSON database lists LSAs under keys named by type ("routerLinkStates",
/// "asExternalLinkStates", ...); walk it whatever the nesting (areas, the AS scope).
fn collect_lsas(v: &Value, ty: Option<u8>, out: &mut Vec<(u8, String, String, u32)>) {
    match v {
        Value::Object(map) => {
            let id = map.get("lsId").and_then(Value::as_str);
            let adv = map.get("advertisedRouter").and_then(Value::as_str);
            let seq = map
                .get("sequenceNumber")
                .and_then(Value::as_str)
                .and_then(|s| u32::from_str_radix(s.trim_start_matches("0x"), 16).ok());
            if let (Some(ty), Some(id), Some(adv), Some(seq)) = (ty, id, adv, seq) {
                out.push((ty, id.to_owned(), adv.to_owned(), seq));
                return;
            }
            for (k, child) in map {
                collect_lsas(child, lsa_type_of_key(k).or(ty), out);
            }
        }
        Value::Array(items) => {
            for child in items {
                collect_lsas(child, ty, out);
            }
        }
        _ => {}
    }
}

fn lsa_type_of_key(key: &str) -> Option<u8> {
    Some(match key {
        "routerLinkStates" => 1,
        "networkLinkStates" => 2,
        "summaryLinkStates" => 3,
        "asbrSummaryLinkStates" => 4,
        "asExternalLinkStates" => 5,
        "nssaExternalLinkStates" => 7,
        _ => return None,
    })
}

impl Drop for Frr {
    fn drop(&mut self) {
        // ospfd first, so zebra is still there to take its routes out of the kernel.
        for (_, child) in self.children.iter_mut().rev() {
            crate::util::terminate(child, libc::SIGTERM, Duration::from_secs(5));
        }
        if std::thread::panicking() {
            eprintln!("--- FRR logs ({}) ---\n{}", self.ns, self.log());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsas_are_found_at_any_depth_with_their_type() {
        let v: Value = serde_json::from_str(
            r#"{"routerId":"10.255.0.2","areas":{"0.0.0.0":{"routerLinkStates":[
                {"lsId":"10.255.0.2","advertisedRouter":"10.255.0.2","sequenceNumber":"80000003"}]}},
               "asExternalLinkStates":[
                {"lsId":"192.168.222.0","advertisedRouter":"10.255.0.2","sequenceNumber":"80000001"}]}"#,
        )
        .unwrap();
        let mut out = vec![];
        collect_lsas(&v, None, &mut out);
        out.sort();
        assert_eq!(
            out,
            vec![
                (1, "10.255.0.2".into(), "10.255.0.2".into(), 0x8000_0003),
                (5, "192.168.222.0".into(), "10.255.0.2".into(), 0x8000_0001),
            ]
        );
    }
}
