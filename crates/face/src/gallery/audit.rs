//! The gallery's audit log: one JSON line per consent added, withdrawn or expired, per
//! enrolment, template taken from a sighting, revert, removal and erasure. Append-only (opened
//! with O_APPEND, mode 0600) and written after the gallery change it records was saved, under
//! the gallery's lock, so lines follow the changes in order.
//!
//! Each line carries `prev`, the SHA-256 of the line before it (64 zeros for the first), and
//! `seq`, its number: an edited or deleted line breaks the chain at the next one, which
//! `dolbom audit verify` reports. (Whoever can rewrite the whole file can rewrite the chain too;
//! and a cut after the last line leaves no trace in the chain itself: keep copies of the head
//! `audit verify` prints.) A line never holds a template, a guardian's name or an image: ids,
//! counts, purposes and dates only.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::consent::{Ended, Purpose};

/// The `prev` of the first line.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    ConsentAdded,
    ConsentWithdrawn,
    ConsentExpired,
    /// Photos enrolled: `templates` added, `total` after.
    Enrolled,
    /// The kiosk took a template from a sighting.
    TemplateRefreshed,
    /// Templates taken from sightings dropped by staff (`templates` dropped).
    RefreshReverted,
    /// The person removed whole (`templates` destroyed with them).
    Removed,
    /// Face templates destroyed because consent ended (`cause`).
    TemplatesErased,
}

/// What happened, before it is numbered and chained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub action: Action,
    pub person: String,
    /// The staff id that did it, `kiosk` for the daemon, `cli` when a command was not told.
    pub by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub templates: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<usize>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub purposes: Vec<Purpose>,
    /// A consent's retention end (ISO date).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<Ended>,
}

impl Entry {
    pub fn new(action: Action, person: &str, by: &str) -> Self {
        Self {
            action,
            person: person.to_string(),
            by: by.to_string(),
            templates: None,
            total: None,
            purposes: Vec::new(),
            until: None,
            cause: None,
        }
    }

    pub fn templates(mut self, n: usize) -> Self {
        self.templates = Some(n);
        self
    }
}

/// One line as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    pub seq: u64,
    /// RFC 3339, UTC.
    pub at: String,
    #[serde(flatten)]
    pub entry: Entry,
    pub prev: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("cannot read the audit log {path}: {error} / 감사 기록을 읽을 수 없습니다")]
    Read { path: PathBuf, error: std::io::Error },
    #[error(
        "cannot write the audit log {path}: {error}; the gallery change itself was saved, its audit line is missing \
         / 감사 기록을 쓸 수 없습니다: 변경은 저장되었으나 감사 기록이 빠졌습니다"
    )]
    Write { path: PathBuf, error: std::io::Error },
    #[error("the audit log {path} is broken at line {line}: {reason} / 감사 기록 {line}번째 줄이 손상되었습니다")]
    Broken { path: PathBuf, line: usize, reason: String },
}

/// What a verified log holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub lines: u64,
    /// The SHA-256 of the last line (GENESIS for an empty log): note it to detect a cut later.
    pub head: String,
}

pub struct AuditLog {
    path: PathBuf,
}

