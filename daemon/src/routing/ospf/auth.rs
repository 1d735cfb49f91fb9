//! OSPFv2 cryptographic authentication: keyed MD5 (RFC 2328 D.3, D.4.3) and
//! HMAC-SHA-256 (RFC 5709).
//!
//! With cryptographic authentication (AuType 2) the header's 64-bit authentication field
//! holds zero (16 bits), the key id (8), the digest length (8) and a non-decreasing
//! cryptographic sequence number (32); the packet checksum is not computed (zero); the
//! digest follows the packet, outside the length field:
//! - MD5: `MD5(packet || key zero-padded to 16 bytes)`;
//! - HMAC-SHA-256: `HMAC(Ko, packet || Apad)`, Apad the 32-byte 0x878FE1F3 pattern, Ko
//!   the key, or SHA-256 of the key when it is longer than 32 bytes (RFC 5709 3.3).
//!
//! Pure functions; the replay check (per neighbor) is the instance's. Keys are held in
//! [`AuthKey`], whose `Debug` never shows them.

use hmac::{Hmac, Mac};
use md5::{Digest as _, Md5};
use sha2::Sha256;

/// RFC 5709 Apad.
const APAD_WORD: [u8; 4] = [0x87, 0x8f, 0xe1, 0xf3];
/// Longest key MD5 authentication carries (RFC 2328 D.3).
pub const MD5_KEY_MAX: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Algorithm {
    Md5,
    #[default]
    HmacSha256,
}

impl Algorithm {
    /// Length of the digest appended to the packet.
    pub fn digest_len(self) -> usize {
        match self {
            Algorithm::Md5 => 16,
            Algorithm::HmacSha256 => 32,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "md5",
            Algorithm::HmacSha256 => "hmac-sha256",
        }
    }
}

/// One key of an interface: algorithm, key id and the secret itself.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthKey {
    pub algorithm: Algorithm,
    pub key_id: u8,
    secret: Vec<u8>,
}

impl std::fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthKey")
            .field("algorithm", &self.algorithm)
            .field("key_id", &self.key_id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl AuthKey {
    /// Keys longer than 16 bytes are cut to 16 for MD5 (the config refuses them).
    pub fn new(algorithm: Algorithm, key_id: u8, secret: &[u8]) -> AuthKey {
        let secret = match algorithm {
            Algorithm::Md5 => secret[..secret.len().min(MD5_KEY_MAX)].to_vec(),
            Algorithm::HmacSha256 if secret.len() > 32 => Sha256::digest(secret).to_vec(),
            Algorithm::HmacSha256 => secret.to_vec(),
        };
        AuthKey {
            algorithm,
            key_id,
            secret,
        }
    }

    /// The digest of `packet` (exactly the bytes the length field covers, with the
    /// authentication fields in place and a zero checksum).
    pub fn digest(&self, packet: &[u8]) -> Vec<u8> {
        match self.algorithm {
            Algorithm::Md5 => {
                let mut key = [0u8; MD5_KEY_MAX];
                key[..self.secret.len()].copy_from_slice(&self.secret);
                let mut h = Md5::new();
                h.update(packet);
                h.update(key);
                h.finalize().to_vec()
            }
            Algorithm::HmacSha256 => {
                // Any key length is accepted by HMAC.
                let Ok(mut m) = Hmac::<Sha256>::new_from_slice(&self.secret) else {
                    return vec![0; 32];
                };
                m.update(packet);
                for _ in 0..8 {
                    m.update(&APAD_WORD);
                }
                m.finalize().into_bytes().to_vec()
            }
        }
    }

    /// Appends the digest to `packet` (whose length field covers the whole vector).
    pub fn sign(&self, packet: &mut Vec<u8>) {
        let d = self.digest(packet);
        packet.extend_from_slice(&d);
    }

    /// Whether `digest` is the digest of `packet`, compared in constant time.
    pub fn verify(&self, packet: &[u8], digest: &[u8]) -> bool {
        let want = self.digest(packet);
        want.len() == digest.len()
            && want
                .iter()
                .zip(digest)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn hmac_sha256_matches_rfc4231_case_2_with_the_apad_folded_in() {
        // RFC 4231 test case 2 (key "Jefe") is plain HMAC-SHA-256; with an empty packet
        // our digest is HMAC(key, Apad), computed here independently of `digest`.
        let k = AuthKey::new(Algorithm::HmacSha256, 1, b"Jefe");
        let mut m = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        m.update(b"what do ya want for nothing?");
        assert_eq!(
            hex(&m.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let apad: Vec<u8> = APAD_WORD.iter().copied().cycle().take(32).collect();
        let mut m = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        m.update(&apad);
        assert_eq!(k.digest(&[]), m.finalize().into_bytes().to_vec());
    }

    #[test]
    fn md5_is_the_packet_then_the_padded_key() {
        // RFC 1321: MD5("") with a 16-byte zero key appended == MD5 of 16 zero bytes.
        let k = AuthKey::new(Algorithm::Md5, 1, b"");
        assert_eq!(hex(&k.digest(&[])), "4ae71336e44bf9bf79d2752e234818a5");
        // MD5("abc" || "secret" + 10 zeros)
        let k = AuthKey::new(Algorithm::Md5, 1, b"secret");
        let mut msg = b"abc".to_vec();
        msg.extend_from_slice(b"secret");
        msg.extend_from_slice(&[0; 10]);
        assert_eq!(k.digest(b"abc"), Md5::digest(&msg).to_vec());
    }

    #[test]
    fn long_hmac_keys_are_hashed_first() {
        let long = [7u8; 40];
        let a = AuthKey::new(Algorithm::HmacSha256, 1, &long);
        let b = AuthKey::new(Algorithm::HmacSha256, 1, &Sha256::digest(long));
        assert_eq!(a.digest(b"x"), b.digest(b"x"));
    }

    #[test]
    fn debug_never_shows_the_key() {
        let k = AuthKey::new(Algorithm::HmacSha256, 1, b"hunter2");
        let s = format!("{k:?}");
        assert!(!s.contains("hunter2") && !s.contains("104"), "{s}");
    }

    #[test]
    fn verify_refuses_another_key_or_a_flipped_bit() {
        let k = AuthKey::new(Algorithm::HmacSha256, 1, b"one");
        let d = k.digest(b"packet");
        assert!(k.verify(b"packet", &d));
        assert!(!AuthKey::new(Algorithm::HmacSha256, 1, b"two").verify(b"packet", &d));
        assert!(!k.verify(b"packeT", &d));
        assert!(!k.verify(b"packet", &d[..31]));
    }
}
