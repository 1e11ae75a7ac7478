//! `dolbom doctor` on real parts: the sample models and ONNX Runtime, a gallery enrolled through
//! the CLI, the walk-up clip as the camera, the machine's Mosquitto, and thermal sensors on
//! pseudo-terminals that send good frames, garbage, or impossible temperatures.

mod common;

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::broker::{free_port, system_broker_port};
use common::kiosk::{clip, kiosk_config, unique_center, KioskOptions};
use common::{dolbom, photo, stderr, stdout};
use dolbom_kiosk::sim::thermal::{link, open_pty, slave_is_open};
use dolbom_kiosk::sources::thermal::csv;
use serde_json::Value;

const DETECTOR_SHA: &str = "85260e29ac9c2546c0f4dcb9f98ad5b754e986f76592473013aa6cfd8c0e446b";

/// A serial sensor on a pseudo-terminal linked at `port`: while someone has it open, it sends
/// what `next` makes, twenty times a second.
struct FakeSensor {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeSensor {
    fn start(port: &Path, mut next: impl FnMut(u32) -> Vec<u8> + Send + 'static) -> Self {
        let mut pty = open_pty().expect("pty");
        link(port, &pty.slave_path).expect("link");
        // Never block on a full tty buffer: a reader that stopped must not wedge the test.
        // SAFETY: setting O_NONBLOCK on our own descriptor.
        unsafe {
            let fd = std::os::fd::AsRawFd::as_raw_fd(&pty.master);
            libc::fcntl(fd, libc::F_SETFL, libc::fcntl(fd, libc::F_GETFL) | libc::O_NONBLOCK);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut k = 0;
            while !flag.load(Ordering::Relaxed) {
                if slave_is_open(&pty.master) {
                    let _ = pty.master.write_all(&next(k));
                    k += 1;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Self { stop, thread: Some(thread) }
    }
}

impl Drop for FakeSensor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An 8x8 room with a little noise, at 24 °C ambient.
fn room(k: u32) -> Vec<u8> {
    let pixels: Vec<f32> = (0..64).map(|i| 22.0 + (i % 7) as f32 * 0.25 + (k % 5) as f32 * 0.01).collect();
    csv::encode(&pixels, 24.0)
}

fn config(dir: &Path, broker_port: u16, camera: &Path, extra: &str) -> std::path::PathBuf {
    let center = unique_center("doctor");
    let o = KioskOptions {
        center: &center,
        port: broker_port,
        clip: camera,
        pace: "realtime",
        at_end: "loop",
        mqtt: "",
        extra,
    };
    kiosk_config(dir, &o)
}

fn enrol_one(config: &Path) {
    let c = config.to_str().expect("utf-8");
    let p = photo("face_recognition/obama.jpg").display().to_string();
    let out = dolbom(&["enroll", "--config", c, "--person", "obama", "--role", "guardian", "--name", "오바마", &p]);
    assert!(out.status.success(), "enrol: {}", stderr(&out));
}

/// Runs the doctor with --json; returns its exit code and findings by check name.
fn doctor(config: &Path) -> (i32, Vec<Value>) {
    let started = Instant::now();
    let out = dolbom(&["doctor", "--config", config.to_str().expect("utf-8"), "--json"]);
    assert!(started.elapsed() < Duration::from_secs(40), "the doctor took {:?}", started.elapsed());
    let text = stdout(&out);
    let findings: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}\n{}", stderr(&out))))
        .collect();
    (out.status.code().expect("exit code"), findings)
}

fn finding<'a>(findings: &'a [Value], check: &str) -> &'a Value {
    findings.iter().find(|f| f["check"] == check).unwrap_or_else(|| panic!("no `{check}` finding in {findings:#?}"))
}

fn hangul(s: &str) -> bool {
    s.chars().any(|c| ('\u{AC00}'..='\u{D7A3}').contains(&c))
}

/// Both languages in what a person reads: Korean, and English words.
fn bilingual(s: &str) -> bool {
    hangul(s) && s.split_whitespace().filter(|w| w.chars().all(|c| c.is_ascii_alphabetic()) && w.len() > 2).count() >= 2
}

fn assert_fails(findings: &[Value], check: &str, needle: &str) {
    let f = finding(findings, check);
    assert_eq!(f["status"], "fail", "{check}: {f:#}");
    let (detail, fix) = (f["detail"].as_str().expect("detail"), f["fix"].as_str().expect("fix"));
    assert!(detail.contains(needle), "{check} should say `{needle}`: {detail}");
    assert!(bilingual(detail) && bilingual(fix), "{check} in English and Korean: {f:#}");
}

#[test]
fn a_good_kiosk_passes_every_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = dir.path().join("ttyTHERMAL");
    let _sensor = FakeSensor::start(&port, room);
    let extra = format!("[thermal]\ndevice = \"csv\"\nport = \"{}\"\n", port.display());
    let config = config(dir.path(), system_broker_port(), clip(), &extra);
    enrol_one(&config);

