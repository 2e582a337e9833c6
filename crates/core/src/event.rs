//! Domain types: alert types, certificates, events, and the states of channels and deliveries.

use std::{fmt, str::FromStr};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Declares a string-backed enum with its wire names, `as_str`, `FromStr`, `Display` and serde.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire and database name of this value.
            pub fn as_str(&self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownValue {
                        value: s.to_string(),
                        expected: &[$($text),+],
                    }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($text),+]))
                    .into()
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}
    };
}

/// A string that is not one of an enum's wire names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown value '{value}' (expected one of: {})", expected.join(", "))]
pub struct UnknownValue {
    /// What was given.
    pub value: String,
    /// What would have been accepted.
    pub expected: &'static [&'static str],
}

string_enum! {
    /// What an alert subscribes to, and so what kind of event it is sent.
    AlertType {
        /// Found by certhook's scan of the inventory.
        Expiration => "expiration",
        /// A certificate was issued.
        Issuance => "issuance",
        /// A certificate was renewed.
        Renewal => "renewal",
        /// A certificate was revoked.
        Revocation => "revocation",
    }
}

impl AlertType {
    /// The CloudEvent `subject` of this type's events.
    pub fn subject(&self) -> &'static str {
        match self {
            AlertType::Expiration => "certificate-expiration-alert",
            AlertType::Issuance => "certificate-issuance-alert",
            AlertType::Renewal => "certificate-renewal-alert",
            AlertType::Revocation => "certificate-revocation-alert",
        }
    }
}

string_enum! {
    /// RFC 5280 CRL reason codes, named in camelCase as on the wire.
    RevocationReason {
        /// 0
        Unspecified => "unspecified",
        /// 1
        KeyCompromise => "keyCompromise",
        /// 2
        CaCompromise => "cACompromise",
        /// 3
        AffiliationChanged => "affiliationChanged",
        /// 4
        Superseded => "superseded",
        /// 5
        CessationOfOperation => "cessationOfOperation",
        /// 6
        CertificateHold => "certificateHold",
        /// 8
        RemoveFromCrl => "removeFromCRL",
        /// 9
        PrivilegeWithdrawn => "privilegeWithdrawn",
        /// 10
        AaCompromise => "aACompromise",
    }
}

string_enum! {
    /// A certificate's status, always derived (SPEC §1), never taken from input.
    CertificateStatus {
        /// Neither revoked nor past `notAfter`.
        Active => "active",
        /// `notAfter` is at or before the instant asked about.
        Expired => "expired",
        /// Revoked by the PKI.
        Revoked => "revoked",
    }
}

string_enum! {
    /// Where a channel sends.
    ChannelKind {
        /// Any HTTPS endpoint receiving signed CloudEvents.
        Webhook => "webhook",
        /// A Slack incoming-webhook URL.
        Slack => "slack",
        /// PagerDuty Events API v2.
        Pagerduty => "pagerduty",
    }
}

string_enum! {
    /// A channel's lifecycle state (SPEC §4).
    ChannelState {
        /// Created or re-pointed; waits for the operator to activate it with the token.
        PendingVerification => "pending_verification",
        /// Receives deliveries.
        Active => "active",
        /// Holds deliveries until resumed.
        Paused => "paused",
        /// Gone (410) or failing for `disable_after`; new deliveries are dead-lettered.
        Disabled => "disabled",
    }
}

string_enum! {
    /// A delivery's state. Rows move between states only through the store's named transitions.
    DeliveryState {
        /// Due (now or at `next_attempt_at`) and not leased; the worker moves it to `leased`.
        Pending => "pending",
        /// Claimed by a worker under a lease; the worker records the outcome.
        Leased => "leased",
        /// Failed at least once, waiting for `next_attempt_at`.
        Retrying => "retrying",
        /// Its channel is paused or unverified; activation or resume moves it to `pending`.
        Held => "held",
        /// A 2xx was received. Final, pruned after `retention`.
        Delivered => "delivered",
        /// Dead-lettered; only replay or purge moves it.
        Dead => "dead",
    }
}

string_enum! {
    /// What became of a delivery in one step: the `outcome` label of
    /// `certhook_deliveries_total`.
    DeliveryOutcome {
        /// A 2xx arrived.
        Delivered => "delivered",
        /// Failed; scheduled again.
        Retried => "retried",
        /// Failed for good.
        DeadLettered => "dead_lettered",
    }
}

string_enum! {
    /// Why a delivery was dead-lettered (its `reason`; SQL statements that dead-letter in
    /// bulk write the same words).
    DeadReason {
        /// Every attempt `max_attempts` allows failed.
        MaxAttempts => "max_attempts",
        /// The endpoint answered 410 Gone; its channel is disabled.
        EndpointGone => "endpoint_gone",
        /// The destination is an address the SSRF guard refuses.
        DestinationBlocked => "destination_blocked",
        /// Its channel was disabled.
        ChannelDisabled => "channel_disabled",
        /// Its channel (or the channel's alert) was deleted.
        ChannelDeleted => "channel_deleted",
        /// Its channel cannot be sent to as configured (no URL or routing key).
        ChannelMisconfigured => "channel_misconfigured",
        /// The stored row could not be read.
        CorruptRow => "corrupt_row",
    }
}

