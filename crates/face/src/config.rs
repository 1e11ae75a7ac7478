//! The face pipeline's configuration: `[runtime]`, `[face.*]` and `[gallery]`, each checked
//! beside its type. Errors name the key they are about.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A config value out of range: the key (as written in the file) and what is wrong with it.
pub type Invalid = (&'static str, String);

/// `lo <= value <= hi`, or an error naming the key, the value and the bounds. NaN is never in
/// range (every comparison with it is false), so a float key cannot be `nan`.
pub fn in_range<T: PartialOrd + std::fmt::Display>(key: &'static str, value: T, lo: T, hi: T) -> Result<(), Invalid> {
    if lo <= value && value <= hi {
        Ok(())
    } else {
        Err((key, format!("= {value}: must be between {lo} and {hi}")))
    }
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
    /// Cosine similarity at or above which a face may be the enrolled person it resembles most,
    /// for a gallery of up to 10 people; below it the face is unknown.
    pub threshold: f32,
    /// Added to the threshold for every tenfold of gallery size above 10 people: a stranger
    /// compared with more enrolled faces is more likely to come close to one of them.
    pub threshold_per_tenfold: f32,
    /// How far the best person must lead the second best; closer, the face is unknown (split
    /// evidence is no evidence).
    pub margin: f32,
    /// The lead needed over a runner-up marked as this person's look-alike (siblings, twins).
    pub lookalike_margin: f32,
    /// Similarity between two enrolled people's templates at which they count as close
    /// neighbours: a match for either needs `tracking.lookalike_min_votes` at the door.
    pub neighbour_similarity: f32,
}

impl Default for MatcherConfig {
    fn default() -> Self {
        Self {
            threshold: DEFAULT_MATCH_THRESHOLD,
            threshold_per_tenfold: 0.03,
            margin: 0.05,
            lookalike_margin: 0.10,
            neighbour_similarity: LOOKALIKE_SIMILARITY,
        }
    }
}

impl MatcherConfig {
    /// Today's single-threshold rule (no margin, no size term), kept for comparisons.
    pub fn single_threshold(threshold: f32) -> Self {
        Self { threshold, threshold_per_tenfold: 0.0, margin: 0.0, lookalike_margin: 0.0, neighbour_similarity: 2.0 }
    }

    pub fn validate(&self) -> Result<(), Invalid> {
        let t = self.threshold;
        if !(t > 0.0 && t < 1.0) {
            return Err(("face.matcher.threshold", format!("= {t}: must be between 0 and 1 (exclusive)")));
        }
        in_range("face.matcher.threshold_per_tenfold", self.threshold_per_tenfold, 0.0, 0.2)?;
        in_range("face.matcher.margin", self.margin, 0.0, 0.5)?;
        in_range("face.matcher.lookalike_margin", self.lookalike_margin, self.margin, 0.5)
            .map_err(|(k, m)| (k, format!("{m} (and at least face.matcher.margin)")))?;
        in_range("face.matcher.neighbour_similarity", self.neighbour_similarity, 0.0, 1.0)
    }
}

/// Cosine similarity at or above which two different people count as look-alikes: enrolling a
/// face this close to someone else's needs the operator's confirmation, and `dolbom calibrate
/// faces` lists such pairs. On East-Asian faces of one age and styling (as a class of children
/// is) same-person SFace pairs go down to 0.39 while different people reach 0.46: the two overlap
/// around the match threshold (0.40), and a look-alike scoring a little below 0.40 on enrolment
/// photos can pass it on a door frame. 0.35 leaves that much room below the threshold, so a person
/// confirms every pair the matcher could plausibly confuse, at the price of a few confirmations
/// for pairs it would not (most different people score below 0.28, the registry photos' p99).
/// (A configured match threshold below it lowers the level to the threshold: see
/// `enroll::lookalike_level`.)
/// The default of `face.matcher.neighbour_similarity`, which is the level in force: the door
/// asks for more votes for the same pairs enrolment asks to confirm.
pub const LOOKALIKE_SIMILARITY: f32 = 0.35;

/// Measured on the registry test photos (see docs/face-pipeline.md): every same-person pair scored
/// above it and no different-person pair reached it.
pub const DEFAULT_MATCH_THRESHOLD: f32 = 0.40;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GalleryConfig {
    pub path: PathBuf,
    /// The audit log of consents, enrolments and erasures (see `gallery::audit`); default:
    /// beside the gallery, `gallery.json` → `gallery.audit.jsonl`.
    #[serde(default)]
    pub audit_path: Option<PathBuf>,
    /// The key the gallery is sealed with: 64 hex characters in a file only its owner can read,
    /// or `$CREDENTIALS_DIRECTORY/NAME`. Unset: the kiosk unit's `gallery-key` credential when
    /// systemd hands one over, else none (plain JSON, which the kiosk and `dolbom doctor` flag).
    #[serde(default)]
    pub key_file: Option<PathBuf>,
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

impl RuntimeConfig {
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.threads == 0 || self.threads > 64 {
            return Err(("runtime.threads", format!("= {}: must be between 1 and 64", self.threads)));
        }
        Ok(())
    }

    /// A bare library name is left to the dynamic loader's search path.
    pub fn resolve_paths(&mut self, base: &Path) {
        if self.onnxruntime.components().count() > 1 {
            resolve(base, &mut self.onnxruntime);
        }
    }
}

impl FaceConfig {
    pub fn validate(&self) -> Result<(), Invalid> {
        let d = &self.detector;
        if !(64..=4096).contains(&d.max_input_side) {
            return Err((
                "face.detector.max_input_side",
                format!("= {}: must be between 64 and 4096", d.max_input_side),
            ));
        }
        if !(0.0..=1.0).contains(&d.score_threshold) {
            return Err(("face.detector.score_threshold", format!("= {}: must be between 0 and 1", d.score_threshold)));
        }
        if !(0.0..=1.0).contains(&d.nms_threshold) {
            return Err(("face.detector.nms_threshold", format!("= {}: must be between 0 and 1", d.nms_threshold)));
        }
        check_sha256(d.sha256.as_deref()).map_err(|m| ("face.detector.sha256", m))?;
        check_sha256(self.embedder.sha256.as_deref()).map_err(|m| ("face.embedder.sha256", m))?;
        let q = &self.quality;
        // A face bigger than the largest photo side allowed can never be enrolled.
        in_range("face.quality.min_face_px", q.min_face_px, 8.0, 4096.0)?;
        // Sharp photos score in the thousands; far above that nothing would ever pass.
        in_range("face.quality.min_sharpness", q.min_sharpness, 0.0, 100_000.0)?;
        self.matcher.validate()
    }

    pub fn resolve_paths(&mut self, base: &Path) {
        resolve(base, &mut self.detector.model);
        resolve(base, &mut self.embedder.model);
    }
}

impl GalleryConfig {
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.path.as_os_str().is_empty() {
            return Err(("gallery.path", "must not be empty".into()));
        }
        if self.audit_path.as_ref().is_some_and(|p| p.as_os_str().is_empty() || *p == self.path) {
            return Err(("gallery.audit_path", "must be a file of its own, not empty nor the gallery".into()));
        }
        if self.key_file.as_ref().is_some_and(|k| k.as_os_str().is_empty()) {
            return Err(("gallery.key_file", "must not be empty (leave it out for no encryption)".into()));
        }
        Ok(())
    }

    pub fn resolve_paths(&mut self, base: &Path) {
        resolve(base, &mut self.path);
        if let Some(p) = &mut self.audit_path {
            resolve(base, p);
        }
        if let Some(key) = self.key_file.as_mut().filter(|k| !dolbom_secret::is_credential(k)) {
            resolve(base, key);
        }
    }

    /// The gallery's store, sealed with the key this config names (see `key_file`): the one
    /// way the kiosk and the CLI open the gallery.
    pub fn store(&self) -> crate::gallery::GalleryStore {
        match crate::gallery::key::key_spec(self.key_file.as_deref()) {
            Some(key) => crate::gallery::GalleryStore::sealed(&self.path, key),
            None => crate::gallery::GalleryStore::new(&self.path),
        }
    }

    /// The audit log's path, given or by default.
    pub fn audit_path(&self) -> PathBuf {
        self.audit_path.clone().unwrap_or_else(|| crate::gallery::AuditLog::beside(&self.path))
    }
}

/// Relative paths in a config file are relative to the file's own directory.
pub fn resolve(base: &Path, p: &mut PathBuf) {
    if p.is_relative() {
        *p = base.join(&*p);
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
