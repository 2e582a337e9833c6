//! The channel lifecycle (SPEC §4): which operator actions apply in which state, and the
//! verification token that proves an endpoint is ready.
//!
//! `pending_verification` → `active` ⇄ `paused`; `active` → `disabled` (410, or failing for
//! `disable_after`); `disabled` → `active` on `enable`.

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

use crate::event::ChannelState;

/// How long a verification token is valid.
pub const VERIFICATION_TTL: Duration = Duration::minutes(30);

/// An operator action on a channel's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelAction {
    /// Hold deliveries.
    Pause,
    /// Send held deliveries and new ones again.
    Resume,
    /// Re-enable a disabled channel.
    Enable,
    /// Accept a verified endpoint.
    Activate,
}

impl ChannelAction {
    fn verb(&self) -> &'static str {
        match self {
            ChannelAction::Pause => "paused",
            ChannelAction::Resume => "resumed",
            ChannelAction::Enable => "enabled",
            ChannelAction::Activate => "activated",
        }
    }
}

/// The state `action` leads to from `from`, or why it does not apply.
pub fn transition(from: ChannelState, action: ChannelAction) -> Result<ChannelState, String> {
    use ChannelAction::*;
    use ChannelState::*;
    match (from, action) {
        (Active, Pause) => Ok(Paused),
        (Paused, Resume) => Ok(Active),
        (Disabled, Enable) => Ok(Active),
        (PendingVerification, Activate) => Ok(Active),
        (state, action) => {
            let needs = match action {
                Pause => "an active",
                Resume => "a paused",
                Enable => "a disabled",
                Activate => "a pending_verification",
            };
            let hint = match (state, action) {
                (PendingVerification, _) => " (activate it with its verification token first)",
                (Disabled, _) => " (enable it first)",
                _ => "",
            };
            Err(format!("channel is {state}; only {needs} channel can be {}{hint}", action.verb()))
        }
    }
}

/// A fresh verification token: 32 random bytes, hex.
pub fn new_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// What is stored of a token: its SHA-256, so the database never holds a usable token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.trim().as_bytes()))
}

/// What stands in a delivered verification event's stored body for the token.
pub const TOKEN_REMOVED: &str = "(removed once delivered)";

/// A verification event's body with its token taken out, to be stored once the event has
/// been delivered: from then on the body is kept for the attempt log, not for sending.
/// `None` if the body holds no token.
pub fn without_token(body: &[u8]) -> Option<Vec<u8>> {
    let mut event: serde_json::Value = serde_json::from_slice(body).ok()?;
    let token = event.get_mut("data")?.get_mut("verificationToken")?;
    if token.as_str() == Some(TOKEN_REMOVED) {
        return None;
    }
    *token = TOKEN_REMOVED.into();
    serde_json::to_vec(&event).ok()
}

/// Why an activation token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// No token was ever issued (or the channel was created `--no-verify`).
    #[error("no verification token is outstanding for this channel; run `certhook channel reverify` to send one")]
    None,
    /// The token does not match the one sent.
    #[error("wrong verification token: it does not match the one sent to the endpoint")]
    Wrong,
    /// The token matched but is older than 30 minutes.
    #[error("verification token expired at {0}; run `certhook channel reverify` to send a new one")]
    Expired(String),
}

/// Checks a token against the stored hash and expiry, at instant `now`.
pub fn check_token(
    given: &str,
    stored_hash: Option<&str>,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(), TokenError> {
    let (Some(stored), Some(expires)) = (stored_hash, expires_at) else {
        return Err(TokenError::None);
    };
    let given = token_hash(given);
    let equal = bool::from(subtle::ConstantTimeEq::ct_eq(given.as_bytes(), stored.as_bytes()));
    if !equal {
        return Err(TokenError::Wrong);
    }
    if now >= expires {
        return Err(TokenError::Expired(crate::time::format_millis(expires)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_taken_out_of_a_delivered_verification_body() {
        let body = br#"{"id":"e","data":{"verificationToken":"tok123","channelId":"c"}}"#;
        let scrubbed = without_token(body).unwrap();
        let text = String::from_utf8(scrubbed.clone()).unwrap();
        assert!(
            !text.contains("tok123") && text.contains(TOKEN_REMOVED) && text.contains(r#""channelId":"c""#),
            "{text}"
        );
        assert_eq!(without_token(&scrubbed), None, "already taken out");
        assert_eq!(without_token(br#"{"data":{"x":1}}"#), None);
        assert_eq!(without_token(b"not json"), None);
    }

    #[test]
    fn transitions_follow_the_lifecycle() {
        use ChannelAction::*;
        use ChannelState::*;
        assert_eq!(transition(Active, Pause), Ok(Paused));
        assert_eq!(transition(Paused, Resume), Ok(Active));
        assert_eq!(transition(Disabled, Enable), Ok(Active));
        assert_eq!(transition(PendingVerification, Activate), Ok(Active));
        for (from, action) in
            [(Paused, Pause), (Active, Resume), (Active, Enable), (Active, Activate), (Disabled, Resume)]
        {
            assert!(transition(from, action).is_err(), "{from} {action:?}");
        }
        assert_eq!(
            transition(PendingVerification, Pause).unwrap_err(),
            "channel is pending_verification; only an active channel can be paused (activate it with its verification token first)"
        );
        assert!(transition(Active, Resume).unwrap_err().contains("; only a paused channel can be"));
    }

    #[test]
    fn tokens_are_checked_against_hash_and_expiry() {
        let token = new_token();
        assert_eq!(token.len(), 64);
        let hash = token_hash(&token);
        let now = Utc::now();
        let later = now + VERIFICATION_TTL;
        assert_eq!(check_token(&token, Some(&hash), Some(later), now), Ok(()));
        assert_eq!(
            check_token(&format!(" {token}\n"), Some(&hash), Some(later), now),
            Ok(()),
            "pasted whitespace is fine"
        );
        assert_eq!(check_token("nope", Some(&hash), Some(later), now), Err(TokenError::Wrong));
        assert!(matches!(check_token(&token, Some(&hash), Some(now), now), Err(TokenError::Expired(_))));
        assert_eq!(check_token(&token, None, None, now), Err(TokenError::None));
        assert_ne!(new_token(), token);
    }
}
