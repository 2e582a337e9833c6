//! The JSON shapes the CLI (`--json`) and the HTTP API both print: one definition each,
//! so the two cannot drift apart.

use certhook_store::Replayed;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// Event ids in input order (the first event's id again for a repeated idempotency key).
#[derive(Debug, Serialize, ToSchema)]
pub struct Ids {
    /// One per event given.
    pub ids: Vec<Uuid>,
}

/// What a replay or purge did (or, with a dry run, would do).
#[derive(Debug, Serialize, ToSchema)]
pub struct Counted {
    /// How many dead letters.
    pub count: usize,
    /// Which.
    pub ids: Vec<Uuid>,
    /// Replay only: dead letters that matched but stay dead because of their channel
    /// (absent when there are none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
}

impl Counted {
    /// What a purge did: the ids.
    pub fn purged(ids: Vec<Uuid>) -> Self {
        Self { count: ids.len(), ids, skipped: Vec::new() }
    }

    /// Text lines for people: the count, then the ids (why any were left dead goes to
    /// stderr, see [`Skipped::explain`], so stdout stays a count and ids).
    pub fn lines(&self, verb: &str) -> Vec<String> {
        std::iter::once(format!("{verb} {}", self.count)).chain(self.ids.iter().map(Uuid::to_string)).collect()
    }
}

impl From<Replayed> for Counted {
    fn from(r: Replayed) -> Self {
        let skipped = r
            .skipped
            .into_iter()
            .map(|s| Skipped { channel_id: s.channel_id, channel_state: s.why, count: s.count })
            .collect();
        Self { count: r.ids.len(), ids: r.ids, skipped }
    }
}

/// Dead letters of one channel a replay left dead.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Skipped {
    /// The channel.
    pub channel_id: Uuid,
    /// Why: `disabled` or `deleted`.
    pub channel_state: String,
    /// How many of its dead letters matched.
    pub count: u64,
}

impl Skipped {
    /// One line saying what was left and what to do about it.
    pub fn explain(&self) -> String {
        let what = if self.count == 1 { "dead letter".to_string() } else { format!("{} dead letters", self.count) };
        let fix = if self.channel_state == "deleted" {
            String::new()
        } else {
            format!(": enable it first (certhook channel enable {})", self.channel_id)
        };
        format!("not replayed: {what} of channel {}, which is {}{fix}", self.channel_id, self.channel_state)
    }
}

/// What a delete did: the id, and how many waiting deliveries became dead letters.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Deleted {
    /// What was deleted.
    pub id: Uuid,
    /// Always true: a delete that fails is an error instead.
    pub deleted: bool,
    /// Waiting deliveries dead-lettered (`channel_deleted`).
    pub dead_lettered: u64,
}
