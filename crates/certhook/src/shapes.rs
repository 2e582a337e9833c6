//! The JSON shapes the CLI (`--json`) and the HTTP API both print: one definition each,
//! so the two cannot drift apart.

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
