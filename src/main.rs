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
use dolbom::sim::{write_walk_up, WalkUp};
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
        #[arg(required = true, value_name = "PHOTO")]
        photos: Vec<PathBuf>,
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
        Command::Sim { what: SimCommand::WalkUp { out, fps, photos } } => {
            let refs: Vec<&Path> = photos.iter().map(PathBuf::as_path).collect();
            let appearances = write_walk_up(&out, &refs, WalkUp { fps, ..WalkUp::default() })?;
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

fn pipeline(config: &Config) -> Result<FacePipeline> {
    let models = FaceModels::load(config)?;
    Ok(FacePipeline::new(models, Matcher::new(config.face.matcher.threshold)))
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
