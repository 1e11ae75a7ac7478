//! The kiosk's TOML file, parsed once into typed structs and validated before anything starts.
//! Each section's type and checks live with the stage that uses it; this file only gathers
//! them, resolves relative paths, and checks what spans sections. Unknown keys are errors (a
//! typo must not silently fall back to a default), and every message names the key.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use dolbom_face::config::{FaceConfig, GalleryConfig, RuntimeConfig};

use crate::attendance::{AttendanceConfig, AttendancePolicy};
use crate::command_gate::CommandsConfig;
use crate::door::DoorScreenConfig;
use crate::outbox::publisher::MqttSection;
use crate::pin::PinConfig;
use crate::retention::RetentionConfig;
use crate::screening::FeverConfig;
use crate::site::{Site, SiteConfig};
use crate::sources::air::config::AirConfig;
use crate::sources::camera::CameraConfig;
use crate::sources::outdoor::OutdoorConfig;
use crate::sources::tag::TagConfig;
use crate::sources::thermal::source::ThermalConfig;
use crate::store::StateConfig;
use crate::vision::{RecognitionConfig, TrackingConfig};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {error}")]
    Read { path: PathBuf, error: std::io::Error },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config file {path}: `{key}` {message}")]
    Invalid { path: PathBuf, key: &'static str, message: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub runtime: RuntimeConfig,
    pub face: FaceConfig,
    pub gallery: GalleryConfig,
    /// Required by `dolbom kiosk` only.
    #[serde(default)]
    pub site: Option<SiteConfig>,
    #[serde(default)]
    pub camera: Option<CameraConfig>,
    #[serde(default)]
    pub tracking: TrackingConfig,
    #[serde(default)]
    pub recognition: RecognitionConfig,
    #[serde(default)]
    pub attendance: AttendanceConfig,
    #[serde(default)]
    pub mqtt: MqttSection,
    #[serde(default)]
    pub state: StateConfig,
    /// The thermal array; absent on a kiosk without one.
    #[serde(default)]
    pub thermal: Option<ThermalConfig>,
    #[serde(default)]
    pub fever: FeverConfig,
    /// Who may send staff commands: signing keys, the age window (see command_gate.rs).
    #[serde(default)]
    pub commands: CommandsConfig,
    /// How long the kiosk database keeps commands, alerts and attendance rows.
    #[serde(default)]
    pub retention: RetentionConfig,
    /// The indoor air sensors; absent on a kiosk without them.
    #[serde(default)]
    pub air: Option<AirConfig>,
    /// Outdoor air and weather from AirKorea and the KMA; absent when not wanted.
    #[serde(default)]
    pub outdoor: Option<OutdoorConfig>,
    /// The 125 kHz tag reader (RDM6300); absent on a kiosk without one.
    #[serde(default)]
    pub tag: Option<TagConfig>,
    /// The PIN input for the door screen (off unless enabled).
    #[serde(default)]
    pub pin: PinConfig,
    /// Home Assistant MQTT discovery (off unless enabled).
    #[serde(default)]
    pub homeassistant: crate::air::HomeAssistantConfig,
    /// The page for the child at the door, served on loopback (off unless enabled).
    #[serde(default)]
    pub door_screen: DoorScreenConfig,
}

