//! What every handler shares: the [`App`] state and the [`Staff`] member a request comes from.

use std::sync::Arc;

use crate::lang::Lang;

/// The state every route gets.
#[derive(Clone)]
pub struct App {
    pub config: Arc<crate::ConsoleConfig>,
    pub auth: Arc<crate::auth::Auth>,
    pub center: Arc<crate::center::Center>,
}

/// The logged-in staff member a request comes from, taken from the session cookie.
/// Handlers that take it are reachable only with a live session; a POST reaching one has
/// passed the CSRF check already.
#[derive(Debug, Clone)]
pub struct Staff {
    /// The account id: what commands carry as `by`, and audit lines name.
    pub id: String,
    /// The name shown ("김선생").
    pub name: String,
    /// The session's CSRF token; every form carries it as the hidden field `csrf`.
    pub csrf: String,
    pub lang: Lang,
    /// The center's name for the page header (`site.name`, else `site.center_id`).
    pub center: String,
    /// The path and query this request asked for: where the language switch comes back to.
    pub here: String,
}

/// A handler that takes [`Staff`] runs only behind the session layer, which puts the member it
/// found in the request's extensions; without one the request is sent to the login page.
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Staff {
    type Rejection = axum::response::Redirect;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Staff>().cloned().ok_or_else(|| axum::response::Redirect::to("/login"))
    }
}
