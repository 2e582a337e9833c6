//! Request signatures (SPEC §2): `x-infisical-signature` and the Standard Webhooks headers.
//!
//! Keys are prepared once per channel ([`SigningKey`]) so each attempt only feeds the
//! body through an HMAC state that already absorbed the key. Signing is pure: the send
//! time is an argument.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::secret::{MIN_SECRET_LEN, Secret};

type HmacSha256 = Hmac<Sha256>;

/// Why a signing secret was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// Shorter than [`MIN_SECRET_LEN`] characters.
    #[error("secret: must be at least {MIN_SECRET_LEN} characters (got {0})")]
    TooShort(usize),
    /// Starts with `whsec_` but the rest is not base64.
    #[error("secret: starts with whsec_ but the rest is not valid base64")]
    BadWhsec,
    /// Starts with the prefix that marks a value sealed at rest.
    #[error("secret: must not start with enc:v1: (that prefix marks a secret sealed at rest)")]
    SealedPrefix,
}

/// Checks a signing secret: at least 32 characters, and valid base64 after a `whsec_` prefix.
pub fn validate_secret(secret: &str) -> Result<(), SecretError> {
    let len = secret.chars().count();
    if len < MIN_SECRET_LEN {
        return Err(SecretError::TooShort(len));
    }
    // Stored as given without secret_key, it would be read back as sealed.
    if secret.starts_with(crate::seal::PREFIX) {
        return Err(SecretError::SealedPrefix);
    }
    standard_webhooks_key(secret).map(|_| ())
}

/// The Standard Webhooks key bytes: base64-decoded after `whsec_`, else the UTF-8 bytes.
pub fn standard_webhooks_key(secret: &str) -> Result<Vec<u8>, SecretError> {
    match secret.strip_prefix("whsec_") {
        Some(b64) => BASE64.decode(b64).map_err(|_| SecretError::BadWhsec),
        None => Ok(secret.as_bytes().to_vec()),
    }
}

/// One secret's HMAC states for both schemes, ready to sign many requests.
#[derive(Clone)]
pub struct SigningKey {
    infisical: HmacSha256,
    standard: HmacSha256,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey([redacted])")
    }
}

impl SigningKey {
    /// Prepares the keys of one secret.
    pub fn new(secret: &Secret) -> Result<Self, SecretError> {
        let standard_key = standard_webhooks_key(secret.expose())?;
        Ok(SigningKey {
            // HMAC accepts keys of any length; new_from_slice cannot fail for it.
            infisical: HmacSha256::new_from_slice(secret.expose().as_bytes()).expect("HMAC takes any key length"),
            standard: HmacSha256::new_from_slice(&standard_key).expect("HMAC takes any key length"),
        })
    }

    fn infisical_hex(&self, t_ms: i64, body: &[u8]) -> String {
        let mut mac = self.infisical.clone();
        mac.update(t_ms.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }

    fn standard_b64(&self, msg_id: &str, ts_secs: i64, body: &[u8]) -> String {
        let mut mac = self.standard.clone();
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(ts_secs.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        BASE64.encode(mac.finalize().into_bytes())
    }
}

/// The signature-related headers of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeaders {
    /// `webhook-id`: the CloudEvent id.
    pub webhook_id: String,
    /// `webhook-timestamp`: unix seconds of the send time.
    pub webhook_timestamp: String,
    /// `x-infisical-signature` (or the configured name): `t=<ms>,v1=<hex>[,v1=<hex>…]`.
    pub infisical: Option<String>,
    /// `webhook-signature`: `v1,<base64>[ v1,<base64>…]`.
    pub standard: Option<String>,
}

/// Signs one attempt at send time `t_ms` (unix milliseconds) with every active key, newest first.
pub fn sign(keys: &[SigningKey], webhook_id: &str, t_ms: i64, body: &[u8]) -> SignatureHeaders {
    let ts_secs = t_ms.div_euclid(1000);
    let (infisical, standard) = if keys.is_empty() {
        (None, None)
    } else {
        let mut inf = format!("t={t_ms}");
        let mut std = String::new();
        for key in keys {
            inf.push_str(",v1=");
            inf.push_str(&key.infisical_hex(t_ms, body));
            if !std.is_empty() {
                std.push(' ');
            }
            std.push_str("v1,");
            std.push_str(&key.standard_b64(webhook_id, ts_secs, body));
        }
        (Some(inf), Some(std))
    };
    SignatureHeaders { webhook_id: webhook_id.to_string(), webhook_timestamp: ts_secs.to_string(), infisical, standard }
}

#[cfg(test)]
mod tests {
    //! Vectors computed with openssl, independently of this code:
    //!
    //! ```sh
    //! S1='certhook-test-secret-0123456789abcdef'; S2='previous-secret-for-rotation-0123456789'
    //! B='{"hello":"world"}'
    //! printf '%s' "1700000000000.$B" | openssl dgst -sha256 -hmac "$S1"            # 7fa737…43d1
    //! printf '%s' "1700000000000.$B" | openssl dgst -sha256 -hmac "$S2"            # fbb5e2…365a
    //! printf '%s' "evt-1.1700000000.$B" | openssl dgst -sha256 -binary -hmac "$S1" | base64
    //! printf '%s' "evt-1.1700000000.$B" | openssl dgst -sha256 -binary -hmac "$S2" | base64
    //! K=$(printf '%s' 'MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' | base64 -d | xxd -p | tr -d '\n')
    //! printf '%s' 'msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{"test": 2432232314}' \
    //!   | openssl dgst -sha256 -binary -mac HMAC -macopt hexkey:$K | base64
    //! ```
    //! The last is also the example of the Standard Webhooks specification.

