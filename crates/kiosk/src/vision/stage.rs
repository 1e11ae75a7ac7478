//! The vision stage: frames in, settled identities out. Runs on its own thread because ONNX
//! Runtime inference is blocking CPU work.
//!
//! Per frame: an optional motion gate (no tracks and nothing moving: skip detection), detection
//! (less often once every track is settled), tracking, and embedding only for unsettled tracks
//! on good frames.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use opencv::core::{Mat, MatTraitConst, Size};
use opencv::imgproc;
use serde::Deserialize;
use tokio::sync::mpsc;
use tracing::{debug, error, info, info_span, warn};

use dolbom_contract::{CheckInMethod, Role};
use dolbom_face::gallery::{Gallery, GalleryStore};
use dolbom_face::identify::FacePipeline;
use dolbom_face::quality;

use super::refresh::{RefreshRule, TrackEvidence};
use super::tracker::{Settled, Tracker, Verdict, Vote};
use crate::health::Health;
use crate::screening::{Decision, ScreeningStage};
use crate::sources::camera::{FrameSlot, Take};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecognitionConfig {
    /// Faces blurrier than this (Laplacian variance of the aligned crop) are not embedded. Lower
    /// than for enrolment: a soft 60 px face in a compressed 360p video scores 30-55 and still
    /// embeds usefully; sharp video faces score over 1,000.
    pub min_sharpness: f64,
    /// Once every track is settled, run the detector on every n-th frame only.
    pub settled_detect_interval: u32,
    /// With no tracks, skip detection while the mean absolute change of a 64x48 grey thumbnail
    /// stays below this (0..255); 0 detects on every frame.
    pub motion_threshold: f64,
    /// Add a template from a sighting beyond doubt as faces grow (see `vision::refresh`); needs
    /// the gallery file writable by the daemon.
    pub refresh_templates: bool,
}

impl RecognitionConfig {
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        dolbom_face::config::in_range("recognition.min_sharpness", self.min_sharpness, 0.0, 100_000.0)?;
        dolbom_face::config::in_range("recognition.settled_detect_interval", self.settled_detect_interval, 1, 100)?;
        // A mean absolute change of 8-bit pixels: 0 to 255.
        dolbom_face::config::in_range("recognition.motion_threshold", self.motion_threshold, 0.0, 255.0)?;
        Ok(())
    }
}

impl Default for RecognitionConfig {
    fn default() -> Self {
        Self { min_sharpness: 25.0, settled_detect_interval: 3, motion_threshold: 1.5, refresh_templates: true }
    }
}

