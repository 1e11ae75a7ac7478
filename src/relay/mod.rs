//! `dolbom relay`: kiosk events from MQTT in, texts to parents out, exactly once.
//!
//! ```text
//! broker ──(QoS 1, persistent session, manual ack)──► intake ──► store ──► sender ──► SMS gateway
//!                                                     (dedupe on event_id,  (quiet hours, rate limit,
//!                                                      ack after commit)      retries, stale check)
//! ```
//!
//! The store is SQLite for one relay, PostgreSQL for several: they then split the events through
//! an MQTT shared subscription and share the dedupe and the delivery claims.

pub mod directory;
pub mod provider;
pub mod sms;
pub mod store;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use rumqttc::{Event, Incoming, MqttOptions, QoS};
use serde::Deserialize;
use tokio::sync::Notify;
use tracing::{info, info_span, warn, Instrument};

use crate::backoff::Backoff;
use crate::mqtt::MqttConfig;
use directory::{Directory, Notice};
use provider::{Outgoing, ProviderConfig, SendOutcome, SmsGateway};
use store::{Delivery, Outcome, RelayStore, StoreConfig, StoreError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayFile {
    #[serde(default)]
    pub mqtt: MqttConfig,
    pub relay: RelaySettings,
    pub provider: ProviderConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelaySettings {
    /// Topic filters; add `dolbom/v1/+/+/event/fever` to text fever alerts.
    #[serde(default = "default_topics")]
    pub topics: Vec<String>,
    /// With several relays, the MQTT shared-subscription group they split the load in.
    #[serde(default)]
    pub share_group: Option<String>,
    /// SQLite file (one relay).
    #[serde(default)]
    pub database: Option<PathBuf>,
    /// PostgreSQL connection string (several relays sharing one store).
    #[serde(default)]
    pub postgres: Option<String>,
    /// CA certificate(s), PEM, to verify the PostgreSQL server's TLS certificate with; setting it
    /// requires TLS (as does `sslmode=require`, then against the system's roots).
    #[serde(default)]
    pub postgres_ca: Option<PathBuf>,
    pub directory: PathBuf,
    /// An event older than this when it reaches the relay, or when its text could go out, is not
    /// texted (recorded as `stale`).
    #[serde(default = "default_max_age")]
    pub max_event_age_minutes: u64,
    #[serde(default = "default_max_attempts")]
    pub max_attempts: i64,
    #[serde(default = "default_retry_initial_ms")]
    pub retry_initial_ms: u64,
    #[serde(default = "default_retry_max_ms")]
    pub retry_max_ms: u64,
    /// Texts per guardian per hour at most; more are recorded as `rate_limited`.
    #[serde(default = "default_rate_limit")]
    pub rate_limit_per_hour: i64,
    /// Texts in flight to the gateway at once, per relay.
    #[serde(default = "default_senders")]
    pub senders: usize,
    /// Settled deliveries and seen events are forgotten after this many days.
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
}

fn default_topics() -> Vec<String> {
    vec!["dolbom/v1/+/+/event/attendance".into()]
}
fn default_max_age() -> u64 {
    120
}
fn default_max_attempts() -> i64 {
    8
}
fn default_retry_initial_ms() -> u64 {
    1000
}
fn default_retry_max_ms() -> u64 {
    300_000
}
fn default_rate_limit() -> i64 {
    10
}
fn default_senders() -> usize {
    4
}
fn default_retention_days() -> u32 {
    90
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("relay config {path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error("relay database: {0}")]
    Store(#[from] StoreError),
    #[error("cannot start: {0}")]
    Start(String),
}

impl RelayFile {
    pub fn load(path: &Path) -> Result<Self, RelayError> {
        let err = |message: String| RelayError::Config { path: path.to_path_buf(), message };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let mut file: RelayFile = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        for p in [file.relay.database.as_mut(), Some(&mut file.relay.directory), file.relay.postgres_ca.as_mut()]
            .into_iter()
            .flatten()
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        file.mqtt.validate().map_err(|(k, m)| err(format!("`{k}` {m}")))?;
        let r = &file.relay;
        if r.topics.is_empty() || r.topics.iter().any(|t| t.is_empty() || t.starts_with("$share/")) {
            return Err(err("`relay.topics` must list plain topic filters (use relay.share_group for $share)".into()));
        }
        if r.share_group.as_ref().is_some_and(|g| g.is_empty() || g.contains(['/', '+', '#'])) {
            return Err(err("`relay.share_group` must be a plain name".into()));
        }
        if !(1..=100).contains(&r.max_attempts) || r.retry_initial_ms == 0 || r.retry_max_ms < r.retry_initial_ms {
            return Err(err("`relay.max_attempts` must be 1-100 and retry_initial_ms <= retry_max_ms".into()));
        }
        match (&r.database, &r.postgres) {
            (Some(_), None) | (None, Some(_)) => {}
            _ => {
                return Err(err(
                    "set exactly one of `relay.database` (an SQLite file) and `relay.postgres` (a connection string)"
                        .into(),
                ))
            }
        }
        // Relays in a group get each other's redeliveries: only a shared store can dedupe them.
        if r.share_group.is_some() && r.postgres.is_none() {
            return Err(err(
                "`relay.share_group` needs `relay.postgres`: the relays in a group must share one store".into()
            ));
        }
        if file.provider.timeout_ms().is_some_and(|t| !(100..=120_000).contains(&t)) {
            return Err(err("`provider.timeout_ms` must be 100-120000".into()));
        }
        if r.postgres_ca.is_some() && r.postgres.is_none() {
            return Err(err("`relay.postgres_ca` is for `relay.postgres`".into()));
        }
        if r.postgres.is_some() && file.mqtt.client_id.as_ref().is_none_or(|c| c.is_empty()) {
            return Err(err("`mqtt.client_id` must be set, and unique per relay, when `relay.postgres` is set".into()));
        }
        // A forgotten event arriving again must already be too old to text.
        if r.retention_days == 0 || u64::from(r.retention_days) * 1440 <= r.max_event_age_minutes {
            return Err(err("`relay.retention_days` must be at least 1 and longer than max_event_age_minutes".into()));
        }
        if !(1..=64).contains(&r.senders) {
            return Err(err("`relay.senders` must be 1-64".into()));
        }
        if r.rate_limit_per_hour < 1 {
            return Err(err("`relay.rate_limit_per_hour` must be at least 1".into()));
        }
        Ok(file)
    }

    pub fn store(&self) -> StoreConfig {
        match (&self.relay.postgres, &self.relay.database) {
            (Some(params), _) => StoreConfig::Postgres { params: params.clone(), ca: self.relay.postgres_ca.clone() },
            (None, Some(path)) => StoreConfig::Sqlite(path.clone()),
            // load() refuses a file with neither.
            (None, None) => StoreConfig::Sqlite(PathBuf::from("relay.db")),
        }
    }

    /// This relay's name in the store's claims: its MQTT client id.
    pub fn instance(&self) -> String {
        self.mqtt.client_id.clone().unwrap_or_else(|| "dolbom-relay".into())
    }
}

fn now_ms() -> i64 {
    Timestamp::now().as_millisecond()
}

/// What an incoming event means for the relay: its id, an outcome for the record, and the texts.
pub fn plan(
    payload: &[u8],
    topic_center: Option<&str>,
    dir: &Directory,
    settings: &RelaySettings,
    now_ms: i64,
) -> Result<(String, String, Vec<Delivery>), String> {
    let v: serde_json::Value = serde_json::from_slice(payload).map_err(|e| format!("not JSON: {e}"))?;
    let event_id = v["event_id"].as_str().filter(|s| !s.is_empty() && s.len() <= 64).ok_or("no event_id")?.to_string();
    let notice = match (v["schema"].as_str(), v["kind"].as_str()) {
        (Some("dolbom.attendance/1"), Some("arrival")) => Notice::Arrival,
        (Some("dolbom.attendance/1"), Some("departure")) => Notice::Departure,
        (Some("dolbom.fever/1"), _) => Notice::Fever,
        _ => return Ok((event_id, "not an event the relay texts".into(), Vec::new())),
    };
    let person = &v["person"];
    if person["role"] != "child" {
        return Ok((event_id, "not a child: nobody to text".into(), Vec::new()));
    }
    let child_id = person["id"].as_str().unwrap_or_default();
    let center_id = v["center"].as_str().unwrap_or_default();
    // A payload naming another center than its topic is not believed: it could text that
    // center's parents from a kiosk allowed to publish only under its own.
    if let Some(t) = topic_center.filter(|t| *t != center_id) {
        return Ok((event_id, format!("payload center `{center_id}` is not the topic's `{t}`"), Vec::new()));
    }
    let Some(child) = dir.child(center_id, child_id) else {
        return Ok((
            event_id,
            format!("child `{child_id}` of center `{center_id}` is not in the directory"),
            Vec::new(),
        ));
    };
    let Some(center) = dir.center(&child.center) else {
        return Ok((event_id, format!("center `{}` is not in the directory", child.center), Vec::new()));
    };
    let ts: Timestamp = v["ts"].as_str().and_then(|t| t.parse().ok()).ok_or("no valid ts")?;
    let tz = TimeZone::get(&center.timezone).map_err(|e| e.to_string())?;
    let time = ts.to_zoned_datetime(tz).time();
    let time = format!("{:02}:{:02}", time.hour(), time.minute());
    let temperature = v["temperature_c"].as_f64().map(|t| t as f32);
    let stale = now_ms - ts.as_millisecond() > settings.max_event_age_minutes as i64 * 60_000;
    let title = format!("[{}] 알림", center.name);
    let deliveries = child
        .guardians
        .iter()
        .filter(|g| g.notify.contains(&notice))
        .map(|g| {
            let body = directory::render(center, &g.lang, notice, &child.name, &time, temperature);
            let text = sms::compose(&body, &title);
            Delivery {
                id: 0,
                event_id: event_id.clone(),
                recipient: directory::normalize_phone(&g.phone),
                guardian: g.name.clone(),
                child: child.id.clone(),
                center: center.id.clone(),
                notice: format!("{notice:?}").to_lowercase(),
                event_ms: ts.as_millisecond(),
                sender: directory::normalize_phone(&center.sender),
                msg_type: text.kind.name().into(),
                subject: text.subject,
                body: text.body,
                status: if stale { "stale" } else { "pending" }.into(),
                attempts: 0,
                next_ms: now_ms,
                created_ms: now_ms,
                updated_ms: now_ms,
                detail: stale
                    .then(|| format!("event older than {} minutes when it arrived", settings.max_event_age_minutes)),
                instance: None,
            }
        })
        .collect::<Vec<_>>();
    let outcome = if stale { "stale" } else { "accepted" };
    Ok((event_id, format!("{outcome}: {} text(s)", deliveries.len()), deliveries))
}

/// The sender: `relay.senders` workers, each claiming the oldest due delivery and sending it, so
/// a slow gateway answer does not hold up every other parent's text.
pub struct Sender {
    pub store: Arc<dyn RelayStore>,
    /// This relay's name on its claims.
    pub instance: String,
    pub gateway: Box<dyn SmsGateway>,
    pub settings: RelaySettings,
    pub directory: Arc<Directory>,
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
        let span = info_span!("delivery", event_id = %d.event_id, to = %d.recipient);
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
                    warn!(reason, "gateway refused; not retried");
                    finish("failed", attempts, now, Some(&reason)).await;
                }
                SendOutcome::Unknown { reason } => {
                    warn!(reason, "no answer from the gateway after the request went out; not retried");
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
                        reason,
                        attempt = attempts,
                        retry_in_ms = delay.as_millis() as u64,
                        "gateway busy or failing; will retry"
                    );
                    finish("pending", attempts, now_ms().saturating_add(delay.as_millis() as i64), Some(&reason)).await;
                }
                SendOutcome::Retry { reason, .. } => {
                    warn!(reason, attempts, "giving up");
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
        quiet_until(self.directory.center(&d.center)?, now)
    }
}

/// The end of the center's quiet hours, when `now` falls inside them.
pub fn quiet_until(center: &directory::Center, now: i64) -> Option<i64> {
    let [from, to] = center.quiet_hours.as_ref()?;
    let (from, to): (jiff::civil::Time, jiff::civil::Time) = (from.parse().ok()?, to.parse().ok()?);
    let tz = TimeZone::get(&center.timezone).ok()?;
    let local = Timestamp::from_millisecond(now).ok()?.to_zoned_datetime(tz);
    let t = local.time();
    let inside = if from <= to { t >= from && t < to } else { t >= from || t < to };
    if !inside {
        return None;
    }
    // Quiet hours that wrap midnight end tomorrow when we are in the evening part.
    let mut end_date = local.date();
    if from > to && t >= from {
        end_date = end_date.tomorrow().ok()?;
    }
    Some(end_date.to_datetime(to).in_tz(&center.timezone).ok()?.timestamp().as_millisecond())
}

/// Runs the relay until SIGTERM/SIGINT.
pub fn run(file: RelayFile) -> Result<(), RelayError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let directory = Arc::new(Directory::load(&file.relay.directory).map_err(RelayError::Start)?);
    let instance = file.instance();
    let store = open_store(&file.store(), &instance)?;
    let gateway = provider::build(&file.provider).map_err(RelayError::Start)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| RelayError::Start(e.to_string()))?;
    // Texts under way get this long to finish at shutdown: one gateway timeout and some.
    let grace = Duration::from_millis(file.provider.timeout_ms().unwrap_or(0)) + Duration::from_secs(5);
    let keep = store.clone();
    runtime.block_on(async move {
        let wake = Arc::new(Notify::new());
        let sender = Arc::new(Sender {
            store: store.clone(),
            instance,
            gateway,
            settings: file.relay.clone(),
            directory: directory.clone(),
            wake: wake.clone(),
        });
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut workers = tokio::task::JoinSet::new();
        for w in 0..file.relay.senders {
            workers.spawn(sender.clone().run(w, stopped.clone()));
        }
        tokio::select! {
            _ = consume(&file, store, directory, wake) => {}
            _ = shutdown_signal() => info!("shutdown requested"),
        }
        let _ = stop.send(true);
        if tokio::time::timeout(grace, async { while workers.join_next().await.is_some() {} }).await.is_err() {
            warn!("texts still under way at shutdown; they will show as unknown, not re-sent");
        }
        workers.abort_all();
    });
    runtime.shutdown_timeout(Duration::from_secs(2));
    // The PostgreSQL client closes on its own runtime: dropped here, outside tokio's.
    drop(keep);
    Ok(())
}

