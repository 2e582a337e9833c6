//! certhook-verify: check that a request really comes from certhook, in a Rust receiver.
//!
//! certhook signs every webhook delivery two ways (when the channel has a secret):
//!
//! - `x-infisical-signature: t=<unix ms>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, with
//!   one `v1=` per active secret during a rotation — [`verify_infisical`];
//! - the Standard Webhooks headers `webhook-id`, `webhook-timestamp`, `webhook-signature`
//!   — [`verify_standard_webhooks`].
//!
//! Both accept a match with any of the given secrets and any of the signatures (so a
//! receiver keeps working through a rotation), compare in constant time, and refuse a
//! timestamp further than `tolerance` from now (replays).
//!
//! ```
//! # use certhook_verify::verify_infisical;
//! # let (header, body, now_ms) = ("t=1,v1=00", b"{}", 1i64);
//! let ok = verify_infisical(header, body, &["my-channel-secret"], now_ms, std::time::Duration::from_secs(300));
//! # let _ = ok;
//! ```
#![deny(missing_docs)]

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Why a request did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The header is missing a part or is not of the expected shape.
    #[error("malformed signature header: {0}")]
    Malformed(&'static str),
    /// The timestamp is further from now than the tolerance allows.
    #[error("timestamp outside the tolerance")]
    Stale,
    /// No signature matches any secret.
    #[error("no signature matches")]
    Mismatch,
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    bool::from(subtle::ConstantTimeEq::ct_eq(a, b))
}

/// Verifies `x-infisical-signature` (`t=<ms>,v1=<hex>[,v1=<hex>…]`) over the raw body.
pub fn verify_infisical(
    header: &str,
    body: &[u8],
    secrets: &[&str],
    now_unix_ms: i64,
    tolerance: Duration,
) -> Result<(), VerifyError> {
    let mut t = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = Some(v),
            Some(("v1", v)) => signatures.push(v),
            _ => {}
        }
    }
    let t = t.ok_or(VerifyError::Malformed("no t="))?;
    let t_ms: i64 = t.parse().map_err(|_| VerifyError::Malformed("t is not a number"))?;
    if signatures.is_empty() {
        return Err(VerifyError::Malformed("no v1="));
    }
    if !within(now_unix_ms, t_ms, tolerance.as_millis()) {
        return Err(VerifyError::Stale);
    }
    for secret in secrets {
        let expected = hex::encode(hmac(secret.as_bytes(), &[t.as_bytes(), b".", body]));
        if signatures.iter().any(|s| constant_time_eq(s.as_bytes(), expected.as_bytes())) {
            return Ok(());
        }
    }
    Err(VerifyError::Mismatch)
}

/// Whether `t` is at most `tolerance` from `now` (same unit). Computed in i128, so a
/// crafted timestamp such as `i64::MIN` is simply stale, never an overflow.
fn within(now: i64, t: i64, tolerance: u128) -> bool {
    (i128::from(now) - i128::from(t)).unsigned_abs() <= tolerance
}

/// The Standard Webhooks key of a secret: base64-decoded after `whsec_`, else its bytes.
pub fn standard_webhooks_key(secret: &str) -> Option<Vec<u8>> {
    match secret.strip_prefix("whsec_") {
        Some(b64) => BASE64.decode(b64).ok(),
        None => Some(secret.as_bytes().to_vec()),
    }
}

/// Verifies the Standard Webhooks headers over the raw body.
pub fn verify_standard_webhooks(
    webhook_id: &str,
    webhook_timestamp: &str,
    webhook_signature: &str,
    body: &[u8],
    secrets: &[&str],
    now_unix_secs: i64,
    tolerance: Duration,
) -> Result<(), VerifyError> {
    let ts: i64 = webhook_timestamp.parse().map_err(|_| VerifyError::Malformed("webhook-timestamp is not a number"))?;
    if !within(now_unix_secs, ts, u128::from(tolerance.as_secs())) {
        return Err(VerifyError::Stale);
    }
    let signatures: Vec<&str> = webhook_signature.split(' ').filter_map(|e| e.strip_prefix("v1,")).collect();
    if signatures.is_empty() {
        return Err(VerifyError::Malformed("no v1, entry"));
    }
    for secret in secrets {
        let Some(key) = standard_webhooks_key(secret) else { continue };
        let expected =
            BASE64.encode(hmac(&key, &[webhook_id.as_bytes(), b".", webhook_timestamp.as_bytes(), b".", body]));
        if signatures.iter().any(|s| constant_time_eq(s.as_bytes(), expected.as_bytes())) {
            return Ok(());
        }
    }
    Err(VerifyError::Mismatch)
}

