//! `cmd/consent`: a guardian's consent recorded from the console, exactly as
//! `dolbom consent add` records it (same checks, same audit line, with the staff id).

use jiff::civil::Date;
use jiff::Timestamp;
use tracing::info;

use dolbom_contract::ConsentCommand;
use dolbom_face::gallery::{printable, Action, Consent, Entry, GalleryError, Purpose};

use super::{today, Apply, Outcome, Refusal, StaffDesk};
use crate::alerts::AlertContext;

/// The consent a command describes, or the field that is wrong (by its name there).
fn consent_of(cmd: &ConsentCommand, now: Timestamp, today: Date) -> Result<Consent, String> {
    let date = |field: &str, text: &str| {
        text.parse::<Date>().map_err(|_| format!("{field}: `{text}` is not a date YYYY-MM-DD / 날짜 형식이 아닙니다"))
    };
    let mut purposes = cmd
        .purposes
        .iter()
        .map(|p| p.parse::<Purpose>().map_err(|e| bad_field("purposes", e, "동의 목적이 올바르지 않습니다")))
        .collect::<Result<Vec<_>, _>>()?;
    purposes.sort();
    purposes.dedup();
    Ok(Consent {
        person: cmd.person.clone(),
        guardian: cmd.guardian.clone(),
        relation: cmd.relation.clone(),
        given_on: match &cmd.given_on {
            Some(d) => date("given_on", d)?,
            None => today,
        },
        verified_how: cmd.verified.clone(),
        purposes,
        retention_until: date("until", &cmd.until)?,
        recorded_at: now,
        recorded_by: cmd.by.clone(),
        ended: None,
        ended_at: None,
        ended_by: None,
        reason: None,
    })
}

/// A gallery error as staff read it, "English / Korean" as every answer: the CLI's flag names
/// become the command's field names, and `ko` says in Korean what did not happen.
pub(crate) fn field_error(e: &GalleryError, ko: &str) -> String {
    let en = e
        .to_string()
        .replace("--given-on", "given_on")
        .replace("--verified-how", "verified")
        .replace("--purpose", "purposes")
        .replace("--until", "until")
        .replace("--", "");
    format!("{en} / {ko}")
}

/// A field's own error, with its name, and a Korean half.
pub(crate) fn bad_field(field: &str, e: impl std::fmt::Display, ko: &str) -> String {
    format!("{field}: {e} / {ko}")
}

impl Apply for ConsentCommand {
    fn outside(&self, desk: &StaffDesk, _ctx: &AlertContext, now_ms: i64) -> Option<Outcome> {
        let now = Timestamp::from_millisecond(now_ms).unwrap_or_else(|_| Timestamp::now());
        let today = today(&desk.tz, now_ms);
        if let Err(e) = dolbom_face::gallery::validate_id(&self.person) {
            return Some(Outcome::Refused(bad_field("person", e, "아이 id가 올바르지 않습니다")));
        }
        let consent = match consent_of(self, now, today) {
            Ok(c) => c,
            Err(e) => return Some(Outcome::Refused(e)),
        };
        let entry = Entry {
            purposes: consent.purposes.clone(),
            until: Some(consent.retention_until.to_string()),
            ..Entry::new(Action::ConsentAdded, &self.person, &self.by)
        };
        let list = consent.purposes.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(",");
        let until = consent.retention_until;
        let saved = desk.gallery.update_then(
            |g| g.add_consent(consent, today).map_err(|e| Refusal(field_error(&e, "동의를 기록하지 않았습니다"))),
            |_| Ok(desk.audit.append(std::slice::from_ref(&entry), now)?),
        );
        Some(match saved {
            Ok(()) => {
                info!(target: "audit", person = %self.person, by = %self.by, purposes = %list, %until, "consent recorded by staff");
                let id = printable(&self.person);
                Outcome::Done(format!(
                    "consent recorded for {id}: {list}, kept until {until} / {id}의 동의를 기록했습니다: {list}, {until}까지 보관"
                ))
            }
            Err(Refusal(e)) => Outcome::Refused(e),
        })
    }
}
