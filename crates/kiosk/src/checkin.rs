//! Check-ins without a face: a tag held to the reader ([`crate::sources::tag`]) or a PIN typed
//! at the door ([`crate::pin`]). Both find the person in the gallery (the one person registry:
//! a person may have tags and a PIN and no face template) and hand the event stage the same
//! sighting a recognised face gives, with its `method`. No face was measured, so a check-in
//! carries no temperature.

use std::time::SystemTime;

use dolbom_contract::{CheckInMethod, Role};
use dolbom_face::gallery::{Gallery, GalleryStore};
use tracing::{info, warn};

use crate::vision::{Sighting, Who};

impl Sighting {
    /// An enrolled person checked in by `method`, now. The card or PIN matched exactly:
    /// confidence 1.
    pub fn checked_in(id: String, role: Role, method: CheckInMethod) -> Self {
        Sighting {
            track_id: 0,
            captured_ms: jiff::Timestamp::now().as_millisecond(),
            who: Who::Person { id, role, confidence: 1.0 },
            temperature: None,
            method,
        }
    }
}

/// The gallery as the check-in stages see it: reread when its file changes, so a tag or PIN
/// enrolled while the kiosk runs works at once.
pub struct Registry {
    store: GalleryStore,
    gallery: Gallery,
    /// The file's modification time when it was read; None before the first read.
    modified: Option<Option<SystemTime>>,
}

impl Registry {
    pub fn new(store: GalleryStore) -> Self {
        Self { store, gallery: Gallery::empty(), modified: None }
    }

    /// Looks something up in the current gallery. A gallery that cannot be read keeps the last
    /// good one (and says so): a check-in stage never stops for it.
    pub fn find<T>(&mut self, lookup: impl FnOnce(&Gallery) -> Option<T>) -> Option<T> {
        self.refresh();
        lookup(&self.gallery)
    }

    fn refresh(&mut self) {
        // The time first: a change during the read then shows as a change next time.
        let modified = std::fs::metadata(self.store.path()).and_then(|m| m.modified()).ok();
        if self.modified == Some(modified) {
            return;
        }
        match self.store.load() {
            Ok(g) => {
                info!(people = g.people.len(), "gallery loaded for check-ins");
                self.gallery = g;
                self.modified = Some(modified);
            }
            Err(e) => warn!(error = %e, "cannot reread the gallery; check-ins use the last one read"),
        }
    }
}
