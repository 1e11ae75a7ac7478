//! The pages' own script and style, built into the binary. No data in them, so no session is
//! needed to fetch them.

use axum::http::header;
use axum::response::IntoResponse;

const SCRIPT: &str = include_str!("../../../static/console.js");
const STYLE: &str = include_str!("../../../static/pages.css");

pub async fn script() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], SCRIPT)
}

pub async fn style() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], STYLE)
}
