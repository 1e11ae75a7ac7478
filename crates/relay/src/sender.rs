//! The sender: claims due deliveries from the store and hands them to the SMS gateway, with
//! quiet hours, rate limits, retries and the stale check on the way.

use std::sync::Arc;
use std::time::Duration;

use dolbom_backoff::Backoff;
use tokio::sync::Notify;
use tracing::{info, info_span, warn, Instrument};

use crate::config::RelaySettings;
use crate::directory::SharedDirectory;
use crate::provider::{Outgoing, SendOutcome, SmsGateway};
use crate::quiet::quiet_until;
use crate::store::{self, Delivery, Outcome, RelayStore};
use crate::{now_ms, sms};

/// The sender: `relay.senders` workers, each claiming the oldest due delivery and sending it, so
/// a slow gateway answer does not hold up every other parent's text.
pub struct Sender {
    pub store: Arc<dyn RelayStore>,
    /// This relay's name on its claims.
    pub instance: String,
    pub gateway: Box<dyn SmsGateway>,
    pub settings: RelaySettings,
    pub directory: Arc<SharedDirectory>,
    pub wake: Arc<Notify>,
}

impl Sender {
    /// One worker's loop, until `stop` turns true; a delivery under way is finished first, so a
    /// restart does not leave a text half-sent.
    pub async fn run(self: Arc<Self>, worker: usize, mut stop: tokio::sync::watch::Receiver<bool>) {
        let (mut next_sweep, mut next_prune) = (0, 0);
        // Claims whose answer was lost and that could not be handed back yet: until they are,
        // their guardians' texts would wait for the lease.
        let mut unreleased: Vec<String> = Vec::new();
        while !*stop.borrow() {
            let now = now_ms();
            if let Some(token) = unreleased.last().cloned() {
                if store::call(&self.store, move |s| s.release(&token, now_ms())).await.is_ok() {
                    unreleased.pop();
                    continue;
                }
            }
            if worker == 0 && now >= next_sweep {
                next_sweep = now + 60_000;
                self.sweep_dead_claims(now).await;
            }
            if worker == 0 && now >= next_prune {
                next_prune = now + 3_600_000;
                let before = now - i64::from(self.settings.retention_days) * 86_400_000;
                match store::call(&self.store, move |s| s.prune(before)).await {
                    Ok(0) => {}
                    Ok(rows) => info!(rows, days = self.settings.retention_days, "old records removed"),
                    Err(e) => warn!(error = %e, "old records not removed; will try again in an hour"),
                }
            }
            let (instance, token) = (self.instance.clone(), uuid::Uuid::now_v7().to_string());
            let claim_token = token.clone();
            match store::call(&self.store, move |s| s.claim(&instance, &claim_token, now)).await {
                Ok(Some(d)) => {
                    // There may be more: an idle worker can take the next one meanwhile.
                    self.wake.notify_one();
                    self.deliver(d, &token, &stop).await;
                    // Its guardian's next text, if any, may now go.
                    self.wake.notify_one();
                }
                Ok(None) => {
                    let due = store::call(&self.store, |s| s.next_due()).await.ok().flatten();
                    let wait = due.map_or(1000, |due| (due - now).clamp(10, 1000));
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = stop.changed() => {}
                        _ = tokio::time::sleep(Duration::from_millis(wait as u64)) => {}
                    }
                }
                Err(e) => {
                    warn!(error = %e, "relay database unreachable; retrying");
                    // The claim may have committed with its answer lost: hand it back (now, or
                    // once the database answers again).
                    let retry = token.clone();
                    // Bounded: a long outage leaves at most this many for the lease to settle.
                    if store::call(&self.store, move |s| s.release(&retry, now_ms())).await.is_err()
                        && unreleased.len() < 64
                    {
                        unreleased.push(token);
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// Claims held past the lease belong to a relay that died and has not come back (with a shared
    /// store, another one may never): settled as at a restart.
    async fn sweep_dead_claims(&self, now: i64) {
        // An instance name no relay has: only the lease decides here.
        match store::call(&self.store, move |s| s.recover("", now - store::CLAIM_LEASE_MS, now)).await {
            Ok(r) if r == store::Recovered::default() => {}
            Ok(r) => warn!(
                requeued = r.requeued,
                unknown = r.unknown,
                "claims of a relay that stopped: unsent texts queued again, interrupted ones marked unknown"
            ),
            Err(e) => warn!(error = %e, "could not check for abandoned deliveries"),
        }
    }

    async fn deliver(&self, d: Delivery, token: &str, stop: &tokio::sync::watch::Receiver<bool>) {
        // Logs carry a masked number (010-****-5678); the full one stays in the database.
        let span = info_span!("delivery", event_id = %d.event_id, to = %crate::phone::mask(&d.recipient));
        async {
            let now = now_ms();
            let finish = |status: &str, attempts: i64, next_ms: i64, detail: Option<&str>| {
                let (id, status, detail, token) = (d.id, status.to_string(), detail.map(str::to_string), token.to_string());
                async move {
                    // The outcome is known only here: keep trying until it is on record (the
                    // sender has nothing else it could do without its database anyway).
                    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
                    loop {
                        let (st, detail, token) = (status.clone(), detail.clone(), token.clone());
                        let recorded = store::call(&self.store, move |s| {
                            let outcome = Outcome { status: &st, attempts, next_ms, detail: detail.as_deref() };
                            s.finish(id, &token, &outcome, now_ms())
                        });
                        match recorded.await {
                            Ok(true) => break,
                            Ok(false) => {
                                warn!(status, "the claim was taken back after its lease; outcome not recorded");
                                break;
                            }
                            Err(e) => {
                                warn!(error = %e, status, "delivery outcome not recorded yet; retrying");
                                tokio::time::sleep(backoff.next_delay()).await;
                            }
                        }
                    }
                }
            };
            // On its first turn a text is stale when the event is too old; later (held through
            // quiet hours, or waiting for a retry) when it has been due for too long, as after
            // a night the relay was down. A text held until 07:00 still goes out at 07:00.
            let max_age = self.settings.max_event_age_minutes as i64 * 60_000;
            let first_turn = d.attempts == 0 && d.detail.is_none();
            let late = if first_turn { now - d.event_ms } else { now - d.next_ms };
            if late > max_age {
                info!("stale; not sent");
                return finish("stale", d.attempts, now, Some("event became too old before it could be sent")).await;
            }
            if let Some(until) = self.quiet_until(&d, now) {
                info!(until_ms = until, "quiet hours; holding");
                return finish("pending", d.attempts, until, Some("quiet hours")).await;
            }
            let recipient = d.recipient.clone();
            let recent = match store::call(&self.store, move |s| s.sent_since(&recipient, now - 3_600_000)).await {
                Ok(n) => n,
                Err(e) => {
                    // Never send past a limit we could not check: try again shortly.
                    warn!(error = %e, "rate limit not checked; will retry");
                    return finish("pending", d.attempts, now + 1000, Some("rate limit not checked yet")).await;
                }
            };
            if recent >= self.settings.rate_limit_per_hour {
                warn!(recent, "rate limit reached; not sent");
                return finish(
                    "rate_limited",
                    d.attempts,
                    now,
                    Some("too many texts to this guardian in the last hour"),
                )
                .await;
            }
            let text = sms::Text {
                kind: if d.msg_type == "LMS" { sms::MessageType::Lms } else { sms::MessageType::Sms },
                subject: d.subject.clone(),
                body: d.body.clone(),
                bytes: sms::byte_len(&d.body),
            };
            let msg = Outgoing {
                idempotency_key: format!("{}:{}", d.event_id, d.recipient),
                to: d.recipient.clone(),
                from: d.sender.clone(),
                text,
                event_id: d.event_id.clone(),
                center: d.center.clone(),
                notice: d.notice.clone(),
            };
            if *stop.borrow() {
                // Shutting down: hand the claim back rather than start a send we may not finish.
                return finish("pending", d.attempts, now, d.detail.as_deref()).await;
            }
            // The last step before the gateway: from here on an interruption leaves `sending`,
            // which is never re-sent; before it, the claim simply goes back to the queue.
            let (id, claim) = (d.id, token.to_string());
            match store::call(&self.store, move |s| s.begin_send(id, &claim, now_ms())).await {
                Ok(true) => {}
                Ok(false) => {
                    warn!("the claim was taken back after its lease; not sent here");
                    return;
                }
                Err(e) => {
                    warn!(error = %e, "could not mark the text as sending; will retry");
                    return finish("pending", d.attempts, now + 1000, d.detail.as_deref()).await;
                }
            }
            let attempts = d.attempts + 1;
            match self.gateway.send(&msg).await {
                SendOutcome::Sent { gateway_id } => {
                    info!(gateway = self.gateway.name(), id = ?gateway_id, "sent");
                    finish("sent", attempts, now, gateway_id.as_deref()).await;
                }
                SendOutcome::Failed { reason } => {
                    warn!(reason = %crate::phone::mask_in(&reason), "gateway refused; not retried");
                    finish("failed", attempts, now, Some(&reason)).await;
                }
                SendOutcome::Unknown { reason } => {
                    warn!(reason = %crate::phone::mask_in(&reason), "no answer from the gateway after the request went out; not retried");
                    let detail = format!(
                        "{reason}: the gateway may have sent it; not retried to avoid a duplicate (check the gateway log)"
                    );
                    finish("unknown", attempts, now, Some(&detail)).await;
                }
                SendOutcome::Retry { after, reason } if attempts < self.settings.max_attempts => {
                    let backoff = self.backoff(attempts);
                    // Retry-After, but within our own bounds: never sooner than the backoff,
                    // never later than retry_max_ms.
                    let max = Duration::from_millis(self.settings.retry_max_ms);
                    let delay = after.map_or(backoff, |a| a.clamp(backoff.min(max), max));
                    warn!(
                        reason = %crate::phone::mask_in(&reason),
                        attempt = attempts,
                        retry_in_ms = delay.as_millis() as u64,
                        "gateway busy or failing; will retry"
                    );
                    finish("pending", attempts, now_ms().saturating_add(delay.as_millis() as i64), Some(&reason)).await;
                }
                SendOutcome::Retry { reason, .. } => {
                    warn!(reason = %crate::phone::mask_in(&reason), attempts, "giving up");
                    finish("failed", attempts, now, Some(&format!("gave up after {attempts} attempts: {reason}")))
                        .await;
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Exponential backoff with ±20 % jitter, so many relays do not retry in step.
    fn backoff(&self, attempts: i64) -> Duration {
        let base = (self.settings.retry_initial_ms as f64 * 2f64.powi((attempts - 1).clamp(0, 30) as i32))
            .min(self.settings.retry_max_ms as f64);
        Duration::from_millis((base * (0.8 + 0.4 * rand::random::<f64>())) as u64)
    }

    fn quiet_until(&self, d: &Delivery, now: i64) -> Option<i64> {
        quiet_until(self.directory.get().center(&d.center)?, now)
    }
}
