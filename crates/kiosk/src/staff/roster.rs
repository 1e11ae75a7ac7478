//! The roster (`roster`, retained, QoS 1): the people this kiosk knows, with what is enrolled
//! for each (face yes/no, how many tags, PIN yes/no, where a child's consent stands), never a
//! template. Published at start and whenever the gallery file changes: its modification time
//! is polled every few seconds, and the gallery is opened with its key like the vision stage.

use std::time::{Duration, SystemTime};

use jiff::civil::Date;
use jiff::tz::TimeZone;
use tracing::{info, warn};

use dolbom_contract::{ConsentState, Role, Roster, RosterEntry, ROSTER_SCHEMA};
use dolbom_face::gallery::{Ended, Gallery, GalleryStore, Purpose};

use crate::outbox::{NewMessage, Outbox, Priority, Tally};
use crate::shutdown::Shutdown;
use crate::site::Site;

/// How often the gallery file's modification time is looked at.
pub const POLL_EVERY: Duration = Duration::from_secs(3);

/// Where `person`'s consent to face-attendance stands on `today`.
pub fn consent_state(gallery: &Gallery, person: &str, role: Role, today: Date) -> ConsentState {
    if role != Role::Child {
        return ConsentState::NotNeeded;
    }
    if gallery.consented(person, Purpose::FaceAttendance, today) {
        return ConsentState::InForce;
    }
    let last = gallery.consents_of(person).filter(|c| c.purposes.contains(&Purpose::FaceAttendance)).last();
    match last {
        None => ConsentState::None,
        Some(c) => match c.ended {
            Some(Ended::Withdrawn) => ConsentState::Withdrawn,
            // Ended by the kiosk, or past its date and about to be.
            Some(Ended::Expired) | None => ConsentState::Expired,
        },
    }
}

/// The roster of `gallery`, sorted by id.
pub fn roster(gallery: &Gallery, site: &Site, today: Date, ts: String) -> Roster {
    let mut people: Vec<RosterEntry> = gallery
        .people
        .iter()
        .map(|p| RosterEntry {
            id: p.id.clone(),
            name: p.name.clone(),
            role: p.role,
            face: p.templates().next().is_some(),
            tags: p.tags.len() as u32,
            pin: p.pin.is_some(),
            consent: consent_state(gallery, &p.id, p.role, today),
        })
        .collect();
    people.sort_by(|a, b| a.id.cmp(&b.id));
    Roster { schema: ROSTER_SCHEMA.into(), center: site.center.clone(), kiosk: site.kiosk.clone(), ts, people }
}

/// Publishes the roster through the outbox (replacing one still queued) at start and after
/// each change of the gallery file, until shutdown.
pub async fn run(store: std::sync::Arc<GalleryStore>, site: Site, tz: TimeZone, outbox: Outbox, shutdown: Shutdown) {
    let mut published: Option<Option<SystemTime>> = None;
    let mut tick = tokio::time::interval(POLL_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait() => return,
        }
        let modified = std::fs::metadata(store.path()).and_then(|m| m.modified()).ok();
        if published == Some(modified) {
            continue;
        }
        let (store, site, tz, outbox) = (store.clone(), site.clone(), tz.clone(), outbox.clone());
        let queued = tokio::task::spawn_blocking(move || publish(&store, &site, &tz, &outbox)).await;
        match queued {
            Ok(Ok(n)) => {
                info!(people = n, "roster published");
                published = Some(modified);
            }
            Ok(Err(e)) => warn!(error = %e, "roster not published; tried again"),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => warn!(error = %e, "publishing the roster was cancelled"),
        }
    }
}

/// Reads the gallery and queues its roster; how many people it lists.
pub fn publish(store: &GalleryStore, site: &Site, tz: &TimeZone, outbox: &Outbox) -> Result<usize, String> {
    let gallery = store.load().map_err(|e| e.to_string())?;
    let now = jiff::Timestamp::now();
    let today = now.to_zoned_datetime(tz.clone()).date();
    let r = roster(&gallery, site, today, site.ts(now.as_millisecond()));
    let now_ms = now.as_millisecond();
    let msg = NewMessage {
        topic: site.topics.roster(),
        payload: serde_json::to_vec(&r).map_err(|e| e.to_string())?,
        kind: "roster".into(),
        priority: Priority::Attendance,
        retain: true,
        created_ms: now_ms,
        expires_ms: None,
    };
    let conn = outbox.store().lock().map_err(|e| e.to_string())?;
    let mut tally = Tally::default();
    tally.enqueue_latest(&conn, &msg, outbox.capacity(), now_ms).map_err(|e| e.to_string())?;
    drop(conn);
    outbox.after_enqueue(tally);
    Ok(r.people.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use dolbom_face::Embedding;

    #[test]
    fn the_roster_lists_what_is_enrolled_and_never_a_template() {
        let mut g = Gallery::empty();
        let e = Embedding::normalized(vec![1.0, 0.0]).expect("non-zero");
        g.enroll("minji", Role::Child, "김민지", vec![e.clone()], "m", 1).expect("enrol");
        g.enroll("kim", Role::Staff, "김선생", vec![e], "m", 1).expect("enrol");
        let today: Date = "2026-11-25".parse().expect("date");
        let site =
            crate::site::SiteConfig { center_id: "c".into(), kiosk_id: "k".into(), timezone: "Asia/Seoul".into() }
                .build()
                .expect("site");
        let r = roster(&g, &site, today, "t".into());
        let json = serde_json::to_string(&r).expect("json");
        assert!(!json.contains("embedding") && !json.contains("0.0"), "{json}");
        assert_eq!(r.people.len(), 2);
        assert_eq!(r.people[0].id, "kim");
        assert_eq!(r.people[0].consent, ConsentState::NotNeeded);
        assert_eq!(r.people[1].consent, ConsentState::None, "a child enrolled before consents were kept");
        assert!(r.people[1].face);
        let c = dolbom_face::gallery::Consent {
            person: "minji".into(),
            guardian: "김영희".into(),
            relation: "어머니".into(),
            given_on: "2026-11-01".parse().expect("date"),
            verified_how: "signed paper form".into(),
            purposes: vec![Purpose::FaceAttendance],
            retention_until: "2027-02-28".parse().expect("date"),
            recorded_at: jiff::Timestamp::now(),
            recorded_by: "kim".into(),
            ended: None,
            ended_at: None,
            ended_by: None,
            reason: None,
        };
        g.add_consent(c, today).expect("consent");
        assert_eq!(consent_state(&g, "minji", Role::Child, today), ConsentState::InForce);
        g.withdraw_consent("minji", jiff::Timestamp::now(), "kim", None, today).expect("withdraw");
        let r = roster(&g, &site, today, "t".into());
        assert_eq!((r.people[1].face, r.people[1].consent), (false, ConsentState::Withdrawn));
    }
}
