//! Certificates from PEM: the fields certhook needs, read from the X.509 certificate
//! itself, and folder imports that name every file they skip.
//!
//! Serial numbers are written in decimal (as in SPEC §2's examples), the certificate id
//! defaults to that serial, and `san` lists DNS names, IP addresses, e-mail addresses and
//! URIs in the order the certificate gives them.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use certhook_core::event::Certificate;
use chrono::{DateTime, Utc};
use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;

/// Why a PEM input gave no certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PemError {
    /// No `CERTIFICATE` block at all.
    #[error("no PEM certificate found (expected a -----BEGIN CERTIFICATE----- block)")]
    NoCertificate,
    /// A block that is not valid PEM, or not a valid X.509 certificate.
    #[error("invalid PEM certificate: {0}")]
    Malformed(String),
}

/// Reads every certificate of a PEM input, in order (a leaf first, then its chain).
pub fn read_certificates(input: &[u8]) -> Result<Vec<Certificate>, PemError> {
    let mut certificates = Vec::new();
    for block in Pem::iter_from_buffer(input) {
        let block = block.map_err(|e| PemError::Malformed(e.to_string()))?;
        if block.label != "CERTIFICATE" {
            continue;
        }
        let x509 = block.parse_x509().map_err(|e| PemError::Malformed(e.to_string()))?;
        certificates.push(convert(&x509)?);
    }
    if certificates.is_empty() {
        return Err(PemError::NoCertificate);
    }
    Ok(certificates)
}

fn time(t: &x509_parser::time::ASN1Time) -> Result<DateTime<Utc>, PemError> {
    DateTime::from_timestamp(t.timestamp(), 0).ok_or_else(|| PemError::Malformed("validity out of range".into()))
}

