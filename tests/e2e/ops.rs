//! The operations kit queries only what certhook exports: every `certhook_*` name in the
//! Grafana dashboard and the Prometheus rules is read from a running `serve`'s /metrics.

use std::collections::BTreeSet;

use crate::support::{Env, Serve};

const DASHBOARD: &str = include_str!("../../ops/grafana/certhook.json");
const RULES: &str = include_str!("../../ops/prometheus/alerts.yml");

/// Every `certhook_…` identifier in a text.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(pos) = text[i..].find("certhook_") {
        let start = i + pos;
        let before_ok = start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let mut end = start;
        while end < bytes.len()
            && (bytes[end].is_ascii_lowercase() || bytes[end].is_ascii_digit() || bytes[end] == b'_')
        {
            end += 1;
        }
        if before_ok {
            names.insert(text[start..end].to_string());
        }
        i = end;
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_and_rules_use_only_exported_metrics() {
    let env = Env::fast();
    let serve = Serve::start(&env).await;
    let exposition = serve.http().get(serve.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let exported: BTreeSet<String> = exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_string())
        .collect();
    let dashboard: serde_json::Value = serde_json::from_str(DASHBOARD).expect("the dashboard is JSON");
    assert!(dashboard["panels"].as_array().unwrap().len() >= 9);
    let used: BTreeSet<String> = metric_names(DASHBOARD).into_iter().chain(metric_names(RULES)).collect();
    assert!(used.len() >= 10, "{used:?}");
    let missing: Vec<_> = used.iter().filter(|n| !exported.contains(*n)).collect();
    assert!(missing.is_empty(), "queried but not exported: {missing:?}\nexported: {exported:?}");
    serve.terminate().await;
}