/// What a delivery carries: its `type` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryType {
    /// An event for an alert of this type.
    Alert(AlertType),
    /// A renewal sent to an expiration alert's PagerDuty channels, resolving its incident.
    Resolve,
    /// A webhook channel's verification event.
    Verification,
    /// `certhook channel test`'s event (sent at once, never stored).
    Test,
    /// A type this version does not know (written by a newer one): sent as an alert's
    /// event would be, never dead-lettered for its type.
    Other,
}

impl DeliveryType {
    /// The stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            DeliveryType::Alert(t) => t.as_str(),
            DeliveryType::Resolve => "resolve",
            DeliveryType::Verification => "webhook.verification",
            DeliveryType::Test => "webhook.test",
            DeliveryType::Other => "other",
        }
    }

    /// A stored `type`, whatever version wrote it (an unknown one is [`DeliveryType::Other`]).
    pub fn read(stored: &str) -> DeliveryType {
        stored.parse().unwrap_or(DeliveryType::Other)
    }
}

impl FromStr for DeliveryType {
    type Err = UnknownValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "resolve" => Ok(DeliveryType::Resolve),
            "webhook.verification" => Ok(DeliveryType::Verification),
            other => other.parse().map(DeliveryType::Alert).map_err(|_| UnknownValue {
                value: s.to_string(),
                expected: &["expiration", "issuance", "renewal", "revocation", "resolve", "webhook.verification"],
            }),
        }
    }
}

impl fmt::Display for DeliveryType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A certificate as the PKI describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Certificate {
    /// The PKI's id for the certificate (defaults to the serial number).
    pub id: String,
    /// Serial number as the PKI writes it.
    pub serial_number: String,
    /// Subject common name.
    pub common_name: String,
    /// Subject alternative names.
    pub san: Vec<String>,
    /// Certificate profile or template, when known.
    pub profile_name: Option<String>,
    /// Start of validity.
    pub not_before: DateTime<Utc>,
    /// End of validity.
    pub not_after: DateTime<Utc>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Why it was revoked, if it was.
    pub revocation_reason: Option<RevocationReason>,
}

impl Certificate {
    /// The status at instant `at`: revoked if revoked, else expired if `notAfter` ≤ `at`.
    pub fn status_at(&self, at: DateTime<Utc>) -> CertificateStatus {
        if self.revoked_at.is_some() {
            CertificateStatus::Revoked
        } else if self.not_after <= at {
            CertificateStatus::Expired
        } else {
            CertificateStatus::Active
        }
    }

    /// Whole days from `at` to `notAfter`, rounded down, never negative.
    pub fn days_until_expiry(&self, at: DateTime<Utc>) -> i64 {
        (self.not_after - at).num_days().max(0)
    }
}

/// A validated event, ready to be stored in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// What happened.
    pub event_type: AlertType,
    /// The application the certificate belongs to.
    pub application_id: Uuid,
    /// A producer-chosen key that makes a repeated enqueue return the first event.
    pub idempotency_key: Option<String>,
    /// The certificate concerned.
    pub certificate: Certificate,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_rfc3339;

    fn cert(not_after: &str) -> Certificate {
        Certificate {
            id: "c".into(),
            serial_number: "1".into(),
            common_name: "a.example".into(),
            san: vec![],
            profile_name: None,
            not_before: parse_rfc3339("2024-01-01T00:00:00Z").unwrap(),
            not_after: parse_rfc3339(not_after).unwrap(),
            revoked_at: None,
            revocation_reason: None,
        }
    }

    #[test]
    fn status_is_derived_from_revocation_then_time() {
        let at = parse_rfc3339("2024-02-01T00:00:00Z").unwrap();
        assert_eq!(cert("2024-02-01T00:00:00.001Z").status_at(at), CertificateStatus::Active);
        assert_eq!(cert("2024-02-01T00:00:00Z").status_at(at), CertificateStatus::Expired);
        let mut revoked = cert("2030-01-01T00:00:00Z");
        revoked.revoked_at = Some(at);
        assert_eq!(revoked.status_at(at), CertificateStatus::Revoked);
    }

    #[test]
    fn days_until_expiry_rounds_down_and_never_goes_negative() {
        let at = parse_rfc3339("2024-01-15T10:30:00Z").unwrap();
        assert_eq!(cert("2024-02-14T10:30:00Z").days_until_expiry(at), 30);
        assert_eq!(cert("2024-02-14T10:29:59.999Z").days_until_expiry(at), 29);
        assert_eq!(cert("2024-01-01T00:00:00Z").days_until_expiry(at), 0);
    }

    #[test]
    fn enums_round_trip_their_wire_names() {
        for t in AlertType::ALL {
            assert_eq!(t.as_str().parse::<AlertType>().unwrap(), *t);
        }
        for r in RevocationReason::ALL {
            assert_eq!(r.as_str().parse::<RevocationReason>().unwrap(), *r);
        }
        assert_eq!(RevocationReason::RemoveFromCrl.as_str(), "removeFromCRL");
        let e = "issued".parse::<AlertType>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown value 'issued' (expected one of: expiration, issuance, renewal, revocation)"
        );
    }
}
