//! Tracking faces across frames and settling who each track is.
//!
//! A person walking up to the door is one track, not one event per frame. Detections are
//! associated with tracks by box overlap (IoU). Each track is embedded only on good frames
//! (big enough, frontal enough) and only until its identity is settled; every embedding casts a
//! vote weighted by the face's quality. A track becomes a person after `min_votes` votes for
//! them that also hold the majority of the weight; it becomes *unknown* only after a grace
//! window with enough attempts, so a stranger is never announced while the real name is still
//! a frame or two away.
//!
//! A settled track is re-checked with one embedding every `reverify_ms`: when someone else steps
//! into the same spot (a parent right behind a child, a camera cut), two disagreeing checks in a
//! row end the track and start a new one for the new face.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;

use dolbom_face::config::in_range;
use dolbom_face::Detection;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackingConfig {
    /// Minimum box overlap for a detection to continue a track.
    pub iou_match: f32,
    /// A track not seen for this long has left.
    pub lost_after_ms: i64,
    /// Smallest face (shorter box side, px) worth embedding.
    pub min_face_px: f32,
    /// How far the nose may sit from the eyes' midpoint, as a fraction of the eye distance,
    /// for the face to count as frontal.
    pub max_yaw_ratio: f32,
    /// Votes for one person needed to settle a track on them.
    pub min_votes: u32,
    /// Votes needed instead when the person has a close neighbour in the gallery (a marked
    /// look-alike, a sibling): strong evidence before a parent hears that their child arrived.
    pub lookalike_min_votes: u32,
    /// Time since the track began before it may be called unknown.
    pub unknown_grace_ms: i64,
    /// Embeddings tried before a track may be called unknown.
    pub unknown_min_attempts: u32,
    /// Embeddings per track at most; an unsettled track is then decided on what it has.
    pub max_attempts: u32,
    /// How often a settled track's face is embedded again to check it is still the same person.
    pub reverify_ms: i64,
}

impl TrackingConfig {
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !(0.0..1.0).contains(&self.iou_match) || self.iou_match == 0.0 {
            return Err(("tracking.iou_match", format!("= {}: must be between 0 and 1", self.iou_match)));
        }
        in_range("tracking.lost_after_ms", self.lost_after_ms, 100, 60_000)?;
        in_range("tracking.min_face_px", self.min_face_px, 8.0, 4096.0)?;
        in_range("tracking.max_yaw_ratio", self.max_yaw_ratio, 0.05, 2.0)?;
        in_range("tracking.min_votes", self.min_votes, 1, 50)?;
        in_range("tracking.lookalike_min_votes", self.lookalike_min_votes, self.min_votes, 50)
            .map_err(|(k, m)| (k, format!("{m} (and at least tracking.min_votes)")))?;
        in_range("tracking.unknown_grace_ms", self.unknown_grace_ms, 0, 60_000)?;
        in_range("tracking.unknown_min_attempts", self.unknown_min_attempts, 1, 100)?;
        in_range("tracking.max_attempts", self.max_attempts, 1, 200)?;
        in_range("tracking.reverify_ms", self.reverify_ms, 100, 600_000)?;
        if self.min_votes == 0
            || self.max_attempts < self.lookalike_min_votes
            || self.max_attempts < self.unknown_min_attempts
        {
            return Err((
                "tracking.max_attempts",
                "must be at least tracking.lookalike_min_votes and tracking.unknown_min_attempts; min_votes at least 1"
                    .into(),
            ));
        }
        Ok(())
    }
}

