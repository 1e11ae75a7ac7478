//! The intake: kiosk events from MQTT in, planned texts committed to the store, then the message
//! acknowledged. The session is persistent (QoS 1, manual acknowledgements), so the broker
//! redelivers anything the relay did not finish taking in; the store dedupes on the event id.
//!
//! Events are read from the topics the contract parses, as the contract's types, but only the
//! fields the relay uses: a newer kiosk's additions do not stop texts. A payload that does not fit
//! its topic's event is recorded with the reason (and acknowledged), never guessed at.

use std::sync::Arc;
use std::time::Duration;

use dolbom_backoff::Backoff;
use dolbom_contract::{AttendanceKind, Kind, PersonRef, Role, SettleMethod, TemperatureKind, TemperatureStatus, Topic};
use dolbom_mqtt::{Protocol, Session, SessionEvent};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use tokio::sync::Notify;
use tracing::{info, info_span, warn, Instrument};
use uuid::Uuid;

use crate::config::{RelayFile, RelaySettings};
use crate::directory::SharedDirectory;
use crate::directory::{self, Directory, Notice, TemperatureNote};
use crate::store::{self, Delivery, RelayStore};
use crate::{now_ms, sms};
use dolbom_contract::text::visible;

/// What an incoming event means for the relay: its id, an outcome for the record, and the texts.
#[derive(Debug)]
pub struct Plan {
    pub event_id: String,
    pub outcome: String,
    pub deliveries: Vec<Delivery>,
    /// Set (to the capture time) when the directory has no such child: the event is kept to be
    /// planned again if the child is added soon.
    pub unknown_child_ms: Option<i64>,
    /// Set (to the capture time) for an arrival whose reading was `remeasure`: its texts wait
    /// for the kiosk's `event/temperature`, or `relay.hold_remeasure_minutes`.
    pub held_ms: Option<i64>,
    /// For an `event/temperature`: the held arrival it closes, and what its text says.
    pub settles: Option<(String, TemperatureNote)>,
}

impl Plan {
    fn nothing(event_id: String, outcome: String) -> Self {
        Self { event_id, outcome, deliveries: Vec::new(), unknown_child_ms: None, held_ms: None, settles: None }
    }
}

/// The part of an event the relay texts about.
struct Textable {
    event_id: String,
    notice: Notice,
    center: String,
    person: Option<PersonRef>,
    ts: String,
    temperature_c: Option<f32>,
    /// What the text may say of the temperature: only a settled value (normal or elevated). A
    /// `remeasure` reading is a question still open, never told to a parent as a value.
    note: TemperatureNote,
    /// An arrival asked to re-measure: held for the settled value.
    remeasure: bool,
    /// For an `event/temperature`: the arrival it closes.
    settles: Option<String>,
}

/// What the relay reads of an attendance or fever event: the fields it uses, in the contract's
/// types, and nothing else required. Kiosks and relays are upgraded apart: a kiosk may add a
/// field or an enum value within a schema version (a new temperature status, say), and parents
/// must keep getting texts. The tests hold this view against the contract's full types.
#[derive(Deserialize)]
struct EventView {
    schema: String,
    event_id: Uuid,
    center: String,
    ts: String,
    #[serde(default, deserialize_with = "lenient")]
    kind: Option<AttendanceKind>,
    #[serde(default)]
    person: Option<PersonView>,
    #[serde(default, deserialize_with = "lenient")]
    temperature_c: Option<f32>,
    #[serde(default, deserialize_with = "lenient")]
    temperature_status: Option<TemperatureStatus>,
    /// A fever event's wording: a staff thermometer value's is its own.
    #[serde(default, deserialize_with = "lenient")]
    message: Option<String>,
}

/// What the relay reads of an `event/temperature`.
#[derive(Deserialize)]
struct TemperatureView {
    schema: String,
    event_id: Uuid,
    center: String,
    ts: String,
    #[serde(default, deserialize_with = "lenient")]
    kind: Option<TemperatureKind>,
    #[serde(default)]
    person: Option<PersonView>,
    arrival_event_id: Uuid,
    #[serde(default, deserialize_with = "lenient")]
    temperature_c: Option<f32>,
    #[serde(default, deserialize_with = "lenient")]
    temperature_status: Option<TemperatureStatus>,
    #[serde(default, deserialize_with = "lenient")]
    method: Option<SettleMethod>,
}

#[derive(Deserialize)]
struct PersonView {
    id: String,
    /// A role this relay does not know is nobody it texts.
    #[serde(default, deserialize_with = "lenient")]
    role: Option<Role>,
}

/// A value this relay cannot read as `T` (a newer kiosk's enum value) reads as `None`.
fn lenient<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Option<T>, D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    Ok(T::deserialize(value).ok())
}

/// Reads the payload as its topic's event. `Ok(Err(plan))` is an event the relay records but
/// does not text (with the reason); `Err` is a message without an event id, which cannot be
/// recorded at all.
fn read(topic: &Topic, payload: &[u8]) -> Result<Result<Textable, Plan>, String> {
    let (name, schema) = match topic.kind {
        Kind::Attendance => ("attendance", dolbom_contract::ATTENDANCE_SCHEMA),
        Kind::Fever => ("fever", dolbom_contract::FEVER_SCHEMA),
        Kind::Temperature => return read_temperature(payload),
        _ => {
            // Recorded by id, so a subscription that is too wide shows in the record, not in texts.
            let id = event_id(payload)?;
            return Ok(Err(Plan::nothing(id, "not an event the relay texts".into())));
        }
    };
    let e: EventView = match serde_json::from_slice(payload) {
        Ok(e) => e,
        Err(error) => {
            let id = event_id(payload)?;
            return Ok(Err(Plan::nothing(id, format!("not a valid {name} event: {error}"))));
        }
    };
    let event_id = e.event_id.to_string();
    if e.schema != schema {
        return Ok(Err(Plan::nothing(event_id, format!("schema `{}` not understood", visible(&e.schema)))));
    }
    let notice = match (topic.kind.clone(), e.kind) {
        (Kind::Fever, _) => Notice::Fever,
        (_, Some(AttendanceKind::Arrival)) => Notice::Arrival,
        (_, Some(AttendanceKind::Departure)) => Notice::Departure,
        (_, None) => return Ok(Err(Plan::nothing(event_id, "attendance kind not understood".into()))),
    };
    let person = e.person.and_then(|p| Some(PersonRef { role: p.role?, id: p.id }));
    // A fever event's value is the elevated reading itself; an attendance event's only when
    // settled (a status this relay does not know is not assumed settled).
    let note = match (&notice, e.temperature_status) {
        (Notice::Fever, _) if e.message.as_deref() == Some(dolbom_contract::FEVER_MESSAGE_THERMOMETER) => {
            e.temperature_c.map_or(TemperatureNote::None, TemperatureNote::ThermometerElevated)
        }
        (Notice::Fever, _) | (_, Some(TemperatureStatus::Normal)) => e.temperature_c.into(),
        (_, Some(TemperatureStatus::Elevated)) => {
            e.temperature_c.map_or(TemperatureNote::None, TemperatureNote::Elevated)
        }
        _ => TemperatureNote::None,
    };
    let remeasure = notice == Notice::Arrival && e.temperature_status == Some(TemperatureStatus::Remeasure);
    Ok(Ok(Textable {
        event_id,
        notice,
        center: e.center,
        person,
        ts: e.ts,
        temperature_c: e.temperature_c,
        note,
        remeasure,
        settles: None,
    }))
}

