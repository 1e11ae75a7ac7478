//! `[site]`: which center and door this kiosk is, and the time zone its days and timestamps
//! are in. Built once into a [`Site`], the one identity every stage shares.

use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::Deserialize;

use dolbom_contract::{rfc3339, Topics};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    /// Appears in MQTT topics: letters, digits, '-', '_' and '.'.
    pub center_id: String,
    pub kiosk_id: String,
    /// IANA time zone of the center, e.g. "Asia/Seoul": days and event times are in it.
    pub timezone: String,
}

impl SiteConfig {
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        for (key, v) in [("site.center_id", &self.center_id), ("site.kiosk_id", &self.kiosk_id)] {
            if dolbom_contract::validate_id(v).is_err() {
                return Err((key, format!("= \"{v}\": use 1 to 64 letters, digits, '-', '_' or '.'")));
            }
        }
        TimeZone::get(&self.timezone).map_err(|e| ("site.timezone", format!("= \"{}\": {e}", self.timezone)))?;
        Ok(())
    }

    pub fn build(&self) -> Result<Site, (&'static str, String)> {
        self.validate()?;
        let tz = TimeZone::get(&self.timezone).map_err(|e| ("site.timezone", e.to_string()))?;
        Ok(Site {
            center: self.center_id.clone(),
            kiosk: self.kiosk_id.clone(),
            topics: Topics::new(&self.center_id, &self.kiosk_id),
            tz,
        })
    }
}

/// Who this kiosk is: ids for payloads, its topics, and its local time.
#[derive(Debug, Clone)]
pub struct Site {
    pub center: String,
    pub kiosk: String,
    pub topics: Topics,
    pub tz: TimeZone,
}

impl Site {
    /// A payload timestamp (RFC 3339 in the site's offset) for a Unix time in milliseconds.
    pub fn ts(&self, ms: i64) -> String {
        rfc3339(Timestamp::from_millisecond(ms).unwrap_or_else(|_| Timestamp::now()), &self.tz)
    }

    pub fn now(&self) -> String {
        rfc3339(Timestamp::now(), &self.tz)
    }

    /// The MQTT client id a kiosk uses unless its config names one.
    pub fn client_id(&self) -> String {
        format!("dolbom-{}-{}", self.center, self.kiosk)
    }
}
