//! Open-set matching: a face is the enrolled person it resembles most only if the resemblance
//! reaches the threshold; otherwise it is unknown. Never "the nearest person" by default.

use serde::Serialize;

use super::{Gallery, Person};
use crate::Embedding;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Match<'g> {
    /// The matched person, or None for an unknown face.
    #[serde(skip)]
    pub person: Option<&'g Person>,
    /// Best similarity to anyone in the gallery (also reported for unknown faces, to tune the
    /// threshold); None when the gallery is empty.
    pub similarity: Option<f32>,
}

pub struct Matcher {
    threshold: f32,
}

impl Matcher {
    pub fn new(threshold: f32) -> Self {
        Self { threshold }
    }

    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// A person's score is their best similarity over all their enrolled photos: one good
    /// enrolment photo taken from the kiosk's angle should be enough to be recognised.
    pub fn best<'g>(&self, gallery: &'g Gallery, probe: &Embedding) -> Match<'g> {
        let mut best: Option<(&Person, f32)> = None;
        for person in &gallery.people {
            let score = person.embeddings.iter().map(|e| e.similarity(probe)).fold(f32::NEG_INFINITY, f32::max);
            if best.is_none_or(|(_, s)| score > s) {
                best = Some((person, score));
            }
        }
        match best {
            Some((p, s)) if s >= self.threshold => Match { person: Some(p), similarity: Some(s) },
            Some((_, s)) => Match { person: None, similarity: Some(s) },
            None => Match { person: None, similarity: None },
        }
    }
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

    #[test]
    fn matches_above_threshold() {
        let g = gallery();
        let m = Matcher::new(0.5).best(&g, &emb(&[0.95, 0.05, 0.1]));
        assert_eq!(m.person.map(|p| p.id.as_str()), Some("a"));
    }

    #[test]
    fn below_threshold_is_unknown_not_nearest() {
        let g = gallery();
        let m = Matcher::new(0.5).best(&g, &emb(&[0.3, 0.2, 0.9]));
        assert!(m.person.is_none());
        let s = m.similarity.expect("gallery not empty");
        assert!(s > 0.0 && s < 0.5, "{s}");
    }

    #[test]
    fn empty_gallery_knows_nobody() {
        let empty = Gallery::empty();
        let m = Matcher::new(0.5).best(&empty, &emb(&[1.0]));
        assert_eq!(m, Match { person: None, similarity: None });
    }
}
