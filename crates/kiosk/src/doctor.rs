//! `dolbom doctor`: everything a kiosk needs, checked once, each finding said in Korean and
//! English with what to do about it. One function per check; every check that touches a device
//! or the network runs on a thread of its own with a deadline, so a wedged camera, a silent
//! serial port or a black-holed broker cannot hang the run.

mod air;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use opencv::core::{Mat, MatTraitConst};
use opencv::videoio::VideoCaptureTrait;
use serde::Serialize;

use dolbom_face::onnx::OnnxError;
use dolbom_face::{FaceError, FaceModels};
use dolbom_mqtt::{Protocol, Session, SessionError, SessionEvent};

use crate::config::Config;
use crate::outbox::publisher::ProtocolChoice;
use crate::sources::camera::source::open as open_camera;
use crate::sources::camera::CameraConfig;
use crate::sources::thermal::plausibility::Plausibility;
use crate::sources::thermal::source::ThermalConfig;
use crate::sources::thermal::ThermalFrame;

/// How long the camera has to deliver its frames.
pub const CAMERA_TIMEOUT: Duration = Duration::from_secs(5);
/// Frames the camera must deliver.
pub const CAMERA_FRAMES: usize = 3;
/// How long a serial sensor has to send one valid frame.
pub const SERIAL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the broker has to accept the CONNECT.
pub const BROKER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `timedatectl` has to answer.
pub const CLOCK_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// One check's outcome. `detail` and `fix` are each "English / 한국어"; `fix` is empty when
/// there is nothing to do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub check: &'static str,
    pub status: Status,
    pub detail: String,
    pub fix: String,
}

impl Finding {
    fn ok(check: &'static str, detail: impl Into<String>) -> Self {
        Self { check, status: Status::Ok, detail: detail.into(), fix: String::new() }
    }
    fn warn(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { check, status: Status::Warn, detail: detail.into(), fix: fix.into() }
    }
    fn fail(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { check, status: Status::Fail, detail: detail.into(), fix: fix.into() }
    }
}

/// Every check for the config at `path`, in order. A config that does not load is the one
/// finding: nothing else can be checked without it.
pub fn run(path: &Path) -> Vec<Finding> {
    let mut config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            return vec![Finding::fail(
                "config",
                format!("{e} / 설정 파일을 읽거나 검증할 수 없음"),
                "correct the key named above (see config/sample.toml) / 위에 나온 항목을 고치세요 (config/sample.toml 참고)",
            )]
        }
    };
    let mut findings = vec![Finding::ok("config", format!("{} loads / 설정 파일 정상", path.display()))];
    findings.extend(models(&config));
    findings.push(gallery(&config));
    findings.push(gallery_encryption(&config));
    findings.push(camera(config.camera.as_ref()));
    if let Some(thermal) = &config.thermal {
        findings.push(thermal_sensor(thermal, SERIAL_TIMEOUT));
    }
    let base = path.parent().unwrap_or_else(|| Path::new("."));
    if let Some(sensors) = &config.air {
        findings.extend(air::sensors(sensors, air::AIR_TIMEOUT));
    }
    if let Some(outdoor) = &config.outdoor {
        findings.extend(air::outdoor(outdoor, base, air::OUTDOOR_TIMEOUT));
    }
    match config.mqtt.broker.load_secrets(base) {
        Ok(()) => findings.push(broker(&config, BROKER_TIMEOUT)),
        // Outside the unit, systemd has handed over nothing: say how to check it by hand.
        Err(e @ dolbom_mqtt::LoadError::Secret(dolbom_secret::SecretError::NoCredentials { .. })) => findings.push(Finding::warn(
            "broker",
            format!("not checked: {e} / MQTT 비밀번호를 systemd 가 넘겨주므로 여기서는 확인하지 못함"),
            "check it with the credentials' directory: sudo -u dolbom env CREDENTIALS_DIRECTORY=/etc/dolbom/credentials dolbom doctor --config … (files root:dolbom 0640) / 위 명령으로 확인하세요",
        )),
        Err(e) => findings.push(Finding::fail(
            "broker",
            format!("{e} / MQTT 비밀번호 또는 TLS 인증서·키 파일을 읽을 수 없음"),
            "make the file readable by the kiosk's user only (chmod 600), or load it with the unit's LoadCredential= / 파일을 키오스크 사용자만 읽게 하거나 (chmod 600) 유닛의 LoadCredential= 로 넘기세요",
        )),
    }
    findings.push(clock());
    findings.extend(state_dir(&config));
    findings
}

