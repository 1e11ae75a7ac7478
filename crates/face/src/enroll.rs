//! Enrolment: turning a few photos of a person into gallery embeddings. Every photo must show
//! exactly one face, big and sharp enough; one bad photo rejects the whole enrolment, so the
//! gallery never changes half-way. Only embeddings are kept, never the photos.
//!
//! Every enrolment is compared with everyone already enrolled: the nearest other person is
//! reported, and a face as close as a look-alike ([`LOOKALIKE_SIMILARITY`]) is only enrolled when
//! the operator confirms the pair (siblings, twins), which marks it in the gallery.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::QualityConfig;
use crate::gallery::{
    printable, Action, AuditError, AuditLog, Entry, Gallery, GalleryError, GalleryStore, Role, StoreError,
};
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
    #[error(
        "`{id}` looks like `{other}` ({other_name}), who is already enrolled: similarity {similarity:.2}, at or above \
         the look-alike level {level:.2}. If they are siblings or twins, enrol again with `--lookalike-of {other}`; \
         if this is the same person, add the photos to `{other}` instead.\n\
         `{id}`의 사진이 이미 등록된 `{other}`({other_name})와(과) 매우 닮았습니다(유사도 {similarity:.2}, 닮은꼴 기준 \
         {level:.2}). 형제자매나 쌍둥이라면 `--lookalike-of {other}`를 붙여 다시 등록하고, 같은 사람이라면 `{other}`에 \
         사진을 추가하세요."
    )]
    LookalikeNotConfirmed { id: String, other: String, other_name: String, similarity: f32, level: f32 },
    #[error("--lookalike-of `{0}`: no person with this id is enrolled / `{0}` 아이디로 등록된 사람이 없습니다")]
    UnknownLookalike(String),
    #[error("--lookalike-of `{0}`: a person cannot be their own look-alike / 자기 자신을 닮은꼴로 지정할 수 없습니다")]
    LookalikeOfSelf(String),
    #[error(transparent)]
    Gallery(#[from] GalleryError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Audit(#[from] AuditError),
}

pub use crate::config::LOOKALIKE_SIMILARITY;

/// Photos per person that recognise best: frontal and slightly turned, as children walk up.
pub const RECOMMENDED_PHOTOS: RangeInclusive<usize> = 3..=5;

/// The look-alike level in force: a face that the matcher would already take for someone else
/// (similarity at or above `match_threshold`) is always a look-alike, whatever the constant.
pub fn lookalike_level(matcher: &crate::config::MatcherConfig) -> f32 {
    matcher.neighbour_similarity.min(matcher.threshold)
}

/// Someone already enrolled, and how close a new face comes to them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Neighbour {
    pub id: String,
    pub name: String,
    /// Highest cosine similarity over every pair of (new embedding, their embedding).
    pub similarity: f32,
}

/// Every enrolled person other than `id` with their highest similarity to any of `embeddings`,
/// most similar first. People without embeddings are left out.
pub fn neighbours(gallery: &Gallery, id: &str, embeddings: &[Embedding]) -> Vec<Neighbour> {
    let mut out: Vec<Neighbour> = gallery
        .people
        .iter()
        .filter(|p| p.id != id)
        .filter_map(|p| {
            let similarity = embeddings
                .iter()
                .flat_map(|new| p.embeddings.iter().map(|e| e.similarity(new)))
                .fold(f32::NEG_INFINITY, f32::max);
            similarity.is_finite().then(|| Neighbour { id: p.id.clone(), name: p.name.clone(), similarity })
        })
        .collect();
    out.sort_by(|a, b| b.similarity.total_cmp(&a.similarity).then_with(|| a.id.cmp(&b.id)));
    out
}

/// The enrolled person other than `id` nearest to `embeddings`, if anyone else is enrolled.
pub fn nearest_other(gallery: &Gallery, id: &str, embeddings: &[Embedding]) -> Option<Neighbour> {
    neighbours(gallery, id, embeddings).into_iter().next()
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
    /// The enrolled person (other than this one) nearest to these photos.
    pub nearest: Option<Neighbour>,
    /// Look-alike level used (see [`lookalike_level`]).
    pub lookalike_level: f32,
    /// People newly marked as look-alikes of this one by this enrolment.
    pub marked: Vec<String>,
}

pub struct Enrollment<'a> {
    pub id: &'a str,
    pub role: Role,
    pub name: &'a str,
    pub photos: &'a [PathBuf],
}

/// Who enrols and when: the time in the site's time zone (a child's consent must be in force on
/// that day), the staff id, and the audit log the enrolment is recorded in.
pub struct Enroller<'a> {
    pub now: &'a jiff::ZonedDateTime,
    pub by: &'a str,
    pub audit: &'a AuditLog,
}

impl Enroller<'_> {
    fn secs(&self) -> u64 {
        u64::try_from(self.now.timestamp().as_second()).unwrap_or(0)
    }
}

