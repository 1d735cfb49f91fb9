//! OSPFv2 packets (RFC 2328 appendix A.3): the 24-byte header with its IP-style checksum
//! (D.4.1: over the whole packet except the 64-bit authentication field) and
//! authentication type, and the five bodies: Hello (A.3.2), Database Description
//! (A.3.3), Link State Request (A.3.4), Link State Update (A.3.5), Link State Ack (A.3.6).
//!
//! Pure codecs: a checked view [`Packet`] over the bytes and a [`PacketRepr`] with
//! `parse`/`emit`/`buffer_len`. Nothing here knows about neighbors, interfaces or I/O;
//! the IP header around a packet is `crate::wire::ipv4`'s business.

use super::lsa::{LsType, Lsa, LsaError, LsaHeader, LsaKey, HEADER_LEN as LSA_HEADER_LEN};
use crate::wire::checksum;
use std::net::Ipv4Addr;

pub const VERSION: u8 = 2;
pub const HEADER_LEN: usize = 24;
/// The IP protocol number of OSPF.
pub const IP_PROTOCOL: u8 = 89;
pub const ALL_SPF_ROUTERS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 5);
pub const ALL_D_ROUTERS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 6);

/// Options field bits (RFC 2328 A.2).
pub const OPT_E: u8 = 0x02;

/// DD flags (RFC 2328 A.3.3).
pub const DD_INIT: u8 = 0x04;
pub const DD_MORE: u8 = 0x02;
pub const DD_MASTER: u8 = 0x01;

/// Why bytes are not a well-formed OSPF packet. Each is a drop counter's name too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum PacketError {
    #[error("shorter than the header or its length field")]
    Truncated,
    #[error("version is not 2")]
    BadVersion,
    #[error("length field below the header or above the buffer")]
    BadLength,
    #[error("checksum does not verify")]
    BadChecksum,
    #[error("packet type {0} is not known")]
    UnknownType(u8),
    #[error("body does not match the packet type")]
    BadBody,
    #[error("authentication type {0} is not supported")]
    UnsupportedAuth(u16),
    #[error("LSA in the update: {0}")]
    Lsa(LsaError),
}

impl PacketError {
    pub fn name(self) -> &'static str {
        match self {
            PacketError::Truncated => "truncated",
            PacketError::BadVersion => "bad_version",
            PacketError::BadLength => "bad_length",
            PacketError::BadChecksum => "bad_checksum",
            PacketError::UnknownType(_) => "unknown_type",
            PacketError::BadBody => "bad_body",
            PacketError::UnsupportedAuth(_) => "unsupported_auth",
            PacketError::Lsa(_) => "bad_lsa",
        }
    }
}

mod field {
    use std::ops::Range;
    pub const VERSION: usize = 0;
    pub const TYPE: usize = 1;
    pub const LENGTH: Range<usize> = 2..4;
    pub const ROUTER_ID: Range<usize> = 4..8;
    pub const AREA_ID: Range<usize> = 8..12;
    pub const CHECKSUM: Range<usize> = 12..14;
    pub const AU_TYPE: Range<usize> = 14..16;
    pub const AUTH: Range<usize> = 16..24;
}

fn addr(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
}