/// ONNX Runtime loads, and each model exists and matches its sha256: two findings, `runtime`
/// and `models`, from the same loading code the kiosk uses.
pub fn models(config: &Config) -> Vec<Finding> {
    let fetch = "run scripts/setup.sh to fetch the models, or fix face.*.model or face.*.sha256 / scripts/setup.sh 로 모델을 받거나 face.*.model, sha256 설정을 고치세요";
    match FaceModels::load(&config.runtime, &config.face) {
        Ok(_) => vec![
            Finding::ok("runtime", format!("{} loads / ONNX Runtime 정상", config.runtime.onnxruntime.display())),
            Finding::ok(
                "models",
                format!(
                    "{} and {} load and match their sha256 / 모델 파일 정상",
                    config.face.detector.model.display(),
                    config.face.embedder.model.display()
                ),
            ),
        ],
        Err(FaceError::Onnx(e @ OnnxError::Library { .. })) => vec![
            Finding::fail(
                "runtime",
                format!("{e} / ONNX Runtime 라이브러리를 불러올 수 없음"),
                "install ONNX Runtime (scripts/setup.sh) or set runtime.onnxruntime to its path / ONNX Runtime 을 설치하거나 runtime.onnxruntime 경로를 고치세요",
            ),
            Finding::warn(
                "models",
                "not checked: ONNX Runtime did not load / ONNX Runtime 이 없어 확인하지 못함",
                "fix the runtime first / 먼저 runtime 문제를 고치세요",
            ),
        ],
        Err(e) => {
            let korean = match &e {
                FaceError::Onnx(OnnxError::ModelMissing { .. }) => "모델 파일이 없음",
                FaceError::Onnx(OnnxError::ModelChecksum { .. }) => "모델 파일이 손상됨 (sha256 불일치)",
                _ => "모델 파일을 불러올 수 없음",
            };
            vec![
                Finding::ok("runtime", format!("{} loads / ONNX Runtime 정상", config.runtime.onnxruntime.display())),
                Finding::fail("models", format!("{e} / {korean}"), fetch),
            ]
        }
    }
}

/// The gallery reads; nobody enrolled is a warning (the kiosk runs, but recognises no one).
pub fn gallery(config: &Config) -> Finding {
    let path = &config.gallery.path;
    match config.gallery.store().load() {
        Ok(g) if g.people.is_empty() => Finding::warn(
            "gallery",
            format!("{}: nobody enrolled yet / 아직 등록된 사람이 없음", path.display()),
            "enrol people with `dolbom enroll` / `dolbom enroll` 로 등록하세요",
        ),
        Ok(g) => {
            let today = jiff::Timestamp::now().to_zoned_datetime(config.timezone()).date();
            let unconsented = g.faces_without_consent(today);
            if unconsented.is_empty() {
                Finding::ok(
                    "gallery",
                    format!("{}: {} people enrolled / {}명 등록됨", path.display(), g.people.len(), g.people.len()),
                )
            } else {
                let who = unconsented.iter().map(|id| dolbom_face::gallery::printable(id)).collect::<Vec<_>>().join(", ");
                Finding::warn(
                    "gallery",
                    format!(
                        "{}: face templates of children without a guardian's consent in force: {who} / 보호자 동의 없이 \
                         얼굴 템플릿이 있는 아동: {who}",
                        path.display()
                    ),
                    "record each consent (`dolbom consent add`) or erase the faces (`dolbom consent withdraw`) \
                     (docs/consent.md) / 동의를 기록하거나(`dolbom consent add`) 얼굴을 지우세요(`dolbom consent withdraw`)",
                )
            }
        }
        Err(e) => Finding::fail(
            "gallery",
            format!("{e} / 등록 명단(갤러리)을 읽을 수 없음"),
            "check gallery.path and its permissions, or restore the file from a backup / gallery.path 와 권한을 확인하거나 백업에서 복구하세요",
        ),
    }
}

