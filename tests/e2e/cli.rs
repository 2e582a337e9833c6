//! The command line on the embedded SQLite default: creating things, producing events,
//! exit codes and `--json` shapes (SPEC §6).

use crate::support::{Env, failure};

fn event(app: &str, cn: &str, key: Option<&str>) -> serde_json::Value {
    let mut e = serde_json::json!({
        "type": "issuance", "applicationId": app,
        "certificate": { "serialNumber": "42", "commonName": cn,
                         "notBefore": "2024-01-01T00:00:00Z", "notAfter": "2025-01-01T00:00:00Z" }
    });
    if let Some(k) = key {
        e["idempotencyKey"] = k.into();
    }
    e
}

#[test]
fn a_fresh_database_is_created_and_migrated_by_any_command() {
    let env = Env::new();
    let status = env.json(&["status"]);
    assert_eq!(status["events"]["total"], 0);
    assert_eq!(status["deliveries"]["pending"], 0);
    assert_eq!(status["channels"]["active"], 0);
    assert!(env.path("certhook.db").exists());
    assert!(env.run(&["migrate"]).status.success(), "migrate is idempotent");
}

#[test]
fn create_list_and_json_shapes() {
    let env = Env::new();
    let app = env.json(&["app", "create", "--name", "pki-prod"]);
    let app_id = app["id"].as_str().unwrap();
    assert_eq!(app["name"], "pki-prod");
    assert!(app["createdAt"].as_str().unwrap().ends_with('Z'));
    let alert = env.json(&[
        "alert",
        "create",
        "--app",
        app_id,
        "--type",
        "expiration",
        "--name",
        "tls-expiry",
        "--before",
        "30d",
    ]);
    assert_eq!(alert["type"], "expiration");
    assert_eq!(alert["alertBefore"], "30d");
    assert_eq!(alert["applicationId"], app_id);
    let alerts = env.json(&["alert", "list", "--app", app_id]);
    assert_eq!(alerts.as_array().unwrap().len(), 1);
    let channel = env.json(&[
        "channel",
        "create",
        "--alert",
        alert["id"].as_str().unwrap(),
        "--url",
        "https://hooks.example.com/x",
        "--secret",
        "0123456789abcdef0123456789abcdef",
    ]);
    assert_eq!(channel["state"], "pending_verification");
    assert_eq!(channel["hasSecret"], true);
    assert_eq!(channel["kind"], "webhook");
    let text = serde_json::to_string(&env.json(&["channel", "list"])).unwrap();
    assert!(!text.contains("0123456789abcdef"), "secrets are never printed");
}

