//! OSPFv2 link state advertisements: the 20-byte LSA header (RFC 2328 A.4.1), the
//! Fletcher checksum (RFC 2328 12.1.7, RFC 905 annex B), and the bodies of router-LSAs
//! (A.4.2), network-LSAs (A.4.3), summary-LSAs (A.4.4) and AS-external-LSAs (A.4.5),
//! plus the "which instance is newer" comparison of RFC 2328 13.1.
//!
//! Pure codecs: no I/O, no clock, no LSDB. An [`Lsa`] keeps the exact bytes it was
//! parsed from (or emitted into), so an LSA is flooded byte for byte as its originator
//! built it, with only the age rewritten (the age is outside the checksum).

use std::cmp::Ordering;
use std::net::Ipv4Addr;

/// LS age at which an LSA is flushed (RFC 2328 appendix B).
pub const MAX_AGE: u16 = 3600;
/// Ages closer than this are considered equal when comparing instances.
pub const MAX_AGE_DIFF: u16 = 900;
/// Self-originated LSAs are refreshed after this many seconds.
pub const LS_REFRESH_TIME: u16 = 1800;
pub const INITIAL_SEQUENCE: i32 = 0x8000_0001_u32 as i32;
pub const MAX_SEQUENCE: i32 = 0x7fff_ffff;
pub const HEADER_LEN: usize = 20;

/// Why bytes are not a well-formed LSA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum LsaError {
    #[error("LSA shorter than its header or its length field")]
    Truncated,
    #[error("LSA length field below the header length or not a multiple of 4")]
    BadLength,
    #[error("LSA Fletcher checksum does not verify")]
    BadChecksum,
    #[error("LSA body does not match its type")]
    BadBody,
    #[error("LS type {0} is not known")]
    UnknownType(u8),
    #[error("LS age above MaxAge")]
    BadAge,
}

/// The LS types this speaker understands (RFC 2328 A.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LsType {
    Router,
    Network,
    SummaryNetwork,
    SummaryAsbr,
    AsExternal,
}

impl LsType {
    pub fn from_u8(v: u8) -> Option<LsType> {
        Some(match v {
            1 => LsType::Router,
            2 => LsType::Network,
            3 => LsType::SummaryNetwork,
            4 => LsType::SummaryAsbr,
            5 => LsType::AsExternal,
            _ => return None,
        })
    }

    pub fn to_u8(self) -> u8 {
        match self {
            LsType::Router => 1,
            LsType::Network => 2,
            LsType::SummaryNetwork => 3,
            LsType::SummaryAsbr => 4,
            LsType::AsExternal => 5,
        }
    }
}

/// What names an LSA in the database: (type, link state id, advertising router).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LsaKey {
    pub ls_type: LsType,
    pub id: Ipv4Addr,
    pub adv_router: Ipv4Addr,
}

mod field {
    use std::ops::Range;
    pub const AGE: Range<usize> = 0..2;
    pub const OPTIONS: usize = 2;
    pub const TYPE: usize = 3;
    pub const ID: Range<usize> = 4..8;
    pub const ADV_ROUTER: Range<usize> = 8..12;
    pub const SEQ: Range<usize> = 12..16;
    pub const CHECKSUM: Range<usize> = 16..18;
    pub const LENGTH: Range<usize> = 18..20;
}

