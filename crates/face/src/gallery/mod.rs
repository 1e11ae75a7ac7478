//! The enrolled people: who they are and what their faces embed to. No face image is kept.

pub mod audit;
pub mod consent;
pub mod credentials;
pub mod key;
pub mod matcher;
pub mod sealed;
pub mod store;

use serde::{Deserialize, Serialize};

use crate::Embedding;
pub use dolbom_contract::Role;

pub use audit::{Action, AuditError, AuditLog, Entry};
pub use consent::{Consent, ConsentError, Ended, Purpose};
pub use credentials::{CardId, NewPerson, Pepper, Pin, PEPPER_MIN_LEN, PIN_DIGITS};
pub use key::{GalleryKey, KeyError, KeyId};
pub use matcher::{Match, Matcher};
pub use store::{GalleryStore, Rekeyed, StoreError};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Person {
    pub id: String,
    pub role: Role,
    pub name: String,
    /// One embedding per enrolled photo.
    pub embeddings: Vec<Embedding>,
    /// Seconds since the Unix epoch of the last enrolment.
    pub enrolled_at: u64,
    /// Enrolled people confirmed to look like this one (siblings, twins): a match between them
    /// needs the larger `face.matcher.lookalike_margin` and more votes at the door. Kept on both.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lookalikes: Vec<String>,
    /// Templates the kiosk added from sightings beyond doubt, as the face grows (see
    /// [`Gallery::refresh`]); kept apart from the enrolled ones so they can be reverted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refreshed: Vec<Refreshed>,
    /// 125 kHz tags that check this person in (see [`credentials`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<CardId>,
    /// The PIN's hash (hex), salted with [`Gallery::pin_salt`]; never the PIN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<String>,
}

/// A template taken from a sighting: what, when, and how sure the kiosk was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Refreshed {
    pub embedding: Embedding,
    /// Seconds since the Unix epoch.
    pub added_at: u64,
    /// The sighting's similarity to the person, and its lead over the runner-up.
    pub similarity: f32,
    pub margin: f32,
}

impl Person {
    /// Every template the person is matched against: enrolled, then refreshed.
    pub fn templates(&self) -> impl Iterator<Item = &Embedding> {
        self.embeddings.iter().chain(self.refreshed.iter().map(|r| &r.embedding))
    }
}