/// Reads an `event/temperature`: which held arrival it closes, and with what.
fn read_temperature(payload: &[u8]) -> Result<Result<Textable, Plan>, String> {
    let e: TemperatureView = match serde_json::from_slice(payload) {
        Ok(e) => e,
        Err(error) => {
            let id = event_id(payload)?;
            return Ok(Err(Plan::nothing(id, format!("not a valid temperature event: {error}"))));
        }
    };
    let event_id = e.event_id.to_string();
    if e.schema != dolbom_contract::TEMPERATURE_SCHEMA {
        return Ok(Err(Plan::nothing(event_id, format!("schema `{}` not understood", visible(&e.schema)))));
    }
    // A thermometer value is told as one: it needs no "confirm with a thermometer".
    let thermometer = e.method == Some(SettleMethod::Thermometer);
    let note = match (e.kind, e.temperature_status, e.temperature_c) {
        (Some(TemperatureKind::Settled), Some(TemperatureStatus::Normal), Some(t)) if thermometer => {
            TemperatureNote::Thermometer(t)
        }
        (Some(TemperatureKind::Settled), Some(TemperatureStatus::Elevated), Some(t)) if thermometer => {
            TemperatureNote::ThermometerElevated(t)
        }
        (Some(TemperatureKind::Settled), Some(TemperatureStatus::Normal), Some(t)) => TemperatureNote::Value(t),
        (Some(TemperatureKind::Settled), Some(TemperatureStatus::Elevated), Some(t)) => TemperatureNote::Elevated(t),
        // Unsettled, or settled in a way this relay does not know: no value is told.
        _ => TemperatureNote::NotCompleted,
    };
    let person = e.person.and_then(|p| Some(PersonRef { role: p.role?, id: p.id }));
    Ok(Ok(Textable {
        event_id,
        notice: Notice::Arrival,
        center: e.center,
        person,
        ts: e.ts,
        temperature_c: e.temperature_c,
        note,
        remeasure: false,
        settles: Some(e.arrival_event_id.to_string()),
    }))
}

/// The event id of a payload that is not otherwise readable, to record it under.
fn event_id(payload: &[u8]) -> Result<String, String> {
    #[derive(Deserialize)]
    struct IdOnly {
        event_id: Uuid,
    }
    let e: IdOnly = serde_json::from_slice(payload).map_err(|e| format!("no event_id: {e}"))?;
    Ok(e.event_id.to_string())
}

/// Plans the texts for one message: who is told what, or why nobody is.
pub fn plan(
    topic: &str,
    payload: &[u8],
    dir: &Directory,
    settings: &RelaySettings,
    now_ms: i64,
) -> Result<Plan, String> {
    plan_with(topic, payload, dir, settings, now_ms, None)
}

