//! `certhook listen`: a local development receiver. It prints every CloudEvent it gets,
//! says whether each signature scheme verifies, answers 401 when one does not, and for a
//! verification event prints the exact `certhook channel activate` command.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use certhook_verify::{verify_infisical, verify_standard_webhooks};

/// How far a signature's timestamp may be from now.
const TOLERANCE_SECS: u64 = 300;

struct Listener {
    secret: Option<String>,
    signature_header: String,
    /// Print the body exactly as received rather than indented (whose members a JSON
    /// value re-sorts).
    raw: bool,
}

/// The request headers a receiver sees and the wire format describes, printed with each event.
const SHOWN_HEADERS: [&str; 5] = ["content-type", "user-agent", "webhook-id", "webhook-timestamp", "webhook-signature"];

/// `certhook listen`: the secret from `--secret` or `--secret-file`, then [`listen`].
pub async fn run(args: &crate::cli::ListenArgs, config: &certhook_core::config::Config) -> anyhow::Result<()> {
    let secret = crate::secret_input::resolve(args.secret.as_deref(), args.secret_file.as_deref(), "--secret-file")?;
    let listener = Listener { secret, signature_header: config.signature_header.clone(), raw: args.raw };
    listen(args.port, listener).await
}

/// Serves on 127.0.0.1:`port` until SIGINT.
async fn listen(port: u16, state: Listener) -> anyhow::Result<()> {
    if let Some(s) = &state.secret {
        certhook_core::sign::validate_secret(s).map_err(|e| crate::exit::BadInput(e.to_string()))?;
    }
    let state = Arc::new(state);
    let app = Router::new().fallback(receive).with_state(state);
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = tokio::net::TcpListener::bind(address).await.map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
            ": another program has it; pick another --port, or --port 0 for a free one"
        } else {
            ""
        };
        crate::exit::BadInput(format!("--port {port}: cannot listen on {address} ({e}){hint}"))
    })?;
    let addr = listener.local_addr()?;
    println!("listening on http://{addr} (Ctrl-C to stop)");
    std::io::stdout().flush()?;
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The verdicts of both schemes, or why they were not checked.
fn check(state: &Listener, headers: &HeaderMap, body: &[u8]) -> (Vec<String>, bool) {
    let Some(secret) = &state.secret else {
        return (vec!["signatures: not checked (start listen with --secret to check them)".into()], true);
    };
    let secrets = [secret.as_str()];
    let tolerance = std::time::Duration::from_secs(TOLERANCE_SECS);
    let now = chrono::Utc::now();
    let mut lines = Vec::new();
    let mut ok = true;
    let infisical = match header(headers, &state.signature_header) {
        Some(h) => verify_infisical(h, body, &secrets, now.timestamp_millis(), tolerance).map_err(|e| e.to_string()),
        None => Err("header missing".into()),
    };
    let standard = match (
        header(headers, "webhook-id"),
        header(headers, "webhook-timestamp"),
        header(headers, "webhook-signature"),
    ) {
        (Some(id), Some(ts), Some(sig)) => {
            verify_standard_webhooks(id, ts, sig, body, &secrets, now.timestamp(), tolerance).map_err(|e| e.to_string())
        }
        _ => Err("headers missing".into()),
    };
    for (name, result) in [(state.signature_header.as_str(), infisical), ("webhook-signature", standard)] {
        match result {
            Ok(()) => lines.push(format!("  {name}: verified")),
            Err(e) => {
                ok = false;
                lines.push(format!("  {name}: FAILED ({e})"));
            }
        }
    }
    (lines, ok)
}

async fn receive(State(state): State<Arc<Listener>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let (mut lines, ok) = check(&state, &headers, &body);
    let mut out = Vec::new();
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(ce) => {
            out.push(format!(
                "received {} id={} subject={}",
                ce["type"].as_str().unwrap_or("?"),
                ce["id"].as_str().unwrap_or("?"),
                ce["subject"].as_str().unwrap_or("?")
            ));
            out.append(&mut lines);
            if ok && ce["type"].as_str().is_some_and(|t| t.ends_with(".webhook.verification")) {
                let token = ce["data"]["verificationToken"].as_str().unwrap_or("?");
                let channel = ce["data"]["channelId"].as_str().unwrap_or("?");
                out.push(format!("verification token: {token}"));
                out.push(format!("activate with: certhook channel activate {channel} --token {token}"));
            }
            out.push("  headers:".into());
            for name in SHOWN_HEADERS.iter().copied().chain([state.signature_header.as_str()]) {
                if let Some(value) = header(&headers, name) {
                    out.push(format!("    {name}: {value}"));
                }
            }
            out.push(if state.raw {
                String::from_utf8_lossy(&body).into_owned()
            } else {
                serde_json::to_string_pretty(&ce).unwrap_or_default()
            });
        }
        Err(_) => {
            out.push(format!("received {} bytes that are not JSON", body.len()));
            out.append(&mut lines);
        }
    }
    if !ok {
        out.push("REJECTED: answered 401".into());
    }
    let mut stdout = std::io::stdout().lock();
    for line in out {
        let _ = writeln!(stdout, "{line}");
    }
    let _ = stdout.flush();
    if ok { StatusCode::NO_CONTENT } else { StatusCode::UNAUTHORIZED }
}
