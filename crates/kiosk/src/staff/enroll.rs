//! `cmd/enroll`, "capture at the door": the vision stage takes, for up to `seconds`, aligned
//! crops of the one face in front of the camera that pass the tracker's quality gate (big
//! enough, frontal, sharp), about [`WANTED`] spread over the time, embeds them and hands back
//! only the embeddings; the crops never leave its memory. The desk then enrols them for the
//! person. A child needs a consent in force: that is checked before any capture.
//!
//! The capture is a request over a channel the vision stage looks at between frames: its loop
//! is never blocked, and it fulfils the request from frames it already has.

use std::time::Duration;

use jiff::Timestamp;
use tracing::info;

use dolbom_contract::{EnrollCommand, Role};
use dolbom_face::gallery::{printable, Action, Entry, Gallery};
use dolbom_face::Embedding;

use super::consent::{bad_field, field_error};
use super::{today, Apply, Outcome, Refusal, StaffDesk};
use crate::alerts::AlertContext;

/// How many crops a capture aims for.
pub const WANTED: usize = 5;
/// `seconds` when the command gives none, and the most it may ask.
pub const DEFAULT_SECONDS: u32 = 15;
pub const MAX_SECONDS: u32 = 60;

/// One capture asked of the vision stage.
pub struct CaptureRequest {
    pub seconds: u32,
    pub reply: std::sync::mpsc::SyncSender<CaptureOutcome>,
}

pub type CaptureSender = std::sync::mpsc::SyncSender<CaptureRequest>;

/// What a capture brought back.
#[derive(Debug, Clone, PartialEq)]
pub enum CaptureOutcome {
    /// Embeddings of the good crops (none of the crops themselves).
    Taken(Vec<Embedding>),
    /// Nobody was in front of the camera.
    NoFace,
    /// Two or more faces the whole time: whose would it be?
    TwoFaces,
    /// A face was there, never big, frontal and sharp enough.
    TooBlurry,
    /// Another capture was running.
    Busy,
}

impl CaptureOutcome {
    /// Why no templates were enrolled, for staff.
    pub fn why_none(&self) -> String {
        match self {
            CaptureOutcome::Taken(_) => "no good frame / 좋은 프레임이 없습니다".into(),
            CaptureOutcome::NoFace => {
                "no face in front of the camera; nothing enrolled / 카메라 앞에 얼굴이 없어 등록하지 않았습니다".into()
            }
            CaptureOutcome::TwoFaces => "two or more faces in front of the camera; only one person at a time, nothing \
                 enrolled / 카메라 앞에 얼굴이 둘 이상입니다: 한 명씩 서 주세요"
                .into(),
            CaptureOutcome::TooBlurry => "the face was too blurry, small or turned away; nothing enrolled / 얼굴이 \
                 흐리거나 작거나 정면이 아니어서 등록하지 않았습니다"
                .into(),
            CaptureOutcome::Busy => "another capture is running; try again / 다른 촬영이 진행 중입니다".into(),
        }
    }
}

/// A capture in progress in the vision stage: what it has taken and seen so far.
pub struct Capture {
    pub request: CaptureRequest,
    pub started: std::time::Instant,
    pub taken: Vec<Embedding>,
    pub last_taken: Option<std::time::Instant>,
    pub saw_face: bool,
    pub saw_one: bool,
}

impl Capture {
    pub fn new(request: CaptureRequest) -> Self {
        Self {
            request,
            started: std::time::Instant::now(),
            taken: Vec::new(),
            last_taken: None,
            saw_face: false,
            saw_one: false,
        }
    }

    fn window(&self) -> Duration {
        Duration::from_secs(u64::from(self.request.seconds))
    }

    /// Whether a good crop now would be spread enough from the last one.
    pub fn wants_one(&self) -> bool {
        let gap = self.window() / (WANTED as u32 * 2);
        self.last_taken.is_none_or(|t| t.elapsed() >= gap.min(Duration::from_millis(1_500)))
    }

    pub fn take(&mut self, e: Embedding) {
        self.taken.push(e);
        self.last_taken = Some(std::time::Instant::now());
    }

    /// Done: enough taken, or the time is up.
    pub fn done(&self) -> bool {
        self.taken.len() >= WANTED || self.started.elapsed() >= self.window()
    }

    /// Answers the request and ends the capture.
    pub fn finish(self) {
        let outcome = if !self.taken.is_empty() {
            CaptureOutcome::Taken(self.taken)
        } else if !self.saw_face {
            CaptureOutcome::NoFace
        } else if !self.saw_one {
            CaptureOutcome::TwoFaces
        } else {
            CaptureOutcome::TooBlurry
        };
        // The desk may have given up waiting: nothing to do then.
        let _ = self.request.reply.try_send(outcome);
    }
}

