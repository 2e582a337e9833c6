//! Property tests: a receiver hands these functions whatever arrived in the headers, so
//! no header, however crafted, may panic them, and a request signed correctly verifies.

use std::time::Duration;

use certhook_verify::{verify_infisical, verify_standard_webhooks};
use proptest::prelude::*;

const BODY: &[u8] = b"{}";
const SECRET: &str = "property-secret-0123456789abcdef0123";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn any_infisical_header_is_judged_without_panicking(
        header in "([tv1=,0-9a-f ]|[ -~]){0,120}",
        now in any::<i64>(),
        tolerance in any::<u64>(),
    ) {
        let _ = verify_infisical(&header, BODY, &[SECRET], now, Duration::from_secs(tolerance));
    }

    #[test]
    fn crafted_timestamps_never_overflow(t in any::<i64>(), now in any::<i64>(), sig in "[0-9a-f]{0,64}") {
        let header = format!("t={t},v1={sig}");
        let verdict = verify_infisical(&header, BODY, &[SECRET], now, Duration::from_secs(300));
        prop_assert!(verdict.is_err());
        let _ = verify_standard_webhooks("msg_1", &t.to_string(), &format!("v1,{sig}"), BODY, &[SECRET], now, Duration::MAX);
    }

    #[test]
    fn any_standard_webhooks_headers_are_judged_without_panicking(
        id in "[ -~]{0,40}",
        timestamp in "[ -~]{0,24}",
        signature in "[ -~]{0,120}",
        secret in "(whsec_)?[A-Za-z0-9+/=]{0,48}",
        now in any::<i64>(),
    ) {
        let _ = verify_standard_webhooks(&id, &timestamp, &signature, BODY, &[&secret], now, Duration::from_secs(300));
    }
}
