//! `dolbom relay` and `dolbom relay log`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::RelayAction;

pub fn relay(config: Option<PathBuf>, action: Option<RelayAction>) -> Result<ExitCode> {
    let path = config.context("--config FILE is required")?;
    let mut file = dolbom_relay::RelayFile::load(&path)?;
    match action {
        None => {
            file.load_secrets(&path)?;
            dolbom_relay::run(file)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(RelayAction::Log { limit, json, show_numbers }) => {
            file.load_store_secret(&path)?;
            let store = dolbom_relay::store::open(&file.store(), None)?;
            // A terminal's scrollback and a pasted support ticket are logs too: numbers masked
            // unless asked for.
            let shown = |s: &str| if show_numbers { s.to_string() } else { dolbom_relay::phone::mask_in(s) };
            for d in store.log(limit)? {
                let to = if show_numbers { d.recipient.clone() } else { dolbom_relay::phone::mask(&d.recipient) };
                let (body, detail) = (shown(&d.body), d.detail.as_deref().map(shown));
                if json {
                    let line = serde_json::json!({
                        "id": d.id, "event_id": d.event_id, "to": to, "guardian": d.guardian,
                        "child": d.child, "center": d.center, "notice": d.notice, "type": d.msg_type,
                        "text": body, "status": d.status, "attempts": d.attempts,
                        "updated_ms": d.updated_ms, "detail": detail, "instance": d.instance,
                    });
                    outln!("{line}")?;
                } else {
                    let when =
                        jiff::Timestamp::from_millisecond(d.updated_ms).map(|t| t.to_string()).unwrap_or_default();
                    outln!(
                        "{when}\t{}\t{}\t{}\t{}\t{}\t{}{}",
                        d.status,
                        to,
                        d.child,
                        d.notice,
                        d.msg_type,
                        body,
                        detail.map(|x| format!("\t({x})")).unwrap_or_default()
                    )?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
