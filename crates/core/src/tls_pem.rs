//! The PEM a channel trusts or presents over TLS: CA certificates added to the system
//! roots, and a client certificate with its private key (mutual TLS). Checked when an
//! operator gives them, summarized (subject, notAfter) when a channel is shown; the key
//! is never summarized or echoed, only said to be there.

use chrono::{DateTime, Utc};
use serde::Serialize;
use x509_parser::pem::Pem;

/// What a certificate is shown as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CertificateSummary {
    /// The subject's distinguished name, as RFC 4514 writes it.
    pub subject: String,
    /// When it stops being valid.
    #[serde(with = "crate::time::serde_millis")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub not_after: DateTime<Utc>,
}

/// Why PEM input was refused. Never quotes the input: it may be a private key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsPemError {
    /// Not PEM at all, or a block that does not decode.
    #[error("not valid PEM: {0}")]
    NotPem(String),
    /// No block of the kind expected.
    #[error("no {0} found (expected a -----BEGIN {0}----- block)")]
    Missing(&'static str),
    /// A block of another kind than expected.
    #[error("holds a {0} block; only {1} blocks are accepted here")]
    Unexpected(String, &'static str),
    /// A `CERTIFICATE` block that is not an X.509 certificate.
    #[error("a certificate does not parse: {0}")]
    BadCertificate(String),
    /// More than one private key.
    #[error("holds more than one private key")]
    SeveralKeys,
    /// A key protected by a passphrase, which certhook could not open unattended.
    #[error("the private key is encrypted; give it unencrypted (openssl pkey -in key.pem -out plain.pem)")]
    Encrypted,
}

const CERTIFICATE: &str = "CERTIFICATE";
const KEY_LABELS: [&str; 3] = ["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"];

fn blocks(pem: &str) -> Result<Vec<Pem>, TlsPemError> {
    let blocks = Pem::iter_from_buffer(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsPemError::NotPem(e.to_string()))?;
    Ok(blocks)
}

/// The certificates of a PEM bundle, in order; every block must be a certificate and there
/// must be at least one.
pub fn certificates(pem: &str) -> Result<Vec<CertificateSummary>, TlsPemError> {
    let mut out = Vec::new();
    for block in blocks(pem)? {
        if block.label != CERTIFICATE {
            return Err(TlsPemError::Unexpected(block.label, CERTIFICATE));
        }
        let x509 = block.parse_x509().map_err(|e| TlsPemError::BadCertificate(e.to_string()))?;
        let not_after = DateTime::from_timestamp(x509.validity().not_after.timestamp(), 0)
            .ok_or_else(|| TlsPemError::BadCertificate("notAfter out of range".into()))?;
        out.push(CertificateSummary { subject: x509.subject().to_string(), not_after });
    }
    if out.is_empty() {
        return Err(TlsPemError::Missing(CERTIFICATE));
    }
    Ok(out)
}

/// Checks that `pem` holds exactly one unencrypted private key (PKCS#8, PKCS#1 or SEC1)
/// and nothing else. Whether it matches the certificate is for the TLS stack to say.
pub fn check_private_key(pem: &str) -> Result<(), TlsPemError> {
    let mut keys = 0;
    for block in blocks(pem)? {
        match block.label.as_str() {
            l if KEY_LABELS.contains(&l) => keys += 1,
            "ENCRYPTED PRIVATE KEY" => return Err(TlsPemError::Encrypted),
            _ => return Err(TlsPemError::Unexpected(block.label, "PRIVATE KEY")),
        }
    }
    match keys {
        0 => Err(TlsPemError::Missing("PRIVATE KEY")),
        1 => Ok(()),
        _ => Err(TlsPemError::SeveralKeys),
    }
}

/// A summary of PEM that was checked when it was stored; `None` if it no longer parses
/// (a row written by hand), which a display shows rather than fails on.
pub fn summarize(pem: &str) -> Option<Vec<CertificateSummary>> {
    certificates(pem).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed CA certificate for `CN=test-ca`, valid until 2124-12-08.
    fn ca() -> String {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, "test-ca");
        params.not_after = rcgen::date_time_ymd(2124, 12, 8);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.self_signed(&rcgen::KeyPair::generate().unwrap()).unwrap().pem()
    }

    #[test]
    fn a_certificate_bundle_is_summarized_by_subject_and_not_after() {
        let cert = ca();
        let both = format!("{cert}{cert}");
        let got = certificates(&both).expect("two certificates");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].subject, "CN=test-ca");
        assert_eq!(got[0].not_after.to_rfc3339(), "2124-12-08T00:00:00+00:00");
        assert_eq!(summarize(&cert).unwrap().len(), 1);
        assert_eq!(summarize("junk"), None);
    }

    #[test]
    fn bundles_without_certificates_or_with_other_blocks_are_refused() {
        assert_eq!(certificates(""), Err(TlsPemError::Missing("CERTIFICATE")));
        assert_eq!(certificates("hello"), Err(TlsPemError::Missing("CERTIFICATE")));
        let key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(matches!(certificates(&format!("{}{key}", ca())), Err(TlsPemError::Unexpected(..))));
        let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(matches!(certificates(garbage), Err(TlsPemError::BadCertificate(_))));
    }

    #[test]
    fn exactly_one_unencrypted_private_key_is_accepted() {
        let key = |label: &str| format!("-----BEGIN {label}-----\nAAAA\n-----END {label}-----\n");
        for label in KEY_LABELS {
            assert_eq!(check_private_key(&key(label)), Ok(()), "{label}");
        }
        assert_eq!(check_private_key(&key("ENCRYPTED PRIVATE KEY")), Err(TlsPemError::Encrypted));
        assert_eq!(
            check_private_key(&format!("{}{}", key("PRIVATE KEY"), key("PRIVATE KEY"))),
            Err(TlsPemError::SeveralKeys)
        );
        assert!(matches!(check_private_key(&ca()), Err(TlsPemError::Unexpected(..))));
        assert_eq!(check_private_key(""), Err(TlsPemError::Missing("PRIVATE KEY")));
        let err = check_private_key(&key("CERTIFICATE")).unwrap_err().to_string();
        assert!(!err.contains("AAAA"), "the input is never quoted: {err}");
    }
}