/// Opens the store and settles the last run's interrupted deliveries, waiting for a database that
/// is not up yet (a relay and its PostgreSQL server booting together); other errors end the start.
fn open_store(config: &StoreConfig, instance: &str) -> Result<Arc<dyn RelayStore>, RelayError> {
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
    loop {
        let opened = store::open(config, Some(instance)).and_then(|store| {
            let now = now_ms();
            let recovered = store.recover(instance, now - store::CLAIM_LEASE_MS, now)?;
            Ok((store, recovered))
        });
        match opened {
            Ok((store, recovered)) => {
                if recovered.unknown > 0 {
                    warn!(
                        unknown = recovered.unknown,
                        "deliveries interrupted by the last stop were not re-sent; see `dolbom relay log`"
                    );
                }
                if recovered.requeued > 0 {
                    info!(requeued = recovered.requeued, "claimed but unsent texts from the last stop queued again");
                }
                return Ok(store);
            }
            Err(e) if e.is_transient() => {
                let wait = backoff.next_delay();
                warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "relay database not reachable yet");
                std::thread::sleep(wait);
            }
            // Another process under this name (or the database still holds a dead session's
            // lock until its keepalives end it): wait, loudly, rather than exit into a restart loop.
            Err(e @ StoreError::InstanceTaken(_)) => {
                let wait = backoff.next_delay();
                tracing::error!(error = %e, retry_in_ms = wait.as_millis() as u64, "cannot start yet");
                std::thread::sleep(wait);
            }
            Err(e) => return Err(e.into()),
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    if let (Ok(mut t), Ok(mut i)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        tokio::select! {
            _ = t.recv() => {}
            _ = i.recv() => {}
        }
    } else {
        std::future::pending::<()>().await
    }
}

/// The MQTT side: a persistent QoS 1 session with manual acknowledgements. A message is
/// acknowledged only after its deliveries are committed, so the broker redelivers anything the
/// relay did not finish taking in.
async fn consume(file: &RelayFile, store: Arc<dyn RelayStore>, directory: Arc<Directory>, wake: Arc<Notify>) {
    let m = &file.mqtt;
    let mut opts = MqttOptions::new(file.instance(), &m.host, m.port);
    opts.set_keep_alive(Duration::from_secs(m.keep_alive_secs)).set_clean_session(false).set_manual_acks(true);
    if let (Some(u), Some(p)) = (&m.username, &m.password) {
        opts.set_credentials(u, p);
    }
    let (client, mut eventloop) = rumqttc::AsyncClient::new(opts, 64);
    let filters: Vec<String> = file
        .relay
        .topics
        .iter()
        .map(|t| match &file.relay.share_group {
            Some(g) => format!("$share/{g}/{t}"),
            None => t.clone(),
        })
        .collect();
    let mut backoff =
        Backoff::new(Duration::from_millis(m.reconnect_initial_ms), Duration::from_millis(m.reconnect_max_ms));
    // The event loop runs in its own task: acknowledging and subscribing go through the client's
    // request queue, which only drains while the loop is polled. The channel is unbounded in
    // type but bounded in practice by the broker's in-flight window for unacknowledged QoS 1.
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        loop {
            let ev = eventloop.poll().await;
            let failed = ev.is_err();
            if tx.send(ev).is_err() {
                break;
            }
            if failed {
                tokio::time::sleep(backoff.next_delay()).await;
            } else {
                backoff.reset();
            }
        }
    });
    while let Some(ev) = events.recv().await {
        match ev {
            Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                info!(filters = ?filters, "connected; subscribing");
                for f in &filters {
                    if let Err(e) = client.subscribe(f.clone(), QoS::AtLeastOnce).await {
                        warn!(error = %e, filter = %f, "subscribe failed");
                    }
                }
            }
            Ok(Event::Incoming(Incoming::SubAck(ack))) => info!(codes = ?ack.return_codes, "subscribed"),
            Ok(Event::Incoming(Incoming::Publish(p))) => {
                let now = now_ms();
                // The topic's center is what the broker's ACL checked for this publisher.
                let topic_center = p.topic.split('/').nth(2);
                match plan(&p.payload, topic_center, &directory, &file.relay, now) {
                    Ok((event_id, outcome, deliveries)) => {
                        // Retry in place until the event is on disk: a broker does not redeliver
                        // within a live session, and later acks must not overtake this one.
                        let mut retry = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
                        let taken = Arc::new((event_id.clone(), outcome.clone(), deliveries));
                        loop {
                            let t = taken.clone();
                            match store::call(&store, move |s| s.intake(&t.0, &t.1, &t.2, now)).await {
                                Ok(fresh) => {
                                    info!(event_id, fresh, outcome, "event taken in");
                                    wake.notify_one();
                                    break;
                                }
                                Err(e) => {
                                    warn!(error = %e, event_id, "event not recorded yet; retrying before acknowledging");
                                    tokio::time::sleep(retry.next_delay()).await;
                                }
                            }
                        }
                    }
                    Err(reason) => warn!(topic = %p.topic, reason, "malformed event dropped"),
                }
                if let Err(e) = client.ack(&p).await {
                    warn!(error = %e, "ack failed; the broker may redeliver (deduplicated)");
                }
            }
            Ok(_) => {}
            Err(e) => warn!(error = %e, "broker connection lost; reconnecting"),
        }
    }
    driver.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn center(quiet: Option<[&str; 2]>) -> directory::Center {
        directory::Center {
            id: "c".into(),
            name: "C".into(),
            sender: "0212345678".into(),
            timezone: "Asia/Seoul".into(),
            quiet_hours: quiet.map(|[a, b]| [a.into(), b.into()]),
            templates: Default::default(),
        }
    }

    fn seoul(h: i8, m: i8) -> i64 {
        jiff::civil::date(2026, 11, 25).at(h, m, 0, 0).in_tz("Asia/Seoul").expect("tz").timestamp().as_millisecond()
    }

    #[test]
    fn quiet_hours_across_midnight_hold_until_morning() {
        let c = center(Some(["22:00", "06:30"]));
        let next_morning = jiff::civil::date(2026, 11, 26)
            .at(6, 30, 0, 0)
            .in_tz("Asia/Seoul")
            .expect("tz")
            .timestamp()
            .as_millisecond();
        assert_eq!(quiet_until(&c, seoul(23, 15)), Some(next_morning));
        assert_eq!(quiet_until(&c, seoul(5, 0)), Some(seoul(6, 30)));
        assert_eq!(quiet_until(&c, seoul(8, 42)), None);
        assert_eq!(quiet_until(&center(None), seoul(23, 15)), None);
        let lunch = center(Some(["12:00", "13:00"]));
        assert_eq!(quiet_until(&lunch, seoul(12, 30)), Some(seoul(13, 0)));
    }

    #[test]
    fn plan_skips_what_nobody_should_get() {
        let dir: Directory = toml::from_str(
            r#"
[[center]]
id = "c"
name = "C"
sender = "0212345678"
[[child]]
id = "minji"
center = "c"
name = "김민지"
[[child.guardian]]
name = "mom"
phone = "01012345678"
notify = ["arrival"]
"#,
        )
        .expect("directory");
        let settings: RelaySettings = toml::from_str("database = \"x\"\ndirectory = \"y\"").expect("settings");
        let now = Timestamp::now();
        let at = |center: &str, kind: &str, role: &str| {
            serde_json::json!({"schema": "dolbom.attendance/1", "event_id": "e1", "kind": kind, "ts": now.to_string(),
                               "center": center, "person": {"id": "minji", "role": role}, "temperature_c": null})
            .to_string()
        };
        let ev = |kind: &str, role: &str| at("c", kind, role);
        let (_, _, d) =
            plan(ev("arrival", "child").as_bytes(), Some("c"), &dir, &settings, now.as_millisecond()).expect("plan");
        assert_eq!(d.len(), 1);
        let (_, _, d) =
            plan(ev("departure", "child").as_bytes(), None, &dir, &settings, now.as_millisecond()).expect("plan");
        assert!(d.is_empty(), "mom did not ask for departures");
        let (_, outcome, d) =
            plan(ev("arrival", "staff").as_bytes(), None, &dir, &settings, now.as_millisecond()).expect("plan");
        assert!(d.is_empty() && outcome.contains("not a child"));
        let other = at("elsewhere", "arrival", "child");
        let (_, outcome, d) = plan(other.as_bytes(), None, &dir, &settings, now.as_millisecond()).expect("plan");
        assert!(d.is_empty(), "another center's `minji` is another child: {outcome}");
        assert!(plan(b"{garbage", None, &dir, &settings, 0).is_err());
        let (_, outcome, d) =
            plan(ev("arrival", "child").as_bytes(), Some("elsewhere"), &dir, &settings, now.as_millisecond())
                .expect("plan");
        assert!(d.is_empty(), "a payload naming another center than its topic is not texted: {outcome}");
    }
}
