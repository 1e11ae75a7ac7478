//! `dolbom console`: wiring only. OWNED BY THE WEB/AUTH WORK (the center's part is started
//! from here too).
