//! BGP messages: the 19-byte header (RFC 4271 4.1) as a checked view, a stream
//! [`Framer`] that cuts a TCP byte stream into messages (marker check, length 19..4096),
//! and the five bodies as `Repr`s with `parse`/`emit`/`buffer_len`: OPEN with optional
//! parameters and capabilities (4.2, RFC 5492, RFC 9072 extended parameters length;
//! capabilities of RFC 4760, RFC 2918, RFC 8950, RFC 6793), UPDATE (4.3, attributes in
//! [`super::attr`]), NOTIFICATION (4.5), KEEPALIVE (4.4), ROUTE-REFRESH (RFC 2918 3).
//!
//! Errors are returned as the [`Notification`] the session should send (RFC 4271 6,
//! RFC 7606); no parser panics on any input. Pure codecs: no sessions, no I/O.

use super::attr::{
    emit_attrs, emit_prefixes, parse_attrs, parse_prefixes, prefixes_len, subcode, Codec, Family,
    Faults, PathAttrs,
};
use ipnetwork::IpNetwork;
use std::net::Ipv4Addr;

pub const HEADER_LEN: usize = 19;
pub const MIN_LEN: usize = 19;
pub const MAX_LEN: usize = 4096;
/// The limit once both sides offered extended messages (RFC 8654), for every message
/// but OPEN and KEEPALIVE.
pub const EXTENDED_MAX_LEN: usize = 65535;
pub const VERSION: u8 = 4;

pub const TYPE_OPEN: u8 = 1;
pub const TYPE_UPDATE: u8 = 2;
pub const TYPE_NOTIFICATION: u8 = 3;
pub const TYPE_KEEPALIVE: u8 = 4;
pub const TYPE_ROUTE_REFRESH: u8 = 5;

/// NOTIFICATION error codes (RFC 4271 4.5, RFC 7313).
pub const HEADER_ERROR: u8 = 1;
pub const OPEN_ERROR: u8 = 2;
pub const UPDATE_ERROR: u8 = 3;
pub const HOLD_TIMER_EXPIRED: u8 = 4;
pub const FSM_ERROR: u8 = 5;
pub const CEASE: u8 = 6;
pub const ROUTE_REFRESH_ERROR: u8 = 7;

/// Message Header Error subcodes.
pub const HDR_NOT_SYNCHRONIZED: u8 = 1;
pub const HDR_BAD_LENGTH: u8 = 2;
pub const HDR_BAD_TYPE: u8 = 3;

/// OPEN Message Error subcodes (RFC 4271 6.2, RFC 5492).
pub const OPEN_BAD_VERSION: u8 = 1;
pub const OPEN_BAD_PEER_AS: u8 = 2;
pub const OPEN_BAD_BGP_ID: u8 = 3;
pub const OPEN_UNSUPPORTED_PARAM: u8 = 4;
pub const OPEN_BAD_HOLD_TIME: u8 = 6;
pub const OPEN_UNSUPPORTED_CAPABILITY: u8 = 7;

/// Cease subcodes (RFC 4486).
pub const CEASE_MAX_PREFIXES: u8 = 1;
pub const CEASE_ADMIN_SHUTDOWN: u8 = 2;
pub const CEASE_PEER_DECONFIGURED: u8 = 3;
pub const CEASE_ADMIN_RESET: u8 = 4;
pub const CEASE_CONNECTION_REJECTED: u8 = 5;
pub const CEASE_COLLISION: u8 = 7;

/// Capability codes (IANA).
pub const CAP_MULTIPROTOCOL: u8 = 1;
pub const CAP_ROUTE_REFRESH: u8 = 2;
pub const CAP_EXTENDED_NEXT_HOP: u8 = 5;
pub const CAP_EXTENDED_MESSAGE: u8 = 6;
pub const CAP_FOUR_OCTET_AS: u8 = 65;

const MARKER: [u8; 16] = [0xff; 16];

mod field {
    use std::ops::Range;
    pub const MARKER: Range<usize> = 0..16;
    pub const LENGTH: Range<usize> = 16..18;
    pub const TYPE: usize = 18;
}

