//! A checked view over an IPv4 header (RFC 791 section 3.1), the header emitter used for
//! packets the router originates, and the fragmenter for forwarded packets without DF
//! (RFC 791 section 3.2 "Fragmentation", RFC 1812 section 5.2.4.3 / 4.2.2.7).
//!
//! Owns byte offsets and header arithmetic only; which packets to fragment, and any
//! routing or ICMP policy, belong to `dataplane::forward`.

use super::{checksum, WireError};
use std::net::Ipv4Addr;

/// Byte ranges of the fixed header, as in the RFC 791 diagram.
mod field {
    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const LENGTH: core::ops::Range<usize> = 2..4;
    pub const IDENT: core::ops::Range<usize> = 4..6;
    pub const FLG_OFF: core::ops::Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: core::ops::Range<usize> = 10..12;
    pub const SRC: core::ops::Range<usize> = 12..16;
    pub const DST: core::ops::Range<usize> = 16..20;
}

/// Length of a header without options.
pub const HEADER_LEN: usize = 20;
/// Every IPv4 link carries at least this many bytes (RFC 791).
pub const MIN_MTU: usize = 68;

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

/// An IPv4 packet whose header, options and total length have been checked against the
/// buffer by [`Ipv4Packet::new_checked`]; every accessor after that is infallible. The
/// header checksum is *not* checked there: see [`Ipv4Packet::verify_checksum`].
#[derive(Debug, Clone, Copy)]
pub struct Ipv4Packet<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps without checking; accessors may panic on a short buffer.
    pub fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Wraps after checking version, IHL, that the header fits in the buffer and that the
    /// total length covers the header and fits in the buffer. Bytes after the total
    /// length (link padding) are allowed and ignored.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let b = buffer.as_ref();
        let Some(&first) = b.first() else {
            return Err(WireError::Truncated);
        };
        if first >> 4 != 4 {
            return Err(WireError::BadVersion);
        }
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let hlen = usize::from(first & 0x0f) * 4;
        if hlen < HEADER_LEN {
            return Err(WireError::BadHeaderLength);
        }
        if b.len() < hlen {
            return Err(WireError::Truncated);
        }
        let total = usize::from(u16::from_be_bytes([b[2], b[3]]));
        if total < hlen || total > b.len() {
            return Err(WireError::BadTotalLength);
        }
        Ok(Ipv4Packet { buffer })
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    fn u16_at(&self, r: core::ops::Range<usize>) -> u16 {
        u16::from_be_bytes([self.b()[r.start], self.b()[r.start + 1]])
    }

    /// Header length in bytes, options included.
    pub fn header_len(&self) -> usize {
        usize::from(self.b()[field::VER_IHL] & 0x0f) * 4
    }
    pub fn tos(&self) -> u8 {
        self.b()[field::TOS]
    }
    /// The datagram length from the header (header + payload), not the buffer's.
    pub fn total_len(&self) -> usize {
        usize::from(self.u16_at(field::LENGTH))
    }
    pub fn ident(&self) -> u16 {
        self.u16_at(field::IDENT)
    }
    pub fn dont_frag(&self) -> bool {
        self.u16_at(field::FLG_OFF) & FLAG_DF != 0
    }
    pub fn more_frags(&self) -> bool {
        self.u16_at(field::FLG_OFF) & FLAG_MF != 0
    }
    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> usize {
        usize::from(self.u16_at(field::FLG_OFF) & OFFSET_MASK) * 8
    }
    /// True for any fragment, first or not.
    pub fn is_fragment(&self) -> bool {
        self.u16_at(field::FLG_OFF) & (FLAG_MF | OFFSET_MASK) != 0
    }
    pub fn ttl(&self) -> u8 {
        self.b()[field::TTL]
    }
    pub fn protocol(&self) -> u8 {
        self.b()[field::PROTOCOL]
    }
    pub fn header_checksum(&self) -> u16 {
        self.u16_at(field::CHECKSUM)
    }
    pub fn src_addr(&self) -> Ipv4Addr {
        let s = &self.b()[field::SRC];
        Ipv4Addr::new(s[0], s[1], s[2], s[3])
    }
    pub fn dst_addr(&self) -> Ipv4Addr {
        let d = &self.b()[field::DST];
        Ipv4Addr::new(d[0], d[1], d[2], d[3])
    }
    /// The header including options.
    pub fn header(&self) -> &[u8] {
        &self.b()[..self.header_len()]
    }
    /// The options, possibly empty.
    pub fn options(&self) -> &[u8] {
        &self.b()[HEADER_LEN..self.header_len()]
    }
    /// The payload up to the total length (padding excluded).
    pub fn payload(&self) -> &[u8] {
        &self.b()[self.header_len()..self.total_len()]
    }
    /// The datagram: header and payload, without padding after the total length.
    pub fn datagram(&self) -> &[u8] {
        &self.b()[..self.total_len()]
    }
    pub fn verify_checksum(&self) -> bool {
        checksum::verifies(self.header())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Decrements the TTL and patches the header checksum incrementally (RFC 1624), so a
    /// forwarded packet costs two byte writes instead of a header re-sum. The caller has
    /// checked that TTL > 0.
    pub fn decrement_ttl(&mut self) {
        let b = self.buffer.as_mut();
        let old = u16::from_be_bytes([b[field::TTL], b[field::PROTOCOL]]);
        b[field::TTL] = b[field::TTL].wrapping_sub(1);
        let new = u16::from_be_bytes([b[field::TTL], b[field::PROTOCOL]]);
        let hc = u16::from_be_bytes([b[10], b[11]]);
        b[field::CHECKSUM].copy_from_slice(&checksum::update(hc, old, new).to_be_bytes());
    }
}

