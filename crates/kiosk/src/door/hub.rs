//! The door-state hub: one task owns what the door screen shows. Stages send it [`DoorNews`]
//! through a cheap [`DoorHandle`] (never blocking: a full channel drops the news, the screen
//! is a courtesy, the events are not); it publishes [`DoorState`] on a `watch` channel and
//! returns to the idle screen on its own.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::debug;

use dolbom_contract::{AttendanceKind, DustGrade, GradeLabel, Role, TemperatureStatus};

use super::words::{self, Line};
use crate::checkin::Registry;
use crate::shutdown::Shutdown;

/// "Come closer" and "stand still" fade this long after the vision stage last said so.
const HINT_FOR: Duration = Duration::from_secs(2);

/// A greeting stays at least this long before a hint for the next face may replace it.
const GREETING_AT_LEAST: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Screen {
    Idle,
    /// A face is seen, but too small or turned away to recognise.
    Approach,
    /// Recognised; fever screening is still reading the face.
    Measuring,
    Greeting,
    Visitor,
}

/// How the page colours the message: calm, welcome, wait (a visitor, a re-measure), or
/// attention (see a teacher).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tone {
    Calm,
    Welcome,
    Wait,
    Attention,
}

/// Everything the door screen shows, as the page and `/state` get it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DoorState {
    /// Grows with every change, so a client can tell a new greeting from the same one.
    pub seq: u64,
    pub screen: Screen,
    pub tone: Tone,
    pub center_name: String,
    /// The center's IANA time zone, for the page's clock.
    pub timezone: String,
    /// The indoor fine-dust grade now, when air sensors report one.
    pub air: Option<GradeLabel>,
    pub title: Line,
    pub detail: Option<Line>,
    /// Play the chime for this state (greetings only, when `chime = true`).
    pub chime: bool,
}

/// What a stage tells the door screen.
#[derive(Debug, Clone, PartialEq)]
pub enum DoorNews {
    /// A face is in view but not good enough to recognise (vision stage, per frame).
    Approach,
    /// A recognised face waits for its temperature (vision stage, per frame).
    Measuring,
    /// An attendance event was recorded (event stage; faces, tags and PINs alike).
    Attendance { name: String, role: Role, kind: AttendanceKind, status: TemperatureStatus, celsius: Option<f32> },
    /// A visitor event was recorded.
    Visitor { status: TemperatureStatus },
    /// The worse of the indoor PM2.5 and PM10 grades, or None when no fresh value.
    Air(Option<DustGrade>),
}

/// The stages' side: cheap to clone, never blocks.
#[derive(Clone)]
pub struct DoorHandle {
    tx: mpsc::Sender<DoorNews>,
    /// Display names by person id: the gallery, reread when its file changes.
    names: Arc<Mutex<Registry>>,
}

impl DoorHandle {
    pub fn tell(&self, news: DoorNews) {
        if let Err(mpsc::error::TrySendError::Full(news)) = self.tx.try_send(news) {
            debug!(?news, "door screen busy; news dropped");
        }
    }

    /// An attendance event for the person `id`: greets them by their display name (their id
    /// when the gallery has no name for them). Called from the event stage's blocking work, as
    /// it may reread the gallery file.
    pub fn attendance(
        &self,
        id: &str,
        role: Role,
        kind: AttendanceKind,
        status: TemperatureStatus,
        celsius: Option<f32>,
    ) {
        let name = match self.names.lock() {
            Ok(mut names) => names.find(|g| g.get(id).map(|p| p.name.clone())),
            Err(_) => None,
        };
        self.tell(DoorNews::Attendance { name: name.unwrap_or_else(|| id.to_string()), role, kind, status, celsius });
    }
}

/// The hub's side: the current state and the task that keeps it.
pub struct DoorHub {
    rx: mpsc::Receiver<DoorNews>,
    state: watch::Sender<DoorState>,
    idle_after: Duration,
    chime: bool,
}

