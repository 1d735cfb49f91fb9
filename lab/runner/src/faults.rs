//! Failures on purpose, and measuring what they do to traffic.
//!
//! - [`cut`] silently drops everything through one interface of a node with an nftables
//!   table inside the node's namespace (there is no `netem` here; a dropped underlay
//!   link makes the WireGuard tunnel over it go silent, as a dead path would);
//!   [`heal`] deletes that table again.
//! - [`probe`] pings from a node at a fixed interval for a bounded time and reports the
//!   longest interval without a reply: the outage a cut caused and a reroute ended.

use crate::error::LabError;
use crate::lab::{exec_capture, LabState, CAPTURE_TIMEOUT};
use std::time::Duration;

/// The nftables table that cuts `iface` (one per interface, so heals are independent).
fn cut_table(iface: &str) -> String {
    let safe: String = iface
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("wgrdlab_cut_{safe}")
}

/// Drop every packet in and out of `iface` in `node` (both directions, forwarded ones too).
pub fn cut(state: &LabState, node: &str, iface: &str) -> Result<(), LabError> {
    // The interface must exist: a typo would otherwise cut nothing, silently.
    exec_capture(
        state,
        node,
        &["ip", "link", "show", "dev", iface],
        CAPTURE_TIMEOUT,
    )?;
    let t = cut_table(iface);
    let script = format!(
        "table inet {t} {{\n\
         chain in {{ type filter hook prerouting priority -400; iifname \"{iface}\" drop; }}\n\
         chain out {{ type filter hook postrouting priority -400; oifname \"{iface}\" drop; }}\n\
         chain lout {{ type filter hook output priority -400; oifname \"{iface}\" drop; }}\n\
         }}"
    );
    exec_capture(state, node, &["nft", &script], CAPTURE_TIMEOUT)?;
    Ok(())
}

/// Undo [`cut`].
pub fn heal(state: &LabState, node: &str, iface: &str) -> Result<(), LabError> {
    let t = cut_table(iface);
    exec_capture(
        state,
        node,
        &["nft", "delete", "table", "inet", &t],
        CAPTURE_TIMEOUT,
    )?;
    Ok(())
}

/// What a [`probe`] saw.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeReport {
    pub sent: u32,
    pub received: u32,
    /// The longest time between two consecutive replies, less one interval: how long
    /// the path was down. Zero when no probe was lost.
    pub outage: Duration,
    /// Seconds since the probe started at which the longest outage began.
    pub outage_from: f64,
}

impl std::fmt::Display for ProbeReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "sent {}, received {}, lost {}, longest outage {:.2} s",
            self.sent,
            self.received,
            self.sent.saturating_sub(self.received),
            self.outage.as_secs_f64()
        )?;
        if !self.outage.is_zero() {
            write!(f, " (from t={:.2} s)", self.outage_from)?;
        }
        Ok(())
    }
}

/// Ping `dst` from `node` every `interval` for `duration` and report the outage.
pub fn probe(
    state: &LabState,
    node: &str,
    dst: &str,
    interval: Duration,
    duration: Duration,
) -> Result<ProbeReport, LabError> {
    let i = format!("{:.3}", interval.as_secs_f64());
    let w = duration.as_secs().max(1).to_string();
    let argv = ["ping", "-n", "-D", "-i", &i, "-W", "1", "-w", &w, dst];
    // ping exits 1 when some replies are missing: that is what a probe is for.
    let out = match exec_capture(state, node, &argv, duration + CAPTURE_TIMEOUT) {
        Ok(out) => out,
        Err(LabError::NodeCommand { output, status, .. }) if status == "exit 1" => output,
        Err(e) => return Err(e),
    };
    parse_ping(&out, interval).ok_or_else(|| LabError::NodeCommand {
        node: node.to_string(),
        command: argv.join(" "),
        status: "unreadable output".into(),
        output: out,
    })
}

