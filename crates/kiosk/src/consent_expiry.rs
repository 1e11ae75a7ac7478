//! The end of consents by their date, enforced by the kiosk on its own: at start (before the
//! vision stage reads the gallery) and every hour, a consent whose `retention_until` is behind
//! the site's today ends as `expired`, and a child left with no consent to face-attendance in
//! force loses every face template (see `dolbom_face::gallery::consent`). Each step goes to the
//! gallery's audit log, by `kiosk`. The vision stage rereads the gallery when its file changes,
//! so it stops matching the child within seconds.
//!
//! Hourly rather than daily: a consent ending on a day should not outlive it by most of the next.
//! A check that finds nothing due writes nothing.

use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use tracing::{info, info_span, warn, Instrument};

use dolbom_face::gallery::{Action, AuditError, AuditLog, Ended, Entry, Erasure, GalleryStore, StoreError};

use crate::shutdown::Shutdown;

const EVERY: Duration = Duration::from_secs(3_600);

#[derive(Debug, thiserror::Error)]
pub enum ExpiryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// Ends the consents past their retention on the site's today at `now`; what was destroyed.
pub fn expire(
    store: &GalleryStore,
    audit: &AuditLog,
    tz: &TimeZone,
    now: Timestamp,
) -> Result<Vec<Erasure>, ExpiryError> {
    let today = now.to_zoned_datetime(tz.clone()).date();
    let due =
        |g: &dolbom_face::gallery::Gallery| g.consents.iter().any(|c| c.ended.is_none() && today > c.retention_until);
    // Most hours nothing is due: no write, so the vision stage has nothing to reread.
    if !due(&store.load()?) {
        return Ok(Vec::new());
    }
    let erased = store.update_then(
        |g| Ok::<_, ExpiryError>(g.expire_consents(today, now)),
        |erased| {
            let lines: Vec<Entry> = erased
                .iter()
                .flat_map(|e| {
                    let ended = Entry::new(Action::ConsentExpired, &e.person, "kiosk");
                    let gone = Entry {
                        cause: Some(Ended::Expired),
                        ..Entry::new(Action::TemplatesErased, &e.person, "kiosk").templates(e.templates)
                    };
                    std::iter::once(ended).chain((e.templates > 0).then_some(gone))
                })
                .collect();
            Ok(audit.append(&lines, now)?)
        },
    )?;
    for e in &erased {
        info!(
            person = %e.person,
            consents = e.consents_ended,
            templates = e.templates,
            "consent past its retention date ended; {} face template(s) destroyed / 보관 기간이 끝난 동의 종료, 템플릿 {}개 파기",
            e.templates,
            e.templates
        );
    }
    Ok(erased)
}

/// The hourly check, until shutdown (the start-up one runs before the stages, in `daemon`).
pub async fn run(store: GalleryStore, audit: AuditLog, tz: TimeZone, shutdown: Shutdown) {
    let span = info_span!("consent_expiry");
    let store = std::sync::Arc::new((store, audit));
    async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(EVERY) => {}
                _ = shutdown.wait() => return,
            }
            let (work, tz) = (store.clone(), tz.clone());
            match tokio::task::spawn_blocking(move || expire(&work.0, &work.1, &tz, Timestamp::now())).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    warn!(error = %e, "consent expiry check failed; trying again in an hour / 동의 만료 확인 실패")
                }
                Err(e) => warn!(error = %e, "consent expiry check did not finish"),
            }
        }
    }
    .instrument(span)
    .await
}
