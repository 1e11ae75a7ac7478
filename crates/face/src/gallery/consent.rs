//! Guardians' consents to the biometric processing of a child's face (Korea's PIPA: a separate,
//! verifiable consent of the legal guardian for a child under 14). One record per consent given,
//! kept in the gallery file beside the templates it allows, so both share its lock, its atomic
//! writes and its protection at rest.
//!
//! A consent is *in force* on a day when it has not ended and the day is on or before its
//! `retention_until`. It ends by withdrawal (staff record the guardian's word) or by expiry (the
//! kiosk, the day after `retention_until`); either way the record stays, and a child left with no
//! consent in force for `face-attendance` loses every face template at once (see
//! [`super::Gallery::withdraw_consent`] and [`super::Gallery::expire_consents`]).

use std::fmt;
use std::str::FromStr;

use jiff::civil::Date;
use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Serialize};

use super::{printable, validate_id, Erasure, Gallery, GalleryError, Role};

/// The longest retention a consent may ask for: a school year and then some, never "forever".
pub const MAX_RETENTION_YEARS: i16 = 3;
/// Longest free text (relation, how it was verified, a withdrawal's reason), in characters.
pub const MAX_TEXT_CHARS: usize = 200;

/// What a guardian consents to. Kept small on purpose: each one is a sentence on the paper form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Purpose {
    /// Enrolment photos turned into face templates, matched at the door for attendance.
    FaceAttendance,
    /// The kiosk may add templates from clear sightings as the child's face grows.
    TemplateRefresh,
}

impl Purpose {
    pub const ALL: [Purpose; 2] = [Purpose::FaceAttendance, Purpose::TemplateRefresh];

    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::FaceAttendance => "face-attendance",
            Purpose::TemplateRefresh => "template-refresh",
        }
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Purpose {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Purpose::ALL.into_iter().find(|p| p.as_str() == s).ok_or_else(|| {
            format!("`{s}` is not a purpose: use face-attendance or template-refresh / 목적은 face-attendance 또는 template-refresh")
        })
    }
}

/// How a consent ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ended {
    /// The guardian withdrew it (recorded by staff).
    Withdrawn,
    /// Its retention date passed (recorded by the kiosk).
    Expired,
}

impl fmt::Display for Ended {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ended::Withdrawn => "withdrawn",
            Ended::Expired => "expired",
        })
    }
}

/// One consent given by a guardian for one child.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Consent {
    /// The child's person id (the child need not be enrolled yet: consent comes first).
    pub person: String,
    /// The guardian who gave it, and how they are related to the child (free text, e.g. 어머니).
    pub guardian: String,
    pub relation: String,
    /// The day the guardian signed (in the site's time zone).
    #[serde(with = "as_text")]
    pub given_on: Date,
    /// How staff checked it was the guardian, e.g. "signed paper form, ID checked".
    pub verified_how: String,
    pub purposes: Vec<Purpose>,
    /// The last day the templates may be kept (in the site's time zone), e.g. the end of the
    /// school year.
    #[serde(with = "as_text")]
    pub retention_until: Date,
    #[serde(with = "as_text")]
    pub recorded_at: Timestamp,
    /// The staff id of whoever recorded it.
    pub recorded_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<Ended>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_text")]
    pub ended_at: Option<Timestamp>,
    /// The staff id that recorded a withdrawal, or `kiosk` for an expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_by: Option<String>,
    /// What the guardian said when withdrawing, if staff wrote it down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConsentError {
    #[error("--{0}: {1}")]
    Field(&'static str, String),
    #[error(
        "--purpose: a consent must include face-attendance (template-refresh alone allows nothing) / \
         목적에 face-attendance가 있어야 합니다"
    )]
    NoFaceAttendance,
    #[error(
        "--given-on {given}: the consent cannot be given after today ({today}) / 동의일이 오늘({today})보다 늦습니다"
    )]
    GivenInFuture { given: Date, today: Date },
    #[error(
        "--until {until}: the retention end must be after today ({today}) and at most {MAX_RETENTION_YEARS} years \
         ahead ({latest}) / 보관 종료일은 오늘({today}) 이후, {MAX_RETENTION_YEARS}년 이내({latest})여야 합니다"
    )]
    BadRetention { until: Date, today: Date, latest: Date },
}

