//! Masquerading and port forwarding from the config (`[nat]`), done by the host kernel
//! through nftables in one table of wgrd's own, `inet wgrd`.
//!
//! Owns only that table: it is created (or replaced) in one `nft -f` transaction when a
//! config with NAT rules is applied, replaced atomically when the rules change (a failed
//! replace leaves the previous table in force), and deleted when the rules go away or wgrd
//! stops. Tables and rules anyone else made are never listed, changed or flushed; the
//! only commands run are `nft -f -` with batches naming `inet wgrd`, and
//! `nft -j list table inet wgrd` for counters. Also checks (or, with `set-sysctls`, sets)
//! the forwarding sysctls the kernel needs to forward between its LAN and wgrd's TUN.
//!
//! Must not touch packets itself: the userspace path's own per-packet work (MSS clamping)
//! lives in `dataplane::forward::mss`. See docs/nat.md.

mod ruleset;

pub use ruleset::{describe, remove_batch, render, replace_batch, Rendered};

use crate::config::Config;
use std::io;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt as _;

/// The one table wgrd manages.
pub const TABLE: &str = "inet wgrd";
/// Bound on one `nft` run.
const NFT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum NatError {
    #[error("NAT needs a [host] section")]
    NoHost,
    #[error("interface name {0:?} cannot be written in an nftables rule")]
    BadName(String),
    #[error("cannot run nft ({0}); install nftables (Debian: apt install nftables)")]
    NftMissing(io::Error),
    #[error("nft refused the ruleset (nothing was changed): {0}")]
    NftFailed(String),
    #[error("nft did not finish within {0:?}")]
    NftTimeout(Duration),
    #[error("sysctl {key}: {source}")]
    Sysctl { key: String, source: io::Error },
}

/// A forwarding sysctl NAT depends on, as found (and possibly set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysctlCheck {
    /// Dotted name, e.g. `net.ipv4.ip_forward`.
    pub key: String,
    /// The value read, or None when it could not be read.
    pub value: Option<String>,
    pub wanted: String,
    /// wgrd wrote `wanted` (config `set-sysctls = true`).
    pub set: bool,
}

impl SysctlCheck {
    pub fn ok(&self) -> bool {
        self.value.as_deref() == Some(self.wanted.as_str())
    }
}

/// Counters of one config entry (all of its rules summed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatRuleStatus {
    /// `masquerade[1]`, `port-forward[2]`: the entry in the config, counted from 1.
    pub name: String,
    pub description: String,
    pub packets: u64,
    pub bytes: u64,
}

/// What the control plane shows about NAT.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NatStatus {
    /// wgrd's table is in the kernel.
    pub installed: bool,
    pub table: &'static str,
    pub rules: Vec<NatRuleStatus>,
    pub sysctls: Vec<SysctlCheck>,
    /// Warnings about the config (rules that match nothing, sysctls that are off).
    pub notes: Vec<String>,
}

#[derive(Default)]
struct State {
    /// The table text in the kernel, if wgrd installed one.
    installed: Option<String>,
    config: Option<Config>,
    sysctls: Vec<SysctlCheck>,
    notes: Vec<String>,
}

/// wgrd's nftables table. Share by reference; every method takes `&self`.
pub struct Nat {
    state: tokio::sync::Mutex<State>,
    /// Root of the sysctl tree (`/proc/sys`; a temporary directory in tests).
    proc_sys: PathBuf,
    /// The `nft` program.
    nft: PathBuf,
}

impl Default for Nat {
    fn default() -> Self {
        Nat::new()
    }
}

impl Nat {
    /// Nothing is touched until a config with NAT rules is applied.
    pub fn new() -> Nat {
        Nat::with_paths(PathBuf::from("/proc/sys"), PathBuf::from("nft"))
    }

