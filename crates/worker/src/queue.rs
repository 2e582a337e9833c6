//! The claimed leases waiting for a sending slot: one queue per channel, each in claim
//! order. A pass of the loop looks at each waiting channel's front only, so it costs what
//! it sends and gives back plus a look per channel, not a look per waiting lease. (One
//! queue for all channels was walked whole after every completed request: up to 320
//! leases moved, clocked and looked up per send.)

use std::collections::{HashMap, VecDeque};

use uuid::Uuid;

use crate::refill::Buffered;

/// Buffered leases by channel.
#[derive(Debug, Default)]
pub struct Queue {
    by_channel: HashMap<Uuid, VecDeque<Buffered>>,
    /// The channels with leases waiting, in the order the next pass visits them. A channel
    /// emptied during a pass keeps its place until the next pass starts: one whose last
    /// lease is put back (its rate limit said not yet) must not move to the front.
    order: VecDeque<Uuid>,
    len: usize,
}

impl Queue {
    /// Adds a lease behind its channel's others.
    pub fn push(&mut self, b: Buffered) {
        self.len += 1;
        self.queue_of(b.lease.channel_id).push_back(b);
    }

    /// Puts a lease just taken from its channel's front back there (its turn has not come).
    pub fn push_front(&mut self, b: Buffered) {
        self.len += 1;
        self.queue_of(b.lease.channel_id).push_front(b);
    }

    /// `channel`'s queue; a channel new to the buffer takes its turn after the others.
    fn queue_of(&mut self, channel: Uuid) -> &mut VecDeque<Buffered> {
        self.by_channel.entry(channel).or_insert_with(|| {
            self.order.push_back(channel);
            VecDeque::new()
        })
    }

    /// Leases waiting, all channels together.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Leases waiting for `channel`.
    pub fn of_channel(&self, channel: &Uuid) -> usize {
        self.by_channel.get(channel).map_or(0, VecDeque::len)
    }

