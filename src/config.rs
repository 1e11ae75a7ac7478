//! The one TOML configuration file, parsed once into typed structs and validated before anything
//! starts. Unknown keys are errors (a typo must not silently fall back to a default), and every
//! validation message names the key it is about.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::attendance::{AttendancePolicy, KioskMode};
use crate::camera::CameraConfig;
use crate::fever::FeverConfig;
use crate::mqtt::MqttConfig;
use crate::thermal::source::ThermalConfig;
use crate::track::TrackingConfig;
use crate::vision::RecognitionConfig;

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
    pub mqtt: MqttConfig,
    #[serde(default)]
    pub state: StateConfig,
    /// The thermal array; absent on a kiosk without one.
    #[serde(default)]
    pub thermal: Option<ThermalConfig>,
    #[serde(default)]
    pub fever: FeverConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    /// Appears in MQTT topics: letters, digits, '-', '_' and '.'.
    pub center_id: String,
    pub kiosk_id: String,
    /// IANA time zone of the center, e.g. "Asia/Seoul": days and event times are in it.
    pub timezone: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AttendanceConfig {
    pub mode: KioskMode,
    pub min_stay_minutes: u64,
    pub cooldown_minutes: u64,
    /// Local pick-up window, e.g. ["15:00", "20:00"]: a sighting in it is a departure.
    pub departure_window: Option<[String; 2]>,
}