    /// With another sysctl root and `nft` program (tests).
    pub fn with_paths(proc_sys: PathBuf, nft: PathBuf) -> Nat {
        Nat {
            state: tokio::sync::Mutex::new(State::default()),
            proc_sys,
            nft,
        }
    }

    /// Make the kernel's `inet wgrd` table match `config`: create, replace or delete it
    /// in one transaction. Unchanged rules are not rewritten (their counters keep
    /// counting). A config without NAT rules never runs `nft` unless wgrd installed a
    /// table before. On error nothing changed.
    pub async fn apply(&self, config: &Config) -> Result<(), NatError> {
        let mut state = self.state.lock().await;
        let rendered = render(config)?;
        let sysctls = if config.nat.is_empty() {
            Vec::new()
        } else {
            self.sysctls(config)?
        };
        match &rendered {
            Some(r) if state.installed.as_deref() == Some(r.table.as_str()) => {}
            Some(r) => {
                self.nft_batch(&replace_batch(&r.table)).await?;
                tracing::info!(
                    table = TABLE,
                    masquerade = config.nat.masquerade.len(),
                    port_forwards = config.nat.port_forwards.len(),
                    "nftables table installed"
                );
                state.installed = Some(r.table.clone());
            }
            None if state.installed.is_some() => {
                self.nft_batch(&remove_batch()).await?;
                tracing::info!(table = TABLE, "nftables table removed (no NAT rules)");
                state.installed = None;
            }
            None => {}
        }
        let mut notes = rendered.map(|r| r.notes).unwrap_or_default();
        for s in sysctls.iter().filter(|s| !s.ok()) {
            notes.push(format!(
                "{} is {}, NAT needs {}: set it (or set-sysctls = true in [nat])",
                s.key,
                s.value.as_deref().unwrap_or("unreadable"),
                s.wanted
            ));
        }
        for n in &notes {
            tracing::warn!("nat: {n}");
        }
        state.sysctls = sysctls;
        state.notes = notes;
        state.config = Some(config.clone());
        Ok(())
    }

    /// Delete wgrd's table if wgrd installed it (on exit).
    pub async fn clear(&self) {
        let mut state = self.state.lock().await;
        if state.installed.is_none() {
            return;
        }
        match self.nft_batch(&remove_batch()).await {
            Ok(()) => {
                tracing::info!(table = TABLE, "nftables table removed");
                state.installed = None;
            }
            Err(e) => tracing::error!(error = %e, table = TABLE, "cannot remove nftables table"),
        }
    }