/// The fields of a header without options that the router fills in for packets it
/// originates (ICMP replies and errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Repr {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: u8,
    pub ttl: u8,
    pub tos: u8,
    pub ident: u16,
    pub payload_len: usize,
}

impl Ipv4Repr {
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Writes a 20-byte header (no options, DF clear, checksum filled) into `buf[..20]`.
    /// `buf` must be at least [`HEADER_LEN`] long and `buffer_len()` must fit in u16.
    pub fn emit(&self, buf: &mut [u8]) {
        let h = &mut buf[..HEADER_LEN];
        h[field::VER_IHL] = 0x45;
        h[field::TOS] = self.tos;
        h[field::LENGTH].copy_from_slice(&(self.buffer_len() as u16).to_be_bytes());
        h[field::IDENT].copy_from_slice(&self.ident.to_be_bytes());
        h[field::FLG_OFF].copy_from_slice(&[0, 0]);
        h[field::TTL] = self.ttl;
        h[field::PROTOCOL] = self.protocol;
        h[field::CHECKSUM].copy_from_slice(&[0, 0]);
        h[field::SRC].copy_from_slice(&self.src.octets());
        h[field::DST].copy_from_slice(&self.dst.octets());
        let c = checksum::checksum(h);
        h[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    }
}

/// Splits one datagram into fragments that each fit `mtu`, writing one at a time into a
/// caller buffer so nothing is allocated. The first fragment keeps all options; later
/// ones keep only the options whose copied flag is set (RFC 791 section 3.1, "Options").
/// Fragmenting a fragment works: offsets are relative to the original, and the last
/// piece keeps the original MF flag.
#[derive(Debug)]
pub struct Ipv4Fragmenter<'a> {
    packet: Ipv4Packet<&'a [u8]>,
    mtu: usize,
    /// Payload bytes already emitted.
    done: usize,
    /// Options copied into every fragment after the first, padded to 4 bytes.
    copied: [u8; 40],
    copied_len: usize,
}