impl Default for TrackingConfig {
    fn default() -> Self {
        Self {
            iou_match: 0.3,
            lost_after_ms: 1500,
            min_face_px: 40.0,
            max_yaw_ratio: 0.35,
            min_votes: 2,
            lookalike_min_votes: 3,
            unknown_grace_ms: 1500,
            unknown_min_attempts: 3,
            max_attempts: 12,
            reverify_ms: 1000,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Person { id: String, confidence: f32 },
    Unknown,
}

/// A track's settled identity, reported once per track.
#[derive(Debug, Clone, PartialEq)]
pub struct Settled {
    pub track_id: u64,
    pub verdict: Verdict,
    /// Capture time (ms since the epoch) of the frame that settled it.
    pub at_ms: i64,
}

/// One embedding's match, as the tracker counts it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Vote<'a> {
    pub person: &'a str,
    pub similarity: f32,
    /// The person has a close neighbour in the gallery: `lookalike_min_votes` are needed.
    pub crowded: bool,
}

impl<'a> Vote<'a> {
    /// A match for a person with no close neighbour.
    pub fn plain(person: &'a str, similarity: f32) -> Self {
        Self { person, similarity, crowded: false }
    }
}

#[derive(Debug, Clone)]
struct Track {
    id: u64,
    last: Detection,
    first_ms: i64,
    last_ms: i64,
    /// person id → (summed weight, votes, summed similarity)
    votes: HashMap<String, (f32, u32, f32)>,
    /// People voted for whose match was crowded (a close neighbour in the gallery).
    crowded: HashSet<String>,
    unknown_weight: f32,
    attempts: u32,
    /// Who the track was settled as (`Some(None)`: unknown), once settled.
    settled_as: Option<Option<String>>,
    /// When the settled identity was last confirmed.
    verified_ms: i64,
    /// Consecutive re-checks that disagreed with the settled identity.
    strikes: u32,
}

impl Track {
    fn new(id: u64, det: Detection, now_ms: i64) -> Self {
        Track {
            id,
            last: det,
            first_ms: now_ms,
            last_ms: now_ms,
            votes: HashMap::new(),
            crowded: HashSet::new(),
            unknown_weight: 0.0,
            attempts: 0,
            settled_as: None,
            verified_ms: now_ms,
            strikes: 0,
        }
    }

    fn settled(&self) -> bool {
        self.settled_as.is_some()
    }

    fn total_weight(&self) -> f32 {
        self.unknown_weight + self.votes.values().map(|v| v.0).sum::<f32>()
    }

    fn leader(&self) -> Option<(&String, &(f32, u32, f32))> {
        self.votes.iter().max_by(|a, b| a.1 .0.total_cmp(&b.1 .0))
    }

    /// Votes `person` needs to settle this track.
    fn votes_needed(&self, person: &str, c: &TrackingConfig) -> u32 {
        if self.crowded.contains(person) {
            c.lookalike_min_votes
        } else {
            c.min_votes
        }
    }
}

pub struct Tracker {
    config: TrackingConfig,
    tracks: Vec<Track>,
    next_id: u64,
}

impl Tracker {
    pub fn new(config: TrackingConfig) -> Self {
        Self { config, tracks: Vec::new(), next_id: 1 }
    }

    pub fn active(&self) -> usize {
        self.tracks.len()
    }

    /// True when every live track has settled: detection can then run less often.
    pub fn all_settled(&self) -> bool {
        self.tracks.iter().all(Track::settled)
    }

