//! Channel secrets at rest: sealed with ChaCha20-Poly1305 under `secret_key` when one is
//! configured, so a copy of the database (a backup, a replica, a stolen file) does not
//! give away the secrets that sign deliveries or the routing keys that open incidents.
//!
//! A sealed value is `enc:v1:<key id>:<base64 of nonce ‖ ciphertext ‖ tag>`; the key id
//! (the first 8 hex digits of the key's SHA-256) says which key opens it, so keys can be
//! rotated: the new one seals, old ones (`previous_secret_keys`) still open, and
//! `certhook secrets rewrap` re-seals everything under the new one. The channel's id is
//! the associated data: a sealed value copied onto another channel does not open.
//! A value without the prefix is plain text, as stored when no key is set.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use sha2::{Digest, Sha256};

use crate::secret::Secret;

/// What marks a sealed value.
pub const PREFIX: &str = "enc:v1:";

/// Bytes of a key.
pub const KEY_LEN: usize = 32;

/// Why a key or a sealed value was refused. Never holds a secret or a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// A configured key is not 32 bytes of base64.
    #[error("must be {KEY_LEN} random bytes in base64 (openssl rand -base64 32); {0}")]
    BadKey(String),
    /// The value was sealed under a key that is not configured.
    #[error("sealed with key {0}, which is neither secret_key nor one of previous_secret_keys")]
    UnknownKey(String),
    /// The value is damaged, or belongs to another channel.
    #[error("sealed value does not open under key {0} (damaged, or copied from another channel)")]
    Damaged(String),
}

/// One key: its id and its cipher.
struct Key {
    id: String,
    cipher: LessSafeKey,
}

impl Key {
    fn from_base64(text: &str) -> Result<Key, SealError> {
        let bytes = STANDARD.decode(text.trim()).map_err(|_| SealError::BadKey("not valid base64".into()))?;
        if bytes.len() != KEY_LEN {
            return Err(SealError::BadKey(format!("got {} bytes", bytes.len())));
        }
        let id = hex::encode(&Sha256::digest(&bytes)[..4]);
        let cipher = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &bytes).expect("32 bytes is the key length"));
        Ok(Key { id, cipher })
    }
}

/// The keys that seal and open channel secrets; empty means plain text.
#[derive(Default)]
pub struct Keyring {
    current: Option<Key>,
    previous: Vec<Key>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current.as_ref().map(|k| &k.id))
            .field("previous", &self.previous.iter().map(|k| &k.id).collect::<Vec<_>>())
            .finish()
    }
}

impl Keyring {
    /// `secret_key` and `previous_secret_keys` as configured (base64).
    pub fn new(current: Option<&Secret>, previous: &[Secret]) -> Result<Keyring, SealError> {
        Ok(Keyring {
            current: current.map(|k| Key::from_base64(k.expose())).transpose()?,
            previous: previous.iter().map(|k| Key::from_base64(k.expose())).collect::<Result<_, _>>()?,
        })
    }

    /// The id of the key that seals, if any.
    pub fn current_id(&self) -> Option<&str> {
        self.current.as_ref().map(|k| k.id.as_str())
    }