/// A NOTIFICATION's content; also the error type of every parser here.
#[derive(Clone, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[error("BGP error {code}/{subcode}")]
pub struct Notification {
    pub code: u8,
    pub subcode: u8,
    pub data: Vec<u8>,
}

impl Notification {
    pub fn new(code: u8, subcode: u8) -> Notification {
        Notification {
            code,
            subcode,
            data: Vec::new(),
        }
    }
    /// The data is cut so that the NOTIFICATION fits in a 4096-byte message: some errors
    /// quote the whole offending message (RFC 7313 5), which may itself be that long.
    pub fn with_data(code: u8, subcode: u8, data: &[u8]) -> Notification {
        const MAX_DATA: usize = 4096 - 19 - 2;
        Notification {
            code,
            subcode,
            data: data[..data.len().min(MAX_DATA)].to_vec(),
        }
    }
}

/// A checked view over one message's bytes: the header is readable and the length field
/// agrees with the buffer.
#[derive(Debug, Clone, Copy)]
pub struct Header<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Header<T> {
    pub fn new_unchecked(buffer: T) -> Header<T> {
        Header { buffer }
    }

    /// Refuses a buffer shorter than the header, a bad marker, or a length field outside
    /// `19..=max_len` or different from the buffer's length.
    pub fn new_checked(buffer: T, max_len: usize) -> Result<Header<T>, Notification> {
        let h = Header { buffer };
        let b = h.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Notification::with_data(
                HEADER_ERROR,
                HDR_BAD_LENGTH,
                &(b.len() as u16).to_be_bytes(),
            ));
        }
        if b[field::MARKER] != MARKER {
            return Err(Notification::new(HEADER_ERROR, HDR_NOT_SYNCHRONIZED));
        }
        let len = h.length();
        if usize::from(len) < MIN_LEN || usize::from(len) > max_len || usize::from(len) != b.len() {
            return Err(Notification::with_data(
                HEADER_ERROR,
                HDR_BAD_LENGTH,
                &len.to_be_bytes(),
            ));
        }
        Ok(h)
    }

    pub fn length(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::LENGTH];
        u16::from_be_bytes([b[0], b[1]])
    }

    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    pub fn body(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Header<T> {
    pub fn fill(&mut self, len: u16, ty: u8) {
        let b = self.buffer.as_mut();
        b[field::MARKER].copy_from_slice(&MARKER);
        b[field::LENGTH].copy_from_slice(&len.to_be_bytes());
        b[field::TYPE] = ty;
    }
}

/// Cuts a byte stream into whole messages. After an error the stream is out of sync and
/// the session must close; the framer keeps returning that error.
#[derive(Debug, Default)]
pub struct Framer {
    buf: Vec<u8>,
    /// Where the unread bytes of `buf` start: messages are taken from the front without
    /// moving the rest each time (a 64 KiB read holds about 16 of them).
    start: usize,
    max_len: usize,
    failed: Option<Notification>,
}

impl Framer {
    pub fn new() -> Framer {
        Framer::with_max_len(MAX_LEN)
    }

    /// `max_len` 65535 once RFC 8654 extended messages are negotiated.
    pub fn with_max_len(max_len: usize) -> Framer {
        Framer {
            buf: Vec::new(),
            start: 0,
            max_len,
            failed: None,
        }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        // What was read goes before the buffer grows: at most one partial message moves.
        self.buf.drain(..self.start);
        self.start = 0;
        self.buf.extend_from_slice(bytes);
    }

    /// A new limit for the messages still to come (extended messages negotiated by the
    /// OPEN just read); what is buffered is kept.
    pub fn set_max_len(&mut self, max_len: usize) {
        self.max_len = max_len;
    }

    /// The next complete message (header included), or `None` if more bytes are needed.
    pub fn next_message(&mut self) -> Option<Result<Vec<u8>, Notification>> {
        if let Some(e) = &self.failed {
            return Some(Err(e.clone()));
        }
        let buf = &self.buf[self.start..];
        if buf.len() < HEADER_LEN {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([buf[16], buf[17]]));
        let check_len = len.clamp(HEADER_LEN, buf.len());
        if len < MIN_LEN || len > self.max_len || buf[field::MARKER] != MARKER {
            let e = match Header::new_checked(&buf[..check_len], self.max_len) {
                Err(e) => e,
                Ok(_) => Notification::new(HEADER_ERROR, HDR_BAD_LENGTH),
            };
            self.failed = Some(e.clone());
            return Some(Err(e));
        }
        if buf.len() < len {
            return None;
        }
        let message = buf[..len].to_vec();
        self.start += len;
        Some(Ok(message))
    }
}

/// One capability (RFC 5492 4).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Capability {
    Multiprotocol(Family),
    RouteRefresh,
    /// RFC 8950: (NLRI family, next hop AFI) pairs.
    ExtendedNextHop(Vec<(Family, u16)>),
    FourOctetAs(u32),
    /// RFC 8654: messages up to 65535 bytes.
    ExtendedMessage,
    /// Anything else (graceful restart, add-path, FQDN, ...), carried verbatim.
    Other {
        code: u8,
        data: Vec<u8>,
    },
}

