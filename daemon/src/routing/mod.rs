//! The control plane's routing state: the RIB (every candidate route, best per prefix)
//! and, later, the OSPF and BGP speakers that feed it.

pub mod bgp;
pub mod ospf;
pub mod rib;
