//! One delivery, start to finish: check its channel is still one to send to, send it in
//! the channel's format, and decide (through `classify`) what becomes of it, counting it
//! in the metrics. The loop in `worker` runs one of these per delivery, in its own task.

use std::sync::Arc;

use certhook_core::event::{ChannelKind, ChannelState, DeadReason, DeliveryOutcome, DeliveryType};
use certhook_core::retry::RetryPolicy;
use certhook_store::{AttemptRecord, Disposition, Lease, Outcome};

use crate::classify::{AttemptResult, Verdict, classify, dispose};
use crate::deliver::Sender;
use crate::metrics::Metrics;
use crate::record::{ChannelSignal, Gone, Settled};
use crate::targets::Target;

/// Dead-lettered without an attempt, and counted in `certhook_deliveries_total`.
pub(crate) fn dead_without_attempt(metrics: &Metrics, kind: ChannelKind, lease: Lease, reason: DeadReason) -> Settled {
    metrics.count_deliveries(DeliveryOutcome::DeadLettered, kind, 1);
    Settled::without_attempt(lease, reason)
}

/// Sends one delivery and decides what becomes of it.
pub(crate) async fn deliver_one(
    lease: Lease,
    target: Option<Arc<Target>>,
    sender: &Sender,
    metrics: &Metrics,
    retry: &RetryPolicy,
    pagerduty_url: &str,
) -> Settled {
    let Some(target) = target else {
        return Settled::without_attempt(lease, DeadReason::ChannelDeleted);
    };
    let channel = &target.channel;
    match channel.state {
        ChannelState::Disabled => {
            return dead_without_attempt(metrics, channel.kind, lease, DeadReason::ChannelDisabled);
        }
        // Paused, or re-pointed and not yet verified, since the claim: not a request more
        // until it is active again. Given back, the delivery is held (see the store).
        ChannelState::Paused => return Settled::released(lease),
        ChannelState::PendingVerification if lease.delivery_type != DeliveryType::Verification => {
            return Settled::released(lease);
        }
        ChannelState::Active | ChannelState::PendingVerification => {}
    }
    if let Some(why) = &channel.unreadable {
        // Sending unsigned, or without the routing key, is not an option; another process
        // (or this one, once configured) can send it. Parked, no attempt counted.
        tracing::error!(delivery_id = %lease.delivery_id, error = %why, "channel secret unreadable; delivery parked");
        let delay = match retry.decide(lease.attempts_before + 1, None, rand::random::<f64>()) {
            certhook_core::retry::RetryDecision::RetryAfter(d) => d,
            _ => retry.initial_backoff,
        };
        return Settled::parked(lease, delay);
    }
    let sent = sender
        .send_now(&target, &lease.body, &lease.cloud_event_id.to_string(), lease.delivery_type, pagerduty_url)
        .await;
    let response = match sent {
        Ok(response) => response,
        Err(e) => {
            tracing::error!(delivery_id = %lease.delivery_id, error = %e, "delivery cannot be built");
            return dead_without_attempt(metrics, channel.kind, lease, DeadReason::ChannelMisconfigured);
        }
    };
    let kind = channel.kind;
    metrics.attempts.with_label_values(&[response.result.label()]).inc();
    metrics.delivery_duration.with_label_values(&[kind.as_str()]).observe(response.duration.as_secs_f64());
    let verdict = classify(response.result, response.retry_after);
    metrics.recent.record(response.started_at, matches!(verdict, Verdict::Delivered));
    let disposition = dispose(verdict, retry, lease.attempts_before + 1, rand::random::<f64>());
    let outcome = match &disposition {
        Disposition::Delivered => {
            let e2e = (chrono::Utc::now() - lease.enqueued_at).to_std().unwrap_or_default();
            metrics.end_to_end.observe(e2e.as_secs_f64());
            Some(DeliveryOutcome::Delivered)
        }
        Disposition::Retry { .. } => Some(DeliveryOutcome::Retried),
        Disposition::Dead { .. } => Some(DeliveryOutcome::DeadLettered),
        // Given back unsent: nothing happened to count.
        Disposition::Released => None,
    };
    if let Some(outcome) = outcome {
        metrics.count_deliveries(outcome, kind, 1);
    }
    // The result's label only, never the error text: reqwest's errors quote the URL, and a
    // Slack URL's path is its secret.
    match &disposition {
        Disposition::Dead { reason } => tracing::warn!(
            delivery_id = %lease.delivery_id,
            channel_id = %lease.channel_id,
            attempt = lease.attempts_before + 1,
            result = response.result.label(),
            %reason,
            "delivery dead-lettered"
        ),
        Disposition::Retry { delay } => tracing::info!(
            delivery_id = %lease.delivery_id,
            channel_id = %lease.channel_id,
            attempt = lease.attempts_before + 1,
            result = response.result.label(),
            retry_in_ms = delay.as_millis() as u64,
            "delivery failed; will retry"
        ),
        _ => {}
    }
    let signal = match (response.result, verdict) {
        (AttemptResult::Blocked, _) => ChannelSignal::Silent,
        (_, Verdict::Delivered) => ChannelSignal::Healthy,
        (_, Verdict::Gone) => ChannelSignal::Gone(Gone { url: channel.url.clone(), channel_kind: kind }),
        _ => ChannelSignal::Failing,
    };
    Settled {
        channel_id: lease.channel_id,
        signal,
        outcome: Outcome {
            lease,
            attempt: Some(AttemptRecord {
                started_at: response.started_at,
                duration: response.duration,
                status_code: match response.result {
                    AttemptResult::Status(s) => Some(s),
                    _ => None,
                },
                error: response.error,
                response_snippet: response.snippet,
            }),
            disposition,
        },
    }
}
