//! Integration secrets at rest: sealed with XChaCha20-Poly1305 under the
//! service's secrets key, with the tenant and row id as associated data, so
//! a sealed value copied to another row or tenant fails to open.

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};

use crate::{Result, StoreError};

/// The 32-byte key that seals integration secrets. Every node of one
/// deployment must use the same key.
#[derive(Clone)]
pub struct SecretsKey(Key);

impl SecretsKey {
    pub fn generate() -> Self {
        Self(XChaCha20Poly1305::generate_key(&mut OsRng))
    }

    /// 64 hex digits, as `to_hex` writes them.
    pub fn from_hex(text: &str) -> std::result::Result<Self, String> {
        let bytes = hex::decode(text.trim()).map_err(|error| format!("the secrets key must be 64 hex digits: {error}"))?;
        if bytes.len() != 32 {
            return Err(format!("the secrets key must be 32 bytes (64 hex digits), got {} bytes", bytes.len()));
        }
        Ok(Self(*Key::from_slice(&bytes)))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub(crate) fn seal(&self, context: &str, plaintext: &[u8]) -> Result<String> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = XChaCha20Poly1305::new(&self.0)
            .encrypt(&nonce, Payload { msg: plaintext, aad: context.as_bytes() })
            .map_err(|_| StoreError::Corrupt("cannot seal a secret".into()))?;
        Ok(format!("{}.{}", hex::encode(nonce), hex::encode(sealed)))
    }

    pub(crate) fn open(&self, context: &str, sealed: &str) -> Result<Vec<u8>> {
        let wrong = || StoreError::Corrupt("a sealed secret does not open with this secrets key".into());
        let (nonce, body) = sealed.split_once('.').ok_or_else(wrong)?;
        let nonce = hex::decode(nonce).map_err(|_| wrong())?;
        let body = hex::decode(body).map_err(|_| wrong())?;
        if nonce.len() != 24 {
            return Err(wrong());
        }
        XChaCha20Poly1305::new(&self.0)
            .decrypt(XNonce::from_slice(&nonce), Payload { msg: &body, aad: context.as_bytes() })
            .map_err(|_| wrong())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn works_when_opening_what_was_sealed_for_the_same_row() {
        let key = SecretsKey::generate();
        let sealed = key.seal("ten_1/int_1", b"s3cret").expect("seals");
        assert!(!sealed.contains("s3cret"));
        assert_eq!(key.open("ten_1/int_1", &sealed).expect("opens"), b"s3cret");
    }

    #[test]
    fn errors_when_a_sealed_value_is_moved_or_the_key_differs() {
        let key = SecretsKey::generate();
        let sealed = key.seal("ten_1/int_1", b"s3cret").expect("seals");
        assert!(key.open("ten_2/int_1", &sealed).is_err());
        assert!(SecretsKey::generate().open("ten_1/int_1", &sealed).is_err());
        let round = SecretsKey::from_hex(&key.to_hex()).expect("hex");
        assert_eq!(round.open("ten_1/int_1", &sealed).expect("opens"), b"s3cret");
        assert!(SecretsKey::from_hex("abcd").is_err());
    }
}
