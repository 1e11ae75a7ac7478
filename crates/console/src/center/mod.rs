//! The center as the console knows it. OWNED BY THE CENTER/PAGES WORK: the broker intake of
//! every door's topics, console.db, change notifications for live pages, and staff commands
//! to the kiosks with their answers.

pub struct Center {}