impl Default for AttendanceConfig {
    fn default() -> Self {
        Self { mode: KioskMode::Both, min_stay_minutes: 120, cooldown_minutes: 10, departure_window: None }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    /// Holds kiosk.db (outbox and attendance book) and status.json.
    pub dir: PathBuf,
    /// Events the outbox holds at most before dropping the least valuable.
    pub outbox_capacity: u64,
}

impl Default for StateConfig {
    fn default() -> Self {
        Self { dir: PathBuf::from("/var/lib/dolbom"), outbox_capacity: 100_000 }
    }
}

/// Everything `dolbom kiosk` needs beyond the face pipeline, checked together.
pub struct KioskSettings<'a> {
    pub site: &'a SiteConfig,
    pub camera: &'a CameraConfig,
    pub policy: AttendancePolicy,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Path of the ONNX Runtime shared library. A bare file name is looked up by the dynamic loader.
    pub onnxruntime: PathBuf,
    /// Threads per model for ONNX Runtime's intra-op pool.
    pub threads: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self { onnxruntime: PathBuf::from("libonnxruntime.so"), threads: 2 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaceConfig {
    pub detector: DetectorConfig,
    pub embedder: EmbedderConfig,
    #[serde(default)]
    pub quality: QualityConfig,
    #[serde(default)]
    pub matcher: MatcherConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DetectorKind {
    Yunet,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorConfig {
    pub kind: DetectorKind,
    pub model: PathBuf,
    #[serde(default)]
    pub sha256: Option<String>,
    /// Images are scaled down so their longest side is at most this many pixels before detection.
    #[serde(default = "default_max_input_side")]
    pub max_input_side: u32,
    #[serde(default = "default_score_threshold")]
    pub score_threshold: f32,
    #[serde(default = "default_nms_threshold")]
    pub nms_threshold: f32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmbedderKind {
    Sface,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedderConfig {
    pub kind: EmbedderKind,
    pub model: PathBuf,
    #[serde(default)]
    pub sha256: Option<String>,
}

/// What a photo must satisfy to be enrolled.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QualityConfig {
    /// Shorter side of the face box, in pixels of the original photo.
    pub min_face_px: f32,
    /// Variance of the Laplacian of the aligned 112x112 grey face crop; lower is blurrier. Sharp
    /// photos score in the thousands; 300 rejects a 250 px face blurred with a 8 px Gaussian.
    pub min_sharpness: f64,
}

impl Default for QualityConfig {
    fn default() -> Self {
        Self { min_face_px: 80.0, min_sharpness: 300.0 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MatcherConfig {
    /// Cosine similarity at or above which a face is the enrolled person; below it the face is unknown.
    pub threshold: f32,
}

impl Default for MatcherConfig {
    fn default() -> Self {
        Self { threshold: DEFAULT_MATCH_THRESHOLD }
    }
}

/// Measured on the registry test photos (see docs/face-pipeline.md): every same-person pair scored
/// above it and no different-person pair reached it.
pub const DEFAULT_MATCH_THRESHOLD: f32 = 0.40;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GalleryConfig {
    pub path: PathBuf,
}

fn default_max_input_side() -> u32 {
    640
}
fn default_score_threshold() -> f32 {
    0.9
}
fn default_nms_threshold() -> f32 {
    0.3
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
        config.validate(path)?;
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        // A bare library name is left to the dynamic loader's search path.
        if self.runtime.onnxruntime.components().count() > 1 {
            resolve(&mut self.runtime.onnxruntime);
        }
        resolve(&mut self.face.detector.model);
        resolve(&mut self.face.embedder.model);
        resolve(&mut self.gallery.path);
        resolve(&mut self.state.dir);
        if let Some(camera) = &mut self.camera {
            camera.resolve_paths(base);
        }
        if let Some(thermal) = &mut self.thermal {
            if !thermal.port.starts_with('/') {
                thermal.port = base.join(&thermal.port).display().to_string();
            }
        }
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid =
            |key: &'static str, message: String| ConfigError::Invalid { path: path.to_path_buf(), key, message };
        if self.runtime.threads == 0 || self.runtime.threads > 64 {
            return Err(invalid("runtime.threads", format!("= {}: must be between 1 and 64", self.runtime.threads)));
        }
        let d = &self.face.detector;
        if !(64..=4096).contains(&d.max_input_side) {
            return Err(invalid(
                "face.detector.max_input_side",
                format!("= {}: must be between 64 and 4096", d.max_input_side),
            ));
        }
        if !(0.0..=1.0).contains(&d.score_threshold) {
            return Err(invalid(
                "face.detector.score_threshold",
                format!("= {}: must be between 0 and 1", d.score_threshold),
            ));
        }
        if !(0.0..=1.0).contains(&d.nms_threshold) {
            return Err(invalid(
                "face.detector.nms_threshold",
                format!("= {}: must be between 0 and 1", d.nms_threshold),
            ));
        }
        check_sha256(d.sha256.as_deref()).map_err(|m| invalid("face.detector.sha256", m))?;
        check_sha256(self.face.embedder.sha256.as_deref()).map_err(|m| invalid("face.embedder.sha256", m))?;
        let q = &self.face.quality;
        if !(q.min_face_px >= 8.0 && q.min_face_px.is_finite()) {
            return Err(invalid("face.quality.min_face_px", format!("= {}: must be at least 8", q.min_face_px)));
        }
        if !(q.min_sharpness >= 0.0 && q.min_sharpness.is_finite()) {
            return Err(invalid("face.quality.min_sharpness", format!("= {}: must be 0 or more", q.min_sharpness)));
        }
        let t = self.face.matcher.threshold;
        if !(t > 0.0 && t < 1.0) {
            return Err(invalid("face.matcher.threshold", format!("= {t}: must be between 0 and 1 (exclusive)")));
        }
        if self.gallery.path.as_os_str().is_empty() {
            return Err(invalid("gallery.path", "must not be empty".into()));
        }
        if let Some(site) = &self.site {
            for (key, v) in [("site.center_id", &site.center_id), ("site.kiosk_id", &site.kiosk_id)] {
                if crate::gallery::validate_id(v).is_err() {
                    return Err(invalid(key, format!("= \"{v}\": use 1 to 64 letters, digits, '-', '_' or '.'")));
                }
            }
            jiff::tz::TimeZone::get(&site.timezone)
                .map_err(|e| invalid("site.timezone", format!("= \"{}\": {e}", site.timezone)))?;
        }
        if let Some(camera) = &self.camera {
            camera.validate().map_err(|(k, m)| invalid(k, m))?;
        }
        self.mqtt.validate().map_err(|(k, m)| invalid(k, m))?;
        let t = &self.tracking;
        if !(0.0..1.0).contains(&t.iou_match) || t.iou_match == 0.0 {
            return Err(invalid("tracking.iou_match", format!("= {}: must be between 0 and 1", t.iou_match)));
        }
        if t.min_votes == 0 || t.max_attempts < t.min_votes || t.max_attempts < t.unknown_min_attempts {
            return Err(invalid(
                "tracking.max_attempts",
                "must be at least tracking.min_votes and tracking.unknown_min_attempts; min_votes at least 1".into(),
            ));
        }
        if let Some(thermal) = &self.thermal {
            thermal.validate().map_err(|(k, m)| invalid(k, m))?;
        }
        self.fever.validate().map_err(|(k, m)| invalid(k, m))?;
        if self.fever.enabled && self.thermal.is_none() {
            return Err(invalid("fever.enabled", "= true needs a [thermal] section describing the sensor".into()));
        }
        if self.recognition.settled_detect_interval == 0 {
            return Err(invalid("recognition.settled_detect_interval", "must be at least 1".into()));
        }
        if self.state.outbox_capacity < 10 {
            return Err(invalid(
                "state.outbox_capacity",
                format!("= {}: must be at least 10", self.state.outbox_capacity),
            ));
        }
        if let Some([from, to]) = &self.attendance.departure_window {
            let parse = |v: &str| v.parse::<jiff::civil::Time>();
            match (parse(from), parse(to)) {
                (Ok(a), Ok(b)) if a < b => {}
                _ => {
                    return Err(invalid(
                        "attendance.departure_window",
                        format!("= [\"{from}\", \"{to}\"]: two local times \"HH:MM\", the first earlier"),
                    ))
                }
            }
        }
        Ok(())
    }

    /// The sections `dolbom kiosk` needs, or an error naming the first one missing.
    pub fn kiosk(&self, path: &Path) -> Result<KioskSettings<'_>, ConfigError> {
        let missing = |key: &'static str| ConfigError::Invalid {
            path: path.to_path_buf(),
            key,
            message: "is required by `dolbom kiosk`".into(),
        };
        let site = self.site.as_ref().ok_or_else(|| missing("site"))?;
        let camera = self.camera.as_ref().ok_or_else(|| missing("camera"))?;
        // Both were checked by validate(); these cannot fail here.
        let tz = jiff::tz::TimeZone::get(&site.timezone).map_err(|_| missing("site.timezone"))?;
        let window =
            self.attendance.departure_window.as_ref().and_then(|[a, b]| Some((a.parse().ok()?, b.parse().ok()?)));
        let a = &self.attendance;
        let policy = AttendancePolicy {
            mode: a.mode,
            min_stay_ms: (a.min_stay_minutes * 60_000) as i64,
            cooldown_ms: (a.cooldown_minutes * 60_000) as i64,
            departure_window: window,
            tz,
        };
        Ok(KioskSettings { site, camera, policy })
    }
}

fn check_sha256(value: Option<&str>) -> Result<(), String> {
    match value {
        Some(v) if v.len() != 64 || !v.chars().all(|c| c.is_ascii_hexdigit()) => {
            Err(format!("= \"{v}\": must be 64 hexadecimal digits"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(c.face.matcher.threshold, DEFAULT_MATCH_THRESHOLD);
        assert_eq!(c.face.detector.max_input_side, 640);
    }

    #[test]
    fn unknown_key_is_named() {
        let text = MINIMAL.replace("[gallery]", "[gallery]\npaht = \"x\"");
        let err = parse(&text).expect_err("typo must be rejected").to_string();
        assert!(err.contains("paht"), "{err}");
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
}
