//! Outcome webhooks and progress events. When a job ends, its record gets a pending delivery
//! and a `Deliver` message is sent; whoever handles it makes attempts while its budget lasts,
//! recording each on the job. Each attempt is claimed first with a conditional write, so two
//! deliverers never send the same attempt. What is left when an invocation ends is picked up by
//! the sweep (`JobStore::list_due_webhooks`), so nothing is dropped silently.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Budget, Engine, EngineError, Handled};
use crate::domain::{Attempt, Delivery, DeliveryState, Job, Level, Progress};
use crate::queue::WorkMessage;
use crate::webhook::MAX_RETRY_WAIT as MAX_BACKOFF;
use crate::webhook::{event, Sent};

/// The wait after attempt `n` (1-based): `base` × 4^(n−1), capped, with ±25% jitter; the
/// receiver's `Retry-After` wins when it gives one.
pub(crate) fn backoff(base: Duration, n: u32, retry_after: Option<Duration>) -> Duration {
    if let Some(after) = retry_after {
        return after.min(MAX_BACKOFF);
    }
    let exp = base.saturating_mul(4u32.saturating_pow(n.saturating_sub(1)));
    let capped = exp.min(MAX_BACKOFF);
    let jitter = 0.75 + super::sample::unit() / 2.0;
    capped.mul_f64(jitter)
}

fn chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::seconds(60))
}

impl Engine {
    /// After a job ended: removes what is left of its staged files, and sends `Deliver` when
    /// it has a webhook to send.
    pub(crate) async fn after_end(&self, job: &Job) -> Result<(), EngineError> {
        // What a crashed worker left staged is never imported now.
        if let Some(staging) = self.staging_of(job).await? {
            staging.remove_job(&job.id).await;
        }
        if job.webhook_due().is_some() {
            self.queue.send(WorkMessage::deliver(&job.id)).await?;
        }
        Ok(())
    }

    /// The `Deliver` step: attempts the job's pending webhook until it is delivered, given up,
    /// or the next attempt would not fit in the budget.
    pub(crate) async fn deliver(
        &self,
        job_id: &str,
        budget: Budget,
    ) -> Result<Handled, EngineError> {
        let mut handled = Handled::Nothing;
        loop {
            let job = self.job(job_id).await?;
            let (Some(spec), Some(due)) = (job.request.webhook.clone(), job.webhook_due()) else {
                return Ok(handled);
            };
            let now = Utc::now();
            if due > now {
                let wait = (due - now).to_std().unwrap_or_default();
                if budget.exhausted(wait + self.config.webhook_timeout) {
                    // The sweep sends `Deliver` again when it is due.
                    return Ok(handled);
                }
                tokio::time::sleep(wait).await;
                continue;
            }
            if budget.exhausted(self.config.webhook_timeout) {
                return Ok(handled);
            }
            let Some((job, delivery)) = self.claim_attempt(job_id, due).await? else {
                // Another deliverer has this attempt.
                return Ok(handled);
            };
            handled = Handled::Done;
            self.faults.maybe_panic(crate::queue::Step::Deliver);
            let body = event::outcome(&job, delivery.event, delivery.timestamp);
            let time = Utc::now();
            let (sent, latency) = self.notifier.send(&spec, &delivery.id, &body).await;
            let n = delivery.attempts.len() as u32 + 1;
            let (attempt, state, next) = self.judge(sent, time, latency, n);
            self.record_attempt(job_id, &delivery, attempt, state, next)
                .await?;
            if state != DeliveryState::Pending {
                return Ok(Handled::Done);
            }
        }
    }

    /// Claims the attempt due at `due`: its due time moves past the attempt's end,
    /// conditionally on nobody else having moved it. `None` when another deliverer has it.
    async fn claim_attempt(
        &self,
        job_id: &str,
        due: DateTime<Utc>,
    ) -> Result<Option<(Job, Delivery)>, EngineError> {
        let in_flight = Utc::now() + chrono(self.config.webhook_timeout + Duration::from_secs(5));
        let claimed = self
            .update_job(job_id, |j| match j.webhook.as_mut() {
                Some(d) if d.state == DeliveryState::Pending && d.next_attempt_at == Some(due) => {
                    d.next_attempt_at = Some(in_flight);
                    Ok(true)
                }
                _ => Ok(false),
            })
            .await?;
        Ok(match claimed.webhook.clone() {
            Some(d) if d.next_attempt_at == Some(in_flight) => Some((claimed, d)),
            _ => None,
        })
    }

