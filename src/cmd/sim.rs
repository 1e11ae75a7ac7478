//! `dolbom sim`: simulated inputs for demos, tests and benchmarks.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use dolbom_face::FaceModels;
use dolbom_kiosk::config::Config;
use dolbom_kiosk::sim::air::{play, AirSim, PlaySettings, Profile, Script, Wire};
use dolbom_kiosk::sim::outdoor::{OutdoorServer, OutdoorSim};
use dolbom_kiosk::sim::tag::{play as play_tags, TagSim};
use dolbom_kiosk::sim::thermal::{link, open_pty, photo_faces, slave_is_open, stream, ThermalSim};
use dolbom_kiosk::sim::{write_walk_up, WalkUp, Walker};

use crate::{AirArgs, TagSimArgs, ThermalArgs};

/// A flag's value within bounds (never NaN), or an error naming the flag.
fn check<T: PartialOrd + std::fmt::Display>(flag: &str, value: T, lo: T, hi: T) -> Result<()> {
    anyhow::ensure!(lo <= value && value <= hi, "--{flag} {value}: must be between {lo} and {hi}");
    Ok(())
}

/// A walker's skin temperature may be anything the sensor can show (tests use impossible ones).
fn check_walkers(walkers: &[Walker]) -> Result<()> {
    for w in walkers {
        let t = w.skin_c;
        anyhow::ensure!(
            (-40.0..=300.0).contains(&t),
            "{}@{t}: the temperature must be between -40 and 300",
            w.photo.display()
        );
    }
    Ok(())
}