impl Capability {
    fn parse(code: u8, d: &[u8]) -> Capability {
        let other = || Capability::Other {
            code,
            data: d.to_vec(),
        };
        match code {
            CAP_MULTIPROTOCOL if d.len() == 4 => {
                match Family::from_afi_safi(u16::from_be_bytes([d[0], d[1]]), d[3]) {
                    Some(f) => Capability::Multiprotocol(f),
                    None => other(),
                }
            }
            CAP_ROUTE_REFRESH if d.is_empty() => Capability::RouteRefresh,
            CAP_EXTENDED_MESSAGE if d.is_empty() => Capability::ExtendedMessage,
            CAP_EXTENDED_NEXT_HOP if !d.is_empty() && d.len().is_multiple_of(6) => {
                let mut v = Vec::new();
                for c in d.chunks_exact(6) {
                    let safi = u16::from_be_bytes([c[2], c[3]]);
                    let fam = u8::try_from(safi)
                        .ok()
                        .and_then(|s| Family::from_afi_safi(u16::from_be_bytes([c[0], c[1]]), s));
                    if let Some(f) = fam {
                        v.push((f, u16::from_be_bytes([c[4], c[5]])));
                    }
                }
                if v.is_empty() {
                    // Only families we do not know: keep it verbatim, so that what we
                    // write back is what we read (found by the bgp_message fuzz target).
                    return other();
                }
                Capability::ExtendedNextHop(v)
            }
            CAP_FOUR_OCTET_AS if d.len() == 4 => {
                Capability::FourOctetAs(u32::from_be_bytes([d[0], d[1], d[2], d[3]]))
            }
            _ => other(),
        }
    }

    fn emit(&self, out: &mut Vec<u8>) {
        let mut v = Vec::new();
        let code = match self {
            Capability::Multiprotocol(f) => {
                v.extend_from_slice(&f.afi().to_be_bytes());
                v.push(0);
                v.push(f.safi());
                CAP_MULTIPROTOCOL
            }
            Capability::RouteRefresh => CAP_ROUTE_REFRESH,
            Capability::ExtendedMessage => CAP_EXTENDED_MESSAGE,
            Capability::ExtendedNextHop(pairs) => {
                for (f, nh_afi) in pairs {
                    v.extend_from_slice(&f.afi().to_be_bytes());
                    v.extend_from_slice(&u16::from(f.safi()).to_be_bytes());
                    v.extend_from_slice(&nh_afi.to_be_bytes());
                }
                CAP_EXTENDED_NEXT_HOP
            }
            Capability::FourOctetAs(asn) => {
                v.extend_from_slice(&asn.to_be_bytes());
                CAP_FOUR_OCTET_AS
            }
            Capability::Other { code, data } => {
                v.extend_from_slice(data);
                *code
            }
        };
        out.push(code);
        out.push(v.len().min(255) as u8);
        out.extend_from_slice(&v[..v.len().min(255)]);
    }
}

/// OPEN (RFC 4271 4.2). `my_as` is the 2-octet field (AS_TRANS for a 4-octet AS; the real
/// one is in [`Capability::FourOctetAs`], see [`OpenRepr::asn`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OpenRepr {
    pub my_as: u16,
    pub hold_time: u16,
    pub bgp_id: Ipv4Addr,
    pub capabilities: Vec<Capability>,
}

