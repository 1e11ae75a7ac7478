//! Open-set matching for a class of look-alikes: a face is the enrolled person it resembles
//! most only if the resemblance reaches the threshold (which rises with the gallery's size) and
//! clearly beats everyone else's (the margin; a larger one over a marked look-alike). Otherwise
//! it is unknown: never "the nearest person", and never a coin toss between two children.

use serde::Serialize;

use super::{Gallery, Person};
use crate::config::MatcherConfig;
use crate::Embedding;

/// Galleries up to this size use the configured threshold as it is.
const REFERENCE_SIZE: usize = 10;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Match<'g> {
    /// The matched person, or None for an unknown face.
    #[serde(skip)]
    pub person: Option<&'g Person>,
    /// Best similarity to anyone in the gallery (also reported for unknown faces, to tune the
    /// threshold); None when the gallery is empty.
    pub similarity: Option<f32>,
    /// The second-best person's similarity, when there is one.
    pub runner_up: Option<f32>,
    /// The face reached the threshold but did not lead the runner-up by the margin: unknown.
    pub contested: bool,
    /// The matched person has a close neighbour in the gallery (a marked look-alike, or another
    /// person's template within `neighbour_similarity`): the door asks for more votes.
    pub crowded: bool,
}

pub struct Matcher {
    config: MatcherConfig,
}

impl Matcher {
    pub fn new(config: MatcherConfig) -> Self {
        Self { config }
    }

    pub fn config(&self) -> &MatcherConfig {
        &self.config
    }

    /// The threshold for a gallery of `people`: the configured one up to 10 people, plus
    /// `threshold_per_tenfold` for every tenfold beyond. A stranger is compared with everyone
    /// enrolled, so the chance that one comparison comes close grows with the count.
    pub fn threshold_for(&self, people: usize) -> f32 {
        let tenfolds = (people.max(REFERENCE_SIZE) as f32 / REFERENCE_SIZE as f32).log10();
        self.config.threshold + self.config.threshold_per_tenfold * tenfolds
    }

    /// A person's score is their best similarity over all their enrolled photos: one good
    /// enrolment photo taken from the kiosk's angle should be enough to be recognised.
    pub fn best<'g>(&self, gallery: &'g Gallery, probe: &Embedding) -> Match<'g> {
        let mut best: Option<(&Person, f32)> = None;
        let mut second: Option<(&Person, f32)> = None;
        // People checked in by tag or PIN only have no template: they take no part in a match,
        // neither as candidates nor in the gallery size the threshold grows with.
        let faces = || gallery.people.iter().filter(|p| p.templates().next().is_some());
        for person in faces() {
            let score = score(person, probe);
            if best.is_none_or(|(_, s)| score > s) {
                second = best;
                best = Some((person, score));
            } else if second.is_none_or(|(_, s)| score > s) {
                second = Some((person, score));
            }
        }
        let Some((person, similarity)) = best else {
            return Match { person: None, similarity: None, runner_up: None, contested: false, crowded: false };
        };
        let runner_up = second.map(|(_, s)| s);
        let unknown = Match { person: None, similarity: Some(similarity), runner_up, contested: false, crowded: false };
        if similarity < self.threshold_for(faces().count()) {
            return unknown;
        }
        if let Some((other, s)) = second {
            let marked = person.lookalikes.contains(&other.id);
            let margin = if marked { self.config.lookalike_margin } else { self.config.margin };
            if similarity - s < margin {
                return Match { contested: true, ..unknown };
            }
        }
        let crowded = !person.lookalikes.is_empty() || self.has_close_neighbour(gallery, person);
        Match { person: Some(person), similarity: Some(similarity), runner_up, contested: false, crowded }
    }

    /// Whether another enrolled person's template comes within `neighbour_similarity` of one of
    /// this person's: computed for the matched person only, so it costs a few thousand dot
    /// products per match, not per frame.
    fn has_close_neighbour(&self, gallery: &Gallery, person: &Person) -> bool {
        gallery
            .people
            .iter()
            .filter(|p| p.id != person.id)
            .any(|other| person.templates().any(|e| score(other, e) >= self.config.neighbour_similarity))
    }
}

