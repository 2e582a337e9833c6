//! The HTTP clients deliveries go out on: one shared by every channel without TLS settings
//! of its own, and one per channel that has some (its CA certificates, its client
//! certificate), cached until those settings change. Every client trusts the system roots
//! plus the global `ca_bundle`, which is read again when the file changes; every client
//! keeps the SSRF-guarding resolver, the timeouts, no redirects and no environment proxy.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use certhook_core::subscription::ChannelTls;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::guard::{Guard, GuardedResolver};

/// What every client is built with.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Whole-request timeout.
    pub request_timeout: Duration,
    /// Connect timeout (TCP and TLS).
    pub connect_timeout: Duration,
    /// The SSRF guard its resolver enforces.
    pub guard: Arc<Guard>,
}

/// Why a client could not be built. Never holds a private key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    /// The `ca_bundle` file could not be read.
    #[error("ca_bundle: cannot read {path}: {reason}")]
    BundleUnreadable {
        /// The configured path.
        path: String,
        /// The operating system's reason.
        reason: String,
    },
    /// The `ca_bundle` file holds no usable certificate.
    #[error("ca_bundle: {path} {reason}")]
    BundleInvalid {
        /// The configured path.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// reqwest or rustls refused the settings (a key that does not match its certificate).
    #[error("{0}")]
    Client(String),
}

/// A fingerprint of a channel's TLS settings: the cache is keyed by it, so it never holds
/// the key itself.
type Fingerprint = [u8; 32];

fn fingerprint(tls: &ChannelTls) -> Fingerprint {
    let mut h = Sha256::new();
    for part in [tls.ca_pem.as_deref(), tls.client_cert_pem.as_deref(), tls.client_key.as_ref().map(|k| k.expose())] {
        // A length prefix per part: moving text from one part to the next changes the hash.
        let text = part.unwrap_or("");
        h.update((text.len() as u64 + u64::from(part.is_some())).to_be_bytes());
        h.update(text.as_bytes());
    }
    h.finalize().into()
}

/// The `ca_bundle` file as last read: what it held and when it was last changed.
#[derive(Debug)]
struct Bundle {
    path: PathBuf,
    stamp: Option<(SystemTime, u64)>,
    certs: Vec<reqwest::Certificate>,
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Reads and checks a CA bundle: PEM, certificates only, at least one.
fn read_bundle(path: &Path) -> Result<Bundle, TlsError> {
    let shown = path.display().to_string();
    let stamp = stamp(path);
    let text = std::fs::read_to_string(path)
        .map_err(|e| TlsError::BundleUnreadable { path: shown.clone(), reason: e.to_string() })?;
    certhook_core::tls_pem::certificates(&text)
        .map_err(|e| TlsError::BundleInvalid { path: shown.clone(), reason: e.to_string() })?;
    let certs = reqwest::Certificate::from_pem_bundle(text.as_bytes())
        .map_err(|e| TlsError::BundleInvalid { path: shown, reason: describe(&e) })?;
    Ok(Bundle { path: path.to_path_buf(), stamp, certs })
}

/// A reqwest error and its causes on one line (reqwest's own words name no key).
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cur = e.source();
    while let Some(cause) = cur {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        cur = cause.source();
    }
    text
}

/// Builds one client: the common settings, the bundle's roots, and the channel's own.
pub fn build_client(
    options: &ClientOptions,
    bundle: &[reqwest::Certificate],
    tls: &ChannelTls,
) -> Result<reqwest::Client, TlsError> {
    // Installing the ring provider twice is harmless: the second call reports the first.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client_error = |e: reqwest::Error| TlsError::Client(describe(&e));
    let mut builder = reqwest::Client::builder()
        .timeout(options.request_timeout)
        .connect_timeout(options.connect_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .pool_idle_timeout(Duration::from_secs(90))
        .dns_resolver(Arc::new(GuardedResolver::new(options.guard.clone())))
        .tls_certs_merge(bundle.iter().cloned());
    if let Some(ca) = &tls.ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(ca.as_bytes()).map_err(client_error)?;
        builder = builder.tls_certs_merge(certs);
    }
    if let (Some(cert), Some(key)) = (&tls.client_cert_pem, &tls.client_key) {
        let pem = format!("{cert}\n{}\n", key.expose());
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).map_err(client_error)?);
    }
    builder.build().map_err(client_error)
}