/// Bounds on templates taken from sightings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RefreshPolicy {
    /// At most this many refreshed templates per person, and never more than the enrolled ones:
    /// sightings may follow a face as it grows, not replace its enrolment.
    pub max_templates: usize,
    /// At most one new template per person in this many seconds.
    pub min_interval_secs: u64,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        Self { max_templates: 3, min_interval_secs: 7 * 86_400 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gallery {
    /// The embedder that produced every embedding here (see `FaceEmbedder::model_id`).
    pub embedder: Option<String>,
    pub people: Vec<Person>,
    /// The salt of every PIN hash here (hex), made when the first PIN is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_salt: Option<String>,
    /// Guardians' consents, in the order recorded; ended ones are kept (see [`consent`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consents: Vec<Consent>,
}

/// Templates destroyed for one person, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erasure {
    pub person: String,
    /// Consents this change ended.
    pub consents_ended: usize,
    /// Enrolled and refreshed templates destroyed.
    pub templates: usize,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum GalleryError {
    #[error("no person with id `{0}` is enrolled")]
    UnknownPerson(String),
    #[error("person id `{0}` is not valid: use 1 to 64 letters, digits, '-', '_' or '.'")]
    BadId(String),
    #[error("display name {0} is not valid: {1} / 이름이 올바르지 않음")]
    BadName(String, &'static str),
    #[error("card id `{0}` is not valid: use the 10 hex characters the reader sends, e.g. 62E3086CED / 카드 번호가 올바르지 않음: 리더가 보내는 16진수 10자리")]
    BadCardId(String),
    #[error("card {card} is already enrolled for `{owner}`; remove it first with `dolbom tag remove {card}` / 카드 {card}: 이미 `{owner}`에게 등록되어 있습니다")]
    TagInUse { card: String, owner: String },
    #[error("card {0} is not enrolled for anyone / 카드 {0}: 등록되어 있지 않습니다")]
    UnknownTag(String),
    #[error("a PIN is 6 to 8 digits (shorter ones are guessed too easily) / PIN은 숫자 6~8자리입니다 (더 짧으면 쉽게 추측됩니다)")]
    BadPin,
    #[error("the PIN pepper (`pin.pepper_file`) is shorter than 32 characters; make one with `openssl rand -hex 32` / PIN 페퍼(`pin.pepper_file`)가 32자보다 짧습니다")]
    ShortPepper,
    #[error("this PIN is already used by another person; choose another / 다른 사람이 이미 쓰는 PIN입니다. 다른 PIN을 고르세요")]
    PinInUse,
    #[error("`{0}` is not enrolled yet: give --role and --name to enrol them / `{0}`는 아직 등록되지 않았습니다: --role과 --name을 주세요")]
    NeedsRoleAndName(String),
    #[error("the system's random number source failed; nothing was changed / 시스템 난수 생성 실패: 아무것도 바꾸지 않았습니다")]
    NoRandomness,
    #[error(
        "`{id}` is a child: a face is enrolled only with a guardian's consent to face-attendance in force, and \
         {why}. Record the consent first:\n  dolbom consent add {id} --guardian NAME --relation RELATION \
         --given-on YYYY-MM-DD --verified-how \"signed paper form, ID checked\" --purpose face-attendance \
         --until YYYY-MM-DD --by STAFF_ID --config FILE\n\
         아동 `{id}`: 보호자의 얼굴 출결 동의(face-attendance)가 유효해야 얼굴을 등록할 수 있습니다. 먼저 \
         `dolbom consent add`로 동의를 기록하세요. (A family that says no can use a tag or a PIN: docs/tag.md / \
         동의하지 않는 가정은 태그나 PIN을 쓸 수 있습니다)"
    )]
    NoConsent { id: String, why: String },
    #[error("no consent for `{0}` is in force and they have no face template: nothing to withdraw / `{0}`에 대한 유효한 동의도, 얼굴 템플릿도 없습니다")]
    NothingToWithdraw(String),
    #[error(transparent)]
    Consent(#[from] ConsentError),
    #[error("this gallery was enrolled with embedder `{gallery}` but the config uses `{config}`; re-enrol everyone or switch the embedder back")]
    EmbedderMismatch { gallery: String, config: String },
}

impl Gallery {
    pub fn empty() -> Self {
        Self { embedder: None, people: Vec::new(), pin_salt: None, consents: Vec::new() }
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
        validate_name(name)?;
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
                lookalikes: Vec::new(),
                refreshed: Vec::new(),
                tags: Vec::new(),
                pin: None,
            }),
        }
        Ok(())
    }

    pub fn remove(&mut self, id: &str) -> Result<Person, GalleryError> {
        let pos =
            self.people.iter().position(|p| p.id == id).ok_or_else(|| GalleryError::UnknownPerson(id.to_string()))?;
        for p in &mut self.people {
            p.lookalikes.retain(|l| l != id);
        }
        Ok(self.people.remove(pos))
    }

    /// Adds a template from a sighting, within `policy`: false (and nothing changed) when the
    /// person had one too recently. When full, the oldest refreshed template makes room; the
    /// enrolled ones are never touched.
    pub fn refresh(&mut self, id: &str, template: Refreshed, policy: &RefreshPolicy) -> Result<bool, GalleryError> {
        if self.get(id).is_none() {
            return Err(GalleryError::UnknownPerson(id.to_string()));
        }
        if !self.refresh_due(id, template.added_at, policy) {
            return Ok(false);
        }
        let p =
            self.people.iter_mut().find(|p| p.id == id).ok_or_else(|| GalleryError::UnknownPerson(id.to_string()))?;
        let room = policy.max_templates.min(p.embeddings.len());
        while p.refreshed.len() >= room {
            let oldest = p.refreshed.iter().enumerate().min_by_key(|(_, r)| r.added_at).map_or(0, |(i, _)| i);
            p.refreshed.remove(oldest);
        }
        p.refreshed.push(template);
        Ok(true)
    }

    /// Whether a template from a sighting at `now` (seconds) would be taken for `id`: enrolled,
    /// with enrolled templates, and the last template (enrolled or taken) old enough.
    pub fn refresh_due(&self, id: &str, now: u64, policy: &RefreshPolicy) -> bool {
        self.get(id).is_some_and(|p| {
            let newest = p.refreshed.iter().map(|r| r.added_at).max().unwrap_or(0).max(p.enrolled_at);
            !p.embeddings.is_empty()
                && policy.max_templates > 0
                && now >= newest.saturating_add(policy.min_interval_secs)
        })
    }

    /// Drops every template taken from sightings of `id`; how many there were.
    pub fn revert_refresh(&mut self, id: &str) -> Result<usize, GalleryError> {
        let p =
            self.people.iter_mut().find(|p| p.id == id).ok_or_else(|| GalleryError::UnknownPerson(id.to_string()))?;
        Ok(std::mem::take(&mut p.refreshed).len())
    }

    /// Marks two enrolled people as look-alikes of each other (both must be enrolled).
    pub fn mark_lookalikes(&mut self, a: &str, b: &str) -> Result<(), GalleryError> {
        for (x, y) in [(a, b), (b, a)] {
            let p =
                self.people.iter_mut().find(|p| p.id == x).ok_or_else(|| GalleryError::UnknownPerson(x.to_string()))?;
            if x != y && !p.lookalikes.iter().any(|l| l == y) {
                p.lookalikes.push(y.to_string());
            }
        }
        Ok(())
    }
}

