//! Adj-RIB-Out per peer and UPDATE packing (RFC 4271 9.2, 9.2.1; RFC 4760 for IPv6 and
//! RFC 8950 for IPv4 over an IPv6 next hop): given the routes that should be advertised
//! to a peer (after export policy, next hop already chosen), [`AdjRibOut::sync`] returns
//! the UPDATEs that move the peer from what it was sent to what it should have:
//! withdrawals first, then announcements grouped by identical attributes, each UPDATE
//! small enough for the peer's maximum message size.
//!
//! Pure: nothing here chooses routes (that is the decision process and policy) or sends.

use super::attr::{prefixes_len, Codec, Family, MpNextHop, MpReach, MpUnreach, PathAttrs};
use super::message::{UpdateRepr, HEADER_LEN};
use ipnetwork::IpNetwork;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// What to advertise for one prefix: attributes without NEXT_HOP/MP_* (they are derived)
/// and the next hop.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Export {
    pub attrs: PathAttrs,
    pub next_hop: MpNextHop,
}

/// The session facts packing depends on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutSession {
    pub codec: Codec,
    pub max_len: usize,
    pub families: Vec<Family>,
    /// IPv4 unicast may carry an IPv6 next hop (RFC 8950 negotiated).
    pub extended_next_hop: bool,
}

fn family(p: &IpNetwork) -> Family {
    match p {
        IpNetwork::V4(_) => Family::Ipv4Unicast,
        IpNetwork::V6(_) => Family::Ipv6Unicast,
    }
}

/// How a prefix with this next hop goes on the wire, or None if it cannot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Carrier {
    /// The UPDATE's own NLRI field with NEXT_HOP (IPv4 over IPv4).
    Classic,
    Mp(Family),
}

fn carrier(prefix: &IpNetwork, nh: &MpNextHop, s: &OutSession) -> Option<Carrier> {
    let f = family(prefix);
    if !s.families.contains(&f) {
        return None;
    }
    match (f, nh) {
        (Family::Ipv4Unicast, MpNextHop::V4(_)) => Some(Carrier::Classic),
        (Family::Ipv4Unicast, MpNextHop::V6 { .. }) if s.extended_next_hop => {
            Some(Carrier::Mp(Family::Ipv4Unicast))
        }
        (Family::Ipv6Unicast, MpNextHop::V6 { .. }) => Some(Carrier::Mp(Family::Ipv6Unicast)),
        _ => None,
    }
}

/// One peer's Adj-RIB-Out: what it was last sent.
#[derive(Clone, Debug, Default)]
pub struct AdjRibOut {
    sent: BTreeMap<IpNetwork, Arc<Export>>,
}

impl AdjRibOut {
    pub fn len(&self) -> usize {
        self.sent.len()
    }
    pub fn is_empty(&self) -> bool {
        self.sent.is_empty()
    }
    pub fn get(&self, prefix: &IpNetwork) -> Option<&Arc<Export>> {
        self.sent.get(prefix)
    }
    pub fn iter(&self) -> impl Iterator<Item = (&IpNetwork, &Arc<Export>)> {
        self.sent.iter()
    }

    /// Session down: nothing was sent any more.
    pub fn clear(&mut self) {
        self.sent.clear();
    }

    /// The UPDATEs that make the peer's view equal `wanted`. Prefixes that cannot be
    /// carried on this session (family not negotiated, IPv6 next hop for IPv4 without
    /// RFC 8950) are treated as not wanted.
    pub fn sync(
        &mut self,
        wanted: &BTreeMap<IpNetwork, Arc<Export>>,
        s: &OutSession,
    ) -> Vec<UpdateRepr> {
        let carried = |p: &IpNetwork, e: &Export| carrier(p, &e.next_hop, s).is_some();
        let withdrawn: Vec<IpNetwork> = self
            .sent
            .keys()
            .filter(|p| !wanted.get(*p).is_some_and(|e| carried(p, e)))
            .copied()
            .collect();
        let announce: Vec<(IpNetwork, Arc<Export>)> = wanted
            .iter()
            .filter(|(p, e)| carried(p, e) && self.sent.get(*p) != Some(*e))
            .map(|(p, e)| (*p, e.clone()))
            .collect();
        for p in &withdrawn {
            self.sent.remove(p);
        }
        for (p, e) in &announce {
            self.sent.insert(*p, e.clone());
        }
        let mut out = pack_withdrawals(&withdrawn, s);
        out.extend(pack_announcements(&announce, s));
        out
    }

    /// The UPDATEs that make the peer's view of `changes`' prefixes equal to what they
    /// say (None: not wanted), leaving every other prefix alone: the incremental form of
    /// [`AdjRibOut::sync`], costing O(changes), for the prefixes an input touched.
    pub fn sync_prefixes(
        &mut self,
        changes: &[(IpNetwork, Option<Arc<Export>>)],
        s: &OutSession,
    ) -> Vec<UpdateRepr> {
        let mut withdrawn = Vec::new();
        let mut announce = Vec::new();
        for (p, want) in changes {
            match want
                .as_ref()
                .filter(|e| carrier(p, &e.next_hop, s).is_some())
            {
                Some(e) => {
                    if self.sent.get(p) != Some(e) {
                        self.sent.insert(*p, e.clone());
                        announce.push((*p, e.clone()));
                    }
                }
                None => {
                    if self.sent.remove(p).is_some() {
                        withdrawn.push(*p);
                    }
                }
            }
        }
        let mut out = pack_withdrawals(&withdrawn, s);
        out.extend(pack_announcements(&announce, s));
        out
    }