    /// `plain` as it is stored for the channel `channel`: sealed under the current key, or
    /// as it is when there is none.
    pub fn seal(&self, plain: &str, channel: &str) -> String {
        let Some(key) = &self.current else {
            return plain.to_string();
        };
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let mut buf = plain.as_bytes().to_vec();
        key.cipher
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(channel.as_bytes()),
                &mut buf,
            )
            .expect("ChaCha20-Poly1305 seals any length a secret has");
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&buf);
        format!("{PREFIX}{}:{}", key.id, STANDARD.encode(out))
    }

    /// The plain value of what is stored for `channel`.
    pub fn open(&self, stored: &str, channel: &str) -> Result<String, SealError> {
        let Some(rest) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_string());
        };
        let (id, data) = rest.split_once(':').unwrap_or((rest, ""));
        let key = self
            .current
            .iter()
            .chain(&self.previous)
            .find(|k| k.id == id)
            .ok_or_else(|| SealError::UnknownKey(id.to_string()))?;
        let damaged = || SealError::Damaged(id.to_string());
        let mut bytes = STANDARD.decode(data).map_err(|_| damaged())?;
        if bytes.len() < NONCE_LEN {
            return Err(damaged());
        }
        let nonce = Nonce::try_assume_unique_for_key(&bytes[..NONCE_LEN]).map_err(|_| damaged())?;
        let plain = key
            .cipher
            .open_within(nonce, Aad::from(channel.as_bytes()), &mut bytes, NONCE_LEN..)
            .map_err(|_| damaged())?;
        String::from_utf8(plain.to_vec()).map_err(|_| damaged())
    }

    /// Whether `stored` is already as [`Keyring::seal`] would store it now: sealed under
    /// the current key, or plain when there is none.
    pub fn is_current(&self, stored: &str) -> bool {
        match (&self.current, stored.strip_prefix(PREFIX)) {
            (Some(key), Some(rest)) => rest.split_once(':').is_some_and(|(id, _)| id == key.id),
            (None, None) => true,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const KEY_B: &str = "HxwdHhscGhkYFxYVFBMSERAPDg0MCwoJCAcGBQQDAgE=";

    fn ring(current: Option<&str>, previous: &[&str]) -> Keyring {
        let previous: Vec<Secret> = previous.iter().map(|k| Secret::new(*k)).collect();
        Keyring::new(current.map(Secret::new).as_ref(), &previous).unwrap()
    }

    #[test]
    fn sealed_values_open_only_for_their_channel_and_hide_the_secret() {
        let keys = ring(Some(KEY_A), &[]);
        let sealed = keys.seal("whsec-the-signing-secret", "channel-1");
        assert!(sealed.starts_with("enc:v1:") && !sealed.contains("signing"), "{sealed}");
        assert_ne!(sealed, keys.seal("whsec-the-signing-secret", "channel-1"), "a fresh nonce each time");
        assert_eq!(keys.open(&sealed, "channel-1").unwrap(), "whsec-the-signing-secret");
        assert!(matches!(keys.open(&sealed, "channel-2"), Err(SealError::Damaged(_))));
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(keys.open(&tampered, "channel-1").is_err());
        assert!(keys.open("enc:v1:", "channel-1").is_err());
    }

    #[test]
    fn rotation_opens_with_previous_keys_and_names_a_missing_one() {
        let old = ring(Some(KEY_A), &[]);
        let sealed = old.seal("s", "c");
        let rotated = ring(Some(KEY_B), &[KEY_A]);
        assert_eq!(rotated.open(&sealed, "c").unwrap(), "s");
        assert!(!rotated.is_current(&sealed));
        assert!(rotated.is_current(&rotated.seal("s", "c")));
        let forgotten = ring(Some(KEY_B), &[]);
        let err = forgotten.open(&sealed, "c").unwrap_err();
        assert_eq!(err, SealError::UnknownKey(old.current_id().unwrap().to_string()));
        assert!(!err.to_string().contains(KEY_A));
    }

    #[test]
    fn without_a_key_values_are_plain_and_plain_values_still_open() {
        let none = Keyring::default();
        assert_eq!(none.seal("s", "c"), "s");
        assert!(none.is_current("s"));
        assert_eq!(ring(Some(KEY_A), &[]).open("legacy-plain", "c").unwrap(), "legacy-plain");
        assert!(!ring(Some(KEY_A), &[]).is_current("legacy-plain"));
    }

    #[test]
    fn bad_keys_are_refused_without_echoing_them() {
        for bad in ["not base64!", "AAEC", ""] {
            let e = Keyring::new(Some(&Secret::new(bad)), &[]).unwrap_err();
            assert!(matches!(e, SealError::BadKey(_)), "{bad}");
            assert!(bad.is_empty() || !e.to_string().contains(bad), "{e}");
        }
    }
}
