//! WireGuard key material: Curve25519 private/public keys and preshared keys in the
//! base64 form `wg genkey` / `wg pubkey` use.
//!
//! Private and preshared keys never print themselves: their `Debug` and `Display` say
//! "(redacted)", so a key cannot leak through a log line or an error message by accident.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use boringtun::x25519;
use std::fmt;

/// Why a key string was refused. Never carries the key text itself.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("not valid base64")]
    Base64,
    #[error("decodes to {0} bytes, a WireGuard key is 32")]
    Length(usize),
}

fn decode32(text: &str) -> Result<[u8; 32], KeyError> {
    let bytes = BASE64.decode(text.trim()).map_err(|_| KeyError::Base64)?;
    bytes
        .as_slice()
        .try_into()
        .map_err(|_| KeyError::Length(bytes.len()))
}

/// A Curve25519 private key. Redacted in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateKey([u8; 32]);

impl PrivateKey {
    /// A fresh random key, clamped like `wg genkey` does.
    pub fn generate() -> Self {
        use rand::RngCore;
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        bytes[0] &= 248;
        bytes[31] &= 127;
        bytes[31] |= 64;
        PrivateKey(bytes)
    }

    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        decode32(text).map(PrivateKey)
    }

    /// The base64 text; only for writing key files the user asked for (`wgrd genkey`).
    pub fn to_base64(&self) -> String {
        BASE64.encode(self.0)
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(x25519::PublicKey::from(&self.to_secret()).to_bytes())
    }

    pub fn to_secret(&self) -> x25519::StaticSecret {
        x25519::StaticSecret::from(self.0)
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(redacted)")
    }
}

/// A Curve25519 public key; prints as base64.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        decode32(text).map(PublicKey)
    }

    pub fn to_base64(&self) -> String {
        BASE64.encode(self.0)
    }

    pub fn to_dalek(&self) -> x25519::PublicKey {
        x25519::PublicKey::from(self.0)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_base64())
    }
}

/// A 32-byte preshared key (`wg genpsk`). Redacted in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct PresharedKey(pub [u8; 32]);

impl PresharedKey {
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        decode32(text).map(PresharedKey)
    }
}

impl fmt::Debug for PresharedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PresharedKey(redacted)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_key_matches_wireguard_test_vector() {
        // Key pair produced by `wg genkey | tee k | wg pubkey` from wireguard-tools.
        let private =
            PrivateKey::from_base64("kMwt5CLSasFzkFUxiqkaXAwIQZt6E2E28vVxZ4/gp1w=").unwrap();
        assert_eq!(
            private.public_key().to_base64(),
            "hnn0TlOHy1Oqoj8k3AB/0cWmKRax5rDQndigw4e13B0="
        );
    }

    #[test]
    fn private_key_never_prints() {
        let key = PrivateKey::generate();
        let text = format!("{key:?}");
        assert!(!text.contains(&key.to_base64()));
        assert!(text.contains("redacted"));
    }

    #[test]
    fn bad_keys_are_refused_with_reason() {
        assert_eq!(PublicKey::from_base64("not base64!"), Err(KeyError::Base64));
        assert_eq!(PublicKey::from_base64("AAAA"), Err(KeyError::Length(3)));
    }
}