/// A checked view over an LSA header (and, if the buffer holds it, the body).
#[derive(Debug, Clone, Copy)]
pub struct LsaHeaderView<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> LsaHeaderView<T> {
    /// Refuses a buffer shorter than the 20-byte header.
    pub fn new_checked(buffer: T) -> Result<Self, LsaError> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(LsaError::Truncated);
        }
        Ok(LsaHeaderView { buffer })
    }
    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }
    fn u16_at(&self, r: std::ops::Range<usize>) -> u16 {
        u16::from_be_bytes([self.b()[r.start], self.b()[r.start + 1]])
    }
    fn addr_at(&self, r: std::ops::Range<usize>) -> Ipv4Addr {
        let b = &self.b()[r];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }
    pub fn age(&self) -> u16 {
        self.u16_at(field::AGE)
    }
    pub fn options(&self) -> u8 {
        self.b()[field::OPTIONS]
    }
    pub fn ls_type(&self) -> u8 {
        self.b()[field::TYPE]
    }
    pub fn id(&self) -> Ipv4Addr {
        self.addr_at(field::ID)
    }
    pub fn adv_router(&self) -> Ipv4Addr {
        self.addr_at(field::ADV_ROUTER)
    }
    pub fn seq(&self) -> i32 {
        let b = &self.b()[field::SEQ];
        i32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }
    pub fn checksum(&self) -> u16 {
        self.u16_at(field::CHECKSUM)
    }
    pub fn length(&self) -> u16 {
        self.u16_at(field::LENGTH)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> LsaHeaderView<T> {
    pub fn set_age(&mut self, age: u16) {
        self.buffer.as_mut()[field::AGE].copy_from_slice(&age.to_be_bytes());
    }
}

/// The fields of an LSA header (RFC 2328 A.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LsaHeader {
    pub age: u16,
    pub options: u8,
    /// The raw type byte: headers of unknown types still travel in DD packets.
    pub ls_type: u8,
    pub id: Ipv4Addr,
    pub adv_router: Ipv4Addr,
    pub seq: i32,
    pub checksum: u16,
    pub length: u16,
}

impl LsaHeader {
    /// Reads the first 20 bytes of `bytes`; checks nothing beyond the length.
    pub fn parse(bytes: &[u8]) -> Result<LsaHeader, LsaError> {
        let v = LsaHeaderView::new_checked(bytes)?;
        Ok(LsaHeader {
            age: v.age(),
            options: v.options(),
            ls_type: v.ls_type(),
            id: v.id(),
            adv_router: v.adv_router(),
            seq: v.seq(),
            checksum: v.checksum(),
            length: v.length(),
        })
    }

    /// Writes the 20 header bytes into `buf[..20]`.
    pub fn emit(&self, buf: &mut [u8]) {
        let b = &mut buf[..HEADER_LEN];
        b[field::AGE].copy_from_slice(&self.age.to_be_bytes());
        b[field::OPTIONS] = self.options;
        b[field::TYPE] = self.ls_type;
        b[field::ID].copy_from_slice(&self.id.octets());
        b[field::ADV_ROUTER].copy_from_slice(&self.adv_router.octets());
        b[field::SEQ].copy_from_slice(&self.seq.to_be_bytes());
        b[field::CHECKSUM].copy_from_slice(&self.checksum.to_be_bytes());
        b[field::LENGTH].copy_from_slice(&self.length.to_be_bytes());
    }

    /// The database key, if the type is one this speaker knows.
    pub fn key(&self) -> Option<LsaKey> {
        Some(LsaKey {
            ls_type: LsType::from_u8(self.ls_type)?,
            id: self.id,
            adv_router: self.adv_router,
        })
    }

    /// Which instance is more recent (RFC 2328 13.1). `Greater` means `self` is newer.
    pub fn compare(&self, other: &LsaHeader) -> Ordering {
        if self.seq != other.seq {
            return self.seq.cmp(&other.seq);
        }
        if self.checksum != other.checksum {
            return self.checksum.cmp(&other.checksum);
        }
        let (a, b) = (self.age.min(MAX_AGE), other.age.min(MAX_AGE));
        match (a == MAX_AGE, b == MAX_AGE) {
            (true, false) => return Ordering::Greater,
            (false, true) => return Ordering::Less,
            _ => {}
        }
        if a.abs_diff(b) > MAX_AGE_DIFF {
            // The younger one is newer.
            return b.cmp(&a);
        }
        Ordering::Equal
    }
}

/// Fletcher checksum of an LSA (RFC 2328 12.1.7): over every byte but the age, with the
/// checksum field taken as zero. Returns the value to store in the checksum field.
pub fn fletcher(lsa: &[u8]) -> u16 {
    // Checksummed data starts after the age; the checksum sits at offset 14 within it.
    let data = &lsa[2..];
    const CK: usize = 14;
    let (mut c0, mut c1) = (0i64, 0i64);
    for (i, &byte) in data.iter().enumerate() {
        let byte = if i == CK || i == CK + 1 { 0 } else { byte };
        c0 = (c0 + i64::from(byte)) % 255;
        c1 = (c1 + c0) % 255;
    }
    let len = data.len() as i64;
    let mut x = ((len - CK as i64 - 1) * c0 - c1) % 255;
    if x <= 0 {
        x += 255;
    }
    let mut y = 510 - c0 - x;
    if y > 255 {
        y -= 255;
    }
    ((x as u16) << 8) | (y as u16 & 0xff)
}

