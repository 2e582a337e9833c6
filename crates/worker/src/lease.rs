//! The leases this process holds, from the claim until their outcome is recorded. Each is
//! extended every third of its length, so a delivery still being sent (a PagerDuty
//! delivery is one request per certificate, each up to the request timeout), waiting in
//! the buffer, or waiting for its outcome to be written is never taken over by a sweep and
//! sent a second time while this process is alive.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use certhook_store::{Lease, Store};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Leases extended per statement at most.
const EXTEND_BATCH: usize = 1_000;

/// How soon a failed extension is tried again: well inside the two thirds of a lease that
/// are left when it fails.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The leases held by this process (delivery id → lease token), and whether the database
/// is known to be away.
#[derive(Debug, Default)]
pub struct HeldLeases {
    held: Mutex<HashMap<Uuid, Uuid>>,
    /// Set when a store write failed, cleared once every held lease has been extended
    /// again: while it is set the loop sends nothing new (an outcome could not be
    /// recorded, and the lease would lapse and be sent again), and the first claim after
    /// it extends every held lease first, so this process's own sweep does not take them
    /// over.
    store_down: AtomicBool,
}

impl HeldLeases {
    /// Starts keeping `leases` alive.
    pub fn hold<'a>(&self, leases: impl IntoIterator<Item = &'a Lease>) {
        let mut held = self.lock();
        for lease in leases {
            held.insert(lease.delivery_id, lease.token);
        }
    }

    /// Stops keeping these leases (delivery id, token) alive: their outcomes are written,
    /// or they were taken over. A newer lease of the same delivery (claimed again since)
    /// is kept.
    pub fn let_go(&self, leases: impl IntoIterator<Item = (Uuid, Uuid)>) {
        let mut held = self.lock();
        for (id, token) in leases {
            if held.get(&id) == Some(&token) {
                held.remove(&id);
            }
        }
    }

    /// Whether this lease (delivery id, token) is still held: not taken over, and not
    /// superseded by a newer claim of the same delivery.
    pub fn holds(&self, id: Uuid, token: Uuid) -> bool {
        self.lock().get(&id) == Some(&token)
    }

    /// Notes that a store write failed.
    pub fn mark_store_down(&self) {
        self.store_down.store(true, Ordering::SeqCst);
    }

    /// Notes that every held lease was extended: the database is back and nothing held has
    /// lapsed unnoticed.
    pub fn mark_store_up(&self) {
        self.store_down.store(false, Ordering::SeqCst);
    }

    /// Whether the last store write failed.
    pub fn store_down(&self) -> bool {
        self.store_down.load(Ordering::SeqCst)
    }

    /// How many leases are held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no lease is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn snapshot(&self) -> Vec<(Uuid, Uuid)> {
        self.lock().iter().map(|(id, token)| (*id, *token)).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Uuid>> {
        // The map stays consistent whatever panicked while holding it: every change is a
        // single insert or remove.
        self.held.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// How often held leases are extended: three times per lease, so one failed or slow
/// extension still leaves a third of the lease.
pub fn extend_every(lease: Duration) -> Duration {
    lease / 3
}

/// Extends every held lease each [`extend_every`] until `stop`; a lease that could not be
/// extended because another worker took it over is let go.
pub async fn run_keeper(store: Store, held: Arc<HeldLeases>, lease: Duration, stop: CancellationToken) {
    let mut wait = extend_every(lease);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        wait = match extend_all(&store, &held, lease).await {
            Ok(()) => {
                held.mark_store_up();
                extend_every(lease)
            }
            Err(e) => {
                held.mark_store_down();
                tracing::warn!(error = %e, held = held.len(), "extending leases failed; retrying");
                RETRY_AFTER.min(extend_every(lease))
            }
        };
    }
}

/// Extends every held lease now; a lease taken over meanwhile is let go.
pub async fn extend_all(store: &Store, held: &HeldLeases, lease: Duration) -> certhook_store::Result<()> {
    for chunk in held.snapshot().chunks(EXTEND_BATCH) {
        let extended = store.extend(chunk, lease).await?;
        if extended.len() < chunk.len() {
            // Taken over by another worker, settled since the snapshot, or being settled by
            // an outcome batch right now (the extension skips rows that batch has locked):
            // either way not ours to keep alive any more.
            let extended: HashSet<Uuid> = extended.into_iter().collect();
            let lost: Vec<(Uuid, Uuid)> = chunk.iter().copied().filter(|(id, _)| !extended.contains(id)).collect();
            tracing::debug!(lost = lost.len(), "leases no longer held");
            held.let_go(lost);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_are_extended_three_times_per_length() {
        assert_eq!(extend_every(Duration::from_secs(60)), Duration::from_secs(20));
        assert!(RETRY_AFTER < extend_every(Duration::from_secs(5)) * 2, "a retry lands before the lease ends");
    }

    #[test]
    fn held_leases_are_kept_until_let_go() {
        let held = HeldLeases::default();
        let lease = |n: u128| Lease {
            delivery_id: Uuid::from_u128(n),
            token: Uuid::from_u128(100),
            channel_id: Uuid::from_u128(7),
            cloud_event_id: Uuid::from_u128(n),
            delivery_type: certhook_core::event::DeliveryType::Alert(certhook_core::event::AlertType::Issuance),
            attempts_before: 0,
            body: Arc::from(&b"{}"[..]),
            enqueued_at: chrono::Utc::now(),
        };
        let leases = [lease(1), lease(2), lease(3)];
        held.hold(&leases);
        assert_eq!(held.len(), 3);
        held.let_go([(Uuid::from_u128(2), Uuid::from_u128(100)), (Uuid::from_u128(9), Uuid::from_u128(100))]);
        held.let_go([(Uuid::from_u128(3), Uuid::from_u128(55))]);
        assert!(held.holds(Uuid::from_u128(3), Uuid::from_u128(100)), "another token does not let a lease go");
        let mut ids: Vec<_> = held.snapshot().into_iter().map(|(id, _)| id).collect();
        ids.sort();
        assert_eq!(ids, vec![Uuid::from_u128(1), Uuid::from_u128(3)]);
    }
}