/// A checked view over an OSPF packet: the buffer holds at least the header and the
/// length the header claims (trailing bytes are ignored).
#[derive(Debug, Clone, Copy)]
pub struct Packet<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub fn new_checked(buffer: T) -> Result<Self, PacketError> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(PacketError::Truncated);
        }
        let p = Packet { buffer };
        let len = p.length();
        if len < HEADER_LEN || len > p.buffer.as_ref().len() {
            return Err(PacketError::BadLength);
        }
        Ok(p)
    }
    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }
    pub fn version(&self) -> u8 {
        self.b()[field::VERSION]
    }
    pub fn packet_type(&self) -> u8 {
        self.b()[field::TYPE]
    }
    pub fn length(&self) -> usize {
        usize::from(u16::from_be_bytes([self.b()[2], self.b()[3]]))
    }
    pub fn router_id(&self) -> Ipv4Addr {
        addr(self.b(), field::ROUTER_ID.start)
    }
    pub fn area_id(&self) -> Ipv4Addr {
        addr(self.b(), field::AREA_ID.start)
    }
    pub fn checksum(&self) -> u16 {
        u16::from_be_bytes([self.b()[12], self.b()[13]])
    }
    pub fn au_type(&self) -> u16 {
        u16::from_be_bytes([self.b()[14], self.b()[15]])
    }
    pub fn auth(&self) -> [u8; 8] {
        let mut a = [0u8; 8];
        a.copy_from_slice(&self.b()[field::AUTH]);
        a
    }
    /// The bytes after the header, up to the length field.
    pub fn body(&self) -> &[u8] {
        &self.b()[HEADER_LEN..self.length()]
    }
    /// RFC 2328 D.4.1: the checksum covers everything but the authentication field.
    pub fn verify_checksum(&self) -> bool {
        let b = &self.b()[..self.length()];
        checksum::fold(checksum::sum(&b[..16]) + checksum::sum(&b[24..])) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Computes and stores the checksum (the authentication field must be zero meanwhile
    /// for simple and null authentication; it is excluded either way).
    pub fn fill_checksum(&mut self) {
        let len = self.length();
        let b = self.buffer.as_mut();
        b[field::CHECKSUM].copy_from_slice(&[0, 0]);
        let c = !checksum::fold(checksum::sum(&b[..16]) + checksum::sum(&b[24..len]));
        b[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    }
}

/// Hello body (RFC 2328 A.3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    pub network_mask: Ipv4Addr,
    pub hello_interval: u16,
    pub options: u8,
    pub priority: u8,
    pub dead_interval: u32,
    pub designated_router: Ipv4Addr,
    pub backup_designated_router: Ipv4Addr,
    pub neighbors: Vec<Ipv4Addr>,
}

/// Database Description body (RFC 2328 A.3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbDesc {
    pub mtu: u16,
    pub options: u8,
    /// I, M, MS bits.
    pub flags: u8,
    pub seq: u32,
    pub headers: Vec<LsaHeader>,
}

impl DbDesc {
    pub fn init(&self) -> bool {
        self.flags & DD_INIT != 0
    }
    pub fn more(&self) -> bool {
        self.flags & DD_MORE != 0
    }
    pub fn master(&self) -> bool {
        self.flags & DD_MASTER != 0
    }
}

/// One Link State Request entry (RFC 2328 A.3.4): the raw type so that a request for an
/// unknown type can be refused by the neighbor logic rather than the codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LsRequest {
    pub ls_type: u32,
    pub id: Ipv4Addr,
    pub adv_router: Ipv4Addr,
}

impl LsRequest {
    pub fn key(&self) -> Option<LsaKey> {
        Some(LsaKey {
            ls_type: LsType::from_u8(u8::try_from(self.ls_type).ok()?)?,
            id: self.id,
            adv_router: self.adv_router,
        })
    }
}

