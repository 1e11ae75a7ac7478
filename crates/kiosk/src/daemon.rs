//! `dolbom kiosk`: the daemon. Wiring only: each stage is built from its own config section,
//! then spawned; this file also owns shutdown.
//!
//! ```text
//! camera thread ──FrameSlot──► vision thread ──mpsc──► event stage ──outbox (SQLite)──► publisher ──► broker
//! tag reader, PIN socket ──────────────────┘ (same sightings, method tag/pin)
//! air sensor threads ──mpsc──► air stage ──────────────────────────┘
//! outdoor poller ──────watch──┘
//! vision, event and air stages ──DoorHandle──► door hub ──watch──► web (door screen, loopback)
//! ```
//!
//! Shutdown is one [`Shutdown`] token, triggered by SIGTERM or SIGINT (or, once everything has
//! drained, by the end of a file with `camera.at_end = "exit"`), and flows down the same path:
//! the camera stops, the vision stage settles the tracks still open, the event stage records
//! what it was handed, and the publisher drains the outbox, publishes the offline status and
//! disconnects. Whatever could not be delivered stays in the outbox for next time.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use dolbom_face::gallery::{GalleryError, Matcher, StoreError as GalleryStoreError};
use dolbom_face::identify::FacePipeline;
use dolbom_face::{FaceError, FaceModels};

use crate::air::{AirStage, HomeAssistantConfig, OutdoorAir};
use crate::alerts::AlertContext;
use crate::commands::CommandStage;
use crate::config::{Config, ConfigError};
use crate::disk::DiskWatch;
use crate::door::{DoorHandle, DoorHub};
use crate::events::EventStage;
use crate::health::Health;
use crate::notify::Notifier;
use crate::outbox::{Outbox, Publisher};
use crate::screening::ScreeningStage;
use crate::shutdown::Shutdown;
use crate::site::Site;
use crate::sources::air::stage::{run_co2, run_pms, SensorStage};
use crate::sources::camera::{run_camera, FrameSlot};
use crate::sources::thermal::source::{run_thermal, LatestFrame};
use crate::store::{Store, StoreError};
use crate::vision::stage::LoadedGallery;
use crate::vision::{Tracker, Vision};

