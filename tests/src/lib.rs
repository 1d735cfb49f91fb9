//! Harness for wgrd's end-to-end tests: network namespaces joined by veth, real TUN
//! devices, and real peers (`wgrd` itself and Debian's `wireguard-go`).
//!
//! Everything a test creates is owned by a guard that removes it on drop, also when the
//! test panics: [`Netns`] / [`Lab`] (namespaces, links and every process inside them),
//! [`WgGo`] and [`Wgrd`] (daemons). Declare the [`Lab`] first and the daemons after it,
//! so the daemons are dropped (and can be checked for a clean exit) before their
//! namespaces disappear.
//!
//! Namespace tests start with [`netns_test`], which decides whether to run (env
//! `WGRD_NETNS_TESTS=1`, root, the tools present), fails instead of skipping when
//! `WGRD_REQUIRE_NETNS=1` (CI), and serializes namespace tests across threads and
//! processes with a file lock, since the machines they run on have two cores.

pub mod bird;
pub mod frr;
pub mod netns;
pub mod topo;
pub mod traffic;
pub mod util;
pub mod wggo;
pub mod wgrd;

pub use bird::Bird;
pub use frr::Frr;
pub use netns::{Lab, Netns, NS_PREFIX};
pub use traffic::{fetch, iperf, ping, wait_ping, who_server, Iperf};
pub use util::{netns_test, wait_until, NetnsTest};
pub use wggo::{Keypair, WgGo, WgGoConf, WgPeer};
pub use wgrd::{wgrctl_json, Wgrd, WgrdConf, WgrdHost, WgrdTunnel};
