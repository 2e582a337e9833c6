//! Inventory and expiration alerts from the command line: import a folder of PEM
//! certificates, create an expiration alert, scan, and see the alert arrive.

use std::time::Duration;

use crate::receiver::{Receiver, Reply};
use crate::support::{Env, Serve, failure};

pub(crate) fn pem(cn: &str, serial: u64, days_left: i64) -> String {
    let mut params = rcgen::CertificateParams::new(vec![cn.to_string()]).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, cn);
    params.serial_number = Some(rcgen::SerialNumber::from(serial.to_be_bytes().to_vec()));
    // Midnight UTC, `offset` days from today.
    let day = |offset: i64| {
        use chrono::Datelike;
        let d = chrono::Utc::now().date_naive() + chrono::Duration::days(offset);
        rcgen::date_time_ymd(d.year(), d.month() as u8, d.day() as u8)
    };
    params.not_before = day(-30);
    params.not_after = day(days_left);
    params.self_signed(&rcgen::KeyPair::generate().unwrap()).unwrap().pem()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_a_folder_then_scan_and_the_expiration_alert_arrives() {
    let receiver = Receiver::start(Reply::Status(204)).await;
    let env = Env::fast();
    let certs = env.path("certs");
    std::fs::create_dir_all(certs.join("team-a")).unwrap();
    std::fs::write(certs.join("soon.pem"), pem("soon.example.com", 1001, 10)).unwrap();
    std::fs::write(certs.join("team-a/later.crt"), pem("later.example.com", 1002, 100)).unwrap();
    std::fs::write(certs.join("README.txt"), "not a certificate").unwrap();

    let app = env.json(&["app", "create", "--name", "pki"])["id"].as_str().unwrap().to_string();
    let report = env.json(&["import", "--app", &app, "--dir", certs.to_str().unwrap()]);
    assert_eq!(report["imported"], 2);
    assert_eq!(report["notified"], false);
    assert_eq!(report["skipped"].as_array().unwrap().len(), 1);
    assert!(report["skipped"][0]["file"].as_str().unwrap().ends_with("README.txt"));
    assert_eq!(env.json(&["status"])["events"]["total"], 0, "an import without --notify sends nothing");

    let alert = env.json(&[
        "alert",
        "create",
        "--app",
        &app,
        "--type",
        "expiration",
        "--name",
        "tls-expiry",
        "--before",
        "30d",
    ]);
    env.channel(alert["id"].as_str().unwrap(), &receiver.url("/hook"), None);
    // a long scan interval: only serve's scan at start and the explicit scans below run
    let mut env = env;
    env.set("CERTHOOK_SCAN_INTERVAL", "1h");
    let serve = Serve::start(&env).await;
    serve.wait_metric("certhook_expiration_scans_total", Duration::from_secs(20), |n| n >= 1.0).await;
    let scan = env.json(&["scan"]);
    assert_eq!(scan["reported"], 0, "serve's scan at start reported the certificate; the CLI's does not repeat it");
    assert_eq!(scan["expiredMarked"], 0);
    let got = receiver.wait_for(1, Duration::from_secs(20)).await;
    let ce = got[0].json();
    assert_eq!(ce["type"], "com.infisical.pki.certificate.expiration");
    assert_eq!(ce["data"]["alert"]["alertBefore"], "30d");
    let reported = ce["data"]["certificates"].as_array().unwrap();
    assert_eq!(reported.len(), 1, "only the certificate inside the window");
    assert_eq!(reported[0]["commonName"], "soon.example.com");
    assert_eq!(reported[0]["serialNumber"], "1001");
    let days = reported[0]["daysUntilExpiry"].as_i64().unwrap();
    assert!((8..=10).contains(&days), "{}", reported[0]);

    let again = env.json(&["scan"]);
    assert_eq!(again["reported"], 0, "a second scan does not repeat");
    let ahead = env.json(&["scan", "--as-of", &(chrono::Utc::now() + chrono::Duration::days(80)).to_rfc3339()]);
    assert_eq!(ahead["reported"], 1, "--as-of evaluates another instant: later.example.com enters its window");
    assert_eq!(ahead["expiredMarked"], 0, "a scan ahead of the clock marks nothing expired");
    serve
        .wait_status(Duration::from_secs(20), |s| s["events"]["total"] == 2 && s["deliveries"]["delivered"] == 2)
        .await;
    let serials: Vec<_> = receiver
        .received()
        .iter()
        .map(|r| {
            r.json()["data"]["certificates"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["serialNumber"].clone())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(serials, vec![vec!["1001"], vec!["1002"]], "each certificate reported once, in scan order");
    serve.terminate().await;

    // soon.example.com expires in 10 days: even a scan 80 days ahead leaves it active.
    let listed = env.json(&["certificates", "list", "--app", &app]);
    let statuses: Vec<(String, String)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["commonName"].as_str().unwrap().to_string(), c["status"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        statuses,
        vec![("soon.example.com".to_string(), "active".to_string()), ("later.example.com".into(), "active".into())]
    );
}

#[test]
fn enqueue_from_pem_reads_the_certificate_and_refuses_broken_input() {
    let env = Env::new();
    let app = env.json(&["app", "create", "--name", "pki"])["id"].as_str().unwrap().to_string();
    std::fs::write(env.path("cert.pem"), pem("api.example.com", 4242, 300)).unwrap();
    let ids = env.json(&["enqueue", "--app", &app, "--type", "issuance", "--pem", "cert.pem"]);
    assert_eq!(ids["ids"].as_array().unwrap().len(), 1);
    std::fs::write(env.path("broken.pem"), "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n").unwrap();
    let (code, err) = failure(&env.run(&["enqueue", "--app", &app, "--type", "issuance", "--pem", "broken.pem"]));
    assert_eq!(code, 2);
    assert!(err.contains("broken.pem") && err.contains("invalid PEM certificate"), "{err}");
    std::fs::write(env.path("empty.pem"), "nothing here").unwrap();
    let (code, err) = failure(&env.run(&["enqueue", "--app", &app, "--type", "renewal", "--pem", "empty.pem"]));
    assert_eq!(code, 2);
    assert!(err.contains("no PEM certificate"), "{err}");
    assert_eq!(env.json(&["status"])["events"]["total"], 1);
}

/// Issue 13: certificates handed over by `enqueue` are in the inventory for the very next
/// scan, even with no `serve` in between (they used to reach it only at fan-out).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_then_scan_without_serve_and_the_alert_arrives_once_serve_runs() {
    let receiver = Receiver::start(Reply::Status(204)).await;
    let mut env = Env::fast();
    env.set("CERTHOOK_SCAN_INTERVAL", "1h");
    let (app, _channel) = env.webhook("expiration", &receiver.url("/hook"), None);
    let mut event = crate::support::event(&app, "4242");
    event["certificate"]["notAfter"] = (chrono::Utc::now() + chrono::Duration::days(10)).to_rfc3339().into();
    env.enqueue_file(&[event]);

    let scan = env.json(&["scan"]);
    assert_eq!(scan["reported"], 1, "the enqueued certificate was folded into the inventory first: {scan}");
    assert_eq!(scan["reports"][0]["certificates"][0]["serialNumber"], "4242");

    let serve = Serve::start(&env).await;
    let got = receiver.wait_for(1, Duration::from_secs(20)).await;
    let ce = got[0].json();
    assert_eq!(ce["type"], "com.infisical.pki.certificate.expiration");
    assert_eq!(ce["data"]["certificates"][0]["serialNumber"], "4242");
    serve.wait_status(Duration::from_secs(20), |s| s["deliveries"]["delivered"] == 1).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(receiver.received().len(), 1, "reported once: serve's own scan at start did not repeat it");
    serve.terminate().await;
}

/// Issue 13: `scan --dry-run --as-of` is a preview: it prints what would be reported and
/// marked, and stores, sends and uses up nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_scan_prints_the_preview_and_stores_nothing() {
    let env = Env::fast();
    let certs = env.path("certs");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::write(certs.join("soon.pem"), pem("soon.example.com", 3001, 10)).unwrap();
    std::fs::write(certs.join("gone.pem"), pem("gone.example.com", 3002, -2)).unwrap();
    let (app, _channel) = env.webhook("expiration", "http://127.0.0.1:9/never", None);
    env.json(&["import", "--app", &app, "--dir", certs.to_str().unwrap()]);

    let next_week = (chrono::Utc::now() + chrono::Duration::days(5)).to_rfc3339();
    let preview = env.json(&["scan", "--dry-run", "--as-of", &next_week]);
    assert_eq!(preview["dryRun"], true);
    assert_eq!(preview["reported"], 1, "{preview}");
    assert_eq!(preview["reports"][0]["certificates"][0]["commonName"], "soon.example.com");
    assert_eq!(preview["expiredMarked"], 1, "gone.example.com would be marked expired");
    assert_eq!(preview["eventIds"].as_array().map(Vec::len), Some(0));
    let text = env.run(&["scan", "--dry-run", "--as-of", &next_week]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("dry run") && text.contains("soon.example.com"), "{text}");

    assert_eq!(env.json(&["status"])["events"]["total"], 0, "no event was stored");
    let listed = env.json(&["certificates", "list", "--app", &app]);
    let statuses: Vec<&str> = listed.as_array().unwrap().iter().map(|c| c["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, vec!["active", "active"], "nothing was marked expired");
    let real = env.json(&["scan"]);
    assert_eq!(real["reported"], 1, "the preview did not use the report up");
    assert_eq!(real["expiredMarked"], 1);
}