/// True if the LSA's stored checksum verifies (both Fletcher sums are zero mod 255).
pub fn fletcher_verifies(lsa: &[u8]) -> bool {
    if lsa.len() < HEADER_LEN {
        return false;
    }
    let (mut c0, mut c1) = (0u32, 0u32);
    for &byte in &lsa[2..] {
        c0 = (c0 + u32::from(byte)) % 255;
        c1 = (c1 + c0) % 255;
    }
    c0 == 0 && c1 == 0 && lsa[16..18] != [0, 0]
}

/// A link of a router-LSA (RFC 2328 A.4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RouterLink {
    pub kind: LinkKind,
    /// Neighbor router id (p2p, virtual), DR address (transit), network (stub).
    pub id: Ipv4Addr,
    /// Own interface address or ifIndex (p2p, transit), network mask (stub).
    pub data: Ipv4Addr,
    pub metric: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkKind {
    PointToPoint,
    Transit,
    Stub,
    Virtual,
}

impl LinkKind {
    fn from_u8(v: u8) -> Option<LinkKind> {
        Some(match v {
            1 => LinkKind::PointToPoint,
            2 => LinkKind::Transit,
            3 => LinkKind::Stub,
            4 => LinkKind::Virtual,
            _ => return None,
        })
    }
    fn to_u8(self) -> u8 {
        match self {
            LinkKind::PointToPoint => 1,
            LinkKind::Transit => 2,
            LinkKind::Stub => 3,
            LinkKind::Virtual => 4,
        }
    }
}

/// Router-LSA flags (RFC 2328 A.4.2).
pub const FLAG_V: u8 = 0x04;
pub const FLAG_E: u8 = 0x02;
pub const FLAG_B: u8 = 0x01;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RouterLsa {
    pub flags: u8,
    /// TOS-0 metrics only; TOS entries of received LSAs are skipped (RFC 2328 drops TOS).
    pub links: Vec<RouterLink>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NetworkLsa {
    pub mask: Ipv4Addr,
    pub attached: Vec<Ipv4Addr>,
}

/// Type 3 (network) and type 4 (ASBR) summaries share one body (RFC 2328 A.4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SummaryLsa {
    pub mask: Ipv4Addr,
    /// 24 bits.
    pub metric: u32,
}

/// AS-external body (RFC 2328 A.4.5), TOS 0 only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExternalLsa {
    pub mask: Ipv4Addr,
    /// Type 2 metric (the E bit) when true, type 1 when false.
    pub e2: bool,
    /// 24 bits.
    pub metric: u32,
    pub forwarding: Ipv4Addr,
    pub tag: u32,
}

/// Metric value meaning "unreachable" in summary and external LSAs.
pub const LS_INFINITY: u32 = 0x00ff_ffff;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LsaBody {
    Router(RouterLsa),
    Network(NetworkLsa),
    Summary(SummaryLsa),
    External(ExternalLsa),
}

impl LsaBody {
    pub fn ls_type_of(&self, asbr_summary: bool) -> LsType {
        match self {
            LsaBody::Router(_) => LsType::Router,
            LsaBody::Network(_) => LsType::Network,
            LsaBody::Summary(_) if asbr_summary => LsType::SummaryAsbr,
            LsaBody::Summary(_) => LsType::SummaryNetwork,
            LsaBody::External(_) => LsType::AsExternal,
        }
    }

    pub fn buffer_len(&self) -> usize {
        match self {
            LsaBody::Router(r) => 4 + 12 * r.links.len(),
            LsaBody::Network(n) => 4 + 4 * n.attached.len(),
            LsaBody::Summary(_) => 8,
            LsaBody::External(_) => 16,
        }
    }

