//! Home Assistant MQTT discovery: with `[homeassistant] enabled = true` the kiosk announces its
//! air values, its state and its active fever alerts as entities of one HA device, so a center's
//! existing Home Assistant shows them with no work. The entities read the kiosk's own topics
//! (`telemetry/air`, `status`); nothing is published twice. Availability follows the retained
//! `status` (its Last Will turns it `offline`).
//!
//! The configs are retained and go through the outbox at start, each replacing any still queued
//! for its topic.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::outbox::{NewMessage, Outbox, Priority, Tally};
use crate::site::Site;
use crate::store::StoreError;

/// `[homeassistant]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HomeAssistantConfig {
    pub enabled: bool,
    /// HA's `discovery_prefix` (its MQTT integration's setting; "homeassistant" unless changed).
    pub discovery_prefix: String,
}

impl Default for HomeAssistantConfig {
    fn default() -> Self {
        Self { enabled: false, discovery_prefix: "homeassistant".into() }
    }
}

impl HomeAssistantConfig {
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let p = &self.discovery_prefix;
        let plain = !p.is_empty()
            && p.len() <= 64
            && !p.starts_with('/')
            && !p.ends_with('/')
            && !p.contains("//")
            && !p.contains(['+', '#', '\0']);
        if plain {
            Ok(())
        } else {
            Err((
                "homeassistant.discovery_prefix",
                format!("= \"{p}\": use 1 to 64 characters of a topic, without wildcards or a leading or trailing '/'"),
            ))
        }
    }
}

/// The outbox `kind` of discovery configs.
pub const DISCOVERY_KIND: &str = "ha-discovery";

/// One entity: where its config goes and what it says.
#[derive(Debug, Clone, PartialEq)]
pub struct Discovery {
    pub topic: String,
    pub config: Value,
}

/// What an air value is, for HA.
struct AirEntity {
    object: &'static str,
    /// The telemetry field, `indoor.pm25` …
    path: &'static str,
    name: &'static str,
    device_class: Option<&'static str>,
    unit: &'static str,
}

const AIR_ENTITIES: [AirEntity; 11] = [
    AirEntity {
        object: "indoor_pm1",
        path: "indoor.pm1",
        name: "Indoor PM1 (실내 극초미세먼지)",
        device_class: Some("pm1"),
        unit: "µg/m³",
    },
    AirEntity {
        object: "indoor_pm25",
        path: "indoor.pm25",
        name: "Indoor PM2.5 (실내 초미세먼지)",
        device_class: Some("pm25"),
        unit: "µg/m³",
    },
    AirEntity {
        object: "indoor_pm10",
        path: "indoor.pm10",
        name: "Indoor PM10 (실내 미세먼지)",
        device_class: Some("pm10"),
        unit: "µg/m³",
    },
    AirEntity {
        object: "indoor_co2",
        path: "indoor.co2_ppm",
        name: "Indoor CO2 (실내 이산화탄소)",
        device_class: Some("carbon_dioxide"),
        unit: "ppm",
    },
    AirEntity {
        object: "indoor_temperature",
        path: "indoor.temperature_c",
        name: "Indoor temperature (실내 온도)",
        device_class: Some("temperature"),
        unit: "°C",
    },
    AirEntity {
        object: "indoor_humidity",
        path: "indoor.humidity_pct",
        name: "Indoor humidity (실내 습도)",
        device_class: Some("humidity"),
        unit: "%",
    },
    // HA has no formaldehyde class: a plain measurement in µg/m³.
    AirEntity {
        object: "indoor_hcho",
        path: "indoor.hcho_ug_m3",
        name: "Indoor formaldehyde (실내 폼알데하이드)",
        device_class: None,
        unit: "µg/m³",
    },
    AirEntity {
        object: "outdoor_pm10",
        path: "outdoor.pm10",
        name: "Outdoor PM10 (실외 미세먼지)",
        device_class: Some("pm10"),
        unit: "µg/m³",
    },
    AirEntity {
        object: "outdoor_pm25",
        path: "outdoor.pm25",
        name: "Outdoor PM2.5 (실외 초미세먼지)",
        device_class: Some("pm25"),
        unit: "µg/m³",
    },
    AirEntity {
        object: "outdoor_temperature",
        path: "outdoor.temperature_c",
        name: "Outdoor temperature (실외 온도)",
        device_class: Some("temperature"),
        unit: "°C",
    },
    AirEntity {
        object: "outdoor_humidity",
        path: "outdoor.humidity_pct",
        name: "Outdoor humidity (실외 습도)",
        device_class: Some("humidity"),
        unit: "%",
    },
];

