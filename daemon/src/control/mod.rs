//! The control plane's front door: the gRPC API (package `wgrd.v1`, see docs/api.md)
//! over a [`Router`](crate::router::Router).
//!
//! - [`service`]: the System, Tunnels, Routes and Events services; every change is
//!   validated as a whole config, all-or-nothing, and saved when `persist` is on;
//! - [`spec`]: API input (typed or TOML) -> a validated config, by the file's rules;
//! - [`convert`]: router snapshots and the config model -> API messages (keys redacted);
//! - [`ospf`]: the Ospf service, read from the OSPF speaker's status;
//! - [`bgp`]: the Bgp service over the BGP speaker's client, and BGP neighbor events;
//! - [`listen`]: the Unix socket and optional TCP+TLS listeners, reflection and health.
//!
//! This room decides nothing about packets or routes: it reads the router's snapshots
//! and hands it whole configs. Private and preshared keys never leave it.

pub mod bgp;
mod convert;
pub mod listen;
pub mod ospf;
pub mod service;
mod spec;

pub use listen::{ControlServer, ListenError};
pub use service::Control;