#[test]
fn enqueue_prints_ids_in_order_and_is_idempotent() {
    let env = Env::new();
    let app = env.json(&["app", "create", "--name", "a"]);
    let app_id = app["id"].as_str().unwrap();
    let batch = serde_json::json!([event(app_id, "a.example", Some("k1")), event(app_id, "b.example", None)]);
    std::fs::write(env.path("batch.json"), batch.to_string()).unwrap();
    let first = env.json(&["enqueue", "--file", "batch.json"]);
    assert_eq!(first["ids"].as_array().unwrap().len(), 2);
    let nd = format!("{}\n{}\n", event(app_id, "c.example", Some("k1")), event(app_id, "d.example", None));
    std::fs::write(env.path("events.ndjson"), nd).unwrap();
    let second = env.json(&["enqueue", "--file", "events.ndjson"]);
    assert_eq!(second["ids"][0], first["ids"][0], "a repeated idempotency key answers with the first id");
    assert_eq!(env.json(&["status"])["events"]["total"], 3);

    // `--file -` reads standard input
    let mut child = env
        .command()
        .args(["--json", "enqueue", "--file", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(event(app_id, "stdin.example", None).to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let ids: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(ids["ids"].as_array().unwrap().len(), 1);
    assert_eq!(env.json(&["status"])["events"]["total"], 4);
}

#[test]
fn bad_input_exits_2_naming_the_field_and_stores_nothing() {
    let env = Env::new();
    let app = env.json(&["app", "create", "--name", "a"]);
    let app_id = app["id"].as_str().unwrap();
    let mut bad = event(app_id, "b.example", None);
    bad["certificate"]["notAfter"] = "2023-01-01T00:00:00Z".into();
    let batch = serde_json::json!([event(app_id, "a.example", None), bad]);
    std::fs::write(env.path("batch.json"), batch.to_string()).unwrap();
    let (code, err) = failure(&env.run(&["enqueue", "--file", "batch.json"]));
    assert_eq!(code, 2);
    assert!(err.contains("events[1]: certificate.notAfter: must be after certificate.notBefore"), "{err}");

    let unknown =
        serde_json::json!([event(app_id, "a.example", None), event("01a20ee0-0000-7000-8000-000000000000", "b", None)]);
    std::fs::write(env.path("unknown.json"), unknown.to_string()).unwrap();
    let (code, err) = failure(&env.run(&["enqueue", "--file", "unknown.json"]));
    assert_eq!(code, 2);
    assert!(err.contains("events[1].applicationId: unknown application"), "{err}");
    assert_eq!(env.json(&["status"])["events"]["total"], 0);

    let (code, err) = failure(&env.run(&["channel", "show", "01a20ee0-0000-7000-8000-000000000000"]));
    assert_eq!((code, err.contains("unknown channel")), (2, true), "{err}");
    let (code, err) = failure(
        &env.run(&["alert", "create", "--app", app_id, "--type", "issuance", "--name", "x", "--before", "30d"]),
    );
    assert_eq!((code, err.contains("--before:")), (2, true), "{err}");
    let (code, err) = failure(&env.run(&["dlq", "replay"]));
    assert_eq!(code, 2, "bad usage exits 2");
    assert!(err.contains("--id") && err.contains("--all"), "both choices named: {err}");
}

#[test]
fn unknown_configuration_keys_are_refused() {
    let env = Env::new();
    std::fs::write(env.path("certhook.toml"), "[delivery]\nmax_attempt = 3\n").unwrap();
    let (code, err) = failure(&env.run(&["--config", "certhook.toml", "status"]));
    assert_eq!(code, 2);
    assert!(err.contains("unknown configuration key 'delivery.max_attempt'"), "{err}");
    // The environment is shared (Kubernetes injects CERTHOOK_PORT=tcp://… for a Service
    // named certhook): an unknown variable is named in a warning, and the command runs.
    let out = env
        .command()
        .env("CERTHOOK_DELIVERY__BOGUS", "1")
        .env("CERTHOOK_PORT", "tcp://10.0.0.1:8080")
        .env("CERTHOOK_SERVICE_HOST", "s3cr3t-looking-value")
        .arg("status")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for name in ["CERTHOOK_DELIVERY__BOGUS", "CERTHOOK_PORT", "CERTHOOK_SERVICE_HOST"] {
        assert!(stderr.contains(name) && stderr.contains("names no configuration key"), "{name}: {stderr}");
    }
    assert!(!stderr.contains("s3cr3t-looking-value"), "values are never echoed: {stderr}");
}

#[test]
fn every_alert_and_channel_rule_is_refused_with_exit_2_naming_the_flag() {
    let env = Env::new();
    let app = env.json(&["app", "create", "--name", "a"]);
    let app_id = app["id"].as_str().unwrap();
    for (args, field) in [
        (vec!["--type", "issued", "--name", "x"], "--type:"),
        (vec!["--type", "issuance,,renewal", "--name", "x"], "--type:"),
        (vec!["--type", "issuance", "--type", "expiration", "--name", "x"], "--before:"),
        (vec!["--type", "issuance", "--name", "x", "--name-pattern", "a.*.example.com"], "--name-pattern:"),
        (vec!["--type", "issuance", "--name", "x", "--name-pattern", "api*.example.com"], "--name-pattern:"),
        (vec!["--type", "issuance", "--name", "x", "--profile", " "], "--profile:"),
        (vec!["--type", "issuance", "--name", "Bad_Name"], "--name:"),
        (vec!["--type", "issuance", "--name", &"a".repeat(64)], "--name:"),
        (vec!["--type", "expiration", "--name", "x"], "--before:"),
        (vec!["--type", "expiration", "--name", "x", "--before", "0d"], "--before:"),
        (vec!["--type", "expiration", "--name", "x", "--before", "30s"], "--before:"),
        (vec!["--type", "renewal", "--name", "x", "--before", "30d"], "--before:"),
    ] {
        let mut full = vec!["alert", "create", "--app", app_id];
        full.extend(args.iter().copied());
        let (code, err) = failure(&env.run(&full));
        assert_eq!(code, 2, "{args:?}");
        assert!(err.contains(&format!("error: {field}")), "named as the flag typed: {args:?}: {err}");
    }
    let alert = env.json(&["alert", "create", "--app", app_id, "--type", "issuance", "--name", "ok"]);
    let alert_id = alert["id"].as_str().unwrap();
    for (args, field) in [
        (vec!["--url", "http://example.com/h"], "--url:"),
        (vec!["--url", "ftp://example.com/h"], "--url:"),
        (vec![], "--url:"),
        (vec!["--url", "https://example.com/h", "--secret", "short"], "--secret:"),
        (vec!["--url", "https://example.com/h", "--kind", "email"], "--kind:"),
        (vec!["--url", "https://example.com/h", "--content-type", "json"], "--content-type:"),
        (vec!["--kind", "pagerduty", "--routing-key", "nothex"], "--routing-key:"),
        (vec!["--kind", "pagerduty"], "--routing-key:"),
        (
            vec!["--url", "https://hooks.slack.com/services/x", "--secret", "0123456789abcdef0123456789abcdef"],
            "--secret:",
        ),
    ] {
        let mut full = vec!["channel", "create", "--alert", alert_id];
        full.extend(args.iter().copied());
        let (code, err) = failure(&env.run(&full));
        assert_eq!(code, 2, "{args:?}");
        assert!(err.contains(&format!("error: {field}")), "named as the flag typed: {args:?}: {err}");
    }
    let (code, err) = failure(&env.run(&[
        "channel",
        "create",
        "--alert",
        "01a20ee0-0000-7000-8000-000000000000",
        "--url",
        "https://x.example/h",
    ]));
    assert_eq!(code, 2);
    assert!(err.contains("unknown alert"), "{err}");
    assert_eq!(env.json(&["channel", "list"]).as_array().unwrap().len(), 0, "nothing was stored");
}

/// Issue 14: secrets stay out of the process list (files, standard input) and out of
/// every output (a Slack URL's path and `user:password` are redacted; errors too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_come_from_files_and_never_show_in_output() {
    use std::io::Write;
    let env = Env::new();
    let app = env.json(&["app", "create", "--name", "pki"]);
    let app_id = app["id"].as_str().unwrap();
    let alert = env.json(&["alert", "create", "--app", app_id, "--type", "issuance", "--name", "sec"]);
    let alert_id = alert["id"].as_str().unwrap();

    let slack_url = "https://hooks.slack.com/services/T000/B000/SLACKPATHSECRET";
    let slack = env.json(&["channel", "create", "--alert", alert_id, "--url", slack_url]);
    assert_eq!(slack["url"], "https://hooks.slack.com/services/***");

    let secret_file = env.path("secret.txt");
    std::fs::write(&secret_file, "file-secret-0123456789abcdef0123456789\n").unwrap();
    let basic = env.json(&[
        "channel",
        "create",
        "--alert",
        alert_id,
        "--url",
        "https://bob:hunter2@receiver.example/hook?token=QUERYSECRET",
        "--secret-file",
        secret_file.to_str().unwrap(),
        "--no-verify",
    ]);
    assert_eq!(basic["url"], "https://***:***@receiver.example/hook?token=***");
    assert_eq!(basic["hasSecret"], true);

    let mut child = env
        .command()
        .args(["--json", "channel", "create", "--alert", alert_id, "--kind", "pagerduty", "--routing-key-file", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"deadbeefdeadbeefcafef00dcafef00d\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // Every way of looking at channels: nothing secret in any of it.
    let mut seen = String::new();
    for args in [
        vec!["--json", "channel", "list"],
        vec!["channel", "list"],
        vec!["--json", "channel", "show", slack["id"].as_str().unwrap()],
        vec!["channel", "show", basic["id"].as_str().unwrap()],
    ] {
        let out = env.run(&args);
        assert!(out.status.success(), "{args:?}");
        seen.push_str(&String::from_utf8_lossy(&out.stdout));
        seen.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    let serve = crate::support::Serve::start(&env).await;
    for path in [format!("/v1/alerts/{alert_id}/channels"), format!("/v1/channels/{}", slack["id"].as_str().unwrap())] {
        seen.push_str(&serve.http().get(serve.url(&path)).send().await.unwrap().text().await.unwrap());
    }
    serve.terminate().await;
    for secret in ["SLACKPATHSECRET", "hunter2", "QUERYSECRET", "file-secret", "deadbeefdeadbeefcafef00dcafef00d"] {
        assert!(!seen.contains(secret), "{secret} was shown:\n{seen}");
    }
    assert!(seen.contains("hooks.slack.com/services/***"), "{seen}");

    // rotate-secret takes the new secret from a file too.
    let next = env.path("next.txt");
    std::fs::write(&next, "rotated-secret-0123456789abcdef01234\n").unwrap();
    let rotated =
        env.json(&["channel", "rotate-secret", basic["id"].as_str().unwrap(), "--secret-file", next.to_str().unwrap()]);
    assert_eq!(rotated["hasSecret"], true);
    let out = env.run(&["channel", "rotate-secret", basic["id"].as_str().unwrap()]);
    assert_eq!(failure(&out).0, 2, "neither --secret nor --secret-file");

    // A refused URL is named, redacted, in the error; both a value and a file is refused.
    let out = env.run(&["channel", "create", "--alert", alert_id, "--url", "https://bob:hunter2@exa mple.com/"]);
    let (code, stderr) = failure(&out);
    assert_eq!(code, 2);
    assert!(stderr.contains("url") && !stderr.contains("hunter2"), "{stderr}");
    let create = |extra: &[&str]| {
        let mut args = vec!["channel", "create", "--alert", alert_id, "--url", "https://x.example/"];
        args.extend_from_slice(extra);
        env.run(&args)
    };
    assert_eq!(failure(&create(&["--secret", "a", "--secret-file", "-"])).0, 2);
    let (code, stderr) = failure(&create(&["--secret-file", "/nonexistent/secret"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--secret-file: cannot read /nonexistent/secret"), "{stderr}");
}

/// Issue 18: the shipped example is accepted as it is; `config defaults` prints it;
/// `config check` shows what is in effect without secrets, and names a bad key.
#[test]
fn config_check_and_defaults() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../certhook.example.toml");
    let mut env = Env::new();
    let out = env.command().args(["config", "defaults"]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), std::fs::read_to_string(example).unwrap());
    let out = env.command().args(["--config", example, "config", "check"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let shown = String::from_utf8(out.stdout).unwrap();
    // The environment (this test's database) wins over the file, as everywhere.
    assert!(shown.contains(&format!("database_url = \"{}\"", env.database_url)), "{shown}");
    assert!(shown.contains("max_attempts = 10") && shown.contains("[delivery]"), "{shown}");
    env.set("CERTHOOK_ADMIN_TOKEN", "check-admin-token-0123456789abcdefghij");
    env.set("CERTHOOK_DELIVERY__MAX_ATTEMPTS", "4");
    let json = env.json(&["config", "check"]);
    assert_eq!(json["delivery"]["max_attempts"], 4);
    assert_eq!(json["admin_token"], "(set; not shown)");
    assert!(!json.to_string().contains("check-admin-token"));
    std::fs::write(env.path("bad.toml"), "[delivery]\nbackoff_factor = 0.5\n").unwrap();
    let (code, err) = failure(&env.run(&["--config", env.path("bad.toml").to_str().unwrap(), "config", "check"]));
    assert_eq!(code, 2);
    assert!(err.contains("delivery.backoff_factor"), "{err}");
}

/// Issue 18: the README's plain-SQL insert for SQLite older than 3.42, run as written with
/// the system's `sqlite3` (Debian 12 ships 3.40), is picked up and fanned out.
#[test]
fn the_readmes_insert_for_an_older_sqlite3_works_with_the_system_one() {
    if std::process::Command::new("sqlite3").arg("--version").output().is_err() {
        assert!(std::env::var("CI").is_err(), "CI installs sqlite3");
        eprintln!("SKIPPED the_readmes_insert_for_an_older_sqlite3_works_with_the_system_one: no sqlite3");
        return;
    }
    let readme = include_str!("../../README.md");
    let from = readme.find("**SQLite older than 3.42**").expect("the README's section");
    let block = &readme[from..];
    let sql = block.split("```sql\n").nth(1).unwrap().split("```").next().unwrap();
    let env = Env::new();
    let app = env.json(&["app", "create", "--name", "pki"])["id"].as_str().unwrap().to_string();
    let file = env.database_url.strip_prefix("sqlite://").unwrap();
    let out =
        std::process::Command::new("sqlite3").arg(file).arg(sql.replace("<application uuid>", &app)).output().unwrap();
    assert!(out.status.success(), "sqlite3: {}", String::from_utf8_lossy(&out.stderr));
    env.json(&["scan"]); // folds the outbox into the inventory, as serve's fan-out would
    let events = env.json(&["events", "list"]);
    assert_eq!(events[0]["state"], "fanned_out", "{events}");
    let inventory = env.json(&["certificates", "list", "--app", &app]);
    assert_eq!(inventory[0]["commonName"], "api.example.com");
    let created = chrono::DateTime::parse_from_rfc3339(events[0]["createdAt"].as_str().unwrap()).unwrap();
    let age = chrono::Utc::now() - created.with_timezone(&chrono::Utc);
    assert!(age.num_seconds().abs() < 600, "created_at is now in unix milliseconds: {events}");
}

/// Issue 18: shell completions and the manual page come from the command tree itself.
#[test]
fn completions_and_the_manual_page_are_generated() {
    let env = Env::new();
    for (shell, marker) in [("bash", "_certhook()"), ("zsh", "#compdef certhook"), ("fish", "complete -c certhook")] {
        let out = env.command().args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(script.contains(marker) && script.contains("certificates"), "{shell}: {script:.200}");
    }
    let out = env.command().arg("man").output().unwrap();
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.contains(".TH certhook 1") && page.contains("completions"), "{page:.300}");
    let (code, _) = failure(&env.run(&["completions", "powershell-9"]));
    assert_eq!(code, 2);
}

fn stdout(out: &std::process::Output) -> String {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Issue 18: lists are tables with headers, `show` prints every field, an empty list
/// says so on stderr, names are unique, and a replay that matches nothing says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn human_output_is_tables_and_a_replay_that_replays_nothing_says_why() {
    use std::time::Duration;

    use certhook_core::event::ChannelState;

    let env = Env::fast();
    let app = env.json(&["app", "create", "--name", "pki"]);
    let app_id = app["id"].as_str().unwrap();
    let (code, err) = failure(&env.run(&["app", "create", "--name", "pki"]));
    assert_eq!(code, 2);
    assert!(err.contains("--name: an application named \"pki\" already exists") && err.contains(app_id), "{err}");
    assert_eq!(env.json(&["app", "list"]).as_array().unwrap().len(), 1, "nothing stored");
    let (code, err) = failure(&env.run(&["app", "create", "--name", "  "]));
    assert_eq!(code, 2);
    assert!(err.contains("--name: must not be empty"), "{err}");

    let alert = env.json(&["alert", "create", "--app", app_id, "--type", "issuance", "--name", "life"]);
    let channel = env.channel(alert["id"].as_str().unwrap(), "http://127.0.0.1:9/hook", None);
    env.json(&["channel", "pause", &channel]);

    let list = stdout(&env.run(&["channel", "list"]));
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 2, "a header and one row: {list}");
    assert!(lines[0].starts_with("ID ") && lines[0].contains("STATE") && lines[0].contains("URL"), "{list}");
    assert_eq!(lines[0].find("STATE"), lines[1].find("paused"), "aligned under its header: {list}");
    assert!(lines[1].starts_with(&channel), "{list}");

    // `show` has a line for every member of the JSON object (tls in three).
    let show = stdout(&env.run(&["channel", "show", &channel]));
    let json = env.json(&["channel", "show", &channel]);
    let labels = [
        ("id", "id:"),
        ("alertId", "alert:"),
        ("kind", "kind:"),
        ("url", "url:"),
        ("state", "state:"),
        ("contentType", "content type:"),
        ("hasSecret", "signed:"),
        ("rateLimit", "rate limit:"),
        ("tls", "trusted CAs:"),
        ("lastSuccessAt", "last success:"),
        ("lastFailureAt", "last failure:"),
        ("failingSince", "failing since:"),
        ("createdAt", "created:"),
    ];
    for key in json.as_object().unwrap().keys() {
        let (_, label) = labels.iter().find(|(k, _)| k == key).unwrap_or_else(|| panic!("`show` lacks {key}"));
        assert!(show.lines().any(|l| l.starts_with(label)), "{label} in {show}");
    }
    assert!(show.lines().any(|l| l.starts_with("state:") && l.ends_with("paused")), "{show}");

    let empty = env.run(&["dlq", "list"]);
    assert!(stdout(&empty).is_empty());
    assert!(String::from_utf8_lossy(&empty.stderr).contains("no dead letters"));
    // A filter that names nothing is the reason a list is empty: said, exit 2.
    let nobody = "01a20ee0-0000-7000-8000-000000000000";
    for (args, what) in [
        (vec!["dlq", "list", "--channel", nobody], "unknown channel"),
        (vec!["deliveries", "list", "--channel", nobody], "unknown channel"),
        (vec!["dlq", "replay", "--all", "--channel", nobody], "unknown channel"),
        (vec!["events", "list", "--app", nobody], "unknown application"),
        (vec!["alert", "list", "--app", nobody], "unknown application"),
        (vec!["channel", "list", "--alert", nobody], "unknown alert"),
    ] {
        let (code, err) = failure(&env.run(&args));
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(what) && err.contains(nobody), "{args:?}: {err}");
    }
    let (code, err) = failure(&env.run(&["alert", "list", "--app", "not-a-uuid"]));
    assert_eq!(code, 2);
    assert!(err.contains("--app: application id 'not-a-uuid'"), "names the flag: {err}");

    // A disabled channel (as after failing for `disable_after`): fan-out dead-letters
    // what it would have got.
    let store = certhook_store::Store::connect(&env.database_url).await.unwrap();
    store.set_channel_state(channel.parse().unwrap(), ChannelState::Disabled).await.unwrap();
    let serve = crate::support::Serve::start(&env).await;
    serve.enqueue(&crate::support::event(app_id, "1")).await;
    serve.wait_status(Duration::from_secs(20), |s| s["deliveries"]["dead"] == 1).await;
    serve.terminate().await;

    let dead = stdout(&env.run(&["dlq", "list"]));
    assert!(dead.lines().next().unwrap().starts_with("ID "), "{dead}");
    assert!(dead.contains("channel_disabled"), "{dead}");
    let out = env.run(&["dlq", "replay", "--all"]);
    assert_eq!(stdout(&out), "replayed 0\n", "stdout stays the count and the ids");
    let why = String::from_utf8_lossy(&out.stderr);
    assert!(
        why.contains(&format!(
            "not replayed: dead letter of channel {channel}, which is disabled: enable it first (certhook channel enable {channel})"
        )),
        "{why}"
    );
    let json = env.json(&["dlq", "replay", "--all", "--dry-run"]);
    assert_eq!(json["count"], 0);
    assert_eq!(json["skipped"], serde_json::json!([{"channelId": channel, "channelState": "disabled", "count": 1}]));
    env.json(&["channel", "enable", &channel]);
    let replay = env.json(&["dlq", "replay", "--all"]);
    assert_eq!((replay["count"].as_u64(), replay.get("skipped")), (Some(1), None), "{replay}");
}

/// A password in the database URL stays out of `--help` (which shows the variable's name)
/// and `config check` (which shows where, not the secret); `listen` on a taken port says
/// which port and what to do.
#[test]
fn a_database_password_is_never_shown_and_a_taken_port_is_named() {
    let mut env = Env::new();
    env.set("CERTHOOK_DATABASE_URL", "postgres://certhook:hunter2secret@127.0.0.1:1/certhook");
    let help = stdout(&env.run(&["status", "--help"]));
    assert!(help.contains("CERTHOOK_DATABASE_URL") && !help.contains("hunter2secret"), "{help}");
    let shown = stdout(&env.run(&["config", "check"]));
    assert!(shown.contains("database_url = \"postgres://certhook:***@127.0.0.1:1/certhook\""), "{shown}");
    assert!(!shown.contains("hunter2secret"), "{shown}");
    assert!(shown.contains("retention = \"7d\""), "durations as the example writes them: {shown}");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (code, err) = failure(&Env::new().run_within(&["listen", "--port", &port], std::time::Duration::from_secs(30)));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("--port {port}")) && err.contains("--port 0"), "{err}");
}