/// The gallery is sealed with the configured key; a plain gallery is a warning (the kiosk runs,
/// but children's face templates lie on the disk in the clear).
pub fn gallery_encryption(config: &Config) -> Finding {
    const CHECK: &str = "gallery-key";
    let store = config.gallery.store();
    let path = store.path().display();
    let make_key = "make a key with `sudo dolbom gallery keygen /etc/dolbom/credentials/gallery-key` and `sudo chown dolbom: \
        /etc/dolbom/credentials/gallery-key`, load it with the kiosk unit's `LoadCredential=gallery-key:/etc/dolbom/credentials/gallery-key`, then run \
        `dolbom gallery seal` (docs/security.md) / 키를 만들고 LoadCredential 로 넘긴 뒤 `dolbom gallery seal` 을 실행하세요";
    let key = match store.key() {
        Ok(Some(key)) => key,
        Ok(None) => {
            return Finding::warn(
                CHECK,
                format!("{path}: gallery not encrypted at rest: no gallery.key_file and no gallery-key credential / 얼굴 템플릿이 암호화되지 않음"),
                make_key,
            )
        }
        Err(e) => {
            return Finding::fail(
                CHECK,
                format!("{e}"),
                "check gallery.key_file and that the key file is the dolbom user's, mode 0600; outside the unit set CREDENTIALS_DIRECTORY=/etc/dolbom/credentials / gallery.key_file 과 키 파일 권한(0600)을 확인하세요",
            )
        }
    };
    match store.sealed_with() {
        Ok(Some(id)) if id == key.id() => {
            Finding::ok(CHECK, format!("{path}: encrypted with key {id} / 갤러리가 키({id})로 암호화됨"))
        }
        Ok(Some(id)) => Finding::fail(
            CHECK,
            format!("{path}: sealed with key {id}, but the configured key is {} / 갤러리를 연 키가 설정된 키와 다름", key.id()),
            "configure the key file the gallery was sealed with (after a rekey: install the new key, restart the kiosk) / 갤러리를 암호화한 키 파일을 설정하세요",
        ),
        Ok(None) if store.path().exists() => Finding::warn(
            CHECK,
            format!("{path}: not encrypted yet; key {} is configured and seals it at the next change / 아직 암호화되지 않음", key.id()),
            "run `dolbom gallery seal` to seal it now / 지금 암호화하려면 `dolbom gallery seal` 을 실행하세요",
        ),
        Ok(None) => Finding::ok(CHECK, format!("key {} configured; the gallery is sealed when made / 키 {} 설정됨", key.id(), key.id())),
        Err(e) => Finding::fail(CHECK, format!("{e}"), "restore the gallery from a backup / 백업에서 갤러리를 복구하세요"),
    }
}

