//! The `dolbom` command line: one file per family of subcommands under `cmd/`.
//!
//! Built with both wings by default. `--no-default-features --features relay` builds the relay
//! alone (no OpenCV, no ONNX Runtime); `--no-default-features --features kiosk` the kiosk alone
//! (no PostgreSQL).

/// Prints a line on stdout and returns the error instead of panicking when the reader has gone
/// (`dolbom gallery list | head -1`): `main` then ends quietly. Every command prints through it.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

mod cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
#[cfg(feature = "kiosk")]
use clap::Args;
use clap::{Parser, Subcommand};
#[cfg(feature = "kiosk")]
use dolbom_contract::Role;
#[cfg(feature = "kiosk")]
use dolbom_kiosk::sim::Walker;

#[derive(Parser)]
#[command(name = "dolbom", version, about = "Daycare entrance kiosk: on-device face recognition and events")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Enrol a person from one or more photos (only embeddings are stored, never the photos).
    #[cfg(feature = "kiosk")]
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
        /// An enrolled person this one looks like (sibling, twin), confirmed by you: needed when the
        /// photos come as close to that person as a look-alike; marks the pair. Repeat for several.
        #[arg(long = "lookalike-of", value_name = "ID")]
        lookalike_of: Vec<String>,
        /// Your staff id, for the audit log (`cli` when not given).
        #[arg(long, value_name = "STAFF_ID", default_value = "cli")]
        by: String,
        /// 3 to 5 photos recognise best: frontal and slightly turned.
        #[arg(required = true, value_name = "IMAGE")]
        images: Vec<PathBuf>,
    },
    /// Guardians' consents to a child's face recognition: record, list, withdraw (a child's face
    /// is enrolled only with one in force; withdrawal destroys the face templates at once).
    #[cfg(feature = "kiosk")]
    Consent {
        #[command(subcommand)]
        action: ConsentAction,
    },
    /// The audit log of consents, enrolments and erasures: list it, or verify its hash chain
    /// (exit 1 when a line was edited or removed).
    #[cfg(feature = "kiosk")]
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// List or remove enrolled people; the gallery's encryption key (keygen, seal, rekey).
    #[cfg(feature = "kiosk")]
    Gallery {
        #[command(subcommand)]
        action: GalleryAction,
    },
    /// 125 kHz tags (RDM6300 reader) that check a person in without a face.
    #[cfg(feature = "kiosk")]
    Tag {
        #[command(subcommand)]
        action: TagAction,
    },
    /// PINs that check a person in without a face: set, clear, or enter one at the door.
    #[cfg(feature = "kiosk")]
    Pin {
        #[command(subcommand)]
        action: PinAction,
    },
    /// Find and identify every face in the images; prints one JSON object per face per line.
    #[cfg(feature = "kiosk")]
    Identify {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        #[arg(required = true, value_name = "IMAGE")]
        images: Vec<PathBuf>,
    },
    /// Run the kiosk daemon: camera → faces → attendance and visitor events over MQTT.
    #[cfg(feature = "kiosk")]
    Kiosk {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Print the kiosk's health (from its status file); exit 1 when degraded, stale or offline.
    #[cfg(feature = "kiosk")]
    Status {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Check an installed kiosk: config, ONNX Runtime and models, gallery, camera, serial sensors,
    /// broker, clock, state disk; says what is wrong and how to fix it. Exit 1 when a check fails.
    #[cfg(feature = "kiosk")]
    Doctor {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// One JSON object per finding per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run the relay: kiosk events from MQTT to parents' phones by SMS (`relay log` shows what was sent).
    #[cfg(feature = "relay")]
    Relay {
        #[arg(long, value_name = "FILE", global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: Option<RelayAction>,
    },
    /// Run the staff console (web pages for teachers' phones on the center's LAN); `console passwd`
    /// adds staff accounts.
    #[cfg(feature = "console")]
    Console {
        #[arg(long, value_name = "FILE", global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: Option<ConsoleAction>,
    },
    /// Fever alerts: list, silence, resolve (works while the daemon runs).
    #[cfg(feature = "kiosk")]
    Alerts {
        #[command(subcommand)]
        action: AlertsAction,
    },
    /// Calibration helpers.
    #[cfg(feature = "kiosk")]
    Calibrate {
        #[command(subcommand)]
        what: CalibrateWhat,
    },
    /// Simulated inputs for demos and tests.
    #[cfg(feature = "kiosk")]
    Sim {
        #[command(subcommand)]
        what: SimCommand,
    },
}

#[cfg(feature = "kiosk")]
#[derive(Subcommand)]
pub enum SimCommand {
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
    Thermal(ThermalArgs),
    /// Play indoor air sensors (a Plantower particle sensor, an MH-Z19B CO2 sensor) on
    /// pseudo-terminals over a simulated day or a profile, in compressed time; the daemon opens
    /// the paths given by --pms-link and --co2-link. The clock starts when one is opened.
    Air(AirArgs),
    /// Play an RDM6300 tag reader: the frames of the cards given, on a pseudo-terminal (--link,
    /// which the kiosk's `tag.port` opens) or into a serial device (--port).
    Tag(TagSimArgs),
    /// Serve AirKorea's and KMA's answers on loopback with the values given, for
    /// `[outdoor.airkorea]` / `[outdoor.kma]` `base_url`; prints both base URLs, then serves
    /// until stopped.
    Outdoor {
        /// Address to listen on (port 0: any free port).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
        #[arg(long, default_value = "종로구")]
        station: String,
        /// Outdoor PM10, µg/m³ (leave out: the station reports no value, with a flag).
        #[arg(long)]
        pm10: Option<f32>,
        /// Outdoor PM2.5, µg/m³ (leave out: no value).
        #[arg(long)]
        pm25: Option<f32>,
        /// Outdoor temperature, °C.
        #[arg(long, default_value_t = 3.5, allow_negative_numbers = true)]
        temperature: f32,
        /// Outdoor relative humidity, %.
        #[arg(long, default_value_t = 45.0)]
        humidity: f32,
        /// A file holding the service key requests must carry (others get the services' key error).
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
    },
}

#[cfg(feature = "kiosk")]
#[derive(Args)]
pub struct AirArgs {
    /// Symlink created to the particle sensor's pseudo-terminal.
    #[arg(long, value_name = "PATH")]
    pub pms_link: Option<PathBuf>,
    /// Symlink created to the CO2 sensor's pseudo-terminal.
    #[arg(long, value_name = "PATH")]
    pub co2_link: Option<PathBuf>,
    /// Simulated seconds per real second.
    #[arg(long, default_value_t = 60.0)]
    pub speed: f64,
    /// Time of day the simulated day starts, in hours.
    #[arg(long, default_value_t = 7.0)]
    pub start_hour: f64,
    /// Length of the simulated day, in hours.
    #[arg(long, default_value_t = 12.0)]
    pub hours: f64,
    /// Simulated seconds between samples (and between streamed particle frames).
    #[arg(long, default_value_t = 5.0)]
    pub period: f64,
    /// Fraction of frames preceded by noise bytes.
    #[arg(long, default_value_t = 0.05)]
    pub noise: f64,
    /// Fraction of frames sent with one byte changed.
    #[arg(long, default_value_t = 0.02)]
    pub corrupt: f64,
    /// Send PMS5003ST frames (formaldehyde, temperature, humidity).
    #[arg(long)]
    pub st: bool,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Children in the room (the CO2 they exhale).
    #[arg(long, default_value_t = 15)]
    pub children: u32,
    /// Stop after this many real seconds (default: at the end of the day or profile).
    #[arg(long)]
    pub seconds: Option<f64>,
    /// A CSV `t_s,pm25,pm10,co2` played instead of the day (linear between rows; held after
    /// the last row while --seconds lasts). --start-hour, --hours and --children then do not
    /// apply; --period still spaces the streamed particle frames.
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
}

#[cfg(feature = "kiosk")]
#[derive(Args)]
pub struct TagSimArgs {
    /// Card ids, 10 hex characters each (e.g. 62E3086CED), presented in turn.
    #[arg(required = true, value_name = "CARD_ID")]
    pub cards: Vec<String>,
    /// Create a pseudo-terminal, link it here, and write when the kiosk opens it.
    #[arg(long, value_name = "PATH", conflicts_with = "port", required_unless_present = "port")]
    pub link: Option<PathBuf>,
    /// Write into this serial device or pty end instead.
    #[arg(long, value_name = "PATH")]
    pub port: Option<PathBuf>,
    /// Line noise (with a stray STX) before each card.
    #[arg(long)]
    pub noise: bool,
    /// A frame with a wrong checksum before each card's good frames.
    #[arg(long)]
    pub bad_checksum: bool,
    /// Frames per card, 50 ms apart, as a reader repeats them while the card is held.
    #[arg(long, default_value_t = 1)]
    pub repeat: u32,
    /// Seconds between cards.
    #[arg(long, default_value_t = 1.0)]
    pub gap: f64,
    /// With --link: seconds to keep the pseudo-terminal open after the last frame.
    #[arg(long, default_value_t = 2.0)]
    pub hold: f64,
}

#[cfg(feature = "kiosk")]
#[derive(Subcommand)]
pub enum TagAction {
    /// Enrol a card for a person (give --role and --name for someone not enrolled yet: a person
    /// may have tags and no face at all). A card belongs to one person.
    Add {
        #[arg(value_name = "PERSON")]
        person: String,
        /// The 10 hex characters the reader sends, e.g. 62E3086CED.
        #[arg(value_name = "CARD_ID")]
        card: String,
        #[arg(long, value_name = "child|guardian|staff")]
        role: Option<Role>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Take a card from whoever has it.
    Remove {
        #[arg(value_name = "CARD_ID")]
        card: String,
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// One line per card: card id, person, role, name, face or no-face.
    List {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

#[cfg(feature = "kiosk")]
#[derive(Subcommand)]
pub enum PinAction {
    /// Set a person's PIN (6 to 8 digits, read from standard input or --pin-file, stored hashed
    /// with the pepper of `pin.pepper_file`;
    /// refused when another person has it). --role and --name enrol someone new.
    Set {
        #[arg(value_name = "PERSON")]
        person: String,
        #[arg(long, value_name = "FILE")]
        pin_file: Option<PathBuf>,
        #[arg(long, value_name = "child|guardian|staff")]
        role: Option<Role>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Remove a person's PIN.
    Clear {
        #[arg(value_name = "PERSON")]
        person: String,
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// End a lock of the PIN input after too many wrong PINs (forgets the wrong tries).
    Unlock {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Enter a PIN at the door (read from standard input) to the running kiosk; exit 1 unless
    /// it checked someone in. What the door screen does.
    Enter {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
}

#[cfg(feature = "kiosk")]
#[derive(Args)]
pub struct ThermalArgs {
    /// The kiosk config: its detector finds the faces, its calibration maps them.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Symlink created to the pseudo-terminal.
    #[arg(long, value_name = "PATH")]
    pub link: PathBuf,
    /// Frame rate of the video the scene accompanies.
    #[arg(long, default_value_t = 10.0)]
    pub video_fps: f64,
    #[arg(long, default_value_t = 8.0)]
    pub fps: f64,
    #[arg(long, default_value_t = 24.0)]
    pub ambient: f32,
    #[arg(long, default_value_t = 0.1)]
    pub noise: f32,
    #[arg(long, default_value_t = 0.02)]
    pub dropout: f64,
    #[arg(long, default_value_t = 0.02)]
    pub corrupt: f64,
    /// Speak the CSV line protocol instead of GY-MCU90640 frames.
    #[arg(long)]
    pub csv: bool,
    /// Keep streaming this long (default: the scene's length plus 2 s).
    #[arg(long)]
    pub seconds: Option<f64>,
    #[arg(required = true, value_name = "WALKER")]
    pub walkers: Vec<Walker>,
}

#[cfg(feature = "relay")]
#[derive(Subcommand)]
pub enum RelayAction {
    /// Deliveries, newest first: to whom, what, when, and why something was not sent.
    Log {
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
        /// Guardians' numbers in full (masked as 010-****-5678 otherwise, as in the relay's log).
        #[arg(long)]
        show_numbers: bool,
    },
}

#[cfg(feature = "console")]
#[derive(Subcommand)]
pub enum ConsoleAction {
    /// Add a staff account or set its password (asked twice on the terminal; one line on stdin
    /// from a script). At least 10 characters.
    Passwd {
        /// The account id staff log in with, e.g. `kim-teacher`.
        #[arg(value_name = "ID")]
        id: String,
        /// The name pages show, e.g. `김선생` (the id when not given).
        #[arg(long)]
        name: Option<String>,
        /// The language pages open in for this account.
        #[arg(long, value_parser = ["ko", "en"])]
        lang: Option<String>,
    },
    /// The staff accounts: id, name, language (never the password hashes).
    Users,
    /// Remove a staff account; its sessions end.
    Remove {
        #[arg(value_name = "ID")]
        id: String,
    },
}

#[cfg(feature = "kiosk")]
#[derive(Subcommand)]
pub enum AlertsAction {
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
    /// The re-measures still waiting for a value (a later reading or `alerts thermometer`),
    /// oldest first (JSON lines).
    Remeasures {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Enter a thermometer value for a person asked to re-measure today (34.0-43.0 °C): settles
    /// the re-measure, so the parent's arrival text carries it; an elevated value raises the alert.
    Thermometer {
        /// The enrolled person's id.
        person: String,
        /// The value read, in °C (e.g. 36.8).
        #[arg(allow_negative_numbers = true)]
        celsius: f32,
        /// Your staff id (must be in fever.staff).
        #[arg(long)]
        by: String,
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
}

#[cfg(feature = "kiosk")]
#[derive(Subcommand)]
pub enum CalibrateWhat {
    /// Fit the camera-to-thermal transform from point pairs seen by both (e.g. a heated target
    /// at three or more places): prints the `fever.calibration` line for the config. Or, with
    /// --blackbody, the sensor's gain and offset from blackbody readings: prints `[thermal]`
    /// `gain` and `offset_c`.
    Thermal {
        /// CAMERA_X,CAMERA_Y=THERMAL_X,THERMAL_Y, at least three, not all on one line.
        #[arg(required_unless_present = "blackbody", conflicts_with = "blackbody", value_name = "PAIR")]
        pairs: Vec<String>,
        /// SET_C=READ_C: a blackbody's set temperature and what the array read of it; two or
        /// more, best at two set points 2 °C or more apart (one set point: an offset only).
        #[arg(long, value_name = "SET_C=READ_C", num_args = 1..)]
        blackbody: Vec<String>,
    },
    /// Measure the enrolled faces (and labelled photo folders): same-person and different-person
    /// similarities, look-alike pairs, and the match threshold for a target false-match rate.
    Faces {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// A folder laid out DIR/<person>/<photo>; a person named like an enrolled id adds to them.
        /// Repeat for several.
        #[arg(long, value_name = "DIR")]
        photos: Vec<PathBuf>,
        /// False matches per comparison of two faces to aim for, e.g. 0.001 (1 in 1000).
        #[arg(long, default_value_t = 0.001, value_name = "RATE")]
        target_far: f64,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[cfg(feature = "kiosk")]
#[derive(Subcommand)]
pub enum ConsentAction {
    /// Record a consent a guardian gave (on paper, checked by you) for a child, before enrolling
    /// the child's face. Dates are days in the site's time zone (`site.timezone`).
    Add {
        /// The child's person id (enrolled or not yet).
        #[arg(value_name = "PERSON")]
        person: String,
        /// The guardian's name.
        #[arg(long, value_name = "NAME")]
        guardian: String,
        /// How the guardian is related to the child, e.g. 어머니 / mother.
        #[arg(long, value_name = "RELATION")]
        relation: String,
        /// The day the guardian signed, YYYY-MM-DD.
        #[arg(long, value_name = "DATE")]
        given_on: jiff::civil::Date,
        /// How you checked it was the guardian, e.g. "signed paper form, ID checked".
        #[arg(long, value_name = "TEXT")]
        verified_how: String,
        /// face-attendance (required), template-refresh (the kiosk may add templates as the face
        /// grows). Repeat for both.
        #[arg(long = "purpose", value_name = "PURPOSE", required = true)]
        purposes: Vec<dolbom_face::gallery::Purpose>,
        /// The last day the templates may be kept, YYYY-MM-DD (after today, at most 3 years ahead),
        /// e.g. the end of the school year.
        #[arg(long, value_name = "DATE")]
        until: jiff::civil::Date,
        /// Your staff id.
        #[arg(long, value_name = "STAFF_ID")]
        by: String,
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Every consent recorded, and children with face templates but no consent in force.
    List {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Record a guardian's withdrawal: ends the child's consents and destroys their face
    /// templates at once (the person, tags and PIN stay: check-in by tag or PIN still works).
    Withdraw {
        #[arg(value_name = "PERSON")]
        person: String,
        /// Your staff id.
        #[arg(long, value_name = "STAFF_ID")]
        by: String,
        /// What the guardian said, if you want it kept with the consent record.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
}

#[cfg(feature = "kiosk")]
#[derive(Subcommand)]
pub enum AuditAction {
    /// Every line of the audit log, checked first.
    List {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// The lines as written (JSON) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Check the hash chain; prints the number of lines and the last line's hash. Exit 1 when broken.
    Verify {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
}

#[cfg(feature = "kiosk")]
#[derive(Subcommand)]
pub enum GalleryAction {
    /// One line per person: id, role, number of photos, name, look-alikes (comma-separated, `-` for none).
    List {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// How well each person is still recognised at the door, and who is due for re-enrolment
    /// (faces of growing children drift away from their enrolment photos).
    Health {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Drop the templates the kiosk took from a person's sightings (keeps the enrolled ones).
    RevertRefresh {
        #[arg(value_name = "ID")]
        id: String,
        /// Your staff id, for the audit log.
        #[arg(long, value_name = "STAFF_ID", default_value = "cli")]
        by: String,
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Remove a person and all their embeddings (their consent records stay, as history).
    Remove {
        #[arg(value_name = "ID")]
        id: String,
        /// Your staff id, for the audit log.
        #[arg(long, value_name = "STAFF_ID", default_value = "cli")]
        by: String,
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Write a new random key for `gallery.key_file` to FILE (mode 0600; never replaces a file).
    Keygen {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Seal a plain gallery with the configured key now, instead of at its next change.
    Seal {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Open the gallery with the configured key and seal it with a new one; then install the new
    /// key where the config (or the unit's LoadCredential=) reads it and restart the kiosk.
    Rekey {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// The new key (from `dolbom gallery keygen`).
        #[arg(long, value_name = "FILE")]
        new_key_file: PathBuf,
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

/// glibc's malloc, made to hand big blocks back to the system when they are freed.
///
/// By default glibc raises its mmap threshold to the largest block freed so far: after ONNX
/// Runtime has parsed the 38 MB embedder and freed the parse, every block up to 38 MB comes from
/// the heap, and the heap keeps what it once held (holes between live blocks cannot be given
/// back). A fixed threshold keeps blocks of 128 KiB and more in their own mappings, returned on
/// free: about 40 MB less peak RSS on the walk-up clip (docs/memory.md). Few blocks that size are
/// allocated per frame (camera frame buffers are reused), so few mappings are made per frame.
///
/// An operator's `MALLOC_MMAP_THRESHOLD_` (glibc's own variable) wins, for experiments.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_malloc() {
    const MMAP_THRESHOLD: libc::c_int = 128 * 1024;
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; glibc serialises it with allocation.
        unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) };
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_malloc() {}

fn main() -> ExitCode {
    tune_malloc();
    let filter = tracing_subscriber::EnvFilter::try_from_env("DOLBOM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_log_level()));
    let logs = tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter);
    // DOLBOM_LOG_FORMAT=json: one JSON object per line, for log shippers.
    if std::env::var("DOLBOM_LOG_FORMAT").is_ok_and(|f| f == "json") {
        logs.json().with_current_span(true).init();
    } else {
        // journald and log files want plain text; colours only for a person at a terminal.
        logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init();
    }
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(code) => code,
        // The reader took what it wanted and closed the pipe: not an error.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}

fn run(command: Command) -> Result<ExitCode> {
    match command {
        #[cfg(feature = "kiosk")]
        Command::Enroll { config, person, role, name, lookalike_of, by, images } => {
            cmd::face::enroll(config, cmd::face::EnrollArgs { person, role, name, lookalike_of, by, images })
        }
        #[cfg(feature = "kiosk")]
        Command::Consent { action } => cmd::consent::consent(action),
        #[cfg(feature = "kiosk")]
        Command::Audit { action } => cmd::consent::audit(action),
        #[cfg(feature = "kiosk")]
        Command::Gallery { action: GalleryAction::List { config, json } } => cmd::face::gallery_list(config, json),
        #[cfg(feature = "kiosk")]
        Command::Gallery { action: GalleryAction::Remove { id, by, config } } => {
            cmd::face::gallery_remove(id, by, config)
        }
        #[cfg(feature = "kiosk")]
        Command::Gallery { action: GalleryAction::RevertRefresh { id, by, config } } => {
            cmd::face::gallery_revert_refresh(id, by, config)
        }
        #[cfg(feature = "kiosk")]
        Command::Gallery { action: GalleryAction::Keygen { file } } => cmd::gallery_key::keygen(file),
        #[cfg(feature = "kiosk")]
        Command::Gallery { action: GalleryAction::Seal { config } } => cmd::gallery_key::seal(config),
        #[cfg(feature = "kiosk")]
        Command::Gallery { action: GalleryAction::Rekey { config, new_key_file } } => {
            cmd::gallery_key::rekey(config, &new_key_file)
        }
        #[cfg(feature = "kiosk")]
        Command::Gallery { action: GalleryAction::Health { config, json } } => {
            cmd::kiosk::gallery_health(&config, json)
        }
        #[cfg(feature = "kiosk")]
        Command::Tag { action: TagAction::Add { person, card, role, name, config } } => {
            cmd::checkin::tag_add(config, person, card, cmd::checkin::Who { role, name })
        }
        #[cfg(feature = "kiosk")]
        Command::Tag { action: TagAction::Remove { card, config } } => cmd::checkin::tag_remove(config, card),
        #[cfg(feature = "kiosk")]
        Command::Tag { action: TagAction::List { config, json } } => cmd::checkin::tag_list(config, json),
        #[cfg(feature = "kiosk")]
        Command::Pin { action: PinAction::Set { person, pin_file, role, name, config } } => {
            cmd::checkin::pin_set(config, person, pin_file, cmd::checkin::Who { role, name })
        }
        #[cfg(feature = "kiosk")]
        Command::Pin { action: PinAction::Clear { person, config } } => cmd::checkin::pin_clear(config, person),
        #[cfg(feature = "kiosk")]
        Command::Pin { action: PinAction::Enter { config } } => cmd::checkin::pin_enter(config),
        #[cfg(feature = "kiosk")]
        Command::Pin { action: PinAction::Unlock { config } } => cmd::checkin::pin_unlock(config),
        #[cfg(feature = "kiosk")]
        Command::Identify { config, images } => cmd::face::identify(config, images),
        #[cfg(feature = "kiosk")]
        Command::Kiosk { config } => cmd::kiosk::kiosk(config),
        #[cfg(feature = "kiosk")]
        Command::Status { config } => cmd::kiosk::status(&config),
        #[cfg(feature = "kiosk")]
        Command::Doctor { config, json } => cmd::doctor::doctor(&config, json),
        #[cfg(feature = "kiosk")]
        Command::Alerts { action } => cmd::kiosk::alerts(action),
        #[cfg(feature = "kiosk")]
        Command::Calibrate { what: CalibrateWhat::Thermal { pairs, blackbody } } => {
            if blackbody.is_empty() {
                cmd::calibrate::thermal(pairs)
            } else {
                cmd::calibrate::blackbody(blackbody)
            }
        }
        #[cfg(feature = "kiosk")]
        Command::Calibrate { what: CalibrateWhat::Faces { config, photos, target_far, json } } => {
            cmd::calibrate::faces(config, photos, target_far, json)
        }
        #[cfg(feature = "kiosk")]
        Command::Sim { what: SimCommand::WalkUp { out, fps, walkers } } => cmd::sim::walk_up(out, fps, walkers),
        #[cfg(feature = "kiosk")]
        Command::Sim { what: SimCommand::Thermal(args) } => cmd::sim::thermal(args),
        #[cfg(feature = "kiosk")]
        Command::Sim { what: SimCommand::Air(args) } => cmd::sim::air(args),
        #[cfg(feature = "kiosk")]
        Command::Sim { what: SimCommand::Tag(args) } => cmd::sim::tag(args),
        #[cfg(feature = "kiosk")]
        Command::Sim { what: SimCommand::Outdoor { listen, station, pm10, pm25, temperature, humidity, key_file } } => {
            cmd::sim::outdoor(listen, station, pm10, pm25, temperature, humidity, key_file)
        }
        #[cfg(feature = "relay")]
        Command::Relay { config, action } => cmd::relay::relay(config, action),
        #[cfg(feature = "console")]
        Command::Console { config, action } => cmd::console::console(config, action),
    }
}
