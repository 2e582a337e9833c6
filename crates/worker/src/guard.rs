//! SSRF protection (SPEC §4): deliveries never reach loopback, private, link-local,
//! unique-local, CGNAT, unspecified, multicast or cloud-metadata addresses unless the
//! operator allowed them (`allowed_networks`).
//!
//! IP-literal hosts are checked before connecting (the HTTP client skips its resolver for
//! them); names are resolved by [`GuardedResolver`], which drops forbidden addresses, so
//! the connection can only go to an address that was checked (no DNS-rebinding window).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;

/// Decides which destination addresses deliveries may reach.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    allowed: Vec<IpNet>,
}

/// A destination refused by the guard.
#[derive(Debug, Clone, thiserror::Error)]
#[error("destination blocked: {0} is in a forbidden address range (allow it with allowed_networks)")]
pub struct Blocked(pub String);

impl Guard {
    /// A guard that additionally allows `allowed` (e.g. `127.0.0.0/8` for tests).
    pub fn new(allowed: Vec<IpNet>) -> Self {
        Guard { allowed }
    }

    /// Whether a delivery may connect to `ip`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        !is_forbidden(ip) || self.allowed.iter().any(|net| net.contains(&ip))
    }

    /// Checks a URL whose host is an IP literal; names pass here and are checked at resolution.
    pub fn check_url(&self, url: &reqwest::Url) -> Result<(), Blocked> {
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
            _ => return Ok(()),
        };
        if self.permits(ip) { Ok(()) } else { Err(Blocked(ip.to_string())) }
    }
}

/// IPv4-mapped IPv6 addresses are judged as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// Whether `ip` is in a range deliveries must not reach by default.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // 169.254.0.0/16, cloud metadata included
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64.0.0/10
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240 // reserved
}

fn forbidden_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique-local fc00::/7 (AWS metadata fd00:ec2::254 included)
        || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (first == 0x64 && ip.segments()[1] == 0xff9b) // NAT64 64:ff9b::/96 could reach private v4
        || embedded_v4(ip).into_iter().flatten().any(forbidden_v4)
}

/// The IPv4 addresses an IPv6 address carries and a tunnel would reach: IPv4-compatible
/// `::a.b.c.d`, 6to4 `2002:AABB:CCDD::/48`, and Teredo `2001:0::/32` (its server, and its
/// client, stored inverted in the last 32 bits).
fn embedded_v4(ip: Ipv6Addr) -> [Option<Ipv4Addr>; 2] {
    let s = ip.segments();
    let v4 = |hi: u16, lo: u16| Some(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
    match s {
        [0, 0, 0, 0, 0, 0, hi, lo] => [v4(hi, lo), None],
        [0x2002, hi, lo, ..] => [v4(hi, lo), None],
        [0x2001, 0, server_hi, server_lo, _, _, hi, lo] => [v4(server_hi, server_lo), v4(!hi, !lo)],
        _ => [None, None],
    }
}

/// A DNS resolver for the HTTP client that drops every address the guard forbids.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    guard: Arc<Guard>,
}

impl GuardedResolver {
    /// A resolver enforcing `guard`.
    pub fn new(guard: Arc<Guard>) -> Self {
        GuardedResolver { guard }
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.guard.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let permitted: Vec<SocketAddr> = addrs.iter().copied().filter(|a| guard.permits(a.ip())).collect();
            if permitted.is_empty() {
                // The name only: the error is stored and shown to whoever can read the
                // delivery, and the internal address a name resolves to is not theirs to map.
                return Err(Box::new(Blocked(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(permitted.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forbidden_ranges() {
        for s in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00:ec2::254",
            "fc00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            // Issue 14: IPv4 carried inside IPv6 is judged as IPv4.
            "::7f00:1",                             // IPv4-compatible 127.0.0.1
            "::a9fe:a9fe",                          // IPv4-compatible 169.254.169.254
            "2002:7f00:1::1",                       // 6to4 of 127.0.0.1
            "2002:a00:1::",                         // 6to4 of 10.0.0.1
            "2001:0:4136:e378:8000:63bf:f5ff:fffe", // Teredo, client 10.0.0.1
            "2001:0:a00:1:8000:63bf:f7f7:f7f7",     // Teredo, server 10.0.0.1
        ] {
            assert!(is_forbidden(ip(s)), "{s} should be forbidden");
        }
        for s in [
            "93.184.216.34",
            "1.1.1.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "2002:808:808::1",                      // 6to4 of 8.8.8.8
            "2001:0:4136:e378:8000:63bf:f7f7:f7f7", // Teredo, public server and client 8.8.8.8
        ] {
            assert!(!is_forbidden(ip(s)), "{s} should be allowed");
        }
    }

    #[test]
    fn allowed_networks_open_a_range() {
        let guard = Guard::new(vec!["127.0.0.0/8".parse().unwrap()]);
        assert!(guard.permits(ip("127.0.0.1")));
        assert!(guard.permits(ip("::ffff:127.0.0.1")));
        assert!(!guard.permits(ip("10.0.0.1")));
        assert!(Guard::default().check_url(&"http://127.0.0.1:8080/x".parse().unwrap()).is_err());
        assert!(Guard::default().check_url(&"http://[::1]:8080/x".parse().unwrap()).is_err());
        assert!(guard.check_url(&"http://127.0.0.1:8080/x".parse().unwrap()).is_ok());
        assert!(Guard::default().check_url(&"https://example.com/x".parse().unwrap()).is_ok());
    }

    #[tokio::test]
    async fn resolver_drops_forbidden_addresses() {
        use reqwest::dns::Resolve;
        let resolver = GuardedResolver::new(Arc::new(Guard::default()));
        let err = match resolver.resolve("localhost".parse().unwrap()).await {
            Ok(_) => panic!("localhost resolved through the guard"),
            Err(e) => e,
        };
        assert!(err.to_string().contains("destination blocked: localhost is"), "{err}");
        assert!(
            !err.to_string().contains("127.0.0.1") && !err.to_string().contains("::1"),
            "no resolved address: {err}"
        );
        let open = GuardedResolver::new(Arc::new(Guard::new(vec![
            "127.0.0.0/8".parse().unwrap(),
            "::1/128".parse().unwrap(),
        ])));
        let addrs: Vec<_> = open.resolve("localhost".parse().unwrap()).await.unwrap().collect();
        assert!(!addrs.is_empty());
    }
}
