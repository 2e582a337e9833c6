//! Property tests: `certhook enqueue --pem` and `certhook import` read files an operator
//! points at, so any bytes, a damaged PEM included, give certificates or an error.

use certhook_producer::pem::read_certificates;
use proptest::prelude::*;

fn real_pem() -> String {
    let mut params = rcgen::CertificateParams::new(vec!["prop.example".to_string()]).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, "prop.example");
    let key = rcgen::KeyPair::generate().unwrap();
    params.self_signed(&key).unwrap().pem()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic_the_pem_reader(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = read_certificates(&bytes);
    }

    #[test]
    fn a_damaged_certificate_is_read_or_refused(flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut pem = real_pem().into_bytes();
        for (at, byte) in flips {
            let i = at.index(pem.len());
            pem[i] = byte;
        }
        let _ = read_certificates(&pem);
    }

    #[test]
    fn a_truncated_certificate_is_read_or_refused(cut in any::<prop::sample::Index>()) {
        let pem = real_pem();
        let cut = cut.index(pem.len());
        let _ = read_certificates(&pem.as_bytes()[..cut]);
    }
}