fn score(person: &Person, probe: &Embedding) -> f32 {
    person.templates().map(|e| e.similarity(probe)).fold(f32::NEG_INFINITY, f32::max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gallery::Role;

    fn emb(v: &[f32]) -> Embedding {
        Embedding::normalized(v.to_vec()).expect("non-zero")
    }

    fn gallery() -> Gallery {
        let mut g = Gallery::empty();
        g.enroll("a", Role::Child, "A", vec![emb(&[1.0, 0.0, 0.0]), emb(&[0.9, 0.1, 0.0])], "m", 0).expect("a");
        g.enroll("b", Role::Guardian, "B", vec![emb(&[0.0, 1.0, 0.0])], "m", 0).expect("b");
        g
    }

    fn matcher(threshold: f32) -> Matcher {
        Matcher::new(MatcherConfig { threshold, ..MatcherConfig::default() })
    }

    #[test]
    fn matches_above_threshold() {
        let g = gallery();
        let m = matcher(0.5).best(&g, &emb(&[0.95, 0.05, 0.1]));
        assert_eq!(m.person.map(|p| p.id.as_str()), Some("a"));
        assert!(!m.contested);
        assert!(!m.crowded, "a and b are far apart");
    }

    #[test]
    fn below_threshold_is_unknown_not_nearest() {
        let g = gallery();
        let m = matcher(0.5).best(&g, &emb(&[0.3, 0.2, 0.9]));
        assert!(m.person.is_none());
        let s = m.similarity.expect("gallery not empty");
        assert!(s > 0.0 && s < 0.5, "{s}");
    }

    #[test]
    fn empty_gallery_knows_nobody() {
        let empty = Gallery::empty();
        let m = matcher(0.5).best(&empty, &emb(&[1.0]));
        assert_eq!(m, Match { person: None, similarity: None, runner_up: None, contested: false, crowded: false });
    }

    /// Two children about equally like the face: unknown, however high both scores are. The old
    /// rule took whichever was a hair ahead.
    #[test]
    fn split_evidence_is_unknown() {
        let mut g = Gallery::empty();
        g.enroll("minji", Role::Child, "민지", vec![emb(&[1.0, 0.0, 0.0])], "m", 0).expect("minji");
        g.enroll("minseo", Role::Child, "민서", vec![emb(&[0.0, 1.0, 0.0])], "m", 0).expect("minseo");
        let between = emb(&[1.0, 0.95, 0.0]);
        let m = matcher(0.4).best(&g, &between);
        assert!(m.person.is_none() && m.contested, "{m:?}");
        let old = Matcher::new(MatcherConfig::single_threshold(0.4)).best(&g, &between);
        assert_eq!(old.person.map(|p| p.id.as_str()), Some("minji"), "today's rule picks one");
        // A clear lead is a match.
        let m = matcher(0.4).best(&g, &emb(&[1.0, 0.7, 0.0]));
        assert_eq!(m.person.map(|p| p.id.as_str()), Some("minji"));
    }

    /// Siblings marked as look-alikes need the larger margin between them.
    #[test]
    fn marked_lookalikes_need_the_larger_margin_and_are_crowded() {
        let mut g = Gallery::empty();
        g.enroll("minji", Role::Child, "민지", vec![emb(&[1.0, 0.0, 0.0])], "m", 0).expect("minji");
        g.enroll("minseo", Role::Child, "민서", vec![emb(&[0.0, 1.0, 0.0])], "m", 0).expect("minseo");
        // Leads by about 0.07: enough for the plain margin (0.05), not for look-alikes (0.10).
        let probe = emb(&[1.0, 0.9, 0.0]);
        let plain = matcher(0.4).best(&g, &probe);
        assert_eq!(plain.person.map(|p| p.id.as_str()), Some("minji"), "{plain:?}");
        g.mark_lookalikes("minji", "minseo").expect("mark");
        let marked = matcher(0.4).best(&g, &probe);
        assert!(marked.person.is_none() && marked.contested, "{marked:?}");
        let clear = matcher(0.4).best(&g, &emb(&[1.0, 0.5, 0.0]));
        assert_eq!(clear.person.map(|p| p.id.as_str()), Some("minji"));
        assert!(clear.crowded, "a marked look-alike means more votes at the door");
    }

    /// An unmarked neighbour whose template comes close also asks for more votes.
    #[test]
    fn a_close_neighbour_makes_a_match_crowded() {
        let mut g = Gallery::empty();
        g.enroll("a", Role::Child, "A", vec![emb(&[1.0, 0.0, 0.0])], "m", 0).expect("a");
        g.enroll("b", Role::Child, "B", vec![emb(&[0.5, 1.0, 0.0])], "m", 0).expect("b"); // 0.45 from a
        let m = matcher(0.4).best(&g, &emb(&[1.0, 0.0, 0.1]));
        assert_eq!(m.person.map(|p| p.id.as_str()), Some("a"));
        assert!(m.crowded);
    }

    /// Families who chose a tag have no template: they neither match nor make the threshold
    /// stricter for the faces that are enrolled.
    #[test]
    fn people_without_a_template_take_no_part_in_a_match() {
        use crate::gallery::credentials::{CardId, NewPerson};
        let mut g = gallery();
        let m = matcher(0.40);
        for i in 0..500u32 {
            let b = i.to_be_bytes();
            let new = NewPerson { role: Role::Child, name: "T" };
            g.add_tag(&format!("tag{i}"), CardId::from_bytes([1, b[0], b[1], b[2], b[3]]), Some(new), 0).expect("tag");
        }
        assert!(m.threshold_for(502) > 0.41, "a gallery of 502 would need more");
        // 0.41 to A: enough among two faces, whatever the number of tag-only families.
        let probe = emb(&[0.41, 0.0, (1.0f32 - 0.41 * 0.41).sqrt()]);
        let r = m.best(&g, &probe);
        assert_eq!(r.person.map(|p| p.id.as_str()), Some("a"), "{:?}", r.similarity);
        assert!(r.runner_up.is_some_and(f32::is_finite), "the runner-up is a face, not a tag: {:?}", r.runner_up);
    }

    /// The threshold rises with the gallery: a stranger meets more faces to resemble.
    #[test]
    fn the_threshold_rises_with_the_gallery_size() {
        let m = matcher(0.40);
        assert_eq!(m.threshold_for(1), 0.40);
        assert_eq!(m.threshold_for(10), 0.40);
        assert!((m.threshold_for(100) - 0.43).abs() < 1e-6);
        assert!(m.threshold_for(50) > 0.40 && m.threshold_for(50) < m.threshold_for(200));
        assert_eq!(Matcher::new(MatcherConfig::single_threshold(0.4)).threshold_for(500), 0.4);
    }
}
