//! What identifies a person without a face: 125 kHz tags (card ids) and PINs. A person may have
//! tags and a PIN and no face template at all (a family that refuses face recognition).
//!
//! PINs are stored hashed: HMAC-SHA256 with a secret pepper (a key in a credential file, never in
//! the gallery), then PBKDF2-HMAC-SHA256 (ring, already in the build for TLS) with one random salt
//! per gallery. One salt, not one per person, because a PIN typed at the door must be found among
//! everyone's with one hash, not one per enrolled person; PINs are unique per gallery, so equal
//! hashes reveal nothing two people share. With 10^6 to 10^8 possible PINs, salt and rounds alone
//! would not keep PINs from someone holding the gallery file (one pass cracks them all): the
//! pepper does, as long as the gallery file and the pepper file are not both taken.

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;

use ring::rand::SecureRandom;
use serde::{Deserialize, Serialize};

use super::{validate_id, validate_name, Gallery, GalleryError, Person, Role};

/// A 125 kHz (EM4100) card id as an RDM6300 reader sends it: a version (customer) byte and the
/// 4-byte card number, written as 10 hex characters, upper case (`62E3086CED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CardId([u8; 5]);

impl CardId {
    pub fn from_bytes(bytes: [u8; 5]) -> Self {
        Self(bytes)
    }

    pub fn bytes(&self) -> &[u8; 5] {
        &self.0
    }

    /// The card number without the version byte: what many fobs have printed on them, in decimal.
    pub fn number(&self) -> u32 {
        u32::from_be_bytes([self.0[1], self.0[2], self.0[3], self.0[4]])
    }
}

impl fmt::Display for CardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02X}"))
    }
}

impl FromStr for CardId {
    type Err = GalleryError;
    /// Exactly 10 hex characters, either case.
    fn from_str(s: &str) -> Result<Self, GalleryError> {
        let bad = || GalleryError::BadCardId(s.chars().take(40).collect());
        if s.len() != 10 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let mut out = [0u8; 5];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(Self(out))
    }
}

impl TryFrom<String> for CardId {
    type Error = GalleryError;
    fn try_from(s: String) -> Result<Self, GalleryError> {
        s.parse()
    }
}

impl From<CardId> for String {
    fn from(c: CardId) -> String {
        c.to_string()
    }
}

/// How many digits a PIN has. At least 6: the kiosk allows about 240 wrong tries a day (see the
/// kiosk's `pin` limits), and with 50 people enrolled a 4-digit PIN (10^4) would be guessed in
/// under a day; 6 digits (10^6) take months, time enough for the lock counter to be noticed.
pub const PIN_DIGITS: std::ops::RangeInclusive<usize> = 6..=8;
/// The shortest pepper: 32 characters (e.g. `openssl rand -hex 32` gives 64).
pub const PEPPER_MIN_LEN: usize = 32;
/// PBKDF2 rounds: tens of milliseconds per PIN typed at the door on an ARM board, once per try.
const PIN_ROUNDS: u32 = 100_000;
const SALT_LEN: usize = 16;

/// The secret key every PIN is HMAC'd with before it is hashed (`pin.pepper_file`). Without it
/// no PIN can be set or checked; its `Debug` hides it.
pub struct Pepper(ring::hmac::Key);

impl fmt::Debug for Pepper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pepper(****)")
    }
}

impl Pepper {
    /// The pepper from the text of its file; refused when shorter than [`PEPPER_MIN_LEN`].
    pub fn new(secret: &str) -> Result<Self, GalleryError> {
        let secret = secret.trim();
        if secret.len() < PEPPER_MIN_LEN {
            return Err(GalleryError::ShortPepper);
        }
        Ok(Self(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes())))
    }
}

/// A PIN as typed: 6 to 8 ASCII digits. Never printed, never logged (its `Debug` hides it).
pub struct Pin(String);

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(****)")
    }
}

impl FromStr for Pin {
    type Err = GalleryError;
    fn from_str(s: &str) -> Result<Self, GalleryError> {
        let s = s.trim_end_matches(['\n', '\r']);
        if !PIN_DIGITS.contains(&s.len()) || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(GalleryError::BadPin);
        }
        Ok(Self(s.to_string()))
    }
}

fn hash_pin(pepper: &Pepper, salt: &[u8], pin: &Pin) -> [u8; 32] {
    let mut out = [0u8; 32];
    let rounds = NonZeroU32::new(PIN_ROUNDS).unwrap_or(NonZeroU32::MIN);
    let peppered = ring::hmac::sign(&pepper.0, pin.0.as_bytes());
    ring::pbkdf2::derive(ring::pbkdf2::PBKDF2_HMAC_SHA256, rounds, salt, peppered.as_ref(), &mut out);
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares without stopping at the first difference, so timing says nothing of how close a try was.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Who a new person is, when a tag or PIN is the first thing enrolled for them.
pub struct NewPerson<'a> {
    pub role: Role,
    pub name: &'a str,
}

