//! The enrolled people: who they are and what their faces embed to. No face image is kept.

pub mod matcher;
pub mod store;

use serde::{Deserialize, Serialize};

use crate::Embedding;
pub use dolbom_contract::Role;

pub use matcher::{Match, Matcher};
pub use store::{GalleryStore, StoreError};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Person {
    pub id: String,
    pub role: Role,
    pub name: String,
    /// One embedding per enrolled photo.
    pub embeddings: Vec<Embedding>,
    /// Seconds since the Unix epoch of the last enrolment.
    pub enrolled_at: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gallery {
    /// The embedder that produced every embedding here (see `FaceEmbedder::model_id`).
    pub embedder: Option<String>,
    pub people: Vec<Person>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum GalleryError {
    #[error("no person with id `{0}` is enrolled")]
    UnknownPerson(String),
    #[error("person id `{0}` is not valid: use 1 to 64 letters, digits, '-', '_' or '.'")]
    BadId(String),
    #[error("this gallery was enrolled with embedder `{gallery}` but the config uses `{config}`; re-enrol everyone or switch the embedder back")]
    EmbedderMismatch { gallery: String, config: String },
}

impl Gallery {
    pub fn empty() -> Self {
        Self { embedder: None, people: Vec::new() }
    }

    pub fn get(&self, id: &str) -> Option<&Person> {
        self.people.iter().find(|p| p.id == id)
    }

    /// Fails unless the gallery's embeddings came from `model_id` (an empty gallery fits any).
    pub fn check_embedder(&self, model_id: &str) -> Result<(), GalleryError> {
        match &self.embedder {
            Some(e) if e != model_id && !self.people.is_empty() => {
                Err(GalleryError::EmbedderMismatch { gallery: e.clone(), config: model_id.to_string() })
            }
            _ => Ok(()),
        }
    }

    /// Adds a person, or more photos of one already enrolled (then role and name are updated).
    pub fn enroll(
        &mut self,
        id: &str,
        role: Role,
        name: &str,
        embeddings: Vec<Embedding>,
        model_id: &str,
        now: u64,
    ) -> Result<(), GalleryError> {
        validate_id(id)?;
        self.check_embedder(model_id)?;
        self.embedder = Some(model_id.to_string());
        match self.people.iter_mut().find(|p| p.id == id) {
            Some(p) => {
                p.role = role;
                p.name = name.to_string();
                p.embeddings.extend(embeddings);
                p.enrolled_at = now;
            }
            None => self.people.push(Person {
                id: id.to_string(),
                role,
                name: name.to_string(),
                embeddings,
                enrolled_at: now,
            }),
        }
        Ok(())
    }

    pub fn remove(&mut self, id: &str) -> Result<Person, GalleryError> {
        let pos =
            self.people.iter().position(|p| p.id == id).ok_or_else(|| GalleryError::UnknownPerson(id.to_string()))?;
        Ok(self.people.remove(pos))
    }
}

/// Ids end up in MQTT topics and payloads, file names and log lines: the contract's rule.
pub fn validate_id(id: &str) -> Result<(), GalleryError> {
    dolbom_contract::validate_id(id).map_err(|e| GalleryError::BadId(e.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emb(v: &[f32]) -> Embedding {
        Embedding::normalized(v.to_vec()).expect("non-zero")
    }

    #[test]
    fn enroll_adds_then_extends() {
        let mut g = Gallery::empty();
        g.enroll("minji", Role::Child, "김민지", vec![emb(&[1.0, 0.0])], "m", 1).expect("enrol");
        g.enroll("minji", Role::Child, "Kim Minji", vec![emb(&[0.0, 1.0])], "m", 2).expect("enrol again");
        let p = g.get("minji").expect("present");
        assert_eq!(p.embeddings.len(), 2);
        assert_eq!(p.name, "Kim Minji");
        assert_eq!(g.people.len(), 1);
    }

    #[test]
    fn remove_unknown_is_an_error() {
        let mut g = Gallery::empty();
        assert_eq!(g.remove("nobody"), Err(GalleryError::UnknownPerson("nobody".into())));
    }

    #[test]
    fn ids_are_plain() {
        assert!(validate_id("child-001_a.b").is_ok());
        for bad in ["", "../etc", "a b", "김민지", ".hidden", &"x".repeat(65)] {
            assert!(validate_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn embedders_are_not_mixed() {
        let mut g = Gallery::empty();
        g.enroll("a", Role::Staff, "A", vec![emb(&[1.0])], "sface", 1).expect("enrol");
        assert!(matches!(
            g.enroll("b", Role::Staff, "B", vec![emb(&[1.0])], "arcface", 1),
            Err(GalleryError::EmbedderMismatch { .. })
        ));
    }
}