const OPT_PARAM_CAPABILITIES: u8 = 2;
const OPT_PARAM_EXTENDED: u8 = 255;

impl OpenRepr {
    /// The speaker's AS: the 4-octet capability if present, else the 2-octet field.
    pub fn asn(&self) -> u32 {
        self.capabilities
            .iter()
            .find_map(|c| match c {
                Capability::FourOctetAs(a) => Some(*a),
                _ => None,
            })
            .unwrap_or(u32::from(self.my_as))
    }

    /// Families announced with the multiprotocol capability; IPv4 unicast alone if
    /// there is none (RFC 4760 8).
    pub fn families(&self) -> Vec<Family> {
        let mut v: Vec<Family> = self
            .capabilities
            .iter()
            .filter_map(|c| match c {
                Capability::Multiprotocol(f) => Some(*f),
                _ => None,
            })
            .collect();
        if !self
            .capabilities
            .iter()
            .any(|c| matches!(c, Capability::Multiprotocol(_)))
        {
            v.push(Family::Ipv4Unicast);
        }
        v.sort();
        v.dedup();
        v
    }

    pub fn has(&self, pred: impl Fn(&Capability) -> bool) -> bool {
        self.capabilities.iter().any(pred)
    }

    /// Checks the version and hold time (RFC 4271 6.2) and reads the parameters. The
    /// peer AS and BGP identifier are the session's business.
    pub fn parse(body: &[u8]) -> Result<OpenRepr, Notification> {
        let bad_len = || Notification::new(HEADER_ERROR, HDR_BAD_LENGTH);
        if body.len() < 10 {
            return Err(bad_len());
        }
        if body[0] != VERSION {
            return Err(Notification::with_data(
                OPEN_ERROR,
                OPEN_BAD_VERSION,
                &u16::from(VERSION).to_be_bytes(),
            ));
        }
        let my_as = u16::from_be_bytes([body[1], body[2]]);
        let hold_time = u16::from_be_bytes([body[3], body[4]]);
        if hold_time == 1 || hold_time == 2 {
            return Err(Notification::new(OPEN_ERROR, OPEN_BAD_HOLD_TIME));
        }
        let bgp_id = Ipv4Addr::new(body[5], body[6], body[7], body[8]);
        let mut params = &body[10..];
        // RFC 9072: length 255 and type 255 announce 2-octet lengths.
        let extended = body[9] == 255 && params.first() == Some(&OPT_PARAM_EXTENDED);
        let params_len = if extended {
            let l = params.get(1..3).ok_or_else(malformed_open)?;
            params = &params[3..];
            usize::from(u16::from_be_bytes([l[0], l[1]]))
        } else {
            usize::from(body[9])
        };
        if params.len() != params_len {
            return Err(malformed_open());
        }
        let mut capabilities = Vec::new();
        while let Some((&ptype, rest)) = params.split_first() {
            let (plen, rest) = if extended {
                let l = rest.get(..2).ok_or_else(malformed_open)?;
                (usize::from(u16::from_be_bytes([l[0], l[1]])), &rest[2..])
            } else {
                let (&l, r) = rest.split_first().ok_or_else(malformed_open)?;
                (usize::from(l), r)
            };
            let value = rest.get(..plen).ok_or_else(malformed_open)?;
            params = &rest[plen..];
            if ptype != OPT_PARAM_CAPABILITIES {
                return Err(Notification::new(OPEN_ERROR, OPEN_UNSUPPORTED_PARAM));
            }
            let mut caps = value;
            while let Some((&code, rest)) = caps.split_first() {
                let (&clen, rest) = rest.split_first().ok_or_else(malformed_open)?;
                let data = rest.get(..usize::from(clen)).ok_or_else(malformed_open)?;
                capabilities.push(Capability::parse(code, data));
                caps = &rest[usize::from(clen)..];
            }
        }
        Ok(OpenRepr {
            my_as,
            hold_time,
            bgp_id,
            capabilities,
        })
    }