impl Config {
    /// Reads, parses and validates a config file. Relative paths inside it are taken relative to
    /// the file's own directory, so a config works from whatever directory the daemon starts in.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|error| ConfigError::Read { path: path.to_path_buf(), error })?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let mut config: Config = toml::from_str(text)
            .map_err(|e| ConfigError::Parse { path: path.to_path_buf(), message: e.to_string() })?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        config.resolve_paths(base);
        config.validate().map_err(|(key, message)| invalid(path, key, message))?;
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        self.runtime.resolve_paths(base);
        self.face.resolve_paths(base);
        self.gallery.resolve_paths(base);
        dolbom_face::config::resolve(base, &mut self.state.dir);
        if let Some(camera) = &mut self.camera {
            camera.resolve_paths(base);
        }
        if let Some(thermal) = &mut self.thermal {
            thermal.resolve_paths(base);
        }
        if let Some(air) = &mut self.air {
            air.resolve_paths(base);
        }
        if let Some(tag) = &mut self.tag {
            tag.resolve_paths(base);
        }
        self.pin.resolve_paths(base);
    }

    fn validate(&self) -> Result<(), (&'static str, String)> {
        self.runtime.validate()?;
        self.face.validate()?;
        self.gallery.validate()?;
        if let Some(site) = &self.site {
            site.validate()?;
        }
        if let Some(camera) = &self.camera {
            camera.validate()?;
        }
        self.mqtt.validate()?;
        self.tracking.validate()?;
        if let Some(thermal) = &self.thermal {
            thermal.validate()?;
        }
        self.fever.validate()?;
        self.commands.validate()?;
        if self.fever.enabled && self.thermal.is_none() {
            return Err(("fever.enabled", "= true needs a [thermal] section describing the sensor".into()));
        }
        self.recognition.validate()?;
        self.state.validate()?;
        self.attendance.validate()?;
        self.retention.validate()?;
        if let Some(air) = &self.air {
            air.validate()?;
        }
        if let Some(outdoor) = &self.outdoor {
            outdoor.validate()?;
        }
        self.homeassistant.validate()?;
        if let Some(tag) = &self.tag {
            tag.validate()?;
        }
        self.pin.validate()?;
        self.door_screen.validate()?;
        Ok(())
    }

    /// The site, for the commands that need one (`kiosk`, `alerts`), or an error naming it.
    pub fn site(&self, path: &Path) -> Result<Site, ConfigError> {
        let site = self.site.as_ref().ok_or_else(|| required("site", path))?;
        site.build().map_err(|(key, message)| invalid(path, key, message))
    }

    /// The time zone consent dates are days in: `site.timezone`, or the system's when the config
    /// has no `[site]` (the face tools run without one).
    pub fn timezone(&self) -> jiff::tz::TimeZone {
        self.site
            .as_ref()
            .and_then(|s| jiff::tz::TimeZone::get(&s.timezone).ok())
            .unwrap_or_else(jiff::tz::TimeZone::system)
    }

    /// The gallery's audit log.
    pub fn audit_log(&self) -> dolbom_face::gallery::AuditLog {
        dolbom_face::gallery::AuditLog::new(self.gallery.audit_path())
    }

    pub fn camera(&self, path: &Path) -> Result<&CameraConfig, ConfigError> {
        self.camera.as_ref().ok_or_else(|| required("camera", path))
    }

    pub fn attendance_policy(&self, site: &Site, path: &Path) -> Result<AttendancePolicy, ConfigError> {
        self.attendance.build(site.tz.clone()).map_err(|(key, message)| invalid(path, key, message))
    }
}

fn invalid(path: &Path, key: &'static str, message: String) -> ConfigError {
    ConfigError::Invalid { path: path.to_path_buf(), key, message }
}

