//! The repository documents itself (issue 18): the reference in `docs/` names every
//! configuration key, metric family, API operation and shipped alert rule that the code
//! has, and no document points outside the repository.

use std::path::{Path, PathBuf};

use crate::support::{Env, Serve};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every Markdown file a user reads: the README and everything under docs/.
fn documents() -> Vec<(String, String)> {
    let mut docs = vec![("README.md".to_string(), read("README.md"))];
    for entry in std::fs::read_dir(repo().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            let name = format!("docs/{}", path.file_name().unwrap().to_string_lossy());
            docs.push((name.clone(), read(&name)));
        }
    }
    docs
}

#[test]
fn every_configuration_key_is_documented_with_its_variable() {
    let doc = read("docs/configuration.md");
    let example: toml::Table = read("certhook.example.toml").parse().unwrap();
    let mut keys = Vec::new();
    for (key, value) in &example {
        match value.as_table() {
            Some(section) => keys.extend(section.keys().map(|k| (k.clone(), format!("{key}__{k}")))),
            None => keys.push((key.clone(), key.clone())),
        }
    }
    // The optional keys are commented out in the example; they are keys all the same.
    for optional in ["metrics_listen", "admin_token", "public_url", "secret_key", "ca_bundle"] {
        keys.push((optional.to_string(), optional.to_string()));
    }
    assert!(keys.len() >= 25, "{keys:?}");
    for (key, var) in keys {
        assert!(doc.contains(&format!("`{key}`")), "docs/configuration.md does not name `{key}`");
        let var = format!("CERTHOOK_{}", var.to_uppercase());
        assert!(doc.contains(&var), "docs/configuration.md does not give {var}");
    }
}

#[test]
fn every_shipped_alert_rule_has_a_runbook_entry() {
    let rules = read("ops/prometheus/alerts.yml");
    let doc = read("docs/operations.md");
    let names: Vec<&str> = rules.lines().filter_map(|l| l.trim().strip_prefix("- alert: ")).collect();
    assert!(names.len() >= 5, "{names:?}");
    for name in names {
        assert!(doc.lines().any(|l| l.starts_with("### ") && l.contains(name)), "no runbook heading for {name}");
    }
}

#[test]
fn no_document_points_outside_the_repository_and_every_link_resolves() {
    for (name, text) in documents() {
        for banned in ["shared/", "SPEC.md", "ARCHITECTURE.md"] {
            assert!(!text.contains(banned), "{name} mentions {banned}");
        }
        let base = repo().join(&name).parent().unwrap().to_path_buf();
        for link in text.split("](").skip(1).map(|rest| &rest[..rest.find(')').unwrap_or(0)]) {
            if link.starts_with("http") || link.starts_with('#') || link.is_empty() {
                continue;
            }
            let target = link.split('#').next().unwrap();
            assert!(base.join(target).exists(), "{name} links to {link}, which is not in the repository");
        }
    }
    let readme = read("README.md");
    for doc in
        ["docs/wire-format.md", "docs/configuration.md", "docs/http-api.md", "docs/metrics.md", "docs/operations.md"]
    {
        assert!(readme.contains(&format!("]({doc}")), "the README links {doc}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_family_and_api_operation_is_documented() {
    let serve = Serve::start(&Env::fast()).await;
    let metrics = serve.metrics().await;
    let doc = read("docs/metrics.md");
    let families: Vec<&str> =
        metrics.lines().filter_map(|l| l.strip_prefix("# TYPE ")).map(|l| l.split(' ').next().unwrap()).collect();
    assert!(families.len() >= 12, "{families:?}");
    for family in families {
        assert!(doc.contains(&format!("`{family}")), "docs/metrics.md does not describe {family}");
    }

    let api: serde_json::Value =
        serve.http().get(serve.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    let doc = read("docs/http-api.md");
    for (path, item) in api["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let route = format!("`{} {path}`", method.to_uppercase());
            assert!(doc.contains(&route), "docs/http-api.md does not list {route}");
        }
    }
    serve.terminate().await;
}