/// Embeds every photo, then adds them to the gallery in one atomic update. Refused when the
/// photos come as close as a look-alike to someone enrolled: see [`enroll_lookalike`].
pub fn enroll(
    pipeline: &mut FacePipeline,
    quality: &QualityConfig,
    store: &GalleryStore,
    request: &Enrollment<'_>,
    who: &Enroller<'_>,
) -> Result<EnrollReport, EnrollError> {
    enroll_lookalike(pipeline, quality, store, request, &[], who)
}

/// [`enroll`], with the people the operator confirms this one looks like (`--lookalike-of`):
/// every enrolled person at or above the look-alike level must be among them (or already marked),
/// and all of them are marked as look-alikes of this one. The check and the marks happen under the
/// gallery's lock, so two enrolments at once cannot both miss each other.
pub fn enroll_lookalike(
    pipeline: &mut FacePipeline,
    quality: &QualityConfig,
    store: &GalleryStore,
    request: &Enrollment<'_>,
    lookalike_of: &[String],
    who: &Enroller<'_>,
) -> Result<EnrollReport, EnrollError> {
    if request.photos.is_empty() {
        return Err(EnrollError::NoPhotos);
    }
    crate::gallery::validate_id(request.id)?;
    // Before the photos are read: a bad name should not cost a minute of embedding.
    crate::gallery::validate_name(request.name)?;
    let today = who.now.date();
    let before = store.load()?;
    // Checked again under the lock below: a withdrawal meanwhile wins.
    before.check_face_consent(request.id, request.role, today)?;
    check_lookalike_ids(request.id, lookalike_of, &before)?;
    let photos = request.photos.iter().map(|p| embed_photo(pipeline, quality, p)).collect::<Result<Vec<_>, _>>()?;
    let model_id = pipeline.models.embedder.model_id().to_string();
    let threshold = pipeline.matcher.config().threshold;
    let added = photos.len();
    let record = |report: &EnrollReport| -> Result<(), EnrollError> {
        let entry = Entry { total: Some(report.total_embeddings), ..Entry::new(Action::Enrolled, request.id, who.by) };
        Ok(who.audit.append(&[entry.templates(added)], who.now.timestamp())?)
    };
    store.update_then(
        |gallery| {
            gallery.check_face_consent(request.id, request.role, today)?;
            let existing: Vec<Embedding> = gallery.get(request.id).map(|p| p.embeddings.clone()).unwrap_or_default();
            let mut inconsistent = Vec::new();
            for (i, photo) in photos.iter().enumerate() {
                let others = existing
                    .iter()
                    .chain(photos.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, p)| &p.embedding));
                let best = others.map(|e| e.similarity(&photo.embedding)).fold(f32::NEG_INFINITY, f32::max);
                if best.is_finite() && best < threshold {
                    inconsistent.push((photo.path.clone(), best));
                }
            }
            // Similarities between two embedders' vectors mean nothing: refuse that first.
            gallery.check_embedder(&model_id)?;
            let level = lookalike_level(pipeline.matcher.config());
            let embeddings: Vec<Embedding> = photos.iter().map(|p| p.embedding.clone()).collect();
            let near = confirm_neighbours(gallery, request.id, &embeddings, lookalike_of, level)?;
            let already = gallery.get(request.id).map(|p| p.lookalikes.clone()).unwrap_or_default();
            gallery.enroll(request.id, request.role, request.name, embeddings, &model_id, who.secs())?;
            let mut marked = Vec::new();
            for other in lookalike_of {
                gallery.mark_lookalikes(request.id, other)?;
                if !already.contains(other) && !marked.contains(other) {
                    marked.push(other.clone());
                }
            }
            let total_embeddings = gallery.get(request.id).map_or(0, |p| p.embeddings.len());
            Ok(EnrollReport {
                photos: photos.clone(),
                total_embeddings,
                inconsistent,
                nearest: near.into_iter().next(),
                lookalike_level: level,
                marked,
            })
        },
        record,
    )
}

/// The neighbours of `embeddings` (enrolled as `id`), most similar first, provided every one at or
/// above `level` is confirmed: named in `lookalike_of` or already marked on `id`. Confirmed ids must
/// name someone else who is enrolled. Run it on the gallery as it is under the lock.
pub fn confirm_neighbours(
    gallery: &Gallery,
    id: &str,
    embeddings: &[Embedding],
    lookalike_of: &[String],
    level: f32,
) -> Result<Vec<Neighbour>, EnrollError> {
    check_lookalike_ids(id, lookalike_of, gallery)?;
    let near = neighbours(gallery, id, embeddings);
    // Pairs confirmed earlier stay confirmed when more photos are added to either person.
    let confirmed = |other: &str| {
        lookalike_of.iter().any(|l| l == other)
            || gallery.get(id).is_some_and(|p| p.lookalikes.iter().any(|l| l == other))
    };
    match near.iter().find(|n| n.similarity >= level && !confirmed(&n.id)) {
        Some(n) => Err(EnrollError::LookalikeNotConfirmed {
            id: printable(id),
            other: printable(&n.id),
            other_name: printable(&n.name),
            similarity: n.similarity,
            level,
        }),
        None => Ok(near),
    }
}