    use super::*;

    const S1: &str = "certhook-test-secret-0123456789abcdef";
    const S2: &str = "previous-secret-for-rotation-0123456789";
    const BODY: &[u8] = br#"{"hello":"world"}"#;
    const HEX1: &str = "7fa7371ff3e71c6ca02063b681df2ef2c0420206e29c7eab656a79618a8543d1";
    const HEX2: &str = "fbb5e2d354e524ed35ee497ff8fc3f1e04ec94921b32c842923bccfc69fd365a";
    const B64_1: &str = "jJXfA/LkQ0bs68DTF+elOECX12trhmiJcTIqqeNhiyg=";
    const B64_2: &str = "yqE5GmMrFKzU3lfnJSFlAepRZMijQwmkT7WhJkWI0O4=";

    fn key(s: &str) -> SigningKey {
        SigningKey::new(&Secret::new(s)).unwrap()
    }

    #[test]
    fn infisical_and_standard_signatures_match_openssl() {
        let h = sign(&[key(S1)], "evt-1", 1_700_000_000_000, BODY);
        assert_eq!(h.infisical.as_deref(), Some(format!("t=1700000000000,v1={HEX1}").as_str()));
        assert_eq!(h.standard.as_deref(), Some(format!("v1,{B64_1}").as_str()));
        assert_eq!(h.webhook_id, "evt-1");
        assert_eq!(h.webhook_timestamp, "1700000000");
    }

    #[test]
    fn rotation_signs_with_both_secrets_newest_first() {
        let h = sign(&[key(S1), key(S2)], "evt-1", 1_700_000_000_000, BODY);
        assert_eq!(h.infisical.unwrap(), format!("t=1700000000000,v1={HEX1},v1={HEX2}"));
        assert_eq!(h.standard.unwrap(), format!("v1,{B64_1} v1,{B64_2}"));
    }

    #[test]
    fn whsec_secrets_are_base64_decoded_for_standard_webhooks() {
        let h = sign(
            &[key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330_000,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(h.standard.unwrap(), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn no_secret_means_no_signature_headers_but_id_and_timestamp() {
        let h = sign(&[], "evt-1", 1_700_000_000_999, BODY);
        assert_eq!((h.infisical, h.standard), (None, None));
        assert_eq!(h.webhook_timestamp, "1700000000");
    }

    #[test]
    fn what_is_signed_verifies_with_the_receiver_crate() {
        let h = sign(&[key(S1), key(S2)], "evt-1", 1_700_000_000_000, BODY);
        let tol = std::time::Duration::from_secs(300);
        let now = 1_700_000_001_000;
        for secret in [S1, S2] {
            assert_eq!(
                certhook_verify::verify_infisical(h.infisical.as_deref().unwrap(), BODY, &[secret], now, tol),
                Ok(())
            );
            let std = h.standard.as_deref().unwrap();
            assert_eq!(
                certhook_verify::verify_standard_webhooks("evt-1", "1700000000", std, BODY, &[secret], now / 1000, tol),
                Ok(())
            );
        }
        let whsec = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let h = sign(&[key(whsec)], "msg", 1_700_000_000_000, BODY);
        assert_eq!(
            certhook_verify::verify_standard_webhooks(
                "msg",
                "1700000000",
                &h.standard.unwrap(),
                BODY,
                &[whsec],
                1_700_000_000,
                tol
            ),
            Ok(())
        );
    }

    #[test]
    fn secrets_are_validated() {
        assert_eq!(validate_secret("short"), Err(SecretError::TooShort(5)));
        assert!(validate_secret(S1).is_ok());
        assert_eq!(validate_secret("whsec_!!!!not-base64-at-all-but-long-enough"), Err(SecretError::BadWhsec));
        assert_eq!(validate_secret("enc:v1:0123abcd:looks-sealed-but-is-not-000000"), Err(SecretError::SealedPrefix));
        assert!(!format!("{:?}", key(S1)).contains("certhook-test"));
    }
}