fn required(key: &'static str, path: &Path) -> ConfigError {
    invalid(path, key, "is required by `dolbom kiosk`".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shipped examples: the installed kiosk's and the demo's.
    #[test]
    fn the_shipped_configs_load() {
        let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
        for name in ["kiosk.toml", "sample.toml", "sample-clip.toml", "sample-fever.toml"] {
            Config::load(&config.join(name)).unwrap_or_else(|e| panic!("config/{name}: {e}"));
        }
        // The installed example's commented air sections, uncommented, are a valid config too.
        let text = std::fs::read_to_string(config.join("kiosk.toml")).expect("config/kiosk.toml");
        let (head, air) = text.split_once("\n# Air quality").expect("an air block in config/kiosk.toml");
        // Settings only: a section header or `key = value`, not the prose around them.
        let setting = |r: &&str| {
            r.starts_with('[')
                || r.split_once(" = ").is_some_and(|(k, _)| k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        };
        let air: Vec<&str> = air.lines().filter_map(|l| l.strip_prefix("# ")).filter(setting).collect();
        let air = air.join("\n");
        let c = Config::parse(&format!("{head}\n{air}\n"), &config.join("kiosk.toml"))
            .unwrap_or_else(|e| panic!("config/kiosk.toml with its air sections uncommented: {e}"));
        assert!(c.air.is_some_and(|a| a.pms.is_some() && a.co2.is_some()) && c.homeassistant.enabled);
        assert!(c.outdoor.is_some_and(|o| o.airkorea.is_some() && o.kma.is_some()));
    }

    const MINIMAL: &str = r#"
[face.detector]
kind = "yunet"
model = "m/yunet.onnx"
[face.embedder]
kind = "sface"
model = "m/sface.onnx"
[gallery]
path = "gallery.json"
"#;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("/etc/dolbom/kiosk.toml"))
    }

    #[test]
    fn defaults_and_relative_paths() {
        let c = parse(MINIMAL).expect("minimal config parses");
        assert_eq!(c.face.detector.model, Path::new("/etc/dolbom/m/yunet.onnx"));
        assert_eq!(c.gallery.path, Path::new("/etc/dolbom/gallery.json"));
        assert_eq!(c.runtime.onnxruntime, Path::new("libonnxruntime.so"));
        assert_eq!(c.face.matcher.threshold, dolbom_face::config::DEFAULT_MATCH_THRESHOLD);
        assert_eq!(c.face.detector.max_input_side, 640);
        assert_eq!(c.mqtt.publish.inflight, 16);
    }

    #[test]
    fn unknown_key_is_named() {
        let text = MINIMAL.replace("[gallery]", "[gallery]\npaht = \"x\"");
        let err = parse(&text).expect_err("typo must be rejected").to_string();
        assert!(err.contains("paht"), "{err}");
    }

    #[test]
    fn unknown_mqtt_key_is_named_and_publisher_keys_are_known() {
        let text = format!("{MINIMAL}\n[mqtt]\nhost = \"broker\"\ninflight = 4\nstatus_interval_secs = 5\n");
        let c = parse(&text).expect("broker and publisher keys in one section");
        assert_eq!((c.mqtt.broker.host.as_str(), c.mqtt.publish.inflight), ("broker", 4));
        let err = parse(&format!("{MINIMAL}\n[mqtt]\ninflght = 4\n")).expect_err("typo").to_string();
        assert!(err.contains("inflght") && err.contains("inflight"), "the typo and the key it missed: {err}");
        for (line, key) in [("port = \"1883\"", "port"), ("inflight = \"many\"", "inflight")] {
            let err = parse(&format!("{MINIMAL}\n[mqtt]\n{line}\n")).expect_err("wrong type").to_string();
            assert!(err.contains(&format!("`{key}`")), "the message names `{key}`: {err}");
        }
    }

    #[test]
    fn out_of_range_value_names_the_key() {
        let text = format!("{MINIMAL}\n[face.matcher]\nthreshold = 1.5\n");
        let err = parse(&text).expect_err("threshold 1.5 must be rejected").to_string();
        assert!(err.contains("face.matcher.threshold"), "{err}");
    }

    #[test]
    fn unknown_model_kind_is_rejected() {
        let text = MINIMAL.replace("kind = \"yunet\"", "kind = \"retinaface\"");
        let err = parse(&text).expect_err("unknown kind").to_string();
        assert!(err.contains("retinaface"), "{err}");
    }

    #[test]
    fn bad_sha256_names_the_key() {
        let text = MINIMAL.replace("model = \"m/sface.onnx\"", "model = \"m/sface.onnx\"\nsha256 = \"abc\"");
        let err = parse(&text).expect_err("short sha").to_string();
        assert!(err.contains("face.embedder.sha256"), "{err}");
    }

    /// Every numeric key, with values that must be refused: zero, negative, huge, and for floats
    /// NaN and infinities. The error names the key: a range error its dotted name, a type error
    /// (a negative or too-large integer for an unsigned key) shows the offending line.
    #[test]
    fn every_number_is_bounded_and_the_error_names_the_key() {
        const UINT: &[&str] = &["0", "-1", "99999999999"];
        const UINT0: &[&str] = &["-1", "99999999999"];
        const FLOAT: &[&str] = &["nan", "inf", "-inf", "1e300", "-1e300"];
        const FLOAT0: &[&str] = &["nan", "inf", "-inf", "1e300", "-1e300", "0"];
        let thermal: &[&str] = &["device = \"csv\"", "port = \"/dev/ttyUSB0\""];
        let camera: &[&str] = &["kind = \"v4l2\"", "source = \"/dev/video0\""];
        let air: &[&str] = &["pms = { port = \"/dev/ttyUSB1\", model = \"pms5003\" }"];
        let air_pms: &[&str] = &["port = \"/dev/ttyUSB1\"", "model = \"pms5003\""];
        let air_co2: &[&str] = &["port = \"/dev/ttyAMA0\""];
        let blackbody: &[&str] = &["x = 0", "y = 0", "width = 2", "height = 2", "temperature_c = 35.0"];
        let cases: &[(&str, &[&str], &str, &[&str])] = &[
            ("runtime", &[], "threads", UINT),
            ("face.detector", &[], "max_input_side", &["0", "63", "4097", "-1"]),
            ("face.detector", &[], "score_threshold", FLOAT),
            ("face.detector", &[], "nms_threshold", FLOAT),
            ("face.quality", &[], "min_face_px", FLOAT0),
            ("face.quality", &[], "min_sharpness", FLOAT),
            ("face.matcher", &[], "threshold", &["nan", "inf", "-1e300", "0", "1"]),
            ("camera", camera, "width", &["0", "8193", "-1"]),
            ("camera", camera, "height", &["0", "8193", "-1"]),
            ("camera", camera, "fps", FLOAT0),
            ("camera", camera, "retry_initial_ms", UINT),
            ("camera", camera, "retry_max_ms", &["0", "3600001", "-1"]),
            ("tracking", &[], "iou_match", FLOAT0),
            ("tracking", &[], "lost_after_ms", UINT),
            ("tracking", &[], "min_face_px", FLOAT0),
            ("tracking", &[], "max_yaw_ratio", FLOAT0),
            ("tracking", &[], "min_votes", UINT),
            ("tracking", &[], "unknown_grace_ms", UINT0),
            ("tracking", &[], "unknown_min_attempts", UINT),
            ("tracking", &[], "max_attempts", UINT),
            ("tracking", &[], "reverify_ms", UINT),
            ("recognition", &[], "min_sharpness", FLOAT),
            ("recognition", &[], "settled_detect_interval", UINT),
            ("recognition", &[], "motion_threshold", FLOAT),
            ("attendance", &[], "min_stay_minutes", &["-1", "1441", "99999999999"]),
            ("attendance", &[], "cooldown_minutes", &["-1", "1441", "99999999999"]),
            ("state", &[], "outbox_capacity", &["0", "9", "10000001", "-1"]),
            ("thermal", thermal, "baud", &["0", "-1", "1", "115201", "99999999999"]),
            ("thermal", thermal, "width", &["0", "257", "-1", "99999999999"]),
            ("thermal", thermal, "height", &["0", "257", "-1", "99999999999"]),
            ("thermal", thermal, "max_age_ms", UINT),
            ("thermal", thermal, "retry_max_ms", UINT),
            ("thermal", thermal, "frozen_frames", &["0", "1", "1001", "-1"]),
            ("thermal", thermal, "rate_code", &["256", "-1"]),
            ("fever", &[], "threshold_c", FLOAT0),
            ("fever", &[], "borderline_c", FLOAT),
            ("fever", &[], "readings", UINT),
            ("fever", &[], "consistency_c", FLOAT0),
            ("fever", &[], "decision_timeout_ms", UINT),
            ("fever", &[], "min_pixels", UINT),
            ("fever", &[], "min_eye_thermal_px", FLOAT0),
            ("fever", &[], "percentile", FLOAT0),
            ("fever", &[], "site_offset_c", &["nan", "inf", "-inf", "1e300", "-1e300", "5"]),
            ("fever", &[], "distance_coeff_c_per_m", FLOAT),
            ("fever", &[], "reference_distance_m", FLOAT0),
            ("fever", &[], "eye_px_at_1m", FLOAT0),
            ("fever", &[], "ambient_coeff", FLOAT),
            ("fever", &[], "reference_ambient_c", FLOAT),
            ("fever", &[], "calibration", &["[0.05, 0.0, nan, 0.0, 0.05, 0.0]", "[1e300, 0.0, 0.0, 0.0, 1e300, 0.0]"]),
            ("fever", &[], "canthus_min_eye_thermal_px", FLOAT0),
            ("fever.reference", &[], "window", &["0", "4", "1001", "-1", "99999999999"]),
            ("fever.reference", &[], "min_count", &["0", "2", "26", "-1", "99999999999"]),
            ("fever.reference", &[], "population_c", FLOAT0),
            ("fever.reference", &[], "max_spread_c", FLOAT0),
            ("fever.reference", &[], "max_offset_c", FLOAT0),
            ("fever.reference", &[], "outlier_mads", FLOAT0),
            ("fever.reference", &[], "cold_margin_c", FLOAT0),
            ("fever.reference", &[], "untrusted_band_c", FLOAT),
            ("fever.reference", &[], "untrusted_band_per_c", FLOAT),
            ("fever.reference", &[], "session_gap_min", UINT),
            ("fever.blackbody", blackbody, "x", &["-1", "1024", "99999999999"]),
            ("fever.blackbody", blackbody, "y", &["-1", "1024", "99999999999"]),
            ("fever.blackbody", blackbody, "width", &["0", "65", "-1"]),
            ("fever.blackbody", blackbody, "height", &["0", "65", "-1"]),
            ("fever.blackbody", blackbody, "temperature_c", FLOAT0),
            ("air", air, "window_secs", &["0", "3601", "-1", "99999999999"]),
            ("air", air, "retry_max_ms", &["0", "99", "3600001", "-1"]),
            ("air", air, "telemetry_secs", &["0", "3601", "-1", "99999999999"]),
            ("air.limits", &[], "pm10", FLOAT0),
            ("air.limits", &[], "pm25", FLOAT0),
            ("air.limits", &[], "co2", &["nan", "inf", "-inf", "0", "399", "10001"]),
            ("air.limits", &[], "hcho", FLOAT0),
            ("air.limits", &[], "hysteresis_pct", &["nan", "inf", "-1", "51"]),
            ("air.limits", &[], "min_duration_secs", &["-1", "86401", "99999999999"]),
            ("air.pms", air_pms, "baud", &["0", "-1", "1", "115201", "99999999999"]),
            ("air.pms", air_pms, "poll_secs", &["0", "61", "-1", "99999999999"]),
            ("air.co2", air_co2, "baud", &["0", "-1", "1", "115201", "99999999999"]),
            ("air.co2", air_co2, "range_ppm", &["0", "1000", "3000", "10001", "-1", "65536"]),
            ("air.co2", air_co2, "preheat_secs", &["1801", "-1", "99999999999"]),
            ("air.co2", air_co2, "poll_secs", &["0", "61", "-1", "99999999999"]),
            ("retention", &[], "commands_days", &["0", "3651", "-1", "99999999999"]),
            ("retention", &[], "alerts_days", &["0", "3651", "-1", "99999999999"]),
            ("retention", &[], "attendance_days", &["0", "3651", "-1", "99999999999"]),
            ("outdoor", &[], "poll_minutes", &["0", "14", "61", "-1", "99999999999"]),
            ("outdoor", &[], "timeout_secs", &["0", "61", "-1", "99999999999"]),
            ("outdoor.kma", &["nx = 60", "ny = 127"], "nx", &["0", "150", "-1", "99999"]),
            ("outdoor.kma", &["nx = 60", "ny = 127"], "ny", &["0", "254", "-1", "99999"]),
            ("outdoor.kma", &["lat = 37.5", "lon = 127.0"], "lat", &["nan", "inf", "-inf", "1e300", "0", "-37.5"]),
            ("outdoor.kma", &["lat = 37.5", "lon = 127.0"], "lon", &["nan", "inf", "-inf", "1e300", "0", "-127.0"]),
        ];
        for (section, required, key, values) in cases {
            for value in *values {
                let mut lines: Vec<String> =
                    required.iter().filter(|l| !l.starts_with(&format!("{key} "))).map(|l| l.to_string()).collect();
                lines.push(format!("{key} = {value}"));
                let header = format!("[{section}]\n");
                let text = if MINIMAL.contains(&header) {
                    MINIMAL.replace(&header, &format!("{header}{}\n", lines.join("\n")))
                } else {
                    format!("{MINIMAL}\n{header}{}\n", lines.join("\n"))
                };
                let full = format!("{section}.{key}");
                match parse(&text) {
                    Ok(_) => panic!("{full} = {value} was accepted"),
                    Err(ConfigError::Invalid { key: named, message, .. }) => {
                        assert_eq!(named, full, "{full} = {value}: {message}");
                    }
                    Err(e @ ConfigError::Parse { .. }) => {
                        let e = e.to_string();
                        assert!(e.contains(&format!("{key} = {value}")), "{full} = {value}: {e}");
                    }
                    Err(e) => panic!("{full} = {value}: {e}"),
                }
            }
        }
        // And the defaults, with the required keys, are all in range.
        let text = format!("{MINIMAL}\n[thermal]\n{}\n[camera]\n{}\n", thermal.join("\n"), camera.join("\n"));
        parse(&text).expect("defaults are valid");
        let text = format!("{MINIMAL}\n[air.pms]\n{}\n[air.co2]\n{}\n", air_pms.join("\n"), air_co2.join("\n"));
        let air = parse(&text).expect("air defaults are valid").air.expect("[air]");
        assert_eq!((air.window_secs, air.retry_max_ms, air.humidity_correction), (60, 10_000, false));
        let co2 = air.co2.expect("[air.co2]");
        assert_eq!((co2.baud, co2.range_ppm, co2.abc, co2.preheat_secs, co2.poll_secs), (9600, 5000, None, 180, 5));
        let pms = air.pms.expect("[air.pms]");
        assert_eq!((pms.baud, pms.mode, pms.poll_secs), (9600, crate::sources::air::config::PmsMode::Passive, 2));
    }

    #[test]
    fn cross_section_rules_name_the_key() {
        let text = format!("{MINIMAL}\n[fever]\nenabled = true\n");
        let err = parse(&text).expect_err("fever without thermal").to_string();
        assert!(err.contains("fever.enabled"), "{err}");
        let text = format!("{MINIMAL}\n[attendance]\ndeparture_window = [\"20:00\", \"15:00\"]\n");
        let err = parse(&text).expect_err("window backwards").to_string();
        assert!(err.contains("attendance.departure_window"), "{err}");
        let cases = [
            ("[air]\nwindow_secs = 30\n", "`air`"),
            ("[air.pms]\nport = \" \"\nmodel = \"pms5003\"\n", "air.pms.port"),
            ("[air.co2]\nport = \"\"\n", "air.co2.port"),
            (
                "[air]\nhumidity_correction = true\n[air.pms]\nport = \"p\"\nmodel = \"pms7003\"\n",
                "air.humidity_correction",
            ),
            ("[air]\nwindow_secs = 4\n[air.co2]\nport = \"p\"\n", "air.co2.poll_secs"),
            ("[air.pms]\nport = \"p\"\nmodel = \"pms9000\"\n", "pms9000"),
            ("[air.pms]\nport = \"p\"\nmodel = \"pms5003\"\nmode = \"lazy\"\n", "lazy"),
            ("[air.co2]\nport = \"p\"\nlimits = 3\n", "limits"),
        ];
        for (section, named) in cases {
            let err = parse(&format!("{MINIMAL}\n{section}")).expect_err(section).to_string();
            assert!(err.contains(named), "{section}: {err}");
        }
        let text = format!(
            "{MINIMAL}\n[air]\nhumidity_correction = true\n[air.pms]\nport = \"tty/pms\"\nmodel = \"pms5003st\"\n"
        );
        let air = parse(&text).expect("humidity correction with a PMS5003ST").air.expect("[air]");
        assert_eq!(air.pms.map(|p| p.port).as_deref(), Some("/etc/dolbom/tty/pms"), "relative to the config file");
    }
}
