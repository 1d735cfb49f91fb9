//! BGP path attributes and NLRI encoding: RFC 4271 sections 4.3 and 5 (ORIGIN, AS_PATH,
//! NEXT_HOP, MULTI_EXIT_DISC, LOCAL_PREF, ATOMIC_AGGREGATE, AGGREGATOR), RFC 1997
//! (COMMUNITIES), RFC 8092 (LARGE_COMMUNITY), RFC 4760 (MP_REACH_NLRI / MP_UNREACH_NLRI
//! for IPv4 and IPv6 unicast), RFC 8950 (IPv6 next hop for IPv4 NLRI, 32-byte global +
//! link-local next hops), RFC 6793 (AS4_PATH, AS4_AGGREGATOR, 2- or 4-octet AS_PATH),
//! RFC 4456 (ORIGINATOR_ID, CLUSTER_LIST).
//!
//! Error handling is RFC 7606: [`parse_attrs`] never fails for a single bad attribute; it
//! returns the attributes it could read plus a [`Faults`] record saying which were
//! discarded and whether the whole UPDATE must be treated as a withdraw. Only the cases
//! RFC 7606 still calls session resets come back as `Err(Notification)`.
//!
//! Pure codecs: nothing here knows about peers, sessions or the RIB.

use super::message::{Notification, UPDATE_ERROR};
use ipnetwork::{IpNetwork, Ipv4Network, Ipv6Network};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Attribute flag bits (RFC 4271 4.3).
pub const FLAG_OPTIONAL: u8 = 0x80;
pub const FLAG_TRANSITIVE: u8 = 0x40;
pub const FLAG_PARTIAL: u8 = 0x20;
pub const FLAG_EXTENDED: u8 = 0x10;

/// Attribute type codes.
pub mod code {
    pub const ORIGIN: u8 = 1;
    pub const AS_PATH: u8 = 2;
    pub const NEXT_HOP: u8 = 3;
    pub const MED: u8 = 4;
    pub const LOCAL_PREF: u8 = 5;
    pub const ATOMIC_AGGREGATE: u8 = 6;
    pub const AGGREGATOR: u8 = 7;
    pub const COMMUNITIES: u8 = 8;
    pub const ORIGINATOR_ID: u8 = 9;
    pub const CLUSTER_LIST: u8 = 10;
    pub const MP_REACH: u8 = 14;
    pub const MP_UNREACH: u8 = 15;
    pub const AS4_PATH: u8 = 17;
    pub const AS4_AGGREGATOR: u8 = 18;
    pub const LARGE_COMMUNITY: u8 = 32;
}

/// UPDATE Message Error subcodes (RFC 4271 6.3).
pub mod subcode {
    pub const MALFORMED_ATTR_LIST: u8 = 1;
    pub const UNRECOGNIZED_WELL_KNOWN: u8 = 2;
    pub const MISSING_WELL_KNOWN: u8 = 3;
    pub const ATTR_FLAGS: u8 = 4;
    pub const ATTR_LENGTH: u8 = 5;
    pub const INVALID_ORIGIN: u8 = 6;
    pub const INVALID_NEXT_HOP: u8 = 8;
    pub const OPTIONAL_ATTR: u8 = 9;
    pub const INVALID_NETWORK: u8 = 10;
    pub const MALFORMED_AS_PATH: u8 = 11;
}

pub const AFI_IPV4: u16 = 1;
pub const AFI_IPV6: u16 = 2;
pub const SAFI_UNICAST: u8 = 1;
/// RFC 6793: the 2-octet stand-in for a 4-octet AS number.
pub const AS_TRANS: u16 = 23456;

/// The address families this speaker knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    Ipv4Unicast,
    Ipv6Unicast,
}