    fn params(&self) -> Vec<u8> {
        // One capabilities parameter holding every capability (as BIRD and FRR send).
        let mut caps = Vec::new();
        for c in &self.capabilities {
            c.emit(&mut caps);
        }
        caps
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.push(VERSION);
        out.extend_from_slice(&self.my_as.to_be_bytes());
        out.extend_from_slice(&self.hold_time.to_be_bytes());
        out.extend_from_slice(&self.bgp_id.octets());
        let caps = self.params();
        if caps.is_empty() {
            out.push(0);
        } else if caps.len() + 2 <= 255 {
            out.push((caps.len() + 2) as u8);
            out.push(OPT_PARAM_CAPABILITIES);
            out.push(caps.len() as u8);
            out.extend_from_slice(&caps);
        } else {
            out.push(255);
            out.push(OPT_PARAM_EXTENDED);
            out.extend_from_slice(&((caps.len() + 3) as u16).to_be_bytes());
            out.push(OPT_PARAM_CAPABILITIES);
            out.extend_from_slice(&(caps.len() as u16).to_be_bytes());
            out.extend_from_slice(&caps);
        }
    }

    pub fn buffer_len(&self) -> usize {
        let caps = self.params().len();
        10 + match caps {
            0 => 0,
            n if n + 2 <= 255 => n + 2,
            n => n + 6,
        }
    }
}

fn malformed_open() -> Notification {
    // RFC 4271 has no subcode for a garbled parameter list; RFC 5492 and common practice
    // use Unsupported Optional Parameter's neighbour, subcode 0 (unspecific).
    Notification::new(OPEN_ERROR, 0)
}

/// UPDATE (RFC 4271 4.3). `faults` is what RFC 7606 handling found on receipt (empty
/// when building one to send).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct UpdateRepr {
    pub withdrawn: Vec<IpNetwork>,
    pub attrs: PathAttrs,
    pub nlri: Vec<IpNetwork>,
    pub faults: Faults,
}

impl UpdateRepr {
    pub fn parse(body: &[u8], codec: Codec) -> Result<UpdateRepr, Notification> {
        let malformed = || Notification::new(UPDATE_ERROR, subcode::MALFORMED_ATTR_LIST);
        let wlen = body.get(..2).ok_or_else(malformed)?;
        let wlen = usize::from(u16::from_be_bytes([wlen[0], wlen[1]]));
        let withdrawn = body.get(2..2 + wlen).ok_or_else(malformed)?;
        let alen = body.get(2 + wlen..4 + wlen).ok_or_else(malformed)?;
        let alen = usize::from(u16::from_be_bytes([alen[0], alen[1]]));
        let attrs = body.get(4 + wlen..4 + wlen + alen).ok_or_else(malformed)?;
        let nlri = &body[4 + wlen + alen..];
        // RFC 7606 5.3: a syntactically wrong NLRI or withdrawn field is a session reset.
        let invalid = || Notification::new(UPDATE_ERROR, subcode::INVALID_NETWORK);
        let withdrawn = parse_prefixes(withdrawn, Family::Ipv4Unicast).ok_or_else(invalid)?;
        let nlri = parse_prefixes(nlri, Family::Ipv4Unicast).ok_or_else(invalid)?;
        let (attrs, faults) = parse_attrs(attrs, codec, !nlri.is_empty())?;
        Ok(UpdateRepr {
            withdrawn,
            attrs,
            nlri,
            faults,
        })
    }

    pub fn emit(&self, codec: Codec, out: &mut Vec<u8>) {
        out.extend_from_slice(&(prefixes_len(&self.withdrawn) as u16).to_be_bytes());
        emit_prefixes(&self.withdrawn, out);
        let mut attrs = Vec::new();
        emit_attrs(&self.attrs, codec, &mut attrs);
        out.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        out.extend_from_slice(&attrs);
        emit_prefixes(&self.nlri, out);
    }

    /// Every prefix this UPDATE announces, in any family.
    pub fn announced(&self) -> impl Iterator<Item = &IpNetwork> {
        self.nlri
            .iter()
            .chain(self.attrs.mp_reach.iter().flat_map(|r| r.nlri.iter()))
    }

    /// Every prefix this UPDATE withdraws, in any family (without treat-as-withdraw).
    pub fn withdrawals(&self) -> impl Iterator<Item = &IpNetwork> {
        self.withdrawn.iter().chain(
            self.attrs
                .mp_unreach
                .iter()
                .flat_map(|u| u.withdrawn.iter()),
        )
    }
}

