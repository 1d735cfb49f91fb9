//! Route policy for import and export: an ordered list of terms, each a conjunction of
//! matches (prefix lists with ge/le, AS path, neighbor and origin AS, RFC 1997 communities,
//! RFC 8092 large communities, family) with attribute edits (local pref, MED, prepend,
//! communities) and an optional verdict; the first verdict wins, else the policy's
//! default. RFC 8212: an eBGP neighbor without a policy exchanges nothing
//! ([`effective_verdict`]).
//!
//! Pure and not wired yet: the instance applies import policy between Adj-RIB-In
//! (pre-policy) and the decision, and export policy on `exports_for`'s output.

use super::attr::{AsPath, Family, LargeCommunity, PathAttrs};
use super::export::prepend;
use ipnetwork::IpNetwork;
use std::borrow::Cow;

/// One prefix-list entry: `prefix` with optional `ge`/`le` bounds on the length.
/// Without bounds it matches the prefix exactly; with `ge` only, lengths from `ge` to the
/// family maximum; with `le` only, from the prefix's own length to `le`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrefixMatch {
    pub prefix: IpNetwork,
    pub ge: Option<u8>,
    pub le: Option<u8>,
}

impl PrefixMatch {
    pub fn matches(&self, p: &IpNetwork) -> bool {
        let same_family = self.prefix.is_ipv4() == p.is_ipv4();
        if !same_family || p.prefix() < self.prefix.prefix() {
            return false;
        }
        // p lies inside self.prefix: its network address is in the covering prefix.
        if !self.prefix.contains(p.network()) {
            return false;
        }
        let max = if p.is_ipv4() { 32 } else { 128 };
        let (lo, hi) = match (self.ge, self.le) {
            (None, None) => (self.prefix.prefix(), self.prefix.prefix()),
            (Some(ge), None) => (ge, max),
            (None, Some(le)) => (self.prefix.prefix(), le),
            (Some(ge), Some(le)) => (ge, le),
        };
        (lo..=hi).contains(&p.prefix())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Match {
    /// Any entry matches.
    PrefixList(Vec<PrefixMatch>),
    Family(Family),
    /// The AS appears anywhere in the path.
    AsPathContains(u32),
    /// The first AS (the neighbor's).
    NeighborAs(u32),
    /// The last AS of a trailing AS_SEQUENCE (the originator's).
    OriginAs(u32),
    AsPathLenAtMost(usize),
    Community(u32),
    LargeCommunity(LargeCommunity),
    /// Inverts a match.
    Not(Box<Match>),
}

impl Match {
    pub fn matches(&self, prefix: &IpNetwork, a: &PathAttrs) -> bool {
        let empty = AsPath::default();
        let path = a.as_path.as_ref().unwrap_or(&empty);
        match self {
            Match::PrefixList(l) => l.iter().any(|m| m.matches(prefix)),
            Match::Family(f) => {
                *f == if prefix.is_ipv4() {
                    Family::Ipv4Unicast
                } else {
                    Family::Ipv6Unicast
                }
            }
            Match::AsPathContains(asn) => path.contains(*asn),
            Match::NeighborAs(asn) => path.first_as() == Some(*asn),
            Match::OriginAs(asn) => {
                path.segments.last().and_then(|s| s.asns.last()) == Some(asn)
                    && path.segments.last().map(|s| s.kind)
                        == Some(super::attr::SegmentType::Sequence)
            }
            Match::AsPathLenAtMost(n) => path.decision_len() <= *n,
            Match::Community(c) => a.communities.contains(c),
            Match::LargeCommunity(c) => a.large_communities.contains(c),
            Match::Not(m) => !m.matches(prefix, a),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Set {
    LocalPref(u32),
    Med(u32),
    Prepend { asn: u32, count: u8 },
    AddCommunity(u32),
    RemoveCommunity(u32),
    AddLargeCommunity(LargeCommunity),
    RemoveLargeCommunity(LargeCommunity),
}

impl Set {
    fn apply(&self, a: &mut PathAttrs) {
        match self {
            Set::LocalPref(v) => a.local_pref = Some(*v),
            Set::Med(v) => a.med = Some(*v),
            Set::Prepend { asn, count } => {
                let mut p = a.as_path.clone().unwrap_or_default();
                for _ in 0..*count {
                    p = prepend(&p, *asn);
                }
                a.as_path = Some(p);
            }
            Set::AddCommunity(c) => {
                if !a.communities.contains(c) {
                    a.communities.push(*c);
                }
            }
            Set::RemoveCommunity(c) => a.communities.retain(|x| x != c),
            Set::AddLargeCommunity(c) => {
                if !a.large_communities.contains(c) {
                    a.large_communities.push(*c);
                }
            }
            Set::RemoveLargeCommunity(c) => a.large_communities.retain(|x| x != c),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Reject,
}

/// All `matches` must hold; then `sets` apply and `verdict` (if any) ends evaluation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Term {
    pub matches: Vec<Match>,
    pub sets: Vec<Set>,
    pub verdict: Option<Verdict>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub terms: Vec<Term>,
    pub default: Verdict,
}

impl Policy {
    pub fn accept_all() -> Policy {
        Policy {
            terms: Vec::new(),
            default: Verdict::Accept,
        }
    }

    /// Whether every route passes unedited (no term, default accept): callers skip the
    /// per-prefix evaluation.
    pub fn accepts_everything(&self) -> bool {
        self.terms.is_empty() && self.default == Verdict::Accept
    }

    /// Evaluates the terms in order, editing `attrs` as they say. On `Reject` the edits
    /// are meaningless; callers drop the route.
    pub fn apply(&self, prefix: &IpNetwork, attrs: &mut PathAttrs) -> Verdict {
        let mut edited = Cow::Borrowed(&*attrs);
        let v = self.apply_shared(prefix, &mut edited);
        if let Cow::Owned(a) = edited {
            *attrs = a;
        }
        v
    }

    /// [`Policy::apply`] on shared attributes, copied only when a term edits them: the
    /// prefixes of an UPDATE share theirs, and most policies edit few routes (or none).
    pub fn apply_shared(&self, prefix: &IpNetwork, attrs: &mut Cow<'_, PathAttrs>) -> Verdict {
        for t in &self.terms {
            if t.matches.iter().all(|m| m.matches(prefix, attrs)) {
                if !t.sets.is_empty() {
                    let a = attrs.to_mut();
                    for s in &t.sets {
                        s.apply(a);
                    }
                }
                if let Some(v) = t.verdict {
                    return v;
                }
            }
        }
        self.default
    }
}

/// RFC 8212: with no policy configured, eBGP routes are neither accepted nor sent
/// (unless the operator opted out with `allow_without_policy`); iBGP accepts all.
pub fn effective_verdict(
    policy: Option<&Policy>,
    ebgp: bool,
    allow_without_policy: bool,
    prefix: &IpNetwork,
    attrs: &mut Cow<'_, PathAttrs>,
) -> Verdict {
    match policy {
        Some(p) => p.apply_shared(prefix, attrs),
        None if ebgp && !allow_without_policy => Verdict::Reject,
        None => Verdict::Accept,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::bgp::attr::AsPath;

    fn net(s: &str) -> IpNetwork {
        s.parse().expect("prefix")
    }

    fn pm(p: &str, ge: Option<u8>, le: Option<u8>) -> PrefixMatch {
        PrefixMatch {
            prefix: net(p),
            ge,
            le,
        }
    }

    fn attrs(path: &[u32]) -> PathAttrs {
        PathAttrs {
            as_path: Some(AsPath::sequence(path)),
            communities: vec![0xfde9_0001],
            ..PathAttrs::default()
        }
    }

    #[test]
    fn prefix_list_ge_le() {
        let exact = pm("10.0.0.0/8", None, None);
        assert!(exact.matches(&net("10.0.0.0/8")));
        assert!(!exact.matches(&net("10.1.0.0/16")));
        let le24 = pm("10.0.0.0/8", None, Some(24));
        assert!(le24.matches(&net("10.0.0.0/8")));
        assert!(le24.matches(&net("10.9.9.0/24")));
        assert!(!le24.matches(&net("10.9.9.128/25")));
        assert!(!le24.matches(&net("11.0.0.0/16")));
        let ge16 = pm("10.0.0.0/8", Some(16), None);
        assert!(!ge16.matches(&net("10.0.0.0/8")));
        assert!(ge16.matches(&net("10.1.2.3/32")));
        let both = pm("172.20.0.0/14", Some(24), Some(28));
        assert!(both.matches(&net("172.21.5.0/26")));
        assert!(!both.matches(&net("172.21.5.0/29")));
        assert!(!both.matches(&net("172.24.0.0/24")));
        let v6 = pm("fd00::/8", None, Some(64));
        assert!(v6.matches(&net("fd42:1::/48")));
        assert!(!v6.matches(&net("10.0.0.0/8")), "families never mix");
    }

    #[test]
    fn dn42_style_import_policy() {
        // Accept dn42 space up to /24 (v4) from the neighbor, raise local pref for
        // routes originated by AS 4242420002, reject the rest.
        let policy = Policy {
            terms: vec![
                Term {
                    matches: vec![Match::PrefixList(vec![pm("172.20.0.0/14", None, Some(24))])],
                    sets: vec![],
                    verdict: None,
                },
                Term {
                    matches: vec![
                        Match::PrefixList(vec![pm("172.20.0.0/14", None, Some(24))]),
                        Match::OriginAs(4_242_420_002),
                    ],
                    sets: vec![Set::LocalPref(200), Set::AddCommunity(0xfde9_0002)],
                    verdict: Some(Verdict::Accept),
                },
                Term {
                    matches: vec![Match::PrefixList(vec![pm("172.20.0.0/14", None, Some(24))])],
                    sets: vec![],
                    verdict: Some(Verdict::Accept),
                },
            ],
            default: Verdict::Reject,
        };
        let mut a = attrs(&[4_242_420_001, 4_242_420_002]);
        assert_eq!(policy.apply(&net("172.21.0.0/24"), &mut a), Verdict::Accept);
        assert_eq!(a.local_pref, Some(200));
        assert_eq!(a.communities, vec![0xfde9_0001, 0xfde9_0002]);
        let mut a = attrs(&[4_242_420_001]);
        assert_eq!(policy.apply(&net("172.21.0.0/24"), &mut a), Verdict::Accept);
        assert_eq!(a.local_pref, None);
        let mut a = attrs(&[4_242_420_001]);
        assert_eq!(policy.apply(&net("10.0.0.0/8"), &mut a), Verdict::Reject);
    }

    #[test]
    fn export_edits_and_negation() {
        let lc = LargeCommunity {
            global: 65001,
            local1: 1,
            local2: 1,
        };
        let policy = Policy {
            terms: vec![
                Term {
                    matches: vec![Match::Community(0xfde9_0001)],
                    sets: vec![Set::RemoveCommunity(0xfde9_0001)],
                    verdict: Some(Verdict::Reject),
                },
                Term {
                    matches: vec![Match::Not(Box::new(Match::AsPathLenAtMost(2)))],
                    sets: vec![],
                    verdict: Some(Verdict::Reject),
                },
                Term {
                    matches: vec![Match::NeighborAs(65002), Match::Family(Family::Ipv6Unicast)],
                    sets: vec![
                        Set::Prepend {
                            asn: 65001,
                            count: 2,
                        },
                        Set::Med(50),
                        Set::AddLargeCommunity(lc),
                    ],
                    verdict: Some(Verdict::Accept),
                },
            ],
            default: Verdict::Accept,
        };
        let mut a = attrs(&[65002]);
        assert_eq!(policy.apply(&net("2001:db8::/32"), &mut a), Verdict::Reject);
        let mut a = attrs(&[65002]);
        a.communities.clear();
        assert_eq!(policy.apply(&net("2001:db8::/32"), &mut a), Verdict::Accept);
        assert_eq!(a.as_path, Some(AsPath::sequence(&[65001, 65001, 65002])));
        assert_eq!(a.med, Some(50));
        assert_eq!(a.large_communities, vec![lc]);
        let mut a = attrs(&[1, 2, 3]);
        a.communities.clear();
        assert_eq!(policy.apply(&net("10.0.0.0/8"), &mut a), Verdict::Reject);
        assert!(Match::AsPathContains(2).matches(&net("10.0.0.0/8"), &a));
    }

    #[test]
    fn rfc8212_default() {
        let p = net("10.0.0.0/8");
        let a = attrs(&[65002]);
        let mut a = Cow::Borrowed(&a);
        assert_eq!(
            effective_verdict(None, true, false, &p, &mut a),
            Verdict::Reject
        );
        assert_eq!(
            effective_verdict(None, true, true, &p, &mut a),
            Verdict::Accept
        );
        assert_eq!(
            effective_verdict(None, false, false, &p, &mut a),
            Verdict::Accept
        );
        let all = Policy::accept_all();
        assert_eq!(
            effective_verdict(Some(&all), true, false, &p, &mut a),
            Verdict::Accept
        );
    }

    #[test]
    fn shared_attributes_are_copied_only_when_edited() {
        let policy = Policy {
            terms: vec![
                Term {
                    matches: vec![Match::PrefixList(vec![pm("10.0.0.0/8", None, Some(24))])],
                    sets: vec![Set::LocalPref(200)],
                    verdict: Some(Verdict::Accept),
                },
                Term {
                    matches: vec![Match::NeighborAs(65002)],
                    sets: Vec::new(),
                    verdict: Some(Verdict::Accept),
                },
            ],
            default: Verdict::Reject,
        };
        let a = attrs(&[65002]);
        let mut untouched = Cow::Borrowed(&a);
        let v = policy.apply_shared(&net("192.0.2.0/24"), &mut untouched);
        assert_eq!(v, Verdict::Accept);
        assert!(
            matches!(untouched, Cow::Borrowed(_)),
            "accepted without a copy"
        );
        let mut edited = Cow::Borrowed(&a);
        let v = policy.apply_shared(&net("10.1.0.0/16"), &mut edited);
        assert_eq!(v, Verdict::Accept);
        assert_eq!(edited.local_pref, Some(200));
        assert_eq!(
            a.local_pref, None,
            "the shared attributes stay as they were"
        );
    }
}
