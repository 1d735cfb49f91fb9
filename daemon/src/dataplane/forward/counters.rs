//! Counters of the forwarding decision: one per drop reason and one per ICMP outcome.
//! Relaxed atomics: they are statistics, never used to synchronise.
//!
//! Forwarded packets are deliberately not counted here: a shared counter bumped by every
//! packet on every core is a cache line bouncing between cores. Tunnels count their own
//! traffic. Only the exceptional paths (drops, ICMP) are counted, and they are rare.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! reasons {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)*) => {
        /// Why the forwarding decision did not forward or deliver a packet. When an ICMP
        /// error was sent instead, the packet still counts under its reason.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum DropReason { $($(#[$doc])* $variant,)* }

        impl DropReason {
            pub const ALL: &'static [DropReason] = &[$(DropReason::$variant,)*];

            /// A stable snake_case name for metrics and the API.
            pub fn name(self) -> &'static str {
                match self { $(DropReason::$variant => $name,)* }
            }
        }
    };
}

reasons! {
    /// Shorter than the fixed header (or empty).
    Truncated => "truncated",
    /// Version nibble is neither 4 nor 6.
    BadVersion => "bad_version",
    /// IPv4 IHL below 5.
    BadHeaderLength => "bad_header_length",
    /// Total length (v4) or payload length (v6) below the header or beyond the buffer.
    BadTotalLength => "bad_total_length",
    /// IPv4 header checksum does not verify.
    BadChecksum => "bad_checksum",
    /// Source is unspecified, loopback, multicast, broadcast, class E or v4-mapped.
    MartianSource => "martian_source",
    /// Destination is unspecified, loopback, class E or v4-mapped.
    MartianDestination => "martian_destination",
    /// Multicast destination other than the OSPF groups: no multicast routing.
    Multicast => "multicast",
    /// IPv4 limited broadcast: never forwarded, nothing local listens.
    Broadcast => "broadcast",
    /// IPv6 link-local source or destination that is not ours: must not be forwarded.
    LinkLocalScope => "link_local_scope",
    /// No FIB entry for the destination.
    NoRoute => "no_route",
    /// FIB says blackhole.
    Blackhole => "blackhole",
    /// TTL / hop limit would reach zero.
    TtlExceeded => "ttl_exceeded",
    /// Larger than the egress MTU with DF set (v4) or any v6 packet.
    TooBig => "too_big",
    /// Larger than the egress MTU, and that MTU is below the protocol minimum (68 / 1280):
    /// a misconfigured or vanished egress. No ICMP: its MTU would mislead the source.
    EgressMtuTooSmall => "egress_mtu_too_small",
    /// Larger than the egress MTU without DF, and fragmentation is disabled or impossible.
    CannotFragment => "cannot_fragment",
    /// An ICMP echo request to us that is truncated or fails its checksum.
    BadIcmp => "bad_icmp",
    /// An echo request to us, not answered because of the echo rate limit.
    EchoRateLimited => "echo_rate_limited",
    /// An echo request to us whose source has no usable route back.
    EchoUnroutable => "echo_unroutable",
    /// An echo request whose reply exceeds the `out` buffer or the reply path's MTU.
    EchoTooBig => "echo_too_big",
}

macro_rules! events {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)*) => {
        /// Outcomes on the ICMP generation path and other non-drop events.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Event { $($(#[$doc])* $variant,)* }

        impl Event {
            pub const ALL: &'static [Event] = &[$(Event::$variant,)*];

            pub fn name(self) -> &'static str {
                match self { $(Event::$variant => $name,)* }
            }
        }
    };
}

events! {
    /// An ICMP error was written to `out`.
    IcmpErrorSent => "icmp_error_sent",
    /// An ICMP error was due but the rate limiter said no.
    IcmpErrorRateLimited => "icmp_error_rate_limited",
    /// An ICMP error was due but forbidden (error about an error, multicast, fragment...).
    IcmpErrorForbidden => "icmp_error_forbidden",
    /// An ICMP error was due but the router has no address of that family to send from.
    IcmpErrorNoSource => "icmp_error_no_source",
    /// An ICMP error was due but there is no route back to the source, or no room.
    IcmpErrorUnroutable => "icmp_error_unroutable",
    /// An echo reply was written to `out`.
    EchoReplySent => "echo_reply_sent",
    /// An IPv4 packet was handed back for fragmentation.
    Fragmented => "fragmented",
    /// A TCP SYN's MSS option was lowered to fit a tunnel's MTU.
    MssClamped => "mss_clamped",
}

/// Per-reason and per-event counters.
#[derive(Debug)]
pub struct ForwardCounters {
    drops: [AtomicU64; DropReason::ALL.len()],
    events: [AtomicU64; Event::ALL.len()],
}

impl Default for ForwardCounters {
    fn default() -> Self {
        ForwardCounters {
            drops: std::array::from_fn(|_| AtomicU64::new(0)),
            events: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl ForwardCounters {
    pub fn count_drop(&self, reason: DropReason) {
        self.drops[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(&self, event: Event) {
        self.events[event as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize].load(Ordering::Relaxed)
    }

    pub fn get(&self, event: Event) -> u64 {
        self.events[event as usize].load(Ordering::Relaxed)
    }

    /// Every counter by name (drop reasons, then events; the names are distinct).
    /// Allocates; meant for the control plane, not the packet path.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        DropReason::ALL
            .iter()
            .map(|&r| (r.name(), self.drops(r)))
            .chain(Event::ALL.iter().map(|&e| (e.name(), self.get(e))))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_lists_everything_once() {
        let c = ForwardCounters::default();
        c.count_drop(DropReason::NoRoute);
        c.count_drop(DropReason::NoRoute);
        c.count(Event::IcmpErrorSent);
        let s = c.snapshot();
        assert_eq!(s.len(), DropReason::ALL.len() + Event::ALL.len());
        assert!(s.contains(&("no_route", 2)));
        assert!(s.contains(&("icmp_error_sent", 1)));
        let mut names: Vec<_> = s.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), s.len());
    }
}