    let (code, findings) = doctor(&config);
    for check in ["config", "runtime", "models", "gallery", "camera", "thermal", "broker", "clock", "state_dir", "disk"]
    {
        let f = finding(&findings, check);
        assert!(f["status"] == "ok" || f["status"] == "warn", "{check}: {f:#}");
        assert!(hangul(f["detail"].as_str().expect("detail")), "{check} in Korean too: {f:#}");
    }
    for check in ["config", "runtime", "models", "camera", "thermal", "broker", "state_dir", "disk"] {
        assert_eq!(finding(&findings, check)["status"], "ok", "{check}");
    }
    let gallery = finding(&findings, "gallery");
    assert_eq!(gallery["status"], "ok");
    assert!(gallery["detail"].as_str().expect("detail").contains("1 people"), "{gallery:#}");
    assert_eq!(code, 0, "{findings:#?}");

    // The table says the same.
    let out = dolbom(&["doctor", "--config", config.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(stdout(&out).contains("failed") && stdout(&out).contains("실패 0"), "{}", stdout(&out));
}

#[test]
fn a_broken_kiosk_fails_with_each_reason_and_its_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = dir.path().join("ttyTHERMAL");
    // Bytes, but never a frame: no line starts with `T,`.
    let _sensor = FakeSensor::start(&port, |k| format!("garbage {k} \x01\x02\x5a\x5a\n").into_bytes());
    let extra = format!("[thermal]\ndevice = \"csv\"\nport = \"{}\"\n", port.display());
    let closed = free_port();
    let config = config(dir.path(), closed, &dir.path().join("no-such-clip.avi"), &extra);
    // A well-formed sha256 that is not the model's.
    let text = std::fs::read_to_string(&config).expect("config");
    assert!(text.contains(DETECTOR_SHA));
    std::fs::write(&config, text.replace(DETECTOR_SHA, &"0".repeat(64))).expect("config");

    let (code, findings) = doctor(&config);
    assert_eq!(code, 1, "{findings:#?}");
    assert_fails(&findings, "models", "sha256");
    assert_fails(&findings, "camera", "no-such-clip.avi");
    assert_fails(&findings, "thermal", "no valid frame");
    assert_fails(&findings, "broker", &format!("127.0.0.1:{closed}"));
    // Nobody enrolled is a warning, not a failure.
    let gallery = finding(&findings, "gallery");
    assert_eq!(gallery["status"], "warn", "{gallery:#}");
    assert!(bilingual(gallery["detail"].as_str().expect("detail")), "{gallery:#}");
    assert_eq!(finding(&findings, "runtime")["status"], "ok");
}

#[test]
fn an_implausible_or_missing_sensor_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = dir.path().join("ttyTHERMAL");
    // Well-formed frames no working sensor sends: a pixel at 500 °C.
    let _sensor = FakeSensor::start(&port, |_| {
        let mut pixels: Vec<f32> = (0..64).map(|i| 22.0 + (i % 7) as f32 * 0.25).collect();
        pixels[9] = 500.0;
        csv::encode(&pixels, 24.0)
    });
    let extra = format!("[thermal]\ndevice = \"csv\"\nport = \"{}\"\n", port.display());
    let config = config(dir.path(), system_broker_port(), clip(), &extra);
    let (code, findings) = doctor(&config);
    assert_eq!(code, 1, "{findings:#?}");
    assert_fails(&findings, "thermal", "implausible");
    assert!(finding(&findings, "thermal")["detail"].as_str().expect("detail").contains("pixel 9"));

    let missing = dir.path().join("ttyGONE");
    let extra = format!("[thermal]\ndevice = \"csv\"\nport = \"{}\"\n", missing.display());
    let config = self::config(dir.path(), system_broker_port(), clip(), &extra);
    let (code, findings) = doctor(&config);
    assert_eq!(code, 1, "{findings:#?}");
    assert_fails(&findings, "thermal", "ttyGONE");
}