/// The shared client, the per-channel ones, and the bundle they were built with.
#[derive(Debug)]
struct State {
    bundle: Option<Bundle>,
    shared: reqwest::Client,
    per_channel: HashMap<Uuid, (Fingerprint, reqwest::Client)>,
    /// Bumped whenever the bundle is read again: a client built from the bundle before
    /// is not cached after.
    generation: u64,
}

/// Every client deliveries use.
#[derive(Debug)]
pub struct Clients {
    options: ClientOptions,
    state: RwLock<State>,
}

impl Clients {
    /// The shared client, trusting `ca_bundle` too when one is given (checked now: an
    /// unreadable file, or one without a certificate, is an error naming `ca_bundle`).
    pub fn new(options: ClientOptions, ca_bundle: Option<&Path>) -> Result<Clients, TlsError> {
        let bundle = ca_bundle.map(read_bundle).transpose()?;
        let roots = bundle.as_ref().map(|b| b.certs.as_slice()).unwrap_or_default();
        let shared = build_client(&options, roots, &ChannelTls::default())?;
        Ok(Clients {
            options,
            state: RwLock::new(State { bundle, shared, per_channel: HashMap::new(), generation: 0 }),
        })
    }

    /// The client for a channel: the shared one, or the channel's own (built on first use
    /// and again only when its settings change).
    pub fn for_channel(&self, id: Uuid, tls: &ChannelTls) -> Result<reqwest::Client, TlsError> {
        if !tls.is_set() {
            return Ok(self.read().shared.clone());
        }
        let print = fingerprint(tls);
        if let Some((have, client)) = self.read().per_channel.get(&id)
            && *have == print
        {
            return Ok(client.clone());
        }
        // Built with no lock held, so sends on other channels never wait for it; the
        // bundle's certificates are cheap clones.
        let (roots, generation) = {
            let state = self.read();
            (state.bundle.as_ref().map(|b| b.certs.clone()).unwrap_or_default(), state.generation)
        };
        let client = build_client(&self.options, &roots, tls)?;
        let mut state = self.write();
        if state.generation == generation {
            // Another send may have built one meanwhile; either is as good.
            state.per_channel.insert(id, (print, client.clone()));
        }
        Ok(client)
    }

