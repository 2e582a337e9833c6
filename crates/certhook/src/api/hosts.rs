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
    /// `public_url`'s origin (`https://certhook.example.com`), which pages may post from.
    public_origin: Option<String>,
}

impl AllowedHosts {
    /// The listen address, `localhost`, `public_url`'s host and the `allowed_hosts` entries.
    pub fn new(listen: SocketAddr, public_url: Option<&str>, extra: &[String]) -> Self {
        let mut names = vec!["localhost".to_string()];
        let public = public_url.and_then(|u| url::Url::parse(u).ok());
        if let Some(host) = public.as_ref().and_then(|u| u.host_str().map(normalise)) {
            names.push(host);
        }
        names.extend(extra.iter().map(|h| normalise(host_part(h))));
        let public_origin = public.map(|u| u.origin().ascii_serialization());
        AllowedHosts { listen: listen.ip(), names, public_origin }
    }

    /// Whether a request whose `Host` is `value` may be answered.
    pub fn allows(&self, value: &str) -> bool {
        let host = normalise(host_part(value.trim()));
        if host.is_empty() {
            return false;
        }
        if self.names.contains(&host) {
            return true;
        }
        // An address in `Host` means the browser connected to that address itself, so no
        // other site's name is behind it. On an unspecified listen address every local
        // address is this server's.
        host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().is_ok_and(|ip| {
            ip == self.listen || self.listen.is_unspecified() || ip.is_loopback() && self.listen.is_loopback()
        })
    }

    /// Whether a request whose `Origin` is `origin` and whose `Host` is `host` comes from
    /// this server's own pages: the same scheme-less authority (a page on another port of
    /// the same machine is another site), or `public_url`'s origin.
    pub fn origin_allowed(&self, origin: &str, host: &str) -> bool {
        let Ok(url) = url::Url::parse(origin) else { return false };
        if self.public_origin.as_deref() == Some(url.origin().ascii_serialization().as_str()) {
            return true;
        }
        let Some(origin_host) = url.host_str() else { return false };
        let (host_name, host_port) = match host_part(host) {
            name if name.len() < host.len() => (name, host[name.len() + 1..].parse::<u16>().ok()),
            name => (name, None),
        };
        // Without a port in `Host`, the page's origin has its scheme's default port.
        normalise(origin_host) == normalise(host_name) && url.port() == host_port
    }
}

/// Whether a `Host` value names this machine's loopback: `localhost` or a loopback address.
pub fn is_loopback(value: &str) -> bool {
    let name = normalise(host_part(value));
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    bare == "localhost" || bare.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
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
    fn addresses_can_be_listed_too() {
        let h = hosts("127.0.0.1:8080", None, &["203.0.113.5"]);
        assert!(h.allows("203.0.113.5:443"));
        assert!(!h.allows("203.0.113.6"));
    }

    #[test]
    fn only_this_servers_own_origin_may_post() {
        let h = hosts("127.0.0.1:8080", Some("https://certhook.example.com"), &[]);
        assert!(h.origin_allowed("http://127.0.0.1:8080", "127.0.0.1:8080"));
        assert!(h.origin_allowed("http://LOCALHOST:8080", "localhost:8080"));
        assert!(h.origin_allowed("https://certhook.example.com", "127.0.0.1:8080"), "public_url's pages");
        for (origin, host) in [
            ("http://localhost:3000", "localhost:8080"),
            ("http://127.0.0.2:8080", "127.0.0.1:8080"),
            ("http://127.0.0.1", "127.0.0.1:8080"),
            ("https://evil.example", "127.0.0.1:8080"),
            ("null", "127.0.0.1:8080"),
            ("http://certhook.example.com", "127.0.0.1:8080"),
        ] {
            assert!(!h.origin_allowed(origin, host), "{origin} → {host}");
        }
    }

    #[test]
    fn host_part_strips_ports_but_not_bare_ipv6() {
        assert_eq!(host_part("a.example:80"), "a.example");
        assert_eq!(host_part("[::1]:80"), "[::1]");
        assert_eq!(host_part("[::1]"), "[::1]");
        assert_eq!(host_part("a.example:x"), "a.example:x");
    }
}
