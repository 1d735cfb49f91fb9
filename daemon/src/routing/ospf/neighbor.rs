//! The neighbor state machine (RFC 2328 10.1-10.3) for point-to-point interfaces, where
//! every neighbor that reaches 2-Way becomes adjacent (10.4), and the per-neighbor data
//! of 10 (DD sequence, master/slave, the database summary, link state request and
//! retransmission lists, timers).
//!
//! [`transition`] is pure: (state, event) -> (state, actions). The instance carries out
//! the actions (building DD packets needs the LSDB) and owns the timers' deadlines.

use super::lsa::{LsaHeader, LsaKey};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::Ipv4Addr;
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    Down,
    Init,
    TwoWay,
    ExStart,
    Exchange,
    Loading,
    Full,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Down => "down",
            State::Init => "init",
            State::TwoWay => "2-way",
            State::ExStart => "exstart",
            State::Exchange => "exchange",
            State::Loading => "loading",
            State::Full => "full",
        }
    }
}

/// Events of RFC 2328 10.2 that can happen on a point-to-point interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    HelloReceived,
    TwoWayReceived,
    OneWayReceived,
    NegotiationDone,
    /// The DD exchange finished; whether anything is left to request.
    ExchangeDone {
        requests_empty: bool,
    },
    LoadingDone,
    SeqNumberMismatch,
    BadLsReq,
    KillNbr,
    InactivityTimer,
}

/// What the instance must do after a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// (Re)start the inactivity timer.
    ResetInactivity,
    /// ExStart: pick a DD sequence, claim master, send an empty DD with I, M and MS set,
    /// retransmitting until answered.
    StartExStart,
    /// Exchange: snapshot the database headers into the summary list.
    BuildSummary,
    /// Loading: send link state requests.
    SendRequests,
    /// Empty the summary, request and retransmission lists.
    ClearLists,
    /// Stop every timer of the neighbor (it is going away).
    StopTimers,
}

/// The transition function of RFC 2328 10.3, specialised for point-to-point links.
/// Events that do not apply in a state leave it unchanged with no actions.
pub fn transition(state: State, event: Event) -> (State, Vec<Action>) {
    use Action::*;
    use State::*;
    match (state, event) {
        (Down, Event::HelloReceived) => (Init, vec![ResetInactivity]),
        (s, Event::HelloReceived) => (s, vec![ResetInactivity]),
        // Point-to-point: adjacency is always wanted (10.4).
        (Init, Event::TwoWayReceived) => (ExStart, vec![StartExStart]),
        (TwoWay, Event::TwoWayReceived) => (ExStart, vec![StartExStart]),
        (s, Event::TwoWayReceived) => (s, vec![]),
        (s, Event::OneWayReceived) if s >= TwoWay => (Init, vec![ClearLists]),
        (s, Event::OneWayReceived) => (s, vec![]),
        (ExStart, Event::NegotiationDone) => (Exchange, vec![BuildSummary]),
        (
            Exchange,
            Event::ExchangeDone {
                requests_empty: true,
            },
        ) => (Full, vec![]),
        (
            Exchange,
            Event::ExchangeDone {
                requests_empty: false,
            },
        ) => (Loading, vec![SendRequests]),
        (Loading, Event::LoadingDone) => (Full, vec![]),
        (s, Event::SeqNumberMismatch | Event::BadLsReq) if s >= Exchange => {
            (ExStart, vec![ClearLists, StartExStart])
        }
        (_, Event::KillNbr | Event::InactivityTimer) => (Down, vec![ClearLists, StopTimers]),
        (s, _) => (s, vec![]),
    }
}

/// A neighbor on a point-to-point interface and everything RFC 2328 10 keeps for it.
#[derive(Debug, Clone)]
pub struct Neighbor {
    pub router_id: Ipv4Addr,
    /// Source address of its packets.
    pub address: Ipv4Addr,
    pub state: State,
    pub since: Instant,
    pub options: u8,
    /// True while we are master of the DD exchange.
    pub master: bool,
    pub dd_seq: u32,
    /// (flags, options, seq) of the last DD accepted, to spot duplicates.
    pub last_rx_dd: Option<(u8, u8, u32)>,
    /// The last DD we sent (OSPF bytes), for retransmission and duplicate answers.
    pub last_tx_dd: Option<Vec<u8>>,
    /// Whether the last DD we sent had the M bit.
    pub more_sent: bool,
    pub summary: VecDeque<LsaHeader>,
    pub requests: BTreeMap<LsaKey, LsaHeader>,
    /// Requests sent and not yet answered.
    pub requested: BTreeSet<LsaKey>,
    pub retransmit: BTreeSet<LsaKey>,
    pub inactivity: Option<Instant>,
    pub dd_retransmit: Option<Instant>,
    pub lsr_retransmit: Option<Instant>,
    pub lsu_retransmit: Option<Instant>,
}

