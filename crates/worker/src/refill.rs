//! Keeping the sending slots fed: the loop holds up to two rounds of leases (those in
//! flight plus a buffer of claimed ones), and tops the buffer up in a background task
//! (a claim) while the slots keep sending from what is already claimed.
//! Without the buffer every slot that frees up waits for a database round trip — on
//! SQLite, for the writer the recorder holds — which left the slots idle most of the time.

use std::sync::Arc;
use std::time::Instant;

use certhook_store::{Claim, ClaimRequest, Lease, Store, StoreError};
use uuid::Uuid;

use crate::lease::{HeldLeases, extend_all};
use crate::targets::Targets;

/// A claimed lease waiting for a sending slot.
#[derive(Debug)]
pub struct Buffered {
    /// The lease.
    pub lease: Lease,
    /// When it was claimed: a lease buffered for half its length is given back.
    pub claimed_at: Instant,
}

/// How many leases to claim now, if a refill is worth a transaction: the loop holds at
/// most `2 × concurrency` (in flight plus buffered) and tops up once half a round is missing.
pub fn refill_size(concurrency: usize, in_flight: usize, buffered: usize) -> Option<usize> {
    let concurrency = concurrency.max(1);
    let held = in_flight + buffered;
    let room = (2 * concurrency).saturating_sub(held);
    let worth_it = room >= concurrency.div_ceil(2) || (held == 0 && room > 0);
    worth_it.then_some(room)
}

/// What a refill asks for.
#[derive(Debug)]
pub struct RefillRequest {
    /// Leases wanted.
    pub limit: usize,
    /// Lease length.
    pub lease: std::time::Duration,
    /// New leases per channel at most, for channels not in `channel_limits`.
    pub per_channel: usize,
    /// Channels that have no room (in flight plus buffered at their allowance).
    pub exclude: Vec<Uuid>,
    /// New leases at most for the channels the loop knows (their allowance less what they hold).
    pub channel_limits: Vec<(Uuid, usize)>,
    /// Reload the channel cache even if every claimed channel is in it.
    pub reload_targets: bool,
}

/// What a refill brought back.
#[derive(Debug)]
pub struct Refilled {
    /// The claim, or why it failed.
    pub claim: Result<Claim, StoreError>,
    /// A fresh channel cache, when one was loaded.
    pub targets: Option<Targets>,
}

/// Claims, and reloads the channel cache when asked or when a claimed lease names a
/// channel `known` does not hold.
///
/// After the database was away, the held leases are extended first: they may have lapsed
/// meanwhile, and this claim's sweep would otherwise take them over and send them twice.
pub async fn refill(store: Store, request: RefillRequest, known: Arc<Targets>, held: Arc<HeldLeases>) -> Refilled {
    if held.store_down() {
        match extend_all(&store, &held, request.lease).await {
            Ok(()) => held.mark_store_up(),
            Err(e) => {
                return Refilled { claim: Err(e), targets: None };
            }
        }
    }
    let claim = store
        .claim_with(&ClaimRequest {
            limit: request.limit,
            lease: request.lease,
            per_channel: request.per_channel,
            exclude: &request.exclude,
            channel_limits: &request.channel_limits,
        })
        .await;
    if claim.is_err() {
        held.mark_store_down();
    }
    let unknown = claim.as_ref().is_ok_and(|c| c.leases.iter().any(|l| known.get(&l.channel_id).is_none()));
    let targets = if request.reload_targets || unknown {
        match Targets::load(&store).await {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::warn!(error = %e, "loading channels failed; retrying");
                None
            }
        }
    } else {
        None
    };
    Refilled { claim, targets }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_loop_claims_two_rounds() {
        assert_eq!(refill_size(32, 0, 0), Some(64));
    }

    #[test]
    fn tops_up_only_when_half_a_round_is_missing() {
        assert_eq!(refill_size(32, 32, 17), None, "15 missing: not worth a transaction");
        assert_eq!(refill_size(32, 32, 16), Some(16));
        assert_eq!(refill_size(32, 20, 0), Some(44));
    }

    #[test]
    fn a_full_loop_claims_nothing() {
        assert_eq!(refill_size(32, 32, 32), None);
        assert_eq!(refill_size(32, 40, 40), None, "over-full (breaker releases pending) is not negative");
    }

    #[test]
    fn concurrency_one_still_refills() {
        assert_eq!(refill_size(1, 0, 0), Some(2));
        assert_eq!(refill_size(1, 1, 0), Some(1));
        assert_eq!(refill_size(1, 1, 1), None);
        assert_eq!(refill_size(0, 0, 0), Some(2), "zero is treated as one");
    }
}
