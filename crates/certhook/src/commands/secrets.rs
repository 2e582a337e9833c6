//! `certhook secrets rewrap`: every channel secret re-sealed under `secret_key`.

use certhook_core::config::Config;

use super::Output;

/// `certhook secrets rewrap [--dry-run]`
pub async fn rewrap(config: &Config, dry_run: bool, out: &Output) -> anyhow::Result<()> {
    let store = crate::database::open(config).await?;
    let count = store.rewrap_secrets(dry_run).await?;
    let key = config.keyring().ok().and_then(|k| k.current_id().map(str::to_string));
    let report = serde_json::json!({"count": count, "dryRun": dry_run, "keyId": key});
    out.emit(&report, |_| {
        let under = key.as_deref().map_or("as plain text (no secret_key)".to_string(), |k| format!("under key {k}"));
        let verb = if dry_run { "would re-seal" } else { "re-sealed" };
        vec![format!("{verb} the secrets of {count} channel(s) {under}")]
    })
}