impl Neighbor {
    pub fn new(router_id: Ipv4Addr, address: Ipv4Addr, now: Instant) -> Neighbor {
        Neighbor {
            router_id,
            address,
            state: State::Down,
            since: now,
            options: 0,
            master: true,
            dd_seq: 0,
            last_rx_dd: None,
            last_tx_dd: None,
            more_sent: false,
            summary: VecDeque::new(),
            requests: BTreeMap::new(),
            requested: BTreeSet::new(),
            retransmit: BTreeSet::new(),
            inactivity: None,
            dd_retransmit: None,
            lsr_retransmit: None,
            lsu_retransmit: None,
        }
    }

    pub fn clear_lists(&mut self) {
        // Replaced, not cleared: the summary can have held the whole database.
        self.summary = VecDeque::new();
        self.requests.clear();
        self.requested.clear();
        self.retransmit.clear();
        self.lsr_retransmit = None;
        self.lsu_retransmit = None;
    }

    pub fn stop_timers(&mut self) {
        self.inactivity = None;
        self.dd_retransmit = None;
        self.lsr_retransmit = None;
        self.lsu_retransmit = None;
    }

    /// Whether flooding should reach this neighbor (RFC 2328 13.3 (1a)).
    pub fn floods(&self) -> bool {
        self.state >= State::Exchange
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives the machine through a sequence of events and returns the states visited.
    fn walk(events: &[Event]) -> Vec<State> {
        let mut s = State::Down;
        events
            .iter()
            .map(|&e| {
                s = transition(s, e).0;
                s
            })
            .collect()
    }

    #[test]
    fn point_to_point_goes_straight_to_exstart_and_up_to_full() {
        use Event::*;
        assert_eq!(
            walk(&[
                HelloReceived,
                TwoWayReceived,
                NegotiationDone,
                ExchangeDone {
                    requests_empty: false
                },
                LoadingDone
            ]),
            vec![
                State::Init,
                State::ExStart,
                State::Exchange,
                State::Loading,
                State::Full
            ]
        );
        assert_eq!(
            transition(State::Init, TwoWayReceived),
            (State::ExStart, vec![Action::StartExStart])
        );
        assert_eq!(
            transition(
                State::Exchange,
                ExchangeDone {
                    requests_empty: true
                }
            )
            .0,
            State::Full
        );
    }

    #[test]
    fn mismatches_restart_the_exchange_and_one_way_falls_back() {
        use Event::*;
        for s in [State::Exchange, State::Loading, State::Full] {
            assert_eq!(
                transition(s, SeqNumberMismatch),
                (
                    State::ExStart,
                    vec![Action::ClearLists, Action::StartExStart]
                )
            );
            assert_eq!(transition(s, BadLsReq).0, State::ExStart);
            assert_eq!(
                transition(s, OneWayReceived),
                (State::Init, vec![Action::ClearLists])
            );
        }
        // Not before the exchange has started.
        assert_eq!(
            transition(State::ExStart, SeqNumberMismatch).0,
            State::ExStart
        );
        assert_eq!(transition(State::Init, OneWayReceived).0, State::Init);
    }

    #[test]
    fn inactivity_and_kill_bring_it_down_from_anywhere() {
        for s in [
            State::Init,
            State::ExStart,
            State::Exchange,
            State::Loading,
            State::Full,
        ] {
            assert_eq!(transition(s, Event::InactivityTimer).0, State::Down);
            assert_eq!(
                transition(s, Event::KillNbr).1,
                vec![Action::ClearLists, Action::StopTimers]
            );
        }
        // Stray events change nothing.
        assert_eq!(
            transition(State::Down, Event::LoadingDone),
            (State::Down, vec![])
        );
        assert_eq!(
            transition(State::Full, Event::NegotiationDone).0,
            State::Full
        );
    }
}