impl From<LsaKey> for LsRequest {
    fn from(k: LsaKey) -> Self {
        LsRequest {
            ls_type: u32::from(k.ls_type.to_u8()),
            id: k.id,
            adv_router: k.adv_router,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Hello(Hello),
    DbDesc(DbDesc),
    LsRequest(Vec<LsRequest>),
    /// LSAs that parsed; one bad LSA fails the whole packet (its checksum covered it).
    LsUpdate(Vec<Lsa>),
    LsAck(Vec<LsaHeader>),
}

impl Body {
    pub fn type_code(&self) -> u8 {
        match self {
            Body::Hello(_) => 1,
            Body::DbDesc(_) => 2,
            Body::LsRequest(_) => 3,
            Body::LsUpdate(_) => 4,
            Body::LsAck(_) => 5,
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Body::Hello(_) => "hello",
            Body::DbDesc(_) => "dd",
            Body::LsRequest(_) => "lsr",
            Body::LsUpdate(_) => "lsu",
            Body::LsAck(_) => "lsack",
        }
    }

    fn buffer_len(&self) -> usize {
        match self {
            Body::Hello(h) => 20 + 4 * h.neighbors.len(),
            Body::DbDesc(d) => 8 + LSA_HEADER_LEN * d.headers.len(),
            Body::LsRequest(r) => 12 * r.len(),
            Body::LsUpdate(l) => 4 + l.iter().map(|l| l.bytes().len()).sum::<usize>(),
            Body::LsAck(h) => LSA_HEADER_LEN * h.len(),
        }
    }
}

/// Authentication of a packet (RFC 2328 D.3). For cryptographic authentication the
/// codec carries the header fields only: the digest after the packet is checked (and
/// appended) by [`super::auth`], and the packet checksum is neither checked nor filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Auth {
    #[default]
    Null,
    Simple([u8; 8]),
    Crypto {
        key_id: u8,
        /// Length of the digest that follows the packet.
        len: u8,
        seq: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketRepr {
    pub router_id: Ipv4Addr,
    pub area_id: Ipv4Addr,
    pub auth: Auth,
    pub body: Body,
}

impl PacketRepr {
    /// Parses and validates a whole packet: version, length, checksum, auth type, body.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<PacketRepr, PacketError> {
        if p.version() != VERSION {
            return Err(PacketError::BadVersion);
        }
        let auth = match p.au_type() {
            0 => Auth::Null,
            1 => Auth::Simple(p.auth()),
            2 => {
                let a = p.auth();
                Auth::Crypto {
                    key_id: a[2],
                    len: a[3],
                    seq: u32::from_be_bytes([a[4], a[5], a[6], a[7]]),
                }
            }
            other => return Err(PacketError::UnsupportedAuth(other)),
        };
        // D.4.3: no checksum with cryptographic authentication.
        if !matches!(auth, Auth::Crypto { .. }) && !p.verify_checksum() {
            return Err(PacketError::BadChecksum);
        }
        let b = p.body();
        let body = match p.packet_type() {
            1 => {
                if b.len() < 20 || !b.len().is_multiple_of(4) {
                    return Err(PacketError::BadBody);
                }
                Body::Hello(Hello {
                    network_mask: addr(b, 0),
                    hello_interval: u16::from_be_bytes([b[4], b[5]]),
                    options: b[6],
                    priority: b[7],
                    dead_interval: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
                    designated_router: addr(b, 12),
                    backup_designated_router: addr(b, 16),
                    neighbors: (20..b.len()).step_by(4).map(|at| addr(b, at)).collect(),
                })
            }
            2 => {
                if b.len() < 8 || !(b.len() - 8).is_multiple_of(LSA_HEADER_LEN) {
                    return Err(PacketError::BadBody);
                }
                let headers = b[8..]
                    .chunks_exact(LSA_HEADER_LEN)
                    .map(LsaHeader::parse)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(PacketError::Lsa)?;
                Body::DbDesc(DbDesc {
                    mtu: u16::from_be_bytes([b[0], b[1]]),
                    options: b[2],
                    flags: b[3] & (DD_INIT | DD_MORE | DD_MASTER),
                    seq: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
                    headers,
                })
            }
            3 => {
                if !b.len().is_multiple_of(12) {
                    return Err(PacketError::BadBody);
                }
                Body::LsRequest(
                    b.chunks_exact(12)
                        .map(|c| LsRequest {
                            ls_type: u32::from_be_bytes([c[0], c[1], c[2], c[3]]),
                            id: addr(c, 4),
                            adv_router: addr(c, 8),
                        })
                        .collect(),
                )
            }
            4 => {
                if b.len() < 4 {
                    return Err(PacketError::BadBody);
                }
                let count = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
                let mut lsas = Vec::with_capacity(count.min(b.len() / LSA_HEADER_LEN));
                let mut rest = &b[4..];
                for _ in 0..count {
                    let (lsa, used) = Lsa::parse(rest).map_err(PacketError::Lsa)?;
                    lsas.push(lsa);
                    rest = &rest[used..];
                }
                Body::LsUpdate(lsas)
            }
            5 => {
                if !b.len().is_multiple_of(LSA_HEADER_LEN) {
                    return Err(PacketError::BadBody);
                }
                Body::LsAck(
                    b.chunks_exact(LSA_HEADER_LEN)
                        .map(LsaHeader::parse)
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(PacketError::Lsa)?,
                )
            }
            other => return Err(PacketError::UnknownType(other)),
        };
        Ok(PacketRepr {
            router_id: p.router_id(),
            area_id: p.area_id(),
            auth,
            body,
        })
    }

    /// Parses bytes in one step.
    pub fn parse_bytes(bytes: &[u8]) -> Result<PacketRepr, PacketError> {
        PacketRepr::parse(&Packet::new_checked(bytes)?)
    }

    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.body.buffer_len()
    }

    /// Writes the packet into `buf[..buffer_len()]`, checksum included.
    pub fn emit(&self, buf: &mut [u8]) {
        let len = self.buffer_len();
        let b = &mut buf[..len];
        b[field::VERSION] = VERSION;
        b[field::TYPE] = self.body.type_code();
        b[field::LENGTH].copy_from_slice(&(len as u16).to_be_bytes());
        b[field::ROUTER_ID].copy_from_slice(&self.router_id.octets());
        b[field::AREA_ID].copy_from_slice(&self.area_id.octets());
        b[field::AU_TYPE].copy_from_slice(match self.auth {
            Auth::Null => &[0, 0],
            Auth::Simple(_) => &[0, 1],
            Auth::Crypto { .. } => &[0, 2],
        });
        b[field::AUTH].copy_from_slice(&[0; 8]);
        let body = &mut b[HEADER_LEN..];
        match &self.body {
            Body::Hello(h) => {
                body[0..4].copy_from_slice(&h.network_mask.octets());
                body[4..6].copy_from_slice(&h.hello_interval.to_be_bytes());
                body[6] = h.options;
                body[7] = h.priority;
                body[8..12].copy_from_slice(&h.dead_interval.to_be_bytes());
                body[12..16].copy_from_slice(&h.designated_router.octets());
                body[16..20].copy_from_slice(&h.backup_designated_router.octets());
                for (i, n) in h.neighbors.iter().enumerate() {
                    body[20 + 4 * i..24 + 4 * i].copy_from_slice(&n.octets());
                }
            }
            Body::DbDesc(d) => {
                body[0..2].copy_from_slice(&d.mtu.to_be_bytes());
                body[2] = d.options;
                body[3] = d.flags;
                body[4..8].copy_from_slice(&d.seq.to_be_bytes());
                for (i, h) in d.headers.iter().enumerate() {
                    h.emit(&mut body[8 + LSA_HEADER_LEN * i..]);
                }
            }
            Body::LsRequest(r) => {
                for (i, r) in r.iter().enumerate() {
                    let e = &mut body[12 * i..12 * i + 12];
                    e[0..4].copy_from_slice(&r.ls_type.to_be_bytes());
                    e[4..8].copy_from_slice(&r.id.octets());
                    e[8..12].copy_from_slice(&r.adv_router.octets());
                }
            }
            Body::LsUpdate(lsas) => {
                body[0..4].copy_from_slice(&(lsas.len() as u32).to_be_bytes());
                let mut at = 4;
                for l in lsas {
                    let bytes = l.bytes();
                    body[at..at + bytes.len()].copy_from_slice(bytes);
                    at += bytes.len();
                }
            }
            Body::LsAck(h) => {
                for (i, h) in h.iter().enumerate() {
                    h.emit(&mut body[LSA_HEADER_LEN * i..]);
                }
            }
        }
        match self.auth {
            Auth::Null => Packet { buffer: &mut *b }.fill_checksum(),
            Auth::Simple(key) => {
                Packet { buffer: &mut *b }.fill_checksum();
                b[field::AUTH].copy_from_slice(&key);
            }
            Auth::Crypto { key_id, len, seq } => {
                b[field::CHECKSUM].copy_from_slice(&[0, 0]);
                b[18] = key_id;
                b[19] = len;
                b[20..24].copy_from_slice(&seq.to_be_bytes());
            }
        }
    }

    /// Emits into a new vector of exactly the right size.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = vec![0u8; self.buffer_len()];
        self.emit(&mut v);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::super::lsa::{ExternalLsa, LsaBody};
    use super::*;
    use proptest::prelude::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    /// A hello from 10.255.0.2 in area 0: mask /30, hello 10, options E, priority 1,
    /// dead 40, no DR/BDR, one neighbor 10.255.0.1.
    const HELLO: [u8; 48] = [
        0x02, 0x01, 0x00, 0x30, // version 2, hello, length 48
        10, 255, 0, 2, // router id
        0, 0, 0, 0, // area
        0xe5, 0x9d, 0x00, 0x00, // checksum, au type 0
        0, 0, 0, 0, 0, 0, 0, 0, // auth
        255, 255, 255, 252, // mask
        0x00, 0x0a, 0x02, 0x01, // hello 10, options E, priority 1
        0x00, 0x00, 0x00, 0x28, // dead 40
        0, 0, 0, 0, 0, 0, 0, 0, // DR, BDR
        10, 255, 0, 1, // neighbor
    ];

    fn hello_repr() -> PacketRepr {
        PacketRepr {
            router_id: ip("10.255.0.2"),
            area_id: ip("0.0.0.0"),
            auth: Auth::Null,
            body: Body::Hello(Hello {
                network_mask: ip("255.255.255.252"),
                hello_interval: 10,
                options: OPT_E,
                priority: 1,
                dead_interval: 40,
                designated_router: Ipv4Addr::UNSPECIFIED,
                backup_designated_router: Ipv4Addr::UNSPECIFIED,
                neighbors: vec![ip("10.255.0.1")],
            }),
        }
    }

    #[test]
    fn hello_view_reads_the_literal_bytes() {
        let p = Packet::new_checked(&HELLO[..]).unwrap();
        assert_eq!(p.version(), 2);
        assert_eq!(p.packet_type(), 1);
        assert_eq!(p.length(), 48);
        assert_eq!(p.router_id(), ip("10.255.0.2"));
        assert_eq!(p.au_type(), 0);
        assert!(p.verify_checksum());
        assert_eq!(PacketRepr::parse(&p).unwrap(), hello_repr());
    }

    #[test]
    fn hello_emits_the_literal_bytes() {
        assert_eq!(hello_repr().to_bytes(), HELLO.to_vec());
    }

    #[test]
    fn checksum_excludes_the_auth_field() {
        let mut r = hello_repr();
        r.auth = Auth::Simple(*b"secret!!");
        let bytes = r.to_bytes();
        assert_eq!(&bytes[16..24], b"secret!!");
        // Same checksum as with null auth but for the au type word (0 -> 1).
        assert_eq!(PacketRepr::parse_bytes(&bytes).unwrap(), r);
    }

    #[test]
    fn crypto_auth_fields_and_no_checksum() {
        let mut r = hello_repr();
        r.auth = Auth::Crypto {
            key_id: 7,
            len: 32,
            seq: 0x0102_0304,
        };
        let bytes = r.to_bytes();
        assert_eq!(&bytes[12..24], &[0, 0, 0, 2, 0, 0, 7, 32, 1, 2, 3, 4]);
        assert_eq!(PacketRepr::parse_bytes(&bytes).unwrap(), r);
        // A digest after the length field is not the packet's business.
        let mut signed = bytes.clone();
        signed.extend_from_slice(&[0xaa; 32]);
        assert_eq!(PacketRepr::parse_bytes(&signed).unwrap(), r);
    }

    #[test]
    fn every_body_round_trips() {
        let lsa = Lsa::build(
            LsaHeader {
                age: 3,
                options: OPT_E,
                ls_type: 5,
                id: ip("192.168.1.0"),
                adv_router: ip("10.255.0.2"),
                seq: 0x8000_0002_u32 as i32,
                checksum: 0,
                length: 0,
            },
            LsaBody::External(ExternalLsa {
                mask: ip("255.255.255.0"),
                e2: true,
                metric: 20,
                forwarding: Ipv4Addr::UNSPECIFIED,
                tag: 0,
            }),
        );
        let bodies = vec![
            Body::DbDesc(DbDesc {
                mtu: 1420,
                options: OPT_E,
                flags: DD_INIT | DD_MORE | DD_MASTER,
                seq: 0x1234_5678,
                headers: vec![lsa.header],
            }),
            Body::LsRequest(vec![LsRequest::from(lsa.key())]),
            Body::LsUpdate(vec![lsa.clone(), lsa.clone()]),
            Body::LsAck(vec![lsa.header, lsa.header]),
        ];
        for body in bodies {
            let r = PacketRepr {
                body,
                ..hello_repr()
            };
            let bytes = r.to_bytes();
            assert_eq!(bytes.len(), r.buffer_len());
            assert_eq!(PacketRepr::parse_bytes(&bytes).unwrap(), r);
        }
    }

    #[test]
    fn dd_literal_bytes() {
        let r = PacketRepr {
            body: Body::DbDesc(DbDesc {
                mtu: 1420,
                options: OPT_E,
                flags: DD_INIT | DD_MORE | DD_MASTER,
                seq: 7,
                headers: vec![],
            }),
            ..hello_repr()
        };
        let b = r.to_bytes();
        assert_eq!(&b[0..4], &[2, 2, 0, 32]);
        assert_eq!(&b[24..], &[0x05, 0x8c, 0x02, 0x07, 0, 0, 0, 7]);
    }

    #[test]
    fn malformed_packets_are_refused() {
        let good = HELLO.to_vec();
        assert_eq!(
            PacketRepr::parse_bytes(&good[..20]).unwrap_err(),
            PacketError::Truncated
        );
        let mut long = good.clone();
        long[3] = 200;
        assert_eq!(
            PacketRepr::parse_bytes(&long).unwrap_err(),
            PacketError::BadLength
        );
        let mut v3 = good.clone();
        v3[0] = 3;
        assert_eq!(
            PacketRepr::parse_bytes(&v3).unwrap_err(),
            PacketError::BadVersion
        );
        let mut flipped = good.clone();
        flipped[30] ^= 0x40;
        assert_eq!(
            PacketRepr::parse_bytes(&flipped).unwrap_err(),
            PacketError::BadChecksum
        );
        let mut unknown = good.clone();
        unknown[15] = 3;
        assert_eq!(
            PacketRepr::parse_bytes(&unknown).unwrap_err(),
            PacketError::UnsupportedAuth(3)
        );
        // Trailing bytes beyond the length field (IP padding) are ignored.
        let mut padded = good.clone();
        padded.extend_from_slice(&[0, 0, 0, 0]);
        assert!(PacketRepr::parse_bytes(&padded).is_ok());
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = PacketRepr::parse_bytes(&bytes);
        }

        #[test]
        fn parse_never_panics_with_a_valid_checksum(
            mut bytes in proptest::collection::vec(any::<u8>(), 24..300),
            ty in 1u8..6,
        ) {
            let len = bytes.len();
            bytes[0] = 2;
            bytes[1] = ty;
            bytes[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            bytes[14] = 0;
            bytes[15] = 0;
            let mut p = Packet::new_checked(&mut bytes[..]).unwrap();
            p.fill_checksum();
            let _ = PacketRepr::parse_bytes(&bytes);
        }
    }
}