impl<'a> Ipv4Fragmenter<'a> {
    /// `None` when `packet` is not a valid IPv4 datagram or `mtu` cannot carry at least
    /// 8 payload bytes after the header (every fragment but the last carries a multiple
    /// of 8).
    pub fn new(packet: &'a [u8], mtu: u16) -> Option<Self> {
        let packet = Ipv4Packet::new_checked(packet).ok()?;
        let mut copied = [0u8; 40];
        let mut copied_len = 0;
        let opts = packet.options();
        let mut i = 0;
        while i < opts.len() {
            let kind = opts[i];
            match kind {
                0 => break, // end of option list
                1 => i += 1,
                _ => {
                    let len = usize::from(*opts.get(i + 1)?);
                    if len < 2 || i + len > opts.len() {
                        return None;
                    }
                    if kind & 0x80 != 0 {
                        copied[copied_len..copied_len + len].copy_from_slice(&opts[i..i + len]);
                        copied_len += len;
                    }
                    i += len;
                }
            }
        }
        // Zero padding is "end of option list", which is what RFC 791 asks for.
        copied_len = copied_len.div_ceil(4) * 4;
        let mtu = usize::from(mtu);
        let worst_header = packet.header_len().max(HEADER_LEN + copied_len);
        if mtu < worst_header + 8 {
            return None;
        }
        Some(Ipv4Fragmenter {
            packet,
            mtu,
            done: 0,
            copied,
            copied_len,
        })
    }

