//! The pre-policy Adj-RIB-In of one neighbor (RFC 4271 3.2: "unprocessed routing
//! information"), kept only when the neighbor has `keep-received-routes`: every prefix
//! as the peer sent it, before import policy and before the loop and next hop checks,
//! including what the policy rejects. What FRR calls soft-reconfiguration inbound and
//! BIRD an import table.
//!
//! Owns nothing else: the instance feeds it every UPDATE ([`AdjRibInPre::apply`], O(the
//! UPDATE's prefixes)), clears it when the session goes down, and replays it through
//! import policy ([`AdjRibInPre::updates`]) on a soft reset inbound or a policy change,
//! so those need no ROUTE-REFRESH (RFC 2918) from the peer.

use super::attr::{MpNextHop, PathAttrs};
use super::message::UpdateRepr;
use ipnetwork::IpNetwork;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

/// One prefix as received: the attributes of its UPDATE (without the prefix lists; one
/// `Arc` shared by the UPDATE's prefixes) and whether it came in MP_REACH_NLRI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    pub attrs: Arc<PathAttrs>,
    pub mp: bool,
}

impl Received {
    /// The next hop the peer gave for this prefix (MP_REACH's global address, else its
    /// link-local one; NEXT_HOP for classic NLRI).
    pub fn next_hop(&self) -> Option<IpAddr> {
        if !self.mp {
            return self.attrs.next_hop.map(IpAddr::V4);
        }
        self.attrs.mp_reach.as_ref().map(|r| match r.next_hop {
            MpNextHop::V4(a) => IpAddr::V4(a),
            MpNextHop::V6 { global, link_local } => match link_local {
                Some(ll) if global.is_unspecified() => IpAddr::V6(ll),
                _ => IpAddr::V6(global),
            },
        })
    }
}

/// What one neighbor sent on its current session, before import policy.
#[derive(Clone, Debug, Default)]
pub struct AdjRibInPre {
    routes: BTreeMap<IpNetwork, Received>,
    /// Whether the table holds everything the peer announced on this session: true when
    /// kept since the session came up, false when `keep-received-routes` was turned on
    /// while the session was up (until the peer was asked for a ROUTE-REFRESH).
    complete: bool,
}

impl AdjRibInPre {
    pub fn new(complete: bool) -> AdjRibInPre {
        AdjRibInPre {
            routes: BTreeMap::new(),
            complete,
        }
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
    pub fn get(&self, prefix: &IpNetwork) -> Option<&Received> {
        self.routes.get(prefix)
    }
    pub fn iter(&self) -> impl Iterator<Item = (&IpNetwork, &Received)> {
        self.routes.iter()
    }
    pub fn is_complete(&self) -> bool {
        self.complete
    }
    pub fn set_complete(&mut self) {
        self.complete = true;
    }

    /// Session down (or a new session): everything goes.
    pub fn clear(&mut self) {
        self.routes.clear();
        self.complete = true;
    }

    /// One UPDATE as received. `treat_as_withdraw`: RFC 7606 says its announcements are
    /// withdrawals (they are not routes, so not kept either).
    pub fn apply(&mut self, u: &UpdateRepr, treat_as_withdraw: bool) {
        for p in u.withdrawals() {
            self.routes.remove(p);
        }
        if treat_as_withdraw {
            for p in u.announced() {
                self.routes.remove(p);
            }
            return;
        }
        if u.nlri.is_empty() && u.attrs.mp_reach.as_ref().is_none_or(|r| r.nlri.is_empty()) {
            return;
        }
        let mut base = u.attrs.clone();
        base.mp_unreach = None;
        if let Some(r) = base.mp_reach.as_mut() {
            r.nlri = Vec::new();
        }
        let attrs = Arc::new(base);
        for p in &u.nlri {
            let r = Received {
                attrs: attrs.clone(),
                mp: false,
            };
            self.routes.insert(*p, r);
        }
        for p in u.attrs.mp_reach.iter().flat_map(|r| r.nlri.iter()) {
            let r = Received {
                attrs: attrs.clone(),
                mp: true,
            };
            self.routes.insert(*p, r);
        }
    }

    /// The table as UPDATEs again, one per attribute set (prefixes received together
    /// stay together), in prefix order of their first prefix: what import policy is
    /// applied to on a soft reset inbound. O(table).
    pub fn updates(&self) -> Vec<UpdateRepr> {
        let mut index: HashMap<(usize, bool), usize> = HashMap::new();
        let mut out: Vec<UpdateRepr> = Vec::new();
        for (p, r) in &self.routes {
            let key = (Arc::as_ptr(&r.attrs) as usize, r.mp);
            let i = *index.entry(key).or_insert_with(|| {
                let mut attrs = (*r.attrs).clone();
                if !r.mp {
                    // Classic NLRI: an MP_REACH of the same UPDATE is not theirs.
                    attrs.mp_reach = None;
                }
                out.push(UpdateRepr {
                    attrs,
                    ..UpdateRepr::default()
                });
                out.len() - 1
            });
            let u = &mut out[i];
            match u.attrs.mp_reach.as_mut() {
                Some(m) if r.mp => m.nlri.push(*p),
                _ => u.nlri.push(*p),
            }
        }
        out
    }
}
