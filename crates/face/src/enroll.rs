//! Enrolment: turning a few photos of a person into gallery embeddings. Every photo must show
//! exactly one face, big and sharp enough; one bad photo rejects the whole enrolment, so the
//! gallery never changes half-way. Only embeddings are kept, never the photos.

use std::path::{Path, PathBuf};

use crate::config::QualityConfig;
use crate::gallery::{GalleryError, GalleryStore, Role, StoreError};
use crate::identify::FacePipeline;
use crate::image::{load_bgr, ImageError};
use crate::{quality, Embedding, FaceError};

#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("{path}: no face found; use a photo where the face is clearly visible")]
    NoFace { path: PathBuf },
    #[error("{path}: {count} faces found; use a photo of this person alone")]
    SeveralFaces { path: PathBuf, count: usize },
    #[error("{path}: the face is too small ({size:.0} px, at least {min:.0} px needed); use a closer or larger photo")]
    TooSmall { path: PathBuf, size: f32, min: f32 },
    #[error(
        "{path}: the face is too blurry (sharpness {sharpness:.0}, at least {min:.0} needed); use a sharper photo"
    )]
    Blurry { path: PathBuf, sharpness: f64, min: f64 },
    #[error("{path}: {error}")]
    Face { path: PathBuf, error: FaceError },
    #[error("no photos given")]
    NoPhotos,
    #[error(transparent)]
    Gallery(#[from] GalleryError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A photo that passed the checks.
#[derive(Debug, Clone)]
pub struct AcceptedPhoto {
    pub path: PathBuf,
    pub embedding: Embedding,
    pub face_px: f32,
    pub sharpness: f64,
}

/// Checks one photo and embeds its face.
pub fn embed_photo(
    pipeline: &mut FacePipeline,
    quality: &QualityConfig,
    path: &Path,
) -> Result<AcceptedPhoto, EnrollError> {
    let image = load_bgr(path)?;
    let with_path = |error| EnrollError::Face { path: path.to_path_buf(), error };
    let mut faces = pipeline.analyze(&image).map_err(with_path)?;
    let face = match faces.len() {
        0 => return Err(EnrollError::NoFace { path: path.to_path_buf() }),
        1 => faces.remove(0),
        count => return Err(EnrollError::SeveralFaces { path: path.to_path_buf(), count }),
    };
    let face_px = quality::face_size(&face.detection);
    if face_px < quality.min_face_px {
        return Err(EnrollError::TooSmall { path: path.to_path_buf(), size: face_px, min: quality.min_face_px });
    }
    let sharpness = quality::sharpness(&face.aligned).map_err(with_path)?;
    if sharpness < quality.min_sharpness {
        return Err(EnrollError::Blurry { path: path.to_path_buf(), sharpness, min: quality.min_sharpness });
    }
    Ok(AcceptedPhoto { path: path.to_path_buf(), embedding: face.embedding, face_px, sharpness })
}

/// What an enrolment did, for the CLI to report.
#[derive(Debug)]
pub struct EnrollReport {
    pub photos: Vec<AcceptedPhoto>,
    pub total_embeddings: usize,
    /// Photos that resemble the person's other photos less than the match threshold: possibly a
    /// wrong photo. Reported, not refused: children's faces change and photos age.
    pub inconsistent: Vec<(PathBuf, f32)>,
    /// Someone else already enrolled whom these photos match: possibly a duplicate enrolment.
    pub resembles: Option<(String, f32)>,
}

pub struct Enrollment<'a> {
    pub id: &'a str,
    pub role: Role,
    pub name: &'a str,
    pub photos: &'a [PathBuf],
}

/// Embeds every photo, then adds them to the gallery in one atomic update.
pub fn enroll(
    pipeline: &mut FacePipeline,
    quality: &QualityConfig,
    store: &GalleryStore,
    request: &Enrollment<'_>,
    now: u64,
) -> Result<EnrollReport, EnrollError> {
    if request.photos.is_empty() {
        return Err(EnrollError::NoPhotos);
    }
    crate::gallery::validate_id(request.id)?;
    // Before the photos are read: a bad name should not cost a minute of embedding.
    crate::gallery::validate_name(request.name)?;
    let photos = request.photos.iter().map(|p| embed_photo(pipeline, quality, p)).collect::<Result<Vec<_>, _>>()?;
    let model_id = pipeline.models.embedder.model_id().to_string();
    let threshold = pipeline.matcher.config().threshold;
    store.update(|gallery| {
        let existing: Vec<Embedding> = gallery.get(request.id).map(|p| p.embeddings.clone()).unwrap_or_default();
        let mut inconsistent = Vec::new();
        for (i, photo) in photos.iter().enumerate() {
            let others =
                existing.iter().chain(photos.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, p)| &p.embedding));
            let best = others.map(|e| e.similarity(&photo.embedding)).fold(f32::NEG_INFINITY, f32::max);
            if best.is_finite() && best < threshold {
                inconsistent.push((photo.path.clone(), best));
            }
        }
        let resembles = gallery
            .people
            .iter()
            .filter(|p| p.id != request.id)
            .filter_map(|p| {
                let s = photos
                    .iter()
                    .flat_map(|ph| p.embeddings.iter().map(|e| e.similarity(&ph.embedding)))
                    .fold(f32::NEG_INFINITY, f32::max);
                (s >= threshold).then(|| (p.id.clone(), s))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let embeddings = photos.iter().map(|p| p.embedding.clone()).collect();
        gallery.enroll(request.id, request.role, request.name, embeddings, &model_id, now)?;
        let total_embeddings = gallery.get(request.id).map_or(0, |p| p.embeddings.len());
        Ok(EnrollReport { photos: photos.clone(), total_embeddings, inconsistent, resembles })
    })
}
