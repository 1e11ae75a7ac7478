//! The one TOML configuration file, parsed once into typed structs and validated before anything
//! starts. Unknown keys are errors (a typo must not silently fall back to a default), and every
//! validation message names the key it is about.

use std::path::{Path, PathBuf};

use serde::Deserialize;

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
        Ok(())
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