/// [`plan`], or with `release` the texts of a held arrival, saying what was settled.
fn plan_with(
    topic: &str,
    payload: &[u8],
    dir: &Directory,
    settings: &RelaySettings,
    now_ms: i64,
    release: Option<TemperatureNote>,
) -> Result<Plan, String> {
    let topic = Topic::parse(topic).ok_or_else(|| format!("`{topic}` is not a dolbom topic"))?;
    let event = match read(&topic, payload)? {
        Ok(event) => event,
        Err(plan) => return Ok(plan),
    };
    let event_id = event.event_id;
    let Some(person) = event.person.filter(|p| p.role == Role::Child) else {
        return Ok(Plan::nothing(event_id, "not a child: nobody to text".into()));
    };
    // A payload naming another center than its topic is not believed: it could text that
    // center's parents from a kiosk allowed to publish only under its own.
    if event.center != topic.center {
        return Ok(Plan::nothing(
            event_id,
            format!("payload center `{}` is not the topic's `{}`", visible(&event.center), visible(&topic.center)),
        ));
    }
    let Ok(ts) = event.ts.parse::<Timestamp>() else {
        return Ok(Plan::nothing(event_id, format!("refused: ts `{}` is not an RFC 3339 time", visible(&event.ts))));
    };
    // What no kiosk could have seen is refused before anyone is looked up: an event from the
    // future (beyond the clocks' allowed disagreement) or a temperature no living child has.
    if let Some(reason) = implausible(ts, event.temperature_c, settings, now_ms) {
        return Ok(Plan::nothing(event_id, format!("refused: {reason}")));
    }
    let Some(child) = dir.child(&event.center, &person.id) else {
        return Ok(Plan {
            event_id,
            outcome: format!(
                "{UNKNOWN_CHILD}: child `{}` of center `{}` is not in the directory",
                visible(&person.id),
                visible(&event.center)
            ),
            deliveries: Vec::new(),
            unknown_child_ms: Some(ts.as_millisecond()),
            held_ms: None,
            settles: None,
        });
    };
    let Some(center) = dir.center(&child.center) else {
        return Ok(Plan::nothing(event_id, format!("center `{}` is not in the directory", visible(&child.center))));
    };
    let tz = TimeZone::get(&center.timezone).map_err(|e| e.to_string())?;
    let time = ts.to_zoned_datetime(tz).time();
    let time = format!("{:02}:{:02}", time.hour(), time.minute());
    // A held arrival was judged fresh when it came; it waited here on purpose.
    let stale = release.is_none() && now_ms - ts.as_millisecond() > settings.max_event_age_minutes as i64 * 60_000;
    if let Some(arrival) = event.settles {
        let n = child.guardians.iter().filter(|g| g.notify.contains(&Notice::Arrival)).count();
        return Ok(Plan {
            outcome: format!("settles arrival {arrival} ({n} guardian(s) to text)"),
            settles: Some((arrival, event.note)),
            ..Plan::nothing(event_id, String::new())
        });
    }
    if event.remeasure && release.is_none() && !stale {
        return Ok(Plan {
            outcome: "held: asked to re-measure; the text waits for the settled value".into(),
            held_ms: Some(ts.as_millisecond()),
            ..Plan::nothing(event_id, String::new())
        });
    }
    let temperature = release.unwrap_or(event.note);
    let title = format!("[{}] 알림", center.name);
    let notice = event.notice;
    // One text per phone per event: guardians sharing a number (reported when the directory is
    // read) get it once, as the first of them listed who asked for this notice.
    let mut numbers = std::collections::HashSet::new();
    let deliveries = child
        .guardians
        .iter()
        .filter(|g| g.notify.contains(&notice) && numbers.insert(g.digits.as_str()))
        .map(|g| {
            let body = directory::render(center, &g.lang, notice, &child.name, &time, temperature);
            let text = sms::compose(&body, &title);
            Delivery {
                id: 0,
                event_id: event_id.clone(),
                recipient: g.digits.clone(),
                guardian: g.name.clone(),
                child: child.id.clone(),
                center: center.id.clone(),
                notice: format!("{notice:?}").to_lowercase(),
                event_ms: ts.as_millisecond(),
                sender: center.sender.clone(),
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
    Ok(Plan {
        event_id,
        outcome: format!("{outcome}: {} text(s)", deliveries.len()),
        deliveries,
        unknown_child_ms: None,
        held_ms: None,
        settles: None,
    })
}

/// The outcome of an event whose child the directory did not know (yet), kept to plan it again
/// when the directory changes.
pub const UNKNOWN_CHILD: &str = "unknown child";

/// Body temperatures a kiosk can have measured on a living child, in °C (the kiosk's own range):
/// anything outside is a broken sensor or a broken payload, never a parent's text.
pub const PLAUSIBLE_TEMPERATURE_C: std::ops::RangeInclusive<f32> = dolbom_contract::SKIN_TEMPERATURE_C;

/// Why an event cannot be what a kiosk saw, if it cannot.
fn implausible(ts: Timestamp, temperature_c: Option<f32>, settings: &RelaySettings, now_ms: i64) -> Option<String> {
    let ahead_ms = ts.as_millisecond().saturating_sub(now_ms);
    if ahead_ms > settings.max_clock_skew_seconds as i64 * 1000 {
        return Some(format!(
            "dated {ts}, {} s ahead of this relay's clock (relay.max_clock_skew_seconds = {})",
            ahead_ms / 1000,
            settings.max_clock_skew_seconds
        ));
    }
    match temperature_c {
        Some(t) if !t.is_finite() => Some(format!("temperature_c {t} is not a number")),
        Some(t) if !PLAUSIBLE_TEMPERATURE_C.contains(&t) => Some(format!(
            "temperature_c {t} is outside {:.0}-{:.0} °C, no body temperature",
            PLAUSIBLE_TEMPERATURE_C.start(),
            PLAUSIBLE_TEMPERATURE_C.end()
        )),
        _ => None,
    }
}

/// The MQTT side, until the process is stopped: one persistent session at a time through the
/// shared session driver, reconnecting with backoff. A message is acknowledged only after its
/// deliveries are committed.
pub async fn consume(file: &RelayFile, store: Arc<dyn RelayStore>, directory: Arc<SharedDirectory>, wake: Arc<Notify>) {
    let filters: Vec<String> = file
        .relay
        .topics
        .iter()
        .map(|t| match &file.relay.share_group {
            Some(g) => format!("$share/{g}/{t}"),
            None => t.clone(),
        })
        .collect();
    let options = dolbom_mqtt::ConnectOptions { persistent: true, ..file.mqtt.connect_options(&file.instance()) };
    let (initial, max) = file.mqtt.reconnect_delays();
    let mut backoff = Backoff::new(initial, max);
    let span = info_span!("intake", host = %file.mqtt.host, port = file.mqtt.port);
    async {
        loop {
            // Persistent sessions are v3.1.1 here: the broker keeps what was not acknowledged.
            let mut session = Session::new(Protocol::V311, &options);
            loop {
                match session.poll().await {
                    Ok(SessionEvent::Connected) => {
                        backoff.reset();
                        info!(filters = ?filters, "connected; subscribing");
                        for f in &filters {
                            if let Err(e) = session.subscribe(f) {
                                warn!(error = %e, filter = %f, "subscribe failed");
                            }
                        }
                    }
                    Ok(SessionEvent::Subscribed { refused }) => {
                        if refused > 0 {
                            warn!(refused, "the broker refused a subscription (check its ACL)");
                        } else {
                            info!("subscribed");
                        }
                    }
                    Ok(SessionEvent::Message { topic, payload, ack, .. }) => {
                        take_in(&topic, &payload, file, &store, &directory, &wake).await;
                        if let Some(ack) = ack {
                            if let Err(e) = session.ack(ack).await {
                                warn!(error = %e, "ack failed; the broker may redeliver (deduplicated)");
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        warn!(error = %e, "broker connection lost; reconnecting");
                        break;
                    }
                }
            }
            drop(session);
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }
    .instrument(span)
    .await
}

/// Plans one message and records it, retrying in place until it is on disk: a broker does not
/// redeliver within a live session, and later acks must not overtake this one.
async fn take_in(
    topic: &str,
    payload: &[u8],
    file: &RelayFile,
    store: &Arc<dyn RelayStore>,
    directory: &SharedDirectory,
    wake: &Notify,
) {
    let now = now_ms();
    let plan = match plan(topic, payload, &directory.get(), &file.relay, now) {
        Ok(plan) => plan,
        Err(reason) => {
            warn!(topic = %visible(topic), reason, "malformed event dropped");
            return;
        }
    };
    // An unknown child's event is kept (the payload as it came: it parsed, so it is UTF-8) to be
    // planned again when the directory changes, if that is switched on; an arrival asked to
    // re-measure is kept until it is settled.
    let kept = |event_ms| {
        std::str::from_utf8(payload).ok().map(|text| store::Parked {
            event_id: plan.event_id.clone(),
            topic: topic.to_string(),
            payload: text.to_string(),
            event_ms,
        })
    };
    let keep = match (plan.unknown_child_ms, file.relay.replan_unknown(), plan.held_ms) {
        (Some(event_ms), minutes, _) if minutes > 0 => kept(event_ms).map(Keep::Parked),
        (_, _, Some(event_ms)) => kept(event_ms).map(Keep::Held),
        _ => None,
    };
    let mut retry = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    let (event_id, outcome) = (plan.event_id.clone(), plan.outcome.clone());
    let refused = outcome.starts_with("refused");
    let settles = plan.settles.clone();
    let taken = Arc::new((plan, keep));
    loop {
        // A settle texts its held arrival first; a crash in between is redelivered and finds the
        // arrival no longer held, so it is texted once either way.
        let released = match &settles {
            Some((arrival, note)) => {
                let reason = format!("settled by {event_id}");
                let from = Topic::parse(topic).map(|t| (t.center, t.kiosk));
                release(store, &directory.get(), &file.relay, arrival, *note, &reason, from, now).await.map(Some)
            }
            None => Ok(None),
        };
        let t = taken.clone();
        let recorded = match released {
            Ok(released) => {
                let outcome = match released {
                    Some(Some(n)) => format!("{}: {n} text(s) of the held arrival", t.0.outcome),
                    Some(None) => {
                        format!("{}: the arrival was not held here (texted already, or never seen)", t.0.outcome)
                    }
                    None => t.0.outcome.clone(),
                };
                store::call(store, move |s| match &t.1 {
                    Some(Keep::Parked(parked)) => s.intake_parked(parked, &t.0.outcome, now),
                    Some(Keep::Held(held)) => s.intake_held(held, &t.0.outcome, now),
                    None => s.intake(&t.0.event_id, &outcome, &t.0.deliveries, now),
                })
                .await
            }
            Err(e) => Err(e),
        };
        match recorded {
            Ok(fresh) => {
                if refused {
                    warn!(event_id, fresh, outcome, "event refused: not texted");
                } else {
                    info!(event_id, fresh, outcome, "event taken in");
                }
                wake.notify_one();
                return;
            }
            Err(e) => {
                warn!(error = %e, event_id, "event not recorded yet; retrying before acknowledging");
                tokio::time::sleep(retry.next_delay()).await;
            }
        }
    }
}

/// What the store keeps of an event besides its record.
enum Keep {
    Parked(store::Parked),
    Held(store::Parked),
}

/// Texts the held arrival `arrival` with `note`, once: `Some(texts)` when this call released it,
/// `None` when it was not held (already released, or never seen here). `from` is the (center,
/// kiosk) that settled it: only the kiosk that held the arrival may say what its text says.
#[allow(clippy::too_many_arguments)]
async fn release(
    store: &Arc<dyn RelayStore>,
    directory: &Directory,
    settings: &RelaySettings,
    arrival: &str,
    note: TemperatureNote,
    reason: &str,
    from: Option<(String, String)>,
    now: i64,
) -> Result<Option<usize>, store::StoreError> {
    let id = arrival.to_string();
    let Some(held) = store::call(store, move |s| s.held(&id)).await? else {
        if from.is_some() {
            late_settle(store, arrival).await;
        }
        return Ok(None);
    };
    if let Some(from) = from {
        if Topic::parse(&held.topic).map(|t| (t.center, t.kiosk)) != Some(from) {
            warn!(arrival, "a temperature event from another kiosk than the arrival's: ignored");
            return Ok(None);
        }
    }
    let (outcome, deliveries) =
        match plan_with(&held.topic, held.payload.as_bytes(), directory, settings, now, Some(note)) {
            Ok(plan) => (format!("{} (held, then {reason})", plan.outcome), plan.deliveries),
            Err(why) => (format!("dropped when released: {why}"), Vec::new()),
        };
    let n = deliveries.len();
    let id = arrival.to_string();
    let ours = store::call(store, move |s| s.release_held(&id, &outcome, &deliveries, now)).await?;
    if ours {
        info!(arrival, texts = n, reason, "held arrival texted");
    }
    Ok(ours.then_some(n))
}

/// The deadline's reason, kept in the released arrival's outcome.
const OVERDUE: &str = "no settled value within relay.hold_remeasure_minutes";

/// A settle for an arrival the deadline already texted "not completed": its value is dropped,
/// which happens only when the kiosk's own deadline is the longer one. Said, naming both keys.
async fn late_settle(store: &Arc<dyn RelayStore>, arrival: &str) -> bool {
    let id = arrival.to_string();
    let late = matches!(store::call(store, move |s| s.outcome(&id)).await, Ok(Some(o)) if o.contains(OVERDUE));
    if late {
        warn!(
            arrival,
            "a settled value came after relay.hold_remeasure_minutes had texted the arrival as not completed: \
                 dropped; keep the kiosks' fever.settle_within_mins shorter than relay.hold_remeasure_minutes"
        );
    }
    late
}

/// Texts the held arrivals past `relay.hold_remeasure_minutes` without a temperature, saying the
/// check was not completed and a teacher will check. Returns the texts added.
pub async fn release_overdue(store: &Arc<dyn RelayStore>, directory: &Directory, settings: &RelaySettings) -> usize {
    let now = now_ms();
    let before = now - settings.hold_remeasure() as i64 * 60_000;
    let due = match store::call(store, move |s| s.held_before(before)).await {
        Ok(due) => due,
        Err(e) => {
            warn!(error = %e, "held arrivals not read; will try again");
            return 0;
        }
    };
    let mut added = 0;
    for held in due {
        match release(store, directory, settings, &held.event_id, TemperatureNote::NotCompleted, OVERDUE, None, now)
            .await
        {
            Ok(Some(n)) => added += n,
            Ok(None) => {}
            Err(e) => warn!(error = %e, event_id = held.event_id, "held arrival not released yet; will try again"),
        }
    }
    added
}

/// Plans again the parked events of the last `relay.replan_unknown_minutes` with the current
/// directory: those whose child it now knows get their texts (once: the store takes each off
/// the parked list in the same transaction that adds its deliveries). Returns the texts added.
pub async fn replan(store: &Arc<dyn RelayStore>, directory: &Directory, settings: &RelaySettings) -> usize {
    let now = now_ms();
    let since = now - settings.replan_unknown() as i64 * 60_000;
    let parked = match store::call(store, move |s| s.parked(since)).await {
        Ok(parked) => parked,
        Err(e) => {
            warn!(error = %e, "parked events not read; will try again");
            return 0;
        }
    };
    let mut added = 0;
    for p in parked {
        let plan = match plan(&p.topic, p.payload.as_bytes(), directory, settings, now) {
            // Still nobody the directory knows: it stays parked until it is too old.
            Ok(plan) if plan.unknown_child_ms.is_some() => continue,
            Ok(plan) => plan,
            Err(reason) => {
                let outcome = format!("dropped when planned again: {reason}");
                let (event_id, o) = (p.event_id.clone(), outcome.clone());
                match store::call(store, move |s| s.unpark(&p.event_id, &o, &[], now)).await {
                    Ok(_) => info!(event_id, outcome, "parked event dropped"),
                    Err(e) => warn!(error = %e, event_id, "parked event not planned again yet; will try again"),
                }
                continue;
            }
        };
        let event_id = p.event_id.clone();
        // An arrival asked to re-measure waits for its settle now, as if it had been held on
        // intake: moved to the held list in one transaction, never dropped with no text.
        if plan.held_ms.is_some() {
            let outcome = format!("{} (after a directory change)", plan.outcome);
            match store::call(store, move |s| s.unpark_to_held(&p, &outcome, now)).await {
                Ok(true) => info!(event_id, "parked arrival of a child added to the directory now held"),
                Ok(false) => {}
                Err(e) => warn!(error = %e, event_id, "parked arrival not held yet; will try again"),
            }
            continue;
        }
        let mut outcome = format!("{} (planned again after a directory change)", plan.outcome);
        // A parked settle texts its held arrival first (parked events are replanned in capture
        // order, so an arrival parked with it is held by now); if that fails it stays parked and
        // is tried again on the next poll.
        if let Some((arrival, note)) = &plan.settles {
            let reason = format!("settled by {event_id}");
            let from = Topic::parse(&p.topic).map(|t| (t.center, t.kiosk));
            match release(store, directory, settings, arrival, *note, &reason, from, now).await {
                Ok(Some(n)) => {
                    outcome = format!("{outcome}: {n} text(s) of the held arrival");
                    added += n;
                }
                Ok(None) => outcome = format!("{outcome}: the arrival was not held here"),
                Err(e) => {
                    warn!(error = %e, event_id, "parked settle not released yet; will try again");
                    continue;
                }
            }
        }
        let deliveries = plan.deliveries;
        let n = deliveries.len();
        let o = outcome.clone();
        match store::call(store, move |s| s.unpark(&p.event_id, &o, &deliveries, now)).await {
            Ok(true) => {
                info!(event_id, outcome, "event of a child added to the directory planned again");
                added += n;
            }
            Ok(false) => {}
            Err(e) => warn!(error = %e, event_id, "parked event not planned again yet; will try again"),
        }
    }
    added
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_skips_what_nobody_should_get() {
        let dir = directory(r#"["arrival"]"#);
        let settings = settings();
        let now = Timestamp::now();
        let at = |center: &str, kind: &str, role: &str| {
            serde_json::json!({"schema": "dolbom.attendance/1", "event_id": "01a00000-0000-7000-8000-000000000001",
                               "kind": kind, "ts": now.to_string(), "center": center, "kiosk": "door-1",
                               "person": {"id": "minji", "role": role}, "confidence": 0.9, "temperature_c": null,
                               "temperature_status": "screening_off", "method": "face"})
            .to_string()
        };
        let topic = |center: &str| format!("dolbom/v1/{center}/door-1/event/attendance");
        let ev = |kind: &str, role: &str| at("c", kind, role);
        let now_ms = now.as_millisecond();
        let p = plan(&topic("c"), ev("arrival", "child").as_bytes(), &dir, &settings, now_ms).expect("plan");
        assert_eq!(p.deliveries.len(), 1);
        let p = plan(&topic("c"), ev("departure", "child").as_bytes(), &dir, &settings, now_ms).expect("plan");
        assert!(p.deliveries.is_empty(), "mom did not ask for departures");
        let p = plan(&topic("c"), ev("arrival", "staff").as_bytes(), &dir, &settings, now_ms).expect("plan");
        assert!(p.deliveries.is_empty() && p.outcome.contains("not a child"));
        let other = at("elsewhere", "arrival", "child");
        let p = plan(&topic("elsewhere"), other.as_bytes(), &dir, &settings, now_ms).expect("plan");
        assert!(p.deliveries.is_empty(), "another center's `minji` is another child: {}", p.outcome);
        assert!(plan(&topic("c"), b"{garbage", &dir, &settings, 0).is_err());
        let p = plan(&topic("elsewhere"), ev("arrival", "child").as_bytes(), &dir, &settings, now_ms).expect("plan");
        assert!(p.deliveries.is_empty(), "a payload naming another center than its topic is not texted: {}", p.outcome);
    }

    /// One center with one child, whose mother asked for the texts in `notify`.
    fn directory(notify: &str) -> Directory {
        let text = format!(
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
notify = {notify}
"#
        );
        let loaded = Directory::parse(&text).expect("directory");
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        loaded.directory
    }

    fn settings() -> RelaySettings {
        toml::from_str("database = \"x\"\ndirectory = \"y\"").expect("settings")
    }

    fn setup() -> (Directory, RelaySettings) {
        (directory(r#"["arrival", "departure", "fever"]"#), settings())
    }

    /// What a kiosk publishes, built from the contract's own types, is what the relay reads.
    #[test]
    fn the_contracts_own_events_are_texted() {
        use dolbom_contract::{AttendanceEvent, CheckInMethod, FeverEvent, TemperatureStatus, Topics};
        let (dir, settings) = setup();
        let now = Timestamp::now();
        let topics = Topics::new("c", "door-1");
        let child = PersonRef { id: "minji".into(), role: Role::Child };
        let attendance = AttendanceEvent {
            schema: dolbom_contract::ATTENDANCE_SCHEMA.into(),
            event_id: dolbom_contract::new_event_id(),
            center: "c".into(),
            kiosk: "door-1".into(),
            ts: now.to_string(),
            kind: AttendanceKind::Departure,
            person: child.clone(),
            confidence: 0.9,
            temperature_c: Some(36.6),
            temperature_status: TemperatureStatus::Normal,
            temperature_site: Some(dolbom_contract::TemperatureSite::Canthus),
            method: CheckInMethod::Face,
        };
        let payload = serde_json::to_vec(&attendance).expect("json");
        let p = plan(&topics.attendance(), &payload, &dir, &settings, now.as_millisecond()).expect("plan");
        assert_eq!((p.event_id, p.deliveries.len()), (attendance.event_id.to_string(), 1), "{}", p.outcome);
        assert_eq!(p.deliveries[0].notice, "departure");
        let fever = FeverEvent {
            schema: dolbom_contract::FEVER_SCHEMA.into(),
            event_id: dolbom_contract::new_event_id(),
            center: "c".into(),
            kiosk: "door-1".into(),
            ts: now.to_string(),
            alert_id: "a1".into(),
            person: Some(child),
            track_id: 4,
            temperature_c: 38.4,
            threshold_c: 37.5,
            message: dolbom_contract::FEVER_MESSAGE.into(),
        };
        let payload = serde_json::to_vec(&fever).expect("json");
        let p = plan(&topics.fever(), &payload, &dir, &settings, now.as_millisecond()).expect("plan");
        assert_eq!(p.deliveries.len(), 1, "{}", p.outcome);
        assert!(p.deliveries[0].body.contains("38.4"), "{}", p.deliveries[0].body);
        // A fever at the door with nobody recognised is nobody's parent's text.
        let visitor = serde_json::to_vec(&FeverEvent { person: None, ..fever }).expect("json");
        let p = plan(&topics.fever(), &visitor, &dir, &settings, now.as_millisecond()).expect("plan");
        assert!(p.deliveries.is_empty() && p.outcome.contains("not a child"), "{}", p.outcome);
    }

    /// Kiosks and relays are upgraded apart: a newer kiosk's fields and enum values must not
    /// stop a parent's text.
    #[test]
    fn a_newer_kiosks_additions_are_ignored() {
        let (dir, settings) = setup();
        let now = Timestamp::now();
        let payload = serde_json::json!({"schema": "dolbom.attendance/1", "event_id": "01a00000-0000-7000-8000-000000000003",
            "kind": "arrival", "ts": now.to_string(), "center": "c", "kiosk": "door-1",
            "person": {"id": "minji", "role": "child", "class": "sunflower"}, "confidence": 0.9,
            "temperature_c": 36.5, "temperature_status": "remeasure_pending", "method": "palm", "new_field": [1, 2]});
        let topic = "dolbom/v1/c/door-1/event/attendance";
        let p = plan(topic, payload.to_string().as_bytes(), &dir, &settings, now.as_millisecond()).expect("plan");
        assert_eq!(p.deliveries.len(), 1, "{}", p.outcome);
        assert!(!p.deliveries[0].body.contains("36.5"), "a status not known to be settled is no value to text");
        // An unknown role is nobody the relay texts; an unknown kind is recorded, not guessed at.
        let mut odd = payload.clone();
        odd["person"]["role"] = "volunteer".into();
        let p = plan(topic, odd.to_string().as_bytes(), &dir, &settings, now.as_millisecond()).expect("plan");
        assert!(p.deliveries.is_empty() && p.outcome.contains("not a child"), "{}", p.outcome);
        let mut odd = payload.clone();
        odd["kind"] = "absence".into();
        let p = plan(topic, odd.to_string().as_bytes(), &dir, &settings, now.as_millisecond()).expect("plan");
        assert!(p.deliveries.is_empty() && p.outcome.contains("kind not understood"), "{}", p.outcome);
        let mut odd = payload;
        odd["schema"] = "dolbom.attendance/2".into();
        let p = plan(topic, odd.to_string().as_bytes(), &dir, &settings, now.as_millisecond()).expect("plan");
        assert!(p.deliveries.is_empty() && p.outcome.contains("not understood"), "{}", p.outcome);
    }

    /// A parent is told only settled temperatures: "re-measure" is an open question.
    #[test]
    fn only_settled_temperatures_are_texted() {
        let (dir, settings) = setup();
        let now = Timestamp::now();
        let topic = "dolbom/v1/c/door-1/event/attendance";
        let mut e = serde_json::json!({"schema": "dolbom.attendance/1", "event_id": "01a00000-0000-7000-8000-000000000006",
            "kind": "arrival", "ts": now.to_string(), "center": "c", "kiosk": "door-1",
            "person": {"id": "minji", "role": "child"}, "confidence": 0.9,
            "temperature_c": 37.3, "temperature_status": "remeasure", "temperature_site": "canthus", "method": "face"});
        // An arrival is held for its settled value; a departure goes without one.
        let p = plan(topic, e.to_string().as_bytes(), &dir, &settings, now.as_millisecond()).expect("plan");
        assert!(p.deliveries.is_empty() && p.held_ms == Some(now.as_millisecond()), "{}", p.outcome);
        e["kind"] = "departure".into();
        let p = plan(topic, e.to_string().as_bytes(), &dir, &settings, now.as_millisecond()).expect("plan");
        assert_eq!((p.deliveries.len(), p.held_ms), (1, None), "{}", p.outcome);
        assert!(!p.deliveries[0].body.contains("37.3"), "{}", p.deliveries[0].body);
        e["kind"] = "arrival".into();
        for status in ["normal", "elevated"] {
            e["temperature_status"] = status.into();
            e["event_id"] =
                format!("01a00000-0000-7000-8000-00000000000{}", if status == "normal" { 7 } else { 8 }).into();
            let p = plan(topic, e.to_string().as_bytes(), &dir, &settings, now.as_millisecond()).expect("plan");
            assert!(p.deliveries[0].body.contains("37.3"), "{status}: {}", p.deliveries[0].body);
            let confirm = p.deliveries[0].body.contains("체온계로 확인");
            assert_eq!(confirm, status == "elevated", "{status}: {}", p.deliveries[0].body);
        }
    }

    /// A tag or PIN arrival while screening is on (`not_measured`): the parent's text, in the
    /// guardian's language, with no temperature in it.
    #[test]
    fn a_tag_arrival_not_measured_is_texted_without_a_temperature() {
        let (dir, settings) = setup();
        let now = Timestamp::now();
        let topic = "dolbom/v1/c/door-1/event/attendance";
        let e = serde_json::json!({"schema": "dolbom.attendance/1", "event_id": "01a00000-0000-7000-8000-000000000009",
            "kind": "arrival", "ts": now.to_string(), "center": "c", "kiosk": "door-1",
            "person": {"id": "minji", "role": "child"}, "confidence": 1.0,
            "temperature_c": null, "temperature_status": "not_measured", "method": "tag"});
        let view: EventView = serde_json::from_value(e.clone()).expect("view");
        assert_eq!(view.temperature_status, Some(TemperatureStatus::NotMeasured), "a status this relay knows");
        let p = plan(topic, e.to_string().as_bytes(), &dir, &settings, now.as_millisecond()).expect("plan");
        assert_eq!(p.deliveries.len(), 1, "{}", p.outcome);
        let body = &p.deliveries[0].body;
        assert!(
            !body.contains('°') && !body.contains('℃') && !body.contains("체온") && !body.contains("temperature"),
            "{body}"
        );
    }

    #[test]
    fn what_does_not_fit_its_topic_is_recorded_with_the_reason_or_dropped_without_an_id() {
        let (dir, settings) = setup();
        let topic = "dolbom/v1/c/door-1/event/attendance";
        // A visitor event on an attendance topic is no attendance event: recorded, not texted.
        let visitor = serde_json::json!({"schema": "dolbom.visitor/1", "event_id": "01a00000-0000-7000-8000-000000000002",
            "center": "c", "kiosk": "door-1", "ts": "2026-11-25T08:42:07+09:00", "track_id": 3,
            "temperature_c": null, "temperature_status": "screening_off"});
        let p = plan(topic, visitor.to_string().as_bytes(), &dir, &settings, 0).expect("recorded");
        assert!(p.deliveries.is_empty() && p.outcome.contains("not understood"), "{}", p.outcome);
        // A visitor topic, if subscribed, is recorded by id and never texted.
        let p = plan("dolbom/v1/c/door-1/event/visitor", visitor.to_string().as_bytes(), &dir, &settings, 0)
            .expect("recorded");
        assert!(p.deliveries.is_empty() && p.outcome.contains("not an event"), "{}", p.outcome);
        // Broken beyond its id: recorded with what is wrong.
        let broken = serde_json::json!({"event_id": "01a00000-0000-7000-8000-000000000004", "center": 7});
        let p = plan(topic, broken.to_string().as_bytes(), &dir, &settings, 0).expect("recorded");
        assert_eq!(p.event_id, "01a00000-0000-7000-8000-000000000004");
        assert!(p.outcome.contains("not a valid attendance event"), "{}", p.outcome);
        // Without an id nothing can be recorded: dropped (and acknowledged) with a warning.
        assert!(plan(topic, b"{\"center\": \"c\"}", &dir, &settings, 0).is_err());
        assert!(plan(topic, b"{\"event_id\": \"e1\"}", &dir, &settings, 0).is_err(), "event ids are UUIDs");
        assert!(plan("elsewhere/c/door-1/event/attendance", b"{}", &dir, &settings, 0).is_err());
    }

    fn arrival(ts: &str, temperature: serde_json::Value) -> Vec<u8> {
        serde_json::json!({"schema": "dolbom.attendance/1", "event_id": "01a00000-0000-7000-8000-000000000005",
            "kind": "arrival", "ts": ts, "center": "c", "kiosk": "door-1",
            "person": {"id": "minji", "role": "child"}, "confidence": 0.9,
            "temperature_c": temperature, "temperature_status": "normal", "method": "face"})
        .to_string()
        .into_bytes()
    }

    /// An event no kiosk could have seen (dated ahead of the clocks' allowed skew, or with a
    /// temperature no child has) is recorded as refused with the reason, never texted.
    #[test]
    fn what_no_kiosk_could_have_seen_is_refused() {
        let (dir, settings) = setup();
        let topic = "dolbom/v1/c/door-1/event/attendance";
        let now = Timestamp::now();
        let at = |secs: i64| now.checked_add(jiff::SignedDuration::from_secs(secs)).expect("ts").to_string();
        let skew = settings.max_clock_skew_seconds as i64;
        assert_eq!(skew, 300, "a bounded default");
        let refused = [
            ("2099-01-01T08:42:00+09:00".to_string(), serde_json::json!(36.5), "ahead"),
            (at(86_400), serde_json::json!(null), "ahead"),
            (at(skew + 60), serde_json::json!(36.5), "ahead"),
            (at(0), serde_json::json!(1e30), "temperature_c"),
            (at(0), serde_json::json!(1e39), "not a number"),
            (at(0), serde_json::json!(-500.0), "temperature_c"),
            (at(0), serde_json::json!(0.0), "temperature_c"),
            (at(0), serde_json::json!(24.9), "temperature_c"),
            (at(0), serde_json::json!(45.5), "temperature_c"),
            (at(0), serde_json::json!(f32::MAX), "temperature_c"),
            ("yesterday".to_string(), serde_json::json!(36.5), "ts"),
        ];
        for (ts, temp, why) in refused {
            let p = plan(topic, &arrival(&ts, temp.clone()), &dir, &settings, now.as_millisecond()).expect("plan");
            assert!(p.deliveries.is_empty(), "{ts} {temp}: {}", p.outcome);
            assert!(p.outcome.starts_with("refused: ") && p.outcome.contains(why), "{ts} {temp}: {}", p.outcome);
        }
        for (ts, temp) in [
            (at(skew - 10), serde_json::json!(36.5)),
            (at(-60), serde_json::json!(25.0)),
            (at(-60), serde_json::json!(28.4)),
            (at(0), serde_json::json!(45.0)),
            (at(0), serde_json::json!(null)),
        ] {
            let p = plan(topic, &arrival(&ts, temp.clone()), &dir, &settings, now.as_millisecond()).expect("plan");
            assert_eq!(p.deliveries.len(), 1, "{ts} {temp}: {}", p.outcome);
        }
        // No allowance at all: a second ahead is already the future.
        let strict = RelaySettings { max_clock_skew_seconds: 0, ..settings.clone() };
        let p =
            plan(topic, &arrival(&at(2), serde_json::json!(null)), &dir, &strict, now.as_millisecond()).expect("plan");
        assert!(p.outcome.starts_with("refused"), "{}", p.outcome);
        // A fever event's temperature is checked the same way.
        let fever = serde_json::json!({"schema": "dolbom.fever/1", "event_id": "01a00000-0000-7000-8000-000000000006",
            "center": "c", "kiosk": "door-1", "ts": at(0), "alert_id": "a", "person": {"id": "minji", "role": "child"},
            "track_id": 1, "temperature_c": 1e30, "threshold_c": 37.5, "message": "x"});
        let p =
            plan("dolbom/v1/c/door-1/event/fever", fever.to_string().as_bytes(), &dir, &settings, now.as_millisecond())
                .expect("plan");
        assert!(p.deliveries.is_empty() && p.outcome.contains("temperature_c"), "{}", p.outcome);
    }

    /// Guardians whose numbers are the same phone get one text per event between them.
    #[test]
    fn one_phone_gets_one_text_per_event() {
        let text = r#"
[[center]]
id = "c"
name = "C"
sender = "0212345678"
[[child]]
id = "minji"
center = "c"
name = "김민지"
[[child.guardian]]
name = "dad"
phone = "010-1234-5678"
lang = "en"
notify = ["departure"]
[[child.guardian]]
name = "mom"
phone = "+82 10 1234 5678"
[[child.guardian]]
name = "mom again"
phone = "01012345678"
[[child.guardian]]
name = "grandma"
phone = "0082-10-9999-0000"
"#;
        let loaded = Directory::parse(text).expect("directory");
        assert_eq!(loaded.problems.len(), 2, "both repeats named: {:?}", loaded.problems);
        let settings = settings();
        let now = Timestamp::now();
        let topic = "dolbom/v1/c/door-1/event/attendance";
        let p = plan(
            topic,
            &arrival(&now.to_string(), serde_json::json!(null)),
            &loaded.directory,
            &settings,
            now.as_millisecond(),
        )
        .expect("plan");
        let to: Vec<(&str, &str)> = p.deliveries.iter().map(|d| (d.recipient.as_str(), d.guardian.as_str())).collect();
        assert_eq!(to, [("01012345678", "mom"), ("01099990000", "grandma")], "dad did not ask for arrivals");
    }

    #[test]
    fn an_unknown_childs_event_is_marked_for_planning_again() {
        let (dir, settings) = setup();
        let now = Timestamp::now();
        let mut payload: serde_json::Value =
            serde_json::from_slice(&arrival(&now.to_string(), serde_json::json!(null))).expect("json");
        payload["person"]["id"] = "seoyun\n\u{1b}[2J".into();
        let p = plan(
            "dolbom/v1/c/door-1/event/attendance",
            payload.to_string().as_bytes(),
            &dir,
            &settings,
            now.as_millisecond(),
        )
        .expect("plan");
        assert_eq!(p.unknown_child_ms, Some(now.as_millisecond()));
        assert!(p.outcome.starts_with(UNKNOWN_CHILD), "{}", p.outcome);
        assert!(!p.outcome.chars().any(char::is_control), "ids from MQTT are escaped: {:?}", p.outcome);
    }

    /// A relay over an SQLite store and the one-child directory, as `consume` drives it.
    struct HoldRig {
        _dir: tempfile::TempDir,
        file: RelayFile,
        store: Arc<dyn RelayStore>,
        directory: SharedDirectory,
        wake: Notify,
    }

    fn hold_rig() -> HoldRig {
        let dir = tempfile::tempdir().expect("tempdir");
        let text =
            "[relay]\ndatabase = \"relay.db\"\ndirectory = \"directory.toml\"\n\n[provider]\nkind = \"console\"\n";
        let path = dir.path().join("relay.toml");
        std::fs::write(&path, text).expect("write");
        let file = RelayFile::load(&path).expect("relay file");
        let store: Arc<dyn RelayStore> =
            Arc::new(store::SqliteStore::open(&dir.path().join("relay.db")).expect("store"));
        let directory = SharedDirectory::new(directory(r#"["arrival", "departure", "fever"]"#));
        HoldRig { _dir: dir, file, store, directory, wake: Notify::new() }
    }

    impl HoldRig {
        async fn take(&self, topic: &str, payload: &serde_json::Value) {
            take_in(topic, payload.to_string().as_bytes(), &self.file, &self.store, &self.directory, &self.wake).await;
        }

        async fn texts(&self) -> Vec<String> {
            let log = store::call(&self.store, |s| s.log(100)).await.expect("log");
            log.into_iter().map(|d| d.body).collect()
        }
    }

    const ATTENDANCE: &str = "dolbom/v1/c/door-1/event/attendance";
    const TEMPERATURE: &str = "dolbom/v1/c/door-1/event/temperature";

    fn remeasure_arrival(id: &str, ts: Timestamp) -> serde_json::Value {
        serde_json::json!({"schema": "dolbom.attendance/1", "event_id": id, "kind": "arrival", "ts": ts.to_string(),
            "center": "c", "kiosk": "door-1", "person": {"id": "minji", "role": "child"}, "confidence": 0.9,
            "temperature_c": 35.1, "temperature_status": "remeasure", "temperature_site": "canthus", "method": "face"})
    }

    fn temperature(id: &str, arrival: &str, kind: &str, celsius: Option<f32>, status: &str) -> serde_json::Value {
        serde_json::json!({"schema": "dolbom.temperature/1", "event_id": id, "kind": kind, "ts": Timestamp::now().to_string(),
            "center": "c", "kiosk": "door-1", "person": {"id": "minji", "role": "child"}, "arrival_event_id": arrival,
            "temperature_c": celsius, "temperature_status": status, "method": "kiosk"})
    }

    /// An arrival asked to re-measure is held, through a relay restart (a reopened store), until
    /// its settle event: then one text with the settled value, and a repeated settle, a late
    /// unsettled event and the deadline add nothing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_held_arrival_is_texted_once_with_the_settled_value() {
        let mut r = hold_rig();
        let arrival = "01a00000-0000-7000-8000-0000000000a1";
        r.take(ATTENDANCE, &remeasure_arrival(arrival, Timestamp::now())).await;
        assert!(r.texts().await.is_empty(), "held, not texted");
        // A restart: the hold is in the store, not in memory.
        let path = r._dir.path().join("relay.db");
        r.store = Arc::new(store::SqliteStore::open(&path).expect("reopened"));
        let held = store::call(&r.store, move |s| s.held(arrival)).await.expect("held");
        assert!(held.is_some(), "still held after a restart");
        // Another kiosk cannot settle it.
        let forged = temperature("01a00000-0000-7000-8000-0000000000b0", arrival, "settled", Some(39.9), "elevated");
        r.take("dolbom/v1/c/door-2/event/temperature", &forged).await;
        assert!(r.texts().await.is_empty(), "another kiosk's settle is ignored");

        let settle = temperature("01a00000-0000-7000-8000-0000000000b1", arrival, "settled", Some(36.6), "normal");
        r.take(TEMPERATURE, &settle).await;
        r.take(TEMPERATURE, &settle).await;
        let late = temperature("01a00000-0000-7000-8000-0000000000b2", arrival, "unsettled", None, "remeasure");
        r.take(TEMPERATURE, &late).await;
        assert_eq!(
            release_overdue(
                &r.store,
                &r.directory.get(),
                &RelaySettings { hold_remeasure_minutes: Some(0), ..r.file.relay.clone() }
            )
            .await,
            0
        );
        let texts = r.texts().await;
        assert_eq!(texts.len(), 1, "{texts:?}");
        assert!(texts[0].contains("등원") && texts[0].contains("36.6"), "{}", texts[0]);
        assert!(!texts[0].contains("35.1"), "the re-measure reading is never texted: {}", texts[0]);
    }

    /// Unsettled by the kiosk, or past the relay's own deadline: the text goes without a value
    /// and says a teacher will check; an elevated settled value says to confirm.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unsettled_or_overdue_arrivals_say_a_teacher_will_check() {
        let r = hold_rig();
        let a1 = "01a00000-0000-7000-8000-0000000000c1";
        r.take(ATTENDANCE, &remeasure_arrival(a1, Timestamp::now())).await;
        r.take(TEMPERATURE, &temperature("01a00000-0000-7000-8000-0000000000d1", a1, "unsettled", None, "remeasure"))
            .await;
        let texts = r.texts().await;
        assert_eq!(texts.len(), 1, "{texts:?}");
        assert!(texts[0].contains("체온 측정이 완료되지 않아 선생님이 확인"), "{}", texts[0]);

        // Held longer than relay.hold_remeasure_minutes: released by the sweep, once.
        let a2 = "01a00000-0000-7000-8000-0000000000c2";
        let old = Timestamp::now() - jiff::SignedDuration::from_mins(50);
        r.take(ATTENDANCE, &remeasure_arrival(a2, old)).await;
        assert_eq!(r.texts().await.len(), 1, "held");
        assert_eq!(release_overdue(&r.store, &r.directory.get(), &r.file.relay).await, 1);
        assert_eq!(release_overdue(&r.store, &r.directory.get(), &r.file.relay).await, 0, "once");
        let texts = r.texts().await;
        assert_eq!(texts.len(), 2);
        assert!(texts.iter().all(|t| !t.contains("35.1")), "{texts:?}");
        // The kiosk's settle after the relay's deadline is dropped, and noticed as late.
        r.take(TEMPERATURE, &temperature("01a00000-0000-7000-8000-0000000000d2", a2, "settled", Some(36.5), "normal"))
            .await;
        assert_eq!(r.texts().await.len(), 2, "no second text");
        assert!(late_settle(&r.store, a2).await, "a settle after the deadline is noticed");
        assert!(!late_settle(&r.store, a1).await, "settled by the kiosk in time");

        let a3 = "01a00000-0000-7000-8000-0000000000c3";
        r.take(ATTENDANCE, &remeasure_arrival(a3, Timestamp::now())).await;
        r.take(
            TEMPERATURE,
            &temperature("01a00000-0000-7000-8000-0000000000d3", a3, "settled", Some(38.1), "elevated"),
        )
        .await;
        let texts = r.texts().await;
        assert_eq!(texts.len(), 3);
        assert!(texts.iter().any(|t| t.contains("38.1") && t.contains("체온계로 확인")), "{texts:?}");
    }

    /// A re-measure arrival of a child the directory did not know yet is parked; once the child
    /// is added it is held (never dropped untexted), and its settle, parked with it or arriving
    /// later, or else the deadline, texts it exactly once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_parked_remeasure_arrival_is_held_once_its_child_is_added() {
        let r = hold_rig();
        let known = r.directory.get();
        let nobody = Directory::parse("[[center]]\nid = \"c\"\nname = \"C\"\nsender = \"0212345678\"\n")
            .expect("directory")
            .directory;
        r.directory.set(nobody);
        let settings = r.file.relay.clone();
        let held = |id: &'static str| {
            let store = r.store.clone();
            async move { store::call(&store, move |s| s.held(id)).await.expect("held").is_some() }
        };

        // The settle comes after the child is added.
        let a1 = "01a00000-0000-7000-8000-0000000000e1";
        r.take(ATTENDANCE, &remeasure_arrival(a1, Timestamp::now())).await;
        assert!(!held(a1).await, "parked: the directory has no such child");
        r.directory.set(Directory::clone(&known));
        assert_eq!(replan(&r.store, &r.directory.get(), &settings).await, 0, "held, not texted");
        assert!(held(a1).await, "moved from parked to held");
        assert_eq!(replan(&r.store, &r.directory.get(), &settings).await, 0);
        r.take(TEMPERATURE, &temperature("01a00000-0000-7000-8000-0000000000f1", a1, "settled", Some(36.7), "normal"))
            .await;
        let texts = r.texts().await;
        assert_eq!(texts.len(), 1, "{texts:?}");
        assert!(texts[0].contains("36.7") && !texts[0].contains("35.1"), "{}", texts[0]);

        // Arrival and settle both parked: planned again in capture order, the settle texts it.
        r.directory.set(
            Directory::parse("[[center]]\nid = \"c\"\nname = \"C\"\nsender = \"0212345678\"\n")
                .expect("directory")
                .directory,
        );
        let a2 = "01a00000-0000-7000-8000-0000000000e2";
        r.take(ATTENDANCE, &remeasure_arrival(a2, Timestamp::now() - jiff::SignedDuration::from_secs(60))).await;
        r.take(
            TEMPERATURE,
            &temperature("01a00000-0000-7000-8000-0000000000f2", a2, "settled", Some(37.9), "elevated"),
        )
        .await;
        assert_eq!(r.texts().await.len(), 1, "both parked");
        r.directory.set(Directory::clone(&known));
        assert_eq!(replan(&r.store, &r.directory.get(), &settings).await, 1);
        assert_eq!(replan(&r.store, &r.directory.get(), &settings).await, 0, "once");
        let texts = r.texts().await;
        assert_eq!(texts.len(), 2, "{texts:?}");
        assert!(texts.iter().any(|t| t.contains("37.9")), "{texts:?}");

        // No settle at all: the deadline texts it, once.
        r.directory.set(
            Directory::parse("[[center]]\nid = \"c\"\nname = \"C\"\nsender = \"0212345678\"\n")
                .expect("directory")
                .directory,
        );
        let a3 = "01a00000-0000-7000-8000-0000000000e3";
        r.take(ATTENDANCE, &remeasure_arrival(a3, Timestamp::now() - jiff::SignedDuration::from_mins(50))).await;
        r.directory.set(Directory::clone(&known));
        assert_eq!(replan(&r.store, &r.directory.get(), &settings).await, 0);
        assert_eq!(release_overdue(&r.store, &r.directory.get(), &settings).await, 1);
        assert_eq!(release_overdue(&r.store, &r.directory.get(), &settings).await, 0, "once");
        let texts = r.texts().await;
        assert_eq!(texts.len(), 3, "{texts:?}");
        assert_eq!(texts.iter().filter(|t| t.contains("체온 측정이 완료되지 않아")).count(), 1, "{texts:?}");
    }

    /// A value staff took with a thermometer is told as a thermometer reading, in both
    /// languages, never "confirm with a thermometer"; a fever it raised has its own text.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_thermometer_value_is_told_as_one() {
        let r = hold_rig();
        let mut en = directory(r#"["arrival", "fever"]"#);
        for c in &mut en.children {
            for g in &mut c.guardians {
                g.lang = "en".into();
            }
        }
        let a = "01a00000-0000-7000-8000-0000000000e7";
        r.take(ATTENDANCE, &remeasure_arrival(a, Timestamp::now())).await;
        let mut settle = temperature("01a00000-0000-7000-8000-0000000000f7", a, "settled", Some(37.9), "elevated");
        settle["method"] = "thermometer".into();
        settle["by"] = "kim".into();
        r.take(TEMPERATURE, &settle).await;
        let texts = r.texts().await;
        assert_eq!(texts.len(), 1, "{texts:?}");
        assert!(texts[0].contains("체온계로 측정한 체온 37.9℃"), "{}", texts[0]);
        assert!(!texts[0].contains("체온계로 확인"), "a thermometer value is not to be confirmed: {}", texts[0]);
        // The same settle read by an English-speaking guardian's directory.
        let p = plan(TEMPERATURE, settle.to_string().as_bytes(), &en, &r.file.relay, Timestamp::now().as_millisecond())
            .expect("plan");
        let (_, note) = p.settles.expect("settles");
        let held = remeasure_arrival(a, Timestamp::now()).to_string();
        let p =
            plan_with(ATTENDANCE, held.as_bytes(), &en, &r.file.relay, Timestamp::now().as_millisecond(), Some(note))
                .expect("plan");
        let body = &p.deliveries[0].body;
        assert!(body.contains("thermometer reading 37.9 °C") && !body.contains("confirm"), "{body}");
        // A normal thermometer value.
        settle["temperature_c"] = 36.8.into();
        settle["temperature_status"] = "normal".into();
        let p = plan(TEMPERATURE, settle.to_string().as_bytes(), &en, &r.file.relay, Timestamp::now().as_millisecond())
            .expect("plan");
        assert_eq!(p.settles.map(|(_, n)| n), Some(TemperatureNote::Thermometer(36.8)));
        // The fever a thermometer value raised: its own wording, no "confirm with a thermometer".
        let fever = serde_json::json!({"schema": "dolbom.fever/1", "event_id": "01a00000-0000-7000-8000-0000000000f8",
            "center": "c", "kiosk": "door-1", "ts": Timestamp::now().to_string(), "alert_id": "a",
            "person": {"id": "minji", "role": "child"}, "track_id": 0, "temperature_c": 37.9, "threshold_c": 37.5,
            "message": dolbom_contract::FEVER_MESSAGE_THERMOMETER});
        let now = Timestamp::now().as_millisecond();
        for (dir, want) in [
            (&r.directory.get(), "체온계 측정 체온이 발열 기준 이상"),
            (&Arc::new(en.clone()), "thermometer reading (37.9 °C)"),
        ] {
            let p = plan("dolbom/v1/c/door-1/event/fever", fever.to_string().as_bytes(), dir, &r.file.relay, now)
                .expect("plan");
            let body = &p.deliveries[0].body;
            assert!(body.contains(want) && body.contains("37.9"), "{body}");
            assert!(!body.contains("confirm") && !body.contains("체온계로 확인"), "{body}");
        }
    }
}
