//! A real HTTPS receiver on 127.0.0.1 for tests: a certificate from a test CA made here
//! with rcgen, HTTP/2 and HTTP/1.1 by ALPN, and optionally a client certificate required.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A certificate authority made for one test.
pub struct TestCa {
    /// Its certificate, PEM.
    pub pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate and its key, PEM.
pub struct Identity {
    pub cert: String,
    pub key: String,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        TestCa { pem, issuer: Issuer::new(params, key) }
    }

    /// A certificate for `names` (DNS names or IP addresses) signed by this CA.
    pub fn issue(&self, common_name: &str, names: &[&str]) -> Identity {
        let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(DnType::CommonName, common_name);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap().pem();
        Identity { cert, key: key.serialize_pem() }
    }
}

/// One request the receiver answered: its HTTP version and path.
#[derive(Debug, Clone)]
pub struct Hit {
    pub version: axum::http::Version,
    pub path: String,
}

/// The receiver; it stops with the test's runtime.
pub struct TlsReceiver {
    pub port: u16,
    hits: Arc<Mutex<Vec<Hit>>>,
}

async fn record(State(hits): State<Arc<Mutex<Vec<Hit>>>>, request: Request) -> StatusCode {
    hits.lock().unwrap().push(Hit { version: request.version(), path: request.uri().path().to_string() });
    StatusCode::NO_CONTENT
}

impl TlsReceiver {
    /// Serves HTTPS on 127.0.0.1 with `server`'s certificate; when `client_ca` is given,
    /// only clients presenting a certificate it issued get through the handshake.
    pub async fn start(server: &Identity, client_ca: Option<&TestCa>) -> TlsReceiver {
        TlsReceiver::start_speaking(server, client_ca, &[b"h2", b"http/1.1"]).await
    }

    /// As [`TlsReceiver::start`], offering only the `alpn` protocols given.
    pub async fn start_speaking(server: &Identity, client_ca: Option<&TestCa>, alpn: &[&[u8]]) -> TlsReceiver {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(server.cert.as_bytes()).collect::<Result<_, _>>().unwrap();
        let key = PrivateKeyDer::from_pem_slice(server.key.as_bytes()).unwrap();
        let builder = rustls::ServerConfig::builder();
        let builder = match client_ca {
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                roots.add(CertificateDer::from_pem_slice(ca.pem.as_bytes()).unwrap()).unwrap();
                let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots)).build().unwrap();
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_single_cert(chain, key).unwrap();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let hits = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new().fallback(record).with_state(hits.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, app) = (acceptor.clone(), app.clone());
                tokio::spawn(async move {
                    // A refused handshake (no or an unknown client certificate) ends here.
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    let service = TowerToHyperService::new(app);
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        TlsReceiver { port, hits }
    }

    /// An `https://127.0.0.1:<port>` URL (the address its certificate carries).
    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }
}