/// Parse `ping -D` output: reply lines `[epoch] 64 bytes from ...: icmp_seq=N ...` and
/// the `N packets transmitted, M received` summary.
pub fn parse_ping(out: &str, interval: Duration) -> Option<ProbeReport> {
    let mut replies: Vec<(u32, f64)> = Vec::new();
    let mut sent = None;
    for line in out.lines() {
        if let Some(rest) = line.strip_prefix('[') {
            if !line.contains("bytes from") {
                continue;
            }
            let ts: f64 = rest.split(']').next()?.parse().ok()?;
            let seq: u32 = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("icmp_seq="))?
                .parse()
                .ok()?;
            replies.push((seq, ts));
        } else if line.contains("packets transmitted") {
            sent = line.split_whitespace().next()?.parse().ok();
        }
    }
    let sent: u32 = sent?;
    replies.sort_by_key(|r| r.0);
    replies.dedup_by_key(|r| r.0);
    let step = interval.as_secs_f64();
    // The start: the first reply's send time (its timestamp is the receive time, close).
    let origin = replies
        .first()
        .map(|&(seq, ts)| ts - f64::from(seq.saturating_sub(1)) * step)
        .unwrap_or(0.0);
    let (mut outage, mut from) = (0.0f64, 0.0f64);
    let mut check = |prev_ts: f64, next_ts: f64| {
        let gap = next_ts - prev_ts - step;
        if gap > outage && gap > step / 2.0 {
            outage = gap;
            from = prev_ts - origin;
        }
    };
    for w in replies.windows(2) {
        check(w[0].1, w[1].1);
    }
    // Lost at the start or still down at the end count too (by sequence numbers).
    if let Some(&(first, ts)) = replies.first() {
        if first > 1 {
            check(ts - f64::from(first) * step, ts);
        }
    }
    if let Some(&(last, ts)) = replies.last() {
        if sent > last {
            check(ts, ts + f64::from(sent - last) * step);
        }
    }
    if replies.is_empty() && sent > 0 {
        outage = f64::from(sent) * step;
    }
    Some(ProbeReport {
        sent,
        received: replies.len() as u32,
        outage: Duration::from_secs_f64(outage.max(0.0)),
        outage_from: from,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(seq: u32, ts: f64) -> String {
        format!("[{ts:.6}] 64 bytes from 10.3.0.2: icmp_seq={seq} ttl=62 time=0.5 ms\n")
    }

    #[test]
    fn measures_the_longest_gap() {
        let mut out = String::from("PING 10.3.0.2 (10.3.0.2) 56(84) bytes of data.\n");
        for seq in 1..=10 {
            out += &line(seq, 100.0 + f64::from(seq - 1) * 0.1);
        }
        // 11..=30 lost (2 s), replies again from 31.
        for seq in 31..=40 {
            out += &line(seq, 100.0 + f64::from(seq - 1) * 0.1);
        }
        out += "\n--- 10.3.0.2 ping statistics ---\n40 packets transmitted, 20 received, 50% packet loss, time 3900ms\n";
        let r = parse_ping(&out, Duration::from_millis(100)).unwrap();
        assert_eq!((r.sent, r.received), (40, 20));
        assert!((r.outage.as_secs_f64() - 2.0).abs() < 0.01, "{r}");
        assert!((r.outage_from - 0.9).abs() < 0.01, "{r}");
    }

    #[test]
    fn no_loss_no_outage_and_down_at_the_end() {
        let mut out = String::new();
        for seq in 1..=5 {
            out += &line(seq, 10.0 + f64::from(seq - 1) * 0.1);
        }
        let full = format!("{out}5 packets transmitted, 5 received, 0% packet loss\n");
        assert_eq!(
            parse_ping(&full, Duration::from_millis(100))
                .unwrap()
                .outage,
            Duration::ZERO
        );
        let tail = format!("{out}15 packets transmitted, 5 received, 66% packet loss\n");
        let r = parse_ping(&tail, Duration::from_millis(100)).unwrap();
        assert!((r.outage.as_secs_f64() - 0.9).abs() < 0.01, "{r}");
        assert!(parse_ping("garbage", Duration::from_millis(100)).is_none());
    }

    #[test]
    fn table_names_are_nft_safe() {
        assert_eq!(cut_table("wan-r2"), "wgrdlab_cut_wan_r2");
    }
}
