//! `dolbom enroll`, `dolbom gallery`, `dolbom identify`: the face pipeline's tools.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use dolbom_face::enroll::{self, Enrollment};
use dolbom_face::gallery::{printable, GalleryError, GalleryStore, Matcher, Role};
use dolbom_face::identify::FacePipeline;
use dolbom_face::image::load_bgr;
use dolbom_face::FaceModels;
use dolbom_kiosk::config::Config;
use tracing::{info_span, warn};

pub fn enroll(config: PathBuf, person: String, role: Role, name: String, images: Vec<PathBuf>) -> Result<ExitCode> {
    let config = Config::load(&config)?;
    let _span = info_span!("enroll", person = %person).entered();
    let mut pipeline = pipeline(&config)?;
    let store = GalleryStore::new(&config.gallery.path);
    let report = enroll::enroll(
        &mut pipeline,
        &config.face.quality,
        &store,
        &Enrollment { id: &person, role, name: &name, photos: &images },
        unix_now(),
    )?;
    for (path, s) in &report.inconsistent {
        warn!(
            "{}: resembles {person}'s other photos only weakly (similarity {s:.2}); check it is the right person",
            path.display()
        );
    }
    if let Some((other, s)) = &report.resembles {
        warn!("these photos also match `{other}` (similarity {s:.2}); is this the same person enrolled twice?");
    }
    outln!(
        "enrolled {person} ({role}, {name}): {} photo(s) added, {} in total",
        report.photos.len(),
        report.total_embeddings
    )?;
    Ok(ExitCode::SUCCESS)
}

pub fn gallery_list(config: PathBuf, json: bool) -> Result<ExitCode> {
    let config = Config::load(&config)?;
    let gallery = GalleryStore::new(&config.gallery.path).load()?;
    for p in &gallery.people {
        if json {
            let line = serde_json::json!({
                "id": p.id, "role": p.role, "name": p.name,
                "photos": p.embeddings.len(), "enrolled_at": p.enrolled_at,
            });
            outln!("{line}")?;
        } else {
            outln!("{}\t{}\t{}\t{}", printable(&p.id), p.role, p.embeddings.len(), printable(&p.name))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn gallery_remove(id: String, config: PathBuf) -> Result<ExitCode> {
    let config = Config::load(&config)?;
    let store = GalleryStore::new(&config.gallery.path);
    let removed = store.update(|g| g.remove(&id).map_err(anyhow::Error::from))?;
    outln!(
        "removed {} ({}, {}) and {} embedding(s)",
        printable(&removed.id),
        removed.role,
        printable(&removed.name),
        removed.embeddings.len()
    )?;
    Ok(ExitCode::SUCCESS)
}

pub fn identify(config: PathBuf, images: Vec<PathBuf>) -> Result<ExitCode> {
    let config = Config::load(&config)?;
    let gallery = GalleryStore::new(&config.gallery.path).load()?;
    let mut pipeline = pipeline(&config)?;
    gallery.check_embedder(pipeline.models.embedder.model_id()).map_err(|e: GalleryError| anyhow::anyhow!(e))?;
    // One unreadable image must not hide the results of the others: report it, go on,
    // and fail at the end.
    let mut failed = 0;
    for path in &images {
        let _span = info_span!("identify", image = %path.display()).entered();
        let result = load_bgr(path).map_err(anyhow::Error::from).and_then(|img| {
            pipeline.identify(&path.display().to_string(), &img, &gallery).map_err(anyhow::Error::from)
        });
        match result {
            Ok(faces) => {
                for face in faces {
                    outln!("{}", serde_json::to_string(&face).context("serialising a result")?)?;
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("error: {e:#}");
            }
        }
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

pub fn pipeline(config: &Config) -> Result<FacePipeline> {
    let models = FaceModels::load(&config.runtime, &config.face)?;
    Ok(FacePipeline::new(models, Matcher::new(config.face.matcher.clone())))
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