/// A settled track, with what the rest of the daemon needs to know about the person; or a
/// check-in without a face (a tag, a PIN: see [`crate::checkin`]), which has no track.
#[derive(Debug, Clone, PartialEq)]
pub struct Sighting {
    /// 0 for a check-in without a face.
    pub track_id: u64,
    pub captured_ms: i64,
    pub who: Who,
    /// Fever screening's verdict; None when screening is off or nobody's face was measured.
    pub temperature: Option<Decision>,
    pub method: CheckInMethod,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Who {
    Person { id: String, role: Role, confidence: f32 },
    Visitor,
}

pub struct Vision {
    pub pipeline: FacePipeline,
    pub tracker: Tracker,
    pub config: RecognitionConfig,
    pub gallery_store: GalleryStore,
    /// The gallery as read at start; reread only when its file changes.
    pub gallery: LoadedGallery,
    /// The site's time zone: consents are in force on its days.
    pub tz: jiff::tz::TimeZone,
    /// Where templates taken from sightings are recorded.
    pub audit: dolbom_face::gallery::AuditLog,
    pub health: Arc<Health>,
    /// Fever screening, when a thermal sensor is configured and screening is on.
    pub screening: Option<ScreeningStage<Settled>>,
    /// What each open track's votes have shown, for template refresh.
    pub evidence: TrackEvidence,
    /// The door screen, told when a face needs a better view or waits for its temperature.
    pub door: Option<crate::door::DoorHandle>,
    /// Captures for enrolment at the door (`cmd/enroll`, crate::staff::enroll), and the one running.
    pub captures: Option<std::sync::mpsc::Receiver<crate::staff::CaptureRequest>>,
    pub capture: Option<crate::staff::enroll::Capture>,
}

/// A gallery and the modification time of the file it was read from.
pub struct LoadedGallery {
    pub gallery: Gallery,
    pub modified: Option<SystemTime>,
}

impl LoadedGallery {
    pub fn load(store: &GalleryStore) -> Result<Self, dolbom_face::gallery::StoreError> {
        // The time first: a change during the read then shows as a change at the next check.
        let modified = std::fs::metadata(store.path()).and_then(|m| m.modified()).ok();
        Ok(Self { gallery: store.load()?, modified })
    }
}

struct GalleryWatch {
    gallery: Gallery,
    modified: Option<SystemTime>,
    path: PathBuf,
    /// The running embedder's model id: a gallery made with another model is refused.
    embedder: String,
}

impl GalleryWatch {
    /// Picks up enrolments made while the daemon runs, without a restart.
    fn refresh(&mut self, store: &GalleryStore) {
        let modified = std::fs::metadata(&self.path).and_then(|m| m.modified()).ok();
        if modified == self.modified {
            return;
        }
        match store.load().map_err(|e| e.to_string()).and_then(|g| {
            g.check_embedder(&self.embedder).map_err(|e| e.to_string())?;
            Ok(g)
        }) {
            Ok(g) => {
                info!(people = g.people.len(), "gallery loaded");
                self.gallery = g;
                self.modified = modified;
            }
            // The change may be a withdrawal or an erasure this kiosk cannot read (a rekey not yet
            // restarted into, a damaged file): matching the old templates could recognise a child
            // whose consent has ended. Faces go unmatched until the file reads again.
            Err(e) => {
                if !self.gallery.people.is_empty() {
                    error!(
                        error = %e,
                        "the gallery changed and cannot be read: face matching stops until it can / 갤러리를 읽을 수 \
                         없어 얼굴 인식을 멈춥니다"
                    );
                }
                self.gallery = Gallery::empty();
            }
        }
    }
}

impl Vision {
    /// Processes frames until the slot ends, then settles what is left and returns.
    pub fn run(mut self, slot: Arc<FrameSlot>, out: mpsc::Sender<Sighting>) {
        let _span = info_span!("vision").entered();
        let loaded = std::mem::replace(&mut self.gallery, LoadedGallery { gallery: Gallery::empty(), modified: None });
        let mut watch = GalleryWatch {
            gallery: loaded.gallery,
            modified: loaded.modified,
            path: self.gallery_store.path().to_path_buf(),
            embedder: self.pipeline.models.embedder.model_id().to_string(),
        };
        let mut last_check = std::time::Instant::now();
        let mut previous_thumb: Option<Mat> = None;
        let mut since_detect = u32::MAX;
        // The last frame's (monotonic, wall-clock) capture times, and when it came.
        let mut clock = FrameClock::default();
        loop {
            self.health.beat("vision");
            self.poll_captures();
            let frame = match slot.take(Duration::from_millis(200)) {
                Take::Frame(f) => f,
                Take::Idle => {
                    // A stalled camera must not keep tracks (and their verdicts) pending forever.
                    let now = clock.mono_now();
                    let settled = self.tracker.sweep(now);
                    self.emit(settled, now, false, &clock, &watch.gallery, &out);
                    continue;
                }
                Take::Ended => break,
            };
            clock = FrameClock {
                mono_ms: frame.mono_ms,
                captured_ms: frame.captured_ms,
                at: Some(std::time::Instant::now()),
            };
            if last_check.elapsed() > Duration::from_secs(2) {
                watch.refresh(&self.gallery_store);
                last_check = std::time::Instant::now();
            }
            let _frame_span = info_span!("frame", index = frame.index).entered();
            if let Err(e) =
                self.process(&frame.image, &clock, &mut previous_thumb, &mut since_detect, &watch.gallery, &out)
            {
                warn!(error = %e, "frame skipped");
            }
            self.health.frames_processed.fetch_add(1, Ordering::Relaxed);
            self.health.active_tracks.store(self.tracker.active() as u64, Ordering::Relaxed);
        }
        // The input ended: whoever was still in view has now left.
        let settled = self.tracker.sweep(clock.mono_ms + 1_000_000);
        self.emit(settled, clock.mono_ms, true, &clock, &watch.gallery, &out);
        self.health.active_tracks.store(0, Ordering::Relaxed);
    }

