//! Logging in and out, and the language switch: the routes reachable without a session (but
//! for POST /logout, which needs one and its CSRF token like any POST).

use std::net::IpAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use super::session::{request_lang, LANG_COOKIE, SESSION_COOKIE};
use super::{form, App, Peer, Staff};
use crate::auth::LoginRefused;
use crate::lang::{esc, Lang};

pub fn router() -> Router<App> {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/lang", get(set_lang))
        .route("/whoami", get(whoami))
}

fn cookie_attrs(app: &App) -> &'static str {
    if app.config.web.tls.is_some() {
        "HttpOnly; SameSite=Strict; Path=/; Secure"
    } else {
        "HttpOnly; SameSite=Strict; Path=/"
    }
}

fn center_name(app: &App) -> String {
    app.config.site.name.clone().unwrap_or_else(|| app.config.site.center_id.clone())
}

/// The login page; `refusal` (already escaped HTML) above the form when a login failed.
fn render(app: &App, lang: Lang, next: &str, id: &str, refusal: Option<&str>) -> Html<String> {
    let t = |ko, en| esc(lang.t(ko, en));
    let here = format!("/login?next={}", form::encode(next));
    let switch = |code: &str, label: &str| {
        let current = if code == lang.code() { " aria-current=\"true\"" } else { "" };
        format!(
            "<a id=\"lang-{code}\" href=\"/lang?set={code}&amp;next={}\"{current}>{label}</a>",
            esc(&form::encode(&here))
        )
    };
    Html(format!(
        "<!doctype html><html lang=\"{code}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · {center}</title><link rel=\"stylesheet\" href=\"/static/console.css\"></head>\
         <body class=\"login\"><main id=\"login-main\"><h1>{center}</h1><h2>{title}</h2>{refusal}\
         <form id=\"login\" method=\"post\" action=\"/login\">\
         <input type=\"hidden\" name=\"next\" value=\"{next}\">\
         <label for=\"login-id\">{id_label}</label>\
         <input id=\"login-id\" name=\"id\" autocomplete=\"username\" autocapitalize=\"none\" required value=\"{id}\">\
         <label for=\"login-password\">{pw_label}</label>\
         <input id=\"login-password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
         <button id=\"login-submit\" type=\"submit\">{submit}</button></form>\
         <p class=\"lang-switch\">{ko} · {en}</p></main></body></html>",
        code = lang.code(),
        title = t("직원 로그인", "Staff login"),
        center = esc(&center_name(app)),
        refusal = refusal
            .map(|r| format!("<p id=\"login-error\" class=\"refusal\" role=\"alert\">{r}</p>"))
            .unwrap_or_default(),
        next = esc(next),
        id = esc(id),
        id_label = t("아이디", "ID"),
        pw_label = t("비밀번호", "Password"),
        submit = t("로그인", "Log in"),
        ko = switch("ko", "한국어"),
        en = switch("en", "English"),
    ))
}

async fn login_page(State(app): State<App>, req: Request) -> Response {
    let query = req.uri().query().unwrap_or_default().as_bytes();
    let next = form::local_path(form::field(query, "next").as_deref());
    render(&app, request_lang(req.headers(), None), &next, "", None).into_response()
}

async fn login(State(app): State<App>, req: Request) -> Response {
    let client: Option<IpAddr> = req.extensions().get::<ConnectInfo<Peer>>().map(|c| c.0 .0.ip());
    let headers = req.headers().clone();
    let Ok(body) = axum::body::to_bytes(req.into_body(), 64 * 1024).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let fields = form::parse(&body);
    let get = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or_default();
    let (id, password) = (get("id").trim(), get("password"));
    let next = form::local_path(Some(get("next")));
    let lang = request_lang(&headers, None);
    match app.auth.login(id, password, client).await {
        Ok((sid, _session, user)) => {
            let mut res = Redirect::to(&next).into_response();
            let cookie = format!("{SESSION_COOKIE}={sid}; {}", cookie_attrs(&app));
            if let Ok(v) = cookie.parse() {
                res.headers_mut().append(header::SET_COOKIE, v);
            }
            // The account's language, unless this browser already chose one.
            if let (None, Some(l)) = (form::cookie(&headers, LANG_COOKIE), user.lang()) {
                if let Ok(v) = lang_cookie(l).parse() {
                    res.headers_mut().append(header::SET_COOKIE, v);
                }
            }
            res
        }
        Err(LoginRefused::Wrong) => {
            let msg = "아이디 또는 비밀번호가 맞지 않습니다.<br>The ID or password is wrong.";
            (StatusCode::UNAUTHORIZED, render(&app, lang, &next, id, Some(msg))).into_response()
        }
        Err(LoginRefused::TooMany(wait)) => {
            let mins = wait.as_secs().div_ceil(60).max(1);
            let msg = format!(
                "틀린 비밀번호가 너무 많습니다. {mins}분 뒤에 다시 해 주세요.<br>\
                 Too many wrong passwords. Try again in {mins} minute{}.",
                if mins == 1 { "" } else { "s" }
            );
            let mut res = (StatusCode::TOO_MANY_REQUESTS, render(&app, lang, &next, id, Some(&msg))).into_response();
            if let Ok(v) = wait.as_secs().max(1).to_string().parse() {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
            res
        }
    }
}

async fn logout(State(app): State<App>, staff: Staff, headers: HeaderMap) -> Response {
    if let Some(sid) = form::cookie(&headers, SESSION_COOKIE) {
        app.auth.sessions.remove(&sid);
    }
    tracing::info!(account = %staff.id, "staff logged out");
    let mut res = Redirect::to("/login").into_response();
    let cookie = format!("{SESSION_COOKIE}=; Max-Age=0; {}", cookie_attrs(&app));
    if let Ok(v) = cookie.parse() {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

fn lang_cookie(lang: Lang) -> String {
    format!("{LANG_COOKIE}={}; Path=/; SameSite=Strict; Max-Age=31536000", lang.code())
}

/// GET /lang?set=en&next=/…: the one GET that sets anything, and only how pages are shown.
async fn set_lang(req: Request) -> Response {
    let query = req.uri().query().unwrap_or_default().as_bytes();
    let lang = Lang::from_code(&form::field(query, "set").unwrap_or_default());
    let next = form::local_path(form::field(query, "next").as_deref());
    let mut res = Redirect::to(&next).into_response();
    if let Ok(v) = lang_cookie(lang).parse() {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

/// The logged-in account's id, as text: for scripts and tests checking a session.
async fn whoami(staff: Staff) -> String {
    staff.id
}
