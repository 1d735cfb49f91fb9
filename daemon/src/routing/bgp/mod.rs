//! The BGP speaker (RFC 4271 and friends), built as pure layers: wire codecs
//! ([`message`], [`attr`]), the per-neighbor session state machine ([`fsm`]) and the
//! decision process ([`decision`]) that turns Adj-RIB-In paths into RIB candidates.
//! Those layers have no I/O and no clock; [`io`] is the task that runs them against the
//! Router, over the [`transport`]s (the userspace stack across tunnels, kernel TCP on
//! the LAN). See docs/bgp.md.

pub mod adj_in_pre;
pub mod adj_out;
pub mod attr;
pub mod decision;
pub mod export;
pub mod fsm;
mod installer;
pub mod instance;
pub mod io;
pub mod message;
pub mod policy;
pub mod scope;
pub mod setup;
pub mod transport;

#[cfg(test)]
mod tests;