impl Gallery {
    /// The person with this card, if any.
    pub fn by_tag(&self, card: &CardId) -> Option<&Person> {
        self.people.iter().find(|p| p.tags.contains(card))
    }

    /// The person with this PIN, if any (one hash, then a comparison with each stored PIN).
    pub fn by_pin(&self, pin: &Pin, pepper: &Pepper) -> Option<&Person> {
        let salt = self.pin_salt.as_deref()?;
        let hashed = hex(&hash_pin(pepper, salt.as_bytes(), pin));
        self.people.iter().find(|p| p.pin.as_deref().is_some_and(|h| same(h.as_bytes(), hashed.as_bytes())))
    }

    /// The person `id`, created without a face when `new` says who they are; role and name are
    /// updated when given for someone already enrolled.
    fn person_for_credentials(
        &mut self,
        id: &str,
        new: Option<NewPerson<'_>>,
        now: u64,
    ) -> Result<&mut Person, GalleryError> {
        validate_id(id)?;
        if let Some(n) = &new {
            validate_name(n.name)?;
        }
        let at = match self.people.iter().position(|p| p.id == id) {
            Some(at) => at,
            None => {
                let Some(n) = &new else { return Err(GalleryError::NeedsRoleAndName(id.to_string())) };
                self.people.push(Person {
                    id: id.to_string(),
                    role: n.role,
                    name: n.name.to_string(),
                    embeddings: Vec::new(),
                    enrolled_at: now,
                    lookalikes: Vec::new(),
                    refreshed: Vec::new(),
                    tags: Vec::new(),
                    pin: None,
                });
                self.people.len() - 1
            }
        };
        let p = &mut self.people[at];
        if let Some(n) = new {
            p.role = n.role;
            p.name = n.name.to_string();
        }
        Ok(p)
    }

    /// Gives `id` a card. A card belongs to one person, once: enrolling it again is refused.
    pub fn add_tag(
        &mut self,
        id: &str,
        card: CardId,
        new: Option<NewPerson<'_>>,
        now: u64,
    ) -> Result<(), GalleryError> {
        if let Some(owner) = self.by_tag(&card) {
            return Err(GalleryError::TagInUse { card: card.to_string(), owner: owner.id.clone() });
        }
        self.person_for_credentials(id, new, now)?.tags.push(card);
        Ok(())
    }

    /// Takes a card from whoever has it; returns their id.
    pub fn remove_tag(&mut self, card: &CardId) -> Result<String, GalleryError> {
        let p = self
            .people
            .iter_mut()
            .find(|p| p.tags.contains(card))
            .ok_or_else(|| GalleryError::UnknownTag(card.to_string()))?;
        p.tags.retain(|c| c != card);
        Ok(p.id.clone())
    }

    /// Sets (or replaces) `id`'s PIN. Refused when another person has the same PIN: a PIN alone
    /// says who is at the door. Which person has it is not said (it would tell their PIN).
    pub fn set_pin(
        &mut self,
        id: &str,
        pin: &Pin,
        pepper: &Pepper,
        new: Option<NewPerson<'_>>,
        now: u64,
    ) -> Result<(), GalleryError> {
        let salt = match &self.pin_salt {
            Some(s) => s.clone(),
            None => {
                let mut bytes = [0u8; SALT_LEN];
                ring::rand::SystemRandom::new().fill(&mut bytes).map_err(|_| GalleryError::NoRandomness)?;
                hex(&bytes)
            }
        };
        let hashed = hex(&hash_pin(pepper, salt.as_bytes(), pin));
        if self
            .people
            .iter()
            .any(|p| p.id != id && p.pin.as_deref().is_some_and(|h| same(h.as_bytes(), hashed.as_bytes())))
        {
            return Err(GalleryError::PinInUse);
        }
        self.person_for_credentials(id, new, now)?.pin = Some(hashed);
        self.pin_salt = Some(salt);
        Ok(())
    }