impl Consent {
    /// Whether it allows `purpose` on `today` (not ended, not past its retention).
    pub fn allows(&self, purpose: Purpose, today: Date) -> bool {
        self.in_force(today) && self.purposes.contains(&purpose)
    }

    pub fn in_force(&self, today: Date) -> bool {
        self.ended.is_none() && today <= self.retention_until
    }

    /// Checks a new record against the rules, `today` being the site's date.
    pub fn validate(&self, today: Date) -> Result<(), ConsentError> {
        validate_id(&self.person).map_err(|e| ConsentError::Field("person", e.to_string()))?;
        validate_id(&self.recorded_by).map_err(|e| ConsentError::Field("by", e.to_string()))?;
        super::validate_name(&self.guardian).map_err(|e| ConsentError::Field("guardian", e.to_string()))?;
        check_text("relation", &self.relation)?;
        check_text("verified-how", &self.verified_how)?;
        if !self.purposes.contains(&Purpose::FaceAttendance) {
            return Err(ConsentError::NoFaceAttendance);
        }
        if self.given_on > today {
            return Err(ConsentError::GivenInFuture { given: self.given_on, today });
        }
        let latest = today.saturating_add(MAX_RETENTION_YEARS.years());
        if self.retention_until <= today || self.retention_until > latest {
            return Err(ConsentError::BadRetention { until: self.retention_until, today, latest });
        }
        Ok(())
    }

    /// Ends it (a no-op on one already ended).
    pub fn end(&mut self, how: Ended, at: Timestamp, by: &str, reason: Option<&str>) {
        if self.ended.is_none() {
            self.ended = Some(how);
            self.ended_at = Some(at);
            self.ended_by = Some(by.to_string());
            self.reason = reason.map(str::to_string);
        }
    }
}

