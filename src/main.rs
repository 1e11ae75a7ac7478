//! The `dolbom` command line: the kiosk's tools for enrolment and identification.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use dolbom::config::Config;
use dolbom::contract::StatusPayload;
use dolbom::enroll::{self, Enrollment};
use dolbom::face::image::load_bgr;
use dolbom::face::FaceModels;
use dolbom::gallery::{GalleryError, GalleryStore, Matcher, Role};
use dolbom::identify::FacePipeline;
use dolbom::sim::{write_walk_up, WalkUp, Walker};
use tracing::{info_span, warn};

#[derive(Parser)]
#[command(name = "dolbom", version, about = "Daycare entrance kiosk: on-device face recognition and events")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Enrol a person from one or more photos (only embeddings are stored, never the photos).
    Enroll {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Stable id of the person, e.g. `child-0012`.
        #[arg(long = "person", value_name = "ID")]
        person: String,
        #[arg(long, value_name = "child|guardian|staff")]
        role: Role,
        /// Display name, e.g. `김민지`.
        #[arg(long)]
        name: String,
        #[arg(required = true, value_name = "IMAGE")]
        images: Vec<PathBuf>,
    },
    /// List or remove enrolled people.
    Gallery {
        #[command(subcommand)]
        action: GalleryAction,
    },
    /// Find and identify every face in the images; prints one JSON object per face per line.
    Identify {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        #[arg(required = true, value_name = "IMAGE")]
        images: Vec<PathBuf>,
    },
    /// Run the kiosk daemon: camera → faces → attendance and visitor events over MQTT.
    Kiosk {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Print the kiosk's health (from its status file); exit 1 when degraded, stale or offline.
    Status {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Run the relay: kiosk events from MQTT to parents' phones by SMS (`relay log` shows what was sent).
    Relay {
        #[arg(long, value_name = "FILE", global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: Option<RelayAction>,
    },
    /// Fever alerts: list, silence, resolve (works while the daemon runs).
    Alerts {
        #[command(subcommand)]
        action: AlertsAction,
    },
    /// Calibration helpers.
    Calibrate {
        #[command(subcommand)]
        what: CalibrateWhat,
    },
    /// Simulated inputs for demos and tests.
    Sim {
        #[command(subcommand)]
        what: SimCommand,
    },
}

#[derive(Subcommand)]
enum SimCommand {
    /// Write an MJPG .avi in which each photo walks up to the door in turn.
    WalkUp {
        #[arg(long, value_name = "FILE.avi")]
        out: PathBuf,
        #[arg(long, default_value_t = 10.0)]
        fps: f64,
        /// PHOTO[@SKIN_C][@far]; the temperature is for `sim thermal`, `far` stops short of the door.
        #[arg(required = true, value_name = "WALKER")]
        walkers: Vec<Walker>,
    },
    /// Stream a thermal sensor on a pseudo-terminal, rendering the same walk-up scene; the
    /// daemon opens the path given by --link as its serial port. Starts when the port is opened.
    Thermal {
        /// The kiosk config: its detector finds the faces, its calibration maps them.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Symlink created to the pseudo-terminal.
        #[arg(long, value_name = "PATH")]
        link: PathBuf,
        /// Frame rate of the video the scene accompanies.
        #[arg(long, default_value_t = 10.0)]
        video_fps: f64,
        #[arg(long, default_value_t = 8.0)]
        fps: f64,
        #[arg(long, default_value_t = 24.0)]
        ambient: f32,
        #[arg(long, default_value_t = 0.1)]
        noise: f32,
        #[arg(long, default_value_t = 0.02)]
        dropout: f64,
        #[arg(long, default_value_t = 0.02)]
        corrupt: f64,
        /// Speak the CSV line protocol instead of GY-MCU90640 frames.
        #[arg(long)]
        csv: bool,
        /// Keep streaming this long (default: the scene's length plus 2 s).
        #[arg(long)]
        seconds: Option<f64>,
        #[arg(required = true, value_name = "WALKER")]
        walkers: Vec<Walker>,
    },
}

#[derive(Subcommand)]
enum RelayAction {
    /// Deliveries, newest first: to whom, what, when, and why something was not sent.
    Log {
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum AlertsAction {
    /// Every alert on this kiosk, newest first (JSON lines).
    List {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Silence an active alert (it will not fire again for this person today).
    Silence {
        alert_id: String,
        /// Your staff id (must be in fever.staff).
        #[arg(long)]
        by: String,
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Mark an alert resolved (e.g. after a thermometer check).
    Resolve {
        alert_id: String,
        #[arg(long)]
        by: String,
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum CalibrateWhat {
    /// Fit the camera-to-thermal transform from point pairs seen by both (e.g. a heated target
    /// at three or more places): prints the `fever.calibration` line for the config.
    Thermal {
        /// CAMERA_X,CAMERA_Y=THERMAL_X,THERMAL_Y, at least three, not all on one line.
        #[arg(required = true, value_name = "PAIR")]
        pairs: Vec<String>,
    },
}

#[derive(Subcommand)]
enum GalleryAction {
    /// One line per person: id, role, number of photos, name.
    List {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove a person and all their embeddings.
    Remove {
        #[arg(value_name = "ID")]
        id: String,
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
}

/// The daemon logs its life (starts, events, reconnects) by default; the one-shot tools stay quiet.
fn default_log_level() -> &'static str {
    if std::env::args().nth(1).as_deref() == Some("kiosk") {
        "info"
    } else {
        "warn"
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // journald and log files want plain text; colours only for a person at a terminal.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DOLBOM_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_log_level())),
        )
        .init();
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Enroll { config, person, role, name, images } => {
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
                warn!("{}: resembles {person}'s other photos only weakly (similarity {s:.2}); check it is the right person", path.display());
            }
            if let Some((other, s)) = &report.resembles {
                warn!("these photos also match `{other}` (similarity {s:.2}); is this the same person enrolled twice?");
            }
            println!(
                "enrolled {person} ({role}, {name}): {} photo(s) added, {} in total",
                report.photos.len(),
                report.total_embeddings
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Gallery { action: GalleryAction::List { config, json } } => {
            let config = Config::load(&config)?;
            let gallery = GalleryStore::new(&config.gallery.path).load()?;
            for p in &gallery.people {
                if json {
                    let line = serde_json::json!({
                        "id": p.id, "role": p.role, "name": p.name,
                        "photos": p.embeddings.len(), "enrolled_at": p.enrolled_at,
                    });
                    println!("{line}");
                } else {
                    println!("{}\t{}\t{}\t{}", p.id, p.role, p.embeddings.len(), p.name);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Gallery { action: GalleryAction::Remove { id, config } } => {
            let config = Config::load(&config)?;
            let store = GalleryStore::new(&config.gallery.path);
            let removed = store.update(|g| g.remove(&id).map_err(anyhow::Error::from))?;
            println!(
                "removed {} ({}, {}) and {} embedding(s)",
                removed.id,
                removed.role,
                removed.name,
                removed.embeddings.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Identify { config, images } => {
            let config = Config::load(&config)?;
            let gallery = GalleryStore::new(&config.gallery.path).load()?;
            let mut pipeline = pipeline(&config)?;
            gallery
                .check_embedder(pipeline.models.embedder.model_id())
                .map_err(|e: GalleryError| anyhow::anyhow!(e))?;
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
                            println!("{}", serde_json::to_string(&face).context("serialising a result")?);
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
        Command::Kiosk { config: path } => {
            let config = Config::load(&path)?;
            dolbom::kiosk::run(&config, &path)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { config } => status(&config),
        Command::Sim {
            what:
                SimCommand::Thermal {
                    config,
                    link,
                    video_fps,
                    fps,
                    ambient,
                    noise,
                    dropout,
                    corrupt,
                    csv,
                    seconds,
                    walkers,
                },
        } => {
            let config = Config::load(&config)?;
            let mut models = FaceModels::load(&config)?;
            let faces =
                dolbom::sim::thermal::photo_faces(&walkers, models.detector.as_mut()).map_err(anyhow::Error::msg)?;
            let mut pty = dolbom::sim::thermal::open_pty().context("cannot open a pseudo-terminal")?;
            dolbom::sim::thermal::link(&link, &pty.slave_path)
                .with_context(|| format!("cannot create {}", link.display()))?;
            println!("{}", pty.slave_path);
            let sim = dolbom::sim::thermal::ThermalSim {
                fps,
                ambient_c: ambient,
                noise_c: noise,
                dropout,
                corrupt,
                csv,
                calibration: config.fever.calibration,
                seed: 7,
            };
            let p = WalkUp { fps: video_fps, ..WalkUp::default() };
            let sent = dolbom::sim::thermal::stream(
                &mut pty,
                &walkers,
                &faces,
                &p,
                &sim,
                seconds.map(std::time::Duration::from_secs_f64),
            )?;
            eprintln!("sim thermal: {sent} frames sent");
            let _ = std::fs::remove_file(&link);
            Ok(ExitCode::SUCCESS)
        }
        Command::Alerts { action } => alerts(action),
        Command::Relay { config, action } => {
            let path = config.context("--config FILE is required")?;
            let file = dolbom::relay::RelayFile::load(&path)?;
            match action {
                None => {
                    dolbom::relay::run(file)?;
                    Ok(ExitCode::SUCCESS)
                }
                Some(RelayAction::Log { limit, json }) => {
                    let store = dolbom::relay::store::open(&file.store(), None)?;
                    for d in store.log(limit)? {
                        if json {
                            let line = serde_json::json!({
                                "id": d.id, "event_id": d.event_id, "to": d.recipient, "guardian": d.guardian,
                                "child": d.child, "center": d.center, "notice": d.notice, "type": d.msg_type,
                                "text": d.body, "status": d.status, "attempts": d.attempts,
                                "updated_ms": d.updated_ms, "detail": d.detail, "instance": d.instance,
                            });
                            println!("{line}");
                        } else {
                            let when = jiff::Timestamp::from_millisecond(d.updated_ms)
                                .map(|t| t.to_string())
                                .unwrap_or_default();
                            println!(
                                "{when}\t{}\t{}\t{}\t{}\t{}\t{}{}",
                                d.status,
                                d.recipient,
                                d.child,
                                d.notice,
                                d.msg_type,
                                d.body,
                                d.detail.map(|x| format!("\t({x})")).unwrap_or_default()
                            );
                        }
                    }
                    Ok(ExitCode::SUCCESS)
                }
            }
        }
        Command::Calibrate { what: CalibrateWhat::Thermal { pairs } } => {
            let pairs = pairs.iter().map(|p| parse_pair(p)).collect::<Result<Vec<_>>>()?;
            let m = dolbom::thermal::fusion::fit_affine(&pairs).map_err(anyhow::Error::msg)?;
            let residual = dolbom::thermal::fusion::rms_error(&m, &pairs);
            println!("# fitted from {} point pairs; RMS error {residual:.2} thermal pixels", pairs.len());
            println!("calibration = [{:.6}, {:.6}, {:.4}, {:.6}, {:.6}, {:.4}]", m[0], m[1], m[2], m[3], m[4], m[5]);
            Ok(ExitCode::SUCCESS)
        }
        Command::Sim { what: SimCommand::WalkUp { out, fps, walkers } } => {
            let appearances = write_walk_up(&out, &walkers, WalkUp { fps, ..WalkUp::default() })?;
            for a in appearances {
                println!("{}\t{}\t{}", a.first_frame, a.last_frame, a.photo);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn status(config_path: &Path) -> Result<ExitCode> {
    let config = Config::load(config_path)?;
    let path = dolbom::kiosk::status_file(&config);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("no status at {} (has `dolbom kiosk` run with this config?)", path.display()))?;
    let status: StatusPayload =
        serde_json::from_str(&text).with_context(|| format!("{} is not a status file", path.display()))?;
    println!("{text}");
    // The daemon rewrites the file at every status interval; much older means it is not running.
    let age = std::fs::metadata(&path).and_then(|m| m.modified()).ok().and_then(|m| m.elapsed().ok());
    let stale = age.is_some_and(|a| a.as_secs() > 3 * config.mqtt.status_interval_secs + 5);
    let degraded = status.health.as_ref().is_none_or(|h| h.degraded);
    if status.state != "online" || stale || degraded {
        eprintln!(
            "kiosk is {}{}{}",
            status.state,
            if stale { ", status is stale (daemon not running?)" } else { "" },
            if degraded { ", degraded" } else { "" }
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn alerts(action: AlertsAction) -> Result<ExitCode> {
    use dolbom::alerts::{Action, AlertContext, Command as AlertCommand};
    let (path, act) = match &action {
        AlertsAction::List { config } => (config, None),
        AlertsAction::Silence { alert_id, by, config } => (config, Some((Action::Silence, alert_id, by))),
        AlertsAction::Resolve { alert_id, by, config } => (config, Some((Action::Resolve, alert_id, by))),
    };
    let config = Config::load(path)?;
    let settings = config.kiosk(path)?;
    let db = dolbom::kiosk::db_file(&config);
    anyhow::ensure!(db.exists(), "no kiosk database at {} (has `dolbom kiosk` run with this config?)", db.display());
    let store = dolbom::store::Store::open(&db)?;
    let mut conn = store.lock()?;
    let Some((action, alert_id, by)) = act else {
        for a in dolbom::alerts::list(&conn)? {
            println!("{}", serde_json::to_string(&a)?);
        }
        return Ok(ExitCode::SUCCESS);
    };
    let context = AlertContext::for_kiosk(&config, &settings);
    let cmd = AlertCommand { alert_id: alert_id.clone(), by: by.clone(), request_id: None };
    let result = context.apply(&mut conn, action, &cmd, jiff::Timestamp::now().as_millisecond())?;
    println!("{}", serde_json::to_string(&result)?);
    // The running daemon publishes the new state from the outbox within a second.
    Ok(if result.ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn parse_pair(s: &str) -> Result<([f64; 2], [f64; 2])> {
    let bad = || anyhow::anyhow!("`{s}` is not CAMERA_X,CAMERA_Y=THERMAL_X,THERMAL_Y");
    let (a, b) = s.split_once('=').ok_or_else(bad)?;
    let xy = |t: &str| -> Result<[f64; 2]> {
        let (x, y) = t.split_once(',').ok_or_else(bad)?;
        Ok([x.trim().parse().map_err(|_| bad())?, y.trim().parse().map_err(|_| bad())?])
    };
    Ok((xy(a)?, xy(b)?))
}

fn pipeline(config: &Config) -> Result<FacePipeline> {
    let models = FaceModels::load(config)?;
    Ok(FacePipeline::new(models, Matcher::new(config.face.matcher.threshold)))
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
