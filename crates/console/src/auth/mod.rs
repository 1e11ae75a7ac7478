//! Staff accounts and sessions. OWNED BY THE WEB/AUTH WORK: the users file (Argon2id hashes,
//! written by `dolbom console passwd`), sessions, the login rate limit.

pub struct Auth {}
