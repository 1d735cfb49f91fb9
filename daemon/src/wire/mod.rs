//! Typed views over the bytes of IP packets the data path inspects and builds: IPv4 and
//! IPv6 headers, ICMP/ICMPv6 messages, the internet checksum, IPv4 fragmentation.
//!
//! Pure functions and views over caller buffers: no I/O, no allocation, no policy.
//! Policy (what to forward, when to send ICMP) is in `dataplane::forward`; this room must
//! not depend on the data plane. We hand-write these rather than use `smoltcp::wire`
//! because the forwarding path needs in-place TTL updates, tolerant trailing bytes and
//! extension-header walking with no copying; smoltcp's codecs verify them in tests.
//!
//! RFCs: 791 (IPv4), 1071 and 1624 (checksum), 792 (ICMP), 8200 (IPv6), 4443 (ICMPv6).

pub mod checksum;
pub mod icmp;
pub mod ipv4;
pub mod ipv6;

/// Why bytes are not a well-formed IP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("buffer too short for the header")]
    Truncated,
    #[error("IP version is neither 4 nor 6 (or not the one expected)")]
    BadVersion,
    #[error("IPv4 header length below 20 bytes")]
    BadHeaderLength,
    #[error("length field disagrees with the header or the buffer")]
    BadTotalLength,
}
