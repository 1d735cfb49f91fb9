//! wgrd-lab: plays containerlab topology files (`*.clab.yml`) in network namespaces on
//! one Linux machine, without Docker — for the demo and the end-to-end tests.
//!
//! [`Topology`] parses and validates a file; [`lab::up`] builds it (a namespace, a
//! holder process with a private mount namespace and `/run`, and a directory per node; a
//! veth pair per link; each node's `cmd` in the background and its `exec` commands to
//! completion) and [`lab::down`] removes exactly what `up` recorded. [`faults`] cuts an
//! interface with nftables and measures outages with a timed ping.
//!
//! Safety: the runner only ever creates, enters, signals and deletes namespaces and
//! processes it recorded itself (`wgrdlab-<lab>-<node>`); it refuses to start when one of
//! those namespaces already exists and never creates anything in the host's namespace.

pub mod error;
pub mod faults;
pub mod lab;
pub mod sys;
pub mod topology;
pub mod words;

pub use error::LabError;
pub use lab::{down, netns_name, status, up, LabState, Options, NS_PREFIX};
pub use topology::Topology;
