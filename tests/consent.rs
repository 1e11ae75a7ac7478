//! Consent to a child's face recognition, end to end: enrolment refused without it, withdrawal
//! and expiry destroying the templates (checked in the bytes of every file the kiosk writes), and
//! the audit log recording each step and catching an edited line.

mod common;

use std::path::Path;
use std::time::Duration;

use common::broker::{system_broker_port, Subscriber};
use common::kiosk::{clip, events, kiosk_config, spawn_kiosk, summary, unique_center, wait_exit, KioskOptions};
use common::{dolbom, photo, stderr, stdout, write_config};

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn enrol_obama(cfg: &Path, role: &str) -> std::process::Output {
    let (o1, o2) = (photo("face_recognition/obama.jpg"), photo("face_recognition/obama2.jpg"));
    dolbom(&[
        "enroll",
        "--config",
        s(cfg),
        "--person",
        "obama",
        "--role",
        role,
        "--name",
        "오바마",
        "--by",
        "kim-teacher",
        s(&o1),
        s(&o2),
    ])
}

/// The text one of `person`'s templates takes in a plain gallery file (and, decrypted, in a sealed
/// one): its first values, as serde writes them.
fn template_text(config: &Path, person: &str) -> String {
    let g = common::load(config).gallery.store().load().expect("gallery");
    let values = g.get(person).expect("enrolled").embeddings[0].values()[..6].to_vec();
    let text = serde_json::to_string(&values).expect("json");
    text.trim_matches(|c| c == '[' || c == ']').to_string()
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    for entry in std::fs::read_dir(dir).expect("dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            hits.extend(files_containing(&path, needle));
        } else if let Ok(bytes) = std::fs::read(&path) {
            if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                hits.push(path.display().to_string());
            }
        }
    }
    hits
}

/// An adult consents for themselves: staff need no consent record.
fn enrol_biden_as_staff(cfg: &Path) -> std::process::Output {
    let biden = photo("face_recognition/biden.jpg");
    dolbom(&["enroll", "--config", s(cfg), "--person", "biden", "--role", "staff", "--name", "B", s(&biden)])
}

fn audit_actions(cfg: &Path) -> Vec<(String, String, String)> {
    let out = dolbom(&["audit", "list", "--json", "--config", s(cfg)]);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            let field = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            (field("action"), field("person"), field("by"))
        })
        .collect()
}

#[test]
fn a_childs_face_is_enrolled_only_with_a_consent_in_force() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(dir.path(), "");
    let out = enrol_obama(&cfg, "child");
    assert!(!out.status.success(), "enrolled without consent");
    let err = stderr(&out);
    assert!(err.contains("guardian's consent") && err.contains("보호자"), "{err}");
    assert!(err.contains("dolbom consent add obama"), "the command to fix it: {err}");
    assert!(!dir.path().join("gallery.json").exists(), "nothing written");

    // Adults consent for themselves.
    let out = enrol_biden_as_staff(&cfg);
    assert!(out.status.success(), "{}", stderr(&out));

    // A consent's rules: a retention end in the past, and no face-attendance, are refused.
    let base = [
        "consent",
        "add",
        "obama",
        "--config",
        s(&cfg),
        "--guardian",
        "김영희",
        "--relation",
        "어머니",
        "--given-on",
        "2026-01-05",
        "--verified-how",
        "signed form",
        "--by",
        "kim-teacher",
    ];
    let mut past = base.to_vec();
    past.extend(["--purpose", "face-attendance", "--until", "2026-01-06"]);
    let out = dolbom(&past);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--until 2026-01-06"), "{}", stderr(&out));
    let mut refresh_only = base.to_vec();
    refresh_only.extend(["--purpose", "template-refresh", "--until", "2099-01-01"]);
    let out = dolbom(&refresh_only);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("face-attendance"), "{}", stderr(&out));
    assert!(!enrol_obama(&cfg, "child").status.success(), "refused consents record nothing");

    common::consent(&cfg, "obama");
    let out = enrol_obama(&cfg, "child");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = dolbom(&["consent", "list", "--json", "--config", s(&cfg)]);
    let listed: Vec<serde_json::Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["state"], "in-force");
    assert_eq!(listed[0]["guardian"], "김영희");
    assert_eq!(listed[0]["purposes"], serde_json::json!(["face-attendance"]));
    assert_eq!(
        audit_actions(&cfg),
        [
            ("enrolled".into(), "biden".into(), "cli".into()),
            ("consent-added".into(), "obama".into(), "kim-teacher".into()),
            ("enrolled".into(), "obama".into(), "kim-teacher".into()),
        ]
    );
    // The audit log holds ids and counts: no guardian's name, no template.
    let log = std::fs::read_to_string(dir.path().join("gallery.audit.jsonl")).expect("audit log");
    assert!(!log.contains("김영희"), "{log}");
    assert!(!log.contains(&template_text(&cfg, "obama")), "{log}");
}