impl Gallery {
    /// The consents given for `person`, oldest first.
    pub fn consents_of<'a>(&'a self, person: &'a str) -> impl Iterator<Item = &'a Consent> + 'a {
        self.consents.iter().filter(move |c| c.person == person)
    }

    /// Whether some consent for `person` allows `purpose` on `today`.
    pub fn consented(&self, person: &str, purpose: Purpose, today: Date) -> bool {
        self.consents_of(person).any(|c| c.allows(purpose, today))
    }

    /// Children holding face templates without a consent to face-attendance in force: enrolled
    /// before consents were recorded (expiry and withdrawal erase the others). Staff record the
    /// consent or withdraw; the kiosk and `dolbom doctor` name them until then.
    pub fn faces_without_consent(&self, today: Date) -> Vec<&str> {
        self.people
            .iter()
            .filter(|p| p.role == Role::Child && p.templates().next().is_some())
            .filter(|p| !self.consented(&p.id, Purpose::FaceAttendance, today))
            .map(|p| p.id.as_str())
            .collect()
    }

    /// Records a consent after checking it (`today` in the site's time zone).
    pub fn add_consent(&mut self, consent: Consent, today: Date) -> Result<(), GalleryError> {
        consent.validate(today)?;
        self.consents.push(consent);
        Ok(())
    }

    /// Refuses to enrol a child's face (by the role given, or the one on record) without a
    /// consent to face-attendance in force; adults consent for themselves.
    pub fn check_face_consent(&self, person: &str, role: Role, today: Date) -> Result<(), GalleryError> {
        let child = role == Role::Child || self.get(person).is_some_and(|p| p.role == Role::Child);
        if !child || self.consented(person, Purpose::FaceAttendance, today) {
            return Ok(());
        }
        let last = self.consents_of(person).filter(|c| c.purposes.contains(&Purpose::FaceAttendance)).last();
        let why = match last {
            None => "none is recorded / 기록된 동의가 없습니다".to_string(),
            Some(c) => match c.ended {
                Some(how) => format!("the last one was {how} / 마지막 동의가 종료되었습니다 ({how})"),
                None => format!(
                    "the last one ended with its retention on {} / 마지막 동의의 보관 기간이 {}에 끝났습니다",
                    c.retention_until, c.retention_until
                ),
            },
        };
        Err(GalleryError::NoConsent { id: printable(person), why })
    }

    /// Whether the kiosk may add templates from sightings of `person`: a child's consent must
    /// include template-refresh; adults as always.
    pub fn refresh_consented(&self, person: &str, today: Date) -> bool {
        match self.get(person) {
            Some(p) if p.role == Role::Child => self.consented(person, Purpose::TemplateRefresh, today),
            Some(_) => true,
            None => false,
        }
    }

    /// A guardian's withdrawal: ends every consent for `person` in force and destroys the
    /// person's face templates (enrolled and refreshed) at once. The person stays, with their
    /// name, tags and PIN: a check-in without a face still works.
    pub fn withdraw_consent(
        &mut self,
        person: &str,
        at: Timestamp,
        by: &str,
        reason: Option<&str>,
        today: Date,
    ) -> Result<Erasure, GalleryError> {
        validate_id(by).map_err(|e| ConsentError::Field("by", e.to_string()))?;
        if let Some(r) = reason {
            check_text("reason", r)?;
        }
        let mut ended = 0;
        for c in self.consents.iter_mut().filter(|c| c.person == person && c.in_force(today)) {
            c.end(Ended::Withdrawn, at, by, reason);
            ended += 1;
        }
        let templates = self.erase_templates(person);
        if ended == 0 && templates == 0 {
            return Err(GalleryError::NothingToWithdraw(printable(person)));
        }
        Ok(Erasure { person: person.to_string(), consents_ended: ended, templates })
    }

    /// Ends every consent whose retention is over on `today`; a person left without a consent
    /// to face-attendance in force loses their face templates. What was done, per person.
    pub fn expire_consents(&mut self, today: Date, at: Timestamp) -> Vec<Erasure> {
        let mut out: Vec<Erasure> = Vec::new();
        for c in self.consents.iter_mut().filter(|c| c.ended.is_none() && today > c.retention_until) {
            c.end(Ended::Expired, at, "kiosk", None);
            match out.iter_mut().find(|e| e.person == c.person) {
                Some(e) => e.consents_ended += 1,
                None => out.push(Erasure { person: c.person.clone(), consents_ended: 1, templates: 0 }),
            }
        }
        for e in &mut out {
            // A renewed consent (next school year) keeps the templates; templates the kiosk took
            // from sightings go with the last consent to template-refresh.
            if !self.consented(&e.person, Purpose::FaceAttendance, today) {
                e.templates = self.erase_templates(&e.person);
            } else if !self.refresh_consented(&e.person, today) {
                e.templates = self.erase_refreshed(&e.person);
            }
        }
        out
    }

    /// Destroys the templates the kiosk took from a person's sightings; how many there were.
    fn erase_refreshed(&mut self, person: &str) -> usize {
        self.people.iter_mut().find(|p| p.id == person).map_or(0, |p| std::mem::take(&mut p.refreshed).len())
    }

    /// Destroys a person's face templates, enrolled and refreshed; how many there were.
    pub fn erase_templates(&mut self, person: &str) -> usize {
        self.people.iter_mut().find(|p| p.id == person).map_or(0, |p| {
            let n = p.embeddings.len() + p.refreshed.len();
            p.embeddings = Vec::new();
            p.refreshed = Vec::new();
            n
        })
    }
}