impl Family {
    pub fn from_afi_safi(afi: u16, safi: u8) -> Option<Family> {
        match (afi, safi) {
            (AFI_IPV4, SAFI_UNICAST) => Some(Family::Ipv4Unicast),
            (AFI_IPV6, SAFI_UNICAST) => Some(Family::Ipv6Unicast),
            _ => None,
        }
    }
    pub fn afi(self) -> u16 {
        match self {
            Family::Ipv4Unicast => AFI_IPV4,
            Family::Ipv6Unicast => AFI_IPV6,
        }
    }
    pub fn safi(self) -> u8 {
        SAFI_UNICAST
    }
    fn max_len(self) -> u8 {
        match self {
            Family::Ipv4Unicast => 32,
            Family::Ipv6Unicast => 128,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    Igp = 0,
    Egp = 1,
    Incomplete = 2,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SegmentType {
    Set = 1,
    Sequence = 2,
    ConfedSequence = 3,
    ConfedSet = 4,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Segment {
    pub kind: SegmentType,
    pub asns: Vec<u32>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct AsPath {
    pub segments: Vec<Segment>,
}

impl AsPath {
    /// A path of one AS_SEQUENCE.
    pub fn sequence(asns: &[u32]) -> AsPath {
        if asns.is_empty() {
            return AsPath::default();
        }
        AsPath {
            segments: vec![Segment {
                kind: SegmentType::Sequence,
                asns: asns.to_vec(),
            }],
        }
    }

    /// Length for the decision process (RFC 4271 9.1.2.2 a): a set counts as one,
    /// confederation segments count as zero (RFC 5065 5.3).
    pub fn decision_len(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s.kind {
                SegmentType::Sequence => s.asns.len(),
                SegmentType::Set => 1,
                SegmentType::ConfedSequence | SegmentType::ConfedSet => 0,
            })
            .sum()
    }

    /// The neighboring AS (RFC 4271 9.1.2.2 c): the first AS of a leading AS_SEQUENCE.
    pub fn first_as(&self) -> Option<u32> {
        match self.segments.first() {
            Some(s) if s.kind == SegmentType::Sequence => s.asns.first().copied(),
            _ => None,
        }
    }

    pub fn contains(&self, asn: u32) -> bool {
        self.segments.iter().any(|s| s.asns.contains(&asn))
    }

    /// RFC 6793 4.2.3: rebuild the real path from a 2-octet AS_PATH and an AS4_PATH.
    /// If the AS4_PATH is longer, it is ignored.
    pub fn merge_as4(&self, as4: &AsPath) -> AsPath {
        let (n, m) = (self.decision_len(), as4.decision_len());
        if m > n {
            return self.clone();
        }
        // Keep the leading (n - m) ASes of AS_PATH, then append AS4_PATH.
        let mut keep = n - m;
        let mut out = AsPath::default();
        for s in &self.segments {
            if keep == 0 {
                break;
            }
            match s.kind {
                SegmentType::Sequence => {
                    let take = keep.min(s.asns.len());
                    out.segments.push(Segment {
                        kind: SegmentType::Sequence,
                        asns: s.asns[..take].to_vec(),
                    });
                    keep -= take;
                }
                SegmentType::Set => {
                    out.segments.push(s.clone());
                    keep -= 1;
                }
                _ => out.segments.push(s.clone()),
            }
        }
        for s in &as4.segments {
            // Join sequences cut at the seam, so the result reads as the originator sent it.
            match out.segments.last_mut() {
                Some(last)
                    if last.kind == SegmentType::Sequence && s.kind == SegmentType::Sequence =>
                {
                    last.asns.extend_from_slice(&s.asns)
                }
                _ => out.segments.push(s.clone()),
            }
        }
        out
    }

    fn parse(data: &[u8], asn_len: usize) -> Option<AsPath> {
        let mut segments = Vec::new();
        let mut rest = data;
        while !rest.is_empty() {
            let (&kind, after) = rest.split_first()?;
            let (&count, after) = after.split_first()?;
            let kind = match kind {
                1 => SegmentType::Set,
                2 => SegmentType::Sequence,
                3 => SegmentType::ConfedSequence,
                4 => SegmentType::ConfedSet,
                _ => return None,
            };
            let len = count as usize * asn_len;
            if count == 0 || after.len() < len {
                return None;
            }
            let asns = after[..len]
                .chunks_exact(asn_len)
                .map(|c| c.iter().fold(0u32, |a, &b| (a << 8) | u32::from(b)))
                .collect();
            segments.push(Segment { kind, asns });
            rest = &after[len..];
        }
        Some(AsPath { segments })
    }

    /// Encodes with 2- or 4-octet AS numbers; in 2-octet form, ASes above 65535 become
    /// AS_TRANS. Segments longer than 255 are split.
    fn emit(&self, out: &mut Vec<u8>, four_octet: bool) {
        for s in &self.segments {
            for chunk in s.asns.chunks(255) {
                out.push(s.kind as u8);
                out.push(chunk.len() as u8);
                for &asn in chunk {
                    if four_octet {
                        out.extend_from_slice(&asn.to_be_bytes());
                    } else {
                        let a = u16::try_from(asn).unwrap_or(AS_TRANS);
                        out.extend_from_slice(&a.to_be_bytes());
                    }
                }
            }
        }
    }

    /// True if any AS needs 4 octets (then a 2-octet session also carries AS4_PATH).
    pub fn needs_as4(&self) -> bool {
        self.segments
            .iter()
            .any(|s| s.asns.iter().any(|&a| a > 0xffff))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Aggregator {
    pub asn: u32,
    pub addr: Ipv4Addr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LargeCommunity {
    pub global: u32,
    pub local1: u32,
    pub local2: u32,
}

/// The next hop of MP_REACH_NLRI: IPv4 (4 bytes), or IPv6 (16 bytes, or 32 bytes with a
/// link-local address after the global one, as BIRD and FRR send on a shared link).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MpNextHop {
    V4(Ipv4Addr),
    V6 {
        global: Ipv6Addr,
        link_local: Option<Ipv6Addr>,
    },
}

impl MpNextHop {
    fn len(&self) -> usize {
        match self {
            MpNextHop::V4(_) => 4,
            MpNextHop::V6 {
                link_local: None, ..
            } => 16,
            MpNextHop::V6 { .. } => 32,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MpReach {
    pub family: Family,
    pub next_hop: MpNextHop,
    pub nlri: Vec<IpNetwork>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MpUnreach {
    pub family: Family,
    pub withdrawn: Vec<IpNetwork>,
}

/// An attribute this speaker does not interpret, kept for propagation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RawAttr {
    pub flags: u8,
    pub code: u8,
    pub data: Vec<u8>,
}

/// Everything an UPDATE says about its routes. `as_path` is in the session's AS width as
/// received; `as4_path`/`as4_aggregator` only appear from 2-octet sessions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct PathAttrs {
    pub origin: Option<Origin>,
    pub as_path: Option<AsPath>,
    pub next_hop: Option<Ipv4Addr>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    pub atomic_aggregate: bool,
    pub aggregator: Option<Aggregator>,
    pub communities: Vec<u32>,
    pub large_communities: Vec<LargeCommunity>,
    /// RFC 4456: the router id of the route's originator in the local AS (set by the
    /// first route reflector).
    pub originator_id: Option<Ipv4Addr>,
    /// RFC 4456: the clusters the route was reflected through, most recent first (empty:
    /// the attribute is absent).
    pub cluster_list: Vec<Ipv4Addr>,
    pub mp_reach: Option<MpReach>,
    pub mp_unreach: Option<MpUnreach>,
    pub as4_path: Option<AsPath>,
    pub as4_aggregator: Option<Aggregator>,
    pub unknown: Vec<RawAttr>,
}

impl PathAttrs {
    /// A copy without the prefix lists (MP_REACH_NLRI's prefixes, MP_UNREACH_NLRI):
    /// what one route of the UPDATE carries. Cheaper than cloning the lists to drop them.
    pub fn without_prefixes(&self) -> PathAttrs {
        PathAttrs {
            origin: self.origin,
            as_path: self.as_path.clone(),
            next_hop: self.next_hop,
            med: self.med,
            local_pref: self.local_pref,
            atomic_aggregate: self.atomic_aggregate,
            aggregator: self.aggregator,
            communities: self.communities.clone(),
            large_communities: self.large_communities.clone(),
            originator_id: self.originator_id,
            cluster_list: self.cluster_list.clone(),
            mp_reach: self.mp_reach.as_ref().map(|r| MpReach {
                family: r.family,
                next_hop: r.next_hop,
                nlri: Vec::new(),
            }),
            mp_unreach: None,
            as4_path: self.as4_path.clone(),
            as4_aggregator: self.as4_aggregator,
            unknown: self.unknown.clone(),
        }
    }
}

/// Why one attribute was not accepted (RFC 7606 vocabulary).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum AttrFault {
    #[error("attribute {0}: flags conflict with its type")]
    Flags(u8),
    #[error("attribute {0}: bad length")]
    Length(u8),
    #[error("attribute {0}: malformed value")]
    Value(u8),
    #[error("attribute {0}: repeated")]
    Duplicate(u8),
    #[error("attribute list overruns its length")]
    ListOverrun,
    #[error("well-known mandatory attribute {0} missing")]
    Missing(u8),
}

/// RFC 7606 outcomes short of a session reset.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Faults {
    /// The UPDATE's NLRI must be handled as withdrawn (RFC 7606 2, "treat-as-withdraw").
    pub treat_as_withdraw: Option<AttrFault>,
    /// Attributes dropped while the rest of the UPDATE stands ("attribute discard").
    pub discarded: Vec<AttrFault>,
    /// A malformed ORIGINATOR_ID or CLUSTER_LIST (RFC 7606 7.9, 7.10): treat-as-withdraw
    /// from an internal peer, attribute discard from an external one. The codec does not
    /// know which the sender is; the receiver decides (see [`Faults::withdraws`]).
    pub ibgp_treat_as_withdraw: Option<AttrFault>,
}

impl Faults {
    pub fn is_clean(&self) -> bool {
        self.treat_as_withdraw.is_none()
            && self.discarded.is_empty()
            && self.ibgp_treat_as_withdraw.is_none()
    }
    /// Whether the UPDATE's NLRI count as withdrawn when it came over an eBGP (`ebgp`)
    /// or an iBGP session.
    pub fn withdraws(&self, ebgp: bool) -> bool {
        self.treat_as_withdraw.is_some() || (!ebgp && self.ibgp_treat_as_withdraw.is_some())
    }
    fn withdraw(&mut self, f: AttrFault) {
        if self.treat_as_withdraw.is_none() {
            self.treat_as_withdraw = Some(f);
        }
    }
}

/// Session facts the encoding depends on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Codec {
    /// RFC 6793 negotiated: AS_PATH and AGGREGATOR carry 4-octet AS numbers.
    pub four_octet_as: bool,
}

fn update_error(sub: u8, data: Vec<u8>) -> Notification {
    Notification {
        code: UPDATE_ERROR,
        subcode: sub,
        data,
    }
}

/// Reads a sequence of prefixes (RFC 4271 4.3 NLRI / RFC 4760 5 encoding).
pub fn parse_prefixes(mut data: &[u8], family: Family) -> Option<Vec<IpNetwork>> {
    let mut out = Vec::new();
    while let Some((&len, rest)) = data.split_first() {
        if len > family.max_len() {
            return None;
        }
        let bytes = usize::from(len).div_ceil(8);
        if rest.len() < bytes {
            return None;
        }
        let net = match family {
            Family::Ipv4Unicast => {
                let mut a = [0u8; 4];
                a[..bytes].copy_from_slice(&rest[..bytes]);
                let addr = u32::from_be_bytes(a) & mask32(len);
                IpNetwork::V4(Ipv4Network::new(Ipv4Addr::from(addr), len).ok()?)
            }
            Family::Ipv6Unicast => {
                let mut a = [0u8; 16];
                a[..bytes].copy_from_slice(&rest[..bytes]);
                let addr = u128::from_be_bytes(a) & mask128(len);
                IpNetwork::V6(Ipv6Network::new(Ipv6Addr::from(addr), len).ok()?)
            }
        };
        out.push(net);
        data = &rest[bytes..];
    }
    Some(out)
}

fn mask32(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

fn mask128(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

/// Writes prefixes in NLRI encoding.
pub fn emit_prefixes(prefixes: &[IpNetwork], out: &mut Vec<u8>) {
    for p in prefixes {
        let len = p.prefix();
        let bytes = usize::from(len).div_ceil(8);
        out.push(len);
        match p.network() {
            std::net::IpAddr::V4(a) => out.extend_from_slice(&a.octets()[..bytes]),
            std::net::IpAddr::V6(a) => out.extend_from_slice(&a.octets()[..bytes]),
        }
    }
}

pub fn prefixes_len(prefixes: &[IpNetwork]) -> usize {
    prefixes
        .iter()
        .map(|p| 1 + usize::from(p.prefix()).div_ceil(8))
        .sum()
}

/// The (optional, transitive) flags each known attribute must carry.
fn expected_flags(code: u8) -> Option<u8> {
    use code::*;
    match code {
        ORIGIN | AS_PATH | NEXT_HOP | LOCAL_PREF | ATOMIC_AGGREGATE => Some(FLAG_TRANSITIVE),
        MED | MP_REACH | MP_UNREACH | ORIGINATOR_ID | CLUSTER_LIST => Some(FLAG_OPTIONAL),
        AGGREGATOR | COMMUNITIES | AS4_PATH | AS4_AGGREGATOR | LARGE_COMMUNITY => {
            Some(FLAG_OPTIONAL | FLAG_TRANSITIVE)
        }
        _ => None,
    }
}

/// RFC 7606 section 7: attribute discard for these, treat-as-withdraw for the others
/// (MP_REACH/MP_UNREACH are session resets and never get here).
fn discard_only(code: u8) -> bool {
    matches!(
        code,
        code::ATOMIC_AGGREGATE | code::AGGREGATOR | code::AS4_PATH | code::AS4_AGGREGATOR
    )
}

fn u32_at(d: &[u8]) -> u32 {
    d.iter().take(4).fold(0, |a, &b| (a << 8) | u32::from(b))
}

fn parse_aggregator(d: &[u8], asn_len: usize) -> Option<Aggregator> {
    if d.len() != asn_len + 4 {
        return None;
    }
    let asn = d[..asn_len]
        .iter()
        .fold(0u32, |a, &b| (a << 8) | u32::from(b));
    let addr = Ipv4Addr::new(d[asn_len], d[asn_len + 1], d[asn_len + 2], d[asn_len + 3]);
    Some(Aggregator { asn, addr })
}

fn parse_mp_next_hop(d: &[u8]) -> Option<MpNextHop> {
    let v6 = |b: &[u8]| -> Option<Ipv6Addr> { <[u8; 16]>::try_from(b).ok().map(Ipv6Addr::from) };
    match d.len() {
        4 => Some(MpNextHop::V4(Ipv4Addr::new(d[0], d[1], d[2], d[3]))),
        16 => Some(MpNextHop::V6 {
            global: v6(d)?,
            link_local: None,
        }),
        32 => Some(MpNextHop::V6 {
            global: v6(&d[..16])?,
            link_local: Some(v6(&d[16..])?),
        }),
        _ => None,
    }
}

fn parse_mp_reach(d: &[u8]) -> Option<MpReach> {
    if d.len() < 5 {
        return None;
    }
    let afi = u16::from_be_bytes([d[0], d[1]]);
    let family = Family::from_afi_safi(afi, d[2])?;
    let nh_len = usize::from(d[3]);
    let nh = d.get(4..4 + nh_len)?;
    let next_hop = parse_mp_next_hop(nh)?;
    if family == Family::Ipv6Unicast && matches!(next_hop, MpNextHop::V4(_)) {
        return None;
    }
    // One reserved octet (RFC 4760 3, formerly SNPAs), then NLRI.
    let nlri = parse_prefixes(d.get(5 + nh_len..)?, family)?;
    Some(MpReach {
        family,
        next_hop,
        nlri,
    })
}

fn parse_mp_unreach(d: &[u8]) -> Option<MpUnreach> {
    if d.len() < 3 {
        return None;
    }
    let family = Family::from_afi_safi(u16::from_be_bytes([d[0], d[1]]), d[2])?;
    let withdrawn = parse_prefixes(&d[3..], family)?;
    Some(MpUnreach { family, withdrawn })
}

/// Parses the path attributes field of an UPDATE (RFC 4271 4.3, RFC 7606).
/// `has_nlri` says whether the UPDATE's own NLRI field is non-empty (NEXT_HOP is then
/// mandatory). Returns the attributes and the faults found, or the NOTIFICATION for the
/// cases that still reset the session.
pub fn parse_attrs(
    mut data: &[u8],
    codec: Codec,
    has_nlri: bool,
) -> Result<(PathAttrs, Faults), Notification> {
    let mut attrs = PathAttrs::default();
    let mut faults = Faults::default();
    let mut seen = [false; 256];
    let asn_len = if codec.four_octet_as { 4 } else { 2 };

    while !data.is_empty() {
        // RFC 7606 4: fewer than 3 (or 4) octets left, or a length that overruns the
        // list: treat-as-withdraw; the total length still locates the NLRI.
        if data.len() < 3 {
            faults.withdraw(AttrFault::ListOverrun);
            break;
        }
        let flags = data[0];
        let ty = data[1];
        let (len, hdr) = if flags & FLAG_EXTENDED != 0 {
            if data.len() < 4 {
                faults.withdraw(AttrFault::ListOverrun);
                break;
            }
            (usize::from(u16::from_be_bytes([data[2], data[3]])), 4)
        } else {
            (usize::from(data[2]), 3)
        };
        let Some(value) = data.get(hdr..hdr + len) else {
            if ty == code::MP_REACH || ty == code::MP_UNREACH {
                return Err(update_error(subcode::OPTIONAL_ATTR, Vec::new()));
            }
            faults.withdraw(AttrFault::ListOverrun);
            break;
        };
        let raw = &data[..hdr + len];
        data = &data[hdr + len..];

        let Some(want) = expected_flags(ty) else {
            if flags & FLAG_OPTIONAL == 0 {
                return Err(update_error(subcode::UNRECOGNIZED_WELL_KNOWN, raw.to_vec()));
            }
            // Unknown optional: transitive ones travel on (RFC 4271 5), others are dropped.
            if flags & FLAG_TRANSITIVE != 0 {
                attrs.unknown.push(RawAttr {
                    flags,
                    code: ty,
                    data: value.to_vec(),
                });
            }
            continue;
        };

        let mp = ty == code::MP_REACH || ty == code::MP_UNREACH;
        if std::mem::replace(&mut seen[usize::from(ty)], true) {
            // RFC 7606 3 g: MP_* twice is a reset; anything else keeps its first copy.
            if mp {
                return Err(update_error(subcode::MALFORMED_ATTR_LIST, Vec::new()));
            }
            faults.discarded.push(AttrFault::Duplicate(ty));
            continue;
        }

        // The partial bit may be set on optional transitive attributes only.
        let flag_ok = flags & (FLAG_OPTIONAL | FLAG_TRANSITIVE) == want
            && (flags & FLAG_PARTIAL == 0 || want == FLAG_OPTIONAL | FLAG_TRANSITIVE);
        let fault = if !flag_ok {
            Some(AttrFault::Flags(ty))
        } else {
            parse_one(&mut attrs, ty, value, codec, asn_len).err()
        };
        if let Some(f) = fault {
            if mp {
                return Err(update_error(subcode::OPTIONAL_ATTR, raw.to_vec()));
            }
            if discard_only(ty) {
                faults.discarded.push(f);
            } else if ty == code::ORIGINATOR_ID || ty == code::CLUSTER_LIST {
                faults.ibgp_treat_as_withdraw.get_or_insert(f);
            } else {
                faults.withdraw(f);
            }
        }
    }

    // RFC 7606 3 d: a missing mandatory attribute is treat-as-withdraw. Only reachability
    // needs them; an UPDATE of withdrawals alone carries none.
    let reach = has_nlri || attrs.mp_reach.as_ref().is_some_and(|r| !r.nlri.is_empty());
    if reach && faults.treat_as_withdraw.is_none() {
        if attrs.origin.is_none() && !seen[usize::from(code::ORIGIN)] {
            faults.withdraw(AttrFault::Missing(code::ORIGIN));
        } else if attrs.as_path.is_none() && !seen[usize::from(code::AS_PATH)] {
            faults.withdraw(AttrFault::Missing(code::AS_PATH));
        } else if has_nlri && attrs.next_hop.is_none() && !seen[usize::from(code::NEXT_HOP)] {
            faults.withdraw(AttrFault::Missing(code::NEXT_HOP));
        }
    }
    Ok((attrs, faults))
}

fn parse_one(
    attrs: &mut PathAttrs,
    ty: u8,
    v: &[u8],
    codec: Codec,
    asn_len: usize,
) -> Result<(), AttrFault> {
    let len_is = |n: usize| {
        if v.len() == n {
            Ok(())
        } else {
            Err(AttrFault::Length(ty))
        }
    };
    match ty {
        code::ORIGIN => {
            len_is(1)?;
            attrs.origin = Some(match v[0] {
                0 => Origin::Igp,
                1 => Origin::Egp,
                2 => Origin::Incomplete,
                _ => return Err(AttrFault::Value(ty)),
            });
        }
        code::AS_PATH => {
            attrs.as_path = Some(AsPath::parse(v, asn_len).ok_or(AttrFault::Value(ty))?);
        }
        code::NEXT_HOP => {
            len_is(4)?;
            attrs.next_hop = Some(Ipv4Addr::new(v[0], v[1], v[2], v[3]));
        }
        code::MED => {
            len_is(4)?;
            attrs.med = Some(u32_at(v));
        }
        code::LOCAL_PREF => {
            len_is(4)?;
            attrs.local_pref = Some(u32_at(v));
        }
        code::ATOMIC_AGGREGATE => {
            len_is(0)?;
            attrs.atomic_aggregate = true;
        }
        code::AGGREGATOR => {
            attrs.aggregator = Some(parse_aggregator(v, asn_len).ok_or(AttrFault::Length(ty))?);
        }
        code::COMMUNITIES => {
            if v.is_empty() || !v.len().is_multiple_of(4) {
                return Err(AttrFault::Length(ty));
            }
            attrs.communities = v.chunks_exact(4).map(u32_at).collect();
        }
        code::LARGE_COMMUNITY => {
            if v.is_empty() || !v.len().is_multiple_of(12) {
                return Err(AttrFault::Length(ty));
            }
            attrs.large_communities = v
                .chunks_exact(12)
                .map(|c| LargeCommunity {
                    global: u32_at(&c[0..4]),
                    local1: u32_at(&c[4..8]),
                    local2: u32_at(&c[8..12]),
                })
                .collect();
        }
        code::ORIGINATOR_ID => {
            len_is(4)?;
            attrs.originator_id = Some(Ipv4Addr::new(v[0], v[1], v[2], v[3]));
        }
        code::CLUSTER_LIST => {
            if v.is_empty() || !v.len().is_multiple_of(4) {
                return Err(AttrFault::Length(ty));
            }
            attrs.cluster_list = v
                .chunks_exact(4)
                .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]))
                .collect();
        }
        code::MP_REACH => {
            attrs.mp_reach = Some(parse_mp_reach(v).ok_or(AttrFault::Value(ty))?);
        }
        code::MP_UNREACH => {
            attrs.mp_unreach = Some(parse_mp_unreach(v).ok_or(AttrFault::Value(ty))?);
        }
        // RFC 6793 4.1: between two 4-octet speakers these are ignored.
        code::AS4_PATH if !codec.four_octet_as => {
            let p = AsPath::parse(v, 4).ok_or(AttrFault::Value(ty))?;
            // RFC 6793 6: confederation segments in AS4_PATH are malformed.
            if p.segments
                .iter()
                .any(|s| matches!(s.kind, SegmentType::ConfedSequence | SegmentType::ConfedSet))
            {
                return Err(AttrFault::Value(ty));
            }
            attrs.as4_path = Some(p);
        }
        code::AS4_AGGREGATOR if !codec.four_octet_as => {
            attrs.as4_aggregator = Some(parse_aggregator(v, 4).ok_or(AttrFault::Length(ty))?);
        }
        _ => {}
    }
    Ok(())
}

fn push_attr(out: &mut Vec<u8>, flags: u8, ty: u8, value: &[u8]) {
    if value.len() > 255 {
        out.push(flags | FLAG_EXTENDED);
        out.push(ty);
        out.extend_from_slice(&(value.len().min(0xffff) as u16).to_be_bytes());
    } else {
        out.push(flags & !FLAG_EXTENDED);
        out.push(ty);
        out.push(value.len() as u8);
    }
    out.extend_from_slice(value);
}

/// Writes the path attributes field: MP_UNREACH and MP_REACH first (RFC 7606 5.1), then
/// the others in type order. A 2-octet session also gets AS4_PATH/AS4_AGGREGATOR when
/// an AS does not fit (RFC 6793 4.2.2).
pub fn emit_attrs(attrs: &PathAttrs, codec: Codec, out: &mut Vec<u8>) {
    let wk = FLAG_TRANSITIVE;
    let ot = FLAG_OPTIONAL | FLAG_TRANSITIVE;
    let mut v = Vec::new();
    if let Some(u) = &attrs.mp_unreach {
        v.clear();
        v.extend_from_slice(&u.family.afi().to_be_bytes());
        v.push(u.family.safi());
        emit_prefixes(&u.withdrawn, &mut v);
        push_attr(out, FLAG_OPTIONAL, code::MP_UNREACH, &v);
    }
    if let Some(r) = &attrs.mp_reach {
        v.clear();
        v.extend_from_slice(&r.family.afi().to_be_bytes());
        v.push(r.family.safi());
        v.push(r.next_hop.len() as u8);
        match r.next_hop {
            MpNextHop::V4(a) => v.extend_from_slice(&a.octets()),
            MpNextHop::V6 { global, link_local } => {
                v.extend_from_slice(&global.octets());
                if let Some(ll) = link_local {
                    v.extend_from_slice(&ll.octets());
                }
            }
        }
        v.push(0);
        emit_prefixes(&r.nlri, &mut v);
        push_attr(out, FLAG_OPTIONAL, code::MP_REACH, &v);
    }
    if let Some(o) = attrs.origin {
        push_attr(out, wk, code::ORIGIN, &[o as u8]);
    }
    if let Some(p) = &attrs.as_path {
        v.clear();
        p.emit(&mut v, codec.four_octet_as);
        push_attr(out, wk, code::AS_PATH, &v);
    }
    if let Some(nh) = attrs.next_hop {
        push_attr(out, wk, code::NEXT_HOP, &nh.octets());
    }
    if let Some(m) = attrs.med {
        push_attr(out, FLAG_OPTIONAL, code::MED, &m.to_be_bytes());
    }
    if let Some(lp) = attrs.local_pref {
        push_attr(out, wk, code::LOCAL_PREF, &lp.to_be_bytes());
    }
    if attrs.atomic_aggregate {
        push_attr(out, wk, code::ATOMIC_AGGREGATE, &[]);
    }
    if let Some(a) = attrs.aggregator {
        v.clear();
        if codec.four_octet_as {
            v.extend_from_slice(&a.asn.to_be_bytes());
        } else {
            v.extend_from_slice(&u16::try_from(a.asn).unwrap_or(AS_TRANS).to_be_bytes());
        }
        v.extend_from_slice(&a.addr.octets());
        push_attr(out, ot, code::AGGREGATOR, &v);
    }
    if !attrs.communities.is_empty() {
        v.clear();
        for c in &attrs.communities {
            v.extend_from_slice(&c.to_be_bytes());
        }
        push_attr(out, ot, code::COMMUNITIES, &v);
    }
    if let Some(id) = attrs.originator_id {
        push_attr(out, FLAG_OPTIONAL, code::ORIGINATOR_ID, &id.octets());
    }
    if !attrs.cluster_list.is_empty() {
        v.clear();
        for id in &attrs.cluster_list {
            v.extend_from_slice(&id.octets());
        }
        push_attr(out, FLAG_OPTIONAL, code::CLUSTER_LIST, &v);
    }
    if !codec.four_octet_as {
        let as4 = attrs
            .as4_path
            .clone()
            .or_else(|| attrs.as_path.clone().filter(AsPath::needs_as4));
        if let Some(p) = as4 {
            v.clear();
            p.emit(&mut v, true);
            push_attr(out, ot, code::AS4_PATH, &v);
        }
        let agg4 = attrs
            .as4_aggregator
            .or(attrs.aggregator.filter(|a| a.asn > 0xffff));
        if let Some(a) = agg4 {
            v.clear();
            v.extend_from_slice(&a.asn.to_be_bytes());
            v.extend_from_slice(&a.addr.octets());
            push_attr(out, ot, code::AS4_AGGREGATOR, &v);
        }
    }
    if !attrs.large_communities.is_empty() {
        v.clear();
        for c in &attrs.large_communities {
            v.extend_from_slice(&c.global.to_be_bytes());
            v.extend_from_slice(&c.local1.to_be_bytes());
            v.extend_from_slice(&c.local2.to_be_bytes());
        }
        push_attr(out, ot, code::LARGE_COMMUNITY, &v);
    }
    for u in &attrs.unknown {
        // Written as stored; whoever propagates one sets FLAG_PARTIAL (RFC 4271 5).
        push_attr(out, u.flags, u.code, &u.data);
    }
}

#[cfg(test)]
mod tests;