/// The camera opens and delivers [`CAMERA_FRAMES`] frames within [`CAMERA_TIMEOUT`].
pub fn camera(config: Option<&CameraConfig>) -> Finding {
    let Some(config) = config else {
        return Finding::fail(
            "camera",
            "no [camera] section / [camera] 설정이 없음",
            "add a [camera] section (kind, source) / [camera] 항목(kind, source)을 추가하세요",
        );
    };
    let fix = "check camera.source and that the camera is plugged in; stop the running kiosk if it holds the device / camera.source 와 카메라 연결을 확인하세요 (실행 중인 키오스크가 장치를 쓰고 있으면 멈추세요)";
    let source = config.source.clone();
    let config = config.clone();
    let outcome = on_thread(CAMERA_TIMEOUT, move || {
        let (mut cap, _) = open_camera(&config)?;
        let mut frame = Mat::default();
        let mut got = 0;
        let mut size = (0, 0);
        while got < CAMERA_FRAMES {
            match cap.read(&mut frame) {
                Ok(true) if !frame.empty() => {
                    got += 1;
                    size = (frame.cols(), frame.rows());
                }
                Ok(_) => return Err(format!("delivered {got} of {CAMERA_FRAMES} frames, then nothing")),
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(size)
    });
    match outcome {
        Some(Ok((w, h))) => {
            Finding::ok("camera", format!("{source}: {CAMERA_FRAMES} frames of {w}x{h} / 카메라 영상 정상 ({w}x{h})"))
        }
        Some(Err(e)) => Finding::fail("camera", format!("{e} / 카메라를 열거나 읽을 수 없음"), fix),
        None => Finding::fail(
            "camera",
            format!(
                "{source}: no {CAMERA_FRAMES} frames within {} s / {}초 안에 영상이 오지 않음",
                CAMERA_TIMEOUT.as_secs(),
                CAMERA_TIMEOUT.as_secs()
            ),
            fix,
        ),
    }
}

/// What a serial sensor said within its time.
#[derive(Debug)]
enum SerialOutcome {
    Valid { frames: u64 },
    Implausible(String),
    NoFrames { bytes: u64, malformed: u64, checksum_errors: u64 },
}

/// The `[thermal]` sensor answers with at least one frame that decodes and passes the
/// plausibility check within `timeout`: the port opened with the configured settings, the start
/// commands sent, the configured decoder run on what arrives.
pub fn thermal_sensor(config: &ThermalConfig, timeout: Duration) -> Finding {
    const CHECK: &str = "thermal";
    let port_fix = "check thermal.port, the cable, and that the user is in the dialout group; stop the running kiosk if it holds the port / thermal.port, 케이블, dialout 그룹 권한을 확인하세요 (실행 중인 키오스크가 포트를 쓰고 있으면 멈추세요)";
    let decode_fix = "check thermal.device and thermal.baud against the sensor's manual, and the wiring / thermal.device 와 thermal.baud 가 센서 설명서와 맞는지, 배선을 확인하세요";
    let port = config.port.clone();
    let c = config.clone();
    // The thread gets a little less than the deadline, so it reports what it saw itself.
    let listen = timeout.saturating_sub(Duration::from_millis(300));
    let outcome = on_thread(timeout, move || -> Result<SerialOutcome, String> {
        let mut port =
            serialport::new(&c.port, c.baud).timeout(Duration::from_millis(200)).open().map_err(|e| e.to_string())?;
        let mut decoder = crate::sources::thermal::decoder(&c);
        for cmd in decoder.init_commands() {
            port.write_all(&cmd).map_err(|e| format!("cannot send the start command: {e}"))?;
        }
        let mut plausibility = Plausibility::new(c.frozen_frames);
        let mut buf = [0u8; 4096];
        let mut frames: Vec<ThermalFrame> = Vec::new();
        let mut bytes = 0u64;
        let mut refused = None;
        let started = Instant::now();
        while started.elapsed() < listen {
            match port.read(&mut buf) {
                Ok(n) => {
                    bytes += n as u64;
                    decoder.feed(&buf[..n], &mut frames);
                    for f in frames.drain(..) {
                        match plausibility.check(&f) {
                            Ok(()) => return Ok(SerialOutcome::Valid { frames: decoder.stats().frames }),
                            Err(reason) => refused = Some(reason),
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) => return Err(format!("read failed: {e}")),
            }
        }
        if let Some(reason) = refused {
            return Ok(SerialOutcome::Implausible(reason));
        }
        let stats = decoder.stats();
        Ok(SerialOutcome::NoFrames { bytes, malformed: stats.malformed, checksum_errors: stats.checksum_errors })
    });
    let secs = timeout.as_secs();
    match outcome {
        Some(Ok(SerialOutcome::Valid { frames })) => Finding::ok(
            CHECK,
            format!("{port}: a valid frame ({frames} decoded) / 열화상 센서 정상"),
        ),
        Some(Ok(SerialOutcome::Implausible(reason))) => Finding::fail(
            CHECK,
            format!("{port}: frames arrive but are implausible: {reason} / 센서가 불가능한 값을 보냄"),
            "the sensor is faulty or covered: check its view, then replace it / 센서 앞이 가려졌는지 확인하고, 아니면 센서를 교체하세요",
        ),
        Some(Ok(SerialOutcome::NoFrames { bytes: 0, .. })) => Finding::fail(
            CHECK,
            format!("{port}: silent for {secs} s / {secs}초 동안 센서에서 아무 데이터도 오지 않음"),
            decode_fix,
        ),
        Some(Ok(SerialOutcome::NoFrames { bytes, malformed, checksum_errors })) => Finding::fail(
            CHECK,
            format!(
                "{port}: {bytes} bytes but no valid frame in {secs} s ({malformed} malformed, {checksum_errors} checksum errors) / 데이터는 오지만 올바른 프레임이 없음"
            ),
            decode_fix,
        ),
        Some(Err(e)) => Finding::fail(CHECK, format!("{port}: {e} / 센서 포트를 열거나 읽을 수 없음"), port_fix),
        None => Finding::fail(
            CHECK,
            format!("{port}: no answer within {secs} s (the port hangs) / {secs}초 안에 응답 없음"),
            port_fix,
        ),
    }
}

/// The broker accepts an MQTT CONNECT with the configured credentials within `timeout`. The
/// doctor connects under a client id of its own, so a running kiosk keeps its connection.
pub fn broker(config: &Config, timeout: Duration) -> Finding {
    const CHECK: &str = "broker";
    let broker = &config.mqtt.broker;
    let at = format!("{}:{}", broker.host, broker.port);
    let mut options = broker.connect_options("");
    options.client_id = format!("dolbom-doctor-{}", std::process::id());
    let protocols: &[Protocol] = match config.mqtt.publish.protocol {
        ProtocolChoice::Auto => &[Protocol::V5, Protocol::V311],
        ProtocolChoice::V5 => &[Protocol::V5],
        ProtocolChoice::V311 => &[Protocol::V311],
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            return Finding::fail(CHECK, format!("cannot start the network runtime: {e} / 네트워크 런타임 오류"), "")
        }
    };
    let deadline = tokio::time::Instant::now() + timeout;
    let outcome: Result<Protocol, SessionError> = runtime.block_on(async {
        let mut last = SessionError::Network("not tried".into());
        for &protocol in protocols {
            let mut session = Session::new(protocol, &options);
            let attempt = tokio::time::timeout_at(deadline, async {
                loop {
                    match session.poll().await {
                        Ok(SessionEvent::Connected) => return Ok(()),
                        Ok(_) => {}
                        Err(e) => return Err(e),
                    }
                }
            })
            .await;
            match attempt {
                Ok(Ok(())) => {
                    session.disconnect();
                    // Let the DISCONNECT go out; the broker would otherwise log a lost client.
                    let _ = tokio::time::timeout(Duration::from_millis(200), session.poll()).await;
                    return Ok(protocol);
                }
                // Refused at the protocol level: the other version may do.
                Ok(Err(e @ SessionError::Connection(_))) => last = e,
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    return Err(SessionError::Network(format!("no CONNACK within {} s", timeout.as_secs())));
                }
            }
        }
        Err(last)
    });
    match outcome {
        Ok(protocol) => Finding::ok(CHECK, format!("{at}: connected (MQTT {}) / 브로커 연결 정상", protocol.name())),
        Err(e) => Finding::fail(
            CHECK,
            format!("{at}: {e} / 브로커에 연결할 수 없음"),
            "check mqtt.host, mqtt.port, mqtt.username and mqtt.password, that the broker runs, and the firewall / mqtt.host, port, 사용자 이름과 비밀번호, 브로커 실행 여부, 방화벽을 확인하세요",
        ),
    }
}

/// The system clock is synchronised (systemd's view); attendance days are cut by it.
pub fn clock() -> Finding {
    const CHECK: &str = "clock";
    let answer = on_thread(CLOCK_TIMEOUT, || {
        std::process::Command::new("timedatectl")
            .args(["show", "-p", "NTPSynchronized", "--value"])
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    });
    match answer.flatten().as_deref() {
        Some("yes") => Finding::ok(CHECK, "the clock is synchronised (NTP) / 시간 동기화됨"),
        Some("no") => Finding::warn(
            CHECK,
            "the clock is not synchronised: a wrong clock puts arrivals on the wrong day / 시간이 동기화되지 않음: 시계가 틀리면 출결 날짜가 틀어집니다",
            "enable systemd-timesyncd (timedatectl set-ntp true) / 시간 동기화를 켜세요 (timedatectl set-ntp true)",
        ),
        _ => Finding::warn(
            CHECK,
            "cannot check clock synchronisation (no timedatectl answer) / 시간 동기화 여부를 확인할 수 없음",
            "make sure the clock is synchronised (NTP), or attendance days may be wrong / 시간 동기화(NTP)를 확인하세요",
        ),
    }
}

/// The state directory is writable, and its disk has more free space than `state.reserve_mb`.
/// A directory not made yet is judged by the nearest one that exists (the kiosk creates it).
pub fn state_dir(config: &Config) -> Vec<Finding> {
    let dir = &config.state.dir;
    let existing = nearest_existing(dir);
    let writable = match &existing {
        Some(d) => probe_write(d),
        None => Err(std::io::Error::new(std::io::ErrorKind::NotFound, "no existing parent")),
    };
    let shown = match &existing {
        Some(d) if d != dir => format!("{} (not made yet; {} is)", dir.display(), d.display()),
        _ => dir.display().to_string(),
    };
    let mut findings = vec![match writable {
        Ok(()) => Finding::ok("state_dir", format!("{shown} is writable / 상태 디렉터리에 쓸 수 있음")),
        Err(e) => Finding::fail(
            "state_dir",
            format!("{shown} is not writable: {e} / 상태 디렉터리에 쓸 수 없음"),
            "create state.dir and give it to the kiosk's user (chown dolbom) / state.dir 을 만들고 키오스크 사용자에게 권한을 주세요 (chown dolbom)",
        ),
    }];
    let reserve = config.state.reserve_mb;
    let free = existing.as_deref().map(crate::disk::free_bytes);
    findings.push(match free {
        Some(Ok(free)) if free >> 20 > reserve => {
            Finding::ok("disk", format!("{} MB free (reserve {reserve} MB) / 여유 공간 충분", free >> 20))
        }
        Some(Ok(free)) => Finding::fail(
            "disk",
            format!(
                "{} MB free, below the reserve of {reserve} MB: new events would wait in memory / 여유 공간 {} MB, 예비 공간 {reserve} MB 보다 적음",
                free >> 20,
                free >> 20
            ),
            "free space on the state disk (old logs, journals), or lower state.reserve_mb / 저장 공간을 비우거나 state.reserve_mb 를 낮추세요",
        ),
        Some(Err(e)) => Finding::fail(
            "disk",
            format!("cannot measure free space: {e} / 여유 공간을 잴 수 없음"),
            "check state.dir / state.dir 을 확인하세요",
        ),
        None => Finding::fail(
            "disk",
            format!("{}: no such directory / 디렉터리가 없음", dir.display()),
            "check state.dir / state.dir 을 확인하세요",
        ),
    });
    findings
}

fn nearest_existing(dir: &Path) -> Option<PathBuf> {
    dir.ancestors().find(|d| d.is_dir()).map(Path::to_path_buf)
}

/// Creates and removes a file in `dir`: permissions, a read-only mount and a full disk all show.
fn probe_write(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".dolbom-doctor-{}", std::process::id()));
    let written = std::fs::write(&probe, b"doctor");
    let _ = std::fs::remove_file(&probe);
    written
}