    /// Writes the next fragment into `out` and returns its length, or `None` when all
    /// fragments have been produced or `out` is shorter than the fragment (`out` of
    /// `mtu` bytes always suffices).
    pub fn next_into(&mut self, out: &mut [u8]) -> Option<usize> {
        let payload = self.packet.payload();
        if self.done >= payload.len() && !(self.done == 0 && payload.is_empty()) {
            return None;
        }
        let first = self.done == 0;
        let hlen = if first {
            self.packet.header_len()
        } else {
            HEADER_LEN + self.copied_len
        };
        let room = (self.mtu - hlen) & !7;
        let rest = payload.len() - self.done;
        let (chunk, last) = if rest <= self.mtu - hlen {
            (rest, true)
        } else {
            (room, false)
        };
        let len = hlen + chunk;
        if out.len() < len {
            return None;
        }
        let src = self.packet.header();
        out[..HEADER_LEN].copy_from_slice(&src[..HEADER_LEN]);
        if first {
            out[HEADER_LEN..hlen].copy_from_slice(&src[HEADER_LEN..]);
        } else {
            out[HEADER_LEN..hlen].copy_from_slice(&self.copied[..self.copied_len]);
        }
        out[0] = 0x40 | (hlen / 4) as u8;
        out[field::LENGTH].copy_from_slice(&(len as u16).to_be_bytes());
        let offset = (self.packet.frag_offset() + self.done) / 8;
        let mf = !last || self.packet.more_frags();
        let flags = (offset as u16 & OFFSET_MASK) | if mf { FLAG_MF } else { 0 };
        out[field::FLG_OFF].copy_from_slice(&flags.to_be_bytes());
        out[field::CHECKSUM].copy_from_slice(&[0, 0]);
        let c = checksum::checksum(&out[..hlen]);
        out[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
        out[hlen..len].copy_from_slice(&payload[self.done..self.done + chunk]);
        // An empty payload still yields one (header-only) fragment; mark it done.
        self.done += chunk.max(1);
        Some(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ICMP echo request 10.0.0.2 -> 10.0.0.1, TTL 64, DF, 8 bytes of data.
    pub(crate) const ECHO: [u8; 36] = [
        0x45, 0x00, 0x00, 0x24, 0x12, 0x34, 0x40, 0x00, 0x40, 0x01, 0x14, 0xa3, 0x0a, 0x00, 0x00,
        0x02, 0x0a, 0x00, 0x00, 0x01, 0x08, 0x00, 0x66, 0x68, 0x00, 0x01, 0x00, 0x01, 0x61, 0x62,
        0x63, 0x64, 0x65, 0x66, 0x67, 0x68,
    ];

    #[test]
    fn deconstruct() {
        let p = Ipv4Packet::new_checked(&ECHO[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 36);
        assert_eq!(p.ident(), 0x1234);
        assert!(p.dont_frag());
        assert!(!p.is_fragment());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), 1);
        assert_eq!(p.src_addr(), Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(p.payload().len(), 16);
    }

    #[test]
    fn checked_rejects() {
        assert_eq!(
            Ipv4Packet::new_checked(&[][..]).unwrap_err(),
            WireError::Truncated
        );
        assert_eq!(
            Ipv4Packet::new_checked(&ECHO[..19]).unwrap_err(),
            WireError::Truncated
        );
        let mut p = ECHO;
        p[0] = 0x65;
        assert_eq!(
            Ipv4Packet::new_checked(&p[..]).unwrap_err(),
            WireError::BadVersion
        );
        p[0] = 0x44;
        assert_eq!(
            Ipv4Packet::new_checked(&p[..]).unwrap_err(),
            WireError::BadHeaderLength
        );
        p[0] = 0x4f;
        assert_eq!(
            Ipv4Packet::new_checked(&p[..]).unwrap_err(),
            WireError::Truncated
        );
        let mut p = ECHO;
        p[3] = 0x25;
        assert_eq!(
            Ipv4Packet::new_checked(&p[..]).unwrap_err(),
            WireError::BadTotalLength
        );
        p[3] = 0x13;
        assert_eq!(
            Ipv4Packet::new_checked(&p[..]).unwrap_err(),
            WireError::BadTotalLength
        );
    }

    #[test]
    fn emit_matches_smoltcp() {
        let repr = Ipv4Repr {
            src: Ipv4Addr::new(192, 0, 2, 1),
            dst: Ipv4Addr::new(198, 51, 100, 7),
            protocol: 1,
            ttl: 64,
            tos: 0xc0,
            ident: 7,
            payload_len: 8,
        };
        let mut buf = [0u8; 28];
        repr.emit(&mut buf);
        let p = smoltcp::wire::Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(p.total_len(), 28);
        assert_eq!(p.src_addr(), repr.src);
        assert_eq!(p.hop_limit(), 64);
    }

    #[test]
    fn ttl_decrement_keeps_checksum_valid() {
        let mut p = ECHO;
        let mut v = Ipv4Packet::new_unchecked(&mut p[..]);
        v.decrement_ttl();
        assert_eq!(v.ttl(), 63);
        assert!(v.verify_checksum());
    }

    fn big_packet(payload: usize, options: &[u8], flags: u16) -> Vec<u8> {
        let hlen = 20 + options.len();
        let mut p = vec![0u8; hlen + payload];
        p[0] = 0x40 | (hlen / 4) as u8;
        p[2..4].copy_from_slice(&((hlen + payload) as u16).to_be_bytes());
        p[4..6].copy_from_slice(&0xbeefu16.to_be_bytes());
        p[6..8].copy_from_slice(&flags.to_be_bytes());
        p[8] = 9;
        p[9] = 17;
        p[12..16].copy_from_slice(&[10, 0, 0, 2]);
        p[16..20].copy_from_slice(&[10, 9, 0, 1]);
        p[20..hlen].copy_from_slice(options);
        for (i, b) in p[hlen..].iter_mut().enumerate() {
            *b = i as u8;
        }
        let c = checksum::checksum(&p[..hlen]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p
    }

    /// Reassembles fragments by offset and checks every fragment's header.
    fn reassemble(frags: &[Vec<u8>], mtu: usize) -> Vec<u8> {
        let mut data = Vec::new();
        for (i, f) in frags.iter().enumerate() {
            assert!(f.len() <= mtu);
            let p = Ipv4Packet::new_checked(&f[..]).unwrap();
            assert!(p.verify_checksum());
            assert_eq!(p.ident(), 0xbeef);
            assert_eq!(p.frag_offset(), data.len());
            assert_eq!(p.more_frags(), i + 1 < frags.len());
            if i + 1 < frags.len() {
                assert_eq!(p.payload().len() % 8, 0);
            }
            data.extend_from_slice(p.payload());
        }
        data
    }

    #[test]
    fn fragments_reassemble() {
        let p = big_packet(1000, &[], 0);
        let mut f = Ipv4Fragmenter::new(&p, 300).unwrap();
        let mut out = [0u8; 300];
        let mut frags = Vec::new();
        while let Some(n) = f.next_into(&mut out) {
            frags.push(out[..n].to_vec());
        }
        assert_eq!(frags.len(), 4); // 280 * 3 + 160
        assert_eq!(reassemble(&frags, 300), p[20..].to_vec());
    }

    #[test]
    fn only_copied_options_repeat() {
        // NOP, a copied option (type 0x83 loose source route, len 7) and a non-copied
        // record-route (type 7, len 7), then end of list: 16 bytes.
        let opts = [1, 0x83, 7, 4, 1, 2, 3, 4, 7, 7, 4, 0, 0, 0, 0, 0];
        let p = big_packet(200, &opts, 0);
        let mut f = Ipv4Fragmenter::new(&p, 100).unwrap();
        let mut out = [0u8; 100];
        let n = f.next_into(&mut out).unwrap();
        assert_eq!(Ipv4Packet::new_checked(&out[..n]).unwrap().options(), &opts);
        let n = f.next_into(&mut out).unwrap();
        let second = Ipv4Packet::new_checked(&out[..n]).unwrap();
        assert_eq!(second.options(), &[0x83, 7, 4, 1, 2, 3, 4, 0]);
        assert!(second.verify_checksum());
    }

    #[test]
    fn refragmenting_a_fragment_keeps_mf_and_offset() {
        // A middle fragment at offset 800 with MF set.
        let p = big_packet(400, &[], FLAG_MF | 100);
        let mut f = Ipv4Fragmenter::new(&p, 220).unwrap();
        let mut out = [0u8; 220];
        let mut last = None;
        let mut first_offset = None;
        while let Some(n) = f.next_into(&mut out) {
            let v = Ipv4Packet::new_checked(&out[..n]).unwrap();
            first_offset.get_or_insert(v.frag_offset());
            last = Some((v.frag_offset(), v.more_frags()));
        }
        assert_eq!(first_offset, Some(800));
        assert_eq!(last, Some((1000, true)));
    }

    #[test]
    fn mtu_too_small_refused() {
        let p = big_packet(100, &[], 0);
        assert!(Ipv4Fragmenter::new(&p, 27).is_none());
        assert!(Ipv4Fragmenter::new(&p, 28).is_some());
    }

    proptest::proptest! {
        /// RFC 1624's equation 3 keeps any valid header valid, including the checksum
        /// values (0x0000, 0xffff) where the older equations go wrong.
        #[test]
        fn incremental_ttl_update_always_verifies(
            mut hdr in proptest::array::uniform20(proptest::prelude::any::<u8>()),
            ttl in 1u8..=255,
        ) {
            hdr[0] = 0x45;
            hdr[8] = ttl;
            hdr[10..12].copy_from_slice(&[0, 0]);
            let c = checksum::checksum(&hdr);
            hdr[10..12].copy_from_slice(&c.to_be_bytes());
            let mut v = Ipv4Packet::new_unchecked(&mut hdr[..]);
            v.decrement_ttl();
            proptest::prop_assert!(v.verify_checksum());
        }

        #[test]
        fn fragments_always_reassemble(
            payload in 0usize..3000,
            mtu in 68u16..1600,
            copied in proptest::prelude::any::<bool>(),
        ) {
            let opts: &[u8] = if copied { &[0x83, 7, 4, 1, 2, 3, 4, 0] } else { &[] };
            let p = big_packet(payload, opts, 0);
            let mut f = Ipv4Fragmenter::new(&p, mtu).unwrap();
            let mut out = vec![0u8; usize::from(mtu)];
            let mut frags = Vec::new();
            while let Some(n) = f.next_into(&mut out) {
                frags.push(out[..n].to_vec());
            }
            proptest::prop_assert_eq!(reassemble(&frags, usize::from(mtu)), p[20 + opts.len()..].to_vec());
        }
    }
}
