//! The outdoor stage: asks each configured service at start and every `poll_minutes`, retries a
//! failure with backoff (never sooner than a minute: the keys have daily quotas), and keeps the
//! last good value in the shared watch. Each service reports its own health.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use dolbom_backoff::Backoff;
use jiff::{Timestamp, ToSpan};
use tokio::sync::watch;
use tracing::{info, info_span, warn, Instrument};

use super::answer::OutdoorError;
use super::config::{AirKoreaConfig, KmaConfig, OutdoorConfig};
use super::{airkorea, kma, request};
use crate::air::{OutdoorAir, OutdoorDust, OutdoorWeather, OUTDOOR_DUST, OUTDOOR_WEATHER};
use crate::health::{Health, SensorState};
use crate::shutdown::Shutdown;

/// How often to ask. From the config in the daemon ([`Pace::of`]); shorter in tests only.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Between good answers.
    pub poll: Duration,
    /// The first retry after a failure; each next one waits twice as long, up to `poll`.
    pub retry_initial: Duration,
}

impl Pace {
    pub fn of(config: &OutdoorConfig) -> Self {
        Self { poll: Duration::from_secs(u64::from(config.poll_minutes) * 60), retry_initial: Duration::from_secs(60) }
    }
}

/// Runs until shutdown. `config` has its secrets loaded ([`OutdoorConfig::load_secrets`]).
pub async fn run(config: OutdoorConfig, tx: watch::Sender<OutdoorAir>, health: Arc<Health>, shutdown: Shutdown) {
    let pace = Pace::of(&config);
    run_paced(config, tx, health, shutdown, pace).await
}

/// [`run`] at a given pace: the tests' way to poll in milliseconds without a config value below
/// the documented bounds.
pub async fn run_paced(
    config: OutdoorConfig,
    tx: watch::Sender<OutdoorAir>,
    health: Arc<Health>,
    shutdown: Shutdown,
    pace: Pace,
) {
    // reqwest is built without a default crypto provider; the relay installs the same one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let timeout = Duration::from_secs(config.timeout_secs);
    let client = match reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout((timeout / 2).max(Duration::from_secs(1)))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            let reason = format!("cannot build the HTTP client: {e} / HTTP 클라이언트를 만들 수 없습니다");
            warn!(error = %e, "outdoor: {reason}");
            for sensor in [OUTDOOR_DUST, OUTDOOR_WEATHER] {
                health.set_sensor(sensor, SensorState::Retrying, Some(reason.clone()));
            }
            return;
        }
    };
    let dust = async {
        let Some(airkorea) = usable(config.airkorea.as_ref(), |a| a.service_key.is_some()) else {
            absent(&health, OUTDOOR_DUST, config.airkorea.is_some(), "airkorea", "fine dust / 미세먼지");
            return;
        };
        let fetch = || fetch_dust(&client, airkorea, timeout);
        let store = |d: OutdoorDust| tx.send_if_modified(|a| keep_newer(&mut a.dust, d, |d| d.observed_ms));
        keep_polling(OUTDOOR_DUST, pace, &health, &shutdown, fetch, store).await;
    }
    .instrument(info_span!("outdoor", service = "airkorea"));
    let weather = async {
        let Some(kma) = usable(config.kma.as_ref(), |k| k.service_key.is_some()) else {
            absent(&health, OUTDOOR_WEATHER, config.kma.is_some(), "kma", "temperature and humidity / 기온과 습도");
            return;
        };
        let fetch = || fetch_weather(&client, kma, timeout);
        let store = |w: OutdoorWeather| tx.send_if_modified(|a| keep_newer(&mut a.weather, w, |w| w.observed_ms));
        keep_polling(OUTDOOR_WEATHER, pace, &health, &shutdown, fetch, store).await;
    }
    .instrument(info_span!("outdoor", service = "kma"));
    tokio::join!(dust, weather);
}

/// Takes `new` unless the value held was observed later (a station's newest hours can drop out
/// of an answer, and the KMA fallback asks for an older hour): the stored value never goes back in
/// time. True when it changed, so the air stage is only woken by news.
fn keep_newer<T: PartialEq>(held: &mut Option<T>, new: T, observed_ms: impl Fn(&T) -> i64) -> bool {
    match held {
        Some(old) if observed_ms(old) > observed_ms(&new) || *old == new => false,
        _ => {
            *held = Some(new);
            true
        }
    }
}

fn usable<T>(section: Option<&T>, has_key: impl Fn(&T) -> bool) -> Option<&T> {
    section.filter(|s| has_key(s))
}

