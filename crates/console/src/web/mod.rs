//! The console's HTTP layer. OWNED BY THE WEB/AUTH WORK: the server (HTTP or HTTPS), the
//! router that merges [`pages::router`], login/logout, the session and CSRF checks, the
//! page layout.

pub mod app;
pub mod layout;
pub mod pages;

pub use app::{App, Staff};
