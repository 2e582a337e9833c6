//! Which `Host` header values the API answers to (SPEC §6). A browser sends the name it
//! resolved in `Host`, so a page on `evil.example` that rebinds its name to 127.0.0.1
//! still says `evil.example`: refusing names the operator did not list closes DNS
//! rebinding even when the API has no token.

use std::net::{IpAddr, SocketAddr};

/// The host names and addresses the API accepts in `Host`.
#[derive(Debug, Clone)]
pub struct AllowedHosts {
    listen: IpAddr,
    names: Vec<String>,
}

impl AllowedHosts {
    /// The listen address, `localhost`, `public_url`'s host and the `allowed_hosts` entries.
    pub fn new(listen: SocketAddr, public_url: Option<&str>, extra: &[String]) -> Self {
        let mut names = vec!["localhost".to_string()];
        if let Some(host) = public_url.and_then(|u| url::Url::parse(u).ok()).and_then(|u| u.host_str().map(normalise)) {
            names.push(host);
        }
        names.extend(extra.iter().map(|h| normalise(host_part(h))));
        AllowedHosts { listen: listen.ip(), names }
    }

    /// Whether a request whose `Host` is `value` may be answered.
    pub fn allows(&self, value: &str) -> bool {
        let host = normalise(host_part(value.trim()));
        if host.is_empty() {
            return false;
        }
        if let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
            // An address in `Host` means the browser connected to that address itself, so no
            // other site's name is behind it. On an unspecified listen address every local
            // address is this server's.
            return ip == self.listen || self.listen.is_unspecified() || ip.is_loopback() && self.listen.is_loopback();
        }
        self.names.contains(&host)
    }
}

/// `Host` without its port: `name`, `name:8080`, `[::1]:8080` → `name`, `name`, `[::1]`.
fn host_part(value: &str) -> &str {
    if value.starts_with('[') {
        return value.find(']').map_or(value, |end| &value[..=end]);
    }
    match value.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => value,
    }
}

/// Names compare case-insensitively and without a trailing dot (`Example.COM.`).
fn normalise(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(listen: &str, public: Option<&str>, extra: &[&str]) -> AllowedHosts {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        AllowedHosts::new(listen.parse().unwrap(), public, &extra)
    }

    #[test]
    fn loopback_listen_answers_its_address_and_localhost_only() {
        let h = hosts("127.0.0.1:8080", None, &[]);
        for ok in ["127.0.0.1:8080", "127.0.0.1", "localhost:8080", "LOCALHOST", "localhost.", "[::1]:8080"] {
            assert!(h.allows(ok), "{ok}");
        }
        for bad in ["evil.example", "evil.example:8080", "localhost.evil.example", "10.0.0.1:8080", "", ":8080"] {
            assert!(!h.allows(bad), "{bad}");
        }
    }

    #[test]
    fn public_url_host_and_allowed_hosts_are_added() {
        let h = hosts("10.0.0.5:8080", Some("https://Certhook.Example.com/base"), &["pki.internal:9000", "Sidecar"]);
        for ok in ["certhook.example.com", "certhook.example.com:443", "pki.internal", "sidecar:8080", "10.0.0.5"] {
            assert!(h.allows(ok), "{ok}");
        }
        for bad in ["example.com", "10.0.0.6", "127.0.0.1"] {
            assert!(!h.allows(bad), "{bad}");
        }
    }

    #[test]
    fn an_unspecified_listen_address_answers_any_address_but_only_listed_names() {
        let h = hosts("0.0.0.0:8080", None, &[]);
        assert!(h.allows("10.1.2.3:8080"));
        assert!(h.allows("[fd00::1]:8080"));
        assert!(!h.allows("certhook.default.svc:8080"));
    }

    #[test]
    fn host_part_strips_ports_but_not_bare_ipv6() {
        assert_eq!(host_part("a.example:80"), "a.example");
        assert_eq!(host_part("[::1]:80"), "[::1]");
        assert_eq!(host_part("[::1]"), "[::1]");
        assert_eq!(host_part("a.example:x"), "a.example:x");
    }
}