    /// Records an attempt on the job and in its log.
    async fn record_attempt(
        &self,
        job_id: &str,
        delivery: &Delivery,
        attempt: Attempt,
        state: DeliveryState,
        next: Option<DateTime<Utc>>,
    ) -> Result<(), EngineError> {
        let n = delivery.attempts.len() + 1;
        let error = attempt.error.clone().unwrap_or_default();
        let (level, message) = match state {
            DeliveryState::Delivered => (
                Level::Info,
                format!(
                    "webhook {} delivered (attempt {n}, status {})",
                    delivery.event,
                    attempt.status.unwrap_or_default()
                ),
            ),
            DeliveryState::Pending => (
                Level::Warn,
                format!(
                    "webhook attempt {n} failed: {error}; next attempt at {}",
                    next.map(|t| t.to_rfc3339()).unwrap_or_default()
                ),
            ),
            DeliveryState::Disabled => (
                Level::Warn,
                format!("webhook receiver answered 410 Gone at attempt {n}; nothing more is sent for this job"),
            ),
            DeliveryState::Failed => (
                Level::Error,
                format!("webhook delivery failed after {n} attempt(s): {error}"),
            ),
        };
        self.update_job(job_id, |j| match j.webhook.as_mut() {
            Some(d) if d.id == delivery.id && d.state == DeliveryState::Pending => {
                d.attempts.push(attempt.clone());
                d.state = state;
                d.next_attempt_at = next;
                Ok(true)
            }
            _ => Ok(false),
        })
        .await?;
        self.log(job_id, level, None, message).await;
        Ok(())
    }

    /// Gives up a pending outcome webhook (its step keeps failing), recording why.
    pub(crate) async fn give_up_webhook(
        &self,
        job_id: &str,
        reason: &str,
    ) -> Result<(), EngineError> {
        self.update_job(job_id, |j| match j.webhook.as_mut() {
            Some(d) if d.state == DeliveryState::Pending => {
                d.state = DeliveryState::Failed;
                d.next_attempt_at = None;
                Ok(true)
            }
            _ => Ok(false),
        })
        .await?;
        self.log(
            job_id,
            Level::Error,
            None,
            format!("webhook given up: {reason}"),
        )
        .await;
        Ok(())
    }

    /// The attempt's record, the delivery's new state and when to try next.
    fn judge(
        &self,
        sent: Sent,
        time: DateTime<Utc>,
        latency: Duration,
        n: u32,
    ) -> (Attempt, DeliveryState, Option<DateTime<Utc>>) {
        let attempt = |status: Option<u16>, error: Option<String>| Attempt {
            time,
            status,
            latency_ms: latency.as_millis() as u64,
            error,
        };
        match sent {
            Sent::Delivered { status } => {
                (attempt(Some(status), None), DeliveryState::Delivered, None)
            }
            Sent::Gone { status } => (
                attempt(Some(status), Some("410 Gone".into())),
                DeliveryState::Disabled,
                None,
            ),
            Sent::Refused { status, error } => {
                (attempt(status, Some(error)), DeliveryState::Failed, None)
            }
            Sent::Retry { status, error, .. } if n >= self.config.webhook_attempts => (
                attempt(status, Some(format!("{error} (the last of {n} attempts)"))),
                DeliveryState::Failed,
                None,
            ),
            Sent::Retry {
                status,
                error,
                after,
            } => {
                let wait = backoff(self.config.webhook_backoff, n, after);
                (
                    attempt(status, Some(error)),
                    DeliveryState::Pending,
                    Some(Utc::now() + chrono(wait)),
                )
            }
        }
    }

    /// Sends a `migration.progress` event if the job asks for them and the last one is older
    /// than its interval. Best effort: one attempt, never retried, never failing the copy.
    pub(crate) async fn maybe_progress(&self, job: &Job) -> Result<(), EngineError> {
        let Some(spec) = job.request.webhook.as_ref() else {
            return Ok(());
        };
        let Some(every) = spec.progress_every_seconds else {
            return Ok(());
        };
        let now = Utc::now();
        let since = job.progress_sent_at.or(job.started_at).unwrap_or(now);
        if now - since < chrono::Duration::seconds(every as i64) {
            return Ok(());
        }
        // Only the worker whose write lands sends this one.
        let previous = job.progress_sent_at;
        let claimed = self
            .update_job(&job.id, |j| {
                if j.progress_sent_at != previous || j.status.is_terminal() {
                    return Ok(false);
                }
                j.progress_sent_at = Some(now);
                Ok(true)
            })
            .await?;
        if claimed.progress_sent_at != Some(now) {
            return Ok(());
        }
        let tasks = self.store.list_tasks(&job.id).await?;
        let body = event::progress(&claimed, &Progress::of(&claimed, &tasks, now), now);
        let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
        let (sent, _) = self.notifier.send(spec, &id, &body).await;
        if !matches!(sent, Sent::Delivered { .. }) {
            tracing::warn!(job_id = %job.id, "progress event not delivered: {sent:?}");
        }
        Ok(())
    }

    /// Sends `Deliver` for every ended job whose webhook is due (the sweep's part in delivery).
    pub async fn sweep_webhooks(&self) -> Result<usize, EngineError> {
        let due = self.store.list_due_webhooks(Utc::now(), 100).await?;
        for job in &due {
            self.after_end(job).await?;
        }
        Ok(due.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_fourfold_with_jitter_and_honours_retry_after() {
        let base = Duration::from_secs(5);
        for (n, nominal) in [(1, 5.0), (2, 20.0), (3, 80.0), (8, 3600.0)] {
            let wait = backoff(base, n, None).as_secs_f64();
            assert!(
                wait >= nominal * 0.75 && wait <= nominal * 1.25,
                "attempt {n}: {wait}"
            );
        }
        assert_eq!(
            backoff(base, 1, Some(Duration::from_secs(42))),
            Duration::from_secs(42)
        );
        assert_eq!(
            backoff(base, 1, Some(Duration::from_secs(99_999))),
            MAX_BACKOFF
        );
    }
}
