//! `GET /enrol`: pick a child, record the guardian's consent, capture the face at the door,
//! or erase it; with what the roster says of the child and the kiosk's answer.

use axum::extract::State;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use dolbom_contract::{validate_id, Command, ConsentCommand, ConsentState, EnrollCommand, EraseCommand, Role};

use super::form::Form;
use super::{act, kiosk_picker, names, refuse, result_block, trouble};
use crate::center::attendance::children;
use crate::center::commands::request_id_of;
use crate::lang::{esc, Lang};
use crate::web::layout::{action_fields, page as layout};
use crate::web::{App, Staff};

/// How long the kiosk looks for the face; the action waits this long on top of the answer time.
pub(super) const CAPTURE_SECS: u32 = 20;

fn consent_words(c: ConsentState, l: Lang) -> &'static str {
    match c {
        ConsentState::InForce => l.t("동의 유효", "consent in force"),
        ConsentState::None => l.t("동의 없음", "no consent recorded"),
        ConsentState::Withdrawn => l.t("동의 철회됨", "consent withdrawn"),
        ConsentState::Expired => l.t("동의 만료됨", "consent expired"),
        ConsentState::NotNeeded => l.t("동의 필요 없음", "no consent needed"),
    }
}

fn consent_code(c: ConsentState) -> String {
    serde_json::to_value(c).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

pub async fn page(staff: Staff, State(app): State<App>, uri: Uri) -> Response {
    let q = Form::query(&uri);
    let rosters = match app.center.store.rosters() {
        Ok(r) => r,
        Err(e) => return trouble(&staff, e),
    };
    let l = staff.lang;
    let kids = children(&app.config, &rosters);
    let chosen = q.get("person").and_then(|p| kids.iter().find(|c| c.id == p));
    let options: String = kids
        .iter()
        .map(|c| {
            let sel = if chosen.is_some_and(|k| k.id == c.id) { " selected" } else { "" };
            format!("<option value=\"{}\"{sel}>{} ({})</option>", esc(&c.id), esc(&c.name), esc(&c.id))
        })
        .collect();
    let mut body = format!(
        "{}<form method=\"get\" action=\"/enrol\" id=\"pick-form\"><label>{} <select id=\"person\" name=\"person\">\
         {options}</select></label> <button type=\"submit\">{}</button></form>",
        result_block(&app, &staff, q.get("done")),
        l.t("아이", "Child"),
        l.t("고르기", "Choose"),
    );
    if let Some(c) = chosen {
        // Each form its own request id.
        let hidden =
            || format!("{}<input type=\"hidden\" name=\"person\" value=\"{}\">", action_fields(&staff), esc(&c.id));
        body.push_str(&format!(
            "<h2>{name}</h2><dl id=\"roster-state\" data-face=\"{face}\" data-consent=\"{cc}\"><dt>{fl}</dt><dd>{fw}</dd>\
             <dt>{cl}</dt><dd>{cw}</dd><dt>{kl}</dt><dd>{kiosks}</dd></dl>",
            name = esc(&c.name),
            face = c.face,
            cc = esc(&consent_code(c.consent)),
            fl = l.t("얼굴 등록", "Face enrolled"),
            fw = if c.face { l.t("예", "yes") } else { l.t("아니요", "no") },
            cl = l.t("보호자 동의", "Guardian's consent"),
            cw = consent_words(c.consent, l),
            kl = l.t("키오스크", "Kiosks"),
            kiosks = esc(&c.kiosks.join(", ")),
        ));
        body.push_str(&format!(
            "<section><h3>{}</h3><form method=\"post\" action=\"/enrol/consent\" id=\"consent-form\">{hidden}\
             <label>{} <input name=\"guardian\" required></label>\
             <label>{} <input name=\"relation\" required placeholder=\"{}\"></label>\
             <label>{} <input name=\"verified\" required placeholder=\"{}\"></label>\
             <label>{} <input type=\"date\" name=\"given_on\"></label>\
             <label>{} <input type=\"date\" name=\"until\" required></label>\
             <input type=\"hidden\" name=\"purposes\" value=\"face-attendance\">\
             <label><input type=\"checkbox\" name=\"purposes\" value=\"template-refresh\"> {}</label>\
             {}<button type=\"submit\">{}</button></form></section>",
            l.t("1. 보호자 동의 기록", "1. Record the guardian's consent"),
            l.t("보호자 이름", "Guardian's name"),
            l.t("관계", "Relation"),
            l.t("어머니, 아버지, 조부모", "mother, father, grandparent"),
            l.t("확인 방법", "How it was checked"),
            l.t("서명한 동의서, 신분증 확인", "signed paper form, ID checked"),
            l.t("서명한 날", "Signed on"),
            l.t("보관 기한", "Keep until"),
            l.t("얼굴 템플릿 갱신에도 동의", "Also consents to template refresh"),
            kiosk_picker(&app, &staff, "consent-kiosk"),
            l.t("동의 기록", "Record consent"),
            hidden = hidden(),
        ));
        body.push_str(&format!(
            "<section><h3>{}</h3><p>{}</p><form method=\"post\" action=\"/enrol/capture\" id=\"capture-form\">{hidden}\
             {}<button type=\"submit\">{}</button></form></section>",
            l.t("2. 키오스크에서 얼굴 등록", "2. Capture at the door"),
            l.t(
                "아이를 키오스크 카메라 앞에 세운 뒤 누르세요. 최대 20초 걸립니다. 사진은 키오스크 밖으로 나가지 않습니다.",
                "Stand the child in front of the kiosk's camera, then press. It takes up to 20 s. No image leaves the kiosk.",
            ),
            kiosk_picker(&app, &staff, "capture-kiosk"),
            l.t("얼굴 등록", "Capture"),
            hidden = hidden(),
        ));
        body.push_str(&format!(
            "<section><h3>{}</h3><form method=\"post\" action=\"/enrol/erase\" id=\"erase-form\">{hidden}\
             <label>{} <input name=\"reason\"></label>\
             <label><input type=\"checkbox\" id=\"erase-confirm\" name=\"confirm\" value=\"yes\" required> {}</label>\
             {}<button type=\"submit\" class=\"danger\">{}</button></form></section>",
            l.t("얼굴 정보 지우기", "Erase the face"),
            l.t("사유", "Reason"),
            l.t(
                "이 아이의 얼굴 템플릿을 지우고 동의를 철회합니다",
                "Erase this child's face templates and withdraw the consent",
            ),
            kiosk_picker(&app, &staff, "erase-kiosk"),
            l.t("지우기", "Erase"),
            hidden = hidden(),
        ));
    }
    if rosters.is_empty() {
        body.push_str(&format!(
            "<p id=\"no-roster\">{}</p>",
            l.t("아직 키오스크의 명단이 없습니다.", "No kiosk has sent its roster yet.")
        ));
    }
    layout(&staff, l.t("얼굴 등록", "Enrolment"), "enrol", &body).into_response()
}

/// The person of a form, if it is a plain id; and the page to come back to.
fn person(f: &Form) -> Option<(String, String)> {
    let p = f.get("person").filter(|p| validate_id(p).is_ok())?;
    Some((p.to_string(), format!("/enrol?person={p}")))
}

pub async fn consent(staff: Staff, State(app): State<App>, body: String) -> Response {
    let f = Form::parse(&body);
    let Some((person, back)) = person(&f) else {
        return refuse(&app, &staff, "/enrol", "아이를 고르세요.", "Choose a child.");
    };
    let (Some(guardian), Some(relation), Some(verified), Some(until)) =
        (f.get("guardian"), f.get("relation"), f.get("verified"), f.get("until"))
    else {
        return refuse(
            &app,
            &staff,
            &back,
            "보호자 이름, 관계, 확인 방법, 보관 기한을 모두 적으세요.",
            "Fill in the guardian's name, relation, how it was checked, and keep-until.",
        );
    };
    let id = request_id_of(f.get("request_id"));
    let mut purposes = f.all("purposes");
    purposes.dedup();
    let command = ConsentCommand {
        person: person.clone(),
        guardian: guardian.into(),
        relation: relation.into(),
        verified: verified.into(),
        purposes,
        until: until.into(),
        given_on: f.get("given_on").map(str::to_string),
        by: staff.id.clone(),
        request_id: Some(id.clone()),
    };
    let kiosk = app.center.kiosk_for(&person, f.get("kiosk"));
    act(&app, &staff, &back, kiosk, Command::Consent, &command, &id).await
}

pub async fn capture(staff: Staff, State(app): State<App>, body: String) -> Response {
    let f = Form::parse(&body);
    let Some((person, back)) = person(&f) else {
        return refuse(&app, &staff, "/enrol", "아이를 고르세요.", "Choose a child.");
    };
    let id = request_id_of(f.get("request_id"));
    let command = EnrollCommand {
        person: person.clone(),
        // The name the doors know the child by: a door that has not met the child yet needs it.
        name: names(&app).remove(&person),
        role: Some(Role::Child),
        seconds: Some(CAPTURE_SECS),
        by: staff.id.clone(),
        request_id: Some(id.clone()),
    };
    let kiosk = app.center.kiosk_for(&person, f.get("kiosk"));
    act(&app, &staff, &back, kiosk, Command::Enroll, &command, &id).await
}

pub async fn erase(staff: Staff, State(app): State<App>, body: String) -> Response {
    let f = Form::parse(&body);
    let Some((person, back)) = person(&f) else {
        return refuse(&app, &staff, "/enrol", "아이를 고르세요.", "Choose a child.");
    };
    if f.get("confirm") != Some("yes") {
        return refuse(&app, &staff, &back, "지우려면 확인 칸에 표시하세요.", "Tick the confirmation box to erase.");
    }
    let id = request_id_of(f.get("request_id"));
    let command = EraseCommand {
        person: person.clone(),
        reason: f.get("reason").map(str::to_string),
        by: staff.id.clone(),
        request_id: Some(id.clone()),
    };
    let kiosk = app.center.kiosk_for(&person, f.get("kiosk"));
    act(&app, &staff, &back, kiosk, Command::Erase, &command, &id).await
}