    fn process(
        &mut self,
        image: &Mat,
        clock: &FrameClock,
        previous_thumb: &mut Option<Mat>,
        since_detect: &mut u32,
        gallery: &Gallery,
        out: &mpsc::Sender<Sighting>,
    ) -> Result<(), dolbom_face::FaceError> {
        let now_ms = clock.mono_ms;
        // The motion gate must not park screened sightings waiting for their decision.
        // A capture for enrolment looks at every frame, like screening.
        let awaiting = self.screening.as_ref().is_some_and(|s| s.awaiting()) || self.capture.is_some();
        if self.tracker.active() == 0 && !awaiting && self.config.motion_threshold > 0.0 {
            let thumb = thumbnail(image)?;
            let still = match previous_thumb.as_ref() {
                Some(prev) => mean_abs_diff(prev, &thumb)? < self.config.motion_threshold,
                None => false,
            };
            *previous_thumb = Some(thumb);
            if still {
                return Ok(());
            }
        } else {
            *previous_thumb = None;
        }
        *since_detect = since_detect.saturating_add(1);
        if self.tracker.active() > 0
            && self.tracker.all_settled()
            && !awaiting
            && *since_detect < self.config.settled_detect_interval
        {
            return Ok(());
        }
        *since_detect = 0;
        let detections = self.pipeline.models.detector.detect(image)?;
        self.capture_from(image, &detections)?;
        let ids = self.tracker.observe(now_ms, &detections);
        if let Some(screening) = &mut self.screening {
            screening.observe(now_ms, &detections, &ids);
        }
        if let Some(door) = &self.door {
            if awaiting {
                door.tell(crate::door::DoorNews::Measuring);
            } else if detections.iter().zip(&ids).any(|(d, id)| self.tracker.needs_better_view(*id, d)) {
                door.tell(crate::door::DoorNews::Approach);
            }
        }
        let mut settled = Vec::new();
        for (det, id) in detections.iter().zip(ids) {
            let Some(weight) = self.tracker.wants_embedding(id, det, now_ms) else { continue };
            let aligned = self.pipeline.models.aligner.align(image, det)?;
            if quality::sharpness(&aligned)? < self.config.min_sharpness {
                continue;
            }
            let embedding = self.pipeline.models.embedder.embed(&aligned)?;
            let m = self.pipeline.matcher.best(gallery, &embedding);
            self.evidence.note(id, &m, &embedding, now_ms);
            debug!(track = id, person = ?m.person.map(|p| &p.id), similarity = ?m.similarity, runner_up = ?m.runner_up, contested = m.contested, "vote");
            let matched = m.person.map(|p| Vote {
                person: p.id.as_str(),
                similarity: m.similarity.unwrap_or(0.0),
                crowded: m.crowded,
            });
            if let Some(s) = self.tracker.vote(id, matched, weight, now_ms) {
                settled.push(s);
            }
        }
        settled.extend(self.tracker.sweep(now_ms));
        self.emit(settled, now_ms, false, clock, gallery, out);
        Ok(())
    }

