//! The configuration: the typed model every other room reads, and its TOML form.
//!
//! - [`model`]: plain structs, already validated; nothing else in the daemon parses text.
//! - [`load`]: TOML text -> model, with every problem reported as `FILE:LINE: field: why`.
//! - [`save`]: model -> TOML, written back atomically (comments kept), or redacted for display.
//!
//! This room owns no sockets and no state; the router builds the planes from a [`Config`].

pub mod bgp;
mod keyfile;
pub mod load;
pub mod model;
mod nat;
mod ospf;
pub mod save;
mod source;
mod suggest;
#[cfg(test)]
mod tests;

pub use bgp::{
    BgpConfig, BgpNeighborConfig, BgpPrefixLimit, BgpRedistribute, Community, GracefulRestart,
    LargeCommunityValue, PolicyAction, PolicyConfig, PolicyFamily, PolicyMatch, PolicyRule,
    PolicySet, PrefixLimitOnExceed, PrefixListConfig, PrefixListEntry, TcpMd5Key, TcpMd5Password,
};
pub use load::{load_file, parse_str, ConfigError, ConfigErrors};
pub use model::*;
