//! The staff desk on a real kiosk database and gallery file (no broker: the answers and events
//! are read from the outbox).

use dolbom_contract::{CommandResult, Role};
use dolbom_face::gallery::{AuditLog, GalleryStore};
use dolbom_face::Embedding;
use jiff::Timestamp;

use super::*;
use crate::alerts::tests::{korean, setup};

struct Desk {
    _dir: tempfile::TempDir,
    store: crate::store::Store,
    ctx: AlertContext,
    desk: StaffDesk,
}

fn desk() -> Desk {
    let (dir, store, ctx) = setup();
    let gallery = GalleryStore::new(dir.path().join("gallery.json"));
    let e = Embedding::normalized(vec![1.0, 0.0]).expect("non-zero");
    gallery
        .update(|g| -> Result<(), Refusal> {
            g.enroll("minji", Role::Child, "김민지", vec![], "m", 1).map_err(|e| Refusal(e.to_string()))?;
            g.enroll("obama", Role::Guardian, "Obama", vec![e], "m", 1).map_err(|e| Refusal(e.to_string()))
        })
        .expect("gallery");
    let tz = jiff::tz::TimeZone::get("Asia/Seoul").expect("tz");
    let policy = crate::attendance::AttendanceConfig::default().build(tz.clone()).expect("policy");
    let desk = StaffDesk {
        gallery,
        audit: AuditLog::new(dir.path().join("audit.log")),
        tz,
        policy,
        screening_on: true,
        capture: None,
        embedder: "m".into(),
    };
    Desk { _dir: dir, store, ctx, desk }
}

impl Desk {
    fn send(&self, action: Action, body: serde_json::Value) -> CommandResult {
        let now = Timestamp::now().as_millisecond();
        let payload = body.to_string();
        self.desk
            .handle(&self.ctx, &self.store, action, payload.as_bytes(), now, &mut Tally::default())
            .expect("handled")
    }

    /// The payloads queued on topics ending with `suffix`.
    fn queued(&self, suffix: &str) -> Vec<serde_json::Value> {
        let conn = self.store.lock().expect("lock");
        let mut stmt = conn.prepare("SELECT topic, payload FROM outbox ORDER BY seq").expect("prepare");
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?)))
            .expect("query")
            .filter_map(|r| r.ok())
            .filter(|(t, _)| t.ends_with(suffix))
            .filter_map(|(_, p)| serde_json::from_slice(&p).ok())
            .collect();
        rows
    }
}

fn checkin(person: &str, kind: &str, by: &str, request: &str) -> serde_json::Value {
    serde_json::json!({"person": person, "kind": kind, "by": by, "request_id": request})
}

#[test]
fn a_hand_check_in_is_an_attendance_event_once_a_day() {
    let d = desk();
    let r = d.send(Action::Checkin, checkin("minji", "arrival", "kim", "r1"));
    assert!(r.ok, "{r:?}");
    assert_eq!((r.command.as_str(), r.person.as_deref()), ("checkin", Some("minji")));
    assert!(korean(r.message.as_deref().unwrap_or_default()), "{r:?}");
    let events = d.queued("/event/attendance");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["method"], "staff");
    assert_eq!(events[0]["temperature_status"], "not_measured", "screening runs here: not measured");
    assert!(events[0]["temperature_c"].is_null());

    assert_eq!(d.send(Action::Checkin, checkin("minji", "arrival", "kim", "r1")), r, "a repeat: the first answer");
    let conflict = d.send(Action::Checkin, checkin("obama", "arrival", "kim", "r1"));
    assert!(conflict.error.as_deref().unwrap_or_default().starts_with("conflict"), "{conflict:?}");
    let second = d.send(Action::Checkin, checkin("minji", "arrival", "kim", "r2"));
    let error = second.error.as_deref().unwrap_or_default();
    assert!(error.starts_with("already arrived at ") && korean(error), "{second:?}");
    let stranger = d.send(Action::Checkin, checkin("obama", "arrival", "mallory", "r3"));
    assert!(stranger.error.as_deref().unwrap_or_default().contains("not a staff id"), "{stranger:?}");
    let nobody = d.send(Action::Checkin, checkin("nobody", "arrival", "kim", "r4"));
    assert!(nobody.error.as_deref().unwrap_or_default().starts_with("no person"), "{nobody:?}");
    let left = d.send(Action::Checkin, checkin("minji", "departure", "kim", "r5"));
    assert!(left.ok, "{left:?}");
    let again = d.send(Action::Checkin, checkin("minji", "arrival", "kim", "r6"));
    assert!(again.error.as_deref().unwrap_or_default().starts_with("already"), "{again:?}");
    let kinds: Vec<String> = d.queued("/event/attendance").iter().map(|e| e["kind"].to_string()).collect();
    assert_eq!(kinds, ["\"arrival\"", "\"departure\""], "refusals published nothing");
    // Every command was answered.
    assert_eq!(d.queued("/cmd/result").len(), 8);
}

