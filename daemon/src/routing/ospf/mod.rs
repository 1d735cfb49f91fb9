//! OSPFv2 (RFC 2328) on the tunnels: every tunnel is a point-to-point interface.
//!
//! Layers, from the bytes up: [`lsa`] and [`packet`] are the codecs (appendix A).
//! This room owns OSPF's own state only; it reaches the router through `io`.

pub mod instance;
pub mod lsa;
pub mod lsdb;
pub mod neighbor;
pub mod packet;
pub mod spf;