    fn parse(ls_type: LsType, b: &[u8]) -> Result<LsaBody, LsaError> {
        let addr = |at: usize| Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3]);
        let u24 = |at: usize| u32::from_be_bytes([0, b[at], b[at + 1], b[at + 2]]);
        Ok(match ls_type {
            LsType::Router => {
                if b.len() < 4 {
                    return Err(LsaError::BadBody);
                }
                let count = usize::from(u16::from_be_bytes([b[2], b[3]]));
                let mut links = Vec::with_capacity(count.min(b.len() / 12));
                let mut at = 4;
                for _ in 0..count {
                    if at + 12 > b.len() {
                        return Err(LsaError::BadBody);
                    }
                    let tos_count = usize::from(b[at + 9]);
                    // An unknown link type is skipped, as RFC 2328 16.1 ignores it.
                    if let Some(kind) = LinkKind::from_u8(b[at + 8]) {
                        links.push(RouterLink {
                            kind,
                            id: addr(at),
                            data: addr(at + 4),
                            metric: u16::from_be_bytes([b[at + 10], b[at + 11]]),
                        });
                    }
                    at += 12 + 4 * tos_count;
                }
                if at > b.len() {
                    return Err(LsaError::BadBody);
                }
                LsaBody::Router(RouterLsa { flags: b[0], links })
            }
            LsType::Network => {
                if b.len() < 8 || !b.len().is_multiple_of(4) {
                    return Err(LsaError::BadBody);
                }
                LsaBody::Network(NetworkLsa {
                    mask: addr(0),
                    attached: (4..b.len()).step_by(4).map(addr).collect(),
                })
            }
            LsType::SummaryNetwork | LsType::SummaryAsbr => {
                if b.len() < 8 {
                    return Err(LsaError::BadBody);
                }
                LsaBody::Summary(SummaryLsa {
                    mask: addr(0),
                    metric: u24(5),
                })
            }
            LsType::AsExternal => {
                if b.len() < 16 {
                    return Err(LsaError::BadBody);
                }
                LsaBody::External(ExternalLsa {
                    mask: addr(0),
                    e2: b[4] & 0x80 != 0,
                    metric: u24(5),
                    forwarding: addr(8),
                    tag: u32::from_be_bytes([b[12], b[13], b[14], b[15]]),
                })
            }
        })
    }

    fn emit(&self, b: &mut [u8]) {
        let put = |b: &mut [u8], at: usize, a: Ipv4Addr| b[at..at + 4].copy_from_slice(&a.octets());
        let put24 = |b: &mut [u8], at: usize, v: u32| {
            b[at..at + 3].copy_from_slice(&v.min(LS_INFINITY).to_be_bytes()[1..])
        };
        match self {
            LsaBody::Router(r) => {
                b[0] = r.flags;
                b[1] = 0;
                b[2..4].copy_from_slice(&(r.links.len() as u16).to_be_bytes());
                for (i, l) in r.links.iter().enumerate() {
                    let at = 4 + 12 * i;
                    put(b, at, l.id);
                    put(b, at + 4, l.data);
                    b[at + 8] = l.kind.to_u8();
                    b[at + 9] = 0;
                    b[at + 10..at + 12].copy_from_slice(&l.metric.to_be_bytes());
                }
            }
            LsaBody::Network(n) => {
                put(b, 0, n.mask);
                for (i, a) in n.attached.iter().enumerate() {
                    put(b, 4 + 4 * i, *a);
                }
            }
            LsaBody::Summary(s) => {
                put(b, 0, s.mask);
                b[4] = 0;
                put24(b, 5, s.metric);
            }
            LsaBody::External(e) => {
                put(b, 0, e.mask);
                b[4] = if e.e2 { 0x80 } else { 0 };
                put24(b, 5, e.metric);
                put(b, 8, e.forwarding);
                b[12..16].copy_from_slice(&e.tag.to_be_bytes());
            }
        }
    }
}

/// One LSA: its header, its decoded body and the exact bytes it travels as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lsa {
    pub header: LsaHeader,
    pub body: LsaBody,
    raw: Vec<u8>,
}

