//! `[tag]` and the tag check-in: a 125 kHz RDM6300 reader on the shared serial loop. A card held
//! to the reader is one read ([`Debounce`]); the card of an enrolled person becomes a sighting
//! with `method` "tag" for the event stage, exactly like a recognised face, so the attendance
//! book, its cooldown and the parents' texts are the same. An unknown card is logged with its
//! id and counted (`tags_unknown` in the status); it is no event and texts nobody.

pub mod rdm6300;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dolbom_contract::CheckInMethod;
use dolbom_face::gallery::{CardId, GalleryStore};
use serde::Deserialize;
use tokio::sync::mpsc;
use tracing::{info, warn};

pub use rdm6300::Rdm6300;

use crate::checkin::Registry;
use crate::health::Health;
use crate::shutdown::Shutdown;
use crate::sources::serial::{run_port, PortSettings};
use crate::vision::Sighting;

/// The reader's name in the health registry and the status `sensors` map.
pub const TAG: &str = "tag";

/// `[tag]`: where the reader is.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagConfig {
    /// Off keeps the section (and the reader's wiring) without reading it.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Serial device, e.g. /dev/dolbom-tag (the udev name) or a simulator's pseudo-terminal.
    pub port: String,
    /// The RDM6300 speaks 9600 8N1 only; other rates for bridges that convert.
    #[serde(default = "default_baud")]
    pub baud: u32,
    /// A card is read once per this many seconds: a reader repeats its frame while the card is
    /// held in the field, and this long out of the field makes the next touch a new read.
    #[serde(default = "default_repeat_secs")]
    pub repeat_secs: u64,
    /// Longest wait between attempts to open the port.
    #[serde(default = "default_retry_max_ms")]
    pub retry_max_ms: u64,
}

fn yes() -> bool {
    true
}
fn default_baud() -> u32 {
    9600
}
fn default_repeat_secs() -> u64 {
    3
}
fn default_retry_max_ms() -> u64 {
    10_000
}

const BAUD_RATES: [u32; 8] = [1200, 2400, 4800, 9600, 19_200, 38_400, 57_600, 115_200];

impl TagConfig {
    /// Checks values only, without opening the port; the error names the key.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.port.trim().is_empty() {
            return Err(("tag.port", "must not be empty".into()));
        }
        if !BAUD_RATES.contains(&self.baud) {
            return Err((
                "tag.baud",
                format!("= {}: must be one of {BAUD_RATES:?} (the RDM6300 sends at 9600)", self.baud),
            ));
        }
        dolbom_face::config::in_range("tag.repeat_secs", self.repeat_secs, 1, 60)?;
        dolbom_face::config::in_range("tag.retry_max_ms", self.retry_max_ms, 100, 3_600_000)?;
        Ok(())
    }

    /// A port path relative to the config file's directory, as for `[thermal]`.
    pub fn resolve_paths(&mut self, base: &Path) {
        if !self.port.starts_with('/') && !self.port.trim().is_empty() {
            self.port = base.join(&self.port).display().to_string();
        }
    }
}

/// One read per card while it stays in the field: a frame of a card seen less than `repeat`
/// ago is the same touch (and keeps it going), not a new read.
#[derive(Debug)]
pub struct Debounce {
    repeat: Duration,
    last_seen: HashMap<CardId, Instant>,
}

impl Debounce {
    pub fn new(repeat: Duration) -> Self {
        Self { repeat, last_seen: HashMap::new() }
    }

    /// True when this frame is a new read of `card`.
    pub fn accept(&mut self, card: CardId, now: Instant) -> bool {
        // Forget cards out of the field: the map holds only the last few seconds' cards.
        let repeat = self.repeat;
        self.last_seen.retain(|_, seen| now.saturating_duration_since(*seen) < repeat);
        self.last_seen.insert(card, now).is_none()
    }
}

/// Runs until `shutdown`: the reader on the serial loop, enrolled cards sent as sightings.
pub fn run_tag(
    config: TagConfig,
    gallery: GalleryStore,
    sightings: mpsc::Sender<Sighting>,
    health: Arc<Health>,
    shutdown: Shutdown,
) {
    let settings = PortSettings {
        sensor: TAG,
        path: config.port.clone(),
        baud: config.baud,
        retry_max: Duration::from_millis(config.retry_max_ms),
        // A reader sends nothing until a card comes: silence is its normal state (a day without
        // cards is a day; an unplugged reader is a failed read or open, reported as retrying).
        stale_after: Duration::MAX,
        reopen_after: Duration::MAX,
        quiet_is_normal: true,
    };
    let mut debounce = Debounce::new(Duration::from_secs(config.repeat_secs));
    let mut registry = Registry::new(gallery);
    let mut decoder = Rdm6300::default();
    run_port(&settings, &mut decoder, &health, &shutdown, |cards| {
        let now = Instant::now();
        for card in cards.drain(..) {
            if !debounce.accept(card, now) {
                continue;
            }
            match registry.find(|g| g.by_tag(&card).map(|p| (p.id.clone(), p.role))) {
                Some((id, role)) => {
                    info!(person = %id, method = "tag", "tag read / 태그 인식");
                    let s = Sighting::checked_in(id, role, CheckInMethod::Tag);
                    if sightings.blocking_send(s).is_err() {
                        warn!("tag read after the event stage stopped: not recorded");
                    }
                }
                None => {
                    health.tags_unknown.fetch_add(1, Ordering::Relaxed);
                    warn!(card = %card, "unknown tag: not enrolled for anyone / 등록되지 않은 태그");
                }
            }
        }
        Ok(())
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_card_is_one_read_and_a_new_touch_another() {
        let mut d = Debounce::new(Duration::from_secs(3));
        let a: CardId = "62E3086CED".parse().expect("card");
        let b: CardId = "0A00C3D2E1".parse().expect("card");
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert!(d.accept(a, at(0)));
        // Held for 5 s, a frame every 50 ms: still the same touch.
        assert!((1..100).all(|i| !d.accept(a, at(i * 50))));
        assert!(d.accept(b, at(1000)), "another card is its own read");
        // Out of the field for 3 s, then touched again: a new read.
        assert!(d.accept(a, at(4950 + 3000)));
        assert!(!d.accept(a, at(4950 + 3100)));
    }

    #[test]
    fn the_section_names_its_keys() {
        let parse = |t: &str| toml::from_str::<TagConfig>(t).expect("toml").validate();
        assert!(parse("port = \"/dev/dolbom-tag\"").is_ok());
        assert_eq!(parse("port = \" \"").map_err(|e| e.0), Err("tag.port"));
        assert_eq!(parse("port = \"p\"\nbaud = 9601").map_err(|e| e.0), Err("tag.baud"));
        assert_eq!(parse("port = \"p\"\nrepeat_secs = 0").map_err(|e| e.0), Err("tag.repeat_secs"));
        assert!(toml::from_str::<TagConfig>("port = \"p\"\nrepeat = 3").is_err(), "unknown keys are errors");
        let c: TagConfig = toml::from_str("port = \"p\"").expect("toml");
        assert_eq!((c.enabled, c.baud, c.repeat_secs), (true, 9600, 3));
    }
}
