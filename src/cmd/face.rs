//! `dolbom enroll`, `dolbom gallery`, `dolbom identify`: the face pipeline's tools.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use dolbom_face::enroll::{self, Enroller, Enrollment};
use dolbom_face::gallery::{printable, validate_id, Action, Entry, GalleryError, Matcher, Role};
use dolbom_face::identify::FacePipeline;
use dolbom_face::image::load_bgr;
use dolbom_face::FaceModels;
use dolbom_kiosk::config::Config;
use tracing::{info_span, warn};

pub struct EnrollArgs {
    pub person: String,
    pub role: Role,
    pub name: String,
    pub lookalike_of: Vec<String>,
    pub by: String,
    pub images: Vec<PathBuf>,
}

pub fn enroll(config: PathBuf, args: EnrollArgs) -> Result<ExitCode> {
    let EnrollArgs { person, role, name, lookalike_of, by, images } = args;
    let config = Config::load(&config)?;
    validate_id(&by).context("--by")?;
    let _span = info_span!("enroll", person = %person).entered();
    let store = config.gallery.store();
    let now = jiff::Timestamp::now().to_zoned_datetime(config.timezone());
    // Before the models load: a refusal should come at once (a bad id or name first).
    validate_id(&person)?;
    dolbom_face::gallery::validate_name(&name)?;
    store.load()?.check_face_consent(&person, role, now.date())?;
    let mut pipeline = pipeline(&config)?;
    let audit = config.audit_log();
    let report = enroll::enroll_lookalike(
        &mut pipeline,
        &config.face.quality,
        &store,
        &Enrollment { id: &person, role, name: &name, photos: &images },
        &lookalike_of,
        &Enroller { now: &now, by: &by, audit: &audit },
    )?;
    for (path, s) in &report.inconsistent {
        warn!(
            "{}: resembles {person}'s other photos only weakly (similarity {s:.2}); check it is the right person",
            path.display()
        );
    }
    match &report.nearest {
        Some(n) => {
            let (id, nm, s) = (printable(&n.id), printable(&n.name), n.similarity);
            outln!("nearest enrolled: {id} ({nm}), similarity {s:.2} / 가장 닮은 등록자: {id} ({nm}), 유사도 {s:.2}")?;
            if s >= pipeline.matcher.config().threshold {
                // Confirmed as look-alikes, yet matched as each other at the configured threshold.
                warn!(
                    "`{id}` would match these photos (similarity {s:.2} ≥ face.matcher.threshold); the kiosk needs a \
                     clear margin between them / `{id}`도 이 사진과 일치합니다(유사도 {s:.2}); 두 사람 사이의 차이가 충분해야 \
                     구별됩니다"
                );
            }
        }
        None => outln!("nearest enrolled: nobody else is enrolled / 가장 닮은 등록자: 다른 등록자 없음")?,
    }
    for other in &report.marked {
        let other = printable(other);
        outln!("marked {person} and {other} as look-alikes / {person}와(과) {other}를 닮은꼴로 표시했습니다")?;
    }
    outln!(
        "enrolled {person} ({role}, {name}): {} photo(s) added, {} in total",
        report.photos.len(),
        report.total_embeddings
    )?;
    outln!("{person}: 사진 {}장 추가, 모두 {}장", report.photos.len(), report.total_embeddings)?;
    let (lo, hi) = (enroll::RECOMMENDED_PHOTOS.start(), enroll::RECOMMENDED_PHOTOS.end());
    if report.total_embeddings < *lo {
        outln!(
            "hint: {lo} to {hi} photos per person recognise best, frontal and slightly turned (a little left, a \
             little right); add more with the same --person\n\
             도움말: 한 사람당 사진 {lo}~{hi}장이 가장 잘 인식됩니다. 정면 사진과 살짝 옆으로 돌린 사진을 같은 --person으로 \
             추가하세요"
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn gallery_list(config: PathBuf, json: bool) -> Result<ExitCode> {
    let config = Config::load(&config)?;
    let gallery = config.gallery.store().load()?;
    for p in &gallery.people {
        if json {
            let line = serde_json::json!({
                "id": p.id, "role": p.role, "name": p.name,
                "photos": p.embeddings.len(), "enrolled_at": p.enrolled_at, "lookalikes": p.lookalikes,
                "refreshed": p.refreshed.iter().map(|r| serde_json::json!({
                    "added_at": r.added_at, "similarity": r.similarity, "margin": r.margin,
                })).collect::<Vec<_>>(),
            });
            outln!("{line}")?;
        } else {
            let lookalikes = if p.lookalikes.is_empty() {
                "-".to_string()
            } else {
                p.lookalikes.iter().map(|l| printable(l)).collect::<Vec<_>>().join(",")
            };
            outln!("{}\t{}\t{}\t{}\t{lookalikes}", printable(&p.id), p.role, p.embeddings.len(), printable(&p.name))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn gallery_revert_refresh(id: String, by: String, config: PathBuf) -> Result<ExitCode> {
    let config = Config::load(&config)?;
    validate_id(&by).context("--by")?;
    let store = config.gallery.store();
    let audit = config.audit_log();
    let dropped = store.update_then(
        |g| g.revert_refresh(&id).map_err(anyhow::Error::from),
        |n| {
            let entry = Entry::new(Action::RefreshReverted, &id, &by).templates(*n);
            Ok(audit.append(&[entry], jiff::Timestamp::now())?)
        },
    )?;
    outln!(
        "{}: {dropped} template(s) taken from sightings removed; the enrolled ones are kept / \
         사진 인식으로 추가된 템플릿 {dropped}개 삭제, 등록 사진은 유지",
        printable(&id)
    )?;
    Ok(ExitCode::SUCCESS)
}

pub fn gallery_remove(id: String, by: String, config: PathBuf) -> Result<ExitCode> {
    let config = Config::load(&config)?;
    validate_id(&by).context("--by")?;
    let store = config.gallery.store();
    let audit = config.audit_log();
    let removed = store.update_then(
        |g| g.remove(&id).map_err(anyhow::Error::from),
        |p| {
            let entry = Entry::new(Action::Removed, &id, &by).templates(p.templates().count());
            Ok(audit.append(&[entry], jiff::Timestamp::now())?)
        },
    )?;
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
    let gallery = config.gallery.store().load()?;
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