    /// Removes `id`'s PIN; false when they had none.
    pub fn clear_pin(&mut self, id: &str) -> Result<bool, GalleryError> {
        let p =
            self.people.iter_mut().find(|p| p.id == id).ok_or_else(|| GalleryError::UnknownPerson(id.to_string()))?;
        Ok(p.pin.take().is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pepper() -> Pepper {
        Pepper::new("0123456789abcdef0123456789abcdef").expect("pepper")
    }

    fn child(name: &str) -> Option<NewPerson<'_>> {
        Some(NewPerson { role: Role::Child, name })
    }

    #[test]
    fn card_ids_are_ten_hex_characters_shown_upper_case() {
        let c: CardId = "62e3086cEd".parse().expect("card");
        assert_eq!(c.to_string(), "62E3086CED");
        assert_eq!(c.bytes(), &[0x62, 0xE3, 0x08, 0x6C, 0xED]);
        for bad in ["", "62E3086CE", "62E3086CED0", "62E3086CEG", " 2E3086CED", "６2E3086CE"] {
            assert!(matches!(bad.parse::<CardId>(), Err(GalleryError::BadCardId(_))), "{bad:?}");
        }
        assert_eq!(serde_json::to_string(&c).expect("json"), "\"62E3086CED\"");
    }

    #[test]
    fn a_tag_only_person_and_a_card_enrolled_twice() {
        let mut g = Gallery::empty();
        let card: CardId = "0A00C3D2E1".parse().expect("card");
        assert_eq!(g.add_tag("jiwoo", card, None, 1), Err(GalleryError::NeedsRoleAndName("jiwoo".into())));
        g.add_tag("jiwoo", card, child("이지우"), 1).expect("add");
        let p = g.by_tag(&card).expect("found");
        assert_eq!((p.id.as_str(), p.embeddings.len()), ("jiwoo", 0), "no face template at all");
        assert_eq!(
            g.add_tag("jiwoo", card, None, 2),
            Err(GalleryError::TagInUse { card: "0A00C3D2E1".into(), owner: "jiwoo".into() })
        );
        assert!(matches!(g.add_tag("minji", card, child("김민지"), 2), Err(GalleryError::TagInUse { .. })));
        assert!(g.get("minji").is_none(), "nothing changed by a refusal");
        assert_eq!(g.remove_tag(&card), Ok("jiwoo".into()));
        assert_eq!(g.remove_tag(&card), Err(GalleryError::UnknownTag("0A00C3D2E1".into())));
    }

    #[test]
    fn pins_are_digits_hashed_unique_and_found() {
        for bad in ["123", "2580", "12345", "123456789", "12a456", "", "123 456", "١٢٣٤٥٦"] {
            assert!(matches!(bad.parse::<Pin>(), Err(GalleryError::BadPin)), "{bad:?}");
        }
        let pin: Pin = "258046\n".parse().expect("pin");
        assert_eq!(format!("{pin:?}"), "Pin(****)");
        let pepper = pepper();
        assert_eq!(format!("{pepper:?}"), "Pepper(****)");
        let mut g = Gallery::empty();
        g.set_pin("jiwoo", &pin, &pepper, child("이지우"), 1).expect("set");
        let stored = g.get("jiwoo").and_then(|p| p.pin.clone()).expect("stored");
        assert!(!stored.contains("258046") && stored.len() == 64, "hashed: {stored}");
        assert_eq!(g.by_pin(&pin, &pepper).map(|p| p.id.as_str()), Some("jiwoo"));
        assert!(g.by_pin(&"258047".parse().expect("pin"), &pepper).is_none());
        assert_eq!(g.set_pin("minji", &pin, &pepper, child("김민지"), 1), Err(GalleryError::PinInUse));
        assert!(g.get("minji").is_none());
        g.set_pin("jiwoo", &pin, &pepper, None, 2).expect("the same person may set the same PIN again");
        let json = serde_json::to_string(&g).expect("json");
        let back: Gallery = serde_json::from_str(&json).expect("back");
        assert_eq!(back.by_pin(&pin, &pepper).map(|p| p.id.as_str()), Some("jiwoo"), "found after a round trip");
        assert_eq!(g.clear_pin("jiwoo"), Ok(true));
        assert!(g.by_pin(&pin, &pepper).is_none());
    }

    /// The gallery file alone is not enough: the hash depends on the pepper, so trying every PIN
    /// against the stored hashes with the salt and without the pepper finds nothing.
    #[test]
    fn without_the_pepper_the_stored_hash_says_nothing() {
        assert_eq!(Pepper::new("short").map(|_| ()), Err(GalleryError::ShortPepper));
        let pin: Pin = "258046".parse().expect("pin");
        let mut g = Gallery::empty();
        g.set_pin("jiwoo", &pin, &pepper(), child("이지우"), 1).expect("set");
        let other = Pepper::new("another pepper, 32 characters long").expect("pepper");
        assert!(g.by_pin(&pin, &other).is_none(), "another pepper finds nobody");
        // What a thief with the file alone could compute: PBKDF2 of the PIN with the salt.
        let salt = g.pin_salt.clone().expect("salt");
        let mut unpeppered = [0u8; 32];
        let rounds = NonZeroU32::new(PIN_ROUNDS).expect("rounds");
        ring::pbkdf2::derive(ring::pbkdf2::PBKDF2_HMAC_SHA256, rounds, salt.as_bytes(), b"258046", &mut unpeppered);
        assert_ne!(g.get("jiwoo").and_then(|p| p.pin.clone()), Some(hex(&unpeppered)));
    }
}