    /// Everything again (an answer to ROUTE-REFRESH, RFC 2918 4), for one family.
    pub fn refresh(&self, f: Family, s: &OutSession) -> Vec<UpdateRepr> {
        let all: Vec<(IpNetwork, Arc<Export>)> = self
            .sent
            .iter()
            .filter(|(p, _)| family(p) == f)
            .map(|(p, e)| (*p, e.clone()))
            .collect();
        pack_announcements(&all, s)
    }
}

/// Room for prefixes in an UPDATE whose other parts take `fixed` bytes. One byte of slack
/// covers the extended-length attribute header once MP_* grows past 255 bytes.
fn room(s: &OutSession, fixed: usize) -> usize {
    s.max_len.saturating_sub(HEADER_LEN + 4 + fixed + 1)
}

fn pack_withdrawals(withdrawn: &[IpNetwork], s: &OutSession) -> Vec<UpdateRepr> {
    let mut out = Vec::new();
    let v4: Vec<IpNetwork> = withdrawn.iter().filter(|p| p.is_ipv4()).copied().collect();
    for chunk in chunks(&v4, room(s, 0)) {
        out.push(UpdateRepr {
            withdrawn: chunk,
            ..UpdateRepr::default()
        });
    }
    let v6: Vec<IpNetwork> = withdrawn.iter().filter(|p| p.is_ipv6()).copied().collect();
    // MP_UNREACH header: 4 bytes attribute header + AFI/SAFI.
    for chunk in chunks(&v6, room(s, 4 + 3)) {
        out.push(UpdateRepr {
            attrs: PathAttrs {
                mp_unreach: Some(MpUnreach {
                    family: Family::Ipv6Unicast,
                    withdrawn: chunk,
                }),
                ..PathAttrs::default()
            },
            ..UpdateRepr::default()
        });
    }
    out
}

fn pack_announcements(routes: &[(IpNetwork, Arc<Export>)], s: &OutSession) -> Vec<UpdateRepr> {
    // Group by (how it is carried, attributes); BTreeMap on the carrier keeps IPv4 first,
    // and a Vec of groups keeps the order deterministic.
    // The index finds a prefix's group by hash (a full table has many distinct
    // attribute sets: a linear search of the groups made packing quadratic); the last
    // group is tried first by pointer, since neighbours in prefix order usually share
    // one `Arc<Export>`.
    let mut groups: Vec<(Carrier, Arc<Export>, Vec<IpNetwork>)> = Vec::new();
    let mut index: HashMap<(Carrier, &Export), usize> = HashMap::new();
    let mut last: Option<usize> = None;
    for (p, e) in routes {
        let Some(c) = carrier(p, &e.next_hop, s) else {
            continue;
        };
        if let Some(i) = last.filter(|&i| groups[i].0 == c && Arc::ptr_eq(&groups[i].1, e)) {
            groups[i].2.push(*p);
            continue;
        }
        let i = *index.entry((c, &**e)).or_insert_with(|| {
            groups.push((c, e.clone(), Vec::new()));
            groups.len() - 1
        });
        groups[i].2.push(*p);
        last = Some(i);
    }
    groups.sort_by_key(|(c, _, _)| *c);
    let mut out = Vec::new();
    for (c, e, prefixes) in groups {
        let mut attrs = e.attrs.clone();
        attrs.mp_reach = None;
        attrs.mp_unreach = None;
        attrs.next_hop = None;
        match (c, e.next_hop) {
            (Carrier::Classic, MpNextHop::V4(a)) => attrs.next_hop = Some(a),
            (Carrier::Mp(f), nh) => {
                attrs.mp_reach = Some(MpReach {
                    family: f,
                    next_hop: nh,
                    nlri: Vec::new(),
                })
            }
            _ => continue,
        }
        let mut base = Vec::new();
        super::attr::emit_attrs(&attrs, s.codec, &mut base);
        for chunk in chunks(&prefixes, room(s, base.len())) {
            let mut u = UpdateRepr {
                attrs: attrs.clone(),
                ..UpdateRepr::default()
            };
            match u.attrs.mp_reach.as_mut() {
                Some(r) => r.nlri = chunk,
                None => u.nlri = chunk,
            }
            out.push(u);
        }
    }
    out
}

/// Splits prefixes into runs whose encoding fits `room` bytes (at least one per run).
fn chunks(prefixes: &[IpNetwork], room: usize) -> Vec<Vec<IpNetwork>> {
    let mut out: Vec<Vec<IpNetwork>> = Vec::new();
    let mut cur: Vec<IpNetwork> = Vec::new();
    let mut used = 0;
    for p in prefixes {
        let n = prefixes_len(std::slice::from_ref(p));
        if !cur.is_empty() && used + n > room {
            out.push(std::mem::take(&mut cur));
            used = 0;
        }
        used += n;
        cur.push(*p);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests;
