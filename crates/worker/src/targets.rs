//! The worker's view of channels: where to send, how to sign, how fast, over which TLS
//! settings; refreshed from the store every `poll_interval` so CLI changes (pause,
//! rotate-secret, update, …) take effect.

use std::collections::HashMap;
use std::sync::Arc;

use certhook_core::rate_limit::RateLimit;
use certhook_core::sign::SigningKey;
use certhook_store::{ChannelTarget, Store, StoreError};
use uuid::Uuid;

/// A channel ready to send to: its row and its prepared signing keys.
#[derive(Debug)]
pub struct Target {
    /// The channel as stored.
    pub channel: ChannelTarget,
    /// Signing keys, newest first.
    pub keys: Vec<SigningKey>,
}

/// Every live channel by id.
#[derive(Debug, Default)]
pub struct Targets {
    by_id: HashMap<Uuid, Arc<Target>>,
    /// What each rate-limited channel may hold claimed, worked out once per load rather
    /// than on every refill.
    limited: HashMap<Uuid, usize>,
}

impl Target {
    /// The channel with its signing keys prepared.
    pub fn new(channel: ChannelTarget) -> Target {
        let keys = channel
            .secrets
            .iter()
            .filter_map(|s| match SigningKey::new(s) {
                Ok(k) => Some(k),
                Err(e) => {
                    tracing::warn!(channel_id = %channel.id, error = %e, "unusable signing secret skipped");
                    None
                }
            })
            .collect();
        Target { channel, keys }
    }
}

impl Targets {
    /// Loads every live channel.
    pub async fn load(store: &Store) -> Result<Targets, StoreError> {
        let by_id = store
            .channel_targets()
            .await?
            .into_iter()
            .map(|channel| (channel.id, Arc::new(Target::new(channel))))
            .collect::<HashMap<_, _>>();
        let limited = by_id
            .iter()
            .filter_map(|(id, t)| t.channel.rate_limit.map(|l| (*id, crate::budget::limited_allowance(l.interval()))))
            .collect();
        Ok(Targets { by_id, limited })
    }

    /// The channel, if it is live.
    pub fn get(&self, id: &Uuid) -> Option<Arc<Target>> {
        self.by_id.get(id).cloned()
    }

    /// Whether the channel is live.
    pub fn contains(&self, id: &Uuid) -> bool {
        self.by_id.contains_key(id)
    }

    /// The rate-limited channels, with what each may hold claimed.
    pub fn limited(&self) -> &HashMap<Uuid, usize> {
        &self.limited
    }

    /// Every live channel's rate limit, if it has one.
    pub fn rate_limits(&self) -> impl Iterator<Item = (Uuid, Option<RateLimit>)> + '_ {
        self.by_id.iter().map(|(id, t)| (*id, t.channel.rate_limit))
    }
}