/// The person's role and name: the command's, else the gallery's; refused for a child without
/// a consent in force.
fn who(cmd: &EnrollCommand, gallery: &Gallery, today: jiff::civil::Date) -> Result<(Role, String), String> {
    let known = gallery.get(&cmd.person);
    let role = cmd.role.or(known.map(|p| p.role));
    let name = cmd.name.clone().or(known.map(|p| p.name.clone()));
    let (Some(role), Some(name)) = (role, name) else {
        return Err(format!(
            "`{}` is not enrolled yet: give role and name / 아직 등록되지 않았습니다: role과 name을 주세요",
            cmd.person
        ));
    };
    dolbom_face::gallery::validate_id(&cmd.person)
        .map_err(|e| bad_field("person", e, "아이 id가 올바르지 않습니다"))?;
    dolbom_face::gallery::validate_name(&name).map_err(|e| bad_field("name", e, "이름이 올바르지 않습니다"))?;
    gallery
        .check_face_consent(&cmd.person, role, today)
        .map_err(|e| field_error(&e, "보호자 동의가 없어 얼굴을 등록하지 않았습니다"))?;
    Ok((role, name))
}

impl Apply for EnrollCommand {
    fn outside(&self, desk: &StaffDesk, _ctx: &AlertContext, now_ms: i64) -> Option<Outcome> {
        let today = today(&desk.tz, now_ms);
        let seconds = self.seconds.unwrap_or(DEFAULT_SECONDS);
        if seconds == 0 || seconds > MAX_SECONDS {
            return Some(Outcome::Refused(format!(
                "seconds: {seconds} is not 1 to {MAX_SECONDS} / seconds는 1~{MAX_SECONDS}초입니다"
            )));
        }
        // Consent first: nobody is filmed for an enrolment that would be refused.
        let gallery = match desk.gallery.load() {
            Ok(g) => g,
            Err(e) => return Some(Outcome::Refused(Refusal::from(e).0)),
        };
        if let Err(e) = who(self, &gallery, today) {
            return Some(Outcome::Refused(e));
        }
        drop(gallery);
        let Some(capture) = &desk.capture else {
            return Some(Outcome::Refused(
                "this kiosk has no camera stage to capture with / 이 키오스크에는 촬영할 카메라가 없습니다".into(),
            ));
        };
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        if capture.try_send(CaptureRequest { seconds, reply }).is_err() {
            return Some(Outcome::Refused(CaptureOutcome::Busy.why_none()));
        }
        info!(person = %self.person, seconds, by = %self.by, "capture at the door started");
        // A little past the window: the vision stage answers at its end.
        let outcome =
            match answer.recv_timeout(Duration::from_secs(u64::from(seconds) + 10)) {
                Ok(o) => o,
                Err(_) => return Some(Outcome::Refused(
                    "the camera stage did not answer in time; nothing enrolled / 카메라 단계가 응답하지 않아 등록하지 \
                     않았습니다"
                        .into(),
                )),
            };
        let embeddings = match outcome {
            CaptureOutcome::Taken(e) if !e.is_empty() => e,
            other => return Some(Outcome::Refused(other.why_none())),
        };
        Some(save(self, desk, embeddings, now_ms))
    }
}

/// Enrols the captured embeddings in one gallery update (consent asked again under its lock),
/// with the audit line.
fn save(cmd: &EnrollCommand, desk: &StaffDesk, embeddings: Vec<Embedding>, now_ms: i64) -> Outcome {
    let now = Timestamp::from_millisecond(now_ms).unwrap_or_else(|_| Timestamp::now());
    let today = today(&desk.tz, now_ms);
    let n = embeddings.len();
    let secs = u64::try_from(now.as_second()).unwrap_or(0);
    let saved = desk.gallery.update_then(
        |g| -> Result<usize, Refusal> {
            let (role, name) = who(cmd, g, today).map_err(Refusal)?;
            g.enroll(&cmd.person, role, &name, embeddings, &desk.embedder, secs)
                .map_err(|e| Refusal(field_error(&e, "얼굴을 등록하지 않았습니다")))?;
            Ok(g.get(&cmd.person).map_or(n, |p| p.embeddings.len()))
        },
        |total| {
            let entry =
                Entry { total: Some(*total), ..Entry::new(Action::Enrolled, &cmd.person, &cmd.by).templates(n) };
            Ok(desk.audit.append(&[entry], now)?)
        },
    );
    match saved {
        Ok(total) => {
            info!(target: "audit", person = %cmd.person, by = %cmd.by, templates = n, total, "face enrolled at the door by staff");
            let id = printable(&cmd.person);
            Outcome::Done(format!(
                "{n} face templates enrolled for {id} ({total} in all) / {id}의 얼굴 템플릿 {n}개를 등록했습니다 (모두 {total}개)"
            ))
        }
        Err(Refusal(e)) => Outcome::Refused(e),
    }
}