    /// Forgets the clients of channels that are gone, and reads `ca_bundle` again if the
    /// file changed, rebuilding every client with it. A bundle that became unreadable or
    /// empty is logged and the one last read is kept: deliveries go on as before.
    pub fn refresh(&self, live: impl Fn(&Uuid) -> bool) {
        let (path, known) = {
            let mut state = self.write();
            state.per_channel.retain(|id, _| live(id));
            let Some(bundle) = &state.bundle else { return };
            (bundle.path.clone(), bundle.stamp)
        };
        // Taken before reading: a file rewritten while it is read (truncated, then filled)
        // changes its stamp again and is read again at the next refresh.
        let seen = stamp(&path);
        if seen == known {
            return;
        }
        // Read and built with no lock held: sends go on with the old clients meanwhile.
        let built = read_bundle(&path).map(|fresh| {
            let shared = build_client(&self.options, &fresh.certs, &ChannelTls::default());
            (fresh, shared)
        });
        let mut state = self.write();
        match built {
            Ok((fresh, Ok(shared))) => {
                tracing::info!(path = %fresh.path.display(), certificates = fresh.certs.len(), "ca_bundle reloaded");
                state.shared = shared;
                state.per_channel.clear();
                state.generation += 1;
                state.bundle = Some(fresh);
            }
            Ok((_, Err(e))) => {
                tracing::warn!(error = %e, "ca_bundle changed but the client cannot be built; keeping the old one")
            }
            Err(e) => {
                tracing::warn!(error = %e, "ca_bundle changed but cannot be used; keeping the certificates read before");
                // Not read again until it changes once more.
                if let Some(b) = state.bundle.as_mut() {
                    b.stamp = seen;
                }
            }
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// Checks that a channel's TLS settings make a client (the key opens and matches its
/// certificate), without keeping it: what `channel create` and `update` ask before storing.
pub fn check(tls: &ChannelTls) -> Result<(), TlsError> {
    let options = ClientOptions {
        request_timeout: Duration::from_secs(1),
        connect_timeout: Duration::from_secs(1),
        guard: Arc::new(Guard::new(Vec::new())),
    };
    build_client(&options, &[], tls).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use certhook_core::Secret;

    fn options() -> ClientOptions {
        ClientOptions {
            request_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
            guard: Arc::new(Guard::new(Vec::new())),
        }
    }

    fn identity(cn: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec![format!("{cn}.test")]).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, cn);
        (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
    }

    fn tls(ca: Option<&str>, client: Option<(&str, &str)>) -> ChannelTls {
        ChannelTls {
            ca_pem: ca.map(str::to_string),
            client_cert_pem: client.map(|(c, _)| c.to_string()),
            client_key: client.map(|(_, k)| Secret::new(k)),
        }
    }

    #[test]
    fn fingerprints_change_with_any_setting_and_keep_parts_apart() {
        let base = fingerprint(&tls(Some("a"), Some(("b", "c"))));
        assert_ne!(base, fingerprint(&tls(Some("a"), Some(("b", "d")))));
        assert_ne!(base, fingerprint(&tls(Some("ab"), Some(("", "c")))));
        assert_ne!(fingerprint(&tls(None, None)), fingerprint(&tls(Some(""), None)));
        assert_eq!(base, fingerprint(&tls(Some("a"), Some(("b", "c")))));
    }

    #[test]
    fn a_key_that_does_not_match_its_certificate_is_refused_without_showing_it() {
        let (cert, key) = identity("client");
        let (_, other_key) = identity("other");
        assert_eq!(check(&tls(Some(&cert), Some((&cert, &key)))), Ok(()));
        let e = check(&tls(None, Some((&cert, &other_key)))).unwrap_err().to_string();
        assert!(!e.contains(other_key.lines().nth(1).unwrap()), "{e}");
        assert!(e.to_lowercase().contains("key"), "{e}");
    }

    #[test]
    fn channel_clients_are_cached_until_their_settings_change_and_dropped_when_gone() {
        let clients = Clients::new(options(), None).unwrap();
        let (ca, _) = identity("ca");
        let id = Uuid::now_v7();
        clients.for_channel(id, &tls(Some(&ca), None)).unwrap();
        let first = clients.read().per_channel[&id].0;
        clients.for_channel(id, &tls(Some(&ca), None)).unwrap();
        assert_eq!(clients.read().per_channel.len(), 1);
        let (ca2, _) = identity("ca2");
        clients.for_channel(id, &tls(Some(&ca2), None)).unwrap();
        assert_ne!(clients.read().per_channel[&id].0, first, "rebuilt with the new settings");
        clients.for_channel(Uuid::now_v7(), &ChannelTls::default()).unwrap();
        assert_eq!(clients.read().per_channel.len(), 1, "no TLS settings: the shared client");
        clients.refresh(|_| false);
        assert!(clients.read().per_channel.is_empty());
    }

    #[test]
    fn the_bundle_is_checked_at_start_and_read_again_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bundle.pem");
        let e = Clients::new(options(), Some(&path)).unwrap_err().to_string();
        assert!(e.starts_with("ca_bundle: cannot read"), "{e}");
        std::fs::write(&path, "not a certificate").unwrap();
        let e = Clients::new(options(), Some(&path)).unwrap_err().to_string();
        assert!(e.starts_with("ca_bundle:") && e.contains("no CERTIFICATE"), "{e}");
        let (ca, _) = identity("ca");
        std::fs::write(&path, &ca).unwrap();
        let clients = Clients::new(options(), Some(&path)).unwrap();
        assert_eq!(clients.read().bundle.as_ref().unwrap().certs.len(), 1);
        let (ca2, _) = identity("ca2");
        std::fs::write(&path, format!("{ca}{ca2}")).unwrap();
        clients.refresh(|_| true);
        assert_eq!(clients.read().bundle.as_ref().unwrap().certs.len(), 2, "read again");
        std::fs::write(&path, "broken now, and longer than before: ".repeat(40)).unwrap();
        clients.refresh(|_| true);
        assert_eq!(clients.read().bundle.as_ref().unwrap().certs.len(), 2, "the last good one is kept");
    }
}
