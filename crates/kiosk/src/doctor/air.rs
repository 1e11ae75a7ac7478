//! The doctor's air checks: each indoor sensor through the daemon's own stage (the same port
//! settings, start and poll commands, decoder and plausibility check) until its first window,
//! and each outdoor service through the daemon's own poller until its first answer.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use super::Finding;
use crate::air::{IndoorMeasurement, IndoorUpdate, OutdoorAir, AIR_CO2, AIR_PM, OUTDOOR_DUST, OUTDOOR_WEATHER};
use crate::health::{Health, SensorState};
use crate::shutdown::Shutdown;
use crate::sources::air::config::AirConfig;
use crate::sources::air::stage::{run_co2, run_pms, SensorStage};
use crate::sources::outdoor::config::OutdoorConfig;

/// How long an air sensor has to deliver a first window (a polled sensor answers every few s).
pub const AIR_TIMEOUT: Duration = Duration::from_secs(8);
/// How long each outdoor service has to answer (its own request timeout counts within it).
pub const OUTDOOR_TIMEOUT: Duration = Duration::from_secs(20);

/// One finding per configured indoor sensor.
pub fn sensors(config: &AirConfig, timeout: Duration) -> Vec<Finding> {
    let mut findings = Vec::new();
    if config.pms.is_some() {
        findings.push(sensor(AIR_PM, run_pms, config, timeout));
    }
    if config.co2.is_some() {
        findings.push(sensor(AIR_CO2, run_co2, config, timeout));
    }
    findings
}