/// The HA node id and device identifier of a kiosk: ids may hold '.', HA's node ids may not.
pub fn node_id(site: &Site) -> String {
    let clean =
        |s: &str| s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect::<String>();
    format!("dolbom_{}_{}", clean(&site.center), clean(&site.kiosk))
}

/// Every entity's discovery config for this kiosk.
pub fn discovery(site: &Site, prefix: &str) -> Vec<Discovery> {
    let node = node_id(site);
    let device = json!({
        "identifiers": [node],
        "name": format!("dolbom {} {}", site.center, site.kiosk),
        "manufacturer": "dolbom",
        "model": "kiosk",
        "sw_version": env!("CARGO_PKG_VERSION"),
    });
    let availability = json!([{
        "topic": site.topics.status(),
        "value_template": "{{ value_json.state }}",
        "payload_available": "online",
        "payload_not_available": "offline",
    }]);
    let topic = |component: &str, object: &str| format!("{prefix}/{component}/{node}/{object}/config");
    let mut out = Vec::new();
    for e in &AIR_ENTITIES {
        let mut config = json!({
            "name": e.name,
            "unique_id": format!("{node}_{}", e.object),
            "state_topic": site.topics.air_telemetry(),
            "value_template": value_template(e.path),
            "unit_of_measurement": e.unit,
            "state_class": "measurement",
            "availability": availability,
            "device": device,
        });
        if let Some(class) = e.device_class {
            config["device_class"] = json!(class);
        }
        out.push(Discovery { topic: topic("sensor", e.object), config });
    }
    // The kiosk's own state: read without availability, since "offline" is what it reports.
    out.push(Discovery {
        topic: topic("sensor", "state"),
        config: json!({
            "name": "Kiosk state (키오스크 상태)",
            "unique_id": format!("{node}_state"),
            "state_topic": site.topics.status(),
            "value_template": "{{ value_json.state }}",
            "device_class": "enum",
            "options": ["online", "offline"],
            "device": device,
        }),
    });
    out.push(Discovery {
        topic: topic("binary_sensor", "degraded"),
        config: json!({
            "name": "Kiosk needs attention (키오스크 점검 필요)",
            "unique_id": format!("{node}_degraded"),
            "state_topic": site.topics.status(),
            "value_template": "{{ 'ON' if value_json.health is defined and value_json.health.degraded else 'OFF' }}",
            "device_class": "problem",
            "json_attributes_topic": site.topics.status(),
            "json_attributes_template": "{{ {'reasons': value_json.health.reasons if value_json.health is defined else []} | tojson }}",
            "availability": availability,
            "device": device,
        }),
    });
    out.push(Discovery {
        topic: topic("sensor", "fever_alerts_active"),
        config: json!({
            "name": "Active fever alerts (발열 경보)",
            "unique_id": format!("{node}_fever_alerts_active"),
            "state_topic": site.topics.status(),
            "value_template": "{{ value_json.health.fever_alerts_active if value_json.health is defined else none }}",
            "state_class": "measurement",
            "availability": availability,
            "device": device,
        }),
    });
    out
}

/// The value of a telemetry field, or nothing (HA's "unknown") when the kiosk reports it absent.
fn value_template(path: &str) -> String {
    format!("{{{{ value_json.{path}.value if value_json.{path} is defined and value_json.{path} else none }}}}")
}

