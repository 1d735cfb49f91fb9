//! BGP messages: `Message::parse` with either AS width, and the stream `Framer` fed the
//! input in pieces.
//!
//! Input: byte 0 picks the codec (bit 0: 4-octet AS) and seeds the chunk sizes; the rest
//! is one message for `Message::parse` and a byte stream for the framer.
//!
//! Checks: no panic; a parsed message emits to bytes that parse back to an equal value
//! (UPDATEs only when RFC 7606 handling found no fault, since a discarded attribute is
//! not re-emitted), no longer than the input; the framer cuts the same messages whatever
//! the chunking, each a prefix-consistent slice of the stream, and an error sticks.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wgrd::routing::bgp::attr::{Codec, FLAG_EXTENDED};
use wgrd::routing::bgp::message::{Framer, Message, HEADER_LEN, MAX_LEN};

/// The extended-length bit of an unknown attribute is a property of its encoding, not of
/// its value: the emitter sets it from the length (RFC 4271 4.3), so compare without it.
fn normalized(mut m: Message) -> Message {
    if let Message::Update(u) = &mut m {
        for a in &mut u.attrs.unknown {
            a.flags &= !FLAG_EXTENDED;
        }
    }
    m
}

fn round_trip(bytes: &[u8], codec: Codec) {
    let Ok(m) = Message::parse(bytes, codec) else {
        return;
    };
    if let Message::Update(u) = &m {
        if !u.faults.is_clean() {
            return;
        }
    }
    let out = m.emit(codec);
    assert_eq!(
        out.len(),
        m.buffer_len(codec),
        "buffer_len disagrees with emit"
    );
    assert!(
        out.len() <= bytes.len(),
        "re-emitted {} bytes from a {}-byte message",
        out.len(),
        bytes.len()
    );
    let again = Message::parse(&out, codec)
        .unwrap_or_else(|e| panic!("re-parse of {m:?} failed: {e:?}\nbytes {out:02x?}"));
    assert_eq!(
        normalized(again),
        normalized(m),
        "round trip changed the message"
    );
}

/// Everything a framer yields until it needs more bytes; stops at the first error.
fn drain(f: &mut Framer, out: &mut Vec<Result<Vec<u8>, Vec<u8>>>) -> bool {
    while let Some(r) = f.next_message() {
        match r {
            Ok(msg) => {
                assert!(msg.len() >= HEADER_LEN && msg.len() <= MAX_LEN);
                let len = usize::from(u16::from_be_bytes([msg[16], msg[17]]));
                assert_eq!(len, msg.len(), "framed message length field");
                out.push(Ok(msg));
            }
            Err(e) => {
                // Out of sync: the same error forever.
                assert_eq!(f.next_message(), Some(Err(e.clone())));
                out.push(Err(vec![e.code, e.subcode]));
                return false;
            }
        }
    }
    true
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, stream)) = data.split_first() else {
        return;
    };
    let codec = Codec {
        four_octet_as: sel & 1 != 0,
    };
    round_trip(stream, codec);

    // Chunked: sizes 1..=64 taken from the stream bytes themselves, offset by the selector.
    let mut chunked = Framer::new();
    let mut got = Vec::new();
    let mut at = 0;
    let mut i = usize::from(sel >> 1);
    let mut open = true;
    while at < stream.len() && open {
        let n = 1 + usize::from(stream[i % stream.len()]) % 64;
        let end = (at + n).min(stream.len());
        chunked.push(&stream[at..end]);
        at = end;
        i = i.wrapping_add(7);
        open = drain(&mut chunked, &mut got);
    }

    // All at once: the same messages (the chunked run may stop at an error earlier).
    let mut whole = Framer::new();
    whole.push(stream);
    let mut all = Vec::new();
    drain(&mut whole, &mut all);
    assert_eq!(got, all, "framing depends on chunking");

    let mut consumed = 0;
    for m in got.iter().filter_map(|r| r.as_ref().ok()) {
        assert_eq!(&stream[consumed..consumed + m.len()], &m[..]);
        consumed += m.len();
        round_trip(m, codec);
    }
});