impl Lsa {
    /// Parses one LSA from the start of `bytes` (which may hold more after it); checks
    /// the length, the Fletcher checksum, the age and the body. Returns the LSA and the
    /// number of bytes it took.
    pub fn parse(bytes: &[u8]) -> Result<(Lsa, usize), LsaError> {
        let header = LsaHeader::parse(bytes)?;
        let len = usize::from(header.length);
        if len < HEADER_LEN || !len.is_multiple_of(4) {
            return Err(LsaError::BadLength);
        }
        let raw = bytes.get(..len).ok_or(LsaError::Truncated)?;
        if !fletcher_verifies(raw) {
            return Err(LsaError::BadChecksum);
        }
        if header.age > MAX_AGE {
            return Err(LsaError::BadAge);
        }
        let ls_type =
            LsType::from_u8(header.ls_type).ok_or(LsaError::UnknownType(header.ls_type))?;
        let body = LsaBody::parse(ls_type, &raw[HEADER_LEN..])?;
        Ok((
            Lsa {
                header,
                body,
                raw: raw.to_vec(),
            },
            len,
        ))
    }

    /// Builds an LSA: fills length and checksum of `header` from the body.
    pub fn build(mut header: LsaHeader, body: LsaBody) -> Lsa {
        let len = HEADER_LEN + body.buffer_len();
        header.length = len as u16;
        header.checksum = 0;
        let mut raw = vec![0u8; len];
        header.emit(&mut raw);
        body.emit(&mut raw[HEADER_LEN..]);
        header.checksum = fletcher(&raw);
        raw[16..18].copy_from_slice(&header.checksum.to_be_bytes());
        Lsa { header, body, raw }
    }

    pub fn key(&self) -> LsaKey {
        // Only LSAs of known types are ever built or parsed.
        LsaKey {
            ls_type: LsType::from_u8(self.header.ls_type).unwrap_or(LsType::Router),
            id: self.header.id,
            adv_router: self.header.adv_router,
        }
    }

    /// The bytes as last emitted or received (with the age they had then).
    pub fn bytes(&self) -> &[u8] {
        &self.raw
    }

