//! OSPFv2 (RFC 2328) on the tunnels: every tunnel is a point-to-point interface of its
//! area (a router in several is an area border router, stub areas get a default summary),
//! host prefixes are stub links, static and connected routes can be redistributed
//! as AS-external-LSAs, and a tunnel that reports its peer silent ends the adjacency at
//! once (fast failover without BFD).
//!
//! Layers, from the bytes up, each usable and tested alone:
//! - [`lsa`], [`packet`]: codecs (RFC 2328 appendix A), typed views and Reprs;
//! - [`auth`]: cryptographic authentication digests (MD5, HMAC-SHA-256);
//! - [`lsdb`]: the database with computed aging (12.2, 14);
//! - [`neighbor`]: the neighbor state machine, pure (10.1-10.3);
//! - [`spf`]: the routing table calculation with ECMP, and the SPF throttle (16);
//! - [`abr`]: the summaries an area border router originates (12.4.3);
//! - [`instance`]: one instance as a deterministic machine, inputs in, outputs out;
//! - [`io`]: the task that runs it against the [`crate::router::Router`].
//!
//! This room owns OSPF's own state only; it reaches the router through `io`, and the
//! router never calls into it.

pub mod abr;
pub mod auth;
pub mod instance;
pub mod io;
pub mod lsa;
pub mod lsdb;
pub mod neighbor;
pub mod packet;
pub mod spf;

pub use io::{spawn, InterfaceInfo, LsdbEntry, NeighborInfo, OspfHandle, OspfStatus};
