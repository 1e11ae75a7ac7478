//! Templates that follow a growing face. A track settled on a person beyond doubt — every vote
//! for them, each far ahead of anyone else, and well above the threshold — gives its best
//! embedding to the person's template set. Rare (one per person a week at most), bounded
//! (never more sighting templates than enrolled ones), logged with its numbers, and revertible
//! (`dolbom gallery revert-refresh ID`): a template taken from a wrong match would teach the
//! gallery the wrong face, so anything short of certain is left alone.

use std::collections::HashMap;

use dolbom_face::gallery::{Match, RefreshPolicy, Refreshed};
use dolbom_face::Embedding;

/// What the votes of one track have shown so far.
#[derive(Debug, Clone)]
struct Evidence {
    person: Option<String>,
    /// A vote went to nobody or to someone else.
    contested: bool,
    best_similarity: f32,
    smallest_margin: f32,
    best: Option<Embedding>,
    touched_ms: i64,
}

/// How sure is sure enough.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RefreshRule {
    /// The best vote's similarity must reach the gallery's threshold plus this.
    pub above_threshold: f32,
    /// Every vote must lead the runner-up by this.
    pub min_margin: f32,
    pub policy: RefreshPolicy,
}

impl Default for RefreshRule {
    fn default() -> Self {
        Self { above_threshold: 0.15, min_margin: 0.15, policy: RefreshPolicy::default() }
    }
}

/// The evidence of every open track.
#[derive(Debug, Default)]
pub struct TrackEvidence {
    tracks: HashMap<u64, Evidence>,
}

impl TrackEvidence {
    /// Notes one vote of `track`: the match and the embedding it came from.
    pub fn note(&mut self, track: u64, m: &Match<'_>, embedding: &Embedding, now_ms: i64) {
        let e = self.tracks.entry(track).or_insert(Evidence {
            person: None,
            contested: false,
            best_similarity: f32::MIN,
            smallest_margin: f32::MAX,
            best: None,
            touched_ms: now_ms,
        });
        e.touched_ms = now_ms;
        let Some(p) = m.person else {
            e.contested = true;
            return;
        };
        match &e.person {
            Some(q) if *q != p.id => e.contested = true,
            Some(_) => {}
            None => e.person = Some(p.id.clone()),
        }
        let similarity = m.similarity.unwrap_or(f32::MIN);
        e.smallest_margin = e.smallest_margin.min(similarity - m.runner_up.unwrap_or(0.0));
        if similarity > e.best_similarity {
            e.best_similarity = similarity;
            e.best = Some(embedding.clone());
        }
    }

    /// The track has settled on `person`: a template to add, if its evidence is beyond doubt.
    /// Forgets the track either way.
    pub fn settle(
        &mut self,
        track: u64,
        person: Option<&str>,
        threshold: f32,
        rule: &RefreshRule,
        now_secs: u64,
    ) -> Option<Refreshed> {
        let e = self.tracks.remove(&track)?;
        let sure = person.is_some()
            && e.person.as_deref() == person
            && !e.contested
            && e.best_similarity >= threshold + rule.above_threshold
            && e.smallest_margin >= rule.min_margin;
        if !sure {
            return None;
        }
        Some(Refreshed {
            embedding: e.best?,
            added_at: now_secs,
            similarity: e.best_similarity,
            margin: e.smallest_margin,
        })
    }

    /// Forgets tracks not voted on for a minute (they left without settling).
    pub fn prune(&mut self, now_ms: i64) {
        self.tracks.retain(|_, e| now_ms - e.touched_ms < 60_000);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dolbom_face::gallery::{Gallery, Person, Role};

    fn emb(v: &[f32]) -> Embedding {
        Embedding::normalized(v.to_vec()).expect("non-zero")
    }

    fn gallery() -> Gallery {
        let mut g = Gallery::empty();
        g.enroll("minji", Role::Child, "민지", vec![emb(&[1.0, 0.0])], "m", 0).expect("enrol");
        g.enroll("jiwoo", Role::Child, "지우", vec![emb(&[0.0, 1.0])], "m", 0).expect("enrol");
        g
    }

    fn vote<'g>(p: Option<&'g Person>, similarity: f32, runner_up: f32) -> Match<'g> {
        Match { person: p, similarity: Some(similarity), runner_up: Some(runner_up), contested: false, crowded: false }
    }

    #[test]
    fn a_track_beyond_doubt_gives_its_best_embedding() {
        let g = gallery();
        let minji = g.get("minji");
        let mut ev = TrackEvidence::default();
        ev.note(1, &vote(minji, 0.70, 0.10), &emb(&[0.9, 0.1]), 0);
        ev.note(1, &vote(minji, 0.80, 0.12), &emb(&[0.95, 0.05]), 100);
        let t = ev.settle(1, Some("minji"), 0.40, &RefreshRule::default(), 7).expect("sure");
        assert_eq!((t.similarity, t.added_at), (0.80, 7));
        assert_eq!(t.embedding, emb(&[0.95, 0.05]), "the best frame's embedding");
        assert!((t.margin - 0.60).abs() < 1e-6);
        assert!(ev.settle(1, Some("minji"), 0.40, &RefreshRule::default(), 8).is_none(), "forgotten once settled");
    }

    /// A contested track never teaches the gallery: one vote for nobody, one for someone else,
    /// or one that barely led, and nothing is added.
    #[test]
    fn a_contested_track_never_refreshes() {
        let g = gallery();
        let (minji, jiwoo) = (g.get("minji"), g.get("jiwoo"));
        let rule = RefreshRule::default();
        let cases: [(&str, Vec<Match<'_>>); 4] = [
            ("a vote for nobody", vec![vote(minji, 0.8, 0.1), vote(None, 0.3, 0.2), vote(minji, 0.8, 0.1)]),
            ("a vote for someone else", vec![vote(minji, 0.8, 0.1), vote(jiwoo, 0.6, 0.5), vote(minji, 0.8, 0.1)]),
            ("a narrow lead", vec![vote(minji, 0.8, 0.1), vote(minji, 0.7, 0.6)]),
            ("not far enough above the threshold", vec![vote(minji, 0.5, 0.1), vote(minji, 0.52, 0.1)]),
        ];
        for (what, votes) in cases {
            let mut ev = TrackEvidence::default();
            for (i, m) in votes.iter().enumerate() {
                ev.note(9, m, &emb(&[1.0, 0.1]), i as i64 * 100);
            }
            assert_eq!(ev.settle(9, Some("minji"), 0.40, &rule, 1), None, "{what}");
        }
        // Settled as unknown or as another person than the votes said: nothing either.
        let mut ev = TrackEvidence::default();
        ev.note(3, &vote(minji, 0.8, 0.1), &emb(&[1.0, 0.0]), 0);
        assert_eq!(ev.settle(3, None, 0.40, &rule, 1), None);
    }

    #[test]
    fn tracks_that_left_unsettled_are_forgotten() {
        let g = gallery();
        let mut ev = TrackEvidence::default();
        ev.note(1, &vote(g.get("minji"), 0.8, 0.1), &emb(&[1.0, 0.0]), 0);
        ev.prune(59_000);
        assert_eq!(ev.tracks.len(), 1);
        ev.prune(61_000);
        assert!(ev.tracks.is_empty());
    }
}
