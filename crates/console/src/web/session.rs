//! The checks in front of every route: security headers on every response; for everything but
//! the login page, the language switch and /static/*, a live session (else GET is sent to
//! /login and anything else refused with 403); for every request that is not GET/HEAD, the
//! session's CSRF token in the form field `csrf` and, when the browser sends one, an `Origin`
//! equal to this site's.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use super::{form, App, Staff};
use crate::lang::Lang;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "dolbom_session";
/// The language cookie's name.
pub const LANG_COOKIE: &str = "lang";
/// The header a script may carry the CSRF token in, instead of the form field `csrf`.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The header console.js sends with a live page's refresh.
pub const REFRESH_HEADER: &str = "x-dolbom-refresh";
/// The largest request body read for the CSRF check (an enrolment photo fits).
const MAX_BODY: usize = 16 * 1024 * 1024;

/// Routes reachable without a session.
fn public(path: &str) -> bool {
    path == "/login" || path == "/lang" || path.starts_with("/static/")
}

/// The language a request is shown in: the `lang` cookie, else the account's, else Korean.
pub fn request_lang(headers: &axum::http::HeaderMap, account: Option<Lang>) -> Lang {
    form::cookie(headers, LANG_COOKIE).map(|c| Lang::from_code(&c)).or(account).unwrap_or_default()
}

/// A plain refusal, Korean first.
pub fn forbidden(ko: &str, en: &str) -> Response {
    (StatusCode::FORBIDDEN, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{ko}\n{en}\n"))
        .into_response()
}

/// Whether the request's `Origin` (when there is one) is this site's own.
fn origin_ok(req: &Request, tls: bool) -> bool {
    let Some(origin) = req.headers().get(header::ORIGIN) else { return true };
    let Some(host) = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()) else { return false };
    let scheme = if tls { "https" } else { "http" };
    origin.to_str().is_ok_and(|o| o.eq_ignore_ascii_case(&format!("{scheme}://{host}")))
}

/// The session and CSRF layer (`axum::middleware::from_fn_with_state`).
pub async fn guard(State(app): State<App>, req: Request, next: Next) -> Response {
    let changes = !matches!(*req.method(), Method::GET | Method::HEAD);
    let tls = app.config.web.tls.is_some();
    if changes && !origin_ok(&req, tls) {
        tracing::warn!(path = req.uri().path(), "request from another site's page refused");
        return forbidden("다른 사이트에서 보낸 요청은 받지 않습니다.", "A request sent from another site is refused.");
    }
    if public(req.uri().path()) {
        return next.run(req).await;
    }
    // The live pages' own refreshes (console.js) say so: they do not count as staff using it.
    let used = changes || !req.headers().contains_key(REFRESH_HEADER);
    let found = form::cookie(req.headers(), SESSION_COOKIE).and_then(|sid| app.auth.session(&sid, used));
    let Some((session, user)) = found else {
        if changes {
            return forbidden(
                "로그인이 필요합니다. 다시 로그인한 뒤 해 주세요.",
                "You are not logged in. Log in again, then retry.",
            );
        }
        let here = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
        return Redirect::to(&format!("/login?next={}", form::encode(here))).into_response();
    };
    let req = if changes {
        // A script's fetch may send the token as a header instead; a form sends it as a field
        // (read from the body, which is then handed on unchanged).
        let header_token = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok()).map(str::to_string);
        let (parts, body) = req.into_parts();
        let (token, body) = match header_token {
            Some(t) => (Some(t), body),
            None => {
                let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
                    return (StatusCode::PAYLOAD_TOO_LARGE, "요청이 너무 큽니다.\nThe request is too large.\n")
                        .into_response();
                };
                let multipart = parts
                    .headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|c| c.to_str().ok())
                    .is_some_and(|c| c.starts_with("multipart/form-data"));
                let token = if multipart { form::multipart_field(&bytes, "csrf") } else { form::field(&bytes, "csrf") };
                (token, Body::from(bytes))
            }
        };
        if !token.is_some_and(|t| form::same(t.as_bytes(), session.csrf.as_bytes())) {
            tracing::warn!(account = %user.id, path = parts.uri.path(), "POST without the session's CSRF token refused");
            return forbidden(
                "이 양식은 만료되었습니다. 페이지를 새로 고친 뒤 다시 해 주세요.",
                "This form has expired. Reload the page and try again.",
            );
        }
        Request::from_parts(parts, body)
    } else {
        req
    };
    let mut req = req;
    let site = &app.config.site;
    let staff = Staff {
        id: user.id.clone(),
        name: user.name.clone(),
        csrf: session.csrf,
        lang: request_lang(req.headers(), user.lang()),
        center: site.name.clone().unwrap_or_else(|| site.center_id.clone()),
        here: req.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into()),
    };
    req.extensions_mut().insert(staff);
    next.run(req).await
}

/// Security headers on every response: no framing, no referrer to other sites, no inline script or style, and
/// pages never cached (they show children's names).
pub async fn headers(req: Request, next: Next) -> Response {
    let is_static = req.uri().path().starts_with("/static/");
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Not `no-referrer`: under it browsers send `Origin: null` with every form POST, and the
    // Origin check above could no longer tell this site from another. `same-origin` still sends
    // no address to any other site.
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    let cache = if is_static { "no-cache" } else { "no-store" };
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    res
}
