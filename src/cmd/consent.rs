//! `dolbom consent` and `dolbom audit`: guardians' consents to a child's face recognition, and
//! the audit log of every consent, enrolment and erasure (docs/consent.md).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use dolbom_face::gallery::{printable, Action, Consent, Entry, Gallery, Purpose, Role};
use dolbom_kiosk::config::Config;
use jiff::tz::TimeZone;
use jiff::Timestamp;

use crate::{AuditAction, ConsentAction};

pub fn consent(action: ConsentAction) -> Result<ExitCode> {
    match action {
        ConsentAction::Add { person, guardian, relation, given_on, verified_how, purposes, until, by, config } => {
            let config = Config::load(&config)?;
            let now = Timestamp::now();
            let today = now.to_zoned_datetime(config.timezone()).date();
            let mut purposes = purposes;
            purposes.sort();
            purposes.dedup();
            let consent = Consent {
                person: person.clone(),
                guardian,
                relation,
                given_on,
                verified_how,
                purposes,
                retention_until: until,
                recorded_at: now,
                recorded_by: by.clone(),
                ended: None,
                ended_at: None,
                ended_by: None,
                reason: None,
            };
            let entry = Entry {
                purposes: consent.purposes.clone(),
                until: Some(until.to_string()),
                ..Entry::new(Action::ConsentAdded, &person, &by)
            };
            let audit = config.audit_log();
            let store = config.gallery.store();
            let enrolled = store.update_then(
                |g| {
                    g.add_consent(consent, today)?;
                    Ok::<_, anyhow::Error>(g.get(&person).map(|p| p.role))
                },
                |_| Ok(audit.append(std::slice::from_ref(&entry), now)?),
            )?;
            let (id, list) = (printable(&person), purposes_text(&entry.purposes));
            outln!("consent recorded for {id}: {list}, kept until {until} / {id}의 동의를 기록했습니다: {list}, {until}까지 보관")?;
            match enrolled {
                Some(Role::Child) => {}
                Some(role) => outln!(
                    "note: {id} is enrolled as {role}; adults need no consent record / 참고: {id}: 성인({role})으로 \
                     등록되어 있어 동의 기록이 필요하지 않습니다"
                )?,
                None => outln!(
                    "next: enrol the face with `dolbom enroll --person {id} --role child ...` / 다음: `dolbom enroll`로 \
                     얼굴을 등록하세요"
                )?,
            }
            Ok(ExitCode::SUCCESS)
        }
        ConsentAction::List { config, json } => list(config, json),
        ConsentAction::Withdraw { person, by, reason, config } => {
            let config = Config::load(&config)?;
            let now = Timestamp::now();
            let today = now.to_zoned_datetime(config.timezone()).date();
            let audit = config.audit_log();
            let store = config.gallery.store();
            let erased = store.update_then(
                |g| Ok::<_, anyhow::Error>(g.withdraw_consent(&person, now, &by, reason.as_deref(), today)?),
                |e| {
                    let mut lines = Vec::new();
                    if e.consents_ended > 0 {
                        lines.push(Entry::new(Action::ConsentWithdrawn, &person, &by));
                    }
                    lines.push(Entry {
                        cause: Some(dolbom_face::gallery::Ended::Withdrawn),
                        ..Entry::new(Action::TemplatesErased, &person, &by).templates(e.templates)
                    });
                    Ok(audit.append(&lines, now)?)
                },
            )?;
            let (id, n, c) = (printable(&person), erased.templates, erased.consents_ended);
            outln!(
                "consent withdrawn for {id} ({c} ended): {n} templates destroyed / {id}의 동의 철회 ({c}건 종료): 템플릿 \
                 {n}개 파기"
            )?;
            outln!(
                "{id} stays enrolled without a face: a tag or PIN still checks them in / {id}: 얼굴 없이 등록된 채로 \
                 남습니다: 태그나 PIN으로 출석할 수 있습니다"
            )?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn purposes_text(purposes: &[Purpose]) -> String {
    purposes.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(",")
}

fn list(config: PathBuf, json: bool) -> Result<ExitCode> {
    let config = Config::load(&config)?;
    let tz = config.timezone();
    let today = Timestamp::now().to_zoned_datetime(tz.clone()).date();
    let gallery = config.gallery.store().load()?;
    for c in &gallery.consents {
        let state = match c.ended {
            Some(how) => how.to_string(),
            None if c.in_force(today) => "in-force".into(),
            // Past its date, not yet ended by the kiosk (it checks at start and every hour).
            None => "due-to-expire".into(),
        };
        if json {
            let mut v = serde_json::to_value(c).context("serialising a consent")?;
            v["state"] = state.into();
            outln!("{v}")?;
        } else {
            let ended = match (c.ended_at, &c.ended_by) {
                (Some(at), Some(by)) => format!("{} by {}", local_day(at, &tz), printable(by)),
                _ => "-".into(),
            };
            outln!(
                "{}\t{state}\t{}\tuntil {}\tgiven {} by {} ({}), {}\trecorded {} by {}\tended {ended}",
                printable(&c.person),
                purposes_text(&c.purposes),
                c.retention_until,
                c.given_on,
                printable(&c.guardian),
                printable(&c.relation),
                printable(&c.verified_how),
                local_day(c.recorded_at, &tz),
                printable(&c.recorded_by),
            )?;
        }
    }
    for p in unconsented(&gallery, today) {
        let (id, n) = (printable(&p.0), p.1);
        if json {
            outln!("{}", serde_json::json!({"person": p.0, "state": "no-consent", "templates": n}))?;
        } else {
            outln!(
                "{id}\tno-consent\ta child with {n} face template(s) and no consent in force: record one or withdraw \
                 / 유효한 동의 없이 얼굴 템플릿 {n}개가 있는 아동: 동의를 기록하거나 철회하세요"
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Children enrolled with face templates and no consent to face-attendance in force (enrolled
/// before consents were recorded, or whose consent is past its date and not yet expired).
fn unconsented(gallery: &Gallery, today: jiff::civil::Date) -> Vec<(String, usize)> {
    gallery
        .people
        .iter()
        .filter(|p| p.role == Role::Child && p.templates().next().is_some())
        .filter(|p| !gallery.consented(&p.id, Purpose::FaceAttendance, today))
        .map(|p| (p.id.clone(), p.templates().count()))
        .collect()
}

fn local_day(at: Timestamp, tz: &TimeZone) -> String {
    at.to_zoned_datetime(tz.clone()).strftime("%Y-%m-%d %H:%M").to_string()
}

pub fn audit(action: AuditAction) -> Result<ExitCode> {
    match action {
        AuditAction::List { config, json } => {
            let config = Config::load(&config)?;
            let tz = config.timezone();
            for line in config.audit_log().read()? {
                if json {
                    outln!("{}", serde_json::to_string(&line).context("serialising an audit line")?)?;
                    continue;
                }
                let e = &line.entry;
                let at = line.at.parse::<Timestamp>().map(|t| local_day(t, &tz)).unwrap_or_else(|_| line.at.clone());
                let action = serde_json::to_value(e.action).ok().and_then(|v| v.as_str().map(String::from));
                let mut detail = Vec::new();
                if let Some(n) = e.templates {
                    detail.push(format!("templates={n}"));
                }
                if let Some(n) = e.total {
                    detail.push(format!("total={n}"));
                }
                if !e.purposes.is_empty() {
                    detail.push(format!("purposes={}", purposes_text(&e.purposes)));
                }
                if let Some(u) = &e.until {
                    detail.push(format!("until={u}"));
                }
                if let Some(c) = e.cause {
                    detail.push(format!("cause={c}"));
                }
                outln!(
                    "{}\t{at}\t{}\t{}\tby {}\t{}",
                    line.seq,
                    action.unwrap_or_default(),
                    printable(&e.person),
                    printable(&e.by),
                    detail.join(" ")
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditAction::Verify { config } => {
            let config = Config::load(&config)?;
            let log = config.audit_log();
            match log.verify() {
                Ok(v) => {
                    outln!(
                        "audit log {} intact: {} line(s), last hash {} / 감사 기록 이상 없음: {}줄",
                        log.path().display(),
                        v.lines,
                        v.head,
                        v.lines
                    )?;
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}