/// Queues every discovery config (retained) when enabled; returns how many were queued.
pub fn announce(config: &HomeAssistantConfig, site: &Site, outbox: &Outbox, now_ms: i64) -> Result<usize, StoreError> {
    if !config.enabled {
        return Ok(0);
    }
    let entities = discovery(site, &config.discovery_prefix);
    let mut conn = outbox.store().lock()?;
    let tx = conn.transaction()?;
    let mut tally = Tally::default();
    for d in &entities {
        let msg = NewMessage {
            topic: d.topic.clone(),
            payload: serde_json::to_vec(&d.config).unwrap_or_default(),
            kind: DISCOVERY_KIND.into(),
            priority: Priority::Attendance,
            retain: true,
            created_ms: now_ms,
            expires_ms: None,
        };
        tally.enqueue_latest(&tx, &msg, outbox.capacity(), now_ms)?;
    }
    tx.commit()?;
    drop(conn);
    outbox.after_enqueue(tally);
    tracing::info!(entities = entities.len(), prefix = %config.discovery_prefix, "Home Assistant discovery queued / 홈 어시스턴트 자동 등록");
    Ok(entities.len())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::health::Health;
    use crate::store::Store;

    fn site(kiosk: &str) -> Site {
        crate::site::SiteConfig { center_id: "sunshine".into(), kiosk_id: kiosk.into(), timezone: "Asia/Seoul".into() }
            .build()
            .expect("site")
    }

    /// A telemetry payload with every value present, as the stage builds it.
    fn full_telemetry() -> Value {
        let reading = json!({"value": 1.0, "at": "2026-12-02T09:00:00+09:00", "age_secs": 3});
        let dust = json!({"value": 1.0, "at": "2026-12-02T09:00:00+09:00", "age_secs": 3,
            "grade": {"code": "good", "level": 1, "ko": "좋음", "en": "good"}});
        let t = dolbom_contract::AirTelemetry {
            schema: dolbom_contract::AIR_TELEMETRY_SCHEMA.into(),
            center: "sunshine".into(),
            kiosk: "door-1".into(),
            ts: "2026-12-02T09:00:03+09:00".into(),
            indoor: dolbom_contract::IndoorAir {
                pm1: serde_json::from_value(reading.clone()).ok(),
                pm25: serde_json::from_value(dust.clone()).ok(),
                pm10: serde_json::from_value(dust.clone()).ok(),
                co2_ppm: serde_json::from_value(reading.clone()).ok(),
                temperature_c: serde_json::from_value(reading.clone()).ok(),
                humidity_pct: serde_json::from_value(reading.clone()).ok(),
                hcho_ug_m3: serde_json::from_value(reading.clone()).ok(),
            },
            outdoor: dolbom_contract::OutdoorAirReport {
                station: Some("종로구".into()),
                pm10: serde_json::from_value(dust.clone()).ok(),
                pm25: serde_json::from_value(dust).ok(),
                temperature_c: serde_json::from_value(reading.clone()).ok(),
                humidity_pct: serde_json::from_value(reading).ok(),
            },
        };
        serde_json::to_value(t).expect("json")
    }

    /// The `value_json.a.b` paths a template reads.
    fn paths(template: &str) -> Vec<Vec<String>> {
        template
            .split("value_json.")
            .skip(1)
            .map(|rest| {
                let path: String =
                    rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.').collect();
                path.split('.').map(str::to_string).collect()
            })
            .collect()
    }

    #[test]
    fn every_entity_reads_a_field_that_exists_in_its_topic() {
        let s = site("door-1");
        let telemetry = full_telemetry();
        let status = serde_json::to_value(crate::outbox::publisher::status(&s, "online", Some(&Health::default())))
            .expect("status json");
        let all = discovery(&s, "homeassistant");
        assert_eq!(all.len(), AIR_ENTITIES.len() + 3);
        for d in &all {
            let c = &d.config;
            let state_topic = c["state_topic"].as_str().expect("state_topic");
            let payload = if state_topic == s.topics.air_telemetry() {
                &telemetry
            } else {
                assert_eq!(state_topic, s.topics.status(), "{}", d.topic);
                &status
            };
            let template = c["value_template"].as_str().expect("value_template");
            let found = paths(template);
            assert!(!found.is_empty(), "{template}");
            for path in found {
                let mut v = payload;
                for key in &path {
                    v = v.get(key).unwrap_or_else(|| panic!("{}: {path:?} not in {state_topic}", d.topic));
                }
            }
            if state_topic == s.topics.air_telemetry() {
                assert!(template.contains(".value if"), "{template}");
            }
            // One device per kiosk, with availability from its status.
            assert_eq!(c["device"]["identifiers"], json!(["dolbom_sunshine_door-1"]));
            assert_eq!(c["device"]["manufacturer"], "dolbom");
            assert_eq!(c["device"]["sw_version"], env!("CARGO_PKG_VERSION"));
            if let Some(a) = c.get("availability") {
                assert_eq!(a[0]["topic"], s.topics.status());
                assert_eq!(a[0]["payload_available"], "online");
            }
        }
        let classes: Vec<&str> = all.iter().filter_map(|d| d.config["device_class"].as_str()).collect();
        for class in ["pm1", "pm25", "pm10", "carbon_dioxide", "temperature", "humidity", "problem"] {
            assert!(classes.contains(&class), "{class} in {classes:?}");
        }
        let hcho = all.iter().find(|d| d.topic.contains("indoor_hcho")).expect("hcho");
        assert_eq!(hcho.config["unit_of_measurement"], "µg/m³");
    }

    #[test]
    fn topics_and_unique_ids_are_stable_and_per_kiosk() {
        let a = discovery(&site("door-1"), "ha");
        assert_eq!(a, discovery(&site("door-1"), "ha"), "the same kiosk announces the same entities");
        assert_eq!(a[1].topic, "ha/sensor/dolbom_sunshine_door-1/indoor_pm25/config");
        assert_eq!(a[1].config["unique_id"], "dolbom_sunshine_door-1_indoor_pm25");
        let b = discovery(&site("door.2"), "ha");
        assert_eq!(b[1].config["unique_id"], "dolbom_sunshine_door_2_indoor_pm25");
        let mut ids: Vec<String> = a.iter().chain(&b).map(|d| d.config["unique_id"].to_string()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), a.len() * 2, "unique across entities and kiosks");
    }

    #[test]
    fn announce_queues_retained_configs_once_and_nothing_when_disabled() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(Store::open(&dir.path().join("k.db")).expect("store"));
        let outbox = Outbox::new(store, 1000, Arc::new(Health::default())).expect("outbox");
        let s = site("door-1");
        assert_eq!(announce(&HomeAssistantConfig::default(), &s, &outbox, 0).expect("announce"), 0);
        assert_eq!(outbox.depth().expect("depth"), 0, "disabled: nothing");
        let on = HomeAssistantConfig { enabled: true, ..Default::default() };
        let n = announce(&on, &s, &outbox, 0).expect("announce");
        // A restart before the broker took them replaces, not duplicates.
        assert_eq!(announce(&on, &s, &outbox, 1).expect("again"), n);
        let rows = outbox.pending_after(0, 100).expect("pending");
        assert_eq!(rows.len(), n);
        assert!(rows.iter().all(|m| m.retain && m.topic.starts_with("homeassistant/") && m.topic.ends_with("/config")));
    }

    #[test]
    fn the_prefix_is_a_plain_topic() {
        assert!(HomeAssistantConfig::default().validate().is_ok());
        for bad in ["", "/ha", "ha/", "h+a", "ha/#", "a//b"] {
            let c = HomeAssistantConfig { discovery_prefix: bad.into(), ..Default::default() };
            assert_eq!(c.validate().map_err(|e| e.0), Err("homeassistant.discovery_prefix"), "{bad}");
        }
        let c: HomeAssistantConfig = toml::from_str("enabled = true").expect("toml");
        assert_eq!(c.discovery_prefix, "homeassistant");
        assert!(toml::from_str::<HomeAssistantConfig>("prefix = \"x\"").is_err());
    }
}
