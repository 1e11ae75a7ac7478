//! `dolbom doctor`: the installer's check of a kiosk, as a table or as JSON lines.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use dolbom_kiosk::doctor::{self, Status};

pub fn doctor(config: &Path, json: bool) -> Result<ExitCode> {
    let findings = doctor::run(config);
    if json {
        for f in &findings {
            outln!("{}", serde_json::to_string(f)?)?;
        }
    } else {
        let width = findings.iter().map(|f| f.check.len()).max().unwrap_or(0);
        for f in &findings {
            outln!("{:<4}  {:<width$}  {}", f.status.label(), f.check, f.detail)?;
            if !f.fix.is_empty() {
                outln!("{:<4}  {:<width$}  → {}", "", "", f.fix)?;
            }
        }
        let failed = findings.iter().filter(|f| f.status == Status::Fail).count();
        let warned = findings.iter().filter(|f| f.status == Status::Warn).count();
        outln!(
            "{} checks, failed: {failed}, warnings: {warned} / 점검 {}건: 실패 {failed}, 경고 {warned}",
            findings.len(),
            findings.len()
        )?;
    }
    let failed = findings.iter().any(|f| f.status == Status::Fail);
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