    /// Sets the age in both the header and the bytes (the checksum does not cover it).
    pub fn set_age(&mut self, age: u16) {
        self.header.age = age;
        self.raw[0..2].copy_from_slice(&age.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    /// A router-LSA from 10.0.0.1 with one p2p link to 10.0.0.2 (metric 10) and a stub
    /// 10.1.0.0/24 (metric 1), sequence 0x80000001, age 1, options E.
    const ROUTER_LSA: [u8; 48] = [
        0x00, 0x01, 0x02, 0x01, // age 1, options E, type 1
        10, 0, 0, 1, // link state id
        10, 0, 0, 1, // advertising router
        0x80, 0x00, 0x00, 0x01, // seq
        0x00, 0x00, 0x00, 48, // checksum (filled by the test), length 48
        0x00, 0x00, 0x00, 0x02, // flags, 0, 2 links
        10, 0, 0, 2, 0, 0, 0, 7, 1, 0, 0, 10, // p2p to 10.0.0.2, ifindex 7, metric 10
        10, 1, 0, 0, 255, 255, 255, 0, 3, 0, 0, 1, // stub 10.1.0.0/24 metric 1
    ];

    fn router_lsa() -> Lsa {
        Lsa::build(
            LsaHeader {
                age: 1,
                options: 0x02,
                ls_type: 1,
                id: ip("10.0.0.1"),
                adv_router: ip("10.0.0.1"),
                seq: INITIAL_SEQUENCE,
                checksum: 0,
                length: 0,
            },
            LsaBody::Router(RouterLsa {
                flags: 0,
                links: vec![
                    RouterLink {
                        kind: LinkKind::PointToPoint,
                        id: ip("10.0.0.2"),
                        data: ip("0.0.0.7"),
                        metric: 10,
                    },
                    RouterLink {
                        kind: LinkKind::Stub,
                        id: ip("10.1.0.0"),
                        data: ip("255.255.255.0"),
                        metric: 1,
                    },
                ],
            }),
        )
    }

    #[test]
    fn router_lsa_emits_the_literal_bytes_and_parses_back() {
        let lsa = router_lsa();
        let mut expected = ROUTER_LSA;
        expected[16..18].copy_from_slice(&lsa.header.checksum.to_be_bytes());
        assert_eq!(lsa.bytes(), &expected[..]);
        assert!(fletcher_verifies(&expected));
        let (parsed, used) = Lsa::parse(&expected).unwrap();
        assert_eq!(used, 48);
        assert_eq!(parsed, lsa);
    }

    #[test]
    fn fletcher_agrees_with_a_brute_force_search() {
        // Independent reference: the stored checksum is the one pair of bytes (each in
        // 1..=255) for which both running sums of RFC 905 annex B end at zero.
        let lsa = router_lsa();
        let mut bytes = lsa.bytes().to_vec();
        let mut found = Vec::new();
        for x in 1..=255u8 {
            for y in 1..=255u8 {
                bytes[16] = x;
                bytes[17] = y;
                if fletcher_verifies(&bytes) {
                    found.push(u16::from_be_bytes([x, y]));
                }
            }
        }
        assert_eq!(found, vec![lsa.header.checksum]);
    }

    #[test]
    fn a_flipped_bit_fails_the_checksum_but_the_age_does_not_count() {
        let lsa = router_lsa();
        let mut bytes = lsa.bytes().to_vec();
        bytes[0] = 0x0e; // age
        assert!(Lsa::parse(&bytes).is_ok());
        bytes[30] ^= 1;
        assert_eq!(Lsa::parse(&bytes).unwrap_err(), LsaError::BadChecksum);
    }

    #[test]
    fn external_and_summary_round_trip() {
        let header = LsaHeader {
            age: 0,
            options: 0x02,
            ls_type: 5,
            id: ip("192.168.7.0"),
            adv_router: ip("1.1.1.1"),
            seq: 0x8000_0005_u32 as i32,
            checksum: 0,
            length: 0,
        };
        let ext = ExternalLsa {
            mask: ip("255.255.255.0"),
            e2: true,
            metric: 20,
            forwarding: Ipv4Addr::UNSPECIFIED,
            tag: 0,
        };
        let lsa = Lsa::build(header, LsaBody::External(ext));
        assert_eq!(
            &lsa.bytes()[20..],
            &[255, 255, 255, 0, 0x80, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(Lsa::parse(lsa.bytes()).unwrap().0, lsa);
        let sum = Lsa::build(
            LsaHeader {
                ls_type: 3,
                ..header
            },
            LsaBody::Summary(SummaryLsa {
                mask: ip("255.255.0.0"),
                metric: 300,
            }),
        );
        assert_eq!(&sum.bytes()[20..], &[255, 255, 0, 0, 0, 0, 1, 44]);
        assert_eq!(Lsa::parse(sum.bytes()).unwrap().0, sum);
    }

    /// A network-LSA (type 2) from the DR 10.0.0.3 for 192.168.23.0/24 (DR address
    /// 192.168.23.3), attached routers 10.0.0.3 and 10.0.0.2, sequence 0x80000002.
    const NETWORK_LSA: [u8; 32] = [
        0x00, 0x05, 0x02, 0x02, // age 5, options E, type 2
        192, 168, 23, 3, // link state id: the DR's interface address
        10, 0, 0, 3, // advertising router: the DR
        0x80, 0x00, 0x00, 0x02, // seq
        0x00, 0x00, 0x00, 32, // checksum (filled by the test), length 32
        255, 255, 255, 0, // network mask
        10, 0, 0, 3, // attached router
        10, 0, 0, 2, // attached router
    ];

    #[test]
    fn network_lsa_emits_the_literal_bytes_and_parses_back() {
        let lsa = Lsa::build(
            LsaHeader {
                age: 5,
                options: 0x02,
                ls_type: 2,
                id: ip("192.168.23.3"),
                adv_router: ip("10.0.0.3"),
                seq: 0x8000_0002_u32 as i32,
                checksum: 0,
                length: 0,
            },
            LsaBody::Network(NetworkLsa {
                mask: ip("255.255.255.0"),
                attached: vec![ip("10.0.0.3"), ip("10.0.0.2")],
            }),
        );
        let mut expected = NETWORK_LSA;
        expected[16..18].copy_from_slice(&lsa.header.checksum.to_be_bytes());
        assert_eq!(lsa.bytes(), &expected[..]);
        assert!(fletcher_verifies(&expected));
        let (parsed, used) = Lsa::parse(&expected).unwrap();
        assert_eq!(used, 32);
        assert_eq!(parsed, lsa);
        assert_eq!(parsed.key().ls_type, LsType::Network);
        // A body without a single attached router, or not a multiple of 4, is refused.
        for len in [24usize, 26] {
            let mut short = expected[..len].to_vec();
            short[18..20].copy_from_slice(&(len as u16).to_be_bytes());
            let ck = fletcher(&short);
            short[16..18].copy_from_slice(&ck.to_be_bytes());
            let err = Lsa::parse(&short).unwrap_err();
            assert!(
                matches!(err, LsaError::BadBody | LsaError::BadLength),
                "{err:?}"
            );
        }
    }

    #[test]
    fn newer_instance_comparison() {
        let a = router_lsa().header;
        let newer_seq = LsaHeader {
            seq: a.seq + 1,
            ..a
        };
        assert_eq!(newer_seq.compare(&a), Ordering::Greater);
        let max_age = LsaHeader { age: MAX_AGE, ..a };
        assert_eq!(max_age.compare(&a), Ordering::Greater);
        let old = LsaHeader { age: 1000, ..a };
        assert_eq!(a.compare(&old), Ordering::Greater);
        let close = LsaHeader { age: 500, ..a };
        assert_eq!(a.compare(&close), Ordering::Equal);
        let higher_ck = LsaHeader {
            checksum: a.checksum.wrapping_add(1).max(1),
            ..a
        };
        assert_ne!(higher_ck.compare(&a), Ordering::Equal);
        // Sequence numbers are signed: 0x80000001 is the oldest.
        let wrapped = LsaHeader {
            seq: MAX_SEQUENCE,
            ..a
        };
        assert_eq!(wrapped.compare(&a), Ordering::Greater);
    }

    #[test]
    fn malformed_lsas_are_refused() {
        let good = router_lsa().bytes().to_vec();
        assert_eq!(Lsa::parse(&good[..19]).unwrap_err(), LsaError::Truncated);
        assert_eq!(Lsa::parse(&good[..40]).unwrap_err(), LsaError::Truncated);
        let mut bad_len = good.clone();
        bad_len[19] = 10;
        assert_eq!(Lsa::parse(&bad_len).unwrap_err(), LsaError::BadLength);
        // A link count larger than the body, with a recomputed checksum.
        let mut liar = good.clone();
        liar[23] = 9;
        let ck = fletcher(&liar);
        liar[16..18].copy_from_slice(&ck.to_be_bytes());
        assert_eq!(Lsa::parse(&liar).unwrap_err(), LsaError::BadBody);
        let mut unknown = good.clone();
        unknown[3] = 11;
        let ck = fletcher(&unknown);
        unknown[16..18].copy_from_slice(&ck.to_be_bytes());
        assert_eq!(Lsa::parse(&unknown).unwrap_err(), LsaError::UnknownType(11));
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Lsa::parse(&bytes);
        }

        #[test]
        fn parse_never_panics_with_valid_checksum(
            mut bytes in proptest::collection::vec(any::<u8>(), 20..120),
            ty in 1u8..6,
        ) {
            let len = bytes.len() & !3;
            bytes.truncate(len);
            bytes[3] = ty;
            bytes[0] = 0;
            bytes[18..20].copy_from_slice(&(len as u16).to_be_bytes());
            let ck = fletcher(&bytes);
            bytes[16..18].copy_from_slice(&ck.to_be_bytes());
            prop_assert!(fletcher_verifies(&bytes) || ck == 0);
            let _ = Lsa::parse(&bytes);
        }

        #[test]
        fn built_lsas_verify(metric in 0u32..0xffffff, id in any::<u32>(), seq in any::<i32>()) {
            let lsa = Lsa::build(
                LsaHeader { age: 0, options: 2, ls_type: 5, id: id.into(), adv_router: ip("1.2.3.4"), seq, checksum: 0, length: 0 },
                LsaBody::External(ExternalLsa { mask: ip("255.255.255.255"), e2: false, metric, forwarding: Ipv4Addr::UNSPECIFIED, tag: 7 }),
            );
            prop_assert!(fletcher_verifies(lsa.bytes()));
        }
    }
}