#[test]
fn garbage_is_answered_as_malformed() {
    let d = desk();
    let now = Timestamp::now().as_millisecond();
    let r = d.desk.handle(&d.ctx, &d.store, Action::Checkin, b"{\"person\": 7}", now, &mut Tally::default());
    let r = r.expect("handled");
    assert!(!r.ok && r.error.as_deref().unwrap_or_default().starts_with("not a staff command"), "{r:?}");
    assert!(!well_formed(Action::Checkin, b"[]"));
    assert!(well_formed(Action::Erase, br#"{"person":"a","by":"kim"}"#));
}

#[test]
fn consent_then_erase_of_a_child_is_audited_with_the_staff_id() {
    let d = desk();
    let next_year = Timestamp::now().to_zoned_datetime(d.desk.tz.clone()).date().year() + 1;
    let consent = |until: String, request: &str| {
        serde_json::json!({"person": "minji", "guardian": "김영희", "relation": "어머니",
            "verified": "signed paper form", "purposes": ["face-attendance"], "until": until,
            "by": "kim", "request_id": request})
    };
    let bad = d.send(Action::Consent, consent("2001-01-01".into(), "c1"));
    assert!(bad.error.as_deref().unwrap_or_default().starts_with("until"), "the field is named: {bad:?}");
    let bad = d.send(Action::Consent, consent("someday".into(), "c2"));
    assert!(bad.error.as_deref().unwrap_or_default().starts_with("until"), "{bad:?}");
    let ok = d.send(Action::Consent, consent(format!("{next_year}-02-28"), "c3"));
    assert!(ok.ok, "{ok:?}");
    let today = super::today(&d.desk.tz, Timestamp::now().as_millisecond());
    let g = d.desk.gallery.load().expect("load");
    assert_eq!(roster::consent_state(&g, "minji", Role::Child, today), dolbom_contract::ConsentState::InForce);
    // A face for her, then the erasure.
    let e = Embedding::normalized(vec![0.0, 1.0]).expect("non-zero");
    d.desk
        .gallery
        .update(|g| -> Result<(), Refusal> {
            g.enroll("minji", Role::Child, "김민지", vec![e], "m", 2).map_err(|e| Refusal(e.to_string()))
        })
        .expect("enrol");
    let erased = d.send(Action::Erase, serde_json::json!({"person": "minji", "by": "kim", "request_id": "e1"}));
    assert!(erased.ok, "{erased:?}");
    assert!(erased.message.as_deref().unwrap_or_default().contains("1 face templates destroyed"), "{erased:?}");
    let g = d.desk.gallery.load().expect("load");
    assert!(g.get("minji").is_some_and(|p| p.templates().next().is_none()), "the person stays, without a face");
    assert_eq!(roster::consent_state(&g, "minji", Role::Child, today), dolbom_contract::ConsentState::Withdrawn);
    // An adult: templates only.
    let r = d.send(Action::Erase, serde_json::json!({"person": "obama", "by": "kim"}));
    assert!(r.ok && r.message.as_deref().unwrap_or_default().contains("1 face templates of obama"), "{r:?}");
    let lines = d.desk.audit.read().expect("audit");
    let seen: Vec<(String, String)> = lines
        .iter()
        .map(|l| {
            (serde_json::to_value(l.entry.action).expect("json").as_str().unwrap_or("").to_string(), l.entry.by.clone())
        })
        .collect();
    for action in ["consent-added", "consent-withdrawn", "templates-erased"] {
        assert!(seen.contains(&(action.to_string(), "kim".to_string())), "{action}: {seen:?}");
    }
}

#[test]
fn enrolment_is_refused_before_any_capture_for_a_child_without_consent_or_without_a_camera() {
    let d = desk();
    let r = d.send(Action::Enroll, serde_json::json!({"person": "minji", "by": "kim"}));
    assert!(r.error.as_deref().unwrap_or_default().contains("consent"), "{r:?}");
    let r = d.send(Action::Enroll, serde_json::json!({"person": "obama", "seconds": 61, "by": "kim"}));
    assert!(r.error.as_deref().unwrap_or_default().starts_with("seconds"), "{r:?}");
    let r = d.send(Action::Enroll, serde_json::json!({"person": "new", "by": "kim"}));
    assert!(r.error.as_deref().unwrap_or_default().contains("give role and name"), "{r:?}");
    let r = d.send(Action::Enroll, serde_json::json!({"person": "obama", "by": "kim"}));
    assert!(r.error.as_deref().unwrap_or_default().contains("no camera"), "{r:?}");
}

/// The capture's answer: what it saw decides why nothing was taken.
#[test]
fn a_capture_says_why_it_took_nothing() {
    use super::enroll::{Capture, CaptureOutcome, CaptureRequest};
    let outcome = |f: &dyn Fn(&mut Capture)| {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        let mut c = Capture::new(CaptureRequest { seconds: 1, reply });
        f(&mut c);
        c.finish();
        answer.recv().expect("answer")
    };
    assert_eq!(outcome(&|_| {}), CaptureOutcome::NoFace);
    assert_eq!(outcome(&|c| c.saw_face = true), CaptureOutcome::TwoFaces);
    assert_eq!(
        outcome(&|c| {
            c.saw_face = true;
            c.saw_one = true
        }),
        CaptureOutcome::TooBlurry
    );
    let e = Embedding::normalized(vec![1.0, 0.0]).expect("non-zero");
    assert_eq!(outcome(&|c| c.take(e.clone())), CaptureOutcome::Taken(vec![e.clone()]));
    let (reply, _answer) = std::sync::mpsc::sync_channel(1);
    let mut c = Capture::new(CaptureRequest { seconds: 10, reply });
    assert!(c.wants_one());
    c.take(e);
    assert!(!c.wants_one(), "crops are spread over the time");
    assert!(!c.done());
}