    /// Rules with their counters (read from the kernel), sysctls and notes.
    pub async fn status(&self) -> NatStatus {
        let state = self.state.lock().await;
        let Some(config) = &state.config else {
            return NatStatus {
                table: TABLE,
                ..NatStatus::default()
            };
        };
        let counters = if state.installed.is_some() {
            match self
                .nft_output(&["-j", "list", "table", "inet", "wgrd"])
                .await
            {
                Ok(json) => parse_counters(&json),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read nftables counters");
                    Vec::new()
                }
            }
        } else {
            Vec::new()
        };
        let rules = describe(config)
            .into_iter()
            .map(|(name, description)| {
                let (packets, bytes) = counters
                    .iter()
                    .filter(|(c, _, _)| *c == name)
                    .fold((0, 0), |(p, b), (_, cp, cb)| (p + cp, b + cb));
                NatRuleStatus {
                    name,
                    description,
                    packets,
                    bytes,
                }
            })
            .collect();
        NatStatus {
            installed: state.installed.is_some(),
            table: TABLE,
            rules,
            sysctls: state.sysctls.clone(),
            notes: state.notes.clone(),
        }
    }

    /// Check (and with `set-sysctls`, set) what the kernel needs to forward for NAT.
    fn sysctls(&self, config: &Config) -> Result<Vec<SysctlCheck>, NatError> {
        let mut keys = vec!["net.ipv4.ip_forward"];
        if needs_v6(config) {
            keys.push("net.ipv6.conf.all.forwarding");
        }
        let mut out = Vec::new();
        for key in keys {
            let path = self.proc_sys.join(key.replace('.', "/"));
            let read = || {
                std::fs::read_to_string(&path)
                    .ok()
                    .map(|v| v.trim().to_owned())
            };
            let mut check = SysctlCheck {
                key: key.to_owned(),
                value: read(),
                wanted: "1".into(),
                set: false,
            };
            if config.nat.set_sysctls && !check.ok() {
                std::fs::write(&path, "1\n").map_err(|source| NatError::Sysctl {
                    key: key.to_owned(),
                    source,
                })?;
                tracing::info!(sysctl = key, "set to 1 for NAT");
                check.value = read();
                check.set = true;
            }
            out.push(check);
        }
        Ok(out)
    }

    async fn nft_batch(&self, batch: &str) -> Result<(), NatError> {
        let mut child = tokio::process::Command::new(&self.nft)
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(NatError::NftMissing)?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let run = async {
            stdin.write_all(batch.as_bytes()).await?;
            drop(stdin);
            child.wait_with_output().await
        };
        let out = tokio::time::timeout(NFT_TIMEOUT, run)
            .await
            .map_err(|_| NatError::NftTimeout(NFT_TIMEOUT))?
            .map_err(|e| NatError::NftFailed(e.to_string()))?;
        if !out.status.success() {
            return Err(NatError::NftFailed(
                String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            ));
        }
        Ok(())
    }

    async fn nft_output(&self, args: &[&str]) -> Result<String, NatError> {
        let run = tokio::process::Command::new(&self.nft)
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(NFT_TIMEOUT, run)
            .await
            .map_err(|_| NatError::NftTimeout(NFT_TIMEOUT))?
            .map_err(NatError::NftMissing)?;
        if !out.status.success() {
            return Err(NatError::NftFailed(
                String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Nat {
    /// A router dropped without `clear` (a panic unwinding) still removes its table.
    fn drop(&mut self) {
        if self.state.get_mut().installed.is_none() {
            return;
        }
        let removed = std::process::Command::new(&self.nft)
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .and_then(|mut child| {
                if let Some(mut stdin) = child.stdin.take() {
                    io::Write::write_all(&mut stdin, remove_batch().as_bytes())?;
                }
                child.wait()
            });
        if !removed.is_ok_and(|s| s.success()) {
            tracing::error!(table = TABLE, "cannot remove nftables table on drop");
        }
    }
}

/// Whether any NAT rule or the host TUN involves IPv6.
fn needs_v6(config: &Config) -> bool {
    use crate::config::NatSource;
    let host_v6 = config
        .host
        .as_ref()
        .is_some_and(|h| h.addresses.iter().any(|a| a.is_ipv6()));
    let nat = &config.nat;
    nat.port_forwards.iter().any(|p| p.to.is_ipv6())
        || nat.masquerade.iter().any(|m| {
            m.from.iter().any(|f| match f {
                NatSource::Prefix(p) => p.is_ipv6(),
                NatSource::AllTunnels | NatSource::Tunnel(_) => host_v6,
            })
        })
}

/// (comment, packets, bytes) of every rule with a counter in `nft -j list table` output.
fn parse_counters(json: &str) -> Vec<(String, u64, u64)> {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(json) else {
        return Vec::new();
    };
    let Some(items) = v.get("nftables").and_then(|n| n.as_array()) else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let rule = item.get("rule")?;
            let comment = rule.get("comment")?.as_str()?.to_owned();
            let counter = rule
                .get("expr")?
                .as_array()?
                .iter()
                .find_map(|e| e.get("counter"))?;
            Some((
                comment,
                counter.get("packets")?.as_u64()?,
                counter.get("bytes")?.as_u64()?,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_read_by_comment() {
        // Shape of `nft -j list table inet wgrd` (nftables 1.0.6), trimmed.
        let json = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
 {"table": {"family": "inet", "name": "wgrd", "handle": 1}},
 {"chain": {"family": "inet", "table": "wgrd", "name": "postrouting", "handle": 2, "type": "nat", "hook": "postrouting", "prio": 100, "policy": "accept"}},
 {"rule": {"family": "inet", "table": "wgrd", "chain": "postrouting", "handle": 4, "comment": "masquerade[1]", "expr": [{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "wgrd0"}}, {"counter": {"packets": 3, "bytes": 180}}, {"masquerade": null}]}},
 {"rule": {"family": "inet", "table": "wgrd", "chain": "postrouting", "handle": 5, "comment": "masquerade[1]", "expr": [{"counter": {"packets": 1, "bytes": 60}}, {"masquerade": null}]}},
 {"rule": {"family": "inet", "table": "wgrd", "chain": "prerouting", "handle": 6, "expr": [{"counter": {"packets": 9, "bytes": 9}}]}}]}"#;
        let c = parse_counters(json);
        assert_eq!(
            c,
            vec![
                ("masquerade[1]".to_owned(), 3, 180),
                ("masquerade[1]".to_owned(), 1, 60)
            ]
        );
        assert!(parse_counters("not json").is_empty());
        assert!(parse_counters("{}").is_empty());
    }

    fn config(nat: &str, host: &str) -> Config {
        let key = crate::keys::PrivateKey::generate().to_base64();
        let text =
            format!("[router]\nrouter-id = \"10.255.0.1\"\nprivate-key = \"{key}\"\n{host}\n{nat}");
        crate::config::parse_str(&text, std::path::Path::new("t.toml"))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    const MASQ: &str = "[[nat.masquerade]]\nout-interface = \"eth1\"\n";

    #[test]
    fn v6_forwarding_is_checked_only_when_v6_is_involved() {
        assert!(!needs_v6(&config(
            MASQ,
            "[host]\naddresses = [\"10.9.0.1/24\"]"
        )));
        assert!(needs_v6(&config(
            MASQ,
            "[host]\naddresses = [\"10.9.0.1/24\", \"fd09::1/64\"]"
        )));
        let pf = "[[nat.port-forward]]\nin-interface = \"eth1\"\nprotocol = \"tcp\"\nport = 1\nto = \"[fd00::1]:80\"\n";
        assert!(needs_v6(&config(pf, "[host]")));
    }

    #[tokio::test]
    async fn sysctls_are_checked_and_set_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let fwd = dir.path().join("net/ipv4/ip_forward");
        std::fs::create_dir_all(fwd.parent().unwrap()).unwrap();
        std::fs::write(&fwd, "0\n").unwrap();
        let nat = Nat::with_paths(dir.path().to_owned(), PathBuf::from("/nonexistent/nft"));
        let checked = nat.sysctls(&config(MASQ, "[host]")).unwrap();
        assert_eq!(checked.len(), 1);
        assert!(!checked[0].ok());
        assert!(!checked[0].set);
        assert_eq!(std::fs::read_to_string(&fwd).unwrap(), "0\n");

        let set = format!("[nat]\nset-sysctls = true\n{MASQ}");
        let checked = nat.sysctls(&config(&set, "[host]")).unwrap();
        assert!(checked[0].ok() && checked[0].set);
        assert_eq!(std::fs::read_to_string(&fwd).unwrap(), "1\n");
    }

    #[tokio::test]
    async fn missing_nft_is_a_clear_error_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let nat = Nat::with_paths(dir.path().to_owned(), PathBuf::from("/nonexistent/nft"));
        let err = nat
            .apply(&config(MASQ, "[host]"))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("install nftables"), "{err}");
        assert!(!nat.status().await.installed);
        // Without NAT rules and nothing installed, nft is never run.
        nat.apply(&config("", "[host]")).await.unwrap();
    }
}
