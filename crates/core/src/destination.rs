//! Channel destination URLs: checked when a channel is created or re-pointed, so a bad
//! host or port is refused at once rather than failing ten times, and redacted wherever
//! they are shown, because some URLs carry their own secret (a Slack webhook's path,
//! `user:password@`, a token in the query).

use url::Url;

use crate::validate::ValidationError;

/// What stands in for a secret part of a URL.
const REDACTED: &str = "***";

/// Checks a destination URL: `https://` (or `http://` when allowed), a host name or
/// address, a port that exists, nothing that is not part of a URL. Errors show the URL
/// redacted.
pub fn check_url(url: &str, allow_insecure_http: bool) -> Result<String, ValidationError> {
    let bad =
        |why: &str| ValidationError::InvalidField { field: "url".into(), reason: format!("{} {why}", quoted(url)) };
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("contains spaces or control characters"));
    }
    let parsed = Url::parse(url).map_err(|e| bad(&format!("is not a valid URL ({e})")))?;
    match parsed.scheme() {
        "https" => {}
        "http" if allow_insecure_http => {}
        "http" => return Err(bad("is not https:// (http:// is accepted only with allow_insecure_http = true)")),
        _ if allow_insecure_http => return Err(bad("must be an https:// or http:// URL")),
        _ => return Err(bad("must be an https:// URL")),
    }
    match parsed.host_str() {
        None | Some("") => return Err(bad("has no host")),
        Some(host) if host.ends_with('.') && host.len() == 1 => return Err(bad("has no host")),
        Some(_) => {}
    }
    if parsed.port() == Some(0) {
        return Err(bad("has port 0"));
    }
    Ok(url.to_string())
}

/// `url` as it may be shown: user name and password, the query, the fragment and a Slack
/// webhook's path replaced by `***`. `path_is_secret` (a Slack channel on any host)
/// hides the whole path too. Something that does not parse is not shown.
pub fn redact_url(url: &str, path_is_secret: bool) -> String {
    let Ok(mut parsed) = Url::parse(url) else {
        return "(not a valid URL)".into();
    };
    let mut changed = false;
    if !parsed.username().is_empty() {
        changed |= parsed.set_username(REDACTED).is_ok();
    }
    if parsed.password().is_some() {
        changed |= parsed.set_password(Some(REDACTED)).is_ok();
    }
    if let Some(query) = parsed.query().filter(|q| !q.is_empty()) {
        // Names stay (they say what the URL carries); values, and bare tokens, do not.
        let shown: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) => format!("{name}={REDACTED}"),
                None => REDACTED.to_string(),
            })
            .collect();
        parsed.set_query(Some(&shown.join("&")));
        changed = true;
    }
    if parsed.fragment().is_some_and(|f| !f.is_empty()) {
        parsed.set_fragment(Some(REDACTED));
        changed = true;
    }
    if (path_is_secret || is_slack_host(parsed.host_str().unwrap_or(""))) && parsed.path().len() > 1 {
        let first = parsed.path().split('/').nth(1).unwrap_or("").to_string();
        parsed.set_path(&format!("/{first}/{REDACTED}"));
        changed = true;
    }
    // Unchanged URLs are shown as given, not in the parser's normal form.
    if changed { parsed.to_string() } else { url.to_string() }
}

/// Slack's webhook hosts (`hooks.slack.com`, GovSlack's `hooks.slack-gov.com`), where the
/// path is the credential.
fn is_slack_host(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    ["slack.com", "slack-gov.com"].iter().any(|d| host == *d || host.ends_with(&format!(".{d}")))
}

/// The URL for an error message: redacted, and escaped so it cannot break a log line.
fn quoted(url: &str) -> String {
    format!("{:?}", redact_url(url, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_urls_pass_unchanged() {
        for ok in [
            "https://hooks.example.com/x?y=1",
            "https://127.0.0.1:8443/",
            "https://[::1]/h",
            "https://xn--bcher-kva.example/",
        ] {
            assert_eq!(check_url(ok, false).unwrap(), ok);
        }
        assert!(check_url("http://127.0.0.1:9000/hook", true).is_ok());
    }

    #[test]
    fn bad_hosts_ports_and_schemes_are_refused_naming_url() {
        for (bad, why) in [
            ("https://exa mple.com/", "spaces"),
            ("https://example.com:99999/", "not a valid URL"),
            ("https://example.com:0/", "port 0"),
            ("https://exa_mple..com\u{7f}/", "control"),
            ("https://", "not a valid URL"),
            ("https://[::1/", "not a valid URL"),
            ("ftp://example.com/", "https://"),
            ("example.com/hook", "not a valid URL"),
            ("http://example.com/", "allow_insecure_http"),
        ] {
            let e = check_url(bad, false).unwrap_err();
            assert_eq!(e.field().as_deref(), Some("url"), "{bad}");
            assert!(e.to_string().contains(why), "{bad}: {e}");
        }
        let e = check_url("ftp://example.com/", true).unwrap_err();
        assert!(e.to_string().contains("must be an https:// or http:// URL"), "names what is accepted: {e}");
    }

    #[test]
    fn secrets_in_urls_are_redacted_in_errors_and_display() {
        let slack = "https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX";
        assert_eq!(redact_url(slack, false), "https://hooks.slack.com/services/***");
        assert_eq!(
            redact_url("https://hooks.slack.com./workflows/T/A/1/s3cr3t", false),
            "https://hooks.slack.com./workflows/***"
        );
        assert_eq!(
            redact_url("https://hooks.slack-gov.com/services/T/B/s3cr3t", false),
            "https://hooks.slack-gov.com/services/***"
        );
        assert_eq!(
            redact_url("https://relay.example/T/B/s3cr3t", true),
            "https://relay.example/T/***",
            "a slack channel elsewhere"
        );
        assert_eq!(redact_url("https://bob:hunter2@example.com/h", false), "https://***:***@example.com/h");
        assert_eq!(redact_url("https://example.com/h?code=abc&x=1", false), "https://example.com/h?code=***&x=***");
        assert_eq!(redact_url("https://example.com/h?sk_live_abc", false), "https://example.com/h?***");
        assert_eq!(redact_url("https://example.com/h#tok", false), "https://example.com/h#***");
        assert_eq!(redact_url("https://example.com/plain", false), "https://example.com/plain");
        assert_eq!(redact_url("https://Example.com", false), "https://Example.com", "shown as given");
        let e = check_url("http://bob:hunter2@example.com/", false).unwrap_err().to_string();
        assert!(!e.contains("hunter2") && e.contains("***"), "{e}");
    }
}
