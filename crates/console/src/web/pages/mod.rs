//! The staff pages. OWNED BY THE CENTER/PAGES WORK: board, alerts, visitors, air, health,
//! CSV, check-in by hand, enrolment; each page in its own file.

use axum::Router;

use super::App;

/// The pages' routes; the web layer puts its session and CSRF checks in front of them.
pub fn router() -> Router<App> {
    Router::new()
}
