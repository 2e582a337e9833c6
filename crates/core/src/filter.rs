//! Which certificates an alert is about: profile names and DNS name patterns (SPEC §1).
//!
//! A certificate passes when every filter the alert sets passes: its profile is one of
//! `profiles`, and any of its names (commonName and SANs) matches any of `name_patterns`.
//! An alert with no filters takes every certificate.

use std::fmt;
use std::str::FromStr;

use crate::event::Certificate;

/// Longest DNS name (RFC 1035), and so the longest pattern.
const MAX_NAME_LEN: usize = 253;

/// Longest profile name accepted as a filter.
const MAX_PROFILE_LEN: usize = 255;

/// Filters an alert may have at most of each kind: enough for any real subscription,
/// few enough that matching stays trivial.
pub const MAX_FILTERS: usize = 100;

/// A DNS name pattern: a name, or a name whose leftmost label is `*` (one label, any
/// value). Stored lowercase, without a trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct NamePattern(String);

/// Why a pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{pattern}' is not a DNS name pattern: {reason}")]
pub struct BadPattern {
    /// What was given (control characters escaped).
    pub pattern: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl FromStr for NamePattern {
    type Err = BadPattern;

    fn from_str(s: &str) -> Result<Self, BadPattern> {
        let bad = |reason| BadPattern { pattern: s.escape_debug().to_string(), reason };
        let name = s.strip_suffix('.').unwrap_or(s).to_ascii_lowercase();
        if name.is_empty() {
            return Err(bad("it is empty"));
        }
        if name.len() > MAX_NAME_LEN {
            return Err(bad("longer than 253 characters"));
        }
        for (i, label) in name.split('.').enumerate() {
            if label == "*" {
                if i > 0 {
                    return Err(bad("'*' may only be the leftmost label, as in *.example.com"));
                }
                continue;
            }
            if label.is_empty() {
                return Err(bad("it has an empty label"));
            }
            if label.contains('*') {
                return Err(bad("'*' must be a whole label, as in *.example.com"));
            }
            if label.len() > 63 {
                return Err(bad("a label is longer than 63 characters"));
            }
            if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                return Err(bad("labels are letters, digits, '-' and '_'"));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(bad("a label starts or ends with '-'"));
            }
        }
        if name == "*" {
            return Err(bad("'*' alone matches every name; leave the filter out instead"));
        }
        Ok(NamePattern(name))
    }
}

impl NamePattern {
    /// Whether `name` (a commonName or SAN) matches: case-insensitive, a trailing dot
    /// ignored, `*` standing for exactly one leftmost label.
    pub fn matches(&self, name: &str) -> bool {
        let name = name.strip_suffix('.').unwrap_or(name);
        match self.0.strip_prefix("*.") {
            Some(parent) => {
                name.split_once('.').is_some_and(|(first, rest)| !first.is_empty() && rest.eq_ignore_ascii_case(parent))
            }
            None => name.eq_ignore_ascii_case(&self.0),
        }
    }

    /// The pattern as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NamePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An alert's certificate filters; empty lists filter nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CertificateFilter {
    /// Profile names, one of which the certificate's must be.
    pub profiles: Vec<String>,
    /// DNS patterns (`*.prod.example.com`), one of which one of the certificate's names
    /// (commonName or SAN) must match.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub name_patterns: Vec<NamePattern>,
}

impl CertificateFilter {
    /// Checks operator input: each profile a non-empty name, each pattern well-formed;
    /// duplicates dropped, first mention kept. Errors name the field.
    pub fn parse(profiles: &[String], name_patterns: &[String]) -> Result<Self, crate::validate::ValidationError> {
        let invalid = |field: &str, reason: String| crate::validate::ValidationError::InvalidField {
            field: field.to_string(),
            reason,
        };
        if profiles.len() > MAX_FILTERS {
            return Err(invalid("profiles", format!("at most {MAX_FILTERS} profiles")));
        }
        if name_patterns.len() > MAX_FILTERS {
            return Err(invalid("namePatterns", format!("at most {MAX_FILTERS} patterns")));
        }
        let mut filter = CertificateFilter::default();
        for p in profiles {
            // Spaces around a name are a typing slip: kept, the filter would never match.
            let p = p.trim();
            if p.is_empty() || p.len() > MAX_PROFILE_LEN || p.chars().any(char::is_control) {
                return Err(invalid(
                    "profiles",
                    format!(
                        "'{}' is not a profile name (1 to {MAX_PROFILE_LEN} printable characters)",
                        p.escape_debug()
                    ),
                ));
            }
            if !filter.profiles.iter().any(|known| known == p) {
                filter.profiles.push(p.to_string());
            }
        }
        for p in name_patterns {
            let pattern: NamePattern = p.parse().map_err(|e: BadPattern| invalid("namePatterns", e.to_string()))?;
            if !filter.name_patterns.contains(&pattern) {
                filter.name_patterns.push(pattern);
            }
        }
        Ok(filter)
    }