/// Free text staff type: required, bounded, and safe to print (see [`super::validate_name`]).
pub fn check_text(key: &'static str, text: &str) -> Result<(), ConsentError> {
    let bad = |why: &str| Err(ConsentError::Field(key, format!("{:?} {why}", printable(text))));
    if text.trim().is_empty() {
        return bad("is empty / 비어 있습니다");
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return bad("is longer than 200 characters / 200자를 넘습니다");
    }
    if text.chars().any(dolbom_contract::text::is_hidden) {
        return bad("contains control characters or invisible marks / 제어 문자나 보이지 않는 문자가 있습니다");
    }
    Ok(())
}

/// Dates and timestamps as their ISO 8601 text ("2027-02-28", "2026-12-02T05:00:00Z").
mod as_text {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<T: Display, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(value)
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        D: Deserializer<'de>,
    {
        String::deserialize(d)?.parse().map_err(D::Error::custom)
    }
}

mod opt_text {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<T: Display, S: Serializer>(value: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => s.collect_str(v),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<Option<T>, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        D: Deserializer<'de>,
    {
        Option::<String>::deserialize(d)?.map(|s| s.parse().map_err(D::Error::custom)).transpose()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn date(s: &str) -> Date {
        s.parse().expect("date")
    }

    pub fn consent(person: &str, until: &str, purposes: &[Purpose]) -> Consent {
        Consent {
            person: person.into(),
            guardian: "김영희".into(),
            relation: "어머니 / mother".into(),
            given_on: date("2026-03-02"),
            verified_how: "signed paper form, ID checked".into(),
            purposes: purposes.to_vec(),
            retention_until: date(until),
            recorded_at: "2026-03-02T01:00:00Z".parse().expect("ts"),
            recorded_by: "kim-teacher".into(),
            ended: None,
            ended_at: None,
            ended_by: None,
            reason: None,
        }
    }

    #[test]
    fn rules_name_the_field() {
        let today = date("2026-03-03");
        let ok = consent("minji", "2027-02-28", &[Purpose::FaceAttendance]);
        assert_eq!(ok.validate(today), Ok(()));
        let cases: Vec<(Consent, &str)> = vec![
            (Consent { guardian: " ".into(), ..ok.clone() }, "--guardian"),
            (Consent { relation: "".into(), ..ok.clone() }, "--relation"),
            (Consent { verified_how: "a\nb".into(), ..ok.clone() }, "--verified-how"),
            (Consent { recorded_by: "kim teacher".into(), ..ok.clone() }, "--by"),
            (Consent { person: "../x".into(), ..ok.clone() }, "--person"),
            (Consent { purposes: vec![Purpose::TemplateRefresh], ..ok.clone() }, "--purpose"),
            (Consent { given_on: date("2026-03-04"), ..ok.clone() }, "--given-on"),
            (Consent { retention_until: today, ..ok.clone() }, "--until"),
            (Consent { retention_until: date("2029-03-04"), ..ok.clone() }, "--until"),
        ];
        for (c, key) in cases {
            let e = c.validate(today).expect_err(key).to_string();
            assert!(e.starts_with(key), "{key}: {e}");
        }
        assert_eq!(Consent { retention_until: date("2029-03-03"), ..ok }.validate(today), Ok(()));
    }

    #[test]
    fn in_force_through_its_last_day_and_until_ended() {
        let mut c = consent("minji", "2027-02-28", &[Purpose::FaceAttendance]);
        assert!(c.allows(Purpose::FaceAttendance, date("2027-02-28")));
        assert!(!c.allows(Purpose::FaceAttendance, date("2027-03-01")));
        assert!(!c.allows(Purpose::TemplateRefresh, date("2026-06-01")));
        c.end(Ended::Withdrawn, "2026-06-01T00:00:00Z".parse().expect("ts"), "kim", Some("moving"));
        c.end(Ended::Expired, "2027-03-01T00:00:00Z".parse().expect("ts"), "kiosk", None);
        assert_eq!((c.ended, c.ended_by.as_deref()), (Some(Ended::Withdrawn), Some("kim")), "the first end stays");
        assert!(!c.in_force(date("2026-06-02")));
    }

    #[test]
    fn a_renewal_without_template_refresh_keeps_the_enrolled_templates_and_drops_the_refreshed() {
        let mut g = Gallery::empty();
        let e = crate::Embedding::normalized(vec![0.6, 0.8]).expect("non-zero");
        g.enroll("minji", Role::Child, "minji", vec![e.clone()], "sface", 1).expect("enrol");
        g.people[0].refreshed.push(crate::gallery::Refreshed {
            embedding: e,
            added_at: 2,
            similarity: 0.9,
            margin: 0.3,
        });
        let both = [Purpose::FaceAttendance, Purpose::TemplateRefresh];
        g.add_consent(consent("minji", "2027-02-28", &both), date("2026-06-01")).expect("first year");
        g.add_consent(consent("minji", "2028-02-29", &[Purpose::FaceAttendance]), date("2027-02-01")).expect("renewal");
        let erased = g.expire_consents(date("2027-03-01"), "2027-03-01T00:00:00Z".parse().expect("ts"));
        assert_eq!((erased[0].consents_ended, erased[0].templates), (1, 1));
        assert_eq!((g.people[0].embeddings.len(), g.people[0].refreshed.len()), (1, 0));
    }

    #[test]
    fn children_with_faces_and_no_consent_in_force_are_named() {
        let mut g = Gallery::empty();
        let e = crate::Embedding::normalized(vec![0.6, 0.8]).expect("non-zero");
        for (id, role) in [("minji", Role::Child), ("jiwoo", Role::Child), ("dad", Role::Guardian)] {
            g.enroll(id, role, id, vec![e.clone()], "sface", 1).expect("enrol");
        }
        g.add_consent(consent("minji", "2027-02-28", &[Purpose::FaceAttendance]), date("2026-06-01")).expect("add");
        assert_eq!(g.faces_without_consent(date("2026-06-01")), ["jiwoo"]);
        assert_eq!(g.faces_without_consent(date("2027-03-01")), ["minji", "jiwoo"], "past its retention");
    }

    #[test]
    fn dates_are_stored_as_iso_text() {
        let c = consent("minji", "2027-02-28", &Purpose::ALL);
        let json = serde_json::to_value(&c).expect("json");
        assert_eq!(json["retention_until"], "2027-02-28");
        assert_eq!(json["recorded_at"], "2026-03-02T01:00:00Z");
        assert_eq!(json["purposes"], serde_json::json!(["face-attendance", "template-refresh"]));
        assert!(json.get("ended").is_none());
        assert_eq!(serde_json::from_value::<Consent>(json).expect("back"), c);
        assert_eq!("template-refresh".parse::<Purpose>(), Ok(Purpose::TemplateRefresh));
        assert!("marketing".parse::<Purpose>().is_err());
    }

    fn emb(v: &[f32]) -> crate::Embedding {
        crate::Embedding::normalized(v.to_vec()).expect("non-zero")
    }

    fn gallery_with_minji() -> Gallery {
        let mut g = Gallery::empty();
        g.enroll("minji", Role::Child, "김민지", vec![emb(&[1.0, 0.0]), emb(&[0.8, 0.2])], "m", 1).expect("enrol");
        g.add_tag("minji", "62E3086CED".parse().expect("card"), None, 1).expect("tag");
        g
    }

    #[test]
    fn a_child_needs_face_attendance_in_force_and_adults_do_not() {
        let today = date("2026-03-03");
        let mut g = Gallery::empty();
        let refused = g.check_face_consent("minji", Role::Child, today).expect_err("no consent");
        assert!(refused.to_string().contains("dolbom consent add minji"), "{refused}");
        assert!(refused.to_string().contains("none is recorded"), "{refused}");
        assert_eq!(g.check_face_consent("kim", Role::Staff, today), Ok(()));
        g.add_consent(consent("minji", "2027-02-28", &[Purpose::FaceAttendance]), today).expect("add");
        assert_eq!(g.check_face_consent("minji", Role::Child, today), Ok(()));
        assert!(g.check_face_consent("minji", Role::Child, date("2027-03-01")).is_err(), "past its retention");
        // Enrolled as a child: re-enrolling under an adult role does not dodge the rule.
        g.enroll("minji", Role::Child, "김민지", vec![emb(&[1.0])], "m", 1).expect("enrol");
        let e = g.check_face_consent("minji", Role::Guardian, date("2027-03-01")).expect_err("still a child");
        assert!(e.to_string().contains("retention on 2027-02-28"), "{e}");
        assert!(!g.refresh_consented("minji", today), "template-refresh was not given");
        g.add_consent(consent("minji", "2027-02-28", &Purpose::ALL), today).expect("add");
        assert!(g.refresh_consented("minji", today));
    }

    #[test]
    fn withdrawal_destroys_the_templates_and_keeps_the_person_and_their_tag() {
        let today = date("2026-03-03");
        let mut g = gallery_with_minji();
        g.add_consent(consent("minji", "2027-02-28", &Purpose::ALL), today).expect("add");
        g.refresh(
            "minji",
            crate::gallery::Refreshed {
                embedding: emb(&[0.9, 0.1]),
                added_at: 1_000_000,
                similarity: 0.7,
                margin: 0.4,
            },
            &Default::default(),
        )
        .expect("refresh");
        let at: Timestamp = "2026-06-01T02:00:00Z".parse().expect("ts");
        let e = g.withdraw_consent("minji", at, "kim-teacher", Some("moving away"), today).expect("withdraw");
        assert_eq!(e, Erasure { person: "minji".into(), consents_ended: 1, templates: 3 });
        let p = g.get("minji").expect("kept");
        assert_eq!((p.embeddings.len(), p.refreshed.len(), p.tags.len()), (0, 0, 1));
        let c = &g.consents[0];
        assert_eq!(
            (c.ended, c.ended_by.as_deref(), c.reason.as_deref()),
            (Some(Ended::Withdrawn), Some("kim-teacher"), Some("moving away"))
        );
        assert!(g.check_face_consent("minji", Role::Child, today).is_err());
        assert_eq!(
            g.withdraw_consent("minji", at, "kim-teacher", None, today),
            Err(GalleryError::NothingToWithdraw("minji".into()))
        );
    }

    #[test]
    fn expiry_ends_consents_past_retention_and_erases_unless_renewed() {
        let mut g = gallery_with_minji();
        g.enroll("jun", Role::Child, "박준", vec![emb(&[0.0, 1.0])], "m", 1).expect("enrol");
        g.consents.push(consent("minji", "2027-02-28", &[Purpose::FaceAttendance]));
        g.consents.push(consent("jun", "2027-02-28", &[Purpose::FaceAttendance]));
        g.consents.push(consent("jun", "2028-02-29", &[Purpose::FaceAttendance]));
        let at: Timestamp = "2027-02-28T16:00:00Z".parse().expect("ts");
        assert_eq!(g.expire_consents(date("2027-02-28"), at), Vec::new(), "in force through its last day");
        let done = g.expire_consents(date("2027-03-01"), at);
        assert_eq!(
            done,
            [
                Erasure { person: "minji".into(), consents_ended: 1, templates: 2 },
                Erasure { person: "jun".into(), consents_ended: 1, templates: 0 },
            ]
        );
        assert_eq!(g.get("jun").expect("jun").embeddings.len(), 1, "renewed for next year: kept");
        assert_eq!(g.consents[0].ended_by.as_deref(), Some("kiosk"));
        assert_eq!(g.expire_consents(date("2027-03-02"), at), Vec::new(), "nothing twice");
    }
}
