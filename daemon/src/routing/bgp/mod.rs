//! The BGP speaker (RFC 4271 and friends), built as pure layers: wire codecs
//! ([`message`], [`attr`]), the per-neighbor session state machine ([`fsm`]) and the
//! decision process ([`decision`]) that turns Adj-RIB-In paths into RIB candidates.
//! No I/O and no clock here; transports (smoltcp across tunnels, tokio TCP on the LAN) and
//! the instance task that wires these into the Router come later (see docs/bgp.md).

pub mod adj_out;
pub mod attr;
pub mod decision;
pub mod export;
pub mod fsm;
pub mod instance;
pub mod message;
pub mod policy;
pub mod setup;

#[cfg(test)]
mod tests;
