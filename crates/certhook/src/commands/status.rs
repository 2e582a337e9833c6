//! `certhook status` and `certhook migrate`: the queue at a glance, and the schema brought
//! up to date.

use certhook_core::config::Config;
use certhook_store::Store;

use super::Output;

/// `certhook migrate`: connecting applies pending migrations.
pub async fn migrate(config: &Config, out: &Output) -> anyhow::Result<()> {
    let store = Store::connect(&config.database_url).await?;
    store.close().await;
    out.emit(&serde_json::json!({"migrated": true}), |_| vec!["migrations applied".to_string()])
}

/// `certhook status`
pub async fn status(store: &Store, out: &Output) -> anyhow::Result<()> {
    let s = store.status().await?;
    out.emit(&s, |s| {
        let d = &s.deliveries;
        let c = &s.channels;
        vec![
            format!("events          {}", s.events.total),
            format!(
                "deliveries      pending={} leased={} retrying={} held={} delivered={} dead={}",
                d.pending, d.leased, d.retrying, d.held, d.delivered, d.dead
            ),
            format!("oldest pending  {:.1}s", s.oldest_pending_age_seconds),
            format!(
                "channels        pending_verification={} active={} paused={} disabled={}",
                c.pending_verification, c.active, c.paused, c.disabled
            ),
        ]
    })
}