#[test]
fn withdrawal_destroys_every_template_byte_for_byte_and_keeps_the_tag() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(dir.path(), "");
    common::consent(&cfg, "obama");
    assert!(enrol_obama(&cfg, "child").status.success());
    let out = dolbom(&["tag", "add", "obama", "62E3086CED", "--config", s(&cfg)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let gallery = dir.path().join("gallery.json");
    let needle = template_text(&cfg, "obama");
    assert_eq!(
        files_containing(dir.path(), &needle),
        [gallery.display().to_string()],
        "the template is in the gallery"
    );

    let out = dolbom(&[
        "consent",
        "withdraw",
        "obama",
        "--by",
        "kim-teacher",
        "--reason",
        "moving away",
        "--config",
        s(&cfg),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("2 templates destroyed") && stdout(&out).contains("템플릿 2개 파기"),
        "{}",
        stdout(&out)
    );
    assert_eq!(files_containing(dir.path(), &needle), Vec::<String>::new(), "a copy of the template is left");

    // The person stays, with the tag: a check-in without a face still works.
    let out = dolbom(&["tag", "list", "--json", "--config", s(&cfg)]);
    assert!(stdout(&out).contains("62E3086CED") && stdout(&out).contains("obama"), "{}", stdout(&out));
    let out = dolbom(&["consent", "list", "--json", "--config", s(&cfg)]);
    let c: serde_json::Value = serde_json::from_str(stdout(&out).lines().next().expect("one")).expect("json");
    assert_eq!(
        (c["state"].as_str(), c["ended_by"].as_str(), c["reason"].as_str()),
        (Some("withdrawn"), Some("kim-teacher"), Some("moving away"))
    );
    assert!(!enrol_obama(&cfg, "child").status.success(), "a withdrawn consent allows no enrolment");

    let actions: Vec<String> = audit_actions(&cfg).into_iter().map(|a| a.0).collect();
    assert_eq!(actions, ["consent-added", "enrolled", "consent-withdrawn", "templates-erased"]);
    let out = dolbom(&["audit", "verify", "--config", s(&cfg)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("4 line(s)"), "{}", stdout(&out));

    // An edit in the middle (the enrolment's count) is caught, with the line after it named.
    let path = dir.path().join("gallery.audit.jsonl");
    let text = std::fs::read_to_string(&path).expect("log");
    let edited = text.replacen("\"templates\":2,", "\"templates\":1,", 1);
    assert_ne!(edited, text, "fixture drift: {text}");
    std::fs::write(&path, edited).expect("edit");
    let out = dolbom(&["audit", "verify", "--config", s(&cfg)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("line 3"), "{}", stderr(&out));
    // And a removed line.
    let removed: String = text.lines().enumerate().filter(|(i, _)| *i != 0).map(|(_, l)| format!("{l}\n")).collect();
    std::fs::write(&path, removed).expect("remove");
    assert_eq!(dolbom(&["audit", "verify", "--config", s(&cfg)]).status.code(), Some(1));
}

/// A consent whose retention ended (written as the days would have made it: the CLI refuses a
/// past date) is ended by the kiosk on its own at start: the child's templates are gone from
/// the gallery before the first frame, the child is no longer recognised, and neither the
/// gallery nor the kiosk database holds the template.
#[test]
fn the_kiosk_ends_a_consent_past_its_date_and_destroys_the_templates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let center = unique_center("consent");
    let port = system_broker_port();
    let config = kiosk_config(
        dir.path(),
        &KioskOptions { center: &center, port, clip: clip(), pace: "fast", at_end: "exit", mqtt: "", extra: "" },
    );
    common::consent_with(&config, "obama", &["face-attendance", "template-refresh"]);
    assert!(enrol_obama(&config, "child").status.success());
    let out = enrol_biden_as_staff(&config);
    assert!(out.status.success(), "{}", stderr(&out));
    let needle = template_text(&config, "obama");
    // Sealed: even before the expiry no file holds the template in the clear.
    assert_eq!(files_containing(dir.path(), &needle), Vec::<String>::new(), "a template in the clear");
    let yesterday = jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::get("Asia/Seoul").expect("tz"))
        .date()
        .yesterday()
        .expect("date");
    common::load(&config)
        .gallery
        .store()
        .update(|g| -> Result<(), dolbom_face::gallery::StoreError> {
            g.consents[0].retention_until = yesterday;
            Ok(())
        })
        .expect("time passes");

    let sub = Subscriber::start(port, &format!("dolbom/v1/{center}/#"));
    let log = dir.path().join("kiosk.log");
    let mut kiosk = spawn_kiosk(&config, &log);
    assert!(wait_exit(&mut kiosk, 120, &log).success(), "log:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
    sub.wait_for(Duration::from_secs(10), "offline status", |m| m.iter().any(|r| r.payload["state"] == "offline"));
    let seen = summary(&events(&sub.snapshot()).0);
    assert!(seen.contains(&"arrival:biden".to_string()), "{seen:?}");
    assert!(!seen.contains(&"arrival:obama".to_string()), "matched after the consent ended: {seen:?}");

    let logged = std::fs::read_to_string(&log).expect("log");
    assert!(logged.contains("consent past its retention date ended"), "{logged}");
    assert_eq!(files_containing(dir.path(), &needle), Vec::<String>::new(), "a copy of the template is left");
    assert!(dir.path().join("state/kiosk.db").exists(), "the database was written");
    let g = common::load(&config).gallery.store().load().expect("gallery");
    let p = g.get("obama").expect("the person stays");
    assert_eq!((p.embeddings.len(), p.refreshed.len()), (0, 0));
    let actions = audit_actions(&config);
    assert_eq!(
        actions[actions.len() - 2..],
        [
            ("consent-expired".into(), "obama".into(), "kiosk".into()),
            ("templates-erased".into(), "obama".into(), "kiosk".into()),
        ]
    );
    let out = dolbom(&["audit", "verify", "--config", s(&config)]);
    assert!(out.status.success(), "{}", stderr(&out));
}