    /// Sends settled tracks on, after their fever screening is decided when screening is on.
    fn emit(
        &mut self,
        settled: Vec<Settled>,
        now_ms: i64,
        flush: bool,
        clock: &FrameClock,
        gallery: &Gallery,
        out: &mpsc::Sender<Sighting>,
    ) {
        let ready: Vec<(Settled, Option<Decision>)> = match &mut self.screening {
            Some(screening) => {
                for s in settled {
                    let who = match &s.verdict {
                        Verdict::Person { id, .. } => Some(id.clone()),
                        Verdict::Unknown => None,
                    };
                    screening.hold(s.track_id, s.at_ms, who, s);
                }
                screening.ready(now_ms, flush).into_iter().map(|(s, d)| (s, Some(d))).collect()
            }
            None => settled.into_iter().map(|s| (s, None)).collect(),
        };
        self.evidence.prune(now_ms);
        for (s, temperature) in ready {
            self.refresh_template(&s, gallery);
            let who = match s.verdict {
                Verdict::Person { id, confidence } => match gallery.get(&id) {
                    Some(p) => Who::Person { id, role: p.role, confidence },
                    None => continue, // removed from the gallery meanwhile
                },
                Verdict::Unknown => Who::Visitor,
            };
            info!(track = s.track_id, who = ?who, temperature = ?temperature, "track settled");
            let captured_ms = clock.to_captured(s.at_ms);
            if out
                .blocking_send(Sighting {
                    track_id: s.track_id,
                    captured_ms,
                    who,
                    temperature,
                    method: CheckInMethod::Face,
                })
                .is_err()
            {
                warn!("event stage has stopped; sighting not recorded");
            }
        }
    }
}

impl Vision {
    /// Starts a capture asked for, when none runs (a second one is answered busy), and ends one
    /// whose time is up.
    fn poll_captures(&mut self) {
        use crate::staff::enroll::{Capture, CaptureOutcome};
        if self.capture.as_ref().is_some_and(|c| c.done()) {
            if let Some(c) = self.capture.take() {
                info!(taken = c.taken.len(), "capture at the door finished");
                c.finish();
            }
        }
        let Some(requests) = &self.captures else { return };
        while let Ok(r) = requests.try_recv() {
            if self.capture.is_some() {
                let _ = r.reply.try_send(CaptureOutcome::Busy);
            } else {
                info!(seconds = r.seconds, "capture at the door started");
                self.capture = Some(Capture::new(r));
            }
        }
    }

    /// Takes this frame's face for the running capture when it is the only one and passes the
    /// quality gate the tracker uses (big enough, frontal) and the sharpness the embedding does.
    /// The aligned crop is embedded here and dropped: only the embedding is kept.
    fn capture_from(
        &mut self,
        image: &Mat,
        detections: &[dolbom_face::Detection],
    ) -> Result<(), dolbom_face::FaceError> {
        let Some(capture) = &mut self.capture else { return Ok(()) };
        if detections.is_empty() {
            return Ok(());
        }
        capture.saw_face = true;
        let [face] = detections else { return Ok(()) };
        capture.saw_one = true;
        if !capture.wants_one() || !self.tracker.good_view(face) {
            return Ok(());
        }
        let aligned = self.pipeline.models.aligner.align(image, face)?;
        if quality::sharpness(&aligned)? < self.config.min_sharpness {
            return Ok(());
        }
        let embedding = self.pipeline.models.embedder.embed(&aligned)?;
        capture.take(embedding);
        Ok(())
    }

