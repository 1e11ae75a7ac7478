//! `dolbom kiosk`, `dolbom status`, `dolbom alerts`: the daemon and the tools beside it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use dolbom_contract::StatusPayload;
use dolbom_kiosk::config::Config;

use crate::AlertsAction;

pub fn kiosk(path: PathBuf) -> Result<ExitCode> {
    let mut config = Config::load(&path)?;
    let base = path.parent().unwrap_or_else(|| Path::new("."));
    config.mqtt.broker.load_secrets(base)?;
    if let Some(outdoor) = &mut config.outdoor {
        outdoor.load_secrets(base)?;
    }
    dolbom_kiosk::daemon::run(&config, &path)?;
    Ok(ExitCode::SUCCESS)
}

pub fn status(config_path: &Path) -> Result<ExitCode> {
    let config = Config::load(config_path)?;
    let path = config.state.status_file();
    let running = dolbom_kiosk::store::daemon_running(&config.state.lock_file());
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(_) if running => {
            eprintln!(
                "kiosk is running, but it has written no status at {} (can it write its state directory?) / 키오스크는 실행 중이나 상태 파일이 없음",
                path.display()
            );
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => {
            return Err(e)
                .with_context(|| format!("no status at {}, and no kiosk is running with this config", path.display()))
        }
    };
    let status: StatusPayload =
        serde_json::from_str(&text).with_context(|| format!("{} is not a status file", path.display()))?;
    outln!("{text}")?;
    // The daemon rewrites the file at every status interval; much older means it is not running,
    // or, while it still holds its lock, that it cannot write there (a full disk).
    let age = std::fs::metadata(&path).and_then(|m| m.modified()).ok().and_then(|m| m.elapsed().ok());
    let stale = age.is_some_and(|a| a.as_secs() > 3 * config.mqtt.publish.status_interval_secs + 5);
    let degraded = status.health.as_ref().is_none_or(|h| h.degraded);
    let reasons = status.health.as_ref().map(|h| h.reasons.join("; ")).unwrap_or_default();
    if stale && running {
        eprintln!("kiosk is running, but its status file is stale: it cannot write its state directory (disk full?) / 키오스크는 실행 중이나 상태 파일을 쓰지 못함 (저장 공간 부족?)");
        return Ok(ExitCode::FAILURE);
    }
    if stale {
        eprintln!("kiosk is not running (its status file is stale and no daemon holds the state directory) / 키오스크가 실행 중이 아님");
        return Ok(ExitCode::FAILURE);
    }
    if status.state != "online" {
        let queued = status.health.as_ref().map_or(0, |h| h.outbox_depth);
        let queued = if queued > 0 { format!(", {queued} event(s) queued for its next start") } else { String::new() };
        eprintln!("kiosk is offline: it has stopped{queued} / 키오스크 정지됨");
        return Ok(ExitCode::FAILURE);
    }
    if degraded {
        eprintln!("kiosk is online, degraded: {reasons} / 키오스크 동작 중, 점검 필요");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn alerts(action: AlertsAction) -> Result<ExitCode> {
    use dolbom_kiosk::alerts::{Action, Command as AlertCommand};
    use dolbom_kiosk::outbox::Tally;
    let (path, act) = match &action {
        AlertsAction::Thermometer { person, celsius, by, config } => return thermometer(person, *celsius, by, config),
        AlertsAction::Remeasures { config } => return remeasures(config),
        AlertsAction::List { config } => (config, None),
        AlertsAction::Silence { alert_id, by, config } => (config, Some((Action::Silence, alert_id, by))),
        AlertsAction::Resolve { alert_id, by, config } => (config, Some((Action::Resolve, alert_id, by))),
    };
    let config = Config::load(path)?;
    // The site is checked first: a config without one cannot have a database of alerts.
    let context = dolbom_kiosk::daemon::alert_context(&config, config.site(path)?);
    let db = config.state.db_file();
    anyhow::ensure!(db.exists(), "no kiosk database at {} (has `dolbom kiosk` run with this config?)", db.display());
    let store = dolbom_kiosk::store::Store::open(&db)?;
    let mut conn = store.lock()?;
    let Some((action, alert_id, by)) = act else {
        for a in dolbom_kiosk::alerts::list(&conn)? {
            outln!("{}", serde_json::to_string(&a)?)?;
        }
        return Ok(ExitCode::SUCCESS);
    };
    // The same gate as a command by MQTT: signed with `commands.sign_with` (or the first key),
    // so a kiosk that refuses unsigned commands refuses an unsigned CLI too.
    let base = path.parent().unwrap_or_else(|| Path::new("."));
    let gate = config.commands.load(base).with_context(|| format!("config file {}", path.display()))?;
    let now = jiff::Timestamp::now().as_millisecond();
    let command = match action {
        Action::Silence => dolbom_contract::Command::Silence,
        Action::Resolve => dolbom_contract::Command::Resolve,
        Action::Thermometer => dolbom_contract::Command::Thermometer,
        // The staff desk's commands come from the console, never through this path.
        Action::Checkin => dolbom_contract::Command::Checkin,
        Action::Consent => dolbom_contract::Command::Consent,
        Action::Enroll => dolbom_contract::Command::Enroll,
        Action::Erase => dolbom_contract::Command::Erase,
    };
    let topic = context.site.topics.command(command);
    let request_id = dolbom_contract::new_event_id().to_string();
    let body = serde_json::json!({"alert_id": alert_id, "by": by, "request_id": request_id}).to_string();
    let payload = match gate.sign(&topic, &body, now) {
        Some(signed) => serde_json::to_vec(&signed)?,
        None => body.into_bytes(),
    };
    let cmd = match gate.admit(&conn, &topic, &payload, now)? {
        dolbom_kiosk::command_gate::Admitted::Command { body, .. } => serde_json::from_slice::<AlertCommand>(&body)?,
        dolbom_kiosk::command_gate::Admitted::Refused { refusal, .. } => {
            anyhow::bail!("{refusal}; add a key under [commands] (commands.keys) to sign with / 서명 키가 필요합니다")
        }
    };
    let result = context.apply(&mut conn, action, &cmd, now, &mut Tally::default())?;
    outln!("{}", serde_json::to_string(&result)?)?;
    // The running daemon publishes the new state from the outbox within a second.
    Ok(if result.ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// `dolbom alerts remeasures`: the open re-measures, one JSON line each, for staff deciding whom
/// to take a thermometer to.
fn remeasures(path: &Path) -> Result<ExitCode> {
    let config = Config::load(path)?;
    let site = config.site(path)?;
    let db = config.state.db_file();
    anyhow::ensure!(db.exists(), "no kiosk database at {} (has `dolbom kiosk` run with this config?)", db.display());
    let store = dolbom_kiosk::store::Store::open(&db)?;
    let conn = store.lock()?;
    for open in dolbom_kiosk::remeasure::list_open(&conn)? {
        let line = serde_json::json!({
            "arrival_event_id": open.arrival_event_id,
            "person": open.person,
            "day": open.day,
            "opened_at": site.ts(open.opened_ms),
        });
        outln!("{line}")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `dolbom alerts thermometer`: a staff value through the same gate and transaction as
/// `cmd/thermometer`; the running daemon publishes what it queued.
fn thermometer(person: &str, celsius: f32, by: &str, path: &Path) -> Result<ExitCode> {
    use dolbom_kiosk::outbox::Tally;
    use dolbom_kiosk::remeasure::{apply_thermometer, check_celsius, ThermometerCommand};
    // A wrong value is refused before anything is opened or signed.
    if let Some(why) = check_celsius(celsius) {
        anyhow::bail!("{why}");
    }
    let config = Config::load(path)?;
    let context = dolbom_kiosk::daemon::alert_context(&config, config.site(path)?);
    let db = config.state.db_file();
    anyhow::ensure!(db.exists(), "no kiosk database at {} (has `dolbom kiosk` run with this config?)", db.display());
    let store = dolbom_kiosk::store::Store::open(&db)?;
    let mut conn = store.lock()?;
    let base = path.parent().unwrap_or_else(|| Path::new("."));
    let gate = config.commands.load(base).with_context(|| format!("config file {}", path.display()))?;
    let now = jiff::Timestamp::now().as_millisecond();
    let topic = context.site.topics.command(dolbom_contract::Command::Thermometer);
    let request_id = dolbom_contract::new_event_id().to_string();
    let body =
        serde_json::json!({"person": person, "celsius": celsius, "by": by, "request_id": request_id}).to_string();
    let payload = match gate.sign(&topic, &body, now) {
        Some(signed) => serde_json::to_vec(&signed)?,
        None => body.into_bytes(),
    };
    let cmd = match gate.admit(&conn, &topic, &payload, now)? {
        dolbom_kiosk::command_gate::Admitted::Command { body, .. } => {
            ThermometerCommand::parse(&body).map_err(|e| anyhow::anyhow!(e))?
        }
        dolbom_kiosk::command_gate::Admitted::Refused { refusal, .. } => {
            anyhow::bail!("{refusal}; add a key under [commands] (commands.keys) to sign with / 서명 키가 필요합니다")
        }
    };
    let result = apply_thermometer(&context, &mut conn, &cmd, now, &mut Tally::default())?;
    outln!("{}", serde_json::to_string(&result)?)?;
    if let Some(error) = &result.error {
        eprintln!("{error}");
    }
    Ok(if result.ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

pub fn gallery_health(path: &Path, json: bool) -> Result<ExitCode> {
    let config = Config::load(path)?;
    let db = config.state.db_file();
    anyhow::ensure!(db.exists(), "no kiosk database at {} (has `dolbom kiosk` run with this config?)", db.display());
    let store = dolbom_kiosk::store::Store::open(&db)?;
    let now = jiff::Timestamp::now().as_millisecond();
    let report = dolbom_kiosk::recognition::report(&*store.lock()?, config.face.matcher.threshold, now)?;
    let day =
        |ms: i64| jiff::Timestamp::from_millisecond(ms).map(|t| t.strftime("%Y-%m-%d").to_string()).unwrap_or_default();
    if !json {
        outln!(
            "{:<24} {:>6} {:>6} {:>11} {:>11}  re-enrol? / 재등록",
            "person",
            "seen",
            "trend",
            "last seen",
            "last clear"
        )?;
    }
    for p in &report {
        if json {
            outln!("{}", serde_json::to_string(p)?)?;
        } else {
            outln!(
                "{:<24} {:>6} {:>6.2} {:>11} {:>11}  {}",
                dolbom_face::gallery::printable(&p.person),
                p.seen,
                p.trend,
                day(p.last_seen_ms),
                p.last_strong_ms.map(day).unwrap_or_else(|| "-".into()),
                p.reenrol.as_deref().unwrap_or("-")
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