#[cfg(test)]
mod tests {
    //! Vectors from openssl (see certhook-core's `sign` tests for the commands).
    use super::*;

    const S1: &str = "certhook-test-secret-0123456789abcdef";
    const S2: &str = "previous-secret-for-rotation-0123456789";
    const BODY: &[u8] = br#"{"hello":"world"}"#;
    const HEX1: &str = "7fa7371ff3e71c6ca02063b681df2ef2c0420206e29c7eab656a79618a8543d1";
    const HEX2: &str = "fbb5e2d354e524ed35ee497ff8fc3f1e04ec94921b32c842923bccfc69fd365a";
    const TOL: Duration = Duration::from_secs(300);

    /// Issue 14: a timestamp at the edge of i64 is stale, not a panic (`now - t` overflowed).
    #[test]
    fn extreme_timestamps_are_stale_not_a_panic() {
        let tol = Duration::from_secs(300);
        for t in [i64::MIN, i64::MAX, i64::MIN + 1] {
            let header = format!("t={t},v1=00");
            assert!(matches!(
                verify_infisical(&header, b"{}", &["s"], 1_700_000_000_000, tol),
                Err(VerifyError::Stale)
            ));
            let r = verify_standard_webhooks("id", &t.to_string(), "v1,AA==", b"{}", &["s"], 1_700_000_000, tol);
            assert!(matches!(r, Err(VerifyError::Stale)), "{t}");
            assert!(verify_infisical(&header, b"{}", &["s"], i64::MIN, tol).is_err(), "a clock at the edge too");
        }
    }

    #[test]
    fn infisical_accepts_any_matching_entry_and_refuses_the_rest() {
        let header = format!("t=1700000000000,v1={HEX1},v1={HEX2}");
        let now = 1_700_000_001_000;
        assert_eq!(verify_infisical(&header, BODY, &[S1], now, TOL), Ok(()));
        assert_eq!(verify_infisical(&header, BODY, &[S2], now, TOL), Ok(()));
        assert_eq!(
            verify_infisical(&header, BODY, &["other-secret-xxxxxxxxxxxxxxxxxxxxxx"], now, TOL),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(verify_infisical(&header, b"{\"hello\":\"World\"}", &[S1], now, TOL), Err(VerifyError::Mismatch));
        assert_eq!(verify_infisical(&header, BODY, &[S1], now + 600_000, TOL), Err(VerifyError::Stale));
        assert!(matches!(verify_infisical("v1=abc", BODY, &[S1], now, TOL), Err(VerifyError::Malformed(_))));
    }

    #[test]
    fn standard_webhooks_matches_the_specification_example() {
        let ok = verify_standard_webhooks(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "1614265330",
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            br#"{"test": 2432232314}"#,
            &["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
            1_614_265_331,
            TOL,
        );
        assert_eq!(ok, Ok(()));
        let sig = "v1,jJXfA/LkQ0bs68DTF+elOECX12trhmiJcTIqqeNhiyg= v1,yqE5GmMrFKzU3lfnJSFlAepRZMijQwmkT7WhJkWI0O4=";
        for s in [S1, S2] {
            assert_eq!(verify_standard_webhooks("evt-1", "1700000000", sig, BODY, &[s], 1_700_000_000, TOL), Ok(()));
        }
        assert_eq!(
            verify_standard_webhooks("evt-2", "1700000000", sig, BODY, &[S1], 1_700_000_000, TOL),
            Err(VerifyError::Mismatch)
        );
    }
}
