//! How well each enrolled person is still recognised. Children's faces change within months:
//! the similarity of their sightings to their enrolment drifts down towards the threshold until
//! they are no longer recognised at all. The kiosk keeps, per person, a trend of the sightings'
//! similarity and when it last saw them clearly, and says when it is time to re-enrol.
//!
//! Recorded in the event stage's transaction (the kiosk database), read by
//! `dolbom gallery health`. Only numbers are kept, never a face.

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use crate::store::StoreError;

/// A sighting this similar to the enrolment is beyond doubt.
pub const STRONG_SIMILARITY: f32 = 0.55;
/// Weight of the newest sighting in the trend (about the last ten sightings count).
const TREND_WEIGHT: f32 = 0.2;
/// A trend this close above the match threshold is drifting out of reach.
pub const DRIFT_MARGIN: f32 = 0.08;
/// Seen within this many days but not clearly for `STALE_DAYS`: the face has changed.
const RECENT_DAYS: i64 = 30;
pub const STALE_DAYS: i64 = 60;
/// Sightings before the trend means anything.
const MIN_SIGHTINGS: i64 = 5;
const DAY_MS: i64 = 86_400_000;

/// Records one settled sighting of `person` with the mean similarity of its votes.
pub fn record(conn: &Connection, person: &str, similarity: f32, at_ms: i64) -> Result<(), StoreError> {
    let strong = (similarity >= STRONG_SIMILARITY).then_some(at_ms);
    let old: Option<f32> =
        conn.query_row("SELECT trend FROM recognition WHERE person = ?1", params![person], |r| r.get(0)).optional()?;
    let trend = old.map_or(similarity, |t| t + TREND_WEIGHT * (similarity - t));
    conn.execute(
        "INSERT INTO recognition (person, seen, last_seen_ms, last_strong_ms, trend) VALUES (?1, 1, ?2, ?3, ?4)
         ON CONFLICT (person) DO UPDATE SET seen = seen + 1, last_seen_ms = MAX(last_seen_ms, ?2),
             last_strong_ms = COALESCE(MAX(last_strong_ms, ?3), last_strong_ms, ?3), trend = ?4",
        params![person, at_ms, strong, trend],
    )?;
    Ok(())
}

/// One person's recognition, and whether to re-enrol them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PersonHealth {
    pub person: String,
    pub seen: i64,
    pub last_seen_ms: i64,
    pub last_strong_ms: Option<i64>,
    pub trend: f32,
    /// Why a new enrolment is due, in Korean and English; None while all is well.
    pub reenrol: Option<String>,
}

/// Everyone seen so far, the ones to re-enrol first. `threshold` is the match threshold.
pub fn report(conn: &Connection, threshold: f32, now_ms: i64) -> Result<Vec<PersonHealth>, StoreError> {
    let mut stmt =
        conn.prepare("SELECT person, seen, last_seen_ms, last_strong_ms, trend FROM recognition ORDER BY person")?;
    let rows = stmt.query_map([], |r| {
        Ok(PersonHealth {
            person: r.get(0)?,
            seen: r.get(1)?,
            last_seen_ms: r.get(2)?,
            last_strong_ms: r.get(3)?,
            trend: r.get(4)?,
            reenrol: None,
        })
    })?;
    let mut out: Vec<PersonHealth> = rows.collect::<Result<_, _>>()?;
    for p in &mut out {
        p.reenrol = due(p, threshold, now_ms);
    }
    out.sort_by_key(|p| p.reenrol.is_none());
    Ok(out)
}

fn due(p: &PersonHealth, threshold: f32, now_ms: i64) -> Option<String> {
    if p.seen < MIN_SIGHTINGS {
        return None;
    }
    if p.trend < threshold + DRIFT_MARGIN {
        return Some(format!(
            "recognised ever more weakly (trend {:.2}, threshold {threshold:.2}): re-enrol with new photos / \
             인식 점수가 계속 낮아짐: 새 사진으로 다시 등록하세요",
            p.trend
        ));
    }
    let recent = now_ms - p.last_seen_ms <= RECENT_DAYS * DAY_MS;
    let stale = p.last_strong_ms.is_none_or(|s| now_ms - s > STALE_DAYS * DAY_MS);
    if recent && stale {
        return Some(format!(
            "seen lately but not clearly for over {STALE_DAYS} days: re-enrol with new photos / \
             {STALE_DAYS}일 넘게 뚜렷하게 인식되지 않음: 새 사진으로 다시 등록하세요"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn conn() -> Connection {
        let c = Connection::open_in_memory().expect("db");
        c.execute_batch(crate::store::SCHEMA).expect("schema");
        c
    }

    #[test]
    fn a_face_that_drifts_towards_the_threshold_is_due_for_re_enrolment() {
        let c = conn();
        // A child recognised clearly, then ever more weakly over a season.
        let season =
            [0.70f32, 0.68, 0.66, 0.60, 0.55, 0.50, 0.47, 0.46, 0.45, 0.44, 0.44, 0.43, 0.43, 0.42, 0.42, 0.42];
        for (day, sim) in season.into_iter().enumerate() {
            record(&c, "minji", sim, NOW - (50 - day as i64 * 3) * DAY_MS).expect("record");
        }
        for _ in 0..8 {
            record(&c, "jiwoo", 0.72, NOW - DAY_MS).expect("record");
        }
        let r = report(&c, 0.40, NOW).expect("report");
        assert_eq!(r[0].person, "minji", "the one to re-enrol comes first: {r:?}");
        let why = r[0].reenrol.as_deref().expect("minji is due");
        assert!(why.contains("re-enrol") && why.contains("다시 등록"), "{why}");
        assert!(r[0].trend < 0.48, "{}", r[0].trend);
        assert_eq!(r[1].reenrol, None, "jiwoo is recognised clearly");
        assert_eq!(r[1].seen, 8);
    }

    #[test]
    fn seen_lately_but_not_clearly_for_two_months_is_due() {
        let c = conn();
        for i in 0..6 {
            record(&c, "seoyun", 0.60, NOW - (90 - i) * DAY_MS).expect("strong, three months ago");
        }
        let r = report(&c, 0.40, NOW).expect("report");
        assert_eq!(r[0].reenrol, None, "not seen lately: no judgement");
        for i in 0..3 {
            record(&c, "seoyun", 0.53, NOW - (3 - i) * DAY_MS).expect("weaker, this week");
        }
        let r = report(&c, 0.40, NOW).expect("report");
        assert!(r[0].reenrol.as_deref().is_some_and(|w| w.contains("60")), "{r:?}");
        assert_eq!(r[0].last_strong_ms, Some(NOW - 85 * DAY_MS));
    }

    #[test]
    fn a_few_sightings_prove_nothing() {
        let c = conn();
        for _ in 0..(MIN_SIGHTINGS - 1) {
            record(&c, "new", 0.41, NOW).expect("record");
        }
        assert_eq!(report(&c, 0.40, NOW).expect("report")[0].reenrol, None);
    }
}