pub fn walk_up(out: PathBuf, fps: f64, walkers: Vec<Walker>) -> Result<ExitCode> {
    check("fps", fps, 1.0, 240.0)?;
    check_walkers(&walkers)?;
    let appearances = write_walk_up(&out, &walkers, WalkUp { fps, ..WalkUp::default() })?;
    for a in appearances {
        outln!("{}\t{}\t{}", a.first_frame, a.last_frame, a.photo)?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn thermal(args: ThermalArgs) -> Result<ExitCode> {
    let ThermalArgs {
        config,
        link: link_path,
        video_fps,
        fps,
        ambient,
        noise,
        dropout,
        corrupt,
        csv,
        seconds,
        walkers,
    } = args;
    check("video-fps", video_fps, 1.0, 240.0)?;
    check("fps", fps, 0.5, 64.0)?;
    check("ambient", ambient, -40.0, 85.0)?;
    check("noise", noise, 0.0, 10.0)?;
    check("dropout", dropout, 0.0, 1.0)?;
    check("corrupt", corrupt, 0.0, 1.0)?;
    if let Some(s) = seconds {
        check("seconds", s, 0.1, 86_400.0)?;
    }
    check_walkers(&walkers)?;
    let config = Config::load(&config)?;
    let mut models = FaceModels::load(&config.runtime, &config.face)?;
    let faces = photo_faces(&walkers, models.detector.as_mut()).map_err(anyhow::Error::msg)?;
    let mut pty = open_pty().context("cannot open a pseudo-terminal")?;
    link(&link_path, &pty.slave_path).with_context(|| format!("cannot create {}", link_path.display()))?;
    outln!("{}", pty.slave_path)?;
    let sim = ThermalSim {
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
    let sent = stream(&mut pty, &walkers, &faces, &p, &sim, seconds.map(std::time::Duration::from_secs_f64))?;
    eprintln!("sim thermal: {sent} frames sent");
    let _ = std::fs::remove_file(&link_path);
    Ok(ExitCode::SUCCESS)
}

pub fn air(args: AirArgs) -> Result<ExitCode> {
    let AirArgs {
        pms_link,
        co2_link,
        speed,
        start_hour,
        hours,
        period,
        noise,
        corrupt,
        st,
        seed,
        children,
        seconds,
        profile,
    } = args;
    anyhow::ensure!(
        pms_link.is_some() || co2_link.is_some(),
        "give --pms-link, --co2-link or both / 센서 경로를 하나 이상 지정하세요"
    );
    check("speed", speed, 0.1, 100_000.0)?;
    check("start-hour", start_hour, 0.0, 24.0)?;
    check("hours", hours, 0.01, 24.0)?;
    check("period", period, 0.1, 600.0)?;
    check("noise", noise, 0.0, 1.0)?;
    check("corrupt", corrupt, 0.0, 1.0)?;
    check("children", children, 0, 200)?;
    if let Some(s) = seconds {
        check("seconds", s, 0.1, 7.0 * 86_400.0)?;
    }
    let script = match &profile {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            Script::Profile(Profile::parse(&text).with_context(|| path.display().to_string())?)
        }
        None => Script::day(&AirSim {
            seed,
            period_s: period,
            start_hour,
            hours,
            children,
            st,
            noise,
            corrupt,
            ..AirSim::default()
        }),
    };
    let mut ptys = Vec::new();
    for (name, link_path) in [("pms", &pms_link), ("co2", &co2_link)] {
        let Some(link_path) = link_path else {
            ptys.push(None);
            continue;
        };
        let pty = open_pty().context("cannot open a pseudo-terminal")?;
        link(link_path, &pty.slave_path).with_context(|| format!("cannot create {}", link_path.display()))?;
        outln!("{name}\t{}", pty.slave_path)?;
        ptys.push(Some(pty));
    }
    let [mut pms_pty, mut co2_pty] = <[Option<_>; 2]>::try_from(ptys).map_err(|_| anyhow::anyhow!("two sensors"))?;
    let settings = PlaySettings {
        speed,
        period_s: period,
        st,
        wire: Wire { noise, corrupt },
        seed,
        run_for: seconds.map(std::time::Duration::from_secs_f64),
    };
    let stats = play(pms_pty.as_mut(), co2_pty.as_mut(), &script, &settings)?;
    eprintln!(
        "sim air: {} particle frames streamed, {} read requests answered, {} CO2 reads answered",
        stats.pms_frames, stats.pms_reads, stats.co2_answers
    );
    for link_path in [pms_link, co2_link].into_iter().flatten() {
        let _ = std::fs::remove_file(&link_path);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn outdoor(
    listen: String,
    station: String,
    pm10: Option<f32>,
    pm25: Option<f32>,
    temperature: f32,
    humidity: f32,
    key_file: Option<PathBuf>,
) -> Result<ExitCode> {
    for (flag, value) in [("pm10", pm10), ("pm25", pm25)] {
        if let Some(v) = value {
            check(flag, v, 0.0, 1000.0)?;
        }
    }
    check("temperature", temperature, -40.0, 50.0)?;
    check("humidity", humidity, 0.0, 100.0)?;
    anyhow::ensure!(!station.trim().is_empty(), "--station: must not be empty");
    let service_key = match key_file {
        Some(path) => Some(
            std::fs::read_to_string(&path)
                .with_context(|| format!("--key-file {}", path.display()))?
                .trim()
                .to_string(),
        ),
        None => None,
    };
    let sim = OutdoorSim { station, pm10, pm25, temperature_c: temperature, humidity_pct: humidity, service_key };
    let server = OutdoorServer::start(&listen, sim).with_context(|| format!("cannot listen on {listen}"))?;
    outln!("airkorea\t{}", server.airkorea_url())?;
    outln!("kma\t{}", server.kma_url())?;
    // Serves from its own threads until the process is stopped.
    loop {
        std::thread::park();
    }
}

pub fn tag(args: TagSimArgs) -> Result<ExitCode> {
    let TagSimArgs { cards, link: link_path, port, noise, bad_checksum, repeat, gap, hold } = args;
    check("repeat", repeat, 1, 1000)?;
    check("gap", gap, 0.0, 3600.0)?;
    check("hold", hold, 0.0, 3600.0)?;
    let cards = cards.iter().map(|c| c.parse()).collect::<Result<Vec<dolbom_face::gallery::CardId>, _>>()?;
    let sim = TagSim { repeat, gap: std::time::Duration::from_secs_f64(gap), noise, bad_checksum, ..TagSim::default() };
    let written = match (link_path, port) {
        (_, Some(port)) => {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .open(&port)
                .with_context(|| format!("cannot open {}", port.display()))?;
            play_tags(&mut f, &cards, &sim)?
        }
        (Some(link_path), None) => {
            let mut pty = open_pty().context("cannot open a pseudo-terminal")?;
            link(&link_path, &pty.slave_path).with_context(|| format!("cannot create {}", link_path.display()))?;
            outln!("{}", pty.slave_path)?;
            // Write when the reader's port is open: bytes sent before would be a card nobody held.
            let waiting = std::time::Instant::now();
            while !slave_is_open(&pty.master) {
                anyhow::ensure!(
                    waiting.elapsed() < std::time::Duration::from_secs(300),
                    "nobody opened the simulated reader within 5 minutes"
                );
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            let n = play_tags(&mut pty.master, &cards, &sim)?;
            std::thread::sleep(std::time::Duration::from_secs_f64(hold));
            let _ = std::fs::remove_file(&link_path);
            n
        }
        (None, None) => anyhow::bail!("give --link or --port / --link 또는 --port를 주세요"),
    };
    eprintln!("sim tag: {} card(s), {written} bytes sent", cards.len());
    Ok(ExitCode::SUCCESS)
}