fn convert(x509: &x509_parser::certificate::X509Certificate<'_>) -> Result<Certificate, PemError> {
    let serial = x509.tbs_certificate.serial.to_str_radix(10);
    let mut san = Vec::new();
    if let Ok(Some(ext)) = x509.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                GeneralName::DNSName(d) => san.push(d.to_string()),
                GeneralName::RFC822Name(e) => san.push(e.to_string()),
                GeneralName::URI(u) => san.push(u.to_string()),
                GeneralName::IPAddress(bytes) => {
                    let ip = match bytes.len() {
                        4 => <[u8; 4]>::try_from(*bytes).ok().map(IpAddr::from),
                        16 => <[u8; 16]>::try_from(*bytes).ok().map(IpAddr::from),
                        _ => None,
                    };
                    if let Some(ip) = ip {
                        san.push(ip.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    let cn = x509.subject().iter_common_name().next().and_then(|a| a.as_str().ok()).map(str::to_string);
    let common_name = cn
        .or_else(|| san.first().cloned())
        .ok_or_else(|| PemError::Malformed("the certificate has no subject common name and no SAN".into()))?;
    let validity = x509.validity();
    Ok(Certificate {
        id: serial.clone(),
        serial_number: serial,
        common_name,
        san,
        profile_name: None,
        not_before: time(&validity.not_before)?,
        not_after: time(&validity.not_after)?,
        revoked_at: None,
        revocation_reason: None,
    })
}

/// What a folder import read and skipped.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FolderScan {
    /// Files with a certificate, and the leaf read from each.
    #[serde(skip)]
    pub certificates: Vec<(PathBuf, Certificate)>,
    /// Files read, by path.
    pub read: Vec<PathBuf>,
    /// Files skipped, with why.
    pub skipped: Vec<(PathBuf, String)>,
}

/// Reads a folder recursively: the first certificate of each PEM file (the leaf; chain
/// certificates after it are not inventory). Files that are not certificates are skipped
/// and named, never fatal.
pub fn read_folder(dir: &Path) -> std::io::Result<FolderScan> {
    read_folder_reporting(dir, &mut |_| {})
}

/// [`read_folder`], telling `progress` how many files it has looked at so far.
pub fn read_folder_reporting(dir: &Path, progress: &mut dyn FnMut(usize)) -> std::io::Result<FolderScan> {
    let mut scan = FolderScan::default();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&path)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.path());
        for entry in entries {
            let path = entry.path();
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push(path);
                continue;
            }
            if !kind.is_file() {
                continue;
            }
            let bytes = match std::fs::read(&path) {
                Ok(b) => b,
                Err(e) => {
                    scan.skipped.push((path, e.to_string()));
                    continue;
                }
            };
            match read_certificates(&bytes) {
                Ok(mut certs) => {
                    scan.read.push(path.clone());
                    scan.certificates.push((path, certs.swap_remove(0)));
                }
                Err(e) => scan.skipped.push((path, e.to_string())),
            }
            progress(scan.read.len() + scan.skipped.len());
        }
    }
    Ok(scan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generate(cn: &str, sans: &[&str], serial: u64) -> String {
        let mut params = rcgen::CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, cn);
        params.serial_number = Some(rcgen::SerialNumber::from(serial.to_be_bytes().to_vec()));
        params.not_before = rcgen::date_time_ymd(2024, 1, 1);
        params.not_after = rcgen::date_time_ymd(2025, 2, 14);
        params.subject_alt_names.push(rcgen::SanType::IpAddress("10.1.2.3".parse().unwrap()));
        params.subject_alt_names.push(rcgen::SanType::Rfc822Name("ops@example.com".try_into().unwrap()));
        params.subject_alt_names.push(rcgen::SanType::URI("spiffe://example.com/api".try_into().unwrap()));
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().pem()
    }

    #[test]
    fn reads_the_fields_back_exactly() {
        let pem = generate("api.example.com", &["api.example.com", "www.api.example.com"], 1_234_567_890);
        let certs = read_certificates(pem.as_bytes()).unwrap();
        assert_eq!(certs.len(), 1);
        let c = &certs[0];
        assert_eq!(c.serial_number, "1234567890", "decimal serial");
        assert_eq!(c.id, "1234567890");
        assert_eq!(c.common_name, "api.example.com");
        assert_eq!(
            c.san,
            vec!["api.example.com", "www.api.example.com", "10.1.2.3", "ops@example.com", "spiffe://example.com/api"]
        );
        assert_eq!(c.not_before, certhook_core::time::parse_rfc3339("2024-01-01T00:00:00Z").unwrap());
        assert_eq!(c.not_after, certhook_core::time::parse_rfc3339("2025-02-14T00:00:00Z").unwrap());
    }

    #[test]
    fn chains_are_read_in_order_and_garbage_is_refused() {
        let chain = format!("{}{}", generate("leaf.example.com", &["leaf.example.com"], 2), generate("ca", &[], 1));
        let certs = read_certificates(chain.as_bytes()).unwrap();
        assert_eq!(certs.iter().map(|c| c.common_name.as_str()).collect::<Vec<_>>(), vec!["leaf.example.com", "ca"]);
        assert_eq!(read_certificates(b"hello"), Err(PemError::NoCertificate));
        let broken = "-----BEGIN CERTIFICATE-----\nnot base64 at all!!\n-----END CERTIFICATE-----\n";
        assert!(matches!(read_certificates(broken.as_bytes()), Err(PemError::Malformed(_))));
        let truncated = generate("x.example.com", &["x.example.com"], 3).replace("-----END CERTIFICATE-----", "");
        assert!(read_certificates(truncated.as_bytes()).is_err());
    }

    #[test]
    fn folder_import_reads_recursively_and_names_what_it_skips() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("nested")).unwrap();
        std::fs::write(dir.path().join("a.pem"), generate("a.example.com", &["a.example.com"], 10)).unwrap();
        std::fs::write(dir.path().join("nested/b.crt"), generate("b.example.com", &["b.example.com"], 11)).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a certificate").unwrap();
        let scan = read_folder(dir.path()).unwrap();
        let mut names: Vec<_> = scan.certificates.iter().map(|(_, c)| c.common_name.clone()).collect();
        names.sort();
        assert_eq!(names, vec!["a.example.com", "b.example.com"]);
        assert_eq!(scan.skipped.len(), 1);
        assert!(scan.skipped[0].0.ends_with("notes.txt"));
        assert!(scan.skipped[0].1.contains("no PEM certificate"));
    }
}