/// Ids end up in MQTT topics and payloads, file names and log lines: the contract's rule.
pub fn validate_id(id: &str) -> Result<(), GalleryError> {
    dolbom_contract::validate_id(id).map_err(|e| GalleryError::BadId(e.0))
}

/// Longest display name, in characters: a full Korean or foreign name with room to spare.
pub const MAX_NAME_CHARS: usize = 100;

/// Display names are printed on terminals, in logs and on staff screens: no control characters
/// (a newline forges a second line, an escape sequence rewrites the terminal) and no invisible
/// direction or zero-width marks that make one name look like another.
pub fn validate_name(name: &str) -> Result<(), GalleryError> {
    let bad = |why| Err(GalleryError::BadName(format!("{:?}", printable(name)), why));
    if name.trim().is_empty() {
        return bad("it is empty");
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return bad("it is longer than 100 characters");
    }
    if name.chars().any(dolbom_contract::text::is_hidden) {
        return bad("it contains control characters (newlines, tabs, escape codes) or invisible marks");
    }
    Ok(())
}

/// Stored text made safe to print on a terminal: control characters and invisible marks are
/// shown escaped (`\n`, `\u{1b}`), everything else as is. For names enrolled before names were
/// checked, and anything else read back from storage.
pub fn printable(text: &str) -> String {
    dolbom_contract::text::visible(text).into_owned()
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

    fn sighting(at: u64) -> Refreshed {
        Refreshed { embedding: emb(&[0.9, 0.1]), added_at: at, similarity: 0.7, margin: 0.4 }
    }

    /// Templates from sightings: rate-limited, never more than the enrolled ones (nor the
    /// policy's cap), the oldest replaced, the enrolled ones never touched, all revertible.
    #[test]
    fn refreshed_templates_are_bounded_rate_limited_and_revertible() {
        let policy = RefreshPolicy { max_templates: 3, min_interval_secs: 100 };
        let mut g = Gallery::empty();
        g.enroll("minji", Role::Child, "김민지", vec![emb(&[1.0, 0.0]), emb(&[0.8, 0.2])], "m", 1000).expect("enrol");
        assert!(!g.refresh("minji", sighting(1050), &policy).expect("known"), "too soon after enrolment");
        assert!(g.refresh("minji", sighting(1100), &policy).expect("known"));
        assert!(!g.refresh("minji", sighting(1150), &policy).expect("known"), "too soon after the last one");
        assert!(g.refresh("minji", sighting(1200), &policy).expect("known"));
        assert!(g.refresh("minji", sighting(1300), &policy).expect("known"));
        let p = g.get("minji").expect("present");
        assert_eq!(p.embeddings.len(), 2, "enrolled templates untouched");
        let kept: Vec<u64> = p.refreshed.iter().map(|r| r.added_at).collect();
        assert_eq!(kept, [1200, 1300], "no more than the enrolled ones; the oldest made room");
        assert_eq!(p.templates().count(), 4);
        assert_eq!(g.revert_refresh("minji"), Ok(2));
        assert_eq!(g.get("minji").expect("present").templates().count(), 2);
        assert_eq!(g.refresh("nobody", sighting(5000), &policy), Err(GalleryError::UnknownPerson("nobody".into())));
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
    fn names_with_control_or_invisible_characters_are_refused_and_printed_escaped() {
        for ok in ["김민지", "Kim Min-ji", "O'Brien, Seán", "이 름", &"가".repeat(100)] {
            assert_eq!(validate_name(ok), Ok(()), "{ok}");
            assert_eq!(printable(ok), ok);
        }
        let bad = [
            "",
            "   ",
            "a\nb",
            "a\rb",
            "a\tb",
            "\u{1b}[2J",
            "x\u{7}",
            "x\u{0}",
            "x\u{85}",
            "abc\u{202e}fed",
            "a\u{200b}b",
            "\u{feff}x",
        ];
        for name in bad.iter().map(|s| s.to_string()).chain([("가".repeat(101))]) {
            let mut g = Gallery::empty();
            assert!(
                matches!(g.enroll("p", Role::Child, &name, vec![emb(&[1.0])], "m", 1), Err(GalleryError::BadName(..))),
                "{name:?}"
            );
            let shown = printable(&name);
            assert!(!shown.chars().any(dolbom_contract::text::is_hidden), "{shown:?}");
        }
        assert_eq!(printable("a\nb\u{1b}[2J"), "a\\nb\\u{1b}[2J");
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