    /// Whether no filter is set.
    pub fn is_empty(&self) -> bool {
        self.profiles.is_empty() && self.name_patterns.is_empty()
    }

    /// Whether `certificate` passes every filter that is set.
    pub fn passes(&self, certificate: &Certificate) -> bool {
        let profile_ok = self.profiles.is_empty()
            || certificate.profile_name.as_ref().is_some_and(|p| self.profiles.iter().any(|want| want == p));
        let name_ok = self.name_patterns.is_empty()
            || std::iter::once(&certificate.common_name)
                .chain(&certificate.san)
                .any(|name| self.name_patterns.iter().any(|p| p.matches(name)));
        profile_ok && name_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn cert(cn: &str, san: &[&str], profile: Option<&str>) -> Certificate {
        Certificate {
            id: "1".into(),
            serial_number: "1".into(),
            common_name: cn.into(),
            san: san.iter().map(|s| s.to_string()).collect(),
            profile_name: profile.map(str::to_string),
            not_before: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            not_after: Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap(),
            revoked_at: None,
            revocation_reason: None,
        }
    }

    fn pattern(s: &str) -> NamePattern {
        s.parse().unwrap()
    }

    #[test]
    fn a_wildcard_stands_for_exactly_one_leftmost_label() {
        let p = pattern("*.Prod.Example.com");
        assert!(p.matches("api.prod.example.com"));
        assert!(p.matches("API.PROD.EXAMPLE.COM."));
        assert!(!p.matches("prod.example.com"), "the wildcard needs a label");
        assert!(!p.matches("a.b.prod.example.com"), "one label only");
        assert!(!p.matches(".prod.example.com"));
        assert!(!p.matches("api.prod.example.com.evil.test"));
        assert!(!p.matches("apiprod.example.com"));
        let exact = pattern("api.example.com.");
        assert!(exact.matches("API.example.com"));
        assert!(!exact.matches("www.api.example.com"));
        assert_eq!(exact.as_str(), "api.example.com");
    }

    #[test]
    fn bad_patterns_are_refused_with_the_reason() {
        for (bad, why) in [
            ("", "empty"),
            ("*", "every name"),
            ("a.*.example.com", "leftmost"),
            ("*.*.example.com", "leftmost"),
            ("api*.example.com", "whole label"),
            ("a..example.com", "empty label"),
            ("-a.example.com", "'-'"),
            ("a b.example.com", "letters"),
            ("a/b", "letters"),
            ("a\u{0}.com", "letters"),
        ] {
            let e = bad.parse::<NamePattern>().unwrap_err();
            assert!(e.to_string().contains(why), "{bad:?}: {e}");
            assert!(!e.to_string().contains('\u{0}'), "control characters are escaped: {e:?}");
        }
        assert!(format!("{}.com", "a".repeat(64)).parse::<NamePattern>().is_err());
        assert!(vec!["a"; 128].join(".").parse::<NamePattern>().is_err(), "over 253 characters");
        assert!("_acme-challenge.example.com".parse::<NamePattern>().is_ok());
    }

    #[test]
    fn a_certificate_passes_when_every_set_filter_passes() {
        let filter = CertificateFilter::parse(&["web-server".into()], &["*.prod.example.com".into()]).unwrap();
        assert!(filter.passes(&cert("api.prod.example.com", &[], Some("web-server"))));
        assert!(filter.passes(&cert("Service", &["x.test", "db.prod.example.com"], Some("web-server"))), "any SAN");
        assert!(!filter.passes(&cert("api.prod.example.com", &[], Some("client"))), "wrong profile");
        assert!(!filter.passes(&cert("api.prod.example.com", &[], None)), "no profile");
        assert!(!filter.passes(&cert("api.staging.example.com", &["x.test"], Some("web-server"))), "no name");
        let names_only = CertificateFilter::parse(&[], &["api.example.com".into()]).unwrap();
        assert!(names_only.passes(&cert("api.example.com", &[], None)));
        let none = CertificateFilter::default();
        assert!(none.is_empty() && none.passes(&cert("anything", &[], None)));
    }

    #[test]
    fn filter_input_is_checked_and_deduplicated() {
        let f = CertificateFilter::parse(&["a".into(), " a ".into()], &["X.test".into(), "x.test".into()]).unwrap();
        assert_eq!(f.profiles, vec!["a"]);
        assert_eq!(f.name_patterns, vec![pattern("x.test")]);
        assert_eq!(CertificateFilter::parse(&[" ".into()], &[]).unwrap_err().field().unwrap(), "profiles");
        assert_eq!(CertificateFilter::parse(&[], &["a.*".into()]).unwrap_err().field().unwrap(), "namePatterns");
        let many: Vec<String> = (0..=MAX_FILTERS).map(|i| format!("p{i}")).collect();
        assert_eq!(CertificateFilter::parse(&many, &[]).unwrap_err().field().unwrap(), "profiles");
    }
}
