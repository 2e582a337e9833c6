//! The console in a real browser (Debian's headless Chromium over WebDriver): sign in with
//! the token, open every page of a `serve` with data, pause and resume a channel, replay a
//! dead letter and see it delivered, and follow a delivered event's `viewUrl` to its
//! application's certificates. Each page is saved under `target/console-screenshots/`.

use std::time::Duration;

use crate::receiver::{Receiver, Reply};
use crate::support::{Env, Serve, event};
use crate::webdriver::Browser;

const TOKEN: &str = "browser-admin-token-0123456789abcdefghij";
const WAIT: Duration = Duration::from_secs(30);

/// Waits until the page's HTML contains `text`.
async fn wait_for_text(browser: &Browser, text: &str) -> String {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let html = browser.source().await;
        if html.contains(text) {
            return html;
        }
        assert!(std::time::Instant::now() < deadline, "the page never showed {text:?}: {html}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_signs_in_pauses_replays_and_follows_view_url_in_a_real_browser() {
    let Some(browser) = Browser::start().await else { return };
    let receiver = Receiver::start(Reply::Status(500)).await;
    let mut env = Env::fast();
    // A fixed port, so the default public_url (and so metadata.viewUrl) is this server's.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    env.set("CERTHOOK_LISTEN", &format!("127.0.0.1:{port}"));
    env.set("CERTHOOK_ADMIN_TOKEN", TOKEN);
    env.set("CERTHOOK_DELIVERY__MAX_ATTEMPTS", "1");
    let (app, channel) = env.webhook("issuance", &receiver.url("/hook"), None);
    let serve = Serve::start(&env).await;
    let post = |n: &str| serve.http().post(serve.url("/v1/events")).bearer_auth(TOKEN).json(&event(&app, n)).send();
    assert_eq!(post("1").await.unwrap().status(), 202);
    // Answered 500 once: a dead letter (max_attempts 1), once the outcome is written.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let dead: serde_json::Value = serve
            .http()
            .get(serve.url("/v1/dead-letters"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if !dead.as_array().unwrap().is_empty() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no dead letter");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    receiver.set_default(Reply::Status(204));
    assert_eq!(post("2").await.unwrap().status(), 202);
    let delivered = receiver.wait_for(2, WAIT).await;
    let view_url = delivered[1].json()["data"]["metadata"]["viewUrl"].as_str().unwrap().to_string();

    // Sign in: the console asks for the token once.
    browser.go(&serve.url("/")).await;
    assert!(browser.url().await.contains("/login"), "sent to sign in");
    browser.screenshot("login").await;
    browser.find("#token").await.send_keys(TOKEN).await;
    browser.find("button[type=submit]").await.click().await;
    wait_for_text(&browser, "Queue").await;
    browser.screenshot("overview").await;

    // Applications → alerts → channels.
    browser.find("nav a[href='/applications']").await.click().await;
    wait_for_text(&browser, "pki").await;
    browser.screenshot("applications").await;
    browser.go(&serve.url(&format!("/applications/{app}"))).await;
    wait_for_text(&browser, &channel).await;
    browser.screenshot("application").await;

    // Pause, confirm, see it; then resume.
    browser.find(&format!("a[href='/channels/{channel}/pause']")).await.click().await;
    wait_for_text(&browser, "holds the channel").await;
    browser.screenshot("channel-pause-confirm").await;
    browser.find("button.primary").await.click().await;
    wait_for_text(&browser, "now paused").await;
    browser.screenshot("channel-paused").await;
    browser.go(&serve.url(&format!("/channels/{channel}/resume"))).await;
    browser.find("button.primary").await.click().await;
    wait_for_text(&browser, "now active").await;

    // Deliveries and one delivery's attempts.
    browser.go(&serve.url("/deliveries")).await;
    wait_for_text(&browser, "issuance").await;
    browser.screenshot("deliveries").await;
    browser.find("tbody td a").await.click().await;
    wait_for_text(&browser, "Attempts").await;
    browser.screenshot("delivery").await;

    // Replay the dead letter: a count, then confirm; the receiver gets it.
    browser.go(&serve.url("/dead-letters")).await;
    wait_for_text(&browser, "Replay every dead letter").await;
    browser.screenshot("dead-letters").await;
    browser.find("form[action='/dead-letters/replay'] button").await.click().await;
    wait_for_text(&browser, "would go back in the queue").await;
    browser.screenshot("replay-confirm").await;
    browser.find("button.primary").await.click().await;
    wait_for_text(&browser, "Replayed 1 dead letter").await;
    let got = receiver.wait_for(3, WAIT).await;
    assert_eq!(got[2].json()["data"]["certificates"][0]["serialNumber"], "1", "the dead letter was delivered");

    // A delivered event's viewUrl opens its application's certificates.
    assert!(view_url.starts_with(&serve.url("/applications/")), "{view_url}");
    browser.go(&view_url).await;
    let page = wait_for_text(&browser, "host-2.example.com").await;
    assert!(page.contains("host-1.example.com"), "the whole inventory");
    browser.screenshot("certificates").await;
    let title = browser.find("h1").await.text().await;
    let name = env.json(&["app", "show", &app])["name"].as_str().unwrap().to_string();
    assert_eq!(title, format!("Certificates of {name}"));

    // Readable at a phone's width.
    browser.resize(390, 844).await;
    browser.go(&serve.url("/")).await;
    wait_for_text(&browser, "Queue").await;
    browser.screenshot("overview-phone").await;
    serve.terminate().await;
}
