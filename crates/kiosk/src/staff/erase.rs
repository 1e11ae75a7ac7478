//! `cmd/erase`: a person's face templates destroyed from the console. A child's consents in
//! force are withdrawn with them, as `dolbom consent withdraw` does; an adult's templates are
//! simply removed. Tags, PIN and the person stay: a check-in without a face still works.

use jiff::Timestamp;
use tracing::info;

use dolbom_contract::{EraseCommand, Role};
use dolbom_face::gallery::{printable, Action, Ended, Entry, Erasure};

use super::consent::field_error;
use super::{today, Apply, Outcome, Refusal, StaffDesk};
use crate::alerts::AlertContext;

impl Apply for EraseCommand {
    fn outside(&self, desk: &StaffDesk, _ctx: &AlertContext, now_ms: i64) -> Option<Outcome> {
        let now = Timestamp::from_millisecond(now_ms).unwrap_or_else(|_| Timestamp::now());
        let today = today(&desk.tz, now_ms);
        let by = self.by.as_str();
        let erased = desk.gallery.update_then(
            |g| -> Result<Erasure, Refusal> {
                let child = match g.get(&self.person) {
                    Some(p) => p.role == Role::Child,
                    // A child not enrolled yet may still have a consent to withdraw.
                    None if g.consents_of(&self.person).next().is_some() => true,
                    None => {
                        return Err(Refusal(format!(
                            "no person `{}` on this kiosk / 이 키오스크에 등록되지 않은 사람입니다",
                            self.person
                        )))
                    }
                };
                if child {
                    g.withdraw_consent(&self.person, now, by, self.reason.as_deref(), today)
                        .map_err(|e| Refusal(field_error(&e, "동의를 철회하지 못했습니다")))
                } else {
                    Ok(Erasure {
                        person: self.person.clone(),
                        consents_ended: 0,
                        templates: g.erase_templates(&self.person),
                    })
                }
            },
            |e| {
                let mut lines = Vec::new();
                if e.consents_ended > 0 {
                    lines.push(Entry::new(Action::ConsentWithdrawn, &self.person, by));
                }
                lines.push(Entry {
                    cause: (e.consents_ended > 0).then_some(Ended::Withdrawn),
                    ..Entry::new(Action::TemplatesErased, &self.person, by).templates(e.templates)
                });
                Ok(desk.audit.append(&lines, now)?)
            },
        );
        Some(match erased {
            Ok(e) => {
                info!(target: "audit", person = %self.person, by, templates = e.templates, consents_ended = e.consents_ended, "face templates erased by staff");
                let (id, n, c) = (printable(&self.person), e.templates, e.consents_ended);
                Outcome::Done(if c > 0 {
                    format!(
                        "consent withdrawn for {id} ({c} ended): {n} face templates destroyed; tags and PIN stay / \
                         {id}의 동의 철회 ({c}건 종료): 얼굴 템플릿 {n}개 파기, 태그와 PIN은 남습니다"
                    )
                } else {
                    format!(
                        "{n} face templates of {id} destroyed; tags and PIN stay / {id}의 얼굴 템플릿 {n}개 파기, 태그와 \
                         PIN은 남습니다"
                    )
                })
            }
            Err(Refusal(e)) => Outcome::Refused(e),
        })
    }
}