/// Every `--lookalike-of` id names someone else who is enrolled.
fn check_lookalike_ids(id: &str, lookalike_of: &[String], gallery: &Gallery) -> Result<(), EnrollError> {
    for other in lookalike_of {
        if other == id {
            return Err(EnrollError::LookalikeOfSelf(other.clone()));
        }
        if gallery.get(other).is_none() {
            return Err(EnrollError::UnknownLookalike(other.clone()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emb(v: &[f32]) -> Embedding {
        Embedding::normalized(v.to_vec()).expect("non-zero")
    }

    fn gallery() -> Gallery {
        let mut g = Gallery::empty();
        g.enroll("minji", Role::Child, "김민지", vec![emb(&[1.0, 0.0, 0.0]), emb(&[0.6, 0.8, 0.0])], "m", 1)
            .expect("a");
        g.enroll("jun", Role::Child, "박준", vec![emb(&[0.0, 0.0, 1.0])], "m", 1).expect("b");
        g.enroll("empty", Role::Staff, "E", vec![], "m", 1).expect("c");
        g
    }

    #[test]
    fn nearest_is_the_best_pair_over_all_templates_and_skips_self_and_empty_people() {
        let g = gallery();
        // Close to minji's second template only: her best pair counts, not her first or an average.
        let new = [emb(&[0.0, 1.0, 0.0]), emb(&[0.0, 0.2, 1.0])];
        let near = neighbours(&g, "new", &new);
        let ids: Vec<&str> = near.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, ["jun", "minji"], "most similar first, nobody without embeddings");
        assert!((near[0].similarity - emb(&[0.0, 0.2, 1.0]).values()[2]).abs() < 1e-6);
        assert!((near[1].similarity - 0.8).abs() < 1e-6, "{}", near[1].similarity);
        assert_eq!(near[1].name, "김민지");
        // Adding photos to minji compares her with the others, never with herself.
        let n = nearest_other(&g, "minji", &[emb(&[1.0, 0.0, 0.0])]).expect("jun");
        assert_eq!(n.id, "jun");
        assert!(n.similarity.abs() < 1e-6);
        assert_eq!(nearest_other(&Gallery::empty(), "x", &new), None);
    }

    #[test]
    fn neighbours_at_the_level_need_confirmation_and_confirmations_must_be_enrolled() {
        let mut g = gallery();
        let twin = [emb(&[0.9, 0.1, 0.0])];
        let ids = |r: Result<Vec<Neighbour>, EnrollError>| r.map(|n| n.into_iter().map(|n| n.id).collect::<Vec<_>>());
        let refused = confirm_neighbours(&g, "twin", &twin, &[], 0.35);
        match refused {
            Err(EnrollError::LookalikeNotConfirmed { other, other_name, similarity, .. }) => {
                assert_eq!((other.as_str(), other_name.as_str()), ("minji", "김민지"));
                assert!(similarity > 0.9, "{similarity}");
            }
            other => panic!("not refused: {other:?}"),
        }
        assert_eq!(ids(confirm_neighbours(&g, "twin", &twin, &["minji".into()], 0.35)).expect("ok"), ["minji", "jun"]);
        // Naming someone else does not confirm minji.
        assert!(matches!(
            confirm_neighbours(&g, "twin", &twin, &["jun".into()], 0.35),
            Err(EnrollError::LookalikeNotConfirmed { .. })
        ));
        // Below the level nothing is needed, and a known pair may still be named.
        let far = [emb(&[0.0, -1.0, 0.2])];
        assert!(confirm_neighbours(&g, "far", &far, &[], 0.35).is_ok());
        assert!(confirm_neighbours(&g, "far", &far, &["jun".into()], 0.35).is_ok());
        assert!(matches!(
            confirm_neighbours(&g, "far", &far, &["nobody".into()], 0.35),
            Err(EnrollError::UnknownLookalike(id)) if id == "nobody"
        ));
        assert!(matches!(
            confirm_neighbours(&g, "jun", &far, &["jun".into()], 0.35),
            Err(EnrollError::LookalikeOfSelf(_))
        ));
        // Once marked, more photos of jun close to minji need no new confirmation.
        g.mark_lookalikes("jun", "minji").expect("both enrolled");
        assert!(confirm_neighbours(&g, "jun", &twin, &[], 0.35).is_ok());
    }

    #[test]
    fn the_lookalike_level_never_exceeds_the_match_threshold() {
        let m = |threshold| crate::config::MatcherConfig { threshold, ..Default::default() };
        assert_eq!(lookalike_level(&m(0.40)), LOOKALIKE_SIMILARITY);
        assert_eq!(lookalike_level(&m(0.30)), 0.30);
    }
}