    /// Associates this frame's detections with tracks (greedy, best overlap first), starts new
    /// tracks for the rest, and returns the track id for each detection, in order.
    pub fn observe(&mut self, now_ms: i64, detections: &[Detection]) -> Vec<u64> {
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (di, d) in detections.iter().enumerate() {
            for (ti, t) in self.tracks.iter().enumerate() {
                let score = association(&t.last, d, self.config.iou_match);
                if score > 0.0 {
                    pairs.push((score, di, ti));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut det_track: Vec<Option<usize>> = vec![None; detections.len()];
        let mut track_taken = vec![false; self.tracks.len()];
        for (_, di, ti) in pairs {
            if det_track[di].is_none() && !track_taken[ti] {
                det_track[di] = Some(ti);
                track_taken[ti] = true;
            }
        }
        let mut ids = Vec::with_capacity(detections.len());
        for (di, d) in detections.iter().enumerate() {
            match det_track[di] {
                Some(ti) => {
                    let t = &mut self.tracks[ti];
                    t.last = d.clone();
                    t.last_ms = now_ms;
                    ids.push(t.id);
                }
                None => {
                    let id = self.next_id;
                    self.next_id += 1;
                    self.tracks.push(Track::new(id, d.clone(), now_ms));
                    ids.push(id);
                }
            }
        }
        ids
    }

    /// Whether this track's face in this frame is worth an embedding, and the vote weight it
    /// would carry (0..1). Settled tracks want one only when a re-check is due.
    pub fn wants_embedding(&self, track_id: u64, face: &Detection, now_ms: i64) -> Option<f32> {
        let t = self.tracks.iter().find(|t| t.id == track_id)?;
        let due = if t.settled() {
            now_ms - t.verified_ms >= self.config.reverify_ms
        } else {
            t.attempts < self.config.max_attempts
        };
        if !due {
            return None;
        }
        let size = face.width().min(face.height());
        if size < self.config.min_face_px {
            return None;
        }
        let yaw = face.yaw_ratio();
        if yaw > self.config.max_yaw_ratio {
            return None;
        }
        let size_w = (size / 112.0).min(1.0);
        let frontal_w = 1.0 - yaw / self.config.max_yaw_ratio * 0.5;
        Some((size_w * frontal_w * face.score).clamp(0.05, 1.0))
    }

    /// Whether a face is big enough and frontal enough to be recognised (the gate of
    /// [`Tracker::wants_embedding`], without a track).
    pub fn good_view(&self, face: &Detection) -> bool {
        face.width().min(face.height()) >= self.config.min_face_px && face.yaw_ratio() <= self.config.max_yaw_ratio
    }

    /// Whether this unsettled track's face is too small or turned too far to be recognised: the
    /// door screen then asks the person to come closer and look at the camera.
    pub fn needs_better_view(&self, track_id: u64, face: &Detection) -> bool {
        let Some(t) = self.tracks.iter().find(|t| t.id == track_id) else { return false };
        !t.settled()
            && t.attempts < self.config.max_attempts
            && (face.width().min(face.height()) < self.config.min_face_px
                || face.yaw_ratio() > self.config.max_yaw_ratio)
    }

    /// Records one embedding's verdict for a track. `matched` is the gallery person it matched,
    /// with its similarity, or None when it matched nobody. Returns the settled identity when
    /// this vote settles the track on a person.
    pub fn vote(&mut self, track_id: u64, matched: Option<Vote<'_>>, weight: f32, now_ms: i64) -> Option<Settled> {
        let config = self.config.clone();
        let next_id = self.next_id;
        let t = self.tracks.iter_mut().find(|t| t.id == track_id)?;
        if let Some(settled_as) = &t.settled_as {
            if settled_as.as_deref() == matched.as_ref().map(|m| m.person) {
                t.strikes = 0;
                t.verified_ms = now_ms;
                return None;
            }
            t.strikes += 1;
            // The next check comes a full interval later, so one blurry second cannot split a track.
            t.verified_ms = now_ms;
            if t.strikes < 2 {
                return None;
            }
            // Someone else is standing where the settled person was: a new track from here.
            *t = Track::new(next_id, t.last.clone(), now_ms);
            self.next_id += 1;
        }
        t.attempts += 1;
        match matched {
            Some(Vote { person, similarity, crowded }) => {
                let v = t.votes.entry(person.to_string()).or_insert((0.0, 0, 0.0));
                v.0 += weight;
                v.1 += 1;
                v.2 += similarity;
                if crowded {
                    t.crowded.insert(person.to_string());
                }
            }
            None => t.unknown_weight += weight,
        }
        let total = t.total_weight();
        let (person, (w, n, sim)) = t.leader()?;
        if *n >= t.votes_needed(person, &config) && *w > total * 0.5 {
            let verdict = Verdict::Person { id: person.clone(), confidence: sim / *n as f32 };
            t.settled_as = Some(Some(person.clone()));
            t.verified_ms = now_ms;
            return Some(Settled { track_id: t.id, verdict, at_ms: now_ms });
        }
        None
    }

    /// Settles tracks that have been unknown long enough, and forgets tracks that left. A track
    /// that leaves unsettled is reported as unknown if it was given a fair chance; one that
    /// flickered past is forgotten silently.
    pub fn sweep(&mut self, now_ms: i64) -> Vec<Settled> {
        let c = &self.config;
        let mut out = Vec::new();
        for t in &mut self.tracks {
            if t.settled() {
                continue;
            }
            let lost = now_ms - t.last_ms > c.lost_after_ms;
            let graced = now_ms - t.first_ms >= c.unknown_grace_ms;
            let exhausted = t.attempts >= c.max_attempts;
            let total = t.total_weight();
            let leader = t.leader().map(|(p, v)| (p.clone(), *v, t.votes_needed(p, c)));
            let verdict = match leader {
                // Out of time or tries with a clear front-runner who has enough votes: them.
                Some((p, (w, n, sim), needed)) if (lost || exhausted) && n >= needed && w > t.unknown_weight => {
                    Some(Verdict::Person { id: p, confidence: sim / n as f32 })
                }
                _ if t.attempts >= c.unknown_min_attempts
                    && (t.unknown_weight > total * 0.5 || lost || exhausted)
                    && (graced || lost || exhausted) =>
                {
                    Some(Verdict::Unknown)
                }
                _ => None,
            };
            if let Some(verdict) = verdict {
                t.settled_as = Some(match &verdict {
                    Verdict::Person { id, .. } => Some(id.clone()),
                    Verdict::Unknown => None,
                });
                t.verified_ms = now_ms;
                out.push(Settled { track_id: t.id, verdict, at_ms: t.last_ms });
            }
        }
        self.tracks.retain(|t| now_ms - t.last_ms <= c.lost_after_ms);
        out
    }
}

/// How well a detection continues a track: its IoU when that reaches `iou_match`; otherwise a
/// small positive score when the face is close by and about the same size. Someone walking
/// briskly toward the camera grows and shifts faster than IoU alone tolerates, above all when
/// detection runs only every few frames.
fn association(track: &Detection, det: &Detection, iou_match: f32) -> f32 {
    let iou = track.iou(det);
    if iou >= iou_match {
        return iou;
    }
    let centre = |d: &Detection| ((d.bbox[0] + d.bbox[2]) / 2.0, (d.bbox[1] + d.bbox[3]) / 2.0);
    let ((tx, ty), (dx, dy)) = (centre(track), centre(det));
    let size = track.width().max(track.height()).max(1.0);
    let ratio = det.width().max(det.height()) / size;
    let distance = ((tx - dx).powi(2) + (ty - dy).powi(2)).sqrt() / size;
    if distance <= 0.6 && (0.67..=1.5).contains(&ratio) {
        0.01 * (1.0 - distance)
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(x: f32, size: f32) -> Detection {
        let (cx, cy) = (x + size / 2.0, size / 2.0);
        Detection {
            bbox: [x, 0.0, x + size, size],
            score: 0.95,
            landmarks: [
                [cx - size * 0.2, cy - size * 0.1],
                [cx + size * 0.2, cy - size * 0.1],
                [cx, cy + size * 0.05],
                [cx - size * 0.15, cy + size * 0.25],
                [cx + size * 0.15, cy + size * 0.25],
            ],
        }
    }

    #[test]
    fn a_walking_face_is_one_track() {
        let mut t = Tracker::new(TrackingConfig::default());
        let ids: Vec<u64> = (0..10).map(|i| t.observe(i * 100, &[face(100.0 + i as f32 * 5.0, 120.0)])[0]).collect();
        assert!(ids.iter().all(|id| *id == ids[0]));
        let two = t.observe(1000, &[face(150.0, 120.0), face(600.0, 120.0)]);
        assert_eq!(two[0], ids[0]);
        assert_ne!(two[1], ids[0]);
    }

    #[test]
    fn a_person_with_a_close_neighbour_needs_more_votes() {
        let mut t = Tracker::new(TrackingConfig::default());
        let f = face(100.0, 120.0);
        let id = t.observe(0, std::slice::from_ref(&f))[0];
        let crowded = |sim| Some(Vote { person: "minji", similarity: sim, crowded: true });
        assert_eq!(t.vote(id, crowded(0.6), 1.0, 0), None);
        assert_eq!(t.vote(id, crowded(0.6), 1.0, 100), None, "two votes settle a plain match, not a crowded one");
        let s = t.vote(id, crowded(0.6), 1.0, 200).expect("the third settles it");
        assert_eq!(s.verdict, Verdict::Person { id: "minji".into(), confidence: 0.6 });
        // Leaving with only two crowded votes is not enough either: unknown, not minji.
        let mut t = Tracker::new(TrackingConfig::default());
        let id = t.observe(0, std::slice::from_ref(&f))[0];
        t.vote(id, crowded(0.6), 1.0, 0);
        t.vote(id, None, 0.1, 50);
        t.vote(id, crowded(0.6), 1.0, 100);
        let out = t.sweep(10_000);
        assert!(out.iter().all(|s| s.verdict != Verdict::Person { id: "minji".into(), confidence: 0.6 }), "{out:?}");
    }

    #[test]
    fn person_settles_after_two_votes_and_is_not_embedded_again() {
        let mut t = Tracker::new(TrackingConfig::default());
        let f = face(100.0, 120.0);
        let id = t.observe(0, std::slice::from_ref(&f))[0];
        let w = t.wants_embedding(id, &f, 0).expect("good face");
        assert_eq!(t.vote(id, Some(Vote::plain("minji", 0.7)), w, 0), None);
        let s = t.vote(id, Some(Vote::plain("minji", 0.8)), w, 100).expect("settled");
        assert_eq!(s.verdict, Verdict::Person { id: "minji".into(), confidence: 0.75 });
        assert_eq!(s.at_ms, 100);
        assert!(t.wants_embedding(id, &f, 500).is_none(), "settled tracks are not re-embedded every frame");
        assert!(t.wants_embedding(id, &f, 1100).is_some(), "but re-checked every second");
        assert!(t.all_settled());
    }

    #[test]
    fn unknown_only_after_the_grace_window() {
        let mut t = Tracker::new(TrackingConfig::default());
        let f = face(100.0, 120.0);
        let id = t.observe(0, std::slice::from_ref(&f))[0];
        for i in 0..4 {
            t.observe(i * 100, std::slice::from_ref(&f));
            t.vote(id, None, 1.0, i * 100);
            assert!(t.sweep(i * 100).is_empty(), "too early to call a stranger");
        }
        t.observe(1600, std::slice::from_ref(&f));
        let s = t.sweep(1600);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].verdict, Verdict::Unknown);
        assert!(t.sweep(1700).is_empty(), "reported once");
    }

    #[test]
    fn a_late_recognition_beats_early_unknown_votes() {
        // Far away the face matched nobody; closer it matches: the track is the person, never a visitor.
        let mut t = Tracker::new(TrackingConfig::default());
        let f = face(100.0, 120.0);
        let id = t.observe(0, std::slice::from_ref(&f))[0];
        t.vote(id, None, 0.2, 0);
        t.vote(id, Some(Vote::plain("minji", 0.6)), 1.0, 100);
        let s = t.vote(id, Some(Vote::plain("minji", 0.6)), 1.0, 200).expect("settled");
        assert!(matches!(s.verdict, Verdict::Person { .. }));
        t.observe(2000, &[f]);
        assert!(t.sweep(2000).is_empty());
    }

    #[test]
    fn small_or_turned_faces_are_not_embedded() {
        let mut t = Tracker::new(TrackingConfig::default());
        let small = face(0.0, 30.0);
        let id = t.observe(0, std::slice::from_ref(&small))[0];
        assert!(t.wants_embedding(id, &small, 0).is_none());
        let mut turned = face(0.0, 120.0);
        turned.landmarks[2][0] += 40.0;
        let id = t.observe(0, std::slice::from_ref(&turned))[0];
        assert!(t.wants_embedding(id, &turned, 0).is_none());
    }

    #[test]
    fn a_face_growing_fast_stays_one_track_but_a_neighbour_does_not_join_it() {
        let mut t = Tracker::new(TrackingConfig::default());
        let a = t.observe(0, &[face(100.0, 100.0)])[0];
        // 25 % bigger and shifted: IoU about 0.3 or less, still the same person.
        let mut grown = face(120.0, 125.0);
        grown.bbox[1] -= 60.0;
        grown.bbox[3] -= 60.0;
        assert!(face(100.0, 100.0).iou(&grown) < 0.3);
        assert_eq!(t.observe(300, &[grown])[0], a);
        // Someone a full face-width away is someone else.
        assert_ne!(t.observe(600, &[face(300.0, 125.0)])[0], a);
    }

    #[test]
    fn someone_else_in_the_same_spot_becomes_a_new_track() {
        let mut t = Tracker::new(TrackingConfig::default());
        let f = face(100.0, 120.0);
        let id = t.observe(0, std::slice::from_ref(&f))[0];
        t.vote(id, Some(Vote::plain("minji", 0.7)), 1.0, 0);
        assert!(t.vote(id, Some(Vote::plain("minji", 0.7)), 1.0, 100).is_some());
        // One odd re-check (a turned head) changes nothing.
        assert_eq!(t.vote(id, None, 1.0, 1200), None);
        assert_eq!(t.vote(id, Some(Vote::plain("minji", 0.7)), 1.0, 2300), None);
        assert_eq!(t.observe(2400, std::slice::from_ref(&f))[0], id);
        // Two disagreeing re-checks in a row: the parent behind her is a new track, and settles as himself.
        assert_eq!(t.vote(id, Some(Vote::plain("dad", 0.7)), 1.0, 3400), None);
        assert_eq!(t.vote(id, Some(Vote::plain("dad", 0.7)), 1.0, 4500), None);
        let new_id = t.observe(4600, std::slice::from_ref(&f))[0];
        assert_ne!(new_id, id);
        let s = t.vote(new_id, Some(Vote::plain("dad", 0.8)), 1.0, 4600).expect("settled");
        assert_eq!(s.track_id, new_id);
        assert_eq!(s.verdict, Verdict::Person { id: "dad".into(), confidence: 0.75 });
    }

    #[test]
    fn an_undecided_track_is_decided_when_it_leaves() {
        let mut t = Tracker::new(TrackingConfig::default());
        let f = face(100.0, 120.0);
        // Two votes for minji, the most weight, but not a majority of it: not settled while in view...
        let id = t.observe(0, std::slice::from_ref(&f))[0];
        t.vote(id, Some(Vote::plain("jiwoo", 0.45)), 0.3, 0);
        t.vote(id, None, 0.4, 50);
        t.vote(id, Some(Vote::plain("minji", 0.5)), 0.3, 100);
        assert!(t.vote(id, Some(Vote::plain("minji", 0.5)), 0.3, 150).is_none(), "0.6 of 1.3 is no majority");
        assert!(t.sweep(200).is_empty());
        // ...but when she leaves, the front-runner with enough votes wins.
        let s = t.sweep(2000);
        assert_eq!(s.len(), 1);
        assert!(matches!(&s[0].verdict, Verdict::Person { id, .. } if id == "minji"), "{s:?}");
        // A mixed track without a qualified front-runner leaves as unknown.
        let id = t.observe(3000, std::slice::from_ref(&f))[0];
        t.vote(id, Some(Vote::plain("a", 0.5)), 0.3, 3000);
        t.vote(id, Some(Vote::plain("b", 0.5)), 0.3, 3050);
        t.vote(id, None, 0.2, 3100);
        let s = t.sweep(6000);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].verdict, Verdict::Unknown);
    }

    #[test]
    fn tracks_that_leave_are_forgotten() {
        let mut t = Tracker::new(TrackingConfig::default());
        t.observe(0, &[face(0.0, 120.0)]);
        assert_eq!(t.active(), 1);
        t.sweep(2000);
        assert_eq!(t.active(), 0);
    }
}