/// Runs the sensor's stage with a one-second window until it hands over a window, reports the
/// sensor faulty, or `timeout` passes.
fn sensor(name: &'static str, run: SensorStage, config: &AirConfig, timeout: Duration) -> Finding {
    let mut c = config.clone();
    // Each poll within the window still happens: the shortest window the stage accepts.
    c.window_secs = c.pms.iter().map(|p| p.poll_secs).chain(c.co2.iter().map(|p| p.poll_secs)).max().unwrap_or(1);
    // The preheat counts from the daemon's start, which the doctor is not: show what the sensor
    // says now (see the finding's wording).
    if let Some(co2) = &mut c.co2 {
        co2.preheat_secs = 0;
    }
    // A window must be able to close: the configured polls may be slower than the default wait.
    let timeout = timeout.max(Duration::from_secs(c.window_secs + 3));
    let port = match name {
        AIR_PM => c.pms.as_ref().map(|p| p.port.clone()),
        _ => c.co2.as_ref().map(|p| p.port.clone()),
    }
    .unwrap_or_default();
    let (health, shutdown) = (Arc::new(Health::default()), Shutdown::new());
    let (tx, mut rx) = mpsc::channel::<IndoorUpdate>(4);
    let stage = {
        let (health, shutdown) = (health.clone(), shutdown.clone());
        std::thread::Builder::new().name("doctor-air".into()).spawn(move || run(c, tx, health, shutdown))
    };
    let started = Instant::now();
    let outcome = loop {
        if let Ok(update) = rx.try_recv() {
            break Ok(update.measurement);
        }
        let state = health.summary().sensors.get(name).map(|s| (s.state, s.error.clone()));
        if let Some((SensorState::Faulty, reason)) = &state {
            break Err((true, reason.clone().unwrap_or_default()));
        }
        if started.elapsed() > timeout || stage.as_ref().map_or(true, |s| s.is_finished()) {
            let why = state.and_then(|s| s.1).unwrap_or_else(|| "no valid frame".into());
            break Err((false, why));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    shutdown.trigger();
    if let Ok(stage) = stage {
        let _ = stage.join();
    }
    let secs = timeout.as_secs();
    let port_fix = format!(
        "check air.{0}.port, the cable and the baud rate, and that the user is in the dialout group; stop the running kiosk if it holds the port / air.{0}.port, 케이블, 통신 속도, dialout 그룹 권한을 확인하세요",
        if name == AIR_PM { "pms" } else { "co2" }
    );
    match outcome {
        Ok(IndoorMeasurement::Warming) => Finding::ok(
            name,
            format!("{port}: answers, still warming up (no values yet) / 센서 응답, 예열 중"),
        ),
        Ok(IndoorMeasurement::Particles { pm25, pm10, .. }) => Finding::ok(
            name,
            format!("{port}: PM2.5 {pm25:.0}, PM10 {pm10:.0} µg/m³ / 미세먼지 센서 정상"),
        ),
        Ok(IndoorMeasurement::Co2 { ppm }) => Finding::ok(
            name,
            format!("{port}: CO2 {ppm:.0} ppm (a sensor powered up less than 3 minutes ago may still read its preheat value) / 이산화탄소 센서 정상 (켠 지 3분이 안 되었으면 예열 값일 수 있음)"),
        ),
        Err((true, reason)) => Finding::fail(
            name,
            format!("{port}: answers, but with impossible values: {reason} / 센서가 불가능한 값을 보냄"),
            if name == AIR_PM {
                "check air.pms.model against the sensor, its air inlet and fan; then replace it / 센서 모델 설정, 공기 흡입구와 팬을 확인하고, 아니면 교체하세요"
            } else {
                "check air.co2.range_ppm, and calibrate the sensor in fresh outdoor air (zero point) or replace it / air.co2.range_ppm 을 확인하고, 바깥 공기에서 영점 보정하거나 교체하세요"
            },
        ),
        Err((false, reason)) => {
            Finding::fail(name, format!("{port}: nothing valid in {secs} s: {reason} / 센서에서 올바른 값이 오지 않음"), port_fix)
        }
    }
}

/// One finding per configured outdoor service, from one real request each. `base` is the
/// config file's directory, for the key files.
pub fn outdoor(config: &OutdoorConfig, base: &Path, timeout: Duration) -> Vec<Finding> {
    let mut config = config.clone();
    let services = [(OUTDOOR_DUST, config.airkorea.is_some()), (OUTDOOR_WEATHER, config.kma.is_some())];
    if let Err(e) = config.load_secrets(base) {
        let fix = "make the key file readable by the kiosk's user only (chmod 600), or hand it over with the unit's LoadCredential= / 키 파일을 키오스크 사용자만 읽게 하거나 유닛의 LoadCredential= 로 넘기세요";
        let not_here = matches!(e, dolbom_secret::SecretError::NoCredentials { .. });
        return services
            .iter()
            .filter(|s| s.1)
            .map(|(name, _)| match not_here {
                true => Finding::warn(
                    name,
                    format!("not checked: {e} / 키를 systemd 가 넘겨주므로 여기서는 확인하지 못함"),
                    fix,
                ),
                false => Finding::fail(name, format!("{e} / 서비스 키 파일을 읽을 수 없음"), fix),
            })
            .collect();
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            return vec![Finding::fail(
                OUTDOOR_DUST,
                format!("cannot start the check: {e} / 점검을 시작할 수 없음"),
                "",
            )]
        }
    };
    let health = Arc::new(Health::default());
    let (tx, rx) = watch::channel(OutdoorAir::default());
    let shutdown = Shutdown::new();
    runtime.block_on(async {
        let poller = tokio::spawn(crate::sources::outdoor::run(config, tx, health.clone(), shutdown.clone()));
        // Each service has reported something other than "starting" (not yet reported at all
        // counts as starting too).
        let answered = |h: &Health| {
            let sensors = h.summary().sensors;
            services.iter().all(|(name, _)| sensors.get(*name).is_some_and(|s| s.state != SensorState::Starting))
        };
        let until = tokio::time::Instant::now() + timeout;
        while !answered(&health) && tokio::time::Instant::now() < until && !poller.is_finished() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        shutdown.trigger();
        let _ = poller.await;
    });
    let sensors = health.summary().sensors;
    let air = rx.borrow().clone();
    services
        .iter()
        .filter(|s| s.1)
        .map(|(name, _)| {
            let (state, error) = sensors.get(*name).map_or((SensorState::Starting, None), |s| (s.state, s.error.clone()));
            let value = match *name {
                OUTDOOR_DUST => air.dust.as_ref().map(|d| {
                    let v = |x: Option<f32>| x.map_or("-".to_string(), |x| format!("{x:.0}"));
                    format!("{}: PM10 {}, PM2.5 {} µg/m³", d.station, v(d.pm10), v(d.pm25))
                }),
                _ => air.weather.as_ref().map(|w| {
                    let v = |x: Option<f32>| x.map_or("-".to_string(), |x| format!("{x:.1}"));
                    format!("grid {},{}: {} °C, {} %", w.nx, w.ny, v(w.temperature_c), v(w.humidity_pct))
                }),
            };
            let error = error.unwrap_or_default();
            match state {
                SensorState::Ok => Finding::ok(name, format!("{} / 실외 정보 정상", value.unwrap_or_default())),
                SensorState::Off => Finding::warn(
                    name,
                    error,
                    "set the service_key_file of this service to use it / 쓰려면 이 서비스의 service_key_file 을 설정하세요",
                ),
                SensorState::Starting => Finding::fail(
                    name,
                    format!("no answer within {} s / {}초 안에 응답 없음", timeout.as_secs(), timeout.as_secs()),
                    "check the kiosk's internet access and DNS, and the base_url / 인터넷 연결, DNS, base_url 을 확인하세요",
                ),
                _ => Finding::fail(
                    name,
                    error,
                    "the reason above says what to fix: the key, the quota, the station name or the network / 위 이유에 따라 키, 호출 한도, 측정소 이름, 네트워크를 확인하세요",
                ),
            }
        })
        .collect()
}
