//! The page around every staff page: head, header with the center and the staff member,
//! navigation, language switch, logout. Pages call [`page`] and put [`csrf_field`] in every form.

use axum::response::Html;

use super::{form, Staff};
use crate::lang::esc;

/// The navigation: key (as pages pass it in `active`), path, Korean, English.
const NAV: [(&str, &str, &str, &str); 7] = [
    ("board", "/", "오늘", "Board"),
    ("alerts", "/alerts", "열 알림", "Alerts"),
    ("visitors", "/visitors", "방문자", "Visitors"),
    ("air", "/air", "공기", "Air"),
    ("health", "/health", "키오스크", "Kiosks"),
    ("attendance", "/attendance", "출석부", "Attendance"),
    ("enrol", "/enrol", "얼굴 등록", "Enrolment"),
];

/// A whole page: `title` in the head and as the heading, `active` the nav entry to mark
/// ("board", "alerts", "visitors", "air", "health", "attendance", "enrol"), `body` the page's
/// own HTML (already escaped), placed inside `<main>`.
pub fn page(staff: &Staff, title: &str, active: &str, body: &str) -> Html<String> {
    let lang = staff.lang;
    let nav: String = NAV
        .iter()
        .map(|(key, href, ko, en)| {
            let current = if *key == active { " aria-current=\"page\" class=\"active\"" } else { "" };
            format!("<a id=\"nav-{key}\" href=\"{href}\"{current}>{}</a>", esc(lang.t(ko, en)))
        })
        .collect();
    let switch = |code: &str, label: &str| {
        let current = if code == lang.code() { " aria-current=\"true\"" } else { "" };
        format!(
            "<a id=\"lang-{code}\" href=\"/lang?set={code}&amp;next={}\"{current}>{label}</a>",
            esc(&form::encode(&staff.here))
        )
    };
    Html(format!(
        "<!doctype html><html lang=\"{code}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · {center}</title>\
         <link rel=\"stylesheet\" href=\"/static/console.css\"><link rel=\"stylesheet\" href=\"/static/pages.css\">\
         <script src=\"/static/console.js\" defer></script></head><body>\
         <header id=\"top\"><div class=\"bar\"><span id=\"center-name\">{center}</span>\
         <span class=\"who\"><span id=\"staff-name\">{name}</span>\
         <form id=\"logout\" method=\"post\" action=\"/logout\">{csrf}\
         <button id=\"logout-button\" type=\"submit\">{logout}</button></form></span></div>\
         <nav id=\"nav\">{nav}</nav><p class=\"lang-switch\">{ko} · {en}</p></header>\
         <main id=\"main\"><h1>{title}</h1>{body}</main></body></html>",
        code = lang.code(),
        title = esc(title),
        center = esc(&staff.center),
        name = esc(&staff.name),
        csrf = csrf_field(staff),
        logout = esc(lang.t("로그아웃", "Log out")),
        ko = switch("ko", "한국어"),
        en = switch("en", "English"),
    ))
}

/// The hidden field every form carries; the CSRF layer refuses a POST without it.
pub fn csrf_field(staff: &Staff) -> String {
    format!("<input type=\"hidden\" name=\"csrf\" value=\"{}\">", esc(&staff.csrf))
}

/// The hidden fields of a form that sends a command to a kiosk: the CSRF token and the action's
/// request id, made when the form is shown, so pressing twice or sending again is one action.
pub fn action_fields(staff: &Staff) -> String {
    format!(
        "{}<input type=\"hidden\" name=\"request_id\" value=\"{}\">",
        csrf_field(staff),
        crate::center::commands::request_id()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::Lang;

    #[test]
    fn the_layout_escapes_marks_the_active_entry_and_carries_the_token() {
        let staff = Staff {
            id: "kim".into(),
            name: "<김>".into(),
            csrf: "tok".into(),
            lang: Lang::En,
            center: "햇살".into(),
            here: "/alerts?x=1".into(),
        };
        let html = page(&staff, "Alerts", "alerts", "<p>body</p>").0;
        assert!(html.contains("&lt;김&gt;") && !html.contains("<김>"));
        assert!(html.contains("id=\"nav-alerts\" href=\"/alerts\" aria-current=\"page\""));
        assert!(html.contains("<input type=\"hidden\" name=\"csrf\" value=\"tok\">"));
        assert!(html.contains("/lang?set=ko&amp;next=/alerts%3Fx%3D1"));
        assert!(html.contains("<main id=\"main\"><h1>Alerts</h1><p>body</p></main>"));
        assert!(!html.contains("style=") && !html.contains("<script>"), "no inline style or script");
    }
}