    /// A track settled beyond doubt adds its best embedding to the person's templates (within
    /// the gallery's bounds); the gallery watch picks the change up like an enrolment.
    fn refresh_template(&mut self, s: &Settled, gallery: &Gallery) {
        let person = match &s.verdict {
            Verdict::Person { id, .. } => Some(id.as_str()),
            Verdict::Unknown => None,
        };
        let threshold = self.pipeline.matcher.threshold_for(gallery.people.len());
        let now_secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let rule = RefreshRule::default();
        let Some(template) = self.evidence.settle(s.track_id, person, threshold, &rule, now_secs) else { return };
        let (Some(id), true) = (person, self.config.refresh_templates) else { return };
        // Most clear sightings come too soon after the last template: no write for them. A child's
        // templates grow only with the guardian's consent to it.
        let now = jiff::Timestamp::now();
        let today = now.to_zoned_datetime(self.tz.clone()).date();
        if !gallery.refresh_due(id, now_secs, &rule.policy) || !gallery.refresh_consented(id, today) {
            return;
        }
        let (similarity, margin) = (template.similarity, template.margin);
        let audit = &self.audit;
        let saved = self.gallery_store.update_then(
            // Asked again under the lock: a withdrawal since the last reload wins.
            |g| -> Result<bool, Box<dyn std::error::Error>> {
                Ok(g.refresh_consented(id, today) && g.refresh(id, template, &rule.policy)?)
            },
            |added| {
                if *added {
                    let entry =
                        dolbom_face::gallery::Entry::new(dolbom_face::gallery::Action::TemplateRefreshed, id, "kiosk");
                    audit.append(&[entry.templates(1)], now)?;
                }
                Ok(())
            },
        );
        match saved {
            Ok(true) => info!(
                person = %id,
                similarity,
                margin,
                "template added from a sighting beyond doubt (undo: dolbom gallery revert-refresh {id})"
            ),
            Ok(false) => {}
            Err(e) => warn!(error = %e, person = %id, "template from a sighting not saved"),
        }
    }
}

/// Maps the tracker's monotonic times back to wall-clock capture times, through the last frame.
#[derive(Default)]
struct FrameClock {
    mono_ms: i64,
    captured_ms: i64,
    at: Option<std::time::Instant>,
}

impl FrameClock {
    /// Monotonic "now" between frames: the last frame's time plus the time since it came.
    fn mono_now(&self) -> i64 {
        self.mono_ms + self.at.map_or(0, |a| a.elapsed().as_millis() as i64)
    }

    fn to_captured(&self, mono_ms: i64) -> i64 {
        self.captured_ms - (self.mono_ms - mono_ms)
    }
}

fn thumbnail(image: &Mat) -> Result<Mat, opencv::Error> {
    let mut small = Mat::default();
    imgproc::resize(image, &mut small, Size::new(64, 48), 0.0, 0.0, imgproc::INTER_AREA)?;
    let mut grey = Mat::default();
    imgproc::cvt_color(&small, &mut grey, imgproc::COLOR_BGR2GRAY, 0)?;
    Ok(grey)
}

fn mean_abs_diff(a: &Mat, b: &Mat) -> Result<f64, opencv::Error> {
    if a.size()? != b.size()? {
        return Ok(f64::MAX);
    }
    let mut diff = Mat::default();
    opencv::core::absdiff(a, b, &mut diff)?;
    Ok(opencv::core::mean(&diff, &opencv::core::no_array())?[0])
}

#[cfg(test)]
mod tests {
    use super::*;
    use dolbom_face::Embedding;

    fn enrol(store: &GalleryStore, id: &str) {
        let e = Embedding::normalized(vec![1.0, 0.0]).expect("non-zero");
        let enrolled = store.update(|g| -> Result<(), Box<dyn std::error::Error>> {
            Ok(g.enroll(id, Role::Child, id, vec![e], "m", 1)?)
        });
        enrolled.expect("enrol");
    }

    /// The daemon reads the gallery once at start and hands it over; the stage rereads the file
    /// only when it changes (enrolment while running), not again at its own start.
    #[test]
    fn the_gallery_read_at_start_is_kept_until_its_file_changes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = GalleryStore::new(dir.path().join("gallery.json"));
        enrol(&store, "minji");
        let loaded = LoadedGallery::load(&store).expect("load");
        assert_eq!(loaded.gallery.people.len(), 1);
        let at_load = loaded.modified.expect("mtime");
        // Another person written with the same mtime: an unchanged file is not read again.
        enrol(&store, "jiwoo");
        let file = std::fs::File::options().write(true).open(store.path()).expect("open");
        file.set_modified(at_load).expect("mtime back");
        let mut watch = GalleryWatch {
            gallery: loaded.gallery,
            modified: loaded.modified,
            path: store.path().to_path_buf(),
            embedder: "m".into(),
        };
        watch.refresh(&store);
        assert_eq!(watch.gallery.people.len(), 1, "the unchanged file was read again");
        file.set_modified(at_load + Duration::from_secs(1)).expect("mtime forward");
        watch.refresh(&store);
        assert_eq!(watch.gallery.people.len(), 2, "an enrolment while running is picked up");
    }
}