/// Runs `f` on a thread of its own and waits at most `timeout`; `None` when it did not finish.
/// A thread that hangs (a wedged device) is left behind: the doctor exits soon anyway.
fn on_thread<T: Send + 'static>(timeout: Duration, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new().name("doctor-check".into()).spawn(move || {
        let _ = tx.send(f());
    });
    if spawned.is_err() {
        return None;
    }
    rx.recv_timeout(timeout).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hung_check_times_out() {
        let started = Instant::now();
        let r = on_thread(Duration::from_millis(100), || std::thread::sleep(Duration::from_secs(5)));
        assert!(r.is_none());
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn missing_serial_port_fails_with_both_languages() {
        let text = "device = \"csv\"\nport = \"/nonexistent/ttyUSB9\"\n";
        let config: ThermalConfig = toml::from_str(text).expect("thermal section");
        let f = thermal_sensor(&config, Duration::from_secs(1));
        assert_eq!(f.status, Status::Fail, "{f:?}");
        assert!(f.detail.contains("/nonexistent/ttyUSB9") && f.detail.contains("센서"), "{f:?}");
        assert!(f.fix.contains("dialout") && f.fix.contains("권한"), "{f:?}");
    }

    #[test]
    fn a_state_dir_not_made_yet_is_judged_by_its_parent() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let missing = tmp.path().join("a/b");
        assert_eq!(nearest_existing(&missing).as_deref(), Some(tmp.path()));
        assert!(probe_write(tmp.path()).is_ok());
        assert_eq!(std::fs::read_dir(tmp.path()).expect("read").count(), 0, "the probe is removed");
    }
}