/// Says once, in the log and in the status, why a service is not asked.
fn absent(health: &Health, sensor: &'static str, has_section: bool, section: &str, what: &str) {
    let reason = if has_section {
        format!("no service key: set outdoor.{section}.service_key_file to show outdoor {what} / 서비스 키가 없어 가져오지 않습니다")
    } else {
        format!("not configured: no [outdoor.{section}] section / 설정되지 않았습니다")
    };
    info!("outdoor {what}: {reason}");
    health.set_sensor(sensor, SensorState::Off, Some(reason));
}

/// Fetches at start and every `pace.poll`; after a failure, again after a growing delay. A
/// failure leaves the stored value alone.
async fn keep_polling<T, F, Fut>(
    sensor: &'static str,
    pace: Pace,
    health: &Health,
    shutdown: &Shutdown,
    mut fetch: F,
    mut store: impl FnMut(T) -> bool,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, OutdoorError>>,
{
    let mut backoff = Backoff::new(pace.retry_initial, pace.poll);
    let mut last_error: Option<String> = None;
    // Good answers and failed requests, reported as a serial sensor's frames and errors.
    let mut stats = crate::health::DecoderStats::default();
    health.set_sensor(sensor, SensorState::Starting, None);
    loop {
        let result = tokio::select! {
            _ = shutdown.wait() => return,
            r = fetch() => r,
        };
        let wait = match result {
            Ok(value) => {
                store(value);
                stats.frames += 1;
                health.set_sensor_stats(sensor, stats);
                health.set_sensor(sensor, SensorState::Ok, None);
                if last_error.take().is_some() {
                    info!("outdoor service answers again / 외부 서비스 응답 정상");
                }
                backoff.reset();
                pace.poll
            }
            Err(e) => {
                let reason = e.to_string();
                // Said when it changes: the same failure every minute is one story.
                if last_error.as_deref() != Some(reason.as_str()) {
                    warn!(error = %reason, "outdoor service failed; the last good value is kept / 외부 서비스 실패, 마지막 값 유지");
                }
                stats.malformed += 1;
                health.set_sensor_stats(sensor, stats);
                health.set_sensor(sensor, SensorState::Retrying, Some(reason.clone()));
                last_error = Some(reason);
                backoff.next_delay()
            }
        };
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

async fn fetch_dust(
    client: &reqwest::Client,
    config: &AirKoreaConfig,
    timeout: Duration,
) -> Result<OutdoorDust, OutdoorError> {
    let key = config.service_key.as_deref().unwrap_or_default();
    let params = airkorea::params(&config.station);
    let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let url = request::url(airkorea::SERVICE, &config.base_url, airkorea::OPERATION, key, &params)?;
    let text = request::get_text(client, airkorea::SERVICE, url, timeout).await?;
    airkorea::parse(&text, &config.station)
}

/// The latest hour that should be published, or the one before when it is not there yet.
async fn fetch_weather(
    client: &reqwest::Client,
    config: &KmaConfig,
    timeout: Duration,
) -> Result<OutdoorWeather, OutdoorError> {
    let key = config.service_key.as_deref().unwrap_or_default();
    // Checked by validate(); (0, 0) would only bring an error answer.
    let (nx, ny) = config.grid().unwrap_or((0, 0));
    let latest = kma::latest_hour(Timestamp::now());
    let mut hour = latest.clone();
    loop {
        let params = kma::params(&hour, nx, ny);
        let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let url = request::url(kma::SERVICE, &config.base_url, kma::OPERATION, key, &params)?;
        let text = request::get_text(client, kma::SERVICE, url, timeout).await?;
        match kma::parse(&text, &hour, nx, ny) {
            Err(OutdoorError::NoData { .. }) if hour == latest => {
                hour = latest.checked_sub(1.hour()).map_err(|e| OutdoorError::Garbage {
                    service: kma::SERVICE.name,
                    detail: format!("no hour before {latest}: {e}"),
                })?;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_held_value_never_goes_back_in_time() {
        let mut held = None;
        let at = |t: &i64| *t;
        assert!(keep_newer(&mut held, 10, at), "the first value");
        assert!(!keep_newer(&mut held, 10, at), "the same value is no news");
        assert!(!keep_newer(&mut held, 9, at), "an older one is refused");
        assert_eq!(held, Some(10));
        assert!(keep_newer(&mut held, 11, at));
        assert_eq!(held, Some(11));
        // A correction of the same hour replaces it.
        let mut held = Some((5, 1.0));
        assert!(keep_newer(&mut held, (5, 2.0), |v: &(i64, f32)| v.0));
        assert_eq!(held, Some((5, 2.0)));
    }
}