impl DoorHub {
    /// A hub showing the idle screen, its handle for the stages, and the state's receiver for
    /// the HTTP layer (subscribe more from it).
    pub fn new(
        center_name: String,
        timezone: String,
        idle_after: Duration,
        chime: bool,
        names: Registry,
    ) -> (Self, DoorHandle, watch::Receiver<DoorState>) {
        let (tx, rx) = mpsc::channel(64);
        let idle = DoorState {
            seq: 0,
            screen: Screen::Idle,
            tone: Tone::Calm,
            center_name,
            timezone,
            air: None,
            title: words::welcome(),
            detail: None,
            chime: false,
        };
        let (state, watch_rx) = watch::channel(idle);
        let handle = DoorHandle { tx, names: Arc::new(Mutex::new(names)) };
        (Self { rx, state, idle_after, chime }, handle, watch_rx)
    }

    /// Keeps the state until shutdown, or until every handle is gone.
    pub async fn run(mut self, shutdown: Shutdown) {
        // When the current message gives way to the idle screen; None while idle.
        let mut until: Option<Instant> = None;
        let mut shown_at = Instant::now();
        loop {
            let expire = async move {
                match until {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.wait() => return,
                _ = expire => {
                    until = None;
                    self.show(Screen::Idle, Tone::Calm, words::welcome(), None, false);
                }
                news = self.rx.recv() => {
                    let Some(news) = news else { return };
                    let now = Instant::now();
                    let current = self.state.borrow().screen;
                    match news {
                        DoorNews::Approach | DoorNews::Measuring => {
                            // A hint never cuts a greeting short, nor stands over a fresh one.
                            let replace = match current {
                                Screen::Idle | Screen::Approach | Screen::Measuring => true,
                                Screen::Greeting | Screen::Visitor => now >= shown_at + GREETING_AT_LEAST,
                            };
                            if replace {
                                let (screen, title) = match news {
                                    DoorNews::Approach => (Screen::Approach, words::come_closer()),
                                    _ => (Screen::Measuring, words::measuring()),
                                };
                                if current != screen {
                                    self.show(screen, Tone::Calm, title, None, false);
                                    shown_at = now;
                                }
                                until = Some(now + HINT_FOR);
                            }
                        }
                        DoorNews::Attendance { name, role, kind, status, celsius } => {
                            let tone = tone_of(status, Tone::Welcome);
                            let detail = words::temperature(status, celsius);
                            self.show(Screen::Greeting, tone, words::greeting(&name, role, kind), detail, self.chime);
                            shown_at = now;
                            until = Some(now + self.idle_after);
                        }
                        DoorNews::Visitor { status } => {
                            let tone = tone_of(status, Tone::Wait);
                            self.show(Screen::Visitor, tone, words::visitor(), words::temperature(status, None), false);
                            shown_at = now;
                            until = Some(now + self.idle_after);
                        }
                        DoorNews::Air(grade) => {
                            let air = grade.map(DustGrade::label);
                            self.state.send_if_modified(|s| {
                                let changed = s.air != air;
                                if changed {
                                    s.air = air;
                                    s.seq += 1;
                                }
                                changed
                            });
                        }
                    }
                }
            }
        }
    }

    fn show(&self, screen: Screen, tone: Tone, title: Line, detail: Option<Line>, chime: bool) {
        self.state.send_modify(|s| {
            s.seq += 1;
            s.screen = screen;
            s.tone = tone;
            s.title = title;
            s.detail = detail;
            s.chime = chime;
        });
    }
}

/// Elevated asks for a teacher; a re-measure is a wait; otherwise the screen's own tone.
fn tone_of(status: TemperatureStatus, otherwise: Tone) -> Tone {
    match status {
        TemperatureStatus::Elevated => Tone::Attention,
        TemperatureStatus::Remeasure => Tone::Wait,
        _ => otherwise,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dolbom_face::gallery::GalleryStore;

    fn hub(idle_after: Duration) -> (DoorHandle, watch::Receiver<DoorState>, Shutdown, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let names = Registry::new(GalleryStore::new(dir.path().join("gallery.json")));
        let (hub, handle, rx) = DoorHub::new("햇살".into(), "Asia/Seoul".into(), idle_after, true, names);
        let shutdown = Shutdown::new();
        tokio::spawn(hub.run(shutdown.clone()));
        (handle, rx, shutdown, dir)
    }

    async fn next(rx: &mut watch::Receiver<DoorState>) -> DoorState {
        tokio::time::timeout(Duration::from_secs(30), rx.changed()).await.expect("a change").expect("hub alive");
        rx.borrow_and_update().clone()
    }

    #[tokio::test(start_paused = true)]
    async fn a_greeting_returns_to_idle_and_a_hint_does_not_cut_it_short() {
        let (handle, mut rx, shutdown, _dir) = hub(Duration::from_secs(6));
        let news = |kind| DoorNews::Attendance {
            name: "김민지".into(),
            role: Role::Child,
            kind,
            status: TemperatureStatus::Normal,
            celsius: Some(36.5),
        };
        handle.tell(news(AttendanceKind::Arrival));
        let s = next(&mut rx).await;
        assert_eq!((s.screen, s.title.ko.as_str(), s.chime), (Screen::Greeting, "김민지 어린이, 안녕하세요!", true));
        assert_eq!(s.detail.map(|d| d.ko), Some("체온 36.5℃ 정상이에요".into()));
        let greeted = Instant::now();
        handle.tell(DoorNews::Approach);
        // The next change is the return to idle, after idle_after: the hint was ignored.
        let s = next(&mut rx).await;
        assert_eq!(s.screen, Screen::Idle);
        assert!(Instant::now() - greeted >= Duration::from_secs(6));
        handle.tell(DoorNews::Approach);
        assert_eq!(next(&mut rx).await.screen, Screen::Approach);
        assert_eq!(next(&mut rx).await.screen, Screen::Idle, "a hint fades by itself");
        shutdown.trigger();
    }

    #[tokio::test(start_paused = true)]
    async fn visitors_wait_and_the_air_grade_is_kept_across_screens() {
        let (handle, mut rx, shutdown, _dir) = hub(Duration::from_secs(4));
        handle.tell(DoorNews::Air(Some(DustGrade::Bad)));
        assert_eq!(next(&mut rx).await.air.map(|a| a.ko), Some("나쁨".into()));
        handle.tell(DoorNews::Visitor { status: TemperatureStatus::Elevated });
        let s = next(&mut rx).await;
        assert_eq!(
            (s.screen, s.tone, s.title.ko.as_str()),
            (Screen::Visitor, Tone::Attention, "선생님을 기다려 주세요")
        );
        assert_eq!(s.detail.map(|d| d.en), Some("Please see a teacher".into()));
        assert!(s.air.is_some() && !s.chime);
        shutdown.trigger();
    }

    /// The handle finds the display name in the gallery; an unknown id falls back to itself.
    #[tokio::test]
    async fn names_come_from_the_gallery() {
        let (handle, mut rx, shutdown, dir) = hub(Duration::from_secs(4));
        let store = GalleryStore::new(dir.path().join("gallery.json"));
        let e = dolbom_face::Embedding::normalized(vec![1.0, 0.0]).expect("non-zero");
        store
            .update(|g| -> Result<(), Box<dyn std::error::Error>> {
                Ok(g.enroll("minji", Role::Child, "김민지", vec![e], "m", 1)?)
            })
            .expect("enrol");
        let h = handle.clone();
        tokio::task::spawn_blocking(move || {
            h.attendance("minji", Role::Child, AttendanceKind::Departure, TemperatureStatus::ScreeningOff, None)
        })
        .await
        .expect("told");
        let s = next(&mut rx).await;
        assert_eq!((s.title.ko.as_str(), s.detail), ("김민지 어린이, 안녕히 가세요!", None));
        shutdown.trigger();
    }
}
