//! wgrd: a userspace WireGuard router whose tunnels are chosen by a forwarding table.
//!
//! The crate is split into rooms (see docs/ARCHITECTURE.md):
//! - [`config`]: the typed, validated configuration and its TOML form;
//! - [`keys`]: WireGuard key material, kept out of logs;
//! - [`wire`]: typed views over IP/ICMP bytes used by the packet path;
//! - [`dataplane`]: tunnels, UDP, the FIB, the per-packet forwarding decision, the host TUN;
//! - [`routing`]: the RIB that feeds the FIB;
//! - [`nat`]: masquerading and port forwarding through wgrd's own nftables table;
//! - [`prefix_map`]: ordered maps keyed by prefix, packed for full tables;
//! - [`stack`]: the userspace TCP (smoltcp) on the router's tunnel addresses, for BGP;
//! - [`router`]: the wiring that builds all of the above from a config and runs it;
//! - [`control`]: the gRPC API over the router.

pub mod config;
pub mod control;
pub mod dataplane;
pub mod keys;
pub mod nat;
pub mod prefix_map;
pub mod router;
pub mod routing;
pub mod stack;
pub mod wire;