#[derive(Debug, thiserror::Error)]
pub enum KioskError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Models(#[from] FaceError),
    #[error(transparent)]
    Gallery(#[from] GalleryError),
    #[error(transparent)]
    GalleryStore(#[from] GalleryStoreError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot create state directory {path}: {error}")]
    StateDir { path: std::path::PathBuf, error: std::io::Error },
    #[error("cannot start: {0}")]
    Start(std::io::Error),
    #[error("config file {path}: {error}")]
    CommandKeys { path: std::path::PathBuf, error: crate::command_gate::KeyError },
    #[error(transparent)]
    Pin(#[from] crate::pin::PinError),
    #[error("consents past their retention could not be ended: {0}")]
    ConsentExpiry(#[from] crate::consent_expiry::ExpiryError),
    #[error(transparent)]
    Web(#[from] crate::web::WebError),
    #[error("the {0} stage crashed; see the log above (queued events were kept)")]
    StageCrashed(String),
}

/// The alert context a kiosk's config describes for its site (the daemon and `dolbom alerts`
/// share it).
pub fn alert_context(config: &Config, site: Site) -> AlertContext {
    AlertContext {
        site,
        staff: config.fever.staff.clone(),
        capacity: config.state.outbox_capacity,
        threshold_c: config.fever.threshold_c,
        settle_within_ms: (config.fever.settle_within_mins * 60_000) as i64,
        expiry_ms: (config.mqtt.publish.event_expiry_minutes * 60_000) as i64,
    }
}

/// Runs the daemon until it is told to stop. Start-up problems (config, models, database) are
/// errors; everything after start-up is logged, counted and retried instead.
pub fn run(config: &Config, config_path: &Path) -> Result<(), KioskError> {
    let site = config.site(config_path)?;
    let camera_config = config.camera(config_path)?.clone();
    let policy = config.attendance_policy(&site, config_path)?;
    std::fs::create_dir_all(&config.state.dir)
        .map_err(|error| KioskError::StateDir { path: config.state.dir.clone(), error })?;
    let _lock = crate::store::lock_state_dir(&config.state.lock_file())
        .map_err(|error| KioskError::StateDir { path: config.state.dir.clone(), error })?;

    let models = FaceModels::load(&config.runtime, &config.face)?;
    let gallery_store = config.gallery.store();
    if gallery_store.key_file().is_none() {
        warn!(
            path = %gallery_store.path().display(),
            "the gallery is not encrypted at rest: set gallery.key_file or load the gallery-key credential (docs/security.md) / 갤러리(얼굴 템플릿)가 암호화되지 않았습니다"
        );
    }
    let tz = config.timezone();
    // Consents past their date end before the first frame is matched (then hourly, below).
    crate::consent_expiry::expire(&gallery_store, &config.audit_log(), &tz, jiff::Timestamp::now())?;
    // Read once here and handed to the vision stage, which rereads it only when it changes.
    let gallery = LoadedGallery::load(&gallery_store)?;
    gallery.gallery.check_embedder(models.embedder.model_id())?;
    let unconsented =
        gallery.gallery.faces_without_consent(jiff::Timestamp::now().to_zoned_datetime(tz.clone()).date());
    if !unconsented.is_empty() {
        warn!(
            children = ?unconsented,
            "face templates of children without a guardian's consent in force: record it (`dolbom consent add`) or \
             erase them (`dolbom consent withdraw`) / 보호자 동의 없이 얼굴 템플릿이 있는 아동이 있습니다"
        );
    }
    info!(people = gallery.gallery.people.len(), center = %site.center, kiosk = %site.kiosk, "starting");

    let health = Arc::new(Health::default());
    let disk = Arc::new(DiskWatch::new(&config.state.dir, config.state.reserve_mb << 20));
    health.watch_disk(disk.clone());
    let store = Arc::new(Store::open(&config.state.db_file())?);
    let outbox = Outbox::new(store, config.state.outbox_capacity, health.clone())?;
    let backlog = outbox.depth()?;
    if backlog > 0 {
        info!(backlog, "events from before the restart are still queued; they go out first");
    }

    let shutdown = Shutdown::new();
    let door = door_screen(config, &site)?;
    let door_handle = door.as_ref().map(|d| d.handle.clone());
    let notifier = Arc::new(Notifier::from_env());
    // Every watched stage that runs starts on the clock: one that never beats is stalled too.
    let air_runs = config.air.is_some() || config.outdoor.is_some();
    for stage in crate::notify::WATCHED.into_iter().filter(|s| air_runs || *s != crate::notify::AIR) {
        health.beat(stage);
    }
    let slot = Arc::new(FrameSlot::default());
    let camera = {
        let (slot, health, shutdown) = (slot.clone(), health.clone(), shutdown.clone());
        std::thread::Builder::new()
            .name("camera".into())
            .spawn(move || {
                let _guard = shutdown.guard("camera");
                run_camera(camera_config, slot, health, shutdown)
            })
            .map_err(KioskError::Start)?
    };
    let thermal_latest: LatestFrame = Arc::default();
    let thermal = match &config.thermal {
        Some(t) => {
            health.set_sensor(crate::health::THERMAL, crate::health::SensorState::Starting, None);
            let (t, latest, health, shutdown) = (t.clone(), thermal_latest.clone(), health.clone(), shutdown.clone());
            Some(
                std::thread::Builder::new()
                    .name("thermal".into())
                    .spawn(move || {
                        let _guard = shutdown.guard("thermal");
                        run_thermal(t, latest, health, shutdown)
                    })
                    .map_err(KioskError::Start)?,
            )
        }
        None => None,
    };
    // Indoor air: a thread per configured sensor, each handing window means to the air stage.
    let (indoor_tx, indoor_rx) = mpsc::channel(32);
    let mut air_sensors = Vec::new();
    if let Some(air) = &config.air {
        let sensors: [(&'static str, bool, SensorStage); 2] =
            [(crate::air::AIR_PM, air.pms.is_some(), run_pms), (crate::air::AIR_CO2, air.co2.is_some(), run_co2)];
        for (name, run) in sensors.into_iter().filter_map(|(name, configured, run)| configured.then_some((name, run))) {
            health.set_sensor(name, crate::health::SensorState::Starting, None);
            let (air, tx, health, shutdown) = (air.clone(), indoor_tx.clone(), health.clone(), shutdown.clone());
            air_sensors.push(
                std::thread::Builder::new()
                    .name(name.replace('_', "-"))
                    .spawn(move || {
                        let _guard = shutdown.guard(name);
                        run(air, tx, health, shutdown)
                    })
                    .map_err(KioskError::Start)?,
            );
        }
    }
    drop(indoor_tx);
    let air_stage = air_runs.then(|| {
        let mut stage = AirStage::new(
            site.clone(),
            outbox.clone(),
            config.air.as_ref().map(|a| a.limits.clone()).unwrap_or_default(),
            (config.mqtt.publish.event_expiry_minutes * 60_000) as i64,
        );
        if let Some(air) = &config.air {
            stage.interval = std::time::Duration::from_secs(air.telemetry_secs);
            stage.stale_after = air.stale_after();
        }
        stage.door = door_handle.clone();
        stage
    });
    announce_to_home_assistant(&config.homeassistant, &site, &outbox);
    if let Ok(conn) = outbox.store().lock() {
        crate::alerts::refresh_active_count(&conn, &health);
    }
    let screening = match (&config.thermal, config.fever.enabled) {
        (Some(t), true) => Some(
            ScreeningStage::new(
                config.fever.clone(),
                thermal_latest.clone(),
                t.max_age_ms,
                config.tracking.max_yaw_ratio,
            )
            .with_health(health.clone()),
        ),
        _ => None,
    };
    let alerts = alert_context(config, site.clone());
    let screening_on = screening.is_some();
    let (sightings_tx, sightings_rx) = mpsc::channel(64);
    // The check-ins without a face stop when the vision stage does (at shutdown, or at the end
    // of a file), so the event stage sees every sender go and finishes.
    let checkin_stop = Shutdown::new();
    let base = config_path.parent().unwrap_or_else(|| Path::new("."));
    let checkins = spawn_checkins(config, base, outbox.store(), &sightings_tx, &health, &shutdown, &checkin_stop)?;
    // Captures for enrolment at the door: one at a time, asked by the staff desk.
    let (capture_tx, capture_rx) = std::sync::mpsc::sync_channel(1);
    let embedder = models.embedder.model_id().to_string();
    let vision = {
        let stage = Vision {
            pipeline: FacePipeline::new(models, Matcher::new(config.face.matcher.clone())),
            tracker: Tracker::new(config.tracking.clone()),
            config: config.recognition.clone(),
            gallery_store,
            gallery,
            tz: tz.clone(),
            audit: config.audit_log(),
            health: health.clone(),
            screening,
            evidence: Default::default(),
            door: door_handle.clone(),
            captures: Some(capture_rx),
            capture: None,
        };
        let (slot, shutdown, checkin_stop) = (slot.clone(), shutdown.clone(), checkin_stop.clone());
        std::thread::Builder::new()
            .name("vision".into())
            .spawn(move || {
                let _guard = shutdown.guard("vision");
                stage.run(slot, sightings_tx);
                checkin_stop.trigger();
            })
            .map_err(KioskError::Start)?
    };
    let events = EventStage {
        site: site.clone(),
        policy,
        outbox: outbox.clone(),
        expiry_ms: (config.mqtt.publish.event_expiry_minutes * 60_000) as i64,
        alerts: alerts.clone(),
        screening_on,
        disk,
        waiting_capacity: config.state.waiting_capacity,
        door: door_handle,
    };
    let (commands_tx, commands_rx) = mpsc::channel(64);
    let gate = config
        .commands
        .load(base)
        .map_err(|error| KioskError::CommandKeys { path: config_path.to_path_buf(), error })?;
    gate.announce();
    let staff = crate::staff::StaffDesk {
        gallery: config.gallery.store(),
        audit: config.audit_log(),
        tz: tz.clone(),
        policy: events.policy.clone(),
        screening_on,
        capture: Some(capture_tx),
        embedder,
    };
    let commands = CommandStage {
        context: alerts,
        outbox: outbox.clone(),
        malformed: Default::default(),
        gate,
        staff: Some(Arc::new(staff)),
    };
    let roster = (Arc::new(config.gallery.store()), site.clone(), tz.clone(), outbox.clone());
    let (retention_outbox, retention_topics) = (outbox.clone(), site.topics.clone());
    let publisher = Publisher {
        broker: config.mqtt.broker.clone(),
        config: config.mqtt.publish.clone(),
        site,
        outbox,
        health: health.clone(),
        status_file: Some(config.state.status_file()),
        commands: Some(commands_tx),
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(KioskError::Start)?;
    runtime.block_on(async {
        let signals = tokio::spawn({
            let (shutdown, notifier) = (shutdown.clone(), notifier.clone());
            async move {
                tokio::select! {
                    _ = wait_for_signal() => {
                        info!("shutdown requested");
                        shutdown.trigger();
                    }
                    _ = shutdown.wait() => {}
                }
                notifier.stopping();
            }
        });
        let watchdog = tokio::spawn(notifier.clone().watch(health.clone(), shutdown.clone()));
        // The camera may sit in a blocking read: at shutdown the hand-over ends at once, so the
        // vision stage settles the tracks still open and finishes.
        let hand_over = tokio::spawn({
            let (shutdown, slot, checkin_stop) = (shutdown.clone(), slot.clone(), checkin_stop.clone());
            async move {
                shutdown.wait().await;
                slot.end();
                checkin_stop.trigger();
            }
        });
        let (done_tx, done_rx) = watch::channel(false);
        // Every task holds a guard: one that panics stops the kiosk at once (and fails it,
        // below) rather than let it run on with a stage missing.
        let mqtt = tokio::spawn({
            let guard = shutdown.guard("mqtt");
            async move {
                let _guard = guard;
                publisher.run(done_rx).await
            }
        });
        let command_task = tokio::spawn({
            let guard = shutdown.guard("command");
            async move {
                let _guard = guard;
                commands.run(commands_rx).await
            }
        });
        // The roster at start and after each gallery change; ends at shutdown.
        let roster_task = tokio::spawn({
            let guard = shutdown.guard("roster");
            let (store, site, tz, outbox) = roster;
            let shutdown = shutdown.clone();
            async move {
                let _guard = guard;
                crate::staff::roster::run(store, site, tz, outbox, shutdown).await
            }
        });
        // Old rows go at start and daily; ends at shutdown.
        let retention = tokio::spawn({
            let guard = shutdown.guard("retention");
            let (config, shutdown) = (config.retention.clone(), shutdown.clone());
            async move {
                let _guard = guard;
                crate::retention::run(retention_outbox, retention_topics, config, shutdown).await
            }
        });
        let expiry = tokio::spawn({
            let guard = shutdown.guard("consent_expiry");
            let (store, audit, shutdown) = (config.gallery.store(), config.audit_log(), shutdown.clone());
            async move {
                let _guard = guard;
                crate::consent_expiry::run(store, audit, tz, shutdown).await
            }
        });
        // The air stage and the outdoor poller run while the kiosk does; the stage stops before
        // the publisher drains, so what it queued last goes out with the rest.
        let (air_stop, air_stopped) = tokio::sync::oneshot::channel::<()>();
        let mut air_task = air_stage.map(|stage| {
            let (outdoor_tx, outdoor_rx) = watch::channel(OutdoorAir::default());
            let outdoor = config.outdoor.clone().unwrap_or_default();
            let poller = tokio::spawn({
                let guard = shutdown.guard("outdoor");
                let (health, shutdown) = (health.clone(), shutdown.clone());
                async move {
                    let _guard = guard;
                    crate::sources::outdoor::run(outdoor, outdoor_tx, health, shutdown).await
                }
            });
            let stage = tokio::spawn({
                let guard = shutdown.guard("air");
                let (shutdown, health) = (shutdown.clone(), health.clone());
                async move {
                    let _guard = guard;
                    let stop = async move {
                        tokio::select! {
                            _ = shutdown.wait() => {}
                            _ = air_stopped => {}
                        }
                    };
                    stage.run_until(indoor_rx, outdoor_rx, stop).await;
                    // Stopped on purpose: no longer a stage the watchdog waits for.
                    health.retire(crate::notify::AIR);
                }
            });
            (poller, stage)
        });
        // The door screen: its hub and its page, until shutdown.
        let door_tasks = door.map(|DoorScreen { hub, state, bound, .. }| {
            let hub = tokio::spawn({
                let (guard, shutdown) = (shutdown.guard("door"), shutdown.clone());
                async move {
                    let _guard = guard;
                    hub.run(shutdown).await
                }
            });
            let web = tokio::spawn({
                let (guard, shutdown) = (shutdown.guard("web"), shutdown.clone());
                async move {
                    let _guard = guard;
                    let router = crate::web::door::router(state, shutdown.clone());
                    crate::web::serve(bound, router, shutdown).await
                }
            });
            (hub, web)
        });
        let events_task = tokio::spawn({
            let guard = shutdown.guard("event");
            async move {
                let _guard = guard;
                // Returns when the vision thread has exited and dropped its sender.
                events.run(sightings_rx).await
            }
        });
        // Every stage runs: systemd may consider the kiosk started.
        notifier.ready();
        let _ = events_task.await;
        let _ = air_stop.send(());
        if let Some((_, stage)) = &mut air_task {
            let _ = stage.await;
        }
        let _ = done_tx.send(true);
        let _ = mqtt.await;
        // The publisher is gone, and with it the commands' sender: the command stage ends.
        let _ = command_task.await;
        // Whatever ended the run (a signal, the end of a file), every stage stops now.
        shutdown.trigger();
        let _ = tokio::join!(signals, hand_over, retention, expiry, roster_task);
        if let Some((poller, _)) = air_task {
            let _ = poller.await;
        }
        if let Some((hub, web)) = door_tasks {
            let _ = tokio::join!(hub, web);
        }
        watchdog.abort();
    });
    if camera.is_finished() {
        let _ = camera.join();
    }
    for t in thermal.into_iter().chain(air_sensors).chain(checkins).filter(|t| t.is_finished()) {
        let _ = t.join();
    }
    let _ = vision.join();
    // A crash must end in a failing exit code, so systemd restarts the kiosk.
    if let Some(stage) = shutdown.crashed().first() {
        return Err(KioskError::StageCrashed(stage.to_string()));
    }
    info!("stopped");
    Ok(())
}

/// The door screen's parts before the runtime starts: its socket bound (a port in use stops
/// the start), its hub, the handle the stages tell, and the state the page serves.
struct DoorScreen {
    hub: DoorHub,
    handle: DoorHandle,
    state: watch::Receiver<crate::door::DoorState>,
    bound: crate::web::Bound,
}

fn door_screen(config: &Config, site: &Site) -> Result<Option<DoorScreen>, KioskError> {
    let c = &config.door_screen;
    if !c.enabled {
        return Ok(None);
    }
    let bound = crate::web::bind(c.listen)?;
    let center_name = c.center_name.clone().unwrap_or_else(|| site.center.clone());
    let timezone = config.site.as_ref().map_or_else(|| "Asia/Seoul".to_string(), |s| s.timezone.clone());
    let names = crate::checkin::Registry::new(config.gallery.store());
    let idle_after = std::time::Duration::from_secs(c.idle_after_secs);
    let (hub, handle, state) = DoorHub::new(center_name, timezone, idle_after, c.chime, names);
    Ok(Some(DoorScreen { hub, handle, state, bound }))
}

/// The tag reader's and the PIN input's threads, when configured: each sends the check-ins of
/// enrolled people to the event stage as sightings, and stops with `stop` (triggered when the
/// vision stage ends, and at shutdown). When one cannot start, those already started are
/// stopped and joined before the error is returned.
fn spawn_checkins(
    config: &Config,
    base: &Path,
    store: &Arc<Store>,
    sightings: &mpsc::Sender<crate::vision::Sighting>,
    health: &Arc<Health>,
    shutdown: &Shutdown,
    stop: &Shutdown,
) -> Result<Vec<std::thread::JoinHandle<()>>, KioskError> {
    let mut threads = Vec::new();
    let started = start_checkins(config, base, store, sightings, health, shutdown, stop, &mut threads);
    if started.is_err() {
        stop.trigger();
        for t in threads.drain(..) {
            let _ = t.join();
        }
    }
    started.map(|()| threads)
}

#[allow(clippy::too_many_arguments)]
fn start_checkins(
    config: &Config,
    base: &Path,
    store: &Arc<Store>,
    sightings: &mpsc::Sender<crate::vision::Sighting>,
    health: &Arc<Health>,
    shutdown: &Shutdown,
    stop: &Shutdown,
    threads: &mut Vec<std::thread::JoinHandle<()>>,
) -> Result<(), KioskError> {
    if let Some(tag) = config.tag.as_ref().filter(|t| t.enabled) {
        health.set_sensor(crate::sources::tag::TAG, crate::health::SensorState::Starting, None);
        let (tag, tx, health, guard, stop) =
            (tag.clone(), sightings.clone(), health.clone(), shutdown.clone(), stop.clone());
        let gallery = config.gallery.store();
        threads.push(
            std::thread::Builder::new()
                .name("tag".into())
                .spawn(move || {
                    let _guard = guard.guard("tag");
                    crate::sources::tag::run_tag(tag, gallery, tx, health, stop)
                })
                .map_err(KioskError::Start)?,
        );
    }
    if config.pin.enabled {
        let pepper = config.pin.pepper(base).map_err(crate::pin::PinError::from)?;
        let path = config.pin.socket_path(&config.state.dir);
        let listener = crate::pin::listen(&path)?;
        let desk = crate::pin::PinDesk {
            registry: crate::checkin::Registry::new(config.gallery.store()),
            pepper,
            limits: config.pin.limits(),
            store: store.clone(),
            sightings: sightings.clone(),
            health: health.clone(),
        };
        let (guard, stop) = (shutdown.clone(), stop.clone());
        threads.push(
            std::thread::Builder::new()
                .name("pin".into())
                .spawn(move || {
                    let _guard = guard.guard("pin");
                    crate::pin::run_pin(listener, path, desk, stop)
                })
                .map_err(KioskError::Start)?,
        );
    }
    Ok(())
}

/// Queues the Home Assistant discovery configs (retained) when enabled. A failure costs the
/// announcement only: it is logged, and the next start announces again.
fn announce_to_home_assistant(config: &HomeAssistantConfig, site: &Site, outbox: &Outbox) {
    let now_ms = jiff::Timestamp::now().as_millisecond();
    match crate::air::homeassistant::announce(config, site, outbox, now_ms) {
        Ok(0) => {}
        Ok(n) => info!(entities = n, "announced to Home Assistant / 홈 어시스턴트에 등록"),
        Err(e) => warn!(error = %e, "could not queue the Home Assistant announcement / 홈 어시스턴트 등록 실패"),
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            warn!("cannot listen for signals; stop with SIGKILL");
            std::future::pending::<()>().await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A PIN socket that cannot be bound after the tag reader's thread started: the reader is
    /// stopped and joined before the error comes back (it held the last other `Health` clone).
    #[test]
    fn a_pin_input_that_cannot_start_stops_the_tag_reader_already_started() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("pepper"), "0123456789abcdef0123456789abcdef\n").expect("pepper");
        std::fs::set_permissions(dir.path().join("pepper"), std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let text = format!(
            r#"
[face.detector]
kind = "yunet"
model = "m/yunet.onnx"
[face.embedder]
kind = "sface"
model = "m/sface.onnx"
[gallery]
path = "gallery.json"
[state]
dir = "state"
[tag]
port = "{0}/no-such-reader"
retry_max_ms = 100
[pin]
enabled = true
pepper_file = "pepper"
socket = "{0}/no-such-dir/pin.sock"
"#,
            dir.path().display()
        );
        let config_path = dir.path().join("kiosk.toml");
        let config = Config::parse(&text, &config_path).expect("config");
        let store = Arc::new(Store::open(&dir.path().join("kiosk.db")).expect("store"));
        let (tx, _rx) = mpsc::channel(4);
        let health = Arc::new(Health::default());
        let (shutdown, stop) = (Shutdown::new(), Shutdown::new());
        let result = spawn_checkins(&config, dir.path(), &store, &tx, &health, &shutdown, &stop);
        assert!(matches!(result, Err(KioskError::Pin(crate::pin::PinError::Listen { .. }))));
        assert!(stop.is_triggered(), "the started threads were told to stop");
        assert_eq!(Arc::strong_count(&health), 1, "and joined: the tag thread's clone is gone");
    }
}