    /// Leases waiting, per channel that has any.
    pub fn counts(&self) -> impl Iterator<Item = (Uuid, usize)> + '_ {
        self.by_channel.iter().filter(|(_, q)| !q.is_empty()).map(|(id, q)| (*id, q.len()))
    }

    /// The channels to visit in this pass, those with leases waiting. Each pass starts
    /// one channel further on, so when the global slots are scarce no channel is always
    /// served first.
    pub fn pass(&mut self) -> Vec<Uuid> {
        let by_channel = &mut self.by_channel;
        self.order.retain(|c| {
            let waiting = by_channel.get(c).is_some_and(|q| !q.is_empty());
            if !waiting {
                by_channel.remove(c);
            }
            waiting
        });
        let channels: Vec<Uuid> = self.order.iter().copied().collect();
        self.order.rotate_left(usize::from(!self.order.is_empty()));
        channels
    }

    /// The oldest lease of `channel`.
    pub fn front(&self, channel: &Uuid) -> Option<&Buffered> {
        self.by_channel.get(channel).and_then(VecDeque::front)
    }

    /// Takes the oldest lease of `channel`.
    pub fn pop(&mut self, channel: &Uuid) -> Option<Buffered> {
        let b = self.by_channel.get_mut(channel)?.pop_front();
        if b.is_some() {
            self.len -= 1;
        }
        b
    }

    /// Takes every lease of `channel`.
    pub fn take_channel(&mut self, channel: &Uuid) -> VecDeque<Buffered> {
        let taken = self.by_channel.get_mut(channel).map(std::mem::take).unwrap_or_default();
        self.len -= taken.len();
        taken
    }

    /// Takes every lease.
    pub fn drain(&mut self) -> impl Iterator<Item = Buffered> {
        self.order.clear();
        self.len = 0;
        std::mem::take(&mut self.by_channel).into_values().flatten()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use certhook_core::event::{AlertType, DeliveryType};
    use certhook_store::Lease;

    use super::*;

    fn buffered(delivery: u128, channel: u128) -> Buffered {
        let lease = Lease {
            delivery_id: Uuid::from_u128(delivery),
            token: Uuid::from_u128(99),
            channel_id: Uuid::from_u128(channel),
            cloud_event_id: Uuid::from_u128(delivery),
            delivery_type: DeliveryType::Alert(AlertType::Issuance),
            attempts_before: 0,
            body: std::sync::Arc::from(&b"{}"[..]),
            enqueued_at: chrono::Utc::now(),
        };
        Buffered { lease, claimed_at: Instant::now() }
    }

    fn ids(q: &mut Queue, channel: u128) -> Vec<u128> {
        std::iter::from_fn(|| q.pop(&Uuid::from_u128(channel))).map(|b| b.lease.delivery_id.as_u128()).collect()
    }

    #[test]
    fn each_channel_keeps_claim_order_and_the_counts_follow() {
        let mut q = Queue::default();
        for (d, c) in [(1, 7), (2, 8), (3, 7), (4, 7), (5, 8)] {
            q.push(buffered(d, c));
        }
        assert_eq!((q.len(), q.of_channel(&Uuid::from_u128(7)), q.of_channel(&Uuid::from_u128(8))), (5, 3, 2));
        let mut counts: Vec<_> = q.counts().map(|(c, n)| (c.as_u128(), n)).collect();
        counts.sort_unstable();
        assert_eq!(counts, vec![(7, 3), (8, 2)]);
        assert_eq!(q.front(&Uuid::from_u128(7)).unwrap().lease.delivery_id.as_u128(), 1);
        let first = q.pop(&Uuid::from_u128(7)).unwrap();
        q.push_front(first);
        assert_eq!(ids(&mut q, 7), vec![1, 3, 4], "put back where it was");
        assert_eq!(q.len(), 2);
        assert_eq!(q.pass(), vec![Uuid::from_u128(8)], "an emptied channel is not visited");
        assert_eq!(ids(&mut q, 8), vec![2, 5]);
        assert!(q.is_empty() && q.pass().is_empty() && q.counts().next().is_none());
    }

    #[test]
    fn each_pass_starts_one_channel_further_on() {
        let mut q = Queue::default();
        for c in [1, 2, 3] {
            q.push(buffered(c, c));
        }
        let first = |q: &mut Queue| q.pass()[0].as_u128();
        assert_eq!([first(&mut q), first(&mut q), first(&mut q), first(&mut q)], [1, 2, 3, 1]);
    }

    /// Review: a channel whose only lease was put back (its rate limit said not yet) went
    /// to the front of the order, undoing the rotation for as long as it was refused.
    #[test]
    fn a_channel_whose_last_lease_is_put_back_keeps_its_place_in_the_turns() {
        let mut q = Queue::default();
        for c in [1, 2, 3] {
            q.push(buffered(c, c));
        }
        let order = |q: &mut Queue| q.pass().iter().map(Uuid::as_u128).collect::<Vec<_>>();
        // The pass's first channel is refused: the next pass still starts further on.
        assert_eq!(order(&mut q), [1, 2, 3]);
        let refused = q.pop(&Uuid::from_u128(1)).unwrap();
        q.push_front(refused);
        assert_eq!(order(&mut q), [2, 3, 1]);
        let refused = q.pop(&Uuid::from_u128(2)).unwrap();
        q.push_front(refused);
        assert_eq!(order(&mut q), [3, 1, 2]);
        assert_eq!(q.len(), 3);
    }

    #[test]
    fn a_channel_or_everything_can_be_taken_at_once() {
        let mut q = Queue::default();
        for (d, c) in [(1, 7), (2, 8), (3, 7)] {
            q.push(buffered(d, c));
        }
        let taken: Vec<u128> =
            q.take_channel(&Uuid::from_u128(7)).iter().map(|b| b.lease.delivery_id.as_u128()).collect();
        assert_eq!(taken, vec![1, 3]);
        assert_eq!((q.len(), q.pass()), (1, vec![Uuid::from_u128(8)]));
        q.push(buffered(4, 9));
        let mut all: Vec<u128> = q.drain().map(|b| b.lease.delivery_id.as_u128()).collect();
        all.sort_unstable();
        assert_eq!(all, vec![2, 4]);
        assert!(q.is_empty() && q.pass().is_empty());
    }
}