/// The broker password from its own file: read when only its owner and group may, refused (naming
/// the key) when every user may, and "not checked" where systemd would hand it over.
#[test]
fn the_broker_password_comes_from_its_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let center = unique_center("secret");
    let check = |mqtt: &str| {
        let o = KioskOptions {
            center: &center,
            port: system_broker_port(),
            clip: clip(),
            pace: "realtime",
            at_end: "loop",
            mqtt,
            extra: "",
        };
        let (_, findings) = doctor(&kiosk_config(dir.path(), &o));
        finding(&findings, "broker").clone()
    };
    let secret = dir.path().join("mqtt-password");
    std::fs::write(&secret, "hunter2\n").expect("secret");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let file = "username = \"kiosk\"\npassword_file = \"mqtt-password\"";
    assert_eq!(check(file)["status"], "ok");

    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let f = check(file);
    assert_eq!(f["status"], "fail", "{f:#}");
    let detail = f["detail"].as_str().expect("detail");
    assert!(detail.contains("mqtt.password_file") && detail.contains("every user"), "{f:#}");
    assert!(bilingual(detail) && bilingual(f["fix"].as_str().expect("fix")), "{f:#}");

    let f = check("username = \"kiosk\"\npassword_file = \"$CREDENTIALS_DIRECTORY/mqtt-password\"");
    assert_eq!(f["status"], "warn", "{f:#}");
    assert!(f["fix"].as_str().expect("fix").contains("CREDENTIALS_DIRECTORY=/etc/dolbom/credentials"), "{f:#}");
}

#[test]
fn a_config_that_does_not_load_is_the_one_finding() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = common::write_config(dir.path(), "\n[camera]\nkind = \"file\"\nsorce = \"x.avi\"\n");
    let (code, findings) = doctor(&config);
    assert_eq!(code, 1);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_fails(&findings, "config", "sorce");
}

/// The air checks go through the daemon's own stages: a particle sensor played by `dolbom sim
/// air` answers with its values, a CO2 port that is not there fails with its name, an outdoor
/// service with the right key shows its values, one whose key the service refuses says so.
#[test]
fn air_sensors_and_outdoor_services_are_checked() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let profile = dir.path().join("profile.csv");
    std::fs::write(&profile, "t_s,pm25,pm10,co2\n0,18,30,700\n600,18,30,700\n").expect("profile");
    let pm_link = dir.path().join("pm0");
    let mut sim = std::process::Command::new(env!("CARGO_BIN_EXE_dolbom"))
        .args(["sim", "air", "--speed", "1", "--noise", "0", "--corrupt", "0", "--seconds", "120", "--pms-link"])
        .arg(&pm_link)
        .arg("--profile")
        .arg(&profile)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("dolbom sim air");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(sim.stdout.take().expect("stdout")), &mut line)
        .expect("pty path");
    let keys = [("good-key", "k1+/="), ("wrong-key", "nope")];
    for (name, key) in keys {
        let path = dir.path().join(name);
        std::fs::write(&path, key).expect("key");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let services = dolbom_kiosk::sim::outdoor::OutdoorSim {
        service_key: Some("k1+/=".into()),
        pm10: Some(35.0),
        pm25: Some(17.0),
        ..Default::default()
    };
    let outdoor = dolbom_kiosk::sim::outdoor::OutdoorServer::start("127.0.0.1:0", services).expect("services");
    let extra = format!(
        "[air]\n[air.pms]\nport = \"{pm}\"\nmodel = \"pms5003\"\n[air.co2]\nport = \"{dir}/ttyCO2GONE\"\n\n\
         [outdoor]\n[outdoor.airkorea]\nstation = \"종로구\"\nservice_key_file = \"{dir}/good-key\"\nbase_url = \"{ak}\"\n\
         [outdoor.kma]\nnx = 60\nny = 127\nservice_key_file = \"{dir}/wrong-key\"\nbase_url = \"{kma}\"\n",
        pm = pm_link.display(),
        dir = dir.path().display(),
        ak = outdoor.airkorea_url(),
        kma = outdoor.kma_url(),
    );
    let config = config(dir.path(), system_broker_port(), clip(), &extra);
    let (code, findings) = doctor(&config);
    let _ = sim.kill();
    let _ = sim.wait();
    assert_eq!(code, 1, "{findings:#?}");
    let pm = finding(&findings, "air_pm");
    assert_eq!(pm["status"], "ok", "{pm:#}");
    assert!(pm["detail"].as_str().is_some_and(|d| d.contains("PM2.5 18") && d.contains("PM10 30")), "{pm:#}");
    assert_fails(&findings, "air_co2", "ttyCO2GONE");
    let dust = finding(&findings, "outdoor_dust");
    assert_eq!(dust["status"], "ok", "{dust:#}");
    assert!(dust["detail"].as_str().is_some_and(|d| d.contains("종로구") && d.contains("PM2.5 17")), "{dust:#}");
    assert_fails(&findings, "outdoor_weather", "kma");
}