impl AuditLog {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The default place: beside the gallery, `gallery.json` → `gallery.audit.jsonl`.
    pub fn beside(gallery: &Path) -> PathBuf {
        gallery.with_extension("audit.jsonl")
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `entries` in one write, numbered and chained after the last line. Call it with
    /// the gallery's lock held (see `GalleryStore::update_then`), so appends do not interleave.
    pub fn append(&self, entries: &[Entry], at: Timestamp) -> Result<(), AuditError> {
        if entries.is_empty() {
            return Ok(());
        }
        self.cut_torn_tail()?;
        let checked = self.verify()?;
        let (mut seq, mut prev) = (checked.lines, checked.head);
        let mut bytes = Vec::new();
        for entry in entries {
            seq += 1;
            let line = Line { seq, at: at.to_string(), entry: entry.clone(), prev };
            let text = serde_json::to_string(&line).map_err(|e| self.write_err(std::io::Error::other(e)))?;
            prev = sha256_hex(text.as_bytes());
            bytes.extend_from_slice(text.as_bytes());
            bytes.push(b'\n');
        }
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|e| self.write_err(e))?;
        }
        let mut f =
            OpenOptions::new().create(true).append(true).mode(0o600).open(&self.path).map_err(|e| self.write_err(e))?;
        f.write_all(&bytes).map_err(|e| self.write_err(e))?;
        f.sync_data().map_err(|e| self.write_err(e))
    }

    /// An append is one write of whole lines, so a last line without its newline is an append a
    /// power cut or a full disk stopped: its change was saved but its line never completed. It is
    /// cut off (and said so), or every later change would go unrecorded; a broken line before it
    /// still stops the append.
    fn cut_torn_tail(&self) -> Result<(), AuditError> {
        let bytes = match fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(AuditError::Read { path: self.path.clone(), error }),
        };
        if bytes.is_empty() || bytes.ends_with(b"\n") {
            return Ok(());
        }
        let keep = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let f = OpenOptions::new().write(true).open(&self.path).map_err(|e| self.write_err(e))?;
        f.set_len(keep as u64).map_err(|e| self.write_err(e))?;
        f.sync_data().map_err(|e| self.write_err(e))?;
        tracing::warn!(
            path = %self.path.display(),
            bytes = bytes.len() - keep,
            "the audit log's last line was incomplete (a write cut short) and was removed; the change it recorded \
             was saved / 감사 기록의 마지막 줄이 불완전하여 지웠습니다"
        );
        Ok(())
    }

    /// Every line, checked (see [`verify`](Self::verify)).
    pub fn read(&self) -> Result<Vec<Line>, AuditError> {
        Ok(self.walk()?.0)
    }

    /// Checks every line: valid JSON, numbered 1, 2, 3…, each `prev` the hash of the line
    /// before. A missing file is an empty log.
    pub fn verify(&self) -> Result<Verified, AuditError> {
        let (lines, head) = self.walk()?;
        Ok(Verified { lines: lines.len() as u64, head })
    }

    fn walk(&self) -> Result<(Vec<Line>, String), AuditError> {
        let bytes = match fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), GENESIS.to_string())),
            Err(error) => return Err(AuditError::Read { path: self.path.clone(), error }),
        };
        let broken = |line: usize, reason: String| AuditError::Broken { path: self.path.clone(), line, reason };
        if !bytes.is_empty() && !bytes.ends_with(b"\n") {
            let n = bytes.iter().filter(|b| **b == b'\n').count() + 1;
            return Err(broken(n, "the last line is incomplete (a write was cut short)".into()));
        }
        let mut prev = GENESIS.to_string();
        let mut out = Vec::new();
        for (i, raw) in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()).enumerate() {
            let n = i + 1;
            let line: Line = serde_json::from_slice(raw).map_err(|e| broken(n, format!("not an audit line: {e}")))?;
            if line.seq != n as u64 {
                return Err(broken(
                    n,
                    format!("numbered {} where {n} was due (a line was removed or added)", line.seq),
                ));
            }
            if line.prev != prev {
                return Err(broken(
                    n,
                    "`prev` is not the hash of the line before (that line was edited or removed)".into(),
                ));
            }
            prev = sha256_hex(raw);
            out.push(line);
        }
        Ok((out, prev))
    }

    fn write_err(&self, error: std::io::Error) -> AuditError {
        AuditError::Write { path: self.path.clone(), error }
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> Timestamp {
        "2026-12-02T05:00:00Z".parse().expect("ts")
    }

    #[test]
    fn lines_chain_and_an_edit_or_a_removal_is_found() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = AuditLog::new(AuditLog::beside(&dir.path().join("gallery.json")));
        assert_eq!(log.path(), dir.path().join("gallery.audit.jsonl"));
        assert_eq!(log.verify().expect("empty").lines, 0);
        log.append(&[Entry::new(Action::ConsentAdded, "minji", "kim")], at()).expect("1");
        log.append(
            &[
                Entry::new(Action::Enrolled, "minji", "kim").templates(2),
                Entry::new(Action::TemplatesErased, "minji", "kim").templates(2),
            ],
            at(),
        )
        .expect("2, 3");
        let lines = log.read().expect("read");
        assert_eq!(lines.iter().map(|l| l.seq).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(lines[0].prev, GENESIS);
        assert_eq!(lines[1].entry.templates, Some(2));
        let mode = fs::metadata(log.path()).expect("meta");
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777, 0o600);
        let text = fs::read_to_string(log.path()).expect("text");
        assert!(text.starts_with(r#"{"seq":1,"at":"2026-12-02T05:00:00Z","action":"consent-added","person":"minji","by":"kim","prev":"0000"#), "{text}");

        let edited = text.replacen("\"templates\":2", "\"templates\":1", 1);
        fs::write(log.path(), &edited).expect("edit");
        let e = log.verify().expect_err("edited").to_string();
        assert!(e.contains("line 3") && e.contains("edited or removed"), "{e}");
        assert!(log.append(&[Entry::new(Action::Removed, "minji", "kim")], at()).is_err(), "no append to a broken log");

        let removed: String =
            text.lines().enumerate().filter(|(i, _)| *i != 1).map(|(_, l)| format!("{l}\n")).collect();
        fs::write(log.path(), removed).expect("remove");
        assert!(log.verify().expect_err("removed").to_string().contains("line 2"));

        fs::write(log.path(), &text[..text.len() - 5]).expect("cut");
        assert!(log.verify().expect_err("cut").to_string().contains("incomplete"));
        // The next append cuts the torn line and chains after the last whole one.
        log.append(&[Entry::new(Action::Removed, "minji", "kim")], at()).expect("append after a torn line");
        let lines = log.read().expect("whole again");
        assert_eq!(lines.len(), text.lines().count());
        assert_eq!(lines.last().map(|l| l.entry.action), Some(Action::Removed));
    }
}