/// ROUTE-REFRESH (RFC 2918 3; the subtype octet of RFC 7313 is kept).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RouteRefreshRepr {
    pub afi: u16,
    pub subtype: u8,
    pub safi: u8,
}

/// One parsed message. Messages live only between the framer and the session, so the
/// size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Message {
    Open(OpenRepr),
    Update(UpdateRepr),
    Notification(Notification),
    Keepalive,
    RouteRefresh(RouteRefreshRepr),
}

impl Message {
    /// Parses one whole message (header included), as cut by [`Framer`].
    pub fn parse(bytes: &[u8], codec: Codec) -> Result<Message, Notification> {
        Message::parse_with_max(bytes, codec, MAX_LEN)
    }

    pub fn parse_with_max(
        bytes: &[u8],
        codec: Codec,
        max_len: usize,
    ) -> Result<Message, Notification> {
        let h = Header::new_checked(bytes, max_len)?;
        let body = h.body();
        let len = h.length();
        let bad_len = || Notification::with_data(HEADER_ERROR, HDR_BAD_LENGTH, &len.to_be_bytes());
        match h.msg_type() {
            TYPE_OPEN => {
                if body.len() < 10 {
                    return Err(bad_len());
                }
                OpenRepr::parse(body).map(Message::Open)
            }
            TYPE_UPDATE => {
                if body.len() < 4 {
                    return Err(bad_len());
                }
                UpdateRepr::parse(body, codec).map(Message::Update)
            }
            TYPE_NOTIFICATION => {
                if body.len() < 2 {
                    return Err(bad_len());
                }
                Ok(Message::Notification(Notification::with_data(
                    body[0],
                    body[1],
                    &body[2..],
                )))
            }
            TYPE_KEEPALIVE => {
                if !body.is_empty() {
                    return Err(bad_len());
                }
                Ok(Message::Keepalive)
            }
            TYPE_ROUTE_REFRESH => {
                if body.len() != 4 {
                    // RFC 7313 5: Invalid Message Length.
                    return Err(Notification::with_data(ROUTE_REFRESH_ERROR, 1, bytes));
                }
                Ok(Message::RouteRefresh(RouteRefreshRepr {
                    afi: u16::from_be_bytes([body[0], body[1]]),
                    subtype: body[2],
                    safi: body[3],
                }))
            }
            t => Err(Notification::with_data(HEADER_ERROR, HDR_BAD_TYPE, &[t])),
        }
    }

    pub fn msg_type(&self) -> u8 {
        match self {
            Message::Open(_) => TYPE_OPEN,
            Message::Update(_) => TYPE_UPDATE,
            Message::Notification(_) => TYPE_NOTIFICATION,
            Message::Keepalive => TYPE_KEEPALIVE,
            Message::RouteRefresh(_) => TYPE_ROUTE_REFRESH,
        }
    }

    /// Writes the whole message, header included. The caller checks the length against
    /// the peer's maximum with [`Message::buffer_len`] (an UPDATE too big to send must be
    /// split by whoever built it).
    pub fn emit(&self, codec: Codec) -> Vec<u8> {
        let mut out = vec![0u8; HEADER_LEN];
        match self {
            Message::Open(o) => o.emit(&mut out),
            Message::Update(u) => u.emit(codec, &mut out),
            Message::Notification(n) => {
                out.push(n.code);
                out.push(n.subcode);
                out.extend_from_slice(&n.data);
            }
            Message::Keepalive => {}
            Message::RouteRefresh(r) => {
                out.extend_from_slice(&r.afi.to_be_bytes());
                out.push(r.subtype);
                out.push(r.safi);
            }
        }
        let len = out.len().min(0xffff) as u16;
        Header::new_unchecked(&mut out[..]).fill(len, self.msg_type());
        out
    }

    pub fn buffer_len(&self, codec: Codec) -> usize {
        match self {
            Message::Open(o) => HEADER_LEN + o.buffer_len(),
            Message::Keepalive => HEADER_LEN,
            Message::RouteRefresh(_) => HEADER_LEN + 4,
            Message::Notification(n) => HEADER_LEN + 2 + n.data.len(),
            Message::Update(_) => self.emit(codec).len(),
        }
    }
}

#[cfg(test)]
mod tests;
