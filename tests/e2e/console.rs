//! The operator console's routes against a real `serve`: sign-in with the admin token and
//! its session cookie, every page with data, channel actions and dead-letter replay with
//! their CSRF tokens, refusals, and no secret on any page.

use std::time::Duration;

use crate::receiver::{Receiver, Reply};
use crate::support::{Env, Serve, event};

const TOKEN: &str = "console-admin-token-0123456789abcdefghij";
const SECRET: &str = "console-channel-secret-0123456789abcdef";
const WAIT: Duration = Duration::from_secs(20);

/// A client that shows redirects instead of following them.
fn browser() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// A form body, as a browser posts it.
trait FormPairs {
    fn form_pairs(self, pairs: &[(&str, &str)]) -> Self;
}

impl FormPairs for reqwest::RequestBuilder {
    fn form_pairs(self, pairs: &[(&str, &str)]) -> Self {
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
        self.header("content-type", "application/x-www-form-urlencoded").body(body)
    }
}

/// The CSRF token of the first form on a page.
fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("the page has a form with a CSRF token") + 19;
    html[at..].split('"').next().unwrap().to_string()
}

struct Visit<'a> {
    serve: &'a Serve,
    http: reqwest::Client,
    cookie: String,
}

impl Visit<'_> {
    async fn get(&self, path: &str) -> (u16, String) {
        let resp = self.http.get(self.serve.url(path)).header("cookie", &self.cookie).send().await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> (u16, String) {
        let resp =
            self.http.post(self.serve.url(path)).header("cookie", &self.cookie).form_pairs(form).send().await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_signs_in_shows_every_page_and_acts_with_csrf_tokens() {
    let receiver = Receiver::start(Reply::Status(500)).await;
    let mut env = Env::fast();
    env.set("CERTHOOK_ADMIN_TOKEN", TOKEN);
    env.set("CERTHOOK_DELIVERY__MAX_ATTEMPTS", "1");
    let (app, channel) = env.webhook("issuance", &receiver.url("/hook"), Some(SECRET));
    let serve = Serve::start(&env).await;
    let api = |path: &str| serve.http().get(serve.url(path)).bearer_auth(TOKEN);
    let resp =
        serve.http().post(serve.url("/v1/events")).bearer_auth(TOKEN).json(&event(&app, "1")).send().await.unwrap();
    assert_eq!(resp.status(), 202);
    let deadline = std::time::Instant::now() + WAIT;
    let dead = loop {
        let list: serde_json::Value = api("/v1/dead-letters").send().await.unwrap().json().await.unwrap();
        if let Some(d) = list.as_array().unwrap().first() {
            break d["id"].as_str().unwrap().to_string();
        }
        assert!(std::time::Instant::now() < deadline, "no dead letter");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // Signing in.
    let http = browser();
    let resp = http.get(serve.url("/deliveries?status=dead")).send().await.unwrap();
    assert_eq!(resp.status(), 303, "no session: to the sign-in page");
    assert_eq!(resp.headers()["location"], "/login?next=%2Fdeliveries%3Fstatus%3Ddead");
    let resp = http.post(serve.url("/channels/x/pause")).form_pairs(&[("csrf", "x")]).send().await.unwrap();
    assert_eq!(resp.status(), 403, "no session: no action");
    let resp =
        http.post(serve.url("/login")).form_pairs(&[("token", "wrong-token"), ("next", "/")]).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.text().await.unwrap().contains("That is not the admin token"));
    let resp = http
        .post(serve.url("/login"))
        .form_pairs(&[("token", TOKEN), ("next", "/\t/evil.test/")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/", "never sent to another site after signing in");
    for (name, value) in
        [("x-frame-options", "DENY"), ("x-content-type-options", "nosniff"), ("cache-control", "no-store")]
    {
        assert_eq!(resp.headers()[name], value, "{name}");
    }
    assert!(resp.headers()["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
    let set_cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    let visit = Visit { serve: &serve, http: http.clone(), cookie };

    // Every page, with data; no secret anywhere. The inventory has a revoked certificate and
    // one expiring within 30 days as well.
    let mut revoked = event(&app, "9");
    revoked["type"] = "revocation".into();
    // A renewal: it fills the inventory but goes to no channel (the alert is issuance only).
    let mut soon = event(&app, "8");
    soon["type"] = "renewal".into();
    soon["certificate"]["notAfter"] = (chrono::Utc::now() + chrono::Duration::days(10)).to_rfc3339().into();
    for e in [revoked, soon] {
        let resp = serve.http().post(serve.url("/v1/events")).bearer_auth(TOKEN).json(&e).send().await.unwrap();
        assert_eq!(resp.status(), 202);
    }
    let alert = env.json(&["alert", "list"])[0]["name"].as_str().unwrap().to_string();
    for (path, expect) in [
        ("/".to_string(), "Queue"),
        ("/applications".to_string(), "pki"),
        (format!("/applications/{app}"), alert.as_str()),
        (format!("/applications/{app}/certificates"), "host-1.example.com"),
        ("/deliveries".to_string(), "issuance"),
        ("/deliveries?status=dead".to_string(), dead.as_str()),
        (format!("/deliveries/{dead}"), "Attempts"),
        ("/dead-letters".to_string(), dead.as_str()),
        (format!("/channels/{channel}/pause"), "holds the channel"),
    ] {
        let (status, html) = visit.get(&path).await;
        assert_eq!(status, 200, "{path}: {html}");
        assert!(html.contains(expect), "{path} lacks {expect:?}");
        assert!(!html.contains(SECRET), "{path} shows the channel secret");
        assert!(!html.contains(TOKEN), "{path} shows the admin token");
    }
    let (status, _) = visit.get("/deliveries?status=nonsense").await;
    assert_eq!(status, 400, "a bad filter is refused, not ignored");
    let (status, _) = visit.get("/deliveries/00000000-0000-0000-0000-000000000000").await;
    assert_eq!(status, 404);
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (_, inventory) = visit.get(&format!("/applications/{app}/certificates")).await;
        if inventory.contains(">revoked<") && inventory.contains(">expiring<") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "revoked and expiring are not marked: {inventory}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A channel action: refused without the page's CSRF token, done with it.
    let (_, confirm) = visit.get(&format!("/channels/{channel}/pause")).await;
    let csrf = csrf_of(&confirm);
    let (status, _) = visit.post(&format!("/channels/{channel}/pause"), &[("csrf", "forged")]).await;
    assert_eq!(status, 403);
    let cross_site = http
        .post(serve.url(&format!("/channels/{channel}/pause")))
        .header("cookie", &visit.cookie)
        .header("origin", "http://evil.test")
        .form_pairs(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), 403, "a cross-site form is refused even with the token");
    let shown: serde_json::Value = api(&format!("/v1/channels/{channel}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(shown["state"], "active", "nothing refused changed anything");
    let (status, done) = visit.post(&format!("/channels/{channel}/pause"), &[("csrf", &csrf)]).await;
    assert_eq!(status, 200);
    assert!(done.contains("now paused"), "{done}");
    let (status, done) = visit.post(&format!("/channels/{channel}/resume"), &[("csrf", &csrf)]).await;
    assert!(status == 200 && done.contains("now active"), "{done}");
    let (status, tested) = visit.post(&format!("/channels/{channel}/test"), &[("csrf", &csrf)]).await;
    assert!(status == 200 && tested.contains("Test sent: HTTP 500"), "{tested}");
    let test_event = receiver.received().last().unwrap().json();
    assert_eq!(test_event["type"], "com.infisical.pki.certificate.webhook.test");
    let (status, _) = visit.post(&format!("/channels/{channel}/test"), &[]).await;
    assert_eq!(status, 403, "no token, no test");

    // Replay: a count first, then the replay once confirmed.
    receiver.set_default(Reply::Status(204));
    let (status, _) = visit.post("/dead-letters/replay", &[("csrf", "forged"), ("confirm", "yes")]).await;
    assert_eq!(status, 403);
    let (status, count) = visit.post("/dead-letters/replay", &[("csrf", &csrf)]).await;
    assert_eq!(status, 200);
    assert!(count.contains("<strong>1</strong> dead letter would go back"), "{count}");
    let still: serde_json::Value = api("/v1/dead-letters").send().await.unwrap().json().await.unwrap();
    assert_eq!(still.as_array().unwrap().len(), 1, "the count replays nothing");
    let until = count.split("name=\"until\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let (status, _) = visit
        .post("/dead-letters/replay", &[("csrf", &csrf), ("confirm", "yes"), ("until", "2000-01-01T00:00:00Z")])
        .await;
    assert_eq!(status, 303);
    let still: serde_json::Value = api("/v1/dead-letters").send().await.unwrap().json().await.unwrap();
    assert_eq!(still.as_array().unwrap().len(), 1, "a replay confirmed takes only what had died by its count");
    let resp = http
        .post(serve.url("/dead-letters/replay"))
        .header("cookie", &visit.cookie)
        .form_pairs(&[("csrf", &csrf), ("confirm", "yes"), ("until", &until)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303, "then back to the list: a reload replays nothing");
    assert_eq!(resp.headers()["location"], "/dead-letters?replayed=1");
    let (_, done) = visit.get("/dead-letters?replayed=1").await;
    assert!(done.contains("Replayed 1 dead letter"), "{done}");
    let deadline = std::time::Instant::now() + WAIT;
    // Event 1 reached the receiver once when it failed; the replay makes it twice.
    let sent_one =
        || receiver.received().iter().filter(|r| r.json()["data"]["certificates"][0]["serialNumber"] == "1").count();
    while sent_one() < 2 {
        assert!(std::time::Instant::now() < deadline, "the replayed delivery never went out");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Signing out ends the session.
    let (status, _) = visit.post("/logout", &[("csrf", "forged")]).await;
    assert_eq!(status, 403);
    let (status, _) = visit.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(status, 303);
    let (status, _) = visit.get("/").await;
    assert_eq!(status, 303, "the old cookie no longer opens the console");
    serve.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_the_loopback_console_opens_a_session_on_the_first_visit() {
    let mut env = Env::fast();
    env.set("CERTHOOK_ALLOWED_HOSTS", r#"["certhook.pki.internal"]"#);
    let (_, channel) = env.webhook("issuance", "https://receiver.test/hook", None);
    let serve = Serve::start(&env).await;
    let http = browser();
    let resp = http.get(serve.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let html = resp.text().await.unwrap();
    assert!(html.contains("Overview") && !html.contains("Sign out"), "no sign-in without a token");
    let css = http.get(serve.url("/console/assets/console.css")).send().await.unwrap();
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    // A form from the page works; the same form without the session's token does not.
    let visit = Visit { serve: &serve, http, cookie };
    let (_, confirm) = visit.get(&format!("/channels/{channel}/pause")).await;
    let csrf = csrf_of(&confirm);
    let (status, _) = visit.post(&format!("/channels/{channel}/pause"), &[("csrf", "guess")]).await;
    assert_eq!(status, 403);
    let (status, done) = visit.post(&format!("/channels/{channel}/pause"), &[("csrf", &csrf)]).await;
    assert!(status == 200 && done.contains("now paused"), "{done}");
    // Through any other name (a proxy to the loopback listen), no token means no console.
    let proxied = visit
        .http
        .get(serve.url("/"))
        .header("host", "certhook.pki.internal")
        .header("cookie", &visit.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(proxied.status(), 403);
    assert!(proxied.text().await.unwrap().contains("loopback only"));
    serve.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_again_and_enable_from_the_console() {
    let gone = Receiver::start(Reply::Status(410)).await;
    let ok = Receiver::start(Reply::Status(204)).await;
    let env = Env::fast();
    let (app, disabled) = env.webhook("issuance", &gone.url("/gone"), None);
    let alert = env.json(&["channel", "show", &disabled])["alertId"].as_str().unwrap().to_string();
    let active = env.channel(&alert, &ok.url("/ok"), None);
    let serve = Serve::start(&env).await;
    serve.enqueue(&event(&app, "1")).await;
    // The 410 disables its channel.
    let deadline = std::time::Instant::now() + WAIT;
    while env.json(&["channel", "show", &disabled])["state"] != "disabled" {
        assert!(std::time::Instant::now() < deadline, "the 410 did not disable the channel");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let http = browser();
    let resp = http.get(serve.url("/")).send().await.unwrap();
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let visit = Visit { serve: &serve, http, cookie };
    let (_, page) = visit.get(&format!("/applications/{app}")).await;
    assert!(page.contains(&format!("/channels/{disabled}/enable")), "a disabled channel offers enable");
    assert!(page.contains(&format!("/channels/{active}/reverify")), "an active webhook offers verify again");
    let (_, confirm) = visit.get(&format!("/channels/{disabled}/enable")).await;
    let csrf = csrf_of(&confirm);
    let (status, done) = visit.post(&format!("/channels/{disabled}/enable"), &[("csrf", &csrf)]).await;
    assert!(status == 200 && done.contains("now active"), "{done}");
    let (status, done) = visit.post(&format!("/channels/{active}/reverify"), &[("csrf", &csrf)]).await;
    assert!(status == 200 && done.contains("new verification token"), "{done}");
    assert_eq!(env.json(&["channel", "show", &active])["state"], "pending_verification");
    let got = ok.wait_for(2, WAIT).await;
    assert_eq!(got[1].json()["type"], "com.infisical.pki.certificate.webhook.verification");
    let (status, _) = visit.post(&format!("/channels/{active}/enable"), &[("csrf", &csrf)]).await;
    assert_eq!(status, 409, "a state change the channel does not allow is refused with the reason");
    serve.terminate().await;
}
